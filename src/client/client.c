/*
 * client/client.c: settings, trust and requests for the control plane's
 * API (see client.h).
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "client/client.h"
#include "crypto/crypto.h"
#include "identity/identity.h"
#include "net/httpc.h"
#include "net/net.h"

#define CONFIG_MAX (64u << 10)

struct zt_api {
	zt_bundle_set *bundles;
	char td[256];
	char token[ZT_API_TOKEN_MAX];
	SSL_CTX *tls;
	zt_httpc *http;
};

static void set_if_empty(char *dst, size_t cap, const char *v)
{
	if (!dst[0] && v && *v)
		snprintf(dst, cap, "%s", v);
}

static int config_file(zt_api_config *c, zt_err *e)
{
	char path[PATH_MAX];
	const char *env = getenv("ZT_CONFIG"), *home = getenv("HOME");
	struct stat st;

	if (env && *env) {
		snprintf(path, sizeof path, "%s", env);
	} else if (home && *home) {
		if (snprintf(path, sizeof path, "%s/.config/zt/config.yaml", home) >= (int)sizeof path ||
		    stat(path, &st) != 0)
			return 0; /* no file: flags and environment only */
	} else {
		return 0;
	}
	if (stat(path, &st) != 0)
		return zt_err_set(e, ZT_ENOENT, "config file %s (from ZT_CONFIG): %s", path,
				  strerror(errno));
	json_t *docs = zt_doc_load_file(path, CONFIG_MAX, e), *d;
	int r = 0;

	if (!docs)
		return zt_err_wrap(e, "config file %s", path);
	if (json_array_size(docs) != 1 || !json_is_object(d = json_array_get(docs, 0))) {
		r = zt_err_set(e, ZT_EINVAL, "config file %s: expected one mapping (server, token, caFile, cert, key)", path);
		goto out;
	}
	static const struct {
		const char *key;
		size_t off, cap;
	} keys[] = {
		{"server", offsetof(zt_api_config, server), sizeof c->server},
		{"token", offsetof(zt_api_config, token), sizeof c->token},
		{"caFile", offsetof(zt_api_config, ca_file), sizeof c->ca_file},
		{"cert", offsetof(zt_api_config, cert), sizeof c->cert},
		{"key", offsetof(zt_api_config, key), sizeof c->key},
	};
	const char *k;
	json_t *v;

	json_object_foreach(d, k, v) {
		size_t i;

		for (i = 0; i < sizeof keys / sizeof keys[0]; i++)
			if (!strcmp(k, keys[i].key))
				break;
		if (i == sizeof keys / sizeof keys[0]) {
			r = zt_err_set(e, ZT_EINVAL, "config file %s: unknown key %.100s (known: server, token, caFile, cert, key)", path, k);
			goto out;
		}
		if (!json_is_string(v) || json_string_length(v) >= keys[i].cap) {
			r = zt_err_set(e, ZT_EINVAL, "config file %s: %s must be a string shorter than %zu bytes", path, k, keys[i].cap);
			goto out;
		}
		if (!strcmp(k, "token") && (st.st_mode & 077)) {
			r = zt_err_set(e, ZT_EINVAL, "config file %s holds a token but others can read it: chmod 600 %s", path, path);
			goto out;
		}
		set_if_empty((char *)c + keys[i].off, keys[i].cap, json_string_value(v));
	}
	snprintf(c->config_file, sizeof c->config_file, "%s", path);
out:
	json_decref(docs);
	return r;
}

/* The config file zt writes to: $ZT_CONFIG, else ~/.config/zt/config.yaml (its folder made). */
static int config_path(char *path, size_t cap, zt_err *e)
{
	const char *env = getenv("ZT_CONFIG"), *home = getenv("HOME");
	char dir[PATH_MAX];
	int r;

	if (env && *env)
		return snprintf(path, cap, "%s", env) >= (int)cap ? zt_err_set(e, ZT_EINVAL, "ZT_CONFIG is too long") : 0;
	if (!home || !*home)
		return zt_err_set(e, ZT_EINVAL, "no HOME: set ZT_CONFIG to the config file to write");
	if (snprintf(dir, sizeof dir, "%s/.config", home) >= (int)sizeof dir ||
	    snprintf(path, cap, "%s/.config/zt/config.yaml", home) >= (int)cap)
		return zt_err_set(e, ZT_EINVAL, "HOME is too long");
	if ((r = zt_mkdir(dir, 0700, e)) != 0)
		return r;
	snprintf(dir, sizeof dir, "%s/.config/zt", home);
	return zt_mkdir(dir, 0700, e);
}

