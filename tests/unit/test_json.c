/* tests/unit/test_json.c: the JSON parser (core/json.c), exact results and
 * agreement with jansson's json_loadb, which it replaces. */
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"

/* Parses exactly n bytes from a heap copy, so ASan sees any read past them. */
static json_t *parse_n(const char *s, size_t n, zt_err *e)
{
	char *copy = malloc(n ? n : 1);
	json_t *v;

	assert_non_null(copy);
	memcpy(copy, s, n);
	zt_err_clear(e);
	v = zt_json_parse_fast(copy, n, e);
	free(copy);
	return v;
}

static json_t *parse(const char *s, zt_err *e)
{
	return parse_n(s, strlen(s), e);
}

/* Asserts that s is refused with code, and a message containing `want`. */
static void refused_n(const char *s, size_t n, int code, const char *want)
{
	zt_err e;
	json_t *v = parse_n(s, n, &e);

	if (v) {
		json_decref(v);
		fail_msg("accepted: %.*s", (int)n, s);
	}
	if (e.code != code)
		fail_msg("%.*s: code %d, wanted %d (%s)", (int)n, s, e.code, code, e.msg);
	if (want && !strstr(e.msg, want))
		fail_msg("%.*s: message \"%s\" lacks \"%s\"", (int)n, s, e.msg, want);
}

static void refused(const char *s, int code, const char *want)
{
	refused_n(s, strlen(s), code, want);
}

/* n copies of open, then inner, then n copies of close; caller frees */
static char *nest(size_t n, const char *open, const char *inner, const char *close)
{
	size_t lo = strlen(open), li = strlen(inner), lc = strlen(close);
	char *s = malloc(n * (lo + lc) + li + 1), *p = s;

	assert_non_null(s);
	for (size_t i = 0; i < n; i++, p += lo)
		memcpy(p, open, lo);
	memcpy(p, inner, li);
	p += li;
	for (size_t i = 0; i < n; i++, p += lc)
		memcpy(p, close, lc);
	*p = '\0';
	return s;
}

/* ---- the reference: jansson, as zt_json_parse used it ------------------- */

static int ref_depth_ok(json_t *v, int depth)
{
	size_t i;
	const char *k;
	json_t *c;

	if (!json_is_array(v) && !json_is_object(v))
		return 1;
	if (depth > ZT_DOC_MAX_DEPTH)
		return 0;
	if (json_is_array(v)) {
		json_array_foreach(v, i, c)
			if (!ref_depth_ok(c, depth + 1))
				return 0;
	} else {
		json_object_foreach(v, k, c)
			if (!ref_depth_ok(c, depth + 1))
				return 0;
	}
	return 1;
}

static json_t *ref_parse(const char *s, size_t n)
{
	json_t *v = json_loadb(s, n, JSON_REJECT_DUPLICATES, NULL);

	if (v && !ref_depth_ok(v, 1)) {
		json_decref(v);
		return NULL;
	}
	return v;
}

/* 1 when a and b are the same tree: types (1 is not 1.0), reals bit for bit
 * (-0.0 is not 0.0), string lengths, key order */
static int same(json_t *a, json_t *b)
{
	if (json_typeof(a) != json_typeof(b))
		return 0;
	switch (json_typeof(a)) {
	case JSON_OBJECT: {
		void *ia = json_object_iter(a), *ib = json_object_iter(b);

		if (json_object_size(a) != json_object_size(b))
			return 0;
		for (; ia && ib; ia = json_object_iter_next(a, ia), ib = json_object_iter_next(b, ib)) {
			size_t la = json_object_iter_key_len(ia);

			if (la != json_object_iter_key_len(ib) ||
			    memcmp(json_object_iter_key(ia), json_object_iter_key(ib), la) != 0 ||
			    !same(json_object_iter_value(ia), json_object_iter_value(ib)))
				return 0;
		}
		return !ia && !ib;
	}
	case JSON_ARRAY:
		if (json_array_size(a) != json_array_size(b))
			return 0;
		for (size_t i = 0; i < json_array_size(a); i++)
			if (!same(json_array_get(a, i), json_array_get(b, i)))
				return 0;
		return 1;
	case JSON_STRING:
		return json_string_length(a) == json_string_length(b) &&
		       memcmp(json_string_value(a), json_string_value(b), json_string_length(a)) == 0;
	case JSON_INTEGER:
		return json_integer_value(a) == json_integer_value(b);
	case JSON_REAL: {
		double x = json_real_value(a), y = json_real_value(b);

		return memcmp(&x, &y, sizeof x) == 0;
	}
	default:
		return 1;
	}
}

