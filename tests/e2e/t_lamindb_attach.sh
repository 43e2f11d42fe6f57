#!/usr/bin/env bash
# t_lamindb_attach.sh — `lamfs init --storage ROOT` where LaminDB made the
# instance (issue 19, item 4; SQLite and local storage): ROOT built from
# LaminDB's own files as `lamin init --storage ROOT` leaves it (the shipped
# lamin.db.gz, plus the rows lamin init writes: the anonymous user, the
# branches, the storage row, and storage_uid.txt), with an artifact LaminDB
# saved.
#  - init attaches and says so; LaminDB's tables and rows are exactly as they
#    were (lamfs adds only its own tables); the marker is unchanged;
#  - the storage lamfs saves into is LaminDB's storage row; cp through the
#    mount reads back (LaminDB's rows through the mount: t_lamindb_rows.sh);
#  - a root whose marker names another instance than the database's storage
#    row is refused, both instance uids in the message, the marker, LaminDB's
#    tables and the root unchanged, no instance folder left;
#  - a damaged marker, and a marker whose database is out of reach, are
#    refused the same way.
# timeout: 300
. "$(dirname "$0")/lib.sh"
e2e_begin
command -v sqlite3 >/dev/null || skip "sqlite3 missing"
[[ -f "$LAMINDB_FILES/lamin.db.gz" ]] || fail "no $LAMINDB_FILES/lamin.db.gz (the project's copy of LaminDB's files)"

# A view of the root and LaminDB's records: files, marker, LaminDB's tables.
root_state() {
	(cd "$1" && find . -printf '%P %y %s\n' | grep -v '^\.lamindb/lamin\.db' | LC_ALL=C sort)
	sha256sum "$1/.lamindb/storage_uid.txt"
	printf '[meta]\nurl = sqlite:%s\n' "$1/.lamindb/lamin.db" >"$WORK/.fpconf/lamfs.conf"
	lamindb_sql_fingerprint "$WORK/.fpconf"
}
mkdir -p "$WORK/.fpconf"

root=$WORK/lab
suid=$(lamindb_sqlite_made "$root" lab)
read -r _ iuid < <(lamindb_ident anonymous/lab)
before=$(root_state "$root")

log "attach to the instance lamin init made"
out=$("$LAMFS_BIN" init "$WORK/inst" --storage "$root" 2>&1) || fail "lamfs init: $out"
log "$out"
assert_match "init says it attached, naming the instance" \
	"attached .* to LaminDB instance anonymous/lab \\(instance uid $iuid, storage uid $suid\\)" "$out"
inst=$WORK/inst
assert_eq "database" "$root/.lamindb/lamin.db" "$(db_of "$inst")"
assert_eq "LaminDB's records and the marker after the attach" "$before" "$(root_state "$root")"
assert_match "lamfs's own tables are there" "^lamfs" \
	"$(sql "$inst" "select name from sqlite_master where type = 'table' and name like 'lamfs%' limit 1")"

lamindb_check_storage_row "$inst" "$root" "$root/.lamindb/storage_uid.txt"
assert_eq "the storage lamfs saves into is LaminDB's row" 1 \
	"$(sql "$inst" "select storage_id from lamfs_storage")"
mnt=$WORK/mnt
mount_fs "$inst" "$mnt"
printf '>seq1\nACGT\n' >"$WORK/sample.fasta"
cp "$WORK/sample.fasta" "$mnt/sample.fasta"
remount "$inst" "$mnt"
assert_same_file "sample.fasta through the attached instance" "$WORK/sample.fasta" "$mnt/sample.fasta"
umount_fs "$mnt"

log "a root whose marker and database name different instances is refused"
root2=$WORK/other
lamindb_sqlite_made "$root2" other >/dev/null
read -r _ other_uid < <(lamindb_ident anonymous/other)
lamindb_marker_write "$root2/.lamindb/storage_uid.txt" \
	"$(head -n1 "$root2/.lamindb/storage_uid.txt")" anonymous/intruder
read -r _ intruder_uid < <(lamindb_ident anonymous/intruder)
before2=$(root_state "$root2")
assert_fails "init on a root another instance owns" "$LAMFS_BIN" init "$WORK/inst3" --storage "$root2"
log "$E2E_LAST_ERR"
assert_match "message names the marker's instance uid" "$intruder_uid" "$E2E_LAST_ERR"
assert_match "message names the database's instance uid" "$other_uid" "$E2E_LAST_ERR"
assert_match "message says nothing changed" "nothing changed" "$E2E_LAST_ERR"
assert_eq "root and LaminDB's records after the refusal" "$before2" "$(root_state "$root2")"
assert_absent "no instance folder left" "$WORK/inst3"

log "a damaged marker is refused"
printf 'not a marker\n' >"$root2/.lamindb/storage_uid.txt"
assert_fails "init on a damaged marker" "$LAMFS_BIN" init "$WORK/inst4" --storage "$root2"
assert_match "message" "storage_uid.txt is not a LaminDB storage marker" "$E2E_LAST_ERR"
assert_absent "no instance folder left" "$WORK/inst4"

log "a marker without the database beside it (the instance's database is elsewhere)"
root3=$WORK/pgowned
lamindb_marker_write "$root3/.lamindb/storage_uid.txt" AbCdEfGh1234 anonymous/pgowned
assert_fails "init on a root whose database is elsewhere" "$LAMFS_BIN" init "$WORK/inst5" --storage "$root3"
assert_match "message" "belongs to LaminDB instance anonymous/pgowned .*--db" "$E2E_LAST_ERR"
assert_eq "the root after the refusal" "storage_uid.txt" "$(ls -A "$root3/.lamindb")"
assert_absent "no instance folder left" "$WORK/inst5"
e2e_pass
