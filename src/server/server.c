/*
 * server/server.c: the daemon. It sets up a new state directory, opens the
 * store, the CA and the audit log, serves the API over TLS with its own
 * certificate, and drains on SIGTERM.
 *
 * State directory:
 *   ca/         the trust domain's CA (identity module; keys sealed with a KEK)
 *   audit/      the audit log (audit module)
 *   store.db    the store (SQLite)
 *   server.pem  the server's SVID chain (spiffe://TD/zt/server, DNS localhost)
 *   server.key  its key (sealed with a KEK)
 *   bundle.pem  the trust bundle, for clients (ZT_CA_FILE)
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/bn.h>

#include "crypto/crypto.h"
#include "identity/identity.h"
#include "net/net.h"
#include "server/server_int.h"

#define SERVER_CERT_TTL (7 * 86400)

static int path_in(char *out, size_t n, const char *dir, const char *name, zt_err *e)
{
	return zt_path_join(out, n, e, "%s/%s", dir, name);
}

/*
 * The server's own SVID: issued at first start, again once half its life
 * is gone (or when the key on disk is not the certificate's: a crash
 * between the two renames below). The caller holds the CA. 1 when a new
 * one was issued, 0 when the one on disk stays, or a negative error.
 */
static int server_cert(srv *s, const char *dir, zt_ca *ca, zt_err *e)
{
	char crt[4200], key[4200], crt_new[4300], key_new[4300];
	STACK_OF(X509) *have = NULL;
	zt_spiffe_id id;
	int64_t nb, na;
	int r;

	if ((r = path_in(crt, sizeof crt, dir, "server.pem", e)) != 0 ||
	    (r = path_in(key, sizeof key, dir, "server.key", e)) != 0)
		return r;
	snprintf(crt_new, sizeof crt_new, "%s.new", crt);
	snprintf(key_new, sizeof key_new, "%s.new", key);
	if (zt_path_exists(crt) && zt_certs_load(crt, &have, NULL) == 0) {
		EVP_PKEY *k = zt_key_load(key, NULL);
		X509 *leaf = sk_X509_value(have, 0);
		int fresh = k && leaf && X509_check_private_key(leaf, k) == 1 &&
			    zt_cert_times(leaf, &nb, &na) == 0 && zt_now() < nb + (na - nb) / 2;

		EVP_PKEY_free(k);
		sk_X509_pop_free(have, X509_free);
		if (fresh)
			return 0;
	}
	char sid[600], nas[32];
	static const char *const dns[] = {"localhost"};
	zt_issue_opts io = {SERVER_CERT_TTL, dns, 1};
	EVP_PKEY *k = NULL;
	zt_pubkey *pub = NULL;
	zt_buf der, pem;

	snprintf(sid, sizeof sid, "spiffe://%s/zt/server", zt_ca_td(ca));
	zt_buf_init(&der, 1u << 20);
	zt_buf_init(&pem, 1u << 20);
	if ((r = zt_id_parse(sid, strlen(sid), &id, e)) != 0)
		goto out;
	if (!(k = zt_key_generate(e)) || !(pub = zt_pubkey_from_pkey(k, e))) {
		r = -ZT_ECRYPTO;
		goto out;
	}
	unlink(key_new); /* a leftover of an interrupted renewal; zt_key_store never replaces */
	if ((r = zt_ca_issue(ca, &id, pub, &io, &der, e)) != 0 ||
	    (r = zt_der_certs_to_pem(der.p, der.len, &pem, e)) != 0 ||
	    (r = zt_key_store(key_new, k, e)) != 0 ||
	    (r = zt_file_write(crt_new, pem.p, pem.len, 0644, 0, e)) != 0)
		goto out;
	if (rename(key_new, key) != 0 || rename(crt_new, crt) != 0) {
		r = zt_err_set(e, ZT_EIO, "cannot put the server's new certificate in place: %s",
			       strerror(errno));
		goto out;
	}
	/* every certificate issued is on the audit log */
	const unsigned char *dp = der.p;
	X509 *leaf = d2i_X509(NULL, &dp, (long)der.len);

	nas[0] = '\0';
	if (leaf && zt_cert_times(leaf, &nb, &na) == 0)
		zt_audit_time_format(na * 1000, nas);
	X509_free(leaf);
	static const zt_http_req self = {.request_id = "server-certificate", .query = ""};

	r = srv_audit(s, &self, "zt-server", "svid.issue", sid, "allow",
		      json_pack("{s:s,s:s}", "id", sid, "not_after", nas), e);
	if (r == 0)
		r = 1;
out:
	zt_buf_free(&der, 0);
	zt_buf_free(&pem, 0);
	zt_pubkey_free(pub);
	EVP_PKEY_free(k);
	return r;
}

