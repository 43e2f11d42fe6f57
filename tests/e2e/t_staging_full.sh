#!/usr/bin/env bash
# t_staging_full.sh — the staging disk runs full (INSTANCE/staging is an 8 MiB
# tmpfs), in sync mode and in write-back mode:
#  - cp of a 20 MiB file fails with ENOSPC ("No space left on device"); a
#    program sees ENOSPC from write(); nothing is saved: no row, no object,
#    nothing listed, staging empty once the file is closed;
#  - the mount keeps working: a small file saves fine right after;
#  - while another writer holds 6 MiB of staging, a 4 MiB copy fails with
#    ENOSPC and an append to an existing 3 MiB file fails with ENOSPC leaving
#    that file's version untouched; once the writer closes (its file saves
#    fine) the same 4 MiB copy saves fine;
#  - write-back only: pending uploads (backend.put=EIO) filling staging make a
#    new copy fail with ENOSPC, the pending ones are unharmed, and once they
#    are uploaded the space is back.
# timeout: 300
# shellcheck disable=SC2016,SC2317 # wait_until evals single-quoted code
. "$(dirname "$0")/lib.sh"
e2e_begin
[[ $(id -u) == 0 ]] || skip "needs root to mount a tmpfs as the staging folder"

export LAMFS_WB_RETRIES=1000 LAMFS_WB_BACKOFF_MS=5

