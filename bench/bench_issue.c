/*
 * bench_issue: SVID issuance through the server, as agents ask for it
 * (bench/run-issue.sh starts the server and passes what this needs).
 *
 *   bench_issue server URL CA TOKEN PID AGENTS SECONDS
 *       AGENTS simulated agents join (a join token each, attestation with
 *       a CSR), get one registration entry each, and then each asks for
 *       SVIDs of that entry as fast as it can for SECONDS, over its own
 *       kept-alive mTLS connection: every request carries a certificate
 *       request (proof of possession checked), is authorized against the
 *       agent and its entries, signed, and audited durably before the
 *       answer. Prints SVIDs/s, latency p50/p99 and the server's CPU per
 *       SVID. (The agents reuse one key per agent: the server's work is
 *       the same, and the keys a real agent makes are its own CPU.)
 *
 *   bench_issue entries URL CA TOKEN NODE COUNT
 *       Makes COUNT registration entries for NODE (run-issue.sh then times
 *       a real agent issuing all of them).
 *
 * One line per measurement:
 *   issue op=single batch=0 agents=16 svids=N svids_per_s=N p50_us=N p99_us=N server_cpu_us_per_svid=N
 *
 *   bench_issue batch URL CA TOKEN PID AGENTS SECONDS SIZE
 *       The same through POST /v1/svids/batch, SIZE SVIDs per request, as
 *       an agent renews its node's SVIDs.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "client/client.h"
#include "crypto/crypto.h"

static const char *url, *ca, *token;
static int batch_size; /* 0: one SVID per request; else POST /v1/svids/batch of this many */
static int server_pid;
static char tmpdir[] = "/tmp/bench-issue-XXXXXX";

static double now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void die(const char *what, const char *msg)
{
	fprintf(stderr, "bench_issue: %s: %s\n", what, msg);
	exit(1);
}

