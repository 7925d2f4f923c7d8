/*
 * Unit tests: JOSE (crypto/jwk.c, jws.c, jwt.c): JWK Sets in, compact JWS
 * verified, JWT claims checked, and zt's own signing and JWK export.
 *
 * The evidence comes from outside zt: every case of Wycheproof's JWS and JWK
 * files (tests/vectors/wycheproof; the cases that are wrong upstream are
 * listed by tcId with the reason, and counted), the RFCs' own examples
 * (RFC 7515 A, RFC 7520 4, RFC 8037 A: tests/vectors/jose), and tokens made
 * here with OpenSSL directly (test_sign), never with zt_jws_sign, for the
 * attacks of RFC 8725. The round trips then hold zt's signer and JWK export
 * to zt's verifier and to OpenSSL.
 *
 * Attacks assert the rule tag of the refusal (zt_err.rule), so a token
 * refused for the wrong reason (say a syntax error hiding a missing check)
 * fails the test.
 */
#include "testutil.h"

#include "core/core.h"
#include "crypto/crypto.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

/* keys made once in main(): RSA key generation is slow */
static EVP_PKEY *k_p256, *k_p256b, *k_p384, *k_p521, *k_ed, *k_rsa, *k_rsa1024, *k_rsa2047;

/* an HMAC secret of 64 bytes (enough for HS512) */
static const uint8_t HKEY[64] = "zt test HMAC secret (zero-padded to 64 bytes, for HS512)";

#define T0 1700000000 /* "now" of the JWT tests */

/* ---- helpers: base64url, signing with OpenSSL directly ------------------- */

/* base64url without padding (RFC 7515 2), written here, not zt's encoder. Caller frees. */
static char *b64u(const void *data, size_t n)
{
	static const char t[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	const uint8_t *s = data;
	char *o = malloc(n / 3 * 4 + 5), *q = o;
	size_t i;

	assert_non_null(o);
	for (i = 0; i + 2 < n; i += 3) {
		uint32_t v = (uint32_t)s[i] << 16 | (uint32_t)s[i + 1] << 8 | s[i + 2];

		*q++ = t[v >> 18];
		*q++ = t[(v >> 12) & 63];
		*q++ = t[(v >> 6) & 63];
		*q++ = t[v & 63];
	}
	if (i < n) {
		uint32_t v = (uint32_t)s[i] << 16 | (i + 1 < n ? (uint32_t)s[i + 1] << 8 : 0);

		*q++ = t[v >> 18];
		*q++ = t[(v >> 12) & 63];
		if (i + 1 < n)
			*q++ = t[(v >> 6) & 63];
	}
	*q = '\0';
	return o;
}

static char *b64u_str(const char *s)
{
	return b64u(s, strlen(s));
}

static char *cat3(const char *a, const char *b, const char *c)
{
	char *s;

	assert_true(asprintf(&s, "%s.%s.%s", a, b, c) > 0);
	return s;
}

enum { K_HS, K_ES, K_RS, K_PS, K_ED };

static const struct tjwa {
	const char *name;
	int kind;
	const char *md;
	size_t field; /* ES: bytes of r and of s */
} tjwas[] = {
    {"HS256", K_HS, "SHA256", 0}, {"HS384", K_HS, "SHA384", 0}, {"HS512", K_HS, "SHA512", 0},
    {"ES256", K_ES, "SHA256", 32}, {"ES384", K_ES, "SHA384", 48}, {"ES512", K_ES, "SHA512", 66},
    {"RS256", K_RS, "SHA256", 0}, {"RS384", K_RS, "SHA384", 0}, {"RS512", K_RS, "SHA512", 0},
    {"PS256", K_PS, "SHA256", 0}, {"PS384", K_PS, "SHA384", 0}, {"PS512", K_PS, "SHA512", 0},
    {"EdDSA", K_ED, NULL, 0},
};

static const struct tjwa *tjwa(const char *name)
{
	for (size_t i = 0; i < sizeof tjwas / sizeof tjwas[0]; i++)
		if (strcmp(tjwas[i].name, name) == 0)
			return &tjwas[i];
	fail_msg("unknown test algorithm %s", name);
	return NULL;
}

/*
 * The signature of msg under alg (what is really used, whatever a header
 * says): key for the asymmetric ones, secret for HS*. ES* come out as
 * r || s (RFC 7518 3.4) unless der is set. Returns the length.
 */
static size_t test_sign(const char *alg, EVP_PKEY *key, const uint8_t *secret, size_t slen, int der,
			const void *msg, size_t n, uint8_t *sig, size_t cap)
{
	const struct tjwa *a = tjwa(alg);
	const EVP_MD *md = a->md ? EVP_get_digestbyname(a->md) : NULL;
	EVP_MD_CTX *m;
	EVP_PKEY_CTX *pc = NULL;
	size_t sl = cap;
	unsigned hl = 0;

	if (a->kind == K_HS) {
		assert_non_null(HMAC(md, secret, (int)slen, msg, n, sig, &hl));
		return hl;
	}
	assert_non_null(m = EVP_MD_CTX_new());
	assert_int_equal(EVP_DigestSignInit(m, &pc, md, NULL, key), 1);
	if (a->kind == K_RS)
		assert_true(EVP_PKEY_CTX_set_rsa_padding(pc, RSA_PKCS1_PADDING) > 0);
	if (a->kind == K_PS) {
		assert_true(EVP_PKEY_CTX_set_rsa_padding(pc, RSA_PKCS1_PSS_PADDING) > 0);
		assert_true(EVP_PKEY_CTX_set_rsa_mgf1_md(pc, md) > 0);
		assert_true(EVP_PKEY_CTX_set_rsa_pss_saltlen(pc, RSA_PSS_SALTLEN_DIGEST) > 0);
	}
	assert_int_equal(EVP_DigestSign(m, sig, &sl, msg, n), 1);
	EVP_MD_CTX_free(m);
	if (a->kind == K_ES && !der) {
		const uint8_t *p = sig;
		ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &p, (long)sl);
		uint8_t raw[132];

		assert_non_null(es);
		assert_int_equal(BN_bn2binpad(ECDSA_SIG_get0_r(es), raw, (int)a->field), (int)a->field);
		assert_int_equal(BN_bn2binpad(ECDSA_SIG_get0_s(es), raw + a->field, (int)a->field),
				 (int)a->field);
		ECDSA_SIG_free(es);
		sl = 2 * a->field;
		memcpy(sig, raw, sl);
	}
	return sl;
}

/* 1 if sig is key's alg signature of msg, checked with OpenSSL (not zt) */
static int test_verify(const char *alg, EVP_PKEY *key, const void *msg, size_t n, const uint8_t *sig,
		       size_t sl)
{
	const struct tjwa *a = tjwa(alg);
	const EVP_MD *md = a->md ? EVP_get_digestbyname(a->md) : NULL;
	EVP_MD_CTX *m = EVP_MD_CTX_new();
	EVP_PKEY_CTX *pc = NULL;
	uint8_t der[160];
	int ok;

	assert_non_null(m);
	assert_int_equal(EVP_DigestVerifyInit(m, &pc, md, NULL, key), 1);
	if (a->kind == K_PS) {
		assert_true(EVP_PKEY_CTX_set_rsa_padding(pc, RSA_PKCS1_PSS_PADDING) > 0);
		assert_true(EVP_PKEY_CTX_set_rsa_mgf1_md(pc, md) > 0);
		assert_true(EVP_PKEY_CTX_set_rsa_pss_saltlen(pc, RSA_PSS_SALTLEN_DIGEST) > 0);
	}
	if (a->kind == K_ES) {
		ECDSA_SIG *es = ECDSA_SIG_new();
		unsigned char *p = der;
		int dl;

		if (sl != 2 * a->field) {
			ECDSA_SIG_free(es);
			EVP_MD_CTX_free(m);
			return 0;
		}
		assert_int_equal(ECDSA_SIG_set0(es, BN_bin2bn(sig, (int)a->field, NULL),
						BN_bin2bn(sig + a->field, (int)a->field, NULL)),
				 1);
		dl = i2d_ECDSA_SIG(es, &p);
		ECDSA_SIG_free(es);
		assert_true(dl > 0);
		sig = der;
		sl = (size_t)dl;
	}
	ok = EVP_DigestVerify(m, sig, sl, msg, n) == 1;
	EVP_MD_CTX_free(m);
	return ok;
}

/* the base64url signature of signing input "h.p" */
static char *sig_of(const char *alg, EVP_PKEY *key, const uint8_t *secret, size_t slen, int der,
		    const char *h64, const char *p64)
{
	uint8_t sig[1024];
	char *in, *s;
	size_t sl;

	assert_true(asprintf(&in, "%s.%s", h64, p64) > 0);
	sl = test_sign(alg, key, secret, slen, der, in, strlen(in), sig, sizeof sig);
	s = b64u(sig, sl);
	free(in);
	return s;
}

/* a compact JWS of header and payload texts, signed with alg and key (or HKEY for HS*) */
static char *tok_sign(const char *alg, EVP_PKEY *key, const char *header, const char *payload)
{
	char *h = b64u_str(header), *p = b64u_str(payload), *s, *t;

	s = sig_of(alg, key, HKEY, sizeof HKEY, 0, h, p);
	t = cat3(h, p, s);
	free(h);
	free(p);
	free(s);
	return t;
}

/*
 * An EC key by the legacy EVP_PKEY_EC route, as zt_key_generate makes them:
 * with zt_crypto_init's built-in EC method in force (testutil.c) the
 * provider route (EVP_PKEY_Q_keygen "EC") finds no group.
 */
static EVP_PKEY *gen_ec(int nid)
{
	EVP_PKEY_CTX *c = EVP_PKEY_CTX_new_id(EVP_PKEY_EC, NULL);
	EVP_PKEY *k = NULL;

	assert_non_null(c);
	assert_true(EVP_PKEY_keygen_init(c) > 0);
	assert_true(EVP_PKEY_CTX_set_ec_paramgen_curve_nid(c, nid) > 0);
	assert_true(EVP_PKEY_CTX_set_ec_param_enc(c, OPENSSL_EC_NAMED_CURVE) > 0);
	assert_true(EVP_PKEY_keygen(c, &k) > 0);
	EVP_PKEY_CTX_free(c);
	return k;
}

/* ---- helpers: sets and verification --------------------------------------- */

/* zt's JWK of key's public part, plus kid and the members of extra (JSON text) */
static json_t *jwk_of(EVP_PKEY *k, const char *kid, const char *extra)
{
	json_t *o = json_object();
	zt_err e;

	assert_int_equal(zt_jwk_set_public(k, o, &e), 0);
	if (kid)
		json_object_set_new(o, "kid", json_string(kid));
	if (extra) {
		json_t *x = json_loads(extra, 0, NULL);

		assert_non_null(x);
		assert_int_equal(json_object_update(o, x), 0);
		json_decref(x);
	}
	return o;
}

static json_t *jwk_oct(const uint8_t *k, size_t n, const char *kid, const char *alg)
{
	char *s = b64u(k, n);
	json_t *o = json_pack("{s:s, s:s}", "kty", "oct", "k", s);

	free(s);
	if (kid)
		json_object_set_new(o, "kid", json_string(kid));
	if (alg)
		json_object_set_new(o, "alg", json_string(alg));
	return o;
}

/* {"keys": [the JWKs given, NULL-terminated; consumed]} as text, through zt_jwks_parse */
static int set_of(zt_jwks *s, int flags, zt_err *e, ...)
{
	json_t *keys = json_array(), *set, *k;
	char *text;
	va_list ap;
	int r;

	va_start(ap, e);
	while ((k = va_arg(ap, json_t *)))
		json_array_append_new(keys, k);
	va_end(ap);
	set = json_pack("{s:o}", "keys", keys);
	assert_non_null(text = json_dumps(set, JSON_COMPACT));
	memset(s, 0, sizeof *s);
	zt_err_clear(e);
	r = zt_jwks_parse(text, strlen(text), flags, s, e);
	free(text);
	json_decref(set);
	return r;
}

static int parse_text(const char *text, int flags, zt_jwks *s, zt_err *e)
{
	memset(s, 0, sizeof *s);
	zt_err_clear(e);
	return zt_jwks_parse(text, strlen(text), flags, s, e);
}

static int jws_check(const char *tok, size_t len, const zt_jwks *set, size_t max, zt_err *e)
{
	zt_jws j;
	int r;

	zt_err_clear(e);
	r = zt_jws_verify(tok, len, set, max, &j, e);
	if (r == 0) {
		assert_non_null(j.key);
		assert_non_null(j.header);
		assert_true(j.key->algs & (1u << j.alg));
		zt_jws_free(&j);
	}
	return r;
}

#define assert_jws_ok(tok, set)                                                                    \
	do {                                                                                       \
		zt_err e_;                                                                         \
		if (jws_check((tok), strlen(tok), (set), 0, &e_) != 0)                             \
			fail_msg("refused (%s): %s", e_.rule, e_.msg);                             \
	} while (0)

#define assert_jws_refused(tok, len, set, want)                                                    \
	do {                                                                                       \
		zt_err e_;                                                                         \
		if (jws_check((tok), (len), (set), 0, &e_) == 0)                                   \
			fail_msg("accepted, but should be refused with %s", (want));               \
		if (strcmp(e_.rule, (want)) != 0)                                                  \
			fail_msg("refused with rule \"%s\" (%s), expected %s", e_.rule, e_.msg, (want)); \
	} while (0)

#define assert_refused(tok, set, want) assert_jws_refused((tok), strlen(tok), (set), (want))

static json_t *load_vec(const char *rel)
{
	json_error_t je;
	size_t n;
	char *t = tu_read(tu_vector(rel), &n);
	json_t *v;

	if (!t)
		fail_msg("cannot read %s (run from the source tree or set ZT_SRCDIR)", tu_vector(rel));
	v = json_loadb(t, n, 0, &je);
	free(t);
	if (!v)
		fail_msg("%s: %s", rel, je.text);
	return v;
}

