/*
 * crypto/certw.c: X.509 v3 certificates written as DER, signed with a
 * prepared ECDSA P-256 context (RFC 5280 4.1; RFC 5758 3.2 for the
 * signature algorithm; RFC 5480 2 for the EC public key).
 */
#include "crypto_int.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/core_names.h>
#include <openssl/sha.h>

struct zt_signer {
	EVP_PKEY *key;
	EVP_PKEY_CTX *ctx;
	EVP_MD *sha256;        /* fetched once: OpenSSL 3 fetches per call otherwise */
	uint8_t serials[1024]; /* random bytes for serial numbers, drawn in bulk */
	size_t serials_used;
};

/* AlgorithmIdentifier ecdsa-with-SHA256, parameters absent (RFC 5758 3.2) */
static const uint8_t alg_ecdsa_sha256[] = { 0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48,
					    0xce, 0x3d, 0x04, 0x03, 0x02 };
/* SubjectPublicKeyInfo prefix for P-256: id-ecPublicKey, prime256v1, then a
 * BIT STRING of the 65-byte uncompressed point (RFC 5480 2) */
static const uint8_t spki_p256_prefix[] = { 0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86,
					    0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a,
					    0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03,
					    0x42, 0x00 };

static int is_p256(EVP_PKEY *k)
{
	char group[32];
	size_t n = 0;

	return EVP_PKEY_is_a(k, "EC") &&
	       EVP_PKEY_get_utf8_string_param(k, OSSL_PKEY_PARAM_GROUP_NAME, group,
					      sizeof group, &n) &&
	       strcmp(group, "prime256v1") == 0;
}

zt_signer *zt_signer_new(EVP_PKEY *key, zt_err *e)
{
	zt_signer *s;

	if (!is_p256(key)) {
		zt_err_set(e, ZT_EINVAL, "zt signs with ECDSA P-256 keys only");
		return NULL;
	}
	if (!(s = calloc(1, sizeof *s))) {
		zt_err_set(e, ZT_ENOMEM, "out of memory");
		return NULL;
	}
	if (!EVP_PKEY_up_ref(key)) {
		free(s);
		zt_crypto_err(e, ZT_ECRYPTO, "cannot reference the key");
		return NULL;
	}
	s->key = key;
	s->serials_used = sizeof s->serials;
	if (!(s->ctx = EVP_PKEY_CTX_new(key, NULL)) || EVP_PKEY_sign_init(s->ctx) <= 0 ||
	    !(s->sha256 = EVP_MD_fetch(NULL, "SHA256", NULL))) {
		zt_crypto_err(e, ZT_ECRYPTO, "cannot prepare the signing key");
		zt_signer_free(s);
		return NULL;
	}
	return s;
}

void zt_signer_free(zt_signer *s)
{
	if (!s)
		return;
	EVP_PKEY_CTX_free(s->ctx);
	EVP_MD_free(s->sha256);
	EVP_PKEY_free(s->key);
	zt_wipe(s->serials, sizeof s->serials);
	free(s);
}

static int der_len_bytes(size_t len, uint8_t h[5], size_t *n)
{
	if (len < 0x80) {
		h[0] = (uint8_t)len;
		*n = 1;
	} else if (len < 0x100) {
		h[0] = 0x81;
		h[1] = (uint8_t)len;
		*n = 2;
	} else if (len < 0x10000) {
		h[0] = 0x82;
		h[1] = (uint8_t)(len >> 8);
		h[2] = (uint8_t)len;
		*n = 3;
	} else if (len < 0x1000000) {
		h[0] = 0x83;
		h[1] = (uint8_t)(len >> 16);
		h[2] = (uint8_t)(len >> 8);
		h[3] = (uint8_t)len;
		*n = 4;
	} else {
		return -1;
	}
	return 0;
}

int zt_der_put(zt_buf *b, uint8_t tag, const void *content, size_t len, zt_err *e)
{
	uint8_t h[6];
	size_t n;
	int r;

	h[0] = tag;
	if (der_len_bytes(len, h + 1, &n) != 0)
		return zt_err_set(e, ZT_ELIMIT, "DER element too large");
	if ((r = zt_buf_reserve(b, 1 + n + len, e)) != 0)
		return r;
	memcpy(b->p + b->len, h, 1 + n);
	if (len)
		memcpy(b->p + b->len + 1 + n, content, len);
	b->len += 1 + n + len;
	return 0;
}

