"""End-to-end tests of TLS 1.3 session resumption between zt proxies and their peers
(net/tls.c): a resumed handshake skips the certificates, never the judgement. The verdict of
the full handshake travels with the session and holds only while the verified chain is valid
and only under the context (SVID, bundle) that made it.

Reuses the fixtures of test_proxy_http.py (PKI, recording upstream, proxy processes)."""
import datetime as dt
import os
import shutil
import socket
import ssl
import time

import pytest

from conftest import zt
from proxy_helpers import free_port, not_after, wait_until
from test_proxy_http import (CLIENT_ID, SERVER_ID, TD, http_in, http_out, pki,  # noqa: F401
                             proxy_config, ssl_ctx, start_proxy, upstream)


def connect(port, ctx, session=None):
    s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=5), session=session)
    return s


def get_once(port, ctx, session=None, path="/api/r"):
    """One GET on a fresh TLS connection: (status line, reused, session, the response)."""
    s = connect(port, ctx, session)
    try:
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: svc.test\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while True:
            d = s.recv(65536)
            if not d:
                break
            data += d
        return data.split(b"\r\n", 1)[0], s.session_reused, s.session, data
    finally:
        s.close()


def conn_lines(px):
    return [x for x in px.lines() if x.get("msg") == "connection"]


def test_inbound_resumes_with_the_same_identity(start_proxy, upstream, pki):
    port = free_port()
    px = start_proxy(proxy_config([http_in(port, upstream.port)]), "in")
    ctx = ssl_ctx(pki)
    line, reused, sess, _ = get_once(port, ctx)
    assert line == b"HTTP/1.1 200 OK" and not reused
    for _ in range(3):
        line, reused, sess2, _ = get_once(port, ctx, sess)
        assert line == b"HTTP/1.1 200 OK" and reused
    # the resumed connections are decided as the same caller, with the same XFCC
    reqs = upstream.wait_requests(4)
    xfcc = [r.get("x-forwarded-client-cert") for r in reqs]
    assert len(set(xfcc)) == 1 and xfcc[0].endswith(f";URI={CLIENT_ID}"), xfcc
    tls = [x.get("tls") for x in wait_until(lambda: len(conn_lines(px)) >= 4 and conn_lines(px), 5)]
    assert tls == ["full", "resumed", "resumed", "resumed"], tls
    assert all(x["source"] == CLIENT_ID for x in conn_lines(px))


def test_a_ticket_dies_with_the_context_that_made_it(start_proxy, upstream, pki, tmp_path):
    """A new SVID or bundle (a reload) and a restart both end every earlier session."""
    work = tmp_path / "w"
    shutil.copytree(pki, work)
    port = free_port()
    cfg = proxy_config([http_in(port, upstream.port)]).replace("cert: server.pem",
                                                               f"cert: {work}/server.pem")
    cfg = cfg.replace("key: server.key", f"key: {work}/server.key")
    px = start_proxy(cfg, "in")
    ctx = ssl_ctx(pki)
    _, _, sess, _ = get_once(port, ctx)
    assert get_once(port, ctx, sess)[1]
    # rotate the proxy's SVID: the watcher loads it within a second or two
    p = zt("ca", "issue", "--dir", pki / "ca", "--id", SERVER_ID, "--dns", "localhost",
           "--key-out", work / "server2.key", "--out", work / "server2.pem")
    assert p.returncode == 0, p.stderr
    os.replace(work / "server2.key", work / "server.key")
    os.replace(work / "server2.pem", work / "server.pem")
    assert wait_until(lambda: any("reloaded" in x.get("msg", "") for x in px.lines()), 5), px.text()
    line, reused, sess, _ = get_once(port, ctx, sess)
    assert line == b"HTTP/1.1 200 OK" and not reused, "a session from before the reload resumed"
    assert get_once(port, ctx, sess)[1]
    # another process (other ticket keys) takes none of this one's tickets
    px.proc.terminate()
    px.proc.wait(5)
    px.own_crash_check = True
    start_proxy(cfg, "in-again")
    line, reused, _, _ = get_once(port, ctx, sess)
    assert line == b"HTTP/1.1 200 OK" and not reused


def test_an_expired_chain_is_not_resumed(start_proxy, upstream, pki, tmp_path):
    """The client's SVID expires after the full handshake: its session must not carry it in."""
    port = free_port()
    px = start_proxy(proxy_config([http_in(port, upstream.port)]), "in")
    p = zt("ca", "issue", "--dir", pki / "ca", "--id", CLIENT_ID, "--ttl", "4s",
           "--key-out", tmp_path / "short.key", "--out", tmp_path / "short.pem")
    assert p.returncode == 0, p.stderr
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.load_verify_locations(str(pki / "bundle.pem"))
    ctx.load_cert_chain(str(tmp_path / "short.pem"), str(tmp_path / "short.key"))
    line, _, sess, _ = get_once(port, ctx)
    assert line == b"HTTP/1.1 200 OK"
    assert get_once(port, ctx, sess)[1]
    # past the SVID's notAfter (and the proxy's clock second), with a margin
    left = (not_after(tmp_path / "short.pem") - dt.datetime.now(dt.timezone.utc)).total_seconds()
    time.sleep(max(0.0, left + 1.2))
    with pytest.raises((ssl.SSLError, ConnectionError, OSError)):
        get_once(port, ctx, sess)  # the full handshake it falls back to refuses the expired SVID
    assert wait_until(lambda: any("expired" in x.get("end", "") for x in conn_lines(px)), 5), px.text()
    assert len(upstream.reqs()) == 2


