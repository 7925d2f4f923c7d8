"""End-to-end tests of `zt proxy` HTTP listeners (`protocol: http`, docs/proxy.md "HTTP
listeners"): a real proxy, a recording HTTP/1.1 upstream written here on raw sockets (it keeps
every byte it receives), clients over raw TLS sockets presenting the client SVID (so every byte
of a request is ours to choose), curl for the ordinary cases, the JSON access log and /metrics.

Attack tests assert both what the client gets and what reached the upstream (nothing, or the
exact request expected). Every process and socket is closed by a fixture or a finally block;
files live under pytest's tmp_path; ports come from the kernel."""
import hashlib
import json
import os
import re
import select
import socket
import socketserver
import ssl
import subprocess
import threading
import time
import urllib.parse

import pytest

from conftest import ZT as _ZT, zt
from proxy_helpers import _flow, addr, free_port, stop_process, wait_until

# proxies run with the PKI folder as their working directory: a relative ZT_BIN
# (ZT_BIN=build-asan/zt) must not be looked up there
ZT = os.path.abspath(_ZT)
TD = "example.org"
SERVER_ID = f"spiffe://{TD}/ns/default/sa/server"
CLIENT_ID = f"spiffe://{TD}/ns/default/sa/client"
OTHER_ID = f"spiffe://{TD}/ns/default/sa/other"
ALLOW_POLICY = "acme/t/default/client-to-server"
DENY_POLICY = "acme/t/default/no-admin"


UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")

# The client may use /api/*, /public/* and /ADMIN with any method, /ro/* with GET only;
# /admin* is denied outright (a DENY policy, checked before any ALLOW).
POLICY = """\
apiVersion: zt.dev/v1
kind: Organization
metadata: {name: acme}
spec:
  trustDomain: example.org
  tenants:
    - name: t
      workspaces:
        - {name: default, services: [server, client, other]}
---
apiVersion: zt.dev/v1
kind: AuthorizationPolicy
metadata: {name: client-to-server, scope: acme/t/default}
spec:
  selector: {services: [server]}
  action: ALLOW
  rules:
    - from: [{source: {principals: ["example.org/ns/default/sa/client"]}}]
      to: [{operation: {paths: ["/api/*", "/public/*", "/ADMIN"]}}]
    - from: [{source: {principals: ["example.org/ns/default/sa/client"]}}]
      to: [{operation: {methods: ["GET"], paths: ["/ro/*"]}}]
---
apiVersion: zt.dev/v1
kind: AuthorizationPolicy
metadata: {name: no-admin, scope: acme/t/default}
spec:
  selector: {services: [server]}
  action: DENY
  rules:
    - to: [{operation: {paths: ["/admin*"]}}]
"""

# spec.http for most tests: short deadlines so timeout tests stay fast, small head limits
HTTP_DEFAULTS = {"maxHeaderBytes": 4096, "maxHeaders": 20, "maxBodyBytes": 65536,
                 "headerTimeout": "1s", "bodyTimeout": "1s", "responseTimeout": "1s"}

# what the upstream sends for ?mode=chunked, and its payload
CHUNKED_RESPONSE_BODY = b"7\r\nchunked\r\n1;ext=x\r\n-\r\nA\r\n0123456789\r\n0\r\n\r\n"
CHUNKED_RESPONSE_PAYLOAD = b"chunked-0123456789"
# a response nobody asked for (upstream modes extra and unsolicited)
SMUGGLED_RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Length: 8\r\nX-Smuggled: 1\r\n\r\nsmuggled"


