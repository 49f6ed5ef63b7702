"""What every data reader produces besides its corpus (data/corpus.py): questions."""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class Question:
  id: str
  text: str
  positive_ids: tuple[str, ...] = ()  # Empty for unlabeled questions.
  answers: tuple[str, ...] = ()
