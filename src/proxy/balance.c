/*
 * proxy/balance.c: which upstream address a new upstream connection goes
 * to, and passive health.
 *
 * Round robin takes the targets in turn; least-request takes, of two
 * targets drawn at random, the one with fewer requests in flight (the
 * "power of two choices", as Envoy's LEAST_REQUEST does by default: close
 * to the true least loaded without scanning every target or herding onto
 * one). A target whose connections fail `ejectAfter` times in a row
 * (refused, timed out, or the TLS handshake failed) is ejected for
 * `ejectFor`, then tried again; one success clears its count. When every
 * target is ejected the one whose ejection ends first is used rather than
 * none (a guess beats a certain failure). Addresses failing their active
 * health checks (health.c) are skipped the same way. Counters are atomics shared by
 * the workers; a race costs at most a slightly uneven pick.
 */
#include "proxy_int.h"

#include <stdlib.h>

static int usable(struct px_listener *l, int t, uint64_t now)
{
	struct px_target *tg = &l->targets[t];
	uint64_t until = atomic_load_explicit(&tg->ejected_until, memory_order_relaxed);

	if (until && now < until)
		return 0;
	if (atomic_load_explicit(&tg->hc_down, memory_order_relaxed))
		return 0;
	if (l->max_requests && atomic_load_explicit(&tg->outstanding, memory_order_relaxed) >= l->max_requests)
		return 0;
	return 1;
}

/* a cheap per-thread generator: only spreads choices, guards nothing */
static unsigned rnd(void)
{
	static _Thread_local unsigned long long x;

	if (!x)
		x = (unsigned long long)(uintptr_t)&x | 1;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return (unsigned)(x >> 11);
}

int px_pick_target(struct px_listener *l, int avoid, uint64_t now_ms)
{
	size_t n = l->ntargets;
	int best = -1;

	if (n == 1) /* ejection means nothing with one address: it is always tried */
		return l->max_requests && atomic_load(&l->targets[0].outstanding) >= l->max_requests ? -1 : 0;
	if (l->balance == PX_LEAST_REQUEST) {
		int a = (int)(rnd() % n), b = (int)(rnd() % (n - 1));

		if (b >= a)
			b++;
		if (a == avoid)
			a = b;
		if (usable(l, a, now_ms) && usable(l, b, now_ms) && b != avoid)
			best = atomic_load(&l->targets[b].outstanding) < atomic_load(&l->targets[a].outstanding) ? b : a;
		else if (usable(l, a, now_ms))
			best = a;
		else if (usable(l, b, now_ms) && b != avoid)
			best = b;
		if (best >= 0)
			return best;
	}
	/* round robin, and least-request's fallback: the next usable in turn */
	for (size_t k = 0; k < n; k++) {
		int t = (int)(atomic_fetch_add_explicit(&l->rr, 1, memory_order_relaxed) % n);

		if (t != avoid && usable(l, t, now_ms))
			return t;
	}
	if (avoid >= 0 && usable(l, avoid, now_ms))
		return avoid;
	/* all ejected (or full): the ejection that ends first, unless all are full */
	for (size_t t = 0; t < n; t++) {
		struct px_target *tg = &l->targets[t];

		if (l->max_requests && atomic_load(&tg->outstanding) >= l->max_requests)
			continue;
		if (best < 0 || atomic_load(&tg->ejected_until) < atomic_load(&l->targets[best].ejected_until))
			best = (int)t;
	}
	return best;
}

void px_target_failed(struct px_listener *l, int t, uint64_t now_ms)
{
	struct px_target *tg;

	if (t < 0 || (size_t)t >= l->ntargets)
		return;
	tg = &l->targets[t];
	if (atomic_fetch_add(&tg->failures, 1) + 1 >= l->eject_after && l->ntargets > 1) {
		atomic_store(&tg->ejected_until, now_ms + (uint64_t)l->eject_ms);
		atomic_store(&tg->failures, 0);
		zt_log(ZT_LOG_WARN, "upstream ejected", "listener", l->name, "upstream", tg->text,
		       "reason", "consecutive connection failures", NULL);
	}
}

void px_target_ok(struct px_listener *l, int t)
{
	if (t < 0 || (size_t)t >= l->ntargets)
		return;
	atomic_store_explicit(&l->targets[t].failures, 0, memory_order_relaxed);
	atomic_store_explicit(&l->targets[t].ejected_until, 0, memory_order_relaxed);
}

int px_target_reserve(struct px_listener *l, int t)
{
	long before = atomic_fetch_add(&l->targets[t].outstanding, 1);

	if (l->max_requests && before >= l->max_requests) {
		atomic_fetch_sub(&l->targets[t].outstanding, 1);
		return -1;
	}
	return 0;
}

void px_target_release(struct px_listener *l, int t)
{
	atomic_fetch_sub(&l->targets[t].outstanding, 1);
}
