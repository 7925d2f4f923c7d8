/*
 * server/users.c: people. Users and groups in the directory, passwords
 * (Argon2id, crypto/password.c), TOTP second factors (RFC 6238,
 * crypto/totp.c), and POST /v1/login, which trades them for a short-lived
 * JWT (issuer.c) that the API and any relying party accept.
 *
 * Login resists guessing: an unknown user costs the same Argon2id run as
 * a wrong password and gets the same answer; failures slow an account
 * down exponentially and lock it for a while (by name, so unknown names
 * too: a lockout says nothing about whether a user exists), and count
 * against the caller's address like every failed authentication; every
 * attempt is audited (never the password). At most a few Argon2id runs
 * go at once, so a flood of logins cannot exhaust the server's memory.
 */
#include <errno.h>
#include <stdint.h>
#include <semaphore.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "crypto/crypto.h"
#include "server/server_int.h"

#define PW_MIN 12        /* bytes: NIST SP 800-63B 5.1.1.2 asks 8 at least */
#define NAME_MAX_LEN 128
#define LOCK_AFTER 5     /* failures in a row before an account is slowed down */
#define LOCK_MAX_S 900   /* the longest lockout */
#define HASH_SLOTS 2     /* Argon2id runs at once (46 MiB each) */
#define HASH_WAIT_S 10

static const char *const admin_roles[] = {"admin", "org-admin", "security-admin", "tenant-admin",
					  "workspace-admin", NULL};

/* ---- names ------------------------------------------------------------------------ */

/* A user or group name: 1-128 of A-Z a-z 0-9 . _ @ + -, not starting with . or - */
int srv_user_name_ok(const char *n)
{
	size_t len = strlen(n);

	if (len == 0 || len > NAME_MAX_LEN || n[0] == '.' || n[0] == '-')
		return 0;
	for (size_t i = 0; i < len; i++) {
		char c = n[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '_' || c == '@' || c == '+' || c == '-'))
			return 0;
	}
	return strstr(n, "..") == NULL;
}

/* ---- the lockout table -------------------------------------------------------------- */

#define LOCK_SLOTS 4096

static struct lock {
	uint64_t key;
	unsigned fails;
	int64_t until; /* locked until (ms) */
} locks[LOCK_SLOTS];
static pthread_mutex_t lock_mu = PTHREAD_MUTEX_INITIALIZER;

/*
 * A name's slot, by a keyed hash (a random key per process): an attacker
 * cannot pick names that share a victim's slot to reset its count.
 */
static uint8_t lock_secret[32];
static pthread_once_t lock_once = PTHREAD_ONCE_INIT;

static void lock_init(void)
{
	if (zt_random(lock_secret, sizeof lock_secret, NULL) != 0)
		abort(); /* no randomness: nothing here is safe to run */
}

static uint64_t name_key(const char *user)
{
	uint8_t in[32 + NAME_MAX_LEN + 1], h[32];
	size_t n = strlen(user) > NAME_MAX_LEN ? NAME_MAX_LEN : strlen(user);
	uint64_t k;

	pthread_once(&lock_once, lock_init);
	memcpy(in, lock_secret, sizeof lock_secret);
	memcpy(in + sizeof lock_secret, user, n);
	zt_sha256(in, sizeof lock_secret + n, h);
	memcpy(&k, h, sizeof k);
	return k | 1; /* 0 marks a free slot */
}

/* ms the account is still locked for, 0 if not */
static int64_t locked_for(const char *user)
{
	uint64_t k = name_key(user);
	struct lock *l = &locks[k % LOCK_SLOTS];
	int64_t now = zt_now_ms(), left = 0;

	pthread_mutex_lock(&lock_mu);
	if (l->key == k && l->until > now)
		left = l->until - now;
	pthread_mutex_unlock(&lock_mu);
	return left;
}

/* After LOCK_AFTER failures in a row: 1 s, 2 s, 4 s... up to LOCK_MAX_S. */
static void lock_fail(const char *user)
{
	uint64_t k = name_key(user);
	struct lock *l = &locks[k % LOCK_SLOTS];

	pthread_mutex_lock(&lock_mu);
	if (l->key != k) { /* a slot is reused by the newest name that fails */
		l->key = k;
		l->fails = 0;
		l->until = 0;
	}
	l->fails++;
	if (l->fails >= LOCK_AFTER) {
		unsigned sh = l->fails - LOCK_AFTER;
		int64_t s = sh >= 10 ? LOCK_MAX_S : (int64_t)1 << sh;

		l->until = zt_now_ms() + (s > LOCK_MAX_S ? LOCK_MAX_S : s) * 1000;
	}
	pthread_mutex_unlock(&lock_mu);
}

static void lock_clear(const char *user)
{
	uint64_t k = name_key(user);
	struct lock *l = &locks[k % LOCK_SLOTS];

	pthread_mutex_lock(&lock_mu);
	if (l->key == k)
		memset(l, 0, sizeof *l);
	pthread_mutex_unlock(&lock_mu);
}

/* ---- Argon2id, a few at a time ---------------------------------------------------- */

static sem_t hash_slots;
static pthread_once_t hash_once = PTHREAD_ONCE_INIT;

static void hash_init(void)
{
	sem_init(&hash_slots, 0, HASH_SLOTS);
}

