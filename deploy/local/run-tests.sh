#!/usr/bin/env bash
# The whole suite: unit, integration and end-to-end, against the real Kafka and PostgreSQL
# that `make test` has started. Fails when a test fails and when no test ran (pytest exit 5).
set -uo pipefail
cd "$(dirname "$0")/../.."
mkdir -p artifacts
started=$(date +%s)

echo "[test] lint (ruff)"
.venv/bin/ruff check . || exit 1

echo "[test] pytest: unit, integration, e2e"
.venv/bin/python -m pytest tests/unit tests/integration tests/e2e \
  --junitxml=artifacts/junit.xml -p no:cacheprovider "$@"
status=$?
elapsed=$(( $(date +%s) - started ))

if [ "$status" -eq 5 ]; then
  echo "[test] FAILED: pytest collected no tests" >&2
  exit 1
fi
if grep -q 'skipped="[1-9]' artifacts/junit.xml 2>/dev/null; then
  echo "[test] FAILED: tests were skipped; every test must run" >&2
  exit 1
fi
echo "[test] finished in ${elapsed}s with status ${status}"
exit "$status"
