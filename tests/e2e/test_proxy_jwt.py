"""End-to-end tests of end-user tokens at `zt proxy` (RequestAuthentication; docs/proxy.md
"End-user tokens", docs/policy.md "End-user tokens (RequestAuthentication)").

A real proxy with an inbound HTTP listener, test_proxy_http.py's recording upstream (every
byte it receives is kept, so "never reached the service" is checked, not assumed), clients
over TLS with the client SVID. Tokens are minted by panva's `jose` and issued by a real
OpenID Provider (`oidc-provider`), both through tests/e2e/jwtpeers.py; keys are served by the
provider or by a small JWKS server here whose keys the tests rotate and which they can take
down. Every process and socket is closed by a fixture or a finally block; files live under
pytest's tmp_path; ports come from the kernel."""
import base64
import http.server
import json
import threading
import time

import pytest

import jwtpeers
from proxy_helpers import _flow, addr, free_port, wait_until
from test_proxy_http import (HTTP_DEFAULTS, TD, Conn, get, http_in, pki,  # noqa: F401
                             scrape, ssl_ctx, start_proxy, upstream)

pytestmark = pytest.mark.skipif(not jwtpeers.node_available(),
                                reason="node and tests/interop/node packages (make deps) are needed")

ISS = "https://idp.zt.test"
AUD = "orders.zt.test"
CLIENT = "example.org/ns/default/sa/client"
SERVICE = "spiffe://example.org/ns/default/sa/server"

ORG = """\
apiVersion: zt.dev/v1
kind: Organization
metadata: {name: acme}
spec:
  trustDomain: example.org
  tenants:
    - name: t
      workspaces:
        - {name: default, services: [server, client]}
"""


def authz(iss):
    """The client's users: alice on /api/*, anyone in group admins on /admin-area/*, anybody
    (token or not) on /public/*, callers without a token on /anon/*."""
    return f"""\
---
apiVersion: zt.dev/v1
kind: AuthorizationPolicy
metadata: {{name: users, scope: acme/t/default}}
spec:
  selector: {{services: [server]}}
  action: ALLOW
  rules:
    - from: [{{source: {{principals: ["{CLIENT}"], requestPrincipals: ["{iss}/alice"]}}}}]
      to: [{{operation: {{paths: ["/api/*"]}}}}]
    - from: [{{source: {{requestPrincipals: ["*"]}}}}]
      to: [{{operation: {{paths: ["/admin-area/*"]}}}}]
      when: [{{key: "request.auth.claims[groups]", values: ["admins"]}}]
    - to: [{{operation: {{paths: ["/public/*"]}}}}]
    - from: [{{source: {{notRequestPrincipals: ["*"]}}}}]
      to: [{{operation: {{paths: ["/anon/*"]}}}}]
"""


def reqauthn(*rules, name="idp", scope="acme/t/default"):
    """A zt RequestAuthentication for the server (JSON is YAML)."""
    return "---\n" + json.dumps({
        "apiVersion": "zt.dev/v1", "kind": "RequestAuthentication",
        "metadata": {"name": name, "scope": scope},
        "spec": {"selector": {"services": ["server"]}, "jwtRules": list(rules)}}) + "\n"


def now():
    return int(time.time())


def claims(sub="alice", iss=ISS, aud=AUD, **kw):
    c = {"iss": iss, "sub": sub, "aud": aud, "iat": now(), "exp": now() + 300}
    c.update(kw)
    return c


# ---- a JWKS server the tests control ------------------------------------------------------


class JwksServer:
    """Serves .jwks ({"keys": [...]}) at any path; counts fetches; .status other than 200
    makes it answer that status instead."""

    def __init__(self, keys=()):
        self.jwks = {"keys": list(keys)}
        self.status = 200
        self.hits = 0
        self.lock = threading.Lock()
        srv = self

        class H(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - the stdlib's name
                with srv.lock:
                    srv.hits += 1
                    status, body = srv.status, json.dumps(srv.jwks).encode()
                if status != 200:
                    body = b"unavailable"
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *a):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/jwks.json"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def set_keys(self, keys):
        with self.lock:
            self.jwks = {"keys": list(keys)}

    def count(self):
        with self.lock:
            return self.hits

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)


@pytest.fixture
def jwks_server():
    servers = []

    def make(keys=()):
        s = JwksServer(keys)
        servers.append(s)
        return s

    try:
        yield make
    finally:
        for s in servers:
            s.close()


