#!/usr/bin/env bash
# t_cache_timeout.sh — the kernel caches names and attributes for
# cache_timeout seconds (default 1), and lamfs keeps this mount exact anyway:
# with every path stat'ed (so cached) first, a save committed at close(), a
# failed save, chmod, touch, truncate, rm, mv (of a file and of a folder) and
# rmdir are seen by the very next stat, with no wait.  Across two mounts, a
# file created on A is seen on B at once (no negative caching), and a change
# or delete on A is seen on B within the timeout (polled, generous bound).
# Also: cache_timeout values are checked (refused with a message, nothing
# mounted), `ls -l` agrees with stat (READDIRPLUS attributes), getxattr of
# security.* and system.* names gives EOPNOTSUPP (so ls -l stops asking after
# the first file), other user.* names ENODATA, st_blksize is 1 MiB, and the mount
# root shows the mounting user and the instance's creation time, and refuses
# chmod/chown with EPERM.
# timeout: 400
. "$(dirname "$0")/lib.sh"
e2e_begin

inst=$(instance_new inst)
ma=$WORK/a
mb=$WORK/b
mkdir -p "$ma" "$mb"

log "cache_timeout values are checked"
for v in '' abc -1 1e3 3601 '1.2.3' ' 1' '0x10' "$(printf '9%.0s' $(seq 1 40))" $'1\x1b'; do
	rc=0
	out=$(timeout 60 "$LAMFS_BIN" mount "$inst" "$ma" -o "cache_timeout=$v" 2>&1 </dev/null) ||
		rc=$?
	is_mounted "$ma" && { umount_fs "$ma"; fail "cache_timeout='$v' mounted"; }
	[[ $rc -ne 0 ]] || fail "cache_timeout='$v': exit 0"
	assert_match "cache_timeout='$v': message" \
		"invalid value '.*' for mount option 'cache_timeout' \(seconds, 0 to 3600\)" "$out"
	[[ "$out" != *$'\x1b'* ]] || fail "the message echoes a control character"
done
for v in 0 0.25 3600 2; do
	mount_fs "$inst" "$ma" -o "cache_timeout=$v"
	umount_fs "$ma"
done
mount_fs "$inst" "$ma" -o cache_timeout=7,cache_timeout=1   # the last one wins
umount_fs "$ma"

mount_fs "$inst" "$ma"
mount_fs "$inst" "$mb"

log "the mount root"
conf_mtime=$(stat -c %Y "$inst/lamfs.conf")
assert_eq "root mtime is the instance's creation" "$conf_mtime" "$(stat -c %Y "$ma")"
assert_eq "root owner is the mounting user" "$(id -u):$(id -g)" "$(stat -c %u:%g "$ma")"
assert_errno EPERM chmod "$ma" 700
assert_fails "chown of the root" chown 1234 "$ma"
assert_match "chown of the root: errno" "Operation not permitted" "$E2E_LAST_ERR"
assert_eq "root mode unchanged" 755 "$(stat -c %a "$ma")"

log "this mount: every change is seen by the next stat"
mkdir "$ma/d"
echo one >"$ma/d/f"
stat "$ma/d/f" >/dev/null
echo "two, longer" >"$ma/d/f"            # a new version, committed at close()
assert_eq "size after the second save" 12 "$(stat -c %s "$ma/d/f")"
echo more >>"$ma/d/f"
assert_eq "size after the append" 17 "$(stat -c %s "$ma/d/f")"
assert_eq "st_blksize" 1048576 "$(stat -c %o "$ma/d/f")"
chmod 600 "$ma/d/f"
assert_eq "mode after chmod" 600 "$(stat -c %a "$ma/d/f")"
touch -d '2001-02-03 04:05:06 UTC' "$ma/d/f"
assert_eq "mtime after touch -d" 981173106 "$(stat -c %Y "$ma/d/f")"
truncate -s 3 "$ma/d/f"
assert_eq "size after truncate" 3 "$(stat -c %s "$ma/d/f")"
mv "$ma/d/f" "$ma/d/g"
assert_errno ENOENT stat "$ma/d/f"
assert_eq "renamed file" "two" "$(cat "$ma/d/g")"
stat "$ma/d/g" >/dev/null
mv "$ma/d" "$ma/e"
assert_errno ENOENT stat "$ma/d/g"
assert_errno ENOENT stat "$ma/d"
assert_eq "under the renamed folder" "two" "$(cat "$ma/e/g")"
rm "$ma/e/g"
assert_errno ENOENT stat "$ma/e/g"
rmdir "$ma/e"
assert_errno ENOENT stat "$ma/e"

if [[ "${E2E_FAULTS:-1}" == 1 ]]; then
	log "a failed save vanishes at once, even with its name cached"
	python3 - "$ma/failed.txt" "$FAULT_FILE" <<'EOF' >"$WORK/failed.out"
import os, sys
path, fault = sys.argv[1:3]
fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
os.write(fd, b"never stored\n")
os.stat(path)                       # name and attributes now in the kernel cache
open(fault, "w").write("backend.put=EACCES\n")
try:
    os.close(fd)
    print("close OK")
except OSError as e:
    print("close errno", e.errno)
open(fault, "w").close()
try:
    os.stat(path)
    print("stat OK")
