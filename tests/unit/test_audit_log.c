/*
 * Unit tests: the audit log (audit/log.c, audit/create.c, audit/verify.c),
 * driven through its API in temporary directories.
 *
 * The on-disk format is checked against docs/audit.md independently of
 * log.c: the entries file is the entries one per line, index their offsets,
 * tree every complete node in post-order (recomputed here with
 * zt_merkle_range_push), and the head two 128-byte slots decoded here from
 * the documented layout. Crashes are simulated by changing the files the
 * way a crash leaves them (torn tails, index and tree not yet durable: a
 * child process that exits without closing), damage by changing them the
 * way a crash cannot.
 */
#include "testutil.h"

#include "audit/audit.h"
#include "core/core.h"
#include "crypto/crypto.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define H ZT_HASH_LEN
#define ORIGIN "audit.test/unit"

/* ---- files ------------------------------------------------------------------- */

static void pathf(char out[PATH_MAX], const char *dir, const char *name)
{
	snprintf(out, PATH_MAX, "%s/%s", dir, name);
}

static uint64_t fsize(const char *dir, const char *name)
{
	char p[PATH_MAX];
	struct stat st;

	pathf(p, dir, name);
	if (stat(p, &st) != 0)
		fail_msg("stat %s: %s", p, strerror(errno));
	return (uint64_t)st.st_size;
}

static char *fget(const char *dir, const char *name, size_t *len)
{
	char p[PATH_MAX];
	char *s;

	pathf(p, dir, name);
	s = tu_read(p, len);
	if (!s)
		fail_msg("cannot read %s", p);
	return s;
}

static void fwrite_at(const char *dir, const char *name, const void *data, size_t n, off_t off,
		      int flags)
{
	char p[PATH_MAX];
	int fd;

	pathf(p, dir, name);
	fd = open(p, O_WRONLY | O_CREAT | flags, 0600);
	if (fd < 0)
		fail_msg("open %s: %s", p, strerror(errno));
	if (flags & O_APPEND) {
		assert_int_equal(write(fd, data, n), (ssize_t)n);
	} else {
		assert_int_equal(pwrite(fd, data, n, off), (ssize_t)n);
	}
	close(fd);
}

/* Replaces the file's content. */
static void fput(const char *dir, const char *name, const void *data, size_t n)
{
	fwrite_at(dir, name, data, n, 0, O_TRUNC);
}

static void fappend(const char *dir, const char *name, const void *data, size_t n)
{
	fwrite_at(dir, name, data, n, 0, O_APPEND);
}

static void ftrunc(const char *dir, const char *name, uint64_t len)
{
	char p[PATH_MAX];

	pathf(p, dir, name);
	if (truncate(p, (off_t)len) != 0)
		fail_msg("truncate %s: %s", p, strerror(errno));
}

/* Sets one byte; returns the old one. */
static uint8_t fpatch(const char *dir, const char *name, uint64_t off, uint8_t v)
{
	char p[PATH_MAX];
	uint8_t old;
	int fd;

	pathf(p, dir, name);
	fd = open(p, O_RDWR);
	assert_true(fd >= 0);
	assert_int_equal(pread(fd, &old, 1, (off_t)off), 1);
	assert_int_equal(pwrite(fd, &v, 1, (off_t)off), 1);
	close(fd);
	return old;
}

static uint64_t be64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 0; i < 8; i++)
		v = v << 8 | p[i];
	return v;
}

/* ---- the head, decoded from docs/audit.md and log.c's slot layout --------------- */

struct head {
	uint64_t seq, size, bytes, synced, synced_bytes;
	uint8_t root[H];
};

static int slot_decode(const uint8_t *s, struct head *h)
{
	uint8_t sum[H];

	if (memcmp(s, "ZTAUDIT1", 8) != 0)
		return -1;
	zt_sha256(s, 80, sum);
	if (memcmp(sum, s + 80, H) != 0)
		return -1;
	h->seq = be64(s + 8);
	h->size = be64(s + 16);
	h->bytes = be64(s + 24);
	h->synced = be64(s + 32);
	h->synced_bytes = be64(s + 40);
	memcpy(h->root, s + 48, H);
	return 0;
}

/* The newer valid slot. */
static void read_head(const char *dir, struct head *h)
{
	size_t len;
	uint8_t *p = (uint8_t *)fget(dir, "head", &len);
	struct head s[2];
	int ok[2];

	for (int i = 0; i < 2; i++)
		ok[i] = len >= (size_t)(i + 1) * 128 && slot_decode(p + 128 * i, &s[i]) == 0;
	free(p);
	assert_true(ok[0] || ok[1]);
	*h = ok[0] && (!ok[1] || s[0].seq > s[1].seq) ? s[0] : s[1];
}

/* ---- logs and entries ------------------------------------------------------------ */

static char *new_log(void)
{
	char *dir = tu_mkdtemp();
	zt_err e;

	zt_err_clear(&e);
	if (zt_audit_create(dir, ORIGIN, &e) != 0)
		fail_msg("create: %s", e.msg);
	return dir;
}

static zt_audit *open_log(const char *dir, int mode)
{
	zt_err e;
	zt_audit *a;

	zt_err_clear(&e);
	a = zt_audit_open(dir, mode, &e);
	if (!a)
		fail_msg("open %s (%s): %s: %s", dir, mode == ZT_AUDIT_WRITE ? "write" : "read", e.rule,
			 e.msg);
	return a;
}

static void open_fails(const char *dir, int mode, const char *rule)
{
	zt_err e;
	zt_audit *a;

	zt_err_clear(&e);
	a = zt_audit_open(dir, mode, &e);
	if (a) {
		zt_audit_close(a);
		fail_msg("open (%s) succeeded, want rule %s", mode == ZT_AUDIT_WRITE ? "write" : "read",
			 rule);
	}
	if (strcmp(e.rule, rule) != 0)
		fail_msg("open (%s): rule \"%s\" (%s), want \"%s\"",
			 mode == ZT_AUDIT_WRITE ? "write" : "read", e.rule, e.msg, rule);
}

static zt_note_key *load_verifier(const char *dir)
{
	size_t len;
	char *s = fget(dir, "log.pub", &len);
	zt_note_key *k = zt_note_verifier_parse(s, len, NULL);

	free(s);
	assert_non_null(k);
	return k;
}

static zt_note_key *load_signer(const char *dir)
{
	size_t len;
	char *s = fget(dir, "log.key", &len);
	zt_note_key *k = zt_note_signer_parse(s, len, NULL);

	zt_wipe(s, len);
	free(s);
	assert_non_null(k);
	return k;
}

/*
 * Entry i of a test log, built the way a caller builds one; NUL-terminated,
 * caller frees. NULL on failure (no cmocka here: a forked child calls it).
 */
static char *make_entry_raw(const uint8_t *hmac, int i, size_t *len)
{
	json_t *ev;
	zt_buf b;
	char rid[32];
	char *s = NULL;

	snprintf(rid, sizeof rid, "req-%d", i);
	/* sizes vary, so offsets are not a multiple of anything */
	ev = json_pack("{s:s, s:s, s:s, s:s, s:{s:i, s:s%}, s:{s:s}}", "actor", "user:test",
		       "action", "test.append", "request_id", rid, "decision",
		       i % 3 ? "allow" : "deny", "details", "i", i, "pad",
		       "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
		       (size_t)(i * 7 % 61), "secrets", "token", rid);
	if (!ev)
		return NULL;
	zt_buf_init(&b, ZT_AUDIT_ENTRY_MAX + 1);
	if (hmac && zt_audit_entry_build(ev, hmac, INT64_C(1767323045000) + i, &b, NULL) == 0 &&
	    (s = malloc(b.len + 1))) {
		memcpy(s, b.p, b.len);
		s[b.len] = '\0';
		*len = b.len;
	}
	json_decref(ev);
	zt_buf_free(&b, 0);
	return s;
}

static char *make_entry(const zt_audit *a, int i, size_t *len)
{
	char *s = make_entry_raw(zt_audit_hmac_key(a), i, len);

	if (!s)
		fail_msg("cannot build entry %d", i);
	return s;
}

/* Appends entries first..first+n-1 one by one; each is durable when append returns. */
static void append_n(zt_audit *a, int first, int n, char **keep)
{
	for (int i = first; i < first + n; i++) {
		uint64_t before = zt_audit_size(a), idx = 12345;
		size_t len;
		char *s = make_entry(a, i, &len);
		zt_err e;

		zt_err_clear(&e);
		if (zt_audit_append(a, s, len, &idx, &e) != 0)
			fail_msg("append %d: %s", i, e.msg);
		assert_true(idx == before);
		assert_true(zt_audit_size(a) == before + 1);
		if (keep)
			keep[i] = s;
		else
			free(s);
	}
}

