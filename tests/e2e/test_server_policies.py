"""End-to-end tests of the control plane's policy endpoints, /v1/policies
(src/server/policies.c, docs/api.md "Policies", docs/policy.md): the
create / get / list / update / history / rollback / delete round trip,
refusal of documents the policy compiler rejects (with its diagnostics, and
nothing stored), who may write policies where (every 403 on the audit log),
an organization-level DENY that a tenant administrator can neither change
nor remove, concurrent writers, a restart, lists and histories a page at a time
(and `zt policy list|history` printing every page), an organization of more
than a page of policies (1,000, seeded into a stopped server's store: see
seed()) whose last policy every check reads, and `zt audit verify` at the end.

One server (module scope) holds the state of most tests, each of which also
runs alone (-k); the last one checks that the audit log holds exactly one
entry per change and per 403 and that `zt audit verify` passes. Cases that
would spoil the shared server (a leak, policies without a URL) get a server
of their own. Run against the ASan build with ZT_BIN=$PWD/build-asan/zt:
every server's stderr must hold no sanitizer report when it stops."""
import json
import os
import sqlite3
import threading
import time

import pytest

import server_helpers
from conftest import ZT, zt
from server_helpers import ADMIN, RID_RE, TOKEN_RE, Server, expect

API = "zt.dev/v1"
ISTIO_API = "security.istio.io/v1"
TD = "zt.local"  # the server's default trust domain

# the hierarchy every test starts from: org -> tenant -> workspace -> services
HIER = {
    "acme": {
        "pay": {"ws": ["api", "ledger"], "ws2": ["batch"]},
        "other": {"shop": ["web", "cart"]},
        "val": {"vws": ["svc"]},
        "race": {"rws": ["svc"]},
    },
    "iso": {"t1": {"w1": ["a"]}, "t2": {"w2": ["b"]}},
    "orph": {"t1": {"w1": ["a"], "gone": []}, "t2": {"w2": ["b"]}},
    "ghost": {},
}

# principal -> (role, scope)
PEOPLE = {
    "user:org-admin": ("org-admin", "acme"),
    "user:tenant-admin": ("tenant-admin", "acme/pay"),
    "user:ws-admin": ("workspace-admin", "acme/pay/ws"),
    "user:sec-admin": ("security-admin", "acme"),
    "user:viewer": ("viewer", "acme"),
    "user:nobody": (None, None),
    "user:iso-ta": ("tenant-admin", "iso/t1"),
    "user:orph-ta": ("tenant-admin", "orph/t1"),
    "user:orph-ta2": ("tenant-admin", "orph/t2"),
}


# ---- helpers ------------------------------------------------------------------------------


def check_shape(r):
    """server_helpers.check_shape, except that a "policy-invalid" error also carries the
    compiler's diagnostics (docs/api.md): [{"level", "in", "message"}, ...]."""
    assert r.rid and RID_RE.fullmatch(r.rid), f"no/odd X-Request-Id: {r!r} {r.headers}"
    if r.status >= 400:
        assert isinstance(r.json, dict) and set(r.json) == {"error"}, f"error shape: {r!r}"
        err = r.json["error"]
        want = {"status", "code", "message", "request_id"}
        if err.get("code") == "policy-invalid":
            want = want | {"diagnostics"}
            diags = err.get("diagnostics")
            assert isinstance(diags, list) and diags, f"policy-invalid without diagnostics: {r!r}"
            for d in diags:
                assert isinstance(d, dict) and set(d) == {"level", "in", "message"}, f"diagnostic {d!r}"
                assert d["level"] in ("error", "warning") and d["message"], d
            assert any(d["level"] == "error" for d in diags), f"policy-invalid without an error: {r!r}"
        assert set(err) == want, f"error members: {r!r}"
        assert err["status"] == r.status, r
        assert isinstance(err["code"], str) and err["code"], r
        assert isinstance(err["message"], str) and err["message"], r
        assert err["request_id"] == r.rid, f"request_id {err['request_id']} != header {r.rid}"
    return r


def doc(name, scope, spec=None, api=API, **md):
    """An AuthorizationPolicy document."""
    metadata = {"name": name, "scope": scope}
    metadata.update(md)
    return {"apiVersion": api, "kind": "AuthorizationPolicy", "metadata": metadata,
            "spec": {"action": "ALLOW", "rules": [{}]} if spec is None else spec}


def allow_from(*principals, paths=None):
    rule = {"from": [{"source": {"principals": list(principals)}}]}
    if paths:
        rule["to"] = [{"operation": {"paths": list(paths)}}]
    return {"action": "ALLOW", "rules": [rule]}


def U(full, suffix=""):
    """The URL of policy SCOPE/NAME."""
    return f"/v1/policies/{full}{suffix}"


def IM(v):
    return {"If-Match": f'"{v}"'}


def hpath(name):
    kinds = ("orgs", "tenants", "workspaces", "services")
    return "/v1/" + "/".join(f"{k}/{n}" for k, n in zip(kinds, name.split("/")))


def revision(s):
    return expect(s.get("/v1/health", token=None), 200).json["revision"]


def listing(s, scope, token=ADMIN, limit=None):
    """Every policy at scope and below, page after page (docs/api.md "Conventions")."""
    return walk_pages(s, "/v1/policies", token, limit, query=f"scope={scope}")


def walk_pages(s, path, token=ADMIN, limit=None, cursor="after", query=""):
    """Every item of a paged list, following "next" (?after=NAME; ?before=VERSION for a
    history) and checking the paging: only a full page has a next, and it is that page's last
    item (its name or version); the last page is short or empty."""
    items, nxt, size = [], None, limit or 100
    while True:
        q = [query] if query else []
        q += [f"limit={limit}"] if limit else []
        q += [f"{cursor}={nxt}"] if nxt is not None else []
        page = expect(s.get(path + ("?" + "&".join(q) if q else ""), token=token), 200).json
        assert set(page) <= {"items", "next"}, page
        got = page["items"]
        items += got
        if "next" not in page:
            assert len(got) < size, f"a full page without next: {len(got)} items"
            return items
        assert len(got) == size, f"a short page with next: {len(got)} items"
        assert page["next"] == got[-1]["name" if cursor == "after" else "version"], page["next"]
        nxt = page["next"]


def names_at(s, scope, token=ADMIN):
    return sorted(p["name"] for p in listing(s, scope, token))


def history(s, full, token=ADMIN, limit=None):
    """Every version of policy full, newest first, page after page."""
    return walk_pages(s, U(full, "/history"), token, limit, cursor="before")


def check_policy(p, full, document, applied_by):
    assert set(p) == {"kind", "name", "version", "updated", "document", "applied_by"}, p
    assert (p["kind"], p["name"], p["document"], p["applied_by"]) == \
        ("policy", full, document, applied_by), p
    assert isinstance(p["version"], int) and p["version"] > 0, p
    assert isinstance(p["updated"], str) and p["updated"].endswith("Z"), p


def diag_text(r):
    return "\n".join(f'{d["level"]} in {d["in"]}: {d["message"]}'
                     for d in r.json["error"].get("diagnostics", []))


