/* Unit tests: the event loop and timers (net/loop.c). */
#include "testutil.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "net/net.h"

static zt_loop *new_loop(void)
{
	zt_err e;
	zt_loop *l = zt_loop_new(0, &e);

	assert_non_null(l);
	return l;
}

struct io_count {
	int reads, writes, errors;
	char buf[64];
};

static void on_io(zt_loop *l, int fd, unsigned ev, void *arg)
{
	struct io_count *c = arg;

	(void)l;
	if (ev & ZT_EV_ERROR)
		c->errors++;
	if (ev & ZT_EV_READ) {
		c->reads++;
		(void)!read(fd, c->buf, sizeof c->buf);
	}
	if (ev & ZT_EV_WRITE)
		c->writes++;
}

static void test_readiness(void **state)
{
	zt_loop *l = new_loop();
	struct io_count c = { 0 };
	int p[2];
	zt_err e;

	(void)state;
	assert_int_equal(pipe2(p, O_NONBLOCK), 0);
	assert_int_equal(zt_loop_add(l, p[0], ZT_EV_READ, on_io, &c, &e), 0);
	/* adding it twice is refused */
	assert_int_not_equal(zt_loop_add(l, p[0], ZT_EV_READ, on_io, &c, &e), 0);
	assert_int_equal(zt_loop_run_once(l, 0, &e), 0); /* nothing ready */
	assert_int_equal(write(p[1], "x", 1), 1);
	assert_int_equal(zt_loop_run_once(l, 1000, &e), 1);
	assert_int_equal(c.reads, 1);
	assert_int_equal(c.buf[0], 'x');
	/* the write end becomes writable when watched for it */
	assert_int_equal(zt_loop_add(l, p[1], 0, on_io, &c, &e), 0);
	assert_int_equal(zt_loop_run_once(l, 0, &e), 0);
	assert_int_equal(zt_loop_mod(l, p[1], ZT_EV_WRITE, &e), 0);
	assert_int_equal(zt_loop_run_once(l, 1000, &e), 1);
	assert_int_equal(c.writes, 1);
	zt_loop_del(l, p[1]);
	/* closing the writer: the reader sees a hang-up */
	close(p[1]);
	assert_int_equal(zt_loop_run_once(l, 1000, &e), 1);
	assert_true(c.reads == 2);
	zt_loop_del(l, p[0]);
	close(p[0]);
	assert_int_not_equal(zt_loop_mod(l, p[0], ZT_EV_READ, &e), 0);
	zt_loop_free(l);
}

/* zt_loop_rebind hands a watched descriptor to another handler, events kept. */
static void test_rebind(void **state)
{
	zt_loop *l = new_loop();
	struct io_count a = { 0 }, b = { 0 };
	int p[2];
	zt_err e;

	(void)state;
	assert_int_equal(pipe2(p, O_NONBLOCK), 0);
	assert_int_equal(zt_loop_add(l, p[0], ZT_EV_READ, on_io, &a, &e), 0);
	assert_int_equal(zt_loop_rebind(l, p[0], on_io, &b, &e), 0);
	assert_int_equal(write(p[1], "y", 1), 1);
	assert_int_equal(zt_loop_run_once(l, 1000, &e), 1);
	assert_int_equal(a.reads, 0);
	assert_int_equal(b.reads, 1);
	assert_int_equal(b.buf[0], 'y');
	zt_loop_del(l, p[0]);
	assert_int_not_equal(zt_loop_rebind(l, p[0], on_io, &a, &e), 0); /* not watched */
	assert_int_not_equal(zt_loop_rebind(l, -1, on_io, &a, &e), 0);
	close(p[0]);
	close(p[1]);
	zt_loop_free(l);
}

/* A handler that deletes another descriptor whose event is already fetched:
 * that event must not run. */
struct pair_ctx {
	int fds[2];
	int ran[2];
};

static void on_pair(zt_loop *l, int fd, unsigned ev, void *arg)
{
	struct pair_ctx *c = arg;
	int me = fd == c->fds[1];

	(void)ev;
	c->ran[me]++;
	zt_loop_del(l, c->fds[!me]);
}

