#!/usr/bin/env bash
# t_write_modes.sh — the ways programs write besides cp: O_APPEND, writes in
# the middle of an existing artifact (copy-on-write, a new version on close),
# out-of-order and sparse writes, truncate both ways, read-your-writes on an
# open descriptor, fsync, and editors that save through a temp file and
# rename.  After each, the bytes and the hash/checksum xattrs equal those of
# the same edit made to a local copy.
# timeout: 300
. "$(dirname "$0")/lib.sh"
e2e_begin

inst=$(instance_new inst)
mnt=$WORK/mnt
mount_fs "$inst" "$mnt"
mkdir "$mnt/w"
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

log "O_APPEND makes a new version"
echo "line one" >"$model"
cp "$model" "$mnt/w/log.txt"
uid0=$(xattr "$mnt/w/log.txt" user.lamfs.uid)
echo "line two" >>"$model"
echo "line two" >>"$mnt/w/log.txt"
same_as_model "append" w/log.txt
assert_eq "version after append" "${uid0:0:16}0001" "$(xattr "$mnt/w/log.txt" user.lamfs.uid)"

log "a write in the middle of an existing artifact (no O_TRUNC) keeps the rest"
random_file "$model" $((3 * MiB))
cp "$model" "$mnt/w/mid.bin"
printf 'PATCHED' | dd of="$model" bs=1 seek=$((MiB + 5)) conv=notrunc status=none
printf 'PATCHED' | dd of="$mnt/w/mid.bin" bs=1 seek=$((MiB + 5)) conv=notrunc status=none
same_as_model "patch in the middle" w/mid.bin
cp "$model" "$WORK/mid.model"

log "out-of-order writes and a hole"
cp /dev/null "$model"
for f in "$model" "$mnt/w/ooo.bin"; do
	py 'fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT, 0o644)
os.pwrite(fd, b"C" * 70000, 200000)
os.pwrite(fd, b"A" * 100, 0)
os.pwrite(fd, b"B" * 5000, 50)
os.fsync(fd)
os.close(fd)' "$f"
done
same_as_model "out-of-order writes" w/ooo.bin

log "a sparse file past 50 MiB gets the sha1-fl hash"
for f in "$model" "$mnt/w/sparse.bin"; do
	py 'fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
os.pwrite(fd, b"head", 0)
os.pwrite(fd, b"tail", 60 * 1024 * 1024)
os.close(fd)' "$f"
done
same_as_model "sparse 60 MiB" w/sparse.bin

log "truncate shorter and longer"
cp "$WORK/mid.model" "$model"
truncate -s 1000 "$model"
truncate -s 1000 "$mnt/w/mid.bin"
same_as_model "truncate to 1000" w/mid.bin
truncate -s 5000 "$model"
truncate -s 5000 "$mnt/w/mid.bin"
same_as_model "truncate up to 5000" w/mid.bin
assert_errno OK truncate "$mnt/w/mid.bin" 0
: >"$model"
same_as_model "truncate to 0" w/mid.bin

log "truncate(2) by name right after close(): the new length at once"
# A dup'ed descriptor keeps the closed writer's release back, as the kernel's
# asynchronous release can: truncate must not fall to that closed writer and
# wait for its release, but make the new version now (the exerciser found it).
head -c 3000 /dev/urandom >"$model"
got=$(py 'p = sys.argv[1]
fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
os.write(fd, open(sys.argv[2], "rb").read())
keep = os.dup(fd)
os.close(fd)
os.truncate(p, 7000)
print(os.stat(p).st_size, len(open(p, "rb").read()))
os.close(keep)' "$mnt/w/late.bin" "$model")
truncate -s 7000 "$model"
assert_eq "size and bytes read after truncate, before the release" "7000 7000" "$got"
same_as_model "truncate after close, release later" w/late.bin

log "read your writes on one descriptor (O_RDWR)"
got=$(py 'fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
os.write(fd, b"hello world")
os.lseek(fd, 0, 0)
print(os.read(fd, 100).decode())
os.close(fd)' "$mnt/w/rw.txt")
assert_eq "read back before close" "hello world" "$got"
assert_eq "read back after close" "hello world" "$(cat "$mnt/w/rw.txt")"

log "an editor's save: write a temp file, fsync, rename over the original"
echo "draft 1" >"$mnt/w/doc.txt"
py 'fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
os.write(fd, b"draft 2\n")
os.fsync(fd)
os.close(fd)
os.rename(sys.argv[1], sys.argv[2])' "$mnt/w/.doc.txt.swp" "$mnt/w/doc.txt"
assert_eq "doc after the editor's save" "draft 2" "$(cat "$mnt/w/doc.txt")"
assert_absent "editor's temp file" "$mnt/w/.doc.txt.swp"

log "a file being written is visible to this mount before close"
got=$(py 'import subprocess
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
os.write(fd, b"x" * 10)
r = subprocess.run(["stat", "-c", "%F", sys.argv[1]], capture_output=True, text=True)
os.close(fd)
print(r.stdout.strip() or r.stderr.strip())' "$mnt/w/open.txt")
assert_eq "stat from another process while open" "regular file" "$got"

log "all of it after a remount"
remount "$inst" "$mnt"
assert_eq "log.txt after remount" "$(printf 'line one\nline two')" "$(cat "$mnt/w/log.txt")"
assert_eq "doc after remount" "draft 2" "$(cat "$mnt/w/doc.txt")"
assert_eq "size of sparse.bin after remount" "$((60 * MiB + 4))" "$(stat -c %s "$mnt/w/sparse.bin")"
umount_fs "$mnt"
check_store "$inst"

e2e_pass
