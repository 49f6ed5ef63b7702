"""What a stage used in this process: counts of the work done and the peak memory.

The code that does the work counts it (`count("passages_tokenized", n)`); `main` starts each
stage with `reset()` and records `report()` per process in `timings.jsonl`, which is how a run
shows that a process tokenized, loaded and searched its share, not the whole corpus
(docs/scale.md). Peak memory is the kernel's high-water mark of resident memory (VmHWM),
reset at each stage where Linux allows it.
"""

from __future__ import annotations

import collections

COUNTS = ("passages_tokenized", "queries_tokenized", "pairs_tokenized", "pairs_scored",
          "passages_encoded", "shards_loaded", "passages_indexed", "index_build_seconds",
          "queries_searched", "files_written", "bytes_written")
_counts: collections.Counter = collections.Counter()


def count(name: str, n: int | float = 1) -> None:
  _counts[name] += n


def _status_kib(field: str) -> int | None:
  try:
    with open("/proc/self/status") as f:
      for line in f:
        if line.startswith(field + ":"):
          return int(line.split()[1])
  except OSError:
    pass
  return None


def reset() -> None:
  """Zero the counts and the peak-memory mark (Linux: /proc/self/clear_refs)."""
  _counts.clear()
  try:
    with open("/proc/self/clear_refs", "w") as f:
      f.write("5")
  except OSError:
    pass  # Not Linux, or not allowed: the peak is then the process's since it started.


def report() -> dict:
  """{count: n} for every name in COUNTS, and peak_rss_gib (None where unknown)."""
  peak = _status_kib("VmHWM")
  return {**{name: round(_counts[name], 3) for name in COUNTS},
          "peak_rss_gib": None if peak is None else round(peak / 2**20, 3)}
