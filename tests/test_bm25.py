"""bm25.py against a plain Python BM25 (Lucene's scoring), and on SQuAD-mini's eval split."""

import math
from collections import Counter

import bm25s
import numpy as np

from rocketqa_jax import bm25, metrics
from rocketqa_jax.bm25 import BM25
from rocketqa_jax.data.corpus import Corpus

TEXTS = ["The cat sat on the mat near the cat door.", "Dogs chase cats in the garden.",
         "A garden of roses and tulips.", "Quantum chromodynamics describes quarks.",
         "The mat was red; the door was blue."]


def reference(texts, question, k1=1.5, b=0.75):
  """Lucene's BM25: sum over question words of idf * tf / (tf + k1 (1 - b + b dl / avgdl))."""
  docs = bm25s.tokenize(texts, stopwords="en", return_ids=False, show_progress=False)
  words = bm25s.tokenize([question], stopwords="en", return_ids=False, show_progress=False)[0]
  avgdl = sum(map(len, docs)) / len(docs)
  df = Counter(w for d in docs for w in set(d))
  scores = []
  for d in docs:
    tf = Counter(d)
    scores.append(sum(math.log(1 + (len(docs) - df[w] + 0.5) / (df[w] + 0.5))
                      * tf[w] / (tf[w] + k1 * (1 - b + b * len(d) / avgdl))
                      for w in set(words) if w in tf))
  return np.array(scores)


def test_scores_and_order_match_the_reference():
  index = BM25.build(TEXTS)
  for question in ("cat on the mat", "garden cats", "red door"):
    expected = reference(TEXTS, question)
    rows, scores = index.search([question], k=5)
    matched = rows[0] >= 0
    assert matched.sum() == (expected > 0).sum()
    np.testing.assert_allclose(scores[0][matched], expected[rows[0][matched]], rtol=1e-5)
    assert list(rows[0][matched]) == sorted(np.flatnonzero(expected > 0),
                                            key=lambda r: -expected[r])


def test_no_word_in_common_pads_and_titles_count(tmp_path):
  index = BM25.build(TEXTS)
  rows, scores = index.search(["zebra"], k=3)
  assert (rows == -1).all() and np.isneginf(scores).all()
  titled = BM25.build(TEXTS, titles=["Pets", "Pets", "Flowers", "Physics", "Zebra"])
  assert titled.search(["zebra"], k=1)[0][0, 0] == 4
  titled.save(tmp_path / "bm25")
  again = BM25.load(tmp_path / "bm25")
  np.testing.assert_array_equal(again.search(["garden cats"], 3)[0],
                                titled.search(["garden cats"], 3)[0])


def test_squad_mini_eval_mrr(squad_mini):
  """The peer figure: bm25s on SQuAD-mini eval, text only, MRR@10 0.828."""
  corpus, questions = squad_mini.corpus, squad_mini.eval
  rows, _ = BM25.build(list(corpus.texts)).search([q.text for q in questions], k=10)
  ranked = [corpus.ids[r[r >= 0]] for r in rows]
  mrr = metrics.mrr_at_k(ranked, [set(q.positive_ids) for q in questions], 10)
  assert 0.82 <= mrr <= 0.84, mrr
  print(f"BM25 MRR@10 on SQuAD-mini eval: {mrr:.4f}")


def test_stemming_matches_word_forms():
  """Snowball stemming: "founded" finds "founding", which the plain index cannot."""
  texts = ["The founding of the city.", "A city of founders and dogs.", "Rain in Spain."]
  assert (BM25.build(texts).search(["founded"], 3)[0] == -1).all()
  rows, _ = BM25.build(texts, stemmer="english").search(["founded"], 3)
  assert rows[0, 0] == 0 and (rows[0, 1:] == -1).all()  # "founders" stems to "founder".


def test_for_corpus_builds_once_and_rebuilds_for_other_settings(tmp_path):
  corpus = Corpus(ids=[f"p{i}" for i in range(len(TEXTS))], texts=TEXTS, titles=[""] * len(TEXTS))
  settings = dict(use_titles=False, k1=0.9, b=0.75, stemmer="english")
  first = bm25.for_corpus(corpus, tmp_path / "bm25", **settings)
  written = (tmp_path / "bm25" / bm25.SETTINGS).stat().st_mtime_ns
  again = bm25.for_corpus(corpus, tmp_path / "bm25", **settings)
  assert (tmp_path / "bm25" / bm25.SETTINGS).stat().st_mtime_ns == written  # Loaded, not built.
  assert again.stemmer == "english"
  for question in ("cats garden", "doors"):
    for got, expected in zip(again.search([question], 3), first.search([question], 3)):
      np.testing.assert_array_equal(got, expected)
  other = bm25.for_corpus(corpus, tmp_path / "bm25", **{**settings, "k1": 1.5})
  assert (tmp_path / "bm25" / bm25.SETTINGS).stat().st_mtime_ns != written
  assert not np.allclose(other.search(["cat mat"], 2)[1], first.search(["cat mat"], 2)[1])
