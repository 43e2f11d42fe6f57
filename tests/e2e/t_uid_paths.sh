#!/usr/bin/env bash
# t_uid_paths.sh — every version is reachable read-only at /.lamfs/uid/<uid>:
# old versions read back byte-exact, writes are refused with EROFS, the folder
# is not listed, the xattrs are the version's, and (these paths being
# immutable) a shared read-only mmap works there.
. "$(dirname "$0")/lib.sh"
e2e_begin

inst=$(instance_new inst)
mnt=$WORK/mnt
mount_fs "$inst" "$mnt"

random_file "$WORK/v1" 300000
random_file "$WORK/v2" 200000
mkdir "$mnt/d"
cp "$WORK/v1" "$mnt/d/f.bin"
uid1=$(xattr "$mnt/d/f.bin" user.lamfs.uid)
cp "$WORK/v2" "$mnt/d/f.bin"
uid2=$(xattr "$mnt/d/f.bin" user.lamfs.uid)
assert_ne "a new version has a new uid" "$uid1" "$uid2"
assert_eq "same stem" "${uid1:0:16}" "${uid2:0:16}"

log "old and new versions by uid, byte-exact"
assert_same_file "/.lamfs/uid/<v1>" "$WORK/v1" "$mnt/.lamfs/uid/$uid1"
assert_same_file "/.lamfs/uid/<v2>" "$WORK/v2" "$mnt/.lamfs/uid/$uid2"
assert_same_file "the key shows the latest" "$WORK/v2" "$mnt/d/f.bin"
assert_eq "xattr of an old version" "$uid1" "$(xattr "$mnt/.lamfs/uid/$uid1" user.lamfs.uid)"
assert_eq "its version" "0000" "$(xattr "$mnt/.lamfs/uid/$uid1" user.lamfs.version)"
assert_eq "its size" 300000 "$(stat -c %s "$mnt/.lamfs/uid/$uid1")"

log "read-only and not listed"
assert_errno EROFS@open write "$mnt/.lamfs/uid/$uid1" hello
assert_errno EROFS unlink "$mnt/.lamfs/uid/$uid1"
assert_same_file "still intact after the refused writes" "$WORK/v1" "$mnt/.lamfs/uid/$uid1"
assert_eq "ls of the top does not show .lamfs" "d" "$(ls -A "$mnt")"
assert_eq "ls of /.lamfs/uid lists nothing" "" "$(ls -A "$mnt/.lamfs/uid")"

log "a shared read-only mmap works on a version path"
got=$(python3 -c 'import mmap, os, sys, hashlib
fd = os.open(sys.argv[1], os.O_RDONLY)
m = mmap.mmap(fd, 0, mmap.MAP_SHARED, mmap.PROT_READ)
print(hashlib.sha256(m[:]).hexdigest())' "$mnt/.lamfs/uid/$uid1")
assert_eq "sha256 through mmap" "$(sha256_of "$WORK/v1")" "$got"

umount_fs "$mnt"
e2e_pass
