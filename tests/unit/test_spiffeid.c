/* tests/unit/test_spiffeid.c: SPIFFE IDs, base64, hex and hashing. */
#include "testutil.h"

#include "core/core.h"
#include "crypto/crypto.h"
#include "identity/identity.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- helpers ----------------------------------------------------------- */

static char *repeat(char c, size_t n)
{
	char *s = malloc(n + 1);

	assert_non_null(s);
	memset(s, c, n);
	s[n] = '\0';
	return s;
}

static char *cat3(const char *a, const char *b, const char *c)
{
	char *s;

	assert_true(asprintf(&s, "%s%s%s", a, b, c) >= 0);
	return s;
}

/*
 * Parses `len` bytes copied into a buffer of exactly that size (so a read
 * past the end shows under ASan) and checks the outcome: `rule` NULL means
 * valid, with trust domain `td` and path `path`.
 */
static void check_id(const char *in, size_t len, const char *rule, const char *td,
		     const char *path)
{
	char *copy = malloc(len ? len : 1);
	zt_spiffe_id id;
	const char *p;
	size_t n;
	zt_err e;
	int r;

	assert_non_null(copy);
	memcpy(copy, in, len);
	memset(&id, 0x5a, sizeof id);
	zt_err_clear(&e);
	r = zt_id_parse(copy, len, &id, &e);
	free(copy);
	if (rule) {
		if (r == 0)
			fail_msg("accepted invalid ID \"%.80s\" (len %zu), expected %s",
				 in, len, rule);
		if (strcmp(e.rule, rule) != 0)
			fail_msg("ID \"%.80s\": rule \"%s\" (%s), expected \"%s\"", in,
				 e.rule, e.msg, rule);
		assert_int_equal(r, -ZT_EINVAL);
		assert_int_equal(e.code, ZT_EINVAL);
		assert_true(e.msg[0] != '\0');
		assert_int_equal(id.str[0], '\0');
		assert_int_equal(id.len, 0);
		assert_int_equal(id.td_len, 0);
	} else {
		if (r != 0)
			fail_msg("rejected valid ID \"%.80s\" (len %zu): %s: %s", in, len,
				 e.rule, e.msg);
		assert_int_equal(id.len, len);
		assert_memory_equal(id.str, in, len);
		assert_int_equal(id.str[len], '\0');
		p = zt_id_td(&id, &n);
		assert_int_equal(n, strlen(td));
		assert_memory_equal(p, td, n);
		assert_int_equal(id.td_len, n);
		p = zt_id_path(&id, &n);
		assert_int_equal(n, strlen(path));
		assert_memory_equal(p, path, n);
		assert_int_equal(p[n], '\0');
		assert_int_equal(zt_id_in_td(&id, td, strlen(td)), 1);
	}
}

/* ---- zt_id_parse, table-driven ------------------------------------------ */

