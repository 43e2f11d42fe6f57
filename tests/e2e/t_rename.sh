#!/usr/bin/env bash
# t_rename.sh — rename moves keys, never bytes: renaming a file and a folder
# of 1,000 files leaves every storage object as it was (same names, inodes,
# sizes, mtimes) and every uid with its bytes.  Rename replaces an existing
# target as POSIX says; a folder onto a non-empty folder fails with ENOTEMPTY.
# timeout: 600
. "$(dirname "$0")/lib.sh"
e2e_begin

inst=$(instance_new inst)
root=$(storage_of "$inst")
mnt=$WORK/mnt
mount_fs "$inst" "$mnt"

log "rename of a file"
mkdir "$mnt/r" "$mnt/other"
printf '>a\nACGT\n' >"$WORK/a.fasta"
cp "$WORK/a.fasta" "$mnt/r/a.fasta"
uid=$(xattr "$mnt/r/a.fasta" user.lamfs.uid)
snap=$(objects_snapshot "$root")
mv "$mnt/r/a.fasta" "$mnt/r/b.fasta"
assert_absent "old name" "$mnt/r/a.fasta"
assert_same_file "new name" "$WORK/a.fasta" "$mnt/r/b.fasta"
assert_eq "uid after rename" "$uid" "$(xattr "$mnt/r/b.fasta" user.lamfs.uid)"
assert_eq "key of the record" "r/b.fasta" "$(sql "$inst" "select key from artifact where uid = '$uid'")"
assert_eq "objects after a file rename" "$snap" "$(objects_snapshot "$root")"
mv "$mnt/r/b.fasta" "$mnt/other/"
assert_same_file "moved to another folder" "$WORK/a.fasta" "$mnt/other/b.fasta"
assert_eq "ls r/" "" "$(ls -A "$mnt/r")"
assert_eq "objects after a move across folders" "$snap" "$(objects_snapshot "$root")"

log "rename of a folder of 1,000 files"
mkdir -p "$WORK/many/sub"
for i in $(seq -w 1 990); do
	printf 'file %s\n' "$i" >"$WORK/many/f$i.txt"
done
for i in $(seq -w 1 10); do
	printf 'nested %s\n' "$i" >"$WORK/many/sub/n$i.txt"
done
start=$SECONDS
cp -r "$WORK/many" "$mnt/big"
log "cp -r of 1,000 files took $((SECONDS - start))s"
assert_eq "files under big/" "1000" "$(find "$mnt/big" -type f | wc -l)"
uids_before=$(sql "$inst" "select uid || ' ' || substr(key, 5) from artifact where key like 'big/%' order by 1")
assert_eq "records under big/" "1000" "$(wc -l <<<"$uids_before")"
snap=$(objects_snapshot "$root")
start=$SECONDS
mv "$mnt/big" "$mnt/big2"
log "mv of the folder took $((SECONDS - start))s"
assert_absent "old folder" "$mnt/big"
assert_eq "files under big2/" "1000" "$(find "$mnt/big2" -type f | wc -l)"
assert_eq "objects after a folder rename" "$snap" "$(objects_snapshot "$root")"
assert_eq "records under big/ after the rename" "0" \
	"$(sql "$inst" "select count(*) from artifact where key like 'big/%'")"
assert_eq "uids and names under big2/" "$uids_before" \
	"$(sql "$inst" "select uid || ' ' || substr(key, 6) from artifact where key like 'big2/%' order by 1")"
assert_ok "diff -r of the renamed folder" diff -r "$WORK/many" "$mnt/big2"
remount "$inst" "$mnt"
assert_ok "diff -r after remount" diff -r "$WORK/many" "$mnt/big2"
assert_absent "old folder after remount" "$mnt/big"

log "replace on rename: a file onto an existing file"
echo "X content" >"$WORK/x"
echo "Y content, longer" >"$WORK/y"
cp "$WORK/x" "$mnt/r/x.txt"
cp "$WORK/y" "$mnt/r/y.txt"
uidx=$(xattr "$mnt/r/x.txt" user.lamfs.uid)
mv -f "$mnt/r/x.txt" "$mnt/r/y.txt"
assert_absent "source after replace" "$mnt/r/x.txt"
assert_same_file "target reads the source's bytes" "$WORK/x" "$mnt/r/y.txt"
assert_eq "target's uid is the source's" "$uidx" "$(xattr "$mnt/r/y.txt" user.lamfs.uid)"
assert_eq "ls r/" "y.txt" "$(ls "$mnt/r")"
assert_eq "live latest records at r/y.txt" "$uidx" \
	"$(sql "$inst" "select uid from artifact where key = 'r/y.txt' and is_latest = 1 and branch_id = 1")"

log "replace on rename: a folder onto an empty folder; ENOTEMPTY onto a non-empty one"
mkdir "$mnt/d1" "$mnt/d2" "$mnt/d3"
echo 1 >"$mnt/d1/one.txt"
echo 3 >"$mnt/d3/three.txt"
snap=$(objects_snapshot "$root")
assert_errno ENOTEMPTY rename "$mnt/d1" "$mnt/d3"
assert_eq "d1 after the refused rename" "one.txt" "$(ls "$mnt/d1")"
assert_eq "d3 after the refused rename" "three.txt" "$(ls "$mnt/d3")"
assert_errno OK rename "$mnt/d1" "$mnt/d2"
assert_absent "d1 after rename onto empty d2" "$mnt/d1"
assert_eq "d2 after rename" "one.txt" "$(ls "$mnt/d2")"
assert_eq "objects after the folder renames" "$snap" "$(objects_snapshot "$root")"
assert_errno EISDIR rename "$mnt/d2/one.txt" "$mnt/d3"
assert_errno ENOTDIR rename "$mnt/d3" "$mnt/d2/one.txt"
assert_errno EINVAL rename "$mnt/d2" "$mnt/d2/inside"

umount_fs "$mnt"
check_store "$inst"

e2e_pass
