"""End-to-end tests of the policy commands: `zt policy check`, `zt policy eval` and
`zt policy test`, driven through the real binary.

Fixtures are in tests/e2e/policy/ (see its README.md):
  - org/: the organization acme (tenants payments and retail, two sibling workspaces each),
    zt-native policies at every level (an organization DENY of /admin*, tenant and workspace
    ALLOWs, an AUDIT policy, dry-run DENY and ALLOW) and a PolicyTest that must pass;
  - failing/: a copy of that PolicyTest with five expectations made wrong on purpose;
  - istio/: examples of Istio's AuthorizationPolicy documentation, used WITHOUT an Organization
    (policies print as NS/NAME, root-namespace ones as istio-system/NAME);
  - tcp/: rules for connections without HTTP;
  - check/errors, check/warnings: one problem per file for `zt policy check`.

The expected line and column of a diagnostic are computed from the fixture text (the first
non-comment line containing a marker), so editing a fixture keeps them right.
"""
import itertools
import json
import os
import pathlib
import re

import pytest
import yaml

from conftest import ZT, zt

HERE = pathlib.Path(__file__).resolve().parent
FIX = HERE / "policy"
ORG_DIR = FIX / "org"
ORG = ORG_DIR / "organization.yaml"
POLICIES = ORG_DIR / "policies.yaml"
TESTS = ORG_DIR / "tests.yaml"
WRONG = FIX / "failing" / "tests-wrong.yaml"
ISTIO = FIX / "istio"
TCP = FIX / "tcp"
ERRS = FIX / "check" / "errors"
WARNS = FIX / "check" / "warnings"
ORG_SET = [ORG, POLICIES]

DIAG_RE = re.compile(
    r"^(?P<file>.*?):(?P<line>\d+):(?P<col>\d+): (?P<level>error|warning): (?P<msg>.*)$")
CHECK_SUMMARY_RE = re.compile(r"^(\d+) error\(s\), (\d+) warning\(s\)$", re.M)
TEST_SUMMARY_RE = re.compile(r"^(\d+) passed, (\d+) failed$", re.M)

DEFAULT = "deny by default"  # sentinel: "DENY: ..." with "no ALLOW policy matched"
_seq = itertools.count()


@pytest.fixture(autouse=True)
def _need_zt():
    assert os.access(ZT, os.X_OK), f"{ZT} not built: run make"


# ---- helpers ----------------------------------------------------------------


def show(p):
    """A readable transcript of a zt run for assertion messages."""
    args = " ".join(str(a) for a in p.args[1:])
    return (f"\n$ zt {args}\nexit {p.returncode}\n--- stdout\n{p.stdout}"
            f"--- stderr\n{p.stderr}---")


def both(p):
    """stdout and stderr together (for output whose stream the contract does not pin)."""
    return p.stdout + "\n" + p.stderr


def first_line(p):
    lines = p.stdout.splitlines()
    return lines[0] if lines else ""


def same_file(printed, path):
    return os.path.exists(printed) and os.path.samefile(printed, path)


def locate(path, marker):
    """1-based (line, column) of the first occurrence of `marker` outside comment lines."""
    for n, text in enumerate(pathlib.Path(path).read_text().splitlines(), 1):
        if text.lstrip().startswith("#"):
            continue
        col = text.find(marker)
        if col >= 0:
            return n, col + 1
    raise AssertionError(f"{marker!r} not in {path}")


def diags(p):
    return [m.groupdict() for line in both(p).splitlines() if (m := DIAG_RE.match(line))]


def check_summary(p):
    """(errors, warnings) of the summary line; also checks they count the printed lines."""
    found = CHECK_SUMMARY_RE.findall(both(p))
    assert found, "no 'N error(s), M warning(s)' summary" + show(p)
    errors, warnings = map(int, found[-1])
    ds = diags(p)
    assert errors == sum(d["level"] == "error" for d in ds), "summary != error lines" + show(p)
    assert warnings == sum(d["level"] == "warning" for d in ds), \
        "summary != warning lines" + show(p)
    return errors, warnings


def check(*paths, opts=()):
    return zt("policy", "check", *opts, *paths)


def evaluate(policies, request, *opts, tmp=None, stdin=False):
    """Runs `zt policy eval` with one --policy per path and the request as a file or stdin."""
    args = ["policy", "eval"]
    for pol in policies:
        args += ["--policy", pol]
    if stdin:
        return zt(*args, "--request", "-", *opts, input=json.dumps(request))
    assert tmp is not None
    f = pathlib.Path(tmp) / f"request-{next(_seq)}.json"
    f.write_text(json.dumps(request))
    return zt(*args, "--request", f, *opts)


def assert_decision(p, expected):
    """expected: 'ALLOW by P rule N', 'DENY by P rule N' (exact first line) or DEFAULT."""
    first = first_line(p)
    if expected == DEFAULT:
        assert first.startswith("DENY: ") and "no ALLOW policy matched" in first, \
            "expected deny by default" + show(p)
        assert p.returncode == 1, show(p)
    else:
        assert first == expected, f"expected {expected!r}" + show(p)
        assert p.returncode == (0 if expected.startswith("ALLOW") else 1), show(p)


def spiffe(ns, sa, td="cluster.local"):
    return f"spiffe://{td}/ns/{ns}/sa/{sa}"


def acme(ns, sa):
    return spiffe(ns, sa, "example.org")


def http(src, dst, method="GET", path="/", *, port=None, ip=None, host=None, headers=None,
         auth=None):
    r = {"destination": {"service": dst}}
    if port is not None:
        r["destination"]["port"] = port
    source = {}
    if src:
        source["principal"] = src
    if ip:
        source["ip"] = ip
    if source:
        r["source"] = source
    q = {"method": method, "path": path}
    if host is not None:
        q["host"] = host
    if headers is not None:
        q["headers"] = headers
    if auth is not None:
        q["auth"] = auth
    r["request"] = q
    return r


def tcp(src, dst, port=None, *, ip=None):
    r = http(src, dst, port=port, ip=ip)
    del r["request"]
    return r


def cases_of(path):
    docs = [d for d in yaml.safe_load_all(pathlib.Path(path).read_text()) if d]
    return [c for d in docs if d.get("kind") == "PolicyTest" for c in d["spec"]["cases"]]


# ---- zt policy check ----------------------------------------------------------


def test_check_clean_organization_set():
    p = check(ORG_DIR)
    assert p.returncode == 0, show(p)
    assert check_summary(p) == (0, 0), show(p)


def test_check_istio_examples_warn_deny_by_default():
    p = check(ISTIO, TCP)
    assert p.returncode == 0, show(p)
    errors, warnings = check_summary(p)
    assert errors == 0 and warnings >= 1, show(p)
    assert any(d["level"] == "warning" and "deny by default" in d["msg"] for d in diags(p)), \
        show(p)


