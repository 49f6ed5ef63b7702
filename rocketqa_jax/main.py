"""Runs the configured stages: python -m rocketqa_jax.main --config=configs/x.py --workdir=DIR.

Overrides: --config.model.dtype=bfloat16; config arguments: --config=configs/x.py:quick. The
workdir may be a local folder or gs://bucket/path.
"""

import json
import logging
import os
import time
import traceback

import jax
from absl import app, flags
from absl import logging as absl_logging
from ml_collections import config_flags

from rocketqa_jax import (artifacts, config_lib, cpu_kernels, distributed, errors, matmul,
                          pipeline, usage)
from rocketqa_jax.data import datasets, lines
from rocketqa_jax.host_memory import keep_freed_memory
from rocketqa_jax.workdir import Workdir

_CONFIG = config_flags.DEFINE_config_file("config", None, "Config file (configs/*.py[:arg]).",
                                          lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "Where every stage writes its outputs "
                               "(a local folder or gs://...).")
flags.mark_flags_as_required(["config", "workdir"])


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  keep_freed_memory()  # Before JAX starts its threads (host_memory.py says why).
  errors.quiet_library_errors()
  # Our progress at INFO; libraries (orbax logs every save step, jax "no TPU found") at WARNING.
  absl_logging.set_verbosity(absl_logging.WARNING)
  logging.getLogger("rocketqa_jax").setLevel(logging.INFO)
  distributed.initialize()
  # A failed process of several tells the others and exits (distributed.fail), or they would
  # wait for it forever; one process alone fails as usual.
  try:
    run(_CONFIG.value, Workdir(_WORKDIR.value))
  except SystemExit as e:
    if e.code not in (None, 0):
      distributed.fail(str(e.code), e.code if isinstance(e.code, int) else 1)
    raise
  except BaseException as e:
    short = errors.short_message(e)
    if short is not None:  # One line, not a traceback (errors.py).
      distributed.fail(f"error: {short}", errors.EXIT_CODE)
      errors.exit_for(e)
    distributed.fail(traceback.format_exc() + f"{type(e).__name__}: {e}")
    raise


def run(config, workdir: Workdir) -> None:
  """Checks the config and the workdir, then runs the stages to do."""
  config_lib.validate(config)
  datasets.check_files(config.data)
  if config.compilation_cache and not os.environ.get("JAX_COMPILATION_CACHE_DIR"):
    jax.config.update("jax_compilation_cache_dir", os.path.expanduser(config.compilation_cache))
  stages = pipeline.plan(config, workdir)
  log = logging.getLogger("rocketqa_jax")
  device = jax.devices()[0]
  log.info("%d %s device(s) (%s) in %d process(es); stages: %s", jax.device_count(),
           device.platform, device.device_kind, jax.process_count(),
           ", ".join(s.name for s in stages))
  log.info("matrix products in %s (model.matmul_dtype=%s, %s); CPU kernels %s "
           "(model.cpu_kernels=%s)", matmul.resolve_dtype(config.model.matmul_dtype),
           config.model.matmul_dtype, device.device_kind,
           "on" if cpu_kernels.resolve(config.model.cpu_kernels, device) else "off",
           config.model.cpu_kernels)
  seconds = {}
  for stage in stages:
    if stage.resumable and workdir.is_complete(stage.name):
      log.info("%s: %s is complete, skipping", stage.name, workdir.stage(stage.name))
      continue
    log.info("stage %s", stage.name)
    usage.reset()
    start = time.perf_counter()
    pipeline.start(stage, config, workdir)
    stage.run(config, workdir)
    seconds[stage.name] = time.perf_counter() - start
    pipeline.record(stage, config, workdir, seconds[stage.name])
    if len(seconds) == 1 and jax.process_index() == 0:
      save_config(config, workdir)
    # What each process did, and its peak memory (usage.py). The gather is also the barrier that
    # keeps every process here until process 0 has written the stage's outputs and record, so
    # that all see the same workdir when the next stage starts (eval picks its models by them).
    processes = distributed.gather_json(dict(usage.report(),
                                             seconds=round(seconds[stage.name], 1)))
    if jax.process_index() == 0:  # A line per stage run: a resumed run adds its rest.
      artifacts.append_line(workdir.timings, json.dumps({
          "stage": stage.name, "seconds": round(seconds[stage.name], 1),
          "finished": time.strftime("%Y-%m-%dT%H:%M:%S"), "processes": processes,
          **({"skipped_lines": dict(lines.SKIPPED)} if lines.SKIPPED else {})}))
  log.info("wall time per stage (s): %s; total %.0f s",
           ", ".join(f"{k} {v:.0f}" for k, v in seconds.items()), sum(seconds.values()))


def save_config(config, workdir: Workdir) -> None:
  """config.json, which search reads: the config of the last run that finished a stage (a run
  that fails before, or finds everything done, leaves it as it was); the one before it beside."""
  if workdir.config.exists():
    artifacts.write_text(workdir.previous_config, workdir.config.read_text())
  artifacts.write_text(workdir.config, config.to_json_best_effort(indent=2))


def cli():
  """`rocketqa-train`, the console script: the same as `python -m rocketqa_jax.main`."""
  app.run(main, flags_parser=config_lib.parse_flags)


if __name__ == "__main__":
  cli()
