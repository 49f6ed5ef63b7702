"""On whatever accelerator this machine has (GPU, TPU, or else its CPU): the checks a new
platform needs before a real run, as a table and a JSON.

  python bench/accelerator_check.py [--runs 2] [--steps 5] [--out FILE]

1. parity: all-MiniLM-L6-v2 on the 48 golden SQuAD texts and questions against PyTorch's
   embeddings (tests/golden/minilm_squad.npz, made with HF BertModel): float32 and
   `matmul_dtype=auto` (bfloat16 products where the chip has them), max |difference| and the
   lowest cosine. Pass: cosine >= 0.999 (float32 on a TPU multiplies in bfloat16 passes by
   default, so its differences are larger than the CPU's 1e-4; the cosine is what retrieval sees).
2. pipeline: `python -m rocketqa_jax.main --config=configs/tiny.py` (every stage, random-init
   2-layer BERT) in a temporary workdir: exit code, wall time per stage.
3. encode: bench/encode.py's measurement (2,067 SQuAD paragraphs, 256 tokens) in float32 and
   with bfloat16 products: passages/s.
4. train: bench/train.py's train_de step (32 queries x (1 positive + 1 hard negative), lengths
   32/128) on all local devices, products float32 and bfloat16: queries/s.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import subprocess
import sys
import tempfile
import time

import numpy as np

import common
import encode as encode_bench
import train as train_bench

REPO = pathlib.Path(__file__).resolve().parents[1]
GOLDEN = REPO / "tests" / "golden" / "minilm_squad.npz"
MIN_COSINE = 0.999


def parity() -> list[dict]:
  import rocketqa_jax
  from rocketqa_jax import matmul
  from rocketqa_jax.data import squad
  g = np.load(GOLDEN)
  data = squad.load_squad_mini()
  texts = [data.corpus.texts[data.corpus.index[p]] for p in g["passage_ids"]]
  by_id = {q.id: q.text for q in data.eval}
  questions = [by_id[q] for q in g["question_ids"]]
  rows = []
  for matmul_dtype in ("float32", "auto"):
    enc = rocketqa_jax.load_encoder("all-MiniLM-L6-v2", matmul_dtype=matmul_dtype,
                                    query_max_length=64)
    for kind, ours, ref in (("passages", enc.encode_passages(texts), g["passages"]),
                            ("questions", enc.encode_queries(questions), g["questions"])):
      cosine = float(((ours * ref).sum(1) / np.linalg.norm(ours, axis=1)).min())
      rows.append({"check": f"parity {kind}, products {matmul.resolve_dtype(matmul_dtype)}",
                   "max_abs_diff": float(np.abs(ours - ref).max()), "min_cosine": cosine,
                   "ok": cosine >= MIN_COSINE})
  return rows


def pipeline() -> dict:
  with tempfile.TemporaryDirectory() as workdir:
    t0 = time.perf_counter()
    run = subprocess.run([sys.executable, "-m", "rocketqa_jax.main", "--config=configs/tiny.py",
                          f"--workdir={workdir}"], cwd=REPO, capture_output=True, text=True,
                         check=False)
    seconds = time.perf_counter() - t0
    timings = pathlib.Path(workdir, "timings.jsonl")
    stages = ({r["stage"]: r["seconds"] for r in map(json.loads, timings.open())}
              if timings.exists() else {})
  if run.returncode:
    print(run.stderr[-4000:], file=sys.stderr)
  return {"check": "tiny pipeline, every stage", "seconds": seconds, "stage_seconds": stages,
          "exit_code": run.returncode, "ok": run.returncode == 0}


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--runs", type=int, default=2, help="Timed encoding runs (after one).")
  parser.add_argument("--steps", type=int, default=5, help="Timed training steps (after one).")
  parser.add_argument("--batch-size", type=int, default=0,
                      help="Encoding batch; 0: 64 on a CPU, 256 on an accelerator.")
  parser.add_argument("--out", default=None)
  args = parser.parse_args(argv)
  import jax
  from rocketqa_jax.data import squad
  device = jax.devices()[0]
  batch = args.batch_size or (64 if device.platform == "cpu" else 256)
  print(f"{jax.device_count()} {device.platform} device(s): {device.device_kind}", flush=True)
  checks = parity()
  checks.append(pipeline())
  texts = squad.load_squad_mini().corpus.texts
  speed = [encode_bench.bench_ours(texts, 256, batch, 8, args.runs, precision, "auto")
           for precision in ("float32", "bf16-products")]
  speed += [train_bench.child(args.steps, dtype) for dtype in ("float32", "bfloat16")]
  common.print_table(checks, ["check", "max_abs_diff", "min_cosine", "seconds", "exit_code",
                              "ok"])
  common.print_table(speed, ["system", "passages_per_s", "queries_per_s", "first_run_seconds",
                             "first_step_seconds"])
  kind = device.device_kind.replace(" ", "-").lower()
  common.write_json(f"accelerator_check-{device.platform}-{kind}", {
      "machine": common.machine(), "device_kind": device.device_kind,
      "device_count": jax.device_count(), "encode_batch": batch,
      "command": " ".join(["python", "bench/accelerator_check.py", *sys.argv[1:]]),
      "checks": checks, "throughput": speed}, args.out)
  return 0 if all(c["ok"] for c in checks) else 1


if __name__ == "__main__":
  sys.exit(main())
