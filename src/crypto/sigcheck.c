/*
 * crypto/sigcheck.c: certificate signature checks with prepared contexts.
 *
 * The first verification with a new EVP_PKEY_CTX costs OpenSSL 3 about
 * 10 microseconds of set-up on top of the ECDSA arithmetic, and X509_verify
 * pays it on every call. Intermediates and trust anchors sign thousands of
 * leaves, so a few contexts per thread, keyed by the issuer's whole
 * SubjectPublicKeyInfo, bring a check back to its cryptographic cost. The
 * key bytes identify the key exactly, so a cached context can only ever
 * check signatures the same key would.
 *
 * A signature that verified once verifies forever: a small per-thread table
 * remembers SHA-256(issuer SPKI || certificate DER) of good ones, so the
 * signing CA a trust domain's leaves share, and an SVID presented on every
 * connection, cost a hash instead of an ECDSA verification. Failures are
 * never remembered. The hash covers the whole certificate, signature
 * included, and the whole key.
 */
#include "crypto_int.h"

#include <string.h>

#include <openssl/crypto.h>
#include <openssl/objects.h>
#include <openssl/x509.h>

#define SLOTS 16
#define SPKI_MAX 160 /* P-521 SPKI is 158 bytes; larger keys are not cached */

struct slot {
	uint8_t spki[SPKI_MAX];
	size_t len;
	EVP_PKEY_CTX *ctx;
};

static _Thread_local struct slot slots[SLOTS];

#define GOOD_SLOTS 256
static _Thread_local uint8_t good[GOOD_SLOTS][32];
static _Thread_local int good_off; /* set: remembering is switched off */

void zt_crypto_sigcache(int on)
{
	good_off = !on;
	memset(good, 0, sizeof good);
}
static _Thread_local unsigned next_slot;
static _Thread_local EVP_MD *sha256;

void zt_crypto_thread_cleanup(void)
{
	memset(good, 0, sizeof good);
	for (int i = 0; i < SLOTS; i++) {
		EVP_PKEY_CTX_free(slots[i].ctx);
		memset(&slots[i], 0, sizeof slots[i]);
	}
	EVP_MD_free(sha256);
	sha256 = NULL;
	zt_jws_thread_cleanup();
}

static EVP_PKEY_CTX *prepared_ctx(X509 *issuer)
{
	uint8_t spki[SPKI_MAX], *p = spki;
	X509_PUBKEY *xpk = X509_get_X509_PUBKEY(issuer);
	EVP_PKEY *pkey = X509_get0_pubkey(issuer);
	struct slot *s;
	int n;

	if (!xpk || !pkey || i2d_X509_PUBKEY(xpk, NULL) > SPKI_MAX ||
	    (n = i2d_X509_PUBKEY(xpk, &p)) <= 0)
		return NULL;
	for (int i = 0; i < SLOTS; i++)
		if (slots[i].ctx && slots[i].len == (size_t)n && memcmp(slots[i].spki, spki, (size_t)n) == 0)
			return slots[i].ctx;
	s = &slots[next_slot++ % SLOTS];
	EVP_PKEY_CTX_free(s->ctx);
	s->ctx = EVP_PKEY_CTX_new(pkey, NULL);
	if (!s->ctx || EVP_PKEY_verify_init(s->ctx) <= 0) {
		EVP_PKEY_CTX_free(s->ctx);
		s->ctx = NULL;
		return NULL;
	}
	memcpy(s->spki, spki, (size_t)n);
	s->len = (size_t)n;
	return s->ctx;
}

int zt_cert_check_signature(X509 *cert, X509 *issuer)
{
	const ASN1_BIT_STRING *sig;
	const X509_ALGOR *alg;
	const ASN1_OBJECT *obj;
	const void *pval;
	unsigned char *der = NULL;
	uint8_t md[32], remember[32], *slot_good = NULL;
	size_t hdr, tbs_len;
	EVP_PKEY_CTX *ctx;
	int ptype, n, ok;
	EVP_PKEY *pkey = X509_get0_pubkey(issuer);

	if (!pkey)
		return 0;
	X509_get0_signature(&sig, &alg, cert);
	/* RFC 5280 4.1.1.2: the outer algorithm equals the TBS signature field */
	if (X509_ALGOR_cmp(alg, X509_get0_tbs_sigalg(cert)) != 0)
		return 0;
	X509_ALGOR_get0(&obj, &ptype, &pval, alg);
	if (OBJ_obj2nid(obj) != NID_ecdsa_with_SHA256 || ptype != V_ASN1_UNDEF ||
	    !EVP_PKEY_is_a(pkey, "EC") || !(ctx = prepared_ctx(issuer)))
		return X509_verify(cert, pkey) == 1; /* anything else: OpenSSL's way */
	if (!sha256 && !(sha256 = EVP_MD_fetch(NULL, "SHA256", NULL)))
		return 0;
	/* the TBS bytes as received: the first element inside the Certificate */
	n = i2d_X509(cert, &der);
	if (n < 4)
		goto bad;
	hdr = der[1] < 0x80 ? 2 : 2 + (size_t)(der[1] & 0x7f);
	if (hdr >= (size_t)n || !(tbs_len = zt_der_elem_len(der + hdr, (size_t)n - hdr)))
		goto bad;
	if (!good_off) {
		EVP_MD_CTX *mc = EVP_MD_CTX_new();
		struct slot *ks = NULL;

		for (int i = 0; i < SLOTS; i++)
			if (slots[i].ctx == ctx)
				ks = &slots[i];
		if (!mc || !ks || !EVP_DigestInit_ex(mc, sha256, NULL) ||
		    !EVP_DigestUpdate(mc, ks->spki, ks->len) ||
		    !EVP_DigestUpdate(mc, der, (size_t)n) || !EVP_DigestFinal_ex(mc, remember, NULL)) {
			EVP_MD_CTX_free(mc);
			goto bad;
		}
		EVP_MD_CTX_free(mc);
		slot_good = good[(remember[0] | (unsigned)remember[1] << 8) % GOOD_SLOTS];
		if (CRYPTO_memcmp(slot_good, remember, 32) == 0) {
			OPENSSL_free(der);
			return 1;
		}
	}
	ok = EVP_Digest(der + hdr, tbs_len, md, NULL, sha256, NULL) &&
	     EVP_PKEY_verify(ctx, sig->data, (size_t)sig->length, md, sizeof md) == 1;
	if (ok && slot_good)
		memcpy(slot_good, remember, 32);
	OPENSSL_free(der);
	return ok;
bad:
	OPENSSL_free(der);
	return 0;
}
