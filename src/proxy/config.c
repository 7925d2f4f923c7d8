/*
 * proxy/config.c: the proxy's configuration file (docs/proxy.md).
 *
 * apiVersion: zt.dev/v1
 * kind: ProxyConfig
 * spec:
 *   trustDomain: example.org
 *   identity: {cert: svid.pem, key: svid.key, bundle: bundle.pem}
 *             # or from the node agent: {agent: /run/zt/agent.sock, id: spiffe://...}
 *   policy: policies/            # needed by inbound listeners; or, from the control plane:
 *   policy: {server: "https://zt-server:8443", cache: /var/lib/zt/policy.json}
 *   limits: {maxConnections: 10000, maxConnectionsPerIdentity: 1000,
 *            handshakeTimeout: 10s, connectTimeout: 5s, idleTimeout: 1h, drainTimeout: 30s,
 *            bufferBytes: 65536}
 *   admin: {listen: "127.0.0.1:15000"}      # /metrics and /ready; optional
 *   tls: {minVersion: "1.3"}                 # or "1.2"; 1.3 by default
 *   workers: 2                               # event-loop threads, 1 to 64
 *   jwt: {caFile: idp-ca.pem, jwksRefresh: 5m, unknownKidRefetch: 30s,
 *         maxStale: 24h, fetchTimeout: 5s}   # end-user tokens (jwks.c); optional
 *   listeners:
 *     - {name: in, mode: inbound, listen: "127.0.0.1:8443",
 *        forward: "127.0.0.1:8080", service: spiffe://example.org/ns/shop/sa/web}
 *     - {name: out, mode: outbound, listen: "127.0.0.1:9001",
 *        upstream: "127.0.0.1:8443", expect: [spiffe://example.org/ns/shop/sa/db]}
 */
#include "proxy_int.h"
#include "net/httpc.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int only_keys(json_t *obj, const char *const *keys, const char *where, zt_err *e)
{
	return zt_doc_only_keys(obj, keys, where, "docs/proxy.md", e);
}

/* `where` names the mapping in messages ("limits", "http") */
static int get_duration_in(json_t *obj, const char *where, const char *key, int64_t dflt,
			   int64_t *out, zt_err *e)
{
	json_t *v = json_object_get(obj, key);
	int r;

	*out = dflt;
	if (!v)
		return 0;
	if (!json_is_string(v))
		return zt_err_set(e, ZT_EINVAL, "%s.%s is a duration such as 10s or 1h", where, key);
	if ((r = zt_duration_parse(json_string_value(v), 30LL * 86400, out, e)) != 0)
		return zt_err_wrap(e, "%s.%s", where, key);
	return 0;
}

static int get_count_in(json_t *obj, const char *where, const char *key, long long dflt,
			long long min, long long max, long long *out, zt_err *e)
{
	json_t *v = json_object_get(obj, key);

	*out = dflt;
	if (!v)
		return 0;
	if (!json_is_integer(v) || json_integer_value(v) < min || json_integer_value(v) > max)
		return zt_err_set(e, ZT_EINVAL, "%s.%s is a number from %lld to %lld", where, key, min, max);
	*out = json_integer_value(v);
	return 0;
}

static int get_duration(json_t *obj, const char *key, int64_t dflt, int64_t *out, zt_err *e)
{
	return get_duration_in(obj, "limits", key, dflt, out, e);
}

static int get_count(json_t *obj, const char *key, long long dflt, long long min, long long max,
		     long long *out, zt_err *e)
{
	return get_count_in(obj, "limits", key, dflt, min, max, out, e);
}

