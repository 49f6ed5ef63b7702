"""Workdir outputs written atomically (temp file + rename): a crash never leaves half a file."""

from __future__ import annotations

import contextlib
import json
import os
import pathlib
import tempfile
from typing import Any, BinaryIO, Iterator


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike) -> Iterator[BinaryIO]:
  """A binary file that appears at `path` only once the `with` block completes."""
  path = pathlib.Path(path)
  path.parent.mkdir(parents=True, exist_ok=True)
  fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
  try:
    with os.fdopen(fd, "wb") as f:
      yield f
    os.replace(tmp, path)
  except BaseException:
    os.unlink(tmp)
    raise


def write_text_atomic(path: str | os.PathLike, text: str) -> pathlib.Path:
  with atomic_open(path) as f:
    f.write(text.encode("utf-8"))
  return pathlib.Path(path)


def write_json_atomic(path: str | os.PathLike, obj: Any) -> pathlib.Path:
  return write_text_atomic(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")
