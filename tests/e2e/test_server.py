"""End-to-end tests of the control plane, `zt server`: startup and restart of a
state directory, the /v1 hierarchy (organizations > tenants > workspaces >
services) through curl, role-based access with every refusal on the audit
log, mTLS callers, bearer tokens and the failed-authentication limit, request
limits and malformed input, the audit log's integrity against the changes
made, and concurrent writers.

Every server runs from a fresh state directory under tmp_path; its stderr
goes to a file which must hold no sanitizer report when it stops (SIGTERM,
exit 0). Run against the ASan build with ZT_BIN=$PWD/build-asan/zt."""
import http.client
import json
import os
import re
import signal
import socket
import stat
import subprocess
import threading
import time
import urllib.parse

import pytest

from audit_helpers import (
    HAVE_CRYPTOGRAPHY, ed25519_verify, entry_lines, key_id, leaf_hash, parse_checkpoint,
    parse_note, parse_verifier_key, unb64, verify_consistency, verify_inclusion)
from conftest import ZT, openssl, zt
from server_helpers import (
    ADMIN, TOKEN_RE, Server, check_shape, expect, parse_raw_response, svid)

KINDS = ("orgs", "tenants", "workspaces", "services")


def need_zt():
    assert os.access(ZT, os.X_OK), f"{ZT} not built: run make"


def P(name):
    """The API path of an object named "acme/pay/prod/api" (or "acme"...)."""
    parts = name.split("/")
    return "/v1/" + "/".join(f"{k}/{n}" for k, n in zip(KINDS, parts))


def C(parent=""):
    """The API path of the collection below parent ("" for organizations)."""
    if not parent:
        return "/v1/orgs"
    return P(parent) + "/" + KINDS[len(parent.split("/"))]


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def names(r):
    return [o["name"] for o in r.json["items"]]


def mint(s, principal, **kw):
    """A token for principal (as the admin): (token, id)."""
    r = expect(s.post("/v1/tokens", dict(principal=principal, **kw)), 201)
    assert TOKEN_RE.fullmatch(r.json["token"]), r
    return r.json["token"], r.json["id"]


def bind(s, principal, role, scope, token=ADMIN):
    return s.post("/v1/rolebindings", {"principal": principal, "role": role, "scope": scope},
                  token=token)


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    """A server shared by the tests that need no fresh state (nor any 401s)."""
    need_zt()
    s = Server(tmp_path_factory.mktemp("srv")).start()
    yield s
    check_audit_count(s)
    s.finish()


@pytest.fixture
def fresh(tmp_path):
    """Starts servers of their own for one test; each must stop cleanly."""
    need_zt()
    made = []

    def make(**kw):
        s = Server(tmp_path / f"server{len(made)}", **kw)
        made.append(s)
        return s.start()

    yield make
    for s in made:
        s.finish()


def check_audit_count(s, extra=0):
    """The log holds the server's certificate and the bootstrap, one per change and one per 403,
    nothing else."""
    size = s.audit_size()
    want = 2 + s.changes + s.denials + extra
    assert size == want, (f"audit log has {size} entries; expected 2 + {s.changes} changes + "
                          f"{s.denials} refusals + {extra} = {want}")


# ---- 1. startup, restart, stop ----------------------------------------------------------


def test_startup_dev_restart_and_state_survives(fresh):
    s = fresh(dev=True, trust_domain="example.test")
    assert s.startup_s < 5, f"startup took {s.startup_s:.1f} s"
    url, token, d = s.ready_lines
    assert d == str(s.dir), s.ready_lines
    assert token and TOKEN_RE.fullmatch(token)
    out = s.stdout()
    assert out.count(token) == 1, f"the bootstrap token is printed once:\n{out}"
    assert url in out
    for f in ("ca", "audit", "store.db", "server.pem", "server.key"):
        assert (s.dir / f).exists(), f"{f} missing from a new state directory"
    assert mode(s.dir) & 0o077 == 0, f"state directory mode {oct(mode(s.dir))}"
    assert mode(s.dir / "server.key") & 0o077 == 0, oct(mode(s.dir / "server.key"))
    # the server's certificate: SPIFFE ID of its trust domain, DNS localhost
    p = openssl("x509", "-in", s.dir / "server.pem", "-noout", "-ext", "subjectAltName")
    assert "URI:spiffe://example.test/zt/server" in p.stdout and "DNS:localhost" in p.stdout, p.stdout

    # public endpoints
    h = expect(s.get("/v1/health", token=None), 200)
    # the server's own certificate, then the bootstrap
    assert h.json["status"] == "ok" and h.json["audit_size"] == 2, h
    assert h.headers["content-type"].startswith("application/json")
    assert h.headers.get("cache-control") == "no-store"
    b = expect(s.get("/v1/bundle", token=None), 200)
    blocks = re.findall(r"-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----", b.text, re.S)
    assert blocks and set(blocks) <= set(re.findall(
        r"-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----", s.bundle.read_text(), re.S))

    # authentication
    assert expect(s.get("/v1/whoami"), 200).json == {"principal": "admin:bootstrap"}
    r = expect(s.get("/v1/whoami", token=None), 401, "unauthenticated")
    assert r.headers.get("www-authenticate", "").startswith("Bearer"), r.headers
    expect(s.get("/v1/orgs", token=None), 401, "unauthenticated")

    # --dev: the demo organization
    for kind, name in (("org", "demo"), ("tenant", "demo/default"), ("workspace", "demo/default/dev"),
                       ("service", "demo/default/dev/web")):
        o = expect(s.get(P(name)), 200).json
        assert (o["kind"], o["name"], o["created_by"], o["spec"]) == (kind, name, "admin:bootstrap", {}), o
    assert names(expect(s.get("/v1/orgs"), 200)) == ["demo"]
    rb = expect(s.get("/v1/rolebindings"), 200).json["items"]
    assert [(x["principal"], x["role"], x["scope"]) for x in rb] == [("admin:bootstrap", "admin", "")], rb
    # the audit log and its origin
    cp = expect(s.get("/v1/audit/checkpoint"), 200).text
    assert parse_checkpoint(cp)[:2] == ("example.test/zt-audit", 2), cp

    # more state: objects, a binding, tokens (one revoked)
    expect(s.post(C(), {"name": "acme", "spec": {"tier": "gold"}}), 201)
    expect(s.post(C("acme"), {"name": "pay", "spec": {"a": [1, 2, {"b": None}]}}), 201)
    web = expect(s.get(P("demo/default/dev/web")), 200).json
    expect(s.put(P("demo/default/dev/web"), {"spec": {"port": 8080}, "version": web["version"]}), 200)
    keep, _ = mint(s, "user:keep", description="survives restarts")
    gone, gone_id = mint(s, "user:gone")
    expect(bind(s, "user:keep", "viewer", "acme"), 201)
    expect(s.delete(f"/v1/tokens/{gone_id}"), 200)
    assert expect(s.get("/v1/whoami", token=keep), 200).json["principal"] == "user:keep"

    def snapshot():
        objs = {}
        for parent in ("", "acme", "demo", "demo/default", "demo/default/dev"):
            for o in expect(s.get(C(parent)), 200).json["items"]:
                objs[o["name"]] = expect(s.get(P(o["name"])), 200).json
        return (objs, expect(s.get("/v1/rolebindings"), 200).json["items"],
                expect(s.get("/v1/health", token=None), 200).json)

    before = snapshot()
    assert set(before[0]) == {"acme", "acme/pay", "demo", "demo/default", "demo/default/dev",
                              "demo/default/dev/web"}
    rc, took = s.stop()
    assert rc == 0, f"SIGTERM: exit {rc}\n{s.stderr()}"
    assert took < 3, f"SIGTERM took {took:.1f} s"

    # a restart of the same directory: no new token, the same state
    s.dev = False
    s.start()
    assert s.ready_lines[1] == "" and s.ready_lines[2] == str(s.dir), s.ready_lines
    assert "ztk_" not in s.stdout(), s.stdout()
    assert s.token == token
    after = snapshot()
    assert after == before, "state changed across a restart"
    assert expect(s.get("/v1/whoami", token=keep), 200).json["principal"] == "user:keep"
    expect(s.get(P("acme"), token=keep), 200)          # the binding holds
    expect(s.get(P("demo"), token=keep), 403)          # and only where it was made
    expect(s.get("/v1/whoami", token=gone), 401)       # the revoked token stays revoked
    # and it goes on: a new change gets the next revision
    n = expect(s.post(C("acme"), {"name": "ops"}), 201).json
    assert n["version"] == before[2]["revision"] + 1, (n, before[2])
    # a restart with --dev over an existing directory adds no demo objects nor a token
    rc, _ = s.stop()
    assert rc == 0
    s.dev = True
    s.start()
    assert s.ready_lines[1] == "" and "ztk_" not in s.stdout()
    assert names(expect(s.get("/v1/orgs"), 200)) == ["acme", "demo"]
    check_audit_count(s)


def test_sigterm_drains_a_request_in_flight(fresh):
    s = fresh()
    sock = s.ssl_context().wrap_socket(socket.create_connection(("127.0.0.1", s.port), 10),
                                       server_hostname="localhost")
    body = json.dumps({"name": "inflight", "spec": {"x": "y" * 200}}).encode()
    head = (f"POST /v1/orgs HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {s.token}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n").encode()
    sock.sendall(head + body[:50])
    time.sleep(0.2)
    s.proc.send_signal(signal.SIGTERM)
    time.sleep(0.3)
    assert s.alive(), "the server exited with a request in flight"
    sock.sendall(body[50:])
    sock.settimeout(10)
    data = b""
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    sock.close()
    r = parse_raw_response(data)
    assert r.status == 201, data[:500]
    assert r.headers.get("connection", "").lower() == "close", r.headers
    t0 = time.monotonic()
    s.proc.wait(timeout=10)
    assert s.proc.returncode == 0, s.stderr()
    assert time.monotonic() - t0 < 3
    # it was committed (with its audit entry)
    s.start()
    expect(s.get(P("inflight")), 200)
    check_audit_count(s, extra=1)


