"""Stage mine0 on the tiny config: M_D^(0)'s top-k for every labeled question (the later
stages are covered by test_pipeline.py)."""

import json

import numpy as np
import pytest

from conftest import run_python
from rocketqa_jax import bm25, errors, mining
from rocketqa_jax.artifacts import CorruptArtifactError
from rocketqa_jax.mining import Candidates, read_candidates


def test_mine0_writes_top_k_for_labeled_questions(tmp_path, squad_mini):
  args = ["-m", "rocketqa_jax.main", "--config=configs/tiny.py", f"--workdir={tmp_path}",
          "--config.train.steps=2", "--config.mine.top_k=7", "--config.mine.sources=dense"]
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


def reference_interleave(first, second, k):
  out = []
  for a, b in zip(first, second):
    taken = []
    for pair in zip(a, b):
      for row in pair:
        if row >= 0 and row not in taken and len(taken) < k:
          taken.append(row)
    out.append(taken)
  return out


def test_interleave_takes_turns_without_repeats():
  rng = np.random.default_rng(0)
  first = np.stack([rng.permutation(12)[:6] for _ in range(8)])
  second = np.stack([rng.permutation(12)[:6] for _ in range(8)])
  second[0, 2:] = -1  # BM25 matched 2 passages only.
  scores = lambda rows: (np.where(rows >= 0, -np.arange(6.0), -np.inf) * np.ones_like(rows))
  rows, got_scores = mining.interleave((first, scores(first)), (second, 10 * scores(second)), 5)
  for q, expected in enumerate(reference_interleave(first, second, 5)):
    assert rows[q, :len(expected)].tolist() == expected and (rows[q, len(expected):] == -1).all()
  assert got_scores[1, 0] == 0 and got_scores[1, 1] in (0, -10)  # Each row's own score.


def test_mine0_joins_bm25_candidates(tmp_path, squad_mini):
  """mine.sources=dense,bm25: BM25's top passages alternate with M_D^(0)'s."""
  result = run_python(["-m", "rocketqa_jax.main", "--config=configs/tiny.py",
                       f"--workdir={tmp_path}", "--config.train.steps=1", "--config.mine.top_k=6",
                       "--config.mine.sources=dense,bm25", "--config.stages=train_de0,mine0"])
  assert result.returncode == 0, result.stderr[-3000:]
  candidates = read_candidates(tmp_path / "mine0" / "candidates.npz")
  index = bm25.BM25.load(tmp_path / "bm25")  # The workdir's index, built for mining.
  sparse, _ = index.search([q.text for q in squad_mini.labeled[:50]], 3)
  for q in range(50):
    assert sparse[q, 0] in candidates.rows[q, :2]  # BM25's best is among the first two.
    assert set(sparse[q]) <= set(candidates.rows[q]) | {-1}
