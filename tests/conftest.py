import atexit
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile

import pytest

# Every test process sees 8 virtual CPU devices (set before jax is imported), so multi-device
# code runs in-process; subprocesses choose their own count with run_python(devices=...).
os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=8"
os.environ.setdefault("JAX_PLATFORMS", "cpu")
# One persistent compilation cache for the session, its subprocesses included (the pipeline and
# resume tests compile the same tiny programs in process after process): nothing in ~/.cache.
if "JAX_COMPILATION_CACHE_DIR" not in os.environ:
  os.environ["JAX_COMPILATION_CACHE_DIR"] = tempfile.mkdtemp(prefix="rocketqa-xla-")
  atexit.register(shutil.rmtree, os.environ["JAX_COMPILATION_CACHE_DIR"], ignore_errors=True)
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")

REPO = pathlib.Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def squad_mini():
  from rocketqa_jax.data import squad
  return squad.load_squad_mini()


@pytest.fixture(scope="session")
def minilm():
  """The packaged all-MiniLM-L6-v2, float32, loaded once for the session."""
  import rocketqa_jax
  return rocketqa_jax.load_encoder("all-MiniLM-L6-v2", query_max_length=64)


@pytest.fixture(scope="session")
def tiny_cross_encoder():
  """(model, params, tokenizer, its BERT's params): a 1-layer, hidden-32 cross-encoder with
  random weights and the packaged tokenizer (passages of 64 tokens)."""
  from rocketqa_jax import cross_encoder
  from rocketqa_jax.encoder import load_tower
  from rocketqa_jax.tokenization import Tokenizer
  model_dir, bert, params = load_tower("all-MiniLM-L6-v2", random_init=True,
                                       num_hidden_layers=1, hidden_size=32,
                                       num_attention_heads=2, intermediate_size=64)
  model = cross_encoder.CrossEncoder(bert.config)
  tokenizer = Tokenizer.from_pretrained(model_dir, passage_max_length=64)
  return model, cross_encoder.init_params(model, params, seed=1), tokenizer, params


def run_python(args, *, devices: int = 1, env=None, timeout=600, log=None):
  """Runs `python args...` in the repo root with `devices` virtual CPU devices; with `log`,
  starts it in the background instead (for processes that must run at the same time)."""
  full_env = {**os.environ, **(env or {}),
              "XLA_FLAGS": f"--xla_force_host_platform_device_count={devices}",
              "JAX_PLATFORMS": "cpu"}
  if log is not None:  # Start it and return: output goes to the file `log`, never a full pipe.
    with open(log, "w") as f:
      return subprocess.Popen([sys.executable, *args], cwd=REPO, env=full_env, stdout=f,
                              stderr=subprocess.STDOUT)
  return subprocess.run([sys.executable, *args], cwd=REPO, env=full_env, capture_output=True,
                        text=True, timeout=timeout)
