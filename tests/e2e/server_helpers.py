"""Helpers for the end-to-end tests of the control plane, `zt server`
(test_server.py): starting and stopping a server on a state directory,
HTTPS clients (http.client with the server's trust bundle, curl, raw TLS
sockets), and readers of the audit log through the API."""
import http.client
import json
import os
import pathlib
import re
import signal
import socket
import ssl
import subprocess
import threading
import time

from conftest import ZT, zt

TOKEN_RE = re.compile(r"ztk_[0-9a-f]{16}_[A-Za-z0-9_-]{43}")
URL_RE = re.compile(r"https://localhost:([0-9]+)")
RID_RE = re.compile(r"[A-Za-z0-9_.:-]{1,128}")
SANITIZER_RE = re.compile(r"AddressSanitizer|LeakSanitizer|UndefinedBehaviorSanitizer|"
                          r"ThreadSanitizer|runtime error:|SUMMARY: [A-Za-z]+Sanitizer")
ADMIN = object()  # request(token=ADMIN): the bootstrap administrator's token


class Resp:
    """A response: status, headers (lower-case names), body bytes, parsed JSON (or None)."""

    def __init__(self, status, headers, body, method="", path=""):
        self.status = status
        self.headers = headers
        self.body = body
        self.method = method
        self.path = path
        try:
            self.json = json.loads(body) if body else None
        except ValueError:
            self.json = None

    @property
    def rid(self):
        return self.headers.get("x-request-id")

    @property
    def text(self):
        return self.body.decode("utf-8", "replace")

    @property
    def code(self):
        """The error's code ("conflict", "forbidden"...), or None."""
        if isinstance(self.json, dict) and isinstance(self.json.get("error"), dict):
            return self.json["error"].get("code")
        return None

    def __repr__(self):
        return f"<{self.method} {self.path} -> {self.status} {self.text[:600]!r}>"


def check_shape(r):
    """What every response has: a request ID; errors in the documented JSON shape."""
    assert r.rid and RID_RE.fullmatch(r.rid), f"no/odd X-Request-Id: {r!r} {r.headers}"
    if r.status >= 400:
        assert isinstance(r.json, dict) and set(r.json) == {"error"}, f"error shape: {r!r}"
        err = r.json["error"]
        assert set(err) == {"status", "code", "message", "request_id"}, f"error members: {r!r}"
        assert err["status"] == r.status, r
        assert isinstance(err["code"], str) and err["code"], r
        assert isinstance(err["message"], str) and err["message"], r
        assert err["request_id"] == r.rid, f"request_id {err['request_id']} != header {r.rid}"
    return r


def expect(r, status, code=None):
    assert r.status == status, f"expected {status}, got {r!r}"
    if code is not None:
        assert r.code == code, f"expected code {code!r}: {r!r}"
    return r


class _Conn(http.client.HTTPSConnection):
    """HTTPS to 127.0.0.1 with SNI and certificate checks for "localhost"."""

    def __init__(self, port, ctx, source=None, timeout=20):
        super().__init__("localhost", port, context=ctx, timeout=timeout,
                         source_address=(source, 0) if source else None)
        self._ctx = ctx

    def connect(self):
        s = socket.create_connection(("127.0.0.1", self.port), self.timeout, self.source_address)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock = self._ctx.wrap_socket(s, server_hostname="localhost")


