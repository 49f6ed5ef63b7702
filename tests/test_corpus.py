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
  assert corpus.index.rows_of(["3", "10"], "q1") == (2, 0) and corpus.index.rows_of([], "q") == ()
  with pytest.raises(KeyError, match=r"hard_negatives.jsonl: question q7: passage ids not in "
                     r"the corpus: \['999999'\]"):
    corpus.index.rows_of(["3", "999999"], "hard_negatives.jsonl: question q7")
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


def test_a_file_corpus_reads_its_lines_when_asked(tmp_path, squad_mini):
  """DPR's TSV (quoted fields, a BOM, blank and bad lines skipped) read in place equals the same
  file gzipped, read into memory; the process holds where lines are and the ids, not the
  text."""
  import gzip
  from rocketqa_jax.data import dpr, lines
  c = squad_mini.corpus
  quote = lambda s: '"' + s.replace('"', '""') + '"' if '"' in s or "\t" in s else s
  body = "".join(f"{c.ids[i]}\t{quote(c.texts[i])}\t{quote(c.titles[i])}\n" + (
      "\n" if i == 3 else "bad line\n" if i == 5 else "") for i in range(300))
  text = "\ufeffid\ttext\ttitle\n" + body
  (tmp_path / "psgs.tsv").write_text(text, encoding="utf-8")
  (tmp_path / "psgs.tsv.gz").write_bytes(gzip.compress(text.encode()))
  stats = lines.LineStats()
  in_file = dpr.read_passages_tsv(tmp_path / "psgs.tsv", skip_bad=True, stats=stats)
  in_memory = dpr.read_passages_tsv(tmp_path / "psgs.tsv.gz", skip_bad=True)
  assert stats.skipped == 1 and len(in_file) == len(in_memory) == 300
  assert isinstance(in_file.texts, corpus_lib.LineColumn)
  assert isinstance(in_memory.texts, corpus_lib.TextColumn)
  assert in_file.ids == in_memory.ids == c.ids[:300]
  assert in_file.texts == in_memory.texts == c.texts[:300]
  assert in_file.titles == c.titles[:300]
  rows = np.array([299, 0, 17, 17])
  assert in_file.texts[rows] == [c.texts[int(i)] for i in rows]
  assert in_file.texts[10:20] == c.texts[10:20] and in_file.texts[-1] == c.texts[299]
  assert in_file.texts[::100] == c.texts[:300:100] and in_file.index[c.ids[42]] == 42
  # Line start and length, id (fixed-width: DPR's are 8 bytes), sort order: no text.
  assert in_file.nbytes == 300 * (8 + 4 + in_file.ids.array.itemsize + 4)
  assert in_memory.nbytes > sum(len(t.encode()) for t in c.texts[:300])
