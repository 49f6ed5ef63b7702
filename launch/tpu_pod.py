"""Runs the pipeline on a Cloud TPU VM slice: request it, copy the repo to every worker, set up
Python and the requirements, start the job in the background, watch it (re-launching after a
spot preemption: the pipeline resumes from the workdir), delete the slice.

  python launch/tpu_pod.py --name=rq --zone=us-east5-b --accelerator=v6e-16 \\
      --data=gs://BUCKET/dpr --config=configs/nq.py:root=../rocketqa-data \\
      --workdir=gs://BUCKET/nq [--spot] [--dry-run]
  python launch/tpu_pod.py --name=rq --zone=us-east5-b --steps=status   # the stage per worker
  python launch/tpu_pod.py --name=rq --zone=us-east5-b --steps=logs     # each worker's log tail

The slice is a queued resource (`gcloud compute tpus queued-resources`), the one way to ask for
spot capacity on today's generations; the runtime version follows the accelerator (RUNTIMES,
from the Cloud TPU "software versions" page; --version overrides it). Every worker runs
launch/tpu_worker.sh: `setup` makes a Python >= 3.11 venv (the images ship 3.10) and installs
`jax[tpu]` with the requirements; `start` runs `python -m rocketqa_jax.main` detached from the
ssh session, with ROCKETQA_DISTRIBUTED=1 (jax.distributed finds the coordinator itself), its log
on the worker and copied to <workdir>/logs/. The workdir should be on gs://: every worker writes
the same one, and it outlives the slice. The data (--data, a gs:// folder) is copied to each
worker's disk at setup, as ~/rocketqa-data (the job runs in ~/rocketqa_jax, so the config's
root is ../rocketqa-data): the corpus is read by position at every step. `--dry-run` prints every
command and runs none; each step can be run alone (--steps=watch re-enters a running job).
"""

from __future__ import annotations

import argparse
import pathlib
import shlex
import subprocess
import sys
import time

REPO = pathlib.Path(__file__).resolve().parents[1]
STEPS = ("create", "copy", "setup", "start", "watch", "delete")  # The default run, in order.
OPERATIONS = ("status", "logs")  # Asked for alone, on a running slice.
# Accelerator type prefix -> TPU runtime (software) version for JAX:
# https://cloud.google.com/tpu/docs/runtimes ("TPU software versions": PyTorch and JAX).
RUNTIMES = {"v4": "tpu-ubuntu2204-base", "v5litepod": "v2-alpha-tpuv5-lite",
            "v5p": "v2-alpha-tpuv5", "v6e": "v2-alpha-tpuv6e"}
TARBALL = "/tmp/rocketqa_jax.tar.gz"
WORKER = "bash rocketqa_jax/launch/tpu_worker.sh"
# Queued-resource states (https://cloud.google.com/tpu/docs/queued-resources): a spot slice that
# is preempted goes SUSPENDING then SUSPENDED and is not given back; it must be asked for anew.
LOST = ("SUSPENDING", "SUSPENDED", "FAILED")


def runtime_version(accelerator: str, override: str = "") -> str:
  if override:
    return override
  generation = accelerator.rsplit("-", 1)[0]
  if generation not in RUNTIMES:
    raise SystemExit(f"--accelerator={accelerator}: no runtime version known for {generation!r} "
                     f"(known: {', '.join(RUNTIMES)}); pass --version=...")
  return RUNTIMES[generation]


