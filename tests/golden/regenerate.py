"""Regenerates tests/golden/minilm_squad.npz with the PyTorch reference (needs torch).

  pip install torch==2.13.0   # from this machine's disk; CPU build
  python tests/golden/regenerate.py

Only embeddings and SQuAD ids are stored; the texts are read from the SQuAD data at test time.
"""

import pathlib
import sys

import numpy as np

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE.parents[1]))

from rocketqa_jax.data import squad  # noqa: E402
from rocketqa_jax.hf_checkpoint import resolve_model_dir  # noqa: E402
from torch_reference import reference_embeddings  # noqa: E402


def golden_selection(data: squad.SquadMini, n_passages: int = 24, n_questions: int = 24):
  """Every 86th paragraph (spread over articles, several longer than 256 tokens) and every
  113th eval question: fixed, so regeneration is reproducible."""
  passage_rows = list(range(0, len(data.corpus), len(data.corpus) // n_passages))[:n_passages]
  question_rows = list(range(0, len(data.eval), len(data.eval) // n_questions))[:n_questions]
  return passage_rows, question_rows


def main():
  import torch
  import transformers

  data = squad.load_squad_mini()
  model_dir = resolve_model_dir("all-MiniLM-L6-v2")
  p_rows, q_rows = golden_selection(data)
  texts = [data.corpus.texts[i] for i in p_rows]
  titles = [data.corpus.titles[i] for i in p_rows]
  questions = [data.eval[i].text for i in q_rows]
  np.savez_compressed(
      HERE / "minilm_squad.npz",
      passage_ids=np.array([data.corpus.ids[i] for i in p_rows]),
      question_ids=np.array([data.eval[i].id for i in q_rows]),
      passages=reference_embeddings(model_dir, texts),
      titled_passages=reference_embeddings(model_dir, texts, titles),
      questions=reference_embeddings(model_dir, questions),
      versions=np.array([f"torch {torch.__version__}", f"transformers {transformers.__version__}"]))
  print(f"wrote {HERE / 'minilm_squad.npz'}")


if __name__ == "__main__":
  main()