/* ---- Wycheproof --------------------------------------------------------------- */

/* Cases where the upstream answer is wrong, and what zt does instead. */
struct wp_defect {
	int tcid;
	int accepted; /* what zt does */
	const char *rule; /* its rule when it refuses */
	const char *why;
};

static const struct wp_defect jws_defects[] = {
    {346, 0, "jws-no-key",
     "RFC 7520 Figure 20 is PS384, but Wycheproof's copy of the key says \"alg\":\"PS256\" (RFC 7520 "
     "gives the key no alg); the key fixes the algorithm (RFC 8725 3.1), as the WrongPrimitive "
     "cases 331-340 of the same file require"},
    {350, 0, "jws-no-key", "as 346, with key_ops [\"verify\"]"},
    {347, 0, "jws-unknown-kid",
     "the key's \"alg\" is \"ES521\", which is no JWA name (RFC 7518 3.1: ES512 is ECDSA with P-521 "
     "and SHA-512), so the key is skipped; RFC 7520's own key (no alg) verifies the same token in "
     "test_rfc7520_section4_examples"},
    {351, 0, "jws-unknown-kid", "as 347, with key_ops [\"verify\"]"},
    {367, 1, "", "byte-identical to the valid tcId 357: the padding the case means to add is not there"},
    {370, 1, "", "byte-identical to the valid tcId 357, as 367"},
    {372, 0, "jws-syntax",
     "marked valid, but a '?' is inserted in the base64url header (not base64url, RFC 7515 2); its "
     "MAC is tcId 357's, over the text without the '?'"},
    {373, 0, "jws-syntax", "as 372, the '?' in the payload"},
};

/* json_web_key_test.json: JWK Set policies where zt chose otherwise (flagged Ambiguous or optional) */
static const struct wp_defect jwk_defects[] = {
    {1, 1, "",
     "MixedKeySet (flagged Ambiguous): zt accepts an HMAC secret beside public keys only when the "
     "caller passes ZT_JWKS_ALLOW_OCT (locally configured sets); without it the secret is skipped "
     "and the token refused (asserted below)"},
    {7, 1, "",
     "a ROCA-weak RSA modulus (CVE-2017-15361): zt checks the size (>= 2048 bits, RFC 7518 3.3), "
     "not for ROCA's structure; the signature itself is good"},
};

static const struct wp_defect *find_defect(const struct wp_defect *t, size_t n, int tcid)
{
	for (size_t i = 0; i < n; i++)
		if (t[i].tcid == tcid)
			return &t[i];
	return NULL;
}

static int group_flags(const json_t *key)
{
	const json_t *keys = json_object_get(key, "keys"), *k;
	size_t i;

	if (!keys)
		return json_is_string(json_object_get(key, "kty")) &&
			       strcmp(json_string_value(json_object_get(key, "kty")), "oct") == 0
			   ? ZT_JWKS_ALLOW_OCT
			   : 0;
	json_array_foreach (keys, i, k)
		if (group_flags(k))
			return ZT_JWKS_ALLOW_OCT;
	return 0;
}

/* 1 if the group's key (parsed with flags) accepts tok; *e says why not */
static int wp_accepts(const json_t *key, int flags, const char *tok, zt_err *e)
{
	zt_jwks set;
	int r;

	memset(&set, 0, sizeof set);
	zt_err_clear(e);
	r = zt_jwks_from_json(key, flags, &set, e);
	if (r == 0)
		r = jws_check(tok, strlen(tok), &set, 0, e);
	zt_jwks_free(&set);
	return r == 0;
}

struct wp_count {
	int total, as_expected, defects, wrong;
	int valid, valid_ok, invalid, invalid_ok;
};

static void wp_run(const char *rel, const struct wp_defect *defects, size_t ndefects,
		   struct wp_count *c)
{
	json_t *doc = load_vec(rel), *g, *t;
	size_t gi, ti;

	memset(c, 0, sizeof *c);
	json_array_foreach (json_object_get(doc, "testGroups"), gi, g) {
		/* asymmetric groups give "public"; HMAC groups only "private" (its public part is itself) */
		const json_t *key = json_object_get(g, "public") ? json_object_get(g, "public")
								 : json_object_get(g, "private");
		int flags = group_flags(key);

		json_array_foreach (json_object_get(g, "tests"), ti, t) {
			int tcid = (int)(json_is_integer(json_object_get(t, "tcId"))
						 ? json_integer_value(json_object_get(t, "tcId"))
						 : atoi(json_string_value(json_object_get(t, "tcId"))));
			const char *tok = json_string_value(json_object_get(t, "jws"));
			int valid = strcmp(json_string_value(json_object_get(t, "result")), "valid") == 0;
			const struct wp_defect *d = find_defect(defects, ndefects, tcid);
			zt_err e;
			int acc;

			assert_non_null(tok);
			acc = wp_accepts(key, flags, tok, &e);
			c->total++;
			if (valid) {
				c->valid++;
				c->valid_ok += acc;
			} else {
				c->invalid++;
				c->invalid_ok += !acc;
			}
			if (d) {
				c->defects++;
				if (acc != d->accepted || (!acc && strcmp(e.rule, d->rule) != 0)) {
					print_message("%s tcId %d: documented as %s (%s), zt %s (%s: %s)\n", rel,
						      tcid, d->accepted ? "accepted" : "refused", d->rule,
						      acc ? "accepts" : "refuses", e.rule, e.msg);
					c->wrong++;
				}
			} else if (acc == valid) {
				c->as_expected++;
			} else {
				print_message("%s tcId %d (%s, group %zu \"%s\"): result %s, but zt %s (%s: %s)\n",
					      rel, tcid, json_string_value(json_object_get(t, "comment")), gi,
					      json_string_value(json_object_get(g, "comment")),
					      valid ? "valid" : "invalid", acc ? "accepts" : "refuses", e.rule,
					      e.msg);
				c->wrong++;
			}
		}
	}
	assert_int_equal(c->total, (int)json_integer_value(json_object_get(doc, "numberOfTests")));
	json_decref(doc);
}

static void test_wycheproof_jws_every_case(void **state)
{
	struct wp_count c;
	size_t nd = sizeof jws_defects / sizeof jws_defects[0];

	(void)state;
	wp_run("wycheproof/json_web_signature_test.json", jws_defects, nd, &c);
	print_message("wycheproof JWS: %d cases: valid %d (zt accepts %d), invalid %d (zt refuses %d)\n",
		      c.total, c.valid, c.valid_ok, c.invalid, c.invalid_ok);
	print_message("wycheproof JWS: %d as expected + %d documented upstream defects = %d\n",
		      c.as_expected, c.defects, c.as_expected + c.defects);
	for (size_t i = 0; i < nd; i++)
		print_message("  tcId %d: zt %s%s%s: %s\n", jws_defects[i].tcid,
			      jws_defects[i].accepted ? "accepts" : "refuses (",
			      jws_defects[i].rule, jws_defects[i].accepted ? "" : ")", jws_defects[i].why);
	assert_int_equal(c.wrong, 0);
	assert_int_equal(c.total, 401);
	assert_int_equal(c.defects, (int)nd);
	assert_int_equal(c.as_expected + c.defects, 401);
}

/* the two "padding" cases really are tcId 357's bytes, so accepting them is right */
static void test_wycheproof_defects_are_what_the_table_says(void **state)
{
	json_t *doc = load_vec("wycheproof/json_web_signature_test.json"), *g, *t;
	const char *tok[400] = {0};
	size_t gi, ti;

	(void)state;
	json_array_foreach (json_object_get(doc, "testGroups"), gi, g)
		json_array_foreach (json_object_get(g, "tests"), ti, t) {
			json_int_t id = json_integer_value(json_object_get(t, "tcId"));

			if (id > 0 && id < 400)
				tok[id] = json_string_value(json_object_get(t, "jws"));
		}
	assert_non_null(tok[357]);
	assert_string_equal(tok[367], tok[357]);
	assert_string_equal(tok[370], tok[357]);
	/* 372/373: tcId 357 with one '?' added, the signature unchanged */
	for (int id = 372; id <= 373; id++) {
		char *q = strchr(tok[id], '?'), buf[200];

		assert_non_null(q);
		assert_true(strlen(tok[id]) < sizeof buf);
		memcpy(buf, tok[id], (size_t)(q - tok[id]));
		strcpy(buf + (q - tok[id]), q + 1);
		assert_string_equal(buf, tok[357]);
	}
	json_decref(doc);
}

/*
 * RFC 7520's keys in Wycheproof's groups 9-16 also carry private members;
 * zt ignores them: the "private" JWK verifies exactly as the "public" one,
 * except tcId 349, whose private JWK says key_ops ["sign, verify"] (one
 * string, a typo upstream), so it is no verification key.
 */
static void test_wycheproof_private_jwks_verify_as_public(void **state)
{
	json_t *doc = load_vec("wycheproof/json_web_signature_test.json"), *g, *t;
	size_t gi, ti;
	int n = 0, differ = 0;

	(void)state;
	json_array_foreach (json_object_get(doc, "testGroups"), gi, g) {
		const json_t *pub = json_object_get(g, "public"), *priv = json_object_get(g, "private");

		if (!pub)
			continue;
		json_array_foreach (json_object_get(g, "tests"), ti, t) {
			const char *tok = json_string_value(json_object_get(t, "jws"));
			int id = (int)json_integer_value(json_object_get(t, "tcId"));
			zt_err e;
			int a = wp_accepts(pub, 0, tok, &e), b = wp_accepts(priv, 0, tok, &e);

			n++;
			if (a != b) {
				differ++;
				assert_int_equal(id, 349);
				assert_true(a && !b);
			}
		}
	}
	print_message("wycheproof JWS: %d cases run with both the private and the public JWK, %d differ "
		      "(tcId 349)\n",
		      n, differ);
	assert_int_equal(differ, 1);
	json_decref(doc);
}

static void test_wycheproof_jwk_sets(void **state)
{
	struct wp_count c;
	size_t nd = sizeof jwk_defects / sizeof jwk_defects[0];
	json_t *doc = load_vec("wycheproof/json_web_key_test.json"), *g0;
	zt_err e;

	(void)state;
	wp_run("wycheproof/json_web_key_test.json", jwk_defects, nd, &c);
	print_message("wycheproof JWK: %d cases: valid %d (zt accepts %d), invalid %d (zt refuses %d)\n",
		      c.total, c.valid, c.valid_ok, c.invalid, c.invalid_ok);
	print_message("wycheproof JWK: %d as expected + %d where zt's policy differs = %d\n",
		      c.as_expected, c.defects, c.as_expected + c.defects);
	for (size_t i = 0; i < nd; i++)
		print_message("  tcId %d: zt accepts: %s\n", jwk_defects[i].tcid, jwk_defects[i].why);
	assert_int_equal(c.wrong, 0);
	assert_int_equal(c.total, 26);
	assert_int_equal(c.as_expected + c.defects, 26);
	/* the mixed set, fetched from elsewhere (no ZT_JWKS_ALLOW_OCT): the secret is skipped */
	g0 = json_array_get(json_object_get(doc, "testGroups"), 0);
	assert_string_equal(json_string_value(json_object_get(g0, "comment")), "jws_mixedSymmetryKeyset");
	assert_false(wp_accepts(json_object_get(g0, "private"), 0,
				json_string_value(json_object_get(
				    json_array_get(json_object_get(g0, "tests"), 0), "jws")),
				&e));
	assert_string_equal(e.rule, "jws-unknown-kid");
	/*
	 * tcId 4 (DuplicateKid) is refused, but not for its duplicate kid: its
	 * second key's "k" has stray bits (non-canonical base64url), which fails
	 * the set. zt's duplicate-kid behaviour is test_kid_selects_the_key's.
	 */
	g0 = json_array_get(json_object_get(doc, "testGroups"), 2);
	assert_string_equal(json_string_value(json_object_get(g0, "comment")), "jws_duplicate_kid");
	{
		zt_jwks set;

		memset(&set, 0, sizeof set);
		assert_int_not_equal(zt_jwks_from_json(json_object_get(g0, "private"), ZT_JWKS_ALLOW_OCT, &set, &e), 0);
		assert_non_null(strstr(e.msg, "non-canonical"));
		zt_jwks_free(&set);
	}
	json_decref(doc);
}

/* ---- the RFCs' examples ----------------------------------------------------------- */

static int rfc_run(const char *rel)
{
	json_t *doc = load_vec(rel), *c;
	size_t i;
	int n = 0;

	json_array_foreach (json_object_get(doc, "cases"), i, c) {
		const char *name = json_string_value(json_object_get(c, "name"));
		const char *tok = json_string_value(json_object_get(c, "jws"));
		int flags = json_is_true(json_object_get(c, "allow_oct")) ? ZT_JWKS_ALLOW_OCT : 0;
		int valid = strcmp(json_string_value(json_object_get(c, "result")), "valid") == 0;
		zt_jwks set;
		zt_jws j;
		zt_err e;
		int r;

		memset(&set, 0, sizeof set);
		if (zt_jwks_from_json(json_object_get(c, "jwk"), flags, &set, &e) != 0)
			fail_msg("%s %s: the key does not load: %s", rel, name, e.msg);
		assert_int_equal(set.skipped, 0);
		r = zt_jws_verify(tok, strlen(tok), &set, 0, &j, &e);
		if (valid) {
			const char *want = json_string_value(json_object_get(c, "payload"));
			char *bad = strdup(tok), *last;

			if (r != 0)
				fail_msg("%s %s: refused (%s): %s", rel, name, e.rule, e.msg);
			assert_int_equal(j.alg, zt_jwa_from_name(json_string_value(json_object_get(c, "alg"))));
			assert_ptr_equal(j.key, &set.keys[0]);
			assert_int_equal(j.payload.len, strlen(want));
			assert_memory_equal(j.payload.p, want, strlen(want));
			zt_jws_free(&j);
			/* and one changed bit of the signature's first byte is caught */
			last = strrchr(bad, '.') + 1;
			*last = *last == 'A' ? 'Q' : 'A';
			assert_refused(bad, &set, "jws-signature");
			free(bad);
		} else {
			if (r == 0)
				fail_msg("%s %s: accepted, must be refused", rel, name);
			print_message("%s %s: refused (%s): %s\n", rel, name, e.rule, e.msg);
		}
		zt_jwks_free(&set);
		n++;
	}
	json_decref(doc);
	return n;
}

