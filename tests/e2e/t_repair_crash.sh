#!/usr/bin/env bash
# t_repair_crash.sh — the daemon killed dead at every step of the save
# sequence, in sync and in write-back mode, then lamfs-repair:
#   save.staged      staging fsynced, no record yet          -> gone
#   save.inserted    flagged record, staging file not yet named
#                    staging/<uid> (the remount finds it)    -> completed
#   save.flagged     flagged record, nothing uploaded        -> completed
#   backend.put.mid  flagged record, half an upload          -> completed
#   save.uploaded    object stored, flag not cleared         -> completed
# and three variants where the staged copy is lost or damaged before the
# repair, to reach the tool's other answers:
#   save.uploaded,   staged copy deleted                     -> flag cleared
#   save.flagged,    staged copy deleted                     -> rolled back
#   backend.put.mid, staged copy damaged                     -> rolled back
# Each case: earlier committed files (another key, and for some cases an
# earlier version of the same key) are intact byte for byte throughout; after
# the crash a remount shows no partial artifact (ls, stat, cat); the repair
# exits 1 and says what it did; afterwards the interrupted save is complete
# and visible, or gone without a trace (no row, no object, no staging file);
# the store is consistent, and a second run (also with --verify) exits 0.
# With E2E_STORAGE=s3 the 3 MiB file goes up in 1 MiB multipart parts: a
# crash at backend.put.mid leaves an open multipart upload (checked), and
# after the repair none is left open.  E2E_REPAIR_CRASH_CASES=short keeps one
# case per crash point and outcome (the variants with an earlier version of
# the key are left out where the other cases already reach the same code).
# timeout: 600
. "$(dirname "$0")/lib.sh"
e2e_begin
require_faults

REPAIR_BIN=${LAMFS_REPAIR_BIN:-$(dirname "$LAMFS_BIN")/lamfs-repair}
[[ -x "$REPAIR_BIN" ]] || fail "no lamfs-repair binary at $REPAIR_BIN (set LAMFS_REPAIR_BIN)"
# S3: 3 MiB files in four parts (the test server's minimum part is 1 MiB).
[[ "${E2E_STORAGE:-local}" == s3 ]] && export LAMFS_S3_MULTIPART_THRESHOLD=1M LAMFS_S3_PART_SIZE=1M

# run_repair ARGS...: run lamfs-repair; its output in $REPAIR_OUT, status in $REPAIR_RC.
run_repair() {
	REPAIR_RC=0
	REPAIR_OUT=$("$REPAIR_BIN" "$@" 2>&1 </dev/null) || REPAIR_RC=$?
	log "lamfs-repair $* -> exit $REPAIR_RC"
	sed 's/^/#   /' <<<"$REPAIR_OUT"
}

# wait_visible MNT KEY FILE: in write-back mode a save shows once uploaded.
wait_visible() {
	local i
	for ((i = 0; i < 300; i++)); do
		cmp -s -- "$3" "$1/$2" 2>/dev/null && return 0
		sleep 0.1
	done
	fail "$2 did not become visible with its bytes within 30 s"
}

# no_partial MNT KEY NEW EARLIER: KEY shows the earlier version (or nothing
# when EARLIER is empty) or the complete new bytes, consistently in ls, stat
# and a read — never anything else.
no_partial() {
	local mnt=$1 key=$2 new=$3 earlier=$4 name listed size
	name=$(basename "$key")
	listed=$(ls -A "$mnt/$(dirname "$key")" | grep -cxF "$name" || true)
	if [[ "$(errno_of stat "$mnt/$key")" == ENOENT ]]; then
		[[ -z "$earlier" ]] || fail "$key: the earlier version vanished after the crash"
		assert_eq "$key listed while stat says ENOENT" 0 "$listed"
		assert_errno ENOENT open "$mnt/$key"
		return
	fi
	assert_eq "$key listed while stat finds it" 1 "$listed"
	size=$(stat -c %s "$mnt/$key")
	if [[ -n "$earlier" ]] && cmp -s -- "$earlier" "$mnt/$key"; then
		assert_eq "$key: stat size of the earlier version" "$(stat -c %s "$earlier")" "$size"
	elif cmp -s -- "$new" "$mnt/$key"; then
		assert_eq "$key: stat size of the new version" "$(stat -c %s "$new")" "$size"
	else
		fail "$key: a partial artifact is visible after the crash (size $size)"
	fi
}

