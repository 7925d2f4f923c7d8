/*
 * net/loop.c: an epoll event loop with a timer heap (after Redis's ae.c:
 * small, level-triggered, one loop per thread).
 */
#include "net.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#define MAX_EVENTS 256
#define FD_LIMIT (1u << 20)

struct handler {
	zt_io_fn fn;
	void *arg;
	unsigned events;
	uint32_t gen; /* bumped on delete: events fetched before it are stale */
	int used;
};

struct zt_loop {
	int ep, wakefd;
	struct handler *h;
	size_t max_fds;
	struct epoll_event evs[MAX_EVENTS];
	zt_timer **heap;
	size_t nheap, capheap;
	uint64_t seq;
	uint64_t now_ms;
	int stop;
	zt_timer_fn wake_fn;
	void *wake_arg;
};

static uint64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

zt_loop *zt_loop_new(size_t max_fds, zt_err *e)
{
	zt_loop *l = calloc(1, sizeof *l);
	struct epoll_event ev = { .events = EPOLLIN };

	if (!l) {
		zt_err_set(e, ZT_ENOMEM, "out of memory");
		return NULL;
	}
	l->ep = l->wakefd = -1;
	if (max_fds == 0) {
		struct rlimit rl;

		max_fds = getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY
				  ? (size_t)rl.rlim_cur
				  : 1024;
	}
	l->max_fds = max_fds > FD_LIMIT ? FD_LIMIT : max_fds;
	if (!(l->h = calloc(l->max_fds, sizeof *l->h))) {
		zt_err_set(e, ZT_ENOMEM, "out of memory for %zu descriptors", l->max_fds);
		goto fail;
	}
	if ((l->ep = epoll_create1(EPOLL_CLOEXEC)) < 0 ||
	    (l->wakefd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0) {
		zt_err_set(e, ZT_EIO, "cannot create the event loop: %s", strerror(errno));
		goto fail;
	}
	ev.data.u64 = (uint64_t)(uint32_t)l->wakefd;
	if (epoll_ctl(l->ep, EPOLL_CTL_ADD, l->wakefd, &ev) != 0) {
		zt_err_set(e, ZT_EIO, "cannot watch the wake-up descriptor: %s", strerror(errno));
		goto fail;
	}
	l->now_ms = mono_ms();
	return l;
fail:
	zt_loop_free(l);
	return NULL;
}

void zt_loop_free(zt_loop *l)
{
	if (!l)
		return;
	if (l->ep >= 0)
		close(l->ep);
	if (l->wakefd >= 0)
		close(l->wakefd);
	free(l->h);
	free(l->heap);
	free(l);
}

static uint32_t to_epoll(unsigned events)
{
	return (events & ZT_EV_READ ? EPOLLIN : 0) | (events & ZT_EV_WRITE ? EPOLLOUT : 0);
}

int zt_loop_add(zt_loop *l, int fd, unsigned events, zt_io_fn fn, void *arg, zt_err *e)
{
	struct epoll_event ev;
	struct handler *h;

	if (fd < 0 || (size_t)fd >= l->max_fds)
		return zt_err_set(e, ZT_ELIMIT, "descriptor %d is beyond the loop's limit of %zu", fd,
				  l->max_fds);
	h = &l->h[fd];
	if (h->used || fd == l->wakefd)
		return zt_err_set(e, ZT_EEXIST, "descriptor %d is already watched", fd);
	ev.events = to_epoll(events);
	ev.data.u64 = (uint64_t)h->gen << 32 | (uint32_t)fd;
	if (epoll_ctl(l->ep, EPOLL_CTL_ADD, fd, &ev) != 0)
		return zt_err_set(e, ZT_EIO, "cannot watch descriptor %d: %s", fd, strerror(errno));
	h->fn = fn;
	h->arg = arg;
	h->events = events;
	h->used = 1;
	return 0;
}

int zt_loop_mod(zt_loop *l, int fd, unsigned events, zt_err *e)
{
	struct epoll_event ev;
	struct handler *h;

	if (fd < 0 || (size_t)fd >= l->max_fds || !l->h[fd].used)
		return zt_err_set(e, ZT_ENOENT, "descriptor %d is not watched", fd);
	h = &l->h[fd];
	if (h->events == events)
		return 0;
	ev.events = to_epoll(events);
	ev.data.u64 = (uint64_t)h->gen << 32 | (uint32_t)fd;
	if (epoll_ctl(l->ep, EPOLL_CTL_MOD, fd, &ev) != 0)
		return zt_err_set(e, ZT_EIO, "cannot change descriptor %d: %s", fd, strerror(errno));
	h->events = events;
	return 0;
}

int zt_loop_rebind(zt_loop *l, int fd, zt_io_fn fn, void *arg, zt_err *e)
{
	if (fd < 0 || (size_t)fd >= l->max_fds || !l->h[fd].used)
		return zt_err_set(e, ZT_ENOENT, "descriptor %d is not watched", fd);
	l->h[fd].fn = fn;
	l->h[fd].arg = arg;
	return 0;
}

void zt_loop_del(zt_loop *l, int fd)
{
	if (fd < 0 || (size_t)fd >= l->max_fds || !l->h[fd].used)
		return;
	(void)epoll_ctl(l->ep, EPOLL_CTL_DEL, fd, NULL);
	l->h[fd].used = 0;
	l->h[fd].gen++;
}

/* ---- timers: a binary min-heap on (when, seq) ---- */

static int earlier(const zt_timer *a, const zt_timer *b)
{
	return a->when_ms < b->when_ms || (a->when_ms == b->when_ms && a->seq < b->seq);
}

static void heap_place(zt_loop *l, size_t i, zt_timer *t)
{
	l->heap[i] = t;
	t->slot = i + 1;
}

static void sift_up(zt_loop *l, size_t i)
{
	zt_timer *t = l->heap[i];

	while (i > 0) {
		size_t parent = (i - 1) / 2;

		if (!earlier(t, l->heap[parent]))
			break;
		heap_place(l, i, l->heap[parent]);
		i = parent;
	}
	heap_place(l, i, t);
}

static void sift_down(zt_loop *l, size_t i)
{
	zt_timer *t = l->heap[i];

	for (;;) {
		size_t c = 2 * i + 1;

		if (c >= l->nheap)
			break;
		if (c + 1 < l->nheap && earlier(l->heap[c + 1], l->heap[c]))
			c++;
		if (!earlier(l->heap[c], t))
			break;
		heap_place(l, i, l->heap[c]);
		i = c;
	}
	heap_place(l, i, t);
}

void zt_timer_init(zt_timer *t, zt_timer_fn fn, void *arg)
{
	memset(t, 0, sizeof *t);
	t->fn = fn;
	t->arg = arg;
}

int zt_timer_armed(const zt_timer *t)
{
	return t->slot != 0;
}

void zt_timer_cancel(zt_loop *l, zt_timer *t)
{
	size_t i;

	if (!t->slot)
		return;
	i = t->slot - 1;
	t->slot = 0;
	if (--l->nheap == i)
		return;
	/* the last timer takes the hole, then moves up or down to its place */
	zt_timer *m = l->heap[l->nheap];

	heap_place(l, i, m);
	sift_up(l, i);
	sift_down(l, m->slot - 1);
}

int zt_timer_set(zt_loop *l, zt_timer *t, uint64_t delay_ms)
{
	zt_timer_cancel(l, t);
	if (l->nheap == l->capheap) {
		size_t ncap = l->capheap ? l->capheap * 2 : 64;
		zt_timer **nh = realloc(l->heap, ncap * sizeof *nh);

		if (!nh)
			return -ZT_ENOMEM;
		l->heap = nh;
		l->capheap = ncap;
	}
	t->when_ms = l->now_ms + delay_ms;
	t->seq = l->seq++;
	l->heap[l->nheap] = t;
	t->slot = ++l->nheap;
	sift_up(l, l->nheap - 1);
	return 0;
}

uint64_t zt_loop_now_ms(const zt_loop *l)
{
	return l->now_ms;
}

/* ---- running ---- */

static int run_timers(zt_loop *l)
{
	uint64_t limit = l->seq; /* timers armed from here on wait a turn */
	int n = 0;

	while (l->nheap) {
		zt_timer *t = l->heap[0];

		if (t->when_ms > l->now_ms || t->seq >= limit)
			break;
		zt_timer_cancel(l, t);
		t->fn(l, t->arg);
		n++;
	}
	return n;
}

int zt_loop_run_once(zt_loop *l, int timeout_ms, zt_err *e)
{
	int n, ran = 0;

	l->now_ms = mono_ms();
	if (l->nheap) {
		uint64_t due = l->heap[0]->when_ms;
		uint64_t wait = due > l->now_ms ? due - l->now_ms : 0;

		if (timeout_ms < 0 || wait < (uint64_t)timeout_ms)
			timeout_ms = wait > INT32_MAX ? INT32_MAX : (int)wait;
	}
	n = epoll_wait(l->ep, l->evs, MAX_EVENTS, timeout_ms);
	if (n < 0) {
		if (errno != EINTR)
			return zt_err_set(e, ZT_EIO, "epoll_wait: %s", strerror(errno));
		n = 0;
	}
	l->now_ms = mono_ms();
	for (int i = 0; i < n; i++) {
		uint32_t fd = (uint32_t)l->evs[i].data.u64, gen = (uint32_t)(l->evs[i].data.u64 >> 32);
		uint32_t ev = l->evs[i].events;
		unsigned what = 0;
		struct handler *h;

		if ((int)fd == l->wakefd) {
			uint64_t count;

			while (read(l->wakefd, &count, sizeof count) > 0)
				;
			if (l->wake_fn) {
				l->wake_fn(l, l->wake_arg);
				ran++;
			}
			continue;
		}
		if (fd >= l->max_fds)
			continue;
		h = &l->h[fd];
		/* deleted, or deleted and re-added, by an earlier handler */
		if (!h->used || h->gen != gen)
			continue;
		if (ev & EPOLLIN)
			what |= ZT_EV_READ;
		if (ev & EPOLLOUT)
			what |= ZT_EV_WRITE;
		if (ev & (EPOLLERR | EPOLLHUP))
			what |= ZT_EV_READ | ZT_EV_WRITE | ZT_EV_ERROR;
		h->fn(l, (int)fd, what, h->arg);
		ran++;
	}
	return ran + run_timers(l);
}

int zt_loop_run(zt_loop *l, zt_err *e)
{
	int r;

	l->stop = 0;
	while (!l->stop)
		if ((r = zt_loop_run_once(l, -1, e)) < 0)
			return r;
	return 0;
}

void zt_loop_stop(zt_loop *l)
{
	l->stop = 1;
}

void zt_loop_set_wake(zt_loop *l, zt_timer_fn fn, void *arg)
{
	l->wake_fn = fn;
	l->wake_arg = arg;
}

void zt_loop_wake(zt_loop *l)
{
	uint64_t one = 1;
	int saved = errno; /* async-signal-safe: leave errno as it was */

	(void)!write(l->wakefd, &one, sizeof one);
	errno = saved;
}