static void test_rfc7515_appendix_a_examples(void **state)
{
	(void)state;
	assert_int_equal(rfc_run("jose/rfc7515_appendix_a.json"), 5);
}

static void test_rfc7520_section4_examples(void **state)
{
	(void)state;
	assert_int_equal(rfc_run("jose/rfc7520_section4.json"), 4);
}

static void test_rfc8037_ed25519_example(void **state)
{
	(void)state;
	assert_int_equal(rfc_run("jose/rfc8037_appendix_a.json"), 1);
}

/* the RFC 7515 A.1-A.3 tokens are JWTs (iss "joe", exp 1300819380): the claim checks on them */
static void test_rfc7515_examples_as_jwts(void **state)
{
	json_t *doc = load_vec("jose/rfc7515_appendix_a.json"), *c;
	size_t i;
	int n = 0;

	(void)state;
	json_array_foreach (json_object_get(doc, "cases"), i, c) {
		const char *tok = json_string_value(json_object_get(c, "jws"));
		int flags = json_is_true(json_object_get(c, "allow_oct")) ? ZT_JWKS_ALLOW_OCT : 0;
		zt_jwt_rules rules = {.issuer = "joe", .now = 1300819380 - 3600, .leeway = 0};
		zt_jwks set;
		zt_jwt t;
		zt_err e;

		if (strcmp(json_string_value(json_object_get(c, "result")), "valid") != 0)
			continue;
		memset(&set, 0, sizeof set);
		assert_int_equal(zt_jwks_from_json(json_object_get(c, "jwk"), flags, &set, &e), 0);
		if (strcmp(json_string_value(json_object_get(c, "alg")), "ES512") == 0) {
			/* A.4's payload is "Payload": a JWS, not a JWT */
			assert_int_not_equal(zt_jwt_verify(tok, strlen(tok), &set, &rules, &t, &e), 0);
			assert_string_equal(e.rule, "jwt-claims");
		} else {
			if (zt_jwt_verify(tok, strlen(tok), &set, &rules, &t, &e) != 0)
				fail_msg("%s: %s (%s)", json_string_value(json_object_get(c, "name")), e.msg,
					 e.rule);
			assert_string_equal(t.iss, "joe");
			assert_null(t.sub);
			assert_int_equal(t.exp, 1300819380);
			assert_true(json_is_true(json_object_get(t.claims, "http://example.com/is_root")));
			zt_jwt_free(&t);
			/* expired: at exp exactly, and now (by the clock) */
			rules.now = 1300819380;
			assert_int_not_equal(zt_jwt_verify(tok, strlen(tok), &set, &rules, &t, &e), 0);
			assert_string_equal(e.rule, "jwt-exp");
			rules.now = 0;
			rules.leeway = -1;
			assert_int_not_equal(zt_jwt_verify(tok, strlen(tok), &set, &rules, &t, &e), 0);
			assert_string_equal(e.rule, "jwt-exp");
			n++;
		}
		zt_jwks_free(&set);
	}
	assert_int_equal(n, 3);
	json_decref(doc);
}

/* ---- attacks: algorithms ---------------------------------------------------------- */

static void test_alg_none_in_any_spelling_refused(void **state)
{
	static const char *const algs[] = {"none", "None", "NONE", "nOnE", ""};
	zt_jwks set;
	zt_err e;

	(void)state;
	assert_int_equal(set_of(&set, ZT_JWKS_ALLOW_OCT, &e, jwk_of(k_p256, "k1", NULL),
				jwk_oct(HKEY, sizeof HKEY, "h1", NULL), NULL),
			 0);
	for (size_t i = 0; i < sizeof algs / sizeof algs[0]; i++) {
		char hdr[80], *h, *p = b64u_str("{\"sub\":\"admin\"}"), *t;

		snprintf(hdr, sizeof hdr, "{\"alg\":\"%s\"}", algs[i]);
		h = b64u_str(hdr);
		/* RFC 7515 A.5: unsecured, empty signature: no signature at all is a syntax error */
		t = cat3(h, p, "");
		assert_refused(t, &set, "jws-syntax");
		free(t);
		/* with a signature that would verify were the header's alg believed */
		t = tok_sign("HS256", NULL, hdr, "{\"sub\":\"admin\"}");
		assert_refused(t, &set, "jws-alg");
		free(t);
		t = tok_sign("ES256", k_p256, hdr, "{\"sub\":\"admin\"}");
		assert_refused(t, &set, "jws-alg");
		free(t);
		free(h);
		free(p);
	}
	/* no alg at all, alg not a string, names close to real ones */
	{
		static const char *const hdrs[] = {"{}", "{\"alg\":null}", "{\"alg\":256}",
						   "{\"alg\":[\"ES256\"]}", "{\"alg\":\"es256\"}",
						   "{\"alg\":\"ES256 \"}", "{\"alg\":\"ES256\\u0000\"}",
						   "{\"alg\":\"ES\"}"};

		for (size_t i = 0; i < sizeof hdrs / sizeof hdrs[0]; i++) {
			char *t = tok_sign("ES256", k_p256, hdrs[i], "{}");
			zt_err e2;

			assert_int_not_equal(jws_check(t, strlen(t), &set, 0, &e2), 0);
			/* NUL inside a JSON string is refused by the parser first */
			assert_string_equal(e2.rule, i == 6 ? "jws-syntax" : "jws-alg");
			free(t);
		}
	}
	zt_jwks_free(&set);
}

/* HS256 keyed with the bytes of the RSA public key that the set holds (RFC 8725 2.1) */
static void test_hmac_keyed_with_the_public_key_refused(void **state)
{
	uint8_t *der = NULL, nbytes[1024];
	BIO *bio = BIO_new(BIO_s_mem());
	BUF_MEM *pem;
	BIGNUM *n = NULL;
	json_t *jwk = jwk_of(k_rsa, "rsa", NULL);
	char *jwk_text = json_dumps(jwk, JSON_COMPACT);
	int dl;
	struct {
		const char *what;
		const uint8_t *p;
		size_t n;
	} secrets[4];

	(void)state;
	assert_int_equal(PEM_write_bio_PUBKEY(bio, k_rsa), 1);
	BIO_get_mem_ptr(bio, &pem);
	assert_true((dl = i2d_PUBKEY(k_rsa, &der)) > 0);
	assert_int_equal(EVP_PKEY_get_bn_param(k_rsa, OSSL_PKEY_PARAM_RSA_N, &n), 1);
	secrets[0].what = "PEM";
	secrets[0].p = (const uint8_t *)pem->data;
	secrets[0].n = pem->length;
	secrets[1].what = "DER";
	secrets[1].p = der;
	secrets[1].n = (size_t)dl;
	secrets[2].what = "JWK";
	secrets[2].p = (const uint8_t *)jwk_text;
	secrets[2].n = strlen(jwk_text);
	secrets[3].what = "modulus";
	secrets[3].p = nbytes;
	secrets[3].n = (size_t)BN_bn2bin(n, nbytes);
	for (int flags = 0; flags <= ZT_JWKS_ALLOW_OCT; flags += ZT_JWKS_ALLOW_OCT) {
		zt_jwks set;
		zt_err e;

		assert_int_equal(set_of(&set, flags, &e, json_deep_copy(jwk), NULL), 0);
		for (size_t i = 0; i < 4; i++)
			for (int kid = 0; kid < 2; kid++) {
				const char *hdr = kid ? "{\"alg\":\"HS256\",\"kid\":\"rsa\"}" : "{\"alg\":\"HS256\"}";
				char *h = b64u_str(hdr), *p = b64u_str("{\"sub\":\"admin\"}"), *s, *t;

				s = sig_of("HS256", NULL, secrets[i].p, secrets[i].n, 0, h, p);
				t = cat3(h, p, s);
				assert_refused(t, &set, "jws-no-key");
				free(h);
				free(p);
				free(s);
				free(t);
			}
		zt_jwks_free(&set);
	}
	BN_free(n);
	OPENSSL_free(der);
	BIO_free(bio);
	free(jwk_text);
	json_decref(jwk);
}

/* a key whose JWK names its alg verifies that alg only (RFC 8725 3.1) */
static void test_alg_fixed_by_the_keys_jwk_alg(void **state)
{
	zt_jwks set;
	zt_err e;
	char *ps, *rs;

	(void)state;
	ps = tok_sign("PS256", k_rsa, "{\"alg\":\"PS256\",\"kid\":\"r\"}", "{}");
	rs = tok_sign("RS256", k_rsa, "{\"alg\":\"RS256\",\"kid\":\"r\"}", "{}");
	/* control: without "alg" an RSA key verifies both */
	assert_int_equal(set_of(&set, 0, &e, jwk_of(k_rsa, "r", NULL), NULL), 0);
	assert_jws_ok(ps, &set);
	assert_jws_ok(rs, &set);
	zt_jwks_free(&set);
	assert_int_equal(set_of(&set, 0, &e, jwk_of(k_rsa, "r", "{\"alg\":\"RS256\"}"), NULL), 0);
	assert_jws_ok(rs, &set);
	assert_refused(ps, &set, "jws-no-key");
	zt_jwks_free(&set);
	assert_int_equal(set_of(&set, 0, &e, jwk_of(k_rsa, "r", "{\"alg\":\"PS256\"}"), NULL), 0);
	assert_jws_ok(ps, &set);
	assert_refused(rs, &set, "jws-no-key");
	zt_jwks_free(&set);
	/* the same through zt_jwks_add_pkey's alg */
	memset(&set, 0, sizeof set);
	assert_int_equal(zt_jwks_add_pkey(&set, k_rsa, "r", ZT_JWA_PS256, &e), 0);
	assert_jws_ok(ps, &set);
	assert_refused(rs, &set, "jws-no-key");
	zt_jwks_free(&set);
	free(ps);
	free(rs);
}

/* the curve fixes the ECDSA algorithm: ES256 needs P-256, ES384 P-384, ES512 P-521 */
static void test_ecdsa_alg_must_match_the_curve(void **state)
{
	zt_jwks set;
	zt_err e;
	char *t;

	(void)state;
	assert_int_equal(set_of(&set, 0, &e, jwk_of(k_p384, NULL, NULL), NULL), 0);
	/* signed with the P-384 key and SHA-384, but the header says ES256 */
	t = tok_sign("ES384", k_p384, "{\"alg\":\"ES256\"}", "{}");
	assert_refused(t, &set, "jws-no-key");
	free(t);
	/* signed with the P-384 key and SHA-256 (ECDSA allows it; JWA does not) */
	{
		char *h = b64u_str("{\"alg\":\"ES256\"}"), *p = b64u_str("{}"), *s;
		uint8_t sig[256];
		char in[64];
		size_t sl;
		EVP_MD_CTX *m = EVP_MD_CTX_new();
		const uint8_t *q = sig;
		ECDSA_SIG *es;
		uint8_t raw[96];

		snprintf(in, sizeof in, "%s.%s", h, p);
		sl = sizeof sig;
		assert_int_equal(EVP_DigestSignInit(m, NULL, EVP_sha256(), NULL, k_p384), 1);
		assert_int_equal(EVP_DigestSign(m, sig, &sl, (const uint8_t *)in, strlen(in)), 1);
		EVP_MD_CTX_free(m);
		assert_non_null(es = d2i_ECDSA_SIG(NULL, &q, (long)sl));
		BN_bn2binpad(ECDSA_SIG_get0_r(es), raw, 48);
		BN_bn2binpad(ECDSA_SIG_get0_s(es), raw + 48, 48);
		ECDSA_SIG_free(es);
		s = b64u(raw, 96);
		t = cat3(h, p, s);
		assert_refused(t, &set, "jws-no-key");
		free(t);
		free(s);
		free(h);
		free(p);
	}
	t = tok_sign("ES384", k_p384, "{\"alg\":\"ES384\"}", "{}");
	assert_jws_ok(t, &set);
	free(t);
	zt_jwks_free(&set);
	/* an ES256 token against a set of only a P-384 key and a P-521 key */
	assert_int_equal(set_of(&set, 0, &e, jwk_of(k_p384, NULL, NULL), jwk_of(k_p521, NULL, NULL), NULL), 0);
	t = tok_sign("ES256", k_p256, "{\"alg\":\"ES256\"}", "{}");
	assert_refused(t, &set, "jws-no-key");
	free(t);
	t = tok_sign("ES512", k_p521, "{\"alg\":\"ES512\"}", "{}");
	assert_jws_ok(t, &set);
	free(t);
	/* EdDSA with an EC key's set, ES256 with an Ed25519 key */
	t = tok_sign("EdDSA", k_ed, "{\"alg\":\"EdDSA\"}", "{}");
	assert_refused(t, &set, "jws-no-key");
	free(t);
	zt_jwks_free(&set);
	assert_int_equal(set_of(&set, 0, &e, jwk_of(k_ed, NULL, NULL), NULL), 0);
	t = tok_sign("ES256", k_p256, "{\"alg\":\"ES256\"}", "{}");
	assert_refused(t, &set, "jws-no-key");
	free(t);
	zt_jwks_free(&set);
}

