#!/usr/bin/env bash
# t_cli_init.sh — `lamfs init` makes missing parent folders as mkdir -p does
# (for the instance and for --storage), takes back exactly what it made when
# it fails, and says what to check when a parent cannot be made.
# timeout: 60
. "$(dirname "$0")/lib.sh"
e2e_begin

log "init of a/b/c with a and b missing: made, usable"
inst=$WORK/new/deeper/inst
out=$("$LAMFS_BIN" init "$inst" 2>&1) || fail "lamfs init $inst: $out"
assert_eq "init: message" "initialised lamfs instance $inst:" "$(head -n1 <<<"$out" | cut -d" " -f1-4)"
[[ -f "$inst/lamfs.conf" ]] || fail "no lamfs.conf in $inst"
printf 'hello\n' >"$WORK/f.txt"
"$LAMFS_BIN" save "$inst" "$WORK/f.txt" --key f.txt >/dev/null
assert_eq "saved and read back" "hello" "$("$LAMFS_BIN" cat "$inst" f.txt)"

log "--storage with missing parents is made too"
inst2=$WORK/i2
st2=$WORK/far/away/store
out=$("$LAMFS_BIN" init "$inst2" --storage "$st2" 2>&1) || fail "lamfs init --storage $st2: $out"
[[ -d "$st2/.lamindb" ]] || fail "storage $st2/.lamindb not made"
"$LAMFS_BIN" save "$inst2" "$WORK/f.txt" --key f.txt >/dev/null
assert_eq "objects in the new storage" 1 "$(find "$st2/.lamindb" -type f -name '*.txt' ! -name storage_uid.txt | wc -l)"

log "a failing init takes back the folders it made, and only those"
mkdir -p "$WORK/keep"
: >"$WORK/keep/afile"
rc=0
out=$("$LAMFS_BIN" init "$WORK/keep/x/y/inst" --storage "$WORK/keep/afile/store" 2>&1) || rc=$?
assert_eq "init over a file parent: exit" 1 "$rc"
assert_match "init over a file parent: message" "cannot create storage root $WORK/keep/afile/store: Not a directory" "$out"
assert_absent "the instance's new parents are gone" "$WORK/keep/x"
assert_present "what was there stays" "$WORK/keep/afile"

rc=0
out=$("$LAMFS_BIN" init "$WORK/keep/afile/inst" 2>&1) || rc=$?
assert_eq "init under a file: exit" 1 "$rc"
assert_match "init under a file: message" "cannot create $WORK/keep/afile/inst: Not a directory" "$out"

e2e_pass
