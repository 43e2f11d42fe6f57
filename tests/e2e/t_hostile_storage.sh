#!/usr/bin/env bash
# t_hostile_storage.sh — a storage root that is missing, a file, read-only
# (at mount time: a read-only bind mount; while mounted: the objects folder
# made immutable with chattr +i), a staging folder that is missing, and a
# storage root that is an empty folder where the objects should be (a disk
# that is not mounted).  At mount: refused with a message naming the
# problem, nothing changed.  While mounted: close() returns the errno, the
# new version leaves nothing behind, the old one is intact.
# Needs root (bind mounts, chattr); the chattr part needs a filesystem with
# the immutable flag (ext4, xfs, btrfs) under the work directory.
# timeout: 300
. "$(dirname "$0")/lib.sh"
e2e_begin
[[ $(id -u) -eq 0 ]] || skip "needs root (bind mounts, chattr +i)"

inst=$(instance_new inst)
root=$(storage_of "$inst")
mnt=$WORK/mnt
mount_fs "$inst" "$mnt"
echo "v1" >"$mnt/a.txt"
mkdir "$mnt/d"
echo "b" >"$mnt/d/b.csv"
umount_fs "$mnt"
db=$(db_of "$inst")

# refused WHAT REGEX
refused() {
	local what=$1 re=$2 out rc=0 sum
	# the database lives in the storage root (<root>/.lamindb/lamin.db): gone with it
	sum=$(if [[ -f "$db" ]]; then sha256_of "$db"; else echo none; fi)
	out=$(timeout 60 "$LAMFS_BIN" mount "$inst" "$mnt" 2>&1 </dev/null) || rc=$?
	if is_mounted "$mnt"; then
		umount_fs "$mnt"
		fail "$what: mounted (exit $rc) $out"
	fi
	[[ $rc -ne 0 ]] || fail "$what: exit 0 without a mount: $out"
	assert_match "$what: message" "$re" "$out"
	assert_eq "$what: database bytes" "$sum" \
		"$(if [[ -f "$db" ]]; then sha256_of "$db"; else echo none; fi)"
	log "$what: refused: $out"
}

mv "$root" "$WORK/storage.away"
refused "storage root missing" "storage root .*/storage does not exist \\(check that the disk or network share holding it is mounted and that \\[storage\\] url in the instance's lamfs.conf names it"
# The tools say the same, in their own one line.
rc=0
out=$("$LAMFS_BIN" ls "$inst" 2>&1) || rc=$?
assert_eq "lamfs ls, storage root missing: exit" 1 "$rc"
assert_match "lamfs ls, storage root missing: what to check" "^lamfs ls: .*storage root .*/storage does not exist \\(check that the disk" "$out"
[[ -e "$root" ]] && fail "lamfs ls made the missing storage root"
echo "not a folder" >"$root"
refused "storage root is a file" "storage root .*/storage is not a directory"
rm "$root"
mv "$WORK/storage.away" "$root"

objects_before=$(objects_snapshot "$root")
mount --bind "$root" "$root"
if mount -o remount,bind,ro "$root" 2>/dev/null; then
	refused "storage root read-only" "storage root .* is not writable"
	assert_eq "objects" "$objects_before" "$(objects_snapshot "$root")"
else
	log "no read-only bind mount here: skipped that case"
fi
umount "$root"

mv "$inst/staging" "$WORK/staging.away"
refused "staging missing" "staging folder .* is missing"
mv "$WORK/staging.away" "$inst/staging"

log "storage refusing writes while mounted: close() says EPERM, nothing is left"
mount_fs "$inst" "$mnt"
if chattr +i "$root/.lamindb" 2>/dev/null; then
	rows=$(sql "$inst" "select count(*) from artifact")
	assert_errno EPERM write "$mnt/a.txt" "v2"
	assert_errno EPERM write "$mnt/new.txt" "new"
	chattr -i "$root/.lamindb"
	assert_eq "a.txt keeps its version" "v1" "$(cat "$mnt/a.txt")"
	assert_absent "new.txt" "$mnt/new.txt"
	assert_eq "records" "$rows" "$(sql "$inst" "select count(*) from artifact")"
	assert_eq "staging" "" "$(staging_files "$inst")"
	assert_eq "objects" "$objects_before" "$(objects_snapshot "$root")"
	assert_errno OK write "$mnt/a.txt" "v2"
	assert_eq "a.txt once storage takes writes again" "v2" "$(cat "$mnt/a.txt")"
else
	log "chattr +i not supported under $WORK: skipped that case"
fi
umount_fs "$mnt"
check_store "$inst"

log "the storage root is an empty folder (a disk that is not mounted): refused"
mv "$root" "$WORK/storage.real"
mkdir "$root"
rc=0
(refused "storage root empty while the store has artifacts" \
	"storage|\.lamindb|objects") || rc=$?
left=$(find "$root" -mindepth 1 | head -n 5)
rm -rf "$root"
mv "$WORK/storage.real" "$root"
[[ $rc -eq 0 ]] || fail "an empty storage root was mounted (objects missing for every record)"
assert_eq "nothing written into the empty storage root" "" "$left"
e2e_pass
