/*
 * proxy/admin.c: the admin listener — GET /metrics (Prometheus text format)
 * and GET /ready — meant for localhost. Requests are small and parsed
 * strictly; anything else gets 400, 404 or 405 and the connection closes.
 */
#include "proxy_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define REQ_MAX 4096
#define ADMIN_TIMEOUT_MS 5000

struct admin_conn {
	zt_proxy *px;
	int fd;
	char req[REQ_MAX];
	size_t len;
	zt_buf resp;
	size_t sent;
	zt_timer timer;
};

static void admin_close(zt_loop *l, struct admin_conn *a)
{
	zt_timer_cancel(l, &a->timer);
	zt_loop_del(l, a->fd);
	close(a->fd);
	zt_buf_free(&a->resp, 0);
	free(a);
}

static void on_admin_timeout(zt_loop *l, void *arg)
{
	admin_close(l, arg);
}

static int respond(struct admin_conn *a, int status, const char *reason, const char *ctype,
		   const char *body, size_t blen)
{
	zt_err e;

	return zt_buf_appendf(&a->resp, &e,
			      "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
			      "Connection: close\r\nCache-Control: no-store\r\n\r\n",
			      status, reason, ctype, blen) ||
	       zt_buf_append(&a->resp, body, blen, &e);
}

static void build(struct admin_conn *a)
{
	char *eol = memchr(a->req, '\r', a->len);
	char method[8], path[64], version[16];
	zt_buf body;
	zt_err e;

	zt_buf_init(&body, 1u << 20);
	if (!eol || sscanf(a->req, "%7s %63s %15s", method, path, version) != 3 ||
	    strncmp(version, "HTTP/1.", 7) != 0) {
		respond(a, 400, "Bad Request", "text/plain", "bad request\n", 12);
		goto out;
	}
	if (strcmp(method, "GET") != 0) {
		respond(a, 405, "Method Not Allowed", "text/plain", "GET only\n", 9);
		goto out;
	}
	if (strcmp(path, "/ready") == 0) {
		int ready = px_ready(a->px);

		respond(a, ready ? 200 : 503, ready ? "OK" : "Service Unavailable", "text/plain",
			ready ? "ready\n" : "draining\n", ready ? 6 : 9);
	} else if (strcmp(path, "/metrics") == 0) {
		if (px_metrics(a->px, &body, &e) != 0)
			respond(a, 500, "Internal Server Error", "text/plain", "error\n", 6);
		else
			respond(a, 200, "OK", "text/plain; version=0.0.4", (const char *)body.p, body.len);
	} else {
		respond(a, 404, "Not Found", "text/plain", "not found: /metrics and /ready\n", 31);
	}
out:
	zt_buf_free(&body, 0);
}

static void on_admin_io(zt_loop *l, int fd, unsigned ev, void *arg)
{
	struct admin_conn *a = arg;
	zt_err e;

	(void)ev;
	if (!a->resp.len) {
		ssize_t n = read(fd, a->req + a->len, REQ_MAX - 1 - a->len);

		if (n <= 0) {
			if (n < 0 && (errno == EAGAIN || errno == EINTR))
				return;
			admin_close(l, a);
			return;
		}
		a->len += (size_t)n;
		a->req[a->len] = '\0';
		if (!strstr(a->req, "\r\n\r\n")) {
			if (a->len == REQ_MAX - 1) {
				respond(a, 431, "Request Header Fields Too Large", "text/plain", "too large\n", 10);
				goto write;
			}
			return;
		}
		build(a);
	}
write:
	while (a->sent < a->resp.len) {
		ssize_t n = send(fd, a->resp.p + a->sent, a->resp.len - a->sent, MSG_NOSIGNAL);

		if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
			if (zt_loop_mod(l, fd, ZT_EV_WRITE, &e) != 0)
				admin_close(l, a);
			return;
		}
		if (n <= 0) {
			admin_close(l, a);
			return;
		}
		a->sent += (size_t)n;
	}
	admin_close(l, a);
}

static void on_admin_accept(zt_loop *l, int lfd, unsigned ev, void *arg)
{
	zt_proxy *px = arg;

	(void)ev;
	for (int k = 0; k < 16; k++) {
		int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		struct admin_conn *a;
		zt_err e;

		if (fd < 0)
			return;
		if (!(a = calloc(1, sizeof *a))) {
			close(fd);
			continue;
		}
		a->px = px;
		a->fd = fd;
		zt_buf_init(&a->resp, 4u << 20);
		zt_timer_init(&a->timer, on_admin_timeout, a);
		if (zt_loop_add(l, fd, ZT_EV_READ, on_admin_io, a, &e) != 0 ||
		    zt_timer_set(l, &a->timer, ADMIN_TIMEOUT_MS) != 0) {
			zt_loop_del(l, fd);
			close(fd);
			zt_buf_free(&a->resp, 0);
			free(a);
		}
	}
}

int px_admin_open(zt_proxy *px, zt_loop *l, const struct px_config *cfg, int *fdp, zt_err *e)
{
	int one = 1, fd;

	*fdp = -1;
	if (!cfg->has_admin)
		return 0;
	fd = socket(cfg->admin.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
	    bind(fd, (const struct sockaddr *)&cfg->admin, cfg->admin_len) != 0 || listen(fd, 64) != 0) {
		int r = zt_err_set(e, ZT_EIO, "admin listener: cannot listen: %s", strerror(errno));

		if (fd >= 0)
			close(fd);
		return r;
	}
	*fdp = fd;
	return zt_loop_add(l, fd, ZT_EV_READ, on_admin_accept, px, e);
}
