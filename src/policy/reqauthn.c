/*
 * policy/reqauthn.c: the jwtRules of RequestAuthentication documents (zt's
 * and Istio's security.istio.io v1/v1beta1 as they are), read into the
 * model with diagnostics, and looked up per destination in a snapshot.
 *
 * What a rule says is checked at load, so the proxy never meets a rule it
 * would have to guess about: an unknown field is an error, as in an
 * AuthorizationPolicy; an inline JWKS is parsed here (crypto's parser, the
 * one the proxy verifies with) and a bad one is a load error; a jwksUri or
 * an issuer whose keys must be discovered has to be a URL the proxy may
 * fetch (https, or http to loopback, as client/oidc.c allows). Fields zt
 * does not implement (fromCookies, timeout) are errors that say so.
 */
#include "policy_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/crypto.h"

#define URL_MAX 2000
#define NAME_MAX_LEN 256
#define PREFIX_MAX 256

/* RFC 9110 5.6.2 tchar */
static int tchar(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static int is_token(const char *s, size_t n)
{
	if (n == 0 || n > NAME_MAX_LEN)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!s[i] || !tchar((unsigned char)s[i]))
			return 0;
	return 1;
}

/* Visible ASCII, and space when allowed: what a header value or a URL may hold. */
static int printable(const char *s, size_t n, int space)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c < 0x20 || c > 0x7e || (c == ' ' && !space))
			return 0;
	}
	return 1;
}

/* Headers the proxy writes itself or that frame the message: a rule may
 * neither read a token from them nor write into them. */
static int reserved_header(const char *lower)
{
	static const char *const names[] = { "host", "content-length", "transfer-encoding", "connection",
					     "keep-alive", "proxy-connection", "te", "trailer", "upgrade",
					     "x-request-id", "x-forwarded-client-cert", NULL };

	for (size_t i = 0; names[i]; i++)
		if (strcmp(lower, names[i]) == 0)
			return 1;
	return 0;
}

static char *lower_dup(zt_policy_src *src, json_t *v)
{
	char *s = pol_dup_str(src, v);

	for (char *q = s; q && *q; q++)
		if (*q >= 'A' && *q <= 'Z')
			*q = (char)(*q - 'A' + 'a');
	return s;
}

/* the hosts client/oidc.c fetches plain http:// from */
static int loopback_host(const char *h, size_t n)
{
	if ((n == 9 && memcmp(h, "localhost", 9) == 0) || (n == 5 && memcmp(h, "[::1]", 5) == 0))
		return 1;
	return n > 4 && memcmp(h, "127.", 4) == 0 && strspn(h, "0123456789.") >= n;
}

/* A URL the proxy may fetch keys from; NULL, or what is wrong with it. */
static const char *url_problem(const char *s, size_t n)
{
	size_t scheme, hl;

	if (n > URL_MAX)
		return "is longer than 2000 bytes";
	if (!printable(s, n, 0) || memchr(s, '"', n) || memchr(s, '\\', n))
		return "holds a space, a quote, a backslash or a control character";
	if (n > 8 && memcmp(s, "https://", 8) == 0)
		scheme = 8;
	else if (n > 7 && memcmp(s, "http://", 7) == 0)
		scheme = 7;
	else
		return "is not an https:// URL";
	hl = strcspn(s + scheme, ":/?#");
	if (hl == 0)
		return "has no host";
	if (scheme == 7 && !loopback_host(s + scheme, hl))
		return "is plain http:// to a host other than loopback; keys are fetched over https://";
	if (memchr(s, '#', n))
		return "has a fragment";
	return NULL;
}

static void at(zt_policy_src *src, const struct rawdoc *rd, json_t *obj, const char *key)
{
	pol_at_key(src, rd, obj, key);
}

