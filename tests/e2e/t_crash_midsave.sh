#!/usr/bin/env bash
# t_crash_midsave.sh — the daemon killed after the flagged record was
# committed and before the upload (fault save.flagged=crash): after a remount
# the key is invisible to ls, stat and open while the database holds the row
# with _aux = {"so": 1}; copying the same bytes again returns the same uid,
# clears the flag, and the file appears.
# timeout: 300
. "$(dirname "$0")/lib.sh"
e2e_begin
require_faults

inst=$(instance_new inst)
root=$(storage_of "$inst")
mnt=$WORK/mnt
src=$WORK/sample.fasta
printf '>seq1\nACGT\n>seq2\nTTGA\n' >"$src"
key=crash/sample.fasta

mount_fs "$inst" "$mnt"
mkdir "$mnt/crash"
echo other >"$mnt/crash/other.txt"

log "cp with save.flagged=crash kills the daemon"
fault_set "save.flagged=crash"
assert_fails "cp while the daemon dies" cp "$src" "$mnt/$key"
log "cp said: $E2E_LAST_ERR"
fault_clear
got=$(errno_of listdir "$mnt") # stat may answer from the kernel cache (cache_timeout)
assert_eq "listing the mount after the crash" "ENOTCONN" "$got"
dead_umount "$mnt"

log "the database holds the flagged row"
flagged=$(rows_at "$inst" "$key" "uid, _aux")
assert_match "row at $key after the crash" '^[0-9A-Za-z]{20}\|\{"so": 1\}$' "$flagged"
uid=${flagged%%|*}
log "flagged uid $uid"

mount_fs "$inst" "$mnt"
log "after remount the key is invisible to ls, stat and open"
assert_eq "ls crash/" "other.txt" "$(ls -A "$mnt/crash")"
assert_errno ENOENT stat "$mnt/$key"
assert_errno ENOENT open "$mnt/$key"
assert_eq "flag still set while nobody saved again" "$uid|{\"so\": 1}" "$(rows_at "$inst" "$key" "uid, _aux")"

log "the same bytes again: same uid, flag cleared, visible"
cp "$src" "$mnt/$key"
assert_eq "ls crash/" "$(printf 'other.txt\nsample.fasta')" "$(ls "$mnt/crash")"
assert_same_file "$key" "$src" "$mnt/$key"
assert_eq "uid xattr after the resumed save" "$uid" "$(xattr "$mnt/$key" user.lamfs.uid)"
assert_eq "record after the resumed save (uid|_aux|is_latest)" "$uid||1" \
	"$(rows_at "$inst" "$key" "uid, coalesce(_aux, ''), is_latest")"
assert_same_file "object" "$src" "$(object_file "$root" "$uid.fasta")"

log "and it survives a remount"
remount "$inst" "$mnt"
assert_same_file "$key after remount" "$src" "$mnt/$key"
umount_fs "$mnt"
E2E_ALLOW_STAGING=1 check_store "$inst"

e2e_pass
