"""Reranking: the cross-encoder M_C rescores the top `depth` passages of a first-stage ranking
(dense, BM25 or their hybrid). M_C reads question and passage together, so it judges better
than either retriever, at the price of one forward pass per pair (RocketQA's toolkit ships M_C
as exactly this reranker).

M_C's logits and the first stage's scores are fused like the hybrid (fusion.interpolate over
the same passages): `weight` 1 orders the top `depth` by M_C alone, less keeps part of the
first stage's judgement (M_C is small and trained on few questions here). Passages below
`depth` follow in their first-stage order.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from rocketqa_jax import fusion
from rocketqa_jax.cross_encoder import CrossEncoderScorer
from rocketqa_jax.data.corpus import Corpus


def score_top(scorer: CrossEncoderScorer, questions: Sequence[str], corpus: Corpus,
              rankings: Sequence[np.ndarray], depth: int, *, use_titles: bool = False,
              progress: bool = False) -> list[np.ndarray]:
  """Per ranking (corpus rows [questions, k]), M_C's logits [questions, depth] of each question
  with its first `depth` rows (0 where a row is -1: a ranking shorter than depth). A pair in
  several rankings (a hybrid's and the dense ranking it fused) is scored once."""
  heads = [rows[:, :depth] for rows in rankings]
  keys = [np.arange(len(head))[:, None] * len(corpus) + head for head in heads]
  unique = np.unique(np.concatenate([k[head >= 0] for k, head in zip(keys, heads)]))
  q, rows = np.divmod(unique, len(corpus))
  scores = scorer.score([questions[i] for i in q], corpus.texts[rows],
                        corpus.titles[rows] if use_titles else None, progress=progress,
                        probabilities=False)
  return [np.where(head >= 0, scores[np.searchsorted(unique, k).clip(max=len(unique) - 1)], 0.0
                   ).astype(np.float32) for k, head in zip(keys, heads)]


def rerank(rows: np.ndarray, scores: np.ndarray, logits: np.ndarray, weight: float
           ) -> tuple[np.ndarray, np.ndarray]:
  """(rows, scores) [questions, k]: the first depth = logits.shape[1] rows reordered by
  (1 - weight) * z(first-stage score) + weight * z(M_C logit), the rest after them in their
  order (scored below the reranked ones, 1 apart)."""
  depth = logits.shape[1]
  head_rows, head_scores = fusion.interpolate((rows[:, :depth], scores[:, :depth]),
                                              (rows[:, :depth], logits), weight, depth)
  tail = rows.shape[1] - depth
  lowest = np.where(head_rows >= 0, head_scores, np.inf).min(1, keepdims=True)
  lowest = np.where(np.isfinite(lowest), lowest, 0.0)
  tail_scores = lowest - np.arange(1, tail + 1)
  tail_scores = np.where(rows[:, depth:] >= 0, tail_scores, -np.inf)
  return (np.concatenate([head_rows, rows[:, depth:]], 1),
          np.concatenate([head_scores, tail_scores], 1).astype(np.float32))
