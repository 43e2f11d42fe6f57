#!/usr/bin/env bash
# bench/run.sh — lamfs side by side with native disk and its peers, in one run.
#
#   bash bench/run.sh                                  everything (about 1-2 h)
#   BENCH_SCALE=0.02 BENCH_ROUNDS=2 bash bench/run.sh  smoke run (a few minutes)
#   BENCH_TARGETS="native lamfs-local lamfs-local-wb rclone-local" bash bench/run.sh
#
# Runs as root (mounts, drop_caches) on Debian 12 with /dev/fuse.  Installs what
# is missing (fio rclone s3fs gnuplot) with apt-get, builds lamfs (Release) if
# LAMFS_BIN is missing, starts its own S3 test server (tests/s3server) on
# non-default ports when an S3 target is selected, mounts every target fresh
# for every measurement, and runs each workload on each target in alternation
# (round 1: A B C ..., round 2: A B C ..., ...).  Results go to
# bench/results/<timestamp>/: raw.csv (every measurement), summary.csv (median,
# min, max per target and the ratio to the reference), table.txt / table.md,
# chart.png, machine.txt, params.env, log.txt.
#
# Environment (defaults in brackets):
#   BENCH_SCALE     size multiplier for every workload                   [1]
#                   (1: 1 GiB files, 10,000 small files, 100,000 in ls)
#   BENCH_ROUNDS    rounds per workload and target                        [3]
#   BENCH_TARGETS   native lamfs-local lamfs-local-wb rclone-local lamfs-s3 s3fs rclone-s3 http-s3
#                   (http-s3: no file system, the limit: the same bytes sent and
#                   fetched with plain curl requests to the S3 server,
#                   BENCH_HTTP_JOBS in flight; only seqwrite_cp, seqread and
#                   the small files)
#   BENCH_WORKLOADS seqwrite_fio seqwrite_cp seqread randread smallfiles_1 smallfiles_4
#                   ls_l stat rename
#   BENCH_REF       reference target for the ratios                       [native]
#   BENCH_WORK      work directory (same disk as the reference!)          [/var/tmp/lamfs-bench.PID]
#   BENCH_OUT       results directory                       [bench/results/<timestamp>]
#   BENCH_TIMEOUT   seconds one measured command may take                 [1800]
#   BENCH_RANDREAD_SECONDS  fio randread run time                         [20, x scale, >= 5]
#   BENCH_POP_JOBS  parallel writers that fill the ls / rename folders    [4]
#   BENCH_POP_UPLOADS  rclone copy transfers filling them for s3fs, rclone-s3 [16]
#   BENCH_SMOKE     1: a quick check that everything works: BENCH_SCALE=0.01,
#                   BENCH_ROUNDS=2, 2 s of randread (each overridable)
#   BENCH_HTTP_JOBS requests in flight for http-s3                       [4]
#   BENCH_RCLONE_WRITE_BACK  rclone --vfs-write-back (rclone's default 5s) [0s]
#   BENCH_INSTALL   0: never run apt-get                                  [1]
#   BENCH_KEEP      1: keep the work directory                            [0]
#   LAMFS_BIN       lamfs binary                   [build-bench/tools/lamfs, rebuilt from the tree]
#   S3TEST_PORT, S3TEST_BASE  S3 test server ports                        [18680, 18700]
#   S3TEST_WORKERS  its proxy's worker processes                          [2]
#
# "durable" figures time a write until its bytes are in the backend: for
# targets whose close() returns only once the data is stored (lamfs sync mode,
# s3fs, native with fsync) that is the close time, checked against the
# backend; for the others (lamfs -o writeback, rclone) the backend is polled
# until every byte is there; native without fsync (cp, small files) adds an
# fsync of the file / a syncfs of the folder.  "close" figures stop the clock
# when the writing program exits.
set -Eeuo pipefail
shopt -s inherit_errexit
export LC_ALL=C

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$BENCH_DIR/.." && pwd)

BENCH_SMOKE=${BENCH_SMOKE:-0}
if [[ $BENCH_SMOKE == 1 ]]; then
	BENCH_SCALE=${BENCH_SCALE:-0.01}
	BENCH_ROUNDS=${BENCH_ROUNDS:-2}
	BENCH_RANDREAD_SECONDS=${BENCH_RANDREAD_SECONDS:-2}
fi
BENCH_SCALE=${BENCH_SCALE:-1}
BENCH_ROUNDS=${BENCH_ROUNDS:-3}
BENCH_TARGETS=${BENCH_TARGETS:-native lamfs-local lamfs-local-wb rclone-local lamfs-s3 s3fs rclone-s3 http-s3}
BENCH_WORKLOADS=${BENCH_WORKLOADS:-seqwrite_fio seqwrite_cp seqread randread smallfiles_1 smallfiles_4 ls_l stat rename}
BENCH_REF=${BENCH_REF:-native}
BENCH_WORK=${BENCH_WORK:-/var/tmp/lamfs-bench.$$}
BENCH_TIMEOUT=${BENCH_TIMEOUT:-1800}
BENCH_POP_JOBS=${BENCH_POP_JOBS:-4}
BENCH_POP_UPLOADS=${BENCH_POP_UPLOADS:-16}
BENCH_RCLONE_WRITE_BACK=${BENCH_RCLONE_WRITE_BACK:-0s}
BENCH_HTTP_JOBS=${BENCH_HTTP_JOBS:-4}
BENCH_INSTALL=${BENCH_INSTALL:-1}
BENCH_KEEP=${BENCH_KEEP:-0}
LAMFS_BIN=${LAMFS_BIN:-$REPO/build-bench/tools/lamfs}
export S3TEST_PORT=${S3TEST_PORT:-18680}
export S3TEST_BASE=${S3TEST_BASE:-18700}
export S3TEST_WORKERS=${S3TEST_WORKERS:-2}
STAMP=$(date +%Y%m%d-%H%M%S)
BENCH_OUT=${BENCH_OUT:-$BENCH_DIR/results/$STAMP}

