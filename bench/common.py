"""Shared by the bench scripts: machine facts, repeated timing, a printed table, a JSON file."""

from __future__ import annotations

import json
import os
import pathlib
import platform
import statistics
import sys
import time

from rocketqa_jax import errors
from rocketqa_jax.host_memory import keep_freed_memory

RESULTS = pathlib.Path(__file__).resolve().parent / "results"
# As `python -m rocketqa_jax.main` does; in every bench process, ours and the peer's alike.
keep_freed_memory()


def _one_line_errors(kind, error, traceback):
  """What a user can fix in one line, as main and search do (errors.py); bugs in full."""
  text = errors.short_message(error)
  if text is None:
    sys.__excepthook__(kind, error, traceback)
  else:
    print(f"error: {text}\n({errors.VERBOSE_ENV}=1 shows where in the code)", file=sys.stderr)


sys.excepthook = _one_line_errors


def machine() -> dict:
  import jax
  from rocketqa_jax import matmul
  cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo")
              if line.startswith("model name")), platform.processor())
  return {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(),
          "jax": jax.__version__, "devices": [str(d) for d in jax.devices()],
          "cpu_bfloat16_flags": sorted(matmul.cpu_flags() & set(matmul.CPU_BFLOAT16_FLAGS)),
          "auto_matmul_dtype": matmul.resolve_dtype("auto")}


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


def matmul_peak_gflops(dtype: str = "float32", n: int = 2048, runs: int = 5) -> float:
  """GFLOP/s of one large jnp.dot with `dtype` inputs and float32 results, its fastest of
  `runs` (other tenants only slow a run down): the machine's practical matmul peak under XLA
  for that input type."""
  import jax
  import jax.numpy as jnp
  a = jnp.ones((n, n), dtype)
  f = jax.jit(lambda a: jnp.dot(a, a, preferred_element_type=jnp.float32))
  _, times = timed_runs(lambda: f(a).block_until_ready(), runs)
  return 2 * n**3 / min(times) / 1e9


def print_table(rows: list[dict], columns: list[str]) -> None:
  fmt = lambda v: f"{v:,.4f}" if isinstance(v, float) else str(v)
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


def dev_workdir(path: str):
  """(Workdir, its config, its data, its eval questions) of a pipeline workdir on a tuning
  split; exits on one built on SQuAD-mini's eval questions (tuning there is tuning on the test)."""
  import ml_collections

  from rocketqa_jax import artifacts
  from rocketqa_jax.data.datasets import load_data
  from rocketqa_jax.workdir import Workdir
  workdir = Workdir(path)
  config = ml_collections.ConfigDict(artifacts.read_json(workdir.config))
  if config.data.name == "squad_mini" and config.data.split != "dev":
    sys.exit(f"{workdir}: data.split={config.data.split!r}; tune on a dev workdir "
             "(configs/squad_mini.py:dev), never on the eval questions")
  data = load_data(config.data)
  e = config.eval
  return workdir, config, data, data.eval[:e.max_questions] if e.max_questions else data.eval
