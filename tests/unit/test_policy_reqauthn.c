/*
 * Unit tests: RequestAuthentication in the policy engine — loading zt's
 * and Istio's documents, the diagnostics (with their positions), scopes,
 * selectors and inheritance down the hierarchy (zt_policy_jwt_rules), and
 * that AuthorizationPolicy decisions do not change beside them.
 */
#include "policy_fixtures.h"

#include "crypto/crypto.h"

/* a zt RequestAuthentication; body holds the lines under spec: */
#define RA(name, scope, body)                                           \
	"---\napiVersion: zt.dev/v1\nkind: RequestAuthentication\n"     \
	"metadata: {name: " name ", scope: " scope "}\nspec:\n" body

#define ISTIO_RA(api, name, ns, body)                                          \
	"---\napiVersion: security.istio.io/" api "\nkind: RequestAuthentication\n" \
	"metadata: {name: " name ", namespace: " ns "}\nspec:\n" body

/* RFC 7515 A.3's P-256 public key */
#define EC_JWK "{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU\",\"y\":\"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0\",\"kid\":\"a3\"}"
#define INLINE_JWKS "'{\"keys\":[" EC_JWK "]}'"

static const zt_diag *find_diag(const zt_policy_src *src, int level, const char *needle)
{
	for (size_t i = 0; i < zt_policy_src_ndiags(src); i++) {
		const zt_diag *d = zt_policy_src_diag(src, i);

		if ((int)d->level == level && strstr(d->msg, needle))
			return d;
	}
	return NULL;
}

static size_t rules_of(const zt_policy_snapshot *s, const char *dest, const zt_jwt_rule **out)
{
	return zt_policy_jwt_rules(s, dest, strlen(dest), out, ZT_POLICY_MAX_JWT_RULES);
}

/* ---- loading, scopes and inheritance --------------------------------------- */

static const char hierarchy[] = ORG_YAML
	RA("org-idp", "acme",
	   "  jwtRules:\n"
	   "    - issuer: https://idp.acme.test\n"
	   "      audiences: [acme-apis]\n")
	RA("tenant-idp", "acme/payments",
	   "  jwtRules:\n"
	   "    - issuer: https://payments-idp.test\n"
	   "      jwksUri: https://payments-idp.test/keys.json\n"
	   "      audiences: [pay, ledger]\n"
	   "      fromHeaders: [{name: X-Pay-Token, prefix: 'Pay '}, {name: x-other}]\n"
	   "      fromParams: [pt]\n"
	   "      forwardOriginalToken: true\n"
	   "      outputPayloadToHeader: X-Jwt-Payload\n"
	   "      outputClaimToHeaders: [{header: X-Sub, claim: sub}, {header: x-team, claim: org.team}]\n")
	RA("ledger-only", "acme/payments/pay",
	   "  selector: {services: [ledger]}\n"
	   "  jwtRules:\n"
	   "    - issuer: tellers\n"
	   "      audiences: [ledger]\n"
	   "      jwks: " INLINE_JWKS "\n"
	   "    - issuer: http://127.0.0.1:8999\n"
	   "      audiences: [ledger]\n")
	RA("shop-only", "acme/retail/shop",
	   "  jwtRules:\n"
	   "    - issuer: https://shop-idp.test\n"
	   "      audiences: [shop]\n");

