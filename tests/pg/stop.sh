#!/usr/bin/env bash
# Stop the throwaway cluster start.sh made and delete its directory.
# Same env knobs as start.sh (LAMFS_PG_PORT, LAMFS_PG_DIR, LAMFS_PG_BIN);
# LAMFS_PG_KEEP=1 stops the server but keeps the directory (data and log).
set -u
PORT=${LAMFS_PG_PORT:-15432}
DIR=${LAMFS_PG_DIR:-${TMPDIR:-/tmp}/lamfs-pg-$PORT}
BIN=${LAMFS_PG_BIN:-/usr/lib/postgresql/15/bin}

[ -d "$DIR" ] || exit 0
if [ -f "$DIR/data/postmaster.pid" ]; then
  if [ "$(id -u)" -eq 0 ]; then
    runuser -u postgres -- "$BIN/pg_ctl" -D "$DIR/data" -m fast -w -t 60 stop >/dev/null 2>&1 \
      || runuser -u postgres -- "$BIN/pg_ctl" -D "$DIR/data" -m immediate -w stop >/dev/null 2>&1
  else
    "$BIN/pg_ctl" -D "$DIR/data" -m fast -w -t 60 stop >/dev/null 2>&1 \
      || "$BIN/pg_ctl" -D "$DIR/data" -m immediate -w stop >/dev/null 2>&1
  fi
fi
[ "${LAMFS_PG_KEEP:-0}" = 1 ] || rm -rf "${DIR:?}"
exit 0
