/*
 * Unit tests: the control plane's object store (store/store.h), on its
 * SQLite back end, driven through the API in temporary directories.
 *
 * What the store promises is checked from the outside: versions and the
 * store revision (one per successful write, none for a refused one),
 * optimistic concurrency (ZT_EEXIST, ZT_ECONFLICT, ZT_ENOENT), history and
 * the change feed, transactions, sharing a handle between threads and a
 * file between handles, and that what it wrote survives a reopen. The file
 * is changed behind the store's back with the sqlite3 API only to make the
 * cases a running store cannot: a newer schema, damaged rows, and a trigger
 * that fails one insert (a stand-in for a full disk).
 *
 * Worker threads never call cmocka's assertions (they longjmp): they record
 * what went wrong and the main thread asserts on it.
 */
#include "testutil.h"

#include "core/core.h"
#include "store/store.h"

#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

/* ---- helpers -------------------------------------------------------------------- */

static int64_t wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(long ms)
{
	struct timespec d = {ms / 1000, (ms % 1000) * 1000000L};

	nanosleep(&d, NULL);
}

static void pathf(char out[PATH_MAX], const char *dir, const char *name)
{
	snprintf(out, PATH_MAX, "%s/%s", dir, name);
}

static zt_store *open_path(const char *path)
{
	char url[PATH_MAX + 16];
	zt_store *s;
	zt_err e;

	snprintf(url, sizeof url, "sqlite:%s", path);
	zt_err_clear(&e);
	s = zt_store_open(url, &e);
	if (!s)
		fail_msg("zt_store_open %s: %s", url, e.msg);
	return s;
}

static zt_store *open_in(const char *dir, const char *file)
{
	char p[PATH_MAX];

	pathf(p, dir, file);
	return open_path(p);
}

/* {"n": n, "tag": tag} */
static json_t *body_n(json_int_t n, const char *tag)
{
	json_t *b = json_pack("{s:I, s:s}", "n", n, "tag", tag ? tag : "");

	if (!b)
		fail_msg("json_pack");
	return b;
}

static json_int_t body_get_n(const json_t *b)
{
	return json_integer_value(json_object_get(b, "n"));
}

/* Puts (body is consumed) and returns the new version; fails the test on error. */
static uint64_t put_ok(zt_store *s, const char *kind, const char *name, json_t *body,
		       uint64_t expect)
{
	uint64_t v = 99;
	zt_err e;
	int r;

	zt_err_clear(&e);
	r = zt_store_put(s, kind, name, body, expect, &v, &e);
	json_decref(body);
	if (r != 0)
		fail_msg("put %s/%s expect %llu: %d %s [%s]", kind, name, (unsigned long long)expect,
			 r, e.msg, e.rule);
	assert_true(v > 0);
	return v;
}

/* A put that must be refused with code and rule (body is consumed). */
static void put_refused(zt_store *s, const char *kind, const char *name, json_t *body,
			uint64_t expect, int code, const char *rule)
{
	uint64_t v = 99;
	zt_err e;
	int r;

	zt_err_clear(&e);
	r = zt_store_put(s, kind, name, body, expect, &v, &e);
	json_decref(body);
	if (r != -code)
		fail_msg("put %s/%s expect %llu: got %d (%s) [%s], want %d rule %s",
			 kind ? kind : "(null)", name ? name : "(null)",
			 (unsigned long long)expect, r, e.msg, e.rule, -code, rule);
	assert_int_equal(e.code, code);
	assert_string_equal(e.rule, rule);
	assert_true(e.msg[0] != '\0');
	assert_int_equal(v, 0);
}

static uint64_t delete_ok(zt_store *s, const char *kind, const char *name, uint64_t expect)
{
	uint64_t v = 99;
	zt_err e;
	int r;

	zt_err_clear(&e);
	r = zt_store_delete(s, kind, name, expect, &v, &e);
	if (r != 0)
		fail_msg("delete %s/%s expect %llu: %s", kind, name, (unsigned long long)expect,
			 e.msg);
	assert_true(v > expect);
	return v;
}

static void delete_refused(zt_store *s, const char *kind, const char *name, uint64_t expect,
			   int code, const char *rule)
{
	uint64_t v = 99;
	zt_err e;
	int r;

	zt_err_clear(&e);
	r = zt_store_delete(s, kind, name, expect, &v, &e);
	if (r != -code)
		fail_msg("delete %s/%s expect %llu: got %d (%s), want %d", kind,
			 name ? name : "(null)", (unsigned long long)expect, r, e.msg, -code);
	assert_int_equal(e.code, code);
	if (rule)
		assert_string_equal(e.rule, rule);
	assert_int_equal(v, 0);
}

/* Gets kind/name, which must exist; the caller clears *o. */
static void get_ok(zt_store *s, const char *kind, const char *name, zt_object *o)
{
	zt_err e;

	zt_err_clear(&e);
	if (zt_store_get(s, kind, name, o, &e) != 0)
		fail_msg("get %s/%s: %s [%s]", kind, name, e.msg, e.rule);
	assert_string_equal(o->kind, kind);
	assert_string_equal(o->name, name);
	assert_int_equal(o->deleted, 0);
	assert_non_null(o->body);
}

static void get_missing(zt_store *s, const char *kind, const char *name)
{
	zt_object o;
	zt_err e;

	zt_err_clear(&e);
	assert_int_equal(zt_store_get(s, kind, name, &o, &e), -ZT_ENOENT);
	assert_int_equal(e.code, ZT_ENOENT);
	assert_null(o.body);
}

static uint64_t obj_version(zt_store *s, const char *kind, const char *name)
{
	zt_object o;
	uint64_t v;

	get_ok(s, kind, name, &o);
	v = o.version;
	zt_object_clear(&o);
	return v;
}

/* ---- the file behind the store's back ------------------------------------------------- */

static sqlite3 *raw_open(const char *path)
{
	sqlite3 *db = NULL;

	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK)
		fail_msg("sqlite3_open %s: %s", path, db ? sqlite3_errmsg(db) : "?");
	sqlite3_busy_timeout(db, 5000);
	return db;
}

static void raw_exec(const char *path, const char *sql)
{
	sqlite3 *db = raw_open(path);
	char *msg = NULL;

	if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
		char copy[512];

		snprintf(copy, sizeof copy, "%s", msg ? msg : "?");
		sqlite3_free(msg);
		sqlite3_close(db);
		fail_msg("%s: %s", sql, copy);
	}
	sqlite3_close(db);
}

/* The integer the query's first row starts with (-1 when there is no row). */
static long long raw_int(const char *path, const char *sql)
{
	sqlite3 *db = raw_open(path);
	sqlite3_stmt *st = NULL;
	long long v = -1;
	int rc;

	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
		sqlite3_close(db);
		fail_msg("prepare %s", sql);
	}
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(db);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		fail_msg("step %s: %d", sql, rc);
	return v;
}

static int file_mode(const char *path)
{
	struct stat st;

	if (stat(path, &st) != 0)
		return -1;
	return (int)(st.st_mode & 07777);
}

static char *slurp(const char *path, size_t *len)
{
	char *p = tu_read(path, len);

	if (!p)
		fail_msg("cannot read %s", path);
	return p;
}

/* ---- open ------------------------------------------------------------------------------ */

static void check_new_store(const char *url, const char *path)
{
	zt_store *s;
	zt_err e;
	char side[PATH_MAX + 8];
	int m;

	zt_err_clear(&e);
	s = zt_store_open(url, &e);
	if (!s)
		fail_msg("open %s: %s", url, e.msg);
	assert_int_equal(file_mode(path), 0600);
	assert_true(zt_store_schema_latest() >= 1);
	assert_int_equal(zt_store_schema_version(s), zt_store_schema_latest());
	assert_int_equal(zt_store_revision(s), 0);
	put_ok(s, "service", "a", body_n(1, "x"), 0);
	/* the WAL and its index hold the same data: no wider than the file */
	snprintf(side, sizeof side, "%s-wal", path);
	if ((m = file_mode(side)) >= 0)
		assert_int_equal(m & 077, 0);
	snprintf(side, sizeof side, "%s-shm", path);
	if ((m = file_mode(side)) >= 0)
		assert_int_equal(m & 077, 0);
	zt_store_close(s);
}

static void test_open_urls(void **state)
{
	char *dir = tu_mkdtemp();
	char p[PATH_MAX], url[PATH_MAX + 16];
	zt_store *s;
	zt_err e;
	mode_t old;

	(void)state;
	/* created 0600 whatever the umask says */
	old = umask(0);
	pathf(p, dir, "a.db");
	snprintf(url, sizeof url, "sqlite:%s", p);
	check_new_store(url, p);
	pathf(p, dir, "b.db");
	check_new_store(p, p); /* a plain path */
	umask(old);
	pathf(p, dir, "c.db");
	snprintf(url, sizeof url, "sqlite:%s", p);
	check_new_store(url, p);

	/* other back ends, and nothing at all: refused, saying what is supported */
	zt_err_clear(&e);
	assert_null(zt_store_open("postgres://zt@db.example/zt", &e));
	assert_int_equal(e.code, ZT_EINVAL);
	assert_string_equal(e.rule, "store-url");
	assert_non_null(strstr(e.msg, "sqlite"));
	zt_err_clear(&e);
	assert_null(zt_store_open("postgresql://zt@localhost:5432/zt?sslmode=require", &e));
	assert_int_equal(e.code, ZT_EINVAL);
	zt_err_clear(&e);
	assert_null(zt_store_open("", &e));
	assert_int_equal(e.code, ZT_EINVAL);
	assert_true(e.msg[0] != '\0');
	zt_err_clear(&e);
	assert_null(zt_store_open(NULL, &e));
	assert_int_equal(e.code, ZT_EINVAL);
	assert_null(zt_store_open("", NULL)); /* no error record: only the result */

	/* a directory that is not there */
	pathf(p, dir, "missing/d.db");
	snprintf(url, sizeof url, "sqlite:%s", p);
	zt_err_clear(&e);
	assert_null(zt_store_open(url, &e));
	assert_int_not_equal(e.code, 0);
	assert_true(e.msg[0] != '\0');

	/* reopening an existing store keeps it */
	pathf(p, dir, "a.db");
	s = open_path(p);
	assert_int_equal(zt_store_revision(s), 1);
	assert_int_equal(zt_store_schema_version(s), zt_store_schema_latest());
	zt_store_close(s);
	/* migrations were applied once, each recorded once */
	assert_int_equal(raw_int(p, "SELECT COUNT(*) FROM zt_schema_migrations"),
			 zt_store_schema_latest());
	zt_store_close(NULL);
	tu_rmtree(dir);
}

