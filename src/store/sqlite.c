/*
 * store/sqlite.c: the store on SQLite, the embedded default.
 *
 * One connection per handle, serialized by a mutex; WAL journal so that
 * other processes (zt commands reading the same file) can read while the
 * server writes; synchronous=FULL, because a change the server has
 * acknowledged (and audited) must survive a power cut. Writes use BEGIN
 * IMMEDIATE: the write lock is taken up front, so two writers never
 * deadlock upgrading a read transaction.
 *
 * The SQL sticks to what PostgreSQL also speaks (BIGINT, TEXT, RETURNING,
 * substr), so that the PostgreSQL back end can share the schema.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "store/store.h"

#define STMT_CACHE 24

struct zt_store {
	sqlite3 *db;
	pthread_mutex_t mu;
	int schema;
	/* prepared once, reused (bench_server: SQL parsing was the largest part of a read) */
	struct {
		const char *sql;
		sqlite3_stmt *st;
	} cache[STMT_CACHE];
};

/* The store whose transaction this thread holds (zt_store_begin), if any. */
static _Thread_local zt_store *tx_held;

/* ---- schema ------------------------------------------------------------------- */

static const struct migration {
	int version;
	const char *name;
	const char *sql;
} migrations[] = {
	{1, "objects, their history and the store revision",
	 "CREATE TABLE zt_meta (id INTEGER PRIMARY KEY CHECK (id = 1), revision BIGINT NOT NULL);"
	 "INSERT INTO zt_meta (id, revision) VALUES (1, 0);"
	 "CREATE TABLE zt_objects (kind TEXT NOT NULL, name TEXT NOT NULL,"
	 " version BIGINT NOT NULL, created BIGINT NOT NULL, updated_ms BIGINT NOT NULL,"
	 " body TEXT NOT NULL, PRIMARY KEY (kind, name));"
	 "CREATE TABLE zt_history (kind TEXT NOT NULL, name TEXT NOT NULL,"
	 " version BIGINT NOT NULL, updated_ms BIGINT NOT NULL, deleted INTEGER NOT NULL,"
	 " body TEXT, PRIMARY KEY (kind, name, version));"
	 "CREATE INDEX zt_history_version ON zt_history (version);"},
};

#define N_MIGRATIONS (sizeof migrations / sizeof migrations[0])

int zt_store_schema_latest(void)
{
	return migrations[N_MIGRATIONS - 1].version;
}

/* ---- small helpers ---------------------------------------------------------------- */

static int db_err(zt_store *s, int rc, zt_err *e, const char *what)
{
	if (rc == SQLITE_BUSY || rc == SQLITE_LOCKED)
		return zt_err_rule(e, ZT_ESTATE, "busy",
				   "%s: the store is busy (another process holds its write lock "
				   "for more than 5 s); try again",
				   what);
	if (rc == SQLITE_FULL)
		return zt_err_set(e, ZT_EIO, "%s: the disk is full", what);
	return zt_err_set(e, ZT_EIO, "%s: %s", what, s && s->db ? sqlite3_errmsg(s->db) :
								 sqlite3_errstr(rc));
}

/* Locks the handle unless this thread already holds it in a transaction. */
static int enter(zt_store *s)
{
	if (tx_held == s)
		return 0;
	pthread_mutex_lock(&s->mu);
	return 1;
}

int zt_store_in_transaction(const zt_store *s)
{
	return tx_held == s;
}

static void leave(zt_store *s, int locked)
{
	if (locked)
		pthread_mutex_unlock(&s->mu);
}

static int exec(zt_store *s, const char *sql, zt_err *e, const char *what)
{
	int rc = sqlite3_exec(s->db, sql, NULL, NULL, NULL);

	return rc == SQLITE_OK ? 0 : db_err(s, rc, e, what);
}

/*
 * A statement for sql (a string constant: the cache is keyed by its
 * address), from the handle's cache when it was prepared before. Always
 * under the handle's lock; hand it back with release().
 */
