"""End-to-end tests of the certificate authority CLI: `zt ca init|rotate|issue|status`,
`zt bundle export`, `zt svid verify` and `zt demo`, checked against openssl."""
import base64
import datetime as dt
import hashlib
import json
import os
import pathlib
import re
import stat

import pytest

from conftest import ZT, openssl, zt

TD = "example.org"
PEM_RE = re.compile(r"-----BEGIN CERTIFICATE-----\n.*?\n-----END CERTIFICATE-----\n?", re.S)
RULE_RE = re.compile(r"\[[a-z0-9][a-z0-9_.-]*\]")

HOUR = dt.timedelta(hours=1)
DAY = dt.timedelta(days=1)


# ---- helpers ----------------------------------------------------------------


def need_zt():
    assert os.access(ZT, os.X_OK), f"{ZT} not built: run make"


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def now():
    return dt.datetime.now(dt.timezone.utc)


def pem_certs(text):
    """The PEM certificate blocks of `text`, in order."""
    if isinstance(text, pathlib.Path):
        text = text.read_text()
    return [m.group(0).rstrip("\n") + "\n" for m in PEM_RE.finditer(text)]


def write(path, text):
    path = pathlib.Path(path)
    path.write_text(text)
    return path


def split_chain(chain_path, tmp):
    """Splits an SVID chain file into leaf.pem and the rest (intermediates)."""
    certs = pem_certs(pathlib.Path(chain_path))
    assert len(certs) == 2, f"expected leaf + signing CA in {chain_path}, got {len(certs)} certs"
    stem = pathlib.Path(chain_path).stem
    leaf = write(tmp / f"{stem}.leaf.pem", certs[0])
    inter = write(tmp / f"{stem}.inter.pem", "".join(certs[1:]))
    return leaf, inter


def x509_text(path, inform="PEM"):
    return openssl("x509", "-inform", inform, "-in", path, "-noout", "-text").stdout


def _odate(s):
    # "Jan  2 03:04:05 2025 GMT"
    v = " ".join(s.split("=", 1)[1].split())
    return dt.datetime.strptime(v, "%b %d %H:%M:%S %Y GMT").replace(tzinfo=dt.timezone.utc)


def cert_dates(path):
    out = openssl("x509", "-in", path, "-noout", "-startdate", "-enddate").stdout.splitlines()
    nb = next(line for line in out if line.startswith("notBefore="))
    na = next(line for line in out if line.startswith("notAfter="))
    return _odate(nb), _odate(na)


def assert_validity(path, ttl, t0, slack=dt.timedelta(minutes=3)):
    """notAfter is ttl after the moment of issuance (t0 .. now), notBefore not in the future
    and not backdated by more than 15 minutes."""
    nb, na = cert_dates(path)
    t1 = now()
    assert t0 - slack <= na - ttl <= t1 + slack, f"{path}: notAfter {na} is not ~{ttl} after {t0}"
    assert nb <= t1 + dt.timedelta(seconds=5), f"{path}: notBefore {nb} is in the future"
    assert t0 - nb <= dt.timedelta(minutes=15), f"{path}: notBefore {nb} backdated too far"


def san_entries(text):
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if "X509v3 Subject Alternative Name" in line:
            return [e.strip() for e in lines[i + 1].split(",") if e.strip()]
    return []


def ext_block(text, name):
    """(header line, value line) of an extension in `openssl x509 -text` output."""
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if name in line:
            return line.strip(), lines[i + 1].strip()
    raise AssertionError(f"extension {name!r} missing from:\n{text}")


def pubkey_of_cert(path):
    return openssl("x509", "-in", path, "-noout", "-pubkey").stdout


def sha256_tree(d):
    d = pathlib.Path(d)
    return {
        str(p.relative_to(d)): (hashlib.sha256(p.read_bytes()).hexdigest(), mode(p))
        for p in sorted(d.rglob("*"))
        if p.is_file()
    }


def ca_init(d, td=TD, *extra):
    p = zt("ca", "init", "--trust-domain", td, "--dir", d, *extra)
    assert p.returncode == 0, f"ca init failed ({p.returncode}):\n{p.stdout}\n{p.stderr}"
    return d


