"""The RocketQA pipeline's stages, and their table (`STAGES`, at the end).

Each stage is a function of (config, workdir) that reads the artifacts of the stages before it
and writes its own; it does no bookkeeping. The paper's rules are in their own modules
(`losses.py`: cross-batch negatives, `denoising.py`, `augmentation.py`); where each artifact
lives is `workdir.py`'s; when a stage runs, and whether what it wrote still matches the config,
is `pipeline.py`'s.
"""

from __future__ import annotations

import array
import dataclasses
import functools
import json
import logging
import time
from typing import Callable, Iterator

import jax
import numpy as np

from rocketqa_jax import (artifacts, augmentation, bm25, cross_encoder, denoising,
                          evaluation, fusion, metrics, mining, models, pair_scoring, plots,
                          reranking, sharding)
from rocketqa_jax.data.datasets import RetrievalData, load_data
from rocketqa_jax.data.sampler import BatchSampler, PairExample, PairSampler, TrainExample
from rocketqa_jax.data.types import Question
from rocketqa_jax.dual_encoder import DualEncoder
from rocketqa_jax.encoder import Encoder
from rocketqa_jax.tokenization import Tokenizer
from rocketqa_jax.trainer import Trainer, host_params, steps_for
from rocketqa_jax.workdir import INITIAL, Workdir

log = logging.getLogger(__name__)


@dataclasses.dataclass
class DualEncoderRun:
  """Everything a dual-encoder stage builds before its first step (also bench/train.py's)."""
  trainer: Trainer
  dual_encoder: DualEncoder
  params: dict  # Both towers, initialized from the checkpoint.
  tokenizer: Tokenizer  # Inference lengths: what the exported towers carry.


def setup_train_de(config, out, data: RetrievalData, examples: list[TrainExample],
                   hard_negatives: int | None = None, epochs: float = 0.0,
                   init_towers: tuple | None = None) -> DualEncoderRun:
  """A mesh, a deterministic sampler that tokenizes each step's rows at the fixed training
  lengths, and a trainer writing into the folder `out`, both towers initialized from
  config.model.checkpoint (or from `init_towers`, a trained (query, passage) pair).
  `hard_negatives` per query (default config.train.hard_negatives) come from each example's
  own, topped up at random; `epochs` (default config.train.epochs) applies when
  config.train.steps is 0."""
  c = steps_for(config.train, len(examples), epochs)
  if hard_negatives is None:
    hard_negatives = c.hard_negatives
  de, params, tokenizer = models.dual_encoder(config, c.shared_towers, init_towers)
  # Training pads every batch to the fixed training lengths: one compiled step.
  train_tokenizer = Tokenizer(tokenizer.hf, query_max_length=c.query_max_length,
                              passage_max_length=c.passage_max_length)
  corpus, query_texts = data.corpus, [e.query for e in examples]
  titles = corpus.titles if config.data.use_titles else None
  queries = lambda rows: train_tokenizer.pad(train_tokenizer.tokenize_queries(
      [query_texts[r] for r in rows]), c.query_max_length, fixed_length=True)
  passages = lambda rows: train_tokenizer.pad(train_tokenizer.tokenize_passages(
      corpus.texts[rows], None if titles is None else titles[rows]), c.passage_max_length,
      fixed_length=True)
  mesh = sharding.make_mesh(config.mesh.data)
  sampler = BatchSampler(examples, queries, passages, corpus_size=len(corpus),
                         global_batch=c.global_batch, hard_negatives=hard_negatives,
                         num_devices=mesh.size, seed=config.seed)
  loss_fn = functools.partial(de.loss, mesh=mesh, negatives=c.negatives, scale=c.score_scale,
                              distill_weight=c.distill_weight,
                              distill_temperature=c.distill_temperature)
  return DualEncoderRun(Trainer(c, loss_fn, sampler, mesh, out, seed=config.seed), de, params,
                        tokenizer)


def _positive_rows(corpus, question: Question) -> tuple[int, ...]:
  return corpus.index.rows_of(question.positive_ids, f"question {question.id}'s positives")


def labeled_examples(data: RetrievalData) -> list[TrainExample]:
  """The labeled questions, positive = the question's paragraph, no mined negatives."""
  return [TrainExample(q.text, _positive_rows(data.corpus, q)) for q in data.labeled]


