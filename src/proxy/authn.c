/*
 * proxy/authn.c: end-user tokens on inbound HTTP listeners (the jwtRules of
 * RequestAuthentication policies; docs/proxy.md "End-user tokens").
 *
 * Before the policy decides a request, its token is found where the rules
 * that apply to the destination look for one (Istio's defaults:
 * "Authorization: Bearer" and ?access_token=), matched to a rule by its
 * unverified "iss", and verified with crypto's zt_jwt_verify (RFC 8725:
 * the key set decides the algorithm, "none" never, issuer exact, audiences
 * from the rule, exp/nbf/iat with 60 s of leeway). Then:
 *
 *  - no token at all: the request goes on without a request principal, and
 *    an ALLOW rule that asks for one does not match it;
 *  - a token that fails any check, a token whose issuer no rule names, or
 *    more than one token: 401 with WWW-Authenticate (RFC 6750 3); the
 *    policy is never asked and nothing reaches the service;
 *  - a verified token: the policy sees request.auth.principal ("iss/sub"),
 *    audiences, presenter (azp) and claims; the token is removed from what
 *    is forwarded unless forwardOriginalToken, and the output headers are
 *    set (never taken from the client: its copies are always removed).
 *
 * Keys come from the rule (inline jwks) or from jwks.c's cache, which is
 * never fetched from here: a worker never waits on the network.
 */
#include "proxy_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define ISS_MAX 2048
#define CLAIM_VALUE_MAX 4096

static int refuse(struct px_authn *a, enum px_jwt_reason r, const char *fmt, ...) ZT_PRINTF(3, 4);

static int refuse(struct px_authn *a, enum px_jwt_reason r, const char *fmt, ...)
{
	va_list ap;

	a->reason = r;
	va_start(ap, fmt);
	vsnprintf(a->why, sizeof a->why, fmt, ap);
	va_end(ap);
	return -1;
}

/* A location's prefix, and then at least one byte of token. */
static int prefix_ok(const zt_jwt_location *l, const char *v, size_t n)
{
	if (n <= l->prefix_len)
		return 0;
	return l->prefix_ci ? strncasecmp(v, l->prefix, l->prefix_len) == 0
			    : memcmp(v, l->prefix, l->prefix_len) == 0;
}

/* The location of rule r a header field carries a token in, or NULL. */
static const zt_jwt_location *header_loc(const zt_jwt_rule *r, const zt_http1_field *f)
{
	for (size_t k = 0; k < r->nfrom; k++) {
		const zt_jwt_location *l = &r->from[k];

		if (l->from == ZT_JWT_FROM_HEADER && zt_http1_name_eq(f->name, f->name_len, l->name) &&
		    prefix_ok(l, f->value, f->value_len))
			return l;
	}
	return NULL;
}

/* 1 when rule r reads tokens from the query parameter named p (n bytes). */
static int param_loc(const zt_jwt_rule *r, const char *p, size_t n)
{
	for (size_t k = 0; k < r->nfrom; k++)
		if (r->from[k].from == ZT_JWT_FROM_PARAM && r->from[k].name_len == n &&
		    memcmp(r->from[k].name, p, n) == 0)
			return 1;
	return 0;
}

/*
 * Every header field and query parameter that carries a token for some
 * rule; the first is remembered. Returns how many there are: a request
 * carries one token or none (docs/proxy.md), never a choice among several.
 */
static size_t find_tokens(struct px_authn *a, const zt_http1_request *rq, const char *target,
			  size_t path_len)
{
	size_t found = 0, tlen = strlen(target);

	for (size_t i = 0; i < rq->nfields; i++)
		for (size_t r = 0; r < a->nrules; r++)
			if (header_loc(a->rules[r], &rq->fields[i])) {
				if (!found++) {
					a->where = 1;
					a->field = i;
				}
				break;
			}
	if (path_len < tlen && target[path_len] == '?') {
		const char *p = target + path_len + 1, *end = target + tlen;

		while (p < end) {
			const char *amp = memchr(p, '&', (size_t)(end - p)), *eq;

			if (!amp)
				amp = end;
			eq = memchr(p, '=', (size_t)(amp - p));
			if (eq && eq + 1 < amp)
				for (size_t r = 0; r < a->nrules; r++)
					if (param_loc(a->rules[r], p, (size_t)(eq - p))) {
						if (!found++) {
							a->where = 2;
							a->pair = p;
							a->pair_len = (size_t)(amp - p);
						}
						break;
					}
			p = amp + 1;
		}
	}
	return found;
}

