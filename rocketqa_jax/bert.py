"""BERT-family Transformer encoder in Flax Linen.

Module names mirror Hugging Face's `BertModel` (`embeddings/word_embeddings`,
`encoder/layer_3/attention/self/query`, ...) so that a checkpoint maps onto our parameters by
renaming alone (see `hf_checkpoint.py`). The same layout covers ERNIE 2.0 (optional task-type
embedding) and RoBERTa (positions offset past the padding index).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from rocketqa_jax import matmul

SUPPORTED_MODEL_TYPES = ("bert", "ernie", "roberta", "xlm-roberta", "camembert")


def gelu(x: jax.Array) -> jax.Array:
  """Exact GELU through erf: jax.nn.gelu(approximate=False) goes through erfc, whose exp and
  branches make it about 3x slower on CPU; the two differ by < 1e-6 (largest at large negative x,
  where both are ~0)."""
  return 0.5 * x * (1 + jax.lax.erf(x * np.float32(0.5 ** 0.5)).astype(x.dtype))


_ACTIVATIONS = {
    "gelu": gelu,
    "gelu_new": lambda x: jax.nn.gelu(x, approximate=True),
    "gelu_pytorch_tanh": lambda x: jax.nn.gelu(x, approximate=True),
    "relu": jax.nn.relu,
}


@dataclasses.dataclass(frozen=True)
class BertConfig:
  """Architecture hyperparameters; field names follow Hugging Face's `config.json`."""

  vocab_size: int = 30522
  hidden_size: int = 768
  num_hidden_layers: int = 12
  num_attention_heads: int = 12
  intermediate_size: int = 3072
  hidden_act: str = "gelu"
  max_position_embeddings: int = 512
  type_vocab_size: int = 2
  task_type_vocab_size: int = 0  # ERNIE 2.0 with use_task_id; 0 = no task embedding.
  layer_norm_eps: float = 1e-12
  pad_token_id: int = 0
  position_offset: int = 0  # RoBERTa: pad_token_id + 1, and only real tokens advance positions.
  hidden_dropout_prob: float = 0.1
  attention_probs_dropout_prob: float = 0.1
  initializer_range: float = 0.02
  model_type: str = "bert"

  def __post_init__(self):
    if self.model_type not in SUPPORTED_MODEL_TYPES:
      raise ValueError(f"model_type {self.model_type!r} is not a BERT-family encoder we support "
                       f"({', '.join(SUPPORTED_MODEL_TYPES)})")
    if self.hidden_act not in _ACTIVATIONS:
      raise ValueError(f"hidden_act {self.hidden_act!r} unsupported ({', '.join(_ACTIVATIONS)})")
    if self.hidden_size % self.num_attention_heads:
      raise ValueError(f"hidden_size {self.hidden_size} is not a multiple of "
                       f"num_attention_heads {self.num_attention_heads}")

  @classmethod
  def from_hf(cls, hf: dict[str, Any], **overrides) -> BertConfig:
    """Reads a Hugging Face `config.json` dict; unknown HF fields are ignored."""
    model_type = hf.get("model_type", "bert")
    fields = {f.name for f in dataclasses.fields(cls)}
    kwargs = {k: v for k, v in hf.items() if k in fields}
    if model_type in ("roberta", "xlm-roberta", "camembert"):
      kwargs["position_offset"] = hf.get("pad_token_id", 1) + 1
    if model_type == "ernie" and hf.get("use_task_id"):
      kwargs["task_type_vocab_size"] = hf.get("task_type_vocab_size", 3)
    else:
      kwargs.pop("task_type_vocab_size", None)
    kwargs.update(overrides)
    return cls(**kwargs)

  def to_hf(self) -> dict[str, Any]:
    """The `config.json` fields Hugging Face needs to rebuild this architecture."""
    hf = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
    hf.pop("position_offset")
    if self.task_type_vocab_size:
      hf["use_task_id"] = True
    else:
      hf.pop("task_type_vocab_size")
    return hf


