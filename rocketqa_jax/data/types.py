"""The shapes every data reader produces: a passage corpus and labeled questions."""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class Corpus:
  """Parallel lists; `index[id]` is the row of a passage id."""
  ids: list[str]
  texts: list[str]
  titles: list[str]

  def __post_init__(self):
    if not len(self.ids) == len(self.texts) == len(self.titles):
      raise ValueError("ids, texts and titles must have the same length")
    object.__setattr__(self, "index", {pid: i for i, pid in enumerate(self.ids)})
    if len(self.index) != len(self.ids):
      raise ValueError("passage ids must be unique")

  def __len__(self) -> int:
    return len(self.ids)


@dataclasses.dataclass(frozen=True)
class Question:
  id: str
  text: str
  positive_ids: tuple[str, ...] = ()  # Empty for unlabeled questions.
  answers: tuple[str, ...] = ()