static void test_hierarchy(void **state)
{
	const zt_jwt_rule *r[ZT_POLICY_MAX_JWT_RULES];
	zt_policy_snapshot *s;
	size_t n;

	(void)state;
	s = COMPILE(hierarchy);

	/* pay/ledger: the organization's, the tenant's and its workspace's (selected) */
	n = rules_of(s, LEDGER, r);
	assert_int_equal(n, 4);
	assert_string_equal(r[0]->issuer, "https://idp.acme.test");
	assert_string_equal(r[0]->policy, "acme/org-idp");
	assert_int_equal(r[0]->index, 0);
	assert_string_equal(r[1]->issuer, "https://payments-idp.test");
	assert_string_equal(r[1]->policy, "acme/payments/tenant-idp");
	assert_string_equal(r[2]->issuer, "tellers");
	assert_string_equal(r[2]->policy, "acme/payments/pay/ledger-only");
	assert_string_equal(r[3]->issuer, "http://127.0.0.1:8999");
	assert_int_equal(r[3]->index, 1);

	/* Istio's defaults: Authorization "Bearer " (any case) and ?access_token= */
	assert_int_equal(r[0]->nfrom, 2);
	assert_int_equal(r[0]->from[0].from, ZT_JWT_FROM_HEADER);
	assert_string_equal(r[0]->from[0].name, "authorization");
	assert_string_equal(r[0]->from[0].prefix, "Bearer ");
	assert_int_equal(r[0]->from[0].prefix_len, 7);
	assert_true(r[0]->from[0].prefix_ci);
	assert_int_equal(r[0]->from[1].from, ZT_JWT_FROM_PARAM);
	assert_string_equal(r[0]->from[1].name, "access_token");
	/* discovery from the issuer */
	assert_null(r[0]->jwks_uri);
	assert_null(r[0]->jwks);
	assert_string_equal(r[0]->key_source, "oidc:https://idp.acme.test");
	assert_string_equal(r[0]->audiences[0], "acme-apis");
	assert_null(r[0]->audiences[1]);
	assert_int_equal(r[0]->forward, 0);
	assert_null(r[0]->payload_header);
	assert_int_equal(r[0]->nclaim_headers, 0);

	/* everything a rule may say */
	assert_string_equal(r[1]->jwks_uri, "https://payments-idp.test/keys.json");
	assert_string_equal(r[1]->key_source, "uri:https://payments-idp.test/keys.json");
	assert_string_equal(r[1]->audiences[0], "pay");
	assert_string_equal(r[1]->audiences[1], "ledger");
	assert_null(r[1]->audiences[2]);
	assert_int_equal(r[1]->nfrom, 3);
	assert_string_equal(r[1]->from[0].name, "x-pay-token"); /* lowercase */
	assert_string_equal(r[1]->from[0].prefix, "Pay ");
	assert_false(r[1]->from[0].prefix_ci); /* a configured prefix is exact */
	assert_string_equal(r[1]->from[1].name, "x-other");
	assert_string_equal(r[1]->from[1].prefix, "");
	assert_int_equal(r[1]->from[2].from, ZT_JWT_FROM_PARAM);
	assert_string_equal(r[1]->from[2].name, "pt");
	assert_int_equal(r[1]->forward, 1);
	assert_string_equal(r[1]->payload_header, "x-jwt-payload");
	assert_int_equal(r[1]->nclaim_headers, 2);
	assert_string_equal(r[1]->claim_headers[0].header, "x-sub");
	assert_string_equal(r[1]->claim_headers[0].claim, "sub");
	assert_string_equal(r[1]->claim_headers[1].header, "x-team");
	assert_string_equal(r[1]->claim_headers[1].claim, "org.team");

	/* inline keys, parsed at load */
	assert_non_null(r[2]->jwks);
	assert_null(r[2]->key_source);
	assert_int_equal(r[2]->jwks->n, 1);
	assert_string_equal(r[2]->jwks->keys[0].kid, "a3");
	assert_string_equal(r[3]->key_source, "oidc:http://127.0.0.1:8999");

	/* pay/api: not selected by ledger-only */
	n = rules_of(s, "spiffe://example.org/ns/pay/sa/api", r);
	assert_int_equal(n, 2);
	assert_string_equal(r[1]->issuer, "https://payments-idp.test");
	/* pay2/ledger: same tenant, other workspace */
	n = rules_of(s, "spiffe://example.org/ns/pay2/sa/ledger", r);
	assert_int_equal(n, 2);
	/* shop/cart: the organization's and its workspace's */
	n = rules_of(s, "spiffe://example.org/ns/shop/sa/cart", r);
	assert_int_equal(n, 2);
	assert_string_equal(r[0]->issuer, "https://idp.acme.test");
	assert_string_equal(r[1]->issuer, "https://shop-idp.test");
	/* unknown destinations and snapshots: none */
	assert_int_equal(rules_of(s, "spiffe://example.org/ns/pay/sa/nope", r), 0);
	assert_int_equal(rules_of(s, "spiffe://other.org/ns/pay/sa/ledger", r), 0);
	assert_int_equal(rules_of(s, "", r), 0);
	assert_int_equal(zt_policy_jwt_rules(NULL, LEDGER, strlen(LEDGER), r, 4), 0);
	/* max bounds what is written, never what is counted */
	memset(r, 0, sizeof r);
	assert_int_equal(zt_policy_jwt_rules(s, LEDGER, strlen(LEDGER), r, 1), 4);
	assert_non_null(r[0]);
	assert_null(r[1]);
	/* RequestAuthentications are not AuthorizationPolicies */
	assert_int_equal(zt_policy_snapshot_npolicies(s), 0);
	zt_policy_snapshot_unref(s);
}

