/* Unit tests: JSON-lines logging (core/log.c). */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/core.h"

/* Runs zt_log with stderr sent to a file; returns what was written. */
static char *capture(void (*fn)(void))
{
	char *dir = tu_mkdtemp(), path[4200], *out;
	size_t n;
	int saved = dup(2);
	FILE *f;

	snprintf(path, sizeof path, "%s/log", dir);
	f = fopen(path, "w");
	assert_non_null(f);
	fflush(stderr);
	dup2(fileno(f), 2);
	fn();
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	fclose(f);
	out = tu_read(path, &n);
	tu_rmtree(dir);
	return out;
}

static void log_fields(void)
{
	zt_clock_set(1700000000);
	zt_log(ZT_LOG_WARN, "svid rejected", "rule", "leaf-ca", "peer", "10.0.0.1", NULL);
	zt_clock_set(0);
}

static void log_hostile(void)
{
	/* a value that tries to end the line and forge a field */
	zt_log(ZT_LOG_ERROR, "x", "id", "a\"}\n{\"level\":\"debug", NULL);
	zt_log(ZT_LOG_ERROR, "bad \xff utf8", "v", "\xc3\x28", NULL);
}

static char big[20000];

static void log_long(void)
{
	memset(big, 'x', sizeof big - 1);
	zt_log(ZT_LOG_ERROR, "long", "a", "kept, with a comma", "b", big, "c", "after", NULL);
	zt_log(ZT_LOG_ERROR, "ctl", "v", "tab\there\x01\x7f \xf0\x9f\x94\x92 \xed\xa0\x80", NULL);
}

static void log_levels(void)
{
	zt_log_set_level(ZT_LOG_WARN);
	zt_log(ZT_LOG_INFO, "hidden", NULL);
	zt_log(ZT_LOG_DEBUG, "hidden", NULL);
	zt_log(ZT_LOG_ERROR, "shown", NULL);
	zt_log_set_level(ZT_LOG_INFO);
}

static void test_log_line(void **state)
{
	char *out = capture(log_fields);
	json_t *o;

	(void)state;
	assert_non_null(out);
	assert_int_equal(strchr(out, '\n') - out + 1, (long)strlen(out)); /* one line */
	o = zt_json_parse(out, strlen(out), NULL);
	assert_non_null(o);
	assert_string_equal(json_string_value(json_object_get(o, "ts")), "2023-11-14T22:13:20Z");
	assert_string_equal(json_string_value(json_object_get(o, "level")), "warn");
	assert_string_equal(json_string_value(json_object_get(o, "msg")), "svid rejected");
	assert_string_equal(json_string_value(json_object_get(o, "rule")), "leaf-ca");
	assert_string_equal(json_string_value(json_object_get(o, "peer")), "10.0.0.1");
	json_decref(o);
	free(out);
}

static void test_log_hostile_values(void **state)
{
	char *out = capture(log_hostile), *nl;
	json_t *o;

	(void)state;
	assert_non_null(out);
	nl = strchr(out, '\n');
	assert_non_null(nl);
	/* two lines, each one JSON object; the forged field stays inside a value */
	o = zt_json_parse(out, (size_t)(nl - out), NULL);
	assert_non_null(o);
	assert_string_equal(json_string_value(json_object_get(o, "level")), "error");
	assert_string_equal(json_string_value(json_object_get(o, "id")), "a\"}\n{\"level\":\"debug");
	json_decref(o);
	o = zt_json_parse(nl + 1, strlen(nl + 1), NULL);
	assert_non_null(o);
	/* bytes that are not UTF-8 become U+FFFD; the rest of the value stays */
	assert_string_equal(json_string_value(json_object_get(o, "msg")), "bad \xef\xbf\xbd utf8");
	assert_string_equal(json_string_value(json_object_get(o, "v")), "\xef\xbf\xbd(");
	json_decref(o);
	free(out);
}

static void test_log_long_and_control(void **state)
{
	char *out = capture(log_long), *nl;
	json_t *o;

	(void)state;
	assert_non_null(out);
	nl = strchr(out, '\n');
	assert_non_null(nl);
	assert_true(nl - out <= 16384);
	/* the fields that fit stay, the one too long and those after it go, and the line says so */
	o = zt_json_parse(out, (size_t)(nl - out), NULL);
	assert_non_null(o);
	assert_string_equal(json_string_value(json_object_get(o, "a")), "kept, with a comma");
	assert_null(json_object_get(o, "b"));
	assert_null(json_object_get(o, "c"));
	assert_true(json_is_true(json_object_get(o, "truncated")));
	json_decref(o);
	/* controls escaped; a 4-byte character kept; an encoded surrogate is not UTF-8 */
	o = zt_json_parse(nl + 1, strlen(nl + 1), NULL);
	assert_non_null(o);
	assert_string_equal(json_string_value(json_object_get(o, "v")),
			    "tab\there\x01\x7f \xf0\x9f\x94\x92 \xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd");
	assert_non_null(strstr(nl + 1, "\\u0001"));
	json_decref(o);
	free(out);
}

static void test_log_levels(void **state)
{
	char *out = capture(log_levels);
	enum zt_log_level l;

	(void)state;
	assert_null(strstr(out, "hidden"));
	assert_non_null(strstr(out, "shown"));
	free(out);
	assert_int_equal(zt_log_level_parse("debug", &l), 0);
	assert_int_equal(l, ZT_LOG_DEBUG);
	assert_int_equal(zt_log_level_parse("error", &l), 0);
	assert_int_equal(l, ZT_LOG_ERROR);
	assert_int_equal(zt_log_level_parse("verbose", &l), -ZT_EINVAL);
}

static void test_doc_load_file(void **state)
{
	char *dir = tu_mkdtemp(), path[4200];
	json_t *docs;
	zt_err e;

	(void)state;
	snprintf(path, sizeof path, "%s/a.yaml", dir);
	assert_int_equal(zt_file_write(path, "a: 1\n---\nb: [x]\n", 16, 0644, 0, &e), 0);
	docs = zt_doc_load_file(path, 1024, &e);
	assert_non_null(docs);
	assert_int_equal(json_array_size(docs), 2);
	assert_int_equal(json_integer_value(json_object_get(json_array_get(docs, 0), "a")), 1);
	json_decref(docs);
	snprintf(path, sizeof path, "%s/a.json", dir);
	assert_int_equal(zt_file_write(path, "{\"a\": 1.5}", 10, 0644, 0, &e), 0);
	docs = zt_doc_load_file(path, 1024, &e);
	assert_non_null(docs);
	assert_int_equal(json_array_size(docs), 1);
	assert_true(json_is_real(json_object_get(json_array_get(docs, 0), "a")));
	json_decref(docs);
	/* errors name the file */
	assert_int_equal(zt_file_write(path, "{\"a\": }", 7, 0644, 0, &e), 0);
	assert_null(zt_doc_load_file(path, 1024, &e));
	assert_non_null(strstr(e.msg, path));
	assert_null(zt_doc_load_file(path, 3, &e));
	assert_int_equal(e.code, ZT_ELIMIT);
	tu_rmtree(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_log_line),
		cmocka_unit_test(test_log_hostile_values),
		cmocka_unit_test(test_log_levels),
		cmocka_unit_test(test_log_long_and_control),
		cmocka_unit_test(test_doc_load_file),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
