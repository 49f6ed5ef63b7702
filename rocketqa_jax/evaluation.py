"""Retrieval evaluation: embed the corpus and the eval questions, search exactly, score."""

from __future__ import annotations

import time

from rocketqa_jax import metrics
from rocketqa_jax.data import squad
from rocketqa_jax.encoder import Encoder, load_encoder
from rocketqa_jax.retrieval import exact_search


def encoder_from_config(config, checkpoint: str | None = None) -> Encoder:
  """The encoder the config describes; `checkpoint` replaces config.model.checkpoint (a trained
  tower). Random init applies only to the configured checkpoint."""
  m, t = config.model, config.tokenizer
  random_init = m.random_init and checkpoint in (None, m.checkpoint)
  return load_encoder(checkpoint or m.checkpoint, random_init=random_init, seed=config.seed,
                      pooling=m.pooling, normalize=m.normalize, dtype=m.dtype,
                      param_dtype=m.param_dtype, remat=m.remat, batch_size=config.eval.batch_size,
                      query_max_length=t.query_max_length, bucket_size=t.bucket_size,
                      passage_max_length=t.passage_max_length,
                      **(m.arch.to_dict() if random_init else {}))


def evaluate(query_encoder: Encoder, passage_encoder: Encoder, data: squad.SquadMini, *,
             use_titles: bool, ks=(1, 5, 20, 100), mrr_k: int = 10, max_questions: int = 0,
             progress: bool = True) -> dict:
  """Retrieval metrics on the eval questions, the whole corpus as candidates."""
  questions = data.eval[:max_questions] if max_questions else data.eval
  corpus = data.corpus
  t0 = time.perf_counter()
  passages = passage_encoder.encode_passages(corpus.texts, corpus.titles if use_titles else None,
                                             progress=progress)
  t1 = time.perf_counter()
  queries = query_encoder.encode_queries([q.text for q in questions], progress=progress)
  t2 = time.perf_counter()
  rows, _ = exact_search(queries, passages, k=max(max(ks), mrr_k))
  ranked = [[corpus.ids[i] for i in r] for r in rows]
  relevant = [set(q.positive_ids) for q in questions]
  out = {f"mrr@{mrr_k}": metrics.mrr_at_k(ranked, relevant, mrr_k)}
  out.update({f"recall@{k}": metrics.recall_at_k(ranked, relevant, k) for k in ks})
  out.update(questions=len(questions), passages=len(corpus),
             passages_per_s=len(corpus) / (t1 - t0), queries_per_s=len(questions) / (t2 - t1))
  return out


def format_table(results: dict[str, dict]) -> str:
  """One row per model: name and every float metric."""
  names = [k for k, v in next(iter(results.values())).items() if isinstance(v, float)]
  lines = ["| model | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
  for model, r in results.items():
    lines.append(f"| {model} | " + " | ".join(f"{r[n]:.4f}" for n in names) + " |")
  return "\n".join(lines)
