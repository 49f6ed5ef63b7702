"""Mining: the top-k passages a dual encoder retrieves for training questions.

RocketQA mines twice: with M_D^(0) for the labeled questions (hard-negative candidates for the
cross-encoder and for denoising) and with M_D^(1) for the unlabeled ones (augmentation). The
candidates are written as JSONL, one line per question: {"id", "passage_ids", "scores"}.
"""

from __future__ import annotations

import json
import os
import pathlib
from typing import Sequence

from rocketqa_jax import artifacts
from rocketqa_jax.corpus_encoding import corpus_embeddings
from rocketqa_jax.data.types import Corpus, Question
from rocketqa_jax.encoder import Encoder
from rocketqa_jax.retrieval import ExactIndex


def mine(query_encoder: Encoder, passage_encoder: Encoder, corpus: Corpus,
         questions: Sequence[Question], out_dir: str | os.PathLike, *, k: int,
         use_titles: bool = False, shard_size: int = 100_000, progress: bool = True,
         corpus_dir: str | os.PathLike | None = None) -> pathlib.Path:
  """Writes `out_dir/candidates.jsonl` (exact search). The corpus shards go to `corpus_dir`
  (default `out_dir/corpus`); shards already there from the same encoder are reused."""
  out_dir = pathlib.Path(out_dir)
  corpus_dir = out_dir / "corpus" if corpus_dir is None else pathlib.Path(corpus_dir)
  embeddings, ids = corpus_embeddings(passage_encoder, corpus, corpus_dir, use_titles=use_titles,
                                      shard_size=shard_size, progress=progress)
  queries = query_encoder.encode_queries([q.text for q in questions], progress=progress)
  rows, scores = ExactIndex(embeddings, ids).search_rows(queries, k)
  lines = (json.dumps({"id": q.id, "passage_ids": [str(ids[r]) for r in row],
                       "scores": [round(float(s), 5) for s in score]}) + "\n"
           for q, row, score in zip(questions, rows, scores))
  return artifacts.write_text_atomic(out_dir / "candidates.jsonl", "".join(lines))


def read_candidates(path: str | os.PathLike) -> dict[str, tuple[list[str], list[float]]]:
  """{question id: (passage ids, scores)}, best first."""
  out = {}
  with open(path, encoding="utf-8") as f:
    for number, line in enumerate(f, 1):
      try:
        record = json.loads(line)
        out[record["id"]] = (record["passage_ids"], record["scores"])
      except (json.JSONDecodeError, KeyError, TypeError) as e:
        raise ValueError(f"{path}:{number}: expected a JSON object with id, passage_ids and "
                         f"scores ({e})") from e
  return out