def denoised_examples(config, workdir: Workdir, data: RetrievalData) -> list[TrainExample]:
  """The labeled questions with the hard negatives of stage denoise (or, with
  denoise.enabled=False, every non-positive candidate: the paper's undenoised ablation)."""
  key = "negatives" if config.denoise.enabled else "undenoised"
  path, index = workdir.hard_negatives, data.corpus.index
  # Int32 arrays: NQ's 5.9M mined negatives are 24 MB, 200 MB as Python ints.
  negatives = {r["id"]: np.asarray(index.rows_of(r[key], f"{path}: question {r['id']}"),
                                   np.int32) for r in _read_jsonl(path)}
  return [TrainExample(q.text, _positive_rows(data.corpus, q), negatives.get(q.id, ()))
          for q in data.labeled]


def pseudo_labeled_examples(workdir: Workdir, data: RetrievalData) -> list[TrainExample]:
  path, index = workdir.pseudo_labels, data.corpus.index
  return [TrainExample(r["text"], index.rows_of([r["positive"]], f"{path}: question {r['id']}"),
                       np.asarray(index.rows_of(r["negatives"], f"{path}: question {r['id']}"),
                                  np.int32))
          for r in _read_jsonl(path)]


def _read_jsonl(path) -> Iterator[dict]:
  """One record at a time (a stage's file may hold 50M passage ids)."""
  with path.open("r", encoding="utf-8") as f:
    for line in f:
      yield json.loads(line)


def _write_lines(path, lines: list[str]) -> None:
  """JSON lines already serialised (a string each is smaller than its record's dict)."""
  artifacts.write_text(path, "".join(line + "\n" for line in lines))


def _with_teacher(config, workdir: Workdir, stage: str, examples: list[TrainExample]
                  ) -> list[TrainExample]:
  """The examples with M_C's logits of each positive and hard negative (distillation): every
  pair scored into `stage`'s scores folder, resumable like denoise's (which scored the
  negatives once already: at NQ's size, a second denoise's worth of M_C time)."""
  counts = [len(ex.positives) + len(ex.hard_negatives) for ex in examples]
  pair_questions = np.repeat(np.arange(len(examples)), counts)
  pair_rows = np.concatenate([np.asarray([*ex.positives, *ex.hard_negatives], np.int64)
                              for ex in examples])
  questions = [Question(str(i), ex.query) for i, ex in enumerate(examples)]
  p = np.clip(_score(config, workdir, stage, questions, pair_questions, pair_rows), 1e-6,
              1 - 1e-6)
  logits = np.split((np.log(p) - np.log1p(-p)).astype(np.float32), np.cumsum(counts)[:-1])
  return [dataclasses.replace(ex, teacher_positives=row[:len(ex.positives)],
                              teacher_negatives=row[len(ex.positives):])
          for ex, row in zip(examples, logits)]


def _train_dual_encoder(config, workdir: Workdir, stage: str, examples: list[TrainExample],
                        hard_negatives: int | None = None, epochs: float = 0.0,
                        init: str = "checkpoint") -> None:
  """Trains the dual encoder of `stage` and exports its towers; with train.distill_weight,
  the stage distills M_C's scores of each example's passages too (losses.py). `init`:
  "previous" starts from the previous stage's towers, "checkpoint" from model.checkpoint."""
  if config.train.distill_weight and stage != "train_de0":
    examples = _with_teacher(config, workdir, stage, examples)
  previous = {"train_de1": "train_de0", "train_de2": "train_de1"}.get(stage)
  towers = workdir.towers(previous) if init == "previous" and previous else None
  run = setup_train_de(config, workdir.stage(stage), load_data(config.data), examples,
                       hard_negatives, epochs, towers)
  state = run.trainer.train(run.params)
  if jax.process_index() == 0:
    de, params = run.dual_encoder, host_params(state.params)
    for directory, side in zip(workdir.towers(stage), ("query", "passage")):
      Encoder(de.model, de.tower(params, side), run.tokenizer, pooling=de.pooling,
              normalize=de.normalize).save_pretrained(directory)


def train_de0(config, workdir: Workdir) -> None:
  """M_D^(0): labeled questions, cross-batch (or in-batch) negatives plus
  `train.de0_random_negatives` random corpus passages per query, as nothing is mined yet."""
  _train_dual_encoder(config, workdir, "train_de0", labeled_examples(load_data(config.data)),
                      config.train.de0_random_negatives, config.train.de0_epochs)


