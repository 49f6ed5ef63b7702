import numpy as np

from rocketqa_jax import metrics
from rocketqa_jax.retrieval import exact_search


def test_mrr_and_recall_by_hand():
  ranked = [["a", "b", "c"], ["x", "y", "z"], ["p", "q", "r"]]
  relevant = [{"b"}, {"q", "z"}, {"nope"}]
  # Ranks of first relevant: 2, 2 (q is not in list 2... y? no: z at 3), 0.
  assert metrics.first_relevant_rank(ranked, relevant).tolist() == [2, 3, 0]
  assert np.isclose(metrics.mrr_at_k(ranked, relevant, 10), (1 / 2 + 1 / 3) / 3)
  assert np.isclose(metrics.mrr_at_k(ranked, relevant, 2), (1 / 2) / 3)
  # Recall of labeled positives: query 2 has 2 positives, one (z) retrieved.
  assert np.isclose(metrics.recall_at_k(ranked, relevant, 3), (1 + 0.5 + 0) / 3)
  assert np.isclose(metrics.recall_at_k(ranked, relevant, 1), 0)


def test_exact_search_matches_numpy_across_chunks():
  rng = np.random.default_rng(0)
  corpus = rng.normal(size=(1000, 16)).astype(np.float32)
  queries = rng.normal(size=(37, 16)).astype(np.float32)
  ids, scores = exact_search(queries, corpus, k=10, chunk_size=300, query_batch=16)
  full = queries @ corpus.T
  expected = np.argsort(-full, axis=1)[:, :10]
  np.testing.assert_array_equal(ids, expected)
  np.testing.assert_allclose(scores, np.take_along_axis(full, expected, 1), rtol=1e-5)
  ids, _ = exact_search(queries, corpus[:5], k=10)  # k larger than the corpus.
  assert ids.shape == (37, 5)
