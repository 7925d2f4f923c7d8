/* Unit tests: the policy engine — loader diagnostics and their positions. */
#include "policy_fixtures.h"

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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_diagnostics),
		cmocka_unit_test(test_diagnostics_without_org),
		cmocka_unit_test(test_diagnostic_positions),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
