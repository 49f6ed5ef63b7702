"""Training on the tiny config: non-finite steps, kill and resume (with two processes:
test_multihost.py)."""

import functools
import json
import signal

import jax
import ml_collections
import numpy as np
import safetensors.numpy

import rocketqa_jax
from conftest import run_python
from rocketqa_jax import sharding
from rocketqa_jax.bert import BertConfig, BertModel
from rocketqa_jax.data.sampler import BatchSampler, TrainExample
from rocketqa_jax.dual_encoder import DualEncoder
from rocketqa_jax.encoder import init_params
from rocketqa_jax.tokenization import Batch
from rocketqa_jax.faults import ENV as KILL_AFTER
from rocketqa_jax.trainer import Trainer

TINY = BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                  intermediate_size=32, max_position_embeddings=32)
MAIN = ["-m", "rocketqa_jax.main", "--config=configs/tiny.py", "--config.stages=train_de0"]


def _tokens(rows, length, seed):
  ids = np.random.default_rng(seed).integers(1, 50, (rows, length)).astype(np.int32)
  return Batch(ids, np.ones_like(ids), np.zeros_like(ids))


def _sampler(num_devices=8, hard=1, global_batch=8):
  examples = [TrainExample(f"q{i}", (i,), (i + 1, i + 2)) for i in range(20)]
  queries, passages = _tokens(20, 6, 0), _tokens(30, 10, 1)
  return BatchSampler(examples, queries.take, passages.take, corpus_size=30,
                      global_batch=global_batch, hard_negatives=hard, num_devices=num_devices,
                      seed=0)


def _train_cfg(**overrides):
  cfg = dict(steps=4, global_batch=8, learning_rate=1e-3, warmup_fraction=0.25, weight_decay=0.0, clip_norm=1.0,
             checkpoint_every=2, keep_checkpoints=2, log_every=1)
  return ml_collections.ConfigDict({**cfg, **overrides})


def test_sampler_is_a_pure_function_of_step():
  a, b = _sampler(), _sampler()
  for step in (0, 3, 7):  # Step 7 crosses into the next epoch (20 examples, 8 per batch).
    x, y = a.device_batches(step, range(8)), b.device_batches(step, range(8))
    jax.tree.map(np.testing.assert_array_equal, x, y)
  first = a.device_batches(0, range(8))
  # Per device: 1 query, [its positive; its negative]; positives are the examples' own rows.
  assert first["passage_ids"].shape == (16,) and first["query"]["input_ids"].shape == (8, 6)
  np.testing.assert_array_equal(first["passage_ids"][0::2], first["query_positive_ids"][:, 0])
  # A process holding devices 2 and 3 builds exactly those rows of the global batch.
  part = a.device_batches(0, [2, 3])
  np.testing.assert_array_equal(part["passage_ids"], first["passage_ids"][4:8])
  epoch = np.concatenate([a.example_indices(s) for s in (0, 1)])
  assert len(set(epoch.tolist())) == 16  # No repeats within an epoch.


def test_sampler_carries_the_teacher_logits_of_the_passages_it_draws():
  """Distillation: M_C's logits travel with the passages drawn, NaN for random top-ups; the
  draws are the same as without them."""
  examples = [TrainExample(f"q{i}", (i,), (i + 1, i + 2) if i % 4 else (i + 1,),
                           teacher_positives=(100.0 + i,),
                           teacher_negatives=(200.0 + i + 1, 200.0 + i + 2)[:2 if i % 4 else 1])
              for i in range(20)]
  queries, passages = _tokens(20, 6, 0), _tokens(30, 10, 1)
  taught = BatchSampler(examples, queries.take, passages.take, corpus_size=30, global_batch=8,
                        hard_negatives=2, num_devices=4, seed=0)
  plain = _sampler(num_devices=4, hard=2)
  plain.examples = [TrainExample(e.query, e.positives, e.hard_negatives) for e in examples]
  for step in (0, 1, 2):
    batch, same = taught.device_batches(step, range(4)), plain.device_batches(step, range(4))
    assert "teacher" not in same and batch["teacher"].shape == (8, 3)
    np.testing.assert_array_equal(batch["passage_ids"], same["passage_ids"])
    ids = batch["passage_ids"].reshape(4, 6)  # Per device: 2 positives; 2 x 2 negatives.
    for d in range(4):
      for i in range(2):
        query = taught.example_indices(step)[d * 2 + i]
        own = [ids[d, i], *ids[d, 2 + 2 * i:4 + 2 * i]]
        take = len(examples[query].hard_negatives)  # Drawn first; random top-ups after.
        expected = ([100.0 + query] + [200.0 + row for row in own[1:1 + take]]
                    + [np.nan] * (2 - take))
        np.testing.assert_array_equal(batch["teacher"][d * 2 + i], expected)
  assert np.isnan(batch["teacher"]).any() and np.isfinite(batch["teacher"]).sum() > 8


