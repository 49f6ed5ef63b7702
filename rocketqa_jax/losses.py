"""Contrastive loss of a dual encoder with in-batch or cross-batch (all-gathered) negatives.

Layout of one device's passages: [its B queries' positives; their hard negatives], so the
positive of local query i is local passage i. With cross-batch negatives, passages from every
device are all-gathered (tiled, in device order) and local query i on device r is labeled
r * M + i, where M is the passages per device (RocketQA's r * 2B + i with one negative each).
"""

from __future__ import annotations


import jax
import jax.numpy as jnp
from jax.sharding import Mesh, PartitionSpec as P

NEGATIVE_MODES = ("in_batch", "cross_batch")


def contrastive_loss(q, p, q_positive_ids, p_ids, *, scale: float = 1.0,
                     axis_name: str | None = None, cross_batch: bool = True):
  """Softmax cross-entropy of each query over candidate passages; returns (loss, metrics).

  q: [B, D] queries; p: [M, D] passages, p[i] the positive of q[i]; q_positive_ids: [B, K] ids of
  every labeled positive of each query (-1 pads); p_ids: [M] passage ids. A candidate that is a
  labeled positive of the query, other than the query's own slot, is masked out: it must never
  count as a negative. Inside shard_map, `axis_name` names the device axis; the returned values
  are this device's means (take a pmean for the global batch).
  """
  num_queries, per_device = q.shape[0], p.shape[0]
  labels = jnp.arange(num_queries)
  if axis_name is not None and cross_batch:
    p = jax.lax.all_gather(p, axis_name, tiled=True)
    p_ids = jax.lax.all_gather(p_ids, axis_name, tiled=True)
    labels += jax.lax.axis_index(axis_name) * per_device
  scores = scale * jnp.dot(q.astype(jnp.float32), p.astype(jnp.float32).T)
  is_positive = ((p_ids[None, :, None] == q_positive_ids[:, None, :])
                 & (q_positive_ids[:, None, :] >= 0)).any(-1)
  own_slot = jnp.arange(p.shape[0])[None, :] == labels[:, None]
  false_negative = is_positive & ~own_slot
  scores = jnp.where(false_negative, -jnp.inf, scores)
  log_probs = jax.nn.log_softmax(scores, axis=-1)
  nll = -jnp.take_along_axis(log_probs, labels[:, None], axis=-1)[:, 0]
  metrics = {
      "accuracy": (jnp.argmax(scores, axis=-1) == labels).mean(),
      "negatives_per_query": (p.shape[0] - 1 - false_negative.sum(-1)).mean().astype(jnp.float32),
  }
  return nll.mean(), metrics


def sharded_contrastive_loss(mesh: Mesh, q, p, q_positive_ids, p_ids, *, negatives: str,
                             scale: float = 1.0, axis: str = "data"):
  """The loss over the global batch: rows of every input are split over `axis` of `mesh`."""
  if negatives not in NEGATIVE_MODES:
    raise ValueError(f"negatives={negatives!r}: expected one of {NEGATIVE_MODES}")

  def local(q, p, q_positive_ids, p_ids):
    out = contrastive_loss(q, p, q_positive_ids, p_ids, scale=scale, axis_name=axis,
                           cross_batch=negatives == "cross_batch")
    return jax.lax.pmean(out, axis)

  fn = jax.shard_map(local, mesh=mesh, in_specs=(P(axis),) * 4, out_specs=P())
  return fn(q, p, q_positive_ids, p_ids)
