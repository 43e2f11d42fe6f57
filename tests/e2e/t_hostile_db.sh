#!/usr/bin/env bash
# t_hostile_db.sh — a damaged or foreign database (lamin.db): truncated, header
# overwritten, empty, a folder, from a newer schema (lamfs_schema.version =
# 99), a table page overwritten.  `lamfs mount` refuses with a message that
# says what is wrong, and the database keeps its exact bytes (sha256 before
# and after), the objects and staging are untouched; once the good database
# is back, everything reads as before.
# timeout: 300
. "$(dirname "$0")/lib.sh"
e2e_begin

inst=$(instance_new inst)
root=$(storage_of "$inst")
mnt=$WORK/mnt
mount_fs "$inst" "$mnt"
echo "precious" >"$mnt/a.txt"
mkdir "$mnt/d"
for i in $(seq 1 40); do echo "row $i" >"$mnt/d/f$i.csv"; done
umount_fs "$mnt"
db=$(db_of "$inst")
cp "$db" "$WORK/good.db"
objects_before=$(objects_snapshot "$root")

# refused WHAT REGEX: the mount fails with a message matching REGEX, mounts
# nothing, and leaves the database's bytes, the objects and staging as they were.
refused() {
	local what=$1 re=$2 out rc=0 sum
	sum=$(if [[ -f "$db" ]]; then sha256_of "$db"; else echo none; fi)
	out=$(timeout 60 "$LAMFS_BIN" mount "$inst" "$mnt" 2>&1 </dev/null) || rc=$?
	if is_mounted "$mnt"; then
		umount_fs "$mnt"
		fail "$what: mounted (exit $rc) $out"
	fi
	[[ $rc -ne 0 ]] || fail "$what: lamfs mount exited 0 without mounting: $out"
	assert_match "$what: message" "$re" "$out"
	assert_eq "$what: database bytes" "$sum" \
		"$(if [[ -f "$db" ]]; then sha256_of "$db"; else echo none; fi)"
	[[ ! -s "$db-wal" ]] || fail "$what: the database's -wal holds $(stat -c %s "$db-wal") bytes: something was written"
	assert_eq "$what: objects" "$objects_before" "$(objects_snapshot "$root")"
	assert_eq "$what: staging" "" "$(staging_files "$inst")"
	log "$what: refused: $out"
}
restore() {
	rm -rf "$db" "$db-wal" "$db-shm"
	cp "$WORK/good.db" "$db"
}

size=$(stat -c %s "$db")
truncate -s $((size / 2)) "$db"
refused "truncated to half" "not a lamfs database or damaged"
restore
truncate -s 100 "$db"
refused "truncated to 100 bytes" "not a lamfs database or damaged"
restore
printf 'this is no database, not at all' | dd of="$db" conv=notrunc bs=1 seek=0 status=none
refused "header overwritten" "not a lamfs database or damaged"
restore
head -c $((size)) /dev/urandom >"$db"
refused "random bytes" "not a lamfs database or damaged"
restore
sqlite3 "$db" "update lamfs_schema set version = 99"
refused "schema version 99" "newer lamfs"
restore
rm "$db"
refused "database missing" "No such file or directory"
mkdir "$db"
refused "database is a folder" "Is a directory"
rmdir "$db"
restore

mount_fs "$inst" "$mnt"
assert_eq "a.txt with the good database back" "precious" "$(cat "$mnt/a.txt")"
assert_eq "files in d" 40 "$(ls "$mnt/d" | wc -l)"
umount_fs "$mnt"
check_store "$inst"

# Each of the rest on its own, so that one failure does not hide the next.
bad=()

log "an empty (0-byte) database is damaged, not newer"
(
	: >"$db"
	refused "empty database" "not a lamfs database or damaged|empty"
) || bad+=("an empty database")
restore

log "a table page overwritten: PRAGMA quick_check fails, so must the mount"
(
	psize=$(sqlite3 "$db" "pragma page_size")
	page=$(sqlite3 "$db" "select rootpage from sqlite_master where name = 'artifact'")
	# the page header (type byte, cell counts) of the artifact table's root
	printf '\x42\x42\x42\x42\x42\x42\x42\x42' |
		dd of="$db" conv=notrunc bs=1 seek=$(((page - 1) * psize)) status=none
	[[ "$(sqlite3 "$db" "pragma quick_check" 2>&1 | head -n1)" != ok ]] ||
		fail "test setup: quick_check still passes"
	refused "artifact table page overwritten" "not a lamfs database or damaged"
) || bad+=("a damaged table page")
restore
[[ ${#bad[@]} -eq 0 ]] || fail "damaged databases not refused: $(printf '%s; ' "${bad[@]}")"
e2e_pass
