"""What a user gets wrong, answered in a line: the probes of the reliability issue as a table
(input -> the message's fragment), growing with every mistake found; and the bugs they showed."""

import copy
import json
import re
import runpy
import signal

import numpy as np
import pytest
from conftest import REPO, run_python

from rocketqa_jax import errors
from rocketqa_jax.data import dpr, msmarco
from rocketqa_jax.data.lines import DataError
from rocketqa_jax.faults import ENV as KILL_AFTER

TINY = ["-m", "rocketqa_jax.main", "--config=configs/tiny.py"]

# (command-line arguments after `python`, a fragment the one-line message must hold).
COMMAND_PROBES = [
    (TINY + ["--config.train.steps=abc"], "--config.train.steps=abc: invalid literal for int()"),
    (["-m", "rocketqa_jax.main", "--config=configs/nope.py"], "no file 'configs/nope.py'"),
    (TINY + ["--config.model.pooler=x"], "config.model has no field 'pooler'"),
    (TINY + ["--config.model.pooling=max"], "config.model.pooling='max': expected one of"),
    (TINY + ["--config.eval.max_questions=-3"], "config.eval.max_questions=-3: must be >= 0"),
    (TINY + ["--config.train.learning_rate=-1"], "config.train.learning_rate=-1.0: must be "
                                                 "positive"),
    (TINY + ["--config.ce.learning_rate=0"], "config.ce.learning_rate=0.0: must be positive"),
    (TINY + ["--config.train.warmup_fraction=1.5"], "config.train.warmup_fraction=1.5: must be "
                                                    "in [0, 1]"),
    (TINY + ["--config.mesh.data=0"], "config.mesh.data=0: a device count, or -1 for all"),
    (TINY + ["--config.train.steps=-2"], "config.train.steps=-2: must be >= 0"),
    (TINY + ["--config.data.name=dpr", "--config.data.corpus=gs://b/psgs_w100.tsv",
             "--config.data.train=gs://b/train.json", "--config.data.eval=gs://b/test.csv"],
     "config.data.corpus: gs://b/psgs_w100.tsv: data files are read from a local disk"),
    (TINY + ["--config.data.path=/nowhere/squad"], "SQuAD v1.1 dev not found in /nowhere/squad"),
    (TINY + ["--config.bm25.stemmer=klingon"], "config.bm25.stemmer='klingon': expected one of"),
    (TINY + ["--config.eval.retrievers=dense", "--config.eval.rerank=hybrid"],
     "config.eval.rerank='hybrid': 'hybrid' is not in config.eval.retrievers='dense'"),
    (TINY + ["--config.eval.rerank_weight=2"], "config.eval.rerank_weight=2.0: must be in [0, 1]"),
    (TINY + ["--config.bm25.k1=0"], "config.bm25.k1=0.0: must be positive"),
    (["-m", "rocketqa_jax.search", "--workdir={tmp}/none", "who?"], "config.json is missing"),
]


@pytest.mark.parametrize("args, fragment", COMMAND_PROBES,
                         ids=[" ".join(a[2:])[:60] for a, _ in COMMAND_PROBES])
def test_a_mistake_on_the_command_line_gets_one_line(tmp_path, args, fragment):
  out = run_python([a.format(tmp=tmp_path) for a in args] + (
      [f"--workdir={tmp_path}/w"] if "rocketqa_jax.main" in args else []), timeout=300)
  assert out.returncode == errors.EXIT_CODE, out.stderr[-3000:]
  assert "Traceback" not in out.stderr and fragment in out.stderr, out.stderr[-3000:]
  assert out.stderr.startswith("error: ") and len(out.stderr.strip().splitlines()) <= 3, (
      out.stderr[-3000:])  # Refused at start-up, before any stage runs.
  assert not (tmp_path / "w" / "config.json").exists()  # Nothing written for a refused run.


def test_verbose_shows_the_traceback(tmp_path):
  args = TINY + [f"--workdir={tmp_path}", "--config.eval.max_questions=-3"]
  assert "Traceback" in run_python(args + ["--verbose"]).stderr
  assert "Traceback" in run_python(args, env={errors.VERBOSE_ENV: "1"}).stderr