int zt_der_ext(zt_buf *b, const uint8_t *oid, size_t oid_len, int critical,
	       const uint8_t *value, size_t value_len, zt_err *e)
{
	static const uint8_t crit[] = { 0x01, 0x01, 0xff };
	zt_buf x;
	int r;

	zt_buf_init(&x, 65536);
	if ((r = zt_der_put(&x, 0x06, oid, oid_len, e)) == 0 &&
	    (!critical || (r = zt_buf_append(&x, crit, sizeof crit, e)) == 0) &&
	    (r = zt_der_put(&x, 0x04, value, value_len, e)) == 0)
		r = zt_der_put(b, 0x30, x.p, x.len, e);
	zt_buf_free(&x, 0);
	return r;
}

struct zt_pubkey {
	EVP_PKEY *pkey;
	zt_buf spki;
	uint8_t id[20];
};

static zt_pubkey *pubkey_new(EVP_PKEY *pkey, zt_err *e)
{
	zt_pubkey *pk = calloc(1, sizeof *pk);

	if (!pk || !EVP_PKEY_up_ref(pkey)) {
		free(pk);
		zt_err_set(e, ZT_ENOMEM, "out of memory");
		return NULL;
	}
	pk->pkey = pkey;
	zt_buf_init(&pk->spki, 65536);
	return pk;
}

void zt_pubkey_free(zt_pubkey *pk)
{
	if (!pk)
		return;
	EVP_PKEY_free(pk->pkey);
	zt_buf_free(&pk->spki, 0);
	free(pk);
}

EVP_PKEY *zt_pubkey_pkey(const zt_pubkey *pk) { return pk->pkey; }
const uint8_t *zt_pubkey_id(const zt_pubkey *pk) { return pk->id; }

const uint8_t *zt_pubkey_spki(const zt_pubkey *pk, size_t *len)
{
	*len = pk->spki.len;
	return pk->spki.p;
}

zt_pubkey *zt_pubkey_from_x509_pubkey(EVP_PKEY *pkey, X509_PUBKEY *xpk, zt_err *e)
{
	zt_pubkey *pk = pubkey_new(pkey, e);
	const unsigned char *bits;
	unsigned char *der = NULL;
	int bitslen, n;

	if (!pk)
		return NULL;
	n = i2d_X509_PUBKEY(xpk, &der);
	if (n <= 0 || !X509_PUBKEY_get0_param(NULL, &bits, &bitslen, NULL, xpk) ||
	    zt_buf_append(&pk->spki, der, (size_t)n, e) != 0) {
		OPENSSL_free(der);
		zt_pubkey_free(pk);
		zt_crypto_err(e, ZT_ECRYPTO, "cannot encode the public key");
		return NULL;
	}
	OPENSSL_free(der);
	SHA1(bits, (size_t)bitslen, pk->id);
	return pk;
}

zt_pubkey *zt_pubkey_from_p256_spki(EVP_PKEY *pkey, const uint8_t *spki, zt_err *e)
{
	zt_pubkey *pk = pubkey_new(pkey, e);

	if (pk && zt_buf_append(&pk->spki, spki, sizeof spki_p256_prefix + 65, e) != 0) {
		zt_pubkey_free(pk);
		return NULL;
	}
	if (pk) /* RFC 5280 4.2.1.2 (1): SHA-1 of the subjectPublicKey bits */
		SHA1(spki + sizeof spki_p256_prefix, 65, pk->id);
	return pk;
}

zt_pubkey *zt_pubkey_from_pkey(EVP_PKEY *pkey, zt_err *e)
{
	uint8_t point[133];
	size_t plen = 0;
	zt_pubkey *pk;
	X509_PUBKEY *xpk = NULL;

	if (is_p256(pkey) && zt_key_ec_point(pkey, point, sizeof point, &plen, NULL) == 0 &&
	    plen == 65 && point[0] == 0x04) {
		if (!(pk = pubkey_new(pkey, e)))
			return NULL;
		if (zt_buf_append(&pk->spki, spki_p256_prefix, sizeof spki_p256_prefix, e) != 0 ||
		    zt_buf_append(&pk->spki, point, plen, e) != 0) {
			zt_pubkey_free(pk);
			return NULL;
		}
		SHA1(point, plen, pk->id);
		return pk;
	}
	/* other key types: OpenSSL's encoder (slow, but never zt's own keys) */
	if (!X509_PUBKEY_set(&xpk, pkey)) {
		zt_crypto_err(e, ZT_ECRYPTO, "cannot encode the public key");
		return NULL;
	}
	pk = zt_pubkey_from_x509_pubkey(pkey, xpk, e);
	X509_PUBKEY_free(xpk);
	return pk;
}

