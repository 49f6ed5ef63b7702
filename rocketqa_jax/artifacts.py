"""Workdir outputs written atomically (temp file + rename): a crash never leaves half a file."""

from __future__ import annotations

import json
import os
import pathlib
import tempfile
from typing import Any


def write_text_atomic(path: str | os.PathLike, text: str) -> pathlib.Path:
  path = pathlib.Path(path)
  path.parent.mkdir(parents=True, exist_ok=True)
  fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
  try:
    with os.fdopen(fd, "w", encoding="utf-8") as f:
      f.write(text)
    os.replace(tmp, path)
  except BaseException:
    os.unlink(tmp)
    raise
  return path


def write_json_atomic(path: str | os.PathLike, obj: Any) -> pathlib.Path:
  return write_text_atomic(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")
