/*
 * server/agents.c: nodes and what may run on them (issue 8).
 *
 *   POST /v1/jointokens           a one-time join token for a node (admin)
 *   POST /v1/agents/attest        an agent trades a join token and a CSR for
 *                                 its SVID spiffe://TD/zt/agent/NODE (no other credential)
 *   GET  /v1/agents               the nodes that joined; GET|DELETE /v1/agents/NODE
 *   GET  /v1/agents/self/entries  an agent's long poll for the entries of its node
 *   /v1/entries                   registration entries: a workload ID, the node it may be
 *                                 served on, and the selectors a process must match
 *
 * A join token is random, shown once, stored as its SHA-256, expires (10
 * minutes by default) and works once; a node name that joined cannot be
 * taken over by a second join until an administrator evicts it. Failed
 * joins count against the caller's address like failed logins.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/crypto.h"
#include "identity/identity.h"
#include "server/server_int.h"

#define JOIN_TTL_DEFAULT 600
#define JOIN_TTL_MAX (7 * 86400)
#define AGENT_SVID_TTL 3600
#define ENTRY_TTL_DEFAULT 3600
#define ENTRY_TTL_MAX (24 * 3600)
#define SELECTORS_MAX 16
#define SELECTOR_PATH_MAX 1024 /* 16 of them fit one audit entry */
#define SELECTOR_MAX (SELECTOR_PATH_MAX + 16)

/* ---- names and selectors ---- */

/*
 * A node name: 1-63 of a-z 0-9 - . , starting and ending with a letter or
 * digit (it is one segment of /v1/agents/NODE), and not a word those URLs
 * use ("attest", "self").
 */
int srv_node_ok(const char *n)
{
	size_t len = strlen(n);

	if (len == 0 || len > 63 || n[0] == '-' || n[0] == '.' || n[len - 1] == '-' ||
	    n[len - 1] == '.' || strstr(n, "..") || !strcmp(n, "attest") || !strcmp(n, "self"))
		return 0;
	for (size_t i = 0; i < len; i++)
		if (!((n[i] >= 'a' && n[i] <= 'z') || (n[i] >= '0' && n[i] <= '9') || n[i] == '-' ||
		      n[i] == '.'))
			return 0;
	return 1;
}

/* The node of an agent's ID spiffe://TD/zt/agent/NODE, into node; 0 if it is not one. */
int srv_agent_of(srv *s, const char *principal, char *node, size_t cap)
{
	char pre[300];
	size_t pl = (size_t)snprintf(pre, sizeof pre, "spiffe://%s/zt/agent/", s->td);

	if (strncmp(principal, pre, pl) || !srv_node_ok(principal + pl) ||
	    strlen(principal + pl) >= cap)
		return 0;
	snprintf(node, cap, "%s", principal + pl);
	return 1;
}

static int all_digits(const char *p, size_t max)
{
	size_t n = strlen(p);

	return n > 0 && n <= max && strspn(p, "0123456789") == n && (n == 1 || p[0] != '0');
}

/*
 * The selectors zt knows (docs/workload-api.md): unix:uid:N, unix:gid:N,
 * unix:path:/ABS, unix:sha256:HEX (the executable's digest), cgroup:/PREFIX.
 */
static int selector_ok(const char *v)
{
	if (!strncmp(v, "unix:uid:", 9) || !strncmp(v, "unix:gid:", 9))
		return all_digits(v + 9, 10) && strtoull(v + 9, NULL, 10) <= 0xffffffffull;
	if (!strncmp(v, "unix:path:", 10)) {
		/* a normalized absolute path: what readlink(/proc/PID/exe) can say */
		const char *p = v + 10;
		size_t n = strlen(p);

		return p[0] == '/' && n > 1 && n <= SELECTOR_PATH_MAX && !strstr(p, "//") &&
		       !strstr(p, "/../") && !strstr(p, "/./") && p[n - 1] != '/' &&
		       !(n >= 3 && !strcmp(p + n - 3, "/..")) && !(n >= 2 && !strcmp(p + n - 2, "/."));
	}
	if (!strncmp(v, "unix:sha256:", 12)) {
		if (strlen(v + 12) != 64)
			return 0;
		for (const char *p = v + 12; *p; p++)
			if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
				return 0;
		return 1;
	}
	if (!strncmp(v, "cgroup:", 7))
		return v[7] == '/' && strlen(v + 7) <= SELECTOR_PATH_MAX && !strstr(v + 7, "//");
	return 0;
}

