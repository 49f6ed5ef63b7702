"""Cross-batch negatives: what they cost as devices grow, at a fixed per-device batch.

  python bench/cross_batch.py [--devices 1,2,4,8] [--per-device 4] [--steps 3]

For each device count (virtual CPU devices, each count in its own process): the real train_de
step (configs/squad_mini.py: all-MiniLM-L6-v2 towers, lengths 32/128, one hard negative per
query) at `--per-device` queries per device, so the global batch grows with the devices; and
the loss alone (sharded_contrastive_loss on random unit embeddings, 64 queries x 128 passages per
device, forward + backward). Reported: median seconds, peak RSS, and the negatives each query
is scored against (cross_batch: every gathered passage but its positive; in_batch: its device's).
On one machine the virtual devices share the same cores, so step time measures the overhead of
gathering, not a speed-up.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import resource
import subprocess
import sys

import common
from train import time_train_steps

REPO = pathlib.Path(__file__).resolve().parents[1]


def child(per_device: int, steps: int) -> dict:
  import runpy
  import jax
  import numpy as np
  from rocketqa_jax import sharding
  from rocketqa_jax.losses import sharded_contrastive_loss
  n = jax.device_count()
  out = {"devices": n}
  # The loss alone: B queries and 2B passages per device.
  mesh = sharding.make_mesh(-1)
  b = 64
  rng = np.random.default_rng(0)
  unit = lambda x: x / np.linalg.norm(x, axis=-1, keepdims=True)
  q = jax.device_put(unit(rng.normal(size=(n * b, 384))).astype(np.float32),
                     sharding.batch_sharding(mesh))
  p = jax.device_put(unit(rng.normal(size=(n * 2 * b, 384))).astype(np.float32),
                     sharding.batch_sharding(mesh))
  positives = jax.device_put(np.arange(n * b, dtype=np.int32).reshape(-1, 1),
                             sharding.batch_sharding(mesh))
  ids = jax.device_put(np.arange(n * 2 * b, dtype=np.int32), sharding.batch_sharding(mesh))
  for mode in ("in_batch", "cross_batch"):
    f = jax.jit(jax.grad(lambda q, p: sharded_contrastive_loss(
        mesh, q, p, positives, ids, negatives=mode, scale=20.0)[0], argnums=(0, 1)))
    _, times = common.timed_runs(lambda: jax.block_until_ready(f(q, p)), 5)
    out[f"loss_{mode}_ms"] = 1000 * common.median(times)
  out["negatives_cross_batch"] = n * 2 * b - 1
  out["negatives_in_batch"] = 2 * b - 1
  # The whole training step.
  config = runpy.run_path(str(REPO / "configs/squad_mini.py"))["get_config"]()
  config.train.global_batch, config.train.steps = per_device * n, steps + 1
  _, times, metrics = time_train_steps(config, steps)
  out.update(global_batch=per_device * n, step_s=common.median(times),
             step_negatives=float(metrics["negatives_per_query"]),
             peak_rss_gib=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20)
  return out


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--devices", default="1,2,4,8")
  parser.add_argument("--per-device", type=int, default=4)
  parser.add_argument("--steps", type=int, default=3)
  parser.add_argument("--out", default=None)
  parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
  args = parser.parse_args(argv)
  if args.child:
    print("RESULT " + json.dumps(child(args.per_device, args.steps)))
    return
  rows = []
  for n in map(int, args.devices.split(",")):
    env = {**os.environ, "XLA_FLAGS": f"--xla_force_host_platform_device_count={n}",
           "JAX_PLATFORMS": "cpu"}
    out = subprocess.run([sys.executable, __file__, "--child", f"--per-device={args.per_device}",
                          f"--steps={args.steps}"], env=env, capture_output=True, text=True)
    result = next((l for l in out.stdout.splitlines() if l.startswith("RESULT ")), None)
    if result is None:
      raise SystemExit(f"{n} devices failed:\n{out.stderr[-3000:]}")
    rows.append(json.loads(result[len("RESULT "):]))
  print(f"\nfixed per-device batch: train step {args.per_device} queries x (1 positive + 1 hard "
        "negative); loss alone 64 queries x 128 passages")
  common.print_table(rows, ["devices", "global_batch", "step_negatives", "step_s",
                            "peak_rss_gib", "negatives_in_batch", "negatives_cross_batch",
                            "loss_in_batch_ms", "loss_cross_batch_ms"])
  common.write_json("cross_batch", {
      "machine": common.machine(), "per_device": args.per_device, "steps": args.steps,
      "command": " ".join(["python", "bench/cross_batch.py", *sys.argv[1:]]),
      "results": rows}, args.out)


if __name__ == "__main__":
  main()
