import gzip
import json
import logging

import numpy as np
import pytest

from rocketqa_jax.data import beir, dpr, msmarco, tfds_questions
from rocketqa_jax.data.lines import DataError, LineStats, iter_records, tab_columns
from rocketqa_jax.data.types import Question
from rocketqa_jax.errors import UserError


def write(path, text, gz=False):
  if gz:
    with gzip.open(path, "wt", encoding="utf-8") as f:
      f.write(text)
  else:
    path.write_text(text, encoding="utf-8")
  return path


def test_lines_are_lazy_numbered_and_tolerate_crlf_bom_and_blank_lines(tmp_path):
  p = write(tmp_path / "x.tsv", "\ufeffa\tb\r\n\nc\td\n")
  records = iter_records(p, lambda line: tab_columns(line, ("k", "v")))
  assert next(records) == (1, ["a", "b"])  # A generator: nothing past line 1 read yet.
  assert list(records) == [(3, ["c", "d"])]
  (tmp_path / "bad.tsv").write_bytes(b"a\tb\n\xff\xfe\tz\n")
  with pytest.raises(DataError, match=r"bad.tsv:2: expected UTF-8 text, got b'\\xff\\xfe\\tz'"):
    list(iter_records(tmp_path / "bad.tsv", lambda line: tab_columns(line, ("k", "v"))))


def test_dpr_passages_gz_header_and_quoting(tmp_path):
  p = write(tmp_path / "psgs_w100.tsv.gz",
            'id\ttext\ttitle\n1\t"Aaron ( or ; ""Ahärôn"") is a prophet"\tAaron\n'
            "2\tplain text\tAbba\n", gz=True)
  corpus = dpr.read_passages_tsv(p)
  assert corpus.ids == ["1", "2"]
  assert corpus.texts == ['Aaron ( or ; "Ahärôn") is a prophet', "plain text"]
  assert corpus.titles == ["Aaron", "Abba"]
  assert list(dpr.iter_passages_tsv(p))[1] == ("2", "plain text", "Abba")
  write(tmp_path / "nohdr.tsv", "1\ttext\ttitle\n")
  with pytest.raises(DataError, match=r"nohdr.tsv:1: expected the header 'id\\ttext\\ttitle', "
                     r"got '1\\ttext\\ttitle'"):
    dpr.read_passages_tsv(tmp_path / "nohdr.tsv", skip_bad=True)  # Wrong file: never skipped.
  write(tmp_path / "dup.tsv", "id\ttext\ttitle\n1\ta\tA\n1\tb\tB\n")
  with pytest.raises(ValueError, match=r"dup.tsv: passage id '1' appears more than once"):
    dpr.read_passages_tsv(tmp_path / "dup.tsv")


def test_dpr_passages_bad_lines_raise_or_are_counted(tmp_path, caplog):
  lines = ["id\ttext\ttitle", "1\tgood\tT"] + [f"{i}\tmissing title" for i in range(2, 9)] + [
      '9\t"unterminated\tT', "10\tlast\tT"]
  p = write(tmp_path / "psgs.tsv", "\n".join(lines) + "\n")
  with pytest.raises(DataError) as e:
    dpr.read_passages_tsv(p)
  assert str(e.value) == (f"{p}:3: expected 3 tab-separated CSV columns (id, text, title), "
                          "got '2\\tmissing title'")
  assert (e.value.path, e.value.line) == (str(p), 3)
  stats = LineStats()
  with caplog.at_level(logging.WARNING):
    corpus = dpr.read_passages_tsv(p, skip_bad=True, stats=stats)
  assert corpus.ids == ["1", "10"]
  assert (stats.records, stats.skipped, stats.skipped_lines) == (2, 8, [3, 4, 5, 6, 7])
  (warning,) = [r for r in caplog.records if r.levelno == logging.WARNING]
  assert "psgs.tsv: skipped 8 bad line(s), at lines 3, 4, 5, 6, 7, ..." in warning.getMessage()
  assert "quoting is malformed" not in warning.getMessage()  # The first error is quoted.
  assert "psgs.tsv:3: expected 3 tab-separated CSV columns" in warning.getMessage()


def test_dpr_qa_csv(tmp_path, caplog):
  p = write(tmp_path / "nq-test.qas.csv",
            "who played sirius black\t['Gary Oldman', 'Oldman']\n"
            '"the ""quoted"" one"\t["x"]\n'
            "broken list\t['a', \n"
            "not strings\t[1, 2]\n"
            "no answers column\n"
            "last one\t[]\n")
  with pytest.raises(DataError, match=r"nq-test.qas.csv:3: expected the answers column to be a "
                     r"Python list of strings like \['a', 'b'\], got \"broken list\\t\['a', \""):
    dpr.read_qa_csv(p)
  stats = LineStats()
  with caplog.at_level(logging.WARNING):
    qs = dpr.read_qa_csv(p, skip_bad=True, stats=stats)
  assert qs == [Question("0", "who played sirius black", answers=("Gary Oldman", "Oldman")),
                Question("1", 'the "quoted" one', answers=("x",)),
                Question("5", "last one")]
  assert (stats.skipped, stats.skipped_lines) == (3, [3, 4, 5])
  assert "nq-test.qas.csv: skipped 3 bad line(s), at lines 3, 4, 5;" in caplog.text


