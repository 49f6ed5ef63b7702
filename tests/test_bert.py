import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rocketqa_jax.bert import BertConfig, BertModel, position_ids
from rocketqa_jax.encoder import init_params

TINY = BertConfig(vocab_size=100, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                  intermediate_size=64, max_position_embeddings=64)


def _batch(rows=3, length=16, real=(16, 9, 4), seed=0):
  ids = np.random.default_rng(seed).integers(1, 100, (rows, length)).astype(np.int32)
  mask = (np.arange(length)[None] < np.array(real)[:, None]).astype(np.int32)
  return jnp.asarray(ids * mask), jnp.asarray(mask)


def test_output_shape_and_padding_does_not_leak():
  model = BertModel(TINY)
  params = init_params(model)
  ids, mask = _batch()
  out = model.apply({"params": params}, ids, mask)
  assert out.shape == (3, 16, 32)
  # Same sequences padded twice as long: real-token states must not change.
  wide_ids = jnp.pad(ids, ((0, 0), (0, 16)))
  wide_mask = jnp.pad(mask, ((0, 0), (0, 16)))
  wide = model.apply({"params": params}, wide_ids, wide_mask)
  for row, n in enumerate((16, 9, 4)):
    np.testing.assert_allclose(wide[row, :n], out[row, :n], atol=1e-5)


def test_remat_same_outputs_and_gradients():
  ids, mask = _batch()
  params = init_params(BertModel(TINY))

  def loss(params, remat):
    return BertModel(TINY, remat=remat).apply({"params": params}, ids, mask).sum()

  v1, g1 = jax.value_and_grad(loss)(params, False)
  v2, g2 = jax.value_and_grad(loss)(params, True)
  np.testing.assert_allclose(v1, v2, rtol=1e-6)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, atol=1e-5), g1, g2)


def test_compute_and_param_dtypes_are_separate():
  model = BertModel(TINY, dtype=jnp.bfloat16, param_dtype=jnp.float32)
  params = init_params(model)
  assert {x.dtype for x in jax.tree.leaves(params)} == {jnp.dtype(jnp.float32)}
  ids, mask = _batch()
  assert model.apply({"params": params}, ids, mask).dtype == jnp.bfloat16
  bf16_params = init_params(BertModel(TINY, param_dtype=jnp.bfloat16))
  assert {x.dtype for x in jax.tree.leaves(bf16_params)} == {jnp.dtype(jnp.bfloat16)}


@pytest.mark.parametrize("cpu_kernels", [False, True])
def test_dropout_only_when_not_deterministic(cpu_kernels):
  cfg = BertConfig(**{**TINY.__dict__, "hidden_dropout_prob": 0.5,
                      "attention_probs_dropout_prob": 0.5})
  model = BertModel(cfg, cpu_kernels=cpu_kernels)
  params = init_params(model)
  ids, mask = _batch()
  a = model.apply({"params": params}, ids, mask, deterministic=True)
  b = model.apply({"params": params}, ids, mask, deterministic=False,
                  rngs={"dropout": jax.random.key(1)})
  assert np.isfinite(b).all() and not np.allclose(a, b)
  with pytest.raises(Exception):  # Training mode needs a dropout RNG.
    model.apply({"params": params}, ids, mask, deterministic=False)


def test_position_ids_bert_and_roberta():
  mask = jnp.array([[1, 1, 1, 0, 0]])
  np.testing.assert_array_equal(position_ids(mask, 0), [[0, 1, 2, 3, 4]])
  # RoBERTa (pad id 1): real tokens at 2, 3, 4...; padding at the padding index.
  np.testing.assert_array_equal(position_ids(mask, 2), [[2, 3, 4, 1, 1]])


def test_config_from_hf_and_errors():
  hf = {"model_type": "roberta", "pad_token_id": 1, "hidden_size": 64,
        "num_attention_heads": 4, "unknown_field": 3}
  cfg = BertConfig.from_hf(hf)
  assert (cfg.position_offset, cfg.hidden_size) == (2, 64)
  ernie = BertConfig.from_hf({"model_type": "ernie", "use_task_id": True,
                              "task_type_vocab_size": 3})
  assert ernie.task_type_vocab_size == 3
  with pytest.raises(ValueError, match="gpt2"):
    BertConfig.from_hf({"model_type": "gpt2"})
  with pytest.raises(ValueError, match="multiple of num_attention_heads"):
    BertConfig(hidden_size=30, num_attention_heads=4)


def test_ernie_task_embedding_is_a_parameter():
  cfg = BertConfig(**{**TINY.__dict__, "task_type_vocab_size": 3, "model_type": "ernie"})
  params = init_params(BertModel(cfg))
  assert params["embeddings"]["task_type_embeddings"]["embedding"].shape == (3, 32)


def test_cpu_dropout_rate_scale_and_sharding_independence():
  """cpu_kernels.Dropout's byte-wide draws: the rate is 26/256, kept units are scaled so the mean is unchanged, and
  the mask depends on the key alone (the same on one device or split over several)."""
  from rocketqa_jax.cpu_kernels import Dropout
  x = jnp.ones((64, 4, 130))  # A width not divisible by 4 covers the trailing slice.
  apply = jax.jit(lambda x, key: Dropout(0.1).apply({}, x, False, rngs={"dropout": key}))
  y = np.asarray(apply(x, jax.random.key(0)))
  dropped = (y == 0).mean()
  assert abs(dropped - 26 / 256) < 0.005, dropped
  np.testing.assert_allclose(np.unique(y), [0.0, 256 / 230], rtol=1e-6)
  assert abs(y.mean() - 1) < 0.01
  mesh = jax.make_mesh((jax.device_count(),), ("data",),
                       axis_types=(jax.sharding.AxisType.Auto,))
  sharded = jax.device_put(x, jax.NamedSharding(mesh, jax.P("data")))
  np.testing.assert_array_equal(apply(sharded, jax.random.key(0)), y)
  assert not np.array_equal(apply(x, jax.random.key(1)), y)
  assert Dropout(0.1).apply({}, x, True) is x


def test_gelu_matches_jax_exact_gelu():
  from rocketqa_jax.cpu_kernels import gelu
  x = jnp.linspace(-12, 12, 10_001)
  np.testing.assert_allclose(gelu(x), jax.nn.gelu(x, approximate=False), atol=2e-6)
  np.testing.assert_allclose(jax.vmap(jax.grad(gelu))(x),
                             jax.vmap(jax.grad(lambda v: jax.nn.gelu(v, approximate=False)))(x),
                             atol=2e-6)
