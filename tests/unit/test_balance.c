/* Unit tests: upstream choice and passive health (proxy/balance.c), and the
 * token buckets of rateLimits (proxy/ratelimit.c). */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/proxy_int.h"

static struct px_listener *listener(size_t n, enum px_balance b)
{
	struct px_listener *l = calloc(1, sizeof *l);

	assert_non_null(l);
	l->targets = calloc(n, sizeof *l->targets);
	assert_non_null(l->targets);
	l->ntargets = n;
	l->balance = b;
	l->eject_after = 3;
	l->eject_ms = 10000;
	snprintf(l->name, sizeof l->name, "t");
	for (size_t i = 0; i < n; i++)
		snprintf(l->targets[i].text, sizeof l->targets[i].text, "10.0.0.%zu:80", i);
	return l;
}

static void listener_free(struct px_listener *l)
{
	free(l->targets);
	free(l);
}

static void test_round_robin_takes_turns(void **state)
{
	struct px_listener *l = listener(3, PX_ROUND_ROBIN);
	int seen[3] = { 0 };

	(void)state;
	for (int i = 0; i < 30; i++)
		seen[px_pick_target(l, -1, 1000)]++;
	assert_int_equal(seen[0], 10);
	assert_int_equal(seen[1], 10);
	assert_int_equal(seen[2], 10);
	listener_free(l);
}

static void test_failures_eject_then_readmit(void **state)
{
	struct px_listener *l = listener(3, PX_ROUND_ROBIN);

	(void)state;
	/* two failures are not enough; a success clears them */
	px_target_failed(l, 1, 1000);
	px_target_failed(l, 1, 1000);
	px_target_ok(l, 1);
	px_target_failed(l, 1, 1000);
	px_target_failed(l, 1, 1000);
	for (int i = 0; i < 6; i++)
		if (px_pick_target(l, -1, 1000) == 1)
			goto picked;
	fail_msg("target 1 should still be in service");
picked:
	px_target_failed(l, 1, 1000); /* the third in a row: out for 10 s */
	for (int i = 0; i < 30; i++)
		assert_int_not_equal(px_pick_target(l, -1, 5000), 1);
	/* back once ejectFor has passed */
	for (int i = 0; i < 6; i++)
		if (px_pick_target(l, -1, 11001) == 1) {
			listener_free(l);
			return;
		}
	fail_msg("target 1 should be back after ejectFor");
}

static void test_all_ejected_uses_the_first_to_return(void **state)
{
	struct px_listener *l = listener(2, PX_LEAST_REQUEST);

	(void)state;
	for (int i = 0; i < 3; i++)
		px_target_failed(l, 0, 2000); /* out until 12000 */
	for (int i = 0; i < 3; i++)
		px_target_failed(l, 1, 1000); /* out until 11000 */
	assert_int_equal(px_pick_target(l, -1, 3000), 1);
	listener_free(l);
}

static void test_avoid_and_max_requests(void **state)
{
	struct px_listener *l = listener(2, PX_ROUND_ROBIN);

	(void)state;
	for (int i = 0; i < 10; i++)
		assert_int_equal(px_pick_target(l, 0, 1000), 1); /* a retry goes elsewhere */
	l->max_requests = 2;
	atomic_store(&l->targets[1].outstanding, 2);
	for (int i = 0; i < 10; i++)
		assert_int_equal(px_pick_target(l, -1, 1000), 0);
	atomic_store(&l->targets[0].outstanding, 2);
	assert_int_equal(px_pick_target(l, -1, 1000), -1); /* all full: the caller answers 503 */
	listener_free(l);
}

static void test_least_request_prefers_the_idle(void **state)
{
	struct px_listener *l = listener(2, PX_LEAST_REQUEST);
	int idle = 0;

	(void)state;
	atomic_store(&l->targets[0].outstanding, 50);
	for (int i = 0; i < 100; i++)
		idle += px_pick_target(l, -1, 1000) == 1;
	assert_int_equal(idle, 100); /* with two targets both are drawn every time */
	listener_free(l);
}