# (file, marker, column offset from the marker, message patterns, with the organization)
CHECK_ERRORS = [
    ("invalid-yaml.yaml", "DENY: oops", len("DENY"), [r"(?i)yaml|mapping|syntax"], True),
    ("unknown-field-operation.yaml", "pathz", 0, [r"unknown field", r"pathz"], True),
    ("unknown-field-source.yaml", "principal:", 0, [r"unknown field", r"principal\b"], True),
    ("unknown-field-spec.yaml", "selectr", 0, [r"unknown field", r"selectr"], True),
    ("custom-action.yaml", "CUSTOM", 0, [r"CUSTOM"], False),
    ("bad-scope.yaml", "acme/payments/nosuch", 0, [r"(?i)scope|nosuch"], True),
    ("bad-cidr.yaml", "10.0.0.0/33", 0, [r"(?i)cidr|ipblocks|10\.0\.0\.0/33"], True),
    ("bad-port.yaml", '"70000"', 0, [r"(?i)port|70000"], True),
    ("bad-when-key.yaml", "request.bogus[x]", 0, [r"(?i)request\.bogus|key"], True),
    ("mid-wildcard.yaml", "/api/*/users", 0, [r"(?i)wildcard|\*"], True),
    ("istio-matchlabels.yaml", "version:", 0, [r"(?i)version|matchlabels"], False),
]


@pytest.mark.parametrize("name,marker,offset,patterns,with_org", CHECK_ERRORS,
                         ids=[c[0].rsplit(".", 1)[0] for c in CHECK_ERRORS])
def test_check_error(name, marker, offset, patterns, with_org):
    path = ERRS / name
    p = check(*([ORG] if with_org else []), path)
    assert p.returncode == 1, show(p)
    errors, _ = check_summary(p)
    assert errors >= 1, show(p)
    line, col = locate(path, marker)
    col += offset
    hits = [d for d in diags(p) if d["level"] == "error" and same_file(d["file"], path)
            and (int(d["line"]), int(d["col"])) == (line, col)]
    assert hits, f"no error at {path.name}:{line}:{col}" + show(p)
    for pat in patterns:
        assert any(re.search(pat, d["msg"]) for d in hits), \
            f"error at {line}:{col} does not match /{pat}/" + show(p)


def test_check_zt_native_policy_needs_an_organization():
    path = ERRS / "native-without-org.yaml"
    p = check(path)
    assert p.returncode == 1, show(p)
    assert any(d["level"] == "error" and same_file(d["file"], path) for d in diags(p)), show(p)
    # ... and with the organization the same file is fine
    q = check(ORG, path)
    assert q.returncode == 0, show(q)


# (file, marker for the exact position or None, message pattern, with the organization)
CHECK_WARNINGS = [
    ("metadata-unknown.yaml", "owner:", r"(?i)owner|unknown", True),
    ("never-match-selector.yaml", None, r"(?i)nosuch|never", True),
    ("never-match-notpaths.yaml", None, r"(?i)never|notpaths", True),
    ("shadowed-allow.yaml", None, r"(?i)shadow|guard-admin", True),
    ("istio-manifest.yaml", None, r"deny by default", False),
]


@pytest.mark.parametrize("name,marker,pattern,with_org", CHECK_WARNINGS,
                         ids=[c[0].rsplit(".", 1)[0] for c in CHECK_WARNINGS])
def test_check_warning(name, marker, pattern, with_org):
    path = WARNS / name
    p = check(*([ORG] if with_org else []), path)
    assert p.returncode == 0, "warnings only: exit 0" + show(p)
    errors, warnings = check_summary(p)
    assert errors == 0 and warnings >= 1, show(p)
    hits = [d for d in diags(p) if d["level"] == "warning" and same_file(d["file"], path)
            and re.search(pattern, d["msg"])]
    assert hits, f"no warning /{pattern}/ for {path.name}" + show(p)
    if marker:
        line, col = locate(path, marker)
        assert any((int(d["line"]), int(d["col"])) == (line, col) for d in hits), \
            f"warning not at {line}:{col}" + show(p)


def test_check_shadow_warning_points_at_the_allow():
    path = WARNS / "shadowed-allow.yaml"
    p = check(ORG, path)
    allow_doc = locate(path, "---")[0]
    hits = [d for d in diags(p) if d["level"] == "warning" and same_file(d["file"], path)]
    assert any(int(d["line"]) > allow_doc for d in hits), \
        f"the shadow warning should point into the ALLOW document (after line {allow_doc})" \
        + show(p)


def test_check_presence_wildcard_is_valid(tmp_path):
    """"*" alone (presence) is a valid value in every field, unlike "a*b"."""
    f = tmp_path / "presence.yaml"
    f.write_text(yaml.safe_dump({
        "apiVersion": "security.istio.io/v1", "kind": "AuthorizationPolicy",
        "metadata": {"name": "presence", "namespace": "foo"},
        "spec": {"action": "ALLOW", "rules": [{
            "from": [{"source": {"principals": ["*"], "requestPrincipals": ["*"],
                                 "namespaces": ["*"]}}],
            "to": [{"operation": {"hosts": ["*"], "methods": ["*"], "paths": ["*"]}}],
            "when": [{"key": "request.headers[x-user]", "values": ["*"]}]}]}}))
    p = check(f)
    assert p.returncode == 0, show(p)
    assert check_summary(p)[0] == 0, show(p)


def test_check_errors_and_warnings_together():
    p = check(ORG, ERRS / "bad-cidr.yaml", WARNS / "metadata-unknown.yaml")
    assert p.returncode == 1, show(p)
    errors, warnings = check_summary(p)
    assert errors >= 1 and warnings >= 1, show(p)


def test_check_reads_folders_recursively(tmp_path):
    nested = tmp_path / "a" / "b"
    nested.mkdir(parents=True)
    (tmp_path / "org.yaml").write_text(ORG.read_text())
    bad = nested / "cidr.yml"
    bad.write_text((ERRS / "bad-cidr.yaml").read_text())
    (nested / "notes.txt").write_text("this: is: not: yaml: and: is: not: read\n")
    p = check(tmp_path)
    assert p.returncode == 1, show(p)
    line, col = locate(bad, "10.0.0.0/33")
    assert any(d["level"] == "error" and same_file(d["file"], bad)
               and (int(d["line"]), int(d["col"])) == (line, col) for d in diags(p)), show(p)
    assert not any(d["file"].endswith("notes.txt") for d in diags(p)), show(p)
    bad.unlink()
    q = check(tmp_path)
    assert q.returncode == 0, "notes.txt is not YAML: it must not be read" + show(q)


def test_check_usage_errors():
    p = zt("policy", "check")
    assert p.returncode == 2, "no PATH is a usage error" + show(p)
    q = zt("policy", "check", "--no-such-option", ORG)
    assert q.returncode == 2, show(q)
    r = check(FIX / "does-not-exist.yaml")
    assert r.returncode in (1, 2) and "does-not-exist.yaml" in both(r), show(r)


