"""Matrix products with bfloat16 inputs and float32 accumulation: mixed precision.

What a TPU does for a float32 matmul at default precision, made explicit so other chips do it too:
both operands are rounded to bfloat16, products accumulate and come out in float32. On CPUs with AMX
(Sapphire Rapids and later) XLA:CPU then runs the product in XNNPACK/YNNPACK's bfloat16 kernels,
2-7x the float32 rate, and with AVX-512 BF16 (AMD Zen 4) 1.5-1.9x (docs/benchmarks.md); on CPUs
without native bfloat16 (AVX2) the same products are slower than float32 ones, so configs say "auto"
and `resolve_dtype` picks per machine. The gradient products get the same treatment through a custom
VJP (differentiating the forward would give float32 x bfloat16 products, which run at the float32
rate): the incoming cotangent is rounded to bfloat16 too, as in any bfloat16 mixed-precision
training. Everything around the products (softmax, LayerNorm, residuals, the optimizer) stays in the
model's dtype."""

from __future__ import annotations

import functools
import pathlib

import jax
import jax.numpy as jnp

# x86 CPU flags of native bfloat16 products: AMX tiles (Sapphire Rapids and later) and AVX-512
# BF16 dot products (Cooper Lake, Zen 4); both measured here (docs/benchmarks.md).
CPU_BFLOAT16_FLAGS = ("amx_bf16", "avx512_bf16")


def cpu_flags(cpuinfo: str = "/proc/cpuinfo") -> set[str]:
  """The CPU's feature flags as Linux lists them; empty where there is no /proc/cpuinfo."""
  try:
    text = pathlib.Path(cpuinfo).read_text()
  except OSError:
    return set()
  return {f for line in text.splitlines() if line.startswith("flags")
          for f in line.split(":", 1)[1].split()}


def has_fast_bfloat16(device: jax.Device | None = None, cpuinfo: str = "/proc/cpuinfo") -> bool:
  """Whether `device` (default: the first) multiplies bfloat16 faster than float32: TPUs, AMD
  GPUs, NVIDIA GPUs from compute capability 8.0 (Ampere) and CPUs with AMX or AVX-512 BF16.
  Elsewhere (an AVX2 CPU: many laptops, cloud and Colab machines; ARM CPUs are not checked) XLA
  converts bfloat16 to float32 around a float32 kernel, and bfloat16 products are slower than
  float32 ones (encoding at 0.74x on an AVX2 AMD EPYC, docs/benchmarks.md)."""
  device = device or jax.devices()[0]
  if device.platform in ("tpu", "rocm"):
    return True
  if device.platform in ("gpu", "cuda"):
    return float(getattr(device, "compute_capability", "0")) >= 8.0
  return bool(cpu_flags(cpuinfo) & set(CPU_BFLOAT16_FLAGS))


def resolve_dtype(name: str) -> str:
  """A products' input type by name: "auto" is "bfloat16" where `has_fast_bfloat16()`, else
  "float32"; other names pass through."""
  if name == "auto":
    return "bfloat16" if has_fast_bfloat16() else "float32"
  return name


def einsum(spec: str, a: jax.Array, b: jax.Array, dtype=None) -> jax.Array:
  """`jnp.einsum(spec, a, b)`; with `dtype` (bfloat16) the inputs are rounded to it and the
  result is float32. `spec` is two-operand, explicit ("...k,kn->...n") and every index appears
  in the output or in both inputs (true of every product in a Transformer)."""
  if dtype is None or jnp.dtype(dtype) == jnp.float32:
    return jnp.einsum(spec, a, b)
  return _mixed_einsum(spec, jnp.dtype(dtype), a, b)


def dot_general(dtype):
  """A `dot_general` for `flax.linen.Dense(dot_general=...)`: x[..., k] @ kernel[k, n]."""
  def dot(lhs, rhs, dimension_numbers, precision=None, preferred_element_type=None):
    del precision, preferred_element_type
    (lhs_contract, rhs_contract), batch = dimension_numbers
    if tuple(lhs_contract) != (lhs.ndim - 1,) or tuple(rhs_contract) != (0,) or any(batch):
      raise ValueError(f"expected x[..., k] @ kernel[k, n], got {dimension_numbers}")
    # Flax has cast lhs to the layer's dtype: the result keeps it (bfloat16 models stay so).
    return einsum("...k,kn->...n", lhs, rhs, dtype).astype(lhs.dtype)
  return dot


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
