/*
 * audit/proof.c: proof files, the JSON form in which `zt audit prove` and
 * `zt audit consistency` hand out Merkle proofs and `zt audit check-proof`
 * reads them back.
 *
 * The member names are those of the transparency-dev/merkle test data, so
 * the same files feed our tests and other tools:
 *   inclusion   (RFC 9162 2.1.3): leafIdx, treeSize, root, leafHash, proof
 *   consistency (RFC 9162 2.1.4): size1, size2, root1, root2, proof
 * The kind is decided by which members are present; a file that mixes the
 * two, lacks one, or carries anything else is refused rather than guessed
 * at. Hashes are standard base64 (RFC 4648 4).
 *
 * Parsing is strict about shape but not about hash lengths: a root or leaf
 * hash shorter than ZT_HASH_LEN is kept with its length, because a file
 * that claims a wrong root must be reported as "does not verify" (which is
 * what it is) and because two trees of equal size are consistent when
 * their roots are equal as byte strings (the proof between them is empty,
 * RFC 9162 2.1.4.1: SUBPROOF(m, D[m], true) = {}). Proof elements are node
 * hashes and must be exactly ZT_HASH_LEN bytes.
 *
 * Output is pretty-printed with an indent of two spaces, members in the
 * order above, one object and a final newline: the layout of the test data.
 */
#include "audit.h"

#include "crypto/crypto.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

/* what a reader can do about any shape error */
#define PROOF_SHAPE_HINT                                                       \
	"an inclusion proof has exactly leafIdx, treeSize, root, leafHash and "     \
	"proof; a consistency proof has exactly size1, size2, root1, root2 and " \
	"proof"

enum member_set { M_INCLUSION = 1, M_CONSISTENCY = 2, M_BOTH = 3 };

static const struct member {
	const char *name;
	enum member_set set;
} members[] = {
	{"leafIdx", M_INCLUSION},  {"treeSize", M_INCLUSION},  {"root", M_INCLUSION},
	{"leafHash", M_INCLUSION}, {"size1", M_CONSISTENCY},   {"size2", M_CONSISTENCY},
	{"root1", M_CONSISTENCY},  {"root2", M_CONSISTENCY},   {"proof", M_BOTH},
};

static const struct member *member_find(const char *key)
{
	size_t i;

	for (i = 0; i < sizeof members / sizeof members[0]; i++)
		if (strcmp(members[i].name, key) == 0)
			return &members[i];
	return NULL;
}

static const char *json_kind(const json_t *v)
{
	switch (json_typeof(v)) {
	case JSON_OBJECT: return "an object";
	case JSON_ARRAY: return "an array";
	case JSON_STRING: return "a string";
	case JSON_INTEGER: return "an integer";
	case JSON_REAL: return "a fractional number";
	case JSON_TRUE:
	case JSON_FALSE: return "a boolean";
	case JSON_NULL: return "null";
	}
	return "an unknown JSON value";
}

/*
 * A tree size or leaf index: a JSON integer from 0 to 2^63-1 (jansson's
 * json_int_t; larger values are refused by the JSON parser itself).
 */
static int get_u64(const json_t *obj, const char *name, uint64_t *out, zt_err *e)
{
	const json_t *v = json_object_get(obj, name);
	json_int_t x;

	if (json_is_real(v))
		return zt_err_rule(e, ZT_EPARSE, "proof-integer",
				   "proof file: \"%s\" is written with a fraction or an exponent "
				   "(%.17g); tree sizes and leaf indexes are whole numbers: write "
				   "digits only, such as 42",
				   name, json_real_value(v));
	if (!json_is_integer(v))
		return zt_err_rule(e, ZT_EPARSE, "proof-type",
				   "proof file: \"%s\" is %s; it must be a JSON number, a whole "
				   "number from 0 to 9223372036854775807, without quotes",
				   name, json_kind(v));
	x = json_integer_value(v);
	if (x < 0)
		return zt_err_rule(e, ZT_EPARSE, "proof-integer",
				   "proof file: \"%s\" is %lld; tree sizes and leaf indexes "
				   "cannot be negative (RFC 9162 2.1: leaves are numbered from 0)",
				   name, (long long)x);
	*out = (uint64_t)x;
	return 0;
}

/*
 * Decodes the base64 hash in string `v` (called `what` in messages) into
 * out: at most ZT_HASH_LEN bytes, exactly that many when `exact` is set.
 */
