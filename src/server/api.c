/*
 * server/api.c: the /v1 API (docs/api.md). One function per resource;
 * every request is authenticated (but health and the public bundle),
 * authorized against role bindings, and every change is committed only
 * after its audit entry is durable.
 */
#include <stdlib.h>
#include <string.h>

#include "crypto/crypto.h"
#include "server/server_int.h"

#define SPEC_MAX_BYTES 65536
#define SPEC_MAX_DEPTH 8
#define SEGMENTS_MAX 10

/* The hierarchy, top down: the path word for a collection and the object kind. */
static const struct level {
	const char *plural;
	const char *kind;
} levels[] = {{"orgs", "org"}, {"tenants", "tenant"}, {"workspaces", "workspace"},
	      {"services", "service"}};

#define NLEVELS (sizeof levels / sizeof levels[0])

int srv_audit(srv *s, const zt_http_req *q, const char *principal, const char *action,
	      const char *target, const char *decision, json_t *details, zt_err *e)
{
	uint64_t index;
	int r = srv_audit_submit(s, q, principal, action, target, decision, details, &index, e);

	return r ? r : zt_audit_wait(s->audit, index, e);
}

int srv_audit_submit(srv *s, const zt_http_req *q, const char *principal, const char *action,
		     const char *target, const char *decision, json_t *details, uint64_t *index,
		     zt_err *e)
{
	json_t *ev = json_pack("{s:s,s:s,s:s,s:s,s:s}", "actor", principal[0] ? principal : "anonymous",
			       "action", action, "target", target[0] ? target : "/", "decision",
			       decision, "request_id", q->request_id);
	zt_buf entry;
	int r;

	if (!ev) {
		json_decref(details);
		return zt_err_set(e, ZT_ENOMEM, "out of memory");
	}
	if (details)
		json_object_set_new(ev, "details", details);
	zt_buf_init(&entry, ZT_AUDIT_ENTRY_MAX + 1);
	r = zt_audit_entry_build(ev, zt_audit_hmac_key(s->audit), zt_now_ms(), &entry, e);
	if (r == 0)
		r = zt_audit_submit(s->audit, (const char *)entry.p, entry.len, index, e);
	json_decref(ev);
	zt_buf_free(&entry, 0);
	return r;
}

/* ---- helpers ------------------------------------------------------------------------- */

/* A name segment: a DNS label, [a-z0-9]([-a-z0-9]{0,61}[a-z0-9])? */
static int segment_ok(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > 63 || s[0] == '-' || s[n - 1] == '-')
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '-'))
			return 0;
	return 1;
}

/* Splits "/v1/a/b/c" into segments after "v1"; -1 if it is not under /v1. */
static int split_path(const char *path, char seg[][64], int max)
{
	char tmp[2048];
	int n = 0;

	if (strncmp(path, "/v1/", 4) != 0 || strlen(path) >= sizeof tmp)
		return -1;
	snprintf(tmp, sizeof tmp, "%s", path + 4);
	for (char *save = NULL, *t = strtok_r(tmp, "/", &save); t; t = strtok_r(NULL, "/", &save)) {
		if (n == max || strlen(t) >= 64)
			return -1;
		snprintf(seg[n++], 64, "%s", t);
	}
	return n;
}

/* The value of key in a query string ("a=1&b=2"), copied; 0 if present. */
int srv_query(const char *query, const char *key, char *out, size_t cap)
{
	size_t kl = strlen(key);

	for (const char *p = query; p && *p;) {
		const char *amp = strchr(p, '&'), *end = amp ? amp : p + strlen(p);

		if ((size_t)(end - p) > kl && !strncmp(p, key, kl) && p[kl] == '=') {
			/* RFC 3986 2.1: %XX is a byte; a NUL or a bad escape is refused */
			size_t o = 0;

			for (const char *v = p + kl + 1; v < end; v++) {
				int ch = (unsigned char)*v;

				if (ch == '%') {
					if (end - v < 3 || zt_hex_value((unsigned char)v[1]) < 0 ||
					    zt_hex_value((unsigned char)v[2]) < 0)
						return -1;
					ch = zt_hex_value((unsigned char)v[1]) << 4 |
					     zt_hex_value((unsigned char)v[2]);
					v += 2;
					if (ch == 0)
						return -1;
				}
				if (o + 1 >= cap)
					return -1;
				out[o++] = (char)ch;
			}
			out[o] = '\0';
			return 0;
		}
		p = amp ? amp + 1 : NULL;
	}
	return 1;
}

int srv_query_u64(const char *query, const char *key, uint64_t *out, int *present)
{
	char v[24], *end;

	int q = srv_query(query, key, v, sizeof v);

	*present = q <= 0;
	if (q != 0)
		return q > 0 ? 0 : -1; /* absent, or too long or badly escaped */
	if (v[0] < '0' || v[0] > '9')
		return -1;
	*out = strtoull(v, &end, 10);
	return *end ? -1 : 0;
}

/* ---- lists: one page at a time ------------------------------------------------------- */

int srv_page_parse(const zt_http_req *q, zt_http_resp *r, srv_page *p)
{
	uint64_t limit = SRV_PAGE_DEFAULT;
	int present, qa;

	p->limit = SRV_PAGE_DEFAULT;
	p->after[0] = '\0';
	if (srv_query_u64(q->query, "limit", &limit, &present) != 0 || limit == 0 ||
	    limit > ZT_STORE_LIST_MAX) {
		zt_http_resp_error(r, q, 400, "invalid",
				   "?limit is a number of items from 1 to %d (%d when not given)",
				   ZT_STORE_LIST_MAX, SRV_PAGE_DEFAULT);
		return -1;
	}
	qa = srv_query(q->query, "after", p->after, sizeof p->after);
	if (qa < 0 || (qa == 0 && !zt_store_name_ok(p->after))) {
		p->after[0] = '\0';
		zt_http_resp_error(r, q, 400, "invalid",
				   "?after takes the \"next\" of an earlier page: a name (at most %d "
				   "of A-Z a-z 0-9 . _ : / @ + = -)",
				   ZT_STORE_NAME_MAX);
		return -1;
	}
	p->limit = (size_t)limit;
	return 0;
}

