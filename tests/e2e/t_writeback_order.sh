#!/usr/bin/env bash
# t_writeback_order.sh — write-back uploads that finish out of order must not
# undo what the user did last.  v1 is written to k.txt and its upload held
# back (backend.put=EIO) until its next retry is seconds away; then the fault
# is cleared and v2 written to k.txt, so v2's upload finishes first.  Once
# both are done, k.txt must read v2 (the last close() wins, as on any file
# system and as in sync mode) and v2, the higher version, must be the latest.
# timeout: 300
# shellcheck disable=SC2016,SC2317 # wait_until evals single-quoted code
. "$(dirname "$0")/lib.sh"
e2e_begin
require_faults

# Backoff doubles per try from 5 ms: after try 11 the next is 2.5-5 s away.
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
uid_at() { sql "$inst" "select uid from artifact where key = $(sqlstr "$1") order by uid desc limit 1"; }
tries_of() { sed -n 's/^try \([0-9]*\) of .*/\1/p' "$inst/staging/$1.err" 2>/dev/null || true; }

log "the last close() wins, whatever order the uploads finish in"
printf 'version one\n' >"$WORK/v1"
printf 'version two, written last\n' >"$WORK/v2"
fault_set "backend.put=EIO"
cp "$WORK/v1" "$mnt/k.txt"
uid1=$(uid_at k.txt)
wait_until 60 "v1's upload failed 11 times" '[[ $(tries_of "$uid1") -ge 11 ]]'
fault_clear
cp "$WORK/v2" "$mnt/k.txt"
uid2=$(uid_at k.txt)
assert_eq "v2 is the next version" "${uid1:0:16}0001" "$uid2"
wait_until 60 "both uploads done" '[[ $(flagged) == 0 ]]'
assert_eq "k.txt rows: v2 latest" "$uid1|0
$uid2|1" "$(rows_at "$inst" k.txt "uid, is_latest")"
assert_same_file "k.txt reads the last write" "$WORK/v2" "$mnt/k.txt"

umount_fs "$mnt"
check_store "$inst"

e2e_pass
