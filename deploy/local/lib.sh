# shellcheck shell=bash
# Helpers shared by deploy/local/kafka.sh, postgres.sh, zipkin.sh and stop-all.sh; sourced, not run.
#
# The sourcing script sets, before calling them (each helper says which it reads):
#   TAG            the tag of its messages: say and fail print "[$TAG] ..."
#   START_TIMEOUT  STOP_TIMEOUT  seconds
#   PIDFILE, PID_MATCH   for a server this script starts itself: the file holding its pid, and
#                        a grep pattern its command line must match (guards against pid reuse)
#   HERE, CACHE, LIBS    for a JVM server: the folder of its pom.xml, and where its jars go

say() { echo "[$TAG] $*"; }

# fail MESSAGE [LOGFILE...]: explain why, show the end of each log, exit 1.
fail() {
  echo "[$TAG] ERROR: $1" >&2
  shift
  for f in "$@"; do
    [[ -s "$f" ]] || continue
    echo "[$TAG] ---- last lines of $f ----" >&2
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
# A zombie still passes `kill -0`, so look at the process state too.
alive() {
  local state
  state="$(ps -o stat= -p "$1" 2>/dev/null)" && [[ "$state" != Z* ]]
}

# daemon_pid: prints the pid if $PIDFILE names a live process whose command line matches $PID_MATCH.
daemon_pid() {
  local pid
  pid="$(cat "$PIDFILE" 2>/dev/null)" || return 1
  [[ "$pid" =~ ^[0-9]+$ ]] && alive "$pid" && tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline" | grep -q -- "$PID_MATCH" || return 1
  echo "$pid"
}

# poll_ready PID TIMEOUT CHECK [ARG...]: run CHECK every 0.5 s until it succeeds (returns 0);
# returns 1 as soon as PID is gone, 2 once TIMEOUT seconds have passed.
poll_ready() {
  local pid="$1" deadline=$((SECONDS + $2))
  shift 2
  while :; do
    alive "$pid" || return 1
    "$@" && return 0
    ((SECONDS < deadline)) || return 2
    sleep 0.5
  done
}

# terminate PID [TARGET [LABEL]]: SIGTERM to TARGET (PID unless given; "-PID" is its process group),
# wait up to STOP_TIMEOUT s for PID to end, then SIGKILL TARGET, saying so after LABEL.
# It does not wait for the SIGKILL to take effect.
terminate() {
  local pid="$1" target="${2:-$1}" label="${3:-}" deadline
  kill -TERM -- "$target" 2>/dev/null || true
  deadline=$((SECONDS + STOP_TIMEOUT))
  while alive "$pid" && ((SECONDS < deadline)); do sleep 0.2; done
  if alive "$pid"; then
    say "${label}still alive after ${STOP_TIMEOUT}s, sending SIGKILL"
    kill -KILL -- "$target" 2>/dev/null || true
  fi
}

# stop_daemon WHAT: stop the process $PIDFILE names (see daemon_pid), SIGKILL after STOP_TIMEOUT s,
# wait until it is gone and remove the pid file.
stop_daemon() {
  local pid
  if ! pid="$(daemon_pid)"; then
    rm -f "$PIDFILE"
    say "not running"
    return 0
  fi
  say "stopping $1 (pid $pid)..."
  terminate "$pid"
  while alive "$pid"; do sleep 0.1; done
  rm -f "$PIDFILE"
  say "stopped"
}

# The JVM servers' jars come from Maven Central: $HERE/pom.xml lists them, $LIBS holds them, and the
# marker $LIBS/.pom.sha256 holds the pom's hash, so editing the pom re-resolves.
pom_hash() { sha256sum "$HERE/pom.xml" | cut -d' ' -f1; }
jars_current() { [[ "$(cat "$LIBS/.pom.sha256" 2>/dev/null)" == "$(pom_hash)" ]]; }

# fetch_jars RESOLVING FAILED [NEEDED [MAVEN_OPTION...]]: say RESOLVING, download the pom's jars into
# $LIBS and mark them current; FAILED is the error if Maven fails. NEEDED: a file Maven must produce.
fetch_jars() {
  local resolving="$1" failed="$2" needed="${3:-}" hash tmp="$CACHE/libs.tmp"
  shift 2
  (($# == 0)) || shift
  hash="$(pom_hash)"
  command -v mvn >/dev/null || fail "Maven (mvn) is not installed: apt-get install -y maven"
  say "$resolving"
  rm -rf "$LIBS" "$tmp" && mkdir -p "$CACHE"
  # Into a temp dir first, so an interrupted download never looks complete.
  mvn -B -ntp -Dstyle.color=never -f "$HERE/pom.xml" dependency:copy-dependencies \
    "$@" -DoutputDirectory="$tmp" >"$CACHE/mvn.log" 2>&1 \
    || fail "$failed" "$CACHE/mvn.log"
  [[ -z "$needed" || -f "$tmp/$needed" ]] || fail "Maven did not produce $needed" "$CACHE/mvn.log"
  mv "$tmp" "$LIBS"
  echo "$hash" >"$LIBS/.pom.sha256"
}

# run_command COMMAND LOCKFILE [LOCK_AS_SHOWN]: run the script's start, stop or restart (stop && start),
# one call at a time: under an flock on LOCKFILE, held on fd 9 (so start servers with 9>&-);
# or its status; anything else prints the usage and exits 2.
run_command() {
  local cmd="$1" lock="$2" shown="${3:-$2}"
  case "$cmd" in
    start | stop | restart)
      mkdir -p "$(dirname "$lock")"
      # Serialize concurrent start/stop calls (e.g. parallel test sessions).
      exec 9>"$lock"
      flock -w $((START_TIMEOUT + STOP_TIMEOUT + 60)) 9 || fail "another $TAG.sh still holds $shown"
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
}
