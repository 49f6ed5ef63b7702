"""Line-oriented data files (TSV, JSONL, CSV), read lazily with errors that point at file:line.

Retrieval corpora run to tens of millions of lines, so every reader parses one line at a time,
and a bad line either stops the read naming where it is and what was expected, or (skip_bad)
is skipped, counted and reported once at the end: never dropped silently.
"""

from __future__ import annotations

import codecs
import csv
import dataclasses
import gzip
import io
import json
import logging
import os
from typing import BinaryIO, Callable, Iterator, TypeVar

from rocketqa_jax.errors import MissingFileError, UserError

log = logging.getLogger(__name__)
T = TypeVar("T")
REPORTED_LINES = 5  # How many skipped line numbers the warning lists.
# {file: bad lines skipped (skip_bad)} over this process's reads, for the stages' timings.
SKIPPED: dict[str, int] = {}


class DataError(UserError, ValueError):
  """`{path}:{line}: {expected}, got {the line, shortened}`."""

  def __init__(self, path: str | os.PathLike, line: int, expected: str, got: str | bytes):
    self.path, self.line, self.expected = str(path), line, expected
    super().__init__(f"{path}:{line}: {expected}, got {short_repr(got)}")


def short_repr(text: str | bytes, limit: int = 100) -> str:
  r = repr(text)
  return r if len(r) <= limit else r[:limit - 3] + "..."


@dataclasses.dataclass
class LineStats:
  """Filled in while a read runs: records yielded and bad lines skipped (skip_bad only)."""
  records: int = 0
  skipped: int = 0
  skipped_lines: list[int] = dataclasses.field(default_factory=list)  # The first few.


def open_binary(path: str | os.PathLike) -> BinaryIO:
  """The file's bytes, gunzipped when it is gzip (told by its magic number, not its name)."""
  return gzip.open(path, "rb") if is_gzip(path) else open(path, "rb")


def open_text(path: str | os.PathLike) -> io.TextIOWrapper:
  return io.TextIOWrapper(open_binary(path), encoding="utf-8-sig")


def iter_records(path: str | os.PathLike, parse: Callable[[str], T], *, skip_bad: bool = False,
                 header: str | None = None,
                 stats: LineStats | None = None) -> Iterator[tuple[int, T]]:
  """Yields (1-based line number, parse(line)) per line, newline stripped; blank lines are
  ignored. `parse` raises ValueError saying what it expected ("expected 2 tab-separated
  columns (pid, passage)"); the line then raises DataError, or with skip_bad is counted in
  `stats` and reported in one warning when the read ends. `header`, if given, must be line 1
  exactly; a wrong header means a wrong file, so it raises even with skip_bad."""
  for number, _, _, record in located_records(path, parse, skip_bad=skip_bad, header=header,
                                              stats=stats):
    yield number, record


def located_records(path: str | os.PathLike, parse: Callable[[str], T], *,
                    skip_bad: bool = False, header: str | None = None,
                    stats: LineStats | None = None) -> Iterator[tuple[int, int, int, T]]:
  """iter_records, with where each line is: (line number, byte offset of the line's text in
  the (uncompressed) file, its length in bytes without the newline, parse(line))."""
  skipped, first_error = [], ""
  position = 0
  try:
    with open_binary(path) as f:
      for number, raw in enumerate(f, 1):
        start, position = position, position + len(raw)
        if number == 1 and raw.startswith(codecs.BOM_UTF8):
          raw, start = raw[len(codecs.BOM_UTF8):], start + len(codecs.BOM_UTF8)
        text = raw.rstrip(b"\r\n")
        if number == 1 and header is not None:
          if text != header.encode():
            raise DataError(path, 1, f"expected the header {header!r}", _shown(text))
          continue
        if not text:
          continue
        try:
          record = parse(text.decode("utf-8"))
        except ValueError as e:
          expected = "expected UTF-8 text" if isinstance(e, UnicodeDecodeError) else str(e)
          if not skip_bad:
            raise DataError(path, number, expected, _shown(text)) from e
          first_error = first_error or str(DataError(path, number, expected, _shown(text)))
          skipped.append(number)
          if stats is not None:
            stats.skipped += 1
            if len(stats.skipped_lines) < REPORTED_LINES:
              stats.skipped_lines.append(number)
          continue
        if stats is not None:
          stats.records += 1
        yield number, start, len(text), record
  finally:
    if skipped:
      SKIPPED[os.fspath(path)] = len(skipped)
      log.warning("%s: skipped %d bad line(s), at lines %s%s; the first: %s", path, len(skipped),
                  ", ".join(map(str, skipped[:REPORTED_LINES])),
                  ", ..." if len(skipped) > REPORTED_LINES else "", first_error)


def is_gzip(path: str | os.PathLike) -> bool:
  with open(local(path), "rb") as f:
    return f.read(2) == b"\x1f\x8b"


def local(path: str | os.PathLike) -> str | os.PathLike:
  """`path`, which must be a file on a local (or mounted) disk: a big corpus is read by
  position (os.pread) at every training step, which an object store cannot serve."""
  if "://" in os.fspath(path):
    raise UserError(f"{os.fspath(path)}: data files are read from a local disk; copy them to "
                    "each host first (launch/tpu_pod.py --data=gs://... does it on a TPU slice)")
  if not os.path.isfile(path):
    raise MissingFileError(f"{os.fspath(path)}: no such file (from {os.getcwd()}); check the config's "
                    "data paths")
  return path


def _shown(text: bytes) -> str | bytes:
  try:
    return text.decode("utf-8")
  except UnicodeDecodeError:
    return text


# Parsers for `iter_records`: each returns the fields or raises ValueError("expected ...").

def tab_columns(line: str, names: tuple[str, ...]) -> list[str]:
  """Exactly len(names) tab-separated columns, none of them empty."""
  parts = line.split("\t")
  if len(parts) != len(names) or not all(parts):
    raise ValueError(f"expected {len(names)} non-empty tab-separated columns "
                     f"({', '.join(names)})")
  return parts


def csv_columns(line: str, names: tuple[str, ...], first_nonempty: int = 1) -> list[str]:
  """Exactly len(names) tab-separated columns, CSV-quoted as Python's csv module writes them
  (fields holding quotes are "quoted", inner quotes doubled); the first `first_nonempty`
  must not be empty."""
  try:
    parts = next(csv.reader([line], delimiter="\t", strict=True))
  except csv.Error as e:
    raise ValueError(f"expected {len(names)} tab-separated CSV columns ({', '.join(names)}) "
                     f"but the quoting is malformed ({e})") from e
  if len(parts) != len(names) or not all(parts[:first_nonempty]):
    raise ValueError(f"expected {len(names)} tab-separated CSV columns ({', '.join(names)})")
  return parts


def json_object(line: str, required: tuple[str, ...]) -> dict:
  """A JSON object whose `required` keys hold strings (ints are let through, for numeric ids)."""
  want = f"expected a JSON object with string fields {', '.join(map(repr, required))}"
  try:
    obj = json.loads(line)
  except json.JSONDecodeError as e:
    raise ValueError(f"{want} (invalid JSON at column {e.colno}: {e.msg})") from e
  if not isinstance(obj, dict):
    raise ValueError(f"{want} (found a JSON {type(obj).__name__})")
  bad = [k for k in required if type(obj.get(k)) not in (str, int)]
  if bad:
    raise ValueError(f"{want} (missing or not a string: {', '.join(map(repr, bad))})")
  return obj
