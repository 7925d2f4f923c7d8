"""zt proxy with its policy from the control plane: spec.policy: {server: URL, cache: FILE}
(src/proxy/watch.c, src/proxy/config.c policy_source).

A real `zt server --dev` (with workspace ops and its service db added, and service api added to
workspace dev), real `zt proxy` processes with L4 inbound listeners in front of an echo app,
and a Python TLS client presenting an SVID issued by the server's CA. A connection counts as
allowed when bytes sent through it come back from the echo app, and as denied when the proxy
closes it without echoing; a connection that hangs fails the test.

What is checked:
  1. a policy change reaches two proxies within a second, both ways (allow, deny, delete);
  2. a proxy cut off from its server keeps enforcing the last policy, counts its failed
     watches with backoff (not in a tight loop), and picks up a change once the server is
     back on the same port and state directory;
  3. the cache keeps the last answer through a proxy restart while the server is down; without
     a cache (or with an unreadable one) a proxy denies everything until the server answers;
  4. a policy of another workspace, and changes that are not policies, neither change the
     decisions nor make the proxy install a new policy;
  5. a bad spec.policy is refused at start, naming spec.policy.

Every proxy must stop with status 0 on SIGTERM with no sanitizer report in its log; every
server, likewise (server_helpers.Server.finish). Run against the ASan build with
ZT_BIN=$PWD/build-asan/zt as well.

The four bugs these tests found (connected stayed 0 after an outage, a cached policy's
revision was not reported, unusable server URLs were accepted, the watch thread leaked its
OpenSSL thread state) are fixed; their tests stay."""
import json
import os
import signal
import socket
import ssl
import statistics
import subprocess
import time

import pytest

from conftest import ZT
from proxy_helpers import addr, echo_app, free_port, stop_process, wait_until  # noqa: F401
from server_helpers import SANITIZER_RE, URL_RE, Server, expect, svid

TD = "zt.local"
DEV = "demo/default/dev"
OPS = "demo/default/ops"
CLIENT = f"{TD}/ns/dev/sa/client"       # the caller the policies name (no spiffe://)
LIMIT_S = 1.0                           # a change reaches every proxy within this
TIMINGS = []                            # (what, proxy, seconds): printed with -s
@pytest.fixture(scope="module", autouse=True)
def timings_summary():
    """Prints the propagation times the tests measured (seen with -s)."""
    yield
    fast = [t for what, _, t in TIMINGS if "outage" not in what and "without a cache" not in what]
    if fast:
        print(f"\n  propagation within a second ({len(fast)} samples): min {min(fast) * 1000:.0f} ms, "
              f"median {statistics.median(fast) * 1000:.0f} ms, max {max(fast) * 1000:.0f} ms")
    for what, name, t in TIMINGS:
        if t not in fast:
            print(f"  {what}: {name} {t * 1000:.0f} ms")


# ---- the control plane ----------------------------------------------------------------------


class PinnedServer(Server):
    """A Server that comes back on the port it first got: the proxies' configuration names
    the server's URL, so a restart must not move it. Otherwise as server_helpers.Server."""

    port_pin = None

    def start(self, extra=(), timeout=8.0):
        self.runs += 1
        self.ready = self.base / f"ready-{self.runs}"
        self.stdout_path = self.base / f"stdout-{self.runs}.txt"
        self.stderr_path = self.base / f"stderr-{self.runs}.txt"
        args = [self.zt_bin, "server", "--dir", str(self.dir), "--listen",
                f"127.0.0.1:{self.port_pin or 0}", "--ready-file", str(self.ready), "--dev",
                *extra]
        env = dict(os.environ)
        env.setdefault("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=0")
        self.proc = subprocess.Popen(args, stdout=open(self.stdout_path, "wb"),
                                     stderr=open(self.stderr_path, "wb"), env=env)
        try:
            return self._ready(timeout)
        except BaseException:
            self.kill()  # never leave a server behind
            raise

    def _ready(self, timeout):
        deadline = time.monotonic() + timeout
        lines = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"zt server exited with {self.proc.returncode}:\n"
                                     f"{self.stdout()}\n{self.stderr()}")
            if self.ready.exists() and self.ready.read_text().count("\n") >= 3:
                lines = self.ready.read_text().split("\n")
                break
            time.sleep(0.01)
        if lines is None:
            self.kill()
            raise AssertionError(f"no ready file after {timeout} s:\n{self.stderr()}")
        m = URL_RE.fullmatch(lines[0])
        assert m, f"ready file's first line is not the URL: {lines!r}"
        self.url, self.port = lines[0], int(m.group(1))
        if self.port_pin:
            assert self.port == self.port_pin, f"came back on {self.port}, not {self.port_pin}"
        self.port_pin = self.port
        if lines[1]:
            self.token = lines[1]
        if not self.bundle.exists():
            # the trust bundle the proxies use for the server: the one in its state directory
            self.bundle.write_bytes((self.dir / "bundle.pem").read_bytes())
        self._ctx = {}
        self._client = None
        return self

    def sigkill(self):
        self.kill()

    def close(self):
        """Teardown: a server still running must stop cleanly; a killed one has only its
        logs checked."""
        if self.alive():
            self.finish()
        elif not self.reported:
            self.assert_clean_stderr()