class Keys:
    """Signing keys kept in tmp_path (one file per kid), tokens minted by jose with them."""

    def __init__(self, d):
        self.d = d
        self.public = {}

    def mint(self, kid, c, alg="ES256", header=None, key_kid=None):
        """A token signed by key `key_kid` (default: kid) and naming kid in its header."""
        t = jwtpeers.mint(alg, c, kid=kid, header=header,
                          key_file=str(self.d / f"key-{key_kid or kid}-{alg}.json"))
        if key_kid is None:
            self.public[kid] = t["jwks"]["keys"][0]
        return t["token"]

    def jwks(self, *kids):
        return [self.public[k] for k in kids]


@pytest.fixture
def keys(tmp_path):
    return Keys(tmp_path)


# ---- the proxy and its clients ------------------------------------------------------------


@pytest.fixture
def jwt_proxy(start_proxy, upstream, tmp_path):
    """jwt_proxy(policy_text, jwt=None, admin=False) -> (Proxy, port, admin_port): an inbound
    HTTP listener (identity server) forwarding to the recording upstream, with the policy
    folder written from policy_text."""
    n = [0]

    def start(policy_text, jwt=None, admin=False):
        n[0] += 1
        pol = tmp_path / f"pol-{n[0]}"
        pol.mkdir()
        (pol / "policy.yaml").write_text(policy_text)
        port, aport = free_port(), (free_port() if admin else None)
        lines = ["apiVersion: zt.dev/v1", "kind: ProxyConfig", "spec:", f"  trustDomain: {TD}",
                 "  identity: {cert: server.pem, key: server.key, bundle: bundle.pem}",
                 f"  policy: {json.dumps(str(pol))}", "  limits: {drainTimeout: 1s}",
                 f"  http: {_flow(HTTP_DEFAULTS)}"]
        if jwt:
            lines.append(f"  jwt: {_flow(jwt)}")
        if aport:
            lines.append(f"  admin: {_flow({'listen': addr(aport)})}")
        lines += ["  listeners:", f"    - {_flow(http_in(port, upstream.port))}"]
        px = start_proxy("\n".join(lines) + "\n", "jwt-proxy")
        return px, port, aport

    return start


@pytest.fixture(scope="module")
def client_ctx(pki):
    return ssl_ctx(pki)


def send(port, ctx, path="/api/orders", token=None, scheme="Bearer", headers=()):
    """One request on its own connection: the response."""
    extra = b""
    if token is not None:
        extra += f"Authorization: {scheme} {token}\r\n".encode()
    for k, v in headers:
        extra += f"{k}: {v}\r\n".encode()
    with Conn(port, ctx) as c:
        c.send(get(path, extra=extra))
        r = c.response()
    assert r is not None, f"no response to {path}"
    return r


def assert_401(r, what):
    assert r.status == 401, (what, r)
    assert r.get("www-authenticate") == 'Bearer error="invalid_token"', (what, r)
    rid = r.get("x-request-id")
    assert r.body == f"Unauthorized: invalid token (request {rid})\n".encode(), (what, r)


def upstream_headers(req):
    return {k.lower(): v for k, v in req.headers}


def refused_lines(px):
    return [x for x in px.lines() if x.get("msg") == "token refused"]


# ---- 1. who the token says, and what the policy makes of it --------------------------------


