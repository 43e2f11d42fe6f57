#!/usr/bin/env bash
# t_s3_crash.sh — the crash, repair and write-back tests again, with S3
# storage (issue 3): one S3 test server (Swift + s3api, verifies every
# signature) on free ports with its state under this test's work directory,
# one bucket, and each test below run as a child with E2E_STORAGE=s3
# (run_children in lib.sh; the same files as the local runs, not copies):
#   t_crash_points      the daemon killed at each step of a save and a delete;
#                       mid-upload is in a multipart upload, which lamfs-repair
#                       aborts; a second repair run finds nothing
#   t_repair_crash      every crash point in sync and write-back mode, then
#                       lamfs-repair, all 24 cases (E2E_REPAIR_CRASH_CASES=short
#                       leaves out the variants over an earlier version)
#   t_repair_orphan     deletes interrupted after their commit: orphans removed
#   t_writeback*        200 files, killed with uploads pending, resumed; the
#                       unmount waits for the queue; ordering, unlink, reopen
#   t_staging_full      the staging disk full, sync and write-back
# At the end no multipart upload is open anywhere in the bucket.
#
# About 2.5 minutes on an idle 2-core machine, 4 on a busy one.
# Environment: E2E_S3_CRASH_TESTS (the children, default below),
# E2E_S3_CHILD_TIMEOUT (seconds per child, default 300), E2E_S3_PORT.
# timeout: 900
. "$(dirname "$0")/lib.sh"
e2e_begin
command -v curl >/dev/null || skip "curl missing"
require_faults

read -ra children <<<"${E2E_S3_CRASH_TESTS:-t_crash_points t_repair_crash t_repair_orphan t_writeback t_writeback_order t_writeback_unlink t_writeback_reopen t_staging_full}"
s3_server_start "${E2E_S3_PORT:-18620}"

export E2E_STORAGE=s3
E2E_CHILD_TIMEOUT=${E2E_S3_CHILD_TIMEOUT:-300} run_children "${children[@]}"

log "no multipart upload is left open in the bucket"
assert_eq "open multipart uploads in $E2E_S3_BUCKET" "" "$(s3_uploads "$E2E_S3_BUCKET" "")"

[[ ${#CHILDREN_FAILED[@]} -eq 0 ]] || fail "crash and write-back tests failing with S3 storage: ${CHILDREN_FAILED[*]}"
[[ ${#CHILDREN_SKIPPED[@]} -eq 0 ]] || log "skipped with S3 storage: ${CHILDREN_SKIPPED[*]}"
e2e_pass
