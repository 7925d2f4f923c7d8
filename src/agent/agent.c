/*
 * agent/agent.c: the daemon — joining, its own SVID, the entries of its
 * node and an SVID for each, kept fresh.
 *
 * Threads:
 *   main    signals; starts and stops the rest
 *   sync    long-polls the server for the node's entries
 *   manage  renews the agent's SVID and issues and renews the workloads'
 *           SVIDs at half life; while the server is away it retries with
 *           backoff and the SVIDs already held are served until they expire
 *   httpd   the Workload API (Unix socket) and the admin endpoint
 * Each thread that calls the server has its own client (a client is one
 * connection); a new agent SVID makes them reconnect with it.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "agent/agent_int.h"
#include "crypto/crypto.h"
#include "identity/identity.h"

#define BACKOFF_MIN_MS 200
#define BACKOFF_MAX_MS 30000
#define WATCH_S 30

static int path_in(char *out, size_t cap, const char *dir, const char *name)
{
	return zt_path_join(out, cap, NULL, "%s/%s", dir, name);
}

/* Waits ms or until stopping; 1 when stopping. */
static int nap(struct ag *a, int ms)
{
	struct pollfd p = {.fd = a->stop_fd, .events = POLLIN};

	return poll(&p, 1, ms) > 0 || atomic_load(&a->stopping);
}

/* ---- the agent's own SVID ---- */

/* A client of the server: our SVID when we have one, else none (joining). */
zt_api *ag_client(struct ag *a, int with_svid, zt_err *e)
{
	zt_api_config c;
	zt_api *api;
	char bundle[PATH_MAX];

	memset(&c, 0, sizeof c);
	snprintf(c.server, sizeof c.server, "%s", a->cfg.server);
	/* the bundle the server last gave us, else the configured one */
	if (path_in(bundle, sizeof bundle, a->cfg.data_dir, "bundle.pem") == 0 && zt_path_exists(bundle))
		snprintf(c.ca_file, sizeof c.ca_file, "%s", bundle);
	else
		snprintf(c.ca_file, sizeof c.ca_file, "%s", a->cfg.trust_bundle);
	if (with_svid) {
		if (path_in(c.cert, sizeof c.cert, a->cfg.data_dir, "agent.pem") != 0 ||
		    path_in(c.key, sizeof c.key, a->cfg.data_dir, "agent.key") != 0) {
			zt_err_set(e, ZT_EINVAL, "spec.dataDir is too long");
			return NULL;
		}
	}
	if ((api = zt_api_new(&c, e)))
		zt_api_set_cancel(api, a->stop_fd);
	return api;
}

/* Reads the agent's SVID from dataDir: 0 when it is there, ours, and still valid. */
static int self_load(struct ag *a, zt_err *e)
{
	char crt[PATH_MAX], key[PATH_MAX];
	STACK_OF(X509) *chain = NULL;
	EVP_PKEY *k = NULL;
	zt_spiffe_id id;
	int64_t nb, na;
	int r = -ZT_ENOENT;

	if (path_in(crt, sizeof crt, a->cfg.data_dir, "agent.pem") != 0 ||
	    path_in(key, sizeof key, a->cfg.data_dir, "agent.key") != 0)
		return zt_err_set(e, ZT_EINVAL, "spec.dataDir is too long");
	if (!zt_path_exists(crt))
		return zt_err_set(e, ZT_ENOENT, "no agent SVID yet");
	if (zt_certs_load(crt, &chain, e) != 0 || !(k = zt_key_load(key, e)))
		goto out;
	X509 *leaf = sk_X509_value(chain, 0);

	if (!leaf || !zt_key_matches_cert(k, leaf) || zt_svid_check_leaf(leaf, &id, e) != 0 ||
	    zt_cert_times(leaf, &nb, &na) != 0) {
		r = zt_err_set(e, ZT_EINVAL, "%s is not an SVID for the key beside it", crt);
		goto out;
	}
	if (na <= zt_now()) {
		r = zt_err_set(e, ZT_ESTATE, "the agent's SVID expired at %lld: the node must join again "
					     "with a new join token", (long long)na);
		goto out;
	}
	size_t tdl;
	const char *td = zt_id_td(&id, &tdl);
	char pre[300];
	int pl = snprintf(pre, sizeof pre, "spiffe://%.*s/zt/agent/", (int)tdl, td);

	if (strncmp(id.str, pre, (size_t)pl) || !id.str[pl]) {
		r = zt_err_set(e, ZT_EINVAL, "%s is %s, not an agent's SVID", crt, id.str);
		goto out;
	}
	pthread_mutex_lock(&a->mu);
	snprintf(a->td, sizeof a->td, "%.*s", (int)tdl, td);
	snprintf(a->node, sizeof a->node, "%s", id.str + pl);
	snprintf(a->self_id, sizeof a->self_id, "%s", id.str);
	a->self_not_before = nb;
	a->self_not_after = na;
	pthread_mutex_unlock(&a->mu);
	r = 0;
out:
	sk_X509_pop_free(chain, X509_free);
	EVP_PKEY_free(k);
	return r;
}

