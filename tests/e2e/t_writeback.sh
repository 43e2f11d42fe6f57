#!/usr/bin/env bash
# t_writeback.sh — the write-back mode (-o writeback), seen from the user's side:
#  1. 200 small files copied with cp: every close() returns, and soon all 200
#     are listed and read back byte for byte; no storage-ongoing row, staging
#     empty, one object per file.
#  2. An upload held back (backend.put=EIO, many retries, small backoff): the
#     file is hidden from ls, stat and open (on this mount, on a second mount
#     and under /.lamfs/uid), its row is flagged {"so": 1}, staging/<uid> holds
#     its bytes, staging/<uid>.err the last error, and `lamfs status` shows the
#     pending upload and the error; an overwrite held back leaves the old
#     version visible.  Disarmed, the uploads finish and the files appear.
#  3. The daemon killed with 200 uploads pending (save.uploaded=crash: objects
#     stored, flags not cleared), and killed in the middle of a copy
#     (backend.put=crash): a new write-back mount resumes every pending upload;
#     every file is byte-exact, nothing half-stored is ever visible.
#  4. Unmount waits for the queue: the daemon stays alive while uploads fail
#     and exits only once they are all committed; with LAMFS_DRAIN_TIMEOUT it
#     gives up after that many seconds, says so in the log, and the next mount
#     finishes the uploads.
#  5. An upload that keeps failing (backend.put=EACCES, LAMFS_WB_RETRIES=3) is
#     rolled back: no row, no object, no staging file, no .err; logged; a
#     previous version at the key stays latest and readable.
# timeout: 600
# shellcheck disable=SC2016,SC2317 # wait_until evals single-quoted code
. "$(dirname "$0")/lib.sh"
e2e_begin
require_faults

# Many tries, short waits: a held-back upload goes through soon after
# disarming (the backoff doubles from 1 ms up to its cap of 1024 times that,
# so the next try is at most about a second away).
export LAMFS_WB_RETRIES=1000 LAMFS_WB_BACKOFF_MS=1
unset LAMFS_DRAIN_TIMEOUT

inst=$(instance_new inst)
root=$(storage_of "$inst")
mnt=$WORK/mnt
mnt2=$WORK/mnt2

L() { "$LAMFS_BIN" "$@"; }
py() { python3 -c "import json,sys; j=json.load(sys.stdin); print($1)"; }
status_json() { L status "$inst" --json </dev/null | py "$1"; }

# wait_until SECONDS WHAT CODE: poll CODE (shell code) every 0.2 s.
wait_until() {
	local secs=$1 what=$2 code=$3 i
	for ((i = 0; i < secs * 5; i++)); do
		if eval "$code"; then
			return 0
		fi
		sleep 0.2
	done
	fail "$what: still not true after ${secs}s: $code$(log_tail "$inst")"
}

# make_files DIR N: N files of 4-64 KiB of random bytes, f000.bin ...
make_files() {
	python3 - "$1" "$2" <<'EOF'
import os, random, sys
d, n = sys.argv[1], int(sys.argv[2])
os.makedirs(d, exist_ok=True)
for i in range(n):
    with open(os.path.join(d, "f%03d.bin" % i), "wb") as f:
        f.write(os.urandom(random.randint(4096, 65536)))
EOF
}

