/*
 * proxy/jwks.c: the identity providers' signing keys, for the jwtRules of
 * the policy in force (RequestAuthentication; docs/proxy.md "End-user
 * tokens").
 *
 * One entry per key source a rule names: "uri:URL" (its jwksUri) or
 * "oidc:ISSUER" (OpenID Connect Discovery of the issuer, then its
 * jwks_uri). Inline jwks never come here: the policy snapshot holds them.
 *
 * One thread does every fetch, so the event loops never wait on the
 * network: at start, every jwksRefresh, again after a failure (1 s doubling
 * to a minute), and early when a token names a kid the set lacks (at most
 * once per unknownKidRefetch per source, so a flood of made-up kids costs
 * the provider one request per interval). A fetch that fails keeps the last
 * good set until it is maxStale old; then, as when no fetch ever worked,
 * the source has no keys and every token that needs them is refused: there
 * is never a fallback key (DESIGN.md, CVE-2026-31837).
 *
 * Readers (the workers, verifying tokens) take a counted reference to the
 * set in force under a mutex held for a list walk and an increment; a new
 * set replaces the old one whole, and the old one is freed by its last
 * reader.
 */
#include "proxy_int.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "client/client.h"

#define RETRY_MIN_MS 1000
#define RETRY_MAX_MS 60000

struct entry {
	struct entry *next;
	char *source;            /* "uri:URL" or "oidc:ISSUER" */
	struct px_keyset *keys;  /* NULL: none to verify with */
	uint64_t next_ms;        /* when the thread fetches it next (monotonic) */
	uint64_t refetch_ms;     /* when an unknown kid last asked for a fetch; 0 never */
	unsigned failures;       /* in a row */
	int attempted;           /* a fetch ended, well or not */
	int unused;              /* not named by the policy in force: the thread frees it */
	int busy;                /* being fetched (the thread has let go of the lock) */
	int again;               /* asked for again while busy */
	uint64_t ok, errors;     /* fetches, for /metrics */
};

struct px_jwks {
	pthread_mutex_t mu;
	pthread_cond_t cv; /* the thread waits on it for work; px_jwks_start for progress */
	struct entry *entries;
	pthread_t tid;
	int started, stop;
	int stop_fd;      /* an eventfd: a fetch under way ends at once when stopping */
	char ca_file[PATH_MAX];
	uint64_t refresh_ms, refetch_ms, max_stale_ms;
	int timeout_ms;
};

static uint64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

void px_keyset_put(struct px_keyset *k)
{
	if (!k || atomic_fetch_sub(&k->refs, 1) != 1)
		return;
	zt_jwks_free(&k->keys);
	free(k);
}

static void entry_free(struct entry *en)
{
	px_keyset_put(en->keys);
	free(en->source);
	free(en);
}

struct px_jwks *px_jwks_new(const struct px_jwt_config *cfg, zt_err *e)
{
	struct px_jwks *j = calloc(1, sizeof *j);
	pthread_condattr_t ca;

	if (!j) {
		zt_err_set(e, ZT_ENOMEM, "out of memory");
		return NULL;
	}
	if ((j->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) < 0) {
		zt_err_set(e, ZT_EIO, "eventfd: %s", strerror(errno));
		free(j);
		return NULL;
	}
	pthread_mutex_init(&j->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&j->cv, &ca);
	pthread_condattr_destroy(&ca);
	snprintf(j->ca_file, sizeof j->ca_file, "%s", cfg->ca_file);
	j->refresh_ms = (uint64_t)cfg->refresh * 1000u;
	j->refetch_ms = (uint64_t)cfg->refetch * 1000u;
	j->max_stale_ms = (uint64_t)cfg->max_stale * 1000u;
	j->timeout_ms = (int)cfg->fetch_timeout * 1000;
	return j;
}

