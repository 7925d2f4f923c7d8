/* Unit tests: the policy engine — Istio mode, the caller index, explanations, requests. */
#include "policy_fixtures.h"

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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_istio_mode),
		cmocka_unit_test(test_istio_root_ns_option),
		cmocka_unit_test(test_istio_with_org),
		cmocka_unit_test(test_caller_index_20),
		cmocka_unit_test(test_caller_index_40),
		cmocka_unit_test(test_explain),
		cmocka_unit_test(test_request_json),
		/* the same decisions with many policies per service */
		BIG(test_istio_with_org),
		BIG(test_explain),
		BIG(test_request_json),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