class Client:
    """One keep-alive connection (reconnects when the server closes it)."""

    def __init__(self, server, token=ADMIN, cert=None, source=None):
        self.server = server
        self.token = token
        self.ctx = server.ssl_context(cert)
        self.source = source
        self.conn = None

    def close(self):
        if self.conn:
            self.conn.close()
            self.conn = None

    def request(self, method, path, body=None, token=None, headers=None, raw=None):
        tok = self.token if token is None else token
        if tok is ADMIN:
            tok = self.server.token
        h = {"Host": f"localhost:{self.server.port}"}
        if tok:
            h["Authorization"] = f"Bearer {tok}"
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        if data is not None:
            h["Content-Type"] = "application/json"
        elif method in ("POST", "PUT"):
            h["Content-Length"] = "0"
        h.update(headers or {})
        for attempt in (0, 1):
            if self.conn is None:
                self.conn = _Conn(self.server.port, self.ctx, self.source)
            try:
                self.conn.request(method, path, body=data, headers=h)
                resp = self.conn.getresponse()
                out = Resp(resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read(),
                           method, path)
                if resp.will_close:
                    self.close()
                self.server.note(out)
                return check_shape(out)
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError,
                    ConnectionRefusedError):
                # a kept-alive connection the server had closed: once more on a new one
                self.close()
                self.server.check_alive(f"{method} {path}")
                if attempt:
                    raise
        raise AssertionError("unreachable")