void px_jwks_free(struct px_jwks *j)
{
	if (!j)
		return;
	if (j->started) {
		pthread_mutex_lock(&j->mu);
		j->stop = 1;
		pthread_cond_broadcast(&j->cv);
		pthread_mutex_unlock(&j->mu);
		/* a fetch under way is cancelled: the stop waits for no identity provider */
		uint64_t one = 1;

		if (write(j->stop_fd, &one, sizeof one) != sizeof one)
			zt_log(ZT_LOG_WARN, "jwks: cannot wake the fetching thread", NULL);
		pthread_join(j->tid, NULL);
	}
	close(j->stop_fd);
	for (struct entry *en = j->entries, *next; en; en = next) {
		next = en->next;
		entry_free(en);
	}
	pthread_cond_destroy(&j->cv);
	pthread_mutex_destroy(&j->mu);
	free(j);
}

static struct entry *find(struct px_jwks *j, const char *source)
{
	for (struct entry *en = j->entries; en; en = en->next)
		if (!en->unused && strcmp(en->source, source) == 0)
			return en;
	return NULL;
}

void px_jwks_sync(struct px_jwks *j, const zt_policy_snapshot *pol, const char *const *services,
		  size_t nservices)
{
	const zt_jwt_rule *rules[ZT_POLICY_MAX_JWT_RULES];
	int added = 0;

	if (!j)
		return;
	pthread_mutex_lock(&j->mu);
	for (struct entry *en = j->entries; en; en = en->next)
		en->unused = 1;
	for (size_t s = 0; s < nservices; s++) {
		size_t n = zt_policy_jwt_rules(pol, services[s], strlen(services[s]), rules,
					       ZT_POLICY_MAX_JWT_RULES);

		if (n > ZT_POLICY_MAX_JWT_RULES)
			n = ZT_POLICY_MAX_JWT_RULES; /* requests are refused; fetch what we see */
		for (size_t i = 0; i < n; i++) {
			const char *src = rules[i]->key_source;
			struct entry *en;

			if (!src)
				continue; /* inline jwks */
			for (en = j->entries; en && strcmp(en->source, src) != 0; en = en->next)
				;
			if (en) {
				en->unused = 0;
				continue;
			}
			if (!(en = calloc(1, sizeof *en)) || !(en->source = strdup(src))) {
				free(en);
				zt_log(ZT_LOG_ERROR, "out of memory: a key set will not be fetched", "source", src,
				       NULL);
				continue;
			}
			en->next = j->entries;
			j->entries = en;
			added = 1;
		}
	}
	if (added)
		pthread_cond_broadcast(&j->cv);
	pthread_mutex_unlock(&j->mu);
}

/* One fetch, without the lock: discovery first for "oidc:" sources. */
static int fetch(const struct px_jwks *j, const char *source, zt_jwks *out, zt_err *e)
{
	char uri[2100];
	const char *ca = j->ca_file[0] ? j->ca_file : NULL;

	if (strncmp(source, "oidc:", 5) == 0) {
		if (zt_oidc_discover(source + 5, ca, j->timeout_ms, j->stop_fd, uri, sizeof uri, e) != 0)
			return zt_err_wrap(e, "OpenID Connect discovery of %.300s", source + 5);
	} else {
		snprintf(uri, sizeof uri, "%s", source + 4);
	}
	return zt_jwks_fetch(uri, ca, j->timeout_ms, j->stop_fd, 0, out, e);
}

