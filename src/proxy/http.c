/*
 * proxy/http.c: the HTTP/1.1 layer of `protocol: http` listeners.
 *
 * A connection carries exchanges one at a time, in order: the request head
 * is read whole and parsed strictly (net/http1.c), its path normalized the
 * way the policy module matches it, and the request decided by the policy
 * engine (inbound listeners) before a byte of it reaches the upstream. The
 * head sent on is written afresh from the parsed fields: hop-by-hop fields
 * and any X-Forwarded-Client-Cert from outside are dropped, the normalized
 * path replaces the one received (so the service sees exactly what policy
 * judged), and the proxy adds X-Request-Id and, inbound, its own XFCC.
 * Bodies are streamed, never buffered whole: Content-Length bodies byte
 * for byte, chunked bodies through a decoder that finds their exact end,
 * so pipelined bytes behind a message are never sent on as part of it.
 * The next request is read only once the response to this one is complete
 * (pipelining is answered in order).
 *
 * Each request picks its upstream address (balance.c) and takes an idle
 * connection to it from the worker's pool (pool.c) or opens one; when the
 * exchange ends, a connection the upstream keeps goes back to the pool.
 * Deadlines: the head must arrive within
 * headerTimeout of its first byte, the body within bodyTimeout of the
 * head, the response head within responseTimeout of the request's end;
 * a connection doing nothing is closed at idleTimeout (docs/proxy.md).
 */
#include "proxy_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>

enum rq { RQ_HEAD, RQ_BODY, RQ_DONE };
enum rs { RS_IDLE, RS_HEAD, RS_BODY, RS_DONE };
enum us { U_NONE, U_CONNECTING, U_HANDSHAKE, U_READY };

/* bytes waiting to be written, in a bounded buffer */
struct q {
	zt_buf b;
	size_t off;
};


struct px_http {
	struct buf cin, uin; /* read, not yet used */
	struct q uout, cout; /* to write */
	enum rq rq;
	enum rs rs;
	enum us us;
	unsigned u_want;     /* what the upstream handshake waits for */
	int closing;         /* close once cout is written */
	int in_flight;       /* an exchange started and not yet logged */
	/* the exchange in flight */
	char id[132];        /* ours (36) or a peer's, up to 128 */
	char method[32];
	char path[512];      /* normalized, for the log (cut at 511) */
	char host[256];
	char upstream[2100]; /* outbound: the verified ID of the upstream */
	unsigned method_flags;
	int version;         /* the client's: 10 or 11 */
	int keep;            /* the client connection outlives this exchange */
	int u_keep;          /* the upstream connection outlives it */
	int discard;         /* the request body is read and dropped (denied) */
	int dechunk;         /* HTTP/1.0 client: chunked payload sent bare */
	int status;          /* of the response begun towards the client; 0: none */
	int decided;         /* 1 allow, 0 deny, -1 not decided (refused before) */
	int out_target;      /* the target counting this request in flight, -1 none */
	int last_target;     /* where this request went last (for the log), -1 none */
	int retried;         /* this request was sent again after a failure */
	zt_buf replay;       /* the head sent, while a retry is possible */
	char policy[256];
	char audit[256], dry_run[256];
	char principal[256]; /* the verified token's "iss/sub" (cut), for the log */
	enum zt_http1_framing req_framing, resp_framing;
	uint64_t req_left, resp_left, req_body, resp_bytes;
	zt_http1_chunked req_chunk, resp_chunk;
	size_t scanned_req, scanned_resp;
	uint64_t t_start, dl_head, dl_body, dl_resp, dl_connect, last_io;
};

/*
 * A parsed head is only needed while take_request or take_response_head
 * runs, on the worker's thread: one per thread, not one per connection
 * (each holds 128 field slots).
 */
static _Thread_local zt_http1_request scratch_req;
static _Thread_local zt_http1_response scratch_resp;

/* ---- small helpers ---- */

static size_t q_len(const struct q *q)
{
	return q->b.len - q->off;
}

static void q_consume(struct q *q, size_t n)
{
	q->off += n;
	if (q->off == q->b.len)
		q->off = q->b.len = 0;
}

/* Room to append n bytes without passing the cap; compacts first. */
static int q_append(struct q *q, const void *p, size_t n, zt_err *e)
{
	if (q->off && q->off == q->b.len)
		q->off = q->b.len = 0;
	if (q->off > q->b.cap / 2) {
		memmove(q->b.p, q->b.p + q->off, q->b.len - q->off);
		q->b.len -= q->off;
		q->off = 0;
	}
	return zt_buf_append(&q->b, p, n, e);
}

static uint64_t now_ms(struct conn *c)
{
	return zt_loop_now_ms(c->w->loop);
}

static void copy_cut(char *dst, size_t dstsz, const char *src, size_t n)
{
	if (n >= dstsz)
		n = dstsz - 1;
	memcpy(dst, src, n);
	dst[n] = '\0';
}

static void http_limits(const struct conn *c, zt_http1_limits *lim)
{
	zt_http1_limits_default(lim);
	lim->max_head = c->px->cfg.http.max_head;
	lim->max_fields = c->px->cfg.http.max_fields;
}

/* ---- the log line and the counters of one exchange ---- */


static void log_exchange(struct conn *c, const char *end)
{
	struct px_http *h = c->http;
	const struct px_listener *l = c->ls;
	struct px_stats *st = l->stats;
	uint64_t dur = now_ms(c) - h->t_start;
	char status[8], dur_s[24], rqb[24], rsb[24], worker[16];
	size_t cls = (size_t)(h->status / 100);

	enum zt_log_level lvl = h->decided == 0 || h->status >= 500 || h->status == 0 ? ZT_LOG_WARN
										     : ZT_LOG_INFO;

	if (!h->in_flight)
		return;
	h->in_flight = 0;
	if (zt_log_enabled(lvl)) {
		snprintf(status, sizeof status, "%d", h->status);
		snprintf(dur_s, sizeof dur_s, "%llu", (unsigned long long)dur);
		snprintf(rqb, sizeof rqb, "%llu", (unsigned long long)h->req_body);
		snprintf(rsb, sizeof rsb, "%llu", (unsigned long long)h->resp_bytes);
		snprintf(worker, sizeof worker, "%zu", c->w->idx);
		zt_log(lvl, "request", "request_id", h->id, "listener", l->name, "direction",
		       l->edge ? "edge" : l->inbound ? "inbound" : "outbound", "source",
		       l->inbound ? c->peer : c->snap->st->own_id, "source_ip", c->src, "method",
		       h->method, "path", h->path, "host", h->host, "status", status, "decision",
		       h->decided > 0 ? "allow" : h->decided == 0 ? "deny" : "none", "policy", h->policy,
		       "audit", h->audit, "dry_run", h->dry_run, "request_principal", h->principal,
		       "upstream",
		       !l->inbound && h->upstream[0] ? h->upstream
		       : h->last_target >= 0	      ? l->targets[h->last_target].text
						      : l->upstream_text,
		       "request_bytes", rqb, "response_bytes", rsb, "duration_ms", dur_s, "worker",
		       worker, "end", end, NULL);
	}
	if (cls > 5)
		cls = 0;
	px_count(&st->http_requests[cls][h->decided + 1], 1);
	size_t b = 0;

	while (b < PX_LAT_BUCKETS && dur > px_lat_bounds_ms[b])
		b++;
	px_count(&st->http_latency[b], 1);
	px_count(&st->http_latency_ms_sum, dur);
}

