/* Fuzz target: certificate signing requests (PEM or DER) and private keys. */
#include <stdint.h>

#include "crypto/crypto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	zt_err e;

	zt_pubkey_free(zt_csr_parse(data, size, &e));
	EVP_PKEY_free(zt_key_parse_pem(data, size, &e));
	return 0;
}
