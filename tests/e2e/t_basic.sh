#!/usr/bin/env bash
# t_basic.sh — everyday use: init (and its refusal to run twice), --storage,
# mkdir/rmdir, ls -l, chmod/chown/touch stored and surviving a remount,
# statfs through df, getfattr -d with the five user.lamfs.* attributes, and
# rm removing the storage object once the delete is committed.
# timeout: 300
. "$(dirname "$0")/lib.sh"
e2e_begin

# Name, size, mode and mtime of every file, and the bytes of regular files.
tree_fingerprint() {
	(cd "$1" && find . -printf '%P %y %s %m %T@\n' | LC_ALL=C sort &&
		find . -type f -exec sha256sum {} + | LC_ALL=C sort)
}

log "init makes config, database, staging and storage"
inst=$(instance_new inst)
for f in lamfs.conf storage/.lamindb/lamin.db storage/.lamindb/storage_uid.txt; do
	[[ -f "$inst/$f" ]] || fail "init made no $inst/$f"
done
assert_eq "the database lamfs.conf names" "$inst/storage/.lamindb/lamin.db" "$(db_of "$inst")"
for d in staging storage; do
	[[ -d "$inst/$d" ]] || fail "init made no folder $inst/$d"
done
sql "$inst" "select count(*) from artifact" >/dev/null ||
	fail "the database has no artifact table"
sql "$inst" "select count(*) from folder" >/dev/null ||
	fail "the database has no folder table"

log "a second init refuses, says why, and changes nothing"
before=$(tree_fingerprint "$inst")
assert_fails "lamfs init on an existing instance" "$LAMFS_BIN" init "$inst"
[[ -n "$E2E_LAST_ERR" ]] || fail "second lamfs init failed without a message"
log "second init said: $E2E_LAST_ERR"
assert_eq "instance after a refused init" "$before" "$(tree_fingerprint "$inst")"

mnt=$WORK/mnt
mount_fs "$inst" "$mnt"
assert_eq "ls -A of a new instance" "" "$(ls -A "$mnt")"

log "mkdir, nested mkdir, rmdir"
mkdir "$mnt/a" "$mnt/a/b" "$mnt/empty"
[[ -d "$mnt/a/b" ]] || fail "mkdir a/b: not a directory"
assert_eq "ls a" "b" "$(ls "$mnt/a")"
assert_eq "ls root" "$(printf 'a\nempty')" "$(ls "$mnt")"
assert_errno ENOTEMPTY rmdir "$mnt/a"
rmdir "$mnt/a/b"
assert_absent "a/b after rmdir" "$mnt/a/b"
assert_eq "ls a after rmdir a/b" "" "$(ls -A "$mnt/a")"
rmdir "$mnt/a"
assert_absent "a after rmdir" "$mnt/a"
assert_errno EEXIST mkdir "$mnt/empty"

log "cp, ls -l"
sample=$WORK/sample.fasta
printf '>seq1\nACGT\n' >"$sample"
chmod 644 "$sample"
mkdir "$mnt/seqs"
cp "$sample" "$mnt/seqs/"
f=$mnt/seqs/sample.fasta
assert_eq "ls seqs" "sample.fasta" "$(ls "$mnt/seqs")"
assert_eq "ls -l mode and size" "-rw-r--r-- 11" \
	"$(ls -l "$mnt/seqs" | awk '$NF == "sample.fasta" { print $1, $5 }')"
assert_eq "stat type and size" "regular file 11" "$(stat -c '%F %s' "$f")"
assert_eq "folder type" "directory" "$(stat -c '%F' "$mnt/seqs")"
assert_same_file "bytes read back" "$sample" "$f"

log "getfattr -d lists the five user.lamfs.* attributes with their values"
dump=$(getfattr -d --absolute-names "$f")
log "getfattr -d: $(tr '\n' ' ' <<<"$dump")"
for a in uid hash hash_type version checksum; do
	grep -q "^user\.lamfs\.$a=" <<<"$dump" || fail "getfattr -d: no user.lamfs.$a in: $dump"
