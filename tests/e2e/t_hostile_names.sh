#!/usr/bin/env bash
# t_hostile_names.sh — hostile names on a mount, each with its precise errno
# and proof that nothing was lost or left behind:
#   refused: the empty name (ENOENT), "." and ".." (EEXIST/EISDIR/EBUSY from
#   the kernel), 256-byte names also in multi-byte UTF-8 (ENAMETOOLONG; 255
#   works), keys of 1025 bytes (ENAMETOOLONG; 1024 works), invalid UTF-8 of
#   every kind — overlong, surrogate, above U+10FFFF, truncated, lone
#   continuation byte (EILSEQ), ".lamindb" at any depth (EPERM to create,
#   mkdir or rename to; never listed; lookups ENOENT), ".lamfs" at the root
#   (the read-only version folder: EEXIST/EROFS);
#   allowed, as by every POSIX filesystem and S3 (key.c checks UTF-8, length
#   and the reserved names only): control characters, newline, tab,
#   backslash, leading and trailing spaces, ".lamfs" below the root — they
#   are stored byte for byte (the record's key is exactly the name), listed,
#   read back, renamed, and survive a remount.
# timeout: 300
. "$(dirname "$0")/lib.sh"
e2e_begin

inst=$(instance_new inst)
root=$(storage_of "$inst")
mnt=$WORK/mnt
mount_fs "$inst" "$mnt"

mkdir "$mnt/ok"
echo "keep" >"$mnt/ok/keep.txt"

state() {
	sql "$inst" "select 'artifacts', count(*) from artifact; select 'folders', count(*) from folder"
	objects_snapshot "$root"
	staging_files "$inst"
	(cd "$mnt" && find . | LC_ALL=C sort)
}
before=$(state)
nothing_changed() { assert_eq "$1: state of the instance" "$before" "$(state)"; }
rep() { head -c "$1" /dev/zero | tr '\0' "${2:-n}"; }
# rep_str N STR: STR repeated N times (multi-byte safe).
rep_str() { local i s=; for ((i = 0; i < $1; i++)); do s+=$2; done; printf '%s' "$s"; }

log "the empty name, . and .."
assert_errno ENOENT create ""
assert_errno ENOENT mkdir ""
assert_errno EEXIST mkdir "$mnt/ok/."
assert_errno EEXIST mkdir "$mnt/ok/.."
assert_errno EEXIST create "$mnt/ok/."
assert_errno EISDIR@open write "$mnt/ok/." x
assert_errno EBUSY rename "$mnt/ok/." "$mnt/x"
assert_errno EBUSY rename "$mnt/ok/keep.txt" "$mnt/ok/.."
nothing_changed "empty, . and .."

log "name length in multi-byte UTF-8: 255 bytes work, 256 do not"
n255=$(rep_str 85 $'\xe6\x97\xa5')   # 85 x U+65E5 = 255 bytes
n256=$(rep_str 64 $'\xf0\x9f\x98\x80') # 64 x U+1F600 = 256 bytes
assert_eq "byte length" 255 "$(printf '%s' "$n255" | wc -c)"
assert_eq "byte length" 256 "$(printf '%s' "$n256" | wc -c)"
assert_errno ENAMETOOLONG create "$mnt/ok/$n256"
assert_errno ENAMETOOLONG mkdir "$mnt/ok/$n256"
assert_errno ENAMETOOLONG rename "$mnt/ok/keep.txt" "$mnt/ok/$n256"
nothing_changed "256-byte UTF-8 names"
assert_errno OK write "$mnt/ok/$n255" "utf-8 at the limit"
assert_eq "255-byte UTF-8 name reads back" "utf-8 at the limit" "$(cat "$mnt/ok/$n255")"
rm "$mnt/ok/$n255"
nothing_changed "255-byte UTF-8 name written and removed"

log "key length: 1024 bytes work, 1025 do not (4-byte characters in the folders)"
deep=$mnt
for i in 1 2 3 4; do
	deep=$deep/$(rep_str 63 $'\xf0\x9f\x98\x80') # 252 bytes each
	mkdir "$deep"
done
klen=$((4 * 252 + 3))                         # 1011 bytes of folder key
tail12=$(rep 12 t)
assert_errno ENAMETOOLONG create "$deep/$(rep 13 t)x" # 1011 + 1 + 14 = 1026
assert_errno ENAMETOOLONG create "$deep/$(rep 13 t)"  # 1025
assert_errno OK write "$deep/$tail12" "1024"             # 1024
assert_eq "record key length in bytes" "$((klen + 1 + 12))" \
	"$(sql "$inst" "select length(cast(key as blob)) from artifact where key like '%$tail12'")"
rm -r "$mnt/$(rep_str 63 $'\xf0\x9f\x98\x80')"
nothing_changed "1024/1025-byte keys"