int srv_store_walk(srv *s, const char *kind, const char *prefix, const char *after, size_t chunk,
		   srv_visit_fn visit, void *arg, zt_err *e)
{
	char from[ZT_STORE_NAME_MAX + 1];

	snprintf(from, sizeof from, "%s", after ? after : "");
	if (chunk == 0 || chunk > ZT_STORE_LIST_MAX)
		chunk = ZT_STORE_LIST_MAX;
	for (;;) {
		zt_object *v;
		size_t n;
		int stop = 0;

		if (zt_store_list(s->store, kind, prefix, from, chunk, &v, &n, e) != 0)
			return -1;
		for (size_t i = 0; i < n && !stop; i++)
			if ((stop = visit(arg, &v[i])) < 0) {
				zt_objects_free(v, n);
				zt_err_set(e, ZT_ENOMEM, "out of memory listing %s", kind);
				return -1;
			}
		/* a short read is the end of the kind (or of the prefix) */
		if (stop || n < chunk) {
			zt_objects_free(v, n);
			return 0;
		}
		snprintf(from, sizeof from, "%s", v[n - 1].name);
		zt_objects_free(v, n);
		/* a filter that keeps few reads on in larger steps */
		chunk = chunk > ZT_STORE_LIST_MAX / 2 ? ZT_STORE_LIST_MAX : chunk * 2;
	}
}

struct page_fill {
	srv *s;
	size_t limit;
	json_t *items;
	char last[ZT_STORE_NAME_MAX + 1];
	srv_item_fn item;
	void *arg;
};

static int page_visit(void *arg, const zt_object *o)
{
	struct page_fill *f = arg;
	json_t *j = NULL;

	if (f->item) {
		if (f->item(f->s, o, f->arg, &j) != 0)
			return -1;
		if (!j)
			return 0; /* not on the list (not the caller's to see) */
	} else if (!(j = srv_object_json(o))) {
		return -1;
	}
	if (json_array_append_new(f->items, j) != 0)
		return -1;
	snprintf(f->last, sizeof f->last, "%s", o->name);
	return json_array_size(f->items) == f->limit;
}

void srv_list_page(srv *s, const zt_http_req *q, zt_http_resp *r, const srv_page *p,
		   const char *kind, const char *prefix, srv_item_fn item, void *arg)
{
	struct page_fill f = {s, p->limit, json_array(), "", item, arg};
	zt_err e;

	if (!f.items) {
		zt_http_resp_error(r, q, 500, "internal", "out of memory");
		return;
	}
	if (srv_store_walk(s, kind, prefix, p->after, p->limit, page_visit, &f, &e) != 0) {
		json_decref(f.items);
		srv_fail(r, q, &e);
		return;
	}
	json_t *out = json_pack("{s:o}", "items", f.items);

	/* a full page says where the next one starts; a short one is the last */
	if (out && json_array_size(f.items) == p->limit)
		json_object_set_new(out, "next", json_string(f.last));
	zt_http_resp_json(r, 200, out);
}

json_t *srv_object_json(const zt_object *o)
{
	char t[32];

	zt_audit_time_format(o->updated_ms, t);
	json_t *j = json_pack("{s:s,s:s,s:I,s:I,s:s}", "kind", o->kind, "name", o->name, "version",
			      (json_int_t)o->version, "created", (json_int_t)o->created, "updated", t);

	json_t *member;
	const char *k;

	/* the body's members beside the envelope (a token's hash never leaves) */
	if (j && o->body)
		json_object_foreach(o->body, k, member)
			if (strcmp(k, "sha256") && !json_object_get(j, k))
				json_object_set(j, k, member);
	return j;
}

/* Maps a store or audit error to a status. */
void srv_fail(zt_http_resp *r, const zt_http_req *q, const zt_err *e)
{
	int status = 500;
	const char *code = "internal";

	switch (e->code) {
	case ZT_ENOENT: status = 404; code = "not-found"; break;
	case ZT_EEXIST: status = 409; code = "exists"; break;
	case ZT_ECONFLICT: status = 409; code = "conflict"; break;
	case ZT_EINVAL: case ZT_EPARSE: status = 400; code = "invalid"; break;
	case ZT_ELIMIT: status = 413; code = "too-large"; break;
	case ZT_ESTATE: status = 503; code = "busy"; break;
	case ZT_EIO: status = 503; code = "unavailable"; break;
	default: break;
	}
	zt_http_resp_error(r, q, status, code, "%s", e->msg);
}

void srv_forbid(srv *s, zt_http_resp *r, const zt_http_req *q, const char *principal,
		   const char *action, const char *target)
{
	zt_err e;

	s->denials++;
	/* every refusal is on record, as every change is */
	if (srv_audit(s, q, principal, action, target, "deny", NULL, &e) != 0)
		zt_log(ZT_LOG_ERROR, "api: auditing a denial failed", "request_id", q->request_id,
		       "error", e.msg, NULL);
	zt_http_resp_error(r, q, 403, "forbidden", "%s may not %s %s", principal, action,
			   target[0] ? target : "at the top level");
}

json_t *srv_body_object(const zt_http_req *q, zt_http_resp *r, const char *const *members)
{
	zt_err e;
	json_t *b = q->body_len ? zt_json_parse((const char *)q->body, q->body_len, &e) : NULL;
	const char *k;
	json_t *v;

	if (!b || !json_is_object(b)) {
		zt_http_resp_error(r, q, 400, "invalid", "the body must be a JSON object%s%s",
				   b || !q->body_len ? "" : ": ", b || !q->body_len ? "" : e.msg);
		json_decref(b);
		return NULL;
	}
	json_object_foreach(b, k, v) {
		size_t i;

		for (i = 0; members[i] && strcmp(members[i], k); i++)
			;
		if (!members[i]) {
			zt_http_resp_error(r, q, 400, "invalid", "unknown member \"%.64s\" in the body",
					   k);
			json_decref(b);
			return NULL;
		}
	}
	return b;
}

