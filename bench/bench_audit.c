/*
 * bench_audit: the audit log's write rate, proof times and verification.
 *
 *   bench_audit append DIR [SECONDS] [WINDOW]
 *       16 writer threads append 200-byte entries for SECONDS; each keeps up
 *       to WINDOW entries in flight (1: every append waits for its fsync).
 *       Prints durable appends per second and the mean batch per commit.
 *   bench_audit fill DIR N
 *       grows the log in DIR to N entries (200 bytes each), as fast as
 *       group commit allows.
 *   bench_audit proofs DIR [COUNT]
 *       COUNT inclusion proofs of random entries against the whole log:
 *       median and p99 time to generate one (from the files) and to verify it;
 *       likewise consistency proofs from random older sizes.
 *   bench_audit verify DIR
 *       zt_audit_verify of the whole directory: seconds and entries per second.
 *
 * Every number is a median or a rate over the run, measured in this
 * process; run-audit.sh runs them in order.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "audit/audit.h"
#include "crypto/crypto.h"

#define WRITERS 16
#define ENTRY_BYTES 200

static double now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void die(const char *what, const zt_err *e)
{
	fprintf(stderr, "bench_audit: %s: %s\n", what, e ? e->msg : "failed");
	exit(1);
}

/* A 200-byte entry, as zt_audit_entry_build would make it, unique per (writer, seq). */
static size_t make_entry(char *out, int writer, uint64_t seq)
{
	int n = snprintf(out, 512,
			 "{\"action\":\"bench.write\",\"actor\":\"spiffe://bench.example/w%02d\","
			 "\"request_id\":\"%016llx\",\"time\":\"2026-11-26T00:00:00.000Z\","
			 "\"details\":{\"pad\":\"",
			 writer, (unsigned long long)seq);

	while (n < ENTRY_BYTES - 3)
		out[n++] = 'x';
	memcpy(out + n, "\"}}", 3);
	return (size_t)n + 3;
}

struct writer {
	zt_audit *log;
	int id;
	uint64_t window, done;
	volatile int *stop;
};

static void *writer_main(void *arg)
{
	struct writer *w = arg;
	char buf[512];
	uint64_t seq = 0, last = 0;
	zt_err e;

	while (!*w->stop) {
		for (uint64_t k = 0; k < w->window; k++) {
			size_t n = make_entry(buf, w->id, seq++);

			if (zt_audit_submit(w->log, buf, n, &last, &e) != 0)
				die("submit", &e);
		}
		if (zt_audit_wait(w->log, last, &e) != 0)
			die("wait", &e);
		w->done += w->window;
	}
	return NULL;
}

static int cmd_append(const char *dir, double secs, uint64_t window)
{
	struct writer w[WRITERS];
	pthread_t th[WRITERS];
	volatile int stop = 0;
	zt_audit *log;
	zt_err e;
	uint64_t total = 0, size0;

	if (!(log = zt_audit_open(dir, ZT_AUDIT_WRITE, &e)))
		die("open", &e);
	size0 = zt_audit_size(log);
	struct timespec cpu0, cpu1;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &cpu0);
	double t0 = now();

	for (int i = 0; i < WRITERS; i++) {
		w[i] = (struct writer){log, i, window, 0, &stop};
		pthread_create(&th[i], NULL, writer_main, &w[i]);
	}
	struct timespec d = {(time_t)secs, (long)((secs - (double)(time_t)secs) * 1e9)};

	nanosleep(&d, NULL);
	stop = 1;
	for (int i = 0; i < WRITERS; i++) {
		pthread_join(th[i], NULL);
		total += w[i].done;
	}
	double dt = now() - t0;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &cpu1);
	double cpu = (double)(cpu1.tv_sec - cpu0.tv_sec) + (double)(cpu1.tv_nsec - cpu0.tv_nsec) / 1e9;

	printf("append writers=%d window=%llu entry_bytes=%d durable_appends_per_s=%.0f "
	       "cpu_us_per_append=%.2f log_size=%llu\n",
	       WRITERS, (unsigned long long)window, ENTRY_BYTES, (double)total / dt,
	       cpu * 1e6 / (double)total, (unsigned long long)(zt_audit_size(log) - size0 + size0));
	zt_audit_close(log);
	return 0;
}

