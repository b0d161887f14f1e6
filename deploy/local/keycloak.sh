#!/usr/bin/env bash
# Local Keycloak (OpenID Connect provider) for development and tests, with the realm `onestop`
# imported from deploy/keycloak/onestop-realm.json (`make realm` generates it from the catalog).
# No Docker: the server distribution comes from Maven Central (deploy/local/keycloak/pom.xml).
#
# Usage: deploy/local/keycloak.sh start|stop|restart|status
# Env:   KEYCLOAK_PORT (18080), KEYCLOAK_MANAGEMENT_PORT (19000: /health/ready),
#        KEYCLOAK_JAVA_HOME (/usr/lib/jvm/temurin-25-jdk-amd64: Keycloak 26 needs Java 21+; only
#        Keycloak runs on it), KEYCLOAK_START_TIMEOUT (300 s: a first start on a busy 2-core
#        machine took 160 s; it bounds each wait: for another checkout's preparation, for the
#        recording start, for the start), KEYCLOAK_STOP_TIMEOUT (30 s)
# Files: the built distribution, with a class data archive of its first start, is shared by
#        every checkout of this user, in ${XDG_CACHE_HOME:-~/.cache}/onestop/keycloak-<version>-
#        <hash of version, build options and JVM>; each checkout keeps Keycloak's home (database,
#        import, transaction logs), pid and logs in .run/keycloak.
# Seconds to ready, min/median/max, on a busy 2-core machine, alternated in one session: a fresh
# clone (git clone + start) 36/55/90 with the former start-dev (distribution unpacked and
# augmented in each checkout) and 12.5/13.6/33 now; a later start 7.3/8.4/16.4 (7 runs) before,
# 5.8/7.6/10.1 now. The once-per-user preparation took 97 s (build 26 s, recording start 66 s).
# Secrets (.run/secrets.env): KEYCLOAK_ADMIN_PASSWORD (user `admin` of the admin console),
#        KEYCLOAK_DOWNSTREAM_CLIENT_SECRET (client onestop-downstream; the realm file holds only
#        a placeholder for it).
# When the realm file (or the downstream secret) changed since the last import, the next start
# drops the local Keycloak state and imports the realm anew, saying so.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
HERE="$ROOT/deploy/local/keycloak"
SHARED="${XDG_CACHE_HOME:-$HOME/.cache}/onestop"
RUN="$ROOT/.run/keycloak"   # Keycloak's home (kc.home.dir) for this checkout
DATA="$RUN/data"            # what Keycloak writes: the dev-file database ($DATA/h2), data/import
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
# Build-time options, fixed by `kc.sh build` (Quarkus augmentation, ~45 s) once per user; every
# start is then `start --optimized`, which never rebuilds. With the runtime options of start this
# is what start-dev gives (dev-file H2, HTTP, local cache), except that themes are cached.
BUILD_OPTIONS=(--db=dev-file --health-enabled=true)
# The pid file names kc.sh (a shell that runs the JVM): its command line holds this checkout's
# home; one started by the former script (distribution in .cache/keycloak) is still recognized.
PID_MATCH="$ROOT/\(\.run\|\.cache\)/keycloak"

ready() {
  curl -sf -o /dev/null --max-time 3 "$HEALTH" \
    && curl -sf -o /dev/null --max-time 3 "$ISSUER/.well-known/openid-configuration"
}

