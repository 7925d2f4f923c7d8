/*
 * policy/match.c: Istio's matching semantics.
 *
 * Values of one field are ORed, fields of one rule ANDed, sources and
 * operations of a rule ORed, conditions ANDed. A missing attribute matches
 * no value, so a notX field holds for it. On a connection without HTTP,
 * HTTP-only fields make an ALLOW (or AUDIT) rule fail and are ignored in a
 * DENY rule, so a DENY errs towards denying.
 */
#include "policy_int.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <string.h>

int strm_match(const struct strm *m, const char *s, size_t len)
{
	if (!s)
		len = 0;
	switch (m->kind) {
	case STRM_EXACT:
		return len == m->len && memcmp(s, m->s, len) == 0;
	case STRM_PREFIX:
		return len >= m->len && memcmp(s, m->s, m->len) == 0;
	case STRM_SUFFIX:
		return len >= m->len && memcmp(s + len - m->len, m->s, m->len) == 0;
	case STRM_ANY:
		return len > 0;
	}
	return 0;
}

int strs_match(const struct strs *set, const char *s, size_t len)
{
	for (uint32_t i = 0; i < set->n; i++)
		if (strm_match(&set->v[i], s, len))
			return 1;
	return 0;
}

static int ci_eq(const char *a, const char *lower, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		char c = a[i];

		if (c >= 'A' && c <= 'Z')
			c = (char)(c + 32);
		if (c != lower[i])
			return 0;
	}
	return 1;
}

int strs_match_ci(const struct strs *set, const char *s, size_t len)
{
	if (!s)
		len = 0;
	for (uint32_t i = 0; i < set->n; i++) {
		const struct strm *m = &set->v[i];
		int ok = 0;

		switch (m->kind) {
		case STRM_EXACT:
			ok = len == m->len && ci_eq(s, m->s, len);
			break;
		case STRM_PREFIX:
			ok = len >= m->len && ci_eq(s, m->s, m->len);
			break;
		case STRM_SUFFIX:
			ok = len >= m->len && ci_eq(s + len - m->len, m->s, m->len);
			break;
		case STRM_ANY:
			ok = len > 0;
			break;
		}
		if (ok)
			return 1;
	}
	return 0;
}

int cidrs_match(const struct cidrs *set, const uint8_t addr[16], int v6)
{
	for (uint32_t i = 0; i < set->n; i++) {
		const struct cidr *c = &set->v[i];
		unsigned full = c->bits / 8, rest = c->bits % 8;

		if (c->v6 != v6)
			continue;
		if (memcmp(c->addr, addr, full) != 0)
			continue;
		if (rest && ((c->addr[full] ^ addr[full]) & (uint8_t)(0xff << (8 - rest))))
			continue;
		return 1;
	}
	return 0;
}

int ports_match(const struct ports *set, int port)
{
	for (uint32_t i = 0; i < set->n; i++)
		if (set->v[i] == port)
			return 1;
	return 0;
}

int cidr_parse(const char *s, size_t len, struct cidr *out, int allow_prefix)
{
	char buf[64];
	const char *slash;
	unsigned long bits;
	int v6;

	if (len == 0 || len >= sizeof buf)
		return -1;
	memcpy(buf, s, len);
	buf[len] = '\0';
	slash = strchr(buf, '/');
	if (slash && !allow_prefix)
		return -1;
	if (slash)
		buf[slash - buf] = '\0';
	memset(out, 0, sizeof *out);
	v6 = strchr(buf, ':') != NULL;
	if (v6) {
		static const uint8_t mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

		if (inet_pton(AF_INET6, buf, out->addr) != 1)
			return -1;
		/* an IPv4-mapped address (what dual-stack sockets report) is the
		 * IPv4 address it maps, so IPv4 blocks judge it */
		if (!slash && memcmp(out->addr, mapped, 12) == 0)
			v6 = 0;
	} else {
		out->addr[10] = out->addr[11] = 0xff;
		if (inet_pton(AF_INET, buf, out->addr + 12) != 1)
			return -1;
	}
	bits = v6 ? 128 : 32;
	if (slash) {
		char *end;
		const char *digits = slash + 1;

		if (!*digits || strlen(digits) > 3 || !isdigit((unsigned char)digits[0]))
			return -1;
		bits = strtoul(digits, &end, 10);
		if (*end || bits > (v6 ? 128u : 32u))
			return -1;
	}
	out->v6 = (uint8_t)v6;
	out->bits = (uint8_t)(v6 ? bits : 96 + bits); /* IPv4 in the ::ffff:0:0/96 form */
	/* clear host bits so matching compares prefixes only */
	for (unsigned i = out->bits; i < 128; i++)
		out->addr[i / 8] &= (uint8_t)~(0x80 >> (i % 8));
	return 0;
}

