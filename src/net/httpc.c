/*
 * net/httpc.c: the blocking HTTPS client (see httpc.h). The socket is
 * non-blocking underneath and every wait is a poll(2) bounded by the
 * request's deadline.
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>

#include "net/http1.h"
#include "net/httpc.h"
#include "net/net.h"

#define HTTPC_HOST_MAX 256
#define HTTPC_CONNECT_MS 5000
#define HTTPC_BODY_MAX (16u << 20)
#define HTTPC_HEAD_MAX (64u << 10)

struct zt_httpc {
	char host[HTTPC_HOST_MAX]; /* without brackets */
	char port[8];
	char authority[HTTPC_HOST_MAX + 10]; /* for Host: as in the URL */
	char unix_path[256];                 /* unix:/path URLs */
	int tls_on;
	SSL_CTX *tls;
	int connect_ms;
	size_t max_body;
	int fd;
	SSL *ssl;
	int used; /* the open connection has carried a request */
	int cancel_fd; /* -1 for none */
	char peer[2049];
};

/*
 * OpenSSL writes with write(2), so a server gone away would raise SIGPIPE
 * and kill a process that did not ignore it (the zt command). Around our
 * calls SIGPIPE is blocked for this thread, and one we caused is taken off
 * the pending set before it is unblocked (sockets get MSG_NOSIGNAL).
 */
struct sigpipe_guard {
	sigset_t old;
	int was_pending;
};

static void sigpipe_block(struct sigpipe_guard *g)
{
	sigset_t pipe, pending;

	sigemptyset(&pipe);
	sigaddset(&pipe, SIGPIPE);
	sigpending(&pending);
	g->was_pending = sigismember(&pending, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &pipe, &g->old);
}

static void sigpipe_restore(struct sigpipe_guard *g)
{
	sigset_t pipe, pending;
	struct timespec zero = {0, 0};

	sigemptyset(&pipe);
	sigaddset(&pipe, SIGPIPE);
	sigpending(&pending);
	if (!g->was_pending && sigismember(&pending, SIGPIPE))
		while (sigtimedwait(&pipe, NULL, &zero) < 0 && errno == EINTR)
			;
	pthread_sigmask(SIG_SETMASK, &g->old, NULL);
}

static int64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Milliseconds left until deadline (-1: none); 0 once it has passed. */
static int left_ms(int64_t deadline)
{
	if (deadline < 0)
		return -1;
	int64_t d = deadline - mono_ms();

	return d <= 0 ? 0 : d > 86400000 ? 86400000 : (int)d;
}

