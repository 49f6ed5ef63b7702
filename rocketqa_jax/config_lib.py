"""Config helpers: big_vision-style `get_config(arg)` arguments, validation, clear flag errors."""

from __future__ import annotations

import os
import runpy
import sys

import ml_collections
from absl import flags

from rocketqa_jax import cpu_kernels, evaluation, fusion
from rocketqa_jax.cross_encoder import LOSSES
from rocketqa_jax.data import datasets, squad
from rocketqa_jax.encoder import DTYPES
from rocketqa_jax.errors import EXIT_CODE, ConfigError
from rocketqa_jax.losses import NEGATIVE_MODES
from rocketqa_jax.pooling import POOLING_MODES
from rocketqa_jax.retrieval import INDEXES, SCANN_MISSING, scann_available
from rocketqa_jax.stages import NAMES as STAGES  # RocketQA's steps, in order (stages.STAGES).


def parse_arg(arg: str | None, **defaults) -> ml_collections.ConfigDict:
  """"a=1,quick" -> {a: 1, quick: True}; values take the type of their default."""
  out = ml_collections.ConfigDict(defaults)
  for item in filter(None, (arg or "").split(",")):
    key, _, value = item.partition("=")
    if key not in defaults:
      raise ValueError(f"config argument {key!r} unknown; expected one of {sorted(defaults)}")
    kind = type(defaults[key])
    if kind is bool:
      out[key] = value.lower() in ("", "1", "true", "yes")
    else:
      out[key] = kind(value)
  return out


def validate(config) -> None:
  """Raises ConfigError naming the config field and the allowed values."""
  def check(name, value, allowed):
    if value not in allowed:
      raise ConfigError(f"config.{name}={value!r}: expected one of {list(allowed)}")
  for stage in filter(None, (s.strip() for s in config.stages.split(","))):
    check("stages", stage, STAGES)
  if config.rerun:
    check("rerun", config.rerun, STAGES)
  check("model.pooling", config.model.pooling, POOLING_MODES)
  check("model.dtype", config.model.dtype, DTYPES)
  check("model.param_dtype", config.model.param_dtype, DTYPES)
  check("model.matmul_dtype", config.model.matmul_dtype, (*DTYPES, "auto"))
  check("model.cpu_kernels", config.model.cpu_kernels, cpu_kernels.SETTINGS)
  check("train.negatives", config.train.negatives, NEGATIVE_MODES)
  check("ce.loss", config.ce.loss, LOSSES)
  check("ce.pooling", config.ce.pooling, POOLING_MODES)
  check("train.init", config.train.init, ("checkpoint", "previous"))
  check("train.de2_init", config.train.de2_init, ("", "checkpoint", "previous"))
  check("eval.index", config.eval.index, INDEXES)
  for retriever in evaluation.retriever_names(config.eval.retrievers):
    check("eval.retrievers", retriever, evaluation.RETRIEVERS)
  check("eval.hybrid_fusion", config.eval.hybrid_fusion, fusion.FUSIONS)
  sources = evaluation.retriever_names(config.mine.sources)
  if sources not in (["dense"], ["dense", "bm25"]):
    raise ConfigError(f"config.mine.sources={config.mine.sources!r}: expected 'dense' or "
                      "'dense,bm25'")
  for retriever in evaluation.retriever_names(config.eval.rerank):
    if retriever not in evaluation.retriever_names(config.eval.retrievers):
      raise ConfigError(f"config.eval.rerank={config.eval.rerank!r}: {retriever!r} is not in "
                        f"config.eval.retrievers={config.eval.retrievers!r}")
  for name in ("eval.hybrid_weight", "eval.rerank_weight", "bm25.b"):
    section, field = name.split(".")
    if not 0 <= config[section][field] <= 1:
      raise ConfigError(f"config.{name}={config[section][field]}: must be in [0, 1]")
  if config.bm25.stemmer:
    import Stemmer
    check("bm25.stemmer", config.bm25.stemmer, ("", *Stemmer.algorithms()))
  check("mine.index", config.mine.index, INDEXES)
  for name in ("mine.index", "eval.index"):
    if config[name.split(".")[0]].index == "scann" and not scann_available():
      raise ConfigError(f"config.{name}: {SCANN_MISSING}")
  positive = {
      "tokenizer": ("query_max_length", "passage_max_length", "bucket_size"),
      "train": ("global_batch", "checkpoint_every", "keep_checkpoints", "log_every"),
      "mine": ("top_k",),
      "ce": ("global_batch", "negatives", "max_length", "sample_from_top", "score_chunk",
             "checkpoint_every", "keep_checkpoints", "log_every"),
      "denoise": ("top_k",),
      "augment": ("top_k",),
      "eval": ("batch_size", "mrr_k", "shard_size"),
  }
  for section, names in positive.items():
    for name in names:
      if config[section][name] < 1:
        raise ConfigError(f"config.{section}.{name}={config[section][name]}: must be positive")
  if config.seed < 0:
    raise ConfigError(f"config.seed={config.seed}: must be >= 0")
  for section in ("train", "ce"):
    if not 0 <= config[section].warmup_fraction <= 1:
      raise ConfigError(f"config.{section}.warmup_fraction={config[section].warmup_fraction}: "
                        "must be in [0, 1]")
  if config.mesh.data == 0 or config.mesh.data < -1:
    raise ConfigError(f"config.mesh.data={config.mesh.data}: a device count, or -1 for all")
  for name in ("train.learning_rate", "ce.learning_rate", "train.score_scale", "train.clip_norm",
               "ce.clip_norm", "bm25.k1", "train.distill_temperature"):
    section, field = name.split(".")
    if not config[section][field] > 0:  # Also NaN.
      raise ConfigError(f"config.{name}={config[section][field]}: must be positive")
  for name in ("train.hard_negatives", "train.de0_random_negatives", "augment.max_questions",
               "eval.max_questions", "ce.head_learning_rate",  # head: 0 = the body's rate.
               "train.weight_decay", "ce.weight_decay", "train.de0_epochs", "train.de2_epochs",
               "train.steps", "ce.steps", "train.epochs", "ce.epochs", "eval.rerank_depth",
               "eval.rerank_margin", "train.distill_weight"):
    section, field = name.split(".")
    if config[section][field] < 0:
      raise ConfigError(f"config.{name}={config[section][field]}: must be >= 0")
  for section in ("train", "ce"):
    if config[section].steps <= 0 and config[section].epochs <= 0:
      raise ConfigError(f"config.{section}: steps={config[section].steps} and epochs="
                       f"{config[section].epochs}; one of them must be positive")
  check("data.name", config.data.name, datasets.NAMES)
  if config.data.name == "squad_mini":
    check("data.split", config.data.split, squad.SPLITS)
  for name in ("denoise.negative_threshold", "augment.negative_threshold",
               "augment.positive_threshold"):
    section, field = name.split(".")
    if not 0 < config[section][field] < 1:
      raise ConfigError(f"config.{name}={config[section][field]}: must be in (0, 1)")


