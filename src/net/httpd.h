/*
 * net/httpd: a small HTTPS server for APIs (the control plane's), not for
 * proxying.
 *
 * One thread per connection, up to a bound: API handlers read the store,
 * append to the audit log and wait on watches, all of which block, and a
 * thread that blocks costs nothing here but its stack. Requests are parsed
 * by the strict HTTP/1.1 parser (net/http1.h) with its limits; bodies must
 * come with a Content-Length (411 otherwise) and stay under max_body
 * (413); a connection idle or slow past its timeouts is closed. The handler
 * gets a whole request and fills a whole response; the server writes the
 * framing, a request ID and no-store caching.
 *
 * Client certificates are optional when the TLS context says so
 * (zt_tls_opts.peer_optional): a verified peer's SPIFFE ID reaches the
 * handler, and a client without one brings a bearer token instead.
 */
#ifndef ZT_NET_HTTPD_H
#define ZT_NET_HTTPD_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <openssl/ssl.h>

#include "core/core.h"
#include "net/http1.h"

typedef struct zt_httpd zt_httpd;

/* One request, whole. Everything is borrowed for the handler's call. */
typedef struct zt_http_req {
	const zt_http1_request *head; /* method, fields... as parsed */
	char method[16];
	char path[2048];        /* the path as received, without the query */
	const char *query;      /* after '?', "" when none */
	const uint8_t *body;
	size_t body_len;
	const char *peer_id;    /* SPIFFE ID of a verified client certificate, or NULL */
	const char *peer_serial; /* its serial number (hex), when peer_id is set */
	char remote[64];        /* "ip:port" */
	char request_id[129];  /* the client's X-Request-Id when valid, else a new UUID */
	int has_cred;           /* Unix socket: the caller's process, as the kernel saw it at
				 * connect (SO_PEERCRED); the pid may be gone or reused by now */
	int pid;
	unsigned uid, gid;
} zt_http_req;

typedef struct zt_http_resp {
	int status;             /* 200 unless set */
	const char *content_type; /* "application/json" unless set */
	zt_buf body;
	char headers[1024];     /* extra header lines, each "Name: value\r\n" */
	size_t headers_len;
	int close;              /* close the connection after this response */
	int secret;             /* the body holds secrets (keys): wiped once sent */
} zt_http_resp;

/* Adds a header line (a name of RFC 9110 token characters, a value without CR/LF). */
int zt_http_resp_header(zt_http_resp *r, const char *name, const char *value) ZT_MUST_CHECK;
/* Sets status and a JSON body (obj is consumed: decref'd). */
int zt_http_resp_json(zt_http_resp *r, int status, json_t *obj);
/*
 * An error as JSON: {"error": {"status", "code", "message", "request_id"}}.
 * `code` is a stable machine-readable tag ("conflict", "forbidden"...).
 */
void zt_http_resp_error(zt_http_resp *r, const zt_http_req *q, int status, const char *code,
			const char *fmt, ...) ZT_PRINTF(5, 6);

/* Called on the connection's thread; may block (a watch). */
typedef void (*zt_httpd_handler)(void *arg, const zt_http_req *req, zt_http_resp *resp);

typedef struct zt_httpd_opts {
	const char *listen;      /* "host:port" (port 0: any), or "unix:/path" */
	SSL_CTX *tls;            /* NULL: plain HTTP, for tests and local sockets only */
	zt_httpd_handler handler;
	void *arg;
	size_t max_conns;        /* concurrent connections: 256 unless set */
	size_t max_body;         /* bytes of a request body: 1 MiB unless set */
	int head_timeout_ms;     /* a request's head must arrive within: 10 s */
	int body_timeout_ms;     /* its body within: 30 s */
	int idle_timeout_ms;     /* a kept-alive connection idles at most: 60 s */
} zt_httpd_opts;

/* Binds and starts serving on a thread of its own. Stop with zt_httpd_stop. */
zt_httpd *zt_httpd_start(const zt_httpd_opts *o, zt_err *e);
/* The port it listens on (the one chosen, with port 0). */
uint16_t zt_httpd_port(const zt_httpd *h);
/*
 * Serves new connections with tls from now on (a renewed certificate, a new
 * bundle); connections already open keep theirs. The server takes its own
 * reference. 0, or -1 for a server started without TLS.
 */
int zt_httpd_set_tls(zt_httpd *h, SSL_CTX *tls);
/* 1 once stopping: long-running handlers (watches) should return. */
int zt_httpd_stopping(const zt_httpd *h);
/*
 * Stops accepting, lets requests in flight finish (at most drain_ms, then
 * their sockets are shut down), and frees the server.
 */
void zt_httpd_stop(zt_httpd *h, int drain_ms);

#endif
