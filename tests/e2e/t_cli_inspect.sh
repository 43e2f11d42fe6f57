#!/usr/bin/env bash
# t_cli_inspect.sh — the inspecting CLI on a real instance, mounted and not:
# lamfs ls (PREFIX, -l, --json), info (KEY and UID, --json), versions
# (--json), cat and get of the latest and of old versions by uid, a corrupt
# object refused by cat/get, --help and usage errors with their exit codes.
# Expected values come from the mount (xattrs, stat) and from sha256sum.
# timeout: 300
. "$(dirname "$0")/lib.sh"
e2e_begin

L() { "$LAMFS_BIN" "$@"; }

# jq-like: py 'EXPR' reads JSON on stdin as j, prints EXPR.
py() { python3 -c "import json,sys; j=json.load(sys.stdin); print($1)"; }

inst=$(instance_new inst)
mnt=$WORK/mnt
mount_fs "$inst" "$mnt"

log "a small tree, and three versions of one key"
mkdir -p "$mnt/seqs/deep" "$mnt/tables" "$mnt/empty"
printf '>seq1\nACGT\n' >"$WORK/a.fasta"
cp "$WORK/a.fasta" "$mnt/seqs/a.fasta"
printf 'x,y\n1,2\n' >"$mnt/tables/t.csv"
random_file "$WORK/blob" $((2 * MiB + 3))
cp "$WORK/blob" "$mnt/seqs/deep/blob.bin"
printf 'top\n' >"$mnt/top.txt"
printf 'one\n' >"$WORK/v0"
printf 'version two\n' >"$WORK/v1"
printf 'and the third version\n' >"$WORK/v2"
for v in v0 v1 v2; do cp "$WORK/$v" "$mnt/notes.txt"; done
keys=(notes.txt seqs/a.fasta seqs/deep/blob.bin tables/t.csv top.txt)

# The expected `lamfs ls` line of a key, from the mount.
ls_line() {
	local f=$mnt/$1
	printf '%12s  %s  %s  %-22s  %s\n' "$(stat -c %s "$f")" "$(xattr "$f" user.lamfs.version)" \
		"$(xattr "$f" user.lamfs.uid)" "$(xattr "$f" user.lamfs.hash)" "$1"
}
want_all=$(for k in "${keys[@]}"; do ls_line "$k"; done)
want_seqs=$(ls_line seqs/a.fasta; ls_line seqs/deep/blob.bin)
want_one=$(ls_line tables/t.csv)
uid_a=$(xattr "$mnt/seqs/a.fasta" user.lamfs.uid)
uid_notes=$(xattr "$mnt/notes.txt" user.lamfs.uid)
stem=${uid_notes:0:16}
assert_eq "notes.txt is version 2" "${stem}0002" "$uid_notes"

log "ls while mounted"
run L ls "$inst"
assert_eq "ls exit" 0 "$RC"
assert_eq "ls output" "$want_all" "$OUT"
assert_eq "ls stderr" "" "$ERR"

umount_fs "$mnt"

log "ls of the whole instance, of a prefix (with and without slashes), of one key"
run L ls "$inst"
assert_eq "ls after umount" "$want_all" "$OUT"
for p in seqs seqs/ /seqs/; do
	run L ls "$inst" "$p"
	assert_eq "ls $p exit" 0 "$RC"
	assert_eq "ls $p" "$want_seqs" "$OUT"
done
run L ls "$inst" tables/t.csv
assert_eq "ls of a key" "$want_one" "$OUT"
run L ls "$inst" empty
assert_eq "ls of an empty folder: exit" 0 "$RC"
assert_eq "ls of an empty folder" "" "$OUT"
run L ls "$inst" nothere
assert_eq "ls of a missing prefix: exit" 1 "$RC"
assert_match "ls of a missing prefix: message" "nothere: no such folder" "$ERR"
run L ls "$inst" .lamfs
assert_eq "ls .lamfs (hidden): exit" 1 "$RC"