/* The token as rule r reads it from where it was found; 0 when r does not look there. */
static int token_for(const struct px_authn *a, const zt_jwt_rule *r, const zt_http1_request *rq,
		     const char **tok, size_t *n)
{
	if (a->where == 1) {
		const zt_http1_field *f = &rq->fields[a->field];
		const zt_jwt_location *l = header_loc(r, f);

		if (!l)
			return 0;
		*tok = f->value + l->prefix_len;
		*n = f->value_len - l->prefix_len;
		return 1;
	}
	const char *eq = memchr(a->pair, '=', a->pair_len);

	if (!param_loc(r, a->pair, (size_t)(eq - a->pair)))
		return 0;
	*tok = eq + 1;
	*n = a->pair_len - (size_t)(eq + 1 - a->pair);
	return 1;
}

/*
 * The "iss" of a token, not verified: it only picks the rule (and so the
 * keys) the token is verified with. -1 when the token is not even shaped
 * like a JWT.
 */
static int peek_issuer(const char *tok, size_t n, char *iss, size_t cap)
{
	const char *d1 = memchr(tok, '.', n), *d2;
	const char *s;
	json_t *claims;
	zt_buf b;
	zt_err e;
	int r = -1;

	if (!d1 || !(d2 = memchr(d1 + 1, '.', n - (size_t)(d1 + 1 - tok))))
		return -1;
	zt_buf_init(&b, ZT_JWS_MAX_DEFAULT);
	if (zt_base64_decode(d1 + 1, (size_t)(d2 - d1 - 1), 1, &b, &e) == 0 &&
	    (claims = zt_json_parse((const char *)b.p, b.len, &e)) != NULL) {
		s = json_string_value(json_object_get(claims, "iss"));
		if (s && strlen(s) < cap) {
			memcpy(iss, s, strlen(s) + 1);
			r = 0;
		}
		json_decref(claims);
	}
	zt_buf_free(&b, 0);
	return r;
}

static enum px_jwt_reason reason_of(const zt_err *e)
{
	static const struct {
		const char *rule;
		enum px_jwt_reason reason;
	} map[] = {
		{ "jws-unknown-kid", PX_JWT_UNKNOWN_KID }, { "jws-no-key", PX_JWT_ALGORITHM },
		{ "jws-alg", PX_JWT_ALGORITHM },           { "jws-signature", PX_JWT_SIGNATURE },
		{ "jwt-exp", PX_JWT_EXPIRED },             { "jwt-nbf", PX_JWT_NOT_YET_VALID },
		{ "jwt-iat", PX_JWT_NOT_YET_VALID },       { "jwt-aud", PX_JWT_AUDIENCE },
		{ "jwt-iss", PX_JWT_ISSUER },
	};

	for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
		if (strcmp(e->rule, map[i].rule) == 0)
			return map[i].reason;
	return PX_JWT_MALFORMED;
}

/* The claims the policy sees beside the principal. */
static int take_claims(struct px_authn *a)
{
	const json_t *aud = json_object_get(a->jwt.claims, "aud"), *v;
	size_t i, n = json_is_array(aud) ? json_array_size(aud) : aud ? 1 : 0;

	if (a->jwt.iss && a->jwt.sub) {
		size_t li = strlen(a->jwt.iss), ls = strlen(a->jwt.sub);

		if (!(a->principal = malloc(li + ls + 2)))
			return -1;
		memcpy(a->principal, a->jwt.iss, li);
		a->principal[li] = '/';
		memcpy(a->principal + li + 1, a->jwt.sub, ls + 1);
	}
	if (n && !(a->auds = calloc(n, sizeof *a->auds)))
		return -1;
	if (json_is_string(aud)) {
		a->auds[a->nauds++] = (zt_str){ json_string_value(aud), json_string_length(aud) };
	} else {
		json_array_foreach(aud, i, v)
			if (json_is_string(v)) /* zt_jwt_verify checked: all are */
				a->auds[a->nauds++] = (zt_str){ json_string_value(v), json_string_length(v) };
	}
	return 0;
}

