#!/usr/bin/env python3
"""faultproxy.py -- a fault-injecting HTTP proxy in front of the real S3 test server.

A test fixture, not a mock: every request is forwarded unchanged (method, path,
query, every header including Host, body) to the upstream S3 server, which still
verifies every signature and does the real work.  Only the *responses* are
mutated, per rules, so a test sees what lamfs does when S3 misbehaves:

    faultproxy.py --listen 127.0.0.1:PORT --upstream 127.0.0.1:S3PORT \
                  --rules FILE --log FILE [--trap 127.0.0.2:PORT]

FILE holds a JSON list of rules, re-read whenever it changes (counters start
again then); the first rule that matches a request and has hits left applies:

    {"id": "cmu", "method": "POST", "query": "uploadId=", "action": "error200",
     "count": 1}

  method   exact HTTP method, or "*" (default)
  path     regex searched in the path (default: any)
  query    regex searched in the raw query string; "!" + regex: must not match
  count    apply to the first N matching requests only (default: all)
  action   what happens:
    truncate  forward; send the status and headers with the full
              Content-Length, then only the first `bytes` (default 0) bytes of
              the body, then close the connection
    malformed forward; replace the body with `body` (default: broken XML)
              and, with `status`, the status too
    error200  do not forward; answer 200 with an S3 <Error> body (`code`,
              default InternalError) -- what S3 does for a failed
              CompleteMultipartUpload or CopyObject
    status    do not forward; answer `status` (default 500) with an S3 <Error>
    delay     sleep `seconds` (default 30), then forward (with "forward":
              false: then reset, the server never sees the request)
    redirect  do not forward; answer `status` (default 307) with a Location on
              another host (`to`, default the --trap address) and the same path
    reset     do not forward; close the connection with a TCP reset
    header    forward; replace response header `name` by `value` (for a HEAD,
              Content-Length included)
  forward   true: forward the request first anyway (the server acts, the
            answer is lost or replaced); false: never forward

Each request is logged as one line "METHOD PATH?QUERY -> STATUS [rule ID ACTION]"
in --log; a request that reaches the --trap listener (somebody followed a
redirect) is logged as "TRAP METHOD PATH" and answered 500.
"""
import argparse
import http.client
import http.server
import json
import os
import re
import socket
import socketserver
import struct
import sys
import threading
import time

HOP = {'connection', 'keep-alive', 'proxy-connection', 'te', 'trailer',
       'transfer-encoding', 'upgrade', 'expect'}

lock = threading.Lock()
state = {'sig': None, 'rules': [], 'hits': []}
ARGS = None


def log(line):
    with lock:
        with open(ARGS.log, 'a') as f:
            f.write(line + '\n')


def load_rules():
    """The rules, re-read when the file changed (hits reset); under lock."""
    try:
        st = os.stat(ARGS.rules)
        sig = (st.st_mtime_ns, st.st_size, st.st_ino)
    except FileNotFoundError:
        sig = None
    if sig != state['sig']:
        rules = []
        if sig is not None:
            with open(ARGS.rules) as f:
                text = f.read().strip()
            try:
                rules = json.loads(text) if text else []
            except ValueError as e:
                with open(ARGS.log, 'a') as f:
                    f.write('BAD RULES %s: %s\n' % (ARGS.rules, e))
                rules = []
        state['sig'], state['rules'], state['hits'] = sig, rules, [0] * len(rules)
    return state['rules']


def rx_ok(pattern, s):
    if pattern is None:
        return True
    if pattern.startswith('!'):
        return re.search(pattern[1:], s) is None
    return re.search(pattern, s) is not None


def pick_rule(method, path, query):
    with lock:
        rules = load_rules()
        for i, r in enumerate(rules):
            if r.get('method', '*') not in ('*', method):
                continue
            if not rx_ok(r.get('path'), path) or not rx_ok(r.get('query'), query):
                continue
            if r.get('count') and state['hits'][i] >= r['count']:
                continue
            state['hits'][i] += 1
            return r
    return None


def s3_error(code, message):
    return ('<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>%s</Code>'
            '<Message>%s</Message><RequestId>faultproxy</RequestId></Error>'
            % (code, message)).encode()