static int prepare(zt_store *s, const char *sql, sqlite3_stmt **st, zt_err *e)
{
	size_t i;

	for (i = 0; i < STMT_CACHE && s->cache[i].sql; i++)
		if (s->cache[i].sql == sql) {
			*st = s->cache[i].st;
			return 0;
		}
	int rc = sqlite3_prepare_v3(s->db, sql, -1, i < STMT_CACHE ? SQLITE_PREPARE_PERSISTENT : 0,
				    st, NULL);

	if (rc != SQLITE_OK)
		return db_err(s, rc, e, "preparing a query");
	if (i < STMT_CACHE) {
		s->cache[i].sql = sql;
		s->cache[i].st = *st;
	}
	return 0;
}

/* Done with a statement: reset for its next use, or finalized when it is not cached. */
static void release(zt_store *s, sqlite3_stmt *st)
{
	if (!st)
		return;
	for (size_t i = 0; i < STMT_CACHE && s->cache[i].sql; i++)
		if (s->cache[i].st == st) {
			sqlite3_reset(st);
			sqlite3_clear_bindings(st);
			return;
		}
	sqlite3_finalize(st);
}

static int bind_text(sqlite3_stmt *st, int i, const char *v)
{
	return sqlite3_bind_text(st, i, v, -1, SQLITE_STATIC);
}

int zt_store_kind_ok(const char *kind)
{
	size_t n = kind ? strlen(kind) : 0;

	if (n == 0 || n > ZT_STORE_KIND_MAX || kind[0] < 'a' || kind[0] > 'z')
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!((kind[i] >= 'a' && kind[i] <= 'z') || (kind[i] >= '0' && kind[i] <= '9') ||
		      kind[i] == '-'))
			return 0;
	return 1;
}

int zt_store_name_ok(const char *name)
{
	size_t n = name ? strlen(name) : 0;

	if (n == 0 || n > ZT_STORE_NAME_MAX || name[0] == '/' || strstr(name, ".."))
		return 0;
	for (size_t i = 0; i < n; i++) {
		char c = name[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      strchr("._:/@+=-", c)))
			return 0;
	}
	return 1;
}

static int check_kind(const char *kind, zt_err *e)
{
	if (!zt_store_kind_ok(kind))
		return zt_err_rule(e, ZT_EINVAL, "store-kind",
				   "an object kind is 1-%d of a-z 0-9 - starting with a letter",
				   ZT_STORE_KIND_MAX);
	return 0;
}

/* A kind and the name of one object (required). */
static int check_names(const char *kind, const char *name, zt_err *e)
{
	if (check_kind(kind, e) != 0)
		return -ZT_EINVAL;
	if (!zt_store_name_ok(name))
		return zt_err_rule(e, ZT_EINVAL, "store-name",
				   "an object name is 1-%d of A-Z a-z 0-9 . _ : / @ + = -, not "
				   "starting with '/' and without \"..\"",
				   ZT_STORE_NAME_MAX);
	return 0;
}

/* ---- opening ----------------------------------------------------------------------- */

