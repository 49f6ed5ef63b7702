"""Rerank depth, margin and weight, chosen on the dev split: MRR@10 of one of a workdir's eval
rows (its hybrid, by default) with its head reordered by M_C (reranking.py), and M_C's cost.

  python -m rocketqa_jax.main --config=configs/squad_mini.py:dev --workdir=workdirs/dev
  python bench/rerank.py --workdir=workdirs/dev [--first=hybrid|train_de2|bm25|...] [--out F]

Reads the workdir's config (its data: the dev split), the row's eval run (top 100 with scores,
eval/<row>/run.trec) and the cross-encoder (train_ce); scores each question's top max(depths)
within the widest margin with M_C once (the cost is measured there). Run it on a dev workdir
only.
"""

from __future__ import annotations

import argparse
import sys
import time

import common

from rocketqa_jax import evaluation, models, reranking


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--workdir", required=True)
  parser.add_argument("--first", default="hybrid", help="an eval row: the ranking to rerank")
  parser.add_argument("--depths", default="3,5,10,20")
  parser.add_argument("--margins", default="0,1.5,2,2.5,3",
                      help="eval.rerank_margin values (0: the whole top depth)")
  parser.add_argument("--weights", default="0.2,0.25,0.3,0.35,0.4,0.5,1")
  parser.add_argument("--max_length", type=int, default=0,
                      help="M_C's pair length here; 0: the workdir config's ce.max_length")
  parser.add_argument("--out", default=None)
  args = parser.parse_args(argv)
  workdir, config, data, questions = common.dev_workdir(args.workdir)
  texts = [q.text for q in questions]
  first = evaluation.read_trec_run(workdir.eval_run(args.first), questions, data.corpus, 100)
  depths = sorted(map(int, args.depths.split(",")))
  margins = [float(m) for m in args.margins.split(",")]
  widest = 0.0 if 0.0 in margins else max(margins)  # Every head below is a subset of its head.
  if args.max_length:
    config.ce.max_length = args.max_length
  scorer = models.load_scorer(config, workdir.cross_encoder)
  scorer.score(texts[:2], data.corpus.texts[:2], probabilities=False)  # Compiles.
  started = time.perf_counter()
  deepest = reranking.head(*first, depths[-1], widest)
  logits, = reranking.score_top(scorer, texts, data.corpus, [deepest],
                                use_titles=config.data.use_titles, progress=True)
  pairs_per_s = (deepest >= 0).sum() / (time.perf_counter() - started)
  mrr = lambda rows: evaluation.ranking_metrics(rows, data.corpus, questions, ks=(1, 20),
                                                mrr_k=10, answer_ks=(1,))
  rows = [dict(depth=0, margin="", weight="", pairs_per_question=0.0,
               seconds_per_question=0.0, **mrr(first[0]))]
  for depth in depths:
    for margin in margins:
      head = reranking.head(*first, depth, margin)  # Inside `deepest`: its logits serve.
      pairs = float((head >= 0).sum(1).mean())
      for weight in map(float, args.weights.split(",")):
        reranked, _ = reranking.rerank(*first, head, logits[:, :depth], weight)
        rows.append(dict(depth=depth, margin=margin, weight=weight, pairs_per_question=pairs,
                         seconds_per_question=pairs / pairs_per_s, **mrr(reranked)))
  print(f"\n{len(questions)} {config.data.split} questions, {args.first} reranked by M_C at "
        f"{pairs_per_s:.1f} pairs/s")
  common.print_table(rows, ["depth", "margin", "weight", "pairs_per_question",
                            "seconds_per_question", "mrr@10", "recall@1", "answer@1"])
  best = max(rows[1:], key=lambda r: r["mrr@10"])
  print(f"best: depth {best['depth']}, margin {best['margin']}, weight {best['weight']} "
        f"(MRR@10 {best['mrr@10']:.4f}, {best['pairs_per_question']:.2f} pairs a question)")
  common.write_json("rerank", {"machine": common.machine(), "workdir": str(workdir),
                               "first": args.first, "split": config.data.split,
                               "max_length": config.ce.max_length,
                               "questions": len(questions), "pairs_per_s": pairs_per_s,
                               "results": rows, "best": best,
                               "command": " ".join(["python", "bench/rerank.py",
                                                    *sys.argv[1:]])}, args.out)


if __name__ == "__main__":
  main()