/* spec.http: what HTTP listeners take from a peer (docs/proxy.md) */
static int parse_http(struct px_config *c, json_t *h, zt_err *e)
{
	static const char *const keys[] = { "maxHeaderBytes", "maxHeaders", "maxBodyBytes",
					    "headerTimeout", "bodyTimeout", "responseTimeout", NULL };
	long long n;
	int r;

	if (h && (r = only_keys(h, keys, "spec.http", e)) != 0)
		return r;
	if ((r = get_count_in(h, "http", "maxHeaderBytes", 32768, 1024, 1 << 20, &n, e)) != 0)
		return r;
	c->http.max_head = (size_t)n;
	if ((r = get_count_in(h, "http", "maxHeaders", 100, 1, ZT_HTTP1_MAX_FIELDS, &n, e)) != 0)
		return r;
	c->http.max_fields = (size_t)n;
	if ((r = get_count_in(h, "http", "maxBodyBytes", 10LL << 20, 0, 1LL << 50, &n, e)) != 0)
		return r;
	c->http.max_body = (uint64_t)n;
	if ((r = get_duration_in(h, "http", "headerTimeout", 10, &c->http.header_timeout, e)) != 0 ||
	    (r = get_duration_in(h, "http", "bodyTimeout", 60, &c->http.body_timeout, e)) != 0 ||
	    (r = get_duration_in(h, "http", "responseTimeout", 15, &c->http.response_timeout, e)) != 0)
		return r;
	if (c->http.max_head > c->buffer_bytes)
		return zt_err_set(e, ZT_EINVAL,
				  "http.maxHeaderBytes (%zu) must fit in limits.bufferBytes (%zu): a request head is read whole",
				  c->http.max_head, c->buffer_bytes);
	return 0;
}

/*
 * spec.jwt: how the identity providers' keys are fetched for the jwtRules
 * of RequestAuthentication policies (jwks.c, docs/proxy.md "End-user
 * tokens"). Every field is optional.
 */
static int parse_jwt(struct px_config *c, json_t *j, zt_err *e)
{
	static const char *const keys[] = { "caFile", "jwksRefresh", "unknownKidRefetch", "maxStale",
					    "fetchTimeout", NULL };
	const char *s;
	int r;

	if (j && (r = only_keys(j, keys, "spec.jwt", e)) != 0)
		return r;
	if ((r = zt_doc_get_str(j, "caFile", &s, 0, "spec.jwt", e)) != 0)
		return r;
	if (s && strlen(s) >= sizeof c->jwt.ca_file)
		return zt_err_set(e, ZT_EINVAL, "spec.jwt.caFile is too long");
	snprintf(c->jwt.ca_file, sizeof c->jwt.ca_file, "%s", s ? s : "");
	if ((r = get_duration_in(j, "jwt", "jwksRefresh", 300, &c->jwt.refresh, e)) != 0 ||
	    (r = get_duration_in(j, "jwt", "unknownKidRefetch", 30, &c->jwt.refetch, e)) != 0 ||
	    (r = get_duration_in(j, "jwt", "maxStale", 86400, &c->jwt.max_stale, e)) != 0 ||
	    (r = get_duration_in(j, "jwt", "fetchTimeout", 5, &c->jwt.fetch_timeout, e)) != 0)
		return r;
	if (c->jwt.fetch_timeout > 60)
		return zt_err_set(e, ZT_EINVAL, "spec.jwt.fetchTimeout is at most 60s");
	if (c->jwt.max_stale < c->jwt.refresh)
		return zt_err_set(e, ZT_EINVAL,
				  "spec.jwt.maxStale must not be shorter than jwksRefresh: a key set would expire before it is fetched again");
	return 0;
}

/* Adds an address a listener sends to (targets grow to PX_MAX_TARGETS). */
static int add_target(struct px_listener *l, const char *s, const char *where, const char *field,
		      zt_err *e)
{
	struct px_target *t;
	int r;

	if (!l->targets && !(l->targets = calloc(PX_MAX_TARGETS, sizeof *l->targets)))
		return zt_err_set(e, ZT_ENOMEM, "out of memory for %s.%s", where, field);
	if (l->ntargets == PX_MAX_TARGETS)
		return zt_err_set(e, ZT_EINVAL, "%s.%s: at most %d addresses", where, field, PX_MAX_TARGETS);
	t = &l->targets[l->ntargets];
	if ((r = zt_addr_parse(s, 0, &t->addr, &t->len, e)) != 0)
		return zt_err_wrap(e, "%s.%s", where, field);
	snprintf(t->text, sizeof t->text, "%s", s);
	if (!l->ntargets)
		snprintf(l->upstream_text, sizeof l->upstream_text, "%s", s);
	l->ntargets++;
	return 0;
}

