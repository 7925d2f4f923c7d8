/*
 * server/policies.c: authorization policies, kept centrally.
 *
 * A policy is an AuthorizationPolicy or a RequestAuthentication document
 * (docs/policy.md) attached to a scope of the hierarchy; the two kinds
 * share the names of a scope. Before a policy is stored, the whole
 * organization it belongs to is rebuilt as the policy module sees it (the
 * Organization from the store's tenants, workspaces and services, and every
 * policy of that organization with the new one in place) and checked and
 * compiled: a policy that does not compile, or breaks the set, is refused
 * with the compiler's diagnostics. Every version is kept, so a policy can be
 * rolled back to any earlier one.
 *
 * Store: kind "policy", name "<scope>/<policy name>".
 */
#include <stdlib.h>
#include <string.h>

#include "policy/policy.h"
#include "server/server_int.h"

#define POLICY_MAX_BYTES 262144

/*
 * Building an Organization document: every tenant, workspace and service
 * of the organization, however many (a read of one page would leave the
 * rest out of the document, and their policies out of the checks). The
 * store walks each kind in name order, so each object's parent is met
 * before it: `up` finds the parent's list of children by its full name.
 */
struct org_build {
	const char *child;  /* the member of an object that holds its children */
	json_t *up;         /* full name of a parent -> the array of its children */
	json_t *down;       /* full name of each object seen -> its children (NULL for services) */
};

static int org_visit(void *arg, const zt_object *o)
{
	struct org_build *b = arg;
	const char *slash = strrchr(o->name, '/');
	char parent[ZT_STORE_NAME_MAX + 1];
	json_t *siblings, *item, *children = NULL;

	if (!slash)
		return 0;
	snprintf(parent, sizeof parent, "%.*s", (int)(slash - o->name), o->name);
	/* an object whose parent is gone (the store keeps none, but a walk may race a delete) */
	if (!(siblings = json_object_get(b->up, parent)))
		return 0;
	if (!b->child) {
		item = json_string(slash + 1);
	} else {
		children = json_array();
		item = children ? json_pack("{s:s,s:O}", "name", slash + 1, b->child, children) : NULL;
	}
	if (!item || json_array_append_new(siblings, item) != 0 ||
	    (children && json_object_set(b->down, o->name, children) != 0)) {
		json_decref(children);
		return -1;
	}
	json_decref(children);
	return 0;
}

/* The Organization document of org, from the store. */
static json_t *org_document(srv *s, const char *org, zt_err *e)
{
	static const struct {
		const char *kind, *child;
	} levels[] = {{"tenant", "workspaces"}, {"workspace", "services"}, {"service", NULL}};
	json_t *tenants = json_array(), *top = json_object(), *doc = NULL;
	char prefix[ZT_STORE_NAME_MAX + 2];

	snprintf(prefix, sizeof prefix, "%s/", org);
	if (!tenants || !top || json_object_set(top, org, tenants) != 0) {
		zt_err_set(e, ZT_ENOMEM, "out of memory");
		goto out;
	}
	/* tenants hang off the organization, workspaces off tenants, services off workspaces */
	for (size_t i = 0; i < sizeof levels / sizeof levels[0]; i++) {
		struct org_build b = {levels[i].child, top, json_object()};

		if (!b.down) {
			zt_err_set(e, ZT_ENOMEM, "out of memory");
			goto out;
		}
		if (srv_store_walk(s, levels[i].kind, prefix, "", 0, org_visit, &b, e) != 0) {
			json_decref(b.down);
			goto out;
		}
		json_decref(top);
		top = b.down;
	}
	doc = json_pack("{s:s,s:s,s:{s:s},s:{s:s,s:O}}", "apiVersion", "zt.dev/v1", "kind",
			"Organization", "metadata", "name", org, "spec", "trustDomain", s->td,
			"tenants", tenants);
	if (!doc)
		zt_err_set(e, ZT_ENOMEM, "out of memory");
out:
	json_decref(top);
	json_decref(tenants);
	return doc;
}

static int add_doc(zt_policy_src *src, const char *name, json_t *doc)
{
	char *text = json_dumps(doc, JSON_COMPACT);
	int r;

	if (!text)
		return -1;
	r = zt_policy_src_add_text(src, name, text, strlen(text));
	free(text);
	return r;
}

/* Every policy of an organization into a policy source, but the one being replaced. */
struct set_fill {
	zt_policy_src *src;
	const char *replace; /* a store name, or NULL */
};