static int depth_of(json_t *v)
{
	int d = 0;
	const char *k;
	json_t *c;
	size_t i;

	if (json_is_object(v))
		json_object_foreach(v, k, c) {
			int x = depth_of(c);

			d = x > d ? x : d;
		}
	else if (json_is_array(v))
		json_array_foreach(v, i, c) {
			int x = depth_of(c);

			d = x > d ? x : d;
		}
	else
		return 0;
	return d + 1;
}

static int spec_ok(const zt_http_req *q, zt_http_resp *r, json_t *spec)
{
	char *t;

	if (!json_is_object(spec)) {
		zt_http_resp_error(r, q, 400, "invalid", "\"spec\" must be a JSON object");
		return 0;
	}
	t = json_dumps(spec, JSON_COMPACT);
	size_t n = t ? strlen(t) : SIZE_MAX;

	free(t);
	if (n > SPEC_MAX_BYTES || depth_of(spec) > SPEC_MAX_DEPTH) {
		zt_http_resp_error(r, q, 413, "too-large",
				   "\"spec\" is at most %d bytes and %d levels deep", SPEC_MAX_BYTES,
				   SPEC_MAX_DEPTH);
		return 0;
	}
	return 1;
}

/* The version an update or delete names: If-Match: "N", or ?version=N, or the body's. */
int srv_expected_version(const zt_http_req *q, json_t *body, uint64_t *v)
{
	const zt_http1_field *f = zt_http1_field_get(q->head->fields, q->head->nfields, "if-match",
						     NULL);
	int present;

	*v = 0;
	if (f) {
		char tmp[32], *end;
		size_t n = f->value_len;
		const char *p = f->value;

		if (n == 1 && p[0] == '*')
			return -1; /* "any version" (RFC 9110 13.1.1) names none: 428 */
		if (n >= 2 && p[0] == '"' && p[n - 1] == '"') {
			p++;
			n -= 2;
		}
		if (n == 0 || n >= sizeof tmp)
			return -2;
		memcpy(tmp, p, n);
		tmp[n] = '\0';
		*v = strtoull(tmp, &end, 10);
		return *end || tmp[0] < '0' || tmp[0] > '9' ? -2 : 0;
	}
	if (srv_query_u64(q->query, "version", v, &present) != 0)
		return -2;
	if (present)
		return 0;
	json_t *bv = body ? json_object_get(body, "version") : NULL;

	if (json_is_integer(bv) && json_integer_value(bv) > 0) {
		*v = (uint64_t)json_integer_value(bv);
		return 0;
	}
	return -1;
}

void srv_get_or_delete(srv *s, const zt_http_req *q, zt_http_resp *r, const char *principal,
		       zt_object *o, int del, const char *action, const char *name_key,
		       const char *version_key)
{
	char name[ZT_STORE_NAME_MAX + 1], kind[ZT_STORE_KIND_MAX + 1];
	uint64_t v = o->version;
	zt_err e;

	if (!del) {
		zt_http_resp_json(r, 200, srv_object_json(o));
		zt_object_clear(o);
		return;
	}
	snprintf(name, sizeof name, "%s", o->name);
	snprintf(kind, sizeof kind, "%s", o->kind);
	zt_object_clear(o);
	if (zt_store_begin(s->store, &e) != 0 ||
	    zt_store_delete(s->store, kind, name, v, &v, &e) != 0) {
		zt_store_rollback(s->store);
		srv_fail(r, q, &e);
		return;
	}
	if (srv_commit_audited(s, q, principal, action, name, NULL, &e) != 0) {
		srv_fail(r, q, &e);
		return;
	}
	zt_http_resp_json(r, 200, json_pack("{s:s,s:I}", name_key, name, version_key, (json_int_t)v));
}

/* Commit a change with its audit entry, or neither. */
int srv_commit_audited(srv *s, const zt_http_req *q, const char *principal,
			  const char *action, const char *target, json_t *details, zt_err *e)
{
	if (srv_audit(s, q, principal, action, target, "allow", details, e) != 0) {
		zt_store_rollback(s->store);
		zt_err_wrap(e, "the change was not made because it could not be audited");
		e->code = ZT_EIO;
		return -ZT_EIO;
	}
	int r = zt_store_commit(s->store, e);

	if (r == 0)
		srv_changed(s);
	return r;
}

/* ---- the hierarchy: organizations, tenants, workspaces, services ---------------- */

/* Workspace create: is the name leaf taken in the organization (a walk stops at the first)? */
struct ws_taken {
	const char *leaf;
	int taken;
};

static int ws_taken_visit(void *arg, const zt_object *o)
{
	struct ws_taken *t = arg;
	const char *last = strrchr(o->name, '/');

	t->taken = last && !strcmp(last + 1, t->leaf);
	return t->taken;
}

