/*
 * crypto/jws.c: JSON Web Signatures in compact serialization (RFC 7515),
 * verified the way RFC 8725 asks: the key decides the algorithm, the token
 * only names it; nothing in the header brings its own key.
 *
 * Verification is the hot path of every end-user request at the proxy, so
 * each thread keeps a few prepared verification contexts per (key, alg):
 * OpenSSL 3 spends about 10 us setting one up, a third of an RSA-2048
 * verification. A cached context holds a reference to its key, so the
 * pointer that identifies it cannot be reused by another key meanwhile.
 */
#include "crypto_int.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/hmac.h>
#include <openssl/rsa.h>

enum kind { ECDSA, PKCS1, PSS, EDDSA, HMAC_ };

static const struct {
	enum kind kind;
	int md;       /* index into mds[] */
	size_t field; /* ECDSA: bytes of r and of s (RFC 7518 3.4) */
} algs[ZT_JWA_COUNT] = {
	[ZT_JWA_ES256] = {ECDSA, 0, 32}, [ZT_JWA_ES384] = {ECDSA, 1, 48}, [ZT_JWA_ES512] = {ECDSA, 2, 66},
	[ZT_JWA_RS256] = {PKCS1, 0, 0},  [ZT_JWA_RS384] = {PKCS1, 1, 0},  [ZT_JWA_RS512] = {PKCS1, 2, 0},
	[ZT_JWA_PS256] = {PSS, 0, 0},    [ZT_JWA_PS384] = {PSS, 1, 0},    [ZT_JWA_PS512] = {PSS, 2, 0},
	[ZT_JWA_EDDSA] = {EDDSA, 0, 0},
	[ZT_JWA_HS256] = {HMAC_, 0, 0},  [ZT_JWA_HS384] = {HMAC_, 1, 0},  [ZT_JWA_HS512] = {HMAC_, 2, 0},
};

static EVP_MD *mds[3];
static pthread_once_t mds_once = PTHREAD_ONCE_INIT;

/* explicit fetches, once: EVP_sha256() would be fetched again on every use */
static void fetch_mds(void)
{
	mds[0] = EVP_MD_fetch(NULL, "SHA256", NULL);
	mds[1] = EVP_MD_fetch(NULL, "SHA384", NULL);
	mds[2] = EVP_MD_fetch(NULL, "SHA512", NULL);
}

static const EVP_MD *md_of(int alg)
{
	pthread_once(&mds_once, fetch_mds);
	return mds[algs[alg].md];
}

/* ---- prepared verification contexts -------------------------------------- */

#define VSLOTS 8

struct vslot {
	EVP_PKEY *pkey; /* a reference held while cached */
	int alg;
	EVP_PKEY_CTX *ctx;
};

static _Thread_local struct vslot vslots[VSLOTS];
static _Thread_local unsigned vnext;

static void hdr_cache_clear(void);

void zt_jws_thread_cleanup(void)
{
	hdr_cache_clear();
	for (int i = 0; i < VSLOTS; i++) {
		EVP_PKEY_CTX_free(vslots[i].ctx);
		EVP_PKEY_free(vslots[i].pkey);
		memset(&vslots[i], 0, sizeof vslots[i]);
	}
}