static const struct idcase {
	const char *in;
	size_t len; /* 0: strlen(in) */
	const char *rule; /* NULL: valid */
	const char *td;
	const char *path;
} id_cases[] = {
	/* valid */
	{ "spiffe://td", 0, NULL, "td", "" },
	{ "spiffe://example.org", 0, NULL, "example.org", "" },
	{ "spiffe://example.org/ns/prod/sa/web", 0, NULL, "example.org", "/ns/prod/sa/web" },
	{ "spiffe://example.org/Path/UPPER/MiXeD", 0, NULL, "example.org", "/Path/UPPER/MiXeD" },
	{ "spiffe://example.org/a.b-c_d/e_f", 0, NULL, "example.org", "/a.b-c_d/e_f" },
	{ "spiffe://my_td-1.example.org/x", 0, NULL, "my_td-1.example.org", "/x" },
	{ "spiffe://a", 0, NULL, "a", "" },
	{ "spiffe://1.2.3.4/0/1/2", 0, NULL, "1.2.3.4", "/0/1/2" },
	{ "spiffe://-/_", 0, NULL, "-", "/_" },
	{ "spiffe://example.org/...", 0, NULL, "example.org", "/..." },
	{ "spiffe://example.org/.a", 0, NULL, "example.org", "/.a" },
	{ "spiffe://example.org/a.", 0, NULL, "example.org", "/a." },
	{ "spiffe://example.org/..a/.../..b", 0, NULL, "example.org", "/..a/.../..b" },
	{ "spiffe://example.org/-/_/.-", 0, NULL, "example.org", "/-/_/.-" },
	/* only `len` bytes count: the rest of the string is not part of it */
	{ "spiffe://example.org/abc?q#f", 24, NULL, "example.org", "/abc" },
	{ "spiffe://example.org//", 20, NULL, "example.org", "" },

	/* empty, scheme */
	{ "", 0, "id-empty", NULL, NULL },
	{ "SPIFFE://example.org", 0, "id-scheme", NULL, NULL },
	{ "Spiffe://example.org", 0, "id-scheme", NULL, NULL },
	{ "http://example.org", 0, "id-scheme", NULL, NULL },
	{ "https://example.org/path", 0, "id-scheme", NULL, NULL },
	{ "spiffe:/example.org", 0, "id-scheme", NULL, NULL },
	{ "spiffe:", 0, "id-scheme", NULL, NULL },
	{ "spiffe", 0, "id-scheme", NULL, NULL },
	{ "spiffe//example.org", 0, "id-scheme", NULL, NULL },
	{ " spiffe://example.org", 0, "id-scheme", NULL, NULL },
	{ "example.org", 0, "id-scheme", NULL, NULL },
	{ "/ns/x", 0, "id-scheme", NULL, NULL },
	/* trust domain */
	{ "spiffe://", 0, "id-td-empty", NULL, NULL },
	{ "spiffe:///path", 0, "id-td-empty", NULL, NULL },
	{ "spiffe:///", 0, "id-td-empty", NULL, NULL },
	{ "spiffe://exa$mple.org", 0, "id-td-char", NULL, NULL },
	{ "spiffe://exa mple.org", 0, "id-td-char", NULL, NULL },
	{ "spiffe://example.org ", 0, "id-td-char", NULL, NULL },
	{ "spiffe://ex\0ample.org", 21, "id-td-char", NULL, NULL },
	{ "spiffe://b\xc3\xbc" "cher.de", 0, "id-td-char", NULL, NULL },
	{ "spiffe://[::1]", 0, "id-td-char", NULL, NULL },
	{ "spiffe://Example.org", 0, "id-td-case", NULL, NULL },
	{ "spiffe://EXAMPLE.ORG/path", 0, "id-td-case", NULL, NULL },
	{ "spiffe://user@example.org", 0, "id-userinfo", NULL, NULL },
	{ "spiffe://user:pw@example.org", 0, "id-port", NULL, NULL },
	{ "spiffe://example.org:8443", 0, "id-port", NULL, NULL },
	{ "spiffe://example.org:8443/path", 0, "id-port", NULL, NULL },
	{ "spiffe://ex%41mple.org", 0, "id-percent", NULL, NULL },
	{ "spiffe://example.org?x=1", 0, "id-query", NULL, NULL },
	{ "spiffe://example.org#frag", 0, "id-fragment", NULL, NULL },
	/* path */
	{ "spiffe://example.org/a%20b", 0, "id-percent", NULL, NULL },
	{ "spiffe://example.org/%2e%2e", 0, "id-percent", NULL, NULL },
	{ "spiffe://example.org/path?x=1", 0, "id-query", NULL, NULL },
	{ "spiffe://example.org/path?", 0, "id-query", NULL, NULL },
	{ "spiffe://example.org/path#frag", 0, "id-fragment", NULL, NULL },
	{ "spiffe://example.org/a b", 0, "id-path-char", NULL, NULL },
	{ "spiffe://example.org/a*", 0, "id-path-char", NULL, NULL },
	{ "spiffe://example.org/*", 0, "id-path-char", NULL, NULL },
	{ "spiffe://example.org/hi!", 0, "id-path-char", NULL, NULL },
	{ "spiffe://example.org/caf\xc3\xa9", 0, "id-path-char", NULL, NULL },
	{ "spiffe://example.org/\xe2\x80\x8b", 0, "id-path-char", NULL, NULL },
	{ "spiffe://example.org/a\0b", 24, "id-path-char", NULL, NULL },
	{ "spiffe://example.org/a\0", 23, "id-path-char", NULL, NULL },
	{ "spiffe://example.org/a:b", 0, "id-path-char", NULL, NULL },
	{ "spiffe://example.org/a@b", 0, "id-path-char", NULL, NULL },
	{ "spiffe://example.org/a\\b", 0, "id-path-char", NULL, NULL },
	{ "spiffe://example.org/a\n", 0, "id-path-char", NULL, NULL },
	{ "spiffe://example.org/a+b", 0, "id-path-char", NULL, NULL },
	{ "spiffe://example.org//a", 0, "id-path-empty-segment", NULL, NULL },
	{ "spiffe://example.org/a//b", 0, "id-path-empty-segment", NULL, NULL },
	{ "spiffe://example.org/.", 0, "id-path-dot-segment", NULL, NULL },
	{ "spiffe://example.org/..", 0, "id-path-dot-segment", NULL, NULL },
	{ "spiffe://example.org/a/./b", 0, "id-path-dot-segment", NULL, NULL },
	{ "spiffe://example.org/a/..", 0, "id-path-dot-segment", NULL, NULL },
	{ "spiffe://example.org/../etc", 0, "id-path-dot-segment", NULL, NULL },
	{ "spiffe://example.org/", 0, "id-trailing-slash", NULL, NULL },
	{ "spiffe://example.org/a/", 0, "id-trailing-slash", NULL, NULL },
	{ "spiffe://example.org/a/b/", 0, "id-trailing-slash", NULL, NULL },
};

