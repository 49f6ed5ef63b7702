"""Cross-encoder: question and passage in one sequence, a linear head on [CLS] -> a relevance
logit. Trained pointwise with sigmoid cross-entropy (default) its scores are probabilities, which
is what RocketQA's 0.1 / 0.9 denoising and labeling thresholds are applied to; listwise softmax
over [positive, negatives] is the option.
"""

from __future__ import annotations

import json
import pathlib
from typing import Any, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from rocketqa_jax import artifacts, hf_checkpoint, matmul
from rocketqa_jax import cpu_kernels as kernels
from rocketqa_jax.bert import BertConfig, BertModel
from rocketqa_jax.encoder import BatchedModel, as_dtype, load_params
from rocketqa_jax.pooling import pool
from rocketqa_jax.tokenization import Tokenizer

LOSSES = ("pointwise", "listwise")
ARCHITECTURE = "RocketQACrossEncoder"  # config.json "architectures": ours, not a HF class.
HEAD_CONFIG = "cross_encoder.json"  # How the head pools: {"pooling": "cls" | "mean"}.


class CrossEncoder(nn.Module):
  """Token batch of (question, passage) pairs -> relevance logits [rows], float32.

  `pooling`: the head reads the [CLS] state (BERT's choice, RocketQA's) or the mean over the
  pair's tokens (what a sentence-transformers checkpoint was trained to make meaningful)."""
  config: BertConfig
  dtype: Any = jnp.float32
  param_dtype: Any = jnp.float32
  matmul_dtype: Any = None  # bfloat16: mixed-precision products (see matmul.py).
  remat: bool = False
  pooling: str = "cls"
  cpu_kernels: bool = False  # The BERT through cpu_kernels.py (XLA:CPU); same function.

  @nn.compact
  def __call__(self, input_ids, attention_mask, token_type_ids, deterministic: bool = True):
    hidden = BertModel(self.config, dtype=self.dtype, param_dtype=self.param_dtype,
                       matmul_dtype=self.matmul_dtype, remat=self.remat,
                       cpu_kernels=self.cpu_kernels, name="bert")(
        input_ids, attention_mask, token_type_ids, deterministic)
    dropout = kernels.Dropout if self.cpu_kernels else nn.Dropout
    pooled = dropout(self.config.hidden_dropout_prob)(
        pool(hidden, attention_mask, self.pooling).astype(jnp.float32),
        deterministic=deterministic)
    head = nn.Dense(1, param_dtype=self.param_dtype, name="classifier",
                    kernel_init=nn.initializers.normal(self.config.initializer_range))
    return head(pooled)[:, 0]


def init_params(model: CrossEncoder, encoder_params, seed: int = 0) -> dict:
  """The encoder's weights (e.g. a loaded checkpoint) under `bert`, a fresh head on top."""
  ids = jnp.zeros((1, 8), jnp.int32)
  fresh = jax.device_get(jax.jit(model.init)(jax.random.key(seed), ids, jnp.ones_like(ids),
                                             ids)["params"])
  params = {"bert": encoder_params, "classifier": fresh["classifier"]}
  if jax.tree.map(np.shape, params) != jax.tree.map(np.shape, fresh):
    raise ValueError("encoder parameters do not fit the cross-encoder's BERT")
  return params


def logits(model: CrossEncoder, params, tokens: dict, rng=None) -> jax.Array:
  return model.apply({"params": params}, tokens["input_ids"], tokens["attention_mask"],
                     tokens["token_type_ids"], deterministic=rng is None,
                     rngs=None if rng is None else {"dropout": rng})


def pair_loss(scores: jax.Array, group_size: int, mode: str = "pointwise"):
  """Loss over rows laid out in groups [positive, negative x (group_size - 1)]; (loss, metrics).

  pointwise: sigmoid cross-entropy, label 1 for each group's first row and 0 for the others;
  listwise: softmax cross-entropy over each group, the positive first.
  """
  groups = scores.reshape(-1, group_size)
  labels = jnp.zeros_like(groups).at[:, 0].set(1.0)
  if mode == "pointwise":
    loss = optax.sigmoid_binary_cross_entropy(groups, labels).mean()
  elif mode == "listwise":
    loss = optax.softmax_cross_entropy(groups, labels).mean()
  else:
    raise ValueError(f"loss {mode!r} unknown; expected one of {LOSSES}")
  metrics = {"accuracy": (jnp.argmax(groups, axis=1) == 0).mean(),
             "positive_prob": jax.nn.sigmoid(groups[:, 0]).mean(),
             "negative_prob": jax.nn.sigmoid(groups[:, 1:]).mean() if group_size > 1
             else jnp.float32(0)}
  return loss, metrics


