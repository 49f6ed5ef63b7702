"""Our Flax all-MiniLM-L6-v2 against the PyTorch reference (HF BertModel + mean + normalize)."""

import importlib.util
import pathlib

import numpy as np
import pytest

import rocketqa_jax
from rocketqa_jax.hf_checkpoint import resolve_model_dir

GOLDEN = pathlib.Path(__file__).parent / "golden" / "minilm_squad.npz"


@pytest.fixture(scope="module")
def golden(squad_mini):
  g = np.load(GOLDEN)
  corpus = squad_mini.corpus
  rows = [corpus.index[p] for p in g["passage_ids"]]
  by_id = {q.id: q for q in squad_mini.eval}
  return dict(g, texts=[corpus.texts[i] for i in rows], titles=[corpus.titles[i] for i in rows],
              questions_text=[by_id[q].text for q in g["question_ids"]])


def test_golden_includes_truncated_passages(golden, minilm):
  lengths = [len(ids) for ids, _ in minilm.tokenizer.tokenize_passages(golden["texts"])]
  assert max(lengths) == 256 and min(lengths) < 128  # Truncation and short batches covered.


def test_float32_matches_pytorch_golden(golden, minilm):
  assert minilm.pooling == "mean" and minilm.normalize
  np.testing.assert_allclose(minilm.encode_passages(golden["texts"]), golden["passages"],
                             atol=1e-4, rtol=0)
  np.testing.assert_allclose(minilm.encode_passages(golden["texts"], golden["titles"]),
                             golden["titled_passages"], atol=1e-4, rtol=0)
  np.testing.assert_allclose(minilm.encode_queries(golden["questions_text"]), golden["questions"],
                             atol=1e-4, rtol=0)


def test_bfloat16_close_to_float32(golden):
  bf16 = rocketqa_jax.load_encoder("all-MiniLM-L6-v2", dtype="bfloat16")
  emb = bf16.encode_passages(golden["texts"])
  cosine = (emb * golden["passages"]).sum(1) / np.linalg.norm(emb, axis=1)
  assert cosine.min() >= 0.99, cosine.min()


def test_bfloat16_products_close_to_float32(golden):
  """matmul_dtype=bfloat16 (the demo's setting): products from bfloat16 inputs, float32 sums."""
  mixed = rocketqa_jax.load_encoder("all-MiniLM-L6-v2", matmul_dtype="bfloat16")
  emb = mixed.encode_passages(golden["texts"])
  assert emb.dtype == np.float32
  cosine = (emb * golden["passages"]).sum(1) / np.linalg.norm(emb, axis=1)
  assert cosine.min() >= 0.999, cosine.min()
  assert np.abs(emb - golden["passages"]).max() > 1e-5  # The bfloat16 path really ran.


@pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="torch not installed")
def test_live_pytorch_comparison(golden, minilm):
  from torch_reference import reference_embeddings
  ref = reference_embeddings(resolve_model_dir("all-MiniLM-L6-v2"), golden["texts"],
                             golden["titles"])
  np.testing.assert_allclose(minilm.encode_passages(golden["texts"], golden["titles"]), ref,
                             atol=1e-4, rtol=0)
  np.testing.assert_allclose(ref, golden["titled_passages"], atol=1e-5)  # Goldens still current.


def test_order_preserved_and_batch_independent(golden, minilm):
  texts = golden["texts"][:10]
  together = minilm.encode_passages(texts)
  one_by_one = np.concatenate([minilm.encode_passages([t]) for t in texts[::-1]])[::-1]
  np.testing.assert_allclose(together, one_by_one, atol=1e-5)