/* ---- responses the proxy writes itself ---- */

static void upstream_drop(struct conn *c);
static void release_target(struct conn *c);

/*
 * An error answered by the proxy: the exchange with the upstream, if any,
 * is abandoned, and the connection closes once the answer is written.
 */
static void answer_error(struct conn *c, int status, const char *detail)
{
	struct px_http *h = c->http;
	zt_err e;

	h->closing = 1;
	if (h->us != U_NONE)
		upstream_drop(c);
	release_target(c);
	h->rs = RS_IDLE;
	if (h->status) /* a response is under way: all we can do is stop */
		return;
	h->status = status;
	if (zt_http1_write_error(&h->cout.b, status, detail, h->id[0] ? h->id : NULL, &e) != 0)
		zt_log(ZT_LOG_ERROR, "cannot write an error response", "error", e.msg, NULL);
}

/*
 * A refusal the connection survives (401 bad token, 403 denied, 429 rate
 * limited): the request's body, if any, is read and dropped, and the
 * connection stays open when the client keeps it. One more header may be
 * added (xname NULL: none): Retry-After, WWW-Authenticate.
 */
static void answer_refusal(struct conn *c, int status, const char *why, const char *xname,
			   const char *xvalue)
{
	struct px_http *h = c->http;
	const char *reason = zt_http1_reason(status);
	char body[256], len[16];
	zt_http1_field extra[5];
	size_t n = 0;
	zt_http1_out out = { 0 };
	zt_err e;

	snprintf(body, sizeof body, "%s: %s (request %s)\n", reason, why, h->id);
	snprintf(len, sizeof len, "%zu", strlen(body));
	extra[n++] = (zt_http1_field){ "Content-Type", 12, "text/plain", 10 };
	extra[n++] = (zt_http1_field){ "Content-Length", 14, len, strlen(len) };
	extra[n++] = (zt_http1_field){ "X-Request-Id", 12, h->id, strlen(h->id) };
	if (xname)
		extra[n++] = (zt_http1_field){ xname, strlen(xname), xvalue, strlen(xvalue) };
	if (!h->keep)
		extra[n++] = (zt_http1_field){ "Connection", 10, "close", 5 };
	else if (h->version == 10)
		extra[n++] = (zt_http1_field){ "Connection", 10, "keep-alive", 10 };
	out.extra = extra;
	out.nextra = n;
	h->status = status;
	h->discard = 1;
	if (zt_http1_write_response(&h->cout.b, status, reason, strlen(reason), &out, &e) != 0 ||
	    q_append(&h->cout, body, strlen(body), &e) != 0) {
		zt_log(ZT_LOG_ERROR, "cannot write a response", "error", e.msg, NULL);
		h->closing = 1;
		return;
	}
	h->rs = RS_DONE;
	if (!h->keep)
		h->closing = 1;
}

/* rateLimits: 0, or -1 when a limit refused the request (answered 429) */
static int rate_limit(struct conn *c, const char *path, size_t path_len)
{
	struct px_listener *l = c->ls;

	for (size_t k = 0; k < l->nrates; k++) {
		struct px_rate_rule *rr = &l->rates[k];
		const char *key = rr->key == PX_RL_SOURCE ? c->peer : rr->key == PX_RL_IP ? c->src : "";
		uint64_t retry_ms;
		char ra[24];

		if (rr->prefix_len && (path_len < rr->prefix_len || memcmp(path, rr->prefix, rr->prefix_len)))
			continue;
		if (px_rl_take(rr->rl, key, strlen(key), now_ms(c), &retry_ms))
			continue;
		/* Retry-After in whole seconds (RFC 9110 10.2.3), never 0 */
		snprintf(ra, sizeof ra, "%llu", (unsigned long long)((retry_ms + 999) / 1000 ? (retry_ms + 999) / 1000 : 1));
		px_count(&l->stats->http_rate_limited, 1);
		answer_refusal(c, 429, "rate limit reached", "Retry-After", ra);
		return -1;
	}
	return 0;
}

/* ---- requests ---- */

static int idempotent(const char *m, size_t n)
{
	static const char *const methods[] = { "GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE", NULL };

	for (size_t i = 0; methods[i]; i++)
		if (strlen(methods[i]) == n && memcmp(methods[i], m, n) == 0)
			return 1;
	return 0;
}

static void list_matches(char *out, size_t outsz, const zt_policy_match *m, size_t n,
			 const int *effects)
{
	size_t used = 0;

	out[0] = '\0';
	for (size_t i = 0; i < n && used < outsz; i++) {
		int k = snprintf(out + used, outsz - used, "%s%s%s", i ? "," : "", m[i].policy,
				 effects ? (effects[i] == ZT_POLICY_ALLOW ? ":allow" : ":deny") : "");
		if (k < 0)
			break;
		used += (size_t)k;
	}
}

static int decide_request(struct conn *c, const zt_http1_request *rq, const char *path,
			  size_t path_len, const struct px_authn *an)
{
	struct px_http *h = c->http;
	zt_header hdrs[ZT_HTTP1_MAX_FIELDS];
	zt_policy_request req = { 0 };
	zt_policy_decision d;

	for (size_t i = 0; i < rq->nfields; i++)
		hdrs[i] = (zt_header){ { rq->fields[i].name, rq->fields[i].name_len },
				       { rq->fields[i].value, rq->fields[i].value_len } };
	req.source_principal = (zt_str){ c->peer, strlen(c->peer) };
	req.source_ip = (zt_str){ c->src, strlen(c->src) };
	req.dest_service = (zt_str){ c->ls->service, strlen(c->ls->service) };
	req.dest_port = c->ls->port;
	req.has_http = 1;
	req.method = (zt_str){ rq->method, rq->method_len };
	req.path = (zt_str){ path, path_len };
	req.host = (zt_str){ h->host, strlen(h->host) };
	req.headers = hdrs;
	req.nheaders = rq->nfields;
	px_authn_request(an, &req);
	zt_policy_decide(c->snap->policy, &req, &d);
	snprintf(h->policy, sizeof h->policy, "%s", d.by.policy ? d.by.policy : "");
	list_matches(h->audit, sizeof h->audit, d.audit, d.naudit, NULL);
	list_matches(h->dry_run, sizeof h->dry_run, d.dry_run, d.ndry_run, d.dry_run_effect);
	h->decided = d.effect == ZT_POLICY_ALLOW;
	return h->decided ? 0 : -1;
}