def issue(ca, tmp, name, spiffe_id, *extra, key=True, check=True):
    """Runs `zt ca issue`; returns (CompletedProcess, out path, key path)."""
    out = tmp / f"{name}.chain.pem"
    keyp = tmp / f"{name}.key"
    args = ["ca", "issue", "--dir", ca, "--id", spiffe_id, "--out", out]
    if key:
        args += ["--key-out", keyp]
    p = zt(*args, *extra)
    if check:
        assert p.returncode == 0, f"ca issue failed ({p.returncode}):\n{p.stdout}\n{p.stderr}"
    return p, out, keyp


def export(ca, fmt):
    p = zt("bundle", "export", "--dir", ca, "--format", fmt)
    assert p.returncode == 0, f"bundle export {fmt} failed ({p.returncode}):\n{p.stderr}"
    return p.stdout


def signing_files(ca):
    sd = pathlib.Path(ca) / "signing"
    pems = sorted(sd.glob("*.pem"))
    keys = sorted(sd.glob("*.key"))
    return pems, keys


def b64url_decode(s):
    assert re.fullmatch(r"[A-Za-z0-9_-]+", s), f"not unpadded base64url: {s!r}"
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def spki_xy(pub_pem):
    """x, y of a P-256 public key from its PEM SubjectPublicKeyInfo."""
    body = "".join(line for line in pub_pem.splitlines() if not line.startswith("-----"))
    der = base64.b64decode(body)
    point = der[-65:]
    assert point[0] == 0x04, "expected an uncompressed EC point"
    return point[1:33], point[33:65]


@pytest.fixture(scope="module")
def ca(tmp_path_factory):
    """One CA for the tests that only issue and read."""
    need_zt()
    d = tmp_path_factory.mktemp("ca") / "ca"
    return ca_init(d, TD, "--root-ttl", "365d", "--signing-ttl", "7d")


# ---- 1. init ------------------------------------------------------------------


def test_init_creates_files_and_certificates(zt_bin, tmp_path):
    d = tmp_path / "ca"
    t0 = now()
    ca_init(d, TD, "--root-ttl", "365d", "--signing-ttl", "7d")

    for f in ("root.pem", "root.key", "ca.json"):
        assert (d / f).is_file(), f"{f} missing"
    json.loads((d / "ca.json").read_text())  # ca.json is JSON
    assert mode(d) == 0o700, oct(mode(d))
    assert mode(d / "root.key") == 0o600, oct(mode(d / "root.key"))

    pems, keys = signing_files(d)
    assert len(pems) == 1 and len(keys) == 1, (pems, keys)
    assert pems[0].stem == keys[0].stem, (pems, keys)
    assert re.fullmatch(r"[0-9a-f]+", pems[0].stem), pems[0].stem
    assert mode(keys[0]) == 0o600, oct(mode(keys[0]))
    # no private key material in the public files
    for f in (d / "root.pem", pems[0], d / "ca.json"):
        assert "PRIVATE KEY" not in f.read_text(), f

    root = x509_text(d / "root.pem")
    hdr, val = ext_block(root, "X509v3 Basic Constraints")
    assert "critical" in hdr and "CA:TRUE" in val, (hdr, val)
    _, ku = ext_block(root, "X509v3 Key Usage")
    assert "Certificate Sign" in ku, ku
    assert f"URI:spiffe://{TD}" in san_entries(root), san_entries(root)
    assert "prime256v1" in root and "id-ecPublicKey" in root
    assert "ecdsa-with-SHA256" in root
    assert_validity(d / "root.pem", 365 * DAY, t0)

    # the root key matches root.pem
    pub = openssl("pkey", "-in", d / "root.key", "-pubout").stdout
    assert pub == pubkey_of_cert(d / "root.pem")

    sig = x509_text(pems[0])
    hdr, val = ext_block(sig, "X509v3 Basic Constraints")
    assert "CA:TRUE" in val, val
    _, ku = ext_block(sig, "X509v3 Key Usage")
    assert "Certificate Sign" in ku, ku
    assert "prime256v1" in sig
    assert_validity(pems[0], 7 * DAY, t0)
    v = openssl("verify", "-x509_strict", "-CAfile", d / "root.pem", pems[0], check=False)
    assert v.returncode == 0, v.stdout + v.stderr
    pub = openssl("pkey", "-in", keys[0], "-pubout").stdout
    assert pub == pubkey_of_cert(pems[0])
    assert pubkey_of_cert(pems[0]) != pubkey_of_cert(d / "root.pem")


