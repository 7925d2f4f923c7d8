/* Unit tests: swapping policy snapshots under concurrent readers (zt_policy_holder). */
#include "testutil.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/core.h"
#include "policy/policy.h"

#define ORG_YAML                                          \
	"apiVersion: zt.dev/v1\n"                         \
	"kind: Organization\n"                            \
	"metadata: {name: acme}\n"                        \
	"spec:\n"                                         \
	"  trustDomain: example.org\n"                    \
	"  tenants:\n"                                    \
	"    - name: payments\n"                          \
	"      workspaces:\n"                             \
	"        - {name: pay, services: [api, ledger]}\n"

#define ALLOW_ALL                                                               \
	ORG_YAML "---\napiVersion: zt.dev/v1\nkind: AuthorizationPolicy\n"      \
		 "metadata: {name: allow-all, scope: acme}\n"                    \
		 "spec: {action: ALLOW, rules: [{}]}\n"

#define DENY_ALL                                                                \
	ORG_YAML "---\napiVersion: zt.dev/v1\nkind: AuthorizationPolicy\n"      \
		 "metadata: {name: deny-all, scope: acme}\n"                     \
		 "spec: {action: DENY, rules: [{}]}\n"                            \
		 "---\napiVersion: zt.dev/v1\nkind: AuthorizationPolicy\n"       \
		 "metadata: {name: allow-get, scope: acme/payments/pay}\n"       \
		 "spec: {action: ALLOW, rules: [{to: [{operation: {methods: [GET]}}]}]}\n"

#define NREADERS 4
#define NSWAPS 50
#define SWAP_EVERY_NS 6000000L /* 50 swaps in about 300 ms */

/* Compiles a new snapshot; the source set is freed at once, so the
 * snapshot (and the model it shares) must stand on its own. */
static zt_policy_snapshot *fresh(int allow)
{
	const char *text = allow ? ALLOW_ALL : DENY_ALL;
	zt_policy_src *src = zt_policy_src_new(NULL);
	zt_policy_snapshot *s;
	zt_err e;

	assert_non_null(src);
	zt_policy_src_add_text(src, "t.yaml", text, strlen(text));
	assert_int_equal(zt_policy_src_check(src), 0);
	s = zt_policy_compile(src, &e);
	if (!s)
		fail_msg("compile: %s", e.msg);
	zt_policy_src_free(src);
	return s;
}

struct request {
	json_t *doc;
	zt_policy_request req;
	zt_header headers[8];
	zt_str auds[4];
	char path[256];
};

static void request_make(struct request *r)
{
	static const char text[] =
		"{\"source\": {\"principal\": \"spiffe://example.org/ns/pay/sa/api\", \"ip\": \"10.0.0.1\"},"
		" \"destination\": {\"service\": \"spiffe://example.org/ns/pay/sa/ledger\", \"port\": 8443},"
		" \"request\": {\"method\": \"GET\", \"path\": \"/a/../b\", \"host\": \"ledger\"}}";
	zt_err e;

	r->doc = zt_json_parse(text, sizeof text - 1, &e);
	assert_non_null(r->doc);
	assert_int_equal(zt_policy_request_from_json(r->doc, &r->req, r->headers, 8, r->auds, 4,
						     r->path, sizeof r->path, &e),
			 0);
}

/* 1: the decision of the allow-all set; 0: of the deny-all set; -1: neither */
static int classify(const zt_policy_decision *d)
{
	if (d->effect == ZT_POLICY_ALLOW && d->by.policy &&
	    strcmp(d->by.policy, "acme/allow-all") == 0 && d->by.rule == 0)
		return 1;
	if (d->effect == ZT_POLICY_DENY && d->by.policy && strcmp(d->by.policy, "acme/deny-all") == 0 &&
	    d->by.rule == 0)
		return 0;
	return -1;
}

struct reader {
	pthread_t t;
	zt_policy_holder *h;
	const zt_policy_request *req;
	atomic_int *stop;
	long n, nallow, ndeny, bad;
	char why[256];
};

static void *reader_main(void *arg)
{
	struct reader *r = arg;

	while (!atomic_load(r->stop)) {
		zt_policy_snapshot *s = zt_policy_holder_acquire(r->h);
		zt_policy_decision d, again;
		int k;

		zt_policy_decide(s, r->req, &d);
		k = classify(&d);
		/* a snapshot is immutable: deciding again on it gives the same */
		zt_policy_decide(s, r->req, &again);
		if (k < 0 || classify(&again) != k) {
			if (!r->bad)
				snprintf(r->why, sizeof r->why, "%s by %s rule %d, then %s by %s",
					 d.effect == ZT_POLICY_ALLOW ? "ALLOW" : "DENY",
					 d.by.policy ? d.by.policy : "(none)", d.by.rule,
					 again.effect == ZT_POLICY_ALLOW ? "ALLOW" : "DENY",
					 again.by.policy ? again.by.policy : "(none)");
			r->bad++;
		} else if (k) {
			r->nallow++;
		} else {
			r->ndeny++;
		}
		r->n++;
		zt_policy_snapshot_unref(s);
	}
	return NULL;
}