/* A list of non-empty strings; -1 (error recorded) when it is not one. */
static int str_list(zt_policy_src *src, const struct rawdoc *rd, json_t *v, const char *what)
{
	json_t *el;
	size_t i;

	if (!json_is_array(v)) {
		ERR(src, rd, v, "%s must be a list of strings", what);
		return -1;
	}
	if (json_array_size(v) == 0) {
		ERR(src, rd, v, "%s: an empty list reads as \"none\" but would mean \"any\"; remove it or name the values", what);
		return -1;
	}
	if (json_array_size(v) > 64) {
		ERR(src, rd, v, "%s lists at most 64 values", what);
		return -1;
	}
	json_array_foreach(v, i, el)
		if (!json_is_string(el) || json_string_length(el) == 0 ||
		    memchr(json_string_value(el), '\0', json_string_length(el))) {
			ERR(src, rd, el, "%s: each value is a non-empty string", what);
			return -1;
		}
	return 0;
}

static int add_jwks(zt_policy_src *src, struct zt_jwks *set)
{
	struct model *m = src->m;

	if (m->njwks == m->capjwks) {
		uint32_t ncap = m->capjwks ? m->capjwks * 2 : 8;
		struct zt_jwks **nj = realloc(m->jwks, ncap * sizeof *nj);

		if (!nj)
			return -1;
		m->jwks = nj;
		m->capjwks = ncap;
	}
	m->jwks[m->njwks++] = set;
	return 0;
}

/* jwks: the inline JWK Set, a JSON string (Istio's form). */
static int inline_jwks(zt_policy_src *src, const struct rawdoc *rd, json_t *v, zt_jwt_rule *r)
{
	zt_jwks *set;
	zt_err e;

	if (!json_is_string(v)) {
		ERR(src, rd, v, "jwks is a JWK Set as a JSON string ('{\"keys\": [...]}')");
		return -1;
	}
	if (!(set = calloc(1, sizeof *set))) {
		ERR(src, rd, v, "out of memory");
		return -1;
	}
	if (zt_jwks_parse(json_string_value(v), json_string_length(v), 0, set, &e) != 0) {
		ERR(src, rd, v, "jwks: %s", e.msg);
		goto bad;
	}
	if (set->n == 0) {
		ERR(src, rd, v, "jwks: none of its %zu key(s) can verify a signature here (public EC P-256/384/521, RSA of 2048 bits or more, Ed25519, with use \"sig\"); no token could ever pass",
		    set->skipped);
		goto bad;
	}
	if (add_jwks(src, set) != 0) {
		ERR(src, rd, v, "out of memory");
		goto bad;
	}
	r->jwks = set;
	return 0;
bad:
	zt_jwks_free(set);
	free(set);
	return -1;
}

static int parse_from_headers(zt_policy_src *src, const struct rawdoc *rd, json_t *v,
			      zt_jwt_location *out, size_t *n)
{
	static const char *const keys[] = { "name", "prefix", NULL };
	json_t *h;
	size_t i;

	if (!json_is_array(v) || json_array_size(v) == 0 || json_array_size(v) > 16) {
		ERR(src, rd, v, "fromHeaders is a list of 1 to 16 {name, prefix}");
		return -1;
	}
	json_array_foreach(v, i, h) {
		json_t *name = json_object_get(h, "name"), *prefix = json_object_get(h, "prefix");
		zt_jwt_location *l = &out[(*n)++];

		if (!json_is_object(h)) {
			ERR(src, rd, h, "fromHeaders[%zu] is a mapping {name, prefix}", i);
			return -1;
		}
		pol_known_keys(src, rd, h, keys, "fromHeaders", 0);
		if (!json_is_string(name) || !is_token(json_string_value(name), json_string_length(name))) {
			ERR(src, rd, name ? name : h, "fromHeaders[%zu].name is an HTTP header name (RFC 9110 5.1)", i);
			return -1;
		}
		l->from = ZT_JWT_FROM_HEADER;
		l->name = lower_dup(src, name);
		l->name_len = json_string_length(name);
		if (reserved_header(l->name)) {
			ERR(src, rd, name, "fromHeaders[%zu].name: %s is written by the proxy or frames the message; a token cannot travel in it",
			    i, l->name);
			return -1;
		}
		l->prefix = "";
		if (prefix) {
			if (!json_is_string(prefix) || json_string_length(prefix) > PREFIX_MAX ||
			    !printable(json_string_value(prefix), json_string_length(prefix), 1)) {
				ERR(src, rd, prefix, "fromHeaders[%zu].prefix is text of at most %d visible characters or spaces",
				    i, PREFIX_MAX);
				return -1;
			}
			l->prefix = pol_dup_str(src, prefix);
			l->prefix_len = json_string_length(prefix);
		}
	}
	return 0;
}