def test_status(zt_bin, ca):
    p = zt("ca", "status", "--dir", ca)
    assert p.returncode == 0, p.stderr
    assert TD in p.stdout, p.stdout


@pytest.mark.parametrize("bad_td", ["Example.org", "a:b"])
def test_init_invalid_trust_domain(zt_bin, tmp_path, bad_td):
    d = tmp_path / "ca"
    p = zt("ca", "init", "--trust-domain", bad_td, "--dir", d)
    assert p.returncode != 0, p.stdout
    assert re.search(r"trust.domain|td-|case|char", p.stderr, re.I), p.stderr
    assert not (d / "root.pem").exists()
    assert not (d / "root.key").exists()


# ---- 2. init twice ------------------------------------------------------------


def test_init_twice_refuses_and_changes_nothing(zt_bin, tmp_path):
    d = ca_init(tmp_path / "ca")
    before = sha256_tree(d)
    assert len(before) >= 5, before
    for td in (TD, "other.org"):
        p = zt("ca", "init", "--trust-domain", td, "--dir", d)
        assert p.returncode == 1, (p.returncode, p.stdout, p.stderr)
        assert "exist" in p.stderr.lower(), p.stderr
        assert sha256_tree(d) == before
    assert mode(d) == 0o700


# ---- 3. issue with --key-out --------------------------------------------------


def test_issue_keyout_chain_verifies(zt_bin, ca, tmp_path):
    sid = f"spiffe://{TD}/ns/prod/sa/web"
    _, out, key = issue(ca, tmp_path, "web", sid)
    leaf, inter = split_chain(out, tmp_path)
    # the intermediate in the chain is the CA's active signing certificate
    pems, _ = signing_files(ca)
    assert pem_certs(inter)[0] in [pem_certs(p)[0] for p in pems]
    assert pem_certs(inter)[0] != pem_certs(pathlib.Path(ca) / "root.pem")[0]

    root = pathlib.Path(ca) / "root.pem"
    for extra in ([], ["-purpose", "sslclient"], ["-purpose", "sslserver"]):
        v = openssl("verify", "-x509_strict", *extra, "-CAfile", root, "-untrusted", inter, leaf,
                    check=False)
        assert v.returncode == 0, f"{extra}: {v.stdout}{v.stderr}"
    # and not without the intermediate
    v = openssl("verify", "-x509_strict", "-CAfile", root, leaf, check=False)
    assert v.returncode != 0, v.stdout

    p = zt("svid", "verify", "--bundle", root, "--id", sid, out)
    assert p.returncode == 0, p.stderr
    assert sid in p.stdout


def test_issue_keyout_leaf_contents(zt_bin, ca, tmp_path):
    sid = f"spiffe://{TD}/ns/prod/sa/api"
    t0 = now()
    _, out, key = issue(ca, tmp_path, "api", sid)
    leaf, _ = split_chain(out, tmp_path)
    text = x509_text(leaf)

    sans = san_entries(text)
    uris = [s for s in sans if s.startswith("URI:")]
    assert uris == [f"URI:{sid}"], sans
    assert not [s for s in sans if s.startswith("DNS:")], sans
    _, bc = ext_block(text, "X509v3 Basic Constraints")
    assert "CA:FALSE" in bc, bc
    hdr, ku = ext_block(text, "X509v3 Key Usage")
    assert "critical" in hdr, hdr
    assert "Digital Signature" in ku, ku
    assert "Certificate Sign" not in ku and "CRL Sign" not in ku, ku
    _, eku = ext_block(text, "X509v3 Extended Key Usage")
    assert "TLS Web Server Authentication" in eku and "TLS Web Client Authentication" in eku, eku
    assert "prime256v1" in text
    assert_validity(leaf, HOUR, t0)

    # the key file: P-256, mode 0600, matches the certificate
    assert mode(key) == 0o600, oct(mode(key))
    ktext = openssl("pkey", "-in", key, "-noout", "-text").stdout
    assert "prime256v1" in ktext or "P-256" in ktext, ktext
    assert openssl("pkey", "-in", key, "-pubout").stdout == pubkey_of_cert(leaf)
    assert "PRIVATE KEY" not in out.read_text()