void facts_init(struct facts *f, const zt_policy_request *req, unsigned needs)
{
	const char *p = req->source_principal.p;
	size_t n = req->source_principal.len;
	struct cidr ip;

	f->req = req;
	f->ns = NULL;
	f->ns_len = 0;
	f->has_ip = 0;
	f->host = NULL;
	f->host_len = 0;
	if (p && n > 9 && memcmp(p, "spiffe://", 9) == 0) {
		p += 9;
		n -= 9;
	}
	f->principal = p;
	f->principal_len = p ? n : 0;
	/* Istio's source.namespace: NAME in "<td>/ns/NAME/sa/..." */
	for (size_t i = 0; (needs & FACT_NS) && p && i + 4 <= n; i++) {
		if (memcmp(p + i, "/ns/", 4) == 0) {
			size_t j = i + 4;

			while (j < n && p[j] != '/')
				j++;
			f->ns = p + i + 4;
			f->ns_len = j - (i + 4);
			break;
		}
	}
	if ((needs & FACT_IP) && req->source_ip.len && cidr_parse(req->source_ip.p, req->source_ip.len, &ip, 0) == 0) {
		f->has_ip = 1;
		f->ip_v6 = ip.v6;
		memcpy(f->ip, ip.addr, 16);
	}
	/* hosts compare case-insensitively and without the port
	 * (Istio CVE-2021-39155) */
	if ((needs & FACT_HOST) && req->host.len) {
		size_t hl = req->host.len, end = hl;
		const char *h = req->host.p;

		if (h[0] == '[') {
			const char *rb = memchr(h, ']', hl);

			end = rb ? (size_t)(rb - h) + 1 : hl;
		} else {
			const char *colon = memchr(h, ':', hl);

			if (colon)
				end = (size_t)(colon - h);
		}
		f->host = h; /* any length: a long Host must not slip past a DENY */
		f->host_len = end;
	}
}

static void why_set(char *why, size_t whysz, const char *what)
{
	if (why)
		snprintf(why, whysz, "%s", what);
}

/* A positive and a negative field on one value. 1 holds, 0 fails. */
static int field(const struct strs *pos, const struct strs *neg, const char *s, size_t len)
{
	if (pos->n && !strs_match(pos, s, len))
		return 0;
	if (neg->n && strs_match(neg, s, len))
		return 0;
	return 1;
}

static int source_match(const struct source *src, enum pol_action action, const struct facts *f,
			char *why, size_t whysz)
{
	if (!field(&src->principals, &src->not_principals, f->principal, f->principal_len)) {
		why_set(why, whysz, "the caller's principal does not match principals/notPrincipals");
		return 0;
	}
	if (!field(&src->namespaces, &src->not_namespaces, f->ns, f->ns_len)) {
		why_set(why, whysz, "the caller's namespace does not match namespaces/notNamespaces");
		return 0;
	}
	if ((src->ips.n && !(f->has_ip && cidrs_match(&src->ips, f->ip, f->ip_v6))) ||
	    (src->not_ips.n && f->has_ip && cidrs_match(&src->not_ips, f->ip, f->ip_v6))) {
		why_set(why, whysz, "the source address does not match ipBlocks/notIpBlocks");
		return 0;
	}
	if (src->req_principals.n || src->not_req_principals.n) {
		if (!f->req->has_http) {
			if (action != ACT_DENY) {
				why_set(why, whysz, "requestPrincipals needs HTTP; this is a connection");
				return 0;
			}
		} else if (!field(&src->req_principals, &src->not_req_principals,
				  f->req->auth_principal.p, f->req->auth_principal.len)) {
			why_set(why, whysz, "the end user's principal does not match requestPrincipals/notRequestPrincipals");
			return 0;
		}
	}
	return 1;
}

static int operation_match(const struct operation *op, enum pol_action action,
			   const struct facts *f, char *why, size_t whysz)
{
	const zt_policy_request *q = f->req;

	if ((op->ports.n && !ports_match(&op->ports, q->dest_port)) ||
	    (op->not_ports.n && ports_match(&op->not_ports, q->dest_port))) {
		why_set(why, whysz, "the destination port does not match ports/notPorts");
		return 0;
	}
	if (op->hosts.n || op->not_hosts.n || op->methods.n || op->not_methods.n ||
	    op->paths.n || op->not_paths.n) {
		if (!q->has_http) {
			if (action == ACT_DENY)
				return 1; /* HTTP-only fields ignored in a DENY */
			why_set(why, whysz, "the operation needs HTTP; this is a connection");
			return 0;
		}
		if ((op->hosts.n && !strs_match_ci(&op->hosts, f->host, f->host_len)) ||
		    (op->not_hosts.n && strs_match_ci(&op->not_hosts, f->host, f->host_len))) {
			why_set(why, whysz, "the host does not match hosts/notHosts");
			return 0;
		}
		if (!field(&op->methods, &op->not_methods, q->method.p, q->method.len)) {
			why_set(why, whysz, "the method does not match methods/notMethods");
			return 0;
		}
		if (!field(&op->paths, &op->not_paths, q->path.p, q->path.len)) {
			why_set(why, whysz, "the path does not match paths/notPaths");
			return 0;
		}
	}
	return 1;
}