static int migrate(zt_store *s, zt_err *e)
{
	sqlite3_stmt *st = NULL;
	int r, rc;

	if ((r = exec(s,
		      "CREATE TABLE IF NOT EXISTS zt_schema_migrations (version INTEGER PRIMARY KEY,"
		      " name TEXT NOT NULL, applied_ms BIGINT NOT NULL)",
		      e, "creating the migrations table")) != 0 ||
	    (r = prepare(s, "SELECT COALESCE(MAX(version), 0) FROM zt_schema_migrations", &st, e)) !=
		0)
		return r;
	rc = sqlite3_step(st);
	s->schema = rc == SQLITE_ROW ? sqlite3_column_int(st, 0) : -1;
	release(s, st);
	if (s->schema < 0)
		return db_err(s, rc, e, "reading the schema version");
	if (s->schema > zt_store_schema_latest())
		return zt_err_rule(e, ZT_ESTATE, "store-schema",
				   "the store's schema is version %d, newer than this zt knows (%d): "
				   "it was written by a newer zt; run that one",
				   s->schema, zt_store_schema_latest());
	for (size_t i = 0; i < N_MIGRATIONS; i++) {
		const struct migration *m = &migrations[i];

		if (m->version <= s->schema)
			continue;
		/* a migration and its record land together or not at all */
		if ((r = exec(s, "BEGIN IMMEDIATE", e, "starting a migration")) != 0)
			return r;
		/* another process may have migrated while this one waited for the lock */
		int now_at = -1;

		if (prepare(s, "SELECT COALESCE(MAX(version), 0) FROM zt_schema_migrations", &st, e) ==
		    0) {
			if (sqlite3_step(st) == SQLITE_ROW)
				now_at = sqlite3_column_int(st, 0);
			release(s, st);
		}
		if (now_at >= m->version) {
			exec(s, "COMMIT", NULL, "");
			s->schema = now_at;
			continue;
		}
		if ((r = exec(s, m->sql, e, m->name)) != 0 ||
		    (r = prepare(s,
				 "INSERT INTO zt_schema_migrations (version, name, applied_ms)"
				 " VALUES (?, ?, ?)",
				 &st, e)) != 0) {
			exec(s, "ROLLBACK", NULL, "");
			return zt_err_wrap(e, "migrating the store to schema %d", m->version);
		}
		sqlite3_bind_int(st, 1, m->version);
		bind_text(st, 2, m->name);
		sqlite3_bind_int64(st, 3, zt_now_ms());
		rc = sqlite3_step(st);
		release(s, st);
		if (rc != SQLITE_DONE || (r = exec(s, "COMMIT", e, "committing a migration")) != 0) {
			exec(s, "ROLLBACK", NULL, "");
			return rc != SQLITE_DONE ? db_err(s, rc, e, "recording a migration") : r;
		}
		s->schema = m->version;
		char v[12];

		snprintf(v, sizeof v, "%d", m->version);
		zt_log(ZT_LOG_INFO, "store migrated", "schema", v, "migration", m->name, NULL);
	}
	return 0;
}

zt_store *zt_store_open(const char *url, zt_err *e)
{
	const char *path = url;
	zt_store *s;
	int fd, rc;

	if (!url || !*url) {
		zt_err_set(e, ZT_EINVAL, "no store given (sqlite:PATH or a path)");
		return NULL;
	}
	if (strncmp(url, "sqlite://", 9) == 0) {
		zt_err_rule(e, ZT_EINVAL, "store-url",
			    "store \"%.100s\": write sqlite:/absolute/path or sqlite:relative/path",
			    url);
		return NULL;
	}
	if (strncmp(url, "sqlite:", 7) == 0)
		path = url + 7;
	else if (strstr(url, "://")) {
		zt_err_rule(e, ZT_EINVAL, "store-url",
			    "store \"%.100s\": only sqlite:PATH is supported in this version", url);
		return NULL;
	}
	/* created 0600 before SQLite sees it: it holds the whole control plane */
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0) {
		zt_err_set(e, ZT_EIO, "cannot open the store %s: %s", path, strerror(errno));
		return NULL;
	}
	close(fd);
	if (!(s = calloc(1, sizeof *s))) {
		zt_err_set(e, ZT_ENOMEM, "out of memory");
		return NULL;
	}
	pthread_mutex_init(&s->mu, NULL);
	rc = sqlite3_open_v2(path, &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_FULLMUTEX, NULL);
	if (rc != SQLITE_OK) {
		db_err(s, rc, e, "opening the store");
		zt_err_wrap(e, "%s", path);
		goto fail;
	}
	sqlite3_busy_timeout(s->db, 5000);
	sqlite3_extended_result_codes(s->db, 0);
	/* switching to WAL takes a lock SQLite does not wait for: wait here */
	for (int i = 0;; i++) {
		rc = sqlite3_exec(s->db, "PRAGMA journal_mode=WAL", NULL, NULL, NULL);
		if (rc != SQLITE_BUSY || i == 500)
			break;
		usleep(10000);
	}
	if (rc != SQLITE_OK) {
		db_err(s, rc, e, "setting WAL mode");
		zt_err_wrap(e, "%s", path);
		goto fail;
	}
	if (exec(s, "PRAGMA synchronous=FULL", e, "setting synchronous") != 0 ||
	    exec(s, "PRAGMA foreign_keys=ON", e, "setting foreign keys") != 0 || migrate(s, e) != 0) {
		zt_err_wrap(e, "%s", path);
		goto fail;
	}
	return s;
