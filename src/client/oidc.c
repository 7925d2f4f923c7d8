/*
 * client/oidc.c: an identity provider's signing keys, fetched over HTTPS:
 * a JWK Set from its jwks_uri, found through OpenID Connect Discovery 1.0
 * when only the issuer is known.
 *
 * The provider is outside the mesh, so it is trusted the Web PKI's way
 * (net/tls.c's zt_tls_webpki_ctx_new: a CA file or the system store, and
 * the host name in the certificate). Plain http:// is taken only for
 * loopback addresses, where a test or a local provider runs.
 */
#include "client/client.h"

#include <string.h>

#include <openssl/ssl.h>

#include "crypto/crypto.h"
#include "net/httpc.h"
#include "net/net.h"

#define OIDC_DOC_MAX (64 * 1024)

/* http:// only towards this machine */
static int loopback(const char *host, size_t n)
{
	static const char *const names[] = {"localhost", "127.0.0.1", "[::1]"};

	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
		if (n == strlen(names[i]) && memcmp(host, names[i], n) == 0)
			return 1;
	return n > 4 && memcmp(host, "127.", 4) == 0 && strspn(host, "0123456789.") == n;
}

/* "https://host[:port]/path?q" -> origin "https://host[:port]" and target "/path?q" */
static int split_url(const char *url, char *origin, size_t ocap, char *target, size_t tcap, zt_err *e)
{
	size_t scheme, hl, n = strlen(url);
	const char *host, *rest;

	if (n > 2000)
		return zt_err_set(e, ZT_EINVAL, "URL longer than 2000 bytes");
	if (!strncmp(url, "https://", 8))
		scheme = 8;
	else if (!strncmp(url, "http://", 7))
		scheme = 7;
	else
		return zt_err_set(e, ZT_EINVAL, "URL %.200s: it must start with https://", url);
	host = url + scheme;
	rest = host + strcspn(host, "/?#");
	hl = strcspn(host, ":/?#");
	if (scheme == 7 && !loopback(host, hl))
		return zt_err_set(e, ZT_EINVAL, "URL %.200s: plain http:// is allowed only to loopback; use https://",
				  url);
	if (strchr(rest, '#'))
		return zt_err_set(e, ZT_EINVAL, "URL %.200s: a fragment has no place here", url);
	if ((size_t)(rest - url) >= ocap || strlen(rest) + 2 > tcap)
		return zt_err_set(e, ZT_EINVAL, "URL %.200s is too long", url);
	memcpy(origin, url, (size_t)(rest - url));
	origin[rest - url] = '\0';
	snprintf(target, tcap, "%s%s", *rest == '/' ? "" : "/", rest);
	return zt_httpc_url_check(origin, e);
}

/* GETs url's JSON document (status 200, at most max bytes). Caller decrefs. */
static json_t *get_json(const char *url, const char *ca_file, int timeout_ms, int cancel_fd, size_t max,
			zt_err *e)
{
	char origin[512], target[2048];
	static const char *const hdrs[] = {"Accept", "application/json", NULL};
	zt_httpc_opts o = {.url = origin, .max_body = max};
	zt_httpc_resp resp;
	zt_httpc *c = NULL;
	SSL_CTX *tls = NULL;
	json_t *v = NULL;

	memset(&resp, 0, sizeof resp);
	if (split_url(url, origin, sizeof origin, target, sizeof target, e) != 0)
		return NULL;
	if (!strncmp(url, "https://", 8) && !(tls = zt_tls_webpki_ctx_new(ca_file, e)))
		return NULL;
	o.tls = tls;
	o.connect_timeout_ms = timeout_ms;
	if (!(c = zt_httpc_new(&o, e)))
		goto out;
	zt_httpc_set_cancel(c, cancel_fd);
	if (zt_httpc_do(c, "GET", target, hdrs, NULL, 0, timeout_ms, &resp, e) != 0)
		goto out;
	if (resp.status != 200) {
		zt_err_rule(e, ZT_EIO, "http-status", "GET %.300s answered HTTP %d", url, resp.status);
		goto out;
	}
	if (!(v = zt_json_parse((const char *)resp.body.p, resp.body.len, e)))
		zt_err_wrap(e, "GET %.300s", url);
out:
	zt_httpc_resp_free(&resp);
	zt_httpc_free(c);
	SSL_CTX_free(tls);
	return v;
}

int zt_oidc_discover(const char *issuer, const char *ca_file, int timeout_ms, int cancel_fd,
		     char *jwks_uri, size_t cap, zt_err *e)
{
	char url[2100];
	size_t n = strlen(issuer);
	const json_t *iss, *uri;
	json_t *doc;
	int r = 0;

	/* Discovery 4: the issuer, without a trailing "/", then the well-known path */
	if (n == 0 || n > 2000)
		return zt_err_set(e, ZT_EINVAL, "an issuer is a URL of at most 2000 bytes");
	snprintf(url, sizeof url, "%.*s/.well-known/openid-configuration",
		 (int)(issuer[n - 1] == '/' ? n - 1 : n), issuer);
	if (!(doc = get_json(url, ca_file, timeout_ms, cancel_fd, OIDC_DOC_MAX, e)))
		return -ZT_EIO;
	iss = json_object_get(doc, "issuer");
	uri = json_object_get(doc, "jwks_uri");
	/* Discovery 4.3: the issuer in the document is exactly the one asked for */
	if (!json_is_string(iss) || strcmp(json_string_value(iss), issuer) != 0)
		r = zt_err_rule(e, ZT_EVERIFY, "oidc-issuer",
				"the discovery document at %.300s names another issuer", url);
	else if (!json_is_string(uri) || json_string_length(uri) >= cap)
		r = zt_err_rule(e, ZT_EPARSE, "oidc-jwks-uri", "the discovery document at %.300s has no usable jwks_uri",
				url);
	else
		memcpy(jwks_uri, json_string_value(uri), json_string_length(uri) + 1);
	json_decref(doc);
	return r;
}

int zt_jwks_fetch(const char *url, const char *ca_file, int timeout_ms, int cancel_fd, int flags,
		  zt_jwks *out, zt_err *e)
{
	json_t *v = get_json(url, ca_file, timeout_ms, cancel_fd, ZT_JWKS_MAX_BYTES, e);
	int r;

	if (!v)
		return -ZT_EIO;
	memset(out, 0, sizeof *out);
	if ((r = zt_jwks_from_json(v, flags, out, e)) != 0) {
		zt_jwks_free(out);
		zt_err_wrap(e, "%.300s", url);
	}
	json_decref(v);
	return r;
}
