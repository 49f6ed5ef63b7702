"""A passage corpus held compactly: no Python string per passage, and for the big corpora no
text in memory at all.

DPR's Wikipedia has 21M passages. As Python lists (ids, texts, titles) and an id -> row dict a
passage costs about 1.2 KB (a str object per field, texts often stored at 2 bytes a character,
plus the dict), 25 GB a process. Here, two forms (docs/scale.md has the measurements):

- read from the file (`Corpus.from_file`, for an uncompressed line-oriented corpus: DPR's
  psgs_w100.tsv, MS MARCO's collection.tsv, BEIR's corpus.jsonl): the process keeps where each
  line starts and its length (12 bytes) and the id index; `texts[i]` reads and parses line i
  with os.pread when asked. Reads go through the page cache but are not mapped into the
  process, so its memory holds only what it is working on: 23 bytes of arrays a passage (35-39
  resident, measured by bench/scale.py).
- in memory (`Corpus.from_rows`: SQuAD's JSON, gzipped files): `TextColumn`, UTF-8 bytes end to
  end with int64 offsets; titles, whose equal values come in runs (an article's passages), once
  per run (`CodedColumn`): about the text's UTF-8 bytes plus 20 bytes a passage.

`IdIndex` maps passage ids to rows by binary search over the ids' fixed-width bytes in sorted
order. Columns index like lists: `column[i]` is one string, `column[rows]` (a slice, list or
array of rows) a list of them.
"""

from __future__ import annotations

import array
import os
from typing import Callable, Iterable, Sequence

import numpy as np

from rocketqa_jax.data import lines
from rocketqa_jax.errors import InputError

_CHUNK_BYTES = 64 << 20  # Text bytes gathered before they are appended to the column.


class _Strings(Sequence[str]):
  """A read-only sequence of strings that compares equal to any sequence of the same strings."""
  __hash__ = None

  def __eq__(self, other) -> bool:
    if not isinstance(other, Sequence) or isinstance(other, str) or len(other) != len(self):
      return False
    return all(a == b for a, b in zip(self, other))

  def __repr__(self) -> str:
    head = ", ".join(repr(s) for s in self[:3])
    return f"{type(self).__name__}([{head}{', ...' if len(self) > 3 else ''}], {len(self)} rows)"


class TextColumn(_Strings):
  """Strings stored as UTF-8 bytes end to end; `offsets[i]:offsets[i + 1]` is string i."""

  def __init__(self, data: np.ndarray, offsets: np.ndarray):
    self.data, self.offsets = data, offsets

  @classmethod
  def from_strings(cls, strings: Iterable[str]) -> TextColumn:
    builder = _ColumnBuilder()
    for s in strings:
      builder.append(s.encode("utf-8"))
    return builder.finish()

  def __len__(self) -> int:
    return len(self.offsets) - 1

  def _one(self, i: int) -> str:
    return bytes(self.data[self.offsets[i]:self.offsets[i + 1]]).decode("utf-8")

  def __getitem__(self, key):
    if isinstance(key, (int, np.integer)):
      n = len(self)
      if not -n <= key < n:
        raise IndexError(f"row {key} out of range for {n} strings")
      return self._one(int(key) % n)
    rows = range(len(self))[key] if isinstance(key, slice) else np.asarray(key, np.int64)
    return [self._one(int(i)) for i in rows]

  def __iter__(self):
    return (self._one(i) for i in range(len(self)))


class CodedColumn(_Strings):
  """A column with long runs of equal strings: each distinct run once, a code per row."""

  def __init__(self, values: TextColumn, codes: np.ndarray):
    self.values, self.codes = values, codes

  def __len__(self) -> int:
    return len(self.codes)

  def __getitem__(self, key):
    if isinstance(key, (int, np.integer)):
      return self.values[int(self.codes[key])]
    return [self.values[int(c)] for c in self.codes[key if isinstance(key, slice)
                                                    else np.asarray(key, np.int64)]]

  def __iter__(self):
    return (self.values[int(c)] for c in self.codes)


class LineColumn(_Strings):
  """A field of a line-oriented file's records, read from the file when asked: `starts` and
  `lengths` say where each row's line is; `field(line)` parses a line into the value."""

  def __init__(self, path: str | os.PathLike, starts: np.ndarray, lengths: np.ndarray,
               field: Callable[[str], str]):
    self.path, self.starts, self.lengths, self.field = os.fspath(path), starts, lengths, field
    self._fd = os.open(self.path, os.O_RDONLY)

  def __del__(self):
    if getattr(self, "_fd", None) is not None:
      os.close(self._fd)

  def __len__(self) -> int:
    return len(self.starts)

  def _line(self, i: int) -> str:
    return os.pread(self._fd, int(self.lengths[i]), int(self.starts[i])).decode("utf-8")

  def __getitem__(self, key):
    if isinstance(key, (int, np.integer)):
      n = len(self)
      if not -n <= key < n:
        raise IndexError(f"row {key} out of range for {n} strings")
      return self.field(self._line(int(key) % n))
    if isinstance(key, slice) and (key.step or 1) == 1:
      return self._span(*key.indices(len(self))[:2])
    rows = range(len(self))[key] if isinstance(key, slice) else np.asarray(key, np.int64)
    return [self.field(self._line(int(i))) for i in rows]

  def _span(self, first: int, stop: int) -> list[str]:
    """Rows first..stop-1 with one read: they are consecutive lines of the file."""
    if stop <= first:
      return []
    begin = int(self.starts[first])
    data = os.pread(self._fd, int(self.starts[stop - 1] + self.lengths[stop - 1]) - begin, begin)
    return [self.field(data[s - begin:s - begin + n].decode("utf-8"))
            for s, n in zip(self.starts[first:stop].tolist(), self.lengths[first:stop].tolist())]

  def __iter__(self):
    for start in range(0, len(self), 4096):
      yield from self._span(start, min(len(self), start + 4096))