/* A workload ID of this trust domain, and the service object it names; 0 or answered. */
static int workload_service(srv *s, const zt_http_req *q, zt_http_resp *r, const char *id_str,
			    zt_spiffe_id *id, char *svc, size_t cap)
{
	zt_err e;

	if (zt_id_parse(id_str, strlen(id_str), id, &e) != 0) {
		zt_http_resp_error(r, q, 400, "invalid", "\"id\": %s", e.msg);
		return -1;
	}
	return srv_service_of(s, q, r, id, svc, cap);
}

/* ---- join tokens ---- */

/* "ztj_<16 hex id>_<43 base64url secret>": secret's SHA-256 in hex into out. */
static void secret_hash(const char *secret, char out[65])
{
	uint8_t h[32];

	zt_sha256(secret, strlen(secret), h);
	zt_hex(h, sizeof h, out);
}

static void join_tokens(srv *s, const zt_http_req *q, zt_http_resp *r, const char *principal,
			int nseg)
{
	static const char *const members[] = {"node", "ttl", NULL};
	uint8_t rid[8], secret[32];
	char id[17], hash[65], token[96];
	int64_t ttl = JOIN_TTL_DEFAULT, now = zt_now();
	uint64_t v;
	zt_buf b64;
	json_t *b;
	zt_err e;

	if (nseg != 1 || strcmp(q->method, "POST")) {
		zt_http_resp_error(r, q, nseg == 1 ? 405 : 404, nseg == 1 ? "method" : "not-found",
				   "POST /v1/jointokens makes a join token");
		return;
	}
	if (!(b = srv_body_object(q, r, members)))
		return;
	const char *node = json_string_value(json_object_get(b, "node"));
	json_t *t = json_object_get(b, "ttl");

	if (!node || !srv_node_ok(node) ||
	    (t && (!json_is_string(t) ||
		   zt_duration_parse(json_string_value(t), JOIN_TTL_MAX, &ttl, NULL) != 0 || ttl < 10))) {
		zt_http_resp_error(r, q, 400, "invalid",
				   "a join token names its node (1-63 of a-z 0-9 - ., not attest or self) and may have "
				   "a ttl (10s to 7d, 10m by default)");
		json_decref(b);
		return;
	}
	if (!srv_allowed(s, principal, SRV_WRITE, "agent", "", NULL)) {
		srv_forbid(s, r, q, principal, "jointoken.create", node);
		json_decref(b);
		return;
	}
	zt_buf_init(&b64, 128);
	if (zt_random(rid, sizeof rid, &e) != 0 || zt_random(secret, sizeof secret, &e) != 0 ||
	    zt_base64_encode(secret, sizeof secret, 1, &b64, &e) != 0 ||
	    zt_buf_terminate(&b64, &e) != 0) {
		zt_buf_free(&b64, 1);
		json_decref(b);
		srv_fail(r, q, &e);
		return;
	}
	zt_hex(rid, sizeof rid, id);
	snprintf(token, sizeof token, "ztj_%s_%s", id, (const char *)b64.p);
	secret_hash((const char *)b64.p, hash);
	zt_buf_free(&b64, 1);
	zt_wipe(secret, sizeof secret);
	json_t *body = json_pack("{s:s,s:s,s:I,s:I,s:b,s:s}", "node", node, "sha256", hash,
				 "created", (json_int_t)now, "expires", (json_int_t)(now + ttl),
				 "used", 0, "created_by", principal);

	if (zt_store_begin(s->store, &e) != 0 ||
	    zt_store_put(s->store, "jointoken", id, body, 0, &v, &e) != 0) {
		zt_store_rollback(s->store);
		json_decref(body);
		json_decref(b);
		zt_wipe(token, sizeof token);
		srv_fail(r, q, &e);
		return;
	}
	json_decref(body);
	char exp[32];

	zt_audit_time_format((now + ttl) * 1000, exp);
	if (srv_commit_audited(s, q, principal, "jointoken.create", id,
			       json_pack("{s:s,s:s}", "node", node, "expires", exp), &e) != 0) {
		json_decref(b);
		zt_wipe(token, sizeof token);
		srv_fail(r, q, &e);
		return;
	}
	zt_http_resp_json(r, 201, json_pack("{s:s,s:s,s:s,s:s,s:s}", "id", id, "token", token, "node",
					    node, "expires", exp, "note",
					    "shown once and good for one join: hand it to the node's agent"));
	zt_wipe(token, sizeof token);
	json_decref(b);
}

