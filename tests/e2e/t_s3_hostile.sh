#!/usr/bin/env bash
# t_s3_hostile.sh — a hostile S3 server end to end (issue #7).  A mount's
# endpoint is tests/s3hostile/faultproxy.py, which forwards every request
# unchanged (signature and Host included) to the real, signature-checking S3
# test server and mutates only the answers, per rule:
#  - uploads: a reset single PUT, a reset part, a 200 answer with an <Error>
#    body to CompleteMultipartUpload (S3 really sends those), an unreadable
#    CreateMultipartUpload answer, a stalled server, a redirect to another
#    host: close() fails with EIO (in bounded time for the stall), and nothing
#    is half-saved — no record (sqlite, lamfs ls, lamfs info), no flagged
#    record, no staging file, no object in the bucket, no open multipart
#    upload (all seen through the real server);
#  - the same faults once: the retry saves the file byte-exact (a
#    CompleteMultipartUpload the server did but whose answer was lost or
#    replaced included);
#  - reads: a truncated, a malformed, a stalled GET and a redirect fail with
#    EIO, never return short or wrong bytes; once, the retry reads the right
#    bytes;
#  - redirects are never followed (a listener on the redirect's host sees no
#    request) and the log says where it pointed;
#  - after every fault the same mount saves again;
#  - lamfs init and lamfs-repair against a malformed or 200-<Error> listing:
#    a clear message, init leaves no instance, repair exits 8 and deletes
#    nothing.
# timeout: 300
. "$(dirname "$0")/lib.sh"
e2e_begin
command -v curl >/dev/null || skip "curl missing"
REPAIR_BIN=${LAMFS_REPAIR_BIN:-$(dirname "$LAMFS_BIN")/lamfs-repair}

s3_server_start "${E2E_S3_PORT:-18660}"
bucket=$E2E_S3_BUCKET
mnt=$WORK/mnt

# ------------------------------------------------------------ the proxy
PX=$WORK/faultproxy
mkdir -p "$PX"
: >"$PX/rules.json"
: >"$PX/proxy.log"
pport=${E2E_FAULTPROXY_PORT:-$((S3TEST_PORT + 5))}
tport=$((pport + 1))
for p in $pport $tport; do
	_e2e_port_busy "$p" && fail "port $p for the fault proxy is busy (set E2E_FAULTPROXY_PORT)"
done
setsid python3 "$REPO/tests/s3hostile/faultproxy.py" --listen "127.0.0.1:$pport" \
	--upstream "${S3_ENDPOINT#http://}" --rules "$PX/rules.json" --log "$PX/proxy.log" \
	--trap "127.0.0.2:$tport" >"$PX/out" 2>&1 </dev/null &
echo $! >"$PX/pid"
proxy_stop() {
	local pid
	pid=$(cat "$PX/pid" 2>/dev/null) || return 0
	kill -TERM "$pid" 2>/dev/null || true
	wait_pid_gone "$pid" 10 || kill -KILL "$pid" 2>/dev/null || true
}
_e2e_exit_hooks+=(proxy_stop)
for ((i = 0; i < 100; i++)); do
	grep -q ready "$PX/out" && break
	sleep 0.1
done
grep -q ready "$PX/out" || fail "fault proxy did not start: $(cat "$PX/out")"
PROXY=http://127.0.0.1:$pport
log "fault proxy at $PROXY (redirect trap 127.0.0.2:$tport) in front of $S3_ENDPOINT"

# rules JSON: the proxy's rules from now on (a new file: its counters restart)
rules() {
	printf '%s\n' "$1" >"$PX/rules.new"
	mv -f "$PX/rules.new" "$PX/rules.json"
}
# fired ID: how many requests rule ID changed
fired() { grep -c "\[rule $1 " "$PX/proxy.log" || true; }

# Small parts, few quick retries, short stall timeout.
export LAMFS_S3_MULTIPART_THRESHOLD=1M LAMFS_S3_PART_SIZE=1M
export LAMFS_S3_ATTEMPTS=3 LAMFS_S3_RETRY_BASE_MS=50
export LAMFS_S3_CONNECT_TIMEOUT=2 LAMFS_S3_STALL_TIMEOUT=2

random_file "$WORK/small.bin" 5000
random_file "$WORK/mp.bin" $((3 * MiB + 5))
random_file "$WORK/r.bin" $((700 * 1024))

