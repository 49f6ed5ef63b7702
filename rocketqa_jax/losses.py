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


def distillation_loss(student, teacher, temperature: float = 1.0):
  """Listwise KL(teacher || student) over each query's candidates (RocketQAv2's distillation,
  static: the teacher M_C's logits are fixed inputs), mean over queries; NaN teacher entries
  (candidates M_C did not score) leave the list, and a query with fewer than two scored
  candidates counts no loss. student, teacher: [B, C] logits (student: scaled similarities).
  Returns (loss, number of queries that counted)."""
  known = jnp.isfinite(teacher)
  teacher_log = jax.nn.log_softmax(jnp.where(known, teacher / temperature, -jnp.inf), axis=-1)
  student_log = jax.nn.log_softmax(jnp.where(known, student, -jnp.inf), axis=-1)
  terms = jnp.where(known, jnp.exp(teacher_log) * (teacher_log - student_log), 0.0)
  counted = known.sum(-1) >= 2
  per_query = jnp.where(counted, terms.sum(-1), 0.0)
  return per_query.sum() / jnp.maximum(counted.sum(), 1), counted.sum()


def contrastive_loss(q, p, q_positive_ids, p_ids, teacher=None, *, scale: float = 1.0,
                     axis_name: str | None = None, cross_batch: bool = True,
                     distill_weight: float = 0.0, distill_temperature: float = 1.0):
  """Softmax cross-entropy of each query over candidate passages; returns (loss, metrics).

  q: [B, D] queries; p: [M, D] passages, p[i] the positive of q[i]; q_positive_ids: [B, K] ids of
  every labeled positive of each query (-1 pads); p_ids: [M] passage ids. A candidate that is a
  labeled positive of the query, other than the query's own slot, is masked out: it must never
  count as a negative. Inside shard_map, `axis_name` names the device axis; the returned values
  are this device's means (take a pmean for the global batch).

  `teacher` [B, 1 + h]: M_C's logits of each query's own passages (its positive, p[i], and its
  h hard negatives, p[B + i h : B + (i + 1) h]): with `distill_weight`, the loss adds that
  weight times `distillation_loss` of the query's scores over them.
  """
  num_queries, per_device = q.shape[0], p.shape[0]
  local_p = p
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
  loss = nll.mean()
  if teacher is not None and distill_weight:
    h = (per_device - num_queries) // num_queries
    own = jnp.concatenate([jnp.arange(num_queries)[:, None],
                           num_queries + jnp.arange(num_queries * h).reshape(num_queries, h)], 1)
    student = scale * jnp.einsum("bd,bcd->bc", q.astype(jnp.float32),
                                 local_p.astype(jnp.float32)[own])
    kl, _ = distillation_loss(student, teacher, distill_temperature)
    metrics["distill_kl"] = kl
    loss = loss + distill_weight * kl
  return loss, metrics


def sharded_contrastive_loss(mesh: Mesh, q, p, q_positive_ids, p_ids, teacher=None, *,
                             negatives: str, scale: float = 1.0, axis: str = "data",
                             distill_weight: float = 0.0, distill_temperature: float = 1.0):
  """The loss over the global batch: rows of every input are split over `axis` of `mesh`."""
  if negatives not in NEGATIVE_MODES:
    raise ValueError(f"negatives={negatives!r}: expected one of {NEGATIVE_MODES}")
  options = dict(scale=scale, axis_name=axis, cross_batch=negatives == "cross_batch",
                 distill_weight=distill_weight, distill_temperature=distill_temperature)

  def local(*inputs):
    return jax.lax.pmean(contrastive_loss(*inputs, **options), axis)

  inputs = (q, p, q_positive_ids, p_ids) + (() if teacher is None else (teacher,))
  fn = jax.shard_map(local, mesh=mesh, in_specs=(P(axis),) * len(inputs), out_specs=P())
  return fn(*inputs)
