# The two commands a newcomer needs: `make run` and `make test`. Everything else supports them.
SHELL := /bin/bash
.DEFAULT_GOAL := help
VENV := .venv
PY := $(VENV)/bin/python
# uv lives in its own venv, so that syncing .venv to the lock never removes it.
UV_HOME := .cache/uv
UV := UV_PYTHON_DOWNLOADS=never $(UV_HOME)/bin/uv
AXE_HOME := .cache/axe
AXE := $(AXE_HOME)/node_modules/axe-core/axe.min.js
# The multi-node mode: `make run SCALE=3 BROKERS=3` runs 3 instances of each service on a
# three-broker Kafka cluster (deploy/local/kafka-cluster.sh); the defaults keep one of each.
SCALE ?= 1
BROKERS ?= 1
CLUSTER := $(shell [ "$(BROKERS)" -gt 1 ] 2>/dev/null && echo 1)
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml uv.lock | sha1sum | cut -c1-12)
# deploy/k8s is rendered by this kustomize (built by the Go toolchain from the Go module proxy)
# and checked against the operators' CRDs (deploy/tools/crds.py): both for tests/unit/test_k8s.py.
KUSTOMIZE_VERSION := v5.7.1
GO := $(or $(shell command -v go),/usr/local/go/bin/go)
KUSTOMIZE := .cache/bin/kustomize-$(KUSTOMIZE_VERSION)
CRDS := .cache/k8s/crds/.fetched

.PHONY: help install k8s lock infra run test test-unit test-integration test-e2e lint stop demo demo-counters bench asyncapi realm clean

help:
	@echo "make run    install what is missing, start Kafka, PostgreSQL, Zipkin, Keycloak and the four services"
	@echo "            make run SCALE=3 BROKERS=3: 3 instances of each on a three-broker Kafka cluster"
	@echo "make test   install what is missing, start what the tests need, run the whole suite"
	@echo "make demo   a simulated month of traffic across many units; prints indicators and board"
	@echo "make demo-counters   with make run up: counters post a batch, units act on it"
	@echo "make bench  throughput and latency against bare baselines: artifacts/bench/report.md (BENCH_QUICK=1: small)"
	@echo "make stop   stop everything the project started"

install: $(STAMP) $(AXE) $(KUSTOMIZE) $(CRDS)

# axe-core, the accessibility engine the pages' browser test runs: Deque's own npm package,
# pinned with its integrity hash in deploy/tools/axe/package-lock.json (npm ci checks it), rather
# than a Python wrapper that bundles an older copy. Installed outside the source tree.
$(AXE): deploy/tools/axe/package.json deploy/tools/axe/package-lock.json
	@echo "[install] axe-core (pinned, deploy/tools/axe/package-lock.json) in $(AXE_HOME)"
	@mkdir -p $(AXE_HOME) && cp deploy/tools/axe/package.json deploy/tools/axe/package-lock.json $(AXE_HOME)/
	@cd $(AXE_HOME) && npm ci --ignore-scripts --no-audit --no-fund --silent
	@touch $@

$(KUSTOMIZE):
	@test -x "$(GO)" || { echo "[install] FAILED: kustomize is built with Go (https://go.dev/dl/), found neither on PATH nor in /usr/local/go" >&2; exit 1; }
	@echo "[install] kustomize $(KUSTOMIZE_VERSION) in .cache/bin"
	@mkdir -p .cache/bin
	@GOBIN=$(CURDIR)/.cache/gobin GOFLAGS=-modcacherw $(GO) install sigs.k8s.io/kustomize/kustomize/v5@$(KUSTOMIZE_VERSION)
	@mv .cache/gobin/kustomize $@

$(CRDS): deploy/tools/crds.py $(STAMP)
	@rm -rf $(@D)
	@$(PY) -m deploy.tools.crds
	@touch $@

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
	@$(PY) -m deploy.bench

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

# After changing what the services need (topics, principals, settings): regenerate the
# Kubernetes base, then commit it.
k8s: install
	@$(PY) -m deploy.tools.k8s

stop:
	@deploy/local/stop-all.sh