def test_a_failed_run_leaves_the_workdirs_config_as_it_was(tmp_path):
  """Bug 2: config.json was rewritten before anything was checked, so one bad invocation on a
  finished workdir broke `search` on it."""
  done = run_python(TINY + [f"--workdir={tmp_path}", "--config.stages=train_de0",
                            "--config.train.steps=2"])
  assert done.returncode == 0, done.stderr[-3000:]
  saved = (tmp_path / "config.json").read_bytes()
  for bad in (["--config.data.path=/nowhere/squad"], ["--config.model.pooling=cls"]):
    out = run_python(TINY + [f"--workdir={tmp_path}", "--config.stages=train_de0,eval",
                             "--config.train.steps=2", *bad])
    assert out.returncode == errors.EXIT_CODE and "Traceback" not in out.stderr, out.stderr
    assert (tmp_path / "config.json").read_bytes() == saved
  assert not (tmp_path / "config.previous.json").exists()


def test_search_refuses_a_bad_k_and_an_empty_question(tmp_path):
  """Bug 8 (--k=0 / -1 failed inside JAX) and `search ""` (printed nothing, exit 0)."""
  done = run_python(TINY + [f"--workdir={tmp_path}", "--config.stages=train_de0",
                            "--config.train.steps=1"])
  assert done.returncode == 0, done.stderr[-3000:]
  search = ["-m", "rocketqa_jax.search", f"--workdir={tmp_path}"]
  for args, fragment in ((["--k=0", "who?"], "k=0: expected 1 to the corpus size, 2,067"),
                         (["--k=-1", "who?"], "k=-1: expected 1"),
                         ([""], "the question is empty"),
                         (["--model=train_de2", "who?"], "train_de2 has no trained towers"),
                         (["--rerank=-1", "who?"], "rerank=-1: expected 0 (none) or a number"),
                         (["--rerank=3", "who?"], "--rerank=3 needs M_C: stage train_ce")):
    out = run_python(search + args)
    assert out.returncode == errors.EXIT_CODE and fragment in out.stderr, out.stderr[-2000:]
    assert "Traceback" not in out.stderr


def test_empty_inputs_and_a_string_for_a_list(minilm):
  """Bugs 6 and 7: empty lists encode to [0, dim]; one string is refused, not encoded a
  character at a time."""
  assert minilm.encode_passages([]).shape == (0, 384)
  assert minilm.encode_queries([]).shape == (0, 384)
  with pytest.raises(TypeError, match=r"queries: expected a list of strings, got one string "
                                      r"'who is that'; pass \['who is that'\]"):
    minilm.encode_queries("who is that")
  with pytest.raises(TypeError, match="texts: expected a list"):
    minilm.encode_passages("a passage")


def test_load_encoder_refuses_an_unknown_pooling():
  import rocketqa_jax
  with pytest.raises(ValueError, match=r"pooling='max': expected one of \['cls', 'mean'\]"):
    rocketqa_jax.load_encoder("all-MiniLM-L6-v2", pooling="max")


def test_an_empty_corpus_and_a_repeated_query_id_name_the_file(tmp_path):
  """Bugs 10 (an empty passages file read as an empty corpus) and 9 (duplicate query ids
  kept)."""
  empty = tmp_path / "psgs.tsv"
  empty.write_text("id\ttext\ttitle\n")
  with pytest.raises(errors.UserError, match=f"{empty}: no passages: the corpus is empty"):
    dpr.read_passages_tsv(empty)
  queries = tmp_path / "queries.tsv"
  queries.write_text("1\twho?\n2\twhat?\n1\twhen?\n")
  with pytest.raises(DataError, match=f"{queries}:3: a new query id \\(line 1 has this one\\)"):
    msmarco.read_queries(queries)


def test_every_user_error_kind_is_one_type():
  from rocketqa_jax import config_lib, hf_checkpoint, pipeline
  for kind in (DataError, hf_checkpoint.CheckpointError, pipeline.StaleStageError,
               pipeline.MissingInputError, errors.ConfigError):
    assert issubclass(kind, errors.UserError) and issubclass(kind, ValueError)
  config = runpy.run_path(str(REPO / "configs" / "tiny.py"))["get_config"]()
  config.train.learning_rate = float("nan")
  with pytest.raises(errors.ConfigError, match="config.train.learning_rate=nan: must be positive"):
    config_lib.validate(config)
  full = OSError(28, "No space left on device", "/w/x.npz")
  assert errors.message(full).startswith("/w/x.npz: no space left on device (or the file size "
                                         "limit). Free space")
  assert errors.message(KeyError("bug")) is None  # A bug keeps its traceback.


