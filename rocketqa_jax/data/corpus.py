"""A passage corpus held compactly: one byte buffer per column, not a Python string per passage.

DPR's Wikipedia has 21M passages. As Python lists (ids, texts, titles) and an id -> row dict a
passage costs about 1.3 KB (a str object per field, texts often stored at 2 bytes a character,
plus the dict); here it costs its UTF-8 bytes plus 8 bytes of offset, 4 of title code and its id
(fixed-width bytes) with 4 bytes of sort order: about 0.6 KB (docs/scale.md has the figures).

- `TextColumn`: UTF-8 bytes end to end with int64 offsets; `column[i]` decodes one string,
  `column[rows]` (a slice, list or array of rows) a list of them.
- titles: DPR's and SQuAD's passages of an article come one after another, so a run of equal
  titles is stored once (`CodedColumn`: the distinct runs and an int32 code per passage).
- `IdIndex`: passage id -> row, by binary search over the ids' fixed-width bytes in sorted order.

A corpus is built in one pass over its rows (`Corpus.from_rows`), so a reader never holds the
whole file as Python objects.
"""

from __future__ import annotations

import array
from typing import Iterable, Sequence

import numpy as np

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

  @property
  def nbytes(self) -> int:
    return self.data.nbytes + self.offsets.nbytes


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

  @property
  def nbytes(self) -> int:
    return self.values.nbytes + self.codes.nbytes


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

  @property
  def nbytes(self) -> int:
    return self.ids.nbytes + self.order.nbytes


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

  def _build(self, rows: Iterable[tuple[str, str, str]], source: str) -> None:
    ids: list[np.ndarray] = []
    pending: list[bytes] = []
    texts, titles = _ColumnBuilder(), _ColumnBuilder()
    codes, last_title = array.array("i"), None
    for pid, text, title in rows:
      pending.append(str(pid).encode("utf-8"))
      if len(pending) == 1 << 20:
        ids.append(np.asarray(pending, dtype=bytes))
        pending = []
      texts.append(text.encode("utf-8"))
      if title != last_title:
        titles.append(title.encode("utf-8"))
        last_title = title
      codes.append(len(titles) - 1)
    ids.append(np.asarray(pending, dtype=bytes) if pending else np.zeros(0, "S1"))
    self.ids = _IdColumn(np.concatenate(ids))
    self.texts = texts.finish()
    self.titles = CodedColumn(titles.finish(), np.frombuffer(codes, np.int32))
    self.index = IdIndex(self.ids.array)
    self._check_unique(source)

  def _check_unique(self, source: str) -> None:
    ordered = self.ids.array[self.index.order]
    repeated = np.flatnonzero(ordered[1:] == ordered[:-1])
    if len(repeated):
      where = f"{source}: " if source else ""
      raise ValueError(f"{where}passage id {ordered[repeated[0]].decode()!r} appears more than "
                       f"once ({len(repeated)} repeated ids)")

  def __len__(self) -> int:
    return len(self.texts)

  @property
  def nbytes(self) -> int:
    """Bytes of the arrays that hold the corpus (its whole footprint, but for a few objects)."""
    return self.ids.array.nbytes + self.texts.nbytes + self.titles.nbytes + self.index.order.nbytes


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
