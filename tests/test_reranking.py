"""reranking.py against a plain reference, and CrossEncoderScorer.rerank / logits."""

import statistics

import numpy as np
import pytest

from rocketqa_jax import cross_encoder as ce
from rocketqa_jax import reranking
from rocketqa_jax.data.corpus import Corpus


def reference_head(rows, scores, depth, margin):
  """Per question, its head's rows: the top `depth` valid rows, within `margin` of the best one's
  z-score (over the whole list) where margin > 0; none where fewer than 2."""
  heads = []
  for q in range(rows.shape[0]):
    valid = [(int(r), float(s)) for r, s in zip(rows[q], scores[q]) if r >= 0]
    z = zscores([s for _, s in valid])
    head = [r for (r, _), zr in zip(valid[:depth], z) if margin <= 0 or zr >= z[0] - margin]
    heads.append(head if len(head) > 1 else [])
  return heads


def zscores(values):
  mean, std = statistics.fmean(values), statistics.pstdev(values)
  return [(v - mean) / std if std else 0.0 for v in values]


def reference_rerank(rows, scores, heads, logits, weight):
  """Per question: its head by (1 - w) z(first-stage score over the list) + w logit, then the
  rest of the list as it was."""
  out = []
  for q in range(rows.shape[0]):
    valid = [int(r) for r in rows[q] if r >= 0]
    z = dict(zip(valid, zscores([float(s) for r, s in zip(rows[q], scores[q]) if r >= 0])))
    head = heads[q]
    fused = {r: (1 - weight) * z[r] + weight * float(logits[q, i]) for i, r in enumerate(head)}
    ranked = [r for r, _ in sorted(fused.items(), key=lambda x: (-x[1], head.index(x[0])))]
    out.append(ranked + valid[len(head):])
  return out


@pytest.mark.parametrize("weight", [0.0, 0.3, 1.0])
@pytest.mark.parametrize("margin", [0.0, 0.8])
def test_rerank_matches_the_reference(weight, margin):
  rng = np.random.default_rng(0)
  rows = np.stack([rng.permutation(30)[:8] for _ in range(6)]).astype(np.int64)
  scores = np.sort(rng.normal(size=(6, 8)), axis=1)[:, ::-1].copy()
  rows[0, 5:], scores[0, 5:] = -1, -np.inf  # A list shorter than the corpus.
  rows[1, 2:], scores[1, 2:] = -1, -np.inf  # Shorter than the depth.
  rows[2, 1:], scores[2, 1:] = -1, -np.inf  # One passage: nothing to rerank.
  scores[3, 0] += 5  # A first stage sure of its best: alone within any margin.
  logits = rng.normal(size=(6, 4)).astype(np.float32) * 5
  heads = reranking.head(rows, scores, 4, margin)
  expected_heads = reference_head(rows, scores, 4, margin)
  assert [h[h >= 0].tolist() for h in heads] == expected_heads
  assert (heads[2] == -1).all() and (margin == 0) == (heads[3] >= 0).all()
  got_rows, got_scores = reranking.rerank(rows, scores, heads, np.where(heads >= 0, logits, 0),
                                          weight)
  for q, expected in enumerate(reference_rerank(rows, scores, expected_heads, logits, weight)):
    assert got_rows[q, :len(expected)].tolist() == expected
    assert (got_rows[q, len(expected):] == -1).all()
    valid = got_scores[q, :len(expected)]
    assert (np.diff(valid) < 0).all()  # A ranking: scores fall, the tail below the head.
  if weight == 0.0:  # The first stage's own order.
    np.testing.assert_array_equal(got_rows, rows)


def test_a_confident_cross_encoder_overrules_the_first_stage_and_a_hesitant_one_does_not():
  """Raw logits, not z-scored over the head: the same first stage, M_C's logits 10 apart or
  0.1 apart; only the confident M_C swaps the top two."""
  rows = np.array([[0, 1, 2, 3], [0, 1, 2, 3]])
  scores = np.array([[3.0, 2.5, 1.0, 0.0], [3.0, 2.5, 1.0, 0.0]])
  logits = np.array([[-5.0, 5.0], [-0.05, 0.05]], np.float32)
  heads = reranking.head(rows, scores, 2)
  got, _ = reranking.rerank(rows, scores, heads, logits, 0.3)
  assert got.tolist() == [[1, 0, 2, 3], [0, 1, 2, 3]]


def test_score_top_matches_direct_scores_and_skips_padding(tiny_cross_encoder):
  model, params, tokenizer, _ = tiny_cross_encoder
  scorer = ce.CrossEncoderScorer(model, params, tokenizer, max_length=48, batch_size=8)
  texts = ["The company was founded by Ada.", "Rain fell all day.", "Ada started it in 1900."]
  corpus = Corpus(ids=np.array(["a", "b", "c"]), texts=np.array(texts),
                  titles=np.array(["Firm", "Weather", "Firm"]))
  questions = ["who founded the company?", "what fell?"]
  rows = np.array([[2, 0, 1], [1, -1, -1]])
  other = np.array([[0, 1, 2], [2, 1, -1]])  # Shares (0, 0) and (1, 1) with `rows`' top 2.
  logits, other_logits = reranking.score_top(scorer, questions, corpus,
                                             [rows[:, :2], other[:, :2]])
  assert logits.shape == other_logits.shape == (2, 2) and logits[1, 1] == 0
  direct = scorer.score([questions[0]] * 3 + [questions[1]] * 2,
                        [texts[2], texts[0], texts[1], texts[1], texts[2]], probabilities=False)
  np.testing.assert_allclose(logits, [[direct[0], direct[1]], [direct[3], 0]], atol=1e-5)
  np.testing.assert_allclose(other_logits, [[direct[1], direct[2]], [direct[4], direct[3]]],
                             atol=1e-5)
  # CrossEncoderScorer.rerank orders passages by the same logits.
  order, ranked = scorer.rerank(questions[0], texts, k=2)
  full = scorer.score([questions[0]] * 3, texts, probabilities=False)
  assert order.tolist() == np.argsort(-full, kind="stable")[:2].tolist()
  np.testing.assert_allclose(ranked, full[order], rtol=1e-6)
  np.testing.assert_allclose(scorer.score([questions[0]] * 3, texts),
                             1 / (1 + np.exp(-full)), rtol=1e-5)
