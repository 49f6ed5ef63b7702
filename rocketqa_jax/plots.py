"""PNG plots of a pipeline workdir: training curves of every training stage, the ablation
table (retrieval metrics per row) and M_C's scores of the denoised candidates, for people who
want to look rather than read JSON."""

from __future__ import annotations

import io
import json
from typing import Mapping

from rocketqa_jax import artifacts
from rocketqa_jax.artifacts import PathLike


def _metrics(path) -> list[dict]:
  return [json.loads(line) for line in path.read_text().splitlines() if line]


def _save(fig, out: PathLike) -> None:
  import matplotlib.pyplot as plt
  fig.tight_layout()
  buffer = io.BytesIO()
  fig.savefig(buffer, format="png", dpi=100)
  plt.close(fig)
  artifacts.write_bytes(out, buffer.getvalue())


def plot_training_curves(metrics: Mapping[str, PathLike], out: PathLike) -> None:
  """Loss and in-batch accuracy against step, one line per training stage: `metrics` maps a
  stage to its metrics.jsonl (those missing are left out)."""
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
  for stage, path in metrics.items():
    path = artifacts.path(path)
    if path.exists() and (rows := _metrics(path)):
      steps = [r["step"] for r in rows]
      axes[0].plot(steps, [r["loss"] for r in rows], label=stage)
      axes[1].plot(steps, [r["accuracy"] for r in rows], label=stage)
  for ax, name in zip(axes, ("training loss", "accuracy (positive ranked first)")):
    ax.set_xlabel("step")
    ax.set_title(name)
    ax.grid(alpha=0.3)
    ax.legend()
  _save(fig, out)


def plot_ablation(results: dict[str, dict], out: PathLike,
                  metrics: tuple[str, ...] = ("mrr@10", "recall@1", "recall@5", "answer@5")
                  ) -> None:
  """Grouped bars: one group per metric, one bar per model (the eval stage's table)."""
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  import numpy as np
  first = next(iter(results.values()))
  shown = [m for m in metrics if all(m in r for r in results.values())] or [
      k for k, v in first.items() if isinstance(v, float) and not k.endswith("_per_s")][:4]
  fig, ax = plt.subplots(figsize=(max(6, 1.6 * len(shown) * max(1, len(results)) / 2), 4))
  width = 0.8 / len(results)
  for i, (model, r) in enumerate(results.items()):
    xs = np.arange(len(shown)) + (i - (len(results) - 1) / 2) * width
    bars = ax.bar(xs, [r[m] for m in shown], width, label=model)
    ax.bar_label(bars, fmt="%.3f", fontsize=7, rotation=90, padding=2)
  ax.set_xticks(np.arange(len(shown)), shown)
  ax.set_ylim(0, 1.1)
  ax.set_title("retrieval on the eval questions, per model")
  ax.legend(fontsize=8, loc="lower right")
  _save(fig, out)


def plot_score_histogram(histogram: dict, threshold: float, out: PathLike) -> None:
  """M_C's scores of the denoised candidates (denoising.score_histogram), stacked: with an
  answer string or without; the negative threshold as a line (left of it: hard negatives)."""
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  import numpy as np
  edges = np.asarray(histogram["edges"])
  widths, lefts = np.diff(edges), edges[:-1]
  fig, ax = plt.subplots(figsize=(7, 4))
  ax.bar(lefts, histogram["without_answer"], widths, align="edge", label="no answer string")
  ax.bar(lefts, histogram["with_answer"], widths, align="edge",
         bottom=histogram["without_answer"], label="contains an answer string")
  ax.axvline(threshold, color="black", linestyle="--", label=f"negative threshold {threshold}")
  ax.set_xlabel("M_C score (probability of relevance)")
  ax.set_ylabel("candidates")
  ax.set_yscale("log")
  ax.set_title("denoise: M_C's scores of the mined candidates")
  ax.legend(fontsize=8)
  _save(fig, out)
