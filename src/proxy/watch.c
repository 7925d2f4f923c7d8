/*
 * proxy/watch.c: policy from the control plane (spec.policy.server).
 *
 * One thread long-polls GET /v1/watch/policies with the proxy's SVID; the
 * server answers with the organization and the policies that apply to
 * this workload's workspace as soon as anything changed. A new set is
 * compiled and put in force for new connections; one that does not compile
 * is refused and the last good policy stays. When the server cannot be
 * reached the proxy goes on enforcing what it has and tries again with
 * exponential backoff (100 ms doubling to 30 s, with jitter so a fleet
 * does not come back in step). With spec.policy.cache the last answer is
 * kept on disk, so a restart while the server is away still enforces it.
 * A new SVID (a reload) makes the next request go out with it.
 */
#include "proxy_int.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "client/client.h"
#include "crypto/crypto.h"

#define WATCH_WAIT_S 30               /* the server holds a watch this long */
#define WATCH_SLACK_MS 15000          /* on top of it, before we give up on a reply */
#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 30000
#define CACHE_MAX (16u << 20)

zt_policy_snapshot *px_policy_from_answer(const json_t *answer, const char *origin, zt_err *e)
{
	json_t *docs = json_object_get(answer, "documents"), *d;
	zt_policy_src *src = zt_policy_src_new(NULL);
	zt_policy_snapshot *snap = NULL;
	size_t i;

	if (!src) {
		zt_err_set(e, ZT_ENOMEM, "out of memory");
		return NULL;
	}
	if (!json_is_array(docs)) {
		zt_err_set(e, ZT_EPARSE, "%s: no documents", origin);
		goto out;
	}
	json_array_foreach(docs, i, d) {
		char name[128], *text = json_dumps(d, JSON_COMPACT);

		if (!text) {
			zt_err_set(e, ZT_ENOMEM, "out of memory");
			goto out;
		}
		snprintf(name, sizeof name, "%s#%zu", origin, i);
		zt_policy_src_add_text(src, name, text, strlen(text));
		free(text);
	}
	zt_policy_src_check(src);
	for (i = 0; i < zt_policy_src_ndiags(src); i++) {
		const zt_diag *dg = zt_policy_src_diag(src, i);

		if (dg->level == ZT_DIAG_ERROR)
			zt_log(ZT_LOG_ERROR, "policy diagnostic", "file", dg->file, "message", dg->msg, NULL);
	}
	snap = zt_policy_compile(src, e);
out:
	zt_policy_src_free(src);
	return snap;
}

/* The cache: the server's answer as it came, written whole or not at all. */
zt_policy_snapshot *px_policy_cache_load(const char *path, uint64_t *revision, zt_err *e)
{
	zt_buf b;
	json_t *j;
	zt_policy_snapshot *snap = NULL;

	zt_buf_init(&b, CACHE_MAX);
	if (zt_file_read(path, CACHE_MAX, &b, e) != 0)
		goto out;
	if (!(j = json_loadb((const char *)b.p, b.len, JSON_REJECT_DUPLICATES, NULL))) {
		zt_err_set(e, ZT_EPARSE, "%s is not the JSON the policy server sent", path);
		goto out;
	}
	*revision = (uint64_t)json_integer_value(json_object_get(j, "revision"));
	snap = px_policy_from_answer(j, path, e);
	json_decref(j);
out:
	zt_buf_free(&b, 0);
	return snap;
}

static void cache_store(const char *path, const json_t *answer)
{
	char *text = json_dumps(answer, JSON_COMPACT);
	zt_err e;

	if (!text || zt_file_write(path, text, strlen(text), 0600, 0, &e) != 0)
		zt_log(ZT_LOG_WARN, "cannot write the policy cache; the policy in force is unchanged",
		       "path", path, "error", text ? e.msg : "out of memory", NULL);
	free(text);
}

/* Sleeps ms, or less when we are told to stop; 1 if stopping. */
static int nap(zt_proxy *px, int ms)
{
	struct pollfd p = {.fd = px->watch_cancel, .events = POLLIN};

	return poll(&p, 1, ms) > 0;
}

static zt_api *connect_api(zt_proxy *px, zt_err *e)
{
	zt_api_config c;
	zt_api *a;

	memset(&c, 0, sizeof c);
	snprintf(c.server, sizeof c.server, "%s", px->cfg.policy_server);
	snprintf(c.ca_file, sizeof c.ca_file, "%s", px->cfg.bundle);
	snprintf(c.cert, sizeof c.cert, "%s", px->cfg.cert);
	snprintf(c.key, sizeof c.key, "%s", px->cfg.key);
	if ((a = zt_api_new(&c, e)))
		zt_api_set_cancel(a, px->watch_cancel);
	return a;
}