static void release_target(struct conn *c)
{
	struct px_http *h = c->http;

	if (h->out_target >= 0)
		px_target_release(c->ls, h->out_target);
	h->out_target = -1;
}

/*
 * An upstream connection for the request: the one open when its target
 * may take another request, else a new one to a target the balancer
 * picks (not `avoid`, when another will do). The request is counted in
 * flight on its target. 0, -1 when no target may take it (maxRequests),
 * -2 when the socket could not be opened.
 */
static int upstream_start(struct conn *c, int avoid)
{
	struct px_http *h = c->http;
	struct px_listener *l = c->ls;
	int t = -1;

	release_target(c);
	/* the place in flight is taken before anything else, in one atomic
	 * step, so workers racing for the last one cannot both get it */
	if (h->us != U_NONE && px_target_reserve(l, c->target) == 0) {
		t = c->target;
	} else {
		if (h->us != U_NONE)
			upstream_drop(c);
		for (size_t tries = 0; tries <= l->ntargets && t < 0; tries++) {
			if ((t = px_pick_target(l, avoid, now_ms(c))) < 0)
				return -1;
			if (px_target_reserve(l, t) != 0)
				t = -1; /* taken meanwhile by another worker: pick again */
		}
		if (t < 0)
			return -1;
		if (px_pool_take(c, t) == 0) { /* an idle connection of this worker: no handshake */
			h->us = U_READY;
			c->u.readable = c->u.writable = 1;
			if (!l->inbound)
				c->resumed = 2; /* its TLS side: the log says "pooled" */
			if (c->u.ssl && zt_tls_peer_id(c->u.ssl))
				snprintf(h->upstream, sizeof h->upstream, "%s", zt_tls_peer_id(c->u.ssl));
			h->out_target = h->last_target = t;
			return 0;
		}
		if (px_upstream_open(c, t) != 0) {
			px_target_release(l, t);
			px_target_failed(l, t, now_ms(c));
			px_side_close(c->w->loop, &c->u);
			return -2;
		}
		h->us = U_CONNECTING;
		h->dl_connect = now_ms(c) + (uint64_t)c->px->cfg.connect_timeout * 1000u;
	}
	h->out_target = h->last_target = t;
	return 0;
}

static void upstream_drop(struct conn *c)
{
	struct px_http *h = c->http;

	px_side_close(c->w->loop, &c->u);
	h->us = U_NONE;
	h->uin.off = h->uin.len = 0;
	h->uout.off = h->uout.b.len = 0;
	h->scanned_resp = 0;
}

/*
 * The head of a new request is in cin: parse, normalize, decide, and
 * queue it for the upstream. Returns 1 when it made progress, 0 when the
 * head is not all there yet.
 */
