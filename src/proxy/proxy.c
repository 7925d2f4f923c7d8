/*
 * proxy/proxy.c: the daemon — the identity and policy snapshot and its
 * reloads, the worker threads (one event loop each, accepting on their own
 * SO_REUSEPORT sockets; conn.c is what they run), signals, draining, and the
 * counters the admin listener reports.
 */
#include "proxy_int.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static volatile sig_atomic_t got_signal;
static zt_loop *signal_loop;

static void on_signal(int sig)
{
	got_signal = sig;
	if (signal_loop)
		zt_loop_wake(signal_loop);
}


static void close_listeners(struct px_worker *w);

static void state_free(struct px_state *st)
{
	if (!st || atomic_fetch_sub(&st->refs, 1) != 1)
		return;
	for (size_t i = 0; i < PX_MAX_LISTENERS; i++) /* unused entries are NULL */
		SSL_CTX_free(st->tls[i]);
	zt_bundle_set_free(st->bundles);
	X509_free(st->cert);
	sk_X509_pop_free(st->chain, X509_free);
	EVP_PKEY_free(st->key);
	free(st);
}

/* An edge listener's server context, from its own certificate and key. */
static SSL_CTX *edge_ctx(const struct px_listener *l, zt_err *e)
{
	STACK_OF(X509) *certs = NULL;
	EVP_PKEY *key = NULL;
	SSL_CTX *ctx = NULL;
	X509 *leaf;

	if (zt_certs_load(l->edge_cert, &certs, e) != 0 || !(key = zt_key_load(l->edge_key, e)))
		goto out;
	leaf = sk_X509_value(certs, 0);
	if (!zt_key_matches_cert(key, leaf)) {
		zt_err_set(e, ZT_EINVAL, "%s is not the key of %s (listener %s)", l->edge_key, l->edge_cert,
			   l->name);
		goto out;
	}
	(void)sk_X509_shift(certs);
	ctx = zt_tls_edge_ctx_new(leaf, certs, key, e);
	X509_free(leaf);
out:
	sk_X509_pop_free(certs, X509_free);
	EVP_PKEY_free(key);
	return ctx;
}

/* Loads the SVID, its key and the bundle, checks them, and makes the TLS
 * contexts of every listener from them (an edge listener's from its own
 * certificate). */
static struct px_state *state_load(zt_proxy *px, zt_err *e)
{
	const struct px_config *cfg = &px->cfg;
	struct px_state *st = calloc(1, sizeof *st);
	STACK_OF(X509) *certs = NULL, *own = NULL;
	zt_bundle *b;
	zt_svid_info info;

	if (!st) {
		zt_err_set(e, ZT_ENOMEM, "out of memory");
		return NULL;
	}
	atomic_init(&st->refs, 1);
	if (zt_certs_load(cfg->cert, &certs, e) != 0)
		goto fail;
	st->cert = sk_X509_shift(certs);
	st->chain = certs;
	if (!(st->key = zt_key_load(cfg->key, e)))
		goto fail;
	if (!zt_key_matches_cert(st->key, st->cert)) {
		zt_err_set(e, ZT_EINVAL, "%s is not the key of %s", cfg->key, cfg->cert);
		goto fail;
	}
	if (!(b = zt_bundle_load(cfg->td, cfg->bundle, e)) ||
	    !(st->bundles = zt_bundle_set_new()) || zt_bundle_set_put(st->bundles, b, e) != 0)
		goto fail;
	/* our own SVID must pass the rules we apply to others */
	if (!(own = sk_X509_dup(st->chain)) || !sk_X509_unshift(own, st->cert)) {
		zt_err_set(e, ZT_ENOMEM, "out of memory");
		goto fail;
	}
	if (zt_svid_verify(st->bundles, own, NULL, &info, e) != 0) {
		zt_err_wrap(e, "the proxy's own SVID %s", cfg->cert);
		goto fail;
	}
	snprintf(st->own_id, sizeof st->own_id, "%s", info.id.str);
	for (size_t i = 0; i < cfg->nlisteners; i++) {
		const struct px_listener *l = &cfg->listeners[i];
		zt_tls_opts o = {
			.server = l->inbound,
			.allow_tls12 = cfg->allow_tls12,
			.resume = cfg->resumption,
			.cert = st->cert,
			.chain = st->chain,
			.key = st->key,
			.verify = l->inbound ? px_verify_inbound : px_verify_outbound,
			.verify_arg = &st->vctx[i],
		};

		st->vctx[i] = (struct px_vctx){ st, l };

		if (l->edge) {
			if (!(st->tls[i] = edge_ctx(l, e)))
				goto fail;
			continue;
		}
		if (!(st->tls[i] = zt_tls_ctx_new(&o, e)))
			goto fail;
	}
	sk_X509_free(own);
	return st;
fail:
	sk_X509_free(own);
	state_free(st);
	return NULL;
}