static void test_id_table(void **state)
{
	size_t i, valid = 0, invalid = 0;

	(void)state;
	for (i = 0; i < sizeof id_cases / sizeof id_cases[0]; i++) {
		const struct idcase *c = &id_cases[i];

		check_id(c->in, c->len ? c->len : strlen(c->in), c->rule, c->td, c->path);
		if (c->rule)
			invalid++;
		else
			valid++;
	}
	assert_true(valid >= 15);
	assert_true(invalid >= 40);
}

static void test_id_lengths(void **state)
{
	char *td255 = repeat('t', ZT_TD_MAX);
	char *td256 = repeat('t', ZT_TD_MAX + 1);
	/* "spiffe://" + 255 + "/" + 1783 = 2048 */
	char *seg = repeat('Z', ZT_ID_MAX - 9 - ZT_TD_MAX - 1);
	char *path = cat3("/", seg, "");
	char *max = cat3("spiffe://", td255, path);
	char *over = cat3(max, "Z", "");
	char *s;

	(void)state;
	assert_int_equal(strlen(max), ZT_ID_MAX);

	/* a 2048-byte ID with a 255-byte trust domain is the largest allowed */
	check_id(max, strlen(max), NULL, td255, path);
	check_id(over, strlen(over), "id-too-long", NULL, NULL);

	/* a bare 255-byte trust domain; 256 is too long, with or without path */
	s = cat3("spiffe://", td255, "");
	check_id(s, strlen(s), NULL, td255, "");
	free(s);
	s = cat3("spiffe://", td256, "");
	check_id(s, strlen(s), "id-td-length", NULL, NULL);
	free(s);
	s = cat3("spiffe://", td256, "/ns/x");
	check_id(s, strlen(s), "id-td-length", NULL, NULL);
	free(s);

	/* many short segments up to exactly 2048 bytes */
	{
		char buf[ZT_ID_MAX + 2];
		size_t n = (size_t)snprintf(buf, sizeof buf, "spiffe://example.org");

		while (n + 2 <= ZT_ID_MAX) {
			buf[n++] = '/';
			buf[n++] = 'a';
		}
		if (n < ZT_ID_MAX)
			buf[n++] = 'b';
		buf[n] = '\0';
		assert_int_equal(n, ZT_ID_MAX);
		check_id(buf, n, NULL, "example.org", buf + 20);
		/* one more byte is too many, whatever it is */
		buf[n++] = 'c';
		check_id(buf, n, "id-too-long", NULL, NULL);
		/* and the length is checked before anything else */
		buf[0] = 'X';
		check_id(buf, n, "id-too-long", NULL, NULL);
		/* a bad byte at the very end of a 2048-byte ID */
		buf[0] = 's';
		buf[ZT_ID_MAX - 1] = '!';
		check_id(buf, ZT_ID_MAX, "id-path-char", NULL, NULL);
	}

	/* a huge input is reported, not copied whole into the message */
	{
		zt_spiffe_id id;
		zt_err e;
		char *huge = repeat('x', 100000);

		assert_int_equal(zt_id_parse(huge, 100000, &id, &e), -ZT_EINVAL);
		assert_string_equal(e.rule, "id-too-long");
		assert_true(strlen(e.msg) < 600);
		free(huge);
	}

	free(td255);
	free(td256);
	free(seg);
	free(path);
	free(max);
	free(over);
}

