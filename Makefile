# One task runner. `make help` lists the targets.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp
EVENTS ?= 1000000

.DEFAULT_GOAL := help
.PHONY: help demo test test-fast lint bench clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	@touch $(STAMP)

demo: $(STAMP) ## set up, generate 3 months for 3 tenants, ingest, run, show the result
	$(VENV)/bin/costlake --warehouse demo-warehouse demo --data demo-data

test: $(STAMP) ## set up and run every test (what CI runs)
	$(PY) -m pytest

test-fast: $(STAMP) ## the tests not marked slow
	$(PY) -m pytest -m "not slow"

lint: $(STAMP) ## ruff + mypy
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/mypy src

bench: $(STAMP) ## pipeline benchmark beside the bare-DuckDB baseline (EVENTS=1000000)
	$(PY) bench/pipeline_bench.py --events $(EVENTS)

clean: ## remove the venv, demo output and caches
	rm -rf $(VENV) demo-warehouse demo-data bench/out .pytest_cache .mypy_cache .ruff_cache