static zt_policy_snapshot *policy_load(const char *path, zt_err *e)
{
	zt_policy_snapshot *snap;
	zt_policy_src *src;

	if (!(src = zt_policy_src_new(NULL))) {
		zt_err_set(e, ZT_ENOMEM, "out of memory");
		return NULL;
	}
	zt_policy_src_add_path(src, path);
	zt_policy_src_check(src);
	for (size_t i = 0; i < zt_policy_src_ndiags(src); i++) {
		const zt_diag *d = zt_policy_src_diag(src, i);
		char line[32];

		snprintf(line, sizeof line, "%d", d->line);
		zt_log(d->level == ZT_DIAG_ERROR ? ZT_LOG_ERROR : ZT_LOG_WARN, "policy diagnostic",
		       "file", d->file, "line", line, "message", d->msg, NULL);
	}
	snap = zt_policy_compile(src, e);
	zt_policy_src_free(src);
	return snap;
}

/* ---- watching the files ---- */

static uint64_t mix(uint64_t h, uint64_t v)
{
	h ^= v + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
	return h;
}

/* What a file or folder (its files, recursively) looks like now: a change of
 * content, size, time, inode, or set of files changes the value. */
static uint64_t path_sig(const char *path, int depth)
{
	struct stat st;
	uint64_t h = 1469598103934665603ull;

	if (stat(path, &st) != 0)
		return mix(h, 0xdead);
	h = mix(h, (uint64_t)st.st_ino);
	h = mix(h, (uint64_t)st.st_size);
	h = mix(h, (uint64_t)st.st_mtim.tv_sec * 1000000000ull + (uint64_t)st.st_mtim.tv_nsec);
	h = mix(h, (uint64_t)st.st_ctim.tv_sec * 1000000000ull + (uint64_t)st.st_ctim.tv_nsec);
	if (S_ISDIR(st.st_mode) && depth < 8) {
		DIR *d = opendir(path);
		struct dirent *de;

		while (d && (de = readdir(d)) != NULL) {
			char sub[PATH_MAX];

			if (de->d_name[0] == '.')
				continue;
			snprintf(sub, sizeof sub, "%s/%s", path, de->d_name);
			/* order-independent: readdir's order is not stable */
			h ^= path_sig(sub, depth + 1) * 0x100000001b3ull;
		}
		if (d)
			closedir(d);
	}
	return h;
}

static uint64_t identity_sig(const struct px_config *cfg)
{
	uint64_t h = mix(mix(path_sig(cfg->cert, 0), path_sig(cfg->key, 0)), path_sig(cfg->bundle, 0));

	for (size_t i = 0; i < cfg->nlisteners; i++)
		if (cfg->listeners[i].edge)
			h = mix(mix(h, path_sig(cfg->listeners[i].edge_cert, 0)),
				path_sig(cfg->listeners[i].edge_key, 0));
	return h;
}

/* ---- the snapshot in force ---- */

/*
 * The key sets the policy's jwtRules name for our inbound destinations go
 * into the key cache before the policy is published, so a new rule's keys
 * are being fetched by the time its first token arrives.
 */
static void jwks_sync(zt_proxy *px, const zt_policy_snapshot *pol)
{
	const char *svcs[PX_MAX_LISTENERS];
	size_t n = 0;

	for (size_t i = 0; i < px->cfg.nlisteners; i++)
		if (px->cfg.listeners[i].inbound && px->cfg.listeners[i].http && px->cfg.listeners[i].service[0])
			svcs[n++] = px->cfg.listeners[i].service;
	px_jwks_sync(px->jwks, pol, svcs, n);
}

static struct px_snap *snap_new(struct px_state *st, zt_policy_snapshot *policy)
{
	struct px_snap *s = calloc(1, sizeof *s);

	if (s) {
		atomic_init(&s->refs, 1);
		s->st = st;
		s->policy = policy;
	}
	return s;
}

/*
 * A reference to the snapshot in force. The lock covers only the load and
 * the increment (a reload must not free it in between): tens of
 * nanoseconds per connection, and never held across work.
 */
