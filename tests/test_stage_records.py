"""The stage table and its records (pipeline.py): stale outputs are refused, naming the field;
config.rerun redoes a stage and everything after it."""

import pathlib
import runpy

import pytest

from rocketqa_jax import artifacts, pipeline, stages
from rocketqa_jax.workdir import Workdir

REPO = pathlib.Path(__file__).resolve().parents[1]


def _config(name="tiny", **overrides):
  config = runpy.run_path(str(REPO / f"configs/{name}.py"))["get_config"]()
  for key, value in overrides.items():
    *section, field = key.split(".")
    (config[section[0]] if section else config)[field] = value
  return config


def _finish(config, workdir, *names):
  """What main does after a stage ran: an output, then the record."""
  for name in names:
    artifacts.write_text(workdir.stage(name) / "output.txt", name)
    pipeline.record(stages.BY_NAME[name], config, workdir, seconds=1.0)


@pytest.mark.parametrize("name", ["squad_mini", "tiny", "nq", "msmarco"])
def test_every_recorded_field_is_in_the_config(name):
  config = runpy.run_path(str(REPO / f"configs/{name}.py"))["get_config"]()
  for stage in stages.STAGES:
    fields = pipeline.recorded_fields(stage, config)  # KeyError on a field the config lacks.
    assert not [f for f in fields if f.rsplit(".", 1)[-1] in pipeline.UNRECORDED]
    for name in stage.inputs:
      assert stages.NAMES.index(name) < stages.NAMES.index(stage.name)
  assert pipeline.recorded_fields(stages.BY_NAME["mine0"], config)["mine.top_k"] == \
      config.mine.top_k


def test_changed_field_is_refused_with_both_values_and_the_ways_out(tmp_path):
  config, workdir = _config(), Workdir(tmp_path)
  _finish(config, workdir, "train_de0", "mine0")
  assert pipeline.plan(config, workdir)  # Nothing changed: accepted.
  changed = _config(**{"mine.top_k": 12})
  with pytest.raises(pipeline.StaleStageError) as e:
    pipeline.plan(changed, workdir)
  message = str(e.value)
  assert "stage mine0" in message and "config.mine.top_k=10" in message and "has 12" in message
  assert "Use a new workdir" in message and "--config.rerun=mine0" in message
  # A field no stage's outputs depend on is free to change; logging cadence too.
  pipeline.plan(_config(**{"eval.max_questions": 3, "train.log_every": 7}), workdir)
  # A stage that only reads train_de0 (not in config.stages) is checked as an input.
  with pytest.raises(pipeline.StaleStageError, match="stage train_de0.*train.learning_rate"):
    pipeline.plan(_config(**{"stages": "mine0", "train.learning_rate": 0.5}), workdir)


def test_rerun_removes_that_stage_and_every_later_one(tmp_path):
  config, workdir = _config(), Workdir(tmp_path)
  _finish(config, workdir, "train_de0", "mine0", "train_ce")
  artifacts.write_text(workdir.embeddings("train_de0") / "manifest.json", "{}")
  artifacts.write_text(workdir.eval_table, "old")
  rerun = _config(**{"mine.top_k": 12, "rerun": "mine0"})
  chosen = pipeline.plan(rerun, workdir)
  assert [s.name for s in chosen] == list(stages.NAMES)
  assert workdir.is_complete("train_de0") and (workdir.stage("train_de0") / "output.txt").exists()
  assert workdir.embeddings("train_de0").exists()  # train_de0 is kept, with its embeddings.
  for name in ("mine0", "train_ce"):
    assert not workdir.stage(name).exists()
  assert not workdir.eval.exists()


def test_redone_input_makes_its_readers_stale(tmp_path):
  config, workdir = _config(), Workdir(tmp_path)
  _finish(config, workdir, "train_de0", "mine0")
  record = artifacts.read_json(workdir.record("train_de0"))
  artifacts.write_json(workdir.record("train_de0"), dict(record, fingerprint="other"))
  with pytest.raises(pipeline.StaleStageError, match="made from other outputs of stage train_de0"):
    pipeline.plan(config, workdir)


