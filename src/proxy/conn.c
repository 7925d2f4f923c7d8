/*
 * proxy/conn.c: the L4 data path of one worker thread — accept, mutual TLS,
 * the identity and policy checks, the upstream connection, and bytes both
 * ways with bounded buffers (a full buffer stops reading: backpressure, not
 * growth). A connection lives on the worker that accepted it and runs on the
 * snapshot (SVID, bundle, policy) in force when it was accepted.
 */
#include "proxy_int.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/err.h>


static struct id_count **id_slot(zt_proxy *px, const char *id)
{
	struct id_count **p = &px->ids[zt_hash(id, strlen(id)) % ID_BUCKETS];

	while (*p && strcmp((*p)->id, id) != 0)
		p = &(*p)->next;
	return p;
}

/* Takes a place for id; 0, or -1 when id is at its limit (or out of memory). */
static int id_take(zt_proxy *px, const char *id)
{
	struct id_count **p;
	int r = -1;

	pthread_mutex_lock(&px->mu);
	p = id_slot(px, id);
	if (!*p) {
		size_t n = strlen(id);

		if (!(*p = calloc(1, sizeof **p + n + 1)))
			goto out;
		memcpy((*p)->id, id, n + 1);
	}
	if ((*p)->n < px->cfg.max_per_id) {
		(*p)->n++;
		r = 0;
	}
out:
	pthread_mutex_unlock(&px->mu);
	return r;
}

static void id_release(zt_proxy *px, const char *id)
{
	struct id_count **p, *dead = NULL;

	pthread_mutex_lock(&px->mu);
	p = id_slot(px, id);
	if (*p && --(*p)->n == 0) {
		dead = *p;
		*p = dead->next;
	}
	pthread_mutex_unlock(&px->mu);
	free(dead);
}

/* Counts a failed handshake under its reason: the SVID rule tag when there is
 * one ("[expired] ..."), else a short class. */
static void count_failure(zt_proxy *px, struct px_stats *st, const char *why)
{
	char reason[48];
	const char *end;

	if (why[0] == '[' && (end = strchr(why, ']')) && end - why - 1 < (long)sizeof reason)
		snprintf(reason, sizeof reason, "%.*s", (int)(end - why - 1), why + 1);
	else if (strstr(why, "did not return a certificate") || strstr(why, "no certificate"))
		snprintf(reason, sizeof reason, "no-certificate");
	else if (strstr(why, "timeout"))
		snprintf(reason, sizeof reason, "timeout");
	else
		snprintf(reason, sizeof reason, "tls");
	pthread_mutex_lock(&px->mu);
	for (size_t i = 0; i < st->nfailures; i++)
		if (strcmp(st->failures[i].reason, reason) == 0) {
			st->failures[i].n++;
			goto out;
		}
	if (st->nfailures == PX_MAX_REASONS)
		snprintf(reason, sizeof reason, "other");
	else
		st->nfailures++;
	snprintf(st->failures[st->nfailures - 1].reason, sizeof st->failures[0].reason, "%s", reason);
	st->failures[st->nfailures - 1].n++;
out:
	pthread_mutex_unlock(&px->mu);
}

/* ---- verification of peers ---- */

/* arg: the px_vctx of the TLS context, so the bundles of its own snapshot */
int px_verify_inbound(void *arg, STACK_OF(X509) *chain, zt_peer_info *out, zt_err *e)
{
	const struct px_vctx *v = arg;
	zt_svid_info info;
	int r;

	if ((r = zt_svid_verify(v->st->bundles, chain, NULL, &info, e)) != 0)
		return r;
	snprintf(out->id, sizeof out->id, "%s", info.id.str);
	out->not_after = info.chain_not_after;
	return 0;
}