class Gcloud:
  """The gcloud commands for one slice, as argv lists."""

  def __init__(self, args):
    self.args = args
    self.where = [f"--zone={args.zone}"] + ([f"--project={args.project}"] if args.project else [])

  def create(self) -> list[str]:
    a = self.args
    return ["gcloud", "compute", "tpus", "queued-resources", "create", a.name,
            f"--node-id={a.name}", *self.where, f"--accelerator-type={a.accelerator}",
            f"--runtime-version={runtime_version(a.accelerator, a.version)}",
            *(["--spot"] if a.spot else [])]

  def state(self) -> list[str]:
    return ["gcloud", "compute", "tpus", "queued-resources", "describe", self.args.name,
            *self.where, "--format=value(state.state)"]

  def delete(self) -> list[str]:  # --force: the slice with it.
    return ["gcloud", "compute", "tpus", "queued-resources", "delete", self.args.name,
            *self.where, "--force", "--quiet"]

  def scp(self) -> list[str]:
    return ["gcloud", "compute", "tpus", "tpu-vm", "scp", TARBALL,
            f"{self.args.name}:~/rocketqa_jax.tar.gz", *self.where, "--worker=all"]

  def on_workers(self, command: str) -> list[str]:
    return ["gcloud", "compute", "tpus", "tpu-vm", "ssh", self.args.name, *self.where,
            "--worker=all", f"--command={command}"]


def plan(args, steps) -> list[tuple[str, list[str]]]:
  """(step, argv) for the steps that are plain commands (watch is a loop: `watch`)."""
  g = Gcloud(args)
  start = shlex.join(["start", args.config, args.workdir, *args.override])
  data = [args.data] if args.data else []
  commands = {
      "create": [g.create()],
      # The committed tree (git archive): what is tested is what runs.
      "copy": [["git", "-C", str(REPO), "archive", "--format=tar.gz", f"--output={TARBALL}",
                "HEAD"], g.scp()],
      "setup": [g.on_workers("rm -rf rocketqa_jax && mkdir rocketqa_jax && tar xzf "
                             "rocketqa_jax.tar.gz -C rocketqa_jax && "
                             + shlex.join([*shlex.split(WORKER), "setup", *data]))],
      "start": [g.on_workers(f"{WORKER} {start}")],
      "delete": [g.delete()],
      "status": [g.on_workers(f"{WORKER} status")],
      "logs": [g.on_workers(f"{WORKER} logs {args.lines}")],
  }
  return [(step, argv) for step in steps if step != "watch" for argv in commands[step]]


def run(step: str, argv: list[str], dry_run: bool, capture: bool = False) -> tuple[int, str]:
  print(f"[{step}] {shlex.join(argv)}", flush=True)
  if dry_run:
    return 0, ""
  done = subprocess.run(argv, capture_output=capture, text=True, check=False)
  return done.returncode, done.stdout if capture else ""


def wait_active(args, execute=run) -> None:
  """Polls the queued resource until its slice is up (a spot request may wait hours)."""
  while True:
    code, out = execute("create", Gcloud(args).state(), args.dry_run, capture=True)
    state = out.strip()
    if args.dry_run or state == "ACTIVE":
      return
    if code or state in LOST:
      raise SystemExit(f"queued resource {args.name}: {state or 'not found'}")
    print(f"{args.name}: {state}; next look in {args.poll} s", flush=True)
    time.sleep(args.poll)


