import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from rocketqa_jax import cross_encoder as ce


@pytest.fixture(scope="module")
def tiny(tiny_cross_encoder):
  return tiny_cross_encoder


def test_init_keeps_the_encoder_weights(tiny):
  model, params, _, encoder = tiny
  jax.tree.map(np.testing.assert_array_equal, params["bert"], encoder)
  assert params["classifier"]["kernel"].shape == (32, 1)
  with pytest.raises(ValueError, match="do not fit"):
    ce.init_params(model, {"embeddings": encoder["embeddings"]})


def test_pair_losses_against_plain_formulas():
  scores = jnp.array([2.0, -1.0, 0.5, -0.3, 1.5, 0.2])  # Two groups of [pos, neg, neg].
  loss, metrics = ce.pair_loss(scores, 3, "pointwise")
  labels = np.array([1, 0, 0, 1, 0, 0], np.float32)
  p = 1 / (1 + np.exp(-np.asarray(scores)))
  np.testing.assert_allclose(loss, -np.mean(labels * np.log(p) + (1 - labels) * np.log(1 - p)),
                             rtol=1e-6)
  assert float(metrics["accuracy"]) == 0.5  # Group 2's positive (-0.3) is not its best.
  loss, _ = ce.pair_loss(scores, 3, "listwise")
  g = np.asarray(scores).reshape(2, 3)
  ref = np.mean([np.log(np.exp(row).sum()) - row[0] for row in g])
  np.testing.assert_allclose(loss, ref, rtol=1e-6)
  with pytest.raises(ValueError, match="pointwise"):
    ce.pair_loss(scores, 3, "hinge")


def test_scorer_probabilities_match_the_model_and_learn(tiny):
  model, params, tokenizer, _ = tiny
  scorer = ce.CrossEncoderScorer(model, params, tokenizer, max_length=48, batch_size=8)
  questions = ["who founded the company?"] * 3
  texts = ["The company was founded by Ada.", "Rain fell all day.", "Ada started it in 1900."]
  probs = scorer.score(questions, texts, titles=["Firm", "Weather", "Firm"])
  assert probs.shape == (3,) and ((probs > 0) & (probs < 1)).all()
  pairs = tokenizer.tokenize_pairs(questions[:1], texts[:1], ["Firm"], 48)
  words = tokenizer.hf.convert_ids_to_tokens(pairs[0][0].tolist())
  assert words.count("[SEP]") == 3 and "firm" in words  # question [SEP] title [SEP] text [SEP]
  batch = tokenizer.pad(pairs, 48)
  direct = jax.nn.sigmoid(ce.logits(model, params, vars(batch)))
  np.testing.assert_allclose(probs[0], direct[0], rtol=1e-5)
  # A few pointwise steps separate a positive from a negative.
  tokens = vars(tokenizer.pad(tokenizer.tokenize_pairs(questions[:2], texts[:2], None, 48), 48))
  loss = lambda p: ce.loss_fn(p, {"pairs": tokens}, None, model=model, group_size=2)[0]
  tx = optax.adam(1e-2)
  opt, p = tx.init(params), params
  first = float(loss(p))
  for _ in range(20):
    grads = jax.grad(loss)(p)
    updates, opt = tx.update(grads, opt)
    p = optax.apply_updates(p, updates)
  assert float(loss(p)) < first / 4


def test_pair_sampler_groups_are_pure_functions_of_the_step(tiny):
  from rocketqa_jax.data.sampler import PairExample, PairSampler
  _, _, tokenizer, _ = tiny
  texts = [f"passage {i} about topic {i % 3}" for i in range(30)]
  examples = [PairExample(f"question {i}", (i,), (i + 1, i + 2, i + 3)) for i in range(12)]
  examples.append(PairExample("no negatives", (5,), ()))  # Dropped: cannot form a group.
  make = lambda: PairSampler(examples, tokenizer, texts, None, global_batch=4, negatives=2,
                             num_devices=2, seed=0, max_length=24)
  a, b = make(), make()
  assert len(a.examples) == 12
  x, y = a.device_batches(3, [0, 1]), b.device_batches(3, [0, 1])
  jax.tree.map(np.testing.assert_array_equal, x, y)
  ids = x["passage_ids"].reshape(4, 3)  # Groups of [positive, 2 negatives].
  order = a.example_indices(3)
  for group, ex in zip(ids, order):
    assert group[0] == examples[ex].positives[0]
    assert set(group[1:]) <= set(examples[ex].negatives)
  assert x["pairs"]["input_ids"].shape == (12, 24)  # Fixed length: one shape per run.
  np.testing.assert_array_equal(a.device_batches(3, [1])["passage_ids"], ids[2:].reshape(-1))


@pytest.mark.parametrize("pooling", ["cls", "mean"])
def test_save_and_load_give_the_same_scores(tiny, tmp_path, pooling):
  _, params, tokenizer, _ = tiny
  model = ce.CrossEncoder(tiny[0].config, pooling=pooling)
  scorer = ce.CrossEncoderScorer(model, params, tokenizer, max_length=48)
  ce.save_cross_encoder(tmp_path, model, params, tokenizer)
  loaded = ce.load_cross_encoder(tmp_path, max_length=48)
  assert loaded.model.pooling == pooling
  q, t = ["who wrote it?", "when?"], ["Ada wrote it.", "In 1900."]
  np.testing.assert_allclose(loaded.score(q, t), scorer.score(q, t), rtol=1e-6)
  other = ce.CrossEncoderScorer(ce.CrossEncoder(model.config, pooling="mean" if pooling == "cls"
                                                else "cls"), params, tokenizer, max_length=48)
  assert np.abs(other.score(q, t) - scorer.score(q, t)).max() > 1e-4  # Pooling matters.
  import safetensors.numpy
  names = safetensors.numpy.load_file(tmp_path / "model.safetensors")
  assert names["classifier.weight"].shape == (1, 32)
  assert "bert.encoder.layer.0.attention.self.query.weight" in names


def test_head_learning_rate_applies_to_the_classifier_only():
  import ml_collections
  from rocketqa_jax.trainer import make_optimizer
  cfg = ml_collections.ConfigDict(dict(learning_rate=1e-5, head_learning_rate=1e-2,
                                       warmup_fraction=0.0, weight_decay=0.0, clip_norm=1e9))
  tx, _ = make_optimizer(cfg, total_steps=10)
  params = {"bert": {"w": jnp.ones(3)}, "classifier": {"kernel": jnp.ones(2)}}
  updates, _ = tx.update(jax.tree.map(jnp.ones_like, params), tx.init(params), params)
  np.testing.assert_allclose(updates["bert"]["w"], -1e-5, rtol=1e-3)  # Adam's first step: -lr.
  np.testing.assert_allclose(updates["classifier"]["kernel"], -1e-2, rtol=1e-3)