/* upstreams: ["IPv4:PORT", "[IPv6]:PORT", ...] */
static int add_targets(struct px_listener *l, json_t *ups, const char *where, zt_err *e)
{
	json_t *u;
	size_t i;
	int r;

	if (!json_is_array(ups) || json_array_size(ups) == 0 || json_array_size(ups) > PX_MAX_TARGETS)
		return zt_err_set(e, ZT_EINVAL, "%s.upstreams lists 1 to %d addresses", where, PX_MAX_TARGETS);
	json_array_foreach(ups, i, u) {
		if (!json_is_string(u))
			return zt_err_set(e, ZT_EINVAL, "%s.upstreams[%zu] is an address (IPv4:PORT or [IPv6]:PORT)", where, i);
		if ((r = add_target(l, json_string_value(u), where, "upstreams", e)) != 0)
			return r;
	}
	return 0;
}

/* balance, ejectAfter, ejectFor, maxRequests (docs/proxy.md) */
static int parse_balance(struct px_listener *l, json_t *o, const char *where, zt_err *e)
{
	const char *s;
	long long n;
	int r;

	if ((r = zt_doc_get_str(o, "balance", &s, 0, where, e)) != 0)
		return r;
	if (!s || strcmp(s, "round-robin") == 0)
		l->balance = PX_ROUND_ROBIN;
	else if (strcmp(s, "least-request") == 0)
		l->balance = PX_LEAST_REQUEST;
	else
		return zt_err_set(e, ZT_EINVAL, "%s.balance is round-robin (the default) or least-request", where);
	if ((r = get_count_in(o, where, "ejectAfter", 5, 1, 1000, &n, e)) != 0)
		return r;
	l->eject_after = (int)n;
	if ((r = get_duration_in(o, where, "ejectFor", 30, &l->eject_ms, e)) != 0)
		return r;
	l->eject_ms *= 1000;
	if ((r = get_count_in(o, where, "maxRequests", 0, 0, 1000000, &n, e)) != 0)
		return r;
	if (n && !l->http)
		return zt_err_set(e, ZT_EINVAL, "%s.maxRequests counts HTTP requests: it needs protocol: http", where);
	l->max_requests = (long)n;
	return 0;
}

/* healthCheck: {path, interval, timeout, unhealthyAfter, healthyAfter} */
static int parse_health(struct px_listener *l, json_t *o, const char *where, zt_err *e)
{
	static const char *const keys[] = { "path", "interval", "timeout", "unhealthyAfter",
					    "healthyAfter", NULL };
	char w[96];
	const char *s;
	long long n;
	int r;

	if (!o)
		return 0;
	snprintf(w, sizeof w, "%s.healthCheck", where);
	if (!l->http)
		return zt_err_set(e, ZT_EINVAL, "%s sends HTTP requests: it needs protocol: http", w);
	if ((r = only_keys(o, keys, w, e)) != 0 || (r = zt_doc_get_str(o, "path", &s, 1, w, e)) != 0)
		return r;
	/* it goes into a request line: visible ASCII only, so nothing can be injected */
	if (s[0] != '/' || strlen(s) >= sizeof l->hc.path)
		return zt_err_set(e, ZT_EINVAL, "%s.path is a path starting with / (under %zu bytes)", w,
				  sizeof l->hc.path);
	for (const char *q = s; *q; q++)
		if (*q <= 0x20 || *q >= 0x7f)
			return zt_err_set(e, ZT_EINVAL, "%s.path holds a space or a control character", w);
	snprintf(l->hc.path, sizeof l->hc.path, "%s", s);
	if ((r = get_duration_in(o, w, "interval", 5, &l->hc.interval_ms, e)) != 0 ||
	    (r = get_duration_in(o, w, "timeout", 2, &l->hc.timeout_ms, e)) != 0)
		return r;
	l->hc.interval_ms *= 1000;
	l->hc.timeout_ms *= 1000;
	if (l->hc.timeout_ms > l->hc.interval_ms)
		return zt_err_set(e, ZT_EINVAL, "%s.timeout must not be longer than its interval", w);
	if ((r = get_count_in(o, w, "unhealthyAfter", 2, 1, 100, &n, e)) != 0)
		return r;
	l->hc.unhealthy_after = (int)n;
	if ((r = get_count_in(o, w, "healthyAfter", 1, 1, 100, &n, e)) != 0)
		return r;
	l->hc.healthy_after = (int)n;
	return 0;
}

