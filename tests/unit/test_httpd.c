/*
 * Unit tests: the API server (net/httpd.c), driven over loopback by plain
 * sockets and an OpenSSL client: framing, keep-alive and pipelining, the
 * refusals before the handler, the timeouts, the connection bound, client
 * certificates (optional and required), the drain on stop, and the
 * response helpers.
 */
#include "testutil.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "net/httpd.h"
#include "net/net.h"

/* ---- time ------------------------------------------------------------------------ */

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};

	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

/* ---- the test application ------------------------------------------------------------ */

/*
 * What the handler does is chosen by the path:
 *   /sleep/N   sleeps N ms, then echoes
 *   /block     waits until zt_httpd_stopping(), then echoes
 *   /headers   sets extra headers (and tries a header injection), then echoes
 *   /missing   404 by zt_http_resp_error
 *   /null      zt_http_resp_json(NULL): 500
 *   /close     asks for the connection to close after the response
 *   otherwise  echoes method, path, query, body_len, body, peer_id, request_id
 */
struct app {
	_Atomic(zt_httpd *) h;
	atomic_int calls;
	atomic_int blocked;    /* handlers inside /block */
	atomic_int evil_rc;    /* what the header injection attempt returned */
	atomic_int verify_calls;
};

static struct app g_app;

static void app_handler(void *arg, const zt_http_req *q, zt_http_resp *r)
{
	struct app *a = arg;
	json_t *o;

	atomic_fetch_add(&a->calls, 1);
	if (strncmp(q->path, "/sleep/", 7) == 0) {
		sleep_ms(atoi(q->path + 7));
	} else if (strcmp(q->path, "/block") == 0) {
		zt_httpd *h;

		atomic_fetch_add(&a->blocked, 1);
		while (!(h = atomic_load(&a->h)) || !zt_httpd_stopping(h))
			sleep_ms(5);
	} else if (strcmp(q->path, "/headers") == 0) {
		if (zt_http_resp_header(r, "X-Test", "one") != 0 ||
		    zt_http_resp_header(r, "X-Other", "two, three") != 0)
			r->status = 599;
		atomic_store(&a->evil_rc, zt_http_resp_header(r, "X-Evil", "a\r\nInjected: 1"));
	} else if (strcmp(q->path, "/missing") == 0) {
		zt_http_resp_error(r, q, 404, "not-found", "nothing at %s", q->path);
		return;
	} else if (strcmp(q->path, "/null") == 0) {
		(void)zt_http_resp_json(r, 200, NULL);
		return;
	} else if (strcmp(q->path, "/close") == 0) {
		r->close = 1;
	}
	o = json_pack("{s:s,s:s,s:s,s:I,s:s?,s:s}", "method", q->method, "path", q->path, "query",
		      q->query, "body_len", (json_int_t)q->body_len, "peer_id", q->peer_id,
		      "request_id", q->request_id);
	if (o && q->body_len > 0 && q->body_len <= 4096)
		json_object_set_new(o, "body", json_stringn((const char *)q->body, q->body_len));
	(void)zt_http_resp_json(r, 200, o);
}

/* ---- servers and clients, cleaned up by the teardown even when a test fails ------------ */

struct cli {
	int fd;
	SSL *ssl;
	size_t len;
	char buf[96 * 1024];
};

#define MAX_TRACKED 64

static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static zt_httpd *g_srv;
static SSL_CTX *g_ctx[4];
static struct cli *g_clis[MAX_TRACKED];

static void track_ctx(SSL_CTX *c)
{
	for (size_t i = 0; i < 4; i++)
		if (!g_ctx[i]) {
			g_ctx[i] = c;
			return;
		}
	fail_msg("too many SSL_CTX");
}

static zt_httpd *start(zt_httpd_opts *o)
{
	zt_err e;
	zt_httpd *h;

	o->listen = "127.0.0.1:0";
	o->handler = app_handler;
	o->arg = &g_app;
	h = zt_httpd_start(o, &e);
	if (!h)
		fail_msg("zt_httpd_start: %s", e.msg);
	atomic_store(&g_app.h, h);
	g_srv = h;
	return h;
}

static void stop(int drain_ms)
{
	zt_httpd *h = g_srv;

	g_srv = NULL;
	zt_httpd_stop(h, drain_ms); /* handlers in /block still look at g_app.h */
	atomic_store(&g_app.h, NULL);
}

static uint16_t port(void)
{
	return zt_httpd_port(g_srv);
}

static int tcp_connect(uint16_t p)
{
	struct sockaddr_in sa;
	struct timeval tv = {5, 0};
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;

	if (fd < 0)
		return -1;
	memset(&sa, 0, sizeof sa);
	sa.sin_family = AF_INET;
	sa.sin_port = htons(p);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
		close(fd);
		return -1;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
	return fd;
}

static void cli_free(struct cli *c)
{
	if (!c)
		return;
	pthread_mutex_lock(&g_mu);
	for (size_t i = 0; i < MAX_TRACKED; i++)
		if (g_clis[i] == c)
			g_clis[i] = NULL;
	pthread_mutex_unlock(&g_mu);
	SSL_free(c->ssl);
	if (c->fd >= 0)
		close(c->fd);
	free(c);
}

/* A connected client (NULL when the connection or the TLS handshake fails). */
static struct cli *cli_open(uint16_t p, SSL_CTX *tls)
{
	struct cli *c = calloc(1, sizeof *c);

	if (!c)
		return NULL;
	c->fd = tcp_connect(p);
	pthread_mutex_lock(&g_mu);
	for (size_t i = 0; i < MAX_TRACKED; i++)
		if (!g_clis[i]) {
			g_clis[i] = c;
			break;
		}
	pthread_mutex_unlock(&g_mu);
	if (c->fd < 0)
		goto fail;
	if (tls) {
		if (!(c->ssl = SSL_new(tls)) || SSL_set_fd(c->ssl, c->fd) != 1 ||
		    SSL_connect(c->ssl) != 1)
			goto fail;
	}
	return c;
fail:
	ERR_clear_error();
	cli_free(c);
	return NULL;
}

static void release_all(void);

static int teardown(void **state)
{
	(void)state;
	for (size_t i = 0; i < MAX_TRACKED; i++)
		if (g_clis[i])
			cli_free(g_clis[i]);
	if (g_srv)
		stop(0);
	for (size_t i = 0; i < 4; i++) {
		SSL_CTX_free(g_ctx[i]);
		g_ctx[i] = NULL;
	}
	release_all();
	atomic_store(&g_app.calls, 0);
	atomic_store(&g_app.blocked, 0);
	atomic_store(&g_app.verify_calls, 0);
	return 0;
}

static void set_rcvtimeo(struct cli *c, int ms)
{
	struct timeval tv = {ms / 1000, (ms % 1000) * 1000};

	setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
}

static int cli_send_n(struct cli *c, const void *p, size_t n)
{
	const char *b = p;

	while (n > 0) {
		ssize_t w;

		if (c->ssl) {
			int r = SSL_write(c->ssl, b, n > INT32_MAX ? INT32_MAX : (int)n);

			w = r > 0 ? r : -1;
		} else {
			w = send(c->fd, b, n, MSG_NOSIGNAL);
		}
		if (w < 0 && errno == EINTR && !c->ssl)
			continue;
		if (w <= 0)
			return -1;
		b += w;
		n -= (size_t)w;
	}
	return 0;
}

static int cli_send(struct cli *c, const char *s)
{
	return cli_send_n(c, s, strlen(s));
}

/* Reads more into c->buf: >0 bytes, 0 at the end of the connection, -1 on a timeout. */
static ssize_t cli_fill(struct cli *c)
{
	size_t room = sizeof c->buf - c->len;
	ssize_t n;

	if (room == 0)
		return -1;
	if (c->ssl) {
		int r;

		errno = 0;
		r = SSL_read(c->ssl, c->buf + c->len, (int)room);
		if (r > 0) {
			n = r;
		} else {
			int err = SSL_get_error(c->ssl, r);

			ERR_clear_error();
			if (err == SSL_ERROR_ZERO_RETURN)
				return 0;
			if (err == SSL_ERROR_SYSCALL && (errno == EAGAIN || errno == EWOULDBLOCK))
				return -1;
			return 0; /* an alert, a reset: the connection is over */
		}
	} else {
		do
			n = recv(c->fd, c->buf + c->len, room, 0);
		while (n < 0 && errno == EINTR);
		if (n < 0)
			return errno == EAGAIN || errno == EWOULDBLOCK ? -1 : 0;
	}
	c->len += (size_t)n;
	return n;
}

struct resp {
	int status;
	char head[16384];
	char *body;
	size_t body_len;
	json_t *json;
};

