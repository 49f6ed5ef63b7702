"""The whole RocketQA pipeline on the tiny config, killed in the middle of a stage and resumed."""

import json
import signal

from conftest import run_python
from rocketqa_jax.cross_encoder import load_cross_encoder
from rocketqa_jax.faults import ENV as KILL_AFTER

STAGES = "train_de0,mine0,train_ce,denoise,train_de1,augment,train_de2,eval"
# BM25 (config.bm25: titles, stemmed, k1 0.9) on the first 32 eval questions; bm25s' defaults
# on the text alone: 0.3722.
BM25_FIRST_32 = 0.3894


def test_pipeline_killed_mid_stage_resumes_and_finishes(tmp_path, squad_mini):
  args = ["-m", "rocketqa_jax.main", "--config=configs/tiny.py", f"--workdir={tmp_path}",
          f"--config.stages={STAGES}", "--config.train.steps=2", "--config.ce.steps=4",
          "--config.eval.max_questions=32", "--config.augment.positive_threshold=0.3",
          "--config.train.distill_weight=0.5"]
  # train_de0 has 2 steps, so the first trainer to finish step 3 is train_ce's: killed there.
  killed = run_python(args, env={KILL_AFTER: "step:3"})
  assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
  assert (tmp_path / "mine0" / "candidates.npz").exists()
  assert not (tmp_path / "train_ce" / "cross_encoder").exists()
  done = run_python(args)
  assert done.returncode == 0, done.stderr[-3000:]
  for stage in ("train_de0", "mine0"):
    assert f"{stage}: {tmp_path / stage} is complete, skipping" in done.stderr
  assert "resumed from step 2" in done.stderr  # train_ce, from its step-2 checkpoint.
  ce_steps = [json.loads(l)["step"] for l in (tmp_path / "train_ce" / "metrics.jsonl").open()]
  assert ce_steps == [1, 2, 3, 4]
  for stage in ("train_de0", "train_de1", "train_de2"):
    assert (tmp_path / stage / "query_encoder" / "model.safetensors").exists()
  scorer = load_cross_encoder(tmp_path / "train_ce" / "cross_encoder", max_length=64)
  probs = scorer.score(["who is it?"] * 2, ["It is Ada.", "Rain."])
  assert probs.shape == (2,) and ((probs > 0) & (probs < 1)).all()
  # Denoising: every candidate is a labeled positive, a kept negative or a dropped one.
  denoise = json.loads((tmp_path / "denoise" / "stats.json").read_text())
  assert denoise["candidates"] == 5 * len(squad_mini.labeled)
  assert denoise["negatives"] + denoise["dropped"] + denoise["labeled_positives"] == \
      denoise["candidates"]
  at_threshold = [t for t in denoise["thresholds"] if t["threshold"] == 0.1]  # The config's.
  assert at_threshold == [{"threshold": 0.1, **{k: denoise[k] for k in (
      "negatives", "dropped", "negatives_with_answer", "dropped_with_answer")}}]
  assert sum(denoise["histogram"]["with_answer"] + denoise["histogram"]["without_answer"]) == \
      denoise["scored"]
  records = [json.loads(l) for l in (tmp_path / "denoise" / "hard_negatives.jsonl").open()]
  positives = {q.id: set(q.positive_ids) for q in squad_mini.labeled}
  assert len(records) == len(positives)
  for r in records:
    assert not positives[r["id"]] & set(r["negatives"] + r["dropped"])
    assert sorted(r["negatives"] + r["dropped"]) == sorted(r["undenoised"])
  # Distillation (train_de1 and train_de2): M_C scored each example's passages; the KL logged.
  for stage in ("train_de1", "train_de2"):
    assert json.loads((tmp_path / stage / "scores" / "manifest.json").read_text())["pairs"] > 64
    logged = [json.loads(l) for l in (tmp_path / stage / "metrics.jsonl").open()]
    assert all(r["distill_kl"] >= 0 for r in logged), logged
  assert "distill_kl" not in (tmp_path / "train_de0" / "metrics.jsonl").read_text()
  augment = json.loads((tmp_path / "augment" / "stats.json").read_text())
  assert augment["questions"] == 64 and 0 < augment["pseudo_labeled"] <= 64
  pseudo = [json.loads(l) for l in (tmp_path / "augment" / "pseudo_labels.jsonl").open()]
  assert len(pseudo) == augment["pseudo_labeled"]
  assert all(r["score"] > 0.3 and r["positive"] not in r["negatives"] for r in pseudo)
  results = json.loads((tmp_path / "eval" / "metrics.json").read_text())
  assert set(results) == {"initial", "train_de0", "train_de1", "train_de2", "bm25", "hybrid",
                          "hybrid_initial", "hybrid_reranked"}
  # BM25 on the first 32 eval questions (Super Bowl 50's, where BM25 is weak: 0.83 on all).
  assert abs(results["bm25"]["mrr@10"] - BM25_FIRST_32) < 1e-3
  assert results["hybrid"]["model"].startswith("train_de2 + BM25 (interpolate")
  assert results["hybrid_reranked"]["model"] == ("hybrid reranked by M_C (top 8 within 2.0 of "
                                                 "the best, M_C weight 0.3)")
  assert 0 < results["hybrid_reranked"]["pairs_per_question"] <= 8
  for row in ("bm25", "hybrid", "hybrid_reranked"):  # Every row's ranking is kept.
    assert len((tmp_path / "eval" / row / "run.trec").read_text().splitlines()) == 32 * 100
  # Reranking reorders (some of) the hybrid's top 8 and keeps the rest.
  top = {row: [[l.split()[2] for l in (tmp_path / "eval" / row / "run.trec").open()][i::100]
               for i in range(9)] for row in ("hybrid", "hybrid_reranked")}
  assert [sorted(q) for q in zip(*top["hybrid"][:8])] == [
      sorted(q) for q in zip(*top["hybrid_reranked"][:8])]
  assert top["hybrid"][8] == top["hybrid_reranked"][8]
  assert all(0 <= r["mrr@10"] <= 1 and r["questions"] == 32 for r in results.values())
  table = (tmp_path / "eval" / "table.md").read_text()
  assert all(f"| {name} |" in table for name in results)
  assert table.strip() in done.stdout  # Printed as well.
  for png in (tmp_path / "training_curves.png", tmp_path / "eval" / "ablation.png",
              tmp_path / "denoise" / "scores.png"):
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
  for stage in ("train_de0", "train_ce", "train_de1", "train_de2"):  # TensorBoard event files.
    assert list((tmp_path / stage / "tensorboard").glob("events.out.tfevents.*")), stage
  timed = [json.loads(l)["stage"] for l in (tmp_path / "timings.jsonl").open()]
  assert timed == STAGES.split(",")  # Each stage once: a resumed run adds only what it ran.
  assert 0 <= augment["pseudo_positive_precision"] <= 1  # SQuAD-mini's withheld labels.

  # The search command on the finished workdir: typed questions, and batch mode to a TREC run.
  typed = run_python(["-m", "rocketqa_jax.search", f"--workdir={tmp_path}", "--k=3",
                      squad_mini.eval[0].text])
  assert typed.returncode == 0, typed.stderr[-3000:]
  lines = typed.stdout.strip().splitlines()
  assert lines[0] == squad_mini.eval[0].text and lines[1].lstrip().startswith("1. ")
  assert "#" in lines[1] and lines[5].lstrip().startswith("3. ")  # Rank, score, id, text.
  (tmp_path / "q.tsv").write_text("".join(f"{q.id}\t{q.text}\n" for q in squad_mini.eval[:5]))
  batch = run_python(["-m", "rocketqa_jax.search", f"--workdir={tmp_path}", "--model=train_de0",
                      f"--questions={tmp_path / 'q.tsv'}", f"--run={tmp_path / 'run.trec'}"])
  assert batch.returncode == 0, batch.stderr[-3000:]
  run = (tmp_path / "run.trec").read_text().splitlines()
  assert len(run) == 5 * 5 and run[0].split()[0] == squad_mini.eval[0].id
  # Same model, same questions: the eval stage's run has the same top passages.
  eval_run = (tmp_path / "eval" / "train_de0" / "run.trec").read_text().splitlines()
  first = [l.split()[2] for l in eval_run if l.split()[0] == squad_mini.eval[0].id][:5]
  assert [l.split()[2] for l in run[:5]] == first
  # The eval's best system from the command line: the hybrid reranked by M_C.
  batch = run_python(["-m", "rocketqa_jax.search", f"--workdir={tmp_path}", "--retriever=hybrid",
                      "--rerank=8", f"--questions={tmp_path / 'q.tsv'}",
                      f"--run={tmp_path / 'reranked.trec'}"])
  assert batch.returncode == 0, batch.stderr[-3000:]
  run = [l.split() for l in (tmp_path / "reranked.trec").read_text().splitlines()]
  eval_run = [l.split() for l in (tmp_path / "eval" / "hybrid_reranked" / "run.trec").open()]
  for q in squad_mini.eval[:5]:
    got = [l[2] for l in run if l[0] == q.id]
    expected = [l[2] for l in eval_run if l[0] == q.id][:5]
    assert sorted(got) == sorted(expected) and got[0] == expected[0], (got, expected)
  assert run[0][5] == "hybrid_train_de2_reranked8"
