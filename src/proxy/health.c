/*
 * proxy/health.c: active health checks of a listener's upstream addresses.
 *
 * Every `interval`, the main thread sends each address of a listener with
 * a healthCheck one "GET path" on a connection of its own (mutual TLS with
 * the expected-ID check on outbound listeners, as requests get) and reads
 * the status line. A 2xx is a pass; anything else, a refused or failed
 * connection, or no answer within `timeout` is a failure. `unhealthyAfter`
 * failures in a row take the address out of balancing, `healthyAfter`
 * passes in a row bring it back (balance.c skips it like an ejected one;
 * when every address is out, one is still tried). Checks run on the main
 * thread's loop, so they never delay a worker.
 */
#include "proxy_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/err.h>

struct px_check {
	zt_proxy *px;
	zt_loop *loop;
	struct px_listener *l;
	int t;
	struct side s; /* its socket (and TLS), driven by conn.c's I/O calls */
	struct px_snap *snap;
	int connected, sent;
	char req[600];
	size_t reqlen, off;
	char resp[64];
	size_t resplen;
	zt_timer timeout;
};

struct px_health {
	zt_proxy *px;
	zt_loop *loop;
	struct px_listener *l;
	zt_timer tick;
	struct px_check *running[PX_MAX_TARGETS];
};

/* pass: 1 passed, 0 failed, -1 abandoned (stopping: counts for nothing) */
static void check_end(struct px_check *k, int pass, const char *why)
{
	struct px_health *hl = k->l->health;
	struct px_target *tg = &k->l->targets[k->t];

	zt_timer_cancel(k->loop, &k->timeout);
	if (k->s.fd >= 0) {
		zt_loop_del(k->loop, k->s.fd);
		if (k->s.ssl && SSL_is_init_finished(k->s.ssl)) {
			ERR_clear_error();
			(void)SSL_shutdown(k->s.ssl);
		}
		close(k->s.fd);
	}
	SSL_free(k->s.ssl);
	ERR_clear_error();
	px_snap_put(k->snap);
	if (pass < 0) {
		/* abandoned */
	} else if (pass) {
		tg->hc_fails = 0;
		if (++tg->hc_passes >= k->l->hc.healthy_after && atomic_load(&tg->hc_down)) {
			atomic_store(&tg->hc_down, 0);
			zt_log(ZT_LOG_INFO, "upstream healthy", "listener", k->l->name, "upstream", tg->text,
			       NULL);
		}
	} else {
		tg->hc_passes = 0;
		if (++tg->hc_fails >= k->l->hc.unhealthy_after && !atomic_load(&tg->hc_down)) {
			atomic_store(&tg->hc_down, 1);
			zt_log(ZT_LOG_WARN, "upstream unhealthy", "listener", k->l->name, "upstream", tg->text,
			       "reason", why, NULL);
		}
	}
	hl->running[k->t] = NULL;
	free(k);
}

static void on_check_timeout(zt_loop *l, void *arg)
{
	(void)l;
	check_end(arg, 0, "no answer within healthCheck.timeout");
}

static void set_want(struct px_check *k, unsigned want)
{
	zt_err e;

	if (zt_loop_mod(k->loop, k->s.fd, want, &e) != 0)
		check_end(k, 0, "cannot watch the check's socket");
}

