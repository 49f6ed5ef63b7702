"""What RocketQA's NQ and MS MARCO setups share, as the paper and the authors' scripts set it
(docs/rocketqa.md has each number with its source; tests/test_paper_configs.py checks these
configs against that table). configs/nq.py and configs/msmarco.py add their files and what
differs between the two. Built on squad_mini.py's fields, with every setting that SQuAD-mini's
demo tuned set back to RocketQA's own.
"""

import pathlib
import runpy

_squad_mini = runpy.run_path(str(pathlib.Path(__file__).with_name("squad_mini.py")))
parse_arg = _squad_mini["parse_arg"]


def get_config(arg=None):
  config = _squad_mini["get_config"](arg)
  m = config.model
  m.checkpoint = "nghuyong/ernie-2.0-base-en"  # ERNIE 2.0 base, a BERT-layout hub copy.
  m.pooling, m.normalize = "cls", False  # [CLS], plain dot product.
  m.dtype, m.remat = "bfloat16", True  # Mixed precision and recomputation.
  t = config.tokenizer
  t.query_max_length, t.passage_max_length = 32, 128
  t.bucket_size = 128  # One compiled shape per length: what TPUs want.

  t = config.train
  t.shared_towers = False  # A query tower and a passage tower.
  t.query_max_length, t.passage_max_length = 32, 128
  t.hard_negatives = 1  # Each device holds [B positives; B negatives] for its B queries.
  t.de0_random_negatives = 1
  t.score_scale = 1.0  # Plain dot product of unnormalized [CLS] vectors.
  t.learning_rate, t.warmup_fraction, t.weight_decay = 3e-5, 0.1, 0.0
  t.dropout = True  # ERNIE's own dropout (BERT's 0.1).
  t.de2_init, t.de2_epochs = "", 0.0  # Step 4 as step 3: from ERNIE, for train.epochs.
  t.checkpoint_every, t.log_every = 1000, 100

  c = config.ce
  c.loss, c.pooling = "pointwise", "cls"  # A binary relevance classifier on [CLS].
  c.epochs, c.max_length = 2.0, 160
  c.learning_rate, c.head_learning_rate = 1e-5, 0.0  # One rate for body and head.
  c.global_batch = 512  # 64 per GPU; 8 GPUs assumed (the paper gives the per-GPU batch).
  c.dropout = True
  c.checkpoint_every, c.log_every = 1000, 100

  config.denoise.negative_threshold = 0.1
  a = config.augment
  a.top_k, a.max_questions = 50, 0
  a.positive_threshold, a.negative_threshold = 0.9, 0.1

  e = config.eval
  e.batch_size, e.shard_size = 1024, 1_000_000
  # The paper's rows: its dual encoders. BM25 and the hybrid are one process's work
  # (bm25.for_corpus indexes the whole corpus on process 0), not yet measured at 21M passages
  # or 8.8M: opt in with eval.retrievers="dense,bm25,hybrid" (and eval.rerank="hybrid").
  e.retrievers, e.rerank = "dense", ""
  return config
