"""fusion.py against plain Python references, on random rankings with short lists."""

import statistics

import numpy as np
import pytest

from rocketqa_jax import fusion


def rankings(seed, n=6, k=5, corpus=12):
  rng = np.random.default_rng(seed)
  rows = np.stack([rng.permutation(corpus)[:k] for _ in range(n)]).astype(np.int64)
  scores = np.sort(rng.normal(size=(n, k)) * rng.uniform(0.1, 30), axis=1)[:, ::-1].copy()
  rows[0, 3:] = -1  # A short list.
  scores[0, 3:] = -np.inf
  return rows, scores


def reference_interpolate(first, second, weight, k):
  out = []
  for q in range(first[0].shape[0]):
    lists = []
    for rows, scores in (first, second):
      pairs = [(int(r), float(s)) for r, s in zip(rows[q], scores[q]) if r >= 0]
      mean = statistics.fmean(s for _, s in pairs)
      std = statistics.pstdev(s for _, s in pairs)
      z = {r: (s - mean) / std if std else 0.0 for r, s in pairs}
      lists.append((z, min(z.values())))
    union = set(lists[0][0]) | set(lists[1][0])
    fused = {r: (1 - weight) * lists[0][0].get(r, lists[0][1])
             + weight * lists[1][0].get(r, lists[1][1]) for r in union}
    out.append(sorted(fused.items(), key=lambda x: (-x[1], x[0]))[:k])
  return out


def reference_rrf(first, second, k, c=60):
  out = []
  for q in range(first.shape[0]):
    fused = {}
    for rows in (first, second):
      for rank, r in enumerate(rows[q], 1):
        if r >= 0:
          fused[int(r)] = fused.get(int(r), 0.0) + 1 / (c + rank)
    out.append(sorted(fused.items(), key=lambda x: (-x[1], x[0]))[:k])
  return out


def check(got, expected):
  rows, scores = got
  for q, best in enumerate(expected):
    assert rows[q, :len(best)].tolist() == [r for r, _ in best]
    np.testing.assert_allclose(scores[q, :len(best)], [s for _, s in best], rtol=1e-5)
    assert (rows[q, len(best):] == -1).all()


@pytest.mark.parametrize("weight", [0.0, 0.3, 0.5, 1.0])
def test_interpolate_matches_the_reference(weight):
  first, second = rankings(0), rankings(1)
  check(fusion.interpolate(first, second, weight, 8),
        reference_interpolate(first, second, weight, 8))


def test_interpolation_weights_its_ends():
  first, second = rankings(2), rankings(3)
  # Weight 0: the first ranking's order (its last passage ties with those only the other list
  # has, which get its lowest score), and weight 1 the second's.
  rows, _ = fusion.interpolate(first, second, 0.0, 5)
  assert (rows[1:, :4] == first[0][1:, :4]).all()
  rows, _ = fusion.interpolate(first, second, 1.0, 5)
  assert (rows[1:, :4] == second[0][1:, :4]).all()


def test_reciprocal_rank_matches_the_reference():
  first, second = rankings(4)[0], rankings(5)[0]
  check(fusion.reciprocal_rank(first, second, 10), reference_rrf(first, second, 10))


def test_zscores_ignore_padding_and_constant_rows():
  scores = np.array([[3.0, 1.0, -np.inf], [2.0, 2.0, 2.0]])
  valid = np.array([[True, True, False], [True, True, True]])
  z = fusion.zscores(scores, valid)
  np.testing.assert_allclose(z[0], [1.0, -1.0, 0.0])  # Padding: 0, not -inf.
  np.testing.assert_allclose(z[1], [0.0, 0.0, 0.0])


def test_hybrid_is_the_configured_rule():
  first, second = rankings(0), rankings(1)
  for got, expected in ((fusion.hybrid(first, second, "interpolate", 0.3, 8),
                         fusion.interpolate(first, second, 0.3, 8)),
                        (fusion.hybrid(first, second, "rrf", 0.3, 8),
                         fusion.reciprocal_rank(first[0], second[0], 8))):
    np.testing.assert_array_equal(got[0], expected[0])
    np.testing.assert_array_equal(got[1], expected[1])
  with pytest.raises(ValueError, match="interpolate"):
    fusion.hybrid(first, second, "max", 0.3, 8)