struct px_snap *px_snap_get(zt_proxy *px)
{
	struct px_snap *s;

	pthread_mutex_lock(&px->mu);
	s = px->snap;
	atomic_fetch_add(&s->refs, 1);
	pthread_mutex_unlock(&px->mu);
	return s;
}

void px_snap_put(struct px_snap *s)
{
	if (!s || atomic_fetch_sub(&s->refs, 1) != 1)
		return;
	state_free(s->st);
	zt_policy_snapshot_unref(s->policy);
	free(s);
}

static void snap_publish(zt_proxy *px, struct px_snap *next)
{
	struct px_snap *old;

	pthread_mutex_lock(&px->mu);
	old = px->snap;
	px->snap = next;
	pthread_mutex_unlock(&px->mu);
	px_snap_put(old);
}

/*
 * New identity or policy in force, or the old kept with the reason logged:
 * a bad file never replaces a good snapshot. Connections already open keep
 * what they started with; new ones use the new.
 */
static void reload(zt_proxy *px, int force)
{
	uint64_t ids = identity_sig(&px->cfg);
	uint64_t pols = px->cfg.policy[0] ? path_sig(px->cfg.policy, 0) : 0;
	struct px_snap *cur;
	struct px_state *st = NULL;
	zt_policy_snapshot *pol = NULL;
	zt_err e;

	pthread_mutex_lock(&px->install_mu);
	cur = px_snap_get(px);
	if (force || ids != px->id_sig) {
		if ((st = state_load(px, &e))) {
			zt_log(ZT_LOG_INFO, "identity reloaded", "identity", st->own_id, NULL);
			atomic_fetch_add(&px->id_gen, 1);
		}
		else
			zt_log(ZT_LOG_ERROR, "identity reload refused; the previous SVID and bundle stay in force",
			       "error", e.msg, NULL);
		px->id_sig = ids;
	}
	if (px->cfg.policy[0] && (force || pols != px->policy_sig)) {
		if ((pol = policy_load(px->cfg.policy, &e)))
			zt_log(ZT_LOG_INFO, "policy reloaded", "path", px->cfg.policy, NULL);
		else
			zt_log(ZT_LOG_ERROR, "policy reload refused; the previous policy stays in force",
			       "error", e.msg, NULL);
		px->policy_sig = pols;
	}
	if (pol)
		jwks_sync(px, pol);
	if (st || pol) {
		struct px_snap *next;

		if (!st) {
			st = cur->st;
			atomic_fetch_add(&st->refs, 1);
		}
		if (!pol && (pol = cur->policy))
			zt_policy_snapshot_ref(pol);
		if ((next = snap_new(st, pol))) {
			snap_publish(px, next);
		} else {
			zt_log(ZT_LOG_ERROR, "reload refused: out of memory", NULL);
			state_free(st);
			zt_policy_snapshot_unref(pol);
		}
	}
	px_snap_put(cur);
	pthread_mutex_unlock(&px->install_mu);
}

int px_policy_install(zt_proxy *px, zt_policy_snapshot *pol)
{
	struct px_snap *cur, *next;
	int r = 0;

	pthread_mutex_lock(&px->install_mu);
	cur = px_snap_get(px);
	atomic_fetch_add(&cur->st->refs, 1);
	if (pol)
		jwks_sync(px, pol);
	if ((next = snap_new(cur->st, pol))) {
		snap_publish(px, next);
	} else {
		zt_log(ZT_LOG_ERROR, "policy update refused: out of memory", NULL);
		state_free(cur->st);
		zt_policy_snapshot_unref(pol);
		r = -1;
	}
	px_snap_put(cur);
	pthread_mutex_unlock(&px->install_mu);
	return r;
}

#define WATCH_MS 1000

static void on_watch(zt_loop *l, void *arg)
{
	zt_proxy *px = arg;

	reload(px, 0);
	if (zt_timer_set(l, &px->watch, WATCH_MS) != 0)
		zt_log(ZT_LOG_ERROR, "cannot re-arm the file watch", NULL);
}

