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


def test_bad_candidates_line_is_named(tmp_path):
  path = tmp_path / "candidates.jsonl"
  path.write_text('{"id": "a", "passage_ids": [], "scores": []}\n{"id": "b"}\n')
  with pytest.raises(ValueError, match=r"candidates.jsonl:2: expected a JSON object"):
    read_candidates(path)
