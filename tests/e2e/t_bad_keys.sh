#!/usr/bin/env bash
# t_bad_keys.sh — refused names and operations get their errno and leave
# nothing behind: a name over 255 bytes or a key over 1024 bytes
# (ENAMETOOLONG), a name that is not UTF-8 (EILSEQ), the storage folder
# .lamindb (never visible, EPERM to create), symlinks, hard links and device
# files (EPERM), rmdir of a non-empty folder and rename of a folder onto a
# non-empty one (ENOTEMPTY).  Names at the limits (255, 1024) work.
# timeout: 300
. "$(dirname "$0")/lib.sh"
e2e_begin

inst=$(instance_new inst)
root=$(storage_of "$inst")
mnt=$WORK/mnt
mount_fs "$inst" "$mnt"

mkdir "$mnt/ok" "$mnt/full"
echo "keep" >"$mnt/ok/keep.txt"
echo "inside" >"$mnt/full/inside.txt"

state() {
	sql "$inst" "select 'artifacts', count(*) from artifact; select 'folders', count(*) from folder"
	objects "$root"
	staging_files "$inst"
	(cd "$mnt" && find . | LC_ALL=C sort)
}
before=$(state)
# nothing_left WHAT: rows, folders, objects, staging and the tree as before.
nothing_left() { assert_eq "$1: state of the instance" "$before" "$(state)"; }

long() { head -c "$1" /dev/zero | tr '\0' "${2:-n}"; }
n255=$(long 255)
n256=$(long 256)

log "a name of 256 bytes: ENAMETOOLONG for create, mkdir, rename; 255 works"
assert_errno ENAMETOOLONG create "$mnt/ok/$n256"
assert_errno ENAMETOOLONG mkdir "$mnt/ok/$n256"
assert_errno ENAMETOOLONG rename "$mnt/ok/keep.txt" "$mnt/ok/$n256"
nothing_left "256-byte names"
assert_errno OK write "$mnt/ok/$n255" "at the limit"
assert_eq "255-byte name reads back" "at the limit" "$(cat "$mnt/ok/$n255")"
rm "$mnt/ok/$n255"
nothing_left "255-byte name written and removed"

log "a key of 1025 bytes: ENAMETOOLONG; 1024 works"
# five folders of 200 bytes: "d…/d…/d…/d…/d…" is 1004 bytes
deep=$mnt
for c in a b c d e; do
	deep=$deep/$(long 200 "$c")
	mkdir "$deep"
done
prefix_len=$((${#deep} - ${#mnt} - 1))
assert_eq "folder key length" "1004" "$prefix_len"
before_deep=$(state)
n19=$(long 19 x)
n20=$(long 20 y)
assert_errno ENAMETOOLONG create "$deep/$n20"
assert_errno ENAMETOOLONG mkdir "$deep/$n20"
assert_errno ENAMETOOLONG rename "$mnt/ok/keep.txt" "$deep/$n20"
assert_eq "state after refused 1025-byte keys" "$before_deep" "$(state)"
assert_errno OK write "$deep/$n19" "1024-byte key"
assert_eq "1024-byte key reads back" "1024-byte key" "$(cat "$deep/$n19")"
assert_eq "its record's key length" "1024" \
	"$(sql "$inst" "select length(key) from artifact where key like '%$n19'")"
log "renaming a folder so that a key inside would pass 1024 bytes: ENAMETOOLONG"
assert_errno ENAMETOOLONG rename "$mnt/a$(long 199 a)" "$mnt/a$(long 210 a)"
rm "$deep/$n19"
rm -r "$mnt/$(long 200 a)"
nothing_left "1024-byte key written and removed"

log "names that are not UTF-8: EILSEQ"
bad=$'bad\xff\xfe.txt'
assert_errno EILSEQ create "$mnt/ok/$bad"
assert_errno EILSEQ mkdir "$mnt/ok/$bad"
assert_errno EILSEQ rename "$mnt/ok/keep.txt" "$mnt/ok/$bad"
assert_errno EILSEQ create "$mnt/ok/"$'\xc3\x28'
assert_errno EILSEQ create "$mnt/ok/"$'\xed\xa0\x80'"surrogate"
assert_errno OK write "$mnt/ok/"$'gr\xc3\xbc\xc3\x9fe-\xe6\x97\xa5.txt' "valid UTF-8"
rm "$mnt/ok/"$'gr\xc3\xbc\xc3\x9fe-\xe6\x97\xa5.txt'
nothing_left "non-UTF-8 names"

log ".lamindb is never visible and cannot be made"
assert_eq ".lamindb in ls -a" "" "$(ls -a "$mnt" | grep -x '.lamindb' || true)"
assert_errno ENOENT stat "$mnt/.lamindb"
assert_errno EPERM mkdir "$mnt/.lamindb"
assert_errno EPERM create "$mnt/.lamindb"
assert_errno EPERM rename "$mnt/ok" "$mnt/.lamindb"
assert_errno EPERM rename "$mnt/ok/keep.txt" "$mnt/.lamindb"
nothing_left ".lamindb"

log "symlinks, hard links, device files, fifos: EPERM"
assert_errno EPERM symlink "ok/keep.txt" "$mnt/ok/link"
assert_errno EPERM link "$mnt/ok/keep.txt" "$mnt/ok/hard"
assert_errno EPERM mknod_chr "$mnt/ok/null"
assert_errno EPERM mkfifo "$mnt/ok/fifo"
nothing_left "symlink, link, mknod"

log "rmdir of a non-empty folder, rename of a folder onto a non-empty folder: ENOTEMPTY"
assert_errno ENOTEMPTY rmdir "$mnt/full"
assert_errno ENOTEMPTY rename "$mnt/ok" "$mnt/full"
nothing_left "ENOTEMPTY"
assert_same_file "keep.txt" <(echo keep) "$mnt/ok/keep.txt"

umount_fs "$mnt"
check_store "$inst"

e2e_pass
