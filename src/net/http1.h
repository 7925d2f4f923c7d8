/*
 * net/http1: a strict HTTP/1.1 message parser and writer (RFC 9110,
 * RFC 9112) for the proxy's HTTP mode, written for hostile input.
 *
 *  - request and response heads are parsed in place: every name, value,
 *    method and target points into the caller's buffer, which must stay
 *    unchanged (and allocated) while they are used. Nothing is allocated.
 *  - a head is taken whole or not at all: "incomplete" until its final
 *    empty line is in the buffer, then its length (what to consume); on an
 *    error nothing is consumed and the error says which HTTP status to
 *    answer, which rule was broken (zt_err.rule) and why (zt_err.msg).
 *  - chunked bodies are decoded by a streaming state machine that never
 *    buffers: it says how many input bytes belong to the message (to be
 *    forwarded as they are) and where the decoded payload lies in them (to
 *    count it against a body limit).
 *  - heads are written into bounded zt_bufs by writers that refuse CR, LF,
 *    NUL and other control bytes in every element, so what they write is
 *    always one well-formed head (no header injection, no response
 *    splitting).
 *
 * Stricter than the RFCs where leniency has led to request smuggling
 * (RFC 9112 11.2): only CRLF ends a line (a bare LF or bare CR is an error,
 * RFC 9112 2.2 allows rejecting it), obs-fold is rejected (RFC 9112 5.2),
 * Transfer-Encoding with Content-Length is rejected (RFC 9112 6.1 allows
 * it), a second Content-Length is rejected even when equal (RFC 9110 8.6
 * allows it), empty elements in a Transfer-Encoding list are rejected,
 * whitespace is a single SP in the start line (RFC 9112 3, 4). One empty
 * line (CRLF) before a request line is skipped, as RFC 9112 2.2 asks; two
 * are an error.
 *
 * Rule tags (zt_err.rule) are "http-..." names listed beside each function.
 */
#ifndef ZT_NET_HTTP1_H
#define ZT_NET_HTTP1_H

#include <stddef.h>
#include <stdint.h>

#include "core/core.h"

/* Returned by the head parsers while the head is not all there yet. */
#define ZT_HTTP1_INCOMPLETE 1

/* Fields a parsed head can hold; limits above it are lowered to it. */
#define ZT_HTTP1_MAX_FIELDS 128

/* The largest Content-Length or chunked body taken (2^62 bytes). */
#define ZT_HTTP1_MAX_LENGTH ((uint64_t)1 << 62)

/*
 * Limits on what a peer may make us parse. A field left 0 takes its
 * default (zt_http1_limits_default).
 */
typedef struct zt_http1_limits {
	size_t max_line;      /* request or status line, CRLF excluded: 8 KiB (414) */
	size_t max_head;      /* whole head, start line to final CRLF: 32 KiB (431) */
	size_t max_fields;    /* header (and trailer) field lines: 100 (431) */
	size_t max_chunk_ext; /* bytes after a chunk size, before its CRLF: 256 */
	size_t max_trailer;   /* whole trailer section of a chunked body: 8 KiB */
} zt_http1_limits;

void zt_http1_limits_default(zt_http1_limits *l);

/* One field line: name and value (OWS trimmed) point into the message. */
typedef struct zt_http1_field {
	const char *name;
	size_t name_len;
	const char *value;
	size_t value_len;
} zt_http1_field;

/* How the body after a head ends (RFC 9112 6.3). */
enum zt_http1_framing {
	ZT_HTTP1_BODY_NONE,    /* no body: the next message starts after the head */
	ZT_HTTP1_BODY_LENGTH,  /* exactly content_length bytes (maybe 0) */
	ZT_HTTP1_BODY_CHUNKED, /* chunked: feed it to a zt_http1_chunked */
	ZT_HTTP1_BODY_CLOSE,   /* responses: everything until the server closes */
	ZT_HTTP1_BODY_TUNNEL,  /* responses: 2xx to CONNECT, 101: raw bytes both ways */
};

/* The four forms of request-target (RFC 9112 3.2). */
enum zt_http1_form {
	ZT_HTTP1_ORIGIN_FORM,    /* "/path?query" */
	ZT_HTTP1_ABSOLUTE_FORM,  /* "http://host:port/path?query" */
	ZT_HTTP1_AUTHORITY_FORM, /* "host:port", CONNECT only */
	ZT_HTTP1_ASTERISK_FORM,  /* "*", OPTIONS only */
};

/* Methods whose response is framed differently (RFC 9112 6.3). */
#define ZT_HTTP1_METHOD_HEAD 1u
#define ZT_HTTP1_METHOD_CONNECT 2u

