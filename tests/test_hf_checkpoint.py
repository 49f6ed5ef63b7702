import json

import jax
import numpy as np
import pytest
import safetensors.numpy

import rocketqa_jax
from rocketqa_jax import hf_checkpoint
from rocketqa_jax.bert import BertConfig, BertModel
from rocketqa_jax.encoder import init_params, load_params, param_shapes

TINY = BertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                  intermediate_size=64)


@pytest.fixture
def tiny_dir(tmp_path):
  params = init_params(BertModel(TINY), seed=3)
  hf_checkpoint.save_checkpoint(tmp_path, TINY, params)
  return tmp_path, params


def _rewrite(path, edit):
  tensors = safetensors.numpy.load_file(path / "model.safetensors")
  edit(tensors)
  safetensors.numpy.save_file(tensors, str(path / "model.safetensors"))


def test_hf_names():
  assert hf_checkpoint.hf_name(("encoder", "layer_3", "attention", "self", "query", "kernel")) == (
      "encoder.layer.3.attention.self.query.weight", True)
  assert hf_checkpoint.hf_name(("embeddings", "LayerNorm", "scale")) == (
      "embeddings.LayerNorm.weight", False)
  assert hf_checkpoint.hf_name(("embeddings", "word_embeddings", "embedding")) == (
      "embeddings.word_embeddings.weight", False)


def test_save_then_load_round_trip(tiny_dir):
  path, params = tiny_dir
  names = safetensors.numpy.load_file(path / "model.safetensors")
  assert "encoder.layer.1.intermediate.dense.weight" in names
  assert names["encoder.layer.1.intermediate.dense.weight"].shape == (64, 32)  # torch [out, in]
  config = hf_checkpoint.load_config(path)
  assert config == TINY
  loaded = load_params(BertModel(config), path)
  jax.tree.map(np.testing.assert_array_equal, loaded, jax.device_get(params))


def test_task_model_prefix_and_ignored_tensors(tiny_dir):
  path, params = tiny_dir
  def add_prefix(t):
    for k in list(t):
      t["bert." + k] = t.pop(k)
    t["bert.pooler.dense.weight"] = np.zeros((32, 32), np.float32)
    t["bert.embeddings.position_ids"] = np.arange(512)[None]
    t["cls.predictions.bias"] = np.zeros(30522, np.float32)  # A head outside the encoder.
  _rewrite(path, add_prefix)
  loaded = load_params(BertModel(TINY), path)
  jax.tree.map(np.testing.assert_array_equal, loaded, jax.device_get(params))


def test_mismatches_are_all_named(tiny_dir):
  path, _ = tiny_dir
  def damage(t):
    del t["encoder.layer.0.attention.self.key.bias"]
    t["encoder.layer.9.output.dense.weight"] = np.zeros((2, 2), np.float32)
    t["encoder.layer.1.output.dense.weight"] = np.zeros((32, 65), np.float32)
  _rewrite(path, damage)
  with pytest.raises(hf_checkpoint.CheckpointError) as e:
    load_params(BertModel(TINY), path)
  message = str(e.value)
  assert "1 missing: encoder.layer.0.attention.self.key.bias" in message
  assert "1 unexpected: encoder.layer.9.output.dense.weight" in message
  assert "encoder.layer.1.output.dense.weight: checkpoint (65, 32) (transposed), model (64, 32)" \
      in message
  assert str(path / "model.safetensors") in message


def test_config_errors_name_the_file(tmp_path):
  (tmp_path / "config.json").write_text('{"model_type": "bert",\n "hidden_size": }')
  with pytest.raises(hf_checkpoint.CheckpointError, match=r"config.json:2:\d+: invalid JSON"):
    hf_checkpoint.load_config(tmp_path)
  (tmp_path / "config.json").write_text(json.dumps({"model_type": "t5"}))
  with pytest.raises(hf_checkpoint.CheckpointError, match="config.json.*'t5'"):
    hf_checkpoint.load_config(tmp_path)
  with pytest.raises(FileNotFoundError, match="model.safetensors"):
    load_params(BertModel(TINY), tmp_path)


def test_resolve_packaged_and_unknown(monkeypatch, tmp_path):
  packaged = hf_checkpoint.resolve_model_dir("all-MiniLM-L6-v2")
  assert (packaged / "model.safetensors").exists()
  assert hf_checkpoint.resolve_model_dir("sentence-transformers/all-MiniLM-L6-v2") == packaged
  monkeypatch.setenv("HF_HUB_OFFLINE", "1")
  with pytest.raises(FileNotFoundError, match="hub download failed"):
    hf_checkpoint.resolve_model_dir("no-such-user/no-such-model")
  with pytest.raises(FileNotFoundError, match="neither a checkpoint directory nor a hub"):
    hf_checkpoint.resolve_model_dir(str(tmp_path / "missing" / "dir"))


def test_sentence_transformers_spec():
  spec = hf_checkpoint.load_sentence_spec(hf_checkpoint.resolve_model_dir("all-MiniLM-L6-v2"))
  assert spec == hf_checkpoint.SentenceEmbeddingSpec("mean", True, 256)


def test_load_encoder_from_exported_directory(tiny_dir, minilm):
  path, params = tiny_dir
  minilm.tokenizer.hf.save_pretrained(str(path))
  encoder = rocketqa_jax.load_encoder(path, pooling="cls")
  assert encoder.dim == 32 and encoder.pooling == "cls" and not encoder.normalize
  emb = encoder.encode_queries(["who wrote hamlet?", "capital of kenya"])
  assert emb.shape == (2, 32) and np.isfinite(emb).all()
  shapes = param_shapes(BertModel(TINY))
  assert jax.tree.structure(shapes) == jax.tree.structure(encoder.params)