class Server:
    """A `zt server` on a state directory, started and stopped by the tests.

    Counts what it answers through Client and curl: `changes` (2xx answers to
    POST/PUT/DELETE) and `denials` (403s), so that tests can hold the audit log
    to one entry per change and per refusal."""

    def __init__(self, base, dev=False, trust_domain=None, zt_bin=None, name="state"):
        self.base = pathlib.Path(base)
        self.base.mkdir(parents=True, exist_ok=True)
        self.dir = self.base / name
        self.dev = dev
        self.trust_domain = trust_domain
        self.zt_bin = zt_bin or ZT
        self.proc = None
        self.hung = False
        self.reported = False
        self.runs = 0
        self.token = None
        self.bundle = self.base / "bundle.pem"
        self.changes = 0
        self.denials = 0
        self.responses = []
        self._ctx = {}
        self._client = None
        self._lock = threading.Lock()

    # ---- the process ----

    def start(self, extra=(), timeout=8.0):
        self.runs += 1
        self.ready = self.base / f"ready-{self.runs}"
        self.stdout_path = self.base / f"stdout-{self.runs}.txt"
        self.stderr_path = self.base / f"stderr-{self.runs}.txt"
        args = [self.zt_bin, "server", "--dir", str(self.dir), "--listen", "127.0.0.1:0",
                "--ready-file", str(self.ready)]
        if self.dev:
            args.append("--dev")
        if self.trust_domain:
            args += ["--trust-domain", self.trust_domain]
        args += list(extra)
        env = dict(os.environ)
        env.setdefault("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=0")
        self.t_start = time.monotonic()
        self.proc = subprocess.Popen(args, stdout=open(self.stdout_path, "wb"),
                                     stderr=open(self.stderr_path, "wb"), env=env)
        deadline = time.monotonic() + timeout
        lines = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"zt server exited with {self.proc.returncode}:\n"
                                     f"{self.stdout()}\n{self.stderr()}")
            if self.ready.exists():
                text = self.ready.read_text()
                if text.count("\n") >= 3:
                    lines = text.split("\n")
                    break
            time.sleep(0.01)
        if lines is None:
            self.kill()
            raise AssertionError(f"no ready file after {timeout} s:\n{self.stderr()}")
        self.startup_s = time.monotonic() - self.t_start
        self.ready_lines = lines[:3]
        m = URL_RE.fullmatch(lines[0])
        assert m, f"ready file's first line is not the URL: {lines!r}"
        self.url = lines[0]
        self.port = int(m.group(1))
        if lines[1]:
            assert TOKEN_RE.fullmatch(lines[1]), f"bootstrap token {lines[1]!r}"
            self.token = lines[1]
        self.ready_token = lines[1]
        if not self.bundle.exists():
            p = zt("bundle", "export", "--dir", self.dir / "ca", "--format", "pem")
            assert p.returncode == 0 and "BEGIN CERTIFICATE" in p.stdout, p.stderr
            self.bundle.write_text(p.stdout)
        self._ctx = {}
        self._client = None
        return self

    def stdout(self):
        return self.stdout_path.read_text(errors="replace") if self.stdout_path.exists() else ""

    def stderr(self):
        return self.stderr_path.read_text(errors="replace") if self.stderr_path.exists() else ""

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout=10.0):
        """SIGTERM; (exit status, seconds it took), or (None, timeout) if it hung (then killed)."""
        if self._client:
            self._client.close()
            self._client = None
        if not self.alive():
            return (self.proc.returncode if self.proc else None), 0.0
        t0 = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            self.hung = True  # the test that stopped it reports this
            return None, timeout
        return rc, time.monotonic() - t0

    def check_alive(self, what):
        """A request failed at the transport: was it because the server died?"""
        deadline = time.monotonic() + 0.5  # a sanitizer report takes a moment to write
        while self.alive() and time.monotonic() < deadline:
            time.sleep(0.02)
        if self.proc is not None and not self.alive():
            err = self.stderr()
            m = SANITIZER_RE.search(err)
            tail = err[max(0, m.start() - 200):][:5000] if m else err[-3000:]
            raise AssertionError(f"zt server died (exit {self.proc.returncode}) by {what}; "
                                 f"its stderr:\n{tail}")

    def kill(self):
        if self.alive():
            self.proc.kill()
            self.proc.wait(timeout=10)

    def assert_clean_stderr(self):
        """No sanitizer report in any run's stderr."""
        for i in range(1, self.runs + 1):
            p = self.base / f"stderr-{i}.txt"
            if p.exists():
                text = p.read_text(errors="replace")
                m = SANITIZER_RE.search(text)
                if m:
                    self.reported = True  # once is enough: finish() does not repeat it
                    raise AssertionError(f"sanitizer report in the server's stderr ({p}):\n"
                                         f"{text[max(0, m.start() - 300):][:8000]}")

    def finish(self):
        """Teardown: stops the server, which must exit 0, with a clean stderr."""
        rc, took = self.stop()
        if self.reported:
            return
        self.assert_clean_stderr()
        if self.hung:
            return
        assert rc == 0, f"zt server exited {rc} after SIGTERM ({took:.1f} s):\n{self.stderr()[-4000:]}"

    # ---- clients ----

    def ssl_context(self, cert=None):
        key = tuple(map(str, cert)) if cert else None
        if key not in self._ctx:
            ctx = ssl.create_default_context(cafile=str(self.bundle))
            if cert:
                ctx.load_cert_chain(str(cert[0]), str(cert[1]))
            self._ctx[key] = ctx
        return self._ctx[key]

    def client(self, token=ADMIN, cert=None, source=None):
        return Client(self, token, cert, source)

    def request(self, method, path, body=None, token=ADMIN, headers=None, raw=None, cert=None,
                source=None):
        """One request; the admin's shared keep-alive connection unless token/cert/source differ."""
        if token is ADMIN and cert is None and source is None:
            if self._client is None:
                self._client = Client(self)
            return self._client.request(method, path, body, headers=headers, raw=raw)
        c = Client(self, token, cert, source)
        try:
            return c.request(method, path, body, headers=headers, raw=raw)
        finally:
            c.close()

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, body, **kw):
        return self.request("POST", path, body, **kw)

    def put(self, path, body, **kw):
        return self.request("PUT", path, body, **kw)

    def delete(self, path, **kw):
        return self.request("DELETE", path, **kw)

    def note(self, r):
        """Counts what the audit log must hold an entry for."""
        with self._lock:
            self.responses.append(r)
            if r.method in ("POST", "PUT", "DELETE") and 200 <= r.status < 300:
                self.changes += 1
            if r.status == 403:
                self.denials += 1

    def curl(self, method, path, body=None, token=ADMIN, headers=(), cert=None):
        """The same through curl: a Resp (status, headers, body)."""
        tok = self.token if token is ADMIN else token
        args = ["curl", "-sS", "-i", "--max-time", "20", "--cacert", str(self.bundle),
                "--resolve", f"localhost:{self.port}:127.0.0.1", "-X", method, "-H", "Expect:"]
        if tok:
            args += ["-H", f"Authorization: Bearer {tok}"]
        if cert:
            args += ["--cert", str(cert[0]), "--key", str(cert[1])]
        for h in headers:
            args += ["-H", h]
        data = None
        if body is not None:
            data = body if isinstance(body, (bytes, str)) else json.dumps(body)
            if isinstance(data, str):
                data = data.encode()
            args += ["-H", "Content-Type: application/json", "--data-binary", "@-"]
        args.append(f"https://localhost:{self.port}{path}")
        p = subprocess.run(args, input=data, capture_output=True, timeout=30)
        if p.returncode != 0:
            self.check_alive(f"curl {method} {path}")
        assert p.returncode == 0, f"curl {method} {path} failed ({p.returncode}): {p.stderr!r}"
        out = p.stdout
        # skip interim responses (100 Continue)
        while True:
            head, sep, rest = out.partition(b"\r\n\r\n")
            assert sep, f"curl output without a head: {out[:300]!r}"
            status = int(head.split(b" ", 2)[1])
            if status >= 200:
                break
            out = rest
        headers_d = {}
        for line in head.split(b"\r\n")[1:]:
            k, _, v = line.decode("latin-1").partition(":")
            headers_d[k.strip().lower()] = v.strip()
        r = Resp(status, headers_d, rest, method, path)
        self.note(r)
        return check_shape(r)

    def raw(self, data, source=None, read_timeout=10, responses=1):
        """Sends bytes over a fresh TLS connection; what the server answers, until it has
        sent `responses` whole responses (interim 1xx not counted) or closes."""
        s = socket.create_connection(("127.0.0.1", self.port), 10,
                                     (source, 0) if source else None)
        t = self.ssl_context().wrap_socket(s, server_hostname="localhost")
        t.settimeout(read_timeout)
        out = b""
        try:
            t.sendall(data)
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
            pass
        try:
            while _complete(out) < responses:
                b = t.recv(65536)
                if not b:
                    break
                out += b
        except (ConnectionResetError, ssl.SSLError, socket.timeout):
            pass
        finally:
            t.close()
        return out

    # ---- the audit log, through the API ----

    def audit_entries(self, token=ADMIN):
        out, start = [], 0
        while True:
            r = expect(self.get(f"/v1/audit/entries?from={start}&limit=1000", token=token), 200)
            items = r.json["items"]
            for i, it in enumerate(items):
                assert it["index"] == start + i, it
            out += [it["entry"] for it in items]
            start += len(items)
            if start >= r.json["size"] or not items:
                assert start == r.json["size"], (start, r.json["size"])
                return out

    def audit_size(self):
        return expect(self.get("/v1/health", token=None), 200).json["audit_size"]


