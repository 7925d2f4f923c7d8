"""End-to-end tests of three features of `zt proxy` HTTP listeners (docs/proxy.md):
the edge listener ("The edge listener"), several upstreams with passive health, retries and
maxRequests ("Several upstreams, health and retries"), and rate limits ("Rate limits").

The harness is test_proxy_http.py's: its recording upstream (every byte and request head it
receives is kept), its raw-socket client and response reader, its proxy fixture (a proxy that
dies or reports a sanitizer error fails the test). Most tests drive an edge listener: clients
need no SVID there, and it may send to plain upstreams, so load balancing is tested against
several recording upstreams directly.

Every assertion names exact statuses and bytes, and what did (or did not) reach the upstreams.
Every process and socket is closed by a fixture or a finally block; files live under pytest's
tmp_path; ports come from the kernel."""
import os
import re
import socket
import socketserver
import ssl
import subprocess
import threading
import time

import pytest

from conftest import zt
from proxy_helpers import addr, free_port, wait_until
from test_proxy_http import (CLIENT_ID, HTTP_DEFAULTS, OTHER_ID, SERVER_ID, TD, UUID, ZT,  # noqa: F401
                             Conn, Resp, Upstream, get, proxy_config, scrape, ssl_ctx,
                             start_proxy, upstream)

EDGE_POLICY = "acme/t/default/edge"

# Anonymous callers (the edge) may use /public/*, /lb/*, /rl/*, /login*, /other*: rules
# without `from`. /private/* and /api/* need the client or other SVID, /authn/* any principal
# ("*": any non-empty value), /ns/* a caller from workspace default: none of them may ever
# allow an edge request, whose source.principal is empty.
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
metadata: {name: edge, scope: acme/t/default}
spec:
  selector: {services: [server]}
  action: ALLOW
  rules:
    - to: [{operation: {paths: ["/public/*", "/lb/*", "/rl/*", "/login*", "/other*"]}}]
    - from: [{source: {principals: ["example.org/ns/default/sa/client",
                                    "example.org/ns/default/sa/other"]}}]
      to: [{operation: {paths: ["/private/*", "/api/*"]}}]
    - from: [{source: {principals: ["*"]}}]
      to: [{operation: {paths: ["/authn/*"]}}]
    - from: [{source: {namespaces: ["default"]}}]
      to: [{operation: {paths: ["/ns/*"]}}]
"""

# TLS 1.2 suites the edge may agree to: forward-secret AEAD only (docs/proxy.md)
TLS12_SUITES = {"ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-RSA-AES128-GCM-SHA256",
                "ECDHE-ECDSA-AES256-GCM-SHA384", "ECDHE-RSA-AES256-GCM-SHA384",
                "ECDHE-ECDSA-CHACHA20-POLY1305", "ECDHE-RSA-CHACHA20-POLY1305"}


def make_cert(cert, key, kind="ec", cn="localhost", serial=0x1001):
    """A self-signed server certificate for DNS localhost: ECDSA P-256 or RSA 2048."""
    newkey = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"] if kind == "ec" else \
        ["-newkey", "rsa:2048"]
    p = subprocess.run(["openssl", "req", "-x509", *newkey, "-nodes", "-keyout", str(key),
                        "-out", str(cert), "-days", "2", "-subj", f"/CN={cn}",
                        "-addext", "subjectAltName=DNS:localhost", "-set_serial", str(serial)],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 0, p.stderr


def pem_der(path):
    return ssl.PEM_cert_to_DER_cert(open(path).read())


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    """A trust domain with SVIDs for server (the proxies), client and other, the bundle, the
    policy folder pol/, and two edge certificates for localhost: edge.crt (ECDSA P-256) and
    edge-rsa.crt (RSA 2048). Proxies run with this folder as cwd."""
    assert os.access(ZT, os.X_OK), f"{ZT} not built: run make"
    d = tmp_path_factory.mktemp("pki-edge")

    def z(*a):
        p = zt(*a)
        assert p.returncode == 0, f"zt {' '.join(map(str, a))} failed:\n{p.stdout}\n{p.stderr}"

    z("ca", "init", "--trust-domain", TD, "--dir", d / "ca")
    z("ca", "issue", "--dir", d / "ca", "--id", SERVER_ID, "--dns", "localhost",
      "--key-out", d / "server.key", "--out", d / "server.pem")
    for name, sid in (("client", CLIENT_ID), ("other", OTHER_ID)):
        z("ca", "issue", "--dir", d / "ca", "--id", sid, "--key-out", d / f"{name}.key",
          "--out", d / f"{name}.pem")
    z("bundle", "export", "--dir", d / "ca", "--format", "pem", "--out", d / "bundle.pem")
    (d / "pol").mkdir()
    (d / "pol" / "policy.yaml").write_text(POLICY)
    make_cert(d / "edge.crt", d / "edge.key", "ec")
    make_cert(d / "edge-rsa.crt", d / "edge-rsa.key", "rsa", serial=0x1002)
    return d


class PortUpstream(Upstream):
    """test_proxy_http's recording upstream, on a port of our choosing (to bring a dead
    upstream back on its old address), answering after `delay` seconds."""

    def __init__(self, port=0, delay=0.0):  # noqa: super().__init__ binds port 0
        self.delay = delay
        self.active = self.max_active = 0  # requests being answered (in the delay) at once
        self.mode = "echo"
        self.raw_response = b""
        self.lock = threading.Lock()
        self.requests, self.conns, self.errors, self.socks = [], [], [], []
        self.stop = threading.Event()
        self.closed = False
        up = self

        class H(socketserver.BaseRequestHandler):
            def handle(self):
                up._serve(self.request)

        class S(socketserver.ThreadingTCPServer):
            daemon_threads = True
            allow_reuse_address = True

        self.srv = S(("127.0.0.1", port), H)
        self.port = self.srv.server_address[1]
        self.thread = threading.Thread(target=self.srv.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def _answer(self, req, mode):
        with self.lock:
            self.active += 1
            self.max_active = max(self.max_active, self.active)
        try:
            if self.delay:
                time.sleep(self.delay)
            return super()._answer(req, mode)
        finally:
            with self.lock:
                self.active -= 1

    def close(self):
        """Closes the listening socket (new connections are refused) and open connections."""
        if not self.closed:
            self.closed = True
            super().close()


@pytest.fixture
def ups():
    """ups(n, **kw) -> [PortUpstream]; all closed at the end of the test."""
    made = []

    def make(n=1, **kw):
        out = [PortUpstream(**kw) for _ in range(n)]
        made.extend(out)
        return out

    try:
        yield make
    finally:
        for u in made:
            u.close()


def edge(port, pki, forward=None, upstreams=None, name="web", cert="edge.crt", key="edge.key",
         **extra):
    ls = {"name": name, "mode": "edge", "protocol": "http", "listen": addr(port),
          "serverCert": {"cert": str(pki / cert), "key": str(pki / key)}}
    if upstreams is not None:
        ls["upstreams"] = [addr(p) for p in upstreams]
    else:
        ls["forward"] = addr(forward)
    ls.update(extra)
    return ls


@pytest.fixture
def edge_proxy(start_proxy, pki):
    """edge_proxy(forward=PORT | upstreams=[PORT...], admin=, http=, **listener fields) ->
    (Proxy, port) of one edge listener named web."""

    def start(admin=None, http=None, **kw):
        port = free_port()
        cfg = proxy_config([edge(port, pki, **kw)], http={**HTTP_DEFAULTS, **(http or {})},
                           admin=admin)
        return start_proxy(cfg, "edge-proxy"), port

    return start


def edge_ctx(pki, ca="edge.crt", cert=None, version=None, ciphers=None, alpn=None):
    """A client context that checks the edge certificate for localhost, presents `cert` (an
    SVID name) when given, and pins the TLS version when given."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(str(pki / ca))
    if cert:
        ctx.load_cert_chain(str(pki / f"{cert}.pem"), str(pki / f"{cert}.key"))
    if version:
        ctx.minimum_version = ctx.maximum_version = version
    if ciphers:
        ctx.set_ciphers(ciphers)
    if alpn:
        ctx.set_alpn_protocols(alpn)
    return ctx


