/*
 * server/authz.c: who the caller is, and what they may do.
 *
 * Callers are SPIFFE IDs (proxies and agents, over mTLS) or bearer tokens
 * (people and automation). A token is random, shown once, and stored only
 * as its SHA-256, with an expiry. Roles are bound to a principal at a node
 * of the hierarchy (organization > tenant > workspace) and hold for
 * everything below it; anything no binding grants is denied.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/crypto.h"
#include "server/server_int.h"

#define FAIL_WINDOW_MS 60000
#define FAIL_MAX 20 /* failed authentications per client address and minute */

static const char *const roles[] = {"admin", "org-admin", "security-admin", "tenant-admin",
				    "workspace-admin", "viewer", NULL};

int srv_role_ok(const char *role)
{
	for (size_t i = 0; roles[i]; i++)
		if (strcmp(roles[i], role) == 0)
			return 1;
	return 0;
}

/* ---- tokens ------------------------------------------------------------------- */

static void hash_hex(const char *secret, char out[65])
{
	uint8_t h[32];

	zt_sha256(secret, strlen(secret), h);
	zt_hex(h, sizeof h, out);
}

int srv_token_create(srv *s, const char *principal, const char *description, int64_t ttl_s,
		     char *token, size_t cap, char *id, zt_err *e)
{
	uint8_t rid[8], secret[32];
	char hash[65];
	zt_buf b64;
	uint64_t version;
	int64_t now = zt_now();
	int r;

	zt_buf_init(&b64, 128);
	if ((r = zt_random(rid, sizeof rid, e)) != 0 || (r = zt_random(secret, sizeof secret, e)) != 0 ||
	    (r = zt_base64_encode(secret, sizeof secret, 1, &b64, e)) != 0 ||
	    (r = zt_buf_terminate(&b64, e)) != 0)
		goto out;
	zt_hex(rid, sizeof rid, id);
	/* a token made for no one in particular is its own principal */
	char own[32];

	if (!principal || !*principal) {
		snprintf(own, sizeof own, "token:%s", id);
		principal = own;
	}
	if ((size_t)snprintf(token, cap, "ztk_%s_%s", id, (const char *)b64.p) >= cap) {
		r = zt_err_set(e, ZT_ELIMIT, "token buffer too small");
		goto out;
	}
	hash_hex((const char *)b64.p, hash);
	json_t *body = json_pack("{s:s,s:s,s:s,s:I,s:I}", "principal", principal, "description",
				 description ? description : "", "sha256", hash, "created", now,
				 "expires", ttl_s > 0 ? now + ttl_s : 0);

	r = body ? zt_store_put(s->store, "token", id, body, 0, &version, e)
		 : zt_err_set(e, ZT_ENOMEM, "out of memory");
	json_decref(body);
out:
	zt_wipe(secret, sizeof secret);
	zt_buf_free(&b64, 1);
	return r;
}

/* The client's address without its port, as a counter key. */
static uint64_t client_key(const char *remote)
{
	const char *colon = strrchr(remote, ':');

	return zt_hash(remote, colon ? (size_t)(colon - remote) : strlen(remote));
}

/*
 * Per client address: FAIL_MAX failed authentications (bad tokens, failed
 * logins, bad join tokens) within a minute block the address for a minute;
 * each block that follows within an hour of the last doubles (2, 4... up
 * to 64 minutes), so a patient guesser is slowed down exponentially.
 */
#define BLOCK_MS FAIL_WINDOW_MS
#define BLOCK_MAX_SHIFT 6
#define STRIKES_FORGOTTEN_MS (3600 * 1000)

static struct srv_fail *fail_slot(srv *s, uint64_t key, int64_t now)
{
	struct srv_fail *f = &s->fails[key % (sizeof s->fails / sizeof s->fails[0])];

	if (f->key != key) {
		memset(f, 0, sizeof *f);
		f->key = key;
		f->window = now;
	}
	if (now - f->window >= FAIL_WINDOW_MS && now >= f->blocked_until) {
		f->window = now;
		f->count = 0;
		if (f->strikes && now - f->blocked_until >= STRIKES_FORGOTTEN_MS)
			f->strikes = 0;
	}
	return f;
}

