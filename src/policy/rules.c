/*
 * policy/rules.c: reading rules — sources, operations, conditions and the
 * value syntax of each field — into the model, with diagnostics.
 */
#include "policy_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- small readers ---- */

/* Checks that an object has only the given keys; others are errors (or
 * warnings when `lenient`). */
void pol_known_keys(zt_policy_src *src, const struct rawdoc *rd, json_t *obj,
		       const char *const *keys, const char *where, int lenient)
{
	const char *k;
	json_t *v;

	json_object_foreach(obj, k, v) {
		int found = 0;

		for (size_t i = 0; keys[i]; i++)
			found |= strcmp(k, keys[i]) == 0;
		if (found)
			continue;
		if (lenient)
			WARN(src, rd, v, "unknown field \"%s\" in %s (ignored)", k, where);
		else
			ERR(src, rd, v, "unknown field \"%s\" in %s: zt does not know it, and ignoring a condition would change who is allowed; remove it or write it as zt documents (docs/policy.md)",
			    k, where);
		pol_at_key(src, rd, obj, k);
	}
}

char *pol_dup_str(zt_policy_src *src, json_t *v)
{
	return zt_arena_strndup(src->m->arena, json_string_value(v), json_string_length(v));
}

void *pol_array(zt_policy_src *src, size_t n, size_t size)
{
	return n ? zt_arena_alloc(src->m->arena, n * size) : NULL;
}

/* A value in Istio's match syntax: exact, "abc*", "*abc", "*". */
static int parse_strm(zt_policy_src *src, const struct rawdoc *rd, json_t *v, struct strm *m,
		      const char *field, int lower)
{
	const char *s = json_string_value(v);
	size_t n = json_string_length(v), start = 0, end;

	if (!json_is_string(v)) {
		ERR(src, rd, v, "%s: each value must be a string", field);
		return -1;
	}
	if (n == 0) {
		ERR(src, rd, v, "%s: an empty value matches nothing; remove it", field);
		return -1;
	}
	end = n;
	if (n == 1 && s[0] == '*') {
		m->kind = STRM_ANY;
	} else if (s[0] == '*') {
		m->kind = STRM_SUFFIX;
		start = 1;
	} else if (s[n - 1] == '*') {
		m->kind = STRM_PREFIX;
		end = n - 1;
	} else {
		m->kind = STRM_EXACT;
	}
	if (m->kind != STRM_ANY && memchr(s + start, '*', end - start)) {
		ERR(src, rd, v, "%s: \"%.100s\" has a '*' that is not at the start or the end; a value matches exactly, by prefix (\"abc*\"), by suffix (\"*abc\") or by presence (\"*\")",
		    field, s);
		return -1;
	}
	if (memchr(s, '\0', n)) {
		ERR(src, rd, v, "%s: a value holds a NUL character", field);
		return -1;
	}
	m->len = (uint32_t)(end - start);
	char *copy = zt_arena_strndup(src->m->arena, s + start, m->len);
	if (!copy)
		return -1;
	if (lower)
		for (char *c = copy; *c; c++)
			*c = (char)((*c >= 'A' && *c <= 'Z') ? *c + 32 : *c);
	m->s = copy;
	return 0;
}

/* A list field: NULL or absent is "not set"; an empty list is an error,
 * because it reads as "nobody" but means "anybody". */
static int parse_strs(zt_policy_src *src, const struct rawdoc *rd, json_t *obj, const char *field,
		      struct strs *out, int lower)
{
	json_t *arr = json_object_get(obj, field), *v;
	size_t i;
	int r = 0;

	memset(out, 0, sizeof *out);
	if (!arr || json_is_null(arr))
		return 0;
	if (!json_is_array(arr)) {
		ERR(src, rd, arr, "%s must be a list of strings", field);
		return -1;
	}
	if (json_array_size(arr) == 0) {
		ERR(src, rd, arr, "%s is an empty list, which means the same as leaving it out (any value); remove it, or list the values",
		    field);
		return -1;
	}
	out->v = pol_array(src, json_array_size(arr), sizeof *out->v);
	json_array_foreach(arr, i, v) {
		if (parse_strm(src, rd, v, &out->v[out->n], field, lower) != 0)
			r = -1;
		else
			out->n++;
	}
	return r;
}

