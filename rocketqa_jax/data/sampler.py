"""Deterministic training batches: the global batch at step s is a pure function of (seed, s).

So resuming needs only the step, every process can build its own slice without talking to the
others, and hard negatives are drawn per step the same way. Batches are laid out per device as
the loss expects: [B queries], [B positives; B x h negatives].

Each process tokenizes only the rows of its own devices' share of a step, when the step needs
them: memory and tokenizing work are O(batch), not O(corpus) (21M passages on a pod host).
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Sequence

import numpy as np

from rocketqa_jax.tokenization import Batch

# rows -> their token batch, padded to the fixed training length (one compiled step).
Tokens = Callable[[np.ndarray], Batch]


def epoch_order(step: int, *, examples: int, global_batch: int, seed: int) -> np.ndarray:
  """Rows of the examples in the global batch of `step`: each epoch a seeded permutation."""
  positions = np.arange(step * global_batch, (step + 1) * global_batch)
  out = np.empty(len(positions), np.int64)
  for epoch in np.unique(positions // examples):
    perm = np.random.default_rng([seed, int(epoch)]).permutation(examples)
    sel = positions // examples == epoch
    out[sel] = perm[positions[sel] % examples]
  return out


class _StepSampler:
  """Examples in seeded epoch order; the global batch split evenly over the devices."""

  def __init__(self, examples: Sequence, global_batch: int, num_devices: int, seed: int):
    if not examples:
      raise ValueError("no training examples")
    if global_batch % num_devices:
      raise ValueError(f"global batch {global_batch} is not a multiple of the {num_devices} "
                       "devices")
    self.examples, self.global_batch, self.seed = examples, global_batch, seed
    self.num_devices, self.per_device = num_devices, global_batch // num_devices

  def example_indices(self, step: int) -> np.ndarray:
    return epoch_order(step, examples=len(self.examples), global_batch=self.global_batch,
                       seed=self.seed)


@dataclasses.dataclass(frozen=True, eq=False)
class TrainExample:
  """A question with corpus rows of its labeled positives and (optionally) hard negatives (a
  tuple, or an int32 array where there are millions of them); for distillation, M_C's logits
  of each positive and each hard negative, in the same order (empty: none)."""
  query: str
  positives: tuple[int, ...]
  hard_negatives: Sequence[int] = ()
  teacher_positives: Sequence[float] = ()
  teacher_negatives: Sequence[float] = ()


class BatchSampler(_StepSampler):
  """Global batches of `global_batch` queries, each with one positive and `hard_negatives`
  negatives (drawn from its hard negatives; random corpus passages when it has too few).

  `queries(rows)` tokenizes examples' queries, `passages(rows)` corpus passages, both for the
  rows a step needs."""

  def __init__(self, examples: Sequence[TrainExample], queries: Tokens, passages: Tokens, *,
               corpus_size: int, global_batch: int, hard_negatives: int, num_devices: int,
               seed: int):
    super().__init__(examples, global_batch, num_devices, seed)
    if any(not ex.positives for ex in examples):
      raise ValueError("every training example needs at least one positive")
    self.queries, self.passages, self.hard_negatives = queries, passages, hard_negatives
    self.max_positives = max(len(ex.positives) for ex in examples)
    self.distills = any(len(ex.teacher_positives) for ex in examples)
    self.corpus_size = corpus_size

  def signature(self) -> dict:
    """What must not change between a run and its resumption for the data order to be exact."""
    return {"seed": self.seed, "global_batch": self.global_batch, "examples": len(self.examples),
            "hard_negatives": self.hard_negatives, "corpus": self.corpus_size}

  def _passages_for(self, step: int, position: int, ex: TrainExample
                    ) -> tuple[list[int], list[float]]:
    """[positive, h negatives] for the example at `position` of the global batch of `step`,
    and M_C's logits of them (NaN where the example has none: a random top-up)."""
    rng = np.random.default_rng([self.seed, step, position, 1])
    chosen = rng.integers(len(ex.positives))
    pool = [i for i, p in enumerate(ex.hard_negatives) if p not in ex.positives]
    take = min(self.hard_negatives, len(pool))
    picked = [pool[i] for i in rng.choice(len(pool), take, replace=False)] if take else []
    negatives = [ex.hard_negatives[i] for i in picked]
    teacher = ([ex.teacher_positives[chosen], *(ex.teacher_negatives[i] for i in picked)]
               if len(ex.teacher_positives) else [np.nan] * (1 + take))
    excluded = set(ex.positives)
    while len(negatives) < self.hard_negatives:  # Top up with random corpus passages.
      candidate = int(rng.integers(self.corpus_size))
      if candidate not in excluded:
        negatives.append(candidate)
        teacher.append(np.nan)
    return [ex.positives[chosen], *negatives], teacher

  def device_batches(self, step: int, devices: Sequence[int]) -> dict[str, np.ndarray]:
    """The rows of the global batch that belong to `devices` (global device positions); with
    "teacher" [queries, 1 + h] (M_C's logits of each query's passages) where the examples
    carry them."""
    indices = self.example_indices(step)
    q_rows, p_rows, q_pos, teacher = [], [], [], []
    for d in devices:
      block = range(d * self.per_device, (d + 1) * self.per_device)
      picks = [self._passages_for(step, pos, self.examples[indices[pos]]) for pos in block]
      q_rows += [indices[pos] for pos in block]
      p_rows += [p[0] for p, _ in picks] + [n for p, _ in picks for n in p[1:]]
      teacher += [t for _, t in picks]
      for pos in block:
        positives = self.examples[indices[pos]].positives
        q_pos.append(list(positives) + [-1] * (self.max_positives - len(positives)))
    queries, passages = self.queries(np.asarray(q_rows)), self.passages(np.asarray(p_rows))
    batch = {"query": vars(queries), "passage": vars(passages),
             "query_positive_ids": np.asarray(q_pos, np.int32),
             "passage_ids": np.asarray(p_rows, np.int32)}
    if self.distills:
      batch["teacher"] = np.asarray(teacher, np.float32)
    return batch