static int hash_enter(void)
{
	struct timespec ts;

	pthread_once(&hash_once, hash_init);
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += HASH_WAIT_S;
	while (sem_timedwait(&hash_slots, &ts) != 0)
		if (errno != EINTR)
			return -1;
	return 0;
}

static void hash_leave(void)
{
	sem_post(&hash_slots);
}

/* ---- TOTP secrets at rest ------------------------------------------------------------ */

#define SEAL_TOTP "totp-secret"

/* The secret as stored: sealed under the KEK when there is one, else base32. */
static int totp_store_text(const uint8_t *key, size_t n, zt_buf *out, zt_err *e)
{
	const uint8_t *kek = zt_kek_get();
	int r;

	if (kek) {
		r = zt_seal(kek, SEAL_TOTP, key, n, out, e);
		return r ? r : zt_buf_terminate(out, e);
	}
	if ((r = zt_buf_append(out, "base32:", 7, e)) != 0)
		return r;
	return zt_base32_encode(key, n, 0, out, e);
}

static int totp_load(const char *text, zt_buf *key, zt_err *e)
{
	if (!strncmp(text, "base32:", 7))
		return zt_base32_decode(text + 7, strlen(text + 7), key, e);
	if (zt_buf_append(key, text, strlen(text), e) != 0)
		return -ZT_ENOMEM;
	return zt_unseal_in_place(key, SEAL_TOTP, e);
}

/* ---- sessions ---------------------------------------------------------------------------- */

/*
 * Every login token names the user's session generation ("ztv": the
 * user's random ID and a counter). A user made again under an old name
 * gets a new ID, and changing the password or the second factor moves the
 * counter, so every token issued before is refused from then on.
 */
static int new_uid(json_t *body)
{
	uint8_t id[8];
	char hex[17];

	if (zt_random(id, sizeof id, NULL) != 0)
		return -1;
	zt_hex(id, sizeof id, hex);
	json_object_set_new(body, "uid", json_string(hex));
	json_object_set_new(body, "gen", json_integer(1));
	return 0;
}

static void bump_gen(json_t *body)
{
	json_object_set_new(body, "gen", json_integer(json_integer_value(json_object_get(body, "gen")) + 1));
}

int srv_user_session(const json_t *body, char *out, size_t cap)
{
	const char *uid = json_string_value(json_object_get(body, "uid"));

	return snprintf(out, cap, "%s:%lld", uid ? uid : "-", (long long)json_integer_value(json_object_get(body, "gen")));
}

/* ---- who holds what -------------------------------------------------------------------- */

int srv_user_state(srv *s, const char *name, json_t **groups)
{
	zt_object o;
	json_t *g;

	*groups = NULL;
	if (zt_store_get(s->store, "user", name, &o, NULL) != 0)
		return 0;
	if (json_is_true(json_object_get(o.body, "disabled"))) {
		zt_object_clear(&o);
		return -1;
	}
	g = json_object_get(o.body, "groups");
	*groups = json_is_array(g) ? json_incref(g) : json_array();
	zt_object_clear(&o);
	return 1;
}

json_t *srv_user_groups(srv *s, const char *name)
{
	json_t *g;

	return srv_user_state(s, name, &g) == 1 ? g : NULL;
}

/* 1 if any binding gives user (or one of its groups) an administrator's role */
static int holds_admin_role(srv *s, const char *user, const json_t *groups)
{
	char p[SRV_PRINCIPAL_MAX];
	const json_t *g;
	size_t i;

	snprintf(p, sizeof p, "user:%s", user);
	for (size_t k = 0; admin_roles[k]; k++) {
		if (srv_principal_has_role(s, p, admin_roles[k]))
			return 1;
		json_array_foreach (groups, i, g) {
			snprintf(p, sizeof p, "group:%s", json_string_value(g));
			if (srv_principal_has_role(s, p, admin_roles[k]))
				return 1;
		}
	}
	return 0;
}

/* ---- the API ---------------------------------------------------------------------------- */

/* What GET shows of a user: never the hash nor the second factor's secret. */
static json_t *user_json(const zt_object *o)
{
	const json_t *b = o->body, *t = json_object_get(b, "totp");
	json_t *g = json_object_get(b, "groups");

	return json_pack("{s:s,s:I,s:o,s:b,s:b,s:b}", "name", o->name, "version", (json_int_t)o->version,
			 "groups", g ? json_incref(g) : json_array(), "disabled", json_is_true(json_object_get(b, "disabled")),
			 "password", json_is_string(json_object_get(b, "password")), "totp",
			 t && json_is_true(json_object_get(t, "confirmed")));
}

static int user_item(srv *s, const zt_object *o, void *arg, json_t **item)
{
	(void)s;
	(void)arg;
	*item = user_json(o);
	return *item ? 0 : -1;
}

/* groups: an array of existing group names, at most 64 */
static int groups_ok(srv *s, const json_t *g, char *why, size_t cap)
{
	const json_t *v;
	size_t i;
	zt_object o;

	if (!json_is_array(g) || json_array_size(g) > 64) {
		snprintf(why, cap, "groups is an array of at most 64 group names");
		return 0;
	}
	json_array_foreach (g, i, v) {
		if (!json_is_string(v) || !srv_user_name_ok(json_string_value(v))) {
			snprintf(why, cap, "groups holds a name that is not a group name");
			return 0;
		}
		if (zt_store_get(s->store, "group", json_string_value(v), &o, NULL) != 0) {
			snprintf(why, cap, "there is no group \"%.128s\"; create it first (zt group create)",
				 json_string_value(v));
			return 0;
		}
		zt_object_clear(&o);
	}
	return 1;
}

