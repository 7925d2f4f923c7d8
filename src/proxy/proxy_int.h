/* proxy/proxy_int.h: shared by the proxy's files; not part of its API. */
#ifndef ZT_PROXY_INT_H
#define ZT_PROXY_INT_H

#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "crypto/crypto.h"
#include "identity/identity.h"
#include "net/http1.h"
#include "net/net.h"
#include "policy/policy.h"
#include "proxy.h"

#define PX_MAX_LISTENERS 64
#define PX_MAX_EXPECT 16

#define PX_MAX_TARGETS 64

/*
 * One address a listener sends to. Its counters are shared by every worker
 * (balance.c): requests in flight, connect failures in a row, and until
 * when it is ejected (monotonic milliseconds; 0: in service).
 */
struct px_target {
	struct sockaddr_storage addr;
	socklen_t len;
	char text[128];
	_Atomic long outstanding;
	_Atomic int failures;
	_Atomic uint64_t ejected_until;
	_Atomic int hc_down;     /* failed its active health checks (health.c) */
	int hc_fails, hc_passes; /* in a row; the main thread's */
};

struct px_health; /* health.c */

enum px_balance { PX_ROUND_ROBIN, PX_LEAST_REQUEST };

/* ratelimit.c: token buckets per key, shared by the workers */
struct px_ratelimit;
struct px_ratelimit *px_rl_new(uint64_t per_second, uint64_t burst);
void px_rl_free(struct px_ratelimit *rl);
/* Takes a token for key: 1, or 0 with *retry_ms until the next one. */
int px_rl_take(struct px_ratelimit *rl, const char *key, size_t keylen, uint64_t now_ms,
	       uint64_t *retry_ms);

#define PX_MAX_RATE_LIMITS 16

/* One entry of a listener's rateLimits. */
struct px_rate_rule {
	enum { PX_RL_SOURCE, PX_RL_IP, PX_RL_LISTENER } key;
	char prefix[256]; /* requests whose normalized path starts with it; "" all */
	size_t prefix_len;
	struct px_ratelimit *rl;
};

struct px_listener {
	char name[64];
	int inbound;
	int http; /* protocol: http (each request decided), else tcp */
	int edge; /* mode: edge: server TLS for clients without SVIDs (inbound is set too) */
	char edge_cert[PATH_MAX], edge_key[PATH_MAX];
	struct sockaddr_storage listen;
	socklen_t listen_len;
	int port;
	/* where it sends: forward (inbound, one) or upstreams (outbound) */
	struct px_target *targets;
	size_t ntargets;
	enum px_balance balance;
	_Atomic size_t rr;       /* round robin's next turn */
	int eject_after;         /* connect failures in a row that eject a target */
	int64_t eject_ms;        /* for how long */
	long max_requests;       /* in flight per target (http); 0: no limit */
	struct px_rate_rule *rates; /* rateLimits (http) */
	size_t nrates;
	struct px_hc_config {     /* healthCheck (http); path "" when off */
		char path[256];
		int64_t interval_ms, timeout_ms;
		int unhealthy_after, healthy_after;
	} hc;
	struct px_health *health;
	char upstream_text[128];              /* forward or the first upstream, as configured */
	char service[2049];                   /* inbound: destination for policy */
	zt_spiffe_id *expect;                 /* outbound: who may answer (nexpect) */
	size_t nexpect;
	zt_proxy *px;
	struct px_stats *stats;
};

#define PX_MAX_REASONS 32

/* Why an end-user token was refused (authn.c); the metric's reason label. */
enum px_jwt_reason {
	PX_JWT_MALFORMED,     /* not a compact JWS, bad JSON, bad claims */
	PX_JWT_MULTIPLE,      /* more than one token in the request */
	PX_JWT_ISSUER,        /* no jwtRule for its issuer (at that location) */
	PX_JWT_NO_KEYS,       /* its key set is not fetched, or too old */
	PX_JWT_UNKNOWN_KID,   /* its kid is not in the key set */
	PX_JWT_ALGORITHM,     /* alg none, or one its key does not allow */
	PX_JWT_SIGNATURE,
	PX_JWT_EXPIRED,
	PX_JWT_NOT_YET_VALID, /* nbf or iat in the future */
	PX_JWT_AUDIENCE,
	PX_JWT_TOO_MANY_RULES,
	PX_JWT_NREASONS
};

/* request duration histogram bounds, milliseconds (http.c, proxy.c) */
#define PX_LAT_BUCKETS 14
static const uint64_t px_lat_bounds_ms[PX_LAT_BUCKETS] = { 1,   2,   5,    10,   25,   50,    100,
							   250, 500, 1000, 2500, 5000, 10000, 30000 };