static int take_request(struct conn *c)
{
	struct px_http *h = c->http;
	const struct px_listener *l = c->ls;
	zt_http1_request *rq;
	zt_http1_limits lim;
	char norm[8193];
	size_t path_len = 0;
	const char *target;
	size_t target_len;
	struct px_authn an;
	zt_err e;
	int r;

	if (!h->cin.len)
		return 0;
	memset(&an, 0, sizeof an);
	if (!h->dl_head)
		h->dl_head = now_ms(c) + (uint64_t)c->px->cfg.http.header_timeout * 1000u;
	rq = &scratch_req;
	http_limits(c, &lim);
	lim.max_line = sizeof norm - 1;
	r = zt_http1_parse_request(h->cin.p + h->cin.off, h->cin.len, &lim, &h->scanned_req, rq, &e);
	if (r == ZT_HTTP1_INCOMPLETE) {
		return 0;
	}
	/* a new exchange: it is logged once, whatever becomes of it */
	memset(h->method, 0, sizeof h->method);
	h->path[0] = h->host[0] = h->upstream[0] = h->policy[0] = h->audit[0] = h->dry_run[0] = '\0';
	h->principal[0] = '\0';
	h->status = 0;
	h->decided = -1;
	h->discard = h->dechunk = h->retried = 0;
	h->last_target = -1;
	h->replay.len = 0;
	h->req_body = h->resp_bytes = 0;
	h->t_start = now_ms(c);
	h->dl_head = h->dl_resp = 0;
	h->in_flight = 1;
	h->id[0] = '\0';
	if (r != 0) {
		zt_http1_request_id_new(h->id, sizeof h->id);
		snprintf(h->method, sizeof h->method, "-");
		answer_error(c, rq->err_status ? rq->err_status : 400, e.msg);
		zt_log(ZT_LOG_WARN, "request refused", "request_id", h->id, "listener", l->name,
		       "source_ip", c->src, "status", zt_http1_reason(h->status), "rule", e.rule,
		       "error", e.msg, NULL);
		return 1;
	}
	copy_cut(h->method, sizeof h->method, rq->method, rq->method_len);
	h->method_flags = rq->method_flags;
	h->version = rq->version;
	/* while draining, this exchange is the connection's last */
	h->keep = rq->keep_alive && !atomic_load(&c->px->stopping);
	{
		const zt_http1_field *f = zt_http1_field_get(rq->fields, rq->nfields, "x-request-id", NULL);

		/* an ID from a verified peer is kept; the internet's is not trusted */
		if (f && !l->edge && zt_http1_request_id_ok(f->value, f->value_len))
			copy_cut(h->id, sizeof h->id, f->value, f->value_len);
		else
			zt_http1_request_id_new(h->id, sizeof h->id);
	}
	if (rq->authority)
		copy_cut(h->host, sizeof h->host, rq->authority, rq->authority_len);
	else if (rq->host)
		copy_cut(h->host, sizeof h->host, rq->host, rq->host_len);
	/* the path policy judges is the path the service gets */
	if (rq->form == ZT_HTTP1_ASTERISK_FORM) {
		snprintf(norm, sizeof norm, "*");
		path_len = 1;
	} else if (rq->form == ZT_HTTP1_AUTHORITY_FORM) {
		copy_cut(h->path, sizeof h->path, rq->target, rq->target_len);
		answer_error(c, 501, "CONNECT tunnels are not offered by this listener");
		goto consumed;
	} else if (rq->path_len == 0) { /* absolute-form without a path */
		snprintf(norm, sizeof norm, "/");
		path_len = 1;
	} else if (zt_path_normalize(rq->path, rq->path_len, norm, sizeof norm, &path_len, &e) != 0) {
		copy_cut(h->path, sizeof h->path, rq->path, rq->path_len);
		answer_error(c, 400, e.msg);
		goto consumed;
	}
	copy_cut(h->path, sizeof h->path, norm, strlen(norm));
	target = norm;
	target_len = strlen(norm);
	h->req_framing = rq->framing;
	h->req_left = rq->framing == ZT_HTTP1_BODY_LENGTH ? rq->content_length : 0;
	if (rq->framing == ZT_HTTP1_BODY_CHUNKED)
		zt_http1_chunked_init(&h->req_chunk, &lim, 0);
	if (rq->framing == ZT_HTTP1_BODY_LENGTH && rq->content_length > c->px->cfg.http.max_body) {
		answer_error(c, 413, "the body is larger than http.maxBodyBytes");
		goto consumed;
	}
	if (rate_limit(c, norm, path_len) != 0)
		goto advance;
	if (l->inbound && c->snap->policy) {
		/* end-user tokens first: a bad one never reaches the policy */
		r = px_authn_check(c, rq, norm, path_len, &an);
		if (an.nrules) /* a token in the query is never logged */
			px_authn_log_target(&an, norm, strlen(norm), h->path, sizeof h->path);
		if (r != 0) {
			zt_log(ZT_LOG_WARN, "token refused", "request_id", h->id, "listener", l->name,
			       "source", c->peer, "source_ip", c->src, "error", an.why, NULL);
			answer_refusal(c, 401, "invalid token", "WWW-Authenticate",
				       "Bearer error=\"invalid_token\"");
			goto advance;
		}
		if (an.principal)
			copy_cut(h->principal, sizeof h->principal, an.principal, strlen(an.principal));
	}
	if (l->inbound && decide_request(c, rq, norm, path_len, &an) != 0) {
		answer_refusal(c, 403, "denied by policy", NULL, NULL);
		goto advance;
	}
	if (l->inbound)
		h->decided = 1;
	if ((r = upstream_start(c, -1)) != 0) {
		answer_error(c, 503, r == -1 ? "every upstream is at its maxRequests" : "cannot connect to the upstream");
		goto consumed;
	}
	{
		/* framing is written by us, canonical: Content-Length digits as we
		 * read them, or chunked (hop-by-hop, dropped with the rest) */
		static const char *const drop[] = { "x-forwarded-client-cert", "x-request-id",
						    "content-length", NULL };
		static const char *const drop_host[] = { "x-forwarded-client-cert", "x-request-id",
							 "content-length", "host", NULL };
		char clen[24];
		char xfcc[2 * 2100 + 128];
		zt_http1_field extra[6 + 1 + 32];
		zt_http1_field *fields = NULL;
		size_t nfields = rq->nfields;
		zt_http1_out out = { 0 };
		size_t n = 0;

		if (rq->authority) /* absolute-form: its authority is the host (RFC 9112 3.2.2) */
			extra[n++] = (zt_http1_field){ "Host", 4, rq->authority, rq->authority_len };
		else if (!rq->host) /* HTTP/1.0 without Host: HTTP/1.1 upstreams need one */
			extra[n++] = (zt_http1_field){ "Host", 4, l->upstream_text, strlen(l->upstream_text) };
		extra[n++] = (zt_http1_field){ "X-Request-Id", 12, h->id, strlen(h->id) };
		if (l->inbound && !l->edge) {
			/* Envoy's format: the proxy's own ID, the hash of the peer's
			 * certificate, the peer's ID */
			snprintf(xfcc, sizeof xfcc, "By=%s;Hash=%s;URI=%s", c->snap->st->own_id,
				 c->peer_hash, c->peer);
			extra[n++] = (zt_http1_field){ "X-Forwarded-Client-Cert", 23, xfcc, strlen(xfcc) };
		}
		if (rq->framing == ZT_HTTP1_BODY_CHUNKED) {
			extra[n++] = (zt_http1_field){ "Transfer-Encoding", 17, "chunked", 7 };
		} else if (rq->framing == ZT_HTTP1_BODY_LENGTH) {
			snprintf(clen, sizeof clen, "%llu", (unsigned long long)rq->content_length);
			extra[n++] = (zt_http1_field){ "Content-Length", 14, clen, strlen(clen) };
		}
		if (an.nrules) {
			/* without the token (unless forwarded), the client's output headers
			 * gone, ours added; the target without a token parameter */
			target_len = strlen(norm);
			if (!(fields = malloc(ZT_HTTP1_MAX_FIELDS * sizeof *fields))) {
				answer_error(c, 503, "out of memory");
				goto consumed;
			}
			if (px_authn_rewrite(&an, rq, fields, &nfields, extra, &n, sizeof extra / sizeof extra[0],
					     norm, &target_len, sizeof norm, &e) != 0) {
				free(fields);
				answer_error(c, 500, e.msg);
				goto consumed;
			}
		}
		out.fields = fields ? fields : rq->fields;
		out.nfields = nfields;
		out.drop = rq->authority ? drop_host : drop;
		out.flags = ZT_HTTP1_DROP_HOP_BY_HOP;
		out.extra = extra;
		out.nextra = n;
		size_t before = q_len(&h->uout);

		r = zt_http1_write_request(&h->uout.b, rq->method, rq->method_len, target, target_len,
					   &out, &e);
		free(fields);
		if (r != 0) {
			answer_error(c, e.code == ZT_ELIMIT ? 431 : 400, e.msg);
			goto consumed;
		}
		/* a request that may be sent twice keeps its head for a retry
		 * (RFC 9110 9.2.2: idempotent methods; no body to replay) */
		if (rq->framing == ZT_HTTP1_BODY_NONE && idempotent(rq->method, rq->method_len) &&
		    zt_buf_append(&h->replay, h->uout.b.p + h->uout.off + before, q_len(&h->uout) - before, &e) != 0)
			h->replay.len = 0;
	}
	h->rs = RS_HEAD;
	h->scanned_resp = 0;
advance:
	h->rq = rq->framing == ZT_HTTP1_BODY_NONE ||
			(rq->framing == ZT_HTTP1_BODY_LENGTH && rq->content_length == 0)
		? RQ_DONE
		: RQ_BODY;
	if (h->rq == RQ_BODY)
		h->dl_body = now_ms(c) + (uint64_t)c->px->cfg.http.body_timeout * 1000u;
	else if (h->rs == RS_HEAD)
		h->dl_resp = now_ms(c) + (uint64_t)c->px->cfg.http.response_timeout * 1000u;
consumed:
	px_authn_free(&an);
	h->cin.off += rq->head_len;
	h->cin.len -= rq->head_len;
	if (!h->cin.len)
		h->cin.off = 0;
	return 1;
}

