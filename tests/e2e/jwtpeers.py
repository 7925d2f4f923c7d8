"""Interop peers for the JWT/JWKS/OIDC end-to-end tests: panva's `jose` and
`oidc-provider` (npm), driven through the scripts in tests/interop/node/.

Nothing here shares code with zt. The node packages are pinned in
tests/interop/node/package-lock.json and installed by `make deps`
(scripts/deps.sh runs `npm ci` there).

    mint(alg, claims, kid=None, header=None, key_file=None, secret=None) -> dict
        a fresh JWT signed by jose: {"token", "header", "alg", "kid",
        "jwks": {"keys": [public JWK]}, "private_jwk"}; key_file reuses (or, when
        the file does not exist yet, creates) a private JWK, so several tokens can
        share one key. alg "none" makes an unsecured token.
    jose_verify(token, issuer, audience=None, jwks_uri=None, jwks_file=None,
                ca_file=None, secret=None, algorithms=None, typ=None,
                current_date=None) -> (ok, payload dict | jose error code str)
        jose's jwtVerify against a remote JWKS (jwks_uri, https with ca_file), a
        JWKS file (jwks_file: a path, or a dict written to a temp file), or an HMAC
        secret.
    with oidc_provider(port=None) as op: op.issuer, op.jwks_uri,
        op.discovery(), op.jwks(), op.client_credentials_token(resource),
        op.token_request(...)
        oidc-provider on http://127.0.0.1:PORT (a free port by default) with the
        client zt-test / zt-test-secret; client_credentials with resource=URL
        gives a JWT access token with aud = URL.
Helpers: b64url_decode, jwt_parts(token) -> (header, payload, signature bytes),
tamper(token) -> a token whose signature no longer matches.
"""
import base64
import contextlib
import json
import os
import pathlib
import select
import shutil
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

from conftest import ROOT

NODE_DIR = ROOT / "tests" / "interop" / "node"
NODE = os.environ.get("ZT_NODE", shutil.which("node") or "/usr/bin/node")
CLIENT_ID = "zt-test"
CLIENT_SECRET = "zt-test-secret"
TIMEOUT = 60


def node_available():
    """True when node runs and the packages of tests/interop/node are installed."""
    if not (NODE and os.access(NODE, os.X_OK)):
        return False
    mods = NODE_DIR / "node_modules"
    return all((mods / p / "package.json").is_file() for p in ("jose", "oidc-provider"))


def _node(script, *args, env=None):
    e = dict(os.environ)
    if env:
        e.update(env)
    return subprocess.run([NODE, str(NODE_DIR / script), *map(str, args)], capture_output=True,
                          text=True, timeout=TIMEOUT, cwd=NODE_DIR, env=e)


def mint(alg, claims, kid=None, header=None, key_file=None, secret=None):
    """A JWT minted by mint.mjs (jose's SignJWT); see the module's docstring."""
    args = [alg, json.dumps(claims)]
    if kid is not None:
        args += ["--kid", kid]
    if header is not None:
        args += ["--header", json.dumps(header)]
    if key_file is not None:
        args += ["--key-file", key_file]
    if secret is not None:
        args += ["--secret", secret]
    p = _node("mint.mjs", *args)
    if p.returncode != 0:
        raise AssertionError(f"mint.mjs {alg} failed ({p.returncode}):\n{p.stderr}")
    return json.loads(p.stdout)


def jose_verify(token, issuer, audience=None, jwks_uri=None, jwks_file=None, ca_file=None,
                secret=None, algorithms=None, typ=None, current_date=None):
    """jose's jwtVerify through verify.mjs: (True, payload) or (False, jose error code).
    issuer None: no issuer is checked (JWT-SVIDs carry none).

    audience and algorithms may be a string or a list. jwks_file may be a path or a
    JWKS dict. ca_file (a PEM bundle) is trusted for an https jwks_uri: it goes to
    node as NODE_EXTRA_CA_CERTS. current_date: epoch seconds to verify "as of"."""
    args = [token, "--issuer", issuer] if issuer is not None else [token, "--no-issuer"]
    tmp = None
    if jwks_uri is not None:
        args += ["--jwks-uri", jwks_uri]
    if jwks_file is not None:
        if isinstance(jwks_file, dict):
            tmp = tempfile.NamedTemporaryFile("w", suffix=".jwks.json", delete=False)
            json.dump(jwks_file, tmp)
            tmp.close()
            jwks_file = tmp.name
        args += ["--jwks-file", jwks_file]
    if secret is not None:
        args += ["--secret", secret]
    for a in [audience] if isinstance(audience, str) else (audience or []):
        args += ["--audience", a]
    for a in [algorithms] if isinstance(algorithms, str) else (algorithms or []):
        args += ["--alg", a]
    if typ is not None:
        args += ["--typ", typ]
    if current_date is not None:
        args += ["--current-date", int(current_date)]
    env = None
    if ca_file is not None:
        ca = str(pathlib.Path(ca_file).resolve())
        args += ["--ca-file", ca]
        env = {"NODE_EXTRA_CA_CERTS": ca}
    try:
        p = _node("verify.mjs", *args, env=env)
    finally:
        if tmp is not None:
            os.unlink(tmp.name)
    if p.returncode == 0:
        return True, json.loads(p.stdout)
    if p.returncode == 1:
        return False, (p.stderr.splitlines() or ["ERROR"])[0].strip()
    raise AssertionError(f"verify.mjs usage error ({p.returncode}):\n{p.stderr}")


