"""What RocketQA's NQ and MS MARCO setups share (Qu et al. 2021; ../shared/docs/rocketqa_recipe.md),
on top of squad_mini.py's fields: ERNIE 2.0 base towers, [CLS] pooling, plain dot product,
lengths 32/128, lr 3e-5 with 10% warmup, dropout, bfloat16 + recomputation; the cross-encoder
at 160 tokens, lr 1e-5, 2 epochs, 512 questions per step; augmentation from the top 50.
configs/nq.py and configs/msmarco.py add their files and what differs between the two.
"""

import pathlib
import runpy

_squad_mini = runpy.run_path(str(pathlib.Path(__file__).with_name("squad_mini.py")))
parse_arg = _squad_mini["parse_arg"]


def get_config(arg=None):
  config = _squad_mini["get_config"](arg)
  m = config.model
  m.checkpoint = "nghuyong/ernie-2.0-base-en"  # Hugging Face hub id (BERT layout).
  m.pooling, m.normalize = "cls", False
  m.dtype, m.remat = "bfloat16", True  # RocketQA: mixed precision and recomputation.
  config.tokenizer.passage_max_length = 128
  config.tokenizer.bucket_size = 128  # One compiled shape per length: what TPUs want.

  t = config.train
  t.query_max_length, t.passage_max_length = 32, 128  # RocketQA's.
  t.de0_random_negatives = 1  # RocketQA's batches are [B positives; B negatives] per device.
  t.dropout = True
  t.score_scale = 1.0  # Plain dot product of unnormalized [CLS] vectors.
  t.learning_rate = 3e-5
  t.checkpoint_every, t.log_every = 1000, 100

  c = config.ce
  c.epochs, c.global_batch = 2.0, 512
  c.max_length, c.learning_rate, c.dropout = 160, 1e-5, True
  c.checkpoint_every, c.log_every = 1000, 100
  config.augment.top_k, config.augment.max_questions = 50, 0

  e = config.eval
  e.batch_size, e.shard_size = 1024, 1_000_000
  return config