class AuditBook:
    """What the audit log must hold for responses: (actor, action, target, decision)."""

    def __init__(self, s):
        self.s = s
        self.want = []

    def did(self, r, status, actor, action, target, code=None):
        expect(r, status, code)
        self.want.append((r, actor, action, target, "deny" if status == 403 else "allow"))
        return r

    def check(self):
        by_rid = {}
        for e in self.s.audit_entries():
            by_rid.setdefault(e.get("request_id"), []).append(e)
        for r, actor, action, target, decision in self.want:
            got = by_rid.get(r.rid, [])
            assert len(got) == 1, f"{r!r}: {len(got)} audit entries with request_id {r.rid}: {got}"
            e = got[0]
            assert (e["actor"], e["action"], e["target"], e["decision"]) == \
                (actor, action, target, decision), f"{r!r}: audit entry {e}"
            if decision == "allow" and action != "policy.delete":
                assert e.get("details", {}).get("version") == r.json["version"], (r, e)


def org_document(s, org):
    """The Organization document of org as the store has it (what the server checks against)."""
    tenants = []
    for t in expect(s.get(hpath(org) + "/tenants?limit=1000"), 200).json["items"]:
        wss = []
        for w in expect(s.get(hpath(t["name"]) + "/workspaces?limit=1000"), 200).json["items"]:
            svcs = expect(s.get(hpath(w["name"]) + "/services?limit=1000"), 200).json["items"]
            wss.append({"name": w["name"].rsplit("/", 1)[1],
                        "services": [x["name"].rsplit("/", 1)[1] for x in svcs]})
        tenants.append({"name": t["name"].rsplit("/", 1)[1], "workspaces": wss})
    return {"apiVersion": API, "kind": "Organization", "metadata": {"name": org},
            "spec": {"trustDomain": TD, "tenants": tenants}}


def evaluate(s, org, tmp, request):
    """`zt policy eval --explain` of one request against the organization's stored policies:
    (exit status, output)."""
    d = tmp / f"eval-{org}-{time.monotonic_ns()}"
    pol = d / "policies"
    pol.mkdir(parents=True)
    (pol / "000-organization.json").write_text(json.dumps(org_document(s, org)))
    for i, p in enumerate(listing(s, org)):
        (pol / f"{i + 1:03d}-policy.json").write_text(json.dumps(p["document"]))
    (d / "request.json").write_text(json.dumps(request))
    p = zt("policy", "eval", "--policy", pol, "--request", d / "request.json", "--explain")
    return p.returncode, p.stdout + p.stderr


def req(src, dst, method="GET", path="/"):
    return {"source": {"principal": f"spiffe://{TD}/ns/{src[0]}/sa/{src[1]}"},
            "destination": {"service": f"spiffe://{TD}/ns/{dst[0]}/sa/{dst[1]}"},
            "request": {"method": method, "path": path}}


# ---- the server ---------------------------------------------------------------------------


class Env:
    def __init__(self, s, tokens, tmp):
        self.s = s
        self.tok = tokens
        self.tmp = tmp


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    assert os.access(ZT, os.X_OK), f"{ZT} not built: run make"
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(server_helpers, "check_shape", check_shape)
        tmp = tmp_path_factory.mktemp("policies")
        s = Server(tmp / "srv").start()
        try:
            for org, tenants in HIER.items():
                expect(s.post("/v1/orgs", {"name": org}), 201)
                for t, wss in tenants.items():
                    expect(s.post(hpath(org) + "/tenants", {"name": t}), 201)
                    for w, svcs in wss.items():
                        expect(s.post(hpath(f"{org}/{t}") + "/workspaces", {"name": w}), 201)
                        for x in svcs:
                            expect(s.post(hpath(f"{org}/{t}/{w}") + "/services", {"name": x}), 201)
            tokens = {}
            for who, (role, scope) in PEOPLE.items():
                r = expect(s.post("/v1/tokens", {"principal": who}), 201)
                assert TOKEN_RE.fullmatch(r.json["token"]), r
                tokens[who] = r.json["token"]
                if role:
                    expect(s.post("/v1/rolebindings",
                                  {"principal": who, "role": role, "scope": scope}), 201)
            yield Env(s, tokens, tmp)
        finally:
            s.finish()


@pytest.fixture
def fresh(tmp_path):
    """A server of one test's own (organization "acme", tenant "pay", workspace "ws"), for
    the cases that would leave the shared one in a state the other tests cannot use."""
    assert os.access(ZT, os.X_OK), f"{ZT} not built: run make"
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(server_helpers, "check_shape", check_shape)
        s = Server(tmp_path / "fresh").start()
        try:
            expect(s.post("/v1/orgs", {"name": "acme"}), 201)
            expect(s.post(hpath("acme") + "/tenants", {"name": "pay"}), 201)
            expect(s.post(hpath("acme/pay") + "/workspaces", {"name": "ws"}), 201)
            yield s
        finally:
            s.finish()


def audit_count_ok(s):
    """The log holds the server's certificate and the bootstrap, one per change and one per 403,
    nothing else."""
    size = s.audit_size()
    want = 2 + s.changes + s.denials
    assert size == want, (f"audit log has {size} entries; expected 2 + {s.changes} changes + "
                          f"{s.denials} refusals = {want}")


# ---- 1. the round trip --------------------------------------------------------------------