/* Writes a new key and its chain (and the bundle) into dataDir, replacing the old ones. */
static int self_store(struct ag *a, EVP_PKEY *k, const char *chain, const char *bundle, zt_err *e)
{
	char crt[PATH_MAX], key[PATH_MAX], tmp[PATH_MAX + 8], bpath[PATH_MAX];
	int r;

	if (path_in(crt, sizeof crt, a->cfg.data_dir, "agent.pem") != 0 ||
	    path_in(key, sizeof key, a->cfg.data_dir, "agent.key") != 0 ||
	    path_in(bpath, sizeof bpath, a->cfg.data_dir, "bundle.pem") != 0)
		return zt_err_set(e, ZT_EINVAL, "spec.dataDir is too long");
	snprintf(tmp, sizeof tmp, "%s.new", key);
	unlink(tmp);
	/* the key is sealed under the KEK when one is set: it is the node's credential */
	if ((r = zt_key_store(tmp, k, e)) != 0 ||
	    (bundle && (r = zt_file_write(bpath, bundle, strlen(bundle), 0644, 0, e)) != 0))
		return r;
	if (rename(tmp, key) != 0)
		return zt_err_set(e, ZT_EIO, "cannot put the agent's key in place: %s", strerror(errno));
	return zt_file_write(crt, chain, strlen(chain), 0644, 0, e);
}

/* A new key and a certificate request for it. */
static EVP_PKEY *new_key(zt_buf *csr, zt_err *e)
{
	EVP_PKEY *k = zt_key_generate(e);

	if (k && (zt_csr_make(k, csr, e) != 0 || zt_buf_terminate(csr, e) != 0)) {
		EVP_PKEY_free(k);
		return NULL;
	}
	return k;
}

/* Node attestation: the join token and a CSR for the agent's SVID. */
static int join(struct ag *a, zt_err *e)
{
	zt_buf csr;
	zt_api *api = NULL;
	EVP_PKEY *k = NULL;
	zt_api_resp r = {0};
	int rc = -ZT_EINVAL;

	if (!a->cfg.join_token[0])
		return zt_err_set(e, ZT_EINVAL, "this node has not joined yet: give spec.joinToken or "
						"spec.joinTokenFile (zt join-token create --node NAME)");
	zt_buf_init(&csr, 1u << 16);
	if (!(k = new_key(&csr, e)) || !(api = ag_client(a, 0, e)))
		goto out;
	json_t *body = json_pack("{s:s,s:s}", "token", a->cfg.join_token, "csr", (const char *)csr.p);

	rc = zt_api_call(api, "POST", "/v1/agents/attest", body, NULL, 30000, &r, e);
	json_decref(body);
	if (rc != 0)
		goto out;
	const char *chain = json_string_value(json_object_get(r.json, "chain"));
	const char *bundle = json_string_value(json_object_get(r.json, "bundle"));

	if (r.status != 201 || !chain || !bundle) {
		rc = zt_err_set(e, ZT_EVERIFY, "the server refused the join (HTTP %d): %s", r.status,
				zt_api_resp_message(&r));
		goto out;
	}
	if ((rc = self_store(a, k, chain, bundle, e)) == 0)
		zt_log(ZT_LOG_INFO, "joined", "id", json_string_value(json_object_get(r.json, "id")), NULL);
out:
	zt_api_resp_free(&r);
	zt_api_free(api);
	EVP_PKEY_free(k);
	zt_buf_free(&csr, 0);
	return rc;
}

