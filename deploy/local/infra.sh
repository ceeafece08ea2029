#!/usr/bin/env bash
# Project-local infrastructure WITHOUT Docker, for `make run`, `make test` and CI:
#   * a PostgreSQL cluster of our own (initdb'd here; never the Debian cluster), and
#   * a single-node Apache Kafka broker in KRaft combined mode (broker+controller),
#     run straight from the Maven Central jars (fetched once into a cache outside
#     the checkout).
#
# Usage: deploy/local/infra.sh start|stop|status|env
#   start   idempotent; reuses running services; returns once both are really ready
#   stop    stops both
#   status  prints state; exit 0 if both run, 3 otherwise
#   env     prints `export DATABASE_URL=...` / `export KAFKA_BOOTSTRAP_SERVERS=...`
#           (use: eval "$(deploy/local/infra.sh env)")
#
# Settings (environment, with defaults):
#   (the default ports sit below Linux's ephemeral range, 32768-60999, so that no
#   outgoing connection can hold one of them when a service binds it)
#   DROPSHIP_PG_PORT                 25432
#   DROPSHIP_KAFKA_PORT              29092
#   DROPSHIP_KAFKA_CONTROLLER_PORT   29093
#   DROPSHIP_STATE_DIR               <repo root>/.local   (pid files, logs, Kafka data)
#   DROPSHIP_PG_DATA                 $DROPSHIP_STATE_DIR/pg, or /var/tmp/dropship-pg-<hash>/data
#                                    when running as root and the state dir is not
#                                    reachable by the `postgres` OS user
#   DROPSHIP_KAFKA_VERSION           4.1.1
#   DROPSHIP_CACHE_DIR               ${XDG_CACHE_HOME:-$HOME/.cache}/dropship  (Kafka jars)
#   DROPSHIP_START_TIMEOUT           60   (seconds to wait for each service)
set -euo pipefail

# ----------------------------------------------------------------------------- paths
SCRIPT_DIR="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)"
REPO_ROOT="$(cd -- "$SCRIPT_DIR/../.." && pwd -P)"

PG_PORT="${DROPSHIP_PG_PORT:-25432}"
KAFKA_PORT="${DROPSHIP_KAFKA_PORT:-29092}"
KAFKA_CTRL_PORT="${DROPSHIP_KAFKA_CONTROLLER_PORT:-29093}"
STATE_DIR="${DROPSHIP_STATE_DIR:-$REPO_ROOT/.local}"
KAFKA_VERSION="${DROPSHIP_KAFKA_VERSION:-4.1.1}"
CACHE_DIR="${DROPSHIP_CACHE_DIR:-${XDG_CACHE_HOME:-${HOME:-/tmp}/.cache}/dropship}"
START_TIMEOUT="${DROPSHIP_START_TIMEOUT:-60}"
HOST=127.0.0.1

DB_NAME=dropship
DB_USER=dropship
DB_PASSWORD=dropship

PG_LOG="$STATE_DIR/postgres.log"
KAFKA_DIR="$STATE_DIR/kafka"
KAFKA_DATA="$KAFKA_DIR/data"
KAFKA_CONF="$KAFKA_DIR/server.properties"
KAFKA_LOG="$STATE_DIR/kafka.log"
KAFKA_PID="$STATE_DIR/kafka.pid"
KAFKA_LIBS="$CACHE_DIR/kafka-$KAFKA_VERSION/libs"
LOCK_FILE="$STATE_DIR/infra.lock"

# ----------------------------------------------------------------------------- helpers
say() { printf '%s\n' "$*" >&2; }
die() { say "infra.sh: error: $*"; exit 1; }

# die with the last 40 lines of a log file
die_with_log() {
  local log="$1"; shift
  say "infra.sh: error: $*"
  if [[ -f "$log" ]]; then
    say "----- last 40 lines of $log -----"
    tail -n 40 -- "$log" >&2 || true
    say "----- end of $log -----"
  fi
  exit 1
}

is_root() { [[ "$(id -u)" -eq 0 ]]; }

