"""End-to-end tests of the operational side of `zt proxy`: reloading policy and identity files
when they change (and on SIGHUP), the admin listener (/ready, /metrics), the per-identity
connection cap, and the validation of listener names and the admin block.

Same style as test_proxy_l4.py: real proxies, a local echo app, the proxy's JSON log on stderr.
Every process and socket a test opens is closed by a fixture or a finally block; all files
live under pytest's tmp_path; ports come from the kernel (bind to 127.0.0.1:0). Each test gets
its own working folder (copies of the SVIDs, the bundle and the policy folder), since the tests
rewrite those files under a running proxy."""
import datetime as dt
import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import time

import pytest

from conftest import ZT, openssl, zt
from proxy_helpers import (_flow, addr, echo_app, free_port, not_after, recv_all,  # noqa: F401
                           recv_exact, stop_process, wait_until)

TD = "example.org"
SERVER_ID = f"spiffe://{TD}/ns/default/sa/server"
CLIENT_ID = f"spiffe://{TD}/ns/default/sa/client"
POLICY_NAME = "acme/t/default/client-to-server"

ORG = """\
apiVersion: zt.dev/v1
kind: Organization
metadata: {name: acme}
spec:
  trustDomain: example.org
  tenants:
    - name: t
      workspaces:
        - {name: default, services: [server, client, intruder]}
"""


def allow_policy(sa):
    return ORG + f"""\
---
apiVersion: zt.dev/v1
kind: AuthorizationPolicy
metadata: {{name: client-to-server, scope: acme/t/default}}
spec:
  selector: {{services: [server]}}
  action: ALLOW
  rules:
    - from: [{{source: {{principals: ["example.org/ns/default/sa/{sa}"]}}}}]
"""


POLICY = allow_policy("client")

# A policy file that parses as YAML but is not a valid policy (zt policy check: error at 5:11).
BROKEN_POLICY = """\
apiVersion: zt.dev/v1
kind: AuthorizationPolicy
metadata: {name: broken, scope: acme/t/default}
spec:
  action: MAYBE
"""

REFUSED_POLICY = "policy reload refused; the previous policy stays in force"
REFUSED_IDENTITY = "identity reload refused; the previous SVID and bundle stay in force"

# ---- helpers ----------------------------------------------------------------


def proxy_config(listeners, identity="server", policy="pol", limits=None, admin=None):
    lines = [
        "apiVersion: zt.dev/v1",
        "kind: ProxyConfig",
        "spec:",
        f"  trustDomain: {TD}",
        f"  identity: {{cert: {identity}.pem, key: {identity}.key, bundle: bundle.pem}}",
    ]
    if policy:
        lines.append(f"  policy: {policy}")
    if limits:
        lines.append(f"  limits: {_flow(limits)}")
    if admin:
        lines.append(f"  admin: {_flow(admin)}")
    lines.append("  listeners:")
    lines += [f"    - {_flow(ls)}" for ls in listeners]
    return "\n".join(lines) + "\n"


def inbound(port, forward, name="in"):
    return {"name": name, "mode": "inbound", "listen": addr(port), "forward": addr(forward)}


def outbound(port, upstream):
    return {"name": "out", "mode": "outbound", "listen": addr(port), "upstream": addr(upstream),
            "expect": [SERVER_ID]}


def replace_file(path, text, scratch):
    """Puts text at path in one step (rename), so a watcher never sees half a file."""
    tmp = scratch / f".new-{os.urandom(4).hex()}"
    tmp.write_text(text)
    os.replace(tmp, path)


