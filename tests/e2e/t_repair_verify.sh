#!/usr/bin/env bash
# t_repair_verify.sh — lamfs-repair --verify, --json, --dry-run and the lock:
#  - an intact instance verifies clean (exit 0), a large (sha1-fl) file too;
#  - the repair refuses while the instance is mounted (exit 8, one line),
#    also with --json (a report with "exit": 8); --force-unlocked runs but
#    leaves staging files alone;
#  - one object deleted and two corrupted behind lamfs's back (one of them
#    in the middle of a file over 100 MiB, between the two 50 MiB chunks the
#    LaminDB hash covers, so only the sha256 sees it): --verify reports each, exits 4, and keeps every
#    record; the --json report says the same and parses; a second --verify
#    still exits 4 (nothing is "fixed");
#  - --dry-run changes nothing: the instance's files are byte-identical
#    before and after, while it reports what it would do.
# timeout: 400
. "$(dirname "$0")/lib.sh"
e2e_begin

REPAIR_BIN=${LAMFS_REPAIR_BIN:-$(dirname "$LAMFS_BIN")/lamfs-repair}
[[ -x "$REPAIR_BIN" ]] || fail "no lamfs-repair binary at $REPAIR_BIN (set LAMFS_REPAIR_BIN)"

run_repair() {
	REPAIR_RC=0
	REPAIR_OUT=$("$REPAIR_BIN" "$@" 2>"$WORK/repair.err" </dev/null) || REPAIR_RC=$?
	REPAIR_ERR=$(cat "$WORK/repair.err")
	log "lamfs-repair $* -> exit $REPAIR_RC"
	[[ "$*" == *--json* ]] || sed 's/^/#   /' <<<"$REPAIR_OUT"
	[[ -z "$REPAIR_ERR" ]] || sed 's/^/#   stderr: /' <<<"$REPAIR_ERR"
}

# assert_line WHAT EXTENDED-REGEX TEXT: some line of TEXT matches.
assert_line() {
	grep -qE -- "$2" <<<"$3" || fail "$1: no line matches /$2/ in: $3"
}

# Every file of the instance with its size, mtime and content hash.  SQLite's
# own -wal/-shm side files are left out (a read-only connection to a WAL
# database creates them and cannot remove them; an empty -wal holds no
# change), and so is the mtime of the folder holding the database
# (storage/.lamindb), which their creation moves.
instance_listing() {
	(cd "$1" && find . -mindepth 1 ! -name 'lamin.db-shm' ! -name 'lamin.db-wal' \
		! -path ./storage/.lamindb -printf '%P %y %s %T@\n' | LC_ALL=C sort &&
		find . -type f ! -name 'lamin.db-shm' ! -name 'lamin.db-wal' \
			-exec sha256sum {} + | LC_ALL=C sort -k2)
	if [[ -s "$(db_of "$1")-wal" ]]; then echo "lamin.db-wal holds changes"; fi
}

# flip_byte FILE OFFSET: invert one byte in place (same inode, same size).
flip_byte() {
	python3 - "$1" "$2" <<'EOF'
import os, sys
fd = os.open(sys.argv[1], os.O_RDWR)
off = int(sys.argv[2])
b = os.pread(fd, 1, off)
os.pwrite(fd, bytes([b[0] ^ 0xff]), off)
os.close(fd)
EOF
}

inst=$(instance_new inst)
root=$(storage_of "$inst")
mnt=$WORK/mnt
printf '>seq1\nACGT\n' >"$WORK/a.fasta"
random_file "$WORK/b.bin" $((2 * MiB + 3))
random_file "$WORK/c.txt" 777
random_file "$WORK/big.bin" $((101 * MiB + 11))

mount_fs "$inst" "$mnt"
mkdir -p "$mnt/v/sub"
cp "$WORK/a.fasta" "$mnt/v/a.fasta"
cp "$WORK/b.bin" "$mnt/v/b.bin"
cp "$WORK/c.txt" "$mnt/v/sub/c.txt"
cp "$WORK/big.bin" "$mnt/v/big.bin"
assert_eq "hash type of the big file" sha1-fl "$(xattr "$mnt/v/big.bin" user.lamfs.hash_type)"
a_uid=$(xattr "$mnt/v/a.fasta" user.lamfs.uid)
b_uid=$(xattr "$mnt/v/b.bin" user.lamfs.uid)
big_uid=$(xattr "$mnt/v/big.bin" user.lamfs.uid)

log "while mounted the repair refuses"
run_repair "$inst"
assert_eq "exit status while mounted" 8 "$REPAIR_RC"
assert_eq "stdout while mounted" "" "$REPAIR_OUT"
assert_eq "one line on stderr" 1 "$(wc -l <<<"$REPAIR_ERR")"
assert_match "the message says why" 'mounted' "$REPAIR_ERR"
run_repair "$inst" --verify --dry-run
assert_eq "exit status while mounted (--verify --dry-run)" 8 "$REPAIR_RC"
run_repair "$inst" --json
assert_eq "exit status while mounted (--json)" 8 "$REPAIR_RC"
python3 - "$REPAIR_OUT" <<'EOF' || fail "--json report while mounted is wrong"
import json, sys
r = json.loads(sys.argv[1])
assert r["exit"] == 8, r
assert "mounted" in r["error"], r
assert r["actions"] == [], r
EOF