static void apply(struct px_jwks *j, struct entry *en, int r, zt_jwks *set, const zt_err *e,
		  uint64_t now)
{
	char nkeys[24], until[32];

	en->attempted = 1;
	if (r == 0) {
		struct px_keyset *k = calloc(1, sizeof *k);

		if (k) {
			atomic_init(&k->refs, 1);
			k->keys = *set;
			k->fetched_ms = now;
			px_keyset_put(en->keys);
			en->keys = k;
			en->failures = 0;
			en->ok++;
			en->next_ms = now + j->refresh_ms;
			snprintf(nkeys, sizeof nkeys, "%zu", set->n);
			zt_log(ZT_LOG_INFO, "jwks fetched", "source", en->source, "keys", nkeys, NULL);
			memset(set, 0, sizeof *set);
			return;
		}
		zt_jwks_free(set);
	}
	en->errors++;
	en->failures++;
	uint64_t back = RETRY_MIN_MS << (en->failures < 7 ? en->failures - 1 : 6);

	if (back > RETRY_MAX_MS)
		back = RETRY_MAX_MS;
	if (back > j->refresh_ms)
		back = j->refresh_ms;
	en->next_ms = now + back;
	if (en->keys && now < en->keys->fetched_ms + j->max_stale_ms) {
		snprintf(until, sizeof until, "%llu",
			 (unsigned long long)((en->keys->fetched_ms + j->max_stale_ms - now) / 1000u));
		zt_log(ZT_LOG_WARN, "jwks fetch failed; the last key set stays in force for now",
		       "source", en->source, "error", r == 0 ? "out of memory" : e->msg,
		       "seconds_left", until, NULL);
	} else {
		px_keyset_put(en->keys);
		en->keys = NULL;
		zt_log(ZT_LOG_WARN, "jwks fetch failed; no key set: every token that needs it is refused",
		       "source", en->source, "error", r == 0 ? "out of memory" : e->msg, NULL);
	}
}

static void *jwks_main(void *arg)
{
	struct px_jwks *j = arg;

	pthread_mutex_lock(&j->mu);
	while (!j->stop) {
		uint64_t now = mono_ms(), wake = now + 3600u * 1000u;
		struct entry *due = NULL, **pp;

		/* entries the policy no longer names, and sets too old to use */
		for (pp = &j->entries; *pp;) {
			struct entry *en = *pp;

			if (en->unused && !en->busy) {
				*pp = en->next;
				entry_free(en);
				continue;
			}
			if (en->keys && now >= en->keys->fetched_ms + j->max_stale_ms) {
				zt_log(ZT_LOG_ERROR, "jwks older than jwt.maxStale and not refreshed; every token that needs it is refused",
				       "source", en->source, NULL);
				px_keyset_put(en->keys);
				en->keys = NULL;
			}
			if (en->keys && en->keys->fetched_ms + j->max_stale_ms < wake)
				wake = en->keys->fetched_ms + j->max_stale_ms;
			if (!en->unused && (!due || en->next_ms < due->next_ms))
				due = en;
			pp = &en->next;
		}
		if (due && due->next_ms <= now) {
			zt_jwks set;
			zt_err e;
			char *source = strdup(due->source);
			int r;

			due->busy = 1;
			due->again = 0;
			pthread_mutex_unlock(&j->mu);
			memset(&set, 0, sizeof set);
			memset(&e, 0, sizeof e);
			if (source)
				r = fetch(j, source, &set, &e);
			else
				r = zt_err_set(&e, ZT_ENOMEM, "out of memory");
			free(source);
			pthread_mutex_lock(&j->mu);
			due->busy = 0;
			apply(j, due, r, &set, &e, mono_ms());
			if (due->again)
				due->next_ms = 0;
			pthread_cond_broadcast(&j->cv); /* px_jwks_start may be waiting */
			continue;
		}
		if (due && due->next_ms < wake)
			wake = due->next_ms;
		struct timespec ts = { (time_t)(wake / 1000u), (long)(wake % 1000u) * 1000000L };

		(void)pthread_cond_timedwait(&j->cv, &j->mu, &ts);
	}
	pthread_mutex_unlock(&j->mu);
	return NULL;
}

int px_jwks_start(struct px_jwks *j, uint64_t wait_ms, zt_err *e)
{
	uint64_t deadline = mono_ms() + wait_ms;
	sigset_t all, old;
	int r;

	if (!j)
		return 0;
	/* signals belong to the main thread */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	r = pthread_create(&j->tid, NULL, jwks_main, j);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (r != 0)
		return zt_err_set(e, ZT_EIO, "cannot start the key fetching thread: %s", strerror(r));
	j->started = 1;
	pthread_mutex_lock(&j->mu);
	for (;;) {
		int pending = 0;
		uint64_t now = mono_ms();

		for (struct entry *en = j->entries; en; en = en->next)
			pending |= !en->unused && !en->attempted;
		if (!pending || now >= deadline)
			break;
		struct timespec ts = { (time_t)(deadline / 1000u), (long)(deadline % 1000u) * 1000000L };

		(void)pthread_cond_timedwait(&j->cv, &j->mu, &ts);
	}
	pthread_mutex_unlock(&j->mu);
	return 0;
}