/*
 * What responses hold, so that a test failing between read_resp and
 * resp_free (cmocka jumps out of it) leaks nothing: the teardown frees it.
 */
struct held {
	char *body;
	json_t *json;
};

static struct held g_held[256];

static void hold(char *body, json_t *json)
{
	pthread_mutex_lock(&g_mu);
	for (size_t i = 0; i < sizeof g_held / sizeof g_held[0]; i++)
		if (!g_held[i].body) {
			g_held[i].body = body;
			g_held[i].json = json;
			break;
		}
	pthread_mutex_unlock(&g_mu);
}

static void release(const char *body)
{
	pthread_mutex_lock(&g_mu);
	for (size_t i = 0; body && i < sizeof g_held / sizeof g_held[0]; i++)
		if (g_held[i].body == body)
			g_held[i].body = NULL;
	pthread_mutex_unlock(&g_mu);
}

static void release_all(void)
{
	for (size_t i = 0; i < sizeof g_held / sizeof g_held[0]; i++) {
		if (g_held[i].body) {
			free(g_held[i].body);
			json_decref(g_held[i].json);
		}
		g_held[i].body = NULL;
		g_held[i].json = NULL;
	}
}

static void resp_free(struct resp *r)
{
	release(r->body);
	free(r->body);
	json_decref(r->json);
	memset(r, 0, sizeof *r);
}

/* The value of the first header `name` (case-insensitive) into out; 0 when absent. */
static int hdr(const struct resp *r, const char *name, char *out, size_t outsz)
{
	size_t nl = strlen(name);
	const char *line = strstr(r->head, "\r\n");

	while (line && line[2] != '\r') {
		const char *s = line + 2, *end = strstr(s, "\r\n");

		if (!end)
			break;
		if ((size_t)(end - s) > nl && s[nl] == ':' && strncasecmp(s, name, nl) == 0) {
			const char *v = s + nl + 1;

			while (*v == ' ')
				v++;
			snprintf(out, outsz, "%.*s", (int)(end - v), v);
			return 1;
		}
		line = end;
	}
	return 0;
}

/*
 * Reads one response (its head only when head_only: the answer to HEAD).
 * Returns 0, or -1 when the connection ends or stalls before a whole one.
 */
static int read_resp(struct cli *c, int head_only, struct resp *r)
{
	char *end, cl[32];
	size_t hl;

	memset(r, 0, sizeof *r);
	while (!(end = memmem(c->buf, c->len, "\r\n\r\n", 4)))
		if (cli_fill(c) <= 0)
			return -1;
	hl = (size_t)(end - c->buf) + 4;
	if (hl >= sizeof r->head || sscanf(c->buf, "HTTP/1.1 %3d ", &r->status) != 1)
		return -1;
	memcpy(r->head, c->buf, hl);
	r->head[hl] = '\0';
	if (!head_only && hdr(r, "Content-Length", cl, sizeof cl))
		r->body_len = strtoul(cl, NULL, 10);
	while (c->len < hl + r->body_len)
		if (cli_fill(c) <= 0)
			return -1;
	r->body = malloc(r->body_len + 1);
	if (!r->body)
		return -1;
	memcpy(r->body, c->buf + hl, r->body_len);
	r->body[r->body_len] = '\0';
	memmove(c->buf, c->buf + hl + r->body_len, c->len - hl - r->body_len);
	c->len -= hl + r->body_len;
	if (r->body_len > 0)
		r->json = json_loadb(r->body, r->body_len, 0, NULL);
	hold(r->body, r->json);
	return 0;
}

/* 1 when the server ends the connection within ms (nothing more arrives first). */
static int cli_ended(struct cli *c, int ms)
{
	set_rcvtimeo(c, ms);
	if (c->len > 0)
		return 0;
	return cli_fill(c) == 0;
}

static int is_uuid(const char *s)
{
	if (strlen(s) != 36)
		return 0;
	for (int i = 0; i < 36; i++) {
		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (s[i] != '-')
				return 0;
		} else if (!strchr("0123456789abcdef", s[i])) {
			return 0;
		}
	}
	return 1;
}

static const char *jstr(const json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));

	return s ? s : "(none)";
}

static json_int_t jint(const json_t *o, const char *key)
{
	return json_integer_value(json_object_get(o, key));
}

/* The fields every response of ours has; returns its request ID's header value. */
static void check_common(const struct resp *r, char *rid, size_t rid_sz)
{
	char v[256];

	assert_true(hdr(r, "Content-Length", v, sizeof v));
	assert_int_equal(strtoul(v, NULL, 10), r->body_len);
	assert_true(hdr(r, "Content-Type", v, sizeof v));
	assert_string_equal(v, "application/json");
	assert_true(hdr(r, "Cache-Control", v, sizeof v));
	assert_string_equal(v, "no-store");
	assert_true(hdr(r, "X-Request-Id", rid, rid_sz));
}

/* One request on c and its echo; returns the response (caller resp_free's). */
static void exchange(struct cli *c, const char *req, int status, struct resp *r)
{
	char rid[256];

	assert_int_equal(cli_send(c, req), 0);
	assert_int_equal(read_resp(c, 0, r), 0);
	assert_int_equal(r->status, status);
	check_common(r, rid, sizeof rid);
	assert_non_null(r->json);
	if (json_object_get(r->json, "request_id"))
		assert_string_equal(jstr(r->json, "request_id"), rid);
}

/*
 * A refusal: the status, the JSON error {"error": {status, code, message,
 * request_id}} matching X-Request-Id, "Connection: close", then the end.
 */
static void expect_refusal(struct cli *c, int status)
{
	struct resp r;
	char rid[256], v[64];
	json_t *err;

	assert_int_equal(read_resp(c, 0, &r), 0);
	assert_int_equal(r.status, status);
	check_common(&r, rid, sizeof rid);
	assert_true(is_uuid(rid));
	assert_true(hdr(&r, "Connection", v, sizeof v));
	assert_string_equal(v, "close");
	assert_non_null(r.json);
	err = json_object_get(r.json, "error");
	assert_true(json_is_object(err));
	assert_int_equal(jint(err, "status"), status);
	assert_true(strlen(jstr(err, "code")) > 0 && strcmp(jstr(err, "code"), "(none)") != 0);
	assert_true(json_is_string(json_object_get(err, "message")));
	assert_string_equal(jstr(err, "request_id"), rid);
	resp_free(&r);
	assert_true(cli_ended(c, 2000));
}

/* ---- plain HTTP ----------------------------------------------------------------------- */

static void test_get(void **state)
{
	zt_httpd_opts o = {0};
	struct cli *c;
	struct resp r;
	char v[256];

	(void)state;
	start(&o);
	assert_true(port() > 0);
	c = cli_open(port(), NULL);
	assert_non_null(c);
	exchange(c, "GET /v1/things?a=1&b=two HTTP/1.1\r\nHost: x\r\n\r\n", 200, &r);
	assert_string_equal(jstr(r.json, "method"), "GET");
	assert_string_equal(jstr(r.json, "path"), "/v1/things");
	assert_string_equal(jstr(r.json, "query"), "a=1&b=two");
	assert_int_equal(jint(r.json, "body_len"), 0);
	assert_true(json_is_null(json_object_get(r.json, "peer_id")));
	assert_true(is_uuid(jstr(r.json, "request_id")));
	assert_true(hdr(&r, "X-Content-Type-Options", v, sizeof v));
	assert_false(hdr(&r, "Connection", v, sizeof v)); /* kept alive */
	resp_free(&r);
	/* no query: "" */
	exchange(c, "GET /v1/x HTTP/1.1\r\nHost: x\r\n\r\n", 200, &r);
	assert_string_equal(jstr(r.json, "query"), "");
	resp_free(&r);
	/* extra headers from the handler; one with CR LF in it was refused */
	exchange(c, "GET /headers HTTP/1.1\r\nHost: x\r\n\r\n", 200, &r);
	assert_true(hdr(&r, "X-Test", v, sizeof v));
	assert_string_equal(v, "one");
	assert_true(hdr(&r, "X-Other", v, sizeof v));
	assert_string_equal(v, "two, three");
	assert_false(hdr(&r, "Injected", v, sizeof v));
	assert_int_not_equal(atomic_load(&g_app.evil_rc), 0);
	resp_free(&r);
	/* a 404 from the handler is JSON and keeps the connection */
	exchange(c, "GET /missing HTTP/1.1\r\nHost: x\r\n\r\n", 404, &r);
	{
		json_t *err = json_object_get(r.json, "error");
		char rid[256];

		assert_true(json_is_object(err));
		assert_int_equal(jint(err, "status"), 404);
		assert_string_equal(jstr(err, "code"), "not-found");
		assert_string_equal(jstr(err, "message"), "nothing at /missing");
		assert_true(hdr(&r, "X-Request-Id", rid, sizeof rid));
		assert_string_equal(jstr(err, "request_id"), rid);
	}
	resp_free(&r);
	/* the handler's JSON failing: 500 with an empty body */
	assert_int_equal(cli_send(c, "GET /null HTTP/1.1\r\nHost: x\r\n\r\n"), 0);
	assert_int_equal(read_resp(c, 0, &r), 0);
	assert_int_equal(r.status, 500);
	assert_int_equal(r.body_len, 0);
	resp_free(&r);
	exchange(c, "GET /again HTTP/1.1\r\nHost: x\r\n\r\n", 200, &r);
	resp_free(&r);
	cli_free(c);
	stop(1000);
}

