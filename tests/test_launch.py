"""launch/: the TPU pod script's commands (dry run) and the SLURM script's per-task plan."""

import shlex
import subprocess
import sys

from conftest import REPO
from rocketqa_jax import distributed


def test_tpu_pod_dry_run_prints_every_step_in_order():
  args = [sys.executable, "launch/tpu_pod.py", "--name=rq", "--zone=us-central2-b",
          "--accelerator=v4-32", "--config=configs/nq.py:root=/mnt/dpr", "--workdir=gs://b/nq",
          "--override=--config.train.epochs=1", "--dry-run"]
  out = subprocess.run(args, cwd=REPO, capture_output=True, text=True, timeout=60)
  assert out.returncode == 0, out.stderr
  lines = out.stdout.strip().splitlines()
  steps = [line.split("]")[0].lstrip("[") for line in lines]
  assert steps == ["create", "copy", "copy", "install", "run", "delete"]
  commands = [shlex.split(line.split("] ", 1)[1]) for line in lines]
  create, archive, scp, install, run, delete = commands
  assert create[:5] == ["gcloud", "compute", "tpus", "tpu-vm", "create"]
  assert "--accelerator-type=v4-32" in create and "--zone=us-central2-b" in create
  assert archive[:2] == ["git", "-C"] and "archive" in archive and scp[4] == "scp"
  for ssh in (install, run):
    assert ssh[4] == "ssh" and "--worker=all" in ssh  # Every worker of the slice.
  assert "jax[tpu]" in install[-1] and "requirements.txt" in install[-1]
  remote = run[-1].removeprefix("--command=")
  assert f"{distributed.AUTO_ENV}=1" in remote
  assert shlex.split(remote)[-4:] == [
      "rocketqa_jax.main", "--config=configs/nq.py:root=/mnt/dpr", "--workdir=gs://b/nq",
      "--config.train.epochs=1"]
  assert delete[4] == "delete" and "--quiet" in delete
  keep = subprocess.run(args + ["--keep"], cwd=REPO, capture_output=True, text=True, timeout=60)
  assert "[delete]" not in keep.stdout
  bad = subprocess.run(args + ["--steps=run,fly"], cwd=REPO, capture_output=True, text=True)
  assert bad.returncode != 0 and "unknown ['fly']" in bad.stderr


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
