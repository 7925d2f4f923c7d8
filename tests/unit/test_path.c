/* Unit tests: HTTP request path normalization (core/path.c). */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"

/*
 * One case: `len` bytes of `in` (sizeof - 1, so NULs inside count); either
 * the exact output `want` with path part `plen` bytes long, or the rule.
 */
struct pcase {
	const char *in;
	size_t len;
	const char *want;
	size_t plen;
	const char *rule;
};

#define OK(i, w) { i, sizeof(i) - 1, w, sizeof(w) - 1, NULL }
#define OKQ(i, w, pl) { i, sizeof(i) - 1, w, pl, NULL }
#define BAD(i, r) { i, sizeof(i) - 1, NULL, 0, r }

static const struct pcase cases[] = {
	/* the attacks from the issue (Istio CVE-2021-31920, CVE-2021-39156) */
	OK("/admin/../admin", "/admin"),
	OK("//admin", "/admin"),
	OK("/./admin", "/admin"),
	OK("/%61dmin", "/admin"),
	BAD("/admin%2F..", "path-encoded-slash"),
	OK("/ADMIN", "/ADMIN"), /* case is the backend's business */
	BAD("/admin#x", "path-fragment"),
	BAD("/admin%00", "path-control"),

	/* plain paths stay as they are */
	OK("/", "/"),
	OK("/admin", "/admin"),
	OK("/~user/x-y_z.html", "/~user/x-y_z.html"),
	OK("/.well-known/acme", "/.well-known/acme"),
	OK("/a;b=c,d", "/a;b=c,d"),
	OK("/*", "/*"),
	OK("/a:b@c!$&'()*+=", "/a:b@c!$&'()*+="),

	/* repeated slashes */
	OK("//a///b", "/a/b"),
	OK("/a//", "/a/"),
	OK("///", "/"),
	OK("/a//b//", "/a/b/"),

	/* dot segments, RFC 3986 5.2.4 */
	OK("/a/.", "/a/"),
	OK("/a/..", "/"),
	OK("/..", "/"),
	OK("/.", "/"),
	OK("/...", "/..."),
	OK("/.a", "/.a"),
	OK("/a/..b", "/a/..b"),
	OK("/a/b..", "/a/b.."),
	OK("/a/.../b", "/a/.../b"),
	OK("/a/", "/a/"),
	OK("/a/b/..", "/a/"),
	OK("/a/b/../", "/a/"),
	OK("/a/b/./", "/a/b/"),
	OK("/a/./b/./c", "/a/b/c"),
	OK("/a/b/c/../../d", "/a/d"),
	OK("/a/b/../../..", "/"),
	OK("/../../../etc/passwd", "/etc/passwd"),
	OK("/a/..//b", "/b"),
	OK("//./..//a/./", "/a/"),

	/* dot segments after decoding */
	OK("/a/%2e%2E/b", "/b"),
	OK("/%2e%2e/admin", "/admin"),
	OK("/a/%2E./b", "/b"),
	OK("/a/.%2e", "/"),
	OK("/%2E", "/"),
	OK("/a/b/.%2E/", "/a/"),
	OK("/%2E%2E%2E", "/..."),

	/* percent-encoding: unreserved decoded, the rest in uppercase */
	OK("/%252F", "/%252F"), /* decoded once, never twice */
	OK("/%7e", "/~"),
	OK("/%41", "/A"),
	OK("/%3f", "/%3F"),
	OK("/%3F", "/%3F"),
	OK("/%2d%2E%5f%7E%30%7a", "/-._~0z"),
	OK("/a%20b", "/a%20b"),
	OK("/%c3%a9t%C3%A9", "/%C3%A9t%C3%A9"),
	OK("/%25", "/%25"),
	OK("/%23", "/%23"),
	OK("/%3b%2c", "/%3B%2C"),
	OK("/%80%ff", "/%80%FF"),

	/* queries are checked and kept as they are */
	OKQ("/a/../b?x=1&y=%2F", "/b?x=1&y=%2F", 2),
	OKQ("/a?", "/a?", 2),
	OKQ("/?", "/?", 1),
	OKQ("/a?b?c/d", "/a?b?c/d", 2),
	OKQ("/a?x=%2e%2E&y=%3f", "/a?x=%2e%2E&y=%3f", 2),
	OKQ("/a?x=\\y", "/a?x=\\y", 2),
	OKQ("/a?q=%00", "/a?q=%00", 2),
	OKQ("/a?/../b", "/a?/../b", 2),
	OKQ("//a/./../b/?q", "/b/?q", 3),
	OKQ("/a/..?q", "/?q", 1),
	OKQ("/a/.?q", "/a/?q", 3),
	OKQ("/%61/%2e?%61", "/a/?%61", 3),

	/* encoded separators */
	BAD("/admin%2f", "path-encoded-slash"),
	BAD("/a%5Cb", "path-encoded-slash"),
	BAD("/a%5cb", "path-encoded-slash"),
	BAD("/%2e%2e%2f", "path-encoded-slash"),
	BAD("/a/..%2F..%2Fetc", "path-encoded-slash"),

	/* encoded controls */
	BAD("/a%1f", "path-control"),
	BAD("/a%7F", "path-control"),
	BAD("/a%0d%0a", "path-control"),

	/* malformed escapes */
	BAD("/%zz", "path-bad-percent"),
	BAD("/%4", "path-bad-percent"),
	BAD("/%", "path-bad-percent"),
	BAD("/a%", "path-bad-percent"),
	BAD("/%g0", "path-bad-percent"),
	BAD("/%0g", "path-bad-percent"),
	BAD("/a%4?x", "path-bad-percent"),
	BAD("/%%41", "path-bad-percent"),
	BAD("/a?x=%zz", "path-bad-percent"),
	BAD("/a?x=%2", "path-bad-percent"),
	BAD("/a?x=%", "path-bad-percent"),

	/* raw bytes */
	BAD("/a\\b", "path-backslash"),
	BAD("/a/..\\", "path-backslash"),
	BAD("/a b", "path-control"),
	BAD("/a\tb", "path-control"),
	BAD("/a\x7f", "path-control"),
	BAD("/caf\xc3\xa9", "path-control"),
	BAD("/a\0b", "path-control"), /* NUL in the middle */
	BAD("/a\r\nHost: evil", "path-control"),
	BAD("/\x01", "path-control"),
	BAD("/a#", "path-fragment"),
	BAD("/#/../admin", "path-fragment"),

	/* not origin form */
	BAD("*", "path-not-absolute"),
	BAD("admin", "path-not-absolute"),
	BAD("?a", "path-not-absolute"),
	BAD("\\admin", "path-not-absolute"),
	BAD("http://h/a", "path-not-absolute"),
	BAD("", "path-empty"),

	/* bad queries */
	BAD("/a?b#c", "path-fragment"),
	BAD("/a?x y", "path-control"),
	BAD("/a?\x01", "path-control"),
	BAD("/a?x\x80", "path-control"),
	BAD("/a?x\0", "path-control"),
};