/* The snapshot owns what the rules point at: the source set goes first. */
static void test_snapshot_outlives_source(void **state)
{
	const zt_jwt_rule *r[4];
	zt_policy_src *src;
	zt_policy_snapshot *s, *s2;
	zt_err e;

	(void)state;
	src = load(hierarchy);
	assert_int_equal(zt_policy_src_nerrors(src), 0);
	s = zt_policy_compile(src, &e);
	s2 = zt_policy_compile(src, &e);
	assert_non_null(s);
	assert_non_null(s2);
	zt_policy_src_free(src);
	zt_policy_snapshot_unref(s);
	assert_int_equal(zt_policy_jwt_rules(s2, LEDGER, strlen(LEDGER), r, 4), 4);
	assert_int_equal(r[2]->jwks->n, 1);
	assert_string_equal(r[3]->issuer, "http://127.0.0.1:8999");
	zt_policy_snapshot_unref(s2);
}

/* ---- Istio's manifests as they are ---------------------------------------- */

static const char istio_docs[] =
	/* the task "Copy JWT Claims to HTTP Headers", verbatim but for the URL */
	"apiVersion: security.istio.io/v1\n"
	"kind: RequestAuthentication\n"
	"metadata:\n"
	"  name: \"jwt-example\"\n"
	"  namespace: foo\n"
	"spec:\n"
	"  selector:\n"
	"    matchLabels:\n"
	"      app: httpbin\n"
	"  jwtRules:\n"
	"  - issuer: \"testing@secure.istio.io\"\n"
	"    jwksUri: \"https://raw.githubusercontent.com/istio/istio/release-1.24/security/tools/jwt/samples/jwks.json\"\n"
	"    outputClaimToHeaders:\n"
	"    - header: \"x-jwt-claim-foo\"\n"
	"      claim: \"foo\"\n"
	ISTIO_RA("v1beta1", "mesh-wide", "istio-system",
		 "  jwtRules:\n"
		 "  - issuer: https://accounts.google.com\n"
		 "    jwks_uri: https://www.googleapis.com/oauth2/v3/certs\n"
		 "    audiences: [mesh]\n")
	ISTIO_RA("v1", "ns-wide", "foo",
		 "  jwtRules:\n"
		 "  - issuer: \"issuer-foo\"\n"
		 "    jwks: " INLINE_JWKS "\n"
		 "    audiences: [foo]\n"
		 "    fromHeaders:\n"
		 "    - name: x-jwt-assertion\n"
		 "      prefix: \"Bearer \"\n")
	ISTIO("v1", "require-jwt", "foo",
	      "  selector: {matchLabels: {app: httpbin}}\n"
	      "  action: ALLOW\n"
	      "  rules:\n"
	      "  - from:\n"
	      "    - source:\n"
	      "        requestPrincipals: [\"testing@secure.istio.io/testing@secure.istio.io\"]\n");

static void test_istio_manifests(void **state)
{
	const zt_jwt_rule *r[ZT_POLICY_MAX_JWT_RULES];
	zt_policy_src *src;
	zt_policy_snapshot *s;
	zt_err e;
	size_t n;

	(void)state;
	src = load(istio_docs);
	if (zt_policy_src_nerrors(src)) {
		dump_diags(src);
		fail_msg("Istio manifests refused");
	}
	/* the missing audiences are pointed out, not refused */
	assert_non_null(find_diag(src, ZT_DIAG_WARNING, "has no audiences"));
	s = zt_policy_compile(src, &e);
	assert_non_null(s);
	zt_policy_src_free(src);

	n = rules_of(s, "spiffe://cluster.local/ns/foo/sa/httpbin", r);
	assert_int_equal(n, 3);
	/* the root namespace first, then the namespace's in load order */
	assert_string_equal(r[0]->issuer, "https://accounts.google.com");
	assert_string_equal(r[0]->policy, "istio-system/mesh-wide");
	assert_string_equal(r[0]->key_source, "uri:https://www.googleapis.com/oauth2/v3/certs");
	assert_string_equal(r[1]->issuer, "testing@secure.istio.io");
	assert_string_equal(r[1]->policy, "foo/jwt-example");
	assert_null(r[1]->audiences);
	assert_int_equal(r[1]->nclaim_headers, 1);
	assert_string_equal(r[1]->claim_headers[0].header, "x-jwt-claim-foo");
	assert_string_equal(r[2]->issuer, "issuer-foo");
	assert_int_equal(r[2]->nfrom, 1);
	assert_string_equal(r[2]->from[0].name, "x-jwt-assertion");
	assert_false(r[2]->from[0].prefix_ci);

	n = rules_of(s, "spiffe://cluster.local/ns/foo/sa/sleep", r);
	assert_int_equal(n, 2); /* not the httpbin one */
	assert_string_equal(r[1]->issuer, "issuer-foo");
	/* a namespace nothing was written for: the mesh-wide rule still applies */
	n = rules_of(s, "spiffe://cluster.local/ns/bar/sa/x", r);
	assert_int_equal(n, 1);
	assert_string_equal(r[0]->issuer, "https://accounts.google.com");
	assert_int_equal(rules_of(s, "spiffe://cluster.local/not/a/workload", r), 0);

	/* the AuthorizationPolicy beside them decides on the request principal */
	ALLOWED(s, "{'destination': {'service': 'spiffe://cluster.local/ns/foo/sa/httpbin'},"
		   " 'request': {'method': 'GET', 'path': '/', 'auth': {'principal': 'testing@secure.istio.io/testing@secure.istio.io'}}}",
		"foo/require-jwt", 0);
	DEFAULT_DENY(s, "{'destination': {'service': 'spiffe://cluster.local/ns/foo/sa/httpbin'},"
			" 'request': {'method': 'GET', 'path': '/'}}");
	zt_policy_snapshot_unref(s);
}