def test_missing_input_is_named_before_anything_runs(tmp_path):
  workdir = Workdir(tmp_path)
  with pytest.raises(pipeline.MissingInputError, match="stage denoise reads the outputs of "
                     "stage mine0.*run that stage first"):
    pipeline.plan(_config(**{"stages": "denoise"}), workdir)
  pipeline.plan(_config(**{"stages": "train_de0,mine0"}), workdir)  # Provided by this run.
  pipeline.plan(_config(**{"stages": "eval"}), workdir)  # Eval takes what is there.
  assert not list(tmp_path.iterdir())  # Planning wrote nothing.


def test_mine0_records_bm25_settings_only_where_it_mines_with_bm25():
  dense = pipeline.recorded_fields(stages.BY_NAME["mine0"], _config(**{"mine.sources": "dense"}))
  assert "mine.sources" not in dense and not any(f.startswith("bm25.") for f in dense)
  joined = pipeline.recorded_fields(stages.BY_NAME["mine0"],
                                    _config(**{"mine.sources": "dense,bm25"}))
  assert joined["mine.sources"] == "dense,bm25" and joined["bm25.stemmer"] == "english"


def test_another_m_c_length_keeps_the_dual_encoder_stages_before_it(tmp_path):
  """ce.max_length is train_ce's (and what follows): a workdir made at 224 keeps train_de0 and
  mine0 for M_C at 160 and is told to redo train_ce."""
  get = runpy.run_path(str(REPO / "configs/squad_mini.py"))["get_config"]
  config, workdir = get(), Workdir(tmp_path)
  assert (config.ce.max_length, config.eval.rerank_depth, config.eval.rerank_margin) == (224, 8, 2)
  _finish(config, workdir, "train_de0", "mine0", "train_ce")
  short = get()
  short.ce.max_length = 160
  with pytest.raises(pipeline.StaleStageError, match="stage train_ce.*ce.max_length=224"):
    pipeline.plan(short, workdir)
  short.rerun = "train_ce"
  assert [s.name for s in pipeline.plan(short, workdir)][:2] == ["train_de0", "mine0"]
  assert workdir.is_complete("mine0") and not workdir.stage("train_ce").exists()


def test_train_de2_starts_and_lasts_as_configured(tmp_path, monkeypatch):
  """train_de2 continues from train_de1's towers for train.de2_epochs where they are set, and
  otherwise trains as train_de1 (from model.checkpoint, for train.epochs); its record holds
  its own fields only where set, so workdirs made before them still match."""
  workdir, calls = Workdir(tmp_path), []

  class Stop(Exception):
    pass

  def setup_train_de(config, out, data, examples, hard_negatives, epochs, init_towers):
    calls.append((out.name, epochs, init_towers))
    raise Stop  # What follows (training, export) is the trainer's tests' business.

  monkeypatch.setattr(stages, "setup_train_de", setup_train_de)
  monkeypatch.setattr(stages, "load_data", lambda data: None)
  monkeypatch.setattr(stages, "denoised_examples", lambda config, workdir, data: [])
  monkeypatch.setattr(stages, "pseudo_labeled_examples", lambda workdir, data: [])
  de1 = workdir.towers("train_de1")
  cold = _config("squad_mini", **{"train.de2_init": "checkpoint"})
  for config, expected in [(_config("squad_mini"), (0.5, de1)), (cold, (0.5, None)),
                           (_config("nq"), (0.0, None)),
                           (_config("nq", **{"train.init": "previous"}), (0.0, de1))]:
    calls.clear()
    for name in ("train_de1", "train_de2"):
      with pytest.raises(Stop):
        stages.BY_NAME[name].run(config, workdir)
    init_de1 = workdir.towers("train_de0") if config.train.init == "previous" else None
    assert calls == [("train_de1", 0.0, init_de1), ("train_de2", *expected)]
  recorded = lambda config: pipeline.recorded_fields(stages.BY_NAME["train_de2"], config)
  assert recorded(_config("squad_mini"))["train.de2_init"] == "previous"
  assert recorded(_config("squad_mini"))["train.de2_epochs"] == 0.5
  assert not {"train.de2_init", "train.de2_epochs"} & set(recorded(_config("nq")))
