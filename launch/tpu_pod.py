"""Runs the pipeline on a Cloud TPU VM pod slice: create, copy the repo to every worker,
install, run `python -m rocketqa_jax.main` on all workers at once, tear down.

  python launch/tpu_pod.py --name=rocketqa --zone=us-central2-b --accelerator=v4-32 \\
      --config=configs/nq.py:root=/mnt/dpr --workdir=gs://BUCKET/nq [--dry-run] [--keep]

Every worker runs the same command; `ROCKETQA_DISTRIBUTED=1` makes each one call
`jax.distributed.initialize()`, which finds the pod's coordinator and process ids itself: the
code path the multi-process CPU tests cover with explicit addresses. `--dry-run` prints every
command and runs none. Steps can be run alone (--steps=run, --steps=delete) to re-enter a pod.
"""

from __future__ import annotations

import argparse
import pathlib
import shlex
import subprocess
import sys

REPO = pathlib.Path(__file__).resolve().parents[1]
STEPS = ("create", "copy", "install", "run", "delete")
TARBALL = "/tmp/rocketqa_jax.tar.gz"


def commands(args) -> list[tuple[str, list[str]]]:
  """(step, argv) in order, for the steps asked for."""
  tpu = ["gcloud", "compute", "tpus", "tpu-vm"]
  where = [args.name, f"--zone={args.zone}"] + ([f"--project={args.project}"]
                                                 if args.project else [])
  on_all = lambda command: [*tpu, "ssh", *where, "--worker=all", f"--command={command}"]
  run = " ".join([
      "cd rocketqa_jax &&", "ROCKETQA_DISTRIBUTED=1", "python3 -m rocketqa_jax.main",
      shlex.quote(f"--config={args.config}"), shlex.quote(f"--workdir={args.workdir}"),
      *map(shlex.quote, args.override)])
  install = " && ".join([
      "mkdir -p rocketqa_jax", "tar xzf rocketqa_jax.tar.gz -C rocketqa_jax", "cd rocketqa_jax",
      "python3 -m pip install -q 'jax[tpu]' -r requirements.txt",
      "python3 -m pip install -q --no-deps -e ."])
  spot = ["--spot"] if args.spot else []
  plan = {
      "create": [[*tpu, "create", *where, f"--accelerator-type={args.accelerator}",
                  f"--version={args.version}", *spot]],
      # The committed tree (git archive): what is tested is what runs.
      "copy": [["git", "-C", str(REPO), "archive", "--format=tar.gz", f"--output={TARBALL}",
                "HEAD"],
               [*tpu, "scp", TARBALL, f"{args.name}:~/rocketqa_jax.tar.gz", *where[1:],
                "--worker=all"]],
      "install": [on_all(install)],
      "run": [on_all(run)],
      "delete": [[*tpu, "delete", *where, "--quiet"]],
  }
  steps = args.steps.split(",") if args.steps else [s for s in STEPS
                                                     if s != "delete" or not args.keep]
  unknown = [s for s in steps if s not in STEPS]
  if unknown:
    raise SystemExit(f"--steps: unknown {unknown}; expected some of {STEPS}")
  return [(step, argv) for step in steps for argv in plan[step]]


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--name", required=True, help="TPU VM name.")
  parser.add_argument("--zone", required=True)
  parser.add_argument("--project", default="")
  parser.add_argument("--accelerator", default="v4-32", help="e.g. v4-32, v5p-64, v5litepod-16")
  parser.add_argument("--version", default="tpu-ubuntu2204-base", help="TPU VM software image.")
  parser.add_argument("--config", default="configs/nq.py")
  parser.add_argument("--workdir", required=True,
                      help="Shared by all workers: a gs:// bucket path or a mounted filesystem.")
  parser.add_argument("--override", action="append", default=[],
                      help="--config.x=y flags passed to main; repeatable.")
  parser.add_argument("--steps", default="", help=f"Comma-separated subset of {STEPS}.")
  parser.add_argument("--keep", action="store_true", help="Do not delete the pod at the end.")
  parser.add_argument("--spot", action="store_true", help="Spot capacity (preemptible).")
  parser.add_argument("--dry-run", action="store_true", help="Print the commands, run none.")
  args = parser.parse_args(argv)
  for step, command in commands(args):
    print(f"[{step}] {shlex.join(command)}", flush=True)
    if not args.dry_run:
      if subprocess.run(command).returncode:
        print(f"[{step}] failed; the pod is left as it is (rerun with --steps=... to go on, or "
              f"--steps=delete to tear it down)", file=sys.stderr)
        return 1
  return 0


if __name__ == "__main__":
  sys.exit(main())
