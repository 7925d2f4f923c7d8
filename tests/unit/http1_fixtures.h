/*
 * tests/unit/http1_fixtures.h: what the HTTP/1.1 unit tests share (a
 * request head parsed the way the checks need it, exact heap copies so
 * ASan sees reads past the input). Included by test_http1.c and
 * test_http1_body.c.
 */
#ifndef ZT_HTTP1_FIXTURES_H
#define ZT_HTTP1_FIXTURES_H

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

static void assert_span(const char *p, size_t n, const char *want)
{
	if (n != strlen(want) || memcmp(p, want, n) != 0)
		fail_msg("got \"%.*s\", expected \"%s\"", (int)n, p ? p : "", want);
}

#endif /* ZT_HTTP1_FIXTURES_H */
