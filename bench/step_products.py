"""The matrix products of one dual-encoder training step, each timed alone: the step's floor.

  python bench/step_products.py [--queries 32] [--passages 64] [--lengths 32,128] [--runs 5]

bench/train.py's step (32 queries x (1 positive + 1 hard negative), lengths 32/128, the packaged
all-MiniLM-L6-v2's shapes: 6 layers, hidden 384, 12 heads of 32, feed-forward 1536), broken into
its float32 products: per layer and tower, the forward's six dense products, the backward's
input gradients (x @ W^T) and weight gradients (x^T @ dy), and attention's two batched products
forward and four backward. Each runs alone in its own jitted call (median of --runs after a
compiling call), so the sum is what the step would take if everything else (LayerNorm, GELU,
softmax, dropout, transposes, the optimizer) were free, at the rates XLA reaches on this
machine for these shapes. Compare it with bench/train.py's step time (ours and the peer's).
"""

from __future__ import annotations

import argparse
import sys

import common


def products(batch: int, length: int, hidden=384, ffn=1536, heads=12) -> list:
  """(name, count, lhs shape, rhs shape, dimension numbers) of one layer of one tower, forward
  and backward; count is how many such products a layer has."""
  rows, d = batch * length, hidden // heads
  nn_, nt, tn = (((1,), (0,)), ((), ())), (((1,), (1,)), ((), ())), (((0,), (0,)), ((), ()))
  bnt = (((3,), (3,)), ((0, 1), (0, 1)))  # [b,h,q,d] x [b,h,k,d] -> [b,h,q,k]
  bnn = (((3,), (2,)), ((0, 1), (0, 1)))  # [b,h,q,k] x [b,h,k,d] -> [b,h,q,d]
  btn = (((2,), (2,)), ((0, 1), (0, 1)))  # [b,h,q,k] x [b,h,q,d] -> [b,h,k,d]
  qd, qk = (batch, heads, length, d), (batch, heads, length, length)
  return [
      ("forward Q, K, V, output", 4, (rows, hidden), (hidden, hidden), nn_),
      ("forward FFN in", 1, (rows, hidden), (hidden, ffn), nn_),
      ("forward FFN out", 1, (rows, ffn), (ffn, hidden), nn_),
      ("dx Q, K, V, output", 4, (rows, hidden), (hidden, hidden), nt),
      ("dx FFN in", 1, (rows, ffn), (hidden, ffn), nt),
      ("dx FFN out", 1, (rows, hidden), (ffn, hidden), nt),
      ("dW Q, K, V, output", 4, (rows, hidden), (rows, hidden), tn),
      ("dW FFN in", 1, (rows, hidden), (rows, ffn), tn),
      ("dW FFN out", 1, (rows, ffn), (rows, hidden), tn),
      ("attention scores, dP (q k^T)", 2, qd, qd, bnt),
      ("attention P v, dq (dS k)", 2, qk, qd, bnn),
      ("attention dv, dk (P^T do)", 2, qk, qd, btn),
  ]


def time_product(lhs, rhs, dims, runs: int) -> tuple[float, float]:
  """(median seconds, FLOPs) of one float32 dot_general alone."""
  import jax
  import jax.numpy as jnp
  import numpy as np
  rng = np.random.default_rng(0)
  a, b = (jnp.asarray(rng.standard_normal(s), jnp.float32) for s in (lhs, rhs))
  f = jax.jit(lambda a, b: jax.lax.dot_general(a, b, dims))
  out = jax.eval_shape(f, a, b).shape
  contracted = np.prod([lhs[i] for i in dims[0][0]])
  _, times = common.timed_runs(lambda: f(a, b).block_until_ready(), runs)
  return common.median(times), 2.0 * np.prod(out) * contracted


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--queries", type=int, default=32)
  parser.add_argument("--passages", type=int, default=64, help="positives + hard negatives")
  parser.add_argument("--lengths", default="32,128", help="query, passage")
  parser.add_argument("--layers", type=int, default=6)
  parser.add_argument("--runs", type=int, default=5)
  parser.add_argument("--out", default=None)
  args = parser.parse_args(argv)
  query_length, passage_length = map(int, args.lengths.split(","))
  rows, total_s, total_flops = [], 0.0, 0.0
  for tower, batch, length in (("query", args.queries, query_length),
                               ("passage", args.passages, passage_length)):
    for name, count, lhs, rhs, dims in products(batch, length):
      seconds, flops = time_product(lhs, rhs, dims, args.runs)
      n = count * args.layers
      rows.append({"tower": tower, "product": name, "lhs": "x".join(map(str, lhs)),
                   "rhs": "x".join(map(str, rhs)), "per_step": n,
                   "ms_each": seconds * 1e3, "gflops_per_s": flops / seconds / 1e9,
                   "step_seconds": n * seconds})
      total_s, total_flops = total_s + n * seconds, total_flops + n * flops
      print(f"{tower} {name}: {seconds * 1e3:.1f} ms x {n}", file=sys.stderr, flush=True)
  peak = common.matmul_peak_gflops("float32")
  common.print_table(rows, ["tower", "product", "lhs", "rhs", "per_step", "ms_each",
                            "gflops_per_s", "step_seconds"])
  print(f"\nproducts alone: {total_s:.2f} s a step ({total_flops / 1e9:.0f} GFLOP, "
        f"{total_flops / total_s / 1e9:.0f} GFLOP/s; one 2048^3 jnp.dot: {peak:.0f}); at most "
        f"{args.queries / total_s:.2f} queries/s if nothing else took time")
  common.write_json("step_products", {
      "machine": common.machine(), "args": vars(args), "rows": rows,
      "products_seconds": total_s, "products_gflop": total_flops / 1e9,
      "matmul_peak_gflops": peak, "queries_per_s_bound": args.queries / total_s}, args.out)


if __name__ == "__main__":
  main()
