/* server_int.h: the server's state, shared by its files. */
#ifndef ZT_SERVER_INT_H
#define ZT_SERVER_INT_H

#include <pthread.h>

#include "audit/audit.h"
#include "crypto/crypto.h"
#include "identity/identity.h"
#include "net/httpd.h"
#include "server/server.h"
#include "store/store.h"

typedef struct srv {
	zt_store *store;
	zt_audit *audit;
	struct zt_ca *ca;        /* issues SVIDs (svids.c); ca_mu serializes it */
	pthread_mutex_t ca_mu;
	char td[256];
	pthread_mutex_t bundle_mu; /* bundle_pem changes when the CA rotates */
	zt_buf bundle_pem;   /* the trust bundle, served at /v1/bundle */
	zt_httpd *httpd;
	_Atomic unsigned long long responses[6]; /* by status class: [2] is 2xx ... [5] 5xx */
	_Atomic unsigned long long auth_failures, denials;
	pthread_mutex_t watch_mu; /* watchers wait for the store to move past their revision */
	pthread_cond_t watch_cv;
	uint64_t watch_rev;       /* the store revision after the last commit */
	pthread_mutex_t rb_mu;   /* the role bindings, parsed, as of store revision rb_rev */
	uint64_t rb_rev;
	struct srv_binding *rb;
	size_t nrb;
	pthread_mutex_t fail_mu; /* failed-authentication counters */
	struct srv_fail {
		uint64_t key;
		int64_t window;         /* the minute failures are counted in (ms) */
		unsigned count;
		unsigned strikes;       /* blocks in a row: each doubles the next */
		int64_t blocked_until;  /* ms */
	} fails[1024];
	struct srv_issuer *iss; /* tokens zt signs (issuer.c) */
	int64_t key_period;     /* how long a token signing key signs */
	_Atomic int ready;      /* set once everything is up; 503 before */
} srv;

/* ---- authz.c: who the caller is and what they may do ---- */

#define SRV_PRINCIPAL_MAX 2100

/* The caller: a SPIFFE ID (mTLS) or "token:<id>" (bearer), or 401/429 answered. */
int srv_authenticate(srv *s, const zt_http_req *q, zt_http_resp *r, char *principal,
		     size_t cap);

/* 1 with 429 answered when the caller's address failed to authenticate too often this minute. */
int srv_too_many_failures(srv *s, const zt_http_req *q, zt_http_resp *r);
/* Counts a failed authentication (a bad token, a bad join token) against the caller's address. */
void srv_count_failure(srv *s, const zt_http_req *q);

/* READ; CREATE a new object; WRITE (update or delete) an existing one. */
enum srv_action { SRV_READ, SRV_CREATE, SRV_WRITE };

/*
 * 1 if principal may do action to an object of `kind` named `name` (for a
 * collection: the parent's name, "" at the top). `role` is the role a
 * role binding being written grants (NULL otherwise).
 */
int srv_allowed(srv *s, const char *principal, enum srv_action action, const char *kind,
		const char *name, const char *role);
/* 1 if a role binding gives principal (exactly) role anywhere. */
int srv_principal_has_role(srv *s, const char *principal, const char *role);
/* For POST /v1/logout: the jti and expiry of the login token presented ("" if it is not one). */
int srv_logout_token(srv *s, const zt_http_req *q, zt_http_resp *r, char jti[33], int64_t *exp);
/* Frees the cached role bindings (at shutdown). */
void srv_bindings_free(srv *s);
/* 1 if role is one zt knows. */
int srv_role_ok(const char *role);

/* Tokens: "ztk_<16 hex id>_<43 base64url secret>". */
int srv_token_create(srv *s, const char *principal, const char *description, int64_t ttl_s,
		     char *token, size_t cap, char *id, zt_err *e) ZT_MUST_CHECK;

/* ---- server.c ---- */

/* Appends the trust bundle in force (PEM) to out. */
int srv_bundle_pem(srv *s, zt_buf *out) ZT_MUST_CHECK;

