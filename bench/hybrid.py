"""BM25's settings and the hybrid's weight, chosen on the dev split: MRR@10 of BM25 under each
stemmer / k1 / b / titles (alone, and fused with a workdir's dense ranking at the config's
weight), then,
with the best of them, the dense ranking fused with BM25 at each weight (z-scored
interpolation) and by reciprocal-rank fusion.

  python -m rocketqa_jax.main --config=configs/squad_mini.py:dev --workdir=workdirs/dev
  python bench/hybrid.py --workdir=workdirs/dev [--model=train_de2] [--out FILE]

Reads the workdir's config (its data: the dev split) and its eval run of `--model` (top 100
with scores, eval/<model>/run.trec), and builds BM25 on its corpus; nothing is trained or
encoded. Run it on a dev workdir only: settings picked on eval questions are tuned on the test.
"""

from __future__ import annotations

import argparse
import itertools
import sys

import common

from rocketqa_jax import evaluation, fusion
from rocketqa_jax.bm25 import BM25


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--workdir", required=True)
  parser.add_argument("--model", default="train_de2")
  parser.add_argument("--stemmers", default=",english", help="'' = none")
  parser.add_argument("--k1s", default="0.9,1.2,1.5")
  parser.add_argument("--bs", default="0.4,0.75,0.9")
  parser.add_argument("--titles", default="0,1", help="passages as 'title text' (1) or not")
  parser.add_argument("--weights", default="0,0.1,0.2,0.3,0.4,0.5,0.6,0.7,0.8,0.9,1")
  parser.add_argument("--out", default=None)
  args = parser.parse_args(argv)
  workdir, config, data, questions = common.dev_workdir(args.workdir)
  texts = [q.text for q in questions]
  dense = evaluation.read_trec_run(workdir.eval_run(args.model), questions, data.corpus, 100)
  mrr = lambda rows: evaluation.ranking_metrics(rows, data.corpus, questions, ks=(20,),
                                                mrr_k=10, answer_ks=(20,))
  weight = config.eval.hybrid_weight
  settings, sparse = [], {}
  for titled, stemmer, k1, b in itertools.product(map(int, args.titles.split(",")),
                                                  args.stemmers.split(","),
                                                  map(float, args.k1s.split(",")),
                                                  map(float, args.bs.split(","))):
    index = BM25.build(data.corpus.texts, data.corpus.titles if titled else None, k1=k1, b=b,
                       stemmer=stemmer)
    ranking = sparse[titled, stemmer, k1, b] = index.search(texts, 100)
    hybrid = mrr(fusion.interpolate(dense, ranking, weight, 100)[0])["mrr@10"]
    settings.append(dict(titles=titled, stemmer=stemmer or "none", k1=k1, b=b,
                         **mrr(ranking[0]), **{f"hybrid_{weight}": hybrid}))
  print(f"\n{len(questions)} {config.data.split} questions: BM25, and {args.model} + BM25 "
        f"at weight {weight}")
  common.print_table(settings, ["titles", "stemmer", "k1", "b", "mrr@10", "recall@20",
                                f"hybrid_{weight}"])
  best_bm25 = max(settings, key=lambda r: r[f"hybrid_{weight}"])
  key = (best_bm25["titles"], "" if best_bm25["stemmer"] == "none" else best_bm25["stemmer"],
         best_bm25["k1"], best_bm25["b"])
  described = f"titles {key[0]}, stemmer {key[1] or 'none'}, k1 {key[2]}, b {key[3]}"
  print(f"best for the hybrid: {described}")
  rows = [dict(fusion=args.model, weight="", **mrr(dense[0])),
          dict(fusion="bm25", weight="", **mrr(sparse[key][0]))]
  for w in map(float, args.weights.split(",")):
    rows.append(dict(fusion="interpolate", weight=w,
                     **mrr(fusion.interpolate(dense, sparse[key], w, 100)[0])))
  rows.append(dict(fusion="rrf", weight="", **mrr(fusion.reciprocal_rank(dense[0],
                                                                         sparse[key][0], 100)[0])))
  print(f"\n{args.model} + BM25 ({described})")
  common.print_table(rows, ["fusion", "weight", "mrr@10", "recall@20", "answer@20"])
  best = max((r for r in rows if r["fusion"] == "interpolate"), key=lambda r: r["mrr@10"])
  print(f"best interpolation weight: {best['weight']} (MRR@10 {best['mrr@10']:.4f})")
  common.write_json("hybrid", {"machine": common.machine(), "workdir": str(workdir),
                               "model": args.model, "split": config.data.split,
                               "questions": len(questions), "bm25_settings": settings,
                               "best_bm25": best_bm25, "results": rows,
                               "best_weight": best["weight"],
                               "command": " ".join(["python", "bench/hybrid.py",
                                                    *sys.argv[1:]])}, args.out)


if __name__ == "__main__":
  main()