int px_authn_check(struct conn *c, const zt_http1_request *rq, const char *target,
		   size_t path_len, struct px_authn *a)
{
	const char *tok = NULL, *keys_why = NULL;
	char iss[ISS_MAX];
	size_t n, len = 0;
	int any_issuer = 0, candidates = 0, r = -1;
	zt_err e;

	zt_buf_init(&a->scratch, 64 * 1024);
	n = zt_policy_jwt_rules(c->snap->policy, c->ls->service, strlen(c->ls->service), a->rules,
				ZT_POLICY_MAX_JWT_RULES);
	if (n == 0)
		return 0;
	if (n > ZT_POLICY_MAX_JWT_RULES) {
		a->nrules = ZT_POLICY_MAX_JWT_RULES; /* still cleared from the client's headers */
		n = find_tokens(a, rq, target, path_len);
		if (n == 0)
			return 0;
		r = refuse(a, PX_JWT_TOO_MANY_RULES, "more than %d jwtRules apply to %s; no token can be checked",
			   ZT_POLICY_MAX_JWT_RULES, c->ls->service);
		goto out;
	}
	a->nrules = n;
	n = find_tokens(a, rq, target, path_len);
	if (n == 0)
		return 0; /* no token: the policy decides without a request principal */
	if (n > 1) {
		r = refuse(a, PX_JWT_MULTIPLE, "the request carries %zu tokens; one is allowed", n);
		goto out;
	}
	/* the issuer picks the rule: any rule that looks where the token is */
	for (size_t i = 0; i < a->nrules && !tok; i++)
		if (token_for(a, a->rules[i], rq, &tok, &len) && len > ZT_JWS_MAX_DEFAULT) {
			r = refuse(a, PX_JWT_MALFORMED, "the token is %zu bytes, more than %d", len, ZT_JWS_MAX_DEFAULT);
			goto out;
		}
	if (!tok || peek_issuer(tok, len, iss, sizeof iss) != 0) {
		r = refuse(a, PX_JWT_MALFORMED, "the token is not a JWT with an issuer (\"iss\")");
		goto out;
	}
	zt_err_clear(&e);
	for (size_t i = 0; i < a->nrules && !a->verified; i++) {
		const zt_jwt_rule *rl = a->rules[i];
		struct px_keyset *ks = NULL;
		const zt_jwks *keys = rl->jwks;

		if (strcmp(rl->issuer, iss) != 0)
			continue;
		any_issuer = 1;
		if (!token_for(a, rl, rq, &tok, &len))
			continue;
		candidates++;
		if (!keys) {
			if (!(ks = px_jwks_get(c->px->jwks, rl->key_source, &keys_why)))
				continue;
			keys = &ks->keys;
		}
		zt_jwt_rules jr = { .issuer = rl->issuer, .audiences = rl->audiences, .leeway = -1 };

		if (zt_jwt_verify(tok, len, keys, &jr, &a->jwt, &e) == 0) {
			a->verified = 1;
			a->rule = rl;
			a->token = tok;
			a->token_len = len;
		} else if (ks && strcmp(e.rule, "jws-unknown-kid") == 0) {
			px_jwks_unknown_kid(c->px->jwks, rl->key_source);
		}
		px_keyset_put(ks);
	}
	if (a->verified) {
		if (take_claims(a) != 0) {
			r = refuse(a, PX_JWT_MALFORMED, "out of memory");
			goto out;
		}
		px_count(&c->ls->stats->jwt_valid, 1);
		return 0;
	}
	if (!candidates)
		r = refuse(a, PX_JWT_ISSUER,
			   any_issuer ? "the jwtRule of issuer \"%.200s\" does not read tokens from where this one is"
				      : "no jwtRule names the token's issuer \"%.200s\"",
			   iss);
	else if (e.rule[0] || e.msg[0])
		r = refuse(a, reason_of(&e), "%s", e.msg);
	else
		r = refuse(a, PX_JWT_NO_KEYS, "issuer \"%.200s\": %s", iss, keys_why ? keys_why : "no keys");
out:
	px_count(&c->ls->stats->jwt_refused[a->reason], 1);
	return r;
}

