"""The Colab notebook, executed end to end on the tiny config (no install, no download)."""

import json

import nbformat
from nbclient import NotebookClient

from conftest import REPO


def test_colab_notebook_runs_on_the_tiny_config(tmp_path):
  nb = nbformat.read(REPO / "notebooks" / "colab_demo.ipynb", as_version=4)
  parameters = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
  workdir = tmp_path / "work"
  parameters.source += (
      "\n# Injected by the test:\nINSTALL = False\nCONFIG = 'configs/tiny.py'\n"
      "OVERRIDES = ['--config.stages=train_de0,eval', '--config.train.steps=3', "
      "'--config.eval.max_questions=32']\n"
      f"WORKDIR = {str(workdir)!r}\n")
  NotebookClient(nb, timeout=600, kernel_name="python3",
                 resources={"metadata": {"path": str(REPO / "notebooks")}}).execute()
  outputs = {i: "".join(o.get("text", "") for o in c.get("outputs", []))
             for i, c in enumerate(nb.cells) if c.cell_type == "code"}
  text = "\n".join(outputs.values())
  assert "cpu device(s)" in text  # The devices cell, asked in a subprocess.
  assert "| train_de0 |" in text  # The eval table printed by the training cell.
  assert "train_de0: Which NFL team" in text and "\n5. " in text  # Five retrieved passages.
  images = [o for c in nb.cells for o in c.get("outputs", []) if "image/png" in o.get("data", {})]
  assert len(images) == 2  # Training curves and the ablation bars.
  results = json.loads((workdir / "eval" / "metrics.json").read_text())
  assert set(results) == {"initial", "train_de0", "bm25", "hybrid", "hybrid_initial"}
  assert (workdir / "train_de0" / "tensorboard").is_dir()
