import numpy as np

from rocketqa_jax import metrics


def test_mrr_and_recall_by_hand():
  ranked = [["a", "b", "c"], ["x", "y", "z"], ["p", "q", "r"]]
  relevant = [{"b"}, {"q", "z"}, {"nope"}]
  # Ranks of first relevant: 2, 2 (q is not in list 2... y? no: z at 3), 0.
  assert metrics.first_relevant_rank(ranked, relevant).tolist() == [2, 3, 0]
  assert np.isclose(metrics.mrr_at_k(ranked, relevant, 10), (1 / 2 + 1 / 3) / 3)
  assert np.isclose(metrics.mrr_at_k(ranked, relevant, 2), (1 / 2) / 3)
  np.testing.assert_allclose(metrics.reciprocal_ranks(ranked, relevant, 10), [1 / 2, 1 / 3, 0])
  # Recall of labeled positives: query 2 has 2 positives, one (z) retrieved.
  assert np.isclose(metrics.recall_at_k(ranked, relevant, 3), (1 + 0.5 + 0) / 3)
  assert np.isclose(metrics.recall_at_k(ranked, relevant, 1), 0)