def test_round_trip_create_get_list_update_history_rollback_delete(env):
    s = env.s
    book = AuditBook(s)
    A = "admin:bootstrap"
    full = "acme/pay/ws/ledger-from-api"
    d1 = doc("ledger-from-api", "acme/pay/ws",
             {"selector": {"services": ["ledger"]}, "action": "ALLOW",
              "rules": [{"from": [{"source": {"principals": [f"{TD}/ns/ws/sa/api"]}}],
                         "to": [{"operation": {"methods": ["POST"], "paths": ["/entries"]}}],
                         "when": [{"key": "request.auth.claims[role]", "values": ["teller"]}]}]},
             annotations={"zt.dev/dry-run": "false"})
    rev0 = revision(s)
    r = book.did(s.post("/v1/policies", d1), 201, A, "policy.create", full)
    check_policy(r.json, full, d1, A)
    v1 = r.json["version"]
    assert v1 == rev0 + 1 == revision(s), (v1, rev0)
    created = r.json

    # a second create of the same name: 409 exists, nothing changes
    expect(s.post("/v1/policies", doc("ledger-from-api", "acme/pay/ws")), 409, "exists")
    assert revision(s) == v1

    # get and list (the scope and every scope above it; not a sibling)
    assert expect(s.get(U(full)), 200).json == created
    for scope in ("acme/pay/ws", "acme/pay", "acme"):
        got = [p for p in listing(s, scope) if p["name"] == full]
        assert got == [created], (scope, got)
    for scope in ("acme/pay/ws2", "acme/other", "iso"):
        assert full not in names_at(s, scope), scope
    expect(s.get("/v1/policies"), 400, "invalid")          # the scope is required
    expect(s.get(U("acme/pay/ws/nope")), 404, "not-found")

    # updates: If-Match, then ?version=
    d2 = json.loads(json.dumps(d1))
    d2["spec"]["rules"][0]["to"][0]["operation"]["methods"] = ["POST", "PUT"]
    r = book.did(s.put(U(full), d2, headers=IM(v1)), 200, A, "policy.update", full)
    check_policy(r.json, full, d2, A)
    v2 = r.json["version"]
    d3 = doc("ledger-from-api", "acme/pay/ws", {"action": "DENY", "rules": [{"to": [
        {"operation": {"paths": ["/admin*"]}}]}]})
    r = book.did(s.put(U(full) + f"?version={v2}", d3), 200, A, "policy.update", full)
    check_policy(r.json, full, d3, A)
    v3 = r.json["version"]
    assert v1 < v2 < v3 == revision(s), (v1, v2, v3)
    assert expect(s.get(U(full)), 200).json == r.json

    # a stale version, no version, a document that names another policy
    before = revision(s)
    r = expect(s.put(U(full), d2, headers=IM(v1)), 409, "conflict")
    expect(s.put(U(full), d2), 428, "version-required")
    expect(s.put(U(full), doc("someone-else", "acme/pay/ws"), headers=IM(v3)), 400, "invalid")
    expect(s.put(U(full), doc("ledger-from-api", "acme/pay"), headers=IM(v3)), 400, "invalid")
    expect(s.put(U(full), doc("ledger-from-api", "acme/pay/ws2"), headers=IM(v3)), 400, "invalid")
    assert revision(s) == before
    assert expect(s.get(U(full)), 200).json["document"] == d3

    # history: every version, newest first, each with its document
    h = history(s, full)
    assert [(x["version"], x["document"]) for x in h] == [(v3, d3), (v2, d2), (v1, d1)], h
    assert all(x["name"] == full and x["applied_by"] == A and "deleted" not in x for x in h), h

    # rollback to v1: its document becomes a new version, exactly
    expect(s.post(U(full, "/rollback"), {"to": v1}), 428, "version-required")
    expect(s.post(U(full, "/rollback"), {"to": v1}, headers=IM(v2)), 409, "conflict")
    expect(s.post(U(full, "/rollback"), {"to": v3 + 1000}, headers=IM(v3)), 404, "not-found")
    expect(s.post(U(full, "/rollback"), {"to": "one"}, headers=IM(v3)), 400, "invalid")
    expect(s.post(U(full, "/rollback"), {"to": rev0}, headers=IM(v3)), 404)  # another object's
    assert revision(s) == before
    r = book.did(s.post(U(full, "/rollback"), {"to": v1}, headers=IM(v3)), 200, A,
                 "policy.rollback", full)
    check_policy(r.json, full, d1, A)
    v4 = r.json["version"]
    assert v4 > v3
    got = expect(s.get(U(full)), 200).json
    assert got["document"] == d1 and got["version"] == v4, got
    assert json.dumps(got["document"]["spec"], sort_keys=True) == json.dumps(d1["spec"], sort_keys=True)
    # and forwards again, to v3, with ?version=
    r = book.did(s.post(U(full, "/rollback") + f"?version={v4}", {"to": v3}), 200, A,
                 "policy.rollback", full)
    v5 = r.json["version"]
    assert r.json["document"] == d3
    h = history(s, full)
    assert [(x["version"], x["document"]) for x in h] == \
        [(v5, d3), (v4, d1), (v3, d3), (v2, d2), (v1, d1)], h

    # delete: version required, stale refused, then gone (history keeps it, marked)
    expect(s.delete(U(full)), 428, "version-required")
    expect(s.delete(U(full), headers=IM(v4)), 409, "conflict")
    r = book.did(s.delete(U(full) + f"?version={v5}"), 200, A, "policy.delete", full)
    assert r.json == {"name": full, "deleted": r.json["deleted"]} and r.json["deleted"] > v5, r
    v6 = r.json["deleted"]
    assert v6 == revision(s)
    expect(s.get(U(full)), 404, "not-found")
    assert full not in names_at(s, "acme/pay/ws")
    h = history(s, full)
    assert [x["version"] for x in h] == [v6, v5, v4, v3, v2, v1], h
    assert h[0].get("deleted") is True and "document" not in h[0], h[0]
    assert all("deleted" not in x for x in h[1:]), h
    # a deletion is not a version to roll back to; a deleted policy is not updated
    expect(s.post(U(full, "/rollback"), {"to": v6}, headers=IM(v6)), 400, "invalid")
    expect(s.put(U(full), d1, headers=IM(v6)), 404)
    expect(s.delete(U(full), headers=IM(v6)), 404)

    # the name may be used again; its history goes on
    r = book.did(s.post("/v1/policies", d2), 201, A, "policy.create", full)
    v7 = r.json["version"]
    assert [x["version"] for x in history(s, full)] == [v7, v6, v5, v4, v3, v2, v1]
    book.check()


# ---- 2. validation ------------------------------------------------------------------------

INVALID = [
    ("action MAYBE", {"action": "MAYBE", "rules": [{}]}, "action is ALLOW, DENY or AUDIT"),
    ("action CUSTOM", {"action": "CUSTOM", "rules": [{}]}, "action CUSTOM"),
    ("unknown field in spec", {"action": "ALLOW", "rules": [{}], "frobnicate": True},
     'unknown field "frobnicate"'),
    ("unknown field in a source", {"action": "ALLOW", "rules": [
        {"from": [{"source": {"principal": [f"{TD}/ns/vws/sa/svc"]}}]}]}, 'unknown field "principal"'),
    ("unknown field in an operation", {"action": "DENY", "rules": [
        {"to": [{"operation": {"path": ["/admin"]}}]}]}, 'unknown field "path"'),
    ("empty principals", {"action": "ALLOW", "rules": [{"from": [{"source": {"principals": []}}]}]},
     "empty list"),
    ("a * in the middle", {"action": "ALLOW", "rules": [{"to": [{"operation": {"paths": ["/a*b"]}}]}]},
     "'*' that is not at the start or the end"),
    ("invalid CIDR", {"action": "ALLOW", "rules": [{"from": [{"source": {"ipBlocks": ["10.0.0.0/33"]}}]}]},
     "is not an IP address or CIDR block"),
    ("port 0", {"action": "ALLOW", "rules": [{"to": [{"operation": {"ports": ["0"]}}]}]},
     "a port is a number from 1 to 65535"),
    ("unknown when key", {"action": "ALLOW", "rules": [{"when": [{"key": "request.color", "values": ["red"]}]}]},
     'unknown when key "request.color"'),
    ("a condition without values", {"action": "ALLOW", "rules": [{"when": [{"key": "source.ip"}]}]},
     "needs values or notValues"),
    ("path template", {"action": "ALLOW", "rules": [{"to": [{"operation": {"paths": ["/a/{id}"]}}]}]},
     "path templates"),
    ("rules not a list", {"action": "ALLOW", "rules": "all"}, "rules must be a list"),
    ("empty from", {"action": "ALLOW", "rules": [{"from": []}]}, "from must be a non-empty list"),
    ("selector without services", {"action": "ALLOW", "selector": {"services": []}, "rules": [{}]},
     "selector.services must be a non-empty list"),
    ("remoteIpBlocks", {"action": "ALLOW", "rules": [{"from": [{"source": {"remoteIpBlocks": ["10.0.0.0/8"]}}]}]},
     "remoteIpBlocks"),
]