/*
 * Counters of one listener, for /metrics. Every worker thread adds to them
 * (relaxed atomics: they are tallies, not synchronisation); the failure
 * table is rare and behind zt_proxy.mu.
 */
struct px_stats {
	_Atomic uint64_t accepted, active, refused_cap, refused_identity;
	_Atomic uint64_t allowed, denied, bytes_in, bytes_out;
	struct {
		char reason[48];
		uint64_t n;
	} failures[PX_MAX_REASONS]; /* handshakes that failed, by reason */
	size_t nfailures;
	/* protocol: http: requests by status class (0: none sent) and decision
	 * (0 none: refused before the policy, or not asked (outbound); 1 deny;
	 * 2 allow), and their durations */
	_Atomic uint64_t http_requests[6][3];
	_Atomic uint64_t http_latency[PX_LAT_BUCKETS + 1]; /* the last: above every bound */
	_Atomic uint64_t http_latency_ms_sum;
	_Atomic uint64_t http_rate_limited;
	/* end-user tokens: verified, and refused by reason */
	_Atomic uint64_t jwt_valid, jwt_refused[PX_JWT_NREASONS];
};

static inline void px_count(_Atomic uint64_t *c, uint64_t n)
{
	atomic_fetch_add_explicit(c, n, memory_order_relaxed);
}

struct px_config {
	char td[256];
	char cert[PATH_MAX], key[PATH_MAX], bundle[PATH_MAX], policy[PATH_MAX];
	char policy_server[512];      /* spec.policy.server: watched instead of files */
	char policy_cache[PATH_MAX];  /* spec.policy.cache: the server's last answer */
	char agent_socket[108];       /* spec.identity.agent: SVIDs from the node agent */
	char agent_id[2049];          /* spec.identity.id: which one, when several match */
	size_t max_conns, max_per_id, buffer_bytes;
	int has_admin;
	int allow_tls12; /* spec.tls.minVersion "1.2" */
	int resumption;  /* spec.tls.resumption (default on) */
	struct sockaddr_storage admin;
	socklen_t admin_len;
	int64_t handshake_timeout, connect_timeout, idle_timeout, drain_timeout; /* seconds */
	size_t workers; /* event-loop threads, each accepting on its own sockets */
	struct px_http_config {
		size_t max_head, max_fields;
		uint64_t max_body;
		int64_t header_timeout, body_timeout, response_timeout; /* seconds */
	} http;
	struct px_jwt_config {  /* spec.jwt: fetching keys for end-user tokens */
		char ca_file[PATH_MAX]; /* "" : the system's anchors */
		int64_t refresh, refetch, max_stale, fetch_timeout; /* seconds */
	} jwt;
	/*
	 * Allocated to the count configured: at the maximum sizes inline, the
	 * listeners and their expected IDs came to 2.3 MB, all of it resident
	 * once the config was cleared, a quarter of the idle proxy.
	 */
	struct px_listener *listeners;
	size_t nlisteners;
};

#define PX_MAX_WORKERS 64

/* The SVID, key and bundle in force, and the TLS contexts made from them. */
struct px_state {
	_Atomic long refs; /* the snapshots that hold it */
	zt_bundle_set *bundles;
	X509 *cert;
	STACK_OF(X509) *chain;
	EVP_PKEY *key;
	char own_id[2049];
	SSL_CTX *tls[PX_MAX_LISTENERS];
	/* what each context's peer check needs: these bundles, that listener */
	struct px_vctx {
		const struct px_state *st;
		const struct px_listener *l;
	} vctx[PX_MAX_LISTENERS];
};

/*
 * What decides a connection, published whole: identity state and policy.
 * Immutable once published; a connection holds a reference from accept to
 * close, so a reload never changes what an open connection runs on.
 */
struct px_snap {
	_Atomic long refs;
	struct px_state *st;
	zt_policy_snapshot *policy; /* NULL without spec.policy */
};

struct conn;

/* One event-loop thread: its listening sockets (SO_REUSEPORT) and its connections. */
struct px_worker {
	zt_proxy *px;
	size_t idx;
	pthread_t tid;
	int started;
	zt_loop *loop;
	int lfd[PX_MAX_LISTENERS];
	struct px_acceptor {
		struct px_worker *w;
		struct px_listener *l;
	} acc[PX_MAX_LISTENERS]; /* px_on_accept's argument */
	struct conn *conns;
	size_t nconns;
	struct px_idle *idle; /* idle upstream connections (pool.c) */
	size_t nidle;
	int listening;
	_Atomic int done; /* its loop has returned */
};

