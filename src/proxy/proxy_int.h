/* proxy/proxy_int.h: shared by the proxy's files; not part of its API. */
#ifndef ZT_PROXY_INT_H
#define ZT_PROXY_INT_H

#include <limits.h>
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
	zt_spiffe_id expect[PX_MAX_EXPECT];   /* outbound: who may answer */
	size_t nexpect;
	int fd;
	zt_proxy *px;
	struct px_stats *stats;
};

#define PX_MAX_REASONS 32

/* Counters of one listener, for /metrics. */
struct px_stats {
	uint64_t accepted, active, refused_cap, refused_identity;
	uint64_t allowed, denied, bytes_in, bytes_out;
	struct {
		char reason[48];
		uint64_t n;
	} failures[PX_MAX_REASONS]; /* handshakes that failed, by reason */
	size_t nfailures;
};

struct px_config {
	char td[256];
	char cert[PATH_MAX], key[PATH_MAX], bundle[PATH_MAX], policy[PATH_MAX];
	size_t max_conns, max_per_id, buffer_bytes;
	int has_admin;
	int allow_tls12; /* spec.tls.minVersion "1.2" */
	struct sockaddr_storage admin;
	socklen_t admin_len;
	int64_t handshake_timeout, connect_timeout, idle_timeout, drain_timeout; /* seconds */
	struct px_listener listeners[PX_MAX_LISTENERS];
	size_t nlisteners;
};

int px_config_load(struct px_config *c, const char *path, zt_err *e);
/* The same from parsed documents (an array with one ProxyConfig). */
int px_config_from_docs(struct px_config *c, json_t *docs, zt_err *e);
int px_parse_addr(const char *s, struct sockaddr_storage *ss, socklen_t *len, zt_err *e);

/* admin.c: the /metrics and /ready listener, when configured */
int px_admin_open(zt_proxy *px, zt_loop *l, const struct px_config *cfg, int *fdp, zt_err *e);
/* proxy.c: what the admin listener reports */
int px_ready(const zt_proxy *px);
int px_metrics(const zt_proxy *px, zt_buf *out, zt_err *e);

#endif
