/*
 * bench/bench_identity.c: SVID issuance and verification on one core.
 *
 * Prints rates per CPU-second (CLOCK_PROCESS_CPUTIME_ID), the median of
 * several interleaved rounds, as "name ops_per_cpu_second" lines that
 * run-identity.sh sets beside `openssl speed ecdsap256` from the same run.
 *
 *   sign, verify_sig  the floors: one ECDSA P-256 signature / verification of
 *                  a digest with a prepared context, as `openssl speed` does
 *   issue          zt_ca_issue: the leaf written and signed, as DER, with
 *                  the signing CA after it (the workload's key exists
 *                  already, as with a CSR)
 *   verify         zt_svid_verify of [leaf, signing CA] against a bundle
 *                  holding only the root: two signature checks per op,
 *                  nothing remembered (cold)
 *   verify_warm    the same with remembered signatures on, as in service:
 *                  the shared signing CA costs a hash; 1024 distinct leaves
 *                  outnumber the table, so each leaf is still verified
 *   verify_der     the same from DER bytes, parsing included (as in TLS)
 *   verify_anchor  bundle holds the signing CA too: one signature check
 *
 * usage: bench_identity [SECONDS_PER_ROUND [OP...]]
 *   ZT_NO_ECFAST=1 leaves OpenSSL's decoder path in place (crypto/ecfast.c), for comparison
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "identity/identity.h"

#define ROUNDS 5
#define NLEAVES 1024 /* more than the remembered-signature table holds */

static double cpu_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static zt_ca *ca;
static zt_pubkey *wkey;
static zt_spiffe_id wid;
static zt_bundle_set *root_only, *with_signer;
static STACK_OF(X509) *chains[NLEAVES];
static unsigned char *ders[NLEAVES][2];
static int derlens[NLEAVES][2];

static void die(const char *what, const zt_err *e)
{
	fprintf(stderr, "bench: %s: %s\n", what, e ? e->msg : "");
	exit(1);
}

static zt_buf issued;

static void op_issue(int i)
{
	zt_err e;

	(void)i;
	issued.len = 0;
	if (zt_ca_issue(ca, &wid, wkey, NULL, &issued, &e) != 0)
		die("issue", &e);
}

static void verify_with(zt_bundle_set *set, int i)
{
	zt_svid_info info;
	zt_err e;

	if (zt_svid_verify(set, chains[i % NLEAVES], NULL, &info, &e) != 0)
		die("verify", &e);
}

static void op_verify(int i) { verify_with(root_only, i); }
static void op_verify_warm(int i) { verify_with(root_only, i); }
static void op_verify_anchor(int i) { verify_with(with_signer, i); }

static void op_verify_der(int i)
{
	STACK_OF(X509) *sk = sk_X509_new_null();
	zt_svid_info info;
	zt_err e;

	for (int k = 0; k < 2; k++) {
		const unsigned char *p = ders[i % NLEAVES][k];
		sk_X509_push(sk, d2i_X509(NULL, &p, derlens[i % NLEAVES][k]));
	}
	if (zt_svid_verify(root_only, sk, NULL, &info, &e) != 0)
		die("verify", &e);
	sk_X509_pop_free(sk, X509_free);
}

/* The floors, as `openssl speed ecdsap256` measures them: one ECDSA P-256
 * signature or verification of a digest with a prepared context. */
static EVP_PKEY_CTX *sign_ctx, *verify_ctx;
static unsigned char digest[32], floor_sig[80];
static size_t floor_siglen;

static void op_sign(int i)
{
	unsigned char sig[80];
	size_t n = sizeof sig;

	(void)i;
	if (EVP_PKEY_sign(sign_ctx, sig, &n, digest, sizeof digest) <= 0)
		die("sign", NULL);
}

static void op_verify_sig(int i)
{
	(void)i;
	if (EVP_PKEY_verify(verify_ctx, floor_sig, floor_siglen, digest, sizeof digest) != 1)
		die("verify_sig", NULL);
}

/* One round of op for about `secs` CPU seconds; returns ops per CPU second. */
static double round_rate(void (*op)(int), double secs)
{
	double t0 = cpu_now(), t;
	long n = 0;

	do {
		for (int k = 0; k < 64; k++)
			op((int)n++);
		t = cpu_now() - t0;
	} while (t < secs);
	return (double)n / t;
}

static double median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof v[0], cmp_d);
	return v[n / 2];
}

