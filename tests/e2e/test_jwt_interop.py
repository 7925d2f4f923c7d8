"""zt's JWT verifier and signer against code nobody here wrote (issue 9):

  - tokens the `jose` npm package mints (ES256, ES384, RS256, PS256, EdDSA) verify with
    `zt jwt verify` against jose's JWKS, and fail once tampered, expired, for another
    audience or issuer;
  - tokens `zt jwt sign` mints verify in jose's jwtVerify against `zt jwt jwks`;
  - a real OpenID provider (`oidc-provider`, on loopback) issues a client-credentials access
    token that `zt jwt verify --oidc ISSUER` accepts through discovery and JWKS;
  - the attacks RFC 8725 is about, built with jose: alg none, HS256 keyed with the RSA
    public key, an embedded jwk header, a kid that names another key, a 1 MB token.

The JWS/JWK details (Wycheproof, RFC vectors, every refusal's rule) are in
tests/unit/test_jose.c; this file is about agreeing with other implementations.
"""
import base64
import json
import subprocess
import time

import pytest

import jwtpeers
from conftest import zt

pytestmark = pytest.mark.skipif(not jwtpeers.node_available(),
                                reason="node and the npm peers are not installed (make deps)")

ISS = "https://issuer.zt.test"
ALGS = ["ES256", "ES384", "RS256", "PS256", "EdDSA"]


def claims(**over):
    now = int(time.time())
    c = {"iss": ISS, "sub": "alice", "aud": "api", "iat": now, "nbf": now, "exp": now + 300,
         "groups": ["eng"]}
    c.update(over)
    return {k: v for k, v in c.items() if v is not None}


def verify(tmp_path, token, jwks, *args):
    f = tmp_path / "jwks.json"
    f.write_text(json.dumps(jwks))
    return zt("jwt", "verify", "--jwks", f, *args, "-", input=token)


def rule_of(p):
    assert p.returncode == 1, (p.returncode, p.stdout, p.stderr)
    return p.stderr.split("[", 1)[1].split("]", 1)[0] if "[" in p.stderr else p.stderr


@pytest.mark.parametrize("alg", ALGS)
def test_jose_tokens_verify_in_zt(tmp_path, alg):
    m = jwtpeers.mint(alg, claims(), kid="k1")
    p = verify(tmp_path, m["token"], m["jwks"], "--issuer", ISS, "--audience", "api")
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["sub"] == "alice"
    # the same key refuses a changed token, and the rules hold
    assert rule_of(verify(tmp_path, jwtpeers.tamper(m["token"]), m["jwks"], "--issuer", ISS)) == \
        "jws-signature"
    assert rule_of(verify(tmp_path, m["token"], m["jwks"], "--issuer", ISS, "--audience", "other")) == \
        "jwt-aud"
    assert rule_of(verify(tmp_path, m["token"], m["jwks"], "--issuer", ISS + "/")) == "jwt-iss"
    old = jwtpeers.mint(alg, claims(iat=1000, nbf=1000, exp=2000), key_file=str(tmp_path / "k"))
    assert rule_of(verify(tmp_path, old["token"], old["jwks"], "--issuer", ISS)) == "jwt-exp"


@pytest.mark.parametrize("key", ["ec", "ed", "rsa"])
def test_zt_tokens_verify_in_jose(tmp_path, key):
    gen = {"ec": ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"],
           "ed": ["-algorithm", "ed25519"],
           "rsa": ["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"]}[key]
    pem = tmp_path / f"{key}.pem"
    subprocess.run(["openssl", "genpkey", *gen, "-out", str(pem)], check=True, capture_output=True)
    p = zt("jwt", "sign", "--key", pem, "--ttl", "5m", json.dumps({"iss": ISS, "sub": "bob", "aud": "api"}))
    assert p.returncode == 0, p.stderr
    token = p.stdout.strip()
    p = zt("jwt", "jwks", "--key", pem)
    assert p.returncode == 0, p.stderr
    jwks = json.loads(p.stdout)
    # jose picks the key by kid (zt's RFC 7638 thumbprint) and checks alg against it
    hdr = jwtpeers.jwt_parts(token)[0]
    assert hdr["kid"] == jwks["keys"][0]["kid"] and hdr["typ"] == "JWT", hdr
    assert hdr["alg"] == {"ec": "ES256", "ed": "EdDSA", "rsa": "RS256"}[key]
    ok, payload = jwtpeers.jose_verify(token, ISS, audience="api", jwks_file=jwks)
    assert ok and payload["sub"] == "bob", payload
    ok, err = jwtpeers.jose_verify(jwtpeers.tamper(token), ISS, audience="api", jwks_file=jwks)
    assert not ok and "SIGNATURE" in err, err