/* In an organization, an Istio namespace is a workspace, and the root namespace the organization. */
static void test_istio_in_org(void **state)
{
	const zt_jwt_rule *r[8];
	zt_policy_snapshot *s;

	(void)state;
	s = COMPILE(ORG_YAML
		    ISTIO_RA("v1", "root", "istio-system", "  jwtRules: [{issuer: https://root.test, audiences: [a]}]\n")
		    ISTIO_RA("v1", "pay", "pay",
			     "  selector: {matchLabels: {app: ledger}}\n"
			     "  jwtRules: [{issuer: https://pay.test, audiences: [a]}]\n"));
	assert_int_equal(rules_of(s, LEDGER, r), 2);
	assert_string_equal(r[0]->policy, "acme/root");
	assert_string_equal(r[1]->policy, "acme/payments/pay/pay");
	assert_int_equal(rules_of(s, "spiffe://example.org/ns/pay/sa/api", r), 1);
	assert_int_equal(rules_of(s, "spiffe://example.org/ns/shop/sa/cart", r), 1);
	zt_policy_snapshot_unref(s);
}

/* ---- AuthorizationPolicy is unchanged beside them -------------------------- */

static void test_authz_unchanged(void **state)
{
#define TELLERS                                                                               \
	POL("tellers", "acme/payments/pay",                                                   \
	    "  selector: {services: [ledger]}\n"                                              \
	    "  action: ALLOW\n"                                                               \
	    "  rules:\n"                                                                      \
	    "    - from: [{source: {requestPrincipals: ['https://idp.acme.test/alice']}}]\n"  \
	    "      when: [{key: 'request.auth.claims[groups]', values: ['tellers']}]\n"       \
	    "    - from: [{source: {notRequestPrincipals: ['*']}}]\n"                         \
	    "      to: [{operation: {paths: ['/public/*']}}]\n")
	const zt_jwt_rule *r[4];
	zt_policy_snapshot *a, *b;

	(void)state;
	a = COMPILE(ORG_YAML TELLERS);
	b = COMPILE(ORG_YAML TELLERS
		    RA("idp", "acme", "  jwtRules: [{issuer: https://idp.acme.test, audiences: [x]}]\n"));
	assert_int_equal(zt_policy_snapshot_npolicies(a), zt_policy_snapshot_npolicies(b));
	assert_int_equal(rules_of(a, LEDGER, r), 0);
	assert_int_equal(rules_of(b, LEDGER, r), 1);
	for (int k = 0; k < 2; k++) {
		const zt_policy_snapshot *s = k ? b : a;

		ALLOWED(s, "{'request': {'method': 'GET', 'path': '/x', 'auth': {'principal': 'https://idp.acme.test/alice', 'claims': {'groups': ['x', 'tellers']}}}}",
			"acme/payments/pay/tellers", 0);
		DEFAULT_DENY(s, "{'request': {'method': 'GET', 'path': '/x', 'auth': {'principal': 'https://idp.acme.test/bob', 'claims': {'groups': ['tellers']}}}}");
		DEFAULT_DENY(s, "{'request': {'method': 'GET', 'path': '/x', 'auth': {'principal': 'https://idp.acme.test/alice', 'claims': {'groups': ['admins']}}}}");
		DEFAULT_DENY(s, "{'request': {'method': 'GET', 'path': '/x'}}");
		/* no token at all: no principal, which notRequestPrincipals ['*'] admits */
		ALLOWED(s, "{'request': {'method': 'GET', 'path': '/public/a'}}", "acme/payments/pay/tellers", 1);
		DEFAULT_DENY(s, "{'request': {'method': 'GET', 'path': '/public/a', 'auth': {'principal': 'https://idp.acme.test/alice'}}}");
	}
	zt_policy_snapshot_unref(a);
	zt_policy_snapshot_unref(b);
}

