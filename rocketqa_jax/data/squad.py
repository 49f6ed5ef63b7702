"""SQuAD v1.1 as a retrieval task, and the fixed SQuAD-mini benchmark split.

Corpus: every paragraph (id "<article title>#<paragraph index>"); a question's positive is the
paragraph it was written on. SQuAD-mini: articles in file order, eval = index % 4 == 3; of the
other articles' questions, labeled = the quarter with the smallest sha1(id) hex digest, unlabeled
= the rest (their labels are withheld from training: they stand in for unlabeled questions).

The dev split is for tuning without touching the eval articles: they leave entirely (corpus =
the training articles' paragraphs), every 6th training article becomes dev (its questions are
the "eval" questions), and the other 30 are split into labeled and unlabeled the same way.
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import json
import os
import pathlib

from rocketqa_jax.data.corpus import Corpus
from rocketqa_jax.data.types import Question
from rocketqa_jax.errors import InputError, MissingFileError

ENV_VAR = "ROCKETQA_SQUAD_DIR"
OFFICIAL_URL = "https://rajpurkar.github.io/SQuAD-explorer/dataset/dev-v1.1.json"
_FILES = ("dev-v1.1.json", "dev-v1.1.json.gz", "dev-v1.1.from-explorer.json.gz")
_REPO = pathlib.Path(__file__).resolve().parents[2]


def find_squad_file(path: str | os.PathLike = "") -> pathlib.Path:
  """The SQuAD v1.1 dev JSON: `path` (file or folder) if given, else $ROCKETQA_SQUAD_DIR if set,
  else ../shared/data/squad_v1.1_dev beside the repository or ./data/squad."""
  chosen = path or os.environ.get(ENV_VAR, "")
  candidates = [pathlib.Path(chosen)] if chosen else [
      _REPO.parent / "shared/data/squad_v1.1_dev", pathlib.Path.cwd() / "data/squad"]
  for c in candidates:
    if c.is_file():
      return c
    for name in _FILES:
      if (c / name).is_file():
        return c / name
  raise MissingFileError(
      f"SQuAD v1.1 dev not found in {', '.join(map(str, candidates))}. Set data.path or "
      f"${ENV_VAR} to a folder holding one of {', '.join(_FILES)}; download it from "
      f"{OFFICIAL_URL}")


def _load_json(path: pathlib.Path):
  opener = gzip.open if path.suffix == ".gz" else open
  with opener(path, "rt", encoding="utf-8") as f:
    try:
      return json.load(f)
    except json.JSONDecodeError as e:
      raise InputError(f"{path}:{e.lineno}:{e.colno}: invalid JSON: {e.msg}") from e
    except UnicodeDecodeError as e:
      raise InputError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start:,}); SQuAD files "
                       "are UTF-8 JSON") from e


@dataclasses.dataclass(frozen=True)
class SquadArticle:
  title: str
  passage_ids: list[str]
  questions: list[Question]


def read_squad(path: str | os.PathLike) -> tuple[Corpus, list[SquadArticle]]:
  """Parses SQuAD v1.1 JSON into a corpus and, per article in file order, its questions."""
  path = pathlib.Path(path)
  data = _load_json(path)
  ids, texts, titles, articles = [], [], [], []
  where = "data"
  try:
    for a, article in enumerate(data["data"]):
      where = f"data[{a}]"
      title, questions, pids = article["title"], [], []
      for p, paragraph in enumerate(article["paragraphs"]):
        where = f"data[{a}].paragraphs[{p}]"
        pid = f"{title}#{p}"
        pids.append(pid)
        ids.append(pid)
        texts.append(paragraph["context"])
        titles.append(title.replace("_", " "))
        for q, qa in enumerate(paragraph["qas"]):
          where = f"data[{a}].paragraphs[{p}].qas[{q}]"
          answers = tuple(dict.fromkeys(ans["text"] for ans in qa["answers"]))
          questions.append(Question(qa["id"], qa["question"].strip(), (pid,), answers))
      articles.append(SquadArticle(title, pids, questions))
  except (KeyError, TypeError) as e:
    raise InputError(f"{path}: {where}: expected SQuAD v1.1 layout, missing or malformed "
                     f"field {e}") from e
  return Corpus.from_rows(zip(ids, texts, titles), source=str(path)), articles


@dataclasses.dataclass(frozen=True)
class SquadMini:
  corpus: Corpus
  eval: list[Question]
  labeled: list[Question]
  unlabeled: list[Question]  # positive_ids and answers kept for analysis only, never training.
  eval_articles: list[str]
  train_articles: list[str]


SPLITS = ("eval", "dev")


def split_squad_mini(corpus: Corpus, articles: list[SquadArticle],
                     split: str = "eval") -> SquadMini:
  """SQuAD-mini (split="eval"), or its tuning variant without the eval articles (split="dev")."""
  if split not in SPLITS:
    raise ValueError(f"split={split!r}: expected one of {SPLITS}")
  eval_articles = [a for i, a in enumerate(articles) if i % 4 == 3]
  train_articles = [a for i, a in enumerate(articles) if i % 4 != 3]
  if split == "dev":
    kept = {pid for a in train_articles for pid in a.passage_ids}
    rows = [i for i, pid in enumerate(corpus.ids) if pid in kept]
    corpus = Corpus([corpus.ids[i] for i in rows], [corpus.texts[i] for i in rows],
                    [corpus.titles[i] for i in rows])
    eval_articles = train_articles[5::6]
    train_articles = [a for i, a in enumerate(train_articles) if i % 6 != 5]
  train = [q for a in train_articles for q in a.questions]
  by_digest = sorted(train, key=lambda q: hashlib.sha1(q.id.encode()).hexdigest())
  labeled_ids = {q.id for q in by_digest[:len(train) // 4]}
  return SquadMini(
      corpus=corpus,
      eval=[q for a in eval_articles for q in a.questions],
      labeled=[q for q in train if q.id in labeled_ids],
      unlabeled=[q for q in train if q.id not in labeled_ids],
      eval_articles=[a.title for a in eval_articles],
      train_articles=[a.title for a in train_articles])


def load_squad_mini(path: str | os.PathLike = "", split: str = "eval") -> SquadMini:
  return split_squad_mini(*read_squad(find_squad_file(path)), split=split)