/* Moves request body bytes from cin towards the upstream (or drops them). */
static int take_body(struct conn *c)
{
	struct px_http *h = c->http;
	size_t cap = c->px->cfg.buffer_bytes, room, n;
	int moved = 0;
	zt_err e;

	while (h->rq == RQ_BODY && h->cin.len && !h->closing) {
		const uint8_t *p = h->cin.p + h->cin.off;

		room = h->discard ? h->cin.len : (q_len(&h->uout) < cap ? cap - q_len(&h->uout) : 0);
		if (!room)
			break;
		n = h->cin.len < room ? h->cin.len : room;
		if (h->req_framing == ZT_HTTP1_BODY_LENGTH) {
			if (n > h->req_left)
				n = (size_t)h->req_left;
			h->req_left -= n;
			h->req_body += n;
		} else {
			size_t off, dlen;

			if (zt_http1_chunked_feed(&h->req_chunk, p, n, &n, &off, &dlen, &e) != 0) {
				answer_error(c, h->req_chunk.err_status ? h->req_chunk.err_status : 400, e.msg);
				return 1;
			}
			h->req_body += dlen;
			/* framing can outweigh payload (a 1-byte chunk with 256 bytes of
			 * extensions): the raw bytes are bounded too */
			if (h->req_chunk.wire > 2 * c->px->cfg.http.max_body + (1u << 20)) {
				answer_error(c, 413, "the chunked body's framing is far larger than its payload");
				return 1;
			}
		}
		if (h->req_body > c->px->cfg.http.max_body) {
			answer_error(c, 413, "the body is larger than http.maxBodyBytes");
			return 1;
		}
		if (!h->discard && q_append(&h->uout, p, n, &e) != 0) {
			answer_error(c, 503, "out of memory");
			return 1;
		}
		h->cin.off += n;
		h->cin.len -= n;
		if (!h->cin.len)
			h->cin.off = 0;
		moved = 1;
		if ((h->req_framing == ZT_HTTP1_BODY_LENGTH && h->req_left == 0) ||
		    (h->req_framing == ZT_HTTP1_BODY_CHUNKED && zt_http1_chunked_done(&h->req_chunk))) {
			h->rq = RQ_DONE;
			h->dl_body = 0;
			if (h->rs == RS_HEAD)
				h->dl_resp = now_ms(c) + (uint64_t)c->px->cfg.http.response_timeout * 1000u;
		}
		if (n == 0)
			break;
	}
	return moved;
}

/* ---- responses ---- */

static int take_response_head(struct conn *c)
{
	struct px_http *h = c->http;
	zt_http1_response *rs;
	zt_http1_limits lim;
	zt_err e;
	int r;

	if (!h->uin.len)
		return 0;
	rs = &scratch_resp;
	http_limits(c, &lim);
	r = zt_http1_parse_response(h->uin.p + h->uin.off, h->uin.len, &lim, h->method_flags,
				    &h->scanned_resp, rs, &e);
	if (r == ZT_HTTP1_INCOMPLETE) {
		return 0;
	}
	if (r != 0) {
		zt_log(ZT_LOG_WARN, "bad response from the upstream", "request_id", h->id, "listener",
		       c->ls->name, "rule", e.rule, "error", e.msg, NULL);
		answer_error(c, 502, "the upstream sent a malformed response");
		upstream_drop(c);
		return 1;
	}
	if (rs->framing == ZT_HTTP1_BODY_TUNNEL || rs->status == 101) {
		/* no Upgrade or CONNECT is ever sent on, so none may be granted */
		answer_error(c, 502, "the upstream switched protocols unasked");
		upstream_drop(c);
		return 1;
	}
	{
		zt_http1_field extra[3];
		zt_http1_out out = { 0 };
		char te[512];
		size_t n = 0, ten = 0, it = 0;
		const zt_http1_field *f;

		if (rs->interim) {
			/* 1xx: passed on to HTTP/1.1 clients (RFC 9110 15.2), then the
			 * final response follows */
			out.fields = rs->fields;
			out.nfields = rs->nfields;
			out.flags = ZT_HTTP1_DROP_HOP_BY_HOP;
			if (h->version == 11 &&
			    zt_http1_write_response(&h->cout.b, rs->status, rs->reason, rs->reason_len, &out, &e) != 0) {
				answer_error(c, 502, e.msg);
				upstream_drop(c);
				return 1;
			}
			goto consume;
		}
		h->resp_framing = rs->framing;
		h->resp_left = rs->framing == ZT_HTTP1_BODY_LENGTH ? rs->content_length : 0;
		h->u_keep = rs->keep_alive && rs->framing != ZT_HTTP1_BODY_CLOSE;
		if (rs->framing == ZT_HTTP1_BODY_CLOSE)
			h->keep = 0; /* the client learns the end from our close */
		if (rs->framing == ZT_HTTP1_BODY_CHUNKED) {
			/* Transfer-Encoding is hop-by-hop and dropped with the rest; its
			 * codings are written back whole (a "gzip, chunked" stays so) */
			while ((f = zt_http1_field_get(rs->fields, rs->nfields, "transfer-encoding", &it))) {
				if (ten + f->value_len + 2 >= sizeof te) {
					answer_error(c, 502, "the upstream's Transfer-Encoding is too long");
					return 1;
				}
				if (ten)
					te[ten++] = ',', te[ten++] = ' ';
				memcpy(te + ten, f->value, f->value_len);
				ten += f->value_len;
			}
			zt_http1_chunked_init(&h->resp_chunk, &lim, 1);
			if (h->version == 10) { /* HTTP/1.0 has no chunked: payload, then close */
				if (!zt_http1_name_eq(te, ten, "chunked")) {
					answer_error(c, 502, "a transfer-coded response cannot go to an HTTP/1.0 client");
					return 1;
				}
				h->dechunk = 1;
				h->keep = 0;
			} else {
				extra[n++] = (zt_http1_field){ "Transfer-Encoding", 17, te, ten };
			}
		}
		if (h->rq != RQ_DONE) /* answered before the request ended: it cannot go on */
			h->keep = 0;
		if (!h->keep)
			extra[n++] = (zt_http1_field){ "Connection", 10, "close", 5 };
		else if (h->version == 10)
			extra[n++] = (zt_http1_field){ "Connection", 10, "keep-alive", 10 };
		out.fields = rs->fields;
		out.nfields = rs->nfields;
		out.flags = ZT_HTTP1_DROP_HOP_BY_HOP;
		out.extra = extra;
		out.nextra = n;
		if (zt_http1_write_response(&h->cout.b, rs->status, rs->reason, rs->reason_len, &out, &e) != 0) {
			answer_error(c, 502, e.msg);
			upstream_drop(c);
			return 1;
		}
		h->status = rs->status;
		h->dl_resp = 0;
		h->rs = rs->framing == ZT_HTTP1_BODY_NONE ||
				(rs->framing == ZT_HTTP1_BODY_LENGTH && rs->content_length == 0)
			? RS_DONE
			: RS_BODY;
	}
consume:
	h->uin.off += rs->head_len;
	h->uin.len -= rs->head_len;
	if (!h->uin.len)
		h->uin.off = 0;
	h->scanned_resp = 0;
	return 1;
}

