"""SQuAD-mini, the default demo (README's `make demo`).

Corpus: the 2,067 SQuAD v1.1 dev paragraphs; eval: 2,777 questions of 12 held-out articles.
Model: all-MiniLM-L6-v2 (packaged, offline) with its sentence-transformers settings: mean pooling,
L2-normalized, passages of at most 256 tokens, text without title.
Stages: train_de0 (M_D^(0)), mine0, train_ce (M_C), denoise, train_de1 (M_D^(1)), augment,
train_de2 (M_D^(2)), eval: the whole pipeline, sized to about 30 minutes on 2 CPU cores.
Every choice was tuned on the dev split; docs/benchmarks.md ("Tuning on the dev split") has the
figures behind each one, and the wall time per stage.

Arguments: `configs/squad_mini.py:quick` evaluates the first 300 questions only;
`configs/squad_mini.py:dev` is the tuning split (no eval article anywhere). Combine arguments
with commas: `dev,quick`.
"""

import ml_collections

from rocketqa_jax.config_lib import parse_arg
from rocketqa_jax.stages import NAMES


def get_config(arg=None):
  arg = parse_arg(arg, quick=False, dev=False)
  config = ml_collections.ConfigDict()
  config.stages = ",".join(NAMES)  # Comma-separated, run in order; by default all of RocketQA.
  # A stage to redo, with every stage after it: their outputs are removed first. For a workdir
  # whose finished stages were made with other settings (the run names the field).
  config.rerun = ""
  config.seed = 0
  # XLA programs compiled once are kept here for later stages and runs ("" turns it off;
  # JAX_COMPILATION_CACHE_DIR, where set, takes precedence).
  config.compilation_cache = "~/.cache/rocketqa_jax/xla"

  config.data = ml_collections.ConfigDict()
  config.data.name = "squad_mini"  # squad_mini | dpr | msmarco | beir (data/datasets.py)
  config.data.path = ""  # squad_mini: "" = $ROCKETQA_SQUAD_DIR, then ../shared/data/...; beir.
  config.data.use_titles = False  # True: passages are (title, text) segment pairs, as RocketQA.
  # squad_mini: "eval" (SQuAD-mini) or "dev" (tuning: the 12 eval articles leave entirely and 6
  # of the 36 training articles are the eval questions; see rocketqa_jax/data/squad.py).
  # beir: the qrels split evaluated ("test").
  config.data.split = "dev" if arg.dev else "eval"
  # Files of the dpr and msmarco data sets (rocketqa_jax/data/datasets.py); unused here.
  config.data.corpus = ""
  config.data.train = ""
  config.data.train_qrels = ""
  config.data.eval = ""
  config.data.eval_qrels = ""
  # Unlabeled questions for stage augment: "" = the data set's own (SQuAD-mini's unlabeled
  # split); a file of `id<TAB>question` lines, a DPR QA .csv, a BEIR queries.jsonl, or
  # tfds:NAME:SPLIT (natural_questions_open, trivia_qa; prepared in TFDS beforehand).
  config.data.unlabeled = ""
  # Line-oriented files (TSV, JSONL, CSV): True skips a bad line (counted, its file and line
  # numbers in a warning and in timings.jsonl's "skipped_lines") instead of stopping the run.
  config.data.skip_bad = False

  config.model = ml_collections.ConfigDict()
  config.model.checkpoint = "all-MiniLM-L6-v2"  # Directory, packaged name, or hub id.
  config.model.random_init = False
  config.model.arch = ml_collections.ConfigDict()  # Overrides of the checkpoint's config.json.
  config.model.pooling = "mean"  # cls | mean: the checkpoint's own.
  config.model.normalize = True
  config.model.dtype = "float32"  # Compute dtype: float32 | bfloat16.
  config.model.param_dtype = "float32"
  # The inputs of every matrix product: bfloat16 (float32 sums, a TPU's default precision) or
  # float32. "auto": bfloat16 where the chip multiplies it natively (TPU, Ampere+ GPU, AMX /
  # AVX-512 BF16 CPU), float32 elsewhere, where bfloat16 products are slower.
  config.model.matmul_dtype = "auto"
  # The model through cpu_kernels.py (the same function, tuned for XLA:CPU): auto | on | off.
  # "auto": on for CPU backends only; accelerators get jax.nn.dot_product_attention.
  config.model.cpu_kernels = "auto"
  config.model.remat = False

  config.tokenizer = ml_collections.ConfigDict()  # Inference (mining, eval, search) lengths.
  config.tokenizer.query_max_length = 32
  config.tokenizer.passage_max_length = 256
  # Inference batches pad to a multiple of this: little padding, few compiled shapes on CPU.
  config.tokenizer.bucket_size = 8

  config.mesh = ml_collections.ConfigDict()
  config.mesh.data = -1  # Devices on the data axis; -1 = all.

  # Dual-encoder training (stages train_de0, train_de1, train_de2).
  config.train = ml_collections.ConfigDict()
  config.train.steps = 0  # > 0: exactly this many; 0: `epochs` over the stage's examples.
  config.train.epochs = 1.0
  config.train.de0_epochs = 0.0  # train_de0's own epochs; 0 = `epochs`.
  # Where train_de1 / train_de2 start: "checkpoint" (model.checkpoint, so the ablation compares
  # data, not training length) or "previous" (the previous stage's trained towers).
  config.train.init = "checkpoint"
  # train_de2's own start and length ("" / 0: as train_de1). RocketQA's scripts train steps 3-4
  # for a quarter of step 1's epochs (MS MARCO) and note that step 3 does better started from
  # step 1's model. Here M_D^(2) continues from M_D^(1) for half an epoch over the labeled and
  # pseudo-labeled questions. Dev, MRR@10 of M_D^(2) / the hybrid / reranked: 0.7601 / 0.8835 /
  # 0.8962, against a cold full epoch's 0.7603 / 0.8807 / 0.8972 (paired SE 0.0015-0.0018), for
  # half of train_de2. train_de1 warm too (train.init=previous, 0.5 epochs): 0.7555 / 0.8841 /
  # 0.8949.
  config.train.de2_init = "previous"
  config.train.de2_epochs = 0.5
  config.train.global_batch = 32  # Queries per step, over all devices.
  # Training lengths (inference: config.tokenizer). RocketQA: 32 / 128; SQuAD paragraphs are
  # longer (median 148 tokens), and 160 beat 128 on the dev split.
  config.train.query_max_length = 32
  config.train.passage_max_length = 160
  config.train.hard_negatives = 1  # Per query; random corpus passages where none are mined.
  # train_de0 has nothing mined: its negatives are the other queries' positives (cross-batch)
  # plus this many random passages per query; 0 halves the step's passages for no loss here.
  config.train.de0_random_negatives = 0
  config.train.dropout = False  # As good on the dev split, and 12% of a step cheaper.
  config.train.negatives = "cross_batch"  # cross_batch | in_batch
  # RocketQA scores with a plain dot product (scale 1). Our MiniLM embeddings are unit length,
  # so cosine scores in [-1, 1] need a temperature: 20, as sentence-transformers uses.
  config.train.score_scale = 20.0
  # RocketQA has separate towers; with 1,948 questions one shared tower did better on dev.
  config.train.shared_towers = True
  config.train.learning_rate = 3e-5  # Beat sentence-transformers' 2e-5 at every stage on dev.
  config.train.warmup_fraction = 0.1
  config.train.weight_decay = 0.0
  config.train.clip_norm = 1.0
  # Distillation from M_C (RocketQAv2, static): train_de1 and train_de2 add this weight times
  # the KL between M_C's softmax (logits / temperature) and the dual encoder's over each
  # query's positive and hard negatives (losses.py); 0 = off.
  config.train.distill_weight = 0.0
  config.train.distill_temperature = 1.0
  config.train.checkpoint_every = 20
  config.train.keep_checkpoints = 2
  config.train.log_every = 5

  # Stage mine0: M_D^(0)'s top-k for the labeled questions.
  config.mine = ml_collections.ConfigDict()
  config.mine.top_k = 50
  config.mine.index = "exact"  # exact (JAX, sharded) | scann (approximate); augment's too.
  # dense | dense,bm25: BM25's top passages (config.bm25) in turns with M_D^(0)'s (DPR's BM25
  # hard negatives), for train_ce to learn from and denoise to judge. Dev split: M_C alone
  # reranks the hybrid's top 5 to MRR@10 0.854 (0.841 from dense candidates only), fused 0.885
  # (0.884); M_D^(1) 0.749 (0.747).
  config.mine.sources = "dense,bm25"

  # Stage train_ce: the cross-encoder M_C (question and passage in one sequence).
  config.ce = ml_collections.ConfigDict()
  config.ce.checkpoint = ""  # "" = config.model.checkpoint.
  config.ce.loss = "pointwise"  # pointwise (sigmoid: probabilities for 0.1/0.9) | listwise
  config.ce.pooling = "cls"  # What the relevance head reads: cls (RocketQA) | mean.
  config.ce.steps = 0  # > 0: exactly this many; 0: `epochs` over the labeled questions.
  # A longer-trained M_C labels more precisely; 1.2 epochs with 2 negatives fits the 30 minutes.
  # Its reranking moves by +-0.004 with the schedule: dev, 1.0 / 1.2 / 1.5 epochs 0.8895 /
  # 0.8972 / 0.8880 (the hybrid's top 8 within 2, weight 0.3).
  config.ce.epochs = 1.2
  config.ce.global_batch = 16  # Questions per step; each brings 1 positive + ce.negatives.
  config.ce.negatives = 2  # Per positive (RocketQA: NQ 1, MS MARCO 4).
  # Negatives sampled from M_D^(0)'s top 10: the depth denoise rescores, so M_C learns on the
  # kind of candidate it will judge.
  config.ce.sample_from_top = 10
  # Question + passage: most of a SQuAD paragraph (RocketQA: 160). At 160, 54% of the pairs M_C
  # reranks lose the paragraph's end (an answer there unseen); at 224 15%, at 256 9%. Dev, M_C
  # alone on the hybrid's top 4 / fused at depth 8: 160 0.859 / 0.891, 224 0.873 / 0.896, 256
  # 0.872 / 0.896 (z-scored fusion); with eval.rerank's settings, 160 0.893, 224 0.897.
  # train_ce 1.4x longer at 224 than at 160 (every step pads to the length), scoring 1.2x.
  config.ce.max_length = 224
  # Pairs M_C scores at a time in denoise and augment (pair_scoring.py): the unit of resumption
  # and of division over processes; about 25 MB of tokens at 160 tokens.
  config.ce.score_chunk = 16_384
  # A bi-encoder checkpoint must learn to read pairs within about 100 steps: at 5e-5 its
  # probabilities stay near 0.5, useless for the 0.1 / 0.9 thresholds; at 1e-4 they separate.
  config.ce.learning_rate = 1e-4
  config.ce.head_learning_rate = 1e-3  # The fresh head's own rate (trainer.make_optimizer).
  config.ce.dropout = False
  config.ce.warmup_fraction = 0.1
  config.ce.weight_decay = 0.0
  config.ce.clip_norm = 1.0
  config.ce.checkpoint_every = 20
  config.ce.keep_checkpoints = 2
  config.ce.log_every = 5

  # Stage denoise: M_C rescores M_D^(0)'s top-k; negatives only below the threshold (RocketQA).
  config.denoise = ml_collections.ConfigDict()
  # RocketQA scans the top 50 (MS MARCO) or 100 (NQ); at about 65 pairs/s on 2 cores the top 4
  # (about 6,000 pairs besides the labeled positives) is what fits the 30 minutes.
  config.denoise.top_k = 4
  config.denoise.negative_threshold = 0.1
  config.denoise.enabled = True  # False: every non-positive candidate is a negative (ablation).

  # Stage augment: M_D^(1) retrieves for unlabeled questions, M_C pseudo-labels them.
  config.augment = ml_collections.ConfigDict()
  # RocketQA: 50. More questions beat deeper candidates on dev: every question, at depth 2.
  config.augment.top_k = 2
  config.augment.max_questions = 0  # All 5,845 unlabeled: 11,690 pairs to score (0 = all).
  config.augment.positive_threshold = 0.9
  config.augment.negative_threshold = 0.1

  config.eval = ml_collections.ConfigDict()
  config.eval.batch_size = 64
  config.eval.ks = (1, 5, 20, 100)  # Recall@k.
  config.eval.mrr_k = 10
  config.eval.answer_ks = (1, 5, 20)  # DPR-style answer-string top-k accuracy.
  config.eval.index = "exact"  # exact (JAX, sharded) | scann (approximate).
  config.eval.shard_size = 100_000  # Passages per corpus embedding shard.
  config.eval.max_questions = 300 if arg.quick else 0  # 0 = all.
  # Rows besides the dual encoders': bm25 (bm25s over the passages, titles as data.use_titles)
  # and hybrid (the newest dual encoder's top 100 fused with BM25's): dense | bm25 | hybrid.
  config.eval.retrievers = "dense,bm25,hybrid"
  config.eval.hybrid_fusion = "interpolate"  # interpolate (z-scored scores) | rrf
  # BM25's share in interpolate. Dev split (bench/hybrid.py, M_D^(2) + BM25 as config.bm25,
  # MRR@10): 0.3 0.858, 0.4 0.870, 0.5 0.876, 0.6 0.876, 0.7 0.871; RRF 0.842; BM25 alone
  # 0.841, M_D^(2) 0.767.
  config.eval.hybrid_weight = 0.5
  # M_C reranks the head of these rows of the newest dual encoder (dense: its own; bm25;
  # hybrid: its hybrid): (1 - weight) * their z-scores + weight * M_C's logits
  # (reranking.py); "" = none. The head: the top `rerank_depth` passages within `rerank_margin`
  # of the best one's z-score (0: the whole top depth), so M_C judges the close calls only.
  # Dev split (bench/rerank.py, M_C at 224 tokens reranking the hybrid at 0.8807, MRR@10 at
  # weight 0.3): depth 4 0.8951, 8 0.8975, 10 0.8978 (4, 8, 10 pairs a question); depth 8
  # within 1.5 0.8959, within 2 0.8972 (1.9 pairs), within 3 0.8974 (3.2 pairs). Weight at
  # depth 8 within 2: 0.2 0.8910, 0.25 0.8935, 0.35 0.8970, 0.4 0.8953, 0.5 0.8932, M_C alone
  # 0.8847. The logits z-scored over the head instead (the rule before 2026-12-06): depth 8
  # 0.8940 at 0.5, its best.
  config.eval.rerank = "hybrid"
  config.eval.rerank_depth = 8
  config.eval.rerank_margin = 2.0
  config.eval.rerank_weight = 0.3  # M_C's share; 1 = M_C's order alone.

  # BM25 (bm25.py): the eval rows bm25 and hybrid; one index per workdir (<workdir>/bm25).
  # Dev split (bench/hybrid.py, MRR@10 of BM25 / of the hybrid with M_D^(2) at 0.5): bm25s'
  # defaults (k1 1.5, b 0.75, no stemmer) 0.815 / 0.860; stemmed 0.832 / 0.870; stemmed with
  # k1 0.9 0.841 / 0.876 (b 0.4 0.836 / 0.874; b 0.9 0.841 / 0.876, kept at Lucene's 0.75).
  config.bm25 = ml_collections.ConfigDict()
  config.bm25.stemmer = "english"  # A Snowball language (PyStemmer), or "" for none.
  # A passage as "title text" for BM25 (data.use_titles is the dense towers'). Dev: BM25 0.845
  # with the article title, 0.841 without; the hybrid 0.882 / 0.876.
  config.bm25.use_titles = True
  config.bm25.k1 = 0.9
  config.bm25.b = 0.75
  return config