static void test_post_body(void **state)
{
	zt_httpd_opts o = {0};
	struct cli *c;
	struct resp r;

	(void)state;
	start(&o);
	c = cli_open(port(), NULL);
	assert_non_null(c);
	exchange(c,
		 "POST /v1/items HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
		 "Content-Length: 17\r\n\r\n{\"name\":\"hello\"}\n",
		 200, &r);
	assert_string_equal(jstr(r.json, "method"), "POST");
	assert_string_equal(jstr(r.json, "path"), "/v1/items");
	assert_int_equal(jint(r.json, "body_len"), 17);
	assert_string_equal(jstr(r.json, "body"), "{\"name\":\"hello\"}\n");
	resp_free(&r);
	/* a body that arrives in pieces after the head */
	assert_int_equal(cli_send(c, "PUT /v1/p HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n01"), 0);
	sleep_ms(30);
	assert_int_equal(cli_send(c, "2345"), 0);
	sleep_ms(30);
	assert_int_equal(cli_send(c, "6789"), 0);
	assert_int_equal(read_resp(c, 0, &r), 0);
	assert_int_equal(r.status, 200);
	assert_string_equal(jstr(r.json, "body"), "0123456789");
	resp_free(&r);
	/* Content-Length: 0 */
	exchange(c, "POST /z HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n", 200, &r);
	assert_int_equal(jint(r.json, "body_len"), 0);
	resp_free(&r);
	cli_free(c);
	stop(1000);
}

static void test_request_id(void **state)
{
	zt_httpd_opts o = {0};
	struct cli *c;
	struct resp r;
	char rid[256];

	(void)state;
	start(&o);
	c = cli_open(port(), NULL);
	assert_non_null(c);
	exchange(c, "GET / HTTP/1.1\r\nHost: x\r\nX-Request-Id: abc-123_x.y:Z\r\n\r\n", 200, &r);
	assert_true(hdr(&r, "X-Request-Id", rid, sizeof rid));
	assert_string_equal(rid, "abc-123_x.y:Z");
	assert_string_equal(jstr(r.json, "request_id"), "abc-123_x.y:Z");
	resp_free(&r);
	/* invalid ones are replaced by a UUID */
	static const char *const bad[] = {"bad id", "a/b", "<script>", "x\"y", "caf\xc3\xa9", ""};

	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		char req[256];

		snprintf(req, sizeof req, "GET / HTTP/1.1\r\nHost: x\r\nX-Request-Id: %s\r\n\r\n", bad[i]);
		exchange(c, req, 200, &r);
		assert_true(hdr(&r, "X-Request-Id", rid, sizeof rid));
		assert_true(is_uuid(rid));
		resp_free(&r);
	}
	{ /* 129 characters: too long, replaced */
		char req[512], id[130];

		memset(id, 'a', 129);
		id[129] = '\0';
		snprintf(req, sizeof req, "GET / HTTP/1.1\r\nHost: x\r\nX-Request-Id: %s\r\n\r\n", id);
		exchange(c, req, 200, &r);
		assert_true(hdr(&r, "X-Request-Id", rid, sizeof rid));
		assert_true(is_uuid(rid));
		resp_free(&r);
	}
	/* fresh ones differ */
	{
		char first[64];

		exchange(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n", 200, &r);
		assert_true(hdr(&r, "X-Request-Id", first, sizeof first));
		resp_free(&r);
		exchange(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n", 200, &r);
		assert_true(hdr(&r, "X-Request-Id", rid, sizeof rid));
		assert_string_not_equal(first, rid);
		resp_free(&r);
	}
	cli_free(c);
	stop(1000);
}

/* A valid X-Request-Id may be up to 128 characters and is kept whole. */
static void test_request_id_long(void **state)
{
	zt_httpd_opts o = {0};
	struct cli *c;
	struct resp r;
	char rid[256];

	(void)state;
	start(&o);
	c = cli_open(port(), NULL);
	assert_non_null(c);
	static const size_t lens[] = {1, 39, 40, 64, 128};

	for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
		char req[512], id[129];

		for (size_t k = 0; k < lens[i]; k++)
			id[k] = "abcdefghij0123456789-_.:"[k % 24];
		id[lens[i]] = '\0';
		snprintf(req, sizeof req, "GET / HTTP/1.1\r\nHost: x\r\nX-Request-Id: %s\r\n\r\n", id);
		exchange(c, req, 200, &r);
		assert_true(hdr(&r, "X-Request-Id", rid, sizeof rid));
		assert_string_equal(rid, id);
		resp_free(&r);
	}
	cli_free(c);
	stop(1000);
}

static void test_head(void **state)
{
	zt_httpd_opts o = {0};
	struct cli *c;
	struct resp r;
	char rid[256];

	(void)state;
	start(&o);
	c = cli_open(port(), NULL);
	assert_non_null(c);
	assert_int_equal(cli_send(c, "HEAD /h HTTP/1.1\r\nHost: x\r\n\r\n"), 0);
	assert_int_equal(read_resp(c, 1, &r), 0);
	assert_int_equal(r.status, 200);
	{
		char v[64];

		assert_true(hdr(&r, "Content-Length", v, sizeof v));
		assert_true(strtoul(v, NULL, 10) > 0); /* the length a GET would have */
		assert_true(hdr(&r, "X-Request-Id", rid, sizeof rid));
	}
	resp_free(&r);
	/* no body followed: nothing is waiting, and the next response parses */
	sleep_ms(50);
	assert_int_equal(c->len, 0);
	exchange(c, "GET /after-head HTTP/1.1\r\nHost: x\r\n\r\n", 200, &r);
	assert_string_equal(jstr(r.json, "path"), "/after-head");
	resp_free(&r);
	cli_free(c);
	stop(1000);
}

static void test_keepalive(void **state)
{
	zt_httpd_opts o = {0};
	struct cli *c;
	struct resp r;
	char ids[3][64];

	(void)state;
	start(&o);
	c = cli_open(port(), NULL);
	assert_non_null(c);
	for (int i = 0; i < 3; i++) {
		char req[128], path[32];

		snprintf(path, sizeof path, "/k/%d", i);
		snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: x\r\n\r\n", path);
		exchange(c, req, 200, &r);
		assert_string_equal(jstr(r.json, "path"), path);
		snprintf(ids[i], sizeof ids[i], "%s", jstr(r.json, "request_id"));
		resp_free(&r);
	}
	assert_string_not_equal(ids[0], ids[1]);
	assert_string_not_equal(ids[1], ids[2]);
	assert_int_equal(atomic_load(&g_app.calls), 3);
	cli_free(c);
	stop(1000);
}

static void test_pipelining(void **state)
{
	zt_httpd_opts o = {0};
	struct cli *c;
	struct resp r;

	(void)state;
	start(&o);
	c = cli_open(port(), NULL);
	assert_non_null(c);
	assert_int_equal(cli_send(c, "GET /first?n=1 HTTP/1.1\r\nHost: x\r\n\r\n"
				     "POST /second HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nxyz"
				     "GET /sleep/20 HTTP/1.1\r\nHost: x\r\n\r\n"
				     "GET /fourth HTTP/1.1\r\nHost: x\r\n\r\n"),
			 0);
	assert_int_equal(read_resp(c, 0, &r), 0);
	assert_int_equal(r.status, 200);
	assert_string_equal(jstr(r.json, "path"), "/first");
	assert_string_equal(jstr(r.json, "query"), "n=1");
	resp_free(&r);
	assert_int_equal(read_resp(c, 0, &r), 0);
	assert_string_equal(jstr(r.json, "path"), "/second");
	assert_string_equal(jstr(r.json, "body"), "xyz");
	resp_free(&r);
	assert_int_equal(read_resp(c, 0, &r), 0);
	assert_string_equal(jstr(r.json, "path"), "/sleep/20");
	resp_free(&r);
	assert_int_equal(read_resp(c, 0, &r), 0);
	assert_string_equal(jstr(r.json, "path"), "/fourth");
	resp_free(&r);
	/* and the connection is still good */
	exchange(c, "GET /fifth HTTP/1.1\r\nHost: x\r\n\r\n", 200, &r);
	resp_free(&r);
	cli_free(c);
	stop(1000);
}

