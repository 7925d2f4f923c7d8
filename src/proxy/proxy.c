/*
 * proxy/proxy.c: the L4 data path — accept, mutual TLS, the identity and
 * policy checks, the upstream connection, and bytes both ways with bounded
 * buffers (a full buffer stops reading: backpressure, not growth).
 */
#include "proxy_int.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <stddef.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/err.h>

enum state { ST_HANDSHAKE, ST_CONNECTING, ST_PIPING };

struct buf {
	uint8_t *p;
	size_t off, len;
};

struct side {
	int fd;
	SSL *ssl;
	int eof;            /* nothing more will be read */
	int shut;           /* we closed our direction towards it */
	int rd_wants_write; /* SSL_read needs the socket writable */
	int wr_wants_read;  /* SSL_write needs the socket readable */
	int unclean;        /* TLS peer closed without close_notify */
	int readable;       /* may have bytes: cleared when a read would block */
	int writable;       /* may take bytes: cleared when a write would block */
	unsigned interest;
};

#define WOULD_BLOCK (-2)

struct conn {
	zt_proxy *px;
	struct px_listener *ls;
	struct side c, u; /* c: the accepted connection; u: the upstream */
	struct buf c2u, u2c;
	enum state state;
	unsigned hs_want; /* what the handshake waits for */
	zt_timer timer;
	char peer[2049];
	char src[64];
	/* copies: the snapshot they came from may be replaced while we run */
	char policy[512];
	char reason[160]; /* the policy engine's, when it denied */
	int allowed;
	uint64_t start_ms, bytes_c2u, bytes_u2c;
	int counted; /* holds a place in its identity's count */
	struct conn *prev, *next; /* every open connection, for the end */
};

/* Open connections per verified peer identity. */
#define ID_BUCKETS 1024

struct id_count {
	struct id_count *next;
	size_t n;
	char id[];
};

/* What the identity files give, swapped whole when they change. */
struct px_state {
	zt_bundle_set *bundles;
	X509 *cert;
	STACK_OF(X509) *chain;
	EVP_PKEY *key;
	char own_id[2049];
	SSL_CTX *tls[PX_MAX_LISTENERS]; /* connections in flight keep their own reference */
};

struct zt_proxy {
	struct px_config cfg;
	char config_path[PATH_MAX];
	zt_loop *loop;
	struct px_state *st;
	zt_policy_snapshot *policy;
	uint64_t id_sig, policy_sig; /* what the watched files looked like */
	zt_timer watch;
	zt_timer drain; /* after SIGTERM: the deadline for open connections */
	struct conn *conns;
	size_t nconns;
	int stopping;
	struct px_stats stats[PX_MAX_LISTENERS];
	struct id_count *ids[ID_BUCKETS];
	int admin_fd;
};

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
	struct id_count **p = id_slot(px, id);

	if (!*p) {
		size_t n = strlen(id);

		if (!(*p = calloc(1, sizeof **p + n + 1)))
			return -1;
		memcpy((*p)->id, id, n + 1);
	}
	if ((*p)->n >= px->cfg.max_per_id)
		return -1;
	(*p)->n++;
	return 0;
}

static void id_release(zt_proxy *px, const char *id)
{
	struct id_count **p = id_slot(px, id), *dead;

	if (!*p || --(*p)->n)
		return;
	dead = *p;
	*p = dead->next;
	free(dead);
}

/* Counts a failed handshake under its reason: the SVID rule tag when there is
 * one ("[expired] ..."), else a short class. */
static void count_failure(struct px_stats *st, const char *why)
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
	for (size_t i = 0; i < st->nfailures; i++)
		if (strcmp(st->failures[i].reason, reason) == 0) {
			st->failures[i].n++;
			return;
		}
	if (st->nfailures == PX_MAX_REASONS)
		snprintf(reason, sizeof reason, "other");
	else
		st->nfailures++;
	snprintf(st->failures[st->nfailures - 1].reason, sizeof st->failures[0].reason, "%s", reason);
	st->failures[st->nfailures - 1].n++;
}

static volatile sig_atomic_t got_signal;
static zt_loop *signal_loop;