/* ---- attestation ---- */

static void attest(srv *s, const zt_http_req *q, zt_http_resp *r)
{
	static const char *const members[] = {"token", "csr", NULL};
	char id[17], hash[65], sid[600], serial[64], nas[32];
	zt_pubkey *pub = NULL;
	zt_object o = {0};
	zt_buf pem, bpem;
	zt_spiffe_id aid;
	uint64_t v;
	json_t *b;
	zt_err e;

	if (srv_too_many_failures(s, q, r))
		return;
	if (!(b = srv_body_object(q, r, members)))
		return;
	zt_buf_init(&pem, 1u << 16);
	zt_buf_init(&bpem, 1u << 20);
	const char *tok = json_string_value(json_object_get(b, "token"));
	const char *csr = json_string_value(json_object_get(b, "csr"));

	if (!tok || !csr || strlen(tok) != 4 + 16 + 1 + 43 || strncmp(tok, "ztj_", 4) || tok[20] != '_') {
		srv_count_failure(s, q);
		zt_http_resp_error(r, q, 401, "unauthenticated",
				   "send {\"token\": a join token (ztj_...), \"csr\": PKCS#10 PEM}");
		goto out;
	}
	memcpy(id, tok + 4, 16);
	id[16] = '\0';
	for (size_t i = 0; i < 16; i++)
		if (zt_hex_value((unsigned char)id[i]) < 0)
			id[0] = '\0';
	if (!(pub = zt_csr_parse((const uint8_t *)csr, strlen(csr), &e))) {
		zt_http_resp_error(r, q, 400, "invalid", "the certificate request: %s", e.msg);
		goto out;
	}
	if (zt_store_begin(s->store, &e) != 0) {
		srv_fail(r, q, &e);
		goto out;
	}
	secret_hash(tok + 21, hash);
	/* one answer for unknown, wrong, used and expired: nothing to probe */
	const char *want = NULL;

	if (!id[0] || zt_store_get(s->store, "jointoken", id, &o, &e) != 0 ||
	    !(want = json_string_value(json_object_get(o.body, "sha256"))) || strlen(want) != 64 ||
	    !zt_ct_equal(want, hash, 64) || json_is_true(json_object_get(o.body, "used")) ||
	    json_integer_value(json_object_get(o.body, "expires")) <= zt_now()) {
		zt_store_rollback(s->store);
		srv_count_failure(s, q);
		zt_log(ZT_LOG_WARN, "api: join refused", "request_id", q->request_id, "remote",
		       q->remote, NULL);
		zt_http_resp_error(r, q, 401, "unauthenticated",
				   "unknown, used or expired join token: ask an administrator for a "
				   "new one (zt join-token create)");
		goto out;
	}
	const char *node = json_string_value(json_object_get(o.body, "node"));
	zt_object have;

	if (!node || !srv_node_ok(node)) {
		zt_store_rollback(s->store);
		zt_http_resp_error(r, q, 500, "internal", "the join token names no node");
		goto out;
	}
	if (zt_store_get(s->store, "agent", node, &have, &e) == 0) {
		zt_object_clear(&have);
		zt_store_rollback(s->store);
		zt_http_resp_error(r, q, 409, "exists",
				   "node %s has joined already: a node name is never taken over; an "
				   "administrator evicts it first (DELETE /v1/agents/%s)", node, node);
		goto out;
	}
	snprintf(sid, sizeof sid, "spiffe://%s/zt/agent/%s", s->td, node);
	if (zt_id_parse(sid, strlen(sid), &aid, &e) != 0 ||
	    srv_sign(s, &aid, pub, AGENT_SVID_TTL, &pem, serial, nas, &e) != 0) {
		zt_store_rollback(s->store);
		srv_fail(r, q, &e);
		goto out;
	}
	/* the token is spent; the node is taken */
	json_object_set_new(o.body, "used", json_true());
	json_object_set_new(o.body, "used_ms", json_integer(zt_now_ms()));
	json_t *ab = json_pack("{s:s,s:s,s:s,s:[s],s:s}", "node", node, "id", sid, "serial", serial,
			       "serials", serial, "joined_with", id);

	if (zt_store_put(s->store, "jointoken", id, o.body, o.version, &v, &e) != 0 ||
	    zt_store_put(s->store, "agent", node, ab, 0, &v, &e) != 0) {
		json_decref(ab);
		zt_store_rollback(s->store);
		srv_fail(r, q, &e);
		goto out;
	}
	json_decref(ab);
	char actor[32];

	snprintf(actor, sizeof actor, "jointoken:%s", id);
	if (srv_commit_audited(s, q, actor, "agent.join", sid,
			       json_pack("{s:s,s:s,s:s}", "node", node, "serial", serial,
					 "not_after", nas), &e) != 0 ||
	    srv_bundle_pem(s, &bpem) != 0) {
		srv_fail(r, q, &e);
		goto out;
	}
	zt_http_resp_json(r, 201, json_pack("{s:s,s:s,s:s,s:s,s:s%,s:s%}", "id", sid, "node", node,
					    "serial", serial, "not_after", nas, "chain",
					    (const char *)pem.p, pem.len, "bundle",
					    (const char *)bpem.p, bpem.len));
out:
	zt_object_clear(&o);
	zt_pubkey_free(pub);
	zt_buf_free(&pem, 0);
	zt_buf_free(&bpem, 0);
	json_decref(b);
}

