#!/usr/bin/env bash
# t_s3_token.sh — session tokens (AWS_SESSION_TOKEN, aws_session_token in the
# credentials file) on the project's S3 test server (Swift + s3api).
#
# The server has no STS, so it accepts any token value; but it checks the
# signature over every header named in SignedHeaders, x-amz-security-token
# included.  The control below proves it: a request signed (by an
# independent SigV4 signer in Python) over one token and sent with another is
# refused, the same request with the token it was signed over passes.  So
# lamfs working with a token set shows it sends x-amz-security-token and
# signs it as it sends it.
#  - init, mount, cp, read back with AWS_SESSION_TOKEN set;
#  - the same with the token (and keys) from a credentials file profile.
# timeout: 300
. "$(dirname "$0")/lib.sh"
e2e_begin
command -v curl >/dev/null || skip "curl missing"

s3_server_start "${E2E_S3_PORT:-18740}"
bucket=$E2E_S3_BUCKET
mnt=$WORK/mnt
token='FwoGZXIvYXdzEBYaDEXAMPLE+token/with=chars'

# signed_get TOKEN_SIGNED TOKEN_SENT: HTTP status of a GET of the bucket
# signed over TOKEN_SIGNED and sent with TOKEN_SENT.
signed_get() {
	python3 - "$S3_ENDPOINT" "$bucket" "$S3_ACCESS_KEY" "$S3_SECRET_KEY" "$S3_REGION" "$1" "$2" <<'EOF'
import datetime, hashlib, hmac, sys, urllib.error, urllib.parse, urllib.request
ep, bucket, ak, sk, region, tok_signed, tok_sent = sys.argv[1:8]
host = urllib.parse.urlparse(ep).netloc
now = datetime.datetime.now(datetime.timezone.utc)
amz, day = now.strftime('%Y%m%dT%H%M%SZ'), now.strftime('%Y%m%d')
empty = hashlib.sha256(b'').hexdigest()
hdrs = {'host': host, 'x-amz-content-sha256': empty, 'x-amz-date': amz,
        'x-amz-security-token': tok_signed}
signed = ';'.join(sorted(hdrs))
canon = '\n'.join(['GET', '/' + bucket, 'list-type=2&max-keys=1',
                   ''.join('%s:%s\n' % (k, hdrs[k]) for k in sorted(hdrs)), signed, empty])
scope = '%s/%s/s3/aws4_request' % (day, region)
sts = '\n'.join(['AWS4-HMAC-SHA256', amz, scope, hashlib.sha256(canon.encode()).hexdigest()])
k = ('AWS4' + sk).encode()
for part in (day, region, 's3', 'aws4_request'):
    k = hmac.new(k, part.encode(), hashlib.sha256).digest()
sig = hmac.new(k, sts.encode(), hashlib.sha256).hexdigest()
hdrs['x-amz-security-token'] = tok_sent
hdrs['Authorization'] = 'AWS4-HMAC-SHA256 Credential=%s/%s, SignedHeaders=%s, Signature=%s' % (
    ak, scope, signed, sig)
del hdrs['host']
req = urllib.request.Request('%s/%s?list-type=2&max-keys=1' % (ep, bucket), headers=hdrs)
try:
    with urllib.request.urlopen(req, timeout=30) as r:
        print(r.status)
except urllib.error.HTTPError as e:
    print(e.code)
EOF
}

# A relay between lamfs and the server that records what lamfs sends (the
# first 4 KiB of each read from the client: the request heads), to show the
# header is on every request and named in every signature.
# It listens on a port the kernel picks and writes it to relay.port.
rm -f -- "$WORK/relay.port"
python3 - "$WORK/relay.port" "${S3_ENDPOINT##*:}" "$WORK/relay.log" <<'EOF' &
import os, socket, sys, threading, time
portfile, rport, path = sys.argv[1], int(sys.argv[2]), sys.argv[3]
out, lock = open(path, 'ab', buffering=0), threading.Lock()
srv = socket.socket()
srv.bind(('127.0.0.1', 0))
srv.listen(16)
with open(portfile + '.tmp', 'w') as f:
    f.write('%d\n' % srv.getsockname()[1])
