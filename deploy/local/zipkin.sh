#!/usr/bin/env bash
# Local Zipkin (trace UI and API, in-memory storage) plus an OTLP/HTTP receiver in front of it,
# for development and tests. No Docker: Zipkin's executable jar comes from Maven Central
# (deploy/local/zipkin/pom.xml); OTLP/HTTP protobuf is received by zipkin/otlp_bridge.py
# (the project's .venv), as Zipkin's own OTLP module is not published on Maven Central.
#
# Usage: deploy/local/zipkin.sh start|stop|restart|status
# Env:   ZIPKIN_PORT (9411: UI at /zipkin/, API at /api/v2/), ZIPKIN_OTLP_PORT (4318: POST /v1/traces),
#        ZIPKIN_MEM_MAX_SPANS (500000), ZIPKIN_START_TIMEOUT (90 s), ZIPKIN_STOP_TIMEOUT (30 s),
#        ZIPKIN_PYTHON (.venv/bin/python: runs the OTLP bridge)
# Files: jar in .cache/zipkin/libs; pids and logs in .run/zipkin
# Services export with OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4318 (the SDK adds /v1/traces).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
HERE="$ROOT/deploy/local/zipkin"
CACHE="$ROOT/.cache/zipkin"
LIBS="$CACHE/libs"
JAR="$LIBS/zipkin-server-exec.jar"
BRIDGE="$HERE/otlp_bridge.py"
RUN="$ROOT/.run/zipkin"
PIDFILE="$RUN/zipkin.pid"
LOG="$RUN/zipkin.log"               # Zipkin logs to its console: JVM stdout/stderr
BRIDGE_PIDFILE="$RUN/otlp-bridge.pid"
BRIDGE_LOG="$RUN/otlp-bridge.log"
PORT="${ZIPKIN_PORT:-9411}"
OTLP_PORT="${ZIPKIN_OTLP_PORT:-4318}"
MAX_SPANS="${ZIPKIN_MEM_MAX_SPANS:-500000}"
START_TIMEOUT="${ZIPKIN_START_TIMEOUT:-90}"
STOP_TIMEOUT="${ZIPKIN_STOP_TIMEOUT:-30}"
PY="${ZIPKIN_PYTHON:-$ROOT/.venv/bin/python}"
URL="http://127.0.0.1:$PORT"
OTLP_URL="http://127.0.0.1:$OTLP_PORT"

say() { echo "[zipkin] $*"; }

# fail MESSAGE [LOGFILE...]: explain why, show the end of each log, exit 1.
fail() {
  echo "[zipkin] ERROR: $1" >&2
  shift
  for f in "$@"; do
    [[ -s "$f" ]] || continue
    echo "[zipkin] ---- last lines of $f ----" >&2
    tail -n 40 "$f" >&2
  done
  exit 1
}

now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
healthy() { curl -sf -o /dev/null --max-time 3 "$1/health"; }
# A zombie still passes `kill -0`, so look at the process state too.
alive() {
  local state
  state="$(ps -o stat= -p "$1" 2>/dev/null)" && [[ "$state" != Z* ]]
}

# live_pid PIDFILE PATTERN: prints the pid if the pid file names a live process whose command
# line matches PATTERN (guards against pid reuse).
live_pid() {
  local pid
  pid="$(cat "$1" 2>/dev/null)" || return 1
  [[ "$pid" =~ ^[0-9]+$ ]] && alive "$pid" && tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline" | grep -q -- "$2" || return 1
  echo "$pid"
}
zipkin_pid() { live_pid "$PIDFILE" 'zipkin-server-exec\.jar'; }
bridge_pid() { live_pid "$BRIDGE_PIDFILE" 'otlp_bridge\.py'; }