/* Copies len bytes into a buffer of exactly that size, so ASan sees over-reads. */
static char *exact(const char *in, size_t len)
{
	char *p = malloc(len);

	if (len)
		assert_non_null(p);
	if (len)
		memcpy(p, in, len);
	return p;
}

/*
 * Normalizes len bytes of `in` into an output buffer of exactly len + 1
 * bytes (ASan sees over-writes); returns the result, *outp owned by caller.
 */
static int run(const char *in, size_t len, char **outp, size_t *plen, zt_err *e)
{
	char *copy = exact(in, len), *out = malloc(len + 1);
	int r;

	assert_non_null(out);
	memset(out, 'Z', len + 1);
	*plen = 12345;
	zt_err_clear(e);
	r = zt_path_normalize(copy, len, out, len + 1, plen, e);
	free(copy);
	*outp = out;
	return r;
}

static void check_case(const struct pcase *c)
{
	char *out, *again;
	size_t plen, plen2, n;
	zt_err e;
	int r;

	r = run(c->in, c->len, &out, &plen, &e);
	if (c->rule) {
		if (r == 0)
			fail_msg("accepted \"%s\" (len %zu) as \"%s\", expected %s", c->in,
				 c->len, out, c->rule);
		if (strcmp(e.rule, c->rule) != 0)
			fail_msg("\"%s\": rule \"%s\" (%s), expected \"%s\"", c->in, e.rule,
				 e.msg, c->rule);
		assert_int_equal(r, -ZT_EINVAL);
		assert_int_equal(e.code, ZT_EINVAL);
		assert_true(e.msg[0] != '\0');
		assert_int_equal(out[0], '\0'); /* out left empty */
		assert_int_equal(plen, 0);
		free(out);
		return;
	}
	if (r != 0)
		fail_msg("rejected \"%s\": %s (%s), expected \"%s\"", c->in, e.rule,
			 e.msg, c->want);
	/* NUL-terminated inside the buffer, exactly the expected string */
	assert_non_null(memchr(out, '\0', c->len + 1));
	if (strcmp(out, c->want) != 0)
		fail_msg("\"%s\" gave \"%s\", expected \"%s\"", c->in, out, c->want);
	if (plen != c->plen)
		fail_msg("\"%s\": path_len %zu, expected %zu", c->in, plen, c->plen);
	assert_int_equal(plen, strcspn(out, "?"));
	assert_true(strlen(out) <= c->len);

	/* idempotence: the output is its own normal form */
	n = strlen(out);
	r = run(out, n, &again, &plen2, &e);
	if (r != 0 || strcmp(again, out) != 0 || plen2 != plen)
		fail_msg("\"%s\" -> \"%s\" -> \"%s\" (%s): not idempotent", c->in, out,
			 again, e.msg);
	free(again);
	free(out);
}

