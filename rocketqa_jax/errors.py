"""Errors a user can fix, said in a line or three: what is wrong, where (the file and line, or
the config field) and what to do.

`UserError` is their one type (the readers' DataError, CheckpointError, the pipeline's stale
and missing-input errors and the config's errors are kinds of it). `python -m rocketqa_jax.main`,
`.search` print its message and exit 2 (`exit_for`); a full disk or an
unwritable path is said the same way. `--verbose`, or ROCKETQA_VERBOSE=1, shows the traceback
too. Anything else is a bug of ours and keeps its traceback.
"""

from __future__ import annotations

import errno
import logging
import os
import sys

from absl import flags

VERBOSE_ENV = "ROCKETQA_VERBOSE"
EXIT_CODE = 2
FULL_DISK_TEXTS = ("No space left on device", "File too large", "Disk quota exceeded")
_VERBOSE = flags.DEFINE_bool("verbose", False, "Show the traceback of errors a user can fix.")


class UserError(Exception):
  """Bad input or state the user can fix; the message says what, where and what to do."""


class ConfigError(UserError, ValueError):
  """A config field out of its range or type; the message names the field."""


class InputError(UserError, ValueError):
  """Input data that cannot be used as it is; the message names the file."""


class MissingFileError(UserError, FileNotFoundError):
  """An input file that is not there; the message names it and the setting that chose it."""


def verbose() -> bool:
  return (os.environ.get(VERBOSE_ENV, "") not in ("", "0")
          or (flags.FLAGS.is_parsed() and _VERBOSE.value))


def message(error: BaseException) -> str | None:
  """The short message for an error the user can fix; None for any other (a bug)."""
  if isinstance(error, UserError):
    return str(error)
  # A full disk may reach us wrapped (orbax, TensorStore): the chain and the text are searched.
  chain, seen = [], error
  while seen is not None and len(chain) < 10:
    chain.append(seen)
    seen = seen.__cause__ or seen.__context__
  for e in chain:
    full = isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)
    if full or any(text in str(e) for text in FULL_DISK_TEXTS):
      where = getattr(e, "filename", None) or "a write"
      return (f"{where}: no space left on device (or the file size limit). Free space, or use "
              "another --workdir, and run the same command again: finished work is kept.")
  if isinstance(error, PermissionError):
    return f"{error.filename}: permission denied. Choose a path you can write, or fix its rights."
  return None


class _OneLine(logging.Filter):
  """Another library's error record as its first line, without its traceback."""

  def filter(self, record: logging.LogRecord) -> bool:
    if record.levelno >= logging.ERROR and not record.name.startswith("rocketqa_jax"):
      record.msg, record.args = record.getMessage().splitlines()[0], ()
      record.exc_info = record.exc_text = record.stack_info = None
    return True


def quiet_library_errors() -> None:
  """Unless verbose: other libraries' error logs in one line each (orbax logs every failed
  write thread with its traceback: 800 lines for a full disk, whose cause is then said once by
  us), and no traceback for the asyncio loops TensorStore's callbacks find closed after it
  (they reach sys.unraisablehook: up to 130 of them, above our line)."""
  if verbose():
    return
  for handler in logging.getLogger().handlers:
    handler.addFilter(_OneLine())
  hook = sys.unraisablehook

  def unraisablehook(unraisable):
    error = unraisable.exc_value
    if not (isinstance(error, RuntimeError) and str(error) == "Event loop is closed"):
      hook(unraisable)

  sys.unraisablehook = unraisablehook


def short_message(error: BaseException) -> str | None:
  """`message(error)`, unless --verbose asks for the traceback instead."""
  return None if verbose() else message(error)


def exit_for(error: BaseException) -> None:
  """Prints `error`'s short message and exits 2 when a user can fix it (and --verbose is off);
  returns otherwise, for the caller to re-raise."""
  text = short_message(error)
  if text is None:
    return
  print(f"error: {text}\n(--verbose or {VERBOSE_ENV}=1 shows where in the code)",
        file=sys.stderr, flush=True)
  # What library threads print while the process ends would bury the line above.
  os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stderr.fileno())
  sys.exit(EXIT_CODE)
