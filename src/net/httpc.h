/*
 * net/httpc: a small blocking HTTPS client, for talking to the control
 * plane's API (the admin commands, the proxy's policy watch, benchmarks),
 * not for proxying.
 *
 * One connection per client, kept alive between requests and opened again
 * when the server has closed it. Responses are parsed by the strict
 * HTTP/1.1 parser (net/http1.h); bodies are capped; every step (connect,
 * handshake, each read and write) runs against the request's deadline, so
 * a server that stalls cannot hang the caller. The TLS context is the
 * caller's: it decides who the server must be and what we present.
 *
 * A client is used by one thread at a time.
 */
#ifndef ZT_NET_HTTPC_H
#define ZT_NET_HTTPC_H

#include <stddef.h>

#include <openssl/ssl.h>

#include "core/core.h"

typedef struct zt_httpc zt_httpc;

typedef struct zt_httpc_opts {
	const char *url;        /* "https://HOST[:PORT][/]" (HOST a name, IPv4 or [IPv6]),
				 * or "unix:/path" (plain HTTP over a local socket) */
	SSL_CTX *tls;           /* borrowed, must outlive the client; NULL only for http:// */
	int connect_timeout_ms; /* connect and handshake: 5 s unless set */
	size_t max_body;        /* a response body: 16 MiB unless set */
} zt_httpc_opts;

/* A response; free with zt_httpc_resp_free. */
typedef struct zt_httpc_resp {
	int status;
	zt_buf body;
	char content_type[128];
	char request_id[129];   /* the server's X-Request-Id, "" when none */
} zt_httpc_resp;

/* 0 when url is one zt_httpc_new takes (nothing is connected), else why not in *e. */
int zt_httpc_url_check(const char *url, zt_err *e) ZT_MUST_CHECK;

/* Checks the URL (nothing is connected yet). Caller frees with zt_httpc_free. */
zt_httpc *zt_httpc_new(const zt_httpc_opts *o, zt_err *e);
void zt_httpc_free(zt_httpc *c);

/*
 * Sends one request and reads its response, within timeout_ms (-1: no
 * limit, for long polls that carry their own). `target` is "/path?query",
 * `headers` NULL or NULL-terminated name, value pairs; a body (may be
 * NULL with len 0) goes with a Content-Length. A request is retried once
 * on a fresh connection only when a kept-alive connection turns out to be
 * closed before any byte of the response came back, and only for GET and
 * HEAD. Returns 0 with *r filled (any status), or a negative code: the
 * server could not be reached, refused our TLS, sent something that is
 * not HTTP, or missed the deadline.
 */
int zt_httpc_do(zt_httpc *c, const char *method, const char *target, const char *const *headers,
		const void *body, size_t len, int timeout_ms, zt_httpc_resp *r,
		zt_err *e) ZT_MUST_CHECK;

/*
 * Makes every wait also watch fd (an eventfd or pipe another thread makes
 * readable to stop us): a request under way then fails at once with the
 * rule "cancelled". -1 for none.
 */
void zt_httpc_set_cancel(zt_httpc *c, int fd);

/* Drops the connection (the next request opens a new one). */
void zt_httpc_close(zt_httpc *c);

/* The verified SPIFFE ID of the server on the open connection, or NULL. */
const char *zt_httpc_peer_id(const zt_httpc *c);

void zt_httpc_resp_free(zt_httpc_resp *r);

#endif
