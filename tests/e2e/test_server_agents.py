"""zt server: nodes and their agents (src/server/agents.c, the agent branch of
src/server/svids.c, the `zt join-token|node|entry` commands).

What is covered, against one `zt server --dev` shared by the module:
 - join tokens: the answer's shape, ttl bounds and default, node-name rules, only a
   global admin may make one (every other caller: 403, on the audit log);
 - attestation (POST /v1/agents/attest, no credential but the token): the SVID it
   returns verifies against the bundle and carries the CSR's key and only the agent ID;
   one generic 401 for unknown, wrong-secret, used and expired tokens; a node name is
   never taken over (409) until evicted; 10 parallel joins with one token make one agent;
   failed joins and bad bearer tokens share the per-address limit (429, Retry-After);
   hostile bodies (malformed JSON, unknown members, tampered or oversized CSRs);
 - reading and evicting agents: who may (roles bound at "" read, admin evicts);
 - registration entries: deterministic names, deduplicated sorted selectors, 409 on the
   same set, every selector form and its hostile variants, 1-16 selectors, ttl bounds,
   who may write and read (the service's writers; lists filtered by what one may read);
 - the agent's side (mTLS with the SVID from attest): its long poll for its own node's
   entries (woken within 1 s by a change), SVIDs for itself and for IDs its node's
   entries name (TTL capped by the entry), 403 for the rest; after eviction its requests
   are 403 while its TLS handshake still works;
 - the CLI: zt join-token create, zt node list|get|evict, zt entry create|list|get|delete;
 - lists a page at a time (?limit, ?after, "next"), on a server of their own: more than 1000
   entries walked in pages of every size, filtered by node and by what a viewer may read
   (full pages but the last), agents and role bindings in small pages, bad limits and
   afters, afters past the end, and the commands printing every item;
 - in the end: one audit entry per change and per 403 (each 403 found by its request
   ID), the server stopped cleanly, and `zt audit verify` on its log.

Failed authentications are sent from addresses of their own (127.0.0.N) so that the
per-address limit of 20 a minute only bites where a test wants it to.
"""
import base64
import datetime
import json
import os
import re
import secrets
import subprocess
import threading
import time
import urllib.parse

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from conftest import ZT
from server_helpers import ADMIN, SANITIZER_RE, Client, Server, expect, svid

TD = "zt.local"
WEB = f"spiffe://{TD}/ns/dev/sa/web"      # demo/default/dev/web (--dev)
DB = f"spiffe://{TD}/ns/ops/sa/db"        # demo/default/ops/db (made below)
FAR = f"spiffe://{TD}/ns/far/sa/api"      # demo/other/far/api (made below)
JOIN_RE = re.compile(r"ztj_([0-9a-f]{16})_[A-Za-z0-9_-]{43}")
NAME_RE = re.compile(r"[0-9a-f]{32}")
SHA = "0123456789abcdef" * 4
GENERIC_401 = None  # the message of the one 401 for unknown/wrong/used/expired tokens

# who is bound where (besides the bootstrap admin)
ROLES = {
    "root-viewer": ("viewer", ""),
    "root-sec": ("security-admin", ""),
    "org-admin": ("org-admin", "demo"),
    "dev-admin": ("workspace-admin", "demo/default/dev"),
    "ops-admin": ("workspace-admin", "demo/default/ops"),
    "dev-viewer": ("viewer", "demo/default/dev"),
    "other-ta": ("tenant-admin", "demo/other"),
}


# ---- helpers ---------------------------------------------------------------------------------


def utc(ts):
    """The API's times ("2026-01-02T03:04:05.000Z") as epoch seconds."""
    return datetime.datetime.strptime(ts, "%Y-%m-%dT%H:%M:%S.%fZ").replace(
        tzinfo=datetime.timezone.utc).timestamp()


def new_key():
    return ec.generate_private_key(ec.SECP256R1())


def make_csr(key=None, uri=None, cn=None):
    """(key, PEM CSR) for an EC P-256 key; uri/cn: names the server must ignore."""
    key = key or new_key()
    b = x509.CertificateSigningRequestBuilder().subject_name(
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)] if cn else []))
    if uri:
        b = b.add_extension(x509.SubjectAlternativeName([x509.UniformResourceIdentifier(uri)]),
                            critical=False)
    csr = b.sign(key, hashes.SHA256())
    return key, csr.public_bytes(serialization.Encoding.PEM).decode()


def tampered_csr():
    """A CSR whose signature does not verify: one byte of the signature flipped."""
    _, pem = make_csr()
    der = bytearray(x509.load_pem_x509_csr(pem.encode()).public_bytes(serialization.Encoding.DER))
    der[-3] ^= 0x01
    b64 = base64.encodebytes(bytes(der)).decode()
    return "-----BEGIN CERTIFICATE REQUEST-----\n" + b64 + "-----END CERTIFICATE REQUEST-----\n"


def pub_bytes(k):
    return k.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def leaf_of(chain_pem):
    """The first certificate of a PEM chain."""
    m = re.search(r"-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----", chain_pem, re.S)
    assert m, f"no certificate in {chain_pem[:200]!r}"
    return x509.load_pem_x509_certificate(m.group(0).encode())


def uris(cert):
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return san.get_values_for_type(x509.UniformResourceIdentifier)


def lifetime_left(cert):
    """Seconds from now until the certificate expires."""
    na = cert.not_valid_after.replace(tzinfo=datetime.timezone.utc).timestamp()
    return na - time.time()


def fake_join_token(token_id=None):
    """A join token of the right form: a random (or given) ID and a random secret."""
    sec = base64.urlsafe_b64encode(secrets.token_bytes(32)).decode().rstrip("=")
    return f"ztj_{token_id or secrets.token_hex(8)}_{sec}"


class Agent:
    """A node that joined: its SVID chain and key files (an mTLS client cert)."""

    def __init__(self, node, key, resp, cert):
        self.node, self.key, self.resp, self.cert = node, key, resp, cert
        self.id = f"spiffe://{TD}/zt/agent/{node}"

    def client(self):
        return Client(W.s, token=None, cert=self.cert)

    def get(self, path):
        c = self.client()
        try:
            return c.request("GET", path)
        finally:
            c.close()

    def post(self, path, body):
        c = self.client()
        try:
            return c.request("POST", path, body)
        finally:
            c.close()


class World:
    """The module's server and what the tests keep for the final audit check."""
    s = None


W = World()


def join_token(node, ttl=None):
    body = {"node": node}
    if ttl:
        body["ttl"] = ttl
    r = expect(W.s.post("/v1/jointokens", body), 201)
    return r.json["token"]


def attest(token, csr, source=None):
    return W.s.post("/v1/agents/attest", {"token": token, "csr": csr}, token=None, source=source)


def write_agent(node, key, resp, tag=None):
    tag = tag or node[:40]
    crt, kf = W.tmp / f"agent-{tag}.pem", W.tmp / f"agent-{tag}.key"
    crt.write_text(resp.json["chain"])
    kf.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                     serialization.NoEncryption()))
    return Agent(node, key, resp, (crt, kf))


def join(node, tag=None):
    """A new agent for node: a token, a key, a CSR, attest (must be 201)."""
    key, csr = make_csr()
    r = expect(attest(join_token(node), csr), 201)
    return write_agent(node, key, r, tag)


def deny(r, actor, action, target):
    """A 403 the final test must find on the audit log as this denial."""
    expect(r, 403, "forbidden")
    W.denies.append((r.rid, actor, action, target))
    return r


def entry(node, ident=WEB, selectors=("unix:uid:1000",), ttl=None, token=ADMIN):
    body = {"id": ident, "node": node, "selectors": list(selectors)}
    if ttl:
        body["ttl"] = ttl
    return W.s.post("/v1/entries", body, token=token)


def audit_by_rid():
    return {e["request_id"]: e for e in W.s.audit_entries()}


