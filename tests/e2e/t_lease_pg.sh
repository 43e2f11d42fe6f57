#!/usr/bin/env bash
# t_lease_pg.sh — lamfs-repair across machines (issue #8): two instance
# directories A and B attached to one PostgreSQL database and one S3 bucket
# ("two machines"; the instance lock, an flock, cannot see from B that A is
# mounted — the leases in the store can).  LAMFS_LEASE_TTL=4 (seconds).
#  - A mounted: repair on B (also --dry-run) refuses, exit 8, naming A's
#    host, pid, mount point and lease expiry; nothing changes in the store;
#    still so after more than a TTL (A renews its lease);
#  - A unmounted: repair on B runs (no --force-unlocked) and exits 0;
#  - A killed (SIGKILL at save.flagged) with a save in flight: repair on B
#    refuses until A's lease has expired, then removes the stale lease and
#    rolls the interrupted save back (exit 1), leaving no row and no lease;
#  - a live repair lease keeps a mount on B from starting (a clear message);
#    a repair lease of a dead process on this machine and instance does not;
#  - --force-unlocked runs beside a live mount, as told.
# timeout: 600
. "$(dirname "$0")/lib.sh"
e2e_begin
require_faults
command -v curl >/dev/null || skip "curl missing"
command -v psql >/dev/null || skip "psql missing"

REPAIR_BIN=${LAMFS_REPAIR_BIN:-$(dirname "$LAMFS_BIN")/lamfs-repair}
[[ -x "$REPAIR_BIN" ]] || fail "no lamfs-repair binary at $REPAIR_BIN (set LAMFS_REPAIR_BIN)"
export LAMFS_LEASE_TTL=4

run_repair() {
	REPAIR_RC=0
	REPAIR_OUT=$("$REPAIR_BIN" "$@" 2>&1 </dev/null) || REPAIR_RC=$?
	log "lamfs-repair $* -> exit $REPAIR_RC"
	sed 's/^/#   /' <<<"$REPAIR_OUT"
}

# A fingerprint of everything repair could change in the store.
store_state() {
	psql_q "select string_agg(uid || coalesce(_aux::text, '') || is_latest::text, ',' order by uid)
		from artifact"
}

pg_server_start "${E2E_PG_PORT:-15480}"
s3_server_start "${E2E_S3_PORT:-18660}"
storage=s3://$E2E_S3_BUCKET/lease
ia=$(instance_new a --db "$E2E_PG_URL" --storage "$storage")
ib=$(instance_new b --db "$E2E_PG_URL" --storage "$storage")
ma=$WORK/a.mnt
mb=$WORK/b.mnt
host=$(hostname)

log "A mounted: repair on B refuses and changes nothing"
mount_fs "$ia" "$ma"
pa=$(daemon_pid "$ma")
echo "committed on A" >"$WORK/one"
cp "$WORK/one" "$ma/one.txt"
assert_eq "leases while A is mounted" "mount|$host|$pa|$ia|$ma" \
	"$(psql_q "select kind, host, pid, instance, mountpoint from lease")"
before=$(store_state)
for args in "" "--dry-run" "--json"; do
	# shellcheck disable=SC2086
	run_repair "$ib" $args
	assert_eq "repair $args on B beside A's mount" 8 "$REPAIR_RC"
	for part in "a mount on $host" "pid $pa" "mount point $ma" "lease expires in" \
		"--force-unlocked"; do
		grep -qF -- "$part" <<<"$REPAIR_OUT" || fail "repair $args: no '$part' in its message"
	done
done
assert_eq "store after the refusals" "$before" "$(store_state)"
assert_eq "leases after the refusals" "mount" "$(psql_q "select kind from lease")"

log "A keeps its lease alive past a TTL"
sleep 6
run_repair "$ib"
assert_eq "repair on B after 6 s (A renews every ~1.3 s)" 8 "$REPAIR_RC"
assert_same_file "one.txt on A" "$WORK/one" "$ma/one.txt"

log "--force-unlocked runs beside A, as told"
run_repair "$ib" --force-unlocked
assert_eq "forced repair on B (nothing to repair)" 0 "$REPAIR_RC"
grep -qF "going on as told" <<<"$REPAIR_OUT" || fail "the forced run did not say so"
assert_eq "A's lease after the forced repair" "mount|$pa" "$(psql_q "select kind, pid from lease")"

log "A unmounted: repair on B runs without --force-unlocked"
umount_fs "$ma"
assert_eq "leases after A's unmount" "" "$(psql_q "select id from lease")"
run_repair "$ib"
assert_eq "repair on B with nothing mounted" 0 "$REPAIR_RC"
assert_match "B's repair says clean" ': clean' "$REPAIR_OUT"
assert_eq "leases after the repair" "" "$(psql_q "select id from lease")"

