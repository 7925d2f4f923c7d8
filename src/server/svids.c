/*
 * server/svids.c: POST /v1/svids, X.509-SVIDs for workloads.
 *
 * The caller sends a PKCS#10 request (proof that it holds the key; the
 * names it asks for are ignored: the server decides them) and the SPIFFE
 * ID it wants:
 *  - a workload with an SVID (mTLS) renews its own ID and nothing else;
 *  - a person or tool needs write access to the service the ID names
 *    (spiffe://TD/ns/WORKSPACE/sa/SERVICE: the service must exist in the
 *    hierarchy), as a workspace administrator or above.
 * Attestation-based issuance (zt agent) comes with the agent. Every SVID
 * issued is on the audit log (ID, serial, expiry, actor) before the
 * response leaves; a failed append fails the request, and the certificate
 * is never returned.
 */
#include <stdio.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/x509.h>

#include "crypto/crypto.h"
#include "identity/identity.h"
#include "server/server_int.h"

#define API_SVID_TTL_MAX (24 * 3600) /* short-lived: SPIFFE has no revocation */
#define CSR_MAX 16384

int srv_service_of(srv *s, const zt_http_req *q, zt_http_resp *r, const zt_spiffe_id *id,
		   char *svc, size_t cap)
{
	const char *path = id->str + 9 + id->td_len;
	zt_err e;
	zt_object o;
	char ws[ZT_STORE_NAME_MAX + 1];

	/* the workload form: /ns/WORKSPACE/sa/SERVICE, nothing more */
	const char *sa = strstr(path, "/sa/");

	if (id->td_len != strlen(s->td) || strncmp(id->str + 9, s->td, id->td_len) ||
	    strncmp(path, "/ns/", 4) || !sa || strchr(path + 4, '/') != sa ||
	    strchr(sa + 4, '/') || !sa[4]) {
		zt_http_resp_error(r, q, 400, "invalid",
				   "a workload ID here is spiffe://%s/ns/WORKSPACE/sa/SERVICE", s->td);
		return -1;
	}
	if (srv_workspace_of(s, id->str, ws, sizeof ws, &e) != 0) {
		srv_fail(r, q, &e);
		return -1;
	}
	if ((size_t)snprintf(svc, cap, "%s/%s", ws, sa + 4) >= cap ||
	    zt_store_get(s->store, "service", svc, &o, &e) != 0) {
		zt_http_resp_error(r, q, 404, "not-found", "no service %s/%s is declared", ws, sa + 4);
		return -1;
	}
	zt_object_clear(&o);
	return 0;
}

int srv_sign(srv *s, const zt_spiffe_id *id, const zt_pubkey *pub, int64_t ttl, zt_buf *pem,
	     char serial[64], char nas[32], zt_err *e)
{
	int64_t na = 0;
	zt_issue_opts io = {.ttl = ttl, .serial_hex = serial, .not_after = &na};
	zt_buf der;
	int rc;

	zt_buf_init(&der, 1u << 16);
	pthread_mutex_lock(&s->ca_mu);
	rc = zt_ca_issue(s->ca, id, pub, &io, &der, e);
	pthread_mutex_unlock(&s->ca_mu);
	if (rc == 0 && (rc = zt_der_certs_to_pem(der.p, der.len, pem, e)) == 0)
		zt_audit_time_format(na * 1000, nas);
	zt_buf_free(&der, 0);
	return rc;
}

#define BATCH_MAX 100

static json_t *item_error(const char *id, int status, const char *code, const char *msg)
{
	return json_pack("{s:s,s:{s:i,s:s,s:s}}", "id", id ? id : "", "error", "status", status, "code",
			 code, "message", msg);
}

/*
 * POST /v1/svids/batch: an agent's SVIDs for its node's entries, up to 100
 * at once ({"requests": [{"id", "csr"}, ...]}), each checked and signed as
 * a single request would be, and their audit entries made durable together
 * (one group commit instead of one per SVID). The answer lists a result
 * per request, in order: an SVID or an error. An agent renews its own SVID
 * with a single request.
 */
