"""Natural Questions with DPR's files and RocketQA's NQ hyperparameters: for a TPU pod slice.

  python -m rocketqa_jax.main --config=configs/nq.py:root=/data/dpr --workdir=gs://.../nq

`root` holds DPR's downloads (`python -m dpr.data.download_data --resource data.wikipedia_split
.psgs_w100`, `data.retriever.nq`, `data.retriever.qas.nq`): the 21M-passage corpus, nq-train.json
(58,880 questions with positive passage ids) and nq-test.csv (3,610 questions, answers only:
evaluated by DPR's top-k answer accuracy, RocketQA's R@5 / R@20 / R@100 = 74.0 / 82.7 / 88.5).

RocketQA's NQ settings (docs/rocketqa.md; the shared ones in configs/rocketqa_paper.py): batch
512 per GPU on 2 GPUs, 30 epochs for every dual encoder, title and text as a segment pair; M_C's
negatives: one non-positive passage from M_D^(0)'s top 100; denoising: top 100. The
cross-encoder starts from ERNIE 2.0 base here (the paper used ERNIE 2.0 large: set
ce.checkpoint to a large checkpoint). Arguments: root=DIR, unlabeled=FILE (questions for
augmentation: `id<TAB>question` lines or a DPR QA .csv; RocketQA drew them from other QA
collections).
"""

import pathlib
import runpy

_paper = runpy.run_path(str(pathlib.Path(__file__).with_name("rocketqa_paper.py")))
parse_arg = _paper["parse_arg"]


def get_config(arg=None):
  arg = parse_arg(arg, root="data/dpr", unlabeled="")
  config = _paper["get_config"]()
  root = arg.root.rstrip("/")
  d = config.data
  d.name, d.use_titles = "dpr", True
  d.corpus = f"{root}/downloads/data/wikipedia_split/psgs_w100.tsv"
  d.train = f"{root}/downloads/data/retriever/nq-train.json"
  d.eval = f"{root}/downloads/data/retriever/qas/nq-test.csv"
  d.unlabeled = arg.unlabeled

  t = config.train
  t.epochs, t.de0_epochs = 30.0, 30.0
  t.global_batch = 1024  # 512 per GPU x 2 GPUs; any multiple of the device count works.

  config.mine.top_k = 100
  c = config.ce
  c.negatives, c.sample_from_top = 1, 100
  config.denoise.top_k = 100

  e = config.eval
  e.ks, e.answer_ks = (1, 5, 20, 100), (5, 20, 100)
  return config