/* rateLimits: [{key: source|ip|listener, pathPrefix, requestsPerSecond, burst}] */
static int parse_rates(struct px_listener *l, json_t *a, const char *where, zt_err *e)
{
	static const char *const keys[] = { "key", "pathPrefix", "requestsPerSecond", "burst", NULL };
	char w[128];
	json_t *o;
	size_t i;
	int r;

	if (!a)
		return 0;
	if (!l->http)
		return zt_err_set(e, ZT_EINVAL, "%s.rateLimits counts HTTP requests: it needs protocol: http", where);
	if (!json_is_array(a) || json_array_size(a) > PX_MAX_RATE_LIMITS)
		return zt_err_set(e, ZT_EINVAL, "%s.rateLimits lists at most %d limits", where, PX_MAX_RATE_LIMITS);
	if (!(l->rates = calloc(json_array_size(a) + 1, sizeof *l->rates)))
		return zt_err_set(e, ZT_ENOMEM, "out of memory for %s.rateLimits", where);
	json_array_foreach(a, i, o) {
		struct px_rate_rule *rr = &l->rates[i];
		const char *s;
		long long rate, burst;

		snprintf(w, sizeof w, "%s.rateLimits[%zu]", where, i);
		if ((r = only_keys(o, keys, w, e)) != 0 || (r = zt_doc_get_str(o, "key", &s, 1, w, e)) != 0)
			return r;
		if (strcmp(s, "source") == 0)
			rr->key = PX_RL_SOURCE;
		else if (strcmp(s, "ip") == 0)
			rr->key = PX_RL_IP;
		else if (strcmp(s, "listener") == 0)
			rr->key = PX_RL_LISTENER;
		else
			return zt_err_set(e, ZT_EINVAL, "%s.key is source (the caller's SPIFFE ID), ip or listener", w);
		if (rr->key == PX_RL_SOURCE && (!l->inbound || l->edge))
			return zt_err_set(e, ZT_EINVAL, "%s.key source needs an inbound listener (one that verifies callers' SPIFFE IDs); at the edge use ip", w);
		if ((r = zt_doc_get_str(o, "pathPrefix", &s, 0, w, e)) != 0)
			return r;
		if (s && (s[0] != '/' || strlen(s) >= sizeof rr->prefix))
			return zt_err_set(e, ZT_EINVAL, "%s.pathPrefix is a path starting with / (under %zu bytes)", w, sizeof rr->prefix);
		snprintf(rr->prefix, sizeof rr->prefix, "%s", s ? s : "");
		rr->prefix_len = strlen(rr->prefix);
		if (!json_object_get(o, "requestsPerSecond"))
			return zt_err_set(e, ZT_EINVAL, "%s.requestsPerSecond is required", w);
		if ((r = get_count_in(o, w, "requestsPerSecond", 0, 1, 1000000, &rate, e)) != 0 ||
		    (r = get_count_in(o, w, "burst", rate, 1, 10000000, &burst, e)) != 0)
			return r;
		l->nrates++; /* counted first: px_config_free frees what it holds */
		if (!(rr->rl = px_rl_new((uint64_t)rate, (uint64_t)burst)))
			return zt_err_set(e, ZT_ENOMEM, "out of memory for %s", w);
	}
	return 0;
}