class Proxy:
    """A running `zt proxy`, its stderr going to a file that the test reads as JSON lines."""

    def __init__(self, proc, log, name):
        self.proc, self.log, self.name = proc, log, name

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

    def msgs(self, msg, after=0):
        return [x for x in self.lines()[after:] if x.get("msg") == msg]

    def wait_index(self, pred, after=0, timeout=5, what="a log line"):
        """The index of the first log line (at or after index `after`) that satisfies pred."""
        def find():
            dead = self.proc.poll() is not None  # before reading: its last lines count
            for i, x in enumerate(self.lines()[after:]):
                if pred(x):
                    return after + i + 1  # +1: 0 would read as "not found"
            return "dead" if dead else None

        found = wait_until(find, timeout)
        assert found and found != "dead", (f"{self.name}: no {what} (waited up to {timeout}s; "
                                           f"{self.status()}); log:\n{self.text()}")
        return found - 1

    def status(self):
        rc = self.proc.poll()
        if rc is None:
            return "still running"
        if rc < 0:
            return f"the process died of signal {signal.Signals(-rc).name}"
        return f"the process exited with status {rc}"

    def assert_alive(self, when=""):
        assert self.proc.poll() is None, f"{self.name} {when}: {self.status()}; log:\n{self.text()}"

    def wait_line(self, pred, after=0, timeout=5, what="a log line"):
        i = self.wait_index(pred, after, timeout, what)  # before reading: the log grows
        return self.lines()[i]

    def wait_msg(self, msg, after=0, timeout=5):
        return self.wait_line(lambda x: x.get("msg") == msg, after, timeout, repr(msg))

    def wait_conn(self, after=0, timeout=5):
        """The first connection line written after the log had `after` lines."""
        return self.wait_msg("connection", after, timeout)

    def mark(self):
        return len(self.lines())


def start_proxy_process(cfg_path, cwd, log, name):
    errf = open(log, "wb")
    try:
        proc = subprocess.Popen([ZT, "proxy", "-c", str(cfg_path)], cwd=cwd,
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=errf)
    finally:
        errf.close()
    px = Proxy(proc, log, name)

    def running():
        if proc.poll() is not None:
            return "exited"
        return any(x.get("msg") == "zt proxy running" for x in px.lines())

    r = wait_until(running, 5)
    if r is not True:
        stop_process(proc)
        pytest.fail(f"{name} did not start ({r}, rc={proc.returncode}); log:\n{px.text()}")
    return px


def echo(sock, payload, px=None):
    """Sends payload on an open connection and checks that the echo comes back; px, the
    server proxy, for the message when it does not."""
    sock.sendall(payload)
    got = recv_exact(sock, len(payload))
    assert got == payload, (f"echo: sent {payload!r}, got {got!r}" +
                            (f"; {px.name}: {px.status()}; log:\n{px.text()}" if px else ""))


def close_open_conn(px, sock, nbytes):
    """Ends a connection through the pair (FIN from the app) that carried nbytes each way;
    checks that the server proxy logs it as an allowed, cleanly closed connection and is still
    running afterwards."""
    mark = px.mark()
    sock.shutdown(socket.SHUT_WR)
    assert recv_all(sock) == b""
    # this connection's line: another one (a pair_echo just before) may still be closing and
    # log after the mark, so the line is found by its byte counts
    line = px.wait_line(lambda x: x.get("msg") == "connection" and int(x.get("bytes_in", -1)) == nbytes,
                        mark, 5, f"the connection line of the {nbytes}-byte connection")
    assert line["decision"] == "allow" and line["end"] == "closed", line
    assert line["policy"] == POLICY_NAME and line["source"] == CLIENT_ID, line
    assert int(line["bytes_in"]) == nbytes and int(line["bytes_out"]) == nbytes, line
    px.assert_alive("after the connection closed")


def new_conn(port):
    return socket.create_connection(("127.0.0.1", port), timeout=10)


def pair_echo(port, payload):
    """A new connection through the pair: payload, FIN, everything read back."""
    with new_conn(port) as s:
        s.sendall(payload)
        s.shutdown(socket.SHUT_WR)
        return recv_all(s)


def direct_attempt(pki, port, payload, name="client"):
    """A TLS connection straight to an inbound listener with an SVID (by default the client's,
    the identity the pair's connections carry): sends payload, returns all that comes back
    before the proxy ends the connection (b"" when it refuses it after the handshake).

    The refused attempts go straight to the server proxy rather than through the client
    proxy: a failed connection on a proxy can disturb another one open on the same proxy
    (see the report), and these tests are about the server proxy's decisions."""
    got = bytearray()
    with new_conn(port) as raw:
        try:
            t = client_ctx(pki, name).wrap_socket(raw)
        except ssl.SSLError:
            return b""
        try:
            try:
                t.sendall(payload)
            except OSError:
                pass
            while True:
                d = t.recv(65536)
                if not d:
                    break
                got += d
        except socket.timeout:
            pytest.fail("the connection stayed open for 10 s though the proxy refused it")
        except OSError:  # SSLError (EOF without close_notify, alert), reset: refused
            pass
        finally:
            t.close()
    return bytes(got)


