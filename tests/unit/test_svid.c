/* Unit tests: X.509-SVID validation (identity/svid.c). */
#include "testutil.h"

#include <string.h>

#include <openssl/err.h>

#include "crypto/crypto.h"
#include "identity/identity.h"

#define T0 1800000000LL /* a fixed validation time */
#define HOUR 3600

#define CA_EXTS(san)                                                              \
	"basicConstraints=critical,CA:TRUE", "keyUsage=critical,keyCertSign,cRLSign", \
	    "subjectKeyIdentifier=hash", "authorityKeyIdentifier=keyid:always", san

struct pki {
	EVP_PKEY *root_key, *int_key, *leaf_key;
	X509 *root, *inter;
	zt_bundle_set *set;
};

static struct pki P;

static int setup(void **state)
{
	const char *const root_exts[] = { CA_EXTS("subjectAltName=URI:spiffe://example.org"), NULL };
	const char *const int_exts[] = { CA_EXTS("subjectAltName=URI:spiffe://example.org"), NULL };
	zt_bundle *b;

	(void)state;
	P.root_key = tu_key();
	P.int_key = tu_key();
	P.leaf_key = tu_key();
	P.root = tu_cert(P.root_key, NULL, NULL, "root", T0 - 100 * HOUR, T0 + 100 * HOUR, root_exts);
	P.inter = tu_cert(P.int_key, P.root, P.root_key, "int", T0 - 50 * HOUR, T0 + 50 * HOUR, int_exts);
	b = zt_bundle_new("example.org", NULL);
	assert_non_null(b);
	assert_int_equal(zt_bundle_add_x509(b, P.root, NULL), 0);
	P.set = zt_bundle_set_new();
	assert_int_equal(zt_bundle_set_put(P.set, b, NULL), 0);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	X509_free(P.root);
	X509_free(P.inter);
	EVP_PKEY_free(P.root_key);
	EVP_PKEY_free(P.int_key);
	EVP_PKEY_free(P.leaf_key);
	zt_bundle_set_free(P.set);
	return 0;
}

/* The good leaf profile, with slot 0 replaceable and extra extensions. */
static X509 *leaf_with(const char *const *exts, int64_t nb, int64_t na)
{
	return tu_cert(P.leaf_key, P.inter, P.int_key, "leaf", nb, na, exts);
}

static STACK_OF(X509) *chain_of(X509 *leaf, X509 *inter)
{
	STACK_OF(X509) *sk = sk_X509_new_null();

	sk_X509_push(sk, leaf);
	if (inter) {
		X509_up_ref(inter);
		sk_X509_push(sk, inter);
	}
	return sk;
}

/* Verifies leaf (+ the intermediate) at T0; returns the rule or "" when ok. */
static const char *verify_rule(X509 *leaf, X509 *inter, const zt_svid_opts *opts)
{
	static zt_err e;
	zt_svid_opts o = opts ? *opts : (zt_svid_opts){ 0 };
	STACK_OF(X509) *sk = chain_of(leaf, inter);
	zt_svid_info info;
	int r;

	if (!o.now)
		o.now = T0;
	zt_err_clear(&e);
	r = zt_svid_verify(P.set, sk, &o, &info, &e);
	sk_X509_pop_free(sk, X509_free);
	if (r == 0)
		return "";
	assert_true(e.msg[0] != '\0');
	return e.rule;
}

#define GOOD_EXTS(san)                                                                        \
	"basicConstraints=critical,CA:FALSE", "keyUsage=critical,digitalSignature",           \
	    "extendedKeyUsage=serverAuth,clientAuth", "subjectKeyIdentifier=hash",            \
	    "authorityKeyIdentifier=keyid:always", san

