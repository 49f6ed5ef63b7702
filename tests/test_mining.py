"""Stage mine0 on the tiny config: M_D^(0)'s top-k for every labeled question (the later
stages are covered by test_pipeline.py)."""

import json

import numpy as np
import pytest

from conftest import run_python
from rocketqa_jax import errors
from rocketqa_jax.artifacts import CorruptArtifactError
from rocketqa_jax.mining import Candidates, read_candidates


def test_mine0_writes_top_k_for_labeled_questions(tmp_path, squad_mini):
  args = ["-m", "rocketqa_jax.main", "--config=configs/tiny.py", f"--workdir={tmp_path}",
          "--config.train.steps=2", "--config.mine.top_k=7"]
  early = run_python([*args, "--config.stages=mine0"])
  assert early.returncode != 0 and "run that stage first" in early.stderr
  assert not (tmp_path / "config.json").exists()  # Refused before anything was written.
  result = run_python([*args, "--config.stages=train_de0,mine0"])
  assert result.returncode == 0, result.stderr[-3000:]
  candidates = read_candidates(tmp_path / "mine0" / "candidates.npz")
  assert candidates.question_ids.tolist() == [q.id for q in squad_mini.labeled]
  assert candidates.rows.shape == candidates.scores.shape == (len(squad_mini.labeled), 7)
  assert candidates.rows.dtype == np.int32 and candidates.scores.dtype == np.float32
  assert ((candidates.rows >= 0) & (candidates.rows < len(squad_mini.corpus))).all()
  assert (np.diff(candidates.scores, axis=1) <= 0).all()
  # The readable copy: the same candidates as passage ids.
  lines = (tmp_path / "mine0" / "candidates.jsonl").read_text().splitlines()
  first = json.loads(lines[0])
  assert len(lines) == len(squad_mini.labeled) and first["id"] == squad_mini.labeled[0].id
  assert first["passage_ids"] == squad_mini.corpus.ids[candidates.rows[0]]
  np.testing.assert_allclose(first["scores"], candidates.scores[0], atol=1e-5)
  again = run_python([*args, "--config.stages=mine0"])
  assert again.returncode == 0 and "mine0: " in again.stderr and "complete, skipping" in again.stderr
  # Another top_k in the same workdir: refused, naming the field and both values, not reused.
  deeper = [a.replace("top_k=7", "top_k=9") for a in args]
  stale = run_python([*deeper, "--config.stages=train_de0,mine0"])
  assert stale.returncode == errors.EXIT_CODE and "Traceback" not in stale.stderr
  assert ("stage mine0 in " in stale.stderr and "config.mine.top_k=7; this run has 9"
          in stale.stderr and "--config.rerun=mine0" in stale.stderr), stale.stderr[-2000:]
  redo = run_python([*deeper, "--config.stages=train_de0,mine0", "--config.rerun=mine0"])
  assert redo.returncode == 0, redo.stderr[-3000:]
  assert "train_de0: " in redo.stderr and "stage mine0" in redo.stderr  # Kept, then redone.
  assert read_candidates(tmp_path / "mine0" / "candidates.npz").rows.shape[1] == 9


def test_candidates_files_are_checked(tmp_path, squad_mini):
  path = tmp_path / "candidates.npz"
  path.write_bytes(b"not an npz")
  with pytest.raises(CorruptArtifactError, match=r"candidates.npz: cannot be read"):
    read_candidates(path)
  questions = squad_mini.labeled[:3]
  Candidates(np.asarray([q.id for q in questions]), np.zeros((3, 2), np.int32),
             np.zeros((3, 2), np.float32)).save(path)
  assert read_candidates(path).check_questions(questions, path).rows.shape == (3, 2)
  with pytest.raises(ValueError, match=r"holds candidates for other questions"):
    read_candidates(path).check_questions(squad_mini.labeled[1:4], path)
