/*
 * store: the control plane's state, behind one interface.
 *
 * Everything the server keeps (organizations, tenants, workspaces,
 * services, policies, role bindings, tokens...) is an object: a kind, a
 * name, a JSON body and a resource version. Every change gets the next
 * store-wide revision, which becomes the object's version; an update or
 * delete names the version it read and is refused with ZT_ECONFLICT when
 * someone changed the object in between (HTTP 409), so concurrent
 * administrators never overwrite each other silently. Every change is kept
 * in the object's history (rollback) and in the change feed (watches).
 *
 * Back ends: SQLite (embedded, the default: one file in WAL mode); the SQL
 * is kept portable for PostgreSQL. Schema migrations are versioned and
 * applied at open, in one transaction.
 *
 * A zt_store handle may be shared by threads: calls are serialized on it.
 * Depends on core (and libsqlite3).
 */
#ifndef ZT_STORE_H
#define ZT_STORE_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "core/core.h"

#define ZT_STORE_KIND_MAX 32      /* [a-z][a-z0-9-]* */
#define ZT_STORE_NAME_MAX 253     /* [A-Za-z0-9._:/@+=-], no "..", not starting with '/' */
#define ZT_STORE_BODY_MAX (1u << 20) /* bytes of a body, serialized */
#define ZT_STORE_LIST_MAX 1000    /* objects in one list, history or changes call */

typedef struct zt_store zt_store;

/*
 * Opens the store at url: "sqlite:PATH" or a plain PATH (created if
 * missing, mode 0600), and applies pending migrations. A store whose schema
 * is newer than this zt knows is refused. Close with zt_store_close.
 */
zt_store *zt_store_open(const char *url, zt_err *e);
void zt_store_close(zt_store *s);
/* The schema version in force, and the newest this zt knows. */
int zt_store_schema_version(zt_store *s);
int zt_store_schema_latest(void);

typedef struct zt_object {
	char kind[ZT_STORE_KIND_MAX + 1];
	char name[ZT_STORE_NAME_MAX + 1];
	uint64_t version;   /* the revision of its last change */
	uint64_t created;   /* the revision that created it (objects only) */
	int64_t updated_ms; /* when that change was made */
	int deleted;        /* history and changes: this change deleted it */
	json_t *body;       /* owned; NULL for a deletion */
} zt_object;

/* Frees o's body and zeroes it. */
void zt_object_clear(zt_object *o);
/* Frees an array that list, history or changes returned. */
void zt_objects_free(zt_object *v, size_t n);

/* 1 if kind / name are valid (the limits above). */
int zt_store_kind_ok(const char *kind);
int zt_store_name_ok(const char *name);

/*
 * Transactions. zt_store_begin takes the store's write lock (BEGIN
 * IMMEDIATE) and holds the handle for this thread until commit or
 * rollback; puts and deletes outside a transaction are one each. The
 * server writes an object and its audit entry inside one: a failed audit
 * append rolls the change back.
 */
int zt_store_begin(zt_store *s, zt_err *e) ZT_MUST_CHECK;
int zt_store_commit(zt_store *s, zt_err *e) ZT_MUST_CHECK;
void zt_store_rollback(zt_store *s);

/* The object kind/name; ZT_ENOENT when there is none. */
int zt_store_get(zt_store *s, const char *kind, const char *name, zt_object *out,
		 zt_err *e) ZT_MUST_CHECK;

/*
 * Creates (expect 0: ZT_EEXIST if it exists) or replaces (expect = the
 * version read: ZT_ECONFLICT if it changed since, ZT_ENOENT if it is gone)
 * the object; *version is its new version. The body must be a JSON object
 * of at most ZT_STORE_BODY_MAX bytes.
 */
int zt_store_put(zt_store *s, const char *kind, const char *name, const json_t *body,
		 uint64_t expect, uint64_t *version, zt_err *e) ZT_MUST_CHECK;
/* Deletes the object at version expect (ZT_ECONFLICT, ZT_ENOENT as above). */
int zt_store_delete(zt_store *s, const char *kind, const char *name, uint64_t expect,
		    uint64_t *version, zt_err *e) ZT_MUST_CHECK;

/*
 * Objects of a kind whose names start with prefix ("" for all), in name
 * order, after the name `after` ("" from the start: pagination), at most
 * limit (<= ZT_STORE_LIST_MAX). Caller frees with zt_objects_free.
 */
int zt_store_list(zt_store *s, const char *kind, const char *prefix, const char *after,
		  size_t limit, zt_object **out, size_t *n, zt_err *e) ZT_MUST_CHECK;
/* The object's changes, newest first, before version `before` (0: from the newest). */
int zt_store_history(zt_store *s, const char *kind, const char *name, uint64_t before,
		     size_t limit, zt_object **out, size_t *n, zt_err *e) ZT_MUST_CHECK;
/* The object as it was at one version (a change in its history); ZT_ENOENT if none. */
int zt_store_history_get(zt_store *s, const char *kind, const char *name, uint64_t version,
			 zt_object *out, zt_err *e) ZT_MUST_CHECK;

/* The store's latest revision (0 for a new store). */
uint64_t zt_store_revision(zt_store *s);
/* 1 when the calling thread holds a transaction on s (zt_store_begin). */
int zt_store_in_transaction(const zt_store *s);
/*
 * Changes after revision `since`, oldest first, of one kind (NULL: all),
 * at most limit: what a watcher applies to catch up.
 */
int zt_store_changes(zt_store *s, uint64_t since, const char *kind, size_t limit,
		     zt_object **out, size_t *n, zt_err *e) ZT_MUST_CHECK;

#endif