/* Open connections per verified peer identity, across workers. */
#define ID_BUCKETS 1024

struct id_count {
	struct id_count *next;
	size_t n;
	char id[];
};

struct zt_proxy {
	struct px_config cfg;
	char config_path[PATH_MAX];
	zt_loop *loop; /* the main thread's: signals, file watch, admin */
	pthread_mutex_t mu; /* snap, ids, stats failure tables */
	struct px_snap *snap;
	uint64_t id_sig, policy_sig; /* what the watched files looked like */
	zt_timer watch;
	zt_timer drain; /* after SIGTERM: the deadline for open connections */
	_Atomic size_t nconns; /* all workers */
	_Atomic int stopping; /* 1: draining; 2: close everything now */
	struct px_stats stats[PX_MAX_LISTENERS];
	struct id_count *ids[ID_BUCKETS];
	struct px_worker workers[PX_MAX_WORKERS];
	int admin_fd;
	/* policy from the control plane (watch.c) */
	pthread_mutex_t install_mu;  /* one snapshot change at a time: reloads and the watch */
	_Atomic unsigned id_gen;     /* bumped by every new SVID or bundle */
	pthread_t watch_tid;
	int watch_started, watch_cancel;
	_Atomic uint64_t policy_revision, policy_updates, policy_refused, policy_errors;
	_Atomic int policy_connected;
	/* the SVID from the node agent (agentid.c) */
	char agent_dir[PATH_MAX];    /* private folder for its files, "" without an agent */
	pthread_t agent_tid;
	int agent_started, agent_cancel;
	uint64_t agent_gen;
	/* the identity providers' keys for end-user tokens (jwks.c) */
	struct px_jwks *jwks;
};

/* proxy.c: the snapshot in force, with a reference the caller drops */
struct px_snap *px_snap_get(zt_proxy *px);
void px_snap_put(struct px_snap *s);
/* proxy.c: puts pol (consumed) in force with the identity in force; 0 or -1 */
int px_policy_install(zt_proxy *px, zt_policy_snapshot *pol);

/* ---- policy from the control plane (watch.c) ---- */

/* Compiles the server's watch answer ({"documents": [...]}). */
zt_policy_snapshot *px_policy_from_answer(const json_t *answer, const char *origin, zt_err *e);
/* The last answer kept in spec.policy.cache, compiled; its revision in *revision. */
zt_policy_snapshot *px_policy_cache_load(const char *path, uint64_t *revision, zt_err *e);
int px_watch_start(zt_proxy *px, zt_err *e);
void px_watch_stop(zt_proxy *px);

/* ---- the SVID from the node agent (agentid.c) ---- */

/* A private folder and the first SVID in it (waiting for the agent); sets cfg cert, key, bundle. */
int px_agentid_init(zt_proxy *px, zt_err *e) ZT_MUST_CHECK;
/* Rotations: rewrites the files, which the file watch reloads. */
int px_agentid_start(zt_proxy *px, zt_err *e) ZT_MUST_CHECK;
void px_agentid_stop(zt_proxy *px);

/* ---- end-user tokens: key sets (jwks.c) and the request path (authn.c) ---- */

/*
 * A fetched JWK Set, shared by the requests verifying with it: take it with
 * px_jwks_get, let go with px_keyset_put. Immutable once published.
 */
struct px_keyset {
	_Atomic long refs;
	zt_jwks keys;
	uint64_t fetched_ms; /* monotonic milliseconds of the fetch */
};

struct px_jwks;

/* The cache, with spec.jwt's settings; no thread yet. NULL on error. */
struct px_jwks *px_jwks_new(const struct px_jwt_config *cfg, zt_err *e);
/* Stops the thread (if started) and frees everything. */
void px_jwks_free(struct px_jwks *j);
/*
 * Makes the cache hold exactly the key sets the fetched-keys jwtRules of
 * pol name for the given destination services: new ones are fetched at
 * once (by the thread), ones no longer named are dropped. Called before a
 * snapshot is published.
 */
void px_jwks_sync(struct px_jwks *j, const zt_policy_snapshot *pol, const char *const *services,
		  size_t nservices);
/* Starts the fetching thread and waits up to wait_ms for every key set to
 * have been tried once (a provider that is down does not stop the start). */