static void test_connection_close(void **state)
{
	zt_httpd_opts o = {0};
	struct cli *c;
	struct resp r;
	char v[64];

	(void)state;
	start(&o);
	/* asked by the client */
	c = cli_open(port(), NULL);
	assert_non_null(c);
	exchange(c, "GET /c HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 200, &r);
	assert_true(hdr(&r, "Connection", v, sizeof v));
	assert_string_equal(v, "close");
	resp_free(&r);
	assert_true(cli_ended(c, 2000));
	cli_free(c);
	/* asked by the handler */
	c = cli_open(port(), NULL);
	assert_non_null(c);
	exchange(c, "GET /close HTTP/1.1\r\nHost: x\r\n\r\n", 200, &r);
	assert_true(hdr(&r, "Connection", v, sizeof v));
	assert_string_equal(v, "close");
	resp_free(&r);
	assert_true(cli_ended(c, 2000));
	cli_free(c);
	/* a request pipelined after "Connection: close" is not served */
	c = cli_open(port(), NULL);
	assert_non_null(c);
	atomic_store(&g_app.calls, 0);
	assert_int_equal(cli_send(c, "GET /one HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
				     "GET /two HTTP/1.1\r\nHost: x\r\n\r\n"),
			 0);
	assert_int_equal(read_resp(c, 0, &r), 0);
	assert_string_equal(jstr(r.json, "path"), "/one");
	resp_free(&r);
	assert_true(cli_ended(c, 2000));
	assert_int_equal(atomic_load(&g_app.calls), 1);
	cli_free(c);
	stop(1000);
}

static void test_http10(void **state)
{
	zt_httpd_opts o = {0};
	struct cli *c;
	struct resp r;
	char v[64];

	(void)state;
	start(&o);
	c = cli_open(port(), NULL);
	assert_non_null(c);
	assert_int_equal(cli_send(c, "GET /old HTTP/1.0\r\n\r\n"), 0);
	/* the server answers with its own version */
	assert_int_equal(read_resp(c, 0, &r), 0);
	assert_int_equal(r.status, 200);
	assert_string_equal(jstr(r.json, "path"), "/old");
	assert_true(hdr(&r, "Connection", v, sizeof v));
	assert_string_equal(v, "close");
	resp_free(&r);
	assert_true(cli_ended(c, 2000));
	cli_free(c);
	/* HTTP/1.0 with Connection: keep-alive stays open */
	c = cli_open(port(), NULL);
	assert_non_null(c);
	exchange(c, "GET /old1 HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", 200, &r);
	resp_free(&r);
	exchange(c, "GET /old2 HTTP/1.0\r\n\r\n", 200, &r);
	assert_string_equal(jstr(r.json, "path"), "/old2");
	resp_free(&r);
	assert_true(cli_ended(c, 2000));
	cli_free(c);
	stop(1000);
}

/* ---- refusals ---------------------------------------------------------------------------- */

/* Sends req on a new connection and expects the refusal `status`; the handler is not called. */
static void refused(const char *req, size_t len, int status)
{
	struct cli *c = cli_open(port(), NULL);
	int calls = atomic_load(&g_app.calls);

	assert_non_null(c);
	assert_int_equal(cli_send_n(c, req, len), 0);
	expect_refusal(c, status);
	assert_int_equal(atomic_load(&g_app.calls), calls);
	cli_free(c);
}

#define REFUSED(lit, status) refused(lit, sizeof(lit) - 1, status)

static void test_refuse_chunked(void **state)
{
	zt_httpd_opts o = {0};

	(void)state;
	start(&o);
	REFUSED("POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n", 411);
	/* with the chunks sent along */
	REFUSED("POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
		411);
	stop(1000);
}

static void test_refuse_too_large(void **state)
{
	zt_httpd_opts o = {.max_body = 1024};
	struct cli *c;
	struct resp r;
	char req[2048];
	int64_t t0;

	(void)state;
	start(&o);
	/* exactly max_body is taken */
	c = cli_open(port(), NULL);
	assert_non_null(c);
	snprintf(req, sizeof req, "POST /max HTTP/1.1\r\nHost: x\r\nContent-Length: 1024\r\n\r\n");
	assert_int_equal(cli_send(c, req), 0);
	memset(req, 'b', 1024);
	assert_int_equal(cli_send_n(c, req, 1024), 0);
	assert_int_equal(read_resp(c, 0, &r), 0);
	assert_int_equal(r.status, 200);
	assert_int_equal(jint(r.json, "body_len"), 1024);
	resp_free(&r);
	cli_free(c);
	/* one more is refused at once, without waiting for (reading) the body */
	t0 = now_ms();
	REFUSED("POST /big HTTP/1.1\r\nHost: x\r\nContent-Length: 1025\r\n\r\n", 413);
	REFUSED("POST /big HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999\r\n\r\n", 413);
	/* with Expect: 100-continue there is no 100 before the refusal */
	REFUSED("POST /big HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\nExpect: 100-continue\r\n\r\n",
		413);
	assert_true(now_ms() - t0 < 1500);
	/* part of the body sent along with the head: the refusal still arrives */
	{
		char big[4096];
		int n = snprintf(big, sizeof big, "POST /big HTTP/1.1\r\nHost: x\r\nContent-Length: 3000\r\n\r\n");

		memset(big + n, 'z', sizeof big - (size_t)n);
		refused(big, (size_t)n + 2000, 413);
	}
	stop(1000);
}

static void test_refuse_bad_request(void **state)
{
	zt_httpd_opts o = {0};

	(void)state;
	start(&o);
	/* two Content-Length values (even equal) */
	REFUSED("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\n", 400);
	REFUSED("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3, 3\r\n\r\n", 400);
	/* obs-fold */
	REFUSED("GET / HTTP/1.1\r\nHost: x\r\nX-A: b\r\n c\r\n\r\n", 400);
	/* bare LF */
	REFUSED("GET / HTTP/1.1\nHost: x\r\n\r\n", 400);
	REFUSED("GET / HTTP/1.1\r\nHost: x\n\r\n", 400);
	/* Transfer-Encoding with Content-Length */
	REFUSED("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
		400);
	/* no Host in HTTP/1.1, a bad request line, a space before the colon */
	REFUSED("GET / HTTP/1.1\r\n\r\n", 400);
	REFUSED("GET  / HTTP/1.1\r\nHost: x\r\n\r\n", 400);
	REFUSED("GET / HTTP/1.1\r\nHost : x\r\n\r\n", 400);
	/* an over-long method */
	REFUSED("ABCDEFGHIJKLMNOPQRSTUVWXYZ / HTTP/1.1\r\nHost: x\r\n\r\n", 400);
	/* absolute-form, authority-form, asterisk-form: the API takes origin-form */
	REFUSED("GET http://example.com/v1/x HTTP/1.1\r\nHost: example.com\r\n\r\n", 400);
	REFUSED("CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n", 400);
	REFUSED("OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n", 400);
	/* a bad second request on a kept-alive connection: the first is answered */
	{
		struct cli *c = cli_open(port(), NULL);
		struct resp r;

		assert_non_null(c);
		exchange(c, "GET /ok HTTP/1.1\r\nHost: x\r\n\r\n", 200, &r);
		resp_free(&r);
		assert_int_equal(cli_send(c, "GET / HTTP/1.1\nHost: x\r\n\r\n"), 0);
		expect_refusal(c, 400);
		cli_free(c);
	}
	stop(1000);
}

static void test_refuse_long_target(void **state)
{
	zt_httpd_opts o = {0};
	struct cli *c;
	struct resp r;
	char *req = malloc(16384), path[4096];

	(void)state;
	assert_non_null(req);
	start(&o);
	/* 2047 bytes of path fit */
	path[0] = '/';
	memset(path + 1, 'p', 2046);
	path[2047] = '\0';
	c = cli_open(port(), NULL);
	assert_non_null(c);
	snprintf(req, 16384, "GET %s HTTP/1.1\r\nHost: x\r\n\r\n", path);
	exchange(c, req, 200, &r);
	assert_string_equal(jstr(r.json, "path"), path);
	resp_free(&r);
	cli_free(c);
	/* 2048 do not */
	snprintf(req, 16384, "GET %sp HTTP/1.1\r\nHost: x\r\n\r\n", path);
	refused(req, strlen(req), 414);
	/* nor 3000 */
	memset(path + 1, 'q', 2999);
	path[3000] = '\0';
	snprintf(req, 16384, "GET %s HTTP/1.1\r\nHost: x\r\n\r\n", path);
	refused(req, strlen(req), 414);
	/* a query of 5000 bytes */
	{
		int n = snprintf(req, 16384, "GET /q?");

		memset(req + n, 'a', 5000);
		snprintf(req + n + 5000, 16384 - (size_t)n - 5000, " HTTP/1.1\r\nHost: x\r\n\r\n");
		refused(req, strlen(req), 414);
	}
	/* a request line over the parser's 8 KiB */
	{
		int n = snprintf(req, 16384, "GET /");

		memset(req + n, 'a', 9000);
		snprintf(req + n + 9000, 16384 - (size_t)n - 9000, " HTTP/1.1\r\nHost: x\r\n\r\n");
		refused(req, strlen(req), 414);
	}
	free(req);
	stop(1000);
}

/* A head of n bytes without its final empty line: "GET / ...", then X-Pad lines. */
static char *big_head(size_t n, size_t line)
{
	char *p = malloc(n + 1);
	size_t at;

	if (!p)
		return NULL;
	at = (size_t)snprintf(p, n + 1, "GET /big HTTP/1.1\r\nHost: x\r\n");
	while (at < n) {
		size_t k = n - at < line ? n - at : line;

		memset(p + at, 'a', k);
		if (k >= 12) {
			memcpy(p + at, "X-Pad: ", 7);
			memcpy(p + at + k - 2, "\r\n", 2);
		}
		at += k;
	}
	p[n] = '\0';
	return p;
}

static void test_refuse_head_too_large(void **state)
{
	zt_httpd_opts o = {.max_body = 1024};
	char *h = big_head(40 * 1024, 1000);

	(void)state;
	assert_non_null(h);
	start(&o);
	/* 40 KiB of head at once */
	refused(h, strlen(h), 431);
	/* 32 KiB + a little, and its end */
	free(h);
	h = big_head(33 * 1024, 1000);
	assert_non_null(h);
	memcpy(h + strlen(h) - 4, "\r\n\r\n", 4);
	refused(h, strlen(h), 431);
	free(h);
	/* more than 100 fields */
	{
		char *req = malloc(8192);
		size_t at;

		assert_non_null(req);
		at = (size_t)snprintf(req, 8192, "GET / HTTP/1.1\r\nHost: x\r\n");
		for (int i = 0; i < 120; i++)
			at += (size_t)snprintf(req + at, 8192 - at, "X-F%d: v\r\n", i);
		snprintf(req + at, 8192 - at, "\r\n");
		refused(req, strlen(req), 431);
		free(req);
	}
	stop(1000);
}

/*
 * A head over 32 KiB that arrives in two parts, the first 30000 bytes: the
 * server must still answer 431 (not close without a word) whatever the
 * reads' sizes, with a small max_body too.
 */
static void test_refuse_head_too_large_split(void **state)
{
	zt_httpd_opts o = {.max_body = 1024};
	char *h = big_head(40 * 1024, 1000);
	struct cli *c;

	(void)state;
	assert_non_null(h);
	start(&o);
	c = cli_open(port(), NULL);
	assert_non_null(c);
	assert_int_equal(cli_send_n(c, h, 30000), 0);
	sleep_ms(100);
	(void)cli_send_n(c, h + 30000, strlen(h) - 30000);
	free(h);
	expect_refusal(c, 431);
	cli_free(c);
	stop(1000);
}

/* ---- timeouts ------------------------------------------------------------------------ */

static void test_head_timeout(void **state)
{
	zt_httpd_opts o = {.head_timeout_ms = 300};
	struct cli *c;
	struct resp r;
	int64_t t0;

	(void)state;
	start(&o);
	c = cli_open(port(), NULL);
	assert_non_null(c);
	t0 = now_ms();
	assert_int_equal(cli_send(c, "GET /half HTTP/1.1\r\nHost: x\r\nX-A: "), 0);
	set_rcvtimeo(c, 3000);
	if (read_resp(c, 0, &r) == 0) {
		assert_int_equal(r.status, 408);
		resp_free(&r);
		assert_true(cli_ended(c, 1000));
	}
	assert_true(now_ms() - t0 >= 250);
	assert_true(now_ms() - t0 <= 1000);
	assert_int_equal(atomic_load(&g_app.calls), 0);
	cli_free(c);
	/* a connection that sends nothing at all is closed on the head timeout too */
	c = cli_open(port(), NULL);
	assert_non_null(c);
	t0 = now_ms();
	assert_true(cli_ended(c, 3000));
	assert_true(now_ms() - t0 <= 1000);
	cli_free(c);
	stop(1000);
}

/*
 * A head that trickles in (a byte every 100 ms) must still arrive within
 * head_timeout_ms (slowloris): the connection ends within about a second.
 */
static void test_head_timeout_trickle(void **state)
{
	zt_httpd_opts o = {.head_timeout_ms = 300};
	const char *req = "GET /trickle HTTP/1.1\r\nHost: x\r\nX-Pad: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
	struct cli *c;
	int64_t t0, ended = -1;

	(void)state;
	start(&o);
	c = cli_open(port(), NULL);
	assert_non_null(c);
	t0 = now_ms();
	for (size_t i = 0; req[i] && now_ms() - t0 < 2500; i++) {
		struct pollfd p = {c->fd, POLLIN, 0};

		if (poll(&p, 1, 100) > 0 || cli_send_n(c, req + i, 1) != 0) {
			ended = now_ms() - t0;
			break;
		}
	}
	if (ended >= 0)
		print_message("trickle: the connection ended after %lld ms\n", (long long)ended);
	else
		print_message("trickle: the connection was still open after %lld ms\n",
			      (long long)(now_ms() - t0));
	assert_true(ended >= 0 && ended <= 1200);
	cli_free(c);
	stop(1000);
}

static void test_idle_timeout(void **state)
{
	zt_httpd_opts o = {.idle_timeout_ms = 300, .head_timeout_ms = 5000};
	struct cli *c;
	struct resp r;
	int64_t t0;

	(void)state;
	start(&o);
	c = cli_open(port(), NULL);
	assert_non_null(c);
	exchange(c, "GET /i HTTP/1.1\r\nHost: x\r\n\r\n", 200, &r);
	resp_free(&r);
	/* kept alive while it is used within the idle time */
	sleep_ms(150);
	exchange(c, "GET /i2 HTTP/1.1\r\nHost: x\r\n\r\n", 200, &r);
	resp_free(&r);
	t0 = now_ms();
	assert_true(cli_ended(c, 3000));
	assert_true(now_ms() - t0 >= 250);
	assert_true(now_ms() - t0 <= 1000);
	cli_free(c);
	stop(1000);
}

static void test_body_timeout(void **state)
{
	zt_httpd_opts o = {.body_timeout_ms = 300, .head_timeout_ms = 5000};
	struct cli *c;
	int64_t t0;

	(void)state;
	start(&o);
	c = cli_open(port(), NULL);
	assert_non_null(c);
	t0 = now_ms();
	assert_int_equal(cli_send(c, "POST /b HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n0123456789"), 0);
	set_rcvtimeo(c, 3000);
	expect_refusal(c, 408);
	assert_true(now_ms() - t0 >= 250);
	assert_true(now_ms() - t0 <= 1000);
	assert_int_equal(atomic_load(&g_app.calls), 0);
	cli_free(c);
	stop(1000);
}

/* ---- Expect: 100-continue ------------------------------------------------------------------ */

static void test_expect_continue(void **state)
{
	zt_httpd_opts o = {0};
	struct cli *c;
	struct resp r;

	(void)state;
	start(&o);
	c = cli_open(port(), NULL);
	assert_non_null(c);
	assert_int_equal(cli_send(c, "POST /e HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
				     "Expect: 100-continue\r\n\r\n"),
			 0);
	set_rcvtimeo(c, 2000);
	/* the interim response comes before the body is sent */
	assert_int_equal(read_resp(c, 1, &r), 0);
	assert_int_equal(r.status, 100);
	assert_true(strncmp(r.head, "HTTP/1.1 100 Continue\r\n", 23) == 0);
	resp_free(&r);
	assert_int_equal(atomic_load(&g_app.calls), 0);
	assert_int_equal(cli_send(c, "hello"), 0);
	assert_int_equal(read_resp(c, 0, &r), 0);
	assert_int_equal(r.status, 200);
	assert_string_equal(jstr(r.json, "body"), "hello");
	resp_free(&r);
	/* no 100 without a body: the final response comes straight away */
	exchange(c, "GET /e0 HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n\r\n", 200, &r);
	assert_string_equal(jstr(r.json, "path"), "/e0");
	resp_free(&r);
	cli_free(c);
	stop(1000);
}

/* ---- the connection bound ------------------------------------------------------------------ */

static void test_max_conns(void **state)
{
	zt_httpd_opts o = {.max_conns = 4};
	struct cli *held[4], *c = NULL;
	struct resp r;
	int64_t t0;

	(void)state;
	start(&o);
	for (int i = 0; i < 4; i++) {
		held[i] = cli_open(port(), NULL);
		assert_non_null(held[i]);
		assert_int_equal(cli_send(held[i], "GET /held HTTP/1.1\r\nHost: x\r\n"), 0);
	}
	sleep_ms(100);
	/* the fifth is closed without a response */
	c = cli_open(port(), NULL);
	assert_non_null(c);
	(void)cli_send(c, "GET /fifth HTTP/1.1\r\nHost: x\r\n\r\n");
	assert_true(cli_ended(c, 2000));
	assert_int_equal(c->len, 0);
	cli_free(c);
	assert_int_equal(atomic_load(&g_app.calls), 0);
	/* once one of the four ends, new connections are served again */
	assert_int_equal(cli_send(held[0], "\r\n"), 0);
	assert_int_equal(read_resp(held[0], 0, &r), 0);
	resp_free(&r);
	cli_free(held[0]);
	held[0] = NULL;
	t0 = now_ms();
	for (;;) {
		c = cli_open(port(), NULL);
		assert_non_null(c);
		if (cli_send(c, "GET /again HTTP/1.1\r\nHost: x\r\n\r\n") == 0 && read_resp(c, 0, &r) == 0)
			break;
		cli_free(c);
		c = NULL;
		assert_true(now_ms() - t0 < 2000);
		sleep_ms(20);
	}
	assert_int_equal(r.status, 200);
	assert_string_equal(jstr(r.json, "path"), "/again");
	resp_free(&r);
	cli_free(c);
	/* the three still held finish their requests */
	for (int i = 1; i < 4; i++) {
		assert_int_equal(cli_send(held[i], "\r\n"), 0);
		assert_int_equal(read_resp(held[i], 0, &r), 0);
		assert_int_equal(r.status, 200);
		resp_free(&r);
		cli_free(held[i]);
	}
	stop(1000);
}

/* ---- TLS ------------------------------------------------------------------------------------ */

/* Any chain whose leaf has a URI SAN starting "spiffe://": its SPIFFE ID. */
static int spiffe_verify(void *arg, STACK_OF(X509) *chain, zt_peer_info *out, zt_err *e)
{
	X509 *leaf = sk_X509_num(chain) > 0 ? sk_X509_value(chain, 0) : NULL;
	GENERAL_NAMES *gens;
	int found = 0;

	(void)arg;
	memset(out, 0, sizeof *out);
	atomic_fetch_add(&g_app.verify_calls, 1);
	if (!leaf)
		return zt_err_set(e, ZT_EINVAL, "no certificate");
	gens = X509_get_ext_d2i(leaf, NID_subject_alt_name, NULL, NULL);
	for (int i = 0; gens && i < sk_GENERAL_NAME_num(gens) && !found; i++) {
		const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
		const unsigned char *s;
		int n;

		if (g->type != GEN_URI)
			continue;
		s = ASN1_STRING_get0_data(g->d.uniformResourceIdentifier);
		n = ASN1_STRING_length(g->d.uniformResourceIdentifier);
		if (n > 9 && (size_t)n < sizeof out->id && memcmp(s, "spiffe://", 9) == 0) {
			memcpy(out->id, s, (size_t)n);
			out->id[n] = '\0';
			found = 1;
		}
	}
	GENERAL_NAMES_free(gens);
	if (!found)
		return zt_err_set(e, ZT_EINVAL, "no SPIFFE ID in the certificate");
	out->not_after = (int64_t)time(NULL) + 3600;
	return 0;
}

/* A certificate with subjectAltName=san (NULL: none) for a new key. */
static X509 *make_cert(EVP_PKEY **key, const char *cn, const char *san)
{
	char ext[256];
	const char *exts[2] = {NULL, NULL};
	int64_t now = (int64_t)time(NULL);

	*key = tu_key();
	if (san) {
		snprintf(ext, sizeof ext, "subjectAltName=%s", san);
		exts[0] = ext;
	}
	return tu_cert(*key, NULL, NULL, cn, now - 60, now + 3600, exts);
}

/* Starts a TLS server (peer_optional as given). */
static void start_tls(int peer_optional)
{
	EVP_PKEY *key;
	X509 *cert = make_cert(&key, "server", "URI:spiffe://test/server");
	zt_tls_opts t = {.server = 1,
			 .cert = cert,
			 .key = key,
			 .verify = spiffe_verify,
			 .peer_optional = peer_optional};
	zt_httpd_opts o = {0};
	zt_err e;
	SSL_CTX *ctx = zt_tls_ctx_new(&t, &e);

	X509_free(cert);
	EVP_PKEY_free(key);
	if (!ctx)
		fail_msg("zt_tls_ctx_new: %s", e.msg);
	o.tls = ctx;
	start(&o);
	SSL_CTX_free(ctx); /* the server keeps its own reference */
}

/* A client context, with a certificate whose SAN is san when san is not NULL. */
static SSL_CTX *client_ctx(int with_cert, const char *san)
{
	SSL_CTX *c = SSL_CTX_new(TLS_client_method());

	assert_non_null(c);
	track_ctx(c);
	SSL_CTX_set_verify(c, SSL_VERIFY_NONE, NULL);
	if (with_cert) {
		EVP_PKEY *key;
		X509 *cert = make_cert(&key, "client", san);

		assert_int_equal(SSL_CTX_use_certificate(c, cert), 1);
		assert_int_equal(SSL_CTX_use_PrivateKey(c, key), 1);
		X509_free(cert);
		EVP_PKEY_free(key);
	}
	return c;
}

/* A TLS client refused: the handshake or its first exchange fails, the handler is not called. */
static void tls_refused(SSL_CTX *ctx)
{
	int calls = atomic_load(&g_app.calls);
	struct cli *c = cli_open(port(), ctx);

	if (c) { /* TLS 1.3: the client's handshake ends before the server judges it */
		struct resp r;

		(void)cli_send(c, "GET /tls HTTP/1.1\r\nHost: x\r\n\r\n");
		set_rcvtimeo(c, 2000);
		assert_int_not_equal(read_resp(c, 0, &r), 0);
		resp_free(&r);
		cli_free(c);
	}
	sleep_ms(50);
	assert_int_equal(atomic_load(&g_app.calls), calls);
}

static void test_tls_peer_optional(void **state)
{
	SSL_CTX *anon, *good, *bad, *nosan;
	struct cli *c;
	struct resp r;

	(void)state;
	start_tls(1);
	anon = client_ctx(0, NULL);
	good = client_ctx(1, "URI:spiffe://test/client");
	bad = client_ctx(1, "URI:https://example.com/not-spiffe");
	nosan = client_ctx(1, NULL);
	/* without a certificate: served, no peer */
	c = cli_open(port(), anon);
	assert_non_null(c);
	assert_int_equal(SSL_version(c->ssl), TLS1_3_VERSION);
	exchange(c, "GET /anon HTTP/1.1\r\nHost: x\r\n\r\n", 200, &r);
	assert_true(json_is_null(json_object_get(r.json, "peer_id")));
	resp_free(&r);
	/* keep-alive and pipelining over TLS */
	assert_int_equal(cli_send(c, "GET /p1 HTTP/1.1\r\nHost: x\r\n\r\n"
				     "POST /p2 HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nok"),
			 0);
	assert_int_equal(read_resp(c, 0, &r), 0);
	assert_string_equal(jstr(r.json, "path"), "/p1");
	resp_free(&r);
	assert_int_equal(read_resp(c, 0, &r), 0);
	assert_string_equal(jstr(r.json, "path"), "/p2");
	assert_string_equal(jstr(r.json, "body"), "ok");
	resp_free(&r);
	cli_free(c);
	assert_int_equal(atomic_load(&g_app.verify_calls), 0);
	/* with a good certificate: its SPIFFE ID */
	c = cli_open(port(), good);
	assert_non_null(c);
	exchange(c, "GET /mtls HTTP/1.1\r\nHost: x\r\n\r\n", 200, &r);
	assert_string_equal(jstr(r.json, "peer_id"), "spiffe://test/client");
	resp_free(&r);
	exchange(c, "GET /mtls2 HTTP/1.1\r\nHost: x\r\n\r\n", 200, &r);
	assert_string_equal(jstr(r.json, "peer_id"), "spiffe://test/client");
	resp_free(&r);
	cli_free(c);
	assert_int_equal(atomic_load(&g_app.verify_calls), 1);
	/* with a certificate the verifier refuses: no service at all */
	tls_refused(bad);
	tls_refused(nosan);
	assert_int_equal(atomic_load(&g_app.verify_calls), 3);
	/* a client speaking plain HTTP to the TLS port gets nothing */
	c = cli_open(port(), NULL);
	assert_non_null(c);
	(void)cli_send(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n");
	set_rcvtimeo(c, 2000);
	{
		ssize_t n;

		while ((n = cli_fill(c)) > 0) /* an alert, maybe */
			;
		assert_int_equal(n, 0);
	}
	assert_true(c->len < 5 || strncmp(c->buf, "HTTP/", 5) != 0);
	cli_free(c);
	/* the server still serves */
	c = cli_open(port(), anon);
	assert_non_null(c);
	exchange(c, "GET /still HTTP/1.1\r\nHost: x\r\n\r\n", 200, &r);
	resp_free(&r);
	cli_free(c);
	stop(1000);
}

static void test_tls_peer_required(void **state)
{
	SSL_CTX *anon, *good, *bad;
	struct cli *c;
	struct resp r;

	(void)state;
	start_tls(0);
	anon = client_ctx(0, NULL);
	good = client_ctx(1, "URI:spiffe://test/required");
	bad = client_ctx(1, "URI:https://example.com/x");
	tls_refused(anon);
	tls_refused(bad);
	c = cli_open(port(), good);
	assert_non_null(c);
	exchange(c, "GET /req HTTP/1.1\r\nHost: x\r\n\r\n", 200, &r);
	assert_string_equal(jstr(r.json, "peer_id"), "spiffe://test/required");
	resp_free(&r);
	cli_free(c);
	stop(1000);
}

/* ---- stopping ------------------------------------------------------------------------------- */

static void wait_calls(int n)
{
	int64_t t0 = now_ms();

	while (atomic_load(&g_app.calls) < n) {
		assert_true(now_ms() - t0 < 3000);
		sleep_ms(2);
	}
}

static void test_stop_drain_in_flight(void **state)
{
	zt_httpd_opts o = {0};
	struct cli *c;
	struct resp r;
	char v[64];
	int64_t t0, took;

	(void)state;
	start(&o);
	c = cli_open(port(), NULL);
	assert_non_null(c);
	assert_int_equal(cli_send(c, "GET /sleep/200 HTTP/1.1\r\nHost: x\r\n\r\n"), 0);
	wait_calls(1);
	t0 = now_ms();
	stop(2000);
	took = now_ms() - t0;
	assert_true(took >= 100);
	assert_true(took < 1000);
	assert_int_equal(read_resp(c, 0, &r), 0);
	assert_int_equal(r.status, 200);
	assert_string_equal(jstr(r.json, "path"), "/sleep/200");
	assert_true(hdr(&r, "Connection", v, sizeof v));
	assert_string_equal(v, "close");
	resp_free(&r);
	assert_true(cli_ended(c, 1000));
	cli_free(c);
}

static void test_stop_drain_blocked(void **state)
{
	zt_httpd_opts o = {0};
	struct cli *a, *b;
	struct resp r;
	int64_t t0, took;

	(void)state;
	start(&o);
	/* b: served once, then idle on its kept-alive connection */
	b = cli_open(port(), NULL);
	assert_non_null(b);
	exchange(b, "GET /idle HTTP/1.1\r\nHost: x\r\n\r\n", 200, &r);
	resp_free(&r);
	/* a: a handler that waits for the server to stop */
	a = cli_open(port(), NULL);
	assert_non_null(a);
	assert_int_equal(cli_send(a, "GET /block HTTP/1.1\r\nHost: x\r\n\r\n"), 0);
	wait_calls(2);
	assert_int_equal(atomic_load(&g_app.blocked), 1);
	t0 = now_ms();
	stop(500);
	took = now_ms() - t0;
	print_message("stop(500) took %lld ms\n", (long long)took);
	assert_true(took < 500 + 300);
	/* a got its answer, then the end; b just the end */
	if (read_resp(a, 0, &r) == 0) {
		assert_int_equal(r.status, 200);
		resp_free(&r);
	}
	assert_true(cli_ended(a, 1000));
	assert_true(cli_ended(b, 1000));
	cli_free(a);
	cli_free(b);
}

/* A server with nothing going on stops at once, drain or not. */
static void test_stop_idle(void **state)
{
	zt_httpd_opts o = {0};
	int64_t t0;
	uint16_t p;

	(void)state;
	start(&o);
	p = port();
	t0 = now_ms();
	stop(5000);
	assert_true(now_ms() - t0 < 500);
	/* the port is closed */
	assert_true(tcp_connect(p) < 0);
}

/* ---- the response helpers -------------------------------------------------------------------- */

static void test_resp_header(void **state)
{
	zt_http_resp r;
	size_t before;

	(void)state;
	memset(&r, 0, sizeof r);
	assert_int_equal(zt_http_resp_header(&r, "X-A", "b c"), 0);
	assert_int_equal(zt_http_resp_header(&r, "Location", "/v1/x?y=1"), 0);
	assert_string_equal(r.headers, "X-A: b c\r\nLocation: /v1/x?y=1\r\n");
	assert_int_equal(r.headers_len, strlen(r.headers));
	before = r.headers_len;
	/* CR or LF in a value: refused (no header injection, no response splitting) */
	assert_int_not_equal(zt_http_resp_header(&r, "X-B", "x\r\nSet-Cookie: y=1"), 0);
	assert_int_not_equal(zt_http_resp_header(&r, "X-B", "x\ny"), 0);
	assert_int_not_equal(zt_http_resp_header(&r, "X-B", "x\r"), 0);
	assert_int_not_equal(zt_http_resp_header(&r, "X-B", "\r\n\r\n<html>"), 0);
	/* names that are not tokens */
	assert_int_not_equal(zt_http_resp_header(&r, "", "v"), 0);
	assert_int_not_equal(zt_http_resp_header(&r, "X B", "v"), 0);
	assert_int_not_equal(zt_http_resp_header(&r, "X:B", "v"), 0);
	assert_int_not_equal(zt_http_resp_header(&r, "X\tB", "v"), 0);
	assert_int_not_equal(zt_http_resp_header(&r, "X\r\nB", "v"), 0);
	assert_int_not_equal(zt_http_resp_header(&r, "X-Evil: 1\r\nY", "v"), 0);
	assert_int_equal(r.headers_len, before);
	assert_string_equal(r.headers, "X-A: b c\r\nLocation: /v1/x?y=1\r\n");
	/* the space is bounded: filling it ends in a refusal, never an overflow */
	{
		char v[101];
		int refusedn = 0;

		memset(v, 'v', 100);
		v[100] = '\0';
		for (int i = 0; i < 20; i++)
			if (zt_http_resp_header(&r, "X-Fill", v) != 0)
				refusedn++;
		assert_true(refusedn > 0);
		assert_true(r.headers_len < sizeof r.headers);
		assert_int_equal(r.headers_len, strlen(r.headers));
		assert_true(r.headers_len >= 2 && memcmp(r.headers + r.headers_len - 2, "\r\n", 2) == 0);
	}
}

/* Header names are tokens (RFC 9110 5.6.2): no separators, controls or non-ASCII. */
static void test_resp_header_token(void **state)
{
	static const char *const bad[] = {"X(B", "X)B", "X/B", "X\"B", "X,B", "X;B", "X@B",
					  "X[B", "X=B", "X{B", "X?B", "X\x01" "B", "X\x7f" "B",
					  "X\xc3\xa9"};
	zt_http_resp r;

	(void)state;
	memset(&r, 0, sizeof r);
	/* the token specials that are allowed */
	assert_int_equal(zt_http_resp_header(&r, "X-a!#$%&'*+.^_`|~9", "v"), 0);
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		size_t before = r.headers_len;
		int rc = zt_http_resp_header(&r, bad[i], "v");

		if (rc == 0)
			print_message("zt_http_resp_header took the name \"%s\"\n", bad[i]);
		assert_int_not_equal(rc, 0);
		assert_int_equal(r.headers_len, before);
	}
}

static void test_resp_json(void **state)
{
	zt_http_resp r;
	zt_http_req q;

	(void)state;
	memset(&r, 0, sizeof r);
	memset(&q, 0, sizeof q);
	zt_buf_init(&r.body, 1u << 16);
	/* NULL (a failed json_pack, say): 500, an empty body, an error */
	assert_int_not_equal(zt_http_resp_json(&r, 200, NULL), 0);
	assert_int_equal(r.status, 500);
	assert_int_equal(r.body.len, 0);
	/* an object: compact JSON and a newline */
	assert_int_equal(zt_http_resp_json(&r, 201, json_pack("{s:i}", "a", 1)), 0);
	assert_int_equal(r.status, 201);
	assert_string_equal(r.content_type, "application/json");
	assert_int_equal(r.body.len, 8);
	assert_memory_equal(r.body.p, "{\"a\":1}\n", 8);
	/* an error */
	snprintf(q.request_id, sizeof q.request_id, "rid-1");
	zt_http_resp_error(&r, &q, 409, "conflict", "version %d is stale", 7);
	assert_int_equal(r.status, 409);
	{
		json_t *j = json_loadb((const char *)r.body.p, r.body.len, 0, NULL), *err;

		assert_non_null(j);
		err = json_object_get(j, "error");
		assert_int_equal(jint(err, "status"), 409);
		assert_string_equal(jstr(err, "code"), "conflict");
		assert_string_equal(jstr(err, "message"), "version 7 is stale");
		assert_string_equal(jstr(err, "request_id"), "rid-1");
		json_decref(j);
	}
	/* a body over the buffer's maximum: 500 */
	{
		zt_http_resp small;
		char big[300];

		memset(&small, 0, sizeof small);
		zt_buf_init(&small.body, 64);
		memset(big, 'x', sizeof big - 1);
		big[sizeof big - 1] = '\0';
		assert_int_not_equal(zt_http_resp_json(&small, 200, json_pack("{s:s}", "k", big)), 0);
		assert_int_equal(small.status, 500);
		assert_int_equal(small.body.len, 0);
		zt_buf_free(&small.body, 0);
	}
	zt_buf_free(&r.body, 0);
}

/* ---- concurrency ----------------------------------------------------------------------------- */

#define CONC_THREADS 16
#define CONC_REQS 50

struct worker {
	uint16_t port;
	int id;
	int ok;
	char why[160];
};

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct cli *c = cli_open(w->port, NULL);
	char req[256], path[64], body[64];
	struct resp r;

	if (!c) {
		snprintf(w->why, sizeof w->why, "connect failed");
		return NULL;
	}
	for (int i = 0; i < CONC_REQS; i++) {
		int bl = snprintf(body, sizeof body, "worker %d request %d", w->id, i);

		snprintf(path, sizeof path, "/c/%d/%d", w->id, i);
		snprintf(req, sizeof req, "POST %s?i=%d HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s",
			 path, i, bl, body);
		if (cli_send(c, req) != 0 || read_resp(c, 0, &r) != 0) {
			snprintf(w->why, sizeof w->why, "request %d: no response", i);
			break;
		}
		if (r.status != 200 || !r.json || strcmp(jstr(r.json, "path"), path) != 0 ||
		    strcmp(jstr(r.json, "body"), body) != 0 || jint(r.json, "body_len") != bl ||
		    !is_uuid(jstr(r.json, "request_id"))) {
			snprintf(w->why, sizeof w->why, "request %d: wrong answer %d %.80s", i, r.status,
				 r.body ? r.body : "");
			resp_free(&r);
			break;
		}
		resp_free(&r);
		w->ok++;
	}
	cli_free(c);
	return NULL;
}