ALL_TARGETS="native lamfs-local lamfs-local-wb rclone-local lamfs-s3 s3fs rclone-s3 http-s3"
# what http-s3 (no file system) can do; other workloads skip it
HTTP_WORKLOADS="seqwrite_cp seqread smallfiles_1 smallfiles_4"
ALL_WORKLOADS="seqwrite_fio seqwrite_cp seqread randread smallfiles_1 smallfiles_4 ls_l stat rename"

# ------------------------------------------------------------------ sizes

# scaled N MIN: round(N * BENCH_SCALE), at least MIN
scaled() { awk -v n="$1" -v s="$BENCH_SCALE" -v m="$2" 'BEGIN { v = int(n * s + 0.5); print (v < m ? m : v) }'; }

SEQ_MB=$(scaled 1024 4)                    # workloads 1, 2, 6: one file of SEQ_MB MiB
SEQ_BYTES=$((SEQ_MB * 1024 * 1024))
SMALL_N=$(scaled 10000 100)                # workload 3: SMALL_N files of 4 KiB
SMALL_SIZE=4096
LS_N=$(scaled 100000 200)                  # workload 4: ls -l of LS_N files ...
STAT_N=$(scaled 10000 100)                 # ... and stat of STAT_N of them
((STAT_N <= LS_N)) || STAT_N=$LS_N
REN_N=$(scaled 10000 100)                  # workload 5: rename of a folder of REN_N files
POP_SIZE=64                                # bytes per file in the ls / rename folders
RR_SECONDS=${BENCH_RANDREAD_SECONDS:-$(scaled 20 5)}

# ----------------------------------------------------------------- output

WORK=
S3_STARTED=0
log() { printf '%s %s\n' "$(date +%H:%M:%S)" "$*" | tee -a "$BENCH_OUT/log.txt" >&2; }
die() { log "ERROR: $*"; exit 1; }
# Command output goes to the log only.
quiet() { "$@" >>"$BENCH_OUT/log.txt" 2>&1; }

now() { printf '%s' "$EPOCHREALTIME"; }
sub() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.6f", b - a }'; }
div() { awk -v a="$1" -v b="$2" 'BEGIN { if (b <= 0) print "NA"; else printf "%.6g", a / b }'; }

# emit WORKLOAD METRIC UNIT BETTER(higher|lower) TARGET ROUND VALUE [NOTE]
emit() {
	printf '%s,%s,%s,%s,%s,%s,%s,"%s"\n' "$1" "$2" "$3" "$4" "$5" "$6" "$7" "${8:-}" >>"$BENCH_OUT/raw.csv"
	log "    $5 $1 $2 = $7 $3${8:+ ($8)}"
}

# ------------------------------------------------------------- preflight

in_list() { [[ " $2 " == *" $1 "* ]]; }
has_s3() {
	local t
	for t in $BENCH_TARGETS; do [[ $t == lamfs-s3 || $t == s3fs || $t == rclone-s3 || $t == http-s3 ]] && return 0; done
	return 1
}
has_target() { in_list "$1" "$BENCH_TARGETS"; }