def test_dpr_biencoder_json(tmp_path, caplog):
  examples = [
      {"dataset": "nq", "question": "who sings?", "answers": ["Abba"],
       "positive_ctxs": [{"title": "A", "text": "t", "passage_id": "11"}],
       "negative_ctxs": [{"title": "B", "text": "t", "passage_id": "12"}],
       "hard_negative_ctxs": [{"title": "C", "text": "t", "psg_id": 13},
                              {"title": "D", "text": "no id"}]},
      {"question": "q2", "answers": [], "q_id": "x7",
       "positive_ctxs": [{"title": "E", "text": "t", "psg_id": "21"}]},
  ]
  p = write(tmp_path / "biencoder-nq-dev.json", json.dumps(examples, indent=1))
  with caplog.at_level(logging.WARNING):
    out = dpr.read_biencoder_json(p)
  assert out == [
      dpr.BiencoderExample(Question("0", "who sings?", ("11",), ("Abba",)), ("13",), ("12",)),
      dpr.BiencoderExample(Question("x7", "q2", ("21",), ()), (), ())]
  assert "1 context(s) had no passage id" in caplog.text
  del examples[1]["answers"]
  write(p, json.dumps(examples))
  with pytest.raises(ValueError, match=r"biencoder-nq-dev.json: example \[1\]: missing field "
                     r"'answers'"):
    dpr.read_biencoder_json(p)
  examples[1]["answers"] = "Abba"
  write(p, json.dumps(examples))
  with pytest.raises(ValueError, match=r"example \[1\]: expected 'answers' to be a list, got str"):
    dpr.read_biencoder_json(p)
  write(p, '[\n {"question": "q",\n  "answers": [}\n]')
  with pytest.raises(ValueError, match=r"biencoder-nq-dev.json:3:\d+: invalid JSON"):
    dpr.read_biencoder_json(p)


def test_msmarco_collection_queries_triples(tmp_path, caplog):
  p = write(tmp_path / "collection.tsv", "0\tThe presence of \"communication\"\n1\tSecond.\n")
  corpus = msmarco.read_collection(p)
  assert (corpus.ids, corpus.texts, corpus.titles) == (
      ["0", "1"], ['The presence of "communication"', "Second."], ["", ""])
  write(p, "0\tok\n1\n2\tok too\t\n")
  with pytest.raises(DataError, match=r"collection.tsv:2: expected 2 non-empty tab-separated "
                     r"columns \(pid, passage\), got '1'"):
    msmarco.read_collection(p)
  with caplog.at_level(logging.WARNING):
    assert msmarco.read_collection(p, skip_bad=True).ids == ["0"]
  assert "collection.tsv: skipped 2 bad line(s), at lines 2, 3;" in caplog.text

  q = write(tmp_path / "queries.dev.tsv", "1048585\twhat is paula deen's brother\n2\tq two\n")
  assert msmarco.read_queries(q) == [Question("1048585", "what is paula deen's brother"),
                                     Question("2", "q two")]

  t = write(tmp_path / "triples.train.small.tsv", "a query\tgood passage\tbad passage\n")
  assert list(msmarco.read_triples(t)) == [("a query", "good passage", "bad passage")]
  ids = write(tmp_path / "qidpidtriples.train.full.2.tsv", "400296\t1540783\t3518497\n")
  assert list(msmarco.read_id_triples(ids)) == [("400296", "1540783", "3518497")]
  with pytest.raises(DataError, match=r"qidpidtriples.train.full.2.tsv:1: .*use read_id_triples"):
    list(msmarco.read_triples(ids))
  with pytest.raises(DataError, match=r"triples.train.small.tsv:1: expected 3 tab-separated "
                     r"integer ids \(qid, positive pid, negative pid\), got 'a query"):
    list(msmarco.read_id_triples(t))


def test_msmarco_qrels_join_questions(tmp_path):
  qrels_path = write(tmp_path / "qrels.dev.small.tsv",
                     "2\t0\t7067032\t1\n1048585\t0\t7187158\t1\n2 0 99 0\n2\t0\t12\t2\n")
  qrels = msmarco.read_qrels(qrels_path)
  assert qrels == {"2": {"7067032": 1, "99": 0, "12": 2}, "1048585": {"7187158": 1}}
  queries = write(tmp_path / "queries.tsv", "5\tunjudged\n1048585\tq one\n2\tq two\n")
  assert msmarco.load_questions(queries, qrels_path) == [
      Question("1048585", "q one", ("7187158",)), Question("2", "q two", ("7067032", "12"))]
  write(queries, "2\tq two\n")
  with pytest.raises(ValueError, match=r"qrels.dev.small.tsv vs .*queries.tsv: 1 judged query "
                     r"id\(s\) are not among the 1 queries, e.g. \['1048585'\]"):
    msmarco.load_questions(queries, qrels_path)
  write(qrels_path, "2\t0\t7067032\t1\n2\t0\t7067033\tyes\n")
  with pytest.raises(DataError, match=r"qrels.dev.small.tsv:2: expected 4 whitespace-separated "
                     r"columns \(qid, iteration, pid, integer relevance\), got '2\\t0\\t7067033"):
    msmarco.read_qrels(qrels_path)


