#!/usr/bin/env bash
# t_lamindb_sqlite.sh — a lamfs instance on SQLite and local storage is a
# LaminDB instance where LaminDB looks for one (issue 19, items 2 and 4):
#  - init puts the database at <root>/.lamindb/lamin.db and writes
#    <root>/.lamindb/storage_uid.txt byte for byte as `lamin init` does
#    (storage uid, instance_slug anonymous/<root's name>, instance_id = uuid5,
#    instance_uid derived from it; checked with Python's uuid and hashlib);
#    lamfs.conf names the database; the storage row in the database is
#    LaminDB's for that identity; `lamfs info INSTANCE --json` names
#    storage_root and db, `--lamin-env` prints LaminDB's settings file;
#  - files copied through the mount read back;
#  - lamfs-repair leaves lamin.db, its journal and storage_uid.txt alone
#    (they are never objects), reports no orphan, and the files still read;
#  - a second `lamfs init` on the same root (another instance folder)
#    attaches to the same instance, says so, and mounts the same files.
# LaminDB's columns of what the mount saves: t_lamindb_rows.sh.
# timeout: 300
. "$(dirname "$0")/lib.sh"
e2e_begin
command -v sqlite3 >/dev/null || skip "sqlite3 missing"

REPAIR_BIN=${LAMFS_REPAIR_BIN:-$(dirname "$LAMFS_BIN")/lamfs-repair}
root=$WORK/proj
out=$("$LAMFS_BIN" init "$WORK/inst" --storage "$root" 2>&1) || fail "lamfs init: $out"
inst=$WORK/inst
log "$out"
assert_match "init names the new LaminDB instance" "LaminDB instance anonymous/proj" "$out"

log "where LaminDB looks: <root>/.lamindb/lamin.db and storage_uid.txt"
assert_eq "database lamfs.conf names" "$root/.lamindb/lamin.db" "$(db_of "$inst")"
[[ -f "$root/.lamindb/lamin.db" ]] || fail "no $root/.lamindb/lamin.db"
[[ ! -e "$inst/lamfs.db" && ! -e "$inst/lamin.db" ]] || fail "a database in the instance folder too"
marker=$root/.lamindb/storage_uid.txt
[[ -f "$marker" ]] || fail "no $marker"
read -r want_id want_uid < <(lamindb_ident anonymous/proj)
storage_uid=$(head -n 1 "$marker")
assert_eq "storage_uid.txt, byte for byte as lamin init writes it" \
	"$(printf '%s\ncreation info:\ninstance_slug=anonymous/proj\ninstance_id=%s\ninstance_uid=%s' \
		"$storage_uid" "$want_id" "$want_uid" | od -c)" "$(od -c <"$marker")"
assert_eq "instance_slug" "anonymous/proj" "$(marker_field "$marker" instance_slug)"
assert_eq "instance_id (uuid5 of the slug)" "$want_id" "$(marker_field "$marker" instance_id)"
assert_eq "instance_uid (from the instance id)" "$want_uid" "$(marker_field "$marker" instance_uid)"
assert_match "storage uid" '^[0-9A-Za-z]{12}$' "$(marker_field "$marker" storage_uid)"

json=$("$LAMFS_BIN" info "$inst" --json)
assert_eq "info --json storage_root" "$root" \
	"$(python3 -c 'import json,sys; print(json.load(sys.stdin)["storage_root"])' <<<"$json")"
assert_eq "info --json db" "$root/.lamindb/lamin.db" \
	"$(python3 -c 'import json,sys; print(json.load(sys.stdin)["db"])' <<<"$json")"
assert_eq "info --json instance_uid" "$want_uid" \
	"$(python3 -c 'import json,sys; print(json.load(sys.stdin)["instance_uid"])' <<<"$json")"

