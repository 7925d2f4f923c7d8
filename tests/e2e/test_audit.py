"""End-to-end tests of the audit log: `zt audit init|append|checkpoint|prove|
consistency|check-proof|verify|tail|search`.

The log is checked against an independent model (hashlib RFC 9162 hashing,
python3-cryptography Ed25519 when installed, and the Go reference
implementation golang.org/x/mod/sumdb/{tlog,note} through
tests/interop/go/tlogcheck.go), attacked on disk the ways an intruder with
write access to its directory would, and SIGKILLed mid-append hundreds of
times."""
import datetime as dt
import json
import os
import pathlib
import random
import re
import shutil
import stat
import subprocess
import threading
import time
import types

import pytest

from audit_helpers import (
    GO, HAVE_CRYPTOGRAPHY, Roots, all_file_bytes, append, append_stdin, assert_rejected, b64,
    build_tlogcheck, checkpoint, consistency, consistency_proof, copy_log, ed25519_verify,
    entries, entry_lines, errors, events, flip_byte, hmac_key, inclusion_path, index_of, key_id,
    leaf_hash, node_pos, ok, parse_checkpoint, parse_note, parse_signer_key, parse_verifier_key,
    post_order_nodes, prove, read_checkpoints, read_index, read_tree, restore_log, search,
    secret_hash, show, sign_note, tail, unb64, verify, verify_consistency, verify_inclusion,
    verify_ok, write, write_checkpoints, write_entries)
from conftest import ZT, zt

ORIGIN = "zt.example/audit"
EMPTY_ROOT = "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="  # SHA-256("")