/* Time (RFC 5280 4.1.2.5): UTCTime through 2049, GeneralizedTime after. */
static int put_time(zt_buf *b, int64_t t, zt_err *e)
{
	struct tm tm;
	time_t tt = (time_t)t;
	char s[20];

	if (!gmtime_r(&tt, &tm) || tm.tm_year + 1900 < 1950 || tm.tm_year + 1900 > 9999)
		return zt_err_set(e, ZT_EINVAL, "time out of the range X.509 can express");
	strftime(s, sizeof s, "%Y%m%d%H%M%SZ", &tm);
	if (tm.tm_year + 1900 < 2050)
		return zt_der_put(b, 0x17, s + 2, 13, e); /* YYMMDDHHMMSSZ */
	return zt_der_put(b, 0x18, s, 15, e);
}

int zt_certw_sign(const zt_certw *c, zt_signer *s, zt_buf *out, zt_err *e)
{
	static const uint8_t version3[] = { 0xa0, 0x03, 0x02, 0x01, 0x02 };
	static const uint8_t empty_name[] = { 0x30, 0x00 };
	uint8_t serial[16], md[32], sig[80];
	size_t siglen = sizeof sig;
	zt_buf tbs, body, tmp;
	int r;

	if (c->not_after <= c->not_before)
		return zt_err_set(e, ZT_EINVAL, "certificate would expire before it starts");
	/* 128 random bits per serial (RFC 5280 4.1.2.2; CA/B BR 7.1 asks 64) */
	if (s->serials_used + sizeof serial > sizeof s->serials) {
		if ((r = zt_random(s->serials, sizeof s->serials, e)) != 0)
			return r;
		s->serials_used = 0;
	}
	memcpy(serial, s->serials + s->serials_used, sizeof serial);
	zt_wipe(s->serials + s->serials_used, sizeof serial); /* each used once */
	s->serials_used += sizeof serial;
	serial[0] &= 0x7f; /* positive (RFC 5280 4.1.2.2) */
	serial[0] |= 0x40; /* and 16 octets: DER needs no leading zero */
	if (c->serial_out)
		memcpy(c->serial_out, serial, sizeof serial);
	zt_buf_init(&body, 1u << 20);
	zt_buf_init(&tbs, 1u << 20);
	zt_buf_init(&tmp, 1u << 20);
	size_t guess = 256 + c->issuer_len + c->subject_len + c->spki_len + c->exts_len;
	if ((r = zt_buf_reserve(&body, guess, e)) != 0 || (r = zt_buf_reserve(&tbs, guess, e)) != 0)
		goto out;
	if ((r = zt_buf_append(&body, version3, sizeof version3, e)) != 0 ||
	    (r = zt_der_put(&body, 0x02, serial, sizeof serial, e)) != 0 ||
	    (r = zt_buf_append(&body, alg_ecdsa_sha256, sizeof alg_ecdsa_sha256, e)) != 0 ||
	    (r = zt_buf_append(&body, c->issuer, c->issuer_len, e)) != 0 ||
	    (r = put_time(&tmp, c->not_before, e)) != 0 ||
	    (r = put_time(&tmp, c->not_after, e)) != 0 ||
	    (r = zt_der_put(&body, 0x30, tmp.p, tmp.len, e)) != 0 ||
	    (r = zt_buf_append(&body, c->subject ? c->subject : empty_name,
			       c->subject ? c->subject_len : sizeof empty_name, e)) != 0 ||
	    (r = zt_buf_append(&body, c->spki, c->spki_len, e)) != 0)
		goto out;
	if (c->exts_len) {
		tmp.len = 0;
		if ((r = zt_der_put(&tmp, 0x30, c->exts, c->exts_len, e)) != 0 ||
		    (r = zt_der_put(&body, 0xa3, tmp.p, tmp.len, e)) != 0)
			goto out;
	}
	if ((r = zt_der_put(&tbs, 0x30, body.p, body.len, e)) != 0)
		goto out;
	if (!EVP_Digest(tbs.p, tbs.len, md, NULL, s->sha256, NULL) ||
	    EVP_PKEY_sign(s->ctx, sig, &siglen, md, sizeof md) <= 0) {
		r = zt_crypto_err(e, ZT_ECRYPTO, "signing failed");
		goto out;
	}
	/* Certificate ::= SEQUENCE { tbs, signatureAlgorithm, BIT STRING sig } */
	body.len = 0;
	tmp.len = 0;
	if ((r = zt_buf_append(&tmp, "", 1, e)) != 0 || /* no unused bits */
	    (r = zt_buf_append(&tmp, sig, siglen, e)) != 0 ||
	    (r = zt_buf_append(&body, tbs.p, tbs.len, e)) != 0 ||
	    (r = zt_buf_append(&body, alg_ecdsa_sha256, sizeof alg_ecdsa_sha256, e)) != 0 ||
	    (r = zt_der_put(&body, 0x03, tmp.p, tmp.len, e)) != 0)
		goto out;
	r = zt_der_put(out, 0x30, body.p, body.len, e);
out:
	zt_buf_free(&body, 0);
	zt_buf_free(&tbs, 0);
	zt_buf_free(&tmp, 0);
	return r;
}

