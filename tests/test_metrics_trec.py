"""Our ranking metrics against trec_eval's (pytrec_eval), and DPR's answer matching."""

import numpy as np
import pytest
import pytrec_eval

from rocketqa_jax import metrics


def _random_run(seed=0, queries=40, docs=60):
  rng = np.random.default_rng(seed)
  ranked, graded = [], []
  for _ in range(queries):
    ranked.append([f"d{i}" for i in rng.permutation(docs)[:30]])
    judged = rng.choice(docs, size=rng.integers(1, 6), replace=False)
    graded.append({f"d{i}": int(rng.integers(0, 4)) for i in judged})
  graded[0] = {"d999": 2}  # A positive that was never retrieved.
  return ranked, graded


def _trec_eval(ranked, graded, measures, cut=None):
  # Distinct descending scores, so trec_eval's tie-breaking cannot reorder the lists.
  run = {str(q): {d: float(100 - r) for r, d in enumerate(items[:cut])}
         for q, items in enumerate(ranked)}
  qrels = {str(q): rel for q, rel in enumerate(graded)}
  return pytrec_eval.RelevanceEvaluator(qrels, measures).evaluate(run)


def test_metrics_equal_trec_eval():
  ranked, graded = _random_run()
  judged = [i for i, g in enumerate(graded) if any(v > 0 for v in g.values())]
  ranked, graded = [ranked[i] for i in judged], [graded[i] for i in judged]
  relevant = [{d for d, v in g.items() if v > 0} for g in graded]
  ours_ndcg = metrics.ndcg_at_k(ranked, graded, 10)
  full = _trec_eval(ranked, graded, {"ndcg_cut.10", "recall.5", "recall.20"})
  np.testing.assert_allclose(ours_ndcg, np.mean([r["ndcg_cut_10"] for r in full.values()]),
                             rtol=1e-6)
  for k in (5, 20):
    np.testing.assert_allclose(metrics.recall_at_k(ranked, relevant, k),
                               np.mean([r[f"recall_{k}"] for r in full.values()]), rtol=1e-6)
  # MS MARCO's MRR@10 = trec_eval's reciprocal rank over the run cut at 10.
  cut = _trec_eval(ranked, [{d: 1 for d in rel} for rel in relevant], {"recip_rank"}, cut=10)
  np.testing.assert_allclose(metrics.mrr_at_k(ranked, relevant, 10),
                             np.mean([r["recip_rank"] for r in cut.values()]), rtol=1e-6)


@pytest.mark.parametrize("answer,text,expected", [
    ("Denver Broncos", "The denver broncos defeated the Panthers.", True),  # Case.
    ("Broncos", "the Denver Broncos' defense", True),  # Punctuation is its own token.
    ("Bronco", "the Denver Broncos won", False),  # Whole tokens only.
    ("Nikola Tesla", "Tesla, Nikola", False),  # Order matters.
    ("Zürich", "born in Zu\u0308rich in 1900", True),  # Unicode: composed == decomposed (NFD).
    ("Beyoncé", "BEYONCÉ sang", True),  # Case and accents together.
    ("the Beatles", "songs by Beatles", False),  # DPR keeps articles: no article stripping.
    ("U.S.", "the U.S. army", True),
    ("U.S.", "the US army", False),
    ("1,000", "about 1,000 people", True),
    ("", "anything", False),  # An empty answer matches nothing.
])
def test_dpr_has_answer(answer, text, expected):
  assert metrics.has_answer([answer], text) is expected


def test_answer_accuracy():
  texts = [["no", "the answer is Paris"], ["Berlin is here", "x"], ["nothing", "here"]]
  answers = [["Paris"], ["Berlin", "Bonn"], ["Rome"]]
  assert metrics.answer_accuracy(texts, answers, (1, 2)) == {1: 1 / 3, 2: 2 / 3}
  # Against the plain rule: some answer's tokens in some passage of the top k.
  for k in (1, 2):
    plain = np.mean([any(metrics.has_answer(a, t) for t in ts[:k])
                     for ts, a in zip(texts, answers)])
    assert metrics.answer_accuracy(texts, answers, (k,))[k] == plain