/* The message quotes hostile bytes instead of copying them. */
static void test_id_message_quoting(void **state)
{
	static const char in[] = "spiffe://example.org/caf\xc3\xa9\n";
	zt_spiffe_id id;
	zt_err e;

	(void)state;
	assert_int_equal(zt_id_parse(in, sizeof in - 1, &id, &e), -ZT_EINVAL);
	assert_string_equal(e.rule, "id-path-char");
	assert_non_null(strstr(e.msg, "caf\\xc3\\xa9\\x0a"));
	assert_null(strchr(e.msg, '\n'));
	assert_null(strchr(e.msg, '\xc3'));

	assert_int_equal(zt_id_parse("spiffe://a/b\0c", 14, &id, &e), -ZT_EINVAL);
	assert_non_null(strstr(e.msg, "b\\x00c"));
}

/* ---- accessors ------------------------------------------------------------ */

static void test_id_accessors(void **state)
{
	zt_spiffe_id id;
	const char *p;
	size_t n;
	zt_err e;

	(void)state;
	assert_int_equal(zt_id_parse("spiffe://example.org/ns/a", 25, &id, &e), 0);
	assert_string_equal(id.str, "spiffe://example.org/ns/a");
	assert_int_equal(id.len, 25);
	p = zt_id_td(&id, &n);
	assert_int_equal(n, 11);
	assert_memory_equal(p, "example.org", 11);
	assert_int_equal(p[n], '/');
	p = zt_id_path(&id, &n);
	assert_int_equal(n, 5);
	assert_string_equal(p, "/ns/a");

	assert_int_equal(zt_id_in_td(&id, "example.org", 11), 1);
	assert_int_equal(zt_id_in_td(&id, "example.orgXYZ", 11), 1);
	assert_int_equal(zt_id_in_td(&id, "example.com", 11), 0);
	assert_int_equal(zt_id_in_td(&id, "example", 7), 0);
	assert_int_equal(zt_id_in_td(&id, "example.or", 10), 0);
	assert_int_equal(zt_id_in_td(&id, "example.org.evil", 16), 0);
	assert_int_equal(zt_id_in_td(&id, "EXAMPLE.ORG", 11), 0);
	assert_int_equal(zt_id_in_td(&id, "example.org/ns", 14), 0);
	assert_int_equal(zt_id_in_td(&id, "", 0), 0);

	assert_int_equal(zt_id_parse("spiffe://td", 11, &id, &e), 0);
	p = zt_id_path(&id, &n);
	assert_int_equal(n, 0);
	assert_string_equal(p, "");
	p = zt_id_td(&id, &n);
	assert_int_equal(n, 2);
	assert_memory_equal(p, "td", 2);
	assert_int_equal(zt_id_in_td(&id, "td", 2), 1);
	assert_int_equal(zt_id_in_td(&id, "t", 1), 0);
	assert_int_equal(zt_id_in_td(&id, "tdx", 3), 0);
}

/* ---- trust domains and builders ------------------------------------------ */

static void expect_td(const char *td, const char *rule)
{
	zt_err e;
	int r;

	zt_err_clear(&e);
	r = zt_td_check(td, strlen(td), &e);
	if (!rule) {
		if (r != 0)
			fail_msg("trust domain \"%.60s\" rejected: %s", td, e.msg);
		return;
	}
	if (r == 0)
		fail_msg("trust domain \"%.60s\" accepted, expected %s", td, rule);
	assert_int_equal(r, -ZT_EINVAL);
	if (strcmp(e.rule, rule) != 0)
		fail_msg("trust domain \"%.60s\": rule %s, expected %s", td, e.rule, rule);
}