def train_de1(config, workdir: Workdir) -> None:
  """M_D^(1): labeled questions with denoised hard negatives (plus cross-batch ones)."""
  _train_dual_encoder(config, workdir, "train_de1",
                      denoised_examples(config, workdir, load_data(config.data)),
                      init=config.train.init)


def train_de2(config, workdir: Workdir) -> None:
  """M_D^(2): M_D^(1)'s examples plus the pseudo-labeled questions of stage augment, for
  `train.de2_epochs`, from `train.de2_init` (each "" / 0: as train_de1)."""
  data = load_data(config.data)
  _train_dual_encoder(config, workdir, "train_de2", denoised_examples(config, workdir, data)
                      + pseudo_labeled_examples(workdir, data), epochs=config.train.de2_epochs,
                      init=config.train.de2_init or config.train.init)


def _writer(path):
  """`path` in the process that writes shared artifacts (process 0), else None."""
  return path if jax.process_index() == 0 else None


def _mine(config, workdir: Workdir, stage: str, model: str, questions: list[Question],
          k: int, with_bm25: bool = False) -> mining.Candidates:
  """The top-k of `model`'s dual encoder for `questions` (with BM25's in turns), written as
  `stage`'s candidates."""
  query_encoder, passage_encoder = models.load_encoders(config, workdir.towers(model))
  corpus = load_data(config.data).corpus
  sparse = None
  if with_bm25:
    index = bm25.for_corpus(corpus, workdir.bm25, **config.bm25)
    sparse = index.search([q.text for q in questions], k)
  return mining.mine(query_encoder, passage_encoder, corpus, questions,
                     corpus_dir=workdir.embeddings(model), k=k, index=config.mine.index,
                     out=_writer(workdir.candidates(stage)),
                     readable=_writer(workdir.readable_candidates(stage)),
                     use_titles=config.data.use_titles, shard_size=config.eval.shard_size,
                     join=sparse)


def _read_candidates(workdir: Workdir, stage: str, questions) -> mining.Candidates:
  path = workdir.candidates(stage)
  return mining.read_candidates(path).check_questions(questions, path)


def mine0(config, workdir: Workdir) -> None:
  """Top-k passages of M_D^(0) (stage train_de0) for every labeled training question; with
  mine.sources "dense,bm25", BM25's top passages in turns with them (DPR's BM25 negatives),
  so train_ce learns from both kinds and denoise judges both."""
  _mine(config, workdir, "mine0", "train_de0", load_data(config.data).labeled,
        config.mine.top_k, with_bm25=_mines_bm25(config))


def _mines_bm25(config) -> bool:
  return "bm25" in evaluation.retriever_names(config.mine.sources)


def _mine0_fields(config) -> tuple[str, ...]:
  """What mine0's candidates depend on; BM25's settings only where it mines with BM25 (so a
  workdir mined before mine.sources existed, dense only, still matches)."""
  return (*_RETRIEVE, "mine.top_k", *(("mine.sources", "bm25") if _mines_bm25(config) else ()))


def train_ce(config, workdir: Workdir) -> None:
  """Cross-encoder M_C on the labeled questions: each positive against negatives sampled from
  M_D^(0)'s top `ce.sample_from_top` candidates (stage mine0), minus labeled positives."""
  data = load_data(config.data)
  corpus, candidates = data.corpus, _read_candidates(workdir, "mine0", data.labeled)
  examples = []
  for i, q in enumerate(data.labeled):
    positives = _positive_rows(corpus, q)
    top = candidates.top(i, config.ce.sample_from_top)
    # An int32 array: MS MARCO's 503k questions x top 1,000 are 2 GB, 18 GB as Python ints.
    examples.append(PairExample(q.text, positives, top[~np.isin(top, positives)]))
  c = steps_for(config.ce, len(examples))
  model, params, tokenizer = models.cross_encoder_to_train(config)
  mesh = sharding.make_mesh(config.mesh.data)
  sampler = PairSampler(examples, tokenizer, corpus.texts,
                        corpus.titles if config.data.use_titles else None,
                        global_batch=c.global_batch, negatives=c.negatives,
                        num_devices=mesh.size, seed=config.seed, max_length=c.max_length)
  loss = functools.partial(cross_encoder.loss_fn, model=model, group_size=1 + c.negatives,
                           mode=c.loss)
  state = Trainer(c, loss, sampler, mesh, workdir.stage("train_ce"), seed=config.seed).train(
      params)
  if jax.process_index() == 0:
    cross_encoder.save_cross_encoder(workdir.cross_encoder, model, host_params(state.params),
                                     tokenizer)


