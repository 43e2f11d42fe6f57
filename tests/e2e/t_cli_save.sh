#!/usr/bin/env bash
# t_cli_save.sh — `lamfs save`, LaminDB's ln.save semantics, without a mount:
# every argument is validated first (missing file, directory, unreadable file,
# bad key, --key with several files, two files at one key, a folder at the
# key, an artifact where the key needs a folder): nothing is saved, the
# culprits are named, exit 1.  Then files are saved one by one; when one fails
# (staging full; upload denied), the ones saved before stay saved and are
# listed, with the ones not saved.  Also: --prefix, --key, new / unchanged /
# new-version, --json, saving beside a live mount, and no progress bar in a
# pipe (one on a terminal).
# timeout: 300
. "$(dirname "$0")/lib.sh"
e2e_begin

L() { "$LAMFS_BIN" "$@"; }

py() { python3 -c "import json,sys; j=json.load(sys.stdin); print($1)"; }

inst=$(instance_new inst)
store=$(storage_of "$inst")
src=$WORK/src
mkdir -p "$src/sub" "$src/other"
for i in 1 2 3; do printf 'file %s\n' "$i" >"$src/f$i.txt"; done
printf 'same name, other folder\n' >"$src/other/f1.txt"
printf 'in a folder\n' >"$src/sub/inner.txt"

# What the store holds, to show that a refused save changed nothing.
state() {
	sql "$inst" "select uid, key, size, checksum, coalesce(_aux,'') from artifact order by uid"
	sql "$inst" "select path from folder order by path"
	objects "$store"
	staging_files "$inst"
}

log "a first save, so that the store has a file and a folder to conflict with"
run L save "$inst" "$src/f1.txt" --key data/f1.txt
assert_eq "save --key: exit" 0 "$RC"
uid1=$(sql "$inst" "select uid from artifact where key = 'data/f1.txt'")
assert_eq "save --key: output" "$uid1  new          data/f1.txt" "$OUT"
assert_eq "save: stderr" "" "$ERR"
before=$(state)

# refused WHAT EXPECTED-RE ARGS...: save must fail with exit 1, name the
# culprit (stderr matches EXPECTED-RE), and leave the store unchanged.
refused() {
	local what=$1 re=$2
	shift 2
	run L save "$inst" "$@"
	assert_eq "$what: exit" 1 "$RC"
	assert_match "$what: names the culprit" "$re" "$ERR"
	assert_match "$what: says nothing was saved" "nothing saved" "$ERR"
	assert_eq "$what: no output" "" "$OUT"
	assert_eq "$what: store unchanged" "$before" "$(state)"
}

log "validation: any bad argument means nothing is saved"
refused "a missing file among good ones" "$WORK/nope.txt: no such file" \
	"$src/f2.txt" "$WORK/nope.txt" "$src/f3.txt"
refused "a directory among good ones" "$src/sub: is a directory" \
	"$src/f2.txt" "$src/sub" "$src/f3.txt"
refused "--key with several files" "--key names one artifact, but 2 files" \
	"$src/f2.txt" "$src/f3.txt" --key x.txt
refused "a bad --key" "bad key 'a//b'" "$src/f2.txt" --key 'a//b'
refused "a --key with '..'" "bad key 'x/../y'" "$src/f2.txt" --key 'x/../y'
refused "a reserved key" "bad key '.lamfs/x'" "$src/f2.txt" --key .lamfs/x
refused "a key component too long" "too long" "$src/f2.txt" --key "$(printf 'n%.0s' {1..300})"
refused "a bad --prefix" "bad key 'p/.lamindb/f2.txt'" "$src/f2.txt" --prefix p/.lamindb
# Nothing is silently rewritten: an absolute key is not saved without its '/'.
refused "an absolute --key" "bad key '/abs/key': absolute \\(keys are relative" \
	"$src/f2.txt" --key /abs/key
refused "an absolute --prefix" "bad key '/runs/f2.txt': absolute" "$src/f2.txt" --prefix /runs
refused "a --key with a trailing '/'" "bad key 'dir/': has an empty component" \
	"$src/f2.txt" --key dir/
