"""MS MARCO passage ranking (Nguyen et al. 2016), RocketQA's main benchmark: the 8.8M-passage
collection, queries, TREC qrels and the official training triples, read lazily as TSV.

Ids stay strings (as in every Corpus and Question), so they key qrels dicts the way trec_eval
and the BEIR tooling do.
"""

from __future__ import annotations

import os
from typing import Iterable, Iterator

from rocketqa_jax.data.corpus import Corpus
from rocketqa_jax.data.lines import DataError, LineStats, iter_records, tab_columns
from rocketqa_jax.data.types import Question

Qrels = dict[str, dict[str, int]]  # qid -> {pid: relevance}


def iter_collection(path: str | os.PathLike, skip_bad: bool = False,
                    stats: LineStats | None = None) -> Iterator[tuple[str, str]]:
  """(pid, passage) per line of collection.tsv (no header), lazily."""
  for _, (pid, text) in iter_records(path, lambda line: tab_columns(line, ("pid", "passage")),
                                     skip_bad=skip_bad, stats=stats):
    yield pid, text


def read_collection(path: str | os.PathLike, skip_bad: bool = False,
                    stats: LineStats | None = None) -> Corpus:
  """The collection as a Corpus; MS MARCO passages have no titles, so titles are ""."""
  return Corpus.from_file(path, lambda line: (*tab_columns(line, ("pid", "passage")), ""),
                          skip_bad=skip_bad, stats=stats)


def read_queries(path: str | os.PathLike, skip_bad: bool = False,
                 stats: LineStats | None = None) -> list[Question]:
  """Unlabeled Questions from a queries.*.tsv file (qid TAB query, no header); an id twice is
  an error (its questions would share one run and one set of judgments)."""
  questions, lines_of = [], {}
  for number, (qid, text) in iter_records(
      path, lambda line: tab_columns(line, ("qid", "query")), skip_bad=skip_bad, stats=stats):
    if qid in lines_of:
      raise DataError(path, number, f"a new query id (line {lines_of[qid]} has this one)", qid)
    lines_of[qid] = number
    questions.append(Question(qid, text))
  return questions


def read_qrels(path: str | os.PathLike, skip_bad: bool = False,
               stats: LineStats | None = None) -> Qrels:
  """TREC qrels (`qid 0 pid relevance`, whitespace-separated) as {qid: {pid: relevance}}."""
  qrels: Qrels = {}
  for _, (qid, pid, rel) in iter_records(path, _parse_qrel, skip_bad=skip_bad, stats=stats):
    qrels.setdefault(qid, {})[pid] = rel
  return qrels


def _parse_qrel(line: str) -> tuple[str, str, int]:
  parts = line.split()
  if len(parts) != 4 or not _is_int(parts[3]):
    raise ValueError("expected 4 whitespace-separated columns (qid, iteration, pid, integer "
                     "relevance)")
  return parts[0], parts[2], int(parts[3])


def _is_int(s: str) -> bool:
  return s.lstrip("+-").isdigit()


def read_triples(path: str | os.PathLike, skip_bad: bool = False,
                 stats: LineStats | None = None) -> Iterator[tuple[str, str, str]]:
  """(query, positive passage, negative passage) texts per line of triples.train.small.tsv."""
  for _, row in iter_records(path, _parse_text_triple, skip_bad=skip_bad, stats=stats):
    yield row


def _parse_text_triple(line: str) -> tuple[str, str, str]:
  parts = tab_columns(line, ("query", "positive passage", "negative passage"))
  if all(p.isdigit() for p in parts):
    raise ValueError("expected 3 texts (query, positive, negative) but found 3 ids: for "
                     "qidpidtriples files use read_id_triples")
  return tuple(parts)


def read_id_triples(path: str | os.PathLike, skip_bad: bool = False,
                    stats: LineStats | None = None) -> Iterator[tuple[str, str, str]]:
  """(qid, positive pid, negative pid) per line of qidpidtriples.train.full.2.tsv, lazily."""
  for _, row in iter_records(path, _parse_id_triple, skip_bad=skip_bad, stats=stats):
    yield row


def _parse_id_triple(line: str) -> tuple[str, str, str]:
  parts = line.split("\t")
  if len(parts) != 3 or not all(p.isdigit() for p in parts):
    raise ValueError("expected 3 tab-separated integer ids (qid, positive pid, negative pid)")
  return tuple(parts)


def join_qrels(queries: Iterable[Question], qrels: Qrels) -> list[Question]:
  """The judged queries, in their order, with positive_ids = pids of relevance > 0 (in qrels
  order); queries with no positive judgment are left out. A judged qid missing from the
  queries means mismatched files, so it is an error."""
  queries = list(queries)
  known = {q.id for q in queries}
  missing = [qid for qid in qrels if qid not in known]
  if missing:
    raise ValueError(f"{len(missing)} judged query id(s) are not among the {len(known)} "
                     f"queries, e.g. {missing[:5]}: are the queries and qrels from one split?")
  out = []
  for q in queries:
    positives = tuple(pid for pid, rel in qrels.get(q.id, {}).items() if rel > 0)
    if positives:
      out.append(Question(q.id, q.text, positives, q.answers))
  return out


def load_questions(queries_path: str | os.PathLike, qrels_path: str | os.PathLike,
                   skip_bad: bool = False) -> list[Question]:
  """read_queries + read_qrels + join_qrels, with errors naming the two files."""
  queries, qrels = read_queries(queries_path, skip_bad), read_qrels(qrels_path, skip_bad)
  try:
    return join_qrels(queries, qrels)
  except ValueError as e:
    raise ValueError(f"{qrels_path} vs {queries_path}: {e}") from e