def _complete(data):
    """How many whole final (non-1xx) responses data holds."""
    n, pos = 0, 0
    while True:
        end = data.find(b"\r\n\r\n", pos)
        if end < 0:
            return n
        head = data[pos:end].decode("latin-1")
        m = re.search(r"(?im)^content-length:\s*([0-9]+)\s*$", head)
        length = int(m.group(1)) if m else 0
        if len(data) < end + 4 + length:
            return n
        if not head.startswith("HTTP/1.1 1"):
            n += 1
        pos = end + 4 + length


def parse_raw_response(data):
    """(status, headers, body) of the first response in bytes read from a socket."""
    head, sep, rest = data.partition(b"\r\n\r\n")
    assert sep, f"no HTTP response: {data[:300]!r}"
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    n = int(headers.get("content-length", "0"))
    return Resp(status, headers, rest[:n])


def svid(ca_dir, spiffe_id, out_dir, name):
    """Issues an SVID from a CA directory: (cert chain path, key path)."""
    out_dir = pathlib.Path(out_dir)
    crt, key = out_dir / f"{name}.pem", out_dir / f"{name}.key"
    p = zt("ca", "issue", "--dir", ca_dir, "--id", spiffe_id, "--key-out", key, "--out", crt)
    assert p.returncode == 0, f"zt ca issue failed:\n{p.stdout}\n{p.stderr}"
    return crt, key