def test_sigterm_is_prompt_with_an_idle_keepalive_connection(fresh):
    """A client that keeps its connection open (as curl, browsers and SDKs do)
    must not hold a SIGTERM up: nothing is in flight on it."""
    s = fresh()
    c = s.client()
    expect(c.request("GET", "/v1/whoami"), 200)  # the connection stays open, idle
    rc, took = s.stop(timeout=4)
    c.close()
    assert rc == 0 and took < 3, (f"SIGTERM with one idle keep-alive connection took "
                                  f"{took:.1f} s (rc {rc}): the drain waits for idle connections")


# ---- 2. the hierarchy, through curl -----------------------------------------------------


def test_crud_hierarchy_through_curl(srv):
    c = srv.curl
    r = expect(c("POST", C(), {"name": "acme", "spec": {"owner": "ops"}}), 201)
    # (Location: test_create_location_header)
    org = r.json
    assert {"kind", "name", "version", "created", "updated", "spec", "created_by"} <= set(org), org
    assert (org["kind"], org["name"], org["spec"], org["created_by"]) == \
        ("org", "acme", {"owner": "ops"}, "admin:bootstrap"), org
    assert isinstance(org["version"], int) and org["version"] > 0
    assert expect(c("GET", P("acme")), 200).json == org
    expect(c("POST", C(), {"name": "acme", "spec": {}}), 409, "exists")
    assert expect(c("GET", P("acme")), 200).json == org

    chain = [("acme/pay", "tenant"), ("acme/pay/prod", "workspace"), ("acme/pay/prod/api", "service")]
    for name, kind in chain:
        parent, _, leaf = name.rpartition("/")
        r = expect(c("POST", C(parent), {"name": leaf, "spec": {"level": kind}}), 201)
        assert (r.json["kind"], r.json["name"], r.json["spec"]) == (kind, name, {"level": kind}), r
        assert expect(c("GET", P(name)), 200).json == r.json
    # spec is optional; the same service name under other workspaces is another object
    assert expect(c("POST", C("acme"), {"name": "ops"}), 201).json["spec"] == {}
    expect(c("POST", C("acme/ops"), {"name": "ops-prod"}), 201)
    expect(c("POST", C("acme/ops/ops-prod"), {"name": "api"}), 201)
    # but workspace names are unique across an organization: SPIFFE IDs name the workspace
    # (spiffe://TD/ns/WORKSPACE/sa/SERVICE), not the tenant
    r = expect(c("POST", C("acme/ops"), {"name": "prod"}), 409, "exists")
    assert "unique across an organization" in r.json["error"]["message"], r.json
    expect(c("GET", P("acme/ops/prod")), 404)
    expect(c("POST", C("acme/ops"), {"name": "prod2"}), 201)
    assert names(expect(c("GET", C("acme")), 200)) == ["acme/ops", "acme/pay"]
    assert "acme" in names(expect(c("GET", C()), 200))

    # paging: 25 services, pages of 10 through "next"
    expect(c("POST", C("acme/pay"), {"name": "paging"}), 201)
    made = [f"acme/pay/paging/svc-{i:02d}" for i in range(25)]
    for i, n in enumerate(made):
        expect(c("POST", C("acme/pay/paging"), {"name": n.rsplit("/", 1)[1], "spec": {"i": i}}), 201)
    seen, after, pages = [], None, []
    while True:
        q = "?limit=10" + (f"&after={after}" if after else "")
        r = expect(c("GET", C("acme/pay/paging") + q), 200)
        pages.append(len(r.json["items"]))
        seen += names(r)
        if "next" not in r.json:
            break
        assert r.json["next"] == seen[-1], r.json["next"]
        after = r.json["next"]
        assert len(pages) < 10
    assert pages == [10, 10, 5], pages
    assert seen == made
    assert [o["spec"]["i"] for o in expect(c("GET", C("acme/pay/paging") + "?limit=1000"), 200)
            .json["items"]] == list(range(25))
    # a full last page says "next"; the page after it is empty and does not
    r = expect(c("GET", C("acme/pay/paging") + "?limit=25"), 200)
    assert len(r.json["items"]) == 25 and r.json["next"] == made[-1]
    r = expect(c("GET", C("acme/pay/paging") + f"?limit=25&after={made[-1]}"), 200)
    assert r.json["items"] == [] and "next" not in r.json, r
    for bad in ("limit=0", "limit=1001", "limit=-1", "limit=ten", "after=Not%20A%20Name"):
        expect(c("GET", C("acme/pay/paging") + "?" + bad), 400, "invalid")

    # updates name the version they read: body, If-Match or ?version=
    api = P("acme/pay/prod/api")
    o1 = expect(c("GET", api), 200).json
    o2 = expect(c("PUT", api, {"spec": {"port": 8443}, "version": o1["version"]}), 200).json
    assert o2["version"] > o1["version"] and o2["spec"] == {"port": 8443}
    assert (o2["created"], o2["created_by"], o2["name"], o2["kind"]) == \
        (o1["created"], o1["created_by"], o1["name"], o1["kind"]), (o1, o2)
    o3 = expect(c("PUT", api, {"spec": {"port": 9000}}, headers=[f'If-Match: "{o2["version"]}"']), 200).json
    assert o3["version"] > o2["version"] and o3["spec"] == {"port": 9000}
    o4 = expect(c("PUT", api + f"?version={o3['version']}", {"spec": {"port": 9001}}), 200).json
    assert o4["version"] > o3["version"]
    assert expect(c("GET", api), 200).json == o4
    # a stale version: 409, nothing changes
    expect(c("PUT", api, {"spec": {"port": 1}, "version": o1["version"]}), 409, "conflict")
    expect(c("PUT", api, {"spec": {"port": 2}}, headers=[f'If-Match: "{o3["version"]}"']), 409, "conflict")
    expect(c("PUT", api + f"?version={o2['version']}", {"spec": {"port": 3}}), 409, "conflict")
    assert expect(c("GET", api), 200).json == o4
    # no version: 428
    expect(c("PUT", api, {"spec": {"port": 4}}), 428, "version-required")
    expect(c("PUT", api, {"spec": {"port": 4}}, headers=["If-Match: *"]), 428)
    expect(c("DELETE", api), 428, "version-required")
    expect(c("PUT", api, {"version": o4["version"]}), 400, "invalid")             # no spec
    expect(c("PUT", api, {"spec": {}, "version": o4["version"], "name": "x"}), 400, "invalid")
    assert expect(c("GET", api), 200).json == o4
    # updates of the other levels
    for name in ("acme", "acme/pay", "acme/pay/prod"):
        o = expect(c("GET", P(name)), 200).json
        u = expect(c("PUT", P(name), {"spec": {"updated": name}, "version": o["version"]}), 200).json
        assert u["spec"] == {"updated": name} and u["version"] > o["version"]

    # deletes: children first
    org = expect(c("GET", P("acme")), 200).json
    expect(c("DELETE", P("acme") + f"?version={org['version']}"), 409, "has-children")
    assert expect(c("GET", P("acme")), 200).json == org
    tmp = ["tmp", "tmp/t", "tmp/t/w", "tmp/t/w/s"]
    for n in tmp:
        parent, _, leaf = n.rpartition("/")
        expect(c("POST", C(parent), {"name": leaf}), 201)
    for n in tmp[:-1]:
        v = expect(c("GET", P(n)), 200).json["version"]
        expect(c("DELETE", P(n) + f"?version={v}"), 409, "has-children")
    leaf = expect(c("GET", P(tmp[-1])), 200).json
    expect(c("DELETE", P(tmp[-1]) + f"?version={leaf['version'] - 1}"), 409, "conflict")
    r = expect(c("DELETE", P(tmp[-1]), headers=[f'If-Match: "{leaf["version"]}"']), 200)
    assert (r.json["kind"], r.json["name"]) == ("service", "tmp/t/w/s"), r
    assert r.json["deleted"] > leaf["version"], r
    expect(c("GET", P(tmp[-1])), 404, "not-found")
    expect(c("DELETE", P(tmp[-1]) + f"?version={leaf['version']}"), 404, "not-found")
    for n in reversed(tmp[:-1]):
        v = expect(c("GET", P(n)), 200).json["version"]
        expect(c("DELETE", P(n) + f"?version={v}"), 200)
        expect(c("GET", P(n)), 404, "not-found")
    assert "tmp" not in names(expect(c("GET", C()), 200))
    expect(c("POST", C("tmp"), {"name": "t"}), 404, "not-found")
    # a name can be used again once deleted
    expect(c("POST", C(), {"name": "tmp"}), 201)

    # 404: missing parents and objects
    for parent in ("nope", "acme/nope", "acme/pay/nope"):
        expect(c("POST", C(parent), {"name": "x"}), 404, "not-found")
    for name in ("nope", "acme/nope", "acme/pay/nope", "acme/pay/prod/nope"):
        expect(c("GET", P(name)), 404, "not-found")
        expect(c("PUT", P(name), {"spec": {}, "version": 1}), 404, "not-found")
        expect(c("DELETE", P(name) + "?version=1"), 404, "not-found")
    for path in ("/v1/orgs/acme/widgets", "/v1/orgs/acme/workspaces", "/v1/orgs/acme/tenants/pay/services",
                 P("acme/pay/prod/api") + "/more", P("acme/pay/prod/api") + "/more/x", "/v1/nothing",
                 "/v1/tenants"):
        expect(c("GET", path), 404, "not-found")
    # 405: methods a resource does not take
    for method, path in (("DELETE", C()), ("PUT", C("acme")), ("PATCH", C("acme/pay")),
                         ("POST", P("acme")), ("PATCH", P("acme/pay/prod/api")), ("POST", P("acme/pay"))):
        expect(c(method, path, {"name": "x", "spec": {}}), 405, "method")
    # nothing of the above changed what was there
    assert expect(c("GET", api), 200).json == o4