static int parse_port(json_t *v, uint16_t *out)
{
	long long p = -1;

	if (json_is_integer(v)) {
		p = json_integer_value(v);
	} else if (json_is_string(v)) {
		const char *s = json_string_value(v);
		char *end;

		if (*s >= '0' && *s <= '9' && json_string_length(v) <= 5)
			p = strtoll(s, &end, 10), p = *end ? -1 : p;
	}
	if (p < 1 || p > 65535)
		return -1;
	*out = (uint16_t)p;
	return 0;
}

static int parse_ports(zt_policy_src *src, const struct rawdoc *rd, json_t *obj,
		       const char *field, struct ports *out)
{
	json_t *arr = json_object_get(obj, field), *v;
	size_t i;
	int r = 0;

	memset(out, 0, sizeof *out);
	if (!arr || json_is_null(arr))
		return 0;
	if (!json_is_array(arr) || json_array_size(arr) == 0) {
		ERR(src, rd, arr, "%s must be a non-empty list of ports", field);
		return -1;
	}
	out->v = pol_array(src, json_array_size(arr), sizeof *out->v);
	json_array_foreach(arr, i, v) {
		if (parse_port(v, &out->v[out->n]) != 0) {
			ERR(src, rd, v, "%s: a port is a number from 1 to 65535", field);
			r = -1;
		} else {
			out->n++;
		}
	}
	return r;
}

static int parse_cidrs(zt_policy_src *src, const struct rawdoc *rd, json_t *obj,
		       const char *field, struct cidrs *out)
{
	json_t *arr = json_object_get(obj, field), *v;
	size_t i;
	int r = 0;

	memset(out, 0, sizeof *out);
	if (!arr || json_is_null(arr))
		return 0;
	if (!json_is_array(arr) || json_array_size(arr) == 0) {
		ERR(src, rd, arr, "%s must be a non-empty list of addresses or CIDR blocks", field);
		return -1;
	}
	out->v = pol_array(src, json_array_size(arr), sizeof *out->v);
	json_array_foreach(arr, i, v) {
		if (!json_is_string(v) ||
		    cidr_parse(json_string_value(v), json_string_length(v), &out->v[out->n], 1) != 0) {
			ERR(src, rd, v, "%s: \"%.60s\" is not an IP address or CIDR block (e.g. 10.0.0.0/8, 2001:db8::/32)",
			    field, json_is_string(v) ? json_string_value(v) : "?");
			r = -1;
		} else {
			out->n++;
		}
	}
	return r;
}

/* A never-matching pair: X and notX listing the same exact values. */
static void same_pos_neg(zt_policy_src *src, const struct rawdoc *rd, json_t *node,
			 const struct strs *pos, const struct strs *neg, const char *field)
{
	if (!pos->n || pos->n != neg->n)
		return;
	for (uint32_t i = 0; i < pos->n; i++)
		if (pos->v[i].kind != neg->v[i].kind || strcmp(pos->v[i].s, neg->v[i].s) != 0)
			return;
	WARN(src, rd, node, "%s and not%c%s list the same values: this never matches", field,
	     field[0] - 32, field + 1);
}

/* Paths are matched after normalization: a value that normalization would
 * change can never match as written. */
static void check_paths(zt_policy_src *src, const struct rawdoc *rd, json_t *obj,
			const char *field, const struct strs *set)
{
	json_t *arr = json_object_get(obj, field);

	for (uint32_t i = 0; i < set->n; i++) {
		const struct strm *m = &set->v[i];
		char norm[ZT_PATH_MAX + 1];
		size_t plen;

		if (strchr(m->s, '{') || strchr(m->s, '}')) {
			ERR(src, rd, json_array_get(arr, i),
			    "%s: path templates ({*}, {**}) are not supported; use a prefix (\"/a/*\") or a suffix (\"*.png\")",
			    field);
			continue;
		}
		if (m->kind == STRM_SUFFIX || m->kind == STRM_ANY)
			continue;
		if (m->s[0] != '/') {
			WARN(src, rd, json_array_get(arr, i),
			     "%s: \"%s\" does not begin with '/', and request paths always do: it never matches",
			     field, m->s);
			continue;
		}
		if (m->len <= ZT_PATH_MAX &&
		    (zt_path_normalize(m->s, m->len, norm, sizeof norm, &plen, NULL) != 0 ||
		     plen != m->len || memcmp(norm, m->s, plen) != 0) &&
		    !(m->kind == STRM_PREFIX && m->len > 1 && m->s[m->len - 1] == '/' &&
		      plen + 1 == m->len && memcmp(norm, m->s, plen) == 0))
			WARN(src, rd, json_array_get(arr, i),
			     "%s: \"%s\" is not in normalized form; requests are matched after normalization (dot segments removed, slashes merged, unreserved characters decoded), so it never matches as written",
			     field, m->s);
	}
}