int srv_agent_ok(srv *s, const zt_http_req *q, const char *node, zt_object *out)
{
	zt_object o;
	json_t *v;
	size_t i;
	int ok = 0;

	if (!q->peer_serial || !q->peer_serial[0] || zt_store_get(s->store, "agent", node, &o, NULL) != 0)
		return 0;
	/* the certificate it presents is one this server gave it since it joined: an SVID of an
	 * evicted agent stays refused when its node name joins again */
	json_array_foreach(json_object_get(o.body, "serials"), i, v)
		ok |= json_is_string(v) && !strcmp(json_string_value(v), q->peer_serial);
	if (ok && out)
		*out = o;
	else
		zt_object_clear(&o);
	return ok;
}

int srv_agent_renewed(srv *s, const zt_http_req *q, const char *node, zt_object *agent,
		      const char *serial, zt_err *e)
{
	json_t *body = json_deep_copy(agent->body);
	uint64_t v;
	int r;

	if (!body)
		return zt_err_set(e, ZT_ENOMEM, "out of memory");
	/* the new certificate, and the one it was renewed with: its threads switch over */
	json_object_set_new(body, "serial", json_string(serial));
	json_object_set_new(body, "serials", json_pack("[s,s]", serial, q->peer_serial));
	if ((r = zt_store_begin(s->store, e)) == 0 &&
	    (r = zt_store_put(s->store, "agent", node, body, agent->version, &v, e)) != 0)
		zt_store_rollback(s->store);
	json_decref(body);
	return r;
}

/* ---- entries ---- */

/* The entry's name: the same node, ID and selectors are the same entry. */
static void entry_name(const char *node, const char *id, json_t *sels, char out[33])
{
	uint8_t h[32];
	zt_buf all;
	size_t i;
	json_t *v;

	zt_buf_init(&all, 1u << 20);
	if (zt_buf_appendf(&all, NULL, "%s%c%s", node, 0, id) != 0)
		all.len = 0;
	json_array_foreach(sels, i, v)
		if (zt_buf_appendf(&all, NULL, "%c%s", 0, json_string_value(v)) != 0)
			all.len = 0;
	zt_sha256(all.p ? all.p : (const uint8_t *)"", all.len, h);
	zt_buf_free(&all, 0);
	zt_hex(h, 16, out);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(json_string_value(*(json_t *const *)a), json_string_value(*(json_t *const *)b));
}