def test_request_principal_decides(jwt_proxy, jwks_server, keys, upstream, client_ctx):
    alice = keys.mint("k1", claims("alice"))
    bob = keys.mint("k1", claims("bob"))
    srv = jwks_server(keys.jwks("k1"))
    px, port, aport = jwt_proxy(ORG + authz(ISS) + reqauthn(
        {"issuer": ISS, "audiences": [AUD], "jwksUri": srv.url}), admin=True)
    assert srv.count() == 1  # fetched before the proxy took its first request

    r = send(port, client_ctx, token=alice)
    assert r.status == 200, r
    reqs = upstream.wait_requests(1)
    assert [q.target for q in reqs] == ["/api/orders"], reqs
    # the token is not forwarded by default (forwardOriginalToken: false)
    assert "authorization" not in upstream_headers(reqs[0]), reqs[0]
    line = px.wait_request(lambda x: x["status"] == "200")
    assert line["request_principal"] == f"{ISS}/alice", line
    assert line["decision"] == "allow" and line["policy"] == "acme/t/default/users", line

    # bob's token is good, but the policy wants alice: 403 from the policy, not 401
    r = send(port, client_ctx, token=bob)
    assert r.status == 403, r
    line = px.wait_request(lambda x: x["status"] == "403")
    assert line["request_principal"] == f"{ISS}/bob" and line["decision"] == "deny", line
    # no token: the policy decides without a request principal
    r = send(port, client_ctx)
    assert r.status == 403, r
    r = send(port, client_ctx, path="/anon/page")
    assert r.status == 200, r
    # a principal is not anonymous
    r = send(port, client_ctx, path="/anon/page", token=alice)
    assert r.status == 403, r
    time.sleep(0.1)
    assert [q.target for q in upstream.reqs()] == ["/api/orders", "/anon/page"], upstream.reqs()
    m, _ = scrape(aport)
    assert m['zt_proxy_jwt_valid_total{listener="in"}'] == 3, m
    assert m[f'zt_proxy_jwks_keys{{source="uri:{srv.url}"}}'] == 1, m
    assert m[f'zt_proxy_jwks_fetches_total{{source="uri:{srv.url}",result="ok"}}'] == 1, m
    assert not refused_lines(px)


# ---- 2. tokens that fail a check: 401, and the service never sees them ---------------------


def test_bad_tokens_get_401_and_never_reach_the_service(jwt_proxy, jwks_server, keys, upstream,
                                                        client_ctx):
    good = keys.mint("k1", claims("alice"))
    bad = {
        "expired": keys.mint("k1", claims("alice", iat=now() - 7200, exp=now() - 3600)),
        "not yet valid": keys.mint("k1", claims("alice", nbf=now() + 3600)),
        "wrong audience": keys.mint("k1", claims("alice", aud="other.zt.test")),
        "unknown issuer": keys.mint("k1", claims("alice", iss="https://evil.zt.test")),
        "no issuer": keys.mint("k1", {k: v for k, v in claims("alice").items() if k != "iss"}),
        "tampered payload": jwtpeers.tamper(good),
        "another key, same kid": keys.mint("k1", claims("alice"), key_kid="rogue"),
        "unknown kid": keys.mint("k9", claims("alice")),
        "alg none": jwtpeers.mint("none", claims("alice"))["token"],
        "HS256 with the public key as secret": jwtpeers.mint(
            "HS256", claims("alice"), kid="k1", secret=json.dumps(keys.public["k1"]))["token"],
        "garbage": "not-a-jwt",
        "two dots only": "..",
        "no exp": keys.mint("k1", {k: v for k, v in claims("alice").items() if k != "exp"}),
    }
    srv = jwks_server(keys.jwks("k1"))
    px, port, aport = jwt_proxy(ORG + authz(ISS) + reqauthn(
        {"issuer": ISS, "audiences": [AUD], "jwksUri": srv.url}),
        jwt={"unknownKidRefetch": "1h"}, admin=True)

    for what, tok in bad.items():
        assert_401(send(port, client_ctx, token=tok), what)
        # even on a path anybody may use: a bad token is refused before the policy
        assert_401(send(port, client_ctx, path="/public/x", token=tok), what)
    # a token in the query, and two tokens at once
    assert_401(send(port, client_ctx, path=f"/public/x?access_token={bad['expired']}"), "query")
    assert_401(send(port, client_ctx, path=f"/api/orders?access_token={good}", token=good),
               "two tokens")
    assert_401(send(port, client_ctx, headers=[("Authorization", f"Bearer {good}"),
                                               ("Authorization", f"Bearer {good}")]),
               "a repeated Authorization header")
    upstream.assert_nothing("bad tokens", connections_ok=True)

    # the log says why, never the token
    lines = refused_lines(px)
    assert len(lines) == 2 * len(bad) + 3, lines
    text = px.text()
    for tok in bad.values():
        if len(tok) > 20:
            assert tok not in text, "a token was logged"
    assert good not in text, "a token was logged"
    whys = [x["error"] for x in lines]
    assert any("expired" in w for w in whys), whys
    assert any("audience" in w for w in whys), whys
    assert any("evil.zt.test" in w for w in whys), whys
    assert any("tokens; one is allowed" in w for w in whys), whys
    # the request line: refused before the policy, the query token redacted
    q = px.wait_request(lambda x: "access_token" in x["path"] and x["status"] == "401")
    assert q["path"] == "/public/x?access_token=REDACTED" and q["decision"] == "none", q
    m, _ = scrape(aport)
    for reason in ("expired", "not-yet-valid", "audience", "issuer", "signature", "malformed",
                   "multiple-tokens", "unknown-kid", "algorithm"):
        assert m.get(f'zt_proxy_jwt_refused_total{{listener="in",reason="{reason}"}}', 0) >= 1, \
            (reason, {k: v for k, v in m.items() if "jwt" in k})
    # with unknownKidRefetch 1h, the first unknown kid fetched once more, and only once
    assert srv.count() == 2, srv.count()

    # and the good token still passes on the same proxy
    assert send(port, client_ctx, token=good).status == 200


