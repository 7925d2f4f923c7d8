/* Unit tests: the certificate authority (identity/ca.c). */
#include "testutil.h"

#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "identity/identity.h"

static int mode_of(const char *dir, const char *rel)
{
	char p[PATH_MAX];
	struct stat st;

	snprintf(p, sizeof p, "%s/%s", dir, rel);
	if (stat(p, &st) != 0)
		return -1;
	return (int)(st.st_mode & 0777);
}

static zt_bundle_set *set_of(zt_ca *ca)
{
	zt_bundle_set *s = zt_bundle_set_new();
	zt_bundle *b = zt_ca_bundle(ca, NULL);

	assert_non_null(b);
	assert_int_equal(zt_bundle_set_put(s, b, NULL), 0);
	return s;
}

static STACK_OF(X509) *issue(zt_ca *ca, const char *id_s, int64_t ttl, zt_err *e)
{
	STACK_OF(X509) *chain = NULL;
	zt_issue_opts o = { .ttl = ttl };
	EVP_PKEY *k = tu_key();
	zt_pubkey *pk = zt_pubkey_from_pkey(k, NULL);
	zt_spiffe_id id;
	zt_buf der;

	zt_buf_init(&der, 1 << 20);
	assert_int_equal(zt_id_parse(id_s, strlen(id_s), &id, NULL), 0);
	assert_non_null(pk);
	if (zt_ca_issue(ca, &id, pk, &o, &der, e) == 0) {
		assert_int_equal(zt_certs_parse_der(der.p, der.len, &chain, e), 0);
		/* the leaf holds exactly the key it was issued for */
		assert_true(zt_key_matches_cert(k, sk_X509_value(chain, 0)));
	}
	zt_buf_free(&der, 0);
	zt_pubkey_free(pk);
	EVP_PKEY_free(k);
	return chain;
}

static void test_init_layout_and_refusal(void **state)
{
	char *dir = tu_mkdtemp(), ca_dir[PATH_MAX], *before, *after;
	size_t n1, n2;
	zt_err e;

	(void)state;
	snprintf(ca_dir, sizeof ca_dir, "%s/ca", dir);
	assert_int_equal(zt_ca_init(ca_dir, "example.org", 86400, 3600, &e), 0);
	assert_int_equal(mode_of(ca_dir, ""), 0700);
	assert_int_equal(mode_of(ca_dir, "root.key"), 0600);
	assert_int_equal(mode_of(ca_dir, "root.pem"), 0644);
	assert_int_equal(mode_of(ca_dir, "ca.json"), 0600);
	{
		char p[PATH_MAX];

		snprintf(p, sizeof p, "%s/root.key", ca_dir);
		before = tu_read(p, &n1);
		assert_int_not_equal(zt_ca_init(ca_dir, "example.org", 86400, 3600, &e), 0);
		assert_int_equal(e.code, ZT_EEXIST);
		assert_non_null(strstr(e.msg, "already holds a CA"));
		after = tu_read(p, &n2);
		assert_int_equal(n1, n2);
		assert_memory_equal(before, after, n1);
		free(before);
		free(after);
	}
	assert_int_not_equal(zt_ca_init(ca_dir, "Bad.Domain", 86400, 3600, &e), 0);
	assert_string_equal(e.rule, "id-td-case");
	tu_rmtree(dir);
}

