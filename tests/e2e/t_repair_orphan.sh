#!/usr/bin/env bash
# t_repair_orphan.sh — deletes interrupted between the record commit and the
# object delete (fault delete.committed=crash) leave orphan objects; the
# repair tool removes exactly those:
#   rm of a key with two versions       -> two orphans
#   mv onto an existing file            -> the replaced file's object
# The other artifacts are untouched byte for byte; --dry-run only reports;
# a second run finds nothing.  Objects that are not lamfs's (another name
# shape) are left alone.
# timeout: 300
. "$(dirname "$0")/lib.sh"
e2e_begin
require_faults

REPAIR_BIN=${LAMFS_REPAIR_BIN:-$(dirname "$LAMFS_BIN")/lamfs-repair}
[[ -x "$REPAIR_BIN" ]] || fail "no lamfs-repair binary at $REPAIR_BIN (set LAMFS_REPAIR_BIN)"

run_repair() {
	REPAIR_RC=0
	REPAIR_OUT=$("$REPAIR_BIN" "$@" 2>&1 </dev/null) || REPAIR_RC=$?
	log "lamfs-repair $* -> exit $REPAIR_RC"
	sed 's/^/#   /' <<<"$REPAIR_OUT"
}

inst=$(instance_new inst)
root=$(storage_of "$inst")
mnt=$WORK/mnt
for f in keep del1 del2 old new; do random_file "$WORK/$f" $((200 * 1024 + RANDOM)); done

mount_fs "$inst" "$mnt"
mkdir "$mnt/o"
cp "$WORK/keep" "$mnt/o/keep.dat"
cp "$WORK/del1" "$mnt/o/del.dat"
cp "$WORK/del2" "$mnt/o/del.dat"
cp "$WORK/old" "$mnt/o/target.dat"
cp "$WORK/new" "$mnt/o/source.dat"
del_uids=$(rows_at "$inst" o/del.dat uid)
assert_eq "versions of o/del.dat" 2 "$(wc -l <<<"$del_uids")"
target_uid=$(xattr "$mnt/o/target.dat" user.lamfs.uid)
source_uid=$(xattr "$mnt/o/source.dat" user.lamfs.uid)
keep_uid=$(xattr "$mnt/o/keep.dat" user.lamfs.uid)

log "rm dies after its commit"
fault_set "delete.committed=crash"
assert_fails "rm while the daemon dies" rm "$mnt/o/del.dat"
fault_clear
dead_umount "$mnt"

log "mv onto an existing file dies after its commit"
mount_fs "$inst" "$mnt"
assert_errno ENOENT stat "$mnt/o/del.dat"
fault_set "delete.committed=crash"
# The rename itself is committed; only the replaced object's delete dies.
mv "$mnt/o/source.dat" "$mnt/o/target.dat" 2>/dev/null || true
fault_clear
dead_umount "$mnt"

orphans=()
for u in $del_uids $target_uid; do
	object_exists "$root" "$u.dat" || fail "expected the orphan object $u.dat after the crash"
	assert_eq "row of $u" "" "$(sql "$inst" "select uid from artifact where uid = '$u'")"
	orphans+=("$u")
done
# Not a lamfs object name: never judged an orphan.
echo "not ours" >"$WORK/not-ours"
object_put "$root" _is_initialized "$WORK/not-ours"

log "after a remount the deleted key is gone, the rest is intact"
mount_fs "$inst" "$mnt"
assert_errno ENOENT stat "$mnt/o/del.dat"
assert_errno ENOENT stat "$mnt/o/source.dat"
assert_same_file "o/keep.dat" "$WORK/keep" "$mnt/o/keep.dat"
assert_same_file "o/target.dat (renamed over)" "$WORK/new" "$mnt/o/target.dat"
assert_eq "uid at o/target.dat" "$source_uid" "$(xattr "$mnt/o/target.dat" user.lamfs.uid)"
umount_fs "$mnt"

log "--dry-run reports the orphans and removes nothing"
before=$(objects_snapshot "$root")
run_repair "$inst" --dry-run
assert_eq "exit status of the dry run" 4 "$REPAIR_RC"
for u in "${orphans[@]}"; do
	grep -qE "^orphan +would-remove +\.lamindb/$u\.dat: " <<<"$REPAIR_OUT" ||
		fail "dry run did not report the orphan $u"
done
assert_eq "objects after the dry run" "$before" "$(objects_snapshot "$root")"

log "the repair removes exactly the orphans"
run_repair "$inst"
assert_eq "exit status of the repair" 1 "$REPAIR_RC"
assert_eq "orphans reported" "${#orphans[@]}" "$(grep -cE '^orphan +removed ' <<<"$REPAIR_OUT")"
for u in "${orphans[@]}"; do
	grep -qE "^orphan +removed +\.lamindb/$u\.dat: " <<<"$REPAIR_OUT" ||
		fail "repair did not report removing the orphan $u"
	object_exists "$root" "$u.dat" && fail "orphan object $u.dat still stored after the repair"
done
assert_eq "objects left" "$(printf '%s\n' "$keep_uid.dat" "$source_uid.dat" _is_initialized |
	LC_ALL=C sort)" "$(objects "$root")"
object_remove "$root" _is_initialized
check_store "$inst"

mount_fs "$inst" "$mnt"
assert_same_file "o/keep.dat after the repair" "$WORK/keep" "$mnt/o/keep.dat"
assert_same_file "o/target.dat after the repair" "$WORK/new" "$mnt/o/target.dat"
assert_eq "ls o/" "$(printf 'keep.dat\ntarget.dat')" "$(ls "$mnt/o")"
umount_fs "$mnt"

run_repair "$inst" --verify
assert_eq "second run" 0 "$REPAIR_RC"
assert_match "second run says clean" ': clean; 2 object\(s\) verified' "$REPAIR_OUT"

e2e_pass
