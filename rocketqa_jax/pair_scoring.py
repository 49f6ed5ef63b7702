"""M_C's scores of many (question, passage) pairs: in chunks, divided over processes, resumable.

Denoising scores every labeled question's top-k (NQ: 58,880 x 100 = 5.9M pairs), augmentation
every unlabeled question's (1M x 50 = 50M). A pair is two integers (the question's position in
`questions`, the passage's corpus row), so the pairs cost 8 bytes each; text is looked up and
tokenized one chunk of `chunk_pairs` pairs (config.ce.score_chunk) at a time, so memory stays
flat in the number of pairs. Chunk c is scored by process c % process_count on its own devices and written to
`<directory>/scores-<c>-of-<n>.npz` (its pairs' question positions, corpus rows and scores:
the folder is a record of what M_C said), through a temp file: a chunk file that exists is
complete, and a restarted stage scores only the chunks that are missing. The scores are then
gathered through the folder, which every process of a multi-host run shares (the workdir):
after a barrier each process reads every chunk.
"""

from __future__ import annotations

import hashlib
import io
import math
from typing import Sequence

import jax
import numpy as np
from etils import epath

from rocketqa_jax import artifacts, distributed, faults, usage
from rocketqa_jax.cross_encoder import CrossEncoderScorer
from rocketqa_jax.data.corpus import Corpus


def _chunk_path(directory: epath.Path, chunk: int, count: int) -> epath.Path:
  return directory / f"scores-{chunk:05d}-of-{count:05d}.npz"


def pairs_fingerprint(questions: Sequence[str], pair_questions: np.ndarray,
                      pair_rows: np.ndarray) -> str:
  """A sha1 of the pairs: which question text goes with which corpus row."""
  h = hashlib.sha1(np.ascontiguousarray(pair_questions, np.int64).tobytes())
  h.update(np.ascontiguousarray(pair_rows, np.int64).tobytes())
  for text in questions:
    h.update(text.encode("utf-8") + b"\0")
  return h.hexdigest()


def score_pairs(scorer: CrossEncoderScorer, questions: Sequence[str], pair_questions: np.ndarray,
                pair_rows: np.ndarray, corpus: Corpus, *, directory: artifacts.PathLike,
                chunk_pairs: int, use_titles: bool = False, progress: bool = True
                ) -> np.ndarray:
  """[pairs] float32 scores of (questions[pair_questions[i]], corpus row pair_rows[i]), every
  process's chunks included; this process scores its own missing chunks into `directory`."""
  directory = artifacts.path(directory)
  pair_questions, pair_rows = np.asarray(pair_questions), np.asarray(pair_rows)
  if pair_questions.shape != pair_rows.shape or pair_rows.ndim != 1:
    raise ValueError(f"pairs need one question and one row each: {pair_questions.shape} "
                     f"questions, {pair_rows.shape} rows")
  n = len(pair_rows)
  count = max(1, math.ceil(n / chunk_pairs))
  manifest = {"pairs": n, "chunk_pairs": chunk_pairs, "chunks": count, "use_titles": use_titles,
              "scorer": scorer.fingerprint(),
              "pairs_sha1": pairs_fingerprint(questions, pair_questions, pair_rows)}
  manifest_path = directory / "manifest.json"
  if manifest_path.exists():
    found = artifacts.read_json(manifest_path)
    if found != manifest:
      raise ValueError(f"{manifest_path} describes other scores ({found}) than this run "
                       f"({manifest}); remove {directory} or use another workdir")
  elif jax.process_index() == 0:
    artifacts.write_json(manifest_path, manifest)
  mine = range(jax.process_index(), count, jax.process_count())
  todo = [c for c in mine if not _chunk_path(directory, c, count).exists()]
  bar = None
  if progress and todo:
    from tqdm.auto import tqdm
    total = sum(min(n, (c + 1) * chunk_pairs) - c * chunk_pairs for c in todo)
    bar = tqdm(total=total, desc="scoring pairs", unit="pairs", dynamic_ncols=True)
  for done, c in enumerate(todo, 1):
    chunk = slice(c * chunk_pairs, min(n, (c + 1) * chunk_pairs))
    rows = pair_rows[chunk]
    scores = scorer.score([questions[q] for q in pair_questions[chunk]], corpus.texts[rows],
                          corpus.titles[rows] if use_titles else None,
                          progress=bar if bar is not None else False)
    usage.count("pairs_scored", len(rows))
    buffer = io.BytesIO()
    np.savez(buffer, questions=pair_questions[chunk], rows=rows, scores=scores.astype(np.float32))
    artifacts.write_bytes(_chunk_path(directory, c, count), buffer.getvalue())
    faults.after("chunk", done)
  if bar is not None:
    bar.close()
  distributed.barrier("pair scores written")  # The other processes' chunks.
  return np.concatenate([read_chunk(_chunk_path(directory, c, count))["scores"]
                         for c in range(count)])


def read_chunk(path: artifacts.PathLike) -> dict[str, np.ndarray]:
  """One chunk file: {"questions", "rows", "scores"}, a pair per position."""
  return artifacts.read_npz(path, ("questions", "rows", "scores"))

