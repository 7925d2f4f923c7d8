/* Unit tests: the strict HTTP/1.1 parser and writer (net/http1.c). */
#define ZT_TESTUTIL_NO_X509
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "net/http1.h"

#define S(lit) lit, sizeof(lit) - 1

/* A heap copy of exactly n bytes, so ASan sees any read past the input. */
static char *exact(const char *s, size_t n)
{
	char *p = malloc(n ? n : 1);

	assert_non_null(p);
	if (n)
		memcpy(p, s, n);
	return p;
}

static int preq_lim(const char *s, size_t n, const zt_http1_limits *lim, zt_http1_request *r,
		    zt_err *e)
{
	char *copy = exact(s, n);
	size_t scanned = 0;
	int rc;

	zt_err_clear(e);
	rc = zt_http1_parse_request(copy, n, lim, &scanned, r, e);
	if (rc != ZT_HTTP1_INCOMPLETE)
		assert_int_equal(scanned, 0);
	free(copy);
	/* again in s, which outlives the call, so r's pointers stay valid */
	if (rc == 0)
		assert_int_equal(zt_http1_parse_request(s, n, lim, NULL, r, e), 0);
	return rc;
}

static int preq(const char *s, size_t n, zt_http1_request *r, zt_err *e)
{
	return preq_lim(s, n, NULL, r, e);
}

/* A request head (n bytes, the whole buffer) that must parse. */
static void req_ok(const char *s, size_t n, zt_http1_request *r)
{
	zt_err e;
	int rc = preq(s, n, r, &e);

	if (rc != 0)
		fail_msg("refused (%d, status %d, %s): %s", rc, r->err_status, e.rule, e.msg);
	assert_int_equal(r->head_len, n);
	assert_int_equal(r->err_status, 0);
}

/* The parsed fields of a refused head are empty: nothing is consumed. */
static void assert_nothing(const zt_http1_request *r)
{
	assert_int_equal(r->head_len, 0);
	assert_int_equal(r->nfields, 0);
	assert_null(r->method);
	assert_null(r->target);
	assert_null(r->host);
	assert_int_equal(r->framing, ZT_HTTP1_BODY_NONE);
}

/*
 * A request that must be refused with `status`, `rule`, and a message
 * containing `why`; fed whole and then a byte at a time (with the resume
 * hint), which must give the same verdict and never an earlier success.
 */
static void req_bad_lim(const char *s, size_t n, const zt_http1_limits *lim, int status,
			const char *rule, const char *why)
{
	zt_http1_request r;
	zt_err e;
	size_t scanned = 0, k;
	int rc;

	memset(&r, 0x5a, sizeof r);
	rc = preq_lim(s, n, lim, &r, &e);
	if (rc >= 0)
		fail_msg("accepted (%d) \"%.*s\", expected %d %s", rc, (int)n, s, status, rule);
	if (r.err_status != status || strcmp(e.rule, rule) != 0)
		fail_msg("\"%.*s\": got %d %s (%s), expected %d %s", (int)n, s, r.err_status,
			 e.rule, e.msg, status, rule);
	if (why && !strstr(e.msg, why))
		fail_msg("\"%.*s\": message \"%s\" does not say \"%s\"", (int)n, s, e.msg, why);
	assert_true(rc == -ZT_EPARSE || rc == -ZT_ELIMIT);
	assert_nothing(&r);
	assert_null(strchr(e.msg, '\n'));
	assert_null(strchr(e.msg, '\r'));

	/* fed a byte at a time: incomplete, then the same refusal */
	for (k = 1; k <= n; k++) {
		char *copy = exact(s, k);

		rc = zt_http1_parse_request(copy, k, lim, &scanned, &r, &e);
		free(copy);
		if (rc == ZT_HTTP1_INCOMPLETE)
			continue;
		if (rc >= 0)
			fail_msg("prefix %zu of \"%.*s\" accepted", k, (int)n, s);
		if (r.err_status != status || strcmp(e.rule, rule) != 0)
			fail_msg("prefix %zu of \"%.*s\": %d %s, whole: %d %s", k, (int)n, s,
				 r.err_status, e.rule, status, rule);
		assert_nothing(&r);
		assert_int_equal(scanned, 0);
		break;
	}
	if (k > n)
		fail_msg("\"%.*s\" fed byte by byte was never refused", (int)n, s);
}

static void req_bad(const char *s, size_t n, int status, const char *rule, const char *why)
{
	req_bad_lim(s, n, NULL, status, rule, why);
}

static void assert_span(const char *p, size_t n, const char *want)
{
	if (n != strlen(want) || memcmp(p, want, n) != 0)
		fail_msg("got \"%.*s\", expected \"%s\"", (int)n, p ? p : "", want);
}

static void assert_field(const zt_http1_field *f, const char *name, const char *value)
{
	assert_span(f->name, f->name_len, name);
	assert_span(f->value, f->value_len, value);
}

/* ---- valid requests ---------------------------------------------------- */

static void test_get(void **state)
{
	static const char in[] = "GET /index.html?q=1 HTTP/1.1\r\nHost: example.com\r\n"
				 "User-Agent: t/1\r\nAccept: */*\r\n\r\n";
	zt_http1_request r;

	(void)state;
	req_ok(S(in), &r);
	assert_span(r.method, r.method_len, "GET");
	assert_span(r.target, r.target_len, "/index.html?q=1");
	assert_span(r.path, r.path_len, "/index.html?q=1");
	assert_null(r.authority);
	assert_int_equal(r.form, ZT_HTTP1_ORIGIN_FORM);
	assert_int_equal(r.version, 11);
	assert_span(r.host, r.host_len, "example.com");
	assert_int_equal(r.nfields, 3);
	assert_field(&r.fields[0], "Host", "example.com");
	assert_field(&r.fields[1], "User-Agent", "t/1");
	assert_field(&r.fields[2], "Accept", "*/*");
	assert_int_equal(r.framing, ZT_HTTP1_BODY_NONE);
	assert_int_equal(r.keep_alive, 1);
	assert_int_equal(r.expect_continue, 0);
	assert_int_equal(r.upgrade, 0);
	assert_int_equal(r.method_flags, 0);
	/* the fields point into the caller's buffer, nothing is copied */
	zt_err e;
	char *buf = exact(S(in));

	assert_int_equal(zt_http1_parse_request(buf, sizeof in - 1, NULL, NULL, &r, &e), 0);
	assert_ptr_equal(r.method, buf);
	assert_ptr_equal(r.fields[0].name, buf + 30);
	free(buf);
}

static void test_post_content_length(void **state)
{
	static const char in[] = "POST /upload HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello";
	zt_http1_request r;
	zt_err e;

	(void)state;
	assert_int_equal(preq(S(in), &r, &e), 0);
	assert_int_equal(r.head_len, sizeof in - 1 - 5);
	assert_int_equal(r.framing, ZT_HTTP1_BODY_LENGTH);
	assert_int_equal(r.content_length, 5);
	assert_memory_equal(in + r.head_len, "hello", 5);

	/* 0 is a length; leading zeros are digits; 2^62 is the largest taken */
	req_ok(S("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n"), &r);
	assert_int_equal(r.framing, ZT_HTTP1_BODY_LENGTH);
	assert_int_equal(r.content_length, 0);
	req_ok(S("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 007\r\n\r\n"), &r);
	assert_int_equal(r.content_length, 7);
	req_ok(S("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4611686018427387904\r\n\r\n"), &r);
	assert_true(r.content_length == ZT_HTTP1_MAX_LENGTH);
}

static void test_post_chunked(void **state)
{
	zt_http1_request r;

	(void)state;
	req_ok(S("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"), &r);
	assert_int_equal(r.framing, ZT_HTTP1_BODY_CHUNKED);
	req_ok(S("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:  ChUnKeD \r\n\r\n"), &r);
	assert_int_equal(r.framing, ZT_HTTP1_BODY_CHUNKED);
}

static void test_ows_and_values(void **state)
{
	zt_http1_request r;

	(void)state;
	req_ok(S("GET / HTTP/1.1\r\nHost:a\r\nX-A: \t value  with\tinner  \t \r\nX-E:\r\n"
		 "X-F:   \r\nX-O: caf\xc3\xa9 \x80\xff\r\n\r\n"),
	       &r);
	assert_int_equal(r.nfields, 5);
	assert_field(&r.fields[0], "Host", "a");
	assert_field(&r.fields[1], "X-A", "value  with\tinner");
	assert_field(&r.fields[2], "X-E", "");
	assert_field(&r.fields[3], "X-F", "");
	assert_field(&r.fields[4], "X-O", "caf\xc3\xa9 \x80\xff"); /* obs-text is kept */
	/* every tchar may be in a name */
	req_ok(S("GET / HTTP/1.1\r\nHost: a\r\n!#$%&'*+-.^_`|~09azAZ: x\r\n\r\n"), &r);
	assert_field(&r.fields[1], "!#$%&'*+-.^_`|~09azAZ", "x");
}

static void test_keep_alive(void **state)
{
	zt_http1_request r;

	(void)state;
	req_ok(S("GET / HTTP/1.0\r\n\r\n"), &r); /* no Host needed in 1.0 */
	assert_int_equal(r.version, 10);
	assert_null(r.host);
	assert_int_equal(r.keep_alive, 0);
	req_ok(S("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n"), &r);
	assert_int_equal(r.keep_alive, 1);
	req_ok(S("GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n"), &r);
	assert_int_equal(r.keep_alive, 0);
	req_ok(S("GET / HTTP/1.1\r\nHost: a\r\nConnection: foo, CLOSE\r\n\r\n"), &r);
	assert_int_equal(r.keep_alive, 0);
	req_ok(S("GET / HTTP/1.1\r\nHost: a\r\nConnection: foo\r\nConnection: ,close,\r\n\r\n"), &r);
	assert_int_equal(r.keep_alive, 0);
	req_ok(S("GET / HTTP/1.1\r\nHost: a\r\nConnection: closed, x-close\r\n\r\n"), &r);
	assert_int_equal(r.keep_alive, 1);
	req_ok(S("GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive\r\n\r\n"), &r);
	assert_int_equal(r.keep_alive, 1);
	req_bad(S("GET / HTTP/1.1\r\nHost: a\r\nConnection: a b\r\n\r\n"), 400, "http-connection",
		"not a list of tokens");
	req_bad(S("GET / HTTP/1.1\r\nHost: a\r\nConnection: \"close\"\r\n\r\n"), 400,
		"http-connection", NULL);
}