static void test_td_check(void **state)
{
	char *s;
	zt_err e;

	(void)state;
	expect_td("example.org", NULL);
	expect_td("a", NULL);
	expect_td("my_td-1.example.org", NULL);
	expect_td("spiffe://example.org", "id-td-char");
	expect_td("spiffe://example.org/ns/x", "id-td-char");
	expect_td("", "id-td-empty");
	expect_td("Example.org", "id-td-case");
	expect_td("example.org:80", "id-port");
	expect_td("user@example.org", "id-userinfo");
	expect_td("example.org/path", "id-td-char");
	expect_td("exa%41mple.org", "id-percent");
	expect_td("example.org?x", "id-query");
	expect_td("example.org#x", "id-fragment");
	expect_td("example org", "id-td-char");
	s = repeat('d', ZT_TD_MAX);
	expect_td(s, NULL);
	free(s);
	s = repeat('d', ZT_TD_MAX + 1);
	expect_td(s, "id-td-length");
	free(s);

	/* explicit length */
	assert_int_equal(zt_td_check("example.org/junk", 11, &e), 0);
	assert_int_equal(zt_td_check("ex\0ample", 8, &e), -ZT_EINVAL);
	assert_string_equal(e.rule, "id-td-char");
}

static void expect_workload(const char *td, const char *ws, const char *svc,
			    const char *rule)
{
	zt_spiffe_id id;
	zt_err e;
	int r;

	zt_err_clear(&e);
	r = zt_id_workload(td, ws, svc, &id, &e);
	if (r == 0)
		fail_msg("workload (%.40s, %.40s, %.40s) accepted as %.80s, expected %s",
			 td, ws, svc, id.str, rule);
	assert_int_equal(r, -ZT_EINVAL);
	assert_int_equal(e.code, ZT_EINVAL);
	if (strcmp(e.rule, rule) != 0)
		fail_msg("workload (%.40s, %.40s, %.40s): rule %s (%s), expected %s",
			 td, ws, svc, e.rule, e.msg, rule);
}

static void test_id_workload(void **state)
{
	zt_spiffe_id id;
	const char *p;
	size_t n;
	zt_err e;
	char *big;

	(void)state;
	assert_int_equal(zt_id_workload("example.org", "shop", "web", &id, &e), 0);
	assert_string_equal(id.str, "spiffe://example.org/ns/shop/sa/web");
	assert_int_equal(id.len, strlen("spiffe://example.org/ns/shop/sa/web"));
	p = zt_id_td(&id, &n);
	assert_int_equal(n, 11);
	assert_memory_equal(p, "example.org", 11);
	p = zt_id_path(&id, &n);
	assert_string_equal(p, "/ns/shop/sa/web");
	assert_int_equal(zt_id_in_td(&id, "example.org", 11), 1);

	assert_int_equal(zt_id_workload("td", "Prod-1", "api_v2.x", &id, &e), 0);
	assert_string_equal(id.str, "spiffe://td/ns/Prod-1/sa/api_v2.x");

	/* '/' inside a part would add segments */
	expect_workload("example.org", "a/b", "web", "id-path-char");
	expect_workload("example.org", "shop", "x/y", "id-path-char");
	expect_workload("example.org", "shop", "/", "id-path-char");
	expect_workload("example.org", "shop/sa/admin", "web", "id-path-char");
	/* empty parts */
	expect_workload("example.org", "", "web", "id-path-char");
	expect_workload("example.org", "shop", "", "id-path-char");
	/* bad trust domains */
	expect_workload("Example.org", "shop", "web", "id-td-case");
	expect_workload("", "shop", "web", "id-td-empty");
	expect_workload("spiffe://example.org", "shop", "web", "id-td-char");
	expect_workload("example.org:443", "shop", "web", "id-port");
	expect_workload("example.org/ns", "shop", "web", "id-td-char");
	/* parts that are not valid segments */
	expect_workload("example.org", ".", "web", "id-path-dot-segment");
	expect_workload("example.org", "shop", "..", "id-path-dot-segment");
	expect_workload("example.org", "a b", "web", "id-path-char");
	expect_workload("example.org", "shop", "w%2fb", "id-percent");
	expect_workload("example.org", "shop", "web?x", "id-query");
	/* too long in all */
	big = repeat('s', ZT_ID_MAX);
	expect_workload("example.org", "shop", big, "id-too-long");
	free(big);
}