def test_a_stage_started_with_another_optimizer_is_not_resumed(tmp_path):
  """Bug 1: killed after checkpoint 4 and rerun with another learning rate, train_de0 resumed
  silently and trained a mixed-schedule model; now the run stops, naming the field."""
  args = TINY + [f"--workdir={tmp_path}", "--config.stages=train_de0", "--config.train.steps=6"]
  killed = run_python(args, env={KILL_AFTER: "step:4"})
  assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
  out = run_python(args + ["--config.train.learning_rate=0.5"])
  assert out.returncode == errors.EXIT_CODE and "Traceback" not in out.stderr, out.stderr[-3000:]
  assert ("stage train_de0 in " in out.stderr and "was started with "
          "config.train.learning_rate=0.001 and not finished; this run has 0.5" in out.stderr)
  assert "--config.rerun=train_de0" in out.stderr
  same = run_python(args)  # The same config resumes.
  assert same.returncode == 0 and "resumed from step 4" in same.stderr, same.stderr[-3000:]


def test_a_diverged_training_fails_instead_of_exporting_a_nan_model(tmp_path):
  """Bug 3: at learning rate 1e38 step 1 sent the weights to ~1e38, steps 2-6 were skipped as
  NaN, and the stage exported the towers; eval ranked NaN embeddings (MRR@10 0.0) with exit 0."""
  out = run_python(TINY + [f"--workdir={tmp_path}", "--config.stages=train_de0,eval",
                           "--config.train.learning_rate=1e38"])
  assert out.returncode == errors.EXIT_CODE and "Traceback" not in out.stderr, out.stderr[-3000:]
  assert "of 6 updates were skipped for a non-finite loss or gradients" in out.stderr
  assert "now 1e+38" in out.stderr
  assert not (tmp_path / "train_de0" / "stage.json").exists()
  assert not (tmp_path / "train_de0" / "query_encoder").exists()


def test_non_finite_weights_give_an_error_not_nan_embeddings(minilm):
  import jax
  broken = copy.copy(minilm)
  broken.params = jax.tree.map(lambda x: x * np.nan, minilm.params)
  with pytest.raises(errors.UserError, match="non-finite embeddings for 2 of 2 queries"):
    broken.encode_queries(["who?", "what?"])


def test_a_labeled_positive_missing_from_the_corpus_names_the_file(tmp_path):
  """Bug 4: a qrels line naming passage 999999 made training die with a bare KeyError and eval
  count the question a miss silently."""
  from rocketqa_jax.data import datasets
  (tmp_path / "collection.tsv").write_text("1\tpassage one\n2\tpassage two\n")
  (tmp_path / "queries.tsv").write_text("q1\twho?\nq2\twhat?\n")
  (tmp_path / "good.qrels").write_text("q1 0 1 1\nq2 0 2 1\n")
  (tmp_path / "bad.qrels").write_text("q1 0 1 1\nq2 0 999999 1\n")
  config = runpy.run_path(str(REPO / "configs" / "tiny.py"))["get_config"]().data
  config.name, config.corpus = "msmarco", str(tmp_path / "collection.tsv")
  config.train = config.eval = str(tmp_path / "queries.tsv")
  config.train_qrels, config.eval_qrels = str(tmp_path / "bad.qrels"), str(tmp_path / "good.qrels")
  with pytest.raises(errors.InputError, match=(
      rf"config.data.train_qrels \({tmp_path}/bad.qrels\): question q2 names passage 999999, "
      r"which is not in the corpus \(1 of 2 questions")):
    datasets.load_data(config)
  config.train_qrels = str(tmp_path / "good.qrels")
  assert len(datasets.load_data(config).labeled) == 2


def test_a_corrupt_latest_checkpoint_falls_back_to_the_one_before(tmp_path):
  """Bug 11: a truncated checkpoint stopped the run instead of using the older one kept."""
  args = TINY + [f"--workdir={tmp_path}", "--config.stages=train_de0", "--config.train.steps=6"]
  killed = run_python(args, env={KILL_AFTER: "step:4"})
  assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
  checkpoints = tmp_path / "train_de0" / "checkpoints"
  assert sorted(p.name for p in checkpoints.iterdir() if p.name.isdigit()) == ["2", "4"]
  for metadata in (checkpoints / "4").rglob("_METADATA"):
    metadata.write_bytes(metadata.read_bytes()[:10])  # Truncated, as by a full disk.
  done = run_python(args)
  assert done.returncode == 0, done.stderr[-3000:]
  assert f"checkpoint {checkpoints}/4 cannot be read" in done.stderr
  assert "resumed from step 2" in done.stderr
  steps = [json.loads(line)["step"] for line in (tmp_path / "train_de0" / "metrics.jsonl").open()]
  assert steps == [1, 2, 3, 4, 5, 6]


