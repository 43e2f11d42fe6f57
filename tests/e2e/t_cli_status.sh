#!/usr/bin/env bash
# t_cli_status.sh — `lamfs status` (text and --json) on a real instance:
# not mounted; mounted (mount point and daemon pid); an interrupted save (a
# `lamfs save` killed after its flagged record was committed) shown as a
# storage-ongoing record with its staging file, hidden from ls but listed by
# ls --all, info and versions, refused by cat, and resumed (same uid) by
# saving again; a write-back mount whose uploads are denied shows the pending
# upload and its last error until the fault is cleared.
# timeout: 300
. "$(dirname "$0")/lib.sh"
e2e_begin

L() { "$LAMFS_BIN" "$@"; }

py() { python3 -c "import json,sys; j=json.load(sys.stdin); print($1)"; }
status_json() { L status "$inst" --json | py "$1"; }

inst=$(instance_new inst)
mnt=$WORK/mnt

log "not mounted"
run L status "$inst"
assert_eq "status exit" 0 "$RC"
grep -qxF "instance:        $inst" <<<"$OUT" || fail "status: no instance line: $OUT"
grep -qxF "mounted:         no" <<<"$OUT" || fail "status: should say not mounted: $OUT"
grep -qxF "storage ongoing: 0 records" <<<"$OUT" || fail "status: storage ongoing: $OUT"
grep -qxF "errors:          0" <<<"$OUT" || fail "status: errors: $OUT"
assert_eq "status --json, not mounted" "False 0 0 0 0 False" \
	"$(status_json '"%s %d %d %d %d %s" % (j["mounted"], len(j["mounts"]), len(j["storage_ongoing"]), j["staging"]["files"], len(j["errors"]), j["repair_running"])')"

log "mounted: the mount point and the daemon holding the lock"
mount_fs "$inst" "$mnt"
pid=$(daemon_pid "$mnt")
assert_eq "status --json, mounted" "True $mnt" \
	"$(status_json '"%s %s" % (j["mounted"], " ".join(m["mountpoint"] for m in j["mounts"]))')"
assert_eq "status --json: the daemon holds the lock shared" "$pid:False" \
	"$(status_json '" ".join("%d:%s" % (h["pid"], h["exclusive"]) for h in j["lock_holders"])')"
run L status "$inst"
grep -qxF "mounted:         yes (daemon pid $pid)" <<<"$OUT" || fail "status: mounted line: $OUT"
grep -q "^  on $mnt (" <<<"$OUT" || fail "status: mount point line: $OUT"
umount_fs "$mnt"
assert_eq "status after umount" "False" "$(status_json 'j["mounted"]')"

