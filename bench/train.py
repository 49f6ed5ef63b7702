"""Dual-encoder training throughput and peak memory, on 1 and on 8 virtual CPU devices.

  python bench/train.py [--devices 1,8] [--matmul-dtypes float32,bfloat16] [--steps 5] [--peer]
                        [--runs 3]

The packaged all-MiniLM-L6-v2, SQuAD-mini labeled questions, 32 queries x (1 positive + 1 hard
negative) per step, query length 32, passage length 128, cross-batch negatives: the real
train_de0 setup (configs/squad_mini.py), timed over --steps steps after one compiling step. Each
device count runs in its own process (XLA_FLAGS fixes the count at start), which reports its
peak RSS; --matmul-dtypes are the products' input types (bfloat16: mixed precision,
rocketqa_jax/matmul.py; the demo's setting). --peer adds sentence-transformers'
MultipleNegativesRankingLoss on the same model, data and shape, in float32 (its default; the
ratios are against it) and under torch.autocast(bfloat16) (needs torch: `pip install
torch==2.13.0 sentence-transformers`), each in its own process; the autocast row only on CPUs
with native bfloat16 unless --peer-autocast=yes (on AVX2, torch's bfloat16 products crawl);
--runs repeats the whole comparison, alternating, and reports medians.
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


def time_train_steps(config, steps: int):
  """The real train_de setup on SQuAD-mini's labeled questions: (seconds of the first, compiling
  step; seconds of each of `steps` later steps; the last step's metrics)."""
  import jax
  from rocketqa_jax import stages
  from rocketqa_jax.data.datasets import load_data
  with tempfile.TemporaryDirectory() as workdir:
    data = load_data(config.data)
    run = stages.setup_train_de(config, workdir, data, stages.labeled_examples(data))
    trainer = run.trainer
    state = trainer.init_state(run.params)
    times = []
    for step in range(steps + 1):
      t0 = time.perf_counter()
      state, metrics = trainer.step_fn(state, trainer.batch(step))
      jax.block_until_ready(metrics)
      times.append(time.perf_counter() - t0)
  return times[0], times[1:], metrics


def child(steps: int, matmul_dtype: str) -> dict:
  import jax
  import runpy
  from rocketqa_jax import matmul
  config = runpy.run_path(str(REPO / "configs/squad_mini.py"))["get_config"]()
  config.model.matmul_dtype = matmul_dtype
  config.train.global_batch, config.train.hard_negatives = 32, 1
  config.train.dropout = True  # As the peer (sentence-transformers trains with dropout).
  config.train.query_max_length, config.train.passage_max_length = 32, 128
  first, times, metrics = time_train_steps(config, steps)
  seconds = common.median(times)
  return {"system": f"rocketqa_jax (products {matmul.resolve_dtype(matmul_dtype)})",
          "devices": jax.device_count(),
          "queries_per_s": config.train.global_batch / seconds, "step_seconds": seconds,
          "first_step_seconds": first, "peak_rss_gib": resource.getrusage(
              resource.RUSAGE_SELF).ru_maxrss / 2**20, "loss": float(metrics["loss"])}


def child_peer(steps: int, autocast: bool) -> dict:
  """sentence-transformers' MultipleNegativesRankingLoss on the same model, data and shape:
  32 (question, positive, random negative) triples a step, questions truncated at 32 tokens and
  passages at 128 (padded to the batch's longest, as its collator does), dropout on, AdamW;
  float32, or the forward under torch.autocast(bfloat16) (oneDNN bfloat16 kernels)."""
  import numpy as np
  import torch
  from sentence_transformers import SentenceTransformer, losses
  from rocketqa_jax.data import squad
  from rocketqa_jax.hf_checkpoint import resolve_model_dir
  torch.set_num_threads(os.cpu_count())
  model = SentenceTransformer(str(resolve_model_dir("all-MiniLM-L6-v2")), device="cpu")
  model.train()
  loss_fn = losses.MultipleNegativesRankingLoss(model)
  optimizer = torch.optim.AdamW(model.parameters(), lr=2e-5)
  data = squad.load_squad_mini()
  texts, index = data.corpus.texts, data.corpus.index
  rng = np.random.default_rng(0)

  def tokenize(strings, max_length):
    model.max_seq_length = max_length
    return model.tokenize(strings)

  def step(i):
    picks = [data.labeled[j] for j in rng.choice(len(data.labeled), 32, replace=False)]
    queries = tokenize([q.text for q in picks], 32)
    positives = tokenize([texts[index[q.positive_ids[0]]] for q in picks], 128)
    negatives = tokenize([texts[j] for j in rng.integers(len(texts), size=32)], 128)
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
      loss = loss_fn([queries, positives, negatives], None)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return float(loss)

  t0 = time.perf_counter()
  step(0)
  first = time.perf_counter() - t0
  times = []
  for i in range(1, steps + 1):
    t0 = time.perf_counter()
    loss = step(i)
    times.append(time.perf_counter() - t0)
  seconds = common.median(times)
  return {"system": "sentence-transformers (PyTorch"
                    f"{', autocast bfloat16' if autocast else ''})", "devices": 1,
          "queries_per_s": 32 / seconds, "step_seconds": seconds, "first_step_seconds": first,
          "peak_rss_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
          "loss": loss}


