/*
 * bench/bench_json.c: JSON parses per second on one thread, jansson against
 * core/json.c, for the two documents zt parses most: a JWT claim set (every
 * end-user request at the proxy) and a 4 KB policy document (the control
 * plane's API). Prints CPU microseconds per parse, the median of rounds, each
 * parse followed by its json_decref as in real use:
 *   jansson     json_loadb(JSON_REJECT_DUPLICATES), the library alone;
 *   old         that plus zt's depth walk: zt_json_parse before core/json.c;
 *   zt          zt_json_parse_fast (now zt_json_parse).
 *   bench_json [SECONDS [ROUNDS]]     defaults: 0.5 s per round, 5 rounds
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/core.h"

static double cpu_now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* zt_json_parse's depth check before core/json.c */
static int depth_ok(json_t *v, int depth)
{
	size_t i;
	const char *k;
	json_t *c;

	if (!json_is_array(v) && !json_is_object(v))
		return 1;
	if (depth > ZT_DOC_MAX_DEPTH)
		return 0;
	if (json_is_array(v)) {
		json_array_foreach(v, i, c)
			if (!depth_ok(c, depth + 1))
				return 0;
	} else {
		json_object_foreach(v, k, c)
			if (!depth_ok(c, depth + 1))
				return 0;
	}
	return 1;
}

enum parser { P_JANSSON, P_OLD, P_ZT, P_N };
static const char *const pname[P_N] = {"jansson", "old", "zt"};

static json_t *run(enum parser p, const char *text, size_t len)
{
	json_t *v;

	switch (p) {
	case P_JANSSON:
		return json_loadb(text, len, JSON_REJECT_DUPLICATES, NULL);
	case P_OLD:
		v = json_loadb(text, len, JSON_REJECT_DUPLICATES, NULL);
		if (v && !depth_ok(v, 1)) {
			json_decref(v);
			v = NULL;
		}
		return v;
	default:
		return zt_json_parse_fast(text, len, NULL);
	}
}

/* median CPU microseconds per parse + decref over rounds of `secs` */
static double measure(enum parser p, const char *text, size_t len, double secs, int rounds)
{
	double us[32];
	long n = 1000;

	for (int r = 0; r < rounds; r++) {
		double t0 = cpu_now(), t;
		long done = 0;

		do {
			for (long i = 0; i < n; i++) {
				json_t *v = run(p, text, len);

				if (!v) {
					fprintf(stderr, "bench_json: %s refused the document\n", pname[p]);
					exit(1);
				}
				json_decref(v);
			}
			done += n;
		} while ((t = cpu_now() - t0) < secs);
		us[r] = t * 1e6 / (double)done;
	}
	qsort(us, (size_t)rounds, sizeof us[0], cmp);
	return us[rounds / 2];
}

/* An AuthorizationPolicy with rules added until the text reaches `target`
 * bytes (compact, as the API stores it). Caller frees. */
static char *policy_doc(size_t target)
{
	json_t *doc, *rules;
	char *text = NULL;

	doc = json_pack("{s:s, s:s, s:{s:s, s:s, s:{s:s, s:s}}, s:{s:s, s:[]}}", "apiVersion",
			"zt.dev/v1", "kind", "AuthorizationPolicy", "metadata", "name",
			"payments-ledger", "scope", "acme/payments/pay", "annotations", "owner",
			"team-payments@example.org", "description",
			"Who may call the ledger \xe2\x80\x94 reviewed 2026-01-02", "spec", "action",
			"ALLOW", "rules");
	rules = json_object_get(json_object_get(doc, "spec"), "rules");
	for (int i = 0;; i++) {
		char svc[64], path[64];
		json_t *rule;

		free(text);
		text = json_dumps(doc, JSON_COMPACT);
		if (strlen(text) >= target)
			break;
		snprintf(svc, sizeof svc, "example.org/ns/pay/sa/api-%d", i);
		snprintf(path, sizeof path, "/ledger/v1/accounts/%d/*", i);
		rule = json_pack("{s:[{s:{s:[s, s], s:[s]}}], s:[{s:{s:[s, s], s:[s], s:[i]}}],"
				 " s:[{s:s, s:[s, s]}]}",
				 "from", "source", "principals", svc, "example.org/ns/ops/sa/*",
				 "namespaces", "pay", "to", "operation", "methods", "GET", "POST",
				 "paths", path, "ports", 8443 + i, "when", "key",
				 "request.auth.claims[groups]", "values", "payments", "auditors");
		json_array_append_new(rules, rule);
	}
	json_decref(doc);
	return text;
}

int main(int argc, char **argv)
{
	double secs = argc > 1 ? atof(argv[1]) : 0.5;
	int rounds = argc > 2 ? atoi(argv[2]) : 5;
	char claims[512], *policy;
	int64_t now = (int64_t)time(NULL);
	struct {
		const char *name, *text;
	} docs[2];

	if (secs <= 0 || rounds < 1 || rounds > 32) {
		fprintf(stderr, "usage: bench_json [SECONDS [ROUNDS]]\n");
		return 2;
	}
	/* a typical access token's claims */
	snprintf(claims, sizeof claims,
		 "{\"iss\":\"https://id.example.com\",\"sub\":\"248289761001\","
		 "\"aud\":\"https://api.example.com\",\"exp\":%lld,\"iat\":%lld,\"nbf\":%lld,"
		 "\"jti\":\"6f1c2e9a-77d2-4a43-9d1b-1c5b0b8f0e44\",\"groups\":[\"payments\",\"auditors\"]}",
		 (long long)now + 3600, (long long)now, (long long)now);
	policy = policy_doc(4096);
	docs[0].name = "JWT claims";
	docs[0].text = claims;
	docs[1].name = "policy";
	docs[1].text = policy;

	printf("%-12s %6s %12s %12s %12s %9s\n", "document", "bytes", "jansson us", "old us",
	       "zt us", "speedup");
	for (size_t d = 0; d < sizeof docs / sizeof docs[0]; d++) {
		size_t len = strlen(docs[d].text);
		json_t *a = run(P_JANSSON, docs[d].text, len), *b = run(P_ZT, docs[d].text, len);
		double us[P_N];

		if (!a || !b || !json_equal(a, b)) {
			fprintf(stderr, "bench_json: the parsers disagree on %s\n", docs[d].name);
			return 1;
		}
		json_decref(a);
		json_decref(b);
		for (int p = 0; p < P_N; p++)
			us[p] = measure((enum parser)p, docs[d].text, len, secs, rounds);
		printf("%-12s %6zu %12.3f %12.3f %12.3f %8.2fx\n", docs[d].name, len, us[P_JANSSON],
		       us[P_OLD], us[P_ZT], us[P_JANSSON] / us[P_ZT]);
	}
	free(policy);
	return 0;
}
