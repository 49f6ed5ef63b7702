"""The stages `main` runs, each a function of (config, workdir) that writes its outputs there.

A stage whose outputs are complete is skipped, so a rerun after a crash goes on where it stopped.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
import pathlib
import shutil

import jax
import ml_collections
import numpy as np

from rocketqa_jax import (artifacts, cross_encoder, evaluation, metrics, mining, plots,
                          sharding)
from rocketqa_jax.data import datasets
from rocketqa_jax.data.sampler import BatchSampler, PairExample, PairSampler, TrainExample
from rocketqa_jax.data.types import Question
from rocketqa_jax.dual_encoder import DualEncoder
from rocketqa_jax.encoder import Encoder, load_params, load_tower
from rocketqa_jax.tokenization import Tokenizer
from rocketqa_jax.trainer import Trainer, host_params, steps_for

log = logging.getLogger(__name__)
TOWERS = ("query_encoder", "passage_encoder")


@functools.lru_cache(maxsize=1)
def _load_data(data_json: str) -> datasets.RetrievalData:
  return datasets.load_data(ml_collections.ConfigDict(json.loads(data_json)))


def load_data(config) -> datasets.RetrievalData:
  """config.data's corpus and questions, read once per process (stages run one after another)."""
  return _load_data(config.data.to_json(sort_keys=True))


def embeddings_dir(workdir: pathlib.Path, model: str) -> pathlib.Path:
  """Corpus embeddings of a model ("initial" or a training stage), shared by mining and eval."""
  return workdir / "embeddings" / model


@dataclasses.dataclass
class DualEncoderRun:
  """Everything a dual-encoder stage builds before its first step (also bench/train.py's)."""
  trainer: Trainer
  dual_encoder: DualEncoder
  params: dict  # Both towers, initialized from the checkpoint.
  tokenizer: Tokenizer


def setup_train_de(config, workdir: pathlib.Path, data: datasets.RetrievalData,
                   examples: list[TrainExample], hard_negatives: int | None = None,
                   epochs: float = 0.0, init_towers: tuple[str, str] | None = None
                   ) -> DualEncoderRun:
  """Examples tokenized at the fixed training lengths, a mesh, a deterministic sampler and a
  trainer, both towers initialized from config.model.checkpoint (or from `init_towers`, a
  trained (query, passage) pair). `hard_negatives` per query (default
  config.train.hard_negatives) come from each example's own, topped up at random; `epochs`
  (default config.train.epochs) applies when config.train.steps is 0."""
  m, t = config.model, config.tokenizer
  c = steps_for(config.train, len(examples), epochs)
  if hard_negatives is None:
    hard_negatives = c.hard_negatives
  corpus = data.corpus
  model_dir, model, tower_params = load_tower(
      m.checkpoint, dtype=m.dtype, param_dtype=m.param_dtype, matmul_dtype=m.matmul_dtype,
      remat=m.remat, random_init=m.random_init, seed=config.seed, **m.arch.to_dict())
  tokenizer = Tokenizer.from_pretrained(model_dir, query_max_length=t.query_max_length,
                                        passage_max_length=t.passage_max_length,
                                        bucket_size=t.bucket_size)
  # Training pads every batch to the fixed training lengths: one compiled step.
  train_tokenizer = Tokenizer(tokenizer.hf, query_max_length=c.query_max_length,
                              passage_max_length=c.passage_max_length)
  queries = train_tokenizer.pad(train_tokenizer.tokenize_queries([e.query for e in examples]),
                                c.query_max_length)
  passages = train_tokenizer.pad(train_tokenizer.tokenize_passages(
      corpus.texts, corpus.titles if config.data.use_titles else None), c.passage_max_length)
  mesh = sharding.make_mesh(config.mesh.data)
  sampler = BatchSampler(examples, queries, passages, global_batch=c.global_batch,
                         hard_negatives=hard_negatives, num_devices=mesh.size, seed=config.seed)
  de = DualEncoder(model, pooling=m.pooling, normalize=m.normalize, shared=c.shared_towers)
  loss_fn = functools.partial(de.loss, mesh=mesh, negatives=c.negatives, scale=c.score_scale)
  if init_towers is None:
    params = de.init_params(tower_params)
  else:
    params = de.init_params(*(load_params(model, tower) for tower in init_towers))
  return DualEncoderRun(Trainer(c, loss_fn, sampler, mesh, workdir, seed=config.seed), de,
                        params, tokenizer)