def test_non_finite_update_leaves_state_unchanged(tmp_path):
  mesh = sharding.make_mesh()
  de = DualEncoder(BertModel(TINY), pooling="cls")
  tower = jax.device_get(init_params(de.model))
  loss = lambda scale: functools.partial(de.loss, mesh=mesh, negatives="cross_batch", scale=scale)
  trainer = Trainer(_train_cfg(), loss(float("nan")), _sampler(), mesh, tmp_path)
  state = trainer.init_state(de.init_params(tower))
  before = jax.device_get((state.params, state.opt_state))
  state, metrics = trainer.step_fn(state, trainer.batch(0))
  assert not np.isfinite(float(metrics["loss"]))
  assert int(state.step) == 1 and int(state.skipped) == 1
  jax.tree.map(np.testing.assert_array_equal, jax.device_get((state.params, state.opt_state)),
               before)
  finite = Trainer(_train_cfg(), loss(1.0), _sampler(), mesh, tmp_path / "ok")
  state = finite.init_state(de.init_params(tower))
  for step in range(2):  # The learning rate warms up from 0 at step 0.
    state, metrics = finite.step_fn(state, finite.batch(step))
  assert np.isfinite(float(metrics["loss"])) and int(state.skipped) == 0
  assert not np.array_equal(jax.device_get(state.params["query"]["embeddings"]["LayerNorm"]["bias"]),
                            tower["embeddings"]["LayerNorm"]["bias"])


def _tower(workdir, name="query_encoder"):
  return safetensors.numpy.load_file(workdir / "train_de0" / name / "model.safetensors")


def _metrics(workdir):
  return [json.loads(line) for line in (workdir / "train_de0" / "metrics.jsonl").open()]


def test_killed_and_resumed_run_equals_a_straight_run(tmp_path):
  straight, resumed = tmp_path / "straight", tmp_path / "resumed"
  ok = run_python([*MAIN, f"--workdir={straight}"])
  assert ok.returncode == 0, ok.stderr[-3000:]
  killed = run_python([*MAIN, f"--workdir={resumed}"], env={KILL_AFTER: "step:3"})
  assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
  assert not (resumed / "train_de0" / "query_encoder").exists()
  assert [m["step"] for m in _metrics(resumed)] == [1, 2, 3]
  again = run_python([*MAIN, f"--workdir={resumed}"])
  assert again.returncode == 0, again.stderr[-3000:]
  assert "resumed from step" in again.stderr
  steps = _metrics(resumed)
  assert [m["step"] for m in steps] == [1, 2, 3, 4, 5, 6]  # No step logged twice.
  # Same data order: the same losses, step by step; the same final weights.
  np.testing.assert_allclose([m["loss"] for m in steps], [m["loss"] for m in _metrics(straight)],
                             rtol=1e-5)
  for name in ("query_encoder", "passage_encoder"):
    a, b = _tower(straight, name), _tower(resumed, name)
    assert a.keys() == b.keys()
    for key in a:
      np.testing.assert_allclose(a[key], b[key], atol=1e-6, err_msg=key)
  # The exported towers are parameters-only checkpoints that load_encoder reads.
  encoder = rocketqa_jax.load_encoder(resumed / "train_de0" / "query_encoder")
  assert (encoder.dim, encoder.pooling, encoder.normalize) == (64, "mean", True)
  np.testing.assert_allclose(
      encoder.params["encoder"]["layer_1"]["output"]["dense"]["kernel"],
      _tower(resumed)["encoder.layer.1.output.dense.weight"].T)
  emb = encoder.encode_queries(["what is the capital of kenya?"])
  np.testing.assert_allclose(np.linalg.norm(emb), 1.0, rtol=1e-5)
