/*
 * net/http1.c: strict HTTP/1.1 parsing and writing (see http1.h).
 *
 * A head is parsed in two passes over the caller's buffer:
 *   1. scan_head walks the bytes once (resuming where an earlier call on
 *      the same buffer stopped), checks that every line ends in CRLF, and
 *      looks for the first empty line; it alone decides "incomplete" and
 *      the size limits, so a prefix of a valid head is never an error;
 *   2. once the head is whole, it is parsed line by line: the start line,
 *      each field line, then what the fields mean together (framing, Host,
 *      Connection, Expect). This pass checks everything again on its own,
 *      so it never trusts the first pass beyond "the head ends here".
 * Chunked bodies go through a byte-at-a-time state machine that keeps no
 * bytes, only counters (the trailer field name's first bytes excepted).
 */
#include "net/http1.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* ---- characters (RFC 9110 5.6.2, 5.5; RFC 5234 B.1) --------------------- */

static int is_digit(unsigned char c)
{
	return c >= '0' && c <= '9';
}

static int is_alpha(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* tchar: any VCHAR except delimiters (RFC 9110 5.6.2). */
static int is_tchar(unsigned char c)
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

static int is_ows(unsigned char c)
{
	return c == ' ' || c == '\t';
}

/* A byte of a field value: VCHAR, obs-text, SP, HTAB (RFC 9110 5.5). */
static int is_field_char(unsigned char c)
{
	return c == '\t' || (c >= 0x20 && c != 0x7f);
}

/* qdtext (RFC 9110 5.6.4). */
static int is_qdtext(unsigned char c)
{
	return c == '\t' || c == ' ' || c == 0x21 || (c >= 0x23 && c <= 0x5b) ||
	       (c >= 0x5d && c <= 0x7e) || c >= 0x80;
}

static unsigned char lower(unsigned char c)
{
	return c >= 'A' && c <= 'Z' ? (unsigned char)(c + 32) : c;
}

int zt_http1_name_eq(const char *name, size_t len, const char *lit)
{
	size_t i;

	for (i = 0; i < len; i++)
		if (lit[i] == '\0' || lower((unsigned char)name[i]) != lower((unsigned char)lit[i]))
			return 0;
	return lit[i] == '\0';
}

static int name_eq_n(const char *a, size_t alen, const char *b, size_t blen)
{
	if (alen != blen)
		return 0;
	for (size_t i = 0; i < alen; i++)
		if (lower((unsigned char)a[i]) != lower((unsigned char)b[i]))
			return 0;
	return 1;
}

/* ---- limits ----------------------------------------------------------- */

void zt_http1_limits_default(zt_http1_limits *l)
{
	l->max_line = 8192;
	l->max_head = 32768;
	l->max_fields = 100;
	l->max_chunk_ext = 256;
	l->max_trailer = 8192;
}

static void limits_fill(zt_http1_limits *out, const zt_http1_limits *in)
{
	zt_http1_limits d;

	zt_http1_limits_default(&d);
	*out = in ? *in : d;
	if (!out->max_line)
		out->max_line = d.max_line;
	if (!out->max_head)
		out->max_head = d.max_head;
	if (!out->max_fields)
		out->max_fields = d.max_fields;
	if (!out->max_chunk_ext)
		out->max_chunk_ext = d.max_chunk_ext;
	if (!out->max_trailer)
		out->max_trailer = d.max_trailer;
	/* keeps line_cap and friends far from overflow */
	if (out->max_line > SIZE_MAX / 4)
		out->max_line = SIZE_MAX / 4;
}

/* ---- lists, quoted strings, authorities -------------------------------- */

/* s[i] is '"': the index just past the closing quote, or 0 if there is none. */
static size_t qstring_end(const char *s, size_t n, size_t i)
{
	for (i++; i < n; i++) {
		if (s[i] == '"')
			return i + 1;
		if (s[i] == '\\' && ++i >= n)
			return 0;
	}
	return 0;
}

/*
 * The next element of a comma-separated list (RFC 9110 5.6.1), OWS trimmed,
 * commas inside quoted strings skipped over. Returns 1 with the element
 * (maybe empty), 0 past the last one, -1 on an unterminated quoted string.
 * *pos starts at 0.
 */
static int list_next(const char *v, size_t n, size_t *pos, const char **el, size_t *el_len)
{
	size_t i = *pos, s, t;

	if (i > n)
		return 0;
	s = i;
	while (i < n && v[i] != ',') {
		if (v[i] == '"') {
			size_t k = qstring_end(v, n, i);

			if (!k)
				return -1;
			i = k;
		} else {
			i++;
		}
	}
	t = i;
	while (s < t && is_ows((unsigned char)v[s]))
		s++;
	while (t > s && is_ows((unsigned char)v[t - 1]))
		t--;
	*el = v + s;
	*el_len = t - s;
	*pos = i + 1;
	return 1;
}

static int list_has_n(const char *v, size_t n, const char *tok, size_t tok_len)
{
	size_t pos = 0, el_len;
	const char *el;

	while (list_next(v, n, &pos, &el, &el_len) > 0)
		if (name_eq_n(el, el_len, tok, tok_len))
			return 1;
	return 0;
}

int zt_http1_list_has(const char *value, size_t len, const char *token)
{
	return list_has_n(value, len, token, strlen(token));
}

static int connection_has_n(const zt_http1_field *f, size_t n, const char *tok, size_t tok_len)
{
	for (size_t i = 0; i < n; i++)
		if (zt_http1_name_eq(f[i].name, f[i].name_len, "connection") &&
		    list_has_n(f[i].value, f[i].value_len, tok, tok_len))
			return 1;
	return 0;
}

int zt_http1_connection_has(const zt_http1_field *fields, size_t n, const char *token)
{
	return connection_has_n(fields, n, token, strlen(token));
}

const zt_http1_field *zt_http1_field_get(const zt_http1_field *fields, size_t n,
					 const char *name, size_t *iter)
{
	for (size_t i = iter ? *iter : 0; i < n; i++) {
		if (zt_http1_name_eq(fields[i].name, fields[i].name_len, name)) {
			if (iter)
				*iter = i + 1;
			return &fields[i];
		}
	}
	if (iter)
		*iter = n;
	return NULL;
}

/* *( OWS ";" OWS token BWS "=" BWS ( token / quoted-string ) ): RFC 9110 10.1.4. */
static int params_ok(const char *s, size_t n)
{
	size_t i = 0, j;

	while (i < n) {
		while (i < n && is_ows((unsigned char)s[i]))
			i++;
		if (i == n || s[i] != ';')
			return 0;
		i++;
		while (i < n && is_ows((unsigned char)s[i]))
			i++;
		for (j = i; i < n && is_tchar((unsigned char)s[i]); i++)
			;
		if (i == j)
			return 0;
		while (i < n && is_ows((unsigned char)s[i]))
			i++;
		if (i == n || s[i] != '=')
			return 0;
		i++;
		while (i < n && is_ows((unsigned char)s[i]))
			i++;
		if (i < n && s[i] == '"') {
			if (!(j = qstring_end(s, n, i)))
				return 0;
			i = j;
		} else {
			for (j = i; i < n && is_tchar((unsigned char)s[i]); i++)
				;
			if (i == j)
				return 0;
		}
	}
	return 1;
}

/*
 * Checks uri-host [ ":" port ] (RFC 9110 7.2, RFC 3986 3.2.2), stricter than
 * the URI grammar: a host name is letters, digits, '-', '.' and '_' (no
 * percent-encoding, no sub-delims: names that every hop reads the same
 * way), an IP literal is hex digits, ':' and '.' in brackets, and a port is
 * 1..65535 without leading zeros. NULL when fine, else what is wrong.
 */
static const char *authority_problem(const char *s, size_t n, int need_port)
{
	size_t i = 0, j;
	unsigned long port = 0;

	if (n == 0)
		return "is empty";
	if (memchr(s, '@', n))
		return "has userinfo (\"user@\"), which is refused (RFC 9110 4.2.4)";
	if (s[0] == '[') {
		for (i = 1; i < n && s[i] != ']'; i++)
			if (zt_hex_value((unsigned char)s[i]) < 0 && s[i] != ':' && s[i] != '.')
				return "has a byte that cannot be in an IPv6 literal";
		if (i == n)
			return "has a '[' without ']'";
		if (i == 1)
			return "has an empty IPv6 literal";
		i++;
	} else {
		for (; i < n && s[i] != ':'; i++) {
			unsigned char c = (unsigned char)s[i];

			if (!is_alpha(c) && !is_digit(c) && c != '-' && c != '.' && c != '_')
				return "has a byte that cannot be in a host name";
		}
		if (i == 0)
			return "has an empty host name";
	}
	if (i > 255)
		return "has a host longer than 255 bytes";
	if (i == n)
		return need_port ? "has no port" : NULL;
	if (s[i] != ':')
		return "has bytes after the IPv6 literal";
	i++;
	if (i == n)
		return "has an empty port";
	if (n - i > 5)
		return "has a port longer than 5 digits";
	if (s[i] == '0')
		return "has a port that is 0 or starts with 0";
	for (j = i; j < n; j++) {
		if (!is_digit((unsigned char)s[j]))
			return "has a port that is not a number";
		port = port * 10 + (unsigned long)(s[j] - '0');
	}
	if (port > 65535)
		return "has a port above 65535";
	return NULL;
}

/* ---- errors ------------------------------------------------------------ */

/* One head being parsed. */
struct pctx {
	const unsigned char *p;
	size_t n;     /* bytes of the head, once known */
	const zt_http1_limits *lim;
	int resp;     /* a response: every error is a 502 */
	int status;   /* the status to answer, set with the error */
	zt_err *e;
};

static int perr(struct pctx *c, int http, const char *rule, const char *fmt, ...)
    ZT_PRINTF(4, 5);

/*
 * Records a refusal. Requests answer `http`; a proxy answers any broken
 * upstream response with 502 (RFC 9112 6.3, 5.2).
 */
static int perr(struct pctx *c, int http, const char *rule, const char *fmt, ...)
{
	char msg[ZT_ERR_MSG_MAX - 32];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	c->status = c->resp ? 502 : http;
	return zt_err_rule(c->e, http == 414 || http == 431 ? ZT_ELIMIT : ZT_EPARSE, rule,
			   "%s%s", c->resp ? "upstream response: " : "", msg);
}

/* Untrusted bytes made printable for a message. */
static const char *quote(char *out, size_t outsz, const void *p, size_t n)
{
	zt_quote(out, outsz, p, n);
	return out;
}

/* ---- finding the end of a head ---------------------------------------- */

/*
 * Walks p[*scanned .. len) (see zt_http1_parse_request) checking that
 * every LF follows a CR and every CR precedes an LF (RFC 9112 2.2: we
 * refuse bare CR and bare LF rather than guess, because hops that guess
 * differently split requests differently), until the first empty line.
 * 0 and *end (bytes of the head) when found, ZT_HTTP1_INCOMPLETE, or an
 * error. Only this pass says "incomplete", and it refuses only what no
 * further byte can make valid, so every prefix of a valid head is
 * incomplete.
 */
static int scan_head(struct pctx *c, size_t len, size_t *scanned, size_t *end)
{
	const unsigned char *p = c->p;
	size_t max_head = c->lim->max_head;
	size_t limit = len < max_head ? len : max_head;
	/* RFC 9112 2.2: one empty line before a request line is skipped */
	size_t skip = !c->resp && len >= 2 && p[0] == '\r' && p[1] == '\n' ? 2 : 0;
	/* the start line's LF must come before this offset */
	size_t line_cap = skip + c->lim->max_line + 2;
	size_t i = scanned && *scanned <= len ? *scanned : 0;
	char q[64];

	for (; i < limit; i++) {
		unsigned char ch = p[i];

		if (ch == '\n') {
			if (i == 0 || p[i - 1] != '\r')
				return perr(c, 400, "http-bare-lf",
					    "bare LF (an LF without CR before it) at byte %zu of the head (RFC 9112 2.2); end every line with CRLF",
					    i);
			if (i >= 3 && p[i - 2] == '\n' && p[i - 3] == '\r') {
				*end = i + 1;
				return 0;
			}
		} else if (ch == '\r') {
			/* its LF may be in the next read; past max_head, the next
			 * byte is never looked at, so the verdict (431) does not
			 * depend on how the bytes arrived */
			if (i + 1 == limit)
				break;
			if (p[i + 1] != '\n')
				return perr(c, 400, "http-bare-cr",
					    "bare CR (a CR not followed by LF) at byte %zu of the head, before \"%s\" (RFC 9112 2.2); end every line with CRLF and send no other CR",
					    i, quote(q, sizeof q, p + i + 1, len - i - 1 < 8 ? len - i - 1 : 8));
		}
		if (i + 1 == line_cap && !memchr(p + skip, '\n', line_cap - skip)) {
			if (c->resp)
				return perr(c, 502, "http-line-too-long",
					    "the status line is longer than %zu bytes",
					    c->lim->max_line);
			return perr(c, 414, "http-line-too-long",
				    "the request line is longer than %zu bytes (RFC 9112 3); send a shorter target, or move data into the body",
				    c->lim->max_line);
		}
	}
	if (len >= max_head)
		return perr(c, 431, "http-head-too-large",
			    "the head (start line and header fields) is larger than %zu bytes (RFC 6585 5); send fewer or smaller header fields",
			    max_head);
	if (scanned)
		*scanned = i;
	return ZT_HTTP1_INCOMPLETE;
}

/*
 * The line at pos: *len bytes before its CRLF, *next where the line after
 * it begins. Rechecks the line ending (scan_head already did).
 */
static int next_line(struct pctx *c, size_t pos, size_t *len, size_t *next)
{
	const unsigned char *lf = pos < c->n ? memchr(c->p + pos, '\n', c->n - pos) : NULL;
	size_t at;

	if (!lf)
		return perr(c, 400, "http-bare-lf", "the head has no final CRLF; end it with an empty line");
	at = (size_t)(lf - c->p);
	if (at == pos || c->p[at - 1] != '\r')
		return perr(c, 400, "http-bare-lf",
			    "bare LF at byte %zu of the head (RFC 9112 2.2); end every line with CRLF", at);
	*len = at - 1 - pos;
	*next = at + 1;
	return 0;
}

/* ---- field lines ------------------------------------------------------- */

/* What the fields of one head say, gathered before judging them together. */
struct hinfo {
	size_t n_host, n_cl, n_te;
	const zt_http1_field *host, *cl;
	uint64_t cl_value;
	int te_chunked;      /* times "chunked" was listed */
	int te_last_chunked; /* the final coding is chunked */
	int te_other;        /* a coding other than chunked was listed */
	const zt_http1_field *te_other_field;
	int conn_close, conn_keep_alive;
	int expect_continue;
	const zt_http1_field *expect_other;
	int upgrade;
};

/* Content-Length = 1*DIGIT (RFC 9110 8.6); no sign, space or list. */
static int take_content_length(struct pctx *c, const zt_http1_field *f, struct hinfo *h)
{
	char q[80], q2[80];
	uint64_t v = 0;

	if (h->n_cl++)
		return perr(c, 400, "http-cl-dup",
			    "two Content-Length headers (\"%s\" and \"%s\"; RFC 9110 8.6, RFC 9112 6.3): the body length is ambiguous; send exactly one",
			    quote(q, sizeof q, h->cl->value, h->cl->value_len),
			    quote(q2, sizeof q2, f->value, f->value_len));
	h->cl = f;
	if (f->value_len == 0)
		return perr(c, 400, "http-content-length",
			    "empty Content-Length (RFC 9110 8.6); send the body length in decimal");
	for (size_t i = 0; i < f->value_len; i++) {
		unsigned char d = (unsigned char)f->value[i];

		if (!is_digit(d))
			return perr(c, 400, "http-content-length",
				    "Content-Length \"%s\" is not a decimal number (1*DIGIT, RFC 9110 8.6: no sign, space or list); send one plain number",
				    quote(q, sizeof q, f->value, f->value_len));
		/* compared before multiplying: v * 10 could wrap 64 bits */
		if (v > (ZT_HTTP1_MAX_LENGTH - (uint64_t)(d - '0')) / 10)
			return perr(c, 400, "http-content-length",
				    "Content-Length \"%s\" is above 2^62 bytes; send a smaller body",
				    quote(q, sizeof q, f->value, f->value_len));
		v = v * 10 + (uint64_t)(d - '0');
	}
	h->cl_value = v;
	return 0;
}

/*
 * Transfer-Encoding = #transfer-coding (RFC 9112 6.1). Several field lines
 * are one list, in order. Empty elements are refused (stricter than RFC
 * 9110 5.6.1: no hop can read "chunked," differently from us then).
 */
static int take_transfer_encoding(struct pctx *c, const zt_http1_field *f, struct hinfo *h)
{
	size_t pos = 0, el_len, i;
	const char *el;
	char q[120];
	int r;

	h->n_te++;
	while ((r = list_next(f->value, f->value_len, &pos, &el, &el_len)) > 0) {
		for (i = 0; i < el_len && is_tchar((unsigned char)el[i]); i++)
			;
		if (el_len == 0 || i == 0 || (i < el_len && !params_ok(el + i, el_len - i)))
			return perr(c, 400, "http-te",
				    "Transfer-Encoding \"%s\" is not a list of transfer codings (RFC 9112 6.1, RFC 9110 10.1.4); send \"Transfer-Encoding: chunked\"",
				    quote(q, sizeof q, f->value, f->value_len));
		if (name_eq_n(el, i, "chunked", 7)) {
			/* RFC 9112 7.1: chunked has no parameters */
			if (i < el_len)
				return perr(c, 400, "http-te",
					    "Transfer-Encoding \"%s\" gives chunked parameters, which it has none of (RFC 9112 7.1); send plain \"chunked\"",
					    quote(q, sizeof q, f->value, f->value_len));
			h->te_chunked++;
			h->te_last_chunked = 1;
		} else {
			h->te_other = 1;
			h->te_other_field = f;
			h->te_last_chunked = 0;
		}
	}
	if (r < 0)
		return perr(c, 400, "http-te",
			    "Transfer-Encoding \"%s\" has an unterminated quoted string; send \"Transfer-Encoding: chunked\"",
			    quote(q, sizeof q, f->value, f->value_len));
	return 0;
}

/* Connection = #connection-option, each a token (RFC 9110 7.6.1). */
static int take_connection(struct pctx *c, const zt_http1_field *f, struct hinfo *h)
{
	size_t pos = 0, el_len, i;
	const char *el;
	char q[120];

	while (list_next(f->value, f->value_len, &pos, &el, &el_len) > 0) {
		for (i = 0; i < el_len && is_tchar((unsigned char)el[i]); i++)
			;
		if (i < el_len)
			return perr(c, 400, "http-connection",
				    "Connection \"%s\" is not a list of tokens (RFC 9110 7.6.1); send e.g. \"Connection: close\"",
				    quote(q, sizeof q, f->value, f->value_len));
		if (name_eq_n(el, el_len, "close", 5))
			h->conn_close = 1;
		else if (name_eq_n(el, el_len, "keep-alive", 10))
			h->conn_keep_alive = 1;
	}
	return 0;
}

/* Expect = #expectation; only 100-continue exists (RFC 9110 10.1.1). */
static void take_expect(const zt_http1_field *f, struct hinfo *h)
{
	size_t pos = 0, el_len;
	const char *el;
	int r;

	while ((r = list_next(f->value, f->value_len, &pos, &el, &el_len)) > 0) {
		if (el_len == 0)
			continue;
		if (name_eq_n(el, el_len, "100-continue", 12))
			h->expect_continue = 1;
		else if (!h->expect_other)
			h->expect_other = f;
	}
	if (r < 0 && !h->expect_other)
		h->expect_other = f;
}

static int take_field(struct pctx *c, const zt_http1_field *f, struct hinfo *h)
{
	char q[80], q2[80];

	if (zt_http1_name_eq(f->name, f->name_len, "content-length"))
		return take_content_length(c, f, h);
	if (zt_http1_name_eq(f->name, f->name_len, "transfer-encoding"))
		return take_transfer_encoding(c, f, h);
	if (zt_http1_name_eq(f->name, f->name_len, "connection"))
		return take_connection(c, f, h);
	if (zt_http1_name_eq(f->name, f->name_len, "upgrade")) {
		h->upgrade = 1;
		return 0;
	}
	if (c->resp)
		return 0;
	if (zt_http1_name_eq(f->name, f->name_len, "host")) {
		if (h->n_host++)
			return perr(c, 400, "http-host-dup",
				    "two Host headers (\"%s\" and \"%s\"; RFC 9112 3.2); send exactly one",
				    quote(q, sizeof q, h->host->value, h->host->value_len),
				    quote(q2, sizeof q2, f->value, f->value_len));
		h->host = f;
	} else if (zt_http1_name_eq(f->name, f->name_len, "expect")) {
		take_expect(f, h);
	}
	return 0;
}

/*
 * Parses the field lines from pos to the empty line that ends the head
 * (RFC 9112 5): field-name ":" OWS field-value OWS.
 */
static int parse_fields(struct pctx *c, size_t pos, zt_http1_field *fields, size_t *nfields,
			struct hinfo *h)
{
	const unsigned char *p = c->p;
	size_t ll, next, i, j, vs, ve;
	char q[80];
	int r;

	for (;;) {
		if ((r = next_line(c, pos, &ll, &next)) != 0)
			return r;
		if (ll == 0) {
			c->n = next; /* the head ends with this empty line */
			return 0;
		}
		const unsigned char *line = p + pos;

		if (*nfields >= c->lim->max_fields)
			return perr(c, 431, "http-too-many-fields",
				    "more than %zu header fields (RFC 6585 5); send fewer",
				    c->lim->max_fields);
		if (is_ows(line[0]))
			return perr(c, 400, "http-obs-fold",
				    "obsolete line folding (RFC 9112 5.2): the line \"%s\" starts with whitespace%s; send each field on one line",
				    quote(q, sizeof q, line, ll),
				    *nfields ? ", continuing the field before it" :
					       " right after the start line (RFC 9112 2.2)");
		for (i = 0; i < ll && is_tchar(line[i]); i++)
			;
		for (j = i; j < ll && is_ows(line[j]); j++)
			;
		if (j > i && j < ll && line[j] == ':')
			return perr(c, 400, "http-field-ws",
				    "whitespace between header name and colon in \"%s\" (RFC 9112 5.1); write \"Name: value\"",
				    quote(q, sizeof q, line, ll));
		if (i == ll)
			return perr(c, 400, "http-field-name",
				    "header line \"%s\" has no colon (RFC 9112 5); write \"Name: value\"",
				    quote(q, sizeof q, line, ll));
		if (line[i] != ':')
			return perr(c, 400, "http-field-name",
				    "header line \"%s\" has a byte that cannot be in a field name at byte %zu (a token, RFC 9110 5.1); write \"Name: value\"",
				    quote(q, sizeof q, line, ll), i);
		if (i == 0)
			return perr(c, 400, "http-field-name",
				    "header line \"%s\" has an empty name (RFC 9110 5.1); write \"Name: value\"",
				    quote(q, sizeof q, line, ll));
		for (j = i + 1; j < ll; j++) {
			if (is_field_char(line[j]))
				continue;
			/* RFC 9110 5.5: CR, LF and NUL are invalid and dangerous;
			 * other controls invalid too, refused as well */
			return perr(c, 400, "http-field-value",
				    "%s in the value of header \"%s\" at byte %zu (RFC 9110 5.5); send only visible characters, spaces and tabs",
				    line[j] == 0 ? "NUL" : "a control character",
				    quote(q, sizeof q, line, i), j);
		}
		vs = i + 1;
		ve = ll;
		while (vs < ve && is_ows(line[vs]))
			vs++;
		while (ve > vs && is_ows(line[ve - 1]))
			ve--;
		zt_http1_field *f = &fields[(*nfields)++];

		f->name = (const char *)line;
		f->name_len = i;
		f->value = (const char *)line + vs;
		f->value_len = ve - vs;
		if ((r = take_field(c, f, h)) != 0)
			return r;
		pos = next;
	}
}

/* ---- start lines ------------------------------------------------------- */

/* HTTP-version = "HTTP/" DIGIT "." DIGIT, case-sensitive (RFC 9112 2.3).
 * 10 or 11; -1 when malformed; -2 when well-formed but another version. */
static int parse_version(const unsigned char *v, size_t n)
{
	if (n != 8 || memcmp(v, "HTTP/", 5) != 0 || !is_digit(v[5]) || v[6] != '.' ||
	    !is_digit(v[7]))
		return -1;
	if (v[5] == '1' && v[7] == '1')
		return 11;
	if (v[5] == '1' && v[7] == '0')
		return 10;
	return -2;
}

static int version_error(struct pctx *c, int v, const unsigned char *s, size_t n)
{
	char q[40];

	if (v == -2)
		return perr(c, 505, "http-version-unsupported",
			    "HTTP version \"%s\" is not supported (RFC 9110 15.6.6); speak HTTP/1.1 or HTTP/1.0",
			    quote(q, sizeof q, s, n));
	return perr(c, 400, "http-version",
		    "\"%s\" is not an HTTP version (\"HTTP/\" DIGIT \".\" DIGIT, case-sensitive, RFC 9112 2.3); send \"HTTP/1.1\"",
		    quote(q, sizeof q, s, n));
}

/* absolute-form (RFC 9112 3.2.2): scheme "://" authority [ path-abempty ] [ "?" query ]. */
static int parse_absolute(struct pctx *c, zt_http1_request *r)
{
	const char *t = r->target;
	size_t n = r->target_len, i = 0, a, end;
	const char *why;
	char q[120];

	if (is_alpha((unsigned char)t[0]))
		for (i = 1; i < n && (is_alpha((unsigned char)t[i]) || is_digit((unsigned char)t[i]) ||
				      t[i] == '+' || t[i] == '-' || t[i] == '.');
		     i++)
			;
	if (i == 0 || i == n || t[i] != ':')
		return perr(c, 400, "http-target",
			    "request target \"%s\" is neither a path (\"/...\"), an absolute URI (\"http://host/...\") nor \"*\" (RFC 9112 3.2)",
			    quote(q, sizeof q, t, n));
	if (n - i < 3 || t[i + 1] != '/' || t[i + 2] != '/')
		return perr(c, 400, "http-target",
			    "absolute request target \"%s\" has no \"//authority\" (RFC 9112 3.2.2); send \"scheme://host[:port]/path\"",
			    quote(q, sizeof q, t, n));
	a = i + 3;
	for (end = a; end < n && t[end] != '/' && t[end] != '?'; end++)
		;
	if ((why = authority_problem(t + a, end - a, 0)) != NULL)
		return perr(c, 400, "http-target",
			    "the authority of request target \"%s\" %s; send \"scheme://host[:port]/path\"",
			    quote(q, sizeof q, t, n), why);
	r->form = ZT_HTTP1_ABSOLUTE_FORM;
	r->authority = t + a;
	r->authority_len = end - a;
	r->path = t + end;
	r->path_len = n - end;
	return 0;
}

static int parse_target(struct pctx *c, zt_http1_request *r)
{
	const unsigned char *t = (const unsigned char *)r->target;
	size_t n = r->target_len;
	const char *why;
	char q[120];

	for (size_t i = 0; i < n; i++) {
		if (t[i] < 0x21 || t[i] > 0x7e)
			return perr(c, 400, "http-target",
				    "request target \"%s\" has a control, space or non-ASCII byte at byte %zu (RFC 9112 3.2, RFC 3986 2); percent-encode it",
				    quote(q, sizeof q, t, n), i);
		if (t[i] == '#')
			return perr(c, 400, "http-target",
				    "request target \"%s\" has a fragment ('#'), which is never sent (RFC 9112 3.2); drop it or send \"%%23\"",
				    quote(q, sizeof q, t, n));
	}
	if (r->method_flags & ZT_HTTP1_METHOD_CONNECT) {
		/* RFC 9112 3.2.3: CONNECT takes authority-form and only that */
		if ((why = authority_problem(r->target, n, 1)) != NULL)
			return perr(c, 400, "http-target",
				    "CONNECT target \"%s\" %s; send \"host:port\" (authority-form, RFC 9112 3.2.3)",
				    quote(q, sizeof q, t, n), why);
		r->form = ZT_HTTP1_AUTHORITY_FORM;
		r->authority = r->target;
		r->authority_len = n;
		return 0;
	}
	if (t[0] == '/') {
		r->form = ZT_HTTP1_ORIGIN_FORM;
		r->path = r->target;
		r->path_len = n;
		return 0;
	}
	if (n == 1 && t[0] == '*') {
		/* RFC 9112 3.2.4: only a server-wide OPTIONS */
		if (r->method_len != 7 || memcmp(r->method, "OPTIONS", 7) != 0)
			return perr(c, 400, "http-target",
				    "request target \"*\" is only for OPTIONS (RFC 9112 3.2.4); send a path");
		r->form = ZT_HTTP1_ASTERISK_FORM;
		return 0;
	}
	return parse_absolute(c, r);
}

/* request-line = method SP request-target SP HTTP-version (RFC 9112 3). */
static int parse_request_line(struct pctx *c, zt_http1_request *r, size_t *pos)
{
	const unsigned char *p = c->p, *line, *sp2, *v;
	size_t start = 0, ll, next, i, vl;
	char q[120];
	int ret, ver;

	if (c->n >= 2 && p[0] == '\r' && p[1] == '\n')
		start = 2; /* RFC 9112 2.2: one empty line before it is ignored */
	if ((ret = next_line(c, start, &ll, &next)) != 0)
		return ret;
	if (ll == 0)
		return perr(c, 400, "http-empty-lines",
			    "more than one empty line before the request line (RFC 9112 2.2 skips one); send the request line first");
	if (ll > c->lim->max_line)
		return perr(c, 414, "http-line-too-long",
			    "the request line is longer than %zu bytes (RFC 9112 3); send a shorter target, or move data into the body",
			    c->lim->max_line);
	line = p + start;
	for (i = 0; i < ll && is_tchar(line[i]); i++)
		;
	if (i == 0 || i == ll || line[i] != ' ')
		return perr(c, 400, i > 0 && i < ll && is_ows(line[i]) ? "http-request-line" : "http-method",
			    "request line \"%s\" does not start with a method token and one space (RFC 9112 3); send \"METHOD /path HTTP/1.1\"",
			    quote(q, sizeof q, line, ll));
	r->method = (const char *)line;
	r->method_len = i;
	if (i == 4 && memcmp(line, "HEAD", 4) == 0)
		r->method_flags = ZT_HTTP1_METHOD_HEAD;
	else if (i == 7 && memcmp(line, "CONNECT", 7) == 0)
		r->method_flags = ZT_HTTP1_METHOD_CONNECT;
	sp2 = memchr(line + i + 1, ' ', ll - i - 1);
	if (!sp2 || sp2 == line + i + 1)
		return perr(c, 400, "http-request-line",
			    "request line \"%s\" is not method SP target SP version, with single spaces (RFC 9112 3); send \"METHOD /path HTTP/1.1\"",
			    quote(q, sizeof q, line, ll));
	v = sp2 + 1;
	vl = (size_t)(line + ll - v);
	if (memchr(v, ' ', vl))
		return perr(c, 400, "http-request-line",
			    "request line \"%s\" has more than two spaces (whitespace in the target? RFC 9112 3.2); percent-encode spaces in the target",
			    quote(q, sizeof q, line, ll));
	if ((ver = parse_version(v, vl)) < 0)
		return version_error(c, ver, v, vl);
	r->version = ver;
	r->target = (const char *)line + i + 1;
	r->target_len = (size_t)(sp2 - (line + i + 1));
	if ((ret = parse_target(c, r)) != 0)
		return ret;
	*pos = next;
	return 0;
}

/* ---- requests ---------------------------------------------------------- */

/* The fields judged together: Host, framing (RFC 9112 6), Expect. */
static int finish_request(struct pctx *c, zt_http1_request *r, const struct hinfo *h)
{
	const char *why;
	char q[120];

	if (r->version == 11 && h->n_host == 0)
		return perr(c, 400, "http-host-missing",
			    "HTTP/1.1 request without a Host header (RFC 9112 3.2); send \"Host: host[:port]\"");
	if (h->host) {
		if ((why = authority_problem(h->host->value, h->host->value_len, 0)) != NULL)
			return perr(c, 400, "http-host",
				    "Host \"%s\" %s (RFC 9112 3.2, RFC 9110 7.2); send \"Host: host[:port]\"",
				    quote(q, sizeof q, h->host->value, h->host->value_len), why);
		r->host = h->host->value;
		r->host_len = h->host->value_len;
	}
	r->framing = ZT_HTTP1_BODY_NONE;
	if (h->n_te) {
		if (r->version == 10)
			return perr(c, 400, "http-te-http10",
				    "Transfer-Encoding in an HTTP/1.0 request (RFC 9112 6.1): its framing cannot be trusted; send Content-Length, or speak HTTP/1.1");
		if (h->n_cl)
			return perr(c, 400, "http-te-cl",
				    "Transfer-Encoding with Content-Length (RFC 9112 6.1): the body length is ambiguous (request smuggling); send only one of them");
		if (!h->te_last_chunked)
			return perr(c, 400, "http-te",
				    "the final transfer coding is not chunked, so the body length cannot be known (RFC 9112 6.3); send \"Transfer-Encoding: chunked\"");
		if (h->te_chunked > 1)
			return perr(c, 400, "http-te",
				    "chunked is applied more than once (RFC 9112 6.1); list it once");
		if (h->te_other)
			return perr(c, 501, "http-te-unsupported",
				    "transfer coding \"%s\" is not supported, only chunked (RFC 9112 6.1); send the body with only \"Transfer-Encoding: chunked\"",
				    quote(q, sizeof q, h->te_other_field->value,
					  h->te_other_field->value_len));
		r->framing = ZT_HTTP1_BODY_CHUNKED;
	} else if (h->n_cl) {
		r->framing = ZT_HTTP1_BODY_LENGTH;
		r->content_length = h->cl_value;
	}
	/* RFC 9110 9.3.6: a CONNECT request has no content */
	if ((r->method_flags & ZT_HTTP1_METHOD_CONNECT) &&
	    (r->framing == ZT_HTTP1_BODY_CHUNKED || r->content_length > 0))
		return perr(c, 400, "http-connect-body",
			    "a CONNECT request with a body (RFC 9110 9.3.6); send the tunnel's bytes after the 2xx response");
	if (h->expect_other)
		return perr(c, 417, "http-expect",
			    "Expect \"%s\" cannot be met (RFC 9110 10.1.1); only \"100-continue\" is supported",
			    quote(q, sizeof q, h->expect_other->value, h->expect_other->value_len));
	/* RFC 9110 10.1.1: 100-continue in HTTP/1.0 is ignored */
	r->expect_continue = h->expect_continue && r->version == 11;
	r->upgrade = h->upgrade;
	/* RFC 9112 9.3: persistent by default in 1.1, by keep-alive in 1.0 */
	r->keep_alive = r->version == 11 ? !h->conn_close : h->conn_keep_alive && !h->conn_close;
	return 0;
}

static int parse_request_head(struct pctx *c, zt_http1_request *r)
{
	struct hinfo h;
	size_t pos = 0;
	int ret;

	memset(&h, 0, sizeof h);
	if ((ret = parse_request_line(c, r, &pos)) != 0)
		return ret;
	if ((ret = parse_fields(c, pos, r->fields, &r->nfields, &h)) != 0)
		return ret;
	if ((ret = finish_request(c, r, &h)) != 0)
		return ret;
	r->head_len = c->n;
	return 0;
}

int zt_http1_parse_request(const void *buf, size_t len, const zt_http1_limits *lim,
			   size_t *scanned, zt_http1_request *req, zt_err *e)
{
	zt_http1_limits l;
	struct pctx c;
	size_t end = 0;
	int r;

	memset(req, 0, offsetof(zt_http1_request, fields));
	limits_fill(&l, lim);
	if (l.max_fields > ZT_HTTP1_MAX_FIELDS)
		l.max_fields = ZT_HTTP1_MAX_FIELDS;
	c = (struct pctx){ .p = buf, .lim = &l, .e = e };
	r = scan_head(&c, len, scanned, &end);
	if (r == ZT_HTTP1_INCOMPLETE)
		return r;
	if (r == 0) {
		c.n = end;
		r = parse_request_head(&c, req);
	}
	if (scanned)
		*scanned = 0;
	if (r != 0) {
		memset(req, 0, offsetof(zt_http1_request, fields));
		req->err_status = c.status;
	}
	return r;
}

/* ---- responses --------------------------------------------------------- */

/* status-line = HTTP-version SP status-code SP [ reason-phrase ] (RFC 9112 4). */
static int parse_status_line(struct pctx *c, zt_http1_response *r, size_t *pos)
{
	const unsigned char *line = c->p, *sp;
	size_t ll, next, i, vlen;
	char q[120];
	int ret, ver;

	if ((ret = next_line(c, 0, &ll, &next)) != 0)
		return ret;
	if (ll > c->lim->max_line)
		return perr(c, 502, "http-line-too-long", "the status line is longer than %zu bytes",
			    c->lim->max_line);
	sp = memchr(line, ' ', ll);
	vlen = sp ? (size_t)(sp - line) : ll;
	if ((ver = parse_version(line, vlen)) < 0)
		return version_error(c, ver, line, vlen);
	/* here vlen is 8 */
	if (!sp || ll < 12 || !is_digit(line[9]) || !is_digit(line[10]) || !is_digit(line[11]) ||
	    (ll > 12 && line[12] != ' '))
		return perr(c, 502, "http-status-line",
			    "status line \"%s\" is not \"HTTP/1.1 NNN reason\" (RFC 9112 4)",
			    quote(q, sizeof q, line, ll));
	r->version = ver;
	r->status = (line[9] - '0') * 100 + (line[10] - '0') * 10 + (line[11] - '0');
	if (r->status < 100 || r->status > 599)
		return perr(c, 502, "http-status-line",
			    "status code %03d is outside 100..599 (RFC 9110 15)", r->status);
	/* "HTTP/1.1 200" without the SP RFC 9112 4 asks for: an empty reason */
	r->reason = (const char *)line + (ll > 12 ? 13 : 12);
	r->reason_len = ll > 12 ? ll - 13 : 0;
	for (i = 0; i < r->reason_len; i++)
		if (!is_field_char((unsigned char)r->reason[i]))
			return perr(c, 502, "http-status-line",
				    "status line \"%s\" has a control byte in its reason phrase (RFC 9112 4)",
				    quote(q, sizeof q, line, ll));
	*pos = next;
	return 0;
}

/* The body length of a response, RFC 9112 6.3 in its order. */
static int finish_response(struct pctx *c, zt_http1_response *r, const struct hinfo *h,
			   unsigned method_flags)
{
	int base;

	if (h->n_te) {
		if (r->version == 10)
			return perr(c, 502, "http-te-http10",
				    "Transfer-Encoding in an HTTP/1.0 response: its framing cannot be trusted (RFC 9112 6.1)");
		if (h->n_cl)
			return perr(c, 502, "http-te-cl",
				    "Transfer-Encoding with Content-Length (RFC 9112 6.1, 6.3): the body length is ambiguous");
		if (h->te_chunked > 1)
			return perr(c, 502, "http-te",
				    "chunked is applied more than once (RFC 9112 6.1)");
	}
	base = r->version == 11 ? !h->conn_close : h->conn_keep_alive && !h->conn_close;
	r->upgrade = h->upgrade;
	if (r->status / 100 == 1) {
		/* 101: the connection speaks another protocol after the head */
		r->framing = r->status == 101 ? ZT_HTTP1_BODY_TUNNEL : ZT_HTTP1_BODY_NONE;
		r->interim = r->status != 101;
	} else if ((method_flags & ZT_HTTP1_METHOD_CONNECT) && r->status / 100 == 2) {
		r->framing = ZT_HTTP1_BODY_TUNNEL;
	} else if ((method_flags & ZT_HTTP1_METHOD_HEAD) || r->status == 204 ||
		   r->status == 304) {
		r->framing = ZT_HTTP1_BODY_NONE;
	} else if (h->n_te) {
		r->framing = h->te_last_chunked ? ZT_HTTP1_BODY_CHUNKED : ZT_HTTP1_BODY_CLOSE;
	} else if (h->n_cl) {
		r->framing = ZT_HTTP1_BODY_LENGTH;
		r->content_length = h->cl_value;
	} else {
		r->framing = ZT_HTTP1_BODY_CLOSE;
	}
	r->keep_alive = base && r->framing != ZT_HTTP1_BODY_CLOSE &&
			r->framing != ZT_HTTP1_BODY_TUNNEL;
	return 0;
}

int zt_http1_parse_response(const void *buf, size_t len, const zt_http1_limits *lim,
			    unsigned method_flags, size_t *scanned, zt_http1_response *resp,
			    zt_err *e)
{
	zt_http1_limits l;
	struct pctx c;
	struct hinfo h;
	size_t end = 0, pos = 0;
	int r;

	memset(resp, 0, offsetof(zt_http1_response, fields));
	memset(&h, 0, sizeof h);
	limits_fill(&l, lim);
	if (l.max_fields > ZT_HTTP1_MAX_FIELDS)
		l.max_fields = ZT_HTTP1_MAX_FIELDS;
	c = (struct pctx){ .p = buf, .lim = &l, .resp = 1, .e = e };
	r = scan_head(&c, len, scanned, &end);
	if (r == ZT_HTTP1_INCOMPLETE)
		return r;
	if (r == 0) {
		c.n = end;
		r = parse_status_line(&c, resp, &pos);
	}
	if (r == 0)
		r = parse_fields(&c, pos, resp->fields, &resp->nfields, &h);
	if (r == 0)
		r = finish_response(&c, resp, &h, method_flags);
	if (scanned)
		*scanned = 0;
	if (r != 0) {
		memset(resp, 0, offsetof(zt_http1_response, fields));
		resp->err_status = c.status;
		return r;
	}
	resp->head_len = c.n;
	return 0;
}

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

	limits_fill(&l, lim);
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
					    quote(q, sizeof q, &ch, 1));
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
					    quote(q, sizeof q, &ch, 1));
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
					    quote(q, sizeof q, &ch, 1));
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
					    quote(q, sizeof q, &ch, 1));
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
					    quote(q, sizeof q, &ch, 1));
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
		    quote(q, sizeof q, p + i, 1));
fail:
	c->state = CK_ERROR;
	if (!c->err_status)
		c->err_status = c->response ? 502 : 400;
	*consumed = 0;
	*data_off = 0;
	*data_len = 0;
	return r;
}

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
			   what, quote(q, sizeof q, s, n));
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
	return connection_has_n(o->fields, o->nfields, f->name, f->name_len);
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
