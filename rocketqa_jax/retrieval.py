"""Top-k maximum-inner-product search, one interface: `index.search(queries, k) -> (ids, scores)`.

`ExactIndex` is exact search in JAX: the corpus is split over the devices of a mesh, each device
scans its rows in fixed-size chunks keeping a running top-k, and the per-device top-k are
all-gathered and merged. `ScannIndex` is approximate search with ScaNN (tree + asymmetric hashing
+ exact reordering), its parameters chosen from the corpus size by `scann_params`.

Across hosts (`search_divided`), each process indexes only its own share of the corpus, searches
every query in it and the per-process top-k lists are gathered and merged (`merge_top_k`): the
same top-k as one search over the whole corpus, with no host holding all of it.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import logging
import math
import os
import pathlib
import time
from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import NamedSharding, PartitionSpec as P

from rocketqa_jax import sharding, usage

log = logging.getLogger(__name__)
INDEXES = ("exact", "scann")  # config.mine.index, config.eval.index, search --index.
SCANN_MISSING = ("index=scann needs ScaNN, which is not installed: pip install 'rocketqa_jax[scann]' "
                 "(ScaNN ships x86-64 Linux wheels only), or use index=exact")


def scann_available() -> bool:
  """Whether ScaNN can be imported (an optional dependency: exact search needs nothing)."""
  return importlib.util.find_spec("scann") is not None


def _import_scann():
  if not scann_available():
    raise ImportError(SCANN_MISSING)
  import scann
  return scann


def _ids(ids: Sequence[str] | np.ndarray | None, n: int | None) -> np.ndarray:
  """Passage ids as an array; without ids, the corpus rows 0..n-1 as int64 (8 bytes a passage,
  not a Python int object's 36 bytes: 216 MB for a host's 6M NQ passages)."""
  return np.arange(n) if ids is None else np.asarray(ids, dtype=object)


def _merge_top_k(scores, ids, new_scores, new_ids, k):
  top, pos = jax.lax.top_k(jnp.concatenate([scores, new_scores], axis=1), k)
  return top, jnp.take_along_axis(jnp.concatenate([ids, new_ids], axis=1), pos, axis=1)


def _local_top_k(queries, corpus, valid, *, k: int, chunk: int, axis: str):
  """One device: scan its corpus rows chunk by chunk; then merge every device's top-k."""
  rows = corpus.shape[0]
  offset = jax.lax.axis_index(axis) * rows

  def body(carry, start):
    block = jax.lax.dynamic_slice_in_dim(corpus, start, chunk)
    row_ids = offset + start + jnp.arange(chunk)
    scores = queries @ block.T
    scores = jnp.where(row_ids < valid, scores, -jnp.inf)
    ids = jnp.broadcast_to(row_ids, scores.shape)
    return _merge_top_k(*carry, scores, ids, k), None

  init = (jnp.full((len(queries), k), -jnp.inf, queries.dtype),
          jnp.full((len(queries), k), -1, jnp.int32))
  (scores, ids), _ = jax.lax.scan(body, init, jnp.arange(0, rows, chunk))
  scores = jax.lax.all_gather(scores, axis, axis=1, tiled=True)
  ids = jax.lax.all_gather(ids, axis, axis=1, tiled=True)
  top, pos = jax.lax.top_k(scores, k)
  return top, jnp.take_along_axis(ids, pos, axis=1)