static void hier(srv *s, const zt_http_req *q, zt_http_resp *r, const char *principal,
		 char seg[][64], int nseg)
{
	/* /orgs/{o}/tenants/{t}/workspaces/{w}/services/{s}: pairs of (plural, name) */
	char name[ZT_STORE_NAME_MAX + 1] = "", parent[ZT_STORE_NAME_MAX + 1] = "";
	size_t level = 0;
	int item = nseg % 2 == 0;
	static const char *const create_members[] = {"name", "spec", NULL};
	static const char *const update_members[] = {"spec", "version", NULL};
	char action[64];
	zt_object o;
	zt_err e;
	uint64_t version;

	for (int i = 0; i < nseg; i += 2, level++) {
		if (level >= NLEVELS || strcmp(seg[i], levels[level].plural) != 0) {
			zt_http_resp_error(r, q, 404, "not-found", "no such resource: %s", q->path);
			return;
		}
		if (i + 1 < nseg) {
			if (!segment_ok(seg[i + 1])) {
				zt_http_resp_error(r, q, 400, "invalid",
						   "\"%s\" is not a name: 1-63 of a-z 0-9 -, not "
						   "starting or ending with -",
						   seg[i + 1]);
				return;
			}
			snprintf(parent, sizeof parent, "%s", name);
			size_t len = strlen(name);

			if (len + 1 + strlen(seg[i + 1]) > ZT_STORE_NAME_MAX) {
				zt_http_resp_error(r, q, 400, "invalid",
						   "the full name is longer than %d bytes",
						   ZT_STORE_NAME_MAX);
				return;
			}
			snprintf(name + len, sizeof name - len, "%s%s", len ? "/" : "", seg[i + 1]);
		}
	}
	const char *kind = levels[level - 1].kind;

	if (!item) {
		/* the collection: parent is `name` */
		if (!strcmp(q->method, "GET")) {
			char prefix[ZT_STORE_NAME_MAX + 2];
			srv_page page;

			if (!srv_allowed(s, principal, SRV_READ, kind, name, NULL)) {
				snprintf(action, sizeof action, "%s.list", kind);
				srv_forbid(s, r, q, principal, action, name);
				return;
			}
			if (srv_page_parse(q, r, &page) != 0)
				return;
			/* a collection under a parent that is not there is not there either */
			if (level > 1) {
				if (zt_store_get(s->store, levels[level - 2].kind, name, &o, &e) != 0) {
					srv_fail(r, q, &e);
					return;
				}
				zt_object_clear(&o);
			}
			snprintf(prefix, sizeof prefix, "%s%s", name, name[0] ? "/" : "");
			srv_list_page(s, q, r, &page, kind, prefix, NULL, NULL);
			return;
		}
		if (strcmp(q->method, "POST") != 0) {
			zt_http_resp_error(r, q, 405, "method", "use GET or POST on a collection");
			return;
		}
		json_t *b = srv_body_object(q, r, create_members);
		const char *nm = b ? json_string_value(json_object_get(b, "name")) : NULL;
		json_t *spec = b ? json_object_get(b, "spec") : NULL;
		char full[ZT_STORE_NAME_MAX + 70]; /* checked against the store limit below */

		if (!b)
			return;
		if (!nm || !segment_ok(nm)) {
			zt_http_resp_error(r, q, 400, "invalid",
					   "\"name\" is required: 1-63 of a-z 0-9 -, not starting or "
					   "ending with -");
			json_decref(b);
			return;
		}
		if (!spec)
			json_object_set_new(b, "spec", spec = json_object());
		if (!spec_ok(q, r, spec)) {
			json_decref(b);
			return;
		}
		char leaf[64];

		snprintf(leaf, sizeof leaf, "%s", nm); /* nm lives in b, which goes soon */
		if (strlen(name) + 1 + strlen(leaf) > ZT_STORE_NAME_MAX) {
			zt_http_resp_error(r, q, 400, "invalid", "the full name is longer than %d bytes",
					   ZT_STORE_NAME_MAX);
			json_decref(b);
			return;
		}
		snprintf(full, sizeof full, "%s%s%s", name, name[0] ? "/" : "", leaf);
		snprintf(action, sizeof action, "%s.create", kind);
		if (!srv_allowed(s, principal, SRV_CREATE, kind, full, NULL)) {
			srv_forbid(s, r, q, principal, action, full);
			json_decref(b);
			return;
		}
		json_t *body = json_pack("{s:O,s:s}", "spec", spec, "created_by", principal);

		json_decref(b);
		if (zt_store_begin(s->store, &e) != 0) {
			json_decref(body);
			srv_fail(r, q, &e);
			return;
		}
		/* the parent must exist, in the same transaction */
		if (level > 1 && zt_store_get(s->store, levels[level - 2].kind, name, &o, &e) != 0) {
			zt_store_rollback(s->store);
			json_decref(body);
			srv_fail(r, q, &e);
			return;
		}
		if (level > 1)
			zt_object_clear(&o);
		/* SPIFFE IDs name the workspace, not the tenant: unique across an organization */
		if (!strcmp(kind, "workspace")) {
			char org[80];
			struct ws_taken t = {leaf, 0};

			/* every workspace of the organization, not a page of them */
			snprintf(org, sizeof org, "%.*s/", (int)strcspn(full, "/"), full);
			if (srv_store_walk(s, "workspace", org, "", 0, ws_taken_visit, &t, &e) != 0) {
				zt_store_rollback(s->store);
				json_decref(body);
				srv_fail(r, q, &e);
				return;
			}
			if (t.taken) {
				zt_store_rollback(s->store);
				json_decref(body);
				zt_http_resp_error(r, q, 409, "exists",
						   "a workspace named \"%s\" exists in this organization; "
						   "workspace names are unique across an organization, "
						   "because SPIFFE IDs name the workspace",
						   leaf);
				return;
			}
		}
		if (zt_store_put(s->store, kind, full, body, 0, &version, &e) != 0) {
			zt_store_rollback(s->store);
			json_decref(body);
			srv_fail(r, q, &e);
			return;
		}
		json_decref(body);
		if (srv_commit_audited(s, q, principal, action, full,
				   json_pack("{s:I}", "version", (json_int_t)version), &e) != 0 ||
		    zt_store_get(s->store, kind, full, &o, &e) != 0) {
			srv_fail(r, q, &e);
			return;
		}
		char loc[2300];

		snprintf(loc, sizeof loc, "%s/%s", q->path, leaf);
		if (zt_http_resp_header(r, "Location", loc) != 0)
			r->close = 1;
		zt_http_resp_json(r, 201, srv_object_json(&o));
		zt_object_clear(&o);
		return;
	}
	/* one object */
	if (!strcmp(q->method, "GET")) {
		if (!srv_allowed(s, principal, SRV_READ, kind, name, NULL)) {
			snprintf(action, sizeof action, "%s.get", kind);
			srv_forbid(s, r, q, principal, action, name);
			return;
		}
		if (zt_store_get(s->store, kind, name, &o, &e) != 0) {
			srv_fail(r, q, &e);
			return;
		}
		zt_http_resp_json(r, 200, srv_object_json(&o));
		zt_object_clear(&o);
		return;
	}
	int del = !strcmp(q->method, "DELETE");

	if (!del && strcmp(q->method, "PUT") != 0) {
		zt_http_resp_error(r, q, 405, "method", "use GET, PUT or DELETE on an object");
		return;
	}
	snprintf(action, sizeof action, "%s.%s", kind, del ? "delete" : "update");
	if (!srv_allowed(s, principal, SRV_WRITE, kind, name, NULL)) {
		srv_forbid(s, r, q, principal, action, name);
		return;
	}
	json_t *b = NULL;
	uint64_t expect;

	if (!del && !(b = srv_body_object(q, r, update_members)))
		return;
	int ev = srv_expected_version(q, b, &expect);

	if (ev != 0) {
		if (ev == -2)
			zt_http_resp_error(r, q, 400, "invalid", "the version is not a number");
		else
			zt_http_resp_error(r, q, 428, "version-required",
					   "name the version you read: If-Match: \"N\", ?version=N or "
					   "\"version\" in the body");
		json_decref(b);
		return;
	}
	json_t *spec = b ? json_object_get(b, "spec") : NULL;

	if (!del && (!spec || !spec_ok(q, r, spec))) {
		if (!spec)
			zt_http_resp_error(r, q, 400, "invalid", "\"spec\" is required");
		json_decref(b);
		return;
	}
	if (zt_store_begin(s->store, &e) != 0) {
		json_decref(b);
		srv_fail(r, q, &e);
		return;
	}
	if (del && level < NLEVELS) {
		/* an object with children stays: delete them first */
		zt_object *v;
		size_t n;
		char prefix[ZT_STORE_NAME_MAX + 2];

		snprintf(prefix, sizeof prefix, "%s/", name);
		if (zt_store_list(s->store, levels[level].kind, prefix, "", 1, &v, &n, &e) != 0) {
			zt_store_rollback(s->store);
			srv_fail(r, q, &e);
			return;
		}
		zt_objects_free(v, n);
		if (n > 0) {
			zt_store_rollback(s->store);
			zt_http_resp_error(r, q, 409, "has-children",
					   "%s \"%s\" still has %s; delete them first", kind, name,
					   levels[level].plural);
			return;
		}
		/* nor may its policies outlive it (they would break its organization's set) */
		if (zt_store_list(s->store, "policy", prefix, "", 1, &v, &n, &e) != 0) {
			zt_store_rollback(s->store);
			srv_fail(r, q, &e);
			return;
		}
		zt_objects_free(v, n);
		if (n > 0) {
			zt_store_rollback(s->store);
			zt_http_resp_error(r, q, 409, "has-policies",
					   "%s \"%s\" still has policies; delete them first", kind,
					   name);
			return;
		}
	}
	if (del) {
		r->status = zt_store_delete(s->store, kind, name, expect, &version, &e);
	} else {
		zt_object cur;

		/* keep who created it; the spec is what changes */
		if (zt_store_get(s->store, kind, name, &cur, &e) != 0) {
			zt_store_rollback(s->store);
			json_decref(b);
			srv_fail(r, q, &e);
			return;
		}
		json_object_set(cur.body, "spec", spec);
		r->status = zt_store_put(s->store, kind, name, cur.body, expect, &version, &e);
		zt_object_clear(&cur);
	}
	json_decref(b);
	if (r->status != 0) {
		zt_store_rollback(s->store);
		srv_fail(r, q, &e);
		return;
	}
	if (srv_commit_audited(s, q, principal, action, name,
			   json_pack("{s:I}", "version", (json_int_t)version), &e) != 0) {
		srv_fail(r, q, &e);
		return;
	}
	if (del) {
		zt_http_resp_json(r, 200, json_pack("{s:s,s:s,s:I}", "kind", kind, "name", name,
						    "deleted", (json_int_t)version));
		return;
	}
	if (zt_store_get(s->store, kind, name, &o, &e) != 0) {
		srv_fail(r, q, &e);
		return;
	}
	zt_http_resp_json(r, 200, srv_object_json(&o));
	zt_object_clear(&o);
}