static int decode_hash(const json_t *v, const char *what, int exact, uint8_t out[ZT_HASH_LEN],
		       size_t *out_len, zt_err *e)
{
	zt_buf b;
	size_t n;
	int r;

	*out_len = 0;
	if (!json_is_string(v))
		return zt_err_rule(e, ZT_EPARSE, "proof-type",
				   "proof file: %s is %s; hashes are strings in standard "
				   "base64 (RFC 4648 4), such as \"%s\"",
				   what, json_kind(v), "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=");
	n = json_string_length(v);
	/* 4 base64 characters per 3 bytes: anything past this is too long to be a hash */
	if (n > (ZT_HASH_LEN + 2) / 3 * 4)
		return zt_err_rule(e, ZT_EPARSE, "proof-hash-length",
				   "proof file: %s is %zu base64 characters, longer than a "
				   "SHA-256 hash (%d bytes, 44 characters; RFC 9162 2.1); "
				   "give the %d-byte hash itself",
				   what, n, ZT_HASH_LEN, ZT_HASH_LEN);
	zt_buf_init(&b, 64);
	if ((r = zt_base64_decode(json_string_value(v), n, 0, &b, e)) != 0) {
		char why[256];

		if (e)
			zt_quote(why, sizeof why, e->msg, strnlen(e->msg, sizeof e->msg));
		else
			snprintf(why, sizeof why, "invalid base64");
		r = zt_err_rule(e, ZT_EPARSE, "proof-base64",
				"proof file: %s is not standard base64 (%s); write it with "
				"A-Z a-z 0-9 + / and '=' padding to a multiple of 4 "
				"characters, no spaces (RFC 4648 4)",
				what, why);
		goto out;
	}
	if (b.len > ZT_HASH_LEN) {
		r = zt_err_rule(e, ZT_EPARSE, "proof-hash-length",
				"proof file: %s decodes to %zu bytes, longer than a SHA-256 "
				"hash (%d bytes; RFC 9162 2.1); give the %d-byte hash itself",
				what, b.len, ZT_HASH_LEN, ZT_HASH_LEN);
		goto out;
	}
	if (exact && b.len != ZT_HASH_LEN) {
		r = zt_err_rule(e, ZT_EPARSE, "proof-hash-length",
				"proof file: %s decodes to %zu bytes; every proof element is "
				"a node hash of exactly %d bytes (RFC 9162 2.1.3.1, 2.1.4.1): "
				"remove it or give the whole hash",
				what, b.len, ZT_HASH_LEN);
		goto out;
	}
	if (b.len)
		memcpy(out, b.p, b.len);
	*out_len = b.len;
out:
	zt_buf_free(&b, 0);
	return r;
}

static int get_hash(const json_t *obj, const char *name, uint8_t out[ZT_HASH_LEN],
		    size_t *out_len, zt_err *e)
{
	char what[32];

	snprintf(what, sizeof what, "\"%s\"", name);
	return decode_hash(json_object_get(obj, name), what, 0, out, out_len, e);
}

static int get_proof(const json_t *obj, zt_audit_proof *p, zt_err *e)
{
	const json_t *v = json_object_get(obj, "proof");
	size_t i, n, len;
	char what[32];
	int r;

	if (json_is_null(v))
		return 0; /* the test data writes an empty proof as null */
	if (!json_is_array(v))
		return zt_err_rule(e, ZT_EPARSE, "proof-type",
				   "proof file: \"proof\" is %s; it must be an array of "
				   "base64 hashes (or null or [] for an empty proof)",
				   json_kind(v));
	n = json_array_size(v);
	if (n > ZT_MERKLE_MAX_PROOF)
		return zt_err_rule(e, ZT_EPARSE, "proof-count",
				   "proof file: \"proof\" has %zu hashes; a proof in a tree of "
				   "up to 2^64 leaves has at most %d (RFC 9162 2.1.3): check "
				   "that this is the file `zt audit prove` or `zt audit "
				   "consistency` printed",
				   n, ZT_MERKLE_MAX_PROOF);
	for (i = 0; i < n; i++) {
		snprintf(what, sizeof what, "\"proof\"[%zu]", i);
		if ((r = decode_hash(json_array_get(v, i), what, 1, p->proof[i], &len, e)) != 0)
			return r;
	}
	p->n = n;
	return 0;
}

/* Which members are there: unknown ones are refused here. */
static int scan_members(json_t *obj, unsigned *seen, zt_err *e)
{
	const struct member *m;
	const char *key;
	json_t *v;
	char q[80];

	*seen = 0;
	json_object_foreach(obj, key, v) {
		if (!(m = member_find(key))) {
			zt_quote(q, sizeof q, key, strlen(key));
			return zt_err_rule(e, ZT_EPARSE, "proof-member",
					   "proof file: unknown member \"%s\"; " PROOF_SHAPE_HINT
					   " (names are case-sensitive): remove it or fix its name",
					   q);
		}
		if (m->set != M_BOTH)
			*seen |= m->set;
	}
	return 0;
}

