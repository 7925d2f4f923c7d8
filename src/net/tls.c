/*
 * net/tls.c: mutual TLS contexts for SPIFFE peers on OpenSSL 3.
 *
 * Peers are judged by a verify function the caller supplies (the SVID
 * rules), in place of OpenSSL's X509_verify_cert, never by host name. A
 * resumed session skips certificate verification, so resumption is off
 * unless asked for, and then the verdict of the full handshake travels
 * with the session and is taken only while it holds (net.h).
 */
#include "net.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/x509_vfy.h>

struct verdict {
	char peer_id[2049];
	char serial[64];   /* the leaf's serial (hex), "" after a resumption */
	char error[ZT_ERR_MSG_MAX + 64];
	int ok;
	int64_t not_after; /* when ok: the verified chain's earliest expiry */
};

static int ex_verdict = -1; /* SSL ex_data slot for struct verdict */

/* ex_data entries are plain OPENSSL_malloc'd records */
static void free_ex(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl, void *argp)
{
	(void)parent;
	(void)ad;
	(void)idx;
	(void)argl;
	(void)argp;
	OPENSSL_free(ptr);
}

#define CLIENT_SESSIONS 64

/* A client's session for one peer, and the verdict it carries. */
struct kept_session {
	char key[128];
	SSL_SESSION *sess;
	int64_t not_after;
	uint64_t used; /* for replacing the least recently kept */
};

struct ctx_data {
	zt_peer_verify_fn verify;
	void *arg;
	pthread_mutex_t mu; /* the kept sessions */
	struct kept_session kept[CLIENT_SESSIONS];
	uint64_t clock;
};

static void free_ctx_data(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl, void *argp)
{
	struct ctx_data *cd = ptr;

	(void)parent;
	(void)ad;
	(void)idx;
	(void)argl;
	(void)argp;
	if (!cd)
		return;
	for (size_t i = 0; i < CLIENT_SESSIONS; i++)
		SSL_SESSION_free(cd->kept[i].sess);
	pthread_mutex_destroy(&cd->mu);
	OPENSSL_free(cd);
}

static int ex_ctx = -1;     /* SSL_CTX ex_data slot for struct ctx_data */
static int ex_peer_key = -1; /* SSL ex_data slot: the client's name for its peer */
static int ex_sess = -1;    /* SSL_SESSION ex_data slot: a client session's verdict */

static struct verdict *verdict_of(const SSL *ssl)
{
	return SSL_get_ex_data(ssl, ex_verdict);
}

static void set_verdict(SSL *ssl, struct verdict *v)
{
	OPENSSL_free(SSL_get_ex_data(ssl, ex_verdict));
	SSL_set_ex_data(ssl, ex_verdict, v);
}

/* Replaces X509_verify_cert for the handshake: the SPIFFE rules decide. */
static int verify_peer(X509_STORE_CTX *xs, void *unused)
{
	SSL *ssl = X509_STORE_CTX_get_ex_data(xs, SSL_get_ex_data_X509_STORE_CTX_idx());
	struct ctx_data *cd = SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), ex_ctx);
	STACK_OF(X509) *untrusted = X509_STORE_CTX_get0_untrusted(xs);
	X509 *leaf = X509_STORE_CTX_get0_cert(xs);
	STACK_OF(X509) *chain = sk_X509_new_null();
	struct verdict *v = OPENSSL_zalloc(sizeof *v);
	zt_peer_info info;
	zt_err e;
	int ok = 0;

	(void)unused;
	if (!v || !chain || !leaf || !sk_X509_push(chain, leaf)) {
		X509_STORE_CTX_set_error(xs, X509_V_ERR_OUT_OF_MEM);
		goto out;
	}
	/* the peer's chain as sent: the leaf first, then what came with it */
	for (int i = 0; i < sk_X509_num(untrusted); i++) {
		X509 *c = sk_X509_value(untrusted, i);

		/* libssl passes the whole chain, the leaf itself first */
		if (c != leaf && !sk_X509_push(chain, c)) {
			X509_STORE_CTX_set_error(xs, X509_V_ERR_OUT_OF_MEM);
			goto out;
		}
	}
	zt_err_clear(&e);
	if (cd && cd->verify(cd->arg, chain, &info, &e) == 0) {
		snprintf(v->peer_id, sizeof v->peer_id, "%s", info.id);
		snprintf(v->serial, sizeof v->serial, "%s", info.serial);
		v->not_after = info.not_after;
		v->ok = 1;
		ok = 1;
	} else {
		snprintf(v->error, sizeof v->error, "%s%s%s%s", e.rule[0] ? "[" : "", e.rule,
			 e.rule[0] ? "] " : "", e.msg[0] ? e.msg : "peer refused");
		X509_STORE_CTX_set_error(xs, X509_V_ERR_APPLICATION_VERIFICATION);
	}
