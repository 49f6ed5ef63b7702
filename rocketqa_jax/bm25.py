"""BM25 over the corpus: the sparse retriever beside the dense one, the baseline SQuAD favours
(its questions were written looking at the paragraph, so they share its words) and half of the
hybrid (fusion.py).

bm25s (sparse-matrix BM25 with Lucene's scoring, numpy only) does the work: it scores a
question against a 2,067-paragraph corpus in well under a millisecond and keeps the index as a
few .npy files. Text: lower-cased words of two or more characters, English stop words removed
(bm25s' defaults); a passage with a title is scored as "title text".
"""

from __future__ import annotations

import logging
import os
from typing import Sequence

import numpy as np


def _bm25s():
  """bm25s, imported when first used: importing it touches JAX's backend, which must wait for
  jax.distributed.initialize in a multi-process run. It sets its logger to DEBUG on import;
  its index-building steps are not news to a user."""
  import bm25s
  logging.getLogger("bm25s").setLevel(logging.WARNING)
  return bm25s


class BM25:
  """A BM25 index of a corpus, searched by question text; rows are corpus rows."""

  def __init__(self, retriever):
    self.retriever = retriever

  @classmethod
  def build(cls, texts: Sequence[str], titles: Sequence[str] | None = None, *,
            k1: float = 1.5, b: float = 0.75) -> BM25:
    bm25s = _bm25s()
    documents = [f"{title} {text}" for title, text in zip(titles, texts)] if titles else list(texts)
    retriever = bm25s.BM25(k1=k1, b=b, method="lucene")
    retriever.index(bm25s.tokenize(documents, stopwords="en", show_progress=False),
                    show_progress=False)
    return cls(retriever)

  def search(self, questions: Sequence[str], k: int) -> tuple[np.ndarray, np.ndarray]:
    """(rows [n, k] int64, scores [n, k] float32), best first; -1 / -inf pad when a question
    matches fewer than k passages (no word in common)."""
    k = min(k, self.size)
    tokens = _bm25s().tokenize(list(questions), stopwords="en", show_progress=False)
    rows, scores = self.retriever.retrieve(tokens, k=k, show_progress=False)
    rows, scores = rows.astype(np.int64), scores.astype(np.float32)
    unmatched = scores <= 0  # bm25s fills with arbitrary rows at score 0.
    rows[unmatched], scores[unmatched] = -1, -np.inf
    return rows, scores

  @property
  def size(self) -> int:
    return int(self.retriever.scores["num_docs"])

  def save(self, directory: str | os.PathLike) -> None:
    self.retriever.save(os.fspath(directory), show_progress=False)

  @classmethod
  def load(cls, directory: str | os.PathLike) -> BM25:
    return cls(_bm25s().BM25.load(os.fspath(directory), show_progress=False))