/* A password from a body member: 12-1024 bytes; 0, or 400 answered */
static int password_ok(const zt_http_req *q, zt_http_resp *r, const json_t *pw)
{
	if (!json_is_string(pw) || json_string_length(pw) < PW_MIN || json_string_length(pw) > ZT_PW_MAX_LEN) {
		zt_http_resp_error(r, q, 400, "weak-password", "a password has %d to %d bytes", PW_MIN,
				   ZT_PW_MAX_LEN);
		return -1;
	}
	return 0;
}

/* Hashes pw into body's "password", Argon2id slots permitting; 0, or an answer given. */
static int set_password(const zt_http_req *q, zt_http_resp *r, json_t *body, const json_t *pw)
{
	char phc[ZT_PW_HASH_MAX];
	zt_err e;
	int rc;

	if (hash_enter() != 0) {
		zt_http_resp_error(r, q, 503, "busy", "too many password operations at once; try again");
		return -1;
	}
	rc = zt_password_hash(json_string_value(pw), json_string_length(pw), NULL, phc, &e);
	hash_leave();
	if (rc != 0) {
		srv_fail(r, q, &e);
		return -1;
	}
	json_object_set_new(body, "password", json_string(phc));
	json_object_set_new(body, "password_changed", json_integer(zt_now()));
	bump_gen(body); /* the sessions of the old password end */
	return 0;
}

static void users_create(srv *s, const zt_http_req *q, zt_http_resp *r, const char *principal)
{
	static const char *const members[] = {"name", "groups", "password", "disabled", NULL};
	json_t *b = srv_body_object(q, r, members), *body = NULL, *g;
	const char *name;
	char why[300];
	uint64_t v;
	zt_err e;

	if (!b)
		return;
	name = json_string_value(json_object_get(b, "name"));
	g = json_object_get(b, "groups");
	if (!name || !srv_user_name_ok(name)) {
		zt_http_resp_error(r, q, 400, "invalid",
				   "a user needs a name: 1-128 of A-Z a-z 0-9 . _ @ + - (not starting with . or -)");
		goto out;
	}
	if (!srv_allowed(s, principal, SRV_WRITE, "user", "", NULL)) {
		srv_forbid(s, r, q, principal, "user.create", name);
		goto out;
	}
	if (g && !groups_ok(s, g, why, sizeof why)) {
		zt_http_resp_error(r, q, 400, "invalid", "%s", why);
		goto out;
	}
	body = json_pack("{s:o,s:b,s:s}", "groups", g ? json_incref(g) : json_array(), "disabled",
			 json_is_true(json_object_get(b, "disabled")), "created_by", principal);
	if (!body || new_uid(body) != 0) {
		zt_http_resp_error(r, q, 500, "internal", "out of memory or randomness");
		goto out;
	}
	if (json_object_get(b, "password") &&
	    (password_ok(q, r, json_object_get(b, "password")) != 0 ||
	     set_password(q, r, body, json_object_get(b, "password")) != 0))
		goto out;
	if (zt_store_begin(s->store, &e) != 0 || zt_store_put(s->store, "user", name, body, 0, &v, &e) != 0) {
		zt_store_rollback(s->store);
		srv_fail(r, q, &e);
		goto out;
	}
	if (srv_commit_audited(s, q, principal, "user.create", name,
			       json_pack("{s:O}", "groups", json_object_get(body, "groups")), &e) != 0) {
		srv_fail(r, q, &e);
		goto out;
	}
	zt_object o = {.version = v, .body = body};

	snprintf(o.name, sizeof o.name, "%s", name);
	zt_http_resp_json(r, 201, user_json(&o));
out:
	json_decref(body);
	json_decref(b);
}

/* Runs fn on user NAME in a transaction and commits it audited; fn answers its own 4xx. */
/*
 * fn edits u->body; it may set *detail (what the audit entry says) and
 * *answer (the 200 body, sent only once the change is committed).
 */
typedef int (*user_edit_fn)(srv *s, const zt_http_req *q, zt_http_resp *r, json_t *req, zt_object *u,
			    json_t **detail, json_t **answer);

static void user_edit(srv *s, const zt_http_req *q, zt_http_resp *r, const char *principal, const char *name,
		      const char *action, json_t *req, user_edit_fn fn, int answer_user)
{
	zt_object u = {0};
	json_t *detail = NULL, *answer = NULL;
	uint64_t v;
	zt_err e;

	if (zt_store_begin(s->store, &e) != 0 || zt_store_get(s->store, "user", name, &u, &e) != 0) {
		zt_store_rollback(s->store);
		srv_fail(r, q, &e);
		return;
	}
	if (fn(s, q, r, req, &u, &detail, &answer) != 0) {
		zt_store_rollback(s->store);
		zt_object_clear(&u);
		json_decref(detail);
		json_decref(answer);
		return;
	}
	if (zt_store_put(s->store, "user", name, u.body, u.version, &v, &e) != 0 ||
	    srv_commit_audited(s, q, principal, action, name, detail, &e) != 0) {
		zt_store_rollback(s->store);
		zt_object_clear(&u);
		json_decref(answer);
		srv_fail(r, q, &e);
		return;
	}
	u.version = v;
	if (answer) {
		zt_http_resp_json(r, 200, answer);
		r->secret = 1; /* a second factor's secret */
	} else if (answer_user) {
		zt_http_resp_json(r, 200, user_json(&u));
	}
	zt_object_clear(&u);
}