log "--force-unlocked runs beside the mount but leaves staging files alone"
echo "an open file's bytes" >"$inst/staging/w.abcdef"
run_repair "$inst" --force-unlocked --verify
assert_eq "exit status with --force-unlocked" 0 "$REPAIR_RC"
assert_line "the staging file is kept" '^staging +kept +.*/staging/w\.abcdef: ' "$REPAIR_OUT"
assert_present "staging file after --force-unlocked" "$inst/staging/w.abcdef"
assert_match "it warns that the lock is held" 'lock is held' "$REPAIR_ERR"
rm "$inst/staging/w.abcdef"
umount_fs "$mnt"

log "an intact instance verifies clean"
run_repair "$inst" --verify
assert_eq "exit status of --verify on an intact instance" 0 "$REPAIR_RC"
assert_match "summary" ': clean; 4 object\(s\) verified \(103\.0 MiB\) \(exit 0\)$' "$REPAIR_OUT"

log "behind lamfs's back: a.fasta deleted, b.bin and big.bin changed by one byte"
rm "$root/.lamindb/$a_uid.fasta"
flip_byte "$root/.lamindb/$b_uid.bin" $((MiB + 1))
flip_byte "$root/.lamindb/$big_uid.bin" $((50 * MiB + 512 * 1024))
cmp -s "$WORK/big.bin" "$root/.lamindb/$big_uid.bin" && fail "big.bin was not changed"

log "without --verify nothing looks wrong (the objects are not read)"
run_repair "$inst"
assert_eq "exit status without --verify" 0 "$REPAIR_RC"

log "--dry-run --verify reports and changes nothing"
echo "left by a crash" >"$inst/staging/w.XyZ123"
before=$(instance_listing "$inst")
run_repair "$inst" --dry-run --verify
assert_eq "exit status of the dry run" 4 "$REPAIR_RC"
assert_line "dry run: staging file" '^staging +would-remove +.*/staging/w\.XyZ123: ' "$REPAIR_OUT"
assert_line "dry run: a.fasta missing" "^verify +missing +v/a\.fasta \($a_uid\)" "$REPAIR_OUT"
assert_match "dry run summary" 'dry run, nothing changed' "$REPAIR_OUT"
run_repair "$inst" --dry-run --verify --json
assert_eq "exit status of the dry run (--json)" 4 "$REPAIR_RC"
assert_eq "instance after the dry runs" "$before" "$(instance_listing "$inst")"
rm "$inst/staging/w.XyZ123"

log "--verify reports the missing and the corrupt objects, exit 4"
run_repair "$inst" --verify
assert_eq "exit status of --verify" 4 "$REPAIR_RC"
assert_line "a.fasta missing" "^verify +missing +v/a\.fasta \($a_uid\): " "$REPAIR_OUT"
assert_line "b.bin corrupt" "^verify +corrupt +v/b\.bin \($b_uid\): .*sha256" "$REPAIR_OUT"
# The changed byte lies between the two chunks the sha1-fl hash covers.
assert_line "big.bin corrupt" "^verify +corrupt +v/big\.bin \($big_uid\): sha256 " "$REPAIR_OUT"
assert_eq "findings" 3 "$(grep -cE '^verify ' <<<"$REPAIR_OUT")"
assert_match "summary" '1 object\(s\) missing, 2 object\(s\) corrupt, 1 object\(s\) verified' \
	"$REPAIR_OUT"
assert_eq "records kept" 4 "$(sql "$inst" "select count(*) from artifact")"

log "--json says the same"
run_repair "$inst" --verify --json
assert_eq "exit status of --verify --json" 4 "$REPAIR_RC"
python3 - "$REPAIR_OUT" "$inst" "$a_uid" "$b_uid" "$big_uid" <<'EOF' || fail "--json report is wrong"
import json, os, sys
out, inst, a_uid, b_uid, big_uid = sys.argv[1:]
r = json.loads(out)
assert os.path.samefile(r["instance"], inst), r["instance"]
assert r["exit"] == 4 and r["verify"] is True and r["dry_run"] is False, r
acts = {(a["kind"], a["action"], a["key"], a["uid"]) for a in r["actions"]}
want = {("verify", "missing", "v/a.fasta", a_uid),
        ("verify", "corrupt", "v/b.bin", b_uid),
        ("verify", "corrupt", "v/big.bin", big_uid)}
assert acts == want, acts
for a in r["actions"]:
    assert a["name"].startswith(".lamindb/" + a["uid"]), a
    assert a["detail"], a
s = r["summary"]
assert (s["missing"], s["corrupt"], s["verified"], s["failed"]) == (1, 2, 1, 0), s
assert s["verified_bytes"] == 777, s
EOF

log "nothing was fixed: a second --verify finds the same"
run_repair "$inst" --verify
assert_eq "exit status of the second --verify" 4 "$REPAIR_RC"
assert_eq "findings of the second run" 3 "$(grep -cE '^verify ' <<<"$REPAIR_OUT")"
assert_present "b.bin's object is still there" "$root/.lamindb/$b_uid.bin"
assert_eq "records kept" 4 "$(sql "$inst" "select count(*) from artifact")"

log "on a terminal, a progress bar on stderr"
tty_out=$(script -qec "$(printf '%q ' "$REPAIR_BIN" "$inst" --verify) 2>&1 >/dev/null" /dev/null \
	</dev/null || true)
assert_match "progress bar" 'verify +\[[#-]+\] [0-9]+/4 +[0-9.]+ [KMG]?i?B/103\.0 MiB' "$tty_out"

e2e_pass