# one_case MODE NAME POINT EARLIER(0|1) TAMPER(none|delete|damage) OUTCOME ACTION
one_case() {
	local mode=$1 name=$2 point=$3 earlier=$4 tamper=$5 outcome=$6 action=$7
	local inst root mnt key src v1 keep uid pid rows staged mopts=()
	log "---- $mode: $name: crash at $point (earlier version: $earlier, staged copy: $tamper)"
	inst=$(instance_new "$mode-$name")
	root=$(storage_of "$inst")
	mnt=$WORK/mnt-$mode-$name
	key=d/data.bin
	src=$WORK/$mode-$name.new
	v1=$WORK/$mode-$name.v1
	keep=$WORK/$mode-$name.keep
	random_file "$src" $((3 * MiB + 17))
	random_file "$v1" $((1 * MiB + 5))
	random_file "$keep" 4099
	[[ $mode == writeback ]] && mopts=(-o writeback)

	mount_fs "$inst" "$mnt" "${mopts[@]}"
	mkdir "$mnt/d"
	cp "$keep" "$mnt/keep.bin"
	[[ $earlier == 1 ]] && cp "$v1" "$mnt/$key"
	if [[ $mode == writeback ]]; then
		wait_visible "$mnt" keep.bin "$keep"
		[[ $earlier == 1 ]] && wait_visible "$mnt" "$key" "$v1"
	fi
	pid=$(daemon_pid "$mnt")

	fault_set "$point=crash"
	if [[ $mode == sync ]]; then
		assert_fails "cp while the daemon dies at $point" cp "$src" "$mnt/$key"
	else
		# close() may return before the upload that dies: either way is fine.
		cp "$src" "$mnt/$key" 2>/dev/null || true
	fi
	wait_pid_gone "$pid" 30 || fail "daemon $pid did not die at $point"
	fault_clear
	dead_umount "$mnt"

	uid=$(sql "$inst" "select uid from artifact where key = '$key' and _aux is not null")
	case $point in
	save.staged) assert_eq "flagged rows after a crash at $point" "" "$uid" ;;
	*) assert_match "flagged row after a crash at $point" '^[0-9A-Za-z]{20}$' "$uid" ;;
	esac
	if [[ $point == backend.put.mid && $(storage_kind "$root") == s3 ]]; then
		grep -q "^$uid\.bin " <<<"$(open_uploads "$root")" ||
			fail "no open multipart upload of $uid.bin after a crash mid-upload"
	fi
	staged=$inst/staging/$uid
	case $tamper in
	delete) rm -f -- "$staged" ;;
	damage)
		# A new file under the name: the old inode may be shared with storage.
		head -c 1000 /dev/urandom >"$staged.x"
		mv -f -- "$staged.x" "$staged"
		;;
	esac

	if [[ $point == save.inserted ]]; then
		[[ -e $staged ]] && fail "staging/$uid exists after a crash before it was named"
		staging_files "$inst" | grep -q '^w\.' ||
			fail "no anonymous staging file after a crash at $point"
	fi

	log "after a remount nothing partial is visible"
	mount_fs "$inst" "$mnt"
	assert_same_file "keep.bin after the crash" "$keep" "$mnt/keep.bin"
	no_partial "$mnt" "$key" "$src" "$([[ $earlier == 1 ]] && echo "$v1")"
	umount_fs "$mnt"
	if [[ $point == save.inserted ]]; then
		assert_same_file "staging/$uid: the remount found the staged bytes" "$src" "$staged"
	fi

	run_repair "$inst"
	if [[ $point == save.staged ]]; then
		# Nothing was committed: the remount above already swept the dead
		# writer's unlocked staging file, so there is nothing left to repair.
		assert_eq "$name: exit status of the repair" 0 "$REPAIR_RC"
		assert_eq "$name: staging after the remount" "" "$(staging_files "$inst")"
	else
		assert_eq "$name: exit status of the repair" 1 "$REPAIR_RC"
	fi
	if [[ -n "$action" ]]; then
		grep -qE "^flagged +$action +$key \($uid\)" <<<"$REPAIR_OUT" ||
			fail "$name: repair did not report '$action' for $key ($uid)"
	fi
	[[ $point == save.staged ]] && { grep -qE '^staging +removed ' <<<"$REPAIR_OUT" &&
		fail "$name: the remount should have swept the staging file already"; }

	log "the interrupted save is $outcome"
	rows=$(rows_at "$inst" "$key" "uid, coalesce(_aux, ''), is_latest")
	if [[ $outcome == completed ]]; then
		grep -qxF "$uid||1" <<<"$rows" || fail "$key: $uid not the committed latest: $rows"
		assert_same_file "object of the completed save" "$src" "$(object_file "$root" "$uid.bin")"
	else
		if [[ $earlier == 1 ]]; then
			assert_eq "rows at $key after the rollback" 1 "$(wc -l <<<"$rows")"
			assert_match "the earlier version is latest" '^[0-9A-Za-z]{20}\|\|1$' "$rows"
		else
			assert_eq "rows at $key after the rollback" "" "$rows"
		fi
		assert_eq "rows with the interrupted content" 0 "$(sql "$inst" \
			"select count(*) from artifact where checksum = '$(sha256_of "$src")'")"
		if [[ -n "$uid" ]]; then
			assert_eq "row of $uid" "" "$(sql "$inst" "select uid from artifact where uid = '$uid'")"
			assert_eq "objects of $uid" "" "$(objects "$root" | grep -F "$uid" || true)"
		fi
	fi
	assert_eq "staging after the repair" "" "$(staging_files "$inst")"
	assert_eq "temporaries after the repair" "" "$(objects "$root" | grep '^\.tmp\.' || true)"
	assert_eq "open multipart uploads after the repair" "" "$(open_uploads "$root")"
	check_store "$inst"

	mount_fs "$inst" "$mnt"
	assert_same_file "keep.bin after the repair" "$keep" "$mnt/keep.bin"
	if [[ $outcome == completed ]]; then
		assert_same_file "$key after the repair" "$src" "$mnt/$key"
		assert_eq "uid xattr of $key" "$uid" "$(xattr "$mnt/$key" user.lamfs.uid)"
	elif [[ $earlier == 1 ]]; then
		assert_same_file "$key (earlier version) after the repair" "$v1" "$mnt/$key"
	else
		assert_errno ENOENT stat "$mnt/$key"
		assert_eq "ls d/ after the repair" "" "$(ls -A "$mnt/d")"
	fi
	umount_fs "$mnt"

	run_repair "$inst"
	assert_eq "$name: second repair run" 0 "$REPAIR_RC"
	assert_match "$name: second run says clean" ': clean' "$REPAIR_OUT"
	run_repair "$inst" --verify
	assert_eq "$name: verify after the repair" 0 "$REPAIR_RC"
}