log "invalid UTF-8 of every kind: EILSEQ, for create, mkdir and rename"
for bad in $'over\xc0\xaflong' $'sur\xed\xa0\x80rogate' $'big\xf4\x90\x80\x80' \
	$'cut\xe6\x97' $'lone\x80byte' $'\xff\xfe' $'five\xf8\x88\x80\x80\x80'; do
	assert_errno EILSEQ create "$mnt/ok/$bad"
	assert_errno EILSEQ mkdir "$mnt/ok/$bad"
	assert_errno EILSEQ rename "$mnt/ok/keep.txt" "$mnt/ok/$bad"
	assert_errno EILSEQ mkdir "$mnt/$bad"
done
nothing_changed "invalid UTF-8"

log ".lamindb anywhere: EPERM to make, never listed, lookups ENOENT"
mkdir -p "$mnt/a/b"
before=$(state)
for dir in "$mnt" "$mnt/a" "$mnt/a/b"; do
	assert_errno EPERM create "$dir/.lamindb"
	assert_errno EPERM mkdir "$dir/.lamindb"
	assert_errno EPERM rename "$mnt/ok/keep.txt" "$dir/.lamindb"
	assert_errno ENOENT stat "$dir/.lamindb"
	assert_errno ENOENT stat "$dir/.lamindb/anything"
	assert_eq ".lamindb listed in $dir" "" "$(ls -a "$dir" | grep -x '.lamindb' || true)"
done
assert_errno EPERM rename "$mnt/a/b" "$mnt/a/.lamindb"
assert_errno ENOENT open "$mnt/.lamindb/$(ls "$root/.lamindb" | head -n1)"
nothing_changed ".lamindb"

log ".lamfs at the root is the read-only version folder; below the root it is a name"
assert_errno EEXIST mkdir "$mnt/.lamfs"
assert_errno EEXIST create "$mnt/.lamfs"
assert_errno EISDIR@open write "$mnt/.lamfs" x
assert_errno EROFS create "$mnt/.lamfs/x"
assert_errno EROFS mkdir "$mnt/.lamfs/uid/x"
assert_errno EISDIR rename "$mnt/ok/keep.txt" "$mnt/.lamfs"
assert_errno EROFS rename "$mnt/a/b" "$mnt/.lamfs"
assert_errno EROFS rename "$mnt/ok/keep.txt" "$mnt/.lamfs/uid/x"
assert_errno ENOENT open "$mnt/.lamfs/uid/notauid"
assert_errno ENOENT open "$mnt/.lamfs/uid/$(rep 20 0)"
assert_eq ".lamfs listed at the root" "" "$(ls -a "$mnt" | grep -x '.lamfs' || true)"
nothing_changed ".lamfs at the root"
assert_errno OK mkdir "$mnt/a/.lamfs"
assert_errno OK write "$mnt/a/.lamfs/f" "below the root"
assert_eq "a/.lamfs/f" "below the root" "$(cat "$mnt/a/.lamfs/f")"
rm -r "$mnt/a/.lamfs"

log "control characters, newline, tab, backslash, spaces: allowed and stored byte for byte"
names=($'ctl\x01\x02\x1b[31mred' $'new\nline' $'\ttab' 'back\slash' ' lead' 'trail ' ' ' \
	$'\x7fdel' $'cr\r' 'a\\b\\c' $'quote"\'' '*?[glob]')
for n in "${names[@]}"; do
	assert_errno OK write "$mnt/ok/$n" "content of $n"
	assert_eq "read back $(printf %q "$n")" "content of $n" "$(cat -- "$mnt/ok/$n")"
	hex=$(printf '%s' "ok/$n" | od -An -tx1 | tr -d ' \n' | tr a-f A-F)
	assert_eq "record key of $(printf %q "$n")" "1" \
		"$(sql "$inst" "select count(*) from artifact where hex(key) = '$hex'")"
done
listed=$(python3 -c 'import os, sys; print(sorted(os.listdir(sys.argv[1].encode())) == sorted(
	[n.encode("utf-8", "surrogateescape") for n in sys.argv[2:]] + [b"keep.txt"]))' \
	"$mnt/ok" "${names[@]}")
assert_eq "listing holds exactly these names" "True" "$listed"
mkdir "$mnt/moved"
for n in "${names[@]}"; do
	assert_errno OK rename "$mnt/ok/$n" "$mnt/moved/$n"
done
remount "$inst" "$mnt"
for n in "${names[@]}"; do
	assert_eq "after rename and remount: $(printf %q "$n")" "content of $n" \
		"$(cat -- "$mnt/moved/$n")"
	rm -- "$mnt/moved/$n"
done
rmdir "$mnt/moved"

umount_fs "$mnt"
check_store "$inst"
e2e_pass