# ---- zt policy test -------------------------------------------------------------


def test_policy_test_passes():
    cases = cases_of(TESTS)
    assert len(cases) >= 15
    p = zt("policy", "test", ORG_DIR)
    assert p.returncode == 0, show(p)
    lines = both(p).splitlines()
    for c in cases:
        assert f"ok {c['name']}" in lines, f"no 'ok {c['name']}'" + show(p)
    assert not any(line.startswith("FAIL") for line in lines), show(p)
    assert TEST_SUMMARY_RE.findall(both(p))[-1:] == [(str(len(cases)), "0")], show(p)


# what each wrong case's explanation must name: the actual decision or deciding policy
WRONG_EXPLAINED = {
    "api posts an entry as a teller": "ledger-from-api",
    "the organization DENY beats the tenant ALLOW": "org-deny-admin",
    "web reads the cart through the workspace ALLOW": "shop-read",
    "a dry-run DENY is not enforced": "cart-from-web",
    "a workspace ALLOW does not leak into the sibling workspace": "DENY",
}


def wrong_run():
    """Runs the deliberately failing copy; returns (run, all case names, names made wrong)."""
    good = {c["name"]: c for c in cases_of(TESTS)}
    wrong = {c["name"]: c for c in cases_of(WRONG)}
    assert good.keys() == wrong.keys()
    broken = {n for n in good if (good[n]["expect"], good[n].get("policy"))
              != (wrong[n]["expect"], wrong[n].get("policy"))}
    assert broken == set(WRONG_EXPLAINED)
    return zt("policy", "test", ORG, POLICIES, WRONG), list(good), broken


def test_policy_test_reports_failures():
    p, names, broken = wrong_run()
    assert p.returncode == 1, show(p)
    lines = both(p).splitlines()
    for name in names:
        if name in broken:
            # the CASE is followed by ':' (the contract) or by anything else zt adds
            at = [i for i, line in enumerate(lines) if line.startswith(f"FAIL {name}")]
            assert at, f"no 'FAIL {name}...'" + show(p)
            block = [lines[at[0]]]
            for line in lines[at[0] + 1:]:
                if line.startswith(("ok ", "FAIL ")) or TEST_SUMMARY_RE.match(line):
                    break
                block.append(line)
            assert WRONG_EXPLAINED[name] in "\n".join(block), \
                f"the explanation of {name!r} should name {WRONG_EXPLAINED[name]!r}" + show(p)
        else:
            assert f"ok {name}" in lines, f"no 'ok {name}'" + show(p)
    summary = TEST_SUMMARY_RE.findall(both(p))
    assert summary[-1:] == [(str(len(names) - len(broken)), str(len(broken)))], show(p)


def test_policy_test_fail_line_format():
    """The contract's line is exactly `FAIL CASE: ...`."""
    p, _, broken = wrong_run()
    lines = both(p).splitlines()
    for name in sorted(broken):
        assert any(line.startswith(f"FAIL {name}: ") for line in lines), \
            f"no line starting with 'FAIL {name}: '" + show(p)


def test_policy_test_istio_mode(tmp_path):
    t = tmp_path / "bookinfo-tests.yaml"
    t.write_text(yaml.safe_dump({
        "apiVersion": "zt.dev/v1", "kind": "PolicyTest", "metadata": {"name": "bookinfo"},
        "spec": {"cases": [
            {"name": "productpage reads details",
             "request": http(spiffe("default", "bookinfo-productpage"),
                             spiffe("default", "details")),
             "expect": "ALLOW", "policy": "default/details-viewer"},
            {"name": "reviews cannot read details",
             "request": http(spiffe("default", "bookinfo-reviews"), spiffe("default", "details")),
             "expect": "DENY", "policy": "none"},
            {"name": "anyone reads productpage",
             "request": http(None, spiffe("default", "productpage"), path="/productpage"),
             "expect": "ALLOW", "policy": "default/productpage-viewer"},
        ]}}))
    p = zt("policy", "test", ISTIO / "bookinfo.yml", t)
    assert p.returncode == 0, show(p)
    assert TEST_SUMMARY_RE.findall(both(p))[-1:] == [("3", "0")], show(p)


def test_policy_test_bad_input(tmp_path):
    # a policy set with errors
    p = zt("policy", "test", ORG, POLICIES, ERRS / "bad-cidr.yaml", TESTS)
    assert p.returncode == 2, show(p)
    # an unreadable path
    r = zt("policy", "test", ORG_DIR, tmp_path / "missing.yaml")
    assert r.returncode == 2, show(r)
    # invalid YAML
    y = tmp_path / "broken.yaml"
    y.write_text("apiVersion: zt.dev/v1\nkind: PolicyTest\nspec: {cases: [\n")
    s = zt("policy", "test", ORG, POLICIES, y)
    assert s.returncode == 2, show(s)


def test_policy_test_invalid_request_is_bad_input(tmp_path):
    """A case whose request is invalid (as `zt policy eval` would reject with exit 2)."""
    t = tmp_path / "t.yaml"
    t.write_text(yaml.safe_dump({
        "apiVersion": "zt.dev/v1", "kind": "PolicyTest", "metadata": {"name": "bad"},
        "spec": {"cases": [{"name": "no destination",
                            "request": {"source": {"principal": acme("pay", "api")}},
                            "expect": "DENY"}]}}))
    q = zt("policy", "test", ORG, POLICIES, t)
    assert q.returncode == 2, show(q)


# ---- zt policy eval: the organization -----------------------------------------------


TELLER = {"principal": "https://idp.example.com/u1", "claims": {"role": "teller"}}
AUDITOR = {"principal": "https://idp.example.com/u2", "claims": {"role": "auditor"}}


def test_eval_allow_with_audit(tmp_path):
    p = evaluate(ORG_SET, http(acme("pay", "api"), acme("pay", "ledger"), "POST", "/entries",
                               port=8443, ip="10.1.2.3", auth=TELLER), tmp=tmp_path)
    assert_decision(p, "ALLOW by acme/payments/pay/ledger-from-api rule 0")
    assert "audit: acme/payments/audit-writes rule 0" in p.stdout.splitlines(), show(p)


def test_eval_audit_never_changes_a_deny(tmp_path):
    p = evaluate(ORG_SET, http(acme("pay", "api"), acme("pay", "ledger"), "POST", "/entries",
                               auth=AUDITOR), tmp=tmp_path)
    assert_decision(p, DEFAULT)
    assert "audit: acme/payments/audit-writes rule 0" in p.stdout.splitlines(), show(p)


def test_eval_no_audit_line_when_audit_does_not_match(tmp_path):
    p = evaluate(ORG_SET, http(acme("pay", "api"), acme("pay", "ledger"), "GET", "/entries"),
                 tmp=tmp_path)
    assert_decision(p, "ALLOW by acme/payments/tenant-read rule 0")
    assert not any(line.startswith("audit:") for line in p.stdout.splitlines()), show(p)