class IdIndex:
  """Passage id -> corpus row (a read-only mapping), by binary search in the ids' sorted order."""

  def __init__(self, ids: np.ndarray):
    self.ids = ids  # Fixed-width UTF-8 bytes ("S" dtype), in corpus order.
    self.order = np.argsort(ids, kind="stable").astype(np.int32 if len(ids) < 2**31 else np.int64)

  def rows(self, ids: Iterable[str]) -> np.ndarray:
    """The rows of `ids` (int64); -1 for an id not in the corpus."""
    keys = np.asarray([str(i).encode("utf-8") for i in ids], dtype=self.ids.dtype
                      if len(self.ids) else "S1")
    if not len(self.ids) or not len(keys):
      return np.full(len(keys), -1, np.int64)
    pos = np.minimum(np.searchsorted(self.ids, keys, sorter=self.order), len(self.ids) - 1)
    rows = self.order[pos].astype(np.int64)
    # Longer than the widest id: never in the corpus (the cast above would have cut it).
    fits = np.asarray([len(str(i).encode("utf-8")) <= self.ids.dtype.itemsize for i in ids])
    return np.where((self.ids[rows] == keys) & fits, rows, -1)

  def rows_of(self, ids: Sequence[str], what: str) -> tuple[int, ...]:
    """The rows of `ids`, all of which must be in the corpus; else a KeyError naming `what`
    (where the ids came from) and the ids that are not."""
    rows = self.rows(ids).tolist()
    if -1 in rows:
      missing = [pid for pid, row in zip(ids, rows) if row < 0]
      raise KeyError(f"{what}: passage ids not in the corpus: {missing[:5]}")
    return tuple(rows)

  def get(self, pid: str, default=None):
    row = int(self.rows([pid])[0])
    return default if row < 0 else row

  def __getitem__(self, pid: str) -> int:
    row = self.get(pid)
    if row is None:
      raise KeyError(pid)
    return row

  def __contains__(self, pid) -> bool:
    return self.get(pid) is not None

  def __len__(self) -> int:
    return len(self.ids)