# Download the jar once; the marker holds the pom's hash so editing the pom re-resolves.
resolve_jar() {
  local hash t0 tmp="$CACHE/libs.tmp"
  hash="$(sha256sum "$HERE/pom.xml" | cut -d' ' -f1)"
  [[ -f "$JAR" && "$(cat "$LIBS/.pom.sha256" 2>/dev/null)" == "$hash" ]] && return 0
  command -v mvn >/dev/null || fail "Maven (mvn) is not installed: apt-get install -y maven"
  say "resolving Zipkin's jar from Maven Central into .cache/zipkin/libs (only when the pom changed)..."
  t0="$(now)"
  rm -rf "$LIBS" "$tmp" && mkdir -p "$CACHE"
  # Into a temp dir first, so an interrupted download never looks complete.
  mvn -B -ntp -Dstyle.color=never -f "$HERE/pom.xml" dependency:copy-dependencies \
    -Dmdep.stripVersion=true -DoutputDirectory="$tmp" >"$CACHE/mvn.log" 2>&1 \
    || fail "Maven could not resolve Zipkin's jar (is Maven Central reachable?)" "$CACHE/mvn.log"
  [[ -f "$tmp/zipkin-server-exec.jar" ]] || fail "Maven did not produce zipkin-server-exec.jar" "$CACHE/mvn.log"
  mv "$tmp" "$LIBS"
  echo "$hash" >"$LIBS/.pom.sha256"
  say "resolved $(basename "$JAR") ($(du -sh "$JAR" | cut -f1)) in $(since "$t0") s"
}

check_java() {
  local version
  command -v java >/dev/null || fail "java is not installed (Zipkin 3 needs Java 17+)"
  version="$(java -XshowSettings:properties -version 2>&1 | awk -F' = ' '/java.specification.version/ { print $2 }')"
  ((${version%%.*} >= 17)) || fail "Zipkin 3 needs Java 17+, but java is $version"
}

check_python() {
  [[ -x "$PY" ]] || fail "no Python at $PY for the OTLP bridge: run 'make install' (or set ZIPKIN_PYTHON)"
  "$PY" -c 'import opentelemetry.proto.collector.trace.v1.trace_service_pb2' 2>"$RUN/python-check.log" \
    || fail "$PY lacks opentelemetry-proto: run 'make install' (or set ZIPKIN_PYTHON)" "$RUN/python-check.log"
}

# await_ready NAME PID BASEURL LOGFILE T0: poll BASEURL/health until it answers 200.
await_ready() {
  local name="$1" pid="$2" url="$3" log="$4" t0="$5" deadline=$((SECONDS + START_TIMEOUT))
  while :; do
    alive "$pid" || fail "$name process $pid exited during startup" "$log"
    if healthy "$url"; then
      say "$name ready: $url (pid $pid) after $(since "$t0") s"
      return 0
    fi
    ((SECONDS < deadline)) || fail "$name not ready after ${START_TIMEOUT}s (ZIPKIN_START_TIMEOUT); it is left running as pid $pid" "$log"
    sleep 0.5
  done
}

start_zipkin() {
  local pid t0
  t0="$(now)"
  if pid="$(zipkin_pid)"; then
    if healthy "$URL"; then
      say "already running (pid $pid, $URL/zipkin/)"
      return 0
    fi
    say "pid $pid is alive but $URL/health does not answer yet; waiting"
    await_ready zipkin "$pid" "$URL" "$LOG" "$t0"
    return 0
  fi
  [[ -f "$PIDFILE" ]] && say "removing stale pid file" && rm -f "$PIDFILE"
  port_open "$PORT" && fail "port $PORT is already in use by another process: $(ss -Hltnp "sport = :$PORT" 2>/dev/null | tr -s ' ')"
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
  setsid nohup java -Xms128m -Xmx512m -XX:+ExitOnOutOfMemoryError -Djava.awt.headless=true \
    -Dzipkin.storage.type=mem -Dzipkin.storage.mem.max-spans="$MAX_SPANS" \
    -Dzipkin.collector.kafka.enabled=false -Dzipkin.collector.rabbitmq.enabled=false \
    -Dzipkin.collector.activemq.enabled=false -Dzipkin.collector.pulsar.enabled=false \
    -Dzipkin.collector.scribe.enabled=false -Dzipkin.discovery.eureka.enabled=false \
    -Dzipkin.self-tracing.enabled=false \
    "-Darmeria.ports[0].ip=127.0.0.1" "-Darmeria.ports[0].port=$PORT" "-Darmeria.ports[0].protocols[0]=http" \
    -jar "$JAR" >"$LOG" 2>&1 </dev/null 9>&- &
  pid=$!
  echo "$pid" >"$PIDFILE"
  await_ready zipkin "$pid" "$URL" "$LOG" "$t0"
}