def test_issue_ttl_10m(zt_bin, ca, tmp_path):
    t0 = now()
    _, out, _ = issue(ca, tmp_path, "short", f"spiffe://{TD}/short", "--ttl", "10m")
    leaf, _ = split_chain(out, tmp_path)
    assert_validity(leaf, dt.timedelta(minutes=10), t0, slack=dt.timedelta(minutes=1))


def test_issue_dns_names(zt_bin, ca, tmp_path):
    sid = f"spiffe://{TD}/dns"
    _, out, _ = issue(ca, tmp_path, "dns", sid, "--dns", "a.example", "--dns", "b.example")
    leaf, inter = split_chain(out, tmp_path)
    sans = san_entries(x509_text(leaf))
    assert sorted(sans) == sorted([f"URI:{sid}", "DNS:a.example", "DNS:b.example"]), sans
    v = openssl("verify", "-x509_strict", "-purpose", "sslserver", "-CAfile",
                pathlib.Path(ca) / "root.pem", "-untrusted", inter, leaf, check=False)
    assert v.returncode == 0, v.stdout + v.stderr


def test_leaf_never_outlives_signing_ca(zt_bin, tmp_path):
    d = ca_init(tmp_path / "ca", TD, "--signing-ttl", "2h")
    p, out, _ = issue(d, tmp_path, "long", f"spiffe://{TD}/long", "--ttl", "24h", check=False)
    if p.returncode != 0:  # refusing is fine too, but then with a reason and no output
        assert p.stderr.strip()
        assert not out.exists()
        return
    leaf, inter = split_chain(out, tmp_path)
    assert cert_dates(leaf)[1] <= cert_dates(inter)[1]


# ---- 4. issue with --csr ------------------------------------------------------


def make_csr(tmp):
    key = tmp / "csr.key"
    csr = tmp / "csr.pem"
    openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", key, "-subj", "/CN=evil",
            "-addext", "subjectAltName=URI:spiffe://evil.org/x,DNS:evil.example",
            "-out", csr)
    return key, csr


def tamper_csr(csr, tmp):
    """A copy of the CSR with one byte of its signature flipped: as DER and as PEM."""
    der = tmp / "orig.der"
    openssl("req", "-in", csr, "-outform", "DER", "-out", der)
    raw = bytearray(der.read_bytes())
    raw[-1] ^= 0x01  # last byte of the DER = last byte of the ECDSA signature's s
    bad_der = tmp / "bad.der"
    bad_der.write_bytes(bytes(raw))
    b64 = base64.encodebytes(bytes(raw)).decode().replace("\n", "")
    body = "\n".join(b64[i:i + 64] for i in range(0, len(b64), 64))
    bad_pem = write(tmp / "bad.pem",
                    f"-----BEGIN CERTIFICATE REQUEST-----\n{body}\n-----END CERTIFICATE REQUEST-----\n")
    return bad_der, bad_pem


def test_issue_csr_ignores_requested_names(zt_bin, ca, tmp_path):
    key, csr = make_csr(tmp_path)
    sid = f"spiffe://{TD}/ns/prod/sa/csr"
    _, out, _ = issue(ca, tmp_path, "csr", sid, "--csr", csr, key=False)
    leaf, inter = split_chain(out, tmp_path)
    text = x509_text(leaf)
    assert "evil" not in text.lower(), text
    assert [s for s in san_entries(text) if s.startswith("URI:")] == [f"URI:{sid}"]
    assert not [s for s in san_entries(text) if s.startswith("DNS:")]
    csr_pub = openssl("req", "-in", csr, "-noout", "-pubkey").stdout
    assert csr_pub == pubkey_of_cert(leaf)
    assert openssl("pkey", "-in", key, "-pubout").stdout == pubkey_of_cert(leaf)
    v = openssl("verify", "-x509_strict", "-CAfile", pathlib.Path(ca) / "root.pem",
                "-untrusted", inter, leaf, check=False)
    assert v.returncode == 0, v.stdout + v.stderr