/* ---- role bindings --------------------------------------------------------------------- */

static void binding_name(const char *scope, const char *role, const char *principal, char out[33])
{
	uint8_t h[32];
	zt_buf b;

	zt_buf_init(&b, 8192);
	if (zt_buf_appendf(&b, NULL, "%s\n%s\n%s", scope, role, principal) == 0)
		zt_sha256(b.p, b.len, h);
	else
		memset(h, 0, sizeof h);
	zt_hex(h, 16, out);
	zt_buf_free(&b, 0);
}

/* A role binding's list item when it is at the scope (arg) or below it. */
static int binding_in_scope(srv *s, const zt_object *o, void *arg, json_t **item)
{
	const char *scope = arg;
	const char *sc = json_string_value(json_object_get(o->body, "scope"));
	size_t sl = strlen(scope);

	(void)s;
	*item = NULL;
	if (sc && (!sl || (!strncmp(sc, scope, sl) && (!sc[sl] || sc[sl] == '/'))) &&
	    !(*item = srv_object_json(o)))
		return -1;
	return 0;
}

static void bindings(srv *s, const zt_http_req *q, zt_http_resp *r, const char *principal,
		     char seg[][64], int nseg)
{
	static const char *const members[] = {"principal", "role", "scope", NULL};
	zt_object o;
	zt_err e;
	uint64_t version;

	if (nseg == 1 && !strcmp(q->method, "GET")) {
		char scope[ZT_STORE_NAME_MAX + 1] = "";
		srv_page page;

		if (srv_query(q->query, "scope", scope, sizeof scope) < 0) {
			zt_http_resp_error(r, q, 400, "invalid", "?scope is too long or badly escaped");
			return;
		}
		if (!srv_allowed(s, principal, SRV_READ, "rolebinding", scope, NULL)) {
			srv_forbid(s, r, q, principal, "rolebinding.list", scope);
			return;
		}
		if (srv_page_parse(q, r, &page) != 0)
			return;
		srv_list_page(s, q, r, &page, "rolebinding", "", binding_in_scope, scope);
		return;
	}
	if (nseg == 1 && !strcmp(q->method, "POST")) {
		json_t *b = srv_body_object(q, r, members);
		const char *p = b ? json_string_value(json_object_get(b, "principal")) : NULL;
		const char *role = b ? json_string_value(json_object_get(b, "role")) : NULL;
		const char *scope = b ? json_string_value(json_object_get(b, "scope")) : NULL;
		char name[33];

		if (!b)
			return;
		if (!p || !*p || strlen(p) >= SRV_PRINCIPAL_MAX || !role || !srv_role_ok(role) ||
		    !scope || (*scope && !zt_store_name_ok(scope)) ||
		    (!strcmp(role, "admin") && *scope)) {
			zt_http_resp_error(r, q, 400, "invalid",
					   "a role binding has a principal, a role (admin, org-admin, "
					   "security-admin, tenant-admin, workspace-admin, viewer) and "
					   "a scope (\"\" or a name like acme/payments; admin only at "
					   "\"\")");
			json_decref(b);
			return;
		}
		if (!srv_allowed(s, principal, SRV_WRITE, "rolebinding", scope, role)) {
			srv_forbid(s, r, q, principal, "rolebinding.create", scope);
			json_decref(b);
			return;
		}
		binding_name(scope, role, p, name);
		if (zt_store_begin(s->store, &e) != 0 ||
		    zt_store_put(s->store, "rolebinding", name, b, 0, &version, &e) != 0) {
			zt_store_rollback(s->store);
			json_decref(b);
			srv_fail(r, q, &e);
			return;
		}
		json_t *d = json_pack("{s:s,s:s,s:s}", "principal", p, "role", role, "scope", scope);

		json_decref(b);
		if (srv_commit_audited(s, q, principal, "rolebinding.create", name, d, &e) != 0 ||
		    zt_store_get(s->store, "rolebinding", name, &o, &e) != 0) {
			srv_fail(r, q, &e);
			return;
		}
		zt_http_resp_json(r, 201, srv_object_json(&o));
		zt_object_clear(&o);
		return;
	}
	if (nseg == 2 && strlen(seg[1]) == 32 && zt_store_name_ok(seg[1]) &&
	    (!strcmp(q->method, "GET") || !strcmp(q->method, "DELETE"))) {
		if (zt_store_get(s->store, "rolebinding", seg[1], &o, &e) != 0) {
			srv_fail(r, q, &e);
			return;
		}
		const char *scope = json_string_value(json_object_get(o.body, "scope"));
		const char *role = json_string_value(json_object_get(o.body, "role"));
		int del = !strcmp(q->method, "DELETE");

		if (!srv_allowed(s, principal, del ? SRV_WRITE : SRV_READ, "rolebinding",
				 scope ? scope : "", role)) {
			srv_forbid(s, r, q, principal, del ? "rolebinding.delete" : "rolebinding.get",
			       seg[1]);
			zt_object_clear(&o);
			return;
		}
		srv_get_or_delete(s, q, r, principal, &o, del, "rolebinding.delete", "name", "deleted");
		return;
	}
	int known = nseg == 1 ? !strcmp(q->method, "GET") || !strcmp(q->method, "POST")
			      : !strcmp(q->method, "GET") || !strcmp(q->method, "DELETE");

	if (nseg <= 2 && !known)
		zt_http_resp_error(r, q, 405, "method",
				   "role bindings: GET or POST the collection, GET or DELETE one");
	else
		zt_http_resp_error(r, q, 404, "not-found", "no such role binding: %s", q->path);
}