static void test_good_chain(void **state)
{
	const char *const exts[] = { GOOD_EXTS("subjectAltName=URI:spiffe://example.org/ns/a/sa/web"), NULL };
	STACK_OF(X509) *sk;
	zt_svid_info info;
	zt_spiffe_id want;
	zt_svid_opts o = { .now = T0, .trust_domain = "example.org" };
	zt_err e;

	(void)state;
	sk = chain_of(leaf_with(exts, T0 - HOUR, T0 + HOUR), P.inter);
	assert_int_equal(zt_svid_verify(P.set, sk, &o, &info, &e), 0);
	assert_string_equal(info.id.str, "spiffe://example.org/ns/a/sa/web");
	assert_int_equal(info.not_after, T0 + HOUR);
	assert_int_equal(info.chain_len, 3);
	assert_int_equal(info.chain_not_after, T0 + HOUR);
	assert_int_equal(zt_id_parse("spiffe://example.org/ns/a/sa/web", 32, &want, NULL), 0);
	o.trust_domain = NULL;
	o.expect_id = &want;
	assert_int_equal(zt_svid_verify(P.set, sk, &o, &info, &e), 0);
	sk_X509_pop_free(sk, X509_free);
}

/*
 * crypto/ecfast.c: EC keys in parsed certificates come from the built-in
 * method (no provider), verify as before, and a point off the curve is
 * still refused when the certificate is parsed.
 */
static void test_ecfast_keys(void **state)
{
	const char *const exts[] = { GOOD_EXTS("subjectAltName=URI:spiffe://example.org/ns/a/sa/web"), NULL };
	X509 *leaf = leaf_with(exts, T0 - HOUR, T0 + HOUR), *back;
	const ASN1_BIT_STRING *bits = X509_get0_pubkey_bitstr(leaf);
	unsigned char *der = NULL, *at;
	const unsigned char *p;
	int n;

	(void)state;
	assert_int_equal(zt_crypto_init(), 1);
	assert_non_null(bits);
	assert_int_equal(bits->length, 65); /* an uncompressed P-256 point */
	assert_true((n = i2d_X509(leaf, &der)) > 0);
	p = der;
	assert_non_null(back = d2i_X509(NULL, &p, n));
	assert_non_null(X509_get0_pubkey(back));
	assert_null(EVP_PKEY_get0_provider(X509_get0_pubkey(back)));
	assert_int_equal(X509_verify(back, X509_get0_pubkey(P.inter)), 1);
	X509_free(back);
	/* flip the last byte of Y: the point leaves the curve */
	at = memmem(der, (size_t)n, bits->data, 65);
	assert_non_null(at);
	at[64] ^= 0x01;
	p = der;
	assert_non_null(back = d2i_X509(NULL, &p, n));
	assert_null(X509_get0_pubkey(back));
	X509_free(back);
	ERR_clear_error();
	OPENSSL_free(der);
	X509_free(leaf);
}

struct leaf_case {
	const char *name;
	const char *exts[8];
	const char *rule;
};