install_deps() {
	local want=(fio python3 curl fuse3 util-linux procps) missing=() p
	{ has_target rclone-local || has_target rclone-s3 || has_s3; } && want+=(rclone)
	has_target s3fs && want+=(s3fs)
	command -v gnuplot >/dev/null || want+=(gnuplot-nox)
	for p in "${want[@]}"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
	done
	((${#missing[@]})) || return 0
	[[ $BENCH_INSTALL == 1 ]] || die "missing packages: ${missing[*]} (BENCH_INSTALL=0)"
	log "installing: ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	quiet apt-get install -y --no-install-recommends "${missing[@]}" ||
		{ quiet apt-get update && quiet apt-get install -y --no-install-recommends "${missing[@]}"; } ||
		die "apt-get install ${missing[*]} failed (see $BENCH_OUT/log.txt)"
}

# The default binary is always brought up to date with the tree (an
# incremental build): a stale one would measure old code.
build_lamfs() {
	if [[ $LAMFS_BIN != "$REPO/build-bench/tools/lamfs" ]]; then
		[[ -x $LAMFS_BIN ]] || die "no lamfs binary at $LAMFS_BIN"
		return 0
	fi
	log "building lamfs (Release) in $REPO/build-bench"
	if ! command -v cmake >/dev/null; then
		quiet bash "$REPO/scripts/deps.sh" || die "scripts/deps.sh failed"
	fi
	quiet cmake -S "$REPO" -B "$REPO/build-bench" -DCMAKE_BUILD_TYPE=Release || die "cmake failed"
	quiet cmake --build "$REPO/build-bench" -j"$(nproc)" || die "build failed"
}

record_machine() {
	local f=$BENCH_OUT/machine.txt
	{
		echo "date:      $(date -Is)"
		echo "host:      $(hostname)"
		echo "cpu:       $(nproc) cores; $(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)"
		echo "memory:    $(awk '/MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)"
		echo "kernel:    $(uname -srm)"
		echo "os:        $(. /etc/os-release && echo "$PRETTY_NAME")"
		echo "work dir:  $WORK ($(findmnt -no SOURCE,FSTYPE,OPTIONS -T "$WORK" | tr -s ' '))"
		echo "load avg:  $(cut -d' ' -f1-3 /proc/loadavg) (start)"
		echo "lamfs:     $LAMFS_BIN ($(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$REPO" diff --quiet HEAD 2>/dev/null || echo '+changes'))"
		echo "fio:       $(fio --version 2>/dev/null || echo -)"
		echo "rclone:    $(rclone version 2>/dev/null | head -n1 || echo -)"
		echo "s3fs:      $(s3fs --version 2>/dev/null | head -n1 || echo -)"
		echo "fuse:      $(fusermount3 --version 2>&1 | head -n1)"
		echo
		echo "--- df -h $WORK"
		df -h "$WORK"
		echo
		echo "--- lsblk"
		lsblk -o NAME,SIZE,ROTA,TYPE,MODEL,FSTYPE,MOUNTPOINT 2>&1 || true
	} >"$f"
	{
		echo "BENCH_SCALE=$BENCH_SCALE"
		echo "BENCH_ROUNDS=$BENCH_ROUNDS"
		echo "BENCH_TARGETS=\"$BENCH_TARGETS\""
		echo "BENCH_WORKLOADS=\"$BENCH_WORKLOADS\""
		echo "BENCH_REF=$BENCH_REF"
		echo "SEQ_MB=$SEQ_MB"
		echo "SMALL_N=$SMALL_N"
		echo "SMALL_SIZE=$SMALL_SIZE"
		echo "LS_N=$LS_N"
		echo "STAT_N=$STAT_N"
		echo "REN_N=$REN_N"
		echo "RR_SECONDS=$RR_SECONDS"
		echo "RCLONE_WRITE_BACK=$BENCH_RCLONE_WRITE_BACK"
		echo "HTTP_JOBS=$BENCH_HTTP_JOBS"
	} >"$BENCH_OUT/params.env"
}

# ------------------------------------------------------------ S3 server

s3_start() {
	export S3TEST_DIR=$WORK/s3server S3TEST_FRESH=1
	local out
	out=$(bash "$REPO/tests/s3server/start.sh" 2>>"$BENCH_OUT/log.txt") || die "S3 test server did not start (see log)"
	S3_STARTED=1
	eval "$out"
	export AWS_ACCESS_KEY_ID=$S3_ACCESS_KEY AWS_SECRET_ACCESS_KEY=$S3_SECRET_KEY
	export AWS_REGION=$S3_REGION AWS_ENDPOINT_URL=$S3_ENDPOINT
	unset AWS_CA_BUNDLE AWS_PROFILE AWS_DEFAULT_PROFILE || true
	cat >"$WORK/rclone.conf" <<-EOF
		[s3bench]
		type = s3
		provider = Other
		endpoint = $S3_ENDPOINT
		access_key_id = $S3_ACCESS_KEY
		secret_access_key = $S3_SECRET_KEY
		region = $S3_REGION
		force_path_style = true
	EOF
	printf '%s:%s\n' "$S3_ACCESS_KEY" "$S3_SECRET_KEY" >"$WORK/s3fs.passwd"
	chmod 600 "$WORK/s3fs.passwd"
	# http-s3's curl: SigV4 by curl itself, the body unsigned (no hashing on
	# our side: the limit), the secret in a file rather than in argv
	cat >"$WORK/curl.conf" <<-EOF
		silent
		show-error
		fail
		fail-early
		aws-sigv4 = "aws:amz:$S3_REGION:s3"
		user = "$S3_ACCESS_KEY:$S3_SECRET_KEY"
		header = "x-amz-content-sha256: UNSIGNED-PAYLOAD"
	EOF
	chmod 600 "$WORK/curl.conf"
	log "S3 test server at $S3_ENDPOINT (state in $S3TEST_DIR)"
}

s3_stop() {
	[[ $S3_STARTED == 1 ]] || return 0
	S3TEST_PURGE=1 bash "$REPO/tests/s3server/stop.sh" >>"$BENCH_OUT/log.txt" 2>&1 || true
	S3_STARTED=0
}

rcl() { rclone --config "$WORK/rclone.conf" "$@"; }

# ------------------------------------------------------------ targets

tdir() { printf '%s/t/%s' "$WORK" "$1"; }
mnt_of() {
	if [[ $1 == native ]]; then printf '%s/dir' "$(tdir native)"; else printf '%s/mnt' "$(tdir "$1")"; fi
}
bucket_of() {
	case $1 in
	lamfs-s3) echo lamfs-bench ;;
	s3fs) echo s3fs-bench ;;
	rclone-s3) echo rclone-bench ;;
	http-s3) echo http-bench ;;
	esac
}

# Durable when close() returns (by contract)?
sync_at_close() { [[ $1 == lamfs-local || $1 == lamfs-s3 || $1 == s3fs || $1 == http-s3 ]]; }

target_init() {
	local t=$1 d
	d=$(tdir "$t")
	mkdir -p "$d"
	case $t in
	native) mkdir -p "$d/dir" ;;
	lamfs-local | lamfs-local-wb) quiet "$LAMFS_BIN" init "$d/inst" ;;
	rclone-local) mkdir -p "$d/backing" ;;
	lamfs-s3)
		quiet rcl mkdir "s3bench:$(bucket_of "$t")"
		quiet "$LAMFS_BIN" init "$d/inst" --storage "s3://$(bucket_of "$t")/lamfs"
		;;
	s3fs | rclone-s3 | http-s3) quiet rcl mkdir "s3bench:$(bucket_of "$t")" ;;
	*) die "unknown target $t (known: $ALL_TARGETS)" ;;
	esac
}

is_mounted() {
	local m
	m=$(readlink -m -- "$1")
	awk -v t="$m" '$5 == t { f = 1 } END { exit !f }' /proc/self/mountinfo
}

# pid of the FUSE daemon whose argv names mount point $1
daemon_pid() {
	local mnt=$1 p a
	for p in /proc/[0-9]*; do
		a=$(tr '\0' '\n' 2>/dev/null <"$p/cmdline") || continue
		grep -qxF -- "$mnt" <<<"$a" || continue
		case $(head -n1 <<<"$a") in
		*lamfs | *rclone | *s3fs) printf '%s\n' "${p#/proc/}"; return 0 ;;
		esac
	done
}