static EVP_PKEY_CTX *prepared(EVP_PKEY *pkey, int alg)
{
	struct vslot *s;
	EVP_PKEY_CTX *c;
	const EVP_MD *md = md_of(alg);

	for (int i = 0; i < VSLOTS; i++)
		if (vslots[i].pkey == pkey && vslots[i].alg == alg)
			return vslots[i].ctx;
	if (!md || !(c = EVP_PKEY_CTX_new(pkey, NULL)))
		return NULL;
	if (EVP_PKEY_verify_init(c) <= 0 || EVP_PKEY_CTX_set_signature_md(c, md) <= 0 ||
	    (algs[alg].kind == PKCS1 && EVP_PKEY_CTX_set_rsa_padding(c, RSA_PKCS1_PADDING) <= 0) ||
	    /* RFC 7518 3.5: MGF1 with the same hash, salt as long as the hash */
	    (algs[alg].kind == PSS && (EVP_PKEY_CTX_set_rsa_padding(c, RSA_PKCS1_PSS_PADDING) <= 0 ||
				       EVP_PKEY_CTX_set_rsa_mgf1_md(c, md) <= 0 ||
				       EVP_PKEY_CTX_set_rsa_pss_saltlen(c, RSA_PSS_SALTLEN_DIGEST) <= 0)) ||
	    !EVP_PKEY_up_ref(pkey)) {
		EVP_PKEY_CTX_free(c);
		ERR_clear_error();
		return NULL;
	}
	s = &vslots[vnext++ % VSLOTS];
	EVP_PKEY_CTX_free(s->ctx);
	EVP_PKEY_free(s->pkey);
	s->pkey = pkey;
	s->alg = alg;
	s->ctx = c;
	return c;
}

/*
 * Headers that passed: an issuer's tokens all carry the same few bytes of
 * header ({"alg","kid","typ"}), so each thread remembers the last few by
 * their exact base64url text and skips decoding and parsing them again.
 * Only headers that were accepted are kept, as private copies.
 */
#define HSLOTS 4
#define HDR_CACHE_MAX 256

struct hslot {
	char text[HDR_CACHE_MAX];
	size_t n;
	json_t *header;
	int alg;
};

static _Thread_local struct hslot hslots[HSLOTS];
static _Thread_local unsigned hnext;

static void hdr_cache_clear(void)
{
	for (int i = 0; i < HSLOTS; i++) {
		json_decref(hslots[i].header);
		memset(&hslots[i], 0, sizeof hslots[i]);
	}
}

static const struct hslot *hdr_cached(const char *text, size_t n)
{
	for (int i = 0; i < HSLOTS; i++)
		if (hslots[i].header && hslots[i].n == n && memcmp(hslots[i].text, text, n) == 0)
			return &hslots[i];
	return NULL;
}

/* Remembers a private copy of an accepted header (the caller keeps and may change its own). */
static void hdr_remember(const char *text, size_t n, const json_t *header, int alg)
{
	struct hslot *s;
	json_t *copy;

	if (n > HDR_CACHE_MAX || !(copy = json_deep_copy(header)))
		return;
	s = &hslots[hnext++ % HSLOTS];
	json_decref(s->header);
	memcpy(s->text, text, n);
	s->n = n;
	s->header = copy;
	s->alg = alg;
}

/* RFC 7518 3.4: r || s, each exactly the field's length, into DER for OpenSSL */
static int ecdsa_der(const uint8_t *sig, size_t n, size_t field, uint8_t *der, size_t cap, size_t *len)
{
	ECDSA_SIG *es = ECDSA_SIG_new();
	BIGNUM *r = NULL, *s = NULL;
	unsigned char *p = der;
	int ok = 0, dl;

	if (!es || n != 2 * field)
		goto out;
	r = BN_bin2bn(sig, (int)field, NULL);
	s = BN_bin2bn(sig + field, (int)field, NULL);
	if (!r || !s || !ECDSA_SIG_set0(es, r, s))
		goto out;
	r = s = NULL;
	if ((dl = i2d_ECDSA_SIG(es, NULL)) <= 0 || (size_t)dl > cap || i2d_ECDSA_SIG(es, &p) != dl)
		goto out;
	*len = (size_t)dl;
	ok = 1;
out:
	BN_free(r);
	BN_free(s);
	ECDSA_SIG_free(es);
	return ok;
}