/* Submits n entries and waits for the last: they share batches. */
static void submit_n(zt_audit *a, int first, int n)
{
	uint64_t idx = 0;
	zt_err e;

	zt_err_clear(&e);
	for (int i = first; i < first + n; i++) {
		char buf[160];
		int len = snprintf(buf, sizeof buf,
				   "{\"action\":\"test.bulk\",\"actor\":\"bulk\",\"request_id\":\"b%d\","
				   "\"time\":\"2026-01-02T03:04:05.000Z\"}",
				   i);

		if (zt_audit_submit(a, buf, (size_t)len, &idx, &e) != 0)
			fail_msg("submit %d: %s", i, e.msg);
	}
	if (zt_audit_wait(a, idx, &e) != 0)
		fail_msg("wait: %s", e.msg);
}

static void expect_entry(zt_audit *a, uint64_t i, const char *want, size_t len)
{
	zt_buf b;
	zt_err e;

	zt_buf_init(&b, ZT_AUDIT_ENTRY_MAX + 16);
	/* read appends */
	assert_int_equal(zt_buf_append(&b, "@", 1, NULL), 0);
	zt_err_clear(&e);
	if (zt_audit_read(a, i, &b, &e) != 0)
		fail_msg("read %llu: %s", (unsigned long long)i, e.msg);
	if (b.len != len + 1 || memcmp(b.p + 1, want, len) != 0)
		fail_msg("entry %llu reads back as %.*s, want %.*s", (unsigned long long)i,
			 (int)(b.len - 1), (const char *)b.p + 1, (int)len, want);
	zt_buf_free(&b, 0);
}

static uint64_t verify_ok(const char *dir, const char *const *old, const size_t *lens, size_t n)
{
	zt_note_key *k = load_verifier(dir);
	zt_audit_report entries;
	zt_err e;

	zt_err_clear(&e);
	if (zt_audit_verify(dir, k, old, lens, n, NULL, NULL, &entries, &e) != 0)
		fail_msg("verify: %s: %s", e.rule, e.msg);
	zt_note_key_free(k);
	return entries.entries;
}

static void verify_fails(const char *dir, const char *const *old, const size_t *lens, size_t n,
			 const char *rule, const char *msg_has)
{
	zt_note_key *k = load_verifier(dir);
	zt_audit_report entries;
	zt_err e;

	zt_err_clear(&e);
	if (zt_audit_verify(dir, k, old, lens, n, NULL, NULL, &entries, &e) == 0)
		fail_msg("verify passes, want rule %s", rule);
	if (strcmp(e.rule, rule) != 0)
		fail_msg("verify: rule \"%s\" (%s), want \"%s\"", e.rule, e.msg, rule);
	if (msg_has && !strstr(e.msg, msg_has))
		fail_msg("verify: message \"%s\" does not name \"%s\"", e.msg, msg_has);
	zt_note_key_free(k);
}

/* ---- a reference tree ---------------------------------------------------------------- */

struct ref {
	zt_merkle_range r;
	uint8_t (*roots)[H]; /* roots[s]: MTH of the first s leaves */
	uint8_t (*leaf)[H];
	uint8_t (*nodes)[H]; /* every complete node, post-order: the tree file */
	size_t n_nodes, cap_nodes;
};

static void ref_emit(void *ctx, unsigned level, uint64_t index, const uint8_t h[H])
{
	struct ref *rf = ctx;

	(void)level;
	(void)index;
	assert_true(rf->n_nodes < rf->cap_nodes);
	memcpy(rf->nodes[rf->n_nodes++], h, H);
}

static void ref_build(struct ref *rf, char *const *entries, const size_t *lens, size_t n)
{
	rf->roots = calloc(n + 1, H);
	rf->leaf = calloc(n + 1, H);
	rf->cap_nodes = 2 * n + 1;
	rf->nodes = calloc(rf->cap_nodes, H);
	rf->n_nodes = 0;
	assert_true(rf->roots && rf->leaf && rf->nodes);
	zt_merkle_range_init(&rf->r);
	zt_merkle_range_root(&rf->r, rf->roots[0]);
	for (size_t i = 0; i < n; i++) {
		zt_merkle_leaf_hash(entries[i], lens[i], rf->leaf[i]);
		zt_merkle_range_push(&rf->r, rf->leaf[i], ref_emit, rf);
		zt_merkle_range_root(&rf->r, rf->roots[i + 1]);
	}
	assert_true(rf->n_nodes == zt_merkle_node_count(n));
}

static void ref_free(struct ref *rf)
{
	free(rf->roots);
	free(rf->leaf);
	free(rf->nodes);
}

/* ---- create ------------------------------------------------------------------------------ */

static void test_create(void **state)
{
	static const char *const bad_origins[] = {"", "audit example", "audit+example", "a\tb"};
	char *dir = tu_mkdtemp(), p[PATH_MAX];
	struct stat st;
	zt_err e;
	zt_audit *a;
	uint8_t root[H], empty[H];

	(void)state;
	for (size_t i = 0; i < sizeof bad_origins / sizeof bad_origins[0]; i++) {
		zt_err_clear(&e);
		assert_true(zt_audit_create(dir, bad_origins[i], &e) < 0);
		assert_string_equal(e.rule, "key-name");
	}
	/* nothing was left behind by the refusals */
	pathf(p, dir, "log.key");
	assert_int_not_equal(stat(p, &st), 0);

	/* a non-empty directory */
	fput(dir, "something", "x", 1);
	zt_err_clear(&e);
	assert_true(zt_audit_create(dir, ORIGIN, &e) < 0);
	assert_string_equal(e.rule, "exists");
	pathf(p, dir, "log.key");
	assert_int_not_equal(stat(p, &st), 0);
	pathf(p, dir, "something");
	assert_int_equal(unlink(p), 0);

	/* a missing directory is made; an empty one is used */
	pathf(p, dir, "sub");
	zt_err_clear(&e);
	if (zt_audit_create(p, ORIGIN, &e) != 0)
		fail_msg("create in a new directory: %s", e.msg);
	zt_err_clear(&e);
	assert_true(zt_audit_create(p, ORIGIN, &e) < 0); /* not twice */
	assert_string_equal(e.rule, "exists");

	static const struct {
		const char *name;
		unsigned mode; /* 0: any */
	} files[] = {{"log.key", 0600}, {"hmac.key", 0600}, {"log.pub", 0},    {"entries", 0},
		     {"index", 0},      {"tree", 0},        {"checkpoints", 0}, {"head", 0}};

	for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
		char f[PATH_MAX];

		pathf(f, p, files[i].name);
		if (stat(f, &st) != 0)
			fail_msg("create made no %s", files[i].name);
		if (files[i].mode && (st.st_mode & 07777) != files[i].mode)
			fail_msg("%s has mode %o, want %o", files[i].name, st.st_mode & 07777,
				 files[i].mode);
		assert_true(S_ISREG(st.st_mode));
	}
	assert_true(fsize(p, "entries") == 0);
	assert_true(fsize(p, "index") == 0);
	assert_true(fsize(p, "tree") == 0);
	assert_true(fsize(p, "checkpoints") == 0);

	/* the verifier key names the origin, and the signer is its private half */
	zt_note_key *v = load_verifier(p), *s = load_signer(p);

	assert_string_equal(zt_note_key_name(v), ORIGIN);
	assert_true(zt_note_key_id(v) == zt_note_key_id(s));
	assert_true(zt_note_key_can_sign(s));
	assert_false(zt_note_key_can_sign(v));
	zt_note_key_free(v);
	zt_note_key_free(s);

	/* hmac.key: 32 bytes in base64 */
	size_t klen;
	char *kt = fget(p, "hmac.key", &klen);
	zt_buf raw;

	while (klen > 0 && (kt[klen - 1] == '\n' || kt[klen - 1] == ' '))
		klen--;
	zt_buf_init(&raw, 64);
	assert_int_equal(zt_base64_decode(kt, klen, 0, &raw, NULL), 0);
	assert_int_equal(raw.len, H);

	/* an empty log opens, both ways */
	a = open_log(p, ZT_AUDIT_READ);
	assert_true(zt_audit_size(a) == 0);
	assert_string_equal(zt_audit_origin(a), ORIGIN);
	assert_non_null(zt_audit_hmac_key(a));
	assert_memory_equal(zt_audit_hmac_key(a), raw.p, H);
	zt_audit_close(a);
	a = open_log(p, ZT_AUDIT_WRITE);
	assert_true(zt_audit_size(a) == 0);
	assert_memory_equal(zt_audit_hmac_key(a), raw.p, H);
	zt_err_clear(&e);
	assert_int_equal(zt_audit_root(a, 0, root, &e), 0);
	zt_merkle_empty_root(empty);
	assert_memory_equal(root, empty, H);
	zt_audit_close(a);
	zt_buf_free(&raw, 1);
	free(kt);
	assert_true(verify_ok(p, NULL, NULL, 0) == 0);
	tu_rmtree(dir);
}

