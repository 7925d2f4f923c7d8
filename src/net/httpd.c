/* net/httpd.c: the API server (see httpd.h for the model). */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>

#include "net/httpd.h"
#include "crypto/crypto.h"
#include "net/net.h"

#define HEAD_MAX (32u << 10)
#define THREAD_STACK (256u << 10)

struct zt_httpd {
	zt_httpd_opts o;
	int lfd;
	int wake[2];
	uint16_t port;
	pthread_t acceptor;
	atomic_int stopping;
	pthread_mutex_t mu;
	pthread_cond_t idle; /* signalled when a connection ends */
	size_t active;
	struct slot {
		int fd;          /* an open connection's socket, -1 when free */
		atomic_int busy; /* inside a request (a drain waits for those only) */
	} *slots;
};

struct conn {
	zt_httpd *h;
	int fd;
	size_t slot;
	SSL *ssl;
	char remote[64];
	int cred_ok;       /* Unix sockets: the caller's credentials */
	struct ucred cred;
	int64_t deadline; /* of the current wait: the head, the body (monotonic ms) */
};

static int64_t mono_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/* ---- responses ----------------------------------------------------------------- */

int zt_http_resp_header(zt_http_resp *r, const char *name, const char *value)
{
	size_t nl = strlen(name), vl = strlen(value);

	if (nl == 0 || strpbrk(value, "\r\n") || r->headers_len + nl + vl + 4 >= sizeof r->headers)
		return -ZT_EINVAL;
	/* RFC 9110 5.6.2: a field name is a token */
	for (size_t i = 0; i < nl; i++) {
		unsigned char ch = (unsigned char)name[i];

		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
		      (ch && strchr("!#$%&'*+-.^_`|~", ch))))
			return -ZT_EINVAL;
	}
	r->headers_len += (size_t)snprintf(r->headers + r->headers_len,
					   sizeof r->headers - r->headers_len, "%s: %s\r\n", name,
					   value);
	return 0;
}

int zt_http_resp_json(zt_http_resp *r, int status, json_t *obj)
{
	char *text = obj ? json_dumps(obj, JSON_COMPACT) : NULL;
	int rc = 0;

	json_decref(obj);
	r->status = status;
	r->content_type = "application/json";
	r->body.len = 0;
	if (!text || zt_buf_append(&r->body, text, strlen(text), NULL) != 0 ||
	    zt_buf_append(&r->body, "\n", 1, NULL) != 0) {
		r->status = 500;
		r->body.len = 0;
		rc = -ZT_ENOMEM;
	}
	if (text && r->secret)
		zt_wipe(text, strlen(text));
	free(text);
	return rc;
}

void zt_http_resp_error(zt_http_resp *r, const zt_http_req *q, int status, const char *code,
			const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	zt_http_resp_json(r, status,
			  json_pack("{s:{s:i,s:s,s:s,s:s}}", "error", "status", status, "code", code,
				    "message", msg, "request_id", q ? q->request_id : ""));
}

/* ---- connection I/O ------------------------------------------------------------- */

/* Waits until fd is ready for `events` or the connection's deadline passes. */
static int wait_ready(struct conn *c, short events)
{
	for (;;) {
		int64_t left = c->deadline - mono_ms();
		struct pollfd p = {c->fd, events, 0};

		if (left <= 0)
			return -1;
		int n = poll(&p, 1, (int)(left > 60000 ? 60000 : left));

		if (n > 0)
			return 0;
		if (n < 0 && errno != EINTR)
			return -1;
	}
}

/*
 * Reads what is there by the deadline: >0 bytes, 0 closed, <0 error or
 * time up. The deadline covers the whole head (or body), however the
 * client drips it: a byte every second does not keep a thread forever.
 */
static ssize_t conn_read(struct conn *c, void *p, size_t n)
{
	for (;;) {
		if (c->ssl) {
			int r = SSL_read(c->ssl, p, n > INT32_MAX ? INT32_MAX : (int)n);

			if (r > 0)
				return r;
			int err = SSL_get_error(c->ssl, r);

			if (err == SSL_ERROR_ZERO_RETURN)
				return 0;
			if (err != SSL_ERROR_WANT_READ && err != SSL_ERROR_WANT_WRITE)
				return -1;
			if (wait_ready(c, err == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT) != 0)
				return -1;
			continue;
		}
		ssize_t r = read(c->fd, p, n);

		if (r >= 0)
			return r;
		if (errno == EINTR)
			continue;
		if ((errno != EAGAIN && errno != EWOULDBLOCK) || wait_ready(c, POLLIN) != 0)
			return -1;
	}
}