fail:
	zt_store_close(s);
	return NULL;
}

void zt_store_close(zt_store *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < STMT_CACHE && s->cache[i].sql; i++)
		sqlite3_finalize(s->cache[i].st);
	if (s->db)
		sqlite3_close_v2(s->db);
	pthread_mutex_destroy(&s->mu);
	free(s);
}

int zt_store_schema_version(zt_store *s)
{
	return s->schema;
}

/* ---- transactions ---------------------------------------------------------------- */

int zt_store_begin(zt_store *s, zt_err *e)
{
	int r;

	if (tx_held == s)
		return zt_err_set(e, ZT_ESTATE, "a store transaction is already open on this thread");
	pthread_mutex_lock(&s->mu);
	if ((r = exec(s, "BEGIN IMMEDIATE", e, "starting a transaction")) != 0) {
		pthread_mutex_unlock(&s->mu);
		return r;
	}
	tx_held = s;
	return 0;
}

static int tx_mine(zt_store *s)
{
	return tx_held == s;
}

int zt_store_commit(zt_store *s, zt_err *e)
{
	int r;

	if (!tx_mine(s))
		return zt_err_set(e, ZT_ESTATE, "no store transaction is open on this thread");
	if ((r = exec(s, "COMMIT", e, "committing")) != 0)
		exec(s, "ROLLBACK", NULL, "");
	tx_held = NULL;
	pthread_mutex_unlock(&s->mu);
	return r;
}

void zt_store_rollback(zt_store *s)
{
	if (!tx_mine(s))
		return;
	exec(s, "ROLLBACK", NULL, "");
	tx_held = NULL;
	pthread_mutex_unlock(&s->mu);
}

/* ---- reading rows ---------------------------------------------------------------- */

void zt_object_clear(zt_object *o)
{
	if (!o)
		return;
	json_decref(o->body);
	memset(o, 0, sizeof *o);
}

void zt_objects_free(zt_object *v, size_t n)
{
	for (size_t i = 0; v && i < n; i++)
		zt_object_clear(&v[i]);
	free(v);
}

/*
 * Columns: kind, name, version, created, updated_ms, deleted, body. The
 * store wrote every body, but a file can be edited: bodies are parsed with
 * limits like any input.
 */
static int row_object(sqlite3_stmt *st, zt_object *o, zt_err *e)
{
	const char *kind = (const char *)sqlite3_column_text(st, 0);
	const char *name = (const char *)sqlite3_column_text(st, 1);
	const char *body = (const char *)sqlite3_column_text(st, 6);
	int blen = sqlite3_column_bytes(st, 6);

	memset(o, 0, sizeof *o);
	if (!kind || !name || strlen(kind) > ZT_STORE_KIND_MAX || strlen(name) > ZT_STORE_NAME_MAX)
		return zt_err_rule(e, ZT_EPARSE, "store-damaged", "the store holds a malformed row");
	snprintf(o->kind, sizeof o->kind, "%s", kind);
	snprintf(o->name, sizeof o->name, "%s", name);
	o->version = (uint64_t)sqlite3_column_int64(st, 2);
	o->created = (uint64_t)sqlite3_column_int64(st, 3);
	o->updated_ms = sqlite3_column_int64(st, 4);
	o->deleted = sqlite3_column_int(st, 5);
	if (o->deleted)
		return 0;
	if (!body || (size_t)blen > ZT_STORE_BODY_MAX ||
	    !(o->body = zt_json_parse(body, (size_t)blen, e)) || !json_is_object(o->body)) {
		json_decref(o->body);
		o->body = NULL;
		return zt_err_rule(e, ZT_EPARSE, "store-damaged",
				   "the body of %s/%s (version %llu) in the store is not a JSON "
				   "object: the store file was altered",
				   o->kind, o->name, (unsigned long long)o->version);
	}
	return 0;
}

