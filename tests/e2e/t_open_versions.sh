#!/usr/bin/env bash
# t_open_versions.sh — an open file keeps the version it opened.  A reader
# holding a file open reads the old bytes, whole, while a writer on the same
# mount overwrites part of the file in place (before and after that writer's
# close saves it) and while another mount saves a new version; only a new
# open reads the new bytes.  The rules of the core's open-file table
# (core/open.h) seen through real system calls; issue 15 keeps them when
# versions become inodes.
# timeout: 300
. "$(dirname "$0")/lib.sh"
e2e_begin

inst=$(instance_new inst)
ma=$WORK/a
mb=$WORK/b
random_file "$WORK/v1" $((2 * MiB))
random_file "$WORK/v3" $((3 * MiB))

mount_fs "$inst" "$ma"
mount_fs "$inst" "$mb" -o cache_timeout=0
cp "$WORK/v1" "$ma/data.bin"

log "a reader on this mount never sees a writer's bytes, saved or not"
# The reader reads all of it in 64 KiB pieces each time, so no single
# request could hide a mix of versions.
out=$(python3 - "$ma/data.bin" "$WORK/v1" <<'PY'
import hashlib, os, sys
path, ref = sys.argv[1], sys.argv[2]
old = open(ref, 'rb').read()
def whole(fd):
    out, off = [], 0
    while True:
        b = os.pread(fd, 65536, off)
        if not b:
            return b''.join(out)
        out.append(b)
        off += len(b)
r = os.open(path, os.O_RDONLY)
assert whole(r) == old, "reader: first read"
w = os.open(path, os.O_WRONLY)            # in place, no O_TRUNC
os.pwrite(w, b'X' * 100000, 4096)
assert whole(r) == old, "reader saw unsaved bytes"
os.close(w)                               # saves the new version
assert whole(r) == old, "reader saw the new version"
r2 = os.open(path, os.O_RDONLY)
new = whole(r2)
assert new == old[:4096] + b'X' * 100000 + old[4096 + 100000:], "a new open reads the save"
assert whole(r) == old, "the first reader still reads its version"
os.close(r)
os.close(r2)
print("OK")
PY
)
assert_eq "reader and writer on one mount" "OK" "$out"

log "a reader on another mount keeps its version across a save there"
cp "$ma/data.bin" "$WORK/v2"
exec {rfd}<"$mb/data.bin"
head -c 1000 <&$rfd >/dev/null
cp "$WORK/v3" "$ma/data.bin"
assert_same_file "new open on the saving mount" "$WORK/v3" "$ma/data.bin"
assert_same_file "new open on the other mount" "$WORK/v3" "$mb/data.bin"
got=$(python3 -c 'import hashlib, os, sys
fd = int(sys.argv[1])
h, off = hashlib.sha256(), 0
while True:
    b = os.pread(fd, 65536, off)
    if not b:
        break
    h.update(b)
    off += len(b)
print(h.hexdigest())' "$rfd")
exec {rfd}<&-
assert_eq "held descriptor reads the version it opened" "$(sha256_of "$WORK/v2")" "$got"

log "every version is stored"
assert_eq "versions at the key" "3" \
	"$(sql "$inst" "select count(*) from artifact where key = 'data.bin'")"

umount_fs "$mb"
umount_fs "$ma"
e2e_pass