/* ---- api.c ---- */

/* An object as the API shows it: the envelope and the body's members (never a hash). */
json_t *srv_object_json(const zt_object *o);

/* The request body as a JSON object with only the allowed members; NULL with 400 answered. */
json_t *srv_body_object(const zt_http_req *q, zt_http_resp *r, const char *const *members);

void srv_handle(void *arg, const zt_http_req *q, zt_http_resp *r);
/* A store or audit error as the status it means (404, 409, 400, 413, 503...). */
void srv_fail(zt_http_resp *r, const zt_http_req *q, const zt_err *e);
/* 403, and the refusal appended to the audit log. */
void srv_forbid(srv *s, zt_http_resp *r, const zt_http_req *q, const char *principal,
		const char *action, const char *target);
/* A percent-decoded query value: 0 present and valid, 1 absent, -1 too long or badly escaped. */
int srv_query(const char *query, const char *key, char *out, size_t cap);
/* A decimal query value; 0 when absent (*present 0) or valid, -1 when malformed (a 400). */
int srv_query_u64(const char *query, const char *key, uint64_t *out, int *present);
/*
 * Lists page (docs/api.md, "Conventions"): ?limit=N items (1-ZT_STORE_LIST_MAX,
 * SRV_PAGE_DEFAULT when not given) after ?after=NAME (the "next" of the page
 * before; none from the start); the answer is {"items": [...], "next": NAME},
 * next (the last item's name) only when the page is full.
 */
#define SRV_PAGE_DEFAULT 100
typedef struct srv_page {
	size_t limit;
	char after[ZT_STORE_NAME_MAX + 1]; /* "" from the start */
} srv_page;

/* The page a list request asks for: 0, or -1 with 400 answered. */
int srv_page_parse(const zt_http_req *q, zt_http_resp *r, srv_page *p) ZT_MUST_CHECK;

/* One object of a walk: 0 to go on, 1 to stop there, -1 to fail it (out of memory). */
typedef int (*srv_visit_fn)(void *arg, const zt_object *o);
/*
 * Visits the objects of kind whose names start with prefix, in name order,
 * after the name `after` ("" from the start) until visit stops it or they
 * end, reading the store a chunk at a time (chunk objects first, then
 * larger ones, up to ZT_STORE_LIST_MAX; 0 for that). 0, or -1 with *e set.
 */
int srv_store_walk(srv *s, const char *kind, const char *prefix, const char *after, size_t chunk,
		   srv_visit_fn visit, void *arg, zt_err *e) ZT_MUST_CHECK;

/*
 * What a list shows of o: 0 with *item a new JSON value, or *item NULL to
 * leave o out (the caller may not see it, or it does not match a filter);
 * -1 when out of memory.
 */
typedef int (*srv_item_fn)(srv *s, const zt_object *o, void *arg, json_t **item);
/*
 * Answers GET of a list: page p of the objects of kind under prefix, each
 * as item shows it (NULL: srv_object_json, every object). A page with
 * objects left out reads on until it is full or the objects end, so a
 * short page is always the last one.
 */
void srv_list_page(srv *s, const zt_http_req *q, zt_http_resp *r, const srv_page *p,
		   const char *kind, const char *prefix, srv_item_fn item, void *arg);
/* The version a write names: If-Match, ?version=, or body's "version": 0 given, -1 not given (428), -2 not a number (400). */
int srv_expected_version(const zt_http_req *q, json_t *body, uint64_t *v);
/*
 * The tail of GET and DELETE of one object o (taken: cleared): GET answers
 * it; DELETE removes the version read, audited as action, and answers
 * {name_key: name, version_key: the revision of the deletion}.
 */
void srv_get_or_delete(srv *s, const zt_http_req *q, zt_http_resp *r, const char *principal,
		       zt_object *o, int del, const char *action, const char *name_key,
		       const char *version_key);