log "ls -l: mode, mtime and creation dates, flags"
run L ls "$inst" -l tables
mt=$(sql "$inst" "select mtime_ns / 1000000000 from artifact where uid = (select uid from artifact where key = 'tables/t.csv')")
ct=$(sql "$inst" "select created_at / 1000000000 from artifact where key = 'tables/t.csv'")
uid_t=$(sql "$inst" "select uid from artifact where key = 'tables/t.csv'")
hash_t=$(sql "$inst" "select hash from artifact where key = 'tables/t.csv'")
want=$(printf -- '-rw-r--r--  %12s  0000  %s  %-22s  %s  %s  -  tables/t.csv' 8 "$uid_t" "$hash_t" \
	"$(date -d "@$mt" '+%F %T')" "$(date -d "@$ct" '+%F %T')")
assert_eq "ls -l line" "$want" "$OUT"

log "ls --json: every record with every field"
run L ls "$inst" --json
assert_eq "ls --json exit" 0 "$RC"
assert_eq "ls --json keys" "${keys[*]}" "$(py '" ".join(r["key"] for r in j)' <<<"$OUT")"
assert_eq "ls --json a.fasta" \
	"$uid_a|0000|11|83rEPcAoBHmYiIuyBYrFKg|md5|$(sha256_of "$WORK/a.fasta")|True|False|.fasta|0644" \
	"$(py '"|".join(str(r[f]) for r in j if r["key"]=="seqs/a.fasta" for f in ("uid","version","size","hash","hash_type","checksum","is_latest","storage_ongoing","suffix","mode"))' <<<"$OUT")"
assert_eq "ls --json prefix" 'seqs/a.fasta seqs/deep/blob.bin' \
	"$(L ls "$inst" seqs --json | py '" ".join(r["key"] for r in j)')"
assert_eq "ls --json of nothing" "0" "$(L ls "$inst" empty --json | py 'len(j)')"

log "info KEY and info UID (text and --json)"
run L info "$inst" seqs/a.fasta
assert_eq "info exit" 0 "$RC"
for want in "key:             seqs/a.fasta" "uid:             $uid_a" "version:         0000" \
	"latest:          yes" "storage ongoing: no" "size:            11" \
	"hash:            83rEPcAoBHmYiIuyBYrFKg" "hash type:       md5" \
	"checksum:        $(sha256_of "$WORK/a.fasta")" "suffix:          .fasta" \
	"object:          $inst/storage/.lamindb/$uid_a.fasta" "mode:            0644 (-rw-r--r--)" \
	"owner:           0:0"; do
	grep -qxF -- "$want" <<<"$OUT" || fail "info: no line '$want' in: $OUT"
done
run L info "$inst" /seqs/a.fasta
assert_match "info with a leading slash" "uid: +$uid_a" "$OUT"
run L info "$inst" "${stem}0000"
assert_eq "info of an old version: exit" 0 "$RC"
grep -qxF "latest:          no" <<<"$OUT" || fail "info of ${stem}0000 should say latest: no: $OUT"
grep -qxF "size:            $(stat -c %s "$WORK/v0")" <<<"$OUT" || fail "info of ${stem}0000: size: $OUT"
run L info "$inst" notes.txt --json
assert_eq "info --json" "${stem}0002|notes.txt|0002|True|$(sha256_of "$WORK/v2")|$(lamindb_hash "$WORK/v2")" \
	"$(py '"|".join(str(j[f]) for f in ("uid","key","version","is_latest","checksum","hash"))' <<<"$OUT")"
assert_eq "info --json object" "$inst/storage/.lamindb/${stem}0002.txt" "$(py 'j["object"]' <<<"$OUT")"
assert_match "info --json created_at is ISO 8601 UTC" '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}\.[0-9]{9}Z$' \
	"$(py 'j["created_at"]' <<<"$OUT")"
run L info "$inst" nothere.txt
assert_eq "info of a missing key: exit" 1 "$RC"
assert_eq "info of a missing key: message" "lamfs info: nothere.txt: no artifact with this key" "$ERR"
run L info "$inst" seqs
assert_eq "info of a folder: exit" 1 "$RC"
assert_match "info of a folder: message" "is a folder" "$ERR"
run L info "$inst" 0123456789abcdefABCD
assert_eq "info of an unknown uid: exit" 1 "$RC"
assert_match "info of an unknown uid: message" "no artifact with this key or uid" "$ERR"