def test_resumption_can_be_turned_off(start_proxy, upstream, pki):
    port = free_port()
    cfg = proxy_config([http_in(port, upstream.port)]).replace(
        "  listeners:", "  tls: {resumption: false}\n  listeners:")
    start_proxy(cfg, "in")
    ctx = ssl_ctx(pki)
    _, _, sess, _ = get_once(port, ctx)
    line, reused, _, _ = get_once(port, ctx, sess)
    assert line == b"HTTP/1.1 200 OK" and not reused


def test_outbound_resumes_and_still_checks_the_upstream(start_proxy, upstream, pki):
    """The inbound proxy closes idle connections after 1 s, so the outbound's pooled one is
    gone (the pool sees the close) and each request after a pause needs a new connection,
    which resumes the session."""
    inp, outp, badp = free_port(), free_port(), free_port()
    pin = start_proxy(proxy_config([http_in(inp, upstream.port)], limits={"idleTimeout": "1s"}),
                      "in")
    pout = start_proxy(proxy_config([http_out(outp, inp),
                                     http_out(badp, inp, expect=(f"spiffe://{TD}/ns/x/sa/y",),
                                              name="bad")],
                                    identity="client", policy=None), "out")
    for i in range(3):
        if i:
            time.sleep(1.6)  # the inbound proxy ends the idle pooled connection
        s = socket.create_connection(("127.0.0.1", outp), timeout=5)
        s.sendall(b"GET /api/o HTTP/1.1\r\nHost: svc.test\r\nConnection: close\r\n\r\n")
        assert s.recv(100).startswith(b"HTTP/1.1 200"), i
        s.close()
    tls_out = [x.get("tls") for x in
               wait_until(lambda: len(conn_lines(pout)) >= 3 and conn_lines(pout), 3)]
    assert tls_out == ["full", "resumed", "resumed"], tls_out
    tls_in = [x.get("tls") for x in
              wait_until(lambda: len(conn_lines(pin)) >= 3 and conn_lines(pin), 5)]
    assert tls_in == ["full", "resumed", "resumed"], tls_in
    # a listener expecting another ID never gets a session to resume: always refused
    for i in range(2):
        s = socket.create_connection(("127.0.0.1", badp), timeout=5)
        s.sendall(b"GET /api/o HTTP/1.1\r\nHost: svc.test\r\nConnection: close\r\n\r\n")
        assert s.recv(100).startswith(b"HTTP/1.1 502"), i
        s.close()
    assert len(upstream.reqs()) == 3


def test_upstream_connections_are_pooled_per_worker(start_proxy, upstream, pki, tmp_path):
    """A service opening a connection per request costs its sidecars one mTLS connection, not
    one per request: the outbound proxy's worker pools the upstream connection. A new SVID (a
    new snapshot) is not served by connections made under the old one."""
    work = tmp_path / "w"
    shutil.copytree(pki, work)
    inp, outp = free_port(), free_port()
    pin = start_proxy(proxy_config([http_in(inp, upstream.port)]), "in")
    cfg = proxy_config([http_out(outp, inp)], identity="client", policy=None)
    cfg = cfg.replace("cert: client.pem", f"cert: {work}/client.pem").replace(
        "key: client.key", f"key: {work}/client.key").replace("  listeners:", "  workers: 1\n  listeners:")
    pout = start_proxy(cfg, "out")

    def request(i):
        s = socket.create_connection(("127.0.0.1", outp), timeout=5)
        s.sendall(b"GET /api/p%d HTTP/1.1\r\nHost: svc.test\r\nConnection: close\r\n\r\n" % i)
        data = b""
        while not data.endswith(b"}") and len(data) < 100000:
            d = s.recv(65536)
            if not d:
                break
            data += d
        s.close()
        assert data.startswith(b"HTTP/1.1 200"), (i, data[:100])

    for i in range(6):
        request(i)
    assert len(upstream.reqs()) == 6
    tls = [x.get("tls") for x in wait_until(lambda: len(conn_lines(pout)) >= 6 and conn_lines(pout), 5)]
    assert tls == ["full"] + ["pooled"] * 5, tls
    assert conn_lines(pin) == []  # the one mTLS connection from the outbound proxy is still open
    # rotate the outbound proxy's SVID: new requests must not ride the old connection
    p = zt("ca", "issue", "--dir", pki / "ca", "--id", CLIENT_ID, "--key-out", work / "c2.key",
           "--out", work / "c2.pem")
    assert p.returncode == 0, p.stderr
    os.replace(work / "c2.key", work / "client.key")
    os.replace(work / "c2.pem", work / "client.pem")
    assert wait_until(lambda: any("reloaded" in x.get("msg", "") for x in pout.lines()), 5), pout.text()
    request(6)
    last = wait_until(lambda: len(conn_lines(pout)) >= 7 and conn_lines(pout)[6], 5)
    assert last["tls"] in ("full", "resumed") and last["tls"] != "pooled", last