def loss_fn(params, batch: dict, rng, *, model: CrossEncoder, group_size: int,
            mode: str = "pointwise"):
  """The trainer's loss: `batch["pairs"]` holds the tokenized groups, rows split over devices."""
  return pair_loss(logits(model, params, batch["pairs"], rng), group_size, mode)


class CrossEncoderScorer(BatchedModel):
  """Relevance of (question, passage) pairs, batched like the encoders: probabilities (what
  the denoising and labeling thresholds read) or logits (what reranking fuses)."""

  def __init__(self, model: CrossEncoder, params, tokenizer: Tokenizer, *, max_length: int = 160,
               batch_size: int = 64):
    self.model, self.max_length = model, max_length
    super().__init__(logits, model, params, tokenizer, batch_size)

  def fingerprint(self) -> str:
    """Identifies the scores this scorer gives: weights, architecture, length."""
    return super().fingerprint(self.model.config.to_hf(), self.model.pooling, self.max_length)

  def score(self, questions: Sequence[str], texts: Sequence[str],
            titles: Sequence[str] | None = None, *, progress=False,
            probabilities: bool = True) -> np.ndarray:
    """[len(texts)] float32: probabilities in (0, 1), or the head's logits (probabilities
    saturate at 1 in float32 where logits still order); `progress` as
    BatchedModel.apply_tokens's. For many pairs (a stage's), pair_scoring.score_pairs scores
    in chunks over every process."""
    pairs = self.tokenizer.tokenize_pairs(questions, texts, titles, self.max_length)
    if not pairs:
      return np.empty((0,), np.float32)
    out = self.apply_tokens(pairs, self.max_length, progress, "pairs")
    return np.asarray(jax.nn.sigmoid(out)) if probabilities else out

  def rerank(self, question: str, texts: Sequence[str], k: int | None = None,
             titles: Sequence[str] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(positions in `texts`, logits), by M_C's relevance to `question`, best first; the top
    `k` (all by default). For a first stage's candidates: reranking.rerank fuses both."""
    scores = self.score([question] * len(texts), texts, titles, probabilities=False)
    order = np.argsort(-scores, kind="stable")[:k]
    return order, scores[order]


def save_cross_encoder(directory: artifacts.PathLike, model: CrossEncoder, params: dict,
                       tokenizer: Tokenizer) -> None:
  """The BERT weights under `bert.` and the head as `classifier.weight` [1, hidden] /
  `classifier.bias` in one model.safetensors, with config.json and the tokenizer; the folder
  replaces `directory` (local or gs://) once complete. (Not loadable as HF's
  BertForSequenceClassification: that one puts its head on the tanh pooler.)"""
  head = jax.device_get(params["classifier"])
  extra = {"classifier.weight": np.ascontiguousarray(np.asarray(head["kernel"]).T),
           "classifier.bias": np.asarray(head["bias"])}
  with artifacts.publish_dir(directory) as local:
    local = pathlib.Path(local)
    hf_checkpoint.save_checkpoint(local, model.config, jax.device_get(params["bert"]),
                                  prefix="bert.", extra=extra, architecture=ARCHITECTURE)
    tokenizer.hf.save_pretrained(str(local))
    (local / HEAD_CONFIG).write_text(json.dumps({"pooling": model.pooling}) + "\n")


def load_cross_encoder(directory: artifacts.PathLike, *, max_length: int = 160,
                       batch_size: int = 64, dtype: str = "float32",
                       matmul_dtype: str = "float32",
                       cpu_kernels: str = "auto") -> CrossEncoderScorer:
  """A scorer from a directory (local or gs://) written by `save_cross_encoder`."""
  directory = pathlib.Path(artifacts.local_dir(directory))
  config = hf_checkpoint.load_config(directory)
  bert = load_params(BertModel(config), directory)
  tensors = artifacts.read_safetensors(directory / "model.safetensors")
  missing = [k for k in ("classifier.weight", "classifier.bias") if k not in tensors]
  if missing:
    raise hf_checkpoint.CheckpointError(f"{directory / 'model.safetensors'}: no {missing}: not a "
                                        "cross-encoder written by save_cross_encoder")
  head = {"kernel": tensors["classifier.weight"].T, "bias": tensors["classifier.bias"]}
  head_config = directory / HEAD_CONFIG
  pooling = json.loads(head_config.read_text())["pooling"] if head_config.exists() else "cls"
  model = CrossEncoder(config, dtype=as_dtype(dtype), pooling=pooling,
                       matmul_dtype=as_dtype(matmul.resolve_dtype(matmul_dtype)),
                       cpu_kernels=kernels.resolve(cpu_kernels))
  tokenizer = Tokenizer.from_pretrained(directory, passage_max_length=max_length)
  return CrossEncoderScorer(model, {"bert": bert, "classifier": head}, tokenizer,
                            max_length=max_length, batch_size=batch_size)
