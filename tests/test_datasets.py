"""Datasets by name (squad_mini, dpr, msmarco, beir), TFDS question sets, and the NQ / MS MARCO
configs."""

import json
import runpy

import pytest

from conftest import REPO, run_python
from rocketqa_jax import config_lib
from rocketqa_jax.data import datasets


def _config(name, **files):
  config = runpy.run_path(str(REPO / "configs/squad_mini.py"))["get_config"]()
  config.data.name = name
  config.data.update(files)
  return config


def _dpr_files(tmp, squad_mini, n_passages=300, n_train=96, n_eval=64):
  """DPR-format files made from SQuAD-mini: the first paragraphs and their questions."""
  corpus = squad_mini.corpus
  rows = range(n_passages)
  (tmp / "psgs.tsv").write_text("id\ttext\ttitle\n" + "".join(
      f"{i}\t\"{corpus.texts[i].replace(chr(34), chr(34) * 2)}\"\t{corpus.titles[i]}\n"
      for i in rows))
  kept = {corpus.ids[i]: str(i) for i in rows}
  questions = [q for q in squad_mini.labeled + squad_mini.unlabeled if q.positive_ids[0] in kept]
  train = [{"question": q.text, "answers": list(q.answers),
            "positive_ctxs": [{"passage_id": kept[q.positive_ids[0]], "title": "", "text": ""}]}
           for q in questions[:n_train]]
  (tmp / "train.json").write_text(json.dumps(train))
  (tmp / "test.csv").write_text("".join(f"{q.text}\t{list(q.answers)!r}\n"
                                        for q in questions[n_train:n_train + n_eval]))
  return {"corpus": str(tmp / "psgs.tsv"), "train": str(tmp / "train.json"),
          "eval": str(tmp / "test.csv")}


def test_dpr_and_msmarco_by_name(tmp_path, squad_mini):
  data = datasets.load_data(_config("dpr", **_dpr_files(tmp_path, squad_mini)).data)
  assert len(data.corpus) == 300 and len(data.labeled) == 96 and len(data.eval) == 64
  assert data.labeled[0].positive_ids[0] in data.corpus.index and data.unlabeled == []
  assert data.eval[0].answers and not data.eval[0].positive_ids  # Answers only, as nq-test.
  (tmp_path / "collection.tsv").write_text("0\tfirst passage\n1\tsecond passage\n")
  (tmp_path / "q.tsv").write_text("10\twhich one?\n11\tthe other?\n12\tunjudged\n")
  (tmp_path / "qrels.tsv").write_text("10\t0\t1\t1\n11\t0\t0\t1\n")
  (tmp_path / "unlabeled.tsv").write_text("20\tan unlabeled question\n")
  data = datasets.load_data(_config(
      "msmarco", corpus=str(tmp_path / "collection.tsv"), train=str(tmp_path / "q.tsv"),
      train_qrels=str(tmp_path / "qrels.tsv"), eval=str(tmp_path / "q.tsv"),
      eval_qrels=str(tmp_path / "qrels.tsv"), unlabeled=str(tmp_path / "unlabeled.tsv")).data)
  assert [q.positive_ids for q in data.labeled] == [("1",), ("0",)]  # Judged ones only.
  assert [q.text for q in data.unlabeled] == ["an unlabeled question"]
  with pytest.raises(ValueError, match=r"config.data.train_qrels"):
    datasets.load_data(_config("msmarco", corpus="c", train="t", eval="e", eval_qrels="x").data)


def test_squad_mini_dev_split_leaves_out_the_eval_articles(squad_mini):
  dev = datasets.load_data(_config("squad_mini", split="dev").data)
  eval_passages = {p for q in squad_mini.eval for p in q.positive_ids}
  assert not eval_passages & set(dev.corpus.ids)  # No eval article anywhere in tuning.
  assert (len(dev.corpus), len(dev.eval), len(dev.labeled), len(dev.unlabeled)) == (
      1505, 1374, 1604, 4815)
  dev_passages = {p for q in dev.eval for p in q.positive_ids}
  assert not dev_passages & {p for q in dev.labeled + dev.unlabeled for p in q.positive_ids}


@pytest.mark.parametrize("name", ["nq", "msmarco"])
def test_paper_configs_validate(name):
  config = runpy.run_path(str(REPO / f"configs/{name}.py"))["get_config"]("root=/data/x")
  config_lib.validate(config)
  assert config.data.corpus.startswith("/data/x/") and config.model.pooling == "cls"
  assert config.train.learning_rate == 3e-5 and config.train.score_scale == 1.0
  assert config.stages.split(",") == list(config_lib.STAGES)


