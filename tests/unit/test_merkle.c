/*
 * Unit tests: RFC 9162 Merkle trees (audit/merkle.c) and proof files
 * (audit/proof.c).
 *
 * Three independent checks: the transparency-dev/merkle test vectors
 * (tests/vectors/merkle), a reference implementation of RFC 9162 2.1
 * written here from the RFC text (MTH, PATH, SUBPROOF and both verification
 * algorithms) against which every tree of 1..70 leaves is compared, and
 * known answers (the RFC 6962 reference tree of the certificate-transparency
 * test data).
 */
#include "testutil.h"

#include "audit/audit.h"
#include "core/core.h"
#include "crypto/crypto.h"

#include <dirent.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define MAX_LEAVES 70
#define H ZT_HASH_LEN

/* ---- a reference implementation of RFC 9162 2.1 ------------------------- */

static void ref_leaf(const void *data, size_t len, uint8_t out[H])
{
	uint8_t buf[256];

	assert_true(len < sizeof buf);
	buf[0] = 0x00;
	memcpy(buf + 1, data, len);
	zt_sha256(buf, len + 1, out);
}

static void ref_node(const uint8_t l[H], const uint8_t r[H], uint8_t out[H])
{
	uint8_t buf[1 + 2 * H];

	buf[0] = 0x01;
	memcpy(buf + 1, l, H);
	memcpy(buf + 1 + H, r, H);
	zt_sha256(buf, sizeof buf, out);
}

/* the largest power of two smaller than n (n > 1) */
static uint64_t split(uint64_t n)
{
	uint64_t k = 1;

	while (k * 2 < n)
		k *= 2;
	return k;
}

/* RFC 9162 2.1.1: MTH(D[lo:hi]) of leaf hashes */
static void ref_mth(uint8_t (*leaf)[H], uint64_t lo, uint64_t hi, uint8_t out[H])
{
	uint8_t l[H], r[H];
	uint64_t k;

	if (hi == lo) {
		zt_sha256("", 0, out);
		return;
	}
	if (hi - lo == 1) {
		memcpy(out, leaf[lo], H);
		return;
	}
	k = split(hi - lo);
	ref_mth(leaf, lo, lo + k, l);
	ref_mth(leaf, lo + k, hi, r);
	ref_node(l, r, out);
}

/* RFC 9162 2.1.3.1: PATH(m, D[lo:hi]), appended to out[*n] */
static void ref_path(uint8_t (*leaf)[H], uint64_t m, uint64_t lo, uint64_t hi,
		     uint8_t out[][H], size_t *n)
{
	uint64_t k;

	if (hi - lo <= 1)
		return;
	k = split(hi - lo);
	if (m < k) {
		ref_path(leaf, m, lo, lo + k, out, n);
		ref_mth(leaf, lo + k, hi, out[(*n)++]);
	} else {
		ref_path(leaf, m - k, lo + k, hi, out, n);
		ref_mth(leaf, lo, lo + k, out[(*n)++]);
	}
}

/* RFC 9162 2.1.4.1: SUBPROOF(m, D[lo:hi], b) */
static void ref_subproof(uint8_t (*leaf)[H], uint64_t m, uint64_t lo, uint64_t hi, int b,
			 uint8_t out[][H], size_t *n)
{
	uint64_t k;

	if (m == hi - lo) {
		if (!b)
			ref_mth(leaf, lo, hi, out[(*n)++]);
		return;
	}
	k = split(hi - lo);
	if (m <= k) {
		ref_subproof(leaf, m, lo, lo + k, b, out, n);
		ref_mth(leaf, lo + k, hi, out[(*n)++]);
	} else {
		ref_subproof(leaf, m - k, lo + k, hi, 0, out, n);
		ref_mth(leaf, lo, lo + k, out[(*n)++]);
	}
}

static int hash_eq(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
	return alen == blen && memcmp(a, b, alen) == 0;
}

/* RFC 9162 2.1.3.2, step by step */
static int ref_verify_inclusion(uint64_t index, uint64_t size, const uint8_t *leaf,
				size_t leaf_len, const uint8_t (*proof)[H], size_t n,
				const uint8_t *root, size_t root_len)
{
	uint64_t fn, sn;
	uint8_t r[H];
	size_t i;

	if (index >= size || leaf_len != H || root_len != H)
		return 0;
	fn = index;
	sn = size - 1;
	memcpy(r, leaf, H);
	for (i = 0; i < n; i++) {
		if (sn == 0)
			return 0;
		if ((fn & 1) || fn == sn) {
			ref_node(proof[i], r, r);
			if (!(fn & 1))
				while (!(fn & 1) && fn != 0) {
					fn >>= 1;
					sn >>= 1;
				}
		} else {
			ref_node(r, proof[i], r);
		}
		fn >>= 1;
		sn >>= 1;
	}
	return sn == 0 && memcmp(r, root, H) == 0;
}

/*
 * RFC 9162 2.1.4.2, with the cases the header spells out: size1 == 0 never
 * verifies; size1 == size2 needs an empty proof and equal roots (as byte
 * strings).
 */
static int ref_verify_consistency(uint64_t size1, uint64_t size2, const uint8_t *root1,
				  size_t root1_len, const uint8_t *root2, size_t root2_len,
				  const uint8_t (*proof)[H], size_t n)
{
	uint8_t path[ZT_MERKLE_MAX_PROOF + 1][H], fr[H], sr[H];
	uint64_t fn, sn;
	size_t i, m = 0;

	if (size1 == 0 || size1 > size2)
		return 0;
	if (size1 == size2)
		return n == 0 && hash_eq(root1, root1_len, root2, root2_len);
	if (n == 0 || root1_len != H || root2_len != H)
		return 0;
	if ((size1 & (size1 - 1)) == 0)
		memcpy(path[m++], root1, H);
	for (i = 0; i < n; i++)
		memcpy(path[m++], proof[i], H);
	fn = size1 - 1;
	sn = size2 - 1;
	while (fn & 1) {
		fn >>= 1;
		sn >>= 1;
	}
	memcpy(fr, path[0], H);
	memcpy(sr, path[0], H);
	for (i = 1; i < m; i++) {
		if (sn == 0)
			return 0;
		if ((fn & 1) || fn == sn) {
			ref_node(path[i], fr, fr);
			ref_node(path[i], sr, sr);
			if (!(fn & 1))
				while (!(fn & 1) && fn != 0) {
					fn >>= 1;
					sn >>= 1;
				}
		} else {
			ref_node(sr, path[i], sr);
		}
		fn >>= 1;
		sn >>= 1;
	}
	return memcmp(fr, root1, H) == 0 && memcmp(sr, root2, H) == 0 && sn == 0;
}

static unsigned popcount64(uint64_t x)
{
	unsigned c = 0;

	for (; x; x &= x - 1)
		c++;
	return c;
}

static unsigned bitlen(uint64_t x)
{
	unsigned b = 0;

	for (; x; x >>= 1)
		b++;
	return b;
}

/* ---- the tree zt reads from ------------------------------------------- */

