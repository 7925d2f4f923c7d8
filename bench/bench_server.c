/*
 * bench_server: the control plane's rates, against a running `zt server`
 * (bench/run-server.sh starts one and passes what this needs).
 *
 *   bench_server reads   URL CA TOKEN PID THREADS SECONDS
 *       GET /v1/orgs/demo (bearer token: every request authenticated and
 *       authorized) from THREADS clients, each with a kept-alive TLS
 *       connection, for SECONDS. Prints requests/s, latency p50/p99 and
 *       the server's CPU time per request (from /proc/PID/stat).
 *
 *   bench_server writes  URL CA TOKEN PID THREADS COUNT
 *       COUNT policy updates per thread (PUT with the version read: the
 *       409 check, the compiler's check of the whole organization, the
 *       audit append and the store commit, each durable). Each thread
 *       updates its own policy. Prints writes/s, p50/p99, CPU per write.
 *
 *   bench_server watch   URL CA TOKEN PID WATCHERS ROUNDS CERT KEY
 *       WATCHERS simulated proxies long-poll /v1/watch/policies with an
 *       SVID (CERT/KEY) and, like a proxy, compile every answer into a
 *       policy snapshot. ROUNDS times a policy is written; for each round
 *       and watcher, the time from just before the write is sent to the
 *       moment that watcher holds the compiled new policy. Prints
 *       p50/p99/max over all rounds and watchers (target: p99 <= 1 s).
 *
 * One line per measurement, e.g.
 *   server op=read threads=8 ops_per_s=N p50_us=N p99_us=N server_cpu_us_per_op=N
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "client/client.h"
#include "policy/policy.h"

static const char *url, *ca, *token, *cert, *key;
static int server_pid;

static double now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void die(const char *what, const zt_err *e)
{
	fprintf(stderr, "bench_server: %s: %s\n", what, e ? e->msg : "failed");
	exit(1);
}

/* The server's user + system CPU seconds so far. */
static double server_cpu(void)
{
	char p[64], buf[4096];
	FILE *f;
	size_t n;

	snprintf(p, sizeof p, "/proc/%d/stat", server_pid);
	if (!(f = fopen(p, "r")))
		return 0;
	n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = '\0';
	const char *s = strrchr(buf, ')');
	unsigned long ut = 0, st = 0;

	/* fields after the command: state is 3rd; utime 14th, stime 15th */
	if (!s || sscanf(s + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
		return 0;
	return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

static zt_api *client(int with_svid)
{
	zt_api_config c;
	zt_api *a;
	zt_err e;

	memset(&c, 0, sizeof c);
	snprintf(c.server, sizeof c.server, "%s", url);
	snprintf(c.ca_file, sizeof c.ca_file, "%s", ca);
	if (with_svid) {
		snprintf(c.cert, sizeof c.cert, "%s", cert);
		snprintf(c.key, sizeof c.key, "%s", key);
	} else {
		snprintf(c.token, sizeof c.token, "%s", token);
	}
	if (!(a = zt_api_new(&c, &e)))
		die("client", &e);
	return a;
}

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double pct(double *v, size_t n, double p)
{
	if (!n)
		return 0;
	size_t i = (size_t)(p * (double)(n - 1) + 0.5);

	return v[i < n ? i : n - 1];
}

/* ---- reads and writes ---- */

#define LAT_MAX 2000000

struct worker {
	pthread_t t;
	int id;
	double secs;
	long count;
	double *lat;
	size_t nlat;
	long errors;
};

static void *reader(void *arg)
{
	struct worker *w = arg;
	zt_api *a = client(0);
	double end = now() + w->secs;
	zt_err e;

	while (now() < end && w->nlat < LAT_MAX / 16) {
		zt_api_resp r;
		double t0 = now();

		if (zt_api_call(a, "GET", "/v1/orgs/demo", NULL, NULL, 10000, &r, &e) != 0)
			die("read", &e);
		if (r.status != 200)
			w->errors++;
		w->lat[w->nlat++] = now() - t0;
		zt_api_resp_free(&r);
	}
	zt_api_free(a);
	return NULL;
}

static json_t *policy_doc(const char *name, int n)
{
	char principal[128];

	snprintf(principal, sizeof principal, "spiffe://zt.local/ns/dev/sa/bench-%d", n);
	return json_pack("{s:s,s:s,s:{s:s,s:s},s:{s:s,s:[{s:[{s:{s:[s]}}]}]}}", "apiVersion",
			 "zt.dev/v1", "kind", "AuthorizationPolicy", "metadata", "name", name, "scope",
			 "demo/default/dev", "spec", "action", "ALLOW", "rules", "from", "source",
			 "principals", principal);
}

/* Creates or replaces policy demo/default/dev/NAME; returns the new version. */
static long put_policy(zt_api *a, const char *name, int n, long version)
{
	char path[256], v[32];
	json_t *doc = policy_doc(name, n);
	zt_api_resp r;
	zt_err e;
	int rc;

	snprintf(path, sizeof path, "/v1/policies/demo/default/dev/%s", name);
	snprintf(v, sizeof v, "%ld", version);
	rc = version ? zt_api_call(a, "PUT", path, doc, v, 30000, &r, &e)
		     : zt_api_call(a, "POST", "/v1/policies", doc, NULL, 30000, &r, &e);
	json_decref(doc);
	if (rc != 0)
		die("write", &e);
	if (r.status != 200 && r.status != 201) {
		fprintf(stderr, "bench_server: write %s: HTTP %d %s\n", name, r.status,
			zt_api_resp_message(&r));
		exit(1);
	}
	long nv = (long)json_integer_value(json_object_get(r.json, "version"));

	zt_api_resp_free(&r);
	return nv;
}

static void *writer(void *arg)
{
	struct worker *w = arg;
	zt_api *a = client(0);
	char name[64];
	long v;

	snprintf(name, sizeof name, "bench-w%d-%d", w->id, (int)getpid());
	v = put_policy(a, name, 0, 0);
	for (long i = 0; i < w->count; i++) {
		double t0 = now();

		v = put_policy(a, name, (int)i + 1, v);
		w->lat[w->nlat++] = now() - t0;
	}
	zt_api_free(a);
	return NULL;
}

static void run_pool(const char *op, void *(*fn)(void *), int threads, double secs, long count)
{
	struct worker *w = calloc((size_t)threads, sizeof *w);
	double *all = malloc(sizeof(double) * LAT_MAX);
	size_t n = 0;
	long errors = 0;

	for (int i = 0; i < threads; i++) {
		w[i].id = i;
		w[i].secs = secs;
		w[i].count = count;
		w[i].lat = malloc(sizeof(double) * LAT_MAX / 16);
	}
	double c0 = server_cpu(), t0 = now();

	for (int i = 0; i < threads; i++)
		pthread_create(&w[i].t, NULL, fn, &w[i]);
	for (int i = 0; i < threads; i++)
		pthread_join(w[i].t, NULL);
	double wall = now() - t0, cpu = server_cpu() - c0;

	for (int i = 0; i < threads; i++) {
		memcpy(all + n, w[i].lat, w[i].nlat * sizeof(double));
		n += w[i].nlat;
		errors += w[i].errors;
		free(w[i].lat);
	}
	qsort(all, n, sizeof *all, cmp_d);
	printf("server op=%s threads=%d ops=%zu ops_per_s=%.0f p50_us=%.0f p99_us=%.0f "
	       "server_cpu_us_per_op=%.0f errors=%ld\n",
	       op, threads, n, (double)n / wall, pct(all, n, 0.5) * 1e6, pct(all, n, 0.99) * 1e6,
	       n ? cpu * 1e6 / (double)n : 0, errors);
	fflush(stdout);
	free(all);
	free(w);
}

/* ---- watchers ---- */

static char watch_name[64]; /* "bench-watch-PID": runs on one server do not collide */
static _Atomic double round_start;
static _Atomic long round_no;
static _Atomic int stop_watch;

struct watcher {
	pthread_t t;
	double *lat;  /* per round */
	int rounds;
	_Atomic long seen; /* the last round whose policy this watcher compiled */
};

/* The round number a policy set carries (the bench policy's principal suffix). */
static long round_of(json_t *ans)
{
	json_t *docs = json_object_get(ans, "documents"), *d;
	size_t i;

	json_array_foreach(docs, i, d) {
		const char *n = json_string_value(json_object_get(json_object_get(d, "metadata"), "name"));

		if (n && !strcmp(n, watch_name)) {
			char *s = json_dumps(d, JSON_COMPACT);
			const char *p = s ? strstr(s, "bench-") : NULL;
			long r = -1;

			while (p && (p = strstr(p + 1, "sa/bench-")))
				r = strtol(p + 9, NULL, 10);
			free(s);
			return r;
		}
	}
	return -1;
}

static void *watcher_main(void *arg)
{
	struct watcher *w = arg;
	zt_api *a = client(1);
	uint64_t since = 0;
	char path[128];
	zt_err e;

	while (!atomic_load(&stop_watch)) {
		zt_api_resp r;

		snprintf(path, sizeof path, "/v1/watch/policies?since=%llu&timeout=5",
			 (unsigned long long)since);
		if (zt_api_call(a, "GET", path, NULL, NULL, 20000, &r, &e) != 0)
			die("watch", &e);
		if (r.status != 200) {
			fprintf(stderr, "bench_server: watch: HTTP %d %s\n", r.status, zt_api_resp_message(&r));
			exit(1);
		}
		since = (uint64_t)json_integer_value(json_object_get(r.json, "revision"));
		/* what a proxy does with an answer: compile the whole set */
		zt_policy_src *src = zt_policy_src_new(NULL);
		json_t *d;
		size_t i;

		json_array_foreach(json_object_get(r.json, "documents"), i, d) {
			char *t = json_dumps(d, JSON_COMPACT);

			zt_policy_src_add_text(src, "answer", t, strlen(t));
			free(t);
		}
		zt_policy_src_check(src);
		zt_policy_snapshot *snap = zt_policy_compile(src, &e);

		zt_policy_src_free(src);
		if (!snap)
			die("compile", &e);
		zt_policy_snapshot_unref(snap);
		long got = round_of(r.json), cur = atomic_load(&round_no);

		if (got >= 1 && got == cur && atomic_load(&w->seen) < got) {
			w->lat[got - 1] = now() - atomic_load(&round_start);
			atomic_store(&w->seen, got);
		}
		zt_api_resp_free(&r);
	}
	zt_api_free(a);
	return NULL;
}

static void run_watch(int nw, int rounds)
{
	struct watcher *w = calloc((size_t)nw, sizeof *w);
	zt_api *admin = client(0);

	snprintf(watch_name, sizeof watch_name, "bench-watch-%d", (int)getpid());
	long v = put_policy(admin, watch_name, 0, 0);

	for (int i = 0; i < nw; i++) {
		w[i].lat = calloc((size_t)rounds, sizeof(double));
		w[i].rounds = rounds;
		pthread_create(&w[i].t, NULL, watcher_main, &w[i]);
	}
	sleep(2); /* every watcher has its first answer and waits */
	double c0 = server_cpu();

	for (int r = 1; r <= rounds; r++) {
		atomic_store(&round_no, r);
		atomic_store(&round_start, now());
		v = put_policy(admin, watch_name, r, v);
		/* wait until all have it (or 5 s: counted as a miss) */
		double deadline = now() + 5;

		for (;;) {
			int all = 1;

			for (int i = 0; i < nw; i++)
				all &= atomic_load(&w[i].seen) >= r;
			if (all || now() > deadline)
				break;
			usleep(1000);
		}
		usleep(200000);
	}
	double cpu = server_cpu() - c0;

	atomic_store(&stop_watch, 1);
	/* a last write wakes every long poll */
	put_policy(admin, watch_name, 0, v);
	double *all = malloc(sizeof(double) * (size_t)nw * (size_t)rounds);
	size_t n = 0, missed = 0;

	for (int i = 0; i < nw; i++) {
		pthread_join(w[i].t, NULL);
		for (int r = 0; r < rounds; r++) {
			if (w[i].lat[r] > 0)
				all[n++] = w[i].lat[r];
			else
				missed++;
		}
		free(w[i].lat);
	}
	qsort(all, n, sizeof *all, cmp_d);
	printf("server op=watch watchers=%d rounds=%d samples=%zu missed=%zu p50_ms=%.1f "
	       "p99_ms=%.1f max_ms=%.1f server_cpu_ms_per_change=%.1f\n",
	       nw, rounds, n, missed, pct(all, n, 0.5) * 1e3, pct(all, n, 0.99) * 1e3,
	       n ? all[n - 1] * 1e3 : 0, cpu * 1e3 / rounds);
	free(all);
	free(w);
	zt_api_free(admin);
}

int main(int argc, char **argv)
{
	if (argc < 8) {
		fprintf(stderr, "usage: bench_server reads|writes|watch URL CA TOKEN PID N SECONDS|COUNT|ROUNDS [CERT KEY]\n");
		return 2;
	}
	url = argv[2];
	ca = argv[3];
	token = argv[4];
	server_pid = atoi(argv[5]);
	int n = atoi(argv[6]);

	if (!strcmp(argv[1], "reads")) {
		run_pool("read", reader, n, atof(argv[7]), 0);
	} else if (!strcmp(argv[1], "writes")) {
		run_pool("write", writer, n, 0, atol(argv[7]));
	} else if (!strcmp(argv[1], "watch") && argc >= 10) {
		cert = argv[8];
		key = argv[9];
		run_watch(n, atoi(argv[7]));
	} else {
		fprintf(stderr, "bench_server: unknown measurement %s\n", argv[1]);
		return 2;
	}
	return 0;
}