mount_t() {
	local t=$1 d m i pid
	d=$(tdir "$t")
	m=$(mnt_of "$t")
	[[ $t == native || $t == http-s3 ]] && return 0
	mkdir -p "$m"
	is_mounted "$m" && die "$m is mounted already"
	case $t in
	lamfs-local | lamfs-s3) quiet timeout 120 "$LAMFS_BIN" mount "$d/inst" "$m" ;;
	lamfs-local-wb) quiet timeout 120 "$LAMFS_BIN" mount "$d/inst" "$m" -o writeback ;;
	rclone-local | rclone-s3)
		local src=$d/backing
		[[ $t == rclone-s3 ]] && src="s3bench:$(bucket_of "$t")"
		rm -rf "$d/cache"   # a fresh cache: reads come from the backend
		quiet timeout 120 rclone --config "$WORK/rclone.conf" mount "$src" "$m" \
			--vfs-cache-mode writes --vfs-write-back "$BENCH_RCLONE_WRITE_BACK" \
			--cache-dir "$d/cache" --log-file "$d/rclone.log" --log-level NOTICE --daemon
		;;
	s3fs)
		quiet timeout 120 s3fs "$(bucket_of "$t")" "$m" -o "url=$S3_ENDPOINT,use_path_request_style,passwd_file=$WORK/s3fs.passwd,endpoint=$S3_REGION,logfile=$d/s3fs.log,dbglevel=err"
		;;
	esac
	for ((i = 0; i < 300; i++)); do
		is_mounted "$m" && break
		sleep 0.1
	done
	is_mounted "$m" || die "$t: $m did not mount"
	stat "$m" >/dev/null || die "$t: $m mounted but stat fails"
	for ((i = 0; i < 50; i++)); do
		pid=$(daemon_pid "$m")
		[[ -n $pid ]] && break
		sleep 0.1
	done
	[[ -n $pid ]] || die "$t: no daemon found for $m"
	echo "$pid" >"$d/daemon.pid"
}

wait_gone() {
	local pid=$1 secs=$2 i
	for ((i = 0; i < secs * 10; i++)); do
		kill -0 "$pid" 2>/dev/null || return 0
		sleep 0.1
	done
	return 1
}

# Abort the FUSE connection of a hung mount.
abort_conn() {
	local dev minor
	dev=$(awk -v t="$1" '$5 == t { print $3 }' /proc/self/mountinfo | head -n1)
	minor=${dev#*:}
	[[ -n $minor ]] || return 0
	mountpoint -q /sys/fs/fuse/connections 2>/dev/null ||
		mount -t fusectl fusectl /sys/fs/fuse/connections 2>/dev/null || true
	[[ -w /sys/fs/fuse/connections/$minor/abort ]] && echo 1 >"/sys/fs/fuse/connections/$minor/abort" 2>/dev/null
	return 0
}

# umount_t T: unmount, then wait for the daemon to exit (lamfs -o writeback
# drains its upload queue first).
umount_t() {
	local t=$1 d m pid i
	[[ $t == native || $t == http-s3 ]] && return 0
	d=$(tdir "$t")
	m=$(mnt_of "$t")
	pid=$(cat "$d/daemon.pid" 2>/dev/null || true)
	for ((i = 0; i < 50; i++)); do
		is_mounted "$m" || break
		fusermount3 -u -- "$m" 2>/dev/null && break
		sleep 0.2
	done
	is_mounted "$m" && die "$t: cannot unmount $m"
	if [[ -n $pid ]] && ! wait_gone "$pid" "$BENCH_TIMEOUT"; then
		die "$t: daemon $pid still running ${BENCH_TIMEOUT}s after unmount"
	fi
	rm -f "$d/daemon.pid"
}

# force_umount T: after a failure; whatever state the mount is in.
force_umount() {
	local t=$1 d m pid
	[[ $t == native || $t == http-s3 ]] && return 0
	d=$(tdir "$t")
	m=$(mnt_of "$t")
	pid=$(cat "$d/daemon.pid" 2>/dev/null || true)
	if is_mounted "$m"; then
		timeout 20 fusermount3 -u -- "$m" 2>/dev/null || {
			abort_conn "$m"
			fusermount3 -u -z -- "$m" 2>/dev/null || umount -l -- "$m" 2>/dev/null || true
		}
	fi
	if [[ -n $pid ]] && ! wait_gone "$pid" 30; then
		kill -TERM "$pid" 2>/dev/null || true
		wait_gone "$pid" 5 || kill -KILL "$pid" 2>/dev/null || true
	fi
	rm -f "$d/daemon.pid"
}

# Peak RSS (VmHWM, MiB) of the target's daemon since it started.
rss_of() {
	local pid
	pid=$(cat "$(tdir "$1")/daemon.pid" 2>/dev/null || true)
	[[ -n $pid ]] || { echo NA; return; }
	awk '/^VmHWM:/ { printf "%.1f", $2 / 1024; f = 1 } END { if (!f) print "NA" }' "/proc/$pid/status" 2>/dev/null || echo NA
}

# bstate T SUB: "count bytes" of what the target's backend holds (under SUB
# for path-named backends; lamfs names objects by uid, so all of them).
bstate() {
	local t=$1 sub=$2 d out
	d=$(tdir "$t")
	case $t in
	native) find "$d/dir/$sub" -type f -printf '%s\n' 2>/dev/null | awk '{ c++; b += $1 } END { print c + 0, b + 0 }' ;;
	lamfs-local | lamfs-local-wb)
		find "$d/inst/storage/.lamindb" -type f ! -name '.tmp.*' -printf '%s\n' 2>/dev/null |
			awk '{ c++; b += $1 } END { print c + 0, b + 0 }'
		;;
	rclone-local) find "$d/backing/$sub" -type f -printf '%s\n' 2>/dev/null | awk '{ c++; b += $1 } END { print c + 0, b + 0 }' ;;
	lamfs-s3 | s3fs | rclone-s3 | http-s3)
		local path
		path="$(bucket_of "$t")/$sub"
		[[ $t == lamfs-s3 ]] && path="$(bucket_of "$t")/lamfs/.lamindb"
		out=$(rcl size "s3bench:$path" --json 2>>"$BENCH_OUT/log.txt") || { echo "-1 -1"; return; }
		sed -E 's/.*"count":([0-9]+).*"bytes":([0-9]+).*/\1 \2/' <<<"$out"
		;;
	esac
}

