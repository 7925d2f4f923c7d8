/* tests/unit/test_core.c: errors, buffers, files, time, quoting (documents: test_doc.c). */
#include "testutil.h"

#include "core/core.h"
#include "crypto/crypto.h"
#include "identity/identity.h"

#include <dirent.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- helpers ----------------------------------------------------------- */

/* A string of n copies of c; caller frees. */
static char *repeat(char c, size_t n)
{
	char *s = malloc(n + 1);

	assert_non_null(s);
	memset(s, c, n);
	s[n] = '\0';
	return s;
}

static int ends_with(const char *s, const char *suffix)
{
	size_t a = strlen(s), b = strlen(suffix);

	return a >= b && strcmp(s + a - b, suffix) == 0;
}

/* Number of entries in a directory, "." and ".." excluded. */
static int count_entries(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	int n = 0;

	assert_non_null(d);
	while ((de = readdir(d)) != NULL)
		if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
			n++;
	closedir(d);
	return n;
}

static char *join(const char *dir, const char *name)
{
	char *p;

	assert_true(asprintf(&p, "%s/%s", dir, name) > 0);
	return p;
}

static void write_raw(const char *path, const void *data, size_t len)
{
	FILE *f = fopen(path, "wb");

	assert_non_null(f);
	assert_int_equal(fwrite(data, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
}

/* ---- errors ------------------------------------------------------------ */

static void test_err_set(void **state)
{
	zt_err e;

	(void)state;
	zt_err_clear(&e);
	assert_int_equal(e.code, ZT_OK);
	assert_string_equal(e.rule, "");
	assert_string_equal(e.msg, "");

	assert_int_equal(zt_err_set(&e, ZT_EIO, "cannot open %s: %d", "x.pem", 5), -ZT_EIO);
	assert_int_equal(e.code, ZT_EIO);
	assert_string_equal(e.msg, "cannot open x.pem: 5");
	assert_string_equal(e.rule, "");

	/* a rule from an earlier error does not survive a plain zt_err_set */
	assert_int_equal(zt_err_rule(&e, ZT_EVERIFY, "leaf-ca", "bad %s", "leaf"),
			 -ZT_EVERIFY);
	assert_int_equal(e.code, ZT_EVERIFY);
	assert_string_equal(e.rule, "leaf-ca");
	assert_string_equal(e.msg, "bad leaf");
	assert_int_equal(zt_err_set(&e, ZT_EPARSE, "plain"), -ZT_EPARSE);
	assert_string_equal(e.rule, "");
	assert_int_equal(e.code, ZT_EPARSE);

	/* NULL records nothing but still returns -code */
	assert_int_equal(zt_err_set(NULL, ZT_ELIMIT, "x"), -ZT_ELIMIT);
	assert_int_equal(zt_err_rule(NULL, ZT_EINVAL, "id-port", "x"), -ZT_EINVAL);
	zt_err_clear(NULL);

	zt_err_clear(&e);
	assert_int_equal(e.code, ZT_OK);
	assert_string_equal(e.msg, "");
	assert_string_equal(e.rule, "");
}

static void test_err_truncation(void **state)
{
	char *big = repeat('A', 10000);
	char *bigrule = repeat('r', 500);
	zt_err e;

	(void)state;
	memset(&e, 0x55, sizeof e);
	assert_int_equal(zt_err_set(&e, ZT_EINVAL, "%s", big), -ZT_EINVAL);
	assert_int_equal(strnlen(e.msg, sizeof e.msg), ZT_ERR_MSG_MAX - 1);
	assert_memory_equal(e.msg, big, ZT_ERR_MSG_MAX - 1);

	memset(&e, 0x55, sizeof e);
	assert_int_equal(zt_err_rule(&e, ZT_EINVAL, bigrule, "%s", big), -ZT_EINVAL);
	assert_int_equal(strnlen(e.rule, sizeof e.rule), sizeof e.rule - 1);
	assert_memory_equal(e.rule, bigrule, sizeof e.rule - 1);
	assert_int_equal(strnlen(e.msg, sizeof e.msg), ZT_ERR_MSG_MAX - 1);

	free(big);
	free(bigrule);
}

static void test_err_wrap(void **state)
{
	char *big = repeat('P', 5000);
	zt_err e;
	int i;

	(void)state;
	zt_err_rule(&e, ZT_EIO, "some-rule", "inner reason");
	assert_int_equal(zt_err_wrap(&e, "loading %s", "ca.pem"), -ZT_EIO);
	assert_string_equal(e.msg, "loading ca.pem: inner reason");
	assert_int_equal(e.code, ZT_EIO);
	assert_string_equal(e.rule, "some-rule");

	assert_int_equal(zt_err_wrap(&e, "step %d", 2), -ZT_EIO);
	assert_string_equal(e.msg, "step 2: loading ca.pem: inner reason");

	/* a wrap with no error recorded still reports a failure */
	zt_err_clear(&e);
	assert_int_equal(zt_err_wrap(&e, "ctx"), -ZT_EINVAL);
	assert_string_equal(e.msg, "ctx: ");
	assert_int_equal(zt_err_wrap(NULL, "ctx"), -ZT_EINVAL);

	/* huge prefix: bounded, terminated, the original reason still there */
	zt_err_set(&e, ZT_ECRYPTO, "inner");
	assert_int_equal(zt_err_wrap(&e, "%s", big), -ZT_ECRYPTO);
	assert_true(strnlen(e.msg, sizeof e.msg) < sizeof e.msg);
	assert_true(e.msg[0] == 'P');
	assert_true(ends_with(e.msg, ": inner"));

	/* huge inner message: cut to fit, prefix intact */
	zt_err_set(&e, ZT_EPARSE, "%s", big);
	assert_int_equal(zt_err_wrap(&e, "ctx"), -ZT_EPARSE);
	assert_int_equal(strnlen(e.msg, sizeof e.msg), ZT_ERR_MSG_MAX - 1);
	assert_memory_equal(e.msg, "ctx: PPP", 8);

	/* many wraps never overflow */
	zt_err_set(&e, ZT_EIO, "x");
	for (i = 0; i < 200; i++)
		assert_int_equal(zt_err_wrap(&e, "layer %d with some context", i), -ZT_EIO);
	assert_int_equal(strnlen(e.msg, sizeof e.msg), ZT_ERR_MSG_MAX - 1);
	assert_memory_equal(e.msg, "layer 199 with some context: layer 198", 38);

	free(big);
}

static void test_strerror(void **state)
{
	(void)state;
	assert_string_equal(zt_strerror(ZT_OK), "ok");
	assert_string_equal(zt_strerror(ZT_EINVAL), "invalid input");
	assert_string_equal(zt_strerror(ZT_ENOMEM), "out of memory");
	assert_string_equal(zt_strerror(ZT_EIO), "input/output error");
	assert_string_equal(zt_strerror(ZT_EPARSE), "parse error");
	assert_string_equal(zt_strerror(ZT_ECRYPTO), "cryptographic failure");
	assert_string_equal(zt_strerror(ZT_EVERIFY), "verification failed");
	assert_string_equal(zt_strerror(ZT_EEXIST), "already exists");
	assert_string_equal(zt_strerror(ZT_ENOENT), "not found");
	assert_string_equal(zt_strerror(ZT_ELIMIT), "limit exceeded");
	assert_string_equal(zt_strerror(ZT_ESTATE), "invalid state");
	assert_string_equal(zt_strerror(ZT_ECONFLICT), "conflict");
	/* the negative values functions return work too */
	assert_string_equal(zt_strerror(-ZT_ENOENT), "not found");
	assert_string_equal(zt_strerror(-ZT_EVERIFY), "verification failed");
	assert_string_equal(zt_strerror(12), "unknown error");
	assert_string_equal(zt_strerror(-12), "unknown error");
	assert_string_equal(zt_strerror(INT_MAX), "unknown error");
}

/* Kept last in the group: negating INT_MIN is undefined behaviour, which
 * UBSan reports (and, with -fno-sanitize-recover, exits on). */
static void test_strerror_int_min(void **state)
{
	(void)state;
	assert_string_equal(zt_strerror(INT_MIN), "unknown error");
}

/* ---- buffers ----------------------------------------------------------- */

static void test_buf_append(void **state)
{
	zt_buf b;
	zt_err e;

	(void)state;
	zt_buf_init(&b, 16);
	assert_null(b.p);
	assert_int_equal(b.len, 0);
	assert_int_equal(b.max, 16);

	assert_int_equal(zt_buf_append(&b, "hello", 5, &e), 0);
	assert_int_equal(b.len, 5);
	assert_memory_equal(b.p, "hello", 5);
	assert_int_equal(zt_buf_append(&b, NULL, 0, &e), 0);
	assert_int_equal(b.len, 5);
	assert_int_equal(zt_buf_append(&b, " world", 6, &e), 0);
	assert_int_equal(b.len, 11);
	assert_memory_equal(b.p, "hello world", 11);
	assert_true(b.cap >= b.len);

	/* exactly up to max is fine */
	assert_int_equal(zt_buf_append(&b, "12345", 5, &e), 0);
	assert_int_equal(b.len, 16);

	/* one byte more is not, and changes nothing */
	zt_err_clear(&e);
	assert_int_equal(zt_buf_append(&b, "!", 1, &e), -ZT_ELIMIT);
	assert_int_equal(e.code, ZT_ELIMIT);
	assert_true(e.msg[0] != '\0');
	assert_int_equal(b.len, 16);
	assert_memory_equal(b.p, "hello world12345", 16);

	/* sizes that would overflow len + n */
	assert_int_equal(zt_buf_append(&b, "x", SIZE_MAX, &e), -ZT_ELIMIT);
	assert_int_equal(zt_buf_reserve(&b, SIZE_MAX - 3, &e), -ZT_ELIMIT);
	assert_int_equal(b.len, 16);
	assert_memory_equal(b.p, "hello world12345", 16);

	assert_int_equal(zt_buf_terminate(&b, &e), 0);
	assert_int_equal(b.len, 16);
	assert_string_equal((char *)b.p, "hello world12345");

	zt_buf_free(&b, 0);
	assert_null(b.p);
	assert_int_equal(b.len, 0);
	assert_int_equal(b.cap, 0);
}

static void test_buf_limit_midway(void **state)
{
	zt_buf b;
	zt_err e;

	(void)state;
	zt_buf_init(&b, 10);
	assert_int_equal(zt_buf_append(&b, "abcdefg", 7, &e), 0);
	/* 4 bytes would end at 11 > 10: refused whole, nothing partial */
	assert_int_equal(zt_buf_append(&b, "hijk", 4, &e), -ZT_ELIMIT);
	assert_int_equal(b.len, 7);
	assert_memory_equal(b.p, "abcdefg", 7);
	assert_int_equal(zt_buf_append(&b, "hij", 3, &e), 0);
	assert_memory_equal(b.p, "abcdefghij", 10);
	zt_buf_free(&b, 1);
	assert_null(b.p);

	/* max 0 takes nothing but can still be terminated */
	zt_buf_init(&b, 0);
	assert_int_equal(zt_buf_append(&b, "a", 1, &e), -ZT_ELIMIT);
	assert_int_equal(zt_buf_terminate(&b, &e), 0);
	assert_non_null(b.p);
	assert_int_equal(b.len, 0);
	assert_int_equal(b.p[0], 0);
	zt_buf_free(&b, 0);
}

static void test_buf_appendf(void **state)
{
	zt_buf b;
	zt_err e;

	(void)state;
	zt_buf_init(&b, 32);
	assert_int_equal(zt_buf_appendf(&b, &e, "%s=%d", "n", 42), 0);
	assert_int_equal(b.len, 4);
	assert_memory_equal(b.p, "n=42", 4);
	assert_int_equal(zt_buf_appendf(&b, &e, ";%03u", 7u), 0);
	assert_int_equal(b.len, 8);
	assert_memory_equal(b.p, "n=42;007", 8);
	assert_int_equal(zt_buf_appendf(&b, &e, "%s", ""), 0);
	assert_int_equal(b.len, 8);

	/* too long: refused, buffer unchanged */
	zt_err_clear(&e);
	assert_int_equal(zt_buf_appendf(&b, &e, "%s", "0123456789012345678901234567890"),
			 -ZT_ELIMIT);
	assert_int_equal(e.code, ZT_ELIMIT);
	assert_int_equal(b.len, 8);
	assert_memory_equal(b.p, "n=42;007", 8);

	assert_int_equal(zt_buf_terminate(&b, &e), 0);
	assert_string_equal((char *)b.p, "n=42;007");
	zt_buf_free(&b, 0);
}

/* Content of exactly `max` bytes is within the limit, whichever way it is
 * appended (zt_buf_append accepts it, see test_buf_append). */
static void test_buf_appendf_exact_max(void **state)
{
	zt_buf b;
	zt_err e;

	(void)state;
	zt_buf_init(&b, 8);
	zt_err_clear(&e);
	assert_int_equal(zt_buf_appendf(&b, &e, "%s", "12345678"), 0);
	assert_int_equal(b.len, 8);
	assert_memory_equal(b.p, "12345678", 8);
	zt_buf_free(&b, 0);

	zt_buf_init(&b, 8);
	assert_int_equal(zt_buf_append(&b, "1234", 4, &e), 0);
	assert_int_equal(zt_buf_appendf(&b, &e, "%d", 5678), 0);
	assert_int_equal(b.len, 8);
	assert_memory_equal(b.p, "12345678", 8);
	zt_buf_free(&b, 0);
}

static void test_buf_grow_large(void **state)
{
	char chunk[1000];
	zt_buf b;
	zt_err e;
	int i;

	(void)state;
	zt_buf_init(&b, 100000);
	for (i = 0; i < 100; i++) {
		memset(chunk, 'a' + i % 26, sizeof chunk);
		assert_int_equal(zt_buf_append(&b, chunk, sizeof chunk, &e), 0);
	}
	assert_int_equal(b.len, 100000);
	assert_true(b.cap <= b.max + 1);
	assert_int_equal(b.p[0], 'a');
	assert_int_equal(b.p[99999], 'a' + 99 % 26);
	assert_int_equal(zt_buf_append(&b, "x", 1, &e), -ZT_ELIMIT);
	assert_int_equal(zt_buf_terminate(&b, &e), 0);
	assert_int_equal(b.p[100000], 0);
	zt_buf_free(&b, 1);
	assert_null(b.p);
	assert_int_equal(b.len, 0);
	assert_int_equal(b.cap, 0);

	/* a freed buffer can be used again */
	assert_int_equal(zt_buf_append(&b, "ok", 2, &e), 0);
	assert_memory_equal(b.p, "ok", 2);
	zt_buf_free(&b, 0);
}

/* ---- files ------------------------------------------------------------- */

/* Each file test gets its own folder, removed even when the test fails. */
static int dir_setup(void **state)
{
	*state = tu_mkdtemp();
	return 0;
}

static int dir_teardown(void **state)
{
	tu_rmtree(*state);
	return 0;
}

static void test_file_read(void **state)
{
	const char *dir = *state;
	char *path = join(dir, "f.bin");
	char *big = repeat('z', 20000);
	zt_buf b;
	zt_err e;

	write_raw(path, big, 20000);

	assert_int_equal(zt_file_read(path, 20000, &b, &e), 0);
	assert_int_equal(b.len, 20000);
	assert_memory_equal(b.p, big, 20000);
	assert_int_equal(b.p[20000], 0); /* terminated */
	zt_buf_free(&b, 0);

	zt_err_clear(&e);
	assert_int_equal(zt_file_read(path, 19999, &b, &e), -ZT_ELIMIT);
	assert_int_equal(e.code, ZT_ELIMIT);
	assert_non_null(strstr(e.msg, "f.bin"));
	assert_null(b.p);
	assert_int_equal(b.len, 0);

	assert_int_equal(zt_file_read(path, 100, &b, &e), -ZT_ELIMIT);
	assert_null(b.p);

	/* an empty file reads as an empty, terminated buffer */
	write_raw(path, "", 0);
	assert_int_equal(zt_file_read(path, 100, &b, &e), 0);
	assert_int_equal(b.len, 0);
	assert_non_null(b.p);
	assert_int_equal(b.p[0], 0);
	zt_buf_free(&b, 0);

	free(big);
	free(path);
}

static void test_file_read_errors(void **state)
{
	const char *dir = *state;
	char *missing = join(dir, "missing.pem");
	zt_buf b;
	zt_err e;

	zt_err_clear(&e);
	assert_int_equal(zt_file_read(missing, 100, &b, &e), -ZT_ENOENT);
	assert_int_equal(e.code, ZT_ENOENT);
	assert_non_null(strstr(e.msg, "missing.pem"));
	assert_null(b.p);

	zt_err_clear(&e);
	assert_int_equal(zt_file_read(dir, 100, &b, &e), -ZT_EIO);
	assert_int_equal(e.code, ZT_EIO);
	assert_non_null(strstr(e.msg, "directory"));
	assert_null(b.p);

	free(missing);
}

static void test_file_write(void **state)
{
	const char *dir = *state;
	char *path = join(dir, "out.txt");
	struct stat st, st2;
	mode_t old;
	zt_buf b;
	zt_err e;

	/* the mode is the one asked for, whatever the umask */
	old = umask(0077);
	assert_int_equal(zt_file_write(path, "first", 5, 0644, 0, &e), 0);
	umask(old);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0644);
	assert_int_equal(zt_file_read(path, 100, &b, &e), 0);
	assert_int_equal(b.len, 5);
	assert_memory_equal(b.p, "first", 5);
	zt_buf_free(&b, 0);
	assert_int_equal(count_entries(dir), 1);

	/* replace without EXCL: new content, new mode, a new file (renamed
	 * into place, not rewritten in place) */
	assert_int_equal(zt_file_write(path, "second!", 7, 0600, 0, &e), 0);
	assert_int_equal(stat(path, &st2), 0);
	assert_int_equal(st2.st_mode & 07777, 0600);
	assert_int_not_equal(st.st_ino, st2.st_ino);
	assert_int_equal(zt_file_read(path, 100, &b, &e), 0);
	assert_int_equal(b.len, 7);
	assert_memory_equal(b.p, "second!", 7);
	zt_buf_free(&b, 0);
	assert_int_equal(count_entries(dir), 1);

	/* EXCL refuses an existing file and leaves it as it was */
	zt_err_clear(&e);
	assert_int_equal(zt_file_write(path, "third", 5, 0644, ZT_WRITE_EXCL, &e),
			 -ZT_EEXIST);
	assert_int_equal(e.code, ZT_EEXIST);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_ino, st2.st_ino);
	assert_int_equal(st.st_mode & 07777, 0600);
	assert_int_equal(zt_file_read(path, 100, &b, &e), 0);
	assert_int_equal(b.len, 7);
	assert_memory_equal(b.p, "second!", 7);
	zt_buf_free(&b, 0);
	assert_int_equal(count_entries(dir), 1); /* no temporary left behind */

	free(path);
}

