"""End-to-end tests of keys at rest: `zt kek generate|seal|id`, and the CA and audit
log keys sealed under the key-encryption key given by $ZT_KEK_FILE or $ZT_KEK.

Sealed files are opened here with python3-cryptography's AES-256-GCM (when it is
installed), apart from zt, to show that what is on disk is the key and only the
key's ciphertext. Every command gets its environment explicitly: the KEK
variables of the calling shell never leak in."""
import base64
import hashlib
import os
import pathlib
import re
import shutil
import stat
import subprocess

import pytest

from conftest import ZT, openssl

try:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
except ImportError:  # pragma: no cover - Debian has python3-cryptography
    AESGCM = None

TD = "example.org"
ORIGIN = "zt.example/kek-audit"
SEALED_RE = re.compile(r"^ztseal1:([a-z0-9.-]{1,64}):([0-9a-f]{8}):([A-Za-z0-9+/=]+):([A-Za-z0-9+/=]+)\n$")
RULE_RE = re.compile(r"^zt: [^\n]*\[(?P<rule>[a-z0-9][a-z0-9_.-]*)\]", re.M)


# ---- helpers ----------------------------------------------------------------


def env_of(kek_file=None, kek=None):
    """The caller's environment without any KEK, plus the one given."""
    env = {k: v for k, v in os.environ.items() if k not in ("ZT_KEK", "ZT_KEK_FILE")}
    if kek_file is not None:
        env["ZT_KEK_FILE"] = str(kek_file)
    if kek is not None:
        env["ZT_KEK"] = kek
    return env


def zt(env, *args, input=None):
    return subprocess.run([ZT, *map(str, args)], capture_output=True, text=True, input=input,
                          env=env, timeout=60)


def ok(p):
    assert p.returncode == 0, f"{p.args} failed ({p.returncode}):\n{p.stdout}\n{p.stderr}"
    return p


def refused(p, rule, *words):
    """p failed with exit 1, the rule tag and each word in its stderr."""
    assert p.returncode == 1, f"{p.args}: want exit 1, got {p.returncode}:\n{p.stdout}\n{p.stderr}"
    rules = [m.group("rule") for m in RULE_RE.finditer(p.stderr)]
    assert rule in rules, f"{p.args}: want [{rule}] in stderr, got {rules}:\n{p.stderr}"
    for w in words:
        assert w in p.stderr, f"{p.args}: {w!r} not in stderr:\n{p.stderr}"
    return p


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def kek_id(raw):
    return hashlib.sha256(b"zt-kek-id" + raw).digest()[:4].hex()


def read_kek(path):
    text = pathlib.Path(path).read_text()
    raw = base64.b64decode(text.strip(), validate=True)
    assert len(raw) == 32
    return raw


def new_kek(tmp, name="kek"):
    """A KEK made by `zt kek generate`: (path, raw bytes, ID)."""
    path = tmp / name
    p = ok(zt(env_of(), "kek", "generate", "--out", path))
    raw = read_kek(path)
    assert kek_id(raw) in p.stdout, p.stdout
    return path, raw, kek_id(raw)


def assert_sealed(path, label, kid):
    """path holds one sealed line with this label and KEK ID, mode 0600; returns its fields."""
    text = pathlib.Path(path).read_text()
    m = SEALED_RE.match(text)
    assert m, f"{path} is not one sealed line:\n{text[:200]}"
    assert m.group(1) == label, (path, m.group(1), label)
    assert m.group(2) == kid, (path, m.group(2), kid)
    assert mode(path) == 0o600, (path, oct(mode(path)))
    return m


def open_sealed(path, raw):
    """Opens a sealed file with python3-cryptography: AAD is "ztseal1:<label>:<id>:"."""
    if AESGCM is None:
        pytest.skip("python3-cryptography is not installed")
    text = pathlib.Path(path).read_text().rstrip("\n")
    magic, label, kid, nonce, ct = text.split(":")
    aad = f"{magic}:{label}:{kid}:".encode()
    nonce = base64.b64decode(nonce, validate=True)
    assert len(nonce) == 12
    return AESGCM(raw).decrypt(nonce, base64.b64decode(ct, validate=True), aad)


def ca_init(env, d, *extra):
    ok(zt(env, "ca", "init", "--trust-domain", TD, "--dir", d, *extra))
    return d


def issue(env, ca, tmp, name):
    out, key = tmp / f"{name}.chain.pem", tmp / f"{name}.key"
    p = zt(env, "ca", "issue", "--dir", ca, "--id", f"spiffe://{TD}/{name}", "--out", out,
           "--key-out", key)
    return p, out, key


