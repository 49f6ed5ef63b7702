import gzip
import json

import pytest

from rocketqa_jax.data import squad


def test_split_equals_shared_splits_json(squad_mini):
  splits = json.loads((squad.find_squad_file().parent / "splits.json").read_text())
  assert squad_mini.eval_articles == splits["eval_articles"]
  assert squad_mini.train_articles == splits["train_articles"]
  assert sorted(q.id for q in squad_mini.labeled) == sorted(splits["labeled_question_ids"])
  assert sorted(q.id for q in squad_mini.unlabeled) == sorted(splits["unlabeled_question_ids"])
  assert (len(squad_mini.corpus), len(squad_mini.eval), len(squad_mini.labeled),
          len(squad_mini.unlabeled)) == (2067, 2777, 1948, 5845)


def test_questions_point_at_their_paragraph(squad_mini):
  q = squad_mini.eval[0]
  (pid,) = q.positive_ids
  row = squad_mini.corpus.index[pid]
  assert pid.split("#")[0] == squad_mini.eval_articles[0]
  assert all(a in squad_mini.corpus.texts[row] for a in q.answers)
  assert squad_mini.corpus.titles[row] == squad_mini.eval_articles[0].replace("_", " ")


def test_bad_files_are_named(tmp_path):
  bad = tmp_path / "dev-v1.1.json"
  bad.write_text('{"data": [\n  {"title": "A",\n "paragraphs": [}]}')
  with pytest.raises(ValueError, match=r"dev-v1.1.json:3:\d+: invalid JSON"):
    squad.read_squad(bad)
  doc = {"data": [{"title": "A", "paragraphs": [{"context": "c", "qas": [{"id": "1"}]}]}]}
  with gzip.open(tmp_path / "x.json.gz", "wt") as f:
    json.dump(doc, f)
  with pytest.raises(ValueError, match=r"x.json.gz: data\[0\].paragraphs\[0\].qas\[0\]: .*'answers'"):
    squad.read_squad(tmp_path / "x.json.gz")
  with pytest.raises(FileNotFoundError, match="ROCKETQA_SQUAD_DIR"):
    squad.find_squad_file(tmp_path / "nowhere")
