"""A corpus of bad X.509-SVIDs and bad SPIFFE IDs, all made with the openssl
command line (never by zt), fed to `zt svid verify`.

Each bad case changes exactly ONE thing from the good profile and must be
rejected with exit 1 and the right `[rule]` tag on stderr. Positive controls
(good SVIDs from the same openssl-made PKIs, and the time-shifted certs at a
time inside their validity) must verify, so the corpus cannot pass vacuously.

PKI (one per module, in a tmp_path_factory directory):

    root  (self-signed, CN=root)   --  int (CN=int)  --  leaves
    root2 (CN=root2)               --  int2          --  leaf2   (unrelated)
    root3 (same DNs as root/int)   --  int3          --  leaf3   (unrelated)

The roots and intermediates are valid 2015..2045 (made with `openssl ca
-startdate/-enddate`), so that the expired (2016) and not-yet-valid (2040)
leaves differ from the good leaf in their own dates only.
"""
import base64
import os
import pathlib
import re
import time

import pytest

from conftest import openssl, zt

TD = "example.org"
TD_ID = "spiffe://example.org"
WEB = "spiffe://example.org/ns/default/sa/web"
DB = "spiffe://example.org/ns/default/sa/db"

CA_START, CA_END = "150101000000Z", "450101000000Z"
PAST_START, PAST_END = "160101000000Z", "170101000000Z"
FUTURE_START, FUTURE_END = "400101000000Z", "410101000000Z"

# A 256-character trust domain made of legal labels (each <= 63 chars), so
# that only its total length is wrong.
TD256 = ".".join(["a" * 50] * 4 + ["a" * 52])
assert len(TD256) == 256

# ---- certificate profiles ------------------------------------------------

CA_PROFILE = dict(
    bc="critical,CA:TRUE",
    ku="critical,keyCertSign,cRLSign",
    eku=None,
    skid=True,
    akid=True,
    san=[("URI", TD_ID)],
)
ROOT_PROFILE = dict(CA_PROFILE, akid=False)  # self-signed: AKID optional
LEAF_PROFILE = dict(
    bc="critical,CA:FALSE",
    ku="critical,digitalSignature",
    eku="serverAuth,clientAuth",
    skid=True,
    akid=True,
    san=[("URI", WEB)],
)

# name: (subject CN, issuer, profile overrides, (start, end) or None)
CA_SPECS = {
    "root": ("root", None, {}, (CA_START, CA_END)),
    "int": ("int", "root", {}, (CA_START, CA_END)),
    "root2": ("root2", None, {}, (CA_START, CA_END)),
    "int2": ("int2", "root2", {}, (CA_START, CA_END)),
    # same subject DNs as root/int, different keys
    "root3": ("root", None, {}, (CA_START, CA_END)),
    "int3": ("int", "root3", {}, (CA_START, CA_END)),
    # bad signing certificates, each under the good root
    "int_no_kcs": ("int-no-kcs", "root", {"ku": "critical,cRLSign"}, (CA_START, CA_END)),
    "int_not_ca": ("int-not-ca", "root", {"bc": "critical,CA:FALSE"}, (CA_START, CA_END)),
    "int_id_path": ("int-id-path", "root", {"san": [("URI", TD_ID + "/ca")]}, (CA_START, CA_END)),
    "int_expired": ("int-expired", "root", {}, (PAST_START, PAST_END)),
}

# Bad SPIFFE IDs: (slug, URI, rule)
BAD_IDS = [
    ("http-scheme", "http://example.org/ns/a", "id-scheme"),
    ("upper-scheme", "SPIFFE://example.org/a", "id-scheme"),
    ("td-empty", "spiffe:///a", "id-td-empty"),
    ("td-case", "spiffe://Example.org/a", "id-td-case"),
    ("td-char-dollar", "spiffe://exa$mple.org/a", "id-td-char"),
    ("td-char-bang", "spiffe://exa!mple.org/a", "id-td-char"),
    ("userinfo", "spiffe://user@example.org/a", "id-userinfo"),
    ("port", "spiffe://example.org:8443/a", "id-port"),
    ("percent", "spiffe://example.org/a%20b", "id-percent"),
    ("query", "spiffe://example.org/a?x=1", "id-query"),
    ("fragment", "spiffe://example.org/a#frag", "id-fragment"),
    ("empty-segment", "spiffe://example.org/a//b", "id-path-empty-segment"),
    ("dot-segment", "spiffe://example.org/a/./b", "id-path-dot-segment"),
    ("dotdot-segment", "spiffe://example.org/a/../b", "id-path-dot-segment"),
    ("trailing-slash", "spiffe://example.org/a/", "id-trailing-slash"),
    ("path-char-bang", "spiffe://example.org/a!b", "id-path-char"),
    ("path-char-star", "spiffe://example.org/a*b", "id-path-char"),
    ("too-long", "spiffe://example.org/" + "a" * 2100, "id-too-long"),
    ("td-length", "spiffe://" + TD256 + "/a", "id-td-length"),
]
assert len(BAD_IDS[-1][1]) < 2048