def ca_keys(ca):
    ca = pathlib.Path(ca)
    return [ca / "root.key", *sorted((ca / "signing").glob("*.key"))]


def files_under(d):
    return [p for p in sorted(pathlib.Path(d).rglob("*")) if p.is_file()]


def split_chain(chain, tmp):
    certs = re.findall(r"-----BEGIN CERTIFICATE-----\n.*?-----END CERTIFICATE-----\n",
                       pathlib.Path(chain).read_text(), re.S)
    assert len(certs) == 2, chain
    leaf, inter = tmp / (chain.name + ".leaf"), tmp / (chain.name + ".inter")
    leaf.write_text(certs[0])
    inter.write_text("".join(certs[1:]))
    return leaf, inter


def check_issued(env, ca, tmp, name):
    """Issues an SVID with a plain key that openssl reads and a chain openssl verifies
    against the CA's exported bundle."""
    p, out, key = issue(env, ca, tmp, name)
    ok(p)
    assert key.read_text().startswith("-----BEGIN PRIVATE KEY-----\n"), key.read_text()[:60]
    assert mode(key) == 0o600
    openssl("pkey", "-in", key, "-noout")
    bundle = tmp / f"{name}.bundle.pem"
    ok(zt(env, "bundle", "export", "--dir", ca, "--format", "pem", "--out", bundle))
    leaf, inter = split_chain(out, tmp)
    v = openssl("verify", "-x509_strict", "-CAfile", bundle, "-untrusted", inter, leaf,
                check=False)
    assert v.returncode == 0, v.stdout + v.stderr
    # the key handed out is the certificate's
    pub_key = openssl("pkey", "-in", key, "-pubout").stdout
    pub_cert = openssl("x509", "-in", leaf, "-noout", "-pubkey").stdout
    assert pub_key == pub_cert
    return out, key


@pytest.fixture
def kek(zt_bin, tmp_path):
    return new_kek(tmp_path)


# ---- zt kek generate / id -------------------------------------------------------


def test_generate_writes_0600_and_never_overwrites(zt_bin, tmp_path):
    path, raw, kid = new_kek(tmp_path)
    assert mode(path) == 0o600
    text = path.read_text()
    assert re.fullmatch(r"[A-Za-z0-9+/]{43}=\n", text), text
    before = path.read_bytes()

    p = zt(env_of(), "kek", "generate", "--out", path)
    assert p.returncode == 1, p.stdout + p.stderr
    assert "exists" in p.stderr, p.stderr
    assert path.read_bytes() == before

    other = tmp_path / "precious"
    other.write_text("not a key\n")
    assert zt(env_of(), "kek", "generate", "--out", other).returncode == 1
    assert other.read_text() == "not a key\n"

    # two keys differ
    _, raw2, kid2 = new_kek(tmp_path, "kek2")
    assert raw2 != raw and kid2 != kid
    # --out is required
    assert zt(env_of(), "kek", "generate").returncode == 2


def test_kek_id(zt_bin, kek, tmp_path):
    path, raw, kid = kek
    p = ok(zt(env_of(kek_file=path), "kek", "id"))
    assert p.stdout == kid + "\n", p.stdout
    assert re.fullmatch(r"[0-9a-f]{8}\n", p.stdout)
    # $ZT_KEK, inline, is the same key
    p = ok(zt(env_of(kek=base64.b64encode(raw).decode()), "kek", "id"))
    assert p.stdout == kid + "\n"
    # none set
    p = zt(env_of(), "kek", "id")
    assert p.returncode == 1, p.stdout
    assert "ZT_KEK_FILE" in p.stderr and not p.stdout


# ---- the CA ---------------------------------------------------------------------


def test_ca_keys_sealed_and_never_in_the_clear(zt_bin, kek, tmp_path):
    path, raw, kid = kek
    env = env_of(kek_file=path)
    ca = ca_init(env, tmp_path / "ca")
    keys = ca_keys(ca)
    assert len(keys) == 2, keys
    for k in keys:
        assert_sealed(k, "private-key", kid)
    for f in files_under(ca):
        assert b"PRIVATE KEY" not in f.read_bytes(), f

    # the sealed text is the key of root.pem, and no piece of its PEM is on disk
    pem = open_sealed(ca / "root.key", raw).decode()
    assert pem.startswith("-----BEGIN PRIVATE KEY-----\n"), pem[:40]
    keyfile = tmp_path / "root.plain.key"  # outside the CA directory
    keyfile.write_text(pem)
    assert (openssl("pkey", "-in", keyfile, "-pubout").stdout
            == openssl("x509", "-in", ca / "root.pem", "-noout", "-pubkey").stdout)
    body = [ln for ln in pem.splitlines() if ln and not ln.startswith("-----")]
    der = base64.b64decode("".join(body))
    for f in files_under(ca):
        data = f.read_bytes()
        assert der not in data, f
        for ln in body:
            assert ln.encode() not in data, (f, ln)
    signing = open_sealed(keys[1], raw).decode()
    assert signing.startswith("-----BEGIN PRIVATE KEY-----\n") and signing != pem

    # workload keys are plain PEM on purpose; the chain verifies against the bundle
    check_issued(env, ca, tmp_path, "web")
    ok(zt(env, "ca", "status", "--dir", ca))


