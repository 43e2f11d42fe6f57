#!/usr/bin/env bash
# t_cli_escape.sh — keys with control characters are legal (newline, tab,
# ESC sequences, DEL, backslash, a C1 control such as U+009B CSI), but no
# human-readable output may print them raw (issue #7): a name must not forge
# lines in a terminal or a log.
#  - lamfs ls prints one line per artifact, the name escaped as GNU ls -b
#    does (\n, \t, \033, \177, \\, \302\233), no raw control byte at all;
#  - lamfs ls --json carries the exact bytes of every key (round trip);
#  - lamfs info, lamfs save, an error message of the CLI, and lamfs-repair's
#    report print the escaped name;
#  - lamfs.log (a failed save names its key) holds no raw control byte.
# timeout: 120
. "$(dirname "$0")/lib.sh"
e2e_begin
REPAIR_BIN=${LAMFS_REPAIR_BIN:-$(dirname "$LAMFS_BIN")/lamfs-repair}

inst=$(instance_new inst)
mnt=$WORK/mnt
mount_fs "$inst" "$mnt"
mkdir "$mnt/n"

# name -> how lamfs ls must show it
declare -A want=(
	[$'a\nb.txt']='a\nb.txt'
	[$'tab\there.txt']='tab\there.txt'
	[$'esc\033[31mred.txt']='esc\033[31mred.txt'
	[$'del\177.txt']='del\177.txt'
	['back\slash.txt']='back\\slash.txt'
	[$'csi\xc2\x9b2J.txt']='csi\302\2332J.txt'
	[$'cr\rline.txt']='cr\rline.txt'
	['ünïcode ok.txt']='ünïcode ok.txt'
)
for name in "${!want[@]}"; do
	assert_eq "write n/$name" OK "$(errno_of write "$mnt/n/$name" "bytes of $name")"
done

# raw_controls: count the lines of stdin that hold a raw control byte other
# than the line end (or a raw C1 control in UTF-8).
raw_controls() {
	python3 -c '
import re, sys
data = sys.stdin.buffer.read()
bad = [l for l in data.split(b"\n") if re.search(rb"[\x00-\x08\x0b-\x1f\x7f]|\xc2[\x80-\x9f]", l)]
print(len(bad))'
}