static int need(const json_t *obj, const char *kind, const char *name, zt_err *e)
{
	if (json_object_get(obj, name))
		return 0;
	return zt_err_rule(e, ZT_EPARSE, "proof-missing",
			   "proof file: the %s proof has no \"%s\"; " PROOF_SHAPE_HINT, kind,
			   name);
}

int zt_audit_proof_parse(const char *text, size_t len, zt_audit_proof *out, zt_err *e)
{
	static const char *const incl[] = {"leafIdx", "treeSize", "root", "leafHash", "proof"};
	static const char *const cons[] = {"size1", "size2", "root1", "root2", "proof"};
	zt_audit_proof p;
	json_error_t je;
	json_t *doc = NULL;
	char near[JSON_ERROR_TEXT_LENGTH];
	unsigned seen;
	size_t i;
	int r;

	memset(out, 0, sizeof *out);
	memset(&p, 0, sizeof p);
	if (len > ZT_PROOF_FILE_MAX) {
		r = zt_err_rule(e, ZT_ELIMIT, "proof-size",
				"proof file: %zu bytes, more than the %d a proof file can "
				"need; give the file `zt audit prove` or `zt audit "
				"consistency` printed",
				len, ZT_PROOF_FILE_MAX);
		goto out;
	}
	/* JSON_REJECT_DUPLICATES: RFC 8259 4 leaves repeated names to each reader */
	doc = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
	if (!doc) {
		/* jansson quotes the offending input: keep it printable */
		zt_quote(near, sizeof near, je.text, strnlen(je.text, sizeof je.text));
		if (json_error_code(&je) == json_error_numeric_overflow)
			r = zt_err_rule(e, ZT_EPARSE, "proof-integer",
					"proof file: line %d, column %d: %s; tree sizes and "
					"leaf indexes must be at most 9223372036854775807 "
					"(2^63-1)",
					je.line, je.column, near);
		else if (json_error_code(&je) == json_error_duplicate_key)
			r = zt_err_rule(e, ZT_EPARSE, "proof-json",
					"proof file: line %d, column %d: %s; each member may "
					"appear once (two would let two readers see two "
					"different proofs): remove the repeated one",
					je.line, je.column, near);
		else
			r = zt_err_rule(e, ZT_EPARSE, "proof-json",
					"proof file: not valid JSON at line %d, column %d: %s; "
					"a proof file is one JSON object as `zt audit prove` "
					"prints it",
					je.line, je.column, near);
		goto out;
	}
	if (!json_is_object(doc)) {
		r = zt_err_rule(e, ZT_EPARSE, "proof-type",
				"proof file: the document is %s; it must be one JSON object: "
				PROOF_SHAPE_HINT,
				json_kind(doc));
		goto out;
	}
	if ((r = scan_members(doc, &seen, e)) != 0)
		goto out;
	if (seen == M_BOTH) {
		r = zt_err_rule(e, ZT_EPARSE, "proof-kind",
				"proof file: mixes inclusion members (leafIdx, treeSize, root, "
				"leafHash) with consistency members (size1, size2, root1, "
				"root2); a file holds one proof: " PROOF_SHAPE_HINT);
		goto out;
	}
	if (seen == 0) {
		r = zt_err_rule(e, ZT_EPARSE, "proof-kind",
				"proof file: neither an inclusion nor a consistency proof; "
				PROOF_SHAPE_HINT);
		goto out;
	}
	if (seen == M_INCLUSION) {
		p.kind = ZT_PROOF_INCLUSION;
		for (i = 0; i < sizeof incl / sizeof incl[0]; i++)
			if ((r = need(doc, "inclusion", incl[i], e)) != 0)
				goto out;
		if ((r = get_u64(doc, "leafIdx", &p.index, e)) != 0 ||
		    (r = get_u64(doc, "treeSize", &p.size, e)) != 0 ||
		    (r = get_hash(doc, "root", p.root, &p.root_len, e)) != 0 ||
		    (r = get_hash(doc, "leafHash", p.leaf, &p.leaf_len, e)) != 0)
			goto out;
	} else {
		p.kind = ZT_PROOF_CONSISTENCY;
		for (i = 0; i < sizeof cons / sizeof cons[0]; i++)
			if ((r = need(doc, "consistency", cons[i], e)) != 0)
				goto out;
		if ((r = get_u64(doc, "size1", &p.size1, e)) != 0 ||
		    (r = get_u64(doc, "size2", &p.size2, e)) != 0 ||
		    (r = get_hash(doc, "root1", p.root1, &p.root1_len, e)) != 0 ||
		    (r = get_hash(doc, "root2", p.root, &p.root_len, e)) != 0)
			goto out;
	}
	if ((r = get_proof(doc, &p, e)) != 0)
		goto out;
	*out = p;
	r = 0;
out:
	json_decref(doc);
	return r;
}