void srv_count_failure(srv *s, const zt_http_req *q)
{
	uint64_t key = client_key(q->remote);
	int64_t now = zt_now_ms();

	pthread_mutex_lock(&s->fail_mu);
	struct srv_fail *f = fail_slot(s, key, now);

	if (++f->count == FAIL_MAX) {
		unsigned sh = f->strikes < BLOCK_MAX_SHIFT ? f->strikes : BLOCK_MAX_SHIFT;

		f->blocked_until = now + ((int64_t)BLOCK_MS << sh);
		f->strikes++;
	}
	pthread_mutex_unlock(&s->fail_mu);
	s->auth_failures++;
}

int srv_too_many_failures(srv *s, const zt_http_req *q, zt_http_resp *r)
{
	int64_t now = zt_now_ms(), left;
	char secs[24];

	pthread_mutex_lock(&s->fail_mu);
	struct srv_fail *f = fail_slot(s, client_key(q->remote), now);

	left = f->count >= FAIL_MAX && f->blocked_until > now ? f->blocked_until - now : 0;
	pthread_mutex_unlock(&s->fail_mu);
	if (left <= 0)
		return 0;
	snprintf(secs, sizeof secs, "%lld", (long long)(left + 999) / 1000);
	if (zt_http_resp_header(r, "Retry-After", secs) != 0)
		r->close = 1;
	zt_http_resp_error(r, q, 429, "too-many-failures",
			   "too many failed authentications from your address; try again in %s s", secs);
	return 1;
}

static int unauthorized(srv *s, const zt_http_req *q, zt_http_resp *r, const char *why)
{
	srv_count_failure(s, q);
	zt_log(ZT_LOG_WARN, "api: authentication failed", "request_id", q->request_id, "remote",
	       q->remote, "reason", why, NULL);
	if (zt_http_resp_header(r, "WWW-Authenticate", "Bearer realm=\"zt\"") != 0)
		r->close = 1;
	zt_http_resp_error(r, q, 401, "unauthenticated", "%s", why);
	return -1;
}

/*
 * A login token: zt's signature, issuer and audience "zt" (issuer.c), not
 * logged out (its jti not revoked), and its user still there and enabled.
 */
static int jwt_user(srv *s, const zt_http_req *q, zt_http_resp *r, const char *tok, size_t len,
		    char *principal, size_t cap, char jti[33], int64_t *exp)
{
	zt_jwt t;
	zt_object o;
	zt_err e;
	json_t *groups;
	const char *id;

	if (srv_jwt_check(s, tok, len, "zt", &t, &e) != 0) {
		char why[ZT_ERR_MSG_MAX + 40];

		snprintf(why, sizeof why, "the login token was refused: %s", e.msg);
		return unauthorized(s, q, r, why);
	}
	id = json_string_value(json_object_get(t.claims, "jti"));
	if (!t.sub || !id || strlen(id) != 32 || !zt_store_name_ok(id)) {
		zt_jwt_free(&t);
		return unauthorized(s, q, r, "the login token has no subject or ID");
	}
	if (zt_store_get(s->store, "revoked", id, &o, NULL) == 0) {
		zt_object_clear(&o);
		zt_jwt_free(&t);
		return unauthorized(s, q, r, "the login token was logged out");
	}
	/* the user as the directory has it now: there, enabled, and the same session */
	const char *ztv = json_string_value(json_object_get(t.claims, "ztv"));
	char now_ztv[64];
	int ok = 0;

	(void)groups;
	if (zt_store_get(s->store, "user", t.sub, &o, NULL) == 0) {
		srv_user_session(o.body, now_ztv, sizeof now_ztv);
		ok = !json_is_true(json_object_get(o.body, "disabled")) ? (ztv && !strcmp(ztv, now_ztv) ? 1 : -1) : 0;
		zt_object_clear(&o);
	}
	if (ok <= 0) {
		zt_jwt_free(&t);
		return unauthorized(s, q, r, ok < 0 ? "the login token is from before the user's password, second "
						      "factor or account changed; log in again"
						    : "the token's user no longer exists or is disabled");
	}
	snprintf(principal, cap, "user:%s", t.sub);
	if (jti)
		snprintf(jti, 33, "%s", id);
	if (exp)
		*exp = t.exp;
	zt_jwt_free(&t);
	return 0;
}