/* mTLS callers (proxies, agents) present SVIDs of this trust domain. */
static int verify_client(void *arg, STACK_OF(X509) *chain, zt_peer_info *out, zt_err *e)
{
	zt_svid_info info;
	int r;

	if ((r = zt_svid_verify(arg, chain, NULL, &info, e)) != 0)
		return r;
	snprintf(out->id, sizeof out->id, "%s", info.id.str);
	out->not_after = info.chain_not_after;
	/* the serial: an agent is known by the certificates it was last given (agents.c) */
	BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(sk_X509_value(chain, 0)), NULL);
	char *hex = bn ? BN_bn2hex(bn) : NULL;

	snprintf(out->serial, sizeof out->serial, "%s", hex ? hex : "");
	OPENSSL_free(hex);
	BN_free(bn);
	return 0;
}

static SSL_CTX *server_tls(const char *dir, zt_bundle_set *set, zt_err *e)
{
	char crt[4200], key[4200];
	STACK_OF(X509) *chain = NULL;
	EVP_PKEY *k = NULL;
	SSL_CTX *ctx = NULL;

	if (path_in(crt, sizeof crt, dir, "server.pem", e) != 0 ||
	    path_in(key, sizeof key, dir, "server.key", e) != 0 ||
	    zt_certs_load(crt, &chain, e) != 0 || !(k = zt_key_load(key, e)))
		goto out;
	X509 *leaf = sk_X509_shift(chain);
	zt_tls_opts o = {.server = 1, .allow_tls12 = 1, .cert = leaf, .chain = chain, .key = k,
			 .verify = verify_client, .verify_arg = set, .peer_optional = 1};

	ctx = zt_tls_ctx_new(&o, e);
	X509_free(leaf);
out:
	sk_X509_pop_free(chain, X509_free);
	EVP_PKEY_free(k);
	return ctx;
}

/* A new state directory: CA, audit log, and the bootstrap administrator. */
static int bootstrap(srv *s, const zt_server_config *c, const char *dir, char *token, size_t cap,
		     zt_err *e)
{
	static const zt_http_req boot = {.request_id = "bootstrap", .query = ""};
	char id[17];
	uint64_t v;
	json_t *b;
	int r;

	if ((r = zt_store_begin(s->store, e)) != 0)
		return r;
	if ((r = srv_token_create(s, "admin:bootstrap", "the bootstrap administrator", 0, token, cap,
				  id, e)) != 0)
		goto fail;
	b = json_pack("{s:s,s:s,s:s}", "principal", "admin:bootstrap", "role", "admin", "scope", "");
	r = zt_store_put(s->store, "rolebinding", "bootstrap-admin", b, 0, &v, e);
	json_decref(b);
	if (r != 0)
		goto fail;
	if (c->dev) {
		/* a demo organization to look at */
		static const struct {
			const char *kind, *name;
		} demo[] = {{"org", "demo"}, {"tenant", "demo/default"},
			    {"workspace", "demo/default/dev"}, {"service", "demo/default/dev/web"}};

		for (size_t i = 0; i < sizeof demo / sizeof demo[0]; i++) {
			b = json_pack("{s:{},s:s}", "spec", "created_by", "admin:bootstrap");
			r = zt_store_put(s->store, demo[i].kind, demo[i].name, b, 0, &v, e);
			json_decref(b);
			if (r != 0)
				goto fail;
		}
	}
	json_t *d = json_pack("{s:s,s:s,s:b}", "directory", dir, "trust_domain", s->td, "dev",
			      c->dev);

	if ((r = srv_audit(s, &boot, "zt-server", "server.bootstrap", "admin:bootstrap", "allow", d,
			   e)) != 0)
		goto fail;
	return zt_store_commit(s->store, e);
fail:
	zt_store_rollback(s->store);
	return r;
}

int srv_bundle_pem(srv *s, zt_buf *out)
{
	int r;

	pthread_mutex_lock(&s->bundle_mu);
	r = zt_buf_append(out, s->bundle_pem.p, s->bundle_pem.len, NULL);
	pthread_mutex_unlock(&s->bundle_mu);
	return r;
}

/* ---- keeping the CA and the server's certificate fresh while serving ---- */

struct maint {
	srv *s;
	const char *dir;
	zt_bundle_set *set; /* verifies clients; the root does not change, so neither does it */
	pthread_t t;
	int started;
	int stop[2];
};

