"""Embedding a corpus in fixed-size shards that survive interruption.

Shard s holds corpus rows [s x shard_size, (s + 1) x shard_size); process p encodes the shards
with s % process_count == p on its own devices, and searches them (`load_shards`, then
retrieval.search_divided): no process ever holds the whole corpus's embeddings. A shard is
written to a temp file and renamed, so a file that exists is complete: an interrupted run skips
them and encodes only the rest. `manifest.json` records what the shards were made from; reusing
the folder for another model or corpus fails instead of mixing embeddings.
"""

from __future__ import annotations

import io
import json
import math
from typing import Sequence

import jax
import numpy as np
from etils import epath

from rocketqa_jax import artifacts, distributed, faults, usage
from rocketqa_jax.artifacts import PathLike
from rocketqa_jax.data.corpus import Corpus
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
  todo = [s for s in process_shards(count) if not _shard_path(directory, s, count).exists()]
  bar = None
  if progress and todo:
    from tqdm.auto import tqdm
    total = sum(min(len(corpus), (s + 1) * shard_size) - s * shard_size for s in todo)
    bar = tqdm(total=total, desc="encoding corpus", unit="passages", dynamic_ncols=True)
  for done, s in enumerate(todo, 1):
    rows = slice(s * shard_size, min(len(corpus), (s + 1) * shard_size))
    tokens = encoder.tokenizer.tokenize_passages(corpus.texts[rows],
                                                 corpus.titles[rows] if use_titles else None)
    embeddings = encoder.encode_tokens(tokens, encoder.tokenizer.passage_max_length,
                                       progress=bar if bar is not None else False,
                                       unit="passages")
    usage.count("passages_encoded", len(tokens))
    ids = np.asarray(corpus.ids[rows])
    buffer = io.BytesIO()
    np.savez(buffer, embeddings=embeddings, ids=ids)
    artifacts.write_bytes(_shard_path(directory, s, count), buffer.getvalue())
    faults.after("shard", done)
  if bar is not None:
    bar.close()
  return directory


def process_shards(count: int) -> list[int]:
  """The shards (of `count`) this process encodes and searches: s % process_count == index."""
  return list(range(jax.process_index(), count, jax.process_count()))


def load_shards(directory: PathLike, shards: Sequence[int] | None = None
                ) -> tuple[np.ndarray, np.ndarray]:
  """(embeddings [n, d] float32, corpus rows [n] int64) of `shards` (default: this process's
  own), in corpus order, read into one preallocated array (no second copy while loading)."""
  directory = artifacts.path(directory)
  manifest = json.loads((directory / "manifest.json").read_text())
  count, size, total = manifest["shards"], manifest["shard_size"], manifest["passages"]
  shards = process_shards(count) if shards is None else list(shards)
  paths = [_shard_path(directory, s, count) for s in shards]
  missing = [p.name for p in paths if not p.exists()]
  if missing:
    raise FileNotFoundError(f"{directory}: {len(missing)} shards not encoded yet ({missing[:3]})")
  rows = np.concatenate([np.arange(s * size, min(total, (s + 1) * size)) for s in shards]
                        ) if shards else np.zeros(0, np.int64)
  embeddings = np.empty((len(rows), manifest["dim"]), np.float32)
  start = 0
  for p in paths:
    part = artifacts.read_npz(p, ("embeddings",))["embeddings"]
    embeddings[start:start + len(part)] = part
    start += len(part)
  usage.count("shards_loaded", len(shards))
  return embeddings, rows


def corpus_embeddings(encoder: Encoder, corpus: Corpus, directory: PathLike, *,
                      use_titles: bool = False, shard_size: int = 100_000,
                      progress: bool = True, every_shard: bool = False
                      ) -> tuple[np.ndarray, np.ndarray]:
  """encode_corpus, then (embeddings, corpus rows) of this process's shards, which
  retrieval.search_divided searches; with `every_shard`, of the whole corpus (one process
  searching alone: `search`)."""
  encode_corpus(encoder, corpus, directory, use_titles=use_titles, shard_size=shard_size,
                progress=progress)
  distributed.barrier("corpus shards encoded")  # The manifest, and for every_shard the others'.
  if every_shard:
    count = artifacts.read_json(artifacts.path(directory) / "manifest.json")["shards"]
    return load_shards(directory, range(count))
  return load_shards(directory)