def test_create_location_header(srv):
    """A create answers 201 with Location: the new object's path."""
    bad = []
    for i, name in enumerate(("loc", "loc/t", "loc/t/w", "loc/t/w/s", "loc/t/w/" + "n" * 63, "loc2",
                              "loc/t2", "loc/t/w2", "loc/t/w/s2")):
        parent, _, leaf = name.rpartition("/")
        via = srv.curl if i % 2 == 0 else srv.request
        r = expect(via("POST", C(parent), {"name": leaf}), 201)
        if r.headers.get("location") != P(name):
            bad.append(f"POST {C(parent)} {{name: {leaf}}}: Location {r.headers.get('location')!r}, "
                       f"expected {P(name)!r}")
    assert not bad, "\n".join(bad)


def test_list_under_a_missing_parent_is_404(srv):
    """The parent of a collection must exist: a list under one that does not is a
    404 (as a create there is), not an empty page."""
    expect(srv.post(C("nope"), {"name": "x"}), 404)
    expect(srv.get(C("nope")), 404, "not-found")
    expect(srv.get(C("nope/nope")), 404, "not-found")


def test_paging_with_a_percent_encoded_after(srv):
    """Clients encode query values ("/" as %2F: Python's urlencode, Go's
    url.Values.Encode); "next" must work when sent back that way."""
    for n in ("pe", "pe/t", "pe/t/w"):
        parent, _, leaf = n.rpartition("/")
        expect(srv.post(C(parent), {"name": leaf}), 201)
    for i in range(5):
        expect(srv.post(C("pe/t/w"), {"name": f"s{i}"}), 201)
    r = expect(srv.get(C("pe/t/w") + "?limit=2"), 200)
    assert r.json["next"] == "pe/t/w/s1"
    q = urllib.parse.urlencode({"limit": 2, "after": r.json["next"]})
    assert "%2F" in q
    r2 = expect(srv.get(C("pe/t/w") + "?" + q), 200)
    assert names(r2) == ["pe/t/w/s2", "pe/t/w/s3"], r2


def test_malformed_query_values_are_400_not_ignored(srv):
    """A query value that is badly escaped or too long is an error, never read as absent
    (an ignored ?after= would restart paging; an ignored ?version= would become a 428)."""
    expect(srv.post(C(""), {"name": "mq"}), 201)
    for q in ("after=%zz", "after=%4", "after=" + "a" * 1500, "limit=%31%3", "limit=" + "9" * 40):
        expect(srv.get(C("") + "?" + q), 400, "invalid")
    expect(srv.get("/v1/rolebindings?scope=%zz"), 400, "invalid")
    expect(srv.get("/v1/watch/policies?org=mq&since=" + "1" * 40), 400, "invalid")
    expect(srv.get("/v1/watch/policies?org=mq&timeout=%zz"), 400, "invalid")
    r = expect(srv.get("/v1/orgs/mq"), 200)
    expect(srv.delete(f"/v1/orgs/mq?version={'9' * 40}"), 400)
    expect(srv.delete(f"/v1/orgs/mq?version={r.json['version']}"), 200)


# ---- 3. role-based access ------------------------------------------------------------------


HIER = ["acme", "globex", "acme/pay", "acme/ops", "globex/main", "acme/pay/prod", "acme/pay/dev",
        "acme/pay/prod/api", "acme/pay/dev/web"]

# role, scope, principal
PRINCIPALS = {
    "org-admin": ("org-admin", "acme", "user:org-admin-org"),
    "tenant-admin": ("tenant-admin", "acme/pay", "user:tenant-admin-tenant"),
    "workspace-admin": ("workspace-admin", "acme/pay/prod", "user:workspace-admin-workspace"),
    "security-admin": ("security-admin", "acme", "user:security-admin-org"),
    "security-admin-root": ("security-admin", "", "user:security-admin-root"),
    "viewer": ("viewer", "acme/pay", "user:viewer-tenant"),
}

CUR = object()  # a PUT/DELETE of the object's current version


def case(desc, method, path, status, action=None, target=None, body=None):
    return (desc, method, path, body, status, action, target)


def rb(principal, role, scope):
    return {"principal": principal, "role": role, "scope": scope}


def reads(*pairs):
    return [case(f"read {p}", "GET", p, st, act, tgt) for p, st, act, tgt in pairs]


def common_denials(tag):
    return [
        case("create an org", "POST", C(), 403, "org.create", f"{tag}-org", {"name": f"{tag}-org"}),
        case("create a token", "POST", "/v1/tokens", 403, "token.create", "/", {"principal": f"user:{tag}-x"}),
        case("revoke a token", "DELETE", "/v1/tokens/0123456789abcdef", 403, "token.revoke", "0123456789abcdef"),
        case("create an admin binding", "POST", "/v1/rolebindings", 403, "rolebinding.create", "/",
             rb(f"user:{tag}-adm", "admin", "")),
    ]


def audit_denials(tag, allowed_root=False):
    st = 200 if allowed_root else 403
    return [case("read the audit entries", "GET", "/v1/audit/entries?limit=3", st, "audit.read", "audit"),
            case("read the audit checkpoint", "GET", "/v1/audit/checkpoint", st, "audit.read", "audit")]


