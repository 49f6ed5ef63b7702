"""Dual-encoder training throughput and peak memory, on 1 and on 8 virtual CPU devices.

  python bench/train.py [--devices 1,8] [--steps 5]

The packaged all-MiniLM-L6-v2, SQuAD-mini labeled questions, 32 queries x (1 positive + 1 hard
negative) per step, query length 32, passage length 128, cross-batch negatives: the real
train_de0 setup (configs/squad_mini.py), timed over --steps steps after one compiling step. Each
device count runs in its own process (XLA_FLAGS fixes the count at start), which reports its
peak RSS.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import resource
import subprocess
import sys
import tempfile
import time

import common

REPO = pathlib.Path(__file__).resolve().parents[1]


def child(steps: int) -> dict:
  import jax
  import runpy
  from rocketqa_jax import stages
  config = runpy.run_path(str(REPO / "configs/squad_mini.py"))["get_config"]()
  config.train.global_batch, config.train.hard_negatives = 32, 1
  config.train.dropout = True  # As the peer (sentence-transformers trains with dropout).
  config.train.query_max_length, config.train.passage_max_length = 32, 128
  with tempfile.TemporaryDirectory() as workdir:
    data = stages.load_data(config)
    run = stages.setup_train_de(config, pathlib.Path(workdir), data,
                                stages.labeled_examples(data))
    trainer = run.trainer
    state = trainer.init_state(run.params)
    t0 = time.perf_counter()
    state, metrics = trainer.step_fn(state, trainer.batch(0))
    jax.block_until_ready(metrics)
    first = time.perf_counter() - t0
    times = []
    for step in range(1, steps + 1):
      t0 = time.perf_counter()
      state, metrics = trainer.step_fn(state, trainer.batch(step))
      jax.block_until_ready(metrics)
      times.append(time.perf_counter() - t0)
  seconds = common.median(times)
  return {"system": "rocketqa_jax", "devices": jax.device_count(),
          "queries_per_s": config.train.global_batch / seconds, "step_seconds": seconds,
          "first_step_seconds": first, "peak_rss_gib": resource.getrusage(
              resource.RUSAGE_SELF).ru_maxrss / 2**20, "loss": float(metrics["loss"])}


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--devices", default="1,8")
  parser.add_argument("--steps", type=int, default=5)
  parser.add_argument("--out", default=None)
  parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
  args = parser.parse_args(argv)
  if args.child:
    print("RESULT " + json.dumps(child(args.steps)))
    return
  rows = []
  for n in map(int, args.devices.split(",")):
    env = {**os.environ, "XLA_FLAGS": f"--xla_force_host_platform_device_count={n}",
           "JAX_PLATFORMS": "cpu"}
    out = subprocess.run([sys.executable, __file__, "--child", f"--steps={args.steps}"],
                         env=env, capture_output=True, text=True, check=False)
    result = next((line for line in out.stdout.splitlines() if line.startswith("RESULT ")), None)
    if result is None:
      raise SystemExit(f"child with {n} devices failed:\n{out.stderr[-3000:]}")
    rows.append(json.loads(result[len("RESULT "):]))
  print(f"\ntrain_de step: 32 queries x (1 positive + 1 hard negative), lengths 32/128, "
        f"median of {args.steps} steps after the first")
  common.print_table(rows, ["system", "devices", "queries_per_s", "step_seconds",
                            "first_step_seconds", "peak_rss_gib"])
  common.write_json("train", {"machine": common.machine(), "steps": args.steps,
                              "command": " ".join(["python", "bench/train.py", *sys.argv[1:]]),
                              "results": rows}, args.out)


if __name__ == "__main__":
  main()