# Download, check, unpack, build and train the distribution once per user, in $DIST. Checkouts
# share it: it is prepared under a lock and used only once $PREPARED exists; nothing writes to it
# afterwards (Keycloak's home is each checkout's .run/keycloak).
resolve_dist() {
  local t0 zip sum
  [[ -f "$PREPARED" ]] && return 0
  mkdir -p "$SHARED"
  exec 8>"$DIST.lock"
  if ! flock -n 8; then
    say "another checkout is preparing $DIST; waiting for it"
    flock -w "$START_TIMEOUT" 8 || fail "$DIST.lock still held after ${START_TIMEOUT}s"
  fi
  if [[ ! -f "$PREPARED" ]]; then
    t0="$(now)"
    rm -rf "$DIST" "$DIST.unpack" "$DIST.train" # left by an interrupted preparation: the lock says none is under way
    fetch_jars "fetching Keycloak $VERSION from Maven Central (once per user; ~170 MB)..." \
      "Maven could not fetch keycloak-quarkus-dist $VERSION (is Maven Central reachable?)" \
      keycloak-quarkus-dist.zip -Dmdep.stripVersion=true --strict-checksums
    zip="$LIBS/keycloak-quarkus-dist.zip"
    sum="$(sha512sum "$zip" | cut -d' ' -f1)"
    [[ "$sum" == "$DIST_SHA512" ]] \
      || fail "keycloak-quarkus-dist $VERSION: SHA-512 $sum is not the one pinned in deploy/local/keycloak/pom.xml"
    say "fetched and checked $(du -h "$zip" | cut -f1) in $(since "$t0") s; unpacking..."
    command -v unzip >/dev/null || fail "unzip is not installed: apt-get install -y unzip"
    unzip -q "$zip" -d "$DIST.unpack" || fail "could not unpack $zip"
    mv "$DIST.unpack/keycloak-$VERSION" "$DIST"
    rm -rf "$DIST.unpack" "$CACHE"
    say "building it (${BUILD_OPTIONS[*]}; once per user; log: .run/keycloak/build.log)..."
    JAVA_HOME="$KC_JAVA_HOME" "$DIST/bin/kc.sh" build "${BUILD_OPTIONS[@]}" \
      >"$RUN/build.log" 2>&1 </dev/null 9>&- 8>&- || fail "kc.sh build failed" "$RUN/build.log"
    train
    touch "$PREPARED"
    say "Keycloak $VERSION prepared in $DIST after $(since "$t0") s"
  fi
  exec 8>&-
}

# train: start once with a throwaway home, importing the realm, and keep the classes that start
# loaded in $CDS: every later start maps them instead of loading them (warm starts took about
# half as long). The archive holds only code, no data or secrets.
train() {
  local pid t0 rc=0
  t0="$(now)"
  say "a first start, to record the classes Keycloak loads (once per user; log: .run/keycloak/train.log)..."
  mkdir -p "$DIST.train/data/import"
  ln -s "$DIST/lib" "$DIST.train/lib"
  cp "$REALM_FILE" "$DIST.train/data/import/$REALM-realm.json"
  KC_HOME="$DIST.train" JAVA_OPTS_APPEND="-XX:ArchiveClassesAtExit=$CDS.tmp" run_keycloak "$RUN/train.log"
  pid=$!
  poll_ready "$pid" "$START_TIMEOUT" ready || rc=$?
  ((rc == 0)) || { kill -KILL -- "-$pid" 2>/dev/null; fail "the first start, in $DIST.train, did not become ready" "$RUN/train.log"; }
  terminate "$pid" "-$pid"
  while alive "$pid"; do sleep 0.1; done
  [[ -s "$CDS.tmp" ]] || fail "the JVM wrote no class data archive at $CDS.tmp" "$RUN/train.log"
  mv "$CDS.tmp" "$CDS"
  rm -rf "$DIST.train"
  say "recorded $(du -h "$CDS" | cut -f1) of classes in $(since "$t0") s"
}

# run_keycloak LOG: start Keycloak in the background (pid in $!) with its home in $KC_HOME.
# Secrets go through the environment, never the command line (ps shows that to everyone).
# -Dkc.home.dir comes after the one kc.sh sets, so it wins. The health check logs each "not yet
# ready" at INFO while the realm is imported: only warnings from it.
# setsid: Keycloak must outlive this shell and not get its terminal's signals; it also leads its
# own process group, so stop reaches kc.sh and its JVM. 9>&- 8>&-: not inherit the locks.
run_keycloak() {
  JAVA_HOME="$KC_JAVA_HOME" \
    KC_BOOTSTRAP_ADMIN_USERNAME=admin \
    KC_BOOTSTRAP_ADMIN_PASSWORD="$KEYCLOAK_ADMIN_PASSWORD" \
    KEYCLOAK_DOWNSTREAM_CLIENT_SECRET="$KEYCLOAK_DOWNSTREAM_CLIENT_SECRET" \
    setsid nohup "$DIST/bin/kc.sh" start --optimized "-Dkc.home.dir=$KC_HOME" \
    --http-enabled=true --http-host=127.0.0.1 --http-port="$PORT" \
    --hostname="$URL" \
    --http-management-port="$MPORT" \
    --cache=local \
    --import-realm \
    --log-level=info,io.smallrye.health:warn \
    --log-console-color=false \
    >"$1" 2>&1 </dev/null 9>&- 8>&- &
}