static void test_file_write_excl_new(void **state)
{
	const char *dir = *state;
	char *path = join(dir, "key.pem");
	char *nodir = join(dir, "no/such/dir/f");
	struct stat st;
	zt_buf b;
	zt_err e;

	assert_int_equal(zt_file_write(path, "secret", 6, 0600, ZT_WRITE_EXCL, &e), 0);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);
	assert_int_equal(st.st_nlink, 1); /* the temporary link is gone */
	assert_int_equal(zt_file_read(path, 100, &b, &e), 0);
	assert_memory_equal(b.p, "secret", 6);
	zt_buf_free(&b, 1);
	assert_int_equal(count_entries(dir), 1);

	/* zero bytes are a valid file */
	free(path);
	path = join(dir, "empty");
	assert_int_equal(zt_file_write(path, "", 0, 0640, 0, &e), 0);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_size, 0);
	assert_int_equal(st.st_mode & 07777, 0640);

	zt_err_clear(&e);
	assert_int_equal(zt_file_write(nodir, "x", 1, 0600, 0, &e), -ZT_EIO);
	assert_int_equal(e.code, ZT_EIO);
	assert_int_equal(count_entries(dir), 2);

	free(nodir);
	free(path);
}

/* ---- durations and time ------------------------------------------------ */