static int parse_from_params(zt_policy_src *src, const struct rawdoc *rd, json_t *v,
			     zt_jwt_location *out, size_t *n)
{
	json_t *p;
	size_t i;

	if (!json_is_array(v) || json_array_size(v) == 0 || json_array_size(v) > 16) {
		ERR(src, rd, v, "fromParams is a list of 1 to 16 query parameter names");
		return -1;
	}
	json_array_foreach(v, i, p) {
		const char *s = json_string_value(p);
		size_t len = json_string_length(p);
		zt_jwt_location *l = &out[(*n)++];

		/* compared with the raw query: characters that need no escaping, and no & = */
		if (!json_is_string(p) || len == 0 || len > NAME_MAX_LEN || !printable(s, len, 0) ||
		    strpbrk(s, "&=#%?+\"\\")) {
			ERR(src, rd, p, "fromParams[%zu] is a query parameter name: visible characters other than & = # %% ? +",
			    i);
			return -1;
		}
		l->from = ZT_JWT_FROM_PARAM;
		l->name = pol_dup_str(src, p);
		l->name_len = len;
		l->prefix = "";
	}
	return 0;
}

/* An output header: a token name the proxy may set and must clear first. */
static const char *output_header(zt_policy_src *src, const struct rawdoc *rd, json_t *v,
				 const char *what, const zt_jwt_rule *r)
{
	char *h;

	if (!json_is_string(v) || !is_token(json_string_value(v), json_string_length(v))) {
		ERR(src, rd, v, "%s is an HTTP header name (RFC 9110 5.1)", what);
		return NULL;
	}
	h = lower_dup(src, v);
	if (reserved_header(h)) {
		ERR(src, rd, v, "%s: %s is written by the proxy or frames the message", what, h);
		return NULL;
	}
	for (size_t i = 0; i < r->nfrom; i++)
		if (r->from[i].from == ZT_JWT_FROM_HEADER && strcmp(r->from[i].name, h) == 0) {
			ERR(src, rd, v, "%s: %s is where this rule reads tokens from", what, h);
			return NULL;
		}
	return h;
}

static int parse_jwt_rule(zt_policy_src *src, const struct rawdoc *rd, json_t *o,
			  struct reqauthn *ra, zt_jwt_rule *r, int idx)
{
	static const char *const keys[] = { "issuer", "audiences", "jwksUri", "jwks_uri", "jwks",
					    "fromHeaders", "fromParams", "fromCookies",
					    "forwardOriginalToken", "outputPayloadToHeader",
					    "outputClaimToHeaders", "timeout", NULL };
	json_t *iss = json_object_get(o, "issuer"), *aud = json_object_get(o, "audiences");
	json_t *uri = json_object_get(o, "jwksUri"), *jwks = json_object_get(o, "jwks");
	json_t *fh = json_object_get(o, "fromHeaders"), *fp = json_object_get(o, "fromParams");
	json_t *fwd = json_object_get(o, "forwardOriginalToken");
	json_t *payload = json_object_get(o, "outputPayloadToHeader");
	json_t *claims = json_object_get(o, "outputClaimToHeaders"), *el;
	const char *why;
	zt_jwt_location *from;
	size_t i, nfrom = 0;
	char src_key[URL_MAX + 8];

