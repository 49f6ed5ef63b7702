"""Sequence -> vector pooling, as pure functions of hidden states and the attention mask."""

import jax
import jax.numpy as jnp

POOLING_MODES = ("cls", "mean")


def pool(hidden: jax.Array, attention_mask: jax.Array, mode: str) -> jax.Array:
  """[batch, length, hidden] -> [batch, hidden], in float32.

  "cls" takes the first token (DPR, RocketQA); "mean" averages real tokens only
  (sentence-transformers), clamping the count so that an all-padding row gives zeros, not NaN.
  """
  hidden = hidden.astype(jnp.float32)
  if mode == "cls":
    return hidden[:, 0]
  if mode == "mean":
    mask = attention_mask.astype(jnp.float32)[..., None]
    return (hidden * mask).sum(axis=1) / jnp.maximum(mask.sum(axis=1), 1e-9)
  raise ValueError(f"pooling {mode!r} unknown; expected one of {POOLING_MODES}")


def l2_normalize(x: jax.Array, eps: float = 1e-12) -> jax.Array:
  """Unit-length rows, as torch.nn.functional.normalize (norm clamped at eps)."""
  return x / jnp.maximum(jnp.linalg.norm(x, axis=-1, keepdims=True), eps)