static int set_visit(void *arg, const zt_object *o)
{
	struct set_fill *f = arg;
	json_t *d = json_object_get(o->body, "document");

	if ((f->replace && !strcmp(o->name, f->replace)) || !d)
		return 0;
	return add_doc(f->src, o->name, d) < 0 ? -1 : 0;
}

/*
 * Checks org's policies with `replace` (store name) taken out and `doc`
 * (NULL for a delete) put in. 0, or 400 written to r with the diagnostics.
 */
static int check_set(srv *s, const zt_http_req *q, zt_http_resp *r, const char *org,
		     const char *replace, json_t *doc)
{
	zt_policy_src *src = zt_policy_src_new(NULL);
	struct set_fill fill = {src, replace};
	json_t *orgdoc = NULL;
	char prefix[ZT_STORE_NAME_MAX + 2];
	zt_err e;
	int rc = -1, added;

	snprintf(prefix, sizeof prefix, "%s/", org);
	if (!src) {
		zt_err_set(&e, ZT_ENOMEM, "out of memory");
		goto out_unreadable;
	}
	if (!(orgdoc = org_document(s, org, &e)))
		goto out_unreadable;
	added = add_doc(src, "organization", orgdoc);
	json_decref(orgdoc);
	if (added < 0) {
		zt_err_set(&e, ZT_ENOMEM, "out of memory");
		goto out_unreadable;
	}
	/* every policy of the organization: one past the first page can break the set as well */
	if (srv_store_walk(s, "policy", prefix, "", 0, set_visit, &fill, &e) != 0)
		goto out_unreadable;
	if (doc)
		add_doc(src, "the policy", doc);
	zt_policy_src_check(src);
	if (zt_policy_src_nerrors(src) > 0) {
		json_t *diags = json_array();

		for (size_t i = 0; i < zt_policy_src_ndiags(src); i++) {
			const zt_diag *d = zt_policy_src_diag(src, i);

			json_array_append_new(diags, json_pack("{s:s,s:s,s:s}", "level",
							       d->level == ZT_DIAG_ERROR ? "error"
											 : "warning",
							       "in", d->file, "message", d->msg));
		}
		zt_http_resp_json(r, 400,
				  json_pack("{s:{s:i,s:s,s:s,s:s,s:o}}", "error", "status", 400, "code",
					    "policy-invalid", "message",
					    "the policy does not check: see diagnostics", "request_id",
					    q->request_id, "diagnostics", diags));
		goto out;
	}
	zt_policy_snapshot *snap = zt_policy_compile(src, &e);

	if (!snap) {
		zt_http_resp_error(r, q, 400, "policy-invalid", "the policy set does not compile: %s",
				   e.msg);
		goto out;
	}
	zt_policy_snapshot_unref(snap);
	rc = 0;
	goto out;
out_unreadable:
	zt_http_resp_error(r, q, 503, "unavailable", "cannot read the organization: %s", e.msg);
out:
	zt_policy_src_free(src);
	return rc;
}

static int scope_exists(srv *s, const char *scope)
{
	static const char *const kinds[] = {"org", "tenant", "workspace"};
	int depth = 1;
	zt_object o;

	for (const char *p = scope; *p; p++)
		depth += *p == '/';
	if (depth < 1 || depth > 3 || zt_store_get(s->store, kinds[depth - 1], scope, &o, NULL) != 0)
		return 0;
	zt_object_clear(&o);
	return 1;
}

static json_t *policy_json(const zt_object *o)
{
	char t[32];

	zt_audit_time_format(o->updated_ms, t);
	json_t *j = json_pack("{s:s,s:s,s:I,s:s}", "kind", "policy", "name", o->name, "version",
			      (json_int_t)o->version, "updated", t);

	if (j && o->body) {
		json_object_set(j, "document", json_object_get(o->body, "document"));
		json_object_set(j, "applied_by", json_object_get(o->body, "applied_by"));
	} else if (j) {
		json_object_set_new(j, "deleted", json_true());
	}
	return j;
}

/* A DNS label, and not a word the policy URLs use. */
static int policy_name_ok(const char *n)
{
	size_t len = strlen(n);

	if (len == 0 || len > 63 || n[0] == '-' || n[len - 1] == '-' || !strcmp(n, "history") ||
	    !strcmp(n, "rollback"))
		return 0;
	for (size_t i = 0; i < len; i++)
		if (!((n[i] >= 'a' && n[i] <= 'z') || (n[i] >= '0' && n[i] <= '9') || n[i] == '-'))
			return 0;
	return 1;
}