/* Steps st to the end, collecting up to limit rows. */
static int collect(zt_store *s, sqlite3_stmt *st, size_t limit, zt_object **out, size_t *n,
		   zt_err *e)
{
	zt_object *v = NULL;
	int rc, r = 0;

	*out = NULL;
	*n = 0;
	if (limit == 0)
		return 0;
	if (!(v = calloc(limit, sizeof *v)))
		return zt_err_set(e, ZT_ENOMEM, "out of memory");
	while ((rc = sqlite3_step(st)) == SQLITE_ROW && *n < limit) {
		if ((r = row_object(st, &v[*n], e)) != 0)
			break;
		(*n)++;
	}
	if (r == 0 && rc != SQLITE_ROW && rc != SQLITE_DONE)
		r = db_err(s, rc, e, "reading the store");
	if (r != 0) {
		zt_objects_free(v, *n + 1);
		*n = 0;
		return r;
	}
	*out = v;
	return 0;
}

#define OBJ_COLS "kind, name, version, created, updated_ms, 0, body"
#define HIST_COLS "kind, name, version, 0, updated_ms, deleted, body"

int zt_store_get(zt_store *s, const char *kind, const char *name, zt_object *out, zt_err *e)
{
	sqlite3_stmt *st = NULL;
	int r, rc, locked;

	memset(out, 0, sizeof *out);
	if ((r = check_names(kind, name, e)) != 0)
		return r;
	locked = enter(s);
	if ((r = prepare(s, "SELECT " OBJ_COLS " FROM zt_objects WHERE kind = ? AND name = ?", &st,
			 e)) != 0)
		goto out;
	bind_text(st, 1, kind);
	bind_text(st, 2, name);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		r = row_object(st, out, e);
	else if (rc == SQLITE_DONE)
		r = zt_err_rule(e, ZT_ENOENT, "not-found", "there is no %s named \"%s\"", kind, name);
	else
		r = db_err(s, rc, e, "reading the store");
out:
	release(s, st);
	leave(s, locked);
	return r;
}

/* ---- writing ------------------------------------------------------------------------ */

/* The current version of kind/name, 0 if there is none. */
static int current_version(zt_store *s, const char *kind, const char *name, uint64_t *v,
			   zt_err *e)
{
	sqlite3_stmt *st = NULL;
	int r, rc;

	*v = 0;
	if ((r = prepare(s, "SELECT version FROM zt_objects WHERE kind = ? AND name = ?", &st, e)) !=
	    0)
		return r;
	bind_text(st, 1, kind);
	bind_text(st, 2, name);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*v = (uint64_t)sqlite3_column_int64(st, 0);
	else if (rc != SQLITE_DONE)
		r = db_err(s, rc, e, "reading the store");
	release(s, st);
	return r;
}

static int next_revision(zt_store *s, uint64_t *rev, zt_err *e)
{
	sqlite3_stmt *st = NULL;
	int r, rc;

	if ((r = prepare(s, "UPDATE zt_meta SET revision = revision + 1 WHERE id = 1 RETURNING revision",
			 &st, e)) != 0)
		return r;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*rev = (uint64_t)sqlite3_column_int64(st, 0);
	else
		r = db_err(s, rc, e, "advancing the store revision");
	release(s, st);
	return r;
}

static int run(zt_store *s, sqlite3_stmt *st, zt_err *e, const char *what)
{
	int rc = sqlite3_step(st);

	release(s, st);
	return rc == SQLITE_DONE ? 0 : db_err(s, rc, e, what);
}

