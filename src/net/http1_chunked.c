/*
 * net/http1_chunked.c: the chunked body decoder of the HTTP/1.1 module
 * (RFC 9112 7.1; see http1.h). A byte-at-a-time state machine that keeps
 * no bytes, only counters (the trailer field name's first bytes excepted),
 * so it can be fed any split of a body.
 */
#include "net/http1_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* ---- chunked bodies (RFC 9112 7.1) ------------------------------------- */

enum ck_state {
	CK_SIZE0,       /* first hex digit of a chunk size */
	CK_SIZE,        /* more hex digits, ';', BWS or CR */
	CK_EXT_WS,      /* BWS that must lead to ';' */
	CK_EXT_NAME0,   /* after ';': BWS, then a name */
	CK_EXT_NAME,
	CK_EXT_NAME_WS, /* BWS after a name: '=' or ';' */
	CK_EXT_VAL0,    /* after '=': BWS, then a token or a quoted string */
	CK_EXT_TOKEN,
	CK_EXT_QS,
	CK_EXT_QP,      /* after '\' in a quoted string */
	CK_EXT_QEND,    /* after the closing quote */
	CK_SIZE_LF,     /* the LF of the size line */
	CK_DATA,
	CK_DATA_CR,
	CK_DATA_LF,
	CK_TR_LINE,     /* start of a trailer line, or the final CRLF */
	CK_TR_NAME,
	CK_TR_VALUE,
	CK_TR_LF,
	CK_TR_END_LF,
	CK_DONE,
	CK_ERROR,
};

void zt_http1_chunked_init(zt_http1_chunked *c, const zt_http1_limits *lim, int response)
{
	zt_http1_limits l;

	http1_limits_fill(&l, lim);
	memset(c, 0, sizeof *c);
	c->state = CK_SIZE0;
	c->response = response;
	c->max_chunk_ext = l.max_chunk_ext;
	c->max_trailer = l.max_trailer;
	c->max_fields = l.max_fields;
}

int zt_http1_chunked_done(const zt_http1_chunked *c)
{
	return c->state == CK_DONE;
}

static int ck_fail(zt_http1_chunked *c, zt_err *e, int http, const char *rule,
		   const char *fmt, ...) ZT_PRINTF(5, 6);

static int ck_fail(zt_http1_chunked *c, zt_err *e, int http, const char *rule,
		   const char *fmt, ...)
{
	char msg[ZT_ERR_MSG_MAX - 64];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	c->state = CK_ERROR;
	c->err_status = c->response ? 502 : http;
	return zt_err_rule(e, http == 431 ? ZT_ELIMIT : ZT_EPARSE, rule,
			   "%schunked body, at byte %llu: %s", c->response ? "upstream response: " : "",
			   (unsigned long long)c->wire, msg);
}

/* Trailer fields that must never arrive after the content (RFC 9110 6.5.1):
 * a hop that merged them into the header section could be re-framed or
 * re-routed. */
static int forbidden_trailer(const zt_http1_chunked *c)
{
	static const char *const names[] = { "content-length", "transfer-encoding", "host" };

	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
		if (c->name_len == strlen(names[i]) && memcmp(c->name, names[i], c->name_len) == 0)
			return 1;
	return 0;
}

/* Leaves a size: it must fit the limits (RFC 9112 7.1 asks for no overflow). */
static int size_done(zt_http1_chunked *c, zt_err *e)
{
	if (c->size > ZT_HTTP1_MAX_LENGTH || c->total > ZT_HTTP1_MAX_LENGTH - c->size)
		return ck_fail(c, e, 400, "http-chunk-size",
			       "chunk size %llu takes the body past 2^62 bytes; send a smaller body",
			       (unsigned long long)c->size);
	return 0;
}