static void test_delete_during_iteration(void **state)
{
	zt_loop *l = new_loop();
	struct pair_ctx c = { { -1, -1 }, { 0, 0 } };
	int a[2], b[2];
	zt_err e;

	(void)state;
	assert_int_equal(pipe2(a, O_NONBLOCK), 0);
	assert_int_equal(pipe2(b, O_NONBLOCK), 0);
	c.fds[0] = a[0];
	c.fds[1] = b[0];
	assert_int_equal(zt_loop_add(l, a[0], ZT_EV_READ, on_pair, &c, &e), 0);
	assert_int_equal(zt_loop_add(l, b[0], ZT_EV_READ, on_pair, &c, &e), 0);
	assert_int_equal(write(a[1], "x", 1), 1);
	assert_int_equal(write(b[1], "x", 1), 1);
	assert_int_equal(zt_loop_run_once(l, 1000, &e), 1); /* one ran, the other was dropped */
	assert_int_equal(c.ran[0] + c.ran[1], 1);
	for (int i = 0; i < 2; i++) {
		close(a[i]);
		close(b[i]);
	}
	zt_loop_free(l);
}

struct fired {
	int order[64];
	int n;
};

struct tctx {
	struct fired *f;
	int id;
};

static void on_timer(zt_loop *l, void *arg)
{
	struct tctx *t = arg;

	(void)l;
	t->f->order[t->f->n++] = t->id;
}

static void test_timers_order_and_cancel(void **state)
{
	zt_loop *l = new_loop();
	struct fired f = { { 0 }, 0 };
	struct tctx ctx[5];
	zt_timer t[5];
	static const uint64_t delays[5] = { 40, 10, 30, 10, 20 };
	zt_err e;

	(void)state;
	for (int i = 0; i < 5; i++) {
		ctx[i] = (struct tctx){ &f, i };
		zt_timer_init(&t[i], on_timer, &ctx[i]);
		assert_int_equal(zt_timer_set(l, &t[i], delays[i]), 0);
		assert_true(zt_timer_armed(&t[i]));
	}
	zt_timer_cancel(l, &t[2]);
	zt_timer_cancel(l, &t[2]); /* twice is harmless */
	assert_false(zt_timer_armed(&t[2]));
	while (f.n < 4)
		assert_true(zt_loop_run_once(l, -1, &e) >= 0);
	/* by deadline; equal deadlines in arming order */
	assert_int_equal(f.order[0], 1);
	assert_int_equal(f.order[1], 3);
	assert_int_equal(f.order[2], 4);
	assert_int_equal(f.order[3], 0);
	for (int i = 0; i < 5; i++)
		assert_false(zt_timer_armed(&t[i]));
	zt_loop_free(l);
}

static void test_timer_waits(void **state)
{
	zt_loop *l = new_loop();
	struct fired f = { { 0 }, 0 };
	struct tctx c = { &f, 7 };
	zt_timer t;
	uint64_t start;
	zt_err e;

	(void)state;
	zt_timer_init(&t, on_timer, &c);
	start = zt_loop_now_ms(l);
	assert_int_equal(zt_timer_set(l, &t, 50), 0);
	assert_int_equal(zt_loop_run_once(l, 0, &e), 0); /* not due yet */
	while (!f.n)
		assert_true(zt_loop_run_once(l, -1, &e) >= 0);
	assert_true(zt_loop_now_ms(l) - start >= 50);
	/* re-arming moves the deadline */
	assert_int_equal(zt_timer_set(l, &t, 1000), 0);
	assert_int_equal(zt_timer_set(l, &t, 5), 0);
	while (f.n < 2)
		assert_true(zt_loop_run_once(l, -1, &e) >= 0);
	assert_true(zt_loop_now_ms(l) - start < 900);
	zt_loop_free(l);
}

/* A timer that re-arms itself for "now" does not spin the loop forever. */
static int rearms;
static void on_rearm(zt_loop *l, void *arg)
{
	rearms++;
	assert_int_equal(zt_timer_set(l, arg, 0), 0);
}

