"""End-to-end tests of the admin commands that call the control plane's API
(src/cli/cmd_admin.c, src/cli/cmd_policy_remote.c, src/cli/remote.c,
src/client/client.c): zt org|tenant|workspace|service, zt role, zt token and
zt policy apply|list|get|history|rollback|delete against a real `zt server`.

Every outcome is read back: through another command, or through the API
(server_helpers.Server). Covered: CRUD of every hierarchy level with
optimistic concurrency (a stale --version is refused with 409 and changes
nothing), the listing that follows "next" cursors (against a small fake API
server that presents a genuine server SVID: the hierarchy, zt role|node|entry
list, and a cursor that does not move on), more than 1000 role bindings
listed in full and unbound past the first page, role bindings by name and by
triple and what a bound tenant administrator may do, token revocation,
policy apply from folders (multi-document YAML, unchanged / updated /
refused with diagnostics, --dry-run), rollback and delete, the settings
(flags over environment over config file, the config file's checks), how
the client trusts the server (only an SVID spiffe://TD/zt/server that
chains to the CA file; no host-name checks; no token before that), usage
errors (exit 2), and in the end `zt audit verify` on the server's log, with
every 403 the commands met on it as a denial.

One server (module scope, --dev) holds the state; each test uses names of
its own, so that each also runs alone (-k). Every `zt` run's stderr and the
server's stderr must hold no sanitizer report: run against the ASan build
with ZT_BIN=$PWD/build-asan/zt."""
import json
import os
import pathlib
import re
import socket
import ssl
import subprocess
import threading
import urllib.parse

import pytest

from conftest import ROOT, ZT
from server_helpers import SANITIZER_RE, TOKEN_RE, Server, expect, svid

TD = "zt.local"  # the server's default trust domain
SETTINGS_ENV = ("ZT_SERVER", "ZT_TOKEN", "ZT_CA_FILE", "ZT_CERT", "ZT_KEY", "ZT_CONFIG")
# "zt: WHAT: HTTP 409 conflict: MESSAGE (request RID)"
HTTP_ERR_RE = re.compile(r"^zt: (?P<what>[^:\n]+): HTTP (?P<status>[0-9]{3}) (?P<code>[a-z-]+): "
                         r"(?P<msg>.+) \(request (?P<rid>[A-Za-z0-9_.:-]{1,128})\)$", re.M)
REFUSED_PORT_URL = "https://127.0.0.1:1"  # nothing listens there


# ---- running zt ---------------------------------------------------------------------------


class Ran:
    """A finished `zt` run: rc, stdout, stderr, and the JSON on stdout (or None)."""

    def __init__(self, args, p):
        self.args, self.rc, self.out, self.err = args, p.returncode, p.stdout, p.stderr
        try:
            self.json = json.loads(p.stdout) if p.stdout.strip() else None
        except ValueError:
            self.json = None

    def __repr__(self):
        return (f"<zt {' '.join(self.args)} -> {self.rc}\nstdout: {self.out[-3000:]}\n"
                f"stderr: {self.err[-3000:]}>")


class Ctx:
    """The shared server and how to call it: zt(...) runs the binary with a clean
    environment (no ZT_* settings, HOME in a temp folder), by default with the
    settings in the environment (ZT_SERVER / ZT_TOKEN / ZT_CA_FILE)."""

    def __init__(self, s, home):
        self.s = s
        self.home = pathlib.Path(home)
        self.home.mkdir(parents=True, exist_ok=True)
        self.url = s.url                                  # https://localhost:PORT
        self.url_ip = s.url.replace("localhost", "127.0.0.1")
        self.ca = s.dir / "bundle.pem"                    # what the server writes
        self.token = s.token
        self.http_403 = 0       # 403s the commands met (each is audited once)
        self.denied_rids = []   # their request IDs, where printed
        self.failed_auth = 0    # 401s (the server locks an address out after 20 a minute)

    def env(self, settings=True, token=None, **extra):
        env = {k: v for k, v in os.environ.items() if k not in SETTINGS_ENV}
        env["HOME"] = str(self.home)
        env.setdefault("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=0")
        if settings:
            env.update(ZT_SERVER=self.url_ip, ZT_CA_FILE=str(self.ca),
                       ZT_TOKEN=self.token if token is None else token)
        for k, v in extra.items():
            if v is None:
                env.pop(k, None)
            else:
                env[k] = str(v)
        return env

    def zt(self, *args, settings=True, token=None, env=None, cwd=None, **extra):
        args = [str(a) for a in args]
        e = env if env is not None else self.env(settings, token, **extra)
        p = subprocess.run([ZT, *args], capture_output=True, text=True, env=e, cwd=cwd, timeout=60)
        r = Ran(args, p)
        m = SANITIZER_RE.search(p.stderr)
        assert not m, f"sanitizer report from zt {' '.join(args)}:\n{p.stderr[max(0, m.start() - 300):][:6000]}"
        n403 = p.stderr.count("HTTP 403")
        self.http_403 += n403
        self.denied_rids += [m.group("rid") for m in HTTP_ERR_RE.finditer(p.stderr)
                             if m.group("status") == "403"]
        self.failed_auth += p.stderr.count("HTTP 401")
        assert self.failed_auth < 15, "too many 401s for the shared server's failed-auth limit"
        return r


def ok(r):
    """A run that must succeed; its JSON output (or None)."""
    assert r.rc == 0, f"expected success: {r!r}"
    return r.json


def http_fail(r, status, code=None, what=None):
    """A run that must fail with exit 1 and "zt: WHAT: HTTP status code: message (request RID)"."""
    assert r.rc == 1, f"expected exit 1 (HTTP {status}): {r!r}"
    m = HTTP_ERR_RE.search(r.err)
    assert m, f"no 'zt: WHAT: HTTP {status} ...' line: {r!r}"
    assert int(m.group("status")) == status, f"expected HTTP {status}: {r!r}"
    if code:
        assert m.group("code") == code, f"expected code {code}: {r!r}"
    if what:
        assert m.group("what") == what, f"expected 'zt: {what}:': {r!r}"
    return m


def fails(r, *needles, rc=1):
    assert r.rc == rc, f"expected exit {rc}: {r!r}"
    for n in needles:
        assert n in r.err, f"expected {n!r} on stderr: {r!r}"
    return r


def names(items):
    return sorted(o["name"] for o in items)


# ---- fixtures -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ctx(tmp_path_factory):
    assert os.access(ZT, os.X_OK), f"{ZT} not built: run make"
    s = Server(tmp_path_factory.mktemp("cli-admin"), dev=True).start()
    c = Ctx(s, tmp_path_factory.mktemp("home"))
    try:
        yield c
    finally:
        s.finish()


@pytest.fixture(scope="module")
def other_ca(tmp_path_factory):
    """A CA file of another trust domain (other.test), and one of a second CA that
    also calls itself zt.local."""
    d = tmp_path_factory.mktemp("other-ca")
    out = {}
    for name, td in (("other", "other.test"), ("impostor", TD)):
        p = subprocess.run([ZT, "ca", "init", "--dir", d / name, "--trust-domain", td],
                           capture_output=True, text=True, timeout=60)
        assert p.returncode == 0, p.stderr
        p = subprocess.run([ZT, "bundle", "export", "--dir", d / name, "--format", "pem"],
                           capture_output=True, text=True, timeout=60)
        assert p.returncode == 0 and "BEGIN CERTIFICATE" in p.stdout, p.stderr
        (d / f"{name}.pem").write_text(p.stdout)
        out[name] = d / f"{name}.pem"
    out["impostor_dir"] = d / "impostor"
    return out


