"""Mining: the top-k passages a dual encoder retrieves for training questions.

RocketQA mines twice: with M_D^(0) for the labeled questions (hard-negative candidates for the
cross-encoder and for denoising) and with M_D^(1) for the unlabeled ones (augmentation). The
search goes through the configured index (`retrieval.INDEXES`: exact, or ScaNN's approximate
search), divided over the processes by corpus shard (`retrieval.search_divided`).

Candidates are arrays: corpus rows (int32) and scores (float32), [questions, k], in the
questions' order, saved as one `.npz`: 8 bytes a candidate (MS MARCO's 502,939 training
questions x top 1,000 are 4 GB, where JSON parsed into Python lists took ~48 GB). Where a person
may read them (up to `READABLE_CANDIDATES` candidates), they are also written as JSON lines with
passage ids: {"id", "passage_ids", "scores"}.
"""

from __future__ import annotations

import dataclasses
import io
import json
from typing import Sequence

import numpy as np

from rocketqa_jax import artifacts, retrieval
from rocketqa_jax.artifacts import PathLike
from rocketqa_jax.corpus_encoding import corpus_embeddings
from rocketqa_jax.data.corpus import Corpus
from rocketqa_jax.data.types import Question
from rocketqa_jax.encoder import Encoder

READABLE_CANDIDATES = 1_000_000  # Up to this many (questions x k), a JSONL copy is written too.


@dataclasses.dataclass(frozen=True)
class Candidates:
  """Each question's top-k corpus rows and their scores, best first; row -1: none (a corpus
  smaller than k)."""
  question_ids: np.ndarray  # [questions] str
  rows: np.ndarray  # [questions, k] int32
  scores: np.ndarray  # [questions, k] float32

  def __len__(self) -> int:
    return len(self.question_ids)

  def top(self, i: int, k: int | None = None) -> np.ndarray:
    """Question i's best `k` (default all) rows."""
    rows = self.rows[i, :k]
    return rows[rows >= 0]

  def check_questions(self, questions: Sequence[Question], path: PathLike) -> Candidates:
    """Self, after checking that it was mined for `questions`, in their order."""
    ids = [q.id for q in questions]
    if len(ids) != len(self) or any(a != b for a, b in zip(ids, self.question_ids)):
      raise ValueError(f"{path} holds candidates for other questions than these {len(ids)} "
                       f"(its first: {list(self.question_ids[:3])}, theirs: {ids[:3]})")
    return self

  def save(self, path: PathLike) -> None:
    buffer = io.BytesIO()
    np.savez(buffer, question_ids=np.asarray(self.question_ids, dtype=str), rows=self.rows,
             scores=self.scores)
    artifacts.write_bytes(path, buffer.getvalue())

  def write_jsonl(self, path: PathLike, corpus: Corpus) -> None:
    artifacts.write_text(path, "".join(
        json.dumps({"id": str(qid), "passage_ids": corpus.ids[self.top(i)],
                    "scores": [round(float(s), 5) for s in self.scores[i, :len(self.top(i))]]})
        + "\n" for i, qid in enumerate(self.question_ids)))


def read_candidates(path: PathLike) -> Candidates:
  """Candidates saved by `Candidates.save` (an .npz, local or gs://)."""
  npz = artifacts.read_npz(path, ("question_ids", "rows", "scores"))
  return Candidates(npz["question_ids"], npz["rows"], npz["scores"])


def mine(query_encoder: Encoder, passage_encoder: Encoder, corpus: Corpus,
         questions: Sequence[Question], *, corpus_dir: PathLike, k: int, index: str = "exact",
         out: PathLike | None = None, readable: PathLike | None = None,
         use_titles: bool = False, shard_size: int = 100_000,
         progress: bool = True, join: tuple[np.ndarray, np.ndarray] | None = None
         ) -> Candidates:
  """The top-k candidates of every question, best first; saved to `out` when given, and as
  JSONL to `readable` when given and small enough. This process's corpus shards are encoded
  into `corpus_dir` (shards already there from the same encoder are reused) and searched.
  `join`: another retriever's ranking (rows, scores) [questions, >= k] taken in turns with the
  dense one (`interleave`), so the top few of each are among the first candidates."""
  embeddings, rows = corpus_embeddings(passage_encoder, corpus, corpus_dir,
                                       use_titles=use_titles, shard_size=shard_size,
                                       progress=progress)
  queries = query_encoder.encode_queries([q.text for q in questions], progress=progress)
  found, scores = retrieval.search_divided(retrieval.build_index(index, embeddings, k=k), rows,
                                           queries, k, len(corpus))
  if join is not None:
    found, scores = interleave((found, scores), join, k)
  candidates = Candidates(np.asarray([q.id for q in questions], dtype=str), found, scores)
  if out is not None:
    candidates.save(out)
  if readable is not None and candidates.rows.size <= READABLE_CANDIDATES:
    candidates.write_jsonl(readable, corpus)
  return candidates


def interleave(first: tuple[np.ndarray, np.ndarray], second: tuple[np.ndarray, np.ndarray],
               k: int) -> tuple[np.ndarray, np.ndarray]:
  """Per question, the two rankings' rows taken in turns (first's 1st, second's 1st, first's
  2nd, ...), each row once, the top k; scores are each row's in the ranking it came from
  (unrelated scales); -1 / -inf pad."""
  rows = np.full((first[0].shape[0], k), -1, np.int32)
  scores = np.full(rows.shape, -np.inf, np.float32)
  for q in range(rows.shape[0]):
    taken = {}
    for pair in zip(zip(first[0][q], first[1][q]), zip(second[0][q], second[1][q])):
      for row, score in pair:
        if row >= 0 and len(taken) < k:
          taken.setdefault(int(row), float(score))
    rows[q, :len(taken)] = list(taken)
    scores[q, :len(taken)] = list(taken.values())
  return rows, scores
