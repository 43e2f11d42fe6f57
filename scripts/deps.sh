#!/usr/bin/env bash
# deps.sh — install the Debian packages lamfs needs; safe to run again.
#
#   bash scripts/deps.sh           build and run lamfs
#   bash scripts/deps.sh --test    also what the test suite drives
#
# Installs only what is missing, runs `apt-get update` only when an install
# needs it, and prints nothing unless something had to be installed or failed.
set -euo pipefail

build_pkgs=(
	build-essential cmake pkg-config
	libfuse3-dev fuse3
	libsqlite3-dev sqlite3
	libssl-dev libcurl4-openssl-dev libexpat1-dev libinih-dev libjson-c-dev zlib1g-dev
	libpq-dev libcmocka-dev
	attr
)
# What tests/e2e/*.sh and scripts/test.sh call besides the build tools.
test_pkgs=(
	rsync tar attr sqlite3 openssl python3 util-linux coreutils diffutils
	findutils procps fuse3 gzip bsdutils curl jq
	postgresql-15 clang valgrind strace
)

want=("${build_pkgs[@]}")
for arg in "$@"; do
	case "$arg" in
	--test) want+=("${test_pkgs[@]}") ;;
	-h | --help)
		sed -n '2,9p' "$0"
		exit 0
		;;
	*)
		echo "deps.sh: unknown argument '$arg' (try --help)" >&2
		exit 2
		;;
	esac
done

missing=()
for pkg in "${want[@]}"; do
	status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
	if [[ "$status" != *" ok installed" ]]; then
		# de-duplicate (attr, sqlite3 and fuse3 are in both lists)
		[[ " ${missing[*]-} " == *" $pkg "* ]] || missing+=("$pkg")
	fi
done
[[ ${#missing[@]} -eq 0 ]] && exit 0

if [[ $(id -u) -ne 0 ]]; then
	echo "deps.sh: missing packages: ${missing[*]}; run as root (or: sudo apt-get install ${missing[*]})" >&2
	exit 1
fi

echo "deps.sh: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
log=$(mktemp)
trap 'rm -f "$log"' EXIT
install() {
	apt-get install -y -q --no-install-recommends "${missing[@]}" >>"$log" 2>&1
}
# Stale or absent package lists make the first try fail: refresh once and retry.
if ! install; then
	if ! { apt-get update -q >>"$log" 2>&1 && install; }; then
		cat "$log" >&2
		echo "deps.sh: apt-get failed installing: ${missing[*]}" >&2
		exit 1
	fi
fi
