"""Encoding throughput: the packaged all-MiniLM-L6-v2 on the 2,067 SQuAD-mini paragraphs.

  python bench/encode.py [--max-lengths 128,256] [--precisions float32,bf16-products,bfloat16]
                         [--batch-size 64] [--bucket-size 8] [--chunk-tokens auto,0] [--runs 3]
                         [--peer]

Reports passages/s (median of --runs after a first, compiling run), padding overhead, achieved
GFLOP/s over the model's FLOPs on real tokens, and that as a fraction of the machine's matmul
peak for the products' input type (one large jnp.dot, its fastest run, before and after the
rest; the higher of the two). Precisions: float32;
bf16-products, bfloat16 inputs with float32 sums and float32 activations (`model.matmul_dtype`,
rocketqa_jax/matmul.py); bfloat16, activations in bfloat16 too (`model.dtype`; softmax and
LayerNorm statistics stay float32), what autocast does. --peer also times
sentence-transformers (PyTorch) on the same texts when it is importable (pip install
torch==2.13.0 sentence-transformers), in float32 (its default) and under
torch.autocast(bfloat16) (oneDNN's bfloat16 kernels, bfloat16 activations: the peer's
counterpart of our bfloat16 rows). --peer-autocast=auto (the default) times the autocast row
only on CPUs with native bfloat16 (AMX / AVX-512 BF16): on an AVX2 CPU torch's bfloat16
products are hundreds of times slower than float32 ones, hours for this corpus.
--chunk-tokens lists the encoder's `chunk_tokens` settings to time (default: the library's
"auto"; 0 computes each batch of 64 whole), each with every precision.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

import common
import rocketqa_jax
from rocketqa_jax import matmul, tokenization
from rocketqa_jax.data import squad


def model_flops(config, lengths) -> float:
  """Forward FLOPs over real tokens: dense layers 2 x params per token, attention 4 n H per token."""
  h, i, layers = config.hidden_size, config.intermediate_size, config.num_hidden_layers
  dense = 2 * (4 * h * h + 2 * h * i)
  return float(sum(layers * n * (dense + 4 * n * h) for n in lengths))


# Precision name -> (compute dtype, products' input dtype).
PRECISIONS = {"float32": ("float32", "float32"), "bf16-products": ("float32", "bfloat16"),
              "bfloat16": ("bfloat16", "bfloat16")}


def bench_ours(texts, max_length, batch_size, bucket_size, runs, precision, chunk_tokens):
  dtype, matmul_dtype = PRECISIONS[precision]
  enc = rocketqa_jax.load_encoder("all-MiniLM-L6-v2", passage_max_length=max_length,
                                  batch_size=batch_size, bucket_size=bucket_size, dtype=dtype,
                                  matmul_dtype=matmul_dtype, chunk_tokens=chunk_tokens)
  tokens = enc.tokenizer.tokenize_passages(texts)
  lengths = [len(ids) for ids, _ in tokens]
  first, times = common.timed_runs(lambda: enc.encode_passages(texts), runs)
  order = sorted(lengths, reverse=True)
  padded = sum(enc.tokenizer.pad([(np.zeros(n), np.zeros(n)) for n in order[s:s + batch_size]],
                                 max_length).input_ids.size
               for s in range(0, len(order), batch_size))
  seconds = common.median(times)
  chunks = f"{enc.chunk_tokens}-token chunks" if enc.chunk_tokens else "whole batches"
  return {"system": f"rocketqa_jax ({precision}, {chunks})", "products": matmul_dtype,
          "max_length": max_length, "chunk_tokens": enc.chunk_tokens,
          "passages_per_s": len(texts) / seconds, "seconds": seconds,
          "first_run_seconds": first, "runs": [len(texts) / t for t in times],
          "real_tokens": sum(lengths), "padding_overhead": padded / sum(lengths) - 1,
          "gflops_per_s": model_flops(enc.model.config, lengths) / seconds / 1e9}


def bench_peer(texts, max_length, batch_size, runs, autocast: bool):
  import torch
  from sentence_transformers import SentenceTransformer
  from rocketqa_jax.hf_checkpoint import resolve_model_dir
  model = SentenceTransformer(str(resolve_model_dir("all-MiniLM-L6-v2")), device="cpu")
  model.max_seq_length = max_length

  def encode():
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
      return model.encode(texts, batch_size=batch_size, convert_to_numpy=True)

  first, times = common.timed_runs(encode, runs)
  seconds = common.median(times)
  return {"system": f"sentence-transformers (torch {torch.__version__}, "
                    f"{torch.get_num_threads()} threads"
                    f"{', autocast bfloat16' if autocast else ''})", "max_length": max_length,
          "passages_per_s": len(texts) / seconds, "seconds": seconds,
          "first_run_seconds": first, "runs": [len(texts) / t for t in times]}


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--max-lengths", default="256")
  parser.add_argument("--batch-size", type=int, default=64)
  parser.add_argument("--bucket-size", type=int, default=tokenization.BUCKET_SIZE,
                      help="batches pad to multiples of it (default: the library's)")
  parser.add_argument("--chunk-tokens", default="auto",
                      help="comma-separated encoder chunk_tokens settings ('auto', or tokens)")
  parser.add_argument("--runs", type=int, default=3)
  parser.add_argument("--precisions", default="float32,bf16-products,bfloat16")
  parser.add_argument("--peer", action="store_true")
  parser.add_argument("--peer-autocast", choices=["auto", "yes", "no"], default="auto")
  parser.add_argument("--out", default=None)
  args = parser.parse_args(argv)
  texts = squad.load_squad_mini().corpus.texts
  precisions = args.precisions.split(",")
  unknown = set(precisions) - set(PRECISIONS)
  if unknown:
    parser.error(f"--precisions: unknown {sorted(unknown)}; choose from {list(PRECISIONS)}")
  settings = [(c if c == "auto" else int(c), p)
              for c in args.chunk_tokens.split(",") for p in precisions]
  peak_dtypes = list(dict.fromkeys(PRECISIONS[p][1] for p in precisions))
  peaks_before = {dtype: common.matmul_peak_gflops(dtype) for dtype in peak_dtypes}
  autocast = {"yes": True, "no": False, "auto": matmul.has_fast_bfloat16()}[args.peer_autocast]
  if args.peer and not autocast:
    print("peer under autocast(bfloat16): not timed (this CPU has no native bfloat16; "
          "--peer-autocast=yes forces it)")
  rows = []
  for max_length in map(int, args.max_lengths.split(",")):
    ours = [bench_ours(texts, max_length, args.batch_size, args.bucket_size, args.runs, precision,
                       chunk_tokens) for chunk_tokens, precision in settings]
    rows += ours
    if args.peer:  # Speed-ups against the peer's default (float32).
      peer = bench_peer(texts, max_length, args.batch_size, args.runs, autocast=False)
      for row in ours:
        row["speedup_vs_peer"] = row["passages_per_s"] / peer["passages_per_s"]
      rows.append(peer)
      if autocast:
        peer_bf16 = bench_peer(texts, max_length, args.batch_size, args.runs, autocast=True)
        peer_bf16["speedup_vs_peer"] = peer_bf16["passages_per_s"] / peer["passages_per_s"]
        rows.append(peer_bf16)
  peaks_after = {dtype: common.matmul_peak_gflops(dtype) for dtype in peak_dtypes}
  peaks = {dtype: max(peaks_before[dtype], peaks_after[dtype]) for dtype in peak_dtypes}
  for row in rows:
    if "products" in row:
      row["fraction_of_matmul_peak"] = row["gflops_per_s"] / peaks[row["products"]]
  print(f"\n{len(texts)} SQuAD paragraphs, batch {args.batch_size}, median of {args.runs} runs; "
        "matmul peak (GFLOP/s, float32 sums): "
        + ", ".join(f"{dtype} inputs {peak:.0f}" for dtype, peak in peaks.items()))
  common.print_table(rows, ["system", "max_length", "passages_per_s", "first_run_seconds",
                            "padding_overhead", "gflops_per_s", "fraction_of_matmul_peak",
                            "speedup_vs_peer"])
  common.write_json("encode", {"machine": common.machine(), "matmul_peak_gflops": peaks,
                               "matmul_peak_gflops_before_after": [peaks_before, peaks_after],
                               "batch_size": args.batch_size, "bucket_size": args.bucket_size,
                               "passages": len(texts),
                               "command": " ".join(["python", "bench/encode.py", *sys.argv[1:]]),
                               "results": rows}, args.out)


if __name__ == "__main__":
  main()