static int parse_url(zt_httpc *c, const char *url, zt_err *e)
{
	const char *p;

	if (!url)
		return zt_err_set(e, ZT_EINVAL, "no server URL given");
	if (!strncmp(url, "unix:", 5)) {
		/* a local socket (the agent's Workload API): plain HTTP, Host: localhost */
		if (url[5] != '/' || strlen(url + 5) >= sizeof c->unix_path ||
		    strlen(url + 5) >= sizeof(((struct sockaddr_un *)0)->sun_path))
			return zt_err_set(e, ZT_EINVAL, "socket URL %.200s: write unix:/absolute/path", url);
		snprintf(c->unix_path, sizeof c->unix_path, "%s", url + 5);
		snprintf(c->authority, sizeof c->authority, "localhost");
		snprintf(c->host, sizeof c->host, "localhost");
		return 0;
	}
	if (!strncmp(url, "https://", 8)) {
		c->tls_on = 1;
		p = url + 8;
	} else if (!strncmp(url, "http://", 7)) {
		p = url + 7;
	} else {
		return zt_err_set(e, ZT_EINVAL, "server URL %.200s: it must start with https://", url);
	}
	size_t n = strcspn(p, "/?#");

	if (p[n] && strcmp(p + n, "/"))
		return zt_err_set(e, ZT_EINVAL,
				  "server URL %.200s: give only https://HOST:PORT, without a path", url);
	if (n == 0 || n >= sizeof c->authority)
		return zt_err_set(e, ZT_EINVAL, "server URL %.200s: no host, or a host too long", url);
	memcpy(c->authority, p, n);
	c->authority[n] = '\0';
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)p[i] <= 0x20 || (unsigned char)p[i] >= 0x7f || p[i] == '@')
			return zt_err_set(e, ZT_EINVAL, "server URL %.200s: the host has a character a host cannot have", url);
	const char *h = c->authority, *colon;
	size_t hl;

	if (*h == '[') {
		const char *close = strchr(h, ']');

		if (!close)
			return zt_err_set(e, ZT_EINVAL, "server URL %.200s: unclosed [IPv6]", url);
		h++;
		hl = (size_t)(close - h);
		colon = close[1] == ':' ? close + 1 : close[1] ? NULL : close + 1;
		if (!colon)
			return zt_err_set(e, ZT_EINVAL, "server URL %.200s: junk after ]", url);
	} else {
		colon = strchr(h, ':');
		hl = colon ? (size_t)(colon - h) : strlen(h);
	}
	if (hl == 0 || hl >= sizeof c->host)
		return zt_err_set(e, ZT_EINVAL, "server URL %.200s: no host", url);
	memcpy(c->host, h, hl);
	c->host[hl] = '\0';
	if (colon && *colon == ':') {
		char *end;
		unsigned long port = strtoul(colon + 1, &end, 10);

		if (!colon[1] || *end || port == 0 || port > 65535 ||
		    strspn(colon + 1, "0123456789") != strlen(colon + 1))
			return zt_err_set(e, ZT_EINVAL, "server URL %.200s: the port must be 1-65535", url);
		snprintf(c->port, sizeof c->port, "%lu", port);
	} else {
		snprintf(c->port, sizeof c->port, "%s", c->tls_on ? "443" : "80");
	}
	return 0;
}

int zt_httpc_url_check(const char *url, zt_err *e)
{
	zt_httpc c;

	memset(&c, 0, sizeof c);
	return parse_url(&c, url, e);
}

zt_httpc *zt_httpc_new(const zt_httpc_opts *o, zt_err *e)
{
	zt_httpc *c = calloc(1, sizeof *c);

	if (!c) {
		zt_err_set(e, ZT_ENOMEM, "out of memory");
		return NULL;
	}
	c->fd = c->cancel_fd = -1;
	if (parse_url(c, o->url, e) != 0)
		goto fail;
	if (c->tls_on && !o->tls) {
		zt_err_set(e, ZT_EINVAL, "an https:// URL needs a TLS context");
		goto fail;
	}
	c->tls = o->tls;
	c->connect_ms = o->connect_timeout_ms > 0 ? o->connect_timeout_ms : HTTPC_CONNECT_MS;
	c->max_body = o->max_body ? o->max_body : HTTPC_BODY_MAX;
	return c;
fail:
	free(c);
	return NULL;
}

void zt_httpc_close(zt_httpc *c)
{
	if (c->ssl) {
		struct sigpipe_guard g;

		sigpipe_block(&g);
		SSL_shutdown(c->ssl); /* a close_notify, best effort: the socket is non-blocking */
		sigpipe_restore(&g);
		SSL_free(c->ssl);
		c->ssl = NULL;
	}
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	c->used = 0;
	c->peer[0] = '\0';
}

void zt_httpc_free(zt_httpc *c)
{
	if (!c)
		return;
	zt_httpc_close(c);
	free(c);
}

const char *zt_httpc_peer_id(const zt_httpc *c)
{
	return c->ssl && c->peer[0] ? c->peer : NULL;
}

void zt_httpc_resp_free(zt_httpc_resp *r)
{
	zt_buf_free(&r->body, 0);
}

void zt_httpc_set_cancel(zt_httpc *c, int fd)
{
	c->cancel_fd = fd;
}

static int cancelled(const zt_httpc *c)
{
	struct pollfd p = {.fd = c->cancel_fd, .events = POLLIN};

	return c->cancel_fd >= 0 && poll(&p, 1, 0) > 0;
}