static json_t *claim_at(json_t *claims, const struct condition *c)
{
	json_t *v = claims;

	for (uint32_t i = 0; v && i < c->nclaim; i++)
		v = json_is_object(v) ? json_object_get(v, c->claim[i]) : NULL;
	return v;
}

/* values/notValues over several instances of an attribute. `all` asks every
 * instance to satisfy values (fail closed for ALLOW on repeated headers);
 * otherwise one instance is enough (DENY). */
struct inst {
	const char *s;
	size_t len;
};

static int multi_match(const struct condition *c, const struct inst *v, size_t n, int all)
{
	size_t hits = 0, neg_hits = 0;

	for (size_t i = 0; i < n; i++) {
		hits += strs_match(&c->values, v[i].s, v[i].len);
		neg_hits += strs_match(&c->not_values, v[i].s, v[i].len);
	}
	if (c->values.n) {
		if (n == 0 || hits == 0 || (all && hits != n))
			return 0;
	}
	if (c->not_values.n) {
		/* ALLOW: no instance may match notValues; DENY: the condition
		 * holds as soon as one instance is outside them (or there is none) */
		if (all ? neg_hits != 0 : (n != 0 && neg_hits == n))
			return 0;
	}
	return 1;
}

#define MAX_INST 64

static int condition_match(const struct condition *c, enum pol_action action,
			   const struct facts *f)
{
	const zt_policy_request *q = f->req;
	struct inst v[MAX_INST];
	size_t n = 0;
	int http_only = c->key <= K_HEADER;

	if (http_only && !q->has_http)
		return action == ACT_DENY;
	switch (c->key) {
	case K_SOURCE_IP:
		if (c->ipv.n && !(f->has_ip && cidrs_match(&c->ipv, f->ip, f->ip_v6)))
			return 0;
		return !(c->not_ipv.n && f->has_ip && cidrs_match(&c->not_ipv, f->ip, f->ip_v6));
	case K_DEST_PORT:
		if (c->portv.n && !ports_match(&c->portv, q->dest_port))
			return 0;
		return !(c->not_portv.n && ports_match(&c->not_portv, q->dest_port));
	case K_SOURCE_PRINCIPAL:
		return field(&c->values, &c->not_values, f->principal, f->principal_len);
	case K_SOURCE_NS:
		return field(&c->values, &c->not_values, f->ns, f->ns_len);
	case K_SNI:
		return field(&c->values, &c->not_values, q->sni.p, q->sni.len);
	case K_PRESENTER:
		return field(&c->values, &c->not_values, q->auth_presenter.p, q->auth_presenter.len);
	case K_AUTH_PRINCIPAL:
		return field(&c->values, &c->not_values, q->auth_principal.p, q->auth_principal.len);
	case K_AUDIENCES:
		for (size_t i = 0; i < q->naudiences && n < MAX_INST; i++)
			v[n++] = (struct inst){ q->audiences[i].p, q->audiences[i].len };
		return multi_match(c, v, n, 0); /* a token is for each of its audiences */
	case K_CLAIM: {
		json_t *cv = claim_at(q->claims, c), *el;
		size_t i;

		if (json_is_string(cv)) {
			v[n++] = (struct inst){ json_string_value(cv), json_string_length(cv) };
		} else if (json_is_array(cv)) {
			json_array_foreach(cv, i, el)
				if (json_is_string(el) && n < MAX_INST)
					v[n++] = (struct inst){ json_string_value(el), json_string_length(el) };
		}
		return multi_match(c, v, n, 0); /* signed by the issuer: any element */
	}
	case K_HEADER:
		for (size_t i = 0; i < q->nheaders; i++) {
			const zt_header *h = &q->headers[i];

			if (h->name.len != c->header_len ||
			    strncasecmp(h->name.p, c->header, c->header_len) != 0)
				continue;
			if (n == MAX_INST) /* too many copies to judge: fail closed */
				return action == ACT_DENY;
			v[n++] = (struct inst){ h->value.p, h->value.len };
		}
		/* never judge a repeated header by one copy or by its joined value */
		return multi_match(c, v, n, action != ACT_DENY);
	}
	return 0;
}

int rule_match(const struct rule *r, enum pol_action action, const struct facts *f, char *why,
	       size_t whysz)
{
	uint32_t i;

	if (r->nfrom) {
		for (i = 0; i < r->nfrom; i++)
			if (source_match(&r->from[i], action, f, why, whysz))
				break;
		if (i == r->nfrom)
			return 0;
	}
	if (r->nto) {
		for (i = 0; i < r->nto; i++)
			if (operation_match(&r->to[i], action, f, why, whysz))
				break;
		if (i == r->nto)
			return 0;
	}
	for (i = 0; i < r->nwhen; i++) {
		if (!condition_match(&r->when[i], action, f)) {
			if (why)
				snprintf(why, whysz, "the condition on %s does not hold", r->when[i].key_text);
			return 0;
		}
	}
	return 1;
}