static int edit_update(srv *s, const zt_http_req *q, zt_http_resp *r, json_t *req, zt_object *u,
		       json_t **detail, json_t **answer)
{
	(void)answer;
	json_t *g = json_object_get(req, "groups"), *d = json_object_get(req, "disabled");
	uint64_t want;
	char why[300];

	int ev = srv_expected_version(q, req, &want);

	if (ev == -1) {
		zt_http_resp_error(r, q, 428, "version-required",
				   "name the version you read (If-Match, ?version= or \"version\")");
		return -1;
	}
	if (ev != 0) {
		zt_http_resp_error(r, q, 400, "invalid", "the version is a number");
		return -1;
	}
	if (want != u->version) {
		zt_http_resp_error(r, q, 409, "conflict", "the user changed (version %llu); read it again",
				   (unsigned long long)u->version);
		return -1;
	}
	if ((g && !groups_ok(s, g, why, sizeof why)) || (d && !json_is_boolean(d))) {
		zt_http_resp_error(r, q, 400, "invalid", "%s", g ? why : "disabled is true or false");
		return -1;
	}
	if (g)
		json_object_set(u->body, "groups", g);
	if (d)
		json_object_set(u->body, "disabled", d);
	*detail = json_pack("{s:O,s:b}", "groups", json_object_get(u->body, "groups"), "disabled",
			    json_is_true(json_object_get(u->body, "disabled")));
	return 0;
}

static int edit_password(srv *s, const zt_http_req *q, zt_http_resp *r, json_t *req, zt_object *u,
			 json_t **detail, json_t **answer)
{
	(void)answer;
	(void)s;
	(void)detail;
	if (password_ok(q, r, json_object_get(req, "password")) != 0)
		return -1;
	return set_password(q, r, u->body, json_object_get(req, "password"));
}

static int edit_totp_enrol(srv *s, const zt_http_req *q, zt_http_resp *r, json_t *req, zt_object *u,
			   json_t **detail, json_t **answer)
{
	uint8_t key[ZT_TOTP_SECRET_LEN];
	zt_totp_params tp = zt_totp_defaults();
	zt_buf text, uri, b32;
	zt_err e;
	int rc;

	(void)req;
	(void)detail;
	zt_buf_init(&text, 4096);
	zt_buf_init(&uri, 4096);
	zt_buf_init(&b32, 256);
	if ((rc = zt_totp_secret(key, &e)) != 0 || (rc = totp_store_text(key, sizeof key, &text, &e)) != 0 ||
	    (rc = zt_totp_uri(s->td, u->name, key, sizeof key, &tp, &uri, &e)) != 0 ||
	    (rc = zt_base32_encode(key, sizeof key, 0, &b32, &e)) != 0) {
		srv_fail(r, q, &e);
		goto out;
	}
	/* pending until a code confirms it: the factor in force (if any) stays until then */
	json_object_set_new(u->body, "totp_pending", json_pack("{s:s,s:b,s:I}", "secret", (const char *)text.p,
							       "confirmed", 0, "last_step", (json_int_t)0));
	*answer = json_pack("{s:s,s:s,s:s}", "secret", (const char *)b32.p, "uri", (const char *)uri.p, "note",
			    "add it to an authenticator app, then confirm with a code (zt user totp confirm)");
out:
	zt_wipe(key, sizeof key);
	zt_buf_free(&text, 1);
	zt_buf_free(&uri, 1);
	zt_buf_free(&b32, 1);
	return rc;
}

/* Checks code against a second factor t ("totp" or "totp_pending") and records its step; 0, or -ZT_EVERIFY. */
static int totp_check(json_t *t, const char *code, zt_err *e)
{
	const char *secret = json_string_value(json_object_get(t, "secret"));
	uint64_t last = (uint64_t)json_integer_value(json_object_get(t, "last_step")), step = 0;
	zt_totp_params tp = zt_totp_defaults();
	zt_buf key;
	int rc;

	if (!secret)
		return zt_err_rule(e, ZT_EVERIFY, "totp-none", "no second factor is enrolled");
	zt_buf_init(&key, 4096);
	if ((rc = totp_load(secret, &key, e)) == 0 &&
	    (rc = zt_totp_verify(key.p, key.len, &tp, code, strlen(code), zt_now(), last, &step, e)) == 0)
		json_object_set_new(t, "last_step", json_integer((json_int_t)step));
	zt_buf_free(&key, 1);
	return rc;
}

