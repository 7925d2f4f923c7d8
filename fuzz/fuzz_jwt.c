/*
 * Fuzz target: JWT verification (zt_jwt_verify, and zt_jws_verify under it).
 *
 * The input is split at its first NUL or newline into a JWK Set and a token;
 * without either, the whole input is the token, checked against a fixed set
 * of four keys made once: the RFC 7515 A.3 P-256 key (kid "ec"), RFC 7520's
 * RSA-2048 key ("rsa"), RFC 8037's Ed25519 key ("ed") and RFC 7520's HMAC
 * key ("hs", so with ZT_JWKS_ALLOW_OCT). They are public test keys, so the
 * seeds in fuzz/corpus/fuzz_jwt are real tokens that verify (signed with
 * the RFCs' private halves), and mutations start from the accepting path.
 *
 * What must hold for every input: a refusal names its rule; an accepted
 * token was verified by a key of the set that allows its header's alg, has
 * no "crit", and meets the fixed rules (issuer, audience, times).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/crypto.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define NOW 1700000000
#define LEEWAY 60

static const char FIXED_JWKS[] =
    "{\"keys\":["
    "{\"kty\":\"EC\",\"kid\":\"ec\",\"crv\":\"P-256\","
    "\"x\":\"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU\","
    "\"y\":\"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0\"},"
    "{\"kty\":\"RSA\",\"kid\":\"rsa\",\"use\":\"sig\",\"e\":\"AQAB\","
    "\"n\":\"n4EPtAOCc9AlkeQHPzHStgAbgs7bTZLwUBZdR8_KuKPEHLd4rHVTeT-O-XV2jRojdNhxJWTDvNd7nqQ0VEiZQHz_"
    "AJmSCpMaJMRBSFKrKb2wqVwGU_NsYOYL-QtiWN2lbzcEe6XC0dApr5ydQLrHqkHHig3RBordaZ6Aj-oBHqFEHYpPe7Tpe-"
    "OfVfHd1E6cS6M1FZcD1NNLYD5lFHpPI9bTwJlsde3uhGqC0ZCuEHg8lhzwOHrtIQbS0FVbb9k3-tVTU4fg_3L_"
    "vniUFAKwuCLqKnS2BYwdq_mzSnbLY7h_qixoR7jig3__kRhuaxwUkRz5iaiQkqgc5gHdrNP5zw\"},"
    "{\"kty\":\"OKP\",\"kid\":\"ed\",\"crv\":\"Ed25519\","
    "\"x\":\"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo\"},"
    "{\"kty\":\"oct\",\"kid\":\"hs\",\"alg\":\"HS256\","
    "\"k\":\"hJtXIZ2uSN5kbQfbtTNWbpdmhkV8FJG-Onbc6mxCcYg\"}"
    "]}";

static zt_jwks fixed;
static const char *const audiences[] = {"zt", NULL};
static const zt_jwt_rules rules = {
    .issuer = "https://issuer.example",
    .audiences = audiences,
    .now = NOW,
    .leeway = LEEWAY,
};

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	zt_err e;

	(void)argc;
	(void)argv;
	zt_crypto_init(); /* as the proxy runs */
	if (zt_jwks_parse(FIXED_JWKS, strlen(FIXED_JWKS), ZT_JWKS_ALLOW_OCT, &fixed, &e) != 0 ||
	    fixed.n != 4 || fixed.skipped != 0)
		abort();
	return 0;
}

static void check(const char *tok, size_t len, const zt_jwks *set)
{
	zt_jwt t;
	zt_jws j;
	zt_err e;
	int jws_ok;

	jws_ok = zt_jws_verify(tok, len, set, 0, &j, &e) == 0;
	if (!jws_ok && e.rule[0] == '\0')
		abort(); /* every refusal names its rule */
	if (jws_ok) {
		const json_t *a = json_object_get(j.header, "alg");

		if (!j.key || j.key < set->keys || j.key >= set->keys + set->n ||
		    !(j.key->algs & (1u << j.alg)) || !json_is_string(a) ||
		    strcmp(json_string_value(a), zt_jwa_name(j.alg)) != 0 ||
		    json_object_get(j.header, "crit") || !j.payload.p ||
		    j.payload.p[j.payload.len] != '\0')
			abort();
		zt_jws_free(&j);
	}
	if (zt_jwt_verify(tok, len, set, &rules, &t, &e) != 0) {
		if (e.rule[0] == '\0')
			abort();
		return;
	}
	/* a JWT that passes is a JWS that passes, and meets the rules */
	if (!jws_ok || !json_is_object(t.claims) || !t.iss || strcmp(t.iss, rules.issuer) != 0 ||
	    t.exp == 0 || (double)NOW >= json_number_value(json_object_get(t.claims, "exp")) + LEEWAY)
		abort();
	zt_jwt_free(&t);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *in = (const char *)data;
	const char *sep = NULL;
	zt_jwks set;
	zt_err e;

	for (size_t i = 0; i < size; i++)
		if (in[i] == '\0' || in[i] == '\n') {
			sep = in + i;
			break;
		}
	if (!sep) {
		check(in, size, &fixed);
		return 0;
	}
	memset(&set, 0, sizeof set);
	if (zt_jwks_parse(in, (size_t)(sep - in), ZT_JWKS_ALLOW_OCT, &set, &e) == 0)
		check(sep + 1, size - (size_t)(sep + 1 - in), &set);
	zt_jwks_free(&set);
	return 0;
}
