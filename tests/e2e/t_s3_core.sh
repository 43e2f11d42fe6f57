#!/usr/bin/env bash
# t_s3_core.sh — the core end-to-end tests again, with S3 storage: starts the
# project's S3 test server (Swift + s3api, verifies every signature) on free
# ports with its state under this test's work directory, makes one bucket, and
# runs each core test as a child script with E2E_STORAGE=s3 (run_children in
# lib.sh), so every instance_new makes an instance with its own prefix in that
# bucket and the storage helpers (objects, objects_snapshot, object_file,
# check_store ...) look at the bucket through curl.  The tests are not
# copied: the same files run.  E2E_MAX_FILE leaves out t_cp_sizes's 200 MiB
# case (t_s3_errors copies 200 MiB in parts).  At the end no multipart upload
# is open in the bucket.  The crash, repair and write-back tests run with S3
# storage in t_s3_crash.sh.
#
# Environment: E2E_S3_CORE_TESTS (the children, default below),
# E2E_S3_CHILD_TIMEOUT (seconds per child, default 300).
# timeout: 900
. "$(dirname "$0")/lib.sh"
e2e_begin
command -v curl >/dev/null || skip "curl missing"

read -ra children <<<"${E2E_S3_CORE_TESTS:-t_cp_sizes t_upload_denied t_crash_midsave t_versions t_rename t_tools t_bad_keys}"
s3_server_start "${E2E_S3_PORT:-18580}"

export E2E_STORAGE=s3 E2E_MAX_FILE=$((64 * MiB))
E2E_CHILD_TIMEOUT=${E2E_S3_CHILD_TIMEOUT:-300} run_children "${children[@]}"

log "no multipart upload is left open in the bucket"
assert_eq "open multipart uploads in $E2E_S3_BUCKET" "" "$(s3_uploads "$E2E_S3_BUCKET" "")"

[[ ${#CHILDREN_FAILED[@]} -eq 0 ]] || fail "core tests failing with S3 storage: ${CHILDREN_FAILED[*]}"
[[ ${#CHILDREN_SKIPPED[@]} -eq 0 ]] || log "skipped with S3 storage: ${CHILDREN_SKIPPED[*]}"
e2e_pass
