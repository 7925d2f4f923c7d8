"""zt server: the policy watch (GET /v1/watch/policies) that proxies long-poll.

A workload's SVID gets the organization and the policies that apply to its own
workspace, once the store has moved past the revision it names; a change reaches
every watcher within a second. An organization of more than a page of policies
(1,000: the store's largest read) reaches its proxies whole, a DENY sorted last
included; workspace names stay unique across an organization of more than a page
of workspaces; and the workspace of a workload follows the hierarchy as it
changes (the server keeps the workspace names between changes).
"""
import json
import threading
import time

import pytest

import server_helpers
from conftest import zt
from server_helpers import Client, Server, expect, svid
from test_server_policies import PAGE, seed, seed_policies


def org_policy(name, scope, services=None):
    spec = {"action": "ALLOW", "rules": [{}]}
    if services:
        spec["selector"] = {"services": services}
    return {"apiVersion": "zt.dev/v1", "kind": "AuthorizationPolicy",
            "metadata": {"name": name, "scope": scope}, "spec": spec}


@pytest.fixture
def world(tmp_path):
    s = Server(tmp_path, dev=True)
    s.start()
    # demo/default/dev/web exists (--dev); add a second workspace with its own service
    expect(s.post("/v1/orgs/demo/tenants/default/workspaces", {"name": "ops"}), 201)
    expect(s.post("/v1/orgs/demo/tenants/default/workspaces/ops/services", {"name": "db"}), 201)
    web = svid(s.dir / "ca", "spiffe://zt.local/ns/dev/sa/web", tmp_path, "web")
    db = svid(s.dir / "ca", "spiffe://zt.local/ns/ops/sa/db", tmp_path, "db")
    yield s, web, db
    s.stop()


def names(body):
    return sorted(d["metadata"]["name"] for d in body["documents"] if d["kind"] == "AuthorizationPolicy")


def test_a_workload_gets_what_applies_to_its_workspace(world):
    s, web, db = world
    expect(s.post("/v1/policies", org_policy("org-wide", "demo")), 201)
    expect(s.post("/v1/policies", org_policy("dev-only", "demo/default/dev", ["web"])), 201)
    expect(s.post("/v1/policies", org_policy("ops-only", "demo/default/ops", ["db"])), 201)
    w = expect(Client(s, token=None, cert=web).request("GET", "/v1/watch/policies"), 200).json
    assert w["org"] == "demo" and w["changed"] is True
    assert w["documents"][0]["kind"] == "Organization"
    assert names(w) == ["dev-only", "org-wide"], w
    d = expect(Client(s, token=None, cert=db).request("GET", "/v1/watch/policies"), 200).json
    assert names(d) == ["ops-only", "org-wide"], d
    # an administrator asks for a whole organization
    a = expect(s.get("/v1/watch/policies?org=demo"), 200).json
    assert names(a) == ["dev-only", "ops-only", "org-wide"]


def test_a_change_reaches_every_watcher_within_a_second(world):
    s, web, db = world
    rev = expect(Client(s, token=None, cert=web).request("GET", "/v1/watch/policies"), 200).json["revision"]
    got = {}

    def watch(who, cert):
        t0 = time.monotonic()
        r = Client(s, token=None, cert=cert).request("GET", f"/v1/watch/policies?since={rev}&timeout=20")
        got[who] = (time.monotonic() - t0, r)

    threads = [threading.Thread(target=watch, args=(w, c)) for w, c in (("web", web), ("db", db))]
    for t in threads:
        t.start()
    time.sleep(0.4)
    assert not got, "a watcher returned before anything changed"
    t_change = time.monotonic()
    expect(s.post("/v1/policies", org_policy("new-rule", "demo")), 201)
    for t in threads:
        t.join(10)
    for who in ("web", "db"):
        waited, r = got[who]
        body = expect(r, 200).json
        assert body["changed"] is True and body["revision"] > rev, body
        assert "new-rule" in names(body), body
        # it returned because of the change, and soon after it
        assert waited >= 0.35, f"{who} returned after {waited:.2f} s, before the change"
        assert time.monotonic() - t_change < 1.5


def test_a_watch_times_out_unchanged(world):
    s, web, _ = world
    rev = expect(Client(s, token=None, cert=web).request("GET", "/v1/watch/policies"), 200).json["revision"]
    t0 = time.monotonic()
    r = expect(Client(s, token=None, cert=web).request("GET", f"/v1/watch/policies?since={rev}&timeout=1"), 200)
    assert 0.9 <= time.monotonic() - t0 < 3
    assert r.json["changed"] is False and r.json["revision"] == rev


