"""Exact maximum-inner-product search in JAX, chunked over the corpus with a running top-k."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np


@functools.partial(jax.jit, static_argnames="k")
def _merge_chunk(best_scores, best_ids, queries, chunk, offset, valid, *, k: int):
  scores = queries @ chunk.T
  scores = jnp.where(jnp.arange(chunk.shape[0]) < valid, scores, -jnp.inf)
  ids = jnp.broadcast_to(jnp.arange(chunk.shape[0]) + offset, scores.shape)
  top_scores, top = jax.lax.top_k(jnp.concatenate([best_scores, scores], axis=1), k)
  return top_scores, jnp.take_along_axis(jnp.concatenate([best_ids, ids], axis=1), top, axis=1)


def exact_search(queries: np.ndarray, corpus: np.ndarray, k: int, *, chunk_size: int = 65536,
                 query_batch: int = 1024) -> tuple[np.ndarray, np.ndarray]:
  """Top-k corpus rows by inner product: (indices [n, k] int, scores [n, k]), best first.

  Memory is bounded by query_batch x chunk_size scores; every chunk is padded to chunk_size so
  one compiled shape serves the whole corpus.
  """
  k = min(k, len(corpus))
  chunk_size = min(chunk_size, len(corpus))
  all_ids, all_scores = [], []
  for qs in range(0, len(queries), query_batch):
    q = jnp.asarray(queries[qs:qs + query_batch])
    best_scores = jnp.full((len(q), k), -jnp.inf, q.dtype)
    best_ids = jnp.full((len(q), k), -1, jnp.int32)
    for start in range(0, len(corpus), chunk_size):
      chunk = np.asarray(corpus[start:start + chunk_size])
      valid = len(chunk)
      if valid < chunk_size:
        chunk = np.pad(chunk, ((0, chunk_size - valid), (0, 0)))
      best_scores, best_ids = _merge_chunk(best_scores, best_ids, q, chunk, start, valid, k=k)
    all_ids.append(np.asarray(best_ids))
    all_scores.append(np.asarray(best_scores))
  return np.concatenate(all_ids), np.concatenate(all_scores)