/* Asserts that both parsers accept s with the same value, or both refuse it. */
static void agrees_n(const char *s, size_t n)
{
	zt_err e;
	json_t *r = ref_parse(s, n), *v = parse_n(s, n, &e);

	if (!!r != !!v)
		fail_msg("jansson %s, zt %s: %.*s (%s)", r ? "accepts" : "refuses",
			 v ? "accepts" : "refuses", (int)n, s, v ? "" : e.msg);
	if (r && !same(r, v))
		fail_msg("different values: %.*s", (int)n, s);
	json_decref(r);
	json_decref(v);
}

static void agrees(const char *s)
{
	agrees_n(s, strlen(s));
}

/* ---- what it accepts ---------------------------------------------------- */

static void test_jwt_claims(void **state)
{
	const char *text = "{\"iss\":\"https://id.example.com\",\"sub\":\"user-8412\","
			   "\"aud\":\"https://api.example.com\",\"exp\":1767225600,"
			   "\"iat\":1767222000,\"nbf\":1767222000,"
			   "\"jti\":\"6f1c2e9a-77d2-4a43-9d1b-1c5b0b8f0e44\","
			   "\"groups\":[\"admins\",\"payments\"]}";
	static const char *const order[] = {"iss", "sub", "aud", "exp", "iat", "nbf", "jti", "groups"};
	json_t *v, *g;
	zt_err e;
	void *it;
	size_t i = 0;

	(void)state;
	v = parse(text, &e);
	assert_non_null(v);
	assert_true(json_is_object(v));
	assert_int_equal(json_object_size(v), 8);
	assert_string_equal(json_string_value(json_object_get(v, "iss")), "https://id.example.com");
	assert_string_equal(json_string_value(json_object_get(v, "sub")), "user-8412");
	assert_string_equal(json_string_value(json_object_get(v, "aud")), "https://api.example.com");
	assert_true(json_is_integer(json_object_get(v, "exp")));
	assert_int_equal(json_integer_value(json_object_get(v, "exp")), 1767225600);
	assert_int_equal(json_integer_value(json_object_get(v, "iat")), 1767222000);
	assert_int_equal(json_integer_value(json_object_get(v, "nbf")), 1767222000);
	assert_string_equal(json_string_value(json_object_get(v, "jti")),
			    "6f1c2e9a-77d2-4a43-9d1b-1c5b0b8f0e44");
	g = json_object_get(v, "groups");
	assert_int_equal(json_array_size(g), 2);
	assert_string_equal(json_string_value(json_array_get(g, 0)), "admins");
	assert_string_equal(json_string_value(json_array_get(g, 1)), "payments");
	/* keys keep their order, as with jansson (what json_dumps writes) */
	for (it = json_object_iter(v); it; it = json_object_iter_next(v, it), i++)
		assert_string_equal(json_object_iter_key(it), order[i]);
	agrees(text);
	json_decref(v);

	/* zt_json_parse is this parser */
	v = zt_json_parse(text, strlen(text), &e);
	assert_non_null(v);
	assert_int_equal(json_integer_value(json_object_get(v, "exp")), 1767225600);
	json_decref(v);
}

static void test_literals_and_whitespace(void **state)
{
	json_t *v;
	zt_err e;

	(void)state;
	v = parse(" \t\r\n[ true , false,null ,{ } ,[ ] ,{\"a\" : [ ]} ]\r\n\t ", &e);
	assert_non_null(v);
	assert_int_equal(json_array_size(v), 6);
	assert_true(json_is_true(json_array_get(v, 0)));
	assert_true(json_is_false(json_array_get(v, 1)));
	assert_true(json_is_null(json_array_get(v, 2)));
	assert_true(json_is_object(json_array_get(v, 3)));
	assert_int_equal(json_object_size(json_array_get(v, 3)), 0);
	assert_true(json_is_array(json_array_get(v, 4)));
	assert_int_equal(json_array_size(json_object_get(json_array_get(v, 5), "a")), 0);
	json_decref(v);

	v = parse("{}", &e);
	assert_non_null(v);
	json_decref(v);
	v = parse("[]", &e);
	assert_non_null(v);
	json_decref(v);
}