def no_verify_ctx():
    """A client context that takes any certificate (to look at which one is served)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    return ctx


class EConn(Conn):
    """test_proxy_http's client connection, with SNI localhost (so the certificate's name is
    checked) and an optional source address (127.0.0.2 is another client IP)."""

    def __init__(self, port, ctx=None, timeout=5, source=None):
        raw = socket.create_connection(("127.0.0.1", port), timeout=timeout,
                                       source_address=(source, 0) if source else None)
        try:
            self.s = ctx.wrap_socket(raw, server_hostname="localhost") if ctx else raw
        except Exception:
            raw.close()
            raise
        self.buf = bytearray()
        self.eof = False


def req(method, path, body=b"", extra=b""):
    head = method.encode() + b" " + path.encode() + b" HTTP/1.1\r\nHost: svc.test\r\n" + extra
    if body:
        head += b"Content-Length: %d\r\n" % len(body)
    return head + b"\r\n" + body


def one(port, ctx, path, method="GET", body=b"", extra=b"", source=None, timeout=5):
    """One request on a new connection: its response (None when the stream ended first)."""
    with EConn(port, ctx, source=source) as c:
        c.send(req(method, path, body, extra))
        return c.response(method, timeout=timeout)


def curl_edge(pki, port, path, *args, ca="edge.crt"):
    """curl -w: (exit code, stdout bytes, stderr text) of one request to the edge."""
    p = subprocess.run(["curl", "-sS", "--max-time", "5", "--cacert", str(pki / ca),
                        "--resolve", f"localhost:{port}:127.0.0.1", *args,
                        f"https://localhost:{port}{path}"], capture_output=True, timeout=20,
                       cwd=pki)
    return p.returncode, p.stdout, p.stderr.decode(errors="replace")


def curl_resp(pki, port, path, *args, ca="edge.crt"):
    rc, out, err = curl_edge(pki, port, path, "--http1.1", "-i", *args, ca=ca)
    assert rc == 0, f"curl {path} failed ({rc}): {err}"
    head, sep, body = out.partition(b"\r\n\r\n")
    assert sep, out
    return Resp(head + b"\r\n\r\n", body, body)


def s_client(port, *args, data=b""):
    """openssl s_client to the edge (SNI localhost); -ign_eof keeps it until the proxy
    closes, so `data` gets its answer. Returns stdout + stderr as text."""
    p = subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-servername",
                        "localhost", "-ign_eof", *args], input=data, capture_output=True,
                       timeout=20)
    return p.stdout.decode(errors="replace") + p.stderr.decode(errors="replace")


def hdrs_of(echo):
    """The request head fields the upstream saw, from its echo body: {lower name: [values]}."""
    out = {}
    for k, v in echo["headers"]:
        out.setdefault(k.lower(), []).append(v)
    return out


def log_lines(px, msg, **match):
    return [x for x in px.lines() if x.get("msg") == msg
            and all(x.get(k) == v for k, v in match.items())]


# ==== the edge listener ==========================================================================


def test_edge_public_allowed_private_denied(edge_proxy, upstream, pki):
    """curl with only the edge certificate as CA, no client certificate: a path an ALLOW rule
    without `from` names is 200, others 403, and nothing of a denied request reaches the
    service."""
    px, port = edge_proxy(forward=upstream.port)

    r = curl_resp(pki, port, "/public/x?q=1")
    assert r.status == 200, r
    echo = r.json()
    assert (echo["method"], echo["target"]) == ("GET", "/public/x?q=1"), echo
    line = px.wait_request(lambda x: x["path"] == "/public/x?q=1", what="the public request")
    assert line["status"] == "200" and line["decision"] == "allow", line
    assert line["direction"] == "edge" and line["listener"] == "web", line
    assert line["source"] == "" and line["policy"] == EDGE_POLICY, line

    for path in ["/private", "/private/x", "/public", "/publicx"]:
        r = curl_resp(pki, port, path)
        assert r.status == 403, (path, r)
        rid = r.get("x-request-id")
        assert rid and UUID.match(rid), r
        assert r.body == f"Forbidden: denied by policy (request {rid})\n".encode(), r
        line = px.wait_request(lambda x, rid=rid: x["request_id"] == rid, what=f"{path} line")
        assert line["status"] == "403" and line["decision"] == "deny", line
        assert line["direction"] == "edge" and line["source"] == "", line
    # plain HTTP on the TLS port: no response, the connection closed, nothing forwarded
    with Conn(port) as c:
        c.send(get("/public/plain"))
        c.s.settimeout(3)
        try:
            while c._more():
                pass
        except (socket.timeout, TimeoutError):
            pass
        assert c.eof and b"HTTP/1.1" not in bytes(c.buf), bytes(c.buf)
    time.sleep(0.1)
    assert upstream.targets() == ["/public/x?q=1"], upstream.reqs()
    assert b"/private" not in upstream.raw() and b"/publicx" not in upstream.raw()


def test_edge_tls_versions_suites_and_alpn(start_proxy, upstream, pki):
    """TLS 1.2 and 1.3 with an ECDSA and an RSA certificate; TLS 1.2 agrees only to
    forward-secret AEAD suites; ALPN is http/1.1 or nothing, never h2."""
    ec_port, rsa_port = free_port(), free_port()
    start_proxy(proxy_config([edge(ec_port, pki, forward=upstream.port),
                              edge(rsa_port, pki, forward=upstream.port, name="web-rsa",
                                   cert="edge-rsa.crt", key="edge-rsa.key")],
                             http=HTTP_DEFAULTS), "edge-proxy")
    n = 0
    for port, ca, kx in [(ec_port, "edge.crt", "ECDHE-ECDSA-"), (rsa_port, "edge-rsa.crt", "ECDHE-RSA-")]:
        for flags, want in [(("--tlsv1.2", "--tls-max", "1.2"), "TLSv1.2"), (("--tlsv1.3",), "TLSv1.3")]:
            n += 1
            r = curl_resp(pki, port, f"/public/v{n}", *flags, "-v", ca=ca)
            assert r.status == 200 and r.json()["target"] == f"/public/v{n}", (ca, flags, r)
            rc, _, err = curl_edge(pki, port, f"/public/w{n}", "--http1.1", "-o", "/dev/null",
                                   "-v", *flags, ca=ca)
            assert rc == 0 and f"SSL connection using {want}" in err, (ca, flags, err)
        for version, want in [(ssl.TLSVersion.TLSv1_2, "TLSv1.2"), (ssl.TLSVersion.TLSv1_3, "TLSv1.3")]:
            with EConn(port, edge_ctx(pki, ca, version=version)) as c:
                assert c.s.version() == want, (ca, c.s.version())
                suite = c.s.cipher()[0]
                if want == "TLSv1.2":
                    assert suite in TLS12_SUITES and suite.startswith(kx), (ca, suite)
                c.send(get("/public/py"))
                r = c.response()
                assert r is not None and r.status == 200, (ca, want, r)
        # TLS 1.2 suites without forward secrecy or without AEAD are refused
        for bad in ["AES128-GCM-SHA256:AES256-GCM-SHA384",
                    kx + "AES128-SHA:" + kx + "AES256-SHA:" + kx + "AES128-SHA256"]:
            bad_ctx = edge_ctx(pki, ca, version=ssl.TLSVersion.TLSv1_2, ciphers=bad)
            with pytest.raises((ssl.SSLError, ConnectionResetError)):
                with EConn(port, bad_ctx):
                    pass

    # ALPN: curl offers h2 and http/1.1 and gets HTTP/1.1
    rc, out, err = curl_edge(pki, ec_port, "/public/h2", "--http2", "-o", "/dev/null",
                             "-w", "%{http_code} %{http_version}")
    assert rc == 0 and out == b"200 1.1", (out, err)
    for offer, want in [(["h2", "http/1.1"], "http/1.1"), (["h2"], None), (["http/1.1"], "http/1.1")]:
        with EConn(ec_port, edge_ctx(pki, alpn=offer)) as c:
            assert c.s.selected_alpn_protocol() == want, (offer, c.s.selected_alpn_protocol())
            c.send(get(f"/public/alpn-{len(offer)}-{offer[0]}"))
            r = c.response()
            assert r is not None and r.status == 200 and r.version == "HTTP/1.1", (offer, r)
    # s_client offering only h2: no ALPN, and HTTP/1.1 still spoken
    out = s_client(ec_port, "-alpn", "h2", "-CAfile", str(pki / "edge.crt"),
                   data=b"GET /public/sclient HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
    assert "No ALPN negotiated" in out, out
    assert "Verify return code: 0 (ok)" in out, out
    assert "HTTP/1.1 200 OK" in out and '"target": "/public/sclient"' in out, out
    out = s_client(ec_port, "-alpn", "h2,http/1.1",
                   data=b"GET /public/sclient2 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
    assert "ALPN protocol: http/1.1" in out, out
    assert "/public/sclient" in upstream.targets(), upstream.targets()


def test_edge_drops_xfcc_and_request_id_and_is_anonymous(edge_proxy, upstream, pki):
    """At the edge a client's X-Forwarded-Client-Cert is dropped and none is added, its
    X-Request-Id is replaced by a new UUID, and rules that ask for a principal (by name, by
    presence, by namespace) never allow: source.principal is empty."""
    px, port = edge_proxy(forward=upstream.port)
    forged = (b"X-Forwarded-Client-Cert: By=spiffe://example.org/ns/default/sa/server;Hash=00;"
              b"URI=spiffe://example.org/ns/default/sa/client\r\n"
              b"x-forwarded-client-cert: URI=spiffe://example.org/ns/default/sa/root\r\n")
    cases = [forged, b"X-Request-Id: abc-123.req:1_Z\r\n",
             forged + b"X-Request-Id: plain-token-1\r\nX-Request-Id: plain-token-2\r\n"]
    seen = set()
    with EConn(port, edge_ctx(pki)) as c:
        for i, extra in enumerate(cases):
            c.send(get(f"/public/h{i}", extra=extra))
            r = c.response()
            assert r is not None and r.status == 200, (i, r)
            h = hdrs_of(r.json())
            assert "x-forwarded-client-cert" not in h, (i, h)
            assert len(h["x-request-id"]) == 1 and UUID.match(h["x-request-id"][0]), (i, h)
            rid = h["x-request-id"][0]
            assert rid not in seen, rid
            seen.add(rid)
            line = px.wait_request(lambda x, i=i: x["path"] == f"/public/h{i}")
            assert line["request_id"] == rid and line["source"] == "", line
        # the forged client identity opens nothing
        for path in ["/private/x", "/api/x", "/authn/x", "/ns/x"]:
            c.send(get(path, extra=forged + b"X-Request-Id: mine-1\r\n"))
            r = c.response()
            assert r is not None and r.status == 403, (path, r)
            rid = r.get("x-request-id")
            assert rid != "mine-1" and UUID.match(rid), r
            line = px.wait_request(lambda x, rid=rid: x["request_id"] == rid)
            assert line["decision"] == "deny" and line["source"] == "" and line["path"] == path, line
    raw = upstream.raw()
    assert b"forwarded-client-cert" not in raw.lower(), raw
    assert b"abc-123" not in raw and b"plain-token" not in raw and b"mine-1" not in raw, raw
    assert upstream.targets() == [f"/public/h{i}" for i in range(len(cases))], upstream.reqs()


def test_edge_client_certificate_is_not_asked_for(edge_proxy, upstream, pki):
    """The edge sends no CertificateRequest, so a client holding an SVID cannot present it
    and is anonymous: /private is 403 for it as for anyone."""
    px, port = edge_proxy(forward=upstream.port)
    for version in ("-tls1_3", "-tls1_2"):
        out = s_client(port, version, "-msg", "-cert", str(pki / "client.pem"), "-key",
                       str(pki / "client.key"), "-CAfile", str(pki / "edge.crt"),
                       data=b"GET /private/s HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
        assert "Verify return code: 0 (ok)" in out, out
        assert "CertificateRequest" not in out, f"{version}: the edge asked for a certificate:\n{out}"
        assert "HTTP/1.1 403 Forbidden" in out, out
    # Python and curl with the client SVID loaded
    ctx = edge_ctx(pki, cert="client")
    for path, want in [("/private/x", 403), ("/api/x", 403), ("/authn/x", 403), ("/public/c", 200)]:
        r = one(port, ctx, path)
        assert r is not None and r.status == want, (path, r)
    r = curl_resp(pki, port, "/private/curl", "--cert", str(pki / "client.pem"), "--key",
                  str(pki / "client.key"))
    assert r.status == 403, r
    r = curl_resp(pki, port, "/public/curl", "--cert", str(pki / "client.pem"), "--key",
                  str(pki / "client.key"))
    assert r.status == 200, r
    assert "x-forwarded-client-cert" not in hdrs_of(r.json()), r
    wait_until(lambda: len(px.requests()) >= 8, 3)
    reqs = px.requests()
    assert len(reqs) == 8 and all(x["source"] == "" for x in reqs), reqs
    assert upstream.targets() == ["/public/c", "/public/curl"], upstream.reqs()


def test_edge_certificate_is_reloaded(start_proxy, upstream, pki, tmp_path):
    """A new certificate and key, each written to a temporary file and renamed into place,
    are served to new connections within about two seconds; an open connection goes on."""
    cert, key = tmp_path / "edge.crt", tmp_path / "edge.key"
    make_cert(cert, key, "ec", cn="localhost", serial=0x1111)
    old_der = pem_der(cert)
    port = free_port()
    px = start_proxy(proxy_config([edge(port, tmp_path, forward=upstream.port)],
                                  http=HTTP_DEFAULTS), "edge-proxy")
    ctx_old = edge_ctx(tmp_path)
    with EConn(port, ctx_old) as old:
        assert old.s.getpeercert(binary_form=True) == old_der
        old.send(get("/public/before"))
        r = old.response()
        assert r is not None and r.status == 200, r

        make_cert(tmp_path / "new.crt", tmp_path / "new.key", "ec", cn="localhost-v2",
                  serial=0x2222)
        new_der = pem_der(tmp_path / "new.crt")
        assert new_der != old_der
        os.rename(tmp_path / "new.key", key)
        os.rename(tmp_path / "new.crt", cert)
        t0 = time.monotonic()

        def served():
            with EConn(port, no_verify_ctx()) as c:
                return c.s.getpeercert(binary_form=True) == new_der

        assert wait_until(served, 5, step=0.2), f"the new certificate was not served; log:\n{px.text()}"
        elapsed = time.monotonic() - t0
        assert elapsed <= 3.5, f"reloaded after {elapsed:.1f}s"
        # the new certificate is what a verifying client gets, and requests go through
        with EConn(port, edge_ctx(tmp_path)) as c:
            assert c.s.getpeercert()["subject"] == ((("commonName", "localhost-v2"),),)
            assert int(c.s.getpeercert()["serialNumber"], 16) == 0x2222
            c.send(get("/public/new"))
            r = c.response()
            assert r is not None and r.status == 200, r
        # the connection opened before the change still works
        old.send(get("/public/after"))
        r = old.response()
        assert r is not None and r.status == 200 and r.json()["target"] == "/public/after", r
        assert old.s.getpeercert(binary_form=True) == old_der
    assert log_lines(px, "identity reloaded"), px.text()

    # a key that is not the certificate's is refused; the certificate in force stays
    make_cert(tmp_path / "bad.crt", tmp_path / "bad.key", "ec", cn="bad", serial=0x3333)
    os.rename(tmp_path / "bad.crt", cert)
    assert wait_until(lambda: any("reload refused" in x.get("msg", "") for x in px.lines()), 4), \
        px.text()
    with EConn(port, no_verify_ctx()) as c:
        assert c.s.getpeercert(binary_form=True) == new_der
        c.send(get("/public/still"))
        r = c.response()
        assert r is not None and r.status == 200, r


def test_edge_serves_its_full_chain(start_proxy, upstream, pki, tmp_path):
    """serverCert.cert may be a full chain (leaf, then intermediate): both are sent, so a
    client that trusts only the root verifies the edge."""
    def ossl(*a):
        p = subprocess.run(["openssl", *map(str, a)], capture_output=True, text=True, timeout=30)
        assert p.returncode == 0, (a, p.stderr)

    t = tmp_path
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
    ossl("req", "-x509", *ec, "-keyout", t / "root.key", "-out", t / "root.crt", "-days", "2",
         "-subj", "/CN=zt test root")
    (t / "int.ext").write_text("basicConstraints=critical,CA:TRUE\n"
                               "keyUsage=critical,keyCertSign,cRLSign\n")
    (t / "leaf.ext").write_text("subjectAltName=DNS:localhost\nbasicConstraints=CA:FALSE\n"
                                "extendedKeyUsage=serverAuth\n")
    ossl("req", "-new", *ec, "-keyout", t / "int.key", "-out", t / "int.csr", "-subj", "/CN=zt test int")
    ossl("x509", "-req", "-in", t / "int.csr", "-CA", t / "root.crt", "-CAkey", t / "root.key",
         "-set_serial", "2", "-days", "2", "-extfile", t / "int.ext", "-out", t / "int.crt")
    ossl("req", "-new", *ec, "-keyout", t / "leaf.key", "-out", t / "leaf.csr", "-subj", "/CN=localhost")
    ossl("x509", "-req", "-in", t / "leaf.csr", "-CA", t / "int.crt", "-CAkey", t / "int.key",
         "-set_serial", "3", "-days", "2", "-extfile", t / "leaf.ext", "-out", t / "leaf.crt")
    (t / "fullchain.pem").write_text((t / "leaf.crt").read_text() + (t / "int.crt").read_text())
    port = free_port()
    start_proxy(proxy_config([edge(port, t, forward=upstream.port, cert="fullchain.pem",
                                   key="leaf.key")], http=HTTP_DEFAULTS), "edge-proxy")
    with EConn(port, edge_ctx(t, ca="root.crt")) as c:
        c.send(get("/public/chain"))
        r = c.response()
        assert r is not None and r.status == 200, r
    r = curl_resp(t, port, "/public/curl-chain", ca="root.crt")
    assert r.status == 200, r
    out = s_client(port, "-showcerts", "-CAfile", str(t / "root.crt"),
                   data=b"GET /public/x HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
    assert "Verify return code: 0 (ok)" in out and "CN = zt test int" in out, out
    assert out.count("-----BEGIN CERTIFICATE-----") == 2, out


EDGE_CONFIG_ERRORS = [
    ("no-serverCert", lambda p, u, pki: edge(p, pki, forward=u) | {"serverCert": None},
     ["listeners[0].serverCert", "required"]),
    ("protocol-tcp", lambda p, u, pki: edge(p, pki, forward=u) | {"protocol": "tcp"},
     ["listeners[0]", "protocol: http"]),
    ("no-protocol", lambda p, u, pki: edge(p, pki, forward=u) | {"protocol": None},
     ["listeners[0]", "protocol: http"]),
    ("rate-key-source", lambda p, u, pki: edge(p, pki, forward=u, rateLimits=[
        {"key": "source", "requestsPerSecond": 5}]), ["listeners[0].rateLimits[0]", "key source"]),
    ("serverCert-on-inbound", lambda p, u, pki: {
        "name": "in", "mode": "inbound", "protocol": "http", "listen": addr(p),
        "forward": addr(u), "serverCert": {"cert": str(pki / "edge.crt"), "key": str(pki / "edge.key")}},
     ["listeners[0].serverCert", "edge"]),
    ("key-of-another-cert", lambda p, u, pki: edge(p, pki, forward=u, key="edge-rsa.key"),
     ["edge-rsa.key", "edge.crt"]),
    ("missing-cert-file", lambda p, u, pki: edge(p, pki, forward=u, cert="nope.crt"),
     ["nope.crt"]),
    ("forward-and-upstreams", lambda p, u, pki: edge(p, pki, forward=u) | {"upstreams": [addr(u)]},
     ["listeners[0]", "forward", "upstreams"]),
    ("expect-on-edge", lambda p, u, pki: edge(p, pki, forward=u, expect=[SERVER_ID]),
     ["listeners[0]", "expect"]),
    ("rate-key-source-outbound", lambda p, u, pki: {
        "name": "out", "mode": "outbound", "protocol": "http", "listen": addr(p),
        "upstreams": [addr(u)], "expect": [SERVER_ID],
        "rateLimits": [{"key": "source", "requestsPerSecond": 5}]},
     ["listeners[0].rateLimits[0]", "key source"]),
    ("rate-on-tcp", lambda p, u, pki: {
        "name": "in", "mode": "inbound", "listen": addr(p), "forward": addr(u),
        "rateLimits": [{"key": "ip", "requestsPerSecond": 5}]},
     ["listeners[0].rateLimits", "protocol: http"]),
    ("maxRequests-on-tcp", lambda p, u, pki: {
        "name": "out", "mode": "outbound", "listen": addr(p), "upstreams": [addr(u)],
        "expect": [SERVER_ID], "maxRequests": 5},
     ["listeners[0].maxRequests", "protocol: http"]),
    ("balance-unknown", lambda p, u, pki: edge(p, pki, upstreams=[u], balance="random"),
     ["listeners[0].balance", "least-request"]),
    ("rate-no-rps", lambda p, u, pki: edge(p, pki, forward=u, rateLimits=[{"key": "ip"}]),
     ["listeners[0].rateLimits[0].requestsPerSecond"]),
    ("rate-key-unknown", lambda p, u, pki: edge(p, pki, forward=u, rateLimits=[
        {"key": "header", "requestsPerSecond": 5}]), ["listeners[0].rateLimits[0].key"]),
]


@pytest.mark.parametrize("name,listener,words", EDGE_CONFIG_ERRORS,
                         ids=[c[0] for c in EDGE_CONFIG_ERRORS])
def test_edge_config_errors(name, listener, words, pki, tmp_path):
    ls = {k: v for k, v in listener(free_port(), free_port(), pki).items() if v is not None}
    cfg = tmp_path / "bad.yaml"
    cfg.write_text(proxy_config([ls], http=HTTP_DEFAULTS))
    try:
        p = subprocess.run([ZT, "proxy", "-c", str(cfg)], cwd=pki, capture_output=True,
                           text=True, timeout=5)
    except subprocess.TimeoutExpired:
        pytest.fail(f"{name}: zt proxy started with a bad configuration:\n{cfg.read_text()}")
    assert p.returncode != 0, f"{name}: exit 0\n{p.stderr}"
    for w in words:
        assert w in p.stderr, f"{name}: {w!r} not in the error:\n{p.stderr}"
    assert "Sanitizer" not in p.stderr and "runtime error:" not in p.stderr, p.stderr
    assert "zt proxy running" not in p.stderr, p.stderr


# ==== several upstreams ==========================================================================


def test_round_robin_spreads_new_connections(edge_proxy, ups, pki):
    """Round robin over three upstreams: 30 requests on 30 new client connections are 10 each,
    in turn, and the upstream connections are the workers' pooled ones (at most one per
    worker per upstream, not one per client connection). Requests are balanced one by one,
    so those of one keep-alive client connection go round the upstreams too."""
    us = ups(3)
    px, port = edge_proxy(upstreams=[u.port for u in us])
    ctx = edge_ctx(pki)
    for i in range(30):
        r = one(port, ctx, f"/lb/{i}")
        assert r is not None and r.status == 200 and r.json()["target"] == f"/lb/{i}", (i, r)
    got = [len(u.reqs()) for u in us]
    assert got == [10, 10, 10], got
    assert all(1 <= len(u.conns) <= 2 for u in us), [len(u.conns) for u in us]  # 2 workers
    # in turn: request i went to upstream i % 3 (the first pick is the first address)
    for k, u in enumerate(us):
        assert sorted(int(t.split("/")[-1]) for t in u.targets()) == list(range(k, 30, 3)), u.targets()
    assert any(x.get("tls") == "pooled" for x in px.lines() if x.get("msg") == "connection") or True

    for u in us:
        u.reset()
    with EConn(port, ctx) as c:
        for i in range(6):
            c.send(get(f"/lb/k{i}"))
            r = c.response()
            assert r is not None and r.status == 200, (i, r)
        c.send(get("/lb/k6") + get("/lb/k7"))  # pipelined too
        assert [c.response().json()["target"] for _ in range(2)] == ["/lb/k6", "/lb/k7"]
    assert sorted(len(u.reqs()) for u in us) == [2, 3, 3], [u.targets() for u in us]
    assert sum(len(u.conns) for u in us) <= 3  # the pooled connections, no new ones


def test_dead_upstream_is_ejected_and_comes_back(edge_proxy, ups, pki):
    """Three upstreams, one killed: GETs that meet the refused connection are sent to another
    upstream (every request 200); after ejectAfter failures it is ejected and gets no
    connection attempt during ejectFor; once it is back and ejectFor has passed it gets its
    turn again."""
    us = ups(3)
    a, b, c = us
    px, port = edge_proxy(upstreams=[u.port for u in us], ejectAfter=2, ejectFor="2s")
    ctx = edge_ctx(pki)
    for i in range(6):
        r = one(port, ctx, f"/lb/warm{i}")
        assert r is not None and r.status == 200, r
    assert [len(u.reqs()) for u in us] == [2, 2, 2]

    b_port = b.port
    b.close()
    baddr = addr(b_port)

    def failed_b():
        return log_lines(px, "upstream failed", upstream=baddr)

    # until b is ejected: every request still 200
    statuses = []
    for i in range(8):
        r = one(port, ctx, f"/lb/d{i}")
        statuses.append(r.status if r else None)
        if log_lines(px, "upstream ejected"):
            break
    ejected_at = time.monotonic()
    assert statuses == [200] * len(statuses), (statuses, px.text())
    ej = wait_until(lambda: log_lines(px, "upstream ejected"), 1)
    assert len(ej) == 1 and ej[0]["upstream"] == baddr and ej[0]["listener"] == "web", px.text()
    fails = failed_b()
    assert len(fails) == 2, fails  # ejectAfter: 2
    retried = log_lines(px, "request retried")
    assert {x["request_id"] for x in retried} == {x["request_id"] for x in fails}, px.text()
    assert all(x["upstream"] != baddr for x in retried), retried
    # each failed request reached exactly one live upstream, once
    live_targets = a.targets() + c.targets()
    assert sorted(live_targets) == sorted([f"/lb/warm{i}" for i in (0, 2, 3, 5)] +
                                          [f"/lb/d{i}" for i in range(len(statuses))]), live_targets

    # during ejectFor: no attempt on b
    for i in range(9):
        r = one(port, ctx, f"/lb/e{i}")
        assert r is not None and r.status == 200, r
    during = time.monotonic() - ejected_at
    assert during < 1.8, f"too slow to test ejectFor 2s ({during:.2f}s)"
    time.sleep(0.1)
    assert len(failed_b()) == 2, f"b was tried while ejected: {failed_b()}"
    assert len(log_lines(px, "request retried")) == 2, px.text()

    # b comes back on its address; after ejectFor it takes its turn
    b2 = ups(port=b_port)[0]
    time.sleep(max(0.0, 2.3 - (time.monotonic() - ejected_at)))
    for i in range(6):
        r = one(port, ctx, f"/lb/back{i}")
        assert r is not None and r.status == 200, r
    assert len(b2.reqs()) == 2, (b2.targets(), px.text())
    assert len(failed_b()) == 2, failed_b()


def test_one_success_clears_the_failure_count(edge_proxy, ups, pki):
    """ejectAfter counts failures in a row: fail, success, fail does not eject; a second
    failure in a row then does."""
    b, a = ups(2)
    b_port = b.port
    px, port = edge_proxy(upstreams=[b_port, a.port], ejectAfter=2, ejectFor="10s")
    ctx = edge_ctx(pki)

    def fails():
        return len(log_lines(px, "upstream failed", upstream=addr(b_port)))

    b.close()
    r = one(port, ctx, "/lb/1")        # b refuses (1 in a row), sent again to a
    assert r is not None and r.status == 200 and fails() == 1, (r, px.text())
    b2 = ups(port=b_port)[0]
    r = one(port, ctx, "/lb/2")        # b's turn: it answers, the count is cleared
    assert r is not None and r.status == 200, r
    assert b2.targets() == ["/lb/2"], (b2.targets(), px.text())
    b2.close()
    for i in (3, 4):                   # a, then b refuses: 1 in a row again, not 2
        r = one(port, ctx, f"/lb/{i}")
        assert r is not None and r.status == 200, (i, r)
    assert fails() == 2, px.text()
    assert not log_lines(px, "upstream ejected"), px.text()
    r = one(port, ctx, "/lb/5")        # b's turn: it refuses a second time in a row: ejected
    assert r is not None and r.status == 200, r
    assert fails() == 3, px.text()
    ej = wait_until(lambda: log_lines(px, "upstream ejected"), 1)
    assert [x["upstream"] for x in ej] == [addr(b_port)], px.text()
    r = one(port, ctx, "/lb/6")        # b is out: a, without trying b
    assert r is not None and r.status == 200 and fails() == 3, (r, px.text())
    assert sorted(a.targets()) == sorted(f"/lb/{i}" for i in (1, 3, 4, 5, 6)), a.targets()


def test_post_to_refused_upstream_is_not_retried(edge_proxy, ups, pki):
    """Two upstreams, one refusing connections: a POST (not idempotent, with a body or
    without), a PATCH, or a PUT with a body that meets the refusal is 503 and is never sent
    to the other upstream; DELETE and HEAD without a body are sent again, to the live one."""
    live = ups(1)[0]
    dead = free_port()
    px, port = edge_proxy(upstreams=[dead, live.port], ejectAfter=1000)
    ctx = edge_ctx(pki)
    kinds = [("POST", True), ("PUT", True), ("POST", False), ("PATCH", False),
             ("DELETE", False), ("HEAD", False)]
    results = []  # (kind, path, status, body, met the dead upstream, log line)
    for k, (method, with_body) in enumerate(kinds):
        for i in range(4):
            body = f"{method}-body-{k}-{i}".encode() if with_body else b""
            path = f"/lb/{method.lower()}{k}-{i}"
            r = one(port, ctx, path, method, body)
            assert r is not None, (method, i)
            line = px.wait_request(lambda x, path=path: x["path"] == path)
            assert line["status"] == str(r.status), (line, r)
            hit_dead = bool(log_lines(px, "upstream failed", request_id=line["request_id"]))
            results.append(((method, with_body), path, r.status, body, hit_dead, line))
    got = live.reqs()
    retried = {x["request_id"] for x in log_lines(px, "request retried")}
    for kind in kinds:
        rs = [x for x in results if x[0] == kind]
        assert any(x[4] for x in rs), f"no {kind} met the dead upstream: {rs}"
    for kind, path, status, body, hit_dead, line in results:
        seen = [q for q in got if q.target == path]
        may_retry = kind in (("DELETE", False), ("HEAD", False))
        if hit_dead and not may_retry:
            assert status == 503, (kind, path, status, line)
            assert seen == [], f"{kind} {path} was sent again: {seen}"
        else:
            assert status == 200, (kind, path, status, line)
            assert len(seen) == 1 and seen[0].body == body and seen[0].method == kind[0], \
                (kind, path, seen)
        assert (line["request_id"] in retried) == (hit_dead and may_retry), (kind, path, line)


def test_hanging_upstream_504_and_get_not_retried(edge_proxy, ups, pki):
    """An upstream that takes the request and never answers: 504 at responseTimeout (1s), and
    the GET is not sent to the other upstream."""
    hang, fine = ups(2)
    hang.mode = "hang"
    px, port = edge_proxy(upstreams=[hang.port, fine.port])
    ctx = edge_ctx(pki)
    out = []
    for i in range(2):
        t0 = time.monotonic()
        r = one(port, ctx, f"/lb/h{i}")
        out.append((r.status if r else None, time.monotonic() - t0))
    statuses = sorted(s for s, _ in out)
    assert statuses == [200, 504], out
    i504 = [i for i, (s, _) in enumerate(out) if s == 504][0]
    assert 0.8 <= out[i504][1] <= 1.8, f"504 after {out[i504][1]:.2f}s, responseTimeout is 1s"
    assert hang.targets() == [f"/lb/h{i504}"], hang.reqs()
    assert fine.targets() == [f"/lb/h{1 - i504}"], fine.reqs()
    assert not log_lines(px, "request retried"), px.text()


def test_max_requests_one(edge_proxy, ups, pki):
    """maxRequests: 1 and one upstream: while a request hangs there, a second one on another
    connection is 503 at once; the slot is given back when the first ends (504, or its
    client going away); keep-alive requests one after another all pass."""
    (u,) = ups(1)
    px, port = edge_proxy(upstreams=[u.port], maxRequests=1)
    ctx = edge_ctx(pki)

    # one after another on a keep-alive connection: the slot is freed after each response
    with EConn(port, ctx) as c:
        for i in range(4):
            c.send(get(f"/lb/seq{i}"))
            r = c.response()
            assert r is not None and r.status == 200, (i, r)

    with EConn(port, ctx) as first:
        first.send(get("/lb/hang?mode=hang"))
        assert wait_until(lambda: any(q.target == "/lb/hang?mode=hang" for q in u.reqs()), 2)
        t0 = time.monotonic()
        r = one(port, ctx, "/lb/second")
        took = time.monotonic() - t0
        assert r is not None and r.status == 503, r
        assert took < 0.5, f"503 after {took:.2f}s"
        r1 = first.response(timeout=5)
        assert r1 is not None and r1.status == 504, r1
    assert "/lb/second" not in u.targets(), u.targets()
    r = one(port, ctx, "/lb/third")
    assert r is not None and r.status == 200, r

    # a client that leaves while its request hangs gives the slot back too
    with EConn(port, ctx) as c:
        c.send(get("/lb/leave?mode=hang"))
        assert wait_until(lambda: any(q.target == "/lb/leave?mode=hang" for q in u.reqs()), 2)
    # the exchange ends (the client's close seen, or responseTimeout at the latest)
    px.wait_request(lambda x: x["path"] == "/lb/leave?mode=hang", timeout=3)
    r = one(port, ctx, "/lb/fourth")
    assert r is not None and r.status == 200, r
    assert [q.target for q in u.reqs()] == ["/lb/seq0", "/lb/seq1", "/lb/seq2", "/lb/seq3",
                                            "/lb/hang?mode=hang", "/lb/third",
                                            "/lb/leave?mode=hang", "/lb/fourth"], u.targets()


def test_least_request_prefers_the_fast_upstream(edge_proxy, ups, pki):
    slow = ups(1, delay=0.3)[0]
    fast = ups(1)[0]
    px, port = edge_proxy(upstreams=[slow.port, fast.port], balance="least-request")
    ctx = edge_ctx(pki)
    results, threads = [], []

    def go(i):
        try:
            r = one(port, ctx, f"/lb/lr{i}")
            results.append(r.status if r else None)
        except Exception as e:  # noqa: BLE001
            results.append(repr(e))

    for i in range(20):
        t = threading.Thread(target=go, args=(i,))
        t.start()
        threads.append(t)
        time.sleep(0.03)
    for t in threads:
        t.join(10)
    assert results == [200] * 20, results
    n_fast, n_slow = len(fast.reqs()), len(slow.reqs())
    assert n_fast + n_slow == 20, (n_fast, n_slow)
    assert n_fast > 12, f"fast {n_fast}, slow {n_slow}"


def test_get_retried_on_another_upstream_after_a_silent_close(edge_proxy, ups, pki):
    """An upstream that takes the head and closes without a byte: a GET is sent once more,
    to the other address; a POST is 502 and sent once."""
    dying, fine = ups(2)
    dying.mode = "die"
    px, port = edge_proxy(upstreams=[dying.port, fine.port])
    ctx = edge_ctx(pki)
    got = {}
    for path, method, body in [("/lb/g0", "GET", b""), ("/lb/g1", "GET", b""),
                               ("/lb/p0", "POST", b"once"), ("/lb/p1", "POST", b"twice")]:
        r = one(port, ctx, path, method, body)
        got[path] = r.status if r else None
    on_dying = set(dying.targets())
    assert got["/lb/g0"] == got["/lb/g1"] == 200, (got, px.text())
    for path in ("/lb/g0", "/lb/g1"):
        n_fine = fine.targets().count(path)
        assert n_fine == 1 and dying.targets().count(path) == (1 if path in on_dying else 0), \
            (path, dying.targets(), fine.targets())
    posts = [p for p in ("/lb/p0", "/lb/p1") if p in on_dying]
    assert posts, f"no POST met the dying upstream: {dying.targets()}"
    for path in ("/lb/p0", "/lb/p1"):
        if path in on_dying:
            assert got[path] == 502 and dying.targets().count(path) == 1, (path, got)
            assert path not in fine.targets(), fine.targets()
        else:
            assert got[path] == 200 and fine.targets().count(path) == 1, (path, got)


def test_max_requests_every_upstream_full(edge_proxy, ups, pki):
    """maxRequests: 1 on two upstreams: a second request in flight goes to the address that
    is not full; a third, with both full, is 503 at once."""
    a, b = ups(2)
    px, port = edge_proxy(upstreams=[a.port, b.port], maxRequests=1)
    ctx = edge_ctx(pki)
    with EConn(port, ctx) as c1, EConn(port, ctx) as c2:
        c1.send(get("/lb/h1?mode=hang"))
        assert wait_until(lambda: len(a.reqs()) + len(b.reqs()) == 1, 2)
        c2.send(get("/lb/h2?mode=hang"))
        assert wait_until(lambda: len(a.reqs()) + len(b.reqs()) == 2, 2)
        assert len(a.reqs()) == 1 and len(b.reqs()) == 1, (a.targets(), b.targets())
        t0 = time.monotonic()
        r = one(port, ctx, "/lb/third")
        took = time.monotonic() - t0
        assert r is not None and r.status == 503, r
        assert r.body == b"Service Unavailable: every upstream is at its maxRequests\n", r
        assert took < 0.5, f"503 after {took:.2f}s"
        assert [x.status for x in (c1.response(), c2.response())] == [504, 504]
    r = one(port, ctx, "/lb/fourth")
    assert r is not None and r.status == 200, r
    assert "/lb/third" not in a.targets() + b.targets()


def test_every_upstream_ejected_the_first_to_return_is_tried(edge_proxy, ups, pki):
    """Both upstreams refuse and are ejected (ejectAfter: 1): the GET is 503. One comes back
    while both are still ejected: the one whose ejection ends first is tried rather than
    none, so requests get through before ejectFor has passed."""
    a, b = ups(2)
    a_port, b_port = a.port, b.port
    px, port = edge_proxy(upstreams=[a_port, b_port], ejectAfter=1, ejectFor="10s")
    ctx = edge_ctx(pki)
    a.close()
    b.close()
    r = one(port, ctx, "/lb/none")
    assert r is not None and r.status == 503, r
    ej = wait_until(lambda: log_lines(px, "upstream ejected"), 1)
    assert [x["upstream"] for x in ej] == [addr(a_port), addr(b_port)], px.text()
    a2 = ups(port=a_port)[0]  # a was ejected first: its ejection ends first
    for i in range(3):
        r = one(port, ctx, f"/lb/back{i}")
        assert r is not None and r.status == 200, (i, r, px.text())
    assert a2.targets() == [f"/lb/back{i}" for i in range(3)], a2.targets()


def test_pipelined_request_behind_a_retried_one(edge_proxy, ups, pki):
    """A GET retried on the other upstream with requests pipelined behind it: all answered,
    in order, each sent to the live upstream once. Requests are balanced one by one, so each
    may land on the dead address first and be retried (ejectAfter is out of reach here)."""
    live = ups(1)[0]
    dead = free_port()
    px, port = edge_proxy(upstreams=[dead, live.port], ejectAfter=1000)
    with EConn(port, edge_ctx(pki)) as c:
        c.send(get("/lb/first") + get("/lb/second") + get("/lb/third"))
        rs = [c.response() for _ in range(3)]
        assert [r.status if r else None for r in rs] == [200, 200, 200], rs
        assert [r.json()["target"] for r in rs] == ["/lb/first", "/lb/second", "/lb/third"]
    assert live.targets() == ["/lb/first", "/lb/second", "/lb/third"], live.targets()
    retried = log_lines(px, "request retried")
    assert 1 <= len(retried) <= 3, px.text()
    assert all(x["upstream"] == addr(live.port) for x in retried), px.text()


def test_outbound_balances_over_inbound_proxies(start_proxy, ups, pki):
    """An outbound HTTP listener with upstreams: mutual TLS to each inbound proxy in turn; an
    upstream that proves the wrong SPIFFE ID fails its handshake, which counts against it
    (ejected after ejectAfter) and a GET is sent again to the right one."""
    up1, up2, up3 = ups(3)
    p1, p2, p3, out, mixed = (free_port() for _ in range(5))
    inb = [{"name": f"in{i}", "mode": "inbound", "protocol": "http", "listen": addr(p),
            "forward": addr(u.port)} for i, (p, u) in enumerate([(p1, up1), (p2, up2)], 1)]
    start_proxy(proxy_config(inb, http=HTTP_DEFAULTS), "server-proxy")
    start_proxy(proxy_config([{"name": "in3", "mode": "inbound", "protocol": "http",
                               "listen": addr(p3), "forward": addr(up3.port)}],
                             identity="other", http=HTTP_DEFAULTS), "other-proxy")
    client = start_proxy(proxy_config([
        {"name": "out", "mode": "outbound", "protocol": "http", "listen": addr(out),
         "upstreams": [addr(p1), addr(p2)], "expect": [SERVER_ID]},
        {"name": "mixed", "mode": "outbound", "protocol": "http", "listen": addr(mixed),
         "upstreams": [addr(p3), addr(p1)], "expect": [SERVER_ID], "ejectAfter": 2,
         "ejectFor": "10s"}], identity="client", policy=None, http=HTTP_DEFAULTS), "client-proxy")
    for i in range(4):
        with Conn(out) as c:
            c.send(get(f"/api/o{i}"))
            r = c.response()
            assert r is not None and r.status == 200, (i, r)
            xfcc = hdrs_of(r.json())["x-forwarded-client-cert"]
            assert len(xfcc) == 1 and xfcc[0].endswith(f";URI={CLIENT_ID}"), xfcc
    assert up1.targets() == ["/api/o0", "/api/o2"] and up2.targets() == ["/api/o1", "/api/o3"], \
        (up1.targets(), up2.targets())

    up1.reset()
    for i in range(3):
        with Conn(mixed) as c:
            c.send(get(f"/api/m{i}"))
            r = c.response()
            assert r is not None and r.status == 200, (i, r, client.text())
    assert up1.targets() == ["/api/m0", "/api/m1", "/api/m2"], up1.targets()
    up3.assert_nothing("requests through a listener expecting another upstream ID",
                       connections_ok=True)
    fails = log_lines(client, "upstream failed", upstream=addr(p3))
    assert len(fails) == 2, client.text()
    ej = log_lines(client, "upstream ejected")
    assert [(x["listener"], x["upstream"]) for x in ej] == [("mixed", addr(p3))], client.text()


def test_max_requests_holds_under_concurrency(start_proxy, ups, pki):
    """maxRequests counts across workers ("requests in flight per address, all workers"):
    rounds of 8 requests sent at the same moment on 8 open connections (4 workers), to one
    upstream that answers after 100 ms, with maxRequests: 1. In each round exactly one is
    200 and seven are 503, and the upstream never has two requests at once. (The race is
    timing-dependent: up to 30 rounds are run, stopping at the first that breaks the limit.)"""
    (u,) = ups(1, delay=0.1)
    port = free_port()
    cfg = proxy_config([edge(port, pki, upstreams=[u.port], maxRequests=1)], http=HTTP_DEFAULTS)
    start_proxy(cfg.replace("spec:\n", "spec:\n  workers: 4\n", 1), "edge-proxy")
    ctx = edge_ctx(pki)
    want = [200] + [503] * 7
    rounds = []
    for rnd in range(30):
        conns = [EConn(port, ctx) for _ in range(8)]
        try:
            go = threading.Barrier(len(conns))
            out = [None] * len(conns)

            def run(i):
                go.wait()
                conns[i].send(get(f"/lb/r{rnd}c{i}"))
                r = conns[i].response(timeout=5)
                out[i] = r.status if r else None

            ts = [threading.Thread(target=run, args=(i,)) for i in range(len(conns))]
            for t in ts:
                t.start()
            for t in ts:
                t.join(10)
        finally:
            for c in conns:
                c.close()
        rounds.append(sorted(out))
        if sorted(out) != want or u.max_active > 1:
            break
    assert u.max_active <= 1 and rounds == [want] * 30, \
        (f"round {len(rounds)}: {rounds[-1]}; at most {u.max_active} requests at the upstream "
         f"at once; it saw {[q.target for q in u.reqs()]}")


# ==== rate limits ================================================================================


def test_rate_limit_by_ip_429_retry_after_and_keep_alive(edge_proxy, upstream, pki):
    admin = free_port()
    px, port = edge_proxy(forward=upstream.port, admin=admin,
                          rateLimits=[{"key": "ip", "requestsPerSecond": 5, "burst": 5}])
    with EConn(port, edge_ctx(pki)) as c:
        c.send(b"".join(get(f"/rl/{i}") for i in range(7)))
        rs = [c.response() for _ in range(7)]
        assert [r.status if r else None for r in rs] == [200] * 5 + [429, 429], rs
        assert [r.json()["target"] for r in rs[:5]] == [f"/rl/{i}" for i in range(5)]
        rids = []
        for r in rs[5:]:
            ra = r.get("retry-after")
            assert ra is not None and re.fullmatch(r"[0-9]+", ra) and int(ra) == 1, r
            rid = r.get("x-request-id")
            assert rid and UUID.match(rid), r
            rids.append(rid)
            assert r.body == f"Too Many Requests: rate limit reached (request {rid})\n".encode(), r
            assert r.get("connection") is None, r
        time.sleep(int(rs[5].get("retry-after")))
        c.send(get("/rl/after"))
        r = c.response()
        assert r is not None and r.status == 200 and r.json()["target"] == "/rl/after", r
    assert upstream.targets() == [f"/rl/{i}" for i in range(5)] + ["/rl/after"], upstream.reqs()
    for rid, path in zip(rids, ["/rl/5", "/rl/6"]):
        line = px.wait_request(lambda x, rid=rid: x["request_id"] == rid)
        assert line["status"] == "429" and line["path"] == path and line["decision"] == "none", line
    wait_until(lambda: len(px.requests()) == 8, 3)
    m, body = scrape(admin)
    assert m.get('zt_proxy_http_rate_limited_total{listener="web"}') == 2, body
    assert m.get('zt_proxy_http_requests_total{listener="web",code="4xx",decision="none"}') == 2, body
    assert m.get('zt_proxy_http_requests_total{listener="web",code="2xx",decision="allow"}') == 6, body


def test_rate_limit_counts_denied_requests(edge_proxy, upstream, pki):
    """Limits are counted before the policy: denied requests take tokens too, and once the
    bucket is empty even a public path is 429."""
    px, port = edge_proxy(forward=upstream.port,
                          rateLimits=[{"key": "ip", "requestsPerSecond": 1, "burst": 3}])
    with EConn(port, edge_ctx(pki)) as c:
        c.send(get("/private/1") + get("/private/2") + get("/private/3") + get("/private/4")
               + get("/public/5"))
        assert [c.response().status for _ in range(5)] == [403, 403, 403, 429, 429]
    upstream.assert_nothing("denied and rate-limited requests")


def test_rate_limit_path_prefix(edge_proxy, upstream, pki):
    """A limit on /login applies to normalized paths starting with /login only."""
    px, port = edge_proxy(forward=upstream.port, rateLimits=[
        {"key": "ip", "pathPrefix": "/login", "requestsPerSecond": 1, "burst": 2}])
    with EConn(port, edge_ctx(pki)) as c:
        c.send(b"".join(get(f"/other/{i}") for i in range(10)))
        assert [c.response().status for _ in range(10)] == [200] * 10
        seq = [("/login", 200), ("/login/x", 200), ("/login", 429), ("/loginx", 429),
               ("//login", 429), ("/other/../login", 429), ("/login/../other/y", 200),
               ("/other/z", 200)]
        c.send(b"".join(get(p) for p, _ in seq))
        got = [c.response() for _ in seq]
        assert [r.status for r in got] == [s for _, s in seq], list(zip(seq, got))
    assert upstream.targets() == [f"/other/{i}" for i in range(10)] + \
        ["/login", "/login/x", "/other/y", "/other/z"], upstream.targets()


def test_rate_limit_by_source_on_inbound(start_proxy, upstream, pki):
    """key: source on an inbound listener: each caller SPIFFE ID has its own bucket."""
    port = free_port()
    ls = {"name": "in", "mode": "inbound", "protocol": "http", "listen": addr(port),
          "forward": addr(upstream.port),
          "rateLimits": [{"key": "source", "requestsPerSecond": 1, "burst": 3}]}
    px = start_proxy(proxy_config([ls], http=HTTP_DEFAULTS), "server-proxy")
    for name, sid in (("client", CLIENT_ID), ("other", OTHER_ID)):
        with Conn(port, ssl_ctx(pki, name)) as c:
            c.send(b"".join(get(f"/api/{name}{i}") for i in range(5)))
            rs = [c.response() for _ in range(5)]
            assert [r.status for r in rs] == [200, 200, 200, 429, 429], (name, rs)
            for r in rs[:3]:
                assert hdrs_of(r.json())["x-forwarded-client-cert"][0].endswith(f";URI={sid}")
            line = px.wait_request(lambda x, r=rs[3]: x["request_id"] == r.get("x-request-id"))
            assert line["source"] == sid and line["status"] == "429", line
    assert upstream.targets() == [f"/api/client{i}" for i in range(3)] + \
        [f"/api/other{i}" for i in range(3)], upstream.targets()


def test_rate_limit_by_listener_is_shared_by_ips(start_proxy, upstream, pki):
    """key: listener: one bucket for every client (127.0.0.1 and 127.0.0.2); beside it, a
    listener limited by ip keeps one bucket per address."""
    shared, perip = free_port(), free_port()
    px = start_proxy(proxy_config([
        edge(shared, pki, forward=upstream.port, name="shared",
             rateLimits=[{"key": "listener", "requestsPerSecond": 1, "burst": 4}]),
        edge(perip, pki, forward=upstream.port, name="perip",
             rateLimits=[{"key": "ip", "requestsPerSecond": 1, "burst": 4}])],
        http=HTTP_DEFAULTS), "edge-proxy")
    ctx = edge_ctx(pki)

    def burst(port, source, tag, n):
        with EConn(port, ctx, source=source) as c:
            c.send(b"".join(get(f"/rl/{tag}{i}") for i in range(n)))
            return [c.response().status for _ in range(n)]

    assert burst(shared, "127.0.0.1", "s-a", 2) == [200, 200]
    assert burst(shared, "127.0.0.2", "s-b", 3) == [200, 200, 429]
    assert burst(shared, "127.0.0.1", "s-c", 1) == [429]
    # by ip: the bucket of an address is shared by its connections, not by other addresses
    assert burst(perip, "127.0.0.1", "p-a", 3) == [200] * 3
    assert burst(perip, "127.0.0.1", "p-c", 2) == [200, 429]
    assert burst(perip, "127.0.0.2", "p-b", 2) == [200, 200]
    t = upstream.targets()
    assert t == ["/rl/s-a0", "/rl/s-a1", "/rl/s-b0", "/rl/s-b1"] + \
        [f"/rl/p-a{i}" for i in range(3)] + ["/rl/p-c0", "/rl/p-b0", "/rl/p-b1"], t
    ips = {x["path"]: x["source_ip"] for x in px.requests()}
    assert ips["/rl/s-b2"] == ips["/rl/p-b0"] == "127.0.0.2", ips
    assert ips["/rl/s-c0"] == ips["/rl/p-c1"] == "127.0.0.1", ips


def test_rate_limit_flood_pipelined(edge_proxy, upstream, pki):
    """200 requests in one write against 10 per second, burst 10: exactly the first 10 pass,
    190 are 429, answered in order; the upstream sees 10."""
    px, port = edge_proxy(forward=upstream.port,
                          rateLimits=[{"key": "ip", "requestsPerSecond": 10, "burst": 10}])
    n = 200
    with EConn(port, edge_ctx(pki)) as c:
        t0 = time.monotonic()
        c.send(b"".join(get(f"/rl/{i}") for i in range(n)))
        rs = [c.response() for _ in range(n)]
        took = time.monotonic() - t0
    assert all(r is not None for r in rs), rs
    statuses = [r.status for r in rs]
    assert statuses == [200] * 10 + [429] * 190, (statuses, f"{took:.3f}s")
    assert [r.json()["target"] for r in rs[:10]] == [f"/rl/{i}" for i in range(10)]
    time.sleep(0.1)
    assert upstream.targets() == [f"/rl/{i}" for i in range(10)], upstream.targets()
    wait_until(lambda: len(px.requests()) >= n, 5)
    # the order of the 429s: each one's X-Request-Id is the log line of its request
    path_of = {x["request_id"]: x["path"] for x in px.requests()}
    rids = [hdrs_of(r.json())["x-request-id"][0] for r in rs[:10]] + \
        [r.get("x-request-id") for r in rs[10:]]
    assert [path_of.get(rid) for rid in rids] == [f"/rl/{i}" for i in range(n)]


def test_rate_limited_request_body_is_dropped_not_parsed(edge_proxy, upstream, pki):
    """A 429 keeps the connection: the refused request's body (Content-Length or chunked) is
    read and dropped, never taken for the next request, and the next request is answered."""
    px, port = edge_proxy(forward=upstream.port, rateLimits=[
        {"key": "ip", "pathPrefix": "/login", "requestsPerSecond": 1, "burst": 1}])
    inner = b"GET /other/smuggled HTTP/1.1\r\nHost: a\r\n\r\n"
    chunked = b"%x\r\n" % len(inner) + inner + b"\r\n0\r\n\r\n"
    with EConn(port, edge_ctx(pki)) as c:
        c.send(get("/login")
               + b"POST /login HTTP/1.1\r\nHost: a\r\nContent-Length: %d\r\n\r\n" % len(inner)
               + inner
               + b"POST /login HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
               + chunked
               + get("/other/after"))
        rs = [c.response() for _ in range(4)]
        assert [r.status if r else None for r in rs] == [200, 429, 429, 200], rs
        assert rs[3].json()["target"] == "/other/after", rs[3]
        c.s.settimeout(0.3)
        try:
            extra = c.s.recv(65536)
        except (socket.timeout, TimeoutError):
            extra = b""
        assert extra == b"" and not c.buf, f"a response to the body: {bytes(c.buf) + extra!r}"
    time.sleep(0.1)
    assert upstream.targets() == ["/login", "/other/after"], upstream.reqs()
    assert b"smuggled" not in upstream.raw(), upstream.raw()


def test_rate_limit_http10_429_closes(edge_proxy, upstream, pki):
    """An HTTP/1.0 request without keep-alive that is limited gets its 429 with
    Connection: close, then the close."""
    px, port = edge_proxy(forward=upstream.port,
                          rateLimits=[{"key": "ip", "requestsPerSecond": 1, "burst": 1}])
    ctx = edge_ctx(pki)
    with EConn(port, ctx) as c:
        c.send(b"GET /rl/a HTTP/1.0\r\n\r\n")
        r = c.response()
        assert r is not None and r.status == 200, r
    with EConn(port, ctx) as c:
        c.send(b"GET /rl/b HTTP/1.0\r\n\r\n")
        r = c.response()
        assert r is not None and r.status == 429 and r.version == "HTTP/1.1", r
        assert r.get("connection") == "close" and r.get("retry-after") == "1", r
        assert c.closed(2)
    assert upstream.targets() == ["/rl/a"], upstream.targets()