/* Writes everything by the write deadline; never raises SIGPIPE. */
static int conn_write(struct conn *c, const void *p, size_t n)
{
	const uint8_t *b = p;
	int64_t saved = c->deadline;

	c->deadline = mono_ms() + c->h->o.body_timeout_ms;
	while (n > 0) {
		ssize_t r;

		if (c->ssl) {
			int w = SSL_write(c->ssl, b, n > INT32_MAX ? INT32_MAX : (int)n);

			if (w <= 0) {
				int err = SSL_get_error(c->ssl, w);

				if ((err != SSL_ERROR_WANT_READ && err != SSL_ERROR_WANT_WRITE) ||
				    wait_ready(c, err == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT) != 0)
					goto fail;
				continue;
			}
			r = w;
		} else {
			r = send(c->fd, b, n, MSG_NOSIGNAL);
			if (r < 0 && errno == EINTR)
				continue;
			if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
				if (wait_ready(c, POLLOUT) != 0)
					goto fail;
				continue;
			}
			if (r <= 0)
				goto fail;
		}
		b += r;
		n -= (size_t)r;
	}
	c->deadline = saved;
	return 0;
fail:
	c->deadline = saved;
	return -1;
}

/*
 * After a refusal, the client may still be sending the body we will not
 * read: closing at once would make the kernel reset the connection and
 * the client could lose the answer. Stop writing, and read (and drop) what
 * comes for a moment first.
 */
static void linger_close(struct conn *c)
{
	char junk[4096];
	size_t total = 0;

	if (!c->ssl)
		shutdown(c->fd, SHUT_WR);
	c->deadline = mono_ms() + 500;
	while (total < (256u << 10)) {
		ssize_t n = conn_read(c, junk, sizeof junk);

		if (n <= 0)
			break;
		total += (size_t)n;
	}
}

static int write_response(struct conn *c, const zt_http_req *q, const zt_http_resp *r,
			  int head_only)
{
	char head[2048];
	int n = snprintf(head, sizeof head,
			 "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
			 "X-Request-Id: %s\r\nCache-Control: no-store\r\n"
			 "X-Content-Type-Options: nosniff\r\n%s%.*s\r\n",
			 r->status, zt_http1_reason(r->status),
			 r->content_type ? r->content_type : "application/json", r->body.len,
			 q->request_id, r->close ? "Connection: close\r\n" : "", (int)r->headers_len,
			 r->headers);

	if (n < 0 || (size_t)n >= sizeof head || conn_write(c, head, (size_t)n) != 0)
		return -1;
	return head_only || r->body.len == 0 ? 0 : conn_write(c, r->body.p, r->body.len);
}

/* A refusal before the handler: JSON, and the connection closes. */
static void refuse(struct conn *c, zt_http_req *q, int status, const char *code, const char *msg)
{
	zt_http_resp r = {0};

	zt_buf_init(&r.body, 8192);
	if (!q->request_id[0])
		zt_http1_request_id_new(q->request_id, sizeof q->request_id);
	zt_http_resp_error(&r, q, status, code, "%s", msg);
	r.close = 1;
	if (write_response(c, q, &r, 0) == 0)
		linger_close(c);
	zt_buf_free(&r.body, r.secret);
}

/* ---- serving one connection ------------------------------------------------------- */

