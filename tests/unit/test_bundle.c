/* Unit tests: trust bundles (identity/bundle.c). */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "identity/identity.h"

static zt_bundle *parse_vector(const char *name, zt_err *e)
{
	char rel[128], *text;
	zt_bundle *b;
	size_t n;

	snprintf(rel, sizeof rel, "go-spiffe/spiffebundle/%s", name);
	text = tu_read(tu_vector(rel), &n);
	assert_non_null(text);
	b = zt_bundle_parse_spiffe("example.org", text, n, e);
	free(text);
	return b;
}

static void test_go_spiffe_bundles(void **state)
{
	zt_bundle *b;
	zt_err e;

	(void)state;
	b = parse_vector("spiffebundle_valid_1.json", &e);
	assert_non_null(b);
	assert_int_equal(zt_bundle_x509_count(b), 1);
	zt_bundle_free(b);
	b = parse_vector("spiffebundle_valid_2.json", &e);
	assert_non_null(b);
	assert_int_equal(zt_bundle_sequence(b), 1);
	assert_int_equal(zt_bundle_refresh_hint(b), 60);
	zt_bundle_free(b);
	/* X.509-SVID 6.2: values of x5c after the first are ignored */
	b = parse_vector("spiffebundle_multiple_x509.json", &e);
	assert_non_null(b);
	assert_int_equal(zt_bundle_x509_count(b), 1);
	zt_bundle_free(b);
	/* other SVID types (wit-svid) are not ours to judge */
	b = parse_vector("spiffebundle_valid_with_wit.json", &e);
	assert_non_null(b);
	zt_bundle_free(b);
	b = parse_vector("spiffebundle_no_keys.json", &e);
	assert_non_null(b);
	assert_int_equal(zt_bundle_x509_count(b), 0);
	zt_bundle_free(b);
	/* JWT-SVID: a jwt-svid key without kid is an error */
	assert_null(parse_vector("spiffebundle_missing_kid.json", &e));
	assert_non_null(strstr(e.msg, "kid"));
}

static void test_round_trip(void **state)
{
	char *dir = tu_mkdtemp();
	zt_ca *ca;
	zt_bundle *b, *b2, *b3;
	zt_buf out, pem;
	zt_err e;

	(void)state;
	assert_int_equal(zt_ca_init(dir, "example.org", 86400, 3600, &e), 0);
	ca = zt_ca_open(dir, &e);
	assert_int_equal(zt_ca_rotate(ca, 3600, &e), 0);
	b = zt_ca_bundle(ca, &e);
	assert_non_null(b);
	zt_buf_init(&out, 1 << 20);
	assert_int_equal(zt_bundle_to_spiffe(b, &out, &e), 0);
	assert_int_equal(zt_buf_terminate(&out, &e), 0);
	assert_null(strstr((char *)out.p, "\"kid\"")); /* X.509-SVID 6.1 */
	b2 = zt_bundle_parse_spiffe("example.org", (char *)out.p, out.len, &e);
	assert_non_null(b2);
	assert_int_equal(zt_bundle_x509_count(b2), 3);
	assert_int_equal(zt_bundle_sequence(b2), 2);
	for (int i = 0; i < 3; i++)
		assert_int_equal(X509_cmp(zt_bundle_x509_get(b, i), zt_bundle_x509_get(b2, i)), 0);
	zt_buf_init(&pem, 1 << 20);
	assert_int_equal(zt_bundle_to_pem(b, &pem, &e), 0);
	b3 = zt_bundle_parse_pem("example.org", pem.p, pem.len, &e);
	assert_non_null(b3);
	assert_int_equal(zt_bundle_x509_count(b3), 3);
	zt_buf_free(&out, 0);
	zt_buf_free(&pem, 0);
	zt_bundle_free(b);
	zt_bundle_free(b2);
	zt_bundle_free(b3);
	zt_ca_free(ca);
	tu_rmtree(dir);
}

static void test_load_infers_trust_domain(void **state)
{
	char *dir = tu_mkdtemp(), path[4200];
	zt_ca *ca;
	zt_bundle *b;
	zt_buf out;
	zt_err e;

	(void)state;
	snprintf(path, sizeof path, "%s/ca", dir);
	assert_int_equal(zt_ca_init(path, "corp.example", 86400, 3600, &e), 0);
	ca = zt_ca_open(path, &e);
	b = zt_ca_bundle(ca, &e);
	zt_buf_init(&out, 1 << 20);
	assert_int_equal(zt_bundle_to_spiffe(b, &out, &e), 0);
	zt_bundle_free(b);
	snprintf(path, sizeof path, "%s/bundle.json", dir);
	assert_int_equal(zt_file_write(path, out.p, out.len, 0644, 0, &e), 0);
	b = zt_bundle_load(NULL, path, &e);
	assert_non_null(b);
	assert_string_equal(zt_bundle_td(b), "corp.example");
	zt_bundle_free(b);
	b = zt_bundle_load("other.example", path, &e);
	assert_non_null(b);
	assert_string_equal(zt_bundle_td(b), "other.example");
	zt_bundle_free(b);
	assert_null(zt_bundle_load("Bad", path, &e));
	zt_buf_free(&out, 0);
	zt_ca_free(ca);
	tu_rmtree(dir);
}

