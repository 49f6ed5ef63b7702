"""The compact corpus against plain Python lists and a dict."""

import sys

import numpy as np
import pytest

from rocketqa_jax.data import corpus as corpus_lib
from rocketqa_jax.data.corpus import Corpus, TextColumn

ROWS = [("10", "Ahärôn is a prophet", "Aaron"), ("2", "", "Aaron"), ("3", "plain", "Abba"),
        ("x-1", "日本語のテキスト", "Abba"), ("100000", "last", "Aaron")]


def test_columns_and_index_equal_plain_lists():
  corpus = Corpus.from_rows(iter(ROWS))
  ids, texts, titles = map(list, zip(*ROWS))
  assert len(corpus) == 5 and corpus.ids == ids and corpus.texts == texts
  assert corpus.titles == titles and list(corpus.titles) == titles
  assert len(corpus.titles.values) == 3  # Runs: Aaron, Abba, Aaron.
  for key in (1, -1, slice(1, 4), slice(None, None, 2), [4, 0, 0], np.array([3, 1])):
    for column, plain in ((corpus.ids, ids), (corpus.texts, texts), (corpus.titles, titles)):
      want = plain[key] if not isinstance(key, (list, np.ndarray)) else [plain[i] for i in key]
      assert column[key] == want, (key, column[key], want)
  with pytest.raises(IndexError):
    corpus.texts[5]
  reference = {pid: row for row, pid in enumerate(ids)}
  assert all(corpus.index[pid] == row for pid, row in reference.items())
  for missing in ("1", "1000000", "x", "x-1-and-longer-than-any-id", "", "0010"):
    assert missing not in corpus.index and corpus.index.get(missing) is None
    with pytest.raises(KeyError):
      corpus.index[missing]
  assert corpus.index.rows(["3", "nope", "10"]).tolist() == [2, -1, 0]
  assert Corpus(ids, texts, titles).texts == texts  # The list constructor: same corpus.


def test_repeated_id_names_the_source_and_empty_corpus_works():
  with pytest.raises(ValueError, match=r"psgs.tsv: passage id '2' appears more than once"):
    Corpus.from_rows([("2", "a", "t"), ("1", "b", "t"), ("2", "c", "t")], source="psgs.tsv")
  with pytest.raises(ValueError, match="one of each per passage"):
    Corpus(["1"], ["a", "b"], ["t"])
  empty = Corpus([], [], [])
  assert len(empty) == 0 and "1" not in empty.index and empty.texts[:] == []


def test_chunked_building_keeps_every_string(monkeypatch):
  monkeypatch.setattr(corpus_lib, "_CHUNK_BYTES", 7)  # Many chunks of a few strings.
  strings = [f"passage {i} " * (i % 4) for i in range(50)]
  column = TextColumn.from_strings(strings)
  assert column == strings and column.data.nbytes == sum(len(s.encode()) for s in strings)


def test_a_passage_costs_its_bytes_not_python_objects(squad_mini):
  """SQuAD's Wikipedia paragraphs (a quarter of them with characters past Latin-1, which Python
  stores at 2 bytes each): the compact corpus costs 836 bytes a paragraph of 776 UTF-8 bytes,
  the lists and dict it replaces 1,214."""
  ids, texts, titles = (list(c) for c in (squad_mini.corpus.ids, squad_mini.corpus.texts,
                                          squad_mini.corpus.titles))
  corpus = Corpus(ids, texts, titles)
  as_lists = sum(sys.getsizeof(s) for column in (ids, texts, titles) for s in column)
  as_lists += sum(sys.getsizeof(column) for column in (ids, texts, titles))
  as_lists += sys.getsizeof({pid: i for i, pid in enumerate(ids)})
  text_bytes = sum(len(t.encode()) for t in texts)
  assert corpus.nbytes < 0.75 * as_lists, (corpus.nbytes, as_lists)
  assert corpus.nbytes < text_bytes + 64 * len(ids), (corpus.nbytes, text_bytes)