/* Audits the change (allow) and commits the open store transaction; rolls back if the audit fails. */
int srv_commit_audited(srv *s, const zt_http_req *q, const char *principal, const char *action,
		       const char *target, json_t *details, zt_err *e) ZT_MUST_CHECK;

/* ---- policies.c: /v1/policies and the policy watch ---- */

void srv_policies(srv *s, const zt_http_req *q, zt_http_resp *r, const char *principal,
		  char seg[][64], int nseg);
/* GET /v1/watch/policies: the set that applies to the caller, once it changed past ?since=. */
void srv_watch_policies(srv *s, const zt_http_req *q, zt_http_resp *r, const char *principal);
/* Frees the workspace names kept for srv_workspace_of (at shutdown). */
void srv_workspaces_free(void);
/* "org/tenant/ws" of a workload ID spiffe://TD/ns/WS/sa/SVC (workspace names are unique per org). */
int srv_workspace_of(srv *s, const char *principal, char *ws, size_t cap, zt_err *e) ZT_MUST_CHECK;
/* Long poll: returns once the store moved past since, after timeout_s, or when stopping. */
void srv_watch_wait(srv *s, uint64_t since, uint64_t timeout_s);
/* After a commit: wakes the watchers. */
void srv_changed(srv *s);

/*
 * Appends an audit entry for what the caller did (decision allow or deny);
 * inside the store transaction of the change it records, so that a change
 * is committed only once its entry is durable.
 */
int srv_audit(srv *s, const zt_http_req *q, const char *principal, const char *action,
	      const char *target, const char *decision, json_t *details, zt_err *e) ZT_MUST_CHECK;
/* As srv_audit without waiting: *index is durable once zt_audit_wait(s->audit, index) returns. */
int srv_audit_submit(srv *s, const zt_http_req *q, const char *principal, const char *action,
		     const char *target, const char *decision, json_t *details, uint64_t *index,
		     zt_err *e) ZT_MUST_CHECK;

/* ---- svids.c: POST /v1/svids, certificates for workloads ---- */

void srv_svids(srv *s, const zt_http_req *q, zt_http_resp *r, const char *principal,
	       char seg[][64], int nseg);
/* Signs an SVID for id and pub (the CA held): the chain as PEM appended to pem, the leaf's serial (hex) and expiry. */
int srv_sign(srv *s, const zt_spiffe_id *id, const zt_pubkey *pub, int64_t ttl, zt_buf *pem,
	     char serial[64], char nas[32], zt_err *e) ZT_MUST_CHECK;
/* The service object "org/tenant/ws/svc" a workload ID names (it must exist); 0, or 400/404 answered. */
int srv_service_of(srv *s, const zt_http_req *q, zt_http_resp *r, const zt_spiffe_id *id,
		   char *svc, size_t cap) ZT_MUST_CHECK;

/* POST /v1/jwtsvids: an agent asks a JWT-SVID for a workload of its node. */
void srv_jwtsvids(srv *s, const zt_http_req *q, zt_http_resp *r, const char *principal, int nseg);

/* ---- agents.c: join tokens, agents, registration entries (issue 8) ---- */

/* Unauthenticated routes (POST /v1/agents/attest): 1 when q was one of them. */
int srv_agents_public(srv *s, const zt_http_req *q, zt_http_resp *r, char seg[][64], int nseg);
/* /v1/jointokens, /v1/agents, /v1/entries: 1 when q was one of them. */
int srv_agents_route(srv *s, const zt_http_req *q, zt_http_resp *r, const char *principal,
		     char seg[][64], int nseg);
/* 1 for a node name: 1-253 of a-z 0-9 - . */
int srv_node_ok(const char *n);
/* 1 and the node in node when principal is an agent's ID spiffe://TD/zt/agent/NODE. */
int srv_agent_of(srv *s, const char *principal, char *node, size_t cap);
/*
 * 1 when node has joined, was not evicted, and the caller presents a
 * certificate the server gave that agent (q->peer_serial among its
 * serials); *out (when not NULL) gets the agent object, caller clears.
 */
