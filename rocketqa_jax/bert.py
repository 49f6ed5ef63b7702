"""BERT-family Transformer encoder in Flax Linen.

Module names mirror Hugging Face's `BertModel` (`embeddings/word_embeddings`,
`encoder/layer_3/attention/self/query`, ...) so that a checkpoint maps onto our parameters by
renaming alone (see `hf_checkpoint.py`). The same layout covers ERNIE 2.0 (optional task-type
embedding) and RoBERTa (positions offset past the padding index).

This is the reference computation (flax `nn.Dropout`, `jax.nn.gelu`, `jax.nn.dot_product_attention`,
which reaches cuDNN and TPU attention kernels). `cpu_kernels=True` computes the same function with
the kernels of `cpu_kernels.py`, tuned for XLA:CPU; `model.cpu_kernels="auto"` turns them on for
CPU backends only.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from rocketqa_jax import cpu_kernels, matmul

SUPPORTED_MODEL_TYPES = ("bert", "ernie", "roberta", "xlm-roberta", "camembert")
_NEGATIVE = jnp.finfo(jnp.float32).min  # A masked key's attention score, as HF.
_ACTIVATIONS = {
    "gelu": lambda x: jax.nn.gelu(x, approximate=False),
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
  cpu_kernels: bool = False  # The same function through cpu_kernels.py (XLA:CPU).

  @property
  def kw(self) -> dict:
    return dict(config=self.config, dtype=self.dtype, param_dtype=self.param_dtype,
                matmul_dtype=self.matmul_dtype, cpu_kernels=self.cpu_kernels)

  @property
  def product(self):
    """einsum(spec, a, b, matmul_dtype): matmul.py's (autodiff) or cpu_kernels.py's."""
    return cpu_kernels.einsum if self.cpu_kernels else matmul.einsum

  def einsum(self, spec: str, a: jax.Array, b: jax.Array) -> jax.Array:
    return self.product(spec, a, b, self.matmul_dtype).astype(self.dtype)

  def dense(self, features: int, name: str) -> nn.Dense:
    mixed = ({"dot_general": matmul.dot_general(self.matmul_dtype, self.product)}
             if self.matmul_dtype else {})
    return nn.Dense(features, dtype=self.dtype, param_dtype=self.param_dtype, name=name, **mixed,
                    kernel_init=nn.initializers.normal(self.config.initializer_range))

  def embedding_table(self, rows: int, name: str) -> nn.Embed:
    return nn.Embed(rows, self.config.hidden_size, dtype=self.dtype, name=name,
                    param_dtype=self.param_dtype,
                    embedding_init=nn.initializers.normal(self.config.initializer_range))

  def layer_norm(self) -> nn.LayerNorm:
    return nn.LayerNorm(self.config.layer_norm_eps, dtype=self.dtype,
                        param_dtype=self.param_dtype, name="LayerNorm")

  def dropout(self, rate: float) -> nn.Module:
    return cpu_kernels.Dropout(rate) if self.cpu_kernels else nn.Dropout(rate)

  def activation(self, x: jax.Array) -> jax.Array:
    if self.cpu_kernels and self.config.hidden_act == "gelu":
      return cpu_kernels.gelu(x)
    return _ACTIVATIONS[self.config.hidden_act](x)


class Embeddings(_Block):

  @nn.compact
  def __call__(self, input_ids, token_type_ids, attention_mask, deterministic: bool):
    cfg = self.config
    x = self.embedding_table(cfg.vocab_size, "word_embeddings")(input_ids)
    x += self.embedding_table(cfg.max_position_embeddings, "position_embeddings")(
        position_ids(attention_mask, cfg.position_offset))
    x += self.embedding_table(cfg.type_vocab_size, "token_type_embeddings")(token_type_ids)
    if cfg.task_type_vocab_size:
      x += self.embedding_table(cfg.task_type_vocab_size, "task_type_embeddings")(
          jnp.zeros_like(input_ids))
    return self.dropout(cfg.hidden_dropout_prob)(self.layer_norm()(x), deterministic=deterministic)


class SelfAttention(_Block):

  @nn.compact
  def __call__(self, x, mask, deterministic: bool):
    cfg = self.config
    heads, head_dim = cfg.num_attention_heads, cfg.hidden_size // cfg.num_attention_heads
    split = lambda t: t.reshape(*t.shape[:-1], heads, head_dim)  # [batch, length, heads, dim]
    q, k, v = (split(self.dense(cfg.hidden_size, n)(x)) for n in ("query", "key", "value"))
    dropout = functools.partial(self.dropout(cfg.attention_probs_dropout_prob),
                                deterministic=deterministic)
    if self.cpu_kernels:
      out = cpu_kernels.attention(q, k, v, mask, einsum=self.einsum, dropout=dropout,
                                  dtype=self.dtype)
    elif deterministic or not cfg.attention_probs_dropout_prob:
      low = self.matmul_dtype or self.dtype  # The products' input type.
      out = jax.nn.dot_product_attention(q.astype(low), k.astype(low), v.astype(low),
                                         mask=mask).astype(self.dtype)
    else:  # Dropout on the attention weights: the textbook formula (softmax in float32).
      scores = self.einsum("bqhd,bkhd->bhqk", q * (1 / head_dim ** 0.5), k)
      weights = jax.nn.softmax(jnp.where(mask, scores.astype(jnp.float32), _NEGATIVE), axis=-1)
      out = self.einsum("bhqk,bkhd->bqhd", dropout(weights).astype(self.dtype), v)
    return out.reshape(*x.shape[:-1], cfg.hidden_size)


class AddNorm(_Block):
  """Projection, dropout, residual, LayerNorm: HF's `BertSelfOutput` and `BertOutput`."""

  @nn.compact
  def __call__(self, x, residual, deterministic: bool):
    x = self.dense(self.config.hidden_size, "dense")(x)
    x = self.dropout(self.config.hidden_dropout_prob)(x, deterministic=deterministic)
    return self.layer_norm()(x + residual)


class Attention(_Block):

  @nn.compact
  def __call__(self, x, mask, deterministic: bool):
    attended = SelfAttention(**self.kw, name="self")(x, mask, deterministic)
    return AddNorm(**self.kw, name="output")(attended, x, deterministic)


class Intermediate(_Block):

  @nn.compact
  def __call__(self, x):
    x = self.dense(self.config.intermediate_size, "dense")(x)
    return self.activation(x)


class Layer(_Block):

  @nn.compact
  def __call__(self, x, mask, deterministic: bool):
    x = Attention(**self.kw, name="attention")(x, mask, deterministic)
    hidden = Intermediate(**self.kw, name="intermediate")(x)
    return AddNorm(**self.kw, name="output")(hidden, x, deterministic)


class LayerStack(_Block):
  """The layers (Hugging Face's `BertEncoder`)."""
  remat: bool = False

  @nn.compact
  def __call__(self, x, mask, deterministic: bool):
    # `deterministic` (argument 3, counting self) is a Python bool: static under remat.
    layer_cls = nn.remat(Layer, static_argnums=(3,)) if self.remat else Layer
    for i in range(self.config.num_hidden_layers):
      x = layer_cls(**self.kw, name=f"layer_{i}")(x, mask, deterministic)
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
    mask = attention_mask[:, None, None, :] > 0  # [batch, 1, 1, keys]: which keys are tokens.
    return LayerStack(**self.kw, remat=self.remat, name="encoder")(x, mask, deterministic)