def test_eval_rule_index_is_the_matching_rule(tmp_path):
    p = evaluate(ORG_SET, http(acme("billing", "reports"), acme("pay", "ledger"), "PUT",
                               "/batches/7/approve"), tmp=tmp_path)
    assert_decision(p, "ALLOW by acme/payments/pay/ledger-from-api rule 1")


def test_eval_dry_run_deny_is_reported_not_enforced(tmp_path):
    p = evaluate(ORG_SET, http(acme("shop", "web"), acme("shop", "cart"), "DELETE",
                               "/cart/items/3"), tmp=tmp_path)
    assert_decision(p, "ALLOW by acme/retail/shop/cart-from-web rule 0")
    assert "dry-run: acme/retail/dry-deny-delete rule 0 would have denied" \
        in p.stdout.splitlines(), show(p)


def test_eval_dry_run_allow_is_reported_not_enforced(tmp_path):
    p = evaluate(ORG_SET, http(acme("shop", "web"), acme("catalog", "items"), "POST", "/items"),
                 tmp=tmp_path)
    assert_decision(p, DEFAULT)
    assert "dry-run: acme/retail/catalog/dry-allow-post rule 0 would have allowed" \
        in p.stdout.splitlines(), show(p)


def test_eval_no_dry_run_line_when_it_does_not_match(tmp_path):
    p = evaluate(ORG_SET, http(acme("shop", "web"), acme("shop", "cart"), "POST", "/cart/x"),
                 tmp=tmp_path)
    assert_decision(p, "ALLOW by acme/retail/shop/cart-from-web rule 0")
    assert not any(line.startswith("dry-run:") for line in p.stdout.splitlines()), show(p)


def test_eval_organization_deny_cannot_be_undone_below(tmp_path):
    override = tmp_path / "override.yaml"
    override.write_text(
        "apiVersion: zt.dev/v1\nkind: AuthorizationPolicy\n"
        "metadata: {name: admin-override, scope: acme/payments/pay}\n"
        "spec:\n  action: ALLOW\n  rules:\n    - to: [{operation: {paths: [\"/admin*\"]}}]\n"
        "---\napiVersion: zt.dev/v1\nkind: AuthorizationPolicy\n"
        "metadata: {name: admin-override-tenant, scope: acme/payments}\n"
        "spec:\n  action: ALLOW\n  rules:\n    - {}\n")
    p = evaluate([*ORG_SET, override], http(acme("pay", "api"), acme("pay", "ledger"), "GET",
                                            "/admin/x"), tmp=tmp_path)
    assert_decision(p, "DENY by acme/org-deny-admin rule 0")


def test_eval_workspace_allow_does_not_apply_to_sibling(tmp_path):
    # shop-read (workspace shop) would match this request if it leaked into catalog
    p = evaluate(ORG_SET, http(acme("shop", "cart"), acme("catalog", "items"), "GET", "/items/1"),
                 tmp=tmp_path)
    assert_decision(p, DEFAULT)
    q = evaluate(ORG_SET, http(acme("shop", "cart"), acme("shop", "web"), "GET", "/items/1"),
                 tmp=tmp_path)
    assert_decision(q, "ALLOW by acme/retail/shop/shop-read rule 0")


@pytest.mark.parametrize("dst", [acme("pay", "ghost"), spiffe("pay", "ledger", "other.org"),
                                 acme("nosuchws", "api")])
def test_eval_unknown_destination_is_denied(tmp_path, dst):
    p = evaluate(ORG_SET, http(acme("pay", "api"), dst, "GET", "/entries"), tmp=tmp_path)
    assert p.returncode == 1, show(p)
    first = first_line(p)
    assert first.startswith("DENY: ") and "unknown" in first, show(p)


def test_eval_request_from_stdin():
    allow = http(acme("pay", "api"), acme("pay", "ledger"), "POST", "/entries", auth=TELLER)
    p = evaluate(ORG_SET, allow, stdin=True)
    assert_decision(p, "ALLOW by acme/payments/pay/ledger-from-api rule 0")
    deny = http(acme("pay", "api"), acme("pay", "ledger"), "GET", "/admin")
    q = evaluate(ORG_SET, deny, stdin=True)
    assert_decision(q, "DENY by acme/org-deny-admin rule 0")


def test_eval_explain_names_each_applicable_policy(tmp_path):
    req = http(acme("shop", "web"), acme("shop", "cart"), "DELETE", "/cart/items/3")
    plain = evaluate(ORG_SET, req, tmp=tmp_path)
    p = evaluate(ORG_SET, req, "--explain", tmp=tmp_path)
    assert first_line(p) == first_line(plain), show(p)
    assert p.returncode == plain.returncode == 0, show(p)
    rest = "\n".join(p.stdout.splitlines()[1:])
    for name in ["acme/org-deny-admin", "acme/retail/dry-deny-delete",
                 "acme/retail/shop/shop-read", "acme/retail/shop/cart-from-web"]:
        assert name in rest, f"--explain does not mention {name}" + show(p)
    # shop-read applies but does not match: the failing condition is the method
    assert re.search(r"(?i)method", rest), show(p)


def test_eval_explain_leaves_out_other_tenants(tmp_path):
    req = http(acme("shop", "web"), acme("shop", "cart"), "DELETE", "/cart/items/3")
    p = evaluate(ORG_SET, req, "--explain", tmp=tmp_path)
    assert_decision(p, "ALLOW by acme/retail/shop/cart-from-web rule 0")
    assert "acme/retail/shop/shop-read" in p.stdout, "--explain printed no explanation" + show(p)
    for name in ["acme/payments/tenant-read", "acme/payments/audit-writes",
                 "acme/retail/catalog/items-read"]:
        assert name not in p.stdout, f"{name} does not apply to shop/cart" + show(p)


def test_eval_explain_names_the_failed_condition(tmp_path):
    p = evaluate(ORG_SET, http(acme("pay", "api"), acme("pay", "ledger"), "POST", "/entries",
                               auth=AUDITOR), "--explain", tmp=tmp_path)
    assert_decision(p, DEFAULT)
    rest = "\n".join(p.stdout.splitlines()[1:])
    assert "acme/payments/pay/ledger-from-api" in rest, show(p)
    assert "role" in rest, "the failed condition is request.auth.claims[role]" + show(p)


def test_eval_explain_istio(tmp_path):
    req = http(spiffe("default", "curl"), spiffe("foo", "httpbin"), "GET", "/info",
               auth={"principal": "https://evil.example/u", "claims": {"iss": "https://evil.example"}})
    p = evaluate([ISTIO / "reference-httpbin.yaml"], req, "--explain", tmp=tmp_path)
    assert_decision(p, DEFAULT)
    rest = "\n".join(p.stdout.splitlines()[1:])
    assert "foo/httpbin" in rest and "iss" in rest, show(p)