static void test_path_table(void **state)
{
	size_t i, ok = 0;

	(void)state;
	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		check_case(&cases[i]);
		ok += cases[i].rule == NULL;
	}
	/* the table itself: big enough, both outcomes covered */
	assert_true(i >= 60);
	assert_true(ok >= 30 && i - ok >= 30);
}

static void test_path_query_split(void **state)
{
	char *out;
	size_t plen;
	zt_err e;

	(void)state;
	assert_int_equal(run("/a/../b?x=1&y=%2F", 17, &out, &plen, &e), 0);
	assert_string_equal(out, "/b?x=1&y=%2F");
	assert_int_equal(plen, 2);
	free(out);
	assert_int_equal(run("/a?", 3, &out, &plen, &e), 0);
	assert_string_equal(out, "/a?");
	assert_int_equal(plen, 2);
	free(out);
}

static void test_path_limits(void **state)
{
	char *in = malloc(ZT_PATH_MAX + 1), *out;
	size_t plen;
	zt_err e;

	(void)state;
	assert_non_null(in);
	in[0] = '/';
	memset(in + 1, 'a', ZT_PATH_MAX);

	/* exactly ZT_PATH_MAX bytes is fine */
	assert_int_equal(run(in, ZT_PATH_MAX, &out, &plen, &e), 0);
	assert_int_equal(strlen(out), ZT_PATH_MAX);
	assert_int_equal(plen, ZT_PATH_MAX);
	assert_memory_equal(out, in, ZT_PATH_MAX);
	free(out);

	/* one more is not */
	assert_int_equal(run(in, ZT_PATH_MAX + 1, &out, &plen, &e), -ZT_ELIMIT);
	assert_string_equal(e.rule, "path-too-long");
	assert_int_equal(e.code, ZT_ELIMIT);
	assert_string_equal(out, "");
	free(out);

	/* a long path made of dot segments collapses in place */
	for (size_t i = 0; i + 3 <= ZT_PATH_MAX; i += 3)
		memcpy(in + i, "/..", 3);
	assert_int_equal(run(in, ZT_PATH_MAX - ZT_PATH_MAX % 3, &out, &plen, &e), 0);
	assert_string_equal(out, "/");
	free(out);
	free(in);
}

