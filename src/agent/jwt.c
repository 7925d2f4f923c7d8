/*
 * agent/jwt.c: JWT-SVIDs (SPIFFE JWT-SVID) for the node's workloads, where
 * mutual TLS cannot reach (a token in a header, through a load balancer).
 *
 * The server signs them (POST /v1/jwtsvids) for the IDs this node's
 * entries name; the agent keeps each (ID, audiences) token until half its
 * life is gone, so a workload that asks on every request costs the server
 * one signature per few minutes. The server's token keys, fetched from
 * its JWKS, are the trust domain's JWT authorities (the JWT bundle).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/agent_int.h"

#define JWKS_FRESH_S 60

/* A connection with the agent's current SVID; jwt.mu held. */
static zt_api *api_of(struct ag *a, zt_err *e)
{
	pthread_mutex_lock(&a->mu);
	int64_t gen = a->self_not_after;

	pthread_mutex_unlock(&a->mu);
	if (a->jwt.api && a->jwt.api_gen == gen)
		return a->jwt.api;
	zt_api_free(a->jwt.api);
	a->jwt.api = ag_client(a, 1, e);
	a->jwt.api_gen = gen;
	return a->jwt.api;
}

static char *cache_key(const char *id, const json_t *auds)
{
	const json_t *v;
	size_t i, n = strlen(id) + 1;
	char *k, *p;

	json_array_foreach (auds, i, v)
		n += json_string_length(v) + 1;
	if (!(k = malloc(n)))
		return NULL;
	p = k + sprintf(k, "%s", id);
	json_array_foreach (auds, i, v)
		p += sprintf(p, "\n%s", json_string_value(v));
	return k;
}

int ag_jwt_svid(struct ag *a, const char *id, const json_t *auds, char **token, int64_t *exp, zt_err *e)
{
	struct ag_jwt *j = &a->jwt;
	char *key = cache_key(id, auds);
	int64_t now = zt_now();
	zt_api_resp resp;
	json_t *body;
	zt_api *api;
	int r = 0;

	if (!key)
		return zt_err_set(e, ZT_ENOMEM, "out of memory");
	pthread_mutex_lock(&j->mu);
	for (size_t i = 0; i < sizeof j->cache / sizeof j->cache[0]; i++) {
		struct ag_jwt_svid *c = &j->cache[i];

		if (c->key && !strcmp(c->key, key) && now < c->issued + (c->exp - c->issued) / 2) {
			*token = strdup(c->token);
			*exp = c->exp;
			pthread_mutex_unlock(&j->mu);
			free(key);
			return *token ? 0 : zt_err_set(e, ZT_ENOMEM, "out of memory");
		}
	}
	if (!(api = api_of(a, e))) {
		r = -ZT_EIO;
		goto out;
	}
	body = json_pack("{s:s,s:O}", "id", id, "audience", auds);
	r = zt_api_call(api, "POST", "/v1/jwtsvids", body, NULL, 10000, &resp, e);
	json_decref(body);
	if (r != 0) {
		zt_api_disconnect(api);
		goto out;
	}
	const char *tok = json_string_value(json_object_get(resp.json, "token"));
	int64_t ex = json_integer_value(json_object_get(resp.json, "exp"));

	if (resp.status != 200 || !tok || ex <= now) {
		r = zt_err_rule(e, resp.status == 403 ? ZT_EVERIFY : ZT_EIO, resp.status == 403 ? "forbidden" : "server",
				"the server did not issue the JWT-SVID: HTTP %d %s", resp.status,
				zt_api_resp_message(&resp));
	} else {
		struct ag_jwt_svid *c = &j->cache[j->next++ % (sizeof j->cache / sizeof j->cache[0])];

		free(c->key);
		if (c->token)
			zt_wipe(c->token, strlen(c->token));
		free(c->token);
		c->key = key;
		key = NULL;
		c->token = strdup(tok);
		c->issued = now;
		c->exp = ex;
		*token = strdup(tok);
		*exp = ex;
		if (!c->token || !*token)
			r = zt_err_set(e, ZT_ENOMEM, "out of memory");
	}
	if (resp.body.p)
		zt_wipe(resp.body.p, resp.body.len);
	zt_api_resp_free(&resp);
out:
	pthread_mutex_unlock(&j->mu);
	free(key);
	return r;
}

int ag_jwt_bundle(struct ag *a, zt_buf *out, zt_err *e)
{
	struct ag_jwt *j = &a->jwt;
	int64_t now = zt_now();
	zt_api_resp resp;
	zt_api *api;
	json_t *keys, *k;
	size_t i;
	int r = 0;

	pthread_mutex_lock(&j->mu);
	if (!j->jwks || now - j->jwks_at >= JWKS_FRESH_S) {
		if (!(api = api_of(a, e)) ||
		    zt_api_call(api, "GET", "/.well-known/jwks.json", NULL, NULL, 10000, &resp, e) != 0) {
			if (api)
				zt_api_disconnect(api);
			r = -ZT_EIO;
			goto out;
		}
		/* served as application/jwk-set+json, so parsed here */
		json_t *doc = resp.status == 200 ? zt_json_parse((const char *)resp.body.p, resp.body.len, NULL) : NULL;

		keys = json_object_get(doc, "keys");
		if (!json_is_array(keys)) {
			r = zt_err_set(e, ZT_EIO, "the server's JWKS could not be read (HTTP %d)", resp.status);
			json_decref(doc);
			zt_api_resp_free(&resp);
			goto out;
		}
		/* SPIFFE Trust Domain and Bundle 4.2.2: JWT authorities are "use": "jwt-svid" */
		json_array_foreach (keys, i, k)
			json_object_set_new(k, "use", json_string("jwt-svid"));
		json_t *set = json_pack("{s:O,s:i}", "keys", keys, "spiffe_refresh_hint", JWKS_FRESH_S);

		free(j->jwks);
		j->jwks = set ? json_dumps(set, JSON_COMPACT) : NULL;
		json_decref(set);
		json_decref(doc);
		j->jwks_at = now;
		zt_api_resp_free(&resp);
		if (!j->jwks) {
			r = zt_err_set(e, ZT_ENOMEM, "out of memory");
			goto out;
		}
	}
	r = zt_buf_append(out, j->jwks, strlen(j->jwks), e);
out:
	pthread_mutex_unlock(&j->mu);
	return r;
}

void ag_jwt_free(struct ag *a)
{
	struct ag_jwt *j = &a->jwt;

	for (size_t i = 0; i < sizeof j->cache / sizeof j->cache[0]; i++) {
		free(j->cache[i].key);
		if (j->cache[i].token)
			zt_wipe(j->cache[i].token, strlen(j->cache[i].token));
		free(j->cache[i].token);
	}
	free(j->jwks);
	zt_api_free(j->api);
	memset(j->cache, 0, sizeof j->cache);
	j->jwks = NULL;
	j->api = NULL;
}