static void test_concurrency(void **state)
{
	zt_httpd_opts o = {0};
	struct worker w[CONC_THREADS];
	pthread_t t[CONC_THREADS];
	int total = 0;

	(void)state;
	start(&o);
	memset(w, 0, sizeof w);
	for (int i = 0; i < CONC_THREADS; i++) {
		w[i].port = port();
		w[i].id = i;
		assert_int_equal(pthread_create(&t[i], NULL, worker_main, &w[i]), 0);
	}
	for (int i = 0; i < CONC_THREADS; i++) {
		pthread_join(t[i], NULL);
		if (w[i].why[0])
			print_message("worker %d: %s\n", i, w[i].why);
		total += w[i].ok;
	}
	assert_int_equal(total, CONC_THREADS * CONC_REQS);
	assert_int_equal(atomic_load(&g_app.calls), CONC_THREADS * CONC_REQS);
	stop(1000);
}

/* ---- SIGPIPE ------------------------------------------------------------------------------- */

/*
 * A client that resets the connection in the middle of a request must not
 * take the process down: the server's writes to a dead socket may not
 * raise SIGPIPE (run in a child that keeps SIGPIPE's default action).
 */
static int sigpipe_child(void)
{
	zt_httpd_opts o = {.listen = "127.0.0.1:0", .handler = app_handler, .arg = &g_app};
	struct linger lg = {1, 0};
	zt_httpd *h;
	zt_err e;
	int fd, ok = 0;
	char buf[512];
	const char *last = "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";

	signal(SIGPIPE, SIG_DFL);
	if (!(h = zt_httpd_start(&o, &e)))
		return 2;
	for (int round = 0; round < 2; round++) {
		/* round 0: mid-head; round 1: mid-body */
		if ((fd = tcp_connect(zt_httpd_port(h))) < 0)
			return 3;
		const char *part = round == 0
					   ? "GET / HTTP/1.1\r\nHost: x\r\nX-A: "
					   : "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n01";

		if (send(fd, part, strlen(part), MSG_NOSIGNAL) < 0)
			return 4;
		sleep_ms(100);
		setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
		close(fd); /* a reset */
		sleep_ms(200);
	}
	/* still alive and serving */
	if ((fd = tcp_connect(zt_httpd_port(h))) < 0)
		return 5;
	if (send(fd, last, strlen(last), MSG_NOSIGNAL) == (ssize_t)strlen(last) &&
	    recv(fd, buf, sizeof buf, 0) > 12 && memcmp(buf, "HTTP/1.1 200", 12) == 0)
		ok = 1;
	close(fd);
	zt_httpd_stop(h, 1000);
	return ok ? 0 : 6;
}

