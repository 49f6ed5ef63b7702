"""The pod path at scale, simulated on one machine: the whole pipeline over a DPR-layout corpus of
N passages in 2 processes x 4 virtual CPU devices (gloo on 127.0.0.1), against 1 process x 8.

  python bench/scale.py [--sizes 250000,500000,1000000,2000000] [--reference-sizes 250000]
                        [--pair-depths 12,50,100] [--root /tmp/rocketqa-scale] [--quick]

The data is generated, deterministically (`generate`): N passages of 100 words drawn from
SQuAD v1.1 dev's vocabulary at its word frequencies, in DPR's psgs_w100.tsv layout (ids 1..N,
text, title; an article's title on 8 passages in a row); 10,000 training questions in DPR's
biencoder JSON, 5,000 unlabeled questions (`id<TAB>question`) and 2,000 eval questions in DPR's
QA CSV, each question 10 consecutive words of a random passage (its positive), its answer one
of them. The model is configs/tiny.py's (2 layers, hidden 64, random weights) with the real
WordPiece tokenizer; mine0 mines the top 100 (ScaNN, `mine.index=scann`: one partition per
process), denoise scores the top 100 of each training question (1M pairs), augment the top
50 of each unlabeled one (250k pairs); eval searches exactly.

The processes run with glibc's malloc defaults, as on an accelerator host
(`ROCKETQA_RETURN_FREED_MEMORY=1`: on CPU backends the pipeline otherwise keeps freed memory for
reuse, and peak RSS then also counts the heap's fragmentation). Per process and per stage it
reports, from `<workdir>/timings.jsonl` (rocketqa_jax/usage.py):
peak RSS (VmHWM, reset at each stage), wall seconds, passages tokenized and encoded, shards
loaded, passages indexed, queries searched, pairs tokenized and scored, files and bytes written.
It also measures the corpus's resident bytes in a fresh process (as positions in the file, and
at the smallest size as lists of str). Then per stage a least-squares fit of peak RSS against
the passages a process's shards hold; with --pair-depths, denoise alone in fresh processes at
those depths on the smallest corpus: peak RSS against the stage's pairs; and from the fits, what
a host and a chip of a v4-32 hold for configs/nq.py and configs/msmarco.py (`extrapolate`;
docs/scale.md has the arithmetic). Prints tables and writes bench/results/scale.json.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import pathlib
import shutil
import socket
import subprocess
import sys
import time

import numpy as np

import common
from rocketqa_jax import host_memory

REPO = pathlib.Path(__file__).resolve().parents[1]
LABELED, UNLABELED, EVAL = 10_000, 5_000, 2_000
WORDS_PER_PASSAGE, QUESTION_WORDS, PASSAGES_PER_TITLE = 100, 10, 8
LAYOUTS = {"2x4": (2, 4), "1x8": (1, 8)}
SHARD = 50_000  # eval.shard_size of the simulation: 40 shards at 2M passages.

# What the simulation stands for: configs/nq.py and configs/msmarco.py on a v4-32 slice (4 hosts
# x 4 chips, about 400 GB of RAM a host, 32 GiB of HBM a chip), 768-wide ERNIE 2.0 base towers
# (110M parameters), shards of 1M passages (their eval.shard_size), the per-host top-k merged in
# blocks of 65,536 queries (retrieval.search_divided).
HOSTS, CHIPS, HOST_GB, CHIP_GIB = 4, 4, 400, 32
DIM, SIM_DIM, POD_SHARD, PARAMS, BLOCK = 768, 64, 1_000_000, 110e6, 65_536
SETUPS = {
    "NQ": {"passages": 21_015_324, "labeled": 58_880, "unlabeled": 1_000_000, "eval": 3_610,
           "mine_k": 100, "denoise_k": 100, "augment_k": 50, "eval_k": 100, "batch": 1024,
           "ce_batch": 512, "ce_group": 2},
    "MS MARCO": {"passages": 8_841_823, "labeled": 502_939, "unlabeled": 1_500_000,
                 "eval": 6_980, "mine_k": 1000, "denoise_k": 50, "augment_k": 50,
                 "eval_k": 1000, "batch": 4096, "ce_batch": 512, "ce_group": 5},
}


def vocabulary() -> tuple[list[str], np.ndarray]:
  """SQuAD v1.1 dev's whitespace words and their frequencies (no quotes, tabs or brackets, so
  that the generated TSV needs no quoting and the answers no escaping)."""
  from rocketqa_jax.data import squad
  counts = collections.Counter(
      w for text in squad.load_squad_mini().corpus.texts for w in text.split()
      if not set(w) & set("\"'\t[]\\"))
  words = sorted(counts)
  freq = np.asarray([counts[w] for w in words], np.float64)
  return words, freq / freq.sum()


def generate(folder: pathlib.Path, n: int, seed: int = 0) -> dict[str, str]:
  """Writes (once; a manifest says for which n and seed) the corpus and question files of a
  DPR-layout data set of n passages; returns their paths."""
  files = {"corpus": folder / "psgs_w100.tsv", "train": folder / "train.json",
           "unlabeled": folder / "unlabeled.tsv", "eval": folder / "eval.csv"}
  manifest = {"passages": n, "seed": seed, "labeled": LABELED, "unlabeled": UNLABELED,
              "eval": EVAL, "words_per_passage": WORDS_PER_PASSAGE}
  done = folder / "manifest.json"
  if done.exists() and json.loads(done.read_text()) == manifest:
    return {k: str(v) for k, v in files.items()}
  folder.mkdir(parents=True, exist_ok=True)
  words, probs = vocabulary()
  words = np.asarray(words, dtype=object)
  rng = np.random.default_rng(seed)
  kinds = ["labeled"] * LABELED + ["unlabeled"] * UNLABELED + ["eval"] * EVAL
  positives = rng.integers(0, n, len(kinds))
  starts = rng.integers(0, WORDS_PER_PASSAGE - QUESTION_WORDS, len(kinds))
  by_row = collections.defaultdict(list)
  for q, row in enumerate(positives.tolist()):
    by_row[row].append(q)
  questions = [None] * len(kinds)
  t0 = time.perf_counter()
  with open(files["corpus"], "w", encoding="utf-8") as out:
    out.write("id\ttext\ttitle\n")
    for first in range(0, n, 50_000):
      chunk = np.random.default_rng([seed, first]).choice(
          len(words), (min(n, first + 50_000) - first, WORDS_PER_PASSAGE), p=probs)
      lines = []
      for i, ids in enumerate(chunk, first):
        text_words = words[ids]
        text = " ".join(text_words)
        title = f"Article {i // PASSAGES_PER_TITLE}"
        lines.append(f"{i + 1}\t{text}\t{title}\n")
        for q in by_row.get(i, ()):
          span = text_words[starts[q]:starts[q] + QUESTION_WORDS]
          questions[q] = (" ".join(span) + "?", span[QUESTION_WORDS // 2], i, text, title)
      out.write("".join(lines))
      print(f"\rgenerating {n:,} passages: {min(n, first + 50_000):,}", end="", flush=True)
  print(f" ({time.perf_counter() - t0:.0f} s)")
  labeled = [{"question": text, "answers": [answer],
              "positive_ctxs": [{"title": title, "text": passage, "passage_id": str(row + 1)}],
              "negative_ctxs": [], "hard_negative_ctxs": []}
             for (text, answer, row, passage, title), kind in zip(questions, kinds)
             if kind == "labeled"]
  files["train"].write_text(json.dumps(labeled))
  files["unlabeled"].write_text("".join(
      f"u{q}\t{questions[q][0]}\n" for q, kind in enumerate(kinds) if kind == "unlabeled"))
  files["eval"].write_text("".join(
      f"{questions[q][0]}\t['{questions[q][1]}']\n" for q, kind in enumerate(kinds)
      if kind == "eval"))
  done.write_text(json.dumps(manifest))
  return {k: str(v) for k, v in files.items()}


def overrides(files: dict[str, str], root: pathlib.Path) -> list[str]:
  """configs/tiny.py on the generated DPR-layout data, at RocketQA's NQ depths."""
  return [
      "--config=configs/tiny.py", "--config.data.name=dpr", "--config.data.use_titles=True",
      *(f"--config.data.{k}={v}" for k, v in files.items()),
      f"--config.compilation_cache={root / 'xla'}",
      "--config.train.steps=4", "--config.train.global_batch=64", "--config.ce.steps=4",
      "--config.ce.global_batch=32", "--config.ce.negatives=1", "--config.ce.sample_from_top=100",
      "--config.mine.top_k=100", "--config.mine.index=scann", "--config.denoise.top_k=100",
      "--config.augment.top_k=50", "--config.augment.max_questions=0",
      "--config.eval.max_questions=0", f"--config.eval.shard_size={SHARD}",
      "--config.eval.batch_size=256", "--config.eval.index=exact",
      # The tiny M_C's scores mean nothing: thresholds that keep every candidate as a hard
      # negative and pseudo-label every unlabeled question, the most the later stages can hold.
      "--config.denoise.negative_threshold=0.999", "--config.augment.positive_threshold=0.001",
      "--config.augment.negative_threshold=0.999"]


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def run(layout: str, args: list[str], workdir: pathlib.Path) -> float:
  """The pipeline in `layout`'s processes x devices; its wall seconds."""
  processes, devices = LAYOUTS[layout]
  workdir.mkdir(parents=True, exist_ok=True)
  # glibc's own malloc settings, as on a TPU or GPU host (host_memory.py keeps freed memory on
  # CPU backends only, where the heap then never shrinks and RSS counts its fragmentation).
  env = {**os.environ, "XLA_FLAGS": f"--xla_force_host_platform_device_count={devices}",
         "JAX_PLATFORMS": "cpu", host_memory.DISABLE_ENV: "1"}
  port = _free_port()
  start = time.perf_counter()
  procs = []
  for i in range(processes):
    if processes > 1:
      env = {**env, "ROCKETQA_COORDINATOR": f"127.0.0.1:{port}",
             "ROCKETQA_NUM_PROCESSES": str(processes), "ROCKETQA_PROCESS_ID": str(i)}
    log = open(workdir.parent / f"{workdir.name}.process{i}.log", "a")
    procs.append(subprocess.Popen([sys.executable, "-m", "rocketqa_jax.main", *args,
                                   f"--workdir={workdir}"], cwd=REPO, env=env, stdout=log,
                                  stderr=subprocess.STDOUT))
  codes = [p.wait() for p in procs]
  if any(codes):
    sys.exit(f"{layout} run in {workdir} failed ({codes}): see {workdir.parent}/*.log")
  return time.perf_counter() - start


