/* tests/unit/test_doc.c: JSON and YAML documents (core/doc.c). */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"

/* ---- JSON -------------------------------------------------------------- */

static json_t *jparse(const char *s, zt_err *e)
{
	zt_err_clear(e);
	return zt_json_parse(s, strlen(s), e);
}

/* n nested arrays around `inner`. */
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

static void test_json_ok(void **state)
{
	const char *text = "{\"a\": [1, 2, {\"b\": null}], \"c\": \"d\", \"t\": true}garbage";
	json_t *v;
	zt_err e;

	(void)state;
	v = jparse("{\"a\": [1, 2, {\"b\": null}], \"c\": \"d\", \"t\": true}", &e);
	assert_non_null(v);
	assert_true(json_is_object(v));
	assert_int_equal(json_array_size(json_object_get(v, "a")), 3);
	assert_int_equal(json_integer_value(json_array_get(json_object_get(v, "a"), 1)), 2);
	assert_string_equal(json_string_value(json_object_get(v, "c")), "d");
	assert_true(json_is_true(json_object_get(v, "t")));
	json_decref(v);

	/* exactly len bytes are parsed: what follows is not looked at */
	v = zt_json_parse(text, strlen(text) - strlen("garbage"), &e);
	assert_non_null(v);
	assert_string_equal(json_string_value(json_object_get(v, "c")), "d");
	json_decref(v);

	/* unicode escapes other than NUL are fine */
	v = jparse("[\"caf\\u00e9\"]", &e);
	assert_non_null(v);
	assert_string_equal(json_string_value(json_array_get(v, 0)), "caf\xc3\xa9");
	json_decref(v);
}

static void test_json_rejects(void **state)
{
	static const char *bad[] = {
		"{\"a\": 1, \"a\": 2}",             /* duplicate key */
		"{\"x\": {\"k\": 1, \"k\": 1}}",    /* duplicate key, nested */
		"[\"a\\u0000b\"]",                  /* NUL in a string */
		"{\"a\\u0000\": 1}",                /* NUL in a key */
		"{} x",                             /* trailing garbage */
		"{}{}",                             /* two documents */
		"[1] ]",
		"1 2",
		"",
		"   ",
		"{\"a\": }",
		"[1,]",
		"{'a': 1}",
		"[\"\xff\"]",                        /* invalid UTF-8 */
	};
	json_t *v;
	zt_err e;

	(void)state;
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		v = jparse(bad[i], &e);
		if (v)
			fail_msg("accepted bad JSON #%zu: %s", i, bad[i]);
		assert_int_equal(e.code, ZT_EPARSE);
		assert_true(e.msg[0] != '\0');
	}

	/* a raw NUL byte inside the given length */
	zt_err_clear(&e);
	v = zt_json_parse("[\"a\0b\"]", 7, &e);
	assert_null(v);
	assert_int_equal(e.code, ZT_EPARSE);
}

static void test_json_depth(void **state)
{
	char *s;
	json_t *v;
	zt_err e;

	(void)state;
	/* ZT_DOC_MAX_DEPTH levels of containers are fine... */
	s = nest(ZT_DOC_MAX_DEPTH, "[", "", "]");
	v = jparse(s, &e);
	assert_non_null(v);
	json_decref(v);
	free(s);

	s = nest(ZT_DOC_MAX_DEPTH - 1, "{\"k\":", "{}", "}");
	v = jparse(s, &e);
	assert_non_null(v);
	json_decref(v);
	free(s);

	/* ...one more is not */
	s = nest(ZT_DOC_MAX_DEPTH + 1, "[", "", "]");
	v = jparse(s, &e);
	assert_null(v);
	assert_int_equal(e.code, ZT_ELIMIT);
	free(s);

	s = nest(ZT_DOC_MAX_DEPTH, "{\"k\":", "{}", "}");
	v = jparse(s, &e);
	assert_null(v);
	assert_int_equal(e.code, ZT_ELIMIT);
	free(s);

	/* far deeper is rejected too, without trouble */
	s = nest(100000, "[", "", "]");
	v = jparse(s, &e);
	assert_null(v);
	assert_int_not_equal(e.code, ZT_OK);
	free(s);
}