/* ---- append, read, roots and proofs -------------------------------------------------------- */

#define N_SMALL 70

static void test_append_read_prove(void **state)
{
	char *dir = new_log(), *ent[N_SMALL];
	size_t lens[N_SMALL];
	struct ref rf;
	zt_audit *a;
	zt_err e;
	uint8_t out[H], proof[ZT_MERKLE_MAX_PROOF][H];
	size_t n;

	(void)state;
	a = open_log(dir, ZT_AUDIT_WRITE);
	append_n(a, 0, N_SMALL, ent);
	for (int i = 0; i < N_SMALL; i++)
		lens[i] = strlen(ent[i]);
	assert_true(zt_audit_size(a) == N_SMALL);
	ref_build(&rf, ent, lens, N_SMALL);

	for (int pass = 0; pass < 2; pass++) {
		/* every entry byte-exact */
		for (uint64_t i = 0; i < N_SMALL; i++)
			expect_entry(a, i, ent[i], lens[i]);
		/* the root of every prefix, and every leaf */
		for (uint64_t s = 0; s <= N_SMALL; s++) {
			zt_err_clear(&e);
			if (zt_audit_root(a, s, out, &e) != 0)
				fail_msg("root %llu: %s", (unsigned long long)s, e.msg);
			assert_memory_equal(out, rf.roots[s], H);
		}
		for (uint64_t i = 0; i < N_SMALL; i++) {
			assert_int_equal(zt_audit_leaf(a, i, out, &e), 0);
			assert_memory_equal(out, rf.leaf[i], H);
		}
		/* inclusion: every (index, size) */
		for (uint64_t s = 1; s <= N_SMALL; s++)
			for (uint64_t i = 0; i < s; i++) {
				zt_err_clear(&e);
				if (zt_audit_prove(a, i, s, proof, &n, &e) != 0)
					fail_msg("prove %llu in %llu: %s", (unsigned long long)i,
						 (unsigned long long)s, e.msg);
				if (zt_merkle_verify_inclusion(i, s, rf.leaf[i], H,
							       (const uint8_t(*)[H])proof, n,
							       rf.roots[s], H, &e) != 0)
					fail_msg("inclusion proof of %llu in %llu: %s",
						 (unsigned long long)i, (unsigned long long)s, e.msg);
				/* and it proves nothing else */
				if (i + 1 < s)
					assert_int_not_equal(
					    zt_merkle_verify_inclusion(i, s, rf.leaf[i + 1], H,
								       (const uint8_t(*)[H])proof, n,
								       rf.roots[s], H, NULL),
					    0);
			}
		/* consistency: every (size1, size2) */
		for (uint64_t s2 = 1; s2 <= N_SMALL; s2++)
			for (uint64_t s1 = 1; s1 <= s2; s1++) {
				zt_err_clear(&e);
				if (zt_audit_prove_consistency(a, s1, s2, proof, &n, &e) != 0)
					fail_msg("consistency %llu..%llu: %s", (unsigned long long)s1,
						 (unsigned long long)s2, e.msg);
				if (zt_merkle_verify_consistency(s1, s2, rf.roots[s1], H, rf.roots[s2],
								 H, (const uint8_t(*)[H])proof, n,
								 &e) != 0)
					fail_msg("consistency proof %llu..%llu: %s",
						 (unsigned long long)s1, (unsigned long long)s2, e.msg);
				if (s1 < s2 && s1 > 1)
					assert_int_not_equal(
					    zt_merkle_verify_consistency(s1, s2, rf.roots[s1 - 1], H,
									 rf.roots[s2], H,
									 (const uint8_t(*)[H])proof, n,
									 NULL),
					    0);
			}
		/* out of range */
		zt_buf b;

		zt_buf_init(&b, 1 << 20);
		zt_err_clear(&e);
		assert_true(zt_audit_read(a, N_SMALL, &b, &e) < 0);
		assert_int_equal(b.len, 0);
		assert_string_equal(e.rule, "proof-range");
		assert_true(zt_audit_read(a, UINT64_MAX, &b, &e) < 0);
		assert_int_equal(b.len, 0);
		zt_buf_free(&b, 0);
		zt_err_clear(&e);
		assert_true(zt_audit_root(a, N_SMALL + 1, out, &e) < 0);
		assert_string_equal(e.rule, "proof-range");
		assert_true(zt_audit_root(a, UINT64_MAX, out, &e) < 0);
		zt_err_clear(&e);
		assert_true(zt_audit_leaf(a, N_SMALL, out, &e) < 0);
		assert_string_equal(e.rule, "proof-range");
		n = 99;
		zt_err_clear(&e);
		assert_true(zt_audit_prove(a, N_SMALL, N_SMALL, proof, &n, &e) < 0);
		assert_string_equal(e.rule, "proof-range");
		assert_int_equal(n, 0);
		assert_true(zt_audit_prove(a, 5, 5, proof, &n, &e) < 0);
		assert_true(zt_audit_prove(a, 0, N_SMALL + 1, proof, &n, &e) < 0);
		assert_true(zt_audit_prove(a, 0, 0, proof, &n, &e) < 0);
		assert_true(zt_audit_prove(a, UINT64_MAX, UINT64_MAX, proof, &n, &e) < 0);
		n = 99;
		zt_err_clear(&e);
		assert_true(zt_audit_prove_consistency(a, 1, N_SMALL + 1, proof, &n, &e) < 0);
		assert_string_equal(e.rule, "proof-range");
		assert_int_equal(n, 0);
		assert_true(zt_audit_prove_consistency(a, 0, N_SMALL, proof, &n, &e) < 0);
		assert_true(zt_audit_prove_consistency(a, 10, 9, proof, &n, &e) < 0);
		assert_true(zt_audit_prove_consistency(a, N_SMALL + 1, N_SMALL + 1, proof, &n, &e) <
			    0);

		/* the same from a reader after close */
		if (pass == 0) {
			zt_audit_close(a);
			a = open_log(dir, ZT_AUDIT_READ);
			assert_true(zt_audit_size(a) == N_SMALL);
		}
	}
	zt_audit_close(a);

	/* the files are what docs/audit.md says */
	size_t flen;
	char *f = fget(dir, "entries", &flen);
	uint8_t *idx = (uint8_t *)fget(dir, "index", &n);
	size_t off = 0;

	assert_int_equal(n, 8 * N_SMALL);
	for (int i = 0; i < N_SMALL; i++) {
		assert_true(be64(idx + 8 * i) == off);
		assert_memory_equal(f + off, ent[i], lens[i]);
		assert_int_equal(f[off + lens[i]], '\n');
		off += lens[i] + 1;
	}
	assert_int_equal(off, flen);
	free(f);
	free(idx);
	f = fget(dir, "tree", &flen);
	assert_int_equal(flen, zt_merkle_node_count(N_SMALL) * H);
	assert_memory_equal(f, rf.nodes, flen);
	free(f);

	struct head h;

	read_head(dir, &h);
	assert_true(h.size == N_SMALL);
	assert_true(h.bytes == off);
	assert_true(h.synced == N_SMALL); /* a clean close leaves index and tree durable */
	assert_true(h.synced_bytes == off);
	assert_memory_equal(h.root, rf.roots[N_SMALL], H);

	assert_true(verify_ok(dir, NULL, NULL, 0) == N_SMALL);
	for (int i = 0; i < N_SMALL; i++)
		free(ent[i]);
	ref_free(&rf);
	tu_rmtree(dir);
}

/* ---- one writer, many readers ----------------------------------------------------------------- */