def zt_verify_svid(chain_pem, spiffe_id, name):
    f = W.tmp / f"verify-{name}.pem"
    f.write_text(chain_pem)
    p = subprocess.run([ZT, "svid", "verify", "--bundle", str(W.s.bundle), "--id", spiffe_id, str(f)],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 0, f"zt svid verify {spiffe_id}: {p.stdout}\n{p.stderr}"
    return p


# ---- the server ------------------------------------------------------------------------------


@pytest.fixture(scope="module", autouse=True)
def world(tmp_path_factory):
    assert os.access(ZT, os.X_OK), f"{ZT} not built: run make"
    tmp = tmp_path_factory.mktemp("agents")
    s = Server(tmp, dev=True).start()
    W.s, W.tmp = s, tmp
    W.denies, W.cli_rids, W.cli_changes = [], [], 0
    W.size0 = s.audit_size()
    W.changes0, W.denials0 = s.changes, s.denials
    # a token that expires 10 s from now, never used (test_expired_join_token_is_the_same_401)
    W.expiring = join_token("expiring", ttl="10s")
    W.expiring_at = time.time() + 10
    # more of the hierarchy: demo/default/ops/db, and a tenant of its own demo/other/far/api
    expect(s.post("/v1/orgs/demo/tenants/default/workspaces", {"name": "ops"}), 201)
    expect(s.post("/v1/orgs/demo/tenants/default/workspaces/ops/services", {"name": "db"}), 201)
    expect(s.post("/v1/orgs/demo/tenants", {"name": "other"}), 201)
    expect(s.post("/v1/orgs/demo/tenants/other/workspaces", {"name": "far"}), 201)
    expect(s.post("/v1/orgs/demo/tenants/other/workspaces/far/services", {"name": "api"}), 201)
    W.tok, W.who = {}, {}
    for key, (role, scope) in ROLES.items():
        principal = f"user:{key}"
        W.tok[key] = expect(s.post("/v1/tokens", {"principal": principal}), 201).json["token"]
        W.who[key] = principal
        expect(s.post("/v1/rolebindings", {"principal": principal, "role": role, "scope": scope}), 201)
    yield W
    s.finish()


# ---- 1. join tokens --------------------------------------------------------------------------


def test_join_token_shape_ttl_and_node_names():
    s = W.s
    t0 = time.time()
    r = expect(s.post("/v1/jointokens", {"node": "shape-1"}), 201).json
    assert set(r) == {"id", "token", "node", "expires", "note"}, r
    m = JOIN_RE.fullmatch(r["token"])
    assert m and m.group(1) == r["id"] and r["node"] == "shape-1", r
    assert r["note"], r
    assert abs(utc(r["expires"]) - (t0 + 600)) < 5, f"default ttl is 10m: {r['expires']}"
    # ttl bounds: 10s .. 7d
    for ttl, secs in (("10s", 10), ("7d", 7 * 86400), ("1h30m", 5400), ("168h", 7 * 86400)):
        r = expect(s.post("/v1/jointokens", {"node": "shape-2", "ttl": ttl}), 201).json
        assert abs(utc(r["expires"]) - (time.time() + secs)) < 5, (ttl, r)
    two = [expect(s.post("/v1/jointokens", {"node": "shape-3"}), 201).json for _ in range(2)]
    assert two[0]["id"] != two[1]["id"] and two[0]["token"] != two[1]["token"]
    bad = []
    for ttl in ("9s", "0s", "7d1s", "8d", "169h", "", "10", "1w", "-1m", "1.5h", 600, None, ["1m"]):
        r = s.post("/v1/jointokens", {"node": "shape-4", "ttl": ttl})
        if r.status != 400 or r.code != "invalid":
            bad.append(f"ttl {ttl!r} -> {r!r}")
    # node names: 1-63 of a-z 0-9 - . ; no leading/trailing - or . ; no ".."; not attest/self
    good_names = ["a", "0", "node-1.example.com", "a" * 63, "a-b", "a.b", "1-2.3"]
    for n in good_names:
        r = s.post("/v1/jointokens", {"node": n})
        if r.status != 201 or r.json["node"] != n:
            bad.append(f"node {n[:40]!r} -> {r!r}")
    bad_names = ["", "a" * 64, "a" * 254, "attest", "self", "-a", "a-", ".a", "a.", "a..b", "A", "Node", "a_b", "a b", "a/b",
                 "a:b", "é", "a\u0000b", "*", 7, None, ["a"], {"n": "a"}]
    for n in bad_names:
        r = s.post("/v1/jointokens", {"node": n})
        if r.status != 400 or r.code != "invalid":
            bad.append(f"node {n!r:.40} -> {r!r}")
    for body in ({}, {"ttl": "1m"}, {"node": "x", "extra": 1}, {"node": "x", "token": "y"}):
        r = s.post("/v1/jointokens", body)
        if r.status != 400:
            bad.append(f"{body} -> {r!r}")
    for raw in (b"{", b"[]", b'"node"', b"", b'{"node":"a","node":"b"}'):
        r = s.post("/v1/jointokens", None, raw=raw)
        if r.status != 400:
            bad.append(f"raw {raw!r} -> {r!r}")
    # the collection takes POST only; there is nothing below it
    r = s.get("/v1/jointokens")
    if r.status != 405:
        bad.append(f"GET /v1/jointokens -> {r!r}")
    r = s.delete("/v1/jointokens/" + two[0]["id"])
    if r.status not in (404, 405):
        bad.append(f"DELETE /v1/jointokens/ID -> {r!r}")
    assert not bad, "\n".join(bad)


def test_only_a_global_admin_makes_join_tokens():
    s = W.s
    for who in ("root-viewer", "root-sec", "org-admin", "dev-admin", "other-ta"):
        node = f"deny-{who}"
        deny(s.post("/v1/jointokens", {"node": node}, token=W.tok[who]), W.who[who],
             "jointoken.create", node)
    # an agent with a fresh SVID may not either
    a = join("tok-agent")
    deny(a.post("/v1/jointokens", {"node": "deny-agent"}), a.id, "jointoken.create", "deny-agent")
    # a workload's SVID neither
    web = svid(s.dir / "ca", WEB, W.tmp, "web-tok")
    c = Client(s, token=None, cert=web)
    deny(c.request("POST", "/v1/jointokens", {"node": "deny-web"}), WEB, "jointoken.create", "deny-web")
    c.close()


# ---- 2. attestation --------------------------------------------------------------------------


def test_attest_issues_the_agent_svid_without_other_credentials():
    s = W.s
    tok = join_token("att-1")
    tid = JOIN_RE.fullmatch(tok).group(1)
    # the CSR asks for other names: the server decides them
    key, csr = make_csr(uri=f"spiffe://{TD}/zt/server", cn="admin")
    t0 = time.time()
    r = expect(attest(tok, csr), 201)
    j = r.json
    sid = f"spiffe://{TD}/zt/agent/att-1"
    assert set(j) == {"id", "node", "serial", "not_after", "chain", "bundle"}, j
    assert (j["id"], j["node"]) == (sid, "att-1"), j
    leaf = leaf_of(j["chain"])
    assert uris(leaf) == [sid], f"the agent SVID's URIs: {uris(leaf)}"
    assert pub_bytes(leaf.public_key()) == pub_bytes(key.public_key()), "not the CSR's key"
    assert int(j["serial"], 16) == leaf.serial_number, (j["serial"], hex(leaf.serial_number))
    na = leaf.not_valid_after.replace(tzinfo=datetime.timezone.utc).timestamp()
    assert abs(utc(j["not_after"]) - na) < 1.5, (j["not_after"], leaf.not_valid_after)
    assert 3000 < na - t0 < 3700, f"agent SVIDs live about an hour: {na - t0:.0f} s"
    # the chain verifies against the bundle it came with, and against the server's bundle
    bfile = W.tmp / "att-1-bundle.pem"
    bfile.write_text(j["bundle"])
    cfile = W.tmp / "att-1-chain.pem"
    cfile.write_text(j["chain"])
    p = subprocess.run([ZT, "svid", "verify", "--bundle", str(bfile), "--id", sid, str(cfile)],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 0, f"zt svid verify: {p.stdout}\n{p.stderr}"
    zt_verify_svid(j["chain"], sid, "att-1")
    # and it is a working client certificate: the agent reads its entries with it
    a = write_agent("att-1", key, r)
    w = expect(a.get("/v1/agents/self/entries"), 200).json
    assert w["node"] == "att-1" and w["entries"] == [], w
    # the agent is on record
    o = expect(s.get("/v1/agents/att-1"), 200).json
    assert (o["kind"], o["name"], o["node"], o["id"], o["serial"], o["joined_with"]) == \
        ("agent", "att-1", "att-1", sid, j["serial"], tid), o
    assert "att-1" in [x["name"] for x in expect(s.get("/v1/agents"), 200).json["items"]]
    # and on the audit log: agent.join by the token, after jointoken.create by the admin
    log = audit_by_rid()
    e = log[r.rid]
    assert (e["actor"], e["action"], e["target"], e["decision"]) == \
        (f"jointoken:{tid}", "agent.join", sid, "allow"), e
    assert e["details"]["node"] == "att-1" and e["details"]["serial"] == j["serial"], e
    made = [x for x in log.values() if x["action"] == "jointoken.create" and x["target"] == tid]
    assert len(made) == 1 and made[0]["actor"] == "admin:bootstrap" and \
        made[0]["details"]["node"] == "att-1", made
    # a bogus Authorization header changes nothing: attest takes no other credential
    tok2 = join_token("att-2")
    _, csr2 = make_csr()
    r2 = W.s.post("/v1/agents/attest", {"token": tok2, "csr": csr2},
                  token="ztk_0123456789abcdef_" + "A" * 43, source="127.0.0.7")
    expect(r2, 201)
    assert r2.json["id"] == f"spiffe://{TD}/zt/agent/att-2"


def test_one_generic_401_for_unknown_wrong_and_used_tokens():
    global GENERIC_401
    src = "127.0.0.2"
    tok = join_token("g401")
    tid = JOIN_RE.fullmatch(tok).group(1)
    _, csr = make_csr()
    r_unknown = expect(attest(fake_join_token(), csr, src), 401, "unauthenticated")
    r_wrong = expect(attest(fake_join_token(tid), csr, src), 401, "unauthenticated")
    expect(attest(tok, csr, src), 201)
    r_used = expect(attest(tok, make_csr()[1], src), 401, "unauthenticated")
    msgs = {r.json["error"]["message"] for r in (r_unknown, r_wrong, r_used)}
    assert len(msgs) == 1, f"the 401s tell the cases apart: {msgs}"
    GENERIC_401 = msgs.pop()
    # the wrong-secret attempt did not spend the token: the good join after it worked, with it
    assert expect(W.s.get("/v1/agents/g401"), 200).json["joined_with"] == tid
    # tokens of a wrong form: 401 as well
    good = fake_join_token()
    bad = []
    for t in ("ztk" + good[3:], good[:-1], good + "A", "ztj_" + "g" * 16 + good[20:],
              good[:20] + "-" + good[21:], "", "ztj_", "Bearer " + good, good.upper()):
        r = attest(t, csr, src)
        if r.status != 401 or r.code != "unauthenticated":
            bad.append(f"token {t!r} -> {r!r}")
    assert not bad, "\n".join(bad)


def test_attest_hostile_bodies():
    s, src = W.s, "127.0.0.6"
    tok = join_token("hostile")
    key, csr = make_csr()
    bad = []

    def want(r, status, what):
        if r.status != status:
            bad.append(f"{what}: expected {status}, got {r!r}")

    post = lambda body, raw=None: s.post("/v1/agents/attest", body, raw=raw, token=None, source=src)  # noqa: E731
    # not a JSON object, or members it does not take: 400
    for raw in (b"{", b"[]", b"null", b'"x"', b"", b'{"token":"a","token":"b","csr":"c"}',
                b"\xff\xfe{}"):
        want(post(None, raw=raw), 400, f"raw body {raw!r}")
    want(post({"token": tok, "csr": csr, "node": "other"}), 400, "an extra member node")
    want(post({"token": tok, "csr": csr, "ttl": "24h"}), 400, "an extra member ttl")
    # no token, or not a string: 401; no CSR: 401
    want(post({"csr": csr}), 401, "no token")
    want(post({"token": 5, "csr": csr}), 401, "a number token")
    want(post({"token": [tok], "csr": csr}), 401, "a list token")
    want(post({"token": tok}), 401, "no csr")
    want(post({"token": tok, "csr": None}), 401, "a null csr")
    # a CSR that is not one, whose signature is wrong, or too big: 400 with a good token
    for what, c in (("garbage", "garbage"), ("empty", ""), ("a certificate instead",
                    W.s.bundle.read_text()), ("tampered signature", tampered_csr()),
                    ("truncated", csr[:len(csr) // 2]), ("base64 junk", "-----BEGIN CERTIFICATE "
                    "REQUEST-----\n" + "QUFB" * 20 + "\n-----END CERTIFICATE REQUEST-----\n"),
                    ("900 KB of junk", "A" * 900_000)):
        want(post({"token": tok, "csr": c}), 400, f"csr: {what}")
    # a body over 1 MiB: 413 from its Content-Length
    raw = s.raw(b"POST /v1/agents/attest HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
                b"Content-Length: 2000000\r\n\r\n" + b'{"token":"' + tok.encode() + b'","csr":"' + b"A" * 4096)
    status = int(raw.split(b" ", 2)[1]) if raw.startswith(b"HTTP/1.1 ") else None
    if status != 413:
        bad.append(f"a 2 MB attest body -> {raw[:200]!r}")
    # methods: the endpoint takes POST
    for m in ("GET", "PUT", "DELETE"):
        want(s.request(m, "/v1/agents/attest", {"token": tok, "csr": csr} if m == "PUT" else None,
                       token=None, source=src), 405, f"{m} /v1/agents/attest")
    assert not bad, "\n".join(bad)
    # none of that spent the token nor made an agent
    expect(s.get("/v1/agents/hostile"), 404)
    r = expect(attest(tok, csr, src), 201)
    assert pub_bytes(leaf_of(r.json["chain"]).public_key()) == pub_bytes(key.public_key())


def test_a_node_name_is_not_taken_over_until_evicted():
    s = W.s
    first = join("dup")
    tid1 = first.resp.json["id"]
    key2, csr2 = make_csr()
    r = expect(attest(join_token("dup"), csr2), 409, "exists")
    assert "dup" in r.json["error"]["message"]
    o = expect(s.get("/v1/agents/dup"), 200).json
    assert o["serial"] == first.resp.json["serial"], "the second join replaced the first"
    assert tid1 == o["id"]
    # the first agent still works
    expect(first.get("/v1/agents/self/entries"), 200)
    # evicted, the name joins again with a new token
    ev = expect(s.delete("/v1/agents/dup"), 200).json
    assert ev["node"] == "dup" and isinstance(ev["evicted"], int), ev
    expect(s.get("/v1/agents/dup"), 404, "not-found")
    assert "dup" not in [x["name"] for x in expect(s.get("/v1/agents"), 200).json["items"]]
    key3, csr3 = make_csr()
    r3 = expect(attest(join_token("dup"), csr3), 201)
    assert r3.json["serial"] != first.resp.json["serial"]
    assert pub_bytes(leaf_of(r3.json["chain"]).public_key()) == pub_bytes(key3.public_key())
    again = write_agent("dup", key3, r3, "dup-2")
    expect(again.get("/v1/agents/self/entries"), 200)
    log = audit_by_rid()
    e = log[ev_rid(s, "DELETE", "/v1/agents/dup")]
    assert (e["actor"], e["action"], e["target"], e["decision"]) == \
        ("admin:bootstrap", "agent.evict", "dup", "allow"), e
    # evicting what is not there
    expect(s.delete("/v1/agents/dup-none"), 404, "not-found")


def ev_rid(s, method, path):
    """The request ID of the last 2xx answer to method path."""
    for r in reversed(s.responses):
        if r.method == method and r.path == path and 200 <= r.status < 300:
            return r.rid
    raise AssertionError(f"no 2xx {method} {path}")


def test_parallel_joins_with_one_token_make_one_agent():
    s, src = W.s, "127.0.0.3"
    tok = join_token("race")
    csrs = [make_csr() for _ in range(10)]
    clients = [Client(s, token=None, source=src) for _ in range(10)]
    for c in clients:  # connected beforehand, so that the requests meet at the server
        expect(c.request("GET", "/v1/health"), 200)
    barrier = threading.Barrier(10)
    out, errs = [None] * 10, []

    def go(i):
        try:
            barrier.wait(10)
            out[i] = clients[i].request("POST", "/v1/agents/attest", {"token": tok, "csr": csrs[i][1]})
        except Exception as ex:  # noqa: BLE001 - reported below
            errs.append(repr(ex))

    ts = [threading.Thread(target=go, args=(i,)) for i in range(10)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(30)
    for c in clients:
        c.close()
    assert not errs, errs
    statuses = sorted(r.status for r in out)
    assert statuses == [201] + [401] * 9, f"10 joins with one token: {statuses}"
    win = [i for i in range(10) if out[i].status == 201][0]
    leaf = leaf_of(out[win].json["chain"])
    assert pub_bytes(leaf.public_key()) == pub_bytes(csrs[win][0].public_key())
    assert [x["name"] for x in expect(s.get("/v1/agents"), 200).json["items"]].count("race") == 1
    assert expect(s.get("/v1/agents/race"), 200).json["serial"] == out[win].json["serial"]
    joins = [e for e in s.audit_entries() if e["action"] == "agent.join" and
             e["target"] == f"spiffe://{TD}/zt/agent/race"]
    assert len(joins) == 1 and joins[0]["request_id"] == out[win].rid, joins


def test_failed_joins_and_bad_bearer_tokens_share_the_address_limit():
    s, src = W.s, "127.0.0.4"
    tok = join_token("limited")
    _, csr = make_csr()
    bogus = "ztk_0123456789abcdef_" + "A" * 43
    got = []
    for i in range(10):
        got.append(s.get("/v1/whoami", token=bogus, source=src).status)
        got.append(attest(fake_join_token(), csr, src).status)
    assert got == [401] * 20, f"20 failed authentications, each a 401: {got}"
    # the 21st request from that address: 429, even with a good join token or bearer token
    r = expect(attest(tok, csr, src), 429, "too-many-failures")
    ra = r.headers.get("retry-after", "")
    assert ra.isdigit() and 0 < int(ra) <= 60, f"Retry-After {ra!r}"
    expect(s.get("/v1/whoami", token=s.token, source=src), 429, "too-many-failures")
    expect(attest(fake_join_token(), csr, src), 429, "too-many-failures")
    # other addresses are not held back, and the refused token was not spent
    expect(s.get("/v1/agents/limited"), 404)
    r = expect(attest(tok, csr, "127.0.0.5"), 201)
    assert r.json["node"] == "limited"



# ---- 3. reading and evicting agents ----------------------------------------------------------


def test_who_reads_and_evicts_agents():
    s = W.s
    a = join("rbac-node")
    for who in ("root-viewer", "root-sec"):
        items = expect(s.get("/v1/agents", token=W.tok[who]), 200).json["items"]
        assert "rbac-node" in [x["name"] for x in items], who
        o = expect(s.get("/v1/agents/rbac-node", token=W.tok[who]), 200).json
        assert o["id"] == a.id
        deny(s.delete("/v1/agents/rbac-node", token=W.tok[who]), W.who[who], "agent.evict", "rbac-node")
    for who in ("org-admin", "dev-admin", "other-ta", "dev-viewer"):
        deny(s.get("/v1/agents", token=W.tok[who]), W.who[who], "agent.list", "/")
        deny(s.get("/v1/agents/rbac-node", token=W.tok[who]), W.who[who], "agent.get", "rbac-node")
        deny(s.delete("/v1/agents/rbac-node", token=W.tok[who]), W.who[who], "agent.evict", "rbac-node")
    # an agent reads no agents and evicts nothing, not even itself
    deny(a.get("/v1/agents"), a.id, "agent.list", "/")
    deny(a.get("/v1/agents/rbac-node"), a.id, "agent.get", "rbac-node")
    c = a.client()
    deny(c.request("DELETE", "/v1/agents/rbac-node"), a.id, "agent.evict", "rbac-node")
    c.close()
    # after all that it is still there
    expect(s.get("/v1/agents/rbac-node"), 200)
    expect(a.get("/v1/agents/self/entries"), 200)
    for path in ("/v1/agents/no-such-node", "/v1/agents/Bad_Name", "/v1/agents/a..b"):
        expect(s.get(path), 404, "not-found")
    expect(s.delete("/v1/agents/no-such-node"), 404, "not-found")
    expect(s.get("/v1/agents", token=None, source="127.0.0.9"), 401)


# ---- 4. registration entries -----------------------------------------------------------------


def test_entries_create_get_list_delete():
    s = W.s
    sels = ["unix:uid:1000", "cgroup:/system.slice/web.service", "unix:uid:1000",
            "unix:path:/usr/bin/web", f"unix:sha256:{SHA}", "unix:gid:0"]
    r = expect(entry("ent-1", WEB, sels, ttl="5m"), 201)
    e = r.json
    assert NAME_RE.fullmatch(e["name"]), e
    want_sels = sorted(set(sels))
    assert (e["kind"], e["id"], e["node"], e["selectors"], e["ttl"], e["created_by"]) == \
        ("entry", WEB, "ent-1", want_sels, 300, "admin:bootstrap"), e
    assert expect(s.get(f"/v1/entries/{e['name']}"), 200).json == e
    # the same node, ID and selector set (any order, duplicates) is the same entry: 409
    for again in (list(reversed(sels)), want_sels, want_sels + want_sels[:2]):
        expect(entry("ent-1", WEB, again, ttl="5m"), 409, "exists")
        expect(entry("ent-1", WEB, again), 409, "exists")     # the ttl is not part of the name
    # anything else is another entry
    others = [expect(entry("ent-2", WEB, sels), 201).json,
              expect(entry("ent-1", DB, sels), 201).json,
              expect(entry("ent-1", WEB, sels[:-1]), 201).json,
              expect(entry("ent-1", WEB, ["unix:uid:1001"]), 201).json]
    names = {e["name"]} | {o["name"] for o in others}
    assert len(names) == 5, names
    assert others[0]["ttl"] == 3600, "the default ttl is 1h"
    # lists: all, and by node
    listed = {x["name"]: x for x in expect(s.get("/v1/entries"), 200).json["items"]}
    assert names <= set(listed)
    assert listed[e["name"]] == e
    by1 = expect(s.get("/v1/entries?node=ent-1"), 200).json["items"]
    assert {x["name"] for x in by1} == names - {others[0]["name"]} and \
        all(x["node"] == "ent-1" for x in by1), by1
    by2 = expect(s.get("/v1/entries?node=ent-2"), 200).json["items"]
    assert [x["name"] for x in by2] == [others[0]["name"]]
    assert expect(s.get("/v1/entries?node=nobody-here"), 200).json["items"] == []
    expect(s.get("/v1/entries?node=%zz"), 400, "invalid")
    expect(s.get("/v1/entries?node=" + "a" * 300), 400, "invalid")
    # delete: gone, then 404; made again, it gets the same name
    d = expect(s.delete(f"/v1/entries/{e['name']}"), 200).json
    assert d["name"] == e["name"] and d["deleted"] > e["version"], d
    expect(s.get(f"/v1/entries/{e['name']}"), 404, "not-found")
    expect(s.delete(f"/v1/entries/{e['name']}"), 404, "not-found")
    assert e["name"] not in {x["name"] for x in expect(s.get("/v1/entries?node=ent-1"), 200).json["items"]}
    e2 = expect(entry("ent-1", WEB, list(reversed(sels)), ttl="5m"), 201).json
    assert e2["name"] == e["name"] and e2["version"] > e["version"], (e, e2)
    # the audit log: entry.create and entry.delete with the entry's name
    log = audit_by_rid()
    assert (log[r.rid]["action"], log[r.rid]["target"], log[r.rid]["decision"]) == \
        ("entry.create", e["name"], "allow")
    dr = log[ev_rid(s, "DELETE", f"/v1/entries/{e['name']}")]
    assert (dr["action"], dr["target"]) == ("entry.delete", e["name"]), dr
    # methods and paths the collection does not take
    expect(s.put("/v1/entries", {}), 405, "method")
    expect(s.delete("/v1/entries"), 405, "method")
    expect(s.post(f"/v1/entries/{e['name']}", {}), 405, "method")
    expect(s.get(f"/v1/entries/{e['name']}/more"), 404)
    expect(s.get("/v1/entries/" + "0" * 32), 404, "not-found")


SEL_BAD = [
    "unix:uid:-1", "unix:uid:01", "unix:uid:4294967296", "unix:uid:99999999999", "unix:uid:",
    "unix:uid:+1", "unix:uid:1.0", "unix:uid:0x10", "unix:uid: 1", "unix:uid:1 ", "unix:uid:root",
    "unix:gid:-1", "unix:gid:007", "unix:gid:4294967296", "unix:gid:",
    "unix:path:relative", "unix:path:", "unix:path:/a/../b", "unix:path:/a/./b", "unix:path:~/x",
    "unix:path:/" + "a" * 1024, "unix:path:/", "unix:path://x", "unix:path:/a/..", "unix:path:/a/.",
    "unix:path:/a/",
    "unix:sha256:" + SHA.upper(), "unix:sha256:" + SHA[:63], "unix:sha256:" + SHA + "0",
    "unix:sha256:" + "g" * 64, "unix:sha256:", "unix:sha256:" + SHA[:62] + "A" + SHA[63],
    "cgroup:nostart", "cgroup:", "cgroup:relative/x", "cgroup:/" + "a" * 1024, "cgroup://x",
    "unknown:x", "unix:pid:1", "unix:uid", "uid:0", "UNIX:uid:0", "k8s:ns:default", "", " ",
    "unix:uid:1\u0000", "x" * 5000,
]
SEL_GOOD = [
    "unix:uid:0", "unix:uid:4294967295", "unix:gid:0", "unix:gid:4294967295", "unix:uid:1234567890",
    "unix:path:/usr/bin/web", "unix:path:/" + "a" * 1023, f"unix:sha256:{SHA}",
    "cgroup:/", "cgroup:/system.slice/web.service", "cgroup:/" + "a" * 1023,
]


def test_entry_validation():
    s = W.s
    bad = []

    def want(r, status, what):
        if r.status != status:
            bad.append(f"{what}: expected {status}, got {r!r}")

    for sel in SEL_BAD:
        want(entry("val", WEB, [sel]), 400, f"selector {sel[:60]!r}")
        want(entry("val", WEB, ["unix:uid:5", sel]), 400, f"selector {sel[:60]!r} after a good one")
    for i, sel in enumerate(SEL_GOOD):
        r = entry("val", WEB, [sel, f"unix:gid:{i + 100}"])
        want(r, 201, f"selector {sel[:60]!r}")
        if r.status == 201 and r.json["selectors"] != sorted([sel, f"unix:gid:{i + 100}"]):
            bad.append(f"selectors stored as {r.json['selectors']}")
    # 1..16 selectors
    want(entry("val", WEB, [f"unix:uid:{i}" for i in range(16)]), 201, "16 selectors")
    want(entry("val", WEB, [f"unix:uid:{i}" for i in range(17)]), 400, "17 selectors")
    want(entry("val", WEB, [f"unix:uid:{i}" for i in range(1000)]), 400, "1000 selectors")
    want(entry("val", WEB, []), 400, "no selectors")
    r = entry("val", WEB, ["unix:uid:77"] * 17)  # 17 in the list, one after deduplication
    if r.status not in (201, 400):
        bad.append(f"17 copies of one selector -> {r!r}")
    for sels in ("unix:uid:0", {"a": "unix:uid:0"}, [0], [None], [["unix:uid:0"]], None):
        want(s.post("/v1/entries", {"id": WEB, "node": "val", "selectors": sels}), 400,
             f"selectors {sels!r}")
    want(s.post("/v1/entries", {"id": WEB, "node": "val"}), 400, "selectors missing")
    # ttl: 1m .. 24h
    for ttl, secs in (("1m", 60), ("24h", 86400), ("90s", 90), ("1h1m", 3660)):
        r = entry("val", WEB, [f"unix:uid:{secs}"], ttl=ttl)
        want(r, 201, f"ttl {ttl}")
        if r.status == 201 and r.json["ttl"] != secs:
            bad.append(f"ttl {ttl} stored as {r.json['ttl']}")
    for ttl in ("59s", "0s", "24h1s", "2d", "", "1", "1y", 60, None):
        want(s.post("/v1/entries", {"id": WEB, "node": "val", "selectors": ["unix:uid:9"], "ttl": ttl}),
             400, f"ttl {ttl!r}")
    # node names
    for node in ("", "-a", "a-", ".a", "a.", "a..b", "A", "a_b", "a b", "a/b", "a" * 64, "a" * 254,
                 "attest", "self", 5, None):
        want(s.post("/v1/entries", {"id": WEB, "node": node, "selectors": ["unix:uid:9"]}), 400,
             f"node {node!r:.40}")
    want(s.post("/v1/entries", {"id": WEB, "selectors": ["unix:uid:9"]}), 400, "node missing")
    want(entry("a" * 63, WEB, ["unix:uid:9"]), 201, "a 63-character node")
    # IDs: a workload ID of this trust domain whose service exists
    for ident in ("spiffe://other.org/ns/dev/sa/web", f"spiffe://{TD}/zt/agent/val",
                  f"spiffe://{TD}/zt/server", f"spiffe://{TD}/ns/dev/sa/web/extra",
                  f"spiffe://{TD}/ns/dev", f"spiffe://{TD}/ns/dev/sa/", f"spiffe://{TD}/ns//sa/web",
                  f"spiffe://{TD}/x/dev/sa/web", "web", "", f"SPIFFE://{TD}/ns/dev/sa/web",
                  f"spiffe://{TD}/ns/dev/sa/web?x=1", f"spiffe://{TD}/ns/dev/sa/../sa/web", 5, None):
        want(s.post("/v1/entries", {"id": ident, "node": "val", "selectors": ["unix:uid:9"]}), 400,
             f"id {ident!r}")
    want(s.post("/v1/entries", {"node": "val", "selectors": ["unix:uid:9"]}), 400, "id missing")
    for ident in (f"spiffe://{TD}/ns/dev/sa/nosuch", f"spiffe://{TD}/ns/nows/sa/web"):
        r = entry("val", ident, ["unix:uid:9"])
        want(r, 404, f"id {ident}")
        if r.status == 404 and r.code != "not-found":
            bad.append(f"id {ident}: code {r.code}")
    # bodies
    for body in ({"id": WEB, "node": "val", "selectors": ["unix:uid:9"], "extra": 1},
                 {"id": WEB, "node": "val", "selectors": ["unix:uid:9"], "name": "0" * 32}):
        want(s.post("/v1/entries", body), 400, f"body {body}")
    for raw in (b"{", b"[]", b"", b"null", b'{"id":"a","id":"b"}'):
        want(s.post("/v1/entries", None, raw=raw), 400, f"raw {raw!r}")
    assert not bad, "\n".join(bad)
    # nothing of the refused was stored: the node "val" has just the accepted ones
    listed = expect(s.get("/v1/entries?node=val"), 200).json["items"]
    flat = [sel for x in listed for sel in x["selectors"]]
    for sel in SEL_BAD:
        assert sel not in flat, f"refused selector {sel[:60]!r} was stored"


def test_who_writes_and_reads_entries():
    s = W.s
    tok = W.tok
    node = "rbac-ent"
    mine = expect(entry(node, WEB, ["unix:uid:10"], token=tok["dev-admin"]), 201).json
    assert mine["created_by"] == "user:dev-admin"
    ops = expect(entry(node, DB, ["unix:uid:11"], token=tok["ops-admin"]), 201).json
    far = expect(entry(node, FAR, ["unix:uid:12"], token=tok["other-ta"]), 201).json
    org = expect(entry(node, DB, ["unix:uid:13"], token=tok["org-admin"]), 201).json
    # writers of other services: 403 with the ID as the target
    deny(entry(node, DB, ["unix:uid:20"], token=tok["dev-admin"]), "user:dev-admin", "entry.create", DB)
    deny(entry(node, WEB, ["unix:uid:21"], token=tok["ops-admin"]), "user:ops-admin", "entry.create", WEB)
    deny(entry(node, WEB, ["unix:uid:22"], token=tok["other-ta"]), "user:other-ta", "entry.create", WEB)
    deny(entry(node, FAR, ["unix:uid:23"], token=tok["dev-admin"]), "user:dev-admin", "entry.create", FAR)
    for who in ("dev-viewer", "root-viewer", "root-sec"):
        deny(entry(node, WEB, ["unix:uid:24"], token=tok[who]), W.who[who], "entry.create", WEB)
    a = join("rbac-ent")
    deny(a.post("/v1/entries", {"id": WEB, "node": "rbac-ent", "selectors": ["unix:uid:25"]}),
         a.id, "entry.create", WEB)
    # lists: entries of services the caller may read
    def listed(who, q=f"?node={node}"):
        return {x["name"] for x in expect(s.get("/v1/entries" + q, token=tok[who]), 200).json["items"]}

    every = {mine["name"], ops["name"], far["name"], org["name"]}
    assert listed("dev-admin") == {mine["name"]}
    assert listed("dev-viewer") == {mine["name"]}
    assert listed("ops-admin") == {ops["name"], org["name"]}
    assert listed("other-ta") == {far["name"]}
    assert listed("org-admin") == every
    assert listed("root-viewer") == every
    assert every <= listed("root-sec", "")
    assert {x["id"] for x in expect(s.get("/v1/entries", token=tok["dev-admin"]), 200).json["items"]} \
        <= {WEB}, "dev-admin sees entries of services it cannot read"
    # the agent reads no entry list (it has its own endpoint)
    c = a.client()
    assert expect(c.request("GET", "/v1/entries"), 200).json["items"] == []
    c.close()
    # one entry: read by its readers, deleted by its writers
    n = mine["name"]
    assert expect(s.get(f"/v1/entries/{n}", token=tok["dev-viewer"]), 200).json == mine
    deny(s.get(f"/v1/entries/{n}", token=tok["ops-admin"]), "user:ops-admin", "entry.get", n)
    deny(s.get(f"/v1/entries/{n}", token=tok["other-ta"]), "user:other-ta", "entry.get", n)
    deny(s.delete(f"/v1/entries/{n}", token=tok["dev-viewer"]), "user:dev-viewer", "entry.delete", n)
    deny(s.delete(f"/v1/entries/{n}", token=tok["ops-admin"]), "user:ops-admin", "entry.delete", n)
    deny(s.delete(f"/v1/entries/{n}", token=tok["root-viewer"]), "user:root-viewer", "entry.delete", n)
    c = a.client()
    deny(c.request("DELETE", f"/v1/entries/{n}"), a.id, "entry.delete", n)
    c.close()
    assert expect(s.get(f"/v1/entries/{n}"), 200).json == mine
    expect(s.delete(f"/v1/entries/{n}", token=tok["dev-admin"]), 200)
    expect(s.delete(f"/v1/entries/{org['name']}", token=tok["ops-admin"]), 200)
    expect(s.get(f"/v1/entries/{n}"), 404)
    expect(s.get("/v1/entries", token=None, source="127.0.0.9"), 401)


# ---- 5. the agent's side ---------------------------------------------------------------------


def test_agent_watches_the_entries_of_its_own_node():
    s = W.s
    a, b = join("watch-a"), join("watch-b")
    e1 = expect(entry("watch-a", WEB, ["unix:uid:1"], ttl="10m"), 201).json
    e2 = expect(entry("watch-b", DB, ["unix:uid:2"]), 201).json
    w = expect(a.get("/v1/agents/self/entries"), 200).json
    assert set(w) == {"revision", "node", "entries", "changed"}, w
    assert w["node"] == "watch-a" and w["changed"] is True, w
    assert w["entries"] == [{"name": e1["name"], "id": WEB, "selectors": ["unix:uid:1"], "ttl": 600}], w
    wb = expect(b.get("/v1/agents/self/entries"), 200).json
    assert [x["name"] for x in wb["entries"]] == [e2["name"]], wb
    # a query naming another node changes nothing
    wx = expect(a.get("/v1/agents/self/entries?node=watch-b"), 200).json
    assert [x["name"] for x in wx["entries"]] == [e1["name"]], wx
    rev = w["revision"]
    assert rev == expect(s.get("/v1/health", token=None), 200).json["revision"]
    # nothing changes: the poll ends after its timeout, unchanged
    t0 = time.monotonic()
    r = expect(a.get(f"/v1/agents/self/entries?since={rev}&timeout=1"), 200).json
    took = time.monotonic() - t0
    assert 0.9 <= took < 3, f"a 1 s poll took {took:.2f} s"
    assert r["changed"] is False and r["revision"] == rev and r["entries"] == w["entries"], r
    # a new entry for its node wakes it within a second
    got = {}

    def poll():
        t = time.monotonic()
        got["r"] = a.get(f"/v1/agents/self/entries?since={rev}&timeout=20")
        got["at"] = time.monotonic()
        got["took"] = got["at"] - t

    th = threading.Thread(target=poll)
    th.start()
    time.sleep(0.4)
    assert not got, "the poll returned before anything changed"
    e3 = expect(entry("watch-a", WEB, ["unix:uid:3", "cgroup:/x"]), 201).json
    t_changed = time.monotonic()
    th.join(10)
    assert "r" in got, "the poll did not return"
    body = expect(got["r"], 200).json
    assert got["at"] - t_changed < 1.0, f"the poll returned {got['at'] - t_changed:.2f} s after the change"
    assert got["took"] >= 0.35
    assert body["changed"] is True and body["revision"] > rev, body
    assert {x["name"] for x in body["entries"]} == {e1["name"], e3["name"]}, body
    assert e2["name"] not in {x["name"] for x in body["entries"]}
    # bad parameters
    for q in ("since=x", "since=-1", "since=" + "9" * 30, "timeout=0", "timeout=61", "timeout=abc",
              "since=%zz"):
        expect(a.get(f"/v1/agents/self/entries?{q}"), 400, "invalid")
    # only agents have a "self": people, workloads and nobody are refused
    deny(s.get("/v1/agents/self/entries"), "admin:bootstrap", "agent.entries", "self")
    deny(s.get("/v1/agents/self/entries", token=W.tok["root-viewer"]), "user:root-viewer",
         "agent.entries", "self")
    web = svid(s.dir / "ca", WEB, W.tmp, "web-watch")
    c = Client(s, token=None, cert=web)
    deny(c.request("GET", "/v1/agents/self/entries"), WEB, "agent.entries", "self")
    c.close()
    # an agent ID the CA issues outside of a join (no agent record): refused
    ghost = svid(s.dir / "ca", f"spiffe://{TD}/zt/agent/ghost", W.tmp, "ghost")
    c = Client(s, token=None, cert=ghost)
    deny(c.request("GET", "/v1/agents/self/entries"), f"spiffe://{TD}/zt/agent/ghost",
         "agent.entries", "self")
    c.close()
    expect(s.get("/v1/agents/self/entries", token=None, source="127.0.0.9"), 401)


def test_agent_svids_for_itself_and_its_entries():
    ag = join("svid-c")
    expect(entry("svid-c", WEB, ["unix:uid:500"], ttl="2m"), 201)
    expect(entry("svid-d", DB, ["unix:uid:501"]), 201)          # another node's entry
    other = join("svid-other")

    def ask(body, key=None):
        key = key or new_key()
        _, csr = make_csr(key)
        return key, ag.post("/v1/svids", dict(body, csr=csr))

    # renewal: its own ID, named or not
    for body in ({}, {"id": ag.id}):
        k, r = ask(body)
        expect(r, 201)
        assert r.json["id"] == ag.id, r
        leaf = leaf_of(r.json["chain"])
        assert uris(leaf) == [ag.id] and pub_bytes(leaf.public_key()) == pub_bytes(k.public_key())
        zt_verify_svid(r.json["chain"], ag.id, "renew")
    # an ID its node's entry names: issued, its TTL capped by the entry's (2m)
    for ttl, want in ((None, 120), ("1h", 120), ("24h", 120), ("1m", 60), ("2m", 120)):
        k, r = ask({"id": WEB} if ttl is None else {"id": WEB, "ttl": ttl})
        expect(r, 201)
        leaf = leaf_of(r.json["chain"])
        assert uris(leaf) == [WEB] and pub_bytes(leaf.public_key()) == pub_bytes(k.public_key())
        left = lifetime_left(leaf)
        assert want - 10 <= left <= want + 2, f"ttl {ttl}: the SVID lives {left:.0f} s, expected {want}"
        zt_verify_svid(r.json["chain"], WEB, "entry-web")
    log = audit_by_rid()
    e = log[r.rid]
    assert (e["actor"], e["action"], e["target"], e["decision"]) == (ag.id, "svid.issue", WEB, "allow"), e
    # IDs no entry of its node names: 403, even when another node has one
    for ident in (DB, FAR, f"spiffe://{TD}/ns/dev/sa/nosuch", other.id, f"spiffe://{TD}/zt/agent/svid-d",
                  f"spiffe://{TD}/zt/server", f"spiffe://{TD}/zt/agent/svid-c/x"):
        deny(ask({"id": ident})[1], ag.id, "svid.issue", ident)
    # the other agent cannot use svid-c's entry
    deny(other.post("/v1/svids", {"id": WEB, "csr": make_csr()[1]}), other.id, "svid.issue", WEB)
    # malformed asks: 400
    for body in ({"id": "spiffe://other.org/ns/dev/sa/web"}, {"id": "not an id"}, {"id": 5},
                 {"id": WEB, "ttl": "30s"}, {"id": WEB, "ttl": "25h"}, {"id": WEB, "extra": 1}):
        expect(ask(body)[1], 400, "invalid")
    expect(ag.post("/v1/svids", {"id": WEB, "csr": "A" * 20000}), 400, "invalid")
    expect(ag.post("/v1/svids", {"id": WEB, "csr": tampered_csr()}), 400, "invalid")
    expect(ag.post("/v1/svids", {"id": WEB}), 400, "invalid")


def test_eviction_cuts_the_agent_off():
    s = W.s
    a = join("evict-e")
    expect(entry("evict-e", WEB, ["unix:uid:600"]), 201)
    expect(a.post("/v1/svids", {"id": WEB, "csr": make_csr()[1]}), 201)
    rev = expect(a.get("/v1/agents/self/entries"), 200).json["revision"]
    got = {}

    def poll():
        got["r"] = a.get(f"/v1/agents/self/entries?since={rev}&timeout=20")
        got["at"] = time.monotonic()

    th = threading.Thread(target=poll)
    th.start()
    time.sleep(0.3)
    expect(s.delete("/v1/agents/evict-e"), 200)
    t_evicted = time.monotonic()
    th.join(10)
    assert "r" in got, "the pending poll did not return"
    deny(got["r"], a.id, "agent.entries", "self")
    assert got["at"] - t_evicted < 1.5
    # its certificate is still valid: the TLS handshake works, the API refuses it
    deny(a.get("/v1/agents/self/entries"), a.id, "agent.entries", "self")
    deny(a.post("/v1/svids", {"csr": make_csr()[1]}), a.id, "svid.issue", a.id)
    deny(a.post("/v1/svids", {"id": a.id, "csr": make_csr()[1]}), a.id, "svid.issue", a.id)
    deny(a.post("/v1/svids", {"id": WEB, "csr": make_csr()[1]}), a.id, "svid.issue", WEB)
    expect(s.get("/v1/agents/evict-e"), 404)
    expect(s.delete("/v1/agents/evict-e"), 404)
    # the name joins again with a new token; the new agent works
    b = join("evict-e", "evict-e-2")
    assert expect(b.get("/v1/agents/self/entries"), 200).json["node"] == "evict-e"
    expect(b.post("/v1/svids", {"csr": make_csr()[1]}), 201)


def test_an_evicted_agents_svid_stays_refused_after_the_name_joins_again():
    s = W.s
    old = join("evict-f")
    expect(s.delete("/v1/agents/evict-f"), 200)
    deny(old.get("/v1/agents/self/entries"), old.id, "agent.entries", "self")
    new = join("evict-f", "evict-f-2")
    expect(new.get("/v1/agents/self/entries"), 200)
    # the evicted key must stay cut off
    r = old.get("/v1/agents/self/entries")
    if r.status == 403:
        W.denies.append((r.rid, old.id, "agent.entries", "self"))
    assert r.status == 403, f"the evicted agent's SVID reads the entries again: {r!r}"
    r = old.post("/v1/svids", {"csr": make_csr()[1]})
    if r.status == 403:
        W.denies.append((r.rid, old.id, "svid.issue", old.id))
    assert r.status == 403, f"the evicted agent's SVID renews itself again: {r!r}"


@pytest.mark.parametrize("node", ["a" * 63, "n.o-d.e"], ids=["63-chars", "dots"])
def test_every_node_name_that_can_join_can_be_read_and_evicted(node):
    s = W.s
    r = expect(s.post("/v1/jointokens", {"node": node}), 201)
    _, csr = make_csr()
    expect(attest(r.json["token"], csr), 201)
    assert node in [x["name"] for x in expect(s.get("/v1/agents"), 200).json["items"]]
    g = s.get(f"/v1/agents/{node}")
    assert g.status == 200, f"GET /v1/agents/<{len(node)} chars>: {g!r}"
    d = s.delete(f"/v1/agents/{node}")
    assert d.status == 200, f"DELETE /v1/agents/<{len(node)} chars>: {d!r}"
    expect(attest(join_token(node), make_csr()[1]), 201)


def test_an_entry_name_of_another_form_is_404():
    s = W.s
    for path in ("/v1/entries/abc", "/v1/entries/" + "0" * 31, "/v1/entries/" + "0" * 33):
        expect(s.get(path), 404, "not-found")
        expect(s.delete(path), 404, "not-found")


def test_entry_create_is_audited_with_its_id_node_and_selectors():
    made = {}
    for i, node in enumerate(("audit-n", "audit-node-" + "x" * 40, "a" * 63)):
        sels = [f"unix:uid:{i}", "cgroup:/audit"]
        r = expect(entry(node, WEB, sels), 201)
        made[r.rid] = (r.json["name"], node, sorted(sels))
    log = audit_by_rid()
    wrong = []
    for rid, (name, node, sels) in made.items():
        e = log[rid]
        got = (e["action"], e["target"], e.get("details"))
        want = ("entry.create", name, {"id": WEB, "node": node, "selectors": sels})
        if got != want:
            wrong.append(f"{got!r:.300} != {want!r:.300}")
    assert not wrong, "entry.create audit entries:\n" + "\n".join(wrong)


# ---- 6. the commands -------------------------------------------------------------------------


def run_zt(*args, token=None, server=None):
    """zt against the module's server (or another one: its 403s are not W's to count)."""
    srv = server or W.s
    env = {k: v for k, v in os.environ.items() if not k.startswith("ZT_")}
    env["HOME"] = str(W.tmp)
    env.setdefault("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=0")
    env.update(ZT_SERVER=srv.url, ZT_CA_FILE=str(srv.dir / "bundle.pem"),
               ZT_TOKEN=token or srv.token)
    p = subprocess.run([ZT, *map(str, args)], capture_output=True, text=True, env=env, timeout=60)
    m = SANITIZER_RE.search(p.stderr)
    assert not m, f"sanitizer report from zt {args}:\n{p.stderr[max(0, m.start() - 300):][:6000]}"
    if srv is W.s:
        for m in re.finditer(r"HTTP 403 [a-z-]+: .* \(request ([A-Za-z0-9_.:-]+)\)", p.stderr):
            W.cli_rids.append(m.group(1))
    return p


def cli_json(p, what):
    assert p.returncode == 0, f"{what}: exit {p.returncode}\n{p.stdout}\n{p.stderr}"
    return json.loads(p.stdout)


def test_cli_join_token_node_and_entry_commands():
    s = W.s
    # join-token create
    t0 = time.time()
    j = cli_json(run_zt("join-token", "create", "--node", "cli-node", "--ttl", "1h"), "join-token create")
    W.cli_changes += 1
    assert JOIN_RE.fullmatch(j["token"]) and j["node"] == "cli-node", j
    assert abs(utc(j["expires"]) - (t0 + 3600)) < 5, j
    key, csr = make_csr()
    r = expect(attest(j["token"], csr), 201)
    a = write_agent("cli-node", key, r)
    # node list / get
    items = cli_json(run_zt("node", "list"), "node list")["items"]
    assert "cli-node" in [x["name"] for x in items]
    g = cli_json(run_zt("node", "get", "cli-node"), "node get")
    assert g["id"] == a.id and g["serial"] == r.json["serial"], g
    # entry create / list / get
    e = cli_json(run_zt("entry", "create", "--id", WEB, "--node", "cli-node", "--selector", "unix:uid:0",
                        "--selector", "cgroup:/cli", "--selector", "unix:uid:0", "--ttl", "5m"),
                 "entry create")
    W.cli_changes += 1
    assert NAME_RE.fullmatch(e["name"]) and e["selectors"] == ["cgroup:/cli", "unix:uid:0"] and \
        e["ttl"] == 300 and e["node"] == "cli-node", e
    assert expect(s.get(f"/v1/entries/{e['name']}"), 200).json == e
    p = run_zt("entry", "create", "--id", WEB, "--node", "cli-node", "--selector", "cgroup:/cli",
               "--selector", "unix:uid:0")
    assert p.returncode == 1 and "HTTP 409" in p.stderr, (p.stdout, p.stderr)
    ls = cli_json(run_zt("entry", "list", "--node", "cli-node"), "entry list --node")["items"]
    assert [x["name"] for x in ls] == [e["name"]], ls
    assert e["name"] in [x["name"] for x in cli_json(run_zt("entry", "list"), "entry list")["items"]]
    assert cli_json(run_zt("entry", "get", e["name"]), "entry get") == e
    # the agent sees it
    w = expect(a.get("/v1/agents/self/entries"), 200).json
    assert [x["name"] for x in w["entries"]] == [e["name"]], w
    # a refused command: 403, exit 1, and on the log (checked at the end)
    p = run_zt("join-token", "create", "--node", "cli-denied", token=W.tok["root-viewer"])
    assert p.returncode == 1 and "HTTP 403" in p.stderr, (p.stdout, p.stderr)
    p = run_zt("entry", "create", "--id", DB, "--node", "cli-node", "--selector", "unix:uid:1",
               token=W.tok["dev-admin"])
    assert p.returncode == 1 and "HTTP 403" in p.stderr, (p.stdout, p.stderr)
    p = run_zt("node", "evict", "cli-node", token=W.tok["root-sec"])
    assert p.returncode == 1 and "HTTP 403" in p.stderr, (p.stdout, p.stderr)
    assert len(W.cli_rids) == 3, W.cli_rids
    # usage errors: exit 2, nothing sent
    for args in (("entry", "create", "--id", WEB, "--node", "cli-node"), ("node", "get"),
                 ("node", "frob", "x"), ("join-token", "create"), ("entry", "get"),
                 ("entry", "list", "--selector", "unix:uid:0")):
        p = run_zt(*args)
        assert p.returncode == 2, f"zt {' '.join(args)}: exit {p.returncode}\n{p.stderr}"
    # entry delete / node evict
    cli_json(run_zt("entry", "delete", e["name"]), "entry delete")
    W.cli_changes += 1
    expect(s.get(f"/v1/entries/{e['name']}"), 404)
    p = run_zt("entry", "get", e["name"])
    assert p.returncode == 1 and "HTTP 404" in p.stderr, (p.stdout, p.stderr)
    ev = cli_json(run_zt("node", "evict", "cli-node"), "node evict")
    W.cli_changes += 1
    assert ev["node"] == "cli-node", ev
    expect(s.get("/v1/agents/cli-node"), 404)
    deny(a.get("/v1/agents/self/entries"), a.id, "agent.entries", "self")
    p = run_zt("node", "get", "cli-node")
    assert p.returncode == 1 and "HTTP 404" in p.stderr, (p.stdout, p.stderr)


def test_expired_join_token_is_the_same_401():
    """The token made 10 s into its life by the fixture, never used, has expired by now."""
    wait = W.expiring_at + 1.5 - time.time()
    if wait > 0:
        time.sleep(wait)
    _, csr = make_csr()
    r = expect(attest(W.expiring, csr, "127.0.0.8"), 401, "unauthenticated")
    if GENERIC_401 is not None:
        assert r.json["error"]["message"] == GENERIC_401, \
            f"an expired token is told apart: {r.json['error']['message']!r} vs {GENERIC_401!r}"
    expect(W.s.get("/v1/agents/expiring"), 404)



# ---- 6b. lists come a page at a time -----------------------------------------------------------
#
# On a server of their own (the module's lists stay small, and its audit count is not theirs):
# more entries than the largest page, agents and role bindings walked with small pages.

BAD_LIMITS = ["0", "1001", "x", "-1", "", "1.5", "+5", "%31%30%30%31", "9" * 40, "0x10"]
BAD_AFTERS = ["%zz", "a%20b", "a" * 300, "%2Fx", "a..b", "%00"]


@pytest.fixture(scope="module")
def paged(tmp_path_factory):
    """A second --dev server with demo/default/ops/db, and a viewer of demo/default/dev."""
    s = Server(tmp_path_factory.mktemp("paged"), dev=True).start()
    expect(s.post("/v1/orgs/demo/tenants/default/workspaces", {"name": "ops"}), 201)
    expect(s.post("/v1/orgs/demo/tenants/default/workspaces/ops/services", {"name": "db"}), 201)
    viewer = expect(s.post("/v1/tokens", {"principal": "user:pg-viewer"}), 201).json["token"]
    expect(s.post("/v1/rolebindings", {"principal": "user:pg-viewer", "role": "viewer",
                                       "scope": "demo/default/dev"}), 201)
    yield {"s": s, "viewer": viewer}
    s.finish()


def walk(s, path, limit, token=ADMIN, **query):
    """Every page of a list through its "next" cursors: (items, page sizes). Checks the
    convention on each page: next is there exactly when the page is full, and is the name of
    the page's last item."""
    items, sizes, after = [], [], None
    for _ in range(5000):
        q = dict(query, limit=limit)
        if after is not None:
            q["after"] = after
        page = expect(s.get(f"{path}?{urllib.parse.urlencode(q)}", token=token), 200).json
        assert set(page) <= {"items", "next"} and isinstance(page["items"], list), page
        n = len(page["items"])
        assert n <= limit, f"{path}: {n} items on a page of {limit}"
        sizes.append(n)
        items += page["items"]
        if n < limit:
            assert "next" not in page, f"{path}: a short page ({n} of {limit}) with a next: {page['next']}"
            return items, sizes
        assert page.get("next") == page["items"][-1]["name"], \
            f"{path}: a full page's next is its last item's name, not {page.get('next')!r}"
        after = page["next"]
    raise AssertionError(f"{path}: no last page after 5000")


def assert_bad_page_queries(s, path, token=ADMIN):
    """Limits out of 1-1000 or not numbers, and afters that are no name: 400 invalid, naming
    the parameter."""
    for bad in BAD_LIMITS:
        r = expect(s.get(f"{path}limit={bad}", token=token), 400, "invalid")
        assert "limit" in r.json["error"]["message"], r
    for bad in BAD_AFTERS:
        r = expect(s.get(f"{path}after={bad}", token=token), 400, "invalid")
        assert "after" in r.json["error"]["message"], r
    # the edges of the range are fine
    for good in ("1", "1000"):
        expect(s.get(f"{path}limit={good}", token=token), 200)


def names_of(items):
    return [x["name"] for x in items]


def post_entries(s, bodies, threads=8):
    """POSTs the entries (in parallel, one connection per thread): their objects, in order."""
    out = [None] * len(bodies)
    errors = []

    def work(k):
        c = s.client()
        try:
            for i in range(k, len(bodies), threads):
                r = c.request("POST", "/v1/entries", bodies[i])
                if r.status != 201:
                    errors.append(repr(r))
                    return
                out[i] = r.json
        finally:
            c.close()

    ts = [threading.Thread(target=work, args=(k,)) for k in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert not errors, errors[:3]
    return out


def test_entries_list_pages_past_a_thousand(paged):
    """1005 entries of node bulk (services dev/web and ops/db by turns) and 3 of node few:
    walked in pages of 1000, of 7, filtered by node and by what a viewer may read: every entry
    once, in name order, and no page short but the last."""
    s = paged["s"]
    t0 = time.monotonic()
    bulk = post_entries(s, [{"id": WEB if i % 2 else DB, "node": "bulk",
                             "selectors": [f"unix:uid:{i}"]} for i in range(1005)])
    few = post_entries(s, [{"id": WEB, "node": "few", "selectors": [f"unix:gid:{i}"]}
                           for i in range(3)])
    made = time.monotonic() - t0
    every = sorted(names_of(bulk + few))
    assert len(set(every)) == 1008, "entry names collide"
    # pages of the largest size: 1000, then the rest
    items, sizes = walk(s, "/v1/entries", 1000)
    assert sizes == [1000, 8], sizes
    assert names_of(items) == every, "not every entry once, in name order"
    by_name = {e["name"]: e for e in bulk + few}
    assert all(x == by_name[x["name"]] for x in items), "a listed entry differs from what was made"
    # no limit: the first 100 and a next
    first = expect(s.get("/v1/entries"), 200).json
    assert names_of(first["items"]) == every[:100] and first["next"] == every[99], \
        (len(first["items"]), first.get("next"))
    # a page from the middle
    mid = expect(s.get(f"/v1/entries?limit=50&after={every[500]}"), 200).json
    assert names_of(mid["items"]) == every[501:551] and mid["next"] == every[550]
    # after a name that is no entry: from the next one on
    gap = every[700][:31]  # a prefix: sorts just before every[700]
    assert every[699] < gap < every[700], (every[699], gap, every[700])
    assert names_of(expect(s.get(f"/v1/entries?limit=2&after={gap}"), 200).json["items"]) == \
        every[700:702]
    # by node, in small pages
    bulk_names = sorted(names_of(bulk))
    items, sizes = walk(s, "/v1/entries", 7, node="bulk")
    assert names_of(items) == bulk_names and sizes == [7] * 143 + [4], sizes[-3:]
    items, sizes = walk(s, "/v1/entries", 1000, node="few")
    assert names_of(items) == sorted(names_of(few)) and sizes == [3]
    # what a viewer of demo/default/dev reads: the web entries only, yet full pages
    web = sorted(e["name"] for e in bulk + few if e["id"] == WEB)
    items, sizes = walk(s, "/v1/entries", 9, token=paged["viewer"])
    assert names_of(items) == web, "the viewer's pages are not exactly the web entries"
    assert all(n == 9 for n in sizes[:-1]) and sizes[-1] < 9, sizes
    items, _ = walk(s, "/v1/entries", 1000, token=paged["viewer"], node="bulk")
    assert names_of(items) == sorted(e["name"] for e in bulk if e["id"] == WEB)
    # a page that ends exactly at the last entry has a next; the page after it is empty
    full = expect(s.get("/v1/entries?node=few&limit=3"), 200).json
    assert full["next"] == sorted(names_of(few))[-1], full
    assert expect(s.get(f"/v1/entries?node=few&limit=3&after={full['next']}"), 200).json == \
        {"items": []}
    # after the end: an empty page, no next
    for past in ("f" * 32, every[-1], "zzz"):
        assert expect(s.get(f"/v1/entries?after={past}"), 200).json == {"items": []}, past
    assert_bad_page_queries(s, "/v1/entries?")
    assert_bad_page_queries(s, "/v1/entries?node=bulk&")
    # the command prints every one of them
    got = cli_json(run_zt("entry", "list", server=s), "entry list")
    assert set(got) == {"items"} and names_of(got["items"]) == every, len(got["items"])
    got = cli_json(run_zt("entry", "list", "--node", "bulk", server=s), "entry list --node")
    assert names_of(got["items"]) == bulk_names
    got = cli_json(run_zt("entry", "list", server=s, token=paged["viewer"]), "entry list (viewer)")
    assert names_of(got["items"]) == web
    assert made < 60, f"making 1008 entries took {made:.1f} s"


def join_on(s, node):
    """An agent of node on server s (join token, CSR, attest): its attest answer."""
    tok = expect(s.post("/v1/jointokens", {"node": node}), 201).json["token"]
    _, csr = make_csr()
    return expect(s.post("/v1/agents/attest", {"token": tok, "csr": csr}, token=None), 201).json


def test_agents_list_pages(paged):
    s = paged["s"]
    nodes = ["pg-a", "pg-b", "pg-c.x", "pg-d", "pg-e"]
    for n in reversed(nodes):
        join_on(s, n)
    items, sizes = walk(s, "/v1/agents", 2)
    assert names_of(items) == nodes and sizes == [2, 2, 1], (names_of(items), sizes)
    items, sizes = walk(s, "/v1/agents", 5)
    assert names_of(items) == nodes and sizes == [5, 0], sizes
    assert names_of(walk(s, "/v1/agents", 1000)[0]) == nodes
    page = expect(s.get("/v1/agents?limit=3&after=pg-b"), 200).json
    assert names_of(page["items"]) == ["pg-c.x", "pg-d", "pg-e"] and page["next"] == "pg-e", page
    for past in ("pg-e", "pg-f", "zzz"):
        assert expect(s.get(f"/v1/agents?after={past}"), 200).json == {"items": []}, past
    assert_bad_page_queries(s, "/v1/agents?")
    # who may not list agents is refused before the query is looked at
    expect(s.get("/v1/agents?limit=0", token=paged["viewer"]), 403, "forbidden")
    got = cli_json(run_zt("node", "list", server=s), "node list")
    assert set(got) == {"items"} and names_of(got["items"]) == nodes, got


def test_rolebindings_list_pages(paged):
    s = paged["s"]
    mine = [expect(s.post("/v1/rolebindings", {"principal": f"user:pg-{i}", "role": "viewer",
                                               "scope": "demo/default"}), 201).json["name"]
            for i in range(5)]
    mine.append(expect(s.post("/v1/rolebindings", {"principal": "user:pg-deep", "role": "viewer",
                                                   "scope": "demo/default/ops"}), 201).json["name"])
    items, sizes = walk(s, "/v1/rolebindings", 2, scope="demo/default")
    assert names_of(items) == sorted(mine + [paged_viewer_binding(s)]), names_of(items)
    assert all(n == 2 for n in sizes[:-1]) and sizes[-1] < 2, sizes
    # all of them: the same as one page of 1000, every name once, in order
    every, _ = walk(s, "/v1/rolebindings", 3)
    assert names_of(every) == sorted(set(names_of(every))), "not once each, in name order"
    assert names_of(every) == names_of(walk(s, "/v1/rolebindings", 1000)[0])
    assert set(mine) < set(names_of(every)) and "bootstrap-admin" in names_of(every)
    assert expect(s.get("/v1/rolebindings?after=zzz"), 200).json == {"items": []}
    assert expect(s.get("/v1/rolebindings?scope=demo/default/ops&after=" + max(mine)), 200).json == \
        {"items": []}
    assert_bad_page_queries(s, "/v1/rolebindings?")
    assert_bad_page_queries(s, "/v1/rolebindings?scope=demo&")
    got = cli_json(run_zt("role", "list", "--scope", "demo/default", server=s), "role list")
    assert names_of(got["items"]) == names_of(items), got


def paged_viewer_binding(s):
    """The name of the fixture's binding of user:pg-viewer (at demo/default/dev)."""
    got = [x["name"] for x in walk(s, "/v1/rolebindings", 1000, scope="demo/default/dev")[0]
           if x["principal"] == "user:pg-viewer"]
    assert len(got) == 1, got
    return got[0]


# ---- 7. the audit log ------------------------------------------------------------------------


def test_zz_the_audit_log_holds_every_change_and_refusal_and_verifies():
    s = W.s
    entries = s.audit_entries()
    size = len(entries)
    changes = s.changes - W.changes0 + W.cli_changes
    denials = s.denials - W.denials0 + len(W.cli_rids)
    assert size == W.size0 + changes + denials, (
        f"the audit log has {size} entries; expected {W.size0} at the start + {changes} changes + "
        f"{denials} refusals")
    by_rid = {}
    for e in entries:
        by_rid.setdefault(e["request_id"], []).append(e)
    # every 403 answered, by its request ID, as a denial
    missing = []
    for r in s.responses:
        if r.status == 403:
            got = [e for e in by_rid.get(r.rid, []) if e["decision"] == "deny"]
            if len(got) != 1:
                missing.append(f"{r.method} {r.path} ({r.rid}): {by_rid.get(r.rid)}")
    for rid in W.cli_rids:
        if len([e for e in by_rid.get(rid, []) if e["decision"] == "deny"]) != 1:
            missing.append(f"zt command 403 ({rid}): {by_rid.get(rid)}")
    assert not missing, "403s not on the audit log as one denial:\n" + "\n".join(missing)
    # and as what they were
    wrong = []
    for rid, actor, action, target in W.denies:
        e = by_rid[rid][0]
        if (e["actor"], e["action"], e["target"]) != (actor, action, target):
            wrong.append(f"{rid}: {(e['actor'], e['action'], e['target'])} != {(actor, action, target)}")
    assert not wrong, "\n".join(wrong)
    # every join on the log is by a join token, every token made by the admin
    for e in entries:
        if e["action"] == "agent.join":
            assert re.fullmatch(r"jointoken:[0-9a-f]{16}", e["actor"]) and \
                e["target"].startswith(f"spiffe://{TD}/zt/agent/"), e
        if e["action"] == "jointoken.create" and e["decision"] == "allow":
            assert e["actor"] == "admin:bootstrap", e
    # the server stops cleanly, and the log verifies offline
    s.finish()
    adir = s.dir / "audit"
    p = subprocess.run([ZT, "audit", "verify", "--dir", str(adir), "--key", str(adir / "log.pub")],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, f"zt audit verify: {p.stdout}\n{p.stderr}"
    p = subprocess.run([ZT, "audit", "verify", "--dir", str(adir)], capture_output=True, text=True,
                       timeout=60)
    assert p.returncode == 0, f"zt audit verify (no key): {p.stdout}\n{p.stderr}"