# ---- JWT odds and ends ----------------------------------------------------------


def b64url_decode(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def b64url(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def jwt_parts(token):
    """(header dict, payload dict, signature bytes) of a compact JWS, unverified."""
    h, p, s = token.split(".")
    return json.loads(b64url_decode(h)), json.loads(b64url_decode(p)), b64url_decode(s)


def tamper(token):
    """The token with one claim changed and the signature kept: it must not verify."""
    h, p, s = token.split(".")
    payload = json.loads(b64url_decode(p))
    payload["tampered"] = True
    return ".".join([h, b64url(json.dumps(payload, separators=(",", ":")).encode()), s])


# ---- oidc-provider ----------------------------------------------------------------


class OidcProvider:
    """A running oidc.mjs: its issuer and a client for its endpoints."""

    def __init__(self, proc, issuer, log):
        self.proc = proc
        self.issuer = issuer
        self.log = log
        self._discovery = None

    def _get(self, url):
        with urllib.request.urlopen(url, timeout=20) as r:
            return json.loads(r.read())

    def discovery(self):
        """/.well-known/openid-configuration (fetched once)."""
        if self._discovery is None:
            self._discovery = self._get(self.issuer + "/.well-known/openid-configuration")
        return self._discovery

    @property
    def jwks_uri(self):
        return self.discovery()["jwks_uri"]

    @property
    def token_endpoint(self):
        return self.discovery()["token_endpoint"]

    def jwks(self):
        return self._get(self.jwks_uri)

    def token_request(self, params, client_id=CLIENT_ID, client_secret=CLIENT_SECRET):
        """POSTs params to the token endpoint with client_secret_basic:
        (HTTP status, JSON body)."""
        cred = base64.b64encode(f"{client_id}:{client_secret}".encode()).decode()
        req = urllib.request.Request(
            self.token_endpoint, data=urllib.parse.urlencode(params).encode(), method="POST",
            headers={"Authorization": f"Basic {cred}",
                     "Content-Type": "application/x-www-form-urlencoded"})
        try:
            with urllib.request.urlopen(req, timeout=20) as r:
                return r.status, json.loads(r.read())
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"null")

    def client_credentials_token(self, resource, scope=None):
        """A JWT access token for `resource` (its aud), from the client_credentials grant."""
        params = {"grant_type": "client_credentials", "resource": resource}
        if scope:
            params["scope"] = scope
        status, body = self.token_request(params)
        assert status == 200 and "access_token" in body, \
            f"client_credentials failed: {status} {body}\n{self.log_text()}"
        return body["access_token"]

    def log_text(self):
        try:
            return pathlib.Path(self.log).read_text(errors="replace")
        except OSError:
            return ""


@contextlib.contextmanager
def oidc_provider(port=None, alg=None, ttl=None, extra_claims=None):
    """Runs oidc.mjs on 127.0.0.1 (a free port unless `port`) until the block ends.

    alg: the access tokens' JWS algorithm (ES256 default, RS256, PS256, EdDSA);
    ttl: their lifetime in seconds (300); extra_claims: added to each of them."""
    args = [NODE, str(NODE_DIR / "oidc.mjs"), str(port or 0)]
    if alg:
        args += ["--alg", alg]
    if ttl is not None:
        args += ["--ttl", str(ttl)]
    if extra_claims is not None:
        args += ["--extra-claims", json.dumps(extra_claims)]
    logf = tempfile.NamedTemporaryFile("w+b", prefix="oidc-provider.", suffix=".log", delete=False)
    proc = subprocess.Popen(args, cwd=NODE_DIR, stdout=subprocess.PIPE, stderr=logf,
                            stdin=subprocess.DEVNULL)
    op = None
    try:
        deadline = time.monotonic() + 30
        line = b""
        while not line.endswith(b"\n"):
            left = deadline - time.monotonic()
            if left <= 0 or proc.poll() is not None:
                break
            r, _, _ = select.select([proc.stdout], [], [], min(left, 0.5))
            if r:
                c = os.read(proc.stdout.fileno(), 4096)
                if not c:
                    break
                line += c
        op = OidcProvider(proc, None, logf.name)
        try:
            ready = json.loads(line)
        except ValueError:
            ready = {}
        if not ready.get("ready"):
            raise AssertionError(f"oidc.mjs did not start (rc={proc.poll()}): {line!r}\n"
                                 f"{op.log_text()}")
        op.issuer = ready["issuer"]
        yield op
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        proc.stdout.close()
        logf.close()
        os.unlink(logf.name)