zt_proxy *zt_proxy_new(const char *path, zt_err *e)
{
	zt_proxy *px = calloc(1, sizeof *px);

	if (!px) {
		zt_err_set(e, ZT_ENOMEM, "out of memory");
		return NULL;
	}
	struct px_state *st;
	zt_policy_snapshot *pol = NULL;

	pthread_mutex_init(&px->mu, NULL);
	pthread_mutex_init(&px->install_mu, NULL);
	px->admin_fd = -1;
	px->watch_cancel = -1;
	px->agent_cancel = -1;
	for (size_t w = 0; w < PX_MAX_WORKERS; w++)
		for (size_t i = 0; i < PX_MAX_LISTENERS; i++)
			px->workers[w].lfd[i] = -1;
	snprintf(px->config_path, sizeof px->config_path, "%s", path);
	if (px_config_load(&px->cfg, path, e) != 0)
		goto fail;
	for (size_t i = 0; i < px->cfg.nlisteners; i++) {
		px->cfg.listeners[i].px = px;
		px->cfg.listeners[i].stats = &px->stats[i];
	}
	if (!(px->jwks = px_jwks_new(&px->cfg.jwt, e)))
		goto fail;
	if (px_agentid_init(px, e) != 0)
		goto fail;
	px->id_sig = identity_sig(&px->cfg);
	px->policy_sig = px->cfg.policy[0] ? path_sig(px->cfg.policy, 0) : 0;
	if (!(st = state_load(px, e)))
		goto fail;
	if (px->cfg.policy[0] && !(pol = policy_load(px->cfg.policy, e))) {
		state_free(st);
		goto fail;
	}
	if (px->cfg.policy_cache[0] && zt_path_exists(px->cfg.policy_cache)) {
		/* the last policy the server sent, until it answers again */
		uint64_t rev = 0;
		zt_err ce;

		if ((pol = px_policy_cache_load(px->cfg.policy_cache, &rev, &ce))) {
			char rs[24];

			snprintf(rs, sizeof rs, "%llu", (unsigned long long)rev);
			zt_log(ZT_LOG_INFO, "policy from the cache until the server answers", "path",
			       px->cfg.policy_cache, "revision", rs, NULL);
			atomic_store(&px->policy_revision, rev ? rev : 1);
		} else {
			zt_log(ZT_LOG_WARN, "policy cache unusable; denying until the server answers",
			       "path", px->cfg.policy_cache, "error", ce.msg, NULL);
		}
	}
	for (size_t i = 0; i < px->cfg.nlisteners; i++)
		if (px->cfg.listeners[i].inbound && !px->cfg.listeners[i].service[0])
			snprintf(px->cfg.listeners[i].service, sizeof px->cfg.listeners[i].service, "%s",
				 st->own_id);
	if (pol)
		jwks_sync(px, pol);
	if (!(px->snap = snap_new(st, pol))) {
		state_free(st);
		zt_policy_snapshot_unref(pol);
		zt_err_set(e, ZT_ENOMEM, "out of memory");
		goto fail;
	}
	return px;
fail:
	zt_proxy_free(px);
	return NULL;
}

void zt_proxy_free(zt_proxy *px)
{
	if (!px)
		return;
	px_watch_stop(px);
	px_agentid_stop(px);
	px_health_stop(px);
	px_jwks_free(px->jwks); /* after the watch: it syncs the cache */
	px->jwks = NULL;
	for (size_t w = 0; w < PX_MAX_WORKERS; w++) {
		close_listeners(&px->workers[w]);
		zt_loop_free(px->workers[w].loop);
	}
	px_snap_put(px->snap);
	zt_loop_free(px->loop);
	if (px->admin_fd >= 0)
		close(px->admin_fd);
	for (size_t b = 0; b < ID_BUCKETS; b++)
		for (struct id_count *ic = px->ids[b], *next; ic; ic = next) {
			next = ic->next;
			free(ic);
		}
	pthread_mutex_destroy(&px->mu);
	pthread_mutex_destroy(&px->install_mu);
	px_config_free(&px->cfg);
	free(px);
}

int px_ready(zt_proxy *px)
{
	return !atomic_load(&px->stopping);
}