static int serve_one(struct conn *c, zt_buf *in, const zt_peer_info *peer, int first)
{
	zt_httpd *h = c->h;
	zt_http1_limits lim;
	zt_http1_request *head = calloc(1, sizeof *head);
	zt_http_req q;
	zt_http_resp r;
	size_t scanned = 0;
	zt_err e;
	int rc, keep = 0;

	memset(&q, 0, sizeof q);
	memset(&r, 0, sizeof r);
	zt_buf_init(&r.body, 16u << 20);
	if (!head)
		goto out;
	zt_http1_limits_default(&lim);
	snprintf(q.remote, sizeof q.remote, "%s", c->remote);
	q.peer_id = peer->id[0] ? peer->id : NULL;
	q.peer_serial = peer->id[0] ? peer->serial : NULL;
	if (c->cred_ok) {
		q.has_cred = 1;
		q.pid = c->cred.pid;
		q.uid = c->cred.uid;
		q.gid = c->cred.gid;
	}
	/*
	 * The head: a kept-alive connection may idle before the first byte of
	 * its next request; from that byte on (or from the connection's start)
	 * the whole head must arrive within the head timeout.
	 */
	int started = first || in->len > 0;

	c->deadline = mono_ms() + (started ? h->o.head_timeout_ms : h->o.idle_timeout_ms);
	for (;;) {
		rc = in->len ? zt_http1_parse_request(in->p, in->len, &lim, &scanned, head, &e)
			     : ZT_HTTP1_INCOMPLETE;
		if (rc != ZT_HTTP1_INCOMPLETE)
			break;
		if (in->len >= HEAD_MAX) {
			refuse(c, &q, 431, "head-too-large", "the request head is too large");
			goto out;
		}
		size_t room = in->max - in->len < 4096 ? in->max - in->len : 4096;

		if (zt_buf_reserve(in, room, NULL) != 0)
			goto out;
		ssize_t n = conn_read(c, in->p + in->len, in->cap - in->len);

		if (n <= 0) {
			if (in->len > 0 && n < 0)
				refuse(c, &q, 408, "timeout", "the request head did not arrive in time");
			goto out;
		}
		if (!started) {
			started = 1;
			c->deadline = mono_ms() + h->o.head_timeout_ms;
		}
		atomic_store(&h->slots[c->slot].busy, 1);
		in->len += (size_t)n;
	}
	atomic_store(&h->slots[c->slot].busy, 1);
	if (rc != 0) {
		int st = head->err_status ? head->err_status : 400;

		refuse(c, &q, st, st == 414 ? "uri-too-long" : st == 431 ? "head-too-large"
						 : "bad-request",
		       e.msg);
		goto out;
	}
	if (head->framing == ZT_HTTP1_BODY_CHUNKED) {
		refuse(c, &q, 411, "length-required",
		       "send the request body with a Content-Length, not chunked");
		goto out;
	}
	if (head->content_length > h->o.max_body) {
		refuse(c, &q, 413, "body-too-large", "the request body is too large");
		goto out;
	}
	if (head->expect_continue && head->content_length > 0 &&
	    conn_write(c, "HTTP/1.1 100 Continue\r\n\r\n", 25) != 0)
		goto out;
	size_t need = head->head_len + (size_t)head->content_length;

	/*
	 * The head's pointers point into `in`: make room for the whole body
	 * now, once, and parse the head again in the buffer's final place.
	 */
	if (in->cap < need) {
		if (zt_buf_reserve(in, need - in->len, NULL) != 0 ||
		    zt_http1_parse_request(in->p, in->len, &lim, &scanned, head, &e) != 0)
			goto out;
	}
	c->deadline = mono_ms() + h->o.body_timeout_ms;
	while (in->len < need) {
		if (zt_buf_reserve(in, need - in->len, NULL) != 0)
			goto out;
		ssize_t n = conn_read(c, in->p + in->len, need - in->len);

		if (n <= 0) {
			refuse(c, &q, 408, "timeout", "the request body did not arrive in time");
			goto out;
		}
		in->len += (size_t)n;
	}
	/* the request, as the handler sees it */
	const zt_http1_field *rid = zt_http1_field_get(head->fields, head->nfields, "x-request-id",
						       NULL);
	char query[4096];

	if (rid && zt_http1_request_id_ok(rid->value, rid->value_len) &&
	    rid->value_len < sizeof q.request_id)
		snprintf(q.request_id, sizeof q.request_id, "%.*s", (int)rid->value_len, rid->value);
	else
		zt_http1_request_id_new(q.request_id, sizeof q.request_id);
	if (head->form != ZT_HTTP1_ORIGIN_FORM || head->method_len >= sizeof q.method) {
		refuse(c, &q, 400, "bad-request", "the API takes origin-form requests (/v1/...)");
		goto out;
	}
	const char *qm = memchr(head->path, '?', head->path_len);
	size_t plen = qm ? (size_t)(qm - head->path) : head->path_len;
	size_t qlen = qm ? head->path_len - plen - 1 : 0;

	if (plen >= sizeof q.path || qlen >= sizeof query) {
		refuse(c, &q, 414, "uri-too-long", "the request target is too long");
		goto out;
	}
	memcpy(q.method, head->method, head->method_len);
	memcpy(q.path, head->path, plen);
	memcpy(query, qm ? qm + 1 : "", qlen);
	query[qlen] = '\0';
	q.query = query;
	q.head = head;
	q.body = in->p + head->head_len;
	q.body_len = (size_t)head->content_length;
	r.status = 200;
	h->o.handler(h->o.arg, &q, &r);
	keep = head->keep_alive && !r.close && !atomic_load(&h->stopping);
	r.close = !keep;
	if (write_response(c, &q, &r, strcmp(q.method, "HEAD") == 0) != 0)
		keep = 0;
	/* a pipelined request may follow in what was read */
	memmove(in->p, in->p + need, in->len - need);
	in->len -= need;
	atomic_store(&h->slots[c->slot].busy, 0);
out:
	zt_buf_free(&r.body, r.secret);
	free(head);
	return keep;
}