int srv_logout_token(srv *s, const zt_http_req *q, zt_http_resp *r, char jti[33], int64_t *exp)
{
	const zt_http1_field *f = zt_http1_field_get(q->head->fields, q->head->nfields, "authorization", NULL);
	char principal[SRV_PRINCIPAL_MAX];

	jti[0] = '\0';
	if (!f || f->value_len <= 10 || !zt_http1_name_eq(f->value, 7, "Bearer ") || memcmp(f->value + 7, "eyJ", 3))
		return 0;
	return jwt_user(s, q, r, f->value + 7, f->value_len - 7, principal, sizeof principal, jti, exp);
}

int srv_authenticate(srv *s, const zt_http_req *q, zt_http_resp *r, char *principal, size_t cap)
{
	const zt_http1_field *f =
	    zt_http1_field_get(q->head->fields, q->head->nfields, "authorization", NULL);
	size_t it = 0;

	principal[0] = '\0';
	/* too many failures from this address: refuse before looking */
	if (srv_too_many_failures(s, q, r))
		return -1;
	if (f && zt_http1_field_get(q->head->fields, q->head->nfields, "authorization", &it) &&
	    zt_http1_field_get(q->head->fields, q->head->nfields, "authorization", &it))
		return unauthorized(s, q, r, "more than one Authorization field");
	if (!f) {
		if (q->peer_id) {
			snprintf(principal, cap, "%s", q->peer_id);
			return 0;
		}
		return unauthorized(s, q, r,
				    "authenticate with a client SVID or an Authorization: Bearer "
				    "token");
	}
	/* "Bearer ztk_<16 hex>_<43 base64url>", or a login token (a JWT zt issued) */
	char tok[128], id[17];

	if (f->value_len > 7 + 3 && zt_http1_name_eq(f->value, 7, "Bearer ") && !memcmp(f->value + 7, "eyJ", 3))
		return jwt_user(s, q, r, f->value + 7, f->value_len - 7, principal, cap, NULL, NULL);
	if (f->value_len < 7 || !zt_http1_name_eq(f->value, 7, "Bearer ") ||
	    f->value_len - 7 >= sizeof tok)
		return unauthorized(s, q, r, "the Authorization field is not a zt bearer token");
	memcpy(tok, f->value + 7, f->value_len - 7);
	tok[f->value_len - 7] = '\0';
	if (strlen(tok) != 4 + 16 + 1 + 43 || strncmp(tok, "ztk_", 4) != 0 || tok[20] != '_')
		return unauthorized(s, q, r, "the bearer token is not a zt token");
	memcpy(id, tok + 4, 16);
	id[16] = '\0';
	for (size_t i = 0; i < 16; i++)
		if (zt_hex_value((unsigned char)id[i]) < 0)
			return unauthorized(s, q, r, "the bearer token is not a zt token");

	zt_object o;
	zt_err e;
	char hash[65];

	if (zt_store_get(s->store, "token", id, &o, &e) != 0) {
		zt_wipe(tok, sizeof tok);
		return unauthorized(s, q, r, "unknown or revoked token");
	}
	hash_hex(tok + 21, hash);
	zt_wipe(tok, sizeof tok);
	const char *want = json_string_value(json_object_get(o.body, "sha256"));
	const char *who = json_string_value(json_object_get(o.body, "principal"));
	json_int_t exp = json_integer_value(json_object_get(o.body, "expires"));
	int ok = want && who && strlen(want) == 64 && zt_ct_equal(want, hash, 64);

	if (ok && exp > 0 && exp <= zt_now()) {
		zt_object_clear(&o);
		return unauthorized(s, q, r, "the token has expired");
	}
	if (!ok) {
		zt_object_clear(&o);
		return unauthorized(s, q, r, "unknown or revoked token");
	}
	snprintf(principal, cap, "%s", who);
	zt_object_clear(&o);
	return 0;
}