class FakeApi:
    """A TLS listener on 127.0.0.1 presenting (cert, key) that answers HTTP/1.1
    requests with handler(method, target) -> (status, JSON); records every byte
    it received after a completed handshake, and every request."""

    def __init__(self, cert, key, handler=None):
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(str(cert), str(key))
        self.handler = handler or (lambda m, t: (200, {"items": []}))
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.url = f"https://127.0.0.1:{self.port}"
        self.received = bytearray()
        self.requests = []
        self.handshakes = 0
        self.handshake_errors = []
        self.threads = []
        self.lock = threading.Lock()
        t = threading.Thread(target=self._accept, daemon=True)
        t.start()
        self.acceptor = t

    def _accept(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            t = threading.Thread(target=self._conn, args=(c,), daemon=True)
            with self.lock:
                self.threads.append(t)
            t.start()

    def _conn(self, raw):
        raw.settimeout(10)
        try:
            t = self.ctx.wrap_socket(raw, server_side=True)
        except (ssl.SSLError, OSError) as ex:
            with self.lock:
                self.handshake_errors.append(repr(ex))
            raw.close()
            return
        with self.lock:
            self.handshakes += 1
        buf = b""
        try:
            while True:
                while b"\r\n\r\n" not in buf:
                    d = t.recv(65536)
                    if not d:
                        return
                    buf += d
                    with self.lock:
                        self.received += d
                head, _, rest = buf.partition(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                method, target, _ = lines[0].split(" ", 2)
                hdrs = {}
                for line in lines[1:]:
                    k, _, v = line.partition(":")
                    hdrs[k.strip().lower()] = v.strip()
                n = int(hdrs.get("content-length", "0"))
                while len(rest) < n:
                    d = t.recv(65536)
                    if not d:
                        return
                    rest += d
                    with self.lock:
                        self.received += d
                body, buf = rest[:n], rest[n:]
                with self.lock:
                    self.requests.append((method, target, hdrs, body))
                    rid = f"fake-{len(self.requests)}"
                status, obj = self.handler(method, target)
                data = json.dumps(obj).encode()
                t.sendall(f"HTTP/1.1 {status} X\r\nContent-Type: application/json\r\n"
                          f"Content-Length: {len(data)}\r\nX-Request-Id: {rid}\r\n\r\n".encode() + data)
        except (ssl.SSLError, OSError, ValueError):
            return
        finally:
            t.close()

    def close(self):
        self.sock.close()
        for t in list(self.threads):
            t.join(5)


@pytest.fixture(scope="module")
def server_like_svids(ctx, tmp_path_factory):
    """SVIDs from the server's own CA: the server's ID, and a workload's."""
    d = tmp_path_factory.mktemp("svids")
    return {"server": svid(ctx.s.dir / "ca", f"spiffe://{TD}/zt/server", d, "server"),
            "workload": svid(ctx.s.dir / "ca", f"spiffe://{TD}/ns/dev/sa/web", d, "workload")}


# ---- 1. the hierarchy ---------------------------------------------------------------------


LEVELS = [  # command, the name of the object, its parent (for list)
    ("org", "crud", None),
    ("tenant", "crud/t1", "crud"),
    ("workspace", "crud/t1/w1", "crud/t1"),
    ("service", "crud/t1/w1/s1", "crud/t1/w1"),
]


def api_path(name):
    kinds = ("orgs", "tenants", "workspaces", "services")
    return "/v1/" + "/".join(f"{k}/{n}" for k, n in zip(kinds, name.split("/")))


def test_hierarchy_crud_every_level(ctx):
    z = ctx.zt
    # create, get, list at each level, top-down; each read back through the API
    for kind, name, parent in LEVELS:
        o = ok(z(kind, "create", name, "--spec", json.dumps({"level": kind, "n": 1})))
        assert (o["kind"], o["name"], o["spec"]) == (kind, name, {"level": kind, "n": 1}), o
        assert o["created_by"] == "admin:bootstrap" and o["version"] > 0, o
        api = expect(ctx.s.get(api_path(name)), 200).json
        assert api["spec"] == {"level": kind, "n": 1} and api["version"] == o["version"], api
        got = ok(z(kind, "get", name))
        assert got == api, (got, api)
        lst = ok(z(kind, "list", *([parent] if parent else [])))
        assert set(lst) == {"items"}, lst
        assert name in names(lst["items"]), lst
        # creating it again: 409, and it is still the same
        http_fail(z(kind, "create", name), 409, what=f"{kind} create")
        assert expect(ctx.s.get(api_path(name)), 200).json == api
    # a create without --spec makes an empty spec
    o = ok(z("service", "create", "crud/t1/w1/bare"))
    assert o["spec"] == {} and o["name"] == "crud/t1/w1/bare", o
    # a parent with children is not deleted
    for kind, name, _ in LEVELS[:3]:
        http_fail(z(kind, "delete", name), 409, "has-children", f"{kind} delete")
        expect(ctx.s.get(api_path(name)), 200)
    # bottom-up: update (no --version: the current one; then the right one), a stale
    # --version refused and nothing changed, then delete (by turns with and without --version)
    for i, (kind, name, parent) in enumerate(reversed(LEVELS)):
        v1 = ok(z(kind, "get", name))["version"]
        upd = ok(z(kind, "update", name, "--spec", '{"n": 2}'))
        assert upd["spec"] == {"n": 2} and upd["version"] > v1, upd
        v2 = upd["version"]
        upd = ok(z(kind, "update", name, "--spec", '{"n": 3}', "--version", v2))
        assert upd["spec"] == {"n": 3} and upd["version"] > v2, upd
        v3 = upd["version"]
        m = http_fail(z(kind, "update", name, "--spec", '{"n": 99}', "--version", v1), 409,
                      "conflict", f"{kind} update")
        assert "changed since" in m.group("msg"), m.group(0)
        now = expect(ctx.s.get(api_path(name)), 200).json
        assert (now["spec"], now["version"]) == ({"n": 3}, v3), now
        if kind == "service":
            ok(z("service", "delete", "crud/t1/w1/bare"))
        http_fail(z(kind, "delete", name, "--version", v2), 409, "conflict", f"{kind} delete")
        now = expect(ctx.s.get(api_path(name)), 200).json
        assert (now["spec"], now["version"]) == ({"n": 3}, v3), now
        if i % 2:
            r = ok(z(kind, "delete", name))
        else:
            r = ok(z(kind, "delete", name, "--version", v3))
        assert r["name"] == name, r
        expect(ctx.s.get(api_path(name)), 404)
        http_fail(z(kind, "get", name), 404, "not-found", f"{kind} get")
        http_fail(z(kind, "update", name, "--spec", "{}"), 404, "not-found", f"{kind} update")
        left = ok(z(kind, "list", *([parent] if parent else [])))["items"]
        assert name not in names(left), left


def test_list_a_handful_and_dev_objects(ctx):
    z = ctx.zt
    # what --dev made
    assert "demo" in names(ok(z("org", "list"))["items"])
    assert names(ok(z("tenant", "list", "demo"))["items"]) == ["demo/default"]
    assert names(ok(z("workspace", "list", "demo/default"))["items"]) == ["demo/default/dev"]
    assert "demo/default/dev/web" in names(ok(z("service", "list", "demo/default/dev"))["items"])
    # a handful of services, listed in full and in order, the same as the API's own listing
    ok(z("org", "create", "many"))
    ok(z("tenant", "create", "many/t"))
    ok(z("workspace", "create", "many/t/mw"))
    want = [f"many/t/mw/s{i}" for i in range(7)]
    for n in want:
        ok(z("service", "create", n, "--spec", json.dumps({"port": 8000 + int(n[-1])})))
    got = ok(z("service", "list", "many/t/mw"))
    assert [o["name"] for o in got["items"]] == want, got
    assert [o["spec"]["port"] for o in got["items"]] == list(range(8000, 8007))
    api = expect(ctx.s.get(api_path("many/t/mw") + "/services?limit=1000"), 200).json
    assert got["items"] == api["items"]
    # an empty collection, and one under a parent that is not there
    assert names(ok(z("workspace", "list", "many/t"))["items"]) == ["many/t/mw"]
    ok(z("tenant", "create", "many/empty"))
    assert ok(z("workspace", "list", "many/empty")) == {"items": []}
    http_fail(z("service", "list", "many/t/nope"), 404, "not-found")
    http_fail(z("tenant", "create", "nope/t"), 404, "not-found")
    # names the server refuses: 400, nothing made
    http_fail(z("org", "create", "Bad_Name"), 400, "invalid")
    assert "Bad_Name" not in names(ok(z("org", "list"))["items"])


def test_list_follows_every_page(ctx, server_like_svids):
    """`list` follows the "next" cursors to the end (a fake API server with the
    server's SVID answers three pages) and prints one {"items": [...]}."""
    pages = {None: (["acme/a", "acme/b"], "acme/b"), "acme/b": (["acme/c", "acme/d"], "acme/d"),
             "acme/d": (["acme/e"], None)}

    def handler(method, target):
        u = urllib.parse.urlsplit(target)
        q = urllib.parse.parse_qs(u.query)
        if method != "GET" or u.path != "/v1/orgs/acme/tenants":
            return 404, {"error": {"status": 404, "code": "not-found", "message": "no", "request_id": "x"}}
        items, nxt = pages[q.get("after", [None])[0]]
        out = {"items": [{"kind": "tenant", "name": n, "version": i + 1, "spec": {}}
                         for i, n in enumerate(items)]}
        if nxt:
            out["next"] = nxt
        return 200, out

    fake = FakeApi(*server_like_svids["server"], handler)
    try:
        r = ctx.zt("tenant", "list", "acme", ZT_SERVER=fake.url)
    finally:
        fake.close()
    got = ok(r)
    assert set(got) == {"items"}, got
    assert [o["name"] for o in got["items"]] == ["acme/a", "acme/b", "acme/c", "acme/d", "acme/e"], got
    afters = [urllib.parse.parse_qs(urllib.parse.urlsplit(t).query).get("after", [None])[0]
              for _, t, _, _ in fake.requests]
    assert afters == [None, "acme/b", "acme/d"], fake.requests
    assert all(h.get("authorization") == f"Bearer {ctx.token}" for _, _, h, _ in fake.requests)


# ---- 2. role bindings and tokens ----------------------------------------------------------


def test_role_node_and_entry_lists_follow_every_page(ctx, server_like_svids):
    """zt role list, zt node list and zt entry list follow the "next" cursors to the end (a
    fake API server with the server's SVID answers each in three pages), keep their filter on
    every page, and print one {"items": [...]}."""
    names5 = ["n-a", "n-b", "n-c", "n-d", "n-e"]
    pages = {None: (names5[:2], "n-b"), "n-b": (names5[2:4], "n-d"), "n-d": (names5[4:], None)}
    paths = {"/v1/rolebindings": "rolebinding", "/v1/agents": "agent", "/v1/entries": "entry"}

    def handler(method, target):
        u = urllib.parse.urlsplit(target)
        q = urllib.parse.parse_qs(u.query)
        if method != "GET" or u.path not in paths:
            return 404, {"error": {"status": 404, "code": "not-found", "message": "no", "request_id": "x"}}
        items, nxt = pages[q.get("after", [None])[0]]
        out = {"items": [{"kind": paths[u.path], "name": n, "version": 1} for n in items]}
        if nxt:
            out["next"] = nxt
        return 200, out

    fake = FakeApi(*server_like_svids["server"], handler)
    try:
        runs = {"role": ctx.zt("role", "list", "--scope", "acme/pay", ZT_SERVER=fake.url),
                "node": ctx.zt("node", "list", ZT_SERVER=fake.url),
                "entry": ctx.zt("entry", "list", "--node", "node-1", ZT_SERVER=fake.url)}
    finally:
        fake.close()
    for cmd, r in runs.items():
        got = ok(r)
        assert set(got) == {"items"} and [o["name"] for o in got["items"]] == names5, (cmd, got)
    want = {"/v1/rolebindings": {"scope": ["acme/pay"]}, "/v1/agents": {}, "/v1/entries": {"node": ["node-1"]}}
    for path, extra in want.items():
        qs = [urllib.parse.parse_qs(urllib.parse.urlsplit(t).query) for _, t, _, _ in fake.requests
              if urllib.parse.urlsplit(t).path == path]
        assert [q.get("after", [None])[0] for q in qs] == [None, "n-b", "n-d"], (path, qs)
        for q in qs:
            assert q["limit"] == ["1000"] and all(q.get(k) == v for k, v in extra.items()), (path, q)


def test_list_refuses_a_next_that_does_not_move_on(ctx, server_like_svids):
    """A server whose "next" stays put or goes back would keep `list` going for ever: the
    command stops with an error (exit 1) instead, after a few requests."""
    for nxt in ("n-b", "n-a"):
        def handler(method, target, nxt=nxt):
            after = urllib.parse.parse_qs(urllib.parse.urlsplit(target).query).get("after", [None])[0]
            return 200, {"items": [{"name": "n-b" if after else "n-a"}], "next": nxt if after else "n-b"}

        fake = FakeApi(*server_like_svids["server"], handler)
        try:
            r = ctx.zt("node", "list", ZT_SERVER=fake.url)
        finally:
            fake.close()
        fails(r, '"next"', "does not move past n-b")
        assert r.out == "" and len(fake.requests) == 2, (r, fake.requests)


def test_role_list_and_unbind_past_a_thousand_bindings(ctx):
    """1005 bindings at one scope: zt role list prints every one, once, in name order (the
    server pages at 1000 at most), and zt role unbind PRINCIPAL ROLE SCOPE finds one that is
    on the second page."""
    s = ctx.s
    ok(ctx.zt("org", "create", "pgr"))
    made = [None] * 1005
    errors = []

    def work(k, threads=8):
        c = s.client()
        try:
            for i in range(k, len(made), threads):
                r = c.request("POST", "/v1/rolebindings",
                              {"principal": f"user:pg-{i}", "role": "viewer", "scope": "pgr"})
                if r.status != 201:
                    errors.append(repr(r))
                    return
                made[i] = r.json
        finally:
            c.close()

    ts = [threading.Thread(target=work, args=(k,)) for k in range(8)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert not errors, errors[:3]
    want = sorted(b["name"] for b in made)
    got = ok(ctx.zt("role", "list", "--scope", "pgr"))
    assert set(got) == {"items"} and [x["name"] for x in got["items"]] == want, len(got["items"])
    assert {(x["principal"], x["role"], x["scope"]) for x in got["items"]} == \
        {(f"user:pg-{i}", "viewer", "pgr") for i in range(1005)}
    # the server's own first page stops at 1000; the last binding is past it
    first = expect(s.get("/v1/rolebindings?scope=pgr&limit=1000"), 200).json
    assert len(first["items"]) == 1000 and first["next"] == want[999]
    last = next(b for b in made if b["name"] == want[-1])
    r = ok(ctx.zt("role", "unbind", last["principal"], "viewer", "pgr"))
    assert r["name"] == last["name"], r
    expect(s.get(f"/v1/rolebindings/{last['name']}"), 404)
    got = ok(ctx.zt("role", "list", "--scope", "pgr"))
    assert [x["name"] for x in got["items"]] == want[:-1]
    # and zt role list without a scope has them all too
    every = [x["name"] for x in ok(ctx.zt("role", "list"))["items"]]
    assert every == sorted(set(every)) and set(want[:-1]) <= set(every), len(every)


def test_roles_tenant_admin_and_token_revoke(ctx):
    z = ctx.zt
    for n in ("rb", "rb/pay", "rb/other", "rb/pay/prod", "rb/other/shop"):
        ok(z({1: "org", 2: "tenant", 3: "workspace"}[n.count("/") + 1], "create", n))
    # a token for alice; she has no binding yet
    t = ok(z("token", "create", "--principal", "user:alice", "--description", "laptop", "--ttl", "30d"))
    assert TOKEN_RE.fullmatch(t["token"]) and t["principal"] == "user:alice" and t["id"], t
    assert t["id"] in t["token"]
    alice = t["token"]
    http_fail(z("workspace", "create", "rb/pay/a0", token=alice), 403, "forbidden", "workspace create")
    # bind her: tenant-admin at rb/pay
    b = ok(z("role", "bind", "user:alice", "tenant-admin", "rb/pay"))
    assert (b["principal"], b["role"], b["scope"]) == ("user:alice", "tenant-admin", "rb/pay"), b
    assert re.fullmatch(r"[0-9a-f]{32}", b["name"]), b
    api = expect(ctx.s.get(f"/v1/rolebindings/{b['name']}"), 200).json
    assert (api["principal"], api["role"], api["scope"]) == ("user:alice", "tenant-admin", "rb/pay")
    lst = ok(z("role", "list", "--scope", "rb"))["items"]
    assert [(x["name"], x["principal"], x["role"], x["scope"]) for x in lst] == \
        [(b["name"], "user:alice", "tenant-admin", "rb/pay")], lst
    assert b["name"] in [x["name"] for x in ok(z("role", "list"))["items"]]
    assert ok(z("role", "list", "--scope", "rb/other"))["items"] == []
    # she can create (and delete) a workspace in her tenant...
    w = ok(z("workspace", "create", "rb/pay/a1", "--spec", '{"by": "alice"}', token=alice))
    assert w["created_by"] == "user:alice", w
    assert expect(ctx.s.get(api_path("rb/pay/a1")), 200).json["created_by"] == "user:alice"
    ok(z("service", "create", "rb/pay/a1/svc", token=alice))
    assert names(ok(z("workspace", "list", "rb/pay", token=alice))["items"]) == \
        ["rb/pay/a1", "rb/pay/prod"]
    # ...but not elsewhere: 403, nothing made
    http_fail(z("workspace", "create", "rb/other/a2", token=alice), 403, "forbidden", "workspace create")
    expect(ctx.s.get(api_path("rb/other/a2")), 404)
    http_fail(z("tenant", "create", "rb/t3", token=alice), 403, "forbidden", "tenant create")
    http_fail(z("org", "create", "alice-org", token=alice), 403, "forbidden", "org create")
    http_fail(z("workspace", "list", "rb/other", token=alice), 403, "forbidden", "workspace list")
    http_fail(z("workspace", "delete", "rb/other/shop", token=alice), 403, "forbidden")
    expect(ctx.s.get(api_path("rb/other/shop")), 200)
    assert ok(z("org", "list"))  # the admin still lists
    expect(ctx.s.get("/v1/orgs/alice-org"), 404)
    # she may give a viewer binding in her tenant, not a tenant-admin one, nor tokens
    v = ok(z("role", "bind", "user:bob", "viewer", "rb/pay/a1", token=alice))
    http_fail(z("role", "bind", "user:bob", "tenant-admin", "rb/pay", token=alice), 403, "forbidden",
              "role bind")
    http_fail(z("token", "create", "--principal", "user:bob", token=alice), 403, "forbidden")
    # unbind by name (bob's viewer binding) and by triple (alice's)
    r = ok(z("role", "unbind", v["name"]))
    assert r["name"] == v["name"], r
    expect(ctx.s.get(f"/v1/rolebindings/{v['name']}"), 404)
    ok(z("role", "bind", "user:carol", "viewer", "rb"))
    r = ok(z("role", "unbind", "user:alice", "tenant-admin", "rb/pay"))
    assert r["name"] == b["name"], r
    expect(ctx.s.get(f"/v1/rolebindings/{b['name']}"), 404)
    left = ok(z("role", "list", "--scope", "rb"))["items"]
    assert [(x["principal"], x["role"], x["scope"]) for x in left] == [("user:carol", "viewer", "rb")]
    # unbinding what is not there
    fails(z("role", "unbind", "user:alice", "tenant-admin", "rb/pay"),
          'user:alice has no binding as tenant-admin at "rb/pay"')
    http_fail(z("role", "unbind", b["name"]), 404, "not-found", "role unbind")
    http_fail(z("role", "bind", "user:x", "emperor", "rb"), 400, "invalid", "role bind")
    # without the binding she is refused again
    http_fail(z("workspace", "create", "rb/pay/a3", token=alice), 403, "forbidden")
    expect(ctx.s.get(api_path("rb/pay/a3")), 404)
    # revoke her token: 401 from then on
    r = ok(z("token", "revoke", t["id"]))
    assert r == {"id": t["id"], "revoked": True}, r
    http_fail(z("org", "get", "rb", token=alice), 401, "unauthenticated", "org get")
    http_fail(z("token", "revoke", t["id"]), 404, "not-found", "token revoke")
    # a token without a principal is token:<id>; bad TTL refused
    t2 = ok(z("token", "create"))
    assert t2["principal"] == f"token:{t2['id']}", t2
    ok(z("token", "revoke", t2["id"]))
    http_fail(z("token", "create", "--ttl", "forever"), 400, "invalid", "token create")


def test_mtls_caller(ctx, tmp_path):
    """--cert/--key instead of a token: the principal is the SVID's SPIFFE ID."""
    z = ctx.zt
    crt, key = svid(ctx.s.dir / "ca", f"spiffe://{TD}/ops/tool", tmp_path, "tool")
    ok(z("org", "create", "mt"))
    base = ["--server", ctx.url_ip, "--ca-file", ctx.ca, "--cert", crt, "--key", key]
    http_fail(z("org", "get", "mt", *base, settings=False), 403, "forbidden", "org get")
    ok(z("role", "bind", f"spiffe://{TD}/ops/tool", "viewer", "mt"))
    assert ok(z("org", "get", "mt", *base, settings=False))["name"] == "mt"
    http_fail(z("tenant", "create", "mt/x", *base, settings=False), 403, "forbidden")
    expect(ctx.s.get(api_path("mt/x")), 404)
    # the same through ZT_CERT / ZT_KEY
    r = z("org", "get", "mt", settings=False, ZT_SERVER=ctx.url, ZT_CA_FILE=ctx.ca, ZT_CERT=crt,
          ZT_KEY=key)
    assert ok(r)["name"] == "mt"
    # a certificate without its key
    fails(z("org", "get", "mt", "--cert", crt, settings=False, ZT_SERVER=ctx.url, ZT_CA_FILE=ctx.ca),
          "needs both its certificate (--cert) and its key (--key)")


# ---- 3. policies --------------------------------------------------------------------------


def pdoc(name, scope, action="ALLOW", principals=None):
    rule = {"from": [{"source": {"principals": principals}}]} if principals else {}
    return {"apiVersion": "zt.dev/v1", "kind": "AuthorizationPolicy",
            "metadata": {"name": name, "scope": scope},
            "spec": {"action": action, "rules": [rule]}}


def yaml_doc(d):
    """A document as block YAML (what people write), for the few shapes pdoc makes."""
    md, sp = d["metadata"], d["spec"]
    out = [f"apiVersion: {d['apiVersion']}", f"kind: {d['kind']}", "metadata:",
           f"  name: {md['name']}", f"  scope: {md['scope']}", "spec:", f"  action: {sp['action']}",
           "  rules:"]
    for rule in sp["rules"]:
        if not rule:
            out.append("    - {}")
        else:
            out.append("    - from:")
            out.append("        - source:")
            out.append("            principals:")
            out += [f'              - "{p}"' for p in rule["from"][0]["source"]["principals"]]
    return "\n".join(out) + "\n"


def summary(r):
    m = re.search(r"^([0-9]+) created, ([0-9]+) updated, ([0-9]+) unchanged, ([0-9]+) failed$",
                  r.err, re.M)
    assert m, f"no summary line: {r!r}"
    return tuple(int(x) for x in m.groups())


def pol(ctx, full):
    r = ctx.s.get(f"/v1/policies/{full}")
    return r.json if r.status == 200 else None


def test_policy_apply_folder(ctx, tmp_path):
    z = ctx.zt
    for kind, n in (("org", "pa"), ("tenant", "pa/t"), ("workspace", "pa/t/pw"),
                    ("service", "pa/t/pw/api")):
        ok(z(kind, "create", n))
    d = tmp_path / "policies"
    (d / "nested").mkdir(parents=True)
    a = pdoc("deny-bad", "pa", "DENY", [f"{TD}/ns/bad/sa/*"])
    b = pdoc("allow-pw", "pa/t/pw", "ALLOW", [f"{TD}/ns/pw/sa/*"])
    c = pdoc("audit-t", "pa/t", "AUDIT")
    nested = pdoc("nested", "pa/t/pw", "ALLOW", [f"{TD}/ns/pw/sa/api"])
    # one multi-document YAML file (with a document the server does not keep), one JSON
    org_doc = "apiVersion: zt.dev/v1\nkind: Organization\nmetadata: {name: pa}\nspec: {tenants: []}\n"
    (d / "multi.yaml").write_text(yaml_doc(a) + "---\n" + yaml_doc(b) + "---\n" + org_doc)
    (d / "single.json").write_text(json.dumps(c))
    (d / "nested" / "n.yml").write_text(yaml_doc(nested))
    (d / "README.md").write_text("not a policy: not read\n")
    (d / ".hidden.yaml").write_text("{not: yaml: at all")
    want = {"pa/deny-bad": a, "pa/t/pw/allow-pw": b, "pa/t/audit-t": c, "pa/t/pw/nested": nested}

    r = z("policy", "apply", "-f", d)
    assert r.rc == 0, r
    assert summary(r) == (4, 0, 0, 0), r
    assert "Organization document is not a policy the server keeps; skipped" in r.err, r
    for full, doc in want.items():
        assert re.search(rf"^{re.escape(full)} created \(version [0-9]+\)$", r.out, re.M), r
        p = pol(ctx, full)
        assert p and p["document"] == doc and p["applied_by"] == "admin:bootstrap", (full, p)
    versions = {f: pol(ctx, f)["version"] for f in want}
    # list / get / history through the commands
    lst = ok(z("policy", "list", "--scope", "pa"))["items"]
    assert names(lst) == sorted(want), lst
    assert names(ok(z("policy", "list", "--scope", "pa/t/pw"))["items"]) == \
        ["pa/t/pw/allow-pw", "pa/t/pw/nested"]
    g = ok(z("policy", "get", "pa/t/pw/allow-pw"))
    assert g["document"] == b and g["version"] == versions["pa/t/pw/allow-pw"], g

    # the same again: all unchanged, nothing written
    rev = expect(ctx.s.get("/v1/health", token=None), 200).json["revision"]
    r = z("policy", "apply", "-f", d / "multi.yaml", "-f", d / "single.json", "-f", d / "nested")
    assert r.rc == 0 and summary(r) == (0, 0, 4, 0), r
    for full in want:
        assert re.search(rf"^{re.escape(full)} unchanged \(version {versions[full]}\)$", r.out, re.M), r
    assert expect(ctx.s.get("/v1/health", token=None), 200).json["revision"] == rev

    # one document changed: updated; a new file with an invalid policy (sorted first) is
    # refused with the compiler's diagnostics while the others still apply
    c2 = pdoc("audit-t", "pa/t", "AUDIT", [f"{TD}/ns/pw/sa/api"])
    (d / "single.json").write_text(json.dumps(c2))
    bad = pdoc("bad", "pa/t", "MAYBE")
    (d / "a-bad.json").write_text(json.dumps(bad))
    new = pdoc("new", "pa", "ALLOW", [f"{TD}/ns/pw/sa/*"])
    (d / "z-new.yaml").write_text(yaml_doc(new))
    r = z("policy", "apply", "-f", d)
    assert r.rc == 1, r
    assert summary(r) == (1, 1, 3, 1), r
    m = http_fail(r, 400, "policy-invalid", "pa/t/bad")
    assert "diagnostics" in m.group("msg"), r
    assert re.search(r"^  error: [^\n]*: action is ALLOW, DENY or AUDIT$", r.err, re.M), r
    assert re.search(r"^pa/t/audit-t updated \(version [0-9]+\)$", r.out, re.M), r
    assert re.search(r"^pa/new created \(version [0-9]+\)$", r.out, re.M), r
    assert pol(ctx, "pa/t/bad") is None
    assert pol(ctx, "pa/t/audit-t")["document"] == c2
    assert pol(ctx, "pa/t/audit-t")["version"] > versions["pa/t/audit-t"]
    assert pol(ctx, "pa/new")["document"] == new
    hist = ok(z("policy", "history", "pa/t/audit-t"))["items"]
    assert [h["document"] for h in hist] == [c2, c], hist

    # --dry-run: says what would change, changes nothing
    (d / "a-bad.json").unlink()
    b2 = pdoc("allow-pw", "pa/t/pw", "ALLOW", [f"{TD}/ns/pw/sa/web"])
    (d / "multi.yaml").write_text(yaml_doc(a) + "---\n" + yaml_doc(b2))
    (d / "zz-dry.json").write_text(json.dumps(pdoc("dry", "pa", "AUDIT")))
    rev = expect(ctx.s.get("/v1/health", token=None), 200).json["revision"]
    r = z("policy", "apply", "--dry-run", "-f", d)
    assert r.rc == 0, r
    assert re.search(r"^pa/t/pw/allow-pw would be updated$", r.out, re.M), r
    assert re.search(r"^pa/dry would be created$", r.out, re.M), r
    assert re.search(r"^pa/deny-bad unchanged", r.out, re.M), r
    assert expect(ctx.s.get("/v1/health", token=None), 200).json["revision"] == rev
    assert pol(ctx, "pa/t/pw/allow-pw")["document"] == b and pol(ctx, "pa/dry") is None
    # and for real
    r = z("policy", "apply", "-f", d)
    assert r.rc == 0 and summary(r) == (1, 1, 4, 0), r
    assert pol(ctx, "pa/t/pw/allow-pw")["document"] == b2 and pol(ctx, "pa/dry") is not None

    # a file that is missing, and a policy without a scope: failed, the rest applied
    noscope = {"apiVersion": "zt.dev/v1", "kind": "AuthorizationPolicy", "metadata": {"name": "x"},
               "spec": {"action": "ALLOW", "rules": [{}]}}
    (tmp_path / "noscope.json").write_text(json.dumps(noscope))
    (tmp_path / "ok.json").write_text(json.dumps(pdoc("late", "pa", "AUDIT")))
    r = z("policy", "apply", "-f", tmp_path / "missing.yaml", "-f", tmp_path / "noscope.json",
          "-f", tmp_path / "ok.json")
    assert r.rc == 1 and summary(r) == (1, 0, 0, 2), r
    assert "no such file or folder" in r.err and "needs metadata.name and metadata.scope" in r.err, r
    assert pol(ctx, "pa/late") is not None
    # a policy attached to a scope that is not there
    (tmp_path / "ghost.json").write_text(json.dumps(pdoc("g", "pa/ghost", "AUDIT")))
    r = z("policy", "apply", "-f", tmp_path / "ghost.json")
    assert r.rc == 1 and summary(r) == (0, 0, 0, 1), r
    assert pol(ctx, "pa/ghost/g") is None


def test_policy_rollback_and_delete(ctx, tmp_path):
    z = ctx.zt
    ok(z("org", "create", "rl"))
    f = tmp_path / "p.json"
    docs = [pdoc("p", "rl", act) for act in ("ALLOW", "AUDIT", "DENY")]
    vs = []
    for d in docs:
        f.write_text(json.dumps(d))
        r = z("policy", "apply", "-f", f)
        assert r.rc == 0, r
        vs.append(pol(ctx, "rl/p")["version"])
    assert vs == sorted(vs) and len(set(vs)) == 3, vs
    hist = ok(z("policy", "history", "rl/p"))["items"]
    assert [h["version"] for h in hist] == vs[::-1] and [h["document"] for h in hist] == docs[::-1]
    # rollback to the first version: the document is the first one's, at a new version
    r = ok(z("policy", "rollback", "rl/p", "--to", vs[0]))
    assert r["document"] == docs[0] and r["version"] > vs[2], r
    assert pol(ctx, "rl/p")["document"] == docs[0]
    v4 = r["version"]
    # a rollback with a stale --version: 409, unchanged
    http_fail(z("policy", "rollback", "rl/p", "--to", vs[1], "--version", vs[2]), 409, "conflict",
              "policy rollback")
    assert pol(ctx, "rl/p")["version"] == v4
    # to a version that is not the policy's
    r = z("policy", "rollback", "rl/p", "--to", 999999)
    assert r.rc == 1 and HTTP_ERR_RE.search(r.err), r
    assert pol(ctx, "rl/p")["version"] == v4
    # delete with a stale version: 409, still there; then delete
    http_fail(z("policy", "delete", "rl/p", "--version", vs[0]), 409, "conflict", "policy delete")
    assert pol(ctx, "rl/p")["version"] == v4
    r = ok(z("policy", "delete", "rl/p"))
    assert r["name"] == "rl/p", r
    assert pol(ctx, "rl/p") is None
    http_fail(z("policy", "get", "rl/p"), 404, "not-found", "policy get")
    http_fail(z("policy", "delete", "rl/p"), 404, "not-found", "policy delete")
    assert ok(z("policy", "list", "--scope", "rl"))["items"] == []
    # now the organization can go
    ok(z("org", "delete", "rl"))


def test_example_policy_applies(ctx):
    """`zt policy apply -f examples/server/` (what `zt server --dev` suggests) on the demo."""
    ex = ROOT / "examples" / "server"
    r = ctx.zt("policy", "apply", "-f", ex)
    assert r.rc == 0 and summary(r)[3] == 0 and summary(r)[0] + summary(r)[2] == 1, r
    p = pol(ctx, "demo/default/dev/web-from-dev")
    assert p and p["document"]["spec"]["action"] == "ALLOW", p
    r = ctx.zt("policy", "apply", "-f", ex / "web-allow.yaml")
    assert r.rc == 0 and summary(r) == (0, 0, 1, 0), r


def test_example_policy_draws_no_warning(ctx, tmp_path):
    r = ctx.zt("policy", "apply", "-f", ROOT / "examples" / "server")
    assert r.rc == 0, r
    # the compiler's warnings show only when a change is refused: provoke one in the organization
    f = tmp_path / "bad.json"
    f.write_text(json.dumps(pdoc("bad", "demo", "MAYBE")))
    r = ctx.zt("policy", "apply", "-f", f)
    http_fail(r, 400, "policy-invalid")
    assert pol(ctx, "demo/bad") is None
    warned = [line for line in r.err.splitlines() if "web-from-dev" in line]
    assert not warned, f"the example policy draws: {warned}"


def test_policy_apply_skips_empty_documents(ctx, tmp_path):
    ok(ctx.zt("org", "create", "emp"))
    f = tmp_path / "p.yaml"
    f.write_text("---\n" + yaml_doc(pdoc("p", "emp", "AUDIT")) + "---\n")
    r = ctx.zt("policy", "apply", "-f", f)
    assert pol(ctx, "emp/p") is not None
    assert r.rc == 0 and summary(r) == (1, 0, 0, 0), r


def test_policy_apply_unpacks_lists(ctx, tmp_path):
    ok(ctx.zt("org", "create", "lst"))
    f = tmp_path / "list.json"
    f.write_text(json.dumps({"apiVersion": "v1", "kind": "List",
                             "items": [pdoc("l1", "lst", "AUDIT"), pdoc("l2", "lst", "DENY")]}))
    r = ctx.zt("policy", "apply", "-f", f)
    assert r.rc in (0, 1), r
    assert pol(ctx, "lst/l1") is not None and pol(ctx, "lst/l2") is not None, r
    assert r.rc == 0 and summary(r) == (2, 0, 0, 0), r


def test_policy_apply_refusal_names_code_and_request(ctx, tmp_path):
    ok(ctx.zt("org", "create", "pdeny"))
    nobody = ok(ctx.zt("token", "create", "--principal", "user:pnobody"))["token"]
    f = tmp_path / "p.json"
    f.write_text(json.dumps(pdoc("p", "pdeny", "AUDIT")))
    r = ctx.zt("policy", "apply", "-f", f, token=nobody)
    assert r.rc == 1 and summary(r) == (0, 0, 0, 1), r
    assert pol(ctx, "pdeny/p") is None
    http_fail(r, 403, "forbidden")


# ---- 4. settings --------------------------------------------------------------------------


def write_config(path, mode=0o600, **kv):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{k}: {v}\n" for k, v in kv.items()))
    os.chmod(path, mode)
    return path


def test_settings_precedence(ctx, tmp_path, other_ca):
    z = ctx.zt
    ok(z("org", "create", "prec"))
    # a token whose principal may do nothing: shows which token was used (403, not 401)
    nobody = ok(z("token", "create", "--principal", "user:nobody"))["token"]
    good = dict(server=ctx.url_ip, token=ctx.token, caFile=ctx.ca)
    cfg = tmp_path / "cfg.yaml"

    def run(flags=(), env=None, file=None):
        e = ctx.env(settings=False)
        if file is not None:
            write_config(cfg, **file)
            e["ZT_CONFIG"] = str(cfg)
        for k, v in (env or {}).items():
            e[{"server": "ZT_SERVER", "token": "ZT_TOKEN", "caFile": "ZT_CA_FILE"}[k]] = str(v)
        fl = []
        for k, v in dict(flags).items():
            fl += [{"server": "--server", "token": "--token", "caFile": "--ca-file"}[k], v]
        return z("org", "get", "prec", *fl, env=e)

    # each source alone
    assert ok(run(flags=good))["name"] == "prec"
    assert ok(run(env=good))["name"] == "prec"
    assert ok(run(file=good))["name"] == "prec"
    for key, bad in (("server", REFUSED_PORT_URL), ("token", nobody), ("caFile", other_ca["other"])):
        worse = dict(good, **{key: bad})
        # env beats the file; the flag beats env
        assert ok(run(env={key: good[key]}, file=worse))["name"] == "prec", key
        assert ok(run(flags={key: good[key]}, env={key: bad}, file=good))["name"] == "prec", key
        # and the other way round: the bad value wins where it has precedence
        for r in (run(env={key: bad}, file=good), run(flags={key: bad}, env=good, file=good)):
            assert r.rc == 1, (key, r)
            if key == "token":
                http_fail(r, 403, "forbidden", "org get")
            elif key == "server":
                assert "127.0.0.1:1" in r.err and "HTTP" not in r.err, r
            else:
                assert "not in the expected trust domain other.test" in r.err, r
    # settings split over the three sources
    assert ok(run(flags={"token": ctx.token}, env={"caFile": ctx.ca},
                  file={"server": ctx.url}))["name"] == "prec"


def test_config_file(ctx, tmp_path):
    z = ctx.zt
    ok(z("org", "create", "cfg"))
    home_cfg = ctx.home / ".config" / "zt" / "config.yaml"
    try:
        # ~/.config/zt/config.yaml when ZT_CONFIG is not set
        write_config(home_cfg, server=ctx.url, token=ctx.token, caFile=ctx.ca)
        assert ok(z("org", "get", "cfg", settings=False))["name"] == "cfg"
        # a token in a file others can read: refused, whatever else is given
        for mode in (0o644, 0o640, 0o604):
            os.chmod(home_cfg, mode)
            fails(z("org", "get", "cfg", settings=False), f"chmod 600 {home_cfg}")
            fails(z("org", "get", "cfg"), "holds a token but others can read it")
        os.chmod(home_cfg, 0o600)
        # $ZT_CONFIG first: a broken home file does not matter then
        write_config(home_cfg, server=ctx.url, bogus="x")
        fails(z("org", "get", "cfg", settings=False), "unknown key bogus", str(home_cfg))
        j = tmp_path / "zt.json"
        j.write_text(json.dumps({"server": ctx.url_ip, "token": ctx.token, "caFile": str(ctx.ca)}))
        os.chmod(j, 0o600)
        assert ok(z("org", "get", "cfg", settings=False, ZT_CONFIG=j))["name"] == "cfg"
    finally:
        home_cfg.unlink(missing_ok=True)
    # a file without a token may be readable by others
    nt = write_config(tmp_path / "nt.yaml", 0o644, server=ctx.url, caFile=ctx.ca)
    assert ok(z("org", "get", "cfg", settings=False, ZT_CONFIG=nt, ZT_TOKEN=ctx.token))["name"] == "cfg"
    # unknown keys (a typo of caFile), values that are not strings, more than one mapping
    for text, needle in (("server: x\nca_file: y\n", "unknown key ca_file"),
                         ("server: [a, b]\n", "server must be a string"),
                         ("- server\n", "expected one mapping"),
                         ("server: a\n---\nserver: b\n", "expected one mapping")):
        f = tmp_path / "bad.yaml"
        f.write_text(text)
        os.chmod(f, 0o600)
        r = fails(z("org", "get", "cfg", ZT_CONFIG=f), needle, str(f))
        assert r.out == "", r
    # ZT_CONFIG naming a file that is not there
    fails(z("org", "get", "cfg", ZT_CONFIG=tmp_path / "none.yaml"), "none.yaml", "ZT_CONFIG")


def test_missing_settings(ctx, tmp_path):
    z = ctx.zt
    e = dict(settings=False)
    fails(z("org", "list", **e, ZT_TOKEN=ctx.token, ZT_CA_FILE=ctx.ca),
          "zt: org list: which server? give --server URL, set ZT_SERVER")
    fails(z("org", "list", **e, ZT_SERVER=ctx.url, ZT_TOKEN=ctx.token),
          "zt: org list: how to trust the server? give --ca-file BUNDLE")
    fails(z("org", "list", **e, ZT_SERVER=ctx.url, ZT_CA_FILE=ctx.ca), "zt: org list: no credential")
    fails(z("policy", "list", "--scope", "demo", **e, ZT_SERVER=ctx.url, ZT_CA_FILE=ctx.ca),
          "zt: policy list: no credential")
    fails(z("role", "list", "--ca-file", tmp_path / "nope.pem"),
          f"the CA file {tmp_path / 'nope.pem'}")
    (tmp_path / "junk.pem").write_text("not a certificate\n")
    r = z("token", "create", "--ca-file", tmp_path / "junk.pem")
    assert r.rc == 1 and "junk.pem" in r.err and r.out == "", r
    # a server URL that is not https://HOST:PORT
    for url in ("localhost:443", "ftp://localhost", ctx.url + "/v1"):
        r = z("org", "list", "--server", url)
        assert r.rc == 1 and "server URL" in r.err, r
    # nothing listening
    fails(z("org", "list", "--server", REFUSED_PORT_URL), "127.0.0.1:1")


# ---- 5. trusting the server ---------------------------------------------------------------


def test_server_by_ip_and_bundle_files(ctx):
    z = ctx.zt
    # 127.0.0.1 (the certificate names localhost): no host-name checks
    assert ok(z("org", "get", "demo", ZT_SERVER=ctx.url_ip))["name"] == "demo"
    assert ok(z("org", "get", "demo", "--server", ctx.url_ip))["name"] == "demo"
    assert ok(z("org", "get", "demo", ZT_SERVER=ctx.url))["name"] == "demo"
    # the bundle the server wrote is the CA's; a SPIFFE JSON bundle works as well
    assert ctx.ca.exists() and "BEGIN CERTIFICATE" in ctx.ca.read_text()
    p = subprocess.run([ZT, "bundle", "export", "--dir", ctx.s.dir / "ca", "--format", "pem"],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0 and p.stdout.strip() == ctx.ca.read_text().strip(), p.stderr
    sp = ctx.home / "bundle.json"
    p = subprocess.run([ZT, "bundle", "export", "--dir", ctx.s.dir / "ca", "--format", "spiffe",
                        "--out", sp], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    assert ok(z("org", "get", "demo", "--ca-file", sp))["name"] == "demo"
    # a trailing slash on the URL is fine
    assert ok(z("org", "get", "demo", "--server", ctx.url_ip + "/"))["name"] == "demo"


ALL_COMMANDS = [
    ("org", "list"), ("org", "get", "demo"), ("org", "create", "wtd"),
    ("org", "update", "demo", "--spec", '{"x": 1}'), ("org", "delete", "demo"),
    ("tenant", "list", "demo"), ("tenant", "create", "demo/wtd"),
    ("workspace", "create", "demo/default/wtd"), ("service", "get", "demo/default/dev/web"),
    ("service", "delete", "demo/default/dev/web", "--version", "1"),
    ("role", "bind", "user:wtd", "viewer", "demo"), ("role", "list"),
    ("role", "unbind", "user:wtd", "viewer", "demo"), ("role", "unbind", "0" * 32),
    ("token", "create", "--principal", "user:wtd"), ("token", "revoke", "0123456789abcdef"),
    ("policy", "list", "--scope", "demo"), ("policy", "get", "demo/x"),
    ("policy", "history", "demo/x"), ("policy", "rollback", "demo/x", "--to", "1"),
    ("policy", "delete", "demo/x"),
]


def test_wrong_trust_domain_ca_refused(ctx, other_ca, tmp_path):
    """A CA file of another trust domain, or of another CA of the same name: every
    command fails with exit 1 and changes nothing."""
    z = ctx.zt
    f = tmp_path / "p.json"
    f.write_text(json.dumps(pdoc("wtd", "demo", "AUDIT")))
    rev = expect(ctx.s.get("/v1/health", token=None), 200).json["revision"]
    for ca, needle in ((other_ca["other"], "not in the expected trust domain other.test"),
                       (other_ca["impostor"], "the chain does not lead to an authority")):
        for cmd in ALL_COMMANDS + [("policy", "apply", "-f", f)]:
            r = z(*cmd, ZT_CA_FILE=ca)
            assert r.rc == 1, r
            assert needle in r.err and "server's certificate was refused" in r.err, r
            assert "HTTP" not in r.err and r.out.strip() == "", r
    assert expect(ctx.s.get("/v1/health", token=None), 200).json["revision"] == rev
    expect(ctx.s.get("/v1/orgs/wtd"), 404)
    expect(ctx.s.get("/v1/policies/demo/wtd"), 404)


def test_token_not_sent_to_an_untrusted_server(ctx, other_ca, server_like_svids, tmp_path):
    """A listener that presents a genuine server SVID receives the token only when
    the client's CA file vouches for it and the SVID's ID is .../zt/server."""
    tok = ctx.token
    f = tmp_path / "p.json"
    f.write_text(json.dumps(pdoc("leak", "demo", "AUDIT")))
    cmds = [("org", "list"), ("token", "create"), ("policy", "apply", "-f", f),
            ("role", "unbind", "user:x", "viewer", "demo")]
    # the control: the right CA file, the server's ID: the token arrives
    fake = FakeApi(*server_like_svids["server"])
    try:
        r = ctx.zt("org", "list", ZT_SERVER=fake.url)
    finally:
        fake.close()
    assert r.rc == 0 and tok.encode() in fake.received, (r, fake.handshake_errors)
    # another trust domain's CA file; another CA of the same trust domain
    for ca in (other_ca["other"], other_ca["impostor"]):
        fake = FakeApi(*server_like_svids["server"])
        try:
            rs = [ctx.zt(*c, ZT_SERVER=fake.url, ZT_CA_FILE=ca) for c in cmds]
        finally:
            fake.close()
        for r in rs:
            assert r.rc == 1 and "server's certificate was refused" in r.err, r
        assert tok.encode() not in fake.received and not fake.requests, (ca, fake.requests)
    # a genuine SVID of the trust domain that is not the server's
    fake = FakeApi(*server_like_svids["workload"])
    try:
        rs = [ctx.zt(*c, ZT_SERVER=fake.url) for c in cmds]
    finally:
        fake.close()
    for r in rs:
        assert r.rc == 1 and f"spiffe://{TD}/ns/dev/sa/web, not the server" in r.err, r
    assert tok.encode() not in fake.received and not fake.requests, fake.requests


def test_token_not_sent_over_plain_http(ctx):
    got = bytearray()
    lsock = socket.socket()
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(1)
    port = lsock.getsockname()[1]

    def serve():
        try:
            c, _ = lsock.accept()
        except OSError:
            return
        c.settimeout(5)
        try:
            while b"\r\n\r\n" not in got:
                d = c.recv(65536)
                if not d:
                    break
                got.extend(d)
        except OSError:
            pass
        c.close()

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    r = ctx.zt("org", "list", "--server", f"http://127.0.0.1:{port}")
    lsock.close()
    t.join(5)
    assert r.rc == 1, r
    assert ctx.token.encode() not in bytes(got), f"the token went out in clear text: {bytes(got)!r}"


# ---- 6. usage errors ----------------------------------------------------------------------


USAGE_ERRORS = [
    ("org",), ("org", "frob"), ("org", "list", "extra"), ("org", "get"), ("org", "get", "a", "b"),
    ("org", "create", "a/b"), ("org", "update", "a"), ("org", "get", "a", "--spec", "{}"),
    ("org", "list", "--bogus"), ("org", "list", "-x"), ("org", "get", "a", "--token"),
    ("org", "list", "--server", "a", "--server", "b"),
    ("tenant", "list"), ("tenant", "create", "acme"), ("tenant", "get", "a/b/c"),
    ("tenant", "list", "a/"), ("tenant", "get", "a/"),
    ("workspace", "create", "a/b"), ("workspace", "create", "a/b/"),
    ("service", "get", "a/b/c"), ("service", "delete", "a/b/c/d/e"),
    ("role",), ("role", "bind", "user:a", "viewer"), ("role", "unbind", "a", "b"),
    ("role", "list", "x"), ("role", "bind", "user:a", "viewer", "acme", "--scope", "acme"),
    ("role", "frob"),
    ("token",), ("token", "frob"), ("token", "create", "x"), ("token", "revoke"),
    ("token", "revoke", "id", "--ttl", "1d"),
    ("policy", "apply"), ("policy", "apply", "x.yaml"), ("policy", "apply", "-f"),
    ("policy", "list"), ("policy", "list", "x", "--scope", "a"), ("policy", "get"),
    ("policy", "get", "a/p", "--to", "3"), ("policy", "get", "a/p", "--scope", "a"),
    ("policy", "get", "a/"), ("policy", "rollback", "a/p"), ("policy", "rollback", "a/p", "--to", "x1"),
    ("policy", "history", "a/p", "--version", "3"),
]


@pytest.mark.parametrize("args", USAGE_ERRORS, ids=lambda a: " ".join(a) or "-")
def test_usage_errors_exit_2(ctx, args):
    # with the settings (nothing must be sent) and without (the usage error comes first)
    for settings in (True, False):
        r = ctx.zt(*args, settings=settings)
        assert r.rc == 2, r
        assert "usage: zt " in r.out + r.err, r
        assert "HTTP" not in r.err, r


def test_help_and_usage_nothing_changed(ctx):
    for cmd in (("org", "--help"), ("workspace", "--help"), ("role", "--help"), ("token", "--help"),
                ("policy", "apply", "--help"), ("policy", "list", "--help")):
        r = ctx.zt(*cmd, settings=False)
        assert r.rc == 0 and r.out.startswith("usage: zt "), r
    # a --spec that is not a JSON object: refused, nothing made (exit 1, see the report)
    for spec in ("[1]", "{", '{"a": 1, "a": 2}'):
        r = ctx.zt("org", "create", "specbad", "--spec", spec)
        assert r.rc in (1, 2) and "--spec must be a JSON object" in r.err, r
    expect(ctx.s.get("/v1/orgs/specbad"), 404)
    # usage errors did not create anything
    for path in ("/v1/orgs/a", "/v1/orgs/acme/tenants/b"):
        expect(ctx.s.get(path), 404)


# ---- 7. the audit log ---------------------------------------------------------------------


def test_zz_audit_log_holds_the_commands_and_verifies(ctx):
    """Last: every 403 the commands met is on the log as a denial (one entry each), the
    commands' changes are there, and `zt audit verify` passes once the server stopped."""
    s = ctx.s
    ok(ctx.zt("org", "create", "au"))
    r = ctx.zt("org", "create", "au2", token=ok(ctx.zt("token", "create"))["token"])
    http_fail(r, 403, "forbidden", "org create")
    entries = s.audit_entries()
    denials = [e for e in entries if e["decision"] == "deny"]
    assert len(denials) == ctx.http_403 + s.denials, (len(denials), ctx.http_403, s.denials)
    by_rid = {e["request_id"]: e for e in denials}
    for rid in ctx.denied_rids:
        assert rid in by_rid, f"a 403 the CLI printed (request {rid}) is not on the audit log"
    assert by_rid[HTTP_ERR_RE.search(r.err).group("rid")]["action"] == "org.create"
    acts = {(e["action"], e.get("target")) for e in entries if e["decision"] == "allow"}
    assert ("org.create", "au") in acts, acts
    assert {a for a, _ in acts} >= {"org.create", "token.create"}, acts
    rc, _ = s.stop()
    assert rc == 0, s.stderr()[-3000:]
    s.assert_clean_stderr()
    adir = s.dir / "audit"
    for extra in ([], ["--key", adir / "log.pub"]):
        p = subprocess.run([ZT, "audit", "verify", "--dir", adir, *map(str, extra)],
                           capture_output=True, text=True, timeout=60)
        assert p.returncode == 0, f"zt audit verify {extra}: {p.stdout}\n{p.stderr}"