void px_authn_request(const struct px_authn *a, zt_policy_request *req)
{
	if (!a->verified)
		return;
	if (a->principal)
		req->auth_principal = (zt_str){ a->principal, strlen(a->principal) };
	{
		const json_t *azp = json_object_get(a->jwt.claims, "azp");

		if (json_is_string(azp))
			req->auth_presenter = (zt_str){ json_string_value(azp), json_string_length(azp) };
	}
	req->audiences = a->auds;
	req->naudiences = a->nauds;
	req->claims = a->jwt.claims;
}

/* A claim by name, "a.b" walking into objects (as Envoy's claim_to_headers). */
static const json_t *claim_at(const json_t *claims, const char *name)
{
	const json_t *v = json_object_get(claims, name);
	char part[257];

	if (v || !strchr(name, '.'))
		return v;
	v = claims;
	for (const char *p = name; v && *p;) {
		size_t n = strcspn(p, ".");

		if (n == 0 || n >= sizeof part)
			return NULL;
		memcpy(part, p, n);
		part[n] = '\0';
		v = json_object_get(v, part);
		p += n + (p[n] == '.');
	}
	return v;
}

/* A claim as a header value, appended to scratch: strings as they are,
 * numbers and booleans as JSON, lists of those joined by ','. 0 with its
 * length in *n, or -1 (then scratch may hold part of it). */
static int claim_value(zt_buf *scratch, const json_t *v, size_t *n)
{
	size_t start = scratch->len, i;
	const json_t *el;
	zt_err e;

	for (size_t k = 0, cnt = json_is_array(v) ? json_array_size(v) : 1; k < cnt; k++) {
		char num[64];
		const char *s = NULL;
		size_t sl = 0;

		el = json_is_array(v) ? json_array_get(v, k) : v;
		if (json_is_string(el)) {
			s = json_string_value(el);
			sl = json_string_length(el);
		} else if (json_is_integer(el)) {
			snprintf(num, sizeof num, "%" JSON_INTEGER_FORMAT, json_integer_value(el));
		} else if (json_is_real(el)) {
			snprintf(num, sizeof num, "%.17g", json_real_value(el));
		} else if (json_is_boolean(el)) {
			snprintf(num, sizeof num, "%s", json_is_true(el) ? "true" : "false");
		} else {
			return -1;
		}
		if (!s) {
			s = num;
			sl = strlen(num);
		}
		for (i = 0; i < sl; i++) /* nothing a header cannot carry */
			if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
				return -1;
		if ((k && zt_buf_append(scratch, ",", 1, &e) != 0) || zt_buf_append(scratch, s, sl, &e) != 0)
			return -1;
	}
	*n = scratch->len - start;
	return *n == 0 || *n > CLAIM_VALUE_MAX ? -1 : 0;
}

/* 1 when name is an output header of a rule that applies: the client's copy goes */
static int output_header(const struct px_authn *a, const char *name, size_t len)
{
	for (size_t r = 0; r < a->nrules; r++) {
		const zt_jwt_rule *rl = a->rules[r];

		if (rl->payload_header && zt_http1_name_eq(name, len, rl->payload_header))
			return 1;
		for (size_t k = 0; k < rl->nclaim_headers; k++)
			if (zt_http1_name_eq(name, len, rl->claim_headers[k].header))
				return 1;
	}
	return 0;
}