/* The bundle a server answer carries becomes the one served (and wakes who waits for changes). */
static void take_bundle(struct ag *a, const char *bundle)
{
	pthread_mutex_lock(&a->mu);
	if (bundle && (!a->bundle_pem || strcmp(a->bundle_pem, bundle))) {
		free(a->bundle_pem);
		a->bundle_pem = strdup(bundle);
		a->gen++;
		pthread_cond_broadcast(&a->changed);
	}
	pthread_mutex_unlock(&a->mu);
}

/*
 * POST /v1/svids for id (the agent's own) with a new key: *key_out and
 * *chain_pem on success (caller frees); the bundle in force is taken.
 */
static int issue(struct ag *a, zt_api *api, const char *id, EVP_PKEY **key_out, char **chain_pem,
		 zt_err *e)
{
	zt_buf csr;
	EVP_PKEY *k;
	zt_api_resp r = {0};
	int rc;

	zt_buf_init(&csr, 1u << 16);
	if (!(k = new_key(&csr, e))) {
		zt_buf_free(&csr, 0);
		return -ZT_ECRYPTO;
	}
	json_t *body = json_pack("{s:s,s:s}", "id", id, "csr", (const char *)csr.p);

	rc = zt_api_call(api, "POST", "/v1/svids", body, NULL, 30000, &r, e);
	json_decref(body);
	if (rc == 0 && (r.status != 201 || !json_string_value(json_object_get(r.json, "chain"))))
		rc = zt_err_set(e, r.status == 403 ? ZT_EVERIFY : ZT_EIO, "the server refused %s (HTTP %d): %s",
				id, r.status, zt_api_resp_message(&r));
	if (rc == 0) {
		take_bundle(a, json_string_value(json_object_get(r.json, "bundle")));
		if (!(*chain_pem = strdup(json_string_value(json_object_get(r.json, "chain")))))
			rc = zt_err_set(e, ZT_ENOMEM, "out of memory");
	}
	zt_api_resp_free(&r);
	zt_buf_free(&csr, 0);
	if (rc == 0)
		*key_out = k;
	else
		EVP_PKEY_free(k);
	return rc;
}

/* Renews the agent's SVID once half its life is gone: 1 renewed, 0 not due, < 0 failed. */
static int self_renew(struct ag *a, zt_api *api, zt_err *e)
{
	int64_t now = zt_now();

	pthread_mutex_lock(&a->mu);
	int due = now >= a->self_not_before + (a->self_not_after - a->self_not_before) / 2;
	char id[2049];

	snprintf(id, sizeof id, "%s", a->self_id);
	pthread_mutex_unlock(&a->mu);
	if (!due)
		return 0;
	EVP_PKEY *k = NULL;
	char *chain = NULL;
	int r = issue(a, api, id, &k, &chain, e);

	if (r == 0) {
		pthread_mutex_lock(&a->mu);
		char *bundle = a->bundle_pem ? strdup(a->bundle_pem) : NULL;

		pthread_mutex_unlock(&a->mu);
		r = self_store(a, k, chain, bundle, e);
		free(bundle);
		if (r == 0)
			r = self_load(a, e);
	}
	EVP_PKEY_free(k);
	free(chain);
	if (r == 0)
		zt_log(ZT_LOG_INFO, "the agent's SVID was renewed", "id", id, NULL);
	return r == 0 ? 1 : r;
}

/* ---- the node's entries ---- */

