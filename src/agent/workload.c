/*
 * agent/workload.c: the Workload API (docs/workload-api.md), HTTP/1.1 with
 * JSON over the agent's Unix socket.
 *
 *   GET /v1/svids                    the caller's SVIDs: chain, key, expiry; and the bundle
 *   GET /v1/svids?since=G&timeout=S  the same once they changed after generation G
 *                                    (a rotation), or after S seconds (1-300)
 *   GET /v1/bundle                   the trust bundle (PEM)
 *   GET /v1/jwtsvids?audience=A[&audience=B...][&id=SPIFFE-ID]
 *                                    JWT-SVIDs for those audiences: one per ID the
 *                                    caller's entries name, or the one ?id= names
 *   GET /v1/jwtbundle                the JWT authorities (JWK Set, "use": "jwt-svid")
 *
 * Every request must carry "X-Zt-Workload: true" (as the SPIFFE Workload
 * Endpoint asks for its header: a request relayed by something that
 * forwards HTTP without meaning to is refused). The caller is attested on
 * every request (attest.c); it gets the SVIDs of the entries it matches,
 * and a caller that matches none gets a 403 that says what it was seen as,
 * and nothing else.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agent/agent_int.h"

#define WAIT_MAX_S 300

static int header_true(const zt_http_req *q)
{
	const zt_http1_field *f = zt_http1_field_get(q->head->fields, q->head->nfields, "x-zt-workload", NULL);

	return f && f->value_len == 4 && !strncmp(f->value, "true", 4);
}

/* The caller's SVIDs as JSON (NULL when it matches no entry); a->mu held. */
static json_t *svids_for(struct ag *a, const struct ag_facts *f, int *matched)
{
	json_t *out = json_array(), *en;
	int64_t now = zt_now();
	size_t i;

	*matched = 0;
	json_array_foreach(a->entries, i, en) {
		const char *name = json_string_value(json_object_get(en, "name"));

		if (!name || !ag_selectors_match(f, json_object_get(en, "selectors")))
			continue;
		(*matched)++;
		for (size_t k = 0; k < a->nsvids; k++) {
			struct ag_svid *s = &a->svids[k];
			char na[32];

			if (strcmp(s->entry, name) || s->not_after <= now)
				continue;
			zt_time_format(s->not_after, na, sizeof na);
			json_array_append_new(out, json_pack("{s:s,s:s,s:s,s:s}", "id", s->id, "chain",
							     s->chain_pem, "key", s->key_pem,
							     "not_after", na));
		}
	}
	return out;
}

static void svids(struct ag *a, const zt_http_req *q, zt_http_resp *r)
{
	struct ag_facts f;
	uint64_t since = 0, timeout = 0;
	int watch = 0, matched;
	zt_err e;
	char v[32];

	/* ?since=G&timeout=S: a long poll for the next rotation */
	const char *qs = q->query;

	if (*qs) {
		unsigned long long s1 = 0, t1 = 30;
		int n = 0;

		if (sscanf(qs, "since=%20llu%n", &s1, &n) == 1 && (qs[n] == '\0' || qs[n] == '&')) {
			watch = 1;
			since = s1;
			if (qs[n] == '&' && (sscanf(qs + n + 1, "timeout=%20llu", &t1) != 1 || t1 == 0 ||
					     t1 > WAIT_MAX_S)) {
				zt_http_resp_error(r, q, 400, "invalid", "?since=GENERATION[&timeout=1-%d]", WAIT_MAX_S);
				return;
			}
			timeout = t1;
		} else {
			zt_http_resp_error(r, q, 400, "invalid", "?since=GENERATION[&timeout=1-%d]", WAIT_MAX_S);
			return;
		}
	}
	if (ag_facts_of("/proc", q->pid, q->uid, q->gid, &f, &e) != 0) {
		zt_log(ZT_LOG_WARN, "workload api: caller refused", "remote", q->remote, "error", e.msg, NULL);
		zt_http_resp_error(r, q, 403, "attestation-failed", "%s", e.msg);
		return;
	}
	pthread_mutex_lock(&a->mu);
	if (watch) {
		struct timespec until;

		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += (time_t)timeout;
		while (a->gen <= since && !atomic_load(&a->stopping) &&
		       pthread_cond_timedwait(&a->changed, &a->mu, &until) == 0)
			;
	}
	json_t *list = svids_for(a, &f, &matched);
	uint64_t gen = a->gen;
	json_t *bundle = a->bundle_pem ? json_string(a->bundle_pem) : json_null();

	pthread_mutex_unlock(&a->mu);
	snprintf(v, sizeof v, "%d", (int)f.pid);
	if (!matched) {
		json_decref(list);
		json_decref(bundle);
		zt_log(ZT_LOG_WARN, "workload api: no entry matches the caller", "pid", v, "exe", f.exe,
		       "sha256", f.sha256, NULL);
		zt_http_resp_error(r, q, 403, "no-entry",
				   "no registration entry of this node matches this process (uid %u, "
				   "gid %u, executable %s, sha256 %s, cgroup %s)", f.uid, f.gid,
				   f.exe[0] ? f.exe : "unknown", f.sha256[0] ? f.sha256 : "unknown",
				   f.cgroup[0] ? f.cgroup : "none");
		return;
	}
	if (json_array_size(list) == 0) {
		json_decref(list);
		json_decref(bundle);
		if (zt_http_resp_header(r, "Retry-After", "1") != 0)
			r->close = 1;
		zt_http_resp_error(r, q, 503, "not-yet",
				   "an entry matches, but its SVID is not issued yet (the server may be "
				   "unreachable); retry shortly");
		return;
	}
	r->secret = 1;
	zt_http_resp_json(r, 200, json_pack("{s:o,s:o,s:I}", "svids", list, "bundle", bundle,
					    "generation", (json_int_t)gen));
	r->secret = 1; /* private keys: the response buffer is wiped once sent */
}