static void test_leading_empty_line(void **state)
{
	zt_http1_request r;

	(void)state;
	/* RFC 9112 2.2: one CRLF before the request line is skipped, and counted */
	req_ok(S("\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n"), &r);
	assert_span(r.method, r.method_len, "GET");
	req_bad(S("\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n"), 400, "http-empty-lines",
		"more than one empty line");
	req_bad(S("\r\n\r\n"), 400, "http-empty-lines", NULL);
	req_bad(S("\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n"), 400, "http-bare-lf", "bare LF");
}

static void test_target_forms(void **state)
{
	zt_http1_request r;

	(void)state;
	req_ok(S("GET http://Example.com:8080/a/b?c HTTP/1.1\r\nHost: ignored\r\n\r\n"), &r);
	assert_int_equal(r.form, ZT_HTTP1_ABSOLUTE_FORM);
	assert_span(r.authority, r.authority_len, "Example.com:8080");
	assert_span(r.path, r.path_len, "/a/b?c");
	req_ok(S("GET https://example.com HTTP/1.1\r\nHost: example.com\r\n\r\n"), &r);
	assert_span(r.authority, r.authority_len, "example.com");
	assert_int_equal(r.path_len, 0);
	assert_non_null(r.path);
	req_ok(S("GET http://[::1]:80?x HTTP/1.1\r\nHost: a\r\n\r\n"), &r);
	assert_span(r.authority, r.authority_len, "[::1]:80");
	assert_span(r.path, r.path_len, "?x");

	req_ok(S("CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n"), &r);
	assert_int_equal(r.form, ZT_HTTP1_AUTHORITY_FORM);
	assert_int_equal(r.method_flags, ZT_HTTP1_METHOD_CONNECT);
	assert_span(r.authority, r.authority_len, "example.com:443");
	assert_null(r.path);

	req_ok(S("OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n"), &r);
	assert_int_equal(r.form, ZT_HTTP1_ASTERISK_FORM);
	req_ok(S("OPTIONS /x HTTP/1.1\r\nHost: a\r\n\r\n"), &r);
	assert_int_equal(r.form, ZT_HTTP1_ORIGIN_FORM);

	req_ok(S("HEAD / HTTP/1.1\r\nHost: a\r\n\r\n"), &r);
	assert_int_equal(r.method_flags, ZT_HTTP1_METHOD_HEAD);
	req_ok(S("head / HTTP/1.1\r\nHost: a\r\n\r\n"), &r); /* methods are case-sensitive */
	assert_int_equal(r.method_flags, 0);
	req_ok(S("X-CUSTOM.M~ / HTTP/1.1\r\nHost: a\r\n\r\n"), &r); /* any token */

	req_bad(S("GET * HTTP/1.1\r\nHost: a\r\n\r\n"), 400, "http-target", "only for OPTIONS");
	req_bad(S("CONNECT / HTTP/1.1\r\nHost: a\r\n\r\n"), 400, "http-target", "CONNECT");
	req_bad(S("CONNECT example.com HTTP/1.1\r\nHost: a\r\n\r\n"), 400, "http-target",
		"has no port");
	req_bad(S("CONNECT http://a:1/ HTTP/1.1\r\nHost: a\r\n\r\n"), 400, "http-target", NULL);
	req_bad(S("GET example.com/a HTTP/1.1\r\nHost: a\r\n\r\n"), 400, "http-target", NULL);
	req_bad(S("GET http:/a HTTP/1.1\r\nHost: a\r\n\r\n"), 400, "http-target", "//authority");
	req_bad(S("GET http://user:pw@a/ HTTP/1.1\r\nHost: a\r\n\r\n"), 400, "http-target",
		"userinfo");
	req_bad(S("GET http:///x HTTP/1.1\r\nHost: a\r\n\r\n"), 400, "http-target", "is empty");
	req_bad(S("GET /a#frag HTTP/1.1\r\nHost: a\r\n\r\n"), 400, "http-target", "fragment");
	req_bad(S("GET /caf\xc3\xa9 HTTP/1.1\r\nHost: a\r\n\r\n"), 400, "http-target",
		"non-ASCII");
	req_bad(S("GET /a\x7f HTTP/1.1\r\nHost: a\r\n\r\n"), 400, "http-target", NULL);
	req_bad(S("GET /a\0b HTTP/1.1\r\nHost: a\r\n\r\n"), 400, "http-target", NULL);
	req_bad(S("CONNECT a:443 HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\n"), 400,
		"http-connect-body", NULL);
	req_bad(S("CONNECT a:443 HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"), 400,
		"http-connect-body", NULL);
	req_ok(S("CONNECT a:443 HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n"), &r);
}

static void test_request_line(void **state)
{
	(void)state;
	req_bad(S("GET  / HTTP/1.1\r\nHost: a\r\n\r\n"), 400, "http-request-line", "single spaces");
	req_bad(S("GET / HTTP/1.1 \r\nHost: a\r\n\r\n"), 400, "http-request-line", NULL);
	req_bad(S("GET /a b HTTP/1.1\r\nHost: a\r\n\r\n"), 400, "http-request-line",
		"more than two spaces");
	req_bad(S("GET\t/ HTTP/1.1\r\nHost: a\r\n\r\n"), 400, "http-request-line", NULL);
	req_bad(S("GET /\tHTTP/1.1\r\nHost: a\r\n\r\n"), 400, "http-request-line", NULL);
	req_bad(S(" GET / HTTP/1.1\r\nHost: a\r\n\r\n"), 400, "http-method", NULL);
	req_bad(S("G(T / HTTP/1.1\r\nHost: a\r\n\r\n"), 400, "http-method", NULL);
	req_bad(S("GET\r\nHost: a\r\n\r\n"), 400, "http-method", NULL);
	req_bad(S("GET /\r\nHost: a\r\n\r\n"), 400, "http-request-line", NULL);
	req_bad(S("GET / \r\nHost: a\r\n\r\n"), 400, "http-version", NULL);
}

static void test_versions(void **state)
{
	(void)state;
	req_bad(S("GET / HTTP/2.0\r\nHost: a\r\n\r\n"), 505, "http-version-unsupported",
		"\"HTTP/2.0\" is not supported");
	req_bad(S("GET / HTTP/1.2\r\nHost: a\r\n\r\n"), 505, "http-version-unsupported", NULL);
	req_bad(S("GET / HTTP/0.9\r\nHost: a\r\n\r\n"), 505, "http-version-unsupported", NULL);
	req_bad(S("GET / HTTP/9.9\r\n\r\n"), 505, "http-version-unsupported", NULL);
	req_bad(S("GET / http/1.1\r\nHost: a\r\n\r\n"), 400, "http-version", "case-sensitive");
	req_bad(S("GET / HTTP/1.10\r\nHost: a\r\n\r\n"), 400, "http-version", NULL);
	req_bad(S("GET / HTTP/1\r\nHost: a\r\n\r\n"), 400, "http-version", NULL);
	req_bad(S("GET / HTTP/2\r\nHost: a\r\n\r\n"), 400, "http-version", NULL);
	req_bad(S("GET / HTTP/11\r\nHost: a\r\n\r\n"), 400, "http-version", NULL);
	req_bad(S("GET / HTTP/1.x\r\nHost: a\r\n\r\n"), 400, "http-version", NULL);
	req_bad(S("GET / HTTPS/1.1\r\nHost: a\r\n\r\n"), 400, "http-version", NULL);
	req_bad(S("GET / garbage!\r\nHost: a\r\n\r\n"), 400, "http-version", NULL);
	/* the version is judged before the fields: 505 even without Host */
	req_bad(S("GET / HTTP/2.0\r\n\r\n"), 505, "http-version-unsupported", NULL);
}

/* ---- incomplete input and pipelining ------------------------------------ */

static const char *const valid_heads[] = {
	"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
	"\r\nPOST /x?y HTTP/1.1\r\nHost: example.com:8080\r\nContent-Length: 3\r\n\r\n",
	"GET / HTTP/1.0\r\n\r\n",
	"PUT /a HTTP/1.1\r\nHost: [::1]\r\nTransfer-Encoding: chunked\r\nX:\r\nY: \t\r\n\r\n",
};

static void test_incomplete_every_prefix(void **state)
{
	zt_http1_request r;
	zt_err e;

	(void)state;
	for (size_t t = 0; t < sizeof valid_heads / sizeof valid_heads[0]; t++) {
		const char *in = valid_heads[t];
		size_t n = strlen(in), scanned = 0;

		for (size_t k = 0; k < n; k++) {
			char *copy = exact(in, k);
			size_t s0 = 0;
			int rc = zt_http1_parse_request(copy, k, NULL, NULL, &r, &e);

			if (rc != ZT_HTTP1_INCOMPLETE)
				fail_msg("prefix %zu of head %zu: %d (%s)", k, t, rc, e.msg);
			assert_int_equal(r.head_len, 0);
			assert_int_equal(r.err_status, 0);
			/* with a fresh hint and with the running one */
			assert_int_equal(zt_http1_parse_request(copy, k, NULL, &s0, &r, &e),
					 ZT_HTTP1_INCOMPLETE);
			assert_int_equal(zt_http1_parse_request(copy, k, NULL, &scanned, &r, &e),
					 ZT_HTTP1_INCOMPLETE);
			assert_true(scanned <= k);
			free(copy);
		}
		char *copy = exact(in, n);

		assert_int_equal(zt_http1_parse_request(copy, n, NULL, &scanned, &r, &e), 0);
		assert_int_equal(r.head_len, n);
		assert_int_equal(scanned, 0);
		free(copy);
	}
}

