"""Kernels tuned for XLA:CPU, behind one switch: `model.cpu_kernels` ("auto": on for CPU
backends only). `bert.py` reads as a reference BERT (flax `nn.Dropout`, `jax.nn.gelu`,
`jax.nn.dot_product_attention`, autodiff of mixed-precision products); with the switch on, the
same parameters run through these instead. Each gives the same function (tested to 1e-5 on
embeddings in tests/test_cpu_kernels.py) and was measured on 2-core CPUs (docs/benchmarks.md):

- `Dropout`: 8 random bits per unit instead of 32 (threefry's bits were 43% of a training step).
- `gelu`: exact GELU through erf (jax.nn.gelu goes through erfc: 3x slower on CPU, within 1e-6).
- `attention`: heads-major layout (XLA:CPU's batched products 2.5x faster) and softmax normalized
  after the product with the values (one pass less over [b, h, q, k]: 15% of the forward).
- `einsum`: bfloat16 products whose gradients are bfloat16 products too (a custom VJP; autodiff
  would give float32 x bfloat16 products, which run at the float32 rate), a Dense kernel's
  gradient reading a real transpose (a folded one runs at a quarter of the rate).

On accelerators these would hide the cuDNN / TPU attention kernels and gain nothing.
"""

from __future__ import annotations

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

SETTINGS = ("auto", "on", "off")


def resolve(setting: str, device: jax.Device | None = None) -> bool:
  """"auto": on where `device` (default: the first) is a CPU; "on" / "off" as said."""
  if setting not in SETTINGS:
    raise ValueError(f"cpu_kernels={setting!r}: expected one of {SETTINGS}")
  if setting == "auto":
    return (device or jax.devices()[0]).platform == "cpu"
  return setting == "on"


class Dropout(nn.Module):
  """`nn.Dropout` drawing 8 random bits per unit instead of 32.

  One 32-bit draw split into 4 bytes makes a quarter of the bits. The rate is rounded to a
  multiple of 1/256 (0.1 -> 0.1016) and kept units are scaled by the rounded rate, so the
  expectation is exact. Bits come from the unsharded shape's counters (threefry is
  partitionable), so any sharding draws the same mask.
  """
  rate: float

  @nn.compact
  def __call__(self, x: jax.Array, deterministic: bool) -> jax.Array:
    drop = round(self.rate * 256)
    if deterministic or drop == 0:
      return x
    *rows, width = x.shape
    words = jax.random.bits(self.make_rng("dropout"), (*rows, -(-width // 4)), jnp.uint32)
    byte = jax.lax.bitcast_convert_type(words, jnp.uint8).reshape(*rows, -1)[..., :width]
    return jnp.where(byte >= drop, x / (1 - drop / 256), 0).astype(x.dtype)


def gelu(x: jax.Array) -> jax.Array:
  """Exact GELU through erf; differs from jax.nn.gelu(approximate=False) by < 1e-6 (largest at
  large negative x, where both are ~0)."""
  return 0.5 * x * (1 + jax.lax.erf(x * np.float32(0.5 ** 0.5)).astype(x.dtype))


def attention(q, k, v, mask, *, einsum, dropout, dtype):
  """Multi-head attention of [batch, length, heads, head_dim] projections over the keys where
  `mask` ([batch, 1, 1, keys]) is true, with `einsum(spec, a, b)` for the products and
  `dropout(weights)` on the attention weights.

  Heads-major [batch, heads, length, head_dim] for the products; the softmax in float32 whatever
  the compute dtype (bfloat16 logits lose the ranking of keys), normalized after the product with
  the values. Dropout commutes with the division, so this is dropout(softmax(scores)) @ v."""
  q, k, v = (t.transpose(0, 2, 1, 3) for t in (q, k, v))
  scores = einsum("bhqd,bhkd->bhqk", q * (1 / q.shape[-1] ** 0.5), k)
  scores = scores.astype(jnp.float32) + jnp.where(mask, 0.0, jnp.finfo(jnp.float32).min)
  weights = jnp.exp(scores - jax.lax.stop_gradient(scores.max(-1, keepdims=True)))
  denominator = weights.sum(-1, keepdims=True)
  out = einsum("bhqk,bhkd->bhqd", dropout(weights).astype(dtype), v) / denominator.astype(dtype)
  return out.transpose(0, 2, 1, 3)


def einsum(spec: str, a: jax.Array, b: jax.Array, dtype=None) -> jax.Array:
  """`matmul.einsum` with bfloat16 gradient products as well: with `dtype` (bfloat16) the
  inputs, and in the backward pass the cotangent, are rounded to it; products sum in float32.
  `spec` is two-operand, explicit ("...k,kn->...n") and every index appears in the output or in
  both inputs (true of every product in a Transformer)."""
  if dtype is None or jnp.dtype(dtype) == jnp.float32:
    return jnp.einsum(spec, a, b)
  return _mixed_einsum(spec, jnp.dtype(dtype), a, b)


@functools.partial(jax.custom_vjp, nondiff_argnums=(0, 1))
def _mixed_einsum(spec, dtype, a, b):
  return jnp.einsum(spec, a.astype(dtype), b.astype(dtype), preferred_element_type=jnp.float32)


def _forward(spec, dtype, a, b):
  a_low, b_low = a.astype(dtype), b.astype(dtype)
  out = jnp.einsum(spec, a_low, b_low, preferred_element_type=jnp.float32)
  # Zero-size stand-ins carry the input dtypes the cotangents must have.
  return out, (a_low, b_low, jnp.zeros(0, a.dtype), jnp.zeros(0, b.dtype))


def _backward(spec, dtype, residuals, g):
  a, b, a_type, b_type = residuals
  g = g.astype(dtype)
  (a_spec, b_spec), out_spec = spec.split("->")[0].split(","), spec.split("->")[1]
  product = functools.partial(jnp.einsum, preferred_element_type=jnp.float32)
  da = product(f"{out_spec},{b_spec}->{a_spec}", g, b)
  if spec == "...k,kn->...n":  # A Dense kernel's gradient: x^T @ g, rows contracted.
    x, g2 = a.reshape(-1, a.shape[-1]), g.reshape(-1, g.shape[-1])
    db = jnp.dot(_transposed(x), g2, preferred_element_type=jnp.float32)
  else:
    db = product(f"{a_spec},{out_spec}->{b_spec}", a, g)
  return da.astype(a_type.dtype), db.astype(b_type.dtype)


_mixed_einsum.defvjp(_forward, _backward)


def _transposed(x: jax.Array) -> jax.Array:
  """x.T [k, m], transposed in memory.

  XLA folds a plain `x.T` into the product's dimension numbers, and XLA:CPU's library kernels
  run a product that contracts its left operand's leading axis at about a quarter of their rate
  (a [384 x 8192] x [8192 x 1536] kernel gradient: 43 ms against 12 ms); a 3-D transpose is not
  folded, so the product reads a row-major x^T."""
  m, k = x.shape
  rows = next((c for c in (16, 8, 4, 2) if m % c == 0), None)
  if rows is None:
    return x.T
  return x.reshape(m // rows, rows, k).transpose(2, 0, 1).reshape(k, m)