def test_token_locations(jwt_proxy, jwks_server, keys, upstream, client_ctx):
    """Istio's defaults: "Authorization: Bearer" (the scheme in any case) and ?access_token=;
    a header without the prefix carries no token."""
    alice = keys.mint("k1", claims("alice"))
    srv = jwks_server(keys.jwks("k1"))
    px, port, _ = jwt_proxy(ORG + authz(ISS) + reqauthn(
        {"issuer": ISS, "audiences": [AUD], "jwksUri": srv.url}))

    assert send(port, client_ctx, token=alice, scheme="bearer").status == 200
    assert send(port, client_ctx, token=alice, scheme="BEARER").status == 200
    r = send(port, client_ctx, path=f"/api/orders?a=1&access_token={alice}&b=2")
    assert r.status == 200, r
    # Basic credentials are not a token: the request goes to the policy without a principal
    assert send(port, client_ctx, token="dXNlcjpwYXNz", scheme="Basic").status == 403
    r = send(port, client_ctx, path="/public/x", token="dXNlcjpwYXNz", scheme="Basic")
    assert r.status == 200, r
    reqs = upstream.wait_requests(4)
    assert [q.target for q in reqs] == ["/api/orders", "/api/orders", "/api/orders?a=1&b=2",
                                        "/public/x"], reqs
    assert upstream_headers(reqs[3])["authorization"] == "Basic dXNlcjpwYXNz", reqs[3]
    # an empty value is no token either
    assert send(port, client_ctx, path="/anon/x?access_token=").status == 200


def test_custom_locations(jwt_proxy, jwks_server, keys, upstream, client_ctx):
    alice = keys.mint("k1", claims("alice"))
    srv = jwks_server(keys.jwks("k1"))
    px, port, _ = jwt_proxy(ORG + authz(ISS) + reqauthn(
        {"issuer": ISS, "audiences": [AUD], "jwksUri": srv.url,
         "fromHeaders": [{"name": "X-Auth", "prefix": "Token "}], "fromParams": ["t"]}))

    assert send(port, client_ctx, headers=[("x-auth", f"Token {alice}")]).status == 200
    assert send(port, client_ctx, path=f"/api/orders?t={alice}").status == 200
    # a configured prefix is exact; and Authorization is not a location of this rule
    assert send(port, client_ctx, headers=[("X-Auth", f"token {alice}")]).status == 403
    assert send(port, client_ctx, token=alice).status == 403
    assert send(port, client_ctx, path=f"/api/orders?access_token={alice}").status == 403
    reqs = upstream.wait_requests(2)
    assert [q.target for q in reqs[:2]] == ["/api/orders", "/api/orders"], reqs
    assert "x-auth" not in upstream_headers(reqs[0]), reqs[0]


# ---- 3. keys from an OpenID Provider -------------------------------------------------------


def test_openid_provider_discovery_and_jwks_uri(jwt_proxy, upstream, client_ctx):
    with jwtpeers.oidc_provider(extra_claims={"groups": ["admins"]}) as op:
        token = op.client_credentials_token(f"https://{AUD}")
        _, payload, _ = jwtpeers.jwt_parts(token)
        assert payload["iss"] == op.issuer and payload["sub"] == "zt-test", payload
        pol = ORG + authz(op.issuer)
        # issuer only: the keys are found through OpenID Connect discovery
        px, port, aport = jwt_proxy(pol + reqauthn({"issuer": op.issuer, "audiences": [f"https://{AUD}"]}),
                                    admin=True)
        r = send(port, client_ctx, path="/admin-area/x", token=token)
        assert r.status == 200, r
        line = px.wait_request(lambda x: x["status"] == "200")
        assert line["request_principal"] == f"{op.issuer}/zt-test", line
        m, _ = scrape(aport)
        assert m[f'zt_proxy_jwks_keys{{source="oidc:{op.issuer}"}}'] >= 1, m
        # and through the provider's jwksUri
        px2, port2, _ = jwt_proxy(pol + reqauthn({"issuer": op.issuer, "audiences": [f"https://{AUD}"],
                                                  "jwksUri": op.jwks_uri}))
        assert send(port2, client_ctx, path="/admin-area/y", token=token).status == 200
        # its tokens for another resource are for another audience
        other = op.client_credentials_token("https://other.zt.test")
        assert_401(send(port2, client_ctx, path="/admin-area/z", token=other), "other audience")
        assert [q.target for q in upstream.wait_requests(2)] == ["/admin-area/x", "/admin-area/y"]