static const struct leaf_case leaf_cases[] = {
	{ "no SAN", { "basicConstraints=critical,CA:FALSE", "keyUsage=critical,digitalSignature", "subjectKeyIdentifier=hash", "authorityKeyIdentifier=keyid:always" }, "uri-san-missing" },
	{ "DNS only", { GOOD_EXTS("subjectAltName=DNS:web.example.org") }, "uri-san-missing" },
	{ "two URIs", { GOOD_EXTS("subjectAltName=URI:spiffe://example.org/a,URI:spiffe://example.org/b") }, "uri-san-count" },
	{ "not spiffe", { GOOD_EXTS("subjectAltName=URI:https://example.org/a") }, "id-scheme" },
	{ "no path", { GOOD_EXTS("subjectAltName=URI:spiffe://example.org") }, "id-no-path" },
	{ "trailing slash", { GOOD_EXTS("subjectAltName=URI:spiffe://example.org/a/") }, "id-trailing-slash" },
	{ "CA leaf", { "basicConstraints=critical,CA:TRUE", "keyUsage=critical,digitalSignature", "subjectKeyIdentifier=hash", "authorityKeyIdentifier=keyid:always", "subjectAltName=URI:spiffe://example.org/a" }, "leaf-ca" },
	{ "no KU", { "basicConstraints=critical,CA:FALSE", "subjectKeyIdentifier=hash", "authorityKeyIdentifier=keyid:always", "subjectAltName=URI:spiffe://example.org/a" }, "leaf-ku-missing" },
	{ "KU not critical", { "basicConstraints=critical,CA:FALSE", "keyUsage=digitalSignature", "subjectKeyIdentifier=hash", "authorityKeyIdentifier=keyid:always", "subjectAltName=URI:spiffe://example.org/a" }, "leaf-ku-not-critical" },
	{ "no digitalSignature", { "basicConstraints=critical,CA:FALSE", "keyUsage=critical,keyAgreement", "subjectKeyIdentifier=hash", "authorityKeyIdentifier=keyid:always", "subjectAltName=URI:spiffe://example.org/a" }, "leaf-no-digital-signature" },
	{ "keyCertSign", { "basicConstraints=critical,CA:FALSE", "keyUsage=critical,digitalSignature,keyCertSign", "subjectKeyIdentifier=hash", "authorityKeyIdentifier=keyid:always", "subjectAltName=URI:spiffe://example.org/a" }, "leaf-key-cert-sign" },
	{ "cRLSign", { "basicConstraints=critical,CA:FALSE", "keyUsage=critical,digitalSignature,cRLSign", "subjectKeyIdentifier=hash", "authorityKeyIdentifier=keyid:always", "subjectAltName=URI:spiffe://example.org/a" }, "leaf-crl-sign" },
	{ "EKU server only", { "basicConstraints=critical,CA:FALSE", "keyUsage=critical,digitalSignature", "extendedKeyUsage=serverAuth", "subjectKeyIdentifier=hash", "authorityKeyIdentifier=keyid:always", "subjectAltName=URI:spiffe://example.org/a" }, "leaf-eku" },
	{ "other trust domain", { GOOD_EXTS("subjectAltName=URI:spiffe://other.org/a") }, "no-bundle" },
};

static void test_leaf_rules(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof leaf_cases / sizeof leaf_cases[0]; i++) {
		const char *rule = verify_rule(leaf_with(leaf_cases[i].exts, T0 - HOUR, T0 + HOUR),
					       P.inter, NULL);

		if (strcmp(rule, leaf_cases[i].rule) != 0)
			fail_msg("case \"%s\": got rule \"%s\", want \"%s\"", leaf_cases[i].name,
				 rule, leaf_cases[i].rule);
	}
}

static void test_empty_subject_needs_critical_san(void **state)
{
	const char *const exts[] = { GOOD_EXTS("subjectAltName=URI:spiffe://example.org/a"), NULL };
	const char *const crit[] = { GOOD_EXTS("subjectAltName=critical,URI:spiffe://example.org/a"), NULL };

	(void)state;
	assert_string_equal(verify_rule(tu_cert(P.leaf_key, P.inter, P.int_key, NULL, T0 - HOUR, T0 + HOUR, exts), P.inter, NULL),
			    "san-not-critical");
	assert_string_equal(verify_rule(tu_cert(P.leaf_key, P.inter, P.int_key, NULL, T0 - HOUR, T0 + HOUR, crit), P.inter, NULL),
			    "");
}

static void test_time_and_trust(void **state)
{
	const char *const exts[] = { GOOD_EXTS("subjectAltName=URI:spiffe://example.org/a"), NULL };
	zt_svid_opts o = { .now = T0 + 2 * HOUR };
	zt_spiffe_id other;

	(void)state;
	assert_string_equal(verify_rule(leaf_with(exts, T0 - HOUR, T0 + HOUR), P.inter, &o), "expired");
	o.now = T0 - 2 * HOUR;
	assert_string_equal(verify_rule(leaf_with(exts, T0 - HOUR, T0 + HOUR), P.inter, &o), "not-yet-valid");
	/* the intermediate expires at T0+50h; the leaf is still in its window */
	o.now = T0 + 60 * HOUR;
	assert_string_equal(verify_rule(leaf_with(exts, T0, T0 + 70 * HOUR), P.inter, &o), "expired");
	/* no intermediate presented, none in the bundle */
	assert_string_equal(verify_rule(leaf_with(exts, T0 - HOUR, T0 + HOUR), NULL, NULL), "untrusted");
	o = (zt_svid_opts){ .trust_domain = "other.org" };
	assert_string_equal(verify_rule(leaf_with(exts, T0 - HOUR, T0 + HOUR), P.inter, &o), "td-mismatch");
	assert_int_equal(zt_id_parse("spiffe://example.org/b", 22, &other, NULL), 0);
	o = (zt_svid_opts){ .expect_id = &other };
	assert_string_equal(verify_rule(leaf_with(exts, T0 - HOUR, T0 + HOUR), P.inter, &o), "id-mismatch");
}