static void test_open_not_sqlite(void **state)
{
	char *dir = tu_mkdtemp();
	char p[PATH_MAX], text[8192];
	size_t n0, n1;
	char *before, *after;
	zt_err e;
	FILE *f;

	(void)state;
	for (size_t i = 0; i < sizeof text; i++)
		text[i] = "not a database, only text\n"[i % 26];
	pathf(p, dir, "junk.db");
	if (!(f = fopen(p, "wb")))
		fail_msg("fopen %s", p);
	assert_int_equal(fwrite(text, 1, sizeof text, f), sizeof text);
	fclose(f);
	before = slurp(p, &n0);
	zt_err_clear(&e);
	assert_null(zt_store_open(p, &e));
	assert_int_not_equal(e.code, 0);
	assert_true(e.msg[0] != '\0');
	after = slurp(p, &n1);
	assert_int_equal(n0, n1);
	assert_memory_equal(before, after, n0);
	free(before);
	free(after);
	tu_rmtree(dir);
}

static void test_open_newer_schema(void **state)
{
	char *dir = tu_mkdtemp();
	char p[PATH_MAX], side[PATH_MAX + 8];
	size_t n0, n1;
	char *before, *after;
	zt_store *s;
	zt_err e;

	(void)state;
	pathf(p, dir, "new.db");
	s = open_path(p);
	put_ok(s, "service", "keep-me", body_n(7, "kept"), 0);
	zt_store_close(s);
	raw_exec(p, "INSERT INTO zt_schema_migrations (version, name, applied_ms)"
		    " VALUES (999, 'from the future', 0)");
	snprintf(side, sizeof side, "%s-wal", p);
	assert_int_equal(access(side, F_OK), -1); /* checkpointed at close */
	before = slurp(p, &n0);

	zt_err_clear(&e);
	assert_null(zt_store_open(p, &e));
	assert_int_equal(e.code, ZT_ESTATE);
	assert_string_equal(e.rule, "store-schema");
	assert_non_null(strstr(e.msg, "999"));

	/* left untouched: the same bytes, the same rows */
	after = slurp(p, &n1);
	assert_int_equal(n0, n1);
	assert_memory_equal(before, after, n0);
	assert_int_equal(raw_int(p, "SELECT MAX(version) FROM zt_schema_migrations"), 999);
	assert_int_equal(raw_int(p, "SELECT COUNT(*) FROM zt_schema_migrations"),
			 zt_store_schema_latest() + 1);
	assert_int_equal(raw_int(p, "SELECT COUNT(*) FROM zt_objects WHERE name = 'keep-me'"), 1);
	assert_int_equal(raw_int(p, "SELECT revision FROM zt_meta"), 1);
	free(before);
	free(after);
	tu_rmtree(dir);
}

/* ---- put, get, delete ------------------------------------------------------------------- */

static void test_put_get_delete(void **state)
{
	char *dir = tu_mkdtemp();
	zt_store *s = open_in(dir, "s.db");
	json_t *b1 = json_pack("{s:i, s:[s,s], s:{s:b}}", "port", 443, "tags", "a", "b", "tls",
			       "mtls", 1);
	json_t *b2 = body_n(2, "second");
	uint64_t v1, v2, v3, v4;
	int64_t t0, t1;
	zt_object o;
	zt_err e;

	(void)state;
	t0 = wall_ms();
	v1 = put_ok(s, "service", "acme/payments/api", json_incref(b1), 0);
	t1 = wall_ms();
	get_ok(s, "service", "acme/payments/api", &o);
	assert_true(json_equal(o.body, b1));
	assert_int_equal(o.version, v1);
	assert_int_equal(o.created, v1);
	assert_true(o.updated_ms >= t0 - 1000 && o.updated_ms <= t1 + 1000);
	zt_object_clear(&o);
	assert_null(o.body);
	assert_int_equal(o.version, 0);

	/* the store keeps its own copy */
	json_object_set_new(b1, "port", json_integer(80));
	get_ok(s, "service", "acme/payments/api", &o);
	assert_int_equal(json_integer_value(json_object_get(o.body, "port")), 443);
	zt_object_clear(&o);

	/* create again: it exists */
	put_refused(s, "service", "acme/payments/api", body_n(9, "again"), 0, ZT_EEXIST, "exists");

	/* update with the version read */
	v2 = put_ok(s, "service", "acme/payments/api", json_incref(b2), v1);
	assert_true(v2 > v1);
	get_ok(s, "service", "acme/payments/api", &o);
	assert_true(json_equal(o.body, b2));
	assert_int_equal(o.version, v2);
	assert_int_equal(o.created, v1);
	zt_object_clear(&o);

	/* a stale version: conflict, nothing changed */
	put_refused(s, "service", "acme/payments/api", body_n(3, "stale"), v1, ZT_ECONFLICT,
		    "conflict");
	put_refused(s, "service", "acme/payments/api", body_n(3, "future"), v2 + 100,
		    ZT_ECONFLICT, "conflict");
	get_ok(s, "service", "acme/payments/api", &o);
	assert_true(json_equal(o.body, b2));
	assert_int_equal(o.version, v2);
	zt_object_clear(&o);

	/* update of an object that is not there */
	put_refused(s, "service", "acme/nothing", body_n(1, ""), v2, ZT_ENOENT, "not-found");
	get_missing(s, "service", "acme/nothing");

	/* deletes: stale, not a create, missing, then right */
	delete_refused(s, "service", "acme/payments/api", v1, ZT_ECONFLICT, "conflict");
	delete_refused(s, "service", "acme/payments/api", 0, ZT_EINVAL, NULL);
	delete_refused(s, "service", "acme/nothing", v2, ZT_ENOENT, "not-found");
	assert_int_equal(obj_version(s, "service", "acme/payments/api"), v2);
	v3 = delete_ok(s, "service", "acme/payments/api", v2);
	assert_true(v3 > v2);
	get_missing(s, "service", "acme/payments/api");
	zt_err_clear(&e);
	assert_int_equal(zt_store_get(s, "service", "acme/payments/api", &o, &e), -ZT_ENOENT);
	assert_string_equal(e.rule, "not-found");
	/* gone: updating or deleting it again finds nothing */
	put_refused(s, "service", "acme/payments/api", body_n(4, ""), v2, ZT_ENOENT, "not-found");
	delete_refused(s, "service", "acme/payments/api", v3, ZT_ENOENT, "not-found");

	/* re-create after delete: a new object */
	v4 = put_ok(s, "service", "acme/payments/api", body_n(5, "reborn"), 0);
	assert_true(v4 > v3);
	get_ok(s, "service", "acme/payments/api", &o);
	assert_int_equal(o.version, v4);
	assert_int_equal(o.created, v4);
	assert_int_equal(body_get_n(o.body), 5);
	zt_object_clear(&o);

	json_decref(b1);
	json_decref(b2);
	zt_object_clear(NULL);
	zt_objects_free(NULL, 0);
	zt_store_close(s);
	tu_rmtree(dir);
}

static void test_revision(void **state)
{
	char *dir = tu_mkdtemp();
	zt_store *s = open_in(dir, "s.db");
	uint64_t r0, v1, v2, v3;

	(void)state;
	r0 = zt_store_revision(s);
	assert_int_equal(r0, 0);
	v1 = put_ok(s, "service", "a", body_n(1, ""), 0);
	assert_int_equal(v1, r0 + 1);
	assert_int_equal(zt_store_revision(s), r0 + 1);

	/* refusals of every kind leave the revision alone */
	put_refused(s, "service", "a", body_n(1, ""), 0, ZT_EEXIST, "exists");
	put_refused(s, "service", "a", body_n(1, ""), v1 + 7, ZT_ECONFLICT, "conflict");
	put_refused(s, "service", "b", body_n(1, ""), v1, ZT_ENOENT, "not-found");
	put_refused(s, "Service", "a", body_n(1, ""), 0, ZT_EINVAL, "store-kind");
	put_refused(s, "service", "/a", body_n(1, ""), 0, ZT_EINVAL, "store-name");
	put_refused(s, "service", "c", json_array(), 0, ZT_EINVAL, "store-body");
	delete_refused(s, "service", "a", v1 + 7, ZT_ECONFLICT, "conflict");
	delete_refused(s, "service", "b", v1, ZT_ENOENT, "not-found");
	delete_refused(s, "service", "a", 0, ZT_EINVAL, NULL);
	assert_int_equal(zt_store_revision(s), r0 + 1);

	v2 = put_ok(s, "service", "a", body_n(2, ""), v1);
	assert_int_equal(v2, r0 + 2);
	assert_int_equal(zt_store_revision(s), r0 + 2);
	v3 = delete_ok(s, "service", "a", v2);
	assert_int_equal(v3, r0 + 3);
	assert_int_equal(zt_store_revision(s), r0 + 3);
	assert_int_equal(put_ok(s, "policy", "a", body_n(3, ""), 0), r0 + 4);
	assert_int_equal(zt_store_revision(s), r0 + 4);
	zt_store_close(s);
	tu_rmtree(dir);
}

/* ---- validation ------------------------------------------------------------------------- */

static void refused_everywhere(zt_store *s, const char *kind, const char *name, const char *rule)
{
	zt_object o, *v = NULL;
	uint64_t ver = 5;
	size_t n = 5;
	zt_err e;

	put_refused(s, kind, name, body_n(1, ""), 0, ZT_EINVAL, rule);
	zt_err_clear(&e);
	assert_int_equal(zt_store_get(s, kind, name, &o, &e), -ZT_EINVAL);
	assert_string_equal(e.rule, rule);
	assert_null(o.body);
	zt_err_clear(&e);
	assert_int_equal(zt_store_delete(s, kind, name, 1, &ver, &e), -ZT_EINVAL);
	assert_string_equal(e.rule, rule);
	assert_int_equal(ver, 0);
	zt_err_clear(&e);
	assert_int_equal(zt_store_history(s, kind, name, 0, 10, &v, &n, &e), -ZT_EINVAL);
	assert_string_equal(e.rule, rule);
	assert_null(v);
	assert_int_equal(n, 0);
	zt_err_clear(&e);
	assert_int_equal(zt_store_history_get(s, kind, name, 1, &o, &e), -ZT_EINVAL);
	assert_string_equal(e.rule, rule);
}

