"""RocketQA's denoising rule (denoising.py) at its edges, against a plain reference."""

import numpy as np
import pytest

from rocketqa_jax import denoising
from rocketqa_jax.denoising import Denoised, denoise, to_score


def reference(candidates, scores, positives, threshold):
  """The paper's rule written out: a retrieved passage is a negative iff it is not a labeled
  positive and M_C scores it below the threshold."""
  seen, negatives, dropped = set(), [], []
  for pid in candidates:
    if pid in seen or pid in positives:
      continue
    seen.add(pid)
    (negatives if scores[pid] < threshold else dropped).append(pid)
  return negatives, dropped


def test_threshold_is_strict():
  scores = {"a": 0.09, "b": 0.1, "c": 0.11}
  result = denoise(["a", "b", "c"], scores, positives=(), threshold=0.1)
  assert result == Denoised(negatives=("a",), dropped=("b", "c"), undenoised=("a", "b", "c"),
                            labeled_positives=0)


def test_labeled_positives_are_never_negatives_nor_scored():
  assert to_score(["p", "a", "q", "b"], {"p", "q"}) == ["a", "b"]
  result = denoise(["p", "a", "q", "b"], {"a": 0.0, "b": 0.95}, {"p", "q"}, 0.1)
  assert (result.negatives, result.dropped, result.labeled_positives) == (("a",), ("b",), 2)
  assert result.stats == {"candidates": 4, "labeled_positives": 2, "negatives": 1, "dropped": 1}


def test_ties_keep_the_retrieval_order():
  result = denoise(["c", "a", "b"], {"a": 0.05, "b": 0.05, "c": 0.05}, (), 0.1)
  assert result.negatives == ("c", "a", "b")


def test_no_candidates_and_every_candidate_a_positive():
  assert denoise([], {}, {"p"}, 0.1).stats == {"candidates": 0, "labeled_positives": 0,
                                               "negatives": 0, "dropped": 0}
  only_positives = denoise(["p", "q"], {}, {"p", "q"}, 0.1)
  assert only_positives.negatives == only_positives.dropped == only_positives.undenoised == ()
  assert only_positives.labeled_positives == 2


def test_undenoised_ablation_is_every_non_positive_candidate():
  result = denoise(["a", "p", "b"], {"a": 0.9, "b": 0.01}, {"p"}, 0.1)
  assert result.undenoised == ("a", "b") and result.negatives == ("b",)


def test_missing_score_is_an_error():
  with pytest.raises(ValueError, match=r"no cross-encoder score for candidates \['b'\]"):
    denoise(["a", "b"], {"a": 0.5}, (), 0.1)


def test_random_lists_match_the_reference():
  rng = np.random.default_rng(0)
  for _ in range(200):
    pool = [f"d{i}" for i in range(12)]
    candidates = list(rng.choice(pool, rng.integers(0, 15)))  # With duplicates.
    positives = set(rng.choice(pool, rng.integers(0, 3)))
    scores = {pid: float(rng.choice([0.05, 0.1, rng.uniform()])) for pid in pool}
    result = denoise(candidates, scores, positives, 0.1)
    negatives, dropped = reference(candidates, scores, positives, 0.1)
    assert (list(result.negatives), list(result.dropped)) == (negatives, dropped)
    assert sorted(result.undenoised) == sorted(negatives + dropped)


def test_threshold_table_and_histogram_match_plain_counts():
  rng = np.random.default_rng(0)
  scores = rng.uniform(size=500).astype(np.float32)
  scores[:3] = [0.1, 0.0, 1.0]  # On a threshold, and both ends.
  answer = rng.uniform(size=500) < scores  # Answers more likely at high scores.
  table = denoising.threshold_table(scores, answer, (0.1, 0.5))
  for row in table:
    t = row["threshold"]
    negatives = [i for i in range(500) if scores[i] < t]
    assert row["negatives"] == len(negatives) and row["dropped"] == 500 - len(negatives)
    assert row["negatives_with_answer"] == sum(answer[i] for i in negatives)
    assert row["dropped_with_answer"] == answer.sum() - row["negatives_with_answer"]
  assert table[0]["negatives"] < table[1]["negatives"]
  histogram = denoising.score_histogram(scores, answer, bins=4)
  assert histogram["edges"] == [0.0, 0.25, 0.5, 0.75, 1.0]
  for b in range(4):
    inside = [i for i in range(500) if 0.25 * b <= scores[i] < 0.25 * (b + 1)
              or (b == 3 and scores[i] == 1.0)]  # numpy's last bin holds its right edge.
    assert histogram["with_answer"][b] == sum(answer[i] for i in inside)
    assert histogram["without_answer"][b] == sum(not answer[i] for i in inside)
