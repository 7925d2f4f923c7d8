/* Fuzz target: certificate signing requests (PEM or DER) and private keys. */
#include <stdint.h>

#include "crypto/crypto.h"

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
	zt_err e;

	zt_pubkey_free(zt_csr_parse(data, size, &e));
	EVP_PKEY_free(zt_key_parse_pem(data, size, &e));
	return 0;
}
