#!/usr/bin/env bash
# t_fstab.sh — mounting from fstab with mount(8), as at boot, for both forms:
#   INSTANCE  MNT  lamfs       _netdev,nofail,allow_other,writeback  0  0
#   INSTANCE  MNT  fuse.lamfs  _netdev,nofail,allow_other,writeback  0  0
# mounted with `mount -T FILE MNT`, used with cp/ls, unmounted with umount
# (after the write-back queue drained), and an unknown option refused by both.
#
# mount(8) finds the helper only in /sbin, and mount.fuse3 runs `lamfs` from
# the default PATH (mount(8) resets PATH), so the test puts symlinks to the
# binaries under test at /sbin/mount.lamfs and /usr/local/bin/lamfs and takes
# them away at the end (a file already there is moved aside and put back).
# Needs root.
# timeout: 300
# shellcheck disable=SC2010,SC2012 # `ls` of the mount is what is tested
. "$(dirname "$0")/lib.sh"
e2e_begin

[[ $(id -u) -eq 0 ]] || skip "needs root (mount(8) with an fstab file, /sbin)"
command -v mount >/dev/null || skip "no mount(8)"
HELPER=$(dirname "$LAMFS_BIN")/mount.lamfs
[[ -x "$HELPER" ]] || fail "no mount.lamfs beside $LAMFS_BIN"

# ------------------------------------------------------------ install, undo
declare -a placed=()
place() { # place LINK TARGET: a symlink LINK -> TARGET, undone on exit
	local link=$1 target=$2
	if [[ -e "$link" || -L "$link" ]]; then
		mv -- "$link" "$link.e2e-saved.$$"
	fi
	ln -s -- "$target" "$link"
	placed+=("$link")
}
unplace() {
	local link
	for link in "${placed[@]}"; do
		rm -f -- "$link"
		[[ -e "$link.e2e-saved.$$" || -L "$link.e2e-saved.$$" ]] && mv -- "$link.e2e-saved.$$" "$link"
	done
	placed=()
}
trap '_rc=$?; set +e; trap - ERR; unplace; (exit $_rc); _e2e_exit' EXIT

place /sbin/mount.lamfs "$HELPER"
mkdir -p /usr/local/bin
place /usr/local/bin/lamfs "$LAMFS_BIN"

# ----------------------------------------------------------------- helpers


# wait_listed DIR NAME: ls DIR shows NAME within 30 s.
wait_listed() {
	local i
	for ((i = 0; i < 300; i++)); do
		ls -- "$1" | grep -qxF -- "$2" && return 0
		sleep 0.1
	done
	fail "ls $1 does not show $2 after 30 s: $(ls -- "$1" | tr '\n' ' ')"
}