def test_invalid_documents_are_refused_with_diagnostics_and_nothing_is_stored(env):
    s = env.s
    scope = "acme/val/vws"
    keep = expect(s.post("/v1/policies", doc("keep", scope, allow_from(f"{TD}/ns/vws/sa/svc"))), 201).json
    before_list = listing(s, "acme")
    rev, audit = revision(s), s.audit_size()
    failures = []
    for i, (what, spec, needle) in enumerate(INVALID):
        # as a new policy, and as an update of a good one
        for how, r in (("create", s.post("/v1/policies", doc(f"bad-{i}", scope, spec))),
                       ("update", s.put(U(keep["name"]), doc("keep", scope, spec),
                                        headers=IM(keep["version"])))):
            if r.status != 400 or r.code != "policy-invalid":
                failures.append(f"{what} ({how}): {r!r}")
            elif not any(needle in d["message"] and d["level"] == "error" and d["in"] == "the policy"
                         for d in r.json["error"]["diagnostics"]):
                failures.append(f"{what} ({how}): no error diagnostic with {needle!r}:\n{diag_text(r)}")
    # a name the compiler refuses, a bad dry-run annotation
    for what, d, needle in (
            ("bad name", doc("Not_A+Name", scope), "metadata.name"),
            ("dry-run yes", doc("dry", scope, annotations={"zt.dev/dry-run": "yes"}), "dry-run annotation"),
            ("zt API at an unknown apiVersion", doc("ver", scope, api="zt.dev/v2"), "")):
        r = s.post("/v1/policies", d)
        if r.status != 400 or (needle and needle not in r.text):
            failures.append(f"{what}: {r!r}")
    assert not failures, "\n".join(failures)

    # not AuthorizationPolicy documents at all: 400 invalid
    for body in ({"apiVersion": API, "kind": "Organization", "metadata": {"name": "x", "scope": "acme"},
                  "spec": {}},
                 {"apiVersion": API, "kind": "AuthorizationPolicy", "metadata": {"name": "x"}, "spec": {}},
                 {"apiVersion": API, "kind": "AuthorizationPolicy", "metadata": {"scope": scope}, "spec": {}},
                 [doc("x", scope)], "just a string"):
        expect(s.post("/v1/policies", body), 400, "invalid")
    expect(s.post("/v1/policies", None, raw=b'{"apiVersion": "zt.dev/v1", "kind": '), 400, "invalid")
    expect(s.post("/v1/policies", None), 400, "invalid")
    # a scope that is not an organization, tenant or workspace: 404
    for sc in ("acme/nope", "nope", "acme/val/nope", "acme/val/vws/svc", "iso/t1/w2"):
        expect(s.post("/v1/policies", doc("x", sc)), 404, "not-found")

    # nothing was stored, changed or audited
    assert listing(s, "acme") == before_list
    assert revision(s) == rev, "a refused policy changed the store"
    assert s.audit_size() == audit, "a refused policy was audited as a change"
    assert expect(s.get(U(keep["name"])), 200).json == keep
    assert len(history(s, keep["name"])) == 1

    # warnings alone do not refuse (docs/policy.md "What is an error")
    for i, spec in enumerate((
            {"action": "ALLOW", "rules": [{"from": [{"source": {"principals": [f"spiffe://{TD}/ns/vws/sa/svc"]}}]}]},
            {"action": "ALLOW", "rules": [{"to": [{"operation": {"methods": ["get"]}}]}]},
            {"action": "DENY"},
            {"action": "ALLOW", "selector": {"services": ["web"]}, "rules": [{}]})):
        expect(s.post("/v1/policies", doc(f"warned-{i}", scope, spec)), 201)


# ---- 3. who may write policies where ------------------------------------------------------


def test_rbac(env):
    s, tok = env.s, env.tok
    book = AuditBook(s)
    # policies written by the administrator, for others to try to change
    base = {}
    for sc in ("acme", "acme/pay", "acme/pay/ws", "acme/pay/ws2", "acme/other", "acme/other/shop"):
        base[sc] = expect(s.post("/v1/policies", doc("base", sc)), 201).json

    def cud(who, scope, allowed, tag):
        """Create, update, roll back and delete a policy of its own at scope; and update, roll
        back and delete the administrator's there."""
        t = tok[who]
        full = f"{scope}/{tag}"
        st = 201 if allowed else 403
        r = book.did(s.post("/v1/policies", doc(tag, scope), token=t), st, who, "policy.create", full)
        if allowed:
            check_policy(r.json, full, doc(tag, scope), who)
            v = r.json["version"]
            r = book.did(s.put(U(full), doc(tag, scope, {"action": "DENY"}), headers=IM(v), token=t), 200,
                         who, "policy.update", full)
            r = book.did(s.post(U(full, "/rollback"), {"to": v}, headers=IM(r.json["version"]), token=t),
                         200, who, "policy.rollback", full)
            assert r.json["document"] == doc(tag, scope) and r.json["applied_by"] == who, r
            book.did(s.delete(U(full), headers=IM(r.json["version"]), token=t), 200, who,
                     "policy.delete", full)
        b = base[scope]
        bf = b["name"]
        cur = expect(s.get(U(bf)), 200).json
        r = book.did(s.put(U(bf), doc("base", scope, {"action": "AUDIT", "rules": [{}]}),
                           headers=IM(cur["version"]), token=t), 200 if allowed else 403, who,
                     "policy.update", bf)
        if allowed:
            r = book.did(s.post(U(bf, "/rollback"), {"to": b["version"]}, headers=IM(r.json["version"]),
                                token=t), 200, who, "policy.rollback", bf)
            assert r.json["document"] == b["document"]
        else:
            book.did(s.post(U(bf, "/rollback"), {"to": b["version"]}, headers=IM(cur["version"]), token=t),
                     403, who, "policy.rollback", bf)
            book.did(s.delete(U(bf), headers=IM(cur["version"]), token=t), 403, who, "policy.delete", bf)
            after = expect(s.get(U(bf)), 200).json
            assert after == cur, f"{who} changed {bf} with a 403"

    def reads(who, scope, allowed):
        t = tok[who]
        r = s.get(f"/v1/policies?scope={scope}", token=t)
        if allowed:
            items = expect(r, 200).json["items"]
            assert all(p["name"].startswith(scope + "/") for p in items), items
        else:
            book.did(r, 403, who, "policy.list", scope)
        bf = base[scope]["name"] if scope in base else None
        if bf:
            for suffix, action in (("", "policy.get"), ("/history", "policy.history")):
                r = s.get(U(bf, suffix), token=t)
                if allowed:
                    expect(r, 200)
                else:
                    book.did(r, 403, who, action, bf)

    ta = "user:tenant-admin"
    cud(ta, "acme/pay", True, "ta-own")
    cud(ta, "acme/pay/ws", True, "ta-ws")
    cud(ta, "acme/pay/ws2", True, "ta-ws2")
    cud(ta, "acme", False, "ta-org")
    cud(ta, "acme/other", False, "ta-sib")
    cud(ta, "acme/other/shop", False, "ta-sibws")
    reads(ta, "acme/pay", True)
    reads(ta, "acme/pay/ws", True)
    reads(ta, "acme", False)
    reads(ta, "acme/other", False)

    wa = "user:ws-admin"
    cud(wa, "acme/pay/ws", True, "wa-own")
    cud(wa, "acme/pay", False, "wa-tenant")
    cud(wa, "acme/pay/ws2", False, "wa-sib")
    cud(wa, "acme", False, "wa-org")
    reads(wa, "acme/pay/ws", True)
    reads(wa, "acme/pay", False)
    reads(wa, "acme/pay/ws2", False)

    sa = "user:sec-admin"
    for sc in ("acme", "acme/pay", "acme/pay/ws", "acme/other", "acme/other/shop"):
        cud(sa, sc, True, "sa-" + sc.replace("/", "-"))
        reads(sa, sc, True)
    book.did(s.post("/v1/policies", doc("x", "iso/t1/w1"), token=tok[sa]), 403, sa, "policy.create",
             "iso/t1/w1/x")
    reads(sa, "acme", True)

    oa = "user:org-admin"
    cud(oa, "acme", True, "oa-org")
    cud(oa, "acme/other/shop", True, "oa-ws")
    book.did(s.post("/v1/policies", doc("x", "iso"), token=tok[oa]), 403, oa, "policy.create", "iso/x")

    v = "user:viewer"
    for sc in ("acme", "acme/pay", "acme/pay/ws", "acme/other/shop"):
        reads(v, sc, True)
        cud(v, sc, False, "v-" + sc.replace("/", "-"))
    assert "acme/pay/ws/base" in names_at(s, "acme", token=tok[v])
    reads(v, "acme/pay", True)

    nb = "user:nobody"
    reads(nb, "acme", False)
    cud(nb, "acme/pay/ws", False, "nb")

    # what the scoped readers see: their node and below, nothing else
    assert all(n.startswith("acme/pay/") for n in names_at(s, "acme/pay", token=tok[ta]))
    assert all(n.startswith("acme/pay/ws/") for n in names_at(s, "acme/pay/ws", token=tok[wa]))
    # each refusal, and each change, on the audit log with the response's request ID
    book.check()
    assert sum(1 for w in book.want if w[4] == "deny") >= 40


