# The two commands a newcomer needs: `make run` and `make test`. Everything else supports them.
SHELL := /bin/bash
.DEFAULT_GOAL := help
VENV := .venv
PY := $(VENV)/bin/python
# uv lives in its own venv, so that syncing .venv to the lock never removes it.
UV_HOME := .cache/uv
UV := UV_PYTHON_DOWNLOADS=never $(UV_HOME)/bin/uv
# The multi-node mode: `make run SCALE=3 BROKERS=3` runs 3 instances of each service on a
# three-broker Kafka cluster (deploy/local/kafka-cluster.sh); the defaults keep one of each.
SCALE ?= 1
BROKERS ?= 1
CLUSTER := $(shell [ "$(BROKERS)" -gt 1 ] 2>/dev/null && echo 1)
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml uv.lock | sha1sum | cut -c1-12)

.PHONY: help install lock infra run test test-unit test-integration test-e2e lint stop demo demo-counters bench asyncapi realm clean

help:
	@echo "make run    install what is missing, start Kafka, PostgreSQL, Zipkin, Keycloak and the four services"
	@echo "            make run SCALE=3 BROKERS=3: 3 instances of each on a three-broker Kafka cluster"
	@echo "make test   install what is missing, start what the tests need, run the whole suite"
	@echo "make demo   a simulated month of traffic across many units; prints indicators and board"
	@echo "make demo-counters   with make run up: counters post a batch, units act on it"
	@echo "make bench  what tracing costs intake throughput; consumer lag of the whole pipeline under load"
	@echo "make stop   stop everything the project started"

install: $(STAMP)

$(UV_HOME)/bin/uv: deploy/uv-requirements.txt
	@echo "[install] uv (pinned with hashes) in $(UV_HOME)"
	@test -x $(UV_HOME)/bin/python || python3 -m venv $(UV_HOME)
	@$(UV_HOME)/bin/python -m pip install --quiet --require-hashes -r deploy/uv-requirements.txt
	@touch $@

$(STAMP): pyproject.toml uv.lock $(UV_HOME)/bin/uv
	@$(UV) lock --check --quiet 2>$(UV_HOME)/lock-check.log || { \
	  cat $(UV_HOME)/lock-check.log >&2; \
	  echo "[install] FAILED: uv.lock is out of date with pyproject.toml; run 'make lock' and commit both" >&2; \
	  exit 1; }
	@echo "[install] python environment in $(VENV), exactly as uv.lock says"
	@$(UV) sync --locked --extra dev --python python3 --quiet
	@rm -f $(VENV)/.installed-* && touch $@

# After changing a dependency in pyproject.toml: re-resolve, then commit uv.lock.
lock: $(UV_HOME)/bin/uv
	@$(UV) lock --python python3
	@echo "wrote uv.lock; commit it with pyproject.toml"

infra: install
	@$(PY) -m deploy.local.signing >/dev/null
	@deploy/local/postgres.sh start
ifeq ($(CLUSTER),1)
	@KAFKA_CLUSTER_NODES=$(BROKERS) deploy/local/kafka-cluster.sh start
else
	@deploy/local/kafka.sh start
endif
	@deploy/local/zipkin.sh start
	@deploy/local/keycloak.sh start

run: infra
	@ONESTOP_SCALE=$(SCALE) ONESTOP_KAFKA_CLUSTER=$(CLUSTER) $(if $(CLUSTER),KAFKA_CLUSTER_NODES=$(BROKERS)) \
	  $(PY) -m deploy.local.supervisor

demo: infra
	@$(PY) -m deploy.local.demo_month

demo-counters: install
	@$(PY) -m deploy.local.demo_counters

bench: infra
	@$(PY) -m deploy.local.bench_tracing
	@$(PY) -m deploy.local.bench_pipeline

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
	@$(PY) -m deploy.tools.asyncapi > docs/asyncapi.json.new && mv docs/asyncapi.json.new docs/asyncapi.json
	@echo "wrote docs/asyncapi.json"

# After changing the catalog's units: regenerate the Keycloak realm, then commit it
# (the next deploy/local/keycloak.sh start imports it anew).
realm: install
	@$(PY) -m deploy.tools.realm
	@echo "wrote deploy/keycloak/onestop-realm.json"

stop:
	@deploy/local/stop-all.sh