# Files listed (readdir + stat) under a folder of the mount.
visible() { find "$mnt/$1" -type f 2>/dev/null | wc -l; }
flagged() { sql "$inst" "select count(*) from artifact where _aux is not null"; }
flagged_under() {
	sql "$inst" "select count(*) from artifact where key like '$1/%' and _aux is not null"
}
committed_under() {
	sql "$inst" "select count(*) from artifact where key like '$1/%' and _aux is null
		     and is_latest = 1 and branch_id = 1"
}
# Staging files that are pending uploads (named by uid), no .err, no w.XXXXXX.
staged_uids() { staging_files "$inst" | grep -E '^[0-9A-Za-z]{20}$' || true; }
err_files() { staging_files "$inst" | grep -E '\.err$' || true; }
# fault_swap SPEC: replace the armed faults in one rename; lib's fault_set
# truncates, then writes, so a check in between sees nothing armed.
fault_swap() {
	printf '%s\n' "$1" >"$FAULT_FILE.new"
	mv -f -- "$FAULT_FILE.new" "$FAULT_FILE"
}
# After a daemon was killed: the store is consistent, except for what only
# lamfs-repair removes — temporaries of uploads cut short (.lamindb/.tmp.*)
# and anonymous staging files of writes never closed (staging/w.*).
check_store_after_crash() {
	local known orphans
	known=$(sql "$inst" "select uid || coalesce(suffix, '') from artifact" | LC_ALL=C sort)
	orphans=$(LC_ALL=C comm -23 <(objects "$root") <(printf '%s\n' "$known" | sed '/^$/d'))
	assert_eq "objects without a record, other than upload temporaries" "" \
		"$(grep -v '^\.tmp\.' <<<"$orphans" || true)"
	assert_eq "staging files other than anonymous ones of unclosed writes" "" \
		"$(staging_files "$inst" | grep -v '^w\.' || true)"
	E2E_ALLOW_ORPHANS=1 E2E_ALLOW_STAGING=1 check_store "$inst"
}
# Everything the daemons logged (INSTANCE/lamfs.log; with E2E_SANITIZE=1 the
# daemons run in the foreground and log to $WORK/daemon-stderr.*).  Every
# message the test looks for is unique to one step.
daemon_log() { cat "$inst/lamfs.log" "$WORK"/daemon-stderr.* 2>/dev/null || true; }
uid_at() { sql "$inst" "select uid from artifact where key = $(sqlstr "$1") order by uid desc limit 1"; }

# ------------------------------------------------------------ 1. 200 files
log "1. cp of 200 small files to a write-back mount"
mount_fs "$inst" "$mnt" -o writeback
make_files "$WORK/src200" 200
cp -r "$WORK/src200" "$mnt/many" # every close() returned 0, or cp would fail
# On the writing mount an open waits for the file's upload (LAMFS_WB_WAIT,
# 30 s by default): `cp a b && cat b` works.  The last file copied is the
# last in the queue.
assert_same_file "many/f199.bin read right after the cp" "$WORK/src200/f199.bin" "$mnt/many/f199.bin"
wait_until 180 "all 200 files listed" '[[ $(visible many) == 200 ]]'
wait_until 60 "no storage-ongoing rows left" '[[ $(flagged) == 0 ]]'
diff -r "$WORK/src200" "$mnt/many" >/dev/null ||
	fail "write-back files differ from their sources: $(diff -rq "$WORK/src200" "$mnt/many" | head -5)"
assert_eq "committed rows under many/" 200 "$(committed_under many)"
assert_eq "rows under many/" 200 "$(sql "$inst" "select count(*) from artifact where key like 'many/%'")"
assert_eq "objects in storage" 200 "$(objects "$root" | wc -l)"
assert_eq "staging after the uploads" "" "$(staging_files "$inst")"
check_store "$inst"

# ------------------------------------------------------------ 2. held back
log "2. an upload held back by backend.put=EIO is pending and hidden"
# From here on uploads are held back on purpose: a lookup on the writing mount
# waits 1 s for them (not 30) before it answers without them.
export LAMFS_WB_WAIT=1
remount "$inst" "$mnt" -o writeback
printf 'committed before\n' >"$WORK/old.txt"
cp "$WORK/old.txt" "$mnt/over.txt"
wait_until 30 "over.txt listed" '[[ "$(errno_of stat "$mnt/over.txt")" == OK ]]'
old_uid=$(xattr "$mnt/over.txt" user.lamfs.uid)
objs_before=$(objects "$root")
mount_fs "$inst" "$mnt2" # a second (synchronous) mount of the same instance

fault_set "backend.put=EIO"
random_file "$WORK/held.bin" 100000
random_file "$WORK/new.txt" 5000
cp "$WORK/held.bin" "$mnt/held.bin" # close() returns 0: the upload is deferred
cp "$WORK/new.txt" "$mnt/over.txt"
uid=$(uid_at held.bin)
assert_match "held.bin has a record" '^[0-9A-Za-z]{20}$' "$uid"
new_uid=$(uid_at over.txt)
assert_eq "the overwrite is the next version of over.txt" "${old_uid:0:16}0001" "$new_uid"
assert_eq "held.bin row: flagged storage-ongoing, not latest" '{"so": 1}|0|1' \
	"$(rows_at "$inst" held.bin "_aux, is_latest, branch_id")"
