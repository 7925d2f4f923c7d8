/* crypto/cert.c: certificates in and out — DER, PEM, files, times. */
#include "crypto.h"

#include <string.h>

#include <openssl/err.h>
#include <openssl/pem.h>

X509 *zt_cert_parse_der(const uint8_t *der, size_t len, zt_err *e)
{
	const unsigned char *p = der;
	X509 *x;

	if (len == 0 || len > ZT_PEM_MAX_BYTES) {
		zt_err_set(e, len ? ZT_ELIMIT : ZT_EPARSE,
			   len ? "certificate is larger than the limit" : "empty certificate");
		return NULL;
	}
	x = d2i_X509(NULL, &p, (long)len);
	if (!x) {
		zt_crypto_err(e, ZT_EPARSE, "not a valid DER X.509 certificate");
		return NULL;
	}
	if (p != der + len) {
		X509_free(x);
		zt_err_set(e, ZT_EPARSE, "%zu unexpected bytes after the certificate",
			   (size_t)(der + len - p));
		return NULL;
	}
	return x;
}

int zt_certs_parse_pem(const uint8_t *pem, size_t len, STACK_OF(X509) **out, zt_err *e)
{
	STACK_OF(X509) *sk = NULL;
	BIO *bio = NULL;
	int r = 0, n = 0;

	*out = NULL;
	if (len > ZT_PEM_MAX_BYTES)
		return zt_err_set(e, ZT_ELIMIT, "certificate data is larger than %u bytes",
				  ZT_PEM_MAX_BYTES);
	sk = sk_X509_new_null();
	bio = BIO_new_mem_buf(pem, (int)len);
	if (!sk || !bio) {
		r = zt_err_set(e, ZT_ENOMEM, "out of memory");
		goto out;
	}
	for (;;) {
		char *name = NULL, *header = NULL;
		unsigned char *data = NULL;
		long dlen = 0;
		X509 *x;

		ERR_clear_error();
		if (!PEM_read_bio(bio, &name, &header, &data, &dlen)) {
			unsigned long ec = ERR_peek_last_error();

			if (ERR_GET_REASON(ec) == PEM_R_NO_START_LINE) {
				ERR_clear_error();
				break; /* no more blocks */
			}
			r = zt_crypto_err(e, ZT_EPARSE, "PEM block is corrupt");
			goto out;
		}
		n++;
		if (strcmp(name, "CERTIFICATE") != 0) {
			r = zt_err_set(e, ZT_EPARSE,
				       "PEM block %d is a \"%.40s\", not a CERTIFICATE", n, name);
			x = NULL;
		} else if (sk_X509_num(sk) >= ZT_CHAIN_MAX_CERTS) {
			r = zt_err_set(e, ZT_ELIMIT, "more than %d certificates",
				       ZT_CHAIN_MAX_CERTS);
			x = NULL;
		} else {
			x = zt_cert_parse_der(data, (size_t)dlen, e);
			if (!x)
				r = zt_err_wrap(e, "PEM block %d", n);
		}
		OPENSSL_free(name);
		OPENSSL_free(header);
		OPENSSL_free(data);
		if (r != 0)
			goto out;
		if (!sk_X509_push(sk, x)) {
			X509_free(x);
			r = zt_err_set(e, ZT_ENOMEM, "out of memory");
			goto out;
		}
	}
	if (sk_X509_num(sk) == 0) {
		r = zt_err_set(e, ZT_EPARSE,
			       "no PEM certificate found (expected -----BEGIN CERTIFICATE-----)");
		goto out;
	}
	*out = sk;
	sk = NULL;
out:
	BIO_free(bio);
	sk_X509_pop_free(sk, X509_free);
	return r;
}

int zt_certs_load(const char *path, STACK_OF(X509) **out, zt_err *e)
{
	zt_buf b;
	int r;

	*out = NULL;
	if ((r = zt_file_read(path, ZT_PEM_MAX_BYTES, &b, e)) != 0)
		return r;
	if (b.len > 0 && b.p[0] == 0x30) { /* a DER SEQUENCE: one certificate */
		X509 *x = zt_cert_parse_der(b.p, b.len, e);

		r = x ? 0 : -ZT_EPARSE;
		if (x && (!(*out = sk_X509_new_null()) || !sk_X509_push(*out, x))) {
			X509_free(x);
			sk_X509_free(*out);
			*out = NULL;
			r = zt_err_set(e, ZT_ENOMEM, "out of memory");
		}
	} else {
		r = zt_certs_parse_pem(b.p, b.len, out, e);
	}
	zt_buf_free(&b, 0);
	if (r != 0)
		zt_err_wrap(e, "%s", path);
	return r;
}

int zt_certs_to_pem(STACK_OF(X509) *certs, zt_buf *out, zt_err *e)
{
	BIO *bio = BIO_new(BIO_s_mem());
	char *data;
	long n;
	int r = 0;

	if (!bio)
		return zt_err_set(e, ZT_ENOMEM, "out of memory");
	for (int i = 0; i < sk_X509_num(certs); i++) {
		if (!PEM_write_bio_X509(bio, sk_X509_value(certs, i))) {
			r = zt_crypto_err(e, ZT_ECRYPTO, "cannot encode a certificate");
			goto out;
		}
	}
	n = BIO_get_mem_data(bio, &data);
	r = zt_buf_append(out, data, (size_t)n, e);
out:
	BIO_free(bio);
	return r;
}

int zt_certs_save(const char *path, STACK_OF(X509) *certs, zt_err *e)
{
	zt_buf b;
	int r;

	zt_buf_init(&b, ZT_PEM_MAX_BYTES);
	if ((r = zt_certs_to_pem(certs, &b, e)) == 0)
		r = zt_file_write(path, b.p, b.len, 0644, 0, e);
	zt_buf_free(&b, 0);
	return r;
}

static int asn1_time_secs(const ASN1_TIME *t, int64_t *out)
{
	struct tm tm;

	if (!t || !ASN1_TIME_to_tm(t, &tm))
		return -1;
	*out = (int64_t)timegm(&tm);
	return 0;
}

int zt_cert_times(const X509 *cert, int64_t *not_before, int64_t *not_after)
{
	if (asn1_time_secs(X509_get0_notBefore(cert), not_before) != 0 ||
	    asn1_time_secs(X509_get0_notAfter(cert), not_after) != 0)
		return -ZT_EPARSE;
	return 0;
}

int zt_cert_der(X509 *cert, uint8_t **der, size_t *len)
{
	unsigned char *buf = NULL;
	int n;

	/* i2d with a NULL buffer pointer allocates; OpenSSL keeps the original
	 * encoding of parsed certificates, so this is a copy of those bytes. */
	*der = NULL;
	*len = 0;
	n = i2d_X509(cert, &buf);
	if (n <= 0)
		return -ZT_ECRYPTO;
	*der = buf;
	*len = (size_t)n;
	return 0;
}

void zt_cert_fingerprint(X509 *cert, char out[65])
{
	unsigned char md[32];
	unsigned int n = 0;

	if (!X509_digest(cert, EVP_sha256(), md, &n) || n != 32) {
		out[0] = '\0';
		return;
	}
	zt_hex(md, 32, out);
}