static int parse_listener(struct px_config *c, json_t *o, size_t idx, zt_err *e)
{
	static const char *const keys[] = { "name", "mode", "protocol", "listen", "forward",
					    "service", "upstream", "upstreams", "balance", "ejectAfter",
					    "ejectFor", "maxRequests", "rateLimits", "expect", "serverCert",
					    "healthCheck", NULL };
	struct px_listener *l = &c->listeners[idx];
	const char *name, *mode, *listen, *s;
	char where[64];
	int r;

	snprintf(where, sizeof where, "listeners[%zu]", idx);
	if ((r = only_keys(o, keys, where, e)) != 0 ||
	    (r = zt_doc_get_str(o, "name", &name, 1, where, e)) != 0 ||
	    (r = zt_doc_get_str(o, "mode", &mode, 1, where, e)) != 0 ||
	    (r = zt_doc_get_str(o, "listen", &listen, 1, where, e)) != 0)
		return r;
	for (const char *q = name; *q; q++)
		if (!((*q >= 'a' && *q <= 'z') || (*q >= 'A' && *q <= 'Z') || (*q >= '0' && *q <= '9') ||
		      *q == '-' || *q == '_' || *q == '.') || q - name >= 63)
			return zt_err_set(e, ZT_EINVAL,
					  "%s.name uses letters, digits, '-', '_' and '.', at most 63 (it labels metrics)",
					  where);
	snprintf(l->name, sizeof l->name, "%s", name);
	if ((r = zt_doc_get_str(o, "protocol", &s, 0, where, e)) != 0)
		return r;
	if (s && strcmp(s, "http") == 0)
		l->http = 1;
	else if (s && strcmp(s, "tcp") != 0)
		return zt_err_set(e, ZT_EINVAL, "%s.protocol is tcp (the default) or http", where);
	if ((r = zt_addr_parse(listen, 0, &l->listen, &l->listen_len, e)) != 0)
		return zt_err_wrap(e, "%s.listen", where);
	l->port = (int)strtol(strrchr(listen, ':') + 1, NULL, 10);
	if (strcmp(mode, "inbound") == 0) {
		l->inbound = 1;
		if ((r = zt_doc_get_str(o, "forward", &s, 1, where, e)) != 0)
			return r;
		if ((r = add_target(l, s, where, "forward", e)) != 0)
			return r;
		if (json_object_get(o, "upstreams") || json_object_get(o, "balance"))
			return zt_err_set(e, ZT_EINVAL, "%s: an inbound listener forwards to one address (forward)", where);
		if ((r = zt_doc_get_str(o, "service", &s, 0, where, e)) != 0)
			return r;
		snprintf(l->service, sizeof l->service, "%s", s ? s : "");
		if (json_object_get(o, "upstream") || json_object_get(o, "expect"))
			return zt_err_set(e, ZT_EINVAL, "%s: upstream and expect belong to outbound listeners", where);
	} else if (strcmp(mode, "outbound") == 0) {
		json_t *ex = json_object_get(o, "expect"), *v;
		size_t i;
		json_t *ups = json_object_get(o, "upstreams");

		if ((r = zt_doc_get_str(o, "upstream", &s, 0, where, e)) != 0)
			return r;
		if (!s == !ups)
			return zt_err_set(e, ZT_EINVAL, "%s names its upstream address (upstream) or addresses (upstreams), one of the two", where);
		if (s && (r = add_target(l, s, where, "upstream", e)) != 0)
			return r;
		if (ups && (r = add_targets(l, ups, where, e)) != 0)
			return r;
		if (!json_is_array(ex) || json_array_size(ex) == 0 || json_array_size(ex) > PX_MAX_EXPECT)
			return zt_err_set(e, ZT_EINVAL,
					  "%s.expect lists the SPIFFE IDs the upstream may present (1 to %d); without it any workload could answer",
					  where, PX_MAX_EXPECT);
		if (!(l->expect = calloc(json_array_size(ex), sizeof *l->expect)))
			return zt_err_set(e, ZT_ENOMEM, "out of memory for %s.expect", where);
		json_array_foreach(ex, i, v) {
			if (!json_is_string(v) ||
			    zt_id_parse(json_string_value(v), json_string_length(v), &l->expect[i], e) != 0)
				return zt_err_wrap(e, "%s.expect[%zu]", where, i);
			l->nexpect++;
		}
		if (json_object_get(o, "forward") || json_object_get(o, "service"))
			return zt_err_set(e, ZT_EINVAL, "%s: forward and service belong to inbound listeners", where);
	} else if (strcmp(mode, "edge") == 0) {
		static const char *const cert_keys[] = { "cert", "key", NULL };
		json_t *sc = json_object_get(o, "serverCert"), *ups = json_object_get(o, "upstreams");
		char w[96];

		l->inbound = l->edge = 1;
		if (!l->http)
			return zt_err_set(e, ZT_EINVAL, "%s: an edge listener needs protocol: http", where);
		snprintf(w, sizeof w, "%s.serverCert", where);
		if (!sc)
			return zt_err_set(e, ZT_EINVAL, "%s.serverCert {cert, key} is required: the certificate clients on the internet check", where);
		if ((r = only_keys(sc, cert_keys, w, e)) != 0 || (r = zt_doc_get_str(sc, "cert", &s, 1, w, e)) != 0)
			return r;
		snprintf(l->edge_cert, sizeof l->edge_cert, "%s", s);
		if ((r = zt_doc_get_str(sc, "key", &s, 1, w, e)) != 0)
			return r;
		snprintf(l->edge_key, sizeof l->edge_key, "%s", s);
		if ((r = zt_doc_get_str(o, "forward", &s, 0, where, e)) != 0)
			return r;
		if (!s == !ups)
			return zt_err_set(e, ZT_EINVAL, "%s sends to one address (forward) or several (upstreams), one of the two", where);
		if (s && (r = add_target(l, s, where, "forward", e)) != 0)
			return r;
		if (ups && (r = add_targets(l, ups, where, e)) != 0)
			return r;
		if ((r = zt_doc_get_str(o, "service", &s, 0, where, e)) != 0)
			return r;
		snprintf(l->service, sizeof l->service, "%s", s ? s : "");
		if (json_object_get(o, "expect") || json_object_get(o, "upstream"))
			return zt_err_set(e, ZT_EINVAL, "%s: upstream and expect belong to outbound listeners", where);
	} else {
		return zt_err_set(e, ZT_EINVAL, "%s.mode is inbound, outbound or edge", where);
	}
	if (json_object_get(o, "serverCert") && !l->edge)
		return zt_err_set(e, ZT_EINVAL, "%s.serverCert belongs to edge listeners", where);
	if ((r = parse_balance(l, o, where, e)) != 0 ||
	    (r = parse_health(l, json_object_get(o, "healthCheck"), where, e)) != 0)
		return r;
	return parse_rates(l, json_object_get(o, "rateLimits"), where, e);
}