assert_eq "over.txt rows: the old version latest, the new one flagged" \
	"$old_uid||1
$new_uid|{\"so\": 1}|0" "$(rows_at "$inst" over.txt "uid, coalesce(_aux, ''), is_latest")"
for m in "$mnt" "$mnt2"; do
	assert_absent "held.bin while its upload is pending ($m)" "$m/held.bin"
	assert_errno ENOENT open "$m/held.bin"
	grep -qxF held.bin <<<"$(ls -A -- "$m")" && fail "ls $m lists held.bin while its upload is pending"
	assert_errno ENOENT open "$m/.lamfs/uid/$uid"
	assert_same_file "over.txt still reads the committed version ($m)" "$WORK/old.txt" "$m/over.txt"
	assert_eq "over.txt uid ($m)" "$old_uid" "$(xattr "$m/over.txt" user.lamfs.uid)"
done
assert_present "staging/<uid> of held.bin" "$inst/staging/$uid"
assert_same_file "staging/<uid> holds held.bin's bytes" "$WORK/held.bin" "$inst/staging/$uid"
assert_same_file "staging/<uid> holds over.txt's new bytes" "$WORK/new.txt" "$inst/staging/$new_uid"
assert_eq "no object for the pending uploads" "$objs_before" "$(objects "$root")"
wait_until 30 "staging/$uid.err written" '[[ -s "$inst/staging/$uid.err" ]]'
assert_match "staging/$uid.err" '^try [0-9]+ of 1000 failed: Input/output error$' \
	"$(cat "$inst/staging/$uid.err")"

log "lamfs status shows the pending uploads and their last errors"
st=$(L status "$inst" </dev/null)
log "status: $(tr '\n' '|' <<<"$st")"
grep -qxF "storage ongoing: 2 records" <<<"$st" || fail "status: storage ongoing count: $st"
assert_match "status: held.bin pending, with its size" "  $uid +100000 +[0-9]+[smhd]  held.bin" "$st"
assert_match "status: over.txt pending, with its size" "  $new_uid +5000 +[0-9]+[smhd]  over.txt" "$st"
grep -qxF "staging:         2 files, 105000 bytes ($inst/staging)" <<<"$st" ||
	fail "status: staging line (bytes left to upload): $st"
wait_until 30 "both .err files written" '[[ $(err_files | wc -l) == 2 ]]'
st=$(L status "$inst" </dev/null)
grep -qxF "errors:          2" <<<"$st" || fail "status: errors count: $st"
assert_match "status: held.bin's last error" "  $uid  [0-9T:.-]+Z  try [0-9]+ of 1000 failed: Input/output error" "$st"
assert_eq "status --json: pending uids" "$(printf '%s\n' "$uid" "$new_uid" | sort | tr '\n' ' ')" \
	"$(status_json '" ".join(sorted(r["uid"] for r in j["storage_ongoing"])) + " "')"
assert_eq "status --json: error uids" "$(printf '%s\n' "$uid" "$new_uid" | sort | tr '\n' ' ')" \
	"$(status_json '" ".join(sorted(e["uid"] for e in j["errors"])) + " "')"
assert_match "status --json: error message" "Input/output error" \
	"$(status_json 'j["errors"][0]["message"]')"

log "disarmed: the uploads finish, the files appear"
fault_clear
wait_until 60 "held.bin appears" '[[ "$(errno_of stat "$mnt/held.bin")" == OK ]]'
wait_until 60 "no storage-ongoing rows left" '[[ $(flagged) == 0 ]]'
for m in "$mnt" "$mnt2"; do
	assert_same_file "held.bin after its upload ($m)" "$WORK/held.bin" "$m/held.bin"
	assert_same_file "over.txt: the new version ($m)" "$WORK/new.txt" "$m/over.txt"
	assert_eq "held.bin uid ($m)" "$uid" "$(xattr "$m/held.bin" user.lamfs.uid)"
	assert_eq "over.txt uid ($m)" "$new_uid" "$(xattr "$m/over.txt" user.lamfs.uid)"
done
assert_same_file "the old version by uid" "$WORK/old.txt" "$mnt/.lamfs/uid/$old_uid"
assert_eq "over.txt rows after the upload" "$old_uid||0
$new_uid||1" "$(rows_at "$inst" over.txt "uid, coalesce(_aux, ''), is_latest")"
wait_until 10 "the .err files are removed" '[[ -z "$(err_files)" ]]'
assert_eq "staging after the uploads" "" "$(staging_files "$inst")"
assert_eq "status after the uploads" "0 0 0" \
	"$(status_json '"%d %d %d" % (len(j["storage_ongoing"]), j["staging"]["files"], len(j["errors"]))')"
umount_fs "$mnt2"
check_store "$inst"

# ------------------------------------------------------------ 3. killed
log "3a. daemon killed with 200 uploads pending (after their objects were stored)"
fault_set "backend.put=EIO"
make_files "$WORK/srcK" 200
pid=$(daemon_pid "$mnt")
cp -r "$WORK/srcK" "$mnt/killed"
assert_eq "pending uploads after the cp" 200 "$(flagged_under killed)"
assert_eq "staged files after the cp" 200 "$(staged_uids | wc -l)"
assert_eq "nothing listed under killed/ yet" "" "$(ls -A "$mnt/killed")"
# The next try stores the object, then the daemon dies before clearing the flag.
fault_swap "save.uploaded=crash"
wait_pid_gone "$pid" 60 || fail "daemon $pid survived save.uploaded=crash"
dead_umount "$mnt"
assert_eq "pending uploads after the crash" 200 "$(flagged_under killed)"
assert_eq "staged files after the crash" 200 "$(staged_uids | wc -l)"
# A daemon killed while it rewrote an upload's error note leaves
# <uid>.err.tmp behind (it happens here by chance; make it certain): the
# upload that resumes it must remove it with the note.
printf 'try 1 of 1000 failed: Input/output error\n' >"$inst/staging/$(staged_uids | head -n1).err.tmp"
fault_clear
mount_fs "$inst" "$mnt" -o writeback
assert_match "the new mount says it resumes them" "write-back: resuming 200 pending uploads" \
	"$(daemon_log)"
wait_until 180 "all 200 killed/ files listed" '[[ $(visible killed) == 200 ]]'
wait_until 60 "no storage-ongoing rows left" '[[ $(flagged) == 0 ]]'
diff -r "$WORK/srcK" "$mnt/killed" >/dev/null ||
	fail "resumed files differ: $(diff -rq "$WORK/srcK" "$mnt/killed" | head -5)"
assert_eq "committed rows under killed/" 200 "$(committed_under killed)"
assert_same_file "many/ untouched by the crash" "$WORK/src200/f123.bin" "$mnt/many/f123.bin"
assert_eq "staging after the resumed uploads" "" "$(staging_files "$inst")"
check_store_after_crash

log "3b. daemon killed in the middle of a copy (backend.put=crash)"
make_files "$WORK/srcC" 200
mkdir "$mnt/copy"
pid=$(daemon_pid "$mnt")
fault_set "backend.put=EIO"
# One process copies file after file, printing "NAME OK" when close() returned
# 0, else "NAME ERRNO[@step]"; it goes on after errors.
python3 - "$WORK/srcC" "$mnt/copy" >"$WORK/copy.log" 2>&1 <<'EOF' &
import errno, os, sys, time
src, dst = sys.argv[1:3]
for name in sorted(os.listdir(src)):
    data = open(os.path.join(src, name), "rb").read()
    step = "open"
    try:
        fd = os.open(os.path.join(dst, name), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        step = "write"
        view = memoryview(data)
        try:
            while view:
                view = view[os.write(fd, view):]
        finally:
            step = "close"
            os.close(fd)
        print(name, "OK", flush=True)
    except OSError as e:
        print(name, errno.errorcode.get(e.errno, str(e.errno)) + ("" if step == "close" else "@" + step), flush=True)
    time.sleep(0.02)
EOF
copier=$!
wait_until 60 "40 files copied" '[[ $(grep -c " OK$" "$WORK/copy.log" || true) -ge 40 ]]'
fault_swap "backend.put=crash" # the next upload attempt kills the daemon
wait_pid_gone "$pid" 60 || fail "daemon $pid survived backend.put=crash"
wait "$copier"
dead_umount "$mnt"
ok=$(grep -c " OK$" "$WORK/copy.log" || true)
log "copies whose close() returned 0 before the crash: $ok of 200"
[[ $ok -ge 40 && $ok -lt 200 ]] || fail "expected the crash in the middle of the copy, $ok copied"
fault_clear
mount_fs "$inst" "$mnt" -o writeback
wait_until 120 "every copy that returned OK is listed" \
	'[[ $(visible copy) -ge '"$ok"' && $(flagged) == 0 ]]'
# Every copy whose close() returned 0 reads back byte for byte; one whose
# close() failed with the daemon is either gone or complete, never partial.
# (One python for the 200 checks: a process per file costs a minute on a
# loaded machine.)
bad=$(python3 - "$WORK/copy.log" "$WORK/srcC" "$mnt/copy" <<'EOF'
import errno, os, sys
log, src, dst = sys.argv[1:4]
for line in open(log):
    name, res = line.split()
    want = open(os.path.join(src, name), "rb").read()
    try:
        got = open(os.path.join(dst, name), "rb").read()
    except OSError as e:
        if res == "OK" or e.errno != errno.ENOENT:
            print("copy/%s (close said %s): %s" % (name, res, errno.errorcode.get(e.errno, e.errno)))
        continue
    if got != want:
        print("copy/%s (close said %s): %d bytes, not the %d copied" % (name, res, len(got), len(want)))
EOF
)
assert_eq "copies that are missing or partial after resuming" "" "$bad"
assert_eq "uid-named staging files left after resuming" "" "$(staged_uids)"
assert_eq ".err files left after resuming" "" "$(err_files)"
# The file being written when the daemon died was never closed: its anonymous
# staging file (w.XXXXXX) is lamfs-repair's to remove.
check_store_after_crash

# ------------------------------------------------------------ 4. unmount drains
log "4a. unmount waits until the queue has drained"
make_files "$WORK/srcD" 30
fault_set "backend.put=EIO"
cp -r "$WORK/srcD" "$mnt/drain"
assert_eq "pending before the unmount" 30 "$(flagged_under drain)"
pid=$(daemon_pid "$mnt")
fusermount3 -u -- "$mnt"
is_mounted "$mnt" && fail "$mnt still mounted after fusermount3 -u"
sleep 2
pid_alive "$pid" || fail "daemon exited at unmount with 30 uploads pending$(log_tail "$inst")"
assert_eq "still pending while the daemon drains" 30 "$(flagged_under drain)"
assert_match "the log says it waits" "write-back: waiting up to 600 s for 30 pending uploads" \
	"$(daemon_log)"
fault_clear
wait_pid_gone "$pid" 90 || fail "daemon $pid still running 90 s after the uploads could go through"
rm -f -- "$(_e2e_pidfile "$mnt")"
# The daemon is gone: whatever is in the store now is what it left.
assert_eq "committed when the daemon exited" 30 "$(committed_under drain)"
assert_eq "flagged when the daemon exited" 0 "$(flagged)"
assert_eq "staging when the daemon exited" "" "$(staging_files "$inst")"
grep -q "uploads still pending at exit" <(daemon_log) &&
	fail "the daemon says uploads were left pending$(log_tail "$inst")"
check_store_after_crash

log "4b. LAMFS_DRAIN_TIMEOUT: unmount gives up after that long; the next mount finishes"
LAMFS_DRAIN_TIMEOUT=3 mount_fs "$inst" "$mnt" -o writeback
make_files "$WORK/srcT" 5
fault_set "backend.put=EIO"
cp -r "$WORK/srcT" "$mnt/timeout"
pid=$(daemon_pid "$mnt")
fusermount3 -u -- "$mnt"
wait_pid_gone "$pid" 30 || fail "daemon $pid still running 30 s after unmount with LAMFS_DRAIN_TIMEOUT=3"
rm -f -- "$(_e2e_pidfile "$mnt")"
assert_match "the log says what is left" "write-back: 5 uploads still pending at exit" \
	"$(daemon_log)"
assert_eq "left pending, durable" 5 "$(flagged_under timeout)"
assert_eq "their staging files" 5 "$(staged_uids | wc -l)"
fault_clear
mount_fs "$inst" "$mnt" -o writeback
wait_until 60 "the 5 uploads finish on the next mount" '[[ $(visible timeout) == 5 && $(flagged) == 0 ]]'
diff -r "$WORK/srcT" "$mnt/timeout" >/dev/null || fail "timeout/ files differ after resuming"
umount_fs "$mnt"
check_store_after_crash

# ------------------------------------------------------------ 5. rollback
log "5. an upload that keeps failing (EACCES, 3 tries) is rolled back"
LAMFS_WB_RETRIES=3 LAMFS_WB_BACKOFF_MS=1000 mount_fs "$inst" "$mnt" -o writeback
printf 'the version that stays\n' >"$WORK/keep.txt"
cp "$WORK/keep.txt" "$mnt/keep.txt"
wait_until 30 "keep.txt listed" '[[ "$(errno_of stat "$mnt/keep.txt")" == OK ]]'
keep_uid=$(xattr "$mnt/keep.txt" user.lamfs.uid)
rows0=$(sql "$inst" "select count(*) from artifact")
objs0=$(objects_snapshot "$root")
fault_set "backend.put=EACCES"
random_file "$WORK/denied.bin" 20000
printf 'never stored\n' >"$WORK/nope.txt"
cp "$WORK/denied.bin" "$mnt/denied.bin"
cp "$WORK/nope.txt" "$mnt/keep.txt"
duid=$(uid_at denied.bin)
kuid=$(uid_at keep.txt)
assert_match "denied.bin is pending" '^[0-9A-Za-z]{20}$' "$duid"
assert_eq "the overwrite of keep.txt is pending" "${keep_uid:0:16}0001" "$kuid"
wait_until 60 "both saves rolled back" \
	'[[ $(flagged) == 0 && -z "$(rows_at "$inst" denied.bin uid)" ]]'
assert_eq "rows after the rollback" "$rows0" "$(sql "$inst" "select count(*) from artifact")"
assert_eq "keep.txt rows after the rollback" "$keep_uid||1" \
	"$(rows_at "$inst" keep.txt "uid, coalesce(_aux, ''), is_latest")"
assert_eq "objects after the rollback (none new, none rewritten)" "$objs0" "$(objects_snapshot "$root")"
wait_until 10 "no staging file, no .err" '[[ -z "$(staging_files "$inst" | grep -v "^w\.")" ]]'
assert_absent "denied.bin after the rollback" "$mnt/denied.bin"
assert_same_file "keep.txt still reads the old version" "$WORK/keep.txt" "$mnt/keep.txt"
assert_eq "keep.txt uid" "$keep_uid" "$(xattr "$mnt/keep.txt" user.lamfs.uid)"
newlog=$(daemon_log)
for u in "$duid" "$kuid"; do
	assert_match "log: $u rolled back" \
		"write-back $u: giving up after 3 tries \(try 3 of 3 failed: Permission denied\); the save was rolled back" \
		"$newlog"
done
[[ "$newlog" == *"rollback failed"* ]] && fail "log says a rollback failed: $newlog"
assert_eq "status after the rollback" "0 0" \
	"$(status_json '"%d %d" % (len(j["storage_ongoing"]), len(j["errors"]))')"

log "fault cleared: the same copy goes through"
fault_clear
cp "$WORK/denied.bin" "$mnt/denied.bin"
wait_until 30 "denied.bin appears" '[[ "$(errno_of stat "$mnt/denied.bin")" == OK ]]'
assert_same_file "denied.bin after the fault is gone" "$WORK/denied.bin" "$mnt/denied.bin"
umount_fs "$mnt"
rows_end=$(sql "$inst" "select uid, coalesce(_aux, ''), is_latest from artifact order by uid")
check_store_after_crash

log "lamfs-repair removes the leftovers of the crashes, and nothing else"
rc=0
"${LAMFS_REPAIR_BIN:-$(dirname "$LAMFS_BIN")/lamfs-repair}" "$inst" >"$WORK/repair.out" 2>&1 </dev/null || rc=$?
[[ $rc == 0 || $rc == 1 ]] || fail "lamfs-repair: exit $rc: $(cat "$WORK/repair.out")"
check_store "$inst"
assert_eq "rows after the repair" "$rows_end" "$(sql "$inst" "select uid, coalesce(_aux, ''), is_latest from artifact order by uid")"

e2e_pass
