/*
 * bench_store: the object store's rates on its SQLite back end.
 *
 *   bench_store [DIR] [SECONDS]
 *       On a new store in DIR (default: a temporary directory, removed at
 *       the end), measures in order:
 *         create     creates, each its own transaction (one fsync each:
 *                    the store runs synchronous=FULL)
 *         update     updates naming the version read (the 409 check)
 *         create_tx100, update_tx100
 *                    the same writes, 100 to a transaction: what batching buys
 *         get        gets of random objects among 10,000 from 1, 2 and 4
 *                    threads sharing one handle, SECONDS each
 *         list       pages of 100 walking all 10,000 objects, SECONDS
 *         changes    pages of 100 of the change feed from 0, SECONDS
 *       and prints one line per measurement:
 *         store op=get threads=2 ops_per_s=N us_per_op=N
 *
 * Every rate is over the whole run of that measurement, wall clock, in
 * this process. Bodies are ~200 bytes of JSON, as a service object.
 *
 * Build (there is no Makefile target):
 *   cc -D_GNU_SOURCE -Isrc -std=c11 -O2 -o build/bench_store bench/bench_store.c \
 *      build/libzt.a -lssl -lcrypto -ljansson -lyaml -lsqlite3 -lpthread
 */
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "store/store.h"

#define OBJECTS 10000
#define CREATES 2000 /* of the OBJECTS, created one per transaction */
#define UPDATES 2000
#define BATCH 100
#define PAGE 100

static double now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void die(const char *what, const zt_err *e)
{
	fprintf(stderr, "bench_store: %s: %s\n", what, e ? e->msg : "failed");
	exit(1);
}

static void report(const char *op, int threads, uint64_t ops, double secs, const char *extra)
{
	printf("store op=%s threads=%d ops_per_s=%.0f us_per_op=%.1f%s%s\n", op, threads,
	       (double)ops / secs, secs * 1e6 / (double)ops, extra ? " " : "", extra ? extra : "");
	fflush(stdout);
}

