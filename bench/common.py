"""Shared by the bench scripts: machine facts, repeated timing, a printed table, a JSON file."""

from __future__ import annotations

import json
import os
import pathlib
import platform
import statistics
import time

RESULTS = pathlib.Path(__file__).resolve().parent / "results"


def machine() -> dict:
  import jax
  cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo")
              if line.startswith("model name")), platform.processor())
  return {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(),
          "jax": jax.__version__, "devices": [str(d) for d in jax.devices()]}


def timed_runs(fn, runs: int) -> tuple[float, list[float]]:
  """(seconds of the first call, which compiles; seconds of each of `runs` later calls)."""
  t0 = time.perf_counter()
  fn()
  first = time.perf_counter() - t0
  times = []
  for _ in range(runs):
    t0 = time.perf_counter()
    fn()
    times.append(time.perf_counter() - t0)
  return first, times


def median(xs):
  return statistics.median(xs)


def matmul_peak_gflops(n: int = 2048, runs: int = 5) -> float:
  """float32 GFLOP/s of one large jnp.dot: the machine's practical matmul peak under XLA."""
  import jax
  import jax.numpy as jnp
  a = jnp.ones((n, n), jnp.float32)
  f = jax.jit(lambda a: a @ a)
  _, times = timed_runs(lambda: f(a).block_until_ready(), runs)
  return 2 * n**3 / median(times) / 1e9


def print_table(rows: list[dict], columns: list[str]) -> None:
  fmt = lambda v: f"{v:,.3f}" if isinstance(v, float) else str(v)
  widths = [max(len(c), *(len(fmt(r.get(c, ""))) for r in rows)) for c in columns]
  print("  ".join(c.ljust(w) for c, w in zip(columns, widths)))
  for r in rows:
    print("  ".join(fmt(r.get(c, "")).ljust(w) for c, w in zip(columns, widths)))


def write_json(name: str, payload: dict, out: str | None = None) -> pathlib.Path:
  path = pathlib.Path(out) if out else RESULTS / f"{name}.json"
  path.parent.mkdir(parents=True, exist_ok=True)
  path.write_text(json.dumps(payload, indent=2) + "\n")
  print(f"wrote {path}")
  return path