static int edit_totp_confirm(srv *s, const zt_http_req *q, zt_http_resp *r, json_t *req, zt_object *u,
			     json_t **detail, json_t **answer)
{
	(void)answer;
	const char *code = json_string_value(json_object_get(req, "code"));
	json_t *t = json_object_get(u->body, "totp_pending");
	zt_err e;

	(void)s;
	(void)detail;
	if (!t || !code) {
		zt_http_resp_error(r, q, 400, "invalid",
				   t ? "send {\"code\": the 6 digits the app shows}" : "enrol first (zt user totp enrol)");
		return -1;
	}
	if (totp_check(t, code, &e) != 0) {
		zt_http_resp_error(r, q, 400, "wrong-code", "%s", e.msg);
		return -1;
	}
	/* the new factor takes over; sessions made with the old one end */
	json_object_set_new(t, "confirmed", json_true());
	json_object_set(u->body, "totp", t);
	json_object_del(u->body, "totp_pending");
	bump_gen(u->body);
	return 0;
}

static int edit_totp_remove(srv *s, const zt_http_req *q, zt_http_resp *r, json_t *req, zt_object *u,
			    json_t **detail, json_t **answer)
{
	(void)answer;
	(void)s;
	(void)q;
	(void)r;
	(void)req;
	(void)detail;
	json_object_del(u->body, "totp");
	json_object_del(u->body, "totp_pending");
	bump_gen(u->body);
	return 0;
}

static int has_confirmed_totp(srv *s, const char *name)
{
	zt_object o;
	int has;

	if (zt_store_get(s->store, "user", name, &o, NULL) != 0)
		return 0;
	has = json_is_true(json_object_get(json_object_get(o.body, "totp"), "confirmed"));
	zt_object_clear(&o);
	return has;
}

/* The user's current password, for a change it makes itself: 0, or an answer given. */
static int current_password_ok(srv *s, const zt_http_req *q, zt_http_resp *r, const char *name,
			       const json_t *cur)
{
	zt_object o;
	zt_err e;
	int rc;

	if (!json_is_string(cur) || json_string_length(cur) > ZT_PW_MAX_LEN) {
		zt_http_resp_error(r, q, 400, "current-password-required",
				   "to change your own password, send the current one too (\"current\")");
		return -1;
	}
	if (zt_store_get(s->store, "user", name, &o, &e) != 0) {
		srv_fail(r, q, &e);
		return -1;
	}
	const char *phc = json_string_value(json_object_get(o.body, "password"));

	if (hash_enter() != 0) {
		zt_object_clear(&o);
		zt_http_resp_error(r, q, 503, "busy", "too many password operations at once; try again");
		return -1;
	}
	rc = phc ? zt_password_verify(json_string_value(cur), json_string_length(cur), phc, strlen(phc), NULL, &e)
		 : zt_password_dummy_verify(json_string_value(cur), json_string_length(cur), &e);
	hash_leave();
	zt_object_clear(&o);
	if (rc != 0 || !phc) {
		lock_fail(name);
		srv_count_failure(s, q);
		zt_http_resp_error(r, q, 403, "wrong-password", "the current password is wrong");
		return -1;
	}
	return 0;
}

/* The user a caller is ("user:NAME" of a login token), or NULL. */
static const char *self_of(const char *principal)
{
	return !strncmp(principal, "user:", 5) ? principal + 5 : NULL;
}

void srv_users(srv *s, const zt_http_req *q, zt_http_resp *r, const char *principal, char seg[][64],
	       int nseg)
{
	static const char *const upd[] = {"groups", "disabled", "version", NULL};
	static const char *const pw[] = {"password", "current", NULL};
	static const char *const code[] = {"code", NULL};
	const char *me = self_of(principal);
	int admin = srv_allowed(s, principal, SRV_WRITE, "user", "", NULL);
	json_t *b;

	if (nseg == 1 && !strcmp(q->method, "POST")) {
		users_create(s, q, r, principal);
		return;
	}
	if (nseg == 1 && !strcmp(q->method, "GET")) {
		srv_page p;

		if (!srv_allowed(s, principal, SRV_READ, "user", "", NULL)) {
			srv_forbid(s, r, q, principal, "user.list", "");
			return;
		}
		if (srv_page_parse(q, r, &p) == 0)
			srv_list_page(s, q, r, &p, "user", "", user_item, NULL);
		return;
	}
	if (nseg < 2 || !srv_user_name_ok(seg[1])) {
		zt_http_resp_error(r, q, 404, "not-found", "no such resource: %s", q->path);
		return;
	}
	const char *name = seg[1];
	int self = me && !strcmp(me, name);

	if (nseg == 2 && (!strcmp(q->method, "GET") || !strcmp(q->method, "DELETE"))) {
		int del = !strcmp(q->method, "DELETE");
		zt_object o;
		zt_err e;

		if (!(del ? admin : admin || self || srv_allowed(s, principal, SRV_READ, "user", "", NULL))) {
			srv_forbid(s, r, q, principal, del ? "user.delete" : "user.get", name);
			return;
		}
		if (zt_store_get(s->store, "user", name, &o, &e) != 0) {
			srv_fail(r, q, &e);
			return;
		}
		if (!del) {
			zt_http_resp_json(r, 200, user_json(&o));
			zt_object_clear(&o);
			return;
		}
		srv_get_or_delete(s, q, r, principal, &o, 1, "user.delete", "name", "version");
		return;
	}
	if (nseg == 2 && !strcmp(q->method, "PUT")) {
		if (!admin) {
			srv_forbid(s, r, q, principal, "user.update", name);
			return;
		}
		if ((b = srv_body_object(q, r, upd))) {
			user_edit(s, q, r, principal, name, "user.update", b, edit_update, 1);
			json_decref(b);
		}
		return;
	}
	/*
	 * a password: set by an administrator, or changed by its user, who
	 * proves it knows the current one (a stolen session alone cannot)
	 */
	if (nseg == 3 && !strcmp(seg[2], "password") && !strcmp(q->method, "PUT")) {
		if (!admin && !self) {
			srv_forbid(s, r, q, principal, "user.password", name);
			return;
		}
		if ((b = srv_body_object(q, r, pw))) {
			if (admin || current_password_ok(s, q, r, name, json_object_get(b, "current")) == 0)
				user_edit(s, q, r, principal, name, "user.password", b, edit_password, 1);
			json_decref(b);
		}
		return;
	}
	/* TOTP: enrolled by an administrator for anyone, or by a user for themself */
	if (nseg >= 3 && !strcmp(seg[2], "totp")) {
		int enrol = nseg == 3 && !strcmp(q->method, "POST"),
		    confirm = nseg == 4 && !strcmp(seg[3], "confirm") && !strcmp(q->method, "POST"),
		    remove = nseg == 3 && !strcmp(q->method, "DELETE");

		if (!enrol && !confirm && !remove) {
			zt_http_resp_error(r, q, 404, "not-found", "no such resource: %s", q->path);
			return;
		}
		if (!(admin || (self && !remove))) {
			srv_forbid(s, r, q, principal, "user.totp", name);
			return;
		}
		/* a user sets up a first factor; replacing one in force takes an administrator */
		if (!admin && enrol && has_confirmed_totp(s, name)) {
			zt_http_resp_error(r, q, 409, "totp-in-force",
					   "a second factor is in force; an administrator removes it first "
					   "(zt user totp remove %s)", name);
			return;
		}
		if (enrol)
			user_edit(s, q, r, principal, name, "user.totp.enrol", NULL, edit_totp_enrol, 0);
		else if (remove)
			user_edit(s, q, r, principal, name, "user.totp.remove", NULL, edit_totp_remove, 1);
		else if ((b = srv_body_object(q, r, code))) {
			user_edit(s, q, r, principal, name, "user.totp.confirm", b, edit_totp_confirm, 1);
			json_decref(b);
		}
		return;
	}
	zt_http_resp_error(r, q, 404, "not-found", "no such resource: %s", q->path);
}