def _unknown_override(config, argv) -> str | None:
  """The first `--config.a.b=v` naming a key the config lacks, described with its siblings."""
  for arg in argv:
    if not arg.startswith("--config."):
      continue
    node, path = config, arg[len("--config."):].split("=", 1)[0].split(".")
    for depth, key in enumerate(path):
      if not isinstance(node, ml_collections.ConfigDict) or key not in node:
        known = sorted(node.keys()) if isinstance(node, ml_collections.ConfigDict) else []
        where = ".".join(["config", *path[:depth]])
        return f"{arg}: {where} has no field {key!r}; its fields are {known}"
      node = node[key]
  return None


def parse_flags(argv: list[str]) -> list[str]:
  """absl's flag parser, with a one-line message for a config file that does not load, an
  override of the wrong type and an override of an unknown config key."""
  spec = next((a.split("=", 1)[1] for a in argv if a.startswith("--config=")), None)
  path = spec.partition(":")[0] if spec else None
  if path and not os.path.isfile(path):
    _fatal(f"--config={spec}: no file {path!r} (from {os.getcwd()}); the configs are in configs/")
  try:
    return flags.FLAGS(argv)
  except flags.IllegalFlagValueError as e:  # A value of the wrong type.
    _fatal(str(e).removeprefix("flag "))
  except (flags.Error, OSError) as e:  # An unknown flag; a config that fails to load.
    _fatal(str(e).strip().splitlines()[0])
  except (AttributeError, KeyError) as e:
    message = f"bad override: {e}"
    if spec:  # Load the config again, outside absl, to say which key is unknown.
      arg = spec.partition(":")[2]
      config = runpy.run_path(path)["get_config"](*([arg] if arg else []))
      message = _unknown_override(config, argv) or message
    _fatal(message)


def _fatal(message: str) -> None:
  print(f"error: {message}", file=sys.stderr)
  sys.exit(EXIT_CODE)
