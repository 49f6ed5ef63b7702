"""The CPU kernels (cpu_kernels.py) compute the reference BERT's function (bert.py with
jax.nn.dot_product_attention, nn.Dropout, jax.nn.gelu): same embeddings, same gradients."""

import jax
import numpy as np
import pytest

import rocketqa_jax
from rocketqa_jax import cpu_kernels
from rocketqa_jax.bert import BertConfig, BertModel
from rocketqa_jax.encoder import init_params
from test_parity import GOLDEN, golden  # noqa: F401  (the fixture)


def test_resolve():
  cpu = jax.devices("cpu")[0]
  assert cpu_kernels.resolve("auto", cpu) and cpu_kernels.resolve("on", cpu)
  assert not cpu_kernels.resolve("off", cpu)
  with pytest.raises(ValueError, match="cpu_kernels='fast'"):
    cpu_kernels.resolve("fast")


def test_both_paths_give_the_same_embeddings_and_match_pytorch(golden):  # noqa: F811
  on = rocketqa_jax.load_encoder("all-MiniLM-L6-v2", cpu_kernels="on")
  off = rocketqa_jax.load_encoder("all-MiniLM-L6-v2", cpu_kernels="off")
  assert on.model.cpu_kernels and not off.model.cpu_kernels
  texts, titles = golden["texts"], golden["titles"]
  fast, reference = on.encode_passages(texts, titles), off.encode_passages(texts, titles)
  np.testing.assert_allclose(fast, reference, atol=1e-5, rtol=0)
  np.testing.assert_allclose(reference, golden["titled_passages"], atol=1e-4, rtol=0)
  np.testing.assert_allclose(off.encode_queries(golden["questions_text"]), golden["questions"],
                             atol=1e-4, rtol=0)


@pytest.mark.parametrize("matmul_dtype", [None, "bfloat16"])
def test_both_paths_give_the_same_gradients(matmul_dtype):
  cfg = BertConfig(vocab_size=100, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                   intermediate_size=64, max_position_embeddings=64)
  ids = np.random.default_rng(0).integers(1, 100, (3, 16)).astype(np.int32)
  mask = (np.arange(16)[None] < np.array([16, 9, 4])[:, None]).astype(np.int32)
  params = init_params(BertModel(cfg))
  weights = np.random.default_rng(1).normal(size=(3, 16, 32)).astype(np.float32)
  dtype = None if matmul_dtype is None else jax.numpy.bfloat16

  def loss(params, kernels):
    hidden = BertModel(cfg, matmul_dtype=dtype, cpu_kernels=kernels).apply(
        {"params": params}, ids * mask, mask)
    return (hidden * weights * mask[..., None]).sum() / mask.sum()

  (v1, g1), (v2, g2) = (jax.value_and_grad(loss)(params, k) for k in (False, True))
  tolerance = 1e-5 if matmul_dtype is None else 2e-2  # bfloat16 vs float32 cotangents.
  np.testing.assert_allclose(v1, v2, rtol=1e-5)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, atol=tolerance, rtol=tolerance),
               g1, g2)