@dataclasses.dataclass(frozen=True, eq=False)
class PairExample:
  """A question with corpus rows of its positives and of candidate negatives (e.g. from mining:
  an int32 array)."""
  query: str
  positives: tuple[int, ...]
  negatives: Sequence[int]


class PairSampler(_StepSampler):
  """Cross-encoder batches: per question a group [positive, `negatives` negatives], tokenized as
  (question, passage) pairs; like BatchSampler, the batch at step s is a pure function of
  (seed, s), and each process builds only its devices' groups."""

  def __init__(self, examples: Sequence[PairExample], tokenizer, texts: Sequence[str],
               titles: Sequence[str] | None, *, global_batch: int, negatives: int,
               num_devices: int, seed: int, max_length: int):
    usable = [ex for ex in examples if len(ex.positives) and len(ex.negatives)]
    if not usable:
      raise ValueError("no example has both a positive and a negative")
    super().__init__(usable, global_batch, num_devices, seed)
    self.tokenizer, self.texts, self.titles = tokenizer, texts, titles
    self.negatives, self.max_length = negatives, max_length

  def signature(self) -> dict:
    return {"seed": self.seed, "global_batch": self.global_batch, "negatives": self.negatives,
            "examples": len(self.examples), "max_length": self.max_length}

  def group(self, step: int, position: int, ex: PairExample) -> list[int]:
    """[positive, negatives...] rows for the example at `position` of step's global batch."""
    rng = np.random.default_rng([self.seed, step, position, 2])
    positive = ex.positives[rng.integers(len(ex.positives))]
    picks = rng.choice(len(ex.negatives), self.negatives,
                       replace=len(ex.negatives) < self.negatives)
    return [positive, *(ex.negatives[i] for i in picks)]

  def device_batches(self, step: int, devices: Sequence[int]) -> dict:
    indices = self.example_indices(step)
    questions, rows = [], []
    for d in devices:
      for pos in range(d * self.per_device, (d + 1) * self.per_device):
        ex = self.examples[indices[pos]]
        group = self.group(step, pos, ex)
        questions += [ex.query] * len(group)
        rows += group
    titles = None if self.titles is None else [self.titles[r] for r in rows]
    pairs = self.tokenizer.tokenize_pairs(questions, [self.texts[r] for r in rows], titles,
                                          self.max_length)
    # Fixed length (not a bucket): every step has one shape, on every process.
    padded = self.tokenizer.pad(pairs, self.max_length, fixed_length=True)
    return {"pairs": vars(padded), "passage_ids": np.asarray(rows, np.int32)}