# ---- 4. an organization-level DENY stays ---------------------------------------------------


def test_org_level_deny_cannot_be_changed_or_removed_by_a_tenant_admin(env):
    s, tok = env.s, env.tok
    book = AuditBook(s)
    oa, ta = "user:org-admin", "user:tenant-admin"
    full = "acme/deny-admin"
    d1 = doc("deny-admin", "acme", {"action": "DENY", "rules": [{"to": [{"operation": {"paths": ["/admin*"]}}]}]})
    r = book.did(s.post("/v1/policies", d1, token=tok[oa]), 201, oa, "policy.create", full)
    v1 = r.json["version"]
    d2 = doc("deny-admin", "acme", {"action": "DENY", "rules": [{"to": [
        {"operation": {"paths": ["/admin*", "/debug*"]}}]}]})
    r = book.did(s.put(U(full), d2, headers=IM(v1), token=tok[oa]), 200, oa, "policy.update", full)
    v2 = r.json["version"]
    pinned = expect(s.get(U(full)), 200).json
    # the tenant's own broad ALLOW
    book.did(s.post("/v1/policies", doc("allow-all", "acme/pay", {"action": "ALLOW", "rules": [{}]}),
                    token=tok[ta]), 201, ta, "policy.create", "acme/pay/allow-all")

    t = tok[ta]
    weakened = doc("deny-admin", "acme", {"action": "DENY", "rules": [{"to": [
        {"operation": {"paths": ["/nothing-at-all"]}}]}]})
    book.did(s.put(U(full), weakened, headers=IM(v2), token=t), 403, ta, "policy.update", full)
    book.did(s.put(U(full), doc("deny-admin", "acme", {"action": "AUDIT", "rules": [{}]}),
                   headers=IM(v2), token=t), 403, ta, "policy.update", full)
    book.did(s.put(U(full) + f"?version={v2}", doc("deny-admin", "acme", {"action": "DENY",
             "rules": [{}]}, annotations={"zt.dev/dry-run": "true"}), token=t), 403, ta,
             "policy.update", full)
    book.did(s.delete(U(full), headers=IM(v2), token=t), 403, ta, "policy.delete", full)
    book.did(s.delete(U(full) + f"?version={v2}", token=t), 403, ta, "policy.delete", full)
    book.did(s.post(U(full, "/rollback"), {"to": v1}, headers=IM(v2), token=t), 403, ta,
             "policy.rollback", full)
    book.did(s.post("/v1/policies", doc("deny-admin-2", "acme", {"action": "ALLOW", "rules": [{}]}), token=t),
             403, ta, "policy.create", "acme/deny-admin-2")
    # a document naming the org policy, sent to a URL of the tenant: refused, not stored there
    expect(s.put(U("acme/pay/deny-admin"), weakened, headers=IM(v2), token=t), 400, "invalid")
    # reading the org's policy is not the tenant-admin's either
    book.did(s.get(U(full), token=t), 403, ta, "policy.get", full)

    assert expect(s.get(U(full)), 200).json == pinned
    assert [x["version"] for x in history(s, full)] == [v2, v1]

    # and in effect: the org DENY decides before the tenant's ALLOW
    code, out = evaluate(s, "acme", env.tmp, req(("ws", "api"), ("ws", "ledger"), "GET", "/admin/users"))
    assert code == 1 and "DENY by acme/deny-admin" in out, out
    code, out = evaluate(s, "acme", env.tmp, req(("ws", "api"), ("ws", "ledger"), "GET", "/entries"))
    assert code == 0 and "ALLOW" in out, out
    book.check()


def test_a_tenant_admin_cannot_place_a_policy_outside_its_tenant_with_an_istio_document(env):
    """A document of apiVersion security.istio.io/v1 stored at the tenant's own scope takes its
    effective scope from metadata.namespace (docs/policy.md "Istio manifests"): the root namespace
    is the whole organization, a workspace is that workspace, whatever its tenant. The server
    authorizes by metadata.scope only, so such a document must be refused (or confined)."""
    s, tok = env.s, env.tok
    who = "user:iso-ta"
    t = tok[who]
    # the tenant-admin of iso/t1 may not write at iso or iso/t2 (the zt way)
    expect(s.post("/v1/policies", doc("x", "iso"), token=t), 403)
    expect(s.post("/v1/policies", doc("x", "iso/t2/w2"), token=t), 403)
    bad = []
    for tag, ns in (("org-wide", "istio-system"), ("sibling", "w2")):
        d = doc(f"istio-{tag}", "iso/t1", {"action": "ALLOW", "rules": [{}]}, api=ISTIO_API, namespace=ns)
        r = s.post("/v1/policies", d, token=t)
        if r.status in (200, 201):
            code, out = evaluate(s, "iso", env.tmp, req(("w1", "a"), ("w2", "b")))
            bad.append(f"{who} (tenant-admin at iso/t1) stored {r.json['name']} with metadata.namespace "
                       f"{ns!r}: {r.status}. zt policy eval of w1/a -> iso/t2/w2/b with the stored set "
                       f"(exit {code}):\n{out}")
        else:
            assert r.status in (400, 403), r
    assert not bad, "\n".join(bad)


