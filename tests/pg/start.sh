#!/usr/bin/env bash
# Start a throwaway PostgreSQL cluster for the lamfs tests: Debian's
# PostgreSQL 15 binaries (initdb, pg_ctl), a fresh data directory in a temp
# dir, listening only on 127.0.0.1:<port> and on a unix socket in that dir.
# It creates a login role with a password (scram-sha-256 over TCP, so the
# tests go through real password authentication) owning one database.
#
# Idempotent: when the cluster at the same dir is already running and
# answering, it only prints the info.  Run as root, the server runs as the
# `postgres` user (PostgreSQL refuses to run as root); otherwise as the caller.
#
# Env knobs:
#   LAMFS_PG_PORT   TCP port on 127.0.0.1                     [15432]
#   LAMFS_PG_DIR    state dir (data, socket, log, url)        [${TMPDIR:-/tmp}/lamfs-pg-<port>]
#   LAMFS_PG_DB     database to create                        [lamfs_test]
#   LAMFS_PG_USER   role to create (owner of the database)    [lamfs]
#   LAMFS_PG_BIN    PostgreSQL binaries                        [/usr/lib/postgresql/15/bin]
# Prints shell-sourceable lines:
#   export LAMFS_TEST_PG_URL=postgresql://USER:PASSWORD@127.0.0.1:PORT/DB
#   export LAMFS_TEST_PG_SOCKET_DIR=... LAMFS_TEST_PG_DIR=...
# (the password is a random one of this throwaway cluster).
set -euo pipefail

PORT=${LAMFS_PG_PORT:-15432}
DIR=${LAMFS_PG_DIR:-${TMPDIR:-/tmp}/lamfs-pg-$PORT}
DB=${LAMFS_PG_DB:-lamfs_test}
ROLE=${LAMFS_PG_USER:-lamfs}
BIN=${LAMFS_PG_BIN:-/usr/lib/postgresql/15/bin}

log() { echo "[pg-test-server] $*" >&2; }

# Run a PostgreSQL program as the cluster's owner.
if [ "$(id -u)" -eq 0 ]; then
  OWNER=postgres
  as_owner() { runuser -u postgres -- "$@"; }
else
  OWNER=$(id -un)
  as_owner() { "$@"; }
fi

print_info() {
  echo "export LAMFS_TEST_PG_URL=$(cat "$DIR/url")"
  echo "export LAMFS_TEST_PG_SOCKET_DIR=$DIR/sock"
  echo "export LAMFS_TEST_PG_DIR=$DIR"
}

ready() {
  as_owner "$BIN/pg_isready" -q -h "$DIR/sock" -p "$PORT" -d postgres -U postgres 2>/dev/null
}

# ---------- already running? ----------
if [ -f "$DIR/url" ] && [ -f "$DIR/data/postmaster.pid" ] && ready; then
  log "already running in $DIR"
  print_info
  exit 0
fi

# ---------- packages ----------
if [ ! -x "$BIN/initdb" ]; then
  log "installing postgresql-15"
  [ "$(id -u)" -eq 0 ] || { log "$BIN/initdb missing; run: sudo apt-get install postgresql-15"; exit 1; }
  export DEBIAN_FRONTEND=noninteractive
  # Debian's package would start its own cluster on 5432; keep it from starting.
  PRC=/usr/sbin/policy-rc.d; added_prc=0
  if [ ! -e $PRC ]; then printf '#!/bin/sh\nexit 101\n' > $PRC && chmod 755 $PRC && added_prc=1; fi
  apt-get install -y -qq --no-install-recommends postgresql-15 >/dev/null \
    || { apt-get update -qq && apt-get install -y -qq --no-install-recommends postgresql-15 >/dev/null; }
  [ $added_prc = 1 ] && rm -f $PRC
fi

# ---------- a fresh cluster ----------
if [ -f "$DIR/data/postmaster.pid" ]; then
  as_owner "$BIN/pg_ctl" -D "$DIR/data" -m immediate -w stop >/dev/null 2>&1 || true
fi
rm -rf "${DIR:?}"
mkdir -p "$DIR"/{sock,log}
chmod 0755 "$DIR"
[ "$OWNER" = "$(id -un)" ] || chown -R "$OWNER" "$DIR"

PASSWORD=$(head -c 18 /dev/urandom | base64 | tr '+/' 'xy')
umask 077
printf '%s\n' "$PASSWORD" > "$DIR/pwfile.tmp"
[ "$OWNER" = "$(id -un)" ] || chown "$OWNER" "$DIR/pwfile.tmp"
as_owner "$BIN/initdb" -D "$DIR/data" -U postgres -E UTF8 --locale=C \
  --auth-local=trust --auth-host=scram-sha-256 >"$DIR/log/initdb.log" 2>&1 \
  || { log "initdb failed; see $DIR/log/initdb.log"; tail -20 "$DIR/log/initdb.log" >&2; exit 1; }
rm -f "$DIR/pwfile.tmp"
cat >> "$DIR/data/postgresql.conf" <<CONF
# lamfs test cluster
listen_addresses = '127.0.0.1'
port = $PORT
unix_socket_directories = '$DIR/sock'
max_connections = 40
shared_buffers = 32MB
logging_collector = off
log_min_messages = warning
log_line_prefix = '%m [%p] %a '
# A test cluster never outlives its machine, and the tests' crashes are
# process crashes (pg_ctl -m immediate), which lose nothing fsync keeps.
# Every store made here holds LaminDB's schema (some 600 relations): with
# fsync on, a restart's checkpoint took ~50 s on a shared disk.
fsync = off
CONF

T0=$(date +%s.%N)
as_owner "$BIN/pg_ctl" -D "$DIR/data" -l "$DIR/log/postgres.log" -w -t 60 start >/dev/null \
  || { log "pg_ctl start failed; see $DIR/log/postgres.log"; tail -20 "$DIR/log/postgres.log" >&2; exit 1; }

# Constant names from the knobs above; the password goes in as a psql variable.
as_owner "$BIN/psql" -q -v ON_ERROR_STOP=1 -h "$DIR/sock" -p "$PORT" -U postgres -d postgres \
  -v role="$ROLE" -v pw="$PASSWORD" -v db="$DB" <<'SQL' >/dev/null
CREATE ROLE :"role" LOGIN PASSWORD :'pw';
CREATE DATABASE :"db" OWNER :"role" ENCODING 'UTF8' TEMPLATE template0;
SQL
umask 022
echo "postgresql://$ROLE:$PASSWORD@127.0.0.1:$PORT/$DB" > "$DIR/url"
chmod 0644 "$DIR/url"
T1=$(date +%s.%N)
log "ready in $(awk "BEGIN { printf \"%.1f\", $T1 - $T0 }")s: 127.0.0.1:$PORT and $DIR/sock, database $DB"
print_info
