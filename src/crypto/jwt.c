/*
 * crypto/jwt.c: JSON Web Tokens (RFC 7519) on top of jws.c: the payload is
 * a JSON object of claims, and a token is good only when its signature
 * verifies and its issuer, audience and times are what the caller expects
 * (RFC 8725 3.8-3.9).
 */
#include "crypto.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* RFC 7519 2: a NumericDate is a JSON number of seconds, maybe fractional */
static int numeric_date(const json_t *c, const char *name, double *out, int *present, zt_err *e)
{
	const json_t *v = json_object_get(c, name);
	double d;

	*present = v != NULL;
	if (!v)
		return 0;
	d = json_number_value(v);
	if (!json_is_number(v) || !isfinite(d) || d < 0 || d > 9007199254740992.0)
		return zt_err_rule(e, ZT_EPARSE, "jwt-claims", "claim \"%s\" is not a NumericDate (RFC 7519 2)",
				   name);
	*out = d;
	return 0;
}

static int aud_ok(const json_t *aud, const char *const *want, zt_err *e)
{
	const json_t *v;
	size_t i;

	/* RFC 7519 4.1.3: one string, or an array of strings */
	if (aud && !json_is_string(aud)) {
		if (!json_is_array(aud))
			return zt_err_rule(e, ZT_EPARSE, "jwt-claims", "claim \"aud\" is not a string or an array");
		json_array_foreach (aud, i, v)
			if (!json_is_string(v))
				return zt_err_rule(e, ZT_EPARSE, "jwt-claims", "claim \"aud\" holds a non-string");
	}
	if (!want)
		return 0;
	if (!aud)
		return zt_err_rule(e, ZT_EVERIFY, "jwt-aud", "the token has no audience (\"aud\") and one is required");
	for (const char *const *w = want; *w; w++) {
		if (json_is_string(aud) && strcmp(json_string_value(aud), *w) == 0)
			return 0;
		json_array_foreach (aud, i, v)
			if (json_is_string(v) && strcmp(json_string_value(v), *w) == 0)
				return 0;
	}
	return zt_err_rule(e, ZT_EVERIFY, "jwt-aud", "the token is not for this audience");
}

static int claims_ok(zt_jwt *t, const zt_jwt_rules *rules, zt_err *e)
{
	const json_t *c = t->claims, *iss = json_object_get(c, "iss"), *sub = json_object_get(c, "sub");
	int64_t now = rules->now ? rules->now : (int64_t)time(NULL);
	int64_t leeway = rules->leeway < 0 ? 60 : rules->leeway;
	double exp = 0, nbf = 0, iat = 0;
	int has_exp, has_nbf, has_iat, r;

	if ((iss && !json_is_string(iss)) || (sub && !json_is_string(sub)))
		return zt_err_rule(e, ZT_EPARSE, "jwt-claims", "claims \"iss\" and \"sub\" are strings");
	t->iss = iss ? json_string_value(iss) : NULL;
	t->sub = sub ? json_string_value(sub) : NULL;
	if ((r = numeric_date(c, "exp", &exp, &has_exp, e)) != 0 ||
	    (r = numeric_date(c, "nbf", &nbf, &has_nbf, e)) != 0 ||
	    (r = numeric_date(c, "iat", &iat, &has_iat, e)) != 0)
		return r;
	/* RFC 8725 3.8: the issuer exactly */
	if (rules->issuer && (!t->iss || strcmp(t->iss, rules->issuer) != 0))
		return zt_err_rule(e, ZT_EVERIFY, "jwt-iss", "the token's issuer is not \"%.200s\"", rules->issuer);
	if ((r = aud_ok(json_object_get(c, "aud"), rules->audiences, e)) != 0)
		return r;
	/* RFC 7519 4.1.4-4.1.6, with leeway for clock skew */
	if (!has_exp && !rules->exp_optional)
		return zt_err_rule(e, ZT_EVERIFY, "jwt-exp", "the token has no expiry (\"exp\")");
	if (has_exp && (double)now >= exp + (double)leeway)
		return zt_err_rule(e, ZT_EVERIFY, "jwt-exp", "the token expired %.0f s ago", (double)now - exp);
	if (has_nbf && (double)now + (double)leeway < nbf)
		return zt_err_rule(e, ZT_EVERIFY, "jwt-nbf", "the token is not valid for another %.0f s",
				   nbf - (double)now);
	if (has_iat && (double)now + (double)leeway < iat)
		return zt_err_rule(e, ZT_EVERIFY, "jwt-iat", "the token was issued %.0f s in the future",
				   iat - (double)now);
	t->exp = has_exp ? (int64_t)exp : 0;
	return 0;
}

int zt_jwt_verify(const char *tok, size_t len, const zt_jwks *keys, const zt_jwt_rules *rules,
		  zt_jwt *out, zt_err *e)
{
	int r;

	memset(out, 0, sizeof *out);
	if ((r = zt_jws_verify(tok, len, keys, rules->max_len, &out->jws, e)) != 0)
		return r;
	out->claims = zt_json_parse((const char *)out->jws.payload.p, out->jws.payload.len, e);
	if (!out->claims || !json_is_object(out->claims))
		r = zt_err_rule(e, ZT_EPARSE, "jwt-claims", "the token's payload is not a JSON object of claims");
	else
		r = claims_ok(out, rules, e);
	if (r != 0)
		zt_jwt_free(out);
	return r;
}

void zt_jwt_free(zt_jwt *t)
{
	json_decref(t->claims);
	zt_jws_free(&t->jws);
	memset(t, 0, sizeof *t);
}

int zt_jwt_sign(EVP_PKEY *key, const char *kid, const json_t *claims, zt_buf *out, zt_err *e)
{
	char *s;
	int r;

	if (!json_is_object(claims))
		return zt_err_set(e, ZT_EINVAL, "JWT claims are a JSON object");
	if (!(s = json_dumps(claims, JSON_COMPACT)))
		return zt_err_set(e, ZT_ENOMEM, "cannot encode the claims");
	r = zt_jws_sign(key, kid, "JWT", (const uint8_t *)s, strlen(s), out, e);
	free(s);
	return r;
}
