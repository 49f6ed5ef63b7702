"""Export: a tower written as a Hugging Face / sentence-transformers directory, read back by us
and (where torch is installed) by sentence-transformers."""

import json

import jax
import numpy as np
import pytest

import rocketqa_jax
from rocketqa_jax.encoder import Encoder

TEXTS = ["Which NFL team represented the AFC at Super Bowl 50?",
         "The Broncos defeated the Carolina Panthers 24–10 to earn their third Super Bowl title.",
         "a"]


@pytest.fixture(scope="module")
def exported(tmp_path_factory, minilm):
  """all-MiniLM-L6-v2 with every weight changed (as training would), exported."""
  rng = np.random.default_rng(0)
  params = jax.tree.map(lambda x: np.asarray(x) * (1 + 0.05 * rng.standard_normal(x.shape))
                        .astype(np.float32), jax.device_get(minilm.params))
  tower = Encoder(minilm.model, params, minilm.tokenizer, pooling="mean", normalize=True)
  path = tower.save_pretrained(tmp_path_factory.mktemp("export") / "tower")
  return tower, path


def test_export_has_the_files_sentence_transformers_reads(exported):
  _, path = exported
  for name in ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json",
               "modules.json", "sentence_bert_config.json", "1_Pooling/config.json"):
    assert (path / name).is_file(), name
  modules = json.loads((path / "modules.json").read_text())
  assert [m["type"].rsplit(".", 1)[1] for m in modules] == ["Transformer", "Pooling", "Normalize"]
  pooling = json.loads((path / "1_Pooling/config.json").read_text())
  assert pooling["pooling_mode_mean_tokens"] and not pooling["pooling_mode_cls_token"]
  assert json.loads((path / "config.json").read_text())["model_type"] == "bert"


def test_export_round_trip_is_identical(exported, minilm):
  tower, path = exported
  loaded = rocketqa_jax.load_encoder(path)  # Pooling and normalization from the directory.
  assert (loaded.pooling, loaded.normalize) == ("mean", True)
  ours = tower.encode_passages(TEXTS)
  np.testing.assert_array_equal(loaded.encode_passages(TEXTS), ours)
  assert np.abs(ours - minilm.encode_passages(TEXTS)).max() > 1e-3  # Really other weights.


def test_sentence_transformers_reads_the_export(exported):
  pytest.importorskip("torch")
  sentence_transformers = pytest.importorskip("sentence_transformers")
  tower, path = exported
  st = sentence_transformers.SentenceTransformer(str(path), device="cpu")
  theirs = st.encode(TEXTS, convert_to_numpy=True, normalize_embeddings=False)
  np.testing.assert_allclose(tower.encode_passages(TEXTS), theirs, atol=1e-4)
