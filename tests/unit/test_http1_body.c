/* Unit tests: the HTTP/1.1 chunked decoder and writers (net/http1_chunked.c,
 * net/http1_write.c). */
#include "http1_fixtures.h"

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
