#!/usr/bin/env bash
# t_lamindb_pg.sh — `lamfs init --db postgresql://... --storage ROOT` on a
# database where LaminDB made the instance (issue 19, item 4), on a real
# PostgreSQL server (tests/pg): the database built with psql from LaminDB's
# own files (postgres-schema.sql.gz, postgres-seed-rows.sql: the project's
# copy), plus the storage row and ROOT/.lamindb/storage_uid.txt `lamin init
# --db ... --storage ROOT` writes, and an artifact LaminDB saved.
#  - init attaches and says so; LaminDB's tables and rows are exactly as they
#    were; the mount shows LaminDB's artifact;
#  - cp through the mount, then every LaminDB column checked with psql
#    (lamindb_check_columns: uid, stem, versions, compound suffixes, size,
#    md5 hash, one is_latest per key, branch 1, space 1, LaminDB's storage
#    row, user 00000000, _key_is_virtual, _aux NULL, timestamptz);
#  - a row inserted the way Django writes it (_aux NULL) shows in the running
#    mount within its cache timeout;
#  - a second init (another instance folder) attaches to the same instance;
#  - a root whose marker names another instance than the database's storage
#    row is refused, both instance uids in the message, nothing of LaminDB's
#    changed, no instance folder left.
# timeout: 300
. "$(dirname "$0")/lib.sh"
e2e_begin
command -v psql >/dev/null || skip "psql missing"
[[ -f "$LAMINDB_FILES/postgres-schema.sql.gz" ]] || fail "no $LAMINDB_FILES/postgres-schema.sql.gz"

pg_server_start "${E2E_PG_PORT:-15480}"
log "the database as lamin init --db makes it, from LaminDB's own files"
gzip -dc "$LAMINDB_FILES/postgres-schema.sql.gz" |
	psql "$E2E_PG_URL" -X -q -v ON_ERROR_STOP=1 >/dev/null 2>"$WORK/psql.err" ||
	fail "loading postgres-schema.sql.gz: $(tail -n 5 "$WORK/psql.err")"
psql "$E2E_PG_URL" -X -q -v ON_ERROR_STOP=1 <"$LAMINDB_FILES/postgres-seed-rows.sql" >/dev/null 2>"$WORK/psql.err" ||
	fail "loading postgres-seed-rows.sql: $(tail -n 5 "$WORK/psql.err")"

root=$WORK/lab
suid=QwErTy123456
read -r _ iuid < <(lamindb_ident anonymous/lab)
mkdir -p "$root/.lamindb"
psql_q "insert into lamindb_storage (uid, root, type, region, instance_uid, created_by_id)
	values ('$suid', '$root', 'local', NULL, '$iuid', 1)" >/dev/null

# django_save UID KEY TEXT: what LaminDB's artifact.save() leaves: the object
# at .lamindb/UID.txt and the row with the columns save() sets (_aux NULL,
# the times from the columns' defaults, statement_timestamp()).
django_save() {
	printf '%s\n' "$3" >"$root/.lamindb/$1.txt"
	psql_q "insert into lamindb_artifact (uid, key, suffix, size, hash, _hash_type, is_latest,
			is_locked, _key_is_virtual, _overwrite_versions, storage_id, created_by_id,
			branch_id, space_id, created_on_id, _aux)
		values ('$1', '$2', '.txt', $(stat -c %s "$root/.lamindb/$1.txt"),
			'$(lamindb_hash "$root/.lamindb/$1.txt")', 'md5', true, false, true, false,
			(select id from lamindb_storage where root = '$root'), 1, 1, 1, 1, NULL)" >/dev/null
}
django_save LNsaved0000000000000 from_lamindb.txt "saved by LaminDB"
lamindb_marker_write "$root/.lamindb/storage_uid.txt" "$suid" anonymous/lab
marker_sum=$(sha256sum "$root/.lamindb/storage_uid.txt")
mkdir -p "$WORK/.fpconf"
printf '[meta]\nurl = %s\n' "$E2E_PG_URL" >"$WORK/.fpconf/lamfs.conf"
before=$(lamindb_sql_fingerprint "$WORK/.fpconf")