/* More rules than a caller can hold: counted, so the proxy can refuse. */
static void test_many_rules(void **state)
{
	char *text = NULL, *p;
	size_t cap = 1 << 16, len;
	const zt_jwt_rule *r[ZT_POLICY_MAX_JWT_RULES];
	zt_policy_snapshot *s;

	(void)state;
	text = malloc(cap);
	assert_non_null(text);
	len = (size_t)snprintf(text, cap, "%s", ORG_YAML);
	for (int d = 0; d < 2; d++) {
		p = text + len;
		len += (size_t)snprintf(p, cap - len, RA("many-%d", "acme", "  jwtRules:\n"), d);
		for (int i = 0; i < 40; i++)
			len += (size_t)snprintf(text + len, cap - len,
						"    - {issuer: 'https://i%d-%d.test', audiences: [a]}\n", d, i);
	}
	s = COMPILE(text);
	assert_int_equal(rules_of(s, LEDGER, r), 80);
	zt_policy_snapshot_unref(s);
	free(text);
}

/* ---- diagnostics ---------------------------------------------------------- */

struct dcase {
	int line;
	const char *text;
	int level; /* ZT_DIAG_ERROR, ZT_DIAG_WARNING, or -1: no such diagnostic */
	const char *needle;
};

#define DERR(text, needle) { __LINE__, text, ZT_DIAG_ERROR, needle }
#define DWARN(text, needle) { __LINE__, text, ZT_DIAG_WARNING, needle }
#define DNONE(text, needle) { __LINE__, text, -1, needle }

#define RULE(body) RA("r", "acme/payments/pay", "  jwtRules:\n    - " body "\n")
#define GOOD "issuer: https://idp.test, audiences: [a]"