static void test_lock_and_readers(void **state)
{
	char *dir = new_log(), *ent[20];
	zt_audit *w, *r, *r2;
	zt_err e;
	uint8_t wr[H], rr[H];
	uint64_t idx;
	zt_buf b;

	(void)state;
	w = open_log(dir, ZT_AUDIT_WRITE);
	append_n(w, 0, 5, ent);
	/* a second writer, while the first is open */
	open_fails(dir, ZT_AUDIT_WRITE, "locked");
	zt_err_clear(&e);
	assert_null(zt_audit_open(dir, ZT_AUDIT_WRITE, &e));
	assert_int_equal(e.code, ZT_ESTATE);

	/* readers open beside it */
	r = open_log(dir, ZT_AUDIT_READ);
	r2 = open_log(dir, ZT_AUDIT_READ);
	assert_true(zt_audit_size(r) == 5);
	append_n(w, 5, 10, ent);
	assert_true(zt_audit_size(w) == 15);
	/* a reader sees what was durable as of open ... */
	assert_true(zt_audit_size(r) == 5);
	zt_buf_init(&b, 1 << 20);
	zt_err_clear(&e);
	assert_true(zt_audit_read(r, 5, &b, &e) < 0);
	zt_buf_free(&b, 0);
	/* ... and as of refresh */
	assert_int_equal(zt_audit_refresh(r, &e), 0);
	assert_true(zt_audit_size(r) == 15);
	for (int i = 0; i < 15; i++)
		expect_entry(r, (uint64_t)i, ent[i], strlen(ent[i]));
	assert_int_equal(zt_audit_root(w, 15, wr, &e), 0);
	assert_int_equal(zt_audit_root(r, 15, rr, &e), 0);
	assert_memory_equal(wr, rr, H);
	/* refresh on a writer is a no-op */
	assert_int_equal(zt_audit_refresh(w, &e), 0);

	/* readers neither append nor sign */
	zt_err_clear(&e);
	idx = 7;
	assert_true(zt_audit_submit(r, ent[0], strlen(ent[0]), &idx, &e) < 0);
	assert_int_equal(e.code, ZT_ESTATE);
	assert_true(idx == 0);
	zt_err_clear(&e);
	assert_true(zt_audit_append(r, ent[0], strlen(ent[0]), &idx, &e) < 0);
	zt_buf_init(&b, 1 << 20);
	zt_err_clear(&e);
	assert_true(zt_audit_checkpoint(r, &b, &e) < 0);
	assert_int_equal(e.code, ZT_ESTATE);
	assert_int_equal(b.len, 0);
	zt_buf_free(&b, 0);
	assert_true(zt_audit_size(w) == 15);

	/* the second reader catches up across several commits at once */
	append_n(w, 15, 5, ent);
	assert_int_equal(zt_audit_refresh(r2, &e), 0);
	assert_true(zt_audit_size(r2) == 20);
	expect_entry(r2, 19, ent[19], strlen(ent[19]));

	/* once the writer is gone another may open */
	zt_audit_close(w);
	w = open_log(dir, ZT_AUDIT_WRITE);
	assert_true(zt_audit_size(w) == 20);
	open_fails(dir, ZT_AUDIT_WRITE, "locked");
	zt_audit_close(w);
	zt_audit_close(r);
	zt_audit_close(r2);
	for (int i = 0; i < 20; i++)
		free(ent[i]);
	tu_rmtree(dir);
}

/* ---- concurrency ------------------------------------------------------------------------------ */

#define THREADS 8
#define PER_THREAD 2000
#define WINDOW 32

struct worker {
	zt_audit *a;
	int t;
	int window; /* 0: zt_audit_append; else submit `window` entries, then wait for each */
	uint64_t idx[PER_THREAD];
	int failed;
	char err[ZT_ERR_MSG_MAX];
};

static size_t thread_entry(int t, int i, char *buf, size_t n)
{
	return (size_t)snprintf(buf, n,
				"{\"action\":\"test.thread\",\"actor\":\"thread-%d\",\"request_id\":"
				"\"t%d-%d\",\"time\":\"2026-01-02T03:04:05.000Z\"}",
				t, t, i);
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	char buf[256];
	zt_err e;

	for (int i = 0; i < PER_THREAD && !w->failed;) {
		int end = w->window ? i + w->window : i + 1;

		if (end > PER_THREAD)
			end = PER_THREAD;
		for (int j = i; j < end; j++) {
			size_t n = thread_entry(w->t, j, buf, sizeof buf);
			int r = w->window ? zt_audit_submit(w->a, buf, n, &w->idx[j], &e)
					  : zt_audit_append(w->a, buf, n, &w->idx[j], &e);

			if (r != 0) {
				w->failed = 1;
				snprintf(w->err, sizeof w->err, "%s", e.msg);
				return NULL;
			}
		}
		for (int j = i; w->window && j < end; j++)
			if (zt_audit_wait(w->a, w->idx[j], &e) != 0) {
				w->failed = 1;
				snprintf(w->err, sizeof w->err, "%s", e.msg);
				return NULL;
			}
		i = end;
	}
	return NULL;
}

static void run_concurrent(int window)
{
	char *dir = new_log();
	struct worker *w = calloc(THREADS, sizeof *w);
	pthread_t th[THREADS];
	const uint64_t total = (uint64_t)THREADS * PER_THREAD;
	uint8_t *seen = calloc(total, 1);
	zt_audit *a;
	char buf[256];

	assert_true(w && seen);
	a = open_log(dir, ZT_AUDIT_WRITE);
	for (int t = 0; t < THREADS; t++) {
		w[t].a = a;
		w[t].t = t;
		w[t].window = window;
		assert_int_equal(pthread_create(&th[t], NULL, worker_main, &w[t]), 0);
	}
	for (int t = 0; t < THREADS; t++)
		pthread_join(th[t], NULL);
	for (int t = 0; t < THREADS; t++)
		if (w[t].failed)
			fail_msg("thread %d: %s", t, w[t].err);
	assert_true(zt_audit_size(a) == total);
	/* every index once, and each holds what its thread wrote */
	for (int t = 0; t < THREADS; t++) {
		uint64_t prev = 0;

		for (int i = 0; i < PER_THREAD; i++) {
			uint64_t x = w[t].idx[i];
			size_t n = thread_entry(t, i, buf, sizeof buf);

			if (x >= total || seen[x])
				fail_msg("index %llu (thread %d entry %d) out of range or given twice",
					 (unsigned long long)x, t, i);
			seen[x] = 1;
			/* one thread's entries are in the order it submitted them */
			assert_true(i == 0 || x > prev);
			prev = x;
			expect_entry(a, x, buf, n);
		}
	}
	zt_audit_close(a);
	assert_true(verify_ok(dir, NULL, NULL, 0) == total);
	/* and after a reopen */
	a = open_log(dir, ZT_AUDIT_READ);
	assert_true(zt_audit_size(a) == total);
	thread_entry(THREADS - 1, PER_THREAD - 1, buf, sizeof buf);
	expect_entry(a, w[THREADS - 1].idx[PER_THREAD - 1], buf, strlen(buf));
	zt_audit_close(a);
	free(seen);
	free(w);
	tu_rmtree(dir);
}

static void test_concurrent_append(void **state)
{
	(void)state;
	run_concurrent(0);
}

static void test_concurrent_submit_window(void **state)
{
	(void)state;
	run_concurrent(WINDOW);
}

/* ---- what submit refuses ----------------------------------------------------------------------- */

static void submit_bad(zt_audit *a, const char *p, size_t len, const char *what)
{
	uint64_t idx = 77, before = zt_audit_size(a);
	zt_err e;

	zt_err_clear(&e);
	if (zt_audit_submit(a, p, len, &idx, &e) == 0)
		fail_msg("submit accepted %s", what);
	assert_string_equal(e.rule, "entry-schema");
	assert_true(idx == 0);
	assert_true(zt_audit_size(a) == before);
}

static void test_submit_refusals(void **state)
{
	char *dir = new_log(), *big;
	zt_audit *a;
	uint64_t idx;
	zt_err e;

	(void)state;
	a = open_log(dir, ZT_AUDIT_WRITE);
	submit_bad(a, "{\"a\":1}\n{\"b\":2}", 15, "two lines");
	submit_bad(a, "{\"a\":1}\n", 8, "a final newline");
	submit_bad(a, "{\"a\":\n1}", 8, "a newline inside");
	submit_bad(a, "", 0, "an empty entry");
	submit_bad(a, "{", 1, "a lone brace");
	submit_bad(a, "x{\"a\":1}", 8, "not starting with {");
	submit_bad(a, " {\"a\":1}", 8, "a leading space");
	submit_bad(a, "[1]", 3, "an array");
	submit_bad(a, "{\"a\":1}x", 8, "not ending with }");
	submit_bad(a, "{\"a\":1} ", 8, "a trailing space");
	submit_bad(a, "{\"a\":1}\r", 8, "a trailing CR");
	/* over ZT_AUDIT_ENTRY_MAX; exactly that much is fine */
	big = malloc(ZT_AUDIT_ENTRY_MAX + 2);
	assert_non_null(big);
	memset(big, 'x', ZT_AUDIT_ENTRY_MAX + 2);
	big[0] = '{';
	big[ZT_AUDIT_ENTRY_MAX] = '}';
	submit_bad(a, big, ZT_AUDIT_ENTRY_MAX + 1, "an entry of 64 KiB + 1");
	memcpy(big, "{\"a\":\"", 6);
	big[ZT_AUDIT_ENTRY_MAX - 2] = '"';
	big[ZT_AUDIT_ENTRY_MAX - 1] = '}';
	zt_err_clear(&e);
	if (zt_audit_append(a, big, ZT_AUDIT_ENTRY_MAX, &idx, &e) != 0)
		fail_msg("an entry of exactly 64 KiB: %s", e.msg);
	assert_true(idx == 0);
	expect_entry(a, 0, big, ZT_AUDIT_ENTRY_MAX);
	free(big);
	/* the log goes on */
	append_n(a, 1, 2, NULL);
	assert_true(zt_audit_size(a) == 3);
	zt_audit_close(a);

	/* a reader refuses even a good entry */
	a = open_log(dir, ZT_AUDIT_READ);
	zt_err_clear(&e);
	idx = 5;
	assert_true(zt_audit_submit(a, "{\"a\":1}", 7, &idx, &e) < 0);
	assert_int_equal(e.code, ZT_ESTATE);
	assert_true(idx == 0);
	zt_audit_close(a);
	tu_rmtree(dir);
}

