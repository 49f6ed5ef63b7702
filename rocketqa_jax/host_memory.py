"""Opt-in: keep freed host memory for reuse instead of returning it to the OS (glibc, Linux).

XLA:CPU allocates a program's scratch space on every run: ~3 GB for a train_de step at
32 x (1 + 1) passages of 160 tokens. glibc serves allocations that large with a fresh mmap, so
each step touches 3 GB of new pages (~900k page faults). One arena, no mmap and no trimming make
later steps reuse the first steps' pages: 5-20% more queries/s (docs/benchmarks.md), but the
single arena fragments and the process keeps its high-water mark: peak RSS 14.7 GiB against
5.0 with glibc's defaults over 30 such steps. Too much for a 12 GB Colab runtime or two jobs on
a 24 GB machine, so it is off unless `ROCKETQA_KEEP_FREED_MEMORY=1`.
"""

from __future__ import annotations

import ctypes
import logging
import os
import sys

log = logging.getLogger(__name__)
ENABLE_ENV = "ROCKETQA_KEEP_FREED_MEMORY"  # Set to 1 to trade peak memory for speed.
_M_TRIM_THRESHOLD, _M_MMAP_MAX, _M_ARENA_MAX = -1, -4, -8  # From glibc's malloc.h.


def keep_freed_memory() -> bool:
  """With ROCKETQA_KEEP_FREED_MEMORY=1, configures glibc's malloc as above; True if it did.
  Call it first thing in a process, before JAX starts its threads (each thread picks its arena
  on its first allocation)."""
  if os.environ.get(ENABLE_ENV) != "1" or not sys.platform.startswith("linux"):
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
  return done
