/*
 * server/issuer.c: zt as a token issuer (OpenID Connect Discovery 1.0,
 * RFC 7517, RFC 7519).
 *
 * Tokens are JWTs signed ES256 by a server key. Keys rotate with overlap,
 * as the CA does: a key is published in the JWKS a while before it signs
 * anything (so every verifier's cached set knows it by then), signs for
 * one period, and stays published after it was superseded until the last
 * token it signed has expired. Keys live in the store (kind "signingkey",
 * named by their RFC 7638 thumbprint, sealed under the KEK when one is
 * set), so replicas share them.
 *
 * Readers take a reference to an immutable snapshot of the keys (the
 * active private key, the public set and the JWKS text), so minting and
 * checking never wait for a rotation.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "crypto/crypto.h"
#include "server/server_int.h"

#define KEY_KIND "signingkey"
#define KEYS_MAX 8

struct srv_keys {
	_Atomic int ref;
	size_t n;
	struct {
		char kid[44];
		EVP_PKEY *key;
		int64_t activate, retire;
	} k[KEYS_MAX];
	int active;      /* index of the key that signs, -1 if none yet */
	zt_jwks pub;     /* what verifies: every published key */
	char *jwks_json; /* /.well-known/jwks.json */
};

struct srv_issuer {
	pthread_mutex_t mu;
	struct srv_keys *cur;
	char url[512];
	int64_t period;   /* seconds a key signs */
	int64_t max_ttl;  /* the longest token zt mints */
};

static void keys_put(struct srv_keys *k)
{
	if (!k || --k->ref > 0)
		return;
	for (size_t i = 0; i < k->n; i++)
		EVP_PKEY_free(k->k[i].key);
	zt_jwks_free(&k->pub);
	free(k->jwks_json);
	free(k);
}

static struct srv_keys *srv_keys_get(srv *s)
{
	struct srv_keys *k;

	pthread_mutex_lock(&s->iss->mu);
	if ((k = s->iss->cur))
		k->ref++;
	pthread_mutex_unlock(&s->iss->mu);
	return k;
}

/* A key's PEM as stored: sealed under the KEK when the server has one. */
static int key_text(EVP_PKEY *key, zt_buf *out, zt_err *e)
{
	const uint8_t *kek = zt_kek_get();
	zt_buf pem;
	int r;

	zt_buf_init(&pem, 16384);
	if ((r = zt_key_to_pem(key, &pem, e)) == 0)
		r = kek ? zt_seal(kek, ZT_SEAL_LABEL_KEY, pem.p, pem.len, out, e)
			: zt_buf_append(out, pem.p, pem.len, e);
	if (r == 0)
		r = zt_buf_terminate(out, e);
	zt_buf_free(&pem, 1);
	return r;
}

static EVP_PKEY *key_from_text(const char *text, zt_err *e)
{
	EVP_PKEY *k = NULL;
	zt_buf b;

	zt_buf_init(&b, 65536);
	if (zt_buf_append(&b, text, strlen(text), e) == 0 && zt_unseal_in_place(&b, ZT_SEAL_LABEL_KEY, e) == 0)
		k = zt_key_parse_pem(b.p, b.len, e);
	zt_buf_free(&b, 1);
	return k;
}

/* Makes a new key that signs from `activate` on, and stores it. */
static int key_create(srv *s, int64_t activate, zt_err *e)
{
	EVP_PKEY *k = zt_key_generate(e);
	char kid[44];
	zt_buf text;
	uint64_t v;
	json_t *b = NULL;
	int r;

	if (!k)
		return -ZT_ECRYPTO;
	zt_buf_init(&text, 65536);
	if ((r = zt_jwk_thumbprint(k, kid, e)) == 0 && (r = key_text(k, &text, e)) == 0) {
		b = json_pack("{s:s,s:I,s:I}", "key", (const char *)text.p, "activate", (json_int_t)activate,
			      "retire", (json_int_t)0);
		r = b ? zt_store_put(s->store, KEY_KIND, kid, b, 0, &v, e) : zt_err_set(e, ZT_ENOMEM, "out of memory");
	}
	if (r == 0)
		zt_log(ZT_LOG_INFO, "token signing key made", "kid", kid, NULL);
	json_decref(b);
	zt_buf_free(&text, 1);
	EVP_PKEY_free(k);
	return r;
}