static void test_duration_ok(void **state)
{
	static const struct {
		const char *in;
		int64_t want;
	} ok[] = {
		{ "90s", 90 },     { "30m", 1800 },   { "1h30m", 5400 },
		{ "7d", 604800 },  { "1s", 1 },       { "1d2h3m4s", 93784 },
		{ "0h5m", 300 },   { "24h", 86400 },  { "0010s", 10 },
	};
	int64_t out;
	zt_err e;

	(void)state;
	for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
		out = -1;
		if (zt_duration_parse(ok[i].in, 365 * 86400, &out, &e) != 0)
			fail_msg("%s rejected: %s", ok[i].in, e.msg);
		assert_int_equal(out, ok[i].want);
	}
	/* up to max inclusive */
	assert_int_equal(zt_duration_parse("1h", 3600, &out, &e), 0);
	assert_int_equal(out, 3600);
	/* the largest value that fits */
	assert_int_equal(zt_duration_parse("106751991167300d", INT64_MAX, &out, &e), 0);
	assert_int_equal(out, (int64_t)106751991167300 * 86400);
}

static void test_duration_bad(void **state)
{
	static const char *bad[] = {
		"",   "0s",  "0d0h", "1x", "-1h", "+1h", "1",  "h", " 1h", "1h ",
		"1 h", "1H", "1.5h", "1hh", "s1", "1h-30m",
		"999999999999999999999d",
		"9223372036854775807s1s",
		"106751991167301d",
		"106751991167300d100000s",
		"99999999999999999999s",
	};
	int64_t out;
	zt_err e;

	(void)state;
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		out = 77;
		zt_err_clear(&e);
		if (zt_duration_parse(bad[i], INT64_MAX, &out, &e) == 0)
			fail_msg("accepted bad duration \"%s\" as %lld", bad[i], (long long)out);
		assert_int_equal(e.code, ZT_EINVAL);
		assert_int_equal(out, 0);
	}
	out = 77;
	assert_int_equal(zt_duration_parse(NULL, 100, &out, &e), -ZT_EINVAL);
	assert_int_equal(out, 0);

	/* above the maximum */
	zt_err_clear(&e);
	out = 77;
	assert_int_equal(zt_duration_parse("3601s", 3600, &out, &e), -ZT_ELIMIT);
	assert_int_equal(e.code, ZT_ELIMIT);
	assert_int_equal(out, 0);
	assert_int_equal(zt_duration_parse("8d", 7 * 86400, &out, &e), -ZT_ELIMIT);
	assert_int_equal(zt_duration_parse("1h0m1s", 3600, &out, &e), -ZT_ELIMIT);
}