def labeled_examples(data: datasets.RetrievalData) -> list[TrainExample]:
  """The labeled questions, positive = the question's paragraph, no mined negatives."""
  index = data.corpus.index
  return [TrainExample(q.text, tuple(index[p] for p in q.positive_ids)) for q in data.labeled]


def denoised_examples(config, workdir: pathlib.Path, data) -> list[TrainExample]:
  """The labeled questions with the hard negatives of stage denoise (or, with
  denoise.enabled=False, every non-positive candidate: the paper's undenoised ablation)."""
  path = _require(workdir / "denoise" / "hard_negatives.jsonl", "denoise")
  key = "negatives" if config.denoise.enabled else "undenoised"
  negatives = {r["id"]: r[key] for r in map(json.loads, path.open(encoding="utf-8"))}
  index = data.corpus.index
  return [TrainExample(q.text, tuple(index[p] for p in q.positive_ids),
                       tuple(index[p] for p in negatives.get(q.id, ()))) for q in data.labeled]


def _train_dual_encoder(config, workdir: pathlib.Path, stage: str, examples_fn,
                        hard_negatives: int | None = None, epochs: float = 0.0) -> pathlib.Path:
  """Trains and exports the towers of `stage`, unless they are already there."""
  out = workdir / stage
  if _skip(stage, workdir):
    return out
  data = load_data(config)
  init_towers = None
  previous = {"train_de1": "train_de0", "train_de2": "train_de1"}.get(stage)
  if config.train.init == "previous" and previous:
    init_towers = trained_towers(workdir, previous)
    if init_towers is None:
      raise FileNotFoundError(f"train.init='previous': {stage} starts from {previous}'s towers, "
                              f"which are not in {workdir}: run {previous} first")
  run = setup_train_de(config, out, data, examples_fn(data), hard_negatives, epochs,
                       init_towers)
  state = run.trainer.train(run.params)
  if jax.process_index() == 0:
    de, params = run.dual_encoder, host_params(state.params)
    for tower, side in zip(TOWERS, ("query", "passage")):
      partial = out / f".{tower}.partial"
      shutil.rmtree(partial, ignore_errors=True)
      Encoder(de.model, de.tower(params, side), run.tokenizer, pooling=de.pooling,
              normalize=de.normalize).save_pretrained(partial)
      shutil.rmtree(out / tower, ignore_errors=True)
      partial.rename(out / tower)
  return out


def train_de0(config, workdir: pathlib.Path) -> pathlib.Path:
  """M_D^(0): labeled questions, cross-batch (or in-batch) negatives plus
  `train.de0_random_negatives` random corpus passages per query, as nothing is mined yet."""
  return _train_dual_encoder(config, workdir, "train_de0", labeled_examples,
                             config.train.de0_random_negatives, config.train.de0_epochs)


def train_de1(config, workdir: pathlib.Path) -> pathlib.Path:
  """M_D^(1): labeled questions with denoised hard negatives (plus cross-batch ones)."""
  return _train_dual_encoder(config, workdir, "train_de1",
                             lambda data: denoised_examples(config, workdir, data))


def train_de2(config, workdir: pathlib.Path) -> pathlib.Path:
  """M_D^(2): M_D^(1)'s examples plus the pseudo-labeled questions of stage augment."""
  def examples(data):
    path = _require(workdir / "augment" / "pseudo_labels.jsonl", "augment")
    index = data.corpus.index
    pseudo = [TrainExample(r["text"], (index[r["positive"]],),
                           tuple(index[p] for p in r["negatives"]))
              for r in map(json.loads, path.open(encoding="utf-8"))]
    return denoised_examples(config, workdir, data) + pseudo
  return _train_dual_encoder(config, workdir, "train_de2", examples)


def _require(path: pathlib.Path, stage: str) -> pathlib.Path:
  if not path.exists():
    raise FileNotFoundError(f"{path} is missing: run stage {stage} first")
  return path


def trained_towers(workdir: pathlib.Path, stage: str) -> tuple[str, str] | None:
  """(query tower, passage tower) directories a finished training stage exported, or None."""
  towers = tuple(str(workdir / stage / t) for t in TOWERS)
  return towers if all((pathlib.Path(t) / "model.safetensors").exists() for t in towers) else None


# The file each stage writes last: once it is there, the stage is complete and a rerun skips it.
_LAST_OUTPUT = {"mine0": "mine0/candidates.jsonl",
                "train_ce": "train_ce/cross_encoder/model.safetensors",
                "denoise": "denoise/hard_negatives.jsonl", "augment": "augment/pseudo_labels.jsonl"}


