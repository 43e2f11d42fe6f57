#!/usr/bin/env bash
# t_writeback_reopen.sh — on a write-back mount, a file keeps taking writes
# after a save was handed to the queue, and an append to a file whose upload
# is still pending appends to what was written, not to an older version or to
# nothing.  Each case runs with the upload held back (backend.put=EIO), where
# the race with the upload cannot hide the problem, after a run without faults:
#  1. write, fsync, write, close on one descriptor: every call returns 0 and
#     the file reads both writes;
#  2. a shell descriptor shared by two programs (exec 3>F; prog >&3; prog >&3),
#     each program's exit flushes the file: both outputs are kept;
#  3. cp F && echo row >> F (and the same over an older committed version):
#     F reads the copied bytes followed by the row.
# timeout: 300
# shellcheck disable=SC2016,SC2317 # wait_until evals single-quoted code
. "$(dirname "$0")/lib.sh"
e2e_begin
# A held upload makes lookups on the writing mount wait LAMFS_WB_WAIT seconds
# before answering without it; keep that short here.
export LAMFS_WB_WAIT=3
require_faults

export LAMFS_WB_RETRIES=1000 LAMFS_WB_BACKOFF_MS=5

inst=$(instance_new inst)
mnt=$WORK/mnt
mount_fs "$inst" "$mnt" -o writeback

wait_until() {
	local secs=$1 what=$2 code=$3 i
	for ((i = 0; i < secs * 5; i++)); do
		if eval "$code"; then
			return 0
		fi
		sleep 0.2
	done
	fail "$what: still not true after ${secs}s: $code$(log_tail "$inst")"
}
flagged() { sql "$inst" "select count(*) from artifact where _aux is not null"; }

# write_fsync_write PATH: "OK OK OK OK" when open, write+fsync, write, close
# all succeed, else the errno of each step.
write_fsync_write() {
	python3 - "$1" <<'EOF'
import errno, os, sys
out = []
def step(f):
    try:
        r = f()
        out.append("OK")
        return r
    except OSError as e:
        out.append(errno.errorcode.get(e.errno, str(e.errno)))
fd = step(lambda: os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644))
if fd is not None:
    step(lambda: (os.write(fd, b"one\n"), os.fsync(fd)))
    step(lambda: os.write(fd, b"two\n"))
    step(lambda: os.close(fd))
print(" ".join(out))
EOF
}

printf 'one\ntwo\n' >"$WORK/onetwo"
printf 'first\nsecond\n' >"$WORK/firstsecond"
printf 'header\n' >"$WORK/header"
printf 'old\n' >"$WORK/old"
printf 'header\nrow\n' >"$WORK/header_row"

for how in free held; do
	log "==== uploads $how"
	d=$mnt/$how
	mkdir "$d"
	[[ $how == held ]] && fault_set "backend.put=EIO"

	log "$how: write, fsync, write, close"
	assert_eq "$how: open, write+fsync, write, close" "OK OK OK OK" "$(write_fsync_write "$d/wfw.txt")"

	log "$how: one shell descriptor, two programs"
	rc=0
	exec 3>"$d/shared.txt"
	/bin/echo first >&3 || rc=1
	/bin/echo second >&3 || rc=$((rc + 2))
	exec 3>&-
	assert_eq "$how: both programs wrote (1: first failed, 2: second failed)" 0 "$rc"

	log "$how: cp, then append"
	cp "$WORK/header" "$d/app.txt"
	rc=0
	echo row >>"$d/app.txt" || rc=1
	assert_eq "$how: append right after cp" 0 "$rc"

	log "$how: append over an older committed version"
	cp "$WORK/old" "$d/app2.txt"
	fault_clear
	wait_until 60 "app2.txt committed" '[[ "$(errno_of stat "$d/app2.txt")" == OK ]]'
	wait_until 60 "nothing pending" '[[ $(flagged) == 0 ]]'
	[[ $how == held ]] && fault_set "backend.put=EIO"
	cp "$WORK/header" "$d/app2.txt"
	echo row >>"$d/app2.txt"

	fault_clear
	wait_until 60 "all uploads done" '[[ $(flagged) == 0 ]]'
	assert_same_file "$how: write, fsync, write" "$WORK/onetwo" "$d/wfw.txt"
	assert_same_file "$how: two programs on one descriptor" "$WORK/firstsecond" "$d/shared.txt"
	assert_same_file "$how: cp, then append" "$WORK/header_row" "$d/app.txt"
	assert_same_file "$how: cp over an old version, then append" "$WORK/header_row" "$d/app2.txt"
done

umount_fs "$mnt"
check_store "$inst"
e2e_pass