# settle T SUB: wait until the backend stops changing (deletes of an earlier
# round may still be going); prints its state.
settle() {
	local t=$1 sub=$2 a b i
	a=$(bstate "$t" "$sub")
	for ((i = 0; i < 300; i++)); do
		sleep 0.2
		b=$(bstate "$t" "$sub")
		[[ $a == "$b" ]] && break
		a=$b
	done
	printf '%s\n' "$a"
}

# durable T SUB BASE ADD_COUNT ADD_BYTES T_CLOSE NATIVE_SYNC
#   Sets DURABLE_T, the time (epoch seconds) at which the bytes written were in
#   the backend (NA if never), and DURABLE_NOTE.  NATIVE_SYNC: what native
#   needs for durability: "none" (fsynced already), a file to fsync, or
#   "fs:DIR" for a syncfs of DIR's file system.
DURABLE_T=
DURABLE_NOTE=
durable() {
	local t=$1 sub=$2 base=$3 addc=$4 addb=$5 tclose=$6 nsync=$7
	local bc bb c b tp i deadline interval=0.05
	DURABLE_NOTE=
	DURABLE_T=NA
	read -r bc bb <<<"$base"
	if [[ $t == native ]]; then
		case $nsync in
		none) DURABLE_T=$tclose; return 0 ;;
		fs:*) sync -f "${nsync#fs:}" ;;
		*) sync "$nsync" ;;
		esac
		DURABLE_T=$(now)
		return 0
	fi
	[[ $t == lamfs-s3 || $t == s3fs || $t == rclone-s3 || $t == http-s3 ]] && interval=0.1
	deadline=$(awk -v a="$(now)" -v w="$BENCH_TIMEOUT" 'BEGIN { printf "%d", a + w }')
	for ((i = 0; ; i++)); do
		read -r c b <<<"$(bstate "$t" "$sub")"
		tp=$(now)
		if ((c >= bc + addc && b >= bb + addb)); then
			if sync_at_close "$t"; then
				if ((i == 0)); then
					tp=$tclose
				else
					DURABLE_NOTE="NOT durable at close: in the backend $(sub "$tclose" "$tp")s later"
				fi
			fi
			break
		fi
		if ((${tp%.*} >= deadline)); then
			DURABLE_NOTE="never complete in the backend"
			return 0
		fi
		sleep "$interval"
	done
	if [[ $t == rclone-local ]]; then
		sync -f "$(tdir "$t")/backing" # rclone's local backend does not fsync
		tp=$(now)
	fi
	DURABLE_T=$tp
}

# wait_in_backend T SUB COUNT BYTES: until the backend under SUB holds at
# least that much (rclone uploads after close; we empty its cache at mount).
wait_in_backend() {
	local t=$1 sub=$2 want_c=$3 want_b=$4 c b i
	for ((i = 0; i < BENCH_TIMEOUT * 5; i++)); do
		read -r c b <<<"$(bstate "$t" "$sub")"
		((c >= want_c && b >= want_b)) && return 0
		sleep 0.2
	done
	die "$t: $sub never reached $want_c objects / $want_b bytes in the backend"
}

drop_caches() {
	sync
	echo 3 >/proc/sys/vm/drop_caches 2>/dev/null || log "warning: cannot drop caches"
}

# tmo CMD...: run CMD with the time limit, in a process group of its own
# (recorded, so that cleanup can end it and its children on Ctrl-C or kill),
# in the background with `wait`, so that a signal is handled at once.
tmo() {
	local pid rc=0
	setsid timeout -k 10 "$BENCH_TIMEOUT" "$@" &
	pid=$!
	: >"$WORK/.pgid.$pid"
	wait "$pid" || rc=$?
	rm -f "$WORK/.pgid.$pid"
	return "$rc"
}

# --------------------------------------------------------- preparation

SRC_SEQ=   # SEQ_MB of random bytes, the source of cp
SRC_READ=  # other SEQ_MB of random bytes, the file read back

make_sources() {
	SRC_SEQ=$WORK/src-seq.bin
	SRC_READ=$WORK/src-read.bin
	head -c "$SEQ_BYTES" /dev/urandom >"$SRC_SEQ"
	head -c "$SEQ_BYTES" /dev/urandom >"$SRC_READ"
	# http-s3 sends the cp source as BENCH_HTTP_JOBS pieces, one request each
	has_target http-s3 && split -n "$BENCH_HTTP_JOBS" -d -a 2 "$SRC_SEQ" "$WORK/src-seq.part."
	return 0
}

# ------------------------------------------------------- http-s3 (the limit)
# Plain curl against the same server: what no file system on it can beat.
# Each curl process sends its requests one after the other on one connection;
# BENCH_HTTP_JOBS processes run at once.

http_url() { printf '%s/%s/%s' "$S3_ENDPOINT" "$(bucket_of http-s3)" "$1"; }

# ensure_readfile T: r/read.bin (SEQ_MB) is in the target.  Mounts and
# unmounts (which also drains lamfs's write-back queue) when it must write it.
ensure_readfile() {
	local t=$1 m
	m=$(mnt_of "$t")
	[[ -f $(tdir "$t")/read.done ]] && return 0
	if [[ $t == http-s3 ]]; then
		tmo curl -K "$WORK/curl.conf" -T "$SRC_READ" "$(http_url r/read.bin)" -o /dev/null
		touch "$(tdir "$t")/read.done"
		return 0
	fi
	mount_t "$t"
	log "    $t: writing the ${SEQ_MB} MiB file to read"
	mkdir -p "$m/r"
	tmo cp "$SRC_READ" "$m/r/read.bin"
	[[ $t == rclone-local || $t == rclone-s3 ]] && wait_in_backend "$t" r 1 "$SEQ_BYTES"
	umount_t "$t"
	touch "$(tdir "$t")/read.done"
}