/* ---- tokens ------------------------------------------------------------------------------ */

static void tokens(srv *s, const zt_http_req *q, zt_http_resp *r, const char *principal,
		   char seg[][64], int nseg)
{
	static const char *const members[] = {"principal", "description", "ttl", NULL};
	zt_err e;

	if (nseg == 1 && !strcmp(q->method, "POST")) {
		json_t *b = srv_body_object(q, r, members);
		const char *p = b ? json_string_value(json_object_get(b, "principal")) : NULL;
		const char *d = b ? json_string_value(json_object_get(b, "description")) : NULL;
		json_t *ttl = b ? json_object_get(b, "ttl") : NULL;
		int64_t secs = 0;
		char token[128], id[17];

		if (!b)
			return;
		if ((ttl && (!json_is_string(ttl) ||
			     zt_duration_parse(json_string_value(ttl), 366 * 86400, &secs, NULL) != 0)) ||
		    (d && strlen(d) > 256) || (p && (!*p || strlen(p) >= SRV_PRINCIPAL_MAX))) {
			zt_http_resp_error(r, q, 400, "invalid",
					   "a token has an optional principal, description (256 bytes) "
					   "and ttl (like \"30d\", at most 366d)");
			json_decref(b);
			return;
		}
		if (!srv_allowed(s, principal, SRV_WRITE, "token", "", NULL)) {
			srv_forbid(s, r, q, principal, "token.create", "");
			json_decref(b);
			return;
		}
		if (zt_store_begin(s->store, &e) != 0) {
			json_decref(b);
			srv_fail(r, q, &e);
			return;
		}
		/* a token without a principal is its own: "token:<id>" */
		char own[64];

		if (srv_token_create(s, p, d, secs, token, sizeof token, id, &e) != 0) {
			zt_store_rollback(s->store);
			json_decref(b);
			srv_fail(r, q, &e);
			return;
		}
		if (!p) {
			snprintf(own, sizeof own, "token:%s", id);
			p = own;
		}
		json_t *det = json_pack("{s:s,s:s}", "token_id", id, "principal", p);

		if (srv_commit_audited(s, q, principal, "token.create", id, det, &e) != 0) {
			json_decref(b);
			zt_wipe(token, sizeof token);
			srv_fail(r, q, &e);
			return;
		}
		zt_http_resp_json(r, 201, json_pack("{s:s,s:s,s:s,s:s}", "id", id, "token", token,
						    "principal", p, "note",
						    "shown once: store it now"));
		zt_wipe(token, sizeof token);
		json_decref(b);
		return;
	}
	if (nseg == 2 && !strcmp(q->method, "DELETE") && strlen(seg[1]) == 16) {
		zt_object o;
		uint64_t v;

		if (!srv_allowed(s, principal, SRV_WRITE, "token", "", NULL)) {
			srv_forbid(s, r, q, principal, "token.revoke", seg[1]);
			return;
		}
		if (zt_store_begin(s->store, &e) != 0 ||
		    zt_store_get(s->store, "token", seg[1], &o, &e) != 0) {
			zt_store_rollback(s->store);
			srv_fail(r, q, &e);
			return;
		}
		v = o.version;
		zt_object_clear(&o);
		if (zt_store_delete(s->store, "token", seg[1], v, &v, &e) != 0) {
			zt_store_rollback(s->store);
			srv_fail(r, q, &e);
			return;
		}
		if (srv_commit_audited(s, q, principal, "token.revoke", seg[1], NULL, &e) != 0) {
			srv_fail(r, q, &e);
			return;
		}
		zt_http_resp_json(r, 200, json_pack("{s:s,s:b}", "id", seg[1], "revoked", 1));
		return;
	}
	if (nseg <= 2 && strcmp(q->method, nseg == 1 ? "POST" : "DELETE") != 0)
		zt_http_resp_error(r, q, 405, "method", "tokens: POST the collection, DELETE one");
	else
		zt_http_resp_error(r, q, 404, "not-found", "no such resource: %s", q->path);
}