static double server_cpu(void)
{
	char p[64], buf[4096];
	FILE *f;
	size_t n;
	unsigned long ut = 0, st = 0;

	snprintf(p, sizeof p, "/proc/%d/stat", server_pid);
	if (!(f = fopen(p, "r")))
		return 0;
	n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = '\0';
	const char *s = strrchr(buf, ')');

	if (!s || sscanf(s + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
		return 0;
	return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

static zt_api *client(const char *cert, const char *key)
{
	zt_api_config c;
	zt_api *a;
	zt_err e;

	memset(&c, 0, sizeof c);
	snprintf(c.server, sizeof c.server, "%s", url);
	snprintf(c.ca_file, sizeof c.ca_file, "%s", ca);
	if (cert) {
		snprintf(c.cert, sizeof c.cert, "%s", cert);
		snprintf(c.key, sizeof c.key, "%s", key);
	} else if (token) {
		snprintf(c.token, sizeof c.token, "%s", token);
	}
	if (!(a = zt_api_new(&c, &e)))
		die("client", e.msg);
	return a;
}

static json_t *call(zt_api *a, const char *method, const char *path, json_t *body, int want)
{
	zt_api_resp r;
	zt_err e;

	if (zt_api_call(a, method, path, body, NULL, 30000, &r, &e) != 0)
		die(path, e.msg);
	json_decref(body);
	if (r.status != want) {
		fprintf(stderr, "bench_issue: %s %s: HTTP %d %s\n", method, path, r.status,
			zt_api_resp_message(&r));
		exit(1);
	}
	json_t *j = json_incref(r.json);

	zt_api_resp_free(&r);
	return j;
}

struct agent {
	pthread_t t;
	int n;
	char cert[4200], key[4200], id[128];
	char *csr;
	double secs;
	double *lat;
	size_t nlat, cap;
};

/* A key and its CSR (PEM, NUL-terminated); the key is written to path when given. */
static char *make_csr(const char *key_path)
{
	zt_buf csr;
	zt_err e;
	EVP_PKEY *k = zt_key_generate(&e);

	zt_buf_init(&csr, 1u << 16);
	if (!k || zt_csr_make(k, &csr, &e) != 0 || zt_buf_terminate(&csr, &e) != 0 ||
	    (key_path && zt_key_save(key_path, k, &e) != 0))
		die("csr", e.msg);
	EVP_PKEY_free(k);
	return (char *)csr.p;
}

/* Joins as node bench-N: a join token, attestation, the agent's files; and one entry. */
static void join(zt_api *admin, struct agent *ag)
{
	char node[64];
	zt_err e;

	snprintf(node, sizeof node, "bench-%d-%d", ag->n, (int)getpid());
	json_t *t = call(admin, "POST", "/v1/jointokens", json_pack("{s:s}", "node", node), 201);
	snprintf(ag->key, sizeof ag->key, "%s/%s.key", tmpdir, node);
	snprintf(ag->cert, sizeof ag->cert, "%s/%s.pem", tmpdir, node);
	char *csr = make_csr(ag->key);
	const char *saved = token;

	token = NULL; /* attestation carries no credential but the join token */
	zt_api *anon = client(NULL, NULL);

	token = saved;
	json_t *j = call(anon, "POST", "/v1/agents/attest",
			 json_pack("{s:s,s:s}", "token", json_string_value(json_object_get(t, "token")),
				   "csr", csr), 201);
	const char *chain = json_string_value(json_object_get(j, "chain"));

	if (zt_file_write(ag->cert, chain, strlen(chain), 0600, 0, &e) != 0)
		die("agent cert", e.msg);
	json_decref(j);
	json_decref(t);
	free(csr);
	zt_api_free(anon);
	snprintf(ag->id, sizeof ag->id, "spiffe://zt.local/ns/dev/sa/web");
	json_decref(call(admin, "POST", "/v1/entries",
			 json_pack("{s:s,s:s,s:[s]}", "id", ag->id, "node", node, "selectors",
				   "unix:uid:0"), 201));
	ag->csr = make_csr(NULL);
}

static void *agent_main(void *arg)
{
	struct agent *ag = arg;
	zt_api *a = client(ag->cert, ag->key);
	double end = now() + ag->secs;

	while (now() < end) {
		double t0 = now();
		int got = 1;

		if (batch_size) {
			json_t *reqs = json_array();

			for (int i = 0; i < batch_size; i++)
				json_array_append_new(reqs, json_pack("{s:s,s:s}", "id", ag->id, "csr", ag->csr));
			json_t *ans = call(a, "POST", "/v1/svids/batch", json_pack("{s:o}", "requests", reqs), 200);
			json_t *it;
			size_t k;

			got = 0;
			json_array_foreach(json_object_get(ans, "svids"), k, it)
				got += json_object_get(it, "chain") != NULL;
			json_decref(ans);
			if (got != batch_size)
				die("batch", "an SVID of the batch was refused");
		} else {
			json_decref(call(a, "POST", "/v1/svids",
					 json_pack("{s:s,s:s}", "id", ag->id, "csr", ag->csr), 201));
		}
		/* one latency per SVID: a batch's time counts for each of its SVIDs */
		for (int i = 0; i < got; i++) {
			if (ag->nlat == ag->cap) {
				ag->cap = ag->cap ? ag->cap * 2 : 4096;
				ag->lat = realloc(ag->lat, ag->cap * sizeof *ag->lat);
			}
			ag->lat[ag->nlat++] = now() - t0;
		}
	}
	zt_api_free(a);
	return NULL;
}

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* bench_issue entries URL CA TOKEN NODE COUNT: COUNT entries for NODE (distinct uids). */
static int make_entries(const char *node, int count)
{
	zt_api *admin = client(NULL, NULL);
	char sel[32];

	for (int i = 0; i < count; i++) {
		snprintf(sel, sizeof sel, "unix:uid:%d", 100000 + i);
		json_decref(call(admin, "POST", "/v1/entries",
				 json_pack("{s:s,s:s,s:[s]}", "id", "spiffe://zt.local/ns/dev/sa/web", "node",
					   node, "selectors", sel), 201));
	}
	zt_api_free(admin);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 7 && !strcmp(argv[1], "entries")) {
		zt_crypto_init();
		url = argv[2];
		ca = argv[3];
		token = argv[4];
		return make_entries(argv[5], atoi(argv[6]));
	}
	if (argc < 8 || (strcmp(argv[1], "server") && strcmp(argv[1], "batch")) ||
	    (!strcmp(argv[1], "batch") && argc < 9)) {
		fprintf(stderr, "usage: bench_issue server URL CA TOKEN PID AGENTS SECONDS\n"
				"       bench_issue batch URL CA TOKEN PID AGENTS SECONDS SIZE\n");
		return 2;
	}
	if (!strcmp(argv[1], "batch") && ((batch_size = atoi(argv[8])) < 1 || batch_size > 100))
		die("batch", "SIZE is 1 to 100");
	zt_crypto_init();
	url = argv[2];
	ca = argv[3];
	token = argv[4];
	server_pid = atoi(argv[5]);
	int n = atoi(argv[6]);
	double secs = atof(argv[7]);

	if (n < 1 || n > 256 || !mkdtemp(tmpdir))
		die("setup", "1-256 agents, and a temporary folder");
	zt_api *admin = client(NULL, NULL);
	struct agent *ags = calloc((size_t)n, sizeof *ags);

	for (int i = 0; i < n; i++) {
		ags[i].n = i;
		ags[i].secs = secs;
		join(admin, &ags[i]);
	}
	zt_api_free(admin);
	double c0 = server_cpu(), t0 = now();

	for (int i = 0; i < n; i++)
		pthread_create(&ags[i].t, NULL, agent_main, &ags[i]);
	for (int i = 0; i < n; i++)
		pthread_join(ags[i].t, NULL);
	double wall = now() - t0, cpu = server_cpu() - c0;
	size_t total = 0;

	for (int i = 0; i < n; i++)
		total += ags[i].nlat;
	double *all = malloc((total + 1) * sizeof *all);
	size_t k = 0;

	for (int i = 0; i < n; i++) {
		memcpy(all + k, ags[i].lat, ags[i].nlat * sizeof *all);
		k += ags[i].nlat;
		free(ags[i].lat);
		free(ags[i].csr);
		unlink(ags[i].cert);
		unlink(ags[i].key);
	}
	rmdir(tmpdir);
	qsort(all, total, sizeof *all, cmp_d);
	printf("issue op=%s batch=%d agents=%d svids=%zu svids_per_s=%.0f p50_us=%.0f p99_us=%.0f "
	       "server_cpu_us_per_svid=%.0f\n",
	       batch_size ? "batch" : "single", batch_size, n, total, (double)total / wall, total ? all[total / 2] * 1e6 : 0,
	       total ? all[(size_t)(0.99 * (double)(total - 1))] * 1e6 : 0,
	       total ? cpu * 1e6 / (double)total : 0);
	free(all);
	free(ags);
	return 0;
}