static void test_id_for_td(void **state)
{
	zt_spiffe_id id;
	const char *p;
	size_t n;
	zt_err e;
	char *td;

	(void)state;
	assert_int_equal(zt_id_for_td("example.org", &id, &e), 0);
	assert_string_equal(id.str, "spiffe://example.org");
	assert_int_equal(id.len, 20);
	p = zt_id_path(&id, &n);
	assert_int_equal(n, 0);
	assert_string_equal(p, "");
	p = zt_id_td(&id, &n);
	assert_int_equal(n, 11);
	assert_memory_equal(p, "example.org", 11);

	td = repeat('q', ZT_TD_MAX);
	assert_int_equal(zt_id_for_td(td, &id, &e), 0);
	assert_int_equal(id.len, 9 + ZT_TD_MAX);
	free(td);

	zt_err_clear(&e);
	assert_int_equal(zt_id_for_td("Bad.org", &id, &e), -ZT_EINVAL);
	assert_string_equal(e.rule, "id-td-case");
	assert_int_equal(zt_id_for_td("", &id, &e), -ZT_EINVAL);
	assert_string_equal(e.rule, "id-td-empty");
	assert_int_equal(zt_id_for_td("spiffe://example.org", &id, &e), -ZT_EINVAL);
	assert_string_equal(e.rule, "id-td-char");
	assert_int_equal(zt_id_for_td("example.org/x", &id, &e), -ZT_EINVAL);
	assert_string_equal(e.rule, "id-td-char");
}

/* ---- base64 ----------------------------------------------------------------- */

static const struct {
	const char *raw, *std, *url;
} b64_vectors[] = {
	/* RFC 4648 section 10 */
	{ "", "", "" },
	{ "f", "Zg==", "Zg" },
	{ "fo", "Zm8=", "Zm8" },
	{ "foo", "Zm9v", "Zm9v" },
	{ "foob", "Zm9vYg==", "Zm9vYg" },
	{ "fooba", "Zm9vYmE=", "Zm9vYmE" },
	{ "foobar", "Zm9vYmFy", "Zm9vYmFy" },
	/* the two alphabets differ in 62 and 63 */
	{ "\xfb\xff", "+/8=", "-_8" },
	{ "\xfb\xef\xbe", "++++", "----" },
	{ "\xff\xff\xff", "////", "____" },
	{ "\x00", "AA==", "AA" },
	{ "\x00\x00\x00", "AAAA", "AAAA" },
};

static void test_base64_vectors(void **state)
{
	zt_buf b;
	zt_err e;

	(void)state;
	for (size_t i = 0; i < sizeof b64_vectors / sizeof b64_vectors[0]; i++) {
		const char *raw = b64_vectors[i].raw;
		/* the NUL vectors: length from the standard form */
		size_t rawlen = strlen(b64_vectors[i].std) / 4 * 3 -
				(strchr(b64_vectors[i].std, '=') ?
				     strlen(strchr(b64_vectors[i].std, '=')) : 0);

		for (int url = 0; url <= 1; url++) {
			const char *enc = url ? b64_vectors[i].url : b64_vectors[i].std;

			zt_buf_init(&b, 1024);
			assert_int_equal(zt_base64_encode((const uint8_t *)raw, rawlen, url,
							  &b, &e), 0);
			assert_int_equal(b.len, strlen(enc));
			assert_string_equal((char *)b.p, enc);
			zt_buf_free(&b, 0);

			zt_buf_init(&b, 1024);
			if (zt_base64_decode(enc, strlen(enc), url, &b, &e) != 0) {
				zt_buf_free(&b, 0);
				fail_msg("decode of \"%s\" (url=%d) failed: %s", enc, url, e.msg);
			}
			assert_int_equal(b.len, rawlen);
			if (rawlen)
				assert_memory_equal(b.p, raw, rawlen);
			zt_buf_free(&b, 0);
		}
	}
}

