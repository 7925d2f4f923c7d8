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
 * Chunked bodies are http1_chunked.c's, the writers http1_write.c's.
 */
#include "net/http1_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

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

void http1_limits_fill(zt_http1_limits *out, const zt_http1_limits *in)
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

int http1_connection_has_n(const zt_http1_field *f, size_t n, const char *tok, size_t tok_len)
{
	for (size_t i = 0; i < n; i++)
		if (zt_http1_name_eq(f[i].name, f[i].name_len, "connection") &&
		    list_has_n(f[i].value, f[i].value_len, tok, tok_len))
			return 1;
	return 0;
}

int zt_http1_connection_has(const zt_http1_field *fields, size_t n, const char *token)
{
	return http1_connection_has_n(fields, n, token, strlen(token));
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
const char *http1_quote(char *out, size_t outsz, const void *p, size_t n)
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
					    i, http1_quote(q, sizeof q, p + i + 1, len - i - 1 < 8 ? len - i - 1 : 8));
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
			    http1_quote(q, sizeof q, h->cl->value, h->cl->value_len),
			    http1_quote(q2, sizeof q2, f->value, f->value_len));
	h->cl = f;
	if (f->value_len == 0)
		return perr(c, 400, "http-content-length",
			    "empty Content-Length (RFC 9110 8.6); send the body length in decimal");
	for (size_t i = 0; i < f->value_len; i++) {
		unsigned char d = (unsigned char)f->value[i];

		if (!is_digit(d))
			return perr(c, 400, "http-content-length",
				    "Content-Length \"%s\" is not a decimal number (1*DIGIT, RFC 9110 8.6: no sign, space or list); send one plain number",
				    http1_quote(q, sizeof q, f->value, f->value_len));
		/* compared before multiplying: v * 10 could wrap 64 bits */
		if (v > (ZT_HTTP1_MAX_LENGTH - (uint64_t)(d - '0')) / 10)
			return perr(c, 400, "http-content-length",
				    "Content-Length \"%s\" is above 2^62 bytes; send a smaller body",
				    http1_quote(q, sizeof q, f->value, f->value_len));
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
				    http1_quote(q, sizeof q, f->value, f->value_len));
		if (name_eq_n(el, i, "chunked", 7)) {
			/* RFC 9112 7.1: chunked has no parameters */
			if (i < el_len)
				return perr(c, 400, "http-te",
					    "Transfer-Encoding \"%s\" gives chunked parameters, which it has none of (RFC 9112 7.1); send plain \"chunked\"",
					    http1_quote(q, sizeof q, f->value, f->value_len));
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
			    http1_quote(q, sizeof q, f->value, f->value_len));
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
				    http1_quote(q, sizeof q, f->value, f->value_len));
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
				    http1_quote(q, sizeof q, h->host->value, h->host->value_len),
				    http1_quote(q2, sizeof q2, f->value, f->value_len));
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
				    http1_quote(q, sizeof q, line, ll),
				    *nfields ? ", continuing the field before it" :
					       " right after the start line (RFC 9112 2.2)");
		for (i = 0; i < ll && is_tchar(line[i]); i++)
			;
		for (j = i; j < ll && is_ows(line[j]); j++)
			;
		if (j > i && j < ll && line[j] == ':')
			return perr(c, 400, "http-field-ws",
				    "whitespace between header name and colon in \"%s\" (RFC 9112 5.1); write \"Name: value\"",
				    http1_quote(q, sizeof q, line, ll));
		if (i == ll)
			return perr(c, 400, "http-field-name",
				    "header line \"%s\" has no colon (RFC 9112 5); write \"Name: value\"",
				    http1_quote(q, sizeof q, line, ll));
		if (line[i] != ':')
			return perr(c, 400, "http-field-name",
				    "header line \"%s\" has a byte that cannot be in a field name at byte %zu (a token, RFC 9110 5.1); write \"Name: value\"",
				    http1_quote(q, sizeof q, line, ll), i);
		if (i == 0)
			return perr(c, 400, "http-field-name",
				    "header line \"%s\" has an empty name (RFC 9110 5.1); write \"Name: value\"",
				    http1_quote(q, sizeof q, line, ll));
		for (j = i + 1; j < ll; j++) {
			if (is_field_char(line[j]))
				continue;
			/* RFC 9110 5.5: CR, LF and NUL are invalid and dangerous;
			 * other controls invalid too, refused as well */
			return perr(c, 400, "http-field-value",
				    "%s in the value of header \"%s\" at byte %zu (RFC 9110 5.5); send only visible characters, spaces and tabs",
				    line[j] == 0 ? "NUL" : "a control character",
				    http1_quote(q, sizeof q, line, i), j);
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
			    http1_quote(q, sizeof q, s, n));
	return perr(c, 400, "http-version",
		    "\"%s\" is not an HTTP version (\"HTTP/\" DIGIT \".\" DIGIT, case-sensitive, RFC 9112 2.3); send \"HTTP/1.1\"",
		    http1_quote(q, sizeof q, s, n));
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
			    http1_quote(q, sizeof q, t, n));
	if (n - i < 3 || t[i + 1] != '/' || t[i + 2] != '/')
		return perr(c, 400, "http-target",
			    "absolute request target \"%s\" has no \"//authority\" (RFC 9112 3.2.2); send \"scheme://host[:port]/path\"",
			    http1_quote(q, sizeof q, t, n));
	a = i + 3;
	for (end = a; end < n && t[end] != '/' && t[end] != '?'; end++)
		;
	if ((why = authority_problem(t + a, end - a, 0)) != NULL)
		return perr(c, 400, "http-target",
			    "the authority of request target \"%s\" %s; send \"scheme://host[:port]/path\"",
			    http1_quote(q, sizeof q, t, n), why);
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
				    http1_quote(q, sizeof q, t, n), i);
		if (t[i] == '#')
			return perr(c, 400, "http-target",
				    "request target \"%s\" has a fragment ('#'), which is never sent (RFC 9112 3.2); drop it or send \"%%23\"",
				    http1_quote(q, sizeof q, t, n));
	}
	if (r->method_flags & ZT_HTTP1_METHOD_CONNECT) {
		/* RFC 9112 3.2.3: CONNECT takes authority-form and only that */
		if ((why = authority_problem(r->target, n, 1)) != NULL)
			return perr(c, 400, "http-target",
				    "CONNECT target \"%s\" %s; send \"host:port\" (authority-form, RFC 9112 3.2.3)",
				    http1_quote(q, sizeof q, t, n), why);
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
			    http1_quote(q, sizeof q, line, ll));
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
			    http1_quote(q, sizeof q, line, ll));
	v = sp2 + 1;
	vl = (size_t)(line + ll - v);
	if (memchr(v, ' ', vl))
		return perr(c, 400, "http-request-line",
			    "request line \"%s\" has more than two spaces (whitespace in the target? RFC 9112 3.2); percent-encode spaces in the target",
			    http1_quote(q, sizeof q, line, ll));
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
				    http1_quote(q, sizeof q, h->host->value, h->host->value_len), why);
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
				    http1_quote(q, sizeof q, h->te_other_field->value,
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
			    http1_quote(q, sizeof q, h->expect_other->value, h->expect_other->value_len));
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
	http1_limits_fill(&l, lim);
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
			    http1_quote(q, sizeof q, line, ll));
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
				    http1_quote(q, sizeof q, line, ll));
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
	http1_limits_fill(&l, lim);
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
