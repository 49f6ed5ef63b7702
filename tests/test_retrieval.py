import numpy as np
import pytest

from rocketqa_jax import retrieval
from rocketqa_jax.retrieval import (ExactIndex, ScannIndex, exact_search, recall_against_exact,
                                    scann_available, scann_params)

# ScaNN is optional (`pip install 'rocketqa_jax[scann]'`): exact search needs nothing else.
needs_scann = pytest.mark.skipif(not scann_available(), reason="ScaNN is not installed")


def _clustered(n, d=32, clusters=50, seed=0):
  rng = np.random.default_rng(seed)
  centers = rng.normal(size=(clusters, d))
  x = centers[rng.integers(clusters, size=n)] + 0.3 * rng.normal(size=(n, d))
  return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def test_exact_index_returns_ids_and_matches_numpy():
  corpus, queries = _clustered(1001), _clustered(20, seed=1)
  ids = [f"p{i}" for i in range(len(corpus))]
  index = ExactIndex(corpus, ids, chunk_size=64)  # 8 devices x 2 chunks, last one padded.
  assert index.mesh.size == 8
  got_ids, scores = index.search(queries, 5)
  full = queries @ corpus.T
  order = np.argsort(-full, axis=1)[:, :5]
  assert got_ids.tolist() == [[ids[i] for i in row] for row in order]
  np.testing.assert_allclose(scores, np.take_along_axis(full, order, 1), rtol=1e-5)


def test_scann_params_rule():
  assert scann_params(5_000) == {"mode": "brute_force"}
  p = scann_params(1_000_000, k=10)
  assert (p["num_leaves"], p["num_leaves_to_search"], p["reorder"]) == (1000, 50, 100)
  assert scann_params(21_000_000)["training_sample_size"] == 250_000


@needs_scann
@pytest.mark.parametrize("n", [3_000, 30_000])
def test_scann_recall_and_round_trip(n, tmp_path):
  corpus, queries = _clustered(n), _clustered(200, seed=2)
  exact_rows, _ = ExactIndex(corpus).search_rows(queries, 10)
  index = ScannIndex.build(corpus, [f"p{i}" for i in range(n)], k=10)
  assert index.params["mode"] == ("brute_force" if n < 20_000 else "tree_ah")
  rows, _ = index.search_rows(queries, 10)
  recall = recall_against_exact(rows, exact_rows)
  assert recall >= (0.999 if n < 20_000 else 0.9), recall
  index.save(tmp_path / "index")
  loaded = ScannIndex.load(tmp_path / "index")
  ids, scores = loaded.search(queries, 10)
  np.testing.assert_array_equal(ids, index.ids[rows])
  assert loaded.params == index.params


def test_exact_search_rows_with_k_past_the_corpus():
  corpus = _clustered(5)
  rows, scores = exact_search(_clustered(3, seed=4), corpus, k=10, query_batch=2)
  assert rows.shape == (3, 5) and sorted(rows[0].tolist()) == [0, 1, 2, 3, 4]
  assert (np.diff(scores, axis=1) <= 0).all()


@needs_scann
def test_build_index_is_the_configured_search():
  """mine.index / eval.index / search --index: one call; ScaNN's brute force below 20,000
  passages equals exact search; a tree without re-scoring finds some, far above chance (0.3%):
  0.44-0.52 of the top 10 over runs (ScaNN's k-means is not deterministic across runs)."""
  from rocketqa_jax.retrieval import build_index
  corpus, queries = _clustered(3000), _clustered(40, seed=2)
  exact_rows, _ = build_index("exact", corpus).search_rows(queries, 10)
  scann_rows, _ = build_index("scann", corpus, k=10).search_rows(queries, 10)
  np.testing.assert_array_equal(scann_rows, exact_rows)
  tree = dict(scann_params(1_000_000, 10), num_leaves=50, num_leaves_to_search=10,
              training_sample_size=3000, reorder=0)
  approx, _ = ScannIndex.build(corpus, k=10, params=tree).search_rows(queries, 10)
  assert 0.3 < recall_against_exact(approx, exact_rows) < 1.0
  with pytest.raises(ValueError, match="index='faiss'"):
    build_index("faiss", corpus)