/* ---- audit --------------------------------------------------------------------------- */

static void audit_api(srv *s, const zt_http_req *q, zt_http_resp *r, const char *principal,
		      char seg[][64], int nseg)
{
	zt_err e;
	uint64_t a = 0, b = 0, size = zt_audit_size(s->audit);
	int pa, pb;

	if (nseg != 2 || (strcmp(seg[1], "checkpoint") && strcmp(seg[1], "entries") &&
			  strcmp(seg[1], "proof") && strcmp(seg[1], "consistency"))) {
		zt_http_resp_error(r, q, 404, "not-found", "no such resource: %s", q->path);
		return;
	}
	if (strcmp(q->method, "GET") != 0) {
		zt_http_resp_error(r, q, 405, "method", "the audit endpoints take GET");
		return;
	}
	if (!srv_allowed(s, principal, SRV_READ, "audit", "", NULL)) {
		srv_forbid(s, r, q, principal, "audit.read", "audit");
		return;
	}
	if (!strcmp(seg[1], "checkpoint")) {
		zt_buf note;

		zt_buf_init(&note, ZT_NOTE_MAX);
		if (zt_audit_checkpoint(s->audit, &note, &e) != 0) {
			zt_buf_free(&note, 0);
			srv_fail(r, q, &e);
			return;
		}
		r->content_type = "text/plain; charset=utf-8";
		r->body.len = 0;
		if (zt_buf_append(&r->body, note.p, note.len, NULL) != 0)
			r->status = 500;
		zt_buf_free(&note, 0);
		return;
	}
	if (!strcmp(seg[1], "entries")) {
		json_t *items = json_array();
		zt_buf ent;

		if (srv_query_u64(q->query, "from", &a, &pa) != 0 || srv_query_u64(q->query, "limit", &b, &pb) != 0 ||
		    (pb && (b == 0 || b > 1000))) {
			json_decref(items);
			zt_http_resp_error(r, q, 400, "invalid", "from is an index, limit 1-1000");
			return;
		}
		if (!pb)
			b = 100;
		zt_buf_init(&ent, ZT_AUDIT_ENTRY_MAX + 1);
		for (uint64_t i = a; i < size && i < a + b; i++) {
			ent.len = 0;
			json_t *j;

			if (zt_audit_read(s->audit, i, &ent, &e) != 0 ||
			    !(j = zt_json_parse((const char *)ent.p, ent.len, &e))) {
				zt_buf_free(&ent, 0);
				json_decref(items);
				srv_fail(r, q, &e);
				return;
			}
			json_array_append_new(items, json_pack("{s:I,s:o}", "index", (json_int_t)i,
							       "entry", j));
		}
		zt_buf_free(&ent, 0);
		zt_http_resp_json(r, 200, json_pack("{s:I,s:o}", "size", (json_int_t)size, "items",
						    items));
		return;
	}
	/* proofs in the file format zt audit prove prints and check-proof reads */
	zt_audit_proof p;
	int rc;

	memset(&p, 0, sizeof p);
	if (!strcmp(seg[1], "proof")) {
		if (srv_query_u64(q->query, "index", &p.index, &pa) != 0 || !pa ||
		    srv_query_u64(q->query, "size", &p.size, &pb) != 0) {
			zt_http_resp_error(r, q, 400, "invalid", "give ?index=N (and size=M)");
			return;
		}
		p.kind = ZT_PROOF_INCLUSION;
		p.size = pb ? p.size : size;
		p.leaf_len = p.root_len = ZT_HASH_LEN;
		rc = zt_audit_prove(s->audit, p.index, p.size, p.proof, &p.n, &e) != 0 ||
		     zt_audit_root(s->audit, p.size, p.root, &e) != 0 ||
		     zt_audit_leaf(s->audit, p.index, p.leaf, &e) != 0;
	} else if (!strcmp(seg[1], "consistency")) {
		if (srv_query_u64(q->query, "from", &p.size1, &pa) != 0 || !pa ||
		    srv_query_u64(q->query, "to", &p.size2, &pb) != 0) {
			zt_http_resp_error(r, q, 400, "invalid", "give ?from=N (and to=M)");
			return;
		}
		p.kind = ZT_PROOF_CONSISTENCY;
		p.size2 = pb ? p.size2 : size;
		p.root1_len = p.root_len = ZT_HASH_LEN;
		rc = zt_audit_prove_consistency(s->audit, p.size1, p.size2, p.proof, &p.n, &e) != 0 ||
		     zt_audit_root(s->audit, p.size1, p.root1, &e) != 0 ||
		     zt_audit_root(s->audit, p.size2, p.root, &e) != 0;
	} else {
		zt_http_resp_error(r, q, 404, "not-found", "no such resource: %s", q->path);
		return;
	}
	if (rc || zt_audit_proof_format(&p, &r->body, &e) != 0) {
		r->body.len = 0;
		srv_fail(r, q, &e);
	}
}