class Corpus:
  """Passages by row: `ids[i]`, `texts[i]`, `titles[i]` (each also by slice or list of rows);
  `index[id]` is a passage's row."""

  def __init__(self, ids: Sequence[str], texts: Sequence[str], titles: Sequence[str]):
    if not len(ids) == len(texts) == len(titles):
      raise ValueError(f"{len(ids)} ids, {len(texts)} texts and {len(titles)} titles: a corpus "
                       "needs one of each per passage")
    self._build(zip(ids, texts, titles), source="")

  @classmethod
  def from_rows(cls, rows: Iterable[tuple[str, str, str]], source: str = "") -> Corpus:
    """One pass over (id, text, title) rows. A repeated id is an error (naming `source`)."""
    corpus = cls.__new__(cls)
    corpus._build(rows, source)
    return corpus

  @classmethod
  def from_file(cls, path: str | os.PathLike, parse: Callable[[str], tuple[str, str, str]], *,
                header: str | None = None, skip_bad: bool = False,
                stats: lines.LineStats | None = None) -> Corpus:
    """The corpus of a line-oriented file, one passage a line, `parse(line) -> (id, text,
    title)` (raising ValueError on a bad line: see lines.iter_records, whose errors name the
    file and line). Texts and titles stay in the file (read when asked), unless it is gzipped:
    then they are read into memory (from_rows)."""
    if lines.is_gzip(path):
      rows = (row for _, row in lines.iter_records(path, parse, header=header,
                                                   skip_bad=skip_bad, stats=stats))
      return cls.from_rows(rows, source=str(path))
    ids, starts, lengths = _IdsBuilder(), array.array("q"), array.array("i")
    for _, start, length, (pid, _, _) in lines.located_records(
        path, parse, header=header, skip_bad=skip_bad, stats=stats):
      ids.append(pid)
      starts.append(start)
      lengths.append(length)
    corpus = cls.__new__(cls)
    corpus.ids = _IdColumn(ids.finish())
    starts, lengths = np.frombuffer(starts, np.int64), np.frombuffer(lengths, np.int32)
    corpus.texts = LineColumn(path, starts, lengths, lambda line: parse(line)[1])
    corpus.titles = LineColumn(path, starts, lengths, lambda line: parse(line)[2])
    corpus.index = IdIndex(corpus.ids.array)
    corpus._check(str(path))
    return corpus

  def _build(self, rows: Iterable[tuple[str, str, str]], source: str) -> None:
    ids = _IdsBuilder()
    texts, titles = _ColumnBuilder(), _ColumnBuilder()
    codes, last_title = array.array("i"), None
    for pid, text, title in rows:
      ids.append(pid)
      texts.append(text.encode("utf-8"))
      if title != last_title:
        titles.append(title.encode("utf-8"))
        last_title = title
      codes.append(len(titles) - 1)
    self.ids = _IdColumn(ids.finish())
    self.texts = texts.finish()
    self.titles = CodedColumn(titles.finish(), np.frombuffer(codes, np.int32))
    self.index = IdIndex(self.ids.array)
    self._check(source)

  def _check(self, source: str) -> None:
    """No id twice, and a file (a `source`) with at least one passage."""
    where = f"{source}: " if source else ""
    if source and not len(self.ids):
      raise InputError(f"{where}no passages: the corpus is empty. Check the file (and "
                      "config.data.corpus / data.path).")
    ordered = self.ids.array[self.index.order]
    repeated = np.flatnonzero(ordered[1:] == ordered[:-1])
    if len(repeated):
      raise InputError(f"{where}passage id {ordered[repeated[0]].decode()!r} appears more than "
                       f"once ({len(repeated)} repeated ids)")

  def __len__(self) -> int:
    return len(self.texts)

  @property
  def nbytes(self) -> int:
    """Bytes of the arrays that hold the corpus (its whole footprint, but for a few objects;
    a file corpus's texts and titles share their line positions)."""
    arrays = {id(a): a.nbytes for column in (self.texts, self.titles) for a in _arrays(column)}
    return self.ids.array.nbytes + self.index.order.nbytes + sum(arrays.values())


def _arrays(column) -> list[np.ndarray]:
  if isinstance(column, LineColumn):
    return [column.starts, column.lengths]
  if isinstance(column, CodedColumn):
    return [*_arrays(column.values), column.codes]
  return [column.data, column.offsets]


class _IdColumn(_Strings):
  """The ids as fixed-width UTF-8 bytes; indexing decodes."""

  def __init__(self, ids: np.ndarray):
    self.array = ids

  def __len__(self) -> int:
    return len(self.array)

  def __getitem__(self, key):
    if isinstance(key, (int, np.integer)):
      return self.array[key].decode("utf-8")
    picked = self.array[key if isinstance(key, slice) else np.asarray(key, np.int64)]
    return [b.decode("utf-8") for b in picked]

  def __iter__(self):
    return (b.decode("utf-8") for b in self.array)


class _IdsBuilder:
  """Ids into one fixed-width bytes array, a million at a time."""

  def __init__(self):
    self.chunks: list[np.ndarray] = []
    self.pending: list[bytes] = []

  def append(self, pid: str) -> None:
    self.pending.append(str(pid).encode("utf-8"))
    if len(self.pending) == 1 << 20:
      self.chunks.append(np.asarray(self.pending, dtype=bytes))
      self.pending = []

  def finish(self) -> np.ndarray:
    if self.pending or not self.chunks:
      self.chunks.append(np.asarray(self.pending, dtype=bytes) if self.pending
                         else np.zeros(0, "S1"))
    return np.concatenate(self.chunks)


class _ColumnBuilder:
  """Appends byte strings into 64 MB chunks, then one buffer: the peak is the column plus a chunk
  (a growing bytearray would copy itself at every doubling)."""

  def __init__(self):
    self.chunks: list[np.ndarray] = []
    self.pending: list[bytes] = []
    self.pending_bytes = 0
    self.ends = array.array("q")
    self.total = 0

  def __len__(self) -> int:
    return len(self.ends)

  def append(self, value: bytes) -> None:
    self.pending.append(value)
    self.pending_bytes += len(value)
    self.total += len(value)
    self.ends.append(self.total)
    if self.pending_bytes >= _CHUNK_BYTES:
      self._flush()

  def _flush(self) -> None:
    if self.pending:
      self.chunks.append(np.frombuffer(b"".join(self.pending), np.uint8))
      self.pending, self.pending_bytes = [], 0

  def finish(self) -> TextColumn:
    self._flush()
    data = np.empty(self.total, np.uint8)
    start = 0
    while self.chunks:  # Each chunk is freed once copied.
      chunk = self.chunks.pop(0)
      data[start:start + len(chunk)] = chunk
      start += len(chunk)
    offsets = np.zeros(len(self.ends) + 1, np.int64)
    offsets[1:] = np.frombuffer(self.ends, np.int64)
    return TextColumn(data, offsets)
