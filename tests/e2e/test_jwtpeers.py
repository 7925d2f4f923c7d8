"""The JWT/OIDC interop peers on their own (tests/interop/node, jwtpeers.py):
tokens minted by jose verify with jose against their own JWKS and fail when
tampered with, and oidc-provider serves discovery, a JWKS and JWT access tokens
for the client_credentials grant. If these fail, the peers are broken, not zt."""
import http.server
import importlib.util
import json
import ssl
import threading

import pytest

from conftest import openssl
from jwtpeers import (b64url_decode, jose_verify, jwt_parts, mint, node_available,
                      oidc_provider, tamper)

ISS = "https://issuer.zt.test"
AUD = "https://api.zt.test"
ALGS = ["ES256", "ES384", "RS256", "PS256", "EdDSA", "HS256"]
HAVE_CRYPTOGRAPHY = importlib.util.find_spec("cryptography") is not None


@pytest.fixture(scope="module", autouse=True)
def peers():
    assert node_available(), "node or tests/interop/node/node_modules missing: run make deps"


def claims(**more):
    c = {"iss": ISS, "sub": "spiffe://zt.test/agent/a1", "aud": AUD, "iat": 1700000000,
         "exp": 4102444800}
    c.update(more)
    return c


def verify_own(m, token=None, **kw):
    """Verifies with the JWKS (or the HMAC secret) that mint returned."""
    token = token or m["token"]
    if m["alg"].startswith("HS"):
        return jose_verify(token, ISS, audience=AUD, secret=kw.pop("secret"), **kw)
    return jose_verify(token, ISS, audience=AUD, jwks_file=m["jwks"], **kw)


@pytest.mark.parametrize("alg", ALGS)
def test_mint_verifies_with_its_jwks(alg):
    kw = {"secret": "an HMAC secret of 32 bytes or more"} if alg.startswith("HS") else {}
    m = mint(alg, claims(), kid="k-" + alg, secret=kw.get("secret"))
    header, payload, sig = jwt_parts(m["token"])
    assert header == {"alg": alg, "kid": "k-" + alg, "typ": "JWT"} == m["header"]
    assert payload == claims()
    assert len(sig) >= 32
    (key,) = m["jwks"]["keys"]
    assert key["kid"] == "k-" + alg and key["alg"] == alg and key["use"] == "sig"
    if not alg.startswith("HS"):
        assert "d" not in key and "p" not in key, "private members in the public JWKS"
        assert m["private_jwk"]["d"]
    ok, out = verify_own(m, **kw)
    assert ok, out
    assert out == claims()


@pytest.mark.parametrize("alg", ALGS)
def test_tampered_token_fails(alg):
    kw = {"secret": "an HMAC secret of 32 bytes or more"} if alg.startswith("HS") else {}
    m = mint(alg, claims(), secret=kw.get("secret"))
    ok, err = verify_own(m, tamper(m["token"]), **dict(kw))
    assert not ok and err == "ERR_JWS_SIGNATURE_VERIFICATION_FAILED", err
    # a flipped bit in the signature too
    h, p, s = m["token"].split(".")
    s = ("B" if s[0] == "A" else "A") + s[1:]
    ok, err = verify_own(m, f"{h}.{p}.{s}", **dict(kw))
    assert not ok, err


