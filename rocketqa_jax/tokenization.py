"""Text -> padded token-id batches with a small, fixed set of shapes.

Sequences are tokenized once without padding; batches are then padded to the next multiple of
`bucket_size` (capped at the max length), so a jitted encoder compiles at most
max_length / bucket_size shapes while short batches stay cheap. The default, 8, suits CPUs and
GPUs, where time follows tokens and a shape compiles in under a second (cached on disk by
`main`): SQuAD paragraphs at 256 tokens pad 4.2% over their real tokens in batches of 64 against
11.8% with 32, and encode 4-5% faster. TPU configs use one shape per length (bucket = max length).
"""

from __future__ import annotations

import dataclasses
import math
import os
from typing import Sequence

import numpy as np

from rocketqa_jax import usage

BUCKET_SIZE = 8  # The default bucket (module docstring); Tokenizer's and load_encoder's.
# Texts per call of the Hugging Face tokenizer. Its per-text objects (tokens, offsets, the
# overflow cut off by truncation) hold about 28 KB for a 100-word passage until the call
# returns: 50,000 passages at once took 1.38 GiB, a 1M-passage shard would take 28 GB.
TOKENIZE_BATCH = 1024


@dataclasses.dataclass(frozen=True)
class Batch:
  """One padded batch; arrays are int32 [rows, length]."""
  input_ids: np.ndarray
  attention_mask: np.ndarray
  token_type_ids: np.ndarray

  def take(self, rows) -> "Batch":
    return Batch(self.input_ids[rows], self.attention_mask[rows], self.token_type_ids[rows])


def bucket_length(n: int, bucket_size: int, max_length: int) -> int:
  """The padded length for a longest sequence of n tokens."""
  return min(max_length, max(bucket_size, math.ceil(n / bucket_size) * bucket_size))


class Tokenizer:
  """Queries and passages (text, or a (title, text) segment pair as RocketQA) -> token ids."""

  def __init__(self, hf_tokenizer, query_max_length: int = 32, passage_max_length: int = 128,
               bucket_size: int = BUCKET_SIZE):
    for name, value in (("query_max_length", query_max_length),
                        ("passage_max_length", passage_max_length), ("bucket_size", bucket_size)):
      if value < 1:
        raise ValueError(f"{name} must be positive, got {value}")
    self.hf = hf_tokenizer
    self.query_max_length = query_max_length
    self.passage_max_length = passage_max_length
    self.bucket_size = bucket_size
    self.pad_id = hf_tokenizer.pad_token_id or 0

  @classmethod
  def from_pretrained(cls, model_dir: str | os.PathLike, **kwargs) -> Tokenizer:
    # transformers announces at import that PyTorch is missing (an "advisory" warning); we
    # never use torch, and the line reads like an error to a newcomer.
    os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
    import transformers  # Deferred: importing transformers costs seconds.
    hf = transformers.AutoTokenizer.from_pretrained(str(model_dir), use_fast=True)
    if not hf.is_fast:
      raise ValueError(f"{model_dir}: no fast tokenizer (tokenizer.json) could be built")
    return cls(hf, **kwargs)

  def _tokenize(self, first: Sequence[str], second: Sequence[str] | None, max_length: int):
    """(input_ids, token_type_ids) int32 arrays per text, TOKENIZE_BATCH texts at a time."""
    out = []
    for start in range(0, len(first), TOKENIZE_BATCH):
      part = slice(start, start + TOKENIZE_BATCH)
      encoded = self.hf(list(first[part]), None if second is None else list(second[part]),
                        truncation=True, max_length=max_length, padding=False,
                        return_attention_mask=False, return_token_type_ids=True)
      out += [(np.asarray(i, np.int32), np.asarray(t, np.int32))
              for i, t in zip(encoded["input_ids"], encoded["token_type_ids"])]
    return out

  def tokenize_queries(self, queries: Sequence[str]) -> list[tuple[np.ndarray, np.ndarray]]:
    """(input_ids, token_type_ids) per query, truncated to query_max_length."""
    usage.count("queries_tokenized", len(queries))
    return self._tokenize(queries, None, self.query_max_length)

  def tokenize_passages(self, texts: Sequence[str], titles: Sequence[str] | None = None
                        ) -> list[tuple[np.ndarray, np.ndarray]]:
    """Text alone, or title as segment A and text as segment B; the longer one is truncated."""
    usage.count("passages_tokenized", len(texts))
    if titles is None:
      return self._tokenize(texts, None, self.passage_max_length)
    if len(titles) != len(texts):
      raise ValueError(f"{len(titles)} titles for {len(texts)} passages")
    return self._tokenize(titles, texts, self.passage_max_length)

  def tokenize_pairs(self, questions: Sequence[str], texts: Sequence[str],
                     titles: Sequence[str] | None = None, max_length: int | None = None
                     ) -> list[tuple[np.ndarray, np.ndarray]]:
    """Cross-encoder input: the question as segment A, the passage (title [SEP] text when
    titled) as segment B; the passage is truncated first, then the question."""
    if len(questions) != len(texts) or (titles is not None and len(titles) != len(texts)):
      raise ValueError(f"{len(questions)} questions, {len(texts)} passages"
                       + ("" if titles is None else f", {len(titles)} titles"))
    usage.count("pairs_tokenized", len(texts))
    if titles is not None:
      sep = f" {self.hf.sep_token} "
      texts = [f"{title}{sep}{text}" for title, text in zip(titles, texts)]
    return self._tokenize(questions, texts, max_length or self.passage_max_length)

  def pad(self, sequences: Sequence[tuple[np.ndarray, np.ndarray]], max_length: int,
          rows: int | None = None, fixed_length: bool = False) -> Batch:
    """Pads to [rows, bucket length] (or exactly max_length when `fixed_length`); extra rows (to
    keep the batch shape fixed) are all padding."""
    rows = len(sequences) if rows is None else rows
    if rows < len(sequences):
      raise ValueError(f"{len(sequences)} sequences do not fit in {rows} rows")
    longest = max((len(ids) for ids, _ in sequences), default=1)
    length = max_length if fixed_length else bucket_length(longest, self.bucket_size, max_length)
    input_ids = np.full((rows, length), self.pad_id, np.int32)
    token_type_ids = np.zeros((rows, length), np.int32)
    mask = np.zeros((rows, length), np.int32)
    for row, (ids, types) in enumerate(sequences):
      input_ids[row, :len(ids)], token_type_ids[row, :len(ids)], mask[row, :len(ids)] = ids, types, 1
    return Batch(input_ids, mask, token_type_ids)