/* an HMAC key only where the caller allowed it, and only as long as its hash */
static void test_hmac_only_for_allowed_oct_keys(void **state)
{
	zt_jwks set;
	zt_err e;
	char *t = tok_sign("HS256", NULL, "{\"alg\":\"HS256\",\"kid\":\"h\"}", "{}");

	(void)state;
	/* from a JWKS fetched elsewhere: the secret is skipped */
	assert_int_equal(set_of(&set, 0, &e, jwk_oct(HKEY, sizeof HKEY, "h", "HS256"), NULL), 0);
	assert_int_equal(set.n, 0);
	assert_int_equal(set.skipped, 1);
	assert_refused(t, &set, "jws-unknown-kid");
	zt_jwks_free(&set);
	assert_int_equal(set_of(&set, ZT_JWKS_ALLOW_OCT, &e, jwk_oct(HKEY, sizeof HKEY, "h", "HS256"), NULL), 0);
	assert_int_equal(set.n, 1);
	assert_jws_ok(t, &set);
	zt_jwks_free(&set);
	/* 31 bytes are too few for HS256 (RFC 7518 3.2): skipped */
	assert_int_equal(set_of(&set, ZT_JWKS_ALLOW_OCT, &e, jwk_oct(HKEY, 31, "h", "HS256"), NULL), 0);
	assert_int_equal(set.n, 0);
	assert_int_equal(set.skipped, 1);
	zt_jwks_free(&set);
	/* 48 bytes without alg: HS256 and HS384, not HS512 */
	assert_int_equal(set_of(&set, ZT_JWKS_ALLOW_OCT, &e, jwk_oct(HKEY, 48, "h", NULL), NULL), 0);
	assert_int_equal(set.n, 2);
	zt_jwks_free(&set);
	/* an EC key labelled HS256 is no HMAC key */
	assert_int_equal(set_of(&set, ZT_JWKS_ALLOW_OCT, &e, jwk_of(k_p256, "h", "{\"alg\":\"HS256\"}"), NULL), 0);
	assert_int_equal(set.n, 0);
	assert_int_equal(set.skipped, 1);
	zt_jwks_free(&set);
	/* zt_jwks_add_secret's own limits */
	memset(&set, 0, sizeof set);
	assert_int_not_equal(zt_jwks_add_secret(&set, HKEY, 31, NULL, ZT_JWA_HS256, &e), 0);
	assert_string_equal(e.rule, "jwk-weak");
	assert_int_not_equal(zt_jwks_add_secret(&set, HKEY, 63, NULL, ZT_JWA_HS512, &e), 0);
	assert_string_equal(e.rule, "jwk-weak");
	assert_int_not_equal(zt_jwks_add_secret(&set, HKEY, 64, NULL, ZT_JWA_ES256, &e), 0);
	assert_string_equal(e.rule, "jwk-alg");
	assert_int_equal(zt_jwks_add_secret(&set, HKEY, 64, "h", ZT_JWA_HS512, &e), 0);
	free(t);
	t = tok_sign("HS512", NULL, "{\"alg\":\"HS512\",\"kid\":\"h\"}", "{}");
	assert_jws_ok(t, &set);
	free(t);
	t = tok_sign("HS256", NULL, "{\"alg\":\"HS256\",\"kid\":\"h\"}", "{}");
	assert_refused(t, &set, "jws-no-key");
	zt_jwks_free(&set);
	free(t);
}

/* ---- attacks: keys named or carried by the token ---------------------------------- */

static void test_kid_selects_the_key(void **state)
{
	zt_jwks set;
	zt_err e;
	char *t;

	(void)state;
	assert_int_equal(set_of(&set, 0, &e, jwk_of(k_p256, "a", NULL), jwk_of(k_p256b, "b", NULL), NULL), 0);
	t = tok_sign("ES256", k_p256, "{\"alg\":\"ES256\",\"kid\":\"a\"}", "{}");
	assert_jws_ok(t, &set);
	free(t);
	/* signed by a, naming b: only b is tried */
	t = tok_sign("ES256", k_p256, "{\"alg\":\"ES256\",\"kid\":\"b\"}", "{}");
	assert_refused(t, &set, "jws-signature");
	free(t);
	t = tok_sign("ES256", k_p256, "{\"alg\":\"ES256\",\"kid\":\"c\"}", "{}");
	assert_refused(t, &set, "jws-unknown-kid");
	free(t);
	t = tok_sign("ES256", k_p256, "{\"alg\":\"ES256\",\"kid\":\"A\"}", "{}");
	assert_refused(t, &set, "jws-unknown-kid");
	free(t);
	t = tok_sign("ES256", k_p256, "{\"alg\":\"ES256\",\"kid\":7}", "{}");
	assert_refused(t, &set, "jws-syntax");
	free(t);
	/* no kid: each key that allows the alg */
	t = tok_sign("ES256", k_p256b, "{\"alg\":\"ES256\"}", "{}");
	assert_jws_ok(t, &set);
	free(t);
	zt_jwks_free(&set);
	/*
	 * two keys with one kid (RFC 7517 4.5 allows it, e.g. for a key rolled
	 * over under the same name): each is tried, so both keys' tokens pass
	 */
	assert_int_equal(set_of(&set, 0, &e, jwk_of(k_p256, "d", NULL), jwk_of(k_p256b, "d", NULL), NULL), 0);
	t = tok_sign("ES256", k_p256, "{\"alg\":\"ES256\",\"kid\":\"d\"}", "{}");
	assert_jws_ok(t, &set);
	free(t);
	t = tok_sign("ES256", k_p256b, "{\"alg\":\"ES256\",\"kid\":\"d\"}", "{}");
	assert_jws_ok(t, &set);
	free(t);
	{
		EVP_PKEY *other = gen_ec(NID_X9_62_prime256v1);

		t = tok_sign("ES256", other, "{\"alg\":\"ES256\",\"kid\":\"d\"}", "{}");
		assert_refused(t, &set, "jws-signature");
		free(t);
		EVP_PKEY_free(other);
	}
	zt_jwks_free(&set);
}

/* without a kid at most 4 keys are tried (a bound on the work a token can cause) */
static void test_without_kid_at_most_four_keys_tried(void **state)
{
	EVP_PKEY *k[5];
	zt_jwks set;
	zt_err e;
	char *t;

	(void)state;
	for (int i = 0; i < 5; i++)
		assert_non_null(k[i] = gen_ec(NID_X9_62_prime256v1));
	assert_int_equal(set_of(&set, 0, &e, jwk_of(k[0], NULL, NULL), jwk_of(k[1], NULL, NULL),
				jwk_of(k[2], NULL, NULL), jwk_of(k[3], NULL, NULL), jwk_of(k[4], NULL, NULL),
				NULL),
			 0);
	t = tok_sign("ES256", k[3], "{\"alg\":\"ES256\"}", "{}");
	assert_jws_ok(t, &set);
	free(t);
	t = tok_sign("ES256", k[4], "{\"alg\":\"ES256\"}", "{}");
	assert_refused(t, &set, "jws-signature");
	free(t);
	zt_jwks_free(&set);
	for (int i = 0; i < 5; i++)
		EVP_PKEY_free(k[i]);
}

/* jwk, jku, x5u, x5c in the header bring the attacker's key: never used (RFC 8725 3.10) */
static void test_header_supplied_keys_ignored(void **state)
{
	EVP_PKEY *atk = gen_ec(NID_X9_62_prime256v1);
	json_t *ajwk = jwk_of(atk, "real", NULL);
	X509 *cert = tu_cert(atk, NULL, atk, "attacker", T0 - 3600, T0 + 86400, NULL);
	uint8_t *der = NULL;
	int dl = i2d_X509(cert, &der);
	char *std_b64, *hdrs[6], *aj = json_dumps(ajwk, JSON_COMPACT);
	zt_jwks set;
	zt_err e;
	unsigned char *b64 = malloc((size_t)dl * 2 + 4);

	(void)state;
	assert_true(dl > 0);
	assert_true(EVP_EncodeBlock(b64, der, dl) > 0); /* x5c is standard base64 (RFC 7515 4.1.6) */
	std_b64 = (char *)b64;
	assert_true(asprintf(&hdrs[0], "{\"alg\":\"ES256\",\"kid\":\"real\",\"jwk\":%s}", aj) > 0);
	assert_true(asprintf(&hdrs[1], "{\"alg\":\"ES256\",\"jwk\":%s}", aj) > 0);
	assert_true(asprintf(&hdrs[2], "{\"alg\":\"ES256\",\"jku\":\"https://attacker.example/jwks.json\"}") > 0);
	assert_true(asprintf(&hdrs[3], "{\"alg\":\"ES256\",\"kid\":\"real\",\"x5u\":\"https://attacker.example/c.pem\"}") > 0);
	assert_true(asprintf(&hdrs[4], "{\"alg\":\"ES256\",\"x5c\":[\"%s\"]}", std_b64) > 0);
	assert_true(asprintf(&hdrs[5], "{\"alg\":\"ES256\",\"kid\":\"real\",\"x5c\":[\"%s\"],\"jwk\":%s,"
				       "\"jku\":\"https://attacker.example/\"}", std_b64, aj) > 0);
	assert_int_equal(set_of(&set, 0, &e, jwk_of(k_p256, "real", NULL), NULL), 0);
	for (int i = 0; i < 6; i++) {
		char *t = tok_sign("ES256", atk, hdrs[i], "{\"sub\":\"admin\"}");

		assert_refused(t, &set, "jws-signature");
		free(t);
		/* the same headers on a token the set's key did sign: the extra members change nothing */
		t = tok_sign("ES256", k_p256, hdrs[i], "{\"sub\":\"admin\"}");
		assert_jws_ok(t, &set);
		free(t);
		free(hdrs[i]);
	}
	zt_jwks_free(&set);
	free(aj);
	free(b64);
	OPENSSL_free(der);
	X509_free(cert);
	json_decref(ajwk);
	EVP_PKEY_free(atk);
}

/* RFC 7515 4.1.11: zt implements no extension, so "crit" in any form is refused */
static void test_crit_and_b64_false_refused(void **state)
{
	static const char *const hdrs[] = {
	    "{\"alg\":\"ES256\",\"crit\":[\"exp\"],\"exp\":1}", "{\"alg\":\"ES256\",\"crit\":[]}",
	    "{\"alg\":\"ES256\",\"crit\":\"b64\",\"b64\":false}",
	    "{\"alg\":\"ES256\",\"b64\":false,\"crit\":[\"b64\"]}", "{\"alg\":\"ES256\",\"crit\":null}"};
	zt_jwks set;
	zt_err e;

	(void)state;
	assert_int_equal(set_of(&set, 0, &e, jwk_of(k_p256, NULL, NULL), NULL), 0);
	for (size_t i = 0; i < sizeof hdrs / sizeof hdrs[0]; i++) {
		char *t = tok_sign("ES256", k_p256, hdrs[i], "{}");

		assert_refused(t, &set, "jws-crit");
		free(t);
	}
	/*
	 * RFC 7797 b64:false without crit, signed over the unencoded payload: zt
	 * does not implement b64, so the payload part is read as base64url, and
	 * '{' is not base64url.
	 */
	{
		char *h = b64u_str("{\"alg\":\"ES256\",\"b64\":false}"), *in, *t, *s;
		uint8_t sig[128];
		size_t sl;

		assert_true(asprintf(&in, "%s.{\"sub\":\"admin\"}", h) > 0);
		sl = test_sign("ES256", k_p256, NULL, 0, 0, in, strlen(in), sig, sizeof sig);
		s = b64u(sig, sl);
		assert_true(asprintf(&t, "%s.%s", in, s) > 0);
		assert_refused(t, &set, "jws-syntax");
		free(t);
		free(s);
		free(in);
		free(h);
	}
	zt_jwks_free(&set);
}

/* ---- attacks: signature encodings ------------------------------------------------- */