static void test_untrusted_root_and_signature(void **state)
{
	const char *const exts[] = { GOOD_EXTS("subjectAltName=URI:spiffe://example.org/a"), NULL };
	const char *const ca[] = { CA_EXTS("subjectAltName=URI:spiffe://example.org"), NULL };
	EVP_PKEY *rk = tu_key(), *ik = tu_key();
	X509 *rroot = tu_cert(rk, NULL, NULL, "root", T0 - HOUR, T0 + HOUR, ca);
	X509 *rint = tu_cert(ik, rroot, rk, "int", T0 - HOUR, T0 + HOUR, ca);
	X509 *leaf;
	unsigned char *der = NULL;
	const unsigned char *p;
	int n;

	(void)state;
	leaf = tu_cert(P.leaf_key, rint, ik, "leaf", T0 - HOUR, T0 + HOUR, exts);
	assert_string_equal(verify_rule(leaf, rint, NULL), "untrusted");
	/* flip a bit in the signature of a good leaf */
	leaf = leaf_with(exts, T0 - HOUR, T0 + HOUR);
	n = i2d_X509(leaf, &der);
	X509_free(leaf);
	der[n - 3] ^= 0x01;
	p = der;
	leaf = d2i_X509(NULL, &p, n);
	assert_non_null(leaf);
	assert_string_equal(verify_rule(leaf, P.inter, NULL), "signature");
	OPENSSL_free(der);
	X509_free(rroot);
	X509_free(rint);
	EVP_PKEY_free(rk);
	EVP_PKEY_free(ik);
}

/* Remembered signatures: a certificate verified once, then altered by one
 * bit (signature or body), must fail; the original keeps passing. */
static void test_remembered_signatures(void **state)
{
	const char *const exts[] = { GOOD_EXTS("subjectAltName=URI:spiffe://example.org/a"), NULL };
	X509 *leaf = leaf_with(exts, T0 - HOUR, T0 + HOUR);
	unsigned char *der = NULL;
	int n = i2d_X509(leaf, &der);

	(void)state;
	zt_crypto_sigcache(1);
	for (int k = 0; k < 2; k++) {
		const unsigned char *p = der;
		assert_string_equal(verify_rule(d2i_X509(NULL, &p, n), P.inter, NULL), "");
	}
	for (int where = 0; where < 2; where++) {
		const unsigned char *p;
		X509 *bad;

		/* the last bytes are signature; byte 200 is inside the TBS */
		der[where ? 200 : n - 3] ^= 0x01;
		p = der;
		bad = d2i_X509(NULL, &p, n);
		if (bad)
			assert_string_not_equal(verify_rule(bad, P.inter, NULL), "");
		der[where ? 200 : n - 3] ^= 0x01;
	}
	{
		const unsigned char *p = der;
		assert_string_equal(verify_rule(d2i_X509(NULL, &p, n), P.inter, NULL), "");
	}
	OPENSSL_free(der);
	X509_free(leaf);
}