os.rename(portfile + '.tmp', portfile)
def orphaned(parent=os.getppid()):     # the test is gone, however it ended: go too
    while os.getppid() == parent:
        time.sleep(1)
    os._exit(0)
threading.Thread(target=orphaned, daemon=True).start()
def pipe(a, b, log):
    try:
        while True:
            d = a.recv(65536)
            if not d:
                break
            if log:
                with lock:
                    out.write(d[:4096])
            b.sendall(d)
    except OSError:
        pass
    for s in (a, b):
        try:
            s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
while True:
    c, _ = srv.accept()
    u = socket.create_connection(('127.0.0.1', rport))
    threading.Thread(target=pipe, args=(c, u, True), daemon=True).start()
    threading.Thread(target=pipe, args=(u, c, False), daemon=True).start()
EOF
relay_pid=$!
stop_relay() { kill "$relay_pid" 2>/dev/null || true; }
_e2e_exit_hooks+=(stop_relay)
for ((i = 0; i < 100; i++)); do
	[[ -s "$WORK/relay.port" ]] && break
	sleep 0.1
done
relay_port=$(cat "$WORK/relay.port" 2>/dev/null) || fail "the relay did not start"
export AWS_ENDPOINT_URL=http://127.0.0.1:$relay_port

# relay_check WHAT: every request lamfs sent carried the token and signed it.
relay_check() {
	local nreq ntok nsig
	nreq=$(grep -ac '^Authorization: AWS4-HMAC-SHA256' "$WORK/relay.log" || true)
	ntok=$(grep -acF "x-amz-security-token: $token" "$WORK/relay.log" || true)
	nsig=$(grep -a '^Authorization: AWS4-HMAC-SHA256' "$WORK/relay.log" |
		grep -ac 'SignedHeaders=[^,]*x-amz-security-token' || true)
	((nreq > 0)) || fail "$1: no signed request went through the relay"
	assert_eq "$1: requests carrying the token" "$nreq" "$ntok"
	assert_eq "$1: signatures over the token" "$nreq" "$nsig"
	log "$1: $nreq requests, each with the token, signed"
	: >"$WORK/relay.log"
}

log "control: the server checks a signed x-amz-security-token"
assert_eq "GET signed over the token it carries" 200 "$(signed_get "$token" "$token")"
assert_eq "GET signed over another token" 403 "$(signed_get "$token" "${token}x")"

random_file "$WORK/f.bin" $((3 * MiB + 7))

log "AWS_SESSION_TOKEN from the environment"
inst=$(AWS_SESSION_TOKEN=$token instance_new env --storage "s3://$bucket/env")
AWS_SESSION_TOKEN=$token mount_fs "$inst" "$mnt"
cp "$WORK/f.bin" "$mnt/f.bin"
assert_same_file "f.bin with a session token" "$WORK/f.bin" "$mnt/f.bin"
umount_fs "$mnt"
relay_check "AWS_SESSION_TOKEN"

log "aws_session_token from a credentials file"
creds=$WORK/credentials
printf '[tok]\naws_access_key_id = %s\naws_secret_access_key = %s\naws_session_token = %s\n' \
	"$S3_ACCESS_KEY" "$S3_SECRET_KEY" "$token" >"$creds"
chmod 600 "$creds"
(
	unset AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY
	export AWS_SHARED_CREDENTIALS_FILE=$creds AWS_PROFILE=tok
	inst=$(instance_new prof --storage "s3://$bucket/prof")
	mount_fs "$inst" "$mnt"
	cp "$WORK/f.bin" "$mnt/f.bin"
	assert_same_file "f.bin with a profile's session token" "$WORK/f.bin" "$mnt/f.bin"
	umount_fs "$mnt"
)
relay_check "aws_session_token in a profile"

e2e_pass