/* Waits until fd is ready for `ev`, the deadline passes or we are cancelled. */
static int wait_fd(int fd, int cancel_fd, short ev, int64_t deadline, const char *what, zt_err *e)
{
	struct pollfd p[2] = {{.fd = fd, .events = ev}, {.fd = cancel_fd, .events = POLLIN}};

	for (;;) {
		int t = left_ms(deadline);

		if (t == 0)
			return zt_err_rule(e, ZT_EIO, "timeout", "the server did not answer in time (%s)", what);
		int n = poll(p, cancel_fd >= 0 ? 2 : 1, t);

		if (n > 0 && cancel_fd >= 0 && p[1].revents)
			return zt_err_rule(e, ZT_EIO, "cancelled", "cancelled (%s)", what);
		if (n > 0)
			return 0;
		if (n < 0 && errno != EINTR)
			return zt_err_set(e, ZT_EIO, "poll: %s", strerror(errno));
	}
}

static int unix_connect(zt_httpc *c, zt_err *e)
{
	struct sockaddr_un su = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	memcpy(su.sun_path, c->unix_path, strlen(c->unix_path) + 1);
	if (fd < 0 || connect(fd, (struct sockaddr *)&su, sizeof su) != 0) {
		int err = errno;

		if (fd >= 0)
			close(fd);
		return zt_err_rule(e, ZT_EIO, "connect", "cannot connect to %s: %s", c->unix_path,
				   strerror(err));
	}
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	c->fd = fd;
	return 0;
}

static int tcp_connect(zt_httpc *c, int64_t deadline, zt_err *e)
{
	if (c->unix_path[0])
		return unix_connect(c, e);
	struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res = NULL;
	int g = getaddrinfo(c->host, c->port, &hints, &res), err = 0;

	if (g != 0)
		return zt_err_set(e, ZT_EIO, "cannot resolve %s: %s", c->host, gai_strerror(g));
	for (struct addrinfo *a = res; a; a = a->ai_next) {
		int fd = socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
				a->ai_protocol);

		if (fd < 0) {
			err = errno;
			continue;
		}
		if (connect(fd, a->ai_addr, a->ai_addrlen) != 0 && errno != EINPROGRESS) {
			err = errno;
			close(fd);
			continue;
		}
		struct pollfd p[2] = {{.fd = fd, .events = POLLOUT}, {.fd = c->cancel_fd, .events = POLLIN}};
		int n;

		do
			n = poll(p, c->cancel_fd >= 0 ? 2 : 1, left_ms(deadline));
		while (n < 0 && errno == EINTR);
		socklen_t sl = sizeof err;

		if (n > 0 && c->cancel_fd >= 0 && p[1].revents) {
			close(fd);
			freeaddrinfo(res);
			return zt_err_rule(e, ZT_EIO, "cancelled", "cancelled (connecting)");
		}
		if (n <= 0) {
			err = n == 0 ? ETIMEDOUT : errno;
		} else if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &sl) != 0) {
			err = errno;
		}
		if (err) {
			close(fd);
			continue;
		}
		int one = 1;

		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
		c->fd = fd;
		break;
	}
	freeaddrinfo(res);
	if (c->fd < 0)
		return zt_err_rule(e, ZT_EIO, err == ETIMEDOUT ? "timeout" : "connect",
				   "cannot connect to %s:%s: %s", c->host, c->port,
				   strerror(err ? err : ECONNREFUSED));
	return 0;
}

/* Runs an SSL step until done, waiting on the socket as it asks. */
static int ssl_step(zt_httpc *c, int ret, int64_t deadline, const char *what, zt_err *e)
{
	switch (zt_tls_result(c->ssl, ret)) {
	case ZT_TLS_DONE:
		return 1;
	case ZT_TLS_WANT_READ:
		return wait_fd(c->fd, c->cancel_fd, POLLIN, deadline, what, e);
	case ZT_TLS_WANT_WRITE:
		return wait_fd(c->fd, c->cancel_fd, POLLOUT, deadline, what, e);
	case ZT_TLS_CLOSED:
		return zt_err_set(e, ZT_EIO, "the server closed the connection (%s)", what);
	default:
		return zt_err_set(e, ZT_EIO, "TLS failed (%s): %s", what, zt_tls_error_text());
	}
}