def is_complete(stage: str, workdir: pathlib.Path) -> bool:
  """Whether `stage` finished in `workdir` (so running it again skips it); eval always runs."""
  if stage.startswith("train_de"):
    return trained_towers(workdir, stage) is not None
  return stage in _LAST_OUTPUT and (workdir / _LAST_OUTPUT[stage]).exists()


def _skip(stage: str, workdir: pathlib.Path) -> bool:
  if is_complete(stage, workdir):
    log.info("%s: %s is complete, skipping", stage, workdir / stage)
    return True
  return False


def _dual_encoder(config, workdir: pathlib.Path, stage: str) -> tuple[Encoder, Encoder]:
  towers = trained_towers(workdir, stage)
  if towers is None:
    raise FileNotFoundError(f"the dual encoder of stage {stage} is not in {workdir}: run that "
                            "stage first")
  return (evaluation.encoder_from_config(config, towers[0]),
          evaluation.encoder_from_config(config, towers[1]))


def mine0(config, workdir: pathlib.Path) -> pathlib.Path:
  """Top-k passages of M_D^(0) (stage train_de0) for every labeled training question."""
  out = workdir / "mine0"
  if _skip("mine0", workdir):
    return out
  query_encoder, passage_encoder = _dual_encoder(config, workdir, "train_de0")
  data = load_data(config)
  mining.mine(query_encoder, passage_encoder, data.corpus, data.labeled, out,
              k=config.mine.top_k, use_titles=config.data.use_titles,
              shard_size=config.eval.shard_size,
              corpus_dir=embeddings_dir(workdir, "train_de0"))
  return out


def train_ce(config, workdir: pathlib.Path) -> pathlib.Path:
  """Cross-encoder M_C on the labeled questions: each positive against negatives sampled from
  M_D^(0)'s top `ce.sample_from_top` candidates (stage mine0), minus labeled positives."""
  out = workdir / "train_ce"
  if _skip("train_ce", workdir):
    return out
  candidates_path = _require(workdir / "mine0" / "candidates.jsonl", "mine0")
  c, m = config.ce, config.model
  data = load_data(config)
  corpus, candidates = data.corpus, mining.read_candidates(candidates_path)
  model_dir, bert, bert_params = load_tower(
      c.checkpoint or m.checkpoint, dtype=m.dtype, param_dtype=m.param_dtype,
      matmul_dtype=m.matmul_dtype, remat=m.remat,
      random_init=m.random_init and not c.checkpoint, seed=config.seed,
      **(m.arch.to_dict() if m.random_init and not c.checkpoint else {}))
  tokenizer = Tokenizer.from_pretrained(model_dir, passage_max_length=c.max_length)
  examples = []
  for q in data.labeled:
    positives = tuple(corpus.index[p] for p in q.positive_ids)
    top = candidates[q.id][0][:c.sample_from_top]
    examples.append(PairExample(q.text, positives, tuple(
        corpus.index[p] for p in top if corpus.index[p] not in positives)))
  c = steps_for(c, len(examples))
  mesh = sharding.make_mesh(config.mesh.data)
  sampler = PairSampler(examples, tokenizer, corpus.texts,
                        corpus.titles if config.data.use_titles else None,
                        global_batch=c.global_batch, negatives=c.negatives,
                        num_devices=mesh.size, seed=config.seed, max_length=c.max_length)
  model = cross_encoder.CrossEncoder(bert.config, dtype=bert.dtype, param_dtype=bert.param_dtype,
                                     matmul_dtype=bert.matmul_dtype, remat=m.remat,
                                     pooling=c.pooling)
  loss = functools.partial(cross_encoder.loss_fn, model=model, group_size=1 + c.negatives,
                           mode=c.loss)
  params = cross_encoder.init_params(model, bert_params, seed=config.seed)
  state = Trainer(c, loss, sampler, mesh, out, seed=config.seed).train(params)
  if jax.process_index() == 0:
    partial = out / ".cross_encoder.partial"
    shutil.rmtree(partial, ignore_errors=True)
    cross_encoder.save_cross_encoder(partial, model, host_params(state.params), tokenizer)
    partial.rename(out / "cross_encoder")
  return out