if [[ "${E2E_FAULTS:-1}" == 1 ]]; then
	log "an interrupted save: killed after its flagged record was committed"
	printf 'interrupted bytes\n' >"$WORK/int.txt"
	RC=0
	LAMFS_FAULT=save.flagged=crash "$LAMFS_BIN" save "$inst" "$WORK/int.txt" --key int/x.txt \
		>/dev/null 2>&1 || RC=$?
	assert_eq "save killed by the crash point (SIGKILL)" 137 "$RC"
	uid=$(sql "$inst" "select uid from artifact where key = 'int/x.txt'")
	assert_match "flagged record" '^[0-9A-Za-z]{20}$' "$uid"
	run L status "$inst"
	grep -qxF "storage ongoing: 1 record" <<<"$OUT" || fail "status: storage ongoing count: $OUT"
	assert_match "status: the record with size, age and key" "  $uid +18 +[0-9]+s  int/x.txt" "$OUT"
	# lamfs save stores from the file itself: nothing in staging
	grep -qxF "staging:         0 files, 0 bytes ($inst/staging)" <<<"$OUT" ||
		fail "status: staging line: $OUT"
	assert_eq "status --json: storage ongoing" "$uid int/x.txt 18 0 0" \
		"$(status_json '" ".join(str(x) for x in (j["storage_ongoing"][0]["uid"], j["storage_ongoing"][0]["key"], j["storage_ongoing"][0]["size"], j["staging"]["files"], j["staging"]["bytes"]))')"
	assert_match "status --json: age" '^[0-9]+$' "$(status_json 'j["storage_ongoing"][0]["age_seconds"]')"

	log "ls hides it, ls --all / info / versions show it, cat refuses it"
	assert_eq "ls hides a storage-ongoing record" "" "$(L ls "$inst")"
	run L ls "$inst" --all -l
	assert_match "ls --all -l lists it flagged" "  storage-ongoing  int/x.txt$" "$OUT"
	assert_eq "ls --all --json" "True" "$(L ls "$inst" --all --json | py 'j[0]["storage_ongoing"]')"
	run L info "$inst" "$uid"
	grep -qxF "storage ongoing: yes" <<<"$OUT" || fail "info of a flagged uid: $OUT"
	run L info "$inst" int/x.txt
	assert_eq "info by key does not see it" 1 "$RC"
	run L versions "$inst" int/x.txt
	assert_match "versions marks it" "^$uid  0000 +18  .*  storage-ongoing$" "$OUT"
	run L cat "$inst" "$uid"
	assert_eq "cat of a flagged uid: exit" 1 "$RC"
	assert_match "cat of a flagged uid: why" "storage of $uid is still ongoing" "$ERR"
	assert_eq "cat of a flagged uid: no bytes" "" "$OUT"

	log "saving the same bytes again resumes it: same uid, flag cleared"
	run L save "$inst" "$WORK/int.txt" --key int/x.txt
	assert_eq "resume: exit" 0 "$RC"
	assert_match "resume: same uid" "^$uid  " "$OUT"
	assert_eq "status after the resume" "0 0" \
		"$(status_json '"%d %d" % (len(j["storage_ongoing"]), j["staging"]["files"])')"
	check_store "$inst"

	log "write-back: a denied upload is pending, with its last error, until it succeeds"
	export LAMFS_WB_RETRIES=10000 LAMFS_WB_BACKOFF_MS=50
	mount_fs "$inst" "$mnt" -o writeback
	fault_set "backend.put=EACCES"
	printf 'written back\n' >"$WORK/wb.txt"
	cp "$WORK/wb.txt" "$mnt/wb.txt"
	for ((i = 0; i < 100; i++)); do
		[[ "$(status_json 'len(j["errors"])')" -ge 1 ]] && break
		sleep 0.2
	done
	wb=$(sql "$inst" "select uid from artifact where key = 'wb.txt'")
	assert_eq "status --json: the pending upload" "wb.txt 13" \
		"$(status_json '" ".join(str(r[f]) for r in j["storage_ongoing"] for f in ("key","size"))')"
	assert_eq "status --json: its error, by uid" "$wb" "$(status_json 'j["errors"][0]["uid"]')"
	assert_match "status --json: the error text" "Permission denied" "$(status_json 'j["errors"][0]["message"]')"
	run L status "$inst"
	assert_match "status text: the error line" "  $wb  [0-9T:.-]+Z  .*Permission denied" "$OUT"
	assert_match "status text: mounted" "mounted: +yes" "$OUT"
	fault_clear
	for ((i = 0; i < 150; i++)); do
		[[ "$(status_json '"%d %d" % (len(j["storage_ongoing"]), len(j["errors"]))')" == "0 0" ]] && break
		sleep 0.2
	done
	assert_eq "status once the upload went through" "0 0" \
		"$(status_json '"%d %d" % (len(j["storage_ongoing"]), len(j["errors"]))')"
	assert_same_file "the written-back file" "$WORK/wb.txt" "$mnt/wb.txt"
	umount_fs "$mnt"
	check_store "$inst"
else
	log "no fault injection in this build: interrupted-save and upload-error cases skipped"
fi

log "status of something that is no instance"
run L status "$WORK"
assert_eq "status of a non-instance: exit" 1 "$RC"
assert_match "status of a non-instance: why" "is not a lamfs instance" "$ERR"

e2e_pass
