/*
 * crypto/csr.c: PKCS#10 requests (RFC 2986) — only the proven public key
 * is used.
 *
 * Agents send a request for every SVID they renew, so the common shape
 * (a P-256 key, signed ecdsa-with-SHA256, as zt_csr_make writes) is read
 * here directly: the DER walked with explicit lengths, the key taken as
 * its 91 SubjectPublicKeyInfo bytes, the signature checked with ECDSA on
 * a curve group built once. OpenSSL's generic route (the ASN.1 decoder,
 * a new curve group per key, the provider machinery) cost about 50 us
 * more per request than the ECDSA verification itself. Anything else
 * (RSA, Ed25519, other curves or encodings) takes OpenSSL's route.
 */
#define OPENSSL_SUPPRESS_DEPRECATED /* EC_KEY and ECDSA_verify: see verify_p256() */
#include "crypto_int.h"

#include <pthread.h>
#include <string.h>

#include <openssl/ec.h>
#include <openssl/ecdsa.h>
#include <openssl/pem.h>
#include <openssl/sha.h>

/* SubjectPublicKeyInfo of a P-256 key up to its point (RFC 5480 2) */
static const uint8_t p256_spki[] = {0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48,
				    0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a, 0x86, 0x48,
				    0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00, 0x04};
/* AlgorithmIdentifier ecdsa-with-SHA256, parameters absent (RFC 5758 3.2) */
static const uint8_t ecdsa_sha256[] = {0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02};

/*
 * One DER element at *p (before end): its tag must be `tag`, its length
 * definite and minimal. Sets the content and moves *p past the element.
 */
static int der_take(const uint8_t **p, const uint8_t *end, uint8_t tag, const uint8_t **c, size_t *n)
{
	const uint8_t *q = *p;
	size_t len, k;

	if (end - q < 2 || q[0] != tag)
		return 0;
	len = q[1];
	q += 2;
	if (len & 0x80) {
		k = len & 0x7f;
		if (k == 0 || k > 3 || (size_t)(end - q) < k || q[0] == 0)
			return 0;
		for (len = 0; k; k--)
			len = len << 8 | *q++;
		if (len < 0x80)
			return 0; /* not minimal */
	}
	if ((size_t)(end - q) < len)
		return 0;
	*c = q;
	*n = len;
	*p = q + len;
	return 1;
}

static EC_GROUP *p256;
static pthread_once_t p256_once = PTHREAD_ONCE_INIT;

static void p256_init(void)
{
	p256 = EC_GROUP_new_by_curve_name(NID_X9_62_prime256v1);
}

/* The key of point (65 bytes, uncompressed) as an EVP_PKEY holding *ec; NULL if not on the curve. */
static EVP_PKEY *p256_key(const uint8_t *point, EC_KEY **ecp)
{
	EC_KEY *ec = NULL;
	EVP_PKEY *k = NULL;

	pthread_once(&p256_once, p256_init);
	if (!p256 || !(ec = EC_KEY_new()) || EC_KEY_set_group(ec, p256) != 1 ||
	    EC_KEY_oct2key(ec, point, 65, NULL) != 1 || !(k = EVP_PKEY_new()) ||
	    EVP_PKEY_assign_EC_KEY(k, ec) != 1) {
		EVP_PKEY_free(k);
		EC_KEY_free(ec);
		return NULL;
	}
	*ecp = ec;
	return k;
}

/*
 * The request's shape when it is the common one: 1 with the signed part,
 * the 91 SubjectPublicKeyInfo bytes and the DER signature; 0 otherwise.
 */