struct group_use {
	const char *group;
	char what[300]; /* "user alice" or "role binding NAME", "" when unused */
};

static int group_member_visit(void *arg, const zt_object *o)
{
	struct group_use *u = arg;
	const json_t *g;
	size_t i;

	json_array_foreach (json_object_get(o->body, "groups"), i, g)
		if (json_is_string(g) && !strcmp(json_string_value(g), u->group)) {
			snprintf(u->what, sizeof u->what, "user %.200s", o->name);
			return 1;
		}
	return 0;
}

static int group_binding_visit(void *arg, const zt_object *o)
{
	struct group_use *u = arg;
	const char *p = json_string_value(json_object_get(o->body, "principal"));

	if (u->what[0])
		return 1;
	if (p && !strncmp(p, "group:", 6) && !strcmp(p + 6, u->group)) {
		snprintf(u->what, sizeof u->what, "role binding %.200s", o->name);
		return 1;
	}
	return 0;
}

void srv_groups(srv *s, const zt_http_req *q, zt_http_resp *r, const char *principal, char seg[][64],
		int nseg)
{
	static const char *const members[] = {"name", "description", NULL};
	zt_err e;

	if (nseg == 1 && !strcmp(q->method, "POST")) {
		json_t *b = srv_body_object(q, r, members), *body;
		const char *name = b ? json_string_value(json_object_get(b, "name")) : NULL;
		const char *d = b ? json_string_value(json_object_get(b, "description")) : NULL;
		uint64_t v;

		if (!b)
			return;
		if (!name || !srv_user_name_ok(name) || (d && strlen(d) > 256)) {
			zt_http_resp_error(r, q, 400, "invalid",
					   "a group has a name (1-128 of A-Z a-z 0-9 . _ @ + -) and a description");
			json_decref(b);
			return;
		}
		if (!srv_allowed(s, principal, SRV_WRITE, "user", "", NULL)) {
			srv_forbid(s, r, q, principal, "group.create", name);
			json_decref(b);
			return;
		}
		body = json_pack("{s:s}", "description", d ? d : "");
		if (zt_store_begin(s->store, &e) != 0 || zt_store_put(s->store, "group", name, body, 0, &v, &e) != 0 ||
		    srv_commit_audited(s, q, principal, "group.create", name, NULL, &e) != 0) {
			zt_store_rollback(s->store);
			srv_fail(r, q, &e);
		} else {
			zt_http_resp_json(r, 201, json_pack("{s:s,s:s,s:I}", "name", name, "description", d ? d : "",
							    "version", (json_int_t)v));
		}
		json_decref(body);
		json_decref(b);
		return;
	}
	if (nseg == 1 && !strcmp(q->method, "GET")) {
		srv_page p;

		if (!srv_allowed(s, principal, SRV_READ, "user", "", NULL)) {
			srv_forbid(s, r, q, principal, "group.list", "");
			return;
		}
		if (srv_page_parse(q, r, &p) == 0)
			srv_list_page(s, q, r, &p, "group", "", NULL, NULL);
		return;
	}
	if (nseg == 2 && srv_user_name_ok(seg[1]) && (!strcmp(q->method, "GET") || !strcmp(q->method, "DELETE"))) {
		int del = !strcmp(q->method, "DELETE");
		zt_object o;

		if (!srv_allowed(s, principal, del ? SRV_WRITE : SRV_READ, "user", "", NULL)) {
			srv_forbid(s, r, q, principal, del ? "group.delete" : "group.get", seg[1]);
			return;
		}
		/* a group still named would come back with its powers if made again: refuse */
		struct group_use use = {.group = seg[1]};

		if (del && (srv_store_walk(s, "user", "", "", 0, group_member_visit, &use, &e) != 0 ||
			    srv_store_walk(s, "rolebinding", "", "", 0, group_binding_visit, &use, &e) != 0)) {
			srv_fail(r, q, &e);
			return;
		}
		if (use.what[0]) {
			zt_http_resp_error(r, q, 409, "in-use", "group %s is still named by %s; remove that first",
					   seg[1], use.what);
			return;
		}
		if (zt_store_get(s->store, "group", seg[1], &o, &e) != 0) {
			srv_fail(r, q, &e);
			return;
		}
		srv_get_or_delete(s, q, r, principal, &o, del, "group.delete", "name", "version");
		return;
	}
	zt_http_resp_error(r, q, 404, "not-found", "no such resource: %s", q->path);
}