static void test_signature_encodings_refused(void **state)
{
	const char *hdr = "{\"alg\":\"ES256\"}", *pl = "{\"sub\":\"x\"}";
	char *h = b64u_str(hdr), *p = b64u_str(pl), *s, *t, in[128];
	uint8_t sig[1024], mod[1024];
	size_t sl;
	zt_jwks set;
	zt_err e;

	(void)state;
	snprintf(in, sizeof in, "%s.%s", h, p);
	assert_int_equal(set_of(&set, ZT_JWKS_ALLOW_OCT, &e, jwk_of(k_p256, NULL, NULL), jwk_of(k_rsa, NULL, NULL),
				jwk_of(k_ed, NULL, NULL), jwk_oct(HKEY, sizeof HKEY, NULL, "HS256"), NULL),
			 0);
	/* ECDSA as DER, as OpenSSL makes it, instead of r || s */
	sl = test_sign("ES256", k_p256, NULL, 0, 1, in, strlen(in), sig, sizeof sig);
	s = b64u(sig, sl);
	t = cat3(h, p, s);
	assert_refused(t, &set, "jws-signature");
	free(t);
	free(s);
	/* r || s one byte short, one byte long (a zero in front, a zero behind) */
	sl = test_sign("ES256", k_p256, NULL, 0, 0, in, strlen(in), sig, sizeof sig);
	assert_int_equal(sl, 64);
	assert_true(test_verify("ES256", k_p256, in, strlen(in), sig, sl));
	s = b64u(sig, 63);
	t = cat3(h, p, s);
	assert_refused(t, &set, "jws-signature");
	free(t);
	free(s);
	mod[0] = 0;
	memcpy(mod + 1, sig, 64);
	s = b64u(mod, 65);
	t = cat3(h, p, s);
	assert_refused(t, &set, "jws-signature");
	free(t);
	free(s);
	sig[64] = 0;
	s = b64u(sig, 65);
	t = cat3(h, p, s);
	assert_refused(t, &set, "jws-signature");
	free(t);
	free(s);
	/* r and s swapped */
	memcpy(mod, sig + 32, 32);
	memcpy(mod + 32, sig, 32);
	s = b64u(mod, 64);
	t = cat3(h, p, s);
	assert_refused(t, &set, "jws-signature");
	free(t);
	free(s);
	/* the intact one, for contrast */
	s = b64u(sig, 64);
	t = cat3(h, p, s);
	assert_jws_ok(t, &set);
	free(t);
	free(s);
	free(h);
	/* RSA: a zero byte in front (257 bytes), the last byte dropped */
	h = b64u_str("{\"alg\":\"RS256\"}");
	snprintf(in, sizeof in, "%s.%s", h, p);
	sl = test_sign("RS256", k_rsa, NULL, 0, 0, in, strlen(in), sig, sizeof sig);
	assert_int_equal(sl, 256);
	mod[0] = 0;
	memcpy(mod + 1, sig, 256);
	s = b64u(mod, 257);
	t = cat3(h, p, s);
	assert_refused(t, &set, "jws-signature");
	free(t);
	free(s);
	s = b64u(sig, 255);
	t = cat3(h, p, s);
	assert_refused(t, &set, "jws-signature");
	free(t);
	free(s);
	/*
	 * RFC 8017 8.2.2: the signature is exactly k bytes. A signature whose
	 * first byte is 0 is the same integer without it, and OpenSSL alone
	 * accepts the shorter string: zt must not.
	 */
	{
		char plz[64], *p2 = NULL;
		int tries = 0;

		do {
			free(p2);
			snprintf(plz, sizeof plz, "{\"n\":%d}", tries++);
			p2 = b64u_str(plz);
			snprintf(in, sizeof in, "%s.%s", h, p2);
			sl = test_sign("RS256", k_rsa, NULL, 0, 0, in, strlen(in), sig, sizeof sig);
		} while (sig[0] != 0 && tries < 5000);
		assert_int_equal(sig[0], 0);
		print_message("RS256 signature with a leading zero byte after %d tries; OpenSSL alone %s "
			      "the 255-byte form\n",
			      tries, test_verify("RS256", k_rsa, in, strlen(in), sig + 1, 255) ? "accepts" : "refuses");
		s = b64u(sig + 1, 255);
		t = cat3(h, p2, s);
		assert_refused(t, &set, "jws-signature");
		free(t);
		free(s);
		s = b64u(sig, 256);
		t = cat3(h, p2, s);
		assert_jws_ok(t, &set);
		free(t);
		free(s);
		free(p2);
	}
	free(h);
	/* HMAC truncated to 16 bytes, EdDSA one byte short */
	h = b64u_str("{\"alg\":\"HS256\"}");
	snprintf(in, sizeof in, "%s.%s", h, p);
	sl = test_sign("HS256", NULL, HKEY, sizeof HKEY, 0, in, strlen(in), sig, sizeof sig);
	s = b64u(sig, 16);
	t = cat3(h, p, s);
	assert_refused(t, &set, "jws-signature");
	free(t);
	free(s);
	free(h);
	h = b64u_str("{\"alg\":\"EdDSA\"}");
	snprintf(in, sizeof in, "%s.%s", h, p);
	sl = test_sign("EdDSA", k_ed, NULL, 0, 0, in, strlen(in), sig, sizeof sig);
	assert_int_equal(sl, 64);
	s = b64u(sig, 63);
	t = cat3(h, p, s);
	assert_refused(t, &set, "jws-signature");
	free(t);
	free(s);
	s = b64u(sig, 64);
	t = cat3(h, p, s);
	assert_jws_ok(t, &set);
	free(t);
	free(s);
	free(h);
	free(p);
	zt_jwks_free(&set);
}

/* ---- attacks: the compact serialization ------------------------------------------- */

/* a valid token whose three parts all have a length that is not a multiple of 4 */
static char *odd_token(zt_jwks *set)
{
	zt_err e;
	char *t;

	/* header 25 bytes: 34 chars; payload 14: 19; signature 64: 86 */
	t = tok_sign("ES256", k_p256, "{\"alg\":\"ES256\",\"x\":\"abc\"}", "{\"sub\":\"abcd\"}");
	assert_int_equal(set_of(set, 0, &e, jwk_of(k_p256, NULL, NULL), NULL), 0);
	assert_jws_ok(t, set);
	return t;
}