/* 1 if sig is key's signature of msg under alg */
static int check(const zt_jwk *key, int alg, const uint8_t *msg, size_t n, const uint8_t *sig,
		 size_t sn)
{
	uint8_t h[EVP_MAX_MD_SIZE], der[160];
	unsigned hl = 0;
	size_t dl;
	EVP_PKEY_CTX *c;
	EVP_MD_CTX *m;
	int ok = 0;

	switch (algs[alg].kind) {
	case HMAC_:
		if (!key->secret || !HMAC(md_of(alg), key->secret, (int)key->secret_len, msg, n, h, &hl))
			break;
		ok = sn == hl && CRYPTO_memcmp(h, sig, hl) == 0;
		OPENSSL_cleanse(h, sizeof h);
		return ok;
	case EDDSA:
		if (!key->pkey || sn != 64 || !(m = EVP_MD_CTX_new()))
			break;
		ok = EVP_DigestVerifyInit(m, NULL, NULL, NULL, key->pkey) == 1 &&
		     EVP_DigestVerify(m, sig, sn, msg, n) == 1;
		EVP_MD_CTX_free(m);
		break;
	case ECDSA:
	case PKCS1:
	case PSS:
		if (!key->pkey || !(c = prepared(key->pkey, alg)) ||
		    EVP_Digest(msg, n, h, &hl, md_of(alg), NULL) != 1)
			break;
		if (algs[alg].kind == ECDSA) {
			if (!ecdsa_der(sig, sn, algs[alg].field, der, sizeof der, &dl))
				break;
			ok = EVP_PKEY_verify(c, der, dl, h, hl) == 1;
		} else {
			/* RFC 8017 8.2.2 step 1: the signature is exactly the modulus long */
			ok = sn == (size_t)EVP_PKEY_get_size(key->pkey) &&
			     EVP_PKEY_verify(c, sig, sn, h, hl) == 1;
		}
		break;
	}
	if (!ok) /* a refusal leaves OpenSSL's reasons queued: nothing else may read them */
		ERR_clear_error();
	return ok;
}

/* ---- verifying ------------------------------------------------------------ */

#define SIG_MAX 1024 /* RSA-8192 */

static int part(const char *p, size_t n, zt_buf *out, const char *what, zt_err *e)
{
	if (zt_base64_decode(p, n, 1, out, e) != 0)
		return zt_err_rule(e, ZT_EPARSE, "jws-syntax",
				   "the JWS %s is not base64url without padding (RFC 7515 2, 7.1)", what);
	return 0;
}

/* The protected header: a JSON object with an "alg" zt accepts and nothing it must refuse. */
static int header_ok(const zt_buf *hdr, zt_jws *out, int *alg, zt_err *e)
{
	const json_t *a, *k;

	if (!(out->header = zt_json_parse((const char *)hdr->p, hdr->len, e)) || !json_is_object(out->header))
		return zt_err_rule(e, ZT_EPARSE, "jws-syntax", "the JWS header is not a JSON object");
	/* RFC 8725 3.1-3.2: "none" never; the algorithm must be one zt knows */
	a = json_object_get(out->header, "alg");
	if (!json_is_string(a))
		return zt_err_rule(e, ZT_EPARSE, "jws-alg", "the JWS header has no \"alg\"");
	if (!(*alg = zt_jwa_from_name(json_string_value(a))))
		return zt_err_rule(e, ZT_EVERIFY, "jws-alg", "the JWS algorithm \"%.20s\" is not accepted",
				   json_string_value(a));
	/* RFC 7515 4.1.11: zt implements no extension, so any "crit" fails */
	if (json_object_get(out->header, "crit"))
		return zt_err_rule(e, ZT_EVERIFY, "jws-crit",
				   "the JWS header lists critical extensions (\"crit\") that zt does not implement");
	if ((k = json_object_get(out->header, "kid")) && !json_is_string(k))
		return zt_err_rule(e, ZT_EPARSE, "jws-syntax", "the JWS header's \"kid\" is not a string");
	return 0;
}

