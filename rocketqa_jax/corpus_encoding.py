"""Embedding a corpus in fixed-size shards that survive interruption.

Shard s holds corpus rows [s x shard_size, (s + 1) x shard_size); process p encodes the shards
with s % process_count == p on its own devices. A shard is written to a temp file and renamed,
so a file that exists is complete: an interrupted run skips them and encodes only the rest.
`manifest.json` records what the shards were made from; reusing the folder for another model or
corpus fails instead of mixing embeddings.
"""

from __future__ import annotations

import io
import json
import math

import jax
import numpy as np
from etils import epath

from rocketqa_jax import artifacts, distributed
from rocketqa_jax.artifacts import PathLike
from rocketqa_jax.data.types import Corpus
from rocketqa_jax.encoder import Encoder


def _shard_path(directory: epath.Path, shard: int, count: int) -> epath.Path:
  return directory / f"shard-{shard:05d}-of-{count:05d}.npz"


def encode_corpus(encoder: Encoder, corpus: Corpus, directory: PathLike, *,
                  use_titles: bool = False, shard_size: int = 100_000,
                  progress: bool = True) -> epath.Path:
  """Writes this process's missing shards of `corpus` embedded by `encoder` into `directory`
  (local or gs://)."""
  directory = artifacts.path(directory)
  count = max(1, math.ceil(len(corpus) / shard_size))
  manifest = {"passages": len(corpus), "shard_size": shard_size, "shards": count,
              "dim": encoder.dim, "use_titles": use_titles,
              "encoder": encoder.fingerprint(),
              "first_id": corpus.ids[0] if len(corpus) else None,
              "last_id": corpus.ids[-1] if len(corpus) else None}
  manifest_path = directory / "manifest.json"
  if manifest_path.exists():
    found = json.loads(manifest_path.read_text())
    if found != manifest:
      raise ValueError(f"{manifest_path} describes other shards ({found}) than this run "
                       f"({manifest}); use an empty folder")
  elif jax.process_index() == 0:
    artifacts.write_json(manifest_path, manifest)
  mine = [s for s in range(count) if s % jax.process_count() == jax.process_index()]
  todo = [s for s in mine if not _shard_path(directory, s, count).exists()]
  bar = None
  if progress and todo:
    from tqdm.auto import tqdm
    total = sum(min(len(corpus), (s + 1) * shard_size) - s * shard_size for s in todo)
    bar = tqdm(total=total, desc="encoding corpus", unit="passages", dynamic_ncols=True)
  for s in todo:
    rows = slice(s * shard_size, min(len(corpus), (s + 1) * shard_size))
    tokens = encoder.tokenizer.tokenize_passages(corpus.texts[rows],
                                                 corpus.titles[rows] if use_titles else None)
    embeddings = encoder.encode_tokens(tokens, encoder.tokenizer.passage_max_length,
                                       progress=bar if bar is not None else False,
                                       unit="passages")
    ids = np.asarray(corpus.ids[rows])
    buffer = io.BytesIO()
    np.savez(buffer, embeddings=embeddings, ids=ids)
    artifacts.write_bytes(_shard_path(directory, s, count), buffer.getvalue())
  if bar is not None:
    bar.close()
  return directory


def load_corpus_embeddings(directory: PathLike) -> tuple[np.ndarray, np.ndarray]:
  """(embeddings [n, d] float32, ids [n]) of every shard, in corpus order."""
  directory = artifacts.path(directory)
  manifest = json.loads((directory / "manifest.json").read_text())
  paths = [_shard_path(directory, s, manifest["shards"]) for s in range(manifest["shards"])]
  missing = [p.name for p in paths if not p.exists()]
  if missing:
    raise FileNotFoundError(f"{directory}: {len(missing)} shards not encoded yet ({missing[:3]})")
  parts = [np.load(io.BytesIO(p.read_bytes())) for p in paths]
  return (np.concatenate([p["embeddings"] for p in parts]),
          np.concatenate([p["ids"] for p in parts]))


def corpus_embeddings(encoder: Encoder, corpus: Corpus, directory: PathLike, *,
                      use_titles: bool = False, shard_size: int = 100_000,
                      progress: bool = True) -> tuple[np.ndarray, np.ndarray]:
  """encode_corpus, then every shard loaded: what mining, eval and search search over."""
  encode_corpus(encoder, corpus, directory, use_titles=use_titles, shard_size=shard_size,
                progress=progress)
  distributed.barrier("corpus shards encoded")  # Other processes' shards.
  return load_corpus_embeddings(directory)