# ensure_population T NAME DIR COUNT: DIR (relative to the mount) holds COUNT
# files of POP_SIZE bytes, written by BENCH_POP_JOBS writers through the mount;
# for s3fs and rclone-s3 (about 10 and 50 files/s through their mounts here)
# written locally and uploaded into the bucket with `rclone copy`.
ensure_population() {
	local t=$1 name=$2 rel=$3 n=$4 m t0 t1 how
	m=$(mnt_of "$t")
	[[ -f $(tdir "$t")/pop-$name.done ]] && return 0
	mount_t "$t"
	mkdir -p "$m/$rel"
	t0=$(now)
	if [[ $t == s3fs || $t == rclone-s3 ]]; then
		how="rclone copy into the bucket, $BENCH_POP_UPLOADS transfers"
		local src=$WORK/pop-$name
		rm -rf "$src"
		mkdir -p "$src"
		python3 "$BENCH_DIR/files.py" write "$src" "$n" "$BENCH_POP_JOBS" "$POP_SIZE" >/dev/null
		tmo rclone --config "$WORK/rclone.conf" copy "$src" "s3bench:$(bucket_of "$t")/$rel" \
			--transfers "$BENCH_POP_UPLOADS" --checkers "$BENCH_POP_UPLOADS" --no-check-dest \
			>>"$BENCH_OUT/log.txt" 2>&1
		rm -rf "$src"
	else
		how="$BENCH_POP_JOBS writers through the mount"
		tmo python3 "$BENCH_DIR/files.py" write "$m/$rel" "$n" "$BENCH_POP_JOBS" "$POP_SIZE" >/dev/null
	fi
	[[ $t == rclone-local || $t == rclone-s3 ]] && wait_in_backend "$t" "$rel" "$n" $((n * POP_SIZE))
	t1=$(now)
	log "    $t: $n files into $rel in $(sub "$t0" "$t1")s ($(div "$n" "$(sub "$t0" "$t1")") files/s; $how)"
	umount_t "$t"
	touch "$(tdir "$t")/pop-$name.done"
}

# cold_mount T: drop the caches, mount fresh.
cold_mount() {
	drop_caches
	mount_t "$1"
}

# ------------------------------------------------------------ workloads
# w_<workload> TARGET ROUND: one measurement on a fresh mount.

seqwrite() {  # seqwrite WORKLOAD T R CMD...: shared by fio and cp
	local w=$1 t=$2 r=$3 m f base t0 t1 t2 rss nsync
	shift 3
	mount_t "$t"
	m=$(mnt_of "$t")
	mkdir -p "$m/w"
	f=$m/w/$w-$r.bin
	base=$(settle "$t" w)
	[[ $w == seqwrite_cp ]] && cat "$SRC_SEQ" >/dev/null   # the source comes from memory
	nsync=none
	[[ $w == seqwrite_cp ]] && nsync=$f
	t0=$(now)
	"$@" "$f"
	t1=$(now)
	durable "$t" w "$base" 1 "$SEQ_BYTES" "$t1" "$nsync"
	t2=$DURABLE_T
	rss=$(rss_of "$t")
	emit "$w" close_MBps MB/s higher "$t" "$r" "$(div "$SEQ_MB" "$(sub "$t0" "$t1")")"
	if [[ $t2 == NA ]]; then
		emit "$w" durable_MBps MB/s higher "$t" "$r" NA "$DURABLE_NOTE"
	else
		emit "$w" durable_MBps MB/s higher "$t" "$r" "$(div "$SEQ_MB" "$(sub "$t0" "$t2")")" "$DURABLE_NOTE"
	fi
	[[ $t == native || $t == http-s3 ]] || emit "$w" rss_MiB MiB lower "$t" "$r" "$rss"
	rm -f "$f"
	[[ $t == http-s3 ]] && quiet rcl delete "s3bench:$(bucket_of "$t")/w"
	umount_t "$t"
}

run_fio_write() {
	tmo fio --name=seqwrite --filename="$1" --rw=write --bs=1M --size="${SEQ_MB}M" \
		--end_fsync=1 --ioengine=psync --fallocate=none --output=/dev/null
}
run_cp() { tmo cp "$SRC_SEQ" "$1"; }

