#!/usr/bin/env bash
# t_cli_mount.sh — mount errors explained in one line with exit 1 (unknown
# option, too long an option list, allow_other with allow_root, allow_other
# for a user without user_allow_other, not an instance, missing instance,
# missing / not-a-directory / non-empty mountpoint, already a lamfs mount,
# /dev/fuse missing, a database from a newer lamfs), and the options mount(8),
# fstab and mount.fuse3 pass accepted by `lamfs mount -o`, by mount.lamfs and
# by the `lamfs INSTANCE MOUNTPOINT -o ...` form: ignored, honoured (ro,
# noexec) or folded (duplicates); mount.lamfs -f (fake) and -s (sloppy).
# timeout: 300
. "$(dirname "$0")/lib.sh"
e2e_begin

HELPER=$(dirname "$LAMFS_BIN")/mount.lamfs
[[ -x "$HELPER" ]] || fail "no mount.lamfs beside $LAMFS_BIN"

inst=$(instance_new inst)
mnt=$WORK/mnt
mkdir -p "$mnt"

# refused WHAT MESSAGE CMD...: exit 1, exactly one line on stderr equal to
# MESSAGE (an extended regex, anchored), nothing mounted.
refused() {
	local what=$1 re=$2
	shift 2
	run "$@"
	assert_eq "$what: exit" 1 "$RC"
	assert_eq "$what: one line" 1 "$(wc -l <<<"$ERR")"
	assert_match "$what: message" "^$re\$" "$ERR"
	is_mounted "$mnt" && fail "$what: $mnt got mounted"
	return 0
}

log "option errors"
refused "unknown option" "lamfs: unknown mount option 'bogus'" \
	"$LAMFS_BIN" mount "$inst" "$mnt" -o rw,bogus
refused "unknown option (mount.lamfs)" "lamfs: unknown mount option 'max_read=4096'" \
	"$HELPER" "$inst" "$mnt" -o _netdev,max_read=4096
refused "unknown option (mount.fuse3 form)" "lamfs: unknown mount option 'fsname=x'" \
	"$LAMFS_BIN" "$inst" "$mnt" -o fsname=x
refused "too long" "lamfs: mount options too long \(4100 bytes, at most 4096\)" \
	"$LAMFS_BIN" mount "$inst" "$mnt" -o "$(printf 'ro,%.0s' {1..1366})ro"
refused "allow_other with allow_root" \
	"lamfs: mount options 'allow_other' and 'allow_root' exclude each other" \
	"$LAMFS_BIN" mount "$inst" "$mnt" -o allow_other,allow_root
if ! grep -qE '^[[:space:]]*user_allow_other' /etc/fuse.conf 2>/dev/null && command -v setpriv >/dev/null; then
	refused "allow_other for a user without user_allow_other" \
		"lamfs: option 'allow_other' needs 'user_allow_other' in /etc/fuse.conf \(or mount as root\)" \
		setpriv --reuid=65534 --regid=65534 --clear-groups "$LAMFS_BIN" mount "$inst" "$mnt" -o allow_other
fi

log "instance and mountpoint errors"
refused "missing instance" "lamfs: $WORK/nothere: no such directory \(not a lamfs instance\)" \
	"$LAMFS_BIN" mount "$WORK/nothere" "$mnt"
mkdir "$WORK/plain"
refused "not an instance" "lamfs: $WORK/plain is not a lamfs instance \(no lamfs.conf; .*\)" \
	"$LAMFS_BIN" mount "$WORK/plain" "$mnt"
refused "missing mountpoint" "lamfs: mountpoint $WORK/nomnt does not exist \(create it: mkdir -p $WORK/nomnt\)" \
	"$LAMFS_BIN" mount "$inst" "$WORK/nomnt"
touch "$WORK/afile"
refused "mountpoint is a file" "lamfs: mountpoint $WORK/afile is not a directory" \
	"$LAMFS_BIN" mount "$inst" "$WORK/afile"
mkdir "$WORK/full"
touch "$WORK/full/.hidden"
refused "mountpoint not empty" \
	"lamfs: mountpoint $WORK/full is not empty \(lamfs mounts only on an empty directory\)" \
	"$LAMFS_BIN" mount "$inst" "$WORK/full"
refused "mountpoint not empty (mount.lamfs)" \
	"lamfs: mountpoint $WORK/full is not empty \(lamfs mounts only on an empty directory\)" \
	"$HELPER" "$inst" "$WORK/full" -o defaults
refused "mountpoint not empty (nonempty is no escape)" "lamfs: unknown mount option 'nonempty'" \
	"$LAMFS_BIN" mount "$inst" "$WORK/full" -o nonempty
