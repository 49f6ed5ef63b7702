"""The datasets a config can name (config.data.name), each read into one RetrievalData.

- squad_mini: SQuAD v1.1 dev as retrieval (data/squad.py); split "eval" or "dev".
- dpr: DPR's files: psgs_w100.tsv corpus, biencoder training JSON (labeled questions with
  positive passage ids), a QA CSV to evaluate on (answers only: DPR's top-k accuracy).
- msmarco: collection.tsv, train queries + qrels, dev queries + qrels (MRR@10).
- beir: a BEIR folder (`data.path`): corpus.jsonl, queries.jsonl, qrels/<data.split>.tsv to
  evaluate on, and qrels/train.tsv, where the data set has one, to train on.

Files of questions (`data.unlabeled`, DPR's `data.eval`) are read by `read_questions`: a DPR QA
.csv, a BEIR queries .jsonl, `tfds:NAME:SPLIT` (the TFDS question sets of tfds_questions.py,
prepared beforehand in $TFDS_DATA_DIR), else `id<TAB>question` lines. Unlabeled questions for
augmentation come from `data.unlabeled` or, for squad_mini, from its unlabeled split.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import pathlib

import ml_collections

from rocketqa_jax.data import beir, dpr, lines, msmarco, squad, tfds_questions
from rocketqa_jax.data.corpus import Corpus
from rocketqa_jax.data.types import Question
from rocketqa_jax.errors import ConfigError, InputError, UserError

NAMES = ("squad_mini", "dpr", "msmarco", "beir")
TFDS_PREFIX = "tfds:"


@dataclasses.dataclass(frozen=True)
class RetrievalData:
  corpus: Corpus
  labeled: list[Question]  # Training questions with positive passage ids.
  unlabeled: list[Question]  # For augmentation; any labels they carry are for analysis only.
  eval: list[Question]  # With positive ids (MRR, recall) and/or answers (answer@k).


def read_questions(spec: str, skip_bad: bool = False) -> list[Question]:
  """Questions from a DPR QA .csv (question, answers), a BEIR queries .jsonl, a TFDS question
  set (`tfds:natural_questions_open:validation`), or `id<TAB>question` lines."""
  if spec.startswith(TFDS_PREFIX):
    name, _, split = spec[len(TFDS_PREFIX):].rpartition(":")
    if not name or not split:
      raise ValueError(f"{spec!r}: expected tfds:NAME:SPLIT, e.g. "
                       "tfds:natural_questions_open:validation")
    # TFDS reads TFDS_DATA_DIR once, at import: read it here, when the spec is.
    return tfds_questions.load_tfds_questions(name, split, os.environ.get("TFDS_DATA_DIR"))
  if spec.endswith((".csv", ".csv.gz")):
    return dpr.read_qa_csv(spec, skip_bad)
  if spec.endswith((".jsonl", ".jsonl.gz")):
    return beir.read_queries(spec, skip_bad)
  return msmarco.read_queries(spec, skip_bad)


FILES = ("corpus", "train", "train_qrels", "eval", "eval_qrels", "unlabeled")  # config.data's.


def check_files(data_config) -> None:
  """Every data file the config names is a local file (at start-up, before any stage runs)."""
  for field in FILES:
    value = data_config[field]
    if value and not value.startswith(TFDS_PREFIX):
      try:
        lines.local(value)
      except UserError as e:
        raise type(e)(f"config.data.{field}: {e}") from None
  if data_config.name == "squad_mini":
    squad.find_squad_file(data_config.path)


def _required(data_config, *fields: str) -> None:
  missing = [f for f in fields if not data_config[f]]
  if missing:
    raise ConfigError(f"config.data.name={data_config.name!r} needs "
                     f"{', '.join('config.data.' + f for f in missing)} (file paths)")


def load_data(data_config) -> RetrievalData:
  """The corpus and the labeled, unlabeled and eval questions `data_config` (config.data)
  names; read once per process for the same config (stages run one after another)."""
  return _read(data_config.to_json(sort_keys=True))


@functools.lru_cache(maxsize=1)
def _read(data_json: str) -> RetrievalData:
  c = ml_collections.ConfigDict(json.loads(data_json))
  data = _read_files(c)
  # Where the labels come from, to name it when one points outside the corpus.
  sources = {"squad_mini": ("data.path", "data.path"), "dpr": ("data.train", "data.eval"),
             "beir": ("data.path", "data.path"), "msmarco": ("data.train_qrels",
                                                             "data.eval_qrels")}[c.name]
  for questions, field in ((data.labeled, sources[0]), (data.eval, sources[1])):
    check_positives(data.corpus, questions, f"config.{field} ({c[field.split('.')[1]]})")
  return data


def check_positives(corpus: Corpus, questions: list[Question], source: str) -> None:
  """Every labeled positive is a corpus passage: else training has no row for it and eval
  would count the question a miss whatever the model does."""
  missing = [(q.id, pid) for q in questions for pid in q.positive_ids if pid not in corpus.index]
  if missing:
    (qid, pid), count = missing[0], len({q for q, _ in missing})
    raise InputError(f"{source}: question {qid} names passage {pid}, which is not in the corpus "
                     f"({count} of {len(questions):,} questions name passages it lacks). Are "
                     "the corpus and the labels from one data set?")


def _read_files(c) -> RetrievalData:
  if c.name not in NAMES:
    raise ValueError(f"config.data.name={c.name!r}: expected one of {NAMES}")
  bad = c.get("skip_bad", False)  # Line readers: skip (and count) bad lines.
  unlabeled = read_questions(c.unlabeled, bad) if c.unlabeled else None
  if c.name == "squad_mini":
    mini = squad.load_squad_mini(c.path, c.split)
    return RetrievalData(mini.corpus, mini.labeled,
                         mini.unlabeled if unlabeled is None else unlabeled, mini.eval)
  if c.name == "dpr":
    _required(c, "corpus", "train", "eval")
    train = [ex.question for ex in dpr.read_biencoder_json(c.train)]
    return RetrievalData(dpr.read_passages_tsv(c.corpus, bad),
                         [q for q in train if q.positive_ids], unlabeled or [],
                         read_questions(c.eval, bad))
  if c.name == "beir":
    _required(c, "path")
    test = beir.load_beir(c.path, c.split, bad)
    has_train = any((pathlib.Path(c.path) / "qrels" / f"train.tsv{gz}").is_file()
                    for gz in ("", ".gz"))
    labeled = beir.load_beir_questions(c.path, "train", bad) if has_train else []
    return RetrievalData(test.corpus, labeled, unlabeled or [], test.questions)
  _required(c, "corpus", "train", "train_qrels", "eval", "eval_qrels")
  return RetrievalData(msmarco.read_collection(c.corpus, bad),
                       msmarco.load_questions(c.train, c.train_qrels, bad), unlabeled or [],
                       msmarco.load_questions(c.eval, c.eval_qrels, bad))