/* The bundle after a change of the CA: served, and written for clients (ZT_CA_FILE). */
static int publish_bundle(srv *s, const char *dir, zt_err *e)
{
	char p[4200];
	zt_bundle *b;
	zt_buf pem;
	int r;

	zt_buf_init(&pem, 1u << 20);
	pthread_mutex_lock(&s->ca_mu);
	b = zt_ca_bundle(s->ca, e);
	pthread_mutex_unlock(&s->ca_mu);
	if (!b)
		return -ZT_EIO;
	if ((r = zt_bundle_to_pem(b, &pem, e)) != 0 ||
	    (r = path_in(p, sizeof p, dir, "bundle.pem", e)) != 0 ||
	    (r = zt_file_write(p, pem.p, pem.len, 0644, 0, e)) != 0) {
		zt_buf_free(&pem, 0);
		zt_bundle_free(b);
		return r;
	}
	pthread_mutex_lock(&s->bundle_mu);
	zt_buf tmp = s->bundle_pem;

	s->bundle_pem = pem;
	pthread_mutex_unlock(&s->bundle_mu);
	zt_buf_free(&tmp, 0);
	zt_bundle_free(b);
	return 0;
}

/*
 * A new signing CA once half the active one's life is gone (the SVIDs it
 * signs are capped at its expiry, so they would shrink to nothing). The
 * old one stays in the bundle until it expires; the root, which peers
 * anchor on, is the same. 1 when rotated.
 */
static int rotate_ca(srv *s, const char *dir, zt_err *e)
{
	int64_t nb, na, now = zt_now();
	int r = 0;

	pthread_mutex_lock(&s->ca_mu);
	X509 *act = zt_ca_active(s->ca);

	if (!act || zt_cert_times(act, &nb, &na) != 0) {
		pthread_mutex_unlock(&s->ca_mu);
		return zt_err_set(e, ZT_ESTATE, "the CA has no active signing certificate");
	}
	if (now >= nb + (na - nb) / 2)
		r = zt_ca_rotate(s->ca, na - nb, e);
	if (r == 0 && now >= nb + (na - nb) / 2) {
		act = zt_ca_active(s->ca);
		r = act && zt_cert_times(act, &nb, &na) == 0 ? 1 : zt_err_set(e, ZT_ESTATE, "rotation left no active signing CA");
	}
	pthread_mutex_unlock(&s->ca_mu);
	if (r != 1)
		return r;
	char nas[32];
	static const zt_http_req self = {.request_id = "ca-rotation", .query = ""};

	zt_audit_time_format(na * 1000, nas);
	if ((r = srv_audit(s, &self, "zt-server", "ca.rotate", s->td, "allow",
			   json_pack("{s:s}", "signing_not_after", nas), e)) != 0 ||
	    (r = publish_bundle(s, dir, e)) != 0)
		return r;
	zt_log(ZT_LOG_INFO, "signing CA rotated", "not_after", nas, NULL);
	return 1;
}

static SSL_CTX *server_tls(const char *dir, zt_bundle_set *set, zt_err *e);

static void maintain(struct maint *m)
{
	srv *s = m->s;
	zt_err e;
	int r;

	if (srv_issuer_maintain(s, &e) != 0)
		zt_log(ZT_LOG_ERROR, "token signing key rotation failed; retrying", "error", e.msg, NULL);

	if ((r = rotate_ca(s, m->dir, &e)) < 0)
		zt_log(ZT_LOG_ERROR, "CA rotation failed; retrying", "error", e.msg, NULL);
	pthread_mutex_lock(&s->ca_mu);
	r = server_cert(s, m->dir, s->ca, &e);
	pthread_mutex_unlock(&s->ca_mu);
	if (r < 0) {
		zt_log(ZT_LOG_ERROR, "renewing the server's certificate failed; retrying", "error", e.msg, NULL);
		return;
	}
	if (r == 1) {
		SSL_CTX *tls = server_tls(m->dir, m->set, &e);

		if (!tls || zt_httpd_set_tls(s->httpd, tls) != 0)
			zt_log(ZT_LOG_ERROR, "the server's new certificate could not be put in force", "error",
			       tls ? "the API server has no TLS" : e.msg, NULL);
		else
			zt_log(ZT_LOG_INFO, "the server's certificate was renewed", NULL);
		SSL_CTX_free(tls);
	}
}

