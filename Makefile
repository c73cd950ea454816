# `make test` is the one test command (CI runs it through .ci/run).
# It creates .venv when missing, installs the package with its test
# dependencies, then runs ruff, mypy and the pytest suite twice: once with
# TensorFlow, once in processes where TensorFlow cannot be imported.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.ttsmon-installed

.PHONY: test lint typecheck pytest pytest-no-tf bench clean

# PyTorch's CPU build, for the tests of the PyTorch path, only where its wheel
# lies on this machine's disk: from an index, `pip install torch` would fetch a
# multi-GB CUDA build. Without it those tests skip.
TORCH_WHEELS := $(wildcard /opt/wheels/torch-*+cpu-cp3*-manylinux*_x86_64.whl)

$(STAMP): setup.py pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	for whl in $(TORCH_WHEELS); do \
	  $(PY) -m pip install -q "$$whl" 2>/dev/null && break; \
	done; $(PY) -c 'import torch' 2>/dev/null || echo "PyTorch not installed: its tests skip"
	touch $@

test: lint typecheck pytest pytest-no-tf

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: $(STAMP)
	$(VENV)/bin/mypy

pytest: $(STAMP)
	$(VENV)/bin/pytest -q

pytest-no-tf: $(STAMP)
	TTSMON_TEST_NO_TF=1 $(VENV)/bin/pytest -q

# Figures for the closing notes; not part of `make test` (they time things).
bench: $(STAMP)
	$(PY) bench/write_cost.py
	$(PY) bench/sampler_cost.py
	$(PY) bench/step_overhead.py

clean:
	rm -rf $(VENV) build *.egg-info .mypy_cache .ruff_cache .pytest_cache