int px_config_load(struct px_config *c, const char *path, zt_err *e)
{
	json_t *docs;
	int r;

	memset(c, 0, sizeof *c);
	if (!(docs = zt_doc_load_file(path, 1u << 20, e)))
		return -ZT_EPARSE;
	r = px_config_from_docs(c, docs, e);
	if (r != 0)
		zt_err_wrap(e, "%s", path);
	json_decref(docs);
	return r;
}

/*
 * spec.policy: a file or folder ("policies/"), or the control plane:
 * {server: https://HOST:PORT, cache: FILE}. The cache keeps the last policy
 * the server sent, so a restart while the server is away still enforces it.
 */
static int policy_source(struct px_config *c, json_t *v, zt_err *e)
{
	static const char *const keys[] = { "server", "cache", NULL };
	const char *s;
	int r;

	if (!v)
		return 0;
	if (json_is_string(v)) {
		if (json_string_length(v) == 0 || json_string_length(v) >= sizeof c->policy)
			return zt_err_set(e, ZT_EINVAL, "spec.policy must be a non-empty path, or {server: URL}");
		snprintf(c->policy, sizeof c->policy, "%s", json_string_value(v));
		return 0;
	}
	if ((r = only_keys(v, keys, "spec.policy", e)) != 0 ||
	    (r = zt_doc_get_str(v, "server", &s, 1, "spec.policy", e)) != 0)
		return r;
	if (strncmp(s, "https://", 8) || strlen(s) >= sizeof c->policy_server)
		return zt_err_set(e, ZT_EINVAL, "spec.policy.server must be the server's https:// URL");
	if ((r = zt_httpc_url_check(s, e)) != 0)
		return zt_err_wrap(e, "spec.policy.server");
	snprintf(c->policy_server, sizeof c->policy_server, "%s", s);
	if ((r = zt_doc_get_str(v, "cache", &s, 0, "spec.policy", e)) != 0)
		return r;
	snprintf(c->policy_cache, sizeof c->policy_cache, "%s", s ? s : "");
	return 0;
}

