"""Searches a workdir's corpus with one of its dual encoders, BM25 or their hybrid, optionally
reranked by its cross-encoder M_C: the systems of the eval table.

  python -m rocketqa_jax.search --workdir=workdirs/squad_mini "who founded the university?"
  python -m rocketqa_jax.search --workdir=W --retriever=hybrid --rerank=8 "who founded it?"
  python -m rocketqa_jax.search --workdir=W                      # questions typed on stdin
  python -m rocketqa_jax.search --workdir=W --questions=q.tsv --run=run.trec   # batch mode

The model is the workdir's latest trained dual encoder (train_de2, else de1, else de0, else the
configured checkpoint: "initial"), or --model. The config is the one the pipeline saved in the
workdir (config.json): its BM25 settings, hybrid weight, M_C margin and weight are eval's; the
corpus embeddings and BM25 index are the ones mining and eval wrote (built now if missing).
Batch mode reads `id<TAB>question` lines (or a DPR QA .csv) and writes a TREC run.
"""

from __future__ import annotations

import sys
import textwrap

import ml_collections
import numpy as np
from absl import app, flags

from rocketqa_jax import (artifacts, bm25, errors, evaluation, fusion, models, reranking,
                          retrieval, stages)
from rocketqa_jax.corpus_encoding import corpus_embeddings
from rocketqa_jax.data.datasets import load_data, read_questions
from rocketqa_jax.errors import UserError
from rocketqa_jax.host_memory import keep_freed_memory
from rocketqa_jax.workdir import INITIAL, Workdir

# Newest first: the default is the latest trained dual encoder (stages.STAGES' order).
MODELS = (*reversed(stages.DUAL_ENCODERS), INITIAL)
_WORKDIR = flags.DEFINE_string("workdir", None, "A pipeline workdir (holds config.json).")
_MODEL = flags.DEFINE_string("model", "", f"{' | '.join(reversed(MODELS))}; "
                             "default: the latest trained.")
_K = flags.DEFINE_integer("k", 5, "Passages per question.")
_INDEX = flags.DEFINE_enum("index", "exact", retrieval.INDEXES, "Exact search or ScaNN.")
_RETRIEVER = flags.DEFINE_enum("retriever", "dense", evaluation.RETRIEVERS,
                               "The dual encoder, BM25, or both fused (eval's hybrid).")
_RERANK = flags.DEFINE_integer("rerank", 0, "M_C reranks (at most) this many of the "
                               "retriever's top passages (0: none); eval's margin and weight.")
_QUESTIONS = flags.DEFINE_string("questions", "", "Batch mode: a file of questions.")
_RUN = flags.DEFINE_string("run", "", "Batch mode: the TREC run file to write.")
flags.mark_flag_as_required("workdir")


