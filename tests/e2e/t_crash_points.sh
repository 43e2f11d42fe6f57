#!/usr/bin/env bash
# t_crash_points.sh — the daemon killed at the other steps of the save and
# delete sequences (t_crash_midsave.sh covers save.flagged):
#   save.staged       before the flagged insert: no row, nothing visible
#   backend.put.mid   half an object in a temp file: flagged row, hidden
#   save.uploaded     object stored, flag not yet cleared: hidden
#   delete.committed  record deleted, object not yet: the key is gone
# and, in write-back mode, backend.put.mid: the next write-back mount resumes
# the upload (same uid, byte-exact); and save.inserted (the flagged record
# committed, the staging file still anonymous): the next mount finds the
# staged bytes by size and sha256 and the save completes the same way.
# After each, a remount shows only committed artifacts and saving the same
# bytes again works (same uid where a flagged row exists).  Staging leftovers
# and orphan objects are allowed until the end, where lamfs-repair removes
# them (exit 0 or 1), the store is then exactly consistent, and a second run
# finds nothing to do.  With E2E_STORAGE=s3 the files go up in 1 MiB
# multipart parts, so backend.put.mid leaves an open multipart upload, which
# the repair must abort.
# timeout: 400
. "$(dirname "$0")/lib.sh"
e2e_begin
require_faults

REPAIR_BIN=${LAMFS_REPAIR_BIN:-$(dirname "$LAMFS_BIN")/lamfs-repair}
[[ -x "$REPAIR_BIN" ]] || fail "no lamfs-repair binary at $REPAIR_BIN (set LAMFS_REPAIR_BIN)"

inst=$(instance_new inst)
root=$(storage_of "$inst")
s3=0
if [[ $(storage_kind "$root") == s3 ]]; then
	s3=1
	# 2 MiB files in two parts (the test server's minimum part is 1 MiB)
	export LAMFS_S3_MULTIPART_THRESHOLD=1M LAMFS_S3_PART_SIZE=1M
fi
mnt=$WORK/mnt
mount_fs "$inst" "$mnt"
mkdir "$mnt/c"
echo "stays" >"$mnt/c/stays.txt"

# crash_at POINT CMD...: arm POINT=crash, run CMD on the mount (it must fail),
# clear the dead mount, remount.
crash_at() {
	local point=$1
	shift
	fault_set "$point=crash"
	assert_fails "$* while the daemon dies at $point" "$@"
	fault_clear
	# (not stat: it may answer from the kernel cache for cache_timeout)
	assert_eq "listing the mount after a crash at $point" "ENOTCONN" "$(errno_of listdir "$mnt")"
	dead_umount "$mnt"
	mount_fs "$inst" "$mnt"
	assert_eq "c/stays.txt after a crash at $point" "stays" "$(cat "$mnt/c/stays.txt")"
}

# resume POINT KEY SRC [FLAGGED_UID]: the key is hidden; saving SRC again works.
resume() {
	local point=$1 key=$2 src=$3 uid=${4:-}
	assert_errno ENOENT stat "$mnt/$key"
	assert_errno ENOENT open "$mnt/$key"
	ls "$mnt/c" | grep -qxF "$(basename "$key")" && fail "$point: $key listed after the crash"
	cp "$src" "$mnt/$key"
	assert_same_file "$point: $key saved again" "$src" "$mnt/$key"
	if [[ -n "$uid" ]]; then
		assert_eq "$point: uid of the resumed save" "$uid" "$(xattr "$mnt/$key" user.lamfs.uid)"
	fi
	assert_eq "$point: rows at $key (_aux|is_latest)" "|1" \
		"$(rows_at "$inst" "$key" "coalesce(_aux, ''), is_latest")"
}

for point in save.staged backend.put.mid save.uploaded; do
	log "crash at $point"
	src=$WORK/$point.bin
	random_file "$src" $((2 * MiB))
	key=c/$point.bin
	crash_at "$point" cp "$src" "$mnt/$key"
	row=$(rows_at "$inst" "$key" "uid, coalesce(_aux, '')")
	case $point in
	save.staged)
		assert_eq "rows after a crash before the insert" "" "$row"
		resume "$point" "$key" "$src"
		;;
	*)
		assert_match "row after a crash at $point" '^[0-9A-Za-z]{20}\|\{"so": 1\}$' "$row"
		if [[ $point == backend.put.mid && $s3 == 1 ]]; then
			grep -q "^${row%%|*}\.bin " <<<"$(open_uploads "$root")" ||
				fail "no open multipart upload of ${row%%|*}.bin after a crash mid-upload"
		fi
		resume "$point" "$key" "$src" "${row%%|*}"
		assert_same_file "$point: object" "$src" "$(object_file "$root" "${row%%|*}.bin")"
		if [[ $point == backend.put.mid && $s3 == 1 ]]; then
			# the resumed upload aborts the one the dead daemon left open
			grep "^${row%%|*}\.bin " <<<"$(open_uploads "$root")" &&
				fail "the resumed save left the dead daemon's upload of ${row%%|*}.bin open"
		fi
		;;
	esac
done