def policy(name, scope, action, principals=None):
    """An AuthorizationPolicy document (as test_server_policies.doc / allow_from)."""
    rule = {"from": [{"source": {"principals": list(principals)}}]} if principals else {}
    return {"apiVersion": "zt.dev/v1", "kind": "AuthorizationPolicy",
            "metadata": {"name": name, "scope": scope},
            "spec": {"action": action, "rules": [rule]}}


def post_policy(s, name, scope, action, principals=(CLIENT,)):
    """Posts a policy; its version (for DELETE ?version=)."""
    return expect(s.post("/v1/policies", policy(name, scope, action, principals)), 201).json["version"]


def delete_policy(s, full, version):
    expect(s.delete(f"/v1/policies/{full}?version={version}"), 200)


def server_revision(s):
    return expect(s.get("/v1/health", token=None), 200).json["revision"]


@pytest.fixture
def world(tmp_path):
    """(server, certs): `zt server --dev` plus service api in dev, workspace ops with service
    db; certs[name] = (chain, key) for web, api (dev), db (ops), and the callers client and
    intruder (both in dev, neither a declared service)."""
    s = PinnedServer(tmp_path / "srv", dev=True)
    s.start()
    try:
        expect(s.post("/v1/orgs/demo/tenants/default/workspaces/dev/services", {"name": "api"}), 201)
        expect(s.post("/v1/orgs/demo/tenants/default/workspaces", {"name": "ops"}), 201)
        expect(s.post("/v1/orgs/demo/tenants/default/workspaces/ops/services", {"name": "db"}), 201)
        ca = s.dir / "ca"
        certs = {n: svid(ca, f"spiffe://{TD}/ns/{ws}/sa/{n}", tmp_path, n)
                 for n, ws in (("web", "dev"), ("api", "dev"), ("db", "ops"), ("client", "dev"),
                               ("intruder", "dev"))}
        yield s, certs
    finally:
        s.close()


# ---- the proxies ----------------------------------------------------------------------------


