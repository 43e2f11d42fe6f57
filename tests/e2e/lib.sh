# lib.sh — helpers for lamfs's end-to-end tests; sourced by every t_*.sh.
#
# A test mounts real instances with the binary under test and drives them
# with ordinary programs (cp, ls, mv, rsync, tar, getfattr, python3 for
# precise errnos).  Everything it makes lives under $WORK; an EXIT trap
# unmounts whatever is still mounted there (lazily, aborting a hung
# connection if need be), so a failing or killed test leaves no mount behind.
#
# Environment:
#   LAMFS_BIN        the lamfs binary under test (default build-test/tools/lamfs)
#   E2E_TEST_WORK    work directory for this test (run.sh sets it; default: a
#                    fresh mktemp directory, removed when the test passes)
#   E2E_FAULTS       1 if LAMFS_BIN has fault injection, 0 if not (run.sh
#                    reads it from CMakeCache.txt); fault tests skip on 0
#   E2E_MOUNT_TIMEOUT  seconds `lamfs mount` may take (default 60)
#
# Conventions: a test calls e2e_begin first, then uses instance_new,
# mount_fs, umount_fs and the assert_* helpers; it ends with e2e_pass.  An
# assertion failure prints "FAIL: test:line: what: expected ..., got ..." and
# exits 1; exit 77 means skipped.

set -eEuo pipefail
shopt -s inherit_errexit

E2E_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$E2E_DIR/../.." && pwd)
LAMFS_BIN=${LAMFS_BIN:-$REPO/build-test/tools/lamfs}
E2E_MOUNT_TIMEOUT=${E2E_MOUNT_TIMEOUT:-60}
OP=("python3" "$E2E_DIR/op.py")
MiB=$((1024 * 1024))
_E2E_NDAEMON=0

# ---------------------------------------------------------------- reporting

log() { printf '# %s\n' "$*"; }