def test_who_may_watch(world, tmp_path):
    s, _, _ = world
    # a token needs ?org and read access to it; refusals are audited
    t = expect(s.post("/v1/tokens", {"principal": "user:watcher"}), 201).json["token"]
    expect(s.get("/v1/watch/policies", token=t), 400, "invalid")
    r = expect(s.get("/v1/watch/policies?org=demo", token=t), 403, "forbidden")
    entries = expect(s.get("/v1/audit/entries?from=0&limit=1000"), 200).json["items"]
    assert any(e["entry"]["request_id"] == r.rid and e["entry"]["decision"] == "deny" and
               e["entry"]["action"] == "policy.watch" for e in entries)
    expect(s.post("/v1/rolebindings", {"principal": "user:watcher", "role": "viewer", "scope": "demo"}), 201)
    expect(s.get("/v1/watch/policies?org=demo&timeout=1", token=t), 200)
    # a workload of a workspace nobody declared
    ghost = svid(s.dir / "ca", "spiffe://zt.local/ns/ghost/sa/x", tmp_path, "ghost")
    expect(Client(s, token=None, cert=ghost).request("GET", "/v1/watch/policies"), 404, "not-found")
    # bad parameters
    for q in ("since=x", "since=-1", "timeout=0", "timeout=61", "timeout=abc"):
        expect(s.get(f"/v1/watch/policies?org=demo&{q}"), 400, "invalid")


def test_stopping_ends_pending_watches(world):
    s, web, _ = world
    rev = expect(Client(s, token=None, cert=web).request("GET", "/v1/watch/policies"), 200).json["revision"]
    done = {}

    def watch():
        try:
            done["r"] = Client(s, token=None, cert=web).request(
                "GET", f"/v1/watch/policies?since={rev}&timeout=60")
        except Exception as e:  # the connection may end instead of answering
            done["e"] = e

    t = threading.Thread(target=watch)
    t.start()
    time.sleep(0.3)
    t0 = time.monotonic()
    s.stop()
    assert time.monotonic() - t0 < 5, "a pending watch held the server's stop"
    t.join(5)
    assert not t.is_alive()


# ---- more than a page -----------------------------------------------------------------------

TD = "zt.local"


def restart_seeded(s, kind, objects):
    rc, took = s.stop()
    assert rc == 0, f"zt server exited {rc} after SIGTERM ({took:.1f} s):\n{s.stderr()[-4000:]}"
    seed(s, kind, objects)
    s.start()


def evaluate(tmp, documents, src, dst, path):
    """zt policy eval of src -> dst GET path with documents (a watch's answer): (exit, output)."""
    d = tmp / f"eval-{time.monotonic_ns()}"
    d.mkdir()
    for i, doc in enumerate(documents):
        (d / f"{i:05d}.json").write_text(json.dumps(doc))
    req = {"source": {"principal": f"spiffe://{TD}/ns/{src[0]}/sa/{src[1]}"},
           "destination": {"service": f"spiffe://{TD}/ns/{dst[0]}/sa/{dst[1]}"},
           "request": {"method": "GET", "path": path}}
    (tmp / "request.json").write_text(json.dumps(req))
    p = zt("policy", "eval", "--policy", d, "--request", tmp / "request.json", "--explain")
    return p.returncode, p.stdout + p.stderr