static void test_single_target_is_always_tried(void **state)
{
	struct px_listener *l = listener(1, PX_ROUND_ROBIN);

	(void)state;
	for (int i = 0; i < 10; i++)
		px_target_failed(l, 0, 1000);
	assert_int_equal(px_pick_target(l, -1, 2000), 0);
	listener_free(l);
}

static void test_unhealthy_targets_are_skipped(void **state)
{
	struct px_listener *l = listener(3, PX_ROUND_ROBIN);

	(void)state;
	atomic_store(&l->targets[1].hc_down, 1);
	for (int i = 0; i < 30; i++)
		assert_int_not_equal(px_pick_target(l, -1, 1000), 1);
	atomic_store(&l->targets[0].hc_down, 1);
	atomic_store(&l->targets[2].hc_down, 1);
	assert_true(px_pick_target(l, -1, 1000) >= 0); /* all down: one is still tried */
	/* a place in flight is taken whole or not at all */
	l->max_requests = 1;
	assert_int_equal(px_target_reserve(l, 0), 0);
	assert_int_equal(px_target_reserve(l, 0), -1);
	px_target_release(l, 0);
	assert_int_equal(px_target_reserve(l, 0), 0);
	listener_free(l);
}

static void test_bucket_burst_refill_retry_after(void **state)
{
	struct px_ratelimit *rl = px_rl_new(10, 3); /* 10/s, burst 3 */
	uint64_t retry;

	(void)state;
	assert_non_null(rl);
	for (int i = 0; i < 3; i++)
		assert_int_equal(px_rl_take(rl, "a", 1, 1000, &retry), 1);
	assert_int_equal(px_rl_take(rl, "a", 1, 1000, &retry), 0);
	assert_int_equal(retry, 100); /* one token every 100 ms */
	assert_int_equal(px_rl_take(rl, "b", 1, 1000, &retry), 1); /* keys are apart */
	assert_int_equal(px_rl_take(rl, "a", 1, 1050, &retry), 0);
	assert_int_equal(retry, 50);
	assert_int_equal(px_rl_take(rl, "a", 1, 1100, &retry), 1);
	/* a long pause refills to the burst, not past it */
	for (int i = 0; i < 3; i++)
		assert_int_equal(px_rl_take(rl, "a", 1, 100000, &retry), 1);
	assert_int_equal(px_rl_take(rl, "a", 1, 100000, &retry), 0);
	px_rl_free(rl);
}

static void test_bucket_table_is_bounded(void **state)
{
	struct px_ratelimit *rl = px_rl_new(1, 1);
	uint64_t retry;
	char key[32];

	(void)state;
	assert_non_null(rl);
	assert_int_equal(px_rl_take(rl, "victim", 6, 1000, &retry), 1);
	assert_int_equal(px_rl_take(rl, "victim", 6, 1000, &retry), 0);
	/* a flood of new keys reuses buckets instead of growing the table ... */
	for (int i = 0; i < 100000; i++) {
		snprintf(key, sizeof key, "spoofed-%d", i);
		assert_int_equal(px_rl_take(rl, key, strlen(key), 2000 + (uint64_t)i, &retry), 1);
	}
	/* ... and a key whose bucket was reused starts full: no one is locked out */
	assert_int_equal(px_rl_take(rl, "victim", 6, 200000, &retry), 1);
	/* a key longer than the table keeps is still one bucket */
	char longkey[600];

	memset(longkey, 'k', sizeof longkey);
	assert_int_equal(px_rl_take(rl, longkey, sizeof longkey, 300000, &retry), 1);
	assert_int_equal(px_rl_take(rl, longkey, sizeof longkey, 300000, &retry), 0);
	px_rl_free(rl);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_robin_takes_turns),
		cmocka_unit_test(test_failures_eject_then_readmit),
		cmocka_unit_test(test_all_ejected_uses_the_first_to_return),
		cmocka_unit_test(test_avoid_and_max_requests),
		cmocka_unit_test(test_least_request_prefers_the_idle),
		cmocka_unit_test(test_single_target_is_always_tried),
		cmocka_unit_test(test_unhealthy_targets_are_skipped),
		cmocka_unit_test(test_bucket_burst_refill_retry_after),
		cmocka_unit_test(test_bucket_table_is_bounded),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
