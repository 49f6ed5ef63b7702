import numpy as np
import pytest

from conftest import run_python

SCRIPT = """
import sys, jax, numpy as np, rocketqa_jax
enc = rocketqa_jax.load_encoder('all-MiniLM-L6-v2', random_init=True, num_hidden_layers=2,
                                batch_size=12)
assert jax.local_device_count() == {devices}
assert enc.batch_size % {devices} == 0 and enc.batch_size >= 12
texts = ['passage number %d ' % i + 'word ' * (i % 40) for i in range(37)]
np.save(sys.argv[1], enc.encode_passages(texts))
"""


def test_rows_split_over_eight_devices_give_the_same_embeddings(tmp_path):
  out = []
  for devices in (1, 8):
    path = tmp_path / f"{devices}.npy"
    result = run_python(["-c", SCRIPT.format(devices=devices), str(path)], devices=devices)
    assert result.returncode == 0, result.stderr[-3000:]
    out.append(np.load(path))
  assert out[0].shape == (37, 384)
  np.testing.assert_allclose(out[0], out[1], atol=1e-5)


def test_short_inputs_pad_to_few_rows(minilm):
  # A power of two, at least one row per device (8 here), at most the batch size.
  assert minilm.mesh.size == 8
  assert [minilm._padded_rows(n) for n in (1, 3, 9, 33, 64)] == [8, 8, 16, 64, 64]


def test_row_chunks_keep_every_row_in_place_across_devices():
  import jax
  import jax.numpy as jnp
  from rocketqa_jax import sharding
  from rocketqa_jax.encoder import in_row_chunks
  mesh = sharding.make_mesh()
  traced_rows = []

  def apply_fn(params, batch):  # Per row: [first id * w, row sum]; notes the rows it sees.
    traced_rows.append(batch["input_ids"].shape[0])
    ids = batch["input_ids"].astype(jnp.float32)
    return {"a": ids[:, :1] * params, "b": ids.sum(-1)}

  ids = np.arange(64 * 16, dtype=np.int32).reshape(64, 16)
  batch = jax.device_put({"input_ids": ids}, sharding.batch_sharding(mesh))
  want = jax.jit(apply_fn)(2.0, batch)
  # 16 tokens a device at length 16: one row per device per chunk, 8 chunks.
  got = jax.jit(in_row_chunks(apply_fn, mesh.size, 16))(2.0, batch)
  assert traced_rows[-1] == 8
  np.testing.assert_array_equal(got["a"], want["a"])
  np.testing.assert_array_equal(got["b"], ids.sum(-1))
  # 3 rows' worth of tokens: the largest divisor of the 8 rows per device, 2.
  jax.jit(in_row_chunks(apply_fn, mesh.size, 16 * 3))(2.0, batch)
  assert traced_rows[-1] == 2 * 8
  assert in_row_chunks(apply_fn, mesh.size, 0) is apply_fn


def test_chunked_encoding_matches_whole_batches():
  import rocketqa_jax
  from rocketqa_jax.encoder import CPU_CHUNK_TOKENS, resolve_chunk_tokens
  texts = ['passage number %d ' % i + 'word ' * (i % 40) for i in range(70)]
  kw = dict(random_init=True, num_hidden_layers=2, batch_size=64, passage_max_length=64)
  whole = rocketqa_jax.load_encoder("all-MiniLM-L6-v2", chunk_tokens=0, **kw)
  chunked = rocketqa_jax.load_encoder("all-MiniLM-L6-v2", chunk_tokens=16, **kw)
  np.testing.assert_allclose(chunked.encode_passages(texts), whole.encode_passages(texts),
                             atol=1e-6)
  assert resolve_chunk_tokens("auto") == CPU_CHUNK_TOKENS  # This is a CPU.
  for bad in (-1, "all", 2.5):
    with pytest.raises(ValueError, match="chunk_tokens"):
      resolve_chunk_tokens(bad)


def test_models_of_one_architecture_share_their_compiled_programs():
  """Each batch shape compiles once per process for every model of one architecture (a stage's
  dual encoder, the next stage's): the weights are arguments, and each model still uses its own."""
  import rocketqa_jax
  texts = ['passage number %d ' % i + 'word ' * (i % 40) for i in range(20)]
  kw = dict(random_init=True, num_hidden_layers=2, batch_size=16, passage_max_length=64)
  first = rocketqa_jax.load_encoder("all-MiniLM-L6-v2", seed=1, **kw)
  second = rocketqa_jax.load_encoder("all-MiniLM-L6-v2", seed=2, **kw)
  assert second._apply is first._apply
  a = first.encode_passages(texts)
  compiled = first._apply._cache_size()
  b = second.encode_passages(texts)
  assert first._apply._cache_size() == compiled > 0  # Nothing compiled for the second model.
  assert np.abs(a - b).max() > 0.1  # Its own weights.
  np.testing.assert_allclose(b, rocketqa_jax.load_encoder(
      "all-MiniLM-L6-v2", seed=2, chunk_tokens=0, **kw).encode_passages(texts), atol=1e-6)
  other = rocketqa_jax.load_encoder("all-MiniLM-L6-v2", seed=1, pooling="cls", **kw)
  assert other._apply is not first._apply  # Another setting, another program.