def test_policies_do_not_outlive_their_scope(env):
    """A scope that holds policies is deleted: either the delete is refused (409) or its policies
    go with it. Left behind, (a) a workspace's policy breaks the organization's policy set, so no
    one in the organization (another tenant included) can write a policy any more; (b) an
    organization's policies come back to life when an organization of that name is created again."""
    s, tok = env.s, env.tok
    ta, ta2 = tok["user:orph-ta"], tok["user:orph-ta2"]
    problems = []
    # (a) the tenant-admin of orph/t1 deletes one of its workspaces, which holds a policy
    expect(s.post("/v1/policies", doc("p", "orph/t1/gone"), token=ta), 201)
    w = expect(s.get(hpath("orph/t1/gone")), 200).json
    r = s.delete(hpath("orph/t1/gone"), headers=IM(w["version"]), token=ta)
    assert r.status in (200, 409), r
    # the tenant-admin of orph/t2 writes a valid policy in its own workspace
    r2 = s.post("/v1/policies", doc("q", "orph/t2/w2", allow_from(f"{TD}/ns/w2/sa/b")), token=ta2)
    if r2.status != 201:
        problems.append(f"workspace orph/t1/gone (holding policy orph/t1/gone/p) deleted -> {r.status}; "
                        f"then a valid policy of tenant orph/t2 -> {r2.status}:\n"
                        f"{diag_text(r2) if r2.code == 'policy-invalid' else r2.text}")
    # (b) an organization with a policy is deleted and created again
    expect(s.post("/v1/policies", doc("allow-all", "ghost")), 201)
    o = expect(s.get(hpath("ghost")), 200).json
    r = s.delete(hpath("ghost"), headers=IM(o["version"]))
    assert r.status in (200, 409), r
    if r.status == 200:
        expect(s.post("/v1/orgs", {"name": "ghost"}), 201)
        g = s.get(U("ghost/allow-all"))
        if g.status != 404:
            problems.append(f"organization ghost deleted (200) and created again: its old policy "
                            f"is still there: {g!r}")
    assert not problems, "\n".join(problems)


def test_history_of_a_policy_that_never_was_is_404_without_a_leak(fresh):
    s = fresh
    for full in ("acme/pay/ws/never", "acme/never", "acme/pay/never"):
        expect(s.get(U(full, "/history")), 404, "not-found")
    expect(s.post("/v1/policies", doc("once", "acme/pay")), 201)
    assert len(history(s, "acme/pay/once")) == 1
    rc, _ = s.stop()
    s.assert_clean_stderr()  # LeakSanitizer, with the ASan build
    assert rc == 0, f"zt server exited {rc} after SIGTERM:\n{s.stderr()[-4000:]}"


def test_a_policy_the_api_accepts_can_be_read_updated_and_deleted(fresh):
    """A policy name the API stores must be addressable at /v1/policies/SCOPE/NAME (or the create
    must be refused)."""
    s = fresh
    problems = []
    for name in ("history", "rollback", "n" * 70):
        problems += addressable(s, "acme/pay", name)
    assert not problems, "\n".join(problems)


def addressable(s, scope, name):
    full = f"{scope}/{name}"
    r = s.post("/v1/policies", doc(name, scope))
    if r.status == 400:
        return []  # refused up front: fine
    expect(r, 201)
    v = r.json["version"]
    problems = []
    g = s.get(U(full))
    if g.status != 200 or g.json.get("name") != full:
        problems.append(f"GET -> {g!r}")
    p = s.put(U(full), doc(name, scope, {"action": "DENY"}), headers=IM(v))
    if p.status != 200:
        problems.append(f"PUT -> {p!r}")
    else:
        v = p.json["version"]
    h = s.get(U(full, "/history"))
    if h.status != 200 or h.json["items"][0]["name"] != full:
        problems.append(f"GET history -> {h!r}")
    d = s.delete(U(full), headers=IM(v))
    if d.status != 200:
        problems.append(f"DELETE -> {d!r}")
    if problems:
        return [f"policy {full} was created (201) but:"] + ["  " + p for p in problems]
    return []


# ---- 5. concurrent writers ----------------------------------------------------------------


def test_concurrent_puts_with_the_same_version(env):
    s = env.s
    scope = "acme/race/rws"
    full = f"{scope}/contended"
    cur = expect(s.post("/v1/policies", doc("contended", scope, allow_from(f"{TD}/ns/rws/sa/svc"))), 201).json
    writers = 3
    clients = [s.client() for _ in range(writers)]
    for c in clients:
        expect(c.request("GET", "/v1/whoami"), 200)  # connected, kept alive
    rounds = 12
    barrier = threading.Barrier(writers + 1)
    outcome = [[None] * writers for _ in range(rounds)]
    versions, failures = [], []

    def racer(k):
        try:
            for rd in range(rounds):
                barrier.wait(20)
                if rd % 3 == 2:  # some rounds race rollbacks against updates
                    if k == 0:
                        outcome[rd][k] = clients[k].request(
                            "POST", U(full, "/rollback"), {"to": versions[0]}, headers=IM(versions[rd]))
                        barrier.wait(20)
                        continue
                outcome[rd][k] = clients[k].request(
                    "PUT", U(full), doc("contended", scope, allow_from(f"{TD}/ns/rws/sa/w{k}r{rd}")),
                    headers=IM(versions[rd]))
                barrier.wait(20)
        except Exception as ex:  # noqa: BLE001 - reported below
            failures.append(repr(ex))
            barrier.abort()

    threads = [threading.Thread(target=racer, args=(k,)) for k in range(writers)]
    for t in threads:
        t.start()
    winners = []
    done = False
    try:
        for rd in range(rounds):
            versions.append(cur["version"])
            barrier.wait(20)
            barrier.wait(20)
            res = outcome[rd]
            assert sorted(r.status for r in res) == [200] + [409] * (writers - 1), f"round {rd}: {res}"
            assert all(r.code == "conflict" for r in res if r.status == 409), res
            win = [r for r in res if r.status == 200][0]
            now = expect(s.get(U(full)), 200).json
            assert now == win.json, (now, win)
            assert now["version"] > cur["version"]
            winners.append(now)
            cur = now
        done = True
    except threading.BrokenBarrierError:
        raise AssertionError(f"a racer failed: {failures}") from None
    finally:
        if not done:
            barrier.abort()
        for t in threads:
            t.join(20)
        for c in clients:
            c.close()
    # the history holds exactly the winners, in order
    h = history(s, full)
    assert [(x["version"], x["document"]) for x in h[:-1]] == \
        [(w["version"], w["document"]) for w in reversed(winners)], h

    # two creators race on one name: one 201, one 409 exists
    for rd in range(4):
        res = [None, None]

        def create(k, rd=rd, res=res):
            res[k] = s.post("/v1/policies", doc(f"born-{rd}", scope, allow_from(f"{TD}/ns/rws/sa/c{k}")),
                            token=s.token)

        ts = [threading.Thread(target=create, args=(k,)) for k in (0, 1)]
        for t in ts:
            t.start()
        for t in ts:
            t.join(20)
        assert sorted(r.status for r in res) == [201, 409], res
        assert [r.code for r in res if r.status == 409] == ["exists"]
        assert len(history(s, f"{scope}/born-{rd}")) == 1