/* A scalar inside the innermost container adds no nesting level, as in
 * zt_yaml_parse (see test_yaml_depth). */
static void test_json_depth_scalar_leaf(void **state)
{
	char *s;
	json_t *v;
	zt_err e;

	(void)state;
	s = nest(ZT_DOC_MAX_DEPTH, "[", "1", "]");
	v = jparse(s, &e);
	free(s);
	if (!v)
		fail_msg("%d nested arrays holding a number were rejected: %s",
			 ZT_DOC_MAX_DEPTH, e.msg);
	json_decref(v);

	s = nest(ZT_DOC_MAX_DEPTH + 1, "[", "1", "]");
	v = jparse(s, &e);
	assert_null(v);
	assert_int_equal(e.code, ZT_ELIMIT);
	free(s);
}

/* ---- YAML -------------------------------------------------------------- */

static json_t *yparse(const char *s, size_t max_docs, zt_err *e)
{
	zt_err_clear(e);
	return zt_yaml_parse(s, strlen(s), max_docs, e);
}

static void test_yaml_manifest(void **state)
{
	static const char manifest[] =
	    "# a comment\n"
	    "apiVersion: v1\n"
	    "kind: ServiceAccount\n"
	    "metadata:\n"
	    "  name: web\n"
	    "  namespace: shop\n"
	    "---\n"
	    "apiVersion: apps/v1\n"
	    "kind: Deployment\n"
	    "metadata:\n"
	    "  name: web\n"
	    "  labels: {app: web, tier: \"front\"}\n"
	    "spec:\n"
	    "  replicas: 3\n"
	    "  template:\n"
	    "    spec:\n"
	    "      containers:\n"
	    "        - name: web\n"
	    "          image: \"nginx:1.25\"\n"
	    "          args: [\"--port\", '8080']\n"
	    "          ports:\n"
	    "            - containerPort: 8080\n"
	    "              protocol: TCP\n"
	    "---\n"
	    "apiVersion: v1\n"
	    "kind: Service\n"
	    "metadata: {name: web}\n"
	    "...\n";
	json_t *v, *d, *c;
	zt_err e;

	(void)state;
	v = yparse(manifest, 10, &e);
	if (!v)
		fail_msg("manifest rejected: %s", e.msg);
	assert_true(json_is_array(v));
	assert_int_equal(json_array_size(v), 3);
	for (size_t i = 0; i < 3; i++)
		assert_true(json_is_object(json_array_get(v, i)));

	d = json_array_get(v, 0);
	assert_string_equal(json_string_value(json_object_get(d, "kind")), "ServiceAccount");
	assert_string_equal(json_string_value(json_object_get(
				json_object_get(d, "metadata"), "namespace")), "shop");

	d = json_array_get(v, 1);
	assert_string_equal(json_string_value(json_object_get(d, "apiVersion")), "apps/v1");
	assert_string_equal(json_string_value(json_object_get(
				json_object_get(json_object_get(d, "metadata"), "labels"),
				"tier")), "front");
	c = json_object_get(json_object_get(d, "spec"), "replicas");
	assert_true(json_is_integer(c));
	assert_int_equal(json_integer_value(c), 3);
	c = json_object_get(json_object_get(json_object_get(d, "spec"), "template"), "spec");
	c = json_array_get(json_object_get(c, "containers"), 0);
	assert_non_null(c);
	assert_string_equal(json_string_value(json_object_get(c, "image")), "nginx:1.25");
	assert_string_equal(json_string_value(json_array_get(json_object_get(c, "args"), 1)),
			    "8080");
	c = json_array_get(json_object_get(c, "ports"), 0);
	assert_true(json_is_integer(json_object_get(c, "containerPort")));
	assert_int_equal(json_integer_value(json_object_get(c, "containerPort")), 8080);
	assert_string_equal(json_string_value(json_object_get(c, "protocol")), "TCP");

	d = json_array_get(v, 2);
	assert_string_equal(json_string_value(json_object_get(
				json_object_get(d, "metadata"), "name")), "web");
	json_decref(v);
}