# name: (issuer, profile overrides, (start, end) or None)
LEAF_SPECS = {
    "good": ("int", {}, None),
    "no_san": ("int", {"san": []}, None),
    "dns_san": ("int", {"san": [("DNS", "web.example.org")]}, None),
    "two_uri": ("int", {"san": [("URI", WEB), ("URI", DB)]}, None),
    "leaf_ca": ("int", {"bc": "critical,CA:TRUE"}, None),
    "ku_key_agreement": ("int", {"ku": "critical,keyAgreement"}, None),
    "ku_key_cert_sign": ("int", {"ku": "critical,digitalSignature,keyCertSign"}, None),
    "ku_crl_sign": ("int", {"ku": "critical,digitalSignature,cRLSign"}, None),
    "ku_missing": ("int", {"ku": None}, None),
    "ku_not_critical": ("int", {"ku": "digitalSignature"}, None),
    "eku_server_only": ("int", {"eku": "serverAuth"}, None),
    "eku_client_only": ("int", {"eku": "clientAuth"}, None),
    "id_no_path": ("int", {"san": [("URI", TD_ID)]}, None),
    "expired": ("int", {}, (PAST_START, PAST_END)),
    "not_yet_valid": ("int", {}, (FUTURE_START, FUTURE_END)),
    "other_td": ("int", {"san": [("URI", "spiffe://other.org/ns/default/sa/web")]}, None),
    "leaf2": ("int2", {}, None),
    "leaf3": ("int3", {}, None),
    "under_int_no_kcs": ("int_no_kcs", {}, None),
    "under_int_not_ca": ("int_not_ca", {}, None),
    "under_int_id_path": ("int_id_path", {}, None),
    "under_int_expired": ("int_expired", {}, None),
}
for _slug, _uri, _rule in BAD_IDS:
    LEAF_SPECS["badid_" + _slug] = ("int", {"san": [("URI", _uri)]}, None)

# ---- openssl helpers -----------------------------------------------------

KU_NAMES = {
    "digitalSignature": "Digital Signature",
    "keyAgreement": "Key Agreement",
    "keyCertSign": "Certificate Sign",
    "cRLSign": "CRL Sign",
}
EKU_NAMES = {
    "serverAuth": "TLS Web Server Authentication",
    "clientAuth": "TLS Web Client Authentication",
}


def conf_escape(value):
    """Escapes a value for openssl's config parser: `$` would expand a
    variable, `#` start a comment, quotes and backslashes are special."""
    return re.sub(r'([\\$#"\'])', r"\\\1", value)


def ext_text(p):
    lines = ["[ext]"]
    if p["bc"]:
        lines.append(f"basicConstraints = {p['bc']}")
    if p["ku"]:
        lines.append(f"keyUsage = {p['ku']}")
    if p["eku"]:
        lines.append(f"extendedKeyUsage = {p['eku']}")
    if p["skid"]:
        lines.append("subjectKeyIdentifier = hash")
    if p["akid"]:
        lines.append("authorityKeyIdentifier = keyid:always")
    if p["san"]:
        lines.append("subjectAltName = @alt")
        lines.append("[alt]")
        counts = {}
        for typ, val in p["san"]:
            counts[typ] = counts.get(typ, 0) + 1
            lines.append(f"{typ}.{counts[typ]} = {conf_escape(val)}")
    return "\n".join(lines) + "\n"


