"""Keep freed host memory for reuse instead of returning it to the OS (glibc, Linux), except
while training.

XLA:CPU allocates a program's scratch space on every run, and glibc serves allocations that
large with a fresh mmap, so every run faults in new pages. One arena, no mmap and no trimming
make each run reuse the last one's pages: encoding at 128 tokens 1.3x faster (122-125 against
94 passages/s, docs/benchmarks.md). Training is the
exception: a train_de step's scratch (~3 GB at 32 x (1 + 1) passages of 160 tokens) stops
fitting where the last step's was once small allocations land there, and the heap grows by
another scratch: 30 steps peaked at 14.7 GiB (steps dispatched ahead, as the trainer does) or
8.2 GiB (one step at a time) against 4.9 with large blocks mmapped. So `Trainer.train` runs
inside `mmap_large_allocations()`: large blocks get their own mappings again, returned when
freed; that costs a fifth of a step (docs/design.md).
`ROCKETQA_RETURN_FREED_MEMORY=1` keeps glibc's defaults everywhere.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import sys

log = logging.getLogger(__name__)
DISABLE_ENV = "ROCKETQA_RETURN_FREED_MEMORY"  # Set to 1 to keep glibc's defaults.
_M_TRIM_THRESHOLD, _M_MMAP_MAX, _M_ARENA_MAX = -1, -4, -8  # From glibc's malloc.h.
_DEFAULT_MMAP_MAX = 65536  # glibc's default M_MMAP_MAX.
_mallopt = None  # Set once keep_freed_memory() has configured malloc.
_mmap_depth = 0  # Open mmap_large_allocations() blocks.


def keep_freed_memory() -> bool:
  """Configures glibc's malloc as above; True if it did. Call it first thing in a process,
  before JAX starts its threads (each thread picks its arena on its first allocation)."""
  global _mallopt
  if os.environ.get(DISABLE_ENV) == "1" or not sys.platform.startswith("linux"):
    return False
  try:
    mallopt = ctypes.CDLL("libc.so.6").mallopt
  except (OSError, AttributeError):  # Not glibc (musl, ...): nothing to tune.
    return False
  # A trim threshold of -1 turns trimming off (mallopt(3)).
  done = all(mallopt(option, value) == 1 for option, value in (
      (_M_ARENA_MAX, 1), (_M_MMAP_MAX, 0), (_M_TRIM_THRESHOLD, -1)))
  if not done:
    log.warning("mallopt refused a setting: freed host memory may go back to the OS")
  _mallopt = mallopt if done else None
  return done


@contextlib.contextmanager
def mmap_large_allocations():
  """Within: glibc's default for large blocks (a mapping each, unmapped when freed), so a
  training loop's per-step scratch cannot fragment the heap. A no-op unless keep_freed_memory()
  configured malloc."""
  global _mmap_depth
  if _mallopt is None:
    yield
    return
  _mmap_depth += 1
  _mallopt(_M_MMAP_MAX, _DEFAULT_MMAP_MAX)
  try:
    yield
  finally:
    _mmap_depth -= 1
    if not _mmap_depth:  # Only the outermost exit: nested blocks keep mmap on.
      _mallopt(_M_MMAP_MAX, 0)
