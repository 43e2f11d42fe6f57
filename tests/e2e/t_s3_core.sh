#!/usr/bin/env bash
# t_s3_core.sh — the core end-to-end tests again, with S3 storage: starts the
# project's S3 test server (Swift + s3api, verifies every signature) on free
# ports with its state under this test's work directory, makes one bucket, and
# runs each core test as a child script with E2E_STORAGE=s3, so every
# instance_new makes an instance with its own prefix in that bucket and the
# storage helpers (objects, objects_snapshot, object_file, check_store ...)
# look at the bucket through curl.  The tests are not copied: the same files
# run.  E2E_MAX_FILE leaves out t_cp_sizes's 200 MiB case (t_s3_errors copies
# 200 MiB in parts).  At the end no multipart upload is open in the bucket.
#
# Environment: E2E_S3_CORE_TESTS (the children, default below),
# E2E_S3_CHILD_TIMEOUT (seconds per child, default 300).
# timeout: 900
. "$(dirname "$0")/lib.sh"
e2e_begin
command -v curl >/dev/null || skip "curl missing"

read -ra children <<<"${E2E_S3_CORE_TESTS:-t_cp_sizes t_upload_denied t_crash_midsave t_versions t_rename t_tools t_bad_keys}"
s3_server_start 18580

export E2E_STORAGE=s3 E2E_MAX_FILE=$((64 * MiB))
failed=() skipped=() summary=
for t in "${children[@]}"; do
	t=${t%.sh}
	cdir=$WORK/$t
	rm -rf --one-file-system -- "$cdir"
	mkdir -p -- "$cdir"
	log "---- $t (S3)"
	start=$SECONDS
	rc=0
	E2E_TEST_WORK=$cdir timeout -k 15 "${E2E_S3_CHILD_TIMEOUT:-300}" \
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
		skipped+=("$t")
		;;
	*)
		log "FAIL $t (exit $rc, ${secs}s); its work directory: $cdir"
		sed 's/^/#   | /' "$cdir.log" | tail -n 40
		for lg in "$cdir"/*/lamfs.log; do
			[[ -f "$lg" ]] || continue
			log "  tail of $lg:"
			tail -n 15 "$lg" | sed 's/^/#   | /'
		done
		failed+=("$t")
		;;
	esac
	summary+=" $t=$rc/${secs}s"
done
log "children:$summary"

log "no multipart upload is left open in the bucket"
assert_eq "open multipart uploads in $E2E_S3_BUCKET" "" "$(s3_uploads "$E2E_S3_BUCKET" "")"

[[ ${#failed[@]} -eq 0 ]] || fail "core tests failing with S3 storage: ${failed[*]}"
[[ ${#skipped[@]} -eq 0 ]] || log "skipped with S3 storage: ${skipped[*]}"
e2e_pass