/* ---- the router ---------------------------------------------------------------------------- */

/* Prometheus text format: what an operator graphs and alerts on. */
static void metrics(srv *s, zt_http_resp *r)
{
	zt_buf *b = &r->body;
	int ok = 1;

	r->content_type = "text/plain; version=0.0.4";
	ok &= zt_buf_appendf(b, NULL,
			     "# HELP zt_server_responses_total API responses by status class.\n"
			     "# TYPE zt_server_responses_total counter\n") == 0;
	for (int c = 2; c <= 5; c++)
		ok &= zt_buf_appendf(b, NULL, "zt_server_responses_total{class=\"%dxx\"} %llu\n", c,
				     (unsigned long long)s->responses[c]) == 0;
	ok &= zt_buf_appendf(
		  b, NULL,
		  "# HELP zt_server_auth_failures_total Failed authentications.\n"
		  "# TYPE zt_server_auth_failures_total counter\n"
		  "zt_server_auth_failures_total %llu\n"
		  "# HELP zt_server_denials_total Requests refused by role-based access (403).\n"
		  "# TYPE zt_server_denials_total counter\n"
		  "zt_server_denials_total %llu\n"
		  "# HELP zt_server_store_revision The store's latest revision.\n"
		  "# TYPE zt_server_store_revision gauge\n"
		  "zt_server_store_revision %llu\n"
		  "# HELP zt_server_audit_entries Entries in the audit log.\n"
		  "# TYPE zt_server_audit_entries gauge\n"
		  "zt_server_audit_entries %llu\n",
		  (unsigned long long)s->auth_failures, (unsigned long long)s->denials,
		  (unsigned long long)zt_store_revision(s->store),
		  (unsigned long long)zt_audit_size(s->audit)) == 0;
	if (!ok)
		r->status = 500;
}

static void route(srv *s, const zt_http_req *q, zt_http_resp *r);

void srv_handle(void *arg, const zt_http_req *q, zt_http_resp *r)
{
	srv *s = arg;

	route(s, q, r);
	if (r->status >= 200 && r->status < 600)
		s->responses[r->status / 100]++;
}

static void route(srv *s, const zt_http_req *q, zt_http_resp *r)
{
	char seg[SEGMENTS_MAX][64], principal[SRV_PRINCIPAL_MAX];
	int nseg = split_path(q->path, seg, SEGMENTS_MAX);

	if (!strcmp(q->path, "/metrics") && !strcmp(q->method, "GET")) {
		metrics(s, r);
		return;
	}
	if (!s->ready) {
		zt_http_resp_error(r, q, 503, "starting", "the server is starting; try again in a moment");
		return;
	}
	if (srv_issuer_public(s, q, r))
		return;
	if (nseg <= 0) {
		zt_http_resp_error(r, q, 404, "not-found", "the API lives under /v1/");
		return;
	}
	/* public: health and the trust bundle */
	if (nseg == 1 && !strcmp(seg[0], "health") && !strcmp(q->method, "GET")) {
		zt_http_resp_json(r, 200, json_pack("{s:s,s:I,s:I}", "status", "ok", "revision",
						    (json_int_t)zt_store_revision(s->store),
						    "audit_size", (json_int_t)zt_audit_size(s->audit)));
		return;
	}
	if (nseg == 1 && !strcmp(seg[0], "bundle") && !strcmp(q->method, "GET")) {
		r->content_type = "application/x-pem-file";
		if (srv_bundle_pem(s, &r->body) != 0)
			r->status = 500;
		return;
	}
	if (srv_agents_public(s, q, r, seg, nseg))
		return;
	if (nseg == 1 && !strcmp(seg[0], "login") && !strcmp(q->method, "POST")) {
		srv_login(s, q, r);
		return;
	}
	if (srv_authenticate(s, q, r, principal, sizeof principal) != 0)
		return;
	if (nseg == 1 && !strcmp(seg[0], "logout") && !strcmp(q->method, "POST")) {
		char jti[33];
		int64_t exp = 0;

		if (srv_logout_token(s, q, r, jti, &exp) == 0)
			srv_logout(s, q, r, principal, jti, exp);
		return;
	}
	if (nseg == 1 && !strcmp(seg[0], "whoami") && !strcmp(q->method, "GET")) {
		zt_http_resp_json(r, 200, json_pack("{s:s}", "principal", principal));
		return;
	}
	if (!strcmp(seg[0], "orgs"))
		hier(s, q, r, principal, seg, nseg);
	else if (!strcmp(seg[0], "rolebindings"))
		bindings(s, q, r, principal, seg, nseg);
	else if (!strcmp(seg[0], "tokens"))
		tokens(s, q, r, principal, seg, nseg);
	else if (!strcmp(seg[0], "users"))
		srv_users(s, q, r, principal, seg, nseg);
	else if (!strcmp(seg[0], "groups"))
		srv_groups(s, q, r, principal, seg, nseg);
	else if (!strcmp(seg[0], "audit"))
		audit_api(s, q, r, principal, seg, nseg);
	else if (!strcmp(seg[0], "policies"))
		srv_policies(s, q, r, principal, seg, nseg);
	else if (srv_agents_route(s, q, r, principal, seg, nseg))
		;
	else if (!strcmp(seg[0], "svids"))
		srv_svids(s, q, r, principal, seg, nseg);
	else if (!strcmp(seg[0], "jwtsvids"))
		srv_jwtsvids(s, q, r, principal, nseg);
	else if (nseg == 2 && !strcmp(seg[0], "watch") && !strcmp(seg[1], "policies") &&
		 !strcmp(q->method, "GET"))
		srv_watch_policies(s, q, r, principal);
	else
		zt_http_resp_error(r, q, 404, "not-found", "no such resource: %s", q->path);
}