static void test_explicit_length(void **state)
{
	const char *text = "{\"a\":[1,2]}garbage";
	json_t *v;
	zt_err e;

	(void)state;
	/* only len bytes: what follows is never looked at (parse_n copies them) */
	v = parse_n(text, strlen("{\"a\":[1,2]}"), &e);
	assert_non_null(v);
	assert_int_equal(json_integer_value(json_array_get(json_object_get(v, "a"), 1)), 2);
	json_decref(v);
	/* cut inside a token */
	refused_n("{\"a\":[1,2]}", 8, ZT_EPARSE, "end of input");
	refused_n("{\"a\":tru", 8, ZT_EPARSE, "invalid literal");
	refused_n("[\"abc\"]", 4, ZT_EPARSE, "not terminated");
	refused_n("[-1]", 2, ZT_EPARSE, "digit");
	refused_n("[1.5]", 3, ZT_EPARSE, "digit");
	refused_n("[\"\\u12\"]", 6, ZT_EPARSE, "hex");
	refused_n("[\"\xe2\x82\xac\"]", 4, ZT_EPARSE, "UTF-8");
	/* no text at all */
	zt_err_clear(&e);
	assert_null(zt_json_parse_fast(NULL, 0, &e));
	assert_int_equal(e.code, ZT_EPARSE);
}

/* ---- strings ------------------------------------------------------------ */

static void test_escapes(void **state)
{
	json_t *v;
	zt_err e;

	(void)state;
	v = parse("[\"\\\"\\\\\\/\\b\\f\\n\\r\\t\", \"caf\\u00e9\", \"\\u20AC\\u20ac\", "
		  "\"\\ud83d\\ude00\", \"\\uDBFF\\uDFFF\", \"\\u0001\\u007f\\u0800\", \"a/b\\/c\", \"\"]",
		  &e);
	assert_non_null(v);
	assert_string_equal(json_string_value(json_array_get(v, 0)), "\"\\/\b\f\n\r\t");
	assert_string_equal(json_string_value(json_array_get(v, 1)), "caf\xc3\xa9");
	assert_string_equal(json_string_value(json_array_get(v, 2)), "\xe2\x82\xac\xe2\x82\xac");
	assert_string_equal(json_string_value(json_array_get(v, 3)), "\xf0\x9f\x98\x80");
	assert_string_equal(json_string_value(json_array_get(v, 4)), "\xf4\x8f\xbf\xbf");
	assert_string_equal(json_string_value(json_array_get(v, 5)), "\x01\x7f\xe0\xa0\x80");
	assert_string_equal(json_string_value(json_array_get(v, 6)), "a/b/c");
	assert_int_equal(json_string_length(json_array_get(v, 7)), 0);
	json_decref(v);

	/* escaped keys, and an escaped key next to an escaped value (the value
	 * is decoded first: it must not overwrite the key) */
	v = parse("{\"k\\n\\\"e\\\"y\": \"v\\u00e9\", \"\\u00e9\": \"\\u00e8\"}", &e);
	assert_non_null(v);
	assert_string_equal(json_string_value(json_object_get(v, "k\n\"e\"y")), "v\xc3\xa9");
	assert_string_equal(json_string_value(json_object_get(v, "\xc3\xa9")), "\xc3\xa8");
	json_decref(v);

	refused("[\"\\x41\"]", ZT_EPARSE, "invalid escape");
	refused("[\"\\U00e9\"]", ZT_EPARSE, "invalid escape");
	refused("[\"\\u00g9\"]", ZT_EPARSE, "hex");
	refused("[\"\\u00e\"]", ZT_EPARSE, "hex");
	refused("[\"\\'\"]", ZT_EPARSE, "invalid escape");
	refused("[\"\\", ZT_EPARSE, "not terminated");
}