except OSError as e:
    print("stat errno", e.errno)
EOF
	assert_eq "failed save, then stat" "close errno 13
stat errno 2" "$(cat "$WORK/failed.out")"
	assert_eq "ls after the failed save" "" "$(ls -A "$ma")"

	log "a failed save, then the same cp again at once: it creates the file"
	python3 - "$ma/again.txt" "$FAULT_FILE" <<'EOF' >"$WORK/again.out"
import os, sys
path, fault = sys.argv[1:3]
fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
os.write(fd, b"first try\n")
os.stat(path)                       # name and attributes now in the kernel cache
open(fault, "w").write("backend.put=ENOSPC\n")
try:
    os.close(fd)
    print("close OK")
except OSError as e:
    print("close errno", e.errno)
open(fault, "w").close()
try:                                # as cp does: no stat first
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.write(fd, b"second try\n")
    os.close(fd)
    print("again OK")
except OSError as e:
    print("again errno", e.errno)
EOF
	assert_eq "failed save, then open again" "close errno 28
again OK" "$(cat "$WORK/again.out")"
	assert_eq "again.txt" "second try" "$(cat "$ma/again.txt")"
	rm "$ma/again.txt"
fi

log "ls -l agrees with stat (attributes from READDIRPLUS)"
mkdir "$ma/many"
for i in $(seq 1 300); do printf '%*s' "$i" x >"$ma/many/f$i"; done
chmod 640 "$ma/many/f7"
ls -ln --time-style=+%s "$ma/many" | awk 'NR > 1 { print $7, $1, $3, $4, $5, $6 }' |
	sort >"$WORK/ls.out"
(cd "$ma/many" && stat -c '%n %A %u %g %s %Y' -- *) | sort >"$WORK/stat.out"
assert_eq "ls -l vs stat" "$(cat "$WORK/stat.out")" "$(cat "$WORK/ls.out")"
assert_eq "entries" 300 "$(wc -l <"$WORK/ls.out")"

log "xattrs: no labels or ACLs (EOPNOTSUPP), other user.* names absent"
assert_fails "getfattr security.selinux" getfattr -n security.selinux "$ma/many/f1"
assert_match "security.selinux" "Operation not supported" "$E2E_LAST_ERR"
assert_fails "getfattr system.posix_acl_access" getfattr -n system.posix_acl_access "$ma/many/f1"
assert_match "posix_acl_access" "Operation not supported" "$E2E_LAST_ERR"
assert_fails "getfattr user.other" getfattr -n user.other "$ma/many/f1"
assert_match "user.other" "No such attribute" "$E2E_LAST_ERR"
assert_fails "setfattr security.test" setfattr -n security.test -v x "$ma/many/f1"
assert_match "setfattr security.test" "Operation not supported" "$E2E_LAST_ERR"
assert_eq "user.lamfs.version" "0000" "$(xattr "$ma/many/f1" user.lamfs.version)"
# So ls -l asks for a label and an ACL once per mount, not once per file
# (coreutils remembers a device that does not support them).
strace -f -o "$WORK/ls.strace" -e trace=getxattr,lgetxattr ls -l "$ma/many" >/dev/null
n=$(grep -c 'getxattr(' "$WORK/ls.strace" || true)
log "ls -l of 300 files: $n getxattr calls"
[[ $n -le 4 ]] || fail "ls -l made $n getxattr calls for 300 files (want <= 4)"

log "two mounts: a new file on A is seen on B at once (no negative caching)"
assert_errno ENOENT stat "$mb/x.txt"
assert_errno ENOENT stat "$mb/x.txt"
echo "from A" >"$ma/x.txt"
assert_eq "B sees the new file at once" "from A" "$(cat "$mb/x.txt")"

# seen_on_b WHAT CMD...: CMD (a check on B) must come true within 10 s, ten
# times the default cache_timeout (a loaded machine may be slow).
seen_on_b() {
	local what=$1 i
	shift
	for ((i = 0; i < 100; i++)); do
		"$@" && { log "$what: seen on B after ~$((i / 10)).$((i % 10)) s"; return 0; }
		sleep 0.1
	done
	fail "$what: not seen on B within 10 s"
}
size_is() { [[ "$(stat -c %s "$1" 2>/dev/null)" == "$2" ]]; }
gone() { [[ "$(errno_of stat "$1")" == ENOENT ]]; }

stat "$mb/x.txt" >/dev/null
echo "from A, changed" >"$ma/x.txt"
seen_on_b "a change on A" size_is "$mb/x.txt" 16
assert_eq "B reads the new version" "from A, changed" "$(cat "$mb/x.txt")"
stat "$mb/x.txt" >/dev/null
rm "$ma/x.txt"
seen_on_b "a delete on A" gone "$mb/x.txt"
assert_errno ENOENT open "$mb/x.txt"

log "cache_timeout=0: another mount's delete is seen by the next stat"
umount_fs "$mb"
mount_fs "$inst" "$mb" -o cache_timeout=0
echo y >"$ma/y.txt"
stat "$mb/y.txt" >/dev/null
rm "$ma/y.txt"
assert_errno ENOENT stat "$mb/y.txt"

umount_fs "$mb"
umount_fs "$ma"
e2e_pass