static const struct dcase diag_cases[] = {
	/* what a good rule looks like: no diagnostic at all */
	DNONE(RULE("{" GOOD "}"), ""),
	/* unknown fields and those not supported yet */
	DERR(RULE("{" GOOD ", bogus: 1}"), "unknown field \"bogus\" in a jwtRule"),
	DERR(RULE("{" GOOD ", fromCookies: [session]}"), "fromCookies is not supported yet"),
	DERR(RULE("{" GOOD ", timeout: 5s}"), "timeout is not supported yet"),
	DERR(RA("r", "acme", "  selector: {services: [ledger]}\n  jwtRules: [{" GOOD "}]\n  rules: [{}]\n"),
	     "unknown field \"rules\""),
	DERR(RULE("{" GOOD ", fromHeaders: [{name: x-t, prefx: 'B '}]}"), "unknown field \"prefx\""),
	DERR(RULE("{" GOOD ", outputClaimToHeaders: [{header: x-a, claim: a, extra: 1}]}"), "unknown field \"extra\""),
	/* the issuer */
	DERR(RULE("{audiences: [a], jwksUri: 'https://idp.test/k'}"), "issuer is required"),
	DERR(RULE("{issuer: '', audiences: [a]}"), "issuer is required"),
	DERR(RULE("{issuer: 'https://idp.test/\"q', audiences: [a]}"), "issuer is required"),
	DERR(RULE("{issuer: [x], audiences: [a]}"), "issuer is required"),
	DERR(RA("r", "acme", "  jwtRules:\n    - {" GOOD "}\n    - {" GOOD ", fromParams: [t]}\n"),
	     "has a jwtRule already"),
	/* where the keys are */
	DERR(RULE("{issuer: tellers, audiences: [a]}"), "cannot be discovered"),
	DERR(RULE("{issuer: 'http://idp.test', audiences: [a]}"), "plain http://"),
	DNONE(RULE("{issuer: 'http://127.0.0.1:9000', audiences: [a]}"), "plain http://"),
	DNONE(RULE("{issuer: 'http://localhost:9000', audiences: [a]}"), "plain http://"),
	DERR(RULE("{" GOOD ", jwksUri: 'ftp://idp.test/keys'}"), "jwksUri is not an https:// URL"),
	DERR(RULE("{" GOOD ", jwksUri: 'http://10.1.2.3/keys'}"), "plain http://"),
	DERR(RULE("{" GOOD ", jwksUri: 'https://idp.test/k#x'}"), "fragment"),
	DERR(RULE("{" GOOD ", jwksUri: 'https://idp.test/k k'}"), "a space"),
	DERR(RULE("{" GOOD ", jwksUri: 7}"), "is a URL string"),
	DERR(RULE("{" GOOD ", jwksUri: 'https://a.test/k', jwks_uri: 'https://a.test/k'}"), "same field"),
	DERR(RULE("{" GOOD ", jwksUri: 'https://a.test/k', jwks: " INLINE_JWKS "}"), "not both"),
	DERR(RULE("{" GOOD ", jwks: 'not json'}"), "jwks: "),
	DERR(RULE("{" GOOD ", jwks: {keys: []}}"), "as a JSON string"),
	DERR(RULE("{" GOOD ", jwks: '{\"keys\":[{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"AA\",\"y\":\"AA\"}]}'}"),
	     "jwks: key 0"),
	DERR(RULE("{" GOOD ", jwks: '{\"keys\":[]}'}"), "none of its 0 key(s)"),
	/* a symmetric key is never taken from a policy */
	DERR(RULE("{" GOOD ", jwks: '{\"keys\":[{\"kty\":\"oct\",\"k\":\"c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0MTI\"}]}'}"),
	     "none of its 1 key(s)"),
	DNONE(RULE("{" GOOD ", jwks: " INLINE_JWKS "}"), "jwks"),
	/* audiences */
	DWARN(RULE("{issuer: https://idp.test}"), "has no audiences"),
	DERR(RULE("{issuer: https://idp.test, audiences: []}"), "empty list"),
	DERR(RULE("{issuer: https://idp.test, audiences: ['']}"), "non-empty string"),
	DERR(RULE("{issuer: https://idp.test, audiences: a}"), "list of strings"),
	/* token locations */
	DERR(RULE("{" GOOD ", fromHeaders: []}"), "fromHeaders is a list"),
	DERR(RULE("{" GOOD ", fromHeaders: [{prefix: 'B '}]}"), "fromHeaders[0].name"),
	DERR(RULE("{" GOOD ", fromHeaders: [{name: 'x token'}]}"), "fromHeaders[0].name"),
	DERR(RULE("{" GOOD ", fromHeaders: [{name: Host}]}"), "written by the proxy or frames"),
	DERR(RULE("{" GOOD ", fromHeaders: [{name: content-length}]}"), "written by the proxy or frames"),
	DERR(RULE("{" GOOD ", fromHeaders: [{name: x-t, prefix: \"a\\nb\"}]}"), "prefix is text"),
	DERR(RULE("{" GOOD ", fromParams: []}"), "fromParams is a list"),
	DERR(RULE("{" GOOD ", fromParams: ['a=b']}"), "fromParams[0]"),
	DERR(RULE("{" GOOD ", fromParams: ['']}"), "fromParams[0]"),
	/* what it forwards */
	DERR(RULE("{" GOOD ", forwardOriginalToken: 'yes'}"), "forwardOriginalToken is true or false"),
	DERR(RULE("{" GOOD ", outputPayloadToHeader: 'x payload'}"), "outputPayloadToHeader is an HTTP header name"),
	DERR(RULE("{" GOOD ", outputPayloadToHeader: X-Forwarded-Client-Cert}"), "written by the proxy"),
	DERR(RULE("{" GOOD ", outputPayloadToHeader: authorization}"), "where this rule reads tokens from"),
	DERR(RULE("{" GOOD ", outputClaimToHeaders: []}"), "outputClaimToHeaders is a list"),
	DERR(RULE("{" GOOD ", outputClaimToHeaders: [{claim: sub}]}"), "outputClaimToHeaders.header"),
	DERR(RULE("{" GOOD ", outputClaimToHeaders: [{header: x-sub}]}"), "claim names a claim"),
	DERR(RULE("{" GOOD ", outputPayloadToHeader: x-p, outputClaimToHeaders: [{header: X-P, claim: sub}]}"),
	     "is outputPayloadToHeader already"),
	/* the document */
	DERR(RA("r", "acme", "  jwtRules: {issuer: x}\n"), "jwtRules is a list"),
	DERR(RA("r", "acme", "  jwtRules: [7]\n"), "is a mapping with an issuer"),
	DWARN(RA("r", "acme", "  jwtRules: []\n"), "without jwtRules checks nothing"),
	DWARN(RA("r", "acme", "  selector: {services: [ledger]}\n"), "without jwtRules checks nothing"),
	DERR(RA("r", "acme/nope", "  jwtRules: [{" GOOD "}]\n"), "not in the organization"),
	DERR("---\napiVersion: zt.dev/v1\nkind: RequestAuthentication\nmetadata: {name: r}\nspec: {jwtRules: [{" GOOD "}]}\n",
	     "metadata.scope is required"),
	DERR("---\napiVersion: zt.dev/v1\nkind: RequestAuthentication\nmetadata: {scope: acme}\nspec: {}\n",
	     "a RequestAuthentication needs metadata.name"),
	DERR("---\napiVersion: zt.dev/v2\nkind: RequestAuthentication\nmetadata: {name: r, scope: acme}\nspec: {}\n",
	     "not one zt reads for RequestAuthentication"),
	DERR("---\napiVersion: zt.dev/v1\nkind: RequestAuthentication\nmetadata: {name: r, scope: acme}\nspec: [1]\n",
	     "spec must be a mapping"),
	DERR(RA("r", "acme", "  jwtRules: [{" GOOD "}]\n") RA("r", "acme", "  jwtRules: [{" GOOD "}]\n"),
	     "RequestAuthentication acme/r is defined twice"),
	/* a policy and a RequestAuthentication may share a name, as in Kubernetes */
	DNONE(RA("r", "acme", "  jwtRules: [{" GOOD "}]\n") POL("r", "acme", "  action: ALLOW\n  rules: [{}]\n"),
	      "defined twice"),
	DERR(RA("r", "acme", "  selector: {services: []}\n  jwtRules: [{" GOOD "}]\n"), "selector.services must be"),
	DWARN(RA("r", "acme/retail", "  selector: {services: [ledger]}\n  jwtRules: [{" GOOD "}]\n"),
	      "not in this policy's scope"),
	DWARN("---\napiVersion: zt.dev/v1\nkind: RequestAuthentication\n"
	      "metadata: {name: r, scope: acme, annotations: {zt.dev/dry-run: 'true'}}\nspec: {jwtRules: [{" GOOD "}]}\n",
	      "applies to AuthorizationPolicy only"),
	DWARN("---\napiVersion: zt.dev/v1\nkind: RequestAuthentication\n"
	      "metadata: {name: r, scope: acme, owner: me}\nspec: {jwtRules: [{" GOOD "}]}\n",
	      "unknown field \"owner\" in metadata"),
	/* Istio's */
	DERR(ISTIO_RA("v1", "r", "pay", "  targetRef: {kind: Gateway, name: gw}\n  jwtRules: [{" GOOD "}]\n"),
	     "targetRef/targetRefs are not supported"),
	DERR(ISTIO_RA("v1", "r", "pay", "  selector: {matchLabels: {app: ledger, version: v1}}\n  jwtRules: [{" GOOD "}]\n"),
	     "the app label only"),
	DERR(ISTIO_RA("v1", "r", "nope", "  jwtRules: [{" GOOD "}]\n"), "not a workspace of organization acme"),
	DNONE(ISTIO_RA("v1beta1", "r", "pay", "  jwtRules: [{" GOOD "}]\n"), "deny by default"),
};

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

		if (asprintf(&text, "%s%s", ORG_YAML, c->text) < 0)
			abort();
		src = load(text);
		if (c->level < 0 && c->needle[0] == '\0') {
			if (zt_policy_src_ndiags(src)) {
				dump_diags(src);
				fail_msg("line %d: diagnostics where none were expected", c->line);
			}
		} else {
			d = find_diag(src, c->level < 0 ? ZT_DIAG_ERROR : c->level, c->needle);
			if (c->level < 0 && !d)
				d = find_diag(src, ZT_DIAG_WARNING, c->needle);
			if (c->level < 0 ? d != NULL : d == NULL) {
				dump_diags(src);
				fail_msg("line %d: %s diagnostic containing \"%s\"", c->line,
					 c->level < 0 ? "unexpected" : "missing", c->needle);
			}
			if (d && d->line <= 13) /* it points into the document, not the Organization */
				fail_msg("line %d: diagnostic at line %d: %s", c->line, d->line, d->msg);
		}
		s = zt_policy_compile(src, &e);
		if (c->level == ZT_DIAG_ERROR) {
			if (s)
				fail_msg("line %d: a set with errors compiled", c->line);
		} else {
			if (zt_policy_src_nerrors(src)) {
				dump_diags(src);
				fail_msg("line %d: errors where none were expected", c->line);
			}
			assert_non_null(s);
			zt_policy_snapshot_unref(s);
		}
		zt_policy_src_free(src);
		free(text);
	}
}

