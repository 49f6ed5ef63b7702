"""RocketQA's data augmentation (step 4), as a pure function of one unlabeled question's
candidates and the cross-encoder's scores of them.

M_D^(1) retrieves the top-k passages for a question nobody labeled, and M_C scores each. M_C's
best passage becomes the question's positive if M_C is confident (score > the positive
threshold, RocketQA: 0.9); the passages M_C scores below the negative threshold (0.1) become its
hard negatives; everything in between is left out. A question with no confident passage gives no
training example.
"""

from __future__ import annotations

import dataclasses
from typing import Sequence


@dataclasses.dataclass(frozen=True)
class PseudoLabel:
  positive: str
  score: float  # M_C's score of the positive.
  negatives: tuple[str, ...]  # Retrieval order.


def pseudo_label(scored: Sequence[tuple[str, float]], positive_threshold: float,
                 negative_threshold: float) -> PseudoLabel | None:
  """`scored`: (passage id, M_C score) per retrieved passage, best retrieved first. The best
  score wins the positive (on a tie, the better retrieved); None when it is not above
  `positive_threshold`."""
  if not scored:
    return None
  positive, score = max(scored, key=lambda item: item[1])  # max keeps the first of ties.
  if not score > positive_threshold:
    return None
  negatives = tuple(pid for pid, s in scored if s < negative_threshold and pid != positive)
  return PseudoLabel(positive, float(score), negatives)