def test_beir_dataset_with_graded_qrels(tmp_path, caplog):
  d = tmp_path / "scifact"
  (d / "qrels").mkdir(parents=True)
  write(d / "corpus.jsonl.gz", "\n".join(json.dumps(x) for x in [
      {"_id": "d1", "title": "T1", "text": "one", "metadata": {}},
      {"_id": "d2", "text": "two"},
      {"_id": 3, "title": "T3", "text": "three"}]) + "\n", gz=True)
  write(d / "queries.jsonl", '{"_id": "q1", "text": "first?"}\n{"_id": "q2", "text": "second?"}\n'
        '{"_id": "q3", "text": "third?"}\n')
  write(d / "qrels" / "test.tsv", "query-id\tcorpus-id\tscore\nq2\td2\t2\nq2\td1\t1\nq2\t3\t0\n"
        "q3\td1\t0\n")
  data = beir.load_beir(d)
  assert (data.corpus.ids, data.corpus.titles, data.corpus.texts) == (
      ["d1", "d2", "3"], ["T1", "", "T3"], ["one", "two", "three"])
  assert data.questions == [Question("q2", "second?", ("d2", "d1"))]  # q3: judged, none positive.
  assert data.qrels == {"q2": {"d2": 2, "d1": 1, "3": 0}, "q3": {"d1": 0}}
  with pytest.raises(FileNotFoundError, match="no dev.tsv or dev.tsv.gz in .*qrels"):
    beir.load_beir(d, split="dev")

  write(d / "queries.jsonl", '{"_id": "q1", "text": "first?"}\n{"_id": "q2"}\n[1]\n{"_id": "q3",')
  with pytest.raises(DataError, match=r"queries.jsonl:2: expected a JSON object with string "
                     r"fields '_id', 'text' \(missing or not a string: 'text'\), got"):
    beir.read_queries(d)
  stats = LineStats()
  with caplog.at_level(logging.WARNING):
    assert beir.read_queries(d / "queries.jsonl", skip_bad=True, stats=stats) == [
        Question("q1", "first?")]
  assert (stats.records, stats.skipped, stats.skipped_lines) == (1, 3, [2, 3, 4])
  assert "queries.jsonl: skipped 3 bad line(s), at lines 2, 3, 4;" in caplog.text
  write(d / "qrels" / "test.tsv", "q2\td2\t2\n")
  with pytest.raises(DataError, match=r"test.tsv:1: expected the header "
                     r"'query-id\\tcorpus-id\\tscore', got 'q2\\td2\\t2'"):
    beir.read_qrels(d / "qrels" / "test.tsv")
  write(d / "qrels" / "test.tsv", "query-id\tcorpus-id\tscore\nq2\td2\t0.5\n")
  with pytest.raises(DataError, match=r"test.tsv:2: expected 3 tab-separated columns "
                     r"\(query-id, corpus-id, integer score\)"):
    beir.read_qrels(d / "qrels" / "test.tsv")


def test_tfds_feature_mapping():
  nq = {"question": b"where is the eiffel tower ", "answer": np.array([b"Paris", b"Paris, France",
                                                                       b"Paris"], dtype=object)}
  assert tfds_questions.question_from_example("natural_questions_open", nq, 4) == Question(
      "4", "where is the eiffel tower", answers=("Paris", "Paris, France"))
  tqa = {"question": b"Who was Abba's drummer?", "question_id": b"tc_33",
         "answer": {"value": b"Ola Brunkert", "aliases": np.array([b"Ola Brunkert", b"Brunkert"]),
                    "normalized_aliases": np.array([b"ola brunkert", b"brunkert"]),
                    "normalized_value": b"ola brunkert"}}
  assert tfds_questions.question_from_example("trivia_qa/rc.nocontext", tqa, 0) == Question(
      "tc_33", "Who was Abba's drummer?", answers=("Ola Brunkert", "Brunkert"))
  hidden = {**tqa, "answer": {"value": b"", "aliases": np.array([], dtype=object),
                              "normalized_aliases": np.array([], dtype=object)}}
  assert tfds_questions.question_from_example("trivia_qa", hidden, 0).answers == ()
  with pytest.raises(ValueError, match="unsupported TFDS data set 'squad'"):
    tfds_questions.question_from_example("squad", nq, 0)


def test_a_remote_data_file_is_refused_with_what_to_do():
  """The corpus is read by position at every step: gs:// must be copied to the host first."""
  with pytest.raises(UserError, match=r"gs://b/psgs_w100.tsv: data files are read from a local "
                                       r"disk; copy them .* --data=gs://"):
    dpr.read_passages_tsv("gs://b/psgs_w100.tsv")
