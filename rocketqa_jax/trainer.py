"""Training: sharded state, one jitted update step, metrics, checkpoints, exact resume.

The trainer knows nothing of the model: it gets a loss `loss_fn(params, batch, rng) -> (loss,
metrics)` and a sampler whose batches are a pure function of the step (dual encoder and
cross-encoder alike).
"""

from __future__ import annotations

import functools
import json
import logging
import math
import time
from typing import Any

import flax.struct
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from rocketqa_jax import artifacts, faults, host_memory, sharding
from rocketqa_jax.checkpointing import Checkpoints
from rocketqa_jax.data.sampler import BatchSampler
from rocketqa_jax.errors import UserError

log = logging.getLogger(__name__)


@flax.struct.dataclass
class TrainState:
  step: jax.Array
  params: Any
  opt_state: Any
  skipped: jax.Array  # Updates skipped because the loss or gradients were not finite.


HEAD = "classifier"  # A top-level parameter group that `head_learning_rate` applies to.


def make_optimizer(cfg, total_steps: int):
  """AdamW with global-norm clipping; linear warmup to the peak rate, then linear decay to 0.

  With `cfg.head_learning_rate` set, the top-level group `classifier` (the cross-encoder's
  freshly initialized head) has that peak instead of the pretrained body's."""
  warmup = int(cfg.warmup_fraction * total_steps)
  def schedule_for(peak):
    return optax.join_schedules([
        optax.linear_schedule(0.0, peak, max(warmup, 1)),
        optax.linear_schedule(peak, 0.0, max(total_steps - warmup, 1))], [warmup])
  schedule = schedule_for(cfg.learning_rate)
  adamw = lambda s: optax.adamw(s, weight_decay=cfg.weight_decay)
  if cfg.get("head_learning_rate", 0.0):
    update = optax.multi_transform(
        {"body": adamw(schedule), "head": adamw(schedule_for(cfg.head_learning_rate))},
        lambda params: {k: "head" if k == HEAD else "body" for k in params})
  else:
    update = adamw(schedule)
  return optax.chain(optax.clip_by_global_norm(cfg.clip_norm), update), schedule


def train_step(state: TrainState, batch: dict, *, loss_fn, tx, schedule, rng) -> tuple:
  """One update; a non-finite loss or gradient leaves params and optimizer state unchanged."""
  step_rng = jax.random.fold_in(rng, state.step)
  (loss, metrics), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params, batch,
                                                                     step_rng)
  grad_norm = optax.tree.norm(grads)
  updates, opt_state = tx.update(grads, state.opt_state, state.params)
  params = optax.apply_updates(state.params, updates)
  finite = jnp.isfinite(loss) & jnp.isfinite(grad_norm)
  keep_if_finite = lambda new, old: jax.tree.map(lambda n, o: jnp.where(finite, n, o), new, old)
  new_state = TrainState(step=state.step + 1, params=keep_if_finite(params, state.params),
                         opt_state=keep_if_finite(opt_state, state.opt_state),
                         skipped=state.skipped + (~finite).astype(jnp.int32))
  metrics = dict(metrics, loss=loss, grad_norm=grad_norm, learning_rate=schedule(state.step),
                 skipped=new_state.skipped)
  return new_state, metrics