static int by_activation(const void *a, const void *b)
{
	int64_t x = json_integer_value(json_object_get(((const zt_object *)a)->body, "activate"));
	int64_t y = json_integer_value(json_object_get(((const zt_object *)b)->body, "activate"));

	return x < y ? -1 : x > y;
}

/* The published keys as a snapshot: every key not yet retired, oldest first. */
static struct srv_keys *keys_load(srv *s, int64_t now, zt_err *e)
{
	struct srv_keys *k = calloc(1, sizeof *k);
	json_t *set = json_object(), *arr = json_array();
	zt_object *v = NULL;
	size_t n = 0;

	if (!k || !set || !arr) {
		zt_err_set(e, ZT_ENOMEM, "out of memory");
		goto fail;
	}
	k->ref = 1;
	k->active = -1;
	if (zt_store_list(s->store, KEY_KIND, "", "", KEYS_MAX * 4, &v, &n, e) != 0)
		goto fail;
	qsort(v, n, sizeof *v, by_activation);
	for (size_t i = 0; i < n && k->n < KEYS_MAX; i++) {
		const char *text = json_string_value(json_object_get(v[i].body, "key"));
		int64_t act = json_integer_value(json_object_get(v[i].body, "activate"));
		int64_t ret = json_integer_value(json_object_get(v[i].body, "retire"));
		EVP_PKEY *key;
		json_t *jwk;

		if ((ret && ret <= now) || strlen(v[i].name) != 43)
			continue;
		if (!text || !(key = key_from_text(text, e))) {
			zt_err_wrap(e, "token signing key %s", v[i].name);
			goto fail;
		}
		memcpy(k->k[k->n].kid, v[i].name, 44);
		k->k[k->n].key = key;
		k->k[k->n].activate = act;
		k->k[k->n].retire = ret;
		if (act <= now)
			k->active = (int)k->n; /* the newest that has started signs */
		if (!(jwk = json_object()) || zt_jwk_set_public(key, jwk, e) != 0 ||
		    zt_jwks_add_pkey(&k->pub, key, v[i].name, ZT_JWA_ES256, e) != 0) {
			json_decref(jwk);
			k->n++;
			goto fail;
		}
		json_object_set_new(jwk, "kid", json_string(v[i].name));
		json_object_set_new(jwk, "use", json_string("sig"));
		json_object_set_new(jwk, "alg", json_string("ES256"));
		json_array_append_new(arr, jwk);
		k->n++;
	}
	json_object_set_new(set, "keys", arr);
	arr = NULL;
	if (!(k->jwks_json = json_dumps(set, JSON_COMPACT))) {
		zt_err_set(e, ZT_ENOMEM, "out of memory");
		goto fail;
	}
	json_decref(set);
	zt_objects_free(v, n);
	return k;
fail:
	json_decref(arr);
	json_decref(set);
	zt_objects_free(v, n);
	keys_put(k);
	return NULL;
}

/*
 * The schedule, from the store: a key is made `lead` before the active one
 * has signed for a period, becomes active when its time comes, and the one
 * it replaced is retired max_ttl (and a minute of clock skew, less for
 * periods under 4 minutes) later.
 * Returns 1 when something changed.
 */
