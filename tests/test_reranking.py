"""reranking.py against a plain reference, and CrossEncoderScorer.rerank / logits."""

import statistics

import numpy as np
import pytest

from rocketqa_jax import cross_encoder as ce
from rocketqa_jax import reranking
from rocketqa_jax.data.corpus import Corpus


def reference_rerank(rows, scores, logits, weight):
  """Per question: the first depth rows by (1 - w) z(first) + w z(logit), the rest as they were."""
  depth = logits.shape[1]
  out = []
  for q in range(rows.shape[0]):
    head = [(int(r), float(s), float(c)) for r, s, c in zip(rows[q, :depth], scores[q, :depth],
                                                          logits[q]) if r >= 0]
    z = []
    for column in (1, 2):
      values = [h[column] for h in head]
      mean, std = statistics.fmean(values), statistics.pstdev(values)
      z.append([(v - mean) / std if std else 0.0 for v in values])
    fused = {r: (1 - weight) * a + weight * b for (r, _, _), a, b in zip(head, *z)}
    ranked = [r for r, _ in sorted(fused.items(), key=lambda x: (-x[1], x[0]))]
    out.append(ranked + [int(r) for r in rows[q, depth:] if r >= 0])
  return out


@pytest.mark.parametrize("weight", [0.0, 0.4, 1.0])
def test_rerank_matches_the_reference(weight):
  rng = np.random.default_rng(0)
  rows = np.stack([rng.permutation(30)[:8] for _ in range(5)]).astype(np.int64)
  scores = np.sort(rng.normal(size=(5, 8)), axis=1)[:, ::-1].copy()
  rows[0, 5:], scores[0, 5:] = -1, -np.inf  # A list shorter than the corpus.
  rows[1, 2:], scores[1, 2:] = -1, -np.inf  # Shorter than the depth.
  logits = rng.normal(size=(5, 4)).astype(np.float32) * 5
  got_rows, got_scores = reranking.rerank(rows, scores, logits, weight)
  for q, expected in enumerate(reference_rerank(rows, scores, logits, weight)):
    assert got_rows[q, :len(expected)].tolist() == expected
    assert (got_rows[q, len(expected):] == -1).all()
    valid = got_scores[q, :len(expected)]
    assert (np.diff(valid) <= 0).all()  # A ranking: scores fall, the tail below the head.
  assert sorted(got_rows[2].tolist()) == sorted(rows[2].tolist())
  if weight == 0.0:  # The first stage's own order.
    np.testing.assert_array_equal(got_rows, rows)


def test_score_top_matches_direct_scores_and_skips_padding(tiny_cross_encoder):
  model, params, tokenizer, _ = tiny_cross_encoder
  scorer = ce.CrossEncoderScorer(model, params, tokenizer, max_length=48, batch_size=8)
  texts = ["The company was founded by Ada.", "Rain fell all day.", "Ada started it in 1900."]
  corpus = Corpus(ids=np.array(["a", "b", "c"]), texts=np.array(texts),
                  titles=np.array(["Firm", "Weather", "Firm"]))
  questions = ["who founded the company?", "what fell?"]
  rows = np.array([[2, 0, 1], [1, -1, -1]])
  other = np.array([[0, 1, 2], [2, 1, -1]])  # Shares (0, 0) and (1, 1) with `rows`' top 2.
  logits, other_logits = reranking.score_top(scorer, questions, corpus, [rows, other], 2)
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