int px_config_from_docs(struct px_config *c, json_t *docs, zt_err *e)
{
	static const char *const top_keys[] = { "apiVersion", "kind", "metadata", "spec", NULL };
	static const char *const spec_keys[] = { "trustDomain", "identity", "policy", "limits",
						 "listeners", "admin", "tls", "workers", "http", "jwt", NULL };
	static const char *const tls_keys[] = { "minVersion", "resumption", NULL };
	static const char *const admin_keys[] = { "listen", NULL };
	static const char *const id_keys[] = { "cert", "key", "bundle", NULL };
	static const char *const agent_keys[] = { "agent", "id", NULL };
	static const char *const lim_keys[] = { "maxConnections", "maxConnectionsPerIdentity",
						"handshakeTimeout", "connectTimeout", "drainTimeout",
						"idleTimeout", "bufferBytes", NULL };
	json_t *doc, *spec, *id, *lim, *ls, *el;
	const char *s;
	long long n;
	size_t i;
	int r;

	memset(c, 0, sizeof *c);
	doc = json_array_get(docs, 0);
	if (json_array_size(docs) != 1 ||
	    !json_is_string(json_object_get(doc, "kind")) ||
	    strcmp(json_string_value(json_object_get(doc, "kind")), "ProxyConfig") != 0) {
		r = zt_err_set(e, ZT_EINVAL, "expected one document of kind ProxyConfig");
		goto out;
	}
	spec = json_object_get(doc, "spec");
	if ((r = only_keys(doc, top_keys, "the document", e)) != 0 ||
	    (r = only_keys(spec, spec_keys, "spec", e)) != 0 ||
	    (r = zt_doc_get_str(spec, "trustDomain", &s, 1, "spec", e)) != 0)
		goto out;
	if ((r = zt_td_check(s, strlen(s), e)) != 0)
		goto out;
	snprintf(c->td, sizeof c->td, "%s", s);
	id = json_object_get(spec, "identity");
	if (json_is_object(id) && json_object_get(id, "agent")) {
		/* from the node agent's Workload API (agentid.c); the files are ours */
		if ((r = only_keys(id, agent_keys, "spec.identity", e)) != 0 ||
		    (r = zt_doc_get_str(id, "agent", &s, 1, "spec.identity", e)) != 0)
			goto out;
		if (s[0] != '/' || strlen(s) >= sizeof c->agent_socket) {
			r = zt_err_set(e, ZT_EINVAL, "spec.identity.agent must be the agent's socket, an absolute path");
			goto out;
		}
		snprintf(c->agent_socket, sizeof c->agent_socket, "%s", s);
		if ((r = zt_doc_get_str(id, "id", &s, 0, "spec.identity", e)) != 0)
			goto out;
		if (s && (r = zt_id_parse(s, strlen(s), &(zt_spiffe_id){0}, e)) != 0)
			goto out;
		snprintf(c->agent_id, sizeof c->agent_id, "%s", s ? s : "");
	} else {
		if ((r = only_keys(id, id_keys, "spec.identity", e)) != 0 ||
		    (r = zt_doc_get_str(id, "cert", &s, 1, "spec.identity", e)) != 0)
			goto out;
		snprintf(c->cert, sizeof c->cert, "%s", s);
		if ((r = zt_doc_get_str(id, "key", &s, 1, "spec.identity", e)) != 0)
			goto out;
		snprintf(c->key, sizeof c->key, "%s", s);
		if ((r = zt_doc_get_str(id, "bundle", &s, 1, "spec.identity", e)) != 0)
			goto out;
		snprintf(c->bundle, sizeof c->bundle, "%s", s);
	}
	if ((r = policy_source(c, json_object_get(spec, "policy"), e)) != 0)
		goto out;
	lim = json_object_get(spec, "limits");
	if (lim && (r = only_keys(lim, lim_keys, "spec.limits", e)) != 0)
		goto out;
	if ((r = get_count(lim, "maxConnections", 10000, 1, 1000000, &n, e)) != 0)
		goto out;
	c->max_conns = (size_t)n;
	if ((r = get_count(lim, "maxConnectionsPerIdentity", 1000, 1, 1000000, &n, e)) != 0)
		goto out;
	c->max_per_id = (size_t)n;
	c->resumption = 1;
	if (json_object_get(spec, "tls")) {
		json_t *tls = json_object_get(spec, "tls");

		json_t *res = json_object_get(tls, "resumption");

		if ((r = only_keys(tls, tls_keys, "spec.tls", e)) != 0 ||
		    (r = zt_doc_get_str(tls, "minVersion", &s, 0, "spec.tls", e)) != 0)
			goto out;
		if (res && !json_is_boolean(res)) {
			r = zt_err_set(e, ZT_EINVAL, "spec.tls.resumption is true (the default) or false");
			goto out;
		}
		if (res)
			c->resumption = json_is_true(res);
		if (!s) {
			/* 1.3 */
		} else if (strcmp(s, "1.2") == 0) {
			c->allow_tls12 = 1;
		} else if (strcmp(s, "1.3") != 0) {
			r = zt_err_set(e, ZT_EINVAL, "spec.tls.minVersion is \"1.3\" (the default) or \"1.2\"");
			goto out;
		}
	}
	if (json_object_get(spec, "admin")) {
		json_t *adm = json_object_get(spec, "admin");

		if ((r = only_keys(adm, admin_keys, "spec.admin", e)) != 0 ||
		    (r = zt_doc_get_str(adm, "listen", &s, 1, "spec.admin", e)) != 0)
			goto out;
		if ((r = zt_addr_parse(s, 0, &c->admin, &c->admin_len, e)) != 0) {
			zt_err_wrap(e, "spec.admin.listen");
			goto out;
		}
		c->has_admin = 1;
	}
	if ((r = get_count(lim, "bufferBytes", 65536, 4096, 16 << 20, &n, e)) != 0)
		goto out;
	c->buffer_bytes = (size_t)n;
	c->workers = 2;
	if (json_object_get(spec, "workers")) {
		json_t *wk = json_object_get(spec, "workers");

		if (!json_is_integer(wk) || json_integer_value(wk) < 1 ||
		    json_integer_value(wk) > PX_MAX_WORKERS) {
			r = zt_err_set(e, ZT_EINVAL, "spec.workers is a number of threads from 1 to %d",
				       PX_MAX_WORKERS);
			goto out;
		}
		c->workers = (size_t)json_integer_value(wk);
	}
	if ((r = get_duration(lim, "handshakeTimeout", 10, &c->handshake_timeout, e)) != 0 ||
	    (r = get_duration(lim, "connectTimeout", 5, &c->connect_timeout, e)) != 0 ||
	    (r = get_duration(lim, "idleTimeout", 3600, &c->idle_timeout, e)) != 0 ||
	    (r = get_duration(lim, "drainTimeout", 30, &c->drain_timeout, e)) != 0)
		goto out;
	if ((r = parse_http(c, json_object_get(spec, "http"), e)) != 0)
		goto out;
	if ((r = parse_jwt(c, json_object_get(spec, "jwt"), e)) != 0)
		goto out;
	ls = json_object_get(spec, "listeners");
	if (!json_is_array(ls) || json_array_size(ls) == 0 || json_array_size(ls) > PX_MAX_LISTENERS) {
		r = zt_err_set(e, ZT_EINVAL, "spec.listeners lists 1 to %d listeners", PX_MAX_LISTENERS);
		goto out;
	}
	if (!(c->listeners = calloc(json_array_size(ls), sizeof *c->listeners))) {
		r = zt_err_set(e, ZT_ENOMEM, "out of memory for spec.listeners");
		goto out;
	}
	json_array_foreach(ls, i, el) {
		c->nlisteners++; /* counted first: px_config_free frees what it holds */
		if ((r = parse_listener(c, el, i, e)) != 0)
			goto out;
		if (c->listeners[i].inbound && !c->policy[0] && !c->policy_server[0]) {
			r = zt_err_set(e, ZT_EINVAL,
				       "listener %s is inbound, so spec.policy must name the policy files, or {server: URL}, that decide its connections (zt denies by default)",
				       c->listeners[i].name);
			goto out;
		}
	}
	r = 0;
out:
	if (r != 0)
		px_config_free(c);
	return r;
}

void px_config_free(struct px_config *c)
{
	for (size_t i = 0; c->listeners && i < c->nlisteners; i++) {
		free(c->listeners[i].expect);
		free(c->listeners[i].targets);
		for (size_t k = 0; k < c->listeners[i].nrates; k++)
			px_rl_free(c->listeners[i].rates[k].rl);
		free(c->listeners[i].rates);
	}
	free(c->listeners);
	c->listeners = NULL;
	c->nlisteners = 0;
}