/* ---- checkpoints ---------------------------------------------------------------------------------- */

/* Splits the checkpoints file into its records (4-byte big-endian length, note). */
static size_t cp_records(const uint8_t *p, size_t len, size_t *off, size_t *n, size_t max)
{
	size_t pos = 0, k = 0;

	while (pos < len) {
		assert_true(pos + 4 <= len);
		size_t l = (size_t)p[pos] << 24 | (size_t)p[pos + 1] << 16 | (size_t)p[pos + 2] << 8 |
			   p[pos + 3];

		assert_true(l > 0 && pos + 4 + l <= len);
		assert_true(k < max);
		off[k] = pos + 4;
		n[k] = l;
		k++;
		pos += 4 + l;
	}
	assert_int_equal(pos, len);
	return k;
}

struct cp_thread {
	zt_audit *a;
	zt_buf out;
	int r;
	char err[ZT_ERR_MSG_MAX];
};

static void *cp_main(void *arg)
{
	struct cp_thread *c = arg;
	zt_err e;

	zt_err_clear(&e);
	c->r = zt_audit_checkpoint(c->a, &c->out, &e);
	snprintf(c->err, sizeof c->err, "%s", e.msg);
	return NULL;
}

static void expect_checkpoint(const zt_note_key *k, const char *note, size_t len, zt_audit *a,
			      uint64_t size)
{
	zt_checkpoint c;
	zt_err e;
	uint8_t root[H];

	zt_err_clear(&e);
	if (zt_checkpoint_open(k, note, len, &c, &e) != 0)
		fail_msg("checkpoint does not open: %s: %.*s", e.msg, (int)len, note);
	assert_string_equal(c.origin, ORIGIN);
	assert_true(c.size == size);
	assert_int_equal(zt_audit_root(a, size, root, &e), 0);
	assert_memory_equal(c.root, root, H);
}

static void test_checkpoints(void **state)
{
	char *dir = new_log(), *file;
	zt_note_key *k = load_verifier(dir);
	zt_audit *a;
	zt_buf out;
	zt_err e;
	size_t len, off[8], n[8], nrec;
	struct cp_thread ct[2];
	pthread_t th[2];

	(void)state;
	a = open_log(dir, ZT_AUDIT_WRITE);
	append_n(a, 0, 10, NULL);
	zt_buf_init(&out, ZT_NOTE_MAX);
	assert_int_equal(zt_buf_append(&out, "@", 1, NULL), 0);
	zt_err_clear(&e);
	if (zt_audit_checkpoint(a, &out, &e) != 0)
		fail_msg("checkpoint: %s", e.msg);
	/* appended to out */
	assert_int_equal(out.p[0], '@');
	expect_checkpoint(k, (const char *)out.p + 1, out.len - 1, a, 10);
	/* DIR/checkpoint is the latest, as text */
	file = fget(dir, "checkpoint", &len);
	assert_int_equal(len, out.len - 1);
	assert_memory_equal(file, out.p + 1, len);
	free(file);
	/* the checkpoints file holds it */
	file = fget(dir, "checkpoints", &len);
	nrec = cp_records((const uint8_t *)file, len, off, n, 8);
	assert_int_equal(nrec, 1);
	assert_int_equal(n[0], out.len - 1);
	assert_memory_equal(file + off[0], out.p + 1, n[0]);
	free(file);

	/* two at once, from two threads: both land */
	append_n(a, 10, 5, NULL);
	for (int i = 0; i < 2; i++) {
		ct[i].a = a;
		zt_buf_init(&ct[i].out, ZT_NOTE_MAX);
		assert_int_equal(pthread_create(&th[i], NULL, cp_main, &ct[i]), 0);
	}
	for (int i = 0; i < 2; i++)
		pthread_join(th[i], NULL);
	for (int i = 0; i < 2; i++) {
		if (ct[i].r != 0)
			fail_msg("concurrent checkpoint %d: %s", i, ct[i].err);
		expect_checkpoint(k, (const char *)ct[i].out.p, ct[i].out.len, a, 15);
	}
	file = fget(dir, "checkpoints", &len);
	nrec = cp_records((const uint8_t *)file, len, off, n, 8);
	assert_int_equal(nrec, 3);
	for (size_t i = 0; i < nrec; i++)
		expect_checkpoint(k, file + off[i], n[i], a, i == 0 ? 10 : 15);
	/* the two records are the two outputs, in one order or the other */
	for (int i = 0; i < 2; i++) {
		int found = 0;

		for (size_t j = 1; j < 3; j++)
			found |= n[j] == ct[i].out.len &&
				 memcmp(file + off[j], ct[i].out.p, n[j]) == 0;
		assert_true(found);
	}
	free(file);
	/* and DIR/checkpoint is the one written last: the last record */
	{
		char *latest = fget(dir, "checkpoint", &len);
		char *all = fget(dir, "checkpoints", &nrec);

		nrec = cp_records((const uint8_t *)all, nrec, off, n, 8);
		assert_int_equal(len, n[2]);
		assert_memory_equal(latest, all + off[2], len);
		free(latest);
		free(all);
	}
	for (int i = 0; i < 2; i++)
		zt_buf_free(&ct[i].out, 0);
	zt_audit_close(a);
	/* verify checks every stored one, and takes them as old checkpoints */
	{
		const char *old[1] = {(const char *)out.p + 1};
		size_t old_len[1] = {out.len - 1};

		assert_true(verify_ok(dir, old, old_len, 1) == 15);
	}
	zt_buf_free(&out, 0);
	zt_note_key_free(k);
	tu_rmtree(dir);
}

/*
 * zt_audit_checkpoint on an empty log: either it refuses, or what it
 * signs and stores must not make the log fail verification (verify.c
 * refuses any checkpoint of size 0: "zt never signs one").
 */
static void test_checkpoint_empty_log(void **state)
{
	char *dir = new_log();
	zt_audit *a;
	zt_buf out;
	zt_err e;
	int r;

	(void)state;
	a = open_log(dir, ZT_AUDIT_WRITE);
	zt_buf_init(&out, ZT_NOTE_MAX);
	zt_err_clear(&e);
	r = zt_audit_checkpoint(a, &out, &e);
	zt_audit_close(a);
	if (r == 0)
		verify_ok(dir, NULL, NULL, 0);
	else
		assert_int_equal(out.len, 0);
	zt_buf_free(&out, 0);
	tu_rmtree(dir);
}

/* ---- crashes and recovery -------------------------------------------------------------------------- */

static void test_recover_torn_tails(void **state)
{
	char *dir = new_log(), *ent[20];
	zt_audit *a;
	zt_buf out;
	zt_err e;
	uint64_t s_ent, s_idx, s_tree, s_cp;
	uint8_t len4[4] = {0, 0, 0x01, 0x00};

	(void)state;
	a = open_log(dir, ZT_AUDIT_WRITE);
	append_n(a, 0, 20, ent);
	zt_buf_init(&out, ZT_NOTE_MAX);
	assert_int_equal(zt_audit_checkpoint(a, &out, &e), 0);
	zt_audit_close(a);
	s_ent = fsize(dir, "entries");
	s_idx = fsize(dir, "index");
	s_tree = fsize(dir, "tree");
	s_cp = fsize(dir, "checkpoints");
	assert_true(s_idx == 8 * 20);
	assert_true(s_tree == H * zt_merkle_node_count(20));

	/* what a crash mid-batch leaves: parts of the next batch, never in the head */
	static const char torn[] = "{\"action\":\"torn\",\"actor\":\"x\"}\n{\"act";

	fappend(dir, "entries", torn, sizeof torn - 1);
	fappend(dir, "index", "\0\0\0\0\0\0\x10", 7);
	fappend(dir, "tree", "garbagegarbagegarbagegarbagegarbagegarbage", 40);
	fappend(dir, "checkpoints", len4, 4);
	fappend(dir, "checkpoints", "audit.test", 10);

	/* readers take the head's word and cut nothing */
	a = open_log(dir, ZT_AUDIT_READ);
	assert_true(zt_audit_size(a) == 20);
	expect_entry(a, 19, ent[19], strlen(ent[19]));
	zt_audit_close(a);
	assert_true(fsize(dir, "entries") == s_ent + sizeof torn - 1);

	/* the writer cuts the tails */
	a = open_log(dir, ZT_AUDIT_WRITE);
	assert_true(zt_audit_size(a) == 20);
	assert_true(fsize(dir, "entries") == s_ent);
	assert_true(fsize(dir, "index") == s_idx);
	assert_true(fsize(dir, "tree") == s_tree);
	assert_true(fsize(dir, "checkpoints") == s_cp);
	for (int i = 0; i < 20; i++)
		expect_entry(a, (uint64_t)i, ent[i], strlen(ent[i]));
	/* and goes on */
	append_n(a, 20, 3, NULL);
	out.len = 0;
	assert_int_equal(zt_audit_checkpoint(a, &out, &e), 0);
	zt_audit_close(a);
	assert_true(fsize(dir, "index") == 8 * 23);
	assert_true(fsize(dir, "tree") == H * zt_merkle_node_count(23));
	assert_true(verify_ok(dir, NULL, NULL, 0) == 23);

	/* a torn length prefix alone (fewer than 4 bytes) is cut too */
	s_cp = fsize(dir, "checkpoints");
	fappend(dir, "checkpoints", "\0\0", 2);
	a = open_log(dir, ZT_AUDIT_WRITE);
	zt_audit_close(a);
	assert_true(fsize(dir, "checkpoints") == s_cp);
	assert_true(verify_ok(dir, NULL, NULL, 0) == 23);

	zt_buf_free(&out, 0);
	for (int i = 0; i < 20; i++)
		free(ent[i]);
	tu_rmtree(dir);
}

