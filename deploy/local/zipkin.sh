#!/usr/bin/env bash
# Local Zipkin (trace UI and API, in-memory storage) for development and tests.
# No Docker: Zipkin's executable jar comes from Maven Central (deploy/local/zipkin/pom.xml).
#
# Usage: deploy/local/zipkin.sh start|stop|restart|status
# Env:   ZIPKIN_PORT (9411: UI at /zipkin/, API at /api/v2/), ZIPKIN_MEM_MAX_SPANS (100000),
#        ZIPKIN_HEAP (768m),
#        ZIPKIN_START_TIMEOUT (90 s), ZIPKIN_STOP_TIMEOUT (30 s)
# Files: jar in .cache/zipkin/libs; pid and log in .run/zipkin
# Services send spans in Zipkin's own format, straight to Zipkin's collector:
#   OTEL_TRACES_EXPORTER=zipkin OTEL_EXPORTER_ZIPKIN_ENDPOINT=http://127.0.0.1:9411/api/v2/spans
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
HERE="$ROOT/deploy/local/zipkin"
CACHE="$ROOT/.cache/zipkin"
LIBS="$CACHE/libs"
JAR="$LIBS/zipkin-server-exec.jar"
RUN="$ROOT/.run/zipkin"
PIDFILE="$RUN/zipkin.pid"
LOG="$RUN/zipkin.log"               # Zipkin logs to its console: JVM stdout/stderr
PORT="${ZIPKIN_PORT:-9411}"
# In-memory storage drops the oldest traces past MAX_SPANS; the heap must hold that many, with
# room for the collector's queue under load (500,000 spans in 512 MB ran out of memory).
MAX_SPANS="${ZIPKIN_MEM_MAX_SPANS:-100000}"
HEAP="${ZIPKIN_HEAP:-768m}"
START_TIMEOUT="${ZIPKIN_START_TIMEOUT:-90}"
STOP_TIMEOUT="${ZIPKIN_STOP_TIMEOUT:-30}"
URL="http://127.0.0.1:$PORT"
PID_MATCH='zipkin-server-exec\.jar'  # what the pid file's process must run (guards against pid reuse)
TAG=zipkin
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$ROOT/deploy/local/lib.sh"

healthy() { curl -sf -o /dev/null --max-time 3 "$URL/health"; }

# Download the jar once (only when the pom changed or the jar is missing).
resolve_jar() {
  local t0
  [[ -f "$JAR" ]] && jars_current && return 0
  t0="$(now)"
  fetch_jars "resolving Zipkin's jar from Maven Central into .cache/zipkin/libs (only when the pom changed)..." \
    "Maven could not resolve Zipkin's jar (is Maven Central reachable?)" \
    zipkin-server-exec.jar -Dmdep.stripVersion=true
  say "resolved $(basename "$JAR") ($(du -sh "$JAR" | cut -f1)) in $(since "$t0") s"
}

check_java() {
  local version
  command -v java >/dev/null || fail "java is not installed (Zipkin 3 needs Java 17+)"
  version="$(java -XshowSettings:properties -version 2>&1 | awk -F' = ' '/java.specification.version/ { print $2 }')"
  ((${version%%.*} >= 17)) || fail "Zipkin 3 needs Java 17+, but java is $version"
}

# await_ready PID T0: poll $URL/health until it answers 200.
await_ready() {
  local pid="$1" t0="$2" rc=0
  poll_ready "$pid" "$START_TIMEOUT" healthy || rc=$?
  case "$rc" in
    0) say "ready: $URL/zipkin/ (pid $pid) after $(since "$t0") s" ;;
    1) rm -f "$PIDFILE"; fail "Zipkin process $pid exited during startup" "$LOG" ;;
    *) fail "Zipkin not ready after ${START_TIMEOUT}s (ZIPKIN_START_TIMEOUT); it is left running as pid $pid" "$LOG" ;;
  esac
}

start() {
  local pid t0
  command -v curl >/dev/null || fail "curl is not installed: apt-get install -y curl"
  t0="$(now)"
  if pid="$(daemon_pid)"; then
    if healthy; then
      say "already running (pid $pid, $URL/zipkin/)"
      return 0
    fi
    say "pid $pid is alive but $URL/health does not answer yet; waiting"
    await_ready "$pid" "$t0"
    return 0
  fi
  [[ -f "$PIDFILE" ]] && say "removing stale pid file" && rm -f "$PIDFILE"
  need_free_port "$PORT"
  check_java
  resolve_jar
  # Keep the previous run's log apart, so a failure shows only this run's lines.
  [[ -f "$LOG" ]] && mv -f "$LOG" "$LOG.prev"
  say "starting Zipkin (log: .run/zipkin/zipkin.log)..."
  # In-memory storage, bounded; only the HTTP collector: KAFKA_BOOTSTRAP_SERVERS and the like,
  # if set in this shell for the services, must not make Zipkin consume the project's broker.
  # The listen address is loopback only (a list property: port and protocols must be restated).
  # setsid: Zipkin must outlive this shell and not get its terminal's signals;
  # 9>&-: it must not inherit (and so hold forever) the lock taken below.
  setsid nohup java -Xms128m -Xmx"$HEAP" -XX:+ExitOnOutOfMemoryError -Djava.awt.headless=true \
    -Dzipkin.storage.type=mem -Dzipkin.storage.mem.max-spans="$MAX_SPANS" \
    -Dzipkin.collector.kafka.enabled=false -Dzipkin.collector.rabbitmq.enabled=false \
    -Dzipkin.collector.activemq.enabled=false -Dzipkin.collector.pulsar.enabled=false \
    -Dzipkin.collector.scribe.enabled=false -Dzipkin.discovery.eureka.enabled=false \
    -Dzipkin.self-tracing.enabled=false \
    "-Darmeria.ports[0].ip=127.0.0.1" "-Darmeria.ports[0].port=$PORT" "-Darmeria.ports[0].protocols[0]=http" \
    -jar "$JAR" >"$LOG" 2>&1 </dev/null 9>&- &
  pid=$!
  echo "$pid" >"$PIDFILE"
  await_ready "$pid" "$t0"
  say "UI $URL/zipkin/  API $URL/api/v2/  spans POST $URL/api/v2/spans"
}

# stop: SIGTERM, then SIGKILL after ZIPKIN_STOP_TIMEOUT.
stop() { stop_daemon Zipkin; }

status() {
  local pid
  if pid="$(daemon_pid)" && healthy; then
    say "running (pid $pid, UI $URL/zipkin/)"
  elif [[ -n "${pid:-}" ]]; then
    say "process $pid is alive but $URL/health does not answer"
    return 3
  else
    say "not running"
    return 3
  fi
}

run_command "${1:-}" "$RUN/.lock"
