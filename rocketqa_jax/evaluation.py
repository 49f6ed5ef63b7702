"""Retrieval evaluation: embed the corpus and the eval questions, search exactly, score."""

from __future__ import annotations

import functools
import os
import pathlib
import time
from typing import Sequence

import numpy as np

from rocketqa_jax import artifacts, metrics
from rocketqa_jax.corpus_encoding import corpus_embeddings
from rocketqa_jax.data.types import Corpus, Question
from rocketqa_jax.encoder import Encoder, load_encoder
from rocketqa_jax.retrieval import ExactIndex, ScannIndex, recall_against_exact

INDEXES = ("exact", "scann")


def encoder_from_config(config, checkpoint: str | None = None) -> Encoder:
  """The encoder the config describes; `checkpoint` replaces config.model.checkpoint (a trained
  tower). Random init applies only to the configured checkpoint."""
  m, t = config.model, config.tokenizer
  random_init = m.random_init and checkpoint in (None, m.checkpoint)
  return load_encoder(checkpoint or m.checkpoint, random_init=random_init, seed=config.seed,
                      pooling=m.pooling, normalize=m.normalize, dtype=m.dtype,
                      param_dtype=m.param_dtype, matmul_dtype=m.matmul_dtype, remat=m.remat,
                      batch_size=config.eval.batch_size,
                      query_max_length=t.query_max_length, bucket_size=t.bucket_size,
                      passage_max_length=t.passage_max_length,
                      **(m.arch.to_dict() if random_init else {}))


def evaluate(query_encoder: Encoder, passage_encoder: Encoder, corpus: Corpus,
             questions: Sequence[Question], out_dir: str | os.PathLike, *,
             use_titles: bool = False, ks=(1, 5, 20, 100), mrr_k: int = 10,
             answer_ks=(1, 5, 20), index: str = "exact", shard_size: int = 100_000,
             run_name: str = "rocketqa_jax", progress: bool = True,
             corpus_dir: str | os.PathLike | None = None) -> dict:
  """Retrieval metrics of `questions` against the whole corpus; writes into `out_dir`
  `run.trec` (TREC run, top max(ks) per question) and `metrics.json`, and the corpus embedding
  shards into `corpus_dir` (default `out_dir/corpus`; shards of the same encoder are reused).

  `index`: "exact" (JAX, sharded over devices) or "scann"; with ScaNN, its recall@10 against
  exact search on a sample of up to 1,000 questions is printed and reported.
  """
  if index not in INDEXES:
    raise ValueError(f"index={index!r}: expected one of {INDEXES}")
  out_dir = pathlib.Path(out_dir)
  t0 = time.perf_counter()
  corpus_dir = out_dir / "corpus" if corpus_dir is None else pathlib.Path(corpus_dir)
  embeddings, ids = corpus_embeddings(passage_encoder, corpus, corpus_dir, use_titles=use_titles,
                                      shard_size=shard_size, progress=progress)
  t1 = time.perf_counter()
  queries = query_encoder.encode_queries([q.text for q in questions], progress=progress)
  t2 = time.perf_counter()
  k = max(*ks, mrr_k, *answer_ks)
  exact = ExactIndex(embeddings, ids)
  out = {}
  if index == "scann":
    scann = ScannIndex.build(embeddings, ids, k=k)
    rows, scores = scann.search_rows(queries, k)
    sample = np.random.default_rng(0).permutation(len(queries))[:1000]
    exact_rows, _ = exact.search_rows(queries[sample], 10)
    out["scann_recall@10_vs_exact"] = recall_against_exact(rows[sample, :10], exact_rows)
    out["scann_top1_equals_exact"] = float(np.mean(rows[sample, 0] == exact_rows[:, 0]))
    print(f"ScaNN {scann.params}: recall@10 against exact search "
          f"{out['scann_recall@10_vs_exact']:.4f} on {len(sample)} questions")
  else:
    rows, scores = exact.search_rows(queries, k)
  t3 = time.perf_counter()
  ranked = [[ids[i] for i in r] for r in rows]
  labeled = all(q.positive_ids for q in questions)
  if labeled:  # Passage labels (SQuAD, MS MARCO): rank metrics.
    relevant = [set(q.positive_ids) for q in questions]
    out[f"mrr@{mrr_k}"] = metrics.mrr_at_k(ranked, relevant, mrr_k)
    out.update({f"recall@{k}": metrics.recall_at_k(ranked, relevant, k) for k in ks})
  if all(q.answers for q in questions):  # Answer strings (SQuAD, NQ): DPR's top-k accuracy.
    tokens = functools.lru_cache(maxsize=None)(lambda row: metrics.dpr_tokens(corpus.texts[row]))
    answers = [[metrics.dpr_tokens(a) for a in q.answers] for q in questions]
    first = [next((r for r, row in enumerate(rs, 1) if metrics.contains_any(tokens(row), a)), 0)
             for rs, a in zip(rows[:, :max(answer_ks)], answers)]
    out.update({f"answer@{k}": float(np.mean([0 < f <= k for f in first])) for k in answer_ks})
  elif not labeled:
    raise ValueError("eval questions need positive passage ids or answer strings (all of them)")
  out.update(questions=len(questions), passages=len(corpus), index=index,
             passages_per_s=len(corpus) / (t1 - t0), queries_per_s=len(questions) / (t2 - t1),
             search_queries_per_s=len(questions) / (t3 - t2))
  write_trec_run(out_dir / "run.trec", [q.id for q in questions], ranked, scores, run_name)
  artifacts.write_json_atomic(out_dir / "metrics.json", out)
  return out


def write_trec_run(path, query_ids, ranked, scores, run_name: str) -> None:
  """`qid Q0 docid rank score run` lines (trec_eval's run format), written atomically."""
  lines = (f"{qid} Q0 {doc} {rank} {score:.6f} {run_name}\n"
           for qid, docs, row in zip(query_ids, ranked, scores)
           for rank, (doc, score) in enumerate(zip(docs, row), 1))
  artifacts.write_text_atomic(path, "".join(lines))


def format_table(results: dict[str, dict]) -> str:
  """One row per model: name and every float metric."""
  names = [k for k, v in next(iter(results.values())).items()
           if isinstance(v, float) and not k.endswith("_per_s")]
  lines = ["| model | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
  for model, r in results.items():
    lines.append(f"| {model} | " + " | ".join(f"{r[n]:.4f}" for n in names) + " |")
  return "\n".join(lines)