static void test_issue_and_verify(void **state)
{
	char *dir = tu_mkdtemp();
	zt_ca *ca;
	zt_bundle_set *set;
	STACK_OF(X509) *chain;
	zt_svid_info info;
	int64_t nb, na, sna;
	zt_err e;

	(void)state;
	assert_int_equal(zt_ca_init(dir, "example.org", 86400, 7200, &e), 0);
	ca = zt_ca_open(dir, &e);
	assert_non_null(ca);
	assert_string_equal(zt_ca_td(ca), "example.org");
	chain = issue(ca, "spiffe://example.org/ns/a/sa/b", 600, &e);
	assert_non_null(chain);
	assert_int_equal(sk_X509_num(chain), 2);
	set = set_of(ca);
	assert_int_equal(zt_svid_verify(set, chain, NULL, &info, &e), 0);
	assert_string_equal(info.id.str, "spiffe://example.org/ns/a/sa/b");
	assert_int_equal(zt_cert_times(sk_X509_value(chain, 0), &nb, &na), 0);
	assert_true(na - zt_now() <= 600 && na - zt_now() >= 590);
	sk_X509_pop_free(chain, X509_free);
	/* a TTL past the signing CA's life is cut to it: never outlive the signer */
	chain = issue(ca, "spiffe://example.org/ns/a/sa/b", 86400, &e);
	assert_non_null(chain);
	assert_int_equal(zt_cert_times(sk_X509_value(chain, 0), &nb, &na), 0);
	assert_int_equal(zt_cert_times(zt_ca_active(ca), &nb, &sna), 0);
	assert_int_equal(na, sna);
	sk_X509_pop_free(chain, X509_free);
	/* refusals */
	assert_null(issue(ca, "spiffe://other.org/ns/a/sa/b", 600, &e));
	assert_string_equal(e.rule, "td-mismatch");
	assert_null(issue(ca, "spiffe://example.org", 600, &e));
	assert_string_equal(e.rule, "id-no-path");
	assert_null(issue(ca, "spiffe://example.org/a", ZT_SVID_TTL_MAX + 1, &e));
	zt_bundle_set_free(set);
	zt_ca_free(ca);
	tu_rmtree(dir);
}

static void test_workload_key_strength(void **state)
{
	char *dir = tu_mkdtemp();
	static const struct {
		const char *alg, *opt;
		int ok;
	} keys[] = {
		{ "RSA", "rsa_keygen_bits:1024", 0 },
		{ "RSA", "rsa_keygen_bits:2048", 1 },
		{ "EC", "ec_paramgen_curve:secp256k1", 0 },
		{ "EC", "ec_paramgen_curve:P-384", 1 },
		{ "ED25519", NULL, 1 },
	};
	zt_spiffe_id id;
	zt_ca *ca;
	zt_err e;

	(void)state;
	assert_int_equal(zt_ca_init(dir, "example.org", 86400, 3600, &e), 0);
	ca = zt_ca_open(dir, &e);
	assert_int_equal(zt_id_parse("spiffe://example.org/a", 22, &id, NULL), 0);
	for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
		EVP_PKEY_CTX *kc = EVP_PKEY_CTX_new_from_name(NULL, keys[i].alg, NULL);
		EVP_PKEY *k = NULL;
		zt_pubkey *pk;
		zt_buf der;
		int r;

		assert_non_null(kc);
		assert_int_equal(EVP_PKEY_keygen_init(kc), 1);
		if (keys[i].opt) {
			char opt[64], *colon;

			snprintf(opt, sizeof opt, "%s", keys[i].opt);
			colon = strchr(opt, ':');
			*colon = '\0';
			assert_true(EVP_PKEY_CTX_ctrl_str(kc, opt, colon + 1) > 0);
		}
		assert_int_equal(EVP_PKEY_keygen(kc, &k), 1);
		pk = zt_pubkey_from_pkey(k, &e);
		assert_non_null(pk);
		zt_buf_init(&der, 1 << 20);
		r = zt_ca_issue(ca, &id, pk, NULL, &der, &e);
		if ((r == 0) != keys[i].ok)
			fail_msg("key %zu (%s %s): got %d (%s)", i, keys[i].alg,
				 keys[i].opt ? keys[i].opt : "", r, e.msg);
		if (!keys[i].ok)
			assert_string_equal(e.rule, "weak-key");
		if (r == 0) {
			STACK_OF(X509) *chain;
			zt_bundle_set *set = set_of(ca);
			zt_svid_info info;

			/* the SPKI written by the slow path is what OpenSSL reads back */
			assert_int_equal(zt_certs_parse_der(der.p, der.len, &chain, &e), 0);
			assert_true(zt_key_matches_cert(k, sk_X509_value(chain, 0)));
			assert_int_equal(zt_svid_verify(set, chain, NULL, &info, &e), 0);
			sk_X509_pop_free(chain, X509_free);
			zt_bundle_set_free(set);
		}
		zt_buf_free(&der, 0);
		zt_pubkey_free(pk);
		EVP_PKEY_free(k);
		EVP_PKEY_CTX_free(kc);
	}
	zt_ca_free(ca);
	tu_rmtree(dir);
}

