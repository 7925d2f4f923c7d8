/*
 * server/policies.c: authorization policies, kept centrally.
 *
 * A policy is an AuthorizationPolicy document (docs/policy.md) attached to
 * a scope of the hierarchy. Before a policy is stored, the whole
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

/* The Organization document of org, from the store. */
static json_t *org_document(srv *s, const char *org, zt_err *e)
{
	json_t *tenants = json_array();
	char prefix[ZT_STORE_NAME_MAX + 2];
	zt_object *tv = NULL, *wv = NULL, *sv = NULL;
	size_t tn = 0, wn = 0, sn = 0;

	snprintf(prefix, sizeof prefix, "%s/", org);
	if (zt_store_list(s->store, "tenant", prefix, "", ZT_STORE_LIST_MAX, &tv, &tn, e) != 0 ||
	    zt_store_list(s->store, "workspace", prefix, "", ZT_STORE_LIST_MAX, &wv, &wn, e) != 0 ||
	    zt_store_list(s->store, "service", prefix, "", ZT_STORE_LIST_MAX, &sv, &sn, e) != 0) {
		json_decref(tenants);
		tenants = NULL;
		goto out;
	}
	for (size_t t = 0; t < tn; t++) {
		json_t *ws = json_array();
		size_t tl = strlen(tv[t].name);

		for (size_t w = 0; w < wn; w++) {
			if (strncmp(wv[w].name, tv[t].name, tl) || wv[w].name[tl] != '/')
				continue;
			json_t *svc = json_array();
			size_t wl = strlen(wv[w].name);

			for (size_t i = 0; i < sn; i++)
				if (!strncmp(sv[i].name, wv[w].name, wl) && sv[i].name[wl] == '/')
					json_array_append_new(svc, json_string(sv[i].name + wl + 1));
			json_array_append_new(ws, json_pack("{s:s,s:o}", "name", wv[w].name + tl + 1,
							    "services", svc));
		}
		json_array_append_new(tenants, json_pack("{s:s,s:o}", "name",
							 tv[t].name + strlen(org) + 1, "workspaces",
							 ws));
	}
out:
	zt_objects_free(tv, tn);
	zt_objects_free(wv, wn);
	zt_objects_free(sv, sn);
	if (!tenants)
		return NULL;
	return json_pack("{s:s,s:s,s:{s:s},s:{s:s,s:o}}", "apiVersion", "zt.dev/v1", "kind",
			 "Organization", "metadata", "name", org, "spec", "trustDomain", s->td,
			 "tenants", tenants);
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

/*
 * Checks org's policies with `replace` (store name) taken out and `doc`
 * (NULL for a delete) put in. 0, or 400 written to r with the diagnostics.
 */
static int check_set(srv *s, const zt_http_req *q, zt_http_resp *r, const char *org,
		     const char *replace, json_t *doc)
{
	zt_policy_src *src = zt_policy_src_new(NULL);
	json_t *orgdoc = NULL;
	zt_object *pv = NULL;
	size_t pn = 0;
	char prefix[ZT_STORE_NAME_MAX + 2];
	zt_err e;
	int rc = -1;

	snprintf(prefix, sizeof prefix, "%s/", org);
	if (!src || !(orgdoc = org_document(s, org, &e)) ||
	    zt_store_list(s->store, "policy", prefix, "", ZT_STORE_LIST_MAX, &pv, &pn, &e) != 0) {
		zt_http_resp_error(r, q, 503, "unavailable", "cannot read the organization: %s",
				   src ? e.msg : "out of memory");
		goto out;
	}
	add_doc(src, "organization", orgdoc);
	/* `orgsrc` also names the org policies in the loader's own check */
	json_decref(orgdoc);
	for (size_t i = 0; i < pn; i++) {
		if (replace && !strcmp(pv[i].name, replace))
			continue;
		json_t *d = json_object_get(pv[i].body, "document");

		if (d)
			add_doc(src, pv[i].name, d);
	}
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
out:
	zt_objects_free(pv, pn);
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
	if (!kind || strcmp(kind, "AuthorizationPolicy") || !api || strcmp(api, "zt.dev/v1") ||
	    !name || !scope || json_object_get(md, "namespace")) {
		zt_http_resp_error(r, q, 400, "invalid",
				   "the body is a zt.dev/v1 AuthorizationPolicy with metadata.name "
				   "and metadata.scope and no metadata.namespace (docs/policy.md; "
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
		/* ?scope=S: the policies at S and below */
		char sc[ZT_STORE_NAME_MAX + 1] = "", prefix[ZT_STORE_NAME_MAX + 2];
		zt_object *v;
		size_t n;

		if (srv_query(q->query, "scope", sc, sizeof sc) != 0 || !sc[0] ||
		    !zt_store_name_ok(sc)) {
			zt_http_resp_error(r, q, 400, "invalid", "give ?scope=org[/tenant[/workspace]]");
			return;
		}
		if (!srv_allowed(s, principal, SRV_READ, "policy", sc, NULL)) {
			srv_forbid(s, r, q, principal, "policy.list", sc);
			return;
		}
		snprintf(prefix, sizeof prefix, "%s/", sc);
		if (zt_store_list(s->store, "policy", prefix, "", ZT_STORE_LIST_MAX, &v, &n, &e) != 0) {
			srv_fail(r, q, &e);
			return;
		}
		json_t *items = json_array();

		for (size_t i = 0; i < n; i++)
			json_array_append_new(items, policy_json(&v[i]));
		zt_objects_free(v, n);
		zt_http_resp_json(r, 200, json_pack("{s:o}", "items", items));
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
		zt_object *v;
		size_t n;

		if (zt_store_history(s->store, "policy", full, 0, 100, &v, &n, &e) != 0) {
			srv_fail(r, q, &e);
			return;
		}
		if (n == 0) {
			zt_objects_free(v, n);
			zt_http_resp_error(r, q, 404, "not-found", "policy %s has no history", full);
			return;
		}
		json_t *items = json_array();

		for (size_t i = 0; i < n; i++) {
			snprintf(v[i].name, sizeof v[i].name, "%s", full);
			json_array_append_new(items, policy_json(&v[i]));
		}
		zt_objects_free(v, n);
		zt_http_resp_json(r, 200, json_pack("{s:o}", "items", items));
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
	char after[ZT_STORE_NAME_MAX + 1] = "";
	int found = 0;

	for (;;) {
		zt_object *v;
		size_t cnt;

		if (zt_store_list(s->store, "workspace", "", after, ZT_STORE_LIST_MAX, &v, &cnt, e) != 0)
			return -ZT_EIO;
		for (size_t i = 0; i < cnt; i++) {
			const char *last = strrchr(v[i].name, '/');

			if (last && !strcmp(last + 1, want)) {
				snprintf(ws, cap, "%s", v[i].name);
				found++;
			}
		}
		if (cnt < ZT_STORE_LIST_MAX) {
			zt_objects_free(v, cnt);
			break;
		}
		snprintf(after, sizeof after, "%s", v[cnt - 1].name);
		zt_objects_free(v, cnt);
	}
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
	json_t *docs = json_array(), *orgdoc;
	zt_object *pv;
	size_t pn;
	char prefix[ZT_STORE_NAME_MAX + 2];

	if (!(orgdoc = org_document(s, org, &e))) {
		json_decref(docs);
		srv_fail(r, q, &e);
		return;
	}
	json_array_append_new(docs, orgdoc);
	snprintf(prefix, sizeof prefix, "%s/", org);
	if (zt_store_list(s->store, "policy", prefix, "", ZT_STORE_LIST_MAX, &pv, &pn, &e) != 0) {
		json_decref(docs);
		srv_fail(r, q, &e);
		return;
	}
	for (size_t i = 0; i < pn; i++)
		if (!ws[0] || applies(pv[i].name, ws))
			json_array_append(docs, json_object_get(pv[i].body, "document"));
	zt_objects_free(pv, pn);
	zt_http_resp_json(r, 200, json_pack("{s:I,s:s,s:o,s:b}", "revision", (json_int_t)rev, "org",
					    org, "documents", docs, "changed", rev > since));
}
