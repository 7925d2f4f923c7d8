// tlogcheck: checks what `zt audit` writes with the Go reference
// implementation of transparency-log hashing and signed notes,
// golang.org/x/mod/sumdb/tlog and golang.org/x/mod/sumdb/note (Debian
// package golang-golang-x-mod-dev). It shares no code with zt.
//
// Build (offline, no modules):
//
//	GO111MODULE=off GOPATH=/usr/share/gocode GOFLAGS= go build -o tlogcheck tlogcheck.go
//
// Usage:
//
//	tlogcheck -key log.pub -note checkpoint.note
//	          [-entries DIR/entries [-tree DIR/tree]]
//	          [-old NOTE]... [-incl PROOF.json]... [-cons PROOF.json]...
//
//   - -key: the log's verifier key "<origin>+<hex id>+<base64(0x01||pubkey)>";
//   - -note: a signed checkpoint (C2SP tlog-checkpoint): note.Open must accept
//     its signature by -key, the origin must be the key's name;
//   - -old: older signed checkpoints, checked the same way; a -cons proof
//     from an old checkpoint's size must carry that checkpoint's root;
//   - -entries: the log's entries, one per line: tlog.RecordHash of each
//     line (without its newline), the stored hashes recomputed with
//     tlog.StoredHashesForRecordHash and the root of the checkpoint's size
//     with tlog.TreeHash must equal the checkpoint's root;
//   - -tree: the log's tree file (32-byte hashes, post-order, which is
//     tlog's stored-hash order): must equal the recomputed stored hashes;
//   - -incl: an inclusion proof {"leafIdx","treeSize","root","leafHash","proof"}
//     verified with tlog.CheckRecord; its root must be the checkpoint's if
//     its size is the checkpoint's, and with -entries its leaf hash and root
//     must be the recomputed ones;
//   - -cons: a consistency proof {"size1","size2","root1","root2","proof"}
//     verified with tlog.CheckTree, with the same cross-checks.
//
// Prints one "OK ..." line per check and "OK all" at the end; on the first
// failure prints "FAIL: ..." to stdout and exits 1 (2 for a usage error).
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

type list []string

func (l *list) String() string     { return strings.Join(*l, ",") }
func (l *list) Set(s string) error { *l = append(*l, s); return nil }

func fail(format string, args ...interface{}) {
	fmt.Printf("FAIL: "+format+"\n", args...)
	os.Exit(1)
}

func ok(format string, args ...interface{}) {
	fmt.Printf("OK "+format+"\n", args...)
}

type checkpoint struct {
	origin string
	size   int64
	root   tlog.Hash
}

// openCheckpoint verifies a signed note with v and parses its text as a
// C2SP tlog-checkpoint: origin, decimal size, base64 root, extension lines.
func openCheckpoint(path string, v note.Verifier) checkpoint {
	msg, err := os.ReadFile(path)
	if err != nil {
		fail("%v", err)
	}
	n, err := note.Open(msg, note.VerifierList(v))
	if err != nil {
		fail("note %s: note.Open: %v", path, err)
	}
	lines := strings.Split(n.Text, "\n")
	// Text ends with "\n", so the last element is "".
	if len(lines) < 4 || lines[len(lines)-1] != "" {
		fail("note %s: checkpoint text has %d lines", path, len(lines)-1)
	}
	for _, ext := range lines[3 : len(lines)-1] {
		if ext == "" {
			fail("note %s: empty extension line", path)
		}
	}
	var c checkpoint
	c.origin = lines[0]
	if c.origin != v.Name() {
		fail("note %s: origin %q is not the key's name %q", path, c.origin, v.Name())
	}
	size, err := strconv.ParseInt(lines[1], 10, 64)
	if err != nil || size < 0 || strconv.FormatInt(size, 10) != lines[1] {
		fail("note %s: bad tree size %q", path, lines[1])
	}
	c.size = size
	c.root, err = tlog.ParseHash(lines[2])
	if err != nil {
		fail("note %s: bad root %q: %v", path, lines[2], err)
	}
	ok("note %s origin=%s size=%d root=%s sigs=%d", path, c.origin, c.size, c.root, len(n.Sigs))
	return c
}

// log is the tree recomputed from the entries file.
type log struct {
	n      int64
	leaves []tlog.Hash
	stored []tlog.Hash // in tlog's stored-hash order
}