def need_zt():
    assert os.access(ZT, os.X_OK), f"{ZT} not built: run make"


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def entry_time(e):
    return dt.datetime.strptime(e["time"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=dt.timezone.utc)


def rfc3339(s):
    return dt.datetime.strptime(s, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.timezone.utc)


def save(path, text):
    return write(path, text if isinstance(text, str) else json.dumps(text))


def check_proof(f, *extra):
    return zt("audit", "check-proof", f, *extra)


# ---- 1. the basic flow ----------------------------------------------------------------


def test_init_keys_and_refusal(zt_bin, tmp_path):
    d = tmp_path / "log"
    pub = init_log_checked(d)
    assert mode(d / "log.key") == 0o600, oct(mode(d / "log.key"))
    assert mode(d / "hmac.key") == 0o600, oct(mode(d / "hmac.key"))
    for f in ("log.key", "log.pub", "hmac.key", "entries", "index", "tree", "head"):
        assert (d / f).exists(), f"{f} missing after init"

    # init refuses a non-empty directory and leaves it alone
    before = all_file_bytes(d)
    p = zt("audit", "init", "--dir", d, "--origin", ORIGIN)
    assert p.returncode == 1, show(p)
    assert errors(p), show(p)
    assert all_file_bytes(d) == before
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("keep me\n")
    p = zt("audit", "init", "--dir", other, "--origin", ORIGIN)
    assert p.returncode == 1, show(p)
    assert sorted(x.name for x in other.iterdir()) == ["notes.txt"]

    # an origin that cannot be a note key name is refused
    for bad in ("has space", "has+plus", ""):
        p = zt("audit", "init", "--dir", tmp_path / f"bad{len(bad)}", "--origin", bad)
        assert p.returncode in (1, 2), f"origin {bad!r} accepted\n{show(p)}"

    verify_ok(d, "--key", d / "log.pub")
    # an empty log: checkpoint may refuse it, but what it signs must verify
    p = zt("audit", "checkpoint", "--dir", d)
    if p.returncode == 0:
        assert p.stdout.startswith(f"{ORIGIN}\n0\n{EMPTY_ROOT}\n\n\u2014 {ORIGIN} "), show(p)
        verify_ok(d, "--key", d / "log.pub")
    else:
        assert p.returncode == 1 and p.stderr.startswith("zt: audit checkpoint: "), show(p)
        assert read_checkpoints(d) == []
    assert pub


def init_log_checked(d, origin=ORIGIN):
    p = ok(zt("audit", "init", "--dir", d, "--origin", origin))
    pub = p.stdout.strip()
    assert re.fullmatch(re.escape(origin) + r"\+[0-9a-f]{8}\+[A-Za-z0-9+/]+=*", pub), pub
    assert (d / "log.pub").read_text().strip() == pub
    name, kid, pk = parse_verifier_key(pub)
    assert name == origin
    assert kid == key_id(origin, pk), "log.pub key ID is not SHA-256(name\\n 0x01 key)[:4]"
    sname, skid, seed = parse_signer_key((d / "log.key").read_text())
    assert (sname, skid) == (name, kid), "log.key and log.pub disagree"
    if HAVE_CRYPTOGRAPHY:
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

        derived = Ed25519PrivateKey.from_private_bytes(seed).public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        assert derived == pk, "log.key's seed does not give log.pub's key"
    assert "PRIVATE" not in (d / "log.pub").read_text()
    return pub


def test_append_tail_search_and_secrets(zt_bin, tmp_path):
    d = tmp_path / "log"
    init_log_checked(d)
    secret = "s3cr3t-PLAINTEXT-token-7Qz"
    i0 = append(d, "spiffe://example.org/ns/web", "http.request", "--target", "https://api.example.org/x",
                "--decision", "allow", "--request-id", "req-0", "--detail", "method=GET",
                "--detail", "query=a=b", "--secret", f"token={secret}")
    i1 = append(d, "spiffe://example.org/ns/db", "db.query", "--decision", "deny")
    assert (i0, i1) == (0, 1)
    evs = [
        {"actor": "spiffe://example.org/ns/batch", "action": "job.run", "time": "2026-01-01T10:00:00Z",
         "details": {"n": 1, "tags": ["a", "b"], "nested": {"k": True}}},
        {"actor": "spiffe://example.org/ns/batch", "action": "job.run", "time": "2026-01-02T10:00:00.250Z",
         "decision": "audit", "target": "queue://jobs"},
        {"actor": "spiffe://example.org/ns/web", "action": "http.request", "time": "2026-01-03T10:00:00Z",
         "request_id": "req-4", "secrets": {"token": "another-secret-Vb9", "password": secret}},
        {"actor": "spiffe://example.org/ns/web", "action": "svid.issue", "decision": "error",
         "details": {"reason": "quota"}},
    ]
    p, acks = append_stdin(d, evs, "--jobs", "1")
    assert acks == {1: 2, 2: 3, 3: 4, 4: 5}, show(p)

    ents = entries(d)
    assert len(ents) == 6
    e0 = ents[0]
    key = hmac_key(d)
    assert e0["actor"] == "spiffe://example.org/ns/web" and e0["action"] == "http.request"
    assert e0["target"] == "https://api.example.org/x" and e0["decision"] == "allow"
    assert e0["request_id"] == "req-0"
    assert e0["details"] == {"method": "GET", "query": "a=b", "token": secret_hash(key, secret)}, e0
    assert "secrets" not in e0
    assert ents[4]["details"] == {"token": secret_hash(key, "another-secret-Vb9"),
                                  "password": secret_hash(key, secret)}, ents[4]
    assert ents[2]["details"] == evs[0]["details"]
    assert ents[2]["time"] == "2026-01-01T10:00:00.000Z", ents[2]
    assert ents[3]["time"] == "2026-01-02T10:00:00.250Z", ents[3]
    now = dt.datetime.now(dt.timezone.utc)
    for e in (ents[0], ents[1], ents[5]):
        assert abs(entry_time(e) - now) < dt.timedelta(minutes=5), e
    # stored entries are canonical: sorted keys, compact, one line
    for raw in entry_lines(d):
        e = json.loads(raw)
        assert raw == json.dumps(e, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode(), raw

    # secrets never reach the disk (nor the listings)
    for name, data in all_file_bytes(d).items():
        for s in (secret, "another-secret-Vb9"):
            assert s.encode() not in data, f"secret plaintext in {name}"

    # tail
    t = tail(d, 3)
    assert [i for i, _ in t] == [3, 4, 5]
    assert [e for _, e in t] == ents[3:]
    assert [i for i, _ in tail(d, 100)] == list(range(6))
    p = ok(zt("audit", "tail", "--dir", d, "-n", 6))
    assert secret not in p.stdout

    # search
    assert [i for i, _ in search(d, "--actor", "spiffe://example.org/ns/web")] == [0, 4, 5]
    assert [i for i, _ in search(d, "--action", "job.run")] == [2, 3]
    assert [i for i, _ in search(d, "--decision", "deny")] == [1]
    assert [i for i, _ in search(d, "--target", "queue://jobs")] == [3]
    assert [i for i, _ in search(d, "--actor", "spiffe://example.org/ns/web", "--action", "svid.issue")] == [5]
    assert search(d, "--actor", "spiffe://nobody") == []
    since, until = "2026-01-02T00:00:00Z", "2026-01-02T23:00:00Z"
    want_since = [i for i, e in enumerate(ents) if entry_time(e) >= rfc3339(since)]
    want_until = [i for i, e in enumerate(ents) if entry_time(e) <= rfc3339(until)]
    want_both = sorted(set(want_since) & set(want_until))
    assert [i for i, _ in search(d, "--since", since)] == want_since
    assert [i for i, _ in search(d, "--until", until)] == want_until
    assert [i for i, _ in search(d, "--since", since, "--until", until)] == want_both == [3]
    # --secret: entries whose details.K is the HMAC of V under the log's key
    assert [i for i, _ in search(d, "--secret", f"token={secret}")] == [0]
    assert [i for i, _ in search(d, "--secret", f"password={secret}")] == [4]
    assert [i for i, _ in search(d, "--secret", "token=another-secret-Vb9")] == [4]
    assert search(d, "--secret", "token=wrong") == []
    assert [i for _, e in search(d, "--secret", f"token={secret}") for i in [e["request_id"]]] == ["req-0"]
    p = zt("audit", "search", "--dir", d, "--since", "yesterday")
    assert p.returncode in (1, 2), show(p)

    verify_ok(d)


def test_checkpoint_prove_consistency_check_proof(zt_bin, tmp_path):
    d = tmp_path / "log"
    init_log_checked(d)
    append_stdin(d, events(13))
    note13 = checkpoint(d)
    origin, size, root13 = parse_checkpoint(note13)
    assert (origin, size) == (ORIGIN, 13)
    assert note13.startswith(f"{ORIGIN}\n13\n{b64(root13)}\n\n\u2014 {ORIGIN} "), note13
    assert (d / "checkpoint").read_text() == note13
    assert read_checkpoints(d) == [note13]
    append_stdin(d, events(24, start=13))
    note37 = checkpoint(d)
    _, _, root37 = parse_checkpoint(note37)
    assert read_checkpoints(d) == [note13, note37]
    assert (d / "checkpoint").read_text() == note37
    n13, n37, pub = save(tmp_path / "13.note", note13), save(tmp_path / "37.note", note37), d / "log.pub"

    leaves = [leaf_hash(x) for x in entry_lines(d)]
    for index, size in [(0, None), (36, None), (12, None), (5, 13), (12, 13), (0, 1), (20, 21), (31, 32)]:
        pr = prove(d, index, size)
        n = size or 37
        assert (pr["leafIdx"], pr["treeSize"]) == (index, n), pr
        assert unb64(pr["leafHash"]) == leaves[index]
        assert verify_inclusion(index, n, unb64(pr["leafHash"]), [unb64(h) for h in pr["proof"]],
                                unb64(pr["root"])), pr
        f = save(tmp_path / f"incl-{index}-{n}.json", pr)
        out = ok(check_proof(f))
        if n in (13, 37):
            ok(check_proof(f, "--checkpoint", n37 if n == 37 else n13, "--key", pub))
            assert unb64(pr["root"]) == (root37 if n == 37 else root13)
        print(out.stdout, end="")
    # a proof checked against the wrong checkpoint
    f5 = tmp_path / "incl-5-13.json"
    p = check_proof(f5, "--checkpoint", n37, "--key", pub)
    assert p.returncode == 1, show(p)
    # a proof against a checkpoint with the wrong key
    other = tmp_path / "other"
    init_log_checked(other, origin=ORIGIN)
    p = check_proof(tmp_path / "incl-36-37.json", "--checkpoint", n37, "--key", other / "log.pub")
    assert p.returncode == 1, show(p)

    # tampered inclusion proofs are rejected
    base = json.loads((tmp_path / "incl-12-37.json").read_text())
    assert len(base["proof"]) >= 3
    tampered = {
        "proof-hash": dict(base, proof=[b64(bytes([unb64(base["proof"][0])[0] ^ 1]) + unb64(base["proof"][0])[1:])] + base["proof"][1:]),
        "leaf-index": dict(base, leafIdx=13),
        "leaf-hash": dict(base, leafHash=b64(leaves[13])),
        "root": dict(base, root=b64(root13)),
        "tree-size": dict(base, treeSize=13),
        "short-proof": dict(base, proof=base["proof"][:-1]),
        "long-proof": dict(base, proof=base["proof"] + [base["proof"][0]]),
        "swapped": dict(base, proof=[base["proof"][1], base["proof"][0]] + base["proof"][2:]),
    }
    for name, pr in tampered.items():
        assert not verify_inclusion(pr["leafIdx"], pr["treeSize"], unb64(pr["leafHash"]),
                                    [unb64(h) for h in pr["proof"]], unb64(pr["root"])), name
        f = save(tmp_path / f"bad-{name}.json", pr)
        p = check_proof(f)
        assert p.returncode == 1, f"tampered proof ({name}) accepted\n{show(p)}"
    p = check_proof(save(tmp_path / "garbage.json", "{\"leafIdx\": 1"))
    assert p.returncode == 1, show(p)

    # consistency 13 -> 37, checked alone and against both checkpoints
    c = consistency(d, 13, 37)
    assert (c["size1"], c["size2"]) == (13, 37), c
    assert (unb64(c["root1"]), unb64(c["root2"])) == (root13, root37)
    assert [unb64(h) for h in c["proof"]] == consistency_proof(13, leaves), "not RFC 9162 PROOF(13, D[37])"
    assert consistency(d, 13) == c, "--to defaults to the current size"
    fc = save(tmp_path / "cons-13-37.json", c)
    ok(check_proof(fc))
    ok(check_proof(fc, "--checkpoint", n37, "--key", pub))
    for m, n in [(1, 37), (16, 37), (36, 37), (37, 37), (5, 13), (8, 16)]:
        c2 = consistency(d, m, n)
        assert verify_consistency(m, n, unb64(c2["root1"]), unb64(c2["root2"]),
                                  [unb64(h) for h in c2["proof"]]), c2
        ok(check_proof(save(tmp_path / f"cons-{m}-{n}.json", c2)))
    bad = {
        "root1": dict(c, root1=c["root2"]),
        "root2": dict(c, root2=c["root1"]),
        "size1": dict(c, size1=12),
        "proof": dict(c, proof=c["proof"][::-1]),
        "short": dict(c, proof=c["proof"][:-1]),
        "size1-zero": dict(c, size1=0, proof=[]),
    }
    for name, pr in bad.items():
        assert not verify_consistency(pr["size1"], pr["size2"], unb64(pr["root1"]), unb64(pr["root2"]),
                                      [unb64(h) for h in pr["proof"]]), name
        p = check_proof(save(tmp_path / f"bad-cons-{name}.json", pr))
        assert p.returncode == 1, f"tampered consistency proof ({name}) accepted\n{show(p)}"
    # a consistency proof whose new root is not the checkpoint's
    c20 = save(tmp_path / "cons-13-20.json", consistency(d, 13, 20))
    ok(check_proof(c20))
    assert check_proof(c20, "--checkpoint", n37, "--key", pub).returncode == 1

    # out of range requests
    for args in (["prove", "--dir", d, "--index", 37], ["prove", "--dir", d, "--index", 5, "--size", 5],
                 ["prove", "--dir", d, "--index", 1, "--size", 38],
                 ["consistency", "--dir", d, "--from", 38], ["consistency", "--dir", d, "--from", 20, "--to", 13]):
        p = zt("audit", *args)
        assert p.returncode in (1, 2), f"{args} accepted\n{show(p)}"

    p = verify_ok(d, "--key", pub, "--checkpoint", n13, "--checkpoint", n37)
    first = next(line for line in p.stdout.splitlines() if line.startswith("ok:"))
    assert re.search(r"\b37\b", first) and re.search(r"\b2\b", first), f"counts missing: {first!r}"


BAD_LINES = [
    # (JSON line, words the error must contain)
    ('{"action":"test.write"}', ["actor"]),
    ('{"actor":"spiffe://x/y"}', ["action"]),
    ('{"actor":"spiffe://x/y","action":"test.write","colour":"red"}', ["colour"]),
    ('{"actor":"spiffe://x/y","action":"test.write","decision":"maybe"}', ["decision"]),
    ('{"actor":"spiffe://x/y","action":"test.write","details":[1,2]}', ["details"]),
    ('{"actor":"spiffe://x/y","action":"test.write","details":"text"}', ["details"]),
    ('{"actor":"spiffe://x/y","action":"test.write","secrets":{"pin":1234}}', ["pin"]),
    ('{"actor":"spiffe://x/y","action":"test.write","secrets":["a"]}', ["secrets"]),
    ('{"actor":"spiffe://x/y","action":"Test Write"}', ["action"]),
    ('{"actor":"spiffe://x/y","action":"test.write","time":"yesterday"}', ["time"]),
    ('{"actor":7,"action":"test.write"}', ["actor"]),
    ('{"actor":"spiffe://x/y","action":"test.write"', []),  # not JSON
    ('["actor","action"]', []),
]


def test_entry_schema_errors(zt_bin, tmp_path):
    d = tmp_path / "log"
    init_log_checked(d)
    append(d)
    good = ['{"actor":"spiffe://x/good","action":"test.write","request_id":"g1"}',
            '{"actor":"spiffe://x/good","action":"test.write","request_id":"g2"}']
    lines = [good[0]] + [bl for bl, _ in BAD_LINES] + [good[1]]
    p, acks = append_stdin(d, lines, "--jobs", "1", check=False)
    assert p.returncode == 1, show(p)
    assert acks == {1: 1, len(lines): 2}, f"only the good lines are appended\n{show(p)}"
    err_lines = p.stderr.splitlines()
    for n, (_, words) in enumerate(BAD_LINES, start=2):
        hits = [e for e in err_lines if re.search(rf"\bline {n}\b", e)]
        assert hits, f"no error names line {n} ({lines[n - 1]})\n{show(p)}"
        for w in words:
            assert any(w in h for h in hits), f"line {n}: {w!r} not in {hits}"
    assert [e["request_id"] for e in entries(d)[1:]] == ["g1", "g2"]
    assert "1234" not in p.stderr, "a secret's value echoed in an error"

    # the same mistakes through flags: refused, nothing appended
    before = all_file_bytes(d)
    bad_flag_calls = [
        ["--actor", "spiffe://x/y"],                       # no --action
        ["--action", "test.write"],                        # no --actor
        ["--actor", "spiffe://x/y", "--action", "test.write", "--decision", "maybe"],
        ["--actor", "spiffe://x/y", "--action", "Bad Action"],
        ["--actor", "spiffe://x/y", "--action", "test.write", "--detail", "novalue"],
        ["--actor", "spiffe://x/y", "--action", "test.write", "--secret", "novalue"],
        ["--actor", "spiffe://x/y", "--action", "test.write", "--detail", "k=1", "--secret", "k=2"],
        ["--actor", "spiffe://x/y", "--action", "test.write", "--colour", "red"],
    ]
    for args in bad_flag_calls:
        p = zt("audit", "append", "--dir", d, *args)
        assert p.returncode in (1, 2), f"{args} accepted\n{show(p)}"
        assert p.stdout == "", show(p)
        assert p.stderr.startswith("zt: "), show(p)
    p = zt("audit", "append", "--dir", d, "--actor", "spiffe://x/y", "--action", "test.write", "--decision", "maybe")
    assert_rejected(p, ("entry-schema", "usage"), "decision", code=p.returncode)
    after = all_file_bytes(d)
    for f in ("entries", "index", "tree", "head"):
        assert after[f] == before[f], f"{f} changed by a refused append"
    # a batch of only bad lines appends nothing
    p, acks = append_stdin(d, [bl for bl, _ in BAD_LINES[:4]], check=False)
    assert p.returncode == 1 and acks == {}, show(p)
    assert (d / "entries").read_bytes() == before["entries"]
    verify_ok(d)


def test_second_writer_is_locked(zt_bin, tmp_path):
    d = tmp_path / "log"
    init_log_checked(d)
    w = subprocess.Popen([ZT, "audit", "append", "--dir", str(d), "--stdin"], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        w.stdin.write('{"actor":"spiffe://x/a","action":"test.write","request_id":"w1"}\n')
        w.stdin.flush()
        assert w.stdout.readline() == "0 1\n"  # the writer holds the log now
        p = zt("audit", "append", "--dir", d, "--actor", "spiffe://x/b", "--action", "test.write")
        assert_rejected(p, "locked")
        p = zt("audit", "append", "--dir", d, "--stdin", input='{"actor":"spiffe://x/b","action":"test.write"}\n')
        assert_rejected(p, "locked")
        assert p.stdout == "", show(p)
        p = zt("audit", "checkpoint", "--dir", d)
        assert_rejected(p, "locked")
        # readers are not writers
        assert [e["request_id"] for _, e in tail(d, 5)] == ["w1"]
        w.stdin.write('{"actor":"spiffe://x/a","action":"test.write","request_id":"w2"}\n')
        w.stdin.flush()
        assert w.stdout.readline() == "1 2\n"
        w.stdin.close()
        assert w.wait(timeout=30) == 0, w.stderr.read()
    finally:
        if w.poll() is None:
            w.kill()
            w.wait()
    assert append(d, "spiffe://x/b") == 2
    assert [e["request_id"] for e in entries(d)[:2]] == ["w1", "w2"]
    verify_ok(d)


def test_concurrent_jobs(zt_bin, tmp_path):
    d = tmp_path / "log"
    init_log_checked(d)
    n = 1500
    p, acks = append_stdin(d, events(n, "c"), "--jobs", "16")
    assert sorted(acks.values()) == list(range(n)), "every index acknowledged once"
    lines = entries(d)
    assert len(lines) == n
    for ln, idx in acks.items():
        assert lines[idx]["request_id"] == f"c-{ln - 1}", (ln, idx, lines[idx])
    p, acks2 = append_stdin(d, events(300, "c", start=n), "--jobs", "64")
    assert sorted(acks2.values()) == list(range(n, n + 300))
    p = zt("audit", "append", "--dir", d, "--stdin", "--jobs", "0", input="")
    assert p.returncode == 2, show(p)
    verify_ok(d)


def test_oversized_entries(zt_bin, tmp_path):
    d = tmp_path / "log"
    init_log_checked(d)
    big = {"actor": "spiffe://x/y", "action": "test.write", "details": {"blob": "x" * 70000}}
    huge = {"actor": "spiffe://x/y", "action": "test.write", "details": {"blob": "x" * 200000}}
    deep = {"actor": "spiffe://x/y", "action": "test.write", "details": {"a": [[[[[[[[[[1]]]]]]]]]]}}
    p, acks = append_stdin(d, [big, huge, deep, events(1)[0]], "--jobs", "1", check=False)
    assert p.returncode == 1 and acks == {4: 0}, show(p)
    for ln in (1, 2, 3):
        assert re.search(rf"line {ln}\b.*\[entry-(size|schema)\]", p.stderr), show(p)
    p = zt("audit", "append", "--dir", d, "--actor", "spiffe://x/y", "--action", "test.write",
           "--detail", "blob=" + "y" * 70000)
    assert_rejected(p, "entry-size")
    assert len(entry_lines(d)) == 1
    verify_ok(d)


# ---- 2. independent recomputation --------------------------------------------------------


def test_independent_recomputation(zt_bin, tmp_path):
    d = tmp_path / "log"
    pub = init_log_checked(d)
    name, kid, pk = parse_verifier_key(pub)
    append_stdin(d, events(5, details={"x": "y\u00e9\u2603", "q": "a\"b\\c"}))
    notes = [checkpoint(d)]
    append_stdin(d, events(59, start=5), "--jobs", "4")
    notes.append(checkpoint(d))
    append(d, "spiffe://example.org/x", "test.write", "--secret", "k=v")
    notes.append(checkpoint(d))
    notes.append(checkpoint(d))  # twice at the same size

    lines = entry_lines(d)
    assert len(lines) == 65
    leaves = [leaf_hash(x) for x in lines]
    roots = Roots(leaves)
    assert read_index(d) == [int.from_bytes(index_of(lines)[8 * i:8 * i + 8], "big") for i in range(65)]
    assert read_tree(d) == post_order_nodes(leaves), "the tree file is not the post-order node list"
    assert len(read_tree(d)) == 2 * 65 - bin(65).count("1")
    assert read_checkpoints(d) == notes

    for note, size in zip(notes, (5, 64, 65, 65)):
        origin, n, root = parse_checkpoint(note)
        assert (origin, n) == (ORIGIN, size)
        assert root == roots[size], f"checkpoint {size}: root is not MTH(D[{size}])"
        text, sigs = parse_note(note)
        assert text == f"{ORIGIN}\n{size}\n{b64(root)}\n"
        assert len(sigs) == 1 and sigs[0][0] == ORIGIN and sigs[0][1] == kid, sigs
        assert len(sigs[0][2]) == 64
        if HAVE_CRYPTOGRAPHY:
            assert ed25519_verify(pk, sigs[0][2], text.encode()), f"bad signature on checkpoint {size}"
            assert not ed25519_verify(pk, sigs[0][2], text.replace(f"\n{size}\n", f"\n{size + 1}\n").encode())
    if not HAVE_CRYPTOGRAPHY:
        print("python3-cryptography missing: Ed25519 signatures not checked independently")

    for size in (1, 2, 3, 5, 7, 8, 9, 63, 64, 65):
        for index in sorted({0, size // 2, size - 1}):
            pr = prove(d, index, size)
            assert unb64(pr["root"]) == roots[size]
            assert unb64(pr["leafHash"]) == leaves[index]
            assert [unb64(h) for h in pr["proof"]] == inclusion_path(index, leaves[:size]), \
                f"prove {index} {size} is not RFC 9162 PATH"
    for m, n in [(1, 2), (2, 3), (3, 7), (4, 8), (5, 64), (6, 65), (64, 65), (65, 65), (1, 65)]:
        c = consistency(d, m, n)
        assert (unb64(c["root1"]), unb64(c["root2"])) == (roots[m], roots[n])
        assert [unb64(h) for h in c["proof"]] == consistency_proof(m, leaves[:n]), \
            f"consistency {m} {n} is not RFC 9162 PROOF"
    verify_ok(d)


# ---- 3. tampering ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def tlog(tmp_path_factory):
    """A log of 50 entries with checkpoints at 20 and 50, a copy of it at 30
    entries, the auditor's copies of the notes and key, and a second log with
    the same origin but its own key."""
    need_zt()
    root = tmp_path_factory.mktemp("tamper")
    d = root / "log"
    init_log_checked(d)
    append_stdin(d, events(20, "t"), "--jobs", "1")
    cp20 = checkpoint(d)
    append_stdin(d, events(10, "t", start=20), "--jobs", "3")
    at30 = copy_log(d, root / "at30")
    append_stdin(d, events(20, "t", start=30), "--jobs", "1")
    append(d, "spiffe://example.org/t/x", "test.write", "--secret", "pw=hunter2")  # entry 50
    cp51 = checkpoint(d)
    other = root / "other"
    init_log_checked(other)
    append_stdin(other, events(51, "forged"))
    other_note = checkpoint(other)
    ns = types.SimpleNamespace(
        root=root, dir=d, at30=at30, other=other, other_note=other_note,
        cp20=save(root / "cp20.note", cp20), cp51=save(root / "cp51.note", cp51),
        pub=save(root / "real.pub", (d / "log.pub").read_text()))
    verify_ok(d, "--key", ns.pub, "--checkpoint", ns.cp20, "--checkpoint", ns.cp51)
    return ns


@pytest.fixture
def tdir(tlog, tmp_path):
    return copy_log(tlog.dir, tmp_path / "log")


# a stored checkpoint is named by its size or its position in the checkpoints file
CP1 = r"\bcheckpoint 1\b|size 20\b"
CP2 = r"\bcheckpoint 2\b|size 51\b"
CP3 = r"\bcheckpoint 3\b|size 51\b"


def verify_fails(d, t, rules, *needles, notes=True):
    """verify with the auditor's key (and checkpoints) must fail with one of
    `rules`, naming `needles`; also without the auditor's extras."""
    args = ["--key", t.pub] + (["--checkpoint", t.cp20, "--checkpoint", t.cp51] if notes else [])
    r = assert_rejected(verify(d, *args), rules, *needles)
    assert_rejected(verify(d), rules, *needles)
    return r


def test_tamper_entry_byte(tdir, tlog):
    off = read_index(tdir)[17]
    line = entry_lines(tdir)[17]
    flip_byte(tdir / "entries", off + line.index(b"spiffe"), 0x20)  # "Spiffe": valid JSON, same length
    assert entry_lines(tdir)[17] == line.replace(b"spiffe", b"Spiffe", 1)
    verify_fails(tdir, tlog, "entry-altered", r"\bentry 17\b")


def test_tamper_entry_not_json(tdir, tlog):
    off = read_index(tdir)[42]
    flip_byte(tdir / "entries", off, ord("{") ^ ord("["))
    verify_fails(tdir, tlog, ("entry-altered", "entry-schema"), r"\bentry 42\b")


def test_tamper_delete_entry(tdir, tlog):
    lines = entry_lines(tdir)
    write_entries(tdir, lines[:17] + lines[18:], index=False)
    verify_fails(tdir, tlog, ("index", "entry-altered", "damaged"), r"\bentry 17\b")


def test_tamper_delete_entry_rewrite_index(tdir, tlog):
    lines = entry_lines(tdir)
    write_entries(tdir, lines[:17] + lines[18:], index=True)
    verify_fails(tdir, tlog, ("index", "entry-altered", "tree", "damaged", "truncated"), r"\b(entry|entries) 17\b")


def test_tamper_delete_entry_rewrite_index_and_tree(tdir, tlog):
    """The attacker recomputes index and tree; only the head and the signed
    checkpoints still remember entry 17."""
    lines = entry_lines(tdir)
    write_entries(tdir, lines[:17] + lines[18:], index=True, tree=True)
    assert_rejected(verify(tdir, "--key", tlog.pub, "--checkpoint", tlog.cp20),
                    ("damaged", "truncated", "checkpoint-root", "inconsistent", "index", "tree"),
                    r"\b(17|20|50|51)\b")


def test_tamper_reorder_entries(tdir, tlog):
    lines = entry_lines(tdir)
    lines[10], lines[11] = lines[11], lines[10]
    write_entries(tdir, lines, index=True)
    verify_fails(tdir, tlog, "entry-altered", r"\bentry 10\b")


def test_rollback_and_reappend(tlog, tmp_path):
    """An attacker restores the log as it was at 30 entries, appends 21 other
    entries and signs a new checkpoint with the real key: the log is
    self-consistent, only the auditor's old checkpoint of size 51 exposes it."""
    d = copy_log(tlog.dir, tmp_path / "log")
    restore_log(tlog.at30, d)
    append_stdin(d, events(21, "rewritten", start=30))
    note = checkpoint(d)
    assert parse_checkpoint(note)[1] == 51
    verify_ok(d, "--key", tlog.pub)
    verify_ok(d, "--key", tlog.pub, "--checkpoint", tlog.cp20)
    assert_rejected(verify(d, "--key", tlog.pub, "--checkpoint", tlog.cp51),
                    ("inconsistent", "checkpoint-root"), r"\b51\b")
    assert_rejected(verify(d, "--key", tlog.pub, "--checkpoint", tlog.cp20, "--checkpoint", tlog.cp51),
                    ("inconsistent", "checkpoint-root"), r"\b51\b")


def test_rollback_shorter_than_checkpoint(tlog, tmp_path):
    d = copy_log(tlog.dir, tmp_path / "log")
    restore_log(tlog.at30, d)
    append_stdin(d, events(10, "rewritten", start=30))
    verify_ok(d, "--key", tlog.pub, "--checkpoint", tlog.cp20)
    assert_rejected(verify(d, "--key", tlog.pub, "--checkpoint", tlog.cp51), ("truncated", "inconsistent"), r"\b51\b")
    # the rolled-back files alone: cut everything back to 30 entries by hand
    d2 = copy_log(tlog.dir, tmp_path / "log2")
    restore_log(tlog.at30, d2)
    assert_rejected(verify(d2, "--key", tlog.pub, "--checkpoint", tlog.cp51), ("truncated", "inconsistent"), r"\b51\b")


def test_rewrite_history_with_the_real_key(tlog, tmp_path):
    """An attacker who holds log.key and hmac.key rebuilds the log without
    entry 17 and signs fresh checkpoints: only old checkpoints expose it."""
    d = tmp_path / "log"
    init_log_checked(d)
    for f in ("log.key", "log.pub", "hmac.key"):
        shutil.copyfile(tlog.dir / f, d / f)
    old = [json.loads(x) for x in entry_lines(tlog.dir)]
    append_stdin(d, old[:17] + old[18:], "--jobs", "1")
    assert entry_lines(d)[:17] == entry_lines(tlog.dir)[:17], "an event from a stored entry is stored unchanged"
    checkpoint(d)
    verify_ok(d, "--key", tlog.pub)
    assert_rejected(verify(d, "--key", tlog.pub, "--checkpoint", tlog.cp20),
                    ("inconsistent", "checkpoint-root"), r"\b20\b")
    assert_rejected(verify(d, "--key", tlog.pub, "--checkpoint", tlog.cp51),
                    ("truncated", "inconsistent"), r"\b51\b")


def test_given_checkpoint_of_another_log(tdir, tlog):
    note = save(tdir.parent / "other.note", tlog.other_note)
    _, rule, msg = assert_rejected(verify(tdir, "--key", tlog.pub, "--checkpoint", tlog.cp20, "--checkpoint", note),
                                   ("checkpoint-signature", "note-signature", "inconsistent", "signature"),
                                   r"given checkpoint 2\b")


def test_tamper_checkpoint_root(tdir, tlog):
    notes = read_checkpoints(tdir)
    assert len(notes) == 2
    lines = notes[1].split("\n")
    root = unb64(lines[2])
    lines[2] = b64(bytes([root[0] ^ 0x80]) + root[1:])
    notes[1] = "\n".join(lines)
    write_checkpoints(tdir, notes)
    verify_fails(tdir, tlog, ("checkpoint-signature", "checkpoint-root"), CP2, notes=False)


def test_checkpoint_root_resigned(tdir, tlog):
    """With log.key an attacker can sign a checkpoint over a wrong root: the
    signature is good, the root is not the entries'."""
    if not (tlog.dir / "log.key").exists():
        pytest.skip("no log.key")
    if not HAVE_CRYPTOGRAPHY:
        pytest.skip("python3-cryptography is needed to forge the signature")
    notes = read_checkpoints(tdir)
    _, _, root = parse_checkpoint(notes[0])
    text = f"{ORIGIN}\n20\n{b64(bytes([root[0] ^ 1]) + root[1:])}\n"
    notes[0] = sign_note((tdir / "log.key").read_text(), text)
    write_checkpoints(tdir, notes)
    assert_rejected(verify(tdir, "--key", tlog.pub), "checkpoint-root", r"\b20\b")
    # the message names the range of entries that holds the change
    _, _, msg = assert_rejected(verify(tdir), "checkpoint-root", r"\b20\b")
    assert re.search(r"\b0\b.*\b19\b|\b19\b", msg), msg


def test_swap_in_checkpoint_from_other_key(tdir, tlog):
    notes = read_checkpoints(tdir)
    notes[1] = tlog.other_note
    write_checkpoints(tdir, notes)
    (tdir / "checkpoint").write_text(tlog.other_note)
    verify_fails(tdir, tlog, "checkpoint-signature", CP2, notes=False)


def test_forged_log_pub(tdir, tlog):
    """The attacker replaces the log's keys with their own; the auditor's
    --key still catches every checkpoint."""
    for f in ("log.key", "log.pub"):
        shutil.copyfile(tlog.other / f, tdir / f)
    note = checkpoint(tdir)  # signed by the forged key
    assert parse_checkpoint(note)[1] == 51
    assert_rejected(verify(tdir, "--key", tlog.pub), "checkpoint-signature", CP3)
    # DIR/log.pub is the forged one: the old checkpoints do not verify with it
    assert_rejected(verify(tdir), "checkpoint-signature", CP1)

    if HAVE_CRYPTOGRAPHY:
        # re-sign every stored checkpoint with the forged key
        forged = (tdir / "log.key").read_text()
        notes = [sign_note(forged, parse_note(n)[0]) for n in read_checkpoints(tdir)]
        write_checkpoints(tdir, notes)
        (tdir / "checkpoint").write_text(notes[-1])
        verify_ok(tdir)  # consistent with its own (forged) key...
        # ...but not with the auditor's
        assert_rejected(verify(tdir, "--key", tlog.pub), "checkpoint-signature", CP1)
        assert_rejected(verify(tdir, "--key", tlog.pub, "--checkpoint", tlog.cp51),
                        "checkpoint-signature", CP1)


def test_tamper_tree_leaf(tdir, tlog):
    flip_byte(tdir / "tree", node_pos(0, 33) * 32 + 5)
    # the leaf is stored in the tree file: either file may have been altered
    verify_fails(tdir, tlog, ("tree", "entry-altered"), r"\b33\b")


def test_tamper_tree_interior(tdir, tlog):
    flip_byte(tdir / "tree", node_pos(3, 1) * 32)  # the node over entries 8-15
    verify_fails(tdir, tlog, "tree", r"\b(8|15)\b")


def test_tree_cut_short(tdir, tlog):
    data = (tdir / "tree").read_bytes()
    (tdir / "tree").write_bytes(data[:-40])
    verify_fails(tdir, tlog, ("damaged", "tree"), r"tree")


def assert_writer_refuses(d):
    """A writer must not "recover" a damaged log by cutting durable data."""
    before = all_file_bytes(d)
    assert_rejected(append(d, check=False), "damaged")
    assert_rejected(zt("audit", "checkpoint", "--dir", d), "damaged")
    after = all_file_bytes(d)
    for f in ("entries", "index", "tree", "head", "checkpoints", "checkpoint"):
        assert after.get(f) == before.get(f), f"{f} changed by a writer on a damaged log"


def test_entries_cut_short(tdir, tlog):
    data = (tdir / "entries").read_bytes()
    (tdir / "entries").write_bytes(data[:-10])
    verify_fails(tdir, tlog, ("damaged", "entry-altered", "index", "truncated"), r"\bentry 50\b")
    assert_writer_refuses(tdir)


def test_torn_tail_is_ignored_then_cut(tdir, tlog):
    """What a crash mid-commit leaves behind: bytes past the head in every
    data file. Verify reads the durable state; the next writer cuts them."""
    durable = all_file_bytes(tdir)
    with open(tdir / "entries", "ab") as f:
        f.write(b'{"action":"test.write","actor":"spiffe://torn"}\n{"action":"te')
    with open(tdir / "index", "ab") as f:
        f.write(len(durable["entries"]).to_bytes(8, "big") + b"\x00\x00")
    with open(tdir / "tree", "ab") as f:
        f.write(b"\xab" * 40)
    p = verify_ok(tdir, "--key", tlog.pub, "--checkpoint", tlog.cp51)
    assert re.match(r"ok: 51 entries", p.stdout), p.stdout
    assert append(tdir, "spiffe://example.org/after", "test.after") == 51
    lines = entry_lines(tdir)
    assert len(lines) == 52 and b"spiffe://torn" not in b"".join(lines)
    assert (tdir / "entries").read_bytes().startswith(durable["entries"])
    assert read_index(tdir) == [int.from_bytes(index_of(lines)[8 * i:8 * i + 8], "big") for i in range(52)]
    assert read_tree(tdir) == post_order_nodes([leaf_hash(x) for x in lines])
    verify_ok(tdir, "--key", tlog.pub, "--checkpoint", tlog.cp51)


def test_torn_checkpoint_record_is_cut(tdir, tlog):
    with open(tdir / "checkpoints", "ab") as f:
        f.write((300).to_bytes(4, "big") + b"zt.example/audit\n52\n")
    p = verify(tdir, "--key", tlog.pub)
    print("verify before recovery:", show(p))  # read-only: may report it, must not pass it silently as a checkpoint
    assert append(tdir, "spiffe://example.org/after", "test.after") == 51
    assert len(read_checkpoints(tdir)) == 2
    verify_ok(tdir, "--key", tlog.pub, "--checkpoint", tlog.cp51)


def test_head_damaged(tdir, tlog):
    n = len((tdir / "head").read_bytes())
    (tdir / "head").write_bytes(b"\xff" * n)
    verify_fails(tdir, tlog, "damaged", r"head")
    assert_writer_refuses(tdir)


def test_one_head_slot_damaged(tdir, tlog):
    """The head keeps two checksummed slots: losing one is survivable."""
    data = bytearray((tdir / "head").read_bytes())
    assert len(data) >= 256, len(data)
    for half in (0, 128):
        d = copy_log(tdir, tdir.parent / f"slot{half}")
        b = bytearray(data)
        b[half + 40] ^= 0xff
        (d / "head").write_bytes(bytes(b))
        p = verify(d, "--key", tlog.pub, "--checkpoint", tlog.cp51)
        if p.returncode == 0:
            continue  # the other slot holds the current state
        # the surviving slot is older: verify may say so, but must name the head
        assert_rejected(p, ("damaged", "truncated"), r"head|\b51\b")


# ---- 4. crash consistency -------------------------------------------------------------------

RID_RE = re.compile(rb'"request_id":"(k[0-9]+-[0-9]+)"')
LINE = '{{"actor":"spiffe://t/w","action":"test.write","request_id":"k{k}-{n}"}}\n'


def run_and_kill(d, k, delay, jobs=8):
    """Starts a --stdin writer, feeds it lines, SIGKILLs it after `delay`
    seconds; returns (acknowledged (index, lineno) pairs, lines sent, returncode, stderr)."""
    errf = open(d.parent / "writer.err", "w+b")
    p = subprocess.Popen([ZT, "audit", "append", "--dir", str(d), "--stdin", "--jobs", str(jobs)],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=errf, bufsize=0)
    stop = threading.Event()
    sent = [0]
    acks = []

    def feed():
        n = 0
        try:
            while not stop.is_set():
                chunk = "".join(LINE.format(k=k, n=n + i) for i in range(1, 17))
                n += 16
                sent[0] = n
                p.stdin.write(chunk.encode())
        except (BrokenPipeError, OSError, ValueError):
            pass

    def read():
        for line in p.stdout:
            if line.endswith(b"\n"):
                acks.append(line)

    threads = [threading.Thread(target=feed, daemon=True), threading.Thread(target=read, daemon=True)]
    for t in threads:
        t.start()
    time.sleep(delay)
    p.kill()
    p.wait()
    stop.set()
    for t in threads:
        t.join(10)
        assert not t.is_alive()
    for f in (p.stdin, p.stdout):
        try:
            f.close()
        except OSError:
            pass
    errf.seek(0)
    err = errf.read().decode(errors="replace")
    errf.close()
    pairs = []
    for line in acks:
        m = re.fullmatch(rb"([0-9]+) ([0-9]+)\n", line)
        assert m, f"kill {k}: bad acknowledgement {line!r}"
        pairs.append((int(m[1]), int(m[2])))
    return pairs, sent[0], p.returncode, err


def test_crash_kill_loop(zt_bin, tmp_path):
    d = tmp_path / "log"
    init_log_checked(d)
    seed = int(os.environ.get("ZT_AUDIT_SEED", time.time_ns() % 1000000))
    rng = random.Random(seed)
    print(f"seed {seed} (ZT_AUDIT_SEED)")
    kills = 200
    budget = 170 if "asan" in ZT else 1e9
    t0 = time.monotonic()
    acked = {}  # index -> request_id
    scanned, seen = 0, {}  # request_id -> index, for every durable entry scanned so far
    sent_by_kill = {}
    total_acks = 0

    notes = []  # the auditor's copies of checkpoints taken between kills

    def check(label):
        nonlocal scanned
        p = verify_ok(d, *[a for n in notes for a in ("--checkpoint", n)])
        m = re.search(r"^ok:.*?\b([0-9]+) entr", p.stdout, re.M)
        size = int(m[1]) if m else None
        data = (d / "entries").read_bytes()
        lines = data.split(b"\n")
        # the durable entries are whole lines; anything after them is a torn tail
        n = size if size is not None else len(lines) - 1
        assert n <= len(lines) - 1, f"{label}: verify says {n} entries, the file has {len(lines) - 1} lines"
        for i in range(scanned, n):
            m2 = RID_RE.search(lines[i])
            assert m2, f"{label}: entry {i} has no request_id: {lines[i][:200]!r}"
            rid = m2[1].decode()
            assert rid not in seen, f"{label}: {rid} stored twice (entries {seen[rid]} and {i})"
            kk, nn = map(int, rid[1:].split("-"))
            assert nn <= sent_by_kill[kk], f"{label}: entry {i} ({rid}) was never sent"
            seen[rid] = i
        scanned = n
        for idx, rid in acked.items():
            assert idx < n, f"{label}: acknowledged entry {idx} ({rid}) lost: the log has {n} entries"
            assert seen.get(rid) == idx, f"{label}: entry {idx} should be {rid}, got {lines[idx][:200]!r}"

    k = 0
    while k < kills:
        delay = rng.uniform(0.005, 0.08)
        pairs, sent, rc, err = run_and_kill(d, k, delay)
        sent_by_kill[k] = sent
        assert rc == -9, f"kill {k}: the writer ended by itself ({rc}) before SIGKILL:\n{err}"
        assert "[locked]" not in err, f"kill {k}: the lock outlived the killed writer:\n{err}"
        for idx, ln in pairs:
            assert 1 <= ln <= sent, f"kill {k}: line {ln} acknowledged, {sent} sent"
            rid = f"k{k}-{ln}"
            assert acked.setdefault(idx, rid) == rid, \
                f"kill {k}: index {idx} acknowledged for {rid}, earlier for {acked[idx]}"
        total_acks += len(pairs)
        k += 1
        if k % 20 == 5:
            notes.append(save(tmp_path / f"cp{k}.note", checkpoint(d)))
        if k % 10 == 0:
            check(f"after kill {k}")
        if time.monotonic() - t0 > budget and k >= 50:
            print(f"time budget: stopping after {k} kills")
            break
    check("at the end")
    assert total_acks > kills, f"only {total_acks} entries acknowledged in {k} kills"
    # a normal writer carries on from the recovered state
    nxt = append(d, "spiffe://t/w", "test.after")
    assert nxt == scanned, (nxt, scanned)
    verify_ok(d)
    print(f"{k} kills, {total_acks} acknowledged, {scanned} entries, {time.monotonic() - t0:.1f} s")


# ---- 5. interop with the Go reference implementation -----------------------------------------


@pytest.fixture(scope="module")
def tlogcheck(tmp_path_factory):
    if not os.access(GO, os.X_OK):
        pytest.skip(f"{GO} missing (Debian golang-go, golang-golang-x-mod-dev)")
    if not pathlib.Path("/usr/share/gocode/src/golang.org/x/mod/sumdb/tlog/tlog.go").exists():
        pytest.skip("golang-golang-x-mod-dev missing")
    return build_tlogcheck(tmp_path_factory.mktemp("go"))


def go(tool, *args):
    return subprocess.run([str(tool), *map(str, args)], capture_output=True, text=True, timeout=60)


def test_go_interop(zt_bin, tlogcheck, tmp_path):
    d = tmp_path / "log"
    init_log_checked(d)
    append_stdin(d, events(37), "--jobs", "4")
    old = save(tmp_path / "37.note", checkpoint(d))
    append_stdin(d, events(63, start=37))
    append(d, "spiffe://example.org/x", "test.write", "--secret", "k=v", "--detail", "u=\u00fc")
    note = save(tmp_path / "101.note", checkpoint(d))
    args = ["-key", d / "log.pub", "-note", note, "-old", old, "-entries", d / "entries", "-tree", d / "tree"]
    incl = []
    for index, size in [(0, None), (1, None), (36, None), (64, None), (100, None), (0, 37), (36, 37), (5, 6)]:
        f = save(tmp_path / f"incl-{index}-{size}.json", prove(d, index, size))
        incl += ["-incl", f]
    cons = []
    for m, n in [(37, 101), (1, 101), (64, 101), (100, 101), (101, 101), (3, 37), (37, 64)]:
        f = save(tmp_path / f"cons-{m}-{n}.json", consistency(d, m, n))
        cons += ["-cons", f]
    p = go(tlogcheck, *args, *incl, *cons)
    assert p.returncode == 0 and p.stdout.endswith("OK all\n"), f"Go rejects zt's log:\n{p.stdout}{p.stderr}"
    assert p.stdout.count("OK inclusion") == 8 and p.stdout.count("OK consistency") == 7, p.stdout
    assert "OK tree" in p.stdout and "OK checkpoint root recomputed" in p.stdout

    # and Go must reject what is wrong
    base = ["-key", d / "log.pub", "-note", note]
    text = note.read_text()
    bad_note = save(tmp_path / "bad.note", text.replace("\n101\n", "\n100\n", 1))
    p = go(tlogcheck, "-key", d / "log.pub", "-note", bad_note)
    assert p.returncode == 1 and "invalid signature" in p.stdout, p.stdout
    other = tmp_path / "other"
    init_log_checked(other)
    append_stdin(other, events(101))
    other_note = save(tmp_path / "other.note", checkpoint(other))
    p = go(tlogcheck, "-key", d / "log.pub", "-note", other_note)
    assert p.returncode == 1 and "FAIL" in p.stdout, p.stdout
    pr = json.loads((tmp_path / "incl-64-None.json").read_text())
    h = unb64(pr["proof"][2])
    pr["proof"][2] = b64(h[:-1] + bytes([h[-1] ^ 1]))
    p = go(tlogcheck, *base, "-incl", save(tmp_path / "bad-incl.json", pr))
    assert p.returncode == 1 and "CheckRecord" in p.stdout, p.stdout
    c = json.loads((tmp_path / "cons-37-101.json").read_text())
    c["proof"] = c["proof"][1:]
    p = go(tlogcheck, *base, "-cons", save(tmp_path / "bad-cons.json", c))
    assert p.returncode == 1 and "CheckTree" in p.stdout, p.stdout
    # an altered entry: Go's recomputed root is not the checkpoint's
    e2 = copy_log(d, tmp_path / "altered")
    flip_byte(e2 / "entries", read_index(e2)[50] + 3)
    p = go(tlogcheck, "-key", d / "log.pub", "-note", note, "-entries", e2 / "entries")
    assert p.returncode == 1 and "checkpoint root" in p.stdout, p.stdout