# ---- 6. restart ---------------------------------------------------------------------------


def test_restart_keeps_policies_and_history(env):
    s = env.s

    keep = expect(s.post("/v1/policies", doc("persist", "acme/pay/ws2")), 201).json
    keep = expect(s.put(U(keep["name"]), doc("persist", "acme/pay/ws2", {"action": "DENY"}),
                        headers=IM(keep["version"])), 200).json
    gone = expect(s.post("/v1/policies", doc("gone", "acme/pay/ws2")), 201).json
    expect(s.delete(U(gone["name"]), headers=IM(gone["version"])), 200)

    def snapshot():
        out = {}
        for org in HIER:
            for p in listing(s, org):
                out[p["name"]] = (p, history(s, p["name"]))
        out["deleted"] = history(s, gone["name"])  # a deleted policy's history too
        return out

    before = snapshot()
    rev, audit = revision(s), s.audit_size()
    assert len(before["acme/pay/ws2/persist"][1]) == 2 and before["deleted"][0]["deleted"] is True
    rc, took = s.stop()
    assert rc == 0, f"SIGTERM: exit {rc}\n{s.stderr()[-3000:]}"
    s.start()
    after = snapshot()
    assert after == before, "policies or their history changed across a restart"
    assert revision(s) == rev and s.audit_size() == audit
    # and writes go on from there
    p = before["acme/pay/ws2/persist"][0]
    expect(s.put(U(p["name"]), p["document"], headers=IM(p["version"])), 200)
    assert revision(s) == rev + 1
    expect(s.put(U(p["name"]), p["document"], headers=IM(p["version"])), 409, "conflict")


# ---- 7. every page: lists, history, an organization of more than a page of policies -------


PAGE = 1000  # the store's largest read (ZT_STORE_LIST_MAX), and the API's largest page


def seed(server, kind, objects):
    """Writes objects [(name, body)] straight into a stopped server's store, as zt_store_put
    writes them (the row, its history, the next revisions). A test's shortcut, not a product
    path: through the API each policy is checked and compiled with every one before it, so
    1,000 take quadratic time (measured: 41 s with the normal build, 8 minutes with ASan;
    seeded, under a second). Nothing seeded is audited."""
    assert not server.alive(), "seed a stopped server"
    con = sqlite3.connect(server.dir / "store.db")
    try:
        with con:
            (rev,) = con.execute("SELECT revision FROM zt_meta WHERE id = 1").fetchone()
            now = int(time.time() * 1000)
            for name, body in objects:
                rev += 1
                text = json.dumps(body, sort_keys=True, separators=(",", ":"))
                con.execute("INSERT INTO zt_objects (kind, name, version, created, updated_ms, body)"
                            " VALUES (?, ?, ?, ?, ?, ?)", (kind, name, rev, rev, now, text))
                con.execute("INSERT INTO zt_history (kind, name, version, updated_ms, deleted, body)"
                            " VALUES (?, ?, ?, ?, 0, ?)", (kind, name, rev, now, text))
            con.execute("UPDATE zt_meta SET revision = ? WHERE id = 1", (rev,))
    finally:
        con.close()


def seed_policies(server, docs, actor="admin:bootstrap"):
    seed(server, "policy", [(f'{d["metadata"]["scope"]}/{d["metadata"]["name"]}',
                             {"document": d, "applied_by": actor}) for d in docs])


def restart_seeded(server, docs):
    """Stops the server, seeds policies docs, starts it again."""
    rc, took = server.stop()
    assert rc == 0, f"zt server exited {rc} after SIGTERM ({took:.1f} s):\n{server.stderr()[-4000:]}"
    seed_policies(server, docs)
    server.start()


BIG_FILL = PAGE  # ALLOWs big/a0000 ... big/a0999: a whole page before anything else
BIG_DENY = doc("zz-deny", "big/t/w", {"action": "DENY", "rules": [{"to": [{"operation": {"paths": ["/admin*"]}}]}]})


def big_fill():
    return [doc(f"a{i:04d}", "big", allow_from(f"{TD}/ns/w/sa/c{i}")) for i in range(BIG_FILL)]


@pytest.fixture(scope="module")
def big(tmp_path_factory):
    """A server whose organization "big" (tenant t, workspace w, services api and db) holds
    more than a page of policies: BIG_FILL ALLOWs seeded into the store, then, through the API,
    BIG_DENY, which sorts after all of them (big/t/w/zz-deny)."""
    assert os.access(ZT, os.X_OK), f"{ZT} not built: run make"
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(server_helpers, "check_shape", check_shape)
        s = Server(tmp_path_factory.mktemp("big") / "srv").start()
        try:
            expect(s.post("/v1/orgs", {"name": "big"}), 201)
            expect(s.post(hpath("big") + "/tenants", {"name": "t"}), 201)
            expect(s.post(hpath("big/t") + "/workspaces", {"name": "w"}), 201)
            for x in ("api", "db"):
                expect(s.post(hpath("big/t/w") + "/services", {"name": x}), 201)
            restart_seeded(s, big_fill())
            expect(s.post("/v1/policies", BIG_DENY), 201)
            yield s
        finally:
            s.finish()


def big_names():
    return sorted([f"big/a{i:04d}" for i in range(BIG_FILL)] + ["big/t/w/zz-deny"])


def test_a_list_of_more_than_a_page_is_paged_to_its_end(big, tmp_path):
    s = big
    want = big_names()
    assert want[-1] == "big/t/w/zz-deny"  # the last in name order, past the first page
    for limit in (PAGE, None, 7):
        got = [p["name"] for p in listing(s, "big", limit=limit)]
        assert got == want, (f"limit={limit}: {len(got)} policies listed, {len(want)} stored; "
                             f"missing {sorted(set(want) - set(got))[:5]}")
    deny = listing(s, "big/t/w")
    assert [p["name"] for p in deny] == ["big/t/w/zz-deny"] and deny[0]["document"] == BIG_DENY
    # zt policy list follows "next" and prints every policy
    p = zt("policy", "list", "--scope", "big", "--server", s.url, "--ca-file", s.bundle,
           "--token", s.token)
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    assert [x["name"] for x in out["items"]] == want, f"zt policy list printed {len(out['items'])}"
    assert out["items"][-1]["document"] == BIG_DENY


