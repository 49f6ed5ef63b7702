"""rocketqa_jax: dense passage retrievers trained with the RocketQA recipe, in JAX."""

from rocketqa_jax.bert import BertConfig, BertModel
from rocketqa_jax.encoder import Encoder, load_encoder

__all__ = ["BertConfig", "BertModel", "Encoder", "load_encoder"]
