"""zt server keeps its CA and its own certificate fresh while it runs.

With a 10 s signing CA (--signing-ttl, for tests), the server rotates the
signing CA at half life, republishes the bundle (DIR/bundle.pem and
GET /v1/bundle, the old signing CA kept until it expires), renews its own
certificate and serves new connections with it, without a restart; every
rotation and every certificate is on the audit log. Clients that trust the
bundle keep working throughout.
"""
import json
import os
import subprocess
import time

from conftest import ZT
from server_helpers import Server, expect


def run(s, *args):
    env = dict(os.environ, ZT_SERVER=s.url, ZT_TOKEN=s.token, ZT_CA_FILE=str(s.dir / "bundle.pem"),
               HOME=str(s.base))
    for k in ("ZT_CERT", "ZT_KEY", "ZT_CONFIG"):
        env.pop(k, None)
    return subprocess.run([ZT, *map(str, args)], capture_output=True, text=True, env=env, timeout=30)


def server_cert_serial(s):
    p = subprocess.run(["openssl", "x509", "-noout", "-serial", "-in", str(s.dir / "server.pem")],
                       capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    return p.stdout.strip()


def served_cert_serial(s):
    """The serial of the certificate the server presents on a new connection."""
    p = subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{s.port}", "-CAfile",
                        str(s.dir / "bundle.pem"), "-verify_return_error"],
                       input="", capture_output=True, text=True, timeout=10)
    assert "Verify return code: 0 (ok)" in p.stdout, p.stdout[-2000:] + p.stderr
    x = subprocess.run(["openssl", "x509", "-noout", "-serial"], input=p.stdout,
                       capture_output=True, text=True)
    return x.stdout.strip()


def test_the_ca_and_the_server_certificate_rotate_while_serving(tmp_path):
    s = Server(tmp_path, dev=True)
    s.start(extra=["--signing-ttl", "10s"])
    try:
        bundle0 = (s.dir / "bundle.pem").read_text()
        serial0 = served_cert_serial(s)
        assert serial0 == server_cert_serial(s)
        issued = []
        deadline = time.monotonic() + 25
        rotations = 0
        while time.monotonic() < deadline and rotations < 2:
            # clients keep working through every rotation
            p = run(s, "org", "get", "demo")
            assert p.returncode == 0, p.stderr
            key = tmp_path / f"w{len(issued)}.key"
            p = run(s, "svid", "request", "--id", "spiffe://zt.local/ns/dev/sa/web", "--ttl", "1m",
                    "--key-out", key, "--out", tmp_path / f"w{len(issued)}.pem")
            assert p.returncode == 0, p.stderr
            issued.append(tmp_path / f"w{len(issued)}.pem")
            entries = json.loads(run(s, "audit", "entries", "--limit", "1000").stdout.replace("\n", ",").rstrip(",").join("[]"))
            rotations = sum(1 for it in entries if it["entry"]["action"] == "ca.rotate")
            time.sleep(0.5)
        assert rotations >= 2, f"no rotation within 25 s: {s.stderr()[-3000:]}"
        # the bundle moved on, and the file and the API agree
        bundle1 = (s.dir / "bundle.pem").read_text()
        assert bundle1 != bundle0
        r = expect(s.get("/v1/bundle"), 200)
        assert r.body.decode() == bundle1
        # the server presents a renewed certificate, the one on disk, and it verifies
        serial1 = served_cert_serial(s)
        assert serial1 != serial0 and serial1 == server_cert_serial(s)
        # SVIDs issued before and after a rotation all verify against the new bundle while
        # they live (the old signing CA stays in the bundle until it expires)
        for crt in issued[-2:]:
            p = subprocess.run([ZT, "svid", "verify", "--bundle", str(s.dir / "bundle.pem"), str(crt)],
                               capture_output=True, text=True)
            assert p.returncode == 0, p.stdout + p.stderr
        # every rotation and every certificate is on the log, by the server
        actions = [it["entry"] for it in entries]
        rot = [a for a in actions if a["action"] == "ca.rotate"]
        assert all(a["actor"] == "zt-server" and a["details"]["signing_not_after"] for a in rot)
        srv_certs = [a for a in actions if a["action"] == "svid.issue"
                     and a["target"] == "spiffe://zt.local/zt/server"]
        assert len(srv_certs) >= 2, actions
        assert len([a for a in actions if a["action"] == "svid.issue"
                    and a["target"] == "spiffe://zt.local/ns/dev/sa/web"]) >= len(issued) - 1
    finally:
        status, _ = s.stop()
    assert status == 0, s.stderr()[-3000:]
    p = subprocess.run([ZT, "audit", "verify", "--dir", str(s.dir / "audit")], capture_output=True,
                       text=True)
    assert p.returncode == 0, p.stdout + p.stderr


def test_signing_ttl_is_checked(tmp_path):
    for bad in ("5s", "31d", "soon"):
        p = subprocess.run([ZT, "server", "--dir", str(tmp_path / "x"), "--signing-ttl", bad],
                           capture_output=True, text=True, timeout=10)
        assert p.returncode == 2 and "--signing-ttl" in p.stderr, p.stderr
        assert not (tmp_path / "x").exists()