static void test_holder_swap_under_readers(void **state)
{
	struct reader rd[NREADERS];
	struct request *rq = calloc(1, sizeof *rq);
	zt_policy_holder *h;
	atomic_int stop;
	long total = 0, nallow = 0, ndeny = 0;
	double max_swap_ms = 0;
	zt_policy_snapshot *last;
	zt_policy_decision d;

	(void)state;
	assert_non_null(rq);
	request_make(rq);
	atomic_init(&stop, 0);
	h = zt_policy_holder_new(fresh(1));
	assert_non_null(h);
	for (int i = 0; i < NREADERS; i++) {
		memset(&rd[i], 0, sizeof rd[i]);
		rd[i].h = h;
		rd[i].req = &rq->req;
		rd[i].stop = &stop;
		assert_int_equal(pthread_create(&rd[i].t, NULL, reader_main, &rd[i]), 0);
	}
	/* swap 50 freshly compiled snapshots in, deny-all and allow-all in turn */
	for (int i = 0; i < NSWAPS; i++) {
		struct timespec ts = { 0, SWAP_EVERY_NS }, t0, t1;
		zt_policy_snapshot *next = fresh(i % 2);
		double ms;

		nanosleep(&ts, NULL);
		clock_gettime(CLOCK_MONOTONIC, &t0);
		zt_policy_holder_swap(h, next);
		clock_gettime(CLOCK_MONOTONIC, &t1);
		ms = (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
		if (ms > max_swap_ms)
			max_swap_ms = ms;
	}
	atomic_store(&stop, 1);
	for (int i = 0; i < NREADERS; i++) {
		assert_int_equal(pthread_join(rd[i].t, NULL), 0);
		if (rd[i].bad)
			fail_msg("reader %d: %ld inconsistent decisions, first: %s", i, rd[i].bad, rd[i].why);
		assert_int_equal(rd[i].n, rd[i].nallow + rd[i].ndeny);
		total += rd[i].n;
		nallow += rd[i].nallow;
		ndeny += rd[i].ndeny;
	}
	print_message("%ld decisions: %ld allowed, %ld denied; longest swap %.3f ms\n", total, nallow,
		      ndeny, max_swap_ms);
	/* the readers saw both sets */
	assert_true(nallow > 0);
	assert_true(ndeny > 0);
	/* the last swap (i = 49) installed allow-all */
	last = zt_policy_holder_acquire(h);
	zt_policy_decide(last, &rq->req, &d);
	assert_int_equal(classify(&d), 1);
	zt_policy_snapshot_unref(last);
	zt_policy_holder_free(h);
	json_decref(rq->doc);
	free(rq);
}

/* A reference taken before a swap stays valid, and keeps its decisions. */
static void test_holder_old_reference(void **state)
{
	struct request *rq = calloc(1, sizeof *rq);
	zt_policy_holder *h;
	zt_policy_snapshot *a, *b, *c;
	zt_policy_decision d;

	(void)state;
	assert_non_null(rq);
	request_make(rq);
	h = zt_policy_holder_new(fresh(1));
	assert_non_null(h);
	a = zt_policy_holder_acquire(h);
	zt_policy_holder_swap(h, fresh(0));
	b = zt_policy_holder_acquire(h);
	assert_ptr_not_equal(a, b);
	zt_policy_decide(a, &rq->req, &d);
	assert_int_equal(classify(&d), 1);
	zt_policy_decide(b, &rq->req, &d);
	assert_int_equal(classify(&d), 0);
	/* the holder's own reference to b is dropped by the next swap, ours is not */
	zt_policy_holder_swap(h, fresh(1));
	zt_policy_decide(b, &rq->req, &d);
	assert_int_equal(classify(&d), 0);
	c = zt_policy_holder_acquire(h);
	zt_policy_decide(c, &rq->req, &d);
	assert_int_equal(classify(&d), 1);
	zt_policy_snapshot_unref(a);
	zt_policy_snapshot_unref(b);
	zt_policy_snapshot_unref(c);
	zt_policy_holder_free(h);
	json_decref(rq->doc);
	free(rq);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_holder_old_reference),
		cmocka_unit_test(test_holder_swap_under_readers),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
