# Two commands for a newcomer: `make run` and `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
PY := $(VENV)/bin/python
HOST ?= 127.0.0.1
PORT ?= 8501
# Test workers: one per core (pytest-xdist). `make test JOBS=0` runs in one process. One BLAS thread per
# worker: with a worker per core, BLAS threads only fight each other (a small solve took 1 s instead of ms).
JOBS ?= auto

.PHONY: run test test-quick test-backends bench bench-differencing lint install install-dev sample

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(VENV)/.installed: requirements.txt | $(PY)
	$(PY) -m pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.installed-dev: requirements-dev.txt $(VENV)/.installed
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

# One BLAS thread: the server's models are small matrices, and several sessions (and DuckDB) share the cores.
run: $(VENV)/.installed
	OPENBLAS_NUM_THREADS=1 $(PY) -m streamlit run app.py --server.address $(HOST) --server.port $(PORT)

test: $(VENV)/.installed-dev
	OPENBLAS_NUM_THREADS=1 $(PY) -m pytest -n $(JOBS) $(PYTEST_ARGS)

# The quick loop while coding: everything but the browser journeys and the slow statistical checks.
test-quick: $(VENV)/.installed-dev
	OPENBLAS_NUM_THREADS=1 $(PY) -m pytest -n $(JOBS) -m "not browser and not slow" $(PYTEST_ARGS)

# The query-layer tests on DuckDB, a throwaway PostgreSQL on loopback, and Spark in local mode.
test-backends: $(VENV)/.installed-dev
	PY=$(PY) bash bench/backends.sh $(BACKENDS)

# Everything bench/run.py measures; one page, one size: $(PY) -m bench.run --pages-only --sizes 1000000 --page risk
bench: $(VENV)/.installed-dev
	OPENBLAS_NUM_THREADS=1 $(PY) -m bench.run

# The differencing attacks on what a viewer sees, on the sample and 1,000,000 synthetic reports (bench's cache).
bench-differencing: $(VENV)/.installed-dev
	$(PY) -m bench.differencing

# Style and the layers: ruff, then the import contracts in pyproject.toml (import-linter).
lint: $(VENV)/.installed-dev
	$(PY) -m ruff check .
	$(VENV)/bin/lint-imports --no-cache

# Rebuild the bundled synthetic sample (deterministic).
sample: $(VENV)/.installed
	$(PY) -m lib.synth --reports 50000 --seed 20240401 --out data/sample
