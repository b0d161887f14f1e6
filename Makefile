# The two commands a newcomer needs: `make run` and `make test`. Everything else supports them.
SHELL := /bin/bash
.DEFAULT_GOAL := help
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell sha1sum pyproject.toml | cut -c1-12)

.PHONY: help install infra run test test-unit test-integration test-e2e lint stop demo demo-counters bench asyncapi clean

help:
	@echo "make run    install what is missing, start Kafka, PostgreSQL and the four services"
	@echo "make test   install what is missing, start what the tests need, run the whole suite"
	@echo "make demo   a simulated month of traffic across many units; prints indicators and board"
	@echo "make demo-counters   with make run up: counters post a batch, units act on it"
	@echo "make bench  measure what tracing costs intake throughput (tracing on vs off)"
	@echo "make stop   stop everything the project started"

install: $(STAMP)

$(STAMP): pyproject.toml
	@echo "[install] python environment in $(VENV)"
	@test -x $(PY) || python3 -m venv $(VENV)
	@$(PY) -m pip install --quiet --upgrade pip
	@$(PY) -m pip install --quiet -e '.[dev]'
	@rm -f $(VENV)/.installed-* && touch $@

infra: install
	@deploy/local/postgres.sh start
	@deploy/local/kafka.sh start
	@deploy/local/zipkin.sh start

run: infra
	@$(PY) -m deploy.local.supervisor

demo: infra
	@$(PY) -m deploy.local.demo_month

demo-counters: install
	@$(PY) -m deploy.local.demo_counters

bench: infra
	@$(PY) -m deploy.local.bench_tracing

test: install
	@deploy/local/run-tests.sh

test-unit: install
	@$(PY) -m pytest tests/unit

test-integration: infra
	@$(PY) -m pytest tests/integration

test-e2e: infra
	@$(PY) -m pytest tests/e2e

lint: install
	@$(VENV)/bin/ruff check .
	@$(VENV)/bin/ruff format --check .
	@$(VENV)/bin/mypy

asyncapi: install
	@$(PY) -m shared.asyncapi > docs/asyncapi.json
	@echo "wrote docs/asyncapi.json"

stop:
	@deploy/local/stop-all.sh