/* ---- login ------------------------------------------------------------------------------ */

static void login_audit(srv *s, const zt_http_req *q, const char *user, const char *decision,
			const char *reason)
{
	zt_err e;

	char actor[NAME_MAX_LEN + 8];

	/* the name tried, as the principal it would be (whether or not such a user exists) */
	snprintf(actor, sizeof actor, "user:%s", user[0] ? user : "-");
	if (srv_audit(s, q, actor, "login", user[0] ? user : "-", decision,
		      json_pack("{s:s,s:s}", "reason", reason, "remote", q->remote), &e) != 0)
		zt_log(ZT_LOG_ERROR, "login: cannot audit", "error", e.msg, NULL);
}

/* The one answer for a wrong user name, password or code (and disabled users). */
static void login_refused(srv *s, const zt_http_req *q, zt_http_resp *r, const char *user, const char *reason)
{
	if (user[0])
		lock_fail(user);
	srv_count_failure(s, q);
	login_audit(s, q, user, "deny", reason);
	zt_http_resp_error(r, q, 401, "login-failed", "the user name, password or code is wrong");
}

/*
 * POST /v1/login {"user", "password", "code"?, "audience"?, "ttl"?}:
 * a JWT for the user (sub), its groups and the audience (default "zt",
 * the API itself), for ttl (default 15m, at most srv_token_ttl_max).
 */