static void test_rotate_keeps_old_svids(void **state)
{
	char *dir = tu_mkdtemp();
	zt_ca *ca;
	zt_bundle *b;
	zt_bundle_set *set;
	STACK_OF(X509) *old, *cur;
	zt_svid_info info;
	uint64_t seq;
	zt_err e;

	(void)state;
	assert_int_equal(zt_ca_init(dir, "example.org", 86400, 7200, &e), 0);
	ca = zt_ca_open(dir, &e);
	old = issue(ca, "spiffe://example.org/a", 600, &e);
	b = zt_ca_bundle(ca, &e);
	seq = zt_bundle_sequence(b);
	zt_bundle_free(b);
	assert_int_equal(zt_ca_rotate(ca, 7200, &e), 0);
	cur = issue(ca, "spiffe://example.org/a", 600, &e);
	assert_int_not_equal(X509_NAME_cmp(X509_get_issuer_name(sk_X509_value(old, 0)),
					   X509_get_issuer_name(sk_X509_value(cur, 0))), 0);
	b = zt_ca_bundle(ca, &e);
	assert_int_equal(zt_bundle_x509_count(b), 3);
	assert_int_equal(zt_bundle_sequence(b), seq + 1);
	zt_bundle_free(b);
	set = set_of(ca);
	assert_int_equal(zt_svid_verify(set, old, NULL, &info, &e), 0);
	assert_int_equal(zt_svid_verify(set, cur, NULL, &info, &e), 0);
	zt_bundle_set_free(set);
	zt_ca_free(ca);
	/* reopened from disk: same state */
	ca = zt_ca_open(dir, &e);
	assert_non_null(ca);
	assert_int_equal(zt_ca_signing_count(ca), 2);
	/* three hours on, the first signing CA has expired: rotation prunes it */
	zt_clock_set(zt_now() + 3 * 3600);
	assert_int_equal(zt_ca_rotate(ca, 7200, &e), 0);
	assert_int_equal(zt_ca_signing_count(ca), 1);
	zt_ca_free(ca);
	ca = zt_ca_open(dir, &e);
	assert_non_null(ca);
	assert_int_equal(zt_ca_signing_count(ca), 1);
	zt_clock_set(0);
	sk_X509_pop_free(old, X509_free);
	sk_X509_pop_free(cur, X509_free);
	zt_ca_free(ca);
	tu_rmtree(dir);
}

static void test_expired_signer_refuses(void **state)
{
	char *dir = tu_mkdtemp();
	zt_ca *ca;
	zt_err e;

	(void)state;
	assert_int_equal(zt_ca_init(dir, "example.org", 86400, 600, &e), 0);
	ca = zt_ca_open(dir, &e);
	zt_clock_set(zt_now() + 3600);
	assert_null(issue(ca, "spiffe://example.org/a", 600, &e));
	assert_int_equal(e.code, ZT_ESTATE);
	assert_non_null(strstr(e.msg, "zt ca rotate"));
	zt_clock_set(0);
	zt_ca_free(ca);
	tu_rmtree(dir);
}

static void test_foreign_signer_file_refused(void **state)
{
	char *d1 = tu_mkdtemp(), *d2 = tu_mkdtemp(), cmd[3 * PATH_MAX];
	zt_ca *ca;
	zt_err e;

	(void)state;
	assert_int_equal(zt_ca_init(d1, "example.org", 86400, 600, &e), 0);
	assert_int_equal(zt_ca_init(d2, "example.org", 86400, 600, &e), 0);
	/* a signing CA of another root dropped into the folder gains no trust */
	snprintf(cmd, sizeof cmd, "cp %s/signing/* %s/signing/", d2, d1);
	assert_int_equal(system(cmd), 0);
	ca = zt_ca_open(d1, &e);
	assert_null(ca);
	assert_non_null(strstr(e.msg, "not issued by this CA's root"));
	ca = zt_ca_open(d2, &e);
	assert_non_null(ca);
	zt_ca_free(ca);
	assert_null(zt_ca_open("/nonexistent/zt-ca", &e));
	assert_non_null(strstr(e.msg, "zt ca init"));
	tu_rmtree(d1);
	tu_rmtree(d2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_init_layout_and_refusal),
		cmocka_unit_test(test_issue_and_verify),
		cmocka_unit_test(test_workload_key_strength),
		cmocka_unit_test(test_rotate_keeps_old_svids),
		cmocka_unit_test(test_expired_signer_refuses),
		cmocka_unit_test(test_foreign_signer_file_refused),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
