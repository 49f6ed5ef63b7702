"""BM25 over the corpus: the sparse retriever beside the dense one, the baseline SQuAD favours
(its questions were written looking at the paragraph, so they share its words) and half of the
hybrid (fusion.py).

bm25s (sparse-matrix BM25 with Lucene's scoring, numpy only) does the work: it scores a
question against a 2,067-paragraph corpus in well under a millisecond and keeps the index as a
few .npy files. Text: lower-cased words of two or more characters, English stop words removed
(bm25s' defaults), optionally stemmed (Snowball, through PyStemmer); a passage with a title is
scored as "title text" (config.bm25.use_titles). `for_corpus` keeps one index per workdir
(config.bm25's settings): built once by process 0, loaded memory-mapped by every process.
"""

from __future__ import annotations

import json
import logging
import os
import pathlib
from typing import Sequence

import jax
import numpy as np

from rocketqa_jax import artifacts, distributed
from rocketqa_jax.data.corpus import Corpus

log = logging.getLogger(__name__)
SETTINGS = "rocketqa_bm25.json"  # Beside bm25s' files: what the index was built from.


def _bm25s():
  """bm25s, imported when first used: importing it touches JAX's backend, which must wait for
  jax.distributed.initialize in a multi-process run. It sets its logger to DEBUG on import;
  its index-building steps are not news to a user."""
  import bm25s
  logging.getLogger("bm25s").setLevel(logging.WARNING)
  return bm25s


class BM25:
  """A BM25 index of a corpus, searched by question text; rows are corpus rows."""

  def __init__(self, retriever, stemmer: str = ""):
    self.retriever, self.stemmer = retriever, stemmer

  @classmethod
  def build(cls, texts: Sequence[str], titles: Sequence[str] | None = None, *,
            k1: float = 1.5, b: float = 0.75, stemmer: str = "") -> BM25:
    """An index of `texts` (with their `titles`); `stemmer`: a Snowball language
    ("english") or "" for none. The defaults are bm25s' (and Lucene's)."""
    bm25s = _bm25s()
    documents = [f"{title} {text}" for title, text in zip(titles, texts)] if titles else list(texts)
    retriever = bm25s.BM25(k1=k1, b=b, method="lucene")
    retriever.index(bm25s.tokenize(documents, stopwords="en", stemmer=_stemmer(stemmer),
                                   show_progress=False), show_progress=False)
    return cls(retriever, stemmer)

  def search(self, questions: Sequence[str], k: int) -> tuple[np.ndarray, np.ndarray]:
    """(rows [n, k] int64, scores [n, k] float32), best first; -1 / -inf pad when a question
    matches fewer than k passages (no word in common)."""
    k = min(k, self.size)
    tokens = _bm25s().tokenize(list(questions), stopwords="en", stemmer=_stemmer(self.stemmer),
                               show_progress=False)
    rows, scores = self.retriever.retrieve(tokens, k=k, show_progress=False)
    rows, scores = rows.astype(np.int64), scores.astype(np.float32)
    unmatched = scores <= 0  # bm25s fills with arbitrary rows at score 0.
    rows[unmatched], scores[unmatched] = -1, -np.inf
    return rows, scores

  @property
  def size(self) -> int:
    return int(self.retriever.scores["num_docs"])

  def save(self, directory: str | os.PathLike, settings: dict | None = None) -> None:
    """bm25s' files into a local `directory`, and SETTINGS: the stemmer, and `settings`."""
    self.retriever.save(os.fspath(directory), show_progress=False)
    (pathlib.Path(directory) / SETTINGS).write_text(
        json.dumps({"stemmer": self.stemmer, **(settings or {})}, sort_keys=True) + "\n")

  @classmethod
  def load(cls, directory: str | os.PathLike, mmap: bool = False) -> BM25:
    settings = json.loads((pathlib.Path(directory) / SETTINGS).read_text())
    return cls(_bm25s().BM25.load(os.fspath(directory), mmap=mmap, show_progress=False),
               settings["stemmer"])


def _stemmer(language: str):
  if not language:
    return None
  import Stemmer  # PyStemmer: Snowball's stemmers in C.
  return Stemmer.Stemmer(language)


def for_corpus(corpus: Corpus, directory: artifacts.PathLike, *, use_titles: bool, k1: float,
               b: float, stemmer: str) -> BM25:
  """The index of `corpus` kept in `directory` (local or gs://): built by process 0 when it is
  missing or was built from another corpus or settings, then loaded by every process."""
  directory = artifacts.path(directory)
  settings = {"passages": len(corpus), "first_id": str(corpus.ids[0]),
              "last_id": str(corpus.ids[-1]), "use_titles": use_titles, "k1": k1, "b": b,
              "stemmer": stemmer}
  found = directory / SETTINGS
  if jax.process_index() == 0 and not (found.exists() and artifacts.read_json(found) == settings):
    log.info("indexing %s passages for BM25 into %s", f"{len(corpus):,}", directory)
    index = BM25.build(corpus.texts, corpus.titles if use_titles else None, k1=k1, b=b,
                       stemmer=stemmer)
    with artifacts.publish_dir(directory) as local:
      index.save(local, settings)
  distributed.barrier("bm25 index written")
  return BM25.load(artifacts.local_dir(directory), mmap=True)