/* end-user tokens: verified and refused per inbound HTTP listener, and the key sets */
static int jwt_metrics(zt_proxy *px, zt_buf *out, zt_err *e)
{
	static const char *const reasons[PX_JWT_NREASONS] = {
		[PX_JWT_MALFORMED] = "malformed",     [PX_JWT_MULTIPLE] = "multiple-tokens",
		[PX_JWT_ISSUER] = "issuer",           [PX_JWT_NO_KEYS] = "no-keys",
		[PX_JWT_UNKNOWN_KID] = "unknown-kid", [PX_JWT_ALGORITHM] = "algorithm",
		[PX_JWT_SIGNATURE] = "signature",     [PX_JWT_EXPIRED] = "expired",
		[PX_JWT_NOT_YET_VALID] = "not-yet-valid", [PX_JWT_AUDIENCE] = "audience",
		[PX_JWT_TOO_MANY_RULES] = "too-many-rules",
	};
	int r = zt_buf_appendf(out, e,
			       "# HELP zt_proxy_jwt_valid_total Requests whose end-user token verified.\n"
			       "# TYPE zt_proxy_jwt_valid_total counter\n");

	for (size_t i = 0; i < px->cfg.nlisteners && !r; i++)
		if (px->cfg.listeners[i].http && px->cfg.listeners[i].inbound)
			r = zt_buf_appendf(out, e, "zt_proxy_jwt_valid_total{listener=\"%s\"} %llu\n",
					   px->cfg.listeners[i].name,
					   (unsigned long long)atomic_load(&px->stats[i].jwt_valid));
	if (!r)
		r = zt_buf_appendf(out, e,
				   "# HELP zt_proxy_jwt_refused_total Requests refused (401) for their end-user token, by reason.\n"
				   "# TYPE zt_proxy_jwt_refused_total counter\n");
	for (size_t i = 0; i < px->cfg.nlisteners && !r; i++)
		for (size_t k = 0; k < PX_JWT_NREASONS && !r; k++) {
			uint64_t v = atomic_load(&px->stats[i].jwt_refused[k]);

			if (v)
				r = zt_buf_appendf(out, e,
						   "zt_proxy_jwt_refused_total{listener=\"%s\",reason=\"%s\"} %llu\n",
						   px->cfg.listeners[i].name, reasons[k], (unsigned long long)v);
		}
	if (!r)
		r = px_jwks_metrics(px->jwks, out, e);
	return r;
}

/* HTTP listeners: requests by status class and decision, and a latency histogram */
static int http_metrics(zt_proxy *px, zt_buf *out, zt_err *e)
{
	static const char *const classes[6] = { "none", "1xx", "2xx", "3xx", "4xx", "5xx" };
	static const char *const decisions[3] = { "none", "deny", "allow" };
	int r = zt_buf_appendf(out, e,
			       "# HELP zt_proxy_http_requests_total HTTP requests, by status class and policy decision.\n"
			       "# TYPE zt_proxy_http_requests_total counter\n");

	for (size_t i = 0; i < px->cfg.nlisteners && !r; i++) {
		struct px_stats *st = &px->stats[i];

		if (!px->cfg.listeners[i].http)
			continue;
		for (size_t k = 0; k < 6 && !r; k++)
			for (size_t d = 0; d < 3 && !r; d++) {
				uint64_t v = atomic_load_explicit(&st->http_requests[k][d], memory_order_relaxed);

				if (v)
					r = zt_buf_appendf(out, e,
							   "zt_proxy_http_requests_total{listener=\"%s\",code=\"%s\",decision=\"%s\"} %llu\n",
							   px->cfg.listeners[i].name, classes[k],
							   decisions[d], (unsigned long long)v);
			}
	}
	if (!r)
		r = zt_buf_appendf(out, e,
				   "# HELP zt_proxy_http_rate_limited_total HTTP requests refused by rateLimits (429).\n"
				   "# TYPE zt_proxy_http_rate_limited_total counter\n");
	for (size_t i = 0; i < px->cfg.nlisteners && !r; i++)
		if (px->cfg.listeners[i].http)
			r = zt_buf_appendf(out, e, "zt_proxy_http_rate_limited_total{listener=\"%s\"} %llu\n",
					   px->cfg.listeners[i].name,
					   (unsigned long long)atomic_load(&px->stats[i].http_rate_limited));
	if (!r)
		r = jwt_metrics(px, out, e);
	if (!r)
		r = zt_buf_appendf(out, e,
				   "# HELP zt_proxy_http_request_duration_seconds HTTP request durations, first byte of the request to the end of the response.\n"
				   "# TYPE zt_proxy_http_request_duration_seconds histogram\n");
	for (size_t i = 0; i < px->cfg.nlisteners && !r; i++) {
		struct px_stats *st = &px->stats[i];
		const char *name = px->cfg.listeners[i].name;
		uint64_t cum = 0;

		if (!px->cfg.listeners[i].http)
			continue;
		for (size_t b = 0; b <= PX_LAT_BUCKETS && !r; b++) {
			cum += atomic_load_explicit(&st->http_latency[b], memory_order_relaxed);
			if (b < PX_LAT_BUCKETS)
				r = zt_buf_appendf(out, e,
						   "zt_proxy_http_request_duration_seconds_bucket{listener=\"%s\",le=\"%g\"} %llu\n",
						   name, (double)px_lat_bounds_ms[b] / 1000.0, (unsigned long long)cum);
			else
				r = zt_buf_appendf(out, e,
						   "zt_proxy_http_request_duration_seconds_bucket{listener=\"%s\",le=\"+Inf\"} %llu\n"
						   "zt_proxy_http_request_duration_seconds_sum{listener=\"%s\"} %.3f\n"
						   "zt_proxy_http_request_duration_seconds_count{listener=\"%s\"} %llu\n",
						   name, (unsigned long long)cum, name,
						   (double)atomic_load_explicit(&st->http_latency_ms_sum, memory_order_relaxed) / 1000.0,
						   name, (unsigned long long)cum);
		}
	}
	return r;
}

