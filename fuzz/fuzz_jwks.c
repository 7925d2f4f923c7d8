/*
 * Fuzz target: JWK Set parsing (zt_jwks_parse), without and with
 * ZT_JWKS_ALLOW_OCT.
 *
 * What must hold for a set that parses: at most ZT_JWKS_MAX_KEYS keys, each
 * with a kid of at most ZT_JWK_KID_MAX bytes, and either a public key or
 * (only when allowed) an HMAC secret, never both, bound to algorithms its
 * type can do (HS* for secrets, RS/PS for RSA, ES by curve, EdDSA); allowing
 * secrets only adds keys. And every public key, exported again with
 * zt_jwk_set_public and parsed back, allows at least the algorithms it had:
 * zt reads what zt writes.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/crypto.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define B(a) (1u << (a))
#define HS_ALGS (B(ZT_JWA_HS256) | B(ZT_JWA_HS384) | B(ZT_JWA_HS512))
#define RSA_ALGS (B(ZT_JWA_RS256) | B(ZT_JWA_RS384) | B(ZT_JWA_RS512) | B(ZT_JWA_PS256) | \
		  B(ZT_JWA_PS384) | B(ZT_JWA_PS512))
#define EC_ALGS (B(ZT_JWA_ES256) | B(ZT_JWA_ES384) | B(ZT_JWA_ES512))

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	zt_crypto_init(); /* EC keys as the proxy makes them (crypto/ecfast.c) */
	return 0;
}

/* exported and parsed back, the key still verifies what it did */
static void reimport(const zt_jwk *k)
{
	json_t *o = json_object();
	zt_jwks back;
	zt_err e;
	char *text;

	memset(&back, 0, sizeof back);
	if (!o || zt_jwk_set_public(k->pkey, o, &e) != 0 || !(text = json_dumps(o, JSON_COMPACT)))
		abort();
	if (zt_jwks_parse(text, strlen(text), 0, &back, &e) != 0 || back.n != 1 ||
	    (back.keys[0].algs & k->algs) != k->algs)
		abort();
	free(text);
	json_decref(o);
	zt_jwks_free(&back);
}

static void check_set(const zt_jwks *s, int flags)
{
	if (s->n > ZT_JWKS_MAX_KEYS)
		abort();
	for (size_t i = 0; i < s->n; i++) {
		const zt_jwk *k = &s->keys[i];
		uint32_t a = k->algs;

		if (a == 0 || (a & 1u) || a >= (1u << ZT_JWA_COUNT) || !k->pkey == !k->secret ||
		    (k->has_kid && strlen(k->kid) > ZT_JWK_KID_MAX) || (!k->has_kid && k->kid[0]))
			abort();
		if (k->secret) {
			if (!(flags & ZT_JWKS_ALLOW_OCT) || (a & ~HS_ALGS) || k->secret_len < 32)
				abort();
			continue;
		}
		if (EVP_PKEY_is_a(k->pkey, "RSA")) {
			if ((a & ~RSA_ALGS) || EVP_PKEY_get_bits(k->pkey) < 2048)
				abort();
		} else if (EVP_PKEY_is_a(k->pkey, "ED25519")) {
			if (a != B(ZT_JWA_EDDSA))
				abort();
		} else if (a != B(zt_jwa_for_key(k->pkey)) || !(a & EC_ALGS)) {
			abort(); /* EC: exactly the curve's algorithm */
		}
		reimport(k);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	zt_jwks plain, oct;
	zt_err e;
	int r1, r2;

	memset(&plain, 0, sizeof plain);
	memset(&oct, 0, sizeof oct);
	r1 = zt_jwks_parse((const char *)data, size, 0, &plain, &e);
	if (r1 == 0)
		check_set(&plain, 0);
	r2 = zt_jwks_parse((const char *)data, size, ZT_JWKS_ALLOW_OCT, &oct, &e);
	if (r2 == 0) {
		check_set(&oct, ZT_JWKS_ALLOW_OCT);
		/* allowing secrets adds keys and skips fewer; it takes none away */
		if (r1 == 0 && (oct.n < plain.n || oct.n + oct.skipped < plain.n))
			abort();
	}
	zt_jwks_free(&plain);
	zt_jwks_free(&oct);
	return 0;
}