static void test_duration_format(void **state)
{
	static const struct {
		int64_t secs;
		const char *want;
	} t[] = {
		{ 604800, "7d" }, { 86400, "1d" },  { 5400, "90m" }, { 3600, "1h" },
		{ 7200, "2h" },   { 90, "90s" },    { 60, "1m" },    { 45, "45s" },
		{ 0, "0s" },      { 90000, "25h" }, { 86401, "86401s" },
		{ 172800, "2d" },
	};
	char out[32];
	int64_t back;
	zt_err e;

	(void)state;
	for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
		zt_duration_format(t[i].secs, out, sizeof out);
		assert_string_equal(out, t[i].want);
		if (t[i].secs > 0) { /* round trip */
			assert_int_equal(zt_duration_parse(out, INT64_MAX, &back, &e), 0);
			assert_int_equal(back, t[i].secs);
		}
	}
	/* a small buffer is cut, not overrun */
	memset(out, 'X', sizeof out);
	zt_duration_format(123456, out, 4);
	assert_string_equal(out, "123");
	assert_int_equal(out[4], 'X');
}

static void test_time_format(void **state)
{
	char out[64];

	(void)state;
	zt_time_format(0, out, sizeof out);
	assert_string_equal(out, "1970-01-01T00:00:00Z");
	zt_time_format(1767323045, out, sizeof out);
	assert_string_equal(out, "2026-01-02T03:04:05Z");
	zt_time_format(951868799, out, sizeof out);
	assert_string_equal(out, "2000-02-29T23:59:59Z");
	zt_time_format(-1, out, sizeof out);
	assert_string_equal(out, "1969-12-31T23:59:59Z");

	/* out of range for a calendar date: a number, still terminated */
	zt_time_format(INT64_MAX, out, sizeof out);
	assert_string_equal(out, "@9223372036854775807");

	/* too small a buffer: terminated, no overrun */
	memset(out, 'X', sizeof out);
	zt_time_format(0, out, 8);
	assert_true(strnlen(out, 8) < 8);
	assert_int_equal(out[8], 'X');
}