static int take_response_body(struct conn *c)
{
	struct px_http *h = c->http;
	size_t cap = c->px->cfg.buffer_bytes, room, n;
	int moved = 0;
	zt_err e;

	while (h->rs == RS_BODY && h->uin.len) {
		const uint8_t *p = h->uin.p + h->uin.off;
		size_t off = 0, dlen = 0;

		room = q_len(&h->cout) < cap ? cap - q_len(&h->cout) : 0;
		if (!room)
			break;
		n = h->uin.len < room ? h->uin.len : room;
		if (h->resp_framing == ZT_HTTP1_BODY_LENGTH) {
			if (n > h->resp_left)
				n = (size_t)h->resp_left;
			h->resp_left -= n;
		} else if (h->resp_framing == ZT_HTTP1_BODY_CHUNKED) {
			if (zt_http1_chunked_feed(&h->resp_chunk, p, n, &n, &off, &dlen, &e) != 0) {
				zt_log(ZT_LOG_WARN, "bad response body from the upstream", "request_id", h->id,
				       "error", e.msg, NULL);
				h->closing = 1; /* the head is out: all we can do is stop */
				upstream_drop(c);
				return 1;
			}
		}
		if (h->dechunk ? q_append(&h->cout, p + off, dlen, &e) : q_append(&h->cout, p, n, &e)) {
			h->closing = 1;
			return 1;
		}
		h->resp_bytes += h->dechunk ? dlen : n;
		h->uin.off += n;
		h->uin.len -= n;
		if (!h->uin.len)
			h->uin.off = 0;
		moved = 1;
		if ((h->resp_framing == ZT_HTTP1_BODY_LENGTH && h->resp_left == 0) ||
		    (h->resp_framing == ZT_HTTP1_BODY_CHUNKED && zt_http1_chunked_done(&h->resp_chunk)))
			h->rs = RS_DONE;
		if (n == 0)
			break;
	}
	return moved;
}

/* Both halves of the exchange are over: log it and get ready for the next. */
static int finish_exchange(struct conn *c)
{
	struct px_http *h = c->http;

	if (h->rq != RQ_DONE || h->rs != RS_DONE)
		return 0;
	log_exchange(c, "done");
	release_target(c);
	h->replay.len = 0;
	if (h->us != U_NONE && (!h->u_keep || h->uin.len || q_len(&h->uout))) {
		upstream_drop(c); /* closing, or extra bytes: the upstream is confused */
	} else if (h->us == U_READY) {
		/* to the worker's pool: the next request of any client connection
		 * may take it; what the pool cannot take is closed just below */
		(void)px_pool_put(c);
		upstream_drop(c); /* after a put c->u is empty: this only resets our state */
	}
	h->rq = RQ_HEAD;
	h->rs = RS_IDLE;
	h->scanned_req = 0;
	h->dl_head = h->dl_body = h->dl_resp = 0;
	if (!h->keep)
		h->closing = 1;
	return 1;
}

/* ---- the upstream connection ---- */

#define UF_HEALTH 1 /* the failure says the target is unwell (refused, timed out, TLS failed) */
#define UF_RETRY 2  /* the connection failed: the request may be sent again */

/*
 * The upstream connection failed, or did not answer in time. With
 * UF_RETRY, a request not yet answered at all is sent once more, to
 * another target when there is one, if it may be sent twice; otherwise the
 * client gets `status`.
 */
static void upstream_failed(struct conn *c, int status, const char *why, unsigned flags)
{
	struct px_http *h = c->http;
	int failed = c->target, r;
	zt_err e;

	zt_log(ZT_LOG_WARN, "upstream failed", "request_id", h->id, "listener", c->ls->name,
	       "upstream", failed >= 0 ? c->ls->targets[failed].text : c->ls->upstream_text,
	       "error", why, NULL);
	if (flags & UF_HEALTH)
		px_target_failed(c->ls, failed, now_ms(c));
	upstream_drop(c);
	if (h->rs != RS_HEAD && h->rs != RS_BODY)
		return;
	if ((flags & UF_RETRY) && h->rs == RS_HEAD && !h->status && !h->retried && h->replay.len &&
	    h->rq == RQ_DONE) {
		h->retried = 1;
		if ((r = upstream_start(c, failed)) == 0 &&
		    q_append(&h->uout, h->replay.p, h->replay.len, &e) == 0) {
			zt_log(ZT_LOG_INFO, "request retried", "request_id", h->id, "listener", c->ls->name,
			       "upstream", c->ls->targets[c->target].text, NULL);
			h->dl_resp = now_ms(c) + (uint64_t)c->px->cfg.http.response_timeout * 1000u;
			return;
		}
	}
	answer_error(c, status, why);
}