/* The selectors, checked, without duplicates, sorted; NULL with 400 answered. */
static json_t *selectors(const zt_http_req *q, zt_http_resp *r, json_t *in)
{
	json_t *v, *list[SELECTORS_MAX], *out;
	size_t i, n = 0;

	if (!json_is_array(in) || json_array_size(in) == 0 || json_array_size(in) > SELECTORS_MAX) {
		zt_http_resp_error(r, q, 400, "invalid",
				   "\"selectors\" is a list of 1 to %d selectors: an entry that matches "
				   "every process is refused", SELECTORS_MAX);
		return NULL;
	}
	json_array_foreach(in, i, v) {
		const char *sv = json_string_value(v);

		if (!sv || strlen(sv) > SELECTOR_MAX || !selector_ok(sv)) {
			zt_http_resp_error(r, q, 400, "invalid",
					   "selector %zu: %.100s is not one zt knows: unix:uid:N, "
					   "unix:gid:N, unix:path:/ABSOLUTE, unix:sha256:HEX, cgroup:/PREFIX",
					   i + 1, sv ? sv : "(not a string)");
			return NULL;
		}
		size_t k;

		for (k = 0; k < n && strcmp(json_string_value(list[k]), sv); k++)
			;
		if (k == n)
			list[n++] = v;
	}
	qsort(list, n, sizeof list[0], cmp_str);
	out = json_array();
	for (i = 0; i < n; i++)
		json_array_append(out, list[i]);
	return out;
}

/* The service an entry's ID names, for the caller's rights on it ("" if none). */
static void entry_service(srv *s, const json_t *body, char *svc, size_t cap)
{
	const char *id = json_string_value(json_object_get(body, "id"));
	const char *sa = id ? strstr(id, "/sa/") : NULL;
	char ws[ZT_STORE_NAME_MAX + 1];

	svc[0] = '\0';
	if (sa && srv_workspace_of(s, id, ws, sizeof ws, NULL) == 0)
		snprintf(svc, cap, "%s/%s", ws, sa + 4);
}

/* GET /v1/entries: who asks, and the node asked about ("" for every node). */
struct entry_filter {
	const char *principal;
	int everything; /* a reader at the top: no entry's service need be looked up */
	char node[256];
};

/* An entry's list item: of the node asked about, for a service the caller may read. */
static int entry_listed(srv *s, const zt_object *o, void *arg, json_t **item)
{
	const struct entry_filter *f = arg;
	const char *en = json_string_value(json_object_get(o->body, "node"));
	char svc[ZT_STORE_NAME_MAX + 80];

	*item = NULL;
	if (f->node[0] && (!en || strcmp(en, f->node)))
		return 0;
	if (!f->everything) {
		/* what the caller may read: entries of services it may read */
		entry_service(s, o->body, svc, sizeof svc);
		if (!srv_allowed(s, f->principal, SRV_READ, "service", svc[0] ? svc : "/", NULL))
			return 0;
	}
	return (*item = srv_object_json(o)) ? 0 : -1;
}