out:
	sk_X509_free(chain); /* the certificates belong to the store context */
	if (v)
		set_verdict(ssl, v);
	return ok;
}

/* ---- resumption ---- */

/*
 * Server: the verdict goes into the ticket, encrypted with this context's
 * own keys (OpenSSL makes them per SSL_CTX), as "zt1 NOT_AFTER ID".
 */
static int ticket_gen(SSL *ssl, void *arg)
{
	const struct verdict *v = verdict_of(ssl);
	char data[2200];
	int n;

	(void)arg;
	if (!v || !v->ok)
		return 1; /* a ticket without a verdict is never taken (ticket_dec) */
	n = snprintf(data, sizeof data, "zt1 %lld %s", (long long)v->not_after, v->peer_id);
	if (n < 0 || (size_t)n >= sizeof data)
		return 1;
	return SSL_SESSION_set1_ticket_appdata(SSL_get0_session(ssl), data, (size_t)n);
}

static SSL_TICKET_RETURN ticket_dec(SSL *ssl, SSL_SESSION *ss, const unsigned char *keyname,
				    size_t keyname_len, SSL_TICKET_STATUS status, void *arg)
{
	struct verdict *v;
	void *data = NULL;
	size_t len = 0;
	long long not_after;
	int idpos = 0;
	char buf[2200];

	(void)keyname;
	(void)keyname_len;
	(void)arg;
	if (status == SSL_TICKET_FATAL_ERR_MALLOC || status == SSL_TICKET_FATAL_ERR_OTHER)
		return SSL_TICKET_RETURN_ABORT;
	if (status != SSL_TICKET_SUCCESS && status != SSL_TICKET_SUCCESS_RENEW)
		return SSL_TICKET_RETURN_IGNORE_RENEW; /* not ours, or stale: a full handshake */
	if (!SSL_SESSION_get0_ticket_appdata(ss, &data, &len) || !data || len == 0 || len >= sizeof buf)
		return SSL_TICKET_RETURN_IGNORE_RENEW;
	memcpy(buf, data, len);
	buf[len] = '\0';
	if (sscanf(buf, "zt1 %lld %n", &not_after, &idpos) != 1 || idpos <= 0 || !buf[idpos] ||
	    not_after <= zt_now())
		return SSL_TICKET_RETURN_IGNORE_RENEW; /* the chain has expired since: judge afresh */
	if (!(v = OPENSSL_zalloc(sizeof *v)))
		return SSL_TICKET_RETURN_IGNORE_RENEW;
	snprintf(v->peer_id, sizeof v->peer_id, "%s", buf + idpos);
	v->not_after = not_after;
	v->ok = 1;
	set_verdict(ssl, v);
	return status == SSL_TICKET_SUCCESS ? SSL_TICKET_RETURN_USE : SSL_TICKET_RETURN_USE_RENEW;
}