def test_verify_rejects_bad_claims_and_keys(tmp_path):
    m = mint("ES256", claims())
    ok, err = jose_verify(m["token"], "https://other.zt.test", audience=AUD, jwks_file=m["jwks"])
    assert (ok, err) == (False, "ERR_JWT_CLAIM_VALIDATION_FAILED")
    ok, err = jose_verify(m["token"], ISS, audience="https://other.zt.test", jwks_file=m["jwks"])
    assert (ok, err) == (False, "ERR_JWT_CLAIM_VALIDATION_FAILED")
    ok, err = verify_own(m, current_date=4102444800 + 10)
    assert (ok, err) == (False, "ERR_JWT_EXPIRED")
    ok, err = verify_own(m, algorithms=["RS256"])
    assert not ok and err == "ERR_JOSE_ALG_NOT_ALLOWED", err
    other = mint("ES256", claims(), kid=m["kid"])  # same kid, another key
    ok, err = verify_own(other, m["token"])
    assert (ok, err) == (False, "ERR_JWS_SIGNATURE_VERIFICATION_FAILED")
    unsigned = mint("none", claims())
    assert unsigned["token"].endswith(".") and unsigned["header"]["alg"] == "none"
    ok, err = verify_own(m, unsigned["token"])
    assert not ok, err
    # a header that claims ES384 over an ES256 signature by a P-256 key
    liar = mint("ES256", claims(), header={"alg": "ES384"})
    assert jwt_parts(liar["token"])[0]["alg"] == "ES384"
    ok, err = verify_own(liar)
    assert not ok, err


def test_key_file_shares_one_key(tmp_path):
    kf = tmp_path / "key.jwk"
    a = mint("ES256", claims(n=1), kid="shared", key_file=kf)
    assert json.loads(kf.read_text())["kid"] == "shared"
    b = mint("ES256", claims(n=2), key_file=kf)
    assert b["kid"] == "shared" and b["jwks"] == a["jwks"]
    for t, n in ((a["token"], 1), (b["token"], 2)):
        ok, out = verify_own(a, t)
        assert ok and out["n"] == n, out
    h = mint("ES256", claims(), key_file=kf, header={"kid": None, "typ": "at+jwt"})
    assert jwt_parts(h["token"])[0] == {"alg": "ES256", "typ": "at+jwt"}


@pytest.mark.skipif(not HAVE_CRYPTOGRAPHY, reason="python3-cryptography not installed")
@pytest.mark.parametrize("alg", ["ES256", "EdDSA"])
def test_mint_signature_checks_outside_jose(alg):
    """The signature is plain JWS (RFC 7515/7518/8037), by python-cryptography."""
    m = mint(alg, claims())
    assert check_signature(m["token"], m["jwks"]["keys"][0])


def check_signature(token, jwk):
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519
    from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

    h, p, s = token.split(".")
    data, sig = f"{h}.{p}".encode(), b64url_decode(s)
    try:
        if jwk["kty"] == "OKP":
            ed25519.Ed25519PublicKey.from_public_bytes(b64url_decode(jwk["x"])).verify(sig, data)
        else:
            assert jwk["crv"] == "P-256" and len(sig) == 64
            pub = ec.EllipticCurvePublicNumbers(
                int.from_bytes(b64url_decode(jwk["x"]), "big"),
                int.from_bytes(b64url_decode(jwk["y"]), "big"), ec.SECP256R1()).public_key()
            der = encode_dss_signature(int.from_bytes(sig[:32], "big"),
                                       int.from_bytes(sig[32:], "big"))
            pub.verify(der, data, ec.ECDSA(hashes.SHA256()))
        return True
    except InvalidSignature:
        return False


# ---- an https JWKS with a private CA (how zt's own JWKS will be served) ----------


@pytest.fixture
def https_jwks(tmp_path):
    """Serves a JWKS over TLS on 127.0.0.1 with a certificate for localhost from a
    throwaway CA: yields (set_jwks, url, ca_pem)."""
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", tmp_path / "ca.key", "-out", tmp_path / "ca.pem", "-days", "2",
            "-subj", "/CN=jwtpeers test CA")
    openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", tmp_path / "srv.key", "-out", tmp_path / "srv.csr", "-subj", "/CN=localhost")
    (tmp_path / "ext").write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    openssl("x509", "-req", "-in", tmp_path / "srv.csr", "-CA", tmp_path / "ca.pem",
            "-CAkey", tmp_path / "ca.key", "-CAcreateserial", "-days", "2",
            "-extfile", tmp_path / "ext", "-out", tmp_path / "srv.pem")
    state = {"jwks": {"keys": []}}

    class H(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = json.dumps(state["jwks"]).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *a):
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(tmp_path / "srv.pem", tmp_path / "srv.key")
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    try:
        yield (lambda j: state.update(jwks=j)), \
            f"https://localhost:{srv.server_address[1]}/jwks", tmp_path / "ca.pem"
    finally:
        srv.shutdown()
        srv.server_close()