static void test_validation(void **state)
{
	char *dir = tu_mkdtemp();
	zt_store *s = open_in(dir, "s.db");
	char k33[34], k32[33], n254[255], n253[254];
	zt_object *v = NULL, o;
	size_t n;
	zt_err e;

	(void)state;
	memset(k33, 'k', 33);
	k33[33] = '\0';
	memset(k32, 'k', 32);
	k32[32] = '\0';
	memset(n254, 'n', 254);
	n254[254] = '\0';
	memset(n253, 'n', 253);
	n253[253] = '\0';

	const char *bad_kinds[] = {"",    "Service", "sErvice", "1abc", "-abc", k33,  "a_b",
				   "a.b", "a b",     "a/b",     "é",    "a\n",  "svc:"};
	for (size_t i = 0; i < sizeof bad_kinds / sizeof bad_kinds[0]; i++) {
		assert_int_equal(zt_store_kind_ok(bad_kinds[i]), 0);
		refused_everywhere(s, bad_kinds[i], "x", "store-kind");
		zt_err_clear(&e);
		assert_int_equal(zt_store_list(s, bad_kinds[i], "", "", 10, &v, &n, &e), -ZT_EINVAL);
		assert_string_equal(e.rule, "store-kind");
		zt_err_clear(&e);
		assert_int_equal(zt_store_changes(s, 0, bad_kinds[i], 10, &v, &n, &e), -ZT_EINVAL);
		assert_string_equal(e.rule, "store-kind");
	}
	assert_int_equal(zt_store_kind_ok(NULL), 0);
	const char *good_kinds[] = {"a", k32, "role-binding", "v2", "x-1-"};
	for (size_t i = 0; i < sizeof good_kinds / sizeof good_kinds[0]; i++) {
		assert_int_equal(zt_store_kind_ok(good_kinds[i]), 1);
		put_ok(s, good_kinds[i], "x", body_n((json_int_t)i, ""), 0);
		get_ok(s, good_kinds[i], "x", &o);
		assert_int_equal(body_get_n(o.body), (json_int_t)i);
		zt_object_clear(&o);
	}

	const char *bad_names[] = {"",     "/x",      "/",      "a/../b", "..",     "../a",
				   "a/..", "a..b",    "a b",    " a",     "a ",     n254,
				   "a\tb", "a\nb",    "a\rb",   "a\x01",  "\x1b[0m", "a\x7f",
				   "café", "\xff\xfe", "名前",   "a\\b",   "a\"b",   "a'b",
				   "a%b",  "a*b",     "a?b",    "a#b",    "a,b",    "a;b"};
	for (size_t i = 0; i < sizeof bad_names / sizeof bad_names[0]; i++) {
		assert_int_equal(zt_store_name_ok(bad_names[i]), 0);
		refused_everywhere(s, "service", bad_names[i], "store-name");
	}
	assert_int_equal(zt_store_name_ok(NULL), 0);
	const char *good_names[] = {"acme/payments/api", "svc:v1@x", "a.b-c_d+e=f", n253, "a",
				    "A", "x/", "a.b", "a/b/c/d", "0", "-", "_", ".a", "a.",
				    "spiffe:acme.example/ns/prod"};
	for (size_t i = 0; i < sizeof good_names / sizeof good_names[0]; i++) {
		assert_int_equal(zt_store_name_ok(good_names[i]), 1);
		uint64_t ver = put_ok(s, "service", good_names[i], body_n((json_int_t)i, ""), 0);

		get_ok(s, "service", good_names[i], &o);
		assert_int_equal(o.version, ver);
		assert_int_equal(body_get_n(o.body), (json_int_t)i);
		zt_object_clear(&o);
	}

	/* prefixes and cursors are bounded too */
	zt_err_clear(&e);
	assert_int_equal(zt_store_list(s, "service", n254, "", 10, &v, &n, &e), -ZT_EINVAL);
	zt_err_clear(&e);
	assert_int_equal(zt_store_list(s, "service", "", n254, 10, &v, &n, &e), -ZT_EINVAL);
	zt_err_clear(&e);
	assert_int_equal(zt_store_list(s, "service", n253, n253, 10, &v, &n, &e), 0);
	assert_int_equal(n, 0);
	zt_objects_free(v, n);

	/* bodies: JSON objects only */
	put_refused(s, "service", "b", json_array(), 0, ZT_EINVAL, "store-body");
	put_refused(s, "service", "b", json_string("x"), 0, ZT_EINVAL, "store-body");
	put_refused(s, "service", "b", json_integer(1), 0, ZT_EINVAL, "store-body");
	put_refused(s, "service", "b", json_null(), 0, ZT_EINVAL, "store-body");
	put_refused(s, "service", "b", NULL, 0, ZT_EINVAL, "store-body");
	put_ok(s, "service", "empty", json_object(), 0);
	get_ok(s, "service", "empty", &o);
	assert_int_equal(json_object_size(o.body), 0);
	zt_object_clear(&o);
	get_missing(s, "service", "b");
	zt_store_close(s);
	tu_rmtree(dir);
}

/* {"p": "xxx..."} serialized to exactly `bytes` bytes (JSON_COMPACT: {"p":"..."}). */
static json_t *body_of_size(size_t bytes)
{
	size_t pad = bytes - 8;
	char *x = malloc(pad + 1);
	json_t *b;

	if (!x)
		fail_msg("malloc");
	memset(x, 'x', pad);
	x[pad] = '\0';
	b = json_pack("{s:s}", "p", x);
	free(x);
	if (!b)
		fail_msg("json_pack");
	return b;
}

static void test_body_limit(void **state)
{
	char *dir = tu_mkdtemp();
	zt_store *s = open_in(dir, "s.db");
	json_t *at = body_of_size(ZT_STORE_BODY_MAX);
	char *text = json_dumps(at, JSON_COMPACT);
	uint64_t r0, v;
	zt_object o;

	(void)state;
	assert_int_equal(strlen(text), ZT_STORE_BODY_MAX);
	free(text);
	v = put_ok(s, "service", "big", json_incref(at), 0);
	get_ok(s, "service", "big", &o);
	assert_true(json_equal(o.body, at));
	zt_object_clear(&o);
	r0 = zt_store_revision(s);
	put_refused(s, "service", "bigger", body_of_size(ZT_STORE_BODY_MAX + 1), 0, ZT_ELIMIT,
		    "store-body");
	put_refused(s, "service", "big", body_of_size(2 * ZT_STORE_BODY_MAX), v, ZT_ELIMIT,
		    "store-body");
	assert_int_equal(zt_store_revision(s), r0);
	get_missing(s, "service", "bigger");
	assert_int_equal(obj_version(s, "service", "big"), v);
	json_decref(at);
	zt_store_close(s);
	tu_rmtree(dir);
}

/* {"d": {"d": ... {}}}: depth objects deep, the outer one included */
static json_t *body_deep(int depth)
{
	json_t *b = json_object();

	for (int i = 1; i < depth; i++) {
		json_t *outer = json_object();

		json_object_set_new(outer, "d", b);
		b = outer;
	}
	return b;
}

/*
 * Whatever the store accepts it must give back: a body it takes and then
 * calls damaged would poison every list of its kind.
 */
static void test_put_body_readable(void **state)
{
	char *dir = tu_mkdtemp();
	zt_store *s = open_in(dir, "s.db");
	json_t *bodies[3];
	const char *what[3] = {"nested 64 deep", "nested 65 deep (a 64-deep spec in a wrapper)",
			       "with a NUL inside a string"};
	zt_object o, *v = NULL;
	size_t n = 0;
	int unreadable = 0;
	zt_err e;

	(void)state;
	bodies[0] = body_deep(64);
	bodies[1] = body_deep(65);
	bodies[2] = json_object();
	json_object_set_new(bodies[2], "s", json_stringn("a\0b", 3));
	for (int i = 0; i < 3; i++) {
		char name[16];
		uint64_t ver = 0;
		int r;

		snprintf(name, sizeof name, "body-%d", i);
		zt_err_clear(&e);
		r = zt_store_put(s, "service", name, bodies[i], 0, &ver, &e);
		if (r != 0) {
			/* refusing it is fine: with a clear reason, before it is stored */
			assert_int_equal(ver, 0);
			assert_true(e.msg[0] != '\0');
			get_missing(s, "service", name);
			continue;
		}
		zt_err_clear(&e);
		if (zt_store_get(s, "service", name, &o, &e) != 0) {
			print_error("a body %s was stored (version %llu) but cannot be read: %s "
				    "[%s]\n",
				    what[i], (unsigned long long)ver, e.msg, e.rule);
			unreadable++;
			continue;
		}
		assert_true(json_equal(o.body, bodies[i]));
		zt_object_clear(&o);
	}
	zt_err_clear(&e);
	if (zt_store_list(s, "service", "", "", 10, &v, &n, &e) != 0) {
		print_error("so the list of its kind fails: %s [%s]\n", e.msg, e.rule);
		unreadable++;
	}
	zt_objects_free(v, n);
	for (int i = 0; i < 3; i++)
		json_decref(bodies[i]);
	zt_store_close(s);
	tu_rmtree(dir);
	assert_int_equal(unreadable, 0);
}

/* A NULL name is no name: refused like "" (store-name), not sent to SQL. */
static void test_null_name_refused(void **state)
{
	char *dir = tu_mkdtemp();
	zt_store *s = open_in(dir, "s.db");
	json_t *body = body_n(1, "");
	zt_object o, *v = NULL;
	uint64_t r0 = zt_store_revision(s), ver = 5;
	size_t n = 5;
	int r[4], wrong = 0;
	zt_err e[4];
	static const char *const what[4] = {"get", "history", "delete", "put"};

	(void)state;
	for (int i = 0; i < 4; i++)
		zt_err_clear(&e[i]);
	r[0] = zt_store_get(s, "service", NULL, &o, &e[0]);
	zt_object_clear(&o);
	r[1] = zt_store_history(s, "service", NULL, 0, 10, &v, &n, &e[1]);
	zt_objects_free(v, n);
	r[2] = zt_store_delete(s, "service", NULL, 1, &ver, &e[2]);
	r[3] = zt_store_put(s, "service", NULL, body, 0, &ver, &e[3]);
	json_decref(body);
	for (int i = 0; i < 4; i++) {
		if (r[i] == -ZT_EINVAL && strcmp(e[i].rule, "store-name") == 0)
			continue;
		print_error("%s with a NULL name: %d \"%s\" [%s], want %d [store-name]\n", what[i],
			    r[i], e[i].msg, e[i].rule, -ZT_EINVAL);
		wrong++;
	}
	assert_int_equal(zt_store_revision(s), r0);
	zt_store_close(s);
	tu_rmtree(dir);
	assert_int_equal(wrong, 0);
}

