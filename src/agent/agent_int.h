/* agent_int.h: the agent's parts, shared by its files. */
#ifndef ZT_AGENT_INT_H
#define ZT_AGENT_INT_H

#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/types.h>

#include <jansson.h>

#include "agent/agent.h"
#include "client/client.h"
#include "net/httpd.h"

/* ---- config.c ---- */

struct ag_config {
	char server[512];          /* https://HOST:PORT */
	char trust_bundle[PATH_MAX]; /* trusts the server before the agent has its own bundle */
	char join_token[128];      /* from joinToken or joinTokenFile; "" when not given */
	char data_dir[PATH_MAX];   /* agent.key, agent.pem, bundle.pem */
	char socket[108];          /* the Workload API */
	char admin[128];           /* "host:port" for /metrics and /ready, "" for none */
};

int ag_config_load(struct ag_config *c, const char *path, zt_err *e) ZT_MUST_CHECK;
int ag_config_from_docs(struct ag_config *c, json_t *docs, zt_err *e) ZT_MUST_CHECK;

/* ---- attest.c: what the kernel and /proc say about a caller ---- */

struct ag_facts {
	pid_t pid;
	unsigned uid, gid;
	char exe[PATH_MAX];  /* its executable's path, "" if unknown */
	char sha256[65];     /* the executable's digest (hex), "" if unreadable */
	char cgroup[4096];   /* cgroup v2 path ("0::" line), "" if none */
	uint64_t start;      /* its start time (/proc/PID/stat field 22): guards PID reuse */
};

/*
 * Reads the facts of pid, which connected as uid/gid (SO_PEERCRED), and
 * checks afterwards that pid is still the same process (same start time,
 * still alive): a PID reused between the connect and the look is refused.
 * proc is "/proc" (tests may point elsewhere).
 */
int ag_facts_of(const char *proc, pid_t pid, unsigned uid, unsigned gid, struct ag_facts *f,
		zt_err *e) ZT_MUST_CHECK;

/* 1 when every selector matches the facts (an empty list never matches). */
int ag_selectors_match(const struct ag_facts *f, json_t *selectors);

/* ---- agent.c: the state ---- */

struct ag_svid {
	char entry[33];     /* the entry it was issued for */
	char id[2049];
	char *chain_pem, *key_pem;
	int64_t not_before, not_after;
};

struct ag {
	struct ag_config cfg;
	char td[256];
	char node[256];
	char self_id[2049];

	pthread_mutex_t mu;       /* everything below */
	pthread_cond_t changed;   /* gen moved (an SVID issued or renewed, entries changed) */
	uint64_t gen;
	json_t *entries;          /* the node's entries, as the server sent them */
	uint64_t entries_gen;     /* moves when they change: wakes the manage thread */
	uint64_t entries_rev;
	struct ag_svid *svids;
	size_t nsvids;
	char *bundle_pem;
	zt_api *api;              /* to the server, with the agent's SVID */
	int64_t self_not_before, self_not_after;
	int server_ok;            /* the last call to the server worked */
	uint64_t issued, renew_failures, sync_failures;

	struct ag_jwt {           /* JWT-SVIDs (jwt.c); its own lock and server connection */
		pthread_mutex_t mu;
		zt_api *api;
		int64_t api_gen;      /* the self_not_after it was made with */
		struct ag_jwt_svid {
			char *key;        /* "ID\naud1\naud2..." */
			char *token;
			int64_t issued, exp;
		} cache[64];
		unsigned next;
		char *jwks;           /* the server's keys as a JWT bundle */
		int64_t jwks_at;
	} jwt;

	zt_httpd *wapi;
	zt_httpd *admin;
	int stop_fd;              /* an eventfd: stops the threads' waits */
	_Atomic int stopping;
};

/* A client of the server: with the agent's SVID, or none (joining). Caller frees. */
zt_api *ag_client(struct ag *a, int with_svid, zt_err *e);

/* ---- jwt.c: JWT-SVIDs for workloads ---- */

/*
 * A JWT-SVID for id with the audiences auds (a JSON array of strings),
 * from the cache while it has more than half its life left, else from the
 * server. *token is the caller's to free.
 */
int ag_jwt_svid(struct ag *a, const char *id, const json_t *auds, char **token, int64_t *exp,
		zt_err *e) ZT_MUST_CHECK;
/* The trust domain's JWT authorities as a JWK Set ("use": "jwt-svid"), appended to out. */
int ag_jwt_bundle(struct ag *a, zt_buf *out, zt_err *e) ZT_MUST_CHECK;
void ag_jwt_free(struct ag *a);

/* ---- workload.c: the Workload API ---- */

void ag_workload_handle(void *arg, const zt_http_req *q, zt_http_resp *r);
void ag_admin_handle(void *arg, const zt_http_req *q, zt_http_resp *r);

#endif