int main(int argc, char **argv)
{
	char dir[] = "/tmp/zt-bench-XXXXXX", cmd[64];
	double secs = argc > 1 ? atof(argv[1]) : 0.6;
	zt_bundle *b;
	zt_err e;

	int ecfast = getenv("ZT_NO_ECFAST") == NULL;

	if (ecfast)
		zt_crypto_init();
	if (!mkdtemp(dir) || zt_ca_init(dir, "bench.example", 86400, 86400, &e) != 0 ||
	    !(ca = zt_ca_open(dir, &e)))
		die("ca", &e);
	/* the workload's key as it arrives in a CSR: its SPKI as sent */
	EVP_PKEY *k = zt_key_generate(&e);
	X509_REQ *req = X509_REQ_new();
	unsigned char *csr = NULL;
	int csrlen;

	if (!k || !req || !X509_REQ_set_pubkey(req, k) || !X509_REQ_sign(req, k, EVP_sha256()) ||
	    (csrlen = i2d_X509_REQ(req, &csr)) <= 0)
		die("csr", NULL);
	if (!(wkey = zt_csr_parse(csr, (size_t)csrlen, &e)) ||
	    zt_id_workload("bench.example", "default", "web", &wid, &e) != 0)
		die("setup", &e);
	root_only = zt_bundle_set_new();
	with_signer = zt_bundle_set_new();
	if (!(b = zt_bundle_new("bench.example", &e)) ||
	    zt_bundle_add_x509(b, zt_ca_root(ca), &e) != 0 ||
	    zt_bundle_set_put(root_only, b, &e) != 0 || !(b = zt_ca_bundle(ca, &e)) ||
	    zt_bundle_set_put(with_signer, b, &e) != 0)
		die("bundle", &e);
	zt_buf_init(&issued, 1 << 20);
	for (int i = 0; i < NLEAVES; i++) {
		issued.len = 0;
		if (zt_ca_issue(ca, &wid, wkey, NULL, &issued, &e) != 0 ||
		    zt_certs_parse_der(issued.p, issued.len, &chains[i], &e) != 0)
			die("issue", &e);
		for (int c = 0; c < 2; c++) {
			ders[i][c] = NULL;
			derlens[i][c] = i2d_X509(sk_X509_value(chains[i], c), &ders[i][c]);
		}
	}
	/* the floors use a P-256 key of the same kind as the CA's */
	EVP_PKEY *fk = zt_key_generate(&e);
	if (!fk || !(sign_ctx = EVP_PKEY_CTX_new(fk, NULL)) || EVP_PKEY_sign_init(sign_ctx) <= 0 ||
	    !(verify_ctx = EVP_PKEY_CTX_new(fk, NULL)) || EVP_PKEY_verify_init(verify_ctx) <= 0)
		die("floor setup", NULL);
	floor_siglen = sizeof floor_sig;
	if (EVP_PKEY_sign(sign_ctx, floor_sig, &floor_siglen, digest, sizeof digest) <= 0)
		die("floor sign", NULL);

	static const struct {
		const char *name;
		void (*op)(int);
		int warm; /* remembered signatures on (see zt_crypto_sigcache) */
	} ops[] = {
		{ "sign", op_sign, 0 },
		{ "issue", op_issue, 0 },
		{ "verify_sig", op_verify_sig, 0 },
		{ "verify", op_verify, 0 },
		{ "verify_warm", op_verify_warm, 1 },
		{ "verify_der", op_verify_der, 0 },
		{ "verify_anchor", op_verify_anchor, 0 },
	};
	enum { NOPS = sizeof ops / sizeof ops[0] };
	double rates[NOPS][ROUNDS];
	int want[NOPS];

	for (int i = 0; i < NOPS; i++) {
		want[i] = argc <= 2;
		for (int a = 2; a < argc; a++)
			want[i] |= strcmp(argv[a], ops[i].name) == 0;
	}
	/* rounds interleave the operations, so a noisy neighbour hits them alike */
	for (int r = 0; r < ROUNDS; r++)
		for (int i = 0; i < NOPS; i++)
			if (want[i]) {
				zt_crypto_sigcache(ops[i].warm);
				rates[i][r] = round_rate(ops[i].op, secs);
			}
	for (int i = 0; i < NOPS; i++)
		if (want[i])
			printf("%s %.0f\n", ops[i].name, median(rates[i], ROUNDS));
	EVP_PKEY_CTX_free(sign_ctx);
	EVP_PKEY_CTX_free(verify_ctx);
	EVP_PKEY_free(fk);
	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	return system(cmd) == 0 ? 0 : 1;
}
