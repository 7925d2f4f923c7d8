/*
 * proxy: `zt proxy`, the sidecar that speaks mutual TLS for a service.
 *
 * An inbound listener terminates mTLS from peers, judges each peer's SVID
 * and asks the policy engine about the connection, then forwards plain TCP
 * to the local service. An outbound listener takes plain TCP from the local
 * service and originates mTLS to an upstream whose SPIFFE ID must be one
 * of those expected (secure naming). The daemon wires modules together:
 * net (loop, TLS), identity (SVIDs, bundles), policy (decisions).
 *
 * Files: proxy.c the daemon (snapshot, reloads, worker threads, signals),
 * conn.c one connection's life on a worker, http.c the HTTP layer, authn.c
 * end-user tokens (RequestAuthentication) on it, jwks.c the identity
 * providers' keys they are verified with, config.c the YAML, admin.c
 * /metrics and /ready. docs/proxy.md is the user's description.
 */
#ifndef ZT_PROXY_H
#define ZT_PROXY_H

#include "core/core.h"

typedef struct zt_proxy zt_proxy;

/* Loads and checks the configuration file (docs/proxy.md); NULL on error. */
zt_proxy *zt_proxy_new(const char *config_path, zt_err *e);
void zt_proxy_free(zt_proxy *p);

/* Opens the listeners and runs until SIGTERM or SIGINT. */
int zt_proxy_run(zt_proxy *p, zt_err *e) ZT_MUST_CHECK;

#endif /* ZT_PROXY_H */
