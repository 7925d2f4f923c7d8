/* proxy/proxy_int.h: shared by the proxy's files; not part of its API. */
#ifndef ZT_PROXY_INT_H
#define ZT_PROXY_INT_H

#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/socket.h>

#include "identity/identity.h"
#include "net/net.h"
#include "policy/policy.h"
#include "proxy.h"

#define PX_MAX_LISTENERS 64
#define PX_MAX_EXPECT 16

struct px_listener {
	char name[64];
	int inbound;
	struct sockaddr_storage listen, target;
	socklen_t listen_len, target_len;
	int port;
	char upstream_text[128];              /* outbound: as configured, for logs */
	char service[2049];                   /* inbound: destination for policy */
	zt_spiffe_id *expect;                 /* outbound: who may answer (nexpect) */
	size_t nexpect;
	zt_proxy *px;
	struct px_stats *stats;
};

#define PX_MAX_REASONS 32

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
};

static inline void px_count(_Atomic uint64_t *c, uint64_t n)
{
	atomic_fetch_add_explicit(c, n, memory_order_relaxed);
}

struct px_config {
	char td[256];
	char cert[PATH_MAX], key[PATH_MAX], bundle[PATH_MAX], policy[PATH_MAX];
	size_t max_conns, max_per_id, buffer_bytes;
	int has_admin;
	int allow_tls12; /* spec.tls.minVersion "1.2" */
	struct sockaddr_storage admin;
	socklen_t admin_len;
	int64_t handshake_timeout, connect_timeout, idle_timeout, drain_timeout; /* seconds */
	size_t workers; /* event-loop threads, each accepting on its own sockets */
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
};

/* proxy.c: the snapshot in force, with a reference the caller drops */
struct px_snap *px_snap_get(zt_proxy *px);
void px_snap_put(struct px_snap *s);
/* proxy.c: a worker's connections are gone: it may be time to stop */
void px_worker_idle(struct px_worker *w);

/* conn.c: the data path */
void px_on_accept(zt_loop *loop, int lfd, unsigned events, void *arg);
int px_verify_inbound(void *arg, STACK_OF(X509) *chain, char *peer, size_t peersz, zt_err *e);
int px_verify_outbound(void *arg, STACK_OF(X509) *chain, char *peer, size_t peersz, zt_err *e);
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
int px_parse_addr(const char *s, struct sockaddr_storage *ss, socklen_t *len, zt_err *e);

/* admin.c: the /metrics and /ready listener, when configured */
int px_admin_open(zt_proxy *px, zt_loop *l, const struct px_config *cfg, int *fdp, zt_err *e);
/* proxy.c: what the admin listener reports */
int px_ready(zt_proxy *px);
int px_metrics(zt_proxy *px, zt_buf *out, zt_err *e);

#endif
