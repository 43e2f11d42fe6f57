#!/usr/bin/env bash
# t_hash_follow.sh — files long enough (over 4 MiB) that their hashes are
# computed by a follower thread behind the writes: a plain cp, a stream that
# goes back to patch a byte before close, one truncated before close, an
# O_APPEND onto an existing big artifact (its copy-on-write fill is followed
# too), and a sha1-fl-sized one.  Each time the bytes and the recorded
# hash/checksum equal those of the same edit made to a local copy.
# timeout: 300
. "$(dirname "$0")/lib.sh"
e2e_begin

inst=$(instance_new inst)
mnt=$WORK/mnt
mount_fs "$inst" "$mnt"
mkdir "$mnt/h"
model=$WORK/model

# same_as_model WHAT KEY: mount file == local model, xattrs match the model.
same_as_model() {
	local f=$mnt/$2
	assert_same_file "$1: bytes" "$model" "$f"
	assert_eq "$1: hash" "$(lamindb_hash "$model")" "$(xattr "$f" user.lamfs.hash)"
	assert_eq "$1: hash_type" "$(lamindb_hash_type "$model")" "$(xattr "$f" user.lamfs.hash_type)"
	assert_eq "$1: checksum" "$(sha256_of "$model")" "$(xattr "$f" user.lamfs.checksum)"
}

# py CODE ARGS...: run a few lines of Python with sys.argv[1:] = ARGS.
py() { python3 -c "import os, sys
$1" "${@:2}"; }

log "cp of 12 MiB + 3"
random_file "$model" $((12 * MiB + 3))
cp "$model" "$mnt/h/cp.bin"
same_as_model "cp" h/cp.bin

log "8 MiB in order, then a patch at 1 MiB before close"
for f in "$model" "$mnt/h/patch.bin"; do
	py 'fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
for i in range(8):
    os.write(fd, bytes([65 + i]) * (1 << 20))
os.pwrite(fd, b"PATCHED", (1 << 20) + 5)
os.write(fd, b"tail")
os.close(fd)' "$f"
done
same_as_model "patch before close" h/patch.bin

log "8 MiB in order, truncated to 6 MiB + 1 before close"
for f in "$model" "$mnt/h/trunc.bin"; do
	py 'fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
for i in range(8):
    os.write(fd, bytes([97 + i]) * (1 << 20))
os.ftruncate(fd, 6 * (1 << 20) + 1)
os.close(fd)' "$f"
done
same_as_model "truncate before close" h/trunc.bin

log "O_APPEND onto an existing 6 MiB artifact"
random_file "$model" $((6 * MiB))
cp "$model" "$mnt/h/app.bin"
head -c $((3 * MiB + 11)) /dev/urandom >"$WORK/more"
cat "$WORK/more" >>"$model"
cat "$WORK/more" >>"$mnt/h/app.bin"
same_as_model "append" h/app.bin

log "51 MiB (sha1-fl) in 1 MiB writes"
random_file "$model" $((51 * MiB + 7))
dd if="$model" of="$mnt/h/big.bin" bs=1M status=none
same_as_model "sha1-fl" h/big.bin

log "all of it after a remount"
remount "$inst" "$mnt"
for k in cp patch trunc app big; do
	[[ -s "$mnt/h/$k.bin" ]] || fail "h/$k.bin is empty after remount"
done
umount_fs "$mnt"
check_store "$inst"

e2e_pass