size_t zt_der_elem_len(const uint8_t *p, size_t len)
{
	size_t n, hdr, i;

	if (len < 2)
		return 0;
	if (p[1] < 0x80) {
		n = p[1];
		hdr = 2;
	} else {
		size_t nb = p[1] & 0x7f;

		if (nb == 0 || nb > 4 || len < 2 + nb)
			return 0;
		for (n = 0, i = 0; i < nb; i++)
			n = n << 8 | p[2 + i];
		hdr = 2 + nb;
	}
	if (n > len - hdr)
		return 0;
	return hdr + n;
}

int zt_certs_parse_der(const uint8_t *der, size_t len, STACK_OF(X509) **out, zt_err *e)
{
	STACK_OF(X509) *sk = sk_X509_new_null();
	size_t off = 0;
	int r = 0;

	*out = NULL;
	if (!sk)
		return zt_err_set(e, ZT_ENOMEM, "out of memory");
	while (off < len) {
		size_t n = zt_der_elem_len(der + off, len - off);
		X509 *x;

		if (n == 0) {
			r = zt_err_set(e, ZT_EPARSE, "malformed DER at offset %zu", off);
			break;
		}
		if (sk_X509_num(sk) >= ZT_CHAIN_MAX_CERTS) {
			r = zt_err_set(e, ZT_ELIMIT, "more than %d certificates", ZT_CHAIN_MAX_CERTS);
			break;
		}
		if (!(x = zt_cert_parse_der(der + off, n, e))) {
			r = -ZT_EPARSE;
			break;
		}
		if (!sk_X509_push(sk, x)) {
			X509_free(x);
			r = zt_err_set(e, ZT_ENOMEM, "out of memory");
			break;
		}
		off += n;
	}
	if (r == 0 && sk_X509_num(sk) == 0)
		r = zt_err_set(e, ZT_EPARSE, "no certificate");
	if (r != 0) {
		sk_X509_pop_free(sk, X509_free);
		return r;
	}
	*out = sk;
	return 0;
}

int zt_der_certs_to_pem(const uint8_t *der, size_t len, zt_buf *out, zt_err *e)
{
	size_t off = 0;
	zt_buf b64;
	int r = 0;

	zt_buf_init(&b64, 4u << 20);
	while (off < len && r == 0) {
		size_t n = zt_der_elem_len(der + off, len - off);

		if (n == 0)
			return zt_err_set(e, ZT_EPARSE, "malformed DER at offset %zu", off);
		b64.len = 0;
		if ((r = zt_base64_encode(der + off, n, 0, &b64, e)) != 0 ||
		    (r = zt_buf_appendf(out, e, "-----BEGIN CERTIFICATE-----\n")) != 0)
			break;
		/* RFC 7468 2: lines of 64 characters */
		for (size_t i = 0; i < b64.len && r == 0; i += 64) {
			size_t w = b64.len - i < 64 ? b64.len - i : 64;

			if ((r = zt_buf_append(out, b64.p + i, w, e)) == 0)
				r = zt_buf_append(out, "\n", 1, e);
		}
		if (r == 0)
			r = zt_buf_appendf(out, e, "-----END CERTIFICATE-----\n");
		off += n;
	}
	zt_buf_free(&b64, 0);
	return r;
}