	if (!json_is_object(o)) {
		ERR(src, rd, o, "jwtRules[%d] is a mapping with an issuer", idx);
		return -1;
	}
	pol_known_keys(src, rd, o, keys, "a jwtRule", 0);
	if (json_object_get(o, "fromCookies")) {
		ERR(src, rd, json_object_get(o, "fromCookies"), "fromCookies is not supported yet: send the token in a header (fromHeaders) or a query parameter (fromParams)");
		at(src, rd, o, "fromCookies");
		return -1;
	}
	if (json_object_get(o, "timeout")) {
		ERR(src, rd, json_object_get(o, "timeout"), "timeout is not supported yet: the proxy fetches keys in the background; set spec.jwt.fetchTimeout in its configuration (docs/proxy.md)");
		at(src, rd, o, "timeout");
		return -1;
	}
	r->policy = ra->head.display;
	r->index = idx;
	if (!json_is_string(iss) || json_string_length(iss) == 0 || json_string_length(iss) > URL_MAX ||
	    !printable(json_string_value(iss), json_string_length(iss), 0) ||
	    memchr(json_string_value(iss), '"', json_string_length(iss)) ||
	    memchr(json_string_value(iss), '\\', json_string_length(iss))) {
		ERR(src, rd, iss ? iss : o, "jwtRules[%d].issuer is required: the exact \"iss\" of the tokens (visible characters, no quotes)", idx);
		return -1;
	}
	r->issuer = pol_dup_str(src, iss);
	for (uint32_t k = 0; k < ra->nrules; k++)
		if (strcmp(ra->rules[k].issuer, r->issuer) == 0) {
			ERR(src, rd, iss, "issuer \"%.200s\" has a jwtRule already in this RequestAuthentication; list its token locations and audiences in one rule",
			    r->issuer);
			return -1;
		}
	if (aud) {
		const char **v;

		if (str_list(src, rd, aud, "audiences") != 0)
			return -1;
		if (!(v = pol_array(src, json_array_size(aud) + 1, sizeof *v)))
			return -1;
		json_array_foreach(aud, i, el)
			v[i] = pol_dup_str(src, el);
		v[json_array_size(aud)] = NULL;
		r->audiences = v;
	} else {
		WARN(src, rd, o, "jwtRules[%d] (issuer \"%.200s\") has no audiences: a token the issuer minted for any other service passes too (RFC 8725 3.9); list the audiences this service accepts",
		     idx, r->issuer);
	}
	if (json_object_get(o, "jwks_uri")) {
		if (uri) {
			ERR(src, rd, json_object_get(o, "jwks_uri"), "jwksUri and jwks_uri are the same field; give one");
			return -1;
		}
		uri = json_object_get(o, "jwks_uri");
	}
	if (uri && jwks) {
		ERR(src, rd, jwks, "give jwksUri or jwks, not both: which keys count must be unambiguous");
		return -1;
	}
	if (uri) {
		if (!json_is_string(uri) || (why = url_problem(json_string_value(uri), json_string_length(uri)))) {
			ERR(src, rd, uri, "jwksUri %s", json_is_string(uri) ? why : "is a URL string");
			return -1;
		}
		r->jwks_uri = pol_dup_str(src, uri);
		snprintf(src_key, sizeof src_key, "uri:%s", r->jwks_uri);
		r->key_source = zt_arena_strndup(src->m->arena, src_key, strlen(src_key));
	} else if (jwks) {
		if (inline_jwks(src, rd, jwks, r) != 0)
			return -1;
	} else {
		/* OpenID Connect Discovery: the issuer is where the keys are found */
		if ((why = url_problem(r->issuer, strlen(r->issuer)))) {
			ERR(src, rd, iss, "issuer \"%.200s\" %s, so its keys cannot be discovered (OpenID Connect Discovery); give jwksUri or jwks",
			    r->issuer, why);
			return -1;
		}
		snprintf(src_key, sizeof src_key, "oidc:%s", r->issuer);
		r->key_source = zt_arena_strndup(src->m->arena, src_key, strlen(src_key));
	}
	/* token locations; Istio's defaults without either list */
	from = pol_array(src, 32, sizeof *from);
	if (!from)
		return -1;
	memset(from, 0, 32 * sizeof *from);
	if (fh && parse_from_headers(src, rd, fh, from, &nfrom) != 0)
		return -1;
	if (fp && parse_from_params(src, rd, fp, from, &nfrom) != 0)
		return -1;
	if (!fh && !fp) {
		from[0] = (zt_jwt_location){ ZT_JWT_FROM_HEADER, "authorization", 13, "Bearer ", 7, 1 };
		from[1] = (zt_jwt_location){ ZT_JWT_FROM_PARAM, "access_token", 12, "", 0, 0 };
		nfrom = 2;
	}
	r->from = from;
	r->nfrom = nfrom;
	if (fwd && !json_is_boolean(fwd)) {
		ERR(src, rd, fwd, "forwardOriginalToken is true or false (the default: the token is removed before the request goes on)");
		return -1;
	}
	r->forward = json_is_true(fwd);
	if (payload && !(r->payload_header = output_header(src, rd, payload, "outputPayloadToHeader", r)))
		return -1;
	if (claims) {
		static const char *const ckeys[] = { "header", "claim", NULL };
		zt_jwt_claim_header *ch;

		if (!json_is_array(claims) || json_array_size(claims) == 0 || json_array_size(claims) > 32) {
			ERR(src, rd, claims, "outputClaimToHeaders is a list of 1 to 32 {header, claim}");
			return -1;
		}
		if (!(ch = pol_array(src, json_array_size(claims), sizeof *ch)))
			return -1;
		json_array_foreach(claims, i, el) {
			json_t *c = json_object_get(el, "claim");

			if (!json_is_object(el)) {
				ERR(src, rd, el, "outputClaimToHeaders[%zu] is a mapping {header, claim}", i);
				return -1;
			}
			pol_known_keys(src, rd, el, ckeys, "outputClaimToHeaders", 0);
			if (!(ch[i].header = output_header(src, rd, json_object_get(el, "header") ? json_object_get(el, "header") : el,
							   "outputClaimToHeaders.header", r)))
				return -1;
			if (r->payload_header && strcmp(ch[i].header, r->payload_header) == 0) {
				ERR(src, rd, el, "outputClaimToHeaders: %s is outputPayloadToHeader already", ch[i].header);
				return -1;
			}
			if (!json_is_string(c) || json_string_length(c) == 0 || json_string_length(c) > NAME_MAX_LEN ||
			    memchr(json_string_value(c), '\0', json_string_length(c))) {
				ERR(src, rd, c ? c : el, "outputClaimToHeaders[%zu].claim names a claim (\"a.b\" for a nested one)", i);
				return -1;
			}
			ch[i].claim = pol_dup_str(src, c);
		}
		r->claim_headers = ch;
		r->nclaim_headers = json_array_size(claims);
	}
	return 0;
}