def test_ca_rotate_with_kek(zt_bin, kek, tmp_path):
    path, raw, kid = kek
    env = env_of(kek_file=path)
    ca = ca_init(env, tmp_path / "ca", "--signing-ttl", "7d")
    ok(zt(env, "ca", "rotate", "--dir", ca, "--ttl", "7d"))
    keys = ca_keys(ca)
    assert len(keys) == 3, keys
    for k in keys:
        assert_sealed(k, "private-key", kid)
    check_issued(env, ca, tmp_path, "after-rotate")
    # without the KEK, rotation cannot sign and leaves nothing behind
    before = sorted(str(f) for f in files_under(ca))
    refused(zt(env_of(), "ca", "rotate", "--dir", ca), "kek")
    assert sorted(str(f) for f in files_under(ca)) == before


def test_ca_needs_the_right_kek(zt_bin, kek, tmp_path):
    path, raw, kid = kek
    ca = ca_init(env_of(kek_file=path), tmp_path / "ca")

    # no KEK: exit 1, [kek], and how to give it
    p, out, key = issue(env_of(), ca, tmp_path, "a")
    refused(p, "kek", "ZT_KEK_FILE")
    assert not out.exists() and not key.exists()

    # another KEK: both IDs named
    other, _, other_id = new_kek(tmp_path, "other")
    assert other_id != kid
    p, out, key = issue(env_of(kek_file=other), ca, tmp_path, "b")
    refused(p, "kek", kid, other_id)
    assert not out.exists() and not key.exists()

    # the same key inline in $ZT_KEK works like $ZT_KEK_FILE, both ways
    inline = env_of(kek=base64.b64encode(raw).decode())
    ok(issue(inline, ca, tmp_path, "c")[0])
    ca2 = ca_init(inline, tmp_path / "ca2")
    for k in ca_keys(ca2):
        assert_sealed(k, "private-key", kid)
    check_issued(env_of(kek_file=path), ca2, tmp_path, "d")
    # $ZT_KEK wins over $ZT_KEK_FILE
    ok(issue(env_of(kek_file=other, kek=base64.b64encode(raw).decode()), ca, tmp_path, "e")[0])


@pytest.mark.parametrize("content", ["", "c2hvcnQ=\n", "not base64!\n",
                                     base64.b64encode(bytes(33)).decode() + "\n"])
def test_bad_kek_file_fails_every_command(zt_bin, tmp_path, content):
    bad = tmp_path / "bad.kek"
    bad.write_text(content)
    env = env_of(kek_file=bad)
    commands = [
        ["ca", "init", "--trust-domain", TD, "--dir", tmp_path / "ca"],
        ["ca", "status", "--dir", tmp_path / "ca"],
        ["kek", "id"],
        ["kek", "seal", bad],
        ["audit", "init", "--dir", tmp_path / "log", "--origin", ORIGIN],
        ["audit", "verify", "--dir", tmp_path / "log"],
        ["bundle", "export", "--dir", tmp_path / "ca", "--format", "pem"],
    ]
    for args in commands:
        refused(zt(env, *args), "kek", str(bad), "32 bytes", "zt kek generate")
    assert not (tmp_path / "ca").exists() and not (tmp_path / "log").exists()
    assert bad.read_text() == content
    # making a KEK needs none: it works even where $ZT_KEK_FILE names the file to be made
    new = tmp_path / "new.kek"
    p = zt(env_of(kek_file=new), "kek", "generate", "--out", new)
    assert p.returncode == 0 and new.exists(), p.stderr

    # the same for $ZT_KEK, named as such, and for a file that is not there
    p = zt(env_of(kek="c2hvcnQ="), "kek", "id")
    refused(p, "kek", "$ZT_KEK")
    p = zt(env_of(kek_file=tmp_path / "missing"), "kek", "id")
    assert p.returncode == 1 and str(tmp_path / "missing") in p.stderr, p.stderr


# ---- zt kek seal ------------------------------------------------------------------


