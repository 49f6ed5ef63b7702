"""Natural Questions with DPR's files and RocketQA's NQ hyperparameters: for a TPU pod slice.

  python -m rocketqa_jax.main --config=configs/nq.py:root=/data/dpr --workdir=gs://.../nq

`root` holds DPR's downloads (`python -m dpr.data.download_data --resource data.wikipedia_split
.psgs_w100`, `data.retriever.nq`, `data.retriever.qas.nq`): the 21M-passage corpus, nq-train.json
(58,880 questions with positive passage ids) and nq-test.csv (3,610 questions, answers only:
evaluated by DPR's top-k answer accuracy, RocketQA's R@5 / R@20 / R@100 = 74.0 / 82.7 / 88.5).

RocketQA (Qu et al. 2021; ../shared/docs/rocketqa_recipe.md): ERNIE 2.0 base dual encoder,
[CLS] pooling, dot product, title + text as a segment pair, query/passage lengths 32/128, lr 3e-5,
10% warmup, 512 queries per GPU on 2 GPUs, 30 epochs; M_C negatives: one non-answer passage from
M_D^(0)'s top 100; denoising: top 100, negatives below 0.1, one per question; augmentation: top 50
of M_D^(1), pseudo-positive above 0.9, one negative below 0.1. The cross-encoder here starts from
ERNIE 2.0 base too (the paper used ERNIE 2.0 large: set ce.checkpoint to a large checkpoint).
Arguments: root=DIR, unlabeled=FILE (questions for augmentation: `id<TAB>question` lines or a
DPR QA .csv; RocketQA drew them from other QA collections).
"""

import pathlib
import runpy

_squad_mini = runpy.run_path(str(pathlib.Path(__file__).with_name("squad_mini.py")))
parse_arg = _squad_mini["parse_arg"]


def get_config(arg=None):
  arg = parse_arg(arg, root="data/dpr", unlabeled="")
  config = _squad_mini["get_config"]()
  root = arg.root.rstrip("/")
  d = config.data
  d.name, d.use_titles = "dpr", True
  d.corpus = f"{root}/downloads/data/wikipedia_split/psgs_w100.tsv"
  d.train = f"{root}/downloads/data/retriever/nq-train.json"
  d.eval = f"{root}/downloads/data/retriever/qas/nq-test.csv"
  d.unlabeled = arg.unlabeled

  m = config.model
  m.checkpoint = "nghuyong/ernie-2.0-base-en"  # Hugging Face hub id (BERT layout).
  m.pooling, m.normalize = "cls", False
  m.dtype, m.remat = "bfloat16", True  # RocketQA: mixed precision and recomputation.
  config.tokenizer.passage_max_length = 128
  config.tokenizer.bucket_size = 128  # One compiled shape per length: what TPUs want.

  t = config.train
  t.epochs, t.de0_epochs = 30.0, 30.0
  t.global_batch = 1024  # 512 per GPU x 2 GPUs; any multiple of the device count works.
  t.de0_random_negatives = 1  # RocketQA's batches are [B positives; B negatives] per device.
  t.dropout = True
  t.score_scale = 1.0  # Plain dot product of unnormalized [CLS] vectors.
  t.learning_rate = 3e-5
  t.checkpoint_every, t.log_every = 1000, 100

  config.mine.top_k = 100
  c = config.ce
  c.epochs, c.global_batch, c.negatives, c.sample_from_top = 2.0, 512, 1, 100
  c.max_length, c.learning_rate, c.dropout = 160, 1e-5, True
  c.checkpoint_every, c.log_every = 1000, 100
  config.denoise.top_k = 100
  config.augment.top_k, config.augment.max_questions = 50, 0

  e = config.eval
  e.batch_size, e.shard_size = 1024, 1_000_000
  e.ks, e.answer_ks = (1, 5, 20, 100), (5, 20, 100)
  return config
