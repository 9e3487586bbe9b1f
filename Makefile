# Two commands do all the set-up on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PORT   ?= 8501
STAMP  := $(VENV)/.installed
DEVSTAMP := $(VENV)/.installed-dev

.PHONY: run app demo test test-fast bench bench-load install install-dev browser clean-store

run: demo app ## install, import + build the embedded demo, open the app

app: $(STAMP)
	$(VENV)/bin/streamlit run app.py --server.port $(PORT) --server.fileWatcherType none

demo: $(STAMP)
	$(VENV)/bin/pinterest-mm demo

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# torch and torchvision first, as a matching pair (timm needs torchvision).
	$(PY) -m pip install --quiet torch torchvision
	$(PY) -m pip install --quiet -e .
	touch $(STAMP)

install-dev: $(DEVSTAMP)

$(DEVSTAMP): $(STAMP)
	$(PY) -m pip install --quiet -e '.[dev,openvino,ray]'
	touch $(DEVSTAMP)

test: $(DEVSTAMP) ## install the development extras and run the test suite
	$(PY) -m pytest -q

test-fast: $(DEVSTAMP)
	$(PY) -m pytest -q -m "not slow and not browser"

bench: $(STAMP) ## speed benchmarks: feature extraction, fusion + metrics, a slider move
	$(PY) benchmarks/bench_features.py
	$(VENV)/bin/pinterest-mm bench extract
	$(VENV)/bin/pinterest-mm bench
	$(PY) -m pinterest_mm.ui.bench

bench-load: $(DEVSTAMP) ## ten and twenty sessions on one server: p95 slider update vs one user (target 2x)
	PMM_LOAD_P95_FACTOR=2 $(PY) -m pytest tests/reliability/test_load.py -k concurrent -s -q -p no:cacheprovider

browser: ## Debian's Chromium + driver for the real-browser tests
	command -v chromium >/dev/null || (apt-get update -qq && apt-get install -y -qq chromium chromium-driver)

clean-store:
	rm -rf artifacts/store.duckdb* artifacts/features artifacts/checkpoints
