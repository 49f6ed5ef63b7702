"""The command line: configs, overrides, errors, and the eval stage on the tiny config."""

import json

from conftest import run_python
from rocketqa_jax import matmul


def test_tiny_eval_writes_metrics(tmp_path):
  # The config's compilation cache, not the test session's (conftest sets the variable).
  result = run_python(["-m", "rocketqa_jax.main", "--config=configs/tiny.py",
                       f"--workdir={tmp_path}", "--config.eval.max_questions=64",
                       "--config.stages=eval", f"--config.compilation_cache={tmp_path}/xla"],
                      env={"JAX_COMPILATION_CACHE_DIR": ""})
  assert result.returncode == 0, result.stderr[-3000:]
  assert list((tmp_path / "xla").iterdir())  # The compiled programs were kept.
  expected = matmul.resolve_dtype("auto")  # This machine's choice, logged by main.
  assert f"matrix products in {expected} (model.matmul_dtype=auto" in result.stderr
  assert "| initial | " in result.stdout  # The table, one row per model.
  metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())["initial"]
  assert metrics["questions"] == 64 and metrics["passages"] == 2067
  assert 0 <= metrics["mrr@10"] <= metrics["recall@100"] <= 1
  assert metrics["recall@1"] <= metrics["recall@5"] <= metrics["recall@20"]
  assert metrics["answer@1"] <= metrics["answer@20"] and metrics["index"] == "exact"
  run = (tmp_path / "eval" / "initial" / "run.trec").read_text().splitlines()
  assert len(run) == 64 * 100  # Top 100 per question.
  qid, q0, doc, rank, score, name = run[0].split()
  assert (q0, rank, name) == ("Q0", "1", "initial") and "#" in doc
  saved = json.loads((tmp_path / "config.json").read_text())
  assert saved["model"]["arch"]["hidden_size"] == 64 and saved["eval"]["max_questions"] == 64


def test_unknown_override_names_the_key(tmp_path):
  result = run_python(["-m", "rocketqa_jax.main", "--config=configs/tiny.py",
                       f"--workdir={tmp_path}", "--config.model.pooler=mean"])
  assert result.returncode != 0
  assert "config.model has no field 'pooler'" in result.stderr
  assert "'pooling'" in result.stderr  # The fields it does have are listed.


def test_wrong_type_and_bad_value_are_rejected(tmp_path):
  result = run_python(["-m", "rocketqa_jax.main", "--config=configs/tiny.py",
                       f"--workdir={tmp_path}", "--config.tokenizer.bucket_size=big"])
  assert result.returncode != 0 and "bucket_size" in result.stderr
  result = run_python(["-m", "rocketqa_jax.main", "--config=configs/tiny.py",
                       f"--workdir={tmp_path}", "--config.model.pooling=max"])
  assert result.returncode != 0
  assert "config.model.pooling='max': expected one of ['cls', 'mean']" in result.stderr
  result = run_python(["-m", "rocketqa_jax.main", "--config=configs/tiny.py:nonsense=1",
                       f"--workdir={tmp_path}"])
  assert result.returncode != 0 and "config argument 'nonsense' unknown" in result.stderr


def test_console_scripts_are_main_and_search(tmp_path):
  """`rocketqa-train` / `rocketqa-search` (pyproject's [project.scripts]) run the same code as
  `python -m rocketqa_jax.main` / `.search`, with the config flag parser."""
  import pathlib
  import subprocess
  import sys
  bin_dir = pathlib.Path(sys.executable).parent
  result = subprocess.run([bin_dir / "rocketqa-train", "--config=configs/tiny.py",
                           f"--workdir={tmp_path}", "--config.model.pooling=max"],
                          cwd=pathlib.Path(__file__).parents[1], capture_output=True, text=True,
                          timeout=300)
  assert result.returncode != 0
  assert "config.model.pooling='max': expected one of ['cls', 'mean']" in result.stderr
  result = subprocess.run([bin_dir / "rocketqa-search", "--help"], capture_output=True,
                          text=True, timeout=300)
  assert "USAGE: " in result.stdout and "rocketqa-search [flags]" in result.stdout  # absl's help
