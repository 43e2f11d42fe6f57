#!/usr/bin/env bash
# Run the S3 unit tests (build/tests/test_s3_* and the backend contract suite)
# against a private S3 server that verifies signatures: this folder's
# start.sh (OpenStack Swift + s3api on 127.0.0.1), on its own ports and state
# dir so it never meets a server someone else started.  The server is stopped
# on every exit path.
#
#   tests/s3server/run-unit.sh [BUILD_DIR]     (default: <repo>/build)
#
# Settings (environment): S3TEST_PORT (18480), S3TEST_BASE (18500, 4 ports),
# S3TEST_DIR (${TMPDIR:-/tmp}/lamfs-s3-unit), S3TEST_MIN_PART (1 MiB, so the
# tests can use small parts), S3_BUCKET (lamfs-unit), KEEP_SERVER=1 leaves the
# server running for another run.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
BUILD=$(cd "${1:-$REPO/build}" && pwd)

export S3TEST_PORT=${S3TEST_PORT:-18480}
export S3TEST_BASE=${S3TEST_BASE:-18500}
export S3TEST_DIR=${S3TEST_DIR:-${TMPDIR:-/tmp}/lamfs-s3-unit}
export S3TEST_MIN_PART=${S3TEST_MIN_PART:-1048576}
export S3TEST_FRESH=${S3TEST_FRESH:-1}

stop_server() {
  [ "${KEEP_SERVER:-0}" = 1 ] || "$HERE/stop.sh" >/dev/null 2>&1 || true
}
trap stop_server EXIT
trap 'exit 130' INT TERM

info=$("$HERE/start.sh")
eval "$info"
export S3_ENDPOINT S3_REGION S3_ACCESS_KEY S3_SECRET_KEY
export S3_BUCKET=${S3_BUCKET:-lamfs-unit}
# the server's process control, for the test that stops it mid-upload
export S3_SERVER_CTL=$HERE
# the contract suite takes AWS_* like a user would; nothing from this machine
export AWS_ACCESS_KEY_ID=$S3_ACCESS_KEY AWS_SECRET_ACCESS_KEY=$S3_SECRET_KEY AWS_REGION=$S3_REGION
unset AWS_SESSION_TOKEN AWS_PROFILE AWS_DEFAULT_REGION AWS_ENDPOINT_URL AWS_ENDPOINT_URL_S3 \
      AWS_CA_BUNDLE AWS_SHARED_CREDENTIALS_FILE AWS_CONFIG_FILE
export AWS_SHARED_CREDENTIALS_FILE=/nonexistent/credentials AWS_CONFIG_FILE=/nonexistent/config

code=$(curl -s -o /dev/null -w '%{http_code}' -X PUT --aws-sigv4 "aws:amz:$S3_REGION:s3" \
  --user "$S3_ACCESS_KEY:$S3_SECRET_KEY" -H 'x-amz-content-sha256: UNSIGNED-PAYLOAD' \
  "$S3_ENDPOINT/$S3_BUCKET")
case $code in
  200|409) ;;
  *) echo "run-unit: cannot create bucket $S3_BUCKET (HTTP $code)" >&2; exit 1 ;;
esac

failed=0
ran=0
for t in "$BUILD"/tests/test_s3_* "$BUILD"/tests/test_backend_contract; do
  [ -x "$t" ] || continue
  ran=$((ran + 1))
  echo "=== $(basename "$t")"
  if ! CMOCKA_MESSAGE_OUTPUT=STDOUT "$t"; then
    echo "=== $(basename "$t") FAILED"
    failed=$((failed + 1))
  fi
done
if [ "$ran" = 0 ]; then
  echo "run-unit: no test programs under $BUILD/tests (build them first)" >&2
  exit 1
fi
echo "run-unit: $ran programs, $failed failed"
[ "$failed" = 0 ]