/*
 * A writer that dies between syncs of index and tree: a child process
 * opens the log, appends one entry (the first batch always makes index and
 * tree durable), then more within the second, and exits without closing.
 */
#define CRASH_FIRST 1
#define CRASH_MORE 6

static void test_recover_lost_index_tree(void **state)
{
	char *dir = new_log(), *ent[CRASH_FIRST + CRASH_MORE];
	size_t lens[CRASH_FIRST + CRASH_MORE];
	const int total = CRASH_FIRST + CRASH_MORE;
	struct head h;
	struct ref rf;
	zt_audit *a;
	pid_t pid;
	int status;

	(void)state;
	fflush(NULL);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		zt_audit *c = zt_audit_open(dir, ZT_AUDIT_WRITE, NULL);

		if (!c)
			_exit(2);
		for (int i = 0; i < total; i++) {
			size_t len;
			uint64_t idx;
			char *s = make_entry_raw(zt_audit_hmac_key(c), i, &len);

			if (!s || zt_audit_append(c, s, len, &idx, NULL) != 0 || idx != (uint64_t)i)
				_exit(3);
			free(s);
		}
		_exit(0); /* no close: the commit thread never makes index and tree durable */
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);

	read_head(dir, &h);
	assert_true(h.size == (uint64_t)total);
	assert_true(h.bytes == fsize(dir, "entries"));
	if (h.synced >= h.size)
		fail_msg("the head says index and tree are durable through %llu of %llu: the "
			 "child's appends after the first were not within a second?",
			 (unsigned long long)h.synced, (unsigned long long)h.size);
	assert_true(h.synced >= CRASH_FIRST);
	/* written, just not made durable */
	assert_true(fsize(dir, "index") == 8 * h.size);
	assert_true(fsize(dir, "tree") == H * zt_merkle_node_count(h.size));

	/* the reference: the same entries the child built */
	a = open_log(dir, ZT_AUDIT_READ);
	for (int i = 0; i < total; i++) {
		ent[i] = make_entry(a, i, &lens[i]);
		expect_entry(a, (uint64_t)i, ent[i], lens[i]);
	}
	zt_audit_close(a);
	ref_build(&rf, ent, lens, (size_t)total);
	assert_memory_equal(h.root, rf.roots[total], H);
	/* verify only trusts index and tree as far as the head says they are durable */
	assert_true(verify_ok(dir, NULL, NULL, 0) == (uint64_t)total);

	/* lost more than the head allows: damage, and nothing is touched */
	uint64_t s_ent = fsize(dir, "entries");
	size_t ilen;
	char *idx_saved = fget(dir, "index", &ilen);

	ftrunc(dir, "index", h.synced * 8 - 1);
	open_fails(dir, ZT_AUDIT_READ, "damaged");
	open_fails(dir, ZT_AUDIT_WRITE, "damaged");
	assert_true(fsize(dir, "entries") == s_ent);
	assert_true(fsize(dir, "index") == h.synced * 8 - 1);
	fput(dir, "index", idx_saved, ilen);
	free(idx_saved);

	/* a real loss: index and tree past `synced` never reached the disk */
	ftrunc(dir, "index", h.synced * 8);
	ftrunc(dir, "tree", H * zt_merkle_node_count(h.synced));
	/* and a torn entry past the head */
	fappend(dir, "entries", "{\"action\":\"lost", 15);
	/* a reader cannot fix that */
	open_fails(dir, ZT_AUDIT_READ, "recover");
	/* a writer rebuilds them */
	a = open_log(dir, ZT_AUDIT_WRITE);
	assert_true(zt_audit_size(a) == (uint64_t)total);
	assert_true(fsize(dir, "entries") == s_ent);
	assert_true(fsize(dir, "index") == 8 * (uint64_t)total);
	assert_true(fsize(dir, "tree") == H * zt_merkle_node_count((uint64_t)total));
	for (int i = 0; i < total; i++)
		expect_entry(a, (uint64_t)i, ent[i], lens[i]);
	{
		uint8_t root[H], proof[ZT_MERKLE_MAX_PROOF][H];
		size_t n;
		zt_err e;

		assert_int_equal(zt_audit_root(a, (uint64_t)total, root, &e), 0);
		assert_memory_equal(root, rf.roots[total], H);
		for (int i = 0; i < total; i++) {
			assert_int_equal(zt_audit_prove(a, (uint64_t)i, (uint64_t)total, proof, &n, &e),
					 0);
			assert_int_equal(zt_merkle_verify_inclusion((uint64_t)i, (uint64_t)total,
								    rf.leaf[i], H,
								    (const uint8_t(*)[H])proof, n,
								    rf.roots[total], H, &e),
					 0);
		}
	}
	/* the rebuilt head says so at once, before any close */
	read_head(dir, &h);
	assert_true(h.synced == h.size);
	zt_audit_close(a);
	{
		size_t len;
		char *tree = fget(dir, "tree", &len);

		assert_memory_equal(tree, rf.nodes, len);
		free(tree);
	}
	assert_true(verify_ok(dir, NULL, NULL, 0) == (uint64_t)total);
	a = open_log(dir, ZT_AUDIT_READ);
	zt_audit_close(a);

	for (int i = 0; i < total; i++)
		free(ent[i]);
	ref_free(&rf);
	tu_rmtree(dir);
}

static void test_damaged_short_files(void **state)
{
	static const struct {
		const char *name;
		uint64_t cut;
	} cases[] = {{"entries", 1}, {"entries", 200}, {"index", 1}, {"index", 8}, {"tree", 1},
		     {"tree", H}};
	char *dir = new_log();
	zt_audit *a;

	(void)state;
	a = open_log(dir, ZT_AUDIT_WRITE);
	append_n(a, 0, 12, NULL);
	zt_audit_close(a);
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		size_t len;
		char *saved = fget(dir, cases[i].name, &len);
		uint64_t s_ent = fsize(dir, "entries");

		ftrunc(dir, cases[i].name, len - cases[i].cut);
		open_fails(dir, ZT_AUDIT_READ, "damaged");
		open_fails(dir, ZT_AUDIT_WRITE, "damaged");
		/* the writer did not cut anything on its way out */
		assert_true(fsize(dir, cases[i].name) == len - cases[i].cut);
		if (strcmp(cases[i].name, "entries") != 0)
			assert_true(fsize(dir, "entries") == s_ent);
		verify_fails(dir, NULL, NULL, 0, "damaged", NULL);
		fput(dir, cases[i].name, saved, len);
		free(saved);
		a = open_log(dir, ZT_AUDIT_WRITE);
		assert_true(zt_audit_size(a) == 12);
		zt_audit_close(a);
	}
	verify_ok(dir, NULL, NULL, 0);
	tu_rmtree(dir);
}