def test_a_deny_past_the_first_page_of_policies_reaches_the_proxies(tmp_path):
    """Organization "big" holds a page of ALLOWs (seeded: test_server_policies.seed says why);
    then a DENY that sorts after all of them is
    created through the API. A workload's watch (the proxy's) gets it, and it is enforced."""
    s = Server(tmp_path / "srv").start()
    try:
        expect(s.post("/v1/orgs", {"name": "big"}), 201)
        expect(s.post("/v1/orgs/big/tenants", {"name": "t"}), 201)
        expect(s.post("/v1/orgs/big/tenants/t/workspaces", {"name": "w"}), 201)
        for x in ("api", "db"):
            expect(s.post("/v1/orgs/big/tenants/t/workspaces/w/services", {"name": x}), 201)
        fill = [org_policy(f"a{i:04d}", "big") for i in range(PAGE)]
        for i, d in enumerate(fill):  # a0000 lets api in; the others, callers that are not there
            d["spec"]["rules"] = [{"from": [{"source": {"principals": [f"{TD}/ns/w/sa/{'api' if i == 0 else f'c{i}'}"]}}]}]
        rc, _ = s.stop()
        assert rc == 0, s.stderr()[-4000:]
        seed_policies(s, fill)
        s.start()
        db = svid(s.dir / "ca", f"spiffe://{TD}/ns/w/sa/db", tmp_path, "db")
        proxy = Client(s, token=None, cert=db)
        w = expect(proxy.request("GET", "/v1/watch/policies"), 200).json
        assert len(names(w)) == PAGE, f"{len(names(w))} of {PAGE} policies in the watch"
        assert evaluate(tmp_path, w["documents"], ("w", "api"), ("w", "db"), "/admin")[0] == 0
        # the DENY, sorted last (big/t/w/zz-deny), while the proxy waits for a change
        got = {}
        t = threading.Thread(target=lambda: got.setdefault("r", Client(s, token=None, cert=db).request(
            "GET", f"/v1/watch/policies?since={w['revision']}&timeout=30")))
        t.start()
        time.sleep(0.2)
        deny = {"apiVersion": "zt.dev/v1", "kind": "AuthorizationPolicy",
                "metadata": {"name": "zz-deny", "scope": "big/t/w"},
                "spec": {"action": "DENY", "rules": [{"to": [{"operation": {"paths": ["/admin*"]}}]}]}}
        expect(s.post("/v1/policies", deny), 201)
        t.join(15)
        assert "r" in got, "the waiting watch did not answer"
        w2 = expect(got["r"], 200).json
        assert w2["changed"] is True and w2["revision"] > w["revision"], w2
        policies = [d for d in w2["documents"] if d["kind"] == "AuthorizationPolicy"]
        assert len(policies) == PAGE + 1 and policies[-1] == deny, \
            f"{len(policies)} policies in the watch; the last: {policies[-1]['metadata']}"
        # and the proxy's set denies what it says, and still allows the rest
        code, out = evaluate(tmp_path, w2["documents"], ("w", "api"), ("w", "db"), "/admin/users")
        assert code == 1 and "DENY by big/t/w/zz-deny" in out, out
        code, out = evaluate(tmp_path, w2["documents"], ("w", "api"), ("w", "db"), "/orders")
        assert code == 0 and "ALLOW" in out, out
        # an administrator's watch of the organization has it too
        a = expect(s.get("/v1/watch/policies?org=big"), 200).json
        assert names(a)[-1] == "zz-deny" and len(names(a)) == PAGE + 1
    finally:
        s.finish()


def test_workspace_names_stay_unique_past_the_first_page_of_workspaces(tmp_path):
    """Workspace names are unique across an organization (SPIFFE IDs name the workspace, not the
    tenant): with more than a page of workspaces in o/t1 (seeded), the one sorted last is taken
    in o/t2 as well."""
    s = Server(tmp_path / "srv").start()
    try:
        expect(s.post("/v1/orgs", {"name": "o"}), 201)
        for t in ("t1", "t2"):
            expect(s.post("/v1/orgs/o/tenants", {"name": t}), 201)
        restart_seeded(s, "workspace", [(f"o/t1/w{i:04d}", {"spec": {}, "created_by": "admin:bootstrap"})
                                        for i in range(PAGE + 1)])
        listed, after = [], ""
        while True:
            r = expect(s.get(f"/v1/orgs/o/tenants/t1/workspaces?limit={PAGE}{after}"), 200).json
            listed += [x["name"] for x in r["items"]]
            if "next" not in r:
                break
            after = f"&after={r['next']}"
        assert len(listed) == PAGE + 1 and listed[-1] == f"o/t1/w{PAGE:04d}"
        for name in (f"w{PAGE:04d}", f"w{PAGE - 1:04d}", "w0000"):
            expect(s.post("/v1/orgs/o/tenants/t2/workspaces", {"name": name}), 409, "exists")
            expect(s.get(f"/v1/orgs/o/tenants/t2/workspaces/{name}"), 404, "not-found")
        expect(s.post("/v1/orgs/o/tenants/t2/workspaces", {"name": "w9999"}), 201)
        expect(s.post("/v1/orgs/o/tenants/t2/workspaces", {"name": "w9999"}), 409, "exists")
        # the workload of the last workspace is found, and only in it
        cert = svid(s.dir / "ca", f"spiffe://{TD}/ns/w{PAGE:04d}/sa/x", tmp_path, "x")
        w = expect(Client(s, token=None, cert=cert).request("GET", "/v1/watch/policies"), 200).json
        assert w["org"] == "o", w
    finally:
        s.finish()