/* The version checks shared by put and delete (HTTP: 409 or 404). */
static int check_expect(const char *kind, const char *name, uint64_t have, uint64_t expect,
			zt_err *e)
{
	if (expect == 0 && have != 0)
		return zt_err_rule(e, ZT_EEXIST, "exists",
				   "%s \"%s\" exists already (version %llu); update it with that "
				   "version",
				   kind, name, (unsigned long long)have);
	if (expect != 0 && have == 0)
		return zt_err_rule(e, ZT_ENOENT, "not-found", "there is no %s named \"%s\"", kind,
				   name);
	if (expect != 0 && have != expect)
		return zt_err_rule(e, ZT_ECONFLICT, "conflict",
				   "%s \"%s\" changed since version %llu (it is at %llu now); read "
				   "it again and reapply your change",
				   kind, name, (unsigned long long)expect, (unsigned long long)have);
	return 0;
}

/*
 * A write in its own transaction unless the caller has one open; inside
 * the caller's, a savepoint, so that a write that fails halfway leaves
 * nothing of itself behind (no row without its history, no revision gap).
 */
static int write_begin(zt_store *s, int *own, zt_err *e)
{
	*own = !tx_mine(s);
	if (!*own)
		return exec(s, "SAVEPOINT zt_write", e, "starting a write");
	return zt_store_begin(s, e);
}

static int write_end(zt_store *s, int own, int r, zt_err *e)
{
	if (!own) {
		if (r != 0)
			exec(s, "ROLLBACK TO zt_write", NULL, "");
		exec(s, "RELEASE zt_write", NULL, "");
		return r;
	}
	if (r != 0) {
		zt_store_rollback(s);
		return r;
	}
	return zt_store_commit(s, e);
}

int zt_store_put(zt_store *s, const char *kind, const char *name, const json_t *body,
		 uint64_t expect, uint64_t *version, zt_err *e)
{
	sqlite3_stmt *st = NULL;
	uint64_t have, rev = 0;
	char *text = NULL;
	int64_t t;
	int r, own;

	*version = 0;
	if ((r = check_names(kind, name, e)) != 0)
		return r;
	if (!json_is_object(body))
		return zt_err_rule(e, ZT_EINVAL, "store-body", "an object's body is a JSON object");
	if (!(text = json_dumps(body, JSON_COMPACT | JSON_SORT_KEYS)))
		return zt_err_set(e, ZT_ENOMEM, "out of memory");
	if (strlen(text) > ZT_STORE_BODY_MAX) {
		free(text);
		return zt_err_rule(e, ZT_ELIMIT, "store-body", "an object's body is at most %u bytes",
				   ZT_STORE_BODY_MAX);
	}
	/* what is written must read back: the same parser, the same limits */
	json_t *back = zt_json_parse(text, strlen(text), e);

	if (!back) {
		free(text);
		return zt_err_rule(e, ZT_EINVAL, "store-body",
				   "an object's body holds text without NUL characters, nested at "
				   "most %d deep",
				   ZT_DOC_MAX_DEPTH);
	}
	json_decref(back);
	if ((r = write_begin(s, &own, e)) != 0) {
		free(text);
		return r;
	}
	t = zt_now_ms();
	if ((r = current_version(s, kind, name, &have, e)) != 0 ||
	    (r = check_expect(kind, name, have, expect, e)) != 0 ||
	    (r = next_revision(s, &rev, e)) != 0)
		goto out;
	if (have == 0)
		r = prepare(s,
			    "INSERT INTO zt_objects (kind, name, version, created, updated_ms, body)"
			    " VALUES (?1, ?2, ?3, ?3, ?4, ?5)",
			    &st, e);
	else
		r = prepare(s,
			    "UPDATE zt_objects SET version = ?3, updated_ms = ?4, body = ?5"
			    " WHERE kind = ?1 AND name = ?2",
			    &st, e);
	if (r != 0)
		goto out;
	bind_text(st, 1, kind);
	bind_text(st, 2, name);
	sqlite3_bind_int64(st, 3, (sqlite3_int64)rev);
	sqlite3_bind_int64(st, 4, t);
	bind_text(st, 5, text);
	if ((r = run(s, st, e, "writing an object")) != 0 ||
	    (r = prepare(s,
			 "INSERT INTO zt_history (kind, name, version, updated_ms, deleted, body)"
			 " VALUES (?, ?, ?, ?, 0, ?)",
			 &st, e)) != 0)
		goto out;
	bind_text(st, 1, kind);
	bind_text(st, 2, name);
	sqlite3_bind_int64(st, 3, (sqlite3_int64)rev);
	sqlite3_bind_int64(st, 4, t);
	bind_text(st, 5, text);
	r = run(s, st, e, "recording an object's history");
out:
	free(text);
	r = write_end(s, own, r, e);
	if (r == 0)
		*version = rev;
	return r;
}