def watch(args, execute=run, sleep=time.sleep) -> int:
  """Until every worker has finished: the state of the slice and of each worker's job, every
  `--poll` seconds. A preempted (lost) slice is deleted, asked for again, set up and started:
  the pipeline resumes from the workdir. Returns 0 when all workers exited 0."""
  g = Gcloud(args)
  if args.dry_run:  # The two looks of each round; a re-launch is delete, create, setup, start.
    execute("watch", g.state(), True)
    execute("watch", g.on_workers(f"{WORKER} status"), True)
    return 0
  relaunches = 0
  while True:
    code, state = execute("watch", g.state(), args.dry_run, capture=True)
    state = state.strip() if not code else "not found"
    if state in LOST or state == "not found":
      if relaunches == args.max_relaunches:
        print(f"{args.name}: {state} after {relaunches} re-launches; giving up", file=sys.stderr)
        return 1
      relaunches += 1
      print(f"{args.name}: {state}: re-launch {relaunches} (the pipeline resumes)", flush=True)
      for step, argv in plan(args, ["delete", "create"]):
        execute(step, argv, args.dry_run)
      wait_active(args, execute)
      for step, argv in plan(args, ["copy", "setup", "start"]):
        if execute(step, argv, args.dry_run)[0]:
          print(f"[{step}] failed during re-launch", file=sys.stderr)
          return 1
    elif state == "ACTIVE":
      code, out = execute("watch", g.on_workers(f"{WORKER} status"), args.dry_run, capture=True)
      print(out.strip(), flush=True)
      lines = [line for line in out.splitlines() if ": " in line]
      finished = [line for line in lines if ": finished, exit " in line]
      failed = [line for line in finished if ": finished, exit 0," not in line]
      if failed:
        print(f"a worker failed: {failed[0]}; its log: --steps=logs, or <workdir>/logs/",
              file=sys.stderr)
        return 1
      if lines and len(finished) == len(lines):
        print(f"{args.name}: every worker finished", flush=True)
        return 0
      if lines and not any(": running" in line for line in lines):  # Killed (a host restart).
        print(f"{args.name}: no worker running and not all finished: start again (it resumes)",
              flush=True)
        if execute("start", plan(args, ["start"])[0][1], args.dry_run)[0]:
          return 1
    else:
      print(f"{args.name}: {state}", flush=True)
    sleep(args.poll)


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--name", required=True, help="The slice (and its queued resource).")
  parser.add_argument("--zone", required=True)
  parser.add_argument("--project", default="")
  parser.add_argument("--accelerator", default="v4-32",
                      help="e.g. v4-32, v5litepod-16, v5p-32, v6e-16")
  parser.add_argument("--version", default="",
                      help=f"TPU runtime version; default by generation: {RUNTIMES}")
  parser.add_argument("--config", default="configs/nq.py")
  parser.add_argument("--data", default="",
                      help="A gs:// folder copied to ~/rocketqa-data on every worker at setup.")
  parser.add_argument("--workdir", default="",
                      help="Shared by all workers, outliving the slice: a gs:// path.")
  parser.add_argument("--override", action="append", default=[],
                      help="--config.x=y flags passed to main; repeatable.")
  parser.add_argument("--steps", default="",
                      help=f"Comma-separated, among {STEPS} (default: all) or one of {OPERATIONS}.")
  parser.add_argument("--keep", action="store_true", help="Do not delete the slice at the end.")
  parser.add_argument("--spot", action="store_true",
                      help="Spot capacity: cheaper, preemptible; watch re-launches after it.")
  parser.add_argument("--poll", type=int, default=300, help="Seconds between watch's looks.")
  parser.add_argument("--max-relaunches", type=int, default=20)
  parser.add_argument("--lines", type=int, default=40, help="Log lines per worker (logs).")
  parser.add_argument("--dry-run", action="store_true", help="Print the commands, run none.")
  args = parser.parse_args(argv)
  steps = args.steps.split(",") if args.steps else [s for s in STEPS
                                                     if s != "delete" or not args.keep]
  unknown = [s for s in steps if s not in STEPS + OPERATIONS]
  if unknown:
    raise SystemExit(f"--steps: unknown {unknown}; expected some of {STEPS}, or {OPERATIONS}")
  if "start" in steps and not args.workdir:
    raise SystemExit("--workdir is required to start the job (a gs:// path every worker sees)")
  runtime_version(args.accelerator, args.version)  # An unknown generation fails before anything.
  for step in steps:
    if step == "watch":
      if watch(args):
        return 1
      continue
    for _, command in plan(args, [step]):
      if run(step, command, args.dry_run)[0]:
        print(f"[{step}] failed; the slice is left as it is (rerun with --steps=... to go on, or "
              f"--steps=delete to tear it down)", file=sys.stderr)
        return 1
    if step == "create":
      wait_active(args)
    if step == "start":
      print(f"started in the background; --steps=status, --steps=logs or --steps=watch "
            f"(Ctrl-C leaves the job running); logs also in {args.workdir}/logs/", flush=True)
  return 0


if __name__ == "__main__":
  sys.exit(main())
