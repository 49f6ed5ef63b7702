"""Mining through ScaNN against exact search: how many of the exact candidate lists' passages the
approximate lists keep, on SQuAD-mini's labeled questions (what stage mine0 mines for).

  python bench/mining.py [--workdir W [--model train_de0]] [--k 50]

The model is the configured zero-shot checkpoint (configs/squad_mini.py), or a workdir's trained
dual encoder. Rows: `mine.index=scann` as configured (`retrieval.scann_params`: brute force below
20,000 passages, so on SQuAD-mini equal to exact), and the tree + asymmetric-hashing index the
same rule builds for large corpora, applied to SQuAD-mini's 2,067 passages, with and without
its exact re-scoring. Recall@d: the mean fraction of the exact top d that the index's top d
holds, at the depths the pipeline reads (denoise 4, ce.sample_from_top 10, mine.top_k 50).
"""

from __future__ import annotations

import argparse
import math
import pathlib
import runpy
import sys
import time

import common
import numpy as np
from rocketqa_jax import models, retrieval
from rocketqa_jax.data.datasets import load_data
from rocketqa_jax.workdir import INITIAL, Workdir

REPO = pathlib.Path(__file__).resolve().parents[1]


def tree_params(n: int, k: int, reorder: bool) -> dict:
  """`retrieval.scann_params`' rule for a large corpus (sqrt(n) leaves, 5% searched, at least
  10), applied to n vectors whatever their number."""
  leaves = max(2, round(math.sqrt(n)))
  params = {"mode": "tree_ah", "num_leaves": leaves,
            "num_leaves_to_search": min(leaves, max(10, math.ceil(0.05 * leaves))),
            "training_sample_size": n, "dims_per_block": 2,
            "anisotropic_quantization_threshold": 0.2, "reorder": max(100, 10 * k)}
  if not reorder:
    params["reorder"] = 0
  return params


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--workdir", default="", help="A pipeline workdir with trained towers.")
  parser.add_argument("--model", default="train_de0")
  parser.add_argument("--k", type=int, default=50)
  parser.add_argument("--depths", default="4,10,50")
  parser.add_argument("--out", default=None)
  args = parser.parse_args(argv)
  config = runpy.run_path(str(REPO / "configs/squad_mini.py"))["get_config"]()
  towers = Workdir(args.workdir).towers(args.model) if args.workdir else None
  query_encoder, passage_encoder = models.load_encoders(config, towers)
  data = load_data(config.data)
  corpus = passage_encoder.encode_passages(data.corpus.texts, progress=True)
  queries = query_encoder.encode_queries([q.text for q in data.labeled], progress=True)
  exact, _ = retrieval.ExactIndex(corpus).search_rows(queries, args.k)
  depths = [int(d) for d in args.depths.split(",")]
  indexes = {"scann (mine.index=scann)": None,
             "scann tree-AH, rule for large corpora": tree_params(len(corpus), args.k, True),
             "scann tree-AH, no re-scoring": tree_params(len(corpus), args.k, False)}
  rows = []
  for name, params in indexes.items():
    t0 = time.perf_counter()
    index = retrieval.ScannIndex.build(corpus, k=args.k, params=params)
    built = time.perf_counter() - t0
    t0 = time.perf_counter()
    found, _ = index.search_rows(queries, args.k)
    searched = time.perf_counter() - t0
    row = {"index": name, "params": index.params, "build_s": built,
           "queries_per_s": len(queries) / searched}
    row.update({f"recall@{d}": retrieval.recall_against_exact(found[:, :d], exact[:, :d])
                for d in depths})
    row["top1_equal"] = float(np.mean(found[:, 0] == exact[:, 0]))
    rows.append(row)
  columns = ["index", *(f"recall@{d}" for d in depths), "top1_equal", "build_s", "queries_per_s"]
  common.print_table(rows, columns)
  common.write_json("mining", {
      "machine": common.machine(), "model": args.model if args.workdir else INITIAL,
      "questions": len(queries), "passages": len(corpus), "k": args.k, "results": rows,
      "command": " ".join(["python", "bench/mining.py", *sys.argv[1:]])}, args.out)


if __name__ == "__main__":
  main()