inst=$(AWS_ENDPOINT_URL=$PROXY instance_new h --storage "s3://$bucket/h")
root=$(storage_of "$inst")
grep -q "127.0.0.1:$pport" "$inst/lamfs.conf" || fail "the instance does not use the proxy: $(cat "$inst/lamfs.conf")"
mount_fs "$inst" "$mnt"
mkdir "$mnt/k"
cp "$WORK/r.bin" "$mnt/k/r.bin"
cp "$WORK/small.bin" "$mnt/k/kept.bin"

snap() {
	rows0=$(sql "$inst" "select count(*) from artifact")
	objs0=$(objects "$root")
}

# nothing_saved WHAT KEY: no trace of a failed save of KEY anywhere.
nothing_saved() {
	local what=$1 key=$2
	assert_eq "$what: records at $key" 0 \
		"$(sql "$inst" "select count(*) from artifact where key = $(sqlstr "$key")")"
	assert_eq "$what: flagged records" 0 \
		"$(sql "$inst" "select count(*) from artifact where _aux is not null")"
	assert_eq "$what: records in all" "$rows0" "$(sql "$inst" "select count(*) from artifact")"
	assert_eq "$what: staging" "" "$(staging_files "$inst")"
	assert_absent "$what: $key on the mount" "$mnt/$key"
	"$LAMFS_BIN" ls "$inst" | grep -qF "$key" && fail "$what: lamfs ls lists $key"
	"$LAMFS_BIN" info "$inst" "$key" >/dev/null 2>&1 && fail "$what: lamfs info finds $key"
	assert_eq "$what: objects in the bucket" "$objs0" "$(objects "$root")"
	assert_eq "$what: open multipart uploads" "" "$(s3_uploads "$bucket" h/)"
}

# saves_again WHAT: with no rule, the same mount saves a new file.
n_again=0
saves_again() {
	rules '[]'
	n_again=$((n_again + 1))
	cp "$WORK/small.bin" "$mnt/k/again$n_again.bin" || fail "$1: cp afterwards failed$(log_tail "$inst")"
	assert_same_file "$1: the file saved afterwards" "$WORK/small.bin" "$mnt/k/again$n_again.bin"
}

# saved_ok WHAT SRC KEY: KEY holds SRC's bytes, with its record and one object.
saved_ok() {
	local uid
	assert_same_file "$1: bytes" "$2" "$mnt/$3"
	uid=$(xattr "$mnt/$3" user.lamfs.uid)
	assert_eq "$1: record" "1|$(sha256_of "$2")|" \
		"$(rows_at "$inst" "$3" "is_latest, checksum, coalesce(_aux, '')")"
	objects "$root" | grep -qx "$uid.bin" || fail "$1: no object $uid.bin"
	assert_eq "$1: open multipart uploads" "" "$(s3_uploads "$bucket" h/)"
}

# read_to PATH OUT: read PATH to its end into OUT; OK or the errno name.
read_to() {
	python3 - "$1" "$2" <<'EOF'
import errno, os, sys
got, res = bytearray(), 'OK'
try:
    fd = os.open(sys.argv[1], os.O_RDONLY)
    try:
        while True:
            b = os.read(fd, 1 << 20)
            if not b:
                break
            got += b
    finally:
        os.close(fd)
except OSError as e:
    res = errno.errorcode.get(e.errno, str(e.errno))
open(sys.argv[2], 'wb').write(got)
print(res)
EOF
}

# read_fails WHAT: reading k/r.bin fails with EIO and what came before the
# error is a prefix of the true bytes (never wrong bytes).
read_fails() {
	local got
	got=$(read_to "$mnt/k/r.bin" "$WORK/read.out")
	assert_eq "$1: read" EIO "$got"
	cmp -s -n "$(stat -c %s "$WORK/read.out")" "$WORK/read.out" "$WORK/r.bin" ||
		fail "$1: the bytes read before the error are wrong"
	log "$1: EIO after $(stat -c %s "$WORK/read.out") correct bytes"
}

read_ok() {
	assert_eq "$1: read" OK "$(read_to "$mnt/k/r.bin" "$WORK/read.out")"
	assert_same_file "$1: bytes read" "$WORK/r.bin" "$WORK/read.out"
}

OBJ='\\.lamindb/'
# ------------------------------------------------------------------ uploads
log "single PUT reset every time: EIO after every try, nothing saved"
snap
rules '[{"id":"put","method":"PUT","path":"'$OBJ'","query":"!.","action":"reset"}]'
assert_eq "close() with every PUT reset" EIO "$(errno_of copy "$WORK/small.bin" "$mnt/k/p1.bin")"
assert_eq "PUT tries" "$LAMFS_S3_ATTEMPTS" "$(fired put)"
nothing_saved "PUT reset" k/p1.bin
saves_again "PUT reset"