static void test_base64url_strictness(void **state)
{
	zt_jwks set;
	char *good = odd_token(&set), buf[1024];
	const char *d1 = strchr(good, '.'), *d2 = strrchr(good, '.');
	size_t n = strlen(good), i1 = (size_t)(d1 - good), i2 = (size_t)(d2 - good);
	/* positions: end of header, start of payload, end of payload, start and end of signature */
	const size_t at[] = {i1, i1 + 1, i2, i2 + 1, n};
	static const char *const junk[] = {"=", "==", " ", "\n", "\r\n", "\t", "%3D", "+", "/", "\\", "\xc3\xa9"};

	(void)state;
	assert_true(i1 % 4 != 0 && (i2 - i1 - 1) % 4 != 0 && (n - i2 - 1) % 4 != 0);
	for (size_t a = 0; a < sizeof at / sizeof at[0]; a++)
		for (size_t j = 0; j < sizeof junk / sizeof junk[0]; j++) {
			snprintf(buf, sizeof buf, "%.*s%s%s", (int)at[a], good, junk[j], good + at[a]);
			assert_refused(buf, &set, "jws-syntax");
		}
	/* the standard alphabet's '+' and '/' for '-' and '_' */
	{
		char *c = strdup(good);
		int changed = 0;

		for (char *q = c; *q; q++)
			if (*q == '-' || *q == '_') {
				*q = *q == '-' ? '+' : '/';
				changed = 1;
			}
		if (changed)
			assert_refused(c, &set, "jws-syntax");
		free(c);
	}
	/* leading and trailing white space, a NUL inside */
	snprintf(buf, sizeof buf, " %s", good);
	assert_refused(buf, &set, "jws-syntax");
	snprintf(buf, sizeof buf, "%s\n", good);
	assert_refused(buf, &set, "jws-syntax");
	memcpy(buf, good, n + 1);
	buf[i1 + 3] = '\0';
	assert_jws_refused(buf, n, &set, "jws-syntax");
	/*
	 * non-canonical: the unused low bits of each part's last character set
	 * (2 of them for a length of 3 mod 4, 4 for 2 mod 4): same bytes, other text
	 */
	for (size_t a = 0; a < 3; a++) {
		size_t end = a == 0 ? i1 : a == 1 ? i2 : n, len = end - (a == 0 ? 0 : a == 1 ? i1 + 1 : i2 + 1);
		static const char al[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
		int v = (int)(strchr(al, good[end - 1]) - al);

		memcpy(buf, good, n + 1);
		assert_true(len % 4 == 2 || len % 4 == 3);
		buf[end - 1] = al[v | 1];
		assert_true(buf[end - 1] != good[end - 1]);
		assert_refused(buf, &set, "jws-syntax");
	}
	free(good);
	zt_jwks_free(&set);
}

static void test_compact_parts_count_and_emptiness(void **state)
{
	zt_jwks set;
	char *good = odd_token(&set), buf[1024];
	const char *d1 = strchr(good, '.'), *d2 = strrchr(good, '.');
	int i1 = (int)(d1 - good), i2 = (int)(d2 - good);

	(void)state;
	snprintf(buf, sizeof buf, "%s.", good);
	assert_refused(buf, &set, "jws-syntax");
	snprintf(buf, sizeof buf, "%s.%s", good, d2 + 1);
	assert_refused(buf, &set, "jws-syntax");
	snprintf(buf, sizeof buf, "%.*s", i2, good); /* two parts */
	assert_refused(buf, &set, "jws-syntax");
	snprintf(buf, sizeof buf, "%.*s", i1, good); /* one part */
	assert_refused(buf, &set, "jws-syntax");
	snprintf(buf, sizeof buf, "%s", d1); /* empty header */
	assert_refused(buf, &set, "jws-syntax");
	snprintf(buf, sizeof buf, "%.*s.", i2, good); /* empty signature */
	assert_refused(buf, &set, "jws-syntax");
	snprintf(buf, sizeof buf, "%.*s.%s", i1, good, d2); /* empty payload, signature of another */
	assert_refused(buf, &set, "jws-signature");
	assert_refused("..", &set, "jws-syntax");
	assert_refused(".", &set, "jws-syntax");
	assert_refused("", &set, "jws-syntax");
	assert_refused("....", &set, "jws-syntax");
	/* RFC 7515 allows an empty payload (Wycheproof's emptyPayload): a JWS, but no JWT */
	{
		char *t = tok_sign("ES256", k_p256, "{\"alg\":\"ES256\"}", "");
		zt_jwt_rules rules = {.exp_optional = 1};
		zt_jwt jt;
		zt_err e;

		assert_jws_ok(t, &set);
		assert_int_not_equal(zt_jwt_verify(t, strlen(t), &set, &rules, &jt, &e), 0);
		assert_string_equal(e.rule, "jwt-claims");
		free(t);
	}
	free(good);
	zt_jwks_free(&set);
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* a 1 MB token is refused by its length before any decoding */
static void test_oversized_token_refused_fast(void **state)
{
	size_t n = 1 << 20;
	char *big = malloc(n + 1), *t, pl[15100];
	zt_jwt_rules rules = {.exp_optional = 1};
	zt_jwks set;
	zt_jwt jt;
	zt_err e;
	double t0;

	(void)state;
	assert_int_equal(set_of(&set, 0, &e, jwk_of(k_p256, NULL, NULL), NULL), 0);
	memset(big, 'A', n);
	big[10] = '.';
	big[20] = '.';
	big[n] = '\0';
	t0 = now_s();
	for (int i = 0; i < 1000; i++)
		assert_jws_refused(big, n, &set, "jws-size");
	t0 = now_s() - t0;
	print_message("1000 refusals of a 1 MiB token: %.3f ms\n", t0 * 1000);
	assert_true(t0 < 0.5);
	assert_int_not_equal(zt_jwt_verify(big, n, &set, &rules, &jt, &e), 0);
	assert_string_equal(e.rule, "jws-size");
	free(big);
	/* the limit is ZT_JWS_MAX_DEFAULT bytes, or max_len: a good token of about 20 kB */
	strcpy(pl, "{\"pad\":\"");
	memset(pl + 8, 'a', 15000);
	strcpy(pl + 15008, "\"}");
	t = tok_sign("ES256", k_p256, "{\"alg\":\"ES256\"}", pl);
	assert_true(strlen(t) > ZT_JWS_MAX_DEFAULT);
	assert_refused(t, &set, "jws-size");
	assert_int_equal(jws_check(t, strlen(t), &set, strlen(t), &e), 0);
	assert_int_not_equal(jws_check(t, strlen(t), &set, strlen(t) - 1, &e), 0);
	assert_string_equal(e.rule, "jws-size");
	assert_int_not_equal(zt_jwt_verify(t, strlen(t), &set, &rules, &jt, &e), 0);
	assert_string_equal(e.rule, "jws-size");
	rules.max_len = strlen(t);
	assert_int_equal(zt_jwt_verify(t, strlen(t), &set, &rules, &jt, &e), 0);
	zt_jwt_free(&jt);
	free(t);
	zt_jwks_free(&set);
}

/* ---- attacks: JSON ---------------------------------------------------------------- */

static void test_deeply_nested_json_refused(void **state)
{
	size_t depth = 5000;
	char *deep = malloc(2 * depth + 64), *closed = malloc(2 * depth + 64), *t, *h, *p, *s;
	zt_jwt_rules rules = {.exp_optional = 1};
	zt_jwks set;
	zt_jwt jt;
	zt_err e;

	(void)state;
	assert_int_equal(set_of(&set, 0, &e, jwk_of(k_p256, NULL, NULL), NULL), 0);
	memset(deep, '[', depth);
	deep[depth] = '\0';
	memset(closed, '[', depth);
	memset(closed + depth, ']', depth);
	closed[2 * depth] = '\0';
	/* as the header, unclosed and closed (signed, so only the JSON can fail) */
	t = tok_sign("ES256", k_p256, deep, "{}");
	assert_refused(t, &set, "jws-syntax");
	free(t);
	t = tok_sign("ES256", k_p256, closed, "{}");
	assert_refused(t, &set, "jws-syntax");
	free(t);
	/* an object header with a member nested 100 deep (zt_json_parse stops at 64) */
	{
		char hdr[512], *q = hdr;

		q += sprintf(q, "{\"alg\":\"ES256\",\"x\":");
		for (int i = 0; i < 100; i++)
			*q++ = '[';
		for (int i = 0; i < 100; i++)
			*q++ = ']';
		strcpy(q, "}");
		t = tok_sign("ES256", k_p256, hdr, "{}");
		assert_refused(t, &set, "jws-syntax");
		free(t);
	}
	/* as the payload: the JWS is fine (its payload is bytes), the JWT is not */
	h = b64u_str("{\"alg\":\"ES256\"}");
	p = b64u_str(closed);
	s = sig_of("ES256", k_p256, NULL, 0, 0, h, p);
	t = cat3(h, p, s);
	{
		zt_jws j;

		assert_int_equal(zt_jws_verify(t, strlen(t), &set, 32768, &j, &e), 0);
		assert_int_equal(j.payload.len, 2 * depth);
		zt_jws_free(&j);
	}
	rules.max_len = 32768;
	assert_int_not_equal(zt_jwt_verify(t, strlen(t), &set, &rules, &jt, &e), 0);
	assert_string_equal(e.rule, "jwt-claims");
	free(t);
	free(s);
	free(p);
	free(h);
	t = tok_sign("ES256", k_p256, "{\"alg\":\"ES256\"}", deep);
	rules.max_len = 0;
	assert_int_not_equal(zt_jwt_verify(t, strlen(t), &set, &rules, &jt, &e), 0);
	assert_string_equal(e.rule, "jwt-claims");
	free(t);
	free(deep);
	free(closed);
	zt_jwks_free(&set);
}

static void test_duplicate_json_members_refused(void **state)
{
	static const char *const hdrs[] = {"{\"alg\":\"ES256\",\"alg\":\"none\"}",
					   "{\"alg\":\"none\",\"alg\":\"ES256\"}",
					   "{\"alg\":\"ES256\",\"alg\":\"ES256\"}",
					   "{\"alg\":\"ES256\",\"kid\":\"a\",\"kid\":\"b\"}"};
	zt_jwt_rules rules = {.issuer = "a", .now = T0};
	zt_jwks set;
	zt_jwt jt;
	zt_err e;
	char *t;

	(void)state;
	assert_int_equal(set_of(&set, 0, &e, jwk_of(k_p256, "a", NULL), jwk_of(k_p256b, "b", NULL), NULL), 0);
	for (size_t i = 0; i < sizeof hdrs / sizeof hdrs[0]; i++) {
		t = tok_sign("ES256", k_p256, hdrs[i], "{}");
		assert_refused(t, &set, "jws-syntax");
		free(t);
	}
	/* in the claims: {"iss":"a","iss":"b"} is no JWT (RFC 7519 4: MUST reject or take the last) */
	t = tok_sign("ES256", k_p256, "{\"alg\":\"ES256\"}", "{\"iss\":\"b\",\"iss\":\"a\",\"exp\":1800000000}");
	assert_jws_ok(t, &set);
	assert_int_not_equal(zt_jwt_verify(t, strlen(t), &set, &rules, &jt, &e), 0);
	assert_string_equal(e.rule, "jwt-claims");
	free(t);
	zt_jwks_free(&set);
}

/* ---- JWT claims ------------------------------------------------------------------- */

static zt_jwks jwt_set;

/* verifies a JWT of claims (JSON text) signed with k_p256 under rules; the rule tag, "" if accepted */
static const char *jwt_rule(const char *claims, const zt_jwt_rules *rules)
{
	static zt_err e;
	char *t = tok_sign("ES256", k_p256, "{\"alg\":\"ES256\",\"typ\":\"JWT\"}", claims);
	zt_jwt jt;
	int r;

	zt_err_clear(&e);
	r = zt_jwt_verify(t, strlen(t), &jwt_set, rules, &jt, &e);
	free(t);
	if (r == 0) {
		assert_non_null(jt.claims);
		zt_jwt_free(&jt);
		return "";
	}
	assert_true(e.rule[0] != '\0');
	return e.rule;
}

static int jwt_setup(void **state)
{
	zt_err e;

	(void)state;
	return set_of(&jwt_set, 0, &e, jwk_of(k_p256, NULL, NULL), NULL);
}

static int jwt_teardown(void **state)
{
	(void)state;
	zt_jwks_free(&jwt_set);
	return 0;
}

static void test_jwt_times_at_the_leeway_edges(void **state)
{
	zt_jwt_rules r = {.now = T0, .leeway = -1}; /* < 0: the default, 60 s */
	char c[256];

	(void)state;
	/* exp: valid while now < exp + leeway */
	snprintf(c, sizeof c, "{\"exp\":%d}", T0 - 59);
	assert_string_equal(jwt_rule(c, &r), "");
	snprintf(c, sizeof c, "{\"exp\":%d}", T0 - 60);
	assert_string_equal(jwt_rule(c, &r), "jwt-exp");
	snprintf(c, sizeof c, "{\"exp\":%d.5}", T0 - 60);
	assert_string_equal(jwt_rule(c, &r), "");
	/* nbf: valid once now + leeway >= nbf */
	snprintf(c, sizeof c, "{\"exp\":%d,\"nbf\":%d}", T0 + 600, T0 + 60);
	assert_string_equal(jwt_rule(c, &r), "");
	snprintf(c, sizeof c, "{\"exp\":%d,\"nbf\":%d}", T0 + 600, T0 + 61);
	assert_string_equal(jwt_rule(c, &r), "jwt-nbf");
	/* iat in the future, beyond the leeway */
	snprintf(c, sizeof c, "{\"exp\":%d,\"iat\":%d}", T0 + 600, T0 + 60);
	assert_string_equal(jwt_rule(c, &r), "");
	snprintf(c, sizeof c, "{\"exp\":%d,\"iat\":%d}", T0 + 600, T0 + 61);
	assert_string_equal(jwt_rule(c, &r), "jwt-iat");
	/* an explicit leeway of 0 is none at all (not the default) */
	r.leeway = 0;
	snprintf(c, sizeof c, "{\"exp\":%d}", T0 + 1);
	assert_string_equal(jwt_rule(c, &r), "");
	snprintf(c, sizeof c, "{\"exp\":%d}", T0);
	assert_string_equal(jwt_rule(c, &r), "jwt-exp");
	snprintf(c, sizeof c, "{\"exp\":%d,\"nbf\":%d}", T0 + 600, T0);
	assert_string_equal(jwt_rule(c, &r), "");
	snprintf(c, sizeof c, "{\"exp\":%d,\"nbf\":%d}", T0 + 600, T0 + 1);
	assert_string_equal(jwt_rule(c, &r), "jwt-nbf");
	/* a larger leeway */
	r.leeway = 300;
	snprintf(c, sizeof c, "{\"exp\":%d}", T0 - 299);
	assert_string_equal(jwt_rule(c, &r), "");
	snprintf(c, sizeof c, "{\"exp\":%d}", T0 - 300);
	assert_string_equal(jwt_rule(c, &r), "jwt-exp");
	/* now = 0 reads the clock */
	r.now = 0;
	r.leeway = -1;
	snprintf(c, sizeof c, "{\"exp\":%lld}", (long long)time(NULL) + 120);
	assert_string_equal(jwt_rule(c, &r), "");
	snprintf(c, sizeof c, "{\"exp\":%lld}", (long long)time(NULL) - 120);
	assert_string_equal(jwt_rule(c, &r), "jwt-exp");
}

static void test_jwt_exp_required_and_numeric(void **state)
{
	zt_jwt_rules r = {.now = T0, .leeway = -1};
	static const char *const bad[] = {
	    "{\"exp\":\"1800000000\"}", "{\"exp\":true}", "{\"exp\":null}", "{\"exp\":[1800000000]}",
	    "{\"exp\":-1}", "{\"exp\":1e300}", "{\"exp\":1800000000,\"nbf\":\"0\"}",
	    "{\"exp\":1800000000,\"iat\":{}}"};

	(void)state;
	assert_string_equal(jwt_rule("{\"sub\":\"x\"}", &r), "jwt-exp");
	assert_string_equal(jwt_rule("{}", &r), "jwt-exp");
	r.exp_optional = 1;
	assert_string_equal(jwt_rule("{\"sub\":\"x\"}", &r), "");
	/* still checked when present */
	assert_string_equal(jwt_rule("{\"exp\":1}", &r), "jwt-exp");
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		assert_string_equal(jwt_rule(bad[i], &r), "jwt-claims");
	/* claims that are not an object */
	assert_string_equal(jwt_rule("[]", &r), "jwt-claims");
	assert_string_equal(jwt_rule("\"exp\"", &r), "jwt-claims");
	assert_string_equal(jwt_rule("null", &r), "jwt-claims");
	assert_string_equal(jwt_rule("{\"exp\":1800000000} x", &r), "jwt-claims");
	assert_string_equal(jwt_rule("{\"sub\":5}", &r), "jwt-claims");
}

static void test_jwt_issuer_exact(void **state)
{
	zt_jwt_rules r = {.issuer = "https://issuer.example", .now = T0, .leeway = -1};
	static const char *const wrong[] = {"https://issuer.example.evil.test", "https://issuer.exampl",
					    "https://issuer.example/", "https://ISSUER.example",
					    "https://issuer.example ", "evil://https://issuer.example",
					    ""};
	char c[256];

	(void)state;
	assert_string_equal(jwt_rule("{\"iss\":\"https://issuer.example\",\"exp\":1800000000}", &r), "");
	for (size_t i = 0; i < sizeof wrong / sizeof wrong[0]; i++) {
		snprintf(c, sizeof c, "{\"iss\":\"%s\",\"exp\":1800000000}", wrong[i]);
		assert_string_equal(jwt_rule(c, &r), "jwt-iss");
	}
	assert_string_equal(jwt_rule("{\"exp\":1800000000}", &r), "jwt-iss");
	assert_string_equal(jwt_rule("{\"iss\":[\"https://issuer.example\"],\"exp\":1800000000}", &r),
			    "jwt-claims");
	assert_string_equal(jwt_rule("{\"iss\":\"https://issuer.example\\u0000x\",\"exp\":1800000000}", &r),
			    "jwt-claims");
	r.issuer = NULL;
	assert_string_equal(jwt_rule("{\"iss\":\"anyone\",\"exp\":1800000000}", &r), "");
}

static void test_jwt_audience(void **state)
{
	static const char *const aud[] = {"zt-proxy", "zt-api", NULL};
	zt_jwt_rules r = {.audiences = aud, .now = T0, .leeway = -1};

	(void)state;
	assert_string_equal(jwt_rule("{\"aud\":\"zt-proxy\",\"exp\":1800000000}", &r), "");
	assert_string_equal(jwt_rule("{\"aud\":\"zt-api\",\"exp\":1800000000}", &r), "");
	assert_string_equal(jwt_rule("{\"aud\":[\"other\",\"zt-api\"],\"exp\":1800000000}", &r), "");
	assert_string_equal(jwt_rule("{\"aud\":\"zt\",\"exp\":1800000000}", &r), "jwt-aud");
	assert_string_equal(jwt_rule("{\"aud\":\"zt-proxy2\",\"exp\":1800000000}", &r), "jwt-aud");
	assert_string_equal(jwt_rule("{\"aud\":[\"other\",\"another\"],\"exp\":1800000000}", &r), "jwt-aud");
	assert_string_equal(jwt_rule("{\"aud\":[],\"exp\":1800000000}", &r), "jwt-aud");
	assert_string_equal(jwt_rule("{\"exp\":1800000000}", &r), "jwt-aud");
	assert_string_equal(jwt_rule("{\"aud\":5,\"exp\":1800000000}", &r), "jwt-claims");
	assert_string_equal(jwt_rule("{\"aud\":{\"zt-api\":1},\"exp\":1800000000}", &r), "jwt-claims");
	assert_string_equal(jwt_rule("{\"aud\":[\"zt-api\",5],\"exp\":1800000000}", &r), "jwt-claims");
	assert_string_equal(jwt_rule("{\"aud\":[[\"zt-api\"]],\"exp\":1800000000}", &r), "jwt-claims");
	/* not asked for: any well-formed aud, or none */
	r.audiences = NULL;
	assert_string_equal(jwt_rule("{\"aud\":\"whatever\",\"exp\":1800000000}", &r), "");
	assert_string_equal(jwt_rule("{\"exp\":1800000000}", &r), "");
	assert_string_equal(jwt_rule("{\"aud\":5,\"exp\":1800000000}", &r), "jwt-claims");
}

/* ---- JWK Sets -------------------------------------------------------------------- */

static void test_jwks_at_most_64_usable_keys(void **state)
{
	json_t *keys = json_array(), *set;
	char *text;
	zt_jwks s;
	zt_err e;

	(void)state;
	for (int i = 0; i < 64; i++) {
		char kid[16];

		snprintf(kid, sizeof kid, "k%d", i);
		json_array_append_new(keys, jwk_of(k_p256, kid, NULL));
	}
	/* 64 usable keys and one skipped (use enc): fine */
	json_array_append_new(keys, jwk_of(k_p256b, "enc", "{\"use\":\"enc\"}"));
	set = json_pack("{s:O}", "keys", keys);
	text = json_dumps(set, JSON_COMPACT);
	assert_int_equal(parse_text(text, 0, &s, &e), 0);
	assert_int_equal(s.n, 64);
	assert_int_equal(s.skipped, 1);
	zt_jwks_free(&s);
	free(text);
	json_decref(set);
	/* 65 usable */
	json_array_append_new(keys, jwk_of(k_p256b, "k64", NULL));
	set = json_pack("{s:O}", "keys", keys);
	text = json_dumps(set, JSON_COMPACT);
	assert_int_not_equal(parse_text(text, 0, &s, &e), 0);
	assert_string_equal(e.rule, "jwks-size");
	zt_jwks_free(&s);
	free(text);
	json_decref(set);
	json_decref(keys);
	/* more than 256 KiB of text */
	{
		size_t n = ZT_JWKS_MAX_BYTES + 1;
		char *big = malloc(n + 1);

		memset(big, ' ', n);
		memcpy(big, "{\"keys\":[]}", 11);
		big[n] = '\0';
		assert_int_not_equal(parse_text(big, 0, &s, &e), 0);
		assert_string_equal(e.rule, "jwks-size");
		big[n - 1] = '\0';
		assert_int_equal(parse_text(big, 0, &s, &e), 0);
		zt_jwks_free(&s);
		free(big);
	}
}

/* invalid-curve attacks: a point that is not on the curve fails the set */
static void test_jwks_ec_point_off_the_curve_refused(void **state)
{
	json_t *k = jwk_of(k_p256, "k", NULL);
	char *y = strdup(json_string_value(json_object_get(k, "y"))), rule1[40], rule2[40];
	zt_jwks s;
	zt_err e;

	(void)state;
	/* control: the key as it is */
	assert_int_equal(set_of(&s, 0, &e, json_deep_copy(k), NULL), 0);
	assert_int_equal(s.n, 1);
	zt_jwks_free(&s);
	y[10] = y[10] == 'A' ? 'B' : 'A';
	json_object_set_new(k, "y", json_string(y));
	assert_int_not_equal(set_of(&s, 0, &e, k, NULL), 0);
	assert_int_equal(s.n, 0);
	zt_jwks_free(&s);
	print_message("off-curve point: rule \"%s\": %s\n", e.rule, e.msg);
	snprintf(rule1, sizeof rule1, "%s", e.rule);
	/* x = y = 0 */
	k = json_pack("{s:s, s:s, s:s, s:s}", "kty", "EC", "crv", "P-256", "x",
		      "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "y",
		      "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
	assert_int_not_equal(set_of(&s, 0, &e, k, NULL), 0);
	zt_jwks_free(&s);
	snprintf(rule2, sizeof rule2, "%s", e.rule);
	free(y);
	/* refused, and with a rule like every other bad key (jwk-syntax...) */
	if (strncmp(rule1, "jwk-", 4) != 0 || strncmp(rule2, "jwk-", 4) != 0)
		fail_msg("off-curve points refused with rules \"%s\" and \"%s\", not jwk-*", rule1, rule2);
}

static void test_jwks_keys_zt_cannot_use_are_skipped_and_counted(void **state)
{
	zt_jwks s;
	zt_err e;

	(void)state;
	/* RSA-1024 (RFC 7518 3.3: 2048 at least), use enc, key_ops without verify, unknown kty/crv/alg */
	assert_int_equal(set_of(&s, 0, &e, jwk_of(k_rsa1024, "weak", NULL), jwk_of(k_p256, "enc", "{\"use\":\"enc\"}"),
				jwk_of(k_p256, "ops", "{\"key_ops\":[\"sign\"]}"),
				jwk_of(k_p256, "ops2", "{\"key_ops\":\"verify\"}"),
				jwk_of(k_p256, "use", "{\"use\":5}"),
				jwk_of(k_p256, "a1", "{\"alg\":\"ES384\"}"),
				jwk_of(k_p256, "a2", "{\"alg\":\"ES256K\"}"),
				jwk_of(k_rsa, "a3", "{\"alg\":\"RSA-OAEP\"}"),
				jwk_of(k_rsa, "a4", "{\"alg\":\"ES256\"}"),
				jwk_of(k_ed, "a5", "{\"alg\":\"ES256\"}"),
				json_pack("{s:s, s:s, s:s}", "kty", "OKP", "crv", "X25519", "x",
					  "hSDwCYkwp1R0i33ctD73Wg2_Og0mOBr066SpjqqbTmo"),
				json_pack("{s:s, s:s, s:s}", "kty", "OKP", "crv", "Ed448", "x", "AAAA"),
				json_pack("{s:s, s:s, s:s, s:s}", "kty", "EC", "crv", "secp256k1", "x", "AA", "y", "AA"),
				json_pack("{s:s}", "kty", "foo"), NULL),
			 0);
	assert_int_equal(s.n, 0);
	assert_int_equal(s.skipped, 14);
	zt_jwks_free(&s);
	/* key_ops with verify, use sig: used */
	assert_int_equal(set_of(&s, 0, &e, jwk_of(k_p256, "ops", "{\"key_ops\":[\"sign\",\"verify\"],\"use\":\"sig\"}"),
				NULL),
			 0);
	assert_int_equal(s.n, 1);
	assert_int_equal(s.skipped, 0);
	zt_jwks_free(&s);
	/* zt_jwks_add_pkey refuses what it cannot use */
	memset(&s, 0, sizeof s);
	assert_int_not_equal(zt_jwks_add_pkey(&s, k_rsa1024, NULL, 0, &e), 0);
	assert_string_equal(e.rule, "jwk-alg");
	assert_int_not_equal(zt_jwks_add_pkey(&s, k_p256, NULL, ZT_JWA_ES384, &e), 0);
	assert_string_equal(e.rule, "jwk-alg");
	assert_int_not_equal(zt_jwks_add_pkey(&s, k_ed, NULL, ZT_JWA_HS256, &e), 0);
	assert_string_equal(e.rule, "jwk-alg");
	assert_int_equal(s.n, 0);
	zt_jwks_free(&s);
}

/*
 * A modulus of 256 bytes but fewer than 2048 bits is below RFC 7518 3.3's
 * minimum like RSA-1024: skipped and counted, not a failure of the set.
 */
static void test_jwks_rsa_2047_bits_skipped_like_other_weak_keys(void **state)
{
	zt_jwks s;
	zt_err e;
	int r;

	(void)state;
	assert_int_equal(EVP_PKEY_get_bits(k_rsa2047), 2047);
	r = set_of(&s, 0, &e, jwk_of(k_rsa2047, "weak", NULL), jwk_of(k_p256, "good", NULL), NULL);
	if (r != 0)
		print_message("RSA-2047: the set fails (%s): %s\n", e.rule, e.msg);
	assert_int_equal(r, 0);
	assert_int_equal(s.n, 1);
	assert_int_equal(s.skipped, 1);
	zt_jwks_free(&s);
}

static void test_jwks_malformed_members_refused(void **state)
{
	static const char *const bad[] = {
	    "{\"keys\":{}}", "{\"keys\":\"x\"}", "{\"keys\":[5]}", "{\"keys\":[[]]}", "{\"keys\":[{}]}",
	    "{\"keys\":[{\"kty\":5}]}", "[]", "{\"kty\":\"EC\"}",
	    "{\"keys\":[{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":5,\"y\":\"AA\"}]}",
	    "{\"keys\":[{\"kty\":\"EC\",\"crv\":5}]}",
	    "{\"keys\":[{\"kty\":\"EC\",\"x\":\"AA\",\"y\":\"AA\"}]}",
	    "{\"keys\":[{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"AA\",\"y\":\"AA\"}]}",
	    "{\"keys\":[{\"kty\":\"EC\",\"crv\":\"P-256\"}]}",
	    "{\"keys\":[{\"kty\":\"RSA\",\"n\":5,\"e\":\"AQAB\"}]}",
	    "{\"keys\":[{\"kty\":\"RSA\",\"e\":\"AQAB\"}]}",
	    "{\"keys\":[{\"kty\":\"RSA\",\"n\":\"AA\",\"e\":\"AQAB\"}]}",
	    "{\"keys\":[{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\"AAAA\"}]}",
	    "{\"keys\":[{\"kty\":\"OKP\",\"crv\":\"Ed25519\"}]}",
	    "{\"keys\":[{\"kty\":\"oct\",\"k\":5}]}",
	    "{\"keys\":[{\"kty\":\"EC\",\"kid\":5}]}",
	    "{\"keys\":[{\"kty\":\"EC\",\"alg\":[\"ES256\"]}]}",
	};
	zt_jwks s;
	zt_err e;

	(void)state;
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		if (parse_text(bad[i], ZT_JWKS_ALLOW_OCT, &s, &e) == 0)
			fail_msg("accepted %s", bad[i]);
		if (strcmp(e.rule, "jwk-syntax") != 0)
			fail_msg("%s: rule \"%s\" (%s), expected jwk-syntax", bad[i], e.rule, e.msg);
		zt_jwks_free(&s);
	}
	/* RSA n with a leading zero byte (RFC 7518 6.3.1.1), e = 1, e even */
	{
		BIGNUM *n = NULL;
		uint8_t nb[520];
		char *s64;
		json_t *k;
		int len;

		assert_int_equal(EVP_PKEY_get_bn_param(k_rsa, OSSL_PKEY_PARAM_RSA_N, &n), 1);
		nb[0] = 0;
		len = BN_bn2bin(n, nb + 1);
		s64 = b64u(nb, (size_t)len + 1);
		k = json_pack("{s:s, s:s, s:s}", "kty", "RSA", "n", s64, "e", "AQAB");
		assert_int_not_equal(set_of(&s, 0, &e, k, NULL), 0);
		assert_string_equal(e.rule, "jwk-syntax");
		zt_jwks_free(&s);
		free(s64);
		s64 = b64u(nb + 1, (size_t)len);
		k = json_pack("{s:s, s:s, s:s}", "kty", "RSA", "n", s64, "e", "AQ");
		assert_int_not_equal(set_of(&s, 0, &e, k, NULL), 0);
		assert_string_equal(e.rule, "jwk-syntax");
		zt_jwks_free(&s);
		k = json_pack("{s:s, s:s, s:s}", "kty", "RSA", "n", s64, "e", "AQAA");
		assert_int_not_equal(set_of(&s, 0, &e, k, NULL), 0);
		assert_string_equal(e.rule, "jwk-syntax");
		zt_jwks_free(&s);
		k = json_pack("{s:s, s:s, s:s}", "kty", "RSA", "n", s64, "e", "AQAB");
		assert_int_equal(set_of(&s, 0, &e, k, NULL), 0);
		assert_int_equal(s.n, 1);
		zt_jwks_free(&s);
		free(s64);
		BN_free(n);
	}
	/* a kid longer than 256 bytes */
	{
		char kid[300];

		memset(kid, 'k', 257);
		kid[257] = '\0';
		assert_int_not_equal(set_of(&s, 0, &e, jwk_of(k_p256, kid, NULL), NULL), 0);
		assert_string_equal(e.rule, "jwk-syntax");
		zt_jwks_free(&s);
		kid[256] = '\0';
		assert_int_equal(set_of(&s, 0, &e, jwk_of(k_p256, kid, NULL), NULL), 0);
		zt_jwks_free(&s);
	}
}

/*
 * Every refusal of a set names its rule, as those above do: a caller (or an
 * operator reading the log) tells a malformed set from a key that is not on
 * its curve. Refused first, then the rule checked, so that a missing tag
 * never hides a missing refusal.
 */
static void test_jwks_every_refusal_names_a_jwk_rule(void **state)
{
	static const char *const notjson[] = {"", "{", "5", "\"keys\"", "{\"keys\":[]",
					      "{\"keys\":[],\"keys\":[]}",
					      "{\"keys\":[{\"kty\":\"EC\",\"kty\":\"oct\"}]}"};
	char rules[16][160];
	size_t nr = 0;
	zt_jwks s;
	zt_err e;

	(void)state;
	for (size_t i = 0; i < sizeof notjson / sizeof notjson[0]; i++) {
		assert_int_not_equal(parse_text(notjson[i], 0, &s, &e), 0);
		zt_jwks_free(&s);
		snprintf(rules[nr++], sizeof rules[0], "not JSON %s -> \"%s\"", notjson[i], e.rule);
	}
	/* a member that is not base64url, in a key zt would use */
	{
		json_t *k = jwk_of(k_p256, "k", NULL);
		char *x = strdup(json_string_value(json_object_get(k, "x")));

		x[0] = '+';
		json_object_set_new(k, "x", json_string(x));
		assert_int_not_equal(set_of(&s, 0, &e, k, NULL), 0);
		zt_jwks_free(&s);
		snprintf(rules[nr++], sizeof rules[0], "x not base64url -> \"%s\"", e.rule);
		free(x);
	}
	{
		json_t *k = jwk_oct(HKEY, sizeof HKEY, "h", NULL);

		json_object_set_new(k, "k", json_string("AAA="));
		assert_int_not_equal(set_of(&s, ZT_JWKS_ALLOW_OCT, &e, k, NULL), 0);
		zt_jwks_free(&s);
		snprintf(rules[nr++], sizeof rules[0], "k padded -> \"%s\"", e.rule);
	}
	for (size_t i = 0; i < nr; i++)
		print_message("%s\n", rules[i]);
	for (size_t i = 0; i < nr; i++)
		if (!strstr(rules[i], "-> \"jwk-"))
			fail_msg("a set refused without a jwk-* rule: %s", rules[i]);
}

/* ---- round trips: zt_jwt_sign -> zt_jwk_set_public -> zt_jwks_parse -> zt_jwt_verify ---- */

static void round_trip(EVP_PKEY *key, const char *alg)
{
	static const char *const aud[] = {"zt", NULL};
	zt_jwt_rules rules = {.issuer = "https://issuer.test", .audiences = aud, .leeway = -1};
	json_t *claims = json_pack("{s:s, s:s, s:s, s:I, s:I}", "iss", "https://issuer.test", "sub",
				   "spiffe://example.org/w", "aud", "zt", "iat", (json_int_t)time(NULL),
				   "exp", (json_int_t)time(NULL) + 300);
	zt_buf tok;
	zt_jwks set;
	zt_jwt t;
	zt_err e;
	char *d1, *d2, *hdr_json;
	uint8_t sig[1024];
	size_t sl;
	json_t *hdr;

	zt_buf_init(&tok, 1 << 16);
	if (zt_jwt_sign(key, "rt", claims, &tok, &e) != 0)
		fail_msg("%s: zt_jwt_sign: %s", alg, e.msg);
	assert_int_equal(set_of(&set, 0, &e, jwk_of(key, "rt", NULL), NULL), 0);
	assert_int_equal(set.n, 1);
	if (zt_jwt_verify((const char *)tok.p, tok.len, &set, &rules, &t, &e) != 0)
		fail_msg("%s: refused (%s): %s", alg, e.rule, e.msg);
	assert_int_equal(t.jws.alg, zt_jwa_from_name(alg));
	assert_ptr_equal(t.jws.key, &set.keys[0]);
	assert_string_equal(t.iss, "https://issuer.test");
	assert_string_equal(t.sub, "spiffe://example.org/w");
	assert_int_equal(t.exp, json_integer_value(json_object_get(claims, "exp")));
	assert_string_equal(json_string_value(json_object_get(t.jws.header, "alg")), alg);
	assert_string_equal(json_string_value(json_object_get(t.jws.header, "kid")), "rt");
	assert_string_equal(json_string_value(json_object_get(t.jws.header, "typ")), "JWT");
	zt_jwt_free(&t);
	/* the key object itself, through zt_jwks_add_pkey (for zt's own keys: no JWK in between) */
	{
		zt_jwks direct;

		memset(&direct, 0, sizeof direct);
		assert_int_equal(zt_jwks_add_pkey(&direct, key, "rt", 0, &e), 0);
		if (zt_jwt_verify((const char *)tok.p, tok.len, &direct, &rules, &t, &e) != 0)
			fail_msg("%s through zt_jwks_add_pkey: refused (%s): %s", alg, e.rule, e.msg);
		zt_jwt_free(&t);
		zt_jwks_free(&direct);
	}
	/* the standard format, checked by OpenSSL rather than zt */
	d1 = strchr((char *)tok.p, '.');
	d2 = strrchr((char *)tok.p, '.');
	{
		zt_buf raw;

		zt_buf_init(&raw, 2048);
		assert_int_equal(zt_base64_decode(d2 + 1, strlen(d2 + 1), 1, &raw, &e), 0);
		sl = raw.len;
		memcpy(sig, raw.p, sl);
		zt_buf_free(&raw, 0);
		zt_buf_init(&raw, 2048);
		assert_int_equal(zt_base64_decode((char *)tok.p, (size_t)(d1 - (char *)tok.p), 1, &raw, &e), 0);
		assert_non_null(hdr = json_loadb((const char *)raw.p, raw.len, 0, NULL));
		zt_buf_free(&raw, 0);
	}
	assert_non_null(hdr_json = json_dumps(hdr, JSON_COMPACT | JSON_SORT_KEYS));
	json_decref(hdr);
	assert_true(test_verify(alg, key, tok.p, (size_t)(d2 - (char *)tok.p), sig, sl));
	/* one bit of the signature changed */
	{
		char *bad = strdup((char *)tok.p);

		char *c = bad + (d2 - (char *)tok.p) + 5;

		*c = *c == 'A' ? 'B' : 'A';
		assert_refused(bad, &set, "jws-signature");
		free(bad);
	}
	/* and another audience, issuer */
	rules.issuer = "https://issuer.test/";
	assert_int_not_equal(zt_jwt_verify((const char *)tok.p, tok.len, &set, &rules, &t, &e), 0);
	assert_string_equal(e.rule, "jwt-iss");
	print_message("round trip %s: %zu-byte token, header %s\n", alg, tok.len, hdr_json);
	free(hdr_json);
	zt_jwks_free(&set);
	zt_buf_free(&tok, 0);
	json_decref(claims);
}

static void test_round_trip_sign_export_import_verify(void **state)
{
	EVP_PKEY *zk = zt_key_generate(NULL); /* the key zt makes (maybe the built-in EC method) */
	zt_err e;
	zt_buf out;
	json_t *c = json_object();

	(void)state;
	round_trip(k_p256, "ES256");
	round_trip(k_p384, "ES384");
	round_trip(k_p521, "ES512");
	round_trip(k_ed, "EdDSA");
	round_trip(k_rsa, "RS256");
	assert_non_null(zk);
	round_trip(zk, "ES256");
	EVP_PKEY_free(zk);
	/* zt does not sign with keys it would not accept */
	zt_buf_init(&out, 1 << 16);
	assert_int_not_equal(zt_jwt_sign(k_rsa1024, NULL, c, &out, &e), 0);
	assert_string_equal(e.rule, "jws-alg");
	assert_int_equal(out.len, 0);
	zt_buf_free(&out, 0);
	json_decref(c);
}

/* EC coordinates are exported at the full field length (RFC 7518 6.2.1.2), leading zeros kept */
static void test_jwk_export_pads_ec_coordinates(void **state)
{
	int lead = 0;

	(void)state;
	for (int i = 0; i < 800; i++) {
		EVP_PKEY *k = gen_ec(NID_X9_62_prime256v1);
		json_t *j = jwk_of(k, NULL, NULL);
		uint8_t *der = NULL, *pt;
		int dl = i2d_PUBKEY(k, &der);
		char *x, *y;

		/* the point is the SubjectPublicKeyInfo's last 65 bytes: 04 || x || y */
		assert_int_equal(dl, 91);
		pt = der + dl - 65;
		assert_int_equal(pt[0], 4);
		x = b64u(pt + 1, 32);
		y = b64u(pt + 33, 32);
		assert_string_equal(json_string_value(json_object_get(j, "x")), x);
		assert_string_equal(json_string_value(json_object_get(j, "y")), y);
		lead += pt[1] == 0 || pt[33] == 0;
		OPENSSL_free(der);
		free(x);
		free(y);
		json_decref(j);
		EVP_PKEY_free(k);
	}
	print_message("800 P-256 keys, %d with a leading zero byte in x or y\n", lead);
}

/*
 * Verification contexts are cached per thread by key pointer: keys made and
 * freed in turn (addresses reused by malloc) must never verify each other's
 * tokens.
 */
static void test_context_cache_never_confuses_keys(void **state)
{
	(void)state;
	for (int i = 0; i < 40; i++) {
		EVP_PKEY *a = gen_ec(NID_X9_62_prime256v1),
			 *b = gen_ec(NID_X9_62_prime256v1);
		char *ta = tok_sign("ES256", a, "{\"alg\":\"ES256\"}", "{}");
		char *tb = tok_sign("ES256", b, "{\"alg\":\"ES256\"}", "{}");
		zt_jwks set;
		zt_err e;

		assert_int_equal(set_of(&set, 0, &e, jwk_of(i % 2 ? a : b, NULL, NULL), NULL), 0);
		assert_jws_ok(i % 2 ? ta : tb, &set);
		assert_refused(i % 2 ? tb : ta, &set, "jws-signature");
		zt_jwks_free(&set);
		free(ta);
		free(tb);
		EVP_PKEY_free(a);
		EVP_PKEY_free(b);
	}
}

static void test_jwa_names(void **state)
{
	(void)state;
	for (int a = 1; a < ZT_JWA_COUNT; a++)
		assert_int_equal(zt_jwa_from_name(zt_jwa_name(a)), a);
	assert_int_equal(zt_jwa_from_name("none"), 0);
	assert_int_equal(zt_jwa_from_name("ES521"), 0);
	assert_int_equal(zt_jwa_from_name(""), 0);
	assert_string_equal(zt_jwa_name(0), "?");
	assert_string_equal(zt_jwa_name(ZT_JWA_COUNT), "?");
	assert_int_equal(zt_jwa_for_key(k_p256), ZT_JWA_ES256);
	assert_int_equal(zt_jwa_for_key(k_p384), ZT_JWA_ES384);
	assert_int_equal(zt_jwa_for_key(k_p521), ZT_JWA_ES512);
	assert_int_equal(zt_jwa_for_key(k_ed), ZT_JWA_EDDSA);
	assert_int_equal(zt_jwa_for_key(k_rsa), ZT_JWA_RS256);
	assert_int_equal(zt_jwa_for_key(k_rsa1024), 0);
}

/*
 * Headers are remembered per thread by their text (jws.c): a remembered
 * header must not let anything else through, and what zt_jws_verify hands
 * back (zt_jws.header, a json_t * the caller frees with zt_jws_free) is the
 * caller's: changing it must not change how the next token is read.
 */
static void test_header_cache_changes_no_outcome(void **state)
{
	const char *hdr = "{\"alg\":\"ES256\",\"kid\":\"a\"}";
	char *good = tok_sign("ES256", k_p256, hdr, "{\"n\":1}"), *good2 = tok_sign("ES256", k_p256, hdr, "{\"n\":2}");
	char *forged = tok_sign("ES256", k_p256b, hdr, "{\"n\":3}"), *bad = strdup(good);
	zt_jwks set;
	zt_jws j;
	zt_err e;

	(void)state;
	assert_int_equal(set_of(&set, 0, &e, jwk_of(k_p256, "a", NULL), jwk_of(k_p256b, "b", NULL), NULL), 0);
	for (int round = 0; round < 3; round++) {
		assert_jws_ok(good, &set);
		assert_refused(forged, &set, "jws-signature");
		bad[strlen(bad) - 5] = bad[strlen(bad) - 5] == 'A' ? 'B' : 'A';
		assert_refused(bad, &set, "jws-signature");
	}
	/* the same header against a set without key a: the kid is still read */
	{
		zt_jwks other;

		assert_int_equal(set_of(&other, 0, &e, jwk_of(k_p256, "z", NULL), NULL), 0);
		assert_refused(good, &other, "jws-unknown-kid");
		zt_jwks_free(&other);
	}
	/* the caller changes the header it was given ... */
	assert_int_equal(zt_jws_verify(good, strlen(good), &set, 0, &j, &e), 0);
	json_object_set_new(j.header, "kid", json_string("b"));
	json_object_set_new(j.header, "alg", json_string("none"));
	zt_jws_free(&j);
	/* ... and the next token with the same header text is read from its own text */
	if (zt_jws_verify(good2, strlen(good2), &set, 0, &j, &e) != 0)
		fail_msg("a good token refused after the caller changed an earlier token's header (%s): %s",
			 e.rule, e.msg);
	assert_string_equal(json_string_value(json_object_get(j.header, "kid")), "a");
	assert_string_equal(json_string_value(json_object_get(j.header, "alg")), "ES256");
	assert_ptr_equal(j.key, &set.keys[0]);
	zt_jws_free(&j);
	free(good);
	free(good2);
	free(forged);
	free(bad);
	zt_jwks_free(&set);
}

/*
 * No token at all: (NULL, 0), as a caller may pass an absent header value.
 * Last in the list: under UBSan, a NULL passed to memchr stops the program.
 */
static void test_null_empty_token_refused(void **state)
{
	zt_jwt_rules rules = {.exp_optional = 1};
	zt_jwks set;
	zt_jwt jt;
	zt_err e;

	(void)state;
	assert_int_equal(set_of(&set, 0, &e, jwk_of(k_p256, NULL, NULL), NULL), 0);
	assert_jws_refused(NULL, 0, &set, "jws-syntax");
	assert_int_not_equal(zt_jwt_verify(NULL, 0, &set, &rules, &jt, &e), 0);
	assert_string_equal(e.rule, "jws-syntax");
	zt_jwks_free(&set);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_wycheproof_jws_every_case),
	    cmocka_unit_test(test_wycheproof_defects_are_what_the_table_says),
	    cmocka_unit_test(test_wycheproof_private_jwks_verify_as_public),
	    cmocka_unit_test(test_wycheproof_jwk_sets),
	    cmocka_unit_test(test_rfc7515_appendix_a_examples),
	    cmocka_unit_test(test_rfc7520_section4_examples),
	    cmocka_unit_test(test_rfc8037_ed25519_example),
	    cmocka_unit_test(test_rfc7515_examples_as_jwts),
	    cmocka_unit_test(test_alg_none_in_any_spelling_refused),
	    cmocka_unit_test(test_hmac_keyed_with_the_public_key_refused),
	    cmocka_unit_test(test_alg_fixed_by_the_keys_jwk_alg),
	    cmocka_unit_test(test_ecdsa_alg_must_match_the_curve),
	    cmocka_unit_test(test_hmac_only_for_allowed_oct_keys),
	    cmocka_unit_test(test_kid_selects_the_key),
	    cmocka_unit_test(test_without_kid_at_most_four_keys_tried),
	    cmocka_unit_test(test_header_supplied_keys_ignored),
	    cmocka_unit_test(test_crit_and_b64_false_refused),
	    cmocka_unit_test(test_signature_encodings_refused),
	    cmocka_unit_test(test_base64url_strictness),
	    cmocka_unit_test(test_compact_parts_count_and_emptiness),
	    cmocka_unit_test(test_oversized_token_refused_fast),
	    cmocka_unit_test(test_deeply_nested_json_refused),
	    cmocka_unit_test(test_duplicate_json_members_refused),
	    cmocka_unit_test_setup_teardown(test_jwt_times_at_the_leeway_edges, jwt_setup, jwt_teardown),
	    cmocka_unit_test_setup_teardown(test_jwt_exp_required_and_numeric, jwt_setup, jwt_teardown),
	    cmocka_unit_test_setup_teardown(test_jwt_issuer_exact, jwt_setup, jwt_teardown),
	    cmocka_unit_test_setup_teardown(test_jwt_audience, jwt_setup, jwt_teardown),
	    cmocka_unit_test(test_jwks_at_most_64_usable_keys),
	    cmocka_unit_test(test_jwks_ec_point_off_the_curve_refused),
	    cmocka_unit_test(test_jwks_keys_zt_cannot_use_are_skipped_and_counted),
	    cmocka_unit_test(test_jwks_rsa_2047_bits_skipped_like_other_weak_keys),
	    cmocka_unit_test(test_jwks_malformed_members_refused),
	    cmocka_unit_test(test_jwks_every_refusal_names_a_jwk_rule),
	    cmocka_unit_test(test_round_trip_sign_export_import_verify),
	    cmocka_unit_test(test_jwk_export_pads_ec_coordinates),
	    cmocka_unit_test(test_context_cache_never_confuses_keys),
	    cmocka_unit_test(test_jwa_names),
	    cmocka_unit_test(test_header_cache_changes_no_outcome),
	    cmocka_unit_test(test_null_empty_token_refused), /* keep last: see its comment */
	};
	int r;

	assert_non_null(k_p256 = gen_ec(NID_X9_62_prime256v1));
	assert_non_null(k_p256b = gen_ec(NID_X9_62_prime256v1));
	assert_non_null(k_p384 = gen_ec(NID_secp384r1));
	assert_non_null(k_p521 = gen_ec(NID_secp521r1));
	assert_non_null(k_ed = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519"));
	assert_non_null(k_rsa = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048));
	assert_non_null(k_rsa1024 = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)1024));
	assert_non_null(k_rsa2047 = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2047));
	r = cmocka_run_group_tests(tests, NULL, NULL);
	EVP_PKEY_free(k_p256);
	EVP_PKEY_free(k_p256b);
	EVP_PKEY_free(k_p384);
	EVP_PKEY_free(k_p521);
	EVP_PKEY_free(k_ed);
	EVP_PKEY_free(k_rsa);
	EVP_PKEY_free(k_rsa1024);
	EVP_PKEY_free(k_rsa2047);
	zt_crypto_thread_cleanup();
	return r;
}