/* Secure naming: the upstream must be one of the workloads we meant. */
int px_verify_outbound(void *arg, STACK_OF(X509) *chain, zt_peer_info *out, zt_err *e)
{
	const struct px_vctx *v = arg;
	const struct px_listener *l = v->l;
	zt_svid_info info;
	int r;

	if ((r = zt_svid_verify(v->st->bundles, chain, NULL, &info, e)) != 0)
		return r;
	snprintf(out->id, sizeof out->id, "%s", info.id.str);
	out->not_after = info.chain_not_after;
	for (size_t i = 0; i < l->nexpect; i++)
		if (strcmp(l->expect[i].str, info.id.str) == 0)
			return 0;
	return zt_err_rule(e, ZT_EVERIFY, "unexpected-peer",
			   "the upstream presented %s, which is not among the IDs listener %s expects",
			   info.id.str, l->name);
}

/* ---- connections ---- */

static void conn_step(struct conn *c);
static void pipe_step(struct conn *c);

static void log_conn(struct conn *c, const char *why)
{
	char dur[32], in[32], out[32], dest[2100], worker[16];
	const struct px_listener *l = c->ls;

	snprintf(dur, sizeof dur, "%llu",
		 (unsigned long long)(zt_loop_now_ms(c->w->loop) - c->start_ms));
	snprintf(in, sizeof in, "%llu", (unsigned long long)c->bytes_c2u);
	snprintf(worker, sizeof worker, "%zu", c->w->idx);
	snprintf(out, sizeof out, "%llu", (unsigned long long)c->bytes_u2c);
	if (l->inbound)
		snprintf(dest, sizeof dest, "%s", l->service);
	else if (c->peer[0])
		snprintf(dest, sizeof dest, "%s", c->peer);
	else
		snprintf(dest, sizeof dest, "%s (not verified)", l->upstream_text);
	zt_log(c->allowed ? ZT_LOG_INFO : ZT_LOG_WARN, "connection", "listener", l->name,
	       "direction", l->edge ? "edge" : l->inbound ? "inbound" : "outbound", "source",
	       l->inbound ? (c->peer[0] ? c->peer : "(not verified)") : c->snap->st->own_id,
	       "source_ip", c->src, "destination", dest, "decision",
	       c->allowed ? "allow" : "deny", "policy", c->policy,
	       "bytes_in", in, "bytes_out", out, "duration_ms", dur, "worker", worker, "tls",
	       c->resumed == 2 ? "pooled" : c->resumed ? "resumed" : "full", "end", why, NULL);
}

void px_side_close(zt_loop *l, struct side *s)
{
	if (s->ssl) {
		/*
		 * A close_notify ends a finished TLS connection cleanly (best
		 * effort: one write that may not fit). Without it OpenSSL takes
		 * the session for a broken one and will not resume it.
		 */
		if (SSL_is_init_finished(s->ssl) && !s->shut && !s->refuse) {
			ERR_clear_error();
			(void)SSL_shutdown(s->ssl);
			ERR_clear_error();
		}
		SSL_free(s->ssl);
	}
	if (s->fd >= 0) {
		zt_loop_del(l, s->fd);
		close(s->fd);
	}
	s->ssl = NULL;
	s->fd = -1;
}

void px_conn_close(struct conn *c, const char *why)
{
	zt_proxy *px = c->px;
	struct px_worker *w = c->w;

	log_conn(c, why);
	atomic_fetch_sub_explicit(&c->ls->stats->active, 1, memory_order_relaxed);
	px_count(&c->ls->stats->bytes_in, c->bytes_c2u);
	px_count(&c->ls->stats->bytes_out, c->bytes_u2c);
	if (c->state == ST_HANDSHAKE && !c->peer[0])
		count_failure(px, c->ls->stats, why);
	if (c->counted)
		id_release(px, c->peer);
	zt_timer_cancel(w->loop, &c->timer);
	px_side_close(w->loop, &c->c);
	px_side_close(w->loop, &c->u);
	free(c->c2u.p);
	free(c->u2c.p);
	px_http_free(c);
	if (c->prev)
		c->prev->next = c->next;
	else
		w->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	px_snap_put(c->snap);
	free(c);
	w->nconns--;
	atomic_fetch_sub(&px->nconns, 1);
	if (w->nconns == 0)
		px_worker_idle(w);
}

void px_close_all(struct px_worker *w, const char *why)
{
	while (w->conns)
		px_conn_close(w->conns, why);
}

