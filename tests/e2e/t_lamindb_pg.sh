#!/usr/bin/env bash
# t_lamindb_pg.sh — `lamfs init --db postgresql://... --storage ROOT` on a
# database where LaminDB made the instance (issue 19, item 4), on a real
# PostgreSQL server (tests/pg): the database built with psql from LaminDB's
# own files (postgres-schema.sql.gz, postgres-seed-rows.sql: the project's
# copy in meta/lamindb), plus the storage row and ROOT/.lamindb/storage_uid.txt
# `lamin init --db ... --storage ROOT` writes, and an artifact LaminDB saved.
#  - init attaches and says so; LaminDB's tables, indexes, triggers and rows
#    are exactly as they were; the marker is unchanged; the storage lamfs
#    saves into is LaminDB's row; cp through the mount reads back;
#  - `lamfs info --lamin-env` names the database URL for LaminDB;
#  - a second init (another instance folder) attaches to the same instance;
#  - a root whose marker names another instance than the database's storage
#    row is refused, both instance uids in the message, nothing of LaminDB's
#    changed, no instance folder left;
#  - so is a second root on the same database (lamfs keeps one storage root
#    per database), and the first instance still works.
# LaminDB's columns of what the mount saves, and LaminDB's rows through the
# mount: t_lamindb_rows.sh.
# timeout: 300
. "$(dirname "$0")/lib.sh"
e2e_begin
command -v psql >/dev/null || skip "psql missing"
[[ -f "$LAMINDB_FILES/postgres-schema.sql.gz" ]] || fail "no $LAMINDB_FILES/postgres-schema.sql.gz"

pg_server_start "${E2E_PG_PORT:-15480}"
log "the database as lamin init --db makes it, from LaminDB's own files"
root=$WORK/lab
suid=QwErTy123456
lamindb_pg_made "$root" lab "$suid"
lamindb_pg_django_save "$root" LNsaved0000000000000 from_lamindb.txt "saved by LaminDB"
read -r _ iuid < <(lamindb_ident anonymous/lab)
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
lamindb_check_storage_row "$inst" "$root" "$root/.lamindb/storage_uid.txt"
assert_match "info --lamin-env names the database" "^lamindb_instance_db=$E2E_PG_URL\$" \
	"$("$LAMFS_BIN" info "$inst" --lamin-env | grep '^lamindb_instance_db=')"

mnt=$WORK/mnt
mount_fs "$inst" "$mnt"
printf '>seq1\nACGT\n' >"$WORK/sample.fasta"
mkdir "$mnt/seqs"
cp "$WORK/sample.fasta" "$mnt/seqs/sample.fasta"
umount_fs "$mnt"

log "a second init on the same database and root attaches to the same instance"
out=$("$LAMFS_BIN" init "$WORK/inst2" --db "$E2E_PG_URL" --storage "$root" 2>&1) || fail "second init: $out"
assert_match "the second init says it attached" "attached .* anonymous/lab \\(instance uid $iuid" "$out"
assert_eq "storage rows" 1 "$(psql_q "select count(*) from lamindb_storage")"
mount_fs "$WORK/inst2" "$mnt"
assert_same_file "seqs/sample.fasta through the second instance" "$WORK/sample.fasta" "$mnt/seqs/sample.fasta"
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

log "a second, unmarked root on the same database is refused: one storage root per database"
assert_fails "init of another root on the database" \
	"$LAMFS_BIN" init "$WORK/inst4" --db "$E2E_PG_URL" --storage "$WORK/elsewhere"
assert_match "message names the storage the database serves" "already serves storage $root " \
	"$E2E_LAST_ERR"
assert_eq "LaminDB's rows after the refusal" "$before" "$(lamindb_sql_fingerprint "$inst")"
assert_absent "no marker written" "$WORK/elsewhere/.lamindb/storage_uid.txt"
assert_absent "no instance folder left" "$WORK/inst4"
mount_fs "$inst" "$mnt"
assert_same_file "the first instance still reads its file" "$WORK/sample.fasta" "$mnt/seqs/sample.fasta"
umount_fs "$mnt"
e2e_pass