def _run_child(flags: list[str], steps: int, devices: int = 1) -> dict:
  env = {**os.environ, "XLA_FLAGS": f"--xla_force_host_platform_device_count={devices}",
         "JAX_PLATFORMS": "cpu"}
  out = subprocess.run([sys.executable, __file__, *flags, f"--steps={steps}"],
                       env=env, capture_output=True, text=True, check=False)
  result = next((line for line in out.stdout.splitlines() if line.startswith("RESULT ")), None)
  if result is None:
    raise SystemExit(f"{' '.join(flags)} with {devices} devices failed:\n{out.stderr[-3000:]}")
  return json.loads(result[len("RESULT "):])


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--devices", default="1,8")
  parser.add_argument("--steps", type=int, default=5)
  parser.add_argument("--matmul-dtypes", default="float32,bfloat16")
  parser.add_argument("--out", default=None)
  parser.add_argument("--peer", action="store_true",
                      help="Also sentence-transformers (needs torch), in its own process.")
  parser.add_argument("--peer-autocast", choices=["auto", "yes", "no"], default="auto")
  parser.add_argument("--runs", type=int, default=1,
                      help="Repeat the whole comparison; the table shows medians.")
  parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
  parser.add_argument("--child-peer", action="store_true", help=argparse.SUPPRESS)
  parser.add_argument("--autocast", action="store_true", help=argparse.SUPPRESS)
  args = parser.parse_args(argv)
  if args.child or args.child_peer:
    result = (child(args.steps, args.matmul_dtypes) if args.child
              else child_peer(args.steps, autocast=args.autocast))
    print("RESULT " + json.dumps(result))
    return
  from rocketqa_jax import matmul
  autocast = {"yes": True, "no": False, "auto": matmul.has_fast_bfloat16()}[args.peer_autocast]
  peers = ([["--child-peer", "--autocast"]] if autocast else []) + [["--child-peer"]]
  runs = []  # Alternating ours and the peer, so machine noise hits both alike.
  for _ in range(args.runs):
    runs.append([_run_child(["--child", f"--matmul-dtypes={dtype}"], args.steps, n)
                 for n in map(int, args.devices.split(","))
                 for dtype in args.matmul_dtypes.split(",")]
                + ([_run_child(flags, args.steps) for flags in peers] if args.peer else []))
  rows = [dict(r, queries_per_s=common.median([run[i]["queries_per_s"] for run in runs]),
               step_seconds=common.median([run[i]["step_seconds"] for run in runs]))
          for i, r in enumerate(runs[0])]
  if args.peer:
    for r in rows:
      r["vs_peer"] = r["queries_per_s"] / rows[-1]["queries_per_s"]
  print(f"\ntrain_de step: 32 queries x (1 positive + 1 hard negative), lengths 32/128, "
        f"median of {args.steps} steps after the first")
  common.print_table(rows, ["system", "devices", "queries_per_s", "vs_peer", "step_seconds",
                            "first_step_seconds", "peak_rss_gib"])
  common.write_json("train", {"machine": common.machine(), "steps": args.steps,
                              "command": " ".join(["python", "bench/train.py", *sys.argv[1:]]),
                              "results": rows, "runs": runs}, args.out)


if __name__ == "__main__":
  main()