static void on_timeout(zt_loop *l, void *arg)
{
	struct conn *c = arg;

	(void)l;
	if (c->state == ST_HTTP) {
		px_http_timeout(c);
		return;
	}
	if (c->state == ST_CONNECTING || (c->state == ST_HANDSHAKE && !c->ls->inbound))
		px_target_failed(c->ls, c->target, zt_loop_now_ms(c->w->loop));
	px_conn_close(c, c->state == ST_HANDSHAKE    ? "handshake timeout"
		      : c->state == ST_CONNECTING ? "upstream connect timeout"
						  : "idle timeout");
}

void px_set_timer_ms(struct conn *c, uint64_t ms)
{
	if (zt_timer_set(c->w->loop, &c->timer, ms) != 0)
		zt_log(ZT_LOG_ERROR, "cannot arm a timer (out of memory)", NULL);
}

static void set_timer(struct conn *c, int64_t secs)
{
	px_set_timer_ms(c, (uint64_t)secs * 1000u);
}

void px_set_interest(struct conn *c, struct side *s, unsigned want)
{
	zt_err e;

	if (s->fd < 0 || s->interest == want)
		return;
	if (zt_loop_mod(c->w->loop, s->fd, want, &e) == 0)
		s->interest = want;
}

static void on_io(zt_loop *l, int fd, unsigned events, void *arg)
{
	struct conn *c = arg;
	struct side *s = fd == c->c.fd ? &c->c : &c->u;

	(void)l;
	/* remember what the socket offered, so the data path only calls read
	 * and write where they can make progress */
	if (events & ZT_EV_READ) {
		s->readable = 1;
		if (s->wr_wants_read)
			s->writable = 1;
	}
	if (events & ZT_EV_WRITE) {
		s->writable = 1;
		if (s->rd_wants_write)
			s->readable = 1;
	}
	conn_step(c);
}

static int watch(struct conn *c, struct side *s, unsigned want)
{
	zt_err e;

	if (zt_loop_add(c->w->loop, s->fd, want, on_io, c, &e) != 0) {
		zt_log(ZT_LOG_ERROR, "cannot watch a connection", "error", e.msg, NULL);
		return -1;
	}
	s->interest = want;
	return 0;
}

int px_upstream_rebind(struct conn *c)
{
	zt_err e;

	return zt_loop_rebind(c->w->loop, c->u.fd, on_io, c, &e);
}

