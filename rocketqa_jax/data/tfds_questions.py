"""Open-domain QA questions from TensorFlow Datasets (natural_questions_open, trivia_qa), for
users who already keep them prepared there; nothing is downloaded here.

Only questions and answers are taken: their positives come from matching answers in a corpus.
"""

from __future__ import annotations

from typing import Any, Mapping

from rocketqa_jax.data.types import Question

SUPPORTED = ("natural_questions_open", "trivia_qa")


def _base(name: str) -> str:
  base = name.split("/")[0].split(":")[0]
  if base not in SUPPORTED:
    raise ValueError(f"unsupported TFDS data set {name!r}; expected one of {SUPPORTED} "
                     "(trivia_qa as trivia_qa/rc.nocontext or trivia_qa/unfiltered.nocontext)")
  return base


def _text(value: Any) -> str:
  return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def question_from_example(name: str, example: Mapping[str, Any], index: int) -> Question:
  """One TFDS example (numpy/bytes values, as tfds.as_numpy gives them) as a Question.

  natural_questions_open: id = the example's index in the split (it has no id), answers =
  `answer`. trivia_qa: id = `question_id`, answers = answer `value` then its `aliases`
  (`normalized_aliases` only when both are empty); the test split's answers are withheld, so
  its questions come with none."""
  if _base(name) == "natural_questions_open":
    qid, answers = str(index), [_text(a) for a in example["answer"]]
  else:
    answer = example["answer"]
    qid = _text(example["question_id"])
    answers = [_text(answer["value"]), *map(_text, answer["aliases"])]
    if not any(answers):
      answers = list(map(_text, answer["normalized_aliases"]))
  answers = tuple(dict.fromkeys(a for a in answers if a))
  return Question(qid, _text(example["question"]).strip(), answers=answers)


def load_tfds_questions(name: str, split: str, data_dir: str | None = None) -> list[Question]:
  """The `split` of an already prepared TFDS data set as Questions (download=False)."""
  _base(name)
  try:
    import tensorflow_datasets as tfds
  except ImportError as e:
    raise ImportError("load_tfds_questions needs tensorflow-datasets "
                      "(pip install tensorflow-datasets)") from e
  builder = tfds.builder(name, data_dir=data_dir)
  if not builder.is_prepared():
    raise FileNotFoundError(
        f"TFDS data set {name!r} is not prepared in {builder.data_dir}. Prepare it once on a "
        f"machine online: `tfds build {name}{f' --data_dir={data_dir}' if data_dir else ''}` "
        f"or tfds.load({name!r}, data_dir=..., download=True), then pass that data_dir.")
  if builder.info.file_format == tfds.core.FileFormat.ARRAY_RECORD:
    examples = builder.as_data_source(split)  # Random-access records; no TensorFlow needed.
  else:
    try:
      import tensorflow  # noqa: F401  (tfds reads TFRecord files through tf.data)
    except ImportError as e:
      raise ImportError(
          f"{name!r} is stored as {builder.info.file_format.value} files, which "
          "tensorflow_datasets reads only through TensorFlow, and TensorFlow is not installed: "
          "pip install tensorflow (or prepare the data set with `tfds build "
          "--file_format=array_record`, which needs no TensorFlow to read)") from e
    examples = tfds.as_numpy(builder.as_dataset(split=split))
  return [question_from_example(name, ex, i) for i, ex in enumerate(examples)]