/* ---- list ------------------------------------------------------------------------------- */

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Lists kind with prefix/after and compares with the names filtered and sorted here. */
static void expect_list(zt_store *s, const char *kind, const char *const *names, size_t count,
			const char *prefix, const char *after)
{
	const char **want = calloc(count + 1, sizeof *want);
	size_t nwant = 0, n = 0;
	zt_object *v = NULL;
	zt_err e;

	if (!want)
		fail_msg("calloc");
	for (size_t i = 0; i < count; i++)
		if (strncmp(names[i], prefix, strlen(prefix)) == 0 && strcmp(names[i], after) > 0)
			want[nwant++] = names[i];
	qsort(want, nwant, sizeof *want, cmp_str);
	zt_err_clear(&e);
	if (zt_store_list(s, kind, prefix, after, ZT_STORE_LIST_MAX, &v, &n, &e) != 0)
		fail_msg("list %s prefix \"%s\" after \"%s\": %s", kind, prefix, after, e.msg);
	if (n != nwant)
		fail_msg("list %s prefix \"%s\" after \"%s\": %zu objects, want %zu", kind, prefix,
			 after, n, nwant);
	for (size_t i = 0; i < n; i++) {
		if (strcmp(v[i].name, want[i]) != 0)
			fail_msg("list %s prefix \"%s\" after \"%s\": [%zu] is %s, want %s", kind,
				 prefix, after, i, v[i].name, want[i]);
		assert_string_equal(v[i].kind, kind);
		assert_non_null(v[i].body);
		assert_true(v[i].version > 0);
		assert_true(v[i].created > 0 && v[i].created <= v[i].version);
		assert_int_equal(v[i].deleted, 0);
	}
	zt_objects_free(v, n);
	free(want);
}

static void test_list_prefix_order(void **state)
{
	char *dir = tu_mkdtemp();
	zt_store *s = open_in(dir, "s.db");
	static const char *const names[] = {
	    "acme", "acme/a", "acme/b", "acme/payments/api", "acme_y", "acmeZ", "acme.x", "acmeX",
	    "ac", "beta/a", "ACME/up", "B", "a", "A", "b", "a.b", "a/b", "a-b", "a_b", "a=b",
	    "a+b", "a@b", "a:b", "Zeta", "0day", "acme/payments/api/v2"};
	static const char *const policy_names[] = {"acme/a", "acme/only-policy"};
	static const char *const prefixes[] = {
	    "", "a", "ac", "acme", "acme/", "acme_", "acme%", "%", "_", "a_me", "acm_", "%cme",
	    "ACME", "Acme", "acmez", "acme/payments/api", "acme/payments/api/", "acme/payments/api/v2",
	    "acme/payments/api/v2/x", "b", "z", "a_", "a.", "a%"};
	static const char *const afters[] = {"", "acme", "acme/a", "acme/aa", "acme/payments/api",
					     "a", "ZZZ", "zzz", "0"};
	const size_t count = sizeof names / sizeof names[0];
	zt_object *v = NULL;
	size_t n;
	zt_err e;

	(void)state;
	for (size_t i = 0; i < count; i++)
		put_ok(s, "service", names[i], body_n((json_int_t)i, names[i]), 0);
	for (size_t i = 0; i < 2; i++)
		put_ok(s, "policy", policy_names[i], body_n(100 + (json_int_t)i, "policy"), 0);

	for (size_t i = 0; i < sizeof prefixes / sizeof prefixes[0]; i++)
		for (size_t j = 0; j < sizeof afters / sizeof afters[0]; j++)
			expect_list(s, "service", names, count, prefixes[i], afters[j]);
	/* NULL prefix and cursor: from the start, everything */
	zt_err_clear(&e);
	assert_int_equal(zt_store_list(s, "service", NULL, NULL, 1000, &v, &n, &e), 0);
	assert_int_equal(n, count);
	zt_objects_free(v, n);

	/* bodies come with their objects */
	zt_err_clear(&e);
	assert_int_equal(zt_store_list(s, "service", "acme/payments/", "", 1000, &v, &n, &e), 0);
	assert_int_equal(n, 2);
	assert_string_equal(json_string_value(json_object_get(v[0].body, "tag")),
			    "acme/payments/api");
	assert_string_equal(json_string_value(json_object_get(v[1].body, "tag")),
			    "acme/payments/api/v2");
	zt_objects_free(v, n);

	/* a small limit stops early, in order */
	zt_err_clear(&e);
	assert_int_equal(zt_store_list(s, "service", "acme", "", 3, &v, &n, &e), 0);
	assert_int_equal(n, 3);
	assert_string_equal(v[0].name, "acme");
	assert_string_equal(v[1].name, "acme.x");
	assert_string_equal(v[2].name, "acme/a");
	zt_objects_free(v, n);

	/* limits */
	zt_err_clear(&e);
	assert_int_equal(zt_store_list(s, "service", "", "", 0, &v, &n, &e), -ZT_EINVAL);
	assert_string_equal(e.rule, "store-limit");
	zt_err_clear(&e);
	assert_int_equal(zt_store_list(s, "service", "", "", ZT_STORE_LIST_MAX + 1, &v, &n, &e),
			 -ZT_EINVAL);
	assert_string_equal(e.rule, "store-limit");
	zt_err_clear(&e);
	assert_int_equal(zt_store_list(s, "service", "", "", SIZE_MAX, &v, &n, &e), -ZT_EINVAL);

	/* kinds are separate namespaces */
	expect_list(s, "policy", policy_names, 2, "", "");
	expect_list(s, "policy", policy_names, 2, "acme/", "");
	expect_list(s, "nothing", names, 0, "", "");
	zt_object o;
	uint64_t pv, sv;

	get_ok(s, "policy", "acme/a", &o);
	assert_int_equal(body_get_n(o.body), 100);
	pv = o.version;
	zt_object_clear(&o);
	get_ok(s, "service", "acme/a", &o);
	assert_int_equal(body_get_n(o.body), 1);
	sv = o.version;
	zt_object_clear(&o);
	assert_int_not_equal(pv, sv);
	delete_ok(s, "policy", "acme/a", pv);
	get_missing(s, "policy", "acme/a");
	assert_int_equal(obj_version(s, "service", "acme/a"), sv);
	get_missing(s, "service", "acme/only-policy");
	zt_store_close(s);
	tu_rmtree(dir);
}

static void test_list_pagination(void **state)
{
	char *dir = tu_mkdtemp();
	zt_store *s = open_in(dir, "s.db");
	enum { N = 2500 };
	unsigned char *seen = calloc(N, 1);
	char after[ZT_STORE_NAME_MAX + 1] = "";
	size_t total = 0, pages = 0, n;
	zt_object *v = NULL;
	zt_err e;

	(void)state;
	if (!seen)
		fail_msg("calloc");
	zt_err_clear(&e);
	if (zt_store_begin(s, &e) != 0)
		fail_msg("begin: %s", e.msg);
	for (int i = 0; i < N; i++) {
		int k = (i * 7919) % N; /* not in name order */
		char name[32];

		snprintf(name, sizeof name, "obj-%05d", k);
		put_ok(s, "page", name, body_n(k, ""), 0);
	}
	if (zt_store_commit(s, &e) != 0)
		fail_msg("commit: %s", e.msg);
	put_ok(s, "other", "obj-00001", body_n(1, ""), 0);

	for (;;) {
		zt_err_clear(&e);
		if (zt_store_list(s, "page", "", after, 1000, &v, &n, &e) != 0)
			fail_msg("list after %s: %s", after, e.msg);
		if (n == 0) {
			zt_objects_free(v, n);
			break;
		}
		pages++;
		assert_true(n <= 1000);
		for (size_t i = 0; i < n; i++) {
			int k = atoi(v[i].name + 4);

			assert_true(strcmp(v[i].name, after) > 0);
			assert_true(k >= 0 && k < N);
			assert_int_equal(seen[k], 0);
			seen[k] = 1;
			assert_int_equal(body_get_n(v[i].body), k);
			snprintf(after, sizeof after, "%s", v[i].name);
		}
		total += n;
		zt_objects_free(v, n);
	}
	assert_int_equal(total, N);
	assert_int_equal(pages, 3);
	for (int k = 0; k < N; k++)
		assert_int_equal(seen[k], 1);

	/* with a prefix: obj-01000 .. obj-01999 in pages of 300 */
	after[0] = '\0';
	total = 0;
	for (;;) {
		zt_err_clear(&e);
		if (zt_store_list(s, "page", "obj-01", after, 300, &v, &n, &e) != 0)
			fail_msg("list: %s", e.msg);
		for (size_t i = 0; i < n; i++) {
			char want[32];

			snprintf(want, sizeof want, "obj-%05zu", 1000 + total + i);
			assert_string_equal(v[i].name, want);
		}
		if (n)
			snprintf(after, sizeof after, "%s", v[n - 1].name);
		total += n;
		zt_objects_free(v, n);
		if (n < 300)
			break;
	}
	assert_int_equal(total, 1000);
	free(seen);
	zt_store_close(s);
	tu_rmtree(dir);
}

/* ---- history ------------------------------------------------------------------------------ */