static void test_pipelined(void **state)
{
	static const char in[] = "POST /a HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc"
				 "GET /b HTTP/1.1\r\nHost: b\r\n\r\n"
				 "POST /c HTTP/1.1\r\nHost: c\r\nTransfer-Encoding: chunked\r\n\r\n"
				 "3\r\nxyz\r\n0\r\n\r\n"
				 "GET /d HTTP/1.1\r\nHost: d\r\nConnection: close\r\n\r\n"
				 "GET /e";
	const char *paths[] = { "/a", "/b", "/c", "/d" };
	char *buf = exact(S(in));
	size_t off = 0, scanned = 0, n = sizeof in - 1;
	zt_http1_request r;
	zt_err e;

	(void)state;
	for (int i = 0; i < 4; i++) {
		assert_int_equal(zt_http1_parse_request(buf + off, n - off, NULL, &scanned, &r, &e), 0);
		assert_span(r.target, r.target_len, paths[i]);
		off += r.head_len;
		if (r.framing == ZT_HTTP1_BODY_LENGTH) {
			off += r.content_length;
		} else if (r.framing == ZT_HTTP1_BODY_CHUNKED) {
			zt_http1_chunked c;
			size_t used, doff, dlen;

			zt_http1_chunked_init(&c, NULL, 0);
			while (!zt_http1_chunked_done(&c)) {
				assert_int_equal(zt_http1_chunked_feed(&c, buf + off, n - off, &used,
								       &doff, &dlen, &e), 0);
				off += used;
			}
		}
		assert_int_equal(r.keep_alive, i != 3);
	}
	/* what is left is the start of the next request */
	assert_int_equal(zt_http1_parse_request(buf + off, n - off, NULL, &scanned, &r, &e),
			 ZT_HTTP1_INCOMPLETE);
	assert_int_equal(n - off, 6);
	free(buf);
}

/* ---- request smuggling and framing ------------------------------------- */

static void test_cl_te(void **state)
{
	(void)state;
	/* CL.TE and TE.CL */
	req_bad(S("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n"
		  "Transfer-Encoding: chunked\r\n\r\n"),
		400, "http-te-cl", "Transfer-Encoding with Content-Length (RFC 9112 6.1)");
	req_bad(S("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n"
		  "Content-Length: 5\r\n\r\n"),
		400, "http-te-cl", "Transfer-Encoding with Content-Length");
	req_bad(S("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n"
		  "Content-Length: 0\r\n\r\n"),
		400, "http-te-cl", NULL);
}

static void test_content_length(void **state)
{
	(void)state;
	req_bad(S("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n"),
		400, "http-cl-dup", "two Content-Length headers");
	req_bad(S("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\ncontent-length: 6\r\n\r\n"),
		400, "http-cl-dup", "two Content-Length headers");
	req_bad(S("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +5\r\n\r\n"), 400,
		"http-content-length", "not a decimal number");
	req_bad(S("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5 5\r\n\r\n"), 400,
		"http-content-length", NULL);
	req_bad(S("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\n\r\n"), 400,
		"http-content-length", NULL);
	req_bad(S("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n"), 400,
		"http-content-length", NULL);
	req_bad(S("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0x10\r\n\r\n"), 400,
		"http-content-length", NULL);
	req_bad(S("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1e3\r\n\r\n"), 400,
		"http-content-length", NULL);
	req_bad(S("POST / HTTP/1.1\r\nHost: a\r\nContent-Length:\r\n\r\n"), 400,
		"http-content-length", "empty");
	req_bad(S("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: \"5\"\r\n\r\n"), 400,
		"http-content-length", NULL);
	req_bad(S("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4611686018427387905\r\n\r\n"),
		400, "http-content-length", "2^62");
	req_bad(S("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 18446744073709551617\r\n\r\n"),
		400, "http-content-length", "2^62");
	req_bad(S("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: "
		  "99999999999999999999999999999999999999\r\n\r\n"),
		400, "http-content-length", NULL);
}

static void test_transfer_encoding(void **state)
{
	zt_http1_request r;

	(void)state;
	req_bad(S("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, identity\r\n\r\n"),
		400, "http-te", "final transfer coding is not chunked");
	req_bad(S("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: xchunked\r\n\r\n"), 400,
		"http-te", "final transfer coding is not chunked");
	req_bad(S("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: identity\r\n\r\n"), 400,
		"http-te", NULL);
	req_bad(S("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"), 501,
		"http-te-unsupported", "not supported");
	req_bad(S("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, chunked\r\n\r\n"),
		400, "http-te", "more than once");
	/* several lines are one list */
	req_bad(S("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n"
		  "Transfer-Encoding: chunked\r\n\r\n"),
		400, "http-te", "more than once");
	req_bad(S("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n"
		  "Transfer-Encoding: chunked\r\n\r\n"),
		501, "http-te-unsupported", NULL);
	req_bad(S("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n"
		  "Transfer-Encoding: gzip\r\n\r\n"),
		400, "http-te", "final transfer coding is not chunked");
	req_bad(S("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked;q=1\r\n\r\n"), 400,
		"http-te", "parameters");
	req_bad(S("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: , chunked\r\n\r\n"), 400,
		"http-te", "not a list");
	req_bad(S("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked,\r\n\r\n"), 400,
		"http-te", "not a list");
	req_bad(S("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\r\n\r\n"), 400, "http-te",
		NULL);
	req_bad(S("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: \"chunked\"\r\n\r\n"), 400,
		"http-te", NULL);
	req_bad(S("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\"\r\n\r\n"), 400,
		"http-te", NULL);
	req_bad(S("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip;level=\"9, chunked\r\n\r\n"),
		400, "http-te", "unterminated");
	req_bad(S("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n"), 400, "http-te-http10",
		"HTTP/1.0");
	req_bad(S("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n"),
		400, "http-te-http10", NULL);
	/* parameters on other codings parse, then 501 */
	req_bad(S("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip;x=\"a,b\" ; y=z, chunked\r\n\r\n"),
		501, "http-te-unsupported", NULL);
	req_ok(S("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"), &r);
}

/* ---- line endings, field syntax ---------------------------------------- */

static void test_bare_lf_cr(void **state)
{
	(void)state;
	req_bad(S("GET / HTTP/1.1\nHost: a\r\n\r\n"), 400, "http-bare-lf", "bare LF");
	req_bad(S("GET / HTTP/1.1\r\nHost: a\nX: b\r\n\r\n"), 400, "http-bare-lf", "bare LF");
	req_bad(S("GET / HTTP/1.1\r\nHost: a\r\n\n"), 400, "http-bare-lf", "bare LF");
	req_bad(S("GET / HTTP/1.1\n\n"), 400, "http-bare-lf", NULL);
	req_bad(S("\nGET / HTTP/1.1\r\n\r\n"), 400, "http-bare-lf", NULL);
	req_bad(S("GET /\r HTTP/1.1\r\nHost: a\r\n\r\n"), 400, "http-bare-cr", "bare CR");
	req_bad(S("GET / HTTP/1.1\r\nHost: a\r\nX: a\rb\r\n\r\n"), 400, "http-bare-cr", "bare CR");
	req_bad(S("GET / HTTP/1.1\r\nHost: a\r\n\r\r\n"), 400, "http-bare-cr", NULL);
	req_bad(S("GET / HTTP/1.1\r\r\nHost: a\r\n\r\n"), 400, "http-bare-cr", NULL);
}

static void test_field_syntax(void **state)
{
	(void)state;
	req_bad(S("GET / HTTP/1.1\r\nHost : a\r\n\r\n"), 400, "http-field-ws",
		"whitespace between header name and colon");
	req_bad(S("GET / HTTP/1.1\r\nHost: a\r\nContent-Length\t: 5\r\n\r\n"), 400,
		"http-field-ws", "whitespace between header name and colon");
	req_bad(S("GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n b\r\n\r\n"), 400, "http-obs-fold",
		"obsolete line folding (RFC 9112 5.2)");
	req_bad(S("GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n\tb\r\n\r\n"), 400, "http-obs-fold", NULL);
	req_bad(S("GET / HTTP/1.1\r\n Host: a\r\n\r\n"), 400, "http-obs-fold", "RFC 9112 2.2");
	req_bad(S("GET / HTTP/1.1\r\nHost: a\r\nX: a\0b\r\n\r\n"), 400, "http-field-value", "NUL");
	req_bad(S("GET / HTTP/1.1\r\nHost: a\r\nX: \0\r\n\r\n"), 400, "http-field-value", "NUL");
	req_bad(S("GET / HTTP/1.1\r\nHost: a\r\nX: a\x01\r\n\r\n"), 400, "http-field-value",
		"control character");
	req_bad(S("GET / HTTP/1.1\r\nHost: a\r\nX: a\x7f\r\n\r\n"), 400, "http-field-value", NULL);
	req_bad(S("GET / HTTP/1.1\r\nHost: a\r\nX: \x1b[31m\r\n\r\n"), 400, "http-field-value",
		NULL);
	req_bad(S("GET / HTTP/1.1\r\nHost: a\r\nX(: a\r\n\r\n"), 400, "http-field-name", NULL);
	req_bad(S("GET / HTTP/1.1\r\nHost: a\r\nX Y: a\r\n\r\n"), 400, "http-field-name", NULL);
	req_bad(S("GET / HTTP/1.1\r\nHost: a\r\n: a\r\n\r\n"), 400, "http-field-name", "empty name");
	req_bad(S("GET / HTTP/1.1\r\nHost: a\r\nNoColon\r\n\r\n"), 400, "http-field-name",
		"no colon");
	req_bad(S("GET / HTTP/1.1\r\nHost: a\r\nX\xc3\xa9: a\r\n\r\n"), 400, "http-field-name",
		NULL);
	req_bad(S("GET / HTTP/1.1\r\nHost: a\r\n\0: a\r\n\r\n"), 400, "http-field-name", NULL);
}

/* ---- limits -------------------------------------------------------------- */

/* "GET / HTTP/1.1" CRLF "Host: a" CRLF, then n "X: y" lines, then CRLF. */
static char *many_fields(size_t n, size_t *len)
{
	size_t cap = 32 + n * 6, o;
	char *p = malloc(cap);

	assert_non_null(p);
	o = (size_t)sprintf(p, "GET / HTTP/1.1\r\nHost: a\r\n");
	for (size_t i = 0; i < n; i++) {
		memcpy(p + o, "X: y\r\n", 6);
		o += 6;
	}
	memcpy(p + o, "\r\n", 2);
	*len = o + 2;
	return p;
}