class Trainer:
  """Minimizes `loss_fn` over `sampler`'s batches. Writes into `directory` (local or gs://)
  `checkpoints/` (orbax), `metrics.jsonl` and `tensorboard/`."""

  def __init__(self, cfg, loss_fn, sampler: BatchSampler, mesh, directory: artifacts.PathLike,
               seed: int = 0):
    self.cfg, self.sampler, self.mesh = cfg, sampler, mesh
    self.directory = artifacts.path(directory)
    self.tx, self.schedule = make_optimizer(cfg, cfg.steps)
    if not cfg.get("dropout", True):  # The loss runs deterministically when given no RNG.
      loss_fn = functools.partial(_without_rng, loss_fn)
    step = functools.partial(train_step, loss_fn=loss_fn, tx=self.tx, schedule=self.schedule,
                             rng=jax.random.key(seed))
    self.step_fn = jax.jit(step, donate_argnums=(0,))

  def _init(self, params) -> TrainState:
    return TrainState(step=jnp.zeros((), jnp.int32), params=params,
                      opt_state=self.tx.init(params), skipped=jnp.zeros((), jnp.int32))

  def init_state(self, params) -> TrainState:
    """The state created directly with its sharding (here: replicated over the data axis)."""
    shardings = jax.tree.map(lambda _: sharding.replicated(self.mesh),
                             jax.eval_shape(self._init, params))
    return jax.jit(self._init, out_shardings=shardings)(params)

  def batch(self, step: int) -> dict:
    local = self.sampler.device_batches(step, sharding.local_device_positions(self.mesh))
    return sharding.global_batch(self.mesh, local)

  def train(self, params) -> TrainState:
    """Runs to cfg.steps, resuming from the latest checkpoint when there is one."""
    from tqdm.auto import tqdm
    cfg, signature = self.cfg, self.sampler.signature()
    checkpoints = Checkpoints(self.directory / "checkpoints", every=cfg.checkpoint_every,
                              keep=cfg.keep_checkpoints)
    state = self.init_state(params)
    if checkpoints.latest_step() is not None:
      state = checkpoints.restore(state, signature)
      log.info("resumed from step %d", int(state.step))
    start = int(state.step)
    metrics_log = MetricsLog(self.directory / "metrics.jsonl", start)
    bar = tqdm(initial=start, total=cfg.steps, desc="train", unit="step", dynamic_ncols=True,
               disable=jax.process_index() != 0)
    last_time, last_step, skipped = time.perf_counter(), start, int(state.skipped)
    # With freed host memory kept for reuse (CPUs), one step at a time (host_memory.py says
    # why); elsewhere steps stay queued ahead.
    one_at_a_time = host_memory.is_kept()
    try:
      for step in range(start, cfg.steps):
        state, metrics = self.step_fn(state, self.batch(step))
        if one_at_a_time:
          jax.block_until_ready(metrics)
        checkpoints.save(step + 1, state, signature, force=step + 1 == cfg.steps)
        if (step + 1) % cfg.log_every == 0 or step + 1 == cfg.steps:
          metrics = {k: float(v) for k, v in jax.device_get(metrics).items()}
          now = time.perf_counter()
          metrics.update(step=step + 1, queries_per_s=(step + 1 - last_step) * cfg.global_batch
                         / (now - last_time))
          last_time, last_step = now, step + 1
          metrics_log.write(metrics)
          if metrics["skipped"] > skipped:
            skipped = int(metrics["skipped"])
            log.warning("non-finite loss or gradients: %d updates skipped by step %d",
                        skipped, step + 1)
          bar.set_postfix(loss=f"{metrics['loss']:.3f}", acc=f"{metrics['accuracy']:.2f}")
        bar.update(1)
        # Resume tests: killed once the checkpoints started are written (resumption's start).
        faults.after("step", step + 1, before=checkpoints.manager.wait_until_finished)
    finally:  # Also on Ctrl-C or an error: let the checkpoint being written finish.
      bar.close()
      metrics_log.close()
      checkpoints.close()
    check_updates(int(state.skipped), cfg, self.directory)
    return state


def check_updates(skipped: int, cfg, directory) -> None:
  """Raises when most updates were skipped (non-finite loss or gradients): the weights are
  then a step's blow-up, and every embedding they give is NaN or noise."""
  if skipped * 2 > cfg.steps:
    raise UserError(
        f"{directory}: {skipped} of {cfg.steps} updates were skipped for a non-finite loss or "
        f"gradients: training diverged and its model is not usable. Lower the learning rate "
        f"(now {cfg.learning_rate:g}), then start the stage over with --config.rerun=STAGE.")


def _without_rng(loss_fn, params, batch, rng):
  del rng
  return loss_fn(params, batch, None)


def steps_for(cfg, examples: int, epochs: float = 0.0):
  """`cfg` with `steps` set: as given when positive, else `epochs` (default cfg.epochs) passes
  over `examples`."""
  cfg = ml_collections.ConfigDict(cfg.to_dict())
  if cfg.steps <= 0:
    cfg.steps = max(1, math.ceil((epochs or cfg.epochs) * examples / cfg.global_batch))
  return cfg


class MetricsLog:
  """Training metrics as JSONL and as TensorBoard events (`tensorboard/` beside it), written by
  process 0; on resume, what was logged past the restored step (after the last checkpoint,
  before a crash) is dropped, so no step appears twice."""

  def __init__(self, path, start_step: int):
    self.path = path
    self.enabled = jax.process_index() == 0
    self.tensorboard = None
    if not self.enabled:
      return
    if path.exists():
      kept = [line for line in path.read_text().splitlines()
              if line and json.loads(line)["step"] <= start_step]
      artifacts.write_text(path, "".join(line + "\n" for line in kept))
    from tensorboardX import SummaryWriter
    self.tensorboard = SummaryWriter(str(path.parent / "tensorboard"),
                                     purge_step=start_step + 1 if start_step else None)

  def write(self, metrics: dict) -> None:
    if self.enabled:
      artifacts.append_line(self.path, json.dumps(metrics))
      for name, value in metrics.items():
        if name != "step":
          self.tensorboard.add_scalar(f"train/{name}", value, metrics["step"])
      self.tensorboard.flush()

  def close(self) -> None:
    if self.tensorboard is not None:
      self.tensorboard.close()


def host_params(params) -> Any:
  """Replicated (possibly multi-host) params -> numpy on this host."""
  return jax.tree.map(lambda x: np.asarray(x.addressable_data(0)), params)