log "cp through the mount"
mnt=$WORK/mnt
mount_fs "$inst" "$mnt"
printf '>seq1\nACGT\n' >"$WORK/sample.fasta"
mkdir "$mnt/seqs" "$mnt/t"
cp "$WORK/sample.fasta" "$mnt/seqs/sample.fasta"
printf 'a,b\n1,2\n' | gzip >"$WORK/x.csv.gz"
printf '@r\nACGT\n+\nIIII\n' | gzip >"$WORK/r.fastq.gz"
tar -C "$WORK" -czf "$WORK/s.tar.gz" sample.fasta
cp "$WORK/x.csv.gz" "$mnt/t/x.csv.gz"
cp "$WORK/r.fastq.gz" "$mnt/t/r.fastq.gz"
cp "$WORK/s.tar.gz" "$mnt/t/s.tar.gz"
printf '>seq1\nACGTT\n' >"$WORK/sample2.fasta"
cp "$WORK/sample2.fasta" "$mnt/seqs/sample.fasta"
umount_fs "$mnt"
lamindb_check_storage_row "$inst" "$root" "$marker"

log "LaminDB's settings file"
"$LAMFS_BIN" info "$inst" --lamin-env >"$WORK/env"
assert_eq "settings file" "lamindb_instance_owner=anonymous
lamindb_instance_name=proj
lamindb_instance_storage_root=$root
lamindb_instance_storage_region=null
lamindb_instance_db=null
lamindb_instance_schema_str=null
lamindb_instance_id=$want_id
lamindb_instance_git_repo=null
lamindb_instance_keep_artifacts_local=False
lamindb_instance_api_url=null
lamindb_instance_schema_id=null
lamindb_instance_fine_grained_access=False
lamindb_instance_db_permissions=null
lamindb_instance_is_clone=False" "$(cat "$WORK/env")"

log "lamfs-repair never takes LaminDB's files for objects"
[[ -x "$REPAIR_BIN" ]] || fail "no lamfs-repair at $REPAIR_BIN"
sqlite3 "$root/.lamindb/lamin.db" "pragma wal_checkpoint(truncate)" >/dev/null
: >"$root/.lamindb/lamin.db-journal"        # as a DELETE-mode writer leaves it
before=$(sha256sum "$marker" | cut -d' ' -f1)
rc=0
rep=$("$REPAIR_BIN" "$inst" --json 2>&1) || rc=$?
assert_eq "lamfs-repair exit (nothing to repair: $rep)" 0 "$rc"
assert_eq "orphans repaired" 0 "$(python3 -c 'import json,sys; print(json.load(sys.stdin)["summary"]["orphans"])' <<<"$rep")"
[[ "$rep" != *lamin.db* && "$rep" != *storage_uid* ]] || fail "the repair report names LaminDB's files: $rep"
assert_eq "storage_uid.txt after repair" "$before" "$(sha256sum "$marker" | cut -d' ' -f1)"
[[ -f "$root/.lamindb/lamin.db-journal" ]] || fail "the repair removed lamin.db-journal"
rm -f "$root/.lamindb/lamin.db-journal"
mount_fs "$inst" "$mnt"
for f in t/x.csv.gz t/r.fastq.gz t/s.tar.gz; do
	assert_same_file "$f after the repair" "$WORK/$(basename "$f")" "$mnt/$f"
done
assert_same_file "seqs/sample.fasta after the repair" "$WORK/sample2.fasta" "$mnt/seqs/sample.fasta"
umount_fs "$mnt"

log "a second init on the same root attaches to the same instance"
out=$("$LAMFS_BIN" init "$WORK/inst2" --storage "$root" 2>&1) || fail "second lamfs init: $out"
log "$out"
assert_match "the second init says it attached" \
	"attached .* to LaminDB instance anonymous/proj \\(instance uid $want_uid" "$out"
assert_eq "its database" "$root/.lamindb/lamin.db" "$(db_of "$WORK/inst2")"
assert_eq "storage rows" 1 "$(sql "$inst" "select count(*) from lamindb_storage")"
lamindb_check_storage_row "$WORK/inst2" "$root" "$marker"
assert_eq "the marker is unchanged" "$before" "$(sha256sum "$marker" | cut -d' ' -f1)"
mount_fs "$WORK/inst2" "$mnt"
assert_same_file "seqs/sample.fasta through the second instance" "$WORK/sample2.fasta" \
	"$mnt/seqs/sample.fasta"
umount_fs "$mnt"
e2e_pass