int srv_agent_ok(srv *s, const zt_http_req *q, const char *node, zt_object *out);
/*
 * Records serial as the agent's newest certificate (the one it presented
 * stays good for the switch), inside a store transaction it leaves open:
 * the caller commits it with its audit entry (srv_commit_audited).
 */
int srv_agent_renewed(srv *s, const zt_http_req *q, const char *node, zt_object *agent,
		      const char *serial, zt_err *e) ZT_MUST_CHECK;
/* The SVID life an entry gives id on node (the longest of its entries), 0 if none. */
int64_t srv_entry_ttl(srv *s, const char *node, const char *id);
/* Frees the parsed entries kept for srv_entry_ttl (at shutdown). */
void srv_entries_free(void);

/* ---- issuer.c: zt's JWTs, their signing keys, JWKS and discovery ---- */

#define SRV_TOKEN_KEY_PERIOD_DEFAULT (7 * 86400) /* seconds a signing key signs */
#define SRV_TOKEN_TTL_MAX (12 * 3600)            /* the longest token zt mints */
#define SRV_LOGIN_TTL_DEFAULT (15 * 60)

struct srv_keys;
/* Sets up the issuer at url (the "iss" of every token) and its first key. */
int srv_issuer_init(srv *s, const char *url, int64_t key_period, zt_err *e) ZT_MUST_CHECK;
/* Rotates keys on schedule and reloads them (the maintenance thread). */
int srv_issuer_maintain(srv *s, zt_err *e) ZT_MUST_CHECK;
void srv_issuer_free(srv *s);
const char *srv_issuer_url(const srv *s);
/* The longest life a token may be given: half the key period, at most SRV_TOKEN_TTL_MAX. */
int64_t srv_token_ttl_max(const srv *s);
/*
 * Adds iss (with_iss), iat, nbf, exp (ttl, capped), jti to claims and signs
 * them; the JWT appended to out.
 */
int srv_jwt_mint(srv *s, json_t *claims, int64_t ttl, int with_iss, zt_buf *out, char jti[33],
		 int64_t *exp, zt_err *e) ZT_MUST_CHECK;
/* Verifies a JWT zt issued for audience. Free *out with zt_jwt_free. */
int srv_jwt_check(srv *s, const char *tok, size_t len, const char *audience, zt_jwt *out,
		  zt_err *e) ZT_MUST_CHECK;
/* GET /.well-known/openid-configuration and /.well-known/jwks.json: 1 when q was one. */
int srv_issuer_public(srv *s, const zt_http_req *q, zt_http_resp *r);

/* ---- users.c: users, groups, login ---- */

int srv_user_name_ok(const char *name);
/* The groups of an enabled user (a new reference), NULL if none such. */
json_t *srv_user_groups(srv *s, const char *name);
/*
 * 1 and *groups (a new reference) for an enabled user; 0 when there is no
 * user of that name in the directory (a principal "user:NAME" that only
 * API tokens and role bindings name); -1 when the user is disabled.
 */
int srv_user_state(srv *s, const char *name, json_t **groups);
/* The session generation ("uid:gen") a user's login tokens carry as "ztv". */
int srv_user_session(const json_t *body, char *out, size_t cap);
void srv_users(srv *s, const zt_http_req *q, zt_http_resp *r, const char *principal, char seg[][64],
	       int nseg);
void srv_groups(srv *s, const zt_http_req *q, zt_http_resp *r, const char *principal, char seg[][64],
		int nseg);
/* POST /v1/login (unauthenticated) */
void srv_login(srv *s, const zt_http_req *q, zt_http_resp *r);
/* POST /v1/logout: revokes the login token (jti) until exp. */
void srv_logout(srv *s, const zt_http_req *q, zt_http_resp *r, const char *principal, const char *jti,
		int64_t exp);

#endif
