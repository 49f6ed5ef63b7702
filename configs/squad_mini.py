"""SQuAD-mini, the default demo (README's `make demo`).

Corpus: the 2,067 SQuAD v1.1 dev paragraphs; eval: 2,777 questions of 12 held-out articles.
Model: all-MiniLM-L6-v2 (packaged, offline) with its sentence-transformers settings: mean pooling,
L2-normalized, passages of at most 256 tokens, text without title.
Stages so far: `eval` (zero-shot retrieval). Later issues add the RocketQA training stages.

Arguments: `configs/squad_mini.py:quick` evaluates the first 300 questions only.
"""

import ml_collections

from rocketqa_jax.config_lib import parse_arg


def get_config(arg=None):
  arg = parse_arg(arg, quick=False)
  config = ml_collections.ConfigDict()
  config.stages = "eval"  # Comma-separated, run in order.
  config.seed = 0

  config.data = ml_collections.ConfigDict()
  config.data.name = "squad_mini"
  config.data.path = ""  # "" = $ROCKETQA_SQUAD_DIR, then ../shared/data/squad_v1.1_dev.
  config.data.use_titles = False  # True: passages are (title, text) segment pairs, as RocketQA.

  config.model = ml_collections.ConfigDict()
  config.model.checkpoint = "all-MiniLM-L6-v2"  # Directory, packaged name, or hub id.
  config.model.random_init = False
  config.model.arch = ml_collections.ConfigDict()  # Overrides of the checkpoint's config.json.
  config.model.pooling = "mean"  # cls | mean
  config.model.normalize = True
  config.model.dtype = "float32"  # Compute dtype: float32 | bfloat16.
  config.model.param_dtype = "float32"
  config.model.remat = False

  config.tokenizer = ml_collections.ConfigDict()
  config.tokenizer.query_max_length = 32
  config.tokenizer.passage_max_length = 256
  config.tokenizer.bucket_size = 32  # Batches pad to a multiple of this: few compiled shapes.

  config.eval = ml_collections.ConfigDict()
  config.eval.batch_size = 64
  config.eval.ks = (1, 5, 20, 100)  # Recall@k.
  config.eval.mrr_k = 10
  config.eval.max_questions = 300 if arg.quick else 0  # 0 = all.
  return config
