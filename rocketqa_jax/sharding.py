"""The device mesh and how batches and state are laid on it."""

from __future__ import annotations

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

DATA = "data"


def make_mesh(data: int = -1, devices=None) -> Mesh:
  """A 1-D mesh over `data` devices (-1: all). Axes are Auto: we place arrays with sharding
  annotations and let XLA propagate, rather than typing every array's sharding (Explicit).
  Room for an `fsdp` or `model` axis: add it here and give the state its shardings where
  `Trainer.init_state` creates it (replicated today)."""
  devices = jax.devices() if devices is None else list(devices)
  n = len(devices) if data == -1 else data
  if n > len(devices) or len(devices) % n:
    raise ValueError(f"mesh.data={data} does not divide the {len(devices)} devices")
  return Mesh(np.asarray(devices[:n]), (DATA,), axis_types=(jax.sharding.AxisType.Auto,))


def replicated(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, P())


def batch_sharding(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, P(DATA))


def local_device_positions(mesh: Mesh) -> list[int]:
  """Positions along the data axis of this process's devices, in mesh order."""
  return [i for i, d in enumerate(mesh.devices.flat) if d.process_index == jax.process_index()]


def global_batch(mesh: Mesh, local: dict) -> dict:
  """This process's slice of every array -> global arrays sharded over the data axis."""
  sharding = batch_sharding(mesh)
  return jax.tree.map(lambda x: jax.make_array_from_process_local_data(sharding, x), local)