def stage_rows(workdir: pathlib.Path, **labels) -> list[dict]:
  """A row per stage and process from timings.jsonl."""
  rows = []
  for line in (workdir / "timings.jsonl").read_text().splitlines():
    record = json.loads(line)
    for p, usage in enumerate(record["processes"]):
      rows.append({**labels, "stage": record["stage"], "process": p, **usage})
  return rows


_CORPUS_PROBE = """
import json, os, sys, time
from rocketqa_jax import usage
from rocketqa_jax.data import dpr
def rss(): return usage._status_kib("VmRSS") * 1024
path, as_lists = sys.argv[1], sys.argv[2] == "1"
before, start = rss(), time.perf_counter()
if as_lists:  # The plain form: three lists of str and an id -> row dict.
  rows = list(dpr.iter_passages_tsv(path))
  ids, texts, titles = (list(c) for c in zip(*rows))
  del rows
  index = {pid: i for i, pid in enumerate(ids)}
  n, nbytes = len(ids), None
else:
  corpus = dpr.read_passages_tsv(path)
  n, nbytes = len(corpus), corpus.nbytes
print(json.dumps({"passages": n, "rss_bytes": rss() - before, "nbytes": nbytes,
                  "seconds": round(time.perf_counter() - start, 1)}))
"""