def test_seal_an_existing_ca(zt_bin, kek, tmp_path):
    path, raw, kid = kek
    ca = ca_init(env_of(), tmp_path / "ca")  # made without a KEK: plain PEM
    keys = ca_keys(ca)
    plain = {k: k.read_text() for k in keys}
    for k in keys:
        assert plain[k].startswith("-----BEGIN PRIVATE KEY-----\n")
    env = env_of(kek_file=path)

    # no KEK: nothing to seal with
    p = zt(env_of(), "kek", "seal", *keys)
    assert p.returncode == 1 and "ZT_KEK_FILE" in p.stderr, p.stderr
    assert all(k.read_text() == plain[k] for k in keys)

    p = ok(zt(env, "kek", "seal", *keys))
    for k in keys:
        assert f"sealed {k} (private-key)" in p.stdout, p.stdout
        assert_sealed(k, "private-key", kid)
        assert open_sealed(k, raw).decode() == plain[k]

    # a second seal is refused, and the file is left as it is
    sealed = {k: k.read_bytes() for k in keys}
    p = zt(env, "kek", "seal", keys[0])
    assert "sealed already" in p.stderr, p.stdout + p.stderr
    assert "sealed " + str(keys[0]) + " (" not in p.stdout
    assert keys[0].read_bytes() == sealed[keys[0]]
    p = zt(env, "kek", "seal", "--label", "audit-log-key", keys[1])
    assert "sealed already" in p.stderr, p.stdout + p.stderr
    assert keys[1].read_bytes() == sealed[keys[1]]

    # the CA keeps working, with the KEK only
    check_issued(env, ca, tmp_path, "after-seal")
    ok(zt(env, "ca", "rotate", "--dir", ca))
    for k in ca_keys(ca):
        assert_sealed(k, "private-key", kid)
    refused(issue(env_of(), ca, tmp_path, "nokek")[0], "kek")

    # a file it cannot place needs --label; a label it does not know is a usage error
    odd = tmp_path / "odd"
    odd.write_text("something\n")
    p = zt(env, "kek", "seal", odd)
    assert p.returncode == 1 and "--label" in p.stderr, p.stderr
    assert odd.read_text() == "something\n"
    assert zt(env, "kek", "seal", "--label", "Private-Key", odd).returncode == 2
    assert odd.read_text() == "something\n"


# ---- the audit log ------------------------------------------------------------------


def audit_init(env, d):
    p = ok(zt(env, "audit", "init", "--dir", d, "--origin", ORIGIN))
    assert p.stdout.startswith(ORIGIN + "+"), p.stdout
    return d


def append(env, d, action="test.write", *extra):
    return zt(env, "audit", "append", "--dir", d, "--actor", "spiffe://example.org/a",
              "--action", action, *extra)


def test_audit_keys_sealed(zt_bin, kek, tmp_path):
    path, raw, kid = kek
    env = env_of(kek_file=path)
    d = audit_init(env, tmp_path / "log")
    assert_sealed(d / "log.key", "audit-log-key", kid)
    assert_sealed(d / "hmac.key", "audit-hmac-key", kid)
    assert open_sealed(d / "log.key", raw).startswith(b"PRIVATE+KEY+" + ORIGIN.encode() + b"+")
    hk = open_sealed(d / "hmac.key", raw)
    assert len(base64.b64decode(hk.strip(), validate=True)) == 32
    assert not (d / "log.pub").read_text().startswith("ztseal1:")
    for f in files_under(d):
        assert b"PRIVATE+KEY" not in f.read_bytes(), f

    # with the KEK: append, checkpoint and search by secret
    ok(append(env, d, "test.write", "--secret", "token=s3cr3t"))
    ok(append(env, d, "test.read", "--secret", "token=other"))
    ok(zt(env, "audit", "checkpoint", "--dir", d))
    p = ok(zt(env, "audit", "search", "--dir", d, "--secret", "token=s3cr3t"))
    lines = p.stdout.splitlines()
    assert len(lines) == 1 and lines[0].startswith("0\t") and "test.write" in lines[0], p.stdout
    assert "s3cr3t" not in "".join(f.read_text(errors="replace") for f in files_under(d))

    # without it: every command that needs a secret fails, and says why
    noenv = env_of()
    refused(append(noenv, d), "kek", "ZT_KEK_FILE")
    refused(zt(noenv, "audit", "checkpoint", "--dir", d), "kek")
    refused(zt(noenv, "audit", "search", "--dir", d, "--secret", "token=s3cr3t"), "kek")
    # with another: both IDs named
    other, _, other_id = new_kek(tmp_path, "other")
    refused(append(env_of(kek_file=other), d), "kek", kid, other_id)

    # verification needs no secret
    pub = tmp_path / "trusted.pub"
    shutil.copy(d / "log.pub", pub)
    p = ok(zt(noenv, "audit", "verify", "--dir", d, "--key", pub))
    assert p.stdout.startswith("ok: 2 entries"), p.stdout
    # and nothing above changed the log
    p = ok(zt(env, "audit", "search", "--dir", d))
    assert len(p.stdout.splitlines()) == 2, p.stdout


