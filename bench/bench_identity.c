/*
 * bench/bench_identity.c: SVID issuance and verification on one core.
 *
 * Prints rates per CPU-second (CLOCK_PROCESS_CPUTIME_ID), the median of
 * several rounds, as "name ops_per_cpu_second" lines that run-identity.sh
 * sets beside `openssl speed ecdsap256` from the same run.
 *
 *   issue          zt_ca_issue + DER encoding of the leaf (the workload's
 *                  key exists already, as with a CSR)
 *   verify         zt_svid_verify of [leaf, signing CA] against a bundle
 *                  holding only the root: two signature checks per op
 *   verify_der     the same from DER bytes, parsing included (as in TLS)
 *   verify_anchor  bundle holds the signing CA too: one signature check
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "identity/identity.h"

#define ROUNDS 5
#define NLEAVES 64

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
static EVP_PKEY *wkey;
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

static void op_issue(int i)
{
	STACK_OF(X509) *chain;
	unsigned char *der = NULL;
	zt_err e;

	(void)i;
	if (zt_ca_issue(ca, &wid, wkey, NULL, &chain, &e) != 0)
		die("issue", &e);
	if (i2d_X509(sk_X509_value(chain, 0), &der) <= 0)
		die("encode", NULL);
	OPENSSL_free(der);
	sk_X509_pop_free(chain, X509_free);
}

static void verify_with(zt_bundle_set *set, int i)
{
	zt_svid_info info;
	zt_err e;

	if (zt_svid_verify(set, chains[i % NLEAVES], NULL, &info, &e) != 0)
		die("verify", &e);
}

static void op_verify(int i) { verify_with(root_only, i); }
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

/* Runs op in rounds of about `secs` CPU seconds; returns the median rate. */
static double measure(void (*op)(int), double secs)
{
	double rates[ROUNDS];

	for (int r = 0; r < ROUNDS; r++) {
		double t0 = cpu_now(), t;
		long n = 0;

		do {
			for (int k = 0; k < 64; k++)
				op((int)n++);
			t = cpu_now() - t0;
		} while (t < secs);
		rates[r] = (double)n / t;
	}
	qsort(rates, ROUNDS, sizeof rates[0], cmp_d);
	return rates[ROUNDS / 2];
}

int main(int argc, char **argv)
{
	char dir[] = "/tmp/zt-bench-XXXXXX", cmd[64];
	double secs = argc > 1 ? atof(argv[1]) : 0.6;
	zt_bundle *b;
	zt_err e;

	if (!mkdtemp(dir) || zt_ca_init(dir, "bench.example", 86400, 86400, &e) != 0 ||
	    !(ca = zt_ca_open(dir, &e)))
		die("ca", &e);
	if (!(wkey = zt_key_generate(&e)) ||
	    zt_id_workload("bench.example", "default", "web", &wid, &e) != 0)
		die("setup", &e);
	root_only = zt_bundle_set_new();
	with_signer = zt_bundle_set_new();
	if (!(b = zt_bundle_new("bench.example", &e)) ||
	    zt_bundle_add_x509(b, zt_ca_root(ca), &e) != 0 ||
	    zt_bundle_set_put(root_only, b, &e) != 0 || !(b = zt_ca_bundle(ca, &e)) ||
	    zt_bundle_set_put(with_signer, b, &e) != 0)
		die("bundle", &e);
	for (int i = 0; i < NLEAVES; i++) {
		if (zt_ca_issue(ca, &wid, wkey, NULL, &chains[i], &e) != 0)
			die("issue", &e);
		for (int k = 0; k < 2; k++) {
			ders[i][k] = NULL;
			derlens[i][k] = i2d_X509(sk_X509_value(chains[i], k), &ders[i][k]);
		}
	}
	printf("issue %.0f\n", measure(op_issue, secs));
	printf("verify %.0f\n", measure(op_verify, secs));
	printf("verify_der %.0f\n", measure(op_verify_der, secs));
	printf("verify_anchor %.0f\n", measure(op_verify_anchor, secs));
	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	return system(cmd) == 0 ? 0 : 1;
}
