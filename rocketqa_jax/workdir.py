"""The workdir's layout: where every stage's artifacts live. The only code that knows it.

    <workdir>/config.json                  the config of the last accepted run
    <workdir>/timings.jsonl                a line (wall time) per stage run
    <workdir>/<stage>/stage.json           written last: the stage is complete, and what it used
    <workdir>/<stage>/checkpoints/, metrics.jsonl, tensorboard/   training stages (the Trainer's)
    <workdir>/train_de<i>/{query,passage}_encoder/   trained towers (HF / sentence-transformers)
    <workdir>/train_de{1,2}/scores/        M_C's scores of the training pairs (distillation)
    <workdir>/mine0/candidates.npz         M_D^(0)'s top-k for the labeled questions (and
                                           candidates.jsonl, where small: mining.py)
    <workdir>/train_ce/cross_encoder/      M_C
    <workdir>/denoise/scores/              M_C's scores of the candidates (pair_scoring.py)
    <workdir>/denoise/hard_negatives.jsonl, stats.json (with a table per threshold), scores.png
    <workdir>/augment/candidates.npz       M_D^(1)'s top-k for the unlabeled questions (+ .jsonl)
    <workdir>/augment/scores/              M_C's scores of them
    <workdir>/augment/pseudo_labels.jsonl, stats.json
    <workdir>/embeddings/<model>/          corpus embedding shards ("initial" or a training stage)
    <workdir>/bm25/                        the corpus' BM25 index (bm25s' files; eval, search)
    <workdir>/eval/<row>/run.trec, metrics.json; eval/metrics.json, table.md, ablation.png
                                           (a row: a model, bm25, hybrid, ..._reranked)
    <workdir>/training_curves.png

A workdir may be a local folder or `gs://bucket/path` (see artifacts.py for what that changes).
"""

from __future__ import annotations

from etils import epath

from rocketqa_jax import artifacts

TOWERS = ("query_encoder", "passage_encoder")
INITIAL = "initial"  # The configured checkpoint, zero-shot: a model name beside the stages.


class Workdir:
  """Paths of a workdir's artifacts, by what they are."""

  def __init__(self, root: artifacts.PathLike):
    self.root = artifacts.path(root)

  def __repr__(self) -> str:
    return f"Workdir({str(self.root)!r})"

  def __str__(self) -> str:
    return str(self.root)

  def stage(self, name: str) -> epath.Path:
    """The folder of a stage's own outputs."""
    return self.root / name

  def record(self, stage: str) -> epath.Path:
    """The stage's record (pipeline.py): what it was made from, written after everything else."""
    return self.stage(stage) / "stage.json"

  def started(self, stage: str) -> epath.Path:
    """The config fields a stage runs with, written before its first output (pipeline.start):
    what a resumed run must match to continue its partial outputs (checkpoints, shards)."""
    return self.stage(stage) / "started.json"

  def is_complete(self, stage: str) -> bool:
    """Whether `stage` finished here: its record is written last."""
    return self.record(stage).exists()

  def training_metrics(self, stage: str) -> epath.Path:
    """A training stage's metrics.jsonl (written by trainer.Trainer, with its checkpoints/ and
    tensorboard/ beside it)."""
    return self.stage(stage) / "metrics.jsonl"

  def towers(self, stage: str) -> tuple[epath.Path, epath.Path]:
    """(query tower, passage tower) folders of a dual-encoder training stage."""
    return tuple(self.stage(stage) / t for t in TOWERS)

  def candidates(self, stage: str) -> epath.Path:
    """Top-k retrieval of a mining stage (mine0, augment): corpus rows and scores."""
    return self.stage(stage) / "candidates.npz"

  def readable_candidates(self, stage: str) -> epath.Path:
    """The same with passage ids, as JSON lines, where there are few enough to read."""
    return self.stage(stage) / "candidates.jsonl"

  def pair_scores(self, stage: str) -> epath.Path:
    """M_C's scores of a stage's (question, passage) pairs, in resumable chunks."""
    return self.stage(stage) / "scores"

  def stats(self, stage: str) -> epath.Path:
    return self.stage(stage) / "stats.json"

  @property
  def cross_encoder(self) -> epath.Path:
    return self.stage("train_ce") / "cross_encoder"

  @property
  def hard_negatives(self) -> epath.Path:
    return self.stage("denoise") / "hard_negatives.jsonl"

  @property
  def pseudo_labels(self) -> epath.Path:
    return self.stage("augment") / "pseudo_labels.jsonl"

  def embeddings(self, model: str) -> epath.Path:
    """Corpus embedding shards of a model ("initial" or a training stage): mining and eval
    share them."""
    return self.root / "embeddings" / model

  @property
  def bm25(self) -> epath.Path:
    """The corpus' BM25 index (bm25.for_corpus): eval and search share it."""
    return self.root / "bm25"

  @property
  def eval(self) -> epath.Path:
    return self.root / "eval"

  def eval_run(self, model: str) -> epath.Path:
    """One model's ranking of the eval questions (TREC run)."""
    return self.eval / model / "run.trec"

  def eval_model_metrics(self, model: str) -> epath.Path:
    return self.eval / model / "metrics.json"

  @property
  def eval_metrics(self) -> epath.Path:
    return self.eval / "metrics.json"

  @property
  def eval_table(self) -> epath.Path:
    return self.eval / "table.md"

  @property
  def ablation_plot(self) -> epath.Path:
    return self.eval / "ablation.png"

  @property
  def training_curves(self) -> epath.Path:
    return self.root / "training_curves.png"

  @property
  def timings(self) -> epath.Path:
    return self.root / "timings.jsonl"

  @property
  def config(self) -> epath.Path:
    """The config of the last run that finished a stage (main.save_config)."""
    return self.root / "config.json"

  @property
  def previous_config(self) -> epath.Path:
    return self.root / "config.previous.json"

  def log(self, host: str) -> epath.Path:
    """A host's copy of its job log (launch/tpu_worker.sh writes it), which outlives the host."""
    return self.root / "logs" / f"{host}.log"

  def outputs(self, stage: str) -> list[epath.Path]:
    """Everything a stage wrote (what redoing it removes): its folder, and the corpus
    embeddings of the model it trained; eval's are the eval folder."""
    if stage == "eval":
      return [self.eval]
    return [self.stage(stage), self.embeddings(stage)]
