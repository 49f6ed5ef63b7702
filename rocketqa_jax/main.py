"""Runs the configured stages: python -m rocketqa_jax.main --config=configs/x.py --workdir=DIR.

Overrides: --config.model.dtype=bfloat16; config arguments: --config=configs/x.py:quick.
"""

import logging
import pathlib

from absl import app, flags
from ml_collections import config_flags

from rocketqa_jax import artifacts, config_lib, evaluation

_CONFIG = config_flags.DEFINE_config_file("config", None, "Config file (configs/*.py[:arg]).",
                                          lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "Where every stage writes its outputs.")
flags.mark_flags_as_required(["config", "workdir"])

STAGES = {"eval": evaluation.run}


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
  logging.getLogger("jax").setLevel(logging.WARNING)  # Not "no TPU found" on every CPU run.
  config = _CONFIG.value
  try:
    config_lib.validate(config)
  except ValueError as e:
    raise app.UsageError(str(e)) from None
  workdir = pathlib.Path(_WORKDIR.value)
  artifacts.write_text_atomic(workdir / "config.json", config.to_json_best_effort(indent=2))
  for stage in config_lib.stages(config):
    logging.info("stage %s", stage)
    STAGES[stage](config, workdir)


if __name__ == "__main__":
  app.run(main, flags_parser=config_lib.parse_flags)