def denoise(config, workdir: pathlib.Path) -> pathlib.Path:
  """M_C rescores M_D^(0)'s top `denoise.top_k` for each labeled question: a candidate becomes a
  hard negative only if it is not a labeled positive and M_C scores it below
  `denoise.negative_threshold`; the rest are dropped as likely unlabeled positives.

  Writes `hard_negatives.jsonl` ({"id", "negatives", "dropped", "undenoised"}: the last is every
  non-positive candidate, for the paper's "hard negatives without denoising" ablation) and
  `stats.json`, with how often a dropped or kept candidate contains an answer string.
  """
  out = workdir / "denoise"
  if _skip("denoise", workdir):
    return out
  candidates = mining.read_candidates(_require(workdir / "mine0" / "candidates.jsonl", "mine0"))
  scorer = _scorer(config, workdir)
  d = config.denoise
  data = load_data(config)
  corpus = data.corpus
  top = {q.id: candidates[q.id][0][:d.top_k] for q in data.labeled}
  # Labeled positives are never negatives: only the other candidates are scored.
  pairs = [(q, pid) for q in data.labeled for pid in top[q.id] if pid not in q.positive_ids]
  scores = _score_pairs(config, scorer, corpus, pairs)
  records = {q.id: {"id": q.id, "negatives": [], "dropped": [], "undenoised": []}
             for q in data.labeled}
  counts = {"candidates": sum(map(len, top.values())), "scored": len(pairs),
            "labeled_positives": sum(len(set(top[q.id]) & set(q.positive_ids))
                                     for q in data.labeled),
            "negatives": 0, "dropped": 0, "dropped_with_answer": 0, "negatives_with_answer": 0}
  for (q, pid), score in zip(pairs, scores):
    r = records[q.id]
    r["undenoised"].append(pid)
    kind = "negatives" if score < d.negative_threshold else "dropped"
    r[kind].append(pid)
    counts[kind] += 1
    counts[f"{kind}_with_answer"] += metrics.has_answer(q.answers, corpus.texts[corpus.index[pid]])
  stats = dict(counts, top_k=d.top_k, negative_threshold=d.negative_threshold,
               dropped_answer_rate=counts["dropped_with_answer"] / max(counts["dropped"], 1),
               negative_answer_rate=counts["negatives_with_answer"] / max(counts["negatives"], 1))
  artifacts.write_json_atomic(out / "stats.json", stats)
  artifacts.write_text_atomic(out / "hard_negatives.jsonl",
                              "".join(json.dumps(r) + "\n" for r in records.values()))
  log.info("denoise: %s", stats)
  return out


def _score_pairs(config, scorer, corpus, pairs: list[tuple[Question, str]]) -> np.ndarray:
  """M_C's probability for each (question, passage id)."""
  rows = [corpus.index[pid] for _, pid in pairs]
  titles = [corpus.titles[r] for r in rows] if config.data.use_titles else None
  return scorer.score([q.text for q, _ in pairs], [corpus.texts[r] for r in rows], titles,
                      progress=True)


def _scorer(config, workdir: pathlib.Path) -> cross_encoder.CrossEncoderScorer:
  return cross_encoder.load_cross_encoder(
      _require(workdir / "train_ce" / "cross_encoder", "train_ce"),
      max_length=config.ce.max_length, batch_size=config.eval.batch_size,
      dtype=config.model.dtype, matmul_dtype=config.model.matmul_dtype)