static void test_too_many_fields(void **state)
{
	zt_http1_request r;
	zt_err e;
	size_t n;
	char *p;

	(void)state;
	p = many_fields(99, &n); /* 100 with Host: the default limit */
	assert_int_equal(preq(p, n, &r, &e), 0);
	assert_int_equal(r.nfields, 100);
	free(p);
	p = many_fields(100, &n);
	req_bad(p, n, 431, "http-too-many-fields", "more than 100 header fields");
	free(p);

	/* a limit above what a head can hold is lowered to ZT_HTTP1_MAX_FIELDS */
	zt_http1_limits l = { .max_fields = 100000 };

	p = many_fields(ZT_HTTP1_MAX_FIELDS - 1, &n);
	assert_int_equal(preq_lim(p, n, &l, &r, &e), 0);
	assert_int_equal(r.nfields, ZT_HTTP1_MAX_FIELDS);
	free(p);
	p = many_fields(ZT_HTTP1_MAX_FIELDS, &n);
	req_bad_lim(p, n, &l, 431, "http-too-many-fields", NULL);
	free(p);

	l.max_fields = 2;
	req_bad_lim(S("GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\n\r\n"), &l, 431,
		    "http-too-many-fields", "more than 2");
}

static void test_head_too_large(void **state)
{
	zt_http1_limits l = { .max_head = 40 };
	static const char exact40[] = "GET / HTTP/1.1\r\nHost: a\r\nX: 01234567\r\n\r\n";
	zt_http1_request r;
	zt_err e;
	size_t n;
	char *p;

	(void)state;
	assert_int_equal(sizeof exact40 - 1, 40);
	assert_int_equal(preq_lim(S(exact40), &l, &r, &e), 0);
	req_bad_lim(S("GET / HTTP/1.1\r\nHost: a\r\nX: 012345678\r\n\r\n"), &l, 431,
		    "http-head-too-large", "larger than 40 bytes");
	/* a CR at the last byte max_head allows can end no head in time: 431
	 * whatever follows, fed whole or a byte at a time (found by fuzzing) */
	req_bad_lim(S("GET / HTTP/1.1\r\nHost: a\r\nX: 01234567890\rx\r\n\r\n"), &l, 431,
		    "http-head-too-large", NULL);
	req_bad_lim(S("GET / HTTP/1.1\r\nHost: a\r\nX: 0123456789\rx\r\n\r\n"), &l, 400,
		    "http-bare-cr", NULL);
	/* refused as soon as max_head bytes are in without the end of the head */
	assert_int_equal(preq_lim(exact40, 39, &l, &r, &e), ZT_HTTP1_INCOMPLETE);
	assert_int_equal(preq_lim("GET / HTTP/1.1\r\nHost: a\r\nX: 0123456789abcdef", 40, &l, &r, &e),
			 -ZT_ELIMIT);
	assert_int_equal(r.err_status, 431);
	assert_string_equal(e.rule, "http-head-too-large");

	/* the default: 32 KiB */
	p = malloc(40000);
	assert_non_null(p);
	n = (size_t)sprintf(p, "GET / HTTP/1.1\r\nHost: a\r\nX: ");
	memset(p + n, 'a', 40000 - n);
	assert_int_equal(preq(p, 40000, &r, &e), -ZT_ELIMIT);
	assert_int_equal(r.err_status, 431);
	assert_int_equal(preq(p, 32767, &r, &e), ZT_HTTP1_INCOMPLETE);
	assert_int_equal(preq(p, 32768, &r, &e), -ZT_ELIMIT);
	free(p);
}

static void test_request_line_too_long(void **state)
{
	zt_http1_limits l = { .max_line = 16 };
	zt_http1_request r;
	zt_err e;
	char *p;

	(void)state;
	/* "GET /2345678 HTTP/1.1" is 21 bytes */
	req_ok(S("GET /23 HTTP/1.1\r\nHost: a\r\n\r\n"), &r);
	assert_int_equal(preq_lim(S("GET /23 HTTP/1.1\r\nHost: a\r\n\r\n"), &l, &r, &e), 0);
	req_bad_lim(S("GET /234 HTTP/1.1\r\nHost: a\r\n\r\n"), &l, 414, "http-line-too-long",
		    "longer than 16 bytes");
	/* the skipped CRLF does not count */
	assert_int_equal(preq_lim(S("\r\nGET /23 HTTP/1.1\r\nHost: a\r\n\r\n"), &l, &r, &e), 0);
	/* refused before the line ends: 18 bytes without LF can never fit */
	assert_int_equal(preq_lim("GET /234567890123", 17, &l, &r, &e), ZT_HTTP1_INCOMPLETE);
	assert_int_equal(preq_lim("GET /2345678901234", 18, &l, &r, &e), -ZT_ELIMIT);
	assert_int_equal(r.err_status, 414);

	/* the default: 8 KiB */
	p = malloc(9000);
	assert_non_null(p);
	memcpy(p, "GET /", 5);
	memset(p + 5, 'a', 9000 - 5);
	assert_int_equal(preq(p, 9000, &r, &e), -ZT_ELIMIT);
	assert_int_equal(r.err_status, 414);
	assert_string_equal(e.rule, "http-line-too-long");
	free(p);
}

/* ---- Host, Expect, Upgrade ---------------------------------------------- */

static void test_host(void **state)
{
	zt_http1_request r;

	(void)state;
	req_bad(S("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"), 400, "http-host-dup",
		"two Host headers");
	req_bad(S("GET / HTTP/1.1\r\nHost: a\r\nhost: a\r\n\r\n"), 400, "http-host-dup", NULL);
	req_bad(S("GET / HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n"), 400, "http-host-dup", NULL);
	req_bad(S("GET / HTTP/1.1\r\nX: a\r\n\r\n"), 400, "http-host-missing", "without a Host");
	req_bad(S("GET http://a/ HTTP/1.1\r\n\r\n"), 400, "http-host-missing", NULL);
	req_bad(S("GET / HTTP/1.1\r\nHost:\r\n\r\n"), 400, "http-host", "is empty");
	req_bad(S("GET / HTTP/1.1\r\nHost: a b\r\n\r\n"), 400, "http-host", NULL);
	req_bad(S("GET / HTTP/1.1\r\nHost: a,b\r\n\r\n"), 400, "http-host", NULL);
	req_bad(S("GET / HTTP/1.1\r\nHost: a/b\r\n\r\n"), 400, "http-host", NULL);
	req_bad(S("GET / HTTP/1.1\r\nHost: u@a\r\n\r\n"), 400, "http-host", "userinfo");
	req_bad(S("GET / HTTP/1.1\r\nHost: a:\r\n\r\n"), 400, "http-host", "empty port");
	req_bad(S("GET / HTTP/1.1\r\nHost: a:0\r\n\r\n"), 400, "http-host", NULL);
	req_bad(S("GET / HTTP/1.1\r\nHost: a:080\r\n\r\n"), 400, "http-host", NULL);
	req_bad(S("GET / HTTP/1.1\r\nHost: a:65536\r\n\r\n"), 400, "http-host", "above 65535");
	req_bad(S("GET / HTTP/1.1\r\nHost: a:123456\r\n\r\n"), 400, "http-host", NULL);
	req_bad(S("GET / HTTP/1.1\r\nHost: a:8x\r\n\r\n"), 400, "http-host", NULL);
	req_bad(S("GET / HTTP/1.1\r\nHost: a:1:2\r\n\r\n"), 400, "http-host", NULL);
	req_bad(S("GET / HTTP/1.1\r\nHost: [::1\r\n\r\n"), 400, "http-host", NULL);
	req_bad(S("GET / HTTP/1.1\r\nHost: []\r\n\r\n"), 400, "http-host", NULL);
	req_bad(S("GET / HTTP/1.1\r\nHost: [::1]x\r\n\r\n"), 400, "http-host", NULL);
	req_bad(S("GET / HTTP/1.1\r\nHost: [::g]\r\n\r\n"), 400, "http-host", NULL);
	req_bad(S("GET / HTTP/1.1\r\nHost: a%2eb\r\n\r\n"), 400, "http-host", NULL);
	req_bad(S("GET / HTTP/1.1\r\nHost: :80\r\n\r\n"), 400, "http-host", NULL);
	req_ok(S("GET / HTTP/1.1\r\nHost: Sub_1.Example-2.com:65535\r\n\r\n"), &r);
	assert_span(r.host, r.host_len, "Sub_1.Example-2.com:65535");
	req_ok(S("GET / HTTP/1.1\r\nHost:  10.0.0.1:8080 \r\n\r\n"), &r);
	assert_span(r.host, r.host_len, "10.0.0.1:8080");
	req_ok(S("GET / HTTP/1.1\r\nHost: [fe80::1]:443\r\n\r\n"), &r);
	assert_span(r.host, r.host_len, "[fe80::1]:443");
}

static void test_expect(void **state)
{
	zt_http1_request r;

	(void)state;
	req_ok(S("PUT / HTTP/1.1\r\nHost: a\r\nContent-Length: 9\r\nExpect: 100-continue\r\n\r\n"),
	       &r);
	assert_int_equal(r.expect_continue, 1);
	req_ok(S("PUT / HTTP/1.1\r\nHost: a\r\nExpect: 100-Continue\r\n\r\n"), &r);
	assert_int_equal(r.expect_continue, 1);
	/* RFC 9110 10.1.1: ignored in HTTP/1.0 */
	req_ok(S("PUT / HTTP/1.0\r\nExpect: 100-continue\r\n\r\n"), &r);
	assert_int_equal(r.expect_continue, 0);
	req_ok(S("PUT / HTTP/1.1\r\nHost: a\r\n\r\n"), &r);
	assert_int_equal(r.expect_continue, 0);
	req_bad(S("PUT / HTTP/1.1\r\nHost: a\r\nExpect: foo\r\n\r\n"), 417, "http-expect",
		"cannot be met");
	req_bad(S("PUT / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue, foo\r\n\r\n"), 417,
		"http-expect", NULL);
	req_bad(S("PUT / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue=1\r\n\r\n"), 417,
		"http-expect", NULL);
	req_bad(S("PUT / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nExpect: 200-ok\r\n\r\n"),
		417, "http-expect", NULL);
	req_bad(S("PUT / HTTP/1.0\r\nExpect: foo\r\n\r\n"), 417, "http-expect", NULL);
	/* a malformed request is a 400 before an unmet expectation is a 417 */
	req_bad(S("PUT / HTTP/1.1\r\nExpect: foo\r\n\r\n"), 400, "http-host-missing", NULL);
}

