/* Unit tests: the policy engine (policy/load.c, match.c, snapshot.c, request.c). */
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

static void dump_diags(const zt_policy_src *src)
{
	for (size_t i = 0; i < zt_policy_src_ndiags(src); i++) {
		const zt_diag *d = zt_policy_src_diag(src, i);

		print_message("  %s:%d:%d: %s: %s\n", d->file, d->line, d->column,
			      d->level == ZT_DIAG_ERROR ? "error" : "warning", d->msg);
	}
}

/* Loads text as "t.yaml" and checks the set. */
static zt_policy_src *load_opts(const char *text, const char *root_ns)
{
	zt_policy_load_opts o = { .istio_root_ns = root_ns };
	zt_policy_src *src = zt_policy_src_new(&o);

	assert_non_null(src);
	zt_policy_src_add_text(src, "t.yaml", text, strlen(text));
	zt_policy_src_check(src);
	return src;
}

static zt_policy_src *load(const char *text)
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

static int setup_big(void **state)
{
	(void)state;
	g_filler = 1;
	return 0;
}

static int teardown_big(void **state)
{
	(void)state;
	g_filler = 0;
	return 0;
}

static char *with_filler(const char *text)
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

static zt_policy_snapshot *compile_opts(int line, const char *text, const char *root_ns)
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
static int rq_parse(struct rq *r, const char *sq, zt_err *e)
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

static void rq_free(struct rq *r)
{
	json_decref(r->doc);
}