def test_discovery_of_an_issuer_that_is_down(jwt_proxy, keys, upstream, client_ctx):
    iss = f"http://127.0.0.1:{free_port()}"
    tok = keys.mint("k1", claims("alice", iss=iss))
    px, port, _ = jwt_proxy(ORG + authz(iss) + reqauthn({"issuer": iss, "audiences": [AUD]}),
                            jwt={"fetchTimeout": "1s"})
    assert_401(send(port, client_ctx, path="/public/x", token=tok), "no keys")
    assert send(port, client_ctx, path="/public/x").status == 200
    assert any("could not be fetched" in x["error"] for x in refused_lines(px)), px.text()


# ---- 4. key rotation, the rate-limited re-fetch, and providers that go away ---------------


def test_rotation_refetch_is_rate_limited(jwt_proxy, jwks_server, keys, upstream, client_ctx):
    a = keys.mint("ka", claims("alice"))
    b = keys.mint("kb", claims("alice"))
    c = keys.mint("kc", claims("alice"))
    srv = jwks_server(keys.jwks("ka"))
    px, port, _ = jwt_proxy(ORG + authz(ISS) + reqauthn(
        {"issuer": ISS, "audiences": [AUD], "jwksUri": srv.url}), jwt={"unknownKidRefetch": "3s"})
    assert send(port, client_ctx, token=a).status == 200
    assert srv.count() == 1

    # the provider adds kb: the first token with it is refused and makes the proxy fetch again
    srv.set_keys(keys.jwks("ka", "kb"))
    assert_401(send(port, client_ctx, token=b), "kb before the fetch")
    assert wait_until(lambda: srv.count() == 2, 3), srv.count()
    t_refetch = time.monotonic()
    assert wait_until(lambda: send(port, client_ctx, token=b).status == 200, 3)
    assert send(port, client_ctx, token=a).status == 200

    # kc, within unknownKidRefetch of that fetch: refused, and no fetch however often it comes
    srv.set_keys(keys.jwks("ka", "kb", "kc"))
    for _ in range(5):
        assert_401(send(port, client_ctx, token=c), "kc while rate limited")
    time.sleep(0.5)
    assert srv.count() == 2, srv.count()
    # once the interval has passed, the next one fetches again
    time.sleep(max(0.0, t_refetch + 3.2 - time.monotonic()))
    assert_401(send(port, client_ctx, token=c), "kc, the one that fetches")
    assert wait_until(lambda: srv.count() == 3, 3), srv.count()
    assert wait_until(lambda: send(port, client_ctx, token=c).status == 200, 3)
    assert srv.count() == 3


def test_jwks_down_from_the_start(jwt_proxy, keys, upstream, client_ctx):
    """No key set was ever fetched: every token is refused, none validates by default."""
    url = f"http://127.0.0.1:{free_port()}/jwks.json"
    alice = keys.mint("k1", claims("alice"))
    px, port, aport = jwt_proxy(ORG + authz(ISS) + reqauthn(
        {"issuer": ISS, "audiences": [AUD], "jwksUri": url}), admin=True)
    for path in ("/api/orders", "/public/x", "/admin-area/x"):
        assert_401(send(port, client_ctx, path=path, token=alice), path)
    upstream.assert_nothing("no keys", connections_ok=True)
    assert send(port, client_ctx, path="/public/x").status == 200  # no token: the policy decides
    m, _ = scrape(aport)
    assert m[f'zt_proxy_jwks_keys{{source="uri:{url}"}}'] == 0, m
    assert m[f'zt_proxy_jwks_age_seconds{{source="uri:{url}"}}'] == -1, m
    assert m[f'zt_proxy_jwks_fetches_total{{source="uri:{url}",result="error"}}'] >= 1, m
    assert m['zt_proxy_jwt_refused_total{listener="in",reason="no-keys"}'] == 3, m
    assert "jwks fetch failed" in px.text()


