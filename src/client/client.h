/*
 * client: how zt's commands and daemons talk to the control plane's API.
 *
 * A client knows where the server is, how to trust it and who we are:
 *  - the server is trusted by its SVID alone: its chain must verify against
 *    the trust bundle we were given (a CA file, PEM or SPIFFE JSON) and its
 *    ID must be spiffe://<trust domain>/zt/server. Host names are never
 *    used, so an address that is not "localhost" works the same.
 *  - we present a bearer token (people, automation) or an SVID (proxies,
 *    agents), or both.
 * Settings come from flags first, then the environment (ZT_SERVER,
 * ZT_TOKEN, ZT_CA_FILE, ZT_CERT, ZT_KEY), then a config file ($ZT_CONFIG,
 * else ~/.config/zt/config.yaml when it exists), the way kubectl and vault
 * look for theirs.
 *
 * It also speaks the agent's Workload API (below), for the proxy and
 * zt svid fetch.
 *
 * Depends on core, crypto, identity, net.
 */
#ifndef ZT_CLIENT_H
#define ZT_CLIENT_H

#include <limits.h>

#include <jansson.h>

#include "core/core.h"
#include "crypto/crypto.h"

#define ZT_API_TOKEN_MAX 8192

typedef struct zt_api_config {
	char server[512];         /* https://HOST:PORT */
	char token[ZT_API_TOKEN_MAX]; /* bearer token (a zt token or a login JWT), "" for none */
	char ca_file[PATH_MAX];   /* the trust bundle that vouches for the server */
	char cert[PATH_MAX];      /* our SVID chain (PEM), "" for none */
	char key[PATH_MAX];       /* its key */
	char config_file[PATH_MAX]; /* where the file settings came from, "" if none */
} zt_api_config;

/*
 * Fills the fields still empty from the environment, then from the config
 * file (a YAML or JSON mapping with keys server, token, caFile, cert,
 * key). A config file that exists but cannot be read or has unknown keys
 * is an error; one holding a token must not be readable by others. Checks
 * that a server and a CA file are known in the end.
 */
int zt_api_config_resolve(zt_api_config *c, zt_err *e) ZT_MUST_CHECK;

/*
 * Writes the config file ($ZT_CONFIG, else ~/.config/zt/config.yaml, mode
 * 0600): the token set (NULL: removed), server and caFile set when given
 * (a token goes with the server that issued it), other settings kept. The
 * path written is copied out.
 */
int zt_api_config_save(const char *server, const char *ca_file, const char *token, char *path,
		       size_t cap, zt_err *e) ZT_MUST_CHECK;

typedef struct zt_api zt_api;

/* Loads the bundle and our SVID (if any); nothing is connected yet. Caller frees. */
zt_api *zt_api_new(const zt_api_config *c, zt_err *e);
void zt_api_free(zt_api *a);

/* The trust domain of the bundle, the server's. */
const char *zt_api_td(const zt_api *a);

typedef struct zt_api_resp {
	int status;
	json_t *json;        /* the body parsed as JSON, or NULL (not JSON) */
	zt_buf body;         /* the body as it came */
	char request_id[129];
} zt_api_resp;

/*
 * One request: `path` is "/v1/..." (with its query), `body` JSON or NULL,
 * `if_match` a version for optimistic concurrency or NULL; timeout_ms -1
 * for none. 0 with *r filled for any HTTP status; negative when the server
 * could not be reached or trusted (*e says which).
 */
int zt_api_call(zt_api *a, const char *method, const char *path, const json_t *body,
		const char *if_match, int timeout_ms, zt_api_resp *r, zt_err *e) ZT_MUST_CHECK;

/* As zt_api_call with a raw body of the given content type. */
int zt_api_call_raw(zt_api *a, const char *method, const char *path, const void *body,
		    size_t len, const char *content_type, int timeout_ms, zt_api_resp *r,
		    zt_err *e) ZT_MUST_CHECK;

void zt_api_resp_free(zt_api_resp *r);

/* The error message of an error response ({"error": {"message"}}), or the body's start. */
const char *zt_api_resp_message(const zt_api_resp *r);

/* Makes calls watch fd and fail at once when it turns readable (zt_httpc_set_cancel). */
void zt_api_set_cancel(zt_api *a, int fd);

/* Drops the connection (the next call opens a new one). */
void zt_api_disconnect(zt_api *a);

/* Percent-encodes s for a path segment or query value into out; -1 if it does not fit. */
int zt_api_escape(const char *s, char *out, size_t cap);

/* ---- the agent's Workload API (docs/workload-api.md), over its Unix socket ---- */

typedef struct zt_wl_svid {
	char id[2049];
	char *chain;          /* PEM: the SVID, then its signing CA */
	char *key;            /* PEM (PKCS#8): a secret, wiped when freed */
	char not_after[40];
} zt_wl_svid;

typedef struct zt_wl_answer {
	int status;           /* the HTTP status: 200, or 403 (no entry), 503 (not yet)... */
	char message[600];    /* the agent's error message when not 200 */
	zt_wl_svid *svids;
	size_t n;
	char *bundle;         /* PEM */
	uint64_t generation;
} zt_wl_answer;

/*
 * GET /v1/svids from the agent at socket_path ("/run/zt/agent.sock"); with
 * since > 0, waits (up to timeout_s) for the generation to pass it. 0 with
 * *a filled for any HTTP status; negative when the agent cannot be reached
 * or answers nonsense. cancel_fd (-1 for none) aborts a wait.
 */
int zt_workload_fetch(const char *socket_path, uint64_t since, int timeout_s, int cancel_fd,
		      zt_wl_answer *a, zt_err *e) ZT_MUST_CHECK;
void zt_wl_answer_free(zt_wl_answer *a);

/*
 * GET target ("/v1/jwtsvids?audience=..." or "/v1/jwtbundle") from the
 * agent's Workload API: *status and the JSON answer (caller decrefs) for
 * any status; negative when the agent cannot be reached or answers
 * something that is not JSON.
 */
int zt_workload_get(const char *socket_path, const char *target, int *status, json_t **out,
		    zt_err *e) ZT_MUST_CHECK;

/*
 * Writes dir/svid.key, dir/svid.pem and dir/bundle.pem (mode 0600), each
 * beside its place first and renamed in, the key first.
 */
int zt_workload_write(const char *dir, const zt_wl_svid *s, const char *bundle,
		      zt_err *e) ZT_MUST_CHECK;

/* ---- identity providers (oidc.c) ---- */

/*
 * OpenID Connect Discovery 1.0: reads issuer's
 * /.well-known/openid-configuration, checks that it names exactly that
 * issuer (4.3) and copies its jwks_uri out. https:// is checked against
 * ca_file's anchors (NULL: the system's) and the host name; http:// only
 * to loopback.
 */
int zt_oidc_discover(const char *issuer, const char *ca_file, int timeout_ms, int cancel_fd,
		     char *jwks_uri, size_t cap, zt_err *e) ZT_MUST_CHECK;

/*
 * GETs a JWK Set and parses it (zt_jwks_from_json with flags) into *out
 * (freed on error). Both calls fail at once (rule "cancelled") when
 * cancel_fd (-1 for none) turns readable, so a daemon's stop never waits
 * for a slow identity provider.
 */
int zt_jwks_fetch(const char *url, const char *ca_file, int timeout_ms, int cancel_fd, int flags,
		  zt_jwks *out, zt_err *e) ZT_MUST_CHECK;

#endif