# path attacks against the organization's DENY of /admin*; the base request is otherwise allowed
# by acme/payments/tenant-read
ADMIN_DENY = "DENY by acme/org-deny-admin rule 0"
PATHS = [
    ("/admin", ADMIN_DENY),
    ("/admin/../admin", ADMIN_DENY),
    ("//admin", ADMIN_DENY),
    ("/./admin", ADMIN_DENY),
    ("/%61dmin", ADMIN_DENY),
    ("/%61%64%6d%69%6e/x", ADMIN_DENY),
    ("/entries/../admin/x", ADMIN_DENY),
    ("/entries/%2e%2e/admin", ADMIN_DENY),
    ("/../admin", ADMIN_DENY),
    ("/admin?debug=1", ADMIN_DENY),
    ("/ADMIN", "ALLOW by acme/payments/tenant-read rule 0"),  # matching is case-sensitive
    ("/entries?next=/admin", "ALLOW by acme/payments/tenant-read rule 0"),
]


@pytest.mark.parametrize("path,expected", PATHS, ids=[p for p, _ in PATHS])
def test_eval_path_normalization(tmp_path, path, expected):
    p = evaluate(ORG_SET, http(acme("pay", "api"), acme("pay", "ledger"), "GET", path),
                 tmp=tmp_path)
    assert_decision(p, expected)


BAD_PATHS = ["/admin%2F..", "/admin%2f..", "/admin%5C..", "/admin%00", "/admin#x", "/%zzadmin",
             "/admin%", "/admin\x01"]


@pytest.mark.parametrize("path", BAD_PATHS, ids=[repr(p) for p in BAD_PATHS])
def test_eval_path_rejected_is_bad_input(tmp_path, path):
    p = evaluate(ORG_SET, http(acme("pay", "api"), acme("pay", "ledger"), "GET", path),
                 tmp=tmp_path)
    assert p.returncode == 2, show(p)
    assert not first_line(p).startswith("ALLOW"), show(p)
    if "%2f" in path.lower():
        assert "path-encoded-slash" in both(p), show(p)


def test_eval_tcp_meets_http_only_deny(tmp_path):
    # the organization DENY (paths only) ignores its HTTP-only field for a connection: it applies
    p = evaluate(ORG_SET, tcp(acme("pay", "api"), acme("pay", "ledger"), 5432), tmp=tmp_path)
    assert_decision(p, ADMIN_DENY)


TCP_CASES = [
    ("deny methods+paths applies to TCP", [TCP / "deny-admin-get.yaml"],
     tcp(spiffe("tcp", "c"), spiffe("tcp", "db"), 5432), "DENY by tcp/deny-admin-get rule 0"),
    ("deny methods+paths: other HTTP passes", [TCP / "deny-admin-get.yaml"],
     http(spiffe("tcp", "c"), spiffe("tcp", "db"), "GET", "/public"),
     "ALLOW by tcp/allow-all rule 0"),
    ("deny methods+paths: POST /admin passes", [TCP / "deny-admin-get.yaml"],
     http(spiffe("tcp", "c"), spiffe("tcp", "db"), "POST", "/admin"),
     "ALLOW by tcp/allow-all rule 0"),
    ("deny methods+paths: GET /admin denied", [TCP / "deny-admin-get.yaml"],
     http(spiffe("tcp", "c"), spiffe("tcp", "db"), "GET", "/admin/x"),
     "DENY by tcp/deny-admin-get rule 0"),
    ("allow with paths never matches TCP", [TCP / "allow-paths.yaml"],
     tcp(spiffe("tcp2", "c"), spiffe("tcp2", "db"), 5432), DEFAULT),
    ("allow with paths matches HTTP", [TCP / "allow-paths.yaml"],
     http(spiffe("tcp2", "c"), spiffe("tcp2", "db"), "GET", "/db/1", port=5432),
     "ALLOW by tcp2/allow-db-paths rule 0"),
    ("allow with ports only matches TCP", [TCP / "allow-port.yaml"],
     tcp(spiffe("tcp3", "c"), spiffe("tcp3", "db"), 5432), "ALLOW by tcp3/allow-db-port rule 0"),
]


@pytest.mark.parametrize("files,request_,expected", [c[1:] for c in TCP_CASES],
                         ids=[c[0] for c in TCP_CASES])
def test_eval_tcp(tmp_path, files, request_, expected):
    assert_decision(evaluate(files, request_, tmp=tmp_path), expected)


def test_eval_bad_input(tmp_path):
    good = http(acme("pay", "api"), acme("pay", "ledger"), "GET", "/entries")
    # invalid JSON
    bad = tmp_path / "bad.json"
    bad.write_text('{"destination": {"service": ')
    p = zt("policy", "eval", "--policy", ORG, "--policy", POLICIES, "--request", bad)
    assert p.returncode == 2, show(p)
    p = zt("policy", "eval", "--policy", ORG, "--policy", POLICIES, "--request", "-",
           input="not json")
    assert p.returncode == 2, show(p)
    # no destination.service
    p = evaluate(ORG_SET, {"source": {"principal": acme("pay", "api")}, "request":
                           {"method": "GET", "path": "/"}}, tmp=tmp_path)
    assert p.returncode == 2, show(p)
    # a field of the wrong type
    p = evaluate(ORG_SET, {**good, "destination": {"service": acme("pay", "ledger"),
                                                   "port": "not-a-port"}}, tmp=tmp_path)
    assert p.returncode == 2, show(p)
    # unreadable request and policy files
    p = zt("policy", "eval", "--policy", ORG, "--policy", POLICIES, "--request",
           tmp_path / "missing.json")
    assert p.returncode == 2, show(p)
    p = evaluate([ORG, tmp_path / "missing.yaml"], good, tmp=tmp_path)
    assert p.returncode == 2, show(p)
    # a policy set with errors is never used to decide
    p = evaluate([*ORG_SET, ERRS / "bad-cidr.yaml"], good, tmp=tmp_path)
    assert p.returncode == 2 and not first_line(p).startswith("ALLOW"), show(p)
    p = evaluate([*ORG_SET, ERRS / "unknown-field-operation.yaml"], good, tmp=tmp_path)
    assert p.returncode == 2 and not first_line(p).startswith("ALLOW"), show(p)
    # zt-native policies without an organization
    p = evaluate([POLICIES], good, tmp=tmp_path)
    assert p.returncode == 2, show(p)
    # usage: no --request, unknown option
    p = zt("policy", "eval", "--policy", ORG)
    assert p.returncode == 2, show(p)
    p = zt("policy", "eval", "--policy", ORG, "--request", "-", "--bogus", input=json.dumps(good))
    assert p.returncode == 2, show(p)
    # the same request, well-formed, is decided (so the failures above are about the input)
    assert_decision(evaluate(ORG_SET, good, tmp=tmp_path),
                    "ALLOW by acme/payments/tenant-read rule 0")


# ---- zt policy eval: Istio's documentation examples, without an Organization -------------