static void test_clock(void **state)
{
	int64_t before, now, after;

	(void)state;
	zt_clock_set(1767323045);
	assert_int_equal(zt_now(), 1767323045);
	assert_int_equal(zt_now(), 1767323045);
	zt_clock_set(42);
	assert_int_equal(zt_now(), 42);

	zt_clock_set(0); /* unpinned: the real time */
	before = (int64_t)time(NULL);
	now = zt_now();
	after = (int64_t)time(NULL);
	assert_in_range(now, before, after);
	assert_true(now > 1700000000);
}

/* ---- constant-time compare --------------------------------------------- */

static void test_ct_equal(void **state)
{
	uint8_t a[64], b[64];

	(void)state;
	for (int i = 0; i < 64; i++)
		a[i] = b[i] = (uint8_t)(i * 7);
	assert_int_equal(zt_ct_equal(a, b, 64), 1);
	assert_int_equal(zt_ct_equal(a, b, 0), 1);
	b[0] ^= 1;
	assert_int_equal(zt_ct_equal(a, b, 64), 0);
	assert_int_equal(zt_ct_equal(a + 1, b + 1, 63), 1);
	b[0] ^= 1;
	b[63] ^= 0x80;
	assert_int_equal(zt_ct_equal(a, b, 64), 0);
	assert_int_equal(zt_ct_equal(a, b, 63), 1);
	b[63] ^= 0x80;
	b[31] = (uint8_t)~b[31];
	assert_int_equal(zt_ct_equal(a, b, 64), 0);
	assert_int_equal(zt_ct_equal("secret", "secreT", 6), 0);
	assert_int_equal(zt_ct_equal("secret", "secret", 6), 1);
}

