# shellcheck shell=bash
# s3env.sh — the S3 test server and an independent S3 client for lamfs's
# end-to-end tests.  Sourced by lib.sh (it only defines functions); uses
# lib.sh's fail/log/$WORK.
#
# The server is the project's own (tests/s3server: OpenStack Swift with its
# S3 API, which verifies every SigV4 signature), started by the test on free
# ports with its state under $WORK and stopped by the test's EXIT trap.  The
# client here is curl --aws-sigv4 with the test credentials; lamfs's own S3
# code is never used to look at the bucket.
#
#   s3_server_start [PORT]   start a server (first free PORT, PORT+40, ...;
#                            backend ports PORT+20..+23), export S3_* and the
#                            AWS_* variables lamfs reads, make $E2E_S3_BUCKET;
#                            stopped at exit
#   s3_server_stop / s3_server_restart   stop / start again (data kept)
#   s3_proxy_freeze / s3_proxy_thaw      SIGSTOP / SIGCONT the S3 proxy
#   s3_object_server_kill    stop the object server only: the proxy answers
#                            503 to every object PUT/GET (a server "returning
#                            5xx"); s3_server_restart brings it back
#   s3_rekey SECRET          restart the proxy with another secret for the
#                            test key (credentials revoked); s3_rekey testing
#                            restores it
#   s3_req METHOD PATH [curl args]  signed request; prints the HTTP status,
#                            the body goes to $S3_BODY ($WORK/s3.body)
#   s3_keys BUCKET PREFIX    "key size etag" of every object under PREFIX
#   s3_uploads BUCKET PREFIX "key uploadid" of every open multipart upload
#   s3_swift_listing BUCKET PREFIX  "name bytes md5 last_modified(us)", from
#                            Swift's own listing (sub-second times, for
#                            fingerprints that notice a rewrite)
#
# Environment: E2E_S3_BUCKET (lamfs-e2e), E2E_S3_PORT (first port to try).

E2E_S3_BUCKET=${E2E_S3_BUCKET:-lamfs-e2e}
_E2E_S3_FROZEN=

