"""Which stages run, and whether what a workdir holds still matches the config.

A stage that finishes writes a record, `<workdir>/<stage>/stage.json`, last: the values of the
config fields its table entry names (`stages.STAGES`) and the fingerprints of the input stages it
read. A rerun skips a stage whose record exists, after checking that record against the config:
a changed field would silently reuse outputs made with the old value, and build every later
stage on them. So `plan` refuses, naming the field, the two values and the ways out: a new
workdir, or `config.rerun=STAGE`, which removes that stage's outputs and those of every stage
after it, then runs them again.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time

import jax

from rocketqa_jax import artifacts, distributed
from rocketqa_jax.errors import UserError
from rocketqa_jax.stages import BY_NAME, NAMES, STAGES, Stage
from rocketqa_jax.workdir import Workdir

log = logging.getLogger(__name__)
# Fields that never change an output (how often to log or checkpoint, how many to keep, how
# many pairs to score at a time).
UNRECORDED = ("log_every", "checkpoint_every", "keep_checkpoints", "score_chunk")


class StaleStageError(UserError, ValueError):
  """A finished stage whose outputs do not match the config (or its inputs) any more."""


class MissingInputError(UserError, ValueError):
  """A stage to run reads the outputs of a stage that neither ran nor runs now."""


def selected(config) -> list[Stage]:
  """config.stages, in the order given."""
  return [BY_NAME[name.strip()] for name in config.stages.split(",") if name.strip()]


def recorded_fields(stage: Stage, config) -> dict:
  """{dotted field: value} of every config leaf under the stage's config_fields."""
  out = {}
  fields = stage.config_fields
  for name in fields(config) if callable(fields) else fields:
    node = config
    for key in name.split("."):
      node = node[key]
    leaves = _leaves(node.to_dict(), name) if hasattr(node, "to_dict") else {name: node}
    out.update({k: v for k, v in leaves.items() if k.rsplit(".", 1)[-1] not in UNRECORDED})
  return json.loads(json.dumps(out, sort_keys=True))  # Tuples as lists, as read back.


def _leaves(tree: dict, prefix: str) -> dict:
  out = {}
  for key, value in tree.items():
    name = f"{prefix}.{key}"
    out.update(_leaves(value, name) if isinstance(value, dict) else {name: value})
  return out


def _fingerprint(fields: dict, inputs: dict) -> str:
  return hashlib.sha1(json.dumps([fields, inputs], sort_keys=True).encode()).hexdigest()


def read_record(workdir: Workdir, stage: str) -> dict | None:
  return artifacts.read_json(workdir.record(stage)) if workdir.is_complete(stage) else None


def _ways_out(workdir: Workdir, stage: str) -> str:
  return (f"Use a new workdir, or redo {stage} and the stages after it: "
          f"--config.rerun={stage} (their outputs in {workdir} are removed first).")


def check(stage: Stage, config, workdir: Workdir) -> None:
  """Raises StaleStageError if `stage`'s record disagrees with the config or with the records
  of its inputs (an input redone since)."""
  if not stage.resumable:
    return
  record, now = read_record(workdir, stage.name), recorded_fields(stage, config)
  if record is None:  # Not finished; started with another config, its partial outputs would mix.
    started = workdir.started(stage.name)
    changed = _difference(artifacts.read_json(started)["config"], now) if started.exists() else None
    if changed:
      field, old, new = changed
      raise StaleStageError(
          f"stage {stage.name} in {workdir} was started with config.{field}={old!r} and not "
          f"finished; this run has {new!r}, and resuming would continue its checkpoints (or "
          f"shards) under another config. Set it back to {old!r}, or start the stage over: "
          f"--config.rerun={stage.name} (its outputs and later stages' are removed first).")
    return
  changed = _difference(record["config"], now)
  if changed:
    field, old, new = changed
    raise StaleStageError(
        f"stage {stage.name} in {workdir} was made with config.{field}={old!r}; this run has "
        f"{new!r}, so its outputs, and what later stages build on them, would not match the "
        f"config. {_ways_out(workdir, stage.name)}")
  for name, fingerprint in record["inputs"].items():
    current = read_record(workdir, name)
    if current is None or current["fingerprint"] != fingerprint:
      raise StaleStageError(
          f"stage {stage.name} in {workdir} was made from other outputs of stage {name} than "
          f"the workdir holds now ({name} was redone or removed since). "
          f"{_ways_out(workdir, stage.name)}")


def _difference(old: dict, new: dict) -> tuple[str, object, object] | None:
  """The first field (in sorted order) whose value differs, with both values."""
  for field in sorted(set(old) | set(new)):
    if old.get(field, "<absent>") != new.get(field, "<absent>"):
      return field, old.get(field, "<absent>"), new.get(field, "<absent>")
  return None


def start(stage: Stage, config, workdir: Workdir) -> None:
  """Notes the config `stage` runs with before it writes anything (process 0), so that a later
  run with another config does not resume its partial outputs (`check`)."""
  if jax.process_index() == 0 and stage.resumable and not workdir.started(stage.name).exists():
    artifacts.write_json(workdir.started(stage.name), {
        "stage": stage.name, "config": recorded_fields(stage, config),
        "started": time.strftime("%Y-%m-%dT%H:%M:%S")})


def needed(config) -> list[Stage]:
  """The selected stages and, transitively, every stage whose outputs they read, in pipeline
  order: the stages whose records must match the config."""
  names, todo = set(), [s.name for s in selected(config)]
  while todo:
    name = todo.pop()
    if name not in names:
      names.add(name)
      todo.extend(BY_NAME[name].inputs)
  return [s for s in STAGES if s.name in names]


def plan(config, workdir: Workdir) -> list[Stage]:
  """The selected stages, after every check that can fail before anything runs: records that
  disagree with the config (StaleStageError), inputs that nothing provides (MissingInputError).
  With config.rerun, the outputs of that stage and of every later one are then removed."""
  redo = NAMES[NAMES.index(config.rerun):] if config.rerun else ()
  for stage in needed(config):
    if stage.name not in redo:
      check(stage, config, workdir)
  done = lambda name: name not in redo and workdir.is_complete(name)
  chosen = selected(config)
  for i, stage in enumerate(chosen):
    if not stage.resumable or done(stage.name):
      continue
    earlier = {s.name for s in chosen[:i]}
    for name in stage.inputs:
      if not done(name) and name not in earlier:
        raise MissingInputError(
            f"stage {stage.name} reads the outputs of stage {name}, which are not in {workdir}: "
            f"run that stage first (add it to config.stages before {stage.name})")
  if redo:
    if jax.process_index() == 0:
      for name in redo:
        for path in workdir.outputs(name):
          artifacts.remove(path)
    distributed.barrier("rerun: outputs removed")
    log.info("rerun=%s: removed the outputs of %s", config.rerun, ", ".join(redo))
  return chosen


def record(stage: Stage, config, workdir: Workdir, seconds: float) -> None:
  """Marks `stage` complete (process 0 writes; call it once every process is done). A stage
  that is not resumable (eval) runs every time and keeps no record."""
  if jax.process_index() != 0 or not stage.resumable:
    return
  fields = recorded_fields(stage, config)
  inputs = {name: r["fingerprint"] for name in stage.inputs
            if (r := read_record(workdir, name)) is not None}
  artifacts.write_json(workdir.record(stage.name), {
      "stage": stage.name, "config": fields, "inputs": inputs,
      "fingerprint": _fingerprint(fields, inputs), "seconds": round(seconds, 1),
      "finished": time.strftime("%Y-%m-%dT%H:%M:%S")})