RBAC_CASES = {
    "org-admin": lambda t: reads(
        (P("acme"), 200, None, None), (C("acme"), 200, None, None), (P("acme/pay/prod/api"), 200, None, None),
        (C("acme/pay/prod"), 200, None, None), (P("globex"), 403, "org.get", "globex"),
        (C(), 403, "org.list", "/"), (P("globex/main"), 403, "tenant.get", "globex/main"),
        (C("globex"), 403, "tenant.list", "globex"),
        ("/v1/rolebindings?scope=acme", 200, None, None), ("/v1/rolebindings", 403, "rolebinding.list", "/"),
    ) + [
        case("create a tenant", "POST", C("acme"), 201, "tenant.create", f"acme/{t}-t", {"name": f"{t}-t"}),
        case("create a workspace below", "POST", C("acme/pay"), 201, "workspace.create", f"acme/pay/{t}-w",
             {"name": f"{t}-w"}),
        case("create a service below", "POST", C("acme/pay/prod"), 201, "service.create",
             f"acme/pay/prod/{t}-s", {"name": f"{t}-s"}),
        case("update own org", "PUT", P("acme"), 200, "org.update", "acme", CUR),
        case("update a tenant below", "PUT", P("acme/pay"), 200, "tenant.update", "acme/pay", CUR),
        case("create a sibling org's tenant", "POST", C("globex"), 403, "tenant.create", f"globex/{t}-t",
             {"name": f"{t}-t"}),
        case("update a sibling org", "PUT", P("globex"), 403, "org.update", "globex", CUR),
        case("bind tenant-admin below", "POST", "/v1/rolebindings", 201, "rolebinding.create", None,
             rb(f"user:{t}-ta", "tenant-admin", "acme/pay")),
        case("bind org-admin at own org", "POST", "/v1/rolebindings", 201, "rolebinding.create", None,
             rb(f"user:{t}-oa", "org-admin", "acme")),
        case("bind security-admin at own org", "POST", "/v1/rolebindings", 201, "rolebinding.create", None,
             rb(f"user:{t}-sa", "security-admin", "acme")),
        case("bind viewer in another org", "POST", "/v1/rolebindings", 403, "rolebinding.create", "globex",
             rb(f"user:{t}-v", "viewer", "globex")),
        case("bind at the top", "POST", "/v1/rolebindings", 403, "rolebinding.create", "/",
             rb(f"user:{t}-v", "viewer", "")),
    ] + common_denials(t) + audit_denials(t),
    "tenant-admin": lambda t: reads(
        (P("acme/pay"), 200, None, None), (C("acme/pay"), 200, None, None),
        (P("acme/pay/prod/api"), 200, None, None), (P("acme/ops"), 403, "tenant.get", "acme/ops"),
        (P("acme"), 403, "org.get", "acme"), (C("acme"), 403, "tenant.list", "acme"),
        (P("globex"), 403, "org.get", "globex"), (C("acme/ops"), 403, "workspace.list", "acme/ops"),
        ("/v1/rolebindings?scope=acme/pay", 200, None, None),
        ("/v1/rolebindings?scope=acme", 403, "rolebinding.list", "acme"),
    ) + [
        case("create a workspace", "POST", C("acme/pay"), 201, "workspace.create", f"acme/pay/{t}-w",
             {"name": f"{t}-w"}),
        case("create a service below", "POST", C("acme/pay/prod"), 201, "service.create",
             f"acme/pay/prod/{t}-s", {"name": f"{t}-s"}),
        case("update own tenant", "PUT", P("acme/pay"), 200, "tenant.update", "acme/pay", CUR),
        case("update a workspace below", "PUT", P("acme/pay/prod"), 200, "workspace.update", "acme/pay/prod", CUR),
        case("create a sibling tenant", "POST", C("acme"), 403, "tenant.create", f"acme/{t}-t", {"name": f"{t}-t"}),
        case("create in a sibling tenant", "POST", C("acme/ops"), 403, "workspace.create", f"acme/ops/{t}-w",
             {"name": f"{t}-w"}),
        case("update the org", "PUT", P("acme"), 403, "org.update", "acme", CUR),
        case("update a sibling tenant", "PUT", P("acme/ops"), 403, "tenant.update", "acme/ops", CUR),
        case("bind workspace-admin below", "POST", "/v1/rolebindings", 201, "rolebinding.create", None,
             rb(f"user:{t}-wa", "workspace-admin", "acme/pay/prod")),
        case("bind viewer at own tenant", "POST", "/v1/rolebindings", 201, "rolebinding.create", None,
             rb(f"user:{t}-v", "viewer", "acme/pay")),
        case("bind tenant-admin (own role)", "POST", "/v1/rolebindings", 403, "rolebinding.create", "acme/pay",
             rb(f"user:{t}-ta", "tenant-admin", "acme/pay")),
        case("bind org-admin", "POST", "/v1/rolebindings", 403, "rolebinding.create", "acme",
             rb(f"user:{t}-oa", "org-admin", "acme")),
        case("bind security-admin below", "POST", "/v1/rolebindings", 403, "rolebinding.create", "acme/pay",
             rb(f"user:{t}-sa", "security-admin", "acme/pay")),
        case("bind viewer in a sibling tenant", "POST", "/v1/rolebindings", 403, "rolebinding.create",
             "acme/ops", rb(f"user:{t}-v2", "viewer", "acme/ops")),
    ] + common_denials(t) + audit_denials(t),
    "workspace-admin": lambda t: reads(
        (P("acme/pay/prod"), 200, None, None), (C("acme/pay/prod"), 200, None, None),
        (P("acme/pay/prod/api"), 200, None, None), (P("acme/pay/dev"), 403, "workspace.get", "acme/pay/dev"),
        (P("acme/pay/dev/web"), 403, "service.get", "acme/pay/dev/web"),
        (P("acme/pay"), 403, "tenant.get", "acme/pay"), (C("acme/pay"), 403, "workspace.list", "acme/pay"),
    ) + [
        case("create a service", "POST", C("acme/pay/prod"), 201, "service.create", f"acme/pay/prod/{t}-s",
             {"name": f"{t}-s"}),
        case("update own workspace", "PUT", P("acme/pay/prod"), 200, "workspace.update", "acme/pay/prod", CUR),
        case("update a service below", "PUT", P("acme/pay/prod/api"), 200, "service.update",
             "acme/pay/prod/api", CUR),
        case("create a sibling workspace", "POST", C("acme/pay"), 403, "workspace.create",
             f"acme/pay/{t}-w", {"name": f"{t}-w"}),
        case("create in a sibling workspace", "POST", C("acme/pay/dev"), 403, "service.create",
             f"acme/pay/dev/{t}-s", {"name": f"{t}-s"}),
        case("create a tenant", "POST", C("acme"), 403, "tenant.create", f"acme/{t}-t", {"name": f"{t}-t"}),
        case("update the tenant", "PUT", P("acme/pay"), 403, "tenant.update", "acme/pay", CUR),
        case("bind viewer at own workspace", "POST", "/v1/rolebindings", 201, "rolebinding.create", None,
             rb(f"user:{t}-v", "viewer", "acme/pay/prod")),
        case("bind workspace-admin (own role)", "POST", "/v1/rolebindings", 403, "rolebinding.create",
             "acme/pay/prod", rb(f"user:{t}-wa", "workspace-admin", "acme/pay/prod")),
        case("bind viewer at the tenant", "POST", "/v1/rolebindings", 403, "rolebinding.create", "acme/pay",
             rb(f"user:{t}-v2", "viewer", "acme/pay")),
    ] + common_denials(t) + audit_denials(t),
    "security-admin": lambda t: reads(
        (P("acme"), 200, None, None), (C("acme"), 200, None, None), (P("acme/pay/prod/api"), 200, None, None),
        (P("globex"), 403, "org.get", "globex"), (C(), 403, "org.list", "/"),
        ("/v1/rolebindings?scope=acme", 200, None, None),
    ) + [
        case("create a tenant", "POST", C("acme"), 403, "tenant.create", f"acme/{t}-t", {"name": f"{t}-t"}),
        case("create a service", "POST", C("acme/pay/prod"), 403, "service.create", f"acme/pay/prod/{t}-s",
             {"name": f"{t}-s"}),
        case("update own org", "PUT", P("acme"), 403, "org.update", "acme", CUR),
        case("delete a service", "DELETE", P("acme/pay/prod/api"), 403, "service.delete", "acme/pay/prod/api", CUR),
        case("bind viewer", "POST", "/v1/rolebindings", 403, "rolebinding.create", "acme",
             rb(f"user:{t}-v", "viewer", "acme")),
    ] + common_denials(t) + audit_denials(t),
    "security-admin-root": lambda t: reads(
        (C(), 200, None, None), (P("globex"), 200, None, None), (P("acme/pay/prod/api"), 200, None, None),
        ("/v1/rolebindings", 200, None, None),
    ) + [
        case("create an org", "POST", C(), 403, "org.create", f"{t}-org2", {"name": f"{t}-org2"}),
        case("create a tenant", "POST", C("globex"), 403, "tenant.create", f"globex/{t}-t", {"name": f"{t}-t"}),
        case("update an org", "PUT", P("globex"), 403, "org.update", "globex", CUR),
        case("bind viewer", "POST", "/v1/rolebindings", 403, "rolebinding.create", "globex",
             rb(f"user:{t}-v", "viewer", "globex")),
        case("read an inclusion proof", "GET", "/v1/audit/proof?index=0", 200),
    ] + common_denials(t) + audit_denials(t, allowed_root=True),
    "viewer": lambda t: reads(
        (P("acme/pay"), 200, None, None), (C("acme/pay"), 200, None, None),
        (P("acme/pay/prod/api"), 200, None, None), (C("acme/pay/prod"), 200, None, None),
        (P("acme/ops"), 403, "tenant.get", "acme/ops"), (P("acme"), 403, "org.get", "acme"),
        (C("acme"), 403, "tenant.list", "acme"),
    ) + [
        case("create a workspace", "POST", C("acme/pay"), 403, "workspace.create", f"acme/pay/{t}-w",
             {"name": f"{t}-w"}),
        case("create a service", "POST", C("acme/pay/prod"), 403, "service.create", f"acme/pay/prod/{t}-s",
             {"name": f"{t}-s"}),
        case("update own tenant", "PUT", P("acme/pay"), 403, "tenant.update", "acme/pay", CUR),
        case("update a service", "PUT", P("acme/pay/prod/api"), 403, "service.update", "acme/pay/prod/api", CUR),
        case("delete a service", "DELETE", P("acme/pay/prod/api"), 403, "service.delete", "acme/pay/prod/api", CUR),
        case("create a sibling tenant", "POST", C("acme"), 403, "tenant.create", f"acme/{t}-t", {"name": f"{t}-t"}),
        case("bind viewer", "POST", "/v1/rolebindings", 403, "rolebinding.create", "acme/pay",
             rb(f"user:{t}-v", "viewer", "acme/pay")),
    ] + common_denials(t) + audit_denials(t),
}


@pytest.fixture(scope="module")
def rbac(tmp_path_factory):
    """A hierarchy of two organizations and one token per role, bound at its node."""
    need_zt()
    s = Server(tmp_path_factory.mktemp("rbac")).start()
    for n in HIER:
        parent, _, leaf = n.rpartition("/")
        expect(s.post(C(parent), {"name": leaf, "spec": {"of": n}}), 201)
    s.tokens = {}
    for key, (role, scope, principal) in PRINCIPALS.items():
        tok, _ = mint(s, principal)
        expect(bind(s, principal, role, scope), 201)
        s.tokens[key] = tok
        assert expect(s.get("/v1/whoami", token=tok), 200).json["principal"] == principal
    yield s
    check_audit_count(s)
    s.finish()


@pytest.mark.parametrize("key", list(RBAC_CASES))
def test_rbac_matrix(rbac, key):
    s = rbac
    role, scope, principal = PRINCIPALS[key]
    tok = s.tokens[key]
    tag = {"org-admin": "oa", "tenant-admin": "ta", "workspace-admin": "wa", "security-admin": "sa",
           "security-admin-root": "sr", "viewer": "vw"}[key]
    results, wrong = [], []
    for desc, method, path, body, status, action, target in RBAC_CASES[key](tag):
        hdrs = {}
        if body is CUR:
            v = expect(s.get(path), 200).json["version"]
            body = {"spec": {"by": principal}, "version": v} if method == "PUT" else None
            hdrs = {"If-Match": f'"{v}"'} if method == "DELETE" else {}
        r = s.request(method, path, body, token=tok, headers=hdrs)
        if r.status != status:
            wrong.append(f"{role}@{scope or '/'}: {desc}: {method} {path} -> {r.status}, expected {status}: "
                         f"{r.text[:200]}")
        results.append((desc, method, r, action, target))
    assert not wrong, "\n".join(wrong)

    # the log: each 403 as a denial, each change as an allowance, with the response's
    # request ID; and nothing else from this principal (reads are not logged)
    ents = s.audit_entries()
    by_rid = {}
    for e in ents:
        by_rid.setdefault(e.get("request_id"), []).append(e)
    logged = 0
    for desc, method, r, action, target in results:
        if r.status == 403 or (method != "GET" and r.status < 300):
            got = by_rid.get(r.rid, [])
            assert len(got) == 1, f"{desc}: {len(got)} audit entries with request_id {r.rid}: {got}"
            e = got[0]
            assert e["actor"] == principal, (desc, e)
            assert e["decision"] == ("deny" if r.status == 403 else "allow"), (desc, e)
            assert e["action"] == action, (desc, e)
            if target is not None:
                assert e["target"] == target, (desc, e)
            logged += 1
        else:
            assert r.rid not in by_rid, f"{desc}: a read was logged: {by_rid[r.rid]}"
    mine = [e for e in ents if e["actor"] == principal]
    assert len(mine) == logged, f"{len(mine)} entries by {principal}, expected {logged}"


