"""Fusing two retrievers' rankings of one corpus (a dense retriever's and BM25's): the hybrid
that the DPR paper found best on SQuAD (top-20: BM25 68.8, DPR 63.2, both 71.5).

Rankings are arrays: `rows` [questions, k] corpus rows (-1 pads a short list) and `scores`
[questions, k], best first. Both rules work per question on the union of the two lists:
- `interpolate`: each list's scores z-normalized over that list (the two scales are unrelated:
  cosines near 1, BM25 sums in the tens), a passage absent from a list given that list's lowest
  normalized score, then (1 - weight) * first + weight * second;
- `reciprocal_rank` (Cormack et al., 2009): the sum over lists of 1 / (c + rank), rank from 1.
"""

from __future__ import annotations

import numpy as np


FUSIONS = ("interpolate", "rrf")  # config.eval.hybrid_fusion.


def hybrid(dense: tuple[np.ndarray, np.ndarray], sparse: tuple[np.ndarray, np.ndarray],
           fusion: str, weight: float, k: int) -> tuple[np.ndarray, np.ndarray]:
  """The hybrid of a dense and a BM25 ranking (eval's rows, search's --retriever=hybrid):
  `interpolate` with BM25's share `weight`, or `rrf` (which has no weight)."""
  if fusion == "interpolate":
    return interpolate(dense, sparse, weight, k)
  if fusion == "rrf":
    return reciprocal_rank(dense[0], sparse[0], k)
  raise ValueError(f"fusion {fusion!r}: expected one of {FUSIONS}")


def zscores(scores: np.ndarray, valid: np.ndarray) -> np.ndarray:
  """Per row, (score - mean) / std over the row's valid entries (0 where the std is 0, and at
  the invalid entries: padding's -inf never reaches a weighted sum)."""
  scores = np.where(valid, scores, 0.0)
  count = np.maximum(valid.sum(1, keepdims=True), 1)
  mean = scores.sum(1, keepdims=True) / count
  std = np.sqrt(np.where(valid, (scores - mean) ** 2, 0).sum(1, keepdims=True) / count)
  return np.where(valid & (std > 0), (scores - mean) / np.where(std > 0, std, 1), 0.0)


def interpolate(first: tuple[np.ndarray, np.ndarray], second: tuple[np.ndarray, np.ndarray],
                weight: float, k: int) -> tuple[np.ndarray, np.ndarray]:
  """(rows, scores) [questions, k]: (1 - weight) * first's z-scores + weight * second's."""
  normalized, lowest = [], []
  for rows, scores in (first, second):
    valid = rows >= 0
    z = zscores(scores.astype(np.float64), valid)
    normalized.append((rows, z))
    lowest.append(np.where(valid.any(1), np.where(valid, z, np.inf).min(1), 0.0))
  return _fuse(normalized, [1.0 - weight, weight], lowest, k)


def reciprocal_rank(first: np.ndarray, second: np.ndarray, k: int, c: int = 60
                    ) -> tuple[np.ndarray, np.ndarray]:
  """(rows, scores) [questions, k] by reciprocal-rank fusion of two rankings' rows."""
  ranked = []
  for rows in (first, second):
    ranks = np.arange(1, rows.shape[1] + 1)
    ranked.append((rows, np.broadcast_to(1.0 / (c + ranks), rows.shape)))
  absent = np.zeros(first.shape[0])
  return _fuse(ranked, [1.0, 1.0], [absent, absent], k)


def _fuse(rankings: list[tuple[np.ndarray, np.ndarray]], weights: list[float],
          missing: list[np.ndarray], k: int) -> tuple[np.ndarray, np.ndarray]:
  """Per question: every row of any list, scored sum_i weights[i] * (its score in list i, or
  missing[i][question] where list i lacks it); the top k, ties to the lower row."""
  n = rankings[0][0].shape[0]
  out_rows = np.full((n, k), -1, np.int64)
  out_scores = np.full((n, k), -np.inf, np.float32)
  for q in range(n):
    lists = [{int(r): float(s) for r, s in zip(rows[q], scores[q]) if r >= 0}
             for rows, scores in rankings]
    fused = {row: sum(w * found.get(row, float(absent[q]))
                      for found, w, absent in zip(lists, weights, missing))
             for row in set().union(*lists)}
    best = sorted(fused.items(), key=lambda item: (-item[1], item[0]))[:k]
    out_rows[q, :len(best)] = [row for row, _ in best]
    out_scores[q, :len(best)] = [score for _, score in best]
  return out_rows, out_scores