/* ---- quoting ----------------------------------------------------------- */

static void test_quote_escaping(void **state)
{
	char out[128];

	(void)state;
	zt_quote(out, sizeof out, "plain text 123 ~!\"'", 19);
	assert_string_equal(out, "plain text 123 ~!\"'");
	zt_quote(out, sizeof out, "a\nb\\c\td\r", 8);
	assert_string_equal(out, "a\\x0ab\\x5cc\\x09d\\x0d");
	zt_quote(out, sizeof out, "\x00\x01\x1f\x7f\x80\xff", 6);
	assert_string_equal(out, "\\x00\\x01\\x1f\\x7f\\x80\\xff");
	zt_quote(out, sizeof out, "caf\xc3\xa9", 5);
	assert_string_equal(out, "caf\\xc3\\xa9");
	zt_quote(out, sizeof out, "a\0b", 3); /* explicit length, NUL inside */
	assert_string_equal(out, "a\\x00b");
	zt_quote(out, sizeof out, "", 0);
	assert_string_equal(out, "");
	zt_quote(out, sizeof out, "ignored", 0);
	assert_string_equal(out, "");
	/* a forged log line stays on one line */
	zt_quote(out, sizeof out, "x\n{\"level\":\"error\"}", 19);
	assert_null(strchr(out, '\n'));
}