/* ---- rules ---- */

static const char *const source_keys[] = { "principals", "notPrincipals", "requestPrincipals",
					   "notRequestPrincipals", "namespaces", "notNamespaces",
					   "ipBlocks", "notIpBlocks", NULL };
static const char *const operation_keys[] = { "hosts", "notHosts", "ports", "notPorts",
					      "methods", "notMethods", "paths", "notPaths", NULL };

static int parse_source(zt_policy_src *src, const struct rawdoc *rd, json_t *el,
			struct source *s, int *http)
{
	static const char *const wrap[] = { "source", NULL };
	json_t *o = json_object_get(el, "source");
	int r = 0;

	if (!json_is_object(el) || !json_is_object(o)) {
		ERR(src, rd, el, "each entry of from is {source: {...}}");
		return -1;
	}
	pol_known_keys(src, rd, el, wrap, "a from entry", 0);
	if (json_object_get(o, "remoteIpBlocks") || json_object_get(o, "notRemoteIpBlocks")) {
		ERR(src, rd, o, "remoteIpBlocks and notRemoteIpBlocks are not supported: zt does not yet trust a client-address header; use ipBlocks");
		r = -1;
	}
	pol_known_keys(src, rd, o, source_keys, "source", 0);
	r |= parse_strs(src, rd, o, "principals", &s->principals, 0);
	r |= parse_strs(src, rd, o, "notPrincipals", &s->not_principals, 0);
	r |= parse_strs(src, rd, o, "requestPrincipals", &s->req_principals, 0);
	r |= parse_strs(src, rd, o, "notRequestPrincipals", &s->not_req_principals, 0);
	r |= parse_strs(src, rd, o, "namespaces", &s->namespaces, 0);
	r |= parse_strs(src, rd, o, "notNamespaces", &s->not_namespaces, 0);
	r |= parse_cidrs(src, rd, o, "ipBlocks", &s->ips);
	r |= parse_cidrs(src, rd, o, "notIpBlocks", &s->not_ips);
	for (int k = 0; k < 2; k++) {
		const struct strs *set = k ? &s->not_principals : &s->principals;
		json_t *arr = json_object_get(o, k ? "notPrincipals" : "principals");

		for (uint32_t i = 0; i < set->n; i++)
			if (strncmp(set->v[i].s, "spiffe://", 9) == 0)
				WARN(src, rd, json_array_get(arr, i),
				     "principals are written without \"spiffe://\" (as in Istio): \"%s\" never matches",
				     set->v[i].s);
	}
	same_pos_neg(src, rd, o, &s->principals, &s->not_principals, "principals");
	same_pos_neg(src, rd, o, &s->namespaces, &s->not_namespaces, "namespaces");
	if (s->req_principals.n || s->not_req_principals.n)
		*http = 1;
	return r;
}

static int parse_operation(zt_policy_src *src, const struct rawdoc *rd, json_t *el,
			   struct operation *op, int *http)
{
	static const char *const wrap[] = { "operation", NULL };
	json_t *o = json_object_get(el, "operation");
	int r = 0;

