"""Stage `eval`: embed the corpus and the eval questions, retrieve exactly, report metrics."""

from __future__ import annotations

import logging
import pathlib
import time

from rocketqa_jax import artifacts, metrics
from rocketqa_jax.data import squad
from rocketqa_jax.encoder import Encoder, load_encoder
from rocketqa_jax.retrieval import exact_search

log = logging.getLogger(__name__)


def encoder_from_config(config) -> Encoder:
  m, t = config.model, config.tokenizer
  return load_encoder(m.checkpoint, random_init=m.random_init, seed=config.seed,
                      pooling=m.pooling, normalize=m.normalize, dtype=m.dtype,
                      param_dtype=m.param_dtype, remat=m.remat, batch_size=config.eval.batch_size,
                      query_max_length=t.query_max_length, bucket_size=t.bucket_size,
                      passage_max_length=t.passage_max_length, **m.arch.to_dict())


def evaluate(encoder: Encoder, data: squad.SquadMini, *, use_titles: bool, ks=(1, 5, 20, 100),
             mrr_k: int = 10, max_questions: int = 0, progress: bool = True) -> dict:
  """Retrieval metrics of `encoder` on the eval questions, the whole corpus as candidates."""
  questions = data.eval[:max_questions] if max_questions else data.eval
  corpus = data.corpus
  t0 = time.perf_counter()
  passages = encoder.encode_passages(corpus.texts, corpus.titles if use_titles else None,
                                     progress=progress)
  t1 = time.perf_counter()
  queries = encoder.encode_queries([q.text for q in questions], progress=progress)
  t2 = time.perf_counter()
  rows, _ = exact_search(queries, passages, k=max(max(ks), mrr_k))
  ranked = [[corpus.ids[i] for i in r] for r in rows]
  relevant = [set(q.positive_ids) for q in questions]
  out = {f"mrr@{mrr_k}": metrics.mrr_at_k(ranked, relevant, mrr_k)}
  out.update({f"recall@{k}": metrics.recall_at_k(ranked, relevant, k) for k in ks})
  out.update(questions=len(questions), passages=len(corpus),
             passages_per_s=len(corpus) / (t1 - t0), queries_per_s=len(questions) / (t2 - t1))
  return out


def run(config, workdir: pathlib.Path) -> dict:
  if config.data.name != "squad_mini":
    raise ValueError(f"config.data.name={config.data.name!r}: only 'squad_mini' is supported")
  data = squad.load_squad_mini(config.data.path)
  encoder = encoder_from_config(config)
  result = evaluate(encoder, data, use_titles=config.data.use_titles, ks=tuple(config.eval.ks),
                    mrr_k=config.eval.mrr_k, max_questions=config.eval.max_questions)
  result["model"] = config.model.checkpoint + (" (random init)" if config.model.random_init else "")
  artifacts.write_json_atomic(workdir / "eval" / "metrics.json", result)
  width = max(len(k) for k in result)
  print("\n".join(f"{k:<{width}}  {v:.4f}" if isinstance(v, float) else f"{k:<{width}}  {v}"
                  for k, v in result.items()))
  return result