static void test_damaged_head(void **state)
{
	char *dir = new_log();
	uint8_t zero[256] = {0};
	zt_audit *a;
	size_t len;
	char *saved;
	uint64_t s_ent;

	(void)state;
	a = open_log(dir, ZT_AUDIT_WRITE);
	append_n(a, 0, 5, NULL);
	zt_audit_close(a);
	saved = fget(dir, "head", &len);
	assert_int_equal(len, 256);
	s_ent = fsize(dir, "entries");

	/* both slots zeroed */
	fput(dir, "head", zero, sizeof zero);
	open_fails(dir, ZT_AUDIT_READ, "damaged");
	open_fails(dir, ZT_AUDIT_WRITE, "damaged");
	verify_fails(dir, NULL, NULL, 0, "damaged", NULL);
	assert_true(fsize(dir, "entries") == s_ent);
	/* an empty head */
	fput(dir, "head", "", 0);
	open_fails(dir, ZT_AUDIT_READ, "damaged");
	open_fails(dir, ZT_AUDIT_WRITE, "damaged");
	/* one bit flipped in each slot */
	memcpy(zero, saved, 256);
	zero[20] ^= 1;
	zero[128 + 20] ^= 1;
	fput(dir, "head", zero, sizeof zero);
	open_fails(dir, ZT_AUDIT_WRITE, "damaged");
	assert_true(fsize(dir, "entries") == s_ent);

	fput(dir, "head", saved, len);
	a = open_log(dir, ZT_AUDIT_WRITE);
	assert_true(zt_audit_size(a) == 5);
	zt_audit_close(a);
	free(saved);
	verify_ok(dir, NULL, NULL, 0);
	tu_rmtree(dir);
}

/*
 * A torn head write: the slot being written is garbage, the other holds
 * the state before. The log goes back to that state (the last batch was
 * never acknowledged) and stays valid.
 */
static void test_recover_torn_head(void **state)
{
	char *dir = new_log(), *ent[13];
	struct head h, older;
	uint8_t *slots;
	zt_audit *a;
	size_t len;
	int newer;

	(void)state;
	a = open_log(dir, ZT_AUDIT_WRITE);
	append_n(a, 0, 12, ent);
	zt_audit_close(a);
	/* one more batch, in a head slot of its own */
	a = open_log(dir, ZT_AUDIT_WRITE);
	append_n(a, 12, 1, ent);
	zt_audit_close(a);
	read_head(dir, &h);
	assert_true(h.size == 13);
	slots = (uint8_t *)fget(dir, "head", &len);
	assert_int_equal(len, 256);
	newer = slot_decode(slots, &older) == 0 && older.seq == h.seq ? 0 : 1;
	assert_int_equal(slot_decode(slots + 128 * (1 - newer), &older), 0);
	assert_true(older.seq + 1 == h.seq);
	assert_true(older.size == 12);
	/* the newer slot torn half-way */
	memset(slots + 128 * newer + 64, 0xee, 64);
	fput(dir, "head", slots, len);
	free(slots);

	/* readers see the older state too */
	a = open_log(dir, ZT_AUDIT_READ);
	assert_true(zt_audit_size(a) == 12);
	zt_audit_close(a);
	a = open_log(dir, ZT_AUDIT_WRITE);
	assert_true(zt_audit_size(a) == 12);
	assert_true(fsize(dir, "entries") == older.bytes);
	assert_true(fsize(dir, "index") == 8 * 12);
	assert_true(fsize(dir, "tree") == H * zt_merkle_node_count(12));
	for (uint64_t i = 0; i < 12; i++)
		expect_entry(a, i, ent[i], strlen(ent[i]));
	/* and goes on from there */
	append_n(a, 12, 2, NULL);
	zt_audit_close(a);
	assert_true(verify_ok(dir, NULL, NULL, 0) == 14);
	for (int i = 0; i < 13; i++)
		free(ent[i]);
	tu_rmtree(dir);
}

/*
 * docs/audit.md: a head older than the last signed checkpoint is refused
 * ("damaged"): it was put back by someone, and cutting the log to it would
 * destroy signed entries. So nothing may be cut.
 */
static void test_damaged_old_head_below_checkpoint(void **state)
{
	char *dir = new_log(), *old_head;
	zt_audit *a, *r;
	zt_buf out;
	zt_err e;
	size_t len;
	uint64_t s_ent, s_idx, s_tree;

	(void)state;
	a = open_log(dir, ZT_AUDIT_WRITE);
	append_n(a, 0, 4, NULL);
	zt_audit_close(a);
	old_head = fget(dir, "head", &len);

	a = open_log(dir, ZT_AUDIT_WRITE);
	append_n(a, 4, 6, NULL);
	zt_buf_init(&out, ZT_NOTE_MAX);
	zt_err_clear(&e);
	assert_int_equal(zt_audit_checkpoint(a, &out, &e), 0);
	zt_buf_free(&out, 0);
	zt_audit_close(a);
	s_ent = fsize(dir, "entries");
	s_idx = fsize(dir, "index");
	s_tree = fsize(dir, "tree");

	/* the old head put back, under a reader's feet */
	r = open_log(dir, ZT_AUDIT_READ);
	assert_true(zt_audit_size(r) == 10);
	fput(dir, "head", old_head, len);
	free(old_head);
	zt_err_clear(&e);
	assert_true(zt_audit_refresh(r, &e) < 0);
	assert_string_equal(e.rule, "damaged");
	assert_true(zt_audit_size(r) == 10);
	zt_audit_close(r);
	/* verify sees a checkpoint past the head */
	verify_fails(dir, NULL, NULL, 0, "truncated", "stored checkpoint 1");
	open_fails(dir, ZT_AUDIT_WRITE, "damaged");
	/* and it stays refused */
	open_fails(dir, ZT_AUDIT_WRITE, "damaged");
	uint64_t ent_now = fsize(dir, "entries"), idx_now = fsize(dir, "index"),
		 tree_now = fsize(dir, "tree");

	tu_rmtree(dir);
	if (ent_now != s_ent)
		fail_msg("a writer refused the old head but first cut entries from %llu to %llu "
			 "bytes: the signed entries are gone",
			 (unsigned long long)s_ent, (unsigned long long)ent_now);
	assert_true(idx_now == s_idx);
	assert_true(tree_now == s_tree);
}

/* ---- verification ------------------------------------------------------------------------------------ */

#define N_VERIFY 40

struct progress {
	int calls;
	uint64_t first_done, last_done, last_total, prev;
	int backwards;
};

static void on_progress(void *ctx, uint64_t done, uint64_t total)
{
	struct progress *p = ctx;

	if (p->calls == 0)
		p->first_done = done;
	if (done < p->prev || done > total)
		p->backwards = 1;
	p->prev = done;
	p->calls++;
	p->last_done = done;
	p->last_total = total;
}

/* A checkpoint note for (size, root), signed with the log's own key. */
static char *sign_checkpoint(const char *dir, uint64_t size, const uint8_t root[H], size_t *len)
{
	zt_note_key *s = load_signer(dir);
	zt_checkpoint c;
	zt_buf text, note;
	char *out;

	memset(&c, 0, sizeof c);
	snprintf(c.origin, sizeof c.origin, "%s", ORIGIN);
	c.size = size;
	memcpy(c.root, root, H);
	zt_buf_init(&text, 4096);
	zt_buf_init(&note, ZT_NOTE_MAX);
	assert_int_equal(zt_checkpoint_format(&c, &text, NULL), 0);
	assert_int_equal(zt_note_sign(s, (const char *)text.p, text.len, &note, NULL), 0);
	out = malloc(note.len + 1);
	assert_non_null(out);
	memcpy(out, note.p, note.len);
	out[note.len] = '\0';
	*len = note.len;
	zt_buf_free(&text, 0);
	zt_buf_free(&note, 0);
	zt_note_key_free(s);
	return out;
}

