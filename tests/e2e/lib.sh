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
#   E2E_STORAGE      local (default) or s3: instance_new then makes S3-backed
#                    instances (one prefix each in $E2E_S3_BUCKET on the test
#                    S3 server, which e2e_begin starts unless S3_ENDPOINT is
#                    set; s3env.sh), and the storage helpers (storage_of,
#                    objects, objects_snapshot, object_file, object_exists,
#                    storage_stray, check_store) look at the bucket
#   E2E_MAX_FILE     bytes: tests that honour it leave out bigger files
#   E2E_PYTHON       the python3 tests run (default /usr/bin/python3 if present)
#   E2E_S3_BUCKET, E2E_S3_PREFIX, E2E_S3_PORT, E2E_S3_VERIFY=full,
#   E2E_PG_PORT, E2E_FRESH_TIMEOUT, E2E_MULTI_SAVES: see s3env.sh, pgenv.sh
#                    and the sections below
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
# The python3 the tests run: Debian's (scripts/deps.sh installs it) unless
# E2E_PYTHON says otherwise.  A version manager's shim first on PATH (pyenv)
# costs most of a second per call, and tests call it hundreds of times.
if [[ -z "${E2E_PYTHON:-}" ]]; then
	if [[ -x /usr/bin/python3 ]]; then E2E_PYTHON=/usr/bin/python3; else E2E_PYTHON=$(command -v python3); fi
fi
python3() { "$E2E_PYTHON" "$@"; }
OP=("python3" "$E2E_DIR/op.py")
MiB=$((1024 * 1024))
_E2E_NDAEMON=0
# Functions _e2e_exit calls after unmounting everything (servers a test started).
_e2e_exit_hooks=()

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
# With E2E_STORAGE=s3 and no --storage given, the instance stores its objects
# in the test's S3 server: s3://$E2E_S3_BUCKET/<a prefix of its own> (see
# s3env.sh; e2e_begin starts the server unless S3_ENDPOINT is set already).
instance_new() {
	local inst=$WORK/$1 out rc=0
	shift
	if [[ "${E2E_STORAGE:-local}" == s3 && " $* " != *" --storage "* ]]; then
		set -- "$@" --storage "s3://$E2E_S3_BUCKET/$_E2E_S3_RUN/$(basename "$inst")"
	fi
	out=$("$LAMFS_BIN" init "$inst" "$@" 2>&1 </dev/null) || rc=$?
	[[ $rc -eq 0 ]] || fail "lamfs init $inst $*: exit $rc: $out"
	printf '%s\n' "$inst"
}