static void test_history(void **state)
{
	char *dir = tu_mkdtemp();
	zt_store *s = open_in(dir, "s.db");
	uint64_t v[6], other;
	zt_object *h = NULL, o;
	size_t n;
	zt_err e;

	(void)state;
	v[0] = put_ok(s, "policy", "p", body_n(0, "created"), 0);
	other = put_ok(s, "policy", "q", body_n(50, "other"), 0);
	v[1] = put_ok(s, "policy", "p", body_n(1, "edited"), v[0]);
	put_ok(s, "service", "p", body_n(60, "other kind"), 0);
	v[2] = put_ok(s, "policy", "p", body_n(2, "edited again"), v[1]);
	v[3] = delete_ok(s, "policy", "p", v[2]);
	put_ok(s, "policy", "q", body_n(51, "other"), other);
	v[4] = put_ok(s, "policy", "p", body_n(4, "re-created"), 0);
	v[5] = put_ok(s, "policy", "p", body_n(5, "last"), v[4]);

	zt_err_clear(&e);
	assert_int_equal(zt_store_history(s, "policy", "p", 0, 100, &h, &n, &e), 0);
	assert_int_equal(n, 6);
	for (size_t i = 0; i < n; i++) {
		size_t k = 5 - i; /* newest first */

		assert_string_equal(h[i].kind, "policy");
		assert_string_equal(h[i].name, "p");
		assert_int_equal(h[i].version, v[k]);
		assert_true(h[i].updated_ms > 0);
		if (k == 3) {
			assert_int_equal(h[i].deleted, 1);
			assert_null(h[i].body);
		} else {
			assert_int_equal(h[i].deleted, 0);
			assert_non_null(h[i].body);
			assert_int_equal(body_get_n(h[i].body), (json_int_t)k);
		}
	}
	zt_objects_free(h, n);

	/* paging with before */
	uint64_t before = 0;
	size_t got = 0;

	for (;;) {
		zt_err_clear(&e);
		assert_int_equal(zt_store_history(s, "policy", "p", before, 4, &h, &n, &e), 0);
		for (size_t i = 0; i < n; i++) {
			assert_int_equal(h[i].version, v[5 - got - i]);
			if (before)
				assert_true(h[i].version < before);
		}
		got += n;
		if (n)
			before = h[n - 1].version;
		zt_objects_free(h, n);
		if (n < 4)
			break;
	}
	assert_int_equal(got, 6);
	zt_err_clear(&e);
	assert_int_equal(zt_store_history(s, "policy", "p", v[3], 1, &h, &n, &e), 0);
	assert_int_equal(n, 1);
	assert_int_equal(h[0].version, v[2]);
	zt_objects_free(h, n);
	zt_err_clear(&e);
	assert_int_equal(zt_store_history(s, "policy", "p", v[0], 10, &h, &n, &e), 0);
	assert_int_equal(n, 0);
	zt_objects_free(h, n);

	/* one version */
	zt_err_clear(&e);
	assert_int_equal(zt_store_history_get(s, "policy", "p", v[1], &o, &e), 0);
	assert_int_equal(o.version, v[1]);
	assert_int_equal(o.deleted, 0);
	assert_int_equal(body_get_n(o.body), 1);
	assert_string_equal(json_string_value(json_object_get(o.body, "tag")), "edited");
	zt_object_clear(&o);
	zt_err_clear(&e);
	assert_int_equal(zt_store_history_get(s, "policy", "p", v[3], &o, &e), 0);
	assert_int_equal(o.deleted, 1);
	assert_null(o.body);
	zt_object_clear(&o);
	/* a version of another object, one that never was, version 0 */
	zt_err_clear(&e);
	assert_int_equal(zt_store_history_get(s, "policy", "p", other, &o, &e), -ZT_ENOENT);
	assert_string_equal(e.rule, "not-found");
	assert_null(o.body);
	zt_err_clear(&e);
	assert_int_equal(zt_store_history_get(s, "policy", "p", 9999, &o, &e), -ZT_ENOENT);
	zt_err_clear(&e);
	assert_int_equal(zt_store_history_get(s, "policy", "p", 0, &o, &e), -ZT_ENOENT);
	zt_err_clear(&e);
	assert_int_equal(zt_store_history_get(s, "service", "p", v[1], &o, &e), -ZT_ENOENT);

	/* an object that never existed has no history; limits as for lists */
	zt_err_clear(&e);
	assert_int_equal(zt_store_history(s, "policy", "never", 0, 10, &h, &n, &e), 0);
	assert_int_equal(n, 0);
	zt_objects_free(h, n);
	zt_err_clear(&e);
	assert_int_equal(zt_store_history(s, "policy", "p", 0, 0, &h, &n, &e), -ZT_EINVAL);
	assert_string_equal(e.rule, "store-limit");
	zt_err_clear(&e);
	assert_int_equal(zt_store_history(s, "policy", "p", 0, 1001, &h, &n, &e), -ZT_EINVAL);
	zt_store_close(s);
	tu_rmtree(dir);
}

/* ---- changes ------------------------------------------------------------------------------ */

struct change {
	uint64_t version;
	int kind, obj;
	int deleted;
	json_int_t n;
};

static const char *const change_kinds[] = {"alpha", "beta", "gamma"};

static uint64_t xorshift(uint64_t *x)
{
	*x ^= *x << 13;
	*x ^= *x >> 7;
	*x ^= *x << 17;
	return *x;
}

static void check_change(const zt_object *o, const struct change *c)
{
	char name[16];

	snprintf(name, sizeof name, "obj-%02d", c->obj);
	assert_int_equal(o->version, c->version);
	assert_string_equal(o->kind, change_kinds[c->kind]);
	assert_string_equal(o->name, name);
	assert_int_equal(o->deleted, c->deleted);
	if (c->deleted) {
		assert_null(o->body);
	} else {
		assert_non_null(o->body);
		assert_int_equal(body_get_n(o->body), c->n);
	}
}

/* Pages through the feed from since with limit, comparing with want[0..nwant). */
static void follow_changes(zt_store *s, uint64_t since, const char *kind, size_t limit,
			   const struct change *want, size_t nwant)
{
	size_t got = 0, n;
	zt_object *v = NULL;
	zt_err e;

	for (;;) {
		zt_err_clear(&e);
		if (zt_store_changes(s, since, kind, limit, &v, &n, &e) != 0)
			fail_msg("changes since %llu: %s", (unsigned long long)since, e.msg);
		assert_true(n <= limit);
		for (size_t i = 0; i < n; i++) {
			if (got + i >= nwant)
				fail_msg("changes: more than the %zu expected", nwant);
			check_change(&v[i], &want[got + i]);
		}
		got += n;
		if (n)
			since = v[n - 1].version;
		zt_objects_free(v, n);
		if (n == 0)
			break;
	}
	assert_int_equal(got, nwant);
}

static void test_changes(void **state)
{
	char *dir = tu_mkdtemp();
	zt_store *s = open_in(dir, "s.db");
	enum { OPS = 300, OBJS = 12 };
	struct change *all = calloc(OPS, sizeof *all), *sub = calloc(OPS, sizeof *sub);
	uint64_t have[3][OBJS] = {{0}};
	uint64_t x = 0x9E3779B97F4A7C15ull;
	size_t nsub;
	zt_object *v = NULL;
	size_t n;
	zt_err e;

	(void)state;
	if (!all || !sub)
		fail_msg("calloc");
	zt_err_clear(&e);
	if (zt_store_begin(s, &e) != 0)
		fail_msg("begin: %s", e.msg);
	for (int i = 0; i < OPS; i++) {
		int k = (int)(xorshift(&x) % 3), j = (int)(xorshift(&x) % OBJS);
		char name[16];

		snprintf(name, sizeof name, "obj-%02d", j);
		all[i] = (struct change){0, k, j, 0, i};
		if (have[k][j] && xorshift(&x) % 3 == 0) {
			all[i].version = delete_ok(s, change_kinds[k], name, have[k][j]);
			all[i].deleted = 1;
			have[k][j] = 0;
		} else {
			all[i].version = put_ok(s, change_kinds[k], name, body_n(i, ""), have[k][j]);
			have[k][j] = all[i].version;
		}
		if (i > 0)
			assert_int_equal(all[i].version, all[i - 1].version + 1);
		/* every 50 changes: one commit, so the feed spans transactions */
		if (i % 50 == 49) {
			if (zt_store_commit(s, &e) != 0 || zt_store_begin(s, &e) != 0)
				fail_msg("commit/begin: %s", e.msg);
		}
	}
	if (zt_store_commit(s, &e) != 0)
		fail_msg("commit: %s", e.msg);
	/* a rolled-back change never shows */
	zt_err_clear(&e);
	if (zt_store_begin(s, &e) != 0)
		fail_msg("begin: %s", e.msg);
	put_ok(s, "alpha", "ghost", body_n(-1, ""), 0);
	zt_store_rollback(s);

	/* everything at once, then in pages of every size */
	zt_err_clear(&e);
	assert_int_equal(zt_store_changes(s, 0, NULL, 1000, &v, &n, &e), 0);
	assert_int_equal(n, OPS);
	for (size_t i = 0; i < n; i++)
		check_change(&v[i], &all[i]);
	zt_objects_free(v, n);
	follow_changes(s, 0, NULL, 7, all, OPS);
	follow_changes(s, 0, NULL, 1, all, OPS);
	follow_changes(s, 0, NULL, 299, all, OPS);
	follow_changes(s, all[99].version, NULL, 1000, all + 100, OPS - 100);
	follow_changes(s, all[OPS - 1].version, NULL, 10, all, 0);
	follow_changes(s, zt_store_revision(s), NULL, 10, all, 0);

	/* one kind */
	for (int k = 0; k < 3; k++) {
		nsub = 0;
		for (int i = 0; i < OPS; i++)
			if (all[i].kind == k)
				sub[nsub++] = all[i];
		assert_true(nsub > 0);
		follow_changes(s, 0, change_kinds[k], 13, sub, nsub);
		follow_changes(s, 0, change_kinds[k], 1000, sub, nsub);
	}
	follow_changes(s, 0, "delta", 10, sub, 0);

	zt_err_clear(&e);
	assert_int_equal(zt_store_changes(s, 0, NULL, 0, &v, &n, &e), -ZT_EINVAL);
	assert_string_equal(e.rule, "store-limit");
	zt_err_clear(&e);
	assert_int_equal(zt_store_changes(s, 0, NULL, 1001, &v, &n, &e), -ZT_EINVAL);

	/* what a watcher does: changes land while it follows */
	uint64_t since = zt_store_revision(s);
	size_t seen = 0;

	for (int round = 0; round < 5; round++) {
		for (int i = 0; i < 10; i++) {
			char name[16];

			snprintf(name, sizeof name, "w-%d-%d", round, i);
			put_ok(s, "alpha", name, body_n(round * 10 + i, ""), 0);
		}
		zt_err_clear(&e);
		assert_int_equal(zt_store_changes(s, since, "alpha", 4, &v, &n, &e), 0);
		for (size_t i = 0; i < n; i++) {
			assert_int_equal(v[i].version, since + 1);
			assert_int_equal(body_get_n(v[i].body), (json_int_t)seen);
			since = v[i].version;
			seen++;
		}
		zt_objects_free(v, n);
	}
	for (;;) {
		zt_err_clear(&e);
		assert_int_equal(zt_store_changes(s, since, "alpha", 4, &v, &n, &e), 0);
		for (size_t i = 0; i < n; i++) {
			assert_int_equal(body_get_n(v[i].body), (json_int_t)seen);
			since = v[i].version;
			seen++;
		}
		zt_objects_free(v, n);
		if (n == 0)
			break;
	}
	assert_int_equal(seen, 50);
	free(all);
	free(sub);
	zt_store_close(s);
	tu_rmtree(dir);
}

/* ---- transactions ------------------------------------------------------------------------- */

