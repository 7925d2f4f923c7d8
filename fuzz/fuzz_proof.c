/* Fuzz target: proof files (audit/proof.c) and Merkle proof verification. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "audit/audit.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int same(const zt_audit_proof *a, const zt_audit_proof *b)
{
	return a->kind == b->kind && a->index == b->index && a->size == b->size &&
	       a->size1 == b->size1 && a->size2 == b->size2 && a->leaf_len == b->leaf_len &&
	       a->root_len == b->root_len && a->root1_len == b->root1_len && a->n == b->n &&
	       memcmp(a->leaf, b->leaf, sizeof a->leaf) == 0 &&
	       memcmp(a->root, b->root, sizeof a->root) == 0 &&
	       memcmp(a->root1, b->root1, sizeof a->root1) == 0 &&
	       memcmp(a->proof, b->proof, sizeof a->proof) == 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	zt_audit_proof p, again;
	zt_buf out;
	zt_err e;
	int r1, r2;

	zt_err_clear(&e);
	if (zt_audit_proof_parse((const char *)data, size, &p, &e) != 0) {
		/* every rejection says why, under a rule name, and leaves nothing behind */
		if (e.rule[0] == '\0' || e.msg[0] == '\0' || p.kind != 0 || p.n != 0)
			abort();
		return 0;
	}
	if (p.kind != ZT_PROOF_INCLUSION && p.kind != ZT_PROOF_CONSISTENCY)
		abort();
	if (p.n > ZT_MERKLE_MAX_PROOF || p.root_len > ZT_HASH_LEN || p.leaf_len > ZT_HASH_LEN ||
	    p.root1_len > ZT_HASH_LEN)
		abort();
	/* what parses is written back and reads back the same */
	zt_buf_init(&out, ZT_PROOF_FILE_MAX);
	if (zt_audit_proof_format(&p, &out, &e) != 0)
		abort();
	if (out.len == 0 || out.p[out.len - 1] != '\n')
		abort();
	if (zt_audit_proof_parse((const char *)out.p, out.len, &again, &e) != 0 || !same(&p, &again))
		abort();
	zt_buf_free(&out, 0);
	/* verification never crashes, and gives the same answer for the copy */
	r1 = zt_audit_proof_check(&p, &e);
	r2 = zt_audit_proof_check(&again, &e);
	if (r1 != r2 || (r1 != 0 && r1 != -ZT_EVERIFY))
		abort();
	return 0;
}
