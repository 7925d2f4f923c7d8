/* crypto/keys.c: private keys — generation, PEM in and out, matching. */
#include "crypto.h"

#include <string.h>

#include <openssl/ec.h>
#include <openssl/pem.h>

/*
 * By curve NID, not EVP_EC_gen's group name: the name is a provider
 * parameter that the built-in EC method ecfast.c puts in force does not take.
 */
EVP_PKEY *zt_key_generate(zt_err *e)
{
	EVP_PKEY_CTX *c = EVP_PKEY_CTX_new_id(EVP_PKEY_EC, NULL);
	EVP_PKEY *k = NULL;

	if (!c || EVP_PKEY_keygen_init(c) <= 0 ||
	    EVP_PKEY_CTX_set_ec_paramgen_curve_nid(c, NID_X9_62_prime256v1) <= 0 ||
	    EVP_PKEY_CTX_set_ec_param_enc(c, OPENSSL_EC_NAMED_CURVE) <= 0 ||
	    EVP_PKEY_keygen(c, &k) <= 0) {
		EVP_PKEY_free(k);
		k = NULL;
		zt_crypto_err(e, ZT_ECRYPTO, "cannot generate an ECDSA P-256 key");
	}
	EVP_PKEY_CTX_free(c);
	return k;
}

EVP_PKEY *zt_key_parse_pem(const uint8_t *pem, size_t len, zt_err *e)
{
	EVP_PKEY *k = NULL;
	BIO *bio;

	if (len > ZT_PEM_MAX_BYTES) {
		zt_err_set(e, ZT_ELIMIT, "key data is larger than %u bytes", ZT_PEM_MAX_BYTES);
		return NULL;
	}
	bio = BIO_new_mem_buf(pem, (int)len);
	if (!bio) {
		zt_err_set(e, ZT_ENOMEM, "out of memory");
		return NULL;
	}
	/* an empty passphrase callback: encrypted keys fail instead of prompting */
	static char empty[1];
	k = zt_key_builtin(PEM_read_bio_PrivateKey(bio, NULL, NULL, empty));
	BIO_free(bio);
	if (!k)
		zt_crypto_err(e, ZT_EPARSE,
			      "no usable private key (expected an unencrypted PEM private key)");
	return k;
}

EVP_PKEY *zt_key_load(const char *path, zt_err *e)
{
	EVP_PKEY *k;
	zt_buf b;

	if (zt_file_read(path, ZT_PEM_MAX_BYTES, &b, e) != 0)
		return NULL;
	if (zt_unseal_in_place(&b, ZT_SEAL_LABEL_KEY, e) != 0) {
		zt_buf_free(&b, 1);
		zt_err_wrap(e, "%s", path);
		return NULL;
	}
	k = zt_key_parse_pem(b.p, b.len, e);
	zt_buf_free(&b, 1);
	if (!k)
		zt_err_wrap(e, "%s", path);
	return k;
}

int zt_key_to_pem(EVP_PKEY *key, zt_buf *out, zt_err *e)
{
	BIO *bio = BIO_new(BIO_s_secmem());
	char *data;
	long n;
	int r;

	if (!bio)
		return zt_err_set(e, ZT_ENOMEM, "out of memory");
	if (!PEM_write_bio_PKCS8PrivateKey(bio, key, NULL, NULL, 0, NULL, NULL)) {
		BIO_free(bio);
		return zt_crypto_err(e, ZT_ECRYPTO, "cannot encode the private key");
	}
	n = BIO_get_mem_data(bio, &data);
	r = zt_buf_append(out, data, (size_t)n, e);
	BIO_free(bio);
	return r;
}

static int key_write(const char *path, EVP_PKEY *key, int seal, zt_err *e)
{
	zt_buf pem;
	int r;

	zt_buf_init(&pem, ZT_PEM_MAX_BYTES);
	if ((r = zt_key_to_pem(key, &pem, e)) != 0)
		goto out;
	if (seal && zt_kek_get()) {
		/* keys zt keeps are sealed whenever a KEK is configured */
		zt_buf sealed;

		zt_buf_init(&sealed, 2 * ZT_SEAL_MAX);
		if ((r = zt_seal(zt_kek_get(), ZT_SEAL_LABEL_KEY, pem.p, pem.len, &sealed, e)) == 0)
			r = zt_file_write(path, sealed.p, sealed.len, 0600, ZT_WRITE_EXCL, e);
		zt_buf_free(&sealed, 1);
	} else {
		r = zt_file_write(path, pem.p, pem.len, 0600, ZT_WRITE_EXCL, e);
	}
out:
	zt_buf_free(&pem, 1); /* the key in the clear: wiped */
	return r;
}

int zt_key_save(const char *path, EVP_PKEY *key, zt_err *e)
{
	return key_write(path, key, 0, e);
}

int zt_key_store(const char *path, EVP_PKEY *key, zt_err *e)
{
	return key_write(path, key, 1, e);
}

int zt_key_matches_cert(EVP_PKEY *key, X509 *cert)
{
	EVP_PKEY *pub = X509_get0_pubkey(cert);

	return pub && EVP_PKEY_eq(key, pub) == 1;
}

int zt_key_id(EVP_PKEY *pub, uint8_t out[20], zt_err *e)
{
	X509_PUBKEY *xpk = NULL;
	const unsigned char *bits;
	int bitslen, r = 0;
	unsigned int mdlen = 0;

	if (!X509_PUBKEY_set(&xpk, pub) ||
	    !X509_PUBKEY_get0_param(NULL, &bits, &bitslen, NULL, xpk) ||
	    !EVP_Digest(bits, (size_t)bitslen, out, &mdlen, EVP_sha1(), NULL) ||
	    mdlen != 20)
		r = zt_crypto_err(e, ZT_ECRYPTO, "cannot compute the key identifier");
	X509_PUBKEY_free(xpk);
	return r;
}

int zt_key_ec_point(EVP_PKEY *key, uint8_t *out, size_t cap, size_t *len, zt_err *e)
{
	unsigned char *der = NULL;
	const unsigned char *p, *pt = NULL;
	X509_PUBKEY *xpk = NULL;
	int n, ptlen = 0, r = -1;

	*len = 0;
	if (!EVP_PKEY_is_a(key, "EC"))
		return zt_err_set(e, ZT_EINVAL, "not an elliptic-curve key");
	if ((n = i2d_PUBKEY(key, &der)) <= 0 || !(p = der, xpk = d2i_X509_PUBKEY(NULL, &p, n)) ||
	    !X509_PUBKEY_get0_param(NULL, &pt, &ptlen, NULL, xpk) || ptlen <= 0) {
		zt_crypto_err(e, ZT_ECRYPTO, "cannot encode the public key");
		goto out;
	}
	if ((size_t)ptlen > cap) {
		zt_err_set(e, ZT_ELIMIT, "public key point of %d bytes is too large", ptlen);
		goto out;
	}
	memcpy(out, pt, (size_t)ptlen);
	*len = (size_t)ptlen;
	r = 0;
out:
	X509_PUBKEY_free(xpk);
	OPENSSL_free(der);
	return r;
}