static uint64_t rnd(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static void name_of(char out[32], int i)
{
	snprintf(out, 32, "acme/svc-%05d", i);
}

/* A ~200-byte service object. */
static json_t *body_of(int i, int gen)
{
	char host[64];
	json_t *b;

	snprintf(host, sizeof host, "svc-%05d.payments.acme.internal", i);
	b = json_pack("{s:s, s:i, s:i, s:[s,s], s:{s:s, s:b, s:s}, s:s}", "host", host, "port", 8443,
		      "generation", gen, "tags", "payments", "tier-1", "tls", "mode", "mutual",
		      "require_client_cert", 1, "trust_domain", "acme.example", "owner",
		      "team-payments@acme.example");
	if (!b)
		die("json_pack", NULL);
	return b;
}

static void put(zt_store *s, int i, int gen, uint64_t expect, uint64_t *version)
{
	char name[32];
	json_t *b = body_of(i, gen);
	zt_err e;

	name_of(name, i);
	if (zt_store_put(s, "service", name, b, expect, version, &e) != 0)
		die("put", &e);
	json_decref(b);
}

struct reader {
	zt_store *s;
	uint64_t seed, done;
	volatile int *stop;
};

static void *reader_main(void *arg)
{
	struct reader *r = arg;
	zt_object o;
	zt_err e;
	char name[32];

	while (!*r->stop) {
		name_of(name, (int)(rnd(&r->seed) % OBJECTS));
		if (zt_store_get(r->s, "service", name, &o, &e) != 0)
			die("get", &e);
		zt_object_clear(&o);
		r->done++;
	}
	return NULL;
}

static void bench_gets(zt_store *s, int threads, double secs)
{
	struct reader r[4];
	pthread_t th[4];
	volatile int stop = 0;
	uint64_t total = 0;
	struct timespec d = {(time_t)secs, (long)((secs - (double)(time_t)secs) * 1e9)};
	double t0 = now();

	for (int i = 0; i < threads; i++) {
		r[i] = (struct reader){s, 88172645463325252ull + (uint64_t)i * 7919, 0, &stop};
		pthread_create(&th[i], NULL, reader_main, &r[i]);
	}
	nanosleep(&d, NULL);
	stop = 1;
	for (int i = 0; i < threads; i++) {
		pthread_join(th[i], NULL);
		total += r[i].done;
	}
	report("get", threads, total, now() - t0, NULL);
}

int main(int argc, char **argv)
{
	static uint64_t version[OBJECTS];
	const char *base = getenv("TMPDIR");
	char tmp[PATH_MAX], path[PATH_MAX + 16], extra[64];
	const char *dir = argc > 1 ? argv[1] : NULL;
	double secs = argc > 2 ? atof(argv[2]) : 2, t0;
	zt_store *s;
	zt_object *v;
	size_t n;
	uint64_t pages, objects, rev;
	zt_err e;
	int i;

	zt_log_set_level(ZT_LOG_WARN);
	if (!dir) {
		snprintf(tmp, sizeof tmp, "%s/zt-bench-store-XXXXXX", base ? base : "/tmp");
		if (!mkdtemp(tmp))
			die("mkdtemp", NULL);
	}
	snprintf(path, sizeof path, "sqlite:%s/bench.db", dir ? dir : tmp);
	if (!(s = zt_store_open(path, &e)))
		die("open", &e);
	if (zt_store_revision(s) != 0) {
		fprintf(stderr, "bench_store: %s is not a new store\n", path);
		return 1;
	}

	/* one change per transaction: each waits for its fsync */
	t0 = now();
	for (i = 0; i < CREATES; i++)
		put(s, i, 0, 0, &version[i]);
	report("create", 1, CREATES, now() - t0, NULL);

	t0 = now();
	for (i = 0; i < UPDATES; i++) {
		int k = i % CREATES;

		put(s, k, 1, version[k], &version[k]);
	}
	report("update", 1, UPDATES, now() - t0, NULL);

	/* BATCH changes per transaction: one fsync for all of them */
	snprintf(extra, sizeof extra, "batch=%d", BATCH);
	t0 = now();
	for (i = CREATES; i < OBJECTS; i++) {
		if ((i - CREATES) % BATCH == 0 && zt_store_begin(s, &e) != 0)
			die("begin", &e);
		put(s, i, 0, 0, &version[i]);
		if ((i - CREATES) % BATCH == BATCH - 1 && zt_store_commit(s, &e) != 0)
			die("commit", &e);
	}
	report("create_tx100", 1, OBJECTS - CREATES, now() - t0, extra);
	t0 = now();
	for (i = 0; i < UPDATES; i++) {
		int k = (i * 7) % OBJECTS;

		if (i % BATCH == 0 && zt_store_begin(s, &e) != 0)
			die("begin", &e);
		put(s, k, 2, version[k], &version[k]);
		if (i % BATCH == BATCH - 1 && zt_store_commit(s, &e) != 0)
			die("commit", &e);
	}
	report("update_tx100", 1, UPDATES, now() - t0, extra);

	/* reads over OBJECTS objects */
	for (int t = 1; t <= 4; t *= 2)
		bench_gets(s, t, secs);

	pages = objects = 0;
	t0 = now();
	while (now() - t0 < secs) {
		char after[ZT_STORE_NAME_MAX + 1] = "";

		do {
			if (zt_store_list(s, "service", "acme/", after, PAGE, &v, &n, &e) != 0)
				die("list", &e);
			if (n)
				snprintf(after, sizeof after, "%s", v[n - 1].name);
			zt_objects_free(v, n);
			pages++;
			objects += n;
		} while (n == PAGE);
	}
	double dt = now() - t0;

	snprintf(extra, sizeof extra, "limit=%d objects_per_s=%.0f", PAGE, (double)objects / dt);
	report("list", 1, pages, dt, extra);

	pages = objects = 0;
	t0 = now();
	while (now() - t0 < secs) {
		rev = 0;
		do {
			if (zt_store_changes(s, rev, NULL, PAGE, &v, &n, &e) != 0)
				die("changes", &e);
			if (n)
				rev = v[n - 1].version;
			zt_objects_free(v, n);
			pages++;
			objects += n;
		} while (n == PAGE);
	}
	dt = now() - t0;
	snprintf(extra, sizeof extra, "limit=%d changes_per_s=%.0f", PAGE, (double)objects / dt);
	report("changes", 1, pages, dt, extra);

	printf("store objects=%d revision=%llu\n", OBJECTS,
	       (unsigned long long)zt_store_revision(s));
	zt_store_close(s);
	if (!dir) {
		char f[PATH_MAX + 16];
		const char *sfx[] = {"", "-wal", "-shm"};

		for (size_t k = 0; k < 3; k++) {
			snprintf(f, sizeof f, "%s/bench.db%s", tmp, sfx[k]);
			unlink(f);
		}
		rmdir(tmp);
	}
	return 0;
}