static void *sync_main(void *arg)
{
	struct ag *a = arg;
	int64_t gen = 0;
	unsigned backoff = 0;
	zt_api *api = NULL;
	uint64_t since = 0;
	int synced = 0;
	char path[128];
	zt_err e;

	while (!atomic_load(&a->stopping)) {
		pthread_mutex_lock(&a->mu);
		int64_t self_gen = a->self_not_after; /* moves with every renewal of our SVID */

		pthread_mutex_unlock(&a->mu);
		if (!api || gen != self_gen) {
			zt_api_free(api);
			gen = self_gen;
			if (!(api = ag_client(a, 1, &e)))
				goto failed;
		}
		zt_api_resp r;

		if (synced)
			snprintf(path, sizeof path, "/v1/agents/self/entries?since=%llu&timeout=%d",
				 (unsigned long long)since, WATCH_S);
		else
			snprintf(path, sizeof path, "/v1/agents/self/entries");
		if (zt_api_call(api, "GET", path, NULL, NULL, (WATCH_S + 15) * 1000, &r, &e) != 0)
			goto failed;
		json_t *entries = json_object_get(r.json, "entries");

		if (r.status != 200 || !json_is_array(entries)) {
			zt_err_set(&e, ZT_EIO, "the server answered %d: %s", r.status, zt_api_resp_message(&r));
			zt_api_resp_free(&r);
			goto failed;
		}
		since = (uint64_t)json_integer_value(json_object_get(r.json, "revision"));
		pthread_mutex_lock(&a->mu);
		if (!a->entries || !json_equal(a->entries, entries)) {
			json_decref(a->entries);
			a->entries = json_incref(entries);
			a->gen++;
			a->entries_gen++;
			pthread_cond_broadcast(&a->changed);
		}
		a->entries_rev = since;
		a->server_ok = 1;
		pthread_mutex_unlock(&a->mu);
		if (!synced || backoff)
			zt_log(ZT_LOG_INFO, "entries in sync with the server", NULL);
		synced = 1;
		backoff = 0;
		zt_api_resp_free(&r);
		continue;
failed:
		if (atomic_load(&a->stopping))
			break;
		pthread_mutex_lock(&a->mu);
		a->server_ok = 0;
		a->sync_failures++;
		pthread_mutex_unlock(&a->mu);
		if (!backoff)
			zt_log(ZT_LOG_WARN, "cannot reach the server for entries; serving what is held, retrying",
			       "error", e.msg, NULL);
		backoff = backoff ? backoff * 2 : BACKOFF_MIN_MS;
		if (backoff > BACKOFF_MAX_MS)
			backoff = BACKOFF_MAX_MS;
		if (api)
			zt_api_disconnect(api);
		synced = 0;
		if (nap(a, (int)backoff))
			break;
	}
	zt_api_free(api);
	zt_crypto_thread_cleanup();
	return NULL;
}

/* ---- the workloads' SVIDs ---- */

static void svid_clear(struct ag_svid *s)
{
	if (s->key_pem)
		zt_wipe(s->key_pem, strlen(s->key_pem));
	free(s->key_pem);
	free(s->chain_pem);
	memset(s, 0, sizeof *s);
}

/* The validity of the first certificate of a PEM chain. */
static int chain_times(const char *pem, int64_t *nb, int64_t *na)
{
	STACK_OF(X509) *c = NULL;
	int r = -1;

	if (zt_certs_parse_pem((const uint8_t *)pem, strlen(pem), &c, NULL) == 0 &&
	    sk_X509_num(c) > 0 && zt_cert_times(sk_X509_value(c, 0), nb, na) == 0)
		r = 0;
	sk_X509_pop_free(c, X509_free);
	return r;
}

/* Puts a new SVID for entry name in place (takes chain and key). 0, or -1 out of memory. */
static int install(struct ag *a, const char *name, const char *id, char *chain, char *key,
		   int64_t nb, int64_t na)
{
	struct ag_svid ns = {.chain_pem = chain, .key_pem = key, .not_before = nb, .not_after = na};
	size_t k;

	snprintf(ns.entry, sizeof ns.entry, "%s", name);
	snprintf(ns.id, sizeof ns.id, "%s", id);
	pthread_mutex_lock(&a->mu);
	for (k = 0; k < a->nsvids && strcmp(a->svids[k].entry, name); k++)
		;
	if (k == a->nsvids) {
		struct ag_svid *grown = realloc(a->svids, (a->nsvids + 1) * sizeof *grown);

		if (!grown) {
			pthread_mutex_unlock(&a->mu);
			svid_clear(&ns);
			return -1;
		}
		a->svids = grown;
		memset(&a->svids[a->nsvids++], 0, sizeof *grown);
	}
	svid_clear(&a->svids[k]);
	a->svids[k] = ns;
	a->issued++;
	a->gen++;
	pthread_cond_broadcast(&a->changed);
	pthread_mutex_unlock(&a->mu);
	return 0;
}

#define BATCH 100

struct due {
	const char *name, *id;
	int have;
};

/*
 * New SVIDs for up to BATCH due entries in one request
 * (POST /v1/svids/batch): a key made here for each. Returns how many
 * failed; *soonest the seconds until the first new one is due.
 */