class Dropout(nn.Module):
  """`nn.Dropout` drawing 8 random bits per unit instead of 32.

  Threefry's bits are most of dropout's cost on CPU (43% of a training step at lengths 32/128
  with 32-bit draws; docs/benchmarks.md); one 32-bit draw split into 4 bytes makes a quarter of
  them. The rate is rounded to a multiple of 1/256 (0.1 -> 0.1016) and kept units are scaled by
  the rounded rate, so the expectation is exact. Bits come from the unsharded shape's counters
  (threefry is partitionable), so any sharding draws the same mask.
  """
  rate: float

  @nn.compact
  def __call__(self, x: jax.Array, deterministic: bool) -> jax.Array:
    drop = round(self.rate * 256)
    if deterministic or drop == 0:
      return x
    *rows, width = x.shape
    words = jax.random.bits(self.make_rng("dropout"), (*rows, -(-width // 4)), jnp.uint32)
    byte = jax.lax.bitcast_convert_type(words, jnp.uint8).reshape(*rows, -1)[..., :width]
    return jnp.where(byte >= drop, x / (1 - drop / 256), 0).astype(x.dtype)


def position_ids(attention_mask: jax.Array, offset: int) -> jax.Array:
  """BERT counts every slot; RoBERTa counts real tokens only, starting past the padding index."""
  if not offset:
    return jnp.broadcast_to(jnp.arange(attention_mask.shape[-1]), attention_mask.shape)
  mask = attention_mask.astype(jnp.int32)
  return jnp.cumsum(mask, axis=-1) * mask + (offset - 1)


class _Block(nn.Module):
  """Fields and layer factories shared by every part of the encoder."""
  config: BertConfig
  dtype: Any = jnp.float32
  param_dtype: Any = jnp.float32
  matmul_dtype: Any = None  # bfloat16: mixed-precision products (see matmul.py).

  @property
  def kw(self) -> dict:
    return dict(config=self.config, dtype=self.dtype, param_dtype=self.param_dtype,
                matmul_dtype=self.matmul_dtype)

  def einsum(self, spec: str, a: jax.Array, b: jax.Array) -> jax.Array:
    return matmul.einsum(spec, a, b, self.matmul_dtype).astype(self.dtype)

  def dense(self, features: int, name: str) -> nn.Dense:
    mixed = {"dot_general": matmul.dot_general(self.matmul_dtype)} if self.matmul_dtype else {}
    return nn.Dense(features, dtype=self.dtype, param_dtype=self.param_dtype, name=name, **mixed,
                    kernel_init=nn.initializers.normal(self.config.initializer_range))

  def embed(self, rows: int, name: str) -> nn.Embed:
    return nn.Embed(rows, self.config.hidden_size, dtype=self.dtype, name=name,
                    param_dtype=self.param_dtype,
                    embedding_init=nn.initializers.normal(self.config.initializer_range))

  def layer_norm(self) -> nn.LayerNorm:
    return nn.LayerNorm(self.config.layer_norm_eps, dtype=self.dtype,
                        param_dtype=self.param_dtype, name="LayerNorm")


class Embeddings(_Block):

  @nn.compact
  def __call__(self, input_ids, token_type_ids, attention_mask, deterministic: bool):
    cfg = self.config
    x = self.embed(cfg.vocab_size, "word_embeddings")(input_ids)
    x += self.embed(cfg.max_position_embeddings, "position_embeddings")(
        position_ids(attention_mask, cfg.position_offset))
    x += self.embed(cfg.type_vocab_size, "token_type_embeddings")(token_type_ids)
    if cfg.task_type_vocab_size:
      x += self.embed(cfg.task_type_vocab_size, "task_type_embeddings")(jnp.zeros_like(input_ids))
    return Dropout(cfg.hidden_dropout_prob)(self.layer_norm()(x), deterministic=deterministic)


class SelfAttention(_Block):

  @nn.compact
  def __call__(self, x, mask_bias, deterministic: bool):
    cfg = self.config
    heads, head_dim = cfg.num_attention_heads, cfg.hidden_size // cfg.num_attention_heads
    # Heads-major layout [batch, heads, length, head_dim]: XLA:CPU runs these batched matmuls
    # 2.5x faster than with heads in the third axis (measured in docs/design.md).
    split = lambda t: t.reshape(*t.shape[:-1], heads, head_dim).transpose(0, 2, 1, 3)
    q, k, v = (split(self.dense(cfg.hidden_size, n)(x)) for n in ("query", "key", "value"))
    scores = self.einsum("bhqd,bhkd->bhqk", q * (1 / head_dim ** 0.5), k)
    # Softmax in float32 whatever the compute dtype (bfloat16 logits lose the ranking of keys),
    # normalized after the product with the values: one pass less over [b, h, q, k] than
    # jax.nn.softmax (15% of the forward on XLA:CPU at length 128). Dropout commutes with the
    # division, so this is dropout(softmax(scores)) @ v.
    scores = scores.astype(jnp.float32) + mask_bias
    weights = jnp.exp(scores - jax.lax.stop_gradient(scores.max(-1, keepdims=True)))
    denominator = weights.sum(-1, keepdims=True)
    weights = Dropout(cfg.attention_probs_dropout_prob)(weights, deterministic=deterministic)
    out = self.einsum("bhqk,bhkd->bhqd", weights.astype(self.dtype), v) / denominator.astype(
        self.dtype)
    return out.transpose(0, 2, 1, 3).reshape(*x.shape[:-1], cfg.hidden_size)


class AddNorm(_Block):
  """Projection, dropout, residual, LayerNorm: HF's `BertSelfOutput` and `BertOutput`."""

  @nn.compact
  def __call__(self, x, residual, deterministic: bool):
    x = self.dense(self.config.hidden_size, "dense")(x)
    x = Dropout(self.config.hidden_dropout_prob)(x, deterministic=deterministic)
    return self.layer_norm()(x + residual)


class Attention(_Block):

  @nn.compact
  def __call__(self, x, mask_bias, deterministic: bool):
    attended = SelfAttention(**self.kw, name="self")(x, mask_bias, deterministic)
    return AddNorm(**self.kw, name="output")(attended, x, deterministic)


class Intermediate(_Block):

  @nn.compact
  def __call__(self, x):
    x = self.dense(self.config.intermediate_size, "dense")(x)
    return _ACTIVATIONS[self.config.hidden_act](x)


class Layer(_Block):

  @nn.compact
  def __call__(self, x, mask_bias, deterministic: bool):
    x = Attention(**self.kw, name="attention")(x, mask_bias, deterministic)
    hidden = Intermediate(**self.kw, name="intermediate")(x)
    return AddNorm(**self.kw, name="output")(hidden, x, deterministic)


class Encoder(_Block):
  remat: bool = False

  @nn.compact
  def __call__(self, x, mask_bias, deterministic: bool):
    # `deterministic` (argument 3, counting self) is a Python bool: static under remat.
    layer_cls = nn.remat(Layer, static_argnums=(3,)) if self.remat else Layer
    for i in range(self.config.num_hidden_layers):
      x = layer_cls(**self.kw, name=f"layer_{i}")(x, mask_bias, deterministic)
    return x


class BertModel(_Block):
  """Token ids -> last hidden states [batch, length, hidden].

  `dtype` is the compute dtype (activations, matmuls), `param_dtype` the storage dtype of the
  weights; `remat` recomputes each layer's activations in the backward pass to save memory.
  """
  remat: bool = False

  @nn.compact
  def __call__(self, input_ids, attention_mask, token_type_ids=None, deterministic: bool = True):
    if token_type_ids is None:
      token_type_ids = jnp.zeros_like(input_ids)
    x = Embeddings(**self.kw, name="embeddings")(input_ids, token_type_ids, attention_mask,
                                                 deterministic)
    # Additive bias over keys, as HF: 0 for real tokens, the most negative float for padding.
    mask_bias = jnp.where(attention_mask[:, None, None, :] > 0, 0.0,
                          jnp.finfo(jnp.float32).min).astype(jnp.float32)
    return Encoder(**self.kw, remat=self.remat, name="encoder")(x, mask_bias, deterministic)
