"""Full training state (params, optimizer state, step) with orbax, for exact resumption.

The step is also the data position (batches are a pure function of the step), and the sampler's
signature is saved beside the state so that resuming with a different data setup fails loudly
instead of silently training on another order. Parameters-only loading for inference goes
through exported towers (`hf_checkpoint`, `load_encoder`), kept apart from this.
"""

from __future__ import annotations

import logging

import jax
import orbax.checkpoint as ocp

from rocketqa_jax import artifacts
from rocketqa_jax.errors import UserError

log = logging.getLogger(__name__)


class CorruptCheckpointError(UserError):
  """No checkpoint of a stage reads back."""


class Checkpoints:
  """Saves every `every` steps (and when forced), keeps the last `keep`, restores the latest."""

  def __init__(self, directory: artifacts.PathLike, *, every: int, keep: int):
    """`directory`: a local folder or gs://... (orbax commits on an object store with a marker
    file instead of a rename)."""
    options = ocp.CheckpointManagerOptions(save_interval_steps=every, max_to_keep=keep,
                                           enable_async_checkpointing=True)
    self.manager = ocp.CheckpointManager(artifacts.path(directory), options=options,
                                         item_names=("state", "data"))

  def latest_step(self) -> int | None:
    return self.manager.latest_step()

  def save(self, step: int, state, data_signature: dict, *, force: bool = False) -> bool:
    args = ocp.args.Composite(state=ocp.args.StandardSave(state),
                              data=ocp.args.JsonSave(data_signature))
    return self.manager.save(step, args=args, force=force)

  def restore(self, abstract_state, data_signature: dict, step: int | None = None):
    """The state at `step` (default: the latest that reads back: a checkpoint that does not,
    truncated or corrupted, is named in a warning and the one before it is used), laid out as
    `abstract_state`'s shardings."""
    target = jax.tree.map(
        lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=x.sharding), abstract_state)
    args = ocp.args.Composite(state=ocp.args.StandardRestore(target),
                              data=ocp.args.JsonRestore())
    steps = [step] if step is not None else sorted(self.manager.all_steps(), reverse=True)
    for i, step in enumerate(steps):
      try:
        restored = self.manager.restore(step, args=args)
        break
      except Exception as e:  # orbax and TensorStore raise many kinds for a damaged file.
        where = f"{self.manager.directory}/{step}"
        why = f"{type(e).__name__}: {str(e).splitlines()[0][:200]}"
        if i + 1 == len(steps):
          raise CorruptCheckpointError(
              f"{where}: cannot be read ({why}) and no older checkpoint is kept. Remove the "
              "folder to start the stage over.") from e
        log.warning("checkpoint %s cannot be read (%s); resuming from step %d instead", where,
                    why, steps[i + 1])
        self.manager.delete(step)  # Its step is saved again when training passes it.
    if restored.data != data_signature:
      raise ValueError(
          f"checkpoint {self.manager.directory}/{step} was written with data {restored.data}, "
          f"this run has {data_signature}: resuming would not replay the same batches. Use a "
          "new workdir, or restore the original data config.")
    return restored.state

  def close(self) -> None:
    self.manager.wait_until_finished()
    self.manager.close()