static void test_upgrade(void **state)
{
	zt_http1_request r;

	(void)state;
	req_ok(S("GET /ws HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, Upgrade\r\n"
		 "Upgrade: websocket\r\n\r\n"),
	       &r);
	assert_int_equal(r.upgrade, 1);
	assert_true(zt_http1_connection_has(r.fields, r.nfields, "upgrade"));
	assert_false(zt_http1_connection_has(r.fields, r.nfields, "close"));
	req_ok(S("GET / HTTP/1.1\r\nHost: a\r\n\r\n"), &r);
	assert_int_equal(r.upgrade, 0);
}

static void test_error_messages(void **state)
{
	zt_http1_request r;
	zt_err e;

	(void)state;
	/* hostile bytes are quoted, never raw, in messages */
	assert_true(preq(S("GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\x1b[2J\r\n\r\n"), &r,
			 &e) < 0);
	assert_null(strchr(e.msg, 0x1b));
	/* NULL e is allowed */
	assert_true(zt_http1_parse_request("GET / HTTP/1.1\n\n", 16, NULL, NULL, &r, NULL) < 0);
	assert_int_equal(r.err_status, 400);
	assert_int_equal(zt_http1_parse_request("GET / HTTP/1.1\r\nHost: a\r\n\r\n", 27, NULL, NULL,
						&r, NULL), 0);
}

/* ---- responses --------------------------------------------------------- */

static int presp(const char *s, size_t n, unsigned flags, zt_http1_response *r, zt_err *e)
{
	char *copy = exact(s, n);
	size_t scanned = 0;
	int rc;

	zt_err_clear(e);
	/* every prefix is incomplete first */
	for (size_t k = 0; k < n; k++) {
		rc = zt_http1_parse_response(copy, k, NULL, flags, &scanned, r, e);
		if (rc != ZT_HTTP1_INCOMPLETE)
			break;
	}
	rc = zt_http1_parse_response(copy, n, NULL, flags, NULL, r, e);
	free(copy);
	if (rc == 0)
		assert_int_equal(zt_http1_parse_response(s, n, NULL, flags, NULL, r, e), 0);
	return rc;
}

static void resp_ok(const char *s, size_t n, unsigned flags, zt_http1_response *r)
{
	zt_err e;
	int rc = presp(s, n, flags, r, &e);

	if (rc != 0)
		fail_msg("response refused (%d, %s): %s", rc, e.rule, e.msg);
	assert_int_equal(r->head_len, n);
}

static void resp_bad(const char *s, size_t n, unsigned flags, const char *rule)
{
	zt_http1_response r;
	zt_err e;
	int rc = presp(s, n, flags, &r, &e);

	if (rc >= 0)
		fail_msg("accepted response \"%.*s\", expected %s", (int)n, s, rule);
	if (strcmp(e.rule, rule) != 0)
		fail_msg("\"%.*s\": rule %s (%s), expected %s", (int)n, s, e.rule, e.msg, rule);
	assert_int_equal(r.err_status, 502);
	assert_int_equal(r.head_len, 0);
	assert_int_equal(r.nfields, 0);
	assert_int_equal(r.status, 0);
	assert_non_null(strstr(e.msg, "upstream response"));
}

static void test_response_framing(void **state)
{
	zt_http1_response r;

	(void)state;
	resp_ok(S("HTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\n"), 0, &r);
	assert_int_equal(r.version, 11);
	assert_int_equal(r.status, 200);
	assert_span(r.reason, r.reason_len, "OK");
	assert_int_equal(r.framing, ZT_HTTP1_BODY_LENGTH);
	assert_int_equal(r.content_length, 12);
	assert_int_equal(r.keep_alive, 1);
	assert_int_equal(r.interim, 0);

	resp_ok(S("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"), 0, &r);
	assert_int_equal(r.framing, ZT_HTTP1_BODY_CHUNKED);
	/* codings before a final chunked do not change the framing */
	resp_ok(S("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"), 0, &r);
	assert_int_equal(r.framing, ZT_HTTP1_BODY_CHUNKED);
	/* RFC 9112 6.3 (4): no final chunked in a response: until close */
	resp_ok(S("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n"), 0, &r);
	assert_int_equal(r.framing, ZT_HTTP1_BODY_CLOSE);
	assert_int_equal(r.keep_alive, 0);
	/* (8) close-delimited */
	resp_ok(S("HTTP/1.1 200 OK\r\nX: y\r\n\r\n"), 0, &r);
	assert_int_equal(r.framing, ZT_HTTP1_BODY_CLOSE);
	assert_int_equal(r.keep_alive, 0);

	/* (1) HEAD, 1xx, 204, 304: no body whatever the fields say */
	resp_ok(S("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n"), ZT_HTTP1_METHOD_HEAD, &r);
	assert_int_equal(r.framing, ZT_HTTP1_BODY_NONE);
	assert_int_equal(r.keep_alive, 1);
	resp_ok(S("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"), ZT_HTTP1_METHOD_HEAD, &r);
	assert_int_equal(r.framing, ZT_HTTP1_BODY_NONE);
	resp_ok(S("HTTP/1.1 204 No Content\r\n\r\n"), 0, &r);
	assert_int_equal(r.framing, ZT_HTTP1_BODY_NONE);
	assert_int_equal(r.keep_alive, 1);
	resp_ok(S("HTTP/1.1 304 Not Modified\r\nContent-Length: 100\r\n\r\n"), 0, &r);
	assert_int_equal(r.framing, ZT_HTTP1_BODY_NONE);
	resp_ok(S("HTTP/1.1 100 Continue\r\n\r\n"), 0, &r);
	assert_int_equal(r.framing, ZT_HTTP1_BODY_NONE);
	assert_int_equal(r.interim, 1);
	resp_ok(S("HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n"), 0, &r);
	assert_int_equal(r.interim, 1);
	resp_ok(S("HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n"),
		0, &r);
	assert_int_equal(r.framing, ZT_HTTP1_BODY_TUNNEL);
	assert_int_equal(r.interim, 0);
	assert_int_equal(r.upgrade, 1);
	assert_int_equal(r.keep_alive, 0);

	/* (2) 2xx to CONNECT is a tunnel; other statuses are framed as usual */
	resp_ok(S("HTTP/1.1 200 Connection Established\r\n\r\n"), ZT_HTTP1_METHOD_CONNECT, &r);
	assert_int_equal(r.framing, ZT_HTTP1_BODY_TUNNEL);
	resp_ok(S("HTTP/1.1 407 Auth\r\nContent-Length: 3\r\n\r\n"), ZT_HTTP1_METHOD_CONNECT, &r);
	assert_int_equal(r.framing, ZT_HTTP1_BODY_LENGTH);

	/* HTTP/1.0: close unless keep-alive */
	resp_ok(S("HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\n"), 0, &r);
	assert_int_equal(r.version, 10);
	assert_int_equal(r.keep_alive, 0);
	resp_ok(S("HTTP/1.0 200 OK\r\nContent-Length: 1\r\nConnection: keep-alive\r\n\r\n"), 0, &r);
	assert_int_equal(r.keep_alive, 1);
	resp_ok(S("HTTP/1.1 200 OK\r\nContent-Length: 1\r\nConnection: close\r\n\r\n"), 0, &r);
	assert_int_equal(r.keep_alive, 0);
}

static void test_response_status_line(void **state)
{
	zt_http1_response r;

	(void)state;
	resp_ok(S("HTTP/1.1 200 \r\nContent-Length: 0\r\n\r\n"), 0, &r);
	assert_int_equal(r.reason_len, 0);
	/* tolerated: no SP after the code (documented in http1.h) */
	resp_ok(S("HTTP/1.1 204\r\n\r\n"), 0, &r);
	assert_int_equal(r.status, 204);
	assert_int_equal(r.reason_len, 0);
	resp_ok(S("HTTP/1.1 404 Not  Found\t(really) \xe2\x9c\x97\r\nContent-Length: 0\r\n\r\n"), 0, &r);
	assert_span(r.reason, r.reason_len, "Not  Found\t(really) \xe2\x9c\x97");
	resp_ok(S("HTTP/1.1 599 x\r\nContent-Length: 0\r\n\r\n"), 0, &r);

	resp_bad(S("HTTP/1.1 20 OK\r\n\r\n"), 0, "http-status-line");
	resp_bad(S("HTTP/1.1 2000 OK\r\n\r\n"), 0, "http-status-line");
	resp_bad(S("HTTP/1.1 600 X\r\n\r\n"), 0, "http-status-line");
	resp_bad(S("HTTP/1.1 099 X\r\n\r\n"), 0, "http-status-line");
	resp_bad(S("HTTP/1.1  200 OK\r\n\r\n"), 0, "http-status-line");
	resp_bad(S("HTTP/1.1 2x0 OK\r\n\r\n"), 0, "http-status-line");
	resp_bad(S("HTTP/1.1\r\n\r\n"), 0, "http-status-line");
	resp_bad(S("HTTP/1.1 \r\n\r\n"), 0, "http-status-line");
	resp_bad(S("HTTP/1.1 200 O\x01K\r\n\r\n"), 0, "http-status-line");
	resp_bad(S("HTTP/2.0 200 OK\r\n\r\n"), 0, "http-version-unsupported");
	resp_bad(S("HTTP/1.2 200 OK\r\n\r\n"), 0, "http-version-unsupported");
	resp_bad(S("http/1.1 200 OK\r\n\r\n"), 0, "http-version");
	resp_bad(S("ICY 200 OK\r\n\r\n"), 0, "http-version");
	resp_bad(S("\r\nHTTP/1.1 200 OK\r\n\r\n"), 0, "http-version");
}

static void test_response_attacks(void **state)
{
	(void)state;
	resp_bad(S("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"), 0,
		 "http-te-cl");
	resp_bad(S("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n"), 0,
		 "http-cl-dup");
	resp_bad(S("HTTP/1.1 200 OK\r\nContent-Length: 5,5\r\n\r\n"), 0, "http-content-length");
	resp_bad(S("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, chunked\r\n\r\n"), 0, "http-te");
	resp_bad(S("HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"), 0, "http-te-http10");
	resp_bad(S("HTTP/1.1 200 OK\nContent-Length: 0\r\n\r\n"), 0, "http-bare-lf");
	resp_bad(S("HTTP/1.1 200 OK\r\nX: a\rb\r\n\r\n"), 0, "http-bare-cr");
	resp_bad(S("HTTP/1.1 200 OK\r\nX: a\r\n b\r\n\r\n"), 0, "http-obs-fold");
	resp_bad(S("HTTP/1.1 200 OK\r\nX : a\r\n\r\n"), 0, "http-field-ws");
	resp_bad(S("HTTP/1.1 200 OK\r\nX: a\0\r\n\r\n"), 0, "http-field-value");
	/* the framing fields are checked even where they do not frame */
	resp_bad(S("HTTP/1.1 204 OK\r\nContent-Length: x\r\n\r\n"), ZT_HTTP1_METHOD_HEAD,
		 "http-content-length");
}