/* How often to look: a fortieth of the signing CA's life, between 1 s and a minute. */
static int maint_interval_ms(srv *s)
{
	int64_t nb = 0, na = 0;

	pthread_mutex_lock(&s->ca_mu);
	X509 *act = zt_ca_active(s->ca);

	if (act && zt_cert_times(act, &nb, &na) != 0)
		na = nb = 0;
	pthread_mutex_unlock(&s->ca_mu);
	int64_t ms = (na - nb) * 1000 / 40;

	/* and a fortieth of a token signing key's period */
	if (s->iss && s->key_period * 1000 / 40 < ms)
		ms = s->key_period * 1000 / 40;
	return ms < 1000 ? 1000 : ms > 60000 ? 60000 : (int)ms;
}

static void *maint_main(void *arg)
{
	struct maint *m = arg;
	struct pollfd p = {.fd = m->stop[0], .events = POLLIN};

	while (poll(&p, 1, maint_interval_ms(m->s)) == 0)
		maintain(m);
	return NULL;
}

int zt_server_run(const zt_server_config *c, zt_err *e)
{
	char dir[4096], p[4200], token[128] = "";
	struct maint m = {.stop = {-1, -1}};
	srv *s = calloc(1, sizeof *s);
	zt_ca *ca = NULL;
	zt_bundle *bundle = NULL;
	zt_bundle_set *set = NULL;
	SSL_CTX *tls = NULL;
	int r = 0, fresh;
	sigset_t sigs;

	if (!s)
		return zt_err_set(e, ZT_ENOMEM, "out of memory");
	pthread_mutex_init(&s->fail_mu, NULL);
	pthread_mutex_init(&s->ca_mu, NULL);
	pthread_mutex_init(&s->rb_mu, NULL);
	pthread_mutex_init(&s->bundle_mu, NULL);
	pthread_mutex_init(&s->watch_mu, NULL);
	pthread_cond_init(&s->watch_cv, NULL);
	zt_buf_init(&s->bundle_pem, 1u << 20);
	if (c->dir) {
		snprintf(dir, sizeof dir, "%s", c->dir);
	} else if (c->dev) {
		snprintf(dir, sizeof dir, "/tmp/zt-server-XXXXXX");
		if (!mkdtemp(dir)) {
			r = zt_err_set(e, ZT_EIO, "cannot make a temporary directory: %s", strerror(errno));
			goto out;
		}
	} else {
		r = zt_err_set(e, ZT_EINVAL, "give the state directory (--dir), or --dev");
		goto out;
	}
	if ((r = path_in(p, sizeof p, dir, "store.db", e)) != 0)
		goto out;
	fresh = !zt_path_exists(p);
	if (fresh) {
		const char *td = c->trust_domain ? c->trust_domain : "zt.local";
		char sub[4200], origin[300];

		snprintf(origin, sizeof origin, "%s/zt-audit", td);
		if ((r = zt_mkdir(dir, 0700, e)) != 0 ||
		    (r = path_in(sub, sizeof sub, dir, "ca", e)) != 0 ||
		    (r = zt_ca_init(sub, td, ZT_CA_ROOT_TTL_DEFAULT,
				    c->signing_ttl > 0 ? c->signing_ttl : ZT_CA_SIGNING_TTL_DEFAULT, e)) != 0 ||
		    (r = path_in(sub, sizeof sub, dir, "audit", e)) != 0 ||
		    (r = zt_audit_create(sub, origin, e)) != 0)
			goto out;
	}
	if (!(s->store = zt_store_open(p, e))) {
		r = -ZT_EIO;
		goto out;
	}
	if ((r = path_in(p, sizeof p, dir, "ca", e)) != 0 || !(ca = zt_ca_open(p, e))) {
		r = r ? r : -ZT_EIO;
		goto out;
	}
	snprintf(s->td, sizeof s->td, "%s", zt_ca_td(ca));
	s->ca = ca;
	if ((r = path_in(p, sizeof p, dir, "audit", e)) != 0 ||
	    !(s->audit = zt_audit_open(p, ZT_AUDIT_WRITE, e))) {
		r = r ? r : -ZT_EIO;
		goto out;
	}
	if ((r = rotate_ca(s, dir, e)) < 0 || (r = server_cert(s, dir, ca, e)) < 0 ||
	    !(bundle = zt_ca_bundle(ca, e)) ||
	    (r = zt_bundle_to_pem(bundle, &s->bundle_pem, e)) != 0 || !(set = zt_bundle_set_new()) ||
	    (r = zt_bundle_set_put(set, bundle, e)) != 0) {
		bundle = NULL;
		r = r ? r : -ZT_EIO;
		goto out;
	}
	r = 0;
	bundle = NULL; /* the set owns it */
	/* the CA file clients trust the server by (ZT_CA_FILE) */
	if ((r = path_in(p, sizeof p, dir, "bundle.pem", e)) != 0 ||
	    (r = zt_file_write(p, s->bundle_pem.p, s->bundle_pem.len, 0644, 0, e)) != 0)
		goto out;
	if (fresh && (r = bootstrap(s, c, dir, token, sizeof token, e)) != 0)
		goto out;
	s->watch_rev = zt_store_revision(s->store);
	if (!(tls = server_tls(dir, set, e))) {
		r = -ZT_ECRYPTO;
		goto out;
	}
	/* signals are taken by this thread alone, with sigwait */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);
	zt_httpd_opts ho = {.listen = c->listen ? c->listen : "127.0.0.1:8443", .tls = tls,
			    .handler = srv_handle, .arg = s};

	if (!(s->httpd = zt_httpd_start(&ho, e))) {
		r = -ZT_EIO;
		goto out;
	}
	char url[128];

	snprintf(url, sizeof url, "https://localhost:%u", zt_httpd_port(s->httpd));
	s->key_period = c->token_key_period > 0 ? c->token_key_period : SRV_TOKEN_KEY_PERIOD_DEFAULT;
	if ((r = srv_issuer_init(s, c->issuer ? c->issuer : url, s->key_period, e)) != 0)
		goto out;
	s->ready = 1; /* requests before this answered 503 */
	m.s = s;
	m.dir = dir;
	m.set = set;
	if (pipe2(m.stop, O_CLOEXEC) != 0 || pthread_create(&m.t, NULL, maint_main, &m) != 0) {
		r = zt_err_set(e, ZT_EIO, "cannot start the maintenance thread: %s", strerror(errno));
		goto out;
	}
	m.started = 1;
	printf("zt server: serving %s (trust domain %s, state in %s)\n", url, s->td, dir);
	if (token[0]) {
		printf("\nthe bootstrap administrator's token (shown once, keep it):\n\n  %s\n\n", token);
		printf("try:\n"
		       "  export ZT_SERVER=%s ZT_CA_FILE=%s/bundle.pem ZT_TOKEN=<the token above>\n"
		       "  zt org list\n"
		       "  zt tenant create demo/payments\n"
		       "  zt policy apply -f examples/server/  # or any zt.dev/v1 AuthorizationPolicy\n"
		       "  zt audit entries --limit 5\n"
		       "  curl --cacert %s/bundle.pem -H \"Authorization: Bearer $ZT_TOKEN\" %s/v1/orgs\n",
		       url, dir, dir, url);
	}
	fflush(stdout);
	if (c->ready_file) {
		zt_buf rf;

		zt_buf_init(&rf, 4096);
		if (zt_buf_appendf(&rf, e, "%s\n%s\n%s\n", url, token, dir) != 0 ||
		    zt_file_write(c->ready_file, rf.p, rf.len, 0600, 0, e) != 0) {
			zt_buf_free(&rf, 1);
			r = -ZT_EIO;
			goto out;
		}
		zt_buf_free(&rf, 1);
	}
	zt_wipe(token, sizeof token);
	zt_log(ZT_LOG_INFO, "server started", "url", url, "dir", dir, NULL);
	int sig = 0;

	sigwait(&sigs, &sig);
	zt_log(ZT_LOG_INFO, "server stopping: draining requests", NULL);
	if (m.started && write(m.stop[1], "x", 1) == 1)
		pthread_join(m.t, NULL);
	m.started = 0;
	zt_httpd_stop(s->httpd, 10000);
	s->httpd = NULL;
out:
	if (m.started && write(m.stop[1], "x", 1) == 1)
		pthread_join(m.t, NULL);
	if (m.stop[0] >= 0) {
		close(m.stop[0]);
		close(m.stop[1]);
	}
	zt_wipe(token, sizeof token);
	if (s->httpd)
		zt_httpd_stop(s->httpd, 0);
	SSL_CTX_free(tls);
	zt_bundle_set_free(set);
	zt_bundle_free(bundle);
	zt_ca_free(ca);
	srv_issuer_free(s);
	zt_audit_close(s->audit);
	zt_store_close(s->store);
	zt_buf_free(&s->bundle_pem, 0);
	pthread_mutex_destroy(&s->fail_mu);
	pthread_mutex_destroy(&s->ca_mu);
	srv_bindings_free(s);
	srv_entries_free();
	srv_workspaces_free();
	pthread_mutex_destroy(&s->rb_mu);
	pthread_mutex_destroy(&s->bundle_mu);
	pthread_mutex_destroy(&s->watch_mu);
	pthread_cond_destroy(&s->watch_cv);
	free(s);
	return r;
}