class Proxy(http.server.BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'
    trap_mode = False

    def log_message(self, fmt, *a):
        pass

    def read_body(self):
        n = int(self.headers.get('Content-Length') or 0)
        return self.rfile.read(n) if n else b''

    def forward(self, body):
        """The upstream's (status, headers, body) for this request, unchanged."""
        host, port = ARGS.upstream.rsplit(':', 1)
        c = http.client.HTTPConnection(host, int(port), timeout=600)
        try:
            c.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
            for k, v in self.headers.items():
                if k.lower() not in HOP:
                    c.putheader(k, v)
            c.endheaders(body if body or 'Content-Length' in self.headers else None)
            r = c.getresponse()
            data = r.read()
            return r.status, r.reason, [(k, v) for k, v in r.getheaders()
                                        if k.lower() not in HOP], data
        finally:
            c.close()

    def send(self, status, reason, headers, body, clen=None):
        self.send_response_only(status, reason)
        has_len = False
        for k, v in headers:
            if k.lower() == 'content-length':
                has_len = True
                v = str(clen if clen is not None else
                        (v if self.command == 'HEAD' else len(body)))
            self.send_header(k, v)
        if not has_len:
            self.send_header('Content-Length', str(clen if clen is not None else len(body)))
        self.end_headers()
        if self.command != 'HEAD':
            self.wfile.write(body)
        self.wfile.flush()

    def reset(self):
        self.wfile.flush()
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                   struct.pack('ii', 1, 0))
        self.close_connection = True
        self.connection.close()

    def handle_any(self):
        if self.trap_mode:
            log('TRAP %s %s' % (self.command, self.path))
            self.read_body()
            self.send(500, 'Trap', [], s3_error('Trap', 'a redirect was followed'))
            return
        path, _, query = self.path.partition('?')
        body = self.read_body()
        rule = pick_rule(self.command, path, query)
        act = rule.get('action') if rule else None
        tag = ' [rule %s %s]' % (rule.get('id', '?'), act) if rule else ''
        try:
            fwd = act in (None, 'delay', 'truncate', 'malformed', 'header')
            if rule and 'forward' in rule:
                fwd = bool(rule['forward'])
            if act == 'delay':
                # logged (and counted) when it starts: the client may give up
                log('%s %s -> delaying %ss%s' % (self.command, self.path,
                                                 rule.get('seconds', 30), tag))
                tag = ''
                time.sleep(float(rule.get('seconds', 30)))
                if not fwd:
                    act = 'reset'
            if fwd:
                status, reason, headers, data = self.forward(body)
            if act is None or act == 'delay':
                log('%s %s -> %d%s' % (self.command, self.path, status, tag))
                self.send(status, reason, headers, data)
            elif act == 'header':
                # one response header replaced (a HEAD's Content-Length, an ETag)
                name, value = rule['name'], str(rule['value'])
                headers = [(k, v) for k, v in headers if k.lower() != name.lower()]
                log('%s %s -> %d%s (%s: %s)' % (self.command, self.path, status, tag,
                                                name, value))
                if name.lower() == 'content-length' and self.command == 'HEAD':
                    self.send(status, reason, headers, data, clen=int(value))
                else:
                    self.send(status, reason, headers + [(name, value)], data)
            elif act == 'truncate':
                n = min(int(rule.get('bytes', 0)), max(len(data) - 1, 0))
                log('%s %s -> %d%s (%d of %d bytes)' % (self.command, self.path, status,
                                                        tag, n, len(data)))
                self.send(status, reason, headers, data[:n], clen=len(data))
                self.reset()
            elif act == 'malformed':
                bad = rule.get('body', '<?xml version="1.0"?><ListBucketResult><Contents>'
                               '<Key>x</Key><Size>12</Si').encode()
                if 'status' in rule:
                    status, reason = int(rule['status']), 'Fault'
                log('%s %s -> %d%s' % (self.command, self.path, status, tag))
                headers = [(k, v) for k, v in headers if k.lower() != 'etag'] \
                    if rule.get('drop_etag') else headers
                self.send(status, reason, headers, bad)
            elif act == 'error200':
                log('%s %s -> 200%s' % (self.command, self.path, tag))
                self.send(200, 'OK', [('Content-Type', 'application/xml')],
                          s3_error(rule.get('code', 'InternalError'),
                                   'We encountered an internal error. Please try again.'))
            elif act == 'status':
                st = int(rule.get('status', 500))
                log('%s %s -> %d%s' % (self.command, self.path, st, tag))
                self.send(st, 'Fault', [('Content-Type', 'application/xml')],
                          s3_error(rule.get('code', 'InternalError'), 'injected'))
            elif act == 'redirect':
                st = int(rule.get('status', 307))
                to = rule.get('to', 'http://%s' % ARGS.trap if ARGS.trap else
                              'http://127.0.0.2:9')
                log('%s %s -> %d%s to %s' % (self.command, self.path, st, tag, to))
                self.send(st, 'Redirect', [('Location', to + self.path),
                                           ('Content-Type', 'application/xml')],
                          s3_error('TemporaryRedirect' if st == 307 else 'PermanentRedirect',
                                   'Please re-send this request to the specified '
                                   'temporary endpoint.'))
            elif act == 'reset':
                log('%s %s -> reset%s' % (self.command, self.path, tag))
                self.reset()
            else:
                log('%s %s -> unknown action %r' % (self.command, self.path, act))
                self.send(500, 'Bad rule', [], b'')
        except (BrokenPipeError, ConnectionResetError, socket.timeout) as e:
            log('%s %s -> client went away (%s)%s' % (self.command, self.path,
                                                       type(e).__name__, tag))
            self.close_connection = True

    do_GET = do_HEAD = do_PUT = do_POST = do_DELETE = handle_any


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def serve(addr, trap_mode):
    host, port = addr.rsplit(':', 1)

    class H(Proxy):
        pass
    srv = Server((host, int(port)), H)
    H.trap_mode = trap_mode
    return srv


def main():
    global ARGS
    ap = argparse.ArgumentParser()
    ap.add_argument('--listen', required=True)
    ap.add_argument('--upstream', required=True)
    ap.add_argument('--rules', required=True)
    ap.add_argument('--log', required=True)
    ap.add_argument('--trap')
    ARGS = ap.parse_args()
    servers = [serve(ARGS.listen, False)]
    if ARGS.trap:
        servers.append(serve(ARGS.trap, True))
    for s in servers[1:]:
        threading.Thread(target=s.serve_forever, daemon=True).start()
    print('ready', flush=True)
    servers[0].serve_forever()


if __name__ == '__main__':
    sys.exit(main())