def test_rbac_bindings_take_effect_and_can_be_withdrawn(rbac):
    s = rbac
    ta = s.tokens["tenant-admin"]
    bob, _ = mint(s, "user:bob")
    expect(s.post(C("acme/pay/dev"), {"name": "bob-s"}, token=bob), 403)
    expect(s.get("/v1/rolebindings?scope=acme/pay", token=bob), 403)
    b = expect(bind(s, "user:bob", "workspace-admin", "acme/pay/dev", token=ta), 201).json
    assert b["kind"] == "rolebinding" and re.fullmatch(r"[0-9a-f]{32}", b["name"]), b
    assert (b["principal"], b["role"], b["scope"]) == ("user:bob", "workspace-admin", "acme/pay/dev"), b
    expect(bind(s, "user:bob", "workspace-admin", "acme/pay/dev", token=ta), 409, "exists")
    got = expect(s.get(f"/v1/rolebindings/{b['name']}", token=ta), 200).json
    assert got == b, (got, b)
    listed = expect(s.get("/v1/rolebindings?scope=acme/pay", token=ta), 200).json["items"]
    assert b["name"] in [x["name"] for x in listed]
    assert all(x["scope"] == "acme/pay" or x["scope"].startswith("acme/pay/") for x in listed), listed
    # bob now works in acme/pay/dev, and only there
    o = expect(s.post(C("acme/pay/dev"), {"name": "bob-s"}, token=bob), 201).json
    assert o["created_by"] == "user:bob"
    expect(s.post(C("acme/pay/prod"), {"name": "bob-s"}, token=bob), 403)
    # the tenant-admin may not withdraw what it could not grant
    oa_binding = [x for x in expect(s.get("/v1/rolebindings?scope=acme"), 200).json["items"]
                  if x["principal"] == "user:org-admin-org"][0]
    expect(s.delete(f"/v1/rolebindings/{oa_binding['name']}", token=ta), 403)
    ta_binding = [x for x in listed if x["principal"] == "user:tenant-admin-tenant"][0]
    expect(s.delete(f"/v1/rolebindings/{ta_binding['name']}", token=ta), 403)
    expect(s.get(f"/v1/rolebindings/{oa_binding['name']}", token=ta), 403)
    # ... but bob's, which it made
    r = expect(s.delete(f"/v1/rolebindings/{b['name']}", token=ta), 200)
    assert r.json["name"] == b["name"]
    expect(s.get(f"/v1/rolebindings/{b['name']}"), 404)
    expect(s.delete(f"/v1/rolebindings/{b['name']}"), 404)
    expect(s.post(C("acme/pay/dev"), {"name": "bob-s2"}, token=bob), 403)
    # a principal without bindings is authenticated, and may do nothing else
    nobody, _ = mint(s, "user:nobody")
    assert expect(s.get("/v1/whoami", token=nobody), 200).json == {"principal": "user:nobody"}
    for path in (C(), P("acme"), "/v1/rolebindings", "/v1/audit/checkpoint"):
        expect(s.get(path, token=nobody), 403, "forbidden")
    # malformed bindings
    for body in ({"principal": "u", "role": "superuser", "scope": ""},
                 {"principal": "u", "role": "admin", "scope": "acme"},
                 {"principal": "", "role": "viewer", "scope": "acme"},
                 {"role": "viewer", "scope": "acme"},
                 {"principal": "u", "role": "viewer"},
                 {"principal": "u", "role": "viewer", "scope": "/acme"},
                 {"principal": "u", "role": "viewer", "scope": "acme", "extra": 1},
                 {"principal": 7, "role": "viewer", "scope": "acme"}):
        expect(s.post("/v1/rolebindings", body), 400, "invalid")
    expect(s.get("/v1/rolebindings/not-a-binding"), 404)


def test_rbac_scoped_admins_cannot_create_their_own_node(rbac):
    """org-admin@o may update and delete o but not create organizations: not
    even o itself, when the binding is made before the organization (or o was
    deleted). The same holds one level down for tenant-admin@o/t and
    workspace-admin@o/t/w (they may update their node, not create it)."""
    s = rbac
    bad = []
    for role, scope, create_in, leaf in (("org-admin", "ghost", "", "ghost"),
                                         ("tenant-admin", "acme/ghost", "acme", "ghost"),
                                         ("workspace-admin", "acme/pay/ghost", "acme/pay", "ghost")):
        who = f"user:{role}-of-ghost"
        tok, _ = mint(s, who)
        expect(bind(s, who, role, scope), 201)
        r = s.post(C(create_in), {"name": leaf}, token=tok)
        if r.status != 403:
            bad.append(f"{role}@{scope} created {scope}: POST {C(create_in)} -> {r.status} {r.text[:160]}")
    assert not bad, "\n".join(bad)


# ---- 4. mTLS callers ------------------------------------------------------------------------


def test_mtls_svids(fresh, tmp_path):
    s = fresh()
    cert = svid(s.dir / "ca", "spiffe://zt.local/ns/web/sa/api", tmp_path, "web")
    sid = "spiffe://zt.local/ns/web/sa/api"
    assert expect(s.get("/v1/whoami", token=None, cert=cert), 200).json == {"principal": sid}
    assert expect(s.curl("GET", "/v1/whoami", token=None, cert=cert), 200).json == {"principal": sid}
    # authenticated, but without a binding: 403, on the record with the SPIFFE ID as actor
    r = expect(s.get(C(), token=None, cert=cert), 403, "forbidden")
    expect(s.post(C(), {"name": "acme"}), 201)
    expect(s.get(P("acme"), token=None, cert=cert), 403)
    deny = [e for e in s.audit_entries() if e["request_id"] == r.rid]
    assert len(deny) == 1 and deny[0]["actor"] == sid and deny[0]["decision"] == "deny", deny
    # with a binding: access
    expect(bind(s, sid, "org-admin", "acme"), 201)
    expect(s.get(P("acme"), token=None, cert=cert), 200)
    t = expect(s.post(C("acme"), {"name": "pay"}, token=None, cert=cert), 201).json
    assert t["created_by"] == sid, t
    expect(s.get(C(), token=None, cert=cert), 403)
    # another SPIFFE ID of the same trust domain has no such binding
    other_sa = svid(s.dir / "ca", "spiffe://zt.local/ns/web/sa/batch", tmp_path, "batch")
    expect(s.get(P("acme"), token=None, cert=other_sa), 403)

    # SVIDs of other CAs fail the handshake: another trust domain, or an impostor
    # CA claiming this one
    for td, name in (("other.org", "other"), ("zt.local", "impostor")):
        ca = tmp_path / f"ca-{name}"
        p = zt("ca", "init", "--trust-domain", td, "--dir", ca)
        assert p.returncode == 0, p.stderr
        foreign = svid(ca, f"spiffe://{td}/ns/web/sa/api", tmp_path, name)
        before = len(s.responses)
        with pytest.raises((OSError, http.client.HTTPException)):
            s.get("/v1/whoami", token=None, cert=foreign)
        assert len(s.responses) == before, "a foreign SVID got an HTTP response"
        p = subprocess.run(["curl", "-sS", "--cacert", str(s.bundle), "--cert", str(foreign[0]),
                            "--key", str(foreign[1]), "--resolve", f"localhost:{s.port}:127.0.0.1",
                            f"https://localhost:{s.port}/v1/whoami"], capture_output=True, timeout=20)
        assert p.returncode != 0 and b"principal" not in p.stdout, (p.returncode, p.stdout, p.stderr)
    assert "TLS handshake failed" in s.stderr()
    # the server is none the worse
    expect(s.get("/v1/whoami", token=None, cert=cert), 200)
    check_audit_count(s)
    # nor did the mTLS connections leave anything behind (ASan/LSan build)
    rc, _ = s.stop()
    s.assert_clean_stderr()
    assert rc == 0, s.stderr()[-3000:]


# ---- 5. tokens --------------------------------------------------------------------------------


def test_tokens(fresh):
    s = fresh()
    r = expect(s.post("/v1/tokens", {"principal": "user:alice", "description": "ci", "ttl": "30d"}), 201)
    assert set(r.json) >= {"id", "token", "principal"}, r
    tok, tid = r.json["token"], r.json["id"]
    assert re.fullmatch(r"[0-9a-f]{16}", tid) and tok.startswith(f"ztk_{tid}_"), r
    assert r.json["principal"] == "user:alice"
    assert expect(s.get("/v1/whoami", token=tok), 200).json == {"principal": "user:alice"}
    # shown once: no way to read it back, and not on the log nor in the store
    secret = tok.split("_", 2)[2]
    for path in (f"/v1/tokens/{tid}", "/v1/tokens"):
        assert secret not in s.get(path).text
    assert secret not in json.dumps(s.audit_entries())
    assert secret.encode() not in (s.dir / "audit" / "entries").read_bytes()
    for f in s.dir.glob("store.db*"):
        assert secret.encode() not in f.read_bytes(), f"the token's secret is stored in {f}"
    # a token without a principal is its own
    r = expect(s.post("/v1/tokens", {}), 201)
    assert r.json["principal"] == f"token:{r.json['id']}", r
    assert expect(s.get("/v1/whoami", token=r.json["token"]), 200).json["principal"] == r.json["principal"]
    # revoked -> 401
    expect(s.delete(f"/v1/tokens/{tid}"), 200)
    r401 = expect(s.get("/v1/whoami", token=tok), 401, "unauthenticated")
    assert r401.headers.get("www-authenticate", "").startswith("Bearer")
    expect(s.delete(f"/v1/tokens/{tid}"), 404)
    # expired -> 401
    t1, _ = mint(s, "user:brief", ttl="1s")
    t2, _ = mint(s, "user:brief2", ttl="2s")
    t_made = time.monotonic()
    assert expect(s.get("/v1/whoami", token=t2), 200).json["principal"] == "user:brief2"
    time.sleep(max(0, 2.1 - (time.monotonic() - t_made)))
    expect(s.get("/v1/whoami", token=t1), 401, "unauthenticated")
    expect(s.get("/v1/whoami", token=t2), 401, "unauthenticated")
    # bad token requests
    for body in ({"ttl": "0s"}, {"ttl": "abc"}, {"ttl": "400d"}, {"ttl": 30}, {"principal": ""},
                 {"description": "x" * 300}, {"principal": "u", "scope": "x"}):
        expect(s.post("/v1/tokens", body), 400, "invalid")
    # garbled tokens -> 401 (10 failures from 127.0.0.1, under the limit)
    good, _ = mint(s, "user:good")
    flipped = good[:-1] + ("A" if good[-1] != "A" else "B")
    other_id = "ztk_" + ("0" * 16) + good[20:]
    garbled = [f"Bearer {flipped}", f"Bearer {other_id}", f"Bearer {good[:-1]}", f"Bearer {good}x",
               "Bearer ztk_nothex0123456789_" + "A" * 43, f"Basic {good}", f"Token {good}", "Bearer ",
               good]
    for value in garbled:
        expect(s.get("/v1/whoami", token=None, headers={"Authorization": value}), 401, "unauthenticated")
    expect(s.get("/v1/whoami", token=good), 200)
    # two Authorization fields
    raw = (f"GET /v1/whoami HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {good}\r\n"
           f"Authorization: Bearer {good}\r\nConnection: close\r\n\r\n").encode()
    assert parse_raw_response(s.raw(raw)).status in (400, 401)
    check_audit_count(s)