/* ---- role-based access ------------------------------------------------------------ */

/* scope "" is everything; otherwise name is the scope itself or below it */
static int under(const char *scope, const char *name)
{
	size_t n = strlen(scope);

	return n == 0 || (strncmp(scope, name, n) == 0 && (name[n] == '\0' || name[n] == '/'));
}

static int is_hier(const char *kind)
{
	return !strcmp(kind, "org") || !strcmp(kind, "tenant") || !strcmp(kind, "workspace") ||
	       !strcmp(kind, "service");
}

/* What one binding grants (docs/api.md "Roles"). */
static int grants(const char *role, const char *scope, enum srv_action action, const char *kind,
		  const char *name, const char *bound_role)
{
	if (!strcmp(role, "admin"))
		return scope[0] == '\0';
	if (!strcmp(kind, "token") || !strcmp(kind, "user"))
		return 0; /* tokens, users and groups: administrators only */
	if (!strcmp(kind, "audit"))
		return action == SRV_READ && scope[0] == '\0' && !strcmp(role, "security-admin");
	if (!under(scope, name))
		return 0;
	if (action == SRV_READ)
		return 1; /* every role reads what lies below its node */
	/* a role's own node may be updated or deleted, never created: it is given */
	int self = !strcmp(scope, name) && action == SRV_WRITE,
	    below = under(scope, name) && strcmp(scope, name) != 0;

	if (!strcmp(kind, "rolebinding")) {
		if (!bound_role || !strcmp(bound_role, "admin"))
			return 0;
		if (!strcmp(role, "org-admin"))
			return 1;
		if (!strcmp(role, "tenant-admin"))
			return !strcmp(bound_role, "workspace-admin") || !strcmp(bound_role, "viewer");
		if (!strcmp(role, "workspace-admin"))
			return !strcmp(bound_role, "viewer");
		return 0;
	}
	if (!strcmp(kind, "policy"))
		return strcmp(role, "viewer") != 0; /* every admin role, at or above the scope */
	if (!is_hier(kind))
		return 0;
	if (!strcmp(role, "org-admin"))
		return (strcmp(kind, "org") != 0 && below) || (!strcmp(kind, "org") && self);
	if (!strcmp(role, "tenant-admin"))
		return (!strcmp(kind, "tenant") && self) ||
		       ((!strcmp(kind, "workspace") || !strcmp(kind, "service")) && below);
	if (!strcmp(role, "workspace-admin"))
		return (!strcmp(kind, "workspace") && self) || (!strcmp(kind, "service") && below);
	return 0; /* security-admin and viewer only read (policies come later) */
}

struct srv_binding {
	char *principal, *role, *scope;
};

static void bindings_free(struct srv_binding *b, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(b[i].principal);
		free(b[i].role);
		free(b[i].scope);
	}
	free(b);
}

/* Every role binding, read from the store; 0 or -1 (logged). */
static int bindings_load(srv *s, struct srv_binding **out, size_t *nout)
{
	char after[ZT_STORE_NAME_MAX + 1] = "";
	struct srv_binding *b = NULL;
	size_t nb = 0;
	zt_object *v;
	size_t n;
	zt_err e;

	for (;;) {
		if (zt_store_list(s->store, "rolebinding", "", after, ZT_STORE_LIST_MAX, &v, &n, &e) !=
		    0) {
			zt_log(ZT_LOG_ERROR, "api: reading role bindings failed", "error", e.msg, NULL);
			bindings_free(b, nb);
			return -1;
		}
		struct srv_binding *nbp = realloc(b, (nb + n + 1) * sizeof *b);

		if (!nbp) {
			zt_objects_free(v, n);
			bindings_free(b, nb);
			return -1;
		}
		b = nbp;
		for (size_t i = 0; i < n; i++) {
			const char *p = json_string_value(json_object_get(v[i].body, "principal"));
			const char *rl = json_string_value(json_object_get(v[i].body, "role"));
			const char *sc = json_string_value(json_object_get(v[i].body, "scope"));

			if (!p || !rl || !sc)
				continue;
			b[nb] = (struct srv_binding){strdup(p), strdup(rl), strdup(sc)};
			if (!b[nb].principal || !b[nb].role || !b[nb].scope) {
				nb++;
				zt_objects_free(v, n);
				bindings_free(b, nb);
				return -1;
			}
			nb++;
		}
		if (n < ZT_STORE_LIST_MAX) {
			zt_objects_free(v, n);
			break;
		}
		snprintf(after, sizeof after, "%s", v[n - 1].name);
		zt_objects_free(v, n);
	}
	*out = b;
	*nout = nb;
	return 0;
}

