"""The hybrid's BM25 weight, chosen on the dev split: MRR@10 of a workdir's dense ranking fused
with BM25 at each weight (z-scored interpolation) and by reciprocal-rank fusion.

  python -m rocketqa_jax.main --config=configs/squad_mini.py:dev --workdir=workdirs/dev
  python bench/hybrid_weight.py --workdir=workdirs/dev [--model=train_de2] [--out FILE]

Reads the workdir's config (its data: the dev split), its eval run of `--model` (top 100 with
scores, eval/<model>/run.trec) and builds BM25 on its corpus; nothing is trained or encoded.
Run it on a dev workdir only: a weight picked on eval questions would be tuned on the test.
"""

from __future__ import annotations

import argparse
import sys

import common
import ml_collections
import numpy as np

from rocketqa_jax import artifacts, evaluation, fusion
from rocketqa_jax.bm25 import BM25
from rocketqa_jax.data.datasets import load_data
from rocketqa_jax.workdir import Workdir


def read_run(path, questions, corpus, k: int) -> tuple[np.ndarray, np.ndarray]:
  """A TREC run as (rows, scores) [questions, k] in `questions`' order."""
  by_question: dict[str, list[tuple[int, float]]] = {}
  for line in artifacts.path(path).read_text().splitlines():
    qid, _, pid, _, score, _ = line.split()
    by_question.setdefault(qid, []).append((corpus.index[pid], float(score)))
  rows = np.full((len(questions), k), -1, np.int64)
  scores = np.full((len(questions), k), -np.inf, np.float32)
  for i, q in enumerate(questions):
    ranked = by_question.get(q.id, [])[:k]
    rows[i, :len(ranked)] = [r for r, _ in ranked]
    scores[i, :len(ranked)] = [s for _, s in ranked]
  return rows, scores


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--workdir", required=True)
  parser.add_argument("--model", default="train_de2")
  parser.add_argument("--weights", default="0,0.1,0.2,0.3,0.4,0.5,0.6,0.7,0.8,0.9,1")
  parser.add_argument("--out", default=None)
  args = parser.parse_args(argv)
  workdir = Workdir(args.workdir)
  config = ml_collections.ConfigDict(artifacts.read_json(workdir.config))
  if config.data.name == "squad_mini" and config.data.split != "dev":
    sys.exit(f"{workdir}: data.split={config.data.split!r}; tune on a dev workdir "
             "(configs/squad_mini.py:dev), never on the eval questions")
  data = load_data(config.data)
  e = config.eval
  questions = data.eval[:e.max_questions] if e.max_questions else data.eval
  dense = read_run(workdir.eval_run(args.model), questions, data.corpus, 100)
  sparse = BM25.build(data.corpus.texts, data.corpus.titles if config.data.use_titles
                      else None).search([q.text for q in questions], 100)
  mrr = lambda rows: evaluation.ranking_metrics(rows, data.corpus, questions, ks=(20,),
                                                mrr_k=10, answer_ks=(20,))
  rows = [dict(fusion=args.model, weight="", **mrr(dense[0])),
          dict(fusion="bm25", weight="", **mrr(sparse[0]))]
  for weight in map(float, args.weights.split(",")):
    rows.append(dict(fusion="interpolate", weight=weight,
                     **mrr(fusion.interpolate(dense, sparse, weight, 100)[0])))
  rows.append(dict(fusion="rrf", weight="", **mrr(fusion.reciprocal_rank(dense[0], sparse[0],
                                                                         100)[0])))
  print(f"\n{len(questions)} {config.data.split} questions, {args.model} + BM25")
  common.print_table(rows, ["fusion", "weight", "mrr@10", "recall@20", "answer@20"])
  best = max((r for r in rows if r["fusion"] == "interpolate"), key=lambda r: r["mrr@10"])
  print(f"best interpolation weight: {best['weight']} (MRR@10 {best['mrr@10']:.4f})")
  common.write_json("hybrid_weight", {"machine": common.machine(), "workdir": str(workdir),
                                      "model": args.model, "split": config.data.split,
                                      "questions": len(questions), "results": rows,
                                      "best_weight": best["weight"],
                                      "command": " ".join(["python", "bench/hybrid_weight.py",
                                                           *sys.argv[1:]])}, args.out)


if __name__ == "__main__":
  main()