	if (!json_is_object(el) || !json_is_object(o)) {
		ERR(src, rd, el, "each entry of to is {operation: {...}}");
		return -1;
	}
	pol_known_keys(src, rd, el, wrap, "a to entry", 0);
	pol_known_keys(src, rd, o, operation_keys, "operation", 0);
	r |= parse_strs(src, rd, o, "hosts", &op->hosts, 1);
	r |= parse_strs(src, rd, o, "notHosts", &op->not_hosts, 1);
	r |= parse_strs(src, rd, o, "methods", &op->methods, 0);
	r |= parse_strs(src, rd, o, "notMethods", &op->not_methods, 0);
	r |= parse_strs(src, rd, o, "paths", &op->paths, 0);
	r |= parse_strs(src, rd, o, "notPaths", &op->not_paths, 0);
	r |= parse_ports(src, rd, o, "ports", &op->ports);
	r |= parse_ports(src, rd, o, "notPorts", &op->not_ports);
	check_paths(src, rd, o, "paths", &op->paths);
	check_paths(src, rd, o, "notPaths", &op->not_paths);
	for (int k = 0; k < 2; k++) {
		const struct strs *set = k ? &op->not_methods : &op->methods;

		for (uint32_t i = 0; i < set->n; i++)
			for (const char *c = set->v[i].s; *c; c++)
				if (*c >= 'a' && *c <= 'z') {
					WARN(src, rd, json_array_get(json_object_get(o, k ? "notMethods" : "methods"), i),
					     "methods are case-sensitive and HTTP methods are uppercase: \"%s\" likely never matches",
					     set->v[i].s);
					break;
				}
	}
	for (int k = 0; k < 2; k++) {
		const struct strs *set = k ? &op->not_hosts : &op->hosts;

		for (uint32_t i = 0; i < set->n; i++)
			if (set->v[i].kind != STRM_SUFFIX && strchr(set->v[i].s, ':') &&
			    set->v[i].s[0] != '[')
				WARN(src, rd, json_array_get(json_object_get(o, k ? "notHosts" : "hosts"), i),
				     "hosts are compared without the port: \"%s\" never matches", set->v[i].s);
	}
	same_pos_neg(src, rd, o, &op->paths, &op->not_paths, "paths");
	same_pos_neg(src, rd, o, &op->methods, &op->not_methods, "methods");
	if (op->hosts.n || op->not_hosts.n || op->methods.n || op->not_methods.n || op->paths.n ||
	    op->not_paths.n)
		*http = 1;
	return r;
}

/* "request.auth.claims[a][b]" -> the claim path */
static int parse_claim_path(zt_policy_src *src, const char *p, struct condition *c)
{
	const char *q = p;
	uint32_t n = 0;

	while (*q == '[') {
		const char *end = strchr(q, ']');

		if (!end || end == q + 1)
			return -1;
		n++;
		q = end + 1;
	}
	if (*q || n == 0 || n > 16)
		return -1;
	c->claim = pol_array(src, n, sizeof *c->claim);
	for (q = p; *q == '[';) {
		const char *end = strchr(q, ']');

		c->claim[c->nclaim++] = zt_arena_strndup(src->m->arena, q + 1, (size_t)(end - q - 1));
		q = end + 1;
	}
	return 0;
}

static int parse_condition(zt_policy_src *src, const struct rawdoc *rd, json_t *el,
			   struct condition *c, int *http)
{
	static const char *const keys[] = { "key", "values", "notValues", NULL };
	json_t *k = json_object_get(el, "key");
	const char *key;
	int r = 0;