static int issue_batch(struct ag *a, zt_api *api, const struct due *d, size_t n, int64_t now,
		       int64_t *soonest)
{
	EVP_PKEY *keys[BATCH] = {0};
	json_t *reqs = json_array();
	zt_api_resp r = {0};
	int failed = 0;
	zt_err e;

	for (size_t i = 0; i < n; i++) {
		zt_buf csr;

		zt_buf_init(&csr, 1u << 16);
		if (!(keys[i] = new_key(&csr, &e))) {
			zt_buf_free(&csr, 0);
			failed = (int)n;
			goto out;
		}
		json_array_append_new(reqs, json_pack("{s:s,s:s}", "id", d[i].id, "csr", (const char *)csr.p));
		zt_buf_free(&csr, 0);
	}
	json_t *body = json_pack("{s:O}", "requests", reqs);
	int rc = zt_api_call(api, "POST", "/v1/svids/batch", body, NULL, 60000, &r, &e);
	json_t *list = json_object_get(r.json, "svids");

	json_decref(body);
	if (rc == 0 && (r.status != 200 || json_array_size(list) != n))
		rc = zt_err_set(&e, ZT_EIO, "the server answered %d: %s", r.status, zt_api_resp_message(&r));
	if (rc != 0) {
		zt_log(ZT_LOG_WARN, "issuing SVIDs failed; those held are served until they expire, retrying",
		       "error", e.msg, NULL);
		failed = (int)n;
		goto out;
	}
	take_bundle(a, json_string_value(json_object_get(r.json, "bundle")));
	for (size_t i = 0; i < n; i++) {
		json_t *it = json_array_get(list, i);
		const char *chain = json_string_value(json_object_get(it, "chain"));
		const char *why = json_string_value(json_object_get(json_object_get(it, "error"), "message"));
		int64_t nb, na;
		zt_buf kp;
		char *key = NULL, *ch = NULL;

		zt_buf_init(&kp, 1u << 16);
		if (!chain || chain_times(chain, &nb, &na) != 0 || zt_key_to_pem(keys[i], &kp, &e) != 0 ||
		    !(key = strndup((const char *)kp.p, kp.len)) || !(ch = strdup(chain)) ||
		    install(a, d[i].name, d[i].id, ch, key, nb, na) != 0) {
			failed++;
			zt_log(ZT_LOG_WARN, d[i].have ? "renewing an SVID failed; the current one is served until it expires"
						      : "issuing an SVID failed; retrying",
			       "id", d[i].id, "error", why ? why : "the answer holds no certificate", NULL);
			if (key && !ch) {
				zt_wipe(key, strlen(key));
				free(key);
			}
		} else {
			zt_log(ZT_LOG_INFO, d[i].have ? "SVID renewed" : "SVID issued", "id", d[i].id, NULL);
			if (nb + (na - nb) / 2 - now < *soonest)
				*soonest = nb + (na - nb) / 2 - now;
		}
		zt_buf_free(&kp, 1);
	}
out:
	if (failed) {
		pthread_mutex_lock(&a->mu);
		a->renew_failures += (uint64_t)failed;
		pthread_mutex_unlock(&a->mu);
	}
	for (size_t i = 0; i < n; i++)
		EVP_PKEY_free(keys[i]);
	json_decref(reqs);
	zt_api_resp_free(&r);
	return failed;
}

/*
 * One pass: every entry of the node has an SVID past no more than half its
 * life (those due go to the server in batches); SVIDs of entries that are
 * gone, and expired ones, are dropped. Returns the milliseconds until the
 * next one is due, or -1 when something failed (the caller backs off).
 */
