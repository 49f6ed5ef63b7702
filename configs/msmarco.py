"""MS MARCO passage ranking with RocketQA's MS MARCO hyperparameters: for a TPU pod slice.

  python -m rocketqa_jax.main --config=configs/msmarco.py:root=/data/msmarco --workdir=...

`root` holds the official files: collection.tsv (8.8M passages), queries.train.tsv +
qrels.train.tsv (502,939 labeled questions), queries.dev.small.tsv + qrels.dev.small.tsv (6,980
questions; MRR@10, RocketQA 37.0 after all steps; ablation 33.32 -> 36.38 -> 37.02).

RocketQA's MS MARCO settings (docs/rocketqa.md; the shared ones in configs/rocketqa_paper.py):
batch 512 per GPU on 8 GPUs, 40 epochs for M_D^(0) and 10 for M_D^(1) and M_D^(2), passages
without titles; M_C's negatives: 4 at random from M_D^(0)'s top 1000; denoising: top 50.
Arguments: root=DIR, unlabeled=FILE (`qid<TAB>question` lines; RocketQA used 1.5M questions
from Yahoo! Answers, ORCAS and MS MARCO's unlabeled queries).
"""

import pathlib
import runpy

_paper = runpy.run_path(str(pathlib.Path(__file__).with_name("rocketqa_paper.py")))
parse_arg = _paper["parse_arg"]


def get_config(arg=None):
  arg = parse_arg(arg, root="data/msmarco", unlabeled="")
  config = _paper["get_config"]()
  root = arg.root.rstrip("/")
  d = config.data
  d.name, d.use_titles = "msmarco", False  # MS MARCO passages have no titles.
  d.corpus = f"{root}/collection.tsv"
  d.train, d.train_qrels = f"{root}/queries.train.tsv", f"{root}/qrels.train.tsv"
  d.eval, d.eval_qrels = f"{root}/queries.dev.small.tsv", f"{root}/qrels.dev.small.tsv"
  d.unlabeled = arg.unlabeled

  t = config.train
  t.epochs, t.de0_epochs = 10.0, 40.0
  t.global_batch = 4096  # 512 per GPU x 8 GPUs; any multiple of the device count works.
  t.hard_negatives = 1

  config.mine.top_k = 1000
  c = config.ce
  c.negatives, c.sample_from_top = 4, 1000
  config.denoise.top_k = 50

  e = config.eval
  e.ks, e.mrr_k = (1, 50, 1000), 10
  return config
