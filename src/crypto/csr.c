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

int zt_csr_make(EVP_PKEY *key, zt_buf *pem, zt_err *e)
{
	X509_REQ *req = X509_REQ_new();
	BIO *bio = BIO_new(BIO_s_mem());
	BUF_MEM *mem;
	int r = -ZT_ECRYPTO;

	/* an empty subject: the issuer decides the names (X.509-SVID 2) */
	if (!req || !bio || !X509_REQ_set_version(req, 0) || !X509_REQ_set_pubkey(req, key) ||
	    X509_REQ_sign(req, key, EVP_sha256()) <= 0 || !PEM_write_bio_X509_REQ(bio, req)) {
		zt_crypto_err(e, ZT_ECRYPTO, "cannot make a certificate request");
		goto out;
	}
	BIO_get_mem_ptr(bio, &mem);
	r = zt_buf_append(pem, mem->data, mem->length, e);
out:
	BIO_free(bio);
	X509_REQ_free(req);
	return r;
}