log "lamfs ls: one line per artifact, every name escaped"
out=$("$LAMFS_BIN" ls "$inst" n)
printf '%s\n' "$out" | sed 's/^/#   /'
assert_eq "lines of lamfs ls" "${#want[@]}" "$(printf '%s\n' "$out" | wc -l)"
assert_eq "lines with raw control bytes" 0 "$(printf '%s\n' "$out" | raw_controls)"
for name in "${!want[@]}"; do
	[[ "$(printf '%s\n' "$out" | W="n/${want[$name]}" LC_ALL=C awk '
		{ w = ENVIRON["W"]; if (substr($0, length($0) - length(w) + 1) == w) n++ }
		END { print n + 0 }')" == 1 ]] ||
		fail "lamfs ls: no line ends with n/${want[$name]}"
done
out=$("$LAMFS_BIN" ls "$inst" n -l)
assert_eq "lines of lamfs ls -l" "${#want[@]}" "$(printf '%s\n' "$out" | wc -l)"
assert_eq "lines of ls -l with raw control bytes" 0 "$(printf '%s\n' "$out" | raw_controls)"

log "lamfs ls --json: the exact keys"
"$LAMFS_BIN" ls "$inst" n --json >"$WORK/ls.json"
for name in "${!want[@]}"; do printf 'n/%s\0' "$name"; done >"$WORK/names"
python3 - "$WORK/ls.json" "$WORK/names" <<'EOF' || fail "lamfs ls --json does not round-trip the keys"
import json, sys
got = sorted(r["key"].encode("utf-8", "surrogateescape") for r in json.load(open(sys.argv[1])))
want = sorted(n for n in open(sys.argv[2], "rb").read().split(b"\0") if n)
if got != want:
    print("got", got, "want", want)
    sys.exit(1)
EOF

log "lamfs info: the key escaped, one line per field"
out=$("$LAMFS_BIN" info "$inst" $'n/a\nb.txt')
assert_match "info's key line" '^key: +n/a\\nb\.txt$' "$(head -n 1 <<<"$out")"
assert_eq "info lines with raw control bytes" 0 "$(printf '%s\n' "$out" | raw_controls)"
assert_eq "info --json key" $'n/a\nb.txt' \
	"$("$LAMFS_BIN" info "$inst" $'n/a\nb.txt' --json | python3 -c 'import json,sys; sys.stdout.write(json.load(sys.stdin)["key"])')"

log "an error message names the key escaped, on one line"
rc=0
err=$("$LAMFS_BIN" info "$inst" $'n/no\nsuch\033[2J' 2>&1 >/dev/null) || rc=$?
[[ $rc -ne 0 ]] || fail "info of a missing key succeeded"
assert_eq "lines of the error" 1 "$(printf '%s\n' "$err" | wc -l)"
assert_match "the error" 'n/no\\nsuch\\033\[2J: no artifact' "$err"

log "lamfs save prints the key escaped"
printf 'saved\n' >"$WORK/src.txt"
out=$("$LAMFS_BIN" save "$inst" "$WORK/src.txt" --key $'s/sa\nve\033.txt' 2>&1)
assert_eq "lines of lamfs save" 1 "$(printf '%s\n' "$out" | wc -l)"
assert_match "lamfs save's line" 's/sa\\nve\\033\.txt$' "$out"

# The instance's log, and the stderr of daemons run in the foreground
# (sanitizer runs), where their log goes.
all_logs() {
	cat -- "$inst/lamfs.log"
	local f
	for f in "$WORK"/daemon-stderr.*; do
		[[ -f "$f" ]] && cat -- "$f"
	done
	return 0
}

if [[ "${E2E_FAULTS:-0}" == 1 ]]; then
	log "the log names a key of a failed save escaped"
	fault_set "backend.put=EIO"
	assert_eq "close() with backend.put=EIO" EIO \
		"$(errno_of write "$mnt/n/"$'fail\n2026-01-01T00:00:00.000Z ERROR forged\033[2J.txt' x)"
	fault_clear
	# a daemon in the foreground (sanitizer runs) logs to its stderr file
	all_logs |
		grep -qF 'fail\n2026-01-01T00:00:00.000Z ERROR forged\033[2J.txt' ||
		fail "the log does not name the escaped key$(log_tail "$inst")"
fi
assert_eq "lines of the logs with raw control bytes" 0 \
	"$(all_logs | raw_controls)"
all_logs |
	grep -q '^2026-01-01T00:00:00.000Z ERROR forged' && fail "a key forged a log line"

log "lamfs-repair prints the key of a flagged record escaped"
umount_fs "$mnt"
sql "$inst" "update artifact set _aux = '{\"so\": 1}' where key = 'n/esc' || char(27) || '[31mred.txt'"
assert_eq "flagged records" 1 "$(sql "$inst" "select count(*) from artifact where _aux is not null")"
rc=0
out=$("$REPAIR_BIN" "$inst" 2>&1 </dev/null) || rc=$?
printf '%s\n' "$out" | sed 's/^/#   /'
[[ $rc -eq 0 || $rc -eq 1 ]] || fail "lamfs-repair: exit $rc"
assert_match "repair names the key escaped" 'n/esc\\033\[31mred\.txt' "$out"
assert_eq "repair lines with raw control bytes" 0 "$(printf '%s\n' "$out" | raw_controls)"
"$REPAIR_BIN" "$inst" --json >"$WORK/repair.json" 2>/dev/null || true
assert_eq "lamfs.log lines with raw control bytes after repair" 0 "$(raw_controls <"$inst/lamfs.log")"
check_store "$inst"
e2e_pass