static void batch(srv *s, const zt_http_req *q, zt_http_resp *r, const char *principal)
{
	static const char *const members[] = {"requests", NULL};
	char node[256];
	uint64_t last = 0;
	int any = 0;
	json_t *b, *out, *item;
	size_t i;
	zt_err e;

	if (!srv_agent_of(s, principal, node, sizeof node) || !srv_agent_ok(s, q, node, NULL)) {
		srv_forbid(s, r, q, principal, "svid.batch", principal);
		return;
	}
	if (!(b = srv_body_object(q, r, members)))
		return;
	json_t *reqs = json_object_get(b, "requests");

	if (!json_is_array(reqs) || json_array_size(reqs) == 0 || json_array_size(reqs) > BATCH_MAX) {
		zt_http_resp_error(r, q, 400, "invalid", "send {\"requests\": [{\"id\", \"csr\"}, ...]}, 1 to %d",
				   BATCH_MAX);
		json_decref(b);
		return;
	}
	out = json_array();
	json_array_foreach(reqs, i, item) {
		const char *want = json_string_value(json_object_get(item, "id"));
		const char *csr = json_string_value(json_object_get(item, "csr"));
		zt_spiffe_id id;
		zt_pubkey *pub = NULL;
		int64_t ttl;
		uint64_t idx;
		char serial[64], nas[32];
		zt_buf pem;

		if (!json_is_object(item) || !want || !csr || json_object_size(item) != 2 ||
		    json_string_length(json_object_get(item, "csr")) > CSR_MAX ||
		    zt_id_parse(want, strlen(want), &id, &e) != 0) {
			json_array_append_new(out, item_error(want, 400, "invalid",
							      "a request is {\"id\": a workload ID, \"csr\": PKCS#10 PEM}"));
			continue;
		}
		/* only what an entry of this node names; the agent's own ID goes single */
		if ((ttl = srv_entry_ttl(s, node, id.str)) <= 0) {
			if (srv_audit_submit(s, q, principal, "svid.issue", id.str, "deny", NULL, &idx, &e) != 0) {
				json_array_append_new(out, item_error(id.str, 503, "unavailable", e.msg));
				continue;
			}
			last = idx;
			any = 1;
			s->denials++;
			json_array_append_new(out, item_error(id.str, 403, "forbidden",
							      "no entry of this node names this ID"));
			continue;
		}
		if (!(pub = zt_csr_parse((const uint8_t *)csr, strlen(csr), &e))) {
			json_array_append_new(out, item_error(id.str, 400, "invalid", e.msg));
			continue;
		}
		zt_buf_init(&pem, 1u << 16);
		if (srv_sign(s, &id, pub, ttl, &pem, serial, nas, &e) != 0 ||
		    srv_audit_submit(s, q, principal, "svid.issue", id.str, "allow",
				     json_pack("{s:s,s:s,s:s}", "id", id.str, "serial", serial,
					       "not_after", nas), &idx, &e) != 0) {
			json_array_append_new(out, item_error(id.str, 503, "unavailable", e.msg));
		} else {
			last = idx;
			any = 1;
			json_array_append_new(out, json_pack("{s:s,s:s,s:s,s:s%}", "id", id.str, "serial",
							     serial, "not_after", nas, "chain",
							     (const char *)pem.p, pem.len));
		}
		zt_buf_free(&pem, 0);
		zt_pubkey_free(pub);
	}
	json_decref(b);
	/* nothing leaves before what it records is durable: a failed log fails the batch */
	if (any && zt_audit_wait(s->audit, last, &e) != 0) {
		json_decref(out);
		srv_fail(r, q, &e);
		return;
	}
	zt_buf bpem;

	zt_buf_init(&bpem, 1u << 20);
	if (srv_bundle_pem(s, &bpem) != 0) {
		json_decref(out);
		zt_buf_free(&bpem, 0);
		zt_http_resp_error(r, q, 500, "internal", "out of memory");
		return;
	}
	zt_http_resp_json(r, 200, json_pack("{s:o,s:s%}", "svids", out, "bundle", (const char *)bpem.p,
					    bpem.len));
	zt_buf_free(&bpem, 0);
}