def payload(n):
    """n deterministic bytes, every value of a byte included."""
    return (bytes(range(256)) * (n // 256 + 1))[:n]


# ---- the recording upstream ----------------------------------------------------------------


class UpReq:
    """One request as the upstream received it."""

    def __init__(self, n, conn, head):
        self.n, self.conn, self.head = n, conn, head
        lines = head[:-4].decode("latin-1").split("\r\n")
        self.method, self.target, self.version = (lines[0].split(" ") + ["", "", ""])[:3]
        self.headers = []
        for ln in lines[1:]:
            k, _, v = ln.partition(":")
            self.headers.append((k, v.strip(" \t")))
        self.path = self.target.split("?", 1)[0]
        q = urllib.parse.parse_qs(self.target.split("?", 1)[1]) if "?" in self.target else {}
        self.query = {k: v[0] for k, v in q.items()}
        self.body_raw = b""
        self.body = b""
        self.complete = False  # head and whole body read
        self.sent_continue = False

    def all(self, name):
        return [v for k, v in self.headers if k.lower() == name.lower()]

    def get(self, name):
        v = self.all(name)
        return v[0] if v else None

    def __repr__(self):
        return f"<UpReq #{self.n} conn {self.conn} {self.head!r} body {self.body_raw!r}>"


class _UpReader:
    def __init__(self, sock, sink, lock):
        self.s, self.sink, self.lock = sock, sink, lock
        self.buf = bytearray()

    def more(self):
        try:
            d = self.s.recv(65536)
        except OSError:
            d = b""
        if not d:
            return False
        with self.lock:
            self.sink += d
        self.buf += d
        return True

    def until(self, sep):
        while sep not in self.buf:
            if not self.more():
                return None
        i = self.buf.index(sep) + len(sep)
        out = bytes(self.buf[:i])
        del self.buf[:i]
        return out

    def exact(self, n):
        while len(self.buf) < n:
            if not self.more():
                return None
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out

    def chunked(self):
        """(raw bytes, payload) of a chunked body, or None when the stream ends first."""
        raw, body = bytearray(), bytearray()
        while True:
            line = self.until(b"\r\n")
            if line is None:
                return None
            raw += line
            size = int(line.split(b";")[0].strip(), 16)
            if size == 0:
                while True:
                    t = self.until(b"\r\n")
                    if t is None:
                        return None
                    raw += t
                    if t == b"\r\n":
                        return bytes(raw), bytes(body)
            data = self.exact(size + 2)
            if data is None:
                return None
            raw += data
            body += data[:-2]


class Upstream:
    """An HTTP/1.1 server on raw sockets that records every byte and every request head it
    receives. What it answers is chosen per request by ?mode=... in the target, or for every
    request by .mode:
      echo (default)  200, a JSON body describing the request (method, target, headers, body)
      chunked         200 with CHUNKED_RESPONSE_BODY
      close           200 without Content-Length: ?n= bytes of payload(), then it closes
      204, 304        no body (the 304 carries Content-Length: 1234, as RFC 9110 allows)
      hang            reads the request and never answers
      garbage         answers "HELLO\\r\\n\\r\\n"
      die             closes without a word once the head is in
      raw             sends .raw_response, then waits for the proxy to close
      extra           the echo answer with SMUGGLED_RESPONSE right behind it, in one write
      unsolicited     the echo answer, then SMUGGLED_RESPONSE 0.3 s later, unasked
      digest          200, JSON with the length and SHA-256 of the request body
      big             200 with Content-Length: ?n= bytes of payload()
      early           413 as soon as the head is in, the body never read
      headbody        200 with a 9-byte body, even for HEAD (an upstream bug)
      cl-close        200 with Content-Length and Connection: close, then it closes
      truncated       200 announcing 100 bytes, 10 of them, then it closes
    A request with Expect: 100-continue gets "100 Continue" (with X-Interim: upstream)
    before its body is read."""

    def __init__(self):
        self.mode = "echo"
        self.raw_response = b""
        self.lock = threading.Lock()
        self.requests = []
        self.conns = []   # every byte received, per connection
        self.errors = []
        self.socks = []
        self.stop = threading.Event()
        up = self

        class H(socketserver.BaseRequestHandler):
            def handle(self):
                up._serve(self.request)

        class S(socketserver.ThreadingTCPServer):
            daemon_threads = True
            allow_reuse_address = True

        self.srv = S(("127.0.0.1", 0), H)
        self.port = self.srv.server_address[1]
        self.thread = threading.Thread(target=self.srv.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def close(self):
        self.stop.set()
        self.srv.shutdown()
        self.srv.server_close()
        with self.lock:
            socks = list(self.socks)
        for s in socks:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self.thread.join(5)

    def reset(self):
        """Forgets what was received so far (connections still open record elsewhere)."""
        with self.lock:
            self.requests, self.conns = [], []

    # -- what the tests look at

    def total_bytes(self):
        with self.lock:
            return sum(len(c) for c in self.conns)

    def raw(self):
        with self.lock:
            return b"".join(bytes(c) for c in self.conns)

    def reqs(self):
        with self.lock:
            return list(self.requests)

    def targets(self):
        return [r.target for r in self.reqs()]

    def wait_requests(self, n, timeout=3):
        wait_until(lambda: len([r for r in self.reqs() if r.complete]) >= n, timeout)
        return self.reqs()

    def assert_nothing(self, what, settle=0.1, connections_ok=False):
        """Nothing reached the upstream (after giving stray bytes settle seconds to arrive).
        connections_ok: a TCP connection that carried no byte is tolerated."""
        time.sleep(settle)
        assert self.total_bytes() == 0, f"{what}: bytes reached the upstream: {self.raw()!r}"
        assert self.reqs() == [], f"{what}: requests reached the upstream: {self.reqs()}"
        if not connections_ok:
            with self.lock:
                n = len(self.conns)
            assert n == 0, f"{what}: the proxy opened {n} upstream connection(s)"

    # -- the server

    def _serve(self, s):
        with self.lock:
            cid = len(self.conns)
            self.conns.append(bytearray())
            self.socks.append(s)
            sink = self.conns[cid]
        rd = _UpReader(s, sink, self.lock)
        try:
            while not self.stop.is_set():
                head = rd.until(b"\r\n\r\n")
                if head is None:
                    return
                with self.lock:
                    req = UpReq(len(self.requests), cid, head)
                    self.requests.append(req)
                mode = req.query.get("mode", self.mode)
                if mode == "die":
                    return
                if mode in ("garbage", "raw"):
                    s.sendall(b"HELLO\r\n\r\n" if mode == "garbage" else self.raw_response)
                    while rd.more():  # until the proxy lets go
                        pass
                    return
                if mode == "early":  # answers before reading the body, then waits
                    s.sendall(b"HTTP/1.1 413 Content Too Large\r\nContent-Length: 5\r\n\r\nearly")
                    while rd.more():
                        pass
                    return
                if "100-continue" in (req.get("expect") or "").lower():
                    s.sendall(b"HTTP/1.1 100 Continue\r\nX-Interim: upstream\r\n\r\n")
                    req.sent_continue = True
                te = (req.get("transfer-encoding") or "").lower()
                if te:
                    got = rd.chunked()
                    if got is None:
                        return
                    req.body_raw, req.body = got
                elif req.get("content-length"):
                    got = rd.exact(int(req.get("content-length")))
                    if got is None:
                        return
                    req.body_raw = req.body = got
                req.complete = True
                if mode == "hang":
                    self.stop.wait(30)
                    return
                out, close = self._answer(req, mode)
                if mode == "extra":
                    out += SMUGGLED_RESPONSE
                s.sendall(out)
                if close:
                    return
                if mode == "unsolicited":
                    time.sleep(0.3)
                    s.sendall(SMUGGLED_RESPONSE)
        except Exception as e:  # noqa: BLE001 - recorded for the test to see
            with self.lock:
                self.errors.append(repr(e))
        finally:
            try:
                s.close()
            except OSError:
                pass

    def _answer(self, req, mode):
        if mode == "chunked":
            return (b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n"
                    b"\r\n" + CHUNKED_RESPONSE_BODY), False
        if mode == "close":
            return (b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n\r\n"
                    + payload(int(req.query.get("n", "1000")))), True
        if mode == "digest":
            body = json.dumps({"len": len(req.body), "sha256": hashlib.sha256(req.body).hexdigest(),
                               "target": req.target}).encode()
            return b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body) + body, False
        if mode == "big":
            n = int(req.query.get("n", "1000"))
            return b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % n + payload(n), False
        if mode == "headbody":  # a body even for HEAD, which must not be passed on
            return b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nheadbody!", False
        if mode == "cl-close":
            return b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok", True
        if mode == "truncated":
            return b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n" + b"t" * 10, True
        if mode == "204":
            return b"HTTP/1.1 204 No Content\r\nX-Mode: 204\r\n\r\n", False
        if mode == "304":
            return b"HTTP/1.1 304 Not Modified\r\nETag: \"v1\"\r\nContent-Length: 1234\r\n\r\n", False
        body = json.dumps({"n": req.n, "conn": req.conn, "method": req.method,
                           "target": req.target, "headers": req.headers,
                           "body": req.body.decode("latin-1")}).encode()
        head = (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n"
                b"X-Upstream-N: %d\r\n\r\n" % (len(body), req.n))
        return head + (b"" if req.method == "HEAD" else body), False


# ---- the client side: raw TLS and a response reader -----------------------------------------


class Resp:
    def __init__(self, head, body, raw_body):
        self.head, self.body, self.raw_body = head, body, raw_body
        lines = head[:-4].decode("latin-1").split("\r\n")
        m = re.match(r"^(HTTP/1\.[01]) (\d{3}) ?(.*)$", lines[0])
        assert m, f"bad status line {lines[0]!r}"
        self.version, self.status, self.reason = m.group(1), int(m.group(2)), m.group(3)
        self.headers = []
        for ln in lines[1:]:
            k, _, v = ln.partition(":")
            self.headers.append((k, v.strip(" \t")))

    def all(self, name):
        return [v for k, v in self.headers if k.lower() == name.lower()]

    def get(self, name):
        v = self.all(name)
        return v[0] if v else None

    def json(self):
        return json.loads(self.body)

    def __repr__(self):
        return f"<Resp {self.head!r} {self.body[:300]!r}>"


class Conn:
    """A client connection (TLS with the client SVID, or plain TCP) that reads HTTP
    responses off its stream."""

    def __init__(self, port, ctx=None, timeout=5):
        raw = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        try:
            self.s = ctx.wrap_socket(raw) if ctx else raw
        except Exception:
            raw.close()
            raise
        self.buf = bytearray()
        self.eof = False

    def close(self):
        self.s.close()

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()

    def send(self, data):
        self.s.sendall(data)

    def _more(self):
        if self.eof:
            return False
        try:
            d = self.s.recv(65536)
        except (ConnectionResetError, BrokenPipeError, ssl.SSLEOFError, ssl.SSLZeroReturnError):
            d = b""
        if not d:
            self.eof = True
            return False
        self.buf += d
        return True

    def _until(self, sep):
        while sep not in self.buf:
            if not self._more():
                return None
        i = self.buf.index(sep) + len(sep)
        out = bytes(self.buf[:i])
        del self.buf[:i]
        return out

    def _exact(self, n):
        while len(self.buf) < n:
            if not self._more():
                return None
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out

    def response(self, method="GET", timeout=5):
        """The next response (an interim one too), or None when the stream ends before a
        whole one; a body that ends early is an assertion error."""
        self.s.settimeout(timeout)
        head = self._until(b"\r\n\r\n")
        if head is None:
            return None
        r = Resp(head, b"", b"")
        if r.status < 200 or r.status in (204, 304) or method == "HEAD":
            return r
        te = (r.get("transfer-encoding") or "").lower()
        if te:
            assert te == "chunked", r
            raw, body = bytearray(), bytearray()
            while True:
                line = self._until(b"\r\n")
                assert line is not None, f"chunked body cut short: {raw!r}"
                raw += line
                size = int(line.split(b";")[0], 16)
                if size == 0:
                    while True:
                        t = self._until(b"\r\n")
                        assert t is not None, f"trailer cut short: {raw!r}"
                        raw += t
                        if t == b"\r\n":
                            break
                    break
                data = self._exact(size + 2)
                assert data is not None and data.endswith(b"\r\n"), f"bad chunk: {raw!r}{data!r}"
                raw += data
                body += data[:-2]
            r.body, r.raw_body = bytes(body), bytes(raw)
        elif r.get("content-length") is not None:
            n = int(r.get("content-length"))
            body = self._exact(n)
            assert body is not None, f"body cut short ({len(self.buf)} of {n}): {r!r}"
            r.body = r.raw_body = body
        else:  # close-delimited
            while self._more():
                pass
            r.body = r.raw_body = bytes(self.buf)
            self.buf.clear()
        return r

    def closed(self, timeout=2.0):
        """True when the peer ends the stream within timeout (no byte may come first)."""
        self.s.settimeout(timeout)
        try:
            while self._more():
                pass
        except (socket.timeout, TimeoutError):
            return False
        assert not self.buf, f"bytes before the end of the stream: {bytes(self.buf)!r}"
        return True


def ssl_ctx(pki, name="client"):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False  # SVIDs name workloads by URI SAN
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.load_verify_locations(str(pki / "bundle.pem"))
    ctx.load_cert_chain(str(pki / f"{name}.pem"), str(pki / f"{name}.key"))
    return ctx


def get(path, host="svc.test", extra=b"", version=b"HTTP/1.1"):
    return b"GET " + path.encode() + b" " + version + b"\r\nHost: " + host.encode() + b"\r\n" + \
        extra + b"\r\n"


# ---- the proxy ------------------------------------------------------------------------------


class Proxy:
    """A running `zt proxy`, its stderr (the JSON log) going to a file."""

    def __init__(self, proc, log, name):
        self.proc, self.log, self.name = proc, log, name
        self.own_crash_check = False  # the test asserts itself that the proxy survived

    def text(self):
        return self.log.read_text(errors="replace")

    def lines(self):
        out = []
        for raw in self.text().splitlines():
            try:
                out.append(json.loads(raw))
            except json.JSONDecodeError:
                out.append({"raw": raw})
        return out

    def requests(self):
        return [x for x in self.lines() if x.get("msg") == "request"]

    def wait_request(self, pred=lambda x: True, timeout=3, what="a request line"):
        found = wait_until(lambda: next((x for x in self.requests() if pred(x)), None), timeout)
        assert found, f"{self.name}: no {what} within {timeout}s; log:\n{self.text()}"
        return found

    def alive(self):
        return self.proc.poll() is None


def proxy_config(listeners, identity="server", policy="pol", http=None, limits=None,
                 admin=None):
    lines = ["apiVersion: zt.dev/v1", "kind: ProxyConfig", "spec:", f"  trustDomain: {TD}",
             f"  identity: {{cert: {identity}.pem, key: {identity}.key, bundle: bundle.pem}}"]
    if policy:
        lines.append(f"  policy: {policy}")
    lines.append(f"  limits: {_flow({'drainTimeout': '1s', **(limits or {})})}")
    if http is not None:
        lines.append(f"  http: {_flow(http)}")
    if admin:
        lines.append(f"  admin: {_flow({'listen': addr(admin)})}")
    lines.append("  listeners:")
    lines += [f"    - {_flow(ls)}" for ls in listeners]
    return "\n".join(lines) + "\n"


def http_in(port, forward, name="in"):
    return {"name": name, "mode": "inbound", "protocol": "http", "listen": addr(port),
            "forward": addr(forward)}


def http_out(port, upstream, expect=(SERVER_ID,), name="out"):
    return {"name": name, "mode": "outbound", "protocol": "http", "listen": addr(port),
            "upstream": addr(upstream), "expect": list(expect)}


# ---- fixtures -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    """A trust domain with a server SVID (also naming DNS localhost, for curl), a client SVID,
    the bundle and the policy folder pol/. Proxies run with this folder as cwd."""
    assert os.access(ZT, os.X_OK), f"{ZT} not built: run make"
    d = tmp_path_factory.mktemp("pki")

    def z(*a):
        p = zt(*a)
        assert p.returncode == 0, f"zt {' '.join(map(str, a))} failed:\n{p.stdout}\n{p.stderr}"

    z("ca", "init", "--trust-domain", TD, "--dir", d / "ca")
    z("ca", "issue", "--dir", d / "ca", "--id", SERVER_ID, "--dns", "localhost",
      "--key-out", d / "server.key", "--out", d / "server.pem")
    z("ca", "issue", "--dir", d / "ca", "--id", CLIENT_ID, "--key-out", d / "client.key",
      "--out", d / "client.pem")
    z("bundle", "export", "--dir", d / "ca", "--format", "pem", "--out", d / "bundle.pem")
    (d / "pol").mkdir()
    (d / "pol" / "policy.yaml").write_text(POLICY)
    return d


@pytest.fixture
def upstream():
    up = Upstream()
    try:
        yield up
    finally:
        up.close()


@pytest.fixture
def start_proxy(tmp_path, pki):
    """start_proxy(config_text, name) -> Proxy, running in the pki folder; every one is
    stopped at the end of the test (and must not have crashed)."""
    procs = []

    def start(config, name="proxy"):
        cfg = tmp_path / f"{name}-{len(procs)}.yaml"
        cfg.write_text(config)
        log = tmp_path / f"{name}-{len(procs)}.log"
        with open(log, "wb") as errf:
            proc = subprocess.Popen([ZT, "proxy", "-c", str(cfg)], cwd=pki,
                                    stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                    stderr=errf)
        px = Proxy(proc, log, name)
        procs.append(px)

        def running():
            if proc.poll() is not None:
                return "exited"
            return any(x.get("msg") == "zt proxy running" for x in px.lines())

        r = wait_until(running, 10)
        if r is not True:
            pytest.fail(f"{name} did not start ({r}, rc={proc.returncode}); log:\n{px.text()}")
        return px

    try:
        yield start
    finally:
        dead = [(p.name, p.proc.returncode, p.text()) for p in procs
                if not p.alive() and not p.own_crash_check]
        for p in procs:
            stop_process(p.proc)
        # a proxy that died during the test crashed (ASan reports land in its log); a
        # sanitizer may also report without stopping it (UBSan) or at exit (leaks)
        assert not dead, f"a proxy exited during the test: {dead}"
        reports = [(p.name, p.text()) for p in procs if not p.own_crash_check
                   and ("Sanitizer" in p.text() or "runtime error:" in p.text())]
        assert not reports, f"sanitizer reports: {reports}"


@pytest.fixture
def http_proxy(start_proxy, upstream):
    """http_proxy(http=..., forward=..., admin=...) -> (Proxy, port) of an inbound HTTP
    listener (identity server, policy pol/) forwarding to the recording upstream."""

    def start(http=None, forward=None, admin=None, limits=None):
        port = free_port()
        cfg = proxy_config([http_in(port, forward or upstream.port)],
                           http={**HTTP_DEFAULTS, **(http or {})}, admin=admin, limits=limits)
        return start_proxy(cfg, "server-proxy"), port

    return start


def curl(url, *args, cwd=None):
    """(status, headers [(name, value)], body bytes) of one curl request over HTTP/1.1."""
    p = subprocess.run(["curl", "-sS", "--http1.1", "--max-time", "5", "-i", *args, url],
                       capture_output=True, timeout=20, cwd=cwd)
    assert p.returncode == 0, f"curl {url} failed ({p.returncode}): {p.stderr.decode()}"
    head, sep, body = p.stdout.partition(b"\r\n\r\n")
    assert sep, p.stdout
    r = Resp(head + b"\r\n\r\n", body, body)
    return r


def curl_tls(pki, port, path, *args):
    return curl(f"https://localhost:{port}{path}", "--cacert", "bundle.pem", "--cert",
                "client.pem", "--key", "client.key", "--resolve", f"localhost:{port}:127.0.0.1",
                *args, cwd=pki)


# ---- 1. allowed and denied requests, curl ---------------------------------------------------


def test_allowed_and_denied_requests_with_curl(http_proxy, upstream, pki):
    px, port = http_proxy()

    r = curl_tls(pki, port, "/api/hello?x=1")
    assert r.status == 200, r
    echo = r.json()
    assert (echo["method"], echo["target"]) == ("GET", "/api/hello?x=1"), echo
    ok = px.wait_request(lambda x: x["path"] == "/api/hello?x=1", what="the allowed request")
    assert ok["decision"] == "allow" and ok["status"] == "200", ok
    assert ok["policy"] == ALLOW_POLICY and ok["source"] == CLIENT_ID, ok
    assert ok["method"] == "GET" and ok["listener"] == "in" and ok["direction"] == "inbound", ok
    assert ok["host"] == f"localhost:{port}", ok
    assert ok["request_id"] == dict((k.lower(), v) for k, v in echo["headers"])["x-request-id"]
    assert upstream.targets() == ["/api/hello?x=1"], upstream.reqs()

    # a path no ALLOW rule names, and a method /ro/* does not allow: 403 naming the request
    for path, method in [("/private/x", "GET"), ("/ro/doc", "POST")]:
        r = curl_tls(pki, port, path, "-X", method)
        assert r.status == 403, (path, r)
        rid = r.get("x-request-id")
        assert rid and UUID.match(rid), r
        assert r.body == f"Forbidden: denied by policy (request {rid})\n".encode(), r
        line = px.wait_request(lambda x, rid=rid: x["request_id"] == rid, what=f"{path} line")
        assert line["decision"] == "deny" and line["status"] == "403", line
        assert line["path"] == path and line["method"] == method, line
        assert line["level"] == "warn" and line["source"] == CLIENT_ID, line
    # GET on /ro/* is allowed by the second rule
    r = curl_tls(pki, port, "/ro/doc")
    assert r.status == 200 and r.json()["target"] == "/ro/doc", r
    time.sleep(0.1)
    assert upstream.targets() == ["/api/hello?x=1", "/ro/doc"], upstream.reqs()


# ---- 2. an outbound + inbound pair ------------------------------------------------------------


def test_outbound_inbound_pair(start_proxy, upstream):
    in_port, out_port = free_port(), free_port()
    start_proxy(proxy_config([http_in(in_port, upstream.port)], http=HTTP_DEFAULTS), "server-proxy")
    client = start_proxy(proxy_config([http_out(out_port, in_port)], identity="client",
                                      policy=None, http=HTTP_DEFAULTS), "client-proxy")

    # the local service's forged XFCC goes no further than its own sidecar
    r = curl(f"http://127.0.0.1:{out_port}/api/pair", "-H", "X-Request-Id: pair-1", "-H",
             "X-Forwarded-Client-Cert: By=x;Hash=00;URI=spiffe://example.org/ns/default/sa/admin")
    assert r.status == 200, r
    echo = r.json()
    assert echo["target"] == "/api/pair", echo
    hdrs = {k.lower(): v for k, v in echo["headers"]}
    assert hdrs["x-request-id"] == "pair-1", hdrs
    xfcc = [v for k, v in echo["headers"] if k.lower() == "x-forwarded-client-cert"]
    assert len(xfcc) == 1 and xfcc[0].startswith(f"By={SERVER_ID};Hash="), xfcc
    assert xfcc[0].endswith(f";URI={CLIENT_ID}"), xfcc
    line = client.wait_request(lambda x: x["request_id"] == "pair-1", what="outbound line")
    assert line["direction"] == "outbound" and line["status"] == "200", line
    assert line["upstream"] == SERVER_ID, line
    # and a second request on the same client connection, keep-alive through both proxies
    with Conn(out_port) as c:
        c.send(get("/api/k1") + get("/api/k2"))
        assert [c.response().json()["target"] for _ in range(2)] == ["/api/k1", "/api/k2"]
    assert upstream.targets() == ["/api/pair", "/api/k1", "/api/k2"], upstream.reqs()


def test_outbound_unexpected_upstream_id_502(start_proxy, upstream):
    """The upstream proves it is server, but the listener expects other: 502, and the
    request never gets there. (Regression: the 502 once read the TLS failure reason after
    the SSL holding it was freed, a heap-use-after-free that killed the ASan build.)"""
    in_port, bad_port = free_port(), free_port()
    start_proxy(proxy_config([http_in(in_port, upstream.port)], http=HTTP_DEFAULTS), "server-proxy")
    client = start_proxy(proxy_config([http_out(bad_port, in_port, expect=(OTHER_ID,), name="bad")],
                                      identity="client", policy=None, http=HTTP_DEFAULTS),
                         "client-proxy")
    client.own_crash_check = True
    p = subprocess.run(["curl", "-sS", "--http1.1", "--max-time", "5", "-i", "-H",
                        "X-Request-Id: bad-1", f"http://127.0.0.1:{bad_port}/api/secret"],
                       capture_output=True, timeout=20)
    if p.returncode != 0:
        wait_until(lambda: not client.alive(), 3)
    assert client.alive(), f"the client proxy died ({client.proc.returncode}):\n{client.text()}"
    assert p.returncode == 0, p.stderr
    head, _, body = p.stdout.partition(b"\r\n\r\n")
    r = Resp(head + b"\r\n\r\n", body, body)
    assert r.status == 502, r
    assert r.get("x-request-id") == "bad-1", r
    time.sleep(0.1)
    upstream.assert_nothing("a request through a listener expecting another upstream ID")
    line = client.wait_request(lambda x: x["request_id"] == "bad-1", what="502 line")
    assert line["listener"] == "bad" and line["status"] == "502", line
    assert client.alive(), client.text()


def test_outbound_listener_refuses_smuggling(start_proxy, upstream):
    """The outbound listener parses as strictly: a CL.TE request from the local service is
    400, and nothing reaches the server side."""
    in_port, out_port = free_port(), free_port()
    server = start_proxy(proxy_config([http_in(in_port, upstream.port)], http=HTTP_DEFAULTS),
                         "server-proxy")
    start_proxy(proxy_config([http_out(out_port, in_port)], identity="client", policy=None,
                             http=HTTP_DEFAULTS), "client-proxy")
    with Conn(out_port) as c:
        c.send(b"POST /api/a HTTP/1.1\r\nHost: a\r\nContent-Length: 6\r\n"
               b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /api/smuggled HTTP/1.1\r\nHost: a\r\n\r\n")
        r = c.response()
        assert r is not None and r.status == 400, r
        assert c.closed(2)
    upstream.assert_nothing("CL.TE through the outbound listener")
    assert server.requests() == [], server.text()


def test_outbound_client_half_close(start_proxy, upstream):
    """A local client that sends its request and shuts down its sending side still gets the
    whole response, then the close."""
    in_port, out_port = free_port(), free_port()
    start_proxy(proxy_config([http_in(in_port, upstream.port)], http=HTTP_DEFAULTS), "server-proxy")
    start_proxy(proxy_config([http_out(out_port, in_port)], identity="client", policy=None,
                             http=HTTP_DEFAULTS), "client-proxy")
    with Conn(out_port) as c:
        c.send(get("/api/half"))
        c.s.shutdown(socket.SHUT_WR)
        r = c.response()
        assert r is not None and r.status == 200 and r.json()["target"] == "/api/half", r
        assert c.closed(2)


# ---- 3. X-Forwarded-Client-Cert and X-Request-Id ------------------------------------------------


def client_cert_sha256(pki):
    pem = (pki / "client.pem").read_text()
    leaf = pem[:pem.index("-----END CERTIFICATE-----") + len("-----END CERTIFICATE-----")]
    return hashlib.sha256(ssl.PEM_cert_to_DER_cert(leaf)).hexdigest()


def test_xfcc_and_request_id(http_proxy, upstream, pki):
    px, port = http_proxy()
    want_xfcc = f"By={SERVER_ID};Hash={client_cert_sha256(pki)};URI={CLIENT_ID}"
    forged = (b"X-Forwarded-Client-Cert: By=spiffe://example.org/ns/default/sa/server;"
              b"Hash=00;URI=spiffe://example.org/ns/default/sa/admin\r\n"
              b"x-forwarded-client-cert: URI=spiffe://example.org/ns/default/sa/root\r\n")
    long_id = "a" * 200
    cases = [
        (forged, None),                                       # new ID
        (b"X-Request-Id: abc-123.req:1_Z\r\n", "abc-123.req:1_Z"),  # kept
        (b"X-Request-Id: has spaces in it\r\n", None),        # replaced
        (b"X-Request-Id: " + long_id.encode() + b"\r\n", None),   # 200 chars: replaced
        (b"X-Request-Id: " + b"c" * 129 + b"\r\n", None),         # 129 chars: replaced
        (b"X-Request-Id: a/b\r\n", None),                          # not a plain token
        (b"X-Request-Id: " + b"b" * 40 + b"\r\n", "b" * 40),      # kept
        (b"X-Request-Id: ok-1\r\nX-Request-Id: ok-2\r\n", "ok-1"),  # the first, once
    ]
    with Conn(port, ssl_ctx(pki)) as c:
        for i, (extra, want_id) in enumerate(cases):
            c.send(get(f"/api/x{i}", extra=extra))
            r = c.response()
            assert r is not None and r.status == 200, (i, r)
            hdrs = r.json()["headers"]
            xfcc = [v for k, v in hdrs if k.lower() == "x-forwarded-client-cert"]
            assert xfcc == [want_xfcc], (i, hdrs)
            rids = [v for k, v in hdrs if k.lower() == "x-request-id"]
            assert len(rids) == 1, (i, hdrs)
            if want_id:
                assert rids[0] == want_id, (i, rids)
            else:
                assert UUID.match(rids[0]), (i, rids)
            line = px.wait_request(lambda x, i=i: x["path"] == f"/api/x{i}")
            assert line["request_id"] == rids[0], line
    # the upstream saw the XFCC exactly once per request, never the forged ones
    raw = upstream.raw()
    assert b"Hash=00" not in raw and b"sa/root" not in raw and b"sa/admin" not in raw, raw
    assert raw.lower().count(b"x-forwarded-client-cert:") == len(cases), raw


def test_hop_by_hop_fields_are_dropped(http_proxy, upstream, pki):
    px, port = http_proxy()
    with Conn(port, ssl_ctx(pki)) as c:
        c.send(b"GET /api/hop HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, X-Hop\r\n"
               b"X-Hop: secret\r\nKeep-Alive: timeout=5\r\nTE: trailers\r\nUpgrade: websocket\r\n"
               b"Proxy-Connection: keep-alive\r\nX-Keep: yes\r\n\r\n")
        r = c.response()
        assert r is not None and r.status == 200, r
    q = upstream.reqs()[0]
    names = {k.lower() for k, _ in q.headers}
    hop = names & {"connection", "x-hop", "keep-alive", "te", "upgrade", "proxy-connection"}
    assert not hop, f"hop-by-hop fields reached the upstream: {q.head!r}"
    assert q.get("x-keep") == "yes" and q.all("host") == ["a"], q


def test_absolute_form_target(http_proxy, upstream, pki):
    """RFC 9112 3.2.2: the authority of an absolute-form target is the host; the upstream
    gets origin form and exactly one Host."""
    px, port = http_proxy()
    with Conn(port, ssl_ctx(pki)) as c:
        c.send(b"GET http://svc.example:8080/api/abs?x=1 HTTP/1.1\r\nHost: other.example\r\n\r\n")
        r = c.response()
        assert r is not None and r.status == 200, r
    q = upstream.reqs()[0]
    assert q.target == "/api/abs?x=1", q
    assert q.all("host") == ["svc.example:8080"], q
    line = px.wait_request(lambda x: x["path"] == "/api/abs?x=1")
    assert line["host"] == "svc.example:8080", line


def test_http10_client(http_proxy, upstream, pki):
    px, port = http_proxy()
    # no Host, no keep-alive: the upstream still gets an HTTP/1.1 request with one Host, the
    # client's connection closes after the response
    with Conn(port, ssl_ctx(pki)) as c:
        c.send(b"GET /api/ten HTTP/1.0\r\n\r\n")
        r = c.response()
        assert r is not None and r.status == 200 and r.json()["target"] == "/api/ten", r
        assert c.closed(2)
    q = upstream.reqs()[0]
    assert q.version == "HTTP/1.1" and len(q.all("host")) == 1, q
    # keep-alive asked for: kept, and said so
    with Conn(port, ssl_ctx(pki)) as c:
        c.send(b"GET /api/ten-ka HTTP/1.0\r\nHost: a\r\nConnection: keep-alive\r\n\r\n")
        r = c.response()
        assert r is not None and r.status == 200, r
        assert (r.get("connection") or "").lower() == "keep-alive", r
        c.send(b"GET /api/ten-ka2 HTTP/1.0\r\nHost: a\r\n\r\n")
        r = c.response()
        assert r is not None and r.json()["target"] == "/api/ten-ka2", r
        assert c.closed(2)


def test_client_connection_close(http_proxy, upstream, pki):
    px, port = http_proxy()
    with Conn(port, ssl_ctx(pki)) as c:
        c.send(b"GET /api/bye HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
        r = c.response()
        assert r is not None and r.status == 200, r
        assert r.get("connection") == "close", r
        assert c.closed(2)
    # a denied request that asks to close: 403, closed
    with Conn(port, ssl_ctx(pki)) as c:
        c.send(b"GET /admin/bye HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
        r = c.response()
        assert r is not None and r.status == 403 and r.get("connection") == "close", r
        assert c.closed(2)
    assert upstream.targets() == ["/api/bye"], upstream.reqs()


@pytest.mark.parametrize("n", [47, 48, 128])
def test_long_request_id_is_kept_whole(n, http_proxy, upstream, pki):
    """docs/proxy.md: a plain-token X-Request-Id of up to 128 characters is kept, whole (it
    was once cut to 47)."""
    px, port = http_proxy()
    rid = ("r" * n)
    with Conn(port, ssl_ctx(pki)) as c:
        c.send(get("/api/long-id", extra=b"X-Request-Id: " + rid.encode() + b"\r\n"))
        r = c.response()
        assert r is not None and r.status == 200, r
        got = [v for k, v in r.json()["headers"] if k.lower() == "x-request-id"]
        assert got == [rid], f"sent a {n}-character X-Request-Id, the upstream got {got}"
        # a denied request names the ID it was given, too
        c.send(get("/admin/long-id", extra=b"X-Request-Id: " + rid.encode() + b"\r\n"))
        r = c.response()
        assert r is not None and r.status == 403 and r.get("x-request-id") == rid, r
    line = px.wait_request(lambda x: x["path"] == "/api/long-id")
    assert line["request_id"] == rid, line


# ---- 4. request smuggling and strict parsing ---------------------------------------------------


def _req(head, body=b""):
    return head.replace(b"\n", b"\r\n") + b"\r\n" + body


SMUGGLING = [
    # (id, request bytes, status, spec.http overrides)
    ("cl-te", _req(b"POST /api/a HTTP/1.1\nHost: a\nContent-Length: 6\nTransfer-Encoding: chunked\n",
                   b"0\r\n\r\nGET /api/smuggled HTTP/1.1\r\nHost: a\r\n\r\n"), 400, None),
    ("te-cl", _req(b"POST /api/a HTTP/1.1\nHost: a\nTransfer-Encoding: chunked\nContent-Length: 4\n",
                   b"2c\r\nGET /api/smuggled HTTP/1.1\r\nHost: a\r\n\r\nxx\r\n0\r\n\r\n"), 400, None),
    ("te-te-identity", _req(b"POST /api/a HTTP/1.1\nHost: a\nTransfer-Encoding: chunked\n"
                            b"Transfer-Encoding: identity\n", b"0\r\n\r\n"), 400, None),
    ("te-chunked-twice", _req(b"POST /api/a HTTP/1.1\nHost: a\nTransfer-Encoding: chunked, chunked\n",
                              b"0\r\n\r\n"), 400, None),
    ("te-xchunked", _req(b"POST /api/a HTTP/1.1\nHost: a\nTransfer-Encoding: xchunked\n",
                         b"0\r\n\r\n"), 400, None),
    ("te-vtab", _req(b"POST /api/a HTTP/1.1\nHost: a\nTransfer-Encoding:\x0bchunked\n",
                     b"0\r\n\r\n"), 400, None),
    ("te-http10", _req(b"POST /api/a HTTP/1.0\nHost: a\nTransfer-Encoding: chunked\n",
                       b"0\r\n\r\n"), 400, None),
    # RFC 9112 6.3: a final coding other than chunked leaves the length unknown: 400
    ("te-gzip", _req(b"POST /api/a HTTP/1.1\nHost: a\nTransfer-Encoding: gzip\n", b"abc"), 400, None),
    # chunked last but another coding before it: a coding we do not implement, 501
    ("te-gzip-chunked", _req(b"POST /api/a HTTP/1.1\nHost: a\nTransfer-Encoding: gzip, chunked\n",
                             b"0\r\n\r\n"), 501, None),
    ("cl-dup-same", _req(b"POST /api/a HTTP/1.1\nHost: a\nContent-Length: 5\nContent-Length: 5\n",
                         b"hello"), 400, None),
    ("cl-dup-diff", _req(b"POST /api/a HTTP/1.1\nHost: a\nContent-Length: 5\nContent-Length: 6\n",
                         b"hello!"), 400, None),
    ("cl-list", _req(b"POST /api/a HTTP/1.1\nHost: a\nContent-Length: 5, 5\n", b"hello"), 400, None),
    ("cl-plus", _req(b"POST /api/a HTTP/1.1\nHost: a\nContent-Length: +5\n", b"hello"), 400, None),
    ("cl-hex", _req(b"POST /api/a HTTP/1.1\nHost: a\nContent-Length: 0x5\n", b"hello"), 400, None),
    ("obs-fold", _req(b"GET /api/a HTTP/1.1\nHost: a\nX-Foo: one\n two\n"), 400, None),
    ("obs-fold-te", _req(b"POST /api/a HTTP/1.1\nHost: a\nX-Foo: one\n\tTransfer-Encoding: chunked\n",
                         b"0\r\n\r\n"), 400, None),
    ("ws-before-colon", _req(b"GET /api/a HTTP/1.1\nHost: a\nX-Foo : bar\n"), 400, None),
    ("ws-before-colon-te", _req(b"POST /api/a HTTP/1.1\nHost: a\nTransfer-Encoding : chunked\n"
                                b"Content-Length: 3\n", b"abc"), 400, None),
    ("bare-lf", b"GET /api/a HTTP/1.1\nHost: a\n\n", 400, None),
    ("bare-lf-one-line", b"GET /api/a HTTP/1.1\r\nHost: a\nX-Foo: b\r\n\r\n", 400, None),
    ("bare-cr", b"GET /api/a HTTP/1.1\r\nHost: a\rX-Foo: b\r\n\r\n", 400, None),
    ("nul-in-value", _req(b"GET /api/a HTTP/1.1\nHost: a\nX-Foo: a\x00b\n"), 400, None),
    ("host-twice", _req(b"GET /api/a HTTP/1.1\nHost: a\nHost: b\n"), 400, None),
    ("host-missing", _req(b"GET /api/a HTTP/1.1\nX-Foo: b\n"), 400, None),
    ("http-1.2", _req(b"GET /api/a HTTP/1.2\nHost: a\n"), 505, None),
    ("http-2.0", _req(b"GET /api/a HTTP/2.0\nHost: a\n"), 505, None),
    ("lowercase-version", _req(b"GET /api/a http/1.1\nHost: a\n"), 400, None),
    ("double-space", _req(b"GET  /api/a HTTP/1.1\nHost: a\n"), 400, None),
    ("too-many-headers", _req(b"GET /api/a HTTP/1.1\nHost: a\n"
                              + b"".join(b"X-H%d: v\n" % i for i in range(12))), 431,
     {"maxHeaders": 10}),
    ("oversized-head", _req(b"GET /api/a HTTP/1.1\nHost: a\nX-Big: " + b"v" * 1500 + b"\n"), 431,
     {"maxHeaderBytes": 1024}),
    ("long-request-line", _req(b"GET /api/" + b"a" * 9000 + b" HTTP/1.1\nHost: a\n"), 414,
     {"maxHeaderBytes": 32768}),
    ("expect-other", _req(b"GET /api/a HTTP/1.1\nHost: a\nExpect: 200-ok\n"), 417, None),
    ("field-name-paren", _req(b"GET /api/a HTTP/1.1\nHost: a\nX-Fo(o: bar\n"), 400, None),
    ("field-name-empty", _req(b"GET /api/a HTTP/1.1\nHost: a\n: bar\n"), 400, None),
    ("field-no-colon", _req(b"GET /api/a HTTP/1.1\nHost: a\nX-Foo bar\n"), 400, None),
    ("tab-in-request-line", _req(b"GET\t/api/a HTTP/1.1\nHost: a\n"), 400, None),
    ("space-in-target", _req(b"GET /api/a b HTTP/1.1\nHost: a\n"), 400, None),
    ("host-userinfo", _req(b"GET /api/a HTTP/1.1\nHost: user@a\n"), 400, None),
    ("two-empty-lines-first", b"\r\n\r\n" + _req(b"GET /api/a HTTP/1.1\nHost: a\n"), 400, None),
]


# the rule (net/http1.h) each case must be refused under, where only one fits
RULES = {
    "cl-te": "http-te-cl", "te-cl": "http-te-cl", "te-te-identity": "http-te",
    "te-chunked-twice": "http-te", "te-xchunked": "http-te", "te-vtab": "http-field-value",
    "te-http10": "http-te-http10", "te-gzip": "http-te", "te-gzip-chunked": "http-te-unsupported",
    "cl-dup-same": "http-cl-dup", "cl-dup-diff": "http-cl-dup", "cl-list": "http-content-length",
    "cl-plus": "http-content-length", "cl-hex": "http-content-length", "obs-fold": "http-obs-fold",
    "obs-fold-te": "http-obs-fold", "ws-before-colon": "http-field-ws",
    "ws-before-colon-te": "http-field-ws", "bare-lf": "http-bare-lf",
    "bare-lf-one-line": "http-bare-lf", "bare-cr": "http-bare-cr",
    "nul-in-value": "http-field-value", "host-twice": "http-host-dup",
    "host-missing": "http-host-missing", "http-1.2": "http-version-unsupported",
    "http-2.0": "http-version-unsupported", "lowercase-version": "http-version",
    "too-many-headers": "http-too-many-fields", "oversized-head": "http-head-too-large",
    "long-request-line": "http-line-too-long", "expect-other": "http-expect",
    "field-name-paren": "http-field-name", "field-name-empty": "http-field-name",
    "host-userinfo": "http-host", "two-empty-lines-first": "http-empty-lines",
}


@pytest.mark.parametrize("name,raw,status,http", SMUGGLING, ids=[c[0] for c in SMUGGLING])
def test_malformed_request_is_refused_and_never_forwarded(name, raw, status, http, http_proxy,
                                                          upstream, pki):
    px, port = http_proxy(http=http)
    with Conn(port, ssl_ctx(pki)) as c:
        c.send(raw)
        r = c.response()
        assert r is not None, f"{name}: the connection closed without a response"
        assert r.status == status, f"{name}: {r!r}"
        assert r.get("connection") == "close", r
        rid = r.get("x-request-id")
        assert rid and UUID.match(rid), r
        assert c.closed(2), f"{name}: the connection stayed open after {status}"
    upstream.assert_nothing(name)
    line = px.wait_request(lambda x: x["request_id"] == rid, what=f"{name} request line")
    assert line["status"] == str(status) and line["decision"] == "none", line
    refused = [x for x in px.lines() if x.get("msg") == "request refused"]
    assert len(refused) == 1 and refused[0]["request_id"] == rid, refused
    assert refused[0]["rule"] == RULES.get(name, refused[0]["rule"]), refused
    assert refused[0]["rule"].startswith("http-"), refused


def test_head_limits_boundaries(http_proxy, upstream, pki):
    """maxHeaderBytes counts the head from the request line to its final CRLF, maxHeaders the
    field lines: exactly at each limit is served, one over is 431."""
    px, port = http_proxy(http={"maxHeaderBytes": 1024, "maxHeaders": 10})

    def head_of(size):
        base = b"GET /api/lim HTTP/1.1\r\nHost: a\r\nX-Pad: \r\n\r\n"
        return base.replace(b"X-Pad: ", b"X-Pad: " + b"p" * (size - len(base)))

    def fields(n):
        return b"GET /api/lim HTTP/1.1\r\nHost: a\r\n" + \
            b"".join(b"X-F%d: v\r\n" % i for i in range(n - 1)) + b"\r\n"

    for raw, status in [(head_of(1024), 200), (head_of(1025), 431),
                        (fields(10), 200), (fields(11), 431)]:
        with Conn(port, ssl_ctx(pki)) as c:
            c.send(raw)
            r = c.response()
            assert r is not None and r.status == status, (len(raw), raw.count(b"\r\n") - 2, r)
    assert upstream.targets() == ["/api/lim", "/api/lim"], upstream.reqs()


def test_one_leading_crlf_is_skipped_and_connect_is_501(http_proxy, upstream, pki):
    px, port = http_proxy()
    with Conn(port, ssl_ctx(pki)) as c:  # RFC 9112 2.2: one empty line before a request
        c.send(b"\r\n" + get("/api/after-crlf"))
        r = c.response()
        assert r is not None and r.status == 200 and r.json()["target"] == "/api/after-crlf", r
    with Conn(port, ssl_ctx(pki)) as c:
        c.send(b"CONNECT internal.example:22 HTTP/1.1\r\nHost: internal.example:22\r\n\r\n")
        r = c.response()
        assert r is not None and r.status == 501, r
        assert c.closed(2)
    assert upstream.targets() == ["/api/after-crlf"], upstream.reqs()


# Valid heads (allowed by policy) whose chunked body is broken: the proxy may have begun the
# exchange with the upstream, but the upstream must never get a whole request, let alone the
# one hidden after the broken chunk.
CHUNK_ATTACKS = [
    ("trailer-content-length", b"5\r\nhello\r\n0\r\nContent-Length: 5\r\n\r\n"),
    ("trailer-transfer-encoding", b"5\r\nhello\r\n0\r\nTransfer-Encoding: chunked\r\n\r\n"),
    ("trailer-host", b"5\r\nhello\r\n0\r\nHost: evil\r\n\r\n"),
    ("trailer-obs-fold", b"5\r\nhello\r\n0\r\nX-T: a\r\n b\r\n\r\n"),
    ("chunk-ext-too-long", b"5;" + b"e" * 300 + b"\r\nhello\r\n0\r\n\r\n"),
    ("chunk-ext-bad", b"5;a b\r\nhello\r\n0\r\n\r\n"),
    ("chunk-size-zz", b"zz\r\nhello\r\n0\r\n\r\n"),
    ("chunk-size-minus", b"-1\r\nhello\r\n0\r\n\r\n"),
    ("chunk-size-17-hex", b"00000000000000005\r\nhello\r\n0\r\n\r\n"),
    ("chunk-size-overflow", b"fffffffffffffffff\r\nhello\r\n0\r\n\r\n"),
    ("chunk-size-space", b"5 \r\nhello\r\n0\r\n\r\n"),
    ("chunk-size-0x", b"0x5\r\nhello\r\n0\r\n\r\n"),
    ("chunk-no-crlf", b"5\r\nhelloGET /api/smuggled HTTP/1.1\r\nHost: a\r\n\r\n"),
    ("chunk-bare-lf", b"5\nhello\r\n0\r\n\r\n"),
    ("chunk-data-bare-lf", b"5\r\nhello\n0\r\n\r\nGET /api/smuggled HTTP/1.1\r\nHost: a\r\n\r\n"),
]


@pytest.mark.parametrize("name,body", CHUNK_ATTACKS, ids=[c[0] for c in CHUNK_ATTACKS])
def test_broken_chunked_body(name, body, http_proxy, upstream, pki):
    px, port = http_proxy()
    head = b"POST /api/chunky HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
    with Conn(port, ssl_ctx(pki)) as c:
        c.send(head + body)
        r = c.response()
        assert r is None or r.status == 400, f"{name}: {r!r}"
        assert c.closed(2), f"{name}: the connection stayed open"
    time.sleep(0.1)
    reqs = upstream.reqs()
    assert not any(q.complete for q in reqs), f"{name}: a whole request reached the upstream: {reqs}"
    assert b"smuggled" not in upstream.raw(), f"{name}: {upstream.raw()!r}"
    assert len(reqs) <= 1, reqs
    # the whole request came in one TLS record: nothing was sent on before the body was read
    assert upstream.total_bytes() == 0, f"{name}: {upstream.raw()!r}"
    assert r is not None, f"{name}: closed without a 400"


# ---- 5. path normalization ---------------------------------------------------------------------


PATHS = [
    # (sent, status, what the upstream receives (None: nothing))
    ("/admin/../admin", 403, None),
    ("//admin", 403, None),
    ("/%2e%2e/admin", 403, None),
    ("/%2E%2e/%61dmin/x", 403, None),
    ("/public/../admin", 403, None),
    ("/public/./../admin/", 403, None),
    ("/public/..%2Fadmin", 400, None),
    ("/public/%2fadmin", 400, None),
    ("/public/..%5Cadmin", 400, None),
    ("/public/..\\admin", 400, None),
    ("/public/%00x", 400, None),
    ("/public/%zz", 400, None),
    ("/public/a#frag", 400, None),
    ("/public/%0d%0aX-Injected:%201", 400, None),
    ("/ADMIN", 200, "/ADMIN"),
    ("/public/%61dmin", 200, "/public/admin"),
    ("/public/./a//b/%7Euser?q=%2F..", 200, "/public/a/b/~user?q=%2F.."),
    ("/api/x/../../public/y", 200, "/public/y"),
    ("/public/a%20b", 200, "/public/a%20b"),
    ("/public/a%3fb", 200, "/public/a%3Fb"),
]


def test_path_normalization(http_proxy, upstream, pki):
    px, port = http_proxy()
    problems = []
    for sent, status, want in PATHS:
        before = len(upstream.reqs())
        with Conn(port, ssl_ctx(pki)) as c:
            c.send(get(sent))
            r = c.response()
        if r is None or r.status != status:
            problems.append(f"{sent!r}: want {status}, got {r!r}")
            continue
        time.sleep(0.05) if want is None else upstream.wait_requests(before + 1)
        got = upstream.targets()[before:]
        if want is None:
            if got:
                problems.append(f"{sent!r}: reached the upstream as {got}")
        elif got != [want]:
            problems.append(f"{sent!r}: the upstream got {got}, want [{want!r}]")
        elif r.json()["target"] != want:
            problems.append(f"{sent!r}: echo says {r.json()['target']!r}")
    assert not problems, "\n".join(problems)
    assert not any(t.startswith("/admin") for t in upstream.targets()), upstream.targets()
    # the log names the normalized path and the DENY policy
    line = px.wait_request(lambda x: x["status"] == "403")
    assert line["path"] == "/admin" and line["policy"] == DENY_POLICY, line


# ---- 6. keep-alive and pipelining ---------------------------------------------------------------


def test_pipelined_requests_answered_in_order(http_proxy, upstream, pki):
    px, port = http_proxy()
    with Conn(port, ssl_ctx(pki)) as c:
        c.send(b"".join(get(f"/api/p{i}", extra=b"X-Request-Id: pipe-%d\r\n" % i)
                        for i in range(1, 4)))
        for i in range(1, 4):
            r = c.response()
            assert r is not None and r.status == 200, (i, r)
            e = r.json()
            assert e["target"] == f"/api/p{i}", (i, e)
            assert dict((k.lower(), v) for k, v in e["headers"])["x-request-id"] == f"pipe-{i}"
        # still open: a fourth request on the same connection
        c.send(get("/api/p4"))
        r = c.response()
        assert r.status == 200 and r.json()["target"] == "/api/p4", r
    reqs = upstream.wait_requests(4)
    assert [q.target for q in reqs] == [f"/api/p{i}" for i in range(1, 5)], reqs
    assert len({q.conn for q in reqs}) == 1, "the upstream connection was not kept alive"


def test_many_pipelined_requests(http_proxy, upstream, pki):
    px, port = http_proxy()
    n = 300
    with Conn(port, ssl_ctx(pki), timeout=10) as c:
        c.send(b"".join(get(f"/api/m{i}") for i in range(n)))
        got = [c.response(timeout=10) for _ in range(n)]
    assert [r.json()["target"] if r else None for r in got] == [f"/api/m{i}" for i in range(n)]
    assert [q.target for q in upstream.reqs()] == [f"/api/m{i}" for i in range(n)]


def test_denied_request_inside_a_pipeline(http_proxy, upstream, pki):
    px, port = http_proxy()
    with Conn(port, ssl_ctx(pki)) as c:
        c.send(get("/api/one") + get("/admin/two") + get("/api/three"))
        r1, r2, r3 = c.response(), c.response(), c.response()
        assert r1 is not None and r1.status == 200 and r1.json()["target"] == "/api/one", r1
        assert r2 is not None and r2.status == 403, r2
        assert r2.get("x-request-id").encode() in r2.body, r2
        assert r3 is not None and r3.status == 200 and r3.json()["target"] == "/api/three", r3
    time.sleep(0.1)
    assert upstream.targets() == ["/api/one", "/api/three"], upstream.reqs()


def test_denied_request_with_body_inside_a_pipeline(http_proxy, upstream, pki):
    """A denied request's body is read and dropped: it never reaches the upstream, and the
    request after it is still served."""
    px, port = http_proxy()
    hidden = b"GET /api/hidden HTTP/1.1\r\nHost: a\r\n\r\n"
    with Conn(port, ssl_ctx(pki)) as c:
        c.send(get("/api/one")
               + b"POST /admin/x HTTP/1.1\r\nHost: a\r\nContent-Length: %d\r\n\r\n" % len(hidden)
               + hidden
               + b"POST /admin/y HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
               + b"%x\r\n" % len(hidden) + hidden + b"\r\n0\r\n\r\n"
               + get("/api/three"))
        rs = [c.response() for _ in range(4)]
        assert [r.status if r else None for r in rs] == [200, 403, 403, 200], rs
        assert rs[3].json()["target"] == "/api/three", rs[3]
    time.sleep(0.1)
    assert upstream.targets() == ["/api/one", "/api/three"], upstream.reqs()
    assert b"hidden" not in upstream.raw(), upstream.raw()


# ---- 7. request bodies ------------------------------------------------------------------------


def test_chunked_request_body_passes_through_exactly(http_proxy, upstream, pki):
    px, port = http_proxy()
    chunked = (b"5;name=value\r\nhello\r\n"
               b"1\r\n \r\n"
               b"a\r\n0123456789\r\n"
               b"0\r\n\r\n")
    with Conn(port, ssl_ctx(pki)) as c:
        c.send(b"POST /api/upload HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
               + chunked + get("/api/after"))
        r = c.response()
        assert r is not None and r.status == 200, r
        assert r.json()["body"] == "hello 0123456789", r
        r2 = c.response()
        assert r2 is not None and r2.status == 200 and r2.json()["target"] == "/api/after", r2
    reqs = upstream.wait_requests(2)
    assert [q.target for q in reqs] == ["/api/upload", "/api/after"], reqs
    assert reqs[0].body_raw == chunked, reqs[0]
    assert reqs[0].all("transfer-encoding") == ["chunked"], reqs[0]
    assert reqs[0].get("content-length") is None, reqs[0]
    line = px.wait_request(lambda x: x["path"] == "/api/upload")
    assert line["request_bytes"] == "16", line


def test_request_in_one_byte_records(http_proxy, upstream, pki):
    """A head and a chunked body arriving one byte per TLS record are parsed and
    forwarded the same as when whole."""
    px, port = http_proxy()
    chunked = b"3;x=y\r\nabc\r\n10\r\n0123456789abcdef\r\n0\r\nX-T: 1\r\n\r\n"
    req = b"POST /api/bytes HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked
    with Conn(port, ssl_ctx(pki)) as c:
        c.s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for i in range(len(req)):
            c.send(req[i:i + 1])
        r = c.response()
        assert r is not None and r.status == 200, r
        assert r.json()["body"] == "abc0123456789abcdef", r
    q = upstream.reqs()[0]
    assert q.body_raw == chunked and q.target == "/api/bytes", q


def test_chunked_request_body_with_trailer(http_proxy, upstream, pki):
    px, port = http_proxy()
    chunked = b"3\r\nabc\r\n0\r\nX-Checksum: 42\r\n\r\n"
    with Conn(port, ssl_ctx(pki)) as c:
        c.send(b"POST /api/trailer HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
               + chunked + get("/api/after"))
        r = c.response()
        assert r is not None and r.status == 200 and r.json()["body"] == "abc", r
        r2 = c.response()
        assert r2 is not None and r2.json()["target"] == "/api/after", r2
    reqs = upstream.wait_requests(2)
    assert reqs[0].body_raw == chunked, reqs[0]
    assert [q.target for q in reqs] == ["/api/trailer", "/api/after"], reqs


def test_content_length_body_and_keep_alive(http_proxy, upstream, pki):
    px, port = http_proxy()
    body = payload(40000)
    with Conn(port, ssl_ctx(pki)) as c:
        c.send(b"POST /api/cl HTTP/1.1\r\nHost: a\r\nContent-Length: %d\r\n\r\n" % len(body)
               + body + get("/api/after"))
        r = c.response()
        assert r is not None and r.status == 200, r
        assert r.json()["body"].encode("latin-1") == body
        r2 = c.response()
        assert r2 is not None and r2.json()["target"] == "/api/after", r2
    reqs = upstream.wait_requests(2)
    assert reqs[0].body_raw == body and reqs[0].get("content-length") == str(len(body))


def test_large_bodies_both_ways(http_proxy, upstream, pki):
    """Bodies far larger than the buffers (64 KiB) stream through in both directions,
    pipelined on one connection."""
    px, port = http_proxy(http={"maxBodyBytes": 4 << 20})
    up = os.urandom(3 << 20)
    n = 5 << 20
    with Conn(port, ssl_ctx(pki), timeout=20) as c:
        # sent whole before reading (an SSL socket is not for two threads at once): the
        # proxy reads the 3 MiB upload while the small answer to it waits in our buffers
        c.send(b"PUT /api/up?mode=digest HTTP/1.1\r\nHost: a\r\nContent-Length: %d\r\n\r\n"
               % len(up) + up + get(f"/api/down?mode=big&n={n}"))
        r = c.response(timeout=20)
        assert r is not None and r.status == 200, r
        d = r.json()
        assert d["len"] == len(up) and d["sha256"] == hashlib.sha256(up).hexdigest(), d
        r = c.response(timeout=20)
        assert r is not None and r.status == 200 and len(r.body) == n, r
        assert r.body == payload(n)
    line = px.wait_request(lambda x: x["path"].startswith("/api/up"))
    assert line["request_bytes"] == str(len(up)), line
    line = px.wait_request(lambda x: x["path"].startswith("/api/down"))
    assert line["response_bytes"] == str(n), line


def test_body_over_max_body_bytes(http_proxy, upstream, pki):
    px, port = http_proxy(http={"maxBodyBytes": 1000})
    with Conn(port, ssl_ctx(pki)) as c:
        c.send(b"POST /api/big HTTP/1.1\r\nHost: a\r\nContent-Length: 1001\r\n\r\n" + b"x" * 1001)
        r = c.response()
        assert r is not None and r.status == 413, r
        assert c.closed(2)
    upstream.assert_nothing("Content-Length over maxBodyBytes")
    # exactly at the limit is fine
    with Conn(port, ssl_ctx(pki)) as c:
        c.send(b"POST /api/big HTTP/1.1\r\nHost: a\r\nContent-Length: 1000\r\n\r\n" + b"y" * 1000)
        r = c.response()
        assert r is not None and r.status == 200 and r.json()["body"] == "y" * 1000, r


def test_chunked_body_over_max_body_bytes(http_proxy, upstream, pki):
    px, port = http_proxy(http={"maxBodyBytes": 1000})
    # exactly the limit, in two chunks: served
    with Conn(port, ssl_ctx(pki)) as c:
        c.send(b"POST /api/big HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
               b"1f4\r\n" + b"z" * 500 + b"\r\n1f4\r\n" + b"z" * 500 + b"\r\n0\r\n\r\n")
        r = c.response()
        assert r is not None and r.status == 200 and r.json()["body"] == "z" * 1000, r
    time.sleep(0.1)
    upstream.reset()
    body = b"258\r\n" + b"x" * 600 + b"\r\n" + b"258\r\n" + b"x" * 600 + b"\r\n0\r\n\r\n"
    with Conn(port, ssl_ctx(pki)) as c:
        c.send(b"POST /api/big HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n" + body)
        r = c.response()
        assert r is not None and r.status == 413, r
        assert c.closed(2)
    time.sleep(0.1)
    assert not any(q.complete for q in upstream.reqs()), upstream.reqs()
    assert upstream.raw().count(b"x") < 1000, f"{upstream.raw().count(b'x')} body bytes forwarded"


def test_response_before_the_request_body_ends(http_proxy, upstream, pki):
    """An upstream that answers before it has read the body (RFC 9110 allows it): the
    client gets the answer with Connection: close, and the connection ends there (the rest
    of the body cannot be told from a next request)."""
    px, port = http_proxy(http={"bodyTimeout": "5s"})
    with Conn(port, ssl_ctx(pki)) as c:
        c.send(b"POST /api/early?mode=early HTTP/1.1\r\nHost: a\r\nContent-Length: 50000\r\n\r\n"
               + b"e" * 10)
        r = c.response(timeout=3)
        assert r is not None and r.status == 413 and r.body == b"early", r
        assert r.get("connection") == "close", r
        assert c.closed(2)


# ---- 8. Expect: 100-continue -----------------------------------------------------------------


def test_expect_100_continue(http_proxy, upstream, pki):
    px, port = http_proxy()
    body = b"hello world"
    with Conn(port, ssl_ctx(pki)) as c:
        c.send(b"POST /api/cont HTTP/1.1\r\nHost: a\r\nContent-Length: %d\r\n"
               b"Expect: 100-continue\r\n\r\n" % len(body))
        r = c.response(timeout=3)
        assert r is not None and r.status == 100, r
        assert r.get("x-interim") == "upstream", f"not the upstream's 100: {r!r}"
        c.send(body)
        r = c.response()
        assert r is not None and r.status == 200, r
        assert r.json()["body"] == "hello world", r
    reqs = upstream.reqs()
    assert len(reqs) == 1 and reqs[0].sent_continue and reqs[0].body == body, reqs
    line = px.wait_request(lambda x: x["path"] == "/api/cont")
    assert line["status"] == "200", line


# ---- 9. responses -----------------------------------------------------------------------------


def test_responses_without_body(http_proxy, upstream, pki):
    px, port = http_proxy()
    with Conn(port, ssl_ctx(pki)) as c:
        # HEAD: Content-Length of the GET, no body; the next response must parse cleanly
        c.send(b"HEAD /api/h HTTP/1.1\r\nHost: a\r\n\r\n" + get("/api/after-head"))
        r = c.response(method="HEAD")
        assert r is not None and r.status == 200 and int(r.get("content-length")) > 0, r
        r = c.response()
        assert r is not None and r.status == 200 and r.json()["target"] == "/api/after-head", r
        # 204 and 304 (with a Content-Length that announces no body here)
        c.send(get("/api/n?mode=204") + get("/api/n?mode=304") + get("/api/after"))
        r = c.response()
        assert r is not None and r.status == 204 and r.get("x-mode") == "204", r
        r = c.response()
        assert r is not None and r.status == 304 and r.get("etag") == '"v1"', r
        r = c.response()
        assert r is not None and r.status == 200 and r.json()["target"] == "/api/after", r
        assert not c.buf, bytes(c.buf)
    assert len(upstream.reqs()) == 5


def test_body_sent_to_head_is_not_passed_on(http_proxy, upstream, pki):
    """An upstream that answers HEAD with a body: the bytes are not a response, the client
    gets the head alone and its next request a response of its own."""
    px, port = http_proxy()
    with Conn(port, ssl_ctx(pki)) as c:
        c.send(b"HEAD /api/h?mode=headbody HTTP/1.1\r\nHost: a\r\n\r\n")
        r = c.response(method="HEAD")
        assert r is not None and r.status == 200 and r.get("content-length") == "9", r
        time.sleep(0.1)
        c.send(get("/api/after"))
        r = c.response()
        assert r is not None and r.status == 200 and r.json()["target"] == "/api/after", r
    assert b"headbody!" not in bytes(c.buf)


def test_chunked_response_to_http11_client(http_proxy, upstream, pki):
    px, port = http_proxy()
    with Conn(port, ssl_ctx(pki)) as c:
        c.send(get("/api/c?mode=chunked") + get("/api/after"))
        r = c.response()
        assert r is not None and r.status == 200, r
        assert r.all("transfer-encoding") == ["chunked"] and r.get("content-length") is None, r
        assert r.body == CHUNKED_RESPONSE_PAYLOAD, r
        r = c.response()
        assert r is not None and r.json()["target"] == "/api/after", r


def test_chunked_response_to_http10_client(http_proxy, upstream, pki):
    px, port = http_proxy()
    with Conn(port, ssl_ctx(pki)) as c:
        c.send(get("/api/c?mode=chunked", version=b"HTTP/1.0"))
        r = c.response()
        assert r is not None and r.status == 200, r
        assert r.get("transfer-encoding") is None, r
        assert r.body == CHUNKED_RESPONSE_PAYLOAD, r  # read to the close
        assert c.eof
    assert upstream.reqs()[0].version == "HTTP/1.1", upstream.reqs()


def test_close_delimited_response(http_proxy, upstream, pki):
    px, port = http_proxy()
    n = 300000  # several buffers' worth
    with Conn(port, ssl_ctx(pki)) as c:
        c.send(get(f"/api/c?mode=close&n={n}"))
        r = c.response(timeout=10)
        assert r is not None and r.status == 200, r
        assert r.get("connection") == "close", r
        assert len(r.body) == n and r.body == payload(n), f"got {len(r.body)} of {n} bytes"
        assert c.eof
    line = px.wait_request(lambda x: x["path"].startswith("/api/c"))
    assert line["response_bytes"] == str(n) and line["status"] == "200", line
    # a request pipelined behind a close-delimited response is never sent on
    with Conn(port, ssl_ctx(pki)) as c:
        c.send(get("/api/c2?mode=close&n=10") + get("/api/never"))
        r = c.response()
        assert r is not None and r.body == payload(10) and c.eof, r
    time.sleep(0.1)
    assert "/api/never" not in upstream.targets(), upstream.reqs()


# ---- 10. slow clients --------------------------------------------------------------------------


def test_partial_head_gets_408(http_proxy, upstream, pki):
    px, port = http_proxy()
    with Conn(port, ssl_ctx(pki)) as c:
        t0 = time.monotonic()
        c.send(b"GET /api/slow HTTP/1.1\r\nHost: a\r\n")
        r = c.response(timeout=5)
        elapsed = time.monotonic() - t0
        assert r is not None and r.status == 408, r
        assert c.closed(2)
    assert 0.8 <= elapsed <= 3, f"408 after {elapsed:.2f}s, headerTimeout is 1s"
    upstream.assert_nothing("partial head")


def _answered(c, wait):
    """True once the proxy has sent application bytes (kept in c.buf for c.response). A TLS
    record that carries no data, such as a session ticket, makes the socket readable too, so
    readability alone is not an answer."""
    deadline = time.monotonic() + wait
    while True:
        left = deadline - time.monotonic()
        if not select.select([c.s], [], [], max(0.0, left))[0]:
            return False
        c.s.setblocking(False)
        try:
            d = c.s.recv(65536)
        except (ssl.SSLWantReadError, BlockingIOError):
            d = None  # a record without data: keep waiting
        except OSError:
            return True  # the proxy closed: it said something
        finally:
            c.s.setblocking(True)
        if d is not None:
            if not d:
                c.eof = True
                return True
            c.buf += d
            return True
        if left <= 0:
            return False


def dribble(c, pieces, gap):
    """Sends pieces gap seconds apart, stopping as soon as the proxy says something."""
    for piece in pieces:
        if _answered(c, 0):
            return
        try:
            c.send(piece)
        except OSError:
            return
        if _answered(c, gap):
            return


def test_slow_head_dribbled_gets_408(http_proxy, upstream, pki):
    """A head sent a few bytes at a time, each within the deadline of the last, still has
    to be whole within headerTimeout of its first byte."""
    px, port = http_proxy()
    with Conn(port, ssl_ctx(pki)) as c:
        t0 = time.monotonic()
        dribble(c, [b"GET /api/", b"slow HTTP", b"/1.1\r\n", b"Host: a\r\n", b"X-A: b\r\n",
                    b"X-C: d\r\n", b"X-E: f\r\n", b"X-G: h\r\n", b"X-I: j\r\n"], 0.3)
        r = c.response(timeout=3)
        elapsed = time.monotonic() - t0
        assert r is not None and r.status == 408, r
        assert c.closed(2)
    assert 0.8 <= elapsed <= 2, f"408 after {elapsed:.2f}s, headerTimeout is 1s"
    upstream.assert_nothing("dribbled head")


def test_partial_body_gets_408(http_proxy, upstream, pki):
    px, port = http_proxy()
    with Conn(port, ssl_ctx(pki)) as c:
        c.send(b"POST /api/slowbody HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\n" + b"x" * 10)
        t0 = time.monotonic()
        r = c.response(timeout=5)
        elapsed = time.monotonic() - t0
        assert r is not None and r.status == 408, r
        assert c.closed(2)
    assert 0.8 <= elapsed <= 3, f"408 after {elapsed:.2f}s, bodyTimeout is 1s"
    time.sleep(0.1)
    assert not any(q.complete for q in upstream.reqs()), upstream.reqs()


def test_slow_body_dribbled_gets_408(http_proxy, upstream, pki):
    """bodyTimeout bounds the whole body from the end of the head, not the gap between
    bytes."""
    px, port = http_proxy()
    with Conn(port, ssl_ctx(pki)) as c:
        c.send(b"POST /api/drip HTTP/1.1\r\nHost: a\r\nContent-Length: 20\r\n\r\n")
        t0 = time.monotonic()
        dribble(c, [b"d"] * 15, 0.2)
        r = c.response(timeout=3)
        elapsed = time.monotonic() - t0
        assert r is not None and r.status == 408, r
        assert c.closed(2)
    assert 0.8 <= elapsed <= 2, f"408 after {elapsed:.2f}s, bodyTimeout is 1s"
    time.sleep(0.1)
    assert not any(q.complete for q in upstream.reqs()), upstream.reqs()


def test_silent_tls_connection_is_closed(http_proxy, upstream, pki):
    px, port = http_proxy()
    with Conn(port, ssl_ctx(pki)) as c:
        t0 = time.monotonic()
        c.s.settimeout(5)
        r = c.response(timeout=5)  # a 408, or just the close
        elapsed = time.monotonic() - t0
        assert r is None or r.status == 408, r
        assert c.closed(1)
    assert 0.8 <= elapsed <= 3, f"closed after {elapsed:.2f}s, headerTimeout is 1s"
    upstream.assert_nothing("silent connection")


# ---- 11. upstream faults -----------------------------------------------------------------------


def test_upstream_refuses_connection_503(http_proxy, upstream, pki):
    px, port = http_proxy(forward=free_port())
    with Conn(port, ssl_ctx(pki)) as c:
        c.send(get("/api/x"))
        r = c.response()
        assert r is not None and r.status == 503, r
        assert c.closed(2)
    line = px.wait_request(lambda x: x["path"] == "/api/x")
    assert line["status"] == "503" and line["decision"] == "allow", line


def test_upstream_sends_garbage_502(http_proxy, upstream, pki):
    px, port = http_proxy()
    upstream.mode = "garbage"
    with Conn(port, ssl_ctx(pki)) as c:
        c.send(get("/api/x"))
        r = c.response()
        assert r is not None and r.status == 502, r
        assert c.closed(2)
    # a response came (a bad one): not a failure before any byte, so never sent twice
    assert upstream.targets() == ["/api/x"], upstream.reqs()
    line = px.wait_request(lambda x: x["path"] == "/api/x")
    assert line["status"] == "502" and line["decision"] == "allow", line


def test_upstream_closes_without_answer_502(http_proxy, upstream, pki):
    """docs/proxy.md: a request that may be sent twice and has no body is sent once more
    when its connection fails before any byte of the response; otherwise 502."""
    px, port = http_proxy()
    upstream.mode = "die"
    with Conn(port, ssl_ctx(pki)) as c:
        c.send(get("/api/idem"))
        r = c.response()
        assert r is not None and r.status == 502, r
        assert c.closed(2)
    assert upstream.targets() == ["/api/idem", "/api/idem"], upstream.reqs()
    with Conn(port, ssl_ctx(pki)) as c:
        c.send(b"POST /api/once HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc")
        r = c.response()
        assert r is not None and r.status == 502, r
        assert c.closed(2)
    time.sleep(0.1)
    assert upstream.targets().count("/api/once") == 1, upstream.reqs()


def test_upstream_hangs_504(http_proxy, upstream, pki):
    px, port = http_proxy()
    upstream.mode = "hang"
    with Conn(port, ssl_ctx(pki)) as c:
        t0 = time.monotonic()
        c.send(b"POST /api/slow HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc")
        r = c.response(timeout=5)
        elapsed = time.monotonic() - t0
        assert r is not None and r.status == 504, r
        assert c.closed(2)
    assert 0.8 <= elapsed <= 1.8, f"504 after {elapsed:.2f}s, responseTimeout is 1s"
    assert upstream.targets() == ["/api/slow"], upstream.reqs()
    line = px.wait_request(lambda x: x["path"] == "/api/slow")
    assert line["status"] == "504", line


def test_hung_upstream_get_not_retried(http_proxy, upstream, pki):
    """Only a failed connection is a reason to send a GET again: one that got no answer in
    responseTimeout is 504 at responseTimeout (it was once sent to the hung upstream twice,
    the 504 coming after twice the timeout)."""
    px, port = http_proxy()
    upstream.mode = "hang"
    with Conn(port, ssl_ctx(pki)) as c:
        t0 = time.monotonic()
        c.send(get("/api/slow-get"))
        r = c.response(timeout=5)
        elapsed = time.monotonic() - t0
        assert r is not None and r.status == 504, r
    assert upstream.targets() == ["/api/slow-get"], upstream.reqs()
    assert elapsed <= 1.8, f"504 after {elapsed:.2f}s, responseTimeout is 1s"


BAD_RESPONSES = [
    ("cl-te", b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
    ("cl-dup", b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!"),
    ("cl-plus", b"HTTP/1.1 200 OK\r\nContent-Length: +2\r\n\r\nok"),
    ("bare-lf", b"HTTP/1.1 200 OK\nContent-Length: 2\n\nok"),
    ("obs-fold", b"HTTP/1.1 200 OK\r\nX-A: a\r\n b\r\nContent-Length: 2\r\n\r\nok"),
    ("nul", b"HTTP/1.1 200 OK\r\nX-A: a\x00b\r\nContent-Length: 2\r\n\r\nok"),
    ("status-4-digits", b"HTTP/1.1 2000 OK\r\nContent-Length: 2\r\n\r\nok"),
    ("http2", b"HTTP/2 200\r\nContent-Length: 2\r\n\r\nok"),
    ("switching-protocols", b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                            b"Connection: Upgrade\r\n\r\nok"),
    ("head-too-large", b"HTTP/1.1 200 OK\r\nX-Big: " + b"v" * 5000 + b"\r\nContent-Length: 2\r\n\r\nok"),
]


@pytest.mark.parametrize("name,raw", BAD_RESPONSES, ids=[b[0] for b in BAD_RESPONSES])
def test_malformed_response_502(name, raw, http_proxy, upstream, pki):
    px, port = http_proxy()
    upstream.mode, upstream.raw_response = "raw", raw
    with Conn(port, ssl_ctx(pki)) as c:
        c.send(get("/api/x", extra=b"Upgrade: websocket\r\nConnection: Upgrade\r\n"))
        r = c.response()
        assert r is not None and r.status == 502, f"{name}: {r!r}"
        assert c.closed(2)
    # a response came, though a bad one: the request is not sent twice
    assert upstream.targets() == ["/api/x"], upstream.reqs()
    q = upstream.reqs()[0]
    assert q.get("upgrade") is None, q


def test_response_status_line_without_reason(http_proxy, upstream, pki):
    """net/http1.h: "HTTP/1.1 200" CRLF (no SP, no reason) is taken."""
    px, port = http_proxy()
    upstream.mode, upstream.raw_response = "raw", b"HTTP/1.1 200\r\nContent-Length: 2\r\n\r\nok"
    with Conn(port, ssl_ctx(pki)) as c:
        c.send(get("/api/x"))
        r = c.response()
        assert r is not None and r.status == 200 and r.body == b"ok", r


def test_extra_bytes_after_a_response_are_not_a_response(http_proxy, upstream, pki):
    """An upstream that writes more than the response it was asked for is not believed:
    the next request goes on a new upstream connection and gets its own response."""
    px, port = http_proxy()
    with Conn(port, ssl_ctx(pki)) as c:
        c.send(get("/api/first?mode=extra"))
        r = c.response()
        assert r is not None and r.status == 200 and r.json()["target"] == "/api/first?mode=extra", r
        time.sleep(0.1)
        c.send(get("/api/second"))
        r = c.response()
        assert r is not None and r.get("x-smuggled") is None and r.body != b"smuggled", r
        assert r.status == 200 and r.json()["target"] == "/api/second", r
    assert len({q.conn for q in upstream.reqs()}) == 2, upstream.reqs()


def test_unsolicited_bytes_on_idle_upstream_are_not_a_response(http_proxy, upstream, pki):
    """Bytes an upstream sends on an idle keep-alive connection are never taken as the
    response to the client's next request (response desync)."""
    px, port = http_proxy()
    with Conn(port, ssl_ctx(pki)) as c:
        c.send(get("/api/first?mode=unsolicited"))
        r = c.response()
        assert r is not None and r.status == 200, r
        time.sleep(0.6)  # the upstream has sent its unasked response by now
        c.send(get("/api/second"))
        r = c.response()
        assert r is not None, "no response to the second request"
        assert r.get("x-smuggled") is None and r.body != b"smuggled", \
            f"the client got the unsolicited response for /api/second: {r!r}"
        assert r.status == 200 and r.json()["target"] == "/api/second", r
    assert len({q.conn for q in upstream.reqs()}) == 2, upstream.reqs()


def test_upstream_closes_after_response(http_proxy, upstream, pki):
    """An upstream that closes after each response: the client's connection goes on, each
    request on a new upstream connection."""
    px, port = http_proxy()
    with Conn(port, ssl_ctx(pki)) as c:
        for i in range(3):
            c.send(get(f"/api/cc{i}?mode=cl-close"))
            r = c.response()
            assert r is not None and r.status == 200 and r.body == b"ok", (i, r)
            assert r.get("connection") != "close", r
    reqs = upstream.reqs()
    assert [q.target for q in reqs] == [f"/api/cc{i}?mode=cl-close" for i in range(3)], reqs
    assert len({q.conn for q in reqs}) == 3, reqs


def test_upstream_closes_mid_body(http_proxy, upstream, pki):
    """The head has gone out: the client sees the body end early with the connection's
    close, never a second response glued on."""
    px, port = http_proxy()
    with Conn(port, ssl_ctx(pki)) as c:
        c.send(get("/api/cut?mode=truncated"))
        c.s.settimeout(5)
        head = c._until(b"\r\n\r\n")
        assert head is not None and head.startswith(b"HTTP/1.1 200"), head
        assert b"Content-Length: 100" in head, head
        c.s.settimeout(3)
        try:
            while c._more():
                pass
        except (socket.timeout, TimeoutError):
            pass
        assert c.eof, "the client connection stayed open after the upstream cut the body"
        assert bytes(c.buf) == b"t" * 10, bytes(c.buf)
    line = px.wait_request(lambda x: x["path"] == "/api/cut?mode=truncated")
    assert line["end"] != "done", line


# ---- 12. metrics -------------------------------------------------------------------------------


def scrape(port):
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        data = b""
        while True:
            d = s.recv(65536)
            if not d:
                break
            data += d
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), head
    out = {}
    for line in body.decode().splitlines():
        if line and not line.startswith("#"):
            k, _, v = line.rpartition(" ")
            out[k] = float(v)
    return out, body.decode()


def test_metrics_count_requests(http_proxy, upstream, pki):
    admin = free_port()
    px, port = http_proxy(admin=admin)
    with Conn(port, ssl_ctx(pki)) as c:
        for p in ["/api/1", "/admin/1", "/api/2", "/nope", "/api/3"]:
            c.send(get(p))
            r = c.response()
            assert r.status == (200 if p.startswith("/api") else 403), r
    wait_until(lambda: len(px.requests()) == 5, 3)
    m, body = scrape(admin)
    ok = 'zt_proxy_http_requests_total{listener="in",code="2xx",decision="allow"}'
    deny = 'zt_proxy_http_requests_total{listener="in",code="4xx",decision="deny"}'
    assert m.get(ok) == 3 and m.get(deny) == 2, body
    assert len([k for k in m if k.startswith("zt_proxy_http_requests_total")]) == 2, body
    assert m.get('zt_proxy_http_request_duration_seconds_count{listener="in"}') == 5, body
    assert m.get('zt_proxy_http_request_duration_seconds_bucket{listener="in",le="+Inf"}') == 5
    assert "# TYPE zt_proxy_http_request_duration_seconds histogram" in body, body
