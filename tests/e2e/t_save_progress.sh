#!/usr/bin/env bash
# t_save_progress.sh — `lamfs save` of large local files:
#  - under a pseudo-terminal (tests/e2e/savepty.py) a 1 GiB file shows one
#    progress line redrawn in place (hashing, then storing; bytes, rate, ETA),
#    and the staging folder stays under 256 MiB the whole time (the file is
#    hashed and stored from where it is: nothing is copied into staging);
#  - in a pipe nothing but the result line; --progress forces the line,
#    --no-progress silences it on a terminal;
#  - a file that changes while it is stored is rolled back with a message,
#    leaving no record and no object;
#  - a save killed after its flagged insert, in the middle of the upload and
#    after the upload leaves a flagged, hidden record: saving the same file
#    again completes it with the same uid, and lamfs-repair completes or
#    rolls back what is left.
# timeout: 600
. "$(dirname "$0")/lib.sh"
e2e_begin

L() { "$LAMFS_BIN" "$@"; }
R() { "$(dirname "$LAMFS_BIN")/lamfs-repair" "$@"; }
PTY=("python3" "$E2E_DIR/savepty.py")
SIZE=$((1024 * MiB))
[[ -n "${E2E_MAX_FILE:-}" ]] && ((E2E_MAX_FILE < SIZE)) && SIZE=$E2E_MAX_FILE
inst=$(instance_new data)
stg=$inst/staging
src=$WORK/big.bin
random_file "$src" "$SIZE"

log "1 GiB under a pseudo-terminal: progress line, staging stays small"
res=$("${PTY[@]}" "$WORK/out1" "$stg" -- "$LAMFS_BIN" save "$inst" "$src" --key big.bin)
log "$res"
[[ $res =~ ^exit=0\ peak=([0-9]+) ]] || fail "save under a pty: $res: $(tr '\r' '\n' <"$WORK/out1" | tail -n 3)"
peak=${BASH_REMATCH[1]}
((peak < 256 * MiB)) || fail "staging reached $peak bytes while saving a $SIZE-byte file (limit 256 MiB)"
out=$(tr '\r' '\n' <"$WORK/out1")
grep -q '^hashing \[.*\] .*/s  ETA ' <<<"$out" || fail "no hashing progress line: $out"
grep -q '^storing \[.*\] .*/s  ETA ' <<<"$out" || fail "no storing progress line: $out"
(($(grep -c $'\r' "$WORK/out1") >= 2)) || fail "the progress line is not redrawn in place"
uid=$(sql "$inst" "select uid from artifact where key = 'big.bin'")
grep -q "$uid  new          big.bin" <<<"$out" || fail "no result line: $out"
L cat "$inst" big.bin | cmp - "$src" || fail "big.bin does not read back"
assert_eq "staging empty after the save" "" "$(ls -A "$stg")"
check_store "$inst"

log "in a pipe: no progress; --progress forces it; --no-progress on a terminal"
printf 'small one\n' >"$WORK/small.txt"
ERR=$(L save "$inst" "$WORK/small.txt" --key s1.txt 2>&1 >/dev/null)
assert_eq "pipe: nothing on stderr" "" "$ERR"
ERR=$(L save "$inst" "$WORK/small.txt" --key s2.txt --progress 2>&1 >/dev/null)
assert_match "--progress in a pipe" "^.(hashing|storing) \[" "$ERR"
res=$("${PTY[@]}" "$WORK/out2" "$stg" -- "$LAMFS_BIN" save "$inst" "$WORK/small.txt" --key s3.txt --no-progress)
[[ $res == exit=0* ]] || fail "--no-progress under a pty: $res"
grep -q 'hashing\|storing' "$WORK/out2" && fail "--no-progress drew a line: $(cat "$WORK/out2")"

log "a file that changes while it is stored: rolled back, nothing left"
before=$(sql "$inst" "select count(*) from artifact")
objs=$(objects "$(storage_of "$inst")" | wc -l)
res=$("${PTY[@]}" "$WORK/out3" "$stg" --when storing --append "$src" -- \
	"$LAMFS_BIN" save "$inst" "$src" --key changing.bin)
log "$res"
[[ $res =~ ^exit=1\ .*acted=1$ ]] || fail "changed while stored: $res: $(tr '\r' '\n' <"$WORK/out3" | tail -n 3)"
assert_match "changed while stored: message" \
	"changing.bin' failed: the file changed while it was saved" "$(tr '\r' '\n' <"$WORK/out3")"
assert_eq "changed while stored: no record" "$before" "$(sql "$inst" "select count(*) from artifact")"
assert_eq "changed while stored: no object" "$objs" "$(objects "$(storage_of "$inst")" | wc -l)"
check_store "$inst"

require_faults
log "killed saves leave a flagged record; the next save or lamfs-repair finishes it"
head -c $((3 * MiB + 11)) /dev/urandom >"$WORK/k.bin"
for point in save.flagged backend.put.mid save.uploaded; do
	key=k.$point.bin
	rc=0
	LAMFS_FAULT="$point=crash" L save "$inst" "$WORK/k.bin" --key "$key" >/dev/null 2>&1 || rc=$?
	assert_eq "killed at $point: exit (SIGKILL)" 137 "$rc"
	assert_eq "killed at $point: one flagged record" "1" \
		"$(sql "$inst" "select count(*) from artifact where key = '$key' and _aux is not null")"
	L ls "$inst" | awk -v k="$key" '$NF == k { f = 1 } END { exit !f }' &&
		fail "killed at $point: $key is listed"
	assert_eq "killed at $point: nothing in staging" "" "$(ls -A "$stg")"
	flagged=$(sql "$inst" "select uid from artifact where key = '$key'")
	out=$(L save "$inst" "$WORK/k.bin" --key "$key") || fail "save again after a kill at $point: $out"
	assert_eq "saved again after a kill at $point: the same uid" "$flagged" "$(awk '{print $1}' <<<"$out")"
	L cat "$inst" "$key" | cmp - "$WORK/k.bin" || fail "$key does not read back"
done
for point in save.flagged backend.put.mid save.uploaded; do
	rc=0
	LAMFS_FAULT="$point=crash" L save "$inst" "$WORK/k.bin" --key "r.$point.bin" >/dev/null 2>&1 || rc=$?
	assert_eq "killed at $point (for repair): exit" 137 "$rc"
done
out=$(R "$inst") || true
log "$out"
assert_eq "after repair: nothing flagged" 0 "$(sql "$inst" "select count(*) from artifact where _aux is not null")"
# a complete object was kept and its flag cleared; the others rolled back
L cat "$inst" r.save.uploaded.bin | cmp - "$WORK/k.bin" || fail "r.save.uploaded.bin: not completed by repair"
assert_eq "rolled back: no record" 0 "$(sql "$inst" "select count(*) from artifact where key in ('r.save.flagged.bin', 'r.backend.put.mid.bin')")"
check_store "$inst"
e2e_pass