static void test_yaml_scalars(void **state)
{
	static const char text[] =
	    "t: true\n"
	    "t2: True\n"
	    "f: false\n"
	    "f2: FALSE\n"
	    "n: null\n"
	    "n2: ~\n"
	    "n3:\n"
	    "i: 42\n"
	    "neg: -7\n"
	    "pos: +5\n"
	    "zero: 0\n"
	    "qt: \"true\"\n"
	    "qf: 'false'\n"
	    "qn: \"null\"\n"
	    "qi: '42'\n"
	    "qi2: \"-7\"\n"
	    "s: hello world\n"
	    "fl: 1.5\n"
	    "dash: 1-2\n"
	    "ver: 1.2.3\n";
	json_t *v, *d;
	zt_err e;

	(void)state;
	v = yparse(text, 1, &e);
	if (!v)
		fail_msg("rejected: %s", e.msg);
	assert_int_equal(json_array_size(v), 1);
	d = json_array_get(v, 0);
	assert_true(json_is_true(json_object_get(d, "t")));
	assert_true(json_is_true(json_object_get(d, "t2")));
	assert_true(json_is_false(json_object_get(d, "f")));
	assert_true(json_is_false(json_object_get(d, "f2")));
	assert_true(json_is_null(json_object_get(d, "n")));
	assert_true(json_is_null(json_object_get(d, "n2")));
	assert_true(json_is_null(json_object_get(d, "n3")));
	assert_true(json_is_integer(json_object_get(d, "i")));
	assert_int_equal(json_integer_value(json_object_get(d, "i")), 42);
	assert_true(json_is_integer(json_object_get(d, "neg")));
	assert_int_equal(json_integer_value(json_object_get(d, "neg")), -7);
	assert_int_equal(json_integer_value(json_object_get(d, "pos")), 5);
	assert_true(json_is_integer(json_object_get(d, "zero")));
	assert_int_equal(json_integer_value(json_object_get(d, "zero")), 0);
	assert_string_equal(json_string_value(json_object_get(d, "qt")), "true");
	assert_string_equal(json_string_value(json_object_get(d, "qf")), "false");
	assert_string_equal(json_string_value(json_object_get(d, "qn")), "null");
	assert_string_equal(json_string_value(json_object_get(d, "qi")), "42");
	assert_string_equal(json_string_value(json_object_get(d, "qi2")), "-7");
	assert_string_equal(json_string_value(json_object_get(d, "s")), "hello world");
	assert_string_equal(json_string_value(json_object_get(d, "fl")), "1.5");
	assert_string_equal(json_string_value(json_object_get(d, "dash")), "1-2");
	assert_string_equal(json_string_value(json_object_get(d, "ver")), "1.2.3");
	json_decref(v);

	/* a bare scalar document, and a list */
	v = yparse("--- 17\n--- [a, \"1\", 2]\n", 5, &e);
	assert_non_null(v);
	assert_int_equal(json_array_size(v), 2);
	assert_int_equal(json_integer_value(json_array_get(v, 0)), 17);
	d = json_array_get(v, 1);
	assert_string_equal(json_string_value(json_array_get(d, 0)), "a");
	assert_string_equal(json_string_value(json_array_get(d, 1)), "1");
	assert_int_equal(json_integer_value(json_array_get(d, 2)), 2);
	json_decref(v);
}

static void expect_yaml_error(const char *text, size_t max_docs, int code)
{
	zt_err e;
	json_t *v = yparse(text, max_docs, &e);

	if (v) {
		json_decref(v);
		fail_msg("YAML accepted, expected an error: %s", text);
	}
	if (e.code != code)
		fail_msg("YAML %s: code %d (%s), expected %d", text, e.code, e.msg, code);
	assert_true(e.msg[0] != '\0');
}