class Px:
    """One `zt proxy` (an inbound L4 listener and an admin listener), restartable with the
    same configuration; each run logs (JSON lines on stderr) to a file of its own."""

    def __init__(self, tmp, name, cert, bundle, server_url, backend, cache=None):
        self.tmp, self.name = tmp, name
        self.pol = {"server": server_url}
        if cache:
            self.pol["cache"] = str(cache)
        self.cert, self.bundle, self.backend = cert, bundle, backend
        self.cfg = tmp / f"{name}.yaml"
        self.proc = None
        self.runs = 0
        self.logs = []
        self.stopped = False

    def configure(self):
        """Picks the ports (the inbound listener's and the admin's) and writes the config."""
        self.port, self.admin = free_port(), free_port()
        self.cfg.write_text("\n".join([
            "apiVersion: zt.dev/v1",
            "kind: ProxyConfig",
            "spec:",
            f"  trustDomain: {TD}",
            "  identity: " + json.dumps({"cert": str(self.cert[0]), "key": str(self.cert[1]),
                                         "bundle": str(self.bundle)}),
            f"  policy: {json.dumps(self.pol)}",
            f"  admin: {json.dumps({'listen': addr(self.admin)})}",
            "  listeners:",
            "    - " + json.dumps({"name": "in", "mode": "inbound", "listen": addr(self.port),
                                   "forward": addr(self.backend)}),
        ]) + "\n")

    def start(self):
        """Starts (or restarts) the proxy; new ports if another process took one of them
        since free_port() found it free."""
        for attempt in range(3):
            self.configure()
            if self._start():
                return self
            busy = "Address already in use" in self.text()
            stop_process(self.proc)
            if not busy:
                break
        pytest.fail(f"{self.name} did not start (rc={self.proc.returncode}):\n{self.text()}")

    def _start(self):
        self.stopped = False
        self.runs += 1
        self.log = self.tmp / f"{self.name}-{self.runs}.log"
        self.logs.append(self.log)
        env = dict(os.environ)
        # whole stacks (through libcrypto) in leak reports, so that a leak can be attributed
        env["ASAN_OPTIONS"] = ":".join(x for x in (env.get("ASAN_OPTIONS"),
                                                    "fast_unwind_on_malloc=0") if x)
        with open(self.log, "wb") as err:
            self.proc = subprocess.Popen([ZT, "proxy", "-c", str(self.cfg)], cwd=self.tmp,
                                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                         stderr=err, env=env)

        def running():
            if self.proc.poll() is not None:
                return "exited"
            return any(x.get("msg") == "zt proxy running" for x in self.lines())

        r = wait_until(running, 10)
        if r is not True:
            self.stopped = True  # reported here, not as a death at teardown
            return False
        return True

    def text(self):
        return self.log.read_text(errors="replace") if self.runs else ""

    def lines(self):
        out = []
        for raw in self.text().splitlines():
            try:
                out.append(json.loads(raw))
            except json.JSONDecodeError:
                out.append({"raw": raw})
        return out

    def msgs(self, msg):
        return [x for x in self.lines() if x.get("msg") == msg]

    def conns(self):
        return self.msgs("connection")

    def last_conn(self, decision, after=0):
        """The last connection line with this decision among those after the first `after`
        (the line is written when the connection ends, a moment after the client saw it)."""
        got = wait_until(lambda: [c for c in self.conns()[after:] if c.get("decision") == decision], 3)
        assert got, f"{self.name}: no {decision} connection logged:\n{self.text()[-3000:]}"
        return got[-1]

    def metrics(self):
        with socket.create_connection(("127.0.0.1", self.admin), timeout=5) as s:
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
        return out

    def m(self, short):
        """One of the zt_proxy_policy_* metrics, by its short name (connected, revision,
        updates, refused, errors)."""
        full = {"connected": "zt_proxy_policy_server_connected",
                "revision": "zt_proxy_policy_revision",
                "updates": "zt_proxy_policy_updates_total",
                "refused": "zt_proxy_policy_refused_total",
                "errors": "zt_proxy_policy_server_errors_total"}[short]
        v = self.metrics()
        assert full in v, f"{self.name}: no {full} in /metrics: {sorted(v)}"
        return int(v[full])

    def wait_metric(self, short, pred, timeout, what):
        got = wait_until(lambda: pred(self.m(short)), timeout, step=0.02)
        assert got, f"{self.name}: {what}: {short} = {self.m(short)} after {timeout} s;\n{self.text()[-3000:]}"

    def stop(self):
        """SIGTERM; the proxy must exit 0 within 10 s with a clean log."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.stopped = True
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=5)
            raise AssertionError(f"{self.name} did not stop within 10 s of SIGTERM:\n{self.text()[-3000:]}")
        assert rc == 0, f"{self.name} exited {rc} after SIGTERM:\n{self.text()[-6000:]}"
        self.check_log()

    def check_log(self):
        for log in self.logs:
            text = log.read_text(errors="replace")
            m = SANITIZER_RE.search(text)
            assert not m, f"sanitizer report in {log}:\n{text[max(0, m.start() - 300):][:8000]}"


@pytest.fixture
def proxies(tmp_path, echo_app):  # noqa: F811
    """proxies(server, cert, name, cache=None, start=True) -> Px, in front of the echo app;
    all are stopped (status 0, clean logs) at the end, and none may have died before."""
    made = []

    def make(s, cert, name, cache=None, start=True):
        px = Px(tmp_path, name, cert, s.bundle, f"https://localhost:{s.port_pin}", echo_app, cache)
        made.append(px)
        return px.start() if start else px

    try:
        yield make
    finally:
        dead = [(p.name, p.proc.returncode, p.text()[-3000:]) for p in made
                if p.proc is not None and not p.stopped and p.proc.poll() is not None]
        errors = []
        for p in made:
            try:
                p.stop()
            except AssertionError as e:
                errors.append(str(e))
        assert not dead, f"a proxy died during the test: {dead}"
        assert not errors, "\n".join(errors)


# ---- the client -----------------------------------------------------------------------------


def client_ctx(s, cert):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False  # an SVID names a workload by URI SAN, not by host name
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.load_verify_locations(str(s.bundle))
    ctx.load_cert_chain(str(cert[0]), str(cert[1]))
    return ctx


def allowed(port, ctx, timeout=3.0):
    """True when bytes sent through the proxy come back from the echo app; False when the
    proxy closes or resets the connection without echoing them. A hang is a failure."""
    token = os.urandom(12).hex().encode()
    got = b""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as raw:
            with ctx.wrap_socket(raw) as s:
                s.sendall(token)
                while len(got) < len(token):
                    d = s.recv(len(token) - len(got))
                    if not d:
                        break
                    got += d
    except socket.timeout:
        raise AssertionError(f"port {port}: neither echoed nor closed within {timeout} s")
    except (ssl.SSLError, ConnectionError):
        return False
    assert got in (b"", token), f"port {port}: {got!r} is neither nothing nor the echo"
    return got == token


def decisions(pxs, ctx):
    return {p.name: allowed(p.port, ctx) for p in pxs}


def time_to(pxs, ctx, want, t0, what, limit=LIMIT_S, step=0.05):
    """Probes every proxy about every `step` s until each decides `want`; the seconds from t0
    for each, all of which must be under `limit`. Observes up to limit + 2 s so that a slow
    proxy's real time is reported."""
    pending = {p.name: p for p in pxs}
    took = {}
    deadline = t0 + limit + 2.0
    while pending and time.monotonic() < deadline:
        tick = time.monotonic()
        for name, p in list(pending.items()):
            if allowed(p.port, ctx) == want:
                took[name] = time.monotonic() - t0
                del pending[name]
        time.sleep(max(0.0, step - (time.monotonic() - tick)))
    for name, t in took.items():
        TIMINGS.append((what, name, t))
        print(f"\n  {what}: {name} after {t * 1000:.0f} ms", end="")
    assert not pending, f"{what}: {sorted(pending)} still not {'allowing' if want else 'denying'} " \
                        f"after {time.monotonic() - t0:.2f} s (others: {took})"
    slow = {n: round(t, 3) for n, t in took.items() if t >= limit}
    assert not slow, f"{what}: slower than {limit} s: {slow}"
    # and it stays so (no flapping between two snapshots)
    for p in pxs:
        assert allowed(p.port, ctx) == want, f"{what}: {p.name} flipped back"
    return took


