"""Mixed-precision products (rocketqa_jax/matmul.py, and cpu_kernels.einsum with its bfloat16
gradient products) against a float64 reference."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rocketqa_jax import cpu_kernels, matmul

BF16_EPS = 2.0 ** -8  # bfloat16 keeps 8 significant bits.


def _bf16(x):
  return np.asarray(jnp.asarray(x).astype(jnp.bfloat16).astype(jnp.float32), np.float64)


@pytest.mark.parametrize("spec,a_shape,b_shape", [
    ("...k,kn->...n", (2, 24, 32), (32, 40)),  # A Dense layer.
    ("bhqd,bhkd->bhqk", (2, 3, 8, 16), (2, 3, 12, 16)),  # Attention scores.
    ("bhqk,bhkd->bhqd", (2, 3, 8, 12), (2, 3, 12, 16)),  # Attention output.
])
def test_cpu_values_and_gradients_are_bfloat16_rounded_float32_sums(spec, a_shape, b_shape):
  rng = np.random.default_rng(0)
  a, b = rng.normal(size=a_shape).astype(np.float32), rng.normal(size=b_shape).astype(np.float32)
  g = rng.normal(size=np.einsum(spec, a, b).shape).astype(np.float32)
  out, vjp = jax.vjp(lambda a, b: cpu_kernels.einsum(spec, a, b, jnp.bfloat16), a, b)
  # The reference product (autodiff) gives the same values.
  np.testing.assert_array_equal(matmul.einsum(spec, a, b, jnp.bfloat16), out)
  da, db = vjp(jnp.asarray(g))
  assert out.dtype == da.dtype == db.dtype == jnp.float32
  # The reference: inputs (and, for gradients, the cotangent) rounded, then exact float64 sums.
  np.testing.assert_allclose(out, np.einsum(spec, _bf16(a), _bf16(b)), rtol=1e-5, atol=1e-4)
  ins, out_spec = spec.replace("...", "xy").split("->")  # numpy: ellipses only when kept.
  a_spec, b_spec = ins.split(",")
  np.testing.assert_allclose(da, np.einsum(f"{out_spec},{b_spec}->{a_spec}", _bf16(g), _bf16(b)),
                             rtol=1e-5, atol=1e-4)
  np.testing.assert_allclose(db, np.einsum(f"{a_spec},{out_spec}->{b_spec}", _bf16(a), _bf16(g)),
                             rtol=1e-5, atol=1e-4)
  # And within bfloat16's rounding of the float32 product.
  exact = np.einsum(spec, a.astype(np.float64), b.astype(np.float64))
  scale = np.einsum(spec, np.abs(a), np.abs(b))
  assert (np.abs(out - exact) <= 2 * BF16_EPS * scale + 1e-6).all()


def test_float32_is_the_plain_product():
  a, b = np.ones((3, 4), np.float32) / 3, np.ones((4, 5), np.float32) / 7
  for product in (matmul.einsum, cpu_kernels.einsum):
    np.testing.assert_array_equal(product("...k,kn->...n", a, b, jnp.float32),
                                  jnp.einsum("...k,kn->...n", a, b))


@pytest.mark.parametrize("product", [matmul.einsum, cpu_kernels.einsum])
def test_dense_layer_keeps_its_dtype_and_odd_row_counts_work(product):
  # Positive inputs: sums without cancellation, so bfloat16 rounding stays relative.
  x = jnp.asarray(np.random.default_rng(1).uniform(0.5, 1.5, (7, 5, 16)), jnp.float32)  # 35 rows.
  for dtype in (jnp.float32, jnp.bfloat16):
    layer = nn.Dense(8, dtype=dtype, dot_general=matmul.dot_general(jnp.bfloat16, product))
    params = layer.init(jax.random.key(0), x)
    assert layer.apply(params, x).dtype == dtype
    grads = jax.grad(lambda p: layer.apply(p, x).astype(jnp.float32).sum())(params)
    exact = jax.grad(lambda p: nn.Dense(8).apply(p, x).sum())(params)
    np.testing.assert_allclose(grads["params"]["kernel"], exact["params"]["kernel"], rtol=0.01)
  with pytest.raises(ValueError, match="kernel"):
    matmul.dot_general(jnp.bfloat16)(x, x, (((0,), (0,)), ((), ())))


@pytest.mark.parametrize("flags,expected", [
    ("fpu sse avx avx2 fma", "float32"),  # An AVX2 CPU (this project's AMD EPYC machines).
    ("avx2 avx512f avx512_bf16", "bfloat16"),  # Cooper Lake, Zen 4.
    ("avx2 avx512f amx_bf16 amx_tile", "bfloat16"),  # Sapphire Rapids.
])
def test_auto_picks_bfloat16_only_where_the_cpu_multiplies_it(tmp_path, monkeypatch, flags,
                                                              expected):
  cpuinfo = tmp_path / "cpuinfo"
  cpuinfo.write_text(f"processor\t: 0\nflags\t\t: {flags}\n\nprocessor\t: 1\nflags\t\t: {flags}\n")
  cpu = jax.devices("cpu")[0]
  assert matmul.has_fast_bfloat16(cpu, str(cpuinfo)) == (expected == "bfloat16")
  assert not matmul.has_fast_bfloat16(cpu, str(tmp_path / "missing"))  # No /proc: float32.
  monkeypatch.setattr(matmul, "cpu_flags", lambda cpuinfo="": set(flags.split()))
  assert matmul.resolve_dtype("auto") == expected
  assert matmul.resolve_dtype("float32") == "float32"
  assert matmul.resolve_dtype("bfloat16") == "bfloat16"
