#!/usr/bin/env bash
# t_writeback_unlink.sh — what the user does to a key after writing it must
# not be undone by a write-back upload that finishes later:
#  1. rm: k2.txt has a committed version; a new version is written and its
#     upload held back (backend.put=EIO); rm k2.txt succeeds.  Once the upload
#     could go through, k2.txt must still be gone, with no row, no object and
#     no staging file left behind.
#  2. mv over it: b.txt has a committed version; a new version is written and
#     its upload held back; mv a.txt b.txt succeeds and b.txt reads a's bytes.
#     Once the upload could go through, b.txt must still read a's bytes.
# timeout: 300
# shellcheck disable=SC2016,SC2317 # wait_until evals single-quoted code
. "$(dirname "$0")/lib.sh"
e2e_begin
require_faults

export LAMFS_WB_RETRIES=1000 LAMFS_WB_BACKOFF_MS=5

inst=$(instance_new inst)
root=$(storage_of "$inst")
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
uid_at() { sql "$inst" "select uid from artifact where key = $(sqlstr "$1") order by uid desc limit 1"; }

log "1. a key deleted while its new version's upload is pending stays deleted"
printf 'committed\n' >"$WORK/c"
printf 'pending when deleted\n' >"$WORK/p"
cp "$WORK/c" "$mnt/k2.txt"
wait_until 30 "k2.txt committed" '[[ "$(errno_of stat "$mnt/k2.txt")" == OK ]]'
fault_set "backend.put=EIO"
cp "$WORK/p" "$mnt/k2.txt"
puid=$(uid_at k2.txt)
assert_eq "k2.txt: the new version is pending" '{"so": 1}' \
	"$(sql "$inst" "select _aux from artifact where uid = '$puid'")"
rm "$mnt/k2.txt"
assert_absent "k2.txt right after rm" "$mnt/k2.txt"
fault_clear
wait_until 60 "the pending upload is resolved" '[[ $(flagged) == 0 ]]'
sleep 1
assert_absent "k2.txt after the pending upload was resolved" "$mnt/k2.txt"
assert_eq "rows at k2.txt" "" "$(rows_at "$inst" k2.txt uid)"

log "2. a key renamed over while its new version's upload is pending keeps the renamed bytes"
printf 'committed b\n' >"$WORK/b"
printf 'pending b\n' >"$WORK/pb"
printf 'the renamed a\n' >"$WORK/a"
cp "$WORK/b" "$mnt/b.txt"
cp "$WORK/a" "$mnt/a.txt"
wait_until 30 "a.txt and b.txt committed" '[[ $(flagged) == 0 && "$(errno_of stat "$mnt/a.txt")" == OK ]]'
auid=$(xattr "$mnt/a.txt" user.lamfs.uid)
fault_set "backend.put=EIO"
cp "$WORK/pb" "$mnt/b.txt"
mv "$mnt/a.txt" "$mnt/b.txt"
assert_same_file "b.txt right after mv" "$WORK/a" "$mnt/b.txt"
fault_clear
wait_until 60 "the pending upload is resolved" '[[ $(flagged) == 0 ]]'
sleep 1
assert_same_file "b.txt after the pending upload was resolved" "$WORK/a" "$mnt/b.txt"
assert_eq "b.txt uid" "$auid" "$(xattr "$mnt/b.txt" user.lamfs.uid)"
assert_absent "a.txt after mv" "$mnt/a.txt"
umount_fs "$mnt"
check_store "$inst"

e2e_pass