def test_failed_authentication_limit(fresh):
    """More than 20 failed authentications from one address in a minute: 429 with
    Retry-After, for that address only. (Loopback addresses stand for clients.)"""
    s = fresh()
    good, _ = mint(s, "user:good")
    src = "127.0.0.77"
    statuses = []
    for i in range(21):
        r = s.get("/v1/whoami", token="ztk_" + "f" * 16 + "_" + "x" * 43, source=src)
        statuses.append(r.status)
    assert statuses[:20] == [401] * 20, statuses
    r = expect(s.get("/v1/whoami", token="ztk_" + "f" * 16 + "_" + "x" * 43, source=src), 429)
    assert statuses[20] == 429, statuses
    ra = r.headers.get("retry-after", "")
    assert ra.isdigit() and 0 < int(ra) <= 60, r.headers
    # from that address even a good token waits; other addresses are not affected
    expect(s.get("/v1/whoami", token=good, source=src), 429)
    assert expect(s.get("/v1/whoami", token=good, source="127.0.0.78"), 200).json["principal"] == "user:good"
    assert expect(s.get("/v1/whoami", token=good), 200).json["principal"] == "user:good"
    # unauthenticated public endpoints still answer
    expect(s.get("/v1/health", token=None, source=src), 200)
    check_audit_count(s)


# ---- 6. limits and malformed input ------------------------------------------------------------


def test_malformed_bodies_and_names(srv):
    s = srv
    expect(s.post(C(), {"name": "lim"}), 201)
    path = C("lim")
    for raw in (b"{", b'{"name": "x",}', b"nul", b"[]", b'[{"name": "x"}]', b'"x"', b"null", b"17",
                b"\xff\xfe{}", b'{"name": "a\x00b"}', b""):
        r = s.post(path, None, raw=raw)
        expect(r, 400, "invalid")
    expect(s.post(path, {"name": "x", "spec": {}, "extra": 1}), 400, "invalid")
    assert "extra" in s.post(path, {"name": "x", "extras": 1}).json["error"]["message"]
    for bad in ("Upper", "under_score", "a" * 64, "-lead", "trail-", "", "dot.ted", "sp ace", "sl/ash",
                "\u00fcml", 123, None, ["a"], {"a": 1}):
        r = s.post(path, {"name": bad, "spec": {}})
        expect(r, 400, "invalid")
    expect(s.post(path, {"spec": {}}), 400, "invalid")
    for spec in ([1], "x", 3, None, True):
        expect(s.post(path, {"name": "specbad", "spec": spec}), 400, "invalid")
    # good names at the edges
    for good in ("a" * 63, "0", "a-b", "9z"):
        expect(s.post(path, {"name": good}), 201)
    # names in paths
    expect(s.get(P("lim/Upper")), 400, "invalid")
    expect(s.get(P("Lim")), 400, "invalid")
    expect(s.get(P("lim/under_score")), 400, "invalid")
    # nothing of that made an object
    assert sorted(names(expect(s.get(path), 200))) == sorted(["lim/" + "a" * 63, "lim/0", "lim/a-b", "lim/9z"])


def nest(n):
    """A spec n objects deep (the spec itself is one)."""
    v = {}
    for _ in range(n - 1):
        v = {"a": v}
    return v


def test_long_names_are_not_truncated(srv):
    """Four 63-character labels make a 255-character name, more than the store's
    253: the server must refuse it or keep it whole, never cut it (cut, several
    services name one object)."""
    s = srv
    a, b, c = "a" * 63, "b" * 63, "c" * 63
    for n in (a, f"{a}/{b}", f"{a}/{b}/{c}"):
        parent, _, leaf = n.rpartition("/")
        expect(s.post(C(parent), {"name": leaf}), 201)
    ws = f"{a}/{b}/{c}"
    r = s.post(C(ws), {"name": "d" * 63})
    assert r.status in (201, 400), r
    if r.status == 201:
        assert r.json["name"] == f"{ws}/{'d' * 63}", f"created as {r.json['name'][-70:]!r}"
    # other names are other objects (or refused), never this one
    r61 = s.get(P(f"{ws}/{'d' * 61}"))
    assert r61.status == 404, f"GET service d*61 -> {r61.status}: {r61.text[:300]}"
    r62 = s.post(C(ws), {"name": "d" * 62})
    assert r62.status in (201, 400), f"POST service d*62 -> {r62.status}: {r62.text[:300]}"


def test_spec_depth(srv):
    s = srv
    expect(s.post(C(), {"name": "depth"}), 201)
    path = C("depth")
    expect(s.post(path, {"name": "deep4", "spec": nest(4)}), 201)
    expect(s.post(path, {"name": "deep8", "spec": nest(8)}), 201)       # 8 levels, the spec included
    expect(s.post(path, {"name": "deep9", "spec": nest(9)}), 413, "too-large")
    expect(s.post(path, {"name": "deep10", "spec": nest(10)}), 413, "too-large")
    expect(s.post(path, {"name": "deep10a", "spec": {"a": [[[[[[[[[[1]]]]]]]]]]}}), 413, "too-large")
    o = expect(s.get(P("depth/deep4")), 200).json
    expect(s.put(P("depth/deep4"), {"spec": nest(12), "version": o["version"]}), 413, "too-large")
    assert expect(s.get(P("depth/deep4")), 200).json == o
    # very deep JSON (small bodies) is refused, and the server survives it
    r = s.post(path, None, raw=b'{"name":"abyss","spec":' + b'{"a":' * 600 + b"{}" + b"}" * 601)
    assert r.status in (400, 413), r
    r = s.post(path, None, raw=b'{"name":"abyss2","spec":{"a":' + b"[" * 1800 + b"]" * 1800 + b"}}")
    assert r.status in (400, 413), r
    assert names(expect(s.get(path), 200)) == ["depth/deep4", "depth/deep8"]


def test_request_bodies_over_4_kib(srv):
    """A body larger than the first read (4 KiB) is an ordinary request: same
    path, same fields (net/httpd.c grows its buffer while reading the body)."""
    s = srv
    expect(s.post(C(), {"name": "bodies"}), 201)
    bad = []
    for n in (3000, 5000, 20000, 60000):
        r = s.post(C("bodies"), {"name": f"b{n}", "spec": {"a": "x" * n}})
        if r.status != 201:
            bad.append(f"POST with a {n}-byte spec -> {r.status} {r.text[:160]}")
    o = expect(s.get(P("bodies")), 200).json
    r = s.put(P("bodies"), {"spec": {"a": "y" * 10000}, "version": o["version"]})
    if r.status != 200:
        bad.append(f"PUT with a 10000-byte spec -> {r.status} {r.text[:160]}")
    assert not bad, "\n".join(bad)


def test_spec_size_limit(srv):
    s = srv
    expect(s.post(C(), {"name": "spec"}), 201)
    path = C("spec")
    # 64 KiB of spec, compact JSON: {"a":"xxx..."}
    expect(s.post(path, {"name": "fits", "spec": {"a": "x" * (65536 - 8)}}), 201)
    expect(s.post(path, {"name": "big", "spec": {"a": "x" * (65536 - 7)}}), 413, "too-large")
    expect(s.post(path, {"name": "bigger", "spec": {"a": "x" * 200000}}), 413, "too-large")
    o = expect(s.get(P("spec/fits")), 200).json
    expect(s.put(P("spec/fits"), {"spec": {"a": "x" * 70000}, "version": o["version"]}), 413, "too-large")
    assert expect(s.get(P("spec/fits")), 200).json == o
    # a body of exactly 1 MiB is taken
    body = json.dumps({"name": "mib", "spec": {}}).encode()
    expect(s.post(path, None, raw=body + b" " * ((1 << 20) - len(body))), 201)
    # very deep JSON in a big body
    r = s.post(path, None, raw=b'{"name":"abyss","spec":{"a":' + b"[" * 100000 + b"]" * 100000 + b"}}")
    assert r.status in (400, 413), r
    assert names(expect(s.get(path), 200)) == ["spec/fits", "spec/mib"]