# http-s3's cp: the pieces of the source, one PUT each, all at once (the
# name is the prefix the pieces are stored under)
run_http_put() {
	local p i=0 pids=() rc=0
	for p in "$WORK"/src-seq.part.*; do
		tmo curl -K "$WORK/curl.conf" -T "$p" "$(http_url "${1#"$(mnt_of http-s3)/"}.$i")" -o /dev/null &
		pids+=($!)
		i=$((i + 1))
	done
	for p in "${pids[@]}"; do wait "$p" || rc=$?; done
	return "$rc"
}

w_seqwrite_fio() { seqwrite seqwrite_fio "$1" "$2" run_fio_write; }
w_seqwrite_cp() {
	if [[ $1 == http-s3 ]]; then
		cat "$WORK"/src-seq.part.* >/dev/null
		seqwrite seqwrite_cp "$1" "$2" run_http_put
	else
		seqwrite seqwrite_cp "$1" "$2" run_cp
	fi
}

# http-s3's read: BENCH_HTTP_JOBS ranged GETs of equal parts, all at once
run_http_get() {
	local j n=$BENCH_HTTP_JOBS a b pids=() rc=0 p
	for ((j = 0; j < n; j++)); do
		a=$((SEQ_BYTES * j / n))
		b=$((SEQ_BYTES * (j + 1) / n - 1))
		tmo curl -K "$WORK/curl.conf" -r "$a-$b" "$(http_url r/read.bin)" -o /dev/null &
		pids+=($!)
	done
	for p in "${pids[@]}"; do wait "$p" || rc=$?; done
	return "$rc"
}

w_seqread() {
	local t=$1 r=$2 m t0 t1
	ensure_readfile "$t"
	if [[ $t == http-s3 ]]; then
		drop_caches
		t0=$(now)
		run_http_get
		t1=$(now)
		emit seqread MBps MB/s higher "$t" "$r" "$(div "$SEQ_MB" "$(sub "$t0" "$t1")")"
		return 0
	fi
	cold_mount "$t"
	m=$(mnt_of "$t")
	t0=$(now)
	tmo dd if="$m/r/read.bin" of=/dev/null bs=1M status=none
	t1=$(now)
	emit seqread MBps MB/s higher "$t" "$r" "$(div "$SEQ_MB" "$(sub "$t0" "$t1")")"
	[[ $t == native ]] || emit seqread rss_MiB MiB lower "$t" "$r" "$(rss_of "$t")"
	umount_t "$t"
}

w_randread() {
	local t=$1 r=$2 m out iops
	ensure_readfile "$t"
	cold_mount "$t"
	m=$(mnt_of "$t")
	out=$(tdir "$t")/fio-randread.json
	tmo fio --name=randread --filename="$m/r/read.bin" --readonly --rw=randread --bs=4k \
		--size="${SEQ_MB}M" --ioengine=psync --runtime="$RR_SECONDS" --time_based \
		--norandommap --randrepeat=0 --output-format=json --output="$out"
	iops=$(python3 -c 'import json,sys; s=open(sys.argv[1]).read(); print("%.1f" % json.loads(s[s.index("{"):])["jobs"][0]["read"]["iops"])' "$out")
	emit randread iops IOPS higher "$t" "$r" "$iops"
	umount_t "$t"
}

smallfiles() {  # smallfiles JOBS T R
	local jobs=$1 t=$2 r=$3 w=smallfiles_$1 m d base t0 t1 t2 rss el
	mount_t "$t"
	m=$(mnt_of "$t")
	d=$m/w/$w-$r
	mkdir -p "$d"
	base=$(settle "$t" w)
	[[ $t == http-s3 ]] && http_small_prepare "$jobs" "$w-$r"
	t0=$(now)
	if [[ $t == http-s3 ]]; then
		http_small_put "$jobs"
		el=
	else
		tmo python3 "$BENCH_DIR/files.py" write "$d" "$SMALL_N" "$jobs" "$SMALL_SIZE" >"$WORK/out.txt"
		el=$(<"$WORK/out.txt")
	fi
	t1=$(now)
	durable "$t" w "$base" "$SMALL_N" $((SMALL_N * SMALL_SIZE)) "$t1" "fs:$d"
	t2=$DURABLE_T
	rss=$(rss_of "$t")
	emit "$w" close_files_per_s files/s higher "$t" "$r" "$(div "$SMALL_N" "$(sub "$t0" "$t1")")"
	if [[ $t2 == NA ]]; then
		emit "$w" durable_files_per_s files/s higher "$t" "$r" NA "$DURABLE_NOTE"
	else
		emit "$w" durable_files_per_s files/s higher "$t" "$r" "$(div "$SMALL_N" "$(sub "$t0" "$t2")")" "$DURABLE_NOTE"
	fi
	[[ $t == native || $t == http-s3 ]] || emit "$w" rss_MiB MiB lower "$t" "$r" "$rss"
	: "$el"
	tmo rm -rf "$d"
	[[ $t == http-s3 ]] && quiet rcl delete "s3bench:$(bucket_of "$t")/w"
	umount_t "$t"
}
# http-s3's small files: the same files (written locally first, untimed),
# one curl per writer with that writer's files as a config list
http_small_prepare() {
	local jobs=$1 name=$2 src=$WORK/http-small j f base
	base=$(http_url "w/$name")
	rm -rf "$src"
	mkdir -p "$src"
	python3 "$BENCH_DIR/files.py" write "$src" "$SMALL_N" "$jobs" "$SMALL_SIZE" >/dev/null
	for ((j = 0; j < jobs; j++)); do
		for f in "$src"/f"${j}"_*; do
			printf 'upload-file = "%s"\nurl = "%s"\noutput = "/dev/null"\n' "$f" \
				"$base/${f##*/}"
		done >"$WORK/http-small.$j.conf"
	done
	cat "$src"/* >/dev/null
}

http_small_put() {
	local jobs=$1 j pids=() rc=0 p
	for ((j = 0; j < jobs; j++)); do
		tmo curl -K "$WORK/curl.conf" -K "$WORK/http-small.$j.conf" &
		pids+=($!)
	done
	for p in "${pids[@]}"; do wait "$p" || rc=$?; done
	return "$rc"
}

w_smallfiles_1() { smallfiles 1 "$@"; }
w_smallfiles_4() { smallfiles 4 "$@"; }

w_ls_l() {
	local t=$1 r=$2 m t0 t1
	ensure_population "$t" ls m/ls "$LS_N"
	cold_mount "$t"
	m=$(mnt_of "$t")
	t0=$(now)
	tmo ls -l "$m/m/ls" >/dev/null
	t1=$(now)
	emit ls_l seconds s lower "$t" "$r" "$(sub "$t0" "$t1")"
	umount_t "$t"
}

w_stat() {
	local t=$1 r=$2 m el
	ensure_population "$t" ls m/ls "$LS_N"
	cold_mount "$t"
	m=$(mnt_of "$t")
	tmo python3 "$BENCH_DIR/files.py" stat "$m/m/ls" "$LS_N" "$STAT_N" "$BENCH_POP_JOBS" >"$WORK/out.txt"
	el=$(<"$WORK/out.txt")
	emit stat seconds s lower "$t" "$r" "$el"
	umount_t "$t"
}

w_rename() {
	local t=$1 r=$2 m from to t0 t1
	ensure_population "$t" ren m/ren/a "$REN_N"
	cold_mount "$t"
	m=$(mnt_of "$t")
	if [[ -d $m/m/ren/a ]]; then from=a to=b; else from=b to=a; fi
	t0=$(now)
	tmo mv "$m/m/ren/$from" "$m/m/ren/$to"
	t1=$(now)
	emit rename seconds s lower "$t" "$r" "$(sub "$t0" "$t1")"
	umount_t "$t"
}

run_one() {
	local w=$1 t=$2 r=$3 rc
	[[ $t == http-s3 ]] && ! in_list "$w" "$HTTP_WORKLOADS" && return 0
	log "  $w round $r: $t"
	# in the background with `wait`: a signal to this script is handled at
	# once (bash would wait for a foreground subshell to finish first)
	set +e
	(
		set -e
		trap - INT TERM
		trap 'log "    failed (exit $?): $BASH_COMMAND"' ERR
		"w_$w" "$t" "$r"
	) &
	RUN_PID=$!
	wait "$RUN_PID"
	rc=$?
	RUN_PID=
	set -e
	if ((rc != 0)); then
		emit "$w" error - - "$t" "$r" NA "failed with exit $rc$( ((rc == 124)) && echo ' (timeout)')"
		force_umount "$t"
	fi
	return 0
}

# ---------------------------------------------------------------- cleanup

RUN_PID=
cleanup() {
	local rc=$? t p f
	trap - EXIT ERR INT TERM
	set +e
	# a measurement still running (after a signal): end it, then what it started
	if [[ -n $RUN_PID ]] && kill -0 "$RUN_PID" 2>/dev/null; then
		log "interrupted: stopping the measurement and cleaning up"
		kill -TERM "$RUN_PID" 2>/dev/null
		wait_gone "$RUN_PID" 10 || kill -KILL "$RUN_PID" 2>/dev/null
	fi
	# commands tmo started and never saw end: their process groups, led by
	# our `timeout` (checked, so a recycled pid is never hit)
	if [[ -n $WORK ]]; then
		for f in "$WORK"/.pgid.*; do
			[[ -e $f ]] || continue
			p=${f##*.}
			[[ $(cat "/proc/$p/comm" 2>/dev/null) == timeout ]] || continue
			kill -TERM -- "-$p" 2>/dev/null
			wait_gone "$p" 10 || kill -KILL -- "-$p" 2>/dev/null
		done
	fi
	if [[ -n $WORK ]]; then
		for t in $ALL_TARGETS; do force_umount "$t" 2>/dev/null; done
		# anything else still mounted below WORK
		awk -v b="$WORK/" 'index($5, b) == 1 { print $5 }' /proc/self/mountinfo | sort -r |
			while read -r m; do
				timeout 20 fusermount3 -u -- "$m" 2>/dev/null || fusermount3 -u -z -- "$m" 2>/dev/null ||
					umount -l -- "$m" 2>/dev/null
			done
	fi
	s3_stop
	if [[ -n $WORK && -d $WORK ]]; then
		if [[ $BENCH_KEEP == 1 ]]; then
			log "work directory kept: $WORK"
		else
			rm -rf --one-file-system -- "$WORK"
		fi
	fi
	exit "$rc"
}

# ------------------------------------------------------------------- main

main() {
	[[ $(id -u) == 0 ]] || { echo "bench/run.sh: run as root (mounts, drop_caches)" >&2; exit 2; }
	[[ -e /dev/fuse ]] || { echo "bench/run.sh: /dev/fuse is missing" >&2; exit 2; }
	local t w r
	for t in $BENCH_TARGETS; do in_list "$t" "$ALL_TARGETS" || { echo "unknown target $t (known: $ALL_TARGETS)" >&2; exit 2; }; done
	for w in $BENCH_WORKLOADS; do in_list "$w" "$ALL_WORKLOADS" || { echo "unknown workload $w (known: $ALL_WORKLOADS)" >&2; exit 2; }; done
	mkdir -p "$BENCH_OUT"
	[[ -e $BENCH_DIR/results/latest || -L $BENCH_DIR/results/latest ]] && rm -f "$BENCH_DIR/results/latest"
	[[ $BENCH_OUT == "$BENCH_DIR/results/"* ]] && ln -s "$(basename "$BENCH_OUT")" "$BENCH_DIR/results/latest"
	echo "workload,metric,unit,better,target,round,value,note" >"$BENCH_OUT/raw.csv"
	trap cleanup EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM

	install_deps
	build_lamfs
	mkdir -p "$BENCH_WORK"
	WORK=$(cd "$BENCH_WORK" && pwd)
	record_machine
	log "lamfs benchmark: scale $BENCH_SCALE ($SEQ_MB MiB files, $SMALL_N small files, ls of $LS_N, stat of $STAT_N, rename of $REN_N), $BENCH_ROUNDS rounds"
	log "targets: $BENCH_TARGETS"
	log "results: $BENCH_OUT"
	has_s3 && s3_start
	for t in $BENCH_TARGETS; do target_init "$t"; done
	make_sources

	for w in $BENCH_WORKLOADS; do
		log "workload $w"
		for ((r = 1; r <= BENCH_ROUNDS; r++)); do
			for t in $BENCH_TARGETS; do run_one "$w" "$t" "$r"; done
		done
	done
	echo "load avg:  $(cut -d' ' -f1-3 /proc/loadavg) (end)" >>"$BENCH_OUT/machine.txt"
	python3 "$BENCH_DIR/report.py" "$BENCH_OUT" | tee -a "$BENCH_OUT/log.txt"
}

main "$@"