struct tree {
	uint8_t leaf[MAX_LEAVES][H];
	uint64_t n;     /* leaves there are */
	uint64_t limit; /* leaves the operation under test may look at */
	unsigned reads;
	int fail_after; /* >= 0: fail the read after that many */
};

static void tree_init(struct tree *t, uint64_t n)
{
	char data[32];
	uint64_t i;

	memset(t, 0, sizeof *t);
	assert_true(n <= MAX_LEAVES);
	for (i = 0; i < n; i++) {
		int len = snprintf(data, sizeof data, "leaf %" PRIu64, i);
		uint8_t want[H];

		zt_merkle_leaf_hash(data, (size_t)len, t->leaf[i]);
		ref_leaf(data, (size_t)len, want);
		assert_memory_equal(t->leaf[i], want, H);
	}
	t->n = n;
	t->limit = n;
	t->fail_after = -1;
}

static int node_fn(void *ctx, unsigned level, uint64_t index, uint8_t out[H], zt_err *e)
{
	struct tree *t = ctx;

	if (t->fail_after >= 0 && t->reads >= (unsigned)t->fail_after)
		return zt_err_set(e, ZT_EIO, "test: read of node (%u, %" PRIu64 ") fails", level,
				  index);
	t->reads++;
	/* only complete subtrees inside the tree the operation is about exist */
	if (level >= 64 || index > (t->limit >> level) || ((index + 1) << level) > t->limit)
		fail_msg("merkle.c read node (level %u, index %" PRIu64 ") outside the "
			 "%" PRIu64 " leaves it was asked about", level, index, t->limit);
	ref_mth(t->leaf, index << level, (index + 1) << level, out);
	return 0;
}

/* ---- known answers ------------------------------------------------------ */

static void assert_hex(const uint8_t *h, const char *hex)
{
	char got[2 * H + 1];

	zt_hex(h, H, got);
	assert_string_equal(got, hex);
}