def test_failed_refresh_keeps_the_last_set_for_max_stale(jwt_proxy, jwks_server, keys, upstream,
                                                         client_ctx):
    alice = keys.mint("k1", claims("alice"))
    srv = jwks_server(keys.jwks("k1"))
    px, port, _ = jwt_proxy(ORG + authz(ISS) + reqauthn(
        {"issuer": ISS, "audiences": [AUD], "jwksUri": srv.url}),
        jwt={"jwksRefresh": "1s", "maxStale": "3s"})
    t0 = time.monotonic()
    assert send(port, client_ctx, token=alice).status == 200
    srv.status = 503  # the provider fails from now on
    assert wait_until(lambda: "jwks fetch failed; the last key set stays in force" in px.text(), 3)
    # still within maxStale of the last good fetch: the last set verifies
    if time.monotonic() - t0 < 2.5:
        assert send(port, client_ctx, token=alice).status == 200
    # past it: no key set, no token validates (never a fallback key)
    assert wait_until(lambda: send(port, client_ctx, token=alice).status == 401, 4)
    assert "older than jwt.maxStale" in px.text()
    # the provider comes back: tokens pass again at the next fetch
    srv.status = 200
    assert wait_until(lambda: send(port, client_ctx, token=alice).status == 200, 5)


# ---- 5. what goes on to the service ------------------------------------------------------


def test_forward_original_token(jwt_proxy, jwks_server, keys, upstream, client_ctx):
    alice = keys.mint("k1", claims("alice"))
    srv = jwks_server(keys.jwks("k1"))
    for forward in (False, True):
        upstream.reset()
        px, port, _ = jwt_proxy(ORG + authz(ISS) + reqauthn(
            {"issuer": ISS, "audiences": [AUD], "jwksUri": srv.url, "forwardOriginalToken": forward}))
        assert send(port, client_ctx, token=alice, headers=[("X-Other", "1")]).status == 200
        assert send(port, client_ctx, path=f"/api/orders?x=1&access_token={alice}").status == 200
        assert send(port, client_ctx, path=f"/api/orders?access_token={alice}").status == 200
        reqs = upstream.wait_requests(3)
        h = upstream_headers(reqs[0])
        assert h["x-other"] == "1", reqs[0]
        if forward:
            assert h["authorization"] == f"Bearer {alice}", reqs[0]
            assert [q.target for q in reqs] == [
                "/api/orders", f"/api/orders?x=1&access_token={alice}", f"/api/orders?access_token={alice}"]
        else:
            assert "authorization" not in h, reqs[0]
            assert [q.target for q in reqs] == ["/api/orders", "/api/orders?x=1", "/api/orders"], reqs
        assert alice not in px.text()


def test_output_payload_and_claim_headers(jwt_proxy, jwks_server, keys, upstream, client_ctx):
    alice = keys.mint("k1", claims("alice", groups=["admins", "ops"], org={"team": "blue"},
                                   level=3, admin=True, bad="a\nb"))
    srv = jwks_server(keys.jwks("k1"))
    px, port, _ = jwt_proxy(ORG + authz(ISS) + reqauthn(
        {"issuer": ISS, "audiences": [AUD], "jwksUri": srv.url,
         "outputPayloadToHeader": "X-Jwt-Payload",
         "outputClaimToHeaders": [{"header": "x-sub", "claim": "sub"},
                                  {"header": "x-groups", "claim": "groups"},
                                  {"header": "x-team", "claim": "org.team"},
                                  {"header": "x-level", "claim": "level"},
                                  {"header": "x-admin", "claim": "admin"},
                                  {"header": "x-bad", "claim": "bad"},
                                  {"header": "x-none", "claim": "missing"}]}))
    forged = [("X-Jwt-Payload", "eyJzdWIiOiJyb290In0"), ("x-jwt-payload", "again"),
              ("X-Sub", "root"), ("x-none", "forged"), ("X-Bad", "forged")]
    r = send(port, client_ctx, path="/admin-area/x", token=alice, headers=forged)
    assert r.status == 200, r
    # without a token, the client's copies are removed all the same
    r = send(port, client_ctx, path="/public/x", headers=forged)
    assert r.status == 200, r
    reqs = upstream.wait_requests(2)
    got = reqs[0]
    assert got.all("x-jwt-payload") == [alice.split(".")[1]], got
    payload = json.loads(base64.urlsafe_b64decode(got.get("x-jwt-payload") + "=="))
    assert payload["sub"] == "alice" and payload["groups"] == ["admins", "ops"], payload
    assert got.all("x-sub") == ["alice"], got
    assert got.all("x-groups") == ["admins,ops"], got
    assert got.all("x-team") == ["blue"], got
    assert got.all("x-level") == ["3"] and got.all("x-admin") == ["true"], got
    assert got.all("x-bad") == [] and got.all("x-none") == [], got
    for name in ("x-jwt-payload", "x-sub", "x-none", "x-bad"):
        assert reqs[1].all(name) == [], (name, reqs[1])