static void on_signal(int sig)
{
	got_signal = sig;
	if (signal_loop)
		zt_loop_wake(signal_loop);
}

/* ---- verification of peers ---- */

static int verify_inbound(void *arg, STACK_OF(X509) *chain, char *peer, size_t peersz, zt_err *e)
{
	zt_proxy *px = arg;
	zt_svid_info info;
	int r;

	if ((r = zt_svid_verify(px->st->bundles, chain, NULL, &info, e)) != 0)
		return r;
	snprintf(peer, peersz, "%s", info.id.str);
	return 0;
}

/* Secure naming: the upstream must be one of the workloads we meant. */
static int verify_outbound(void *arg, STACK_OF(X509) *chain, char *peer, size_t peersz, zt_err *e)
{
	struct px_listener *l = arg;
	zt_svid_info info;
	int r;

	if ((r = zt_svid_verify(l->px->st->bundles, chain, NULL, &info, e)) != 0)
		return r;
	snprintf(peer, peersz, "%s", info.id.str);
	for (size_t i = 0; i < l->nexpect; i++)
		if (strcmp(l->expect[i].str, info.id.str) == 0)
			return 0;
	return zt_err_rule(e, ZT_EVERIFY, "unexpected-peer",
			   "the upstream presented %s, which is not among the IDs listener %s expects",
			   info.id.str, l->name);
}

/* ---- connections ---- */

static void conn_close(struct conn *c, const char *why);
static void conn_step(struct conn *c);
static void pipe_step(struct conn *c);

static void log_conn(struct conn *c, const char *why)
{
	char dur[32], in[32], out[32], dest[2100];
	const struct px_listener *l = c->ls;

	snprintf(dur, sizeof dur, "%llu",
		 (unsigned long long)(zt_loop_now_ms(c->px->loop) - c->start_ms));
	snprintf(in, sizeof in, "%llu", (unsigned long long)c->bytes_c2u);
	snprintf(out, sizeof out, "%llu", (unsigned long long)c->bytes_u2c);
	if (l->inbound)
		snprintf(dest, sizeof dest, "%s", l->service);
	else if (c->peer[0])
		snprintf(dest, sizeof dest, "%s", c->peer);
	else
		snprintf(dest, sizeof dest, "%s (not verified)", l->upstream_text);
	zt_log(c->allowed ? ZT_LOG_INFO : ZT_LOG_WARN, "connection", "listener", l->name,
	       "direction", l->inbound ? "inbound" : "outbound", "source",
	       l->inbound ? (c->peer[0] ? c->peer : "(not verified)") : c->px->st->own_id,
	       "source_ip", c->src, "destination", dest, "decision",
	       c->allowed ? "allow" : "deny", "policy", c->policy,
	       "bytes_in", in, "bytes_out", out, "duration_ms", dur, "end", why, NULL);
}

static void side_close(zt_loop *l, struct side *s)
{
	if (s->ssl)
		SSL_free(s->ssl);
	if (s->fd >= 0) {
		zt_loop_del(l, s->fd);
		close(s->fd);
	}
	s->ssl = NULL;
	s->fd = -1;
}

static void conn_close(struct conn *c, const char *why)
{
	zt_proxy *px = c->px;

	log_conn(c, why);
	c->ls->stats->active--;
	c->ls->stats->bytes_in += c->bytes_c2u;
	c->ls->stats->bytes_out += c->bytes_u2c;
	if (c->state == ST_HANDSHAKE && !c->peer[0])
		count_failure(c->ls->stats, why);
	if (c->counted)
		id_release(px, c->peer);
	zt_timer_cancel(px->loop, &c->timer);
	side_close(px->loop, &c->c);
	side_close(px->loop, &c->u);
	free(c->c2u.p);
	free(c->u2c.p);
	if (c->prev)
		c->prev->next = c->next;
	else
		px->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	free(c);
	px->nconns--;
	if (px->stopping && px->nconns == 0)
		zt_loop_stop(px->loop);
}

static void on_timeout(zt_loop *l, void *arg)
{
	struct conn *c = arg;

	(void)l;
	conn_close(c, c->state == ST_HANDSHAKE    ? "handshake timeout"
		      : c->state == ST_CONNECTING ? "upstream connect timeout"
						  : "idle timeout");
}