/* ---- chunked bodies ----------------------------------------------------- */

struct ck_result {
	int rc;          /* 0 done, 1 incomplete (input ran out), < 0 error */
	size_t consumed; /* bytes of the message */
	char out[512];   /* decoded payload */
	size_t out_len;
	char rule[40];
	int status;
};

/* Feeds n bytes in pieces of `step` (0: all at once), collecting the payload. */
static void ck_run(const char *in, size_t n, size_t step, const zt_http1_limits *lim, int resp,
		   struct ck_result *res)
{
	zt_http1_chunked c;
	char *buf = exact(in, n);
	size_t off = 0;
	zt_err e;

	memset(res, 0, sizeof *res);
	zt_http1_chunked_init(&c, lim, resp);
	res->rc = 1;
	while (off < n && !zt_http1_chunked_done(&c)) {
		size_t piece = step && n - off > step ? step : n - off, pos = 0;

		while (pos < piece && !zt_http1_chunked_done(&c)) {
			size_t used, doff, dlen;
			int rc = zt_http1_chunked_feed(&c, buf + off + pos, piece - pos, &used, &doff,
						       &dlen, &e);

			if (rc < 0) {
				assert_int_equal(used, 0);
				assert_int_equal(dlen, 0);
				res->rc = rc;
				res->status = c.err_status;
				snprintf(res->rule, sizeof res->rule, "%s", e.rule);
				/* the error sticks */
				assert_true(zt_http1_chunked_feed(&c, "0\r\n\r\n", 5, &used, &doff,
								  &dlen, &e) < 0);
				assert_int_equal(used, 0);
				free(buf);
				return;
			}
			assert_true(used > 0 && used <= piece - pos);
			assert_true(doff + dlen <= used);
			assert_true(res->out_len + dlen <= sizeof res->out);
			memcpy(res->out + res->out_len, buf + off + pos + doff, dlen);
			res->out_len += dlen;
			pos += used;
		}
		off += pos;
	}
	res->consumed = off;
	if (zt_http1_chunked_done(&c)) {
		res->rc = 0;
		assert_true(c.total == res->out_len);
		assert_true(c.wire == off);
	}
	free(buf);
}

/* The same outcome fed whole, byte by byte and in threes. */
static void ck_all(const char *in, size_t n, const zt_http1_limits *lim, int resp,
		   struct ck_result *res)
{
	struct ck_result one, three;

	ck_run(in, n, 0, lim, resp, res);
	ck_run(in, n, 1, lim, resp, &one);
	ck_run(in, n, 3, lim, resp, &three);
	for (int i = 0; i < 2; i++) {
		const struct ck_result *o = i ? &three : &one;

		if (o->rc != res->rc || o->consumed != res->consumed || o->out_len != res->out_len ||
		    memcmp(o->out, res->out, res->out_len) != 0 || strcmp(o->rule, res->rule) != 0)
			fail_msg("\"%.*s\": split feeding gives %d/%zu/%s, whole %d/%zu/%s", (int)n,
				 in, o->rc, o->consumed, o->rule, res->rc, res->consumed, res->rule);
	}
}

static void ck_ok(const char *in, size_t n, const char *payload, size_t msg_len)
{
	struct ck_result res;

	ck_all(in, n, NULL, 0, &res);
	if (res.rc != 0)
		fail_msg("\"%.*s\": %d %s, expected done", (int)n, in, res.rc, res.rule);
	assert_int_equal(res.consumed, msg_len);
	assert_int_equal(res.out_len, strlen(payload));
	assert_memory_equal(res.out, payload, res.out_len);
}

static void ck_bad_lim(const char *in, size_t n, const zt_http1_limits *lim, int status,
		       const char *rule)
{
	struct ck_result res;

	ck_all(in, n, lim, 0, &res);
	if (res.rc >= 0)
		fail_msg("\"%.*s\": accepted (%d), expected %s", (int)n, in, res.rc, rule);
	if (res.status != status || strcmp(res.rule, rule) != 0)
		fail_msg("\"%.*s\": %d %s, expected %d %s", (int)n, in, res.status, res.rule, status,
			 rule);
	ck_all(in, n, lim, 1, &res);
	assert_int_equal(res.status, 502);
}

static void ck_bad(const char *in, size_t n, const char *rule)
{
	ck_bad_lim(in, n, NULL, 400, rule);
}

static void test_chunked_valid(void **state)
{
	static const char body[] = "5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\n\r\n";
	struct ck_result res;

	(void)state;
	ck_ok(S(body), "hello world", sizeof body - 1);
	/* the next message is left alone */
	ck_ok(S("5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\n\r\nGET / HTTP/1.1\r\n"), "hello world",
	      sizeof body - 1);
	ck_ok(S("0\r\n\r\n"), "", 5);
	ck_ok(S("000\r\n\r\n"), "", 7);
	ck_ok(S("A\r\n0123456789\r\n0\r\n\r\n"), "0123456789", 20);
	/* payload is opaque: NUL, CR, LF are data */
	ck_all(S("a\r\n0123456789\r\n3\r\n\0\r\n\r\n0\r\n\r\n"), NULL, 0, &res);
	assert_int_equal(res.rc, 0);
	assert_int_equal(res.out_len, 13);
	assert_memory_equal(res.out, "0123456789\0\r\n", 13);
	ck_ok(S("0000000000000003\r\nabc\r\n0\r\n\r\n"), "abc", 28);            /* 16 digits */
	/* extensions (RFC 9112 7.1.1), BWS included */
	ck_ok(S("3;a\r\nabc\r\n0\r\n\r\n"), "abc", 15);
	ck_ok(S("3;a=b;c=\"q\\\"x;y\"\r\nabc\r\n0;end\r\n\r\n"), "abc", 32);
	ck_ok(S("3 ;a = b\t; c\r\nabc\r\n0\r\n\r\n"), "abc", 24);
	ck_ok(S("3;a=\"\"\r\nabc\r\n0\r\n\r\n"), "abc", 18);
	/* trailers */
	ck_ok(S("3\r\nabc\r\n0\r\nX-Sum: 1234\r\nX-Empty:\r\n\r\n"), "abc", 36);
	ck_ok(S("3\r\nabc\r\n0\r\nX-Long-Name-Beyond-Twenty-Bytes: a\r\n\r\n"), "abc", 49);
}

static void test_chunked_sizes(void **state)
{
	zt_http1_limits l = { 0 };
	struct ck_result res;

	(void)state;
	ck_bad(S("g\r\n"), "http-chunk-size");
	ck_bad(S("-1\r\n"), "http-chunk-size");
	ck_bad(S("+5\r\nhello\r\n"), "http-chunk-size");
	ck_bad(S(" 5\r\nhello\r\n"), "http-chunk-size");
	ck_bad(S("\r\n"), "http-chunk-size");
	ck_bad(S("0x5\r\nhello\r\n"), "http-chunk-size");
	ck_bad(S("5g\r\nhello\r\n"), "http-chunk-size");
	ck_bad(S("5 \r\nhello\r\n"), "http-chunk-ext"); /* BWS must lead to ';' */
	ck_bad(S("00000000000000005\r\nhello\r\n"), "http-chunk-size"); /* 17 digits */
	ck_bad(S("FFFFFFFFFFFFFFFF\r\n"), "http-chunk-size");            /* past 2^62 */
	ck_bad(S("4000000000000001\r\n"), "http-chunk-size");
	ck_bad(S("4000000000000001;x\r\n"), "http-chunk-size");
	ck_bad(S("5\nhello\r\n0\r\n\r\n"), "http-bare-lf");
	ck_bad(S("5\rhello\r\n0\r\n\r\n"), "http-bare-cr");
	/* 2^62 itself is a size; its data never comes here */
	ck_all(S("4000000000000000\r\nabc"), NULL, 0, &res);
	assert_int_equal(res.rc, 1);
	assert_int_equal(res.out_len, 3);
	/* two chunks whose sum passes 2^62 */
	ck_all(S("3FFFFFFFFFFFFFFF\r\n"), NULL, 0, &res);
	assert_int_equal(res.rc, 1);
	(void)l;
}

static void test_chunked_crlf(void **state)
{
	(void)state;
	ck_bad(S("5\r\nhelloX\r\n0\r\n\r\n"), "http-chunk-crlf");
	ck_bad(S("5\r\nhelloX\n0\r\n\r\n"), "http-chunk-crlf"); /* X must not pass for CR */
	ck_bad(S("5\r\nhello world\r\n0\r\n\r\n"), "http-chunk-crlf");
	ck_bad(S("5\r\nhello\rX0\r\n\r\n"), "http-chunk-crlf");
	ck_bad(S("5\r\nhello\n0\r\n\r\n"), "http-bare-lf");
	ck_bad(S("5\r\nhello\r\n0\r\n\rX"), "http-bare-cr");
	ck_bad(S("5\r\nhello\r\n0\r\n\n"), "http-bare-lf");
	ck_bad(S("5\r\nhello\r\n0\n\r\n"), "http-bare-lf");
}