@pytest.mark.parametrize("kind", ["exact", pytest.param("scann", marks=needs_scann)])
def test_parts_searched_apart_and_merged_equal_one_global_search(kind):
  """What search_divided does across hosts: each part of the corpus (shards s % 3 == p, some
  smaller than k) searched alone, the top-k lists merged, equals searching the whole corpus."""
  from rocketqa_jax.retrieval import build_index, merge_top_k, search_divided
  corpus, queries = _clustered(1000), _clustered(40, seed=5)
  exact_rows, exact_scores = ExactIndex(corpus).search_rows(queries, 12)
  shards = np.array_split(np.arange(1000), 10)
  found, found_scores = [], []
  for part in range(3):
    rows = np.concatenate(shards[part::3])
    index = build_index(kind, corpus[rows], k=12)
    part_rows, part_scores = search_divided(index, rows, queries, 12, total=1000)
    found.append(part_rows)
    found_scores.append(part_scores)
  merged, merged_scores = merge_top_k(np.stack(found), np.stack(found_scores), 12)
  np.testing.assert_array_equal(merged, exact_rows)
  np.testing.assert_allclose(merged_scores, exact_scores, rtol=1e-5)
  # One part alone holds 300 passages; a tiny one fewer than k: the rest is -1 / -inf.
  few = np.arange(5)
  rows, scores = search_divided(build_index(kind, corpus[few]), few, queries, 12, total=1000)
  assert (rows[:, 5:] == -1).all() and np.isneginf(scores[:, 5:]).all()
  assert sorted(rows[0, :5].tolist()) == [0, 1, 2, 3, 4]
  # An empty share (more processes than shards), and k past a small corpus.
  rows, scores = search_divided(build_index(kind, corpus[:0]), few[:0], queries, 12, total=1000)
  assert rows.shape == (40, 12) and (rows == -1).all()
  assert search_divided(build_index(kind, corpus[few]), few, queries, 12, total=5)[0].shape == (
      40, 5)


def test_merge_top_k_against_a_plain_sort():
  from rocketqa_jax.retrieval import merge_top_k
  rng = np.random.default_rng(0)
  scores = -np.sort(-rng.normal(size=(3, 4, 5)), axis=2).astype(np.float32)
  rows = rng.permutation(60).reshape(3, 4, 5).astype(np.int32)
  got_rows, got_scores = merge_top_k(rows, scores, 6)
  for q in range(4):
    pairs = sorted(zip(scores[:, q].ravel(), rows[:, q].ravel()), key=lambda p: -p[0])[:6]
    assert got_rows[q].tolist() == [r for _, r in pairs]
    np.testing.assert_array_equal(got_scores[q], [s for s, _ in pairs])


def test_without_scann_exact_search_works_and_scann_says_how_to_install(monkeypatch):
  """ScaNN's wheels are x86-64 only: without it, index=scann fails at config validation (before
  any training) and at build time with the install line; exact search is unaffected."""
  import runpy

  from conftest import REPO
  from rocketqa_jax import config_lib
  monkeypatch.setattr(retrieval, "scann_available", lambda: False)
  monkeypatch.setattr(config_lib, "scann_available", lambda: False)
  with pytest.raises(ImportError, match=r"pip install 'rocketqa_jax\[scann\]'"):
    retrieval.build_index("scann", _clustered(10))
  assert retrieval.build_index("exact", _clustered(10)).search_rows(_clustered(2), 3)[0].shape == (
      2, 3)
  config = runpy.run_path(str(REPO / "configs/tiny.py"))["get_config"]()
  config_lib.validate(config)  # exact everywhere: fine
  config.mine.index = "scann"
  with pytest.raises(ValueError, match=r"config.mine.index: index=scann needs ScaNN"):
    config_lib.validate(config)