static int manage_pass(struct ag *a, zt_api *api)
{
	int64_t now = zt_now(), next = 60;
	int failed = 0;

	pthread_mutex_lock(&a->mu);
	json_t *entries = json_incref(a->entries);
	pthread_mutex_unlock(&a->mu);

	size_t i, ndue = 0;
	json_t *en;
	struct due *due = calloc(json_array_size(entries) + 1, sizeof *due);

	if (!due) {
		json_decref(entries);
		return 1000;
	}
	json_array_foreach(entries, i, en) {
		const char *name = json_string_value(json_object_get(en, "name"));
		const char *id = json_string_value(json_object_get(en, "id"));
		int64_t nb = 0, na = 0;
		int have = 0;

		if (!name || !id || strlen(name) != 32 || strlen(id) >= sizeof a->svids[0].id)
			continue;
		pthread_mutex_lock(&a->mu);
		for (size_t k = 0; k < a->nsvids; k++)
			if (!strcmp(a->svids[k].entry, name)) {
				have = 1;
				nb = a->svids[k].not_before;
				na = a->svids[k].not_after;
			}
		pthread_mutex_unlock(&a->mu);
		int64_t when = nb + (na - nb) / 2;

		if (have && now < when) {
			if (when - now < next)
				next = when - now;
			continue;
		}
		due[ndue++] = (struct due){name, id, have};
	}
	for (size_t off = 0; off < ndue; off += BATCH)
		failed += issue_batch(a, api, due + off, ndue - off < BATCH ? ndue - off : BATCH, now, &next);
	free(due);
	/* drop what no entry names any more, and what expired */
	pthread_mutex_lock(&a->mu);
	for (size_t k = 0; k < a->nsvids;) {
		int named = 0;

		json_array_foreach(entries, i, en) {
			const char *name = json_string_value(json_object_get(en, "name"));

			named |= name && !strcmp(name, a->svids[k].entry);
		}
		if (named && a->svids[k].not_after > now) {
			k++;
			continue;
		}
		zt_log(ZT_LOG_INFO, named ? "SVID expired and dropped" : "SVID dropped: its entry is gone",
		       "id", a->svids[k].id, NULL);
		svid_clear(&a->svids[k]);
		a->svids[k] = a->svids[--a->nsvids];
		a->gen++;
		pthread_cond_broadcast(&a->changed);
	}
	pthread_mutex_unlock(&a->mu);
	json_decref(entries);
	if (failed)
		return -1; /* the caller backs off */
	return next <= 0 ? 100 : next > 60 ? 60000 : (int)(next * 1000);
}

static void *manage_main(void *arg)
{
	struct ag *a = arg;
	zt_api *api = NULL;
	int64_t gen = 0;
	uint64_t seen = 0;
	unsigned backoff = 0;
	zt_err e;

	while (!atomic_load(&a->stopping)) {
		int wait_ms = 1000;

		pthread_mutex_lock(&a->mu);
		int64_t self_gen = a->self_not_after; /* moves with every renewal of our SVID */

		/* entries that arrive while this pass runs must wake the next: read before it */
		seen = a->entries_gen;
		pthread_mutex_unlock(&a->mu);
		if (!api || gen != self_gen) {
			zt_api_free(api);
			gen = self_gen;
			api = ag_client(a, 1, &e);
		}
		if (api) {
			int r = self_renew(a, api, &e);

			if (r < 0) {
				zt_log(ZT_LOG_WARN, "renewing the agent's SVID failed; retrying", "error", e.msg, NULL);
				backoff = backoff ? backoff * 2 : BACKOFF_MIN_MS;
				if (backoff > BACKOFF_MAX_MS)
					backoff = BACKOFF_MAX_MS;
				wait_ms = (int)backoff;
			} else {
				if (r == 1) {
					backoff = 0;
					continue; /* reconnect with the new SVID */
				}
				wait_ms = manage_pass(a, api);
				if (wait_ms < 0) {
					/* some SVID could not be issued: 200 ms doubling to 30 s */
					backoff = backoff ? backoff * 2 : BACKOFF_MIN_MS;
					if (backoff > BACKOFF_MAX_MS)
						backoff = BACKOFF_MAX_MS;
					wait_ms = (int)backoff;
				} else {
					backoff = 0;
				}
			}
		}
		/* sleep until due, woken early by new entries */
		pthread_mutex_lock(&a->mu);
		struct timespec until;

		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += wait_ms / 1000;
		until.tv_nsec += (long)(wait_ms % 1000) * 1000000L;
		if (until.tv_nsec >= 1000000000L) {
			until.tv_sec++;
			until.tv_nsec -= 1000000000L;
		}
		while (a->entries_gen == seen && !atomic_load(&a->stopping) &&
		       pthread_cond_timedwait(&a->changed, &a->mu, &until) == 0)
			;
		pthread_mutex_unlock(&a->mu);
	}
	zt_api_free(api);
	zt_crypto_thread_cleanup();
	return NULL;
}

/* ---- the daemon ---- */