mount_fs "$inst" "$mnt"
run "$LAMFS_BIN" mount "$inst" "$mnt"
assert_eq "already mounted: exit" 1 "$RC"
assert_eq "already mounted: message" "lamfs: $mnt is already a lamfs mount (of $inst)" "$ERR"
umount_fs "$mnt"
if command -v unshare >/dev/null && unshare -m true 2>/dev/null; then
	log "/dev/fuse missing (a private mount namespace with an empty /dev)"
	# shellcheck disable=SC2016 # $0..$2 are the inner shell's
	run unshare -m sh -c 'mount -t tmpfs tmpfs /dev && exec "$0" mount "$1" "$2"' \
		"$LAMFS_BIN" "$inst" "$mnt"
	assert_eq "no /dev/fuse: exit" 1 "$RC"
	assert_eq "no /dev/fuse: message" "lamfs: /dev/fuse is missing (load the fuse module: modprobe fuse)" "$ERR"
fi
log "a database from a newer lamfs"
inst_new=$(instance_new newer)
sql "$inst_new" "update lamfs_schema set version = version + 1"
refused "newer database" "lamfs: $inst_new: metadata store .*: written by a newer lamfs; upgrade lamfs" \
	"$LAMFS_BIN" mount "$inst_new" "$mnt"
refused "newer database (mount.lamfs)" "lamfs: $inst_new: metadata store .*: written by a newer lamfs; upgrade lamfs" \
	"$HELPER" "$inst_new" "$mnt" -o rw

log "the fstab options are accepted; ro and noexec are honoured; duplicates fold"
fstab_opts=rw,defaults,auto,noauto,user,users,nouser,_netdev,nofail,x-systemd.automount,x-systemd.mount-timeout=30,comment=hello,dev,suid,exec,atime,noatime,relatime,nodev,nosuid,noexec,allow_other,allow_other,ro
mount_fs "$inst" "$mnt" -o "$fstab_opts"
opts=$(awk -v t="$mnt" '$5 == t { print $6 }' /proc/self/mountinfo)
super=$(awk -v t="$mnt" '$5 == t { for (i = 7; $i != "-"; i++); print $(i + 3) }' /proc/self/mountinfo)
assert_match "ro honoured" "(^|,)ro(,|$)" "$opts"
assert_match "noexec honoured" "(^|,)noexec(,|$)" "$opts"
assert_match "nosuid and nodev" "nosuid,nodev" "$opts"
assert_match "allow_other passed" "(^|,)allow_other(,|$)" "$super"
assert_errno EROFS@open write "$mnt/x" hello
umount_fs "$mnt"
log "writeback goes to the daemon"
mount_fs "$inst" "$mnt" -o _netdev,nofail,allow_other,writeback
printf 'wb\n' >"$mnt/wb.txt"
umount_fs "$mnt"
assert_eq "written through a writeback mount" "wb" "$("$LAMFS_BIN" cat "$inst" wb.txt)"

log "the form mount.fuse3 runs: lamfs INSTANCE MOUNTPOINT -o OPTS (with its dev,suid)"
run "$LAMFS_BIN" "$inst" "$mnt" -o rw,allow_other,writeback,dev,suid
assert_eq "lamfs INSTANCE MOUNTPOINT: exit" 0 "$RC"
is_mounted "$mnt" || fail "lamfs INSTANCE MOUNTPOINT did not mount"
pid=$("$LAMFS_BIN" status "$inst" --json | python3 -c 'import json,sys; print(" ".join(str(h["pid"]) for h in json.load(sys.stdin)["lock_holders"]))')
mkdir -p "$WORK/.daemons"
echo "$pid" >"$(_e2e_pidfile "$mnt")"
assert_eq "ls through it" "wb.txt" "$(ls "$mnt")"
assert_eq "dev and suid from mount.fuse3 are dropped" "nosuid,nodev" \
	"$(awk -v t="$mnt" '$5 == t { print $6 }' /proc/self/mountinfo | grep -o 'nosuid,nodev')"
umount_fs "$mnt"

log "mount.lamfs: -f (fake) mounts nothing, -s (sloppy) ignores unknown options, -v says what it does"
run "$HELPER" "$inst" "$mnt" -f -v -o allow_other
assert_eq "fake: exit" 0 "$RC"
assert_eq "fake -v: says what it would do" "lamfs: mounting $inst on $mnt with options allow_other" "$ERR"
is_mounted "$mnt" && fail "mount.lamfs -f mounted"
run "$HELPER" -s "$inst" "$mnt" -o bogus,_netdev
assert_eq "sloppy: exit" 0 "$RC"
assert_eq "sloppy: warns" "lamfs: ignoring unknown mount option 'bogus' (sloppy mount)" "$ERR"
is_mounted "$mnt" || fail "mount.lamfs -s did not mount"
pid=$("$LAMFS_BIN" status "$inst" --json | python3 -c 'import json,sys; print(" ".join(str(h["pid"]) for h in json.load(sys.stdin)["lock_holders"]))')
echo "$pid" >"$(_e2e_pidfile "$mnt")"
umount_fs "$mnt"
run "$HELPER" "$inst"
assert_eq "mount.lamfs usage error" 2 "$RC"
run "$HELPER" --help
assert_eq "mount.lamfs --help" 0 "$RC"
assert_match "mount.lamfs --help text" "^usage: mount.lamfs" "$OUT"

e2e_pass