static int rotate(srv *s, int64_t now, zt_err *e)
{
	struct srv_issuer *iss = s->iss;
	int64_t lead = iss->period / 4 < 3600 ? iss->period / 4 : 3600;
	/* clock skew between issuer and verifiers: a minute, less for the short periods of tests */
	int64_t skew = iss->period / 4 < 60 ? iss->period / 4 : 60;
	zt_object *v = NULL;
	size_t n = 0;
	int changed = 0, r = 0;
	ssize_t active = -1;

	if ((r = zt_store_list(s->store, KEY_KIND, "", "", KEYS_MAX * 4, &v, &n, e)) != 0)
		return r;
	qsort(v, n, sizeof *v, by_activation);
	for (size_t i = 0; i < n; i++) {
		int64_t ret = json_integer_value(json_object_get(v[i].body, "retire"));
		int64_t act = json_integer_value(json_object_get(v[i].body, "activate"));

		if (ret && ret <= now) { /* its last token has expired */
			uint64_t dv;

			if ((r = zt_store_delete(s->store, KEY_KIND, v[i].name, v[i].version, &dv, e)) != 0)
				goto out;
			zt_log(ZT_LOG_INFO, "token signing key retired", "kid", v[i].name, NULL);
			changed = 1;
			continue;
		}
		if (act <= now)
			active = (ssize_t)i;
	}
	/* superseded keys: retired once what they signed has expired */
	for (ssize_t i = 0; i < active; i++) {
		uint64_t ver;

		if (json_integer_value(json_object_get(v[i].body, "retire")))
			continue;
		int64_t next_act = json_integer_value(json_object_get(v[i + 1].body, "activate"));

		json_object_set_new(v[i].body, "retire", json_integer(next_act + iss->max_ttl + skew));
		if ((r = zt_store_put(s->store, KEY_KIND, v[i].name, v[i].body, v[i].version, &ver, e)) != 0)
			goto out;
		changed = 1;
	}
	if (active < 0) { /* the first key (or all expired while the server was down) */
		r = key_create(s, now, e);
		changed = r == 0;
	} else if ((size_t)active == n - 1) {
		int64_t act = json_integer_value(json_object_get(v[active].body, "activate"));

		if (now >= act + iss->period - lead) {
			r = key_create(s, act + iss->period > now ? act + iss->period : now, e);
			changed = r == 0;
		}
	}
out:
	zt_objects_free(v, n);
	return r < 0 ? r : changed;
}

/* Logged-out tokens that have expired need no record any more: up to a page per pass. */
static int forget_revoked(srv *s, int64_t now, zt_err *e)
{
	zt_object *v = NULL;
	size_t n = 0;
	uint64_t dv;
	int r;

	if ((r = zt_store_list(s->store, "revoked", "", "", ZT_STORE_LIST_MAX, &v, &n, e)) != 0)
		return r;
	for (size_t i = 0; i < n && r == 0; i++)
		if (json_integer_value(json_object_get(v[i].body, "expires")) + 60 < now)
			r = zt_store_delete(s->store, "revoked", v[i].name, v[i].version, &dv, e);
	zt_objects_free(v, n);
	return r;
}

int srv_issuer_maintain(srv *s, zt_err *e)
{
	int64_t now = zt_now();
	struct srv_keys *k, *old;
	int r;

	if ((r = rotate(s, now, e)) < 0 || (r = forget_revoked(s, now, e)) != 0)
		return r;
	/* a key's activation time passes without a store change: reload each time */
	if (!(k = keys_load(s, now, e)))
		return -ZT_EIO;
	pthread_mutex_lock(&s->iss->mu);
	old = s->iss->cur;
	s->iss->cur = k;
	pthread_mutex_unlock(&s->iss->mu);
	keys_put(old);
	return 0;
}

int srv_issuer_init(srv *s, const char *url, int64_t period, zt_err *e)
{
	struct srv_issuer *iss = calloc(1, sizeof *iss);

	if (!iss)
		return zt_err_set(e, ZT_ENOMEM, "out of memory");
	pthread_mutex_init(&iss->mu, NULL);
	snprintf(iss->url, sizeof iss->url, "%s", url);
	iss->period = period > 0 ? period : SRV_TOKEN_KEY_PERIOD_DEFAULT;
	/* a token never outlives the overlap: at most half a key's period, and 12 h */
	iss->max_ttl = iss->period / 2 < SRV_TOKEN_TTL_MAX ? iss->period / 2 : SRV_TOKEN_TTL_MAX;
	s->iss = iss;
	return srv_issuer_maintain(s, e);
}

void srv_issuer_free(srv *s)
{
	if (!s->iss)
		return;
	keys_put(s->iss->cur);
	pthread_mutex_destroy(&s->iss->mu);
	free(s->iss);
	s->iss = NULL;
}