/* Connects and shakes hands within connect_ms, and within the request's deadline. */
static int open_conn(zt_httpc *c, int64_t request_deadline, zt_err *e)
{
	int64_t deadline = mono_ms() + c->connect_ms;
	int r;

	if (request_deadline >= 0 && request_deadline < deadline)
		deadline = request_deadline;

	if ((r = tcp_connect(c, deadline, e)) != 0)
		return r;
	if (!c->tls_on)
		return 0;
	if (!(c->ssl = SSL_new(c->tls)) || !SSL_set_fd(c->ssl, c->fd)) {
		r = zt_err_set(e, ZT_ECRYPTO, "cannot set up TLS: %s", zt_tls_error_text());
		goto fail;
	}
	struct in6_addr tmp;

	/*
	 * SNI with names only (RFC 6066 3: literal addresses are not sent).
	 * The name or address is also what a Web PKI certificate must carry
	 * (RFC 6125); SPIFFE contexts replace the whole chain check with their
	 * own and never look at it.
	 */
	if (!inet_pton(AF_INET, c->host, &tmp) && !inet_pton(AF_INET6, c->host, &tmp)) {
		SSL_set_tlsext_host_name(c->ssl, c->host);
		SSL_set1_host(c->ssl, c->host);
	} else {
		X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(c->ssl), c->host);
	}
	ERR_clear_error();
	for (;;) {
		r = ssl_step(c, SSL_connect(c->ssl), deadline, "handshake", e);
		if (r == 1)
			break;
		if (r < 0) {
			/* only a verdict of our verifier is about the certificate */
			const char *why = zt_tls_peer_error(c->ssl);

			long vr = SSL_get_verify_result(c->ssl);

			if (vr == X509_V_ERR_APPLICATION_VERIFICATION && why && *why)
				r = zt_err_rule(e, ZT_EVERIFY, "server-cert", "the server's certificate was refused: %s", why);
			else if (vr != X509_V_OK)
				r = zt_err_rule(e, ZT_EVERIFY, "server-cert", "the server's certificate was refused: %s",
						X509_verify_cert_error_string(vr));
			goto fail;
		}
	}
	const char *id = zt_tls_peer_id(c->ssl);

	snprintf(c->peer, sizeof c->peer, "%s", id ? id : "");
	return 0;
fail:
	zt_httpc_close(c);
	return r;
}

static int send_all(zt_httpc *c, const uint8_t *p, size_t n, int64_t deadline, zt_err *e)
{
	while (n > 0) {
		if (c->ssl) {
			size_t w = 0;
			int ret = SSL_write_ex(c->ssl, p, n, &w);

			if (ret == 1) {
				p += w;
				n -= w;
				continue;
			}
			int s = ssl_step(c, ret, deadline, "sending", e);

			if (s < 0)
				return s;
			continue;
		}
		ssize_t w = send(c->fd, p, n, MSG_NOSIGNAL);

		if (w > 0) {
			p += w;
			n -= (size_t)w;
		} else if (w < 0 && (errno == EAGAIN || errno == EINTR)) {
			int s = wait_fd(c->fd, c->cancel_fd, POLLOUT, deadline, "sending", e);

			if (s < 0)
				return s;
		} else {
			return zt_err_set(e, ZT_EIO, "sending: %s", strerror(errno));
		}
	}
	return 0;
}

/* Reads some bytes into b; 0 at a clean end of stream (returns bytes read, or < 0). */
static long recv_some(zt_httpc *c, zt_buf *b, int64_t deadline, zt_err *e)
{
	if (zt_buf_reserve(b, 16384, e) != 0)
		return -ZT_ELIMIT;
	for (;;) {
		size_t room = b->cap - b->len;

		if (c->ssl) {
			size_t got = 0;
			int ret = SSL_read_ex(c->ssl, b->p + b->len, room, &got);

			if (ret == 1) {
				b->len += got;
				return (long)got;
			}
			if (zt_tls_result(c->ssl, ret) == ZT_TLS_CLOSED)
				return 0;
			int s = ssl_step(c, ret, deadline, "reading", e);

			if (s < 0)
				return s;
			continue;
		}
		ssize_t got = recv(c->fd, b->p + b->len, room, 0);

		if (got >= 0) {
			b->len += (size_t)got;
			return (long)got;
		}
		if (errno != EAGAIN && errno != EINTR)
			return zt_err_set(e, ZT_EIO, "reading: %s", strerror(errno));
		int s = wait_fd(c->fd, c->cancel_fd, POLLIN, deadline, "reading", e);

		if (s < 0)
			return s;
	}
}