log "single PUT reset once: the retry saves it"
rules '[{"id":"put1","method":"PUT","path":"'$OBJ'","query":"!.","action":"reset","count":1}]'
assert_eq "close() with one PUT reset" OK "$(errno_of copy "$WORK/small.bin" "$mnt/k/p2.bin")"
assert_eq "PUT resets" 1 "$(fired put1)"
saved_ok "PUT reset once" "$WORK/small.bin" k/p2.bin

log "CompleteMultipartUpload answered 200 with an <Error> every time"
snap
rules '[{"id":"cmu","method":"POST","query":"uploadId=","action":"error200"}]'
assert_eq "close() with 200-<Error> completes" EIO "$(errno_of copy "$WORK/mp.bin" "$mnt/k/m1.bin")"
assert_eq "complete tries" "$LAMFS_S3_ATTEMPTS" "$(fired cmu)"
grep -q 'InternalError' "$inst/lamfs.log" || fail "the log does not name InternalError$(log_tail "$inst")"
nothing_saved "complete 200-<Error>" k/m1.bin
saves_again "complete 200-<Error>"

log "CompleteMultipartUpload answered 200 with an <Error> once: the retry completes"
rules '[{"id":"cmu1","method":"POST","query":"uploadId=","action":"error200","count":1}]'
assert_eq "close()" OK "$(errno_of copy "$WORK/mp.bin" "$mnt/k/m2.bin")"
assert_eq "complete errors" 1 "$(fired cmu1)"
saved_ok "complete 200-<Error> once" "$WORK/mp.bin" k/m2.bin

log "CompleteMultipartUpload done by the server, its answer cut off once"
rules '[{"id":"cmut","method":"POST","query":"uploadId=","action":"truncate","bytes":20,"count":1}]'
assert_eq "close()" OK "$(errno_of copy "$WORK/mp.bin" "$mnt/k/m3.bin")"
assert_eq "complete answers cut" 1 "$(fired cmut)"
saved_ok "complete answer lost once" "$WORK/mp.bin" k/m3.bin

log "CompleteMultipartUpload done by the server, answered 200-<Error> once"
rules '[{"id":"cmuf","method":"POST","query":"uploadId=","action":"error200","forward":true,"count":1}]'
assert_eq "close()" OK "$(errno_of copy "$WORK/mp.bin" "$mnt/k/m4.bin")"
saved_ok "complete done, answer replaced" "$WORK/mp.bin" k/m4.bin

log "every part reset: EIO, the upload aborted"
snap
rules '[{"id":"part","method":"PUT","query":"partNumber=","action":"reset"}]'
assert_eq "close() with every part reset" EIO "$(errno_of copy "$WORK/mp.bin" "$mnt/k/m5.bin")"
nothing_saved "parts reset" k/m5.bin
saves_again "parts reset"

log "two parts answered 500: retried, saved"
rules '[{"id":"p500","method":"PUT","query":"partNumber=","action":"status","status":500,"count":2}]'
assert_eq "close()" OK "$(errno_of copy "$WORK/mp.bin" "$mnt/k/m6.bin")"
assert_eq "parts answered 500" 2 "$(fired p500)"
saved_ok "parts 500 twice" "$WORK/mp.bin" k/m6.bin

log "CreateMultipartUpload answered with malformed XML: EIO, the upload it made is aborted"
snap
rules '[{"id":"cre","method":"POST","query":"^uploads","action":"malformed","body":"<InitiateMultipartUploadResult><Bucket>x</Buc"}]'
assert_eq "close() with a malformed create answer" EIO "$(errno_of copy "$WORK/mp.bin" "$mnt/k/m7.bin")"
assert_eq "create answers broken" 1 "$(fired cre)"
nothing_saved "create malformed" k/m7.bin
saves_again "create malformed"

log "CreateMultipartUpload answer cut off once: retried, the lost upload aborted"
rules '[{"id":"cre1","method":"POST","query":"^uploads","action":"truncate","bytes":30,"count":1}]'
assert_eq "close()" OK "$(errno_of copy "$WORK/mp.bin" "$mnt/k/m8.bin")"
saved_ok "create answer lost once" "$WORK/mp.bin" k/m8.bin

log "a part answered without an ETag: EIO"
snap
rules '[{"id":"noetag","method":"PUT","query":"partNumber=","action":"malformed","body":"","drop_etag":true,"count":1}]'
assert_eq "close() with a part without ETag" EIO "$(errno_of copy "$WORK/mp.bin" "$mnt/k/m9.bin")"
nothing_saved "part without ETag" k/m9.bin
saves_again "part without ETag"