static int hexval(char c)
{
	return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* Percent-decodes n bytes into out (cap); 0, or -1 if malformed or too long. */
static int pct_decode(const char *in, size_t n, char *out, size_t cap)
{
	size_t o = 0;

	for (size_t i = 0; i < n; i++) {
		int c = (unsigned char)in[i];

		if (c == '%') {
			if (i + 2 >= n)
				return -1;
			int h = hexval(in[i + 1]), l = hexval(in[i + 2]);

			if (h < 0 || l < 0)
				return -1;
			c = h * 16 + l;
			i += 2;
		} else if (c == '+') {
			c = ' ';
		}
		if (c == 0 || o + 1 >= cap)
			return -1;
		out[o++] = (char)c;
	}
	out[o] = '\0';
	return 0;
}

/* GET /v1/jwtsvids?audience=A[&audience=B][&id=ID] (SPIFFE Workload API FetchJWTSVID) */
static void jwtsvids(struct ag *a, const zt_http_req *q, zt_http_resp *r)
{
	json_t *auds = json_array(), *ids = json_array(), *out = json_array(), *en;
	char want[2049] = "", val[2049];
	const char *p = q->query;
	struct ag_facts f;
	size_t i;
	zt_err e;

	while (*p) {
		const char *amp = strchr(p, '&'), *eq;
		size_t n = amp ? (size_t)(amp - p) : strlen(p);

		if (!(eq = memchr(p, '=', n)) || pct_decode(eq + 1, n - (size_t)(eq + 1 - p), val, sizeof val) != 0 ||
		    !val[0]) {
			zt_http_resp_error(r, q, 400, "invalid", "?audience=A[&audience=B...][&id=SPIFFE-ID]");
			goto out;
		}
		if ((size_t)(eq - p) == 8 && !memcmp(p, "audience", 8) && strlen(val) <= 256 && json_array_size(auds) < 16)
			json_array_append_new(auds, json_string(val));
		else if ((size_t)(eq - p) == 2 && !memcmp(p, "id", 2) && !want[0])
			snprintf(want, sizeof want, "%s", val);
		else {
			zt_http_resp_error(r, q, 400, "invalid",
					   "?audience=A (1-16 of them, 256 bytes each)[&id=SPIFFE-ID]");
			goto out;
		}
		p += n + (amp ? 1 : 0);
	}
	/* SPIFFE JWT-SVID 3.2: a JWT-SVID names its audience */
	if (json_array_size(auds) == 0) {
		zt_http_resp_error(r, q, 400, "invalid", "name at least one audience: ?audience=A");
		goto out;
	}
	if (ag_facts_of("/proc", q->pid, q->uid, q->gid, &f, &e) != 0) {
		zt_http_resp_error(r, q, 403, "attestation-failed", "%s", e.msg);
		goto out;
	}
	pthread_mutex_lock(&a->mu);
	json_array_foreach (a->entries, i, en) {
		const char *id = json_string_value(json_object_get(en, "id"));
		json_t *seen;
		size_t k;
		int dup = 0;

		if (!id || !ag_selectors_match(&f, json_object_get(en, "selectors")) || (want[0] && strcmp(want, id)))
			continue;
		json_array_foreach (ids, k, seen)
			dup |= !strcmp(json_string_value(seen), id);
		if (!dup)
			json_array_append_new(ids, json_string(id));
	}
	pthread_mutex_unlock(&a->mu);
	if (json_array_size(ids) == 0) {
		zt_http_resp_error(r, q, 403, "no-entry",
				   want[0] ? "no registration entry of this node gives this process %s"
					   : "no registration entry of this node matches this process%s",
				   want);
		goto out;
	}
	json_array_foreach (ids, i, en) {
		char *tok = NULL;
		int64_t exp = 0;
		char exp_s[32];

		if (ag_jwt_svid(a, json_string_value(en), auds, &tok, &exp, &e) != 0) {
			if (zt_http_resp_header(r, "Retry-After", "1") != 0)
				r->close = 1;
			zt_http_resp_error(r, q, 503, "not-yet", "the JWT-SVID could not be had: %s", e.msg);
			goto out;
		}
		zt_time_format(exp, exp_s, sizeof exp_s);
		json_array_append_new(out, json_pack("{s:O,s:s,s:s}", "id", en, "token", tok, "expires_at", exp_s));
		zt_wipe(tok, strlen(tok));
		free(tok);
	}
	zt_http_resp_json(r, 200, json_pack("{s:O}", "svids", out));
	r->secret = 1;
out:
	json_decref(auds);
	json_decref(ids);
	json_decref(out);
}

void ag_workload_handle(void *arg, const zt_http_req *q, zt_http_resp *r)
{
	struct ag *a = arg;

	if (!q->has_cred) {
		zt_http_resp_error(r, q, 403, "no-credentials", "the caller's credentials are unknown");
		return;
	}
	if (!header_true(q)) {
		zt_http_resp_error(r, q, 400, "header-required",
				   "send the header X-Zt-Workload: true (docs/workload-api.md)");
		return;
	}
	if (strcmp(q->method, "GET")) {
		zt_http_resp_error(r, q, 405, "method", "the Workload API takes GET");
		return;
	}
	if (!strcmp(q->path, "/v1/svids")) {
		svids(a, q, r);
	} else if (!strcmp(q->path, "/v1/jwtsvids")) {
		jwtsvids(a, q, r);
	} else if (!strcmp(q->path, "/v1/jwtbundle")) {
		zt_err e;

		r->content_type = "application/json";
		if (ag_jwt_bundle(a, &r->body, &e) != 0)
			zt_http_resp_error(r, q, 503, "not-yet", "no JWT bundle yet: %s", e.msg);
	} else if (!strcmp(q->path, "/v1/bundle")) {
		pthread_mutex_lock(&a->mu);
		int ok = a->bundle_pem &&
			 zt_buf_append(&r->body, a->bundle_pem, strlen(a->bundle_pem), NULL) == 0;
		pthread_mutex_unlock(&a->mu);
		r->content_type = "application/x-pem-file";
		if (!ok)
			zt_http_resp_error(r, q, 503, "not-yet", "no bundle yet");
	} else {
		zt_http_resp_error(r, q, 404, "not-found", "no such resource: %s", q->path);
	}
}

/* /metrics (Prometheus text) and /ready on the admin listener. */
void ag_admin_handle(void *arg, const zt_http_req *q, zt_http_resp *r)
{
	struct ag *a = arg;
	int64_t now = zt_now();

	if (!strcmp(q->path, "/ready")) {
		pthread_mutex_lock(&a->mu);
		int ready = a->entries != NULL && a->self_not_after > now;
		pthread_mutex_unlock(&a->mu);
		r->content_type = "text/plain";
		r->status = ready ? 200 : 503;
		if (zt_buf_appendf(&r->body, NULL, "%s\n", ready ? "ready" : "not ready") != 0)
			r->status = 500;
		return;
	}
	if (strcmp(q->path, "/metrics")) {
		zt_http_resp_error(r, q, 404, "not-found", "GET /metrics or /ready");
		return;
	}
	zt_buf *b = &r->body;
	int ok = 1;

	r->content_type = "text/plain; version=0.0.4";
	pthread_mutex_lock(&a->mu);
	ok &= zt_buf_appendf(b, NULL,
			     "# HELP zt_agent_server_up 1 while the server answers.\n"
			     "# TYPE zt_agent_server_up gauge\nzt_agent_server_up %d\n"
			     "# HELP zt_agent_self_expiry_seconds Seconds until the agent's own SVID expires.\n"
			     "# TYPE zt_agent_self_expiry_seconds gauge\nzt_agent_self_expiry_seconds %lld\n"
			     "# HELP zt_agent_entries Registration entries of this node.\n"
			     "# TYPE zt_agent_entries gauge\nzt_agent_entries %zu\n"
			     "# HELP zt_agent_svids_issued_total SVIDs issued and renewed for workloads.\n"
			     "# TYPE zt_agent_svids_issued_total counter\nzt_agent_svids_issued_total %llu\n"
			     "# HELP zt_agent_svid_failures_total Failed issues and renewals.\n"
			     "# TYPE zt_agent_svid_failures_total counter\nzt_agent_svid_failures_total %llu\n"
			     "# HELP zt_agent_sync_failures_total Failed entry syncs.\n"
			     "# TYPE zt_agent_sync_failures_total counter\nzt_agent_sync_failures_total %llu\n"
			     "# HELP zt_agent_svid_expiry_seconds Seconds until each held SVID expires.\n"
			     "# TYPE zt_agent_svid_expiry_seconds gauge\n",
			     a->server_ok, (long long)(a->self_not_after - now),
			     json_array_size(a->entries), (unsigned long long)a->issued,
			     (unsigned long long)a->renew_failures,
			     (unsigned long long)a->sync_failures) == 0;
	for (size_t i = 0; i < a->nsvids && ok; i++)
		ok &= zt_buf_appendf(b, NULL, "zt_agent_svid_expiry_seconds{id=\"%s\",entry=\"%s\"} %lld\n",
				     a->svids[i].id, a->svids[i].entry,
				     (long long)(a->svids[i].not_after - now)) == 0;
	pthread_mutex_unlock(&a->mu);
	if (!ok)
		r->status = 500;
}
