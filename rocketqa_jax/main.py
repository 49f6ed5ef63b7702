"""Runs the configured stages: python -m rocketqa_jax.main --config=configs/x.py --workdir=DIR.

Overrides: --config.model.dtype=bfloat16; config arguments: --config=configs/x.py:quick.
"""

import json
import logging
import os
import pathlib
import time

import jax
from absl import app, flags
from absl import logging as absl_logging
from ml_collections import config_flags

from rocketqa_jax import artifacts, config_lib, distributed, matmul, stages
from rocketqa_jax.host_memory import keep_freed_memory

_CONFIG = config_flags.DEFINE_config_file("config", None, "Config file (configs/*.py[:arg]).",
                                          lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "Where every stage writes its outputs.")
flags.mark_flags_as_required(["config", "workdir"])

STAGES = {name: getattr(stages, name) for name in config_lib.STAGES if name != "eval"}
STAGES["eval"] = stages.evaluate


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  keep_freed_memory()  # Before JAX starts its threads (host_memory.py says why).
  # Our progress at INFO; libraries (orbax logs every save step, jax "no TPU found") at WARNING.
  absl_logging.set_verbosity(absl_logging.WARNING)
  logging.getLogger("rocketqa_jax").setLevel(logging.INFO)
  distributed.initialize()
  config = _CONFIG.value
  try:
    config_lib.validate(config)
  except ValueError as e:
    raise app.UsageError(str(e)) from None
  if config.compilation_cache and not os.environ.get("JAX_COMPILATION_CACHE_DIR"):
    jax.config.update("jax_compilation_cache_dir", os.path.expanduser(config.compilation_cache))
  workdir = pathlib.Path(_WORKDIR.value)
  artifacts.write_text_atomic(workdir / "config.json", config.to_json_best_effort(indent=2))
  log = logging.getLogger("rocketqa_jax")
  log.info("matrix products in %s (model.matmul_dtype=%s, %s)",
           matmul.resolve_dtype(config.model.matmul_dtype), config.model.matmul_dtype,
           jax.devices()[0].device_kind)
  seconds = {}
  for stage in config_lib.stages(config):
    log.info("stage %s", stage)
    ran = not stages.is_complete(stage, workdir)  # Else the stage skips itself.
    start = time.perf_counter()
    STAGES[stage](config, workdir)
    distributed.barrier(f"stage {stage}")
    seconds[stage] = time.perf_counter() - start
    if ran and jax.process_index() == 0:  # A line per stage run: a resumed run adds its rest.
      with (workdir / "timings.jsonl").open("a") as f:
        f.write(json.dumps({"stage": stage, "seconds": round(seconds[stage], 1),
                            "finished": time.strftime("%Y-%m-%dT%H:%M:%S")}) + "\n")
  log.info("wall time per stage (s): %s; total %.0f s",
           ", ".join(f"{k} {v:.0f}" for k, v in seconds.items()), sum(seconds.values()))


if __name__ == "__main__":
  app.run(main, flags_parser=config_lib.parse_flags)
