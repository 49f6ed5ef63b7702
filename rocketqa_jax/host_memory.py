"""Keep freed host memory for reuse instead of returning it to the OS (glibc, Linux).

XLA:CPU allocates a program's scratch space on every run, and glibc serves allocations that
large with a fresh mmap, so every run faults in new pages. One arena, no mmap and no trimming
make each run reuse the last one's pages: encoding at 128 tokens 1.3x faster (122-125 against
94 passages/s, docs/benchmarks.md), and a training step 1.15-1.3x. Training must run one step
at a time (on CPU `Trainer.train` waits for each): a train_de step's ~3 GB scratch is freed and
reused every step, and with steps dispatched ahead the single heap fragmented (30 steps peaked
at 14.7 GiB); one at a time it grows once, to about two scratches (8.3 GiB over 142 steps with
checkpoints, against 4.9 with glibc's defaults).
`ROCKETQA_RETURN_FREED_MEMORY=1` keeps glibc's defaults everywhere. On accelerators the
scratch lives in device memory, so glibc's defaults stay. Measured with jax 0.10; jax 0.12's
XLA:CPU reuses its scratch itself (a 16 MB-temporary program faults about 64 pages a run with
glibc's defaults, not ~170k: tests/test_host_memory.py), so there it gains little (not timed).
"""

from __future__ import annotations

import ctypes
import importlib.metadata
import importlib.util
import logging
import os
import sys

log = logging.getLogger(__name__)
DISABLE_ENV = "ROCKETQA_RETURN_FREED_MEMORY"  # Set to 1 to keep glibc's defaults.
_M_TRIM_THRESHOLD, _M_MMAP_MAX, _M_ARENA_MAX = -1, -4, -8  # From glibc's malloc.h.
_kept = False


def runs_on_cpu() -> bool:
  """Whether JAX will compute on the CPU, told without starting JAX (which would start its
  threads): JAX_PLATFORMS if set, else whether an accelerator plugin (CUDA, ROCm) or libtpu is
  installed."""
  platforms = os.environ.get("JAX_PLATFORMS", "") or os.environ.get("JAX_PLATFORM_NAME", "")
  if platforms:
    return platforms.split(",")[0].strip() == "cpu"
  plugins = importlib.metadata.entry_points(group="jax_plugins")
  return not plugins and importlib.util.find_spec("libtpu") is None


def is_kept() -> bool:
  """Whether `keep_freed_memory` configured this process."""
  return _kept


def keep_freed_memory() -> bool:
  """Configures glibc's malloc as above, on CPU backends; True if it did. Call it first thing in
  a process, before JAX starts its threads (each thread picks its arena on its first
  allocation)."""
  global _kept
  if (os.environ.get(DISABLE_ENV) == "1" or not sys.platform.startswith("linux")
      or not runs_on_cpu()):
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
  _kept = done
  return done