def _score(config, workdir: Workdir, stage: str, questions: list[Question],
           pair_questions: np.ndarray, pair_rows: np.ndarray) -> np.ndarray:
  """M_C's probability of each (questions[pair_questions[i]], corpus row pair_rows[i]), pairs in
  question order; scored in chunks over every process (pair_scoring.py) into `stage`'s scores
  folder. The pairs are two int arrays, never Python lists: 50M of them are 800 MB."""
  scorer = models.load_scorer(config, workdir.cross_encoder)
  return pair_scoring.score_pairs(scorer, [q.text for q in questions], pair_questions,
                                  pair_rows, load_data(config.data).corpus,
                                  directory=workdir.pair_scores(stage),
                                  chunk_pairs=config.ce.score_chunk,
                                  use_titles=config.data.use_titles)


def _per_question(pair_questions: np.ndarray, values: np.ndarray, questions: int):
  """values (in question order) cut into one slice per question."""
  return np.split(values, np.searchsorted(pair_questions, np.arange(1, questions)))


def denoise(config, workdir: Workdir) -> None:
  """M_C rescores M_D^(0)'s top `denoise.top_k` for each labeled question and
  `denoising.denoise` sorts them into hard negatives and dropped ones.

  Writes `hard_negatives.jsonl` ({"id", "negatives", "dropped", "undenoised"}: passage ids; the
  last is every non-positive candidate, for the paper's "hard negatives without denoising"
  ablation) and `stats.json`, with how often a dropped or kept candidate contains an answer
  string. Every process scores its share of the pairs; process 0 then applies the rule.
  """
  d = config.denoise
  data = load_data(config.data)
  corpus, candidates = data.corpus, _read_candidates(workdir, "mine0", data.labeled)
  positives = [_positive_rows(corpus, q) for q in data.labeled]
  # Labeled positives are never negatives: only the other candidates are scored.
  pair_questions, pair_rows = array.array("i"), array.array("i")
  for i, q_positives in enumerate(positives):
    judged = denoising.to_score(candidates.top(i, d.top_k).tolist(), q_positives)
    pair_questions.extend([i] * len(judged))
    pair_rows.extend(judged)
  pair_questions, pair_rows = np.asarray(pair_questions), np.asarray(pair_rows)
  scores = _score(config, workdir, "denoise", data.labeled, pair_questions, pair_rows)
  if jax.process_index() != 0:
    return
  counts = dict.fromkeys(("candidates", "labeled_positives", "negatives", "dropped"), 0)
  lines, answered = [], array.array("b")  # Per scored pair (question order): has an answer?
  for i, (q, rows, q_scores) in enumerate(zip(
      data.labeled, _per_question(pair_questions, pair_rows, len(positives)),
      _per_question(pair_questions, scores, len(positives)))):
    result = denoising.denoise(candidates.top(i, d.top_k).tolist(),
                               dict(zip(rows.tolist(), q_scores.tolist())), positives[i],
                               d.negative_threshold)
    for name, value in result.stats.items():
      counts[name] += value
    answered.extend(metrics.has_answer(q.answers, corpus.texts[row]) for row in rows.tolist())
    lines.append(json.dumps({"id": q.id, **{kind: corpus.ids[list(getattr(result, kind))]
                                            for kind in ("negatives", "dropped", "undenoised")}}))
  # The rule's own split (score < threshold) is the table's row at the configured threshold.
  answered = np.asarray(answered, bool)
  at_threshold, = denoising.threshold_table(scores, answered, (d.negative_threshold,))
  counts.update(negatives_with_answer=at_threshold["negatives_with_answer"],
                dropped_with_answer=at_threshold["dropped_with_answer"])
  stats = dict(counts, scored=len(pair_rows), top_k=d.top_k,
               negative_threshold=d.negative_threshold,
               dropped_answer_rate=counts["dropped_with_answer"] / max(counts["dropped"], 1),
               negative_answer_rate=counts["negatives_with_answer"] / max(counts["negatives"], 1),
               thresholds=denoising.threshold_table(scores, answered),
               histogram=denoising.score_histogram(scores, answered))
  plots.plot_score_histogram(stats["histogram"], d.negative_threshold,
                             workdir.stage("denoise") / "scores.png")
  artifacts.write_json(workdir.stats("denoise"), stats)
  _write_lines(workdir.hard_negatives, lines)
  log.info("denoise: %s", {k: v for k, v in stats.items() if k != "histogram"})