def test_http_limits(srv):
    s = srv
    tok = s.token
    expect(s.post(C(), {"name": "http"}), 201)
    path = C("http")
    # a body over 1 MiB is refused from its Content-Length (1 MiB itself: test_spec_size_limit)
    body = json.dumps({"name": "mib", "spec": {}}).encode()
    head = (f"POST {path} HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {tok}\r\n"
            f"Content-Type: application/json\r\n").encode()
    for n in ((1 << 20) + 1, 2 << 20):
        data = s.raw(head + f"Content-Length: {n}\r\n\r\n".encode() + body + b" " * 4096)
        r = check_shape(parse_raw_response(data))
        expect(r, 413)
        assert r.headers.get("connection", "").lower() == "close", r.headers
    # Expect: 100-continue with a body too large: refused without a 100
    data = s.raw(head + f"Content-Length: {2 << 20}\r\nExpect: 100-continue\r\n\r\n".encode())
    assert not data.startswith(b"HTTP/1.1 100"), data[:100]
    expect(parse_raw_response(data), 413)
    # chunked: 411
    data = s.raw(head + b"Transfer-Encoding: chunked\r\n\r\n" + b"%x\r\n" % len(body) + body + b"\r\n0\r\n\r\n")
    r = check_shape(parse_raw_response(data))
    expect(r, 411)
    # both framings: refused
    data = s.raw(head + b"Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n")
    assert parse_raw_response(data).status in (400, 411), data[:200]
    # a 40 KiB header field: 431; so are many fields
    data = s.raw(b"GET /v1/whoami HTTP/1.1\r\nHost: localhost\r\nX-Big: " + b"a" * 40960 + b"\r\n\r\n")
    expect(check_shape(parse_raw_response(data)), 431)
    data = s.raw(b"GET /v1/whoami HTTP/1.1\r\nHost: localhost\r\n" +
                 b"".join(b"X-F%d: %s\r\n" % (i, b"v" * 350) for i in range(120)) + b"\r\n")
    expect(check_shape(parse_raw_response(data)), 431)
    # a long request target: 414
    r = s.get("/v1/orgs/" + "a" * 3000)
    assert r.status == 414, r
    # not under /v1
    for p in ("/v2/orgs", "/v2/health", "/", "/v1", "/orgs", "/v1x/orgs"):
        expect(s.get(p), 404, "not-found")
    expect(s.get("/v2/health", token=None), 404)
    # absolute-form targets and garbage are 400s with a request ID
    data = s.raw(b"GET https://localhost/v1/health HTTP/1.1\r\nHost: localhost\r\n\r\n")
    expect(check_shape(parse_raw_response(data)), 400)
    data = s.raw(b"NOT HTTP AT ALL\r\n\r\n")
    assert check_shape(parse_raw_response(data)).status == 400
    # a request ID of the client's is kept; a bad one is replaced
    r = s.get("/v1/orgs/missing", headers={"X-Request-Id": "client-req-42"})
    expect(r, 404)
    assert r.rid == "client-req-42" and r.json["error"]["request_id"] == "client-req-42"
    r = s.get("/v1/whoami", headers={"X-Request-Id": "bad id\twith spaces"})
    assert r.rid != "bad id\twith spaces"
    for ok in ("a", "A-b_c.d:e", "r" * 39):
        assert s.get("/v1/health", token=None, headers={"X-Request-Id": ok}).rid == ok
    ids = {s.get("/v1/health", token=None).rid for _ in range(5)}
    assert len(ids) == 5, ids
    # pipelined requests on one connection are answered in order
    two = (f"GET /v1/whoami HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {tok}\r\n\r\n"
           f"GET /v1/health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").encode()
    data = s.raw(two, responses=2)
    assert data.count(b"HTTP/1.1 200") == 2 and data.index(b"admin:bootstrap") < data.index(b"audit_size")
    # after all that the server is well
    expect(s.get("/v1/health", token=None), 200)
    assert names(expect(s.get(path), 200)) == []


def test_client_request_ids_up_to_128_characters_are_kept(srv):
    """docs/api.md: the client's own X-Request-Id is used when it is 1-128 of
    letters, digits, -_.: (as net/http1's zt_http1_request_id_ok checks)."""
    for n in (39, 40, 64, 128):
        rid = "r" * n
        r = srv.get("/v1/orgs/missing-" + str(n), headers={"X-Request-Id": rid})
        assert r.rid == rid, f"a {n}-character request ID was replaced by {r.rid}"
    # and on the audit log too
    r = srv.post(C(), {"name": "ridorg"}, headers={"X-Request-Id": "q" * 100})
    expect(r, 201)
    assert r.rid == "q" * 100, r.rid
    assert any(e["request_id"] == "q" * 100 for e in srv.audit_entries())
    r = srv.get("/v1/whoami", headers={"X-Request-Id": "x" * 129})
    assert r.rid != "x" * 129


# ---- 7. the audit log's integrity -------------------------------------------------------------