# ---- 6. policies: claims, inline keys, Istio's manifests -----------------------------------


def test_claims_condition(jwt_proxy, jwks_server, keys, upstream, client_ctx):
    admin = keys.mint("k1", claims("carol", groups=["admins"]))
    user = keys.mint("k1", claims("dave", groups=["users"]))
    scalar = keys.mint("k1", claims("erin", groups="admins"))
    srv = jwks_server(keys.jwks("k1"))
    px, port, _ = jwt_proxy(ORG + authz(ISS) + reqauthn(
        {"issuer": ISS, "audiences": [AUD], "jwksUri": srv.url}))
    assert send(port, client_ctx, path="/admin-area/a", token=admin).status == 200
    assert send(port, client_ctx, path="/admin-area/a", token=scalar).status == 200
    assert send(port, client_ctx, path="/admin-area/a", token=user).status == 403
    assert send(port, client_ctx, path="/admin-area/a").status == 403
    assert [q.target for q in upstream.wait_requests(2)] == ["/admin-area/a", "/admin-area/a"]


def test_inline_jwks(jwt_proxy, keys, upstream, client_ctx):
    alice = keys.mint("k1", claims("alice"))
    rogue = keys.mint("k1", claims("alice"), key_kid="rogue")
    px, port, _ = jwt_proxy(ORG + authz(ISS) + reqauthn(
        {"issuer": ISS, "audiences": [AUD], "jwks": json.dumps({"keys": keys.jwks("k1")})}))
    assert send(port, client_ctx, token=alice).status == 200
    assert_401(send(port, client_ctx, token=rogue), "another key")
    assert "jwks fetch" not in px.text()  # nothing to fetch


def test_istio_manifests_as_they_are(jwt_proxy, jwks_server, keys, upstream, client_ctx):
    alice = keys.mint("k1", claims("alice"))
    bob = keys.mint("k1", claims("bob"))
    srv = jwks_server(keys.jwks("k1"))
    istio = f"""\
---
apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata:
  name: "jwt-example"
  namespace: default
spec:
  selector:
    matchLabels:
      app: server
  jwtRules:
  - issuer: "{ISS}"
    jwksUri: "{srv.url}"
    audiences:
    - "{AUD}"
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata:
  name: require-jwt
  namespace: default
spec:
  selector:
    matchLabels:
      app: server
  action: ALLOW
  rules:
  - from:
    - source:
        requestPrincipals: ["{ISS}/alice"]
"""
    px, port, _ = jwt_proxy(ORG + istio)
    assert send(port, client_ctx, path="/anything", token=alice).status == 200
    assert send(port, client_ctx, path="/anything", token=bob).status == 403
    assert send(port, client_ctx, path="/anything").status == 403
    assert_401(send(port, client_ctx, path="/anything", token=jwtpeers.tamper(alice)), "tampered")
    assert [q.target for q in upstream.wait_requests(1)] == ["/anything"]


