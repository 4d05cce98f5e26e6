# One task runner. `make help` lists the targets.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
# pytest-xdist workers for make test: the suite waits on processes, JVMs and disks about half the time
TEST_WORKERS ?= 2
STAMP  := $(VENV)/.installed-stamp
EVENTS ?= 1000000
BENCH_ARGS ?=
INVOCATIONS ?= 3
VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml)
IMAGE  ?= costlake:$(VERSION)
TARGET ?= service

.DEFAULT_GOAL := help
.PHONY: help demo test test-fast test-image image lint bench bench-anomalies bench-rag bench-api bench-history clean java chromium wrk buildah

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[dev,spark,aws,llm,server]'
	@touch $(STAMP)

java: ## make sure a Java 17+ runtime is there for Spark (installs Debian's as root)
	@if command -v java >/dev/null 2>&1; then java -version 2>&1 | head -1; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  echo "installing openjdk-17-jre-headless for the Spark tests"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openjdk-17-jre-headless; \
	else echo "error: the Spark tests need Java 17+: install openjdk-17-jre-headless (or run as root)"; exit 1; fi

chromium: ## make sure Debian's Chromium is there for the browser test (installs it as root)
	@if command -v chromium >/dev/null 2>&1; then chromium --version 2>/dev/null | head -1; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  echo "installing chromium for the browser test"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; \
	else echo "error: the browser test needs Chromium: install Debian's chromium package (or run as root)"; exit 1; fi

buildah: ## make sure buildah and debootstrap are there for the image test (installs Debian's as root)
	@if command -v buildah >/dev/null 2>&1 && command -v debootstrap >/dev/null 2>&1; then buildah --version; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  echo "installing buildah and debootstrap for the image test"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq buildah debootstrap; \
	else echo "error: the image test needs buildah and debootstrap as root: apt-get install buildah debootstrap"; exit 1; fi

image: ## build the container image $(IMAGE) with docker, podman or buildah (TARGET=jobs adds Java and PySpark)
	deploy/build-image.sh $(IMAGE) $(TARGET)

demo: $(STAMP) ## set up, generate 3 months for 3 tenants, run the pipeline, show costs, anomalies and an explanation
	$(VENV)/bin/costlake --warehouse demo-warehouse demo --data demo-data

# The image test (minutes of network and unpacking, little CPU) runs beside the others; its output follows theirs.
test: $(STAMP) java chromium buildah lint ## set up, lint, and run every test (what CI runs)
	@mkdir -p test-artifacts; \
	$(PY) -m pytest -m image -s -p no:cacheprovider tests/deploy >test-artifacts/image.log 2>&1 & image=$$!; \
	$(PY) -m pytest -m "not image" -n $(TEST_WORKERS) --durations=20; rest=$$?; \
	wait $$image; built=$$?; \
	echo "---- the image test, run beside the others (test-artifacts/image.log) ----"; \
	cat test-artifacts/image.log; \
	echo "the other tests: exit $$rest; the image test: exit $$built"; \
	[ $$rest -eq 0 ] && [ $$built -eq 0 ]

test-image: $(STAMP) buildah ## build the image with buildah on a base made from Debian's packages, start it, call it, remove it
	$(PY) -m pytest -m image -s tests/deploy

test-fast: $(STAMP) ## the tests not marked slow or spark (seconds, not minutes)
	$(PY) -m pytest -m "not slow and not spark"

lint: $(STAMP) ## ruff, mypy and the layer contract (import-linter, contracts in pyproject.toml)
	$(VENV)/bin/ruff check src tests bench jobs
	$(VENV)/bin/mypy src
	$(VENV)/bin/lint-imports

bench: $(STAMP) java ## pipeline benchmark beside the bare-DuckDB floor and the PySpark peer, medians of INVOCATIONS=3 (EVENTS=1000000; BENCH_ARGS=--skip-spark, INVOCATIONS=1 for quick runs)
	$(PY) bench/invocations.py $(INVOCATIONS) --events $(EVENTS) $(BENCH_ARGS)

bench-anomalies: $(STAMP) ## precision / recall / F1 of the anomaly methods on generated datasets with injected anomalies
	$(PY) bench/anomaly_eval.py

bench-rag: $(STAMP) ## recall@5 / MRR of the rankers on generated questions; then answers per intent on a built lake
	$(PY) bench/retrieval_eval.py
	$(PY) bench/intent_eval.py

bench-history: $(STAMP) ## 365 daily deliveries: idle run, query, ingest and metadata size before and after `maintain`
	$(PY) bench/history_bench.py

bench-api: $(STAMP) wrk ## 30 s of POST /explain on `costlake serve` (8 connections, wrk) beside a bare FastAPI floor
	$(PY) bench/api_load.py

wrk: ## make sure wrk is there for bench-api (installs Debian's as root)
	@if command -v wrk >/dev/null 2>&1; then echo "wrk: $$(command -v wrk)"; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  echo "installing wrk for bench-api"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk; \
	else echo "error: bench-api needs wrk: install Debian's wrk package (or run as root)"; exit 1; fi

clean: ## remove the venv, demo output and caches
	rm -rf $(VENV) demo-warehouse demo-data bench/out .pytest_cache .mypy_cache .ruff_cache .hypothesis
