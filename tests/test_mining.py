"""Stage mine0 on the tiny config: M_D^(0)'s top-k for every labeled question (the later
stages are covered by test_pipeline.py)."""

import pytest

from conftest import run_python
from rocketqa_jax.mining import read_candidates


def test_mine0_writes_top_k_for_labeled_questions(tmp_path, squad_mini):
  args = ["-m", "rocketqa_jax.main", "--config=configs/tiny.py", f"--workdir={tmp_path}",
          "--config.train.steps=2", "--config.mine.top_k=7"]
  early = run_python([*args, "--config.stages=mine0"])
  assert early.returncode != 0 and "run that stage first" in early.stderr
  assert not (tmp_path / "config.json").exists()  # Refused before anything was written.
  result = run_python([*args, "--config.stages=train_de0,mine0"])
  assert result.returncode == 0, result.stderr[-3000:]
  candidates = read_candidates(tmp_path / "mine0" / "candidates.jsonl")
  assert list(candidates) == [q.id for q in squad_mini.labeled]
  corpus_ids = set(squad_mini.corpus.ids)
  for ids, scores in candidates.values():
    assert len(ids) == 7 and set(ids) <= corpus_ids
    assert scores == sorted(scores, reverse=True)
  again = run_python([*args, "--config.stages=mine0"])
  assert again.returncode == 0 and "mine0: " in again.stderr and "complete, skipping" in again.stderr
  # Another top_k in the same workdir: refused, naming the field and both values, not reused.
  deeper = [a.replace("top_k=7", "top_k=9") for a in args]
  stale = run_python([*deeper, "--config.stages=train_de0,mine0"])
  assert stale.returncode == 1 and "Traceback" not in stale.stderr
  assert ("stage mine0 in " in stale.stderr and "config.mine.top_k=7; this run has 9"
          in stale.stderr and "--config.rerun=mine0" in stale.stderr), stale.stderr[-2000:]
  redo = run_python([*deeper, "--config.stages=train_de0,mine0", "--config.rerun=mine0"])
  assert redo.returncode == 0, redo.stderr[-3000:]
  assert "train_de0: " in redo.stderr and "stage mine0" in redo.stderr  # Kept, then redone.
  assert {len(ids) for ids, _ in read_candidates(tmp_path / "mine0" / "candidates.jsonl")
          .values()} == {9}


def test_bad_candidates_line_is_named(tmp_path):
  path = tmp_path / "candidates.jsonl"
  path.write_text('{"id": "a", "passage_ids": [], "scores": []}\n{"id": "b"}\n')
  with pytest.raises(ValueError, match=r"candidates.jsonl:2: expected a JSON object"):
    read_candidates(path)