static void test_long_strings(void **state)
{
	size_t n = 100000;
	char *text = malloc(3 * n + 64), *want = malloc(n + 1), *p;
	json_t *v;
	zt_err e;

	(void)state;
	assert_non_null(text);
	assert_non_null(want);
	/* past the fixed buffer, with escapes: decoded into one malloc'd buffer */
	p = text;
	p += sprintf(p, "{\"");
	for (size_t i = 0; i < n / 2; i++, p += 2)
		memcpy(p, "\\n", 2);
	p += sprintf(p, "\": \"");
	for (size_t i = 0; i < n; i++) {
		*p++ = i % 3 ? 'x' : '\\';
		if (!(i % 3))
			*p++ = 't';
		want[i] = i % 3 ? 'x' : '\t';
	}
	want[n] = '\0';
	p += sprintf(p, "\"}");
	v = parse_n(text, (size_t)(p - text), &e);
	assert_non_null(v);
	assert_int_equal(json_object_size(v), 1);
	{
		void *it = json_object_iter(v);

		assert_int_equal(json_object_iter_key_len(it), n / 2);
		assert_int_equal(json_string_length(json_object_iter_value(it)), n);
		assert_memory_equal(json_string_value(json_object_iter_value(it)), want, n);
	}
	agrees_n(text, (size_t)(p - text));
	json_decref(v);

	/* without escapes: straight from the input */
	p = text;
	*p++ = '[';
	*p++ = '"';
	memset(p, 'y', n);
	p += n;
	*p++ = '"';
	*p++ = ']';
	v = parse_n(text, (size_t)(p - text), &e);
	assert_non_null(v);
	assert_int_equal(json_string_length(json_array_get(v, 0)), n);
	json_decref(v);

	/* escapes just around the fixed buffer's size */
	for (size_t len = 500; len < 530; len++) {
		p = text;
		*p++ = '[';
		*p++ = '"';
		memset(p, 'z', len - 2);
		p += len - 2;
		memcpy(p, "\\/", 2);
		p += 2;
		*p++ = '"';
		*p++ = ']';
		agrees_n(text, (size_t)(p - text));
	}
	free(text);
	free(want);
}

static void test_surrogates(void **state)
{
	(void)state;
	refused("[\"\\ud800\"]", ZT_EPARSE, "high surrogate \\uD800 without a low one");
	refused("[\"\\ud800x\"]", ZT_EPARSE, "without a low one");
	refused("[\"\\ud800\\n\"]", ZT_EPARSE, "without a low one");
	refused("[\"\\udbff\\u0041\"]", ZT_EPARSE, "followed by \\u0041");
	refused("[\"\\ud800\\ud800\"]", ZT_EPARSE, "not a low one");
	refused("[\"\\udc00\"]", ZT_EPARSE, "lone low surrogate \\uDC00");
	refused("[\"\\ude00\\ud83d\"]", ZT_EPARSE, "lone low surrogate");
	refused("[\"\\ud800\\u12\"]", ZT_EPARSE, "hex");
	refused("{\"\\ud800\":1}", ZT_EPARSE, "surrogate");
	/* UTF-8 for a surrogate is refused as invalid UTF-8 (jansson too) */
	refused("[\"\xed\xa0\x80\"]", ZT_EPARSE, "UTF-8");
	agrees("[\"\\ud800\"]");
	agrees("[\"\\udc00\"]");
	agrees("[\"\\ud83d\\ude00\"]");
	agrees("[\"\\ud83D\\uDE00x\"]");
}

static void test_nul(void **state)
{
	(void)state;
	refused("[\"a\\u0000b\"]", ZT_EPARSE, "\\u0000");
	refused("{\"a\\u0000\":1}", ZT_EPARSE, "\\u0000");
	refused("{\"a\":{\"b\":[\"\\u0000\"]}}", ZT_EPARSE, "\\u0000");
	/* raw NUL bytes: in a string a control character, elsewhere unexpected */
	refused_n("[\"a\0b\"]", 7, ZT_EPARSE, "control character 0x00");
	refused_n("[\0]", 3, ZT_EPARSE, "unexpected '\\x00'");
	refused_n("[1]\0", 4, ZT_EPARSE, "unexpected '\\x00'");
	/* jansson skips one NUL byte after a number or a literal (its lexer puts
	 * the byte back where NUL means "empty") and takes these for [1], [true]
	 * and {"a":null}; RFC 8259 allows no NUL there and neither does zt */
	refused_n("[1\0]", 4, ZT_EPARSE, "byte 2");
	refused_n("[true\0]", 7, ZT_EPARSE, "byte 5");
	refused_n("{\"a\":null\0}", 11, ZT_EPARSE, "byte 9");
	refused_n("[1.5e3\0,2]", 10, ZT_EPARSE, "byte 6");
	{
		/* too deep before the NUL byte: the depth is what is reported */
		char deep[2 * (ZT_DOC_MAX_DEPTH + 1) + 2];
		size_t n = 0;

		for (int i = 0; i <= ZT_DOC_MAX_DEPTH; i++)
			deep[n++] = '[';
		deep[n++] = '1';
		deep[n++] = '\0';
		for (int i = 0; i <= ZT_DOC_MAX_DEPTH; i++)
			deep[n++] = ']';
		refused_n(deep, n, ZT_ELIMIT, NULL);
	}
	/* other control characters in strings */
	refused("[\"a\nb\"]", ZT_EPARSE, "control character 0x0a");
	refused("[\"a\tb\"]", ZT_EPARSE, "control character 0x09");
	refused("[\"\x1f\"]", ZT_EPARSE, "control character 0x1f");
	agrees("[\"\x7f\"]");
}