int px_jwks_start(struct px_jwks *j, uint64_t wait_ms, zt_err *e) ZT_MUST_CHECK;
/*
 * A reference to the key set of source ("uri:URL" or "oidc:ISSUER"), or
 * NULL with *why set: not fetched yet, or nothing good for longer than
 * maxStale. Never blocks on the network; safe on any thread.
 */
struct px_keyset *px_jwks_get(struct px_jwks *j, const char *source, const char **why);
void px_keyset_put(struct px_keyset *k);
/* A token named a kid the set does not have: fetch it again soon, at most
 * once per unknownKidRefetch. Never blocks on the network. */
void px_jwks_unknown_kid(struct px_jwks *j, const char *source);
/* /metrics lines for the key sets */
int px_jwks_metrics(struct px_jwks *j, zt_buf *out, zt_err *e) ZT_MUST_CHECK;

/*
 * One request's end-user authentication (authn.c), on the worker's stack
 * for the time take_request runs: the token found, and once verified its
 * claims for the policy and the headers it adds.
 */
struct px_authn {
	const zt_jwt_rule *rules[ZT_POLICY_MAX_JWT_RULES]; /* that apply to the destination */
	size_t nrules;
	int where;                  /* the token: 0 none, 1 a header field, 2 a query parameter */
	size_t field;               /* header: its index in the request's fields */
	const char *pair;           /* parameter: "name=value" in the target */
	size_t pair_len;
	const char *token;          /* the token itself (in the request's buffer) */
	size_t token_len;
	const zt_jwt_rule *rule;    /* the rule that verified it */
	zt_jwt jwt;                 /* verified: claims */
	int verified;
	char *principal;            /* "iss/sub" (heap), NULL without sub */
	zt_str *auds;               /* heap */
	size_t nauds;
	enum px_jwt_reason reason;  /* refused: why, for metrics */
	char why[256];              /* refused: why, for the log */
	zt_buf scratch;             /* claim header values */
};

/*
 * Finds and verifies the request's token against the jwtRules that apply
 * to the listener's destination. 0: go on to the policy (a verified token,
 * or none at all: no request principal); -1: refuse with 401 (a->why says
 * why; logged and counted here). a must be zeroed first and released with
 * px_authn_free whatever the result. target is the normalized "path?query".
 */
int px_authn_check(struct conn *c, const zt_http1_request *rq, const char *target,
		   size_t path_len, struct px_authn *a);
/* What the policy sees of a verified token. */
void px_authn_request(const struct px_authn *a, zt_policy_request *req);
/*
 * The request as it goes on: fields without the token (unless
 * forwardOriginalToken) and without any client copy of an output header,
 * the output headers added (extra), the token parameter left out of the
 * target. fields/extra have room for ZT_HTTP1_MAX_FIELDS and max_extra;
 * target (cap bytes) is rewritten in place. 0 or -1.
 */
int px_authn_rewrite(struct px_authn *a, const zt_http1_request *rq, zt_http1_field *fields,
		     size_t *nfields, zt_http1_field *extra, size_t *nextra, size_t max_extra,
		     char *target, size_t *target_len, size_t cap, zt_err *e);
/* The target for the log: the value of every query parameter a rule reads
 * tokens from replaced by "REDACTED". */
void px_authn_log_target(const struct px_authn *a, const char *target, size_t len, char *out,
			 size_t outsz);
void px_authn_free(struct px_authn *a);

/* proxy.c: a worker's connections are gone: it may be time to stop */
void px_worker_idle(struct px_worker *w);

/* ---- one connection (conn.c; http.c adds the HTTP layer on top) ---- */

enum px_conn_state { ST_HANDSHAKE, ST_CONNECTING, ST_PIPING, ST_HTTP };

struct buf {
	uint8_t *p;
	size_t off, len;
};

struct side {
	int fd;
	SSL *ssl;
	int eof;            /* nothing more will be read */
	int shut;           /* we closed our direction towards it */
	int rd_wants_write; /* SSL_read needs the socket writable */
	int wr_wants_read;  /* SSL_write needs the socket readable */
	int unclean;        /* TLS peer closed without close_notify */
	int readable;       /* may have bytes: cleared when a read would block */
	int writable;       /* may take bytes: cleared when a write would block */
	int refuse;         /* closed without a close_notify: the peer was refused */
	unsigned interest;
};

#define WOULD_BLOCK (-2)

struct px_http; /* http.c */