static void test_chunked_ext(void **state)
{
	char big[400];
	size_t n;
	zt_http1_limits l = { .max_chunk_ext = 8 };

	(void)state;
	ck_bad(S("5;\r\nhello\r\n0\r\n\r\n"), "http-chunk-ext");
	ck_bad(S("5;=x\r\nhello\r\n0\r\n\r\n"), "http-chunk-ext");
	ck_bad(S("5;a=\r\nhello\r\n0\r\n\r\n"), "http-chunk-ext");
	ck_bad(S("5;a b\r\nhello\r\n0\r\n\r\n"), "http-chunk-ext");
	ck_bad(S("5;a=b c\r\nhello\r\n0\r\n\r\n"), "http-chunk-ext");
	ck_bad(S("5;a=b \r\nhello\r\n0\r\n\r\n"), "http-chunk-ext");
	ck_bad(S("5;a=\"x\r\nhello\r\n0\r\n\r\n"), "http-chunk-ext");
	ck_bad(S("5;a=\"x\"y\r\nhello\r\n0\r\n\r\n"), "http-chunk-ext");
	ck_bad(S("5;a=\"\x01\"\r\nhello\r\n0\r\n\r\n"), "http-chunk-ext");
	ck_bad(S("5;a=(b)\r\nhello\r\n0\r\n\r\n"), "http-chunk-ext");
	ck_bad(S("5;a\0\r\nhello\r\n0\r\n\r\n"), "http-chunk-ext");
	ck_bad(S("5;a=\"x\nhello\r\n0\r\n\r\n"), "http-bare-lf");

	/* length limit: 256 by default */
	n = (size_t)sprintf(big, "1;x=");
	memset(big + n, 'a', 253); /* ";x=" and 253 bytes: 256 */
	n += 253;
	n += (size_t)sprintf(big + n, "\r\nZ\r\n0\r\n\r\n");
	ck_ok(big, n, "Z", n);
	memmove(big + 5, big + 4, n - 4);
	big[4] = 'a';
	ck_bad(big, n + 1, "http-chunk-ext");
	ck_bad_lim(S("1;abcdefgh\r\nZ\r\n0\r\n\r\n"), &l, 400, "http-chunk-ext");
	ck_bad_lim(S("1;a;b;c;de\r\nZ\r\n0\r\n\r\n"), &l, 400, "http-chunk-ext");
	struct ck_result res;

	ck_all(S("1;abcdefg\r\nZ\r\n0\r\n\r\n"), &l, 0, &res);
	assert_int_equal(res.rc, 0);
}

static void test_chunked_trailers(void **state)
{
	zt_http1_limits l = { .max_trailer = 16, .max_fields = 2 };
	struct ck_result res;

	(void)state;
	ck_bad(S("0\r\nX: a\r\n b\r\n\r\n"), "http-obs-fold");
	ck_bad(S("0\r\n X: a\r\n\r\n"), "http-obs-fold");
	ck_bad(S("0\r\nX : a\r\n\r\n"), "http-field-ws");
	ck_bad(S("0\r\nX: a\0\r\n\r\n"), "http-field-value");
	ck_bad(S("0\r\nX: a\x7f\r\n\r\n"), "http-field-value");
	ck_bad(S("0\r\nX: a\rb\r\n\r\n"), "http-bare-cr");
	ck_bad(S("0\r\nX: a\nb\r\n\r\n"), "http-bare-lf");
	ck_bad(S("0\r\nX\r\n\r\n"), "http-trailer");
	ck_bad(S("0\r\n: a\r\n\r\n"), "http-trailer");
	ck_bad(S("0\r\nX(: a\r\n\r\n"), "http-trailer");
	ck_bad(S("0\r\nContent-Length: 5\r\n\r\n"), "http-trailer");
	ck_bad(S("0\r\ntransfer-encoding: chunked\r\n\r\n"), "http-trailer");
	ck_bad(S("0\r\nHOST: evil\r\n\r\n"), "http-trailer");
	ck_all(S("0\r\nContent-Length-X: 5\r\nHostname: x\r\n\r\n"), NULL, 0, &res);
	assert_int_equal(res.rc, 0);

	ck_all(S("0\r\nA: 1\r\nB: 2\r\n\r\n"), &l, 0, &res);
	assert_int_equal(res.rc, 0);
	ck_bad_lim(S("0\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n"), &l, 431, "http-too-many-fields");
	ck_bad_lim(S("0\r\nA: 123456789012\r\n\r\n"), &l, 431, "http-trailer-too-large");
}

static void test_chunked_state(void **state)
{
	zt_http1_chunked c;
	size_t used, off, len;
	zt_err e;

	(void)state;
	/* one run of payload per call; the framing around it is consumed */
	zt_http1_chunked_init(&c, NULL, 0);
	assert_int_equal(zt_http1_chunked_feed(&c, "3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n", 22, &used,
					       &off, &len, &e), 0);
	assert_int_equal(used, 6);
	assert_int_equal(off, 3);
	assert_int_equal(len, 3);
	assert_int_equal(zt_http1_chunked_feed(&c, "\r\n2\r\nde\r\n0\r\n\r\n", 16, &used, &off,
					       &len, &e), 0);
	assert_int_equal(used, 7);
	assert_int_equal(off, 5);
	assert_int_equal(len, 2);
	assert_false(zt_http1_chunked_done(&c));
	assert_int_equal(zt_http1_chunked_feed(&c, "\r\n0\r\n\r\nXX", 9, &used, &off, &len, &e), 0);
	assert_int_equal(used, 7);
	assert_int_equal(len, 0);
	assert_true(zt_http1_chunked_done(&c));
	assert_true(c.total == 5);
	assert_true(c.wire == 20);
	/* done: nothing more is taken */
	assert_int_equal(zt_http1_chunked_feed(&c, "XX", 2, &used, &off, &len, &e), 0);
	assert_int_equal(used, 0);
	/* empty input is fine */
	zt_http1_chunked_init(&c, NULL, 0);
	assert_int_equal(zt_http1_chunked_feed(&c, "", 0, &used, &off, &len, &e), 0);
	assert_int_equal(used, 0);
}

/* ---- writers ------------------------------------------------------------ */

static void assert_buf(const zt_buf *b, const char *want)
{
	if (b->len != strlen(want) || memcmp(b->p, want, b->len) != 0)
		fail_msg("wrote \"%.*s\", expected \"%s\"", (int)b->len, (const char *)b->p, want);
}

static void test_write_request(void **state)
{
	static const char in[] = "POST /a HTTP/1.1\r\nHost: a\r\nConnection: keep-alive\r\n"
				 "content-length: 3\r\nX-Keep: 1\r\n\r\n";
	static const char *const drop[] = { "CONNECTION", "Content-Length", NULL };
	const zt_http1_field extra[] = { { "Content-Length", 14, "3", 1 },
					 { "X-Forwarded-For", 15, "10.0.0.1", 8 } };
	zt_http1_request r;
	zt_http1_out o;
	zt_buf b;
	zt_err e;

	(void)state;
	req_ok(S(in), &r);
	zt_buf_init(&b, 4096);
	o = (zt_http1_out){ .fields = r.fields, .nfields = r.nfields, .drop = drop,
			    .extra = extra, .nextra = 2 };
	assert_int_equal(zt_http1_write_request(&b, r.method, r.method_len, "/b?x", 4, &o, &e), 0);
	assert_buf(&b, "POST /b?x HTTP/1.1\r\nHost: a\r\nX-Keep: 1\r\nContent-Length: 3\r\n"
		       "X-Forwarded-For: 10.0.0.1\r\n\r\n");
	zt_buf_free(&b, 0);

	/* no fields at all */
	zt_buf_init(&b, 4096);
	assert_int_equal(zt_http1_write_request(&b, "GET", 3, "*", 1, NULL, &e), 0);
	assert_buf(&b, "GET * HTTP/1.1\r\n\r\n");
	zt_buf_free(&b, 0);
}

static void test_write_hop_by_hop(void **state)
{
	static const char in[] = "GET / HTTP/1.1\r\nHost: a\r\nConnection: close, X-Secret\r\n"
				 "X-Secret: 1\r\nKeep-Alive: 5\r\nTE: trailers\r\nUpgrade: h2c\r\n"
				 "Proxy-Connection: x\r\nX-Other: 2\r\n\r\n";
	zt_http1_request r;
	zt_http1_out o;
	zt_buf b;
	zt_err e;

	(void)state;
	req_ok(S(in), &r);
	zt_buf_init(&b, 4096);
	o = (zt_http1_out){ .fields = r.fields, .nfields = r.nfields,
			    .flags = ZT_HTTP1_DROP_HOP_BY_HOP };
	assert_int_equal(zt_http1_write_request(&b, "GET", 3, "/", 1, &o, &e), 0);
	assert_buf(&b, "GET / HTTP/1.1\r\nHost: a\r\nX-Other: 2\r\n\r\n");
	zt_buf_free(&b, 0);
}

static void test_write_refuses_injection(void **state)
{
	const zt_http1_field bad[] = {
		{ "X", 1, "a\r\nX-Evil: 1", 12 }, { "X", 1, "a\nb", 3 }, { "X", 1, "a\rb", 3 },
		{ "X", 1, "a\0b", 3 },           { "X", 1, "\x01", 1 },  { "X", 1, "\x7f", 1 },
		{ "X Y", 3, "a", 1 },            { "X:Y", 3, "a", 1 },   { "", 0, "a", 1 },
		{ "X\r\nY", 4, "a", 1 },         { "X\0", 2, "a", 1 },
	};
	zt_http1_out o;
	zt_buf b;
	zt_err e;

	(void)state;
	zt_buf_init(&b, 4096);
	assert_int_equal(zt_buf_append(&b, "keep", 4, &e), 0);
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		o = (zt_http1_out){ .extra = &bad[i], .nextra = 1 };
		assert_int_equal(zt_http1_write_request(&b, "GET", 3, "/", 1, &o, &e), -ZT_EINVAL);
		assert_string_equal(e.rule, "http-write");
		assert_int_equal(b.len, 4); /* nothing half-written */
		o = (zt_http1_out){ .fields = &bad[i], .nfields = 1 };
		assert_int_equal(zt_http1_write_response(&b, 200, "OK", 2, &o, &e), -ZT_EINVAL);
		assert_int_equal(b.len, 4);
	}
	/* a dropped bad field is not looked at */
	static const char *const drop[] = { "x", NULL };

	o = (zt_http1_out){ .fields = bad, .nfields = 6, .drop = drop };
	assert_int_equal(zt_http1_write_response(&b, 200, "OK", 2, &o, &e), 0);

	b.len = 4;
	assert_int_equal(zt_http1_write_request(&b, "GET /", 5, "/", 1, NULL, &e), -ZT_EINVAL);
	assert_int_equal(zt_http1_write_request(&b, "", 0, "/", 1, NULL, &e), -ZT_EINVAL);
	assert_int_equal(zt_http1_write_request(&b, "GET", 3, "", 0, NULL, &e), -ZT_EINVAL);
	assert_int_equal(zt_http1_write_request(&b, "GET", 3, "/ HTTP/1.1\r\nHost: evil", 22, NULL,
						&e), -ZT_EINVAL);
	assert_int_equal(zt_http1_write_request(&b, "GET", 3, "/a\r\n", 4, NULL, &e), -ZT_EINVAL);
	assert_int_equal(zt_http1_write_request(&b, "GET", 3, "/a#b", 4, NULL, &e), -ZT_EINVAL);
	assert_int_equal(zt_http1_write_request(&b, "GET", 3, "/\xc3\xa9", 3, NULL, &e), -ZT_EINVAL);
	assert_int_equal(zt_http1_write_response(&b, 200, "OK\r\nX: 1", 8, NULL, &e), -ZT_EINVAL);
	assert_int_equal(zt_http1_write_response(&b, 99, "OK", 2, NULL, &e), -ZT_EINVAL);
	assert_int_equal(zt_http1_write_response(&b, 600, "OK", 2, NULL, &e), -ZT_EINVAL);
	assert_int_equal(b.len, 4);

	/* a bounded buffer: too small is ZT_ELIMIT, and nothing is left behind */
	zt_buf small;

	zt_buf_init(&small, 20);
	assert_int_equal(zt_http1_write_request(&small, "GET", 3, "/a-long-target", 14, NULL, &e),
			 -ZT_ELIMIT);
	assert_int_equal(small.len, 0);
	zt_buf_free(&small, 0);
	zt_buf_free(&b, 0);
}