/* Client: a session the server issued is kept with the connection's verdict. */
static int client_new_session(SSL *ssl, SSL_SESSION *sess)
{
	struct ctx_data *cd = SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), ex_ctx);
	const char *key = SSL_get_ex_data(ssl, ex_peer_key);
	const struct verdict *v = verdict_of(ssl);
	struct verdict *copy;
	struct kept_session *k = NULL;
	int64_t limit = zt_now() + ZT_TLS_TICKET_SECONDS;

	if (!cd || !key || !v || !v->ok || !(copy = OPENSSL_malloc(sizeof *copy)))
		return 0; /* not kept: OpenSSL frees it */
	*copy = *v;
	if (copy->not_after > limit)
		copy->not_after = limit;
	if (!SSL_SESSION_set_ex_data(sess, ex_sess, copy)) {
		OPENSSL_free(copy);
		return 0;
	}
	pthread_mutex_lock(&cd->mu);
	for (size_t i = 0; i < CLIENT_SESSIONS && !k; i++)
		if (cd->kept[i].sess && strcmp(cd->kept[i].key, key) == 0)
			k = &cd->kept[i];
	for (size_t i = 0; i < CLIENT_SESSIONS && !k; i++)
		if (!cd->kept[i].sess)
			k = &cd->kept[i];
	if (!k) {
		k = &cd->kept[0];
		for (size_t i = 1; i < CLIENT_SESSIONS; i++)
			if (cd->kept[i].used < k->used)
				k = &cd->kept[i];
	}
	SSL_SESSION_free(k->sess);
	snprintf(k->key, sizeof k->key, "%s", key);
	k->sess = sess; /* returning 1: the reference is ours */
	k->not_after = copy->not_after;
	k->used = ++cd->clock;
	pthread_mutex_unlock(&cd->mu);
	return 1;
}

void zt_tls_client_resume(SSL *ssl, const char *peer_key)
{
	struct ctx_data *cd = SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), ex_ctx);
	char *key;

	if (!cd || ex_peer_key < 0 || !(key = OPENSSL_strdup(peer_key)))
		return;
	OPENSSL_free(SSL_get_ex_data(ssl, ex_peer_key));
	SSL_set_ex_data(ssl, ex_peer_key, key);
	pthread_mutex_lock(&cd->mu);
	for (size_t i = 0; i < CLIENT_SESSIONS; i++) {
		struct kept_session *k = &cd->kept[i];

		if (!k->sess || strcmp(k->key, key) != 0)
			continue;
		if (k->not_after > zt_now() && SSL_SESSION_is_resumable(k->sess)) {
			(void)SSL_set_session(ssl, k->sess);
			k->used = ++cd->clock;
		} else { /* its verdict no longer holds */
			SSL_SESSION_free(k->sess);
			k->sess = NULL;
		}
		break;
	}
	pthread_mutex_unlock(&cd->mu);
}

/*
 * The end of a handshake. A client that resumed takes the verdict the
 * session carries (the certificate check did not run); without one, or
 * past its time, the peer stays unverified and the caller refuses it.
 */
static void on_info(const SSL *cssl, int where, int ret)
{
	SSL *ssl = (SSL *)(uintptr_t)cssl; /* OpenSSL's callback type is const */
	const struct verdict *sv;
	struct verdict *v;

	(void)ret;
	if (!(where & SSL_CB_HANDSHAKE_DONE) || SSL_is_server(ssl) || !SSL_session_reused(ssl))
		return;
	sv = SSL_SESSION_get_ex_data(SSL_get0_session(ssl), ex_sess);
	if (!(v = OPENSSL_zalloc(sizeof *v)))
		return;
	if (sv && sv->ok && sv->not_after > zt_now())
		*v = *sv;
	else
		snprintf(v->error, sizeof v->error, "a resumed session without a verdict that still holds");
	set_verdict(ssl, v);
}