def leaf_der(pem_path):
    """The DER of the first certificate (the leaf) of a PEM chain."""
    text = pem_path.read_text()
    end = "-----END CERTIFICATE-----"
    return ssl.PEM_cert_to_DER_cert(text[:text.index(end) + len(end)] + "\n")


def client_ctx(pki, name="client"):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False  # SVIDs name workloads by URI SAN, not host name
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.load_verify_locations(str(pki / "bundle.pem"))
    ctx.load_cert_chain(str(pki / f"{name}.pem"), str(pki / f"{name}.key"))
    return ctx


def served_cert(pki, port):
    """Connects straight to an inbound listener with the client SVID; returns the DER of the
    certificate the proxy presented, after checking the connection carries bytes. Ends with a
    clean TLS close (close_notify both ways), as a well-behaved client does."""
    with new_conn(port) as raw:
        t = client_ctx(pki).wrap_socket(raw)
        try:
            der = t.getpeercert(binary_form=True)
            token = os.urandom(8).hex().encode()
            echo(t, token)
            t.unwrap()  # sends close_notify, waits for the proxy's
        finally:
            t.close()
    return der


def s_client(pki, port, name=None):
    """One openssl s_client connection to an inbound listener (optionally with an SVID)."""
    args = ["openssl", "s_client", "-connect", addr(port), "-quiet"]
    if name:
        args += ["-cert", f"{name}.pem", "-key", f"{name}.key"]
    return subprocess.run(args, input="ping\n", capture_output=True, text=True, timeout=15,
                          cwd=pki)


