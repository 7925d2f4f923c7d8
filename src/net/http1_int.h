/*
 * net/http1_int.h: what the three parts of the HTTP/1.1 module share
 * (http1.c heads, http1_chunked.c bodies, http1_write.c writers); not part
 * of its API.
 */
#ifndef ZT_NET_HTTP1_INT_H
#define ZT_NET_HTTP1_INT_H

#include "net/http1.h"

/* ---- characters (RFC 9110 5.6.2, 5.5; RFC 5234 B.1) --------------------- */

static inline int is_digit(unsigned char c)
{
	return c >= '0' && c <= '9';
}

static inline int is_alpha(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* tchar: any VCHAR except delimiters (RFC 9110 5.6.2). */
static inline int is_tchar(unsigned char c)
{
	if (is_alpha(c) || is_digit(c))
		return 1;
	switch (c) {
	case '!': case '#': case '$': case '%': case '&': case '\'': case '*':
	case '+': case '-': case '.': case '^': case '_': case '`': case '|':
	case '~':
		return 1;
	}
	return 0;
}

static inline int is_ows(unsigned char c)
{
	return c == ' ' || c == '\t';
}

/* A byte of a field value: VCHAR, obs-text, SP, HTAB (RFC 9110 5.5). */
static inline int is_field_char(unsigned char c)
{
	return c == '\t' || (c >= 0x20 && c != 0x7f);
}

/* qdtext (RFC 9110 5.6.4). */
static inline int is_qdtext(unsigned char c)
{
	return c == '\t' || c == ' ' || c == 0x21 || (c >= 0x23 && c <= 0x5b) ||
	       (c >= 0x5d && c <= 0x7e) || c >= 0x80;
}

static inline unsigned char lower(unsigned char c)
{
	return c >= 'A' && c <= 'Z' ? (unsigned char)(c + 32) : c;
}

/* Limits with every 0 field replaced by its default. */
void http1_limits_fill(zt_http1_limits *out, const zt_http1_limits *in);
/* Untrusted bytes made printable for a message; returns out. */
const char *http1_quote(char *out, size_t outsz, const void *p, size_t n);
/* 1 when a Connection field lists the token (tok_len bytes). */
int http1_connection_has_n(const zt_http1_field *f, size_t n, const char *tok, size_t tok_len);

#endif /* ZT_NET_HTTP1_INT_H */
