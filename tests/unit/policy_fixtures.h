/*
 * tests/unit/policy_fixtures.h: what the policy engine's unit tests share:
 * an organization, policy and request builders, and decision checks.
 * Included by test_policy.c, test_policy_modes.c and test_policy_load.c.
 */
#ifndef ZT_POLICY_FIXTURES_H
#define ZT_POLICY_FIXTURES_H

#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "policy/policy.h"

/* ---- fixtures ------------------------------------------------------------ */

/* 13 lines; tests that check line numbers count from here */
#define ORG_YAML                                               \
	"apiVersion: zt.dev/v1\n"                              \
	"kind: Organization\n"                                 \
	"metadata: {name: acme}\n"                             \
	"spec:\n"                                              \
	"  trustDomain: example.org\n"                         \
	"  tenants:\n"                                         \
	"    - name: payments\n"                               \
	"      workspaces:\n"                                  \
	"        - {name: pay, services: [api, ledger, web]}\n" \
	"        - {name: pay2, services: [api, ledger]}\n"    \
	"    - name: retail\n"                                 \
	"      workspaces:\n"                                  \
	"        - {name: shop, services: [cart, api]}\n"

/* a zt AuthorizationPolicy document; body holds the lines under spec: */
#define POL(name, scope, body)                                       \
	"---\napiVersion: zt.dev/v1\nkind: AuthorizationPolicy\n"    \
	"metadata: {name: " name ", scope: " scope "}\nspec:\n" body

#define POL_DRY(name, scope, body)                                            \
	"---\napiVersion: zt.dev/v1\nkind: AuthorizationPolicy\n"             \
	"metadata: {name: " name ", scope: " scope ", annotations: {zt.dev/dry-run: 'true'}}\n" \
	"spec:\n" body

#define ISTIO(api, name, ns, body)                                          \
	"---\napiVersion: security.istio.io/" api "\nkind: AuthorizationPolicy\n" \
	"metadata: {name: " name ", namespace: " ns "}\nspec:\n" body

#define LEDGER "spiffe://example.org/ns/pay/sa/ledger"

/* requests are written with ' for " (see rq_parse) */
#define FROM(id) "'source': {'principal': 'spiffe://example.org/ns/" id "'}"
#define TO(id) "'destination': {'service': 'spiffe://example.org/ns/" id "'}"
#define GET(path) "'request': {'method': 'GET', 'path': '" path "'}"
#define REQ(method, path) "'request': {'method': '" method "', 'path': '" path "'}"

static const char *effect_name(int eff)
{
	return eff == ZT_POLICY_ALLOW ? "ALLOW" : "DENY";
}

static inline void dump_diags(const zt_policy_src *src)
{
	for (size_t i = 0; i < zt_policy_src_ndiags(src); i++) {
		const zt_diag *d = zt_policy_src_diag(src, i);

		print_message("  %s:%d:%d: %s: %s\n", d->file, d->line, d->column,
			      d->level == ZT_DIAG_ERROR ? "error" : "warning", d->msg);
	}
}

/* Loads text as "t.yaml" and checks the set. */
static inline zt_policy_src *load_opts(const char *text, const char *root_ns)
{
	zt_policy_load_opts o = { .istio_root_ns = root_ns };
	zt_policy_src *src = zt_policy_src_new(&o);

	assert_non_null(src);
	zt_policy_src_add_text(src, "t.yaml", text, strlen(text));
	zt_policy_src_check(src);
	return src;
}

static inline zt_policy_src *load(const char *text)
{
	return load_opts(text, NULL);
}

/*
 * Compiles a set that must have no errors. The source set is freed at
 * once: a snapshot must live on its own.
 */
/*
 * With g_filler set (the *_big variants of the tests), every set compiled
 * gets NFILLER organization-wide policies that never match: 40 ALLOWs naming
 * one exact caller each and 4 DENYs. Decisions must not change, while they
 * are taken along other paths (many policies per service, the caller index).
 */
#define NFILLER 44
static int g_filler;

static inline int setup_big(void **state)
{
	(void)state;
	g_filler = 1;
	return 0;
}

static inline int teardown_big(void **state)
{
	(void)state;
	g_filler = 0;
	return 0;
}

static inline char *with_filler(const char *text)
{
	size_t len = strlen(text), cap = len + NFILLER * 256;
	char *t = malloc(cap);

	assert_non_null(t);
	memcpy(t, text, len + 1);
	for (int i = 0; i < NFILLER; i++)
		len += (size_t)snprintf(t + len, cap - len,
					"---\napiVersion: zt.dev/v1\nkind: AuthorizationPolicy\n"
					"metadata: {name: filler-%d, scope: acme}\n"
					"spec: {action: %s, rules: [{from: [{source: {principals: ['example.org/ns/none/sa/f%d']}}]}]}\n",
					i, i % 11 == 0 ? "DENY" : "ALLOW", i);
	return t;
}