static void decide_text(int line, const zt_policy_snapshot *s, const char *req,
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

static int same(const char *a, const char *b)
{
	return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

/* The decision, and the deciding policy and rule (policy NULL: none, rule
 * -1); 1 when it is so, else 0 after printing what differs. */
static int check_at(int line, const zt_policy_snapshot *s, const char *req, int eff,
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

static void expect_at(int line, const zt_policy_snapshot *s, const char *req, int eff,
		      const char *pol, int rule)
{
	if (!check_at(line, s, req, eff, pol, rule))
		fail_msg("line %d: unexpected decision", line);
}

#define EXPECT(s, req, eff, pol, rule) expect_at(__LINE__, s, req, eff, pol, rule)
#define ALLOWED(s, req, pol, rule) expect_at(__LINE__, s, req, ZT_POLICY_ALLOW, pol, rule)
#define DENIED(s, req, pol, rule) expect_at(__LINE__, s, req, ZT_POLICY_DENY, pol, rule)
#define DEFAULT_DENY(s, req) expect_at(__LINE__, s, req, ZT_POLICY_DENY, NULL, -1)

/* ---- 1. every field and match kind --------------------------------------- */

/*
 * One case: the rules of a policy on pay/ledger, a request, and whether
 * the policy matches it (and by which rule). Each table runs twice: the
 * rules as an ALLOW policy (match: allowed by it, else denied by default)
 * and as a DENY policy beside an allow-all (match: denied by it, else
 * allowed by the allow-all). For HTTP requests with single values the two
 * must agree.
 */
struct mcase {
	int line;
	const char *rules;
	const char *req;
	int match;
	int rule;
};

#define M(rules, req) { __LINE__, rules, req, 1, 0 }
#define MR(rules, req, r) { __LINE__, rules, req, 1, r }
#define NO(rules, req) { __LINE__, rules, req, 0, 0 }

#define P_API "'example.org/ns/pay/sa/api'"

static const struct mcase field_cases[] = {
	/* principals: exact, prefix, suffix, presence; values ORed */
	M("[{from: [{source: {principals: [" P_API "]}}]}]", "{" FROM("pay/sa/api") ", " GET("/") "}"),
	NO("[{from: [{source: {principals: [" P_API "]}}]}]", "{" FROM("pay/sa/web") ", " GET("/") "}"),
	NO("[{from: [{source: {principals: [" P_API "]}}]}]", "{" FROM("pay/sa/apix") ", " GET("/") "}"),
	NO("[{from: [{source: {principals: [" P_API "]}}]}]", "{" GET("/") "}"),
	M("[{from: [{source: {principals: ['example.org/ns/web', " P_API "]}}]}]",
	  "{" FROM("pay/sa/api") ", " GET("/") "}"),
	M("[{from: [{source: {principals: ['example.org/ns/pay/*']}}]}]", "{" FROM("pay/sa/web") ", " GET("/") "}"),
	NO("[{from: [{source: {principals: ['example.org/ns/pay/*']}}]}]", "{" FROM("shop/sa/cart") ", " GET("/") "}"),
	NO("[{from: [{source: {principals: ['example.org/ns/pay/*']}}]}]", "{" FROM("pay2/sa/api") ", " GET("/") "}"),
	M("[{from: [{source: {principals: ['*/sa/api']}}]}]", "{" FROM("shop/sa/api") ", " GET("/") "}"),
	NO("[{from: [{source: {principals: ['*/sa/api']}}]}]", "{" FROM("shop/sa/apix") ", " GET("/") "}"),
	M("[{from: [{source: {principals: ['*']}}]}]", "{" FROM("shop/sa/cart") ", " GET("/") "}"),
	NO("[{from: [{source: {principals: ['*']}}]}]", "{" GET("/") "}"),
	/* notPrincipals: a missing principal is not in the list */
	NO("[{from: [{source: {notPrincipals: [" P_API "]}}]}]", "{" FROM("pay/sa/api") ", " GET("/") "}"),
	M("[{from: [{source: {notPrincipals: [" P_API "]}}]}]", "{" FROM("pay/sa/web") ", " GET("/") "}"),
	M("[{from: [{source: {notPrincipals: [" P_API "]}}]}]", "{" GET("/") "}"),
	NO("[{from: [{source: {notPrincipals: ['*']}}]}]", "{" FROM("pay/sa/web") ", " GET("/") "}"),
	M("[{from: [{source: {notPrincipals: ['*']}}]}]", "{" GET("/") "}"),
	NO("[{from: [{source: {notPrincipals: ['example.org/ns/shop/*']}}]}]", "{" FROM("shop/sa/cart") ", " GET("/") "}"),

	/* requestPrincipals / notRequestPrincipals: the end user */
	M("[{from: [{source: {requestPrincipals: ['https://idp.example.com/u1']}}]}]",
	  "{'request': {'method': 'GET', 'path': '/', 'auth': {'principal': 'https://idp.example.com/u1'}}}"),
	NO("[{from: [{source: {requestPrincipals: ['https://idp.example.com/u1']}}]}]",
	   "{'request': {'method': 'GET', 'path': '/', 'auth': {'principal': 'https://idp.example.com/u2'}}}"),
	M("[{from: [{source: {requestPrincipals: ['https://idp.example.com/*']}}]}]",
	  "{'request': {'method': 'GET', 'path': '/', 'auth': {'principal': 'https://idp.example.com/u2'}}}"),
	NO("[{from: [{source: {requestPrincipals: ['https://idp.example.com/*']}}]}]",
	   "{'request': {'method': 'GET', 'path': '/', 'auth': {'principal': 'https://evil.example/u2'}}}"),
	M("[{from: [{source: {requestPrincipals: ['*/u1']}}]}]",
	  "{'request': {'method': 'GET', 'path': '/', 'auth': {'principal': 'https://other/u1'}}}"),
	NO("[{from: [{source: {requestPrincipals: ['*']}}]}]", "{" GET("/") "}"),
	M("[{from: [{source: {requestPrincipals: ['*']}}]}]",
	  "{'request': {'method': 'GET', 'path': '/', 'auth': {'principal': 'iss/sub'}}}"),
	/* the caller's SPIFFE ID is not the end user */
	NO("[{from: [{source: {requestPrincipals: ['*']}}]}]", "{" FROM("pay/sa/api") ", " GET("/") "}"),
	M("[{from: [{source: {notRequestPrincipals: ['*']}}]}]", "{" GET("/") "}"),
	NO("[{from: [{source: {notRequestPrincipals: ['*']}}]}]",
	   "{'request': {'method': 'GET', 'path': '/', 'auth': {'principal': 'iss/sub'}}}"),

	/* namespaces / notNamespaces (from the SPIFFE ID) */
	M("[{from: [{source: {namespaces: ['pay']}}]}]", "{" FROM("pay/sa/api") ", " GET("/") "}"),
	NO("[{from: [{source: {namespaces: ['pay']}}]}]", "{" FROM("pay2/sa/api") ", " GET("/") "}"),
	NO("[{from: [{source: {namespaces: ['pay']}}]}]", "{" FROM("shop/sa/cart") ", " GET("/") "}"),
	NO("[{from: [{source: {namespaces: ['pay']}}]}]", "{" GET("/") "}"),
	M("[{from: [{source: {namespaces: ['pay*']}}]}]", "{" FROM("pay2/sa/api") ", " GET("/") "}"),
	M("[{from: [{source: {namespaces: ['*op']}}]}]", "{" FROM("shop/sa/api") ", " GET("/") "}"),
	M("[{from: [{source: {namespaces: ['shop', 'pay']}}]}]", "{" FROM("pay/sa/api") ", " GET("/") "}"),
	NO("[{from: [{source: {notNamespaces: ['shop']}}]}]", "{" FROM("shop/sa/cart") ", " GET("/") "}"),
	M("[{from: [{source: {notNamespaces: ['shop']}}]}]", "{" FROM("pay/sa/api") ", " GET("/") "}"),

	/* ipBlocks / notIpBlocks: CIDR, single address, IPv6 */
	M("[{from: [{source: {ipBlocks: ['10.0.0.0/8']}}]}]", "{'source': {'ip': '10.1.2.3'}, " GET("/") "}"),
	NO("[{from: [{source: {ipBlocks: ['10.0.0.0/8']}}]}]", "{'source': {'ip': '11.0.0.1'}, " GET("/") "}"),
	NO("[{from: [{source: {ipBlocks: ['10.0.0.0/8']}}]}]", "{" GET("/") "}"),
	M("[{from: [{source: {ipBlocks: ['10.1.2.0/23']}}]}]", "{'source': {'ip': '10.1.3.9'}, " GET("/") "}"),
	NO("[{from: [{source: {ipBlocks: ['10.1.2.0/23']}}]}]", "{'source': {'ip': '10.1.4.1'}, " GET("/") "}"),
	M("[{from: [{source: {ipBlocks: ['192.168.1.5']}}]}]", "{'source': {'ip': '192.168.1.5'}, " GET("/") "}"),
	NO("[{from: [{source: {ipBlocks: ['192.168.1.5']}}]}]", "{'source': {'ip': '192.168.1.4'}, " GET("/") "}"),
	M("[{from: [{source: {ipBlocks: ['192.168.1.5', '10.0.0.0/8']}}]}]", "{'source': {'ip': '10.9.9.9'}, " GET("/") "}"),
	M("[{from: [{source: {ipBlocks: ['2001:db8::/32']}}]}]", "{'source': {'ip': '2001:db8:1::7'}, " GET("/") "}"),
	NO("[{from: [{source: {ipBlocks: ['2001:db8::/32']}}]}]", "{'source': {'ip': '2001:db9::7'}, " GET("/") "}"),
	M("[{from: [{source: {ipBlocks: ['::1']}}]}]", "{'source': {'ip': '::1'}, " GET("/") "}"),
	NO("[{from: [{source: {ipBlocks: ['10.0.0.0/8']}}]}]", "{'source': {'ip': '2001:db8::1'}, " GET("/") "}"),
	M("[{from: [{source: {ipBlocks: ['0.0.0.0/0']}}]}]", "{'source': {'ip': '203.0.113.9'}, " GET("/") "}"),
	NO("[{from: [{source: {notIpBlocks: ['10.0.0.0/8']}}]}]", "{'source': {'ip': '10.1.2.3'}, " GET("/") "}"),
	M("[{from: [{source: {notIpBlocks: ['10.0.0.0/8']}}]}]", "{'source': {'ip': '172.16.0.1'}, " GET("/") "}"),

	/* hosts / notHosts: case-insensitive, the request's port ignored */
	M("[{to: [{operation: {hosts: ['ledger.example.com']}}]}]",
	  "{'request': {'method': 'GET', 'path': '/', 'host': 'Ledger.Example.COM'}}"),
	M("[{to: [{operation: {hosts: ['ledger.example.com']}}]}]",
	  "{'request': {'method': 'GET', 'path': '/', 'host': 'ledger.example.com:8443'}}"),
	M("[{to: [{operation: {hosts: ['LEDGER.example.com']}}]}]",
	  "{'request': {'method': 'GET', 'path': '/', 'host': 'ledger.example.com'}}"),
	NO("[{to: [{operation: {hosts: ['ledger.example.com']}}]}]",
	   "{'request': {'method': 'GET', 'path': '/', 'host': 'ledger.example.org'}}"),
	NO("[{to: [{operation: {hosts: ['ledger.example.com']}}]}]", "{" GET("/") "}"),
	M("[{to: [{operation: {hosts: ['*.example.com']}}]}]",
	  "{'request': {'method': 'GET', 'path': '/', 'host': 'a.b.EXAMPLE.com:80'}}"),
	NO("[{to: [{operation: {hosts: ['*.example.com']}}]}]",
	   "{'request': {'method': 'GET', 'path': '/', 'host': 'example.com'}}"),
	M("[{to: [{operation: {hosts: ['ledger*']}}]}]",
	  "{'request': {'method': 'GET', 'path': '/', 'host': 'ledger.internal'}}"),
	M("[{to: [{operation: {hosts: ['ledger*']}}]}]",
	  "{'request': {'method': 'GET', 'path': '/', 'host': 'LEDGER.Internal:80'}}"),
	NO("[{to: [{operation: {hosts: ['ledger*']}}]}]",
	  "{'request': {'method': 'GET', 'path': '/', 'host': 'xledger'}}"),
	M("[{to: [{operation: {hosts: ['[::1]']}}]}]",
	  "{'request': {'method': 'GET', 'path': '/', 'host': '[::1]:80'}}"),
	NO("[{to: [{operation: {hosts: ['[::1]']}}]}]",
	   "{'request': {'method': 'GET', 'path': '/', 'host': '[::2]:80'}}"),
	NO("[{to: [{operation: {notHosts: ['admin.example.com']}}]}]",
	   "{'request': {'method': 'GET', 'path': '/', 'host': 'ADMIN.example.com:443'}}"),
	M("[{to: [{operation: {notHosts: ['admin.example.com']}}]}]",
	  "{'request': {'method': 'GET', 'path': '/', 'host': 'www.example.com'}}"),

	/* ports / notPorts */
	M("[{to: [{operation: {ports: [8443]}}]}]", "{" GET("/") "}"),
	M("[{to: [{operation: {ports: ['8443']}}]}]", "{" GET("/") "}"),
	M("[{to: [{operation: {ports: [80, 8443]}}]}]", "{" GET("/") "}"),
	NO("[{to: [{operation: {ports: [8443]}}]}]", "{'destination': {'port': 80}, " GET("/") "}"),
	NO("[{to: [{operation: {ports: [8443]}}]}]", "{" TO("pay/sa/ledger") ", " GET("/") "}"),
	NO("[{to: [{operation: {notPorts: [8443]}}]}]", "{" GET("/") "}"),
	M("[{to: [{operation: {notPorts: [8443]}}]}]", "{'destination': {'port': 80}, " GET("/") "}"),

	/* methods / notMethods: case-sensitive */
	M("[{to: [{operation: {methods: ['GET', 'POST']}}]}]", "{" REQ("POST", "/") "}"),
	NO("[{to: [{operation: {methods: ['GET', 'POST']}}]}]", "{" REQ("DELETE", "/") "}"),
	NO("[{to: [{operation: {methods: ['GET']}}]}]", "{" REQ("get", "/") "}"),
	NO("[{to: [{operation: {methods: ['GET']}}]}]", "{'request': {'path': '/'}}"),
	M("[{to: [{operation: {methods: ['P*']}}]}]", "{" REQ("PATCH", "/") "}"),
	NO("[{to: [{operation: {notMethods: ['DELETE']}}]}]", "{" REQ("DELETE", "/") "}"),
	M("[{to: [{operation: {notMethods: ['DELETE']}}]}]", "{" REQ("GET", "/") "}"),

	/* paths / notPaths: exact, prefix, suffix, presence; requests normalized */
	M("[{to: [{operation: {paths: ['/entries']}}]}]", "{" GET("/entries") "}"),
	NO("[{to: [{operation: {paths: ['/entries']}}]}]", "{" GET("/entries/") "}"),
	NO("[{to: [{operation: {paths: ['/entries']}}]}]", "{" GET("/ENTRIES") "}"),
	NO("[{to: [{operation: {paths: ['/entries']}}]}]", "{" GET("/entries.json") "}"),
	M("[{to: [{operation: {paths: ['/entries']}}]}]", "{" GET("/entries?limit=5") "}"),
	M("[{to: [{operation: {paths: ['/entries']}}]}]", "{" GET("/a/../entries") "}"),
	M("[{to: [{operation: {paths: ['/entries']}}]}]", "{" GET("//entries") "}"),
	M("[{to: [{operation: {paths: ['/entries']}}]}]", "{" GET("/./entries") "}"),
	M("[{to: [{operation: {paths: ['/entries']}}]}]", "{" GET("/%65ntries") "}"),
	M("[{to: [{operation: {paths: ['/entries']}}]}]", "{" GET("/x/%2e%2e/entries") "}"),
	NO("[{to: [{operation: {paths: ['/entries']}}]}]", "{" GET("/entries/x/%2e%2e") "}"), /* "/entries/" */
	M("[{to: [{operation: {paths: ['/api/*']}}]}]", "{" GET("/api/v1/x") "}"),
	NO("[{to: [{operation: {paths: ['/api/*']}}]}]", "{" GET("/apix") "}"),
	NO("[{to: [{operation: {paths: ['/api/*']}}]}]", "{" GET("/api/../admin") "}"),
	M("[{to: [{operation: {paths: ['*.png']}}]}]", "{" GET("/img/a.png") "}"),
	NO("[{to: [{operation: {paths: ['*.png']}}]}]", "{" GET("/img/a.png.txt") "}"),
	M("[{to: [{operation: {paths: ['*']}}]}]", "{" GET("/anything") "}"),
	M("[{to: [{operation: {paths: ['/a', '/entries']}}]}]", "{" GET("/entries") "}"),
	M("[{to: [{operation: {notPaths: ['/admin*']}}]}]", "{" GET("/public") "}"),
	NO("[{to: [{operation: {notPaths: ['/admin*']}}]}]", "{" GET("/x/../admin/y") "}"),
	NO("[{to: [{operation: {notPaths: ['/admin*']}}]}]", "{" GET("/./admin") "}"),
	NO("[{to: [{operation: {notPaths: ['/admin*']}}]}]", "{" GET("/%61dmin") "}"),

	/* when: request.auth.claims[x], list claims, nested claims */
	M("[{when: [{key: 'request.auth.claims[role]', values: ['teller']}]}]",
	  "{'request': {'method': 'GET', 'path': '/', 'auth': {'claims': {'role': 'teller'}}}}"),
	NO("[{when: [{key: 'request.auth.claims[role]', values: ['teller']}]}]",
	   "{'request': {'method': 'GET', 'path': '/', 'auth': {'claims': {'role': 'admin'}}}}"),
	NO("[{when: [{key: 'request.auth.claims[role]', values: ['teller']}]}]",
	   "{'request': {'method': 'GET', 'path': '/', 'auth': {'claims': {'other': 'teller'}}}}"),
	NO("[{when: [{key: 'request.auth.claims[role]', values: ['teller']}]}]", "{" GET("/") "}"),
	M("[{when: [{key: 'request.auth.claims[role]', values: ['admin', 'tell*']}]}]",
	  "{'request': {'method': 'GET', 'path': '/', 'auth': {'claims': {'role': 'teller'}}}}"),
	M("[{when: [{key: 'request.auth.claims[groups]', values: ['ops']}]}]",
	  "{'request': {'method': 'GET', 'path': '/', 'auth': {'claims': {'groups': ['dev', 'ops']}}}}"),
	NO("[{when: [{key: 'request.auth.claims[groups]', values: ['ops']}]}]",
	   "{'request': {'method': 'GET', 'path': '/', 'auth': {'claims': {'groups': ['dev', 'qa']}}}}"),
	M("[{when: [{key: 'request.auth.claims[a][b]', values: ['c']}]}]",
	  "{'request': {'method': 'GET', 'path': '/', 'auth': {'claims': {'a': {'b': 'c'}}}}}"),
	NO("[{when: [{key: 'request.auth.claims[a][b]', values: ['c']}]}]",
	   "{'request': {'method': 'GET', 'path': '/', 'auth': {'claims': {'a': {'b': 'd'}}}}}"),
	NO("[{when: [{key: 'request.auth.claims[a][b]', values: ['c']}]}]",
	   "{'request': {'method': 'GET', 'path': '/', 'auth': {'claims': {'a': 'c', 'b': 'c'}}}}"),
	NO("[{when: [{key: 'request.auth.claims[role]', notValues: ['admin']}]}]",
	   "{'request': {'method': 'GET', 'path': '/', 'auth': {'claims': {'role': 'admin'}}}}"),
	M("[{when: [{key: 'request.auth.claims[role]', notValues: ['admin']}]}]",
	  "{'request': {'method': 'GET', 'path': '/', 'auth': {'claims': {'role': 'teller'}}}}"),

	/* when: audiences, presenter, principal */
	M("[{when: [{key: 'request.auth.audiences', values: ['ledger']}]}]",
	  "{'request': {'method': 'GET', 'path': '/', 'auth': {'audiences': ['x', 'ledger']}}}"),
	NO("[{when: [{key: 'request.auth.audiences', values: ['ledger']}]}]",
	   "{'request': {'method': 'GET', 'path': '/', 'auth': {'audiences': ['x']}}}"),
	NO("[{when: [{key: 'request.auth.audiences', values: ['ledger']}]}]", "{" GET("/") "}"),
	M("[{when: [{key: 'request.auth.presenter', values: ['cli']}]}]",
	  "{'request': {'method': 'GET', 'path': '/', 'auth': {'presenter': 'cli'}}}"),
	NO("[{when: [{key: 'request.auth.presenter', values: ['cli']}]}]",
	   "{'request': {'method': 'GET', 'path': '/', 'auth': {'presenter': 'web'}}}"),
	NO("[{when: [{key: 'request.auth.presenter', notValues: ['cli']}]}]",
	   "{'request': {'method': 'GET', 'path': '/', 'auth': {'presenter': 'cli'}}}"),
	M("[{when: [{key: 'request.auth.principal', values: ['https://idp.example.com/*']}]}]",
	  "{'request': {'method': 'GET', 'path': '/', 'auth': {'principal': 'https://idp.example.com/u1'}}}"),
	NO("[{when: [{key: 'request.auth.principal', values: ['https://idp.example.com/*']}]}]",
	   "{'request': {'method': 'GET', 'path': '/', 'auth': {'principal': 'https://evil.example/u1'}}}"),

	/* when: request.headers[X], the name case-insensitive */
	M("[{when: [{key: 'request.headers[X-Tenant]', values: ['t1']}]}]",
	  "{'request': {'method': 'GET', 'path': '/', 'headers': {'x-tenant': 't1'}}}"),
	M("[{when: [{key: 'request.headers[x-tenant]', values: ['t1']}]}]",
	  "{'request': {'method': 'GET', 'path': '/', 'headers': {'X-TENANT': 't1'}}}"),
	NO("[{when: [{key: 'request.headers[x-tenant]', values: ['t1']}]}]",
	   "{'request': {'method': 'GET', 'path': '/', 'headers': {'x-tenant': 'T1'}}}"),
	NO("[{when: [{key: 'request.headers[x-tenant]', values: ['t1']}]}]",
	   "{'request': {'method': 'GET', 'path': '/', 'headers': {'x-tenant2': 't1'}}}"),
	NO("[{when: [{key: 'request.headers[x-tenant]', values: ['t1']}]}]", "{" GET("/") "}"),
	M("[{when: [{key: 'request.headers[x-tenant]', values: ['*']}]}]",
	  "{'request': {'method': 'GET', 'path': '/', 'headers': {'x-tenant': 'anything'}}}"),
	NO("[{when: [{key: 'request.headers[x-tenant]', notValues: ['bad']}]}]",
	   "{'request': {'method': 'GET', 'path': '/', 'headers': {'x-tenant': 'bad'}}}"),
	M("[{when: [{key: 'request.headers[x-tenant]', notValues: ['bad']}]}]",
	  "{'request': {'method': 'GET', 'path': '/', 'headers': {'x-tenant': 'good'}}}"),
	M("[{when: [{key: 'request.headers[x-tenant]', notValues: ['bad']}]}]", "{" GET("/") "}"),

	/* when: source.ip, source.principal, source.namespace */
	M("[{when: [{key: 'source.ip', values: ['10.0.0.0/8']}]}]", "{'source': {'ip': '10.1.2.3'}, " GET("/") "}"),
	NO("[{when: [{key: 'source.ip', values: ['10.0.0.0/8']}]}]", "{'source': {'ip': '192.0.2.1'}, " GET("/") "}"),
	NO("[{when: [{key: 'source.ip', notValues: ['10.0.0.0/8', '2001:db8::/32']}]}]",
	   "{'source': {'ip': '2001:db8::5'}, " GET("/") "}"),
	M("[{when: [{key: 'source.ip', notValues: ['10.0.0.0/8']}]}]", "{'source': {'ip': '192.0.2.1'}, " GET("/") "}"),
	M("[{when: [{key: 'source.principal', values: [" P_API "]}]}]", "{" FROM("pay/sa/api") ", " GET("/") "}"),
	NO("[{when: [{key: 'source.principal', values: [" P_API "]}]}]", "{" FROM("pay/sa/web") ", " GET("/") "}"),
	NO("[{when: [{key: 'source.principal', notValues: ['*/sa/api']}]}]", "{" FROM("shop/sa/api") ", " GET("/") "}"),
	M("[{when: [{key: 'source.namespace', values: ['shop']}]}]", "{" FROM("shop/sa/cart") ", " GET("/") "}"),
	NO("[{when: [{key: 'source.namespace', values: ['shop']}]}]", "{" FROM("pay/sa/api") ", " GET("/") "}"),
	NO("[{when: [{key: 'source.namespace', notValues: ['pay']}]}]", "{" FROM("pay/sa/api") ", " GET("/") "}"),

	/* when: destination.port, connection.sni */
	M("[{when: [{key: 'destination.port', values: ['8443']}]}]", "{" GET("/") "}"),
	NO("[{when: [{key: 'destination.port', values: ['8443']}]}]", "{'destination': {'port': 9000}, " GET("/") "}"),
	NO("[{when: [{key: 'destination.port', notValues: ['8443']}]}]", "{" GET("/") "}"),
	M("[{when: [{key: 'destination.port', notValues: ['8443']}]}]", "{'destination': {'port': 9000}, " GET("/") "}"),
	M("[{when: [{key: 'connection.sni', values: ['ledger*']}]}]",
	  "{'connection': {'sni': 'ledger.pay.svc'}, " GET("/") "}"),
	NO("[{when: [{key: 'connection.sni', values: ['ledger*']}]}]",
	   "{'connection': {'sni': 'api.pay.svc'}, " GET("/") "}"),
	NO("[{when: [{key: 'connection.sni', values: ['ledger*']}]}]", "{" GET("/") "}"),
	NO("[{when: [{key: 'connection.sni', notValues: ['ledger.pay.svc']}]}]",
	   "{'connection': {'sni': 'ledger.pay.svc'}, " GET("/") "}"),

	/* fields of a source ANDed */
	M("[{from: [{source: {principals: [" P_API "], ipBlocks: ['10.0.0.0/8']}}]}]",
	  "{'source': {'principal': 'spiffe://example.org/ns/pay/sa/api', 'ip': '10.0.0.1'}, " GET("/") "}"),
	NO("[{from: [{source: {principals: [" P_API "], ipBlocks: ['10.0.0.0/8']}}]}]",
	   "{'source': {'principal': 'spiffe://example.org/ns/pay/sa/api', 'ip': '11.0.0.1'}, " GET("/") "}"),
	NO("[{from: [{source: {principals: [" P_API "], ipBlocks: ['10.0.0.0/8']}}]}]",
	   "{'source': {'principal': 'spiffe://example.org/ns/pay/sa/web', 'ip': '10.0.0.1'}, " GET("/") "}"),
	NO("[{from: [{source: {namespaces: ['pay'], notPrincipals: [" P_API "]}}]}]",
	   "{" FROM("pay/sa/api") ", " GET("/") "}"),
	M("[{from: [{source: {namespaces: ['pay'], notPrincipals: [" P_API "]}}]}]",
	  "{" FROM("pay/sa/web") ", " GET("/") "}"),
	/* fields of an operation ANDed */
	M("[{to: [{operation: {methods: ['POST'], paths: ['/entries'], ports: [8443]}}]}]", "{" REQ("POST", "/entries") "}"),
	NO("[{to: [{operation: {methods: ['POST'], paths: ['/entries'], ports: [8443]}}]}]", "{" REQ("GET", "/entries") "}"),
	NO("[{to: [{operation: {methods: ['POST'], paths: ['/entries'], ports: [8443]}}]}]", "{" REQ("POST", "/other") "}"),
	NO("[{to: [{operation: {methods: ['POST'], paths: ['/entries'], ports: [8443]}}]}]",
	   "{'destination': {'port': 80}, " REQ("POST", "/entries") "}"),
	/* sources ORed, operations ORed */
	M("[{from: [{source: {principals: [" P_API "]}}, {source: {namespaces: ['shop']}}]}]",
	  "{" FROM("shop/sa/cart") ", " GET("/") "}"),
	M("[{from: [{source: {principals: [" P_API "]}}, {source: {namespaces: ['shop']}}]}]",
	  "{" FROM("pay/sa/api") ", " GET("/") "}"),
	NO("[{from: [{source: {principals: [" P_API "]}}, {source: {namespaces: ['shop']}}]}]",
	   "{" FROM("pay/sa/web") ", " GET("/") "}"),
	M("[{to: [{operation: {methods: ['GET']}}, {operation: {paths: ['/x']}}]}]", "{" REQ("POST", "/x") "}"),
	M("[{to: [{operation: {methods: ['GET']}}, {operation: {paths: ['/x']}}]}]", "{" REQ("GET", "/y") "}"),
	NO("[{to: [{operation: {methods: ['GET']}}, {operation: {paths: ['/x']}}]}]", "{" REQ("POST", "/y") "}"),
	/* from, to and when ANDed */
	M("[{from: [{source: {principals: [" P_API "]}}], to: [{operation: {methods: ['GET']}}]}]",
	  "{" FROM("pay/sa/api") ", " GET("/") "}"),
	NO("[{from: [{source: {principals: [" P_API "]}}], to: [{operation: {methods: ['GET']}}]}]",
	   "{" FROM("pay/sa/api") ", " REQ("POST", "/") "}"),
	NO("[{from: [{source: {principals: [" P_API "]}}], to: [{operation: {methods: ['GET']}}]}]",
	   "{" FROM("pay/sa/web") ", " GET("/") "}"),
	NO("[{from: [{source: {principals: [" P_API "]}}], when: [{key: 'request.auth.claims[role]', values: ['teller']}]}]",
	   "{" FROM("pay/sa/api") ", " GET("/") "}"),
	/* conditions ANDed */
	M("[{when: [{key: 'request.auth.claims[role]', values: ['teller']}, {key: 'request.headers[x-a]', values: ['1']}]}]",
	  "{'request': {'method': 'GET', 'path': '/', 'headers': {'x-a': '1'}, 'auth': {'claims': {'role': 'teller'}}}}"),
	NO("[{when: [{key: 'request.auth.claims[role]', values: ['teller']}, {key: 'request.headers[x-a]', values: ['1']}]}]",
	   "{'request': {'method': 'GET', 'path': '/', 'headers': {'x-a': '2'}, 'auth': {'claims': {'role': 'teller'}}}}"),
	NO("[{when: [{key: 'request.auth.claims[role]', values: ['teller']}, {key: 'request.headers[x-a]', values: ['1']}]}]",
	   "{'request': {'method': 'GET', 'path': '/', 'headers': {'x-a': '1'}, 'auth': {'claims': {'role': 'admin'}}}}"),
	/* values and notValues in one condition */
	M("[{when: [{key: 'request.headers[x-env]', values: ['prod*'], notValues: ['prod-eu']}]}]",
	  "{'request': {'method': 'GET', 'path': '/', 'headers': {'x-env': 'prod-us'}}}"),
	NO("[{when: [{key: 'request.headers[x-env]', values: ['prod*'], notValues: ['prod-eu']}]}]",
	   "{'request': {'method': 'GET', 'path': '/', 'headers': {'x-env': 'prod-eu'}}}"),
	/* rules ORed: the first rule that matches decides */
	MR("[{to: [{operation: {methods: ['GET']}}]}, {to: [{operation: {methods: ['POST']}}]}]", "{" REQ("POST", "/") "}", 1),
	MR("[{to: [{operation: {methods: ['GET']}}]}, {to: [{operation: {methods: ['POST']}}]}]", "{" REQ("GET", "/") "}", 0),
	NO("[{to: [{operation: {methods: ['GET']}}]}, {to: [{operation: {methods: ['POST']}}]}]", "{" REQ("PUT", "/") "}"),
	MR("[{to: [{operation: {methods: ['POST']}}]}, {}]", "{" REQ("POST", "/") "}", 0),
	MR("[{to: [{operation: {methods: ['POST']}}]}, {}]", "{" REQ("GET", "/") "}", 1),
	/* an empty rule matches every request */
	M("[{}]", "{" GET("/") "}"),
	M("[{}]", "{}"),
};

static char *policy_text(const char *action, const char *rules, int with_allow_all)
{
	char *t = NULL;

	if (asprintf(&t, "%s"
			 "---\napiVersion: zt.dev/v1\nkind: AuthorizationPolicy\n"
			 "metadata: {name: p, scope: acme/payments/pay}\n"
			 "spec:\n  selector: {services: [ledger]}\n  action: %s\n  rules: %s\n%s",
		     ORG_YAML, action, rules,
		     with_allow_all ? POL("all", "acme", "  action: ALLOW\n  rules: [{}]\n") : "") < 0)
		abort();
	return t;
}

/* runs a case table with the rules as ALLOW (deny=0) or as DENY (deny=1) */
static void run_cases(const struct mcase *cases, size_t n, int deny)
{
	for (size_t i = 0; i < n; i++) {
		const struct mcase *c = &cases[i];
		char *text = policy_text(deny ? "DENY" : "ALLOW", c->rules, deny);
		zt_policy_snapshot *s = compile_opts(c->line, text, NULL);
		int ok;

		if (!deny && c->match)
			ok = check_at(c->line, s, c->req, ZT_POLICY_ALLOW, "acme/payments/pay/p", c->rule);
		else if (!deny)
			ok = check_at(c->line, s, c->req, ZT_POLICY_DENY, NULL, -1);
		else if (c->match)
			ok = check_at(c->line, s, c->req, ZT_POLICY_DENY, "acme/payments/pay/p", c->rule);
		else
			ok = check_at(c->line, s, c->req, ZT_POLICY_ALLOW, "acme/all", 0);
		zt_policy_snapshot_unref(s);
		free(text);
		if (!ok)
			fail_msg("line %d: as %s, the rules %s", c->line, deny ? "DENY" : "ALLOW",
				 c->match ? "must match" : "must not match");
	}
}

static void test_fields_allow(void **state)
{
	(void)state;
	run_cases(field_cases, sizeof field_cases / sizeof field_cases[0], 0);
}

static void test_fields_deny(void **state)
{
	(void)state;
	run_cases(field_cases, sizeof field_cases / sizeof field_cases[0], 1);
}

/*
 * A DENY on a host suffix must deny whatever the length of the Host
 * header: a long host must not slip past it.
 */
static const struct mcase long_host_cases[] = {
	M("[{to: [{operation: {hosts: ['*.evil.example']}}]}]",
	  "{'request': {'method': 'GET', 'path': '/', 'host': '"
	  "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa."
	  "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa."
	  "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa."
	  "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa."
	  "evil.example'}}"),
	M("[{to: [{operation: {hosts: ['*.evil.example']}}]}]",
	  "{'request': {'method': 'GET', 'path': '/', 'host': 'a.evil.example'}}"),
};

/*
 * Address families: as in Istio (Envoy compares a CIDR range only with
 * addresses of its own family), an IPv6 block never holds an IPv4 address
 * and an IPv4 block never holds an IPv6 one. Otherwise a DENY on
 * notIpBlocks ['::/0'] ("deny what is not IPv6") lets IPv4 callers through.
 */
static const struct mcase ip_family_cases[] = {
	NO("[{from: [{source: {ipBlocks: ['0.0.0.0/0']}}]}]", "{'source': {'ip': '2001:db8::1'}, " GET("/") "}"),
	NO("[{from: [{source: {ipBlocks: ['2001:db8::/32']}}]}]", "{'source': {'ip': '10.1.2.3'}, " GET("/") "}"),
	M("[{from: [{source: {ipBlocks: ['::/0']}}]}]", "{'source': {'ip': '2001:db8::1'}, " GET("/") "}"),
	NO("[{from: [{source: {ipBlocks: ['::/0']}}]}]", "{'source': {'ip': '10.1.2.3'}, " GET("/") "}"),
	M("[{from: [{source: {notIpBlocks: ['::/0']}}]}]", "{'source': {'ip': '10.1.2.3'}, " GET("/") "}"),
	NO("[{when: [{key: 'source.ip', values: ['::/0']}]}]", "{'source': {'ip': '10.1.2.3'}, " GET("/") "}"),
	/* an IPv4-mapped source (as dual-stack sockets report it) is its IPv4 address */
	M("[{from: [{source: {ipBlocks: ['10.0.0.0/8']}}]}]", "{'source': {'ip': '::ffff:10.1.2.3'}, " GET("/") "}"),
	NO("[{from: [{source: {ipBlocks: ['::/0']}}]}]", "{'source': {'ip': '::ffff:10.1.2.3'}, " GET("/") "}"),
};

static void test_ip_families(void **state)
{
	(void)state;
	/* as DENY first: there a wrong answer lets a caller through */
	run_cases(ip_family_cases, sizeof ip_family_cases / sizeof ip_family_cases[0], 1);
	run_cases(ip_family_cases, sizeof ip_family_cases / sizeof ip_family_cases[0], 0);
}

static void test_long_host_deny(void **state)
{
	(void)state;
	run_cases(long_host_cases, sizeof long_host_cases / sizeof long_host_cases[0], 1);
}

/* ---- 2. the hierarchy ---------------------------------------------------- */

static void test_org_deny_wins(void **state)
{
	zt_policy_snapshot *s = COMPILE(
		ORG_YAML
		POL("deny-admin", "acme", "  action: DENY\n  rules: [{to: [{operation: {paths: ['/admin*']}}]}]\n")
		POL("tenant-all", "acme/payments", "  action: ALLOW\n  rules: [{}]\n")
		POL("ws-admin", "acme/payments/pay",
		    "  action: ALLOW\n  rules: [{to: [{operation: {paths: ['/admin', '/admin/*']}}]}]\n")
		POL("ws-ledger", "acme/payments/pay",
		    "  selector: {services: [ledger]}\n  action: ALLOW\n  rules: [{}]\n"));

	(void)state;
	DENIED(s, "{" GET("/admin") "}", "acme/deny-admin", 0);
	DENIED(s, "{" GET("/admin/users") "}", "acme/deny-admin", 0);
	DENIED(s, "{" GET("/x/../admin") "}", "acme/deny-admin", 0);
	DENIED(s, "{" TO("pay2/sa/api") ", " GET("/admin") "}", "acme/deny-admin", 0);
	DENIED(s, "{" TO("shop/sa/cart") ", " GET("/admin") "}", "acme/deny-admin", 0);
	/* ALLOWs are walked outermost scope first */
	ALLOWED(s, "{" GET("/public") "}", "acme/payments/tenant-all", 0);
	ALLOWED(s, "{" TO("pay/sa/api") ", " GET("/public") "}", "acme/payments/tenant-all", 0);
	DEFAULT_DENY(s, "{" TO("shop/sa/cart") ", " GET("/public") "}");
	zt_policy_snapshot_unref(s);
}

static void test_workspace_and_tenant_scopes(void **state)
{
	zt_policy_snapshot *s = COMPILE(
		ORG_YAML
		POL("pay-get", "acme/payments/pay", "  action: ALLOW\n  rules: [{to: [{operation: {methods: ['GET']}}]}]\n")
		POL("payments-post", "acme/payments", "  action: ALLOW\n  rules: [{to: [{operation: {methods: ['POST']}}]}]\n")
		POL("retail-put", "acme/retail", "  action: ALLOW\n  rules: [{to: [{operation: {methods: ['PUT']}}]}]\n"));

	(void)state;
	/* the workspace ALLOW: pay's services, not its sibling pay2, not shop */
	ALLOWED(s, "{" TO("pay/sa/ledger") ", " GET("/") "}", "acme/payments/pay/pay-get", 0);
	ALLOWED(s, "{" TO("pay/sa/web") ", " GET("/") "}", "acme/payments/pay/pay-get", 0);
	DEFAULT_DENY(s, "{" TO("pay2/sa/ledger") ", " GET("/") "}");
	DEFAULT_DENY(s, "{" TO("pay2/sa/api") ", " GET("/") "}");
	DEFAULT_DENY(s, "{" TO("shop/sa/api") ", " GET("/") "}");
	/* the tenant ALLOW: every workspace of payments, not retail's */
	ALLOWED(s, "{" TO("pay/sa/ledger") ", " REQ("POST", "/") "}", "acme/payments/payments-post", 0);
	ALLOWED(s, "{" TO("pay2/sa/api") ", " REQ("POST", "/") "}", "acme/payments/payments-post", 0);
	DEFAULT_DENY(s, "{" TO("shop/sa/cart") ", " REQ("POST", "/") "}");
	ALLOWED(s, "{" TO("shop/sa/cart") ", " REQ("PUT", "/") "}", "acme/retail/retail-put", 0);
	DEFAULT_DENY(s, "{" TO("pay/sa/ledger") ", " REQ("PUT", "/") "}");
	zt_policy_snapshot_unref(s);
}

static void test_selectors(void **state)
{
	zt_policy_snapshot *s = COMPILE(
		ORG_YAML
		POL("ledger-only", "acme/payments/pay",
		    "  selector: {services: [ledger]}\n  action: ALLOW\n  rules: [{to: [{operation: {methods: ['GET']}}]}]\n")
		POL("api-everywhere", "acme/payments",
		    "  selector: {services: [api]}\n  action: ALLOW\n  rules: [{to: [{operation: {methods: ['POST']}}]}]\n")
		POL("no-delete-on-cart", "acme",
		    "  selector: {services: [cart, web]}\n  action: DENY\n  rules: [{to: [{operation: {methods: ['DELETE']}}]}]\n")
		POL("all-delete", "acme", "  action: ALLOW\n  rules: [{to: [{operation: {methods: ['DELETE']}}]}]\n"));

	(void)state;
	ALLOWED(s, "{" TO("pay/sa/ledger") ", " GET("/") "}", "acme/payments/pay/ledger-only", 0);
	DEFAULT_DENY(s, "{" TO("pay/sa/api") ", " GET("/") "}");
	DEFAULT_DENY(s, "{" TO("pay/sa/web") ", " GET("/") "}");
	DEFAULT_DENY(s, "{" TO("pay2/sa/ledger") ", " GET("/") "}");
	/* a tenant-level selector: that service in every workspace of the tenant */
	ALLOWED(s, "{" TO("pay/sa/api") ", " REQ("POST", "/") "}", "acme/payments/api-everywhere", 0);
	ALLOWED(s, "{" TO("pay2/sa/api") ", " REQ("POST", "/") "}", "acme/payments/api-everywhere", 0);
	DEFAULT_DENY(s, "{" TO("shop/sa/api") ", " REQ("POST", "/") "}");
	DEFAULT_DENY(s, "{" TO("pay/sa/ledger") ", " REQ("POST", "/") "}");
	/* an organization-level selector */
	DENIED(s, "{" TO("shop/sa/cart") ", " REQ("DELETE", "/") "}", "acme/no-delete-on-cart", 0);
	DENIED(s, "{" TO("pay/sa/web") ", " REQ("DELETE", "/") "}", "acme/no-delete-on-cart", 0);
	ALLOWED(s, "{" TO("shop/sa/api") ", " REQ("DELETE", "/") "}", "acme/all-delete", 0);
	zt_policy_snapshot_unref(s);
}

static void test_unknown_destination_and_default(void **state)
{
	zt_policy_snapshot *s = COMPILE(ORG_YAML POL("all", "acme", "  action: ALLOW\n  rules: [{}]\n"));
	zt_policy_snapshot *none = COMPILE(
		ORG_YAML POL("deny-x", "acme", "  action: DENY\n  rules: [{to: [{operation: {paths: ['/x']}}]}]\n"));
	zt_policy_decision d;

	(void)state;
	assert_int_equal(zt_policy_snapshot_nservices(s), 7); /* 3 + 2 + 2 */
	assert_int_equal(zt_policy_snapshot_npolicies(s), 1 + (g_filler ? NFILLER : 0));
	ALLOWED(s, "{" TO("pay/sa/ledger") ", " GET("/") "}", "acme/all", 0);
	/* not declared: a service, a workspace, a trust domain */
	decide_text(__LINE__, s, "{" TO("pay/sa/nope") ", " GET("/") "}", &d);
	assert_int_equal(d.effect, ZT_POLICY_DENY);
	assert_null(d.by.policy);
	assert_non_null(strstr(d.reason, "unknown destination"));
	DEFAULT_DENY(s, "{" TO("nows/sa/api") ", " GET("/") "}");
	DEFAULT_DENY(s, "{'destination': {'service': 'spiffe://other.org/ns/pay/sa/ledger'}, " GET("/") "}");
	DEFAULT_DENY(s, "{'destination': {'service': 'spiffe://example.org/ns/pay/sa/ledger/x'}, " GET("/") "}");
	DEFAULT_DENY(s, "{'destination': {'service': 'ledger'}, " GET("/") "}");
	/* no ALLOW policy at all: deny by default */
	decide_text(__LINE__, none, "{" GET("/") "}", &d);
	assert_int_equal(d.effect, ZT_POLICY_DENY);
	assert_null(d.by.policy);
	assert_int_equal(d.by.rule, -1);
	assert_non_null(strstr(d.reason, "deny by default"));
	assert_int_equal(d.naudit, 0);
	assert_int_equal(d.ndry_run, 0);
	DENIED(none, "{" GET("/x") "}", "acme/deny-x", 0);
	zt_policy_snapshot_unref(s);
	zt_policy_snapshot_unref(none);
}

/* ---- 3. DENY first, AUDIT, dry-run --------------------------------------- */

static void test_deny_before_allow(void **state)
{
	zt_policy_snapshot *s = COMPILE(
		ORG_YAML
		POL("org-allow", "acme", "  action: ALLOW\n  rules: [{}]\n")
		POL("ws-deny", "acme/payments/pay",
		    "  selector: {services: [ledger]}\n  action: DENY\n"
		    "  rules:\n    - to: [{operation: {methods: ['DELETE']}}]\n"
		    "    - from: [{source: {namespaces: ['shop']}}]\n"));

	(void)state;
	/* a DENY in the innermost scope beats an ALLOW at the top */
	DENIED(s, "{" REQ("DELETE", "/") "}", "acme/payments/pay/ws-deny", 0);
	DENIED(s, "{" FROM("shop/sa/cart") ", " GET("/") "}", "acme/payments/pay/ws-deny", 1);
	ALLOWED(s, "{" FROM("pay/sa/api") ", " GET("/") "}", "acme/org-allow", 0);
	ALLOWED(s, "{" TO("pay/sa/api") ", " REQ("DELETE", "/") "}", "acme/org-allow", 0);
	zt_policy_snapshot_unref(s);
}

static void test_audit(void **state)
{
	zt_policy_snapshot *s = COMPILE(
		ORG_YAML
		POL("allow-get", "acme/payments/pay", "  action: ALLOW\n  rules: [{to: [{operation: {methods: ['GET']}}]}]\n")
		POL("audit-admin", "acme",
		    "  action: AUDIT\n  rules:\n    - to: [{operation: {methods: ['PUT']}}]\n"
		    "    - to: [{operation: {paths: ['/admin*']}}]\n")
		POL("audit-shop", "acme/payments/pay",
		    "  action: AUDIT\n  rules: [{from: [{source: {namespaces: ['shop']}}]}]\n"));
	zt_policy_decision d;

	(void)state;
	/* an allowed request, audited */
	decide_text(__LINE__, s, "{" GET("/admin/x") "}", &d);
	assert_int_equal(d.effect, ZT_POLICY_ALLOW);
	assert_string_equal(d.by.policy, "acme/payments/pay/allow-get");
	assert_int_equal(d.naudit, 1);
	assert_string_equal(d.audit[0].policy, "acme/audit-admin");
	assert_int_equal(d.audit[0].rule, 1);
	assert_int_equal(d.ndry_run, 0);
	/* a denied request, audited: still denied, by nobody */
	decide_text(__LINE__, s, "{" REQ("POST", "/admin") "}", &d);
	assert_int_equal(d.effect, ZT_POLICY_DENY);
	assert_null(d.by.policy);
	assert_int_equal(d.naudit, 1);
	assert_string_equal(d.audit[0].policy, "acme/audit-admin");
	/* two audits, in scope order */
	decide_text(__LINE__, s, "{" FROM("shop/sa/cart") ", " REQ("PUT", "/") "}", &d);
	assert_int_equal(d.effect, ZT_POLICY_DENY);
	assert_int_equal(d.naudit, 2);
	assert_string_equal(d.audit[0].policy, "acme/audit-admin");
	assert_int_equal(d.audit[0].rule, 0);
	assert_string_equal(d.audit[1].policy, "acme/payments/pay/audit-shop");
	/* no audit matches */
	decide_text(__LINE__, s, "{" GET("/x") "}", &d);
	assert_int_equal(d.effect, ZT_POLICY_ALLOW);
	assert_int_equal(d.naudit, 0);
	/* an AUDIT alone allows nothing */
	decide_text(__LINE__, s, "{" TO("pay2/sa/api") ", " GET("/admin") "}", &d);
	assert_int_equal(d.effect, ZT_POLICY_DENY);
	assert_int_equal(d.naudit, 1);
	zt_policy_snapshot_unref(s);
}

static void test_dry_run(void **state)
{
	zt_policy_snapshot *s = COMPILE(
		ORG_YAML
		POL("allow-get", "acme/payments/pay", "  action: ALLOW\n  rules: [{to: [{operation: {methods: ['GET']}}]}]\n")
		POL_DRY("try-deny-admin", "acme", "  action: DENY\n  rules: [{to: [{operation: {paths: ['/admin*']}}]}]\n")
		POL_DRY("try-allow-post", "acme/payments",
			"  action: ALLOW\n  rules:\n    - to: [{operation: {methods: ['PUT']}}]\n"
			"    - to: [{operation: {methods: ['POST']}}]\n")
		"---\napiVersion: zt.dev/v1\nkind: AuthorizationPolicy\n"
		"metadata: {name: enforced, scope: acme, annotations: {zt.dev/dry-run: 'false'}}\n"
		"spec:\n  action: DENY\n  rules: [{to: [{operation: {paths: ['/enforced']}}]}]\n");
	zt_policy_decision d;

	(void)state;
	/* a dry-run DENY matching an allowed request: reported, not enforced */
	decide_text(__LINE__, s, "{" GET("/admin") "}", &d);
	assert_int_equal(d.effect, ZT_POLICY_ALLOW);
	assert_string_equal(d.by.policy, "acme/payments/pay/allow-get");
	assert_int_equal(d.ndry_run, 1);
	assert_string_equal(d.dry_run[0].policy, "acme/try-deny-admin");
	assert_int_equal(d.dry_run[0].rule, 0);
	assert_int_equal(d.dry_run_effect[0], ZT_POLICY_DENY);
	assert_int_equal(d.naudit, 0);
	/* a dry-run ALLOW matching a denied request: still denied */
	decide_text(__LINE__, s, "{" REQ("POST", "/x") "}", &d);
	assert_int_equal(d.effect, ZT_POLICY_DENY);
	assert_null(d.by.policy);
	assert_int_equal(d.ndry_run, 1);
	assert_string_equal(d.dry_run[0].policy, "acme/payments/try-allow-post");
	assert_int_equal(d.dry_run[0].rule, 1);
	assert_int_equal(d.dry_run_effect[0], ZT_POLICY_ALLOW);
	/* both */
	decide_text(__LINE__, s, "{" REQ("PUT", "/admin") "}", &d);
	assert_int_equal(d.effect, ZT_POLICY_DENY);
	assert_null(d.by.policy);
	assert_int_equal(d.ndry_run, 2);
	assert_string_equal(d.dry_run[0].policy, "acme/try-deny-admin");
	assert_int_equal(d.dry_run_effect[0], ZT_POLICY_DENY);
	assert_string_equal(d.dry_run[1].policy, "acme/payments/try-allow-post");
	assert_int_equal(d.dry_run[1].rule, 0);
	assert_int_equal(d.dry_run_effect[1], ZT_POLICY_ALLOW);
	/* none */
	decide_text(__LINE__, s, "{" GET("/x") "}", &d);
	assert_int_equal(d.effect, ZT_POLICY_ALLOW);
	assert_int_equal(d.ndry_run, 0);
	/* dry-run "false" is enforced */
	DENIED(s, "{" GET("/enforced") "}", "acme/enforced", 0);
	zt_policy_snapshot_unref(s);
}

/* ---- 4. connections without HTTP ----------------------------------------- */

static void test_tcp(void **state)
{
	zt_policy_snapshot *s = COMPILE(
		ORG_YAML
		POL("deny-admin", "acme/payments/pay",
		    "  selector: {services: [ledger]}\n  action: DENY\n"
		    "  rules: [{from: [{source: {namespaces: ['shop']}}], to: [{operation: {paths: ['/admin*'], methods: ['POST']}}]}]\n")
		POL("deny-jwt", "acme/payments/pay",
		    "  selector: {services: [ledger]}\n  action: DENY\n"
		    "  rules: [{from: [{source: {principals: ['example.org/ns/pay2/*'], requestPrincipals: ['*']}}]}]\n")
		POL("deny-hdr", "acme/payments/pay",
		    "  selector: {services: [ledger]}\n  action: DENY\n"
		    "  rules: [{from: [{source: {principals: ['example.org/ns/pay/sa/web']}}], when: [{key: 'request.headers[x-a]', values: ['1']}]}]\n")
		POL("allow-http", "acme/payments/pay",
		    "  selector: {services: [ledger]}\n  action: ALLOW\n"
		    "  rules:\n    - to: [{operation: {methods: ['GET']}}]\n"
		    "    - to: [{operation: {paths: ['/x']}}]\n"
		    "    - from: [{source: {requestPrincipals: ['*']}}]\n"
		    "    - when: [{key: 'request.auth.claims[role]', values: ['teller']}]\n")
		POL("allow-port", "acme/payments/pay",
		    "  selector: {services: [ledger]}\n  action: ALLOW\n"
		    "  rules: [{from: [{source: {principals: ['example.org/ns/pay/sa/api']}}], to: [{operation: {ports: [5432]}}]}]\n"));

	(void)state;
	/* the same ALLOW rules admit HTTP requests... */
	ALLOWED(s, "{" FROM("pay/sa/api") ", " GET("/") "}", "acme/payments/pay/allow-http", 0);
	ALLOWED(s, "{" FROM("pay/sa/api") ", " REQ("POST", "/x") "}", "acme/payments/pay/allow-http", 1);
	/* ...but on a connection HTTP-only fields never match an ALLOW */
	DEFAULT_DENY(s, "{" FROM("pay/sa/api") "}");
	DEFAULT_DENY(s, "{" FROM("pay/sa/api") ", 'destination': {'port': 8443}}");
	/* an ALLOW without HTTP-only fields still admits connections */
	ALLOWED(s, "{" FROM("pay/sa/api") ", 'destination': {'port': 5432}}", "acme/payments/pay/allow-port", 0);
	DEFAULT_DENY(s, "{" FROM("pay/sa/ledger") ", 'destination': {'port': 5432}}");
	/* a DENY with paths and methods applies to a connection (they are ignored) */
	DENIED(s, "{" FROM("shop/sa/cart") ", 'destination': {'port': 5432}}", "acme/payments/pay/deny-admin", 0);
	/* while over HTTP they count */
	ALLOWED(s, "{" FROM("shop/sa/cart") ", " GET("/admin") "}", "acme/payments/pay/allow-http", 0);
	DENIED(s, "{" FROM("shop/sa/cart") ", " REQ("POST", "/admin/x") "}", "acme/payments/pay/deny-admin", 0);
	/* a DENY with requestPrincipals applies to a connection */
	DENIED(s, "{" FROM("pay2/sa/api") ", 'destination': {'port': 5432}}", "acme/payments/pay/deny-jwt", 0);
	ALLOWED(s, "{" FROM("pay2/sa/api") ", " GET("/") "}", "acme/payments/pay/allow-http", 0);
	DENIED(s, "{" FROM("pay2/sa/api") ", 'request': {'method': 'GET', 'path': '/', 'auth': {'principal': 'i/s'}}}",
	       "acme/payments/pay/deny-jwt", 0);
	/* a DENY with a header condition applies to a connection */
	DENIED(s, "{" FROM("pay/sa/web") ", 'destination': {'port': 5432}}", "acme/payments/pay/deny-hdr", 0);
	ALLOWED(s, "{" FROM("pay/sa/web") ", " GET("/") "}", "acme/payments/pay/allow-http", 0);
	zt_policy_snapshot_unref(s);
}

/* ---- 5. repeated headers ------------------------------------------------- */

static void test_repeated_headers(void **state)
{
	zt_policy_snapshot *allow = COMPILE(
		ORG_YAML POL("teller", "acme",
			     "  action: ALLOW\n  rules: [{when: [{key: 'request.headers[x-role]', values: ['teller']}]}]\n"));
	zt_policy_snapshot *deny = COMPILE(
		ORG_YAML
		POL("no-admin", "acme",
		    "  action: DENY\n  rules: [{when: [{key: 'request.headers[x-role]', values: ['admin']}]}]\n")
		POL("all", "acme", "  action: ALLOW\n  rules: [{}]\n"));
	zt_policy_snapshot *notv = COMPILE(
		ORG_YAML POL("not-admin", "acme",
			     "  action: ALLOW\n  rules: [{when: [{key: 'request.headers[x-role]', notValues: ['admin']}]}]\n"));

	(void)state;
	/* ALLOW: every copy must match */
	DEFAULT_DENY(allow, "{'request': {'method': 'GET', 'path': '/', 'headers': {'x-role': ['teller', 'admin']}}}");
	DEFAULT_DENY(allow, "{'request': {'method': 'GET', 'path': '/', 'headers': {'x-role': ['admin', 'teller']}}}");
	ALLOWED(allow, "{'request': {'method': 'GET', 'path': '/', 'headers': {'x-role': ['teller', 'teller']}}}", "acme/teller", 0);
	ALLOWED(allow, "{'request': {'method': 'GET', 'path': '/', 'headers': {'x-role': 'teller'}}}", "acme/teller", 0);
	/* two spellings of one name are one header */
	DEFAULT_DENY(allow, "{'request': {'method': 'GET', 'path': '/', 'headers': {'x-role': 'teller', 'X-Role': 'admin'}}}");
	/* DENY: any copy is enough */
	DENIED(deny, "{'request': {'method': 'GET', 'path': '/', 'headers': {'x-role': ['teller', 'admin']}}}", "acme/no-admin", 0);
	DENIED(deny, "{'request': {'method': 'GET', 'path': '/', 'headers': {'x-role': ['admin', 'teller']}}}", "acme/no-admin", 0);
	DENIED(deny, "{'request': {'method': 'GET', 'path': '/', 'headers': {'X-ROLE': 'teller', 'x-role': 'admin'}}}", "acme/no-admin", 0);
	ALLOWED(deny, "{'request': {'method': 'GET', 'path': '/', 'headers': {'x-role': ['teller', 'ops']}}}", "acme/all", 0);
	/* ALLOW with notValues: no copy may be excluded */
	DEFAULT_DENY(notv, "{'request': {'method': 'GET', 'path': '/', 'headers': {'x-role': ['teller', 'admin']}}}");
	ALLOWED(notv, "{'request': {'method': 'GET', 'path': '/', 'headers': {'x-role': ['teller', 'ops']}}}", "acme/not-admin", 0);
	/* DENY with notValues: one copy outside the list is enough, and so is no copy */
	{
		zt_policy_snapshot *dn = COMPILE(
			ORG_YAML
			POL("only-tellers", "acme",
			    "  action: DENY\n  rules: [{when: [{key: 'request.headers[x-role]', notValues: ['teller']}]}]\n")
			POL("all", "acme", "  action: ALLOW\n  rules: [{}]\n"));

		DENIED(dn, "{'request': {'method': 'GET', 'path': '/', 'headers': {'x-role': ['teller', 'admin']}}}", "acme/only-tellers", 0);
		DENIED(dn, "{'request': {'method': 'GET', 'path': '/', 'headers': {'x-other': 'teller'}}}", "acme/only-tellers", 0);
		ALLOWED(dn, "{'request': {'method': 'GET', 'path': '/', 'headers': {'x-role': ['teller', 'teller']}}}", "acme/all", 0);
		zt_policy_snapshot_unref(dn);
	}
	zt_policy_snapshot_unref(allow);
	zt_policy_snapshot_unref(deny);
	zt_policy_snapshot_unref(notv);
}

/* ---- 6. Istio mode ------------------------------------------------------- */

#define ISTIO_SET                                                                            \
	ISTIO("v1", "httpbin-get", "foo",                                                    \
	      "  selector: {matchLabels: {app: httpbin}}\n  action: ALLOW\n"                 \
	      "  rules: [{from: [{source: {principals: ['cluster.local/ns/foo/sa/sleep']}}], " \
	      "to: [{operation: {methods: ['GET']}}]}]\n")                                   \
	ISTIO("v1", "foo-post", "foo",                                                       \
	      "  action: ALLOW\n  rules: [{to: [{operation: {methods: ['POST']}}]}]\n")      \
	ISTIO("v1beta1", "deny-admin", "istio-system",                                       \
	      "  action: DENY\n  rules: [{to: [{operation: {paths: ['/admin*']}}]}]\n")      \
	ISTIO("v1", "allow-nothing", "bar", "  {}\n")                                        \
	ISTIO("v1", "allow-nothing2", "baz", "  {}\n")                                       \
	ISTIO("v1", "all-for-baz", "mesh-root", "  rules: [{to: [{operation: {methods: ['PUT']}}]}]\n")

#define SLEEP "'source': {'principal': 'spiffe://cluster.local/ns/foo/sa/sleep'}"
#define ITO(ns, sa) "'destination': {'service': 'spiffe://cluster.local/ns/" ns "/sa/" sa "'}"

static void test_istio_mode(void **state)
{
	zt_policy_snapshot *s = compile_opts(__LINE__, ISTIO_SET, NULL);
	zt_policy_decision d;

	(void)state;
	assert_int_equal(zt_policy_snapshot_npolicies(s), 6);
	ALLOWED(s, "{" SLEEP ", " ITO("foo", "httpbin") ", " GET("/x") "}", "foo/httpbin-get", 0);
	DEFAULT_DENY(s, "{" FROM("foo/sa/sleep") ", " ITO("foo", "httpbin") ", " GET("/x") "}");
	/* selector: another app in the namespace */
	DEFAULT_DENY(s, "{" SLEEP ", " ITO("foo", "other") ", " GET("/x") "}");
	ALLOWED(s, "{" ITO("foo", "other") ", " REQ("POST", "/x") "}", "foo/foo-post", 0);
	/* namespace: the same app elsewhere */
	DEFAULT_DENY(s, "{" SLEEP ", " ITO("bar", "httpbin") ", " GET("/x") "}");
	DEFAULT_DENY(s, "{" ITO("bar", "httpbin") ", " REQ("POST", "/x") "}");
	/* the root namespace applies everywhere, known namespaces or not */
	DENIED(s, "{" SLEEP ", " ITO("foo", "httpbin") ", " GET("/admin") "}", "istio-system/deny-admin", 0);
	DENIED(s, "{" ITO("bar", "x") ", " GET("/admin/y") "}", "istio-system/deny-admin", 0);
	DENIED(s, "{" ITO("unknown", "x") ", " GET("/admin") "}", "istio-system/deny-admin", 0);
	DEFAULT_DENY(s, "{" ITO("unknown", "x") ", " GET("/") "}");
	/* with the default root, mesh-root is an ordinary namespace */
	DEFAULT_DENY(s, "{" ITO("baz", "x") ", " REQ("PUT", "/") "}");
	ALLOWED(s, "{" ITO("mesh-root", "x") ", " REQ("PUT", "/") "}", "mesh-root/all-for-baz", 0);
	/* a destination that is not a workload ID */
	decide_text(__LINE__, s, "{'destination': {'service': 'spiffe://cluster.local/x'}, " GET("/admin") "}", &d);
	assert_int_equal(d.effect, ZT_POLICY_DENY);
	assert_null(d.by.policy);
	/* ALLOW-nothing (spec: {}) applies to bar and matches nothing */
	{
		struct rq *r = calloc(1, sizeof *r);
		zt_buf out;
		zt_err e;
		const char *t, *an;

		assert_non_null(r);
		assert_int_equal(rq_parse(r, "{" ITO("bar", "httpbin") ", " GET("/x") "}", &e), 0);
		zt_buf_init(&out, 1u << 20);
		assert_int_equal(zt_policy_explain(s, &r->req, &d, &out, &e), 0);
		assert_int_equal(zt_buf_terminate(&out, &e), 0);
		t = (const char *)out.p;
		assert_int_equal(d.effect, ZT_POLICY_DENY);
		assert_null(d.by.policy);
		an = strstr(t, "bar/allow-nothing");
		assert_non_null(an);
		assert_non_null(strstr(an, "never matches"));
		assert_non_null(strstr(t, "istio-system/deny-admin"));
		assert_null(strstr(t, "foo/"));
		assert_null(strstr(t, "allow-nothing2"));
		zt_buf_free(&out, 0);
		rq_free(r);
		free(r);
	}
	zt_policy_snapshot_unref(s);
}

static void test_istio_root_ns_option(void **state)
{
	zt_policy_snapshot *s = compile_opts(__LINE__, ISTIO_SET, "mesh-root");

	(void)state;
	/* mesh-root is now the root: its ALLOW applies in every namespace */
	ALLOWED(s, "{" ITO("baz", "x") ", " REQ("PUT", "/") "}", "mesh-root/all-for-baz", 0);
	ALLOWED(s, "{" ITO("foo", "httpbin") ", " REQ("PUT", "/") "}", "mesh-root/all-for-baz", 0);
	ALLOWED(s, "{" ITO("elsewhere", "x") ", " REQ("PUT", "/") "}", "mesh-root/all-for-baz", 0);
	/* and istio-system is an ordinary namespace */
	ALLOWED(s, "{" ITO("foo", "x") ", " REQ("POST", "/admin") "}", "foo/foo-post", 0);
	DENIED(s, "{" ITO("istio-system", "x") ", " REQ("POST", "/admin") "}", "istio-system/deny-admin", 0);
	DEFAULT_DENY(s, "{" ITO("bar", "x") ", " GET("/admin") "}");
	zt_policy_snapshot_unref(s);
}

/* Istio manifests beside an Organization: namespaces are workspaces. */
static void test_istio_with_org(void **state)
{
	zt_policy_snapshot *s = COMPILE(
		ORG_YAML
		ISTIO("v1", "ledger-get", "pay",
		      "  selector: {matchLabels: {app: ledger}}\n  action: ALLOW\n"
		      "  rules: [{to: [{operation: {methods: ['GET']}}]}]\n")
		ISTIO("v1", "root-deny", "istio-system",
		      "  action: DENY\n  rules: [{to: [{operation: {paths: ['/admin']}}]}]\n"));

	(void)state;
	ALLOWED(s, "{" GET("/") "}", "acme/payments/pay/ledger-get", 0);
	DEFAULT_DENY(s, "{" TO("pay/sa/api") ", " GET("/") "}");
	DEFAULT_DENY(s, "{" TO("pay2/sa/ledger") ", " GET("/") "}");
	DENIED(s, "{" GET("/admin") "}", "acme/root-deny", 0);
	DENIED(s, "{" TO("shop/sa/cart") ", " GET("/admin") "}", "acme/root-deny", 0);
	zt_policy_snapshot_unref(s);
}

/* ---- 7. the caller index ------------------------------------------------- */

/* A rule: a caller ("c3": exact principal example.org/ns/pay/sa/c3; "c1*":
 * prefix; "c4,c4": one source listing c4 twice; "c6|c8": two sources;
 * NULL: no from), and an optional method and path. */
struct irule {
	const char *caller;
	const char *method;
	const char *path;
};

struct ipol {
	char name[16];
	int tenant;   /* scope acme/payments instead of acme/payments/pay */
	int selected; /* selector: {services: [ledger]} */
	int nrules;
	struct irule r[2];
};

/* exact-principal policies: 20 as in a small service, or 40, past any
 * small-set fast path, so that the caller index decides */
#define MAX_EXACT 40
#define IPOL_MAX (MAX_EXACT + 7)

static const char *const cnames[MAX_EXACT] = {
	"c0",  "c1",  "c2",  "c3",  "c4",  "c5",  "c6",  "c7",  "c8",  "c9",
	"c10", "c11", "c12", "c13", "c14", "c15", "c16", "c17", "c18", "c19",
	"c20", "c21", "c22", "c23", "c24", "c25", "c26", "c27", "c28", "c29",
	"c30", "c31", "c32", "c33", "c34", "c35", "c36", "c37", "c38", "c39",
};

static int ipols_make(struct ipol *p, int nexact)
{
	int n = 0;

	memset(p, 0, IPOL_MAX * sizeof *p);
	/* a tenant-level policy, loaded first: walked before the workspace */
	p[n] = (struct ipol){ "t-c7", 1, 0, 1, { { "c7", NULL, "/t" } } };
	n++;
	for (int i = 0; i < nexact; i++) {
		if (i == 10) /* the prefix rule, between c9 and c10 in decision order */
			p[n++] = (struct ipol){ "prefix", 0, 1, 1, { { "c1*", "GET", NULL } } };
		snprintf(p[n].name, sizeof p[n].name, "a%02d", i);
		p[n].selected = 1;
		p[n].nrules = 1;
		p[n].r[0].method = "GET";
		p[n].r[0].caller = cnames[i];
		n++;
	}
	p[n++] = (struct ipol){ "open", 0, 1, 1, { { NULL, NULL, "/open" } } };
	p[n++] = (struct ipol){ "multi", 0, 1, 2, { { "c15", "DELETE", NULL }, { NULL, "PUT", NULL } } };
	p[n++] = (struct ipol){ "dup", 0, 1, 1, { { "c4,c4", "PATCH", NULL } } };
	p[n++] = (struct ipol){ "two", 0, 1, 1, { { "c6|c8", "HEAD", NULL } } };
	/* a workspace policy without selector: walked before the selected ones */
	p[n++] = (struct ipol){ "ws-c9", 0, 0, 1, { { "c9", "GET", NULL } } };
	assert_int_equal(n, nexact + 7);
	return n;
}

static void append(char **buf, size_t *len, const char *fmt, ...) ZT_PRINTF(3, 4);

static void append(char **buf, size_t *len, const char *fmt, ...)
{
	va_list ap;
	char *more;
	int n;

	va_start(ap, fmt);
	n = vasprintf(&more, fmt, ap);
	va_end(ap);
	if (n < 0)
		abort();
	*buf = realloc(*buf, *len + (size_t)n + 1);
	if (!*buf)
		abort();
	memcpy(*buf + *len, more, (size_t)n + 1);
	*len += (size_t)n;
	free(more);
}

static char *ipols_yaml(const struct ipol *p, int np)
{
	char *t = NULL;
	size_t n = 0;

	append(&t, &n, "%s", ORG_YAML);
	for (int i = 0; i < np; i++) {
		append(&t, &n, "---\napiVersion: zt.dev/v1\nkind: AuthorizationPolicy\n"
			       "metadata: {name: %s, scope: %s}\nspec:\n%s  action: ALLOW\n  rules:\n",
		       p[i].name, p[i].tenant ? "acme/payments" : "acme/payments/pay",
		       p[i].selected ? "  selector: {services: [ledger]}\n" : "");
		for (int r = 0; r < p[i].nrules; r++) {
			const struct irule *ru = &p[i].r[r];

			append(&t, &n, "    - {");
			if (ru->caller && strchr(ru->caller, ','))
				append(&t, &n, "from: [{source: {principals: ['example.org/ns/pay/sa/c4', 'example.org/ns/pay/sa/c4']}}], ");
			else if (ru->caller && strchr(ru->caller, '|'))
				append(&t, &n, "from: [{source: {principals: ['example.org/ns/pay/sa/c6']}}, "
					       "{source: {principals: ['example.org/ns/pay/sa/c8']}}], ");
			else if (ru->caller)
				append(&t, &n, "from: [{source: {principals: ['example.org/ns/pay/sa/%s']}}], ", ru->caller);
			if (ru->method || ru->path) {
				append(&t, &n, "to: [{operation: {");
				if (ru->method)
					append(&t, &n, "methods: ['%s']%s", ru->method, ru->path ? ", " : "");
				if (ru->path)
					append(&t, &n, "paths: ['%s']", ru->path);
				append(&t, &n, "}}]");
			}
			append(&t, &n, "}\n");
		}
	}
	return t;
}

/* the reference: does a rule admit caller (NULL: none) with method and path */
static int irule_match(const struct irule *r, const char *caller, const char *method,
		       const char *path)
{
	if (r->caller) {
		if (!caller)
			return 0;
		if (strchr(r->caller, ',')) {
			if (strcmp(caller, "c4") != 0)
				return 0;
		} else if (strchr(r->caller, '|')) {
			if (strcmp(caller, "c6") != 0 && strcmp(caller, "c8") != 0)
				return 0;
		} else if (r->caller[strlen(r->caller) - 1] == '*') {
			if (strncmp(caller, r->caller, strlen(r->caller) - 1) != 0)
				return 0;
		} else if (strcmp(caller, r->caller) != 0) {
			return 0;
		}
	}
	return (!r->method || strcmp(r->method, method) == 0) &&
	       (!r->path || strcmp(r->path, path) == 0);
}

/*
 * A linear scan in decision order: the tenant scope before the workspace;
 * within a scope, policies for all its services before those that select
 * the service by name; then load order; within a policy, rule order.
 */
static const struct ipol *ireference(const struct ipol *p, int np, const char *caller,
				     const char *method, const char *path, int *rule)
{
	for (int pass = 0; pass < 4; pass++)
		for (int i = 0; i < np; i++) {
			if (p[i].tenant != (pass < 2) || p[i].selected != (pass % 2))
				continue;
			for (int r = 0; r < p[i].nrules; r++)
				if (irule_match(&p[i].r[r], caller, method, path)) {
					*rule = r;
					return &p[i];
				}
		}
	return NULL;
}

static void caller_index(int nexact)
{
	static const char *const extra[] = { "c1x", "c2x", "c99", "c", NULL };
	static const char *const methods[] = { "GET", "POST", "PUT", "DELETE", "PATCH", "HEAD" };
	static const char *const paths[] = { "/x", "/t", "/open" };
	struct ipol p[IPOL_MAX];
	const char *callers[MAX_EXACT + 5];
	zt_policy_snapshot *s;
	char *yaml, req[512], pol[64];
	size_t ndecided = 0, nallowed = 0, ncallers = 0;
	int np = ipols_make(p, nexact);

	for (int i = 0; i < nexact; i++)
		callers[ncallers++] = cnames[i];
	for (int i = 0; i < 5; i++)
		callers[ncallers++] = extra[i];
	yaml = ipols_yaml(p, np);
	s = compile_opts(__LINE__, yaml, NULL);
	assert_int_equal(zt_policy_snapshot_npolicies(s), np);

	/* some by hand, so the reference is checked too */
	ALLOWED(s, "{" FROM("pay/sa/c3") ", " GET("/x") "}", "acme/payments/pay/a03", 0);
	ALLOWED(s, "{" FROM("pay/sa/c1") ", " GET("/x") "}", "acme/payments/pay/a01", 0);
	/* c12 matches the prefix rule and its own: the prefix rule comes first */
	ALLOWED(s, "{" FROM("pay/sa/c12") ", " GET("/x") "}", "acme/payments/pay/prefix", 0);
	ALLOWED(s, "{" FROM("pay/sa/c1x") ", " GET("/x") "}", "acme/payments/pay/prefix", 0);
	ALLOWED(s, "{" FROM("pay/sa/c19") ", " GET("/x") "}", "acme/payments/pay/prefix", 0);
	ALLOWED(s, "{" FROM("pay/sa/c9") ", " GET("/x") "}", "acme/payments/pay/ws-c9", 0);
	ALLOWED(s, "{" FROM("pay/sa/c7") ", " GET("/t") "}", "acme/payments/t-c7", 0);
	ALLOWED(s, "{" FROM("pay/sa/c7") ", " GET("/x") "}", "acme/payments/pay/a07", 0);
	ALLOWED(s, "{" FROM("pay/sa/c15") ", " REQ("DELETE", "/x") "}", "acme/payments/pay/multi", 0);
	ALLOWED(s, "{" FROM("pay/sa/c3") ", " REQ("PUT", "/x") "}", "acme/payments/pay/multi", 1);
	ALLOWED(s, "{" FROM("pay/sa/c3") ", " GET("/open") "}", "acme/payments/pay/a03", 0);
	ALLOWED(s, "{" FROM("pay/sa/c3") ", " REQ("POST", "/open") "}", "acme/payments/pay/open", 0);
	ALLOWED(s, "{" FROM("pay/sa/c99") ", " GET("/open") "}", "acme/payments/pay/open", 0);
	ALLOWED(s, "{" GET("/open") "}", "acme/payments/pay/open", 0);
	ALLOWED(s, "{" FROM("pay/sa/c4") ", " REQ("PATCH", "/x") "}", "acme/payments/pay/dup", 0);
	ALLOWED(s, "{" FROM("pay/sa/c8") ", " REQ("HEAD", "/x") "}", "acme/payments/pay/two", 0);
	ALLOWED(s, "{" FROM("pay/sa/c6") ", " REQ("HEAD", "/x") "}", "acme/payments/pay/two", 0);
	DEFAULT_DENY(s, "{" FROM("pay/sa/c99") ", " GET("/x") "}");
	DEFAULT_DENY(s, "{" FROM("pay/sa/c5") ", " REQ("POST", "/x") "}");
	DEFAULT_DENY(s, "{" GET("/x") "}");
	/* callers in other workspaces are other principals */
	DEFAULT_DENY(s, "{" FROM("pay2/sa/c3") ", " GET("/x") "}");
	/* the index serves pay/ledger only: pay/api has the unselected ones */
	ALLOWED(s, "{" TO("pay/sa/api") ", " FROM("pay/sa/c9") ", " GET("/x") "}", "acme/payments/pay/ws-c9", 0);
	DEFAULT_DENY(s, "{" TO("pay/sa/api") ", " FROM("pay/sa/c3") ", " GET("/x") "}");

	/* every caller, method and path against the reference */
	for (size_t c = 0; c < ncallers; c++)
		for (size_t m = 0; m < sizeof methods / sizeof methods[0]; m++)
			for (size_t k = 0; k < sizeof paths / sizeof paths[0]; k++) {
				int rule = -1;
				const struct ipol *want = ireference(p, np, callers[c], methods[m],
								     paths[k], &rule);

				if (callers[c])
					snprintf(req, sizeof req,
						 "{'source': {'principal': 'spiffe://example.org/ns/pay/sa/%s'}, "
						 "'request': {'method': '%s', 'path': '%s'}}",
						 callers[c], methods[m], paths[k]);
				else
					snprintf(req, sizeof req, "{'request': {'method': '%s', 'path': '%s'}}",
						 methods[m], paths[k]);
				if (want) {
					snprintf(pol, sizeof pol, "%s/%s",
						 want->tenant ? "acme/payments" : "acme/payments/pay", want->name);
					expect_at(__LINE__, s, req, ZT_POLICY_ALLOW, pol, rule);
					nallowed++;
				} else {
					expect_at(__LINE__, s, req, ZT_POLICY_DENY, NULL, -1);
				}
				ndecided++;
			}
	/* the sweep exercises both outcomes */
	assert_true(nallowed > 50);
	assert_true(ndecided - nallowed > 50);
	zt_policy_snapshot_unref(s);
	free(yaml);
}

static void test_caller_index_20(void **state)
{
	(void)state;
	caller_index(20);
}

static void test_caller_index_40(void **state)
{
	(void)state;
	caller_index(40);
}

/* ---- 8. loader diagnostics ----------------------------------------------- */

/*
 * One case: documents after the Organization, and a diagnostic that must
 * be there (level, a piece of its message), or (DNONE) one that must not.
 */
struct dcase {
	int line;
	const char *text;
	int level; /* ZT_DIAG_ERROR, ZT_DIAG_WARNING, or -1: no such diagnostic */
	const char *needle;
};

#define DERR(text, needle) { __LINE__, text, ZT_DIAG_ERROR, needle }
#define DWARN(text, needle) { __LINE__, text, ZT_DIAG_WARNING, needle }
#define DNONE(text, needle) { __LINE__, text, -1, needle }

#define ALLOW_RULES(rules) POL("p", "acme/payments/pay", "  action: ALLOW\n  rules: " rules "\n")

static const struct dcase diag_cases[] = {
	/* unknown fields in a spec are errors */
	DERR(ALLOW_RULES("[{from: [{source: {principals: ['example.org/ns/pay/sa/api']}}], bogus: 1}]"),
	     "unknown field \"bogus\""),
	DERR(ALLOW_RULES("[{from: [{source: {principal: ['example.org/ns/pay/sa/api']}}]}]"),
	     "unknown field \"principal\""),
	DERR(ALLOW_RULES("[{to: [{operation: {path: ['/x']}}]}]"), "unknown field \"path\""),
	DERR(ALLOW_RULES("[{to: [{operation: {paths: ['/x']}, extra: 1}]}]"), "unknown field \"extra\""),
	DERR(ALLOW_RULES("[{when: [{key: 'source.ip', values: ['10.0.0.1'], value: ['x']}]}]"),
	     "unknown field \"value\""),
	DERR(POL("p", "acme", "  action: ALLOW\n  rulez: [{}]\n"), "unknown field \"rulez\""),
	DERR(POL("p", "acme", "  selector: {services: [ledger], labels: [x]}\n  action: ALLOW\n"),
	     "unknown field \"labels\""),
	DERR(ALLOW_RULES("[{from: [{source: {remoteIpBlocks: ['10.0.0.0/8']}}]}]"), "remoteIpBlocks"),
	/* actions */
	DERR(POL("p", "acme", "  action: CUSTOM\n  rules: [{}]\n"), "CUSTOM"),
	DERR(ISTIO("v1", "ext", "pay", "  action: CUSTOM\n  provider: {name: ext-authz}\n  rules: [{}]\n"), "CUSTOM"),
	DERR(POL("p", "acme", "  action: allow\n  rules: [{}]\n"), "ALLOW, DENY or AUDIT"),
	/* lists and values */
	DERR(ALLOW_RULES("[{from: [{source: {principals: []}}]}]"), "empty list"),
	DERR(ALLOW_RULES("[{to: [{operation: {notPaths: []}}]}]"), "empty list"),
	DERR(ALLOW_RULES("[{when: [{key: 'request.headers[x]', values: []}]}]"), "empty list"),
	DERR(ALLOW_RULES("[{from: []}]"), "non-empty"),
	DERR(ALLOW_RULES("[{from: [{source: {principals: ['example.org/ns/*/sa/api']}}]}]"),
	     "not at the start or the end"),
	DERR(ALLOW_RULES("[{to: [{operation: {paths: ['/a*b']}}]}]"), "not at the start or the end"),
	DERR(ALLOW_RULES("[{to: [{operation: {hosts: ['**']}}]}]"), "not at the start or the end"),
	DERR(ALLOW_RULES("[{to: [{operation: {paths: ['']}}]}]"), "empty value"),
	DERR(ALLOW_RULES("[{to: [{operation: {paths: ['/a/{id}']}}]}]"), "templates"),
	DERR(ALLOW_RULES("[{to: [{operation: {paths: ['/a/{*}']}}]}]"), "not at the start or the end"),
	/* addresses and ports */
	DERR(ALLOW_RULES("[{from: [{source: {ipBlocks: ['10.0.0.0/33']}}]}]"), "not an IP address or CIDR"),
	DERR(ALLOW_RULES("[{from: [{source: {ipBlocks: ['10.0.0.256']}}]}]"), "not an IP address or CIDR"),
	DERR(ALLOW_RULES("[{from: [{source: {notIpBlocks: ['2001:db8::/129']}}]}]"), "not an IP address or CIDR"),
	DERR(ALLOW_RULES("[{from: [{source: {ipBlocks: ['10.0.0.0/']}}]}]"), "not an IP address or CIDR"),
	DERR(ALLOW_RULES("[{when: [{key: 'source.ip', values: ['nope']}]}]"), "not an IP address or CIDR"),
	DERR(ALLOW_RULES("[{to: [{operation: {ports: [70000]}}]}]"), "from 1 to 65535"),
	DERR(ALLOW_RULES("[{to: [{operation: {ports: [0]}}]}]"), "from 1 to 65535"),
	DERR(ALLOW_RULES("[{to: [{operation: {notPorts: ['80a']}}]}]"), "from 1 to 65535"),
	DERR(ALLOW_RULES("[{when: [{key: 'destination.port', values: ['70000']}]}]"), "from 1 to 65535"),
	/* conditions */
	DERR(ALLOW_RULES("[{when: [{key: 'request.foo', values: ['x']}]}]"), "unknown when key"),
	DERR(ALLOW_RULES("[{when: [{key: 'source.user', values: ['x']}]}]"), "unknown when key"),
	DERR(ALLOW_RULES("[{when: [{key: 'request.auth.claims', values: ['x']}]}]"), "request.auth.claims[NAME]"),
	DERR(ALLOW_RULES("[{when: [{key: 'request.auth.claims[a]x', values: ['x']}]}]"), "request.auth.claims[NAME]"),
	DERR(ALLOW_RULES("[{when: [{key: 'source.ip'}]}]"), "needs values or notValues"),
	/* scopes, names, annotations, api versions */
	DERR(POL("p", "acme/nope", "  action: ALLOW\n  rules: [{}]\n"), "not in the organization"),
	DERR(POL("p", "other", "  action: ALLOW\n  rules: [{}]\n"), "not in the organization"),
	DERR(POL("p", "acme/retail/pay", "  action: ALLOW\n  rules: [{}]\n"), "not in the organization"),
	DERR(POL("p", "acme/payments/pay/ledger", "  action: ALLOW\n  rules: [{}]\n"), "not in the organization"),
	DERR("---\napiVersion: zt.dev/v1\nkind: AuthorizationPolicy\nmetadata: {name: p}\nspec: {action: ALLOW}\n",
	     "metadata.scope is required"),
	DERR(POL("p", "acme", "  action: ALLOW\n  rules: [{}]\n") POL("p", "acme", "  action: DENY\n  rules: [{}]\n"),
	     "defined twice"),
	DERR(ISTIO("v1", "p", "pay", "  rules: [{}]\n") ISTIO("v1", "p", "pay", "  rules: [{}]\n"), "defined twice"),
	DERR("---\napiVersion: zt.dev/v1\nkind: AuthorizationPolicy\n"
	     "metadata: {name: p, scope: acme, annotations: {zt.dev/dry-run: 'yes'}}\nspec: {action: ALLOW}\n",
	     "dry-run annotation"),
	DERR("---\napiVersion: zt.dev/v2\nkind: AuthorizationPolicy\nmetadata: {name: p, scope: acme}\nspec: {}\n",
	     "is not one zt reads"),
	DERR(ISTIO("v1", "p", "nope", "  rules: [{}]\n"), "not a workspace"),
	DERR(ISTIO("v1", "p", "pay", "  selector: {matchLabels: {app: ledger, version: v1}}\n  rules: [{}]\n"),
	     "app label only"),
	DERR(POL("p", "acme", "  selector: {services: []}\n  action: ALLOW\n"), "non-empty list"),

	/* warnings */
	DWARN(ALLOW_RULES("[{to: [{operation: {paths: ['/a/../b']}}]}]"), "not in normalized form"),
	DWARN(ALLOW_RULES("[{to: [{operation: {notPaths: ['//a*']}}]}]"), "not in normalized form"),
	DWARN(ALLOW_RULES("[{to: [{operation: {paths: ['/%61dmin']}}]}]"), "not in normalized form"),
	DWARN(ALLOW_RULES("[{to: [{operation: {paths: ['admin']}}]}]"), "does not begin with '/'"),
	DWARN(POL("deny-admin", "acme", "  action: DENY\n  rules: [{to: [{operation: {paths: ['/admin*']}}]}]\n")
	      ALLOW_RULES("[{to: [{operation: {paths: ['/admin/users']}}]}]"),
	      "never takes effect"),
	DWARN(POL("deny-admin", "acme/payments", "  action: DENY\n  rules: [{to: [{operation: {paths: ['/admin*'], methods: ['GET', 'POST']}}]}]\n")
	      ALLOW_RULES("[{from: [{source: {namespaces: ['shop']}}], to: [{operation: {paths: ['/admin', '/admin/x*'], methods: ['GET']}}]}]"),
	      "never takes effect"),
	DWARN(ISTIO("v1", "i", "pay", "  action: ALLOW\n  rules: [{}]\n"), "deny by default"),
	DWARN(ALLOW_RULES("[{from: [{source: {principals: ['spiffe://example.org/ns/pay/sa/api']}}]}]"),
	      "without \"spiffe://\""),
	DWARN(ALLOW_RULES("[{to: [{operation: {hosts: ['ledger.example.com:8443']}}]}]"), "without the port"),
	DWARN(ALLOW_RULES("[{to: [{operation: {methods: ['get']}}]}]"), "case-sensitive"),
	DWARN(POL("p", "acme/payments/pay", "  selector: {services: [cart]}\n  action: ALLOW\n  rules: [{}]\n"),
	      "not in this policy's scope"),
	DWARN(ALLOW_RULES("[{from: [{source: {principals: ['example.org/ns/pay/sa/api'], notPrincipals: ['example.org/ns/pay/sa/api']}}]}]"),
	      "never matches"),
	DWARN(POL("p", "acme", "  action: DENY\n"), "never matches"),
	DWARN("---\napiVersion: zt.dev/v1\nkind: AuthorizationPolicy\n"
	      "metadata: {name: p, scope: acme, owner: me}\nspec: {action: ALLOW}\n",
	      "unknown field \"owner\""),
	DWARN("---\nfoo: bar\n", "not a policy document"),
	DWARN(ALLOW_RULES("[{from: [{source: {principals: ['other.org/ns/x/sa/y']}}]}]"), "trust domain"),

	/* what must not be reported */
	DNONE(POL("deny-admin", "acme", "  action: DENY\n  rules: [{to: [{operation: {paths: ['/admin*']}}]}]\n")
	      ALLOW_RULES("[{to: [{operation: {paths: ['/api/admin']}}]}]"),
	      "never takes effect"),
	DNONE(POL("deny-admin", "acme", "  action: DENY\n  rules: [{to: [{operation: {paths: ['/admin*']}}]}]\n")
	      ALLOW_RULES("[{to: [{operation: {paths: ['/admin/users', '/public']}}]}]"),
	      "never takes effect"),
	DNONE(POL("deny-admin", "acme/payments/pay2", "  action: DENY\n  rules: [{to: [{operation: {paths: ['/admin*']}}]}]\n")
	      ALLOW_RULES("[{to: [{operation: {paths: ['/admin/users']}}]}]"),
	      "never takes effect"),
	DNONE(POL_DRY("deny-admin", "acme", "  action: DENY\n  rules: [{to: [{operation: {paths: ['/admin*']}}]}]\n")
	      ALLOW_RULES("[{to: [{operation: {paths: ['/admin/users']}}]}]"),
	      "never takes effect"),
	DNONE(POL("deny-admin", "acme", "  action: DENY\n  rules: [{from: [{source: {namespaces: ['shop']}}], to: [{operation: {paths: ['/admin*']}}]}]\n")
	      ALLOW_RULES("[{to: [{operation: {paths: ['/admin/users']}}]}]"),
	      "never takes effect"),
	DNONE(ALLOW_RULES("[{to: [{operation: {paths: ['/a/b/', '/a/*', '/a/b/*']}}]}]"), "normalized"),
	DNONE(POL("p", "acme", "  action: ALLOW\n  rules: [{}]\n"), "deny by default"),
};

static const zt_diag *find_diag(const zt_policy_src *src, int level, const char *needle)
{
	for (size_t i = 0; i < zt_policy_src_ndiags(src); i++) {
		const zt_diag *d = zt_policy_src_diag(src, i);

		if ((level < 0 || (int)d->level == level) && strstr(d->msg, needle))
			return d;
	}
	return NULL;
}

static void test_diagnostics(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof diag_cases / sizeof diag_cases[0]; i++) {
		const struct dcase *c = &diag_cases[i];
		char *text = NULL;
		zt_policy_src *src;
		zt_policy_snapshot *s;
		const zt_diag *d;
		zt_err e;
		int nerr;

		if (asprintf(&text, "%s%s", ORG_YAML, c->text) < 0)
			abort();
		src = load(text);
		d = find_diag(src, c->level, c->needle);
		if (c->level < 0 ? d != NULL : d == NULL) {
			dump_diags(src);
			fail_msg("line %d: %s diagnostic containing \"%s\"", c->line,
				 c->level < 0 ? "unexpected" : "missing", c->needle);
		}
		if (d) {
			assert_string_equal(d->file, "t.yaml");
			if (d->line <= 13) /* it points into the policy, not the Organization */
				fail_msg("line %d: diagnostic at line %d", c->line, d->line);
		}
		nerr = zt_policy_src_check(src); /* checking again counts the same */
		assert_int_equal(nerr, (int)zt_policy_src_nerrors(src));
		s = zt_policy_compile(src, &e);
		if (c->level == ZT_DIAG_ERROR) {
			if (s)
				fail_msg("line %d: a set with errors compiled", c->line);
			assert_true(nerr > 0);
			assert_int_equal(e.code, ZT_EINVAL);
			assert_non_null(strstr(e.msg, "error"));
		} else {
			if (nerr != 0) {
				dump_diags(src);
				fail_msg("line %d: errors where only warnings were expected", c->line);
			}
			if (!s)
				fail_msg("line %d: compile: %s", c->line, e.msg);
			zt_policy_snapshot_unref(s);
		}
		zt_policy_src_free(src);
		free(text);
	}
}

static void test_diagnostics_without_org(void **state)
{
	zt_policy_src *src;
	const zt_diag *d;
	zt_policy_snapshot *s;
	zt_err e;

	(void)state;
	/* zt policies need an Organization */
	src = load(POL("p", "acme", "  action: ALLOW\n  rules: [{}]\n"));
	d = find_diag(src, ZT_DIAG_ERROR, "Organization");
	assert_non_null(d);
	assert_null(zt_policy_compile(src, &e));
	zt_policy_src_free(src);
	/* an Istio manifest alone: a warning on the default, and it compiles */
	src = load(ISTIO("v1", "i", "foo", "  rules: [{}]\n"));
	d = find_diag(src, ZT_DIAG_WARNING, "deny by default");
	assert_non_null(d);
	assert_int_equal(d->line, 2); /* the document, after the --- line */
	assert_int_equal(zt_policy_src_nerrors(src), 0);
	s = zt_policy_compile(src, &e);
	assert_non_null(s);
	zt_policy_snapshot_unref(s);
	zt_policy_src_free(src);
	/* two Organizations */
	src = load(ORG_YAML "---\n" ORG_YAML);
	assert_non_null(find_diag(src, ZT_DIAG_ERROR, "second Organization"));
	zt_policy_src_free(src);
	/* a workspace declared twice (across tenants) */
	src = load("apiVersion: zt.dev/v1\nkind: Organization\nmetadata: {name: acme}\n"
		   "spec:\n  trustDomain: example.org\n  tenants:\n"
		   "    - {name: a, workspaces: [{name: w, services: [s]}]}\n"
		   "    - {name: b, workspaces: [{name: w, services: [t]}]}\n");
	d = find_diag(src, ZT_DIAG_ERROR, "declared twice");
	assert_non_null(d);
	assert_int_equal(d->line, 8);
	zt_policy_src_free(src);
	/* a bad trust domain */
	src = load("apiVersion: zt.dev/v1\nkind: Organization\nmetadata: {name: acme}\n"
		   "spec:\n  trustDomain: Example.ORG\n  tenants: []\n");
	assert_non_null(find_diag(src, ZT_DIAG_ERROR, "trustDomain"));
	zt_policy_src_free(src);
}

/* 1-based line and column of the first occurrence of needle in text */
static void where(const char *text, const char *needle, int *line, int *col)
{
	const char *at = strstr(text, needle), *bol = text;

	assert_non_null(at);
	*line = 1;
	for (const char *c = text; c < at; c++)
		if (*c == '\n') {
			(*line)++;
			bol = c + 1;
		}
	*col = (int)(at - bol) + 1;
}

static const zt_diag *only_error(const zt_policy_src *src)
{
	const zt_diag *found = NULL;

	for (size_t i = 0; i < zt_policy_src_ndiags(src); i++)
		if (zt_policy_src_diag(src, i)->level == ZT_DIAG_ERROR) {
			if (found) {
				dump_diags(src);
				fail_msg("more than one error");
			}
			found = zt_policy_src_diag(src, i);
		}
	if (!found) {
		dump_diags(src);
		fail_msg("no error");
	}
	return found;
}

static void test_diagnostic_positions(void **state)
{
	static const char yaml_err[] = ORG_YAML "---\napiVersion: zt.dev/v1\nkind: AuthorizationPolicy\n"
					"metadata: {name: p, scope: acme}\nspec:\n  action: ALLOW: DENY\n";
	static const char unknown_scalar[] = ORG_YAML POL("p", "acme/payments/pay",
		"  action: ALLOW\n"
		"  rules:\n"
		"    - from: [{source: {principals: ['example.org/ns/pay/sa/api']}}]\n"
		"      bogus: 1\n");
	static const char unknown_block[] = ORG_YAML POL("p", "acme/payments/pay",
		"  action: ALLOW\n"
		"  rules:\n"
		"    - to: [{operation: {methods: ['GET']}}]\n"
		"      bogus:\n"
		"        - x\n");
	static const char unknown_flow[] = ORG_YAML POL("p", "acme/payments/pay",
		"  action: ALLOW\n"
		"  rules:\n"
		"    - to: [{operation: {methods: ['GET'], pathz: ['/x']}}]\n");
	static const char bad_cidr[] = ORG_YAML POL("p", "acme/payments/pay",
		"  action: ALLOW\n"
		"  rules:\n"
		"    - from:\n"
		"        - source:\n"
		"            ipBlocks: ['10.0.0.0/8', '10.0.0.0/40']\n");
	zt_policy_src *src;
	const zt_diag *d;
	int line, col;

	(void)state;
	/* a YAML syntax error: the second ':' on "  action: ALLOW: DENY" */
	src = load(yaml_err);
	d = only_error(src);
	where(yaml_err, "ALLOW: DENY", &line, &col);
	assert_string_equal(d->file, "t.yaml");
	assert_int_equal(d->line, line);
	assert_int_equal(d->column, col + 5);
	zt_policy_src_free(src);

	/* an unknown field: where it is named */
	src = load(unknown_scalar);
	d = only_error(src);
	assert_non_null(strstr(d->msg, "unknown field \"bogus\""));
	where(unknown_scalar, "bogus", &line, &col);
	assert_int_equal(line, 22); /* the test's own arithmetic: 13 + 9 */
	assert_int_equal(d->line, line);
	assert_int_equal(d->column, col);
	zt_policy_src_free(src);

	/* the same with the value on the lines below: still the line of the key */
	src = load(unknown_block);
	d = only_error(src);
	assert_non_null(strstr(d->msg, "unknown field \"bogus\""));
	where(unknown_block, "bogus", &line, &col);
	assert_int_equal(d->line, line);
	assert_int_equal(d->column, col);
	zt_policy_src_free(src);

	/* in a flow mapping */
	src = load(unknown_flow);
	d = only_error(src);
	assert_non_null(strstr(d->msg, "unknown field \"pathz\""));
	where(unknown_flow, "pathz", &line, &col);
	assert_int_equal(d->line, line);
	assert_int_equal(d->column, col);
	zt_policy_src_free(src);

	/* a bad value: the value itself */
	src = load(bad_cidr);
	d = only_error(src);
	assert_non_null(strstr(d->msg, "10.0.0.0/40"));
	where(bad_cidr, "'10.0.0.0/40'", &line, &col);
	assert_int_equal(d->line, line);
	assert_int_equal(d->column, col);
	zt_policy_src_free(src);
}

/* ---- 9. explanations ----------------------------------------------------- */

static void test_explain(void **state)
{
	zt_policy_snapshot *s = COMPILE(
		ORG_YAML
		POL("deny-admin", "acme", "  action: DENY\n  rules: [{to: [{operation: {paths: ['/admin*']}}]}]\n")
		POL("allow-get", "acme/payments/pay",
		    "  selector: {services: [ledger]}\n  action: ALLOW\n"
		    "  rules:\n    - from: [{source: {namespaces: ['shop']}}]\n"
		    "    - to: [{operation: {methods: ['GET']}}]\n")
		POL("audit-all", "acme/payments", "  action: AUDIT\n  rules: [{when: [{key: 'request.headers[x-a]', values: ['1']}]}]\n")
		POL_DRY("try", "acme/payments/pay", "  action: DENY\n  rules: [{to: [{operation: {ports: [1]}}]}]\n")
		POL("elsewhere", "acme/payments/pay2", "  action: ALLOW\n  rules: [{}]\n")
		POL("nothing", "acme/payments/pay", "  action: ALLOW\n"));
	struct rq *r = calloc(1, sizeof *r);
	zt_policy_decision d;
	zt_buf out;
	zt_err e;
	const char *t;

	(void)state;
	assert_non_null(r);
	assert_int_equal(rq_parse(r, "{" FROM("pay/sa/api") ", " GET("/x") "}", &e), 0);
	zt_buf_init(&out, 1u << 20);
	assert_int_equal(zt_policy_explain(s, &r->req, &d, &out, &e), 0);
	assert_int_equal(zt_buf_terminate(&out, &e), 0);
	t = (const char *)out.p;
	/* the decision is the one decide gives */
	assert_int_equal(d.effect, ZT_POLICY_ALLOW);
	assert_string_equal(d.by.policy, "acme/payments/pay/allow-get");
	assert_int_equal(d.by.rule, 1);
	/* every applicable policy, none other */
	assert_non_null(strstr(t, LEDGER));
	assert_non_null(strstr(t, "acme/deny-admin"));
	assert_non_null(strstr(t, "acme/payments/pay/allow-get"));
	assert_non_null(strstr(t, "acme/payments/audit-all"));
	assert_non_null(strstr(t, "acme/payments/pay/try"));
	assert_non_null(strstr(t, "acme/payments/pay/nothing"));
	assert_null(strstr(t, "elsewhere"));
	/* why: the DENY's rule does not match, the ALLOW's rule 0 does not, rule 1 does */
	{
		const char *deny = strstr(t, "acme/deny-admin"), *allow = strstr(t, "allow-get");
		const char *nl;

		nl = strstr(deny, "rule 0: ");
		assert_non_null(nl);
		assert_true(strncmp(nl, "rule 0: no match", 16) == 0);
		assert_non_null(strstr(nl, "path"));
		nl = strstr(allow, "rule 0: ");
		assert_non_null(nl);
		assert_true(strncmp(nl, "rule 0: no match", 16) == 0);
		assert_non_null(strstr(nl, "namespace"));
		nl = strstr(allow, "rule 1: ");
		assert_non_null(nl);
		assert_true(strncmp(nl, "rule 1: matches", 15) == 0);
		nl = strstr(t, "request.headers[x-a]");
		assert_non_null(nl);
	}
	zt_buf_free(&out, 0);
	rq_free(r);

	/* an unknown destination is explained too */
	memset(r, 0, sizeof *r);
	assert_int_equal(rq_parse(r, "{" TO("pay/sa/nope") ", " GET("/x") "}", &e), 0);
	zt_buf_init(&out, 1u << 20);
	assert_int_equal(zt_policy_explain(s, &r->req, &d, &out, &e), 0);
	assert_int_equal(zt_buf_terminate(&out, &e), 0);
	assert_int_equal(d.effect, ZT_POLICY_DENY);
	assert_non_null(strstr((const char *)out.p, "unknown destination"));
	zt_buf_free(&out, 0);
	rq_free(r);

	/* a service no policy applies to */
	memset(r, 0, sizeof *r);
	assert_int_equal(rq_parse(r, "{" TO("shop/sa/cart") ", " GET("/admin") "}", &e), 0);
	zt_buf_init(&out, 1u << 20);
	assert_int_equal(zt_policy_explain(s, &r->req, &d, &out, &e), 0);
	assert_int_equal(zt_buf_terminate(&out, &e), 0);
	assert_int_equal(d.effect, ZT_POLICY_DENY);
	assert_string_equal(d.by.policy, "acme/deny-admin");
	assert_non_null(strstr((const char *)out.p, "acme/deny-admin"));
	assert_non_null(strstr((const char *)out.p, "rule 0: matches"));
	assert_null(strstr((const char *)out.p, "allow-get"));
	zt_buf_free(&out, 0);
	rq_free(r);

	/* a bounded buffer too small: an error, not a crash */
	memset(r, 0, sizeof *r);
	assert_int_equal(rq_parse(r, "{" GET("/x") "}", &e), 0);
	zt_buf_init(&out, 16);
	assert_int_not_equal(zt_policy_explain(s, &r->req, &d, &out, &e), 0);
	zt_buf_free(&out, 0);
	rq_free(r);
	free(r);
	zt_policy_snapshot_unref(s);
}

/* ---- requests ------------------------------------------------------------ */

static void test_request_json(void **state)
{
	static const struct {
		int line;
		const char *req;
		const char *err; /* NULL: accepted */
	} cases[] = {
		{ __LINE__, "{" GET("/admin/../admin") "}", NULL },
		{ __LINE__, "{" GET("/admin%2F..") "}", "path-encoded-slash" },
		{ __LINE__, "{" GET("/admin#x") "}", "path-fragment" },
		{ __LINE__, "{" GET("/admin%00") "}", "path-control" },
		{ __LINE__, "{" GET("admin") "}", "path-not-absolute" },
		{ __LINE__, "{'source': {'ip': '10.0.0.256'}}", "source.ip" },
		{ __LINE__, "{'source': {'ip': '10.0.0.0/8'}}", "source.ip" },
		{ __LINE__, "{'destination': {'port': 0}}", "destination.port" },
		{ __LINE__, "{'destination': {'port': 65536}}", "destination.port" },
		{ __LINE__, "{'destination': {'port': '80'}}", "destination.port" },
		{ __LINE__, "{'source': {'principal': 5}}", "source.principal" },
		{ __LINE__, "{'source': {'spiffe': 'x'}}", "unknown field source.spiffe" },
		{ __LINE__, "{'extra': 1}", "unknown field" },
		{ __LINE__, "{'request': {'headers': {'x': 1}}}", "request.headers" },
		{ __LINE__, "{'request': {'auth': {'claims': 'x'}}}", "claims" },
		{ __LINE__, "{'request': {'auth': {'audiences': 'x'}}}", "audiences" },
		{ __LINE__, "{'destination': {'service': ''}}", "destination.service" },
	};
	zt_policy_snapshot *s = COMPILE(
		ORG_YAML POL("deny-admin", "acme", "  action: DENY\n  rules: [{to: [{operation: {paths: ['/admin']}}]}]\n")
		POL("all", "acme", "  action: ALLOW\n  rules: [{}]\n"));
	struct rq *r = calloc(1, sizeof *r);
	zt_err e;

	(void)state;
	assert_non_null(r);
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		int rc;

		memset(r, 0, sizeof *r);
		zt_err_clear(&e);
		rc = rq_parse(r, cases[i].req, &e);
		if (!cases[i].err && rc != 0)
			fail_msg("line %d: rejected: %s", cases[i].line, e.msg);
		if (cases[i].err && (rc == 0 || (!strstr(e.msg, cases[i].err) && !strstr(e.rule, cases[i].err))))
			fail_msg("line %d: expected an error about %s, got %d: %s", cases[i].line,
				 cases[i].err, rc, rc ? e.msg : "");
		rq_free(r);
	}
	/* the path attacks of the issue, decided */
	DENIED(s, "{" GET("/admin/../admin") "}", "acme/deny-admin", 0);
	DENIED(s, "{" GET("//admin") "}", "acme/deny-admin", 0);
	DENIED(s, "{" GET("/./admin") "}", "acme/deny-admin", 0);
	DENIED(s, "{" GET("/%61dmin") "}", "acme/deny-admin", 0);
	DENIED(s, "{" GET("/admin?x=/public") "}", "acme/deny-admin", 0);
	ALLOWED(s, "{" GET("/ADMIN") "}", "acme/all", 0);
	ALLOWED(s, "{" GET("/admin/") "}", "acme/all", 0);
	/* the request's strings, as decoded */
	memset(r, 0, sizeof *r);
	assert_int_equal(rq_parse(r, "{'source': {'principal': 'spiffe://example.org/ns/pay/sa/api', 'ip': '10.1.2.3'}, "
				  "'destination': {'service': '" LEDGER "', 'port': 8443}, "
				  "'request': {'method': 'POST', 'path': '/a//b/./c?q=1', 'host': 'ledger', "
				  "'headers': {'x-a': ['1', '2'], 'x-b': '3'}, "
				  "'auth': {'principal': 'iss/sub', 'audiences': ['a', 'b'], 'presenter': 'p', 'claims': {'role': 'x'}}}, "
				  "'connection': {'sni': 'ledger.pay'}}", &e), 0);
	assert_true(r->req.has_http);
	assert_int_equal(r->req.dest_port, 8443);
	assert_int_equal(r->req.path.len, 6);
	assert_memory_equal(r->req.path.p, "/a/b/c", 6);
	assert_int_equal(r->req.nheaders, 3);
	assert_int_equal(r->req.naudiences, 2);
	assert_int_equal(r->req.sni.len, strlen("ledger.pay"));
	assert_int_equal(r->req.auth_presenter.len, 1);
	assert_non_null(r->req.claims);
	rq_free(r);
	memset(r, 0, sizeof *r);
	assert_int_equal(rq_parse(r, "{" FROM("pay/sa/api") "}", &e), 0);
	assert_false(r->req.has_http);
	rq_free(r);
	free(r);
	zt_policy_snapshot_unref(s);
}

/* ---- snapshots ----------------------------------------------------------- */

static void test_snapshot_refs(void **state)
{
	zt_policy_src *src = load(ORG_YAML POL("all", "acme", "  action: ALLOW\n  rules: [{}]\n"));
	zt_policy_snapshot *a, *b;
	zt_err e;

	(void)state;
	a = zt_policy_compile(src, &e);
	b = zt_policy_compile(src, &e);
	assert_non_null(a);
	assert_non_null(b);
	assert_ptr_not_equal(a, b);
	zt_policy_src_free(src); /* the snapshots keep what they need */
	zt_policy_snapshot_ref(a);
	zt_policy_snapshot_unref(a);
	ALLOWED(a, "{" GET("/") "}", "acme/all", 0);
	zt_policy_snapshot_unref(a);
	ALLOWED(b, "{" GET("/") "}", "acme/all", 0);
	zt_policy_snapshot_unref(b);
	zt_policy_snapshot_unref(NULL);
}

/* a test again with g_filler set, under its own name */
#define BIG(f) { #f "_big", f, setup_big, teardown_big, NULL }

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fields_allow),
		cmocka_unit_test(test_fields_deny),
		cmocka_unit_test(test_long_host_deny),
		cmocka_unit_test(test_ip_families),
		cmocka_unit_test(test_org_deny_wins),
		cmocka_unit_test(test_workspace_and_tenant_scopes),
		cmocka_unit_test(test_selectors),
		cmocka_unit_test(test_unknown_destination_and_default),
		cmocka_unit_test(test_deny_before_allow),
		cmocka_unit_test(test_audit),
		cmocka_unit_test(test_dry_run),
		cmocka_unit_test(test_tcp),
		cmocka_unit_test(test_repeated_headers),
		cmocka_unit_test(test_istio_mode),
		cmocka_unit_test(test_istio_root_ns_option),
		cmocka_unit_test(test_istio_with_org),
		cmocka_unit_test(test_caller_index_20),
		cmocka_unit_test(test_caller_index_40),
		cmocka_unit_test(test_diagnostics),
		cmocka_unit_test(test_diagnostics_without_org),
		cmocka_unit_test(test_diagnostic_positions),
		cmocka_unit_test(test_explain),
		cmocka_unit_test(test_request_json),
		cmocka_unit_test(test_snapshot_refs),
		/* the same decisions with many policies per service */
		BIG(test_fields_allow),
		BIG(test_fields_deny),
		BIG(test_long_host_deny),
		BIG(test_org_deny_wins),
		BIG(test_workspace_and_tenant_scopes),
		BIG(test_selectors),
		BIG(test_unknown_destination_and_default),
		BIG(test_deny_before_allow),
		BIG(test_audit),
		BIG(test_dry_run),
		BIG(test_tcp),
		BIG(test_repeated_headers),
		BIG(test_istio_with_org),
		BIG(test_explain),
		BIG(test_request_json),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