static void conn_end(struct conn *c)
{
	zt_httpd *h = c->h;

	if (c->ssl) {
		SSL_shutdown(c->ssl);
		SSL_free(c->ssl);
	}
	/* out of the table before the fd number can be reused: the drain shuts down by number */
	pthread_mutex_lock(&h->mu);
	h->slots[c->slot].fd = -1;
	atomic_store(&h->slots[c->slot].busy, 0);
	pthread_mutex_unlock(&h->mu);
	close(c->fd);
	pthread_mutex_lock(&h->mu);
	h->active--;
	pthread_cond_broadcast(&h->idle);
	pthread_mutex_unlock(&h->mu);
	free(c);
}

static void *conn_main(void *arg)
{
	struct conn *c = arg;
	zt_httpd *h = c->h;
	zt_peer_info peer;
	zt_buf in;
	int first = 1;

	/* OpenSSL writes with write(2): a peer gone away must not raise SIGPIPE here */
	sigset_t pipe;

	sigemptyset(&pipe);
	sigaddset(&pipe, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &pipe, NULL);
	memset(&peer, 0, sizeof peer);
	zt_buf_init(&in, HEAD_MAX + h->o.max_body);
	/* non-blocking, so that every wait has a deadline (wait_ready) */
	fcntl(c->fd, F_SETFL, fcntl(c->fd, F_GETFL) | O_NONBLOCK);
	if (h->o.tls) {
		int ok = 0;

		c->deadline = mono_ms() + h->o.head_timeout_ms;
		/* the context in force now: zt_httpd_set_tls may replace it at any time */
		pthread_mutex_lock(&h->mu);
		c->ssl = SSL_new(h->o.tls);
		pthread_mutex_unlock(&h->mu);
		if (c->ssl && SSL_set_fd(c->ssl, c->fd) == 1)
			for (;;) {
				int a = SSL_accept(c->ssl);

				if (a == 1) {
					ok = 1;
					break;
				}
				int err = SSL_get_error(c->ssl, a);

				if ((err != SSL_ERROR_WANT_READ && err != SSL_ERROR_WANT_WRITE) ||
				    wait_ready(c, err == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT) != 0)
					break;
			}
		if (!ok) {
			const char *why = c->ssl ? zt_tls_peer_error(c->ssl) : NULL;

			zt_log(ZT_LOG_INFO, "api: TLS handshake failed", "remote", c->remote, "error",
			       why && *why ? why : zt_tls_error_text(), NULL);
			goto out;
		}
		const char *id = zt_tls_peer_id(c->ssl), *serial = zt_tls_peer_serial(c->ssl);

		if (id)
			snprintf(peer.id, sizeof peer.id, "%s", id);
		if (id && serial)
			snprintf(peer.serial, sizeof peer.serial, "%s", serial);
	}
	while (!atomic_load(&h->stopping) && serve_one(c, &in, &peer, first))
		first = 0;
out:
	zt_buf_free(&in, 0);
	conn_end(c);
	zt_crypto_thread_cleanup(); /* the SVID checks' per-thread caches */
	return NULL;
}

/* ---- listening ---------------------------------------------------------------------- */