/* Checks what format and check rely on, for structs not made by parse. */
static int proof_sane(const zt_audit_proof *p, zt_err *e)
{
	if (p->kind != ZT_PROOF_INCLUSION && p->kind != ZT_PROOF_CONSISTENCY)
		return zt_err_set(e, ZT_EINVAL, "proof: unknown kind %d (neither inclusion "
				  "nor consistency); parse the proof file first", (int)p->kind);
	if (p->n > ZT_MERKLE_MAX_PROOF)
		return zt_err_set(e, ZT_EINVAL, "proof: %zu hashes, more than the %d any "
				  "RFC 9162 proof has", p->n, ZT_MERKLE_MAX_PROOF);
	if (p->root_len > ZT_HASH_LEN || p->leaf_len > ZT_HASH_LEN ||
	    p->root1_len > ZT_HASH_LEN)
		return zt_err_set(e, ZT_EINVAL, "proof: a hash length is over %d bytes",
				  ZT_HASH_LEN);
	return 0;
}

static int put_u64(zt_buf *out, const char *name, uint64_t v, zt_err *e)
{
	/* what we write must read back: parse takes JSON integers up to 2^63-1 */
	if (v > (uint64_t)INT64_MAX)
		return zt_err_set(e, ZT_EINVAL, "proof: \"%s\" is %" PRIu64 ", over the "
				  "2^63-1 a proof file can carry", name, v);
	return zt_buf_appendf(out, e, "  \"%s\": %" PRIu64 ",\n", name, v);
}

/* One base64 hash: `indent"name": "..."end` or, without a name, `indent"..."end`. */
static int put_hash(zt_buf *out, const char *indent, const char *name, const uint8_t *h,
		    size_t n, const char *end, zt_err *e)
{
	int r;

	if (name)
		r = zt_buf_appendf(out, e, "%s\"%s\": \"", indent, name);
	else
		r = zt_buf_appendf(out, e, "%s\"", indent);
	if (r != 0 || (r = zt_base64_encode(h, n, 0, out, e)) != 0)
		return r;
	return zt_buf_appendf(out, e, "\"%s\n", end);
}

int zt_audit_proof_format(const zt_audit_proof *p, zt_buf *out, zt_err *e)
{
	size_t start = out->len, i;
	int incl = p->kind == ZT_PROOF_INCLUSION;
	int r;

	if ((r = proof_sane(p, e)) != 0)
		return r;
	if ((r = zt_buf_append(out, "{\n", 2, e)) != 0)
		goto out;
	if (incl) {
		if ((r = put_u64(out, "leafIdx", p->index, e)) != 0 ||
		    (r = put_u64(out, "treeSize", p->size, e)) != 0 ||
		    (r = put_hash(out, "  ", "root", p->root, p->root_len, ",", e)) != 0 ||
		    (r = put_hash(out, "  ", "leafHash", p->leaf, p->leaf_len, ",", e)) != 0)
			goto out;
	} else {
		if ((r = put_u64(out, "size1", p->size1, e)) != 0 ||
		    (r = put_u64(out, "size2", p->size2, e)) != 0 ||
		    (r = put_hash(out, "  ", "root1", p->root1, p->root1_len, ",", e)) != 0 ||
		    (r = put_hash(out, "  ", "root2", p->root, p->root_len, ",", e)) != 0)
			goto out;
	}
	if (p->n == 0) {
		r = zt_buf_append(out, "  \"proof\": []\n}\n", 16, e);
		goto out;
	}
	if ((r = zt_buf_append(out, "  \"proof\": [\n", 13, e)) != 0)
		goto out;
	for (i = 0; i < p->n; i++)
		if ((r = put_hash(out, "    ", NULL, p->proof[i], ZT_HASH_LEN,
				  i + 1 < p->n ? "," : "", e)) != 0)
			goto out;
	r = zt_buf_append(out, "  ]\n}\n", 6, e);
out:
	if (r != 0)
		out->len = start; /* nothing half-written is left behind */
	return r;
}

int zt_audit_proof_check(const zt_audit_proof *p, zt_err *e)
{
	int r;

	if ((r = proof_sane(p, e)) != 0)
		return r;
	if (p->kind == ZT_PROOF_INCLUSION)
		return zt_merkle_verify_inclusion(p->index, p->size, p->leaf, p->leaf_len,
						  (const uint8_t(*)[ZT_HASH_LEN])p->proof, p->n,
						  p->root, p->root_len, e);
	return zt_merkle_verify_consistency(p->size1, p->size2, p->root1, p->root1_len, p->root,
					    p->root_len,
					    (const uint8_t(*)[ZT_HASH_LEN])p->proof, p->n, e);
}
