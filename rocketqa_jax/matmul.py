"""Matrix products with bfloat16 inputs and float32 accumulation: mixed precision.

What a TPU does for a float32 matmul at default precision, made explicit so other chips do it too:
both operands are rounded to bfloat16, products accumulate and come out in float32. On CPUs with AMX
(Sapphire Rapids and later) XLA:CPU then runs the product in XNNPACK/YNNPACK's bfloat16 kernels,
2-7x the float32 rate, and with AVX-512 BF16 (AMD Zen 4) 1.5-1.9x (docs/benchmarks.md); on CPUs
without native bfloat16 (AVX2) the same products are slower than float32 ones, so configs say "auto"
and `resolve_dtype` picks per machine. Gradients come by autodiff; on CPUs `cpu_kernels.einsum`
rounds the cotangent to bfloat16 too, so the backward products run at the bfloat16 rate.
Everything around the products (softmax, LayerNorm, residuals, the optimizer) stays in the
model's dtype."""

from __future__ import annotations

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
  products sum in float32 (the result is float32). Gradients by autodiff; `cpu_kernels.einsum`
  is the same product with bfloat16 gradient products, for CPUs."""
  if dtype is None or jnp.dtype(dtype) == jnp.float32:
    return jnp.einsum(spec, a, b)
  return jnp.einsum(spec, a.astype(dtype), b.astype(dtype), preferred_element_type=jnp.float32)


def dot_general(dtype, product=einsum):
  """A `dot_general` for `flax.linen.Dense(dot_general=...)`: x[..., k] @ kernel[k, n] through
  `product(spec, x, kernel, dtype)` (this module's `einsum` or `cpu_kernels.einsum`)."""
  def dot(lhs, rhs, dimension_numbers, precision=None, preferred_element_type=None):
    del precision, preferred_element_type
    (lhs_contract, rhs_contract), batch = dimension_numbers
    if tuple(lhs_contract) != (lhs.ndim - 1,) or tuple(rhs_contract) != (0,) or any(batch):
      raise ValueError(f"expected x[..., k] @ kernel[k, n], got {dimension_numbers}")
    # Flax has cast lhs to the layer's dtype: the result keeps it (bfloat16 models stay so).
    return product("...k,kn->...n", lhs, rhs, dtype).astype(lhs.dtype)
  return dot