int zt_store_delete(zt_store *s, const char *kind, const char *name, uint64_t expect,
		    uint64_t *version, zt_err *e)
{
	sqlite3_stmt *st = NULL;
	uint64_t have, rev = 0;
	int r, own;

	*version = 0;
	if ((r = check_names(kind, name, e)) != 0)
		return r;
	if (expect == 0)
		return zt_err_rule(e, ZT_EINVAL, "store-version",
				   "a delete names the version it read (it is not a create)");
	if ((r = write_begin(s, &own, e)) != 0)
		return r;
	if ((r = current_version(s, kind, name, &have, e)) != 0 ||
	    (r = check_expect(kind, name, have, expect, e)) != 0 ||
	    (r = next_revision(s, &rev, e)) != 0 ||
	    (r = prepare(s, "DELETE FROM zt_objects WHERE kind = ? AND name = ?", &st, e)) != 0)
		goto out;
	bind_text(st, 1, kind);
	bind_text(st, 2, name);
	if ((r = run(s, st, e, "deleting an object")) != 0 ||
	    (r = prepare(s,
			 "INSERT INTO zt_history (kind, name, version, updated_ms, deleted, body)"
			 " VALUES (?, ?, ?, ?, 1, NULL)",
			 &st, e)) != 0)
		goto out;
	bind_text(st, 1, kind);
	bind_text(st, 2, name);
	sqlite3_bind_int64(st, 3, (sqlite3_int64)rev);
	sqlite3_bind_int64(st, 4, zt_now_ms());
	r = run(s, st, e, "recording a deletion");
out:
	r = write_end(s, own, r, e);
	if (r == 0)
		*version = rev;
	return r;
}

/* ---- lists, history, changes ---------------------------------------------------------- */

static int check_limit(size_t limit, zt_err *e)
{
	if (limit == 0 || limit > ZT_STORE_LIST_MAX)
		return zt_err_rule(e, ZT_EINVAL, "store-limit", "a list returns 1-%d objects",
				   ZT_STORE_LIST_MAX);
	return 0;
}

int zt_store_list(zt_store *s, const char *kind, const char *prefix, const char *after,
		  size_t limit, zt_object **out, size_t *n, zt_err *e)
{
	sqlite3_stmt *st = NULL;
	int r, locked;

	*out = NULL;
	*n = 0;
	if ((r = check_kind(kind, e)) != 0 || (r = check_limit(limit, e)) != 0)
		return r;
	if (!prefix)
		prefix = "";
	if (!after)
		after = "";
	if (strlen(prefix) > ZT_STORE_NAME_MAX || strlen(after) > ZT_STORE_NAME_MAX)
		return zt_err_rule(e, ZT_EINVAL, "store-name", "a prefix or cursor is at most %d bytes",
				   ZT_STORE_NAME_MAX);
	locked = enter(s);
	if ((r = prepare(s,
			 "SELECT " OBJ_COLS " FROM zt_objects WHERE kind = ?1"
			 " AND substr(name, 1, length(?2)) = ?2 AND name > ?3 ORDER BY name LIMIT ?4",
			 &st, e)) == 0) {
		bind_text(st, 1, kind);
		bind_text(st, 2, prefix);
		bind_text(st, 3, after);
		sqlite3_bind_int64(st, 4, (sqlite3_int64)limit);
		r = collect(s, st, limit, out, n, e);
	}
	release(s, st);
	leave(s, locked);
	return r;
}

