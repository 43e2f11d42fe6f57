# shellcheck shell=bash
# pgenv.sh — a throwaway PostgreSQL server for lamfs's end-to-end tests.
# Sourced by lib.sh (it only defines functions).  The server is the project's
# own (tests/pg: Debian's PostgreSQL 15, a fresh cluster on 127.0.0.1 with
# password authentication), started by the test on a free port and stopped
# (its directory removed) by the test's EXIT trap.
#
#   pg_server_start [PORT]  start it (first free port from PORT, default
#                           15480); exports E2E_PG_URL (postgresql://USER@
#                           127.0.0.1:PORT/DB, no password: the password is in
#                           $WORK/pgpass, exported as PGPASSFILE, as libpq
#                           wants it) and LAMFS_PG_PORT/LAMFS_PG_DIR
#   pg_server_stop          stop it and remove its directory
#   pg_restart [MODE]       tests/pg/restart.sh: fast (default) or immediate
#   psql_q QUERY            run QUERY on the test database; rows '|'-separated
#                           (booleans print as t/f)

pg_server_start() {
	local port=${1:-${E2E_PG_PORT:-15480}} k info pw
	for ((k = 0; k < 50; k++, port++)); do
		_e2e_port_busy "$port" || break
	done
	_e2e_port_busy "$port" && fail "pg_server_start: no free port from ${1:-15480} on"
	export LAMFS_PG_PORT=$port
	# Not under $WORK: the server runs as `postgres`, which must reach the directory.
	export LAMFS_PG_DIR=${TMPDIR:-/tmp}/lamfs-e2e-pg-$port
	unset PGHOST PGHOSTADDR PGPORT PGDATABASE PGUSER PGPASSWORD PGSERVICE PGOPTIONS \
		PGSSLMODE PGAPPNAME
	_e2e_exit_hooks+=(pg_server_stop)
	info=$(bash "$REPO/tests/pg/start.sh" 2>"$WORK/pg.start.log") ||
		skip "PostgreSQL test server unavailable: $(tail -n 3 "$WORK/pg.start.log")"
	eval "$info"
	# postgresql://USER:PASSWORD@HOST:PORT/DB -> a pgpass line and a URL without the password
	[[ "$LAMFS_TEST_PG_URL" =~ ^postgresql://([^:@/]+):([^@]+)@([^:/]+):([0-9]+)/(.+)$ ]] ||
		fail "unexpected URL from tests/pg/start.sh"
	pw=${BASH_REMATCH[2]}
	(umask 077 && printf '%s:%s:%s:%s:%s\n' "${BASH_REMATCH[3]}" "${BASH_REMATCH[4]}" \
		"${BASH_REMATCH[5]}" "${BASH_REMATCH[1]}" "$pw" >"$WORK/pgpass")
	export PGPASSFILE=$WORK/pgpass PGSERVICEFILE=/nonexistent/pg_service.conf
	export E2E_PG_URL="postgresql://${BASH_REMATCH[1]}@${BASH_REMATCH[3]}:${BASH_REMATCH[4]}/${BASH_REMATCH[5]}"
	unset LAMFS_TEST_PG_URL
	log "PostgreSQL test server at $E2E_PG_URL (state $LAMFS_PG_DIR)"
}

pg_server_stop() {
	[[ -n "${LAMFS_PG_DIR:-}" ]] || return 0
	bash "$REPO/tests/pg/stop.sh" >/dev/null 2>&1 || true
}

pg_restart() {
	bash "$REPO/tests/pg/restart.sh" "${1:-fast}" ||
		fail "tests/pg/restart.sh ${1:-fast} failed"
}

psql_q() {
	psql "$E2E_PG_URL" -X -q -A -t -F '|' -v ON_ERROR_STOP=1 -c "$1" </dev/null
}