# case MODE NAME ...: one_case, unless E2E_REPAIR_CRASH_CASES=short leaves it out
case_() {
	[[ "${E2E_REPAIR_CRASH_CASES:-all}" == short && $2 == *-v ]] && return 0
	one_case "$@"
}

for mode in sync writeback; do
	#          mode  name         point           earlier tamper  outcome   action
	case_ "$mode" staged      save.staged     0 none   gone      ""
	case_ "$mode" staged-v    save.staged     1 none   gone      ""
	case_ "$mode" inserted    save.inserted   0 none   completed completed
	case_ "$mode" flagged     save.flagged    0 none   completed completed
	case_ "$mode" flagged-v   save.flagged    1 none   completed completed
	case_ "$mode" putmid      backend.put.mid 0 none   completed completed
	case_ "$mode" putmid-v    backend.put.mid 1 none   completed completed
	case_ "$mode" uploaded    save.uploaded   0 none   completed completed
	case_ "$mode" uploaded-v  save.uploaded   1 none   completed completed
	case_ "$mode" uploaded-fc save.uploaded   1 delete completed flag-cleared
	case_ "$mode" flagged-rb  save.flagged    1 delete gone      rolled-back
	case_ "$mode" putmid-rb   backend.put.mid 1 damage gone      rolled-back
done

e2e_pass