static inline zt_policy_snapshot *compile_opts(int line, const char *text, const char *root_ns)
{
	char *big = g_filler ? with_filler(text) : NULL;
	zt_policy_src *src = load_opts(big ? big : text, root_ns);
	zt_policy_snapshot *s;
	zt_err e;

	free(big);

	if (zt_policy_src_nerrors(src) != 0) {
		dump_diags(src);
		fail_msg("line %d: the policy set has %zu error(s)", line, zt_policy_src_nerrors(src));
	}
	s = zt_policy_compile(src, &e);
	if (!s)
		fail_msg("line %d: compile failed: %s", line, e.msg);
	zt_policy_src_free(src);
	return s;
}

#define COMPILE(text) compile_opts(__LINE__, text, NULL)

/* A decoded request and everything it points into. */
struct rq {
	json_t *doc;
	zt_policy_request req;
	zt_header headers[64];
	zt_str auds[16];
	char path[ZT_PATH_MAX + 1];
};

/*
 * Parses a request written with ' for " (none of the tests needs a '
 * inside a value). Without a destination service, the request is for
 * pay/ledger on port 8443.
 */
static inline int rq_parse(struct rq *r, const char *sq, zt_err *e)
{
	char *text = strdup(sq);
	json_t *dst;

	assert_non_null(text);
	for (char *c = text; *c; c++)
		if (*c == '\'')
			*c = '"';
	r->doc = zt_json_parse(text, strlen(text), e);
	free(text);
	if (!r->doc)
		fail_msg("request does not parse: %s: %s", sq, e->msg);
	dst = json_object_get(r->doc, "destination");
	if (!dst) {
		dst = json_object();
		json_object_set_new(dst, "port", json_integer(8443));
		json_object_set_new(r->doc, "destination", dst);
	}
	if (!json_object_get(dst, "service"))
		json_object_set_new(dst, "service", json_string(LEDGER));
	return zt_policy_request_from_json(r->doc, &r->req, r->headers, 64, r->auds, 16, r->path,
					   sizeof r->path, e);
}

static inline void rq_free(struct rq *r)
{
	json_decref(r->doc);
}

static inline void decide_text(int line, const zt_policy_snapshot *s, const char *req,
			zt_policy_decision *d)
{
	struct rq *r = calloc(1, sizeof *r);
	zt_err e;

	assert_non_null(r);
	if (rq_parse(r, req, &e) != 0)
		fail_msg("line %d: request rejected: %s: %s", line, req, e.msg);
	memset(d, 0x5a, sizeof *d); /* nothing may be left over */
	zt_policy_decide(s, &r->req, d);
	rq_free(r);
	free(r);
}

static inline int same(const char *a, const char *b)
{
	return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

/* The decision, and the deciding policy and rule (policy NULL: none, rule
 * -1); 1 when it is so, else 0 after printing what differs. */
static inline int check_at(int line, const zt_policy_snapshot *s, const char *req, int eff,
		    const char *pol, int rule)
{
	zt_policy_decision d;

	decide_text(line, s, req, &d);
	if (d.effect == (enum zt_policy_effect)eff && same(d.by.policy, pol) &&
	    d.by.rule == (pol ? rule : -1))
		return 1;
	print_error("line %d: request %s\n  expected %s by %s rule %d\n  got      %s by %s rule %d (%s)\n",
		    line, req, effect_name(eff), pol ? pol : "(none)", pol ? rule : -1,
		    effect_name(d.effect), d.by.policy ? d.by.policy : "(none)", d.by.rule,
		    d.reason ? d.reason : "no reason");
	return 0;
}

static inline void expect_at(int line, const zt_policy_snapshot *s, const char *req, int eff,
		      const char *pol, int rule)
{
	if (!check_at(line, s, req, eff, pol, rule))
		fail_msg("line %d: unexpected decision", line);
}

#define EXPECT(s, req, eff, pol, rule) expect_at(__LINE__, s, req, eff, pol, rule)
#define ALLOWED(s, req, pol, rule) expect_at(__LINE__, s, req, ZT_POLICY_ALLOW, pol, rule)
#define DENIED(s, req, pol, rule) expect_at(__LINE__, s, req, ZT_POLICY_DENY, pol, rule)
#define DEFAULT_DENY(s, req) expect_at(__LINE__, s, req, ZT_POLICY_DENY, NULL, -1)

/* the same test again with NFILLER policies more per service */
#define BIG(f) { #f "_big", f, setup_big, teardown_big, NULL }

#endif
