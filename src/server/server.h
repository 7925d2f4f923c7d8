/*
 * server: zt's control plane, `zt server`. It wires the store, the CA, the
 * audit log and the API server together: everything it does is in those
 * modules; this folder decides who may do what (authz.c), what the API
 * looks like (api.c) and how the daemon starts and stops (server.c).
 * docs/api.md is the API's reference.
 */
#ifndef ZT_SERVER_H
#define ZT_SERVER_H

#include "core/core.h"

typedef struct zt_server_config {
	const char *dir;          /* state: ca/, audit/, store.db, server key and certificate */
	const char *listen;       /* "127.0.0.1:8443" */
	const char *trust_domain; /* for a new state directory: "zt.local" unless set */
	int dev;                  /* --dev: a temporary directory and a demo organization */
	const char *ready_file;   /* if set, "URL\nTOKEN\n" is written here once serving */
	int64_t signing_ttl;      /* for a new state directory: the signing CA's life (0: 7 days) */
	const char *issuer;       /* "iss" of the tokens zt signs (NULL: https://localhost:PORT) */
	int64_t token_key_period; /* how long a token signing key signs (0: 7 days) */
} zt_server_config;

/*
 * Runs the server until SIGTERM or SIGINT, then drains. A new state
 * directory is set up first (CA, audit log, store, server certificate, a
 * bootstrap admin token printed once). Returns 0, or an error in *e.
 */
int zt_server_run(const zt_server_config *c, zt_err *e) ZT_MUST_CHECK;

#endif
