"""BEIR-format data sets (Thakur et al. 2021): the common layout of the zero-shot retrieval
benchmark, `corpus.jsonl`, `queries.jsonl` and `qrels/{split}.tsv`, read lazily.

Qrels are graded (nDCG@10 is BEIR's metric), so they are returned whole beside the Questions,
whose positive_ids keep only the passages scored above 0.
"""

from __future__ import annotations

import dataclasses
import os
import pathlib
from typing import Iterator

from rocketqa_jax.data.lines import LineStats, iter_records, json_object
from rocketqa_jax.data.msmarco import Qrels, join_qrels
from rocketqa_jax.data.corpus import Corpus
from rocketqa_jax.data.types import Question

QRELS_HEADER = "query-id\tcorpus-id\tscore"


def _in(dir_or_file: str | os.PathLike, name: str) -> pathlib.Path:
  """`dir_or_file` itself if a file, else `name` (or `name`.gz) inside it."""
  p = pathlib.Path(dir_or_file)
  if p.is_file():
    return p
  for candidate in (p / name, p / f"{name}.gz"):
    if candidate.is_file():
      return candidate
  raise FileNotFoundError(f"no {name} or {name}.gz in {p}")


def iter_corpus(dir_or_file: str | os.PathLike, skip_bad: bool = False,
                stats: LineStats | None = None) -> Iterator[tuple[str, str, str]]:
  """(id, text, title) per line of corpus.jsonl; a missing title is ""."""
  for _, row in iter_records(_in(dir_or_file, "corpus.jsonl"), _parse_doc, skip_bad=skip_bad,
                             stats=stats):
    yield row


def _parse_doc(line: str) -> tuple[str, str, str]:
  doc = json_object(line, ("_id", "text"))
  title = doc.get("title") or ""
  if not isinstance(title, str):
    raise ValueError("expected a JSON object whose 'title', if present, is a string")
  return str(doc["_id"]), str(doc["text"]), title


def read_corpus(dir_or_file: str | os.PathLike, skip_bad: bool = False,
                stats: LineStats | None = None) -> Corpus:
  return Corpus.from_file(_in(dir_or_file, "corpus.jsonl"), _parse_doc, skip_bad=skip_bad,
                          stats=stats)


def read_queries(dir_or_file: str | os.PathLike, skip_bad: bool = False,
                 stats: LineStats | None = None) -> list[Question]:
  """Unlabeled Questions from queries.jsonl (`_id`, `text`)."""
  def parse(line):
    q = json_object(line, ("_id", "text"))
    return Question(str(q["_id"]), str(q["text"]))
  path = _in(dir_or_file, "queries.jsonl")
  return [q for _, q in iter_records(path, parse, skip_bad=skip_bad, stats=stats)]


def read_qrels(path: str | os.PathLike, skip_bad: bool = False,
               stats: LineStats | None = None) -> Qrels:
  """qrels/{split}.tsv (header `query-id TAB corpus-id TAB score`) as {qid: {doc id: score}}."""
  qrels: Qrels = {}
  for _, (qid, did, score) in iter_records(path, _parse_qrel, skip_bad=skip_bad,
                                           header=QRELS_HEADER, stats=stats):
    qrels.setdefault(qid, {})[did] = score
  return qrels


def _parse_qrel(line: str) -> tuple[str, str, int]:
  parts = line.split("\t")
  if len(parts) != 3 or not all(parts) or not parts[2].lstrip("+-").isdigit():
    raise ValueError("expected 3 tab-separated columns (query-id, corpus-id, integer score)")
  return parts[0], parts[1], int(parts[2])


@dataclasses.dataclass(frozen=True)
class BeirData:
  corpus: Corpus
  questions: list[Question]  # The judged queries with at least one positive, in file order.
  qrels: Qrels  # Graded, all judgments of the split (including score 0), for nDCG.


def load_beir(directory: str | os.PathLike, split: str = "test",
              skip_bad: bool = False) -> BeirData:
  qrels, questions = _judged(directory, split, skip_bad)
  return BeirData(read_corpus(directory, skip_bad), questions, qrels)


def load_beir_questions(directory: str | os.PathLike, split: str,
                        skip_bad: bool = False) -> list[Question]:
  """The judged queries of `split` (e.g. the training questions), without the corpus."""
  return _judged(directory, split, skip_bad)[1]


def _judged(directory, split: str, skip_bad: bool) -> tuple[Qrels, list[Question]]:
  directory = pathlib.Path(directory)
  qrels_path = _in(directory / "qrels", f"{split}.tsv")
  qrels = read_qrels(qrels_path, skip_bad)
  queries_path = _in(directory, "queries.jsonl")
  queries = read_queries(queries_path, skip_bad)
  try:
    return qrels, join_qrels(queries, qrels)
  except ValueError as e:
    raise ValueError(f"{qrels_path} vs {queries_path}: {e}") from e
