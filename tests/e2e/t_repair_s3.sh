#!/usr/bin/env bash
# t_repair_s3.sh — lamfs-repair against the S3 test server (Swift's s3api,
# tests/s3server): the daemon killed after the flagged insert, after the
# upload, and between a delete's commit and its object delete; plus an S3
# multipart upload and a temporary left open under the instance's prefix.
# --dry-run changes nothing in the bucket; the repair completes both saves,
# removes the orphan and the temporary, aborts the multipart upload, and the
# bucket then holds exactly the committed objects; an object deleted and one
# overwritten behind lamfs's back are reported by --verify (exit 4, --json
# too); a second plain run exits 0.
# timeout: 400
. "$(dirname "$0")/lib.sh"
e2e_begin
require_faults

REPAIR_BIN=${LAMFS_REPAIR_BIN:-$(dirname "$LAMFS_BIN")/lamfs-repair}
[[ -x "$REPAIR_BIN" ]] || fail "no lamfs-repair binary at $REPAIR_BIN (set LAMFS_REPAIR_BIN)"
command -v curl >/dev/null || skip "curl missing"

# Its own S3 test server, on free ports with its state under $WORK, stopped
# at the end (s3env.sh).
s3_server_start "${E2E_S3_PORT:-18780}"
export AWS_ACCESS_KEY_ID=$S3_ACCESS_KEY AWS_SECRET_ACCESS_KEY=$S3_SECRET_KEY
export AWS_ENDPOINT_URL=$S3_ENDPOINT AWS_REGION=$S3_REGION
unset AWS_PROFILE AWS_SESSION_TOKEN
bucket=lamfs-repair-$$-$RANDOM
prefix=pfx

run_repair() {
	REPAIR_RC=0
	REPAIR_OUT=$("$REPAIR_BIN" "$@" 2>&1 </dev/null) || REPAIR_RC=$?
	log "lamfs-repair $* -> exit $REPAIR_RC"
	[[ "$*" == *--json* ]] || sed 's/^/#   /' <<<"$REPAIR_OUT"
}

assert_line() {
	grep -qE -- "$2" <<<"$3" || fail "$1: no line matches /$2/ in: $3"
}

# s3 METHOD PATH [curl args...]: signed request; prints the HTTP status, the
# body goes to $WORK/s3.body.  curl signs the query as written: give its
# parameters sorted, each with '=', values percent-encoded.
s3() {
	local m=$1 p=$2
	shift 2
	curl -s -o "$WORK/s3.body" -w '%{http_code}' -X "$m" \
		--aws-sigv4 "aws:amz:$S3_REGION:s3" --user "$S3_ACCESS_KEY:$S3_SECRET_KEY" \
		-H 'x-amz-content-sha256: UNSIGNED-PAYLOAD' "$@" "$S3_ENDPOINT$p"
}

# Keys under the instance's .lamindb/, relative to it, sorted.
s3_objects() {
	assert_eq "list of $bucket" 200 "$(s3 GET "/$bucket?list-type=2&prefix=$prefix%2F.lamindb%2F")"
	python3 - "$WORK/s3.body" "$prefix/.lamindb/" <<'EOF'
import sys, xml.etree.ElementTree as ET
root = ET.parse(sys.argv[1]).getroot()
ns = root.tag.split('}')[0] + '}' if root.tag.startswith('{') else ''
keys = [k.text[len(sys.argv[2]):] for k in root.iter(ns + 'Key')]
print('\n'.join(sorted(keys)))
EOF
}

# Multipart uploads open under the instance's .lamindb/: "key uploadid" lines.
s3_uploads() {
	assert_eq "list of uploads" 200 "$(s3 GET "/$bucket?prefix=$prefix%2F.lamindb%2F&uploads=")"
	python3 - "$WORK/s3.body" <<'EOF'
import sys, xml.etree.ElementTree as ET
root = ET.parse(sys.argv[1]).getroot()
ns = root.tag.split('}')[0] + '}' if root.tag.startswith('{') else ''
for u in root.iter(ns + 'Upload'):
    print(u.find(ns + 'Key').text, u.find(ns + 'UploadId').text)
EOF
}

s3_get() { assert_eq "GET $1" 200 "$(s3 GET "/$bucket/$prefix/.lamindb/$1")"; cp "$WORK/s3.body" "$2"; }

assert_eq "create bucket $bucket" 200 "$(s3 PUT "/$bucket")"
inst=$(instance_new inst --storage "s3://$bucket/$prefix")
mnt=$WORK/mnt
random_file "$WORK/keep" 5000
random_file "$WORK/a" $((1 * MiB + 1))
random_file "$WORK/b" $((2 * MiB + 2))
random_file "$WORK/del" 3000

# crash_at POINT CMD...: CMD dies with the daemon at POINT; the dead mount is cleared.
crash_at() {
	local point=$1
	shift
	fault_set "$point=crash"
	assert_fails "$* while the daemon dies at $point" "$@"
	fault_clear
	dead_umount "$mnt"
}

mount_fs "$inst" "$mnt"
mkdir "$mnt/s"
cp "$WORK/keep" "$mnt/s/keep.bin"
cp "$WORK/del" "$mnt/s/del.bin"
keep_uid=$(xattr "$mnt/s/keep.bin" user.lamfs.uid)
del_uid=$(xattr "$mnt/s/del.bin" user.lamfs.uid)
crash_at save.flagged cp "$WORK/a" "$mnt/s/a.bin"
mount_fs "$inst" "$mnt"
crash_at save.uploaded cp "$WORK/b" "$mnt/s/b.bin"
mount_fs "$inst" "$mnt"
crash_at delete.committed rm "$mnt/s/del.bin"
a_uid=$(sql "$inst" "select uid from artifact where key = 's/a.bin' and _aux is not null")
b_uid=$(sql "$inst" "select uid from artifact where key = 's/b.bin' and _aux is not null")
assert_match "flagged a.bin" '^[0-9A-Za-z]{20}$' "$a_uid"
assert_match "flagged b.bin" '^[0-9A-Za-z]{20}$' "$b_uid"
assert_line "orphan object of del.bin" "^$del_uid\.bin$" "$(s3_objects)"