static void test_yaml_duplicates(void **state)
{
	(void)state;
	expect_yaml_error("a: 1\na: 2\n", 1, ZT_EPARSE);
	expect_yaml_error("a: 1\nb: 2\na: 1\n", 1, ZT_EPARSE);
	expect_yaml_error("top:\n  x: 1\n  x: {y: 2}\n", 1, ZT_EPARSE);
	expect_yaml_error("a: [1]\na: [2]\n", 1, ZT_EPARSE);
	expect_yaml_error("{a: 1, a: 1}\n", 1, ZT_EPARSE);
	/* "1" and 1 as keys are the same key */
	expect_yaml_error("1: a\n\"1\": b\n", 1, ZT_EPARSE);

	/* the same key in different mappings or documents is fine */
	zt_err e;
	json_t *v = yparse("a: {k: 1}\nb: {k: 2}\n---\na: 3\n", 2, &e);
	assert_non_null(v);
	assert_int_equal(json_array_size(v), 2);
	json_decref(v);
}

static void test_yaml_anchors_aliases(void **state)
{
	(void)state;
	expect_yaml_error("a: &x 1\nb: 2\n", 1, ZT_EPARSE);
	expect_yaml_error("a: &x {k: 1}\n", 1, ZT_EPARSE);
	expect_yaml_error("a: &x [1, 2]\n", 1, ZT_EPARSE);
	expect_yaml_error("a: 1\nb: *x\n", 1, ZT_EPARSE);
	expect_yaml_error("a: &x 1\nb: *x\n", 1, ZT_EPARSE);
	expect_yaml_error("base: &b {k: 1}\nderived:\n  <<: *b\n", 1, ZT_EPARSE);
	expect_yaml_error("a: &a [\"lol\",\"lol\"]\n"
			  "b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\n"
			  "c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\n",
			  1, ZT_EPARSE);
}

static void test_yaml_complex_keys(void **state)
{
	(void)state;
	expect_yaml_error("? {a: 1}\n: v\n", 1, ZT_EPARSE);
	expect_yaml_error("? [a, b]\n: v\n", 1, ZT_EPARSE);
	expect_yaml_error("{[1, 2]: x}\n", 1, ZT_EPARSE);
	expect_yaml_error("outer:\n  ? - k\n  : v\n", 1, ZT_EPARSE);
}

static void test_yaml_tags_scalar(void **state)
{
	(void)state;
	expect_yaml_error("a: !!python/object:os.system ls\n", 1, ZT_EPARSE);
	expect_yaml_error("a: !!python/object \"x\"\n", 1, ZT_EPARSE);
	expect_yaml_error("a: !custom x\n", 1, ZT_EPARSE);
	expect_yaml_error("a: !!str 5\n", 1, ZT_EPARSE);
	expect_yaml_error("!!python/name:os.system\n", 1, ZT_EPARSE);
}

/* Tags on mappings and sequences are tags too ("tags like !!python/object
 * rejected"): the constructors they name run on collections. */
static void test_yaml_tags_collection(void **state)
{
	(void)state;
	expect_yaml_error("a: !!python/object {x: 1}\n", 1, ZT_EPARSE);
	expect_yaml_error("a: !!python/object:__main__.Evil\n  x: 1\n", 1, ZT_EPARSE);
	expect_yaml_error("!!python/object/apply:os.system [\"ls\"]\n", 1, ZT_EPARSE);
	expect_yaml_error("a: !!python/object/new:tuple [1]\n", 1, ZT_EPARSE);
	expect_yaml_error("--- !!map\nk: v\n", 1, ZT_EPARSE);
	expect_yaml_error("a: !custom [1]\n", 1, ZT_EPARSE);
}

static void test_yaml_depth(void **state)
{
	char *s;
	json_t *v;
	zt_err e;

	(void)state;
	s = nest(ZT_DOC_MAX_DEPTH, "[", "1", "]");
	v = yparse(s, 1, &e);
	free(s);
	if (!v)
		fail_msg("%d levels rejected: %s", ZT_DOC_MAX_DEPTH, e.msg);
	json_decref(v);

	s = nest(ZT_DOC_MAX_DEPTH + 1, "[", "1", "]");
	expect_yaml_error(s, 1, ZT_ELIMIT);
	free(s);

	s = nest(ZT_DOC_MAX_DEPTH + 1, "{k: ", "v", "}");
	expect_yaml_error(s, 1, ZT_ELIMIT);
	free(s);

	s = nest(ZT_DOC_MAX_DEPTH, "{k: ", "v", "}");
	v = yparse(s, 1, &e);
	assert_non_null(v);
	json_decref(v);
	free(s);

	s = nest(5000, "[", "", "]");
	v = yparse(s, 1, &e);
	assert_null(v);
	assert_int_not_equal(e.code, ZT_OK);
	free(s);
}