static void *accept_main(void *arg)
{
	zt_httpd *h = arg;
	pthread_attr_t attr;

	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&attr, THREAD_STACK);
	while (!atomic_load(&h->stopping)) {
		struct pollfd p[2] = {{h->lfd, POLLIN, 0}, {h->wake[0], POLLIN, 0}};
		struct sockaddr_storage ss;
		socklen_t sl = sizeof ss;
		int fd, one = 1;

		if (poll(p, 2, -1) < 0 && errno != EINTR)
			break;
		if (p[1].revents || !(p[0].revents & POLLIN))
			continue;
		fd = accept4(h->lfd, (struct sockaddr *)&ss, &sl, SOCK_CLOEXEC);
		if (fd < 0)
			continue;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
		pthread_mutex_lock(&h->mu);
		size_t slot = SIZE_MAX;

		for (size_t i = 0; i < h->o.max_conns && slot == SIZE_MAX; i++)
			if (h->slots[i].fd < 0)
				slot = i;
		if (slot == SIZE_MAX) {
			pthread_mutex_unlock(&h->mu);
			zt_log(ZT_LOG_WARN, "api: connection refused: at the connection limit", NULL);
			close(fd);
			continue;
		}
		h->slots[slot].fd = fd;
		h->active++;
		pthread_mutex_unlock(&h->mu);
		struct conn *c = calloc(1, sizeof *c);
		pthread_t t;

		if (c) {
			char ip[INET6_ADDRSTRLEN] = "?";
			int port = 0;

			c->h = h;
			c->fd = fd;
			c->slot = slot;
			if (ss.ss_family == AF_INET) {
				struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;

				inet_ntop(AF_INET, &s4->sin_addr, ip, sizeof ip);
				port = ntohs(s4->sin_port);
			} else if (ss.ss_family == AF_INET6) {
				struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;

				inet_ntop(AF_INET6, &s6->sin6_addr, ip, sizeof ip);
				port = ntohs(s6->sin6_port);
			}
			snprintf(c->remote, sizeof c->remote, "%s:%d", ip, port);
			if (ss.ss_family == AF_UNIX) {
				/* who is calling, as the kernel saw it at connect (SO_PEERCRED) */
				struct ucred uc;
				socklen_t ul = sizeof uc;

				if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &uc, &ul) == 0 && uc.pid > 0) {
					c->cred_ok = 1;
					c->cred = uc;
				}
				snprintf(c->remote, sizeof c->remote, "unix:pid=%d", c->cred_ok ? (int)uc.pid : 0);
			}
		}
		if (!c || pthread_create(&t, &attr, conn_main, c) != 0) {
			if (c) {
				conn_end(c);
			} else {
				pthread_mutex_lock(&h->mu);
				h->slots[slot].fd = -1;
				h->active--;
				pthread_mutex_unlock(&h->mu);
				close(fd);
			}
		}
	}
	pthread_attr_destroy(&attr);
	return NULL;
}

/* "unix:/path": a Unix socket, made anew (a stale one from a crash is replaced), mode 0666:
 * who may ask is decided per caller from its credentials, not by the socket's mode. */
static int listen_unix(const char *path, int *fd, zt_err *e)
{
	struct sockaddr_un su = {.sun_family = AF_UNIX};

	if (!*path || strlen(path) >= sizeof su.sun_path)
		return zt_err_set(e, ZT_EINVAL, "unix socket path \"%.200s\": empty or longer than %zu bytes",
				  path, sizeof su.sun_path - 1);
	memcpy(su.sun_path, path, strlen(path) + 1);
	*fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (*fd < 0)
		return zt_err_set(e, ZT_EIO, "socket: %s", strerror(errno));
	struct stat st;

	if (lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode)) {
			close(*fd);
			return zt_err_set(e, ZT_EEXIST, "%s exists and is not a socket: not replacing it", path);
		}
		unlink(path);
	}
	if (bind(*fd, (struct sockaddr *)&su, sizeof su) != 0 || chmod(path, 0666) != 0 ||
	    listen(*fd, 512) != 0) {
		int r = zt_err_set(e, ZT_EIO, "cannot listen on %s: %s", path, strerror(errno));

		close(*fd);
		return r;
	}
	return 0;
}