static void test_signer_rules(void **state)
{
	static const struct {
		const char *name;
		const char *exts[6];
		const char *rule;
	} cases[] = {
		{ "not CA", { "basicConstraints=critical,CA:FALSE", "keyUsage=critical,keyCertSign", "subjectKeyIdentifier=hash", "authorityKeyIdentifier=keyid:always" }, "signer-not-ca" },
		{ "no keyCertSign", { "basicConstraints=critical,CA:TRUE", "keyUsage=critical,cRLSign", "subjectKeyIdentifier=hash", "authorityKeyIdentifier=keyid:always" }, "signer-no-key-cert-sign" },
		{ "ID with path", { CA_EXTS("subjectAltName=URI:spiffe://example.org/ca") }, "signer-id-path" },
		{ "two URIs", { CA_EXTS("subjectAltName=URI:spiffe://example.org,URI:spiffe://example.com") }, "signer-uri-san-count" },
		{ "no SPIFFE ID is fine", { CA_EXTS("subjectAltName=DNS:ca.example.org") }, "" },
	};
	const char *const exts[] = { GOOD_EXTS("subjectAltName=URI:spiffe://example.org/a"), NULL };

	(void)state;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		EVP_PKEY *k = tu_key();
		X509 *inter = tu_cert(k, P.root, P.root_key, "int2", T0 - HOUR, T0 + HOUR, cases[i].exts);
		X509 *leaf = tu_cert(P.leaf_key, inter, k, "leaf", T0 - HOUR, T0 + HOUR, exts);
		const char *rule = verify_rule(leaf, inter, NULL);

		if (strcmp(rule, cases[i].rule) != 0)
			fail_msg("case \"%s\": got \"%s\", want \"%s\"", cases[i].name, rule, cases[i].rule);
		X509_free(inter);
		EVP_PKEY_free(k);
	}
}

static void test_weak_leaf_key(void **state)
{
	const char *const exts[] = { GOOD_EXTS("subjectAltName=URI:spiffe://example.org/a"), NULL };
	EVP_PKEY *rsa = EVP_RSA_gen(1024);
	X509 *leaf;

	(void)state;
	assert_non_null(rsa);
	leaf = tu_cert(rsa, P.inter, P.int_key, "leaf", T0 - HOUR, T0 + HOUR, exts);
	assert_string_equal(verify_rule(leaf, P.inter, NULL), "weak-key");
	EVP_PKEY_free(rsa);
}

static void test_bundle_intermediate_is_anchor(void **state)
{
	const char *const exts[] = { GOOD_EXTS("subjectAltName=URI:spiffe://example.org/a"), NULL };
	zt_bundle_set *set = zt_bundle_set_new();
	zt_bundle *b = zt_bundle_new("example.org", NULL);
	STACK_OF(X509) *sk = chain_of(leaf_with(exts, T0 - HOUR, T0 + HOUR), NULL);
	zt_svid_opts o = { .now = T0 };
	zt_svid_info info;
	zt_err e;

	(void)state;
	assert_int_equal(zt_bundle_add_x509(b, P.inter, NULL), 0);
	assert_int_equal(zt_bundle_set_put(set, b, NULL), 0);
	assert_int_equal(zt_svid_verify(set, sk, &o, &info, &e), 0);
	assert_int_equal(info.chain_len, 2);
	sk_X509_pop_free(sk, X509_free);
	zt_bundle_set_free(set);
}

static void test_empty_and_long_chain(void **state)
{
	STACK_OF(X509) *sk = sk_X509_new_null();
	zt_svid_info info;
	zt_err e;

	(void)state;
	assert_int_not_equal(zt_svid_verify(P.set, sk, NULL, &info, &e), 0);
	assert_string_equal(e.rule, "chain-empty");
	for (int i = 0; i < ZT_CHAIN_MAX_CERTS + 1; i++) {
		X509_up_ref(P.inter);
		sk_X509_push(sk, P.inter);
	}
	assert_int_not_equal(zt_svid_verify(P.set, sk, NULL, &info, &e), 0);
	assert_string_equal(e.rule, "chain-too-long");
	sk_X509_pop_free(sk, X509_free);
}