static void test_utf8(void **state)
{
	static const char *const bad[] = {
	    "[\"\x80\"]",		  /* a lone continuation byte */
	    "[\"\xbf\"]",
	    "[\"\xc0\x80\"]",	  /* overlong NUL */
	    "[\"\xc1\xbf\"]",	  /* overlong */
	    "[\"\xe0\x80\x80\"]",	  /* overlong */
	    "[\"\xe0\x9f\xbf\"]",	  /* overlong */
	    "[\"\xed\xa0\x80\"]",	  /* U+D800 */
	    "[\"\xed\xbf\xbf\"]",	  /* U+DFFF */
	    "[\"\xf0\x80\x80\x80\"]",	  /* overlong */
	    "[\"\xf0\x8f\xbf\xbf\"]",	  /* overlong */
	    "[\"\xf4\x90\x80\x80\"]",	  /* U+110000 */
	    "[\"\xf5\x80\x80\x80\"]",
	    "[\"\xfe\"]",
	    "[\"\xff\"]",
	    "[\"\xc3\"]",		  /* cut short by the quote */
	    "[\"\xe2\x82\"]",
	    "[\"\xf0\x9f\x98\"]",
	    "[\"\xc3\x28\"]",	  /* not a continuation byte */
	    "[\"\xe2\x28\xa1\"]",
	    "[\"\xe2\x82\x28\"]",
	    "{\"\xff\":1}",		  /* in a key */
	    "[\"ok\"]\xc3\xa9",	  /* valid UTF-8, but outside a string */
	    "\xef\xbb\xbf[1]",	  /* a byte order mark */
	};
	json_t *v;
	zt_err e;

	(void)state;
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		refused(bad[i], ZT_EPARSE, NULL);
		agrees(bad[i]);
	}
	refused("[\"\xc0\x80\"]", ZT_EPARSE, "invalid UTF-8 (byte 0xc0)");

	v = parse("{\"\xc3\xa9t\xc3\xa9\":\"\xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x98\x80\","
		  "\"\xf4\x8f\xbf\xbf\":\"\xe0\xa0\x80\xed\x9f\xbf\xee\x80\x80\xc2\x80\xdf\xbf\"}",
		  &e);
	assert_non_null(v);
	assert_string_equal(json_string_value(json_object_get(v, "\xc3\xa9t\xc3\xa9")),
			    "\xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x98\x80");
	assert_string_equal(json_string_value(json_object_get(v, "\xf4\x8f\xbf\xbf")),
			    "\xe0\xa0\x80\xed\x9f\xbf\xee\x80\x80\xc2\x80\xdf\xbf");
	json_decref(v);
}

/* ---- numbers ------------------------------------------------------------ */

static void test_integers(void **state)
{
	static const struct {
		const char *text;
		json_int_t want;
	} ok[] = {
	    {"[0]", 0},
	    {"[-0]", 0}, /* an integer, as in jansson */
	    {"[7]", 7},
	    {"[-7]", -7},
	    {"[1767225600]", 1767225600},
	    {"[9223372036854775807]", INT64_MAX},
	    {"[-9223372036854775808]", INT64_MIN},
	    {"[ 42 ]", 42},
	};
	json_t *v;
	zt_err e;

	(void)state;
	for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
		v = parse(ok[i].text, &e);
		if (!v || !json_is_integer(json_array_get(v, 0)))
			fail_msg("%s: %s", ok[i].text, v ? "not an integer" : e.msg);
		assert_int_equal(json_integer_value(json_array_get(v, 0)), ok[i].want);
		json_decref(v);
		agrees(ok[i].text);
	}
	/* jansson makes no real of an integer too big for json_int_t: an error */
	refused("[9223372036854775808]", ZT_EPARSE, "integer out of range");
	refused("[-9223372036854775809]", ZT_EPARSE, "integer out of range");
	refused("[18446744073709551616]", ZT_EPARSE, "integer out of range");
	refused("[99999999999999999999999999999999]", ZT_EPARSE, "integer out of range");
	agrees("[9223372036854775808]");
	agrees("[-9223372036854775809]");
	agrees("[18446744073709551615]");
	agrees("[18446744073709551616]");
}

