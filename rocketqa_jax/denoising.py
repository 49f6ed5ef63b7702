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