/* Prometheus text exposition format 0.0.4 */
int px_metrics(zt_proxy *px, zt_buf *out, zt_err *e)
{
	static const struct {
		const char *name, *type, *help;
		size_t off;
	} m[] = {
#define M(n, t, h, f) { "zt_proxy_" n, t, h, offsetof(struct px_stats, f) }
		M("connections_total", "counter", "Connections accepted.", accepted),
		M("connections_active", "gauge", "Connections open now.", active),
		M("connections_refused_total", "counter", "Connections refused at maxConnections.", refused_cap),
		M("connections_refused_identity_total", "counter", "Connections refused at maxConnectionsPerIdentity.", refused_identity),
		M("decisions_allow_total", "counter", "Connections allowed (inbound: by policy; outbound: upstream verified).", allowed),
		M("decisions_deny_total", "counter", "Inbound connections denied by policy.", denied),
		M("bytes_in_total", "counter", "Bytes from the accepting side to the upstream side.", bytes_in),
		M("bytes_out_total", "counter", "Bytes from the upstream side to the accepting side.", bytes_out),
#undef M
	};
	int r = 0;

	for (size_t k = 0; k < sizeof m / sizeof m[0] && !r; k++) {
		r = zt_buf_appendf(out, e, "# HELP %s %s\n# TYPE %s %s\n", m[k].name, m[k].help,
				   m[k].name, m[k].type);
		for (size_t i = 0; i < px->cfg.nlisteners && !r; i++) {
			struct px_stats *st = &px->stats[i];
			uint64_t v = atomic_load_explicit((_Atomic uint64_t *)((char *)st + m[k].off),
							  memory_order_relaxed);
			r = zt_buf_appendf(out, e, "%s{listener=\"%s\"} %llu\n", m[k].name,
					   px->cfg.listeners[i].name, (unsigned long long)v);
		}
	}
	if (!r)
		r = zt_buf_appendf(out, e,
				   "# HELP zt_proxy_workers Event-loop threads.\n# TYPE zt_proxy_workers gauge\nzt_proxy_workers %zu\n",
				   px->cfg.workers);
	if (!r)
		r = http_metrics(px, out, e);
	if (!r && px->cfg.policy_server[0])
		r = zt_buf_appendf(
			out, e,
			"# HELP zt_proxy_policy_server_connected 1 while the policy server answers.\n"
			"# TYPE zt_proxy_policy_server_connected gauge\nzt_proxy_policy_server_connected %d\n"
			"# HELP zt_proxy_policy_revision The server revision of the policy in force (0: none yet).\n"
			"# TYPE zt_proxy_policy_revision gauge\nzt_proxy_policy_revision %llu\n"
			"# HELP zt_proxy_policy_updates_total Policies from the server put in force.\n"
			"# TYPE zt_proxy_policy_updates_total counter\nzt_proxy_policy_updates_total %llu\n"
			"# HELP zt_proxy_policy_refused_total Policies from the server that did not compile.\n"
			"# TYPE zt_proxy_policy_refused_total counter\nzt_proxy_policy_refused_total %llu\n"
			"# HELP zt_proxy_policy_server_errors_total Failed watches (unreachable, refused, bad answer).\n"
			"# TYPE zt_proxy_policy_server_errors_total counter\nzt_proxy_policy_server_errors_total %llu\n",
			atomic_load(&px->policy_connected),
			(unsigned long long)atomic_load(&px->policy_revision),
			(unsigned long long)atomic_load(&px->policy_updates),
			(unsigned long long)atomic_load(&px->policy_refused),
			(unsigned long long)atomic_load(&px->policy_errors));
	if (!r)
		r = zt_buf_appendf(out, e,
				   "# HELP zt_proxy_handshake_failures_total Handshakes that failed, by reason (SVID rule, no-certificate, timeout, tls).\n"
				   "# TYPE zt_proxy_handshake_failures_total counter\n");
	pthread_mutex_lock(&px->mu);
	for (size_t i = 0; i < px->cfg.nlisteners && !r; i++)
		for (size_t f = 0; f < px->stats[i].nfailures && !r; f++)
			r = zt_buf_appendf(out, e,
					   "zt_proxy_handshake_failures_total{listener=\"%s\",reason=\"%s\"} %llu\n",
					   px->cfg.listeners[i].name, px->stats[i].failures[f].reason,
					   (unsigned long long)px->stats[i].failures[f].n);
	pthread_mutex_unlock(&px->mu);
	return r;
}

