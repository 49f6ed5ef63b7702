"""Reading and writing artifacts on a local disk or an object store (`gs://`), through
`etils.epath` (orbax's path type), so that a crash never leaves half a file for a rerun to trust.

"Atomic" depends on the store:
- local disk: a temp file in the same folder, then `os.replace`; a folder is written as
  `.<name>.partial` and renamed. A file or folder that exists is complete.
- object stores (GCS, S3): there is no rename (it is a copy), but an object becomes visible only
  once its upload has finished, so a file that exists is complete; a folder is its files,
  written one by one, so a reader must not trust it until the stage that writes it has recorded
  its completion (`pipeline.py` writes that record last).

Libraries that only read or write local files (tokenizers, safetensors) go through a temporary
local folder: `publish_dir` uploads one, `local_dir` downloads one; both remove it afterwards.
"""

from __future__ import annotations

import atexit
import contextlib
import io
import json
import os
import shutil
import tempfile
import zipfile
from typing import Any, BinaryIO, Iterator

import numpy as np
import safetensors
import safetensors.numpy
from etils import epath

from rocketqa_jax import usage
from rocketqa_jax.errors import UserError

PathLike = str | os.PathLike


class CorruptArtifactError(UserError):
  """A file we wrote that does not read back."""


def path(p: PathLike) -> epath.Path:
  """`p` as an epath: `gs://...` stays remote, a local path is made absolute (orbax wants that)."""
  p = epath.Path(p)
  return p if is_remote(p) else epath.Path(os.path.abspath(os.path.expanduser(os.fspath(p))))


def is_remote(p: PathLike) -> bool:
  return "://" in os.fspath(p)


@contextlib.contextmanager
def atomic_open(p: PathLike) -> Iterator[BinaryIO]:
  """A binary file that appears at `p` only once the `with` block completes."""
  p = path(p)
  if is_remote(p):
    buffer = io.BytesIO()
    yield buffer
    p.write_bytes(buffer.getvalue())  # One upload: the object appears whole or not at all.
    return
  p.parent.mkdir(parents=True, exist_ok=True)
  fd, tmp = tempfile.mkstemp(dir=p.parent, prefix=f".{p.name}.", suffix=".tmp")
  try:
    with os.fdopen(fd, "wb") as f:
      yield f
    os.replace(tmp, p)
  except BaseException:
    os.unlink(tmp)
    raise


def write_bytes(p: PathLike, data: bytes) -> epath.Path:
  with atomic_open(p) as f:
    f.write(data)
  usage.count("files_written")
  usage.count("bytes_written", len(data))
  return path(p)


def write_text(p: PathLike, text: str) -> epath.Path:
  return write_bytes(p, text.encode("utf-8"))


def write_json(p: PathLike, obj: Any) -> epath.Path:
  return write_text(p, json.dumps(obj, indent=2, sort_keys=True) + "\n")


def read_npz(p: PathLike, names: tuple[str, ...]) -> dict[str, np.ndarray]:
  """The arrays `names` of an .npz (local or gs://); one that does not read back (cut short by
  a crash or a full disk, or not ours) is an error naming the file."""
  data = path(p).read_bytes()  # A missing file is FileNotFoundError, not a corrupt one.
  try:
    with np.load(io.BytesIO(data)) as npz:
      return {name: npz[name] for name in names}
  except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as e:
    raise CorruptArtifactError(f"{p}: cannot be read ({type(e).__name__}: {e}). Remove it, or "
                               "redo the stage that wrote it (--config.rerun=STAGE)") from e


def read_safetensors(p: PathLike) -> dict[str, np.ndarray]:
  """The tensors of a .safetensors file, or an error naming it."""
  if not os.path.exists(p):
    raise FileNotFoundError(f"{p}: no such file")
  try:
    return safetensors.numpy.load_file(p)
  except (OSError, safetensors.SafetensorError) as e:
    raise CorruptArtifactError(f"{p}: cannot be read ({type(e).__name__}: {e}); the file is "
                               "cut short or not safetensors. Copy or export it again") from e


def read_json(p: PathLike) -> Any:
  return json.loads(path(p).read_text())


def append_line(p: PathLike, line: str) -> None:
  """Appends one line (a log: metrics, timings). Objects cannot be appended to, so on an object
  store the file is rewritten whole (these logs are a few KB)."""
  p = path(p)
  if is_remote(p):
    write_text(p, (p.read_text() if p.exists() else "") + line + "\n")
    return
  p.parent.mkdir(parents=True, exist_ok=True)
  with p.open("a") as f:
    f.write(line + "\n")
  usage.count("files_written")
  usage.count("bytes_written", len(line) + 1)


def remove(p: PathLike) -> None:
  """Removes a file or a folder tree, if there."""
  p = path(p)
  if p.is_dir():
    p.rmtree()
  elif p.exists():
    p.unlink()


@contextlib.contextmanager
def publish_dir(p: PathLike) -> Iterator[str]:
  """A local folder to fill (with any library) that replaces the folder `p` once the block
  completes: renamed into place on a local disk, uploaded file by file to an object store."""
  p = path(p)
  if not is_remote(p):
    partial = p.parent / f".{p.name}.partial"
    remove(partial)
    partial.mkdir(parents=True)
    yield os.fspath(partial)
    _count_files(os.fspath(partial))
    remove(p)
    partial.rename(p)
    return
  with tempfile.TemporaryDirectory(prefix="rocketqa-upload-") as local:
    yield local
    _count_files(local)
    remove(p)
    for root, _, files in os.walk(local):
      for name in files:
        source = os.path.join(root, name)
        target = p / os.path.relpath(source, local)
        target.parent.mkdir(parents=True, exist_ok=True)
        with open(source, "rb") as f:
          target.write_bytes(f.read())


def _count_files(local: str) -> None:
  for root, _, files in os.walk(local):
    usage.count("files_written", len(files))
    usage.count("bytes_written", sum(os.path.getsize(os.path.join(root, f)) for f in files))


_DOWNLOADS: dict[str, str] = {}


def local_dir(p: PathLike) -> str:
  """A local folder with the contents of folder `p`: `p` itself on a local disk, else a copy
  downloaded once per process (removed when the process exits)."""
  if not is_remote(p):
    return os.fspath(p)
  key = os.fspath(p)
  if key not in _DOWNLOADS:
    local = tempfile.mkdtemp(prefix="rocketqa-download-")
    atexit.register(shutil.rmtree, local, ignore_errors=True)
    root = path(p)
    if not root.is_dir():
      raise FileNotFoundError(f"{p} is not a folder")
    for source in _files(root):
      target = os.path.join(local, os.fspath(source.relative_to(root)))
      os.makedirs(os.path.dirname(target), exist_ok=True)
      with open(target, "wb") as f:
        f.write(source.read_bytes())
    _DOWNLOADS[key] = local
  return _DOWNLOADS[key]


def _files(folder: epath.Path) -> Iterator[epath.Path]:
  """Every file under `folder` (a checkpoint folder: a few files, one level of subfolders)."""
  for p in folder.iterdir():
    if p.is_dir():
      yield from _files(p)
    else:
      yield p