static void test_rearm_zero_yields(void **state)
{
	zt_loop *l = new_loop();
	zt_timer t;
	zt_err e;

	(void)state;
	zt_timer_init(&t, on_rearm, &t);
	t.arg = &t;
	assert_int_equal(zt_timer_set(l, &t, 0), 0);
	assert_int_equal(zt_loop_run_once(l, 0, &e), 1);
	assert_int_equal(zt_loop_run_once(l, 0, &e), 1);
	assert_int_equal(rearms, 2);
	zt_timer_cancel(l, &t);
	zt_loop_free(l);
}

/* The heap under random arming and cancelling: timers fire in deadline
 * order (ties in arming order), each armed one exactly once. */
enum { HN = 400 };
static zt_timer ht[HN];
static uint64_t fired_when[HN], fired_seq[HN];
static int fired_n, fired_count[HN];

static void on_heap_timer(zt_loop *l, void *arg)
{
	zt_timer *t = arg;

	(void)l;
	fired_when[fired_n] = t->when_ms;
	fired_seq[fired_n] = t->seq;
	fired_n++;
	fired_count[t - ht]++;
}

static void test_heap_random(void **state)
{
	zt_loop *l = new_loop();
	unsigned seed = 12345;
	int armed = 0;
	zt_err e;

	(void)state;
	for (int i = 0; i < HN; i++)
		zt_timer_init(&ht[i], on_heap_timer, &ht[i]);
	for (int round = 0; round < 4000; round++) {
		int i = (int)(rand_r(&seed) % HN);

		if (rand_r(&seed) % 3 == 0)
			zt_timer_cancel(l, &ht[i]);
		else
			assert_int_equal(zt_timer_set(l, &ht[i], rand_r(&seed) % 40), 0);
	}
	for (int i = 0; i < HN; i++)
		armed += zt_timer_armed(&ht[i]);
	assert_true(armed > 0);
	while (fired_n < armed)
		assert_true(zt_loop_run_once(l, -1, &e) >= 0);
	assert_int_equal(zt_loop_run_once(l, 0, &e), 0); /* nothing left */
	for (int k = 1; k < fired_n; k++)
		assert_true(fired_when[k] > fired_when[k - 1] ||
			    (fired_when[k] == fired_when[k - 1] && fired_seq[k] > fired_seq[k - 1]));
	for (int i = 0; i < HN; i++)
		assert_true(fired_count[i] <= 1);
	zt_loop_free(l);
}

static int woken;
static void on_wake(zt_loop *l, void *arg)
{
	(void)arg;
	woken++;
	zt_loop_stop(l);
}

static void *waker(void *arg)
{
	usleep(20000);
	zt_loop_wake(arg);
	zt_loop_wake(arg); /* coalesced with the first */
	return NULL;
}

static void test_wake_from_thread(void **state)
{
	zt_loop *l = new_loop();
	pthread_t th;
	zt_err e;

	(void)state;
	zt_loop_set_wake(l, on_wake, NULL);
	assert_int_equal(pthread_create(&th, NULL, waker, l), 0);
	assert_int_equal(zt_loop_run(l, &e), 0); /* returns once woken */
	pthread_join(th, NULL);
	assert_int_equal(woken, 1);
	zt_loop_free(l);
}

static void test_limits(void **state)
{
	zt_err e;
	zt_loop *l = zt_loop_new(8, &e);
	struct io_count c = { 0 };

	(void)state;
	assert_non_null(l);
	assert_int_not_equal(zt_loop_add(l, 9, ZT_EV_READ, on_io, &c, &e), 0);
	assert_int_equal(e.code, ZT_ELIMIT);
	assert_int_not_equal(zt_loop_add(l, -1, ZT_EV_READ, on_io, &c, &e), 0);
	zt_loop_del(l, 5); /* not watched: harmless */
	zt_loop_free(l);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_readiness),
		cmocka_unit_test(test_rebind),
		cmocka_unit_test(test_delete_during_iteration),
		cmocka_unit_test(test_timers_order_and_cancel),
		cmocka_unit_test(test_timer_waits),
		cmocka_unit_test(test_rearm_zero_yields),
		cmocka_unit_test(test_heap_random),
		cmocka_unit_test(test_wake_from_thread),
		cmocka_unit_test(test_limits),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