static void entries(srv *s, const zt_http_req *q, zt_http_resp *r, const char *principal,
		    char seg[][64], int nseg)
{
	static const char *const members[] = {"id", "node", "selectors", "ttl", NULL};
	char svc[ZT_STORE_NAME_MAX + 80], name[33];
	zt_spiffe_id id;
	zt_object o;
	uint64_t v;
	zt_err e;

	if (nseg == 1 && !strcmp(q->method, "GET")) {
		struct entry_filter f = {principal, 0, ""};
		srv_page page;

		if (srv_query(q->query, "node", f.node, sizeof f.node) < 0) {
			zt_http_resp_error(r, q, 400, "invalid", "?node is too long or badly escaped");
			return;
		}
		if (srv_page_parse(q, r, &page) != 0)
			return;
		/* a binding at the top reads every service ("/" is under no other scope) */
		f.everything = srv_allowed(s, principal, SRV_READ, "service", "/", NULL);
		srv_list_page(s, q, r, &page, "entry", "", entry_listed, &f);
		return;
	}
	if (nseg == 1 && !strcmp(q->method, "POST")) {
		json_t *b = srv_body_object(q, r, members), *sels = NULL;
		int64_t ttl = ENTRY_TTL_DEFAULT;

		if (!b)
			return;
		const char *ids = json_string_value(json_object_get(b, "id"));
		const char *node = json_string_value(json_object_get(b, "node"));
		json_t *t = json_object_get(b, "ttl");

		if (!ids || !node || !srv_node_ok(node) ||
		    (t && (!json_is_string(t) ||
			   zt_duration_parse(json_string_value(t), ENTRY_TTL_MAX, &ttl, NULL) != 0 ||
			   ttl < 60))) {
			zt_http_resp_error(r, q, 400, "invalid",
					   "an entry has an \"id\" (a workload SPIFFE ID), a \"node\" "
					   "(1-63 of a-z 0-9 - .), \"selectors\" and maybe a \"ttl\" "
					   "for its SVIDs (1m to 24h, 1h by default)");
			json_decref(b);
			return;
		}
		if (workload_service(s, q, r, ids, &id, svc, sizeof svc) != 0 ||
		    !(sels = selectors(q, r, json_object_get(b, "selectors")))) {
			json_decref(b);
			return;
		}
		if (!srv_allowed(s, principal, SRV_WRITE, "service", svc, NULL)) {
			srv_forbid(s, r, q, principal, "entry.create", id.str);
			json_decref(sels);
			json_decref(b);
			return;
		}
		entry_name(node, id.str, sels, name);
		json_t *body = json_pack("{s:s,s:s,s:O,s:I,s:s}", "id", id.str, "node", node,
					 "selectors", sels, "ttl", (json_int_t)ttl, "created_by",
					 principal);

		if (zt_store_begin(s->store, &e) != 0 ||
		    zt_store_put(s->store, "entry", name, body, 0, &v, &e) != 0) {
			zt_store_rollback(s->store);
			json_decref(body);
			json_decref(sels);
			json_decref(b);
			srv_fail(r, q, &e);
			return;
		}
		json_decref(body);
		/* node points into b: the details first, then b goes */
		json_t *det = json_pack("{s:s,s:s,s:o}", "id", id.str, "node", node, "selectors", sels);

		json_decref(b);
		if (srv_commit_audited(s, q, principal, "entry.create", name, det, &e) != 0 ||
		    zt_store_get(s->store, "entry", name, &o, &e) != 0) {
			srv_fail(r, q, &e);
			return;
		}
		zt_http_resp_json(r, 201, srv_object_json(&o));
		zt_object_clear(&o);
		return;
	}
	if (nseg == 2 && strlen(seg[1]) == 32 && zt_store_name_ok(seg[1]) &&
	    (!strcmp(q->method, "GET") || !strcmp(q->method, "DELETE"))) {
		int del = !strcmp(q->method, "DELETE");

		if (zt_store_get(s->store, "entry", seg[1], &o, &e) != 0) {
			srv_fail(r, q, &e);
			return;
		}
		entry_service(s, o.body, svc, sizeof svc);
		if (!srv_allowed(s, principal, del ? SRV_WRITE : SRV_READ, "service",
				 svc[0] ? svc : "/", NULL)) {
			srv_forbid(s, r, q, principal, del ? "entry.delete" : "entry.get", seg[1]);
			zt_object_clear(&o);
			return;
		}
		srv_get_or_delete(s, q, r, principal, &o, del, "entry.delete", "name", "deleted");
		return;
	}
	int known = nseg == 1 || (nseg == 2 && strlen(seg[1]) == 32 && zt_store_name_ok(seg[1]));

	zt_http_resp_error(r, q, known ? 405 : 404, known ? "method" : "not-found",
			   "entries: GET or POST /v1/entries, GET or DELETE /v1/entries/NAME (32 hex)");
}

/*
 * The entries as (node, id, ttl), parsed once per store revision: every
 * SVID an agent asks for is checked against them, and parsing every
 * entry's JSON per request was most of an issue's cost. As with role
 * bindings, nothing read inside a transaction is kept.
 */
struct entry_key {
	char *node, *id;
	int64_t ttl;
};

static pthread_mutex_t entries_mu = PTHREAD_MUTEX_INITIALIZER;
static struct entry_key *entries_cache;
static size_t entries_n;
static uint64_t entries_rev;
static const srv *entries_owner;

static void entry_keys_free(struct entry_key *k, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(k[i].node);
		free(k[i].id);
	}
	free(k);
}

