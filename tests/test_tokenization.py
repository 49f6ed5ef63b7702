import numpy as np
import pytest

from rocketqa_jax.tokenization import Tokenizer, bucket_length


def test_bucket_length():
  assert [bucket_length(n, 32, 128) for n in (1, 32, 33, 100, 128)] == [32, 32, 64, 128, 128]
  assert bucket_length(250, 32, 250) == 250  # Capped at a max that is not a multiple.


@pytest.fixture(scope="module")
def tok(minilm):
  return Tokenizer(minilm.tokenizer.hf, query_max_length=8, passage_max_length=40,
                   bucket_size=16)


def test_queries_truncate_and_pad_to_buckets(tok):
  seqs = tok.tokenize_queries(["a b c d e f g h i j k l", "who?"])
  assert [len(ids) for ids, _ in seqs] == [8, 4]  # [CLS] ... [SEP], truncated at 8.
  assert seqs[0][0][-1] == tok.hf.sep_token_id
  batch = tok.pad(seqs, tok.query_max_length, rows=4)
  assert batch.input_ids.shape == (4, 8)  # Bucket 16 capped at the max length 8.
  np.testing.assert_array_equal(batch.attention_mask.sum(1), [8, 4, 0, 0])
  assert (batch.input_ids[2:] == tok.pad_id).all()


def test_passages_as_title_text_pairs(tok):
  text = "The Normans were the people who gave their name to Normandy, a region in France."
  (ids, types), = tok.tokenize_passages([text], titles=["France"])
  words = tok.hf.convert_ids_to_tokens(ids.tolist())
  first_sep = words.index("[SEP]")
  assert words[:first_sep] == ["[CLS]", "france"]
  assert (types[:first_sep + 1] == 0).all() and (types[first_sep + 1:] == 1).all()
  batch = tok.pad([(ids, types)], tok.passage_max_length)
  assert batch.input_ids.shape == (1, 32)
  (long_ids, _), = tok.tokenize_passages([text * 5], titles=["France"])
  assert len(long_ids) == 40  # The text is truncated, the title kept.
  assert tok.hf.convert_ids_to_tokens(long_ids[:2].tolist()) == ["[CLS]", "france"]
  with pytest.raises(ValueError, match="2 titles for 1 passages"):
    tok.tokenize_passages([text], titles=["a", "b"])


def test_pad_rejects_overflow(tok):
  with pytest.raises(ValueError, match="do not fit"):
    tok.pad(tok.tokenize_queries(["a", "b", "c"]), 8, rows=2)
