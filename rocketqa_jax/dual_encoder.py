"""A dual encoder: query and passage towers (separate, as RocketQA, or shared) and its loss."""

from __future__ import annotations

import dataclasses

import jax
import numpy as np
from jax.sharding import Mesh

from rocketqa_jax.bert import BertModel
from rocketqa_jax.encoder import embed
from rocketqa_jax.losses import sharded_contrastive_loss


@dataclasses.dataclass(frozen=True)
class DualEncoder:
  model: BertModel
  pooling: str = "cls"
  normalize: bool = False
  shared: bool = False

  def init_params(self, tower_params, passage_params=None) -> dict:
    """Both towers start from `tower_params` (separate copies unless shared), or the passage
    tower from `passage_params` when given (a trained pair; shared towers keep the first)."""
    if self.shared:
      return {"shared": tower_params}
    copy = lambda tree: jax.tree.map(np.array, tree)
    return {"query": copy(tower_params),
            "passage": copy(tower_params if passage_params is None else passage_params)}

  def tower(self, params: dict, side: str):
    return params["shared"] if self.shared else params[side]

  def encode(self, params: dict, side: str, tokens: dict, rng=None) -> jax.Array:
    """`side`'s tower's embeddings (encoder.embed), [rows, hidden] float32; dropout is on when
    an rng is given."""
    return embed(self.model, self.tower(params, side), tokens, pooling=self.pooling,
                 normalize=self.normalize, deterministic=rng is None,
                 rngs=None if rng is None else {"dropout": rng})

  def loss(self, params: dict, batch: dict, rng, *, mesh: Mesh, negatives: str,
           scale: float = 1.0, distill_weight: float = 0.0, distill_temperature: float = 1.0):
    """(loss, metrics) over the global batch (see losses.py for the layout); with a "teacher"
    in the batch and a `distill_weight`, plus the distillation term."""
    q_rng, p_rng = jax.random.split(rng) if rng is not None else (None, None)
    q = self.encode(params, "query", batch["query"], q_rng)
    p = self.encode(params, "passage", batch["passage"], p_rng)
    return sharded_contrastive_loss(mesh, q, p, batch["query_positive_ids"],
                                    batch["passage_ids"], batch.get("teacher"),
                                    negatives=negatives, scale=scale,
                                    distill_weight=distill_weight,
                                    distill_temperature=distill_temperature)