def test_verify_with_https_jwks_and_private_ca(https_jwks):
    set_jwks, url, ca = https_jwks
    m = mint("ES256", claims())
    set_jwks(m["jwks"])
    ok, out = jose_verify(m["token"], ISS, audience=AUD, jwks_uri=url, ca_file=ca)
    assert ok and out == claims(), out
    ok, err = jose_verify(m["token"], ISS, audience=AUD, jwks_uri=url)  # CA not trusted
    assert not ok and err.startswith("TypeError:") and ("CERT" in err or "VERIFY" in err), err


# ---- oidc-provider ----------------------------------------------------------------


@pytest.fixture(scope="module")
def op():
    with oidc_provider() as p:
        yield p


def test_oidc_discovery(op):
    assert op.issuer.startswith("http://127.0.0.1:")
    d = op.discovery()
    assert d["issuer"] == op.issuer
    assert d["jwks_uri"].startswith(op.issuer + "/")
    assert d["token_endpoint"].startswith(op.issuer + "/")
    assert "client_credentials" in d["grant_types_supported"]
    keys = op.jwks()["keys"]
    assert keys and all("d" not in k and k.get("kid") and k.get("alg") for k in keys)


def test_oidc_client_credentials_jwt(op):
    token = op.client_credentials_token(AUD, scope="api:read")
    assert token.count(".") == 2
    header, payload, _ = jwt_parts(token)
    keys = op.jwks()["keys"]
    match = [k for k in keys if k["kid"] == header.get("kid")]
    assert len(match) == 1 and match[0]["alg"] == header["alg"] == "ES256", (header, keys)
    assert header["typ"] == "at+jwt"
    assert payload["aud"] == AUD
    assert payload["iss"] == op.issuer
    assert payload["client_id"] == payload["sub"] == "zt-test"
    assert payload["scope"] == "api:read"
    assert payload["iat"] < payload["exp"] <= payload["iat"] + 300
    if HAVE_CRYPTOGRAPHY:
        assert check_signature(token, match[0])

    ok, out = jose_verify(token, op.issuer, audience=AUD, jwks_uri=op.jwks_uri)
    assert ok and out == payload, out
    ok, err = jose_verify(token, op.issuer, audience="https://other.zt.test", jwks_uri=op.jwks_uri)
    assert (ok, err) == (False, "ERR_JWT_CLAIM_VALIDATION_FAILED")
    ok, err = jose_verify(tamper(token), op.issuer, audience=AUD, jwks_uri=op.jwks_uri)
    assert (ok, err) == (False, "ERR_JWS_SIGNATURE_VERIFICATION_FAILED")


def test_oidc_rejects_bad_client(op):
    status, body = op.token_request({"grant_type": "client_credentials", "resource": AUD},
                                    client_secret="wrong")
    assert status == 401 and body["error"] == "invalid_client", body


def test_oidc_other_alg_and_claims():
    with oidc_provider(alg="EdDSA", ttl=60, extra_claims={"tenant": "t1"}) as p:
        token = p.client_credentials_token("https://other.zt.test")
        header, payload, _ = jwt_parts(token)
        assert header["alg"] == "EdDSA"
        assert payload["aud"] == "https://other.zt.test" and payload["tenant"] == "t1"
        assert payload["exp"] - payload["iat"] == 60
        ok, out = jose_verify(token, p.issuer, audience="https://other.zt.test",
                              jwks_uri=p.jwks_uri)
        assert ok, out