static void test_yaml_max_docs(void **state)
{
	static const char three[] = "a: 1\n---\nb: 2\n---\nc: 3\n";
	json_t *v;
	zt_err e;

	(void)state;
	v = yparse(three, 3, &e);
	assert_non_null(v);
	assert_int_equal(json_array_size(v), 3);
	assert_int_equal(json_integer_value(json_object_get(json_array_get(v, 2), "c")), 3);
	json_decref(v);

	expect_yaml_error(three, 2, ZT_ELIMIT);
	expect_yaml_error(three, 0, ZT_ELIMIT);
	expect_yaml_error("x: 1\n", 0, ZT_ELIMIT);
}

static void test_yaml_utf8_and_nul(void **state)
{
	json_t *v;
	zt_err e;

	(void)state;
	expect_yaml_error("a: \xff\xfe\n", 1, ZT_EPARSE);
	expect_yaml_error("\xc3: b\n", 1, ZT_EPARSE);
	expect_yaml_error("a: \"x\xc0\xaf\"\n", 1, ZT_EPARSE); /* overlong */
	expect_yaml_error("a: \xed\xa0\x80\n", 1, ZT_EPARSE);   /* surrogate */
	expect_yaml_error("a: \"x\\0y\"\n", 1, ZT_EPARSE);      /* escaped NUL */
	expect_yaml_error("\"k\\0\": 1\n", 1, ZT_EPARSE);

	/* a raw NUL byte within the given length */
	zt_err_clear(&e);
	v = zt_yaml_parse("a: x\0y\n", 7, 1, &e);
	assert_null(v);
	assert_int_not_equal(e.code, ZT_OK);

	/* valid UTF-8 passes through */
	v = yparse("name: caf\xc3\xa9\n", 1, &e);
	assert_non_null(v);
	assert_string_equal(json_string_value(json_object_get(json_array_get(v, 0), "name")),
			    "caf\xc3\xa9");
	json_decref(v);
}

static void test_yaml_empty_and_syntax(void **state)
{
	json_t *v;
	zt_err e;

	(void)state;
	v = yparse("", 1, &e);
	assert_non_null(v);
	assert_true(json_is_array(v));
	assert_int_equal(json_array_size(v), 0);
	json_decref(v);

	v = yparse("# only a comment\n\n", 0, &e);
	assert_non_null(v);
	assert_int_equal(json_array_size(v), 0);
	json_decref(v);

	expect_yaml_error("a: [1, 2\n", 1, ZT_EPARSE);
	expect_yaml_error("a: b: c\n", 1, ZT_EPARSE);
	expect_yaml_error("a:\n  - 1\n b: 2\n", 1, ZT_EPARSE);

	/* explicit length: the rest is not parsed */
	zt_err_clear(&e);
	v = zt_yaml_parse("a: 1\n[[[", 5, 1, &e);
	assert_non_null(v);
	assert_int_equal(json_integer_value(json_object_get(json_array_get(v, 0), "a")), 1);
	json_decref(v);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_json_ok),
		cmocka_unit_test(test_json_rejects),
		cmocka_unit_test(test_json_depth),
		cmocka_unit_test(test_json_depth_scalar_leaf),
		cmocka_unit_test(test_yaml_manifest),
		cmocka_unit_test(test_yaml_scalars),
		cmocka_unit_test(test_yaml_duplicates),
		cmocka_unit_test(test_yaml_anchors_aliases),
		cmocka_unit_test(test_yaml_complex_keys),
		cmocka_unit_test(test_yaml_tags_scalar),
		cmocka_unit_test(test_yaml_tags_collection),
		cmocka_unit_test(test_yaml_depth),
		cmocka_unit_test(test_yaml_max_docs),
		cmocka_unit_test(test_yaml_utf8_and_nul),
		cmocka_unit_test(test_yaml_empty_and_syntax),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
