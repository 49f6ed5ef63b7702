"""RocketQA's denoised hard negatives (step 3), as a pure function of one question's candidates.

The dual encoder's top-k for a labeled question holds passages that answer it without being
labeled (SQuAD, NQ and MS MARCO label one or a few passages per question). Taking every
non-positive candidate as a negative trains the retriever to push real answers away (the
paper's undenoised ablation: MS MARCO MRR@10 about 26 against 36.4 denoised). So the
cross-encoder M_C rescores the candidates, and a candidate becomes a hard negative only if it is
not a labeled positive and M_C is confident it is irrelevant: score < `threshold` (RocketQA:
0.1). The others are dropped as likely unlabeled positives.
"""

from __future__ import annotations

import dataclasses
from typing import Collection, Mapping, Sequence

import numpy as np

# The thresholds the denoise stage reports on (stats.json "thresholds"); RocketQA uses 0.1.
REPORTED_THRESHOLDS = (0.01, 0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 0.9)


@dataclasses.dataclass(frozen=True)
class Denoised:
  """One question's candidates, sorted out; each list keeps the retrieval order."""
  negatives: tuple[str, ...]  # M_C score < threshold: hard negatives.
  dropped: tuple[str, ...]  # M_C score >= threshold: likely unlabeled positives.
  undenoised: tuple[str, ...]  # Every candidate that is not a labeled positive (the ablation).
  labeled_positives: int  # Candidates that are labeled positives: never negatives, not scored.

  @property
  def stats(self) -> dict[str, int]:
    return {"candidates": len(self.undenoised) + self.labeled_positives,
            "labeled_positives": self.labeled_positives, "negatives": len(self.negatives),
            "dropped": len(self.dropped)}


def to_score(candidates: Sequence[str], positives: Collection[str]) -> list[str]:
  """The candidates M_C must judge: those that are not labeled positives, each once, in
  retrieval order."""
  return [pid for pid in dict.fromkeys(candidates) if pid not in positives]


def denoise(candidates: Sequence[str], scores: Mapping[str, float], positives: Collection[str],
            threshold: float) -> Denoised:
  """Sorts a question's retrieved `candidates` (best first) into hard negatives and dropped
  ones, by M_C's `scores` of those `to_score` returns (labeled positives need none)."""
  judged = to_score(candidates, positives)
  missing = [pid for pid in judged if pid not in scores]
  if missing:
    raise ValueError(f"no cross-encoder score for candidates {missing[:5]}")
  return Denoised(negatives=tuple(pid for pid in judged if scores[pid] < threshold),
                  dropped=tuple(pid for pid in judged if scores[pid] >= threshold),
                  undenoised=tuple(judged),
                  labeled_positives=len(dict.fromkeys(candidates)) - len(judged))


def threshold_table(scores: np.ndarray, with_answer: np.ndarray,
                    thresholds: Sequence[float] = REPORTED_THRESHOLDS) -> list[dict]:
  """Per threshold, what the rule would do with the scored candidates (M_C's `scores`, and
  whether each contains an answer string): how many become negatives and how many are
  dropped, and how many of each contain an answer (the paper's point: many mined "negatives"
  are unlabeled positives)."""
  scores, with_answer = np.asarray(scores), np.asarray(with_answer, bool)
  table = []
  for threshold in thresholds:
    negative = scores < threshold
    table.append({"threshold": threshold, "negatives": int(negative.sum()),
                  "negatives_with_answer": int((negative & with_answer).sum()),
                  "dropped": int((~negative).sum()),
                  "dropped_with_answer": int((~negative & with_answer).sum())})
  return table


def score_histogram(scores: np.ndarray, with_answer: np.ndarray, bins: int = 20) -> dict:
  """Counts of M_C's scores in `bins` equal bins over [0, 1], apart for candidates with and
  without an answer string: {"edges", "with_answer", "without_answer"}."""
  scores, with_answer = np.asarray(scores), np.asarray(with_answer, bool)
  edges = np.linspace(0.0, 1.0, bins + 1)
  return {"edges": edges.round(6).tolist(),
          "with_answer": np.histogram(scores[with_answer], edges)[0].tolist(),
          "without_answer": np.histogram(scores[~with_answer], edges)[0].tolist()}