start_bridge() {
  local pid t0
  t0="$(now)"
  if pid="$(bridge_pid)"; then
    if healthy "$OTLP_URL"; then
      say "OTLP receiver already running (pid $pid, $OTLP_URL/v1/traces)"
      return 0
    fi
    say "OTLP receiver pid $pid is alive but does not answer yet; waiting"
    await_ready "OTLP receiver" "$pid" "$OTLP_URL" "$BRIDGE_LOG" "$t0"
    return 0
  fi
  [[ -f "$BRIDGE_PIDFILE" ]] && rm -f "$BRIDGE_PIDFILE"
  port_open "$OTLP_PORT" && fail "port $OTLP_PORT is already in use by another process: $(ss -Hltnp "sport = :$OTLP_PORT" 2>/dev/null | tr -s ' ')"
  check_python
  [[ -f "$BRIDGE_LOG" ]] && mv -f "$BRIDGE_LOG" "$BRIDGE_LOG.prev"
  setsid nohup "$PY" -u "$BRIDGE" --host 127.0.0.1 --port "$OTLP_PORT" --zipkin "$URL" \
    >"$BRIDGE_LOG" 2>&1 </dev/null 9>&- &
  pid=$!
  echo "$pid" >"$BRIDGE_PIDFILE"
  await_ready "OTLP receiver" "$pid" "$OTLP_URL" "$BRIDGE_LOG" "$t0"
}

start() {
  command -v curl >/dev/null || fail "curl is not installed: apt-get install -y curl"
  start_zipkin
  start_bridge
  say "UI $URL/zipkin/  API $URL/api/v2/  OTLP/HTTP $OTLP_URL/v1/traces"
}

# stop_one NAME PID PIDFILE: SIGTERM, then SIGKILL after ZIPKIN_STOP_TIMEOUT.
stop_one() {
  local name="$1" pid="$2" pidfile="$3" deadline
  say "stopping $name (pid $pid)..."
  kill -TERM "$pid" 2>/dev/null || true
  deadline=$((SECONDS + STOP_TIMEOUT))
  while alive "$pid" && ((SECONDS < deadline)); do sleep 0.2; done
  if alive "$pid"; then
    say "$name still alive after ${STOP_TIMEOUT}s, sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    while alive "$pid"; do sleep 0.1; done
  fi
  rm -f "$pidfile"
}

stop() {
  local pid stopped=0
  if pid="$(bridge_pid)"; then stop_one "OTLP receiver" "$pid" "$BRIDGE_PIDFILE" && stopped=1; fi
  rm -f "$BRIDGE_PIDFILE"
  if pid="$(zipkin_pid)"; then stop_one zipkin "$pid" "$PIDFILE" && stopped=1; fi
  rm -f "$PIDFILE"
  if ((stopped)); then say "stopped"; else say "not running"; fi
}

status() {
  local pid rc=0
  if pid="$(zipkin_pid)" && healthy "$URL"; then
    say "running (pid $pid, UI $URL/zipkin/)"
  elif [[ -n "${pid:-}" ]]; then
    say "process $pid is alive but $URL/health does not answer"
    rc=3
  else
    say "not running"
    rc=3
  fi
  pid=""
  if pid="$(bridge_pid)" && healthy "$OTLP_URL"; then
    say "OTLP receiver running (pid $pid, $OTLP_URL/v1/traces)"
  elif [[ -n "${pid:-}" ]]; then
    say "OTLP receiver process $pid is alive but not healthy"
    rc=3
  else
    say "OTLP receiver not running"
    rc=3
  fi
  return "$rc"
}

cmd="${1:-}"
case "$cmd" in
  start | stop | restart)
    mkdir -p "$RUN"
    # Serialize concurrent start/stop calls (e.g. parallel test sessions).
    exec 9>"$RUN/.lock"
    flock -w $((START_TIMEOUT + STOP_TIMEOUT + 60)) 9 || fail "another zipkin.sh still holds $RUN/.lock"
    case "$cmd" in
      start) start ;;
      stop) stop ;;
      restart) stop && start ;;
    esac
    ;;
  status) status ;;
  *)
    echo "usage: $0 start|stop|restart|status" >&2
    exit 2
    ;;
esac