def settled(*pxs, updates=1):
    """Waits until each proxy has put a first policy from the server in force."""
    for p in pxs:
        p.wait_metric("updates", lambda v: v >= updates, 5, "no policy from the server")
        assert p.m("connected") == 1, p.metrics()


# ---- 1. propagation -------------------------------------------------------------------------


def test_a_change_reaches_two_proxies_within_a_second(world, proxies):
    s, certs = world
    web = proxies(s, certs["web"], "web")
    api = proxies(s, certs["api"], "api")
    both = (web, api)
    settled(*both)
    base = {p.name: p.m("updates") for p in both}
    client, intruder = client_ctx(s, certs["client"]), client_ctx(s, certs["intruder"])

    # no policy: deny by default, as the proxies log
    assert decisions(both, client) == {"web": False, "api": False}
    for p in both:
        line = p.last_conn("deny")
        assert line["end"].startswith("denied by policy"), line
        assert line["source"] == f"spiffe://{CLIENT}", line

    # an ALLOW for the client at the workspace: both proxies allow it within a second
    t0 = time.monotonic()
    v_allow = post_policy(s, "allow-client", DEV, "ALLOW")
    time_to(both, client, True, t0, "ALLOW posted")
    assert decisions(both, intruder) == {"web": False, "api": False}, "the ALLOW named only the client"
    for p in both:
        line = p.last_conn("allow")
        assert line["policy"] == f"{DEV}/allow-client", line

    # a DENY for the client (DENY wins): both deny within a second
    t0 = time.monotonic()
    v_deny = post_policy(s, "deny-client", DEV, "DENY")
    time_to(both, client, False, t0, "DENY posted")

    # the DENY deleted: allowed again
    t0 = time.monotonic()
    delete_policy(s, f"{DEV}/deny-client", v_deny)
    time_to(both, client, True, t0, "DENY deleted")

    # the ALLOW deleted: nothing allows the client any more
    t0 = time.monotonic()
    delete_policy(s, f"{DEV}/allow-client", v_allow)
    time_to(both, client, False, t0, "ALLOW deleted")

    # one update per change, none refused, no failed watch; the revision is the server's
    rev = server_revision(s)
    for p in both:
        p.wait_metric("revision", lambda v: v == rev, 2, "revision of the last change")
        assert p.m("updates") == base[p.name] + 4, (p.name, base, p.metrics())
        assert p.m("refused") == 0 and p.m("errors") == 0 and p.m("connected") == 1, p.metrics()
        assert len(p.msgs("policy updated from the server")) == base[p.name] + 4, p.text()


