"""Joining a multi-process (multi-host) run: the same code path on a TPU pod, a GPU cluster, or
several local CPU processes in tests.

When one process fails, the others must not wait for it forever: they would block in the next
collective (a barrier, a training step), and a failed process itself blocks at exit in
jax.distributed's shutdown barrier. So `fail` posts the error to the coordination service's
key-value store and exits at once, and every process watches that key (`_watch`, once a second)
and exits non-zero when it appears. A process that dies without a word (SIGKILL, out of memory)
is noticed by the coordination service's heartbeat instead, after `heartbeat_seconds` (JAX's
default: 100 s), and JAX then ends the others.
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import sys
import threading

import jax
import numpy as np
from jax.experimental import multihost_utils

COORDINATOR_ENV = "ROCKETQA_COORDINATOR"  # host:port of process 0.
NUM_PROCESSES_ENV = "ROCKETQA_NUM_PROCESSES"
PROCESS_ID_ENV = "ROCKETQA_PROCESS_ID"
AUTO_ENV = "ROCKETQA_DISTRIBUTED"  # "1": let JAX detect the cluster (Cloud TPU pods, SLURM).
HEARTBEAT_ENV = "ROCKETQA_HEARTBEAT_SECONDS"  # How long a silent process may be silent.
FAILED_KEY = "rocketqa_jax/failed"
# jax releases whose multi-process CPU collectives deadlock in the first training step after an
# orbax restore (tests/test_multihost.py; 0.10.2 and 0.12.0.1 pass it). requirements.txt skips them.
GLOO_RESUME_HANGS = ("0.12.1",)


def initialize() -> None:
  """Calls jax.distributed.initialize when the environment asks for it; else a no-op."""
  heartbeat = dict(heartbeat_timeout_seconds=int(os.environ[HEARTBEAT_ENV])
                   ) if os.environ.get(HEARTBEAT_ENV) else {}
  if os.environ.get(COORDINATOR_ENV):
    if jax.config.jax_platforms in (None, "", "cpu") and os.environ.get(
        "JAX_PLATFORMS", "cpu") == "cpu":
      jax.config.update("jax_cpu_collectives_implementation", "gloo")
      if jax.__version__ in GLOO_RESUME_HANGS:
        logging.warning("jax %s: CPU processes resumed from a training checkpoint hang in their "
                        "first step (gloo); requirements.txt excludes it: install another "
                        "jax, e.g. 0.12.0.1", jax.__version__)
    jax.distributed.initialize(coordinator_address=os.environ[COORDINATOR_ENV],
                               num_processes=int(os.environ[NUM_PROCESSES_ENV]),
                               process_id=int(os.environ[PROCESS_ID_ENV]), **heartbeat)
  elif os.environ.get(AUTO_ENV) == "1":
    jax.distributed.initialize(**heartbeat)
  else:
    return
  if jax.process_count() > 1:
    _watch()


def _client():
  """jax.distributed's client of the coordination service (JAX has no public handle on it)."""
  from jax._src import distributed
  return distributed.global_state.client


def _watch(interval: float = 1.0) -> None:
  """A thread that ends this process (exit code 1) once another process has posted a failure."""
  client, stop = _client(), threading.Event()

  def watch():
    while not stop.wait(interval):
      try:
        message = client.key_value_try_get(FAILED_KEY)
      except Exception:  # Not posted (NOT_FOUND), or the service is going away.
        continue
      print(f"process {jax.process_index()}: exiting: {message}", file=sys.stderr, flush=True)
      os._exit(1)

  thread = threading.Thread(target=watch, name="rocketqa-failure-watch", daemon=True)
  thread.start()
  # Registered after jax.distributed's own exit handler, so it runs first: the thread is
  # stopped before the client it polls shuts down.
  atexit.register(lambda: (stop.set(), thread.join()))


def fail(message: str, code: int = 1) -> None:
  """In a multi-process run: prints `message`, posts it for the other processes (which exit
  too) and ends this one with `code` at once. A no-op in a single process (the caller raises as
  usual)."""
  if jax.process_count() == 1:
    return
  print(message, file=sys.stderr)
  try:
    _client().key_value_set(FAILED_KEY, f"process {jax.process_index()} failed: "
                            f"{message.strip().splitlines()[-1]}")
  except Exception:  # Another process posted first.
    pass
  sys.stdout.flush()
  sys.stderr.flush()
  logging.shutdown()
  os._exit(code)


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