void srv_login(srv *s, const zt_http_req *q, zt_http_resp *r)
{
	static const char *const members[] = {"user", "password", "code", "audience", "ttl", NULL};
	json_t *b, *claims = NULL, *groups = NULL, *ttl_j;
	const char *pw, *code, *aud;
	char user[NAME_MAX_LEN + 1] = "", left[32], jti[33];
	int64_t lock_ms, ttl = SRV_LOGIN_TTL_DEFAULT, exp = 0;
	zt_object u = {0};
	zt_buf tok;
	zt_err e;
	int found, rc, needs_rehash = 0, otp_checked = 0;

	zt_buf_init(&tok, 16384);
	if (srv_too_many_failures(s, q, r))
		return;
	if (!(b = srv_body_object(q, r, members)))
		return;
	pw = json_string_value(json_object_get(b, "password"));
	code = json_string_value(json_object_get(b, "code"));
	aud = json_string_value(json_object_get(b, "audience"));
	ttl_j = json_object_get(b, "ttl");
	if (!json_is_string(json_object_get(b, "user")) || !pw ||
	    json_string_length(json_object_get(b, "user")) > NAME_MAX_LEN ||
	    json_string_length(json_object_get(b, "password")) > ZT_PW_MAX_LEN ||
	    (json_object_get(b, "code") && (!code || strlen(code) > 8)) ||
	    (json_object_get(b, "audience") && (!aud || !*aud || strlen(aud) > 200)) ||
	    (ttl_j && (!json_is_string(ttl_j) ||
		       zt_duration_parse(json_string_value(ttl_j), srv_token_ttl_max(s), &ttl, NULL) != 0))) {
		char max[16];

		zt_duration_format(srv_token_ttl_max(s), max, sizeof max);
		zt_http_resp_error(r, q, 400, "invalid",
				   "send {\"user\", \"password\"} and optionally \"code\" (TOTP), \"audience\" "
				   "(200 bytes) and \"ttl\" (at most %s)", max);
		goto out;
	}
	snprintf(user, sizeof user, "%s", json_string_value(json_object_get(b, "user")));
	/* locked: the same for every name, known or not */
	if ((lock_ms = locked_for(user)) > 0) {
		snprintf(left, sizeof left, "%lld", (long long)(lock_ms + 999) / 1000);
		if (zt_http_resp_header(r, "Retry-After", left) != 0)
			r->close = 1;
		login_audit(s, q, user, "deny", "locked");
		zt_http_resp_error(r, q, 429, "locked",
				   "too many failed logins for this user; try again in %s s", left);
		goto out;
	}
	found = srv_user_name_ok(user) && zt_store_get(s->store, "user", user, &u, NULL) == 0 &&
		json_is_string(json_object_get(u.body, "password"));
	if (hash_enter() != 0) {
		zt_http_resp_error(r, q, 503, "busy", "too many logins at once; try again");
		goto out;
	}
	/* an unknown user costs the same Argon2id run as a known one */
	if (found) {
		const char *phc = json_string_value(json_object_get(u.body, "password"));

		rc = zt_password_verify(pw, strlen(pw), phc, strlen(phc), &needs_rehash, &e);
	} else {
		rc = zt_password_dummy_verify(pw, strlen(pw), &e);
	}
	hash_leave();
	if (rc != 0) {
		login_refused(s, q, r, user, found ? "password" : "unknown-user");
		goto out;
	}
	if (json_is_true(json_object_get(u.body, "disabled"))) {
		login_refused(s, q, r, user, "disabled");
		goto out;
	}
	groups = json_object_get(u.body, "groups");
	groups = json_is_array(groups) ? json_incref(groups) : json_array();
	json_t *t = json_object_get(u.body, "totp");

	if (t && json_is_true(json_object_get(t, "confirmed"))) {
		uint64_t v;

		if (!code) { /* the password was right: the client asks for the code next */
			login_audit(s, q, user, "deny", "totp-required");
			zt_http_resp_error(r, q, 401, "totp-required", "send the code of your authenticator app too");
			goto out;
		}
		/* each code once: the step is recorded before the token leaves */
		if (zt_store_begin(s->store, &e) != 0) {
			srv_fail(r, q, &e);
			goto out;
		}
		zt_object_clear(&u);
		if (zt_store_get(s->store, "user", user, &u, &e) != 0 ||
		    totp_check(json_object_get(u.body, "totp"), code, &e) != 0) {
			zt_store_rollback(s->store);
			login_refused(s, q, r, user, e.rule[0] ? e.rule : "totp");
			goto out;
		}
		if (zt_store_put(s->store, "user", user, u.body, u.version, &v, &e) != 0 ||
		    zt_store_commit(s->store, &e) != 0) {
			zt_store_rollback(s->store);
			srv_fail(r, q, &e);
			goto out;
		}
		otp_checked = 1;
	} else if (holds_admin_role(s, user, groups)) {
		login_audit(s, q, user, "deny", "totp-enrolment-required");
		zt_http_resp_error(r, q, 403, "totp-enrolment-required",
				   "%s holds an administrator's role, which needs a second factor: ask an "
				   "administrator to run 'zt user totp enrol %s'",
				   user, user);
		goto out;
	}
	lock_clear(user);
	char session[64];

	srv_user_session(u.body, session, sizeof session);
	/* RFC 8176 2: "otp" only when a one-time code was in fact checked */
	claims = json_pack("{s:s,s:s,s:O,s:[s,s*],s:s}", "sub", user, "aud", aud ? aud : "zt", "groups", groups,
			   "amr", "pwd", otp_checked ? "otp" : NULL, "ztv", session);
	if (!claims || srv_jwt_mint(s, claims, ttl, 1, &tok, jti, &exp, &e) != 0) {
		srv_fail(r, q, &e);
		goto out;
	}
	login_audit(s, q, user, "allow", otp_checked ? "password+totp" : "password");
	if (needs_rehash)
		zt_log(ZT_LOG_INFO, "login: the user's password hash is older than the defaults; it is "
				    "replaced at the next password change", "user", user, NULL);
	char exp_s[32];

	zt_audit_time_format(exp * 1000, exp_s);
	zt_http_resp_json(r, 200, json_pack("{s:s,s:s,s:s,s:I}", "token", (const char *)tok.p, "token_type",
					    "Bearer", "expires_at", exp_s, "expires_in", (json_int_t)(exp - zt_now())));
	r->secret = 1;
out:
	zt_buf_free(&tok, 1);
	json_decref(claims);
	json_decref(groups);
	zt_object_clear(&u);
	if (b) {
		json_t *p = json_object_get(b, "password");

		if (json_is_string(p)) /* jansson's copy of the password: wipe before freeing */
			zt_wipe((void *)(uintptr_t)json_string_value(p), json_string_length(p));
		json_decref(b);
	}
}

/* POST /v1/logout: the login token presented is revoked until it would have expired. */
void srv_logout(srv *s, const zt_http_req *q, zt_http_resp *r, const char *principal, const char *jti,
		int64_t exp)
{
	uint64_t v;
	zt_err e;
	json_t *b;

	if (!jti || !jti[0]) {
		zt_http_resp_error(r, q, 400, "invalid", "log out with the login token itself (a JWT zt issued)");
		return;
	}
	b = json_pack("{s:I,s:s}", "expires", (json_int_t)exp, "principal", principal);
	if (zt_store_begin(s->store, &e) != 0 || zt_store_put(s->store, "revoked", jti, b, 0, &v, &e) != 0 ||
	    srv_commit_audited(s, q, principal, "logout", principal, json_pack("{s:s}", "jti", jti), &e) != 0) {
		zt_store_rollback(s->store);
		json_decref(b);
		srv_fail(r, q, &e);
		return;
	}
	json_decref(b);
	zt_http_resp_json(r, 200, json_pack("{s:s}", "status", "logged out"));
}
