"""configs/nq.py and configs/msmarco.py say RocketQA's own settings: checked against the table
in docs/rocketqa.md (the recipe's numbers, with their sources)."""

import json
import re
import runpy

import pytest

from conftest import REPO
from rocketqa_jax import config_lib


def _settings() -> list[tuple[str, object, object, str]]:
  """(field, NQ value, MS MARCO value, source) per row of docs/rocketqa.md's settings table."""
  text = (REPO / "docs" / "rocketqa.md").read_text()
  table = text.split("<!-- paper-settings -->")[1].split("<!-- /paper-settings -->")[0]
  rows = []
  for line in table.strip().splitlines()[2:]:
    field, nq, msmarco, _, source = [c.strip() for c in line.strip("|").split("|")]
    rows.append((field.strip("`"), json.loads(nq.strip("`")), json.loads(msmarco.strip("`")),
                 source))
  return rows


def test_the_table_is_read_whole():
  rows = _settings()
  assert len(rows) == 28 and {source for *_, source in rows} == {"paper", "scripts"}
  assert ("denoise.negative_threshold", 0.1, 0.1, "paper") in rows


@pytest.mark.parametrize("name,column", [("nq", 1), ("msmarco", 2)])
def test_paper_config_has_rocketqas_settings(name, column):
  config = runpy.run_path(str(REPO / f"configs/{name}.py"))["get_config"]("root=/data/x")
  config_lib.validate(config)
  for row in _settings():
    section, field = row[0].split(".")
    value = config[section][field]
    assert value == row[column] and type(value) is type(row[column]), (row[0], value)
  # Nothing left over from the SQuAD-mini demo's tuning.
  assert config.ce.head_learning_rate == 0.0 and config.train.init == "checkpoint"
  assert config.train.de2_init == "" and config.train.de2_epochs == 0.0
  assert not re.search(r"shared/docs", (REPO / f"configs/{name}.py").read_text())