static void field_copy(const zt_http1_response *h, const char *name, char *out, size_t cap)
{
	const zt_http1_field *f = zt_http1_field_get(h->fields, h->nfields, name, NULL);

	out[0] = '\0';
	if (f && f->value_len < cap) {
		memcpy(out, f->value, f->value_len);
		out[f->value_len] = '\0';
	}
}

/* One exchange on the open connection. *got says whether any response byte came. */
static int exchange(zt_httpc *c, const zt_buf *req, unsigned mflags, int64_t deadline,
		    zt_httpc_resp *r, int *got, zt_err *e)
{
	zt_buf in;
	zt_http1_response h;
	size_t scanned = 0;
	int rc, keep = 0;

	*got = 0;
	zt_buf_init(&in, HTTPC_HEAD_MAX + c->max_body + 65536);
	if ((rc = send_all(c, req->p, req->len, deadline, e)) != 0)
		goto out;
	/* the head: interim 1xx responses are skipped */
	for (;;) {
		rc = in.len ? zt_http1_parse_response(in.p, in.len, NULL, mflags, &scanned, &h, e)
			    : ZT_HTTP1_INCOMPLETE;
		if (rc == 0 && h.interim) {
			memmove(in.p, in.p + h.head_len, in.len - h.head_len);
			in.len -= h.head_len;
			continue;
		}
		if (rc == 0)
			break;
		if (rc < 0) {
			rc = zt_err_wrap(e, "the server's response is not valid HTTP");
			goto out;
		}
		long n = recv_some(c, &in, deadline, e);

		if (n < 0) {
			rc = (int)n;
			goto out;
		}
		if (n == 0) {
			rc = zt_err_set(e, ZT_EIO, "the server closed the connection before answering");
			goto out;
		}
		*got = 1;
	}
	*got = 1;
	r->status = h.status;
	field_copy(&h, "content-type", r->content_type, sizeof r->content_type);
	field_copy(&h, "x-request-id", r->request_id, sizeof r->request_id);
	keep = h.keep_alive;
	size_t off = h.head_len;

	if (h.framing == ZT_HTTP1_BODY_LENGTH) {
		if (h.content_length > c->max_body) {
			rc = zt_err_set(e, ZT_ELIMIT, "the server's response is too large (%llu bytes; at most %zu)",
					(unsigned long long)h.content_length, c->max_body);
			goto out;
		}
		while (in.len - off < h.content_length) {
			long n = recv_some(c, &in, deadline, e);

			if (n <= 0) {
				rc = n < 0 ? (int)n : zt_err_set(e, ZT_EIO, "the server closed the connection mid-response");
				goto out;
			}
		}
		if ((rc = zt_buf_append(&r->body, in.p + off, (size_t)h.content_length, e)) != 0)
			goto out;
		if (in.len - off > h.content_length)
			keep = 0; /* bytes nobody asked for: do not reuse */
	} else if (h.framing == ZT_HTTP1_BODY_CHUNKED) {
		zt_http1_chunked ch;

		zt_http1_chunked_init(&ch, NULL, 1);
		for (;;) {
			while (off < in.len && !zt_http1_chunked_done(&ch)) {
				size_t used = 0, pay_off = 0, pay_len = 0;

				if (zt_http1_chunked_feed(&ch, in.p + off, in.len - off, &used, &pay_off,
							  &pay_len, e) < 0) {
					rc = zt_err_wrap(e, "the server's chunked body is malformed");
					goto out;
				}
				if (pay_len && (rc = zt_buf_append(&r->body, in.p + off + pay_off, pay_len, e)) != 0)
					goto out;
				off += used;
			}
			if (zt_http1_chunked_done(&ch)) {
				if (off < in.len)
					keep = 0; /* bytes nobody asked for: do not reuse */
				break;
			}
			in.len = off = 0;
			long n = recv_some(c, &in, deadline, e);

			if (n <= 0) {
				rc = n < 0 ? (int)n : zt_err_set(e, ZT_EIO, "the server closed the connection mid-response");
				goto out;
			}
		}
	} else if (h.framing == ZT_HTTP1_BODY_NONE) {
		if (in.len > off)
			keep = 0;
	} else if (h.framing == ZT_HTTP1_BODY_CLOSE) {
		if ((rc = zt_buf_append(&r->body, in.p + off, in.len - off, e)) != 0)
			goto out;
		for (;;) {
			zt_buf_free(&in, 0);
			zt_buf_init(&in, 1u << 20);
			long n = recv_some(c, &in, deadline, e);

			if (n < 0) {
				rc = (int)n;
				goto out;
			}
			if (n == 0)
				break;
			if ((rc = zt_buf_append(&r->body, in.p, in.len, e)) != 0)
				goto out;
		}
		keep = 0;
	}
	rc = 0;
out:
	zt_buf_free(&in, 0);
	if (rc != 0 || !keep)
		zt_httpc_close(c);
	return rc;
}

