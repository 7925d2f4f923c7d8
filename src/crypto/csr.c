/* crypto/csr.c: PKCS#10 requests — only the proven public key is used. */
#include "crypto_int.h"

#include <openssl/pem.h>

zt_pubkey *zt_csr_parse(const uint8_t *data, size_t len, zt_err *e)
{
	X509_REQ *req = NULL;
	EVP_PKEY *pub = NULL;
	zt_pubkey *pk = NULL;

	if (len == 0 || len > ZT_PEM_MAX_BYTES) {
		zt_err_set(e, ZT_EPARSE, "certificate request is empty or too large");
		return NULL;
	}
	if (data[0] == 0x30) {
		const unsigned char *p = data;

		req = d2i_X509_REQ(NULL, &p, (long)len);
		if (req && p != data + len) {
			X509_REQ_free(req);
			zt_err_set(e, ZT_EPARSE, "unexpected bytes after the certificate request");
			return NULL;
		}
	} else {
		BIO *bio = BIO_new_mem_buf(data, (int)len);

		if (bio)
			req = PEM_read_bio_X509_REQ(bio, NULL, NULL, NULL);
		BIO_free(bio);
	}
	if (!req) {
		zt_crypto_err(e, ZT_EPARSE,
			      "not a PKCS#10 certificate request (PEM \"CERTIFICATE REQUEST\" or DER)");
		return NULL;
	}
	pub = X509_REQ_get_pubkey(req);
	if (!pub) {
		zt_crypto_err(e, ZT_EPARSE, "the certificate request has no usable public key");
	} else if (X509_REQ_verify(req, pub) != 1) {
		/* proof of possession: the requester must hold the private key */
		zt_crypto_err(e, ZT_EVERIFY,
			      "the certificate request's signature does not verify: it was not signed by the key it carries");
	} else {
		pk = zt_pubkey_from_x509_pubkey(pub, X509_REQ_get_X509_PUBKEY(req), e);
	}
	EVP_PKEY_free(pub);
	X509_REQ_free(req);
	return pk;
}