/* Splits "a/b/c/NAME" into scope "a/b/c" and NAME. */
static int split_name(const char *full, char *scope, size_t cap)
{
	const char *slash = strrchr(full, '/');

	if (!slash || (size_t)(slash - full) >= cap)
		return -1;
	memcpy(scope, full, (size_t)(slash - full));
	scope[slash - full] = '\0';
	return 0;
}

/* Stores doc as scope/name (expect 0: create), checked, audited. */
static void put_policy(srv *s, const zt_http_req *q, zt_http_resp *r, const char *principal,
		       json_t *doc, const char *want_full, uint64_t expect, const char *action)
{
	json_t *md = json_object_get(doc, "metadata");
	const char *name = json_string_value(json_object_get(md, "name"));
	const char *scope = json_string_value(json_object_get(md, "scope"));
	const char *kind = json_string_value(json_object_get(doc, "kind"));
	char full[ZT_STORE_NAME_MAX + 70], org[64];
	uint64_t version;
	zt_object o;
	zt_err e;

	const char *api = json_string_value(json_object_get(doc, "apiVersion"));

	/*
	 * zt's own kind only: an Istio manifest takes its scope from
	 * metadata.namespace, which the compiler reads and this check would
	 * not, so it could land outside the caller's node.
	 */
	if (!kind || (strcmp(kind, "AuthorizationPolicy") && strcmp(kind, "RequestAuthentication")) || !api ||
	    strcmp(api, "zt.dev/v1") || !name || !scope || json_object_get(md, "namespace")) {
		zt_http_resp_error(r, q, 400, "invalid",
				   "the body is a zt.dev/v1 AuthorizationPolicy or RequestAuthentication with "
				   "metadata.name and metadata.scope and no metadata.namespace (docs/policy.md; "
				   "convert Istio manifests first)");
		return;
	}
	if (!policy_name_ok(name) || strlen(scope) + 1 + strlen(name) > ZT_STORE_NAME_MAX ||
	    !zt_store_name_ok(scope)) {
		zt_http_resp_error(r, q, 400, "invalid",
				   "metadata.name is 1-63 of a-z 0-9 - (not \"history\" or "
				   "\"rollback\") and metadata.scope an organization, tenant or "
				   "workspace");
		return;
	}
	snprintf(full, sizeof full, "%s/%s", scope, name);
	if (want_full && strcmp(full, want_full) != 0) {
		zt_http_resp_error(r, q, 400, "invalid",
				   "the document is %s, not the policy of this URL (%s)", full,
				   want_full);
		return;
	}
	if (!srv_allowed(s, principal, SRV_WRITE, "policy", scope, NULL)) {
		srv_forbid(s, r, q, principal, action, full);
		return;
	}
	if (!scope_exists(s, scope)) {
		zt_http_resp_error(r, q, 404, "not-found",
				   "scope \"%s\" is not an organization, tenant or workspace", scope);
		return;
	}
	snprintf(org, sizeof org, "%.*s", (int)strcspn(scope, "/"), scope);
	if (zt_store_begin(s->store, &e) != 0) {
		srv_fail(r, q, &e);
		return;
	}
	/* one name per scope, whatever the kind: a document never turns into another kind */
	if (expect && zt_store_get(s->store, "policy", full, &o, NULL) == 0) {
		const char *was = json_string_value(json_object_get(json_object_get(o.body, "document"), "kind"));

		if (was && strcmp(was, kind)) {
			zt_store_rollback(s->store);
			zt_http_resp_error(r, q, 409, "conflict", "%s is a policy of kind %s, not %s: delete it first", full, was,
					   kind);
			zt_object_clear(&o);
			return;
		}
		zt_object_clear(&o);
	}
	/* checked against the organization as it is inside this transaction */
	if (check_set(s, q, r, org, full, doc) != 0) {
		zt_store_rollback(s->store);
		return;
	}
	json_t *body = json_pack("{s:O,s:s}", "document", doc, "applied_by", principal);

	if (zt_store_put(s->store, "policy", full, body, expect, &version, &e) != 0) {
		json_decref(body);
		zt_store_rollback(s->store);
		srv_fail(r, q, &e);
		return;
	}
	json_decref(body);
	if (srv_commit_audited(s, q, principal, action, full,
			       json_pack("{s:I}", "version", (json_int_t)version), &e) != 0 ||
	    zt_store_get(s->store, "policy", full, &o, &e) != 0) {
		srv_fail(r, q, &e);
		return;
	}
	zt_http_resp_json(r, expect ? 200 : 201, policy_json(&o));
	zt_object_clear(&o);
}

