# `make test` is the one test command (CI runs it through .ci/run).
# It installs what the tests need (Debian's Chromium and an Ethiopic font when
# run as root, .venv with the package and its test dependencies, the
# frontend's npm packages), rebuilds the tab's bundle and fails if it differs
# from the committed one, then runs ruff, mypy and the pytest suite twice:
# once with TensorFlow, once in processes where TensorFlow cannot be imported.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.ttsmon-installed

.PHONY: test demo system-deps frontend bundle lint typecheck pytest pytest-no-tf bench clean

# Headless Chromium for the browser tests (Playwright drives it; browser
# downloads are impossible here) and a font with Ge'ez glyphs for Amharic.
APT_PACKAGES := chromium fonts-sil-abyssinica fontconfig prometheus

# PyTorch's CPU build, for the tests of the PyTorch path, only where its wheel
# lies on this machine's disk: from an index, `pip install torch` would fetch a
# multi-GB CUDA build. Without it those tests skip, except under CI (CI=true),
# where a missing component fails the run instead.
TORCH_WHEELS := $(wildcard /opt/wheels/torch-*+cpu-cp3*-manylinux*_x86_64.whl)

$(STAMP): setup.py pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	for whl in $(TORCH_WHEELS); do \
	  $(PY) -m pip install -q "$$whl" && break; \
	done; $(PY) -c 'import torch' 2>/dev/null || { \
	  if [ "$$CI" = true ]; then echo "PyTorch's CPU wheel is missing from /opt/wheels (CI needs it)"; exit 1; fi; \
	  echo "PyTorch not installed: its tests skip"; }
	touch $@

test: system-deps frontend lint typecheck pytest pytest-no-tf

# Trains the small Amharic TTS demo into demo/logs and serves TensorBoard on
# http://127.0.0.1:6006/#ttsmon while it trains (Ctrl-C stops TensorBoard).
demo: $(STAMP)
	PY=$(PY) bash demo/run_demo.sh

system-deps:
	@missing=""; for p in $(APT_PACKAGES); do \
	  dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ]; then \
	  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
	    --no-install-recommends $$missing; \
	elif [ "$$CI" = true ]; then echo "CI: not root, cannot install$$missing"; exit 1; \
	else echo "not root: install$$missing yourself, or the browser tests skip"; fi

# The committed bundle must be what the sources build (pip installs need no
# Node.js): `npm run check` type-checks, rebuilds in memory and fails if the
# files in tb_plugin_ttsmon/static differ. `make bundle` rewrites them.
frontend:
	cd frontend && npm ci --no-audit --no-fund --loglevel=error && npm run check

bundle:
	cd frontend && npm ci --no-audit --no-fund --loglevel=error && npm run build

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
	$(PY) bench/plugin_read.py --quick
	$(PY) bench/analytics.py --quick
	$(PY) bench/node_sampling.py --quick
	$(PY) bench/serving_cost.py --quick
	$(PY) bench/logparse_rate.py --quick
	$(PY) bench/object_store.py --quick

clean:
	rm -rf $(VENV) build *.egg-info .mypy_cache .ruff_cache .pytest_cache