def test_policy_reload_brings_new_rules(jwt_proxy, jwks_server, keys, upstream, client_ctx, tmp_path):
    """A RequestAuthentication added by a policy reload: its keys are fetched, its tokens pass."""
    alice = keys.mint("k1", claims("alice"))
    srv = jwks_server(keys.jwks("k1"))
    px, port, _ = jwt_proxy(ORG + authz(ISS))
    # no jwtRule applies: tokens are not looked at, nothing is fetched
    assert send(port, client_ctx, token=alice).status == 403
    assert srv.count() == 0
    pol = next(p for p in tmp_path.glob("pol-*"))
    (pol / "ra.yaml").write_text(reqauthn({"issuer": ISS, "audiences": [AUD], "jwksUri": srv.url}))
    assert wait_until(lambda: "policy reloaded" in px.text(), 5), px.text()
    assert wait_until(lambda: send(port, client_ctx, token=alice).status == 200, 5)
    assert srv.count() == 1
    # a reload with a bad RequestAuthentication is refused; the rules in force stay
    (pol / "ra.yaml").write_text(reqauthn({"issuer": ISS, "audiences": [AUD], "jwksUri": "ftp://x"}))
    assert wait_until(lambda: "policy reload refused" in px.text(), 5), px.text()
    assert send(port, client_ctx, token=alice).status == 200
    assert_401(send(port, client_ctx, token=jwtpeers.tamper(alice)), "tampered")


def test_policy_from_the_control_plane_cache(start_proxy, upstream, jwks_server, keys, client_ctx,
                                             tmp_path):
    """RequestAuthentication documents in the control plane's answer (here its cache, with the
    server away) are compiled and enforced like those of files."""
    import yaml  # noqa: PLC0415 - only here

    alice = keys.mint("k1", claims("alice"))
    bob = keys.mint("k1", claims("bob"))
    srv = jwks_server(keys.jwks("k1"))
    docs = [d for d in yaml.safe_load_all(ORG + authz(ISS) + reqauthn(
        {"issuer": ISS, "audiences": [AUD], "jwksUri": srv.url})) if d]
    cache = tmp_path / "policy-cache.json"
    cache.write_text(json.dumps({"revision": 7, "documents": docs}))
    port = free_port()
    cfg = "\n".join([
        "apiVersion: zt.dev/v1", "kind: ProxyConfig", "spec:", f"  trustDomain: {TD}",
        "  identity: {cert: server.pem, key: server.key, bundle: bundle.pem}",
        f"  policy: {_flow({'server': f'https://127.0.0.1:{free_port()}', 'cache': str(cache)})}",
        "  limits: {drainTimeout: 1s}", f"  http: {_flow(HTTP_DEFAULTS)}",
        "  listeners:", f"    - {_flow(http_in(port, upstream.port))}"]) + "\n"
    px = start_proxy(cfg, "cached-proxy")
    assert "policy from the cache" in px.text()
    assert srv.count() == 1
    assert send(port, client_ctx, token=alice).status == 200
    assert send(port, client_ctx, token=bob).status == 403
    assert_401(send(port, client_ctx, token=jwtpeers.tamper(alice)), "tampered")


def test_a_stop_does_not_wait_for_a_slow_identity_provider(jwt_proxy, keys, upstream, client_ctx):
    """A JWKS fetch under way when the proxy is told to stop is cancelled: the stop takes its
    drain time, not what is left of the fetch's timeout (an identity provider that accepts
    connections and never answers)."""
    import signal
    import socket

    hole = socket.socket()
    hole.bind(("127.0.0.1", 0))
    hole.listen(16)
    held = []
    done = threading.Event()

    def accept():
        hole.settimeout(0.2)
        while not done.is_set():
            try:
                held.append(hole.accept()[0])   # and never answer
            except OSError:
                pass

    t = threading.Thread(target=accept, daemon=True)
    t.start()
    try:
        url = f"http://127.0.0.1:{hole.getsockname()[1]}/jwks.json"
        px, port, _ = jwt_proxy(ORG + authz(ISS) + reqauthn(
            {"issuer": ISS, "audiences": [AUD], "jwksUri": url}), jwt={"fetchTimeout": "6s"})
        # the first fetch timed out before "running"; the next starts a second later
        assert wait_until(lambda: len(held) >= 2, 4), f"{len(held)} fetches seen"
        time.sleep(0.5)
        px.own_crash_check = True
        t0 = time.monotonic()
        px.proc.send_signal(signal.SIGTERM)
        rc = px.proc.wait(timeout=20)
        took = time.monotonic() - t0
        assert rc == 0, (rc, px.text())
        assert took < 3.0, f"the stop waited {took:.1f} s for the fetch (fetchTimeout 6s)"
        assert "Sanitizer" not in px.text() and "runtime error:" not in px.text(), px.text()
    finally:
        done.set()
        t.join()
        for c in held:
            c.close()
        hole.close()