/* A policy as a list shows it. */
static int policy_item(srv *s, const zt_object *o, void *arg, json_t **item)
{
	(void)s;
	(void)arg;
	return (*item = policy_json(o)) ? 0 : -1;
}

/*
 * GET .../history: the versions of policy full, newest first, a page at a
 * time: ?limit=N (1-ZT_STORE_LIST_MAX, SRV_PAGE_DEFAULT when not
 * given) before ?before=V (the "next" of the page before, a version; from
 * the newest without it). A full page carries "next", its last version.
 */
static void policy_history(srv *s, const zt_http_req *q, zt_http_resp *r, const char *full)
{
	uint64_t limit = SRV_PAGE_DEFAULT, before = 0;
	int has_limit, has_before;
	zt_object *v;
	size_t n;
	zt_err e;

	if (srv_query_u64(q->query, "limit", &limit, &has_limit) != 0 || limit == 0 ||
	    limit > ZT_STORE_LIST_MAX || srv_query_u64(q->query, "before", &before, &has_before) != 0 ||
	    (has_before && before == 0)) {
		zt_http_resp_error(r, q, 400, "invalid",
				   "?limit is a number of versions from 1 to %d (%d when not given), "
				   "?before the \"next\" of an earlier page (a version)",
				   ZT_STORE_LIST_MAX, SRV_PAGE_DEFAULT);
		return;
	}
	if (zt_store_history(s->store, "policy", full, before, (size_t)limit, &v, &n, &e) != 0) {
		srv_fail(r, q, &e);
		return;
	}
	if (n == 0) {
		/* an empty page past the oldest version, or a policy that never was */
		zt_object *any = NULL;
		size_t na = 0;

		zt_objects_free(v, n);
		v = NULL;
		if (has_before &&
		    zt_store_history(s->store, "policy", full, 0, 1, &any, &na, &e) != 0) {
			srv_fail(r, q, &e);
			return;
		}
		zt_objects_free(any, na);
		if (na == 0) {
			zt_http_resp_error(r, q, 404, "not-found", "policy %s has no history", full);
			return;
		}
	}
	json_t *items = json_array(), *out;
	uint64_t last = n ? v[n - 1].version : 0;

	for (size_t i = 0; items && i < n; i++) {
		snprintf(v[i].name, sizeof v[i].name, "%s", full);
		if (json_array_append_new(items, policy_json(&v[i])) != 0) {
			json_decref(items);
			items = NULL;
		}
	}
	zt_objects_free(v, n);
	if (!items || !(out = json_pack("{s:o}", "items", items))) {
		zt_http_resp_error(r, q, 500, "internal", "out of memory");
		return;
	}
	/* a full page says where the next one starts; a short one is the last */
	if (n == limit && json_object_set_new(out, "next", json_integer((json_int_t)last)) != 0) {
		json_decref(out);
		zt_http_resp_error(r, q, 500, "internal", "out of memory");
		return;
	}
	zt_http_resp_json(r, 200, out);
}