typedef struct zt_http1_request {
	size_t head_len;  /* bytes of the head, a skipped leading CRLF included */
	int err_status;   /* on error: the status to answer (400, 414, 417, 431, 501, 505) */
	const char *method;
	size_t method_len;
	unsigned method_flags; /* ZT_HTTP1_METHOD_*: pass to zt_http1_parse_response */
	const char *target;    /* as received */
	size_t target_len;
	enum zt_http1_form form;
	/* absolute- and authority-form: the authority ("host[:port]") of the
	 * target, which replaces Host (RFC 9112 3.2.2); NULL otherwise */
	const char *authority;
	size_t authority_len;
	/* origin- and absolute-form: path and query ("" when absolute-form has
	 * none); NULL otherwise */
	const char *path;
	size_t path_len;
	int version;           /* 10 or 11 */
	const char *host;      /* the Host value, NULL when absent (HTTP/1.0) */
	size_t host_len;
	enum zt_http1_framing framing; /* NONE, LENGTH or CHUNKED */
	uint64_t content_length;
	int keep_alive;        /* the connection may carry another request */
	int expect_continue;   /* "Expect: 100-continue" (HTTP/1.1 only) */
	int upgrade;           /* an Upgrade field is present: the caller decides */
	size_t nfields;
	zt_http1_field fields[ZT_HTTP1_MAX_FIELDS];
} zt_http1_request;

typedef struct zt_http1_response {
	size_t head_len;
	int err_status;        /* on error: always 502 (what a proxy answers) */
	int version;           /* 10 or 11 */
	int status;            /* 100..599 */
	const char *reason;    /* may be empty */
	size_t reason_len;
	enum zt_http1_framing framing;
	uint64_t content_length;
	int keep_alive;        /* the connection may carry another exchange */
	int interim;           /* 1xx other than 101: a final response follows */
	int upgrade;           /* an Upgrade field is present */
	size_t nfields;
	zt_http1_field fields[ZT_HTTP1_MAX_FIELDS];
} zt_http1_response;

/*
 * Parses the request head at the start of buf (len bytes). Returns
 *   0                    the head is complete: req is filled, the head is
 *                        req->head_len bytes, the body (req->framing)
 *                        follows it, and with pipelining the next request
 *                        after the body;
 *   ZT_HTTP1_INCOMPLETE  read more and call again with the grown buffer;
 *   < 0                  the request is refused: req->err_status is the
 *                        status to answer before closing, *e says why;
 *                        req->head_len is 0 (nothing consumed).
 * lim may be NULL (defaults). scanned may be NULL; when given it carries
 * how far an earlier call on the same, grown buffer got, so feeding a head
 * a byte at a time costs O(n) and not O(n^2): start it at 0, keep it
 * between calls for one message, and it is set back to 0 when the call
 * returns 0 or an error. A head that is still incomplete at max_head bytes
 * is refused (431), as is a request line longer than max_line (414).
 * Rules: http-bare-lf, http-bare-cr, http-empty-lines, http-line-too-long,
 * http-head-too-large, http-too-many-fields, http-method, http-target,
 * http-version, http-version-unsupported, http-request-line,
 * http-obs-fold, http-field-name, http-field-ws, http-field-value,
 * http-host, http-host-missing, http-host-dup, http-content-length,
 * http-cl-dup, http-te, http-te-cl, http-te-http10, http-te-unsupported,
 * http-connection, http-expect, http-connect-body.
 */
int zt_http1_parse_request(const void *buf, size_t len, const zt_http1_limits *lim,
			   size_t *scanned, zt_http1_request *req, zt_err *e) ZT_MUST_CHECK;

/*
 * Parses a response head, as zt_http1_parse_request, for the request whose
 * req->method_flags are given (a response to HEAD has no body, a 2xx to
 * CONNECT opens a tunnel: RFC 9112 6.3). Errors are always 502 and use the
 * same rules plus http-status-line. An upstream response whose status line
 * ends right after the status code ("HTTP/1.1 200" CRLF) is taken with an
 * empty reason, though RFC 9112 4 wants the SP: it cannot be misread.
 * Transfer codings before a final chunked are framing-neutral and taken;
 * without a final chunked the response is close-delimited (RFC 9112 6.3).
 */
int zt_http1_parse_response(const void *buf, size_t len, const zt_http1_limits *lim,
			    unsigned method_flags, size_t *scanned, zt_http1_response *resp,
			    zt_err *e) ZT_MUST_CHECK;

/* ---- chunked bodies ---------------------------------------------------- */

/* A chunked body decoder; its fields are the decoder's, use the calls. */
typedef struct zt_http1_chunked {
	int state;
	int err_status;       /* on error: 400 (431 for trailers) or 502 for responses */
	int response;
	uint64_t size;        /* the chunk size being read */
	uint64_t remaining;   /* chunk data still to come */
	uint64_t total;       /* decoded payload bytes so far */
	uint64_t wire;        /* input bytes consumed so far */
	size_t ndigits, ext_len, trailer_len, trailer_fields;
	size_t max_chunk_ext, max_trailer, max_fields;
	size_t name_len;
	char name[20];        /* start of a trailer field name, lowercased */
} zt_http1_chunked;

/* Starts a decoder for one body; response selects 502 for errors. */
void zt_http1_chunked_init(zt_http1_chunked *c, const zt_http1_limits *lim, int response);