const char *srv_issuer_url(const srv *s)
{
	return s->iss->url;
}

int64_t srv_token_ttl_max(const srv *s)
{
	return s->iss->max_ttl;
}

int srv_jwt_mint(srv *s, json_t *claims, int64_t ttl, int with_iss, zt_buf *out, char jti[33],
		 int64_t *exp, zt_err *e)
{
	struct srv_keys *k = srv_keys_get(s);
	int64_t now = zt_now();
	uint8_t rnd[16];
	int r;

	if (!k || k->active < 0) {
		keys_put(k);
		return zt_err_set(e, ZT_ESTATE, "the server has no token signing key yet; try again shortly");
	}
	if (ttl <= 0 || ttl > s->iss->max_ttl)
		ttl = s->iss->max_ttl;
	if ((r = zt_random(rnd, sizeof rnd, e)) == 0) {
		zt_hex(rnd, sizeof rnd, jti);
		/* RFC 7519 4.1: iss, iat, nbf, exp, jti; the caller gave sub, aud and the rest */
		if (with_iss)
			json_object_set_new(claims, "iss", json_string(s->iss->url));
		json_object_set_new(claims, "iat", json_integer(now));
		json_object_set_new(claims, "nbf", json_integer(now));
		json_object_set_new(claims, "exp", json_integer(now + ttl));
		json_object_set_new(claims, "jti", json_string(jti));
		r = zt_jwt_sign(k->k[k->active].key, k->k[k->active].kid, claims, out, e);
		*exp = now + ttl;
	}
	keys_put(k);
	return r;
}

int srv_jwt_check(srv *s, const char *tok, size_t len, const char *audience, zt_jwt *out, zt_err *e)
{
	struct srv_keys *k = srv_keys_get(s);
	const char *auds[] = {audience, NULL};
	/* zt's own clock made these: only a few seconds of skew between replicas */
	zt_jwt_rules rules = {.issuer = s->iss->url, .audiences = auds, .leeway = 5};
	int r;

	if (!k)
		return zt_err_set(e, ZT_ESTATE, "no token signing keys");
	r = zt_jwt_verify(tok, len, &k->pub, &rules, out, e);
	keys_put(k);
	return r;
}

/* GET /.well-known/openid-configuration and /.well-known/jwks.json: public. */
int srv_issuer_public(srv *s, const zt_http_req *q, zt_http_resp *r)
{
	char jwks[600], login[600];
	struct srv_keys *k;

	if (strcmp(q->method, "GET") != 0)
		return 0;
	if (!strcmp(q->path, "/.well-known/openid-configuration")) {
		/* Discovery 3: the metadata a relying party needs to check zt's tokens */
		snprintf(jwks, sizeof jwks, "%s/.well-known/jwks.json", s->iss->url);
		snprintf(login, sizeof login, "%s/v1/login", s->iss->url);
		zt_http_resp_json(r, 200,
				  json_pack("{s:s,s:s,s:s,s:[s],s:[s],s:[s],s:[s],s:[s,s,s,s,s,s,s,s]}", "issuer",
					    s->iss->url, "jwks_uri", jwks, "token_endpoint", login,
					    "response_types_supported", "token", "subject_types_supported", "public",
					    "id_token_signing_alg_values_supported", "ES256",
					    "token_endpoint_auth_methods_supported", "none", "claims_supported", "iss",
					    "sub", "aud", "exp", "iat", "nbf", "jti", "groups"));
		return 1;
	}
	if (!strcmp(q->path, "/.well-known/jwks.json")) {
		if (!(k = srv_keys_get(s))) {
			zt_http_resp_error(r, q, 503, "unavailable", "no token signing keys yet");
			return 1;
		}
		r->content_type = "application/jwk-set+json";
		if (zt_buf_append(&r->body, k->jwks_json, strlen(k->jwks_json), NULL) != 0)
			r->status = 500;
		else
			r->status = 200;
		keys_put(k);
		return 1;
	}
	return 0;
}