/* ---- workers ---- */

static void close_listeners(struct px_worker *w)
{
	for (size_t i = 0; i < PX_MAX_LISTENERS; i++)
		if (w->lfd[i] >= 0) {
			if (w->loop)
				zt_loop_del(w->loop, w->lfd[i]);
			close(w->lfd[i]);
			w->lfd[i] = -1;
		}
	w->listening = 0;
}

/* Called on the worker's thread when its last connection closed. */
void px_worker_idle(struct px_worker *w)
{
	if (atomic_load(&w->px->stopping))
		zt_loop_stop(w->loop);
}

/* The main thread changed px->stopping: 1 stop accepting, 2 stop now. */
static void on_worker_wake(zt_loop *loop, void *arg)
{
	struct px_worker *w = arg;
	int stopping = atomic_load(&w->px->stopping);

	if (stopping && w->listening)
		close_listeners(w);
	if (stopping == 1) {
		/*
		 * A drain waits for exchanges in flight, not for kept-alive
		 * connections between them: those close now (and the ones still
		 * busy close after their exchange), and so do the idle upstream
		 * connections, which a peer proxy's drain would wait for.
		 */
		px_pool_close_all(w);
		for (struct conn *c = w->conns, *next; c; c = next) {
			next = c->next;
			if (c->state == ST_HTTP && px_http_idle(c))
				px_conn_close(c, "closed: draining");
		}
	}
	if (stopping == 2 || (stopping && w->nconns == 0))
		zt_loop_stop(loop);
}

static void *worker_main(void *arg)
{
	struct px_worker *w = arg;
	zt_err e;

	if (zt_loop_run(w->loop, &e) != 0)
		zt_log(ZT_LOG_ERROR, "worker loop failed", "error", e.msg, NULL);
	close_listeners(w);
	/* what the drain deadline (or a second signal) left open */
	px_close_all(w, "closed at shutdown");
	px_pool_close_all(w);       /* its idle upstream connections */
	zt_crypto_thread_cleanup(); /* this thread's prepared signature contexts */
	atomic_store(&w->done, 1);
	zt_loop_wake(w->px->loop);
	return NULL;
}

static void wake_workers(zt_proxy *px)
{
	for (size_t i = 0; i < px->cfg.workers; i++)
		if (px->workers[i].loop)
			zt_loop_wake(px->workers[i].loop);
}

static int all_done(zt_proxy *px)
{
	for (size_t i = 0; i < px->cfg.workers; i++)
		if (px->workers[i].started && !atomic_load(&px->workers[i].done))
			return 0;
	return 1;
}