/* Diagnostics point at the value (or the key) that is wrong. */
static void test_positions(void **state)
{
	static const char text[] = ORG_YAML
		"---\n"                                         /* 14 */
		"apiVersion: zt.dev/v1\n"                       /* 15 */
		"kind: RequestAuthentication\n"                 /* 16 */
		"metadata: {name: r, scope: acme}\n"            /* 17 */
		"spec:\n"                                       /* 18 */
		"  jwtRules:\n"                                 /* 19 */
		"    - issuer: https://idp.test\n"              /* 20 */
		"      audiences: [a]\n"                        /* 21 */
		"      jwksUri: ftp://idp.test/keys\n"          /* 22 */
		"    - issuer: https://other.test\n"            /* 23 */
		"      audiences: [a]\n"                        /* 24 */
		"      fromCookies: [session]\n";               /* 25 */
	zt_policy_src *src = load(text);
	const zt_diag *d;

	(void)state;
	assert_int_equal(zt_policy_src_nerrors(src), 2);
	d = find_diag(src, ZT_DIAG_ERROR, "jwksUri is not an https:// URL");
	assert_non_null(d);
	assert_string_equal(d->file, "t.yaml");
	assert_int_equal(d->line, 22);
	assert_int_equal(d->column, 16);
	d = find_diag(src, ZT_DIAG_ERROR, "fromCookies");
	assert_non_null(d);
	assert_int_equal(d->line, 25);
	assert_int_equal(d->column, 7); /* the key */
	zt_policy_src_free(src);
}