# check_java: sets JAVA_BUILD (java.vm.version: a class data archive fits only the JVM that wrote it).
check_java() {
  local settings version
  [[ -x "$KC_JAVA_HOME/bin/java" ]] \
    || fail "no Java at $KC_JAVA_HOME (KEYCLOAK_JAVA_HOME): Keycloak $VERSION needs Java 21 or later"
  settings="$("$KC_JAVA_HOME/bin/java" -XshowSettings:properties -version 2>&1)"
  version="$(awk -F' = ' '/java.specification.version/ { print $2 }' <<<"$settings")"
  ((${version%%.*} >= 21)) || fail "Keycloak $VERSION needs Java 21+, but $KC_JAVA_HOME has Java $version"
  JAVA_BUILD="$(awk -F' = ' '/java.vm.version/ { print $2 }' <<<"$settings")"
}

# dist_paths: the shared distribution for this version, build options and JVM, and its scratch paths.
dist_paths() {
  local build_id
  build_id="$(echo "$VERSION $DIST_SHA512 ${BUILD_OPTIONS[*]} $JAVA_BUILD" | sha256sum | cut -c1-12)"
  DIST="$SHARED/keycloak-$VERSION-$build_id"
  PREPARED="$DIST/.prepared"  # written last: without it, $DIST is incomplete
  CDS="$DIST/keycloak.jsa"    # class data archive of a first start (see train)
  CACHE="$DIST.fetch"         # lib.sh's fetch_jars: Maven's log
  LIBS="$CACHE/libs"          # the zip, while it is fetched and checked
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
  dist_paths
  mkdir -p "$RUN"
  resolve_dist
  if [[ -d "$ROOT/.cache/keycloak" ]]; then
    say "removing .cache/keycloak: the former per-checkout distribution (now shared in $SHARED)"
    rm -rf "$ROOT/.cache/keycloak"
  fi
  if [[ -d "$DATA" ]] && ! realm_current; then
    say "the realm file (or the downstream secret) changed since the last import: dropping .run/keycloak/data to import it anew"
    rm -rf "$DATA"
  fi
  mkdir -p "$DATA/import"
  [[ -d "$DATA/h2" ]] || say "first start on this database: importing realm $REALM from deploy/keycloak/onestop-realm.json"
  # --import-realm reads $DATA/import; a realm already in the database is left as it is.
  cp "$REALM_FILE" "$DATA/import/$REALM-realm.json"
  # Keycloak's home is this checkout's .run/keycloak: all it writes lands there. Its code stays in
  # the shared distribution, found through lib (where Keycloak also checks that it was built).
  ln -sfn "$DIST/lib" "$RUN/lib"
  [[ -f "$LOG" ]] && mv -f "$LOG" "$LOG.prev"
  say "starting Keycloak $VERSION on Java from $KC_JAVA_HOME (log: .run/keycloak/keycloak.log)..."
  # The JDK's own base archive was written without Keycloak's --add-opens, so the JVM reports that
  # it skips one module optimisation (as errors, though the archive is used): into cds.log.
  KC_HOME="$RUN" \
    JAVA_OPTS_APPEND="-XX:SharedArchiveFile=$CDS -Xlog:cds=off,aot=off -Xlog:cds=warning,aot=warning:file=$RUN/cds.log" \
    run_keycloak "$LOG"
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