static int cmd_fill(const char *dir, uint64_t n)
{
	zt_audit *log;
	zt_err e;
	char buf[512];
	uint64_t idx = 0;

	if (!(log = zt_audit_open(dir, ZT_AUDIT_WRITE, &e)))
		die("open", &e);
	double t0 = now();
	uint64_t start = zt_audit_size(log);

	for (uint64_t i = start; i < n; i++) {
		size_t len = make_entry(buf, 99, i);

		if (zt_audit_submit(log, buf, len, &idx, &e) != 0)
			die("submit", &e);
	}
	if (n > start && zt_audit_wait(log, idx, &e) != 0)
		die("wait", &e);
	printf("fill entries=%llu seconds=%.1f\n", (unsigned long long)zt_audit_size(log),
	       now() - t0);
	zt_audit_close(log);
	return 0;
}

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static uint64_t rnd(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static int cmd_proofs(const char *dir, int count)
{
	static uint8_t proof[ZT_MERKLE_MAX_PROOF][ZT_HASH_LEN];
	double *gen = calloc((size_t)count, sizeof *gen), *ver = calloc((size_t)count, sizeof *ver);
	double *cgen = calloc((size_t)count, sizeof *gen), *cver = calloc((size_t)count, sizeof *ver);
	uint8_t root[ZT_HASH_LEN], leaf[ZT_HASH_LEN], old[ZT_HASH_LEN];
	uint64_t seed = 88172645463325252ull;
	zt_audit *log;
	zt_err e;
	size_t n;

	if (!gen || !ver || !cgen || !cver)
		die("memory", NULL);
	if (!(log = zt_audit_open(dir, ZT_AUDIT_READ, &e)))
		die("open", &e);
	uint64_t size = zt_audit_size(log);

	if (size < 2 || zt_audit_root(log, size, root, &e) != 0)
		die("root", &e);
	for (int i = 0; i < count; i++) {
		uint64_t idx = rnd(&seed) % size;
		double t0 = now();

		if (zt_audit_prove(log, idx, size, proof, &n, &e) != 0)
			die("prove", &e);
		double t1 = now();

		if (zt_audit_leaf(log, idx, leaf, &e) != 0)
			die("leaf", &e);
		double t2 = now();

		if (zt_merkle_verify_inclusion(idx, size, leaf, ZT_HASH_LEN, proof, n, root,
					       ZT_HASH_LEN, &e) != 0)
			die("verify", &e);
		double t3 = now();

		gen[i] = (t1 - t0) * 1e6;
		ver[i] = (t3 - t2) * 1e6;

		uint64_t m = 1 + rnd(&seed) % (size - 1);

		t0 = now();
		if (zt_audit_prove_consistency(log, m, size, proof, &n, &e) != 0)
			die("prove consistency", &e);
		t1 = now();
		if (zt_audit_root(log, m, old, &e) != 0)
			die("old root", &e);
		t2 = now();
		if (zt_merkle_verify_consistency(m, size, old, ZT_HASH_LEN, root, ZT_HASH_LEN, proof,
						 n, &e) != 0)
			die("verify consistency", &e);
		t3 = now();
		cgen[i] = (t1 - t0) * 1e6;
		cver[i] = (t3 - t2) * 1e6;
	}
	qsort(gen, (size_t)count, sizeof *gen, cmp_d);
	qsort(ver, (size_t)count, sizeof *ver, cmp_d);
	qsort(cgen, (size_t)count, sizeof *gen, cmp_d);
	qsort(cver, (size_t)count, sizeof *ver, cmp_d);
	int p99 = count * 99 / 100;

	printf("proofs entries=%llu count=%d inclusion_gen_us_median=%.1f p99=%.1f "
	       "inclusion_verify_us_median=%.1f p99=%.1f consistency_gen_us_median=%.1f "
	       "p99=%.1f consistency_verify_us_median=%.1f p99=%.1f\n",
	       (unsigned long long)size, count, gen[count / 2], gen[p99], ver[count / 2], ver[p99],
	       cgen[count / 2], cgen[p99], cver[count / 2], cver[p99]);
	zt_audit_close(log);
	free(gen);
	free(ver);
	free(cgen);
	free(cver);
	return 0;
}

static int cmd_verify(const char *dir)
{
	zt_audit_report rep;
	zt_err e;
	double t0 = now();

	if (zt_audit_verify(dir, NULL, NULL, NULL, 0, NULL, NULL, &rep, &e) != 0)
		die("verify", &e);
	double dt = now() - t0;

	printf("verify entries=%llu seconds=%.2f entries_per_s=%.0f\n",
	       (unsigned long long)rep.entries, dt, (double)rep.entries / dt);
	return 0;
}

int main(int argc, char **argv)
{
	zt_crypto_init();
	if (argc >= 3 && strcmp(argv[1], "append") == 0)
		return cmd_append(argv[2], argc > 3 ? atof(argv[3]) : 5,
				  argc > 4 ? strtoull(argv[4], NULL, 10) : 64);
	if (argc >= 4 && strcmp(argv[1], "fill") == 0)
		return cmd_fill(argv[2], strtoull(argv[3], NULL, 10));
	if (argc >= 3 && strcmp(argv[1], "proofs") == 0)
		return cmd_proofs(argv[2], argc > 3 ? atoi(argv[3]) : 10000);
	if (argc >= 3 && strcmp(argv[1], "verify") == 0)
		return cmd_verify(argv[2]);
	fprintf(stderr, "usage: bench_audit append DIR [SECONDS] [WINDOW] | fill DIR N | "
			"proofs DIR [COUNT] | verify DIR\n");
	return 2;
}