class ExactIndex:
  """Exact inner-product search; the corpus is sharded over the mesh's data axis."""

  def __init__(self, embeddings: np.ndarray, ids: Sequence[str] | None = None, *,
               mesh=None, chunk_size: int = 16384, query_batch: int = 1024):
    self.mesh = mesh or sharding.make_mesh(devices=jax.local_devices())
    self.ids = _ids(ids, len(embeddings))
    n, devices = len(embeddings), self.mesh.size
    per_device = math.ceil(n / devices)
    self.chunk = min(chunk_size, max(per_device, 1))
    per_device = math.ceil(per_device / self.chunk) * self.chunk
    padded = np.zeros((per_device * devices, embeddings.shape[1]), embeddings.dtype)
    padded[:n] = embeddings
    self.size, self.query_batch = n, query_batch
    self.corpus = jax.device_put(padded, NamedSharding(self.mesh, P(sharding.DATA)))
    self._search = {}

  def _fn(self, k: int):
    if k not in self._search:
      local = functools.partial(_local_top_k, k=k, chunk=self.chunk, axis=sharding.DATA)
      self._search[k] = jax.jit(jax.shard_map(
          local, mesh=self.mesh, in_specs=(P(), P(sharding.DATA), P()), out_specs=(P(), P()),
          check_vma=False))
    return self._search[k]

  def search_rows(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(corpus rows [n, k], scores [n, k]), best first."""
    k = min(k, self.size)
    rows, scores = [], []
    for s in range(0, len(queries), self.query_batch):
      q = np.asarray(queries[s:s + self.query_batch])
      q = np.pad(q, ((0, self.query_batch - len(q)), (0, 0))) if len(queries) > len(q) else q
      top, ids = self._fn(k)(q, self.corpus, self.size)
      n = min(self.query_batch, len(queries) - s)
      rows.append(np.asarray(ids)[:n])
      scores.append(np.asarray(top)[:n])
    return np.concatenate(rows), np.concatenate(scores)

  def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    rows, scores = self.search_rows(queries, k)
    return self.ids[rows], scores


def exact_search(queries: np.ndarray, corpus: np.ndarray, k: int, **kwargs):
  """(rows [n, k], scores [n, k]) of the top-k corpus rows by inner product."""
  return ExactIndex(corpus, **kwargs).search_rows(queries, k)


def scann_params(n: int, k: int = 10) -> dict:
  """ScaNN's settings for a corpus of n vectors (the rule of ScaNN's own guidance):

  - n < 20,000: brute force (exact; partitioning would not pay off);
  - else a k-means tree with round(sqrt(n)) leaves, searching 5% of them (at least 10);
    asymmetric hashing with 2 dimensions per block and anisotropic threshold 0.2 (for MIPS);
    the best max(100, 10k) candidates re-scored exactly; trained on at most 250,000 vectors.
  """
  if n < 20_000:
    return {"mode": "brute_force"}
  leaves = max(2, round(math.sqrt(n)))
  return {"mode": "tree_ah", "num_leaves": leaves,
          "num_leaves_to_search": min(leaves, max(10, math.ceil(0.05 * leaves))),
          "training_sample_size": min(n, 250_000), "dims_per_block": 2,
          "anisotropic_quantization_threshold": 0.2, "reorder": max(100, 10 * k)}


class ScannIndex:
  """Approximate search with ScaNN; `save`/`load` keep the searcher and the ids together."""

  def __init__(self, searcher, ids: np.ndarray, params: dict):
    self.searcher, self.ids, self.params = searcher, ids, params

  @classmethod
  def build(cls, embeddings: np.ndarray, ids: Sequence[str] | None = None, *, k: int = 10,
            params: dict | None = None) -> ScannIndex:
    scann = _import_scann()
    embeddings = np.ascontiguousarray(embeddings, dtype=np.float32)
    params = params or scann_params(len(embeddings), k)
    builder = scann.scann_ops_pybind.builder(embeddings, k, "dot_product")
    if params["mode"] == "brute_force":
      builder = builder.score_brute_force()
    else:
      builder = builder.tree(num_leaves=params["num_leaves"],
                             num_leaves_to_search=params["num_leaves_to_search"],
                             training_sample_size=params["training_sample_size"]).score_ah(
          params["dims_per_block"],
          anisotropic_quantization_threshold=params["anisotropic_quantization_threshold"])
      if params["reorder"]:  # 0: hashed scores only, no exact re-scoring.
        builder = builder.reorder(params["reorder"])
    return cls(builder.build(), _ids(ids, len(embeddings)), params)

  def search_rows(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    k = min(k, len(self.ids))
    rows, scores = self.searcher.search_batched(np.asarray(queries, np.float32),
                                                final_num_neighbors=k)
    return rows.astype(np.int64), scores

  def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    rows, scores = self.search_rows(queries, k)
    return self.ids[rows], scores

  def save(self, directory: str | os.PathLike) -> None:
    directory = pathlib.Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    self.searcher.serialize(str(directory))
    (directory / "rocketqa_index.json").write_text(
        json.dumps({"params": self.params, "ids": [str(i) for i in self.ids]}))

  @classmethod
  def load(cls, directory: str | os.PathLike) -> ScannIndex:
    scann = _import_scann()
    meta = json.loads((pathlib.Path(directory) / "rocketqa_index.json").read_text())
    return cls(scann.scann_ops_pybind.load_searcher(str(directory)), _ids(meta["ids"], None),
               meta["params"])


def build_index(kind: str, embeddings: np.ndarray, ids: Sequence[str] | None = None, *,
                k: int = 10) -> ExactIndex | ScannIndex | None:
  """An index of `kind` ("exact" or "scann", tuned for `k` neighbours) over the embeddings;
  None for no embeddings (a process whose share of the corpus is empty)."""
  if kind not in INDEXES:
    raise ValueError(f"index={kind!r}: expected one of {INDEXES}")
  if not len(embeddings):
    return None
  start = time.perf_counter()
  index = ExactIndex(embeddings, ids) if kind == "exact" else ScannIndex.build(embeddings, ids, k=k)
  usage.count("passages_indexed", len(embeddings))
  usage.count("index_build_seconds", time.perf_counter() - start)
  return index


def merge_top_k(rows: np.ndarray, scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
  """Top-k lists of several parts of a corpus, [parts, queries, k_part] (row -1, score -inf:
  no passage), -> the top-k of their union, [queries, k], best first (a tie keeps the earlier
  part's first)."""
  parts, queries, width = rows.shape
  rows = rows.transpose(1, 0, 2).reshape(queries, parts * width)
  scores = scores.transpose(1, 0, 2).reshape(queries, parts * width)
  best = np.argsort(-scores, axis=1, kind="stable")[:, :k]
  return np.take_along_axis(rows, best, 1), np.take_along_axis(scores, best, 1)


def search_divided(index: ExactIndex | ScannIndex | None, rows: np.ndarray, queries: np.ndarray,
                   k: int, total: int, *, query_block: int = 65_536
                   ) -> tuple[np.ndarray, np.ndarray]:
  """(corpus rows [n, min(k, total)], scores), best first, over a corpus of `total` passages
  whose share on this process is `index` (None: an empty share) over the corpus rows `rows`.

  Every process calls it with the same queries. Each searches all of them in its own share
  (what is divided is the corpus, the part that does not fit one host; the queries are small,
  and the search work is the same queries x passages as one global search); then each block
  of `query_block` queries' per-process top-k, [queries, k] rows and scores, are all-gathered
  and merged into the global top-k. Rows are int32 corpus rows (-1 past the corpus's end)."""
  k = min(k, total)
  out_rows, out_scores = [], []
  for start in range(0, len(queries), query_block):
    block = np.asarray(queries[start:start + query_block])
    local_rows = np.full((len(block), k), -1, np.int32)
    local_scores = np.full((len(block), k), -np.inf, np.float32)
    if index is not None and len(rows):
      found, found_scores = index.search_rows(block, k)
      local_rows[:, :found.shape[1]] = rows[found]
      local_scores[:, :found.shape[1]] = found_scores
    usage.count("queries_searched", len(block))
    if jax.process_count() > 1:
      local_rows, local_scores = multihost_utils.process_allgather((local_rows, local_scores))
    else:
      local_rows, local_scores = local_rows[None], local_scores[None]
    merged = merge_top_k(local_rows, local_scores, k)
    out_rows.append(merged[0])
    out_scores.append(merged[1])
  if not out_rows:
    return np.zeros((0, k), np.int32), np.zeros((0, k), np.float32)
  return np.concatenate(out_rows), np.concatenate(out_scores)


def recall_against_exact(approx_rows: np.ndarray, exact_rows: np.ndarray) -> float:
  """Mean fraction of the exact top-k that the approximate top-k found (recall@k vs exact)."""
  k = exact_rows.shape[1]
  return float(np.mean([len(set(a[:k]) & set(e)) / k for a, e in zip(approx_rows, exact_rows)]))
