"""Helpers for the `zt audit` end-to-end tests: an independent Python model of
RFC 9162 Merkle trees and proofs and of C2SP signed notes, readers of the log
directory's files, and thin wrappers around the CLI.

Nothing here shares code with zt: the hashing is hashlib's, the signature
checks are python3-cryptography's (when it is installed)."""
import base64
import hashlib
import hmac
import importlib.util
import json
import os
import pathlib
import re
import shutil
import struct
import subprocess

from conftest import ROOT, zt

ERR_RE = re.compile(r"^zt: (?P<what>[^\n]*?): \[(?P<rule>[a-z0-9][a-z0-9_.-]*)\] (?P<msg>.*)$", re.M)

HAVE_CRYPTOGRAPHY = importlib.util.find_spec("cryptography") is not None


# ---- RFC 9162 2.1, independently ------------------------------------------------


def leaf_hash(entry: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + entry).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def split_point(n):
    """The largest power of two smaller than n (n > 1)."""
    k = 1
    while k << 1 < n:
        k <<= 1
    return k


def mth(leaves):
    """MTH(D[n]) over leaf hashes (RFC 9162 2.1.1)."""
    n = len(leaves)
    if n == 0:
        return hashlib.sha256(b"").digest()
    if n == 1:
        return leaves[0]
    k = split_point(n)
    return node_hash(mth(leaves[:k]), mth(leaves[k:]))


class Roots:
    """MTH of every prefix of a leaf list, in one pass (a compact range)."""

    def __init__(self, leaves):
        self.roots = [hashlib.sha256(b"").digest()]
        stack = []  # (size, hash) of complete subtrees, largest first
        for lh in leaves:
            stack.append((1, lh))
            while len(stack) > 1 and stack[-1][0] == stack[-2][0]:
                (s, r), (_, l) = stack.pop(), stack.pop()
                stack.append((2 * s, node_hash(l, r)))
            h = stack[-1][1]
            for _, l in reversed(stack[:-1]):
                h = node_hash(l, h)
            self.roots.append(h)

    def __getitem__(self, size):
        return self.roots[size]


def post_order_nodes(leaves):
    """Every complete node of the tree in post-order (leaf 0, leaf 1, their
    parent, leaf 2, ...): how the log's `tree` file stores them."""
    out, stack = [], []
    for lh in leaves:
        out.append(lh)
        stack.append((0, lh))
        while len(stack) > 1 and stack[-1][0] == stack[-2][0]:
            (lv, r), (_, l) = stack.pop(), stack.pop()
            h = node_hash(l, r)
            out.append(h)
            stack.append((lv + 1, h))
    return out


def node_pos(level, index):
    """Position of the complete subtree (level, index) in post-order
    (the same formula as tlog.StoredHashIndex)."""
    n = index
    for _ in range(level):
        n = 2 * n + 1
    i = 0
    while n > 0:
        i += n
        n >>= 1
    return i + level


def inclusion_path(m, leaves):
    """PATH(m, D[n]) (RFC 9162 2.1.3.1), leaf's sibling first."""
    n = len(leaves)
    if n == 1:
        return []
    k = split_point(n)
    if m < k:
        return inclusion_path(m, leaves[:k]) + [mth(leaves[k:])]
    return inclusion_path(m - k, leaves[k:]) + [mth(leaves[:k])]


def consistency_proof(m, leaves):
    """PROOF(m, D[n]) (RFC 9162 2.1.4.1)."""

    def subproof(m, d, b):
        n = len(d)
        if m == n:
            return [] if b else [mth(d)]
        k = split_point(n)
        if m <= k:
            return subproof(m, d[:k], b) + [mth(d[k:])]
        return subproof(m - k, d[k:], False) + [mth(d[:k])]

    return subproof(m, leaves, True)


def verify_inclusion(index, size, leaf, proof, root):
    """RFC 9162 2.1.3.2."""
    if index >= size:
        return False
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