def corpus_memory(path: str, as_lists: bool) -> dict:
  """Resident bytes a fresh process gains loading the corpus TSV: as `Corpus.from_file` (what
  the pipeline does), or as lists of str plus an id dict (what it did before)."""
  out = subprocess.run([sys.executable, "-c", _CORPUS_PROBE, path, str(int(as_lists))], cwd=REPO,
                       env={**os.environ, "JAX_PLATFORMS": "cpu", host_memory.DISABLE_ENV: "1"},
                       check=True, capture_output=True, text=True).stdout
  record = json.loads(out.splitlines()[-1])
  return {"form": "lists" if as_lists else "file", **record,
          "rss_bytes_per_passage": round(record["rss_bytes"] / record["passages"], 1)}


def held(n: int, processes: int, process: int, shard: int = SHARD) -> int:
  """Passages in the shards process `process` owns (s % processes == process)."""
  return sum(min(n, s + shard) - s for s in range(process * shard, n, processes * shard))


def extrapolate(fits: dict, pair_fits: dict, corpus_rows: list[dict]) -> list[dict]:
  """Per stage, what the host holding the most shards needs for NQ and MS MARCO on a v4-32:
  the measured fit a + b x passages held, its per-passage part b widened from 64-dimensional to
  768-dimensional embeddings (the corpus's 24-odd bytes a passage taken out of b first and added
  back for all N passages: every process keeps the whole corpus's positions), plus what the
  simulation holds too little of to measure, from the arrays' shapes: the queries' embeddings,
  candidates (8 B each), the merged top-k of a block of queries (rows, scores and the merge's
  sort: 3 x 8 B per entry per host), pair scores (the measured bytes a pair of process 0, which
  reads them all), examples' negatives (4 B each), and BERT-base weights on the host (4 B a
  parameter, two towers). Per chip: the arrays a chip holds in the stage, from their shapes."""
  corpus = max(r["rss_bytes_per_passage"] for r in corpus_rows if r["form"] == "file")
  widen = (4 * DIM + 8) / (4 * SIM_DIM + 8)  # float32 embedding and int64 row, a passage
  per_pair = max(pair_fits[0]["bytes_per_pair"], 0.0)
  vector, model = 4 * DIM, 2 * 4 * PARAMS
  out = []
  for name, t in SETUPS.items():
    most = held(t["passages"], HOSTS, 0, POD_SHARD)
    def search(queries, k):
      return queries * (vector + 8 * k) + min(queries, BLOCK) * k * HOSTS * 3 * 8
    extra = {
        "train_de0": 0,
        "mine0": search(t["labeled"], t["mine_k"]),
        "train_ce": t["labeled"] * t["mine_k"] * 8,
        "denoise": per_pair * t["labeled"] * t["denoise_k"],
        "train_de1": t["labeled"] * t["denoise_k"] * 4,
        "augment": search(t["unlabeled"], t["augment_k"])
                   + per_pair * t["unlabeled"] * t["augment_k"],
        "train_de2": (t["labeled"] * t["denoise_k"] + t["unlabeled"] * t["augment_k"]) * 4,
        "eval": search(t["eval"], t["eval_k"]),
    }
    # Per chip. Training: fp32 params, gradients and two Adam moments (16 B a parameter; two
    # towers), and activations under remat: each layer's bfloat16 input for the chip's tokens
    # plus one layer's attention probabilities and feed-forward activations in float32.
    def activations(sequences, length):
      tokens = sequences * length
      return tokens * DIM * 2 * 12 + tokens * (12 * length + 4 * DIM) * 4
    per_chip = t["batch"] // (HOSTS * CHIPS)
    train_de = 2 * 16 * PARAMS + activations(per_chip, 32) + activations(2 * per_chip, 128)
    ce_chip = t["ce_batch"] // (HOSTS * CHIPS) * t["ce_group"]
    rows = -(-most // CHIPS // 16_384) * 16_384  # ExactIndex pads to whole chunks
    inference = 4 * PARAMS + activations(1024 // CHIPS, 160)  # eval.batch_size 1,024 a host
    def search_chip(k):  # a chip's rows, one query batch's scores and running top-k
      return max(rows * vector + 1024 * 16_384 * 4 + 1024 * (16_384 + k) * 8, inference)
    chip = {"train_de0": train_de, "train_de1": train_de, "train_de2": train_de,
            "train_ce": 16 * PARAMS + activations(ce_chip, 160),
            "denoise": inference, "mine0": search_chip(t["mine_k"]),
            "augment": search_chip(t["augment_k"]), "eval": search_chip(t["eval_k"])}
    for stage, f in fits.items():
      a, b = f["gib_at_zero"] * 2**30, f["bytes_per_passage_held"]
      host = (a + max(b - 2 * corpus, 0) * widen * most + corpus * t["passages"]
              + extra.get(stage, 0) + model)
      out.append({"setup": name, "stage": stage, "host_gb": round(host / 1e9, 1),
                  "of_400_gb": f"{host / 1e9 / HOST_GB:.1%}",
                  "chip_gib": round(chip[stage] / 2**30, 2),
                  "of_32_gib": f"{chip[stage] / 2**30 / CHIP_GIB:.1%}"})
  return out


def fit(points: list[tuple[float, float]], per: str) -> dict | None:
  """The least-squares line through (x, bytes) points: {"gib_at_zero": its intercept in GiB,
  per: its slope in bytes}; None with fewer than two distinct x."""
  if len({x for x, _ in points}) < 2:
    return None
  slope, intercept = np.polyfit(*np.asarray(points, float).T, 1)
  return {"gib_at_zero": round(float(intercept) / 2**30, 3), per: round(float(slope), 1)}


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--sizes", default="250000,500000,1000000,2000000")
  parser.add_argument("--reference-sizes", default="250000",
                      help="Sizes also run in 1 process x 8 devices.")
  parser.add_argument("--pair-depths", default="12,50,100",
                      help="denoise.top_k values run alone on the smallest size, for memory "
                           "against pairs scored.")
  parser.add_argument("--root", default="/tmp/rocketqa-scale")
  parser.add_argument("--quick", action="store_true", help="20,000 passages, one layout each.")
  parser.add_argument("--out", default=None)
  args = parser.parse_args()
  if args.quick:
    args.sizes, args.reference_sizes, args.pair_depths = "20000", "20000", "12,25"
  root = pathlib.Path(args.root)
  sizes = [int(s) for s in args.sizes.split(",")]
  reference = {int(s) for s in args.reference_sizes.split(",") if s}
  rows, runs, corpus_rows = [], [], []
  for n in sizes:
    files = generate(root / "data" / str(n), n)
    corpus_rows.append({"size": n, **corpus_memory(files["corpus"], as_lists=False)})
    if n == min(sizes):
      corpus_rows.append({"size": n, **corpus_memory(files["corpus"], as_lists=True)})
    for layout in ("2x4", "1x8") if n in reference else ("2x4",):
      workdir = root / "work" / f"{n}-{layout}"
      if not (workdir / "eval" / "metrics.json").exists():
        seconds = run(layout, overrides(files, root), workdir)
        runs.append({"passages": n, "layout": layout, "wall_seconds": round(seconds, 1)})
      rows += stage_rows(workdir, passages=n, layout=layout)
  # Pair scoring against the number of pairs: denoise alone, in fresh processes, at several
  # depths on the smallest corpus, on that run's M_D^(0) candidates and M_C. (Inside the whole
  # pipeline a stage's peak also holds what the earlier stages left in the process: about
  # 0.6 GiB more, the same at every depth.)
  pair_rows = []
  n = min(sizes)
  base = root / "work" / f"{n}-2x4"
  for depth in [int(d) for d in args.pair_depths.split(",") if d]:
    workdir = root / "work" / f"{n}-2x4-denoise{depth}"
    if not (workdir / "denoise" / "stage.json").exists():
      shutil.rmtree(workdir, ignore_errors=True)
      for stage in ("train_de0", "mine0", "train_ce"):
        shutil.copytree(base / stage, workdir / stage)
      run("2x4", [*overrides(generate(root / "data" / str(n), n), root),
                  f"--config.denoise.top_k={depth}", "--config.stages=denoise"], workdir)
    pair_rows += stage_rows(workdir, passages=n, layout="2x4", depth=depth)

  columns = ["passages", "layout", "stage", "process", "seconds", "peak_rss_gib",
             "passages_tokenized", "passages_encoded", "shards_loaded", "passages_indexed",
             "index_build_seconds", "queries_searched", "pairs_scored", "files_written",
             "bytes_written"]
  common.print_table(rows, columns)
  print("\nthe corpus in a fresh process:")
  common.print_table(corpus_rows, ["size", "form", "passages", "rss_bytes", "nbytes",
                                   "rss_bytes_per_passage", "seconds"])
  fits = {}
  for stage in dict.fromkeys(r["stage"] for r in rows):
    line = fit([(held(r["passages"], 2, r["process"]), r["peak_rss_gib"] * 2**30) for r in rows
                if r["stage"] == stage and r["layout"] == "2x4"], "bytes_per_passage_held")
    if line:
      fits[stage] = line
  print("\npeak RSS of a process = a + b x passages it holds (its shards), 2 x 4:")
  for name, f in fits.items():
    print(f"  {name:10s} a = {f['gib_at_zero']:.2f} GiB, b = {f['bytes_per_passage_held']:.0f} B")
  print()
  common.print_table(pair_rows, ["depth", "process", "seconds", "peak_rss_gib", "pairs_scored",
                                 "pairs_tokenized"])
  # Process 0 scores its share and then reads every pair's score; the others only their share.
  total = collections.Counter()
  for r in pair_rows:
    total[r["depth"]] += r["pairs_scored"]
  pair_fits = {}
  for process in sorted({r["process"] for r in pair_rows}):
    line = fit([(total[r["depth"]], r["peak_rss_gib"] * 2**30) for r in pair_rows
                if r["process"] == process], "bytes_per_pair")
    if line:
      pair_fits[process] = line
      print(f"denoise peak RSS of process {process} = {line['gib_at_zero']:.2f} GiB + "
            f"{line['bytes_per_pair']:.1f} B x pairs of the stage")
  estimates = extrapolate(fits, pair_fits, corpus_rows) if fits and pair_fits else []
  if estimates:
    print("\nper host of a v4-32 (4 hosts x 4 chips), from the fits (see docs/scale.md):")
    common.print_table(estimates, ["setup", "stage", "host_gb", "of_400_gb", "chip_gib",
                                   "of_32_gib"])
  common.write_json("scale", {"machine": common.machine(), "runs": runs, "stages": rows,
                              "corpus": corpus_rows, "fits": fits, "pairs": pair_rows,
                              "pair_fits": pair_fits, "estimates": estimates},
                    args.out)


if __name__ == "__main__":
  main()