void srv_svids(srv *s, const zt_http_req *q, zt_http_resp *r, const char *principal,
	       char seg[][64], int nseg)
{
	static const char *const members[] = {"csr", "id", "ttl", NULL};
	char svc[ZT_STORE_NAME_MAX + 80];
	zt_spiffe_id id;
	zt_pubkey *pub = NULL;
	zt_object agent = {0};
	zt_buf pem;
	int64_t ttl = ZT_SVID_TTL_DEFAULT;
	json_t *b;
	zt_err e;

	if (nseg == 2 && !strcmp(seg[1], "batch")) {
		if (strcmp(q->method, "POST"))
			zt_http_resp_error(r, q, 405, "method", "POST requests to /v1/svids/batch");
		else
			batch(s, q, r, principal);
		return;
	}
	if (nseg != 1) {
		zt_http_resp_error(r, q, 404, "not-found", "no such resource: %s", q->path);
		return;
	}
	if (strcmp(q->method, "POST")) {
		zt_http_resp_error(r, q, 405, "method", "POST a certificate request to /v1/svids");
		return;
	}
	if (!(b = srv_body_object(q, r, members)))
		return;
	zt_buf_init(&pem, 1u << 16);
	const char *csr = json_string_value(json_object_get(b, "csr"));
	const char *want = json_string_value(json_object_get(b, "id"));
	json_t *t = json_object_get(b, "ttl");
	int mtls = !strncmp(principal, "spiffe://", 9);

	if (!csr || json_string_length(json_object_get(b, "csr")) > CSR_MAX ||
	    (json_object_get(b, "id") && !want) ||
	    (t && (!json_is_string(t) ||
		   zt_duration_parse(json_string_value(t), API_SVID_TTL_MAX, &ttl, NULL) != 0 ||
		   ttl < 60))) {
		zt_http_resp_error(r, q, 400, "invalid",
				   "send {\"csr\": PKCS#10 PEM (at most %d bytes), \"id\": SPIFFE ID, "
				   "\"ttl\": \"1h\" (1m to 24h)}", CSR_MAX);
		goto out;
	}
	if (!want && !mtls) {
		zt_http_resp_error(r, q, 400, "invalid", "name the SPIFFE ID to issue (\"id\")");
		goto out;
	}
	if (!want)
		want = principal;
	if (zt_id_parse(want, strlen(want), &id, &e) != 0) {
		zt_http_resp_error(r, q, 400, "invalid", "\"id\": %s", e.msg);
		goto out;
	}
	if (id.td_len != strlen(s->td) || strncmp(id.str + 9, s->td, id.td_len)) {
		zt_http_resp_error(r, q, 400, "invalid", "this server issues IDs of %s only", s->td);
		goto out;
	}
	char node[256];
	int self_renewal = 0;

	if (mtls && srv_agent_of(s, principal, node, sizeof node)) {
		/* an agent: its own SVID, and those its node's entries name, while it is not evicted */
		int64_t cap = 0;

		if (!srv_agent_ok(s, q, node, &agent) ||
		    (strcmp(id.str, principal) && (cap = srv_entry_ttl(s, node, id.str)) <= 0)) {
			srv_forbid(s, r, q, principal, "svid.issue", id.str);
			goto out;
		}
		self_renewal = !strcmp(id.str, principal);
		if (cap > 0 && ttl > cap)
			ttl = cap;
		if (cap > 0 && !t)
			ttl = cap;
	} else if (mtls) {
		/* a workload renews itself; anything else is someone else's identity */
		if (strcmp(id.str, principal)) {
			srv_forbid(s, r, q, principal, "svid.issue", id.str);
			goto out;
		}
	} else {
		if (srv_service_of(s, q, r, &id, svc, sizeof svc) != 0)
			goto out;
		if (!srv_allowed(s, principal, SRV_WRITE, "service", svc, NULL)) {
			srv_forbid(s, r, q, principal, "svid.issue", id.str);
			goto out;
		}
	}
	if (!(pub = zt_csr_parse((const uint8_t *)csr, strlen(csr), &e))) {
		zt_http_resp_error(r, q, 400, "invalid", "the certificate request: %s", e.msg);
		goto out;
	}
	char serial[64], nas[32];

	if (srv_sign(s, &id, pub, ttl, &pem, serial, nas, &e) != 0) {
		srv_fail(r, q, &e);
		goto out;
	}
	json_t *det = json_pack("{s:s,s:s,s:s}", "id", id.str, "serial", serial, "not_after", nas);

	if (self_renewal) {
		/* the agent is known by its new certificate from now on, with the change audited */
		if (srv_agent_renewed(s, q, node, &agent, serial, &e) != 0) {
			json_decref(det);
			srv_fail(r, q, &e);
			goto out;
		}
		if (srv_commit_audited(s, q, principal, "svid.issue", id.str, det, &e) != 0) {
			srv_fail(r, q, &e);
			goto out;
		}
	} else if (srv_audit(s, q, principal, "svid.issue", id.str, "allow", det, &e) != 0) {
		srv_fail(r, q, &e);
		goto out;
	}
	zt_buf bpem;

	zt_buf_init(&bpem, 1u << 20);
	if (srv_bundle_pem(s, &bpem) != 0) {
		zt_buf_free(&bpem, 0);
		zt_http_resp_error(r, q, 500, "internal", "out of memory");
		goto out;
	}
	zt_http_resp_json(r, 201, json_pack("{s:s,s:s,s:s,s:s%,s:s%}", "id", id.str, "serial",
					    serial, "not_after", nas, "chain", (const char *)pem.p,
					    pem.len, "bundle", (const char *)bpem.p, bpem.len));
	zt_buf_free(&bpem, 0);
out:
	zt_object_clear(&agent);
	zt_pubkey_free(pub);
	zt_buf_free(&pem, 0);
	json_decref(b);
}