log "the server stalls every PUT: EIO in bounded time"
snap
rules '[{"id":"stall","method":"PUT","path":"'$OBJ'","action":"delay","seconds":30,"forward":false}]'
t0=$SECONDS
assert_eq "close() with a stalled server" EIO "$(errno_of copy "$WORK/small.bin" "$mnt/k/s1.bin")"
dt=$((SECONDS - t0))
log "close() returned after ${dt}s ($LAMFS_S3_ATTEMPTS tries, stall timeout ${LAMFS_S3_STALL_TIMEOUT}s)"
((dt <= LAMFS_S3_ATTEMPTS * (LAMFS_S3_STALL_TIMEOUT + 2) + 5)) || fail "close() took ${dt}s with a stalled server"
assert_eq "stalled tries" "$LAMFS_S3_ATTEMPTS" "$(fired stall)"
grep -qi 'timeout\|timed out' "$inst/lamfs.log" || fail "the log does not say it timed out$(log_tail "$inst")"
nothing_saved "stalled PUT" k/s1.bin
saves_again "stalled PUT"

log "a redirect to another host: refused, never followed"
snap
rules '[{"id":"red","method":"PUT","path":"'$OBJ'","action":"redirect","status":307}]'
assert_eq "close() with a redirected PUT" EIO "$(errno_of copy "$WORK/small.bin" "$mnt/k/d1.bin")"
assert_eq "redirects answered (not retried)" 1 "$(fired red)"
grep -q "redirect to http://127.0.0.2:$tport/.* refused" "$inst/lamfs.log" ||
	fail "the log does not say where the redirect pointed$(log_tail "$inst")"
nothing_saved "redirected PUT" k/d1.bin
saves_again "redirected PUT"

# -------------------------------------------------------------------- reads
log "reads: a GET cut off every time fails with EIO, never short"
rules '[{"id":"gt","method":"GET","path":"'$OBJ'","action":"truncate","bytes":1000}]'
read_fails "truncated GET"
assert_eq "GET tries" "$LAMFS_S3_ATTEMPTS" "$(fired gt)"
log "a GET cut off once: the retry reads the right bytes"
rules '[{"id":"gt1","method":"GET","path":"'$OBJ'","action":"truncate","bytes":1000,"count":1}]'
read_ok "truncated GET once"
assert_eq "GETs cut" 1 "$(fired gt1)"
log "a GET answered with other bytes (malformed body): EIO"
rules '[{"id":"gm","method":"GET","path":"'$OBJ'","action":"malformed","body":"<Error>nonsense</Error>"}]'
read_fails "malformed GET"
log "a GET answered 200 with an <Error> body: EIO"
rules '[{"id":"ge","method":"GET","path":"'$OBJ'","action":"error200"}]'
read_fails "200-<Error> GET"
log "a stalled GET once: the retry reads the right bytes"
rules '[{"id":"gs1","method":"GET","path":"'$OBJ'","action":"delay","seconds":5,"count":1}]'
read_ok "stalled GET once"
log "every GET stalled: EIO in bounded time"
rules '[{"id":"gs","method":"GET","path":"'$OBJ'","action":"delay","seconds":30,"forward":false}]'
t0=$SECONDS
read_fails "stalled GET"
dt=$((SECONDS - t0))
((dt <= LAMFS_S3_ATTEMPTS * (LAMFS_S3_STALL_TIMEOUT + 2) + 5)) || fail "read took ${dt}s with a stalled server"
log "a GET redirected (301) to another host: EIO"
rules '[{"id":"gr","method":"GET","path":"'$OBJ'","action":"redirect","status":301}]'
read_fails "redirected GET"
log "a HEAD that under-reports the object's size: EIO, never a short file"
rules '[{"id":"hl","method":"HEAD","path":"'$OBJ'","action":"header","name":"Content-Length","value":"1000"}]'
read_fails "short HEAD"
assert_eq "EIO before any byte" 0 "$(stat -c %s "$WORK/read.out")"
grep -q "its record says" "$inst/lamfs.log" "$WORK"/daemon-stderr.* 2>/dev/null ||
	fail "the log does not say the object's size differs from the record's"
rules '[]'
read_ok "reads after the faults"
assert_same_file "k/kept.bin after all faults" "$WORK/small.bin" "$mnt/k/kept.bin"
assert_eq "requests that followed a redirect" 0 "$(grep -c '^TRAP' "$PX/proxy.log" || true)"
umount_fs "$mnt"
check_store "$inst"