log "crash at delete.committed"
echo "to be deleted" >"$mnt/c/del.txt"
uid=$(xattr "$mnt/c/del.txt" user.lamfs.uid)
crash_at delete.committed rm "$mnt/c/del.txt"
assert_errno ENOENT stat "$mnt/c/del.txt"
assert_eq "live rows at c/del.txt" "0" \
	"$(sql "$inst" "select count(*) from artifact where key = 'c/del.txt' and branch_id = 1")"
object_exists "$root" "$uid.txt" && log "orphan object $uid.txt left for lamfs-repair (allowed)"
echo "again" >"$mnt/c/del.txt"
assert_eq "c/del.txt saved anew" "again" "$(cat "$mnt/c/del.txt")"

# wb_completes KEY SRC UID: a new write-back mount completes the flagged save
# UID at KEY: the file appears with SRC's bytes, the same uid, committed latest.
wb_completes() {
	local key=$1 src=$2 uid=$3 i
	mount_fs "$inst" "$mnt" -o writeback
	for ((i = 0; i < 150; i++)); do
		[[ "$(errno_of stat "$mnt/$key")" == OK ]] && break
		sleep 0.2
	done
	assert_same_file "$key completed by the next write-back mount" "$src" "$mnt/$key"
	assert_eq "uid of the completed save at $key" "$uid" "$(xattr "$mnt/$key" user.lamfs.uid)"
	assert_eq "rows at $key (_aux|is_latest)" "|1" \
		"$(rows_at "$inst" "$key" "coalesce(_aux, ''), is_latest")"
}

log "write-back: killed mid-upload, a write-back mount resumes the save"
umount_fs "$mnt"
mount_fs "$inst" "$mnt" -o writeback
src=$WORK/wb.bin
random_file "$src" $((2 * MiB + 3))
pid=$(daemon_pid "$mnt")
fault_set "backend.put.mid=crash"
cp "$src" "$mnt/c/wb.bin" 2>/dev/null || true # close() may return before the upload dies
wait_pid_gone "$pid" 30 || fail "daemon $pid did not die at backend.put.mid"
fault_clear
dead_umount "$mnt"
uid=$(sql "$inst" "select uid from artifact where key = 'c/wb.bin' and _aux is not null")
assert_match "flagged row of c/wb.bin after the crash" '^[0-9A-Za-z]{20}$' "$uid"
if [[ $s3 == 1 ]]; then
	grep -q "^$uid\.bin " <<<"$(open_uploads "$root")" ||
		fail "no open multipart upload of $uid.bin after a write-back crash mid-upload"
fi
wb_completes c/wb.bin "$src" "$uid"
if [[ $s3 == 1 ]]; then
	grep "^$uid\.bin " <<<"$(open_uploads "$root")" &&
		fail "the resumed save left the dead daemon's multipart upload of $uid.bin open"
fi

log "write-back: killed after the flagged insert, before the staging file was named"
src=$WORK/ins.bin
random_file "$src" 70001
pid=$(daemon_pid "$mnt")
fault_set "save.inserted=crash"
assert_fails "cp while the daemon dies at save.inserted" cp "$src" "$mnt/c/ins.bin"
wait_pid_gone "$pid" 30 || fail "daemon $pid did not die at save.inserted"
fault_clear
dead_umount "$mnt"
uid=$(sql "$inst" "select uid from artifact where key = 'c/ins.bin' and _aux is not null")
assert_match "flagged row of c/ins.bin after the crash" '^[0-9A-Za-z]{20}$' "$uid"
assert_eq "staging/$uid after the crash" "" "$(staging_files "$inst" | grep -xF "$uid" || true)"
wb_completes c/ins.bin "$src" "$uid"
grep -q "found the staged bytes of 1 interrupted save" "$inst/lamfs.log" "$WORK"/daemon-stderr.* 2>/dev/null ||
	fail "the mount did not log finding the staged bytes of $uid"

umount_fs "$mnt"
# Every committed record is whole; leftovers of the crashes are allowed.
E2E_ALLOW_STAGING=1 E2E_ALLOW_ORPHANS=1 check_store "$inst"

log "lamfs-repair removes the leftovers; a second run finds nothing"
rows_before=$(sql "$inst" "select uid, key, coalesce(_aux, ''), is_latest from artifact order by uid")
rc=0
out=$("$REPAIR_BIN" "$inst" 2>&1 </dev/null) || rc=$?
sed 's/^/#   /' <<<"$out"
[[ $rc == 0 || $rc == 1 ]] || fail "lamfs-repair: exit $rc: $out"
# (resumed saves abort what their dead daemon left open, so on S3 nothing may
# be left for the repair here; t_repair_crash checks the repair aborts them)
assert_eq "open multipart uploads after the repair" "" "$(open_uploads "$root")"
assert_eq "records after the repair" "$rows_before" \
	"$(sql "$inst" "select uid, key, coalesce(_aux, ''), is_latest from artifact order by uid")"
check_store "$inst"
rc=0
out=$("$REPAIR_BIN" "$inst" 2>&1 </dev/null) || rc=$?
assert_eq "second repair run: exit" 0 "$rc"
assert_match "second repair run says clean" ': clean' "$out"

e2e_pass