def test_an_oidc_provider_token_through_discovery(tmp_path):
    with jwtpeers.oidc_provider() as op:
        tok = op.client_credentials_token("https://api.zt.test")
        p = zt("jwt", "verify", "--oidc", op.issuer, "--audience", "https://api.zt.test", tok)
        assert p.returncode == 0, p.stderr
        c = json.loads(p.stdout)
        assert c["iss"] == op.issuer and c["aud"] == "https://api.zt.test", c
        # the same token for another audience, or from an issuer the discovery does not name
        p = zt("jwt", "verify", "--oidc", op.issuer, "--audience", "https://other.zt.test", tok)
        assert rule_of(p) == "jwt-aud"
        p = zt("jwt", "verify", "--jwks-uri", op.jwks_uri, "--issuer", op.issuer + "x", tok)
        assert rule_of(p) == "jwt-iss"
        # discovery must name exactly the issuer asked for (OpenID Connect Discovery 4.3)
        p = zt("jwt", "verify", "--oidc", op.issuer + "/", tok)
        assert p.returncode == 1 and "another issuer" in p.stderr, p.stderr


def test_attacks_built_with_jose_are_refused(tmp_path):
    rsa = jwtpeers.mint("RS256", claims(), kid="rsa", key_file=str(tmp_path / "rsa.jwk"))
    jwks = rsa["jwks"]
    # alg none: never, whatever the key
    none = jwtpeers.mint("none", claims())
    assert rule_of(verify(tmp_path, none["token"], jwks, "--issuer", ISS)) in ("jws-alg", "jws-syntax")
    # HS256 keyed with the RSA public key (as PEM, and as the JWK's JSON): the key is RSA, so
    # HS256 is not an algorithm it verifies
    pub = rsa["jwks"]["keys"][0]
    for secret in (json.dumps(pub), pub["n"]):
        forged = jwtpeers.mint("HS256", claims(), kid="rsa", secret=secret)
        assert rule_of(verify(tmp_path, forged["token"], jwks, "--issuer", ISS)) == "jws-no-key"
    # the attacker's own key in the header (jwk), or a URL to fetch it from (jku, x5u): ignored
    evil = jwtpeers.mint("RS256", claims(), kid="rsa",
                         header={"jwk": {"kty": "RSA", "n": "AQAB", "e": "AQAB"},
                                 "jku": "https://evil.example/jwks", "x5u": "https://evil.example/c"})
    assert rule_of(verify(tmp_path, evil["token"], jwks, "--issuer", ISS)) == "jws-signature"
    # a kid that names another key of the set: that key's signature check fails
    other = jwtpeers.mint("RS256", claims(), kid="rsa2")
    both = {"keys": [pub, dict(other["jwks"]["keys"][0], kid="rsa2")]}
    swapped = jwtpeers.mint("RS256", claims(), kid="rsa2", key_file=str(tmp_path / "rsa.jwk"))
    assert rule_of(verify(tmp_path, swapped["token"], both, "--issuer", ISS)) == "jws-signature"
    # crit names an extension zt does not implement
    crit = jwtpeers.mint("RS256", claims(), kid="rsa", key_file=str(tmp_path / "rsa.jwk"),
                         header={"crit": ["exp"], "exp": 1})
    assert rule_of(verify(tmp_path, crit["token"], jwks, "--issuer", ISS)) == "jws-crit"
    # 1 MB: refused by its size before anything is decoded, and fast
    big = rsa["token"].split(".")
    huge = big[0] + "." + "A" * (1 << 20) + "." + big[2]
    t0 = time.monotonic()
    assert rule_of(verify(tmp_path, huge, jwks, "--issuer", ISS)) == "jws-size"
    assert time.monotonic() - t0 < 5
    # deep nesting in the claims: refused, no crash
    deep = "[" * 5000 + "]" * 5000
    h = base64.urlsafe_b64encode(json.dumps({"alg": "RS256", "kid": "rsa"}).encode()).rstrip(b"=")
    p = base64.urlsafe_b64encode(deep.encode()).rstrip(b"=")
    tok = (h + b"." + p + b".AAAA").decode()
    p = verify(tmp_path, tok, jwks, "--issuer", ISS, "--max-bytes", "1048576")
    assert p.returncode == 1 and "[" in p.stderr, p.stderr