# --------------------------------------------------------- init and repair
log "lamfs init against a malformed listing: refused, no instance"
# init_refused WHAT RULES REGEX
init_refused() {
	local out rc=0 dir=$WORK/refused
	rules "$2"
	out=$(AWS_ENDPOINT_URL=$PROXY "$LAMFS_BIN" init "$dir" --storage "s3://$bucket/refused" 2>&1 </dev/null) || rc=$?
	log "$1: exit $rc: $(grep -v ' WARN \| INFO ' <<<"$out")"
	[[ $rc -ne 0 ]] || fail "$1: init succeeded"
	grep -v ' WARN \| INFO ' <<<"$out" | grep -qE -- "$3" || fail "$1: message does not match /$3/: $out"
	[[ ! -e "$dir/lamfs.conf" ]] || fail "$1: $dir/lamfs.conf left behind"
	assert_eq "$1: objects under the prefix" "" "$(s3_keys "$bucket" refused/)"
}
init_refused "malformed listing" \
	'[{"id":"il","method":"GET","query":"list-type=2","action":"malformed"}]' 'did not answer like S3'
init_refused "200-<Error> listing" \
	'[{"id":"ie","method":"GET","query":"list-type=2","action":"error200"}]' 'HTTP 500 InternalError'
init_refused "redirected listing" \
	'[{"id":"ir","method":"GET","query":"list-type=2","action":"redirect","status":301}]' 'redirect|AWS_REGION'

log "lamfs-repair against a hostile listing: exit 8, nothing deleted"
# an orphan object, which a working repair would delete
assert_eq "PUT of an orphan object" 200 \
	"$(s3_req PUT "/$bucket/h/.lamindb/0rphan0rphan0rph0000.bin" --data-binary orphan)"
objs_before=$(objects "$root")
rows_before=$(sql "$inst" "select uid, key, _aux from artifact order by uid")
# repair_refused WHAT RULES
repair_refused() {
	local out rc=0
	rules "$2"
	out=$(AWS_ENDPOINT_URL=$PROXY "$REPAIR_BIN" "$inst" 2>&1 </dev/null) || rc=$?
	log "$1: lamfs-repair exit $rc: $out"
	REPAIR_OUT=$out
	assert_eq "$1: lamfs-repair exit" 8 "$rc"
	assert_eq "$1: objects" "$objs_before" "$(objects "$root")"
	assert_eq "$1: records" "$rows_before" "$(sql "$inst" "select uid, key, _aux from artifact order by uid")"
}
repair_refused "malformed object listing" \
	'[{"id":"rl","method":"GET","query":"encoding-type=url","action":"malformed"}]'
repair_refused "truncated object listing" \
	'[{"id":"rt","method":"GET","query":"encoding-type=url","action":"truncate","bytes":200}]'
repair_refused "an object listing that never ends" \
	'[{"id":"rn","method":"GET","query":"encoding-type=url","action":"malformed","status":200,"body":"<ListBucketResult><IsTruncated>true</IsTruncated><NextContinuationToken>again</NextContinuationToken></ListBucketResult>"}]'
(($(fired rn) <= 4)) || fail "lamfs-repair asked $(fired rn) times for a listing that never ends"
assert_match "what lamfs-repair says" 'unexpected ListObjectsV2 answer' "$REPAIR_OUT"
# The upload listing answered 200-<Error>: that step fails and says so (exit
# 4); the object listing was sound, so removing the orphan is right.
rules '[{"id":"ru","method":"GET","query":"uploads","action":"error200"}]'
rc=0
out=$("$REPAIR_BIN" "$inst" 2>&1 </dev/null) || rc=$?
log "200-<Error> upload listing: lamfs-repair exit $rc: $out"
assert_eq "200-<Error> upload listing: lamfs-repair exit" 4 "$rc"
assert_match "200-<Error> upload listing: message" 'interrupted uploads failed' "$out"
assert_eq "200-<Error> upload listing: records" "$rows_before" \
	"$(sql "$inst" "select uid, key, _aux from artifact order by uid")"
assert_eq "200-<Error> upload listing: objects" "$(grep -v 0rphan <<<"$objs_before")" "$(objects "$root")"
rules '[]'
rc=0
out=$("$REPAIR_BIN" "$inst" 2>&1 </dev/null) || rc=$?
log "lamfs-repair without faults: exit $rc: $out"
assert_eq "lamfs-repair without faults: exit" 0 "$rc"
check_store "$inst"
assert_eq "open multipart uploads in the bucket" "" "$(s3_uploads "$bucket" "")"
e2e_pass
