"""Mining: the top-k passages a dual encoder retrieves for training questions.

RocketQA mines twice: with M_D^(0) for the labeled questions (hard-negative candidates for the
cross-encoder and for denoising) and with M_D^(1) for the unlabeled ones (augmentation). The
search goes through the configured index (`retrieval.INDEXES`: exact, or ScaNN's approximate
search). The candidates are written as JSONL, one line per question: {"id", "passage_ids",
"scores"}.
"""

from __future__ import annotations

import json
from typing import Sequence

from rocketqa_jax import artifacts, retrieval
from rocketqa_jax.artifacts import PathLike
from rocketqa_jax.corpus_encoding import corpus_embeddings
from rocketqa_jax.data.types import Corpus, Question
from rocketqa_jax.encoder import Encoder


Candidates = dict[str, tuple[list[str], list[float]]]  # {question id: (passage ids, scores)}


def mine(query_encoder: Encoder, passage_encoder: Encoder, corpus: Corpus,
         questions: Sequence[Question], *, corpus_dir: PathLike, k: int, index: str = "exact",
         out: PathLike | None = None, use_titles: bool = False, shard_size: int = 100_000,
         progress: bool = True) -> Candidates:
  """The top-k candidates of every question, best first; written to the JSONL file `out` when
  given. The corpus shards go to `corpus_dir`; shards already there from the same encoder are
  reused."""
  embeddings, ids = corpus_embeddings(passage_encoder, corpus, corpus_dir, use_titles=use_titles,
                                      shard_size=shard_size, progress=progress)
  queries = query_encoder.encode_queries([q.text for q in questions], progress=progress)
  rows, scores = retrieval.build_index(index, embeddings, ids, k=k).search_rows(queries, k)
  candidates = {q.id: ([str(ids[r]) for r in row], [round(float(s), 5) for s in score])
                for q, row, score in zip(questions, rows, scores)}
  if out is not None:
    artifacts.write_text(out, "".join(
        json.dumps({"id": qid, "passage_ids": pids, "scores": s}) + "\n"
        for qid, (pids, s) in candidates.items()))
  return candidates


def read_candidates(path: PathLike) -> Candidates:
  """{question id: (passage ids, scores)}, best first."""
  out = {}
  with artifacts.path(path).open("r", encoding="utf-8") as f:
    for number, line in enumerate(f, 1):
      try:
        record = json.loads(line)
        out[record["id"]] = (record["passage_ids"], record["scores"])
      except (json.JSONDecodeError, KeyError, TypeError) as e:
        raise ValueError(f"{path}:{number}: expected a JSON object with id, passage_ids and "
                         f"scores ({e})") from e
  return out