def test_audit_reading_needs_no_kek(zt_bin, kek, tmp_path):
    """Reading a log (tail, search without --secret, prove) takes no secret: a reader
    without hmac.key could always do it, so one without the KEK can too."""
    path, raw, kid = kek
    env = env_of(kek_file=path)
    d = audit_init(env, tmp_path / "log")
    ok(append(env, d))
    ok(zt(env, "audit", "checkpoint", "--dir", d))
    noenv = env_of()
    failed = []
    for args, want in ((["tail", "--dir", d], "test.write"),
                       (["search", "--dir", d, "--action", "test.write"], "0\t"),
                       (["prove", "--dir", d, "--index", 0], ""),
                       (["consistency", "--dir", d, "--from", 1], "")):
        p = zt(noenv, "audit", *args)
        if p.returncode != 0 or want not in p.stdout:
            failed.append(f"zt audit {args[0]}: exit {p.returncode}: {p.stderr.strip()}")
    assert not failed, "\n".join(failed)
    # --secret does need the key
    refused(zt(noenv, "audit", "search", "--dir", d, "--secret", "token=x"), "kek")


def test_sealed_key_of_another_kind_is_refused(zt_bin, kek, tmp_path):
    path, raw, kid = kek
    env = env_of(kek_file=path)
    ca = ca_init(env, tmp_path / "ca")
    d = audit_init(env, tmp_path / "log")
    ok(append(env, d))

    # a sealed CA key renamed over log.key: a private-key is not an audit-log-key
    saved = (d / "log.key").read_bytes()
    shutil.copy(ca / "root.key", d / "log.key")
    p = refused(append(env, d), "sealed", "private-key", "audit-log-key")
    assert "log.key" in p.stderr
    refused(zt(env, "audit", "checkpoint", "--dir", d), "sealed")
    (d / "log.key").write_bytes(saved)

    # log.key over hmac.key, and hmac.key over a CA key
    saved_h = (d / "hmac.key").read_bytes()
    (d / "hmac.key").write_bytes(saved)
    refused(append(env, d), "sealed", "audit-log-key", "audit-hmac-key")
    (d / "hmac.key").write_bytes(saved_h)
    ok(append(env, d))
    root = (ca / "root.key").read_bytes()
    (ca / "root.key").write_bytes(saved_h)
    refused(issue(env, ca, tmp_path, "x")[0], "sealed", "audit-hmac-key", "private-key")
    (ca / "root.key").write_bytes(root)
    ok(issue(env, ca, tmp_path, "y")[0])

    # a sealed file that was altered is refused, not read as plain
    line = (ca / "root.key").read_text()
    i = len(line) - 10
    (ca / "root.key").write_text(line[:i] + ("A" if line[i] != "A" else "B") + line[i + 1:])
    refused(issue(env, ca, tmp_path, "z")[0], "sealed")


def test_seal_an_existing_audit_log(zt_bin, kek, tmp_path):
    path, raw, kid = kek
    d = audit_init(env_of(), tmp_path / "log")
    ok(append(env_of(), d, "test.write", "--secret", "token=s3cr3t"))
    env = env_of(kek_file=path)
    p = ok(zt(env, "kek", "seal", d / "log.key"))
    assert "(audit-log-key)" in p.stdout, p.stdout
    # hmac.key is bare base64: its kind must be given
    p = zt(env, "kek", "seal", d / "hmac.key")
    assert p.returncode == 1 and "--label" in p.stderr, p.stderr
    ok(zt(env, "kek", "seal", "--label", "audit-hmac-key", d / "hmac.key"))
    assert_sealed(d / "log.key", "audit-log-key", kid)
    assert_sealed(d / "hmac.key", "audit-hmac-key", kid)
    ok(append(env, d))
    ok(zt(env, "audit", "checkpoint", "--dir", d))
    p = ok(zt(env, "audit", "search", "--dir", d, "--secret", "token=s3cr3t"))
    assert len(p.stdout.splitlines()) == 1, p.stdout
    refused(append(env_of(), d), "kek")
    ok(zt(env_of(), "audit", "verify", "--dir", d, "--key", d / "log.pub"))
