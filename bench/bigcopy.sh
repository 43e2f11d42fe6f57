#!/usr/bin/env bash
# bench/bigcopy.sh — the daemon's peak memory while `cp` copies one big file in.
#
#   bash bench/bigcopy.sh [GIB]        (default 10: the issue's "10 GiB copy")
#
# Makes a GIB GiB file of random bytes, a fresh lamfs instance with local
# storage on the same disk, mounts it (sync mode), times `cp` into it (durable
# when cp returns), reads the daemon's VmHWM, checks the copy with `cmp`, and
# removes everything, also on failure.  LAMFS_BIN: the binary (default
# build-bench/tools/lamfs, which bench/run.sh builds); BENCH_WORK: where
# (default /var/tmp/lamfs-bigcopy.PID; needs 2 x GIB free).
set -euo pipefail
gib=${1:-10}
[[ $gib =~ ^[1-9][0-9]*$ ]] || { echo "bigcopy.sh: size must be a whole number of GiB" >&2; exit 2; }
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bin=${LAMFS_BIN:-$repo/build-bench/tools/lamfs}
[[ -x $bin ]] || { echo "bigcopy.sh: no lamfs binary at $bin (run bench/run.sh once, or set LAMFS_BIN)" >&2; exit 1; }
d=${BENCH_WORK:-/var/tmp/lamfs-bigcopy.$$}
cleanup() {
	mountpoint -q "$d/mnt" 2>/dev/null && umount "$d/mnt"
	rm -rf "$d"
}
trap cleanup EXIT
mkdir -p "$d/mnt"
head -c $((gib << 30)) /dev/urandom >"$d/src"
"$bin" init "$d/inst" >/dev/null
"$bin" mount "$d/inst" "$d/mnt" >/dev/null
pid=$(pgrep -f "lamfs mount $d/inst" | head -n 1)
t0=$(date +%s.%N)
cp "$d/src" "$d/mnt/big"
t1=$(date +%s.%N)
peak=$(awk '/^VmHWM/ { print $2 }' "/proc/$pid/status")
cmp "$d/src" "$d/mnt/big"
echo "cp of $gib GiB: $(python3 -c "print(round($gib * 1024 / ($t1 - $t0)))") MB/s, durable when cp returned; bytes read back identical"
echo "daemon peak RSS (VmHWM): $((peak / 1024)) MiB"