void pol_parse_jwt_rules(zt_policy_src *src, const struct rawdoc *rd, json_t *spec,
			 struct reqauthn *ra)
{
	json_t *rules = json_object_get(spec, "jwtRules"), *el;
	size_t i;

	if (!rules || (json_is_array(rules) && json_array_size(rules) == 0)) {
		WARN(src, rd, rules ? rules : spec, "a RequestAuthentication without jwtRules checks nothing");
		return;
	}
	if (!json_is_array(rules) || json_array_size(rules) > ZT_POLICY_MAX_JWT_RULES) {
		ERR(src, rd, rules, "jwtRules is a list of at most %d rules", ZT_POLICY_MAX_JWT_RULES);
		return;
	}
	if (!(ra->rules = pol_array(src, json_array_size(rules), sizeof *ra->rules)))
		return;
	memset(ra->rules, 0, json_array_size(rules) * sizeof *ra->rules);
	/* every rule is read, so one check names every mistake; the set
	 * cannot compile with any of them */
	json_array_foreach(rules, i, el) {
		zt_jwt_rule *r = &ra->rules[ra->nrules];

		if (parse_jwt_rule(src, rd, el, ra, r, (int)i) == 0)
			ra->nrules++;
		else
			memset(r, 0, sizeof *r);
	}
}