/* go-spiffe's test data: what the SPIFFE reference library accepts and rejects */
static void test_go_spiffe_vectors(void **state)
{
	static const struct {
		const char *file;
		int index; /* which certificate of the file */
		int signer;
		const char *rule; /* "" = accepted */
	} cases[] = {
		{ "good-leaf-only.pem", 0, 0, "" },
		{ "good-leaf-and-intermediate.pem", 0, 0, "" },
		{ "good-leaf-and-intermediate.pem", 1, 1, "" },
		{ "wrong-leaf-ca-true.pem", 0, 0, "leaf-ca" },
		{ "wrong-leaf-cert-sign.pem", 0, 0, "leaf-key-cert-sign" },
		{ "wrong-leaf-crl-sign.pem", 0, 0, "leaf-crl-sign" },
		{ "wrong-leaf-no-digital-signature.pem", 0, 0, "leaf-no-digital-signature" },
		{ "wrong-leaf-empty-id.pem", 0, 0, "uri-san-missing" },
		{ "wrong-intermediate-no-ca.pem", 1, 1, "signer-not-ca" },
		{ "wrong-intermediate-no-key-cert-sign.pem", 1, 1, "signer-no-key-cert-sign" },
	};
	char rel[128];

	(void)state;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		STACK_OF(X509) *sk = NULL;
		zt_spiffe_id id;
		zt_err e;
		int r;

		snprintf(rel, sizeof rel, "go-spiffe/x509svid/%s", cases[i].file);
		assert_int_equal(zt_certs_load(tu_vector(rel), &sk, &e), 0);
		assert_true(sk_X509_num(sk) > cases[i].index);
		zt_err_clear(&e);
		r = cases[i].signer ? zt_svid_check_signer(sk_X509_value(sk, cases[i].index), "ca", &e)
				    : zt_svid_check_leaf(sk_X509_value(sk, cases[i].index), &id, &e);
		if ((r == 0) != (cases[i].rule[0] == '\0') || strcmp(e.rule, cases[i].rule) != 0)
			fail_msg("%s[%d]: got r=%d rule \"%s\" (%s), want \"%s\"", cases[i].file,
				 cases[i].index, r, e.rule, e.msg, cases[i].rule);
		if (r == 0 && !cases[i].signer)
			assert_string_equal(id.str, "spiffe://example.org/workload-1");
		sk_X509_pop_free(sk, X509_free);
	}
}

static void test_corrupt_inputs(void **state)
{
	STACK_OF(X509) *sk = NULL;
	zt_err e;

	(void)state;
	assert_int_not_equal(zt_certs_load(tu_vector("go-spiffe/x509svid/corrupt-cert.pem"), &sk, &e), 0);
	assert_null(sk);
	assert_int_not_equal(zt_certs_load(tu_vector("go-spiffe/x509svid/not-pem"), &sk, &e), 0);
	assert_null(sk);
	/* a key where certificates were expected is named as such */
	assert_int_not_equal(zt_certs_load(tu_vector("go-spiffe/x509svid/key-pkcs8-ecdsa.pem"), &sk, &e), 0);
	assert_non_null(strstr(e.msg, "PRIVATE KEY"));
	/* a certificate file with its key appended is refused the same way:
	 * zt never reads key material from a file meant to be public */
	assert_int_not_equal(zt_certs_load(tu_vector("go-spiffe/x509svid/good-cert-and-key.pem"), &sk, &e), 0);
	assert_non_null(strstr(e.msg, "PRIVATE KEY"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_good_chain),
		cmocka_unit_test(test_ecfast_keys),
		cmocka_unit_test(test_leaf_rules),
		cmocka_unit_test(test_empty_subject_needs_critical_san),
		cmocka_unit_test(test_time_and_trust),
		cmocka_unit_test(test_untrusted_root_and_signature),
		cmocka_unit_test(test_remembered_signatures),
		cmocka_unit_test(test_signer_rules),
		cmocka_unit_test(test_weak_leaf_key),
		cmocka_unit_test(test_bundle_intermediate_is_anchor),
		cmocka_unit_test(test_empty_and_long_chain),
		cmocka_unit_test(test_go_spiffe_vectors),
		cmocka_unit_test(test_corrupt_inputs),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