SSL_CTX *zt_tls_ctx_new(const zt_tls_opts *o, zt_err *e)
{
	static char groups[] = "X25519:P-256"; /* the macro below casts away const */
	SSL_CTX *ctx = NULL;
	struct ctx_data *cd = NULL;

	if (ex_verdict < 0)
		ex_verdict = SSL_get_ex_new_index(0, NULL, NULL, NULL, free_ex);
	if (ex_peer_key < 0)
		ex_peer_key = SSL_get_ex_new_index(0, NULL, NULL, NULL, free_ex);
	if (ex_sess < 0)
		ex_sess = SSL_SESSION_get_ex_new_index(0, NULL, NULL, NULL, free_ex);
	if (ex_ctx < 0)
		ex_ctx = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, free_ctx_data);
	/* a client may go without a certificate (people bring tokens); servers may not */
	if ((o->server || o->cert || o->key) && (!o->cert || !o->key)) {
		zt_err_set(e, ZT_EINVAL, "a TLS context needs a certificate and its key");
		return NULL;
	}
	if (!o->verify) {
		zt_err_set(e, ZT_EINVAL, "a TLS context needs a peer verifier");
		return NULL;
	}
	ctx = SSL_CTX_new(o->server ? TLS_server_method() : TLS_client_method());
	cd = OPENSSL_zalloc(sizeof *cd);
	if (!ctx || !cd || ex_verdict < 0 || ex_ctx < 0 || ex_peer_key < 0 || ex_sess < 0)
		goto fail;
	pthread_mutex_init(&cd->mu, NULL);
	cd->verify = o->verify;
	cd->arg = o->verify_arg;
	if (!SSL_CTX_set_ex_data(ctx, ex_ctx, cd))
		goto fail;
	cd = NULL;
	if (!SSL_CTX_set_min_proto_version(ctx, o->allow_tls12 ? TLS1_2_VERSION : TLS1_3_VERSION) ||
	    !SSL_CTX_set1_groups_list(ctx, groups) ||
	    (o->cert && (!SSL_CTX_use_certificate(ctx, o->cert) ||
			 !SSL_CTX_use_PrivateKey(ctx, o->key) || !SSL_CTX_check_private_key(ctx))))
		goto fail;
	for (int i = 0; o->chain && i < sk_X509_num(o->chain); i++)
		if (!SSL_CTX_add1_chain_cert(ctx, sk_X509_value(o->chain, i)))
			goto fail;
	if (o->allow_tls12 &&
	    !SSL_CTX_set_cipher_list(ctx, "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305"))
		goto fail;
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION |
					 SSL_OP_CIPHER_SERVER_PREFERENCE);
	if (!o->resume) { /* every connection is verified: no resumption, no tickets */
		SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
		SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
		SSL_CTX_set_num_tickets(ctx, 0);
	} else if (o->server) {
		/* stateless tickets only (no server cache), one per handshake */
		SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
		SSL_CTX_set_num_tickets(ctx, 1);
		SSL_CTX_set_timeout(ctx, ZT_TLS_TICKET_SECONDS);
		/* with client certificates OpenSSL refuses to resume without one */
		if (!SSL_CTX_set_session_id_context(ctx, (const unsigned char *)"zt-mtls", 7) ||
		    !SSL_CTX_set_session_ticket_cb(ctx, ticket_gen, ticket_dec, NULL))
			goto fail;
	} else {
		SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
		SSL_CTX_sess_set_new_cb(ctx, client_new_session);
		SSL_CTX_set_info_callback(ctx, on_info);
	}
	SSL_CTX_set_verify(ctx,
			   SSL_VERIFY_PEER |
				   (o->server && o->peer_optional ? 0 : SSL_VERIFY_FAIL_IF_NO_PEER_CERT),
			   NULL);
	SSL_CTX_set_cert_verify_callback(ctx, verify_peer, NULL);
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
				      SSL_MODE_RELEASE_BUFFERS);
	/*
	 * Read what the socket has, not one record header at a time: a
	 * handshake took 11 read(2) calls without it. The proxy keeps calling
	 * SSL_read until it would block, so bytes buffered here are not
	 * stranded waiting for an epoll event.
	 */
	SSL_CTX_set_read_ahead(ctx, 1);
	return ctx;
fail:
	zt_crypto_err(e, ZT_ECRYPTO, "cannot set up TLS (certificate, key or settings refused)");
	OPENSSL_free(cd);
	SSL_CTX_free(ctx);
	return NULL;
}

/* ALPN (RFC 7301): the edge speaks HTTP/1.1 only; a client offering only
 * other protocols goes on without ALPN rather than being refused. */