done
uid=$(xattr "$f" user.lamfs.uid)
assert_match "uid" '^[0-9A-Za-z]{16}0000$' "$uid"
assert_eq "hash (DESIGN.md check value)" "83rEPcAoBHmYiIuyBYrFKg" "$(xattr "$f" user.lamfs.hash)"
assert_eq "hash_type" "md5" "$(xattr "$f" user.lamfs.hash_type)"
assert_eq "version" "0000" "$(xattr "$f" user.lamfs.version)"
assert_eq "checksum" "$(sha256_of "$sample")" "$(xattr "$f" user.lamfs.checksum)"
assert_fails "setfattr on a read-only lamfs attribute" setfattr -n user.lamfs.uid -v x "$f"
assert_eq "uid after a refused setfattr" "$uid" "$(xattr "$f" user.lamfs.uid)"

log "chmod, chown, touch -d are stored (no new version) and survive a remount"
chmod 640 "$f"
chown 1234:5678 "$f"
touch -m -d '2001-02-03 04:05:06.123456789 UTC' "$f"
chmod 750 "$mnt/seqs"
touch -m -d '2002-03-04 05:06:07 UTC' "$mnt/empty"
want_attrs="640 1234 5678 981173106.123456789"
assert_eq "mode uid gid mtime" "$want_attrs" "$(stat -c '%a %u %g %.9Y' "$f")"
assert_eq "uid after chmod/chown/touch" "$uid" "$(xattr "$f" user.lamfs.uid)"
assert_eq "record: mode owner mtime" "416|1234|5678|981173106123456789" \
	"$(sql "$inst" "select mode & 4095, owner_uid, owner_gid, mtime_ns from artifact where uid = '$uid'")"
assert_eq "rows at the key" "1" "$(sql "$inst" "select count(*) from artifact where key = 'seqs/sample.fasta'")"
remount "$inst" "$mnt"
assert_eq "mode uid gid mtime after remount" "$want_attrs" "$(stat -c '%a %u %g %.9Y' "$f")"
assert_eq "folder mode after remount" "750" "$(stat -c '%a' "$mnt/seqs")"
assert_eq "folder mtime after remount" "1015218367" "$(stat -c '%Y' "$mnt/empty")"
assert_present "empty folder after remount" "$mnt/empty"
assert_eq "ls root after remount" "$(printf 'empty\nseqs')" "$(ls "$mnt")"
assert_same_file "bytes after remount" "$sample" "$f"

log "statfs: df and stat -f work on the mount"
assert_ok "df on the mount" df -P "$mnt"
assert_ok "stat -f on the mount" stat -f "$mnt"
log "$(df -P "$mnt" | tail -n1)"

log "rm: key gone, record gone, object removed after commit"
obj=$(storage_of "$inst")/.lamindb/$uid.fasta
[[ -f "$obj" ]] || fail "object $obj missing before rm (objects: $(objects "$(storage_of "$inst")"))"
rm "$f"
assert_absent "key after rm" "$f"
assert_eq "ls seqs after rm" "" "$(ls -A "$mnt/seqs")"
assert_eq "live rows at the key after rm" "0" \
	"$(sql "$inst" "select count(*) from artifact where key = 'seqs/sample.fasta' and branch_id = 1")"
[[ ! -e "$obj" ]] || fail "object $obj still stored after rm"
check_store "$inst"
umount_fs "$mnt"

log "init --storage PATH puts objects under PATH/.lamindb"
store2=$WORK/elsewhere
inst2=$(instance_new inst2 --storage "$store2")
mount_fs "$inst2" "$mnt"
cp "$sample" "$mnt/s.fasta"
uid2=$(xattr "$mnt/s.fasta" user.lamfs.uid)
assert_same_file "object under --storage root" "$sample" "$store2/.lamindb/$uid2.fasta"
[[ -z "$(objects "$inst2/storage")" ]] || fail "objects under $inst2/storage although --storage was given"
umount_fs "$mnt"
check_store "$inst2" "$store2"

e2e_pass
