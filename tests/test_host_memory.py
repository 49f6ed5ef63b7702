"""keep_freed_memory: once the heap has settled, a jitted program touches no new pages."""

import importlib.metadata
import json

from conftest import run_python

JAX = tuple(int(part) for part in importlib.metadata.version("jax").split(".")[:2])

SCRIPT = """
import json, resource
from rocketqa_jax.host_memory import keep_freed_memory
kept = keep_freed_memory()
import jax, jax.numpy as jnp
# A mixed-precision product (what our models run), with 16 MB temporaries.
f = jax.jit(lambda x: jnp.dot(jnp.sin(x).astype(jnp.bfloat16), jnp.cos(x).astype(jnp.bfloat16),
                              preferred_element_type=jnp.float32).sum())
x = jnp.ones((2048, 2048))
runs = []
for _ in range(12):
  before = resource.getrusage(resource.RUSAGE_SELF)
  f(x).block_until_ready()
  after = resource.getrusage(resource.RUSAGE_SELF)
  runs.append([after.ru_minflt - before.ru_minflt, after.ru_maxrss])
print(json.dumps({"kept": kept, "runs": runs}))
"""


def _run(env):
  out = run_python(["-c", SCRIPT], env=env)
  assert out.returncode == 0, out.stderr[-2000:]
  return json.loads(out.stdout.strip().splitlines()[-1])


def test_pages_are_reused_unless_disabled():
  kept = _run({})
  default = _run({"ROCKETQA_RETURN_FREED_MEMORY": "1"})
  assert kept["kept"] and not default["kept"]
  # glibc's defaults: fresh 4 KiB pages on every run (500k measured). Kept: the heap grows for
  # the first few runs (measured: 6, to 2x the default's peak), then runs reuse it (0 faults
  # measured on a quiet machine; a busy one may reclaim a few pages).
  default_faults = sum(faults for faults, _ in default["runs"][-3:])
  kept_faults = sum(faults for faults, _ in kept["runs"][-3:])
  if JAX < (0, 11):
    assert default_faults > 15_000 and kept_faults < 0.05 * default_faults, (default, kept)
  else:  # jax 0.12's XLA:CPU reuses its buffers itself (64-2,000 faults a run measured with
    # glibc's defaults, against ~170k with jax 0.10): neither setting faults in a run's scratch.
    assert default_faults < 15_000 and kept_faults < 15_000, (default, kept)
  assert kept["runs"][-1][1] < 3 * default["runs"][-1][1], (default, kept)  # Peak RSS bounded.