static void test_verify_failures(void **state)
{
	char *dir = new_log(), *ent[N_VERIFY];
	uint8_t roots[N_VERIFY + 1][H];
	zt_audit *a;
	zt_buf cp;
	zt_err e;
	uint8_t old;
	uint64_t off;
	size_t len;
	char *file;

	(void)state;
	a = open_log(dir, ZT_AUDIT_WRITE);
	append_n(a, 0, 20, ent);
	zt_buf_init(&cp, ZT_NOTE_MAX);
	assert_int_equal(zt_audit_checkpoint(a, &cp, &e), 0);
	append_n(a, 20, N_VERIFY - 20, ent);
	for (uint64_t s = 0; s <= N_VERIFY; s++)
		assert_int_equal(zt_audit_root(a, s, roots[s], &e), 0);
	zt_audit_close(a);
	assert_true(verify_ok(dir, NULL, NULL, 0) == N_VERIFY);

	/* one byte inside entry 7 */
	file = fget(dir, "index", &len);
	off = be64((const uint8_t *)file + 8 * 7);
	free(file);
	file = fget(dir, "entries", &len);
	assert_memory_equal(file + off, ent[7], strlen(ent[7]));
	{
		const char *u = strstr(ent[7], "user:test");

		assert_non_null(u);
		off += (uint64_t)(u - ent[7]);
	}
	free(file);
	old = fpatch(dir, "entries", off, 'U');
	verify_fails(dir, NULL, NULL, 0, "entry-altered", "entry 7 ");
	fpatch(dir, "entries", off, old);
	verify_ok(dir, NULL, NULL, 0);

	/* entry 33 (past the stored checkpoint) */
	file = fget(dir, "index", &len);
	off = be64((const uint8_t *)file + 8 * 33) + 3;
	free(file);
	old = fpatch(dir, "entries", off, 'Z');
	verify_fails(dir, NULL, NULL, 0, "entry-altered", "entry 33 ");
	fpatch(dir, "entries", off, old);

	/* a tree node above the leaves: over entries 0-1, and over 8-15 */
	off = zt_merkle_node_pos(1, 0) * H + 5;
	old = fpatch(dir, "tree", off, 0x5a);
	verify_fails(dir, NULL, NULL, 0, "tree", "entries 0 to 1");
	fpatch(dir, "tree", off, old);
	off = zt_merkle_node_pos(3, 1) * H;
	old = fpatch(dir, "tree", off, (uint8_t)~0);
	if (old == 0xff)
		fpatch(dir, "tree", off, 0);
	verify_fails(dir, NULL, NULL, 0, "tree", "entries 8 to 15");
	fpatch(dir, "tree", off, old);
	/* a leaf in the tree is reported against its entry */
	off = zt_merkle_node_pos(0, 12) * H + 31;
	old = fpatch(dir, "tree", off, 0x00);
	if (old == 0x00)
		fpatch(dir, "tree", off, 0x01);
	verify_fails(dir, NULL, NULL, 0, "entry-altered", "entry 12 ");
	fpatch(dir, "tree", off, old);

	/* an index value */
	off = 8 * 3 + 7;
	old = fpatch(dir, "index", off, 0);
	if (old == 0)
		fpatch(dir, "index", off, 1);
	verify_fails(dir, NULL, NULL, 0, "index", "entry 3");
	fpatch(dir, "index", off, old);
	verify_ok(dir, NULL, NULL, 0);

	/* a stored checkpoint's signature */
	file = fget(dir, "checkpoints", &len);
	{
		/* the signature line: "\u2014 <name> <base64(key id || signature)>\n" */
		const char *dash = NULL, *p = file + 4; /* past the binary length */

		while ((p = strstr(p, "\xe2\x80\x94 ")))
			dash = p++;
		assert_non_null(dash);
		const char *b64 = strchr(dash + 4, ' ');

		assert_non_null(b64);
		off = (uint64_t)(b64 + 1 + 30 - file); /* inside the signature, past the key ID */
		old = fpatch(dir, "checkpoints", off, file[off] == 'A' ? 'B' : 'A');
	}
	free(file);
	verify_fails(dir, NULL, NULL, 0, "checkpoint-signature", "stored checkpoint 1");
	fpatch(dir, "checkpoints", off, old);
	verify_ok(dir, NULL, NULL, 0);

	/* given old checkpoints */
	{
		uint8_t bad_root[H];
		char *note[4];
		size_t nl[4];
		const char *notes[4];

		/* genuine: the one the log signed, and ones the auditor signed at other sizes */
		note[0] = sign_checkpoint(dir, 10, roots[10], &nl[0]);
		note[1] = sign_checkpoint(dir, N_VERIFY, roots[N_VERIFY], &nl[1]);
		note[2] = sign_checkpoint(dir, 1, roots[1], &nl[2]);
		notes[0] = note[0];
		notes[1] = note[1];
		notes[2] = note[2];
		notes[3] = (const char *)cp.p;
		nl[3] = cp.len;
		assert_true(verify_ok(dir, notes, nl, 4) == N_VERIFY);
		for (int i = 0; i < 3; i++)
			free(note[i]);

		/* from another history: a root the log never had, at size 10 */
		memcpy(bad_root, roots[10], H);
		bad_root[0] ^= 0x80;
		note[0] = sign_checkpoint(dir, 10, bad_root, &nl[0]);
		notes[0] = note[0];
		verify_fails(dir, notes, nl, 1, "inconsistent", "given checkpoint 1");
		/* the right root at the wrong size */
		free(note[0]);
		note[0] = sign_checkpoint(dir, 11, roots[10], &nl[0]);
		notes[0] = note[0];
		verify_fails(dir, notes, nl, 1, "inconsistent", NULL);
		/* at the log's own size */
		free(note[0]);
		note[0] = sign_checkpoint(dir, N_VERIFY, roots[N_VERIFY - 1], &nl[0]);
		notes[0] = note[0];
		verify_fails(dir, notes, nl, 1, "inconsistent", NULL);
		free(note[0]);

		/* larger than the log */
		note[0] = sign_checkpoint(dir, N_VERIFY + 1, roots[N_VERIFY], &nl[0]);
		notes[0] = note[0];
		verify_fails(dir, notes, nl, 1, "truncated", NULL);
		free(note[0]);

		/* a bad one after a good one is still found */
		note[0] = sign_checkpoint(dir, 5, roots[5], &nl[0]);
		note[1] = sign_checkpoint(dir, 30, bad_root, &nl[1]);
		notes[0] = note[0];
		notes[1] = note[1];
		verify_fails(dir, notes, nl, 2, "inconsistent", "given checkpoint 2");
		free(note[0]);
		free(note[1]);

		/* signed by someone else: not accepted as given */
		zt_note_key *other = zt_note_key_generate(ORIGIN, NULL);
		zt_checkpoint c;
		zt_buf text, sig;
		zt_note_key *k = load_verifier(dir);
		zt_audit_report entries;

		memset(&c, 0, sizeof c);
		snprintf(c.origin, sizeof c.origin, "%s", ORIGIN);
		c.size = 10;
		memcpy(c.root, roots[10], H);
		zt_buf_init(&text, 4096);
		zt_buf_init(&sig, ZT_NOTE_MAX);
		assert_int_equal(zt_checkpoint_format(&c, &text, NULL), 0);
		assert_int_equal(zt_note_sign(other, (const char *)text.p, text.len, &sig, NULL), 0);
		notes[0] = (const char *)sig.p;
		nl[0] = sig.len;
		zt_err_clear(&e);
		assert_int_not_equal(zt_audit_verify(dir, k, notes, nl, 1, NULL, NULL, &entries, &e),
				     0);
		zt_buf_free(&text, 0);
		zt_buf_free(&sig, 0);
		zt_note_key_free(k);
		zt_note_key_free(other);
	}

	/* progress: called, last with done == total */
	{
		struct progress pr = {0};
		zt_note_key *k = load_verifier(dir);
		zt_audit_report entries;

		zt_err_clear(&e);
		assert_int_equal(zt_audit_verify(dir, k, NULL, NULL, 0, on_progress, &pr, &entries, &e),
				 0);
		assert_true(entries.entries == N_VERIFY);
		assert_true(pr.calls >= 1);
		assert_false(pr.backwards);
		assert_true(pr.last_done == N_VERIFY);
		assert_true(pr.last_total == N_VERIFY);
		zt_note_key_free(k);
	}
	zt_buf_free(&cp, 0);
	for (int i = 0; i < N_VERIFY; i++)
		free(ent[i]);
	tu_rmtree(dir);
}

/* Past 65,536 entries progress is reported on the way, not only at the end. */
static void test_verify_progress_large(void **state)
{
	const int n = 65536 + 300;
	char *dir = new_log();
	struct progress pr = {0};
	zt_note_key *k;
	zt_audit *a;
	zt_err e;
	zt_audit_report entries;

	(void)state;
	a = open_log(dir, ZT_AUDIT_WRITE);
	submit_n(a, 0, n);
	assert_true(zt_audit_size(a) == (uint64_t)n);
	zt_audit_close(a);
	k = load_verifier(dir);
	zt_err_clear(&e);
	if (zt_audit_verify(dir, k, NULL, NULL, 0, on_progress, &pr, &entries, &e) != 0)
		fail_msg("verify: %s", e.msg);
	assert_true(entries.entries == (uint64_t)n);
	assert_true(pr.calls >= 2);
	assert_true(pr.first_done == 65536);
	assert_false(pr.backwards);
	assert_true(pr.last_done == (uint64_t)n);
	assert_true(pr.last_total == (uint64_t)n);
	zt_note_key_free(k);
	tu_rmtree(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_create),
	    cmocka_unit_test(test_append_read_prove),
	    cmocka_unit_test(test_lock_and_readers),
	    cmocka_unit_test(test_concurrent_append),
	    cmocka_unit_test(test_concurrent_submit_window),
	    cmocka_unit_test(test_submit_refusals),
	    cmocka_unit_test(test_checkpoints),
	    cmocka_unit_test(test_checkpoint_empty_log),
	    cmocka_unit_test(test_recover_torn_tails),
	    cmocka_unit_test(test_recover_lost_index_tree),
	    cmocka_unit_test(test_recover_torn_head),
	    cmocka_unit_test(test_damaged_short_files),
	    cmocka_unit_test(test_damaged_head),
	    cmocka_unit_test(test_damaged_old_head_below_checkpoint),
	    cmocka_unit_test(test_verify_failures),
	    cmocka_unit_test(test_verify_progress_large),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