static void test_reals(void **state)
{
	static const struct {
		const char *text;
		double want;
	} ok[] = {
	    {"[0.5]", 0.5},
	    {"[-0.5]", -0.5},
	    {"[0.1]", 0.1},
	    {"[1E2]", 100.0},
	    {"[1e+2]", 100.0},
	    {"[25e-1]", 2.5},
	    {"[3.141592653589793]", 3.141592653589793},
	    {"[1767225600.5]", 1767225600.5},
	    {"[9223372036854775808.0]", 9223372036854775808.0},
	    {"[123456789012345678901234567890.5]", 123456789012345678901234567890.5},
	    {"[1.7976931348623157e308]", 1.7976931348623157e308},
	    {"[4.9e-324]", 4.9e-324},
	    {"[2.2250738585072011e-308]", 2.2250738585072011e-308},
	    {"[1e-400]", 0.0}, /* underflow is fine: 0 */
	    {"[0e99999999999999999999]", 0.0},
	    {"[9007199254740993.0]", 9007199254740992.0}, /* past 2^53: rounds to even */
	    {"[0.30000000000000004]", 0.30000000000000004},
	};
	json_t *v;
	zt_err e;
	double d;

	(void)state;
	for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
		v = parse(ok[i].text, &e);
		if (!v || !json_is_real(json_array_get(v, 0)))
			fail_msg("%s: %s", ok[i].text, v ? "not a real" : e.msg);
		d = json_real_value(json_array_get(v, 0));
		if (memcmp(&d, &ok[i].want, sizeof d) != 0)
			fail_msg("%s: %.17g, wanted %.17g", ok[i].text, d, ok[i].want);
		json_decref(v);
		agrees(ok[i].text);
	}
	/* -0.0 keeps its sign (json_equal would not tell) */
	v = parse("[-0.0, -0e5, 0.0]", &e);
	assert_non_null(v);
	assert_true(signbit(json_real_value(json_array_get(v, 0))));
	assert_true(signbit(json_real_value(json_array_get(v, 1))));
	assert_false(signbit(json_real_value(json_array_get(v, 2))));
	json_decref(v);
	agrees("[-0.0, -0e5, 0.0]");

	refused("[1e400]", ZT_EPARSE, "real number overflow");
	refused("[-1e400]", ZT_EPARSE, "real number overflow");
	refused("[1.7976931348623159e308]", ZT_EPARSE, "real number overflow");
	agrees("[1.7976931348623158e308]");
	agrees("[1.7976931348623159e308]");
}

static void test_bad_numbers(void **state)
{
	static const char *const bad[] = {
	    "[01]", "[-01]", "[00]", "[1.]", "[.5]", "[-.5]", "[+1]", "[-]", "[--1]", "[1e]",
	    "[1e+]", "[1E-]", "[1.e5]", "[0x10]", "[1_000]", "[Infinity]", "[-Infinity]",
	    "[NaN]", "[1.5.5]", "[1e5e5]", "[1 2]", "[1-2]", "[1true]", "[-true]", "[\xd9\xa1]",
	};

	(void)state;
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		refused(bad[i], ZT_EPARSE, NULL);
		agrees(bad[i]);
	}
	refused("[01]", ZT_EPARSE, "leading zero");
	refused("[1.]", ZT_EPARSE, "a digit must follow '.'");
	refused("[1e+]", ZT_EPARSE, "a digit must follow the exponent");
	refused("[-]", ZT_EPARSE, "a digit must follow '-'");
}

/* Many generated numbers read as jansson reads them: the exact shortcut
 * (mantissa <= 2^53, |exponent| <= 22) and strtod on either side of it. */
static void test_reals_like_strtod(void **state)
{
	uint64_t x = 0x9e3779b97f4a7c15ull;
	char text[96];

	(void)state;
	for (int i = 0; i < 20000; i++) {
		int nd, nf, ex;
		char *p = text;

		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		nd = 1 + (int)(x % 19);
		nf = (int)((x >> 8) % 19);
		ex = (int)((x >> 16) % 61) - 30;
		*p++ = '[';
		if (x >> 63)
			*p++ = '-';
		for (int k = 0; k < nd; k++)
			*p++ = (char)('0' + (k == 0 && nd > 1 ? 1 + (x >> (20 + k)) % 9 : (x >> (20 + k * 2)) % 10));
		if (nf) {
			*p++ = '.';
			for (int k = 0; k < nf; k++)
				*p++ = (char)('0' + (x >> (24 + k * 2)) % 10);
		}
		if ((x >> 40) & 1)
			p += sprintf(p, "e%d", ex);
		*p++ = ']';
		agrees_n(text, (size_t)(p - text));
	}
}

/* ---- structure ----------------------------------------------------------- */