static void *watch_main(void *arg)
{
	zt_proxy *px = arg;
	zt_api *api = NULL;
	unsigned gen = 0, backoff = 0;
	uint64_t since = atomic_load(&px->policy_revision);
	uint64_t last_hash = 0;
	int failing = 0, synced = 0; /* synced: an answer came since the start */
	char path[96];
	zt_err e;

	while (!atomic_load(&px->stopping) && !nap(px, 0)) {
		if (!api || gen != atomic_load(&px->id_gen)) {
			zt_api_free(api);
			gen = atomic_load(&px->id_gen);
			if (!(api = connect_api(px, &e)))
				goto failed;
		}
		zt_api_resp r;

		/* after a failure, ask for the set at once: connected again is known at once, and a
		 * server restored from a backup (an older revision) cannot leave us waiting */
		if (failing || !synced)
			snprintf(path, sizeof path, "/v1/watch/policies?timeout=%d", WATCH_WAIT_S);
		else
			snprintf(path, sizeof path, "/v1/watch/policies?since=%llu&timeout=%d",
				 (unsigned long long)since, WATCH_WAIT_S);
		if (zt_api_call(api, "GET", path, NULL, NULL, WATCH_WAIT_S * 1000 + WATCH_SLACK_MS, &r,
				&e) != 0)
			goto failed;
		if (r.status != 200 || !json_is_object(r.json)) {
			zt_err_set(&e, ZT_EIO, "the policy server answered %d: %s", r.status,
				   zt_api_resp_message(&r));
			zt_api_resp_free(&r);
			goto failed;
		}
		if (failing)
			zt_log(ZT_LOG_INFO, "policy server reachable again", "server", px->cfg.policy_server, NULL);
		failing = 0;
		synced = 1;
		backoff = 0;
		atomic_store(&px->policy_connected, 1);
		uint64_t rev = (uint64_t)json_integer_value(json_object_get(r.json, "revision"));
		char *docs = json_dumps(json_object_get(r.json, "documents"), JSON_COMPACT | JSON_SORT_KEYS);
		uint64_t h = docs ? zt_hash(docs, strlen(docs)) : 0;

		free(docs);
		/* the store moves for other reasons too: recompile only when our set changed */
		if (h != last_hash || !atomic_load(&px->policy_revision)) {
			char origin[64], rs[24];
			zt_policy_snapshot *pol;

			snprintf(origin, sizeof origin, "server revision %llu", (unsigned long long)rev);
			snprintf(rs, sizeof rs, "%llu", (unsigned long long)rev);
			if ((pol = px_policy_from_answer(r.json, origin, &e))) {
				if (px_policy_install(px, pol) == 0) {
					last_hash = h;
					atomic_store(&px->policy_revision, rev ? rev : 1);
					atomic_fetch_add(&px->policy_updates, 1);
					zt_log(ZT_LOG_INFO, "policy updated from the server", "revision", rs, NULL);
					if (px->cfg.policy_cache[0])
						cache_store(px->cfg.policy_cache, r.json);
				}
			} else {
				last_hash = h; /* the same set would fail the same way */
				atomic_fetch_add(&px->policy_refused, 1);
				zt_log(ZT_LOG_ERROR, "policy from the server refused; the previous policy stays in force",
				       "revision", rs, "error", e.msg, NULL);
			}
		}
		since = rev;
		zt_api_resp_free(&r);
		continue;
failed:
		if (atomic_load(&px->stopping) || !strcmp(e.rule, "cancelled"))
			break;
		atomic_store(&px->policy_connected, 0);
		atomic_fetch_add(&px->policy_errors, 1);
		if (!failing)
			zt_log(ZT_LOG_WARN, "policy server unreachable; the policy in force stays, retrying with backoff",
			       "server", px->cfg.policy_server, "error", e.msg, NULL);
		failing = 1;
		backoff = backoff ? backoff * 2 : BACKOFF_MIN_MS;
		if (backoff > BACKOFF_MAX_MS)
			backoff = BACKOFF_MAX_MS;
		uint32_t jitter;

		if (zt_random(&jitter, sizeof jitter, NULL) != 0)
			jitter = 0;
		if (nap(px, (int)(backoff / 2 + jitter % (backoff / 2 + 1))))
			break;
		if (api)
			zt_api_disconnect(api);
	}
	zt_api_free(api);
	zt_crypto_thread_cleanup();
	return NULL;
}

int px_watch_start(zt_proxy *px, zt_err *e)
{
	if (!px->cfg.policy_server[0])
		return 0;
	if ((px->watch_cancel = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) < 0)
		return zt_err_set(e, ZT_EIO, "eventfd: %s", strerror(errno));
	if (pthread_create(&px->watch_tid, NULL, watch_main, px) != 0)
		return zt_err_set(e, ZT_EIO, "cannot start the policy watch thread");
	px->watch_started = 1;
	return 0;
}

void px_watch_stop(zt_proxy *px)
{
	if (px->watch_started) {
		uint64_t one = 1;

		if (write(px->watch_cancel, &one, sizeof one) < 0)
			zt_log(ZT_LOG_ERROR, "cannot stop the policy watch", NULL);
		pthread_join(px->watch_tid, NULL);
		px->watch_started = 0;
	}
	if (px->watch_cancel > 0)
		close(px->watch_cancel);
	px->watch_cancel = -1;
}