CURL = spiffe("default", "curl")
HTTPBIN = spiffe("foo", "httpbin")
GOOGLE = {"principal": "https://accounts.google.com/u1",
          "claims": {"iss": "https://accounts.google.com", "sub": "u1"}}
TESTING = "testing@secure.istio.io/testing@secure.istio.io"


def jwt(**claims):
    return {"principal": TESTING,
            "claims": {"iss": "testing@secure.istio.io", "sub": "testing@secure.istio.io",
                       **claims}}


def I(*names):  # noqa: E743 - Istio fixture paths
    return [ISTIO / n for n in names]


REF = I("reference-httpbin.yaml")
SEL = I("reference-selector-headers.yaml")
BAR = spiffe("bar", "httpbin")
GW = spiffe("istio-system", "istio-ingressgateway")
ECHO = spiffe("foo", "tcp-echo")
BOOK = I("bookinfo.yml")
HOSTS = I("hosts-ports.json")
HB = spiffe("baz", "httpbin")

ISTIO_CASES = [
    # reference: principals OR namespaces; GET /info* OR POST /data; when claims[iss]
    ("ref: curl GET /info/* with google token", REF,
     http(CURL, HTTPBIN, "GET", "/info/headers", auth=GOOGLE), "ALLOW by foo/httpbin rule 0"),
    ("ref: prefix /info* matches /info", REF,
     http(CURL, HTTPBIN, "GET", "/info", auth=GOOGLE), "ALLOW by foo/httpbin rule 0"),
    ("ref: namespace test POST /data", REF,
     http(spiffe("test", "anyone"), HTTPBIN, "POST", "/data", auth=GOOGLE),
     "ALLOW by foo/httpbin rule 0"),
    ("ref: GET /data is not an allowed operation", REF,
     http(CURL, HTTPBIN, "GET", "/data", auth=GOOGLE), DEFAULT),
    ("ref: POST /data/x is not exact /data", REF,
     http(CURL, HTTPBIN, "POST", "/data/x", auth=GOOGLE), DEFAULT),
    ("ref: POST /info is not an allowed operation", REF,
     http(CURL, HTTPBIN, "POST", "/info", auth=GOOGLE), DEFAULT),
    ("ref: other issuer", REF,
     http(CURL, HTTPBIN, "GET", "/info", auth={"principal": "https://evil.example/u",
                                                  "claims": {"iss": "https://evil.example"}}),
     DEFAULT),
    ("ref: no token", REF, http(CURL, HTTPBIN, "GET", "/info"), DEFAULT),
    ("ref: other namespace", REF,
     http(spiffe("dev", "curl"), HTTPBIN, "GET", "/info", auth=GOOGLE), DEFAULT),
    ("ref: other service account", REF,
     http(spiffe("default", "other"), HTTPBIN, "GET", "/info", auth=GOOGLE), DEFAULT),
    ("ref: no source identity", REF, http(None, HTTPBIN, "GET", "/info", auth=GOOGLE), DEFAULT),
    # reference DENY (dev may not POST) beside allow-all
    ("deny: dev POST", I("reference-deny-post-from-dev.yaml", "allow-all.yaml"),
     http(spiffe("dev", "x"), HTTPBIN, "POST", "/data"), "DENY by foo/deny-post-from-dev rule 0"),
    ("deny: dev GET falls to allow-all", I("reference-deny-post-from-dev.yaml", "allow-all.yaml"),
     http(spiffe("dev", "x"), HTTPBIN, "GET", "/data"), "ALLOW by foo/allow-all rule 0"),
    ("deny: test POST falls to allow-all", I("reference-deny-post-from-dev.yaml", "allow-all.yaml"),
     http(spiffe("test", "x"), HTTPBIN, "POST", "/data"), "ALLOW by foo/allow-all rule 0"),
    # allow-all, allow-nothing, deny-all
    ("allow-all: HTTP", I("allow-all.yaml"), http(None, HTTPBIN, "DELETE", "/anything"),
     "ALLOW by foo/allow-all rule 0"),
    ("allow-all: TCP", I("allow-all.yaml"), tcp(CURL, HTTPBIN, 8000),
     "ALLOW by foo/allow-all rule 0"),
    ("allow-nothing", I("allow-nothing.yaml"), http(CURL, HTTPBIN, "GET", "/"), DEFAULT),
    ("allow-nothing beside allow-all", I("allow-nothing.yaml", "allow-all.yaml"),
     http(CURL, HTTPBIN, "GET", "/"), "ALLOW by foo/allow-all rule 0"),
    ("deny-all beats allow-all", I("deny-all.yaml", "allow-all.yaml"),
     http(CURL, HTTPBIN, "GET", "/"), "DENY by foo/deny-all rule 0"),
    ("deny-all: TCP", I("deny-all.yaml"), tcp(CURL, HTTPBIN, 8000), "DENY by foo/deny-all rule 0"),
    # reference selector + request.headers[version]
    ("headers: version v1", SEL, http(CURL, BAR, headers={"version": "v1"}),
     "ALLOW by bar/httpbin rule 0"),
    ("headers: name is case-insensitive", SEL, http(CURL, BAR, headers={"Version": "v2"}),
     "ALLOW by bar/httpbin rule 0"),
    ("headers: version v3", SEL, http(CURL, BAR, headers={"version": "v3"}), DEFAULT),
    ("headers: no version header", SEL, http(CURL, BAR), DEFAULT),
    ("headers: repeated, one instance does not match", SEL,
     http(CURL, BAR, headers={"version": ["v1", "v3"]}), DEFAULT),
    ("headers: repeated, every instance matches", SEL,
     http(CURL, BAR, headers={"version": ["v1", "v2"]}), "ALLOW by bar/httpbin rule 0"),
    ("headers: POST is not GET", SEL, http(CURL, BAR, "POST", headers={"version": "v1"}),
     DEFAULT),
    ("headers: selector does not select another service", SEL,
     http(CURL, spiffe("bar", "other"), headers={"version": "v1"}), DEFAULT),
    # root namespace
    ("root: applies in foo", I("root-deny-legacy.yaml", "allow-all.yaml"),
     http(spiffe("legacy", "x"), HTTPBIN), "DENY by istio-system/deny-from-legacy rule 0"),
    ("root: others pass", I("root-deny-legacy.yaml", "allow-all.yaml"),
     http(CURL, HTTPBIN), "ALLOW by foo/allow-all rule 0"),
    ("root: DENY named before the default", I("root-deny-legacy.yaml", "allow-all.yaml"),
     http(spiffe("legacy", "x"), spiffe("bar", "anything")),
     "DENY by istio-system/deny-from-legacy rule 0"),
    # ingress task: ipBlocks
    ("ingress: 1.2.3.4", I("ingress-policy.yaml"), http(None, GW, ip="1.2.3.4"),
     "ALLOW by istio-system/ingress-policy rule 0"),
    ("ingress: in 5.6.7.0/24", I("ingress-policy.yaml"), http(None, GW, ip="5.6.7.89"),
     "ALLOW by istio-system/ingress-policy rule 0"),
    ("ingress: outside 5.6.7.0/24", I("ingress-policy.yaml"), http(None, GW, ip="5.6.8.1"),
     DEFAULT),
    ("ingress: 1.2.3.5 is not 1.2.3.4", I("ingress-policy.yaml"), http(None, GW, ip="1.2.3.5"),
     DEFAULT),
    ("ingress: no source address", I("ingress-policy.yaml"), http(None, GW), DEFAULT),
    ("ingress: ipBlocks match TCP", I("ingress-policy.yaml"), tcp(None, GW, 443, ip="5.6.7.1"),
     "ALLOW by istio-system/ingress-policy rule 0"),
    ("ingress: selector limits the root policy", I("ingress-policy.yaml"),
     http(None, HTTPBIN, ip="1.2.3.4"), DEFAULT),
    # HTTP task (Bookinfo)
    ("bookinfo: anyone GET productpage", BOOK,
     http(None, spiffe("default", "productpage"), "GET", "/productpage"),
     "ALLOW by default/productpage-viewer rule 0"),
    ("bookinfo: POST productpage", BOOK,
     http(None, spiffe("default", "productpage"), "POST", "/productpage"), DEFAULT),
    ("bookinfo: productpage GET details", BOOK,
     http(spiffe("default", "bookinfo-productpage"), spiffe("default", "details"), "GET",
          "/details/0"), "ALLOW by default/details-viewer rule 0"),
    ("bookinfo: reviews GET details", BOOK,
     http(spiffe("default", "bookinfo-reviews"), spiffe("default", "details"), "GET",
          "/details/0"), DEFAULT),
    ("bookinfo: productpage GET reviews", BOOK,
     http(spiffe("default", "bookinfo-productpage"), spiffe("default", "reviews"), "GET",
          "/reviews/0"), "ALLOW by default/reviews-viewer rule 0"),
    ("bookinfo: reviews GET ratings", BOOK,
     http(spiffe("default", "bookinfo-reviews"), spiffe("default", "ratings"), "GET",
          "/ratings/0"), "ALLOW by default/ratings-viewer rule 0"),
    ("bookinfo: productpage GET ratings", BOOK,
     http(spiffe("default", "bookinfo-productpage"), spiffe("default", "ratings"), "GET",
          "/ratings/0"), DEFAULT),
    # TCP task
    ("tcp: port 9000", I("tcp-policy.yaml"), tcp(CURL, ECHO, 9000),
     "ALLOW by foo/tcp-policy rule 0"),
    ("tcp: port 9001", I("tcp-policy.yaml"), tcp(CURL, ECHO, 9001),
     "ALLOW by foo/tcp-policy rule 0"),
    ("tcp: port 9002", I("tcp-policy.yaml"), tcp(CURL, ECHO, 9002), DEFAULT),
    ("tcp: no port", I("tcp-policy.yaml"), tcp(CURL, ECHO), DEFAULT),
    ("tcp: ALLOW with methods never matches TCP", I("tcp-policy-get.yaml"),
     tcp(CURL, ECHO, 9000), DEFAULT),
    ("tcp: ALLOW with methods matches HTTP GET", I("tcp-policy-get.yaml"),
     http(CURL, ECHO, "GET", "/", port=9000), "ALLOW by foo/tcp-policy-get rule 0"),
    ("tcp: DENY with methods applies to TCP", I("tcp-deny-get.yaml", "tcp-policy.yaml"),
     tcp(CURL, ECHO, 9000), "DENY by foo/tcp-deny-get rule 0"),
    ("tcp: DENY is on port 9000 only", I("tcp-deny-get.yaml", "tcp-policy.yaml"),
     tcp(CURL, ECHO, 9001), "ALLOW by foo/tcp-policy rule 0"),
    ("tcp: DENY with methods, HTTP POST passes", I("tcp-deny-get.yaml", "tcp-policy.yaml"),
     http(CURL, ECHO, "POST", "/", port=9000), "ALLOW by foo/tcp-policy rule 0"),
    ("tcp: DENY with methods, HTTP GET denied", I("tcp-deny-get.yaml", "tcp-policy.yaml"),
     http(CURL, ECHO, "GET", "/", port=9000), "DENY by foo/tcp-deny-get rule 0"),
    # JWT task
    ("jwt: request principal", I("jwt-require.yaml"),
     http(CURL, HTTPBIN, "GET", "/headers", auth=jwt()), "ALLOW by foo/require-jwt rule 0"),
    ("jwt: no token", I("jwt-require.yaml"), http(CURL, HTTPBIN, "GET", "/headers"), DEFAULT),
    ("jwt: other request principal", I("jwt-require.yaml"),
     http(CURL, HTTPBIN, "GET", "/headers", auth=GOOGLE), DEFAULT),
    ("jwt: groups list contains group1", I("jwt-group.yaml"),
     http(CURL, HTTPBIN, "GET", "/headers", auth=jwt(groups=["group1", "group2"])),
     "ALLOW by foo/require-jwt-group1 rule 0"),
    ("jwt: groups string claim group1", I("jwt-group.yaml"),
     http(CURL, HTTPBIN, "GET", "/headers", auth=jwt(groups="group1")),
     "ALLOW by foo/require-jwt-group1 rule 0"),
    ("jwt: groups list without group1", I("jwt-group.yaml"),
     http(CURL, HTTPBIN, "GET", "/headers", auth=jwt(groups=["group2"])), DEFAULT),
    ("jwt: no groups claim", I("jwt-group.yaml"),
     http(CURL, HTTPBIN, "GET", "/headers", auth=jwt()), DEFAULT),
    ("jwt: requestPrincipals * with a token", I("jwt-any.yaml"),
     http(CURL, HTTPBIN, "GET", "/", auth=GOOGLE), "ALLOW by foo/require-any-jwt rule 0"),
    ("jwt: requestPrincipals * without a token", I("jwt-any.yaml"),
     http(CURL, HTTPBIN, "GET", "/"), DEFAULT),
    ("jwt: DENY without token (notPaths)", I("jwt-healthz.yaml", "allow-all.yaml"),
     http(CURL, HTTPBIN, "GET", "/headers"), "DENY by foo/deny-no-jwt-except-healthz rule 0"),
    ("jwt: /healthz without token", I("jwt-healthz.yaml", "allow-all.yaml"),
     http(CURL, HTTPBIN, "GET", "/healthz"), "ALLOW by foo/allow-all rule 0"),
    ("jwt: with token", I("jwt-healthz.yaml", "allow-all.yaml"),
     http(CURL, HTTPBIN, "GET", "/headers", auth=jwt()), "ALLOW by foo/allow-all rule 0"),
    # explicit deny task
    ("explicit: deny GET", I("deny-method-get.yaml"), http(CURL, HTTPBIN, "GET", "/get"),
     "DENY by foo/deny-method-get rule 0"),
    ("explicit: GET /ip with admin token", I("deny-get-unless-admin.yaml", "allow-path-ip.yaml"),
     http(CURL, HTTPBIN, "GET", "/ip", headers={"x-token": "admin"}),
     "ALLOW by foo/allow-path-ip rule 0"),
    ("explicit: GET /ip with guest token", I("deny-get-unless-admin.yaml", "allow-path-ip.yaml"),
     http(CURL, HTTPBIN, "GET", "/ip", headers={"x-token": "guest"}),
     "DENY by foo/deny-get-unless-admin rule 0"),
    ("explicit: GET /ip without token", I("deny-get-unless-admin.yaml", "allow-path-ip.yaml"),
     http(CURL, HTTPBIN, "GET", "/ip"), "DENY by foo/deny-get-unless-admin rule 0"),
    ("explicit: repeated x-token smuggling admin",
     I("deny-get-unless-admin.yaml", "allow-path-ip.yaml"),
     http(CURL, HTTPBIN, "GET", "/ip", headers={"x-token": ["admin", "guest"]}),
     "DENY by foo/deny-get-unless-admin rule 0"),
    ("explicit: GET /get with admin token", I("deny-get-unless-admin.yaml", "allow-path-ip.yaml"),
     http(CURL, HTTPBIN, "GET", "/get", headers={"x-token": "admin"}), DEFAULT),
    # hosts, ports, notMethods (JSON manifest)
    ("hosts: exact", HOSTS, http(CURL, HB, host="httpbin.example.com", port=8000),
     "ALLOW by baz/httpbin-hosts rule 0"),
    ("hosts: case-insensitive, port ignored", HOSTS,
     http(CURL, HB, host="HTTPBIN.Example.COM:8000", port=8000),
     "ALLOW by baz/httpbin-hosts rule 0"),
    ("hosts: suffix", HOSTS, http(CURL, HB, "POST", host="api.bar.example.com", port=8000),
     "ALLOW by baz/httpbin-hosts rule 0"),
    ("hosts: suffix needs the dot", HOSTS, http(CURL, HB, host="bar.example.com", port=8000),
     DEFAULT),
    ("hosts: other host", HOSTS, http(CURL, HB, host="evil.com", port=8000), DEFAULT),
    ("hosts: no host", HOSTS, http(CURL, HB, port=8000), DEFAULT),
    ("hosts: notMethods DELETE", HOSTS,
     http(CURL, HB, "DELETE", host="httpbin.example.com", port=8000), DEFAULT),
    ("hosts: other port", HOSTS, http(CURL, HB, host="httpbin.example.com", port=8080), DEFAULT),
]


