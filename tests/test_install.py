"""launch/install.py: installs what is missing and keeps a jax the runtime already has."""

import glob
import json
import os
import shutil
import subprocess
import sys

import pytest
from conftest import REPO

sys.path.insert(0, str(REPO / "launch"))
import install

REQUIREMENTS = ["# comment", "jax>=0.10.2,<0.13", "jaxlib>=0.10.2", "flax>=0.12.8,<0.13",
                "etils[epath]>=1.15,<2  # paths", "jax-triton>=1  # not jax", ""]


def test_plan_keeps_an_installed_jax_and_pins_it():
  requirements, constraints = install.plan(REQUIREMENTS, {"jax": "0.11.0", "jaxlib": "0.11.0"},
                                           "tpu")
  assert requirements == ["# comment", "flax>=0.12.8,<0.13", "etils[epath]>=1.15,<2  # paths",
                          "jax-triton>=1  # not jax", ""]
  assert constraints == ["jax==0.11.0", "jaxlib==0.11.0"]


@pytest.mark.parametrize("extra, line", [("cpu", "jax>=0.10.2,<0.13"),
                                         ("tpu", "jax[tpu]>=0.10.2,<0.13"),
                                         ("cuda12", "jax[cuda12]>=0.10.2,<0.13")])
def test_plan_without_jax_installs_the_accelerators_extra(extra, line):
  requirements, constraints = install.plan(REQUIREMENTS, {}, extra)
  assert requirements[1] == line and requirements[2:] == REQUIREMENTS[2:] and constraints == []


def python_at_least_312() -> str | None:
  """An interpreter jax 0.11+ installs on: this one, or one on PATH or in pyenv."""
  if sys.version_info >= (3, 12):
    return sys.executable
  candidates = [shutil.which(n) for n in ("python3.13", "python3.12")]
  candidates += sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.1[2-9]*/bin/python3")))
  for python in filter(None, candidates):
    if subprocess.run([python, "--version"], capture_output=True).returncode == 0:
      return python
  return None


PYTHON_312 = python_at_least_312()


@pytest.mark.skipif(PYTHON_312 is None, reason="needs Python >= 3.12 (jax 0.11)")
def test_install_keeps_the_jax_a_runtime_already_has(tmp_path):
  """A venv holding jax 0.11.0, as a Colab or pod image holds its own: plain `pip install -r
  requirements.txt` would replace it (the newest flax wants a newer jax); install.py keeps it,
  and the package then runs on it."""
  venv = tmp_path / "venv"
  subprocess.run([PYTHON_312, "-m", "venv", str(venv)], check=True)
  python = str(venv / "bin" / "python")
  pip = [python, "-m", "pip", "install", "-q"]
  subprocess.run([*pip, "jax==0.11.0", "jaxlib==0.11.0"], check=True)
  report = tmp_path / "plain.json"
  subprocess.run([*pip, "--dry-run", "--report", str(report), "-r", str(REPO / "requirements.txt")],
                 check=True, capture_output=True)
  plain = {i["metadata"]["name"]: i["metadata"]["version"]
           for i in json.loads(report.read_text())["install"]}
  assert plain.get("jax", "0.11.0") != "0.11.0"  # The trap: plain pip replaces the runtime's jax.

  out = subprocess.run([python, str(REPO / "launch" / "install.py")], capture_output=True,
                       text=True)
  assert out.returncode == 0, out.stderr[-3000:]
  assert "keeping the installed jax 0.11.0, jaxlib 0.11.0" in out.stdout
  check = ("import importlib.metadata as m, rocketqa_jax;"
           "e = rocketqa_jax.load_encoder('all-MiniLM-L6-v2');"
           "print(m.version('jax'), m.version('jaxlib'), e.encode_queries(['who?']).shape)")
  env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
  ran = subprocess.run([python, "-c", check], capture_output=True, text=True, env=env)
  assert ran.returncode == 0, ran.stderr[-3000:]
  assert ran.stdout.split()[:2] == ["0.11.0", "0.11.0"] and "(1, 384)" in ran.stdout
