"""Joining a multi-process (multi-host) run: the same code path on a TPU pod, a GPU cluster, or
several local CPU processes in tests."""

from __future__ import annotations

import json
import os

import jax
import numpy as np
from jax.experimental import multihost_utils

COORDINATOR_ENV = "ROCKETQA_COORDINATOR"  # host:port of process 0.
NUM_PROCESSES_ENV = "ROCKETQA_NUM_PROCESSES"
PROCESS_ID_ENV = "ROCKETQA_PROCESS_ID"
AUTO_ENV = "ROCKETQA_DISTRIBUTED"  # "1": let JAX detect the cluster (Cloud TPU pods, SLURM).


def initialize() -> None:
  """Calls jax.distributed.initialize when the environment asks for it; else a no-op."""
  if os.environ.get(COORDINATOR_ENV):
    if jax.config.jax_platforms in (None, "", "cpu") and os.environ.get(
        "JAX_PLATFORMS", "cpu") == "cpu":
      jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(coordinator_address=os.environ[COORDINATOR_ENV],
                               num_processes=int(os.environ[NUM_PROCESSES_ENV]),
                               process_id=int(os.environ[PROCESS_ID_ENV]))
  elif os.environ.get(AUTO_ENV) == "1":
    jax.distributed.initialize()


def barrier(name: str) -> None:
  """Every process waits here for the others, so what one process wrote (process 0's exported
  towers, another process's corpus shards) is on disk before anyone reads it."""
  if jax.process_count() > 1:
    multihost_utils.sync_global_devices(name)


def gather_json(obj) -> list:
  """Every process's `obj` (anything JSON can hold), in process order, on every process."""
  if jax.process_count() == 1:
    return [obj]
  data = np.frombuffer(json.dumps(obj).encode("utf-8"), np.uint8)
  sizes = np.asarray(multihost_utils.process_allgather(np.int32(len(data)))).reshape(-1)
  padded = np.zeros(int(sizes.max()), np.uint8)
  padded[:len(data)] = data
  everyone = np.asarray(multihost_utils.process_allgather(padded))
  return [json.loads(row[:n].tobytes()) for row, n in zip(everyone, sizes)]