log "versions KEY (text and --json), versions UID"
run L versions "$inst" notes.txt
assert_eq "versions exit" 0 "$RC"
assert_eq "versions lines" 3 "$(wc -l <<<"$OUT")"
i=0
while read -r uid ver size date _time mark; do
	assert_eq "versions line $i uid" "${stem}000$i" "$uid"
	assert_eq "versions line $i version" "000$i" "$ver"
	assert_eq "versions line $i size" "$(stat -c %s "$WORK/v$i")" "$size"
	assert_match "versions line $i date" '^[0-9]{4}-[0-9]{2}-[0-9]{2}$' "$date"
	if ((i == 2)); then
		assert_eq "versions: latest marker" latest "$mark"
	else
		assert_eq "versions line $i: no marker" "" "$mark"
	fi
	i=$((i + 1))
done <<<"$OUT"
run L versions "$inst" "${stem}0001"
assert_eq "versions by uid lists the key's versions" 3 "$(wc -l <<<"$OUT")"
run L versions "$inst" notes.txt --json
assert_eq "versions --json" "${stem}0000:False ${stem}0001:False ${stem}0002:True" \
	"$(py '" ".join(r["uid"]+":"+str(r["is_latest"]) for r in j)' <<<"$OUT")"
run L versions "$inst" nothere
assert_eq "versions of a missing key: exit" 1 "$RC"

log "cat and get: latest by key, any version by uid, byte-exact"
L cat "$inst" notes.txt >"$WORK/out"
assert_same_file "cat KEY" "$WORK/v2" "$WORK/out"
for i in 0 1 2; do
	L cat "$inst" "${stem}000$i" >"$WORK/out"
	assert_same_file "cat version $i" "$WORK/v$i" "$WORK/out"
done
L cat "$inst" seqs/deep/blob.bin >"$WORK/out"
assert_same_file "cat of a 2 MiB artifact" "$WORK/blob" "$WORK/out"
L get "$inst" "${stem}0000" "$WORK/got0"
assert_same_file "get UID" "$WORK/v0" "$WORK/got0"
mkdir "$WORK/dl"
L get "$inst" seqs/a.fasta "$WORK/dl"
assert_same_file "get into a directory" "$WORK/a.fasta" "$WORK/dl/a.fasta"
assert_eq "get keeps the recorded mode" 644 "$(stat -c %a "$WORK/dl/a.fasta")"
want_mt=$(sql "$inst" "select mtime_ns / 1000000000 from artifact where uid = '$uid_a'")
assert_eq "get keeps the recorded mtime" "$want_mt" "$(stat -c %Y "$WORK/dl/a.fasta")"
run L cat "$inst" nothere
assert_eq "cat of a missing key: exit" 1 "$RC"
assert_eq "cat of a missing key: no output" "" "$OUT"

log "a corrupt object: cat fails, get leaves DEST alone"
obj=$inst/storage/.lamindb/$uid_t.csv
printf 'X' | dd of="$obj" bs=1 seek=0 conv=notrunc status=none
run L cat "$inst" tables/t.csv
assert_eq "cat of a corrupt object: exit" 1 "$RC"
assert_match "cat of a corrupt object: message" "do not match its record" "$ERR"
echo keep >"$WORK/dest"
run L get "$inst" tables/t.csv "$WORK/dest"
assert_eq "get of a corrupt object: exit" 1 "$RC"
assert_eq "get of a corrupt object: DEST untouched" keep "$(cat "$WORK/dest")"
left=$(find "$WORK" -maxdepth 1 -name 'dest.lamfs-*')
assert_eq "get of a corrupt object: no temporary left" "" "$left"

log "--help (exit 0, stdout) and usage errors (exit 2) for every command"
for c in init mount ls info versions save cat get status; do
	run L "$c" --help
	assert_eq "lamfs $c --help exit" 0 "$RC"
	assert_match "lamfs $c --help" "^usage: lamfs $c" "$OUT"
done
run L --help
assert_eq "lamfs --help" 0 "$RC"
for args in "ls" "info" "versions" "cat $inst" "get $inst x" "status" "save $inst" \
	"ls $inst --bogus" "save $inst f --key k --prefix p"; do
	# shellcheck disable=SC2086
	run L $args
	assert_eq "lamfs $args: usage error exit" 2 "$RC"
done
run L frobnicate
assert_eq "unknown command exit" 2 "$RC"
run L ls "$WORK/dl"
assert_eq "ls of a directory that is no instance: exit" 1 "$RC"
assert_match "ls of a non-instance: message" "is not a lamfs instance" "$ERR"
assert_eq "ls of a non-instance: one line" 1 "$(wc -l <<<"$ERR")"

e2e_pass
