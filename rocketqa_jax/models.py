"""From a config to models: the one place that reads config.model, config.tokenizer and
config.ce to build tokenizers, towers, encoders, the dual encoder and the cross-encoder. Every
stage, `search` and the benches build their models here.

`model.random_init` (tiny test models) applies to the configured checkpoint only: a trained
tower or cross-encoder folder is always loaded as written.
"""

from __future__ import annotations

import dataclasses

from rocketqa_jax import cross_encoder, encoder
from rocketqa_jax.artifacts import PathLike
from rocketqa_jax.bert import BertModel
from rocketqa_jax.dual_encoder import DualEncoder
from rocketqa_jax.tokenization import Tokenizer


def _precision(config) -> dict:
  m = config.model
  return dict(dtype=m.dtype, param_dtype=m.param_dtype, matmul_dtype=m.matmul_dtype,
              cpu_kernels=m.cpu_kernels, remat=m.remat)


def _random_init(config, checkpoint: PathLike | None) -> dict:
  """load_tower's random-init arguments for `checkpoint` (None: the configured one)."""
  m = config.model
  if m.random_init and checkpoint in (None, m.checkpoint):
    return dict(random_init=True, seed=config.seed, **m.arch.to_dict())
  return {}


@dataclasses.dataclass(frozen=True)
class Tower:
  """A BERT and its weights, before any tokenizer or pooling is attached."""
  model_dir: str  # A local folder with the checkpoint's config and tokenizer files.
  model: BertModel
  params: dict


def tower(config, checkpoint: PathLike | None = None) -> Tower:
  """config.model.checkpoint, or a trained tower folder (local or gs://)."""
  model_dir, model, params = encoder.load_tower(checkpoint or config.model.checkpoint,
                                                **_precision(config),
                                                **_random_init(config, checkpoint))
  return Tower(str(model_dir), model, params)


def tokenizer(config, model_dir: PathLike) -> Tokenizer:
  """Inference lengths and buckets (config.tokenizer)."""
  t = config.tokenizer
  return Tokenizer.from_pretrained(model_dir, query_max_length=t.query_max_length,
                                   passage_max_length=t.passage_max_length,
                                   bucket_size=t.bucket_size)


def load_encoder(config, checkpoint: PathLike | None = None) -> encoder.Encoder:
  """The encoder mining, eval and search embed with: config.model.checkpoint or a trained
  tower, with config.model's pooling and config.tokenizer's lengths."""
  m, t = config.model, config.tokenizer
  return encoder.load_encoder(checkpoint or m.checkpoint, pooling=m.pooling,
                              normalize=m.normalize, batch_size=config.eval.batch_size,
                              query_max_length=t.query_max_length, bucket_size=t.bucket_size,
                              passage_max_length=t.passage_max_length, **_precision(config),
                              **_random_init(config, checkpoint))


def load_encoders(config, towers: tuple[PathLike, PathLike] | None = None
                  ) -> tuple[encoder.Encoder, encoder.Encoder]:
  """(query encoder, passage encoder): a trained (query, passage) tower pair, or (None) the
  configured checkpoint as both."""
  if towers is None:
    shared = load_encoder(config)
    return shared, shared
  return load_encoder(config, towers[0]), load_encoder(config, towers[1])


def dual_encoder(config, shared_towers: bool, init_towers: tuple[PathLike, PathLike] | None = None
                 ) -> tuple[DualEncoder, dict, Tokenizer]:
  """The dual encoder to train, its initial parameters (both towers from config.model's
  checkpoint, or from a trained `init_towers` pair) and the inference tokenizer its exported
  towers carry."""
  m = config.model
  base = tower(config)
  de = DualEncoder(base.model, pooling=m.pooling, normalize=m.normalize, shared=shared_towers)
  if init_towers is None:
    params = de.init_params(base.params)
  else:
    params = de.init_params(*(tower(config, t).params for t in init_towers))
  return de, params, tokenizer(config, base.model_dir)


def cross_encoder_to_train(config) -> tuple[cross_encoder.CrossEncoder, dict, Tokenizer]:
  """M_C before training: a BERT from ce.checkpoint (default: model.checkpoint) with a fresh
  relevance head, and its pair tokenizer."""
  c = config.ce
  base = tower(config, c.checkpoint or None)
  model = cross_encoder.CrossEncoder(base.model.config, dtype=base.model.dtype,
                                     param_dtype=base.model.param_dtype,
                                     matmul_dtype=base.model.matmul_dtype,
                                     cpu_kernels=base.model.cpu_kernels, remat=config.model.remat,
                                     pooling=c.pooling)
  params = cross_encoder.init_params(model, base.params, seed=config.seed)
  return model, params, Tokenizer.from_pretrained(base.model_dir, passage_max_length=c.max_length)


def load_scorer(config, directory: PathLike) -> cross_encoder.CrossEncoderScorer:
  """A trained M_C (a folder written by save_cross_encoder) scoring at ce.max_length."""
  m = config.model
  return cross_encoder.load_cross_encoder(
      directory, max_length=config.ce.max_length, batch_size=config.eval.batch_size,
      dtype=m.dtype, matmul_dtype=m.matmul_dtype, cpu_kernels=m.cpu_kernels)
