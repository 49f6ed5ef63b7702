"""Reranking: the cross-encoder M_C rescores the top of a first-stage ranking (dense, BM25 or
their hybrid). M_C reads question and passage together, so it judges better than either
retriever, at the price of one forward pass per pair (RocketQA's toolkit ships M_C as exactly
this reranker).

Fusion: (1 - weight) * the first stage's z-scores over its whole ranking (eval's and search's
top 100) + weight * M_C's raw logits; `weight` 1 orders the head by M_C alone. M_C is trained
pointwise (a sigmoid per pair), so its logits mean the same on every question: a confident M_C
(logits far apart) overrules the first stage, a hesitant one defers to it. (Z-scoring the logits
over the few reranked passages, as the hybrid does its two lists, would stretch a hesitant M_C's
small differences as far as a confident one's: 0.003-0.004 MRR@10 lower on the dev split.)

The head M_C rescores: the top `depth`, or with `margin` > 0 only those of them within `margin`
(in first-stage z-score) of the question's best: where the first stage is sure, M_C is not
asked (dev: as good as a fixed depth for about half the pairs). Passages below the head follow
in their first-stage order.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from rocketqa_jax import fusion
from rocketqa_jax.cross_encoder import CrossEncoderScorer
from rocketqa_jax.data.corpus import Corpus


def head(rows: np.ndarray, scores: np.ndarray, depth: int, margin: float = 0.0) -> np.ndarray:
  """The passages M_C rescores: rows[:, :depth] of a ranking (rows, scores) [questions, k], -1
  past each question's head: with `margin` > 0, the passages within `margin` of the best one's
  z-score; a head of one passage is empty (nothing to reorder)."""
  keep = rows[:, :depth] >= 0
  if margin > 0:
    z = fusion.zscores(scores.astype(np.float64), rows >= 0)[:, :depth]
    keep &= z >= z[:, :1] - margin
  keep &= keep.sum(1, keepdims=True) > 1
  return np.where(keep, rows[:, :depth], -1)


def score_top(scorer: CrossEncoderScorer, questions: Sequence[str], corpus: Corpus,
              heads: Sequence[np.ndarray], *, use_titles: bool = False,
              progress: bool = False) -> list[np.ndarray]:
  """Per head (corpus rows [questions, depth], -1 where none), M_C's logits of each question with
  its rows (0 where -1). A pair in several heads (a hybrid's and the dense ranking it fused) is
  scored once."""
  keys = [np.arange(len(h))[:, None] * len(corpus) + h for h in heads]
  unique = np.unique(np.concatenate([k[h >= 0] for k, h in zip(keys, heads)]))
  q, rows = np.divmod(unique, len(corpus))
  scores = scorer.score([questions[i] for i in q], corpus.texts[rows],
                        corpus.titles[rows] if use_titles else None, progress=progress,
                        probabilities=False)
  return [np.where(h >= 0, scores[np.searchsorted(unique, k).clip(max=len(unique) - 1)], 0.0
                   ).astype(np.float32) for k, h in zip(keys, heads)]


def rerank(rows: np.ndarray, scores: np.ndarray, heads: np.ndarray, logits: np.ndarray,
           weight: float) -> tuple[np.ndarray, np.ndarray]:
  """(rows, scores) [questions, k]: each question's head (`heads`, a prefix of its rows, from
  head()) reordered by (1 - weight) * z(first-stage score) + weight * M_C logit, the rest after
  it in their order (scored below the head, 1 apart)."""
  depth = heads.shape[1]
  scored = heads >= 0
  z = fusion.zscores(scores.astype(np.float64), rows >= 0)[:, :depth]
  fused = np.where(scored, (1 - weight) * z + weight * logits, -np.inf)
  order = np.argsort(-fused, axis=1, kind="stable")  # Unscored positions keep their order last.
  new_rows = rows.copy()
  new_rows[:, :depth] = np.take_along_axis(rows[:, :depth], order, 1)
  # Scores: the head's fused ones, then from its lowest down by 1 a passage.
  n = scored.sum(1, keepdims=True)
  lowest = np.where(n > 0, np.where(scored, fused, np.inf).min(1, keepdims=True), 0.0)
  below = lowest - (np.arange(rows.shape[1])[None] - n + 1)
  new_scores = np.where(np.arange(rows.shape[1])[None] < n,
                        np.pad(np.take_along_axis(fused, order, 1),
                               ((0, 0), (0, rows.shape[1] - depth))), below)
  new_scores = np.where(new_rows >= 0, new_scores, -np.inf)
  return new_rows, new_scores.astype(np.float32)