def augment(config, workdir: Workdir) -> None:
  """Pseudo-labels for unlabeled questions: M_D^(1) retrieves the top `augment.top_k`, M_C
  scores them, `augmentation.pseudo_label` keeps the confident ones. The questions' true labels
  are never used, except in stats.json to measure how often a pseudo-positive is right. Every
  process mines and scores its share; process 0 then applies the rule."""
  a = config.augment
  data = load_data(config.data)
  corpus = data.corpus
  hidden = data.unlabeled[:a.max_questions] if a.max_questions else data.unlabeled
  questions = [Question(q.id, q.text) for q in hidden]  # Labels withheld.
  candidates = _mine(config, workdir, "augment", "train_de1", questions, a.top_k)
  found = candidates.rows >= 0
  pair_questions, pair_rows = np.nonzero(found)[0], candidates.rows[found]
  scores = _score(config, workdir, "augment", questions, pair_questions, pair_rows)
  if jax.process_index() != 0:
    return
  lines = []
  # Where the unlabeled questions still carry labels (SQuAD-mini's withheld ones), measure the
  # pseudo-labels against them: right positives, and negatives that are the true passage or
  # hold an answer string (false negatives the threshold let through).
  truth = dict.fromkeys(("positive_is_true", "positive_with_answer", "negatives_true",
                         "negatives_with_answer"), 0)
  negatives = 0
  for hidden_q, rows, q_scores in zip(hidden, _per_question(pair_questions, pair_rows,
                                                             len(hidden)),
                                      _per_question(pair_questions, scores, len(hidden))):
    label = augmentation.pseudo_label(list(zip(rows.tolist(), q_scores.tolist())),
                                      a.positive_threshold, a.negative_threshold)
    if label is None:
      continue
    lines.append(json.dumps({"id": hidden_q.id, "text": hidden_q.text,
                             "positive": corpus.ids[label.positive], "score": label.score,
                             "negatives": corpus.ids[list(label.negatives)]}))
    negatives += len(label.negatives)
    true_rows = _positive_rows(corpus, hidden_q)
    answer = lambda row: metrics.has_answer(hidden_q.answers, corpus.texts[row])
    truth["positive_is_true"] += label.positive in true_rows
    truth["positive_with_answer"] += answer(label.positive)
    truth["negatives_true"] += sum(row in true_rows for row in label.negatives)
    truth["negatives_with_answer"] += sum(map(answer, label.negatives))
  labeled = len(lines)
  stats = {"questions": len(questions), "pairs_scored": len(pair_rows),
           "pseudo_labeled": labeled, "negatives": negatives,
           "top_k": a.top_k, "positive_threshold": a.positive_threshold,
           "negative_threshold": a.negative_threshold}
  if all(q.positive_ids for q in hidden):
    stats.update(pseudo_positive_precision=truth["positive_is_true"] / max(labeled, 1),
                 negatives_true_rate=truth["negatives_true"] / max(negatives, 1))
  if all(q.answers for q in hidden):
    stats.update(pseudo_positive_answer_rate=truth["positive_with_answer"] / max(labeled, 1),
                 negatives_answer_rate=truth["negatives_with_answer"] / max(negatives, 1))
  artifacts.write_json(workdir.stats("augment"), stats)
  _write_lines(workdir.pseudo_labels, lines)
  log.info("augment: %s", stats)