/* 1 if a binding's principal names the caller: the caller itself, or (a user) one of its groups */
static int names(const char *bp, const char *principal, const json_t *groups)
{
	const json_t *g;
	size_t i;

	if (!strcmp(bp, principal))
		return 1;
	if (!groups || strncmp(bp, "group:", 6) != 0)
		return 0;
	json_array_foreach (groups, i, g)
		if (json_is_string(g) && !strcmp(json_string_value(g), bp + 6))
			return 1;
	return 0;
}

static int evaluate(const struct srv_binding *b, size_t n, const char *principal, const json_t *groups,
		    enum srv_action action, const char *kind, const char *name, const char *role)
{
	for (size_t i = 0; i < n; i++)
		if (names(b[i].principal, principal, groups) &&
		    grants(b[i].role, b[i].scope, action, kind, name, role))
			return 1;
	return 0;
}

int srv_principal_has_role(srv *s, const char *principal, const char *role)
{
	struct srv_binding *b;
	size_t n;
	int has = 0;

	if (bindings_load(s, &b, &n) != 0)
		return 1; /* unknown: err towards asking for the second factor */
	for (size_t i = 0; i < n && !has; i++)
		has = !strcmp(b[i].principal, principal) && !strcmp(b[i].role, role);
	bindings_free(b, n);
	return has;
}

/*
 * Deny by default, errors included. The parsed bindings are kept under the
 * store revision they were read at and read again once it moved; the
 * revision is read first, so what is kept is never older than its label.
 * Inside a transaction the caller's own uncommitted writes count and may
 * be rolled back, so nothing is kept then. The store is never read with
 * rb_mu held (a transaction holder may be waiting for rb_mu).
 */
int srv_allowed(srv *s, const char *principal, enum srv_action action, const char *kind,
		const char *name, const char *role)
{
	int in_tx = zt_store_in_transaction(s->store);
	uint64_t rev = zt_store_revision(s->store);
	struct srv_binding *b;
	json_t *groups = NULL;
	size_t n;
	int ok;

	/*
	 * a person's groups count as the person, as the directory says now; a
	 * disabled user may do nothing, whatever token it holds (a principal
	 * that is no directory user is taken as it is, without groups)
	 */
	if (!strncmp(principal, "user:", 5) && srv_user_state(s, principal + 5, &groups) < 0)
		return 0;
	if (!in_tx) {
		pthread_mutex_lock(&s->rb_mu);
		if (s->rb && s->rb_rev == rev) {
			ok = evaluate(s->rb, s->nrb, principal, groups, action, kind, name, role);
			pthread_mutex_unlock(&s->rb_mu);
			json_decref(groups);
			return ok;
		}
		pthread_mutex_unlock(&s->rb_mu);
	}
	if (bindings_load(s, &b, &n) != 0) {
		json_decref(groups);
		return 0;
	}
	ok = evaluate(b, n, principal, groups, action, kind, name, role);
	json_decref(groups);
	pthread_mutex_lock(&s->rb_mu);
	if (!in_tx && (!s->rb || s->rb_rev < rev)) {
		bindings_free(s->rb, s->nrb);
		s->rb = b;
		s->nrb = n;
		s->rb_rev = rev;
		b = NULL;
	}
	pthread_mutex_unlock(&s->rb_mu);
	bindings_free(b, b ? n : 0);
	return ok;
}

void srv_bindings_free(srv *s)
{
	bindings_free(s->rb, s->nrb);
	s->rb = NULL;
	s->nrb = 0;
}
