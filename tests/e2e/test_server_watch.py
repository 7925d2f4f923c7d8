"""zt server: the policy watch (GET /v1/watch/policies) that proxies long-poll.

A workload's SVID gets the organization and the policies that apply to its own
workspace, once the store has moved past the revision it names; a change reaches
every watcher within a second.
"""
import threading
import time

import pytest

from server_helpers import Client, Server, expect, svid


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