# Prefix for `bash -c` launchers of long-lived servers: close every inherited fd
# above 2 (our flock fd, a CI runner's pipes, ...) so the servers never keep the
# caller's lock or pipes open after this script has exited.
# shellcheck disable=SC2016  # expanded by the launched bash, not here
CLOSE_FDS='for fd in $(ls /proc/$$/fd); do [ "$fd" -gt 2 ] && eval "exec $fd>&-" 2>/dev/null; done; '

tcp_open() { # host port
  (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null
}

# ----------------------------------------------------------------------------- postgres
PG_BIN=""
find_pg_bin() {
  local d newest=""
  for d in /usr/lib/postgresql/*/bin; do
    [[ -x "$d/initdb" && -x "$d/pg_ctl" ]] || continue
    if [[ -z "$newest" ]] || [[ "$(basename "$(dirname "$d")")" -gt "$(basename "$(dirname "$newest")")" ]]; then
      newest="$d"
    fi
  done
  PG_BIN="$newest"
}

ensure_pg_installed() {
  find_pg_bin
  [[ -n "$PG_BIN" ]] && return 0
  is_root || die "PostgreSQL server binaries not found under /usr/lib/postgresql/*/bin; install them: sudo apt-get install -y postgresql"
  say "postgres: binaries not found, installing the Debian 'postgresql' package (apt-get)..."
  DEBIAN_FRONTEND=noninteractive apt-get update -q >"$STATE_DIR/apt.log" 2>&1 \
    || die_with_log "$STATE_DIR/apt.log" "apt-get update failed"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql >>"$STATE_DIR/apt.log" 2>&1 \
    || die_with_log "$STATE_DIR/apt.log" "apt-get install postgresql failed"
  find_pg_bin
  [[ -n "$PG_BIN" ]] || die "postgresql installed but no /usr/lib/postgresql/*/bin/initdb found"
}

# initdb/pg_ctl refuse to run as root: run them as the `postgres` OS user then.
PG_OS_USER=""
ensure_pg_os_user() {
  is_root || return 0
  PG_OS_USER=postgres
  if ! getent passwd postgres >/dev/null; then
    say "postgres: creating system user 'postgres'"
    useradd --system --user-group --home-dir /var/lib/postgresql --no-create-home \
      --shell /bin/bash postgres
  fi
}

run_pg() { # run a command as the cluster owner, from a cwd it can read
  if is_root; then
    (cd / && runuser -u "$PG_OS_USER" -- "$@")
  else
    (cd / && "$@")
  fi
}

# Where the cluster lives. As root, the data dir must be reachable by `postgres`:
# if the state dir is not (e.g. the checkout is in a mode-700 home dir), use /var/tmp.
PG_DATA=""
resolve_pg_data() {
  if [[ -n "${DROPSHIP_PG_DATA:-}" ]]; then
    PG_DATA="$DROPSHIP_PG_DATA"
    [[ "$PG_DATA" == /* ]] || PG_DATA="$PWD/$PG_DATA"
    return
  fi
  PG_DATA="$STATE_DIR/pg"
  if is_root; then
    local probe="$STATE_DIR"
    while [[ ! -e "$probe" && "$probe" != "/" ]]; do probe="$(dirname -- "$probe")"; done
    if ! getent passwd postgres >/dev/null || ! (cd / && runuser -u postgres -- test -x "$probe") 2>/dev/null; then
      local h
      h="$(printf '%s' "$REPO_ROOT" | sha1sum | cut -c1-8)"
      PG_DATA="/var/tmp/dropship-pg-$h/data"
    fi
  fi
}

# unix socket dir: inside the data dir unless the socket path would be too long
pg_socket_dir() {
  local d="$PG_DATA/run"
  if (( ${#d} + 20 > 100 )); then d=/tmp; fi
  printf '%s' "$d"
}

pg_accepts_our_user() {
  PGCONNECT_TIMEOUT=3 "$PG_BIN/psql" -X -q -t -A -w \
    "postgresql://$DB_USER:$DB_PASSWORD@$HOST:$PG_PORT/$DB_NAME" -c 'select 1' >/dev/null 2>&1
}

pg_is_ours_running() { # our data dir has a live postmaster
  [[ -n "$PG_BIN" && -f "$PG_DATA/postmaster.pid" ]] || return 1
  run_pg "$PG_BIN/pg_ctl" status -D "$PG_DATA" >/dev/null 2>&1
}

pg_running_port() { # port recorded by our running postmaster
  sed -n 4p "$PG_DATA/postmaster.pid" 2>/dev/null || true
}

pg_initdb() {
  say "postgres: initialising cluster in $PG_DATA (PostgreSQL $(basename "$(dirname "$PG_BIN")"))"
  local parent
  parent="$(dirname -- "$PG_DATA")"
  mkdir -p -- "$parent" "$PG_DATA"
  if is_root; then
    # /var/tmp/dropship-pg-<hash>: keep the parent private to postgres as well
    if [[ "$parent" == /var/tmp/dropship-pg-* ]]; then chown "$PG_OS_USER:" "$parent"; chmod 700 "$parent"; fi
    chown "$PG_OS_USER:" "$PG_DATA"
  fi
  chmod 700 "$PG_DATA"
  local initlog="$STATE_DIR/postgres-initdb.log"
  run_pg "$PG_BIN/initdb" -D "$PG_DATA" -U postgres -A trust -E UTF8 --locale=C \
    >"$initlog" 2>&1 || die_with_log "$initlog" "initdb failed"
  cat >>"$PG_DATA/postgresql.conf" <<'EOF'

# ---- dropship local dev/test cluster (deploy/local/infra.sh) ----
max_connections = 300
shared_buffers = 256MB
fsync = on
synchronous_commit = on
# port / listen_addresses / unix_socket_directories are (re)written on each start:
include_if_exists = 'dropship-runtime.conf'
EOF
  # trust on loopback only (dev cluster); no other host can connect anyway
  cat >"$PG_DATA/pg_hba.conf" <<'EOF'
# dropship local dev/test cluster: trust on loopback only
local   all   all                  trust
host    all   all   127.0.0.1/32   trust
host    all   all   ::1/128        trust
EOF
  if is_root; then chown "$PG_OS_USER:" "$PG_DATA/postgresql.conf" "$PG_DATA/pg_hba.conf"; fi
}

pg_write_runtime_conf() {
  local sock
  sock="$(pg_socket_dir)"
  if [[ "$sock" != /tmp ]]; then
    mkdir -p -- "$sock"; chmod 700 "$sock"
    if is_root; then chown "$PG_OS_USER:" "$sock"; fi
  fi
  cat >"$PG_DATA/dropship-runtime.conf" <<EOF
# written by deploy/local/infra.sh on every start
port = $PG_PORT
listen_addresses = '$HOST'
unix_socket_directories = '$sock'
# 1,000 orders/s write about 10 MB of WAL a second: with the default 1GB, a checkpoint started on WAL volume every
# minute or so, each followed by a burst of full-page images that stalled the pipeline for seconds.
max_wal_size = 4GB
EOF
  if is_root; then chown "$PG_OS_USER:" "$PG_DATA/dropship-runtime.conf"; fi
}

pg_bootstrap_db() { # idempotent: role + database
  local psql=("$PG_BIN/psql" -X -q -w -v ON_ERROR_STOP=1 -h "$HOST" -p "$PG_PORT" -U postgres)
  "${psql[@]}" -d postgres >/dev/null <<EOF || die_with_log "$PG_LOG" "could not create role/database '$DB_NAME'"
DO \$\$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '$DB_USER') THEN
    CREATE ROLE $DB_USER LOGIN SUPERUSER PASSWORD '$DB_PASSWORD';
  END IF;
END
\$\$;
SELECT 'CREATE DATABASE $DB_NAME OWNER $DB_USER'
 WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = '$DB_NAME')\gexec
EOF
}

pg_start() {
  local t0=$SECONDS
  if pg_is_ours_running; then
    local running_port
    running_port="$(pg_running_port)"
    [[ "$running_port" == "$PG_PORT" ]] \
      || die "postgres: our cluster ($PG_DATA) is running on port $running_port, not $PG_PORT; run '$0 stop' first"
    pg_wait_ready "$t0" reuse
    return
  fi
  if tcp_open "$HOST" "$PG_PORT"; then
    # something else listens on our port: reuse it only if it is a usable dropship database
    if pg_accepts_our_user; then
      say "postgres: WARNING: reusing a server on $HOST:$PG_PORT that is not managed by this checkout ($PG_DATA)"
      return
    fi
    die "postgres: port $HOST:$PG_PORT is in use by another process; set DROPSHIP_PG_PORT"
  fi

  if [[ ! -f "$PG_DATA/PG_VERSION" ]]; then
    pg_initdb
  fi
  local major have
  major="$(basename "$(dirname "$PG_BIN")")"
  have="$(cat "$PG_DATA/PG_VERSION")"
  [[ "$have" == "$major" ]] \
    || die "postgres: $PG_DATA was created by PostgreSQL $have but the newest binaries are $major; remove $PG_DATA to re-create it"
  pg_write_runtime_conf

  if [[ -f "$PG_LOG" ]]; then mv -f -- "$PG_LOG" "$PG_LOG.1"; fi
  # The log is opened by this shell (not by `postgres`), so it can live in the
  # state dir whatever its permissions.
  if ! run_pg bash -c "$CLOSE_FDS"'exec "$@"' pg-launch \
        "$PG_BIN/pg_ctl" start -D "$PG_DATA" -w -t "$START_TIMEOUT" -s </dev/null >>"$PG_LOG" 2>&1; then
    die_with_log "$PG_LOG" "postgres: pg_ctl start failed"
  fi
  pg_wait_ready "$t0" start
}

pg_wait_ready() { # t0 mode
  local t0="$1" mode="$2" deadline=$((SECONDS + START_TIMEOUT)) bootstrapped=""
  while :; do
    if "$PG_BIN/pg_isready" -q -h "$HOST" -p "$PG_PORT" -U postgres -d postgres -t 2 >/dev/null 2>&1; then
      if [[ -z "$bootstrapped" ]]; then pg_bootstrap_db; bootstrapped=1; fi
      if pg_accepts_our_user; then break; fi
    fi
    if (( SECONDS >= deadline )); then
      die_with_log "$PG_LOG" "postgres: not accepting connections as '$DB_USER' on $HOST:$PG_PORT after ${START_TIMEOUT}s"
    fi
    sleep 0.2
  done
  if [[ "$mode" == reuse ]]; then
    say "postgres: already running on $HOST:$PG_PORT (data: $PG_DATA)"
  else
    say "postgres: started on $HOST:$PG_PORT in $((SECONDS - t0))s (data: $PG_DATA)"
  fi
}

pg_stop() {
  if [[ -z "$PG_BIN" ]]; then say "postgres: not installed"; return 0; fi
  if pg_is_ours_running; then
    run_pg "$PG_BIN/pg_ctl" stop -D "$PG_DATA" -m fast -w -t 60 -s >/dev/null \
      || die_with_log "$PG_LOG" "postgres: pg_ctl stop failed"
    say "postgres: stopped"
  else
    say "postgres: not running"
  fi
}

# ----------------------------------------------------------------------------- kafka
JAVA_BIN=""
ensure_java_and_maven() { # only maven when jars are missing
  local need_mvn="$1" pkgs=()
  JAVA_BIN="$(command -v java || true)"
  [[ -n "$JAVA_BIN" ]] || pkgs+=(openjdk-17-jre-headless)
  if [[ "$need_mvn" == yes ]] && ! command -v mvn >/dev/null; then pkgs+=(maven); fi
  (( ${#pkgs[@]} == 0 )) && return 0
  is_root || die "missing ${pkgs[*]}; install them (apt-get install -y ${pkgs[*]})"
  say "kafka: installing ${pkgs[*]} (apt-get)..."
  { DEBIAN_FRONTEND=noninteractive apt-get update -q && \
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${pkgs[@]}"; } >"$STATE_DIR/apt.log" 2>&1 \
    || die_with_log "$STATE_DIR/apt.log" "apt-get install ${pkgs[*]} failed"
  JAVA_BIN="$(command -v java)"
}

kafka_libs_ok() { [[ -f "$KAFKA_LIBS/kafka_2.13-$KAFKA_VERSION.jar" ]]; }

ensure_kafka_libs() {
  if kafka_libs_ok; then ensure_java_and_maven no; return; fi
  ensure_java_and_maven yes
  local t0=$SECONDS base tmp mlog
  base="$(dirname -- "$KAFKA_LIBS")"
  mkdir -p -- "$base"
  tmp="$(mktemp -d "$base/.download.XXXXXX")"
  mlog="$STATE_DIR/maven.log"
  say "kafka: fetching Apache Kafka $KAFKA_VERSION jars with Maven into $KAFKA_LIBS (first run only)..."
  cp -- "$SCRIPT_DIR/kafka/pom.xml" "$tmp/pom.xml"
  if ! (cd "$tmp" && mvn -q -B -Dstyle.color=never -f "$tmp/pom.xml" \
          -Dkafka.version="$KAFKA_VERSION" \
          dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$tmp/libs") \
        >"$mlog" 2>&1 9>&-; then
    rm -rf -- "$tmp"
    die_with_log "$mlog" "kafka: maven could not fetch org.apache.kafka:kafka_2.13:$KAFKA_VERSION"
  fi
  [[ -f "$tmp/libs/kafka_2.13-$KAFKA_VERSION.jar" ]] || { rm -rf -- "$tmp"; die_with_log "$mlog" "kafka: maven produced no kafka_2.13-$KAFKA_VERSION.jar"; }
  # atomic publish; if a concurrent run (another checkout) won the race, keep theirs
  if ! mv -T -- "$tmp/libs" "$KAFKA_LIBS" 2>/dev/null; then
    kafka_libs_ok || { rm -rf -- "$tmp"; die "kafka: could not move jars into $KAFKA_LIBS"; }
  fi
  rm -rf -- "$tmp"
  say "kafka: jars cached in ${KAFKA_LIBS} ($((SECONDS - t0))s)"
}

kafka_pid() { # prints the pid of our running broker, or fails
  local pid
  [[ -f "$KAFKA_PID" ]] || return 1
  pid="$(cat -- "$KAFKA_PID" 2>/dev/null)" || return 1
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  # guard against pid reuse: must be a kafka.Kafka running our config
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "kafka.Kafka $KAFKA_CONF" || return 1
  printf '%s\n' "$pid"
}

# slf4j-simple logging: INFO (the readiness line "Kafka Server started" is INFO),
# with the noisiest startup loggers (config dumps, per-partition log loading) at WARN.
KAFKA_LOG_OPTS=(
  -Dorg.slf4j.simpleLogger.defaultLogLevel=info
  -Dorg.slf4j.simpleLogger.showDateTime=true
  "-Dorg.slf4j.simpleLogger.dateTimeFormat=yyyy-MM-dd'T'HH:mm:ss.SSS"
  -Dorg.slf4j.simpleLogger.log.org.apache.kafka.common.config.AbstractConfig=warn
  -Dorg.slf4j.simpleLogger.log.org.apache.kafka.common.utils.AppInfoParser=warn
  -Dorg.slf4j.simpleLogger.log.org.apache.kafka.storage.internals.log=warn
  -Dorg.slf4j.simpleLogger.log.kafka.log=warn
  -Dorg.slf4j.simpleLogger.log.state.change.logger=warn
)

kafka_java() { # short-lived Kafka tool JVM (StorageTool, TopicCommand, ...)
  "$JAVA_BIN" -cp "$KAFKA_LIBS/*" "${KAFKA_LOG_OPTS[@]}" "$@"
}

kafka_write_config() {
  mkdir -p -- "$KAFKA_DIR" "$KAFKA_DATA"
  cat >"$KAFKA_CONF" <<EOF
# written by deploy/local/infra.sh on every start -- edit the script, not this file
process.roles=broker,controller
node.id=1
controller.quorum.bootstrap.servers=$HOST:$KAFKA_CTRL_PORT
listeners=PLAINTEXT://$HOST:$KAFKA_PORT,CONTROLLER://$HOST:$KAFKA_CTRL_PORT
advertised.listeners=PLAINTEXT://$HOST:$KAFKA_PORT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$KAFKA_DATA
num.partitions=4
offsets.topic.replication.factor=1
offsets.topic.num.partitions=4
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=false
delete.topic.enable=true
EOF
}

kafka_format_once() {
  local marker="$KAFKA_DIR/formatted-ports"
  if [[ -f "$KAFKA_DATA/meta.properties" ]]; then
    if [[ -f "$marker" && "$(cat "$marker")" != "$KAFKA_CTRL_PORT" ]]; then
      die "kafka: $KAFKA_DATA was formatted with controller port $(cat "$marker"), now $KAFKA_CTRL_PORT; run '$0 stop' and remove $KAFKA_DIR to re-format"
    fi
    return 0
  fi
  local cid flog="$STATE_DIR/kafka-format.log"
  cid="$(kafka_java kafka.tools.StorageTool random-uuid 2>"$flog")" || die_with_log "$flog" "kafka: StorageTool random-uuid failed"
  cid="$(printf '%s' "$cid" | tail -n 1 | tr -d '[:space:]')"
  say "kafka: formatting $KAFKA_DATA (cluster id $cid)"
  kafka_java kafka.tools.StorageTool format --standalone -t "$cid" -c "$KAFKA_CONF" >>"$flog" 2>&1 \
    || die_with_log "$flog" "kafka: StorageTool format failed"
  printf '%s\n' "$KAFKA_CTRL_PORT" >"$marker"
}

KAFKA_T0=""
KAFKA_MODE=""
kafka_launch() { # starts the broker in the background (does not wait)
  KAFKA_T0=$SECONDS
  if kafka_pid >/dev/null; then
    KAFKA_MODE=reuse
    return
  fi
  if tcp_open "$HOST" "$KAFKA_PORT" || tcp_open "$HOST" "$KAFKA_CTRL_PORT"; then
    die "kafka: port $HOST:$KAFKA_PORT or $HOST:$KAFKA_CTRL_PORT is in use by a process not started by this checkout ($KAFKA_PID); stop it or set DROPSHIP_KAFKA_PORT / DROPSHIP_KAFKA_CONTROLLER_PORT"
  fi
  ensure_kafka_libs
  kafka_write_config
  kafka_format_once
  rm -f -- "$KAFKA_PID"
  if [[ -f "$KAFKA_LOG" ]]; then mv -f -- "$KAFKA_LOG" "$KAFKA_LOG.1"; fi
  # New session (setsid) so it survives the caller's terminal/CI step; the child
  # writes its own pid before exec'ing java; inherited fds are closed for it.
  # shellcheck disable=SC2016
  setsid bash -c "$CLOSE_FDS"'echo $$ >"$1"; shift; exec "$@"' kafka-launch "$KAFKA_PID" \
    "$JAVA_BIN" -Xms256m -Xmx512m -XX:+UseG1GC -XX:+ExitOnOutOfMemoryError \
    -Djava.awt.headless=true \
    -cp "$KAFKA_LIBS/*" "${KAFKA_LOG_OPTS[@]}" \
    kafka.Kafka "$KAFKA_CONF" \
    </dev/null >>"$KAFKA_LOG" 2>&1 &
  KAFKA_MODE=start
}

kafka_started_in_log() {
  grep -qE 'Kafka Server started|started \(kafka\.server\.KafkaRaftServer\)' -- "$KAFKA_LOG" 2>/dev/null
}

kafka_wait_ready() {
  local deadline=$((SECONDS + START_TIMEOUT)) pid=""
  while :; do
    pid="$(kafka_pid || true)"
    if [[ -n "$pid" ]] && tcp_open "$HOST" "$KAFKA_PORT" && kafka_started_in_log; then
      break
    fi
    if [[ -z "$pid" && -s "$KAFKA_PID" ]] && ! kill -0 "$(cat "$KAFKA_PID")" 2>/dev/null; then
      die_with_log "$KAFKA_LOG" "kafka: broker process exited during startup"
    fi
    if (( SECONDS >= deadline )); then
      die_with_log "$KAFKA_LOG" "kafka: not ready on $HOST:$KAFKA_PORT after ${START_TIMEOUT}s"
    fi
    sleep 0.25
  done
  if [[ "$KAFKA_MODE" == reuse ]]; then
    say "kafka: already running on $HOST:$KAFKA_PORT (pid $pid, data: $KAFKA_DATA)"
  else
    say "kafka: ready on $HOST:$KAFKA_PORT in $((SECONDS - KAFKA_T0))s (pid $pid, data: $KAFKA_DATA)"
  fi
}

kafka_stop() {
  local pid
  if ! pid="$(kafka_pid)"; then
    rm -f -- "$KAFKA_PID"
    say "kafka: not running"
    return 0
  fi
  kill -TERM "$pid" 2>/dev/null || true
  local deadline=$((SECONDS + 60))
  while kill -0 "$pid" 2>/dev/null; do
    if (( SECONDS >= deadline )); then
      say "kafka: pid $pid did not exit after 60s, sending SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
      sleep 0.5
      break
    fi
    sleep 0.2
  done
  rm -f -- "$KAFKA_PID"
  say "kafka: stopped"
}

# ----------------------------------------------------------------------------- commands
take_lock() {
  # shellcheck disable=SC2174  # only the state dir itself needs 755 (postgres must traverse it)
  mkdir -p -m 755 -- "$STATE_DIR"
  exec 9>>"$LOCK_FILE"
  if ! flock -w 900 9; then die "timed out waiting for the lock $LOCK_FILE"; fi
}

cmd_start() {
  take_lock
  local t0=$SECONDS
  ensure_pg_installed
  ensure_pg_os_user
  resolve_pg_data
  kafka_launch          # Kafka boots in the background while PostgreSQL starts
  pg_start
  kafka_wait_ready
  say "infra: ready in $((SECONDS - t0))s  (eval \"\$($0 env)\")"
}

cmd_stop() {
  take_lock
  find_pg_bin
  if getent passwd postgres >/dev/null; then PG_OS_USER=postgres; fi
  if is_root && [[ -z "$PG_OS_USER" ]]; then
    say "postgres: not running (no postgres user)"
  else
    resolve_pg_data
    pg_stop
  fi
  kafka_stop
}

cmd_status() {
  local rc=0 pg_state kafka_state pid
  find_pg_bin
  if getent passwd postgres >/dev/null; then PG_OS_USER=postgres; fi
  resolve_pg_data
  if [[ -z "$PG_BIN" ]]; then
    pg_state="not installed"; rc=3
  elif pg_is_ours_running && [[ "$(pg_running_port)" == "$PG_PORT" ]] && pg_accepts_our_user; then
    pg_state="running (pid $(head -n 1 "$PG_DATA/postmaster.pid"))"
  elif pg_is_ours_running; then
    pg_state="running but not usable on port $PG_PORT (postmaster port $(pg_running_port))"; rc=3
  elif pg_accepts_our_user; then
    pg_state="running (NOT managed by this checkout)"; rc=3
  else
    pg_state="stopped"; rc=3
  fi
  if pid="$(kafka_pid)" && tcp_open "$HOST" "$KAFKA_PORT"; then
    kafka_state="running (pid $pid)"
  elif pid="$(kafka_pid)"; then
    kafka_state="starting or unhealthy (pid $pid, port closed)"; rc=3
  elif tcp_open "$HOST" "$KAFKA_PORT"; then
    kafka_state="port open but NOT managed by this checkout"; rc=3
  else
    kafka_state="stopped"; rc=3
  fi
  printf 'postgres: %-40s %s:%s  data=%s  log=%s\n' "$pg_state" "$HOST" "$PG_PORT" "$PG_DATA" "$PG_LOG"
  printf 'kafka:    %-40s %s:%s (controller %s)  data=%s  log=%s  jars=%s\n' \
    "$kafka_state" "$HOST" "$KAFKA_PORT" "$KAFKA_CTRL_PORT" "$KAFKA_DATA" "$KAFKA_LOG" "$KAFKA_LIBS"
  return "$rc"
}

cmd_env() {
  printf 'export DATABASE_URL=%s\n' "postgresql+asyncpg://$DB_USER:$DB_PASSWORD@$HOST:$PG_PORT/$DB_NAME"
  printf 'export KAFKA_BOOTSTRAP_SERVERS=%s\n' "$HOST:$KAFKA_PORT"
}

usage() {
  say "usage: $0 start|stop|status|env"
}

main() {
  case "${1:-}" in
    start)  cmd_start ;;
    stop)   cmd_stop ;;
    status) cmd_status ;;
    env)    cmd_env ;;
    -h|--help|help) usage ;;
    *) usage; exit 2 ;;
  esac
}

main "$@"