# fstab_mount TYPE: mount $inst on $mnt through an fstab line of TYPE, use it, umount.
fstab_mount() {
	local type=$1 tab=$WORK/fstab.$1 mi
	printf '# lamfs e2e\n%s  %s  %s  _netdev,nofail,allow_other,writeback  0  0\n' \
		"$inst" "$mnt" "$type" >"$tab"
	log "$(tail -n1 "$tab")"
	run mount -T "$tab" "$mnt"
	assert_eq "mount -T ($type): exit (stderr: $ERR)" 0 "$RC"
	is_mounted "$mnt" || fail "mount -T ($type) returned 0 but $mnt is not mounted"
	record_daemon "$inst" "$mnt"
	mi=$(awk -v t="$mnt" '$5 == t' /proc/self/mountinfo)
	assert_match "$type: fs type and source (the fstab source)" " - fuse\.lamfs $inst " "$mi"
	assert_match "$type: allow_other reached FUSE" "allow_other" "$mi"
	# mount -a (and systemd) skip what is mounted: fstab's source and the
	# mount's agree, so a second and third run change nothing and exit 0.
	for i in 1 2; do
		run mount -a -T "$tab"
		assert_eq "mount -a #$i over the mounted $type: exit (stderr: $ERR)" 0 "$RC"
	done
	assert_eq "$type: still one mount after mount -a twice" 1 \
		"$(awk -v t="$mnt" '$5 == t' /proc/self/mountinfo | wc -l)"
	run mount -a -v -T "$tab"
	assert_match "$type: mount -a -v says it is mounted" "$mnt *: already mounted" "$OUT$ERR"
	assert_match "$type: status sees the mount" "  on $mnt \(" "$("$LAMFS_BIN" status "$inst")"

	cp "$WORK/sample.fasta" "$mnt/$type.fasta"
	mkdir -p "$mnt/dir.$type"
	cp "$WORK/blob" "$mnt/dir.$type/blob.bin"
	# With writeback a file is listed once its upload is done.
	wait_listed "$mnt" "$type.fasta"
	wait_listed "$mnt/dir.$type" blob.bin
	assert_same_file "$type: read back through the mount" "$WORK/blob" "$mnt/dir.$type/blob.bin"
	run umount "$mnt"
	assert_eq "umount ($type): exit (stderr: $ERR)" 0 "$RC"
	is_mounted "$mnt" && fail "umount ($type): still mounted"
	wait_pid_gone "$DAEMON" 60 || fail "$type: daemon $DAEMON still running after umount"
	rm -f -- "$(_e2e_pidfile "$mnt")"
	# write-back: every upload was done before the daemon exited
	"$LAMFS_BIN" cat "$inst" "$type.fasta" >"$WORK/back"
	assert_same_file "$type: bytes stored" "$WORK/sample.fasta" "$WORK/back"
	"$LAMFS_BIN" cat "$inst" "dir.$type/blob.bin" >"$WORK/back"
	assert_same_file "$type: big file stored" "$WORK/blob" "$WORK/back"
	assert_eq "$type: nothing pending" "0" "$(sql "$inst" "select count(*) from artifact where _aux is not null")"
	check_store "$inst"
}

# fstab_refused TYPE OPTIONS: mount -T must fail and say which option.
fstab_refused() {
	local type=$1 tab=$WORK/fstab.bad.$1
	printf '%s  %s  %s  %s  0  0\n' "$inst" "$mnt" "$type" "$2" >"$tab"
	run mount -T "$tab" "$mnt"
	assert_ne "mount -T with '$2' ($type): exit" 0 "$RC"
	assert_match "mount -T with '$2' ($type): message" "lamfs: unknown mount option 'bogus'" "$ERR"
	is_mounted "$mnt" && fail "mount -T with '$2' ($type) mounted"
	return 0
}

# -------------------------------------------------------------------- test
inst=$(instance_new data)
mnt=$WORK/mnt
mkdir -p "$mnt"
printf '>seq1\nACGT\n' >"$WORK/sample.fasta"
random_file "$WORK/blob" $((5 * MiB + 7))

log "fstab type lamfs (mount(8) -> /sbin/mount.lamfs)"
fstab_mount lamfs
log "fstab type fuse.lamfs (mount(8) -> mount.fuse3 -> lamfs)"
fstab_mount fuse.lamfs

log "umount by fusermount3 -u works as well"
printf '%s  %s  lamfs  defaults  0  0\n' "$inst" "$mnt" >"$WORK/fstab.plain"
run mount -T "$WORK/fstab.plain" "$mnt"
assert_eq "mount -T (defaults): exit (stderr: $ERR)" 0 "$RC"
record_daemon "$inst" "$mnt"
assert_eq "ls after a plain mount" "dir.fuse.lamfs dir.lamfs fuse.lamfs.fasta lamfs.fasta" "$(ls "$mnt" | tr '\n' ' ' | sed 's/ $//')"
umount_fs "$mnt"

log "unknown options are refused by both forms"
fstab_refused lamfs _netdev,nofail,bogus
fstab_refused fuse.lamfs _netdev,nofail,bogus

log "mount -f (fake) mounts nothing"
run mount -f -T "$WORK/fstab.lamfs" "$mnt"
assert_eq "mount -f: exit" 0 "$RC"
is_mounted "$mnt" && fail "mount -f mounted"

unplace
e2e_pass
