#!/usr/bin/env bash
# t_exerciser.sh — the model-checked random exerciser (tests/posix/exerciser.py):
# a fixed seed, 100,000 random open/write/pwrite/read/pread/mmap/ftruncate/
# truncate/fsync/close/rename/unlink/mkdir/rmdir operations on a mount and,
# step for step, on a reference directory on the native disk; every outcome
# and, after every step, the names it touched must be the same on both sides.
# Then: the daemon is still alive, unmounts cleanly, and the store is
# consistent (check_store).  On this machine (2 shared cores) 100,000
# operations take about 2-3 minutes.
#
# Environment: EXERCISER_SEED (default 20261121; "random" for a fresh one,
# printed), EXERCISER_OPS (default 100000), EXERCISER_AVOID (known bugs to
# steer clear of, see exerciser.py --avoid; default mmap,unlinked-fd).
# timeout: 600
. "$(dirname "$0")/lib.sh"
e2e_begin

seed=${EXERCISER_SEED:-20261121}
[[ "$seed" == random ]] && seed=$(od -An -N4 -tu4 /dev/urandom | tr -d ' ')
ops=${EXERCISER_OPS:-100000}
# mmap, unlinked-fd: documented lamfs limits (files opened by name use direct
# I/O, mmap works on /.lamfs/uid/<uid>; fstat of a descriptor whose name was
# removed fails), not bugs
avoid=${EXERCISER_AVOID:-mmap,unlinked-fd}

inst=$(instance_new inst)
mnt=$WORK/mnt
ref=$WORK/ref
mkdir -p "$ref"
mount_fs "$inst" "$mnt"
pid=$(daemon_pid "$mnt")

log "exerciser: seed $seed, $ops operations${avoid:+, avoiding $avoid}"
rc=0
python3 "$REPO/tests/posix/exerciser.py" "$mnt" "$ref" --seed "$seed" --ops "$ops" \
	${avoid:+--avoid "$avoid"} || rc=$?
# alive PID: running, not a zombie (where PID 1 does not reap, a crashed
# daemon stays a zombie, and kill -0 would call it alive)
alive() { [[ -r /proc/$1/stat && "$(awk '{ print $3 }' "/proc/$1/stat" 2>/dev/null)" != Z ]]; }
if [[ -n "$pid" ]] && ! alive "$pid"; then
	fail "the lamfs daemon (pid $pid) died during the exerciser run (seed $seed)$(log_tail "$inst")"
fi
[[ $rc -eq 0 ]] || fail "exerciser diverged (seed $seed): see above"

umount_fs "$mnt"
check_store "$inst"
e2e_pass
