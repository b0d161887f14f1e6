#!/usr/bin/env bash
# Local Zipkin (trace UI and API, in-memory storage) for development and tests.
# No Docker: Zipkin's executable jar comes from Maven Central (deploy/local/zipkin/pom.xml).
#
# Usage: deploy/local/zipkin.sh start|stop|restart|status
# Env:   ZIPKIN_PORT (9411: UI at /zipkin/, API at /api/v2/), ZIPKIN_MEM_MAX_SPANS (500000),
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
MAX_SPANS="${ZIPKIN_MEM_MAX_SPANS:-500000}"
START_TIMEOUT="${ZIPKIN_START_TIMEOUT:-90}"
STOP_TIMEOUT="${ZIPKIN_STOP_TIMEOUT:-30}"
URL="http://127.0.0.1:$PORT"

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
need_free_port() {
  ! port_open "$1" || fail "port $1 is already in use by another process: $(ss -Hltnp "sport = :$1" 2>/dev/null | tr -s ' ')"
}
healthy() { curl -sf -o /dev/null --max-time 3 "$URL/health"; }
# A zombie still passes `kill -0`, so look at the process state too.
alive() {
  local state
  state="$(ps -o stat= -p "$1" 2>/dev/null)" && [[ "$state" != Z* ]]
}

# zipkin_pid: prints the pid if the pid file names a live process whose command line runs
# Zipkin's jar (guards against pid reuse).
zipkin_pid() {
  local pid
  pid="$(cat "$PIDFILE" 2>/dev/null)" || return 1
  [[ "$pid" =~ ^[0-9]+$ ]] && alive "$pid" && tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline" | grep -q -- 'zipkin-server-exec\.jar' || return 1
  echo "$pid"
}

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

# await_ready PID T0: poll $URL/health until it answers 200.
await_ready() {
  local pid="$1" t0="$2" deadline=$((SECONDS + START_TIMEOUT))
  while :; do
    alive "$pid" || { rm -f "$PIDFILE"; fail "Zipkin process $pid exited during startup" "$LOG"; }
    if healthy; then
      say "ready: $URL/zipkin/ (pid $pid) after $(since "$t0") s"
      return 0
    fi
    ((SECONDS < deadline)) || fail "Zipkin not ready after ${START_TIMEOUT}s (ZIPKIN_START_TIMEOUT); it is left running as pid $pid" "$LOG"
    sleep 0.5
  done
}

start() {
  local pid t0
  command -v curl >/dev/null || fail "curl is not installed: apt-get install -y curl"
  t0="$(now)"
  if pid="$(zipkin_pid)"; then
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
  await_ready "$pid" "$t0"
  say "UI $URL/zipkin/  API $URL/api/v2/  spans POST $URL/api/v2/spans"
}

# stop: SIGTERM, then SIGKILL after ZIPKIN_STOP_TIMEOUT.
stop() {
  local pid deadline
  if ! pid="$(zipkin_pid)"; then
    rm -f "$PIDFILE"
    say "not running"
    return 0
  fi
  say "stopping Zipkin (pid $pid)..."
  kill -TERM "$pid" 2>/dev/null || true
  deadline=$((SECONDS + STOP_TIMEOUT))
  while alive "$pid" && ((SECONDS < deadline)); do sleep 0.2; done
  if alive "$pid"; then
    say "still alive after ${STOP_TIMEOUT}s, sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    while alive "$pid"; do sleep 0.1; done
  fi
  rm -f "$PIDFILE"
  say "stopped"
}

status() {
  local pid
  if pid="$(zipkin_pid)" && healthy; then
    say "running (pid $pid, UI $URL/zipkin/)"
  elif [[ -n "${pid:-}" ]]; then
    say "process $pid is alive but $URL/health does not answer"
    return 3
  else
    say "not running"
    return 3
  fi
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