# Cleanup on every exit: the holder process, then lamfs (its daemon keeps
# files open in staging), then the staging tmpfs; then lib's own cleanup.
TMPFS=()
holder=
_sf_cleanup() {
	local t f pid
	trap - ERR
	set +e
	: >"$FAULT_FILE" # let a draining write-back daemon finish quickly
	[[ -n "$holder" ]] && kill "$holder" 2>/dev/null && wait "$holder" 2>/dev/null
	for t in "$WORK"/mnt-*; do
		[[ -d "$t" ]] && force_umount_all "$t"
	done
	for f in "$WORK"/.daemons/*; do
		[[ -f "$f" ]] || continue
		pid=$(cat "$f")
		if [[ -n "$pid" ]] && ! wait_pid_gone "$pid" 10; then
			kill -TERM "$pid" 2>/dev/null
			wait_pid_gone "$pid" 5 || kill -KILL "$pid" 2>/dev/null
			wait_pid_gone "$pid" 5
		fi
		rm -f -- "$f"
	done
	for t in "${TMPFS[@]}"; do
		is_mounted "$t" && { umount -- "$t" 2>/dev/null || umount -l -- "$t"; }
	done
	return 0
}
trap 'rc=$?; _sf_cleanup; (exit $rc); _e2e_exit' EXIT

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
rows() { sql "$inst" "select uid, key, coalesce(_aux, ''), is_latest from artifact order by uid"; }

# Staging files other than the error notes of pending uploads: a retrying
# upload rewrites <uid>.err through <uid>.err.tmp at any moment.
staged() { staging_files "$inst" | grep -vE '\.err(\.tmp)?$' || true; }

# snapshot: remember rows, objects and staging; nothing_saved WHAT KEY compares.
snapshot() {
	rows0=$(rows)
	objs0=$(objects_snapshot "$root")
	stg0=$(staged)
}
nothing_saved() {
	local what=$1 key=$2
	assert_eq "$what: rows at $key" "" "$(rows_at "$inst" "$key" uid)"
	assert_eq "$what: all rows" "$rows0" "$(rows)"
	assert_eq "$what: objects" "$objs0" "$(objects_snapshot "$root")"
	assert_eq "$what: staging files" "$stg0" "$(staged)"
	assert_absent "$what: $key on the mount" "$mnt/$key"
	grep -qxF "$key" <<<"$(ls -A -- "$mnt")" && fail "$what: ls lists $key"
	return 0
}

# saved WHAT KEY SRC: KEY becomes visible with SRC's bytes (write-back: soon).
saved() {
	local _key=$2 # wait_until evals its code in its own frame: no $1, $2 there
	wait_until 60 "$1: $2 listed" '[[ "$(errno_of stat "$mnt/$_key")" == OK && $(flagged) == 0 ]]'
	assert_same_file "$1: $2" "$3" "$mnt/$2"
	assert_eq "$1: $2 committed and latest" "|1" "$(rows_at "$inst" "$2" "coalesce(_aux, ''), is_latest" | tail -n1)"
}

big=$WORK/big20.bin
random_file "$big" $((20 * MiB))
four=$WORK/four.bin
random_file "$four" $((4 * MiB))
three=$WORK/three.bin
random_file "$three" $((3 * MiB))
small=$WORK/small.bin
random_file "$small" 10000
hold_src=$WORK/hold.bin
random_file "$hold_src" $((6 * MiB))

for mode in sync writeback; do
	log "==== $mode mode"
	inst=$(instance_new "inst-$mode")
	root=$(storage_of "$inst")
	mnt=$WORK/mnt-$mode
	mount -t tmpfs -o size=8m,mode=0700 tmpfs "$inst/staging"
	TMPFS+=("$inst/staging")
	opts=()
	[[ $mode == writeback ]] && opts=(-o writeback)
	mount_fs "$inst" "$mnt" "${opts[@]}"

	log "$mode: cp of a 20 MiB file into 8 MiB of staging"
	snapshot
	assert_fails "cp of 20 MiB" cp "$big" "$mnt/big.bin"
	assert_match "cp's message" "No space left on device" "$E2E_LAST_ERR"
	sleep 0.5 # write-back: a save, if one was made, has time to show
	nothing_saved "$mode, after the failed cp" big.bin

	log "$mode: write() itself reports ENOSPC"
	assert_eq "errno of the 20 MiB copy" "ENOSPC@write" "$(errno_of copy "$big" "$mnt/big2.bin")"
	sleep 0.5
	nothing_saved "$mode, after the failed copy" big2.bin

	log "$mode: the mount keeps working"
	cp "$small" "$mnt/small.bin"
	saved "$mode, after ENOSPC" small.bin "$small"
	cp "$three" "$mnt/three.bin"
	saved "$mode" three.bin "$three"
	three_uid=$(xattr "$mnt/three.bin" user.lamfs.uid)
	assert_eq "$mode: staging empty again" "" "$(staging_files "$inst")"

	log "$mode: another writer holds 6 MiB of staging"
	rm -f "$WORK/hold.ready" "$WORK/hold.go" "$WORK/hold.out"
	python3 - "$hold_src" "$mnt/hold.bin" "$WORK/hold.ready" "$WORK/hold.go" \
		>"$WORK/hold.out" 2>&1 <<'EOF' &
import errno, os, sys, time
src, dst, ready, go = sys.argv[1:5]
data = memoryview(open(src, "rb").read())
fd = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
while data:
    data = data[os.write(fd, data):]
open(ready, "w").close()
while not os.path.exists(go):
    time.sleep(0.05)
try:
    os.close(fd)
    print("OK")
except OSError as e:
    print(errno.errorcode.get(e.errno, str(e.errno)))
EOF
	holder=$!
	wait_until 60 "the holder wrote its 6 MiB" '[[ -e "$WORK/hold.ready" ]]'
	snapshot
	assert_fails "cp of 4 MiB beside the holder" cp "$four" "$mnt/four.bin"
	assert_match "cp's message" "No space left on device" "$E2E_LAST_ERR"
	sleep 0.5
	nothing_saved "$mode, 4 MiB beside the holder" four.bin

	log "$mode: an append to a 3 MiB file needs a 3 MiB copy in staging"
	rc=0
	printf 'appended\n' >>"$mnt/three.bin" 2>"$WORK/append.err" || rc=$?
	assert_ne "append beside the holder: exit" 0 "$rc"
	assert_match "append's message" "No space left on device" "$(cat "$WORK/append.err")"
	sleep 0.5
	assert_eq "$mode: rows after the failed append" "$rows0" "$(rows)"
	assert_eq "$mode: objects after the failed append" "$objs0" "$(objects_snapshot "$root")"
	assert_eq "$mode: staging after the failed append" "$stg0" "$(staged)"
	assert_same_file "$mode: three.bin untouched" "$three" "$mnt/three.bin"
	assert_eq "$mode: three.bin uid" "$three_uid" "$(xattr "$mnt/three.bin" user.lamfs.uid)"

	log "$mode: the holder closes; its file saves; the space is back"
	touch "$WORK/hold.go"
	wait "$holder"
	holder=
	assert_eq "$mode: the holder's close()" "OK" "$(cat "$WORK/hold.out")"
	saved "$mode" hold.bin "$hold_src"
	wait_until 30 "staging empty after the holder's save" '[[ -z "$(staging_files "$inst")" ]]'
	cp "$four" "$mnt/four.bin"
	saved "$mode, space freed" four.bin "$four"
	assert_eq "$mode: staging empty" "" "$(staging_files "$inst")"

	if [[ $mode == writeback && "${E2E_FAULTS:-1}" == 1 ]]; then
		log "$mode: pending uploads fill staging"
		fault_set "backend.put=EIO"
		for i in 1 2 3; do
			random_file "$WORK/p$i.bin" $((2 * MiB))
			cp "$WORK/p$i.bin" "$mnt/p$i.bin"
		done
		assert_eq "$mode: 3 uploads pending" 3 "$(flagged)"
		snapshot
		assert_fails "cp of 4 MiB beside 6 MiB of pending uploads" cp "$four" "$mnt/four2.bin"
		assert_match "cp's message" "No space left on device" "$E2E_LAST_ERR"
		sleep 0.5
		nothing_saved "$mode, 4 MiB beside pending uploads" four2.bin
		assert_eq "$mode: still 3 uploads pending" 3 "$(flagged)"
		for i in 1 2 3; do
			assert_same_file "$mode: staged bytes of p$i.bin intact" "$WORK/p$i.bin" \
				"$inst/staging/$(rows_at "$inst" "p$i.bin" uid)"
		done
		fault_clear
		for i in 1 2 3; do
			saved "$mode, pending upload" "p$i.bin" "$WORK/p$i.bin"
		done
		wait_until 30 "staging empty after the uploads" '[[ -z "$(staging_files "$inst")" ]]'
		cp "$four" "$mnt/four2.bin"
		saved "$mode, after the uploads freed staging" four2.bin "$four"
	fi

	umount_fs "$mnt"
	check_store "$inst"
	umount -- "$inst/staging"
	is_mounted "$inst/staging" && fail "$inst/staging still mounted"
done

e2e_pass
