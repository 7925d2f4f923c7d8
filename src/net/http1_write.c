/*
 * net/http1_write.c: the writers of the HTTP/1.1 module (see http1.h).
 * Every element is checked before a byte is written, so what they write is
 * one well-formed head or nothing (no header injection, no response
 * splitting).
 */
#include "net/http1_int.h"

#include <openssl/rand.h>

#include <stdio.h>
#include <stdint.h>
#include <string.h>

/* ---- writing heads ------------------------------------------------------ */

static const struct {
	int status;
	const char *reason;
} reasons[] = {
	{ 100, "Continue" }, { 101, "Switching Protocols" }, { 200, "OK" },
	{ 201, "Created" }, { 202, "Accepted" }, { 204, "No Content" },
	{ 206, "Partial Content" }, { 301, "Moved Permanently" }, { 302, "Found" },
	{ 303, "See Other" }, { 304, "Not Modified" }, { 307, "Temporary Redirect" },
	{ 308, "Permanent Redirect" }, { 400, "Bad Request" }, { 401, "Unauthorized" },
	{ 403, "Forbidden" }, { 404, "Not Found" }, { 405, "Method Not Allowed" },
	{ 408, "Request Timeout" }, { 409, "Conflict" }, { 411, "Length Required" },
	{ 413, "Content Too Large" }, { 414, "URI Too Long" },
	{ 415, "Unsupported Media Type" }, { 417, "Expectation Failed" },
	{ 421, "Misdirected Request" }, { 426, "Upgrade Required" },
	{ 429, "Too Many Requests" }, { 431, "Request Header Fields Too Large" },
	{ 500, "Internal Server Error" }, { 501, "Not Implemented" },
	{ 502, "Bad Gateway" }, { 503, "Service Unavailable" },
	{ 504, "Gateway Timeout" }, { 505, "HTTP Version Not Supported" },
};

const char *zt_http1_reason(int status)
{
	for (size_t i = 0; i < sizeof reasons / sizeof reasons[0]; i++)
		if (reasons[i].status == status)
			return reasons[i].reason;
	return status >= 500 ? "Server Error" : status >= 400 ? "Client Error" : "Unknown";
}

static int wfail(zt_buf *b, size_t mark, zt_err *e, const char *what, const char *s, size_t n)
{
	char q[80];

	b->len = mark;
	return zt_err_rule(e, ZT_EINVAL, "http-write",
			   "refusing to write %s \"%s\": it would not be one well-formed field (CR, LF, NUL, controls or delimiters)",
			   what, http1_quote(q, sizeof q, s, n));
}

static int token_ok(const char *s, size_t n)
{
	if (n == 0)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!is_tchar((unsigned char)s[i]))
			return 0;
	return 1;
}

static int value_ok(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!is_field_char((unsigned char)s[i]))
			return 0;
	return 1;
}

static int dropped(const zt_http1_out *o, const zt_http1_field *f)
{
	static const char *const hop[] = { "connection", "keep-alive", "proxy-connection",
					   "te", "transfer-encoding", "upgrade", NULL };

	if (o->drop)
		for (const char *const *d = o->drop; *d; d++)
			if (zt_http1_name_eq(f->name, f->name_len, *d))
				return 1;
	if (!(o->flags & ZT_HTTP1_DROP_HOP_BY_HOP))
		return 0;
	for (const char *const *d = hop; *d; d++)
		if (zt_http1_name_eq(f->name, f->name_len, *d))
			return 1;
	return http1_connection_has_n(o->fields, o->nfields, f->name, f->name_len);
}

static int write_field(zt_buf *b, size_t mark, const zt_http1_field *f, zt_err *e)
{
	int r;

	if (!token_ok(f->name, f->name_len))
		return wfail(b, mark, e, "field name", f->name, f->name_len);
	if (!value_ok(f->value, f->value_len))
		return wfail(b, mark, e, "the value of field", f->name, f->name_len);
	if ((r = zt_buf_append(b, f->name, f->name_len, e)) != 0 ||
	    (r = zt_buf_append(b, ": ", 2, e)) != 0 ||
	    (r = zt_buf_append(b, f->value, f->value_len, e)) != 0 ||
	    (r = zt_buf_append(b, "\r\n", 2, e)) != 0) {
		b->len = mark;
		return r;
	}
	return 0;
}

/* The fields, the final CRLF; b back at mark on any error. */
static int write_fields(zt_buf *b, size_t mark, const zt_http1_out *o, zt_err *e)
{
	size_t i;
	int r;

	if (o) {
		for (i = 0; i < o->nfields; i++)
			if (!dropped(o, &o->fields[i]) &&
			    (r = write_field(b, mark, &o->fields[i], e)) != 0)
				return r;
		for (i = 0; i < o->nextra; i++)
			if ((r = write_field(b, mark, &o->extra[i], e)) != 0)
				return r;
	}
	if ((r = zt_buf_append(b, "\r\n", 2, e)) != 0)
		b->len = mark;
	return r;
}