static int p256_shape(const uint8_t *der, size_t len, const uint8_t **cri, size_t *cri_len,
		      const uint8_t **spki, const uint8_t **sig, size_t *sig_len)
{
	const uint8_t *p = der, *end = der + len, *c, *q, *qe, *x;
	size_t n, xn;

	/* CertificationRequest ::= SEQUENCE { info, signatureAlgorithm, signature } (RFC 2986 4.2) */
	if (!der_take(&p, end, 0x30, &c, &n) || p != end)
		return 0;
	p = c;
	end = c + n;
	*cri = p;
	if (!der_take(&p, end, 0x30, &q, &n))
		return 0;
	*cri_len = (size_t)(p - *cri);
	qe = q + n;
	/* CertificationRequestInfo: version 0, subject, SPKI, [0] attributes (RFC 2986 4.1) */
	if (!der_take(&q, qe, 0x02, &x, &xn) || xn != 1 || x[0] != 0 || !der_take(&q, qe, 0x30, &x, &xn) ||
	    (size_t)(qe - q) < sizeof p256_spki + 64 || memcmp(q, p256_spki, sizeof p256_spki) != 0)
		return 0;
	*spki = q;
	q += sizeof p256_spki + 64;
	if (!der_take(&q, qe, 0xa0, &x, &xn) || q != qe)
		return 0;
	/* ecdsa-with-SHA256, then a BIT STRING without unused bits */
	if ((size_t)(end - p) < sizeof ecdsa_sha256 || memcmp(p, ecdsa_sha256, sizeof ecdsa_sha256) != 0)
		return 0;
	p += sizeof ecdsa_sha256;
	if (!der_take(&p, end, 0x03, &x, &xn) || p != end || xn < 2 || x[0] != 0)
		return 0;
	*sig = x + 1;
	*sig_len = xn - 1;
	return 1;
}

/* The PEM body of one "CERTIFICATE REQUEST" block, decoded; 0 if it is not that simple. */
static int pem_body(const uint8_t *data, size_t len, zt_buf *der)
{
	static const char begin[] = "-----BEGIN CERTIFICATE REQUEST-----";
	static const char endl[] = "-----END CERTIFICATE REQUEST-----";
	const char *p = (const char *)data, *end = p + len, *stop;
	char b64[4096];
	size_t n = 0;

	if (len < sizeof begin || memcmp(p, begin, sizeof begin - 1) != 0)
		return 0;
	p += sizeof begin - 1;
	if (!(stop = memmem(p, (size_t)(end - p), endl, sizeof endl - 1)))
		return 0;
	for (; p < stop; p++) {
		if (*p == '\n' || *p == '\r')
			continue;
		if (n == sizeof b64)
			return 0;
		b64[n++] = *p;
	}
	p = stop + sizeof endl - 1;
	while (p < end && (*p == '\n' || *p == '\r'))
		p++;
	return p == end && zt_base64_decode(b64, n, 0, der, NULL) == 0;
}

/* 1: the fast route decided (*out set, or an error in *e); 0: take OpenSSL's route */
static int fast(const uint8_t *data, size_t len, zt_pubkey **out, zt_err *e)
{
	const uint8_t *der = data, *cri, *spki, *sig;
	size_t der_len = len, cri_len, sig_len;
	uint8_t md[32];
	EVP_PKEY *k;
	EC_KEY *ec = NULL;
	zt_buf b;
	int decided = 0;

	zt_buf_init(&b, 4096);
	if (data[0] != 0x30) {
		if (!pem_body(data, len, &b))
			goto out;
		der = b.p;
		der_len = b.len;
	}
	if (!p256_shape(der, der_len, &cri, &cri_len, &spki, &sig, &sig_len))
		goto out;
	decided = 1;
	if (!(k = p256_key(spki + sizeof p256_spki - 1, &ec))) {
		zt_crypto_err(e, ZT_EPARSE, "the certificate request's P-256 key is not a point on the curve");
		goto out;
	}
	/* proof of possession: the requester must hold the private key (RFC 2986 3) */
	SHA256(cri, cri_len, md);
	if (ECDSA_verify(0, md, sizeof md, sig, (int)sig_len, ec) != 1)
		zt_crypto_err(e, ZT_EVERIFY,
			      "the certificate request's signature does not verify: it was not signed by the key it carries");
	else
		*out = zt_pubkey_from_p256_spki(k, spki, e);
	EVP_PKEY_free(k);
out:
	zt_buf_free(&b, 0);
	return decided;
}

zt_pubkey *zt_csr_parse(const uint8_t *data, size_t len, zt_err *e)
{
	X509_REQ *req = NULL;
	EVP_PKEY *pub = NULL;
	zt_pubkey *pk = NULL;

	if (len == 0 || len > ZT_PEM_MAX_BYTES) {
		zt_err_set(e, ZT_EPARSE, "certificate request is empty or too large");
		return NULL;
	}
	if (fast(data, len, &pk, e))
		return pk;

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
