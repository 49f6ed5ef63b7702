"""Fault injection for the crash-and-resume tests: with ROCKETQA_KILL_AFTER=<event>:<n> set, a
process SIGKILLs itself right after the n-th `event` it completes in a stage: a training "step",
a corpus "shard" or a pair-score "chunk" written. The tests then restart the run and compare its
outputs with a straight run's."""

from __future__ import annotations

import os
import signal
from typing import Callable

ENV = "ROCKETQA_KILL_AFTER"


def after(event: str, n: int, before: Callable[[], None] | None = None) -> None:
  """Called after the n-th `event`; kills this process if the environment asks for it, once
  `before` (e.g. waiting for a checkpoint to be written) has run."""
  if os.environ.get(ENV) == f"{event}:{n}":
    if before is not None:
      before()
    os.kill(os.getpid(), signal.SIGKILL)
