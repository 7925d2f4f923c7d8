/*
 * bench/bench_policy.c: policy decisions at scale, on the workload of
 * ../shared/bench/policy/cedar-bench.mjs.
 *
 * S services; service i (workspace w<i%100>) admits caller
 * ns/w<i%100>/sa/client<i> for GET and POST on /api/v1/<i>/ and below; one
 * organization-wide DENY of /admin*. The 1000 requests come from the same
 * generator as Cedar's, so the allow/deny counts must agree.
 *
 * Prints: zt services=S policies=P load_ms=N compile_ms=N snapshot_mb=N
 *         peak_rss_mb=N decide_ns_p50=N decide_ns_p99=N timer_ns=N allow=N deny=N
 * load is YAML text to the checked model (libyaml, with positions for
 * diagnostics); compile is model to snapshot; snapshot_mb what a running
 * proxy keeps; peak_rss_mb the growth while loading (documents included);
 * timer_ns the median cost of the clock pair around each decision, which
 * the decision figures include.
 * usage: bench_policy SERVICES [DECISIONS]
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "policy/policy.h"

#define W 100

static double mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static long rss_kb(void)
{
	FILE *f = fopen("/proc/self/statm", "r");
	long pages = 0, rss = 0;

	if (f) {
		if (fscanf(f, "%ld %ld", &pages, &rss) != 2)
			rss = 0;
		fclose(f);
	}
	return rss * (sysconf(_SC_PAGESIZE) / 1024);
}

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* Cedar's generator, as JavaScript computes it: `(x * 1103515245 + 12345)
 * >>> 0` multiplies in doubles (rounding past 2^53), then ToUint32 takes
 * the result modulo 2^32. Same numbers, same requests, same counts. */
static double lcg = 12345;
static double rnd(void)
{
	double v = lcg * 1103515245.0 + 12345.0;

	lcg = fmod(v, 4294967296.0);
	return lcg / 4294967296.0;
}

struct req {
	char principal[96], dest[96], path[64];
	const char *method;
	zt_policy_request r;
};