void srv_policies(srv *s, const zt_http_req *q, zt_http_resp *r, const char *principal,
		  char seg[][64], int nseg)
{
	char full[ZT_STORE_NAME_MAX + 1] = "", scope[ZT_STORE_NAME_MAX + 1];
	int history = 0, rollback = 0;
	zt_object o;
	zt_err e;

	/* /policies[/SCOPE.../NAME[/history|/rollback]] */
	if (nseg >= 3 && (!strcmp(seg[nseg - 1], "history") || !strcmp(seg[nseg - 1], "rollback"))) {
		history = !strcmp(seg[nseg - 1], "history");
		rollback = !history;
		nseg--;
	}
	for (int i = 1; i < nseg; i++) {
		size_t len = strlen(full);

		if (len + 1 + strlen(seg[i]) > ZT_STORE_NAME_MAX) {
			zt_http_resp_error(r, q, 400, "invalid", "the policy name is too long");
			return;
		}
		snprintf(full + len, sizeof full - len, "%s%s", len ? "/" : "", seg[i]);
	}
	if (nseg == 1) {
		if (!strcmp(q->method, "POST")) {
			zt_err pe;
			json_t *doc = q->body_len ? zt_json_parse((const char *)q->body, q->body_len, &pe)
						  : NULL;

			if (!doc || !json_is_object(doc) || q->body_len > POLICY_MAX_BYTES) {
				zt_http_resp_error(r, q, 400, "invalid",
						   "the body is one AuthorizationPolicy as JSON (at most "
						   "%d bytes)",
						   POLICY_MAX_BYTES);
				json_decref(doc);
				return;
			}
			put_policy(s, q, r, principal, doc, NULL, 0, "policy.create");
			json_decref(doc);
			return;
		}
		if (strcmp(q->method, "GET") != 0) {
			zt_http_resp_error(r, q, 405, "method", "policies: GET or POST the collection");
			return;
		}
		/* ?scope=S: the policies at S and below, a page at a time */
		char sc[ZT_STORE_NAME_MAX + 1] = "", prefix[ZT_STORE_NAME_MAX + 2];
		srv_page page;

		if (srv_query(q->query, "scope", sc, sizeof sc) != 0 || !sc[0] ||
		    !zt_store_name_ok(sc)) {
			zt_http_resp_error(r, q, 400, "invalid", "give ?scope=org[/tenant[/workspace]]");
			return;
		}
		if (!srv_allowed(s, principal, SRV_READ, "policy", sc, NULL)) {
			srv_forbid(s, r, q, principal, "policy.list", sc);
			return;
		}
		if (srv_page_parse(q, r, &page) != 0)
			return;
		snprintf(prefix, sizeof prefix, "%s/", sc);
		srv_list_page(s, q, r, &page, "policy", prefix, policy_item, NULL);
		return;
	}
	if (nseg < 3 || split_name(full, scope, sizeof scope) != 0 || !zt_store_name_ok(full)) {
		zt_http_resp_error(r, q, 404, "not-found", "a policy is /v1/policies/SCOPE/NAME");
		return;
	}
	if (history || !strcmp(q->method, "GET")) {
		if (strcmp(q->method, "GET") != 0) {
			zt_http_resp_error(r, q, 405, "method", "history takes GET");
			return;
		}
		if (!srv_allowed(s, principal, SRV_READ, "policy", scope, NULL)) {
			srv_forbid(s, r, q, principal, history ? "policy.history" : "policy.get", full);
			return;
		}
		if (!history) {
			if (zt_store_get(s->store, "policy", full, &o, &e) != 0) {
				srv_fail(r, q, &e);
				return;
			}
			zt_http_resp_json(r, 200, policy_json(&o));
			zt_object_clear(&o);
			return;
		}
		policy_history(s, q, r, full);
		return;
	}
	int del = !strcmp(q->method, "DELETE");
	uint64_t expect = 0;
	json_t *b = q->body_len ? zt_json_parse((const char *)q->body, q->body_len, &e) : NULL;

	if ((!del && !rollback && strcmp(q->method, "PUT")) || (rollback && strcmp(q->method, "POST"))) {
		json_decref(b);
		zt_http_resp_error(r, q, 405, "method",
				   "a policy takes GET, PUT, DELETE; /rollback takes POST");
		return;
	}
	/* who may write comes first: a refusal is audited whatever else is wrong */
	if (!srv_allowed(s, principal, SRV_WRITE, "policy", scope, NULL)) {
		json_decref(b);
		srv_forbid(s, r, q, principal,
			   rollback ? "policy.rollback" : del ? "policy.delete" : "policy.update", full);
		return;
	}
	int ev = srv_expected_version(q, rollback || del ? b : json_object_get(b, "metadata"), &expect);

	if (ev == -2) {
		json_decref(b);
		zt_http_resp_error(r, q, 400, "invalid", "the version is not a number");
		return;
	}
	if (ev != 0 || expect == 0) {
		json_decref(b);
		zt_http_resp_error(r, q, 428, "version-required",
				   "name the version you read: If-Match: \"N\" or ?version=N");
		return;
	}
	if (rollback) {
		/* {"to": V}: the document of version V becomes the newest */
		json_t *to = b ? json_object_get(b, "to") : NULL;
		zt_object old;

		if (!json_is_integer(to) || json_integer_value(to) <= 0) {
			json_decref(b);
			zt_http_resp_error(r, q, 400, "invalid", "give {\"to\": VERSION} to roll back to");
			return;
		}
		if (zt_store_history_get(s->store, "policy", full, (uint64_t)json_integer_value(to),
					 &old, &e) != 0 ||
		    old.deleted) {
			json_decref(b);
			if (old.deleted)
				zt_http_resp_error(r, q, 400, "invalid", "that version is a deletion");
			else
				srv_fail(r, q, &e);
			zt_object_clear(&old);
			return;
		}
		json_decref(b);
		put_policy(s, q, r, principal, json_object_get(old.body, "document"), full, expect,
			   "policy.rollback");
		zt_object_clear(&old);
		return;
	}
	if (!del) {
		if (!b || !json_is_object(b) || q->body_len > POLICY_MAX_BYTES) {
			json_decref(b);
			zt_http_resp_error(r, q, 400, "invalid", "the body is one AuthorizationPolicy");
			return;
		}
		/* the version may ride in metadata.resourceVersion: the document stays a document */
		json_object_del(json_object_get(b, "metadata"), "version");
		put_policy(s, q, r, principal, b, full, expect, "policy.update");
		json_decref(b);
		return;
	}
	json_decref(b);
	if (!srv_allowed(s, principal, SRV_WRITE, "policy", scope, NULL)) {
		srv_forbid(s, r, q, principal, "policy.delete", full);
		return;
	}
	char org[64];
	uint64_t version;

	snprintf(org, sizeof org, "%.*s", (int)strcspn(scope, "/"), scope);
	if (zt_store_begin(s->store, &e) != 0) {
		srv_fail(r, q, &e);
		return;
	}
	if (check_set(s, q, r, org, full, NULL) != 0) {
		zt_store_rollback(s->store);
		return;
	}
	if (zt_store_delete(s->store, "policy", full, expect, &version, &e) != 0) {
		zt_store_rollback(s->store);
		srv_fail(r, q, &e);
		return;
	}
	if (srv_commit_audited(s, q, principal, "policy.delete", full, NULL, &e) != 0) {
		srv_fail(r, q, &e);
		return;
	}
	zt_http_resp_json(r, 200, json_pack("{s:s,s:I}", "name", full, "deleted", (json_int_t)version));
}