static int upstream_progress(struct conn *c)
{
	struct px_http *h = c->http;
	const char *why;
	int r;

	if (h->us == U_CONNECTING) {
		if (!c->u.writable)
			return 0;
		if (px_upstream_connected(c) != 0) {
			upstream_failed(c, 503, "the upstream refused the connection", UF_HEALTH | UF_RETRY);
			return 1;
		}
		if (c->ls->inbound) {
			px_target_ok(c->ls, c->target);
			h->us = U_READY;
			h->dl_connect = 0;
			c->u.readable = c->u.writable = 1;
			return 1;
		}
		if (!(c->u.ssl = SSL_new(c->snap->st->tls[c->ls - c->px->cfg.listeners])) ||
		    !SSL_set_fd(c->u.ssl, c->u.fd)) {
			upstream_failed(c, 503, "out of memory", 0);
			return 1;
		}
		SSL_set_connect_state(c->u.ssl);
		zt_tls_client_resume(c->u.ssl, c->ls->targets[c->target].text);
		h->us = U_HANDSHAKE;
		c->u.readable = c->u.writable = 1;
	}
	if (h->us != U_HANDSHAKE || !(c->u.readable || c->u.writable))
		return 0;
	ERR_clear_error();
	r = SSL_do_handshake(c->u.ssl);
	switch (zt_tls_result(c->u.ssl, r)) {
	case ZT_TLS_WANT_READ:
		h->u_want = ZT_EV_READ;
		c->u.readable = c->u.writable = 0;
		return 0;
	case ZT_TLS_WANT_WRITE:
		h->u_want = ZT_EV_WRITE;
		c->u.readable = c->u.writable = 0;
		return 0;
	case ZT_TLS_DONE:
		break;
	default:
		why = zt_tls_peer_error(c->u.ssl);
		if (!why || !strcmp(why, "the peer presented no certificate"))
			why = SSL_get_verify_result(c->u.ssl) != X509_V_OK ? zt_tls_peer_error(c->u.ssl)
									   : zt_tls_error_text();
		upstream_failed(c, 502, why ? why : "TLS handshake with the upstream failed",
				UF_HEALTH | UF_RETRY);
		return 1;
	}
	if (!zt_tls_peer_id(c->u.ssl)) { /* cannot happen: the context requires a verified peer */
		upstream_failed(c, 502, "the upstream was not verified", UF_HEALTH | UF_RETRY);
		return 1;
	}
	px_target_ok(c->ls, c->target);
	c->resumed = SSL_session_reused(c->u.ssl);
	snprintf(h->upstream, sizeof h->upstream, "%s", zt_tls_peer_id(c->u.ssl));
	copy_cut(c->peer, sizeof c->peer, h->upstream, strlen(h->upstream)); /* for the connection's log */
	h->us = U_READY;
	h->dl_connect = 0;
	c->u.readable = c->u.writable = 1;
	return 1;
}

/* ---- reading and writing ---- */

/* Reads what s has into b (capacity cap); 1 when bytes came, -1 on error. */
static int fill(struct side *s, struct buf *b, size_t cap)
{
	ssize_t n;

	if (!s->readable || s->eof)
		return 0;
	if (!b->p && !(b->p = malloc(cap)))
		return -1;
	if (b->off && b->off + b->len == cap) {
		memmove(b->p, b->p + b->off, b->len);
		b->off = 0;
	}
	if (b->off + b->len == cap)
		return 0;
	n = px_side_recv(s, b->p + b->off + b->len, cap - b->off - b->len);
	if (n == WOULD_BLOCK) {
		s->readable = 0;
		return 0;
	}
	if (n < 0)
		return -1;
	b->len += (size_t)n;
	return n > 0 || s->eof;
}

/* Writes what q holds to s; 1 when bytes went, -1 on error. */
static int drain(struct side *s, struct q *q, uint64_t *count)
{
	int moved = 0;

	while (q_len(q) && s->writable) {
		ssize_t n = px_side_send(s, q->b.p + q->off, q_len(q));

		if (n == WOULD_BLOCK) {
			s->writable = 0;
			break;
		}
		if (n < 0)
			return -1;
		q_consume(q, (size_t)n);
		*count += (uint64_t)n;
		moved = 1;
	}
	return moved;
}

static void free_idle_buffers(struct px_http *h)
{
	if (!h->cin.len) {
		free(h->cin.p);
		h->cin.p = NULL;
		h->cin.off = 0;
	}
	if (!h->uin.len) {
		free(h->uin.p);
		h->uin.p = NULL;
		h->uin.off = 0;
	}
	if (!q_len(&h->uout))
		zt_buf_free(&h->uout.b, 0), h->uout.off = 0;
	if (!q_len(&h->cout))
		zt_buf_free(&h->cout.b, 0), h->cout.off = 0;
}

static void arm(struct conn *c)
{
	struct px_http *h = c->http;
	uint64_t now = now_ms(c), dl;

	dl = h->last_io + (uint64_t)c->px->cfg.idle_timeout * 1000u;
	if (h->dl_connect && h->dl_connect < dl)
		dl = h->dl_connect;
	if (h->rq == RQ_HEAD && h->dl_head && h->dl_head < dl)
		dl = h->dl_head;
	if (h->rq == RQ_BODY && h->dl_body && h->dl_body < dl)
		dl = h->dl_body;
	if (h->rs == RS_HEAD && h->dl_resp && h->dl_resp < dl)
		dl = h->dl_resp;
	px_set_timer_ms(c, dl > now ? dl - now : 0);
}

static struct px_http *http_new(struct conn *c)
{
	struct px_http *h = calloc(1, sizeof *h);
	size_t outmax = c->px->cfg.buffer_bytes + c->px->cfg.http.max_head + 8192;

	if (!h)
		return NULL;
	zt_buf_init(&h->uout.b, outmax);
	zt_buf_init(&h->cout.b, outmax);
	zt_buf_init(&h->replay, c->px->cfg.http.max_head + 8192);
	h->out_target = h->last_target = -1;
	h->last_io = now_ms(c);
	/* the first request, too, has headerTimeout: a connection that says
	 * nothing does not hold a place for idleTimeout */
	h->dl_head = h->last_io + (uint64_t)c->px->cfg.http.header_timeout * 1000u;
	return h;
}

