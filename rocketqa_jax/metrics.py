"""Ranking metrics as pure numpy functions of a ranked list and the relevant set per query."""

from __future__ import annotations

import functools
import unicodedata
from typing import Sequence

import numpy as np


def first_relevant_rank(ranked: Sequence[Sequence], relevant: Sequence[set]) -> np.ndarray:
  """1-based rank of each query's first relevant item in its ranked list; 0 if none is there."""
  ranks = np.zeros(len(ranked), np.int64)
  for q, (items, rel) in enumerate(zip(ranked, relevant, strict=True)):
    ranks[q] = next((r for r, item in enumerate(items, 1) if item in rel), 0)
  return ranks


def reciprocal_ranks(ranked, relevant, k: int = 10) -> np.ndarray:
  """Per query, 1 / rank of the first relevant item within the top k; 0 if none is there."""
  ranks = first_relevant_rank([list(items)[:k] for items in ranked], relevant)
  return np.where(ranks > 0, 1.0 / np.maximum(ranks, 1), 0.0)


def mrr_at_k(ranked, relevant, k: int = 10) -> float:
  """Mean reciprocal rank of the first relevant item within the top k (MS MARCO's MRR@10)."""
  return float(np.mean(reciprocal_ranks(ranked, relevant, k)))


def recall_at_k(ranked, relevant, k: int) -> float:
  """Fraction of each query's relevant items found in its top k, averaged over queries."""
  return float(np.mean([len(rel.intersection(list(items)[:k])) / len(rel)
                        for items, rel in zip(ranked, relevant, strict=True)]))


def ndcg_at_k(ranked, graded: Sequence[dict], k: int = 10) -> float:
  """nDCG@k with linear gains (trec_eval's ndcg_cut): sum of rel / log2(rank + 1), divided by
  the same sum over the ideal ordering of the judged items; queries without positive judgements
  count 0 (pass only judged queries to match trec_eval, which skips them)."""
  out = []
  for items, rel in zip(ranked, graded, strict=True):
    gains = [rel.get(item, 0) for item in list(items)[:k]]
    dcg = sum(g / np.log2(r + 2) for r, g in enumerate(gains))
    ideal = sorted((g for g in rel.values() if g > 0), reverse=True)[:k]
    idcg = sum(g / np.log2(r + 2) for r, g in enumerate(ideal))
    out.append(dcg / idcg if idcg > 0 else 0.0)
  return float(np.mean(out))


# DPR's SimpleTokenizer: runs of letters, digits and marks are words; every other visible
# character is a token of its own (punctuation is kept as tokens, as DPR does).
_DPR_TOKEN = None


def dpr_tokens(text: str) -> list[str]:
  """DPR's has_answer tokenization: Unicode NFD, then words / single symbols, lower-cased."""
  global _DPR_TOKEN
  if _DPR_TOKEN is None:
    import regex
    _DPR_TOKEN = regex.compile(r"([\p{L}\p{N}\p{M}]+)|([^\p{Z}\p{C}])",
                               flags=regex.IGNORECASE | regex.UNICODE | regex.MULTILINE)
  text = unicodedata.normalize("NFD", text)
  return [m.group().lower() for m in _DPR_TOKEN.finditer(text)]


@functools.lru_cache(maxsize=4096)
def _cached_tokens(text: str) -> list[str]:
  """dpr_tokens of a passage text that many questions retrieve (do not modify the list).

  A 100-word passage's tokens take about 8 KB as Python strings: 4,096 of them (a SQuAD dev
  corpus's 2,067 paragraphs all fit) are 35 MB; 65,536 would hold 0.55 GB for the rest of the
  process."""
  return dpr_tokens(text)


def contains_any(tokens: list[str], answers_tokens: Sequence[list[str]]) -> bool:
  """Whether some answer's (non-empty) token sequence occurs contiguously in `tokens`."""
  return any(a and any(tokens[i:i + len(a)] == a for i in range(len(tokens) - len(a) + 1))
             for a in answers_tokens)


def has_answer(answers: Sequence[str], text: str) -> bool:
  """DPR's string match: some answer's token sequence occurs contiguously in the text's."""
  return contains_any(dpr_tokens(text), [dpr_tokens(a) for a in answers])


def answer_accuracy(ranked_texts: Sequence[Sequence[str]], answers: Sequence[Sequence[str]],
                    ks: Sequence[int]) -> dict[int, float]:
  """DPR's "R@k" for each k: the fraction of questions with an answer string in any of their
  top-k passages (each passage's text tokenized once, however many ks)."""
  answer_tokens = [[dpr_tokens(a) for a in q] for q in answers]
  first = [next((rank for rank, text in enumerate(texts, 1)
                 if contains_any(_cached_tokens(text), a)), 0)
           for texts, a in zip(ranked_texts, answer_tokens, strict=True)]
  return {k: float(np.mean([0 < f <= k for f in first])) for k in ks}