log "A killed with a save in flight: B waits for A's lease to expire, then repairs"
mount_fs "$ia" "$ma"
pa=$(daemon_pid "$ma")
random_file "$WORK/big" $((2 * MiB + 3))
fault_set "save.flagged=crash"
assert_fails "cp while A dies at save.flagged" cp "$WORK/big" "$ma/big.bin"
wait_pid_gone "$pa" 30 || fail "daemon $pa did not die"
fault_clear
dead_umount "$ma"
uid=$(psql_q "select uid from artifact where key = 'big.bin' and _aux is not null")
assert_match "A's interrupted save is flagged" '^[0-9A-Za-z]{20}$' "$uid"
run_repair "$ib"
assert_eq "repair on B while A's lease is live" 8 "$REPAIR_RC"
grep -qF "pid $pa" <<<"$REPAIR_OUT" || fail "the refusal does not name A's pid $pa"
assert_eq "A's flagged row after the refusal" "$uid" \
	"$(psql_q "select uid from artifact where _aux is not null")"
t0=$SECONDS
for ((i = 0; i < 40; i++)); do
	[[ "$(psql_q "select count(*) from lease where expires_ms > (extract(epoch from now()) * 1000)::bigint")" == 0 ]] && break
	sleep 0.25
done
log "A's lease expired after $((SECONDS - t0)) s"
run_repair "$ib"
assert_eq "repair on B after A's lease expired" 1 "$REPAIR_RC"
grep -qE "^lease +removed .*a mount on $host \(pid $pa" <<<"$REPAIR_OUT" ||
	fail "repair did not report removing A's stale lease"
grep -qE "^flagged +rolled-back +big.bin \($uid\)" <<<"$REPAIR_OUT" ||
	fail "repair did not roll back A's interrupted save"
assert_eq "rows of big.bin" "" "$(psql_q "select uid from artifact where key = 'big.bin'")"
assert_eq "leases after the repair" "" "$(psql_q "select id from lease")"
assert_eq "objects of $uid" "" "$(objects "$storage" | grep -F "$uid" || true)"

log "a live repair lease keeps mounts out"
psql_q "insert into lease values ('r-other', 'repair', 'elsewhere', 77, '/x/inst', '',
	(extract(epoch from now()) * 1000)::bigint, (extract(epoch from now()) * 1000)::bigint + 60000)" >/dev/null
rc=0
mkdir -p "$mb"
out=$("$LAMFS_BIN" mount "$ib" "$mb" 2>&1 </dev/null) || rc=$?
log "lamfs mount B beside a repair -> exit $rc: $out"
[[ $rc -ne 0 ]] || { fusermount3 -u "$mb"; fail "B mounted while a repair held the instance"; }
is_mounted "$mb" && fail "$mb mounted beside a repair"
for part in "lamfs-repair is working on this instance" "a repair on elsewhere" "pid 77"; do
	grep -qF -- "$part" <<<"$out" || fail "mount refusal lacks '$part': $out"
done
printf 'saved beside a repair\n' >"$WORK/beside"
rc=0
out=$("$LAMFS_BIN" save "$ib" "$WORK/beside" 2>&1 </dev/null) || rc=$?
log "lamfs save on B beside a repair -> exit $rc: $out"
[[ $rc -ne 0 ]] || fail "lamfs save ran while a repair held the instance"
grep -qF -- "lamfs-repair is working on this instance" <<<"$out" || fail "save refusal: $out"
assert_eq "rows of beside after the refused save" "" \
	"$(psql_q "select uid from artifact where key = 'beside'")"
psql_q "delete from lease where id = 'r-other'" >/dev/null

log "a dead repair of this machine and instance does not keep mounts out"
# A pid of this machine whose process has exited.  (Not `sleep & kill`: a
# SIGTERM that reaches the forked child before its exec runs this script's
# TERM and EXIT traps there, which unmount everything and stop the servers.)
dead=$(sh -c 'echo $$')
psql_q "insert into lease values ('r-dead', 'repair', '$host', $dead, '$ib', '',
	(extract(epoch from now()) * 1000)::bigint, (extract(epoch from now()) * 1000)::bigint + 60000)" >/dev/null
mount_fs "$ib" "$mb"
assert_eq "leases with B mounted" "mount|$mb" "$(psql_q "select kind, mountpoint from lease")"
assert_same_file "one.txt on B" "$WORK/one" "$mb/one.txt"
umount_fs "$mb"
"$LAMFS_BIN" save "$ib" "$WORK/beside" >/dev/null 2>&1 </dev/null || fail "lamfs save on B failed"
assert_eq "leases after lamfs save" "" "$(psql_q "select id from lease")"
assert_eq "beside after the save" "saved beside a repair" "$("$LAMFS_BIN" cat "$ib" beside)"
assert_eq "leases at the end" "" "$(psql_q "select id from lease")"
e2e_pass