int main(int argc, char **argv)
{
	int S = argc > 1 ? atoi(argv[1]) : 10000;
	long N = argc > 2 ? atol(argv[2]) : 200000;
	zt_buf text;
	zt_err e;
	zt_policy_src *src;
	zt_policy_snapshot *snap;
	struct req *reqs;
	double t0, t1, t2, *lat;
	long rss0, rss_peak, allow = 0, deny = 0;

	if (S < 1 || N < 1) {
		fprintf(stderr, "usage: bench_policy SERVICES [DECISIONS]\n");
		return 2;
	}
	zt_buf_init(&text, (size_t)1 << 31);
	if (zt_buf_appendf(&text, &e,
			   "apiVersion: zt.dev/v1\nkind: Organization\nmetadata: {name: bench}\n"
			   "spec:\n  trustDomain: bench.example\n  tenants:\n    - name: t\n      workspaces:\n") != 0)
		return 1;
	for (int w = 0; w < W; w++) {
		if (zt_buf_appendf(&text, &e, "        - name: w%d\n          services: [", w) != 0)
			return 1;
		for (int i = w; i < S; i += W)
			if (zt_buf_appendf(&text, &e, "%ssvc%d", i == w ? "" : ", ", i) != 0)
				return 1;
		if (zt_buf_appendf(&text, &e, "]\n") != 0)
			return 1;
	}
	if (zt_buf_appendf(&text, &e,
			   "---\napiVersion: zt.dev/v1\nkind: AuthorizationPolicy\n"
			   "metadata: {name: no-admin, scope: bench}\n"
			   "spec: {action: DENY, rules: [{to: [{operation: {paths: [\"/admin*\"]}}]}]}\n") != 0)
		return 1;
	for (int i = 0; i < S; i++)
		if (zt_buf_appendf(&text, &e,
				   "---\napiVersion: zt.dev/v1\nkind: AuthorizationPolicy\n"
				   "metadata: {name: svc%d, scope: bench/t/w%d}\n"
				   "spec: {selector: {services: [svc%d]}, action: ALLOW, rules: [{"
				   "from: [{source: {principals: [\"bench.example/ns/w%d/sa/client%d\"]}}], "
				   "to: [{operation: {methods: [GET, POST], paths: [\"/api/v1/%d/*\"]}}]}]}\n",
				   i, i % W, i, i % W, i, i) != 0)
			return 1;

	rss0 = rss_kb();
	t0 = mono_ns();
	src = zt_policy_src_new(NULL);
	zt_policy_src_add_text(src, "bench.yaml", (const char *)text.p, text.len);
	zt_policy_src_check(src);
	t1 = mono_ns();
	if (zt_policy_src_nerrors(src)) {
		const zt_diag *d = zt_policy_src_diag(src, 0);
		fprintf(stderr, "bench: %s:%d: %s\n", d->file, d->line, d->msg);
		return 1;
	}
	if (!(snap = zt_policy_compile(src, &e))) {
		fprintf(stderr, "bench: %s\n", e.msg);
		return 1;
	}
	t2 = mono_ns();
	rss_peak = rss_kb();
	zt_buf_free(&text, 0);
	/* what a server keeps: the snapshot, not the documents it came from */
	zt_policy_src_free(src);
	src = NULL;

	reqs = calloc(1000, sizeof *reqs);
	for (int k = 0; k < 1000; k++) {
		struct req *q = &reqs[k];
		int i = (int)(rnd() * S), ok = rnd() < 0.5;
		int c = ok ? i : (i + 1) % S;

		snprintf(q->principal, sizeof q->principal, "spiffe://bench.example/ns/w%d/sa/client%d", i % W, c);
		q->method = rnd() < 0.9 ? "GET" : "DELETE";
		snprintf(q->dest, sizeof q->dest, "spiffe://bench.example/ns/w%d/sa/svc%d", i % W, i);
		if (rnd() < 0.05)
			snprintf(q->path, sizeof q->path, "/admin/x");
		else
			snprintf(q->path, sizeof q->path, "/api/v1/%d/items/7", i);
		q->r = (zt_policy_request){
			.source_principal = { q->principal, strlen(q->principal) },
			.dest_service = { q->dest, strlen(q->dest) },
			.has_http = 1,
			.method = { q->method, strlen(q->method) },
			.path = { q->path, strlen(q->path) }, /* already normal */
		};
	}
	lat = malloc((size_t)N * sizeof *lat);
	for (long k = 0; k < N; k++) {
		zt_policy_decision d;
		double a = mono_ns();

		zt_policy_decide(snap, &reqs[k % 1000].r, &d);
		lat[k] = mono_ns() - a;
		d.effect == ZT_POLICY_ALLOW ? allow++ : deny++;
	}
	qsort(lat, (size_t)N, sizeof *lat, cmp_d);
	/* the clock's own cost, measured the same way, for the reader to judge */
	double *tl = malloc(10000 * sizeof *tl);
	for (int k = 0; k < 10000; k++) {
		double a = mono_ns();
		tl[k] = mono_ns() - a;
	}
	qsort(tl, 10000, sizeof *tl, cmp_d);
	printf("zt services=%d policies=%zu load_ms=%.0f compile_ms=%.0f snapshot_mb=%.0f peak_rss_mb=%.0f decide_ns_p50=%.0f decide_ns_p99=%.0f timer_ns=%.0f allow=%ld deny=%ld\n",
	       S, zt_policy_snapshot_npolicies(snap), (t1 - t0) / 1e6, (t2 - t1) / 1e6,
	       (double)zt_policy_snapshot_bytes(snap) / 1048576.0,
	       (double)(rss_peak - rss0) / 1024.0, lat[N / 2], lat[(long)((double)N * 0.99)], tl[5000],
	       allow, deny);
	free(tl);
	zt_policy_snapshot_unref(snap);
	zt_policy_src_free(src);
	free(lat);
	free(reqs);
	return 0;
}