@pytest.mark.parametrize("content, fragment", [
    (b'{"data": [{"title": "A\xff", "paragraphs": []}]}', "not UTF-8 text (invalid start byte "
                                                          "at byte 22)"),
    (b'{"data": []}', "no passages: the corpus is empty"),
    (b'{"data": [{"title": "A", "paragraphs": [{"context": "x", "qas": []}]}, '
     b'{"title": "A", "paragraphs": [{"context": "y", "qas": []}]}]}',
     "passage id 'A#0' appears more than once"),
    (b'{"data": [{"title": "A"}]}', "data[0]: expected SQuAD v1.1 layout"),
])
def test_a_bad_squad_file_is_named(tmp_path, content, fragment):
  from rocketqa_jax.data import squad
  path = tmp_path / "dev-v1.1.json"
  path.write_bytes(content)
  with pytest.raises(errors.InputError, match=re.escape(f"{path}: ") + ".*" + re.escape(fragment)):
    squad.read_squad(path)


def test_a_truncated_shard_or_weights_file_is_named(tmp_path):
  """Two of the five errors that did not name the file: a cut-short embeddings shard
  (BadZipFile) and a cut-short model.safetensors (SafetensorError)."""
  from rocketqa_jax import artifacts
  shard = tmp_path / "shard-00000-of-00002.npz"
  np.savez(shard, embeddings=np.ones((4, 8), np.float32))
  shard.write_bytes(shard.read_bytes()[:100])
  with pytest.raises(artifacts.CorruptArtifactError, match=re.escape(f"{shard}: cannot be read (")):
    artifacts.read_npz(shard, ("embeddings",))
  weights = tmp_path / "model.safetensors"
  import safetensors.numpy
  safetensors.numpy.save_file({"w": np.ones((64, 64), np.float32)}, weights)
  weights.write_bytes(weights.read_bytes()[:1000])
  with pytest.raises(artifacts.CorruptArtifactError, match=re.escape(f"{weights}: cannot be read")):
    artifacts.read_safetensors(weights)


def test_skip_bad_is_a_config_field_and_the_skips_are_counted(tmp_path):
  from rocketqa_jax.data import datasets, lines
  (tmp_path / "collection.tsv").write_text("1\tpassage one\nno tab here\n2\tpassage two\n")
  (tmp_path / "queries.tsv").write_text("q1\twho?\nq2\twhat?\n")
  (tmp_path / "qrels").write_text("q1 0 1 1\nq2 0 2 1\n")
  config = runpy.run_path(str(REPO / "configs" / "tiny.py"))["get_config"]().data
  assert config.skip_bad is False
  config.name, config.corpus = "msmarco", str(tmp_path / "collection.tsv")
  config.train = config.eval = str(tmp_path / "queries.tsv")
  config.train_qrels = config.eval_qrels = str(tmp_path / "qrels")
  with pytest.raises(DataError, match=re.escape(f"{tmp_path}/collection.tsv:2: expected 2 non-empty tab-separated")):
    datasets.load_data(config)
  config.skip_bad = True
  assert len(datasets.load_data(config).corpus) == 2
  assert lines.SKIPPED[str(tmp_path / "collection.tsv")] == 1


def test_a_full_disk_ends_in_one_line_saying_so(tmp_path):
  """A write past the file size limit (RLIMIT_FSIZE; as a full disk, without one) in the first
  checkpoint: the run ends with exit 2 and a last line saying what to do, without a traceback:
  orbax's error logs come one line each, TensorStore's "Event loop is closed" are not printed
  (measured: 836 lines before, 10 now)."""
  # The limit is set by a small Python that then execs main (no preexec_fn: this process runs
  # JAX's threads, and fork without exec beside them can deadlock).
  limited = ("import os, resource, signal, sys; signal.signal(signal.SIGXFSZ, signal.SIG_IGN); "
             "resource.setrlimit(resource.RLIMIT_FSIZE, (2_000_000, 2_000_000)); "
             "os.execv(sys.executable, [sys.executable, *sys.argv[1:]])")
  out = run_python(["-c", limited, *TINY, f"--workdir={tmp_path}", "--config.stages=train_de0",
                    "--config.train.steps=2"], timeout=300)
  assert out.returncode == errors.EXIT_CODE, out.stderr[-3000:]
  last = out.stderr.strip().splitlines()[-2]
  assert last.startswith("error: ") and "no space left on device (or the file size limit)" in last
  assert "run the same command again: finished work is kept" in last
  assert "Traceback" not in out.stderr, out.stderr[-3000:]