func (l *log) ReadHashes(indexes []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(indexes))
	for i, x := range indexes {
		if x < 0 || x >= int64(len(l.stored)) {
			return nil, fmt.Errorf("stored hash %d out of range (%d)", x, len(l.stored))
		}
		out[i] = l.stored[x]
	}
	return out, nil
}

func (l *log) treeHash(n int64) tlog.Hash {
	if n == 0 {
		// RFC 9162: the empty tree's hash is SHA-256 of the empty string;
		// tlog.TreeHash returns zeros. zt never proves against size 0.
		fail("tree hash of size 0 requested")
	}
	if n > l.n {
		fail("tree size %d is larger than the %d entries", n, l.n)
	}
	h, err := tlog.TreeHash(n, l)
	if err != nil {
		fail("tlog.TreeHash(%d): %v", n, err)
	}
	return h
}

func loadEntries(path string) *log {
	data, err := os.ReadFile(path)
	if err != nil {
		fail("%v", err)
	}
	l := &log{}
	if len(data) > 0 && data[len(data)-1] != '\n' {
		fail("entries %s: does not end with a newline", path)
	}
	for len(data) > 0 {
		i := bytes.IndexByte(data, '\n')
		rec := data[:i]
		data = data[i+1:]
		h := tlog.RecordHash(rec)
		hashes, err := tlog.StoredHashesForRecordHash(l.n, h, l)
		if err != nil {
			fail("tlog.StoredHashesForRecordHash(%d): %v", l.n, err)
		}
		if want := tlog.StoredHashIndex(0, l.n); want != int64(len(l.stored)) {
			fail("stored hash index %d, have %d", want, len(l.stored))
		}
		l.stored = append(l.stored, hashes...)
		l.leaves = append(l.leaves, h)
		l.n++
	}
	if tlog.StoredHashCount(l.n) != int64(len(l.stored)) {
		fail("tlog.StoredHashCount(%d) = %d, have %d", l.n, tlog.StoredHashCount(l.n), len(l.stored))
	}
	ok("entries %s: %d records, %d stored hashes", path, l.n, len(l.stored))
	return l
}

func checkTreeFile(path string, l *log) {
	data, err := os.ReadFile(path)
	if err != nil {
		fail("%v", err)
	}
	if len(data) != len(l.stored)*tlog.HashSize {
		fail("tree %s: %d bytes, want %d (%d hashes)", path, len(data), len(l.stored)*tlog.HashSize, len(l.stored))
	}
	for i, h := range l.stored {
		if !bytes.Equal(data[i*tlog.HashSize:(i+1)*tlog.HashSize], h[:]) {
			level, n := tlog.SplitStoredHashIndex(int64(i))
			fail("tree %s: stored hash %d (level %d, index %d) differs", path, i, level, n)
		}
	}
	ok("tree %s: %d stored hashes match", path, len(l.stored))
}

func readJSON(path string, v interface{}) {
	data, err := os.ReadFile(path)
	if err != nil {
		fail("%v", err)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		fail("%s: %v", path, err)
	}
}

func parseHash(path, what, s string) tlog.Hash {
	h, err := tlog.ParseHash(s)
	if err != nil {
		fail("%s: %s %q: %v", path, what, s, err)
	}
	return h
}

func parseProof(path string, ss []string) []tlog.Hash {
	out := make([]tlog.Hash, len(ss))
	for i, s := range ss {
		out[i] = parseHash(path, fmt.Sprintf("proof[%d]", i), s)
	}
	return out
}

type inclusion struct {
	LeafIdx  *int64   `json:"leafIdx"`
	TreeSize *int64   `json:"treeSize"`
	Root     string   `json:"root"`
	LeafHash string   `json:"leafHash"`
	Proof    []string `json:"proof"`
}

type consistency struct {
	Size1 *int64   `json:"size1"`
	Size2 *int64   `json:"size2"`
	Root1 string   `json:"root1"`
	Root2 string   `json:"root2"`
	Proof []string `json:"proof"`
}

