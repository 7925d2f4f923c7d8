/*
 * bench/bench_jwt.c: JWT verifications per second on one thread, with the
 * key set already parsed (a cached JWKS), as the proxy checks end-user
 * tokens (issue 9). Prints CPU microseconds per verification, median of
 * rounds; bench/run-jwt.sh sets them beside `openssl speed` from the same run.
 *   bench_jwt ALG SECONDS ROUNDS     ALG: ES256 | RS256 | EdDSA
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>

#include "crypto/crypto.h"

#define NTOK 256 /* distinct tokens (jti), so nothing can stand in for a verification */

static double cpu_now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static EVP_PKEY *keygen(const char *alg)
{
	if (!strcmp(alg, "ES256"))
		return zt_key_generate(NULL);
	if (!strcmp(alg, "RS256"))
		return EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
	if (!strcmp(alg, "EdDSA"))
		return EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	return NULL;
}

int main(int argc, char **argv)
{
	double secs, us[32];
	int rounds;
	EVP_PKEY *key;
	char kid[44];
	zt_jwks set = {0};
	json_t *claims, *jwk = json_object(), *jset = json_object(), *arr = json_array();
	zt_buf toks[NTOK];
	char *setjson;
	zt_err e;

	if (argc != 4 || (secs = atof(argv[2])) <= 0 || (rounds = atoi(argv[3])) < 1 || rounds > 32) {
		fprintf(stderr, "usage: bench_jwt ES256|RS256|EdDSA SECONDS ROUNDS\n");
		return 2;
	}
	zt_crypto_init();
	if (!(key = keygen(argv[1]))) {
		fprintf(stderr, "bench_jwt: unknown algorithm %s\n", argv[1]);
		return 2;
	}
	/* the set as a proxy gets it: a JWKS document, parsed once */
	if (zt_jwk_thumbprint(key, kid, &e) != 0 || zt_jwk_set_public(key, jwk, &e) != 0)
		goto fail;
	json_object_set_new(jwk, "kid", json_string(kid));
	json_object_set_new(jwk, "use", json_string("sig"));
	json_array_append_new(arr, jwk);
	json_object_set_new(jset, "keys", arr);
	setjson = json_dumps(jset, JSON_COMPACT);
	if (zt_jwks_parse(setjson, strlen(setjson), 0, &set, &e) != 0)
		goto fail;
	free(setjson);
	json_decref(jset);
	/* a typical access token: issuer, subject, audience, times, groups */
	int64_t now = (int64_t)time(NULL);
	claims = json_pack("{s:s, s:s, s:s, s:I, s:I, s:I, s:s, s:[s,s]}", "iss", "https://id.example.com",
			   "sub", "user-4711", "aud", "api.example.com", "iat", (json_int_t)now, "nbf",
			   (json_int_t)now, "exp", (json_int_t)(now + 900), "jti", "c2f1e8a0-5b2d-4c3e",
			   "groups", "engineering", "oncall");
	for (int i = 0; i < NTOK; i++) {
		char jti[40];

		snprintf(jti, sizeof jti, "c2f1e8a0-5b2d-4c3e-%d", i);
		json_object_set_new(claims, "jti", json_string(jti));
		zt_buf_init(&toks[i], 65536);
		if (zt_jwt_sign(key, kid, claims, &toks[i], &e) != 0)
			goto fail;
	}
	static const char *const auds[] = {"api.example.com", NULL};
	zt_jwt_rules rules = {.issuer = "https://id.example.com", .audiences = auds, .leeway = -1};

	for (int r = 0; r < rounds; r++) {
		long n = 0;
		double t0 = cpu_now(), t;

		do {
			for (int i = 0; i < 64; i++, n++) {
				zt_jwt j;

				const zt_buf *tok = &toks[n % NTOK];

				if (zt_jwt_verify((const char *)tok->p, tok->len, &set, &rules, &j, &e) != 0)
					goto fail;
				zt_jwt_free(&j);
			}
		} while ((t = cpu_now() - t0) < secs);
		us[r] = t / (double)n * 1e6;
	}
	qsort(us, (size_t)rounds, sizeof us[0], cmp);
	printf("%s verify: %.2f us CPU each (median of %d), %.0f/s on one core; token %zu bytes\n", argv[1],
	       us[rounds / 2], rounds, 1e6 / us[rounds / 2], toks[0].len);
	for (int i = 0; i < NTOK; i++)
		zt_buf_free(&toks[i], 0);
	json_decref(claims);
	zt_jwks_free(&set);
	EVP_PKEY_free(key);
	return 0;
fail:
	fprintf(stderr, "bench_jwt: %s\n", e.msg);
	return 1;
}
