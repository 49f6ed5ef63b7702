"""launch/: the TPU launcher's commands (dry run) and watch loop, the worker script run here,
and the SLURM script's per-task plan."""

import os
import shlex
import socket
import subprocess
import sys
import time

import pytest
from conftest import REPO

from rocketqa_jax import distributed

sys.path.insert(0, str(REPO / "launch"))
import tpu_pod


@pytest.mark.parametrize("accelerator, runtime", [
    ("v4-32", "tpu-ubuntu2204-base"), ("v5litepod-16", "v2-alpha-tpuv5-lite"),
    ("v5p-32", "v2-alpha-tpuv5"), ("v6e-16", "v2-alpha-tpuv6e")])
def test_tpu_pod_dry_run_prints_every_step_in_order(accelerator, runtime):
  args = [sys.executable, "launch/tpu_pod.py", "--name=rq", "--zone=us-east5-b",
          f"--accelerator={accelerator}", "--data=gs://b/dpr",
          "--config=configs/nq.py:root=../rocketqa-data", "--workdir=gs://b/nq",
          "--override=--config.train.epochs=1", "--dry-run"]
  out = subprocess.run(args, cwd=REPO, capture_output=True, text=True, timeout=60)
  assert out.returncode == 0, out.stderr
  lines = [line for line in out.stdout.splitlines() if line.startswith("[")]
  steps = [line.split("]")[0].lstrip("[") for line in lines]
  assert steps == ["create", "create", "copy", "copy", "setup", "start", "watch", "watch",
                   "delete"]
  commands = [shlex.split(line.split("] ", 1)[1]) for line in lines]
  create, state, archive, scp, setup, start, _, status, delete = commands
  # https://cloud.google.com/sdk/gcloud/reference/compute/tpus/queued-resources/create
  assert create[:6] == ["gcloud", "compute", "tpus", "queued-resources", "create", "rq"]
  assert {"--node-id=rq", "--zone=us-east5-b", f"--accelerator-type={accelerator}",
          f"--runtime-version={runtime}"} <= set(create) and "--spot" not in create
  assert state[4] == "describe" and "--format=value(state.state)" in state
  assert archive[:2] == ["git", "-C"] and "archive" in archive and scp[3:5] == ["tpu-vm", "scp"]
  for ssh in (setup, start, status):
    assert ssh[3:5] == ["tpu-vm", "ssh"] and "--worker=all" in ssh  # Every worker of the slice.
  assert setup[-1].endswith("launch/tpu_worker.sh setup gs://b/dpr")  # Copied to each worker.
  remote = shlex.split(start[-1].removeprefix("--command="))
  assert remote == ["bash", "rocketqa_jax/launch/tpu_worker.sh", "start",
                    "configs/nq.py:root=../rocketqa-data", "gs://b/nq",
                    "--config.train.epochs=1"]
  assert status[-1].endswith("tpu_worker.sh status")
  assert delete[3:5] == ["queued-resources", "delete"] and "--force" in delete
  assert "--steps=logs" in out.stdout and "gs://b/nq/logs/" in out.stdout

  spot = subprocess.run(args + ["--spot", "--keep"], cwd=REPO, capture_output=True, text=True)
  assert "--spot" in spot.stdout.splitlines()[0] and "[delete]" not in spot.stdout
  ops = subprocess.run(args + ["--steps=status,logs"], cwd=REPO, capture_output=True, text=True)
  assert [line.split("'--command=")[1] for line in ops.stdout.splitlines()] == [
      "bash rocketqa_jax/launch/tpu_worker.sh status'",
      "bash rocketqa_jax/launch/tpu_worker.sh logs 40'"]
  bad = subprocess.run(args + ["--steps=run,fly"], cwd=REPO, capture_output=True, text=True)
  assert bad.returncode != 0 and "unknown ['run', 'fly']" in bad.stderr
  old = subprocess.run([*args[:4], "--accelerator=v3-8", "--workdir=x", "--dry-run"], cwd=REPO,
                       capture_output=True, text=True)
  assert old.returncode != 0 and "pass --version=" in old.stderr
  pinned = subprocess.run([*args[:4], "--accelerator=v3-8", "--version=tpu-vm-base",
                           "--workdir=x", "--dry-run"], cwd=REPO, capture_output=True, text=True)
  assert "--runtime-version=tpu-vm-base" in pinned.stdout