static void test_hostile_documents(void **state)
{
	static const struct {
		const char *doc;
		const char *want; /* substring of the message */
	} cases[] = {
		{ "[]", "JSON object" },
		{ "{\"keys\": {}}", "array" },
		{ "{\"keys\": [1]}", "JWK object" },
		{ "{\"keys\": [{\"kty\": \"EC\"}]}", "use" },
		{ "{\"keys\": [{\"use\": \"x509-svid\", \"x5c\": \"abc\"}]}", "x5c" },
		{ "{\"keys\": [{\"use\": \"x509-svid\", \"x5c\": [\"!!!!\"]}]}", "base64" },
		{ "{\"keys\": [{\"use\": \"x509-svid\", \"x5c\": [\"AAAA\"]}]}", "certificate" },
		{ "{\"spiffe_sequence\": -1}", "spiffe_sequence" },
		{ "{\"spiffe_refresh_hint\": \"1m\"}", "spiffe_refresh_hint" },
		{ "{\"keys\": [], \"keys\": []}", "duplicate" },
		{ "{\"keys\": [{\"use\": \"jwt-svid\", \"kid\": \"\", \"kty\": \"EC\"}]}", "kid" },
		{ "{", "invalid JSON" },
	};

	(void)state;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		zt_err e;
		zt_bundle *b = zt_bundle_parse_spiffe("example.org", cases[i].doc,
						      strlen(cases[i].doc), &e);

		if (b || !strstr(e.msg, cases[i].want))
			fail_msg("case %zu (%s): got %s", i, cases[i].doc, b ? "accepted" : e.msg);
	}
}

static void test_jwk_must_match_certificate(void **state)
{
	char *text;
	size_t n;
	json_t *doc;
	char *mod;
	zt_bundle *b;
	zt_err e;

	(void)state;
	text = tu_read(tu_vector("go-spiffe/spiffebundle/spiffebundle_valid_1.json"), &n);
	doc = zt_json_parse(text, n, &e);
	assert_non_null(doc);
	/* claim another curve: the JWK no longer describes its x5c certificate */
	json_object_set_new(json_array_get(json_object_get(doc, "keys"), 0), "crv", json_string("P-256"));
	mod = json_dumps(doc, 0);
	b = zt_bundle_parse_spiffe("example.org", mod, strlen(mod), &e);
	assert_null(b);
	assert_string_equal(e.rule, "bundle-key-mismatch");
	free(mod);
	json_decref(doc);
	free(text);
}

static void test_non_ca_refused(void **state)
{
	const char *const leaf_exts[] = { "basicConstraints=critical,CA:FALSE",
					  "keyUsage=critical,digitalSignature", NULL };
	EVP_PKEY *k = tu_key();
	X509 *leaf = tu_cert(k, NULL, NULL, "leaf", 0, 2000000000, leaf_exts);
	zt_bundle *b = zt_bundle_new("example.org", NULL);
	zt_err e;

	(void)state;
	assert_int_not_equal(zt_bundle_add_x509(b, leaf, &e), 0);
	assert_string_equal(e.rule, "signer-not-ca");
	assert_int_equal(zt_bundle_x509_count(b), 0);
	zt_bundle_free(b);
	X509_free(leaf);
	EVP_PKEY_free(k);
	assert_null(zt_bundle_new("spiffe://example.org", &e));
}

static void test_bundle_set(void **state)
{
	zt_bundle_set *s = zt_bundle_set_new();
	zt_bundle *a = zt_bundle_new("a.example", NULL), *a2 = zt_bundle_new("a.example", NULL);
	zt_bundle *b = zt_bundle_new("b.example", NULL);

	(void)state;
	zt_bundle_set_sequence(a2, 7);
	assert_int_equal(zt_bundle_set_put(s, a, NULL), 0);
	assert_int_equal(zt_bundle_set_put(s, b, NULL), 0);
	assert_int_equal(zt_bundle_set_put(s, a2, NULL), 0); /* replaces a */
	assert_ptr_equal(zt_bundle_set_get(s, "a.example", 9), a2);
	assert_ptr_equal(zt_bundle_set_get(s, "b.example", 9), b);
	assert_null(zt_bundle_set_get(s, "a.exampl", 8));
	assert_null(zt_bundle_set_get(s, "c.example", 9));
	zt_bundle_set_free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_go_spiffe_bundles),
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_load_infers_trust_domain),
		cmocka_unit_test(test_hostile_documents),
		cmocka_unit_test(test_jwk_must_match_certificate),
		cmocka_unit_test(test_non_ca_refused),
		cmocka_unit_test(test_bundle_set),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
