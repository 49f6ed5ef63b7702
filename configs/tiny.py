"""A tiny random-init BERT (2 layers, hidden 64) on SQuAD-mini: every code path, in seconds.

For tests and smoke runs; its metrics are those of an untrained model. The tokenizer (and
vocabulary) is the packaged all-MiniLM-L6-v2's.
"""

import pathlib
import runpy

# Loaded by path, so the config works from any working directory.
_squad_mini = runpy.run_path(str(pathlib.Path(__file__).with_name("squad_mini.py")))


def get_config(arg=None):
  config = _squad_mini["get_config"](arg)
  config.model.random_init = True
  config.model.arch.num_hidden_layers = 2
  config.model.arch.hidden_size = 64
  config.model.arch.num_attention_heads = 2
  config.model.arch.intermediate_size = 128
  config.tokenizer.passage_max_length = 64
  config.tokenizer.query_max_length = 16
  config.eval.max_questions = 128
  config.train.passage_max_length = 64
  config.train.query_max_length = 16
  config.train.steps = 6
  config.train.global_batch = 8
  config.train.checkpoint_every = 2
  config.train.log_every = 1
  config.train.learning_rate = 1e-3
  config.train.dropout = True  # Covers the dropout RNG path (replayed exactly on resume).
  config.ce.steps = 3
  config.ce.global_batch = 8
  config.ce.max_length = 64
  config.ce.checkpoint_every = 2
  config.ce.log_every = 1
  config.ce.learning_rate = 1e-3
  config.mine.top_k = 10
  config.denoise.top_k = 5
  config.augment.top_k = 5
  config.augment.max_questions = 64
  return config