static void test_quote_truncation(void **state)
{
	char *big = repeat('x', 1000);
	char out[64];

	(void)state;
	memset(out, 'Q', sizeof out);
	zt_quote(out, 16, big, 1000);
	assert_string_equal(out, "xxxxxxxxxxxx...");
	assert_int_equal(out[16], 'Q');

	/* escapes are never split by the cut */
	zt_quote(out, 16, "ab\x01\x02\x03\x04\x05", 7);
	assert_string_equal(out, "ab\\x01\\x02...");
	zt_quote(out, 12, "\x01\x02\x03\x04", 4);
	assert_string_equal(out, "\\x01\\x02...");

	/* every size: terminated, inside the buffer, a prefix then "..." */
	const char *in = "ab\\cd\x01" "efghijklmnop";
	char full[128];

	zt_quote(full, sizeof full, in, strlen(in));
	assert_string_equal(full, "ab\\x5ccd\\x01efghijklmnop");
	for (size_t sz = 1; sz <= strlen(full) + 1; sz++) {
		memset(out, 'Q', sizeof out);
		zt_quote(out, sz, in, strlen(in));
		size_t n = strnlen(out, sz);

		assert_true(n < sz);
		for (size_t j = sz; j < sizeof out; j++)
			assert_int_equal(out[j], 'Q');
		if (strcmp(out, full) == 0)
			continue;
		if (sz >= 4) {
			assert_true(ends_with(out, "..."));
			assert_memory_equal(out, full, n - 3);
		} else {
			assert_memory_equal(out, full, n);
		}
	}
	free(big);
}

