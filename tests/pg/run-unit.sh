#!/usr/bin/env bash
# Run the metadata-store unit tests (build/tests/test_meta*: the contract
# suite against SQLite and PostgreSQL) against a throwaway PostgreSQL server:
# this folder's start.sh, on its own port and dir so it never meets a server
# someone else started.  The server is stopped (and its dir removed) on every
# exit path, failures included.
#
#   tests/pg/run-unit.sh [BUILD_DIR]        (default: <repo>/build)
#
# Settings (environment): LAMFS_PG_PORT (15442), LAMFS_PG_DIR
# (${TMPDIR:-/tmp}/lamfs-pg-unit-<port>), KEEP_SERVER=1 leaves the server
# running (and prints how to stop it), LAMFS_TEST_FILTER picks cases ("pg_*").
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
BUILD=$(cd "${1:-$REPO/build}" && pwd)

export LAMFS_PG_PORT=${LAMFS_PG_PORT:-15442}
export LAMFS_PG_DIR=${LAMFS_PG_DIR:-${TMPDIR:-/tmp}/lamfs-pg-unit-$LAMFS_PG_PORT}

stop_server() {
  if [ "${KEEP_SERVER:-0}" = 1 ]; then
    echo "run-unit: server left running; stop it with:" \
      "LAMFS_PG_PORT=$LAMFS_PG_PORT LAMFS_PG_DIR=$LAMFS_PG_DIR $HERE/stop.sh" >&2
  else
    "$HERE/stop.sh" >/dev/null 2>&1 || true
  fi
}
trap stop_server EXIT
trap 'exit 130' INT TERM

info=$("$HERE/start.sh")
eval "$info"
# the server's restart, for the test that restarts it under a burst of saves
export LAMFS_TEST_PG_RESTART=$HERE/restart.sh
# nothing from the caller's libpq environment: the url says it all
unset PGHOST PGHOSTADDR PGPORT PGDATABASE PGUSER PGPASSWORD PGSERVICE PGOPTIONS \
      PGSSLMODE PGAPPNAME
export PGPASSFILE=/nonexistent/pgpass PGSERVICEFILE=/nonexistent/pg_service.conf

failed=0
ran=0
for t in "$BUILD"/tests/test_meta*; do
  [ -x "$t" ] || continue
  ran=$((ran + 1))
  echo "=== $(basename "$t")"
  if ! CMOCKA_MESSAGE_OUTPUT=STDOUT "$t"; then
    echo "=== $(basename "$t") FAILED"
    failed=$((failed + 1))
  fi
done
if [ "$ran" = 0 ]; then
  echo "run-unit: no test_meta programs under $BUILD/tests (build them first)" >&2
  exit 1
fi
echo "run-unit: $ran programs, $failed failed"
[ "$failed" = 0 ]
