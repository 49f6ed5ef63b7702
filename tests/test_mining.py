"""Stage mine0 on the tiny config: M_D^(0)'s top-k for every labeled question."""

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


def test_train_ce_after_mine0_exports_a_scorer(tmp_path):
  from rocketqa_jax.cross_encoder import load_cross_encoder
  args = ["-m", "rocketqa_jax.main", "--config=configs/tiny.py", f"--workdir={tmp_path}",
          "--config.train.steps=2", "--config.mine.top_k=10"]
  early = run_python([*args, "--config.stages=train_ce"])
  assert early.returncode != 0 and "run stage mine0 first" in early.stderr
  result = run_python([*args, "--config.stages=train_de0,mine0,train_ce"])
  assert result.returncode == 0, result.stderr[-3000:]
  lines = (tmp_path / "train_ce" / "metrics.jsonl").read_text().splitlines()
  assert len(lines) == 3 and '"positive_prob"' in lines[0]
  scorer = load_cross_encoder(tmp_path / "train_ce" / "cross_encoder", max_length=64)
  probs = scorer.score(["who is it?"] * 2, ["It is Ada.", "Rain."])
  assert probs.shape == (2,) and ((probs > 0) & (probs < 1)).all()


def test_denoise_splits_candidates_by_the_cross_encoder(tmp_path, squad_mini):
  import json
  args = ["-m", "rocketqa_jax.main", "--config=configs/tiny.py", f"--workdir={tmp_path}",
          "--config.train.steps=2", "--config.mine.top_k=6", "--config.denoise.top_k=4",
          "--config.denoise.negative_threshold=0.5"]
  result = run_python([*args, "--config.stages=train_de0,mine0,train_ce,denoise"])
  assert result.returncode == 0, result.stderr[-3000:]
  stats = json.loads((tmp_path / "denoise" / "stats.json").read_text())
  assert stats["candidates"] == 4 * len(squad_mini.labeled)
  assert stats["negatives"] + stats["dropped"] + stats["labeled_positives"] == stats["candidates"]
  records = [json.loads(l) for l in (tmp_path / "denoise" / "hard_negatives.jsonl").open()]
  assert len(records) == len(squad_mini.labeled)
  positives = {q.id: set(q.positive_ids) for q in squad_mini.labeled}
  for r in records:
    assert not positives[r["id"]] & set(r["negatives"] + r["dropped"])
    assert sorted(r["negatives"] + r["dropped"]) == sorted(r["undenoised"])
  assert sum(len(r["negatives"]) for r in records) == stats["negatives"]