def test_tpu_pod_watch_relaunches_a_preempted_slice_and_ends_when_all_finished():
  """A scripted gcloud: the slice runs, is preempted (SUSPENDED), comes back, finishes."""
  answers = iter([("ACTIVE", ""), ("", "w0: running, stage train_de1\nw1: running, stage "
                                   "train_de1"), ("SUSPENDED", ""), ("ACTIVE", ""),
                  ("ACTIVE", ""), ("", "w0: finished, exit 0, last stage eval\n"
                                   "w1: finished, exit 0, last stage eval")])
  calls = []

  def execute(step, argv, dry_run, capture=False):
    calls.append(step if "describe" not in argv else "state")
    return 0, next(answers)[0 if "describe" in argv else 1] if capture else ""

  args = tpu_pod_args("--spot", "--poll=0")
  assert tpu_pod.watch(args, execute, sleep=lambda s: None) == 0
  assert calls == ["state", "watch", "state", "delete", "create", "state", "copy", "copy",
                   "setup", "start", "state", "watch"]

  answers = iter([("ACTIVE", ""), ("", "w0: finished, exit 1, last stage mine0\n"
                                   "w1: running, stage mine0")])
  assert tpu_pod.watch(args, execute, sleep=lambda s: None) == 1

  # Both hosts restarted under the job (no exit code, none running): started again, resumes.
  calls.clear()
  answers = iter([("ACTIVE", ""), ("", "w0: stopped without an exit code (killed or preempted), "
                                   "stage train_ce\nw1: stopped without an exit code (killed "
                                   "or preempted), stage train_ce"),
                  ("ACTIVE", ""), ("", "w0: finished, exit 0, last stage eval\n"
                                   "w1: finished, exit 0, last stage eval")])
  assert tpu_pod.watch(args, execute, sleep=lambda s: None) == 0
  assert calls == ["state", "watch", "start", "state", "watch"]


def tpu_pod_args(*flags):
  import argparse
  parser = argparse.ArgumentParser()
  for name in ("name", "zone", "project", "accelerator", "version", "config", "workdir", "data"):
    parser.add_argument(f"--{name}", default="")
  parser.add_argument("--override", action="append", default=[])
  for name, default in (("poll", 300), ("max_relaunches", 20), ("lines", 40)):
    parser.add_argument(f"--{name.replace('_', '-')}", type=int, default=default)
  for name in ("spot", "dry_run"):
    parser.add_argument(f"--{name.replace('_', '-')}", action="store_true")
  return parser.parse_args(["--name=rq", "--zone=z", "--accelerator=v6e-16",
                            "--config=configs/nq.py", "--workdir=gs://b/nq", *flags])


def test_tpu_worker_starts_in_the_background_reports_status_and_saves_its_log(tmp_path):
  """launch/tpu_worker.sh, run here as on a worker: `start` returns at once, the job runs on,
  `status` names its stage, and the log lands in <workdir>/logs/<host>.log."""
  workdir, state = tmp_path / "work", tmp_path / "state"
  env = dict(os.environ, PYTHON=sys.executable, ROCKETQA_STATE=str(state),
             ROCKETQA_DISTRIBUTED="0", ROCKETQA_LOG_EVERY="1")
  worker = ["bash", str(REPO / "launch" / "tpu_worker.sh")]
  assert "not started" in subprocess.run([*worker, "status"], env=env, capture_output=True,
                                         text=True).stdout
  began = time.monotonic()
  started = subprocess.run([*worker, "start", "configs/tiny.py", str(workdir),
                            "--config.stages=train_de0,eval", "--config.train.steps=3",
                            "--config.eval.max_questions=16"], env=env, capture_output=True,
                           text=True, timeout=60)
  assert started.returncode == 0 and ": started (pid " in started.stdout, started.stderr
  assert time.monotonic() - began < 10  # Detached: the ssh session that started it may end.
  seen = []
  while time.monotonic() - began < 400:
    seen.append(subprocess.run([*worker, "status"], env=env, capture_output=True,
                               text=True).stdout.strip())
    if ": finished" in seen[-1]:
      break
    time.sleep(1)
  assert seen[-1].endswith(": finished, exit 0, last stage eval"), seen
  assert any(": running, stage " in s for s in seen[:-1]), seen
  host = socket.gethostname()
  saved = (workdir / "logs" / f"{host}.log").read_text()
  assert "stage train_de0" in saved and saved.rstrip().endswith("exit 0")
  tail = subprocess.run([*worker, "logs", "1"], env=env, capture_output=True, text=True).stdout
  assert tail.strip().endswith("exit 0")
  assert (workdir / "eval" / "metrics.json").exists()


def test_slurm_script_is_valid_bash_and_sets_the_distributed_variables():
  script = REPO / "launch" / "slurm_gpu.sbatch"
  assert subprocess.run(["bash", "-n", str(script)]).returncode == 0
  out = subprocess.run(["bash", str(script), "configs/nq.py:root=/d", "/shared/w",
                        "--config.train.epochs=2"], env={"DRY_RUN": "1", "PATH": "/usr/bin:/bin"},
                       capture_output=True, text=True, timeout=60)
  assert out.returncode == 0, out.stderr
  tasks = out.stdout.strip().splitlines()
  assert len(tasks) == 2
  for i, task in enumerate(tasks):
    env = dict(w.split("=", 1) for w in task.split(": ", 1)[1].split() if w.startswith("ROCKETQA"))
    assert env == {distributed.COORDINATOR_ENV: "node01:12355",
                   distributed.NUM_PROCESSES_ENV: "2", distributed.PROCESS_ID_ENV: str(i)}
    assert task.endswith("-m rocketqa_jax.main --config=configs/nq.py:root=/d "
                         "--workdir=/shared/w --config.train.epochs=2")
  text = script.read_text()  # The real (non-dry) path exports the same variables.
  for name in (distributed.COORDINATOR_ENV, distributed.NUM_PROCESSES_ENV,
               distributed.PROCESS_ID_ENV):
    assert name in text