def expected_exts(p):
    """What `openssl x509 -ext` must print for profile p."""
    exp = {}

    def crit(spec):
        parts = spec.split(",")
        return (parts[0] == "critical", parts[1:] if parts[0] == "critical" else parts)

    if p["bc"]:
        c, vals = crit(p["bc"])
        exp["X509v3 Basic Constraints"] = (c, ", ".join(vals))
    if p["ku"]:
        c, vals = crit(p["ku"])
        exp["X509v3 Key Usage"] = (c, ", ".join(KU_NAMES[v] for v in vals))
    if p["eku"]:
        c, vals = crit(p["eku"])
        exp["X509v3 Extended Key Usage"] = (c, ", ".join(EKU_NAMES[v] for v in vals))
    if p["san"]:
        exp["X509v3 Subject Alternative Name"] = (
            False, ", ".join(f"{t}:{v}" for t, v in p["san"]))
    exp["has_skid"] = p["skid"]
    exp["has_akid"] = p["akid"]
    return exp


def dump_exts(pem):
    out = openssl("x509", "-noout", "-ext",
                  "basicConstraints,keyUsage,extendedKeyUsage,subjectAltName",
                  "-in", pem, check=False).stdout
    got = {}
    name = None
    for line in out.splitlines():
        if not line.strip():
            continue
        if not line.startswith(" "):
            head, _, tail = line.partition(":")
            name = head.strip()
            got[name] = (tail.strip() == "critical", [])
        else:
            got[name][1].append(line.strip())
    got = {k: (c, " ".join(v)) for k, (c, v) in got.items()}
    text = openssl("x509", "-noout", "-text", "-in", pem).stdout
    got["has_skid"] = "X509v3 Subject Key Identifier" in text
    got["has_akid"] = "X509v3 Authority Key Identifier" in text
    return got


class Pki:
    def __init__(self, d):
        self.d = pathlib.Path(d)
        self.serial = int.from_bytes(os.urandom(6), "big") << 16
        (self.d / "newcerts").mkdir()
        (self.d / "index.txt").write_text("")
        (self.d / "serial").write_text(f"{self.serial:016X}\n")
        (self.d / "req.cnf").write_text("[req]\ndistinguished_name = dn\n[dn]\n")
        (self.d / "ca.cnf").write_text(
            "[ca]\n"
            "default_ca = CA_default\n"
            "[CA_default]\n"
            f"database = {self.d}/index.txt\n"
            f"new_certs_dir = {self.d}/newcerts\n"
            f"serial = {self.d}/serial\n"
            "default_md = sha256\n"
            "policy = policy_any\n"
            "unique_subject = no\n"
            "email_in_dn = no\n"
            "copy_extensions = none\n"
            "[policy_any]\n"
            "organizationName = optional\n"
            "commonName = optional\n")
        self.certs = {}  # name -> (pem path, key path)

    def p(self, name):
        return self.d / name

    def make(self, name, cn, issuer, profile, dates, days=365):
        key = self.p(f"{name}.key")
        csr = self.p(f"{name}.csr")
        ext = self.p(f"{name}.ext")
        pem = self.p(f"{name}.pem")
        openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
                "-out", key)
        openssl("req", "-new", "-config", self.p("req.cnf"), "-key", key,
                "-subj", f"/O=test/CN={cn}", "-sha256", "-out", csr)
        ext.write_text(ext_text(profile))
        if dates is not None:
            args = ["ca", "-batch", "-config", self.p("ca.cnf"), "-in", csr, "-out", pem,
                    "-startdate", dates[0], "-enddate", dates[1], "-rand_serial",
                    "-extfile", ext, "-extensions", "ext", "-notext", "-md", "sha256",
                    "-preserveDN"]
            if issuer is None:
                args += ["-selfsign", "-keyfile", key]
            else:
                ipem, ikey = self.certs[issuer]
                args += ["-cert", ipem, "-keyfile", ikey]
            openssl(*args)
        else:
            assert issuer is not None
            ipem, ikey = self.certs[issuer]
            self.serial += 1
            openssl("x509", "-req", "-in", csr, "-CA", ipem, "-CAkey", ikey,
                    "-set_serial", self.serial, "-days", days, "-sha256",
                    "-extfile", ext, "-extensions", "ext", "-out", pem)
        # The certificate must really carry what the case is about.
        got = dump_exts(pem)
        exp = expected_exts(profile)
        for k, v in exp.items():
            assert got.get(k) == v, f"{name}: {k}: got {got.get(k)!r}, want {v!r}"
        for k in ("X509v3 Basic Constraints", "X509v3 Key Usage",
                  "X509v3 Extended Key Usage", "X509v3 Subject Alternative Name"):
            if k not in exp:
                assert k not in got, f"{name}: unexpected {k}: {got[k]!r}"
        if dates is not None:
            out = openssl("x509", "-noout", "-startdate", "-enddate", "-in", pem).stdout
            want_nb = time.strftime("%b %e %H:%M:%S %Y GMT",
                                    time.strptime(dates[0], "%y%m%d%H%M%SZ"))
            want_na = time.strftime("%b %e %H:%M:%S %Y GMT",
                                    time.strptime(dates[1], "%y%m%d%H%M%SZ"))
            assert f"notBefore={want_nb}" in out and f"notAfter={want_na}" in out, out
        self.certs[name] = (pem, key)
        return pem

    def cat(self, name, *parts):
        out = self.p(name)
        out.write_text("".join(pathlib.Path(x).read_text() for x in parts))
        return out


