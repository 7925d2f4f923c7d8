/*
 * Fuzz target: the policy loader (YAML/JSON documents to the checked model:
 * AuthorizationPolicy, RequestAuthentication...), the compiler, decisions,
 * explanations, the jwtRules of a destination, and the request reader.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "policy/policy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void decide_some(const zt_policy_snapshot *snap)
{
	static const zt_header hdrs[] = {
		{ { "x-role", 6 }, { "teller", 6 } },
		{ { "X-Role", 6 }, { "admin", 5 } },
	};
	static const zt_str auds[] = { { "ledger", 6 } };
	zt_policy_request reqs[2] = {
		{
			.source_principal = { "spiffe://example.org/ns/pay/sa/api", 34 },
			.source_ip = { "10.1.2.3", 8 },
			.dest_service = { "spiffe://example.org/ns/pay/sa/ledger", 37 },
			.dest_port = 8443,
			.has_http = 1,
			.method = { "POST", 4 },
			.path = { "/entries", 8 },
			.host = { "Ledger:8443", 11 },
			.headers = hdrs,
			.nheaders = 2,
			.auth_principal = { "https://idp/u1", 14 },
			.audiences = auds,
			.naudiences = 1,
		},
		{
			/* a connection, without HTTP */
			.source_principal = { "spiffe://example.org/ns/shop/sa/web", 35 },
			.dest_service = { "spiffe://example.org/ns/default/sa/httpbin", 42 },
			.dest_port = 80,
		},
	};
	zt_policy_decision d;
	zt_buf out;
	zt_err e;

	/* the end-user token rules each destination gets (RequestAuthentication) */
	const zt_jwt_rule *rules[ZT_POLICY_MAX_JWT_RULES];

	for (int i = 0; i < 2; i++) {
		size_t n = zt_policy_jwt_rules(snap, reqs[i].dest_service.p, reqs[i].dest_service.len, rules,
					       ZT_POLICY_MAX_JWT_RULES);

		for (size_t k = 0; k < n && k < ZT_POLICY_MAX_JWT_RULES; k++)
			if (!rules[k]->issuer || !rules[k]->issuer[0])
				abort(); /* a jwtRule always names its issuer */
	}
	for (int i = 0; i < 2; i++) {
		zt_policy_decide(snap, &reqs[i], &d);
		if (!d.reason && !d.by.policy)
			abort(); /* every decision says why */
		zt_buf_init(&out, 1u << 20);
		(void)zt_policy_explain(snap, &reqs[i], &d, &out, &e);
		zt_buf_free(&out, 0);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	zt_policy_src *src = zt_policy_src_new(NULL);
	zt_policy_snapshot *snap;
	zt_err e;

	if (!src)
		return 0;
	zt_policy_src_add_text(src, (size > 0 && data[0] == '{') ? "in.json" : "in.yaml",
			       (const char *)data, size);
	zt_policy_src_check(src);
	for (size_t i = 0; i < zt_policy_src_ndiags(src); i++)
		if (!zt_policy_src_diag(src, i)->msg[0])
			abort(); /* every diagnostic says something */
	if (zt_policy_src_nerrors(src) == 0 && (snap = zt_policy_compile(src, &e)) != NULL) {
		decide_some(snap);
		zt_policy_snapshot_unref(snap);
	}
	zt_policy_src_free(src);

	/* the same bytes as a request document */
	json_t *doc = zt_json_parse((const char *)data, size, &e);
	if (doc) {
		zt_policy_request req;
		zt_header h[16];
		zt_str a[8];
		char path[ZT_PATH_MAX + 1];

		(void)zt_policy_request_from_json(doc, &req, h, 16, a, 8, path, sizeof path, &e);
		json_decref(doc);
	}
	return 0;
}