def evaluate(config, workdir: Workdir) -> dict:
  """The configured checkpoint (zero-shot, "initial"), every trained dual encoder of the
  workdir, and (eval.retrievers) BM25 and the hybrids, then (eval.rerank) those reranked by M_C,
  on the eval questions: per row `eval/<row>/` (run.trec, metrics.json; "seconds": what the row
  cost beyond the rows it builds on), and the table of all in `eval/metrics.json` and
  `eval/table.md`, with plots."""
  data = load_data(config.data)
  e = config.eval
  questions = data.eval[:e.max_questions] if e.max_questions else data.eval
  texts = [q.text for q in questions]
  models_to_eval = {INITIAL: None}
  models_to_eval.update({s: workdir.towers(s) for s in DUAL_ENCODERS if workdir.is_complete(s)})
  retrievers = set(evaluation.retriever_names(e.retrievers))
  metric_args = dict(ks=tuple(e.ks), mrr_k=e.mrr_k, answer_ks=tuple(e.answer_ks))
  results, rankings = {}, {}  # Per row: its metrics; its ranking (rows, scores) [questions, k].

  def add(row: str, ranking, model: str, started: float) -> None:
    rankings[row] = ranking
    results[row] = dict(evaluation.ranking_metrics(ranking[0], data.corpus, questions,
                                                   **metric_args),
                        model=model, questions=len(questions), passages=len(data.corpus),
                        seconds=time.perf_counter() - started)
    if jax.process_index() == 0 and row not in models_to_eval:  # Dense rows wrote theirs.
      evaluation.write_trec_run(workdir.eval_run(row), [q.id for q in questions],
                                [data.corpus.ids[r[r >= 0]] for r in ranking[0]], ranking[1],
                                row)

  for name, towers in models_to_eval.items():
    started, ranking = time.perf_counter(), {}
    query_encoder, passage_encoder = models.load_encoders(config, towers)
    results[name] = evaluation.evaluate_retriever(
        query_encoder, passage_encoder, data.corpus, questions,
        corpus_dir=workdir.embeddings(name), run=_writer(workdir.eval_run(name)),
        run_name=name, use_titles=config.data.use_titles, index=e.index,
        shard_size=e.shard_size, ranking=ranking, **metric_args)
    results[name].update(model=str(towers[1]) if towers else config.model.checkpoint,
                         seconds=time.perf_counter() - started)
    rankings[name] = (ranking["rows"], ranking["scores"])
  newest = name  # The last dual encoder (models_to_eval is in pipeline order): the hybrid's.
  k = rankings[newest][0].shape[1]
  if retrievers & {"bm25", "hybrid"}:
    started = time.perf_counter()
    index = bm25.for_corpus(data.corpus, workdir.bm25, **config.bm25)
    sparse = index.search(texts, k)
    if "bm25" in retrievers:
      add("bm25", sparse, f"BM25 (bm25s, {config.bm25.stemmer or 'no'} stemmer)", started)
    # The newest dual encoder's hybrid, and the zero-shot model's: what training adds to it.
    hybrids = {"hybrid": newest, "hybrid_initial": INITIAL} if "hybrid" in retrievers else {}
    for row, model in hybrids.items():
      if row == "hybrid_initial" and newest == INITIAL:
        continue
      started = time.perf_counter()
      add(row, fusion.hybrid(rankings[model], sparse, e.hybrid_fusion, e.hybrid_weight, k),
          f"{model} + BM25 ({e.hybrid_fusion}, BM25 weight {e.hybrid_weight})", started)
  rerank = {"dense": newest, "bm25": "bm25", "hybrid": "hybrid"}  # The newest model's rows.
  to_rerank = [rerank[r] for r in evaluation.retriever_names(e.rerank) if rerank[r] in rankings]
  if to_rerank and e.rerank_depth and not workdir.is_complete("train_ce"):
    log.info("eval.rerank: no reranked rows, M_C is not trained (stage train_ce)")
  elif to_rerank and e.rerank_depth:
    started = time.perf_counter()
    scorer = models.load_scorer(config, workdir.cross_encoder)
    heads = [reranking.head(*rankings[row], e.rerank_depth, e.rerank_margin)
             for row in to_rerank]
    logits = reranking.score_top(scorer, texts, data.corpus, heads,
                                 use_titles=config.data.use_titles, progress=True)
    share = (time.perf_counter() - started) / len(to_rerank)  # Pairs scored once: split evenly.
    margin = f" within {e.rerank_margin} of the best" if e.rerank_margin else ""
    for row, head, row_logits in zip(to_rerank, heads, logits):
      add(f"{row}_reranked", reranking.rerank(*rankings[row], head, row_logits, e.rerank_weight),
          f"{row} reranked by M_C (top {e.rerank_depth}{margin}, M_C weight {e.rerank_weight})",
          time.perf_counter() - share)
      results[f"{row}_reranked"]["pairs_per_question"] = float((head >= 0).sum(1).mean())
  if jax.process_index() == 0:
    for name, result in results.items():
      artifacts.write_json(workdir.eval_model_metrics(name), result)
  table = evaluation.format_table(results)
  if jax.process_index() == 0:
    artifacts.write_json(workdir.eval_metrics, results)
    artifacts.write_text(workdir.eval_table, table + "\n")
    plots.plot_ablation(results, workdir.ablation_plot)
    plots.plot_training_curves({s: workdir.training_metrics(s) for s in TRAINING_STAGES},
                               workdir.training_curves)
  print(table)
  return results