/* ---- the watch: how proxies get their policies ---------------------------------- */

#define WATCH_TIMEOUT_DEFAULT 30
#define WATCH_TIMEOUT_MAX 60

void srv_watch_wait(srv *s, uint64_t since, uint64_t timeout_s)
{
	struct timespec until;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += (time_t)timeout_s;
	pthread_mutex_lock(&s->watch_mu);
	while (s->watch_rev <= since && !zt_httpd_stopping(s->httpd)) {
		struct timespec slice;

		clock_gettime(CLOCK_REALTIME, &slice);
		if (slice.tv_sec > until.tv_sec ||
		    (slice.tv_sec == until.tv_sec && slice.tv_nsec >= until.tv_nsec))
			break;
		slice.tv_sec += 1; /* wake now and then to see a stopping server */
		if (slice.tv_sec > until.tv_sec)
			slice = until;
		pthread_cond_timedwait(&s->watch_cv, &s->watch_mu, &slice);
	}
	pthread_mutex_unlock(&s->watch_mu);
}

void srv_changed(srv *s)
{
	uint64_t rev = zt_store_revision(s->store);

	pthread_mutex_lock(&s->watch_mu);
	if (rev > s->watch_rev)
		s->watch_rev = rev;
	pthread_cond_broadcast(&s->watch_cv);
	pthread_mutex_unlock(&s->watch_mu);
}

/*
 * The workspaces by their own names (the last segment of "org/tenant/ws"),
 * sorted, so that finding a workload's workspace is a binary search and not
 * a read of every workspace: it is done for each policy watch and for each
 * entry a narrow reader lists. They are read whole, labelled with the store
 * revision read before, and kept while no workspace changes: when the store
 * moved on, the change feed says whether a workspace was among the changes,
 * and only then are they read again. As with the role bindings (authz.c),
 * nothing read inside a transaction is kept (its own writes may roll back),
 * and the store is never read with ws_mu held. One server per process: a
 * server of another store takes the place over.
 */
struct ws_name {
	const char *leaf; /* in full */
	char *full;       /* org/tenant/ws */
};

struct ws_names {
	struct ws_name *v;
	size_t n, cap;
};

static pthread_mutex_t ws_mu = PTHREAD_MUTEX_INITIALIZER;
static struct ws_names ws_kept;
static int ws_have;
static uint64_t ws_rev;
static const srv *ws_owner;

static void ws_names_free(struct ws_names *w)
{
	for (size_t i = 0; i < w->n; i++)
		free(w->v[i].full);
	free(w->v);
	memset(w, 0, sizeof *w);
}

void srv_workspaces_free(void)
{
	pthread_mutex_lock(&ws_mu);
	ws_names_free(&ws_kept);
	ws_have = 0;
	ws_owner = NULL;
	pthread_mutex_unlock(&ws_mu);
}