struct px_keyset *px_jwks_get(struct px_jwks *j, const char *source, const char **why)
{
	struct px_keyset *k = NULL;
	struct entry *en;

	*why = NULL;
	if (!j) {
		*why = "no key sets are kept";
		return NULL;
	}
	pthread_mutex_lock(&j->mu);
	en = find(j, source);
	if (!en)
		*why = "its key set is not one the policy in force names";
	else if (!en->keys)
		*why = en->attempted ? "its key set could not be fetched" : "its key set has not been fetched yet";
	else if (mono_ms() >= en->keys->fetched_ms + j->max_stale_ms)
		*why = "its key set is older than jwt.maxStale and could not be refreshed";
	else
		atomic_fetch_add(&(k = en->keys)->refs, 1);
	pthread_mutex_unlock(&j->mu);
	return k;
}

void px_jwks_unknown_kid(struct px_jwks *j, const char *source)
{
	struct entry *en;
	uint64_t now = mono_ms();

	if (!j)
		return;
	pthread_mutex_lock(&j->mu);
	en = find(j, source);
	if (en && (!en->refetch_ms || now >= en->refetch_ms + j->refetch_ms)) {
		en->refetch_ms = now;
		if (en->busy)
			en->again = 1;
		else
			en->next_ms = now;
		pthread_cond_broadcast(&j->cv);
		zt_log(ZT_LOG_INFO, "a token names a key the set lacks; fetching it again", "source",
		       en->source, NULL);
	}
	pthread_mutex_unlock(&j->mu);
}

int px_jwks_metrics(struct px_jwks *j, zt_buf *out, zt_err *e)
{
	uint64_t now = mono_ms();
	int r;

	if (!j)
		return 0;
	r = zt_buf_appendf(out, e,
			   "# HELP zt_proxy_jwks_keys Keys in each key set in force (0 when there is none: its tokens are refused).\n"
			   "# TYPE zt_proxy_jwks_keys gauge\n");
	pthread_mutex_lock(&j->mu);
	/* sources were checked at load: no quote, backslash or control character */
	for (struct entry *en = j->entries; en && !r; en = en->next)
		if (!en->unused)
			r = zt_buf_appendf(out, e, "zt_proxy_jwks_keys{source=\"%s\"} %zu\n", en->source,
					   en->keys ? en->keys->keys.n : 0);
	if (!r)
		r = zt_buf_appendf(out, e,
				   "# HELP zt_proxy_jwks_age_seconds Seconds since each key set in force was fetched (-1: none).\n"
				   "# TYPE zt_proxy_jwks_age_seconds gauge\n");
	for (struct entry *en = j->entries; en && !r; en = en->next)
		if (!en->unused)
			r = zt_buf_appendf(out, e, "zt_proxy_jwks_age_seconds{source=\"%s\"} %lld\n",
					   en->source,
					   en->keys ? (long long)((now - en->keys->fetched_ms) / 1000u) : -1LL);
	if (!r)
		r = zt_buf_appendf(out, e,
				   "# HELP zt_proxy_jwks_fetches_total Key set fetches, by result.\n"
				   "# TYPE zt_proxy_jwks_fetches_total counter\n");
	for (struct entry *en = j->entries; en && !r; en = en->next)
		if (!en->unused)
			r = zt_buf_appendf(out, e,
					   "zt_proxy_jwks_fetches_total{source=\"%s\",result=\"ok\"} %llu\n"
					   "zt_proxy_jwks_fetches_total{source=\"%s\",result=\"error\"} %llu\n",
					   en->source, (unsigned long long)en->ok, en->source,
					   (unsigned long long)en->errors);
	pthread_mutex_unlock(&j->mu);
	return r;
}