/* Inline keys verify tokens once loaded: the proxy uses them as they are. */
static void test_inline_keys_verify(void **state)
{
	EVP_PKEY *key = tu_key();
	json_t *jwk = json_object(), *claims;
	zt_buf tok;
	zt_err e;
	char *text = NULL, *jwks, *js;
	const zt_jwt_rule *r[2];
	zt_policy_snapshot *s;
	zt_jwt t;

	(void)state;
	assert_int_equal(zt_jwk_set_public(key, jwk, &e), 0);
	json_object_set_new(jwk, "kid", json_string("k1"));
	js = json_dumps(jwk, JSON_COMPACT);
	assert_true(asprintf(&jwks, "{\"keys\":[%s]}", js) > 0);
	assert_true(asprintf(&text, "%s" RA("r", "acme", "  jwtRules:\n    - {issuer: tellers, audiences: [ledger], jwks: '%s'}\n"),
			     ORG_YAML, jwks) > 0);
	s = COMPILE(text);
	assert_int_equal(rules_of(s, LEDGER, r), 1);
	claims = json_pack("{s:s,s:s,s:s,s:I}", "iss", "tellers", "sub", "alice", "aud", "ledger", "exp",
			   (json_int_t)zt_now() + 300);
	zt_buf_init(&tok, 1 << 16);
	assert_int_equal(zt_jwt_sign(key, "k1", claims, &tok, &e), 0);
	zt_jwt_rules jr = { .issuer = r[0]->issuer, .audiences = r[0]->audiences, .leeway = -1 };
	assert_int_equal(zt_jwt_verify((const char *)tok.p, tok.len, r[0]->jwks, &jr, &t, &e), 0);
	assert_string_equal(t.sub, "alice");
	zt_jwt_free(&t);
	zt_buf_free(&tok, 0);
	json_decref(claims);
	zt_policy_snapshot_unref(s);
	free(text);
	free(jwks);
	free(js);
	json_decref(jwk);
	EVP_PKEY_free(key);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hierarchy),
		cmocka_unit_test(test_snapshot_outlives_source),
		cmocka_unit_test(test_istio_manifests),
		cmocka_unit_test(test_istio_in_org),
		cmocka_unit_test(test_authz_unchanged),
		cmocka_unit_test(test_many_rules),
		cmocka_unit_test(test_diagnostics),
		cmocka_unit_test(test_positions),
		cmocka_unit_test(test_inline_keys_verify),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
