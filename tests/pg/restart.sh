#!/usr/bin/env bash
# Restart the cluster start.sh made, as an operator would (tests use it to
# check that a mount survives it).  $1 is pg_ctl's shutdown mode: fast
# (default: sessions are terminated, open transactions rolled back) or
# immediate (a crash: recovery on start).  Same env knobs as start.sh.
set -euo pipefail
PORT=${LAMFS_PG_PORT:-15432}
DIR=${LAMFS_PG_DIR:-${TMPDIR:-/tmp}/lamfs-pg-$PORT}
BIN=${LAMFS_PG_BIN:-/usr/lib/postgresql/15/bin}
MODE=${1:-fast}
case $MODE in fast|immediate|smart) ;; *) echo "restart.sh: mode fast|immediate|smart" >&2; exit 2 ;; esac
[ -f "$DIR/data/postmaster.pid" ] || { echo "restart.sh: no cluster running in $DIR" >&2; exit 1; }
if [ "$(id -u)" -eq 0 ]; then run() { runuser -u postgres -- "$@"; }; else run() { "$@"; }; fi
run "$BIN/pg_ctl" -D "$DIR/data" -m "$MODE" -w -t 60 stop >/dev/null
run "$BIN/pg_ctl" -D "$DIR/data" -l "$DIR/log/postgres.log" -w -t 60 start >/dev/null