static void on_check_io(zt_loop *l, int fd, unsigned events, void *arg)
{
	struct px_check *k = arg;
	int r;

	(void)l;
	(void)fd;
	(void)events;
	k->s.readable = k->s.writable = 1;
	if (!k->connected) {
		int err = 0;
		socklen_t len = sizeof err;

		if (getsockopt(k->s.fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err) {
			check_end(k, 0, "connection refused or failed");
			return;
		}
		k->connected = 1;
		if (!k->l->inbound) {
			if (!(k->s.ssl = SSL_new(k->snap->st->tls[k->l - k->px->cfg.listeners])) ||
			    !SSL_set_fd(k->s.ssl, k->s.fd)) {
				check_end(k, 0, "out of memory");
				return;
			}
			SSL_set_connect_state(k->s.ssl);
			zt_tls_client_resume(k->s.ssl, k->l->targets[k->t].text);
		}
	}
	if (k->s.ssl && !SSL_is_init_finished(k->s.ssl)) {
		ERR_clear_error();
		r = SSL_do_handshake(k->s.ssl);
		switch (zt_tls_result(k->s.ssl, r)) {
		case ZT_TLS_WANT_READ:
			set_want(k, ZT_EV_READ);
			return;
		case ZT_TLS_WANT_WRITE:
			set_want(k, ZT_EV_WRITE);
			return;
		case ZT_TLS_DONE:
			if (!zt_tls_peer_id(k->s.ssl)) {
				check_end(k, 0, "the upstream was not verified");
				return;
			}
			break;
		default:
			check_end(k, 0, zt_tls_peer_error(k->s.ssl) ? zt_tls_peer_error(k->s.ssl)
								   : "TLS handshake failed");
			return;
		}
	}
	while (k->off < k->reqlen) {
		ssize_t n = px_side_send(&k->s, (const uint8_t *)k->req + k->off, k->reqlen - k->off);

		if (n == WOULD_BLOCK) {
			set_want(k, k->s.wr_wants_read ? ZT_EV_READ : ZT_EV_WRITE);
			return;
		}
		if (n < 0) {
			check_end(k, 0, "the connection failed");
			return;
		}
		k->off += (size_t)n;
	}
	/* the status line is all a check needs: "HTTP/1.1 200 ..." */
	for (;;) {
		ssize_t n = px_side_recv(&k->s, (uint8_t *)k->resp + k->resplen,
					 sizeof k->resp - 1 - k->resplen);

		if (n == WOULD_BLOCK) {
			set_want(k, k->s.rd_wants_write ? ZT_EV_WRITE : ZT_EV_READ);
			return;
		}
		if (n <= 0) {
			check_end(k, 0, "the upstream closed without an answer");
			return;
		}
		k->resplen += (size_t)n;
		k->resp[k->resplen] = '\0';
		if (strstr(k->resp, "\r\n") || k->resplen == sizeof k->resp - 1) {
			int pass = k->resplen >= 12 && (memcmp(k->resp, "HTTP/1.1 2", 10) == 0 ||
							 memcmp(k->resp, "HTTP/1.0 2", 10) == 0);

			check_end(k, pass, pass ? "" : "the answer was not 2xx");
			return;
		}
	}
}

static void start_check(struct px_health *hl, int t)
{
	struct px_listener *l = hl->l;
	struct px_target *tg = &l->targets[t];
	struct px_check *k;
	int n;
	zt_err e;

	if (hl->running[t] || !(k = calloc(1, sizeof *k)))
		return;
	k->px = hl->px;
	k->loop = hl->loop;
	k->l = l;
	k->t = t;
	k->snap = px_snap_get(hl->px);
	zt_timer_init(&k->timeout, on_check_timeout, k);
	n = snprintf(k->req, sizeof k->req,
		     "GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: zt-health-check\r\nConnection: close\r\n\r\n",
		     l->hc.path, tg->text);
	k->reqlen = n > 0 && (size_t)n < sizeof k->req ? (size_t)n : 0;
	hl->running[t] = k;
	k->s.fd = socket(tg->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (k->s.fd < 0 || (connect(k->s.fd, (const struct sockaddr *)&tg->addr, tg->len) != 0 &&
			  errno != EINPROGRESS)) {
		check_end(k, 0, "connection refused or failed");
		return;
	}
	if (zt_loop_add(hl->loop, k->s.fd, ZT_EV_WRITE, on_check_io, k, &e) != 0 ||
	    zt_timer_set(hl->loop, &k->timeout, (uint64_t)l->hc.timeout_ms) != 0) {
		check_end(k, 0, "cannot watch the check's socket");
		return;
	}
}

static void on_tick(zt_loop *loop, void *arg)
{
	struct px_health *hl = arg;

	if (atomic_load(&hl->px->stopping))
		return;
	for (size_t t = 0; t < hl->l->ntargets; t++)
		start_check(hl, (int)t);
	if (zt_timer_set(loop, &hl->tick, (uint64_t)hl->l->hc.interval_ms) != 0)
		zt_log(ZT_LOG_ERROR, "cannot arm the health check timer (out of memory)", NULL);
}

int px_health_start(zt_proxy *px, zt_loop *loop, zt_err *e)
{
	for (size_t i = 0; i < px->cfg.nlisteners; i++) {
		struct px_listener *l = &px->cfg.listeners[i];
		struct px_health *hl;

		if (!l->hc.path[0])
			continue;
		if (!(hl = calloc(1, sizeof *hl)))
			return zt_err_set(e, ZT_ENOMEM, "out of memory for health checks");
		hl->px = px;
		hl->loop = loop;
		hl->l = l;
		l->health = hl;
		zt_timer_init(&hl->tick, on_tick, hl);
		if (zt_timer_set(loop, &hl->tick, 0) != 0) /* the first round at once */
			return zt_err_set(e, ZT_ENOMEM, "cannot arm the health check timer");
	}
	return 0;
}

void px_health_stop(zt_proxy *px)
{
	for (size_t i = 0; i < px->cfg.nlisteners; i++) {
		struct px_listener *l = &px->cfg.listeners[i];
		struct px_health *hl = l->health;

		if (!hl)
			continue;
		zt_timer_cancel(hl->loop, &hl->tick);
		for (size_t t = 0; t < PX_MAX_TARGETS; t++)
			if (hl->running[t])
				check_end(hl->running[t], -1, "stopping");
		free(hl);
		l->health = NULL;
	}
}