static void test_tx_basic(void **state)
{
	char *dir = tu_mkdtemp();
	zt_store *s = open_in(dir, "s.db");
	uint64_t r0, va, vb, vd, vp;
	zt_object o, *v = NULL;
	size_t n;
	zt_err e;

	(void)state;
	vp = put_ok(s, "service", "pre", body_n(0, ""), 0);
	r0 = zt_store_revision(s);

	/* rollback: as if nothing happened */
	zt_err_clear(&e);
	assert_int_equal(zt_store_begin(s, &e), 0);
	va = put_ok(s, "service", "a", body_n(1, ""), 0);
	vb = put_ok(s, "service", "b", body_n(2, ""), 0);
	assert_int_equal(va, r0 + 1);
	assert_int_equal(vb, r0 + 2);
	/* inside, the transaction sees itself */
	assert_int_equal(obj_version(s, "service", "a"), va);
	assert_int_equal(zt_store_revision(s), r0 + 2);
	vd = delete_ok(s, "service", "pre", vp);
	put_ok(s, "service", "b", body_n(3, ""), vb);
	zt_store_rollback(s);
	get_missing(s, "service", "a");
	get_missing(s, "service", "b");
	assert_int_equal(obj_version(s, "service", "pre"), vp);
	assert_int_equal(zt_store_revision(s), r0);
	zt_err_clear(&e);
	assert_int_equal(zt_store_history(s, "service", "a", 0, 10, &v, &n, &e), 0);
	assert_int_equal(n, 0);
	zt_objects_free(v, n);
	zt_err_clear(&e);
	assert_int_equal(zt_store_changes(s, r0, NULL, 10, &v, &n, &e), 0);
	assert_int_equal(n, 0);
	zt_objects_free(v, n);
	(void)vd;

	/* commit: visible, in one revision each */
	zt_err_clear(&e);
	assert_int_equal(zt_store_begin(s, &e), 0);
	va = put_ok(s, "service", "c", body_n(4, ""), 0);
	/* a refused write inside does not spend a revision, nor end the transaction */
	put_refused(s, "service", "c", body_n(5, ""), 0, ZT_EEXIST, "exists");
	put_refused(s, "service", "pre", body_n(5, ""), vp + 50, ZT_ECONFLICT, "conflict");
	put_refused(s, "service", "zz", body_n(5, ""), 3, ZT_ENOENT, "not-found");
	delete_refused(s, "service", "pre", vp + 50, ZT_ECONFLICT, "conflict");
	put_refused(s, "service", "/bad", body_n(5, ""), 0, ZT_EINVAL, "store-name");
	vb = put_ok(s, "service", "d", body_n(6, ""), 0);
	assert_int_equal(va, r0 + 1);
	assert_int_equal(vb, r0 + 2);
	/* a second begin on this thread is refused and leaves the first open */
	zt_err_clear(&e);
	assert_int_equal(zt_store_begin(s, &e), -ZT_ESTATE);
	assert_true(e.msg[0] != '\0');
	assert_int_equal(obj_version(s, "service", "c"), va);
	zt_err_clear(&e);
	assert_int_equal(zt_store_commit(s, &e), 0);
	assert_int_equal(obj_version(s, "service", "c"), va);
	assert_int_equal(obj_version(s, "service", "d"), vb);
	assert_int_equal(zt_store_revision(s), r0 + 2);

	/* commit with nothing open; rollback with nothing open does nothing */
	zt_err_clear(&e);
	assert_int_equal(zt_store_commit(s, &e), -ZT_ESTATE);
	assert_true(e.msg[0] != '\0');
	zt_store_rollback(s);
	assert_int_equal(zt_store_revision(s), r0 + 2);

	/* an empty transaction */
	zt_err_clear(&e);
	assert_int_equal(zt_store_begin(s, &e), 0);
	assert_int_equal(zt_store_commit(s, &e), 0);
	assert_int_equal(zt_store_revision(s), r0 + 2);

	/* and the handle works as before */
	put_ok(s, "service", "e", body_n(7, ""), 0);
	get_ok(s, "service", "e", &o);
	assert_int_equal(o.version, r0 + 3);
	zt_object_clear(&o);
	zt_store_close(s);
	tu_rmtree(dir);
}

struct blocked {
	zt_store *s;
	int op; /* 0 get "x", 1 put "y", 2 begin + put "w" + commit, 3 revision */
	atomic_int started, done;
	int r;
	uint64_t version;
	char err[ZT_ERR_MSG_MAX];
};

static void *blocked_main(void *arg)
{
	struct blocked *b = arg;
	zt_object o;
	zt_err e;
	json_t *body = body_n(42, "from b");

	zt_err_clear(&e);
	atomic_store(&b->started, 1);
	switch (b->op) {
	case 0:
		b->r = zt_store_get(b->s, "service", "x", &o, &e);
		b->version = o.version;
		zt_object_clear(&o);
		break;
	case 1:
		b->r = zt_store_put(b->s, "service", "y", body, 0, &b->version, &e);
		break;
	case 2:
		if ((b->r = zt_store_begin(b->s, &e)) == 0) {
			b->r = zt_store_put(b->s, "service", "w", body, 0, &b->version, &e);
			if (b->r == 0)
				b->r = zt_store_commit(b->s, &e);
			else
				zt_store_rollback(b->s);
		}
		break;
	default:
		b->version = zt_store_revision(b->s);
		b->r = 0;
		break;
	}
	json_decref(body);
	snprintf(b->err, sizeof b->err, "%s", e.msg);
	atomic_store(&b->done, 1);
	return NULL;
}

/*
 * While this thread holds a transaction, another thread's call on the same
 * handle (or a write on another handle) waits, then goes through.
 */
static void run_blocked(zt_store *holder, zt_store *other, int op, uint64_t *x_version,
			struct blocked *b)
{
	pthread_t th;
	zt_err e;

	memset(b, 0, sizeof *b);
	b->s = other;
	b->op = op;
	zt_err_clear(&e);
	assert_int_equal(zt_store_begin(holder, &e), 0);
	*x_version = put_ok(holder, "service", op == 0 ? "x" : "z", body_n(op, "from a"),
			    op == 0 ? 0 : obj_version(holder, "service", "z"));
	assert_int_equal(pthread_create(&th, NULL, blocked_main, b), 0);
	while (!atomic_load(&b->started))
		sleep_ms(1);
	sleep_ms(150);
	assert_int_equal(atomic_load(&b->done), 0);
	zt_err_clear(&e);
	assert_int_equal(zt_store_commit(holder, &e), 0);
	pthread_join(th, NULL);
	assert_int_equal(atomic_load(&b->done), 1);
	if (b->r != 0)
		fail_msg("the waiting call failed: %s", b->err);
}

static void test_tx_blocks_other_threads(void **state)
{
	char *dir = tu_mkdtemp();
	zt_store *s = open_in(dir, "s.db");
	struct blocked *b = calloc(1, sizeof *b);
	uint64_t xv, zv;
	zt_object o;

	(void)state;
	if (!b)
		fail_msg("calloc");
	put_ok(s, "service", "z", body_n(-1, ""), 0);

	/* a get waits for the commit, then sees the committed object */
	run_blocked(s, s, 0, &xv, b);
	assert_int_equal(b->version, xv);

	/* a put waits, then lands after the holder's change */
	run_blocked(s, s, 1, &zv, b);
	assert_true(b->version > zv);
	assert_int_equal(obj_version(s, "service", "y"), b->version);

	/* so does another thread's transaction */
	run_blocked(s, s, 2, &zv, b);
	assert_true(b->version > zv);
	assert_int_equal(obj_version(s, "service", "w"), b->version);

	/* and the revision, which must not show an uncommitted change */
	run_blocked(s, s, 3, &zv, b);
	assert_int_equal(b->version, zv);
	assert_int_equal(zt_store_revision(s), b->version);

	get_ok(s, "service", "y", &o);
	assert_int_equal(body_get_n(o.body), 42);
	zt_object_clear(&o);
	free(b);
	zt_store_close(s);
	tu_rmtree(dir);
}

static void test_tx_two_handles(void **state)
{
	char *dir = tu_mkdtemp();
	zt_store *s1 = open_in(dir, "s.db"), *s2 = open_in(dir, "s.db");
	struct blocked *b = calloc(1, sizeof *b);
	uint64_t zv, r0;
	zt_err e;

	(void)state;
	if (!b)
		fail_msg("calloc");
	put_ok(s1, "service", "z", body_n(-1, ""), 0);
	r0 = zt_store_revision(s2);
	assert_int_equal(r0, 1);

	/* readers on another handle do not wait for a writer, nor see its change */
	zt_err_clear(&e);
	assert_int_equal(zt_store_begin(s1, &e), 0);
	put_ok(s1, "service", "x", body_n(1, ""), 0);
	get_missing(s2, "service", "x");
	assert_int_equal(zt_store_revision(s2), r0);
	zt_err_clear(&e);
	assert_int_equal(zt_store_commit(s1, &e), 0);
	assert_int_equal(obj_version(s2, "service", "x"), r0 + 1);

	/* a writer on another handle waits for the lock (busy timeout), then writes */
	run_blocked(s1, s2, 1, &zv, b);
	assert_int_equal(b->version, zv + 1);
	assert_int_equal(obj_version(s1, "service", "y"), b->version);
	run_blocked(s1, s2, 2, &zv, b);
	assert_int_equal(b->version, zv + 1);
	assert_int_equal(zt_store_revision(s1), zt_store_revision(s2));
	free(b);
	zt_store_close(s1);
	zt_store_close(s2);
	tu_rmtree(dir);
}

/* ---- concurrency ------------------------------------------------------------------------------ */

enum { THREADS = 8, PER_THREAD = 200 };

struct creator {
	zt_store *s;
	int id, count;
	uint64_t *versions;
	int failed;
	char err[ZT_ERR_MSG_MAX + 64];
};