def test_the_check_before_a_write_reads_every_policy(big):
    """A policy past the first page takes part in the check of every change: here one the
    compiler refuses (seeded: as a store written by a laxer zt could hold it), sorted last."""
    s = big
    broken = doc("zz-broken", "big", {"action": "ALLOW", "rules": [{"bogus": 1}]})
    restart_seeded(s, [broken])
    r = expect(s.post("/v1/policies", doc("b-new", "big")), 400, "policy-invalid")
    assert any(d["in"] == "big/zz-broken" and d["level"] == "error"
               for d in r.json["error"]["diagnostics"]), diag_text(r)
    expect(s.get(U("big/b-new")), 404, "not-found")
    # without it the set checks again: the delete is checked without it, then the create passes
    v = expect(s.get(U("big/zz-broken")), 200).json["version"]
    expect(s.delete(U("big/zz-broken"), headers=IM(v)), 200)
    v = expect(s.post("/v1/policies", doc("b-new", "big")), 201).json["version"]
    expect(s.delete(U("big/b-new"), headers=IM(v)), 200)
    assert [p["name"] for p in listing(s, "big", limit=PAGE)] == big_names()


def test_list_pages_and_their_limits(fresh):
    s = fresh
    names = [f"acme/pay/p{i}" for i in range(6)]
    for n in names:
        expect(s.post("/v1/policies", doc(n.rsplit("/", 1)[1], "acme/pay")), 201)
    expect(s.post("/v1/policies", doc("outside", "acme")), 201)  # above the scope listed
    # 6 by 3: two full pages, each with its next, then an empty last page
    pages, nxt = [], None
    while True:
        r = expect(s.get("/v1/policies?scope=acme/pay&limit=3" + (f"&after={nxt}" if nxt else "")), 200).json
        pages.append([p["name"] for p in r["items"]])
        nxt = r.get("next")
        if not nxt:
            break
    assert pages == [names[:3], names[3:], []], pages
    for limit in (1, 2, 4, 5, 6, 7, PAGE):
        assert [p["name"] for p in listing(s, "acme/pay", limit=limit)] == names, limit
    assert [p["name"] for p in listing(s, "acme")] == ["acme/outside"] + names
    # escaped, as the CLI sends it
    r = expect(s.get("/v1/policies?scope=acme%2Fpay&limit=2&after=acme%2Fpay%2Fp3"), 200).json
    assert [p["name"] for p in r["items"]] == names[4:] and r["next"] == names[5], r
    assert expect(s.get("/v1/policies?scope=acme/pay&after=zzz"), 200).json == {"items": []}
    for q in ("limit=0", "limit=1001", "limit=-1", "limit=x", "limit=", "limit=1e3", "after=a..b",
              "after=%2Fabs", "after=%00", "after=%zz", "after=" + "a" * 300):
        expect(s.get(f"/v1/policies?scope=acme/pay&{q}"), 400, "invalid")


def test_history_pages_by_version(fresh):
    s = fresh
    full = "acme/pay/h"
    docs = {}
    r = expect(s.post("/v1/policies", doc("h", "acme/pay")), 201).json
    docs[r["version"]] = r["document"]
    v = r["version"]
    for i in range(100):  # more versions than a default page (100)
        d = doc("h", "acme/pay", allow_from(f"{TD}/ns/ws/sa/s{i}"))
        v = expect(s.put(U(full), d, headers=IM(v)), 200).json["version"]
        docs[v] = d
    gone = expect(s.delete(U(full), headers=IM(v)), 200).json["deleted"]
    r = expect(s.post("/v1/policies", doc("h", "acme/pay")), 201).json
    docs[r["version"]] = r["document"]
    want = sorted([*docs, gone], reverse=True)
    assert len(want) == 103
    for limit in (None, 1, 10, 51, 102, 103, PAGE):
        h = history(s, full, limit=limit)
        assert [x["version"] for x in h] == want, f"limit={limit}: {len(h)} of {len(want)} versions"
        for x in h:
            if x["version"] == gone:
                assert x.get("deleted") is True and "document" not in x, x
            else:
                check_policy(x, full, docs[x["version"]], "admin:bootstrap")
    # the first page by default: the newest 100, and where the next starts
    r = expect(s.get(U(full, "/history")), 200).json
    assert [x["version"] for x in r["items"]] == want[:100] and r["next"] == want[99], r.get("next")
    r = expect(s.get(U(full, f"/history?before={want[99]}")), 200).json
    assert [x["version"] for x in r["items"]] == want[100:] and "next" not in r, r
    # before a version in between, past the oldest, and bad values
    r = expect(s.get(U(full, f"/history?limit=2&before={want[5]}")), 200).json
    assert [x["version"] for x in r["items"]] == want[6:8] and r["next"] == want[7], r
    assert expect(s.get(U(full, f"/history?before={want[-1]}")), 200).json == {"items": []}
    expect(s.get(U("acme/pay/never", "/history?before=5")), 404, "not-found")
    for q in ("limit=0", "limit=1001", "limit=-1", "limit=x", "before=0", "before=-3",
              "before=x", "before="):
        expect(s.get(U(full, f"/history?{q}")), 400, "invalid")
    # zt policy history follows "next" and prints every version
    p = zt("policy", "history", full, "--server", s.url, "--ca-file", s.bundle, "--token", s.token)
    assert p.returncode == 0, p.stderr
    assert [x["version"] for x in json.loads(p.stdout)["items"]] == want


# ---- 7. the audit log ---------------------------------------------------------------------


def test_audit_log_counts_and_verifies(env):
    s = env.s
    # one of each change, and a refusal (the test may run alone)
    book = AuditBook(s)
    A, V, full = "admin:bootstrap", "user:viewer", "acme/other/shop/last"
    r = book.did(s.post("/v1/policies", doc("last", "acme/other/shop")), 201, A, "policy.create", full)
    v1 = r.json["version"]
    r = book.did(s.put(U(full), doc("last", "acme/other/shop", {"action": "DENY"}), headers=IM(v1)), 200,
                 A, "policy.update", full)
    book.did(s.put(U(full), doc("last", "acme/other/shop"), headers=IM(r.json["version"]),
                   token=env.tok[V]), 403, V, "policy.update", full)
    r = book.did(s.post(U(full, "/rollback"), {"to": v1}, headers=IM(r.json["version"])), 200, A,
                 "policy.rollback", full)
    book.did(s.delete(U(full), headers=IM(r.json["version"])), 200, A, "policy.delete", full)
    book.check()
    audit_count_ok(s)
    entries = s.audit_entries()
    acts = {e["action"] for e in entries}
    assert {"policy.create", "policy.update", "policy.rollback", "policy.delete"} <= acts, acts
    assert any(e["action"].startswith("policy.") and e["decision"] == "deny" for e in entries)
    adir = s.dir / "audit"
    p = zt("audit", "verify", "--dir", adir)
    assert p.returncode == 0, f"zt audit verify: {p.stdout}\n{p.stderr}"
    p = zt("audit", "verify", "--dir", adir, "--key", adir / "log.pub")
    assert p.returncode == 0, f"zt audit verify --key: {p.stdout}\n{p.stderr}"
    s.assert_clean_stderr()
