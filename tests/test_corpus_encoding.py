import numpy as np
import pytest

import rocketqa_jax
from rocketqa_jax.corpus_encoding import corpus_embeddings, encode_corpus, load_shards
from rocketqa_jax.data.corpus import Corpus


@pytest.fixture(scope="module")
def tiny():
  return rocketqa_jax.load_encoder("all-MiniLM-L6-v2", random_init=True, num_hidden_layers=1,
                                   hidden_size=32, num_attention_heads=2, intermediate_size=64,
                                   passage_max_length=64)


@pytest.fixture(scope="module")
def corpus(squad_mini):
  c = squad_mini.corpus
  return Corpus(c.ids[:50], c.texts[:50], c.titles[:50])


def test_shards_equal_one_pass_and_resume_only_what_is_missing(tmp_path, tiny, corpus,
                                                               monkeypatch):
  encode_corpus(tiny, corpus, tmp_path, shard_size=16, progress=False)
  shards = sorted(p.name for p in tmp_path.glob("shard-*.npz"))
  assert shards == [f"shard-{i:05d}-of-00004.npz" for i in range(4)]
  embeddings, rows = load_shards(tmp_path)  # One process: every shard is its own.
  assert rows.tolist() == list(range(50))
  np.testing.assert_allclose(embeddings, tiny.encode_passages(corpus.texts), atol=1e-5)
  # An interrupted run: shard 2 never written. The rerun encodes that shard and nothing else.
  (tmp_path / "shard-00002-of-00004.npz").unlink()
  calls = []
  original = tiny.encode_tokens
  monkeypatch.setattr(tiny, "encode_tokens", lambda seqs, *a, **k: calls.append(len(seqs))
                      or original(seqs, *a, **k))
  encode_corpus(tiny, corpus, tmp_path, shard_size=16, progress=False)
  assert calls == [16]
  np.testing.assert_array_equal(load_shards(tmp_path)[0], embeddings)
  # corpus_embeddings (mining, eval, search): nothing left to encode, the same arrays back.
  again, again_rows = corpus_embeddings(tiny, corpus, tmp_path, shard_size=16, progress=False)
  assert calls == [16] and again_rows.tolist() == list(range(50))
  np.testing.assert_array_equal(again, embeddings)
  assert not list(tmp_path.glob(".*tmp"))  # No temp files left behind.


def test_other_settings_do_not_reuse_shards(tmp_path, tiny, corpus):
  encode_corpus(tiny, corpus, tmp_path, shard_size=16, progress=False)
  with pytest.raises(ValueError, match="use an empty folder"):
    encode_corpus(tiny, corpus, tmp_path, shard_size=16, use_titles=True, progress=False)
  (tmp_path / "shard-00001-of-00004.npz").unlink()
  with pytest.raises(FileNotFoundError, match="1 shards not encoded"):
    load_shards(tmp_path)


def test_each_process_encodes_and_loads_its_own_shards(tmp_path, tiny, corpus, monkeypatch):
  """Two processes (simulated one after the other): each writes only shards s % 2 == its id,
  and loads only those; together they hold the corpus once."""
  from rocketqa_jax import corpus_encoding
  monkeypatch.setattr(corpus_encoding.jax, "process_count", lambda: 2)
  for process in (1, 0):
    monkeypatch.setattr(corpus_encoding.jax, "process_index", lambda: process)
    encode_corpus(tiny, corpus, tmp_path, shard_size=16, progress=False)
    written = sorted(int(p.name[6:11]) for p in tmp_path.glob("shard-*.npz"))
    assert written == ([1, 3] if process == 1 else [0, 1, 2, 3])
  for process in (1, 0):  # After the barrier: the manifest is process 0's.
    monkeypatch.setattr(corpus_encoding.jax, "process_index", lambda: process)
    embeddings, rows = load_shards(tmp_path)
    assert rows.tolist() == ([*range(16, 32), *range(48, 50)] if process == 1
                             else [*range(0, 16), *range(32, 48)])
    whole = tiny.encode_passages(corpus.texts[rows])
    np.testing.assert_allclose(embeddings, whole, atol=1e-5)
  assert (tmp_path / "manifest.json").exists()  # Written by process 0.
  embeddings, rows = load_shards(tmp_path, range(4))
  assert rows.tolist() == list(range(50)) and embeddings.shape == (50, 32)