int zt_jws_verify(const char *tok, size_t len, const zt_jwks *keys, size_t max_len, zt_jws *out,
		  zt_err *e)
{
	const char *d1, *d2;
	const struct hslot *h;
	const json_t *k;
	const char *kid;
	zt_buf hdr, sig;
	int alg = 0, r, tried = 0, named = 0;

	memset(out, 0, sizeof *out);
	zt_buf_init(&out->payload, max_len ? max_len : ZT_JWS_MAX_DEFAULT);
	if (!max_len)
		max_len = ZT_JWS_MAX_DEFAULT;
	if (len > max_len)
		return zt_err_rule(e, ZT_ELIMIT, "jws-size", "the token is %zu bytes, more than the %zu allowed",
				   len, max_len);
	if (len == 0 || !tok)
		return zt_err_rule(e, ZT_EPARSE, "jws-syntax", "the token is empty");
	/* RFC 7515 7.1: exactly three parts */
	if (!(d1 = memchr(tok, '.', len)) || !(d2 = memchr(d1 + 1, '.', len - (size_t)(d1 + 1 - tok))) ||
	    memchr(d2 + 1, '.', len - (size_t)(d2 + 1 - tok)))
		return zt_err_rule(e, ZT_EPARSE, "jws-syntax",
				   "a compact JWS is three base64url parts separated by two dots");
	if (d1 == tok || d2 + 1 == tok + len)
		return zt_err_rule(e, ZT_EPARSE, "jws-syntax", "the JWS has an empty header or signature");
	zt_buf_init(&hdr, max_len);
	zt_buf_init(&sig, SIG_MAX);
	if ((r = part(d1 + 1, (size_t)(d2 - d1 - 1), &out->payload, "payload", e)) != 0 ||
	    (r = zt_buf_terminate(&out->payload, e)) != 0)
		goto fail;
	if (zt_base64_decode(d2 + 1, len - (size_t)(d2 + 1 - tok), 1, &sig, e) != 0) {
		r = zt_err_rule(e, ZT_EPARSE, "jws-syntax",
				"the JWS signature is not base64url without padding, or longer than %d bytes",
				SIG_MAX);
		goto fail;
	}
	if ((h = hdr_cached(tok, (size_t)(d1 - tok)))) {
		/* the remembered header is never handed out: the caller's copy is its own */
		if (!(out->header = json_deep_copy(h->header))) {
			r = zt_err_set(e, ZT_ENOMEM, "out of memory");
			goto fail;
		}
		alg = h->alg;
	} else {
		if ((r = part(tok, (size_t)(d1 - tok), &hdr, "header", e)) != 0 ||
		    (r = header_ok(&hdr, out, &alg, e)) != 0)
			goto fail;
		hdr_remember(tok, (size_t)(d1 - tok), out->header, alg);
	}
	/* from the text just read (or its remembered parse), never from what a caller changed */
	h = hdr_cached(tok, (size_t)(d1 - tok));
	out->alg = alg;
	k = json_object_get(h ? h->header : out->header, "kid");
	kid = k ? json_string_value(k) : NULL;
	/* RFC 8725 3.10: the key comes from the set, whatever jku/jwk/x5u/x5c say */
	for (size_t i = 0; i < keys->n; i++) {
		const zt_jwk *key = &keys->keys[i];

		if (kid && !(key->has_kid && strcmp(key->kid, kid) == 0))
			continue;
		named++;
		if (!(key->algs & (1u << alg)) || (!kid && tried >= 4))
			continue;
		tried++;
		if (check(key, alg, (const uint8_t *)tok, (size_t)(d2 - tok), sig.p, sig.len)) {
			out->key = key;
			zt_buf_free(&hdr, 0);
			zt_buf_free(&sig, 0);
			return 0;
		}
	}
	if (kid && !named)
		r = zt_err_rule(e, ZT_EVERIFY, "jws-unknown-kid", "no key has the token's kid \"%.64s\"", kid);
	else if (!tried)
		r = zt_err_rule(e, ZT_EVERIFY, "jws-no-key", kid ? "the key the token names does not verify %s signatures"
								 : "no key in the set verifies %s signatures",
				zt_jwa_name(alg));
	else
		r = zt_err_rule(e, ZT_EVERIFY, "jws-signature", "the token's %s signature does not verify",
				zt_jwa_name(alg));
fail:
	zt_buf_free(&hdr, 0);
	zt_buf_free(&sig, 0);
	zt_jws_free(out);
	return r;
}