static void test_quote_tiny(void **state)
{
	char out[16];

	(void)state;
	/* size 0 writes nothing at all */
	memset(out, 'Q', sizeof out);
	zt_quote(out, 0, "abc", 3);
	assert_int_equal(out[0], 'Q');

	for (size_t sz = 1; sz <= 5; sz++) {
		memset(out, 'Q', sizeof out);
		zt_quote(out, sz, "abcdefgh", 8);
		assert_true(strnlen(out, sz) < sz);
		assert_int_equal(out[sz], 'Q');
		memset(out, 'Q', sizeof out);
		zt_quote(out, sz, "\x01\x02\x03", 3);
		assert_true(strnlen(out, sz) < sz);
		assert_int_equal(out[sz], 'Q');
		assert_null(strstr(out, "\\x")); /* no half escape fits */
	}
	zt_quote(out, 1, "abc", 3);
	assert_string_equal(out, "");
	zt_quote(out, 4, "abcdefgh", 8);
	assert_string_equal(out, "...");
	zt_quote(out, 5, "abcdefgh", 8);
	assert_string_equal(out, "a...");
	zt_quote(out, 1, "", 0);
	assert_string_equal(out, "");
}

/* Input whose quoted form fits is copied whole, not cut ("cut with ...
 * when longer than fits"). */
static void test_quote_exact_fit(void **state)
{
	char out[16];

	(void)state;
	zt_quote(out, 2, "a", 1);
	assert_string_equal(out, "a");
	zt_quote(out, 4, "abc", 3);
	assert_string_equal(out, "abc");
	zt_quote(out, 5, "abcd", 4);
	assert_string_equal(out, "abcd");
	zt_quote(out, 5, "\x01", 1);
	assert_string_equal(out, "\\x01");
	zt_quote(out, 16, "fifteen chars!!", 15);
	assert_string_equal(out, "fifteen chars!!");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_err_set),
		cmocka_unit_test(test_err_truncation),
		cmocka_unit_test(test_err_wrap),
		cmocka_unit_test(test_strerror),
		cmocka_unit_test(test_buf_append),
		cmocka_unit_test(test_buf_limit_midway),
		cmocka_unit_test(test_buf_appendf),
		cmocka_unit_test(test_buf_appendf_exact_max),
		cmocka_unit_test(test_buf_grow_large),
		cmocka_unit_test_setup_teardown(test_file_read, dir_setup, dir_teardown),
		cmocka_unit_test_setup_teardown(test_file_read_errors, dir_setup, dir_teardown),
		cmocka_unit_test_setup_teardown(test_file_write, dir_setup, dir_teardown),
		cmocka_unit_test_setup_teardown(test_file_write_excl_new, dir_setup, dir_teardown),
		cmocka_unit_test(test_duration_ok),
		cmocka_unit_test(test_duration_bad),
		cmocka_unit_test(test_duration_format),
		cmocka_unit_test(test_time_format),
		cmocka_unit_test(test_clock),
		cmocka_unit_test(test_ct_equal),
		cmocka_unit_test(test_quote_escaping),
		cmocka_unit_test(test_quote_truncation),
		cmocka_unit_test(test_quote_tiny),
		cmocka_unit_test(test_quote_exact_fit),
		cmocka_unit_test(test_strerror_int_min),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