def strict_verify(ca, untrusted, leaf, attime=None):
    args = ["verify", "-x509_strict", "-CAfile", ca]
    if untrusted:
        args += ["-untrusted", untrusted]
    if attime is not None:
        args += ["-attime", attime]
    return openssl(*args, leaf, check=False)


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    k = Pki(tmp_path_factory.mktemp("svid-corpus"))
    for name, (cn, issuer, over, dates) in CA_SPECS.items():
        prof = dict(ROOT_PROFILE if issuer is None else CA_PROFILE, **over)
        k.make(name, cn, issuer, prof, dates)
    for name, (issuer, over, dates) in LEAF_SPECS.items():
        k.make(name, f"leaf-{name.replace('_', '-')}", issuer,
               dict(LEAF_PROFILE, **over), dates)

    c = lambda n: k.certs[n][0]  # noqa: E731
    files = {}
    files["bundle"] = k.cat("bundle.pem", c("root"))
    files["bundle2"] = k.cat("bundle2.pem", c("root2"))
    files["bundle3"] = k.cat("bundle3.pem", c("root3"))
    files["bundle_root_int"] = k.cat("bundle-root-int.pem", c("root"), c("int"))
    for name, (issuer, _, _) in LEAF_SPECS.items():
        files["chain_" + name] = k.cat(f"chain-{name}.pem", c(name), c(issuer))
    files["leaf_alone"] = k.cat("leaf-alone.pem", c("good"))

    # Tampered signature: flip the low bit of the last DER byte (inside the
    # ECDSA signature's s INTEGER, so the encoding stays well formed).
    der = k.p("good.der")
    openssl("x509", "-in", c("good"), "-outform", "DER", "-out", der)
    raw = bytearray(der.read_bytes())
    raw[-1] ^= 0x01
    bad_der = k.p("tampered.der")
    bad_der.write_bytes(bytes(raw))
    bad_pem = k.p("tampered.pem")
    r = openssl("x509", "-inform", "DER", "-in", bad_der, "-out", bad_pem, check=False)
    back = k.p("tampered-back.der")
    if r.returncode == 0:
        openssl("x509", "-in", bad_pem, "-outform", "DER", "-out", back)
    if r.returncode != 0 or back.read_bytes() != bytes(raw):
        b64 = base64.encodebytes(bytes(raw)).decode().replace("\n", "")
        body = "\n".join(b64[i:i + 64] for i in range(0, len(b64), 64))
        bad_pem.write_text(f"-----BEGIN CERTIFICATE-----\n{body}\n-----END CERTIFICATE-----\n")
    openssl("x509", "-in", bad_pem, "-outform", "DER", "-out", back)
    assert back.read_bytes() == bytes(raw)
    assert bytes(raw) != der.read_bytes()
    files["chain_tampered"] = k.cat("chain-tampered.pem", bad_pem, c("int"))

    # Not certificates.
    files["not_cert_text"] = k.p("not-cert.txt")
    files["not_cert_text"].write_text("this is not a certificate\n" * 4)
    files["not_cert_key"] = k.cat("not-cert-key.pem", k.certs["good"][1])
    files["not_cert_empty"] = k.p("empty.pem")
    files["not_cert_empty"].write_text("")

    # Sanity: openssl itself (strict RFC 5280) accepts the good paths and
    # refuses the ones that are bad at the path level.
    good_paths = [
        (c("root"), c("int"), c("good"), None),
        (c("root2"), c("int2"), c("leaf2"), None),
        (c("root3"), c("int3"), c("leaf3"), None),
        (c("root"), c("int"), c("expired"), "1464739200"),        # 2016-06-01
        (c("root"), c("int"), c("not_yet_valid"), "2222208000"),  # 2040-06-02
    ]
    for ca, unt, leaf, at in good_paths:
        r = strict_verify(ca, unt, leaf, at)
        assert r.returncode == 0 and ": OK" in r.stdout, (leaf, r.stdout, r.stderr)
    r = strict_verify(c("root"), None, bad_pem, None)
    assert r.returncode != 0
    r = strict_verify(c("root"), c("int"), bad_pem, None)
    assert r.returncode != 0 and "signature failure" in r.stdout + r.stderr, r.stdout + r.stderr
    for leaf, unt in (("leaf2", c("int2")), ("leaf3", c("int3")), ("good", None)):
        r = strict_verify(c("root"), unt, c(leaf))
        assert r.returncode != 0, leaf
    r = strict_verify(c("root"), c("int"), c("expired"))
    assert "certificate has expired" in r.stdout + r.stderr
    r = strict_verify(c("root"), c("int"), c("not_yet_valid"))
    assert "certificate is not yet valid" in r.stdout + r.stderr

    k.files = files
    return k