# Is something listening on 127.0.0.1:PORT?
_e2e_port_busy() {
	(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

s3_server_start() {
	local port=${1:-${E2E_S3_PORT:-18580}} k p ok info
	for ((k = 0; k < 20; k++, port += 40)); do
		ok=1
		for p in $port $((port + 20)) $((port + 21)) $((port + 22)) $((port + 23)); do
			_e2e_port_busy "$p" && { ok=0; break; }
		done
		[[ $ok == 1 ]] && break
	done
	[[ $ok == 1 ]] || fail "s3_server_start: no free ports from ${1:-18580} on"
	export S3TEST_PORT=$port S3TEST_BASE=$((port + 20)) S3TEST_DIR=$WORK/s3server
	export S3TEST_MIN_PART=${S3TEST_MIN_PART:-1048576}
	_e2e_exit_hooks+=(s3_server_stop)
	info=$(S3TEST_FRESH=1 bash "$REPO/tests/s3server/start.sh" 2>"$WORK/s3server.start.log") ||
		skip "S3 test server unavailable: $(tail -n 3 "$WORK/s3server.start.log")"
	eval "$info"
	export S3_ENDPOINT S3_REGION S3_ACCESS_KEY S3_SECRET_KEY S3_ACCESS_KEY_TEMPAUTH
	s3_env_export
	local code
	code=$(s3_req PUT "/$E2E_S3_BUCKET")
	[[ $code == 200 || $code == 409 ]] || fail "cannot create bucket $E2E_S3_BUCKET (HTTP $code)"
	log "S3 test server at $S3_ENDPOINT (state $S3TEST_DIR), bucket $E2E_S3_BUCKET"
}

# The AWS_* variables lamfs (init, mount, the CLI) reads, and nothing else
# from this machine's AWS setup.
s3_env_export() {
	export AWS_ACCESS_KEY_ID=$S3_ACCESS_KEY AWS_SECRET_ACCESS_KEY=$S3_SECRET_KEY
	export AWS_REGION=$S3_REGION AWS_ENDPOINT_URL=$S3_ENDPOINT
	unset AWS_PROFILE AWS_SESSION_TOKEN AWS_DEFAULT_REGION AWS_ENDPOINT_URL_S3 AWS_CA_BUNDLE
	export AWS_SHARED_CREDENTIALS_FILE=/nonexistent/credentials AWS_CONFIG_FILE=/nonexistent/config
}

s3_server_stop() {
	[[ -n "${S3TEST_DIR:-}" && -d "$S3TEST_DIR/pids" ]] || return 0
	s3_proxy_thaw
	bash "$REPO/tests/s3server/stop.sh" >/dev/null 2>&1 || true
}

# Start again what s3_server_start started (same ports, data kept).
s3_server_restart() {
	local info
	s3_proxy_thaw
	info=$(S3TEST_FRESH=0 bash "$REPO/tests/s3server/start.sh" 2>"$WORK/s3server.restart.log") ||
		fail "S3 test server did not start again: $(tail -n 5 "$WORK/s3server.restart.log")"
}

_s3_pid() { cat "$S3TEST_DIR/pids/$1.pid"; }

s3_proxy_freeze() {
	_E2E_S3_FROZEN=$(_s3_pid proxy)
	kill -STOP "$_E2E_S3_FROZEN"
}

s3_proxy_thaw() {
	[[ -n "$_E2E_S3_FROZEN" ]] || return 0
	kill -CONT "$_E2E_S3_FROZEN" 2>/dev/null || true
	_E2E_S3_FROZEN=
}

# Stop the object server (only it: the pid start.sh recorded) and wait until
# it is gone.
s3_object_server_kill() {
	local pid
	pid=$(_s3_pid object)
	kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid"
	wait_pid_gone "$pid" 20 || kill -KILL -- "-$pid" 2>/dev/null || true
}

# s3_rekey SECRET: the proxy restarted with SECRET as the test key's secret
# (start.sh's config with that one line changed; its pid file updated, so
# stop.sh still stops it).  The other servers keep running.
s3_rekey() {
	local secret=$1 pid conf=$S3TEST_DIR/etc/proxy-server.conf i
	pid=$(_s3_pid proxy)
	kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
	wait_pid_gone "$pid" 20 || fail "s3_rekey: proxy $pid did not stop"
	sed "s/^user_test_tester = .*/user_test_tester = $secret .admin/" "$conf" >"$conf.rekey"
	PYTHONPATH="$S3TEST_DIR/lib" nohup setsid /usr/bin/python3 /usr/bin/swift-proxy-server \
		"$conf.rekey" -v >>"$S3TEST_DIR/log/proxy.log" 2>&1 </dev/null &
	echo $! >"$S3TEST_DIR/pids/proxy.pid"
	for ((i = 0; i < 300; i++)); do
		[[ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 \
			"$S3_ENDPOINT/healthcheck" 2>/dev/null)" == 200 ]] && return 0
		sleep 0.1
	done
	fail "s3_rekey: proxy not answering after 30s"
}

# s3_req METHOD PATH [curl args...]: signed request with the test key; prints
# the HTTP status, the body goes to ${S3_BODY:-$WORK/s3.body}.  curl signs the
# query as written: give its parameters sorted, each with '=', values
# percent-encoded.
s3_req() {
	local m=$1 p=$2
	shift 2
	curl -s -o "${S3_BODY:-$WORK/s3.body}" -w '%{http_code}' -X "$m" --max-time 300 \
		--aws-sigv4 "aws:amz:$S3_REGION:s3" --user "$S3_ACCESS_KEY:$S3_SECRET_KEY" \
		-H 'x-amz-content-sha256: UNSIGNED-PAYLOAD' "$@" "$S3_ENDPOINT$p"
}

_s3_enc() {
	python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1], safe="-_.~"))' "$1"
}

# _s3_xml FILE MODE: keys ("key size etag") or uploads ("key uploadid") of a
# listing; the continuation token / next markers on fd 3 (one line, may be empty).
_s3_xml() {
	python3 - "$1" "$2" <<'EOF'
import os, sys, xml.etree.ElementTree as ET
root = ET.parse(sys.argv[1]).getroot()
ns = root.tag.split('}')[0] + '}' if root.tag.startswith('{') else ''
out, nxt = [], ''
trunc = (root.findtext(ns + 'IsTruncated') or '').lower() == 'true'
if sys.argv[2] == 'keys':
    for c in root.iter(ns + 'Contents'):
        out.append('%s %s %s' % (c.findtext(ns + 'Key'), c.findtext(ns + 'Size'),
                                 (c.findtext(ns + 'ETag') or '').strip('"')))
    if trunc:
        nxt = root.findtext(ns + 'NextContinuationToken') or ''
else:
    for u in root.iter(ns + 'Upload'):
        out.append('%s %s' % (u.findtext(ns + 'Key'), u.findtext(ns + 'UploadId')))
    if trunc:
        nxt = '%s %s' % (root.findtext(ns + 'NextKeyMarker') or '',
                         root.findtext(ns + 'NextUploadIdMarker') or '')
for l in out:
    print(l)
os.write(3, (nxt + '\n').encode())
EOF
}