def test_issue_csr_tampered_refused(zt_bin, ca, tmp_path):
    _, csr = make_csr(tmp_path)
    bad_der, bad_pem = tamper_csr(csr, tmp_path)
    # the tampering really breaks only the signature
    # (openssl 3.0's `req -verify` exits 0 either way: read its verdict)
    good = openssl("req", "-in", csr, "-noout", "-verify", check=False)
    assert "verify OK" in good.stdout + good.stderr
    for args in (["-in", bad_pem], ["-inform", "DER", "-in", bad_der]):
        r = openssl("req", *args, "-noout", "-verify", check=False)
        assert "verify OK" not in r.stdout + r.stderr and "failure" in r.stdout + r.stderr
    assert openssl("req", "-in", bad_pem, "-noout", "-text", check=False).returncode == 0
    for bad in (bad_pem, bad_der):
        out = tmp_path / f"{bad.name}.chain.pem"
        p = zt("ca", "issue", "--dir", ca, "--id", f"spiffe://{TD}/t", "--csr", bad, "--out", out)
        assert p.returncode != 0, f"{bad.name} accepted: {p.stdout}"
        assert p.stderr.strip(), bad.name
        assert not out.exists() or out.stat().st_size == 0, f"{bad.name}: output written"
    # control: the same CSR re-encoded the same way, untampered, is accepted
    orig = (tmp_path / "orig.der").read_bytes()
    b64 = base64.encodebytes(orig).decode().replace("\n", "")
    body = "\n".join(b64[i:i + 64] for i in range(0, len(b64), 64))
    good = write(tmp_path / "good.pem",
                 f"-----BEGIN CERTIFICATE REQUEST-----\n{body}\n-----END CERTIFICATE REQUEST-----\n")
    issue(ca, tmp_path, "good", f"spiffe://{TD}/t", "--csr", good, key=False)


# ---- 5. issue refusals --------------------------------------------------------


def _refusal_cases(tmp, ca):
    _, csr = make_csr(tmp)
    return {
        "other-td": ["--id", "spiffe://other.org/x", "--key-out", tmp / "k"],
        "trailing-slash": ["--id", f"spiffe://{TD}/a/", "--key-out", tmp / "k"],
        "not-spiffe": ["--id", f"https://{TD}/a", "--key-out", tmp / "k"],
        "csr-and-key-out": ["--id", f"spiffe://{TD}/a", "--csr", csr, "--key-out", tmp / "k"],
        "neither": ["--id", f"spiffe://{TD}/a"],
        "ttl-1x": ["--id", f"spiffe://{TD}/a", "--key-out", tmp / "k", "--ttl", "1x"],
        "ttl-0s": ["--id", f"spiffe://{TD}/a", "--key-out", tmp / "k", "--ttl", "0s"],
    }


@pytest.mark.parametrize("case", ["other-td", "trailing-slash", "not-spiffe", "csr-and-key-out",
                                  "neither", "ttl-1x", "ttl-0s"])
def test_issue_refuses(zt_bin, ca, tmp_path, case):
    args = _refusal_cases(tmp_path, ca)[case]
    out = tmp_path / "out.pem"
    p = zt("ca", "issue", "--dir", ca, *args, "--out", out)
    assert p.returncode != 0, f"{case} accepted: {p.stdout}"
    assert p.stderr.strip(), case
    assert not out.exists(), f"{case}: output written"
    assert not (tmp_path / "k").exists(), f"{case}: key written"


def test_issue_refuses_existing_key_file(zt_bin, ca, tmp_path):
    k = tmp_path / "existing.key"
    k.write_text("precious\n")
    os.chmod(k, 0o600)
    out = tmp_path / "out.pem"
    p = zt("ca", "issue", "--dir", ca, "--id", f"spiffe://{TD}/a", "--key-out", k, "--out", out)
    assert p.returncode != 0, p.stdout
    assert p.stderr.strip()
    assert k.read_text() == "precious\n"
    assert not out.exists()


# ---- 6. rotate ----------------------------------------------------------------