def test_answer_only_eval_on_dpr_files(tmp_path, squad_mini):
  """train_de0 and eval on DPR-format files: answer@k for questions without passage labels."""
  files = _dpr_files(tmp_path, squad_mini)
  result = run_python(["-m", "rocketqa_jax.main", "--config=configs/tiny.py",
                       f"--workdir={tmp_path / 'work'}", "--config.data.name=dpr",
                       *(f"--config.data.{k}={v}" for k, v in files.items()),
                       "--config.stages=train_de0,eval", "--config.train.steps=2"])
  assert result.returncode == 0, result.stderr[-3000:]
  metrics = json.loads((tmp_path / "work" / "eval" / "metrics.json").read_text())
  assert set(metrics) == {"initial", "train_de0", "bm25", "hybrid", "hybrid_initial"}
  for m in metrics.values():
    assert m["questions"] == 64 and m["passages"] == 300 and "mrr@10" not in m
    assert 0 <= m["answer@1"] <= m["answer@5"] <= m["answer@20"] <= 1
    assert m["answer@20"] > 0.05  # 20 of 300 passages at random would give about 0.07.


def _beir_files(root, squad_mini, n_passages=300):
  """A BEIR folder made from SQuAD-mini's first paragraphs: train and test qrels."""
  corpus, kept = squad_mini.corpus, set(squad_mini.corpus.ids[:n_passages])
  (root / "qrels").mkdir(parents=True)
  (root / "corpus.jsonl").write_text("".join(
      json.dumps({"_id": corpus.ids[i], "title": corpus.titles[i], "text": corpus.texts[i]}) + "\n"
      for i in range(n_passages)))
  train = [q for q in squad_mini.labeled if q.positive_ids[0] in kept][:96]
  test = [q for q in squad_mini.unlabeled if q.positive_ids[0] in kept][:48]
  (root / "queries.jsonl").write_text("".join(json.dumps({"_id": q.id, "text": q.text}) + "\n"
                                              for q in train + test))
  for split, questions in (("train", train), ("test", test)):
    (root / "qrels" / f"{split}.tsv").write_text("query-id\tcorpus-id\tscore\n" + "".join(
        f"{q.id}\t{q.positive_ids[0]}\t1\n" for q in questions))
  return train, test


def test_beir_by_name_trains_and_evaluates(tmp_path, squad_mini):
  train, test = _beir_files(tmp_path / "beir", squad_mini)
  data = datasets.load_data(_config("beir", path=str(tmp_path / "beir"), split="test").data)
  assert len(data.corpus) == 300 and data.corpus.titles[0] == squad_mini.corpus.titles[0]
  assert [q.id for q in data.labeled] == [q.id for q in train]
  assert [(q.id, q.positive_ids) for q in data.eval] == [(q.id, q.positive_ids[:1]) for q in test]
  with pytest.raises(FileNotFoundError, match="no eval.tsv or eval.tsv.gz"):
    datasets.load_data(_config("beir", path=str(tmp_path / "beir")).data)  # split "eval".
  result = run_python(["-m", "rocketqa_jax.main", "--config=configs/tiny.py",
                       f"--workdir={tmp_path / 'work'}", "--config.data.name=beir",
                       f"--config.data.path={tmp_path / 'beir'}", "--config.data.split=test",
                       "--config.stages=train_de0,eval", "--config.train.steps=2"])
  assert result.returncode == 0, result.stderr[-3000:]
  metrics = json.loads((tmp_path / "work" / "eval" / "metrics.json").read_text())
  assert set(metrics) == {"initial", "train_de0", "bm25", "hybrid", "hybrid_initial"}
  assert all(m["questions"] == 48 and m["passages"] == 300 and 0 <= m["mrr@10"] <= 1
             for m in metrics.values())


def test_tfds_question_sets_by_spec(tmp_path, squad_mini, monkeypatch):
  """natural_questions_open prepared in a TFDS data dir (from two small files the test writes,
  in place of the download), then read as eval and unlabeled questions of the dpr data set."""
  import unittest.mock
  import tensorflow_datasets as tfds
  splits = {"train": squad_mini.unlabeled[:5], "validation": squad_mini.labeled[:3]}
  files = {}
  for split, questions in splits.items():
    files[split] = tmp_path / f"nq-open-{split}.jsonl"
    files[split].write_text("".join(json.dumps({"question": q.text, "answer": list(q.answers)})
                                    + "\n" for q in questions))
  monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path / "tfds"))
  with unittest.mock.patch.object(tfds.download.DownloadManager, "download",
                                  lambda self, urls: {k: str(v) for k, v in files.items()}):
    tfds.builder("natural_questions_open", data_dir=str(tmp_path / "tfds")).download_and_prepare(
        file_format="array_record")
  config = _config("dpr", **_dpr_files(tmp_path, squad_mini))
  config.data.eval = "tfds:natural_questions_open:validation"
  config.data.unlabeled = "tfds:natural_questions_open:train"
  data = datasets.load_data(config.data)
  assert sorted(q.text for q in data.eval) == sorted(q.text for q in splits["validation"])
  assert all(q.answers and not q.positive_ids for q in data.eval + data.unlabeled)
  assert sorted(q.text for q in data.unlabeled) == sorted(q.text for q in splits["train"])
  with pytest.raises(ValueError, match="expected tfds:NAME:SPLIT"):
    datasets.read_questions("tfds:natural_questions_open")
