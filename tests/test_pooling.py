import numpy as np
import pytest

from rocketqa_jax.pooling import l2_normalize, pool


def test_mean_and_cls_pooling_against_numpy():
  rng = np.random.default_rng(0)
  hidden = rng.normal(size=(3, 5, 4)).astype(np.float32)
  mask = np.array([[1, 1, 1, 1, 1], [1, 1, 0, 0, 0], [0, 0, 0, 0, 0]])
  mean = np.asarray(pool(hidden, mask, "mean"))
  np.testing.assert_allclose(mean[0], hidden[0].mean(0), rtol=1e-6)
  np.testing.assert_allclose(mean[1], hidden[1, :2].mean(0), rtol=1e-6)
  np.testing.assert_array_equal(mean[2], 0)  # All padding: zeros, not NaN.
  np.testing.assert_array_equal(pool(hidden, mask, "cls"), hidden[:, 0])
  with pytest.raises(ValueError, match="max"):
    pool(hidden, mask, "max")


def test_l2_normalize():
  x = np.array([[3.0, 4.0], [0.0, 0.0]], np.float32)
  np.testing.assert_allclose(l2_normalize(x), [[0.6, 0.8], [0.0, 0.0]])