log "attach"
out=$("$LAMFS_BIN" init "$WORK/inst" --db "$E2E_PG_URL" --storage "$root" 2>&1) || fail "lamfs init: $out"
log "$out"
inst=$WORK/inst
assert_match "init says it attached" \
	"attached .* to LaminDB instance anonymous/lab \\(instance uid $iuid, storage uid $suid\\)" "$out"
assert_eq "LaminDB's tables and rows after the attach" "$before" "$(lamindb_sql_fingerprint "$inst")"
assert_eq "the marker after the attach" "$marker_sum" "$(sha256sum "$root/.lamindb/storage_uid.txt")"

mnt=$WORK/mnt
mount_fs "$inst" "$mnt"
assert_eq "LaminDB's artifact through the mount" "saved by LaminDB" "$(cat "$mnt/from_lamindb.txt")"
printf '>seq1\nACGT\n' >"$WORK/sample.fasta"
printf '>seq1\nACGTT\n' >"$WORK/sample2.fasta"
mkdir "$mnt/seqs"
cp "$WORK/sample.fasta" "$mnt/seqs/sample.fasta"
cp "$WORK/sample2.fasta" "$mnt/seqs/sample.fasta"
printf 'a,b\n1,2\n' | gzip >"$WORK/x.csv.gz"
cp "$WORK/x.csv.gz" "$mnt/seqs/x.csv.gz"
tar -C "$WORK" -czf "$WORK/s.tar.gz" sample.fasta
cp "$WORK/s.tar.gz" "$mnt/seqs/s.tar.gz"
assert_eq "hash of >seq1 ACGT (version 0000)" "0000|83rEPcAoBHmYiIuyBYrFKg|md5|f" \
	"$(psql_q "select substr(uid, 17, 4) || '|' || hash || '|' || _hash_type || '|' || is_latest
		   from lamindb_artifact where key = 'seqs/sample.fasta' order by uid limit 1")"
assert_eq "latest of seqs/sample.fasta" "0001" \
	"$(psql_q "select substr(uid, 17, 4) from lamindb_artifact where key = 'seqs/sample.fasta'
		   and is_latest and branch_id = 1")"
lamindb_check_columns "$inst" "$root" "$root/.lamindb/storage_uid.txt"

log "a row Django writes shows in the running mount"
django_save LNsaved0000000000001 ln/second.txt "second from LaminDB"
await_path "ln/second.txt in the mount" present "$mnt/ln/second.txt"
assert_eq "its bytes" "second from LaminDB" "$(cat "$mnt/ln/second.txt")"
umount_fs "$mnt"

log "a second init on the same database and root attaches to the same instance"
out=$("$LAMFS_BIN" init "$WORK/inst2" --db "$E2E_PG_URL" --storage "$root" 2>&1) || fail "second init: $out"
assert_match "the second init says it attached" "attached .* anonymous/lab \\(instance uid $iuid" "$out"
assert_eq "storage rows" 1 "$(psql_q "select count(*) from lamindb_storage")"
mount_fs "$WORK/inst2" "$mnt"
assert_same_file "seqs/sample.fasta through the second instance" "$WORK/sample2.fasta" "$mnt/seqs/sample.fasta"
umount_fs "$mnt"

log "a root whose marker names another instance than the database's row is refused"
root2=$WORK/shared2
mkdir -p "$root2/.lamindb"
psql_q "insert into lamindb_storage (uid, root, type, instance_uid, created_by_id)
	values ('ZxCvBn654321', '$root2', 'local', '$iuid', 1)" >/dev/null
lamindb_marker_write "$root2/.lamindb/storage_uid.txt" ZxCvBn654321 anonymous/intruder
read -r _ intruder_uid < <(lamindb_ident anonymous/intruder)
before=$(lamindb_sql_fingerprint "$inst")
assert_fails "init on a root another instance owns" \
	"$LAMFS_BIN" init "$WORK/inst3" --db "$E2E_PG_URL" --storage "$root2"
log "$E2E_LAST_ERR"
assert_match "message names the marker's instance uid" "$intruder_uid" "$E2E_LAST_ERR"
assert_match "message names the database's instance uid" "$iuid" "$E2E_LAST_ERR"
assert_eq "LaminDB's rows after the refusal" "$before" "$(lamindb_sql_fingerprint "$inst")"
assert_absent "no instance folder left" "$WORK/inst3"
e2e_pass