int zt_api_config_save(const char *server, const char *ca_file, const char *token, char *path,
		       size_t cap, zt_err *e)
{
	static const char *const keys[] = {"server", "caFile", "cert", "key", "token", NULL};
	json_t *docs = NULL, *d = NULL;
	struct stat st;
	zt_buf out;
	int r;

	if ((r = config_path(path, cap, e)) != 0)
		return r;
	if (stat(path, &st) == 0) {
		if (!(docs = zt_doc_load_file(path, CONFIG_MAX, e)))
			return zt_err_wrap(e, "config file %s", path);
		d = json_array_get(docs, 0);
	}
	if (!json_is_object(d)) {
		json_decref(docs);
		docs = NULL;
		d = json_object();
	} else {
		json_incref(d);
	}
	/* the token is the server's that issued it: they are written together */
	if (server)
		json_object_set_new(d, "server", json_string(server));
	if (ca_file)
		json_object_set_new(d, "caFile", json_string(ca_file));
	if (token)
		json_object_set_new(d, "token", json_string(token));
	else
		json_object_del(d, "token");
	/* YAML whose values are JSON strings: any string written safely */
	zt_buf_init(&out, CONFIG_MAX);
	r = zt_buf_appendf(&out, e, "# zt's client settings (zt login writes the token); keep it private\n");
	for (size_t i = 0; keys[i] && r == 0; i++) {
		json_t *v = json_object_get(d, keys[i]);
		char *q;

		if (!json_is_string(v))
			continue;
		if (!(q = json_dumps(v, JSON_ENCODE_ANY))) {
			r = zt_err_set(e, ZT_ENOMEM, "out of memory");
			break;
		}
		r = zt_buf_appendf(&out, e, "%s: %s\n", keys[i], q);
		free(q);
	}
	if (r == 0)
		r = zt_file_write(path, out.p, out.len, 0600, 0, e);
	zt_buf_free(&out, 1);
	json_decref(d);
	json_decref(docs);
	return r;
}

int zt_api_config_resolve(zt_api_config *c, zt_err *e)
{
	int r;

	set_if_empty(c->server, sizeof c->server, getenv("ZT_SERVER"));
	set_if_empty(c->token, sizeof c->token, getenv("ZT_TOKEN"));
	set_if_empty(c->ca_file, sizeof c->ca_file, getenv("ZT_CA_FILE"));
	set_if_empty(c->cert, sizeof c->cert, getenv("ZT_CERT"));
	set_if_empty(c->key, sizeof c->key, getenv("ZT_KEY"));
	if ((r = config_file(c, e)) != 0)
		return r;
	if (!c->server[0])
		return zt_err_set(e, ZT_EINVAL, "which server? give --server URL, set ZT_SERVER, or put server: in the config file");
	if (!c->ca_file[0])
		return zt_err_set(e, ZT_EINVAL, "how to trust the server? give --ca-file BUNDLE, set ZT_CA_FILE, or put caFile: in the config file (GET /v1/bundle, or the server's state directory, has it)");
	if (!c->cert[0] != !c->key[0])
		return zt_err_set(e, ZT_EINVAL, "an SVID needs both its certificate (--cert) and its key (--key)");
	return 0;
}

/* The server proves it is the server: an SVID of our trust domain with the ID .../zt/server. */
static int verify_server(void *arg, STACK_OF(X509) *chain, zt_peer_info *out, zt_err *e)
{
	zt_api *a = arg;
	zt_svid_info info;
	char want[300];
	int r;

	snprintf(want, sizeof want, "spiffe://%s/zt/server", a->td);
	zt_svid_opts o = {.trust_domain = a->td};

	if ((r = zt_svid_verify(a->bundles, chain, &o, &info, e)) != 0)
		return r;
	if (strcmp(info.id.str, want))
		return zt_err_rule(e, ZT_EVERIFY, "server-id", "the peer is %s, not the server (%s)",
				   info.id.str, want);
	snprintf(out->id, sizeof out->id, "%s", info.id.str);
	out->not_after = info.chain_not_after;
	return 0;
}

zt_api *zt_api_new(const zt_api_config *c, zt_err *e)
{
	zt_api *a = calloc(1, sizeof *a);
	zt_bundle *b = NULL;
	STACK_OF(X509) *chain = NULL;
	X509 *leaf = NULL;
	EVP_PKEY *key = NULL;

	if (!a) {
		zt_err_set(e, ZT_ENOMEM, "out of memory");
		return NULL;
	}
	/* a token or an SVID goes only where TLS has proven the server */
	if (strncmp(c->server, "https://", 8)) {
		zt_err_set(e, ZT_EINVAL, "server URL %.200s: it must start with https://", c->server);
		goto fail;
	}
	if (!(b = zt_bundle_load(NULL, c->ca_file, e))) {
		zt_err_wrap(e, "the CA file %s", c->ca_file);
		goto fail;
	}
	snprintf(a->td, sizeof a->td, "%s", zt_bundle_td(b));
	if (!(a->bundles = zt_bundle_set_new()) || zt_bundle_set_put(a->bundles, b, e) != 0) {
		b = NULL;
		goto fail;
	}
	b = NULL;
	if (c->cert[0]) {
		if (zt_certs_load(c->cert, &chain, e) != 0 || !(key = zt_key_load(c->key, e)))
			goto fail;
		leaf = sk_X509_shift(chain);
	}
	snprintf(a->token, sizeof a->token, "%s", c->token);
	zt_tls_opts o = {.server = 0, .cert = leaf, .chain = chain, .key = key,
			 .verify = verify_server, .verify_arg = a};

	if (!(a->tls = zt_tls_ctx_new(&o, e)))
		goto fail;
	zt_httpc_opts ho = {.url = c->server, .tls = a->tls};

	if (!(a->http = zt_httpc_new(&ho, e)))
		goto fail;
	X509_free(leaf);
	sk_X509_pop_free(chain, X509_free);
	EVP_PKEY_free(key);
	return a;
fail:
	zt_bundle_free(b);
	X509_free(leaf);
	sk_X509_pop_free(chain, X509_free);
	EVP_PKEY_free(key);
	zt_api_free(a);
	return NULL;
}