static void test_base64_roundtrip(void **state)
{
	uint8_t data[300];
	zt_buf enc, dec;
	zt_err e;

	(void)state;
	for (size_t i = 0; i < sizeof data; i++)
		data[i] = (uint8_t)(i * 37 + 11);
	for (size_t n = 0; n <= sizeof data; n += (n < 16 ? 1 : 37)) {
		for (int url = 0; url <= 1; url++) {
			zt_buf_init(&enc, 4096);
			zt_buf_init(&dec, 4096);
			assert_int_equal(zt_base64_encode(data, n, url, &enc, &e), 0);
			assert_int_equal(enc.len, url ? (n * 4 + 2) / 3 : (n + 2) / 3 * 4);
			assert_null(memchr(enc.p, url ? '+' : '-', enc.len));
			assert_null(memchr(enc.p, url ? '/' : '_', enc.len));
			if (url)
				assert_null(memchr(enc.p, '=', enc.len));
			assert_int_equal(zt_base64_decode((char *)enc.p, enc.len, url, &dec, &e), 0);
			assert_int_equal(dec.len, n);
			if (n)
				assert_memory_equal(dec.p, data, n);
			zt_buf_free(&enc, 0);
			zt_buf_free(&dec, 0);
		}
	}
}

static void test_base64_appends(void **state)
{
	zt_buf b;
	zt_err e;

	(void)state;
	zt_buf_init(&b, 64);
	assert_int_equal(zt_buf_append(&b, "x=", 2, &e), 0);
	assert_int_equal(zt_base64_encode((const uint8_t *)"foob", 4, 0, &b, &e), 0);
	assert_int_equal(b.len, 10);
	assert_string_equal((char *)b.p, "x=Zm9vYg==");
	zt_buf_free(&b, 0);

	zt_buf_init(&b, 64);
	assert_int_equal(zt_buf_append(&b, "ab", 2, &e), 0);
	assert_int_equal(zt_base64_decode("Zm9v", 4, 0, &b, &e), 0);
	assert_int_equal(b.len, 5);
	assert_memory_equal(b.p, "abfoo", 5);
	zt_buf_free(&b, 0);

	/* the buffer's limit holds */
	zt_buf_init(&b, 4);
	assert_int_equal(zt_base64_encode((const uint8_t *)"foobar", 6, 0, &b, &e),
			 -ZT_ELIMIT);
	assert_int_equal(b.len, 0);
	zt_buf_free(&b, 0);
	zt_buf_init(&b, 4);
	assert_int_equal(zt_base64_decode("Zm9vYmFyZm9v", 12, 0, &b, &e), -ZT_ELIMIT);
	assert_int_equal(b.len, 0);
	zt_buf_free(&b, 0);
}

/* Output of exactly `max` bytes is within the buffer's limit. */
static void test_base64_exact_max(void **state)
{
	zt_buf b;
	zt_err e;

	(void)state;
	zt_buf_init(&b, 3);
	zt_err_clear(&e);
	if (zt_base64_decode("Zm9v", 4, 0, &b, &e) != 0) {
		zt_buf_free(&b, 0);
		fail_msg("3 decoded bytes refused by a 3-byte buffer: %s", e.msg);
	}
	assert_int_equal(b.len, 3);
	assert_memory_equal(b.p, "foo", 3);
	zt_buf_free(&b, 0);

	zt_buf_init(&b, 4);
	if (zt_base64_encode((const uint8_t *)"foo", 3, 0, &b, &e) != 0) {
		zt_buf_free(&b, 0);
		fail_msg("4 encoded bytes refused by a 4-byte buffer: %s", e.msg);
	}
	assert_int_equal(b.len, 4);
	assert_memory_equal(b.p, "Zm9v", 4);
	zt_buf_free(&b, 0);
}