refused "an empty --key" "bad key '': empty" "$src/f2.txt" --key ''

log "--json: a failure is a JSON object with error, exit 1/2 as without --json"
run L save "$inst" "$src/f2.txt" --key /abs/key --json
assert_eq "--json bad key: exit" 1 "$RC"
assert_eq "--json bad key: error names the key" \
	"bad key '/abs/key': absolute (keys are relative to the instance's root: leave out the leading '/')|0" \
	"$(py 'j["failed"][0]["error"] + "|" + str(len(j["saved"]))' <<<"$OUT")"
assert_match "--json bad key: top-level error" "bad key '/abs/key'" "$(py 'j["error"]' <<<"$OUT")"
assert_eq "store unchanged after --json refusal" "$before" "$(state)"
run L save "$WORK/not-an-instance" "$src/f2.txt" --json
assert_eq "--json not an instance: exit" 1 "$RC"
assert_match "--json not an instance: error" "not-an-instance" "$(py 'j["error"]' <<<"$OUT")"
run L save "$inst" --json
assert_eq "--json usage error: exit" 2 "$RC"
assert_match "--json usage error: error" "expected INSTANCE and at least one FILE" "$(py 'j["error"]' <<<"$OUT")"
for cmd in "ls $inst nothere" "info $inst nothere" "versions $inst nothere" "status $WORK/nope" \
	   "ls $inst --bogus"; do
	# shellcheck disable=SC2086 # split on purpose
	run L $cmd --json
	[[ $RC == 1 || $RC == 2 ]] || fail "lamfs $cmd --json: exit $RC"
	e=$(py 'j["error"] + "|" + str(j["exit"])' <<<"$OUT") || fail "lamfs $cmd --json: no JSON error object: $OUT"
	assert_match "lamfs $cmd --json: error and exit" "^.+\|$RC\$" "$e"
done
for args in "$WORK/nope" "--bogus $inst" ""; do
	# shellcheck disable=SC2086 # split on purpose
	run "$(dirname "$LAMFS_BIN")/lamfs-repair" $args --json
	[[ $RC == 8 || $RC == 16 ]] || fail "lamfs-repair $args --json: exit $RC"
	e=$(py 'j["error"] + "|" + str(j["exit"])' <<<"$OUT") || fail "lamfs-repair $args --json: no JSON error object: $OUT"
	assert_match "lamfs-repair $args --json: error and exit" "^.+\|$RC\$" "$e"
done
refused "two files at one key" "$src/other/f1.txt: key 'f1.txt' is taken by $src/f1.txt" \
	"$src/f1.txt" "$src/other/f1.txt"
refused "a folder at the key" "key 'data' is a folder" "$src/f2.txt" --key data
refused "an artifact where a folder is needed" "needs the folder 'data/f1.txt', which is an artifact" \
	"$src/f2.txt" --key data/f1.txt/deeper
log "several culprits are all named"
run L save "$inst" "$WORK/nope1" "$src/f2.txt" "$WORK/nope2"
assert_eq "two missing files: exit" 1 "$RC"
assert_match "first culprit" "nope1: no such file" "$ERR"
assert_match "second culprit" "nope2: no such file" "$ERR"
assert_match "count" "nothing saved: 2 problems" "$ERR"
assert_eq "two missing files: store unchanged" "$before" "$(state)"
log "an unreadable file (checked as an unprivileged user)"
if command -v setpriv >/dev/null; then
	chmod 600 "$src/f3.txt"
	chmod 755 "$WORK" "$src"
	run setpriv --reuid=65534 --regid=65534 --clear-groups "$LAMFS_BIN" save "$inst" "$src/f2.txt" "$src/f3.txt"
	assert_eq "unreadable: exit" 1 "$RC"
	assert_match "unreadable: names it" "$src/f3.txt: (cannot be read: )?Permission denied" "$ERR"
	assert_eq "unreadable: store unchanged" "$before" "$(state)"
	chmod 644 "$src/f3.txt"