/* A listening socket of one worker: SO_REUSEPORT lets each worker have its own. */
static int listen_on(const struct px_listener *l, zt_err *e)
{
	int one = 1, fd = socket(l->listen.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0 ||
	    bind(fd, (const struct sockaddr *)&l->listen, l->listen_len) != 0 || listen(fd, 1024) != 0) {
		zt_err_set(e, ZT_EIO, "listener %s: cannot listen: %s", l->name, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

static int worker_open(zt_proxy *px, struct px_worker *w, size_t idx, zt_err *e)
{
	int r;

	w->px = px;
	w->idx = idx;
	if (!(w->loop = zt_loop_new(0, e)))
		return -ZT_EIO;
	for (size_t i = 0; i < px->cfg.nlisteners; i++) {
		struct px_listener *l = &px->cfg.listeners[i];

		if ((w->lfd[i] = listen_on(l, e)) < 0)
			return -ZT_EIO;
		w->acc[i] = (struct px_acceptor){ w, l };
		if ((r = zt_loop_add(w->loop, w->lfd[i], ZT_EV_READ, px_on_accept, &w->acc[i], e)) != 0)
			return r;
	}
	w->listening = 1;
	zt_loop_set_wake(w->loop, on_worker_wake, w);
	return 0;
}

/* ---- the main thread: signals, file watch, admin, drain ---- */

static void on_drain_deadline(zt_loop *loop, void *arg)
{
	zt_proxy *px = arg;
	char n[32];

	(void)loop;
	snprintf(n, sizeof n, "%zu", atomic_load(&px->nconns));
	zt_log(ZT_LOG_WARN, "drain deadline reached; closing the connections still open", "open", n,
	       NULL);
	atomic_store(&px->stopping, 2);
	wake_workers(px);
}

static void on_wake(zt_loop *loop, void *arg)
{
	zt_proxy *px = arg;

	if (atomic_load(&px->stopping) && all_done(px)) {
		zt_loop_stop(loop);
		return;
	}
	if (!got_signal)
		return;
	if (got_signal == SIGHUP) {
		got_signal = 0;
		zt_log(ZT_LOG_INFO, "SIGHUP: reloading identity and policy", NULL);
		reload(px, 1);
		return;
	}
	got_signal = 0;
	if (atomic_load(&px->stopping)) { /* a second signal: stop now */
		atomic_store(&px->stopping, 2);
		wake_workers(px);
		return;
	}
	/* stop accepting; the connections open now finish (or the next signal) */
	zt_log(ZT_LOG_INFO, "stopping: listeners closed, waiting for open connections (drainTimeout)", NULL);
	atomic_store(&px->stopping, 1);
	wake_workers(px);
	zt_timer_init(&px->drain, on_drain_deadline, px);
	if (zt_timer_set(loop, &px->drain, (uint64_t)px->cfg.drain_timeout * 1000u) != 0)
		on_drain_deadline(loop, px);
}

int zt_proxy_run(zt_proxy *px, zt_err *e)
{
	struct sigaction sa;
	char n[32];
	int r;

	if (!(px->loop = zt_loop_new(0, e)))
		return -ZT_EIO;
	for (size_t i = 0; i < px->cfg.workers; i++)
		if ((r = worker_open(px, &px->workers[i], i, e)) != 0)
			return r;
	signal(SIGPIPE, SIG_IGN);
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	signal_loop = px->loop;
	zt_loop_set_wake(px->loop, on_wake, px);
	if ((r = px_admin_open(px, px->loop, &px->cfg, &px->admin_fd, e)) != 0)
		return r;
	zt_timer_init(&px->watch, on_watch, px);
	if ((r = zt_timer_set(px->loop, &px->watch, WATCH_MS)) != 0)
		return zt_err_set(e, ZT_ENOMEM, "cannot arm the file watch");
	if ((r = px_health_start(px, px->loop, e)) != 0)
		return r;
	/* the key sets the policy names, tried once before the first request
	 * (bounded: a provider that is down does not stop the start) */
	if ((r = px_jwks_start(px->jwks, (uint64_t)(2 * px->cfg.jwt.fetch_timeout + 1) * 1000u, e)) != 0)
		return r;
	/* signals go to the main thread: workers start with them blocked */
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	for (size_t i = 0; i < px->cfg.workers; i++) {
		struct px_worker *w = &px->workers[i];

		if (pthread_create(&w->tid, NULL, worker_main, w) != 0) {
			r = zt_err_set(e, ZT_EIO, "cannot start worker thread %zu", i);
			break;
		}
		w->started = 1;
	}
	if (r == 0)
		r = px_watch_start(px, e);
	if (r == 0)
		r = px_agentid_start(px, e);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	snprintf(n, sizeof n, "%zu", px->cfg.workers);
	if (r == 0) {
		zt_log(ZT_LOG_INFO, "zt proxy running", "identity", px->snap->st->own_id, "workers", n,
		       NULL);
		r = zt_loop_run(px->loop, e);
	}
	signal_loop = NULL;
	atomic_store(&px->stopping, 2);
	wake_workers(px);
	for (size_t i = 0; i < px->cfg.workers; i++)
		if (px->workers[i].started) {
			pthread_join(px->workers[i].tid, NULL);
			px->workers[i].started = 0;
		}
	return r;
}