/* Small writes go out at once: a proxy must not add Nagle's delay. */
static void no_delay(int fd)
{
	int one = 1;

	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

int px_upstream_open(struct conn *c, int t)
{
	const struct px_target *tg = &c->ls->targets[t];
	int fd = socket(tg->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	memset(&c->u, 0, sizeof c->u);
	c->u.fd = fd;
	c->target = t;
	if (fd < 0)
		return -1;
	no_delay(fd);
	if (connect(fd, (const struct sockaddr *)&tg->addr, tg->len) != 0 && errno != EINPROGRESS)
		return -1;
	return watch(c, &c->u, ZT_EV_WRITE);
}

int px_upstream_connected(struct conn *c)
{
	int err = 0;
	socklen_t len = sizeof err;

	if (getsockopt(c->u.fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err)
		return -1;
	return 0;
}

static int start_connect(struct conn *c)
{
	int t = px_pick_target(c->ls, -1, zt_loop_now_ms(c->w->loop));

	if (t < 0 || px_upstream_open(c, t) != 0) {
		if (t >= 0)
			px_target_failed(c->ls, t, zt_loop_now_ms(c->w->loop));
		return -1;
	}
	c->state = ST_CONNECTING;
	set_timer(c, c->px->cfg.connect_timeout);
	return 0;
}

/* The inbound peer is verified: ask the policy engine about the connection. */
static int decide(struct conn *c)
{
	zt_policy_request req = { 0 };
	zt_policy_decision d;

	req.source_principal = (zt_str){ c->peer, strlen(c->peer) };
	req.source_ip = (zt_str){ c->src, strlen(c->src) };
	req.dest_service = (zt_str){ c->ls->service, strlen(c->ls->service) };
	req.dest_port = c->ls->port;
	zt_policy_decide(c->snap->policy, &req, &d);
	snprintf(c->policy, sizeof c->policy, "%s", d.by.policy ? d.by.policy : "");
	snprintf(c->reason, sizeof c->reason, "%s", d.reason ? d.reason : "");
	c->allowed = d.effect == ZT_POLICY_ALLOW;
	return c->allowed ? 0 : -1;
}

static void handshake(struct conn *c)
{
	struct side *s = c->ls->inbound ? &c->c : &c->u;
	const char *err;
	int r;

	ERR_clear_error(); /* another connection's leftovers are not ours */
	r = SSL_do_handshake(s->ssl);

	switch (zt_tls_result(s->ssl, r)) {
	case ZT_TLS_WANT_READ:
		px_set_interest(c, s, ZT_EV_READ);
		return;
	case ZT_TLS_WANT_WRITE:
		px_set_interest(c, s, ZT_EV_WRITE);
		return;
	case ZT_TLS_DONE:
		break;
	default:
		err = zt_tls_peer_error(s->ssl);
		if (!err || !strcmp(err, "the peer presented no certificate"))
			err = SSL_get_verify_result(s->ssl) != X509_V_OK ? zt_tls_peer_error(s->ssl)
									  : zt_tls_error_text();
		if (!c->ls->inbound)
			px_target_failed(c->ls, c->target, zt_loop_now_ms(c->w->loop));
		px_conn_close(c, err ? err : "TLS handshake failed");
		return;
	}
	c->resumed = SSL_session_reused(s->ssl);
	if (c->ls->edge) { /* a client without an SVID: each request is decided as anonymous */
		c->allowed = 1;
		c->state = ST_HTTP;
		c->c.readable = c->c.writable = 1;
		px_http_step(c);
		return;
	}
	snprintf(c->peer, sizeof c->peer, "%s", zt_tls_peer_id(s->ssl) ? zt_tls_peer_id(s->ssl) : "");
	if (!c->peer[0]) { /* cannot happen with FAIL_IF_NO_PEER_CERT; never trust it */
		px_conn_close(c, "the peer was not verified");
		return;
	}
	if (c->ls->inbound && c->ls->http) {
		/* each request is decided; the connection only needs a verified peer */
		X509 *leaf = SSL_get0_peer_certificate(s->ssl);
		unsigned char md[32];
		unsigned int mdlen = 0;

		if (!leaf || !X509_digest(leaf, EVP_sha256(), md, &mdlen) || mdlen != 32) {
			px_conn_close(c, "cannot hash the peer's certificate");
			return;
		}
		for (unsigned i = 0; i < 32; i++)
			snprintf(c->peer_hash + 2 * i, 3, "%02x", md[i]);
		c->allowed = 1;
		if (id_take(c->px, c->peer) != 0) {
			px_count(&c->ls->stats->refused_identity, 1);
			c->c.refuse = 1;
			px_conn_close(c, "maxConnectionsPerIdentity reached");
			return;
		}
		c->counted = 1;
		c->state = ST_HTTP;
		c->c.readable = c->c.writable = 1;
		px_http_step(c);
		return;
	}
	if (c->ls->inbound) {
		if (decide(c) != 0) {
			char why[256];

			px_count(&c->ls->stats->denied, 1);
			c->c.refuse = 1; /* an abrupt end tells the peer it was refused */
			snprintf(why, sizeof why, "denied by policy: %s", c->reason);
			px_conn_close(c, why);
			return;
		}
		px_count(&c->ls->stats->allowed, 1);
		if (id_take(c->px, c->peer) != 0) {
			px_count(&c->ls->stats->refused_identity, 1);
			c->c.refuse = 1;
			px_conn_close(c, "maxConnectionsPerIdentity reached");
			return;
		}
		c->counted = 1;
		if (start_connect(c) != 0) {
			px_conn_close(c, "cannot connect to the local service");
			return;
		}
		px_set_interest(c, &c->c, 0);
		return;
	}
	c->allowed = 1;
	px_target_ok(c->ls, c->target);
	px_count(&c->ls->stats->allowed, 1);
	c->state = ST_PIPING;
	c->c.readable = c->c.writable = c->u.readable = c->u.writable = 1;
	set_timer(c, c->px->cfg.idle_timeout);
	conn_step(c);
}

static void connected(struct conn *c)
{
	if (px_upstream_connected(c) != 0) {
		px_target_failed(c->ls, c->target, zt_loop_now_ms(c->w->loop));
		px_conn_close(c, "the upstream refused the connection");
		return;
	}
	if (c->ls->inbound) {
		px_target_ok(c->ls, c->target);
		c->state = ST_PIPING;
		c->c.readable = c->c.writable = c->u.readable = c->u.writable = 1;
		set_timer(c, c->px->cfg.idle_timeout);
		pipe_step(c);
		return;
	}
	if (!(c->u.ssl = SSL_new(c->snap->st->tls[c->ls - c->px->cfg.listeners])) ||
	    !SSL_set_fd(c->u.ssl, c->u.fd)) {
		px_conn_close(c, "out of memory");
		return;
	}
	SSL_set_connect_state(c->u.ssl);
	zt_tls_client_resume(c->u.ssl, c->ls->targets[c->target].text);
	c->state = ST_HANDSHAKE;
	set_timer(c, c->px->cfg.handshake_timeout);
	handshake(c);
}

ssize_t px_side_recv(struct side *s, uint8_t *p, size_t room)
{
	ssize_t n;

	if (s->ssl) {
		int r;

		ERR_clear_error();
		r = SSL_read(s->ssl, p, room > INT_MAX ? INT_MAX : (int)room);

		s->rd_wants_write = 0;
		switch (zt_tls_result(s->ssl, r)) {
		case ZT_TLS_DONE:
			/* nothing left in OpenSSL's buffer: let epoll say when the
			 * socket has more, rather than a read(2) that would block */
			if (!SSL_has_pending(s->ssl))
				s->readable = 0;
			return r;
		case ZT_TLS_WANT_READ:
			return WOULD_BLOCK;
		case ZT_TLS_WANT_WRITE:
			s->rd_wants_write = 1;
			return WOULD_BLOCK;
		case ZT_TLS_CLOSED:
			s->eof = 1;
			return 0;
		default:
			/* an end of stream without close_notify: the bytes so far are
			 * passed on, and the log says the close was not clean */
			if (ERR_GET_REASON(ERR_peek_last_error()) == SSL_R_UNEXPECTED_EOF_WHILE_READING) {
				ERR_clear_error();
				s->eof = 1;
				s->unclean = 1;
				return 0;
			}
			return -1;
		}
	}
	n = read(s->fd, p, room);
	if (n > 0) {
		/*
		 * A short read emptied the socket: wait for epoll (level-triggered,
		 * and asked for reads whenever readable is 0) instead of a read(2)
		 * that would only say EAGAIN. Two of six calls per request.
		 */
		if ((size_t)n < room)
			s->readable = 0;
		return n;
	}
	if (n == 0) {
		s->eof = 1;
		return 0;
	}
	return errno == EAGAIN || errno == EINTR ? WOULD_BLOCK : -1;
}

ssize_t px_side_send(struct side *s, const uint8_t *p, size_t len)
{
	ssize_t n;

	if (s->ssl) {
		int r;

		ERR_clear_error();
		r = SSL_write(s->ssl, p, len > INT_MAX ? INT_MAX : (int)len);

		s->wr_wants_read = 0;
		switch (zt_tls_result(s->ssl, r)) {
		case ZT_TLS_DONE:
			return r;
		case ZT_TLS_WANT_WRITE:
			return WOULD_BLOCK;
		case ZT_TLS_WANT_READ:
			s->wr_wants_read = 1;
			return WOULD_BLOCK;
		default:
			return -1;
		}
	}
	n = send(s->fd, p, len, MSG_NOSIGNAL);
	if (n < 0)
		return errno == EAGAIN || errno == EINTR ? WOULD_BLOCK : -1;
	return n;
}

/* Reads into b from s: bytes read, 0 at the end of stream or with no room,
 * WOULD_BLOCK, or -1 on error. */
static ssize_t side_read(struct side *s, struct buf *b, size_t cap)
{
	size_t room;
	ssize_t n;

	if (b->off && b->off + b->len == cap) { /* compact */
		memmove(b->p, b->p + b->off, b->len);
		b->off = 0;
	}
	room = cap - b->off - b->len;
	if (!room || s->eof)
		return 0;
	n = px_side_recv(s, b->p + b->off + b->len, room);
	if (n > 0)
		b->len += (size_t)n;
	return n;
}

/* Writes from b to s: bytes written, 0 with nothing to write, WOULD_BLOCK,
 * or -1 on error. */
static ssize_t side_write(struct side *s, struct buf *b)
{
	ssize_t n;

	if (!b->len)
		return 0;
	n = px_side_send(s, b->p + b->off, b->len);
	if (n < 0)
		return n;
	b->off += (size_t)n;
	b->len -= (size_t)n;
	if (!b->len)
		b->off = 0;
	return n;
}

/* Our direction towards s is finished: say so (FIN, or TLS close_notify). */
static void side_shutdown(struct side *s)
{
	if (s->shut || s->fd < 0)
		return;
	s->shut = 1;
	if (s->ssl) {
		ERR_clear_error();
		(void)SSL_shutdown(s->ssl); /* best effort: a failure ends nothing else */
		ERR_clear_error();
	} else
		(void)shutdown(s->fd, SHUT_WR);
}

/* Level-triggered interest only where we wait for the socket: reading when
 * there is room and the last read would have blocked, writing when bytes
 * wait and the last write would have blocked. */
static unsigned interest_for(const struct side *s, const struct buf *in, const struct buf *out,
			     size_t cap)
{
	unsigned w = 0;

	if ((!s->eof && in->len < cap && !s->readable) || s->wr_wants_read)
		w |= ZT_EV_READ;
	if ((out->len && !s->writable) || s->rd_wants_write)
		w |= ZT_EV_WRITE;
	return w;
}

/* One direction: read from `from` while it has bytes and there is room,
 * write to `to` while it takes them. Bytes moved, -1 when `from` failed,
 * -2 when `to` failed. */
static ssize_t flow(struct side *from, struct buf *b, struct side *to, size_t cap, uint64_t *count)
{
	ssize_t moved = 0;

	for (;;) {
		ssize_t r = 0, w = 0;

		if (from->readable) {
			r = side_read(from, b, cap);
			if (r == WOULD_BLOCK) {
				from->readable = 0;
				r = 0;
			} else if (r < 0) {
				return -1;
			}
		}
		if (to->writable) {
			w = side_write(to, b);
			if (w == WOULD_BLOCK) {
				to->writable = 0;
				w = 0;
			} else if (w < 0) {
				return -2;
			}
		}
		*count += (uint64_t)w;
		moved += r + w;
		if (r <= 0 && w <= 0)
			return moved;
	}
}

static void pipe_step(struct conn *c)
{
	size_t cap = c->px->cfg.buffer_bytes;
	ssize_t a, b = 0;

	if ((!c->c2u.p && !(c->c2u.p = malloc(cap))) || (!c->u2c.p && !(c->u2c.p = malloc(cap)))) {
		px_conn_close(c, "out of memory");
		return;
	}
	a = flow(&c->c, &c->c2u, &c->u, cap, &c->bytes_c2u);
	if (a >= 0)
		b = flow(&c->u, &c->u2c, &c->c, cap, &c->bytes_u2c);
	if (a < 0 || b < 0) {
		/* flow(c->u): -1 the client failed, -2 the upstream; flow(u->c) the reverse */
		px_conn_close(c, a == -1 || b == -2 ? "the client side failed" : "the upstream side failed");
		return;
	}
	/* half-close: pass an end of stream on once its bytes are through */
	if (c->c.eof && !c->c2u.len)
		side_shutdown(&c->u);
	if (c->u.eof && !c->u2c.len)
		side_shutdown(&c->c);
	if (c->c.eof && c->u.eof && !c->c2u.len && !c->u2c.len) {
		px_conn_close(c, c->c.unclean ? "closed (the client sent no TLS close_notify)"
			      : c->u.unclean ? "closed (the upstream sent no TLS close_notify)"
					     : "closed");
		return;
	}
	if (a + b > 0)
		set_timer(c, c->px->cfg.idle_timeout);
	/* an idle connection holds no buffer: memory goes to traffic, not to
	 * connections waiting for it */
	if (!c->c2u.len) {
		free(c->c2u.p);
		c->c2u.p = NULL;
	}
	if (!c->u2c.len) {
		free(c->u2c.p);
		c->u2c.p = NULL;
	}
	px_set_interest(c, &c->c, interest_for(&c->c, &c->c2u, &c->u2c, cap));
	px_set_interest(c, &c->u, interest_for(&c->u, &c->u2c, &c->c2u, cap));
}

static void conn_step(struct conn *c)
{
	switch (c->state) {
	case ST_HANDSHAKE:
		handshake(c);
		break;
	case ST_CONNECTING:
		connected(c);
		break;
	case ST_PIPING:
		pipe_step(c);
		break;
	case ST_HTTP:
		px_http_step(c);
		break;
	}
}

void px_on_accept(zt_loop *loop, int lfd, unsigned events, void *arg)
{
	struct px_acceptor *a = arg;
	struct px_listener *l = a->l;
	struct px_worker *w = a->w;
	zt_proxy *px = w->px;

	(void)events;
	for (int k = 0; k < 64; k++) {
		struct sockaddr_storage ss;
		socklen_t sl = sizeof ss;
		int fd = accept4(lfd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
		struct conn *c;

		if (fd < 0)
			return;
		/* the cap holds across workers: take a place first, give it back if over */
		if (atomic_fetch_add(&px->nconns, 1) >= px->cfg.max_conns || atomic_load(&px->stopping)) {
			atomic_fetch_sub(&px->nconns, 1);
			zt_log(ZT_LOG_WARN, "connection refused", "listener", l->name, "reason",
			       atomic_load(&px->stopping) ? "draining" : "maxConnections reached", NULL);
			px_count(&l->stats->refused_cap, 1);
			close(fd);
			continue;
		}
		if (!(c = calloc(1, sizeof *c))) {
			atomic_fetch_sub(&px->nconns, 1);
			close(fd);
			continue;
		}
		no_delay(fd);
		w->nconns++;
		c->next = w->conns;
		if (w->conns)
			w->conns->prev = c;
		w->conns = c;
		px_count(&l->stats->accepted, 1);
		px_count(&l->stats->active, 1);
		c->px = px;
		c->w = w;
		c->snap = px_snap_get(px);
		c->ls = l;
		c->c.fd = fd;
		c->u.fd = -1;
		c->target = -1;
		c->start_ms = zt_loop_now_ms(loop);
		zt_timer_init(&c->timer, on_timeout, c);
		if (ss.ss_family == AF_INET)
			inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, c->src, sizeof c->src);
		else if (ss.ss_family == AF_INET6)
			inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, c->src, sizeof c->src);
		if (watch(c, &c->c, l->inbound ? ZT_EV_READ : 0) != 0) {
			px_conn_close(c, "cannot watch the connection");
			continue;
		}
		if (l->inbound) {
			if (!(c->c.ssl = SSL_new(c->snap->st->tls[l - px->cfg.listeners])) ||
			    !SSL_set_fd(c->c.ssl, fd)) {
				px_conn_close(c, "out of memory");
				continue;
			}
			SSL_set_accept_state(c->c.ssl);
			c->state = ST_HANDSHAKE;
			set_timer(c, px->cfg.handshake_timeout);
		} else if (l->http) {
			/* the upstream is chosen and opened by the first request */
			c->state = ST_HTTP;
			c->allowed = 1;
			px_http_step(c);
		} else if (start_connect(c) != 0) {
			/* allowed stays 0 until the upstream proves its identity */
			px_conn_close(c, "cannot connect to the upstream");
		}
	}
}
