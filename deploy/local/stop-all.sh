#!/usr/bin/env bash
# Stops everything the project started locally, found through the pid files under .run/:
# services (.run/services/*.pid) first, as they use Kafka and PostgreSQL (and send traces to Zipkin,
# and verify tokens against Keycloak), then Keycloak, Zipkin (.run/zipkin/*.pid), Kafka (and the
# three-broker cluster of the multi-node mode), PostgreSQL.
# Anything not running is skipped. Env: SERVICE_STOP_TIMEOUT (15 s) before SIGKILL.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
HERE="$ROOT/deploy/local"
STOP_TIMEOUT="${SERVICE_STOP_TIMEOUT:-15}"

TAG=stop-all
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$HERE/lib.sh"

# Process start time in epoch seconds (/proc/PID/stat field 22 is in clock ticks since boot).
proc_start() {
  awk -v hz="$(getconf CLK_TCK)" -v boot="$(awk '/^btime/ { print $2 }' /proc/stat)" \
    '{ sub(/.*\) /, ""); print int(boot + $20 / hz) }' "/proc/$1/stat"
}

stop_pidfile() {
  local f="$1" name pid target
  name="$(basename "$f" .pid)"
  pid="$(cat "$f" 2>/dev/null || true)"
  if ! [[ "$pid" =~ ^[0-9]+$ ]] || ! alive "$pid"; then
    say "$name: not running"
    rm -f "$f"
    return 0
  fi
  # Started after its pid file was written: the pid was reused by an unrelated process.
  if (($(proc_start "$pid") > $(stat -c %Y "$f") + 5)); then
    say "$name: stale pid file (pid $pid now belongs to another process), not killing it"
    rm -f "$f"
    return 0
  fi
  # A service started with setsid leads its own process group: signal the group (workers too).
  target="$pid"
  [[ "$(ps -o pgid= -p "$pid" | tr -d ' ')" == "$pid" ]] && target="-$pid"
  say "$name: stopping pid $pid..."
  terminate "$pid" "$target" "$name: "
  rm -f "$f"
  say "$name: stopped"
}

rc=0
shopt -s nullglob
for f in "$ROOT"/.run/services/*.pid; do stop_pidfile "$f" || rc=1; done
"$HERE/keycloak.sh" stop || rc=1
"$HERE/zipkin.sh" stop || rc=1
"$HERE/kafka.sh" stop || rc=1
"$HERE/kafka-cluster.sh" stop || rc=1
"$HERE/postgres.sh" stop || rc=1
exit "$rc"
