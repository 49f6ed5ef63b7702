"""Contrastive loss of a dual encoder with in-batch or cross-batch (all-gathered) negatives.

Layout of one device's passages: [its B queries' positives; their hard negatives], so the
positive of local query i is local passage i. With cross-batch negatives, passages from every
device are all-gathered (tiled, in device order) and local query i on device r is labeled
r * M + i, where M is the passages per device (RocketQA's r * 2B + i with one negative each).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from jax.sharding import Mesh, PartitionSpec as P

NEGATIVE_MODES = ("in_batch", "cross_batch")


def contrastive_loss(q, p, q_positive_ids, p_ids, *, scale: float = 1.0,
                     axis_name: str | None = None, cross_batch: bool = True,
                     symmetric: bool = False):
  """Softmax cross-entropy of each query over candidate passages; returns (loss, metrics).

  q: [B, D] queries; p: [M, D] passages, p[i] the positive of q[i]; q_positive_ids: [B, K] ids of
  every labeled positive of each query (-1 pads); p_ids: [M] passage ids. A candidate that is a
  labeled positive of the query, other than the query's own slot, is masked out: it must never
  count as a negative. Inside shard_map, `axis_name` names the device axis; the returned values
  are this device's means (take a pmean for the global batch). `symmetric` averages in the
  passage-to-query direction: each query's own positive against every query of the batch.
  """
  num_queries, per_device = q.shape[0], p.shape[0]
  own_p, own_ids = p[:num_queries], p_ids[:num_queries]
  labels = q_labels = jnp.arange(num_queries)
  all_q, all_q_positive_ids = q, q_positive_ids
  if axis_name is not None and cross_batch:
    p = jax.lax.all_gather(p, axis_name, tiled=True)
    p_ids = jax.lax.all_gather(p_ids, axis_name, tiled=True)
    labels = labels + jax.lax.axis_index(axis_name) * per_device
    if symmetric:
      all_q = jax.lax.all_gather(q, axis_name, tiled=True)
      all_q_positive_ids = jax.lax.all_gather(q_positive_ids, axis_name, tiled=True)
      q_labels = q_labels + jax.lax.axis_index(axis_name) * num_queries
  scores, false_negative, nll = _masked_nll(
      q, p, labels, _is_positive(p_ids, q_positive_ids), scale)
  loss = nll.mean()
  if symmetric:  # Rows are own positives, columns queries; other askers of a passage masked.
    _, _, p_nll = _masked_nll(own_p, all_q, q_labels,
                              _is_positive(own_ids, all_q_positive_ids).T, scale)
    loss = (loss + p_nll.mean()) / 2
  metrics = {
      "accuracy": (jnp.argmax(scores, axis=-1) == labels).mean(),
      "negatives_per_query": (p.shape[0] - 1 - false_negative.sum(-1)).mean().astype(jnp.float32),
  }
  return loss, metrics


def _is_positive(ids, positive_ids):
  """[N, C]: whether ids[c] is among the labeled positives positive_ids[n] (-1 pads)."""
  return ((ids[None, :, None] == positive_ids[:, None, :]) & (positive_ids[:, None, :] >= 0)).any(-1)


def _masked_nll(rows, cols, labels, is_positive, scale):
  """Scores of rows against cols, positives other than each row's label masked to -inf, and
  each row's negative log-likelihood of its label."""
  scores = scale * jnp.dot(rows.astype(jnp.float32), cols.astype(jnp.float32).T)
  false_negative = is_positive & (jnp.arange(cols.shape[0])[None, :] != labels[:, None])
  scores = jnp.where(false_negative, -jnp.inf, scores)
  log_probs = jax.nn.log_softmax(scores, axis=-1)
  return scores, false_negative, -jnp.take_along_axis(log_probs, labels[:, None], axis=-1)[:, 0]


def sharded_contrastive_loss(mesh: Mesh, q, p, q_positive_ids, p_ids, *, negatives: str,
                             scale: float = 1.0, symmetric: bool = False, axis: str = "data"):
  """The loss over the global batch: rows of every input are split over `axis` of `mesh`."""
  if negatives not in NEGATIVE_MODES:
    raise ValueError(f"negatives={negatives!r}: expected one of {NEGATIVE_MODES}")

  def local(q, p, q_positive_ids, p_ids):
    out = contrastive_loss(q, p, q_positive_ids, p_ids, scale=scale, axis_name=axis,
                           cross_batch=negatives == "cross_batch", symmetric=symmetric)
    return jax.lax.pmean(out, axis)

  fn = jax.shard_map(local, mesh=mesh, in_specs=(P(axis),) * 4, out_specs=P())
  return fn(q, p, q_positive_ids, p_ids)
