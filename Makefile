# Two commands for a fresh machine: `make run` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEVSTAMP := $(VENV)/.installed-dev
BENCHSTAMP := $(VENV)/.installed-bench

.PHONY: run test test-prereqs lint typecheck bench clean

# A fresh venv carries the pip and setuptools bundled with $(PY), which may predate their security fixes.
$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip setuptools

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(DEVSTAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@ $(STAMP)

$(BENCHSTAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[bench]'
	touch $@ $(STAMP)

# Extra flags for the gateway: make run SERVE_ARGS='--port 4000'
SERVE_ARGS ?=

run: $(STAMP)
	$(BIN)/ccrouter serve $(SERVE_ARGS)

# Python, promtool, Redis and PostgreSQL, checked with the system Python before anything is installed.
test-prereqs:
	@$(PY) scripts/check-test-prereqs.py

test: test-prereqs
	@$(MAKE) --no-print-directory $(DEVSTAMP)
	$(BIN)/ruff check src tests
	$(BIN)/mypy
	$(BIN)/python -m pytest -q -n auto --maxprocesses 4 --cov --cov-report=

lint: $(DEVSTAMP)
	$(BIN)/ruff check src tests
	$(BIN)/ruff format --check src tests

typecheck: $(DEVSTAMP)
	$(BIN)/mypy

clean:
	rm -rf $(VENV) build dist .pytest_cache .mypy_cache .ruff_cache .coverage

.PHONY: bench-routing
bench-routing: $(BENCHSTAMP)
	$(BIN)/python bench/routing/run.py

# ---- benchmarks (bench/README.md); not part of `make test`. Extra flags: make bench BENCH_ARGS=--quick
BENCH_ARGS ?=

.PHONY: bench-peers

bench: $(BENCHSTAMP)
	$(BIN)/python bench/run.py $(BENCH_ARGS)

# 200 concurrent streams while the config file is rewritten 10 times: drops and latency spikes.
.PHONY: bench-reload
bench-reload: $(BENCHSTAMP)
	$(BIN)/python bench/reload.py $(BENCH_ARGS)

# 100, 500 and 1,000 concurrent long-lived streams through ccrouter beside the floor (bench/concurrency.py).
.PHONY: bench-concurrency
bench-concurrency: $(BENCHSTAMP)
	$(BIN)/python bench/concurrency.py $(BENCH_ARGS)

# Installs litellm[proxy] (PyPI) and claude-code-router (npm) into bench/.peers, then runs with them.
bench-peers: $(BENCHSTAMP)
	PY=$(PY) bench/peers/install.sh
	$(BIN)/python bench/run.py --peers $(BENCH_ARGS)

# Wall time of `ccrouter statusline` (API and ledger fallback) against `python -c pass` (bench/statusline.py).
.PHONY: bench-statusline
bench-statusline: $(BENCHSTAMP)
	$(BIN)/python bench/statusline.py $(BENCH_ARGS)
