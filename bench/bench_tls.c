/*
 * bench/bench_tls.c: what one server-side mutual-TLS handshake costs in
 * OpenSSL's libssl with zt's TLS context, with no sockets at all.
 *
 * A client and a server SSL (zt_tls_ctx_new, as the proxy makes them: TLS
 * 1.3, X25519, ECDSA P-256 SVIDs, the peer judged by the SVID rules against
 * the bundle) talk through a pair of memory BIOs in one thread. Only the
 * time inside the server's calls (SSL_new, SSL_do_handshake, SSL_free) is
 * counted, on the thread's CPU clock, so the figure is the server's share of
 * a handshake without the kernel: what is left once accept(2), connect(2)
 * to the local service and close(2) are taken away. Beside it, the same
 * process times the cryptography the handshake cannot avoid (the floor of
 * ../shared/bench/README.md): one X25519 key generation and derivation, one
 * ECDSA P-256 signature, and the verification of the client's
 * CertificateVerify (its leaf's signature is remembered across handshakes,
 * see identity/svid.c, as in service).
 *
 * Prints "name microseconds" lines, each the median of several rounds:
 *   server_handshake  server CPU per full handshake, in-memory
 *   floor             x25519 keygen + derive + ecdsa sign + ecdsa verify
 *   ratio             server_handshake / floor
 * usage: bench_tls PKI_DIR [HANDSHAKES_PER_ROUND]
 *   PKI_DIR holds ca.crt, server.crt/key, client.crt/key (../shared/bench/mkpki.sh)
 *   ZT_NO_ECFAST=1 leaves OpenSSL's decoder path in place (crypto/ecfast.c)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/ec.h>
#include <openssl/evp.h>

#include "identity/identity.h"
#include "net/net.h"

#define ROUNDS 7

static double thread_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static void die(const char *what, const char *why)
{
	fprintf(stderr, "bench_tls: %s: %s\n", what, why);
	exit(1);
}

static zt_bundle_set *bundles;

static int verify_svid(void *arg, STACK_OF(X509) *chain, zt_peer_info *out, zt_err *e)
{
	zt_svid_info info;
	int r;

	(void)arg;
	if ((r = zt_svid_verify(bundles, chain, NULL, &info, e)) != 0)
		return r;
	snprintf(out->id, sizeof out->id, "%s", info.id.str);
	out->not_after = info.chain_not_after;
	return 0;
}

static SSL_CTX *ctx_for(const char *dir, const char *who, int server)
{
	char crt[4096], key[4096];
	STACK_OF(X509) *certs = NULL;
	EVP_PKEY *pkey;
	zt_tls_opts o = { 0 };
	SSL_CTX *ctx;
	zt_err e;

	snprintf(crt, sizeof crt, "%s/%s.crt", dir, who);
	snprintf(key, sizeof key, "%s/%s.key", dir, who);
	if (zt_certs_load(crt, &certs, &e) != 0 || !(pkey = zt_key_load(key, &e)))
		die(crt, e.msg);
	o.server = server;
	o.cert = sk_X509_value(certs, 0);
	o.key = pkey;
	o.verify = verify_svid;
	if (!(ctx = zt_tls_ctx_new(&o, &e)))
		die("tls context", e.msg);
	EVP_PKEY_free(pkey);
	sk_X509_pop_free(certs, X509_free);
	return ctx;
}

/* Separate frames, so a profile can tell the two sides apart. */
static volatile unsigned long server_steps, client_steps;

static __attribute__((noinline)) int server_step(SSL *s)
{
	int r = SSL_do_handshake(s);

	server_steps++; /* after the call: no tail call, so the frame shows */
	return r;
}

static __attribute__((noinline)) int client_step(SSL *c)
{
	int r = SSL_do_handshake(c);

	client_steps++;
	return r;
}

/* One handshake; returns the server's CPU microseconds. */
static double handshake(SSL_CTX *sctx, SSL_CTX *cctx)
{
	BIO *sb, *cb;
	SSL *s, *c;
	double t, spent = 0;
	int sdone = 0, cdone = 0;

	if (!BIO_new_bio_pair(&sb, 0, &cb, 0))
		die("bio pair", "out of memory");
	c = SSL_new(cctx);
	t = thread_us();
	s = SSL_new(sctx);
	spent += thread_us() - t;
	if (!s || !c)
		die("SSL_new", "out of memory");
	SSL_set_bio(s, sb, sb);
	SSL_set_bio(c, cb, cb);
	SSL_set_accept_state(s);
	SSL_set_connect_state(c);
	for (int i = 0; i < 16 && !(sdone && cdone); i++) {
		if (!cdone) {
			int r = client_step(c);

			if (r == 1)
				cdone = 1;
			else if (zt_tls_result(c, r) == ZT_TLS_ERROR)
				die("client handshake", zt_tls_error_text());
		}
		if (!sdone) {
			int r;

			t = thread_us();
			r = server_step(s);
			spent += thread_us() - t;
			if (r == 1)
				sdone = 1;
			else if (zt_tls_result(s, r) == ZT_TLS_ERROR)
				die("server handshake", zt_tls_peer_error(s) ? zt_tls_peer_error(s) : zt_tls_error_text());
		}
	}
	if (!sdone || !cdone || !zt_tls_peer_id(s))
		die("handshake", "did not complete");
	SSL_free(c);
	t = thread_us();
	SSL_free(s);
	spent += thread_us() - t;
	return spent;
}