static void expect_b64_bad(const char *in, size_t n, int url)
{
	zt_buf b;
	zt_err e;
	int r;

	zt_buf_init(&b, 1024);
	zt_err_clear(&e);
	r = zt_base64_decode(in, n, url, &b, &e);
	zt_buf_free(&b, 0);
	if (r == 0)
		fail_msg("decoded bad base64%s \"%.*s\"", url ? "url" : "", (int)n, in);
	assert_int_equal(r, -ZT_EPARSE);
	assert_int_equal(e.code, ZT_EPARSE);
}

static void test_base64_rejects(void **state)
{
	static const char *bad_std[] = {
		"Zg=",      "Zg",       "Z",        "Zm9vY",    "Zg===",
		"Z===",     "A===",     "====",     "=Zm8",     "Zg=A",     "Zg==Zg==",
		"Zm9v!A==", "Zm9-",     "Zm9_",     "Zm9v\xff\xff==",
		/* non-canonical: unused low bits set */
		"Zh==",     "Zm9=",     "Zm9vYh==", "Zm9vYmF=",
		/* whitespace of any kind */
		" Zg=",     "Zg= ",     "Zm 8",     "Zm8=\n",   "Zm\n8=",
		"Zm9v\r\nYmFy", "Zm9v\tYmE=", "Zm9vYmFy    ",
	};
	static const char *bad_url[] = {
		"Zg==", "Zm8=", "Z",   "Zm9vY", "Zm9v+A", "Zm9v/A",
		"Zh",   "Zm9",  "Zm9vYh", "Zm 8", "Zm8\n", " Zm8", "Zm9v=",
	};

	(void)state;
	for (size_t i = 0; i < sizeof bad_std / sizeof bad_std[0]; i++)
		expect_b64_bad(bad_std[i], strlen(bad_std[i]), 0);
	for (size_t i = 0; i < sizeof bad_url / sizeof bad_url[0]; i++)
		expect_b64_bad(bad_url[i], strlen(bad_url[i]), 1);
	/* a NUL byte inside the given length */
	expect_b64_bad("Zm\0v", 4, 0);
	expect_b64_bad("Zm\0v", 4, 1);
}

/* ---- hex, hashing, randomness --------------------------------------------- */

static void test_hex(void **state)
{
	static const uint8_t in[] = { 0x00, 0x01, 0x7f, 0x80, 0xab, 0xcd, 0xef, 0xff };
	char out[2 * sizeof in + 1];

	(void)state;
	memset(out, 'Q', sizeof out);
	zt_hex(in, sizeof in, out);
	assert_string_equal(out, "00017f80abcdefff");
	memset(out, 'Q', sizeof out);
	zt_hex(in, 0, out);
	assert_string_equal(out, "");
	zt_hex(in + 4, 1, out);
	assert_string_equal(out, "ab");
}

static void test_sha256(void **state)
{
	uint8_t d[32];
	char hex[65];

	(void)state;
	zt_sha256("abc", 3, d);
	zt_hex(d, 32, hex);
	assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	zt_sha256("", 0, d);
	zt_hex(d, 32, hex);
	assert_string_equal(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

static void test_random(void **state)
{
	uint8_t a[32], b[32], zero[32] = { 0 };
	zt_err e;

	(void)state;
	memset(a, 0, sizeof a);
	memset(b, 0, sizeof b);
	assert_int_equal(zt_random(a, sizeof a, &e), 0);
	assert_int_equal(zt_random(b, sizeof b, &e), 0);
	assert_memory_not_equal(a, zero, sizeof a);
	assert_memory_not_equal(a, b, sizeof a);
	assert_int_equal(zt_random(a, 0, &e), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_id_table),
		cmocka_unit_test(test_id_lengths),
		cmocka_unit_test(test_id_message_quoting),
		cmocka_unit_test(test_id_accessors),
		cmocka_unit_test(test_td_check),
		cmocka_unit_test(test_id_workload),
		cmocka_unit_test(test_id_for_td),
		cmocka_unit_test(test_base64_vectors),
		cmocka_unit_test(test_base64_roundtrip),
		cmocka_unit_test(test_base64_appends),
		cmocka_unit_test(test_base64_exact_max),
		cmocka_unit_test(test_base64_rejects),
		cmocka_unit_test(test_hex),
		cmocka_unit_test(test_sha256),
		cmocka_unit_test(test_random),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