#define JWT_SVID_TTL_MAX 3600
#define JWT_SVID_TTL_DEFAULT 300

/*
 * POST /v1/jwtsvids {"id", "audience": [...], "ttl"?}: a JWT-SVID (SPIFFE
 * JWT-SVID 3) for a workload an entry of the calling agent's node names:
 * sub the SPIFFE ID, aud the audiences asked for (at least one: 3.2),
 * exp (5 minutes unless asked, at most an hour and the entry's SVID
 * life), signed by the server's token keys. It carries no "iss", so no
 * relying party that expects zt's login tokens (which name their issuer)
 * takes one for a person, and its sub is never a user name.
 */
void srv_jwtsvids(srv *s, const zt_http_req *q, zt_http_resp *r, const char *principal, int nseg)
{
	static const char *const members[] = {"id", "audience", "ttl", NULL};
	json_t *b = NULL, *aud, *v, *claims = NULL, *ttl_j;
	const char *want;
	zt_spiffe_id id;
	char node[256], jti[33], exp_s[32];
	int64_t ttl = JWT_SVID_TTL_DEFAULT, cap, exp = 0;
	zt_buf tok;
	uint64_t idx;
	size_t i;
	zt_err e;

	zt_buf_init(&tok, 16384);
	if (nseg != 1 || strcmp(q->method, "POST")) {
		zt_http_resp_error(r, q, nseg != 1 ? 404 : 405, nseg != 1 ? "not-found" : "method",
				   "POST {\"id\", \"audience\"} to /v1/jwtsvids");
		return;
	}
	if (!srv_agent_of(s, principal, node, sizeof node) || !srv_agent_ok(s, q, node, NULL)) {
		srv_forbid(s, r, q, principal, "jwtsvid.issue", principal);
		return;
	}
	if (!(b = srv_body_object(q, r, members)))
		return;
	want = json_string_value(json_object_get(b, "id"));
	aud = json_object_get(b, "audience");
	ttl_j = json_object_get(b, "ttl");
	int aud_ok = json_is_array(aud) && json_array_size(aud) >= 1 && json_array_size(aud) <= 16;

	json_array_foreach (aud, i, v)
		aud_ok &= json_is_string(v) && json_string_length(v) >= 1 && json_string_length(v) <= 256;
	if (!want || !aud_ok || zt_id_parse(want, strlen(want), &id, &e) != 0 ||
	    (ttl_j && (!json_is_string(ttl_j) ||
		       zt_duration_parse(json_string_value(ttl_j), JWT_SVID_TTL_MAX, &ttl, NULL) != 0 || ttl < 30))) {
		zt_http_resp_error(r, q, 400, "invalid",
				   "send {\"id\": SPIFFE ID, \"audience\": [1-16 strings], \"ttl\": \"5m\" (30s-1h)}");
		goto out;
	}
	if ((cap = srv_entry_ttl(s, node, id.str)) <= 0) {
		srv_forbid(s, r, q, principal, "jwtsvid.issue", id.str);
		goto out;
	}
	if (ttl > cap)
		ttl = cap;
	claims = json_pack("{s:s,s:O}", "sub", id.str, "aud", aud);
	if (!claims || srv_jwt_mint(s, claims, ttl, 0, &tok, jti, &exp, &e) != 0 ||
	    srv_audit_submit(s, q, principal, "jwtsvid.issue", id.str, "allow",
			     json_pack("{s:s,s:O,s:s}", "id", id.str, "audience", aud, "jti", jti), &idx, &e) != 0 ||
	    zt_audit_wait(s->audit, idx, &e) != 0) {
		srv_fail(r, q, &e);
		goto out;
	}
	zt_audit_time_format(exp * 1000, exp_s);
	zt_http_resp_json(r, 200, json_pack("{s:s,s:s,s:s,s:I}", "id", id.str, "token", (const char *)tok.p,
					    "expires_at", exp_s, "exp", (json_int_t)exp));
	r->secret = 1;
out:
	zt_buf_free(&tok, 1);
	json_decref(claims);
	json_decref(b);
}
