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
	unsigned interest;
};

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
	const char *policy;
	const char *reason; /* the policy engine's, when it denied */
	int allowed;
	uint64_t start_ms, bytes_c2u, bytes_u2c;
};

struct zt_proxy {
	struct px_config cfg;
	zt_loop *loop;
	zt_bundle_set *bundles;
	X509 *cert;
	STACK_OF(X509) *chain;
	EVP_PKEY *key;
	zt_policy_snapshot *policy;
	char own_id[2049];
	size_t nconns;
	int stopping;
};

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

	if ((r = zt_svid_verify(px->bundles, chain, NULL, &info, e)) != 0)
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

	if ((r = zt_svid_verify(l->px->bundles, chain, NULL, &info, e)) != 0)
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
	       l->inbound ? (c->peer[0] ? c->peer : "(not verified)") : c->px->own_id,
	       "source_ip", c->src, "destination", dest, "decision",
	       c->allowed ? "allow" : "deny", "policy", c->policy ? c->policy : "",
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
	zt_timer_cancel(px->loop, &c->timer);
	side_close(px->loop, &c->c);
	side_close(px->loop, &c->u);
	free(c->c2u.p);
	free(c->u2c.p);
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
	(void)l;
	(void)fd;
	(void)events;
	conn_step(arg);
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
	c->policy = d.by.policy;
	c->reason = d.reason;
	c->allowed = d.effect == ZT_POLICY_ALLOW;
	return c->allowed ? 0 : -1;
}

static void handshake(struct conn *c)
{
	struct side *s = c->ls->inbound ? &c->c : &c->u;
	int r = SSL_do_handshake(s->ssl);
	const char *err;

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

			snprintf(why, sizeof why, "denied by policy: %s", c->reason);
			conn_close(c, why);
			return;
		}
		if (start_connect(c) != 0) {
			conn_close(c, "cannot connect to the local service");
			return;
		}
		set_interest(c, &c->c, 0);
		return;
	}
	c->allowed = 1;
	c->state = ST_PIPING;
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
		set_timer(c, c->px->cfg.idle_timeout);
		set_interest(c, &c->c, ZT_EV_READ);
		return;
	}
	if (!(c->u.ssl = SSL_new(c->ls->tls)) || !SSL_set_fd(c->u.ssl, c->u.fd)) {
		conn_close(c, "out of memory");
		return;
	}
	SSL_set_connect_state(c->u.ssl);
	c->state = ST_HANDSHAKE;
	set_timer(c, c->px->cfg.handshake_timeout);
	handshake(c);
}

/* Reads into b from s: bytes read, 0 when nothing now, -1 on error. */
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
		int r = SSL_read(s->ssl, b->p + b->off + b->len, (int)room);

		s->rd_wants_write = 0;
		switch (zt_tls_result(s->ssl, r)) {
		case ZT_TLS_DONE:
			b->len += (size_t)r;
			return r;
		case ZT_TLS_WANT_READ:
			return 0;
		case ZT_TLS_WANT_WRITE:
			s->rd_wants_write = 1;
			return 0;
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
	return errno == EAGAIN || errno == EINTR ? 0 : -1;
}