static void test_path_outsz(void **state)
{
	char out[8];
	size_t plen = 99;
	zt_err e;

	(void)state;
	/* outsz must be at least len + 1, even when the result would be shorter */
	memset(out, 'Z', sizeof out);
	assert_int_equal(zt_path_normalize("//a", 3, out, 3, &plen, &e), -ZT_ELIMIT);
	assert_string_equal(e.rule, "path-too-long");
	assert_int_equal(out[0], '\0');
	assert_int_equal(out[3], 'Z'); /* nothing written past outsz */
	assert_int_equal(plen, 0);

	/* outsz 0: nothing may be written at all */
	memset(out, 'Z', sizeof out);
	assert_int_equal(zt_path_normalize("/a", 2, out, 0, &plen, &e), -ZT_ELIMIT);
	assert_int_equal(out[0], 'Z');

	/* exactly len + 1 */
	assert_int_equal(zt_path_normalize("/a/b", 4, out, 5, &plen, &e), 0);
	assert_string_equal(out, "/a/b");
}

static void test_path_error_messages(void **state)
{
	char *out;
	size_t plen;
	zt_err e;

	(void)state;
	/* hostile input is quoted: no raw newline to forge log lines */
	assert_int_equal(run("/a\r\nX-Evil: 1", 13, &out, &plen, &e), -ZT_EINVAL);
	free(out);
	assert_string_equal(e.rule, "path-control");
	assert_null(strchr(e.msg, '\n'));
	assert_null(strchr(e.msg, '\r'));
	assert_non_null(strstr(e.msg, "/a\\x0d\\x0aX-Evil: 1"));

	/* the message names the offending escape and what to send */
	assert_int_equal(run("/admin%2F..", 11, &out, &plen, &e), -ZT_EINVAL);
	free(out);
	assert_non_null(strstr(e.msg, "\"/admin%2F..\""));
	assert_non_null(strstr(e.msg, "\"%2F\" at byte 6"));
	assert_non_null(strstr(e.msg, "send"));

	assert_int_equal(run("/a\\b", 4, &out, &plen, &e), -ZT_EINVAL);
	free(out);
	assert_non_null(strstr(e.msg, "/a\\x5cb"));

	/* a long hostile input is cut, the message stays bounded */
	char *big = malloc(ZT_PATH_MAX);

	assert_non_null(big);
	memset(big, '\xff', ZT_PATH_MAX);
	big[0] = '/';
	assert_int_equal(run(big, ZT_PATH_MAX, &out, &plen, &e), -ZT_EINVAL);
	assert_string_equal(e.rule, "path-control");
	assert_non_null(strstr(e.msg, "..."));
	free(out);
	free(big);

	/* e may be NULL */
	char buf[8];

	assert_int_equal(zt_path_normalize("/a#", 3, buf, sizeof buf, &plen, NULL), -ZT_EINVAL);
	assert_int_equal(zt_path_normalize("", 0, buf, sizeof buf, &plen, NULL), -ZT_EINVAL);
	assert_int_equal(zt_path_normalize("/a/../b", 7, buf, sizeof buf, &plen, NULL), 0);
	assert_string_equal(buf, "/b");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_path_table),
		cmocka_unit_test(test_path_query_split),
		cmocka_unit_test(test_path_limits),
		cmocka_unit_test(test_path_outsz),
		cmocka_unit_test(test_path_error_messages),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