def augment(config, workdir: pathlib.Path) -> pathlib.Path:
  """Pseudo-labels for unlabeled questions: M_D^(1) retrieves the top `augment.top_k`, M_C scores
  them; the top-scored passage is a positive if its score > `augment.positive_threshold`, and
  passages below `augment.negative_threshold` are its negatives. The questions' true labels are
  never used, except in stats.json to measure how often a pseudo-positive is right."""
  out = workdir / "augment"
  if _skip("augment", workdir):
    return out
  a = config.augment
  query_encoder, passage_encoder = _dual_encoder(config, workdir, "train_de1")
  scorer = _scorer(config, workdir)
  data = load_data(config)
  corpus = data.corpus
  hidden = data.unlabeled[:a.max_questions] if a.max_questions else data.unlabeled
  questions = [Question(q.id, q.text) for q in hidden]  # Labels withheld.
  mining.mine(query_encoder, passage_encoder, corpus, questions, out / "retrieval",
              k=a.top_k, use_titles=config.data.use_titles, shard_size=config.eval.shard_size,
              corpus_dir=embeddings_dir(workdir, "train_de1"))
  candidates = mining.read_candidates(out / "retrieval" / "candidates.jsonl")
  pairs = [(q, pid) for q in questions for pid in candidates[q.id][0]]
  scores = _score_pairs(config, scorer, corpus, pairs)
  by_question: dict[str, list] = {}
  for (q, pid), score in zip(pairs, scores):
    by_question.setdefault(q.id, []).append((float(score), pid))
  records = []
  # Where the unlabeled questions still carry labels (SQuAD-mini's withheld ones), measure the
  # pseudo-labels against them: right positives, and negatives that are the true passage or
  # hold an answer string (false negatives the threshold let through).
  truth = {"positive_is_true": 0, "positive_with_answer": 0, "negatives_true": 0,
           "negatives_with_answer": 0}
  for q, hidden_q in zip(questions, hidden):
    scored = by_question.get(q.id, [])
    best_score, best = max(scored) if scored else (0.0, None)
    if best is None or best_score <= a.positive_threshold:
      continue
    negatives = [pid for score, pid in scored if score < a.negative_threshold]
    records.append({"id": q.id, "text": q.text, "positive": best, "score": best_score,
                    "negatives": negatives})
    answer = lambda pid: metrics.has_answer(hidden_q.answers, corpus.texts[corpus.index[pid]])
    truth["positive_is_true"] += best in hidden_q.positive_ids
    truth["positive_with_answer"] += answer(best)
    truth["negatives_true"] += sum(pid in hidden_q.positive_ids for pid in negatives)
    truth["negatives_with_answer"] += sum(map(answer, negatives))
  negatives = sum(len(r["negatives"]) for r in records)
  stats = {"questions": len(questions), "pairs_scored": len(pairs),
           "pseudo_labeled": len(records), "negatives": negatives,
           "top_k": a.top_k, "positive_threshold": a.positive_threshold,
           "negative_threshold": a.negative_threshold}
  if all(q.positive_ids for q in hidden):
    stats.update(pseudo_positive_precision=truth["positive_is_true"] / max(len(records), 1),
                 negatives_true_rate=truth["negatives_true"] / max(negatives, 1))
  if all(q.answers for q in hidden):
    stats.update(pseudo_positive_answer_rate=truth["positive_with_answer"] / max(len(records), 1),
                 negatives_answer_rate=truth["negatives_with_answer"] / max(negatives, 1))
  artifacts.write_json_atomic(out / "stats.json", stats)
  artifacts.write_text_atomic(out / "pseudo_labels.jsonl",
                              "".join(json.dumps(r) + "\n" for r in records))
  log.info("augment: %s", stats)
  return out


def evaluate(config, workdir: pathlib.Path) -> dict:
  """The configured checkpoint (zero-shot) and, when trained, the workdir's dual encoder, on the
  eval questions: per model `eval/<model>/` (corpus shards, run.trec, metrics.json), and the
  table of all of them in `eval/metrics.json` and `eval/table.md`."""
  data = load_data(config)
  e = config.eval
  questions = data.eval[:e.max_questions] if e.max_questions else data.eval
  models = {"initial": (config.model.checkpoint, config.model.checkpoint)}
  for stage in ("train_de0", "train_de1", "train_de2"):
    if trained_towers(workdir, stage):
      models[stage] = trained_towers(workdir, stage)
  results = {}
  for name, (query_dir, passage_dir) in models.items():
    passage_encoder = evaluation.encoder_from_config(config, passage_dir)
    query_encoder = (passage_encoder if query_dir == passage_dir
                     else evaluation.encoder_from_config(config, query_dir))
    results[name] = evaluation.evaluate(
        query_encoder, passage_encoder, data.corpus, questions, workdir / "eval" / name,
        use_titles=config.data.use_titles, ks=tuple(e.ks), mrr_k=e.mrr_k,
        answer_ks=tuple(e.answer_ks), index=e.index, shard_size=e.shard_size, run_name=name,
        corpus_dir=embeddings_dir(workdir, name))
    results[name]["model"] = passage_dir
  table = evaluation.format_table(results)
  artifacts.write_json_atomic(workdir / "eval" / "metrics.json", results)
  artifacts.write_text_atomic(workdir / "eval" / "table.md", table + "\n")
  if jax.process_index() == 0:
    plots.plot_ablation(results, workdir / "eval" / "ablation.png")
    plots.plot_training_curves(workdir, workdir / "training_curves.png")
  print(table)
  return results