static void test_no_sigpipe(void **state)
{
	pid_t pid;
	int st = 0;

	(void)state;
	fflush(NULL);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		_exit(sigpipe_child());
	assert_int_equal(waitpid(pid, &st, 0), pid);
	if (WIFSIGNALED(st))
		print_message("the server process died of signal %d (%s)\n", WTERMSIG(st),
			      strsignal(WTERMSIG(st)));
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_get, teardown),
		cmocka_unit_test_teardown(test_post_body, teardown),
		cmocka_unit_test_teardown(test_request_id, teardown),
		cmocka_unit_test_teardown(test_request_id_long, teardown),
		cmocka_unit_test_teardown(test_head, teardown),
		cmocka_unit_test_teardown(test_keepalive, teardown),
		cmocka_unit_test_teardown(test_pipelining, teardown),
		cmocka_unit_test_teardown(test_connection_close, teardown),
		cmocka_unit_test_teardown(test_http10, teardown),
		cmocka_unit_test_teardown(test_refuse_chunked, teardown),
		cmocka_unit_test_teardown(test_refuse_too_large, teardown),
		cmocka_unit_test_teardown(test_refuse_bad_request, teardown),
		cmocka_unit_test_teardown(test_refuse_long_target, teardown),
		cmocka_unit_test_teardown(test_refuse_head_too_large, teardown),
		cmocka_unit_test_teardown(test_refuse_head_too_large_split, teardown),
		cmocka_unit_test_teardown(test_head_timeout, teardown),
		cmocka_unit_test_teardown(test_head_timeout_trickle, teardown),
		cmocka_unit_test_teardown(test_idle_timeout, teardown),
		cmocka_unit_test_teardown(test_body_timeout, teardown),
		cmocka_unit_test_teardown(test_expect_continue, teardown),
		cmocka_unit_test_teardown(test_max_conns, teardown),
		cmocka_unit_test_teardown(test_tls_peer_optional, teardown),
		cmocka_unit_test_teardown(test_tls_peer_required, teardown),
		cmocka_unit_test_teardown(test_stop_drain_in_flight, teardown),
		cmocka_unit_test_teardown(test_stop_drain_blocked, teardown),
		cmocka_unit_test_teardown(test_stop_idle, teardown),
		cmocka_unit_test(test_resp_header),
		cmocka_unit_test(test_resp_header_token),
		cmocka_unit_test(test_resp_json),
		cmocka_unit_test_teardown(test_concurrency, teardown),
		cmocka_unit_test_teardown(test_no_sigpipe, teardown),
	};

	/* the clients here write to sockets the server may have closed */
	signal(SIGPIPE, SIG_IGN);
	zt_log_set_level(ZT_LOG_ERROR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