void zt_api_free(zt_api *a)
{
	if (!a)
		return;
	zt_httpc_free(a->http);
	SSL_CTX_free(a->tls);
	zt_bundle_set_free(a->bundles);
	zt_wipe(a->token, sizeof a->token);
	free(a);
}

const char *zt_api_td(const zt_api *a)
{
	return a->td;
}

void zt_api_set_cancel(zt_api *a, int fd)
{
	zt_httpc_set_cancel(a->http, fd);
}

void zt_api_disconnect(zt_api *a)
{
	zt_httpc_close(a->http);
}

int zt_api_call_raw(zt_api *a, const char *method, const char *path, const void *body,
		    size_t len, const char *content_type, int timeout_ms, zt_api_resp *r,
		    zt_err *e)
{
	char auth[ZT_API_TOKEN_MAX + 16];
	const char *h[8];
	size_t n = 0;
	zt_httpc_resp hr;
	int rc;

	memset(r, 0, sizeof *r);
	zt_buf_init(&r->body, 0);
	h[n++] = "Accept";
	h[n++] = "application/json";
	if (a->token[0]) {
		snprintf(auth, sizeof auth, "Bearer %s", a->token);
		h[n++] = "Authorization";
		h[n++] = auth;
	}
	if (body || len) {
		h[n++] = "Content-Type";
		h[n++] = content_type ? content_type : "application/json";
	}
	h[n] = NULL;
	rc = zt_httpc_do(a->http, method, path, h, body, len, timeout_ms, &hr, e);
	zt_wipe(auth, sizeof auth);
	if (rc != 0)
		return zt_err_wrap(e, "%s %s", method, path);
	r->status = hr.status;
	r->body = hr.body; /* taken over */
	snprintf(r->request_id, sizeof r->request_id, "%s", hr.request_id);
	if (r->body.len && !strncmp(hr.content_type, "application/json", 16))
		r->json = json_loadb((const char *)r->body.p, r->body.len, JSON_REJECT_DUPLICATES, NULL);
	return 0;
}

int zt_api_call(zt_api *a, const char *method, const char *path, const json_t *body,
		const char *if_match, int timeout_ms, zt_api_resp *r, zt_err *e)
{
	char *text = NULL;
	int rc;

	if (body && !(text = json_dumps(body, JSON_COMPACT)))
		return zt_err_set(e, ZT_ENOMEM, "out of memory");
	if (if_match) {
		/* the API takes the version as ?version= too: one path for both */
		char p[4096];

		if (snprintf(p, sizeof p, "%s%sversion=%s", path, strchr(path, '?') ? "&" : "?",
			     if_match) >= (int)sizeof p) {
			free(text);
			return zt_err_set(e, ZT_ELIMIT, "request path too long");
		}
		rc = zt_api_call_raw(a, method, p, text, text ? strlen(text) : 0, NULL, timeout_ms, r, e);
	} else {
		rc = zt_api_call_raw(a, method, path, text, text ? strlen(text) : 0, NULL, timeout_ms, r, e);
	}
	free(text);
	return rc;
}

void zt_api_resp_free(zt_api_resp *r)
{
	json_decref(r->json);
	r->json = NULL;
	zt_buf_free(&r->body, 0);
}

const char *zt_api_resp_message(const zt_api_resp *r)
{
	static _Thread_local char msg[600];
	const char *m = json_string_value(json_object_get(json_object_get(r->json, "error"), "message"));

	if (m)
		return m;
	size_t n = r->body.len < sizeof msg - 1 ? r->body.len : sizeof msg - 1;

	for (size_t i = 0; i < n; i++)
		msg[i] = r->body.p[i] >= 0x20 && r->body.p[i] < 0x7f ? (char)r->body.p[i] : ' ';
	msg[n] = '\0';
	return msg;
}

int zt_api_escape(const char *s, char *out, size_t cap)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t o = 0;

	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;
		int plain = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
			    (ch >= '0' && ch <= '9') || ch == '-' || ch == '_' || ch == '.' || ch == '~';

		if (o + (plain ? 1 : 3) >= cap)
			return -1;
		if (plain) {
			out[o++] = (char)ch;
		} else {
			out[o++] = '%';
			out[o++] = hex[ch >> 4];
			out[o++] = hex[ch & 15];
		}
	}
	if (o >= cap)
		return -1;
	out[o] = '\0';
	return 0;
}