# ---- 2. an outage -----------------------------------------------------------------------------


def test_a_proxy_cut_off_keeps_its_policy_and_reconnects(world, proxies):
    s, certs = world
    post_policy(s, "allow-client", DEV, "ALLOW")
    web = proxies(s, certs["web"], "web")
    settled(web)
    client, intruder = client_ctx(s, certs["client"]), client_ctx(s, certs["intruder"])
    assert allowed(web.port, client) and not allowed(web.port, intruder)
    assert web.m("errors") == 0

    # the server goes away (SIGTERM: it must end the proxy's pending watch and exit 0)
    rc, took = s.stop()
    assert rc == 0 and took < 5, f"zt server stop: rc={rc} after {took:.1f} s:\n{s.stderr()[-3000:]}"
    t_down = time.monotonic()
    web.wait_metric("connected", lambda v: v == 0, 2, "the server is gone")
    e1 = web.m("errors")
    assert e1 >= 1

    # the last policy stays in force: allowed stays allowed, denied stays denied
    while time.monotonic() - t_down < 2.0:
        assert allowed(web.port, client), "the client was refused while the server was away"
        assert not allowed(web.port, intruder), "the intruder got in while the server was away"
        time.sleep(0.1)
    line = web.last_conn("allow")
    assert line["policy"] == f"{DEV}/allow-client", line

    # failed watches are counted, with backoff (100 ms doubling): a handful in 2 s, not a storm
    e2 = web.m("errors")
    assert e2 > e1, f"errors did not grow while the server was away: {e1} -> {e2}"
    assert 3 <= e2 <= 10, f"{e2} failed watches in ~2 s: not the documented 100 ms doubling backoff"
    assert web.m("connected") == 0
    # said once per outage, not once per retry
    assert len(web.msgs("policy server unreachable; the policy in force stays, retrying with backoff")) == 1, \
        web.text()

    # back on the same port and state directory: a change reaches the proxy again
    s.start()
    t0 = time.monotonic()
    post_policy(s, "deny-client", DEV, "DENY")
    took = time_to([web], client, False, t0, "after the outage (reconnect with backoff)", limit=5.0)
    print(f" [outage {t0 - t_down:.1f} s]", end="")
    assert not allowed(web.port, intruder)
    assert web.m("connected") == 1 and web.m("revision") == server_revision(s), web.metrics()
    e3 = web.m("errors")
    time.sleep(0.5)
    assert web.m("errors") == e3, "errors still growing once the server is back"
    assert web.msgs("policy server reachable again"), web.text()
    assert took["web"] < 5.0


def test_connected_once_the_server_is_back(world, proxies):
    s, certs = world
    web = proxies(s, certs["web"], "web")
    settled(web)
    s.stop()
    web.wait_metric("connected", lambda v: v == 0, 2, "the server is gone")
    time.sleep(0.5)
    s.start()
    # the proxy is back in touch once its failed watches stop growing (within one backoff step)
    last, t_same = web.m("errors"), time.monotonic()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and time.monotonic() - t_same < 1.5:
        time.sleep(0.1)
        now = web.m("errors")
        if now != last:
            last, t_same = now, time.monotonic()
    assert time.monotonic() - t_same >= 1.5, "the proxy did not get back to the server"
    assert web.m("connected") == 1, f"reconnected, yet: {web.metrics()}"


