#!/usr/bin/env bash
# The whole suite: unit, integration and end-to-end, against the real Kafka, PostgreSQL and
# Keycloak, started here if needed. Fails when a test fails, when a test is skipped and when no test ran.
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
mkdir -p artifacts
started=$(date +%s)

# The same checks as `make lint` and the pre-commit hooks, before any server starts.
echo "[test] ruff check"
.venv/bin/ruff check . || { echo "[test] FAILED: ruff check found problems (ruff check --fix . fixes many)" >&2; exit 1; }
echo "[test] ruff format --check"
.venv/bin/ruff format --check . || { echo "[test] FAILED: files need formatting (run: .venv/bin/ruff format .)" >&2; exit 1; }
echo "[test] mypy"
.venv/bin/mypy || { echo "[test] FAILED: mypy found type errors" >&2; exit 1; }

# Start PostgreSQL, Kafka, Zipkin and Keycloak if they are not running, and stop on exit only what
# this run started.
started_here=()
# start is a no-op for a server already running (and brings a running Keycloak's realm up to date).
for server in postgres kafka zipkin keycloak; do
  running_before=true
  "deploy/local/$server.sh" status >/dev/null 2>&1 || running_before=false
  "deploy/local/$server.sh" start || { echo "[test] FAILED: $server could not start" >&2; exit 1; }
  $running_before || started_here+=("$server")
done
stop_started() {
  for server in "${started_here[@]}"; do "deploy/local/$server.sh" stop >/dev/null || true; done
}
trap stop_started EXIT

# The browser test drives Debian's Chromium, headless.
if ! command -v chromium >/dev/null; then
  echo "[test] installing Debian's chromium for the browser test"
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } \
    || { echo "[test] FAILED: could not install chromium" >&2; exit 1; }
fi

echo "[test] pytest: unit, integration, e2e"
.venv/bin/python -m pytest tests/unit tests/integration tests/e2e \
  --junitxml=artifacts/junit.xml -p no:cacheprovider --durations=12 "$@"
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
