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
	SSL_CTX *tls;
	zt_proxy *px;
};

struct px_config {
	char td[256];
	char cert[PATH_MAX], key[PATH_MAX], bundle[PATH_MAX], policy[PATH_MAX];
	size_t max_conns, buffer_bytes;
	int64_t handshake_timeout, connect_timeout, idle_timeout; /* seconds */
	struct px_listener listeners[PX_MAX_LISTENERS];
	size_t nlisteners;
};

int px_config_load(struct px_config *c, const char *path, zt_err *e);
/* The same from parsed documents (an array with one ProxyConfig). */
int px_config_from_docs(struct px_config *c, json_t *docs, zt_err *e);
int px_parse_addr(const char *s, struct sockaddr_storage *ss, socklen_t *len, zt_err *e);

#endif