static int entry_keys_load(srv *s, struct entry_key **out, size_t *nout)
{
	char after[ZT_STORE_NAME_MAX + 1] = "";
	struct entry_key *k = NULL;
	size_t nk = 0;

	for (;;) {
		zt_object *list;
		size_t n;

		if (zt_store_list(s->store, "entry", "", after, ZT_STORE_LIST_MAX, &list, &n, NULL) != 0) {
			entry_keys_free(k, nk);
			return -1;
		}
		struct entry_key *grown = realloc(k, (nk + n + 1) * sizeof *k);

		if (!grown) {
			zt_objects_free(list, n);
			entry_keys_free(k, nk);
			return -1;
		}
		k = grown;
		for (size_t i = 0; i < n; i++) {
			const char *en = json_string_value(json_object_get(list[i].body, "node"));
			const char *ei = json_string_value(json_object_get(list[i].body, "id"));

			if (!en || !ei)
				continue;
			k[nk] = (struct entry_key){strdup(en), strdup(ei),
						   json_integer_value(json_object_get(list[i].body, "ttl"))};
			nk++;
			if (!k[nk - 1].node || !k[nk - 1].id) {
				zt_objects_free(list, n);
				entry_keys_free(k, nk);
				return -1;
			}
		}
		if (n < ZT_STORE_LIST_MAX) {
			zt_objects_free(list, n);
			break;
		}
		snprintf(after, sizeof after, "%s", list[n - 1].name);
		zt_objects_free(list, n);
	}
	*out = k;
	*nout = nk;
	return 0;
}

static int64_t ttl_in(const struct entry_key *k, size_t n, const char *node, const char *id)
{
	int64_t ttl = 0;

	for (size_t i = 0; i < n; i++)
		if (k[i].ttl > ttl && !strcmp(k[i].node, node) && !strcmp(k[i].id, id))
			ttl = k[i].ttl;
	return ttl;
}

int64_t srv_entry_ttl(srv *s, const char *node, const char *id)
{
	int in_tx = zt_store_in_transaction(s->store);
	uint64_t rev = zt_store_revision(s->store);
	struct entry_key *k;
	size_t n;
	int64_t ttl;

	if (!in_tx) {
		pthread_mutex_lock(&entries_mu);
		if (entries_cache && entries_owner == s && entries_rev == rev) {
			ttl = ttl_in(entries_cache, entries_n, node, id);
			pthread_mutex_unlock(&entries_mu);
			return ttl;
		}
		pthread_mutex_unlock(&entries_mu);
	}
	if (entry_keys_load(s, &k, &n) != 0)
		return 0;
	ttl = ttl_in(k, n, node, id);
	pthread_mutex_lock(&entries_mu);
	if (!in_tx && (!entries_cache || entries_owner != s || entries_rev < rev)) {
		entry_keys_free(entries_cache, entries_n);
		entries_cache = k;
		entries_n = n;
		entries_rev = rev;
		entries_owner = s;
		k = NULL;
	}
	pthread_mutex_unlock(&entries_mu);
	entry_keys_free(k, k ? n : 0);
	return ttl;
}

void srv_entries_free(void)
{
	pthread_mutex_lock(&entries_mu);
	entry_keys_free(entries_cache, entries_n);
	entries_cache = NULL;
	entries_n = 0;
	entries_owner = NULL;
	pthread_mutex_unlock(&entries_mu);
}

/* ---- agents ---- */

/* An agent's entries: its node, and what it is given of each entry of that node. */
struct node_entries {
	const char *node;
	json_t *items;
};

static int node_entry(void *arg, const zt_object *o)
{
	struct node_entries *ne = arg;
	const char *en = json_string_value(json_object_get(o->body, "node"));

	if (!en || strcmp(en, ne->node))
		return 0;
	json_t *j = json_pack("{s:s,s:O,s:O,s:O}", "name", o->name, "id",
			      json_object_get(o->body, "id"), "selectors",
			      json_object_get(o->body, "selectors"), "ttl",
			      json_object_get(o->body, "ttl"));

	if (!j)
		return 0; /* as before: an entry missing a member is not given */
	return json_array_append_new(ne->items, j) != 0 ? -1 : 0;
}