static void *creator_main(void *arg)
{
	struct creator *c = arg;
	zt_err e;

	for (int i = 0; i < c->count && !c->failed; i++) {
		char name[32];
		json_t *body = body_n(c->id * 1000 + i, "");
		zt_object o;

		snprintf(name, sizeof name, "t%d/obj-%03d", c->id, i);
		zt_err_clear(&e);
		if (zt_store_put(c->s, "service", name, body, 0, &c->versions[i], &e) != 0) {
			snprintf(c->err, sizeof c->err, "put %s: %s", name, e.msg);
			c->failed = 1;
		} else if (i % 10 == 0) {
			if (zt_store_get(c->s, "service", name, &o, &e) != 0) {
				snprintf(c->err, sizeof c->err, "get %s: %s", name, e.msg);
				c->failed = 1;
			} else if (o.version != c->versions[i] ||
				   body_get_n(o.body) != c->id * 1000 + i) {
				snprintf(c->err, sizeof c->err, "get %s: version %llu, want %llu",
					 name, (unsigned long long)o.version,
					 (unsigned long long)c->versions[i]);
				c->failed = 1;
			}
			zt_object_clear(&o);
		}
		json_decref(body);
	}
	return NULL;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static void test_concurrent_shared_handle(void **state)
{
	char *dir = tu_mkdtemp();
	zt_store *s = open_in(dir, "s.db");
	uint64_t *all = calloc(THREADS * PER_THREAD, sizeof *all);
	struct creator c[THREADS];
	pthread_t th[THREADS];
	uint64_t r0 = zt_store_revision(s);
	char after[ZT_STORE_NAME_MAX + 1] = "";
	size_t total = 0, n;
	zt_object *v = NULL;
	zt_err e;

	(void)state;
	if (!all)
		fail_msg("calloc");
	for (int i = 0; i < THREADS; i++) {
		c[i] = (struct creator){s, i, PER_THREAD, all + i * PER_THREAD, 0, ""};
		assert_int_equal(pthread_create(&th[i], NULL, creator_main, &c[i]), 0);
	}
	for (int i = 0; i < THREADS; i++)
		pthread_join(th[i], NULL);
	for (int i = 0; i < THREADS; i++)
		if (c[i].failed)
			fail_msg("thread %d: %s", i, c[i].err);
	/* every version unique, and they are exactly the revisions spent */
	qsort(all, THREADS * PER_THREAD, sizeof *all, cmp_u64);
	for (int i = 0; i < THREADS * PER_THREAD; i++)
		assert_int_equal(all[i], r0 + 1 + (uint64_t)i);
	assert_int_equal(zt_store_revision(s), r0 + THREADS * PER_THREAD);
	for (;;) {
		zt_err_clear(&e);
		assert_int_equal(zt_store_list(s, "service", "t", after, 1000, &v, &n, &e), 0);
		if (n)
			snprintf(after, sizeof after, "%s", v[n - 1].name);
		total += n;
		zt_objects_free(v, n);
		if (n == 0)
			break;
	}
	assert_int_equal(total, THREADS * PER_THREAD);
	free(all);
	zt_store_close(s);
	tu_rmtree(dir);
}

enum { H_CREATES = 150, H_INCREMENTS = 40 };

struct handle_worker {
	zt_store *s;
	int id;
	uint64_t versions[H_CREATES + H_INCREMENTS];
	int conflicts, failed;
	char err[ZT_ERR_MSG_MAX + 64];
};

/* Creates its own objects and increments a shared counter, retrying on conflict. */
static void *handle_main(void *arg)
{
	struct handle_worker *w = arg;
	int nv = 0, incs = 0;
	zt_err e;

	for (int i = 0; i < H_CREATES && !w->failed; i++) {
		char name[32];
		json_t *body = body_n(i, "");

		snprintf(name, sizeof name, "h%d/obj-%03d", w->id, i);
		zt_err_clear(&e);
		if (zt_store_put(w->s, "service", name, body, 0, &w->versions[nv], &e) != 0) {
			snprintf(w->err, sizeof w->err, "put %s: %s [%s]", name, e.msg, e.rule);
			w->failed = 1;
		} else {
			nv++;
		}
		json_decref(body);
		if (i % 3 != 2 || incs >= H_INCREMENTS)
			continue;
		/* read, modify, write with the version read */
		while (!w->failed) {
			zt_object o;
			int r;

			zt_err_clear(&e);
			if (zt_store_get(w->s, "counter", "shared", &o, &e) != 0) {
				snprintf(w->err, sizeof w->err, "get counter: %s", e.msg);
				w->failed = 1;
				break;
			}
			body = body_n(body_get_n(o.body) + 1, "");
			r = zt_store_put(w->s, "counter", "shared", body, o.version, &w->versions[nv],
					 &e);
			json_decref(body);
			zt_object_clear(&o);
			if (r == 0) {
				nv++;
				incs++;
				break;
			}
			if (r != -ZT_ECONFLICT) {
				snprintf(w->err, sizeof w->err, "put counter: %s [%s]", e.msg, e.rule);
				w->failed = 1;
			}
			w->conflicts++;
		}
	}
	return NULL;
}

static void test_concurrent_two_handles(void **state)
{
	char *dir = tu_mkdtemp();
	zt_store *h[2] = {open_in(dir, "s.db"), open_in(dir, "s.db")};
	struct handle_worker *w = calloc(2, sizeof *w);
	uint64_t *all, r0, nall = 0;
	pthread_t th[2];
	zt_object o;

	(void)state;
	if (!w)
		fail_msg("calloc");
	put_ok(h[0], "counter", "shared", body_n(0, ""), 0);
	r0 = zt_store_revision(h[1]);
	for (int i = 0; i < 2; i++) {
		w[i].s = h[i];
		w[i].id = i;
		assert_int_equal(pthread_create(&th[i], NULL, handle_main, &w[i]), 0);
	}
	for (int i = 0; i < 2; i++)
		pthread_join(th[i], NULL);
	for (int i = 0; i < 2; i++)
		if (w[i].failed)
			fail_msg("handle %d: %s", i, w[i].err);

	/* every write landed exactly once, with its own revision */
	all = calloc(2 * (H_CREATES + H_INCREMENTS), sizeof *all);
	if (!all)
		fail_msg("calloc");
	for (int i = 0; i < 2; i++)
		for (int j = 0; j < H_CREATES + H_INCREMENTS; j++)
			if (w[i].versions[j])
				all[nall++] = w[i].versions[j];
	qsort(all, nall, sizeof *all, cmp_u64);
	for (uint64_t i = 0; i < nall; i++)
		assert_int_equal(all[i], r0 + 1 + i);
	assert_int_equal(zt_store_revision(h[0]), r0 + nall);
	assert_int_equal(zt_store_revision(h[1]), r0 + nall);
	get_ok(h[1], "counter", "shared", &o);
	/* no lost update: every increment that succeeded counted */
	assert_int_equal(body_get_n(o.body), 2 * H_INCREMENTS);
	assert_int_equal(nall, 2 * (H_CREATES + H_INCREMENTS));
	zt_object_clear(&o);
	for (int i = 0; i < 2; i++) {
		char name[32];

		snprintf(name, sizeof name, "h%d/obj-%03d", i, H_CREATES - 1);
		get_ok(h[1 - i], "service", name, &o);
		zt_object_clear(&o);
	}
	free(all);
	free(w);
	zt_store_close(h[0]);
	zt_store_close(h[1]);
	tu_rmtree(dir);
}

struct opener {
	const char *path;
	pthread_barrier_t *bar;
	int ok;
	char err[ZT_ERR_MSG_MAX];
};

static void *opener_main(void *arg)
{
	struct opener *o = arg;
	zt_store *s;
	zt_err e;

	zt_err_clear(&e);
	pthread_barrier_wait(o->bar);
	if ((s = zt_store_open(o->path, &e)) != NULL) {
		o->ok = zt_store_schema_version(s) == zt_store_schema_latest();
		if (!o->ok)
			snprintf(o->err, sizeof o->err, "schema %d", zt_store_schema_version(s));
		zt_store_close(s);
	} else {
		snprintf(o->err, sizeof o->err, "%s", e.msg);
	}
	return NULL;
}

/*
 * The server and a zt command may open a new store at the same moment:
 * both must end up with it migrated once, neither refused.
 */
static void test_open_concurrently(void **state)
{
	enum { ROUNDS = 25, OPENERS = 4 };
	char *dir = tu_mkdtemp();
	struct opener o[OPENERS];
	pthread_t th[OPENERS];
	pthread_barrier_t bar;
	int failed = 0;

	(void)state;
	for (int round = 0; round < ROUNDS; round++) {
		char p[PATH_MAX], file[32];

		snprintf(file, sizeof file, "race-%02d.db", round);
		pathf(p, dir, file);
		pthread_barrier_init(&bar, NULL, OPENERS);
		for (int i = 0; i < OPENERS; i++) {
			o[i] = (struct opener){p, &bar, 0, ""};
			assert_int_equal(pthread_create(&th[i], NULL, opener_main, &o[i]), 0);
		}
		for (int i = 0; i < OPENERS; i++)
			pthread_join(th[i], NULL);
		pthread_barrier_destroy(&bar);
		for (int i = 0; i < OPENERS; i++)
			if (!o[i].ok) {
				if (failed++ < 3)
					print_error("round %d opener %d: %s\n", round, i, o[i].err);
			}
		assert_int_equal(raw_int(p, "SELECT COUNT(*) FROM zt_schema_migrations"),
				 zt_store_schema_latest());
	}
	tu_rmtree(dir);
	if (failed)
		fail_msg("%d of %d concurrent opens of a new store failed", failed,
			 ROUNDS * OPENERS);
}

/*
 * A put that fails part way (here: the history insert, made to fail by a
 * trigger, as a full disk or an I/O error would) must leave nothing behind,
 * inside a caller's transaction too: the caller may go on and commit.
 */
static void test_failed_put_leaves_nothing(void **state)
{
	char *dir = tu_mkdtemp();
	char p[PATH_MAX];
	zt_store *s;
	uint64_t r0, va, vb, ver;
	zt_object *v = NULL;
	size_t n;
	zt_err e;
	int r;

	(void)state;
	pathf(p, dir, "s.db");
	s = open_path(p);
	put_ok(s, "service", "pre", body_n(0, ""), 0);
	raw_exec(p, "CREATE TRIGGER zt_test_fault BEFORE INSERT ON zt_history"
		    " WHEN NEW.name LIKE 'boom%' BEGIN SELECT RAISE(ABORT, 'injected fault'); END");
	r0 = zt_store_revision(s);

	/* on its own: rolled back */
	json_t *body = body_n(1, "");

	zt_err_clear(&e);
	r = zt_store_put(s, "service", "boom", body, 0, &ver, &e);
	assert_int_not_equal(r, 0);
	assert_non_null(strstr(e.msg, "injected fault"));
	get_missing(s, "service", "boom");
	assert_int_equal(zt_store_revision(s), r0);

	/* in a transaction that goes on and commits */
	zt_err_clear(&e);
	assert_int_equal(zt_store_begin(s, &e), 0);
	va = put_ok(s, "service", "a", body_n(2, ""), 0);
	zt_err_clear(&e);
	r = zt_store_put(s, "service", "boom-2", body, 0, &ver, &e);
	assert_int_not_equal(r, 0);
	assert_int_equal(ver, 0);
	vb = put_ok(s, "service", "b", body_n(3, ""), 0);
	zt_err_clear(&e);
	assert_int_equal(zt_store_commit(s, &e), 0);
	json_decref(body);

	int wrong = 0;
	zt_object o;

	zt_err_clear(&e);
	if (zt_store_get(s, "service", "boom-2", &o, &e) == 0) {
		print_error("the failed put's object exists (version %llu) with no history\n",
			    (unsigned long long)o.version);
		wrong++;
	}
	zt_object_clear(&o);
	if (va != r0 + 1 || vb != r0 + 2 || zt_store_revision(s) != r0 + 2) {
		print_error("revisions: a %llu, b %llu, store %llu; want %llu, %llu, %llu (the "
			    "failed put spent one)\n",
			    (unsigned long long)va, (unsigned long long)vb,
			    (unsigned long long)zt_store_revision(s), (unsigned long long)r0 + 1,
			    (unsigned long long)r0 + 2, (unsigned long long)r0 + 2);
		wrong++;
	}
	zt_err_clear(&e);
	assert_int_equal(zt_store_changes(s, r0, NULL, 10, &v, &n, &e), 0);
	assert_int_equal(n, 2);
	zt_objects_free(v, n);
	zt_store_close(s);
	tu_rmtree(dir);
	assert_int_equal(wrong, 0);
}

/* ---- persistence ------------------------------------------------------------------------------ */

static void test_reopen_keeps_everything(void **state)
{
	char *dir = tu_mkdtemp();
	zt_store *s = open_in(dir, "s.db");
	uint64_t v1, v2, rev, gone[4]; /* the history of "gone", oldest first */
	size_t ngone = 0;
	zt_object *h = NULL, o;
	size_t n;
	zt_err e;

	(void)state;
	v1 = put_ok(s, "service", "keep", body_n(1, "one"), 0);
	v2 = put_ok(s, "service", "keep", body_n(2, "two"), v1);
	gone[ngone] = put_ok(s, "service", "gone", body_n(3, ""), 0);
	ngone++;
	gone[ngone] = delete_ok(s, "service", "gone", gone[ngone - 1]);
	ngone++;
	put_ok(s, "policy", "p", body_n(5, ""), 0);
	rev = zt_store_revision(s);
	zt_store_close(s);

	for (int round = 0; round < 2; round++) {
		s = open_in(dir, "s.db");
		assert_int_equal(zt_store_schema_version(s), zt_store_schema_latest());
		assert_int_equal(zt_store_revision(s), rev);
		get_ok(s, "service", "keep", &o);
		assert_int_equal(o.version, v2);
		assert_int_equal(o.created, v1);
		assert_int_equal(body_get_n(o.body), 2);
		zt_object_clear(&o);
		get_missing(s, "service", "gone");
		zt_err_clear(&e);
		assert_int_equal(zt_store_history(s, "service", "gone", 0, 10, &h, &n, &e), 0);
		assert_int_equal(n, ngone);
		for (size_t i = 0; i < n; i++) {
			assert_int_equal(h[i].version, gone[ngone - 1 - i]);
			/* created, deleted, created, deleted */
			assert_int_equal(h[i].deleted, (ngone - 1 - i) % 2);
			if (!h[i].deleted)
				assert_int_equal(body_get_n(h[i].body), i == n - 1 ? 3 : 6);
		}
		zt_objects_free(h, n);
		zt_err_clear(&e);
		assert_int_equal(zt_store_changes(s, 0, NULL, 100, &h, &n, &e), 0);
		assert_int_equal(n, rev);
		zt_objects_free(h, n);
		/* and it goes on from where it was */
		if (round == 0) {
			gone[ngone] = put_ok(s, "service", "gone", body_n(6, ""), 0);
			assert_int_equal(gone[ngone], rev + 1);
			ngone++;
			gone[ngone] = delete_ok(s, "service", "gone", gone[ngone - 1]);
			assert_int_equal(gone[ngone], rev + 2);
			ngone++;
			rev += 2;
		}
		zt_store_close(s);
	}
	{
		char p[PATH_MAX];

		pathf(p, dir, "s.db");
		assert_int_equal(raw_int(p, "SELECT COUNT(*) FROM zt_schema_migrations"),
				 zt_store_schema_latest());
		assert_int_equal(raw_int(p, "SELECT revision FROM zt_meta"), (long long)rev);
	}
	tu_rmtree(dir);
}

/* ---- damage ----------------------------------------------------------------------------------- */

static void test_damaged_rows(void **state)
{
	char *dir = tu_mkdtemp();
	char p[PATH_MAX];
	zt_store *s;
	zt_object o, *v = NULL;
	uint64_t vbad;
	size_t n = 7;
	zt_err e;

	(void)state;
	pathf(p, dir, "s.db");
	s = open_path(p);
	put_ok(s, "service", "a-good", body_n(1, ""), 0);
	vbad = put_ok(s, "service", "bad", body_n(2, ""), 0);
	put_ok(s, "service", "z-good", body_n(3, ""), 0);
	/* written behind the store's back while it is open (another process) */
	raw_exec(p, "UPDATE zt_objects SET body = 'not json {' WHERE name = 'bad'");
	zt_err_clear(&e);
	assert_int_equal(zt_store_get(s, "service", "bad", &o, &e), -ZT_EPARSE);
	assert_string_equal(e.rule, "store-damaged");
	assert_null(o.body);
	zt_err_clear(&e);
	assert_int_equal(zt_store_list(s, "service", "", "", 100, &v, &n, &e), -ZT_EPARSE);
	assert_string_equal(e.rule, "store-damaged");
	assert_null(v);
	assert_int_equal(n, 0);
	/* the others still read */
	get_ok(s, "service", "a-good", &o);
	zt_object_clear(&o);
	zt_err_clear(&e);
	assert_int_equal(zt_store_list(s, "service", "", "", 1, &v, &n, &e), 0);
	assert_int_equal(n, 1);
	zt_objects_free(v, n);
	/* a damaged object can still be replaced with the version it has */
	put_ok(s, "service", "bad", body_n(20, ""), vbad);
	get_ok(s, "service", "bad", &o);
	assert_int_equal(body_get_n(o.body), 20);
	zt_object_clear(&o);

	/* other damage: JSON of another shape, truncated, a number, huge */
	static const char *const bodies[] = {"{\"a\":", "42", "\"str\"", "{\"a\":1,\"a\":2}",
					     "{\"a\":1} trailing", ""};
	for (size_t i = 0; i < sizeof bodies / sizeof bodies[0]; i++) {
		char sql[256];

		snprintf(sql, sizeof sql, "UPDATE zt_objects SET body = '%s' WHERE name = 'bad'",
			 bodies[i]);
		raw_exec(p, sql);
		zt_err_clear(&e);
		if (zt_store_get(s, "service", "bad", &o, &e) != -ZT_EPARSE)
			fail_msg("body %s read as fine", bodies[i]);
		assert_string_equal(e.rule, "store-damaged");
	}
	raw_exec(p, "UPDATE zt_objects SET body = '{\"p\":\"' || printf('%.*c', 1100000, 'x') "
		    "|| '\"}' WHERE name = 'bad'");
	zt_err_clear(&e);
	assert_int_equal(zt_store_get(s, "service", "bad", &o, &e), -ZT_EPARSE);
	assert_string_equal(e.rule, "store-damaged");
	/* a name longer than any the store writes */
	raw_exec(p, "UPDATE zt_objects SET body = '{}' WHERE name = 'bad'");
	raw_exec(p, "INSERT INTO zt_objects (kind, name, version, created, updated_ms, body)"
		    " VALUES ('service', 'long' || printf('%.*c', 300, 'n'), 1, 1, 0, '{}')");
	zt_err_clear(&e);
	assert_int_equal(zt_store_list(s, "service", "", "", 100, &v, &n, &e), -ZT_EPARSE);
	assert_string_equal(e.rule, "store-damaged");

	/* history and the feed */
	raw_exec(p, "UPDATE zt_history SET body = '[' WHERE name = 'a-good'");
	zt_err_clear(&e);
	assert_int_equal(zt_store_history(s, "service", "a-good", 0, 10, &v, &n, &e), -ZT_EPARSE);
	assert_string_equal(e.rule, "store-damaged");
	zt_err_clear(&e);
	assert_int_equal(zt_store_history_get(s, "service", "a-good", 1, &o, &e), -ZT_EPARSE);
	assert_string_equal(e.rule, "store-damaged");
	assert_null(o.body);
	zt_err_clear(&e);
	assert_int_equal(zt_store_changes(s, 0, NULL, 100, &v, &n, &e), -ZT_EPARSE);
	assert_string_equal(e.rule, "store-damaged");
	/* past the damage, the feed reads */
	zt_err_clear(&e);
	assert_int_equal(zt_store_changes(s, 1, NULL, 100, &v, &n, &e), 0);
	assert_true(n > 0);
	zt_objects_free(v, n);
	zt_store_close(s);

	/* it reopens: damage in rows is not damage in the schema */
	s = open_path(p);
	get_ok(s, "service", "z-good", &o);
	zt_object_clear(&o);
	zt_store_close(s);
	tu_rmtree(dir);
}

/*
 * A change that is not a deletion but has no body is damage too: a caller
 * handed deleted == 0 and body == NULL would dereference it.
 */
static void test_damaged_history_without_body(void **state)
{
	char *dir = tu_mkdtemp();
	char p[PATH_MAX];
	zt_store *s;
	zt_object o, *v = NULL;
	uint64_t v1;
	size_t n = 0;
	int r, wrong = 0;
	zt_err e;

	(void)state;
	pathf(p, dir, "s.db");
	s = open_path(p);
	v1 = put_ok(s, "service", "a", body_n(1, ""), 0);
	raw_exec(p, "UPDATE zt_history SET body = NULL WHERE name = 'a'");
	zt_err_clear(&e);
	r = zt_store_history_get(s, "service", "a", v1, &o, &e);
	if (r == 0 && !o.deleted && !o.body) {
		print_error("history_get: a change with deleted=0 and no body, not store-damaged\n");
		wrong++;
	} else if (r != 0 && strcmp(e.rule, "store-damaged") != 0) {
		print_error("history_get: %s [%s]\n", e.msg, e.rule);
		wrong++;
	}
	zt_object_clear(&o);
	zt_err_clear(&e);
	r = zt_store_history(s, "service", "a", 0, 10, &v, &n, &e);
	if (r == 0 && n > 0 && !v[0].deleted && !v[0].body) {
		print_error("history: a change with deleted=0 and no body, not store-damaged\n");
		wrong++;
	}
	zt_objects_free(v, n);
	zt_err_clear(&e);
	r = zt_store_changes(s, 0, NULL, 10, &v, &n, &e);
	if (r == 0 && n > 0 && !v[0].deleted && !v[0].body) {
		print_error("changes: a change with deleted=0 and no body, not store-damaged\n");
		wrong++;
	}
	zt_objects_free(v, n);
	zt_store_close(s);
	tu_rmtree(dir);
	assert_int_equal(wrong, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_open_urls),
	    cmocka_unit_test(test_open_not_sqlite),
	    cmocka_unit_test(test_open_newer_schema),
	    cmocka_unit_test(test_put_get_delete),
	    cmocka_unit_test(test_revision),
	    cmocka_unit_test(test_validation),
	    cmocka_unit_test(test_body_limit),
	    cmocka_unit_test(test_put_body_readable),
	    cmocka_unit_test(test_null_name_refused),
	    cmocka_unit_test(test_list_prefix_order),
	    cmocka_unit_test(test_list_pagination),
	    cmocka_unit_test(test_history),
	    cmocka_unit_test(test_changes),
	    cmocka_unit_test(test_tx_basic),
	    cmocka_unit_test(test_tx_blocks_other_threads),
	    cmocka_unit_test(test_tx_two_handles),
	    cmocka_unit_test(test_concurrent_shared_handle),
	    cmocka_unit_test(test_concurrent_two_handles),
	    cmocka_unit_test(test_open_concurrently),
	    cmocka_unit_test(test_failed_put_leaves_nothing),
	    cmocka_unit_test(test_reopen_keeps_everything),
	    cmocka_unit_test(test_damaged_rows),
	    cmocka_unit_test(test_damaged_history_without_body),
	};

	zt_log_set_level(ZT_LOG_WARN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
