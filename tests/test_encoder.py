import numpy as np

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
