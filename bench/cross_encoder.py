"""Cross-encoder scoring throughput: what sizes the denoise and augment stages.

  python bench/cross_encoder.py [--pairs 640] [--max-lengths 256,192]
                                [--matmul-dtypes float32,bfloat16]

The packaged all-MiniLM-L6-v2 as a cross-encoder (fresh head: the speed does not depend on it),
labeled SQuAD-mini questions paired with SQuAD paragraphs, batch 64; pairs/s of one scoring pass
after a warm-up pass that compiles the length buckets.
"""

from __future__ import annotations

import argparse
import pathlib
import runpy
import sys

import common
from rocketqa_jax import cross_encoder as ce
from rocketqa_jax import models
from rocketqa_jax.data import squad

REPO = pathlib.Path(__file__).resolve().parents[1]


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--pairs", type=int, default=640)
  parser.add_argument("--max-lengths", default="256,192")
  parser.add_argument("--matmul-dtypes", default="float32,bfloat16")
  parser.add_argument("--out", default=None)
  args = parser.parse_args(argv)
  data = squad.load_squad_mini()
  config = runpy.run_path(str(REPO / "configs/squad_mini.py"))["get_config"]()
  questions = [data.labeled[i % len(data.labeled)].text for i in range(args.pairs)]
  texts = [data.corpus.texts[(7 * i) % len(data.corpus)] for i in range(args.pairs)]
  rows = []
  for matmul_dtype in args.matmul_dtypes.split(","):
    config.model.matmul_dtype = matmul_dtype
    model, params, tokenizer = models.cross_encoder_to_train(config)  # The demo's M_C.
    for max_length in map(int, args.max_lengths.split(",")):
      scorer = ce.CrossEncoderScorer(model, params, tokenizer, max_length=max_length)
      first, times = common.timed_runs(lambda: scorer.score(questions, texts), 1)
      rows.append({"products": matmul_dtype, "max_length": max_length, "pairs": args.pairs,
                   "first_run_s": first, "pairs_per_s": args.pairs / times[0]})
  common.print_table(rows, ["products", "max_length", "pairs", "pairs_per_s", "first_run_s"])
  common.write_json("cross_encoder", {
      "machine": common.machine(), "results": rows,
      "command": " ".join(["python", "bench/cross_encoder.py", *sys.argv[1:]])}, args.out)


if __name__ == "__main__":
  main()