def test_rotate_keeps_old_svids_valid(zt_bin, tmp_path):
    d = ca_init(tmp_path / "ca", TD, "--signing-ttl", "7d")
    root = d / "root.pem"
    seq0 = json.loads(export(d, "spiffe"))["spiffe_sequence"]
    assert len(pem_certs(export(d, "pem"))) == 2

    ida, idb = f"spiffe://{TD}/a", f"spiffe://{TD}/b"
    _, outa, _ = issue(d, tmp_path, "a", ida)
    p = zt("ca", "rotate", "--dir", d, "--ttl", "7d")
    assert p.returncode == 0, p.stdout + p.stderr
    _, outb, _ = issue(d, tmp_path, "b", idb)

    leafa, intera = split_chain(outa, tmp_path)
    leafb, interb = split_chain(outb, tmp_path)
    issa = openssl("x509", "-in", leafa, "-noout", "-issuer").stdout
    issb = openssl("x509", "-in", leafb, "-noout", "-issuer").stdout
    assert issa != issb, (issa, issb)
    assert pem_certs(intera) != pem_certs(interb)

    pems, keys = signing_files(d)
    assert len(pems) == 2 and len(keys) == 2, (pems, keys)

    pem_bundle = export(d, "pem")
    certs = pem_certs(pem_bundle)
    assert len(certs) == 3, pem_bundle
    assert pem_certs(root)[0] in certs
    assert pem_certs(intera)[0] in certs and pem_certs(interb)[0] in certs
    bpath = write(tmp_path / "bundle.pem", pem_bundle)

    for sid, out, leaf, inter in ((ida, outa, leafa, intera), (idb, outb, leafb, interb)):
        p = zt("svid", "verify", "--bundle", bpath, "--id", sid, out)
        assert p.returncode == 0, f"{sid}: {p.stderr}"
        assert sid in p.stdout
        v = openssl("verify", "-x509_strict", "-CAfile", root, "-untrusted", inter, leaf,
                    check=False)
        assert v.returncode == 0, f"{sid}: {v.stdout}{v.stderr}"
    # each leaf really was signed by its own intermediate only
    v = openssl("verify", "-x509_strict", "-CAfile", root, "-untrusted", interb, leafa,
                check=False)
    assert v.returncode != 0, v.stdout

    doc = json.loads(export(d, "spiffe"))
    assert len([k for k in doc["keys"] if k.get("use") == "x509-svid"]) == 3, doc
    assert doc["spiffe_sequence"] > seq0, (seq0, doc["spiffe_sequence"])

    p = zt("ca", "rotate", "--dir", d)
    assert p.returncode == 0, p.stderr
    assert json.loads(export(d, "spiffe"))["spiffe_sequence"] > doc["spiffe_sequence"]


# ---- 7. SPIFFE bundle export --------------------------------------------------