func main() {
	var keyPath, notePath, entriesPath, treePath string
	var olds, incls, conss list
	flag.StringVar(&keyPath, "key", "", "verifier key file")
	flag.StringVar(&notePath, "note", "", "signed checkpoint")
	flag.StringVar(&entriesPath, "entries", "", "entries file")
	flag.StringVar(&treePath, "tree", "", "tree file (needs -entries)")
	flag.Var(&olds, "old", "older signed checkpoint (repeatable)")
	flag.Var(&incls, "incl", "inclusion proof JSON (repeatable)")
	flag.Var(&conss, "cons", "consistency proof JSON (repeatable)")
	flag.Parse()
	if keyPath == "" || notePath == "" || flag.NArg() != 0 || (treePath != "" && entriesPath == "") {
		fmt.Fprintln(os.Stderr, "usage: tlogcheck -key PUB -note NOTE [-entries F [-tree F]] [-old NOTE]... [-incl F]... [-cons F]...")
		os.Exit(2)
	}

	vkey, err := os.ReadFile(keyPath)
	if err != nil {
		fail("%v", err)
	}
	v, err := note.NewVerifier(strings.TrimSpace(string(vkey)))
	if err != nil {
		fail("key %s: note.NewVerifier: %v", keyPath, err)
	}
	ok("key %s name=%s id=%08x", keyPath, v.Name(), v.KeyHash())

	cp := openCheckpoint(notePath, v)
	oldRoots := map[int64]tlog.Hash{}
	for _, p := range olds {
		c := openCheckpoint(p, v)
		if c.size > cp.size {
			fail("old checkpoint %s: size %d is larger than %d", p, c.size, cp.size)
		}
		oldRoots[c.size] = c.root
	}
	oldRoots[cp.size] = cp.root

	var l *log
	if entriesPath != "" {
		l = loadEntries(entriesPath)
		if treePath != "" {
			checkTreeFile(treePath, l)
		}
		if cp.size > l.n {
			fail("checkpoint size %d is larger than the %d entries", cp.size, l.n)
		}
		if cp.size > 0 {
			if h := l.treeHash(cp.size); h != cp.root {
				fail("checkpoint root %s, entries give %s", cp.root, h)
			}
			ok("checkpoint root recomputed with tlog.TreeHash(%d)", cp.size)
		}
		for size, root := range oldRoots {
			if size > 0 && l.treeHash(size) != root {
				fail("checkpoint of size %d: root %s, entries give %s", size, root, l.treeHash(size))
			}
		}
	}

	for _, p := range incls {
		var in inclusion
		readJSON(p, &in)
		if in.LeafIdx == nil || in.TreeSize == nil || in.Proof == nil {
			fail("%s: missing members", p)
		}
		root := parseHash(p, "root", in.Root)
		leaf := parseHash(p, "leafHash", in.LeafHash)
		proof := parseProof(p, in.Proof)
		if err := tlog.CheckRecord(proof, *in.TreeSize, root, *in.LeafIdx, leaf); err != nil {
			fail("%s: tlog.CheckRecord(leaf %d, size %d): %v", p, *in.LeafIdx, *in.TreeSize, err)
		}
		if want, known := oldRoots[*in.TreeSize]; known && want != root {
			fail("%s: root %s is not the checkpoint's %s for size %d", p, root, want, *in.TreeSize)
		}
		if l != nil {
			if *in.LeafIdx >= l.n || l.leaves[*in.LeafIdx] != leaf {
				fail("%s: leafHash is not tlog.RecordHash(entry %d)", p, *in.LeafIdx)
			}
			if l.treeHash(*in.TreeSize) != root {
				fail("%s: root is not tlog.TreeHash(%d)", p, *in.TreeSize)
			}
		}
		ok("inclusion %s leaf=%d size=%d hashes=%d", p, *in.LeafIdx, *in.TreeSize, len(proof))
	}

	for _, p := range conss {
		var c consistency
		readJSON(p, &c)
		if c.Size1 == nil || c.Size2 == nil || c.Proof == nil {
			fail("%s: missing members", p)
		}
		root1 := parseHash(p, "root1", c.Root1)
		root2 := parseHash(p, "root2", c.Root2)
		proof := parseProof(p, c.Proof)
		if err := tlog.CheckTree(proof, *c.Size2, root2, *c.Size1, root1); err != nil {
			fail("%s: tlog.CheckTree(%d -> %d): %v", p, *c.Size1, *c.Size2, err)
		}
		for _, sr := range []struct {
			size int64
			root tlog.Hash
		}{{*c.Size1, root1}, {*c.Size2, root2}} {
			if want, known := oldRoots[sr.size]; known && want != sr.root {
				fail("%s: root %s is not the checkpoint's %s for size %d", p, sr.root, want, sr.size)
			}
			if l != nil && l.treeHash(sr.size) != sr.root {
				fail("%s: root for size %d is not tlog.TreeHash(%d)", p, sr.size, sr.size)
			}
		}
		ok("consistency %s %d->%d hashes=%d", p, *c.Size1, *c.Size2, len(proof))
	}
	fmt.Println("OK all")
}
