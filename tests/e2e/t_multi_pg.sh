#!/usr/bin/env bash
# t_multi_pg.sh — two machines on one instance: PostgreSQL for the records
# (tests/pg: Debian's server, a fresh cluster on 127.0.0.1 with password
# authentication through PGPASSFILE) and the S3 test server for the bytes
# (tests/s3server), both started here and stopped at the end.  Two instance
# directories: A made by `lamfs init --db ... --storage s3://...`, B attached
# by a second init with the same --db and --storage, each mounted.
#  - multi_mounts_suite (lib.sh): written on one, read byte-exact on the
#    other; both saving one key 100 times at once while a reader on each
#    checks every read (every save a version, exactly one latest, nothing
#    partial visible); rename, overwrite and delete seen across the mounts;
#  - PostgreSQL restarted (restart.sh fast, then immediate: a crash) during a
#    burst of saves from both mounts: every close() that returned 0 is
#    committed (one live latest record with its content's sha256, nothing
#    flagged) and reads back byte-exact on both mounts; every one that failed
#    left nothing (no record, invisible on both mounts; no object without a
#    record, no staging file, no open multipart upload).
# timeout: 900
. "$(dirname "$0")/lib.sh"
e2e_begin
command -v curl >/dev/null || skip "curl missing"
command -v psql >/dev/null || skip "psql missing"

pg_server_start "${E2E_PG_PORT:-15480}"
s3_server_start "${E2E_S3_PORT:-18660}"
bucket=$E2E_S3_BUCKET
storage=s3://$bucket/shared

ia=$(instance_new a --db "$E2E_PG_URL" --storage "$storage")
ib=$(instance_new b --db "$E2E_PG_URL" --storage "$storage")
grep -q "$E2E_PG_URL" "$ib/lamfs.conf" || fail "B's config does not name the database"
grep -q "password\|$(cut -d: -f5 "$PGPASSFILE")" "$ia/lamfs.conf" "$ib/lamfs.conf" &&
	fail "a password was written into an instance config"
assert_eq "artifacts right after init" "0" "$(psql_q "select count(*) from artifact")"

ma=$WORK/a.mnt
mb=$WORK/b.mnt
mount_fs "$ia" "$ma"
mount_fs "$ib" "$mb"

multi_mounts_suite "$ia" "$ma" "$ib" "$mb"

# burst_round MODE: both mounts save new keys until a while after PostgreSQL
# was restarted with MODE, then every save is checked.
py=$(race_py)
burst_round() {
	local mode=$1 d=burst-$1 rca=0 rcb=0 rc t0 ok failed
	mkdir "$ma/$d"
	await_path "$d on B" present "$mb/$d"
	rm -f -- "$WORK/burst.stop"
	python3 "$py" burst "$ma/$d" A "$WORK/burst.stop" >"$WORK/burst.A" &
	local wa=$!
	python3 "$py" burst "$mb/$d" B "$WORK/burst.stop" >"$WORK/burst.B" &
	local wb=$!
	sleep 2
	t0=$SECONDS
	log "restart.sh $mode after $(cat "$WORK/burst.A" "$WORK/burst.B" | wc -l) saves"
	pg_restart "$mode"
	log "PostgreSQL back after $((SECONDS - t0))s; $(cat "$WORK/burst.A" "$WORK/burst.B" | wc -l) saves so far"
	sleep 3
	touch "$WORK/burst.stop"
	wait "$wa" || rca=$?
	wait "$wb" || rcb=$?
	[[ $rca -eq 0 && $rcb -eq 0 ]] || fail "burst writers exited $rca and $rcb"

	sql "$ia" "select substr(key, length('$d/') + 1) || '|' || checksum || '|' ||
		   coalesce(_aux::text, '') || '|' || (case when is_latest then 1 else 0 end) || '|' || branch_id
		   from artifact where key like '$d/%'" >"$WORK/burst.rows"
	rc=0
	cat "$WORK/burst.A" "$WORK/burst.B" |
		python3 "$py" verify "$WORK/burst.rows" "$ma/$d" "$mb/$d" >"$WORK/burst.verify" || rc=$?
	grep '^note: ' "$WORK/burst.verify" | sed 's/^/#   /' || true
	[[ $rc -eq 0 ]] || fail "after restart $mode: $(grep -v '^note: ' "$WORK/burst.verify" | head -n 10)"
	read -r _ _ ok _ failed < <(tail -n 1 "$WORK/burst.verify")
	log "restart $mode: $ok saves committed, $failed failed"
	((ok > 0)) || fail "no save succeeded during the burst"
	assert_eq "flagged records after the burst" "0" \
		"$(psql_q "select count(*) from artifact where _aux is not null")"
	assert_eq "records in $d/ (one per successful save)" "$ok" \
		"$(psql_q "select count(*) from artifact where key like '$d/%'")"
}

log "PostgreSQL restarted (fast) during a burst of saves from both mounts"
burst_round fast
log "PostgreSQL killed and restarted (immediate) during a burst of saves"
burst_round immediate

log "both mounts still serve after the restarts"
echo "after the restarts" >"$WORK/after"
cp "$WORK/after" "$mb/after.txt"
await_path "after.txt on A" present "$ma/after.txt"
assert_same_file "after.txt on A" "$WORK/after" "$ma/after.txt"

umount_fs "$ma"
umount_fs "$mb"
assert_eq "staging of B" "" "$(staging_files "$ib")"
check_store "$ia"
assert_eq "open multipart uploads" "" "$(s3_uploads "$bucket" "")"
e2e_pass
