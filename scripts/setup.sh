#!/usr/bin/env bash
# setup.sh — from a fresh Debian 12 machine (as root) to a mounted lamfs.
#
#   bash scripts/setup.sh
#
# 1. installs the build dependencies (scripts/deps.sh)
# 2. builds into build/ and installs lamfs to /usr/local/bin
# 3. creates the default instance unless it exists
#      LAMFS_INSTANCE   (default /var/lib/lamfs/default)
# 4. mounts it unless it is mounted already
#      LAMFS_MOUNT      (default /mnt/lamfs)
#
# Safe to run again: an existing instance is kept (one made by an older lamfs
# is upgraded in place first, see lamfs upgrade), a live mount is left alone,
# a dead one (daemon gone: "Transport endpoint is not connected") is cleared
# and mounted anew.
set -euo pipefail
cd "$(dirname "$0")/.."

instance=${LAMFS_INSTANCE:-/var/lib/lamfs/default}
mnt=${LAMFS_MOUNT:-/mnt/lamfs}
jobs=${JOBS:-$(nproc)}

say() { printf 'setup: %s\n' "$*"; }
die() {
	printf 'setup: error: %s\n' "$*" >&2
	exit 1
}

# Is $1 a mount point right now (per the kernel's table, without touching it)?
is_mounted() {
	local target
	target=$(readlink -m -- "$1")
	awk -v t="$target" '$5 == t { found = 1 } END { exit !found }' /proc/self/mountinfo
}

[[ $(id -u) -eq 0 ]] || die "run as root (it installs packages and mounts)"

say "dependencies"
bash scripts/deps.sh

say "build (build/)"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
if ! { cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo &&
	cmake --build build -j"$jobs" &&
	cmake --install build; } >"$log" 2>&1; then
	cat "$log" >&2
	die "build failed (output above)"
fi
lamfs=$(command -v lamfs || true)
[[ -n "$lamfs" ]] || lamfs=/usr/local/bin/lamfs
[[ -x "$lamfs" ]] || die "lamfs was not installed to /usr/local/bin"
say "installed $lamfs"

[[ -e /dev/fuse ]] || die "/dev/fuse is missing: load the fuse module (modprobe fuse)"

if [[ -e "$instance/lamfs.conf" ]]; then
	say "instance $instance exists, kept"
else
	mkdir -p -- "$(dirname -- "$instance")"
	"$lamfs" init "$instance"
	say "instance $instance created"
fi

if is_mounted "$mnt"; then
	if stat -- "$mnt" >/dev/null 2>&1; then
		say "$mnt is mounted already, left alone"
		exit 0
	fi
	say "$mnt is a dead mount (its daemon is gone): clearing it"
	fusermount3 -u -z -- "$mnt" 2>/dev/null || umount -l -- "$mnt"
fi
# An instance made by an older lamfs is brought to this one's schema (LaminDB's;
# the SQLite store is backed up first); a current one is left as it is.
"$lamfs" upgrade "$instance" || die "lamfs upgrade $instance failed"
mkdir -p -- "$mnt"
timeout 120 "$lamfs" mount "$instance" "$mnt" ||
	die "mount failed; see $instance/lamfs.log"
is_mounted "$mnt" || die "lamfs mount returned but $mnt is not mounted; see $instance/lamfs.log"
say "mounted $instance at $mnt (unmount: umount $mnt)"