int zt_store_history(zt_store *s, const char *kind, const char *name, uint64_t before,
		     size_t limit, zt_object **out, size_t *n, zt_err *e)
{
	sqlite3_stmt *st = NULL;
	int r, locked;

	*out = NULL;
	*n = 0;
	if ((r = check_names(kind, name, e)) != 0 || (r = check_limit(limit, e)) != 0)
		return r;
	locked = enter(s);
	if ((r = prepare(s,
			 "SELECT " HIST_COLS " FROM zt_history WHERE kind = ?1 AND name = ?2"
			 " AND (?3 = 0 OR version < ?3) ORDER BY version DESC LIMIT ?4",
			 &st, e)) == 0) {
		bind_text(st, 1, kind);
		bind_text(st, 2, name);
		sqlite3_bind_int64(st, 3, (sqlite3_int64)before);
		sqlite3_bind_int64(st, 4, (sqlite3_int64)limit);
		r = collect(s, st, limit, out, n, e);
	}
	release(s, st);
	leave(s, locked);
	return r;
}

int zt_store_history_get(zt_store *s, const char *kind, const char *name, uint64_t version,
			 zt_object *out, zt_err *e)
{
	sqlite3_stmt *st = NULL;
	int r, rc, locked;

	memset(out, 0, sizeof *out);
	if ((r = check_names(kind, name, e)) != 0)
		return r;
	locked = enter(s);
	if ((r = prepare(s,
			 "SELECT " HIST_COLS " FROM zt_history WHERE kind = ? AND name = ?"
			 " AND version = ?",
			 &st, e)) != 0)
		goto out;
	bind_text(st, 1, kind);
	bind_text(st, 2, name);
	sqlite3_bind_int64(st, 3, (sqlite3_int64)version);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		r = row_object(st, out, e);
	else if (rc == SQLITE_DONE)
		r = zt_err_rule(e, ZT_ENOENT, "not-found", "%s \"%s\" has no version %llu", kind,
				name, (unsigned long long)version);
	else
		r = db_err(s, rc, e, "reading the store");
out:
	release(s, st);
	leave(s, locked);
	return r;
}

uint64_t zt_store_revision(zt_store *s)
{
	sqlite3_stmt *st = NULL;
	uint64_t rev = 0;
	int locked = enter(s);

	if (prepare(s, "SELECT revision FROM zt_meta WHERE id = 1", &st, NULL) == 0 &&
	    sqlite3_step(st) == SQLITE_ROW)
		rev = (uint64_t)sqlite3_column_int64(st, 0);
	release(s, st);
	leave(s, locked);
	return rev;
}

int zt_store_changes(zt_store *s, uint64_t since, const char *kind, size_t limit,
		     zt_object **out, size_t *n, zt_err *e)
{
	sqlite3_stmt *st = NULL;
	int r, locked;

	*out = NULL;
	*n = 0;
	if ((kind && (r = check_kind(kind, e)) != 0) || (r = check_limit(limit, e)) != 0)
		return r;
	locked = enter(s);
	if ((r = prepare(s,
			 "SELECT " HIST_COLS " FROM zt_history WHERE version > ?1"
			 " AND (?2 IS NULL OR kind = ?2) ORDER BY version LIMIT ?3",
			 &st, e)) == 0) {
		sqlite3_bind_int64(st, 1, (sqlite3_int64)since);
		if (kind)
			bind_text(st, 2, kind);
		else
			sqlite3_bind_null(st, 2);
		sqlite3_bind_int64(st, 3, (sqlite3_int64)limit);
		r = collect(s, st, limit, out, n, e);
	}
	release(s, st);
	leave(s, locked);
	return r;
}
