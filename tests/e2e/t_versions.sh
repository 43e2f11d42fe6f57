#!/usr/bin/env bash
# t_versions.sh — the same bytes again at the same key: same uid, no new row,
# storage untouched.  New bytes: a new version (same 16-character stem,
# version suffix + 1), is_latest moved, and every older version's object still
# stored with its bytes.  Writing older bytes again makes the key read them.
# timeout: 300
. "$(dirname "$0")/lib.sh"
e2e_begin

inst=$(instance_new inst)
root=$(storage_of "$inst")
mnt=$WORK/mnt
key=v/table.csv
f=$mnt/$key
for n in A B C; do
	printf 'id,value\n1,%s\n' "$n" >"$WORK/$n.csv"
done
random_file "$WORK/big.csv" $((2 * MiB))

mount_fs "$inst" "$mnt"
mkdir "$mnt/v"

cp "$WORK/A.csv" "$f"
uid0=$(xattr "$f" user.lamfs.uid)
stem=${uid0:0:16}
assert_eq "first version" "0000" "${uid0:16}"
snap=$(objects_snapshot "$root")

log "same bytes again: same uid, no new version, storage untouched"
cp "$WORK/A.csv" "$f"
assert_eq "uid after saving the same bytes" "$uid0" "$(xattr "$f" user.lamfs.uid)"
assert_eq "rows at the key" "1" "$(sql "$inst" "select count(*) from artifact where key = '$key'")"
assert_eq "objects after saving the same bytes" "$snap" "$(objects_snapshot "$root")"
# the same through open(O_TRUNC)+write+close
assert_eq "write the same bytes" "OK" "$(errno_of copy "$WORK/A.csv" "$f")"
assert_eq "uid after writing the same bytes" "$uid0" "$(xattr "$f" user.lamfs.uid)"
assert_eq "rows at the key" "1" "$(sql "$inst" "select count(*) from artifact where key = '$key'")"

log "new bytes: version 0001, is_latest moved, old object kept"
cp "$WORK/B.csv" "$f"
uid1=$(xattr "$f" user.lamfs.uid)
assert_eq "second version uid" "${stem}0001" "$uid1"
assert_eq "version xattr" "0001" "$(xattr "$f" user.lamfs.version)"
assert_same_file "key reads the new bytes" "$WORK/B.csv" "$f"
assert_eq "rows (uid|is_latest|_aux)" "$(printf '%s|0|\n%s|1|' "$uid0" "$uid1")" \
	"$(rows_at "$inst" "$key" "uid, is_latest, coalesce(_aux, '')")"
assert_same_file "old version's object" "$WORK/A.csv" "$(object_file "$root" "$uid0.csv")"
assert_same_file "new version's object" "$WORK/B.csv" "$(object_file "$root" "$uid1.csv")"
assert_eq "ls v/ shows one entry" "table.csv" "$(ls "$mnt/v")"

log "a bigger third version: 0002"
cp "$WORK/big.csv" "$f"
uid2=$(xattr "$f" user.lamfs.uid)
assert_eq "third version uid" "${stem}0002" "$uid2"
assert_eq "size of the key" "$((2 * MiB))" "$(stat -c %s "$f")"
assert_eq "is_latest rows at the key" "$uid2" \
	"$(sql "$inst" "select uid from artifact where key = '$key' and is_latest = 1")"

log "after a remount: the latest reads back, every version is still stored"
remount "$inst" "$mnt"
assert_same_file "key after remount" "$WORK/big.csv" "$f"
assert_eq "uid after remount" "$uid2" "$(xattr "$f" user.lamfs.uid)"
assert_same_file "version 0000 object" "$WORK/A.csv" "$(object_file "$root" "$uid0.csv")"
assert_same_file "version 0001 object" "$WORK/B.csv" "$(object_file "$root" "$uid1.csv")"
assert_same_file "version 0002 object" "$WORK/big.csv" "$(object_file "$root" "$uid2.csv")"

log "older bytes written again: the key reads them, one is_latest"
cp "$WORK/A.csv" "$f"
assert_same_file "key after writing version 0000's bytes again" "$WORK/A.csv" "$f"
latest=$(sql "$inst" "select uid from artifact where key = '$key' and is_latest = 1")
assert_eq "is_latest rows" "1" "$(wc -l <<<"$latest")"
assert_eq "latest uid's stem" "$stem" "${latest:0:16}"
assert_eq "uid xattr is the latest" "$latest" "$(xattr "$f" user.lamfs.uid)"
remount "$inst" "$mnt"
assert_same_file "key after remount" "$WORK/A.csv" "$f"

umount_fs "$mnt"
check_store "$inst"

e2e_pass