int zt_agent_run(const char *config_path, zt_err *e)
{
	struct ag *a = calloc(1, sizeof *a);
	pthread_t sync_t, manage_t;
	int sync_started = 0, manage_started = 0, r;
	sigset_t sigs;

	if (!a)
		return zt_err_set(e, ZT_ENOMEM, "out of memory");
	pthread_mutex_init(&a->mu, NULL);
	pthread_mutex_init(&a->jwt.mu, NULL);
	pthread_cond_init(&a->changed, NULL);
	a->stop_fd = -1;
	if ((r = ag_config_load(&a->cfg, config_path, e)) != 0 ||
	    (r = zt_mkdir(a->cfg.data_dir, 0700, e)) != 0)
		goto out;
	if ((a->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) < 0) {
		r = zt_err_set(e, ZT_EIO, "eventfd: %s", strerror(errno));
		goto out;
	}
	/* the node's identity: the one in dataDir, else a join */
	if (self_load(a, e) != 0) {
		zt_log(ZT_LOG_INFO, "no usable agent SVID in dataDir; joining", "reason", e->msg, NULL);
		if ((r = join(a, e)) != 0 || (r = self_load(a, e)) != 0)
			goto out;
	}
	char bpath[PATH_MAX];
	zt_buf b;

	zt_buf_init(&b, 1u << 20);
	if (path_in(bpath, sizeof bpath, a->cfg.data_dir, "bundle.pem") == 0 &&
	    zt_file_read(zt_path_exists(bpath) ? bpath : a->cfg.trust_bundle, 1u << 20, &b, NULL) == 0 &&
	    zt_buf_terminate(&b, NULL) == 0)
		a->bundle_pem = strndup((const char *)b.p, b.len);
	zt_buf_free(&b, 0);
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);
	char listen[128];

	snprintf(listen, sizeof listen, "unix:%s", a->cfg.socket);
	zt_httpd_opts wo = {.listen = listen, .handler = ag_workload_handle, .arg = a,
			    .max_body = 4096, .max_conns = 1024};

	if (!(a->wapi = zt_httpd_start(&wo, e))) {
		r = -ZT_EIO;
		goto out;
	}
	if (a->cfg.admin[0]) {
		zt_httpd_opts ao = {.listen = a->cfg.admin, .handler = ag_admin_handle, .arg = a,
				    .max_body = 4096};

		if (!(a->admin = zt_httpd_start(&ao, e))) {
			r = -ZT_EIO;
			goto out;
		}
	}
	if (pthread_create(&sync_t, NULL, sync_main, a) != 0 ||
	    !(sync_started = 1) || pthread_create(&manage_t, NULL, manage_main, a) != 0) {
		r = zt_err_set(e, ZT_EIO, "cannot start the agent's threads");
		goto out;
	}
	manage_started = 1;
	zt_log(ZT_LOG_INFO, "zt agent running", "id", a->self_id, "socket", a->cfg.socket, NULL);
	int sig = 0;

	sigwait(&sigs, &sig);
	zt_log(ZT_LOG_INFO, "agent stopping", NULL);
	r = 0;
out:
	atomic_store(&a->stopping, 1);
	if (a->stop_fd >= 0) {
		uint64_t one = 1;

		if (write(a->stop_fd, &one, sizeof one) < 0)
			zt_log(ZT_LOG_ERROR, "cannot wake the agent's threads", NULL);
	}
	pthread_mutex_lock(&a->mu);
	pthread_cond_broadcast(&a->changed);
	pthread_mutex_unlock(&a->mu);
	if (a->wapi)
		zt_httpd_stop(a->wapi, 2000);
	if (a->admin)
		zt_httpd_stop(a->admin, 1000);
	if (sync_started)
		pthread_join(sync_t, NULL);
	if (manage_started)
		pthread_join(manage_t, NULL);
	if (a->cfg.socket[0] && a->wapi)
		unlink(a->cfg.socket);
	for (size_t i = 0; i < a->nsvids; i++)
		svid_clear(&a->svids[i]);
	free(a->svids);
	free(a->bundle_pem);
	ag_jwt_free(a);
	json_decref(a->entries);
	if (a->stop_fd >= 0)
		close(a->stop_fd);
	zt_wipe(a->cfg.join_token, sizeof a->cfg.join_token);
	pthread_mutex_destroy(&a->mu);
	pthread_mutex_destroy(&a->jwt.mu);
	pthread_cond_destroy(&a->changed);
	free(a);
	return r;
}
