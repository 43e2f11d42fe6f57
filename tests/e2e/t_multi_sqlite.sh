#!/usr/bin/env bash
# t_multi_sqlite.sh — two mounts of one instance on one machine (SQLite and
# local storage; one instance directory mounted on two mount points):
# multi_mounts_suite (lib.sh): written on one, read byte-exact on the other;
# both saving one key 100 times at once while a reader on each checks every
# read (every save a version, exactly one latest, nothing partial visible);
# rename, overwrite and delete seen across the mounts.  Then each mount owns
# its in-flight save: a save held open on A survives B's unmount and remount
# (B's start-up recovery) and commits; lamfs-repair refuses while a mount is
# live.
# timeout: 600
. "$(dirname "$0")/lib.sh"
e2e_begin

inst=$(instance_new inst)
ma=$WORK/a
mb=$WORK/b
mount_fs "$inst" "$ma"
mount_fs "$inst" "$mb"
assert_ne "daemons of the two mounts" "$(daemon_pid "$ma")" "$(daemon_pid "$mb")"

multi_mounts_suite "$inst" "$ma" "$inst" "$mb"

log "a save in flight on A survives B's remount (start-up recovery) and commits"
random_file "$WORK/held" $((2 * MiB + 3))
mkdir -p "$WORK/ctl"
python3 - "$WORK/held" "$ma/x/held.bin" "$WORK/ctl" <<'EOF' &
import os, sys, time
src, dst, ctl = sys.argv[1:4]
data = open(src, 'rb').read()
fd = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
os.write(fd, data[:len(data) // 2])
open(os.path.join(ctl, 'half'), 'w').close()
while not os.path.exists(os.path.join(ctl, 'go')):
    time.sleep(0.05)
os.write(fd, data[len(data) // 2:])
try:
    os.close(fd)
    r = 'OK'
except OSError as e:
    r = 'errno %d' % e.errno
open(os.path.join(ctl, 'result'), 'w').write(r)
EOF
hp=$!
for ((i = 0; i < 200; i++)); do [[ -e "$WORK/ctl/half" ]] && break; sleep 0.05; done
[[ -e "$WORK/ctl/half" ]] || fail "the held writer did not start"
staged=$(staging_files "$inst")
log "staging while A's save is open: $(tr '\n' ' ' <<<"$staged")"
[[ -n "$staged" ]] || fail "no staging file for the open save on A"
remount "$inst" "$mb"
assert_eq "staging after B's remount" "$staged" "$(staging_files "$inst")"
assert_errno ENOENT stat "$mb/x/held.bin"
rc=0
out=$("$(dirname "$LAMFS_BIN")/lamfs-repair" "$inst" 2>&1 </dev/null) || rc=$?
log "lamfs-repair while mounted: exit $rc: $out"
[[ $rc -ne 0 && $rc -ne 1 ]] || fail "lamfs-repair ran on a live instance (exit $rc): $out"
assert_eq "staging after the refused repair" "$staged" "$(staging_files "$inst")"
touch "$WORK/ctl/go"
wait "$hp" || fail "the held writer failed"
assert_eq "close() of the save held across B's remount" OK "$(cat "$WORK/ctl/result")"
await_path "the held save, on B" present "$mb/x/held.bin"
assert_same_file "x/held.bin on B" "$WORK/held" "$mb/x/held.bin"
assert_same_file "x/held.bin on A" "$WORK/held" "$ma/x/held.bin"

umount_fs "$ma"
umount_fs "$mb"
check_store "$inst"
e2e_pass
