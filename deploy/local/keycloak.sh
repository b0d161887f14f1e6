#!/usr/bin/env bash
# Local Keycloak (OpenID Connect provider) for development and tests, with the realm `onestop`
# imported from deploy/keycloak/onestop-realm.json (`make realm` generates it from the catalog).
# No Docker: the server distribution comes from Maven Central (deploy/local/keycloak/pom.xml).
#
# Usage: deploy/local/keycloak.sh start|stop|restart|status
# Env:   KEYCLOAK_PORT (18080), KEYCLOAK_MANAGEMENT_PORT (19000: /health/ready),
#        KEYCLOAK_JAVA_HOME (/usr/lib/jvm/temurin-25-jdk-amd64: Keycloak 26 needs Java 21+; only
#        Keycloak runs on it), KEYCLOAK_START_TIMEOUT (300 s: a first start on a busy 2-core
#        machine took 160 s), KEYCLOAK_STOP_TIMEOUT (30 s)
# Files: distribution in .cache/keycloak; database (dev-file H2), pid and log in .run/keycloak
# Secrets (.run/secrets.env): KEYCLOAK_ADMIN_PASSWORD (user `admin` of the admin console),
#        KEYCLOAK_DOWNSTREAM_CLIENT_SECRET (client onestop-downstream; the realm file holds only
#        a placeholder for it).
# When the realm file (or the downstream secret) changed since the last import, the next start
# drops the local Keycloak state and imports the realm anew, saying so.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
HERE="$ROOT/deploy/local/keycloak"
CACHE="$ROOT/.cache/keycloak"
LIBS="$CACHE/libs"          # the zip, while it is fetched and checked
RUN="$ROOT/.run/keycloak"
DATA="$RUN/data"            # the dev-file database: $DATA/h2
PIDFILE="$RUN/keycloak.pid"
LOG="$RUN/keycloak.log"     # Keycloak logs to its console: JVM stdout/stderr
IMPORTED="$RUN/imported.sha256"  # fingerprint of the realm (file and secret) last imported
REALM_FILE="$ROOT/deploy/keycloak/onestop-realm.json"
REALM=onestop
PORT="${KEYCLOAK_PORT:-18080}"
MPORT="${KEYCLOAK_MANAGEMENT_PORT:-19000}"
KC_JAVA_HOME="${KEYCLOAK_JAVA_HOME:-/usr/lib/jvm/temurin-25-jdk-amd64}"
START_TIMEOUT="${KEYCLOAK_START_TIMEOUT:-300}"
STOP_TIMEOUT="${KEYCLOAK_STOP_TIMEOUT:-30}"
URL="http://127.0.0.1:$PORT"
ISSUER="$URL/realms/$REALM"
HEALTH="http://127.0.0.1:$MPORT/health/ready"
TAG=keycloak
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$ROOT/deploy/local/lib.sh"

pom_property() { sed -n "s:.*<$1>\(.*\)</$1>.*:\1:p" "$HERE/pom.xml"; }
VERSION="$(pom_property keycloak.version)"
DIST_SHA512="$(pom_property keycloak.dist.sha512)"
DIST="$CACHE/keycloak-$VERSION"
# The pid file names kc.sh (a shell that runs the JVM) or, after a rebuild, the JVM itself:
# both command lines hold the distribution's path.
PID_MATCH="$DIST/"

ready() {
  curl -sf -o /dev/null --max-time 3 "$HEALTH" \
    && curl -sf -o /dev/null --max-time 3 "$ISSUER/.well-known/openid-configuration"
}

# Download, check and unpack the distribution once (again only when the pom changed).
resolve_dist() {
  local t0 zip sum
  [[ -x "$DIST/bin/kc.sh" && "$(cat "$DIST/.pom.sha256" 2>/dev/null)" == "$(pom_hash)" ]] && return 0
  t0="$(now)"
  fetch_jars "fetching Keycloak $VERSION from Maven Central into .cache/keycloak (once; ~170 MB)..." \
    "Maven could not fetch keycloak-quarkus-dist $VERSION (is Maven Central reachable?)" \
    keycloak-quarkus-dist.zip -Dmdep.stripVersion=true --strict-checksums
  zip="$LIBS/keycloak-quarkus-dist.zip"
  sum="$(sha512sum "$zip" | cut -d' ' -f1)"
  [[ "$sum" == "$DIST_SHA512" ]] \
    || fail "keycloak-quarkus-dist $VERSION: SHA-512 $sum is not the one pinned in deploy/local/keycloak/pom.xml"
  say "fetched and checked $(du -h "$zip" | cut -f1) in $(since "$t0") s; unpacking..."
  command -v unzip >/dev/null || fail "unzip is not installed: apt-get install -y unzip"
  rm -rf "$DIST" "$CACHE/unpack.tmp"
  unzip -q "$zip" -d "$CACHE/unpack.tmp" || fail "could not unpack $zip"
  mv "$CACHE/unpack.tmp/keycloak-$VERSION" "$DIST"
  rm -rf "$CACHE/unpack.tmp" "$LIBS"
  pom_hash >"$DIST/.pom.sha256"
  say "Keycloak $VERSION in .cache/keycloak/keycloak-$VERSION after $(since "$t0") s"
}

check_java() {
  local version
  [[ -x "$KC_JAVA_HOME/bin/java" ]] \
    || fail "no Java at $KC_JAVA_HOME (KEYCLOAK_JAVA_HOME): Keycloak $VERSION needs Java 21 or later"
  version="$("$KC_JAVA_HOME/bin/java" -XshowSettings:properties -version 2>&1 | awk -F' = ' '/java.specification.version/ { print $2 }')"
  ((${version%%.*} >= 21)) || fail "Keycloak $VERSION needs Java 21+, but $KC_JAVA_HOME has Java $version"
}