def test_pki_built_as_intended(pki):
    """Runs without zt: the openssl-made corpus is what the cases claim."""
    assert len(pki.certs) == len(CA_SPECS) + len(LEAF_SPECS)
    # the 2100-byte ID and the 256-char trust domain survived openssl intact
    for slug in ("too-long", "td-length", "td-char-dollar", "fragment"):
        uri = dict((s, u) for s, u, _ in BAD_IDS)[slug]
        got = dump_exts(pki.certs["badid_" + slug][0])
        assert got["X509v3 Subject Alternative Name"][1] == "URI:" + uri


# ---- cases ----------------------------------------------------------------

TDARG = ("--trust-domain", TD)

# (id, chain key, bundle key, extra args, rule)
BAD_CASES = [
    ("leaf-no-san", "chain_no_san", "bundle", TDARG, "uri-san-missing"),
    ("leaf-dns-only-san", "chain_dns_san", "bundle", TDARG, "uri-san-missing"),
    ("leaf-two-uri-sans", "chain_two_uri", "bundle", TDARG, "uri-san-count"),
    ("leaf-ca-true", "chain_leaf_ca", "bundle", TDARG, "leaf-ca"),
    ("leaf-no-digital-signature", "chain_ku_key_agreement", "bundle", TDARG,
     "leaf-no-digital-signature"),
    ("leaf-key-cert-sign", "chain_ku_key_cert_sign", "bundle", TDARG, "leaf-key-cert-sign"),
    ("leaf-crl-sign", "chain_ku_crl_sign", "bundle", TDARG, "leaf-crl-sign"),
    ("leaf-ku-missing", "chain_ku_missing", "bundle", TDARG, "leaf-ku-missing"),
    ("leaf-ku-not-critical", "chain_ku_not_critical", "bundle", TDARG, "leaf-ku-not-critical"),
    ("leaf-eku-no-client-auth", "chain_eku_server_only", "bundle", TDARG, "leaf-eku"),
    ("leaf-eku-no-server-auth", "chain_eku_client_only", "bundle", TDARG, "leaf-eku"),
    ("leaf-id-no-path", "chain_id_no_path", "bundle", TDARG, "id-no-path"),
    ("leaf-expired", "chain_expired", "bundle", TDARG, "expired"),
    ("leaf-not-yet-valid", "chain_not_yet_valid", "bundle", TDARG, "not-yet-valid"),
    ("intermediate-expired", "chain_under_int_expired", "bundle", TDARG, "expired"),
    ("leaf-other-trust-domain", "chain_other_td", "bundle", TDARG, "td-mismatch"),
    ("id-mismatch", "chain_good", "bundle", ("--id", DB), "id-mismatch"),
    ("untrusted-other-root", "chain_leaf2", "bundle", TDARG, "untrusted"),
    ("untrusted-other-root-same-dns", "chain_leaf3", "bundle", TDARG, "untrusted"),
    ("untrusted-missing-intermediate", "leaf_alone", "bundle", TDARG, "untrusted"),
    ("signer-no-key-cert-sign", "chain_under_int_no_kcs", "bundle", TDARG,
     "signer-no-key-cert-sign"),
    ("signer-not-ca", "chain_under_int_not_ca", "bundle", TDARG, "signer-not-ca"),
    ("signer-id-path", "chain_under_int_id_path", "bundle", TDARG, "signer-id-path"),
    ("tampered-signature", "chain_tampered", "bundle", TDARG, "signature"),
    # validation time moved with --at
    ("at-after-expiry-rfc3339", "chain_good", "bundle", TDARG + ("--at", "2099-01-01T00:00:00Z"),
     "expired"),
    ("at-after-expiry-unix", "chain_good", "bundle", TDARG + ("--at", "4102444800"), "expired"),
    ("at-before-validity", "chain_good", "bundle", TDARG + ("--at", "2001-01-01T00:00:00Z"),
     "not-yet-valid"),
    ("at-expired-leaf-later", "chain_expired", "bundle", TDARG + ("--at", "2018-01-01T00:00:00Z"),
     "expired"),
]
BAD_CASES += [("san-" + slug, "chain_badid_" + slug, "bundle", TDARG, rule)
              for slug, _uri, rule in BAD_IDS]