	if (!json_is_object(el) || !json_is_string(k)) {
		ERR(src, rd, el, "each entry of when is {key: ..., values: [...]} or with notValues");
		return -1;
	}
	pol_known_keys(src, rd, el, keys, "a when condition", 0);
	key = json_string_value(k);
	c->key_text = pol_dup_str(src, k);
	if (strncmp(key, "request.auth.claims", 19) == 0) {
		c->key = K_CLAIM;
		if (parse_claim_path(src, key + 19, c) != 0) {
			ERR(src, rd, k, "\"%.100s\": write a claim as request.auth.claims[NAME], or nested as request.auth.claims[a][b]",
			    key);
			return -1;
		}
	} else if (strncmp(key, "request.headers[", 16) == 0 && key[strlen(key) - 1] == ']' &&
		   strlen(key) > 17) {
		size_t n = strlen(key) - 17;
		char *h = zt_arena_strndup(src->m->arena, key + 16, n);

		for (char *x = h; *x; x++)
			*x = (char)((*x >= 'A' && *x <= 'Z') ? *x + 32 : *x);
		c->key = K_HEADER;
		c->header = h;
		c->header_len = (uint32_t)n;
	} else if (strcmp(key, "request.auth.audiences") == 0) {
		c->key = K_AUDIENCES;
	} else if (strcmp(key, "request.auth.presenter") == 0) {
		c->key = K_PRESENTER;
	} else if (strcmp(key, "request.auth.principal") == 0) {
		c->key = K_AUTH_PRINCIPAL;
	} else if (strcmp(key, "source.ip") == 0) {
		c->key = K_SOURCE_IP;
	} else if (strcmp(key, "source.principal") == 0) {
		c->key = K_SOURCE_PRINCIPAL;
	} else if (strcmp(key, "source.namespace") == 0) {
		c->key = K_SOURCE_NS;
	} else if (strcmp(key, "destination.port") == 0) {
		c->key = K_DEST_PORT;
	} else if (strcmp(key, "connection.sni") == 0) {
		c->key = K_SNI;
	} else {
		ERR(src, rd, k, "unknown when key \"%.100s\"; zt understands request.auth.claims[...], request.auth.audiences, request.auth.presenter, request.auth.principal, request.headers[...], source.ip, source.principal, source.namespace, destination.port, connection.sni",
		    key);
		return -1;
	}
	if (c->key <= K_HEADER)
		*http = 1;
	if (!json_object_get(el, "values") && !json_object_get(el, "notValues")) {
		ERR(src, rd, el, "the condition on %s needs values or notValues", key);
		return -1;
	}
	if (c->key == K_SOURCE_IP) {
		r |= parse_cidrs(src, rd, el, "values", &c->ipv);
		r |= parse_cidrs(src, rd, el, "notValues", &c->not_ipv);
	} else if (c->key == K_DEST_PORT) {
		r |= parse_ports(src, rd, el, "values", &c->portv);
		r |= parse_ports(src, rd, el, "notValues", &c->not_portv);
	} else {
		r |= parse_strs(src, rd, el, "values", &c->values, 0);
		r |= parse_strs(src, rd, el, "notValues", &c->not_values, 0);
		same_pos_neg(src, rd, el, &c->values, &c->not_values, "values");
	}
	return r;
}

int pol_parse_rule(zt_policy_src *src, const struct rawdoc *rd, json_t *o, struct rule *rule)
{
	static const char *const keys[] = { "from", "to", "when", NULL };
	json_t *arr, *el;
	size_t i;
	int r = 0, ln, col;

	if (!json_is_object(o)) {
		ERR(src, rd, o, "each rule is a mapping with from, to and when");
		return -1;
	}
	if (zt_docpos_get(rd->pos, o, &ln, &col) == 0)
		rule->line = ln;
	pol_known_keys(src, rd, o, keys, "a rule", 0);
	if ((arr = json_object_get(o, "from"))) {
		if (!json_is_array(arr) || json_array_size(arr) == 0) {
			ERR(src, rd, arr, "from must be a non-empty list of {source: ...}");
			return -1;
		}
		rule->from = pol_array(src, json_array_size(arr), sizeof *rule->from);
		json_array_foreach(arr, i, el)
			r |= parse_source(src, rd, el, &rule->from[rule->nfrom++], &rule->http_only_fields);
	}
	if ((arr = json_object_get(o, "to"))) {
		if (!json_is_array(arr) || json_array_size(arr) == 0) {
			ERR(src, rd, arr, "to must be a non-empty list of {operation: ...}");
			return -1;
		}
		rule->to = pol_array(src, json_array_size(arr), sizeof *rule->to);
		json_array_foreach(arr, i, el)
			r |= parse_operation(src, rd, el, &rule->to[rule->nto++], &rule->http_only_fields);
	}
	if ((arr = json_object_get(o, "when"))) {
		if (!json_is_array(arr) || json_array_size(arr) == 0) {
			ERR(src, rd, arr, "when must be a non-empty list of conditions");
			return -1;
		}
		rule->when = pol_array(src, json_array_size(arr), sizeof *rule->when);
		json_array_foreach(arr, i, el)
			r |= parse_condition(src, rd, el, &rule->when[rule->nwhen++], &rule->http_only_fields);
	}
	return r;
}