load_secrets() {
  eval "$(python3 "$ROOT/deploy/local/local_secrets.py" shell)"
}

# What the import depends on: the realm file and the secret its placeholder resolves to.
realm_fingerprint() {
  { cat "$REALM_FILE"; echo "$KEYCLOAK_DOWNSTREAM_CLIENT_SECRET"; } | sha256sum | cut -d' ' -f1
}
realm_current() { [[ "$(cat "$IMPORTED" 2>/dev/null)" == "$(realm_fingerprint)" ]]; }

# await_ready PID T0: poll readiness; fail if Keycloak exits or is not ready in time.
await_ready() {
  local pid="$1" t0="$2" rc=0
  poll_ready "$pid" "$START_TIMEOUT" ready || rc=$?
  case "$rc" in
    0) say "ready: issuer $ISSUER (pid $pid) after $(since "$t0") s" ;;
    1) rm -f "$PIDFILE"; fail "Keycloak process $pid exited during startup" "$LOG" ;;
    *) fail "Keycloak not ready after ${START_TIMEOUT}s (KEYCLOAK_START_TIMEOUT); it is left running as pid $pid" "$LOG" ;;
  esac
}

start() {
  local pid t0
  command -v curl >/dev/null || fail "curl is not installed: apt-get install -y curl"
  [[ -f "$REALM_FILE" ]] || fail "no realm file at $REALM_FILE: run 'make realm'"
  t0="$(now)"
  load_secrets
  if pid="$(daemon_pid)"; then
    if ! realm_current; then
      say "the realm file (or the downstream secret) changed since Keycloak imported it; restarting to import it"
      stop
      start
      return
    fi
    if ready; then
      say "already running (pid $pid, issuer $ISSUER)"
      return 0
    fi
    say "pid $pid is alive but $HEALTH does not answer yet; waiting"
    await_ready "$pid" "$t0"
    return 0
  fi
  [[ -f "$PIDFILE" ]] && say "removing stale pid file" && rm -f "$PIDFILE"
  need_free_port "$PORT"
  need_free_port "$MPORT"
  check_java
  resolve_dist
  if [[ -d "$DATA" ]] && ! realm_current; then
    say "the realm file (or the downstream secret) changed since the last import: dropping .run/keycloak/data to import it anew"
    rm -rf "$DATA"
  fi
  mkdir -p "$DATA" "$DIST/data/import"
  [[ -d "$DATA/h2" ]] || say "first start on this database: importing realm $REALM from deploy/keycloak/onestop-realm.json"
  # --import-realm reads the distribution's data/import; a realm already there is left as it is.
  cp "$REALM_FILE" "$DIST/data/import/$REALM-realm.json"
  [[ -f "$LOG" ]] && mv -f "$LOG" "$LOG.prev"
  say "starting Keycloak $VERSION on Java from $KC_JAVA_HOME (log: .run/keycloak/keycloak.log)..."
  # Secrets go through the environment, never the command line (ps shows that to everyone).
  # kc.db-url-path keeps the dev-file database under .run/keycloak instead of the distribution.
  # setsid: Keycloak must outlive this shell and not get its terminal's signals; it also leads
  # its own process group, so stop reaches kc.sh and its JVM. 9>&-: not inherit the lock.
  JAVA_HOME="$KC_JAVA_HOME" \
    JAVA_OPTS_APPEND="-Dkc.db-url-path=$RUN" \
    KC_BOOTSTRAP_ADMIN_USERNAME=admin \
    KC_BOOTSTRAP_ADMIN_PASSWORD="$KEYCLOAK_ADMIN_PASSWORD" \
    KEYCLOAK_DOWNSTREAM_CLIENT_SECRET="$KEYCLOAK_DOWNSTREAM_CLIENT_SECRET" \
    setsid nohup "$DIST/bin/kc.sh" start-dev \
    --http-host=127.0.0.1 --http-port="$PORT" \
    --hostname="$URL" \
    --health-enabled=true --http-management-port="$MPORT" \
    --import-realm \
    --log-console-color=false \
    >"$LOG" 2>&1 </dev/null 9>&- &
  pid=$!
  echo "$pid" >"$PIDFILE"
  await_ready "$pid" "$t0"
  realm_fingerprint >"$IMPORTED"
  say "admin console $URL/admin/ (user admin, password KEYCLOAK_ADMIN_PASSWORD in .run/secrets.env)"
}

# stop: SIGTERM to the process group (kc.sh and its JVM), SIGKILL after KEYCLOAK_STOP_TIMEOUT.
stop() {
  local pid
  if ! pid="$(daemon_pid)"; then
    rm -f "$PIDFILE"
    say "not running"
    return 0
  fi
  say "stopping Keycloak (pid $pid)..."
  terminate "$pid" "-$pid"
  while alive "$pid"; do sleep 0.1; done
  rm -f "$PIDFILE"
  say "stopped"
}

status() {
  local pid
  if pid="$(daemon_pid)" && ready; then
    say "running (pid $pid, issuer $ISSUER)"
    load_secrets
    realm_current || say "the realm file changed since it was imported: 'deploy/local/keycloak.sh start' imports it"
  elif [[ -n "${pid:-}" ]]; then
    say "process $pid is alive but $HEALTH or the realm's discovery document does not answer"
    return 3
  else
    say "not running"
    return 3
  fi
}

run_command "${1:-}" "$RUN/.lock"