@dataclasses.dataclass(frozen=True)
class Stage:
  """A step of the pipeline, as `pipeline.py` runs and records it."""
  name: str
  run: Callable  # run(config, workdir): reads `inputs`' artifacts, writes its own.
  inputs: tuple[str, ...]  # The stages whose artifacts it reads.
  # Config sections or fields its outputs depend on (or a function of the config giving them).
  config_fields: tuple[str, ...] | Callable
  trains: str = ""  # "dual_encoder" (its towers are a model eval scores) or "cross_encoder".
  resumable: bool = True  # False: runs every time, on whichever inputs are complete (eval).


# What shapes a training run. Logging and checkpoint cadence (`log_every`, `checkpoint_every`,
# `keep_checkpoints`) never changes an output, so it is never recorded (pipeline.UNRECORDED).
_TRAIN = ("seed", "data", "model", "tokenizer", "mesh", "train.steps", "train.epochs",
          "train.global_batch", "train.query_max_length", "train.passage_max_length",
          "train.dropout", "train.negatives", "train.score_scale", "train.shared_towers",
          "train.learning_rate", "train.warmup_fraction", "train.weight_decay", "train.clip_norm")
_RETRIEVE = ("data", "model", "tokenizer", "mine.index")
_SCORE = ("data", "model.dtype", "model.matmul_dtype", "ce.max_length")



def _hard_negative_training_fields(config) -> tuple[str, ...]:
  """train_de1's and train_de2's fields; the distillation's only where it is on (so workdirs
  trained before it existed still match)."""
  return (*_TRAIN, "train.hard_negatives", "train.init", "denoise.enabled",
          *(("train.distill_weight", "train.distill_temperature", "ce.max_length")
            if config.train.distill_weight else ()))


def _train_de2_fields(config) -> tuple[str, ...]:
  """train_de1's fields, and train_de2's own start and length where set (so workdirs trained
  before they existed still match)."""
  own = [f"train.{field}" for field in ("de2_init", "de2_epochs") if config.train[field]]
  return (*_hard_negative_training_fields(config), *own)


STAGES = (
    Stage("train_de0", train_de0, (), (*_TRAIN, "train.de0_epochs", "train.de0_random_negatives"),
          trains="dual_encoder"),
    Stage("mine0", mine0, ("train_de0",), _mine0_fields),
    Stage("train_ce", train_ce, ("mine0",), ("seed", "data", "model", "mesh", "ce"),
          trains="cross_encoder"),
    Stage("denoise", denoise, ("mine0", "train_ce"),
          (*_SCORE, "denoise.top_k", "denoise.negative_threshold")),
    Stage("train_de1", train_de1, ("denoise", "train_ce"), _hard_negative_training_fields,
          trains="dual_encoder"),
    Stage("augment", augment, ("train_de1", "train_ce"), (*_RETRIEVE, *_SCORE, "augment")),
    Stage("train_de2", train_de2, ("denoise", "augment", "train_ce"),
          _train_de2_fields, trains="dual_encoder"),
    Stage("eval", evaluate, ("train_de0", "train_de1", "train_de2"), (), resumable=False),
)
BY_NAME = {s.name: s for s in STAGES}
NAMES = tuple(BY_NAME)
DUAL_ENCODERS = tuple(s.name for s in STAGES if s.trains == "dual_encoder")
TRAINING_STAGES = tuple(s.name for s in STAGES if s.trains)