int zt_httpc_do(zt_httpc *c, const char *method, const char *target, const char *const *headers,
		const void *body, size_t len, int timeout_ms, zt_httpc_resp *r, zt_err *e)
{
	zt_http1_field extra[24];
	size_t nx = 0;
	char clen[24];
	zt_buf req;
	int64_t deadline = timeout_ms < 0 ? -1 : mono_ms() + timeout_ms;
	int rc;

	memset(r, 0, sizeof *r);
	zt_buf_init(&r->body, c->max_body);
	extra[nx++] = (zt_http1_field){"Host", 4, c->authority, strlen(c->authority)};
	for (size_t i = 0; headers && headers[i] && headers[i + 1]; i += 2) {
		if (nx + 2 >= sizeof extra / sizeof extra[0])
			return zt_err_set(e, ZT_ELIMIT, "too many request headers");
		extra[nx++] = (zt_http1_field){headers[i], strlen(headers[i]), headers[i + 1],
					       strlen(headers[i + 1])};
	}
	int has_body = body || len || !strcmp(method, "POST") || !strcmp(method, "PUT") ||
		       !strcmp(method, "PATCH");

	snprintf(clen, sizeof clen, "%zu", len);
	if (has_body)
		extra[nx++] = (zt_http1_field){"Content-Length", 14, clen, strlen(clen)};
	zt_http1_out out = {.extra = extra, .nextra = nx};

	zt_buf_init(&req, (64u << 10) + len);
	if ((rc = zt_http1_write_request(&req, method, strlen(method), target, strlen(target), &out,
					 e)) != 0 ||
	    (len && (rc = zt_buf_append(&req, body, len, e)) != 0))
		goto out;
	unsigned mflags = !strcmp(method, "HEAD") ? ZT_HTTP1_METHOD_HEAD : 0;
	int retry = !strcmp(method, "GET") || !strcmp(method, "HEAD");
	struct sigpipe_guard g;

	sigpipe_block(&g);

	for (int attempt = 0;; attempt++) {
		int reused = c->fd >= 0 && c->used, got = 0;

		if (c->fd < 0 && (rc = open_conn(c, deadline, e)) != 0)
			break;
		c->used = 1;
		rc = exchange(c, &req, mflags, deadline, r, &got, e);
		if (rc == 0 || !(reused && !got && retry && attempt == 0 && left_ms(deadline) != 0 &&
				 !cancelled(c)))
			break;
		zt_buf_free(&r->body, 0);
		zt_buf_init(&r->body, c->max_body);
	}
	sigpipe_restore(&g);
out:
	zt_buf_free(&req, 0);
	if (rc != 0)
		zt_httpc_resp_free(r);
	return rc;
}