@pytest.mark.parametrize("files,request_,expected", [c[1:] for c in ISTIO_CASES],
                         ids=[c[0] for c in ISTIO_CASES])
def test_istio_example(tmp_path, files, request_, expected):
    assert_decision(evaluate(files, request_, tmp=tmp_path), expected)


def test_istio_cases_are_enough():
    assert len(ISTIO_CASES) >= 30
    used = {f.name for c in ISTIO_CASES for f in c[1]}
    assert len(used) >= 10


# zt denies by default where Istio allows: no ALLOW policy applies to the workload
ISTIO_DIFFERENCES = [
    ("no policy for the workload at all", I("allow-all.yaml"), http(CURL, BAR, "GET", "/")),
    ("only a DENY that does not match", I("reference-deny-post-from-dev.yaml"),
     http(spiffe("dev", "x"), HTTPBIN, "GET", "/")),
    ("explicit deny task: POST after deny-method-get", I("deny-method-get.yaml"),
     http(CURL, HTTPBIN, "POST", "/post")),
    ("tcp task: port 9001 with only the DENY", I("tcp-deny-get.yaml"), tcp(CURL, ECHO, 9001)),
    ("only a root-namespace DENY that does not match", I("root-deny-legacy.yaml"),
     http(CURL, HTTPBIN, "GET", "/")),
]