def test_the_workspace_of_a_workload_follows_the_hierarchy(world, tmp_path):
    """The server keeps the workspace names between changes: a workspace created, named in a
    second organization, or deleted is seen by the next watch; other changes leave it be."""
    s, _, _ = world
    late = Client(s, token=None, cert=svid(s.dir / "ca", f"spiffe://{TD}/ns/late/sa/x", tmp_path, "late"))

    def watch():
        return late.request("GET", "/v1/watch/policies")

    expect(watch(), 404, "not-found")
    expect(s.post("/v1/policies", org_policy("unrelated", "demo")), 201)  # not a workspace
    expect(watch(), 404, "not-found")
    v = expect(s.post("/v1/orgs/demo/tenants/default/workspaces", {"name": "late"}), 201).json["version"]
    assert expect(watch(), 200).json["org"] == "demo"
    for i in range(3):  # changes that are not workspaces
        expect(s.post("/v1/policies", org_policy(f"other-{i}", "demo")), 201)
        assert expect(watch(), 200).json["org"] == "demo"
    # the same name in a second organization: ambiguous
    expect(s.post("/v1/orgs", {"name": "second"}), 201)
    expect(s.post("/v1/orgs/second/tenants", {"name": "t"}), 201)
    v2 = expect(s.post("/v1/orgs/second/tenants/t/workspaces", {"name": "late"}), 201).json["version"]
    expect(watch(), 409, "conflict")
    expect(s.delete(f"/v1/orgs/second/tenants/t/workspaces/late?version={v2}"), 200)
    assert expect(watch(), 200).json["org"] == "demo"
    expect(s.delete(f"/v1/orgs/demo/tenants/default/workspaces/late?version={v}"), 200)
    expect(watch(), 404, "not-found")
    late.close()


def test_request_authentication_is_kept_and_delivered_like_a_policy(world, tmp_path):
    """A zt.dev/v1 RequestAuthentication is stored, checked by the compiler, and reaches the
    workloads of its scope through the watch (so proxies fed by the server check end-user
    tokens); a document never changes kind under its name; a bad one is refused."""
    s, web, db = world
    ra = {"apiVersion": "zt.dev/v1", "kind": "RequestAuthentication",
          "metadata": {"name": "tokens", "scope": "demo/default/dev"},
          "spec": {"jwtRules": [{"issuer": "https://idp.example.com", "audiences": ["web"],
                                 "jwksUri": "https://idp.example.com/jwks.json"}]}}
    expect(s.post("/v1/policies", ra), 201)
    w = expect(Client(s, token=None, cert=web).request("GET", "/v1/watch/policies"), 200).json
    got = [d for d in w["documents"] if d["kind"] == "RequestAuthentication"]
    assert [d["metadata"]["name"] for d in got] == ["tokens"], w
    assert got[0]["spec"]["jwtRules"][0]["issuer"] == "https://idp.example.com"
    d = expect(Client(s, token=None, cert=db).request("GET", "/v1/watch/policies"), 200).json
    assert not [x for x in d["documents"] if x["kind"] == "RequestAuthentication"], \
        "the ops workspace got the dev workspace's jwtRules"
    # the name is taken: an AuthorizationPolicy of that name is a conflict, not a kind change
    ap = org_policy("tokens", "demo/default/dev", ["web"])
    cur = expect(s.get("/v1/policies/demo/default/dev/tokens"), 200).json["version"]
    r = s.request("PUT", "/v1/policies/demo/default/dev/tokens", ap, headers={"If-Match": f'"{cur}"'})
    assert r.status == 409 and "RequestAuthentication" in r.json["error"]["message"], r.json
    # the compiler's rules hold: plain http:// to a remote host and an unknown field are refused
    for bad_rule, why in (({"issuer": "https://idp.example.com", "jwksUri": "http://idp.example.com/k"},
                           "plain http://"),
                          ({"issuer": "https://idp.example.com", "bogus": 1}, "bogus")):
        bad = dict(ra, metadata={"name": "bad", "scope": "demo/default/dev"},
                   spec={"jwtRules": [bad_rule]})
        with pytest.MonkeyPatch.context() as mp:  # a 400 with the compiler's diagnostics
            mp.setattr(server_helpers, "check_shape", lambda r: r)
            r = s.post("/v1/policies", bad)
        assert r.status == 400 and why in json.dumps(r.json), (bad_rule, r.json)
    expect(s.get("/v1/policies/demo/default/dev/bad"), 404)