def test_bundle_export_spiffe_structure(zt_bin, ca, tmp_path):
    raw = export(ca, "spiffe")
    doc = json.loads(raw)
    assert isinstance(doc, dict)
    for k in ("spiffe_sequence", "spiffe_refresh_hint", "keys"):
        assert k in doc, f"{k} missing: {doc}"
    seq, hint = doc["spiffe_sequence"], doc["spiffe_refresh_hint"]
    assert isinstance(seq, int) and not isinstance(seq, bool) and seq >= 0, seq
    assert isinstance(hint, int) and not isinstance(hint, bool) and hint > 0, hint
    keys = doc["keys"]
    assert isinstance(keys, list) and len(keys) == 2, keys  # root + one signing CA

    pem_bundle = pem_certs(export(ca, "pem"))
    pem_ders = set()
    for c in pem_bundle:
        body = "".join(line for line in c.splitlines() if not line.startswith("-----"))
        pem_ders.add(base64.b64decode(body))

    seen = set()
    for i, k in enumerate(keys):
        assert set(k) == {"use", "kty", "crv", "x", "y", "x5c"}, k
        assert "kid" not in k and "d" not in k
        assert k["use"] == "x509-svid" and k["kty"] == "EC" and k["crv"] == "P-256", k
        x, y = b64url_decode(k["x"]), b64url_decode(k["y"])
        assert len(x) == 32 and len(y) == 32, k
        assert isinstance(k["x5c"], list) and len(k["x5c"]) == 1, k
        b64 = k["x5c"][0]
        assert re.fullmatch(r"[A-Za-z0-9+/]+={0,2}", b64) and len(b64) % 4 == 0, b64
        der = base64.b64decode(b64, validate=True)
        derp = tmp_path / f"k{i}.der"
        derp.write_bytes(der)
        text = x509_text(derp, inform="DER")
        assert "CA:TRUE" in text
        pub = openssl("x509", "-inform", "DER", "-in", derp, "-noout", "-pubkey").stdout
        cx, cy = spki_xy(pub)
        assert (x, y) == (cx, cy), f"key {i}: JWK x/y differ from the certificate's"
        # and the same numbers as openssl prints them
        ptxt = openssl("pkey", "-pubin", "-noout", "-text", input=pub).stdout
        hexpt = "".join(re.findall(r"[0-9a-f]{2}", ptxt.split("pub:", 1)[1].split("ASN1")[0]))
        assert hexpt == "04" + x.hex() + y.hex()
        seen.add(der)
    assert seen == pem_ders, "spiffe and pem exports hold different authorities"

    # --out writes the same document
    outp = tmp_path / "b.json"
    p = zt("bundle", "export", "--dir", ca, "--format", "spiffe", "--out", outp)
    assert p.returncode == 0, p.stderr
    assert json.loads(outp.read_text()) == doc


# ---- 8. svid verify with a SPIFFE bundle ---------------------------------------


def test_svid_verify_with_spiffe_bundle(zt_bin, ca, tmp_path):
    sid = f"spiffe://{TD}/ns/prod/sa/json"
    _, out, _ = issue(ca, tmp_path, "json", sid)
    bpath = tmp_path / "bundle.json"
    p = zt("bundle", "export", "--dir", ca, "--format", "spiffe", "--out", bpath)
    assert p.returncode == 0, p.stderr
    p = zt("svid", "verify", "--bundle", bpath, out)
    assert p.returncode == 0, p.stderr
    assert sid in p.stdout
    p = zt("svid", "verify", "--bundle", bpath, "--id", sid, out)
    assert p.returncode == 0, p.stderr
    assert sid in p.stdout
    p = zt("svid", "verify", "--bundle", bpath, "--trust-domain", TD, out)
    assert p.returncode == 0, p.stderr


def test_svid_verify_rejections_carry_rule_tag(zt_bin, ca, tmp_path):
    sid = f"spiffe://{TD}/ns/prod/sa/rej"
    _, out, _ = issue(ca, tmp_path, "rej", sid)
    root = pathlib.Path(ca) / "root.pem"
    for extra in (["--id", f"spiffe://{TD}/ns/prod/sa/other"], ["--trust-domain", "other.org"]):
        p = zt("svid", "verify", "--bundle", root, *extra, out)
        assert p.returncode == 1, f"{extra}: {p.returncode} {p.stdout}"
        assert RULE_RE.search(p.stderr), p.stderr
    # a bundle of another CA of the same trust domain does not vouch for it
    d2 = ca_init(tmp_path / "ca2")
    p = zt("svid", "verify", "--bundle", d2 / "root.pem", out)
    assert p.returncode == 1, p.stdout
    assert RULE_RE.search(p.stderr), p.stderr


# ---- 9. demo ------------------------------------------------------------------


def test_demo(zt_bin):
    p = zt("demo")
    assert p.returncode == 0, p.stdout + p.stderr
    ids = set(re.findall(r"spiffe://[A-Za-z0-9._/-]+", p.stdout))
    assert len(ids) >= 2, p.stdout


# ---- 10. usage errors ---------------------------------------------------------


@pytest.mark.parametrize("argv", [["ca", "issue"], ["frobnicate"], ["ca", "frobnicate"],
                                  ["ca", "init", "--dir"]])
def test_usage_errors(zt_bin, argv):
    p = zt(*argv)
    assert p.returncode == 2, (argv, p.returncode, p.stdout, p.stderr)
    assert p.stderr.strip(), argv
    assert re.search(r"usage|unknown|missing|--", p.stderr, re.I), p.stderr