static int listen_on(const char *spec, int *fd, uint16_t *port, zt_err *e)
{
	struct sockaddr_storage ss;
	socklen_t sl;
	int one = 1;

	if (!strncmp(spec, "unix:", 5)) {
		*port = 0;
		return listen_unix(spec + 5, fd, e);
	}
	memset(&ss, 0, sizeof ss);
	if (zt_addr_parse(spec, 1, &ss, &sl, e) != 0)
		return -ZT_EINVAL;
	*fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (*fd < 0)
		return zt_err_set(e, ZT_EIO, "socket: %s", strerror(errno));
	setsockopt(*fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	if (bind(*fd, (struct sockaddr *)&ss, sl) != 0 || listen(*fd, 512) != 0) {
		int r = zt_err_set(e, ZT_EIO, "cannot listen on %s: %s", spec, strerror(errno));

		close(*fd);
		return r;
	}
	sl = sizeof ss;
	getsockname(*fd, (struct sockaddr *)&ss, &sl);
	*port = ntohs(ss.ss_family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
					      : ((struct sockaddr_in6 *)&ss)->sin6_port);
	return 0;
}

int zt_httpd_set_tls(zt_httpd *h, SSL_CTX *tls)
{
	SSL_CTX *old;

	if (!h->o.tls || !tls)
		return -1; /* a plain server stays plain */
	SSL_CTX_up_ref(tls);
	pthread_mutex_lock(&h->mu);
	old = h->o.tls;
	h->o.tls = tls;
	pthread_mutex_unlock(&h->mu);
	SSL_CTX_free(old); /* connections made with it hold their own references */
	return 0;
}

/* Frees what start made; the acceptor and every connection are gone. */
static void httpd_free(zt_httpd *h)
{
	if (h->lfd >= 0)
		close(h->lfd);
	if (h->wake[0] >= 0) {
		close(h->wake[0]);
		close(h->wake[1]);
	}
	if (h->o.tls)
		SSL_CTX_free(h->o.tls);
	free(h->slots);
	pthread_mutex_destroy(&h->mu);
	pthread_cond_destroy(&h->idle);
	free(h);
}

zt_httpd *zt_httpd_start(const zt_httpd_opts *o, zt_err *e)
{
	zt_httpd *h = calloc(1, sizeof *h);

	if (!h) {
		zt_err_set(e, ZT_ENOMEM, "out of memory");
		return NULL;
	}
	h->o = *o;
	h->lfd = h->wake[0] = h->wake[1] = -1;
	if (!h->o.max_conns)
		h->o.max_conns = 256;
	if (!h->o.max_body)
		h->o.max_body = 1u << 20;
	if (!h->o.head_timeout_ms)
		h->o.head_timeout_ms = 10000;
	if (!h->o.body_timeout_ms)
		h->o.body_timeout_ms = 30000;
	if (!h->o.idle_timeout_ms)
		h->o.idle_timeout_ms = 60000;
	pthread_mutex_init(&h->mu, NULL);
	pthread_cond_init(&h->idle, NULL);
	if (!o->handler || !(h->slots = calloc(h->o.max_conns, sizeof *h->slots))) {
		zt_err_set(e, ZT_EINVAL, "an API server needs a handler");
		goto fail;
	}
	for (size_t i = 0; i < h->o.max_conns; i++)
		h->slots[i].fd = -1;
	if (o->tls)
		SSL_CTX_up_ref(o->tls);
	else
		h->o.tls = NULL;
	if (listen_on(o->listen, &h->lfd, &h->port, e) != 0)
		goto fail;
	if (pipe2(h->wake, O_CLOEXEC) != 0 ||
	    pthread_create(&h->acceptor, NULL, accept_main, h) != 0) {
		zt_err_set(e, ZT_EIO, "cannot start the API server: %s", strerror(errno));
		goto fail;
	}
	return h;
fail:
	httpd_free(h);
	return NULL;
}

uint16_t zt_httpd_port(const zt_httpd *h)
{
	return h->port;
}

int zt_httpd_stopping(const zt_httpd *h)
{
	return atomic_load(&((zt_httpd *)(uintptr_t)h)->stopping);
}

void zt_httpd_stop(zt_httpd *h, int drain_ms)
{
	struct timespec until;

	if (!h)
		return;
	atomic_store(&h->stopping, 1);
	if (write(h->wake[1], "x", 1) < 0) {
		/* the acceptor also sees `stopping` on its next wake-up */
	}
	pthread_join(h->acceptor, NULL);
	close(h->lfd);
	h->lfd = -1;
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += drain_ms / 1000;
	until.tv_nsec += (long)(drain_ms % 1000) * 1000000L;
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&h->mu);
	/* idle kept-alive connections go now; requests in flight get drain_ms */
	for (size_t i = 0; i < h->o.max_conns; i++)
		if (h->slots[i].fd >= 0 && !atomic_load(&h->slots[i].busy))
			shutdown(h->slots[i].fd, SHUT_RDWR);
	while (h->active > 0 && pthread_cond_timedwait(&h->idle, &h->mu, &until) == 0)
		;
	/* past the drain: what is left is cut */
	for (size_t i = 0; i < h->o.max_conns; i++)
		if (h->slots[i].fd >= 0)
			shutdown(h->slots[i].fd, SHUT_RDWR);
	while (h->active > 0)
		pthread_cond_wait(&h->idle, &h->mu);
	pthread_mutex_unlock(&h->mu);
	httpd_free(h);
}