# ---- 3. the cache -------------------------------------------------------------------------------


def test_the_cache_keeps_the_policy_through_a_restart_with_the_server_down(world, proxies, tmp_path):
    s, certs = world
    cache = tmp_path / "web-policy.json"
    web = proxies(s, certs["web"], "web", cache=cache)
    settled(web)
    client, intruder = client_ctx(s, certs["client"]), client_ctx(s, certs["intruder"])
    post_policy(s, "allow-client", DEV, "ALLOW")
    time_to([web], client, True, time.monotonic(), "ALLOW posted (cache test)")
    assert wait_until(lambda: cache.exists() and "allow-client" in cache.read_text(), 2), \
        f"the cache was not written: {cache.read_text() if cache.exists() else 'no file'}"
    cached_rev = json.loads(cache.read_text())["revision"]
    assert cached_rev == server_revision(s)

    # the proxy stops, then the server dies
    web.stop()
    s.sigkill()

    # the proxy starts again with the server down: the cached policy is in force at once
    web.start()
    assert allowed(web.port, client), f"the cached ALLOW is not in force:\n{web.text()}"
    assert not allowed(web.port, intruder)
    loaded = web.msgs("policy from the cache until the server answers")
    assert loaded and loaded[0]["revision"] == str(cached_rev), web.text()
    assert web.last_conn("allow")["policy"] == f"{DEV}/allow-client"
    web.wait_metric("errors", lambda v: v >= 1, 2, "the server is down")
    assert web.m("connected") == 0 and web.m("updates") == 0, web.metrics()

    # a proxy without a cache (a path never written) denies everything: no policy yet
    fresh_cache = tmp_path / "api-policy.json"
    api = proxies(s, certs["api"], "api", cache=fresh_cache)
    assert not allowed(api.port, client)
    line = api.last_conn("deny")
    assert "no policy in force yet" in line["end"], line
    assert not fresh_cache.exists()

    # nor does a cache that is not the server's answer: refused, and everything denied
    junk = tmp_path / "junk-policy.json"
    junk.write_text('{"revision": 3, "documents": "not a list"}')
    other = proxies(s, certs["web"], "web-junk", cache=junk)
    assert not allowed(other.port, client)
    assert other.msgs("policy cache unusable; denying until the server answers"), other.text()

    # once the server is back, the proxies without a usable cache get the policy
    s.start()
    t0 = time.monotonic()
    time_to([api, other], client, True, t0, "server back, proxies without a cache", limit=5.0)
    assert wait_until(lambda: fresh_cache.exists(), 2), "the first answer was not cached"
    assert json.loads(fresh_cache.read_text())["revision"] == server_revision(s)


def test_the_revision_of_a_cached_policy_is_reported(world, proxies, tmp_path):
    s, certs = world
    cache = tmp_path / "web-policy.json"
    post_policy(s, "allow-client", DEV, "ALLOW")
    web = proxies(s, certs["web"], "web", cache=cache)
    settled(web)
    rev = web.m("revision")
    assert rev == server_revision(s) and wait_until(cache.exists, 2)
    web.stop()
    s.sigkill()
    web.start()
    assert allowed(web.port, client_ctx(s, certs["client"]))  # the cached policy is in force
    assert web.m("revision") == rev, f"revision {web.m('revision')} with revision {rev} in force"


def test_a_proxy_watching_the_server_stops_clean(world, proxies):
    """SIGTERM to a proxy whose watch has verified the server: exit 0, no sanitizer report
    (the leak this catches shows only in an ASan build: ZT_BIN=.../build-asan/zt)."""
    s, certs = world
    web = proxies(s, certs["web"], "web")
    settled(web)
    web.stop()


# ---- 4. isolation -------------------------------------------------------------------------------