def http(port, raw):
    """Sends raw bytes to the admin listener; returns (status, headers dict, body)."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(raw)
        data = recv_all(s)
    head, sep, body = data.partition(b"\r\n\r\n")
    assert sep, f"no HTTP response to {raw!r}: {data!r}"
    lines = head.decode("latin-1").split("\r\n")
    m = re.match(r"HTTP/1\.[01] (\d{3}) ", lines[0])
    assert m, f"bad status line {lines[0]!r}"
    headers = {}
    for h in lines[1:]:
        k, _, v = h.partition(":")
        headers[k.strip().lower()] = v.strip()
    return int(m.group(1)), headers, body.decode()


def get(port, path):
    return http(port, f"GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n".encode())


SAMPLE = re.compile(r"^[a-z_]+(\{[^}]*\})? \d+$")


def metrics(port):
    status, headers, body = get(port, "/metrics")
    assert status == 200, (status, body)
    assert headers.get("content-type", "").startswith("text/plain"), headers
    out = {}
    for line in body.splitlines():
        if not line or line.startswith("#"):
            continue
        assert SAMPLE.match(line), f"not a Prometheus sample line: {line!r}\n{body}"
        key, _, v = line.rpartition(" ")
        assert key not in out, f"sample {key} twice:\n{body}"
        out[key] = int(v)
    return out, body


# ---- fixtures ---------------------------------------------------------------


@pytest.fixture(scope="module")
def ca(tmp_path_factory):
    """A trust domain (ca/) with server and client SVIDs and its bundle; a client SVID that
    expires one second after issuance; a server SVID issued by an unrelated CA of the same
    trust domain for the same key as the server SVID (rogue-server.pem)."""
    assert os.access(ZT, os.X_OK), f"{ZT} not built: run make"
    d = tmp_path_factory.mktemp("ca")

    def z(*a):
        p = zt(*a)
        assert p.returncode == 0, f"zt {' '.join(map(str, a))} failed:\n{p.stdout}\n{p.stderr}"

    z("ca", "init", "--trust-domain", TD, "--dir", d / "ca")
    z("ca", "init", "--trust-domain", TD, "--dir", d / "rogue-ca")
    # first, so that it has expired by the time a test needs it
    z("ca", "issue", "--dir", d / "ca", "--id", CLIENT_ID, "--ttl", "1s",
      "--key-out", d / "expired.key", "--out", d / "expired.pem")
    for name, sid in [("server", SERVER_ID), ("client", CLIENT_ID)]:
        z("ca", "issue", "--dir", d / "ca", "--id", sid, "--key-out", d / f"{name}.key",
          "--out", d / f"{name}.pem")
    openssl("req", "-new", "-key", d / "server.key", "-subj", "/O=zt-test", "-out",
            d / "server.csr")
    z("ca", "issue", "--dir", d / "rogue-ca", "--id", SERVER_ID, "--csr", d / "server.csr",
      "--out", d / "rogue-server.pem")
    z("bundle", "export", "--dir", d / "ca", "--format", "pem", "--out", d / "bundle.pem")
    return d


@pytest.fixture
def pki(ca, tmp_path):
    """This test's working folder: copies of the SVIDs and bundle, and pol/policy.yaml. The
    proxies run with it as cwd."""
    d = tmp_path / "w"
    d.mkdir()
    for f in ["server.pem", "server.key", "client.pem", "client.key", "expired.pem",
              "expired.key", "bundle.pem"]:
        shutil.copy2(ca / f, d / f)
    (d / "pol").mkdir()
    (d / "pol" / "policy.yaml").write_text(POLICY)
    return d


@pytest.fixture
def start_proxy(tmp_path, pki):
    """start_proxy(config_text, name) -> Proxy, running in the pki folder; all are stopped
    at the end of the test."""
    procs = []
    count = [0]

    def start(config, name="proxy"):
        count[0] += 1
        cfg = tmp_path / f"{name}-{count[0]}.yaml"
        cfg.write_text(config)
        px = start_proxy_process(cfg, pki, tmp_path / f"{name}-{count[0]}.log", name)
        procs.append(px.proc)
        return px

    try:
        yield start
    finally:
        for p in procs:
            stop_process(p)


class Pair:
    def __init__(self, server, client, in_port, out_port, admin_port):
        self.server, self.client = server, client
        self.in_port, self.out_port, self.admin_port = in_port, out_port, admin_port


@pytest.fixture
def start_pair(start_proxy, echo_app):
    """start_pair(limits=..., admin=True) -> Pair: a server proxy (identity server, policy pol/)
    whose inbound listener forwards to the echo app, and a client proxy (identity client)
    whose outbound listener goes to it."""

    def start(limits=None, admin=False):
        in_port, out_port = free_port(), free_port()
        admin_port = free_port() if admin else None
        server = start_proxy(proxy_config([inbound(in_port, echo_app)], limits=limits,
                                          admin={"listen": addr(admin_port)} if admin else None),
                             "server-proxy")
        client = start_proxy(proxy_config([outbound(out_port, in_port)], identity="client",
                                          policy=None), "client-proxy")
        return Pair(server, client, in_port, out_port, admin_port)

    return start


@pytest.fixture
def sockets():
    """A list the test appends its sockets to; all are closed at the end."""
    socks = []
    try:
        yield socks
    finally:
        for s in socks:
            s.close()


# ---- 1. file watching: policy ------------------------------------------------


def test_policy_reload_denies_new_connections_and_keeps_open_ones(start_pair, pki, tmp_path,
                                                                   sockets):
    p = start_pair()
    srv = p.server
    a = new_conn(p.out_port)
    sockets.append(a)
    echo(a, b"opened-before-the-change")
    assert pair_echo(p.out_port, b"allowed-before") == b"allowed-before"
    line = srv.wait_conn()
    assert line["decision"] == "allow" and line["policy"] == POLICY_NAME, line

    mark = srv.mark()
    t0 = time.monotonic()
    replace_file(pki / "pol" / "policy.yaml", allow_policy("nobody"), tmp_path)
    line = srv.wait_msg("policy reloaded", after=mark, timeout=4)
    elapsed = time.monotonic() - t0
    assert elapsed <= 3.0, f"the policy change took {elapsed:.1f}s to be noticed"
    assert line["level"] == "info", line
    assert not srv.msgs(REFUSED_POLICY), srv.text()

    mark = srv.mark()
    got = direct_attempt(pki, p.in_port, b"after-the-change")
    assert got == b"", f"a new connection got through the new policy: {got!r}"
    line = srv.wait_conn(after=mark)
    assert line["decision"] == "deny", line
    assert line["end"].startswith("denied by policy"), line
    assert line["source"] == CLIENT_ID, line

    # the connection opened before the change still carries bytes both ways, and ends normally
    echo(a, b"still-open-after-the-change", srv)
    close_open_conn(srv, a, len(b"opened-before-the-change") + len(b"still-open-after-the-change"))


def test_malformed_policy_is_refused_and_old_policy_stays(start_pair, pki, tmp_path):
    p = start_pair()
    srv = p.server
    mark = srv.mark()
    replace_file(pki / "pol" / "broken.yaml", BROKEN_POLICY, tmp_path)
    i = srv.wait_index(lambda x: x.get("msg") == REFUSED_POLICY, after=mark, timeout=4,
                       what="policy reload refusal")
    refusal = srv.lines()[i]
    assert refusal["level"] == "error", refusal
    diags = [x for x in srv.lines()[mark:i] if x.get("msg") == "policy diagnostic"]
    assert diags, f"no 'policy diagnostic' line before the refusal:\n{srv.text()}"
    bad = [x for x in diags if x.get("file", "").endswith("broken.yaml")]
    assert bad, f"no diagnostic names broken.yaml: {diags}"
    assert bad[0]["level"] == "error" and bad[0]["line"] == "5", bad
    assert not srv.msgs("policy reloaded"), srv.text()

    # the previous policy still decides: the client gets in
    mark = srv.mark()
    assert pair_echo(p.out_port, b"still-allowed") == b"still-allowed"
    line = srv.wait_conn(after=mark)
    assert line["decision"] == "allow" and line["policy"] == POLICY_NAME, line
    assert line["source"] == CLIENT_ID, line


# ---- 1. file watching: identity ----------------------------------------------


def test_svid_rotation(start_pair, pki, ca, tmp_path, sockets):
    p = start_pair()
    srv = p.server
    a = new_conn(p.out_port)
    sockets.append(a)
    echo(a, b"opened-before-rotation")
    old = leaf_der(pki / "server.pem")
    assert served_cert(pki, p.in_port) == old, "the proxy does not serve its configured SVID"

    new_dir = tmp_path / "new"
    new_dir.mkdir()
    r = zt("ca", "issue", "--dir", ca / "ca", "--id", SERVER_ID, "--key-out",
           new_dir / "server.key", "--out", new_dir / "server.pem")
    assert r.returncode == 0, r.stderr
    new = leaf_der(new_dir / "server.pem")
    assert new != old

    mark = srv.mark()
    os.replace(new_dir / "server.key", pki / "server.key")
    os.replace(new_dir / "server.pem", pki / "server.pem")
    line = srv.wait_msg("identity reloaded", after=mark, timeout=4)
    assert line["identity"] == SERVER_ID, line
    # the watcher may look between the two renames (new key, old cert): that refusal is fine,
    # any other is not
    for x in srv.msgs(REFUSED_IDENTITY, after=mark):
        assert "is not the key of" in x.get("error", ""), x

    assert served_cert(pki, p.in_port) == new, "a new connection still gets the old SVID"
    # the client proxy accepts the renewed SVID too
    assert pair_echo(p.out_port, b"new-through-pair") == b"new-through-pair"
    echo(a, b"still-open-after-rotation", srv)
    close_open_conn(srv, a, len(b"opened-before-rotation") + len(b"still-open-after-rotation"))


def test_bad_identity_update_is_refused(start_pair, pki, ca, tmp_path, sockets):
    p = start_pair()
    srv = p.server
    a = new_conn(p.out_port)
    sockets.append(a)
    echo(a, b"opened-before-bad-update")
    old = leaf_der(pki / "server.pem")
    assert served_cert(pki, p.in_port) == old

    # the same key, certified by a CA outside the bundle
    shutil.copy(ca / "rogue-server.pem", tmp_path / "rogue.pem")
    mark = srv.mark()
    os.replace(tmp_path / "rogue.pem", pki / "server.pem")
    line = srv.wait_msg(REFUSED_IDENTITY, after=mark, timeout=4)
    assert line["level"] == "error", line
    err = line.get("error", "")
    assert "own SVID" in err and "trust bundle" in err, line
    assert not srv.msgs("identity reloaded"), srv.text()

    assert served_cert(pki, p.in_port) == old, "the proxy serves the refused SVID"
    assert pair_echo(p.out_port, b"new-through-pair") == b"new-through-pair"
    echo(a, b"still-open-after-bad-update", srv)
    close_open_conn(srv, a, len(b"opened-before-bad-update") + len(b"still-open-after-bad-update"))
    assert not srv.msgs("identity reloaded"), srv.text()


# ---- 2. SIGHUP ----------------------------------------------------------------


def test_sighup_reloads_identity_and_policy(start_pair, sockets):
    p = start_pair()
    srv = p.server
    a = new_conn(p.out_port)
    sockets.append(a)
    echo(a, b"before-sighup")

    def hup(k):
        mark = srv.mark()
        srv.proc.send_signal(signal.SIGHUP)
        i = srv.wait_index(lambda x: x.get("msg") == "SIGHUP: reloading identity and policy",
                           after=mark, what=f"SIGHUP line (SIGHUP #{k})")
        srv.wait_index(lambda x: x.get("msg") == "identity reloaded", after=i + 1,
                       what=f"'identity reloaded' after the SIGHUP line (SIGHUP #{k})")
        srv.wait_index(lambda x: x.get("msg") == "policy reloaded", after=i + 1,
                       what=f"'policy reloaded' after the SIGHUP line (SIGHUP #{k})")
        srv.assert_alive(f"after SIGHUP #{k}")
        assert not srv.msgs(REFUSED_IDENTITY) and not srv.msgs(REFUSED_POLICY), srv.text()

    hup(1)
    assert pair_echo(p.out_port, b"new-after-sighup") == b"new-after-sighup"
    # the connection opened before the reload goes on and ends normally
    echo(a, b"after-sighup", srv)
    close_open_conn(srv, a, len(b"before-sighup") + len(b"after-sighup"))
    hup(2)  # the handler stays installed
    assert pair_echo(p.out_port, b"after-2nd-sighup") == b"after-2nd-sighup"


# ---- 3. admin listener ----------------------------------------------------------


def test_admin_ready_and_metrics(start_pair, pki):
    p = start_pair(admin=True)
    srv, ap = p.server, p.admin_port

    status, _, body = get(ap, "/ready")
    assert (status, body) == (200, "ready\n")

    m, body = metrics(ap)
    assert m.get('zt_proxy_connections_total{listener="in"}') == 0, body
    assert m.get("zt_proxy_workers") == 2, body  # the default

    # one allowed connection, one without a client certificate, one with an expired SVID
    assert served_cert(pki, p.in_port) == leaf_der(pki / "server.pem")
    r = s_client(pki, p.in_port)
    assert r.returncode != 0 and "ping" not in r.stdout, r
    left = (not_after(pki / "expired.pem") - dt.datetime.now(dt.timezone.utc)).total_seconds()
    time.sleep(max(0.0, left + 1.2))  # until the 1 s SVID is surely past notAfter
    r = s_client(pki, p.in_port, "expired")
    assert r.returncode != 0 and "ping" not in r.stdout, r
    assert wait_until(lambda: len(srv.msgs("connection")) == 3, 5), srv.text()
    ends = [x["end"] for x in srv.msgs("connection")]
    assert ends[0] == "closed", ends
    assert "certificate" in ends[1] and "[expired]" in ends[2], ends

    m, body = metrics(ap)
    want = {
        'zt_proxy_connections_total{listener="in"}': 3,
        'zt_proxy_connections_active{listener="in"}': 0,
        'zt_proxy_decisions_allow_total{listener="in"}': 1,
        'zt_proxy_decisions_deny_total{listener="in"}': 0,
        'zt_proxy_handshake_failures_total{listener="in",reason="no-certificate"}': 1,
        'zt_proxy_handshake_failures_total{listener="in",reason="expired"}': 1,
    }
    for k, v in want.items():
        assert m.get(k) == v, f"{k} = {m.get(k)}, want {v}:\n{body}"
    assert m['zt_proxy_bytes_in_total{listener="in"}'] == 16, body  # served_cert's token
    for name in ("connections_total", "decisions_allow_total", "handshake_failures_total"):
        assert f"# TYPE zt_proxy_{name} counter" in body, body

    status, _, _ = http(ap, b"POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
    assert status == 405
    status, _, _ = get(ap, "/nope")
    assert status == 404
    status, _, _ = http(ap, b"\x01\x02garbage\r\n\r\n")
    assert status == 400
    # the proxy still answers after the bad requests
    status, _, body = get(ap, "/ready")
    assert (status, body) == (200, "ready\n")
    srv.assert_alive()


# ---- 4. maxConnectionsPerIdentity ---------------------------------------------


def test_max_connections_per_identity(start_pair, pki, sockets):
    p = start_pair(limits={"maxConnectionsPerIdentity": 1}, admin=True)
    srv = p.server
    a = new_conn(p.out_port)
    sockets.append(a)
    echo(a, b"first-of-client")

    mark = srv.mark()
    got = direct_attempt(pki, p.in_port, b"second-of-client")
    assert got == b"", f"a second connection of the same identity got through: {got!r}"
    line = srv.wait_conn(after=mark)
    assert line["end"] == "maxConnectionsPerIdentity reached", line
    assert line["source"] == CLIENT_ID, line
    m, body = metrics(p.admin_port)
    assert m.get('zt_proxy_connections_refused_identity_total{listener="in"}') == 1, body
    assert m.get('zt_proxy_connections_active{listener="in"}') == 1, body

    echo(a, b"first-still-open", srv)
    close_open_conn(srv, a, len(b"first-of-client") + len(b"first-still-open"))

    mark = srv.mark()
    assert pair_echo(p.out_port, b"after-the-first-closed") == b"after-the-first-closed"
    line = srv.wait_conn(after=mark)
    assert line["decision"] == "allow" and line["end"] == "closed", line
    m, body = metrics(p.admin_port)
    assert m.get('zt_proxy_connections_refused_identity_total{listener="in"}') == 1, body


# ---- 5. configuration validation ------------------------------------------------


@pytest.mark.parametrize("case", ["name-space", "name-quote", "admin-unknown-field"])
def test_config_validation(case, tmp_path, pki):
    p1, p2 = free_port(), free_port()
    if case == "name-space":
        cfg = proxy_config([inbound(p1, p2, name="in side")])
        want = ["listeners[0].name", "letters, digits"]
    elif case == "name-quote":
        cfg = proxy_config([inbound(p1, p2, name='in"x')])
        want = ["listeners[0].name", "letters, digits"]
    else:
        cfg = proxy_config([inbound(p1, p2)], admin={"listen": addr(free_port()), "colour": "blue"})
        want = ["unknown field", "colour", "spec.admin"]
    path = tmp_path / f"{case}.yaml"
    path.write_text(cfg)
    try:
        p = subprocess.run([ZT, "proxy", "-c", str(path)], cwd=pki, capture_output=True,
                           text=True, timeout=5)  # run() kills it on timeout
    except subprocess.TimeoutExpired as e:
        pytest.fail(f"{case}: zt proxy accepted the configuration and ran:\n{e.stderr}")
    assert p.returncode != 0, f"{case}: zt proxy accepted the configuration:\n{p.stderr}"
    for w in want:
        assert w in p.stderr, f"{case}: {w!r} not in the message:\n{p.stderr}"
    assert "zt proxy running" not in p.stderr


# ---- one connection's TLS failure must not leak into another ------------------


def test_unclean_close_of_one_connection_does_not_break_another(start_pair, pki, sockets):
    """Regression: OpenSSL errors left in the thread's queue by one connection (a client that
    closed without close_notify) were read as the next connection's error, and an unrelated
    open connection through the pair was torn down ("the client side failed")."""
    pair = start_pair()
    a = new_conn(pair.out_port)
    sockets.append(a)
    echo(a, b"first")
    # B: straight to the server proxy, closed without a TLS close_notify
    t = client_ctx(pki).wrap_socket(new_conn(pair.in_port))
    try:
        t.sendall(b"hello")
        assert recv_exact(t, 5) == b"hello"
        t.shutdown(socket.SHUT_RDWR)  # the TCP end only: no TLS close_notify
    finally:
        t.close()
    # A still works, in both directions, after B's unclean end
    for payload in (b"after-1", b"after-2" * 1000):
        echo(a, payload)
