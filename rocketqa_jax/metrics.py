"""Ranking metrics as pure numpy functions of a ranked list and the relevant set per query."""

from __future__ import annotations

from typing import Sequence

import numpy as np


def first_relevant_rank(ranked: Sequence[Sequence], relevant: Sequence[set]) -> np.ndarray:
  """1-based rank of each query's first relevant item in its ranked list; 0 if none is there."""
  ranks = np.zeros(len(ranked), np.int64)
  for q, (items, rel) in enumerate(zip(ranked, relevant, strict=True)):
    ranks[q] = next((r for r, item in enumerate(items, 1) if item in rel), 0)
  return ranks


def mrr_at_k(ranked, relevant, k: int = 10) -> float:
  """Mean reciprocal rank of the first relevant item within the top k (MS MARCO's MRR@10)."""
  ranks = first_relevant_rank([list(items)[:k] for items in ranked], relevant)
  return float(np.mean(np.where(ranks > 0, 1.0 / np.maximum(ranks, 1), 0.0)))


def recall_at_k(ranked, relevant, k: int) -> float:
  """Fraction of each query's relevant items found in its top k, averaged over queries."""
  return float(np.mean([len(rel.intersection(list(items)[:k])) / len(rel)
                        for items, rel in zip(ranked, relevant, strict=True)]))