static int alpn_http11(SSL *ssl, const unsigned char **out, unsigned char *outlen,
		       const unsigned char *in, unsigned int inlen, void *arg)
{
	(void)ssl;
	(void)arg;
	for (unsigned int i = 0; i < inlen;) {
		unsigned int n = in[i];

		if (i + 1 + n > inlen)
			break;
		if (n == 8 && memcmp(in + i + 1, "http/1.1", 8) == 0) {
			*out = in + i + 1;
			*outlen = (unsigned char)n;
			return SSL_TLSEXT_ERR_OK;
		}
		i += 1 + n;
	}
	return SSL_TLSEXT_ERR_NOACK;
}

SSL_CTX *zt_tls_edge_ctx_new(X509 *cert, STACK_OF(X509) *chain, EVP_PKEY *key, zt_err *e)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());

	if (!ctx || !SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) ||
	    !SSL_CTX_use_certificate(ctx, cert) || !SSL_CTX_use_PrivateKey(ctx, key) ||
	    !SSL_CTX_check_private_key(ctx))
		goto fail;
	for (int i = 0; chain && i < sk_X509_num(chain); i++)
		if (!SSL_CTX_add1_chain_cert(ctx, sk_X509_value(chain, i)))
			goto fail;
	/* TLS 1.2: forward-secret AEAD suites only (RFC 9325 4.2) */
	if (!SSL_CTX_set_cipher_list(ctx, "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
					  "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
					  "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"))
		goto fail;
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION |
					 SSL_OP_CIPHER_SERVER_PREFERENCE);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
	SSL_CTX_set_alpn_select_cb(ctx, alpn_http11, NULL);
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
				      SSL_MODE_RELEASE_BUFFERS);
	SSL_CTX_set_read_ahead(ctx, 1);
	return ctx;
fail:
	zt_crypto_err(e, ZT_ECRYPTO, "cannot set up the edge TLS context (certificate or key refused)");
	SSL_CTX_free(ctx);
	return NULL;
}

SSL_CTX *zt_tls_webpki_ctx_new(const char *ca_file, zt_err *e)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());

	if (!ctx || !SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION)) {
		zt_crypto_err(e, ZT_ECRYPTO, "cannot set up a TLS client context");
		SSL_CTX_free(ctx);
		return NULL;
	}
	if (ca_file ? SSL_CTX_load_verify_locations(ctx, ca_file, NULL) != 1
		    : SSL_CTX_set_default_verify_paths(ctx) != 1) {
		zt_crypto_err(e, ZT_EINVAL, ca_file ? "cannot read the CA certificates" : "no system CA store");
		if (ca_file)
			zt_err_wrap(e, "%s", ca_file);
		SSL_CTX_free(ctx);
		return NULL;
	}
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
	return ctx;
}

const char *zt_tls_peer_id(const SSL *ssl)
{
	const struct verdict *v = verdict_of(ssl);

	return v && v->ok ? v->peer_id : NULL;
}

const char *zt_tls_peer_serial(const SSL *ssl)
{
	const struct verdict *v = verdict_of(ssl);

	return v && v->ok ? v->serial : NULL;
}

const char *zt_tls_peer_error(const SSL *ssl)
{
	static _Thread_local char buf[sizeof ((struct verdict *)0)->error];
	const struct verdict *v = verdict_of(ssl);

	/* a copy: callers log the reason after they have freed the SSL */
	if (v && !v->ok) {
		snprintf(buf, sizeof buf, "%s", v->error);
		return buf;
	}
	if (!v)
		return "the peer presented no certificate";
	return NULL;
}

enum zt_tls_io zt_tls_result(SSL *ssl, int ret)
{
	if (ret > 0)
		return ZT_TLS_DONE;
	switch (SSL_get_error(ssl, ret)) {
	case SSL_ERROR_WANT_READ:
		return ZT_TLS_WANT_READ;
	case SSL_ERROR_WANT_WRITE:
		return ZT_TLS_WANT_WRITE;
	case SSL_ERROR_ZERO_RETURN:
		return ZT_TLS_CLOSED;
	default:
		return ZT_TLS_ERROR;
	}
}

const char *zt_tls_error_text(void)
{
	static _Thread_local char buf[256];
	unsigned long ec = ERR_peek_last_error();

	if (!ec)
		return "connection error";
	ERR_error_string_n(ec, buf, sizeof buf);
	ERR_clear_error();
	return buf;
}