class Searcher:
  """A workdir's retriever (its dual encoder's query encoder and corpus index, BM25, or both)
  and, with `rerank`, its cross-encoder, ready for questions."""

  def __init__(self, workdir: artifacts.PathLike, model: str = "", index: str = "exact",
               retriever: str = "dense", rerank: int = 0):
    workdir = Workdir(workdir)
    if not workdir.config.exists():
      raise UserError(f"{workdir.config} is missing: is {workdir} a pipeline workdir (one "
                      "where python -m rocketqa_jax.main has finished a stage)?")
    self.config = config = ml_collections.ConfigDict(artifacts.read_json(workdir.config))
    if retriever not in evaluation.RETRIEVERS:
      raise UserError(f"retriever={retriever!r}: expected one of {list(evaluation.RETRIEVERS)}")
    if rerank < 0:
      raise UserError(f"rerank={rerank}: expected 0 (none) or a number of passages")
    if (retriever != "dense" or rerank) and "bm25" not in config:
      raise UserError(f"{workdir.config} predates BM25 and reranking: run its eval again "
                      f"(python -m rocketqa_jax.main ... --workdir={workdir} --config.stages=eval)")
    self.retriever, self.rerank = retriever, rerank
    self.corpus = load_data(config.data).corpus
    trained = [m for m in MODELS[:-1] if workdir.is_complete(m)]
    self.model = model or (trained + [INITIAL])[0]
    if self.model not in MODELS:
      raise UserError(f"--model={self.model!r}: expected one of {list(MODELS)}")
    if self.model != INITIAL and self.model not in trained:
      raise UserError(f"{workdir.stage(self.model)} has no trained towers: stage "
                      f"{self.model} has not finished (trained here: {trained or 'none'})")
    if retriever != "bm25":
      towers = workdir.towers(self.model) if self.model != INITIAL else None
      self.query_encoder, passage_encoder = models.load_encoders(config, towers)
      embeddings, self.rows = corpus_embeddings(
          passage_encoder, self.corpus, workdir.embeddings(self.model),
          use_titles=config.data.use_titles, shard_size=config.eval.shard_size,
          every_shard=True)
      self.index = retrieval.build_index(index, embeddings)
    if retriever != "dense":
      self.bm25 = bm25.for_corpus(self.corpus, workdir.bm25, **config.bm25)
    if rerank:
      if not workdir.is_complete("train_ce"):
        raise UserError(f"--rerank={rerank} needs M_C: stage train_ce of {workdir} has not "
                        "finished")
      self.scorer = models.load_scorer(config, workdir.cross_encoder)
    self.name = (self.model if retriever == "dense" else "bm25" if retriever == "bm25"
                 else f"hybrid_{self.model}") + (f"_reranked{rerank}" if rerank else "")

  def search(self, questions: list[str], k: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Per question, the top k passage ids, best first (fewer where BM25 alone matches fewer
    passages), and their scores."""
    if not 1 <= k <= len(self.corpus):
      raise UserError(f"k={k}: expected 1 to the corpus size, {len(self.corpus):,}")
    e = self.config.eval
    # A hybrid fuses each list's top 100, reranking normalizes the first stage's scores over
    # them: as eval does.
    full = self.retriever == "hybrid" or self.rerank
    depth = min(len(self.corpus), max(k, self.rerank, 100 if full else 0))
    if self.retriever != "bm25":
      ranking = retrieval.search_divided(self.index, self.rows,
                                         self.query_encoder.encode_queries(questions), depth,
                                         len(self.corpus))
    if self.retriever != "dense":
      sparse = self.bm25.search(questions, depth)
      ranking = (sparse if self.retriever == "bm25"
                 else fusion.hybrid(ranking, sparse, e.hybrid_fusion, e.hybrid_weight, depth))
    if self.rerank:
      head = reranking.head(*ranking, self.rerank, e.get("rerank_margin", 0.0))
      logits, = reranking.score_top(self.scorer, questions, self.corpus, [head],
                                    use_titles=self.config.data.use_titles)
      ranking = reranking.rerank(*ranking, head, logits, e.rerank_weight)
    rows, scores = ranking[0][:, :k], ranking[1][:, :k]
    return ([self.corpus.ids[r[r >= 0]] for r in rows],
            [s[r >= 0] for r, s in zip(rows, scores)])


def main(argv):
  try:
    search(argv)
  except Exception as e:
    errors.exit_for(e)  # What a user can fix: one line (errors.py); a bug: its traceback.
    raise


def search(argv):
  keep_freed_memory()  # Before JAX starts its threads (host_memory.py says why).
  typed = argv[1:] or None
  if typed is not None and not any(q.strip() for q in typed):
    raise UserError("the question is empty: give one in quotes, or none to type them")
  searcher = Searcher(_WORKDIR.value, _MODEL.value, _INDEX.value, _RETRIEVER.value,
                      _RERANK.value)
  corpus = searcher.corpus
  if _QUESTIONS.value:
    if not _RUN.value:
      raise app.UsageError("--questions needs --run (the TREC run file to write)")
    questions = read_questions(_QUESTIONS.value)
    if not questions:
      raise UserError(f"{_QUESTIONS.value}: no questions in the file")
    ids, scores = searcher.search([q.text for q in questions], _K.value)
    evaluation.write_trec_run(_RUN.value, [q.id for q in questions], ids, scores,
                              searcher.name)
    print(f"{len(questions)} questions, top {_K.value} each, written to {_RUN.value}")
    return
  if typed is None:
    print(f"{searcher.name} over {len(corpus):,} passages: type a question (Ctrl-D ends).",
          file=sys.stderr)
  for question in typed or (line.strip() for line in sys.stdin):
    if not question:
      continue
    ids, scores = searcher.search([question], _K.value)
    print(f"\n{question}")
    for rank, (pid, score) in enumerate(zip(ids[0], scores[0]), 1):
      text = corpus.texts[corpus.index[pid]]
      print(f"{rank:>3}. {score:8.4f}  {pid}\n" + textwrap.indent(
          textwrap.shorten(text, 300), "       "))


def cli():
  """`rocketqa-search`, the console script: the same as `python -m rocketqa_jax.search`."""
  app.run(main)


if __name__ == "__main__":
  cli()