static void test_write_response(void **state)
{
	const zt_http1_field f[] = { { "Content-Length", 14, "0", 1 }, { "X-E", 3, "", 0 } };
	zt_http1_out o = { .fields = f, .nfields = 2 };
	zt_buf b;
	zt_err e;

	(void)state;
	zt_buf_init(&b, 4096);
	assert_int_equal(zt_http1_write_response(&b, 204, "No Content", 10, &o, &e), 0);
	assert_buf(&b, "HTTP/1.1 204 No Content\r\nContent-Length: 0\r\nX-E: \r\n\r\n");
	b.len = 0;
	assert_int_equal(zt_http1_write_response(&b, 200, "", 0, NULL, &e), 0);
	assert_buf(&b, "HTTP/1.1 200 \r\n\r\n");
	zt_buf_free(&b, 0);
}

static void test_write_error(void **state)
{
	zt_http1_response r;
	zt_buf b;
	zt_err e;

	(void)state;
	zt_buf_init(&b, 4096);
	assert_int_equal(zt_http1_write_error(&b, 400, "bare LF", "req-1:a.b_c", &e), 0);
	assert_buf(&b, "HTTP/1.1 400 Bad Request\r\n"
		       "Content-Type: text/plain; charset=utf-8\r\n"
		       "Content-Length: 21\r\n"
		       "Connection: close\r\n"
		       "Cache-Control: no-store\r\n"
		       "X-Content-Type-Options: nosniff\r\n"
		       "X-Request-Id: req-1:a.b_c\r\n"
		       "\r\n"
		       "Bad Request: bare LF\n");
	/* it parses as a response whose body is exactly Content-Length bytes */
	assert_int_equal(zt_http1_parse_response(b.p, b.len, NULL, 0, NULL, &r, &e), 0);
	assert_int_equal(r.status, 400);
	assert_int_equal(r.framing, ZT_HTTP1_BODY_LENGTH);
	assert_int_equal(r.head_len + r.content_length, b.len);
	assert_int_equal(r.keep_alive, 0);

	b.len = 0;
	assert_int_equal(zt_http1_write_error(&b, 431, NULL, NULL, &e), 0);
	assert_int_equal(zt_buf_terminate(&b, &e), 0);
	assert_non_null(strstr((const char *)b.p, "431 Request Header Fields Too Large\r\n"));
	assert_null(strstr((const char *)b.p, "X-Request-Id"));
	assert_int_equal(zt_http1_parse_response(b.p, b.len, NULL, 0, NULL, &r, &e), 0);
	assert_int_equal(r.head_len + r.content_length, b.len);

	/* the detail never carries controls or markup */
	b.len = 0;
	assert_int_equal(zt_http1_write_error(&b, 502, "<b>\r\nX: 1\x80", NULL, &e), 0);
	assert_int_equal(zt_buf_terminate(&b, &e), 0);
	assert_non_null(strstr((const char *)b.p, "\r\n\r\nBad Gateway: ?b???X: 1?\n"));

	b.len = 0;
	assert_int_equal(zt_http1_write_error(&b, 200, NULL, NULL, &e), -ZT_EINVAL);
	assert_int_equal(zt_http1_write_error(&b, 400, NULL, "a\r\nb", &e), -ZT_EINVAL);
	assert_int_equal(zt_http1_write_error(&b, 400, NULL, "", &e), -ZT_EINVAL);
	assert_int_equal(zt_http1_write_error(&b, 400, NULL, "a b", &e), -ZT_EINVAL);
	assert_int_equal(b.len, 0);
	zt_buf_free(&b, 0);

	assert_string_equal(zt_http1_reason(505), "HTTP Version Not Supported");
	assert_string_equal(zt_http1_reason(417), "Expectation Failed");
	assert_string_equal(zt_http1_reason(499), "Client Error");
}

static void test_round_trip(void **state)
{
	static const char in[] = "\r\nPATCH /x/y?z=1 HTTP/1.0\r\nHost: h:81\r\nA:  1 \r\n"
				 "B:\r\nContent-Length: 2\r\nConnection: keep-alive\r\n\r\n";
	zt_http1_request r, r2;
	zt_http1_out o;
	zt_buf b;
	zt_err e;

	(void)state;
	req_ok(S(in), &r);
	zt_buf_init(&b, 4096);
	o = (zt_http1_out){ .fields = r.fields, .nfields = r.nfields };
	assert_int_equal(zt_http1_write_request(&b, r.method, r.method_len, r.target, r.target_len,
						&o, &e), 0);
	assert_int_equal(zt_http1_parse_request(b.p, b.len, NULL, NULL, &r2, &e), 0);
	assert_int_equal(r2.head_len, b.len);
	assert_int_equal(r2.version, 11); /* our own version, RFC 9112 2.3 */
	assert_span(r2.method, r2.method_len, "PATCH");
	assert_span(r2.target, r2.target_len, "/x/y?z=1");
	assert_int_equal(r2.nfields, r.nfields);
	for (size_t i = 0; i < r.nfields; i++) {
		assert_memory_equal(r2.fields[i].name, r.fields[i].name, r.fields[i].name_len);
		assert_int_equal(r2.fields[i].value_len, r.fields[i].value_len);
		assert_memory_equal(r2.fields[i].value, r.fields[i].value, r.fields[i].value_len);
	}
	assert_int_equal(r2.framing, r.framing);
	assert_true(r2.content_length == r.content_length);
	zt_buf_free(&b, 0);
}

/* ---- helpers ------------------------------------------------------------ */

static void test_helpers(void **state)
{
	static const char in[] = "GET / HTTP/1.1\r\nHost: a\r\nX-A: 1\r\nx-a: 2\r\nX-B: 3\r\n"
				 "X-A: 4\r\n\r\n";
	const zt_http1_field *f;
	zt_http1_request r;
	size_t it = 0;
	int seen = 0;

	(void)state;
	req_ok(S(in), &r);
	while ((f = zt_http1_field_get(r.fields, r.nfields, "X-a", &it)) != NULL)
		seen = seen * 10 + (f->value[0] - '0');
	assert_int_equal(seen, 124);
	assert_int_equal(it, r.nfields);
	f = zt_http1_field_get(r.fields, r.nfields, "x-b", NULL);
	assert_non_null(f);
	assert_span(f->value, f->value_len, "3");
	assert_null(zt_http1_field_get(r.fields, r.nfields, "X-", NULL));
	assert_null(zt_http1_field_get(r.fields, r.nfields, "X-AA", NULL));

	assert_true(zt_http1_name_eq("Content-LENGTH", 14, "content-length"));
	assert_false(zt_http1_name_eq("Content-Length", 13, "content-length"));
	assert_false(zt_http1_name_eq("Content-Lengths", 15, "content-length"));
	assert_false(zt_http1_name_eq("", 0, "x"));
	assert_true(zt_http1_name_eq("", 0, ""));

	assert_true(zt_http1_list_has("a, Close ,b", 11, "close"));
	assert_true(zt_http1_list_has(",,close", 7, "close"));
	assert_false(zt_http1_list_has("closed, xclose", 14, "close"));
	assert_false(zt_http1_list_has("\"close\"", 7, "close"));
	assert_false(zt_http1_list_has("", 0, "close"));
	assert_true(zt_http1_list_has("x=\"a,close\", close", 18, "close"));
	assert_false(zt_http1_list_has("x=\"a,close\"", 11, "close"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_get),
		cmocka_unit_test(test_post_content_length),
		cmocka_unit_test(test_post_chunked),
		cmocka_unit_test(test_ows_and_values),
		cmocka_unit_test(test_keep_alive),
		cmocka_unit_test(test_leading_empty_line),
		cmocka_unit_test(test_target_forms),
		cmocka_unit_test(test_request_line),
		cmocka_unit_test(test_versions),
		cmocka_unit_test(test_incomplete_every_prefix),
		cmocka_unit_test(test_pipelined),
		cmocka_unit_test(test_cl_te),
		cmocka_unit_test(test_content_length),
		cmocka_unit_test(test_transfer_encoding),
		cmocka_unit_test(test_bare_lf_cr),
		cmocka_unit_test(test_field_syntax),
		cmocka_unit_test(test_too_many_fields),
		cmocka_unit_test(test_head_too_large),
		cmocka_unit_test(test_request_line_too_long),
		cmocka_unit_test(test_host),
		cmocka_unit_test(test_expect),
		cmocka_unit_test(test_upgrade),
		cmocka_unit_test(test_error_messages),
		cmocka_unit_test(test_response_framing),
		cmocka_unit_test(test_response_status_line),
		cmocka_unit_test(test_response_attacks),
		cmocka_unit_test(test_chunked_valid),
		cmocka_unit_test(test_chunked_sizes),
		cmocka_unit_test(test_chunked_crlf),
		cmocka_unit_test(test_chunked_ext),
		cmocka_unit_test(test_chunked_trailers),
		cmocka_unit_test(test_chunked_state),
		cmocka_unit_test(test_write_request),
		cmocka_unit_test(test_write_hop_by_hop),
		cmocka_unit_test(test_write_refuses_injection),
		cmocka_unit_test(test_write_response),
		cmocka_unit_test(test_write_error),
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_helpers),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