def test_audit_integrity(fresh, tmp_path):
    s = fresh()
    adir, pub = s.dir / "audit", s.dir / "audit" / "log.pub"
    first = s.audit_entries()
    # a new state directory: the server's own certificate, then the bootstrap
    assert len(first) == 2 and [(e["actor"], e["action"], e["decision"]) for e in first] == \
        [("zt-server", "svid.issue", "allow"), ("zt-server", "server.bootstrap", "allow")], first
    assert first[0]["target"].endswith("/zt/server") and first[0]["details"]["not_after"], first
    want = [("zt-server", "svid.issue", first[0]["target"], "allow", "server-certificate"),
            ("zt-server", "server.bootstrap", "admin:bootstrap", "allow", "bootstrap")]
    admin = "admin:bootstrap"

    def did(r, status, action, target, actor=admin):
        expect(r, status)
        want.append((actor, action, target, "deny" if status == 403 else "allow", r.rid))
        return r

    def not_logged(r, status):
        expect(r, status)
        return r

    did(s.post(C(), {"name": "acme"}), 201, "org.create", "acme")
    did(s.post(C("acme"), {"name": "pay"}), 201, "tenant.create", "acme/pay")
    did(s.post(C("acme/pay"), {"name": "prod"}), 201, "workspace.create", "acme/pay/prod")
    o = did(s.post(C("acme/pay/prod"), {"name": "api", "spec": {"v": 1}}), 201, "service.create",
            "acme/pay/prod/api").json
    o = did(s.put(P("acme/pay/prod/api"), {"spec": {"v": 2}, "version": o["version"]}), 200,
            "service.update", "acme/pay/prod/api").json
    r = did(s.post("/v1/tokens", {"principal": "user:v"}), 201, "token.create", None)
    vtok, vid = r.json["token"], r.json["id"]
    want[-1] = want[-1][:2] + (vid,) + want[-1][3:]
    r = did(bind(s, "user:v", "viewer", "acme/pay"), 201, "rolebinding.create", None)
    bname = r.json["name"]
    want[-1] = want[-1][:2] + (bname,) + want[-1][3:]
    did(s.post(C(), {"name": "nope"}, token=vtok), 403, "org.create", "nope", "user:v")
    did(s.get("/v1/audit/entries", token=vtok), 403, "audit.read", "audit", "user:v")
    did(s.put(P("acme/pay"), {"spec": {}, "version": 1}, token=vtok), 403, "tenant.update", "acme/pay",
        "user:v")
    # what is not a change is not logged: reads, 400, 401, 404, 409, 428
    not_logged(s.get(P("acme/pay/prod/api"), token=vtok), 200)
    not_logged(s.get(C("acme/pay/prod")), 200)
    not_logged(s.post(C(), {"name": "acme"}), 409)
    not_logged(s.put(P("acme/pay/prod/api"), {"spec": {}, "version": 1}), 409)
    not_logged(s.put(P("acme/pay/prod/api"), {"spec": {}}), 428)
    not_logged(s.get(P("nope")), 404)
    not_logged(s.post(C("nope"), {"name": "x"}), 404)
    not_logged(s.post(C(), None, raw=b"{"), 400)
    not_logged(s.get("/v1/whoami", token=None), 401)
    # checkpoint 1
    cp1 = expect(s.get("/v1/audit/checkpoint"), 200).text
    origin, n1, root1 = parse_checkpoint(cp1)
    assert origin == "zt.local/zt-audit" and n1 == len(want), (cp1, len(want))
    if HAVE_CRYPTOGRAPHY:
        name, kid, pk = parse_verifier_key(pub.read_text())
        text, sigs = parse_note(cp1)
        assert any(n == name and k == kid == key_id(name, pk) and ed25519_verify(pk, sig, text.encode())
                   for n, k, sig in sigs), "the checkpoint's signature does not verify with log.pub"
    f1 = tmp_path / "cp1.note"
    f1.write_text(cp1)
    # more changes
    did(s.delete(P("acme/pay/prod/api"), headers={"If-Match": f'"{o["version"]}"'}), 200, "service.delete",
        "acme/pay/prod/api")
    did(s.delete(f"/v1/rolebindings/{bname}"), 200, "rolebinding.delete", bname)
    did(s.get(P("acme/pay"), token=vtok), 403, "tenant.get", "acme/pay", "user:v")
    did(s.delete(f"/v1/tokens/{vid}"), 200, "token.revoke", vid)
    not_logged(s.get("/v1/whoami", token=vtok), 401)
    for i in range(7):
        did(s.post(C("acme/pay/prod"), {"name": f"s{i}"}), 201, "service.create", f"acme/pay/prod/s{i}")
    cp2 = expect(s.get("/v1/audit/checkpoint"), 200).text
    _, n2, root2 = parse_checkpoint(cp2)
    assert n2 == len(want), (n2, len(want))
    f2 = tmp_path / "cp2.note"
    f2.write_text(cp2)

    # the log, entry by entry, against what was done
    got = [(e["actor"], e["action"], e["target"], e["decision"], e["request_id"]) for e in s.audit_entries()]
    assert got == want, "\n".join(f"{g} | {w}" for g, w in zip(got, want)) + f"\n{len(got)} vs {len(want)}"
    assert s.audit_size() == 2 + s.changes + s.denials == len(want)

    # zt audit verify, with both checkpoints
    for extra in ([], ["--checkpoint", f1], ["--checkpoint", f2], ["--checkpoint", f1, "--checkpoint", f2]):
        p = zt("audit", "verify", "--dir", adir, "--key", pub, *extra)
        assert p.returncode == 0, f"zt audit verify {extra}: {p.stdout}\n{p.stderr}"
    forged = cp1.replace(cp1.split("\n")[2], cp2.split("\n")[2])
    (tmp_path / "forged.note").write_text(forged)
    p = zt("audit", "verify", "--dir", adir, "--key", pub, "--checkpoint", tmp_path / "forged.note")
    assert p.returncode != 0, "a forged checkpoint verified"

    # inclusion proofs from the API: against the raw entries, and with zt audit check-proof
    raw = entry_lines(adir)
    assert len(raw) == n2
    for idx, size, cp, root, f in [(0, n2, f2, root2, None), (n1 - 1, n2, f2, root2, None),
                                   (n1, n2, f2, root2, None), (n2 // 2, n2, f2, root2, None),
                                   (n2 - 1, n2, f2, root2, None), (3, n1, f1, root1, None),
                                   (n1 - 1, n1, f1, root1, None)]:
        pr = expect(s.get(f"/v1/audit/proof?index={idx}&size={size}"), 200).json
        assert (pr["leafIdx"], pr["treeSize"]) == (idx, size), pr
        assert unb64(pr["leafHash"]) == leaf_hash(raw[idx]), f"leafHash of entry {idx}"
        assert unb64(pr["root"]) == root, f"root of the proof for {idx} in {size}"
        assert verify_inclusion(idx, size, leaf_hash(raw[idx]), [unb64(x) for x in pr["proof"]], root)
        pf = tmp_path / f"incl-{idx}-{size}.json"
        pf.write_text(json.dumps(pr))
        p = zt("audit", "check-proof", pf)
        assert p.returncode == 0, f"check-proof {pf.name}: {p.stdout}\n{p.stderr}"
        p = zt("audit", "check-proof", pf, "--checkpoint", cp, "--key", pub)
        assert p.returncode == 0, f"check-proof {pf.name} with a checkpoint: {p.stdout}\n{p.stderr}"
    # a proof for the latest size by default; a tampered one is refused
    pr = expect(s.get("/v1/audit/proof?index=2"), 200).json
    assert pr["treeSize"] == n2
    pr["leafHash"] = pr["root"]
    (tmp_path / "bad.json").write_text(json.dumps(pr))
    assert zt("audit", "check-proof", tmp_path / "bad.json").returncode != 0
    # consistency between the checkpoints
    cons = expect(s.get(f"/v1/audit/consistency?from={n1}&to={n2}"), 200).json
    assert (cons["size1"], cons["size2"]) == (n1, n2)
    assert unb64(cons["root1"]) == root1 and unb64(cons["root2"]) == root2, cons
    assert verify_consistency(n1, n2, root1, root2, [unb64(x) for x in cons["proof"]])
    cf = tmp_path / "cons.json"
    cf.write_text(json.dumps(cons))
    for extra in ([], ["--checkpoint", f2, "--key", pub]):
        p = zt("audit", "check-proof", cf, *extra)
        assert p.returncode == 0, f"check-proof consistency {extra}: {p.stdout}\n{p.stderr}"
    assert expect(s.get(f"/v1/audit/consistency?from={n1}"), 200).json["size2"] == n2
    # bad proof requests
    for q in ("proof", "proof?index=x", f"proof?index={n2}", f"proof?index=1&size={n2 + 5}",
              "consistency", f"consistency?from={n2}&to=1", f"consistency?from=1&to={n2 + 1}", "nothing"):
        r = s.get(f"/v1/audit/{q}")
        assert r.status in (400, 404), r
    for q in ("entries?limit=0", "entries?limit=1001", "entries?from=x"):
        expect(s.get(f"/v1/audit/{q}"), 400)
    page = expect(s.get("/v1/audit/entries?from=2&limit=3"), 200).json
    assert [it["index"] for it in page["items"]] == [2, 3, 4] and page["size"] == n2
    # all still holds after a restart
    rc, _ = s.stop()
    assert rc == 0
    p = zt("audit", "verify", "--dir", adir, "--key", pub, "--checkpoint", f1, "--checkpoint", f2)
    assert p.returncode == 0, p.stderr
    s.start()
    assert s.audit_size() == n2


# ---- 8. concurrency ---------------------------------------------------------------------------


def test_concurrent_writers(fresh):
    s = fresh()
    for n in ("acme", "acme/pay", "acme/pay/prod"):
        parent, _, leaf = n.rpartition("/")
        expect(s.post(C(parent), {"name": leaf}), 201)
    size0 = s.audit_size()
    errors, made = [], []
    lock = threading.Lock()

    def creator(t):
        c = s.client()
        try:
            for i in range(20):
                r = c.request("POST", C("acme/pay/prod"), {"name": f"t{t}-s{i:02d}", "spec": {"t": t, "i": i}})
                with lock:
                    (made if r.status == 201 else errors).append(r)
        except Exception as ex:  # noqa: BLE001 - reported below
            with lock:
                errors.append(repr(ex))
        finally:
            c.close()

    threads = [threading.Thread(target=creator, args=(t,)) for t in range(8)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    took = time.monotonic() - t0
    assert not errors, errors[:5]
    assert len(made) == 160
    listed = expect(s.get(C("acme/pay/prod") + "?limit=1000"), 200).json["items"]
    assert sorted(o["name"] for o in listed) == sorted(f"acme/pay/prod/t{t}-s{i:02d}" for t in range(8)
                                                       for i in range(20))
    versions = [o["version"] for o in listed]
    assert len(set(versions)) == 160, "two creates got the same revision"
    assert {r.json["version"] for r in made} == set(versions)
    assert s.audit_size() == size0 + 160
    print(f"160 concurrent creates in {took:.2f} s")

    # two writers race on one object with the same version: one wins each round
    target = P("acme/pay/prod/t0-s00")
    clients = [s.client(), s.client()]
    for c in clients:
        expect(c.request("GET", "/v1/whoami"), 200)  # connected, kept alive
    rounds = 15
    barrier = threading.Barrier(3)
    outcome = [[None, None] for _ in range(rounds)]
    versions, failures = [], []

    def racer(k):
        try:
            for rd in range(rounds):
                barrier.wait(20)  # versions[rd] is there
                outcome[rd][k] = clients[k].request(
                    "PUT", target, {"spec": {"round": rd, "writer": k}, "version": versions[rd]})
                barrier.wait(20)  # both answered
        except Exception as ex:  # noqa: BLE001 - reported below
            failures.append(repr(ex))
            barrier.abort()

    ts = [threading.Thread(target=racer, args=(k,)) for k in (0, 1)]
    for t in ts:
        t.start()
    cur = expect(s.get(target), 200).json["version"]
    done = False
    try:
        for rd in range(rounds):
            versions.append(cur)
            barrier.wait(20)
            barrier.wait(20)
            statuses = sorted(outcome[rd][k].status for k in (0, 1))
            assert statuses == [200, 409], f"round {rd}: {outcome[rd]}"
            loser = [r for r in outcome[rd] if r.status == 409][0]
            assert loser.code == "conflict", loser
            winner = [k for k in (0, 1) if outcome[rd][k].status == 200][0]
            now = expect(s.get(target), 200).json
            assert now["spec"] == {"round": rd, "writer": winner}, now
            assert now["version"] == outcome[rd][winner].json["version"]
            cur = now["version"]
        done = True
    except threading.BrokenBarrierError:
        raise AssertionError(f"a racer failed: {failures}") from None
    finally:
        if not done:
            barrier.abort()  # lets the racers go
    for t in ts:
        t.join(20)
    for c in clients:
        c.close()
    # two creators race on one name: one 201, one 409
    for rd in range(5):
        res = [None, None]

        def create(k, rd=rd, res=res):
            res[k] = s.post(C("acme/pay/prod"), {"name": f"race-{rd}", "spec": {"k": k}}, token=s.token)

        b = [threading.Thread(target=create, args=(k,)) for k in (0, 1)]
        for t in b:
            t.start()
        for t in b:
            t.join(20)
        assert sorted(r.status for r in res) == [201, 409], res
        assert [r.code for r in res if r.status == 409] == ["exists"]
    assert s.audit_size() == size0 + 160 + rounds + 5
    check_audit_count(s)


def test_metrics_count_responses_failures_and_denials(fresh):
    s = fresh()

    def metric(text, name):
        m = re.search(rf"^{re.escape(name)} (\d+)$", text, re.M)
        assert m, f"{name} missing from /metrics:\n{text}"
        return int(m.group(1))

    before = expect(s.get("/metrics", token=None), 200)
    assert before.headers["content-type"].startswith("text/plain"), before.headers
    expect(s.get("/v1/orgs", token=None), 401)
    nobody = expect(s.post("/v1/tokens", {"principal": "user:nobody"}), 201).json["token"]
    expect(s.get("/v1/orgs", token=nobody), 403)
    expect(s.post("/v1/orgs", {"name": "metrics"}), 201)
    after = expect(s.get("/metrics", token=None), 200).text
    b = before.text
    assert metric(after, "zt_server_auth_failures_total") == metric(b, "zt_server_auth_failures_total") + 1
    assert metric(after, "zt_server_denials_total") == metric(b, "zt_server_denials_total") + 1
    assert metric(after, 'zt_server_responses_total{class="4xx"}') >= \
        metric(b, 'zt_server_responses_total{class="4xx"}') + 2
    assert metric(after, "zt_server_store_revision") > metric(b, "zt_server_store_revision")
    assert metric(after, "zt_server_audit_entries") == metric(b, "zt_server_audit_entries") + 3