void px_http_step(struct conn *c)
{
	size_t cap = c->px->cfg.buffer_bytes;
	struct px_http *h;
	int r, progress;

	if (!c->http && !(c->http = http_new(c))) {
		px_conn_close(c, "out of memory");
		return;
	}
	h = c->http;
	do {
		progress = 0;
		/* the client: read while a request may use the bytes (pipelined
		 * ones wait in cin, which bounds them) */
		if (!h->closing) {
			if ((r = fill(&c->c, &h->cin, cap)) < 0) {
				log_exchange(c, "the client side failed");
				px_conn_close(c, "the client side failed");
				return;
			}
			progress |= r;
		}
		if (h->rq == RQ_HEAD && (h->rs == RS_IDLE) && !h->closing)
			progress |= take_request(c);
		if (h->rq == RQ_BODY && !h->closing)
			progress |= take_body(c);
		/* the upstream */
		if (h->us == U_CONNECTING || h->us == U_HANDSHAKE)
			progress |= upstream_progress(c);
		if (h->us == U_READY) {
			if ((r = drain(&c->u, &h->uout, &c->bytes_c2u)) < 0) {
				upstream_failed(c, 502, "the upstream connection failed", UF_RETRY);
				progress = 1;
			} else {
				progress |= r;
			}
		}
		if (h->us == U_READY) {
			if ((r = fill(&c->u, &h->uin, cap)) < 0) {
				upstream_failed(c, 502, "the upstream connection failed", UF_RETRY);
				progress = 1;
			} else {
				progress |= r;
			}
		}
		if (h->us == U_READY && (h->rs == RS_IDLE || h->rs == RS_DONE) && h->uin.len) {
			/* bytes nobody asked for (a late 408, a confused service): they
			 * must never be read as the answer to the next request */
			upstream_drop(c);
			progress = 1;
		}
		if (h->us == U_READY && h->rs == RS_HEAD)
			progress |= take_response_head(c);
		if (h->rs == RS_BODY)
			progress |= take_response_body(c);
		if (h->us == U_READY && c->u.eof && !h->uin.len) {
			if (h->rs == RS_BODY && h->resp_framing == ZT_HTTP1_BODY_CLOSE) {
				h->rs = RS_DONE; /* the close ends a close-delimited body */
				upstream_drop(c);
			} else if (h->rs == RS_HEAD || h->rs == RS_BODY) {
				upstream_failed(c, 502,
						h->rs == RS_HEAD ? "the upstream closed before responding"
								 : "the upstream closed mid-response", UF_RETRY);
			} else {
				upstream_drop(c); /* an idle keep-alive connection ended */
			}
			progress = 1;
		}
		if (h->rs == RS_DONE && h->rq == RQ_BODY && !h->discard && !h->closing) {
			/* answered before the request was all sent: the rest is not read */
			h->closing = 1;
			progress = 1;
		}
		progress |= finish_exchange(c);
		if ((r = drain(&c->c, &h->cout, &c->bytes_u2c)) < 0) {
			log_exchange(c, "the client side failed");
			px_conn_close(c, "the client side failed");
			return;
		}
		progress |= r;
		if (progress)
			h->last_io = now_ms(c);
	} while (progress);

	/* endings */
	if (h->closing && !q_len(&h->cout)) {
		log_exchange(c, h->status >= 400 || !h->status ? "closed after an error" : "closed");
		px_conn_close(c, "closed");
		return;
	}
	if (c->c.eof && !h->closing) {
		if (h->rq == RQ_HEAD && h->rs == RS_IDLE) {
			px_conn_close(c, h->cin.len ? "the client closed mid-request" : "closed");
			return;
		}
		if (h->rq == RQ_BODY) {
			log_exchange(c, "the client closed mid-request");
			px_conn_close(c, "the client closed mid-request");
			return;
		}
		h->keep = 0; /* the response still goes out, then we close */
	}
	free_idle_buffers(h);
	/* interest: level-triggered, only where we wait for the socket */
	{
		unsigned wc = 0, wu = 0;

		if ((!c->c.eof && !c->c.readable && !h->closing && (!h->cin.p || h->cin.off + h->cin.len < cap)) ||
		    c->c.wr_wants_read)
			wc |= ZT_EV_READ;
		if ((q_len(&h->cout) && !c->c.writable) || c->c.rd_wants_write)
			wc |= ZT_EV_WRITE;
		if (h->us == U_CONNECTING)
			wu = ZT_EV_WRITE;
		else if (h->us == U_HANDSHAKE)
			wu = h->u_want;
		else if (h->us == U_READY) {
			if ((!c->u.eof && !c->u.readable) || c->u.wr_wants_read)
				wu |= ZT_EV_READ;
			if ((q_len(&h->uout) && !c->u.writable) || c->u.rd_wants_write)
				wu |= ZT_EV_WRITE;
		}
		px_set_interest(c, &c->c, wc);
		if (c->u.fd >= 0)
			px_set_interest(c, &c->u, wu);
	}
	arm(c);
}

void px_http_timeout(struct conn *c)
{
	struct px_http *h = c->http;
	uint64_t now = now_ms(c);

	if (!h) {
		px_conn_close(c, "idle timeout");
		return;
	}
	if (h->dl_connect && now >= h->dl_connect) {
		h->dl_connect = 0;
		upstream_failed(c, 503, "upstream connect timeout", UF_HEALTH | UF_RETRY);
	} else if (h->rq == RQ_HEAD && h->dl_head && now >= h->dl_head && !h->cin.len &&
		   h->rs == RS_IDLE) {
		/* not a byte of a request: closed without an answer, as nothing was asked */
		px_conn_close(c, "no request within http.headerTimeout");
		return;
	} else if (h->rq == RQ_HEAD && h->dl_head && now >= h->dl_head) {
		if (!h->in_flight) { /* the log says who dawdled */
			h->in_flight = 1;
			h->t_start = h->dl_head - (uint64_t)c->px->cfg.http.header_timeout * 1000u;
			snprintf(h->method, sizeof h->method, "-");
			h->path[0] = h->host[0] = '\0';
			h->decided = -1;
			zt_http1_request_id_new(h->id, sizeof h->id);
		}
		answer_error(c, 408, "the request head did not arrive within http.headerTimeout");
	} else if (h->rq == RQ_BODY && h->dl_body && now >= h->dl_body) {
		answer_error(c, 408, "the request body did not arrive within http.bodyTimeout");
		upstream_drop(c);
	} else if (h->rs == RS_HEAD && h->dl_resp && now >= h->dl_resp) {
		upstream_failed(c, 504, "the upstream did not respond within http.responseTimeout", 0);
	} else if (now >= h->last_io + (uint64_t)c->px->cfg.idle_timeout * 1000u) {
		log_exchange(c, "idle timeout");
		px_conn_close(c, "idle timeout");
		return;
	}
	px_http_step(c);
}

void px_http_free(struct conn *c)
{
	struct px_http *h = c->http;

	if (!h)
		return;
	log_exchange(c, "connection closed");
	release_target(c);
	zt_buf_free(&h->replay, 0);
	free(h->cin.p);
	free(h->uin.p);
	zt_buf_free(&h->uout.b, 0);
	zt_buf_free(&h->cout.b, 0);
	free(h);
	c->http = NULL;
}

int px_http_idle(const struct conn *c)
{
	const struct px_http *h = c->http;

	/* between exchanges: nothing read, nothing to write, no request begun */
	return h && !h->in_flight && h->rq == RQ_HEAD && h->cin.len == 0 &&
	       h->cout.b.len == h->cout.off && h->uout.b.len == h->uout.off;
}