static void test_known_answers(void **state)
{
	/* the RFC 6962 reference tree (certificate-transparency test data) */
	static const struct {
		const char *data;
		size_t len;
	} leaves[] = {
	    {"", 0},
	    {"\x00", 1},
	    {"\x10", 1},
	    {"\x20\x21", 2},
	    {"\x30\x31", 2},
	    {"\x40\x41\x42\x43", 4},
	    {"\x50\x51\x52\x53\x54\x55\x56\x57", 8},
	    {"\x60\x61\x62\x63\x64\x65\x66\x67\x68\x69\x6a\x6b\x6c\x6d\x6e\x6f", 16},
	};
	static const char *const roots[] = {
	    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
	    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
	    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
	    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
	    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
	    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
	    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
	    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
	};
	uint8_t h[H], l0[H], l1[H], l2[H], n01[H], buf[1 + 2 * H];
	zt_merkle_range r;
	struct tree t;
	size_t i;
	zt_err e;

	(void)state;
	zt_merkle_empty_root(h);
	assert_hex(h, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
	zt_merkle_range_init(&r);
	zt_merkle_range_root(&r, h);
	assert_hex(h, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
	tree_init(&t, 0);
	assert_int_equal(zt_merkle_root(node_fn, &t, 0, h, &e), 0);
	assert_hex(h, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");

	/* by hand: leaf = SHA-256(00 || d), node = SHA-256(01 || l || r) */
	zt_merkle_leaf_hash("", 0, l0);
	assert_hex(l0, "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d");
	buf[0] = 0x00;
	buf[1] = 0x00;
	zt_sha256(buf, 2, h);
	zt_merkle_leaf_hash("\x00", 1, l1);
	assert_memory_equal(l1, h, H);
	buf[1] = 0x10;
	zt_sha256(buf, 2, h);
	zt_merkle_leaf_hash("\x10", 1, l2);
	assert_memory_equal(l2, h, H);
	buf[0] = 0x01;
	memcpy(buf + 1, l0, H);
	memcpy(buf + 1 + H, l1, H);
	zt_sha256(buf, sizeof buf, h);
	zt_merkle_node_hash(l0, l1, n01);
	assert_memory_equal(n01, h, H);
	assert_hex(n01, roots[1]);
	/* three leaves: the left subtree is the largest power of two, 2 */
	memcpy(buf + 1, n01, H);
	memcpy(buf + 1 + H, l2, H);
	zt_sha256(buf, sizeof buf, h);
	assert_hex(h, roots[2]);

	memset(&t, 0, sizeof t);
	t.fail_after = -1;
	zt_merkle_range_init(&r);
	for (i = 0; i < 8; i++) {
		zt_merkle_leaf_hash(leaves[i].data, leaves[i].len, t.leaf[i]);
		zt_merkle_range_push(&r, t.leaf[i], NULL, NULL);
		t.n = t.limit = i + 1;
		zt_merkle_range_root(&r, h);
		assert_hex(h, roots[i]);
		assert_int_equal(zt_merkle_root(node_fn, &t, i + 1, h, &e), 0);
		assert_hex(h, roots[i]);
	}
}

static void test_node_positions(void **state)
{
	static const struct {
		unsigned level;
		uint64_t index, pos;
	} kat[] = {
	    {0, 0, 0}, {0, 1, 1}, {1, 0, 2}, {0, 2, 3}, {0, 3, 4}, {1, 1, 5}, {2, 0, 6},
	    {0, 4, 7}, {0, 5, 8}, {1, 2, 9}, {0, 6, 10}, {0, 7, 11}, {1, 3, 12}, {2, 1, 13},
	    {3, 0, 14},
	};
	uint64_t n;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof kat / sizeof kat[0]; i++)
		assert_int_equal(zt_merkle_node_pos(kat[i].level, kat[i].index), kat[i].pos);
	/* a tree of n leaves has 2n - popcount(n) complete nodes */
	for (n = 0; n < 5000; n++)
		assert_int_equal(zt_merkle_node_count(n), 2 * n - popcount64(n));
	assert_int_equal(zt_merkle_node_count(UINT64_C(1) << 62), (UINT64_C(1) << 63) - 1);
	assert_int_equal(zt_merkle_node_count(INT64_MAX), UINT64_MAX - 64);
	/*
	 * Post-order: the node over leaves [i << level, (i + 1) << level) is
	 * written while its last leaf L is pushed, right after the L-leaf
	 * tree's node_count(L) nodes, leaf L itself and the `level - 1`
	 * nodes below it on the right edge.
	 */
	for (n = 0; n < 300; n++) {
		unsigned level;

		for (level = 0; level < 9; level++)
			assert_int_equal(zt_merkle_node_pos(level, n),
					 zt_merkle_node_count(((n + 1) << level) - 1) + level);
	}
	assert_int_equal(zt_merkle_node_pos(40, 3),
			 zt_merkle_node_count((UINT64_C(4) << 40) - 1) + 40);
}

/* ---- range ------------------------------------------------------------ */

struct emit_ctx {
	struct tree *t;
	uint64_t next;   /* the position the next node must have */
	uint64_t pushed; /* leaves pushed, counting the one being pushed */
};

static void emit_check(void *ctx, unsigned level, uint64_t index, const uint8_t hash[H])
{
	struct emit_ctx *c = ctx;
	uint8_t want[H];

	if (zt_merkle_node_pos(level, index) != c->next)
		fail_msg("range emitted node (level %u, index %" PRIu64 ") at position %" PRIu64
			 ", expected position %" PRIu64 " (post-order)", level, index,
			 zt_merkle_node_pos(level, index), c->next);
	assert_true(level < 64);
	assert_true(((index + 1) << level) <= c->pushed);
	ref_mth(c->t->leaf, index << level, (index + 1) << level, want);
	assert_memory_equal(hash, want, H);
	c->next++;
}

static void check_range_shape(const zt_merkle_range *r, struct tree *t)
{
	uint64_t lo = 0;
	uint8_t want[H];
	unsigned k = 0;
	int bit;

	assert_int_equal(r->count, popcount64(r->size));
	/* h[k] for each set bit of size, largest first */
	for (bit = 63; bit >= 0; bit--) {
		uint64_t w = UINT64_C(1) << bit;

		if (!(r->size & w))
			continue;
		ref_mth(t->leaf, lo, lo + w, want);
		assert_memory_equal(r->h[k], want, H);
		lo += w;
		k++;
	}
}

static void test_range(void **state)
{
	struct emit_ctx c;
	zt_merkle_range r, again;
	struct tree t;
	uint8_t got[H], want[H];
	uint64_t i;
	zt_err e;

	(void)state;
	tree_init(&t, MAX_LEAVES);
	zt_merkle_range_init(&r);
	assert_int_equal(r.size, 0);
	assert_int_equal(r.count, 0);
	c.t = &t;
	c.next = 0;
	for (i = 0; i < MAX_LEAVES; i++) {
		c.pushed = i + 1;
		zt_merkle_range_push(&r, t.leaf[i], emit_check, &c);
		assert_int_equal(r.size, i + 1);
		assert_int_equal(c.next, zt_merkle_node_count(i + 1));
		check_range_shape(&r, &t);
		zt_merkle_range_root(&r, got);
		ref_mth(t.leaf, 0, i + 1, want);
		assert_memory_equal(got, want, H);

		/* rebuilt from stored nodes, it is the same range */
		t.limit = i + 1;
		t.reads = 0;
		memset(&again, 0x5a, sizeof again);
		assert_int_equal(zt_merkle_range_load(&again, i + 1, node_fn, &t, &e), 0);
		assert_int_equal(again.size, r.size);
		assert_int_equal(again.count, r.count);
		assert_memory_equal(again.h, r.h, (size_t)r.count * H);
		assert_true(t.reads <= 64);
		zt_merkle_range_root(&again, got);
		assert_memory_equal(got, want, H);
	}
	/* the empty range loads too */
	t.limit = 0;
	assert_int_equal(zt_merkle_range_load(&again, 0, node_fn, &t, &e), 0);
	assert_int_equal(again.size, 0);
	assert_int_equal(again.count, 0);
	zt_merkle_range_root(&again, got);
	zt_merkle_empty_root(want);
	assert_memory_equal(got, want, H);
	/* a read error is passed on */
	t.limit = 7;
	t.reads = 0;
	t.fail_after = 1;
	zt_err_clear(&e);
	assert_int_equal(zt_merkle_range_load(&again, 7, node_fn, &t, &e), -ZT_EIO);
	assert_int_equal(e.code, ZT_EIO);
}

/* ---- roots and proofs against the reference ------------------------------ */

/* Which bits the tamper checks flip: every one for small trees, one a byte beyond. */
static int flip_step(uint64_t n)
{
	return n <= 16 ? 1 : 8;
}

static void check_inclusion_tamper(struct tree *t, uint64_t index, uint64_t size,
				   uint8_t (*proof)[H], size_t n, const uint8_t root[H])
{
	uint8_t leaf[H], r2[H], p2[ZT_MERKLE_MAX_PROOF + 1][H];
	int step = flip_step(size), b;
	size_t i;
	zt_err e;
	static const int64_t didx[] = {-1, 1, -2, 2};
	size_t d;

	memcpy(leaf, t->leaf[index], H);
	for (b = (int)(index % (uint64_t)step); b < H * 8; b += step) {
		leaf[b / 8] ^= (uint8_t)(1u << (b % 8));
		assert_int_equal(zt_merkle_verify_inclusion(index, size, leaf, H,
							    (const uint8_t(*)[H])proof, n,
							    root, H, &e), -ZT_EVERIFY);
		leaf[b / 8] ^= (uint8_t)(1u << (b % 8));
		memcpy(r2, root, H);
		r2[b / 8] ^= (uint8_t)(1u << (b % 8));
		assert_int_equal(zt_merkle_verify_inclusion(index, size, leaf, H,
							    (const uint8_t(*)[H])proof, n,
							    r2, H, &e), -ZT_EVERIFY);
		for (i = 0; i < n; i++) {
			proof[i][b / 8] ^= (uint8_t)(1u << (b % 8));
			assert_int_equal(zt_merkle_verify_inclusion(
					     index, size, leaf, H, (const uint8_t(*)[H])proof, n,
					     root, H, &e), -ZT_EVERIFY);
			proof[i][b / 8] ^= (uint8_t)(1u << (b % 8));
		}
	}
	/* a hash given with the wrong length never verifies */
	assert_int_equal(zt_merkle_verify_inclusion(index, size, leaf, H - 1,
						    (const uint8_t(*)[H])proof, n, root, H, &e),
			 -ZT_EVERIFY);
	assert_int_equal(zt_merkle_verify_inclusion(index, size, leaf, H,
						    (const uint8_t(*)[H])proof, n, root, H - 1, &e),
			 -ZT_EVERIFY);
	assert_int_equal(zt_merkle_verify_inclusion(index, size, leaf, H,
						    (const uint8_t(*)[H])proof, n, root, 0, &e),
			 -ZT_EVERIFY);
	/* a proof one hash short, or with one more */
	if (n > 0)
		assert_int_equal(zt_merkle_verify_inclusion(index, size, leaf, H,
							    (const uint8_t(*)[H])proof, n - 1,
							    root, H, &e), -ZT_EVERIFY);
	memcpy(p2, proof, n * H);
	memcpy(p2[n], root, H);
	assert_int_equal(zt_merkle_verify_inclusion(index, size, leaf, H,
						    (const uint8_t(*)[H])p2, n + 1, root, H, &e),
			 -ZT_EVERIFY);
	/* index or size changed: fails unless the RFC algorithm says the same
	 * proof proves that too (it does for some sizes: the size only shapes
	 * the path) */
	for (d = 0; d < sizeof didx / sizeof didx[0]; d++) {
		uint64_t i2 = index + (uint64_t)didx[d], s2 = size + (uint64_t)didx[d];
		int want;

		want = ref_verify_inclusion(i2, size, leaf, H, (const uint8_t(*)[H])proof, n,
					    root, H);
		assert_int_equal(zt_merkle_verify_inclusion(i2, size, leaf, H,
							    (const uint8_t(*)[H])proof, n,
							    root, H, &e), want ? 0 : -ZT_EVERIFY);
		assert_false(want); /* another leaf position never has the same path */
		want = ref_verify_inclusion(index, s2, leaf, H, (const uint8_t(*)[H])proof, n,
					    root, H);
		assert_int_equal(zt_merkle_verify_inclusion(index, s2, leaf, H,
							    (const uint8_t(*)[H])proof, n,
							    root, H, &e), want ? 0 : -ZT_EVERIFY);
	}
	assert_int_equal(zt_merkle_verify_inclusion(index, size * 2, leaf, H,
						    (const uint8_t(*)[H])proof, n, root, H, &e),
			 ref_verify_inclusion(index, size * 2, leaf, H,
					      (const uint8_t(*)[H])proof, n, root, H) ? 0 : -ZT_EVERIFY);
	assert_int_equal(zt_merkle_verify_inclusion(size, size, leaf, H,
						    (const uint8_t(*)[H])proof, n, root, H, &e),
			 -ZT_EVERIFY);
	assert_int_equal(zt_merkle_verify_inclusion(UINT64_MAX, size, leaf, H,
						    (const uint8_t(*)[H])proof, n, root, H, &e),
			 -ZT_EVERIFY);
	assert_int_equal(zt_merkle_verify_inclusion(index, 0, leaf, H,
						    (const uint8_t(*)[H])proof, n, root, H, &e),
			 -ZT_EVERIFY);
}

static void check_consistency_tamper(uint64_t m, uint64_t size, uint8_t (*proof)[H], size_t n,
				     const uint8_t root1[H], const uint8_t root2[H])
{
	uint8_t a[H], b2[H], p2[ZT_MERKLE_MAX_PROOF + 1][H];
	int step = flip_step(size), b;
	static const int64_t dd[] = {-1, 1, -2, 2};
	size_t i, d;
	zt_err e;

	memcpy(a, root1, H);
	memcpy(b2, root2, H);
	for (b = (int)(m % (uint64_t)step); b < H * 8; b += step) {
		uint8_t bit = (uint8_t)(1u << (b % 8));

		a[b / 8] ^= bit;
		assert_int_equal(zt_merkle_verify_consistency(m, size, a, H, b2, H,
							      (const uint8_t(*)[H])proof, n, &e),
				 -ZT_EVERIFY);
		a[b / 8] ^= bit;
		b2[b / 8] ^= bit;
		assert_int_equal(zt_merkle_verify_consistency(m, size, a, H, b2, H,
							      (const uint8_t(*)[H])proof, n, &e),
				 -ZT_EVERIFY);
		b2[b / 8] ^= bit;
		/* RFC 9162 2.1.4.2 feeds every proof hash into the second root */
		for (i = 0; i < n; i++) {
			proof[i][b / 8] ^= bit;
			assert_int_equal(zt_merkle_verify_consistency(
					     m, size, a, H, b2, H, (const uint8_t(*)[H])proof, n,
					     &e), -ZT_EVERIFY);
			proof[i][b / 8] ^= bit;
		}
	}
	assert_int_equal(zt_merkle_verify_consistency(m, size, a, H - 1, b2, H,
						      (const uint8_t(*)[H])proof, n, &e),
			 -ZT_EVERIFY);
	assert_int_equal(zt_merkle_verify_consistency(m, size, a, H, b2, 0,
						      (const uint8_t(*)[H])proof, n, &e),
			 -ZT_EVERIFY);
	/* swapped roots */
	if (memcmp(a, b2, H) != 0)
		assert_int_equal(zt_merkle_verify_consistency(m, size, b2, H, a, H,
							      (const uint8_t(*)[H])proof, n, &e),
				 -ZT_EVERIFY);
	if (n > 0)
		assert_int_equal(zt_merkle_verify_consistency(m, size, a, H, b2, H,
							      (const uint8_t(*)[H])proof, n - 1, &e),
				 -ZT_EVERIFY);
	memcpy(p2, proof, n * H);
	memcpy(p2[n], a, H);
	assert_int_equal(zt_merkle_verify_consistency(m, size, a, H, b2, H,
						      (const uint8_t(*)[H])p2, n + 1, &e),
			 -ZT_EVERIFY);
	for (d = 0; d < sizeof dd / sizeof dd[0]; d++) {
		uint64_t m2 = m + (uint64_t)dd[d], s2 = size + (uint64_t)dd[d];
		int want;

		want = ref_verify_consistency(m2, size, a, H, b2, H, (const uint8_t(*)[H])proof, n);
		assert_int_equal(zt_merkle_verify_consistency(m2, size, a, H, b2, H,
							      (const uint8_t(*)[H])proof, n, &e),
				 want ? 0 : -ZT_EVERIFY);
		want = ref_verify_consistency(m, s2, a, H, b2, H, (const uint8_t(*)[H])proof, n);
		assert_int_equal(zt_merkle_verify_consistency(m, s2, a, H, b2, H,
							      (const uint8_t(*)[H])proof, n, &e),
				 want ? 0 : -ZT_EVERIFY);
	}
	assert_int_equal(zt_merkle_verify_consistency(0, size, a, H, b2, H,
						      (const uint8_t(*)[H])proof, n, &e),
			 -ZT_EVERIFY);
	assert_int_equal(zt_merkle_verify_consistency(size + 1, size, a, H, b2, H,
						      (const uint8_t(*)[H])proof, n, &e),
			 -ZT_EVERIFY);
}

static void test_trees(void **state)
{
	uint8_t proof[ZT_MERKLE_MAX_PROOF][H], want[ZT_MERKLE_MAX_PROOF + 1][H];
	uint8_t root[H], ref[H], root1[H];
	struct tree t;
	uint64_t n, i, m;
	size_t np, nw;
	zt_err e;

	(void)state;
	for (n = 1; n <= MAX_LEAVES; n++) {
		tree_init(&t, n);
		ref_mth(t.leaf, 0, n, ref);
		t.reads = 0;
		assert_int_equal(zt_merkle_root(node_fn, &t, n, root, &e), 0);
		assert_memory_equal(root, ref, H);
		assert_true(t.reads <= bitlen(n)); /* O(log n): one per complete subtree */

		for (i = 0; i < n; i++) {
			t.limit = n;
			t.reads = 0;
			np = 999;
			memset(proof, 0x5a, sizeof proof);
			if (zt_merkle_prove_inclusion(node_fn, &t, i, n, proof, &np, &e) != 0)
				fail_msg("prove_inclusion(%" PRIu64 ", %" PRIu64 "): %s", i, n,
					 e.msg);
			nw = 0;
			ref_path(t.leaf, i, 0, n, want, &nw);
			if (np != nw || memcmp(proof, want, nw * H) != 0)
				fail_msg("PATH(%" PRIu64 ", D[%" PRIu64 "]) differs from RFC "
					 "9162 2.1.3.1: %zu hashes, expected %zu", i, n, np, nw);
			assert_true(t.reads <= 2 * bitlen(n) + 2); /* O(log n) reads */
			assert_true(ref_verify_inclusion(i, n, t.leaf[i], H,
							 (const uint8_t(*)[H])proof, np, ref, H));
			if (zt_merkle_verify_inclusion(i, n, t.leaf[i], H,
						       (const uint8_t(*)[H])proof, np, ref, H,
						       &e) != 0)
				fail_msg("inclusion of %" PRIu64 " in %" PRIu64 " does not "
					 "verify: %s", i, n, e.msg);
			check_inclusion_tamper(&t, i, n, proof, np, ref);
		}
		for (m = 1; m <= n; m++) {
			t.limit = n;
			t.reads = 0;
			np = 999;
			memset(proof, 0x5a, sizeof proof);
			if (zt_merkle_prove_consistency(node_fn, &t, m, n, proof, &np, &e) != 0)
				fail_msg("prove_consistency(%" PRIu64 ", %" PRIu64 "): %s", m, n,
					 e.msg);
			nw = 0;
			ref_subproof(t.leaf, m, 0, n, 1, want, &nw);
			if (np != nw || memcmp(proof, want, nw * H) != 0)
				fail_msg("PROOF(%" PRIu64 ", D[%" PRIu64 "]) differs from RFC "
					 "9162 2.1.4.1: %zu hashes, expected %zu", m, n, np, nw);
			assert_true(t.reads <= 4 * bitlen(n) + 4);
			ref_mth(t.leaf, 0, m, root1);
			assert_true(ref_verify_consistency(m, n, root1, H, ref, H,
							   (const uint8_t(*)[H])proof, np));
			if (zt_merkle_verify_consistency(m, n, root1, H, ref, H,
							 (const uint8_t(*)[H])proof, np, &e) != 0)
				fail_msg("consistency %" PRIu64 " -> %" PRIu64 " does not "
					 "verify: %s", m, n, e.msg);
			check_consistency_tamper(m, n, proof, np, root1, ref);
		}
	}
}

static void test_prove_errors(void **state)
{
	uint8_t proof[ZT_MERKLE_MAX_PROOF][H], root[H];
	struct tree t;
	size_t np;
	zt_err e;

	(void)state;
	tree_init(&t, 10);
	/* outside the preconditions: an error, not a crash or a read past the tree */
	assert_true(zt_merkle_prove_inclusion(node_fn, &t, 10, 10, proof, &np, &e) < 0);
	assert_true(zt_merkle_prove_inclusion(node_fn, &t, 0, 0, proof, &np, &e) < 0);
	assert_true(zt_merkle_prove_consistency(node_fn, &t, 0, 10, proof, &np, &e) < 0);
	assert_true(zt_merkle_prove_consistency(node_fn, &t, 9, 8, proof, &np, &e) < 0);
	/* read errors are passed on */
	t.fail_after = 0;
	zt_err_clear(&e);
	assert_int_equal(zt_merkle_root(node_fn, &t, 10, root, &e), -ZT_EIO);
	assert_int_equal(e.code, ZT_EIO);
	t.reads = 0;
	t.fail_after = 1;
	zt_err_clear(&e);
	assert_int_equal(zt_merkle_prove_inclusion(node_fn, &t, 3, 10, proof, &np, &e), -ZT_EIO);
	assert_int_equal(e.code, ZT_EIO);
	t.reads = 0;
	zt_err_clear(&e);
	assert_int_equal(zt_merkle_prove_consistency(node_fn, &t, 3, 10, proof, &np, &e),
			 -ZT_EIO);
	assert_int_equal(e.code, ZT_EIO);
}

/* ---- proof files: the transparency-dev/merkle vectors -------------------- */

/*
 * Removes the top-level members "desc" and "wantErr" from a JSON object
 * without a JSON library, so every other member reaches the proof parser
 * byte for byte (jansson could not load leafIdx 2^64-1 to write it back).
 * *want is wantErr's value.
 */
static char *strip_meta(const char *s, size_t len, int *want)
{
	char *out = malloc(len + 3);
	size_t i = 0, o = 0, kept = 0;

	assert_non_null(out);
	*want = -1;
	while (i < len && s[i] != '{')
		i++;
	assert_true(i < len);
	i++;
	out[o++] = '{';
	for (;;) {
		size_t kstart, kend, vstart, vend;
		int depth = 0, instr = 0;

		while (i < len && (s[i] == ' ' || s[i] == '\n' || s[i] == '\t' || s[i] == '\r'))
			i++;
		assert_true(i < len);
		if (s[i] == '}')
			break;
		assert_true(s[i] == '"');
		kstart = i++;
		while (i < len && s[i] != '"')
			i += s[i] == '\\' ? 2 : 1;
		kend = ++i;
		while (i < len && s[i] != ':')
			i++;
		vstart = ++i;
		for (; i < len; i++) {
			char c = s[i];

			if (instr) {
				if (c == '\\')
					i++;
				else if (c == '"')
					instr = 0;
			} else if (c == '"') {
				instr = 1;
			} else if (c == '[' || c == '{') {
				depth++;
			} else if (c == ']' || (c == '}' && depth > 0)) {
				depth--;
			} else if (depth == 0 && (c == ',' || c == '}')) {
				break;
			}
		}
		assert_true(i < len);
		vend = i;
		if (kend - kstart == 9 && memcmp(s + kstart, "\"wantErr\"", 9) == 0) {
			const char *v = s + vstart;

			while (*v == ' ')
				v++;
			*want = strncmp(v, "true", 4) == 0 ? 1 : strncmp(v, "false", 5) == 0 ? 0 : -1;
		} else if (!(kend - kstart == 6 && memcmp(s + kstart, "\"desc\"", 6) == 0)) {
			if (kept++)
				out[o++] = ',';
			memcpy(out + o, s + kstart, vend - kstart);
			o += vend - kstart;
		}
		if (s[i] == '}')
			break;
		i++; /* the comma */
	}
	out[o++] = '}';
	out[o] = '\0';
	return out;
}

struct walk {
	unsigned files, parse_errors, check_errors, wrong;
};

static void run_vector(const char *path, struct walk *w)
{
	zt_audit_proof p, again;
	json_error_t je;
	json_t *doc;
	char *text, *body;
	size_t len;
	zt_buf out;
	int want, got, r;
	zt_err e;

	text = tu_read(path, &len);
	if (!text)
		fail_msg("cannot read %s", path);
	/* it is JSON with a boolean wantErr (reals: leafIdx may be 2^64-1) */
	doc = json_loadb(text, len, JSON_DECODE_INT_AS_REAL | JSON_REJECT_DUPLICATES, &je);
	if (!doc)
		fail_msg("%s: not JSON: %s", path, je.text);
	assert_true(json_is_boolean(json_object_get(doc, "wantErr")));
	body = strip_meta(text, len, &want);
	assert_int_equal(want, json_is_true(json_object_get(doc, "wantErr")));
	json_decref(doc);

	w->files++;
	zt_err_clear(&e);
	r = zt_audit_proof_parse(body, strlen(body), &p, &e);
	if (r != 0) {
		assert_int_equal(r, -ZT_EPARSE);
		assert_true(e.msg[0] != '\0');
		w->parse_errors++;
		got = 1;
	} else {
		zt_buf_init(&out, ZT_PROOF_FILE_MAX);
		assert_int_equal(zt_audit_proof_format(&p, &out, &e), 0);
		assert_int_equal(zt_audit_proof_parse((const char *)out.p, out.len, &again, &e), 0);
		assert_memory_equal(&p, &again, sizeof p);
		zt_buf_free(&out, 0);
		r = zt_audit_proof_check(&p, &e);
		if (r != 0) {
			if (r != -ZT_EVERIFY)
				fail_msg("%s: check gave %d (%s), not -ZT_EVERIFY", path, r, e.msg);
			w->check_errors++;
		}
		got = r != 0;
	}
	if (got != want) {
		print_error("%s: %s, but wantErr is %s%s%s\n", path,
			    got ? "rejected" : "accepted", want ? "true" : "false",
			    got ? ": " : "", got ? e.msg : "");
		w->wrong++;
	}
	free(body);
	free(text);
}

static void walk_dir(const char *dir, struct walk *w)
{
	struct dirent *de;
	char path[4096];
	struct stat st;
	DIR *d = opendir(dir);

	if (!d)
		fail_msg("cannot open %s (is ZT_SRCDIR set to the source tree?)", dir);
	while ((de = readdir(d)) != NULL) {
		size_t nl = strlen(de->d_name);

		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
		assert_int_equal(stat(path, &st), 0);
		if (S_ISDIR(st.st_mode))
			walk_dir(path, w);
		else if (nl > 5 && strcmp(de->d_name + nl - 5, ".json") == 0)
			run_vector(path, w);
	}
	closedir(d);
}

static void test_vectors(void **state)
{
	struct walk w = {0};
	char root[4096];

	(void)state;
	snprintf(root, sizeof root, "%s", tu_vector("merkle"));
	walk_dir(root, &w);
	assert_int_equal(w.files, 196);
	assert_int_equal(w.wrong, 0);
	/* 20 are refused by the parser (empty proof hashes, leafIdx 2^64-1); the
	 * other rejections must come from verification */
	assert_int_equal(w.parse_errors, 20);
	assert_true(w.check_errors > 100);
}

/* ---- proof files: parsing and formatting --------------------------------- */

#define R32 "Tju7H3tHjc/nH7YxYxUZo7yhLJrvyhYSv85ME6hiZNQ="
#define R32B "+sVCA+fMaWzw38tCySodnbr3CtnmIfS9jZhmLwDjwSU="

static void expect_bad(const char *text, size_t len, int code, const char *rule)
{
	zt_audit_proof p;
	zt_err e;
	int r;

	memset(&p, 0x5a, sizeof p);
	zt_err_clear(&e);
	r = zt_audit_proof_parse(text, len, &p, &e);
	if (r == 0)
		fail_msg("accepted bad proof file: %.200s", text);
	if (r != -code || strcmp(e.rule, rule) != 0)
		fail_msg("proof file %.200s: %d %s (%s); expected %d %s", text, r, e.rule, e.msg,
			 -code, rule);
	assert_true(strlen(e.msg) > 20);
	assert_int_equal(p.kind, 0);
	assert_int_equal(p.n, 0);
	assert_int_equal(p.root_len, 0);
}

#define BAD(text, rule) expect_bad(text, strlen(text), ZT_EPARSE, rule)

static void test_proof_parse_errors(void **state)
{
	char *big, *many;
	size_t i, o;

	(void)state;
	BAD("", "proof-json");
	BAD("{", "proof-json");
	BAD("[]", "proof-type");
	BAD("\"x\"", "proof-json"); /* jansson refuses a bare string without JSON_DECODE_ANY */
	BAD("{}", "proof-kind");
	BAD("{\"proof\":[]}", "proof-kind");
	BAD("{\"leafIdx\":0,\"treeSize\":1,\"root\":\"" R32 "\",\"leafHash\":\"" R32
	    "\",\"proof\":[],\"extra\":1}", "proof-member");
	BAD("{\"leafidx\":0,\"treeSize\":1,\"root\":\"" R32 "\",\"leafHash\":\"" R32
	    "\",\"proof\":[]}", "proof-member");
	BAD("{\"\\u0001\":0}", "proof-member");
	BAD("{\"leafIdx\":0,\"treeSize\":1,\"root\":\"" R32 "\",\"leafHash\":\"" R32
	    "\",\"proof\":[],\"size1\":1}", "proof-kind");
	BAD("{\"leafIdx\":0,\"treeSize\":1,\"root\":\"" R32 "\",\"proof\":[]}", "proof-missing");
	BAD("{\"leafIdx\":0,\"treeSize\":1,\"root\":\"" R32 "\",\"leafHash\":\"" R32 "\"}",
	    "proof-missing");
	BAD("{\"size1\":1,\"size2\":2,\"root1\":\"" R32 "\",\"proof\":[]}", "proof-missing");
	BAD("{\"size1\":1,\"size2\":2,\"root1\":\"" R32 "\",\"root2\":\"" R32 "\"}",
	    "proof-missing");
	/* numbers */
	BAD("{\"leafIdx\":\"0\",\"treeSize\":1,\"root\":\"" R32 "\",\"leafHash\":\"" R32
	    "\",\"proof\":[]}", "proof-type");
	BAD("{\"leafIdx\":true,\"treeSize\":1,\"root\":\"" R32 "\",\"leafHash\":\"" R32
	    "\",\"proof\":[]}", "proof-type");
	BAD("{\"leafIdx\":null,\"treeSize\":1,\"root\":\"" R32 "\",\"leafHash\":\"" R32
	    "\",\"proof\":[]}", "proof-type");
	BAD("{\"leafIdx\":0,\"treeSize\":1.5,\"root\":\"" R32 "\",\"leafHash\":\"" R32
	    "\",\"proof\":[]}", "proof-integer");
	BAD("{\"leafIdx\":0,\"treeSize\":1.0,\"root\":\"" R32 "\",\"leafHash\":\"" R32
	    "\",\"proof\":[]}", "proof-integer");
	BAD("{\"leafIdx\":0,\"treeSize\":1e3,\"root\":\"" R32 "\",\"leafHash\":\"" R32
	    "\",\"proof\":[]}", "proof-integer");
	BAD("{\"leafIdx\":-1,\"treeSize\":1,\"root\":\"" R32 "\",\"leafHash\":\"" R32
	    "\",\"proof\":[]}", "proof-integer");
	BAD("{\"size1\":-5,\"size2\":2,\"root1\":\"" R32 "\",\"root2\":\"" R32 "\",\"proof\":[]}",
	    "proof-integer");
	BAD("{\"size1\":1,\"size2\":9223372036854775808,\"root1\":\"" R32 "\",\"root2\":\"" R32
	    "\",\"proof\":[]}", "proof-integer");
	BAD("{\"leafIdx\":18446744073709551615,\"treeSize\":1,\"root\":\"" R32
	    "\",\"leafHash\":\"" R32 "\",\"proof\":[]}", "proof-integer");
	BAD("{\"leafIdx\":99999999999999999999999,\"treeSize\":1,\"root\":\"" R32
	    "\",\"leafHash\":\"" R32 "\",\"proof\":[]}", "proof-integer");
	/* hashes */
	BAD("{\"leafIdx\":0,\"treeSize\":1,\"root\":7,\"leafHash\":\"" R32 "\",\"proof\":[]}",
	    "proof-type");
	BAD("{\"leafIdx\":0,\"treeSize\":1,\"root\":\"" R32 "\",\"leafHash\":null,\"proof\":[]}",
	    "proof-type");
	BAD("{\"leafIdx\":0,\"treeSize\":1,\"root\":\"!!!!\",\"leafHash\":\"" R32
	    "\",\"proof\":[]}", "proof-base64");
	BAD("{\"leafIdx\":0,\"treeSize\":1,\"root\":\"AB==\",\"leafHash\":\"" R32
	    "\",\"proof\":[]}", "proof-base64"); /* stray bits: not canonical */
	BAD("{\"leafIdx\":0,\"treeSize\":1,\"root\":\"QUJD\\n\",\"leafHash\":\"" R32
	    "\",\"proof\":[]}", "proof-base64");
	BAD("{\"leafIdx\":0,\"treeSize\":1,\"root\":\"QUJ\",\"leafHash\":\"" R32
	    "\",\"proof\":[]}", "proof-base64");
	BAD("{\"leafIdx\":0,\"treeSize\":1,\"root\":\"Tju7H3tHjc_nH7YxYxUZo7yhLJrvyhYSv85ME6hiZNQ=\","
	    "\"leafHash\":\"" R32 "\",\"proof\":[]}", "proof-base64"); /* base64url */
	/* 33 bytes in 44 characters, and 36 in 48 */
	BAD("{\"leafIdx\":0,\"treeSize\":1,\"root\":\"Tju7H3tHjc/nH7YxYxUZo7yhLJrvyhYSv85ME6hiZNQA\","
	    "\"leafHash\":\"" R32 "\",\"proof\":[]}", "proof-hash-length");
	BAD("{\"leafIdx\":0,\"treeSize\":1,\"root\":\"" R32 "\",\"leafHash\":\"" R32
	    "AAAA\",\"proof\":[]}", "proof-hash-length"); /* too long before anything else */
	BAD("{\"leafIdx\":0,\"treeSize\":1,\"root\":\"Tju7H3tHjc/nH7YxYxUZo7yhLJrvyhYSv85ME6hiZNQAAAAA\","
	    "\"leafHash\":\"" R32 "\",\"proof\":[]}", "proof-hash-length");
	/* proof */
	BAD("{\"leafIdx\":0,\"treeSize\":1,\"root\":\"" R32 "\",\"leafHash\":\"" R32
	    "\",\"proof\":\"" R32 "\"}", "proof-type");
	BAD("{\"leafIdx\":0,\"treeSize\":1,\"root\":\"" R32 "\",\"leafHash\":\"" R32
	    "\",\"proof\":{}}", "proof-type");
	BAD("{\"leafIdx\":0,\"treeSize\":1,\"root\":\"" R32 "\",\"leafHash\":\"" R32
	    "\",\"proof\":[1]}", "proof-type");
	BAD("{\"leafIdx\":0,\"treeSize\":1,\"root\":\"" R32 "\",\"leafHash\":\"" R32
	    "\",\"proof\":[null]}", "proof-type");
	BAD("{\"leafIdx\":0,\"treeSize\":1,\"root\":\"" R32 "\",\"leafHash\":\"" R32
	    "\",\"proof\":[\"\"]}", "proof-hash-length");
	BAD("{\"leafIdx\":0,\"treeSize\":1,\"root\":\"" R32 "\",\"leafHash\":\"" R32
	    "\",\"proof\":[\"" R32 "\",\"V3JvbmdSb290\"]}", "proof-hash-length");
	BAD("{\"leafIdx\":0,\"treeSize\":1,\"root\":\"" R32 "\",\"leafHash\":\"" R32
	    "\",\"proof\":[\"" R32 "\",\"#\"]}", "proof-base64");
	/* JSON itself */
	BAD("{\"leafIdx\":0,\"leafIdx\":0,\"treeSize\":1,\"root\":\"" R32 "\",\"leafHash\":\"" R32
	    "\",\"proof\":[]}", "proof-json");
	BAD("{\"leafIdx\":0,\"treeSize\":1,\"root\":\"" R32 "\",\"leafHash\":\"" R32
	    "\",\"proof\":[]} {}", "proof-json");
	BAD("{\"leafIdx\":0,\"treeSize\":1,\"root\":\"a\\u0000\",\"leafHash\":\"" R32
	    "\",\"proof\":[]}", "proof-json");
	expect_bad("{\"leafIdx\":0,\x00}", 15, ZT_EPARSE, "proof-json");

	/* 65 hashes is one more than any RFC 9162 proof needs */
	many = malloc(80 * 50 + 200);
	assert_non_null(many);
	o = (size_t)sprintf(many, "{\"size1\":1,\"size2\":2,\"root1\":\"" R32 "\",\"root2\":\""
			    R32 "\",\"proof\":[");
	for (i = 0; i < 65; i++)
		o += (size_t)sprintf(many + o, "%s\"" R32 "\"", i ? "," : "");
	strcpy(many + o, "]}");
	BAD(many, "proof-count");
	free(many);

	/* larger than any proof file */
	big = malloc(ZT_PROOF_FILE_MAX + 2);
	assert_non_null(big);
	memset(big, ' ', ZT_PROOF_FILE_MAX + 1);
	big[0] = '{';
	big[ZT_PROOF_FILE_MAX] = '}';
	big[ZT_PROOF_FILE_MAX + 1] = '\0';
	expect_bad(big, ZT_PROOF_FILE_MAX + 1, ZT_ELIMIT, "proof-size");
	free(big);
}

static void test_proof_parse_ok(void **state)
{
	const char *text;
	zt_audit_proof p;
	char *many;
	size_t i, o;
	zt_err e;

	(void)state;
	/* the largest size there is, proof null, hashes short or empty */
	text = "{\"leafIdx\":9223372036854775806,\"treeSize\":9223372036854775807,"
	       "\"root\":\"V3JvbmdSb290\",\"leafHash\":\"\",\"proof\":null}";
	assert_int_equal(zt_audit_proof_parse(text, strlen(text), &p, &e), 0);
	assert_int_equal(p.kind, ZT_PROOF_INCLUSION);
	assert_int_equal(p.index, INT64_MAX - 1);
	assert_int_equal(p.size, INT64_MAX);
	assert_int_equal(p.root_len, 9);
	assert_memory_equal(p.root, "WrongRoot", 9);
	assert_int_equal(p.leaf_len, 0);
	assert_int_equal(p.n, 0);
	assert_int_equal(zt_audit_proof_check(&p, &e), -ZT_EVERIFY);

	/* member order is free; white space too */
	text = " \n{ \"proof\" : [ \"" R32 "\" ] , \"root2\":\"" R32B "\", \"root1\":\"" R32
	       "\",\"size2\":5,\"size1\":2}\n\n";
	assert_int_equal(zt_audit_proof_parse(text, strlen(text), &p, &e), 0);
	assert_int_equal(p.kind, ZT_PROOF_CONSISTENCY);
	assert_int_equal(p.size1, 2);
	assert_int_equal(p.size2, 5);
	assert_int_equal(p.root1_len, H);
	assert_int_equal(p.root_len, H);
	assert_int_equal(p.n, 1);
	assert_int_equal(p.index, 0);
	assert_int_equal(p.size, 0);
	assert_int_equal(p.leaf_len, 0);
	assert_int_equal(p.root[0], 0xfa);
	assert_int_equal(p.root1[0], 0x4e);
	assert_int_equal(p.proof[0][0], 0x4e);
	assert_int_equal(zt_audit_proof_check(&p, &e), -ZT_EVERIFY);

	/* exactly 64 hashes is allowed */
	many = malloc(80 * 50 + 200);
	assert_non_null(many);
	o = (size_t)sprintf(many, "{\"size1\":1,\"size2\":2,\"root1\":\"" R32 "\",\"root2\":\""
			    R32 "\",\"proof\":[");
	for (i = 0; i < 64; i++)
		o += (size_t)sprintf(many + o, "%s\"" R32 "\"", i ? "," : "");
	strcpy(many + o, "]}");
	assert_int_equal(zt_audit_proof_parse(many, strlen(many), &p, &e), 0);
	assert_int_equal(p.n, 64);
	assert_int_equal(zt_audit_proof_check(&p, &e), -ZT_EVERIFY);
	free(many);
}

static void test_proof_format(void **state)
{
	static const char want_incl[] =
	    "{\n"
	    "  \"leafIdx\": 2,\n"
	    "  \"treeSize\": 5,\n"
	    "  \"root\": \"" R32 "\",\n"
	    "  \"leafHash\": \"V3JvbmdSb290\",\n"
	    "  \"proof\": [\n"
	    "    \"" R32B "\",\n"
	    "    \"" R32 "\"\n"
	    "  ]\n"
	    "}\n";
	static const char want_cons[] =
	    "{\n"
	    "  \"size1\": 1,\n"
	    "  \"size2\": 1,\n"
	    "  \"root1\": \"\",\n"
	    "  \"root2\": \"" R32B "\",\n"
	    "  \"proof\": []\n"
	    "}\n";
	uint8_t proof[ZT_MERKLE_MAX_PROOF][H], root[H];
	zt_audit_proof p, q;
	struct tree t;
	zt_buf out;
	size_t np;
	zt_err e;

	(void)state;
	assert_int_equal(zt_audit_proof_parse(want_incl, strlen(want_incl), &p, &e), 0);
	zt_buf_init(&out, ZT_PROOF_FILE_MAX);
	assert_int_equal(zt_buf_append(&out, "x", 1, &e), 0); /* it appends */
	assert_int_equal(zt_audit_proof_format(&p, &out, &e), 0);
	assert_int_equal(out.len, 1 + strlen(want_incl));
	assert_memory_equal(out.p + 1, want_incl, strlen(want_incl));
	zt_buf_free(&out, 0);

	assert_int_equal(zt_audit_proof_parse(want_cons, strlen(want_cons), &p, &e), 0);
	assert_int_equal(p.root1_len, 0);
	zt_buf_init(&out, ZT_PROOF_FILE_MAX);
	assert_int_equal(zt_audit_proof_format(&p, &out, &e), 0);
	assert_int_equal(out.len, strlen(want_cons));
	assert_memory_equal(out.p, want_cons, out.len);
	zt_buf_free(&out, 0);

	/* a real proof goes out and comes back and verifies */
	tree_init(&t, 21);
	assert_int_equal(zt_merkle_root(node_fn, &t, 21, root, &e), 0);
	assert_int_equal(zt_merkle_prove_inclusion(node_fn, &t, 13, 21, proof, &np, &e), 0);
	memset(&p, 0, sizeof p);
	p.kind = ZT_PROOF_INCLUSION;
	p.index = 13;
	p.size = 21;
	memcpy(p.leaf, t.leaf[13], H);
	p.leaf_len = H;
	memcpy(p.root, root, H);
	p.root_len = H;
	memcpy(p.proof, proof, np * H);
	p.n = np;
	assert_int_equal(zt_audit_proof_check(&p, &e), 0);
	zt_buf_init(&out, ZT_PROOF_FILE_MAX);
	assert_int_equal(zt_audit_proof_format(&p, &out, &e), 0);
	assert_int_equal(zt_audit_proof_parse((const char *)out.p, out.len, &q, &e), 0);
	assert_memory_equal(&p, &q, sizeof p);
	assert_int_equal(zt_audit_proof_check(&q, &e), 0);
	zt_buf_free(&out, 0);

	/* what cannot be written is refused, and nothing is left half-written */
	zt_buf_init(&out, ZT_PROOF_FILE_MAX);
	q = p;
	q.size = UINT64_C(1) << 63;
	assert_int_equal(zt_audit_proof_format(&q, &out, &e), -ZT_EINVAL);
	assert_int_equal(out.len, 0);
	q = p;
	q.kind = 0;
	assert_int_equal(zt_audit_proof_format(&q, &out, &e), -ZT_EINVAL);
	assert_int_equal(zt_audit_proof_check(&q, &e), -ZT_EINVAL);
	q = p;
	q.n = ZT_MERKLE_MAX_PROOF + 1;
	assert_int_equal(zt_audit_proof_format(&q, &out, &e), -ZT_EINVAL);
	assert_int_equal(zt_audit_proof_check(&q, &e), -ZT_EINVAL);
	q = p;
	q.root_len = H + 1;
	assert_int_equal(zt_audit_proof_format(&q, &out, &e), -ZT_EINVAL);
	assert_int_equal(zt_audit_proof_check(&q, &e), -ZT_EINVAL);
	assert_int_equal(out.len, 0);
	zt_buf_free(&out, 0);
	zt_buf_init(&out, 100); /* too small a buffer */
	assert_int_equal(zt_buf_append(&out, "keep", 4, &e), 0);
	assert_int_equal(zt_audit_proof_format(&p, &out, &e), -ZT_ELIMIT);
	assert_int_equal(out.len, 4);
	assert_memory_equal(out.p, "keep", 4);
	zt_buf_free(&out, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_known_answers),
	    cmocka_unit_test(test_node_positions),
	    cmocka_unit_test(test_range),
	    cmocka_unit_test(test_trees),
	    cmocka_unit_test(test_prove_errors),
	    cmocka_unit_test(test_vectors),
	    cmocka_unit_test(test_proof_parse_errors),
	    cmocka_unit_test(test_proof_parse_ok),
	    cmocka_unit_test(test_proof_format),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
