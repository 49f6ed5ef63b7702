"""Retrieval: exact search in JAX against ScaNN and faiss (flat, HNSW): build time, queries/s,
recall@10 vs exact.

  python bench/search.py [--n 1000000] [--queries 1000] [--skip-squad]

Two data sets:
- synthetic: n x 384 float32 unit vectors around 1,000 random unit cluster centres: each vector
  is its centre plus Gaussian noise of norm about 0.7 (N(0, 0.7^2 / 384) per dimension), then
  L2-normalized (vectors of one cluster have cosine about 0.67); data seed 0, queries drawn the
  same way with seed 1. Clustered like real embeddings, unlike uniform noise;
- squad: the 2,067 SQuAD-mini paragraphs and 2,777 eval questions embedded by the packaged
  all-MiniLM-L6-v2 (max length 256, mean pooling, normalized).
ScaNN runs with the parameters `retrieval.scann_params` picks for the corpus size and, on SQuAD
(where that rule picks brute force), also with a forced tree + asymmetric hashing.
"""

from __future__ import annotations

import argparse
import math
import sys
import time

import numpy as np

import common
from rocketqa_jax.retrieval import ExactIndex, ScannIndex, recall_against_exact, scann_params


def clustered(n: int, d: int = 384, clusters: int = 1000, seed: int = 0) -> np.ndarray:
  centres = np.random.default_rng(0).normal(size=(clusters, d)).astype(np.float32)
  centres /= np.linalg.norm(centres, axis=1, keepdims=True)
  rng = np.random.default_rng(seed)
  out = np.empty((n, d), np.float32)
  for s in range(0, n, 100_000):  # In blocks, to bound temporary memory.
    m = min(100_000, n - s)
    noise = rng.normal(0, 0.7 / math.sqrt(d), (m, d)).astype(np.float32)
    block = centres[rng.integers(clusters, size=m)] + noise
    out[s:s + m] = block / np.linalg.norm(block, axis=1, keepdims=True)
  return out


def timed(fn, runs=3):
  first, times = common.timed_runs(fn, runs)
  return first, common.median(times)


def compare(name: str, corpus: np.ndarray, queries: np.ndarray, k: int = 10,
            extra_params: dict | None = None) -> list[dict]:
  rows = []
  t0 = time.perf_counter()
  exact = ExactIndex(corpus)
  build = time.perf_counter() - t0
  _, seconds = timed(lambda: exact.search_rows(queries, k))
  truth, _ = exact.search_rows(queries, k)
  rows.append({"data": name, "index": "exact (JAX)", "n": len(corpus), "build_s": build,
               "queries_per_s": len(queries) / seconds, "recall@10": 1.0, "top1_equal": 1.0})
  configs = {"scann (rule)": scann_params(len(corpus), k)}
  if extra_params:
    configs.update(extra_params)
  for label, params in configs.items():
    t0 = time.perf_counter()
    index = ScannIndex.build(corpus, k=k, params=params)
    build = time.perf_counter() - t0
    _, seconds = timed(lambda: index.search_rows(queries, k))
    got, _ = index.search_rows(queries, k)
    rows.append({"data": name, "index": f"{label}: {params}", "n": len(corpus),
                 "build_s": build, "queries_per_s": len(queries) / seconds,
                 "recall@10": recall_against_exact(got, truth),
                 "top1_equal": float(np.mean(got[:, 0] == truth[:, 0]))})
  rows += faiss_rows(name, corpus, queries, truth, k)
  exact_qps = rows[0]["queries_per_s"]
  for r in rows:
    r["speedup_vs_exact"] = r["queries_per_s"] / exact_qps
  return rows


def faiss_rows(name: str, corpus: np.ndarray, queries: np.ndarray, truth: np.ndarray,
               k: int) -> list[dict]:
  """faiss-cpu (bench only: `pip install faiss-cpu`), inner product: exact flat, and HNSW
  (M = 32, efConstruction 64) at two search depths. Skipped when faiss is not installed."""
  try:
    import faiss
  except ImportError:
    print("faiss not installed: pip install faiss-cpu (bench only); its rows are skipped")
    return []
  def measure(label, index, build):
    _, seconds = timed(lambda: index.search(queries, k))
    _, got = index.search(queries, k)
    return {"data": name, "index": label, "n": len(corpus), "build_s": build,
            "queries_per_s": len(queries) / seconds,
            "recall@10": recall_against_exact(got, truth),
            "top1_equal": float(np.mean(got[:, 0] == truth[:, 0]))}
  t0 = time.perf_counter()
  flat = faiss.IndexFlatIP(corpus.shape[1])
  flat.add(corpus)
  rows = [measure("faiss flat (exact)", flat, time.perf_counter() - t0)]
  t0 = time.perf_counter()
  hnsw = faiss.IndexHNSWFlat(corpus.shape[1], 32, faiss.METRIC_INNER_PRODUCT)
  hnsw.hnsw.efConstruction = 64
  hnsw.add(corpus)
  build = time.perf_counter() - t0
  for ef in (64, 256):  # One graph, two search depths.
    hnsw.hnsw.efSearch = ef
    rows.append(measure(f"faiss HNSW32 efSearch={ef}", hnsw, build))
  return rows


def squad_embeddings():
  import rocketqa_jax
  from rocketqa_jax.data import squad
  data = squad.load_squad_mini()
  enc = rocketqa_jax.load_encoder("all-MiniLM-L6-v2")
  return (enc.encode_passages(data.corpus.texts, progress=True),
          enc.encode_queries([q.text for q in data.eval], progress=True))


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--n", type=int, default=1_000_000)
  parser.add_argument("--queries", type=int, default=1000)
  parser.add_argument("--skip-squad", action="store_true")
  parser.add_argument("--out", default=None)
  args = parser.parse_args(argv)
  rows = compare("synthetic", clustered(args.n), clustered(args.queries, seed=1))
  if not args.skip_squad:
    passages, questions = squad_embeddings()
    forced = {"mode": "tree_ah", "num_leaves": 45, "num_leaves_to_search": 10,
              "training_sample_size": len(passages), "dims_per_block": 2,
              "anisotropic_quantization_threshold": 0.2, "reorder": 100}
    rows += compare("squad", passages, questions, extra_params={"scann (tree_ah)": forced})
  print("\nk = 10, median of 3 searches of all queries after a first one")
  common.print_table(rows, ["data", "n", "index", "build_s", "queries_per_s",
                            "speedup_vs_exact", "recall@10", "top1_equal"])
  common.write_json("search", {"machine": common.machine(), "n": args.n, "queries": args.queries,
                               "command": " ".join(["python", "bench/search.py", *sys.argv[1:]]),
                               "results": rows}, args.out)


if __name__ == "__main__":
  main()
