"""DPR's retriever data (Karpukhin et al. 2020): the Wikipedia passages, biencoder training JSON
and the QA test files, so models trained here are compared on DPR's own splits and corpus.

Passage ids are DPR's (the psgs_w100.tsv `id` column, as strings); biencoder contexts point at
them through `passage_id` (NQ) or `psg_id` (TriviaQA).
"""

from __future__ import annotations

import ast
import dataclasses
import json
import logging
import os
from typing import Iterator

from rocketqa_jax.data.lines import LineStats, csv_columns, iter_records, open_text
from rocketqa_jax.data.corpus import Corpus
from rocketqa_jax.data.types import Question

log = logging.getLogger(__name__)
PASSAGES_HEADER = "id\ttext\ttitle"
_ID_KEYS = ("id", "q_id", "qid", "question_id")  # Used, when present, as the question id.
_CTX_ID_KEYS = ("passage_id", "psg_id")


def iter_passages_tsv(path: str | os.PathLike, skip_bad: bool = False,
                      stats: LineStats | None = None) -> Iterator[tuple[str, str, str]]:
  """(id, text, title) per passage of a psgs_w100.tsv-style file, lazily."""
  for _, row in iter_records(path, _parse_passage, skip_bad=skip_bad, header=PASSAGES_HEADER,
                             stats=stats):
    yield row


def _parse_passage(line: str) -> tuple[str, str, str]:
  return tuple(csv_columns(line, ("id", "text", "title")))


def read_passages_tsv(path: str | os.PathLike, skip_bad: bool = False,
                      stats: LineStats | None = None) -> Corpus:
  """The corpus; its texts and titles stay in the file (Corpus.from_file) unless gzipped."""
  return Corpus.from_file(path, _parse_passage, header=PASSAGES_HEADER, skip_bad=skip_bad,
                          stats=stats)


@dataclasses.dataclass(frozen=True)
class BiencoderExample:
  """A training question (positives and answers set) and its mined negatives' passage ids."""
  question: Question
  hard_negative_ids: tuple[str, ...] = ()
  negative_ids: tuple[str, ...] = ()  # DPR's "negative_ctxs": BM25 top hits, unfiltered.


def read_biencoder_json(path: str | os.PathLike) -> list[BiencoderExample]:
  """Parses DPR biencoder JSON (a list of examples). It is one JSON document, so it is loaded
  whole, as DPR does. Contexts without a passage id cannot be pointed at in the corpus: they
  are left out and counted in a warning, as are examples left with no positive id."""
  with open_text(path) as f:
    try:
      data = json.load(f)
    except json.JSONDecodeError as e:
      raise ValueError(f"{path}:{e.lineno}:{e.colno}: invalid JSON: {e.msg}") from e
  if not isinstance(data, list):
    raise ValueError(f"{path}: expected a JSON list of DPR biencoder examples, got a "
                     f"{type(data).__name__}")
  examples, dropped, unlabeled = [], 0, 0
  for i, ex in enumerate(data):
    where = f"{path}: example [{i}]"
    if not isinstance(ex, dict):
      raise ValueError(f"{where}: expected a JSON object, got {type(ex).__name__}")
    question, answers = _field(ex, "question", str, where), _field(ex, "answers", list, where)
    if not all(isinstance(a, str) for a in answers):
      raise ValueError(f"{where}: expected 'answers' to be a list of strings")
    ids = {}
    for key in ("positive_ctxs", "hard_negative_ctxs", "negative_ctxs"):
      ctxs = _field(ex, key, list, where) if key == "positive_ctxs" else ex.get(key, [])
      if not isinstance(ctxs, list) or not all(isinstance(c, dict) for c in ctxs):
        raise ValueError(f"{where}: expected '{key}' to be a list of objects")
      found = [_ctx_id(c) for c in ctxs]
      ids[key] = tuple(str(pid) for pid in found if pid is not None)
      dropped += len(found) - len(ids[key])
    qid = next((str(ex[k]) for k in _ID_KEYS if k in ex), str(i))
    unlabeled += not ids["positive_ctxs"]
    examples.append(BiencoderExample(
        Question(qid, question, ids["positive_ctxs"], tuple(answers)),
        ids["hard_negative_ctxs"], ids["negative_ctxs"]))
  if dropped or unlabeled:
    log.warning("%s: %d context(s) had no passage id (%s) and were left out; %d example(s) have "
                "no positive passage id", path, dropped, "/".join(_CTX_ID_KEYS), unlabeled)
  return examples


def _field(obj: dict, key: str, kind: type, where: str):
  if key not in obj:
    raise ValueError(f"{where}: missing field '{key}'")
  if not isinstance(obj[key], kind):
    raise ValueError(f"{where}: expected '{key}' to be a {kind.__name__}, got "
                     f"{type(obj[key]).__name__}")
  return obj[key]


def _ctx_id(ctx: dict):
  return next((ctx[k] for k in _CTX_ID_KEYS if ctx.get(k) not in (None, "")), None)


def iter_qa_csv(path: str | os.PathLike, skip_bad: bool = False,
                stats: LineStats | None = None) -> Iterator[Question]:
  """Questions of a DPR QA file (nq-test.qas.csv style: question TAB Python list of answers, no
  header), lazily. The id is the 0-based line index, which is DPR's question index."""
  for number, (question, answers) in iter_records(path, _parse_qa, skip_bad=skip_bad,
                                                  stats=stats):
    yield Question(str(number - 1), question, answers=answers)


def read_qa_csv(path: str | os.PathLike, skip_bad: bool = False,
                stats: LineStats | None = None) -> list[Question]:
  return list(iter_qa_csv(path, skip_bad, stats))


def _parse_qa(line: str) -> tuple[str, tuple[str, ...]]:
  question, answers = csv_columns(line, ("question", "answers"), first_nonempty=2)
  want = "expected the answers column to be a Python list of strings like ['a', 'b']"
  try:
    parsed = ast.literal_eval(answers)
  except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError) as e:
    raise ValueError(want) from e
  if not isinstance(parsed, list) or not all(isinstance(a, str) for a in parsed):
    raise ValueError(want)
  return question, tuple(parsed)
