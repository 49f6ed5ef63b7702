"""Retrieval evaluation: embed the corpus and the eval questions, search, score."""

from __future__ import annotations

import time
from typing import Sequence

import numpy as np

from rocketqa_jax import artifacts, metrics
from rocketqa_jax.artifacts import PathLike
from rocketqa_jax.corpus_encoding import corpus_embeddings
from rocketqa_jax.data.corpus import Corpus
from rocketqa_jax.data.types import Question
from rocketqa_jax.encoder import Encoder
from rocketqa_jax.retrieval import build_index, recall_against_exact, search_divided

RETRIEVERS = ("dense", "bm25", "hybrid")  # config.eval.retrievers and eval.rerank name these.


def retriever_names(text: str) -> list[str]:
  """"dense, hybrid" -> ["dense", "hybrid"] (config.eval.retrievers, eval.rerank)."""
  return [name.strip() for name in text.split(",") if name.strip()]


def evaluate_retriever(query_encoder: Encoder, passage_encoder: Encoder, corpus: Corpus,
                       questions: Sequence[Question], *, corpus_dir: PathLike,
                       run: PathLike | None = None, run_name: str = "rocketqa_jax",
                       use_titles: bool = False, ks=(1, 5, 20, 100), mrr_k: int = 10,
                       answer_ks=(1, 5, 20), index: str = "exact", shard_size: int = 100_000,
                       progress: bool = True, ranking: dict | None = None) -> dict:
  """Retrieval metrics of `questions` against the whole corpus, whose embedding shards go to
  `corpus_dir` (shards of the same encoder are reused; each process encodes and searches its
  own, retrieval.search_divided); with `run`, the ranking is written there as a TREC run (top
  max(ks) per question); with `ranking` (a dict), its "rows" and "scores" are put there.

  `index`: "exact" (JAX, sharded over devices) or "scann"; with ScaNN, its recall@10 against
  exact search on a sample of up to 1,000 questions is printed and reported.
  """
  t0 = time.perf_counter()
  embeddings, shard_rows = corpus_embeddings(passage_encoder, corpus, corpus_dir,
                                             use_titles=use_titles, shard_size=shard_size,
                                             progress=progress)
  t1 = time.perf_counter()
  queries = query_encoder.encode_queries([q.text for q in questions], progress=progress)
  t2 = time.perf_counter()
  k = max(*ks, mrr_k, *answer_ks)
  searched = build_index(index, embeddings, k=k)
  rows, scores = search_divided(searched, shard_rows, queries, k, len(corpus))
  out = {}
  if index == "scann":
    sample = np.random.default_rng(0).permutation(len(queries))[:1000]
    exact_rows, _ = search_divided(build_index("exact", embeddings), shard_rows,
                                   queries[sample], 10, len(corpus))
    out["scann_recall@10_vs_exact"] = recall_against_exact(rows[sample, :10], exact_rows)
    out["scann_top1_equals_exact"] = float(np.mean(rows[sample, 0] == exact_rows[:, 0]))
    params = searched.params if searched is not None else {}
    print(f"ScaNN {params}: recall@10 against exact search "
          f"{out['scann_recall@10_vs_exact']:.4f} on {len(sample)} questions")
  t3 = time.perf_counter()
  out.update(ranking_metrics(rows, corpus, questions, ks=ks, mrr_k=mrr_k, answer_ks=answer_ks))
  out.update(questions=len(questions), passages=len(corpus), index=index,
             passages_per_s=len(corpus) / (t1 - t0), queries_per_s=len(questions) / (t2 - t1),
             search_queries_per_s=len(questions) / (t3 - t2))
  if run is not None:
    write_trec_run(run, [q.id for q in questions], [corpus.ids[row[row >= 0]] for row in rows],
                   scores, run_name)
  if ranking is not None:
    ranking.update(rows=rows, scores=scores)
  return out


def ranking_metrics(rows: np.ndarray, corpus: Corpus, questions: Sequence[Question], *,
                    ks=(1, 5, 20, 100), mrr_k: int = 10, answer_ks=(1, 5, 20)) -> dict:
  """MRR@mrr_k and recall@ks (questions with passage labels) and answer@answer_ks (questions
  with answer strings) of a ranking: corpus `rows` [questions, k], best first, -1 padding."""
  out = {}
  ranked = [corpus.ids[row[row >= 0]] for row in rows]
  labeled = all(q.positive_ids for q in questions)
  if labeled:  # Passage labels (SQuAD, MS MARCO): rank metrics.
    relevant = [set(q.positive_ids) for q in questions]
    out[f"mrr@{mrr_k}"] = metrics.mrr_at_k(ranked, relevant, mrr_k)
    out.update({f"recall@{k}": metrics.recall_at_k(ranked, relevant, k) for k in ks})
  if all(q.answers for q in questions):  # Answer strings (SQuAD, NQ): DPR's top-k accuracy.
    texts = [corpus.texts[row[row >= 0][:max(answer_ks)]] for row in rows]
    accuracy = metrics.answer_accuracy(texts, [q.answers for q in questions], answer_ks)
    out.update({f"answer@{k}": accuracy[k] for k in answer_ks})
  elif not labeled:
    raise ValueError("eval questions need positive passage ids or answer strings (all of them)")
  return out


def write_trec_run(path, query_ids, ranked, scores, run_name: str) -> None:
  """`qid Q0 docid rank score run` lines (trec_eval's run format), written atomically."""
  lines = (f"{qid} Q0 {doc} {rank} {score:.6f} {run_name}\n"
           for qid, docs, row in zip(query_ids, ranked, scores)
           for rank, (doc, score) in enumerate(zip(docs, row), 1))
  artifacts.write_text(path, "".join(lines))


def read_trec_run(path, questions: Sequence[Question], corpus: Corpus, k: int
                  ) -> tuple[np.ndarray, np.ndarray]:
  """A TREC run (write_trec_run's) as (rows, scores) [questions, k] in `questions`' order,
  -1 / -inf where a question has fewer than k lines."""
  by_question: dict[str, list[tuple[int, float]]] = {}
  for line in artifacts.path(path).read_text().splitlines():
    qid, _, pid, _, score, _ = line.split()
    by_question.setdefault(qid, []).append((corpus.index[pid], float(score)))
  rows = np.full((len(questions), k), -1, np.int64)
  scores = np.full((len(questions), k), -np.inf, np.float32)
  for i, q in enumerate(questions):
    ranked = by_question.get(q.id, [])[:k]
    rows[i, :len(ranked)] = [r for r, _ in ranked]
    scores[i, :len(ranked)] = [s for _, s in ranked]
  return rows, scores


def format_table(results: dict[str, dict]) -> str:
  """One line per row (a model, BM25, a hybrid, ...): its name, every float metric, and the
  seconds it cost where the rows say."""
  names = [k for k, v in next(iter(results.values())).items()
           if isinstance(v, float) and not k.endswith("_per_s") and k != "seconds"]
  timed = all("seconds" in r for r in results.values())
  lines = ["| row | " + " | ".join(names) + (" | seconds |" if timed else " |"),
           "|---" * (len(names) + 1 + timed) + "|"]
  for row, r in results.items():
    lines.append(f"| {row} | " + " | ".join(f"{r[n]:.4f}" for n in names)
                 + (f" | {r['seconds']:.1f} |" if timed else " |"))
  return "\n".join(lines)
