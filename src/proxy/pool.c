/*
 * proxy/pool.c: a worker's idle upstream connections, shared by its
 * client connections (HTTP listeners).
 *
 * When an exchange ends and the upstream keeps its connection, the
 * connection leaves the client connection for its worker's pool; the next
 * request of any client connection of that worker, to the same address of
 * the same listener, under the same snapshot (the TLS context that made
 * it: our SVID, the bundle that judged the upstream), takes it instead of
 * connecting and shaking hands again. So a service that opens a connection
 * per request costs its sidecars one handshake, not one per request, and
 * each request is balanced on its own.
 *
 * An idle connection is watched for reads: an upstream closes idle
 * connections (or, wrongly, sends bytes nobody asked for), and either way
 * it must never be handed to a request, so it is closed at once. Idle ones
 * are closed after POOL_IDLE_MS, the oldest first past POOL_MAX per worker,
 * and all of them when the worker stops.
 */
#include "proxy_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define POOL_MAX 256          /* idle connections per worker */
#define POOL_IDLE_MS 30000u   /* below the usual upstream keep-alive timeouts (60 s+) */

struct px_idle {
	struct px_worker *w;
	struct px_listener *l;
	int target;
	struct side s;
	struct px_snap *snap; /* held: its TLS context made the connection */
	zt_timer timer;
	struct px_idle *prev, *next; /* the worker's list, newest first */
};

static void idle_unlink(struct px_idle *k)
{
	struct px_worker *w = k->w;

	if (k->prev)
		k->prev->next = k->next;
	else
		w->idle = k->next;
	if (k->next)
		k->next->prev = k->prev;
	w->nidle--;
}

static void idle_close(struct px_idle *k)
{
	idle_unlink(k);
	zt_timer_cancel(k->w->loop, &k->timer);
	px_side_close(k->w->loop, &k->s);
	px_snap_put(k->snap);
	free(k);
}

/*
 * A byte or an end of stream on an idle connection ends it: a close, or
 * bytes nobody asked for. An event fetched just before the connection was
 * pooled may come here too (zt_loop_rebind): a socket with nothing to read
 * stays in the pool.
 */
static void on_idle_io(zt_loop *l, int fd, unsigned events, void *arg)
{
	char b;
	ssize_t n;

	(void)l;
	if (!(events & ZT_EV_ERROR)) {
		n = recv(fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
			return;
	}
	idle_close(arg);
}

static void on_idle_timeout(zt_loop *l, void *arg)
{
	(void)l;
	idle_close(arg);
}

int px_pool_put(struct conn *c)
{
	struct px_worker *w = c->w;
	struct px_idle *k;
	zt_err e;

	if (c->u.fd < 0 || atomic_load(&c->px->stopping) || !(k = calloc(1, sizeof *k)))
		return -1;
	while (w->nidle >= POOL_MAX) { /* the oldest is at the end */
		struct px_idle *old = w->idle;

		while (old->next)
			old = old->next;
		idle_close(old);
	}
	k->w = w;
	k->l = c->ls;
	k->target = c->target;
	k->s = c->u;
	k->snap = c->snap;
	atomic_fetch_add(&k->snap->refs, 1);
	zt_timer_init(&k->timer, on_idle_timeout, k);
	k->next = w->idle;
	if (w->idle)
		w->idle->prev = k;
	w->idle = k;
	w->nidle++;
	memset(&c->u, 0, sizeof c->u);
	c->u.fd = -1;
	c->target = -1;
	/* the same registration, another handler: no epoll_ctl when it was
	 * already waiting for reads, as an upstream between requests is */
	if (zt_loop_mod(w->loop, k->s.fd, ZT_EV_READ, &e) != 0 ||
	    zt_loop_rebind(w->loop, k->s.fd, on_idle_io, k, &e) != 0 ||
	    zt_timer_set(w->loop, &k->timer, POOL_IDLE_MS) != 0) {
		idle_close(k);
		return 0; /* taken off the client connection either way */
	}
	return 0;
}

int px_pool_take(struct conn *c, int t)
{
	struct px_idle *k;

	for (k = c->w->idle; k; k = k->next)
		if (k->l == c->ls && k->target == t && k->snap == c->snap)
			break;
	if (!k)
		return -1;
	idle_unlink(k);
	zt_timer_cancel(k->w->loop, &k->timer);
	c->u = k->s;
	c->u.interest = ZT_EV_READ; /* what the pool watched it for */
	c->target = t;
	px_snap_put(k->snap);
	free(k);
	if (px_upstream_rebind(c) != 0) {
		px_side_close(c->w->loop, &c->u);
		return -1;
	}
	return 0;
}

void px_pool_close_all(struct px_worker *w)
{
	while (w->idle)
		idle_close(w->idle);
}
