#!/usr/bin/env bash
# t_hostile_mountopts.sh — mount option strings that are unknown, duplicated,
# contradictory, oversized or malformed, through `lamfs mount -o` and
# mount.lamfs.  Unknown ones (including libfuse's own, which lamfs does not
# pass through: fsname=, subtype=, max_read=, ...) are refused with
# "unknown mount option 'X'"; lists over 4096 bytes with "mount options too
# long"; allow_other with allow_root as exclusive; nothing is mounted and the
# mount point stays as it was.  Duplicates are folded, the last of ro/rw
# wins, mount(8)/fstab options are dropped, several -o add up; each of those
# mounts with exactly the expected options in /proc/self/mountinfo.
# timeout: 300
. "$(dirname "$0")/lib.sh"
e2e_begin

inst=$(instance_new inst)
mnt=$WORK/mnt
mkdir -p "$mnt"
mount_fs "$inst" "$mnt"
echo "keep" >"$mnt/a.txt"
umount_fs "$mnt"

# refused REGEX -o OPTIONS...: lamfs mount fails with a message matching REGEX.
refused() {
	local re=$1 out rc=0
	shift
	out=$(timeout 60 "$LAMFS_BIN" mount "$inst" "$mnt" "$@" 2>&1 </dev/null) || rc=$?
	if is_mounted "$mnt"; then
		umount_fs "$mnt"
		fail "mount $* : mounted (exit $rc)"
	fi
	[[ $rc -ne 0 ]] || fail "mount $*: exit 0 without a mount: $out"
	assert_match "mount $(printf '%q ' "$@"): message" "$re" "$out"
	assert_eq "mount point untouched" "" "$(ls -A "$mnt")"
}

# mounted_with WANT -o OPTIONS...: mounts; the superblock (VFS) options and the
# FUSE ones together hold every comma-separated word of WANT and nothing
# lamfs was not asked for.
mounted_with() {
	local want=$1 got w
	shift
	mount_fs "$inst" "$mnt" "$@"
	got=$(awk -v t="$mnt" '$5 == t { print $6 "," $NF }' /proc/self/mountinfo)
	for w in ${want//,/ }; do
		[[ ",$got," == *",$w,"* ]] || fail "mount $*: option $w missing in '$got'"
	done
	assert_eq "content" "keep" "$(cat "$mnt/a.txt")"
	umount_fs "$mnt"
}

log "unknown options are refused by name"
for o in bogus 'ro=1' 'fsname=evil' 'subtype=evil' 'max_read=1' 'allow_other=1' \
	'debug' 'auto_unmount' 'kernel_cache' 'uid=0' 'umask=000' 'context=x' \
	'nodev=' '=ro' 'ro rw' $'ro\nrw' $'\x1b[31m'; do
	refused "unknown mount option '$(printf '%s' "$o" | sed 's/[][\.*^$]/\\&/g')'" -o "$o"
done
refused "unknown mount option 'bogus'" -o "ro,nodev,bogus,noexec"

log "contradictions and sizes"
refused "'allow_other' and 'allow_root' exclude each other" -o allow_other,allow_root
refused "mount options too long \(5000 bytes, at most 4096\)" -o "$(head -c 5000 /dev/zero | tr '\0' x)"
refused "mount options too long" -o "$(printf 'nodev,%.0s' $(seq 1 700))"
refused "mount options too long" -o "$(printf 'nodev,%.0s' $(seq 1 400))" \
	-o "$(printf 'nosuid,%.0s' $(seq 1 400))"

log "duplicates fold, the last of ro/rw wins, fstab options are dropped"
mounted_with "ro,nodev,noexec" -o ro,ro,nodev,nodev,noexec,noexec
mounted_with "rw" -o ro,rw
mounted_with "ro" -o rw,ro
mounted_with "ro,nosuid" -o rw -o ro -o nosuid
mounted_with "rw" -o ",,,"
mounted_with "rw" -o "defaults,noauto,user,_netdev,nofail,x-systemd.automount,x-,comment=x,comment="
mounted_with "rw" -o "noatime,relatime,strictatime,lazytime,default_permissions,dev,suid,exec,async"
mounted_with "rw,allow_other" -o allow_other,allow_other
mounted_with "rw" -o "$(printf 'nodev,%.0s' $(seq 1 600))nodev"

log "mount.lamfs (fstab type lamfs) filters the same way"
helper=$(dirname "$LAMFS_BIN")/mount.lamfs
if [[ -x "$helper" ]]; then
	rc=0
	out=$(timeout 60 "$helper" "$inst" "$mnt" -o bogus 2>&1 </dev/null) || rc=$?
	is_mounted "$mnt" && { umount_fs "$mnt"; fail "mount.lamfs -o bogus mounted"; }
	[[ $rc -ne 0 ]] || fail "mount.lamfs -o bogus: exit 0"
	assert_match "mount.lamfs -o bogus" "unknown mount option 'bogus'" "$out"
	rc=0
	out=$(timeout 60 "$helper" -s "$inst" "$mnt" -o bogus,ro 2>&1 </dev/null) || rc=$?
	if [[ $rc -eq 0 ]]; then
		is_mounted "$mnt" || fail "mount.lamfs -s: exit 0 but not mounted: $out"
		assert_match "sloppy mount warns" "ignoring unknown mount option 'bogus'" "$out"
		pid=$(daemon_pid "$mnt")
		mkdir -p "$WORK/.daemons"
		printf '%s\n' "$pid" >"$(_e2e_pidfile "$mnt")"
		umount_fs "$mnt"
	else
		log "mount.lamfs -s: exit $rc ($out)"
	fi
else
	log "no mount.lamfs beside $LAMFS_BIN: skipped"
fi
e2e_pass