def verify_consistency(size1, size2, root1, root2, proof):
    """RFC 9162 2.1.4.2."""
    if size1 == size2:
        return not proof and root1 == root2
    if size1 == 0 or size1 > size2 or not proof:
        return False
    if size1 & (size1 - 1) == 0:  # a power of two
        proof = [root1] + list(proof)
    fn, sn = size1 - 1, size2 - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = proof[0]
    for c in proof[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return sn == 0 and fr == root1 and sr == root2


def b64(b):
    return base64.b64encode(b).decode()


def unb64(s):
    return base64.b64decode(s, validate=True)


# ---- signed notes (C2SP signed-note, tlog-checkpoint) -------------------------------


def key_id(name, pub32):
    return hashlib.sha256(name.encode() + b"\n" + b"\x01" + pub32).digest()[:4]


def parse_verifier_key(line):
    """(name, key id bytes, 32-byte Ed25519 public key) of "<name>+<hex>+<base64>"."""
    name, hexid, k = line.strip().split("+", 2)
    raw = unb64(k)
    assert len(raw) == 33 and raw[0] == 1, f"not an Ed25519 verifier key: {line!r}"
    return name, bytes.fromhex(hexid), raw[1:]


def parse_signer_key(line):
    """(name, key id bytes, 32-byte seed) of "PRIVATE+KEY+<name>+<hex>+<base64>"."""
    p, k, name, hexid, s = line.strip().split("+", 4)
    assert (p, k) == ("PRIVATE", "KEY"), line
    raw = unb64(s)
    assert len(raw) == 33 and raw[0] == 1, "not an Ed25519 signer key"
    return name, bytes.fromhex(hexid), raw[1:]


def parse_note(note):
    """(signed text, [(name, key id, signature)]) of a signed note."""
    text, sep, sigs = note.rpartition("\n\n")
    assert sep and sigs.endswith("\n"), f"not a signed note: {note!r}"
    out = []
    for line in sigs[:-1].split("\n"):
        assert line.startswith("\u2014 "), f"bad signature line {line!r}"
        name, s = line[2:].split(" ")
        raw = unb64(s)
        out.append((name, raw[:4], raw[4:]))
    return text + "\n", out


def parse_checkpoint(note):
    """(origin, size, root bytes) of a signed checkpoint (its text only)."""
    text, _ = parse_note(note)
    lines = text.split("\n")
    assert len(lines) >= 4 and lines[-1] == "", text
    assert re.fullmatch(r"0|[1-9][0-9]*", lines[1]), lines[1]
    root = unb64(lines[2])
    assert len(root) == 32, lines[2]
    return lines[0], int(lines[1]), root


def ed25519_verify(pub32, sig, msg):
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    try:
        Ed25519PublicKey.from_public_bytes(pub32).verify(sig, msg)
        return True
    except InvalidSignature:
        return False


def ed25519_sign(seed, msg):
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    return Ed25519PrivateKey.from_private_bytes(seed).sign(msg)


def sign_note(signer_line, text):
    """A note signed with a signer key line (as an attacker holding log.key would)."""
    name, kid, seed = parse_signer_key(signer_line)
    sig = ed25519_sign(seed, text.encode())
    return f"{text}\n\u2014 {name} {b64(kid + sig)}\n"


# ---- the log directory ------------------------------------------------------


def entry_lines(d):
    """The raw entries (bytes, without their newline), in log order."""
    data = (pathlib.Path(d) / "entries").read_bytes()
    assert data == b"" or data.endswith(b"\n"), "entries does not end with a newline"
    return data.split(b"\n")[:-1]


def entries(d):
    return [json.loads(x) for x in entry_lines(d)]


def read_index(d):
    data = (pathlib.Path(d) / "index").read_bytes()
    assert len(data) % 8 == 0, len(data)
    return list(struct.unpack(f">{len(data) // 8}Q", data))


def index_of(lines):
    """The index file an attacker would write for these entry lines."""
    offs, o = [], 0
    for x in lines:
        offs.append(o)
        o += len(x) + 1
    return struct.pack(f">{len(offs)}Q", *offs)


def write_entries(d, lines, index=True, tree=False):
    """Rewrites entries (and, as a careful attacker would, index and tree)."""
    d = pathlib.Path(d)
    (d / "entries").write_bytes(b"".join(x + b"\n" for x in lines))
    if index:
        (d / "index").write_bytes(index_of(lines))
    if tree:
        (d / "tree").write_bytes(b"".join(post_order_nodes([leaf_hash(x) for x in lines])))


def read_tree(d):
    data = (pathlib.Path(d) / "tree").read_bytes()
    assert len(data) % 32 == 0, len(data)
    return [data[i:i + 32] for i in range(0, len(data), 32)]


def read_checkpoints(d):
    """The signed notes of DIR/checkpoints, in order."""
    data = (pathlib.Path(d) / "checkpoints").read_bytes()
    out, i = [], 0
    while i < len(data):
        assert i + 4 <= len(data), "checkpoints: torn length"
        (n,) = struct.unpack(">I", data[i:i + 4])
        assert i + 4 + n <= len(data), "checkpoints: torn record"
        out.append(data[i + 4:i + 4 + n].decode())
        i += 4 + n
    return out


def write_checkpoints(d, notes):
    data = b"".join(struct.pack(">I", len(n.encode())) + n.encode() for n in notes)
    (pathlib.Path(d) / "checkpoints").write_bytes(data)


def hmac_key(d):
    """The log's HMAC key as bytes, whatever text or binary form hmac.key has."""
    raw = (pathlib.Path(d) / "hmac.key").read_bytes()
    if len(raw) == 32:
        return raw
    s = raw.strip()
    for dec in (bytes.fromhex, lambda x: base64.b64decode(x, validate=True),
                lambda x: base64.urlsafe_b64decode(x + b"=" * (-len(x) % 4))):
        try:
            k = dec(s.decode() if dec is bytes.fromhex else s)
        except Exception:
            continue
        if len(k) == 32:
            return k
    raise AssertionError(f"cannot read hmac.key ({len(raw)} bytes)")


def secret_hash(key, value):
    return "hmac-sha256:" + b64(hmac.new(key, value.encode(), hashlib.sha256).digest())


def all_file_bytes(d):
    return {p.name: p.read_bytes() for p in pathlib.Path(d).rglob("*") if p.is_file()}


def copy_log(src, dst):
    shutil.copytree(src, dst)
    return pathlib.Path(dst)


def restore_log(src, dst):
    """Puts a saved copy back over a log directory (as an attacker rolling it back)."""
    shutil.rmtree(dst)
    shutil.copytree(src, dst)


def flip_byte(path, pos, xor=0x01):
    path = pathlib.Path(path)
    b = bytearray(path.read_bytes())
    b[pos] ^= xor
    path.write_bytes(bytes(b))


# ---- the CLI ------------------------------------------------------------------


def show(p):
    return f"exit {p.returncode}\n--- stdout\n{p.stdout}--- stderr\n{p.stderr}---"


def ok(p):
    assert p.returncode == 0, show(p)
    return p


def errors(p):
    """[(what, rule, message)] of the "zt: <what>: [<rule>] <message>" lines on stderr."""
    return [(m["what"], m["rule"], m["msg"]) for m in ERR_RE.finditer(p.stderr)]


def assert_rejected(p, rules, *needles, code=1):
    """Exit `code`, an error line on stderr with one of `rules` whose text
    contains every needle (a regex)."""
    assert p.returncode == code, show(p)
    if isinstance(rules, str):
        rules = (rules,)
    errs = errors(p)
    assert errs, f"no 'zt: <what>: [<rule>] <message>' line on stderr\n{show(p)}"
    for what, rule, msg in errs:
        if rule in rules and all(re.search(n, f"{what}: {msg}") for n in needles):
            return what, rule, msg
    raise AssertionError(f"expected a [{'|'.join(rules)}] error naming {needles}\n{show(p)}")


def append(d, actor="spiffe://example.org/w", action="test.write", *extra, check=True):
    p = zt("audit", "append", "--dir", d, "--actor", actor, "--action", action, *extra)
    if check:
        ok(p)
        assert re.fullmatch(r"[0-9]+\n", p.stdout), show(p)
        return int(p.stdout)
    return p


def append_stdin(d, events, *extra, check=True):
    """Appends events (dicts, or raw str lines) through --stdin; returns the
    CompletedProcess and {lineno: index}."""
    text = "".join((e if isinstance(e, str) else json.dumps(e)) + "\n" for e in events)
    p = zt("audit", "append", "--dir", d, "--stdin", *extra, input=text)
    acks = {}
    for line in p.stdout.splitlines():
        m = re.fullmatch(r"([0-9]+) ([0-9]+)", line)
        assert m, f"bad acknowledgement line {line!r}\n{show(p)}"
        idx, ln = int(m[1]), int(m[2])
        assert ln not in acks, f"line {ln} acknowledged twice\n{show(p)}"
        acks[ln] = idx
    if check:
        ok(p)
        assert sorted(acks) == list(range(1, len(events) + 1)), show(p)
    return p, acks


def events(n, prefix="e", start=0, **kw):
    """n distinct events; request_id "<prefix>-<i>" for i in start..start+n-1."""
    return [dict({"actor": f"spiffe://example.org/{prefix}/{i % 5}", "action": "test.write",
                  "request_id": f"{prefix}-{i}"}, **kw) for i in range(start, start + n)]


def checkpoint(d):
    p = ok(zt("audit", "checkpoint", "--dir", d))
    parse_checkpoint(p.stdout)
    return p.stdout


def prove(d, index, size=None):
    args = ["audit", "prove", "--dir", d, "--index", index]
    if size is not None:
        args += ["--size", size]
    p = ok(zt(*args))
    return json.loads(p.stdout)


def consistency(d, old, new=None):
    args = ["audit", "consistency", "--dir", d, "--from", old]
    if new is not None:
        args += ["--to", new]
    p = ok(zt(*args))
    return json.loads(p.stdout)


def verify(d, *extra):
    return zt("audit", "verify", "--dir", d, *extra)


def verify_ok(d, *extra):
    p = ok(verify(d, *extra))
    assert re.search(r"^ok:", p.stdout, re.M), show(p)
    return p


def listing(p):
    """[(index, entry dict)] of `tail` / `search` output."""
    out = []
    for line in p.stdout.splitlines():
        i, tab, js = line.partition("\t")
        assert tab and i.isdigit(), f"bad listing line {line!r}"
        out.append((int(i), json.loads(js)))
    return out


def tail(d, n=None):
    args = ["audit", "tail", "--dir", d] + (["-n", n] if n is not None else [])
    return listing(ok(zt(*args)))


def search(d, *args):
    return listing(ok(zt("audit", "search", "--dir", d, *args)))


def write(path, text):
    path = pathlib.Path(path)
    path.write_text(text)
    return path


# ---- the Go checker ---------------------------------------------------------------

GO = "/usr/bin/go"
TLOGCHECK_SRC = ROOT / "tests" / "interop" / "go" / "tlogcheck.go"


def build_tlogcheck(tmp):
    """Builds tests/interop/go/tlogcheck.go against Debian's golang.org/x/mod, offline."""
    tmp = pathlib.Path(tmp)
    out = tmp / "tlogcheck"
    env = dict(os.environ, GO111MODULE="off", GOPATH="/usr/share/gocode",
               GOCACHE=str(tmp / "gocache"), GOFLAGS="", GOPROXY="off", GOTOOLCHAIN="local",
               HOME=str(tmp))
    p = subprocess.run([GO, "build", "-o", str(out), str(TLOGCHECK_SRC)], capture_output=True,
                       text=True, env=env, timeout=300)
    assert p.returncode == 0, f"go build failed:\n{p.stdout}\n{p.stderr}"
    return out
