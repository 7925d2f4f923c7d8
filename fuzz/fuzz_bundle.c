/* Fuzz target: trust bundles in the SPIFFE format (JSON) and as PEM. */
#include <stdint.h>
#include <stdlib.h>

#include "crypto/crypto.h"
#include "identity/identity.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* keys and certificates parse as in the zt command (crypto/ecfast.c) */
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	zt_crypto_init();
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	zt_bundle *b;
	zt_buf out;
	zt_err e;

	b = zt_bundle_parse_spiffe("example.org", (const char *)data, size, &e);
	if (b) {
		/* what parses must serialise and parse back to the same authorities */
		zt_bundle *again;

		zt_buf_init(&out, 64u << 20);
		if (zt_bundle_to_spiffe(b, &out, &e) != 0)
			abort();
		again = zt_bundle_parse_spiffe("example.org", (const char *)out.p, out.len, &e);
		if (!again || zt_bundle_x509_count(again) != zt_bundle_x509_count(b))
			abort();
		zt_bundle_free(again);
		zt_buf_free(&out, 0);
		zt_bundle_free(b);
	}
	zt_bundle_free(zt_bundle_parse_pem("example.org", data, size, &e));
	return 0;
}