/* The cryptography of one server handshake, with prepared keys. */
static double floor_once(EVP_PKEY *sign_key, EVP_PKEY *verify_key)
{
	static const unsigned char dgst[32] = { 1, 2, 3 };
	unsigned char sig[80], secret[32];
	size_t siglen = sizeof sig, slen = sizeof secret;
	EVP_PKEY *mine = NULL, *peer = NULL;
	EVP_PKEY_CTX *k, *d, *sg, *vf;
	double t = thread_us();

	if (!(k = EVP_PKEY_CTX_new_id(EVP_PKEY_X25519, NULL)) || EVP_PKEY_keygen_init(k) <= 0 ||
	    EVP_PKEY_keygen(k, &mine) <= 0 || EVP_PKEY_keygen(k, &peer) <= 0)
		die("x25519", "keygen");
	t = thread_us(); /* the peer's key is the client's work */
	EVP_PKEY_free(mine);
	mine = NULL;
	if (EVP_PKEY_keygen(k, &mine) <= 0 || !(d = EVP_PKEY_CTX_new(mine, NULL)) ||
	    EVP_PKEY_derive_init(d) <= 0 || EVP_PKEY_derive_set_peer(d, peer) <= 0 ||
	    EVP_PKEY_derive(d, secret, &slen) <= 0)
		die("x25519", "derive");
	if (!(sg = EVP_PKEY_CTX_new(sign_key, NULL)) || EVP_PKEY_sign_init(sg) <= 0 ||
	    EVP_PKEY_sign(sg, sig, &siglen, dgst, sizeof dgst) <= 0)
		die("ecdsa", "sign");
	if (!(vf = EVP_PKEY_CTX_new(verify_key, NULL)) || EVP_PKEY_verify_init(vf) <= 0 ||
	    EVP_PKEY_verify(vf, sig, siglen, dgst, sizeof dgst) != 1)
		die("ecdsa", "verify");
	t = thread_us() - t;
	EVP_PKEY_CTX_free(k);
	EVP_PKEY_CTX_free(d);
	EVP_PKEY_CTX_free(sg);
	EVP_PKEY_CTX_free(vf);
	EVP_PKEY_free(mine);
	EVP_PKEY_free(peer);
	return t;
}

int main(int argc, char **argv)
{
	double hs[ROUNDS], fl[ROUNDS];
	int n = argc > 2 ? atoi(argv[2]) : 400;
	char path[4096];
	SSL_CTX *sctx, *cctx;
	EVP_PKEY *key;
	zt_bundle *b;
	zt_err e;

	if (argc < 2 || n < 1)
		die("usage", "bench_tls PKI_DIR [HANDSHAKES_PER_ROUND]");
	if (!getenv("ZT_NO_ECFAST"))
		zt_crypto_init();
	snprintf(path, sizeof path, "%s/ca.crt", argv[1]);
	bundles = zt_bundle_set_new();
	if (!bundles || !(b = zt_bundle_load("example.org", path, &e)) || zt_bundle_set_put(bundles, b, &e) != 0)
		die(path, e.msg);
	sctx = ctx_for(argv[1], "server", 1);
	cctx = ctx_for(argv[1], "client", 0);
	snprintf(path, sizeof path, "%s/server.key", argv[1]);
	if (!(key = zt_key_load(path, &e)))
		die(path, e.msg);
	for (int i = 0; i < 20; i++) /* warm: caches, the remembered signature */
		(void)handshake(sctx, cctx);
	for (int r = 0; r < ROUNDS; r++) {
		double s = 0, f = 0;

		for (int i = 0; i < n; i++)
			s += handshake(sctx, cctx);
		for (int i = 0; i < n; i++)
			f += floor_once(key, key);
		hs[r] = s / n;
		fl[r] = f / n;
	}
	qsort(hs, ROUNDS, sizeof hs[0], cmp_d);
	qsort(fl, ROUNDS, sizeof fl[0], cmp_d);
	printf("server_handshake %.1f\nfloor %.1f\nratio %.2f\n", hs[ROUNDS / 2], fl[ROUNDS / 2],
	       hs[ROUNDS / 2] / fl[ROUNDS / 2]);
	EVP_PKEY_free(key);
	SSL_CTX_free(sctx);
	SSL_CTX_free(cctx);
	zt_bundle_set_free(bundles);
	return 0;
}
