"""Scoring pairs in chunks over processes: the same scores as one pass, resumed chunk by chunk."""

import numpy as np
import pytest

from rocketqa_jax import cross_encoder as ce
from rocketqa_jax import distributed, pair_scoring, usage
from rocketqa_jax.data.corpus import Corpus


@pytest.fixture(scope="module")
def scorer(tiny_cross_encoder):
  model, params, tokenizer, _ = tiny_cross_encoder
  return ce.CrossEncoderScorer(model, params, tokenizer, max_length=48, batch_size=8)


@pytest.fixture(scope="module")
def pairs(squad_mini):
  corpus = Corpus(squad_mini.corpus.ids[:40], squad_mini.corpus.texts[:40],
                  squad_mini.corpus.titles[:40])
  questions = [q.text for q in squad_mini.labeled[:9]]
  rng = np.random.default_rng(0)
  return corpus, questions, rng.integers(0, 9, 30), rng.integers(0, 40, 30)


def _direct(scorer, corpus, questions, pair_questions, pair_rows, titles=False):
  return scorer.score([questions[q] for q in pair_questions], corpus.texts[pair_rows],
                      corpus.titles[pair_rows] if titles else None)


@pytest.mark.parametrize("use_titles", [False, True])
def test_chunks_equal_one_pass_and_resume_only_what_is_missing(tmp_path, scorer, pairs,
                                                               monkeypatch, use_titles):
  corpus, questions, pair_questions, pair_rows = pairs
  usage.reset()
  scores = pair_scoring.score_pairs(scorer, questions, pair_questions, pair_rows, corpus,
                                    directory=tmp_path, use_titles=use_titles, chunk_pairs=7,
                                    progress=False)
  assert usage.report()["pairs_scored"] == 30 and usage.report()["pairs_tokenized"] == 30
  want = _direct(scorer, corpus, questions, pair_questions, pair_rows, use_titles)
  np.testing.assert_allclose(scores, want, atol=1e-6)
  assert sorted(p.name for p in tmp_path.glob("scores-*")) == [
      f"scores-{c:05d}-of-00005.npz" for c in range(5)]
  # Interrupted before chunk 3 was written: the rerun scores those 7 pairs and nothing else.
  chunk = pair_scoring.read_chunk(tmp_path / "scores-00003-of-00005.npz")  # Pairs 21..27.
  np.testing.assert_array_equal(chunk["rows"], pair_rows[21:28])
  np.testing.assert_array_equal(chunk["questions"], pair_questions[21:28])
  np.testing.assert_array_equal(chunk["scores"], scores[21:28])
  (tmp_path / "scores-00003-of-00005.npz").unlink()
  calls = []
  original = scorer.score
  monkeypatch.setattr(scorer, "score", lambda q, *a, **k: calls.append(len(q))
                      or original(q, *a, **k))
  again = pair_scoring.score_pairs(scorer, questions, pair_questions, pair_rows, corpus,
                                   directory=tmp_path, use_titles=use_titles, chunk_pairs=7,
                                   progress=False)
  assert calls == [7]
  np.testing.assert_array_equal(again, scores)
  # Other pairs (or another scorer, chunk size or titles) never reuse these chunks.
  with pytest.raises(ValueError, match="describes other scores"):
    pair_scoring.score_pairs(scorer, questions, pair_questions, pair_rows[::-1], corpus,
                             directory=tmp_path, use_titles=use_titles, chunk_pairs=7,
                             progress=False)


def test_each_process_scores_its_own_chunks(tmp_path, scorer, pairs, monkeypatch):
  """Two processes (one after the other; the barrier is where they would meet): process p
  scores chunks c % 2 == p, and both return every pair's score."""
  corpus, questions, pair_questions, pair_rows = pairs
  monkeypatch.setattr(pair_scoring.jax, "process_count", lambda: 2)
  monkeypatch.setattr(distributed, "barrier", lambda name: None)
  for process in (0, 1):
    monkeypatch.setattr(pair_scoring.jax, "process_index", lambda: process)
    usage.reset()
    if process == 0:
      with pytest.raises(FileNotFoundError):  # Process 1's chunks are not there yet.
        pair_scoring.score_pairs(scorer, questions, pair_questions, pair_rows, corpus,
                                 directory=tmp_path, chunk_pairs=8, progress=False)
      assert sorted(p.name[7:12] for p in tmp_path.glob("scores-*")) == ["00000", "00002"]
    else:
      scores = pair_scoring.score_pairs(scorer, questions, pair_questions, pair_rows, corpus,
                                        directory=tmp_path, chunk_pairs=8, progress=False)
    assert usage.report()["pairs_scored"] == (16 if process == 0 else 14)  # 8 + 8, 8 + 6.
  np.testing.assert_allclose(scores, _direct(scorer, corpus, questions, pair_questions,
                                             pair_rows), atol=1e-6)


def test_no_pairs(tmp_path, scorer, pairs):
  corpus, questions, _, _ = pairs
  empty = np.zeros(0, np.int64)
  assert pair_scoring.score_pairs(scorer, questions, empty, empty, corpus,
                                  directory=tmp_path, chunk_pairs=8, progress=False).shape == (0,)