static void test_duplicates(void **state)
{
	json_t *v;
	zt_err e;

	(void)state;
	refused("{\"a\": 1, \"a\": 2}", ZT_EPARSE, "duplicate object key \"a\"");
	refused("{\"a\": 1, \"b\": 2, \"a\": 1}", ZT_EPARSE, "at byte 17");
	refused("{\"x\": {\"k\": 1, \"k\": 1}}", ZT_EPARSE, "duplicate object key \"k\"");
	refused("{\"a\": 1, \"\\u0061\": 2}", ZT_EPARSE, "duplicate object key \"a\"");
	refused("{\"\\n\": 1, \"\\u000a\": 2}", ZT_EPARSE, "duplicate object key \"\\x0a\"");
	refused("{\"\\ud83d\\ude00\": 1, \"\xf0\x9f\x98\x80\": 2}", ZT_EPARSE, "duplicate");
	refused("[{}, {\"a\": [], \"a\": {}}]", ZT_EPARSE, "duplicate");
	agrees("{\"a\": 1, \"\\u0061\": 2}");
	agrees("{\"x\": {\"k\": 1, \"k\": 1}}");

	/* near misses are distinct keys */
	v = parse("{\"a\": 1, \"A\": 2, \"a \": 3, \"\": 4, \"aa\": 5, \"x\": {\"a\": 6}}", &e);
	assert_non_null(v);
	assert_int_equal(json_object_size(v), 6);
	assert_int_equal(json_integer_value(json_object_get(v, "")), 4);
	json_decref(v);
}

static void test_depth(void **state)
{
	char *s;
	json_t *v;
	zt_err e;

	(void)state;
	/* ZT_DOC_MAX_DEPTH containers are fine, one more is ZT_ELIMIT */
	s = nest(ZT_DOC_MAX_DEPTH, "[", "1", "]");
	v = parse(s, &e);
	assert_non_null(v);
	json_decref(v);
	agrees(s);
	free(s);

	s = nest(ZT_DOC_MAX_DEPTH + 1, "[", "", "]");
	refused(s, ZT_ELIMIT, "deeper than 64 levels (at byte 64)");
	agrees(s);
	free(s);

	s = nest(ZT_DOC_MAX_DEPTH - 1, "{\"k\":", "{}", "}");
	v = parse(s, &e);
	assert_non_null(v);
	json_decref(v);
	free(s);

	s = nest(ZT_DOC_MAX_DEPTH, "{\"k\":", "{}", "}");
	refused(s, ZT_ELIMIT, NULL);
	agrees(s);
	free(s);

	s = nest(ZT_DOC_MAX_DEPTH / 2, "{\"k\":[", "", "]}");
	v = parse(s, &e);
	assert_non_null(v);
	json_decref(v);
	free(s);
	s = nest(ZT_DOC_MAX_DEPTH / 2, "{\"k\":[", "[]", "]}");
	refused(s, ZT_ELIMIT, NULL);
	free(s);

	/* far deeper: found on the way down, and unclosed text does not matter */
	s = nest(1000000, "[", "", "");
	refused(s, ZT_ELIMIT, NULL);
	free(s);
	s = nest(100000, "{\"a\":[", "", "]}");
	refused(s, ZT_ELIMIT, NULL);
	free(s);
}

static void test_top_level(void **state)
{
	(void)state;
	/* an object or an array, as jansson without JSON_DECODE_ANY */
	refused("1", ZT_EPARSE, "'{' or '['");
	refused("\"s\"", ZT_EPARSE, "'{' or '['");
	refused("true", ZT_EPARSE, "'{' or '['");
	refused("null", ZT_EPARSE, "'{' or '['");
	refused("", ZT_EPARSE, "end of input");
	refused(" \t\r\n", ZT_EPARSE, "end of input");
	/* only space, tab, CR and LF are whitespace */
	refused("\f[]", ZT_EPARSE, NULL);
	refused("[\v1]", ZT_EPARSE, NULL);
	refused("[1\f]", ZT_EPARSE, NULL);
	refused("[]\xc2\xa0", ZT_EPARSE, NULL);
	/* nothing but whitespace after the value */
	refused("{} x", ZT_EPARSE, "the end of the text");
	refused("{}{}", ZT_EPARSE, "at byte 2");
	refused("[1] ]", ZT_EPARSE, NULL);
	refused("[]/", ZT_EPARSE, NULL);
	refused("[] // comment", ZT_EPARSE, NULL);
}

