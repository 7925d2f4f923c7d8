/*
 * Fuzz target: X.509-SVID validation of DER input. The input is one or more
 * concatenated DER certificates (leaf first), validated against a real CA's
 * bundle made once at start-up.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "crypto/crypto.h"
#include "identity/identity.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static zt_bundle_set *bundles;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char dir[] = "/tmp/zt-fuzz-svid-XXXXXX";
	zt_ca *ca;
	zt_bundle *b;

	(void)argc;
	(void)argv;
	zt_crypto_init(); /* certificates parse as in the proxy (crypto/ecfast.c) */
	if (!mkdtemp(dir) || zt_ca_init(dir, "example.org", 86400, 3600, NULL) != 0 ||
	    !(ca = zt_ca_open(dir, NULL)) || !(b = zt_ca_bundle(ca, NULL)))
		abort();
	bundles = zt_bundle_set_new();
	if (zt_bundle_set_put(bundles, b, NULL) != 0)
		abort();
	zt_ca_free(ca);
	char cmd[128];
	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	if (system(cmd) != 0)
		abort();
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	STACK_OF(X509) *chain = sk_X509_new_null();
	const unsigned char *p = data, *end = data + size;
	zt_svid_info info;
	zt_spiffe_id id;
	zt_err e;

	while (p < end && sk_X509_num(chain) < ZT_CHAIN_MAX_CERTS + 2) {
		const unsigned char *start = p;
		X509 *x = d2i_X509(NULL, &p, (long)(end - p));

		if (!x || p == start) {
			X509_free(x);
			break;
		}
		sk_X509_push(chain, x);
	}
	if (sk_X509_num(chain) > 0) {
		(void)zt_svid_check_leaf(sk_X509_value(chain, 0), &id, &e);
		(void)zt_svid_check_signer(sk_X509_value(chain, 0), "ca", &e);
		if (zt_svid_verify(bundles, chain, NULL, &info, &e) != 0 && e.rule[0] == '\0')
			abort(); /* every rejection names its rule */
	}
	/* the strict single-certificate parser on the raw input too */
	X509_free(zt_cert_parse_der(data, size, &e));
	sk_X509_pop_free(chain, X509_free);
	return 0;
}