else
	log "setpriv missing: unreadable-file case skipped"
fi
run L save "$inst" "$WORK/nope" "$src/f2.txt" --json
assert_eq "--json of a refused save: exit" 1 "$RC"
assert_eq "--json of a refused save" "0|$WORK/nope|$WORK/nope $src/f2.txt" \
	"$(py '"%d|%s|%s" % (len(j["saved"]), " ".join(f["path"] for f in j["failed"]), " ".join(j["not_saved"]))' <<<"$OUT")"

log "saving: --prefix, then again (unchanged), then new bytes (new-version)"
run L save "$inst" "$src/f1.txt" "$src/f2.txt" "$src/f3.txt" --prefix runs/2024/
assert_eq "save --prefix: exit" 0 "$RC"
assert_eq "save --prefix: no stderr (no progress bar in a pipe)" "" "$ERR"
for i in 1 2 3; do
	u=$(sql "$inst" "select uid from artifact where key = 'runs/2024/f$i.txt'")
	assert_match "uid of f$i" '^[0-9A-Za-z]{16}0000$' "$u"
	grep -qxF "$u  new          runs/2024/f$i.txt" <<<"$OUT" || fail "save output lacks f$i: $OUT"
done
assert_eq "save --prefix: three lines" 3 "$(wc -l <<<"$OUT")"
check_store "$inst"
u2=$(sql "$inst" "select uid from artifact where key = 'runs/2024/f2.txt'")
run L save "$inst" "$src/f2.txt" --prefix runs/2024
assert_eq "same bytes again" "$u2  unchanged    runs/2024/f2.txt" "$OUT"
printf 'file 2, edited\n' >"$src/f2.txt"
run L save "$inst" "$src/f2.txt" --prefix runs/2024/ --json
assert_eq "new bytes: exit" 0 "$RC"
assert_eq "new bytes: --json" "runs/2024/f2.txt|${u2:0:16}0001|0001|new-version|15|$(lamindb_hash "$src/f2.txt")" \
	"$(py '"|".join(str(j["saved"][0][f]) for f in ("key","uid","version","status","size","hash"))' <<<"$OUT")"
assert_eq "new bytes: --json failed/not_saved" "0 0" "$(py '"%d %d" % (len(j["failed"]), len(j["not_saved"]))' <<<"$OUT")"
L cat "$inst" runs/2024/f2.txt >"$WORK/back"
assert_same_file "the new version reads back" "$src/f2.txt" "$WORK/back"
L cat "$inst" "${u2:0:16}0000" >"$WORK/back"
assert_eq "the old version is kept" "file 2" "$(cat "$WORK/back")"
assert_eq "mode recorded from the file" "420" \
	"$(sql "$inst" "select mode & 4095 from artifact where key = 'runs/2024/f1.txt'")"
check_store "$inst"

log "a failure in the middle: storage full on the second file"
# lamfs save stores files from where they are (no staging copy), so a full
# storage disk is what fails a save in the middle: an instance whose storage
# root is a 2 MiB tmpfs.
small=$WORK/small.txt big=$WORK/big.bin last=$WORK/last.txt
printf 'small\n' >"$small"
random_file "$big" $((3 * MiB))
printf 'last\n' >"$last"
full_store=$WORK/full-store
mkdir -p "$full_store"
# The SQLite database lives in the storage root (<root>/.lamindb/lamin.db):
# a root too small for it fails init with the disk's errno, not another one.
mount -t tmpfs -o size=2m tmpfs "$full_store"
run L init "$WORK/too-small" --storage "$full_store"
assert_eq "init on a storage root too small for the database: exit" 1 "$RC"
assert_match "init on a storage root too small: message" "No space left on device" "$ERR"
umount "$full_store"
# Room for the database and the small files, not for the big one.
mount -t tmpfs -o size=16m tmpfs "$full_store"
outer=$inst
inst=$(instance_new full --storage "$full_store")
free_kb=$(df -k --output=avail "$full_store" | tail -n1)
random_file "$big" $(((free_kb + 1024) * 1024))
run L save "$inst" "$small" "$big" "$last" --prefix mid
assert_eq "mid failure: exit" 1 "$RC"
us=$(sql "$inst" "select uid from artifact where key = 'mid/small.txt'")
assert_match "the first file is saved" '^[0-9A-Za-z]{20}$' "$us"
assert_eq "mid failure: stdout has the saved file" "$us  new          mid/small.txt" "$OUT"
assert_match "mid failure: names the failed file and why" "$big: saving at key 'mid/big.bin' failed: no space left" "$ERR"
assert_match "mid failure: lists what stays saved" "saved before the failure \(they stay saved\):.*$small -> mid/small.txt \(uid $us\)" "$(tr '\n' ' ' <<<"$ERR")"
assert_match "mid failure: lists what was not saved" "not saved:.*$big.*$last" "$(tr '\n' ' ' <<<"$ERR")"
assert_eq "mid failure: nothing of big or last" "0" \
	"$(sql "$inst" "select count(*) from artifact where key in ('mid/big.bin', 'mid/last.txt')")"
