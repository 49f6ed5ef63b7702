"""RocketQA's pseudo-labelling rule (augmentation.py) at its edges, against a plain reference."""

import numpy as np

from rocketqa_jax.augmentation import PseudoLabel, pseudo_label


def reference(scored, positive_threshold, negative_threshold):
  """The paper's rule written out: M_C's top passage is a positive if its score is above the
  positive threshold; passages below the negative threshold are negatives."""
  if not scored:
    return None
  best = max(range(len(scored)), key=lambda i: (scored[i][1], -i))  # First of equal scores.
  positive, score = scored[best]
  if score <= positive_threshold:
    return None
  return positive, [pid for pid, s in scored if s < negative_threshold]


def test_positive_threshold_is_strict():
  assert pseudo_label([("a", 0.9), ("b", 0.01)], 0.9, 0.1) is None
  assert pseudo_label([("a", 0.91), ("b", 0.01)], 0.9, 0.1) == PseudoLabel("a", 0.91, ("b",))


def test_negative_threshold_is_strict_and_middle_scores_are_left_out():
  label = pseudo_label([("n1", 0.09), ("m", 0.5), ("p", 0.95), ("n2", 0.1)], 0.9, 0.1)
  assert label == PseudoLabel("p", 0.95, ("n1",))


def test_best_score_wins_and_ties_go_to_the_better_retrieved():
  assert pseudo_label([("a", 0.2), ("b", 0.97), ("c", 0.99)], 0.9, 0.1).positive == "c"
  assert pseudo_label([("a", 0.95), ("b", 0.95)], 0.9, 0.1).positive == "a"


def test_no_candidates():
  assert pseudo_label([], 0.9, 0.1) is None


def test_random_lists_match_the_reference():
  rng = np.random.default_rng(1)
  for _ in range(300):
    n = int(rng.integers(0, 8))
    scored = [(f"d{i}", float(rng.choice([0.1, 0.9, 0.95, rng.uniform()]))) for i in range(n)]
    label, expected = pseudo_label(scored, 0.9, 0.1), reference(scored, 0.9, 0.1)
    if expected is None:
      assert label is None
    else:
      assert (label.positive, list(label.negatives)) == expected