static int ws_visit(void *arg, const zt_object *o)
{
	struct ws_names *w = arg;
	const char *slash = strrchr(o->name, '/');

	if (!slash)
		return 0;
	if (w->n == w->cap) {
		size_t cap = w->cap ? w->cap * 2 : 256;
		struct ws_name *grown = realloc(w->v, cap * sizeof *grown);

		if (!grown)
			return -1;
		w->v = grown;
		w->cap = cap;
	}
	if (!(w->v[w->n].full = strdup(o->name)))
		return -1;
	w->v[w->n].leaf = w->v[w->n].full + (slash - o->name) + 1;
	w->n++;
	return 0;
}

static int ws_cmp(const void *a, const void *b)
{
	const struct ws_name *x = a, *y = b;
	int c = strcmp(x->leaf, y->leaf);

	return c ? c : strcmp(x->full, y->full);
}

/* How many workspaces are named want; the first one's full name in ws. */
static size_t ws_find(const struct ws_names *w, const char *want, char *ws, size_t cap)
{
	size_t lo = 0, hi = w->n, found = 0;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (strcmp(w->v[mid].leaf, want) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (size_t i = lo; i < w->n && !strcmp(w->v[i].leaf, want); i++)
		if (found++ == 0)
			snprintf(ws, cap, "%s", w->v[i].full);
	return found;
}

/* 1 when a workspace was created or deleted after revision since (or the feed cannot say). */
static int ws_changed_since(srv *s, uint64_t since)
{
	zt_object *v;
	size_t n;

	if (zt_store_changes(s->store, since, "workspace", 1, &v, &n, NULL) != 0)
		return 1;
	zt_objects_free(v, n);
	return n > 0;
}

/*
 * How many workspaces of the store are named want (the first in ws), from
 * the kept names when they still hold; -1 with *e set when the store
 * cannot be read.
 */
static long ws_lookup(srv *s, const char *want, char *ws, size_t cap, zt_err *e)
{
	int in_tx = zt_store_in_transaction(s->store);
	uint64_t rev = zt_store_revision(s->store), kept = 0;
	int have = 0;
	long found = -1;
	struct ws_names fresh = {0};

	if (!in_tx) {
		pthread_mutex_lock(&ws_mu);
		if (ws_have && ws_owner == s) {
			have = 1;
			kept = ws_rev;
			if (kept >= rev)
				found = (long)ws_find(&ws_kept, want, ws, cap);
		}
		pthread_mutex_unlock(&ws_mu);
		if (found >= 0)
			return found;
		/* moved on, but perhaps not the workspaces: then what is kept holds at rev too */
		if (have && !ws_changed_since(s, kept)) {
			pthread_mutex_lock(&ws_mu);
			/* a newer reading may have taken the place: it holds at rev as well */
			if (ws_have && ws_owner == s && ws_rev >= kept) {
				if (ws_rev < rev)
					ws_rev = rev;
				found = (long)ws_find(&ws_kept, want, ws, cap);
			}
			pthread_mutex_unlock(&ws_mu);
			if (found >= 0)
				return found;
		}
	}
	if (srv_store_walk(s, "workspace", "", "", 0, ws_visit, &fresh, e) != 0) {
		ws_names_free(&fresh);
		return -1;
	}
	if (fresh.n)
		qsort(fresh.v, fresh.n, sizeof *fresh.v, ws_cmp);
	found = (long)ws_find(&fresh, want, ws, cap);
	if (!in_tx) {
		pthread_mutex_lock(&ws_mu);
		if (!ws_have || ws_owner != s || ws_rev < rev) {
			struct ws_names old = ws_kept;

			ws_kept = fresh;
			fresh = old;
			ws_have = 1;
			ws_rev = rev;
			ws_owner = s;
		}
		pthread_mutex_unlock(&ws_mu);
	}
	ws_names_free(&fresh);
	return found;
}

/*
 * The workspace a workload's SVID names (spiffe://TD/ns/WS/sa/SVC), as
 * ORG/TENANT/WS in the store. Workspace names are unique per organization;
 * one found in two organizations of the trust domain is ambiguous.
 */
int srv_workspace_of(srv *s, const char *principal, char *ws, size_t cap, zt_err *e)
{
	char want[80];
	const char *p;
	size_t tdl = strlen(s->td);

	if (strncmp(principal, "spiffe://", 9) || strncmp(principal + 9, s->td, tdl) ||
	    strncmp(principal + 9 + tdl, "/ns/", 4))
		return zt_err_rule(e, ZT_ENOENT, "not-found", "%s is not a workload of %s", principal,
				   s->td);
	p = principal + 9 + tdl + 4;
	size_t n = strcspn(p, "/");

	if (n == 0 || n >= sizeof want || strncmp(p + n, "/sa/", 4))
		return zt_err_rule(e, ZT_ENOENT, "not-found", "%s is not a workload ID", principal);
	memcpy(want, p, n);
	want[n] = '\0';
	long found = ws_lookup(s, want, ws, cap, e);

	if (found < 0)
		return -ZT_EIO;
	if (found != 1)
		return zt_err_rule(e, found ? ZT_ECONFLICT : ZT_ENOENT, found ? "conflict" : "not-found",
				   found ? "workspace \"%s\" is in more than one organization"
					 : "no workspace \"%s\" is declared",
				   want);
	return 0;
}

/* 1 if a policy stored as `name` applies at workspace ws (its scope is ws or above). */
static int applies(const char *name, const char *ws)
{
	char scope[ZT_STORE_NAME_MAX + 1];
	size_t n;

	if (split_name(name, scope, sizeof scope) != 0)
		return 0;
	n = strlen(scope);
	return !strncmp(ws, scope, n) && (ws[n] == '\0' || ws[n] == '/');
}

/* The documents of a watch's answer: the policies that apply at ws ("": all of them). */
struct watch_fill {
	json_t *docs;
	const char *ws;
};

static int watch_visit(void *arg, const zt_object *o)
{
	struct watch_fill *f = arg;
	json_t *d = json_object_get(o->body, "document");

	if (!d || (f->ws[0] && !applies(o->name, f->ws)))
		return 0;
	return json_array_append(f->docs, d) != 0 ? -1 : 0;
}

void srv_watch_policies(srv *s, const zt_http_req *q, zt_http_resp *r, const char *principal)
{
	char org[80] = "", ws[ZT_STORE_NAME_MAX + 1] = "";
	uint64_t since = 0, timeout = WATCH_TIMEOUT_DEFAULT;
	zt_err e;

	int has_since, has_timeout;

	if (srv_query_u64(q->query, "since", &since, &has_since) != 0 ||
	    srv_query_u64(q->query, "timeout", &timeout, &has_timeout) != 0 ||
	    (has_timeout && (timeout == 0 || timeout > WATCH_TIMEOUT_MAX))) {
		zt_http_resp_error(r, q, 400, "invalid", "since is a revision, timeout 1-%d seconds",
				   WATCH_TIMEOUT_MAX);
		return;
	}
	if (!strncmp(principal, "spiffe://", 9)) {
		/* a workload's proxy: the policies of its own workspace, no binding needed */
		if (srv_workspace_of(s, principal, ws, sizeof ws, &e) != 0) {
			srv_fail(r, q, &e);
			return;
		}
		snprintf(org, sizeof org, "%.*s", (int)strcspn(ws, "/"), ws);
	} else {
		/* a person or tool: a whole organization it may read */
		if (srv_query(q->query, "org", org, sizeof org) != 0 || !org[0] || strchr(org, '/')) {
			zt_http_resp_error(r, q, 400, "invalid", "give ?org=ORG");
			return;
		}
		if (!srv_allowed(s, principal, SRV_READ, "policy", org, NULL)) {
			srv_forbid(s, r, q, principal, "policy.watch", org);
			return;
		}
	}
	srv_watch_wait(s, since, timeout);

	uint64_t rev = zt_store_revision(s->store);
	struct watch_fill f = {json_array(), ws};
	json_t *orgdoc;
	char prefix[ZT_STORE_NAME_MAX + 2];

	if (!f.docs) {
		zt_http_resp_error(r, q, 500, "internal", "out of memory");
		return;
	}
	if (!(orgdoc = org_document(s, org, &e)) || json_array_append_new(f.docs, orgdoc) != 0) {
		json_decref(f.docs);
		if (orgdoc)
			zt_http_resp_error(r, q, 500, "internal", "out of memory");
		else
			srv_fail(r, q, &e);
		return;
	}
	/* every policy of the organization: a DENY past the first page must reach the proxies */
	snprintf(prefix, sizeof prefix, "%s/", org);
	if (srv_store_walk(s, "policy", prefix, "", 0, watch_visit, &f, &e) != 0) {
		json_decref(f.docs);
		srv_fail(r, q, &e);
		return;
	}
	zt_http_resp_json(r, 200, json_pack("{s:I,s:s,s:o,s:b}", "revision", (json_int_t)rev, "org",
					    org, "documents", f.docs, "changed", rev > since));
}