int zt_http1_write_request(zt_buf *b, const char *method, size_t method_len,
			   const char *target, size_t target_len, const zt_http1_out *out,
			   zt_err *e)
{
	size_t mark = b->len;
	int r;

	if (!token_ok(method, method_len))
		return wfail(b, mark, e, "method", method, method_len);
	if (target_len == 0)
		return wfail(b, mark, e, "target", target, target_len);
	for (size_t i = 0; i < target_len; i++) {
		unsigned char ch = (unsigned char)target[i];

		if (ch < 0x21 || ch > 0x7e || ch == '#')
			return wfail(b, mark, e, "target", target, target_len);
	}
	if ((r = zt_buf_append(b, method, method_len, e)) != 0 ||
	    (r = zt_buf_append(b, " ", 1, e)) != 0 ||
	    (r = zt_buf_append(b, target, target_len, e)) != 0 ||
	    (r = zt_buf_append(b, " HTTP/1.1\r\n", 11, e)) != 0) {
		b->len = mark;
		return r;
	}
	return write_fields(b, mark, out, e);
}

int zt_http1_write_response(zt_buf *b, int status, const char *reason, size_t reason_len,
			    const zt_http1_out *out, zt_err *e)
{
	size_t mark = b->len;
	int r;

	if (status < 100 || status > 599) {
		b->len = mark;
		return zt_err_rule(e, ZT_EINVAL, "http-write",
				   "refusing to write status %d: a status is 100..599", status);
	}
	if (!value_ok(reason, reason_len))
		return wfail(b, mark, e, "reason phrase", reason, reason_len);
	if ((r = zt_buf_appendf(b, e, "HTTP/1.1 %03d ", status)) != 0 ||
	    (r = zt_buf_append(b, reason, reason_len, e)) != 0 ||
	    (r = zt_buf_append(b, "\r\n", 2, e)) != 0) {
		b->len = mark;
		return r;
	}
	return write_fields(b, mark, out, e);
}

int zt_http1_request_id_ok(const char *s, size_t n)
{
	if (n == 0 || n > 128)
		return 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (!is_alpha(c) && !is_digit(c) && c != '-' && c != '_' && c != '.' && c != ':')
			return 0;
	}
	return 1;
}

int zt_http1_write_error(zt_buf *b, int status, const char *detail, const char *request_id,
			 zt_err *e)
{
	const char *reason = zt_http1_reason(status);
	size_t mark = b->len, dlen = detail ? strnlen(detail, 512) : 0, i;
	size_t body = strlen(reason) + (detail ? 2 + dlen : 0) + 1;
	char clean[512];
	int r;

	if (status < 400 || status > 599)
		return zt_err_rule(e, ZT_EINVAL, "http-write",
				   "refusing to write error status %d: an error is 400..599", status);
	if (request_id && !zt_http1_request_id_ok(request_id, strnlen(request_id, 129)))
		return wfail(b, mark, e, "X-Request-Id", request_id, strnlen(request_id, 129));
	/* the detail is for people; nothing in it may be read as markup or controls */
	for (i = 0; i < dlen; i++) {
		unsigned char c = (unsigned char)detail[i];

		clean[i] = c >= 0x20 && c < 0x7f && c != '<' && c != '>' && c != '&' ? (char)c : '?';
	}
	if ((r = zt_buf_appendf(b, e,
				"HTTP/1.1 %d %s\r\n"
				"Content-Type: text/plain; charset=utf-8\r\n"
				"Content-Length: %zu\r\n"
				"Connection: close\r\n"
				"Cache-Control: no-store\r\n"
				"X-Content-Type-Options: nosniff\r\n",
				status, reason, body)) != 0 ||
	    (request_id &&
	     (r = zt_buf_appendf(b, e, "X-Request-Id: %s\r\n", request_id)) != 0) ||
	    (r = zt_buf_appendf(b, e, "\r\n%s", reason)) != 0 ||
	    (detail && ((r = zt_buf_append(b, ": ", 2, e)) != 0 ||
			(r = zt_buf_append(b, clean, dlen, e)) != 0)) ||
	    (r = zt_buf_append(b, "\n", 1, e)) != 0) {
		b->len = mark;
		return r;
	}
	return 0;
}

/* A request ID: a random per-thread prefix and a counter, as a UUID. */
void zt_http1_request_id_new(char *out, size_t outsz)
{
	static _Thread_local uint64_t base[2];
	static _Thread_local uint64_t seq;

	if (!base[0] && !base[1] && RAND_bytes((unsigned char *)base, sizeof base) != 1)
		base[0] = (uint64_t)(uintptr_t)&seq ^ (uint64_t)zt_now();
	seq++;
	uint64_t hi = base[0], lo = base[1] ^ seq;
	/* version 4, variant 10 bits, as RFC 9562 5.4 lays them out */
	snprintf(out, outsz, "%08llx-%04llx-4%03llx-%04llx-%012llx",
		 (unsigned long long)(hi >> 32), (unsigned long long)((hi >> 16) & 0xffff),
		 (unsigned long long)(hi & 0xfff), (unsigned long long)(0x8000 | ((lo >> 48) & 0x3fff)),
		 (unsigned long long)(lo & 0xffffffffffffULL));
}