# s3_keys BUCKET PREFIX: "key size etag" of every object under PREFIX (all pages).
s3_keys() {
	local b=$1 pfx tok='' code body=$WORK/s3.list.$BASHPID
	pfx=$(_s3_enc "$2")
	while :; do
		code=$(S3_BODY=$body s3_req GET "/$b?${tok:+continuation-token=$(_s3_enc "$tok")&}list-type=2&prefix=$pfx")
		[[ $code == 200 ]] || fail "ListObjectsV2 $b prefix $2: HTTP $code: $(head -c 300 "$body")"
		{ tok=$(_s3_xml "$body" keys 3>&1 >&4); } 4>&1
		[[ -n "$tok" ]] || break
	done
	rm -f -- "$body"
}

# s3_uploads BUCKET PREFIX: "key uploadid" of every open multipart upload under PREFIX.
s3_uploads() {
	local b=$1 pfx nxt='' km='' um='' code body=$WORK/s3.list.$BASHPID q
	pfx=$(_s3_enc "$2")
	while :; do
		q="${km:+key-marker=$(_s3_enc "$km")&}prefix=$pfx${um:+&upload-id-marker=$(_s3_enc "$um")}&uploads="
		code=$(S3_BODY=$body s3_req GET "/$b?$q")
		[[ $code == 200 ]] || fail "ListMultipartUploads $b prefix $2: HTTP $code: $(head -c 300 "$body")"
		{ nxt=$(_s3_xml "$body" uploads 3>&1 >&4); } 4>&1
		[[ -n "$nxt" ]] || break
		km=${nxt% *} um=${nxt#* }
	done
	rm -f -- "$body"
}

# s3_swift_listing BUCKET PREFIX: "name bytes md5 last_modified" from Swift's
# JSON container listing (tempauth token), names relative to PREFIX, sorted.
s3_swift_listing() {
	local b=$1 pfx=$2 tok url
	tok=$(curl -s -D - -o /dev/null --max-time 30 -H "X-Auth-User: $S3_ACCESS_KEY_TEMPAUTH" \
		-H "X-Auth-Key: $S3_SECRET_KEY" "$S3_ENDPOINT/auth/v1.0" | tr -d '\r' |
		awk -F': ' 'tolower($1) == "x-auth-token" { print $2 }')
	[[ -n "$tok" ]] || fail "no Swift token from $S3_ENDPOINT/auth/v1.0"
	url="$S3_ENDPOINT/v1/AUTH_${S3_ACCESS_KEY_TEMPAUTH%%:*}/$b"
	python3 - "$url" "$tok" "$pfx" <<'EOF'
import json, sys, urllib.parse, urllib.request
url, tok, pfx = sys.argv[1:4]
out, marker = [], ''
while True:
    q = urllib.parse.urlencode({'format': 'json', 'prefix': pfx, 'marker': marker})
    req = urllib.request.Request(url + '?' + q, headers={'X-Auth-Token': tok})
    with urllib.request.urlopen(req, timeout=60) as r:
        page = json.load(r) if r.status == 200 else []
    if not page:
        break
    for o in page:
        out.append('%s %s %s %s' % (o['name'][len(pfx):], o['bytes'], o['hash'], o['last_modified']))
    marker = page[-1]['name']
for l in sorted(out):
    print(l)
EOF
}

# _s3_split URL: sets _S3B (bucket) and _S3P (prefix with a trailing '/', or empty).
_s3_split() {
	local rest=${1#s3://}
	_S3B=${rest%%/*}
	_S3P=
	[[ "$rest" == */* ]] && _S3P=${rest#*/}
	_S3P=${_S3P%/}
	[[ -n "$_S3P" ]] && _S3P=$_S3P/
	return 0
}
