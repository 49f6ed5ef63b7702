"""Is a change on the dev split more than noise? Two workdirs' eval rows compared question by
question: MRR@10 of each, the mean paired difference with its standard error, and how many
questions got better or worse.

  python bench/paired.py --before=workdirs/dev --after=workdirs/dev_variant [--rows=a,b] [--out F]

Both workdirs must be on the same dev split (the same questions); each row's ranking is read
from eval/<row>/run.trec. A difference within about two standard errors is not evidence.
"""

from __future__ import annotations

import argparse
import sys

import common
import numpy as np

from rocketqa_jax import evaluation, metrics


def reciprocal_ranks(workdir, data, questions, row: str, k: int = 10) -> np.ndarray:
  """[questions] 1 / rank of the first labeled passage within the row's top k, else 0."""
  rows, _ = evaluation.read_trec_run(workdir.eval_run(row), questions, data.corpus, k)
  ranked = [data.corpus.ids[r[r >= 0]] for r in rows]
  return metrics.reciprocal_ranks(ranked, [set(q.positive_ids) for q in questions], k)


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--before", required=True, help="the reference workdir")
  parser.add_argument("--after", required=True, help="the changed workdir")
  parser.add_argument("--rows", default="train_de2,hybrid,hybrid_reranked")
  parser.add_argument("--out", default=None)
  args = parser.parse_args(argv)
  before, _, data, questions = common.dev_workdir(args.before)
  after, _, data_after, questions_after = common.dev_workdir(args.after)
  if [q.id for q in questions] != [q.id for q in questions_after]:
    sys.exit(f"{args.before} and {args.after} evaluate different questions")
  results = []
  for row in args.rows.split(","):
    a = reciprocal_ranks(before, data, questions, row)
    b = reciprocal_ranks(after, data_after, questions_after, row)
    d = b - a
    results.append(dict(row=row, before=a.mean(), after=b.mean(), difference=d.mean(),
                        standard_error=d.std(ddof=1) / np.sqrt(len(d)),
                        better=int((d > 0).sum()), worse=int((d < 0).sum())))
  print(f"\nMRR@10 on {len(questions)} questions, {args.before} -> {args.after}")
  common.print_table(results, ["row", "before", "after", "difference", "standard_error",
                               "better", "worse"])
  common.write_json("paired", {"machine": common.machine(), "before": args.before,
                               "after": args.after, "questions": len(questions),
                               "results": results,
                               "command": " ".join(["python", "bench/paired.py", *sys.argv[1:]])},
                    args.out)


if __name__ == "__main__":
  main()