# Storage root of an instance made without --storage; for an S3 instance its
# s3://BUCKET/PREFIX url (which objects, objects_snapshot, object_file,
# object_exists, check_store and storage_stray take like a local root).
storage_of() {
	local url
	url=$(_e2e_conf "$1" storage url)
	if [[ "$url" == s3://* ]]; then
		printf '%s\n' "${url%/}"
	else
		printf '%s/storage\n' "$1"
	fi
}

# _e2e_conf INST SECTION KEY: a value from INST/lamfs.conf (empty if none).
_e2e_conf() {
	[[ -r "$1/lamfs.conf" ]] || return 0
	awk -v s="$2" -v k="$3" '
		/^[ \t]*\[/ { sec = $0; gsub(/[][ \t]/, "", sec); next }
		sec == s && $0 ~ ("^[ \t]*" k "[ \t]*=") {
			sub(/^[^=]*=[ \t]*/, ""); sub(/[ \t\r]+$/, ""); print; exit
		}' "$1/lamfs.conf"
}

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
# Reads /proc/*/cmdline with bash builtins only: a machine with hundreds of
# processes would otherwise cost hundreds of forks per mount.
daemon_pid() {
	local mnt=$1 p x m t
	local -a a
	for p in /proc/[0-9]*; do
		a=()
		{ mapfile -d '' -t a <"$p/cmdline"; } 2>/dev/null || continue
		((${#a[@]} > 0)) || continue
		[[ "${a[0]}" == "$LAMFS_BIN" || "${a[0]}" == */lamfs ]] || continue
		m=0 t=0
		for x in "${a[@]:1}"; do
			[[ "$x" == mount ]] && m=1
			[[ "$x" == "$mnt" ]] && t=1
		done
		[[ $m == 1 && $t == 1 ]] || continue
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

# run CMD ARGS...: run it with stdin from /dev/null; its exit status in RC,
# its stdout in OUT, its stderr in ERR (a failure does not stop the test).
run() {
	local o e
	o=$(mktemp "$WORK/.out.XXXXXX")
	e=$(mktemp "$WORK/.err.XXXXXX")
	RC=0
	"$@" >"$o" 2>"$e" </dev/null || RC=$?
	# shellcheck disable=SC2034 # the same helper as in the other tests
	OUT=$(cat "$o")
	ERR=$(cat "$e")
	rm -f "$o" "$e"
}

# record_daemon INST MNT: the daemon serving INST (the one holding its lock
# shared) serves MNT, mounted by mount(8) or mount.lamfs rather than
# mount_fs; recorded so that the exit trap ends it if the test fails, and
# left in DAEMON.
record_daemon() {
	local pid
	pid=$("$LAMFS_BIN" status "$1" --json | python3 -c \
		'import json,sys; print(" ".join(str(h["pid"]) for h in json.load(sys.stdin)["lock_holders"] if not h["exclusive"]))')
	[[ "$pid" =~ ^[0-9]+$ ]] || fail "no single daemon holds $1's lock: '$pid'"
	mkdir -p "$WORK/.daemons"
	echo "$pid" >"$(_e2e_pidfile "$2")"
	DAEMON=$pid
}

# pid_alive PID: 0 while PID runs.  A zombie has exited: the daemons are
# children of PID 1, which may reap them only a second or more later.
pid_alive() {
	local st
	kill -0 "$1" 2>/dev/null || return 1
	{ read -r st <"/proc/$1/stat"; } 2>/dev/null || return 1
	st=${st##*) }
	[[ "${st:0:1}" != Z ]]
}

# wait_pid_gone PID SECONDS: 0 once PID has exited.
wait_pid_gone() {
	local pid=$1 i
	[[ -n "$pid" ]] || return 0
	for ((i = 0; i < $2 * 20; i++)); do
		pid_alive "$pid" || return 0
		sleep 0.05
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
# An instance on PostgreSQL (init --db postgresql://...) is queried with psql
# (password from PGPASSFILE); rows are '|'-separated there too, booleans t/f.
sql() {
	local murl
	murl=$(_e2e_conf "$1" meta url)
	if [[ "$murl" == postgresql://* || "$murl" == postgres://* ]]; then
		psql "$murl" -X -q -A -t -F '|' -v ON_ERROR_STOP=1 -c "$2" </dev/null
		return
	fi
	sqlite3 -batch -noheader -bail -cmd '.timeout 10000' "$(db_of "$1")" "$2" </dev/null
}

# db_of INST: the instance's SQLite database, where lamfs.conf's [meta] url
# says (<storage root>/.lamindb/lamin.db by default, INSTANCE/lamin.db with
# S3 storage; a relative path is relative to the instance).
db_of() {
	local murl
	murl=$(_e2e_conf "$1" meta url)
	murl=${murl#sqlite:}
	[[ -n "$murl" ]] || fail "db_of: $1/lamfs.conf names no database"
	[[ "$murl" == /* ]] || murl=$1/$murl
	printf '%s\n' "$murl"
}

# LaminDB's own files in a storage's .lamindb folder, which are not objects:
# its SQLite database (and journals) and the storage marker.
_E2E_LAMINDB_FILES='^(lamin\.db(-wal|-shm|-journal)?|storage_uid\.txt)( |$)'

# sqlstr TEXT: TEXT as an SQL string literal.
sqlstr() { printf "'%s'" "${1//\'/\'\'}"; }

# row INST KEY COLUMNS: COLUMNS (comma list) of every row at KEY, oldest first, '|' separated.
rows_at() {
	sql "$1" "select $3 from artifact where key = $(sqlstr "$2") order by uid"
}

# --------------------------------------------------------------- storage

# Objects in a storage root: names below .lamindb, sorted.
objects() {
	if [[ "$1" == s3://* ]]; then
		_s3_split "$1"
		s3_keys "$_S3B" "${_S3P}.lamindb/" | cut -d' ' -f1 | cut -c$((${#_S3P} + 10))- |
			{ grep -Ev "$_E2E_LAMINDB_FILES" || true; } | LC_ALL=C sort
		return
	fi
	local d=$1/.lamindb
	[[ -d "$d" ]] || return 0
	(cd "$d" && find . -type f -printf '%P\n' | { grep -Ev "$_E2E_LAMINDB_FILES" || true; } |
		LC_ALL=C sort)
}

# A fingerprint of every object: name inode size mtime (changes if any is rewritten).
# S3: name size md5 last-modified, from Swift's listing (microseconds; S3's
# listing has whole seconds only).
objects_snapshot() {
	if [[ "$1" == s3://* ]]; then
		_s3_split "$1"
		s3_swift_listing "$_S3B" "${_S3P}.lamindb/" | { grep -Ev "$_E2E_LAMINDB_FILES" || true; }
		return
	fi
	local d=$1/.lamindb
	[[ -d "$d" ]] || return 0
	(cd "$d" && find . -type f -printf '%P %i %s %T@\n' | { grep -Ev "$_E2E_LAMINDB_FILES" || true; } |
		LC_ALL=C sort)
}

# Regular files in the instance's staging folder.
staging_files() {
	find "$1/staging" -type f -printf '%P\n' 2>/dev/null | LC_ALL=C sort
}

# check_store INST [ROOT]: every committed live record has its object, of its size
# and sha256; no object lacks a record; staging holds no file.  Call it while
# nothing is being written.  E2E_ALLOW_STAGING=1 tolerates staging leftovers
# and E2E_ALLOW_ORPHANS=1 objects without a record (after a crash, cleaning
# them up is the repair tool's job).  ROOT defaults to storage_of INST; for
# S3 see _check_store_s3.
check_store() {
	local inst=$1 root=${2:-$(storage_of "$1")} bad=
	if [[ "$root" == s3://* ]]; then
		_check_store_s3 "$inst" "$root"
		return
	fi
	# one python for every object (a few processes per object add up to
	# minutes on a loaded machine); rows "uid|suffix|size|checksum" on stdin
	bad=$(sql "$inst" "select uid, coalesce(suffix,''), size, checksum from artifact
			   where _aux is null and branch_id = 1" | python3 -c '
import hashlib, os, sys
root = sys.argv[1]
out = []
for l in sys.stdin:
    l = l.rstrip("\n")
    if not l:
        continue
    uid, suffix, size, checksum = l.split("|")
    obj = "%s/.lamindb/%s%s" % (root, uid, suffix)
    if not os.path.isfile(obj):
        out.append(" committed record %s has no object %s;" % (uid, obj))
        continue
    got = os.stat(obj).st_size
    if str(got) != size:
        out.append(" %s: size %d, record says %s;" % (obj, got, size))
    h = hashlib.sha256()
    with open(obj, "rb") as f:
        for b in iter(lambda: f.read(1 << 20), b""):
            h.update(b)
    if h.hexdigest() != checksum:
        out.append(" %s: sha256 %s, record says %s;" % (obj, h.hexdigest(), checksum))
print("".join(out))
' "$root")
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

# ------------------------------------------------- storage, local or S3
#
# These take a storage root as storage_of prints it: a local folder or an
# s3://BUCKET/PREFIX url (S3 through curl with the test key, s3env.sh).

# storage_kind ROOT: "local" or "s3".
storage_kind() {
	if [[ "$1" == s3://* ]]; then echo s3; else echo local; fi
}

# object_file ROOT NAME: a local path holding object .lamindb/NAME's bytes
# (for S3 a fresh download under $WORK/.s3objects); the path does not exist
# when the object does not.
object_file() {
	if [[ "$1" != s3://* ]]; then
		printf '%s/.lamindb/%s\n' "$1" "$2"
		return
	fi
	local dest=$WORK/.s3objects/$2 code
	_s3_split "$1"
	mkdir -p -- "$(dirname -- "$dest")"
	code=$(S3_BODY=$dest s3_req GET "/$_S3B/${_S3P}.lamindb/$2")
	[[ $code == 200 ]] || rm -f -- "$dest"
	[[ $code == 200 || $code == 404 ]] || log "object_file: GET .lamindb/$2: HTTP $code" >&2
	printf '%s\n' "$dest"
}

# object_exists ROOT NAME: 0 if object .lamindb/NAME is stored.
object_exists() {
	if [[ "$1" != s3://* ]]; then
		[[ -f "$1/.lamindb/$2" ]]
		return
	fi
	_s3_split "$1"
	[[ "$(S3_BODY=/dev/null s3_req HEAD "/$_S3B/${_S3P}.lamindb/$2" -I)" == 200 ]]
}

# object_put ROOT NAME FILE: store FILE's bytes as object .lamindb/NAME behind
# lamfs's back (for S3 with curl and the test key).
object_put() {
	if [[ "$1" != s3://* ]]; then
		mkdir -p -- "$1/.lamindb"
		cp -- "$3" "$1/.lamindb/$2"
		return
	fi
	local code
	_s3_split "$1"
	code=$(S3_BODY=/dev/null s3_req PUT "/$_S3B/${_S3P}.lamindb/$2" --data-binary "@$3")
	[[ $code == 200 ]] || fail "object_put: PUT .lamindb/$2: HTTP $code"
}

# object_remove ROOT NAME: delete object .lamindb/NAME behind lamfs's back.
object_remove() {
	if [[ "$1" != s3://* ]]; then
		rm -f -- "$1/.lamindb/$2"
		return
	fi
	local code
	_s3_split "$1"
	code=$(S3_BODY=/dev/null s3_req DELETE "/$_S3B/${_S3P}.lamindb/$2")
	[[ $code == 204 || $code == 200 || $code == 404 ]] ||
		fail "object_remove: DELETE .lamindb/$2: HTTP $code"
}

# open_uploads ROOT: "NAME UPLOADID" of every multipart upload left open under
# ROOT/.lamindb (S3 only; a local root has none), sorted.
open_uploads() {
	[[ "$1" == s3://* ]] || return 0
	_s3_split "$1"
	s3_uploads "$_S3B" "${_S3P}.lamindb/" | cut -c$((${#_S3P} + 10))- | LC_ALL=C sort
}

# storage_stray ROOT: files (objects) in the storage root outside .lamindb, sorted.
storage_stray() {
	if [[ "$1" == s3://* ]]; then
		_s3_split "$1"
		s3_keys "$_S3B" "$_S3P" | cut -d' ' -f1 | cut -c$((${#_S3P} + 1))- |
			{ grep -v '^\.lamindb/' || true; } | LC_ALL=C sort
		return
	fi
	[[ -d "$1" ]] || return 0
	(cd "$1" && find . -type f ! -path './.lamindb/*' -printf '%P\n' | LC_ALL=C sort)
}

# check_store for S3: the same checks as for a local root.  An object's bytes
# are checked by the md5 the server computed (its ETag, for a single PUT)
# against the record's md5 hash, or, for multipart objects and sha1-fl
# records, by downloading it and comparing its sha256 with the record's.
# E2E_S3_VERIFY=full downloads every object.
_check_store_s3() {
	local inst=$1 root=$2 bad='' what n f got want
	_s3_split "$root"
	s3_keys "$_S3B" "${_S3P}.lamindb/" | { grep -Ev "^${_S3P}\.lamindb/${_E2E_LAMINDB_FILES#^}" || true; } \
		>"$WORK/.cs.keys"
	sql "$inst" "select uid || coalesce(suffix,''), size, checksum, hash, _hash_type from artifact
		     where _aux is null and branch_id = 1" >"$WORK/.cs.records"
	sql "$inst" "select uid || coalesce(suffix,'') from artifact" >"$WORK/.cs.known"
	# prints "bad: ..." lines, "get NAME SHA256" for objects to download, "orphans: ..."
	python3 - "$WORK/.cs.keys" "$WORK/.cs.records" "$WORK/.cs.known" "${_S3P}.lamindb/" \
		"${E2E_S3_VERIFY:-etag}" "$root" >"$WORK/.cs.out" <<'PYEOF'
import base64, sys
keys, recs, known, pfx, mode, root = sys.argv[1:7]
objs = {}
for l in open(keys):
    k, size, etag = l.split()
    objs[k[len(pfx):]] = (int(size), etag)
for l in open(recs):
    if not l.strip():
        continue
    name, size, checksum, h, htype = l.rstrip('\n').split('|')
    if name not in objs:
        print('bad: committed record has no object %s/.lamindb/%s;' % (root, name))
        continue
    osize, etag = objs[name]
    if str(osize) != size:
        print('bad: %s: size %d, record says %s;' % (name, osize, size))
    if mode != 'full' and htype == 'md5' and '-' not in etag:
        b = base64.urlsafe_b64encode(bytes.fromhex(etag)).decode().rstrip('=')[:22]
        if b != h:
            print('bad: %s: md5 %s (ETag %s), record says %s;' % (name, b, etag, h))
    else:
        print('get %s %s' % (name, checksum))
kn = {l.strip() for l in open(known) if l.strip()}
orphans = sorted(set(objs) - kn)
if orphans:
    print('orphans: ' + ' '.join(orphans))
PYEOF
	while read -r what n want; do
		case $what in
		bad:) bad+=" $n $want" ;;
		get)
			f=$(object_file "$root" "$n")
			got=$(sha256_of "$f" 2>/dev/null) || got="(no object)"
			rm -f -- "$f"
			[[ "$got" == "$want" ]] || bad+=" $root/.lamindb/$n: sha256 $got, record says $want;"
			;;
		orphans:)
			n="$n $want"
			if [[ "${E2E_ALLOW_ORPHANS:-0}" == 1 ]]; then
				log "note: objects without a record (allowed here): $n"
			else
				bad+=" objects without a record: $n;"
			fi
			;;
		esac
	done <"$WORK/.cs.out"
	local st
	st=$(staging_files "$inst")
	if [[ -n "$st" && "${E2E_ALLOW_STAGING:-0}" == 1 ]]; then
		log "note: staging holds leftovers (allowed here): $(tr '\n' ' ' <<<"$st")"
	elif [[ -n "$st" ]]; then
		bad+=" staging holds files: $(tr '\n' ' ' <<<"$st");"
	fi
	rm -f -- "$WORK"/.cs.*
	[[ -z "$bad" ]] || fail "store of $inst ($root) inconsistent:$bad"
}

# shellcheck source=s3env.sh
. "$E2E_DIR/s3env.sh"
# shellcheck source=pgenv.sh
. "$E2E_DIR/pgenv.sh"

# ------------------------------------------- several mounts of one instance
#
# For t_multi_*: two mounts of one instance (one instance directory mounted
# twice, or two directories attached to one --db and --storage).  The SQL
# here runs on SQLite and PostgreSQL alike (sql dispatches; `is_latest = true`
# is valid in both).

# await_path WHAT present|absent PATH: wait (up to E2E_FRESH_TIMEOUT seconds,
# default 10) until PATH is there / gone; fails otherwise.  Logs how long a
# change took to show if it was not at once.
await_path() {
	local what=$1 want=$2 path=$3 i got limit=$((${E2E_FRESH_TIMEOUT:-10} * 20))
	for ((i = 0; i <= limit; i++)); do
		got=$(errno_of stat "$path")
		[[ $want == present && $got == OK ]] && break
		[[ $want == absent && $got == ENOENT ]] && break
		sleep 0.05
	done
	((i <= limit)) || fail "$what: $path not $want after ${E2E_FRESH_TIMEOUT:-10}s (stat: $got)"
	((i == 0)) || log "$what: $path $want after $((i * 50)) ms"
}

# race_py: the path of a small program for concurrent saves (written once):
#   write PATH TAG N      N saves of distinct contents (TAG 1..N) to PATH, each
#                         open(O_TRUNC)+write+close; "TAG I OK|ERRNO[@step]" lines
#   read PATH STOP OUT    reads PATH whole until file STOP exists; every read
#                         must be exactly one content some writer wrote (ids
#                         checked against the bytes); summary and the first
#                         bad reads to OUT; exit 1 if any read was bad
#   sums TAG:N ...        "sha256 TAG I" of every content of those writers
#   make TAG I FILE       one content into FILE
#   burst DIR TAG STOP    saves DIR/TAG-1.dat, DIR/TAG-2.dat, ... (content TAG I)
#                         until file STOP exists; "TAG I OK|ERRNO[@step]" lines
#   verify ROWS MNT... < RESULTS   checks burst results against ROWS (lines
#                         "name|checksum|aux|is_latest (0/1)|branch_id" of the records
#                         in the burst's folder) and the folder on each MNT:
#                         a save whose close() returned 0 has one live latest
#                         unflagged record with its sha256 and reads back
#                         byte-exact on every mount; a failed one has no record
#                         and is absent on every mount.  Problems on stdout,
#                         "saves OK N failed M" last; exit 1 on any problem
race_py() {
	local f=$WORK/race.py
	[[ -f "$f" ]] || cat >"$f" <<'PYEOF'
import errno, hashlib, os, sys, time

def content(tag, i):
    head = ('%s %d\n' % (tag, i)).encode()
    size = 1000 + (i * 7919 + len(tag) * 104729) % 30000
    seed = hashlib.sha256(head).digest()
    body = (seed * (size // len(seed) + 1))[:size - len(head)]
    return head + body

def ename(e):
    return errno.errorcode.get(e.errno, str(e.errno))

# Save content(tag, i) at path; print "TAG I OK", or the errno name (with
# "@open"/"@write" when it failed before close()).
def save(path, tag, i):
    data, step = content(tag, i), 'open'
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        step = 'write'
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
        except OSError:
            os.close(fd)
            raise
        step = 'close'
        os.close(fd)
        print('%s %d OK' % (tag, i), flush=True)
    except OSError as e:
        print('%s %d %s%s' % (tag, i, ename(e), '' if step == 'close' else '@' + step),
              flush=True)

def write(path, tag, n):
    for i in range(1, n + 1):
        save(path, tag, i)

def burst(d, tag, stop):
    i = 0
    while not os.path.exists(stop):
        i += 1
        save(os.path.join(d, '%s-%d.dat' % (tag, i)), tag, i)

def check(data):
    try:
        tag, i = data[:data.index(b'\n')].decode().split(' ')
        return data == content(tag, int(i))
    except Exception:
        return False

def read(path, stop, out):
    reads = bad = 0
    notes = []
    while not os.path.exists(stop):
        try:
            with open(path, 'rb') as f:
                data = f.read()
        except OSError as e:
            bad += 1
            notes.append('read %d: %s' % (reads, ename(e)))
        else:
            if not check(data):
                bad += 1
                notes.append('read %d: %d bytes, not one whole content; starts %r'
                             % (reads, len(data), data[:24]))
        reads += 1
    with open(out, 'w') as f:
        f.write('reads %d bad %d\n' % (reads, bad))
        f.write(''.join(n + '\n' for n in notes[:10]))
    sys.exit(1 if bad else 0)

cmd = sys.argv[1]
if cmd == 'write':
    write(sys.argv[2], sys.argv[3], int(sys.argv[4]))
elif cmd == 'read':
    read(*sys.argv[2:5])
elif cmd == 'sums':
    for spec in sys.argv[2:]:
        tag, n = spec.split(':')
        for i in range(1, int(n) + 1):
            print('%s %s %d' % (hashlib.sha256(content(tag, i)).hexdigest(), tag, i))
elif cmd == 'verify':
    rows = {}
    for l in open(sys.argv[2]):
        if l.strip():
            name, rest = l.rstrip('\n').split('|', 1)
            rows.setdefault(name, []).append(rest)
    mnts, bad, ok, failed = sys.argv[3:], 0, 0, 0
    for l in sys.stdin:
        tag, i, res = l.split()
        name, data = '%s-%s.dat' % (tag, i), content(tag, int(i))
        got = rows.get(name, [])
        if res == 'OK':
            ok += 1
            want = ['%s||1|1' % hashlib.sha256(data).hexdigest()]
            if got != want:
                bad += 1
                print('%s: close() returned 0; records %s, expected %s' % (name, got, want))
            for m in mnts:
                try:
                    with open(os.path.join(m, name), 'rb') as f:
                        if f.read() != data:
                            bad += 1
                            print('%s: close() returned 0; bytes differ on %s' % (name, m))
                except OSError as e:
                    bad += 1
                    print('%s: close() returned 0; %s on %s' % (name, ename(e), m))
        else:
            failed += 1
            print('note: %s: close() failed: %s' % (name, res))
            if got:
                bad += 1
                print('%s: its save failed (%s) but records remain: %s' % (name, res, got))
            for m in mnts:
                if os.path.lexists(os.path.join(m, name)):
                    bad += 1
                    print('%s: its save failed (%s) but it is visible on %s' % (name, res, m))
    print('saves OK %d failed %d' % (ok, failed))
    sys.exit(1 if bad else 0)
elif cmd == 'burst':
    burst(*sys.argv[2:5])
elif cmd == 'make':
    with open(sys.argv[4], 'wb') as f:
        f.write(content(sys.argv[2], int(sys.argv[3])))
PYEOF
	printf '%s\n' "$f"
}

# multi_mounts_suite INST_A MNT_A INST_B MNT_B: what two mounts of one
# instance must do together (issue 8):
#  1. a file written on A reads back byte-exact on B, and one written on B on A
#     (same uid on both);
#  2. both save one key E2E_MULTI_SAVES times (default 100) at once, distinct
#     contents, while a reader on each mount reads it in a loop: every close()
#     returns 0; every save is a version (the rows' checksums are exactly the
#     contents written, one row each, distinct uids, one stem); exactly one
#     is_latest; nothing flagged; every read was one whole written content;
#     both mounts then read the latest version;
#  3. rename of a file and of a folder, overwrite, delete and rmdir on one
#     mount are seen on the other.
multi_mounts_suite() {
	local ia=$1 ma=$2 ib=$3 mb=$4 n=${E2E_MULTI_SAVES:-100} py
	py=$(race_py)

	log "written on one mount, read on the other"
	mkdir "$ma/x"
	await_path "folder made on A, seen on B" present "$mb/x"
	random_file "$WORK/x1" $((3 * MiB + 7))
	printf '>s\nACGT\n' >"$WORK/x2"
	cp "$WORK/x1" "$ma/x/one.bin"
	await_path "file saved on A, seen on B" present "$mb/x/one.bin"
	assert_same_file "x/one.bin saved on A, read on B" "$WORK/x1" "$mb/x/one.bin"
	assert_eq "uid of x/one.bin on B" "$(xattr "$ma/x/one.bin" user.lamfs.uid)" \
		"$(xattr "$mb/x/one.bin" user.lamfs.uid)"
	cp "$WORK/x2" "$mb/x/two.fasta"
	await_path "file saved on B, seen on A" present "$ma/x/two.fasta"
	assert_same_file "x/two.fasta saved on B, read on A" "$WORK/x2" "$ma/x/two.fasta"
	assert_eq "ls x/ on A" "$(printf 'one.bin\ntwo.fasta')" "$(ls "$ma/x")"
	assert_eq "ls x/ on B" "$(printf 'one.bin\ntwo.fasta')" "$(ls "$mb/x")"

	log "both mounts save one key $n times at once; a reader on each checks every read"
	local key=race/shared.dat start
	mkdir "$ma/race"
	python3 "$py" make init 1 "$WORK/init.dat"
	cp "$WORK/init.dat" "$ma/$key"
	await_path "the shared key, seen on B" present "$mb/$key"
	rm -f -- "$WORK/race.stop"
	start=$SECONDS
	python3 "$py" read "$ma/$key" "$WORK/race.stop" "$WORK/read.A" &
	local ra=$!
	python3 "$py" read "$mb/$key" "$WORK/race.stop" "$WORK/read.B" &
	local rb=$!
	python3 "$py" write "$ma/$key" A "$n" >"$WORK/write.A" &
	local wa=$!
	python3 "$py" write "$mb/$key" B "$n" >"$WORK/write.B" &
	local wb=$!
	local rca=0 rcb=0 rra=0 rrb=0
	wait "$wa" || rca=$?
	wait "$wb" || rcb=$?
	touch "$WORK/race.stop"
	wait "$ra" || rra=$?
	wait "$rb" || rrb=$?
	log "$((2 * n)) saves took $((SECONDS - start))s; reader on A: $(head -n1 "$WORK/read.A");" \
		"reader on B: $(head -n1 "$WORK/read.B")"
	[[ $rca -eq 0 && $rcb -eq 0 ]] || fail "writers exited $rca and $rcb"
	local notok
	notok=$(cat "$WORK/write.A" "$WORK/write.B" | grep -v ' OK$' || true)
	[[ -z "$notok" ]] || fail "saves whose close() failed: $(head -n 5 <<<"$notok") ($(wc -l <<<"$notok") in all)"
	assert_eq "saves by A" "$n" "$(grep -c ' OK$' "$WORK/write.A")"
	assert_eq "saves by B" "$n" "$(grep -c ' OK$' "$WORK/write.B")"
	[[ $rra -eq 0 ]] || fail "reader on A saw bad reads: $(cat "$WORK/read.A")"
	[[ $rrb -eq 0 ]] || fail "reader on B saw bad reads: $(cat "$WORK/read.B")"

	local want got switches
	python3 "$py" sums init:1 "A:$n" "B:$n" >"$WORK/sums"
	want=$(cut -d' ' -f1 "$WORK/sums" | LC_ALL=C sort)
	# how often the writer changes along the versions: the saves did interleave
	switches=$(sql "$ia" "select checksum from artifact where key = '$key' order by uid" |
		awk 'NR == FNR { tag[$1] = $2; next } { t = tag[$1]; if (FNR > 1 && t != last) s++; last = t }
		     END { print s + 0 }' "$WORK/sums" -)
	log "the writer changes $switches times along the $((2 * n + 1)) versions"
	((switches >= 3)) || fail "the two mounts' saves did not interleave (writer changes: $switches)"
	got=$(sql "$ia" "select checksum from artifact where key = '$key'" | LC_ALL=C sort)
	assert_eq "versions at $key (one per save, each with its content's sha256)" \
		"$want" "$got"
	assert_eq "rows at $key" "$((2 * n + 1))" "$(sql "$ia" "select count(*) from artifact where key = '$key'")"
	assert_eq "rows at $key, through B's instance" "$((2 * n + 1))" \
		"$(sql "$ib" "select count(*) from artifact where key = '$key'")"
	assert_eq "distinct uids at $key" "$((2 * n + 1))" \
		"$(sql "$ia" "select count(distinct uid) from artifact where key = '$key'")"
	assert_eq "distinct stems at $key" "1" \
		"$(sql "$ia" "select count(distinct substr(uid, 1, 16)) from artifact where key = '$key'")"
	assert_eq "is_latest rows at $key" "1" \
		"$(sql "$ia" "select count(*) from artifact where key = '$key' and is_latest = true")"
	assert_eq "flagged rows at $key" "0" \
		"$(sql "$ia" "select count(*) from artifact where key = '$key' and _aux is not null")"
	local suffixes
	suffixes=$(sql "$ia" "select substr(uid, 17, 4) from artifact where key = '$key' order by 1")
	assert_eq "distinct version suffixes" "$((2 * n + 1))" "$(LC_ALL=C sort -u <<<"$suffixes" | wc -l)"
	# base62 suffixes 0000.. in order, one per version, no gap
	local want_suffixes
	want_suffixes=$(python3 -c '
import sys
a = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
for v in range(int(sys.argv[1]) + 1):
    print("".join(a[(v // 62 ** k) % 62] for k in (3, 2, 1, 0)))' $((2 * n)))
	[[ "$suffixes" == "$want_suffixes" ]] ||
		log "note: version suffixes are not 0000..$(tail -n1 <<<"$want_suffixes") without gaps:" \
			"$(LC_ALL=C comm -3 <(printf '%s\n' "$want_suffixes") <(printf '%s\n' "$suffixes") | head -n 5 | tr '\n\t' ' ~')"
	local latest lsum
	latest=$(sql "$ia" "select uid || ' ' || checksum from artifact where key = '$key' and is_latest = true")
	lsum=${latest#* }
	assert_eq "content of $key on A is the latest version" "$lsum" "$(sha256_of "$ma/$key")"
	assert_eq "content of $key on B is the latest version" "$lsum" "$(sha256_of "$mb/$key")"
	assert_eq "uid of $key on A" "${latest%% *}" "$(xattr "$ma/$key" user.lamfs.uid)"
	assert_eq "uid of $key on B" "${latest%% *}" "$(xattr "$mb/$key" user.lamfs.uid)"
	assert_eq "ls race/ on B" "shared.dat" "$(ls "$mb/race")"

	log "rename, overwrite and delete on one mount, seen on the other"
	local uid
	mkdir "$ma/rd"
	cp "$WORK/x2" "$ma/rd/f1.fasta"
	await_path "rd/f1.fasta on B" present "$mb/rd/f1.fasta"
	uid=$(xattr "$mb/rd/f1.fasta" user.lamfs.uid)
	mv "$ma/rd/f1.fasta" "$ma/rd/f2.fasta"
	await_path "old name after a rename on A, on B" absent "$mb/rd/f1.fasta"
	await_path "new name after a rename on A, on B" present "$mb/rd/f2.fasta"
	assert_same_file "rd/f2.fasta on B" "$WORK/x2" "$mb/rd/f2.fasta"
	assert_eq "uid after the rename, on B" "$uid" "$(xattr "$mb/rd/f2.fasta" user.lamfs.uid)"
	mv "$mb/rd" "$mb/rd2"
	await_path "old folder after a rename on B, on A" absent "$ma/rd"
	await_path "renamed folder's file on A" present "$ma/rd2/f2.fasta"
	assert_same_file "rd2/f2.fasta on A" "$WORK/x2" "$ma/rd2/f2.fasta"
	cp "$WORK/x1" "$mb/rd2/f2.fasta"
	assert_same_file "rd2/f2.fasta overwritten on B, read on A" "$WORK/x1" "$ma/rd2/f2.fasta"
	rm "$mb/rd2/f2.fasta"
	await_path "file deleted on B, on A" absent "$ma/rd2/f2.fasta"
	assert_eq "ls rd2/ on A" "" "$(ls -A "$ma/rd2")"
	assert_eq "live rows at rd2/f2.fasta" "0" \
		"$(sql "$ia" "select count(*) from artifact where key = 'rd2/f2.fasta' and branch_id = 1")"
	rmdir "$ma/rd2"
	await_path "folder removed on A, on B" absent "$mb/rd2"
	rm "$ma/x/one.bin"
	await_path "x/one.bin deleted on A, on B" absent "$mb/x/one.bin"
	assert_eq "ls x/ on B after the delete" "two.fasta" "$(ls "$mb/x")"
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

# ------------------------------------------------------- child test runs
#
# run_children TEST...: run other t_*.sh tests as children of this one (the
# same files, not copies), each under timeout ${E2E_CHILD_TIMEOUT:-300} s with
# its own work directory $WORK/<test> and the environment of this test (so
# E2E_STORAGE=s3 and a running S3 server reach them).  Logs PASS/FAIL/SKIP and
# seconds per child, a failing child's output and daemon log tails; removes
# whatever a child left mounted.  Sets CHILDREN_FAILED and CHILDREN_SKIPPED
# (arrays of names) and CHILDREN_SUMMARY ("t_a=0/12s ...").
run_children() {
	local t cdir start rc secs left f lg
	CHILDREN_FAILED=() CHILDREN_SKIPPED=() CHILDREN_SUMMARY=
	for t in "$@"; do
		t=${t%.sh}
		cdir=$WORK/$t
		rm -rf --one-file-system -- "$cdir"
		mkdir -p -- "$cdir"
		log "---- $t (${E2E_STORAGE:-local})"
		start=$SECONDS
		rc=0
		E2E_TEST_WORK=$cdir timeout -k 15 "${E2E_CHILD_TIMEOUT:-300}" \
			bash "$E2E_DIR/$t.sh" </dev/null >"$cdir.log" 2>&1 || rc=$?
		secs=$((SECONDS - start))
		left=$(mounts_under "$cdir")
		WORK=$cdir force_umount_all "$cdir" 2>/dev/null
		[[ $rc -eq 0 && -n "$left" ]] && {
			echo "FAIL: $t left mounts behind: $left" >>"$cdir.log"
			rc=1
		}
		# sanitizer reports of foreground daemons: where run.sh looks for them
		for f in "$cdir"/daemon-stderr.*; do
			[[ -f "$f" ]] && cp -- "$f" "$WORK/daemon-stderr.$t.${f##*/daemon-stderr.}"
		done
		case $rc in
		0)
			log "PASS $t (${secs}s)"
			rm -rf --one-file-system -- "$cdir"
			;;
		77)
			log "SKIP $t: $(grep -m1 '^SKIP' "$cdir.log" | cut -c7-)"
			CHILDREN_SKIPPED+=("$t")
			;;
		*)
			log "FAIL $t (exit $rc, ${secs}s); its work directory: $cdir"
			sed 's/^/#   | /' "$cdir.log" | tail -n 40
			for lg in "$cdir"/*/lamfs.log; do
				[[ -f "$lg" ]] || continue
				log "  tail of $lg:"
				tail -n 15 "$lg" | sed 's/^/#   | /'
			done
			CHILDREN_FAILED+=("$t")
			;;
		esac
		CHILDREN_SUMMARY+=" $t=$rc/${secs}s"
	done
	log "children:$CHILDREN_SUMMARY"
}

# ------------------------------------------------------------- lifecycle

_e2e_exit() {
	local rc=$?
	trap - ERR
	set +e
	force_umount_all "$WORK"
	local hook
	for hook in "${_e2e_exit_hooks[@]}"; do
		"$hook"
	done
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
	case ${E2E_STORAGE:=local} in
	local) ;;
	s3)
		# one prefix per test run in the bucket; each instance gets its own below it
		_E2E_S3_RUN=${E2E_S3_PREFIX:-e2e}/$(basename "$0" .sh).$(date +%s).$$
		[[ -n "${S3_ENDPOINT:-}" ]] || s3_server_start
		s3_env_export
		log "storage: S3, s3://$E2E_S3_BUCKET/$_E2E_S3_RUN/<instance> at $S3_ENDPOINT"
		;;
	*) fail "E2E_STORAGE=$E2E_STORAGE: local or s3" ;;
	esac
}

e2e_pass() {
	printf 'ok: %s\n' "$(basename "$0")"
	exit 0
}

# ------------------------------------------------------------ LaminDB
#
# What LaminDB itself would compute and find, computed here independently of
# lamfs (Python's uuid and hashlib), and the checks of LaminDB's columns.

# The project's copy of LaminDB's schema files (meta/lamindb, with its NOTICE).
LAMINDB_FILES=$REPO/meta/lamindb

# lamindb_ident SLUG: "INSTANCE_ID INSTANCE_UID" as lamindb-setup derives them
# (uuid5(NAMESPACE_URL, slug); md5 of its hex, base 62, 12 characters).
lamindb_ident() {
	python3 - "$1" <<'PYEOF'
import hashlib, sys, uuid
A = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
i = uuid.uuid5(uuid.NAMESPACE_URL, sys.argv[1]).hex
n = int.from_bytes(hashlib.md5(i.encode()).digest(), "big")
s = ""
while n:
    n, r = divmod(n, 62)
    s = A[r] + s
print(i, (s or "0")[:12])
PYEOF
}

# lamindb_uid_of_id INSTANCE_ID: the instance uid of an instance id.
lamindb_uid_of_id() {
	python3 - "$1" <<'PYEOF'
import hashlib, sys
A = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
n = int.from_bytes(hashlib.md5(sys.argv[1].replace("-", "").lower().encode()).digest(), "big")
s = ""
while n:
    n, r = divmod(n, 62)
    s = A[r] + s
print((s or "0")[:12])
PYEOF
}

# marker_field FILE FIELD: a field of a storage_uid.txt (storage_uid: line 1).
marker_field() {
	if [[ "$2" == storage_uid ]]; then
		head -n 1 -- "$1"
	else
		sed -n "s/^$2=//p" -- "$1"
	fi
}

# lamindb_marker_write FILE STORAGE_UID SLUG: storage_uid.txt as lamin init
# writes it (lamindb-setup's mark_storage_root: no newline at the end).
lamindb_marker_write() {
	local id
	read -r id _ < <(lamindb_ident "$3")
	mkdir -p -- "$(dirname -- "$1")"
	printf '%s\ncreation info:\ninstance_slug=%s\ninstance_id=%s\ninstance_uid=%s' \
		"$2" "$3" "$id" "$(lamindb_uid_of_id "$id")" >"$1"
}

# lamindb_sqlite_made ROOT NAME: ROOT as `lamin init --storage ROOT` makes it (the
# shipped database and the rows lamin init writes), with one artifact
# LaminDB saved (key from_lamindb.txt).  Prints the storage uid.
lamindb_sqlite_made() {
	local root=$1 name=$2 suid id iuid now db
	suid=$(python3 -c 'import secrets,string; a=string.digits+string.ascii_uppercase+string.ascii_lowercase; print("".join(secrets.choice(a) for _ in range(12)))')
	read -r id iuid < <(lamindb_ident "anonymous/$name")
	mkdir -p "$root/.lamindb"
	db=$root/.lamindb/lamin.db
	[[ -f "$LAMINDB_FILES/lamin.db.gz" ]] || fail "no $LAMINDB_FILES/lamin.db.gz"
	gzip -dc "$LAMINDB_FILES/lamin.db.gz" >"$db"
	now=$(python3 -c 'import datetime; print(datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f"))')
	printf 'saved by LaminDB\n' >"$root/.lamindb/LNsaved0000000000000.txt"
	sqlite3 -bail "$db" >/dev/null <<SQL
insert into lamindb_user (id, uid, handle, name, created_at, updated_at)
  values (1, '00000000', 'anonymous', NULL, '$now', '$now');
insert or ignore into lamindb_branch (id, name, uid, description, created_at, space_id, created_by_id, _status_code, _aux)
  values (-1, 'trash', 'tttttttttttt', 'The trash.', '$now', 1, 1, 0, NULL),
         (0, 'archive', 'aaaaaaaaaaaa', 'The archive.', '$now', 1, 1, 0, NULL),
         (1, 'main', 'mmmmmmmmmmmm', 'The main & default branch of the instance.', '$now', 1, 1, 0, NULL);
insert into lamindb_storage (uid, root, description, type, region, instance_uid, created_by_id,
                             is_locked, _aux, created_at, updated_at, branch_id, created_on_id, space_id)
  values ('$suid', '$root', NULL, 'local', NULL, '$iuid', 1, 0, NULL, '$now', '$now', 1, 1, 1);
insert into lamindb_artifact (uid, key, suffix, size, hash, _hash_type, is_latest, is_locked,
                              _key_is_virtual, _overwrite_versions, storage_id, created_by_id,
                              branch_id, space_id, created_on_id, _aux, created_at, updated_at)
  values ('LNsaved0000000000000', 'from_lamindb.txt', '.txt', 17,
          '$(lamindb_hash "$root/.lamindb/LNsaved0000000000000.txt")', 'md5', 1, 0, 1, 0,
          1, 1, 1, 1, 1, NULL, '$now', '$now');
SQL
	lamindb_marker_write "$root/.lamindb/storage_uid.txt" "$suid" "anonymous/$name"
	printf '%s\n' "$suid"
}

# lamindb_pg_made ROOT NAME SUID: the test PostgreSQL database (pgenv.sh) as
# `lamin init --db ... --storage ROOT` leaves it: LaminDB's schema and seed
# rows loaded with psql from the project's copy of LaminDB's files, the
# storage row of ROOT (uid SUID) and ROOT/.lamindb/storage_uid.txt.
lamindb_pg_made() {
	local root=$1 name=$2 suid=$3 iuid
	read -r _ iuid < <(lamindb_ident "anonymous/$name")
	gzip -dc "$LAMINDB_FILES/postgres-schema.sql.gz" |
		psql "$E2E_PG_URL" -X -q -v ON_ERROR_STOP=1 >/dev/null 2>"$WORK/psql.err" ||
		fail "loading postgres-schema.sql.gz: $(tail -n 5 "$WORK/psql.err")"
	psql "$E2E_PG_URL" -X -q -v ON_ERROR_STOP=1 <"$LAMINDB_FILES/postgres-seed-rows.sql" \
		>/dev/null 2>"$WORK/psql.err" ||
		fail "loading postgres-seed-rows.sql: $(tail -n 5 "$WORK/psql.err")"
	mkdir -p "$root/.lamindb"
	psql_q "insert into lamindb_storage (uid, root, type, region, instance_uid, created_by_id)
		values ('$suid', '$root', 'local', NULL, '$iuid', 1)" >/dev/null
	lamindb_marker_write "$root/.lamindb/storage_uid.txt" "$suid" "anonymous/$name"
}

# lamindb_pg_django_save ROOT UID KEY TEXT: what LaminDB's artifact.save()
# leaves: the object at ROOT/.lamindb/UID.txt and the row with the columns
# save() sets (_aux NULL, the times from the columns' defaults).
lamindb_pg_django_save() {
	local root=$1
	printf '%s\n' "$4" >"$root/.lamindb/$2.txt"
	psql_q "insert into lamindb_artifact (uid, key, suffix, size, hash, _hash_type, is_latest,
			is_locked, _key_is_virtual, _overwrite_versions, storage_id, created_by_id,
			branch_id, space_id, created_on_id, _aux)
		values ('$2', '$3', '.txt', $(stat -c %s "$root/.lamindb/$2.txt"),
			'$(lamindb_hash "$root/.lamindb/$2.txt")', 'md5', true, false, true, false,
			(select id from lamindb_storage where root = '$root'), 1, 1, 1, 1, NULL)" >/dev/null
}

# lamindb_sqlite_django_save INST ROOT UID KEY TEXT: the same through sqlite3,
# with the columns LaminDB's save() sets and Django's time form (6 digits).
lamindb_sqlite_django_save() {
	local inst=$1 root=$2 now
	printf '%s\n' "$5" >"$root/.lamindb/$3.txt"
	now=$(python3 -c 'import datetime; print(datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f"))')
	sql "$inst" "insert into lamindb_artifact (uid, key, suffix, size, hash, _hash_type, is_latest,
			is_locked, _key_is_virtual, _overwrite_versions, storage_id, created_by_id,
			branch_id, space_id, created_on_id, _aux, created_at, updated_at)
		values ('$3', '$4', '.txt', $(stat -c %s "$root/.lamindb/$3.txt"),
			'$(lamindb_hash "$root/.lamindb/$3.txt")', 'md5', 1, 0, 1, 0,
			(select id from lamindb_storage where root = $(sqlstr "$root")),
			(select id from lamindb_user where uid = '00000000'), 1, 1, 1, NULL, '$now', '$now')"
}

# lamindb_sql_fingerprint INST: LaminDB's part of the database (the tables of
# LaminDB's apps, lamindb_*, bionty_*, django_*, with their indexes and
# triggers, and every row), as one sha256: what an attach must leave exactly
# as it was.  lamfs's own tables (lamfs_*, and whatever else lamfs adds)
# are not part of it.
lamindb_sql_fingerprint() {
	local inst=$1 t murl like
	murl=$(_e2e_conf "$inst" meta url)
	like="(t like 'lamindb\\_%' escape '\\' or t like 'bionty\\_%' escape '\\' or t like 'django\\_%' escape '\\')"
	{
		if [[ "$murl" == postgres* ]]; then
			for t in $(sql "$inst" "select t from (select tablename as t from pg_tables
					       where schemaname = current_schema()) x where $like order by 1"); do
				echo "== $t"
				sql "$inst" "select * from \"$t\" order by 1"
			done
			sql "$inst" "select t, indexdef from (select tablename as t, indexdef from pg_indexes
				     where schemaname = current_schema()) x where $like order by 2"
			sql "$inst" "select t, tgname from (select c.relname as t, g.tgname from pg_trigger g
				     join pg_class c on c.oid = g.tgrelid
				     join pg_namespace n on n.oid = c.relnamespace
				     where n.nspname = current_schema() and not g.tgisinternal) x
				     where $like order by 1, 2"
		else
			sql "$inst" "select type, name, t, sql from (select type, name, tbl_name as t, sql
				     from sqlite_master where name not like 'lamfs%') x where $like order by name"
			for t in $(sql "$inst" "select t from (select name as t from sqlite_master
					       where type = 'table') x where $like order by 1"); do
				echo "== $t"
				sql "$inst" "select * from \"$t\" order by 1"
			done
		fi
	} | sha256sum | cut -d' ' -f1
}

# lamindb_check_storage_row INST ROOT MARKER: the lamindb_storage row of ROOT
# is LaminDB's for this instance: its root exactly ROOT, its uid the storage
# uid of MARKER (a local copy of the root's storage_uid.txt), its instance
# uid derived from MARKER's instance_id (what LaminDB's save() checks), and
# it is the row lamfs saves into.
lamindb_check_storage_row() {
	local inst=$1 root=$2 marker=$3 iid
	iid=$(marker_field "$marker" instance_id)
	assert_eq "storage row of $root: root, uid and instance uid" \
		"$root|$(marker_field "$marker" storage_uid)|$(lamindb_uid_of_id "$iid")|local" \
		"$(sql "$inst" "select s.root || '|' || s.uid || '|' || s.instance_uid || '|' || s.type
				from lamindb_storage s where s.root = $(sqlstr "$root")")"
	assert_eq "instance uid in the marker derives from its instance_id" \
		"$(lamindb_uid_of_id "$iid")" "$(marker_field "$marker" instance_uid)"
	assert_eq "the storage lamfs saves into" "$root" \
		"$(sql "$inst" "select s.root from lamfs_storage l join lamindb_storage s on s.id = l.storage_id")"
}

# lamindb_rows_pending INST: 0 while lamfs still keeps its records in its own
# interim table "artifact" (lamfs schema 3, docs/schema.md "This round")
# instead of lamindb_artifact: LaminDB's columns of lamfs's saves cannot be
# checked yet.
lamindb_rows_pending() {
	local murl
	murl=$(_e2e_conf "$1" meta url)
	if [[ "$murl" == postgres* ]]; then
		[[ "$(sql "$1" "select to_regclass('artifact') is not null")" == t ]]
	else
		[[ "$(sql "$1" "select count(*) from sqlite_master where type = 'table' and name = 'artifact'")" == 1 ]]
	fi
}

# lamindb_check_columns INST ROOT MARKER: every LaminDB column of every
# artifact row against its meaning (issue 19): uid, stem and version, suffix
# by LaminDB's rules, size, hash and _hash_type of the object's bytes, one
# is_latest per key on the main branch, branch 1, space 1, the storage row of
# ROOT (lamindb_check_storage_row), the anonymous user, _key_is_virtual,
# _aux NULL and created_at/updated_at as Django writes them.
lamindb_check_columns() {
	local inst=$1 root=$2 marker=$3 pg=0 bad
	[[ "$(_e2e_conf "$inst" meta url)" == postgres* ]] && pg=1
	lamindb_check_storage_row "$inst" "$root" "$marker"
	# one line per live row: uid key suffix size hash _hash_type is_latest
	# branch space storage-root user key_is_virtual aux created updated
	sql "$inst" "select a.uid, a.key, a.suffix, a.size, a.hash, a._hash_type,
			    case when a.is_latest then 1 else 0 end, a.branch_id, a.space_id, s.root,
			    u.uid, case when a._key_is_virtual then 1 else 0 end,
			    coalesce(a._aux, 'NULL'), a.created_at, a.updated_at
		     from lamindb_artifact a join lamindb_storage s on s.id = a.storage_id
			  join lamindb_user u on u.id = a.created_by_id
		     where a.key is not null order by a.key, a.uid" >"$WORK/.lcols"
	[[ -s "$WORK/.lcols" ]] || fail "lamindb_check_columns: no artifact rows"
	bad=$(python3 - "$WORK/.lcols" "$root" "$pg" <<'PYEOF'
import base64, collections, hashlib, os, re, sys
rows = [l.rstrip("\n").split("|") for l in open(sys.argv[1]) if l.strip()]
root, pg = sys.argv[2], sys.argv[3] == "1"
out = []
b62 = re.compile(r"^[0-9A-Za-z]{20}$")
# LaminDB's suffix rules for what these tests write
def suffix_of(key):
    name = key.rsplit("/", 1)[-1]
    for comp in (".csv.gz", ".fastq.gz", ".tar.gz", ".vcf.gz"):
        if name.endswith(comp):
            return comp
    i = name.rfind(".")
    return name[i:] if i > 0 else ""
stems = collections.defaultdict(set)
latest = collections.Counter()
django = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6}$")
pgtime = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(\.\d+)?[+-]\d\d(:\d\d)?$")
for r in rows:
    uid, key, suffix, size, h, ht, il, br, sp, sroot, user, virt, aux, ca, ua = r
    w = "%s (%s)" % (key, uid)
    if not b62.match(uid): out.append("%s: uid is not 20 base62 characters" % w)
    stems[key].add(uid[:16])
    if br == "1" and il == "1": latest[key] += 1
    if suffix != suffix_of(key): out.append("%s: suffix %r, LaminDB's %r" % (w, suffix, suffix_of(key)))
    if br != "1": out.append("%s: branch_id %s" % (w, br))
    if sp != "1": out.append("%s: space_id %s" % (w, sp))
    if sroot != root: out.append("%s: storage root %r" % (w, sroot))
    if user != "00000000": out.append("%s: created by user %r" % (w, user))
    if virt != "1": out.append("%s: _key_is_virtual %s" % (w, virt))
    if aux != "NULL": out.append("%s: _aux %r, not NULL" % (w, aux))
    for name, t in (("created_at", ca), ("updated_at", ua)):
        if not (pgtime if pg else django).match(t):
            out.append("%s: %s %r is not Django's form" % (w, name, t))
    obj = os.path.join(root, ".lamindb", uid + suffix)
    if not root.startswith("s3://"):
        try:
            data = open(obj, "rb").read()
        except OSError as e:
            out.append("%s: object %s: %s" % (w, obj, e)); continue
        if str(len(data)) != size: out.append("%s: size %s, object has %d" % (w, size, len(data)))
        if len(data) <= 50 << 20:
            want = base64.urlsafe_b64encode(hashlib.md5(data).digest()).decode()[:22]
            if h != want or ht != "md5": out.append("%s: hash %s/%s, md5 of the bytes %s" % (w, h, ht, want))
for k, s in stems.items():
    if len(s) != 1: out.append("%s: %d stems across its versions" % (k, len(s)))
for k in stems:
    if latest[k] > 1: out.append("%s: %d rows is_latest on branch 1" % (k, latest[k]))
print("; ".join(out))
PYEOF
)
	[[ -z "$bad" ]] || fail "LaminDB columns of $inst: $bad"
}