log "left open behind the instance: a multipart upload and a temporary"
assert_eq "start a multipart upload" 200 \
	"$(s3 POST "/$bucket/$prefix/.lamindb/ZZZZZZZZZZZZZZZZ0000.bin?uploads=")"
assert_eq "put a temporary" 200 \
	"$(s3 PUT "/$bucket/$prefix/.lamindb/.tmp.interrupted" --data-binary half)"
assert_eq "open multipart uploads" 1 "$(s3_uploads | grep -c . || true)"

log "after a remount nothing partial is visible"
mount_fs "$inst" "$mnt"
assert_eq "ls s/" "keep.bin" "$(ls "$mnt/s")"
assert_errno ENOENT stat "$mnt/s/a.bin"
assert_errno ENOENT stat "$mnt/s/b.bin"
assert_same_file "s/keep.bin" "$WORK/keep" "$mnt/s/keep.bin"
umount_fs "$mnt"

log "--dry-run changes nothing in the bucket"
before=$(s3_objects; s3_uploads)
run_repair "$inst" --dry-run
assert_eq "exit status of the dry run" 4 "$REPAIR_RC"
assert_eq "bucket after the dry run" "$before" "$(s3_objects; s3_uploads)"

log "the repair"
run_repair "$inst"
assert_eq "exit status of the repair" 1 "$REPAIR_RC"
assert_line "a.bin completed" "^flagged +completed +s/a\.bin \($a_uid\)" "$REPAIR_OUT"
assert_line "b.bin completed" "^flagged +completed +s/b\.bin \($b_uid\)" "$REPAIR_OUT"
assert_line "orphan removed" "^orphan +removed +\.lamindb/$del_uid\.bin" "$REPAIR_OUT"
assert_line "temporary removed" '^temporary +removed +\.lamindb/\.tmp\.interrupted' "$REPAIR_OUT"
assert_line "multipart upload aborted" '^temporary +removed +-: 1 interrupted multipart upload aborted' \
	"$REPAIR_OUT"
# storage_uid.txt, LaminDB's marker of the bucket, is no object: left alone
assert_eq "objects after the repair" "$(printf '%s\n' "$keep_uid.bin" "$a_uid.bin" "$b_uid.bin" \
	storage_uid.txt | LC_ALL=C sort)" "$(s3_objects)"
assert_eq "open multipart uploads after the repair" "" "$(s3_uploads)"
assert_eq "staging after the repair" "" "$(staging_files "$inst")"
s3_get "$a_uid.bin" "$WORK/a.got"
assert_same_file "object of a.bin" "$WORK/a" "$WORK/a.got"

mount_fs "$inst" "$mnt"
assert_same_file "s/a.bin after the repair" "$WORK/a" "$mnt/s/a.bin"
assert_same_file "s/b.bin after the repair" "$WORK/b" "$mnt/s/b.bin"
assert_same_file "s/keep.bin after the repair" "$WORK/keep" "$mnt/s/keep.bin"
umount_fs "$mnt"
run_repair "$inst" --verify
assert_eq "second run" 0 "$REPAIR_RC"

log "behind lamfs's back: a.bin's object deleted, b.bin's overwritten"
assert_eq "delete a.bin's object" 204 "$(s3 DELETE "/$bucket/$prefix/.lamindb/$a_uid.bin")"
python3 - "$WORK/b" "$WORK/b.bad" <<'EOF'
import sys
b = bytearray(open(sys.argv[1], 'rb').read())
b[len(b) // 2] ^= 0xff
open(sys.argv[2], 'wb').write(b)
EOF
assert_eq "overwrite b.bin's object" 200 \
	"$(s3 PUT "/$bucket/$prefix/.lamindb/$b_uid.bin" --data-binary "@$WORK/b.bad")"
run_repair "$inst" --verify
assert_eq "exit status of --verify" 4 "$REPAIR_RC"
assert_line "a.bin missing" "^verify +missing +s/a\.bin \($a_uid\)" "$REPAIR_OUT"
assert_line "b.bin corrupt" "^verify +corrupt +s/b\.bin \($b_uid\)" "$REPAIR_OUT"
run_repair "$inst" --verify --json
assert_eq "exit status of --verify --json" 4 "$REPAIR_RC"
python3 - "$REPAIR_OUT" "$a_uid" "$b_uid" <<'EOF' || fail "--json report is wrong"
import json, sys
r = json.loads(sys.argv[1])
acts = {(a["kind"], a["action"], a["uid"]) for a in r["actions"]}
assert acts == {("verify", "missing", sys.argv[2]), ("verify", "corrupt", sys.argv[3])}, acts
assert r["exit"] == 4 and r["summary"]["verified"] == 1, r
EOF
assert_eq "records kept" 3 "$(sql "$inst" "select count(*) from artifact")"
run_repair "$inst"
assert_eq "a plain run after --verify" 0 "$REPAIR_RC"

log "cleaning up the bucket"
for k in $(s3_objects); do s3 DELETE "/$bucket/$prefix/.lamindb/$k" >/dev/null; done
s3 DELETE "/$bucket" >/dev/null || true

e2e_pass