struct conn {
	zt_proxy *px;
	struct px_worker *w;
	struct px_snap *snap; /* what it was accepted under, held until it closes */
	struct px_listener *ls;
	struct side c, u; /* c: the accepted connection; u: the upstream */
	struct buf c2u, u2c;
	enum px_conn_state state;
	zt_timer timer;
	char peer[2049];
	char peer_hash[65]; /* hex SHA-256 of the peer's leaf (inbound), for XFCC */
	char src[64];
	/* copies: the snapshot they came from may be replaced while we run */
	char policy[512];
	char reason[160]; /* the policy engine's, when it denied */
	int allowed;
	uint64_t start_ms, bytes_c2u, bytes_u2c;
	int counted; /* holds a place in its identity's count */
	int target;  /* index of the upstream target in use, -1 none */
	int resumed; /* 1: the last TLS handshake resumed a session; 2: the upstream
		      * connection came from the pool (no handshake) */
	struct px_http *http; /* protocol: http, from the first request */
	struct conn *prev, *next; /* the worker's open connections, for the end */
};

/* conn.c: pieces of the data path the HTTP layer shares */
void px_conn_close(struct conn *c, const char *why);
void px_set_timer_ms(struct conn *c, uint64_t ms);
void px_set_interest(struct conn *c, struct side *s, unsigned want);
void px_side_close(zt_loop *l, struct side *s);
/* bytes read into p (room > 0), 0 at the end of the stream, WOULD_BLOCK, -1 error */
ssize_t px_side_recv(struct side *s, uint8_t *p, size_t room);
/* bytes written from p (len > 0), WOULD_BLOCK, -1 error */
ssize_t px_side_send(struct side *s, const uint8_t *p, size_t len);
/* opens a socket to target t of c's listener and watches it for the connect */
int px_upstream_open(struct conn *c, int t);
/* the upstream socket's connect finished: 0, or -1 with it refused */
int px_upstream_connected(struct conn *c);
/* hands c's upstream socket (just taken from the pool) to c's handler */
int px_upstream_rebind(struct conn *c);

/* pool.c: a worker's idle upstream connections (HTTP) */
struct px_idle;
/* Gives c's upstream connection to its worker's pool: 0 (c->u is then
 * empty), or -1 when it cannot be pooled (the caller closes it). */
int px_pool_put(struct conn *c);
/* Takes an idle connection to target t of c's listener, made under c's
 * snapshot, into c->u: 0, or -1 when there is none. */
int px_pool_take(struct conn *c, int t);
void px_pool_close_all(struct px_worker *w);
/* http.c: 1 when an HTTP connection is between exchanges (a drain may close it). */
int px_http_idle(const struct conn *c);

/* balance.c: choosing a target, and what its connections teach */
/* The target for a new upstream connection, skipping `avoid` (-1: none)
 * when another will do; -1 when every target is at max_requests. */
int px_pick_target(struct px_listener *l, int avoid, uint64_t now_ms);
void px_target_failed(struct px_listener *l, int t, uint64_t now_ms);
void px_target_ok(struct px_listener *l, int t);
/* Takes a place in flight on target t: 0, or -1 when it is at max_requests.
 * Every place taken is given back with px_target_release. */
int px_target_reserve(struct px_listener *l, int t);
void px_target_release(struct px_listener *l, int t);

/* health.c: active checks on the main thread's loop */
int px_health_start(zt_proxy *px, zt_loop *loop, zt_err *e);
void px_health_stop(zt_proxy *px);

/* http.c */
void px_http_step(struct conn *c);
void px_http_timeout(struct conn *c);
void px_http_free(struct conn *c);

/* conn.c: the data path */
void px_on_accept(zt_loop *loop, int lfd, unsigned events, void *arg);
int px_verify_inbound(void *arg, STACK_OF(X509) *chain, zt_peer_info *out, zt_err *e);
int px_verify_outbound(void *arg, STACK_OF(X509) *chain, zt_peer_info *out, zt_err *e);
/* closes every connection of the worker, logging why */
void px_close_all(struct px_worker *w, const char *why);

/*
 * Fills *c from the file; on success the caller frees with px_config_free,
 * on error *c holds nothing to free.
 */
int px_config_load(struct px_config *c, const char *path, zt_err *e);
/* The same from parsed documents (an array with one ProxyConfig). */
int px_config_from_docs(struct px_config *c, json_t *docs, zt_err *e);
void px_config_free(struct px_config *c);

/* admin.c: the /metrics and /ready listener, when configured */
int px_admin_open(zt_proxy *px, zt_loop *l, const struct px_config *cfg, int *fdp, zt_err *e);
/* proxy.c: what the admin listener reports */
int px_ready(zt_proxy *px);
int px_metrics(zt_proxy *px, zt_buf *out, zt_err *e);

#endif