int zt_http1_chunked_feed(zt_http1_chunked *c, const void *data, size_t len,
			  size_t *consumed, size_t *data_off, size_t *data_len, zt_err *e)
{
	const unsigned char *p = data;
	size_t i = 0;
	char q[16];
	int r;

	*consumed = 0;
	*data_off = 0;
	*data_len = 0;
	if (c->state == CK_ERROR)
		return zt_err_rule(e, ZT_ESTATE, "http-chunk-state",
				   "the chunked body already failed; close the connection");
	while (i < len && c->state != CK_DONE) {
		unsigned char ch = p[i];

		if (c->state == CK_DATA) {
			size_t n = len - i;

			if ((uint64_t)n > c->remaining)
				n = (size_t)c->remaining;
			*data_off = i;
			*data_len = n;
			i += n;
			c->wire += n;
			c->remaining -= n;
			c->total += n;
			if (c->remaining == 0)
				c->state = CK_DATA_CR;
			break; /* one run of payload per call */
		}
		if (c->state >= CK_EXT_WS && c->state <= CK_EXT_QEND && ch != '\r' &&
		    ++c->ext_len > c->max_chunk_ext) {
			r = ck_fail(c, e, 400, "http-chunk-ext",
				    "chunk extensions longer than %zu bytes (RFC 9112 7.1.1); send shorter ones",
				    c->max_chunk_ext);
			goto fail;
		}
		if (c->state >= CK_TR_LINE && c->state <= CK_TR_END_LF &&
		    ++c->trailer_len > c->max_trailer) {
			r = ck_fail(c, e, 431, "http-trailer-too-large",
				    "the trailer section is larger than %zu bytes; send smaller trailer fields",
				    c->max_trailer);
			goto fail;
		}
		if (ch == '\n' && c->state != CK_SIZE_LF && c->state != CK_DATA_LF &&
		    c->state != CK_TR_LF && c->state != CK_TR_END_LF) {
			r = ck_fail(c, e, 400, "http-bare-lf",
				    "bare LF (RFC 9112 2.2, 7.1); end every chunk line with CRLF");
			goto fail;
		}
		switch (c->state) {
		case CK_SIZE0:
			if (zt_hex_value(ch) < 0) {
				r = ck_fail(c, e, 400, "http-chunk-size",
					    "chunk size starts with \"%s\", not a hex digit (1*HEXDIG, RFC 9112 7.1); send the size in hex",
					    http1_quote(q, sizeof q, &ch, 1));
				goto fail;
			}
			c->size = (uint64_t)zt_hex_value(ch);
			c->ndigits = 1;
			c->state = CK_SIZE;
			break;
		case CK_SIZE:
			if (zt_hex_value(ch) >= 0) {
				if (c->ndigits++ == 16) {
					r = ck_fail(c, e, 400, "http-chunk-size",
						    "chunk size has more than 16 hex digits (RFC 9112 7.1); send it without leading zeros");
					goto fail;
				}
				c->size = c->size << 4 | (uint64_t)zt_hex_value(ch);
				break;
			}
			if ((r = size_done(c, e)) != 0)
				goto fail;
			if (ch == ';') {
				c->ext_len = 1;
				c->state = CK_EXT_NAME0;
			} else if (is_ows(ch)) {
				c->ext_len = 1;
				c->state = CK_EXT_WS;
			} else if (ch == '\r') {
				c->state = CK_SIZE_LF;
			} else {
				r = ck_fail(c, e, 400, "http-chunk-size",
					    "\"%s\" after a chunk size (RFC 9112 7.1: hex digits, then ';' extensions or CRLF); send the size in hex alone",
					    http1_quote(q, sizeof q, &ch, 1));
				goto fail;
			}
			break;
		case CK_EXT_WS:
			if (ch == ';')
				c->state = CK_EXT_NAME0;
			else if (!is_ows(ch))
				goto bad_ext;
			break;
		case CK_EXT_NAME0:
			if (is_tchar(ch))
				c->state = CK_EXT_NAME;
			else if (!is_ows(ch))
				goto bad_ext;
			break;
		case CK_EXT_NAME:
			if (is_ows(ch))
				c->state = CK_EXT_NAME_WS;
			else if (ch == '=')
				c->state = CK_EXT_VAL0;
			else if (ch == ';')
				c->state = CK_EXT_NAME0;
			else if (ch == '\r')
				c->state = CK_SIZE_LF;
			else if (!is_tchar(ch))
				goto bad_ext;
			break;
		case CK_EXT_NAME_WS:
			if (ch == '=')
				c->state = CK_EXT_VAL0;
			else if (ch == ';')
				c->state = CK_EXT_NAME0;
			else if (!is_ows(ch))
				goto bad_ext;
			break;
		case CK_EXT_VAL0:
			if (ch == '"')
				c->state = CK_EXT_QS;
			else if (is_tchar(ch))
				c->state = CK_EXT_TOKEN;
			else if (!is_ows(ch))
				goto bad_ext;
			break;
		case CK_EXT_TOKEN:
			if (is_ows(ch))
				c->state = CK_EXT_WS;
			else if (ch == ';')
				c->state = CK_EXT_NAME0;
			else if (ch == '\r')
				c->state = CK_SIZE_LF;
			else if (!is_tchar(ch))
				goto bad_ext;
			break;
		case CK_EXT_QS:
			if (ch == '"')
				c->state = CK_EXT_QEND;
			else if (ch == '\\')
				c->state = CK_EXT_QP;
			else if (!is_qdtext(ch))
				goto bad_ext;
			break;
		case CK_EXT_QP:
			if (!is_field_char(ch))
				goto bad_ext;
			c->state = CK_EXT_QS;
			break;
		case CK_EXT_QEND:
			if (ch == ';')
				c->state = CK_EXT_NAME0;
			else if (is_ows(ch))
				c->state = CK_EXT_WS;
			else if (ch == '\r')
				c->state = CK_SIZE_LF;
			else
				goto bad_ext;
			break;
		case CK_SIZE_LF:
			if (ch != '\n') {
				r = ck_fail(c, e, 400, "http-bare-cr",
					    "bare CR in a chunk size line (RFC 9112 7.1); end it with CRLF");
				goto fail;
			}
			c->ext_len = 0;
			c->ndigits = 0;
			if (c->size == 0) {
				c->state = CK_TR_LINE; /* last-chunk: the trailer section follows */
			} else {
				c->remaining = c->size;
				c->state = CK_DATA;
			}
			break;
		case CK_DATA_CR:
			if (ch != '\r') {
				r = ck_fail(c, e, 400, "http-chunk-crlf",
					    "chunk data is not followed by CRLF but by \"%s\": the chunk is longer than its size (RFC 9112 7.1); send exactly chunk-size bytes, then CRLF",
					    http1_quote(q, sizeof q, &ch, 1));
				goto fail;
			}
			c->state = CK_DATA_LF;
			break;
		case CK_DATA_LF:
			if (ch != '\n') {
				r = ck_fail(c, e, 400, "http-chunk-crlf",
					    "chunk data is followed by a CR without LF (RFC 9112 7.1); send CRLF after the data");
				goto fail;
			}
			c->size = 0;
			c->state = CK_SIZE0;
			break;
		case CK_TR_LINE:
			if (ch == '\r') {
				c->state = CK_TR_END_LF;
			} else if (is_tchar(ch)) {
				if (++c->trailer_fields > c->max_fields) {
					r = ck_fail(c, e, 431, "http-too-many-fields",
						    "more than %zu trailer fields; send fewer",
						    c->max_fields);
					goto fail;
				}
				c->name[0] = (char)lower(ch);
				c->name_len = 1;
				c->state = CK_TR_NAME;
			} else if (is_ows(ch)) {
				r = ck_fail(c, e, 400, "http-obs-fold",
					    "obsolete line folding in the trailer section (RFC 9112 5.2); send each field on one line");
				goto fail;
			} else {
				r = ck_fail(c, e, 400, "http-trailer",
					    "a trailer line starts with \"%s\", not a field name (RFC 9112 7.1.2); write \"Name: value\"",
					    http1_quote(q, sizeof q, &ch, 1));
				goto fail;
			}
			break;
		case CK_TR_NAME:
			if (is_tchar(ch)) {
				if (c->name_len < sizeof c->name)
					c->name[c->name_len] = (char)lower(ch);
				c->name_len++;
			} else if (ch == ':') {
				if (forbidden_trailer(c)) {
					r = ck_fail(c, e, 400, "http-trailer",
						    "trailer field \"%.*s\" is refused: framing and routing fields belong in the header section (RFC 9110 6.5.1)",
						    (int)c->name_len, c->name);
					goto fail;
				}
				c->state = CK_TR_VALUE;
			} else if (is_ows(ch)) {
				r = ck_fail(c, e, 400, "http-field-ws",
					    "whitespace between trailer name and colon (RFC 9112 5.1); write \"Name: value\"");
				goto fail;
			} else {
				r = ck_fail(c, e, 400, "http-trailer",
					    "\"%s\" in a trailer field name (a token, RFC 9110 5.1); write \"Name: value\"",
					    http1_quote(q, sizeof q, &ch, 1));
				goto fail;
			}
			break;
		case CK_TR_VALUE:
			if (ch == '\r') {
				c->state = CK_TR_LF;
			} else if (!is_field_char(ch)) {
				r = ck_fail(c, e, 400, "http-field-value",
					    "%s in a trailer field value (RFC 9110 5.5); send only visible characters, spaces and tabs",
					    ch == 0 ? "NUL" : "a control character");
				goto fail;
			}
			break;
		case CK_TR_LF:
		case CK_TR_END_LF:
			if (ch != '\n') {
				r = ck_fail(c, e, 400, "http-bare-cr",
					    "bare CR in the trailer section (RFC 9112 2.2); end every line with CRLF");
				goto fail;
			}
			c->state = c->state == CK_TR_LF ? CK_TR_LINE : CK_DONE;
			break;
		default:
			r = zt_err_rule(e, ZT_ESTATE, "http-chunk-state", "chunked decoder in a bad state");
			goto fail;
		}
		i++;
		c->wire++;
	}
	*consumed = i;
	return 0;

bad_ext:
	r = ck_fail(c, e, 400, "http-chunk-ext",
		    "\"%s\" does not fit the chunk extension syntax (';' name ['=' token or quoted-string], RFC 9112 7.1.1); send none",
		    http1_quote(q, sizeof q, p + i, 1));
fail:
	c->state = CK_ERROR;
	if (!c->err_status)
		c->err_status = c->response ? 502 : 400;
	*consumed = 0;
	*data_off = 0;
	*data_len = 0;
	return r;
}
