"""Cross-batch loss on 8 devices against a single-device reference over the global batch."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rocketqa_jax.losses import contrastive_loss, sharded_contrastive_loss
from rocketqa_jax.sharding import make_mesh

DEVICES, B, D = 8, 3, 16


def _inputs(hard, seed=0):
  """Global batch in device-block layout; some passage ids repeat across devices."""
  rng = np.random.default_rng(seed)
  m = B * (1 + hard)
  q = rng.normal(size=(DEVICES * B, D)).astype(np.float32)
  p = rng.normal(size=(DEVICES * m, D)).astype(np.float32)
  p_ids = rng.permutation(1000)[:DEVICES * m].astype(np.int32).reshape(DEVICES, m)
  positives = p_ids[:, :B].copy()
  if hard:  # Device 5's first negative is the positive of device 1's query 2: a false negative.
    p_ids[5, B] = positives[1, 2]
  q_pos = np.stack([positives.reshape(-1), np.full(DEVICES * B, -1)], 1).astype(np.int32)
  q_pos[4, 1] = p_ids[6, 0]  # Query 4 has a second labeled positive elsewhere in the batch.
  return q, p, q_pos, p_ids.reshape(-1)


def reference_loss(q, p, q_pos, p_ids, m):
  """Every query against every passage of the global batch, no devices involved."""
  scores = q @ p.T
  labels = np.array([(g // B) * m + g % B for g in range(len(q))])
  positive = (p_ids[None, :, None] == q_pos[:, None, :]).any(-1) & (q_pos[:, None, :] >= 0).any(-1)
  mask = positive & (np.arange(len(p))[None] != labels[:, None])
  scores = jnp.where(mask, -jnp.inf, scores)
  logp = jax.nn.log_softmax(scores, axis=-1)
  return -logp[np.arange(len(q)), labels].mean(), int(mask.sum())


@pytest.mark.parametrize("hard", [0, 2])
def test_cross_batch_loss_and_grads_equal_global_reference(hard):
  q, p, q_pos, p_ids = _inputs(hard)
  m = B * (1 + hard)
  mesh = make_mesh()
  assert mesh.size == DEVICES

  def sharded(q, p):
    return sharded_contrastive_loss(mesh, q, p, q_pos, p_ids, negatives="cross_batch")[0]

  loss, grads = jax.jit(jax.value_and_grad(sharded, argnums=(0, 1)))(q, p)
  ref_fn = lambda q, p: reference_loss(q, p, q_pos, p_ids, m)[0]
  ref_loss, ref_grads = jax.value_and_grad(ref_fn, argnums=(0, 1))(q, p)
  assert reference_loss(q, p, q_pos, p_ids, m)[1] == (2 if hard else 1)  # Masks were exercised.
  np.testing.assert_allclose(loss, ref_loss, rtol=1e-5)
  for g, r in zip(grads, ref_grads):
    np.testing.assert_allclose(g, r, rtol=1e-5, atol=1e-7)
  _, metrics = sharded_contrastive_loss(mesh, q, p, q_pos, p_ids, negatives="cross_batch")
  expected_negatives = DEVICES * m - 1 - reference_loss(q, p, q_pos, p_ids, m)[1] / len(q)
  np.testing.assert_allclose(metrics["negatives_per_query"], expected_negatives, rtol=1e-6)


def test_in_batch_loss_is_the_mean_of_per_device_losses():
  hard = 1
  q, p, q_pos, p_ids = _inputs(hard, seed=1)
  m = B * (1 + hard)
  mesh = make_mesh()
  loss, metrics = jax.jit(lambda q, p: sharded_contrastive_loss(
      mesh, q, p, q_pos, p_ids, negatives="in_batch"))(q, p)
  per_device = [contrastive_loss(q[d * B:(d + 1) * B], p[d * m:(d + 1) * m],
                                 q_pos[d * B:(d + 1) * B], p_ids[d * m:(d + 1) * m])[0]
                for d in range(DEVICES)]
  np.testing.assert_allclose(loss, np.mean(per_device), rtol=1e-5)
  assert float(metrics["negatives_per_query"]) <= m - 1


def test_unknown_negative_mode():
  with pytest.raises(ValueError, match="in_batch"):
    sharded_contrastive_loss(make_mesh(), *_inputs(0), negatives="global")


def reference_distillation(q, p, teacher, scale, temperature, hard):
  """Per device and query: KL(softmax(teacher / T) || softmax(scale q.p)) over the query's own
  passages (its positive and its hard negatives) M_C scored; mean over queries with >= 2."""
  m, kls = B * (1 + hard), []
  for g in range(len(q)):
    d, i = divmod(g, B)
    own = [d * m + i] + [d * m + B + i * hard + j for j in range(hard)]
    t, s = teacher[g], scale * p[own] @ q[g]
    known = np.isfinite(t)
    if known.sum() < 2:
      continue
    t, s = t[known] / temperature, s[known]
    pt = np.exp(t - t.max()) / np.exp(t - t.max()).sum()
    log_ps = s - s.max() - np.log(np.exp(s - s.max()).sum())
    kls.append(float((pt * (np.log(pt) - log_ps)).sum()))
  return np.mean(kls), len(kls)


def test_distillation_term_on_8_devices_matches_the_reference():
  hard, scale, temperature, weight = 2, 20.0, 2.0, 0.5
  q, p, q_pos, p_ids = _inputs(hard, seed=3)
  q /= np.linalg.norm(q, axis=1, keepdims=True)
  p /= np.linalg.norm(p, axis=1, keepdims=True)
  teacher = np.random.default_rng(4).normal(size=(DEVICES * B, 1 + hard)).astype(np.float32) * 3
  teacher[0, 1] = np.nan  # A random top-up: M_C never scored it.
  teacher[1, 1:] = np.nan  # Only the positive scored: that query counts no KL.
  mesh = make_mesh()
  plain, _ = sharded_contrastive_loss(mesh, q, p, q_pos, p_ids, negatives="cross_batch",
                                      scale=scale)
  distilled, metrics = jax.jit(lambda q, p, t: sharded_contrastive_loss(
      mesh, q, p, q_pos, p_ids, t, negatives="cross_batch", scale=scale, distill_weight=weight,
      distill_temperature=temperature))(q, p, teacher)
  # pmean over devices of each device's mean over its counted queries.
  per_device = [reference_distillation(q[d * B:(d + 1) * B], p[d * B * (1 + hard):
                                                                 (d + 1) * B * (1 + hard)],
                                       teacher[d * B:(d + 1) * B], scale, temperature, hard)[0]
                for d in range(DEVICES)]
  np.testing.assert_allclose(metrics["distill_kl"], np.mean(per_device), rtol=1e-4)
  np.testing.assert_allclose(distilled, plain + weight * np.mean(per_device), rtol=1e-4)
  assert reference_distillation(q, p, teacher, scale, temperature, hard)[1] == DEVICES * B - 1
  # Its gradient pulls the student towards the teacher: one step lowers the KL.
  kl = lambda q: sharded_contrastive_loss(mesh, q, p, q_pos, p_ids, teacher,
                                          negatives="in_batch", scale=scale, distill_weight=1.0,
                                          distill_temperature=temperature)[1]["distill_kl"]
  grad = jax.grad(kl)(q)
  assert float(kl(q - 0.01 * grad)) < float(kl(q))