check_store "$inst" "$full_store"
log "the same with --json"
run L save "$inst" "$last" "$big" "$small" --prefix mid2 --json
assert_eq "mid failure --json: exit" 1 "$RC"
assert_eq "mid failure --json" "mid2/last.txt|$big|$big $small" \
	"$(py '"%s|%s|%s" % (" ".join(s["key"] for s in j["saved"]), j["failed"][0]["path"], " ".join(j["not_saved"]))' <<<"$OUT")"
assert_match "mid failure --json: error" "no space left" "$(py 'j["error"]' <<<"$OUT")"
check_store "$inst" "$full_store"
inst=$outer
umount "$full_store"

if [[ "${E2E_FAULTS:-1}" == 1 ]]; then
	log "a failure on the first file: upload denied; nothing saved"
	before=$(state)
	RC=0
	ERR=$(LAMFS_FAULT=backend.put=EACCES "$LAMFS_BIN" save "$inst" "$small" "$last" --prefix denied 2>&1 >/dev/null) || RC=$?
	assert_eq "denied: exit" 1 "$RC"
	assert_match "denied: why" "$small: saving at key 'denied/small.txt' failed: storage refused the upload" "$ERR"
	assert_match "denied: nothing was saved" "nothing was saved" "$ERR"
	assert_eq "denied: store unchanged (no record, object or staging file)" "$before" "$(state | grep -v '^denied$')"
	check_store "$inst"
else
	log "no fault injection in this build: upload-denied case skipped"
fi

log "save beside a live mount: the mount sees the new artifact"
mnt=$WORK/mnt
mount_fs "$inst" "$mnt"
run L save "$inst" "$src/f3.txt" --key live/f3.txt
assert_eq "save beside a mount: exit" 0 "$RC"
assert_same_file "the mount reads what save stored" "$src/f3.txt" "$mnt/live/f3.txt"
umount_fs "$mnt"

log "a progress bar on a terminal, none in a pipe (nor when stdout is no terminal)"
for i in $(seq 1 12); do random_file "$src/r$i.bin" 100000; done
err=$("$LAMFS_BIN" save "$inst" "$src"/r*.bin --prefix quiet 2>&1 >/dev/null)
assert_eq "no progress in a pipe" "" "$err"
if command -v script >/dev/null; then
	tty_err=$(script -qec "$LAMFS_BIN save $inst $src/r*.bin --prefix quiet2 >/dev/null" /dev/null)
	assert_eq "no progress when stdout is no terminal" "" "$tty_err"
fi
if command -v script >/dev/null; then
	tty_out=$(script -qec "$LAMFS_BIN save $inst $src/r*.bin --prefix tty" /dev/null | tr '\r' '\n')
	assert_match "progress on a terminal" "(hashing|storing) \[[#.]{20}\] +[0-9]+%  [0-9]+/12  .*/s  ETA" "$tty_out"
	assert_eq "saved through a terminal" 12 "$(L ls "$inst" tty | wc -l)"
fi
check_store "$inst"

e2e_pass