int px_authn_rewrite(struct px_authn *a, const zt_http1_request *rq, zt_http1_field *fields,
		     size_t *nfields, zt_http1_field *extra, size_t *nextra, size_t max_extra,
		     char *target, size_t *target_len, size_t cap, zt_err *e)
{
	int strip = a->verified && !a->rule->forward;
	size_t n = 0;

	for (size_t i = 0; i < rq->nfields; i++) {
		const zt_http1_field *f = &rq->fields[i];

		if ((strip && a->where == 1 && i == a->field) || output_header(a, f->name, f->name_len))
			continue;
		fields[n++] = *f;
	}
	*nfields = n;
	if (!a->verified)
		return 0;
	if (a->rule->payload_header) {
		/* the verified payload as it came: base64url (Istio, Envoy) */
		const char *d1 = memchr(a->token, '.', a->token_len);
		const char *d2 = memchr(d1 + 1, '.', a->token_len - (size_t)(d1 + 1 - a->token));

		if (*nextra == max_extra)
			return zt_err_set(e, ZT_ELIMIT, "too many headers to add");
		extra[(*nextra)++] = (zt_http1_field){ a->rule->payload_header, strlen(a->rule->payload_header),
						       d1 + 1, (size_t)(d2 - d1 - 1) };
	}
	{
		/* values go to scratch, which may move as it grows: offsets first */
		size_t off[32], len[32], first = *nextra, m = 0;
		const char *hdr[32];

		for (size_t k = 0; k < a->rule->nclaim_headers && k < 32; k++) {
			const zt_jwt_claim_header *ch = &a->rule->claim_headers[k];
			const json_t *v = claim_at(a->jwt.claims, ch->claim);
			size_t at = a->scratch.len;

			if (!v || claim_value(&a->scratch, v, &len[m]) != 0) {
				a->scratch.len = at; /* absent, or nothing a header can carry: not set */
				continue;
			}
			off[m] = at;
			hdr[m++] = ch->header;
		}
		if (first + m > max_extra)
			return zt_err_set(e, ZT_ELIMIT, "too many headers to add");
		for (size_t k = 0; k < m; k++)
			extra[(*nextra)++] = (zt_http1_field){ hdr[k], strlen(hdr[k]),
							       (const char *)a->scratch.p + off[k], len[k] };
	}
	if (strip && a->where == 2) {
		/* the target without the token's parameter (and without '?' when it was the only one) */
		char *end = target + *target_len, *p;
		size_t before, after;

		if (a->pair < target || a->pair + a->pair_len > end)
			return zt_err_set(e, ZT_EINVAL, "the token parameter is not in the target");
		before = (size_t)(a->pair - target);
		p = target + before;
		after = (size_t)(end - (p + a->pair_len));
		if (after) { /* "...&tok=x&rest": take "tok=x&" */
			memmove(p, p + a->pair_len + 1, after - 1);
			*target_len -= a->pair_len + 1;
		} else { /* the last one: take "&tok=x" or "?tok=x" */
			*target_len = before - 1;
		}
		target[*target_len] = '\0';
		(void)cap;
	}
	return 0;
}

void px_authn_log_target(const struct px_authn *a, const char *target, size_t len, char *out,
			 size_t outsz)
{
	const char *q = memchr(target, '?', len), *p, *end = target + len;
	size_t used;

	if (!q || !outsz) {
		snprintf(out, outsz, "%.*s", (int)len, target);
		return;
	}
	/* every parameter a rule reads tokens from, whichever was used */
	used = (size_t)snprintf(out, outsz, "%.*s", (int)(q + 1 - target), target);
	for (p = q + 1; p < end && used < outsz;) {
		const char *amp = memchr(p, '&', (size_t)(end - p)), *eq;
		int secret = 0;

		if (!amp)
			amp = end;
		eq = memchr(p, '=', (size_t)(amp - p));
		for (size_t r = 0; eq && r < a->nrules && !secret; r++)
			secret = param_loc(a->rules[r], p, (size_t)(eq - p));
		if (secret)
			used += (size_t)snprintf(out + used, outsz - used, "%.*sREDACTED%s", (int)(eq + 1 - p), p,
						 amp < end ? "&" : "");
		else
			used += (size_t)snprintf(out + used, outsz - used, "%.*s", (int)(amp - p + (amp < end)), p);
		p = amp + 1;
	}
}

void px_authn_free(struct px_authn *a)
{
	if (a->verified)
		zt_jwt_free(&a->jwt);
	free(a->principal);
	free(a->auds);
	zt_buf_free(&a->scratch, 0);
	memset(a, 0, sizeof *a);
}