@pytest.mark.parametrize("files,request_", [c[1:] for c in ISTIO_DIFFERENCES],
                         ids=[c[0] for c in ISTIO_DIFFERENCES])
def test_istio_allows_by_default_zt_does_not(tmp_path, files, request_):
    assert_decision(evaluate(files, request_, tmp=tmp_path), DEFAULT)


def test_istio_root_namespace_option(tmp_path):
    files = [ISTIO / "custom-root" / "deny-legacy-mesh.yaml", ISTIO / "allow-all.yaml"]
    req = http(spiffe("legacy", "x"), HTTPBIN, "GET", "/")
    # by default mesh-root is an ordinary namespace: its policy does not reach foo
    assert_decision(evaluate(files, req, tmp=tmp_path), "ALLOW by foo/allow-all rule 0")
    p = evaluate(files, req, "--istio-root-ns", "mesh-root", tmp=tmp_path)
    assert_decision(p, "DENY by mesh-root/deny-legacy-mesh rule 0")
    # ... and istio-system is then an ordinary namespace
    q = evaluate([ISTIO / "root-deny-legacy.yaml", ISTIO / "allow-all.yaml"], req,
                 "--istio-root-ns", "mesh-root", tmp=tmp_path)
    assert_decision(q, "ALLOW by foo/allow-all rule 0")


def test_istio_policies_with_an_organization(tmp_path):
    """With an Organization, metadata.namespace is the workspace and names are ORG/TENANT/WS/NAME;
    root-namespace policies are organization-wide and print as ORG/NAME."""
    ws = tmp_path / "istio-in-acme.yaml"
    ws.write_text(
        "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\n"
        "metadata: {name: web-patch, namespace: shop}\n"
        "spec:\n  selector: {matchLabels: {app: web}}\n  action: ALLOW\n"
        "  rules:\n  - to: [{operation: {methods: [\"PATCH\"]}}]\n"
        "---\napiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\n"
        "metadata: {name: deny-trace, namespace: istio-system}\n"
        "spec:\n  action: DENY\n  rules:\n  - to: [{operation: {methods: [\"TRACE\"]}}]\n")
    p = evaluate([*ORG_SET, ws], http(acme("shop", "cart"), acme("shop", "web"), "PATCH", "/x"),
                 tmp=tmp_path)
    assert_decision(p, "ALLOW by acme/retail/shop/web-patch rule 0")
    q = evaluate([*ORG_SET, ws], http(acme("pay", "api"), acme("pay", "ledger"), "TRACE", "/x"),
                 tmp=tmp_path)
    assert_decision(q, "DENY by acme/deny-trace rule 0")
    # a namespace that is not a workspace of the organization is an error
    bad = tmp_path / "bad-ns.yaml"
    bad.write_text(ws.read_text().replace("namespace: shop", "namespace: nosuch"))
    r = check(ORG, bad)
    assert r.returncode == 1, show(r)