static ssize_t side_write(struct side *s, struct buf *b)
{
	ssize_t n;

	if (!b->len)
		return 0;
	if (s->ssl) {
		int r = SSL_write(s->ssl, b->p + b->off, (int)b->len);

		s->wr_wants_read = 0;
		switch (zt_tls_result(s->ssl, r)) {
		case ZT_TLS_DONE:
			n = r;
			break;
		case ZT_TLS_WANT_WRITE:
			return 0;
		case ZT_TLS_WANT_READ:
			s->wr_wants_read = 1;
			return 0;
		default:
			return -1;
		}
	} else {
		n = send(s->fd, b->p + b->off, b->len, MSG_NOSIGNAL);
		if (n < 0)
			return errno == EAGAIN || errno == EINTR ? 0 : -1;
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
	if (s->ssl)
		(void)SSL_shutdown(s->ssl);
	else
		(void)shutdown(s->fd, SHUT_WR);
}

static unsigned interest_for(const struct side *s, const struct buf *in, const struct buf *out,
			     size_t cap)
{
	unsigned w = 0;

	if ((!s->eof && in->len < cap) || s->wr_wants_read)
		w |= ZT_EV_READ;
	if (out->len || s->rd_wants_write)
		w |= ZT_EV_WRITE;
	return w;
}

static void pipe_step(struct conn *c)
{
	size_t cap = c->px->cfg.buffer_bytes;
	int progress = 1, moved = 0;

	if ((!c->c2u.p && !(c->c2u.p = malloc(cap))) || (!c->u2c.p && !(c->u2c.p = malloc(cap)))) {
		conn_close(c, "out of memory");
		return;
	}
	while (progress) {
		ssize_t a, b, x, y;

		a = side_read(&c->c, &c->c2u, cap);
		b = side_write(&c->u, &c->c2u);
		x = side_read(&c->u, &c->u2c, cap);
		y = side_write(&c->c, &c->u2c);
		if (a < 0 || b < 0 || x < 0 || y < 0) {
			conn_close(c, a < 0 || y < 0 ? "the client side failed" : "the upstream side failed");
			return;
		}
		c->bytes_c2u += (uint64_t)(b > 0 ? b : 0);
		c->bytes_u2c += (uint64_t)(y > 0 ? y : 0);
		progress = a > 0 || b > 0 || x > 0 || y > 0;
		moved |= progress;
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
	if (moved)
		set_timer(c, c->px->cfg.idle_timeout);
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
			close(fd);
			continue;
		}
		if (!(c = calloc(1, sizeof *c))) {
			close(fd);
			continue;
		}
		no_delay(fd);
		px->nconns++;
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
			if (!(c->c.ssl = SSL_new(l->tls)) || !SSL_set_fd(c->c.ssl, fd)) {
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

static int load_identity(zt_proxy *px, zt_err *e)
{
	STACK_OF(X509) *certs = NULL;
	zt_bundle *b;
	zt_svid_info info;
	int r;

	if ((r = zt_certs_load(px->cfg.cert, &certs, e)) != 0)
		return r;
	px->cert = sk_X509_shift(certs);
	px->chain = certs;
	if (!(px->key = zt_key_load(px->cfg.key, e)))
		return -ZT_EPARSE;
	if (!zt_key_matches_cert(px->key, px->cert))
		return zt_err_set(e, ZT_EINVAL, "%s is not the key of %s", px->cfg.key, px->cfg.cert);
	if (!(b = zt_bundle_load(px->cfg.td, px->cfg.bundle, e)) ||
	    !(px->bundles = zt_bundle_set_new()) || zt_bundle_set_put(px->bundles, b, e) != 0)
		return -ZT_EINVAL;
	/* our own SVID must pass the rules we apply to others */
	STACK_OF(X509) *own = sk_X509_dup(px->chain);
	if (!own || !sk_X509_unshift(own, px->cert)) {
		sk_X509_free(own);
		return zt_err_set(e, ZT_ENOMEM, "out of memory");
	}
	r = zt_svid_verify(px->bundles, own, NULL, &info, e);
	sk_X509_free(own);
	if (r != 0)
		return zt_err_wrap(e, "the proxy's own SVID %s", px->cfg.cert);
	snprintf(px->own_id, sizeof px->own_id, "%s", info.id.str);
	return 0;
}

static int load_policy(zt_proxy *px, zt_err *e)
{
	zt_policy_src *src;

	if (!px->cfg.policy[0])
		return 0;
	if (!(src = zt_policy_src_new(NULL)))
		return zt_err_set(e, ZT_ENOMEM, "out of memory");
	zt_policy_src_add_path(src, px->cfg.policy);
	zt_policy_src_check(src);
	for (size_t i = 0; i < zt_policy_src_ndiags(src); i++) {
		const zt_diag *d = zt_policy_src_diag(src, i);
		char line[32];

		snprintf(line, sizeof line, "%d", d->line);
		zt_log(d->level == ZT_DIAG_ERROR ? ZT_LOG_ERROR : ZT_LOG_WARN, "policy diagnostic",
		       "file", d->file, "line", line, "message", d->msg, NULL);
	}
	px->policy = zt_policy_compile(src, e);
	zt_policy_src_free(src);
	return px->policy ? 0 : -ZT_EINVAL;
}

zt_proxy *zt_proxy_new(const char *path, zt_err *e)
{
	zt_proxy *px = calloc(1, sizeof *px);

	if (!px) {
		zt_err_set(e, ZT_ENOMEM, "out of memory");
		return NULL;
	}
	for (size_t i = 0; i < PX_MAX_LISTENERS; i++)
		px->cfg.listeners[i].fd = -1;
	if (px_config_load(&px->cfg, path, e) != 0 || load_identity(px, e) != 0 ||
	    load_policy(px, e) != 0)
		goto fail;
	for (size_t i = 0; i < px->cfg.nlisteners; i++) {
		struct px_listener *l = &px->cfg.listeners[i];
		zt_tls_opts o = {
			.server = l->inbound,
			.cert = px->cert,
			.chain = px->chain,
			.key = px->key,
			.verify = l->inbound ? verify_inbound : verify_outbound,
			.verify_arg = l->inbound ? (void *)px : (void *)l,
		};

		l->fd = -1;
		l->px = px;
		if (l->inbound && !l->service[0])
			snprintf(l->service, sizeof l->service, "%s", px->own_id);
		if (!(l->tls = zt_tls_ctx_new(&o, e)))
			goto fail;
	}
	return px;
fail:
	zt_proxy_free(px);
	return NULL;
}

void zt_proxy_free(zt_proxy *px)
{
	if (!px)
		return;
	for (size_t i = 0; i < px->cfg.nlisteners; i++) {
		SSL_CTX_free(px->cfg.listeners[i].tls);
		if (px->cfg.listeners[i].fd >= 0)
			close(px->cfg.listeners[i].fd);
	}
	zt_policy_snapshot_unref(px->policy);
	zt_bundle_set_free(px->bundles);
	X509_free(px->cert);
	sk_X509_pop_free(px->chain, X509_free);
	EVP_PKEY_free(px->key);
	zt_loop_free(px->loop);
	free(px);
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

static void on_wake(zt_loop *loop, void *arg)
{
	zt_proxy *px = arg;

	if (!got_signal)
		return;
	if (px->stopping) { /* a second signal: stop now */
		zt_loop_stop(loop);
		return;
	}
	/* stop accepting; the connections open now finish (or the next signal) */
	zt_log(ZT_LOG_INFO, "stopping: listeners closed, waiting for open connections", NULL);
	px->stopping = 1;
	got_signal = 0;
	close_listeners(px);
	if (px->nconns == 0)
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
	signal_loop = px->loop;
	zt_loop_set_wake(px->loop, on_wake, px);
	zt_log(ZT_LOG_INFO, "zt proxy running", "identity", px->own_id, NULL);
	r = zt_loop_run(px->loop, e);
	signal_loop = NULL;
	close_listeners(px);
	return r;
}