def test_other_workspaces_and_other_objects_change_nothing(world, proxies):
    s, certs = world
    web = proxies(s, certs["web"], "web")   # workspace dev
    db = proxies(s, certs["db"], "db")      # workspace ops
    settled(web, db)
    client = client_ctx(s, certs["client"])
    base = web.m("updates")
    rev0 = web.m("revision")

    # an ALLOW at ops: the ops proxy allows the client within a second, the dev proxy does not
    t0 = time.monotonic()
    post_policy(s, "allow-client", OPS, "ALLOW")
    time_to([db], client, True, t0, "ALLOW at ops, ops proxy")
    time.sleep(0.3)  # both watches woke on the same change; give dev's answer time to land
    assert not allowed(web.port, client), "a policy of workspace ops let the client into dev"
    assert web.m("updates") == base, "the dev proxy installed a policy for an ops change"

    # objects that are not policies: a role binding and a token
    expect(s.post("/v1/rolebindings", {"principal": "user:someone", "role": "viewer", "scope": "demo"}), 201)
    expect(s.post("/v1/tokens", {"principal": "user:someone"}), 201)
    time.sleep(0.3)
    assert web.m("updates") == base, "the dev proxy installed a policy for a role binding or a token"
    assert web.m("refused") == 0 and web.m("errors") == 0 and web.m("connected") == 1, web.metrics()
    # the revision never goes back, nor past the server's
    assert rev0 <= web.m("revision") <= server_revision(s), (rev0, web.metrics(), server_revision(s))
    assert not allowed(web.port, client)

    # the dev ALLOW does reach dev (the counter does count), and a DENY-all at ops stays in ops
    t0 = time.monotonic()
    post_policy(s, "allow-client", DEV, "ALLOW")
    time_to([web], client, True, t0, "ALLOW at dev, dev proxy")
    web.wait_metric("updates", lambda v: v == base + 1, 1, "one update for the dev ALLOW")
    mark = len(db.conns())
    t0 = time.monotonic()
    post_policy(s, "deny-all", OPS, "DENY", principals=None)
    time_to([db], client, False, t0, "DENY-all at ops, ops proxy")
    time.sleep(0.3)
    assert allowed(web.port, client), "a DENY of workspace ops reached dev"
    assert web.m("updates") == base + 1, web.metrics()
    dbline = db.last_conn("deny", after=mark)
    assert dbline["policy"] == f"{OPS}/deny-all", dbline


# ---- 5. configuration errors ----------------------------------------------------------------------


@pytest.mark.parametrize("pol, words", [
    ('{server: "http://localhost:8443"}', "https://"),
    ('{server: "https://localhost:8443", refresh: 5}', '"refresh"'),
    ('{cache: /tmp/zt-policy.json}', "spec.policy.server"),
    ("{}", "spec.policy.server"),
    ('{server: 8443}', "spec.policy.server"),
    ('{server: "https://localhost:8443", cache: 7}', "spec.policy.cache"),
    ("[https://localhost:8443]", "spec.policy"),
    pytest.param('{server: "https://"}', "spec.policy.server", id="no-host"),
    pytest.param('{server: "https://localhost:8443/v1"}', "spec.policy.server",
                 id="with-path"),
])
def test_a_bad_policy_source_is_refused(tmp_path, pol, words, echo_app):  # noqa: F811
    # identity files need not exist: the configuration is refused before they are read
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("\n".join([
        "apiVersion: zt.dev/v1",
        "kind: ProxyConfig",
        "spec:",
        f"  trustDomain: {TD}",
        "  identity: {cert: web.pem, key: web.key, bundle: bundle.pem}",
        f"  policy: {pol}",
        "  listeners:",
        f"    - {{name: in, mode: inbound, listen: \"{addr(free_port())}\", forward: \"{addr(echo_app)}\"}}",
    ]) + "\n")
    proc = subprocess.Popen([ZT, "proxy", "-c", str(cfg)], cwd=tmp_path, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        out, err = proc.communicate(timeout=2)
    except subprocess.TimeoutExpired:
        stop_process(proc)
        out, err = proc.communicate()
        pytest.fail(f"policy: {pol} accepted: zt proxy still running after 2 s:\n{err[-2000:]}")
    assert proc.returncode != 0, f"policy: {pol}: exit 0\n{out}\n{err}"
    assert "spec.policy" in err and words in err, f"policy: {pol}: {err!r}"
    assert not SANITIZER_RE.search(err), err