static void agent_entries(srv *s, const zt_http_req *q, zt_http_resp *r, const char *principal)
{
	char node[256];
	uint64_t since = 0, timeout = 30;
	int has_since, has_timeout;
	zt_err e;

	if (!srv_agent_of(s, principal, node, sizeof node) || !srv_agent_ok(s, q, node, NULL)) {
		srv_forbid(s, r, q, principal, "agent.entries", "self");
		return;
	}
	if (srv_query_u64(q->query, "since", &since, &has_since) != 0 ||
	    srv_query_u64(q->query, "timeout", &timeout, &has_timeout) != 0 ||
	    (has_timeout && (timeout == 0 || timeout > 60))) {
		zt_http_resp_error(r, q, 400, "invalid", "since is a revision, timeout 1-60 seconds");
		return;
	}
	srv_watch_wait(s, since, timeout);
	uint64_t rev = zt_store_revision(s->store);

	if (!srv_agent_ok(s, q, node, NULL)) {
		srv_forbid(s, r, q, principal, "agent.entries", "self");
		return;
	}
	struct node_entries ne = {node, json_array()};

	/* every entry of every node: the node's may be anywhere among them */
	if (!ne.items || srv_store_walk(s, "entry", "", "", 0, node_entry, &ne, &e) != 0) {
		json_decref(ne.items);
		srv_fail(r, q, &e);
		return;
	}
	zt_http_resp_json(r, 200, json_pack("{s:I,s:s,s:o,s:b}", "revision", (json_int_t)rev, "node",
					    node, "entries", ne.items, "changed", rev > since));
}

static void agents(srv *s, const zt_http_req *q, zt_http_resp *r, const char *principal,
		   char seg[][64], int nseg)
{
	zt_object o;
	zt_err e;

	if (nseg == 3 && !strcmp(seg[1], "self") && !strcmp(seg[2], "entries") &&
	    !strcmp(q->method, "GET")) {
		agent_entries(s, q, r, principal);
		return;
	}
	if (nseg == 1 && !strcmp(q->method, "GET")) {
		srv_page page;

		if (!srv_allowed(s, principal, SRV_READ, "agent", "", NULL)) {
			srv_forbid(s, r, q, principal, "agent.list", "");
			return;
		}
		if (srv_page_parse(q, r, &page) != 0)
			return;
		srv_list_page(s, q, r, &page, "agent", "", NULL, NULL);
		return;
	}
	if (nseg == 2 && srv_node_ok(seg[1]) &&
	    (!strcmp(q->method, "GET") || !strcmp(q->method, "DELETE"))) {
		int del = !strcmp(q->method, "DELETE");

		if (!srv_allowed(s, principal, del ? SRV_WRITE : SRV_READ, "agent", "", NULL)) {
			srv_forbid(s, r, q, principal, del ? "agent.evict" : "agent.get", seg[1]);
			return;
		}
		if (zt_store_get(s->store, "agent", seg[1], &o, &e) != 0) {
			srv_fail(r, q, &e);
			return;
		}
		/* evicted: its SVID renews no more and issues nothing; the name may join again */
		srv_get_or_delete(s, q, r, principal, &o, del, "agent.evict", "node", "evicted");
		return;
	}
	if (nseg == 1 || (nseg == 2 && srv_node_ok(seg[1])))
		zt_http_resp_error(r, q, 405, "method",
				   "agents: GET /v1/agents, GET or DELETE /v1/agents/NODE");
	else
		zt_http_resp_error(r, q, 404, "not-found", "no such resource: %s", q->path);
}

/* ---- the routes ---- */

int srv_agents_public(srv *s, const zt_http_req *q, zt_http_resp *r, char seg[][64], int nseg)
{
	if (nseg == 2 && !strcmp(seg[0], "agents") && !strcmp(seg[1], "attest")) {
		if (strcmp(q->method, "POST"))
			zt_http_resp_error(r, q, 405, "method", "POST a join token and a CSR");
		else
			attest(s, q, r);
		return 1;
	}
	return 0;
}

int srv_agents_route(srv *s, const zt_http_req *q, zt_http_resp *r, const char *principal,
		     char seg[][64], int nseg)
{
	if (!strcmp(seg[0], "jointokens"))
		join_tokens(s, q, r, principal, nseg);
	else if (!strcmp(seg[0], "agents"))
		agents(s, q, r, principal, seg, nseg);
	else if (!strcmp(seg[0], "entries"))
		entries(s, q, r, principal, seg, nseg);
	else
		return 0;
	return 1;
}
