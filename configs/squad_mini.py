"""SQuAD-mini, the default demo (README's `make demo`).

Corpus: the 2,067 SQuAD v1.1 dev paragraphs; eval: 2,777 questions of 12 held-out articles.
Model: all-MiniLM-L6-v2 (packaged, offline) with its sentence-transformers settings: mean pooling,
L2-normalized, passages of at most 256 tokens, text without title.
Stages: train_de0 (M_D^(0)), mine0, train_ce (M_C), denoise, train_de1 (M_D^(1)), augment,
train_de2 (M_D^(2)), eval: the whole pipeline, sized to finish in 30 minutes on 2 CPU cores
(the comments say what each size costs; docs/benchmarks.md has the wall time per stage).

Arguments: `configs/squad_mini.py:quick` evaluates the first 300 questions only;
`configs/squad_mini.py:dev` is the tuning split (no eval article anywhere).
"""

import ml_collections

from rocketqa_jax.config_lib import STAGES, parse_arg


def get_config(arg=None):
  arg = parse_arg(arg, quick=False, dev=False)
  config = ml_collections.ConfigDict()
  # Comma-separated, run in order; by default all of RocketQA: train_de0,mine0,train_ce,
  # denoise,train_de1,augment,train_de2,eval.
  config.stages = ",".join(STAGES)
  config.seed = 0
  # XLA programs compiled once are kept here and reused by later stages and runs (train_de0, 1
  # and 2 share one step; a resumed run skips its compiles); "" turns it off. The variable
  # JAX_COMPILATION_CACHE_DIR, where set, takes precedence.
  config.compilation_cache = "~/.cache/rocketqa_jax/xla"

  config.data = ml_collections.ConfigDict()
  config.data.name = "squad_mini"
  config.data.path = ""  # "" = $ROCKETQA_SQUAD_DIR, then ../shared/data/squad_v1.1_dev.
  config.data.use_titles = False  # True: passages are (title, text) segment pairs, as RocketQA.
  # "eval": SQuAD-mini. "dev": for tuning; the 12 eval articles leave entirely and 6 of the 36
  # training articles are the eval questions (see rocketqa_jax/data/squad.py).
  config.data.split = "dev" if arg.dev else "eval"
  # Files of the dpr and msmarco datasets (rocketqa_jax/data/datasets.py); unused here.
  config.data.corpus = ""
  config.data.train = ""
  config.data.train_qrels = ""
  config.data.eval = ""
  config.data.eval_qrels = ""
  # Unlabeled questions for stage augment: "" = SQuAD-mini's unlabeled split; or a file of
  # `id<TAB>question` lines (or a DPR QA .csv).
  config.data.unlabeled = ""

  config.model = ml_collections.ConfigDict()
  config.model.checkpoint = "all-MiniLM-L6-v2"  # Directory, packaged name, or hub id.
  config.model.random_init = False
  config.model.arch = ml_collections.ConfigDict()  # Overrides of the checkpoint's config.json.
  config.model.pooling = "mean"  # cls | mean
  config.model.normalize = True
  config.model.dtype = "float32"  # Compute dtype: float32 | bfloat16.
  config.model.param_dtype = "float32"
  # The inputs of every matrix product: bfloat16 rounds them and accumulates in float32 (a TPU's
  # default precision; on a CPU with AMX, a training step 2.3x faster); float32 is exact, and
  # faster on CPUs without native bfloat16 (AVX2: encoding 1.3x). "auto" picks bfloat16 on TPUs,
  # Ampere+ GPUs and AMX / AVX-512 BF16 CPUs, float32 elsewhere (docs/benchmarks.md).
  config.model.matmul_dtype = "auto"
  config.model.remat = False

  config.tokenizer = ml_collections.ConfigDict()
  config.tokenizer.query_max_length = 32
  config.tokenizer.passage_max_length = 256
  # Inference batches pad to a multiple of this (training pads to its fixed lengths): 8 pads
  # the corpus 4.2% at 256 tokens against 11.8% with 32, for 20 compiled shapes against 7.
  config.tokenizer.bucket_size = 8

  config.mesh = ml_collections.ConfigDict()
  config.mesh.data = -1  # Devices on the data axis; -1 = all.

  # Dual-encoder training (stages train_de0, train_de1, train_de2; each starts from
  # model.checkpoint). train_de0 has random negatives only; 1 and 2 use mined ones.
  config.train = ml_collections.ConfigDict()
  config.train.steps = 0  # > 0: exactly this many; 0: `epochs` over the stage's examples.
  config.train.epochs = 1.0
  config.train.de0_epochs = 0.0  # train_de0's own epochs; 0 = `epochs`.
  # Where train_de1 / train_de2 start: "checkpoint" (model.checkpoint, as train_de0) or
  # "previous" (train_de0's / train_de1's trained towers). On the dev split "previous" helped
  # train_de1 (MRR@10 0.7353 against 0.7287) and hurt train_de2 (0.7311 against 0.7400).
  config.train.init = "checkpoint"
  config.train.global_batch = 32  # Queries per step, over all devices.
  # Training lengths (eval: config.tokenizer). RocketQA: 32 / 128. SQuAD paragraphs are longer
  # (median 148 tokens): on the dev split train_de0 reached MRR@10 0.7295 at 160 and 0.7314 at
  # 192 against 0.7214 at 128, for 1.2x and 1.4x its wall time.
  config.train.query_max_length = 32
  config.train.passage_max_length = 160
  config.train.hard_negatives = 1  # Per query; random corpus passages where none are mined.
  # train_de0 has nothing mined: its negatives are the other queries' positives (cross-batch)
  # plus this many random passages per query; random ones add little to 31 in-batch ones here,
  # and 0 halves the step's passages.
  config.train.de0_random_negatives = 0
  # Off: on the dev split train_de0 reached MRR@10 0.7214 without and 0.7183 with it (bfloat16
  # products; with byte-wide draws dropout costs 12% of a step).
  config.train.dropout = False
  config.train.negatives = "cross_batch"  # cross_batch | in_batch
  # RocketQA scores with a plain dot product (scale 1). Our MiniLM embeddings are unit length,
  # so cosine scores in [-1, 1] need a temperature: 20, as sentence-transformers uses.
  config.train.score_scale = 20.0
  # RocketQA has separate query and passage towers; with 1,948 questions one shared tower did
  # better on the dev split (train_de0 MRR@10 0.7211 against 0.7147; docs/benchmarks.md).
  config.train.shared_towers = True
  # sentence-transformers' 2e-5 at first; on the dev split 3e-5 did better at every stage
  # (train_de0 / de1 / de2 MRR@10 0.7385 / 0.7489 / 0.7631 against 0.7295 / 0.7435 / 0.7577).
  config.train.learning_rate = 3e-5
  config.train.warmup_fraction = 0.1
  config.train.weight_decay = 0.0
  config.train.clip_norm = 1.0
  config.train.checkpoint_every = 20
  config.train.keep_checkpoints = 2
  config.train.log_every = 5

  # Stage mine0: M_D^(0)'s top-k for the labeled questions (RocketQA NQ: 100, MS MARCO: 1000).
  config.mine = ml_collections.ConfigDict()
  config.mine.top_k = 50

  # Stage train_ce: the cross-encoder M_C (question and passage in one sequence).
  config.ce = ml_collections.ConfigDict()
  config.ce.checkpoint = ""  # "" = config.model.checkpoint.
  config.ce.loss = "pointwise"  # pointwise (sigmoid: probabilities for 0.1/0.9) | listwise
  # What the relevance head reads: cls (RocketQA) | mean (learned no faster on the dev split).
  config.ce.pooling = "cls"
  config.ce.steps = 0  # > 0: exactly this many; 0: `epochs` over the labeled questions.
  # A longer-trained M_C labels better: on the dev split (docs/benchmarks.md, sixth round) 0.8
  # epoch with one negative gave 2,853 pseudo-labels at precision 0.860 and train_de2 MRR@10
  # 0.7631; 1.2 epochs with 2 negatives 1,935 at 0.928 and 0.7709 (121 steps); 1.6 with 2,
  # 2,096 at 0.927 and 0.7720, but its demo took 31.5 minutes. Eval demo: 0.7890 (27 minutes).
  config.ce.epochs = 1.2
  config.ce.global_batch = 16  # Questions per step; each brings 1 positive + ce.negatives.
  # RocketQA on NQ: one non-answer passage per positive; MS MARCO: 4.
  config.ce.negatives = 2
  # Negatives sampled from M_D^(0)'s top 10 (RocketQA NQ: 100): the depth denoise rescores, so
  # M_C learns on the kind of candidate it will judge.
  config.ce.sample_from_top = 10
  # Question + passage (RocketQA: 160). On the dev split 160 against 192 (both with training
  # passages at 160): pseudo-label precision 0.883 against 0.865, train_de2 MRR@10 0.7577
  # against 0.7555, and train_ce + denoise + augment 408 s against 522 s.
  config.ce.max_length = 160
  # A bi-encoder checkpoint must learn to read pairs within one epoch (about 100 steps). On the
  # dev split, at 5e-5 its probabilities stayed at 0.5 +- 0.05 for 35-45 steps, head at 5e-5 or
  # 1e-3 (loss 0.65: useless for the 0.1 / 0.9 thresholds); at 1e-4 they separate from step 30
  # (loss 0.23 by step 61).
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
  # RocketQA scans the top 50 (MS MARCO) or 100 (NQ); M_C scores about 65 pairs/s here, so the
  # top 4 (about 6,000 pairs besides the labeled positives) is what fits the 30 minutes.
  config.denoise.top_k = 4
  config.denoise.negative_threshold = 0.1
  config.denoise.enabled = True  # False: every non-positive candidate is a negative (ablation).

  # Stage augment: M_D^(1) retrieves for unlabeled questions, M_C pseudo-labels them.
  config.augment = ml_collections.ConfigDict()
  # RocketQA: 50. The pseudo-positive is M_C's best of these. On the dev split, 2,400 questions
  # at depth 2 gave 1,288 pseudo-labels (precision 0.875) and train_de2 MRR@10 0.7446, against
  # 663 (0.833) and 0.7400 for 1,200 at depth 3: more questions beat deeper candidates; all
  # 4,815 of dev's gave 2,447 (0.881) and 0.7523 (docs/benchmarks.md).
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
  return config