# Where the failing assertion sits in the test file.
_e2e_where() {
	local i
	for ((i = 1; i < ${#BASH_SOURCE[@]}; i++)); do
		if [[ "${BASH_SOURCE[$i]}" != "${BASH_SOURCE[0]}" ]]; then
			printf '%s:%s' "$(basename "${BASH_SOURCE[$i]}")" "${BASH_LINENO[$((i - 1))]}"
			return
		fi
	done
	printf '?'
}

fail() {
	printf 'FAIL: %s: %s\n' "$(_e2e_where)" "$*" >&2
	exit 1
}

skip() {
	printf 'SKIP: %s\n' "$*"
	exit 77
}

_e2e_on_err() {
	local rc=$1 line=$2 cmd=$3
	printf 'FAIL: %s: line %s: command failed (exit %s): %s\n' \
		"$(basename "${BASH_SOURCE[1]:-?}")" "$line" "$rc" "$cmd" >&2
}

# assert_eq WHAT EXPECTED GOT
assert_eq() {
	[[ "$2" == "$3" ]] ||
		fail "$1: expected '$2', got '$3'"
}

assert_ne() {
	[[ "$2" != "$3" ]] ||
		fail "$1: expected anything but '$2', got it"
}

# assert_match WHAT EXTENDED-REGEX GOT
assert_match() {
	[[ "$3" =~ $2 ]] ||
		fail "$1: expected to match /$2/, got '$3'"
}

# assert_ok WHAT CMD...: CMD must succeed; its output is shown if it does not.
assert_ok() {
	local what=$1 out rc=0
	shift
	out=$("$@" 2>&1) || rc=$?
	[[ $rc -eq 0 ]] ||
		fail "$what: expected success of '$*', got exit $rc: $out"
}

# assert_fails WHAT CMD...: CMD must exit non-zero; its stderr goes to $E2E_LAST_ERR.
assert_fails() {
	local what=$1 rc=0
	shift
	E2E_LAST_ERR=$("$@" 2>&1 >/dev/null) || rc=$?
	[[ $rc -ne 0 ]] ||
		fail "$what: expected '$*' to fail, it succeeded"
}

# errno_of OP ARGS...: "OK" or the errno name (see op.py).
errno_of() {
	"${OP[@]}" "$@"
}

# assert_errno EXPECTED OP ARGS...   e.g. assert_errno ENOTEMPTY rmdir "$mnt/d"
assert_errno() {
	local want=$1 got
	shift
	got=$(errno_of "$@")
	[[ "$got" == "$want" ]] ||
		fail "$* : expected $want, got $got"
}

# assert_same_file WHAT EXPECTED-FILE GOT-FILE: byte-identical.
assert_same_file() {
	local out
	out=$(cmp -- "$2" "$3" 2>&1) ||
		fail "$1: bytes differ: $out"
}

# assert_absent WHAT PATH: stat says ENOENT (works on the mount and off it).
assert_absent() {
	local got
	got=$(errno_of lstat "$2")
	[[ "$got" == ENOENT ]] || fail "$1: expected $2 to be absent (ENOENT), got $got"
}

assert_present() {
	local got
	got=$(errno_of stat "$2")
	[[ "$got" == OK ]] || fail "$1: expected $2 to exist, stat gave $got"
}

# --------------------------------------------------------------- instances

# instance_new NAME [init args...]: make $WORK/NAME with `lamfs init`; prints its path.
instance_new() {
	local inst=$WORK/$1 out rc=0
	shift
	out=$("$LAMFS_BIN" init "$inst" "$@" 2>&1 </dev/null) || rc=$?
	[[ $rc -eq 0 ]] || fail "lamfs init $inst $*: exit $rc: $out"
	printf '%s\n' "$inst"
}

# Storage root of an instance made without --storage.
storage_of() { printf '%s/storage\n' "$1"; }

# ------------------------------------------------------------------ mounts

# Is $1 a mount point (from the kernel's table; never touches the path)?
is_mounted() {
	local t
	t=$(readlink -m -- "$1")
	awk -v t="$t" '$5 == t { f = 1 } END { exit !f }' /proc/self/mountinfo
}

# Mount points at or below $1, deepest first.
mounts_under() {
	local base
	base=$(readlink -m -- "$1")
	awk -v b="$base" 'index($5, b "/") == 1 || $5 == b { print $5 }' /proc/self/mountinfo |
		sort -r
}

# pid of the lamfs daemon serving MNT (argv "... mount INST MNT ..."), or nothing.
daemon_pid() {
	local mnt=$1 p args
	for p in /proc/[0-9]*; do
		[[ -r $p/cmdline ]] || continue
		args=$(tr '\0' '\n' <"$p/cmdline" 2>/dev/null) || continue
		[[ "$(head -n1 <<<"$args")" == "$LAMFS_BIN" || "$(head -n1 <<<"$args")" == */lamfs ]] || continue
		grep -qxF -- mount <<<"$args" || continue
		grep -qxF -- "$mnt" <<<"$args" || continue
		printf '%s\n' "${p#/proc/}"
		return 0
	done
}

_e2e_pidfile() { printf '%s/.daemons/%s\n' "$WORK" "$(tr '/' '_' <<<"$1")"; }

# mount_fs INST MNT [lamfs mount options...]: mount and wait until it serves.
# Mounts always run with LAMFS_FAULT_FILE=$FAULT_FILE (see fault_set).
#
# With E2E_SANITIZE=1 the daemon runs in the foreground (-f, in its own
# session, in the background of this test) with its stderr in
# $WORK/daemon-stderr.*: the daemonised lamfs points stderr at /dev/null, and
# UBSan (combined with ASan) ignores log_path, so this is the only way to keep
# its reports.  run.sh scans those files.
mount_fs() {
	local inst=$1 mnt=$2 out rc=0 i pid=
	shift 2
	mkdir -p -- "$mnt"
	is_mounted "$mnt" && fail "mount_fs: $mnt is mounted already"
	if [[ "${E2E_SANITIZE:-0}" == 1 && "${E2E_SAN_FOREGROUND:-1}" == 1 ]]; then
		local errf
		errf=$WORK/daemon-stderr.$(basename "$mnt").$((++_E2E_NDAEMON))
		LAMFS_FAULT_FILE=$FAULT_FILE setsid "$LAMFS_BIN" mount "$inst" "$mnt" -f "$@" \
			>"$errf" 2>&1 </dev/null &
		pid=$!
		for ((i = 0; i < E2E_MOUNT_TIMEOUT * 10; i++)); do
			is_mounted "$mnt" && break
			kill -0 "$pid" 2>/dev/null ||
				fail "lamfs mount -f $inst $mnt $* exited before mounting: $(tail -n 20 "$errf")"
			sleep 0.1
		done
		is_mounted "$mnt" || {
			kill -TERM "$pid" 2>/dev/null
			fail "lamfs mount -f $inst $mnt: not mounted after ${E2E_MOUNT_TIMEOUT}s: $(tail -n 20 "$errf")"
		}
	else
		# Output to a file, not a pipe: a daemon that kept the pipe open would
		# otherwise block $(...) until it exits.
		LAMFS_FAULT_FILE=$FAULT_FILE timeout -k 5 "$E2E_MOUNT_TIMEOUT" \
			"$LAMFS_BIN" mount "$inst" "$mnt" "$@" >"$WORK/mount.out" 2>&1 </dev/null || rc=$?
		out=$(cat "$WORK/mount.out")
		if [[ $rc -ne 0 ]]; then
			[[ $rc -eq 124 ]] && out="timed out after ${E2E_MOUNT_TIMEOUT}s; $out"
			fail "lamfs mount $inst $mnt $*: exit $rc: $out$(log_tail "$inst")"
		fi
		# `lamfs mount` returns once the mount is ready; allow a moment anyway.
		for ((i = 0; i < 100; i++)); do
			is_mounted "$mnt" && break
			sleep 0.1
		done
		is_mounted "$mnt" || fail "lamfs mount returned 0 but $mnt is not mounted$(log_tail "$inst")"
		pid=$(daemon_pid "$mnt")
	fi
	errno_of stat "$mnt" | grep -qx OK || fail "$mnt mounted but stat fails: $(errno_of stat "$mnt")"
	mkdir -p "$WORK/.daemons"
	printf '%s\n' "$pid" >"$(_e2e_pidfile "$mnt")"
}

# wait_pid_gone PID SECONDS: 0 once PID has exited.
wait_pid_gone() {
	local pid=$1 i
	[[ -n "$pid" ]] || return 0
	for ((i = 0; i < $2 * 10; i++)); do
		kill -0 "$pid" 2>/dev/null || return 0
		sleep 0.1
	done
	return 1
}

_e2e_recorded_pid() {
	local f
	f=$(_e2e_pidfile "$1")
	[[ -f "$f" ]] && cat "$f"
	return 0
}

# umount_fs MNT: unmount cleanly and wait for the daemon to exit.
umount_fs() {
	local mnt=$1 pid i out=
	pid=$(_e2e_recorded_pid "$mnt")
	for ((i = 0; i < 50; i++)); do
		out=$(fusermount3 -u -- "$mnt" 2>&1) && break
		sleep 0.2
	done
	is_mounted "$mnt" && fail "umount $mnt: still mounted: $out"
	wait_pid_gone "$pid" 60 || fail "daemon $pid of $mnt still running 60s after unmount"
	rm -f -- "$(_e2e_pidfile "$mnt")"
}

# remount INST MNT [options]: umount_fs then mount_fs.
remount() {
	umount_fs "$2"
	mount_fs "$@"
}

# dead_umount MNT: clear a mount whose daemon died (ENOTCONN), wait for the daemon.
dead_umount() {
	local mnt=$1 pid
	pid=$(_e2e_recorded_pid "$mnt")
	fusermount3 -u -z -- "$mnt" 2>/dev/null || umount -l -- "$mnt" 2>/dev/null || true
	is_mounted "$mnt" && fail "dead_umount: $mnt still mounted"
	wait_pid_gone "$pid" 30 || fail "daemon $pid of $mnt still alive after it should have died"
	rm -f -- "$(_e2e_pidfile "$mnt")"
}

# Abort the FUSE connection of a hung mount (needs fusectl).
_e2e_abort_conn() {
	local mnt=$1 dev minor
	dev=$(awk -v t="$mnt" '$5 == t { print $3 }' /proc/self/mountinfo | head -n1)
	minor=${dev#*:}
	[[ -n "$minor" ]] || return 0
	if [[ ! -e /sys/fs/fuse/connections/$minor ]]; then
		mountpoint -q /sys/fs/fuse/connections 2>/dev/null ||
			mount -t fusectl fusectl /sys/fs/fuse/connections 2>/dev/null || true
	fi
	[[ -w /sys/fs/fuse/connections/$minor/abort ]] &&
		echo 1 >"/sys/fs/fuse/connections/$minor/abort" 2>/dev/null
	return 0
}

# force_umount_all DIR: unmount everything at or below DIR, whatever its state;
# then end the daemons this test started that are still alive.
force_umount_all() {
	local base=$1 m f pid
	while read -r m; do
		[[ -n "$m" ]] || continue
		timeout 20 fusermount3 -u -- "$m" 2>/dev/null && continue
		_e2e_abort_conn "$m"
		fusermount3 -u -z -- "$m" 2>/dev/null || umount -l -- "$m" 2>/dev/null || true
	done < <(mounts_under "$base")
	for f in "$base"/.daemons/*; do
		[[ -f "$f" ]] || continue
		pid=$(cat "$f")
		if [[ -n "$pid" ]] && ! wait_pid_gone "$pid" 10; then
			kill -TERM "$pid" 2>/dev/null || true
			wait_pid_gone "$pid" 5 || kill -KILL "$pid" 2>/dev/null || true
		fi
		rm -f -- "$f"
	done
}

# ------------------------------------------------------------------ faults

# fault_set "point=ACTION[,point=ACTION]": armed on every live mount of this test.
fault_set() { printf '%s\n' "$1" >"$FAULT_FILE"; }
fault_clear() { : >"$FAULT_FILE"; }

require_faults() {
	[[ "${E2E_FAULTS:-1}" == 1 ]] ||
		skip "needs a build with -DLAMFS_FAULT_INJECTION=ON ($LAMFS_BIN has none)"
}

# ---------------------------------------------------------------- metadata

# sql INST QUERY: run QUERY on the instance's SQLite database; rows on stdout.
sql() {
	sqlite3 -batch -noheader -bail -cmd '.timeout 10000' "$1/lamfs.db" "$2" </dev/null
}

# sqlstr TEXT: TEXT as an SQL string literal.
sqlstr() { printf "'%s'" "${1//\'/\'\'}"; }

# row INST KEY COLUMNS: COLUMNS (comma list) of every row at KEY, oldest first, '|' separated.
rows_at() {
	sql "$1" "select $3 from artifact where key = $(sqlstr "$2") order by uid"
}

# --------------------------------------------------------------- storage

# Objects in a storage root: names below .lamindb, sorted.
objects() {
	local d=$1/.lamindb
	[[ -d "$d" ]] || return 0
	(cd "$d" && find . -type f -printf '%P\n' | LC_ALL=C sort)
}

# A fingerprint of every object: name inode size mtime (changes if any is rewritten).
objects_snapshot() {
	local d=$1/.lamindb
	[[ -d "$d" ]] || return 0
	(cd "$d" && find . -type f -printf '%P %i %s %T@\n' | LC_ALL=C sort)
}

# Regular files in the instance's staging folder.
staging_files() {
	find "$1/staging" -type f -printf '%P\n' 2>/dev/null | LC_ALL=C sort
}

# check_store INST [ROOT]: every committed live record has its object, of its size
# and sha256; no object lacks a record; staging holds no file.  Call it while
# nothing is being written.  E2E_ALLOW_STAGING=1 tolerates staging leftovers
# and E2E_ALLOW_ORPHANS=1 objects without a record (after a crash, cleaning
# them up is the repair tool's job).
check_store() {
	local inst=$1 root=${2:-$1/storage} uid suffix size checksum obj got bad=
	while IFS='|' read -r uid suffix size checksum; do
		[[ -n "$uid" ]] || continue
		obj=$root/.lamindb/$uid$suffix
		if [[ ! -f "$obj" ]]; then
			bad+=" committed record $uid has no object $obj;"
			continue
		fi
		got=$(stat -c %s "$obj")
		[[ "$got" == "$size" ]] || bad+=" $obj: size $got, record says $size;"
		got=$(sha256_of "$obj")
		[[ "$got" == "$checksum" ]] || bad+=" $obj: sha256 $got, record says $checksum;"
	done < <(sql "$inst" "select uid, coalesce(suffix,''), size, checksum from artifact
			      where _aux is null and branch_id = 1")
	local known
	known=$(sql "$inst" "select uid || coalesce(suffix,'') from artifact" | LC_ALL=C sort)
	local orphans
	orphans=$(LC_ALL=C comm -23 <(objects "$root") <(printf '%s\n' "$known" | sed '/^$/d'))
	if [[ -n "$orphans" && "${E2E_ALLOW_ORPHANS:-0}" == 1 ]]; then
		log "note: objects without a record (allowed here): $(tr '\n' ' ' <<<"$orphans")"
	elif [[ -n "$orphans" ]]; then
		bad+=" objects without a record: $(tr '\n' ' ' <<<"$orphans");"
	fi
	local st
	st=$(staging_files "$inst")
	if [[ -n "$st" && "${E2E_ALLOW_STAGING:-0}" == 1 ]]; then
		log "note: staging holds leftovers (allowed here): $(tr '\n' ' ' <<<"$st")"
	elif [[ -n "$st" ]]; then
		bad+=" staging holds files: $(tr '\n' ' ' <<<"$st");"
	fi
	[[ -z "$bad" ]] || fail "store of $inst inconsistent:$bad"
}

# ------------------------------------------------------------------ hashes

sha256_of() { sha256sum -- "$1" | cut -d' ' -f1; }

_b64url() { base64 -w0 | tr '+/' '-_' | tr -d '='; }

# LaminDB's hash, computed independently of lamfs: md5 up to 50 MiB, else
# sha1(sha1(first 50 MiB) || sha1(last 50 MiB)); url-safe base64, 22 chars.
lamindb_hash() {
	local f=$1 size chunk=$((50 * MiB))
	size=$(stat -c %s -- "$f")
	if ((size <= chunk)); then
		openssl dgst -md5 -binary <"$f" | _b64url | cut -c1-22
	else
		{
			head -c "$chunk" -- "$f" | openssl dgst -sha1 -binary
			tail -c "$chunk" -- "$f" | openssl dgst -sha1 -binary
		} | openssl dgst -sha1 -binary | _b64url | cut -c1-22
	fi
}

lamindb_hash_type() {
	if (($(stat -c %s -- "$1") <= 50 * MiB)); then echo md5; else echo sha1-fl; fi
}

# xattr PATH NAME: the value (empty with a message on stderr if absent).
xattr() {
	getfattr --absolute-names --only-values -n "$2" -- "$1"
}

# random_file PATH SIZE
random_file() {
	head -c "$2" /dev/urandom >"$1"
}

# log_tail INST: the end of the daemon log, for failure messages.
log_tail() {
	[[ -f "$1/lamfs.log" ]] || return 0
	printf '\n--- tail of %s/lamfs.log ---\n' "$1"
	tail -n 20 -- "$1/lamfs.log"
}

# ------------------------------------------------------------- lifecycle

_e2e_exit() {
	local rc=$?
	trap - ERR
	set +e
	force_umount_all "$WORK"
	if [[ $rc -eq 0 && -n "${_E2E_OWN_WORK:-}" ]]; then
		rm -rf --one-file-system -- "$WORK"
	elif [[ $rc -ne 0 && $rc -ne 77 ]]; then
		printf '# work directory kept: %s\n' "$WORK" >&2
	fi
	exit "$rc"
}

e2e_begin() {
	[[ -x "$LAMFS_BIN" ]] || fail "no lamfs binary at $LAMFS_BIN (set LAMFS_BIN)"
	[[ -e /dev/fuse ]] || skip "/dev/fuse missing"
	if [[ -n "${E2E_TEST_WORK:-}" ]]; then
		WORK=$E2E_TEST_WORK
		mkdir -p -- "$WORK"
	else
		WORK=$(mktemp -d /tmp/lamfs-e2e.XXXXXX)
		_E2E_OWN_WORK=1
	fi
	WORK=$(cd "$WORK" && pwd)
	FAULT_FILE=$WORK/faults
	: >"$FAULT_FILE"
	trap '_e2e_on_err $? $LINENO "$BASH_COMMAND"' ERR
	trap _e2e_exit EXIT
	trap 'exit 143' TERM
	trap 'exit 130' INT
	log "$(basename "$0"): work $WORK, binary $LAMFS_BIN"
}

e2e_pass() {
	printf 'ok: %s\n' "$(basename "$0")"
	exit 0
}