# Bad IDs given to --id on the good leaf: exit 2 (usage) or 1, same tag.
ARG_ID_SLUGS = ["http-scheme", "upper-scheme", "td-empty", "td-case", "userinfo", "port",
                "percent", "query", "fragment", "empty-segment", "dotdot-segment",
                "trailing-slash", "path-char-star", "too-long", "td-length"]
ARG_ID_CASES = [(s, u, r) for s, u, r in BAD_IDS if s in ARG_ID_SLUGS]

NOT_CERT_CASES = ["not_cert_text", "not_cert_key", "not_cert_empty"]


def verify(pki, chain, bundle, *args):
    return zt("svid", "verify", "--bundle", pki.files[bundle], *args, pki.files[chain])


def show(r):
    return f"exit {r.returncode}\nstdout: {r.stdout!r}\nstderr: {r.stderr!r}"


@pytest.mark.parametrize("chain,bundle,args,rule",
                         [c[1:] for c in BAD_CASES], ids=[c[0] for c in BAD_CASES])
def test_rejected(zt_bin, pki, chain, bundle, args, rule):
    r = verify(pki, chain, bundle, *args)
    assert r.returncode == 1, show(r)
    assert f"[{rule}]" in r.stderr, show(r)


@pytest.mark.parametrize("uri,rule", [c[1:] for c in ARG_ID_CASES],
                         ids=["arg-id-" + c[0] for c in ARG_ID_CASES])
def test_bad_id_argument(zt_bin, pki, uri, rule):
    r = verify(pki, "chain_good", "bundle", "--id", uri)
    assert r.returncode in (1, 2), show(r)
    assert f"[{rule}]" in r.stderr, show(r)


@pytest.mark.parametrize("chain", NOT_CERT_CASES)
def test_not_a_certificate(zt_bin, pki, chain):
    r = verify(pki, chain, "bundle", *TDARG)
    assert r.returncode == 1, show(r)
    assert r.stderr.strip(), show(r)


NOW_PLUS_1D = object()  # unix seconds, one day from now (resolved at run time)

GOOD_CASES = [
    ("trust-domain", "chain_good", "bundle", TDARG, WEB),
    ("id", "chain_good", "bundle", ("--id", WEB), WEB),
    ("bundle-holds-intermediate", "leaf_alone", "bundle_root_int", TDARG, WEB),
    ("trust-domain-from-bundle", "chain_good", "bundle", (), WEB),
    ("at-inside-validity", "chain_good", "bundle", TDARG + ("--at", NOW_PLUS_1D), WEB),
    ("expired-leaf-at-2016", "chain_expired", "bundle",
     TDARG + ("--at", "2016-06-01T00:00:00Z"), WEB),
    ("future-leaf-at-2040", "chain_not_yet_valid", "bundle",
     TDARG + ("--at", "2040-06-01T00:00:00Z"), WEB),
    ("other-root-own-bundle", "chain_leaf2", "bundle2", TDARG, WEB),
    ("same-dn-root-own-bundle", "chain_leaf3", "bundle3", TDARG, WEB),
]


@pytest.mark.parametrize("chain,bundle,args,want",
                         [c[1:] for c in GOOD_CASES], ids=["good-" + c[0] for c in GOOD_CASES])
def test_positive_control(zt_bin, pki, chain, bundle, args, want):
    args = [str(int(time.time()) + 86400) if a is NOW_PLUS_1D else a for a in args]
    r = verify(pki, chain, bundle, *args)
    assert r.returncode == 0, show(r)
    assert want in r.stdout, show(r)