static void set_timer(struct conn *c, int64_t secs)
{
	if (zt_timer_set(c->px->loop, &c->timer, (uint64_t)secs * 1000u) != 0)
		zt_log(ZT_LOG_ERROR, "cannot arm a timer (out of memory)", NULL);
}

static void set_interest(struct conn *c, struct side *s, unsigned want)
{
	zt_err e;

	if (s->fd < 0 || s->interest == want)
		return;
	if (zt_loop_mod(c->px->loop, s->fd, want, &e) == 0)
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

	if (zt_loop_add(c->px->loop, s->fd, want, on_io, c, &e) != 0) {
		zt_log(ZT_LOG_ERROR, "cannot watch a connection", "error", e.msg, NULL);
		return -1;
	}
	s->interest = want;
	return 0;
}

/* Small writes go out at once: a proxy must not add Nagle's delay. */
static void no_delay(int fd)
{
	int one = 1;

	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

static int start_connect(struct conn *c)
{
	struct px_listener *l = c->ls;
	int fd = socket(l->target.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	c->u.fd = fd;
	if (fd < 0)
		return -1;
	no_delay(fd);
	if (connect(fd, (struct sockaddr *)&l->target, l->target_len) != 0 && errno != EINPROGRESS)
		return -1;
	c->state = ST_CONNECTING;
	set_timer(c, c->px->cfg.connect_timeout);
	return watch(c, &c->u, ZT_EV_WRITE);
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
	zt_policy_decide(c->px->policy, &req, &d);
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
		set_interest(c, s, ZT_EV_READ);
		return;
	case ZT_TLS_WANT_WRITE:
		set_interest(c, s, ZT_EV_WRITE);
		return;
	case ZT_TLS_DONE:
		break;
	default:
		err = zt_tls_peer_error(s->ssl);
		if (!err || !strcmp(err, "the peer presented no certificate"))
			err = SSL_get_verify_result(s->ssl) != X509_V_OK ? zt_tls_peer_error(s->ssl)
									  : zt_tls_error_text();
		conn_close(c, err ? err : "TLS handshake failed");
		return;
	}
	snprintf(c->peer, sizeof c->peer, "%s", zt_tls_peer_id(s->ssl) ? zt_tls_peer_id(s->ssl) : "");
	if (!c->peer[0]) { /* cannot happen with FAIL_IF_NO_PEER_CERT; never trust it */
		conn_close(c, "the peer was not verified");
		return;
	}
	if (c->ls->inbound) {
		if (decide(c) != 0) {
			char why[256];

			c->ls->stats->denied++;
			snprintf(why, sizeof why, "denied by policy: %s", c->reason);
			conn_close(c, why);
			return;
		}
		c->ls->stats->allowed++;
		if (id_take(c->px, c->peer) != 0) {
			c->ls->stats->refused_identity++;
			conn_close(c, "maxConnectionsPerIdentity reached");
			return;
		}
		c->counted = 1;
		if (start_connect(c) != 0) {
			conn_close(c, "cannot connect to the local service");
			return;
		}
		set_interest(c, &c->c, 0);
		return;
	}
	c->allowed = 1;
	c->ls->stats->allowed++;
	c->state = ST_PIPING;
	c->c.readable = c->c.writable = c->u.readable = c->u.writable = 1;
	set_timer(c, c->px->cfg.idle_timeout);
	conn_step(c);
}

static void connected(struct conn *c)
{
	int err = 0;
	socklen_t len = sizeof err;

	if (getsockopt(c->u.fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err) {
		conn_close(c, "the upstream refused the connection");
		return;
	}
	if (c->ls->inbound) {
		c->state = ST_PIPING;
		c->c.readable = c->c.writable = c->u.readable = c->u.writable = 1;
		set_timer(c, c->px->cfg.idle_timeout);
		pipe_step(c);
		return;
	}
	if (!(c->u.ssl = SSL_new(c->px->st->tls[c->ls - c->px->cfg.listeners])) ||
	    !SSL_set_fd(c->u.ssl, c->u.fd)) {
		conn_close(c, "out of memory");
		return;
	}
	SSL_set_connect_state(c->u.ssl);
	c->state = ST_HANDSHAKE;
	set_timer(c, c->px->cfg.handshake_timeout);
	handshake(c);
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
	if (s->ssl) {
		int r;

		ERR_clear_error();
		r = SSL_read(s->ssl, b->p + b->off + b->len, (int)room);

		s->rd_wants_write = 0;
		switch (zt_tls_result(s->ssl, r)) {
		case ZT_TLS_DONE:
			b->len += (size_t)r;
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
	n = read(s->fd, b->p + b->off + b->len, room);
	if (n > 0) {
		b->len += (size_t)n;
		return n;
	}
	if (n == 0) {
		s->eof = 1;
		return 0;
	}
	return errno == EAGAIN || errno == EINTR ? WOULD_BLOCK : -1;
}

/* Writes from b to s: bytes written, 0 with nothing to write, WOULD_BLOCK,
 * or -1 on error. */
static ssize_t side_write(struct side *s, struct buf *b)
{
	ssize_t n;

	if (!b->len)
		return 0;
	if (s->ssl) {
		int r;

		ERR_clear_error();
		r = SSL_write(s->ssl, b->p + b->off, (int)b->len);

		s->wr_wants_read = 0;
		switch (zt_tls_result(s->ssl, r)) {
		case ZT_TLS_DONE:
			n = r;
			break;
		case ZT_TLS_WANT_WRITE:
			return WOULD_BLOCK;
		case ZT_TLS_WANT_READ:
			s->wr_wants_read = 1;
			return WOULD_BLOCK;
		default:
			return -1;
		}
	} else {
		n = send(s->fd, b->p + b->off, b->len, MSG_NOSIGNAL);
		if (n < 0)
			return errno == EAGAIN || errno == EINTR ? WOULD_BLOCK : -1;
	}
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
		conn_close(c, "out of memory");
		return;
	}
	a = flow(&c->c, &c->c2u, &c->u, cap, &c->bytes_c2u);
	if (a >= 0)
		b = flow(&c->u, &c->u2c, &c->c, cap, &c->bytes_u2c);
	if (a < 0 || b < 0) {
		/* flow(c->u): -1 the client failed, -2 the upstream; flow(u->c) the reverse */
		conn_close(c, a == -1 || b == -2 ? "the client side failed" : "the upstream side failed");
		return;
	}
	/* half-close: pass an end of stream on once its bytes are through */
	if (c->c.eof && !c->c2u.len)
		side_shutdown(&c->u);
	if (c->u.eof && !c->u2c.len)
		side_shutdown(&c->c);
	if (c->c.eof && c->u.eof && !c->c2u.len && !c->u2c.len) {
		conn_close(c, c->c.unclean ? "closed (the client sent no TLS close_notify)"
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
	set_interest(c, &c->c, interest_for(&c->c, &c->c2u, &c->u2c, cap));
	set_interest(c, &c->u, interest_for(&c->u, &c->u2c, &c->c2u, cap));
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
	}
}

static void on_accept(zt_loop *loop, int lfd, unsigned events, void *arg)
{
	struct px_listener *l = arg;
	zt_proxy *px = l->px;

	(void)events;
	for (int k = 0; k < 64; k++) {
		struct sockaddr_storage ss;
		socklen_t sl = sizeof ss;
		int fd = accept4(lfd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
		struct conn *c;

		if (fd < 0)
			return;
		if (px->nconns >= px->cfg.max_conns || px->stopping) {
			zt_log(ZT_LOG_WARN, "connection refused", "listener", l->name, "reason",
			       px->stopping ? "draining" : "maxConnections reached", NULL);
			l->stats->refused_cap++;
			close(fd);
			continue;
		}
		if (!(c = calloc(1, sizeof *c))) {
			close(fd);
			continue;
		}
		no_delay(fd);
		px->nconns++;
		c->next = px->conns;
		if (px->conns)
			px->conns->prev = c;
		px->conns = c;
		l->stats->accepted++;
		l->stats->active++;
		c->px = px;
		c->ls = l;
		c->c.fd = fd;
		c->u.fd = -1;
		c->start_ms = zt_loop_now_ms(loop);
		zt_timer_init(&c->timer, on_timeout, c);
		if (ss.ss_family == AF_INET)
			inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, c->src, sizeof c->src);
		else if (ss.ss_family == AF_INET6)
			inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, c->src, sizeof c->src);
		if (watch(c, &c->c, l->inbound ? ZT_EV_READ : 0) != 0) {
			conn_close(c, "cannot watch the connection");
			continue;
		}
		if (l->inbound) {
			if (!(c->c.ssl = SSL_new(px->st->tls[l - px->cfg.listeners])) ||
			    !SSL_set_fd(c->c.ssl, fd)) {
				conn_close(c, "out of memory");
				continue;
			}
			SSL_set_accept_state(c->c.ssl);
			c->state = ST_HANDSHAKE;
			set_timer(c, px->cfg.handshake_timeout);
		} else if (start_connect(c) != 0) {
			/* allowed stays 0 until the upstream proves its identity */
			conn_close(c, "cannot connect to the upstream");
		}
	}
}

/* ---- the daemon ---- */

static void state_free(struct px_state *st, size_t nlisteners)
{
	if (!st)
		return;
	for (size_t i = 0; i < nlisteners; i++)
		SSL_CTX_free(st->tls[i]);
	zt_bundle_set_free(st->bundles);
	X509_free(st->cert);
	sk_X509_pop_free(st->chain, X509_free);
	EVP_PKEY_free(st->key);
	free(st);
}

/* Loads the SVID, its key and the bundle, checks them, and makes the TLS
 * contexts of every listener from them. */
static struct px_state *state_load(zt_proxy *px, zt_err *e)
{
	const struct px_config *cfg = &px->cfg;
	struct px_state *st = calloc(1, sizeof *st);
	STACK_OF(X509) *certs = NULL, *own = NULL;
	zt_bundle *b;
	zt_svid_info info;

	if (!st) {
		zt_err_set(e, ZT_ENOMEM, "out of memory");
		return NULL;
	}
	if (zt_certs_load(cfg->cert, &certs, e) != 0)
		goto fail;
	st->cert = sk_X509_shift(certs);
	st->chain = certs;
	if (!(st->key = zt_key_load(cfg->key, e)))
		goto fail;
	if (!zt_key_matches_cert(st->key, st->cert)) {
		zt_err_set(e, ZT_EINVAL, "%s is not the key of %s", cfg->key, cfg->cert);
		goto fail;
	}
	if (!(b = zt_bundle_load(cfg->td, cfg->bundle, e)) ||
	    !(st->bundles = zt_bundle_set_new()) || zt_bundle_set_put(st->bundles, b, e) != 0)
		goto fail;
	/* our own SVID must pass the rules we apply to others */
	if (!(own = sk_X509_dup(st->chain)) || !sk_X509_unshift(own, st->cert)) {
		zt_err_set(e, ZT_ENOMEM, "out of memory");
		goto fail;
	}
	if (zt_svid_verify(st->bundles, own, NULL, &info, e) != 0) {
		zt_err_wrap(e, "the proxy's own SVID %s", cfg->cert);
		goto fail;
	}
	snprintf(st->own_id, sizeof st->own_id, "%s", info.id.str);
	for (size_t i = 0; i < cfg->nlisteners; i++) {
		const struct px_listener *l = &cfg->listeners[i];
		zt_tls_opts o = {
			.server = l->inbound,
			.allow_tls12 = cfg->allow_tls12,
			.cert = st->cert,
			.chain = st->chain,
			.key = st->key,
			.verify = l->inbound ? verify_inbound : verify_outbound,
			.verify_arg = l->inbound ? (void *)px : (void *)&px->cfg.listeners[i],
		};

		if (!(st->tls[i] = zt_tls_ctx_new(&o, e)))
			goto fail;
	}
	sk_X509_free(own);
	return st;
fail:
	sk_X509_free(own);
	state_free(st, cfg->nlisteners);
	return NULL;
}

static zt_policy_snapshot *policy_load(const char *path, zt_err *e)
{
	zt_policy_snapshot *snap;
	zt_policy_src *src;

	if (!(src = zt_policy_src_new(NULL))) {
		zt_err_set(e, ZT_ENOMEM, "out of memory");
		return NULL;
	}
	zt_policy_src_add_path(src, path);
	zt_policy_src_check(src);
	for (size_t i = 0; i < zt_policy_src_ndiags(src); i++) {
		const zt_diag *d = zt_policy_src_diag(src, i);
		char line[32];

		snprintf(line, sizeof line, "%d", d->line);
		zt_log(d->level == ZT_DIAG_ERROR ? ZT_LOG_ERROR : ZT_LOG_WARN, "policy diagnostic",
		       "file", d->file, "line", line, "message", d->msg, NULL);
	}
	snap = zt_policy_compile(src, e);
	zt_policy_src_free(src);
	return snap;
}

/* ---- watching the files ---- */

static uint64_t mix(uint64_t h, uint64_t v)
{
	h ^= v + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
	return h;
}

/* What a file or folder (its files, recursively) looks like now: a change of
 * content, size, time, inode, or set of files changes the value. */
static uint64_t path_sig(const char *path, int depth)
{
	struct stat st;
	uint64_t h = 1469598103934665603ull;

	if (stat(path, &st) != 0)
		return mix(h, 0xdead);
	h = mix(h, (uint64_t)st.st_ino);
	h = mix(h, (uint64_t)st.st_size);
	h = mix(h, (uint64_t)st.st_mtim.tv_sec * 1000000000ull + (uint64_t)st.st_mtim.tv_nsec);
	h = mix(h, (uint64_t)st.st_ctim.tv_sec * 1000000000ull + (uint64_t)st.st_ctim.tv_nsec);
	if (S_ISDIR(st.st_mode) && depth < 8) {
		DIR *d = opendir(path);
		struct dirent *de;

		while (d && (de = readdir(d)) != NULL) {
			char sub[PATH_MAX];

			if (de->d_name[0] == '.')
				continue;
			snprintf(sub, sizeof sub, "%s/%s", path, de->d_name);
			/* order-independent: readdir's order is not stable */
			h ^= path_sig(sub, depth + 1) * 0x100000001b3ull;
		}
		if (d)
			closedir(d);
	}
	return h;
}

static uint64_t identity_sig(const struct px_config *cfg)
{
	return mix(mix(path_sig(cfg->cert, 0), path_sig(cfg->key, 0)), path_sig(cfg->bundle, 0));
}

/*
 * New identity or policy in force, or the old kept with the reason logged:
 * a bad file never replaces a good snapshot. Connections already open keep
 * what they started with; new ones use the new.
 */
static void reload(zt_proxy *px, int force)
{
	uint64_t ids = identity_sig(&px->cfg);
	uint64_t pols = px->cfg.policy[0] ? path_sig(px->cfg.policy, 0) : 0;
	zt_err e;

	if (force || ids != px->id_sig) {
		struct px_state *st = state_load(px, &e);

		if (st) {
			state_free(px->st, px->cfg.nlisteners);
			px->st = st;
			zt_log(ZT_LOG_INFO, "identity reloaded", "identity", st->own_id, NULL);
		} else {
			zt_log(ZT_LOG_ERROR, "identity reload refused; the previous SVID and bundle stay in force",
			       "error", e.msg, NULL);
		}
		px->id_sig = ids;
	}
	if (px->cfg.policy[0] && (force || pols != px->policy_sig)) {
		zt_policy_snapshot *snap = policy_load(px->cfg.policy, &e);

		if (snap) {
			zt_policy_snapshot_unref(px->policy);
			px->policy = snap;
			zt_log(ZT_LOG_INFO, "policy reloaded", "path", px->cfg.policy, NULL);
		} else {
			zt_log(ZT_LOG_ERROR, "policy reload refused; the previous policy stays in force",
			       "error", e.msg, NULL);
		}
		px->policy_sig = pols;
	}
}

#define WATCH_MS 1000

static void on_watch(zt_loop *l, void *arg)
{
	zt_proxy *px = arg;

	reload(px, 0);
	if (zt_timer_set(l, &px->watch, WATCH_MS) != 0)
		zt_log(ZT_LOG_ERROR, "cannot re-arm the file watch", NULL);
}

zt_proxy *zt_proxy_new(const char *path, zt_err *e)
{
	zt_proxy *px = calloc(1, sizeof *px);

	if (!px) {
		zt_err_set(e, ZT_ENOMEM, "out of memory");
		return NULL;
	}
	snprintf(px->config_path, sizeof px->config_path, "%s", path);
	if (px_config_load(&px->cfg, path, e) != 0)
		goto fail;
	px->admin_fd = -1;
	for (size_t i = 0; i < px->cfg.nlisteners; i++) {
		px->cfg.listeners[i].fd = -1;
		px->cfg.listeners[i].px = px;
		px->cfg.listeners[i].stats = &px->stats[i];
	}
	px->id_sig = identity_sig(&px->cfg);
	px->policy_sig = px->cfg.policy[0] ? path_sig(px->cfg.policy, 0) : 0;
	if (!(px->st = state_load(px, e)))
		goto fail;
	if (px->cfg.policy[0] && !(px->policy = policy_load(px->cfg.policy, e)))
		goto fail;
	for (size_t i = 0; i < px->cfg.nlisteners; i++)
		if (px->cfg.listeners[i].inbound && !px->cfg.listeners[i].service[0])
			snprintf(px->cfg.listeners[i].service, sizeof px->cfg.listeners[i].service, "%s",
				 px->st->own_id);
	return px;
fail:
	zt_proxy_free(px);
	return NULL;
}

void zt_proxy_free(zt_proxy *px)
{
	if (!px)
		return;
	for (size_t i = 0; i < px->cfg.nlisteners; i++)
		if (px->cfg.listeners[i].fd >= 0)
			close(px->cfg.listeners[i].fd);
	state_free(px->st, px->cfg.nlisteners);
	zt_policy_snapshot_unref(px->policy);
	zt_loop_free(px->loop);
	if (px->admin_fd >= 0)
		close(px->admin_fd);
	for (size_t b = 0; b < ID_BUCKETS; b++)
		for (struct id_count *ic = px->ids[b], *next; ic; ic = next) {
			next = ic->next;
			free(ic);
		}
	free(px);
}

int px_ready(const zt_proxy *px)
{
	return !px->stopping;
}

/* Prometheus text exposition format 0.0.4 */
int px_metrics(const zt_proxy *px, zt_buf *out, zt_err *e)
{
	static const struct {
		const char *name, *type, *help;
		size_t off;
	} m[] = {
#define M(n, t, h, f) { "zt_proxy_" n, t, h, offsetof(struct px_stats, f) }
		M("connections_total", "counter", "Connections accepted.", accepted),
		M("connections_active", "gauge", "Connections open now.", active),
		M("connections_refused_total", "counter", "Connections refused at maxConnections.", refused_cap),
		M("connections_refused_identity_total", "counter", "Connections refused at maxConnectionsPerIdentity.", refused_identity),
		M("decisions_allow_total", "counter", "Connections allowed (inbound: by policy; outbound: upstream verified).", allowed),
		M("decisions_deny_total", "counter", "Inbound connections denied by policy.", denied),
		M("bytes_in_total", "counter", "Bytes from the accepting side to the upstream side.", bytes_in),
		M("bytes_out_total", "counter", "Bytes from the upstream side to the accepting side.", bytes_out),
#undef M
	};
	int r = 0;

	for (size_t k = 0; k < sizeof m / sizeof m[0] && !r; k++) {
		r = zt_buf_appendf(out, e, "# HELP %s %s\n# TYPE %s %s\n", m[k].name, m[k].help,
				   m[k].name, m[k].type);
		for (size_t i = 0; i < px->cfg.nlisteners && !r; i++) {
			const struct px_stats *st = &px->stats[i];
			uint64_t v;

			memcpy(&v, (const char *)st + m[k].off, sizeof v);
			r = zt_buf_appendf(out, e, "%s{listener=\"%s\"} %llu\n", m[k].name,
					   px->cfg.listeners[i].name, (unsigned long long)v);
		}
	}
	if (!r)
		r = zt_buf_appendf(out, e,
				   "# HELP zt_proxy_handshake_failures_total Handshakes that failed, by reason (SVID rule, no-certificate, timeout, tls).\n"
				   "# TYPE zt_proxy_handshake_failures_total counter\n");
	for (size_t i = 0; i < px->cfg.nlisteners && !r; i++)
		for (size_t f = 0; f < px->stats[i].nfailures && !r; f++)
			r = zt_buf_appendf(out, e,
					   "zt_proxy_handshake_failures_total{listener=\"%s\",reason=\"%s\"} %llu\n",
					   px->cfg.listeners[i].name, px->stats[i].failures[f].reason,
					   (unsigned long long)px->stats[i].failures[f].n);
	return r;
}

static void close_listeners(zt_proxy *px)
{
	for (size_t i = 0; i < px->cfg.nlisteners; i++) {
		struct px_listener *l = &px->cfg.listeners[i];

		if (l->fd >= 0) {
			zt_loop_del(px->loop, l->fd);
			close(l->fd);
			l->fd = -1;
		}
	}
}

static void on_drain_deadline(zt_loop *loop, void *arg)
{
	zt_proxy *px = arg;
	char n[32];

	snprintf(n, sizeof n, "%zu", px->nconns);
	zt_log(ZT_LOG_WARN, "drain deadline reached; closing the connections still open", "open", n,
	       NULL);
	zt_loop_stop(loop);
}

static void on_wake(zt_loop *loop, void *arg)
{
	zt_proxy *px = arg;

	if (!got_signal)
		return;
	if (got_signal == SIGHUP) {
		got_signal = 0;
		zt_log(ZT_LOG_INFO, "SIGHUP: reloading identity and policy", NULL);
		reload(px, 1);
		return;
	}
	if (px->stopping) { /* a second signal: stop now */
		zt_loop_stop(loop);
		return;
	}
	/* stop accepting; the connections open now finish (or the next signal) */
	zt_log(ZT_LOG_INFO, "stopping: listeners closed, waiting for open connections (drainTimeout)", NULL);
	px->stopping = 1;
	got_signal = 0;
	close_listeners(px);
	if (px->nconns == 0) {
		zt_loop_stop(loop);
		return;
	}
	zt_timer_init(&px->drain, on_drain_deadline, px);
	if (zt_timer_set(loop, &px->drain, (uint64_t)px->cfg.drain_timeout * 1000u) != 0)
		zt_loop_stop(loop);
}

int zt_proxy_run(zt_proxy *px, zt_err *e)
{
	struct sigaction sa;
	int r;

	if (!(px->loop = zt_loop_new(0, e)))
		return -ZT_EIO;
	for (size_t i = 0; i < px->cfg.nlisteners; i++) {
		struct px_listener *l = &px->cfg.listeners[i];
		int one = 1;

		l->fd = socket(l->listen.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (l->fd < 0 || setsockopt(l->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
		    bind(l->fd, (struct sockaddr *)&l->listen, l->listen_len) != 0 ||
		    listen(l->fd, 1024) != 0)
			return zt_err_set(e, ZT_EIO, "listener %s: cannot listen: %s", l->name,
					  strerror(errno));
		if ((r = zt_loop_add(px->loop, l->fd, ZT_EV_READ, on_accept, l, e)) != 0)
			return r;
	}
	signal(SIGPIPE, SIG_IGN);
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	signal_loop = px->loop;
	zt_loop_set_wake(px->loop, on_wake, px);
	if ((r = px_admin_open(px, px->loop, &px->cfg, &px->admin_fd, e)) != 0)
		return r;
	zt_timer_init(&px->watch, on_watch, px);
	if ((r = zt_timer_set(px->loop, &px->watch, WATCH_MS)) != 0)
		return zt_err_set(e, ZT_ENOMEM, "cannot arm the file watch");
	zt_log(ZT_LOG_INFO, "zt proxy running", "identity", px->st->own_id, NULL);
	r = zt_loop_run(px->loop, e);
	signal_loop = NULL;
	close_listeners(px);
	/* what the drain deadline (or a second signal) left open */
	while (px->conns)
		conn_close(px->conns, "closed at shutdown");
	return r;
}