void zt_jws_free(zt_jws *j)
{
	json_decref(j->header);
	zt_buf_free(&j->payload, 0);
	memset(j, 0, sizeof *j);
}

/* ---- signing --------------------------------------------------------------- */

int zt_jwa_for_key(EVP_PKEY *key)
{
	if (EVP_PKEY_is_a(key, "ED25519"))
		return ZT_JWA_EDDSA;
	if (EVP_PKEY_is_a(key, "RSA"))
		return EVP_PKEY_get_bits(key) >= 2048 ? ZT_JWA_RS256 : 0;
	if (EVP_PKEY_is_a(key, "EC") || EVP_PKEY_get_base_id(key) == EVP_PKEY_EC)
		switch (EVP_PKEY_get_bits(key)) {
		case 256: return ZT_JWA_ES256;
		case 384: return ZT_JWA_ES384;
		case 521: return ZT_JWA_ES512;
		}
	return 0;
}

static int b64(zt_buf *out, const void *p, size_t n, zt_err *e)
{
	return zt_base64_encode(p, n, 1, out, e);
}

int zt_jws_sign(EVP_PKEY *key, const char *kid, const char *typ, const uint8_t *payload, size_t n,
		zt_buf *out, zt_err *e)
{
	int alg = zt_jwa_for_key(key), r;
	json_t *h;
	char *hs = NULL;
	size_t start = out->len, sl = 0, field;
	uint8_t sig[SIG_MAX], raw[2 * 66];
	const uint8_t *sp = sig;
	EVP_MD_CTX *m = NULL;
	ECDSA_SIG *es = NULL;

	if (!alg)
		return zt_err_rule(e, ZT_EINVAL, "jws-alg", "zt signs JWS with EC P-256/384/521, Ed25519 or RSA-2048+ keys");
	if (!(h = json_object()) || json_object_set_new(h, "alg", json_string(zt_jwa_name(alg))) != 0 ||
	    (kid && json_object_set_new(h, "kid", json_string(kid)) != 0) ||
	    (typ && json_object_set_new(h, "typ", json_string(typ)) != 0) ||
	    !(hs = json_dumps(h, JSON_COMPACT))) {
		r = zt_err_set(e, ZT_ENOMEM, "cannot build the JWS header");
		goto out;
	}
	if ((r = b64(out, hs, strlen(hs), e)) != 0 || (r = zt_buf_append(out, ".", 1, e)) != 0 ||
	    (r = b64(out, payload, n, e)) != 0)
		goto out;
	sl = sizeof sig;
	if (!(m = EVP_MD_CTX_new()) ||
	    EVP_DigestSignInit(m, NULL, alg == ZT_JWA_EDDSA ? NULL : md_of(alg), NULL, key) != 1 ||
	    EVP_DigestSign(m, sig, &sl, out->p + start, out->len - start) != 1) {
		r = zt_crypto_err(e, ZT_ECRYPTO, "cannot sign the JWS");
		goto out;
	}
	if (algs[alg].kind == ECDSA) {
		/* DER back to r || s, each left-padded to the field (RFC 7518 3.4) */
		field = algs[alg].field;
		if (!(es = d2i_ECDSA_SIG(NULL, &sp, (long)sl)) ||
		    BN_bn2binpad(ECDSA_SIG_get0_r(es), raw, (int)field) != (int)field ||
		    BN_bn2binpad(ECDSA_SIG_get0_s(es), raw + field, (int)field) != (int)field) {
			r = zt_crypto_err(e, ZT_ECRYPTO, "cannot encode the ECDSA signature");
			goto out;
		}
		memcpy(sig, raw, 2 * field);
		sl = 2 * field;
	}
	if ((r = zt_buf_append(out, ".", 1, e)) != 0 || (r = b64(out, sig, sl, e)) != 0)
		goto out;
	r = zt_buf_terminate(out, e);
out:
	if (r != 0)
		out->len = start;
	ECDSA_SIG_free(es);
	EVP_MD_CTX_free(m);
	free(hs);
	json_decref(h);
	return r;
}
