#!/usr/bin/env bash
# t_upload_denied.sh — a failed upload (fault backend.put = EACCES, ENOSPC,
# EIO) leaves nothing: cp fails, close() returns exactly that errno, ls shows
# nothing, the database has no row, storage holds no object, staging holds no
# file.  An existing version at the key is untouched by a failed overwrite,
# and once the fault is gone the same cp succeeds.
# timeout: 300
. "$(dirname "$0")/lib.sh"
e2e_begin
require_faults

inst=$(instance_new inst)
root=$(storage_of "$inst")
mnt=$WORK/mnt
mount_fs "$inst" "$mnt"
mkdir "$mnt/denied" "$mnt/kept"

src=$WORK/data.fasta
printf '>seq1\nACGTACGT\n' >"$src"
big=$WORK/big.bin
random_file "$big" $((3 * MiB))
old=$WORK/old.txt
echo "version one" >"$old"
new=$WORK/new.txt
echo "version two, never stored" >"$new"

cp "$old" "$mnt/kept/k.txt"
kept_uid=$(xattr "$mnt/kept/k.txt" user.lamfs.uid)

# nothing_left WHAT: the state after a failed save equals the state before.
nothing_left() {
	assert_eq "$1: ls denied/" "" "$(ls -A "$mnt/denied")"
	assert_eq "$1: rows under denied/" "0" \
		"$(sql "$inst" "select count(*) from artifact where key like 'denied/%'")"
	assert_eq "$1: rows in all" "$rows0" "$(sql "$inst" "select count(*) from artifact")"
	assert_eq "$1: objects in storage" "$objs0" "$(objects "$root")"
	assert_eq "$1: files in staging" "" "$(staging_files "$inst")"
	# the older artifact is untouched
	assert_same_file "$1: kept/k.txt still reads its bytes" "$old" "$mnt/kept/k.txt"
	assert_eq "$1: kept/k.txt uid" "$kept_uid" "$(xattr "$mnt/kept/k.txt" user.lamfs.uid)"
}

rows0=$(sql "$inst" "select count(*) from artifact")
objs0=$(objects "$root")
assert_eq "objects before" "$kept_uid.txt" "$objs0"

for err in EACCES ENOSPC EIO; do
	log "backend.put=$err"
	fault_set "backend.put=$err"

	assert_fails "cp with backend.put=$err" cp "$src" "$mnt/denied/a.fasta"
	log "cp said: $E2E_LAST_ERR"
	nothing_left "cp, $err"

	assert_eq "close() errno with backend.put=$err (NAME@step if it failed before close)" \
		"$err" "$(errno_of copy "$big" "$mnt/denied/b.bin")"
	nothing_left "write+close, $err"
	assert_absent "denied/b.bin after a failed save" "$mnt/denied/b.bin"

	log "a failed overwrite leaves the existing version as it was"
	assert_eq "overwrite with backend.put=$err" "$err" "$(errno_of copy "$new" "$mnt/kept/k.txt")"
	nothing_left "failed overwrite, $err"
	assert_eq "rows at kept/k.txt" "$kept_uid|1|" \
		"$(rows_at "$inst" kept/k.txt "uid, is_latest, coalesce(_aux, '')")"
done

# backend.put.mid is a point of the local backend (S3: t_s3_errors stops the server mid-upload)
if [[ $(storage_kind "$root") == local ]]; then
	log "backend.put.mid=EIO: a half-written object is removed too"
	fault_set "backend.put.mid=EIO"
	assert_eq "close() with backend.put.mid=EIO" "EIO" "$(errno_of copy "$big" "$mnt/denied/mid.bin")"
	nothing_left "backend.put.mid=EIO"
fi
assert_eq "no temporary object left in the storage root" "" "$(storage_stray "$root")"

log "fault cleared: the same cp succeeds"
fault_clear
cp "$src" "$mnt/denied/a.fasta"
assert_same_file "denied/a.fasta after the fault is gone" "$src" "$mnt/denied/a.fasta"
assert_eq "ls denied/" "a.fasta" "$(ls "$mnt/denied")"
umount_fs "$mnt"
check_store "$inst"

e2e_pass
