/* Unit tests: the strict HTTP/1.1 parser, requests and responses (net/http1.c). */
#include "http1_fixtures.h"

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
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