static void test_syntax(void **state)
{
	static const char *const bad[] = {
	    "[1,]", "[,1]", "[,]", "[1 2]", "[1,,2]", "[", "[1", "[1,", "{", "{\"a\"", "{\"a\":",
	    "{\"a\":1", "{\"a\":1,", "{\"a\" 1}", "{\"a\":}", "{\"a\":1,}", "{,}", "{1:2}",
	    "{a:1}", "{'a':1}", "['a']", "{\"a\":1 \"b\":2}", "[}", "{]", "[\"a\":1]",
	    "{\"a\"::1}", "[True]", "[nul]", "[nulll]", "[fals]", "[undefined]", "[\"a\" \"b\"]",
	    "[\"\\\"]", "{\"a\":[}]", "]", "}",
	};

	(void)state;
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		refused(bad[i], ZT_EPARSE, "invalid JSON at byte");
		agrees(bad[i]);
	}
}

static void test_messages(void **state)
{
	(void)state;
	/* byte offsets from 0; lines and columns from 1 */
	refused("{\n  \"a\": tru\n}", ZT_EPARSE,
		"invalid JSON at byte 9 (line 2, column 8): invalid literal 'tru\\x0a'");
	refused("[1,\n2,\n]", ZT_EPARSE, "at byte 7 (line 3, column 1): unexpected ']', a value expected");
	refused("{\"a\" 1}", ZT_EPARSE, "at byte 5 (line 1, column 6): unexpected '1', ':' expected");
	refused("[\"abc", ZT_EPARSE, "at byte 1 (line 1, column 2): string not terminated");
	refused("[1 2]", ZT_EPARSE, "unexpected '2', ',' or ']' expected");
	refused("{\"a\":1 2}", ZT_EPARSE, "unexpected '2', ',' or '}' expected");
	refused("{\"a\":1,2}", ZT_EPARSE, "unexpected '2', a string (a key) expected");
}

/* A table of odd inputs, each parsed by both: same verdict and value. */
static void test_table_vs_jansson(void **state)
{
	static const char *const cases[] = {
	    "{\"iss\":\"https://id.example.com\",\"exp\":1767225600,\"groups\":[\"a\",\"b\"]}",
	    "[0,-0,0.0,-0.0,1e0,1E+0,1e-0,10e-1]",
	    "[1e22,1e23,1e-22,1e-23,9007199254740992e22,9007199254740993e-22]",
	    "[123456789012345678,1234567890123456789.0,0.000000000000000000001]",
	    "[5e-324,2e-324,3e-324,1e-323,2.4703282292062327e-324,2.4703282292062328e-324]",
	    "[8.98846567431158e307,1.7976931348623157e+308,17976931348623157e292]",
	    "[\"\\u0041\\u00DF\\u6771\\uD834\\uDD1E\"]",
	    "{\"\":\"\",\" \":\" \",\"\\\"\":\"\\\\\"}",
	    "[[],[[]],[[[]]],{},{\"a\":{}},[{}]]",
	    "[\"\\ud800\\udc00\\udbff\\udfff\\ud800\\udfff\"]",
	    "[\"\\uD7FF\\uE000\\uFFFF\\uFFFE\"]",
	    "[\"\\/\\/\"]",
	    "[true,false,null,truex]",
	    "[ 1 ,\t2\r,\n3 ]",
	    "{\"a\":1,\"b\":2,\"c\":3,\"d\":4,\"e\":5,\"f\":6,\"g\":7,\"h\":8,\"i\":9,\"j\":10,\"k\":11}",
	    "[-9223372036854775808,9223372036854775807,-9223372036854775807]",
	    "[922337203685477580.7e1]",
	    "[1.0e-2147483648,1.0e2147483648]",
	    "[0.1e1,0.01e2,100e-2]",
	};

	(void)state;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
		agrees(cases[i]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_jwt_claims),
	    cmocka_unit_test(test_literals_and_whitespace),
	    cmocka_unit_test(test_explicit_length),
	    cmocka_unit_test(test_escapes),
	    cmocka_unit_test(test_long_strings),
	    cmocka_unit_test(test_surrogates),
	    cmocka_unit_test(test_nul),
	    cmocka_unit_test(test_utf8),
	    cmocka_unit_test(test_integers),
	    cmocka_unit_test(test_reals),
	    cmocka_unit_test(test_bad_numbers),
	    cmocka_unit_test(test_reals_like_strtod),
	    cmocka_unit_test(test_duplicates),
	    cmocka_unit_test(test_depth),
	    cmocka_unit_test(test_top_level),
	    cmocka_unit_test(test_syntax),
	    cmocka_unit_test(test_messages),
	    cmocka_unit_test(test_table_vs_jansson),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