/*
 * Feeds len bytes. Consumes framing bytes and at most one run of payload
 * bytes, and stops right after that run, at the end of the message or at
 * the end of the input: *consumed is how many bytes of data belong to the
 * message (forward exactly those); the payload among them is
 * data[*data_off .. *data_off + *data_len) (*data_len 0 when none). Call
 * again with the rest while *consumed < len and the body is not done. Works
 * fed one byte at a time. When zt_http1_chunked_done, the message ended
 * exactly at data + *consumed: what follows is the next message.
 * Returns 0, or a negative error (then *consumed is 0, c->err_status is the
 * status to answer and every later call fails with http-chunk-state).
 * Rules: http-chunk-size, http-chunk-ext, http-chunk-crlf, http-bare-lf,
 * http-bare-cr, http-obs-fold, http-field-ws, http-field-value,
 * http-trailer, http-trailer-too-large, http-too-many-fields.
 */
int zt_http1_chunked_feed(zt_http1_chunked *c, const void *data, size_t len,
			  size_t *consumed, size_t *data_off, size_t *data_len,
			  zt_err *e) ZT_MUST_CHECK;

/* 1 once the last chunk and the trailer section have been read. */
int zt_http1_chunked_done(const zt_http1_chunked *c);

/* ---- writing heads ----------------------------------------------------- */

/* Fields to write: fields minus those dropped, then extra. */
typedef struct zt_http1_out {
	const zt_http1_field *fields;
	size_t nfields;
	/* names left out of fields (case-insensitive), NULL-terminated; may be NULL */
	const char *const *drop;
	/* ZT_HTTP1_DROP_HOP_BY_HOP: also leave out Connection, Keep-Alive,
	 * Proxy-Connection, TE, Transfer-Encoding, Upgrade and every field named
	 * in a Connection field (RFC 9110 7.6.1) */
	unsigned flags;
	const zt_http1_field *extra; /* written after fields, never dropped */
	size_t nextra;
} zt_http1_out;

#define ZT_HTTP1_DROP_HOP_BY_HOP 1u

/*
 * Appends "METHOD SP target SP HTTP/1.1" CRLF, the fields and the final
 * CRLF to b (always our own version, RFC 9112 2.3). The method must be a
 * token, the target visible ASCII without '#', names tokens and values
 * without CR, LF, NUL or other controls (HTAB allowed): anything else is
 * ZT_EINVAL (rule http-write) and b is left as it was. out may be NULL.
 */
int zt_http1_write_request(zt_buf *b, const char *method, size_t method_len,
			   const char *target, size_t target_len, const zt_http1_out *out,
			   zt_err *e) ZT_MUST_CHECK;

/* As zt_http1_write_request for "HTTP/1.1 NNN reason" (status 100..599). */
int zt_http1_write_response(zt_buf *b, int status, const char *reason, size_t reason_len,
			    const zt_http1_out *out, zt_err *e) ZT_MUST_CHECK;

/*
 * Appends a complete error response (status 400..599): the standard reason
 * phrase, a text/plain body "<reason>[: detail]" LF, Content-Length,
 * Connection: close, and X-Request-Id when request_id is not NULL (it must
 * be 1..128 bytes of letters, digits, '-', '_', '.', ':'). detail (may be
 * NULL) is cut at 512 bytes; its bytes outside printable ASCII, and '<',
 * '>', '&', are written as '?'.
 */
int zt_http1_write_error(zt_buf *b, int status, const char *detail, const char *request_id,
			 zt_err *e) ZT_MUST_CHECK;

/* 1 when the n bytes are a request ID the writers take and the proxy keeps:
 * 1..128 letters, digits, '-', '_', '.', ':'. */
int zt_http1_request_id_ok(const char *s, size_t n);

/* A new request ID: a random per-thread prefix and a counter, as a UUID (37 bytes with the NUL). */
void zt_http1_request_id_new(char *out, size_t outsz);

/* The standard reason phrase of a status ("Bad Request"); never NULL. */
const char *zt_http1_reason(int status);

/* ---- helpers ----------------------------------------------------------- */

/* 1 when the len bytes of name equal the NUL-terminated lit, ignoring ASCII case. */
int zt_http1_name_eq(const char *name, size_t len, const char *lit);

/*
 * The next field named `name` (case-insensitive) at or after index *iter,
 * advancing *iter past it; NULL when there is none. iter may be NULL (the
 * first one). Start *iter at 0 to walk repeated fields.
 */
const zt_http1_field *zt_http1_field_get(const zt_http1_field *fields, size_t n,
					 const char *name, size_t *iter);

/* 1 when the comma-separated list value has an element equal to token
 * (case-insensitive, OWS around elements ignored). */
int zt_http1_list_has(const char *value, size_t len, const char *token);

/* 1 when any Connection field lists token ("close", "upgrade"...). */
int zt_http1_connection_has(const zt_http1_field *fields, size_t n, const char *token);

#endif /* ZT_NET_HTTP1_H */
