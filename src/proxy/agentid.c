/*
 * proxy/agentid.c: the proxy's SVID from the node agent
 * (spec.identity.agent, docs/workload-api.md).
 *
 * The SVID, its key and the bundle are written into a private folder (0700,
 * removed at exit) as the files the identity snapshot is loaded from, so a
 * rotation takes the same path as a changed certificate file: the file
 * watch loads it within a second, new connections use it, open ones keep
 * theirs and nothing is dropped. A thread long-polls the agent for
 * rotations; while the agent is unreachable the proxy keeps what it has
 * and asks again with backoff.
 */
#include <dirent.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "client/client.h"
#include "proxy_int.h"

#define FIRST_WAIT_MS 30000
#define BACKOFF_MAX_MS 30000

/* One fetch; writes the files when the SVID differs from the one on disk. 1 written, 0 same, < 0 error. */
static int fetch_once(zt_proxy *px, uint64_t since, int timeout_s, zt_err *e)
{
	zt_wl_answer a;
	const zt_wl_svid *pick = NULL;
	int r;

	if ((r = zt_workload_fetch(px->cfg.agent_socket, since, timeout_s, px->agent_cancel, &a, e)) != 0)
		return r;
	if (a.status != 200) {
		r = zt_err_rule(e, ZT_EIO, a.status == 403 ? "no-entry" : "agent", "the agent answered %d: %s",
				a.status, a.message);
		zt_wl_answer_free(&a);
		return r;
	}
	for (size_t i = 0; !pick && i < a.n; i++)
		if (!px->cfg.agent_id[0] || !strcmp(a.svids[i].id, px->cfg.agent_id))
			pick = &a.svids[i];
	if (!pick) {
		r = zt_err_set(e, ZT_ENOENT, "the agent holds no SVID%s%s for this proxy", px->cfg.agent_id[0] ? " " : "",
			       px->cfg.agent_id);
		zt_wl_answer_free(&a);
		return r;
	}
	/* the same chain as on disk: nothing to do */
	zt_buf have;
	int same = 0;

	zt_buf_init(&have, 1u << 20);
	if (zt_file_read(px->cfg.cert, 1u << 20, &have, NULL) == 0)
		same = have.len == strlen(pick->chain) && !memcmp(have.p, pick->chain, have.len);
	zt_buf_free(&have, 0);
	px->agent_gen = a.generation;
	r = same ? 0 : zt_workload_write(px->agent_dir, pick, a.bundle, e) == 0 ? 1 : -ZT_EIO;
	if (r == 1)
		zt_log(ZT_LOG_INFO, "SVID from the agent", "id", pick->id, "not_after", pick->not_after, NULL);
	zt_wl_answer_free(&a);
	return r;
}

int px_agentid_init(zt_proxy *px, zt_err *e)
{
	char tmpl[] = "/tmp/zt-proxy-svid-XXXXXX";
	int64_t deadline = zt_now_ms() + FIRST_WAIT_MS;
	int logged = 0, r;

	if (!px->cfg.agent_socket[0])
		return 0;
	if (!mkdtemp(tmpl))
		return zt_err_set(e, ZT_EIO, "cannot make a folder for the SVID: %s", strerror(errno));
	snprintf(px->agent_dir, sizeof px->agent_dir, "%s", tmpl);
	if ((px->agent_cancel = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) < 0)
		return zt_err_set(e, ZT_EIO, "eventfd: %s", strerror(errno));
	if (zt_path_join(px->cfg.cert, sizeof px->cfg.cert, e, "%s/svid.pem", tmpl) != 0 ||
	    zt_path_join(px->cfg.key, sizeof px->cfg.key, e, "%s/svid.key", tmpl) != 0 ||
	    zt_path_join(px->cfg.bundle, sizeof px->cfg.bundle, e, "%s/bundle.pem", tmpl) != 0)
		return -ZT_EINVAL;
	/* the agent may need a moment: a new entry, a server just reached */
	for (unsigned wait = 200;; wait = wait * 2 > 2000 ? 2000 : wait * 2) {
		if ((r = fetch_once(px, 0, 0, e)) >= 0)
			return 0;
		if (!strcmp(e->rule, "no-entry") || zt_now_ms() >= deadline)
			return zt_err_wrap(e, "no SVID from the agent at %s", px->cfg.agent_socket);
		if (!logged++)
			zt_log(ZT_LOG_INFO, "waiting for the agent's SVID", "socket", px->cfg.agent_socket,
			       "reason", e->msg, NULL);
		usleep(wait * 1000u);
	}
}

static void *agent_main(void *arg)
{
	zt_proxy *px = arg;
	unsigned backoff = 0;
	int failing = 0;
	zt_err e;

	while (!atomic_load(&px->stopping)) {
		int r = fetch_once(px, failing ? 0 : px->agent_gen, 300, &e);

		if (r >= 0) {
			if (failing)
				zt_log(ZT_LOG_INFO, "the agent answers again", NULL);
			failing = 0;
			backoff = 0;
			continue;
		}
		if (!strcmp(e.rule, "cancelled"))
			break;
		if (!failing)
			zt_log(ZT_LOG_WARN, "cannot get the SVID from the agent; keeping the one in force",
			       "error", e.msg, NULL);
		failing = 1;
		backoff = backoff ? (backoff * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : backoff * 2) : 200;
		struct pollfd p = {.fd = px->agent_cancel, .events = POLLIN};

		if (poll(&p, 1, (int)backoff) > 0)
			break;
	}
	zt_crypto_thread_cleanup();
	return NULL;
}

int px_agentid_start(zt_proxy *px, zt_err *e)
{
	if (!px->cfg.agent_socket[0])
		return 0;
	if (pthread_create(&px->agent_tid, NULL, agent_main, px) != 0)
		return zt_err_set(e, ZT_EIO, "cannot start the agent watch thread");
	px->agent_started = 1;
	return 0;
}

void px_agentid_stop(zt_proxy *px)
{
	if (px->agent_started) {
		uint64_t one = 1;

		if (write(px->agent_cancel, &one, sizeof one) < 0)
			zt_log(ZT_LOG_ERROR, "cannot stop the agent watch", NULL);
		pthread_join(px->agent_tid, NULL);
		px->agent_started = 0;
	}
	if (px->agent_cancel > 0)
		close(px->agent_cancel);
	px->agent_cancel = -1;
	if (px->agent_dir[0]) {
		/* the key goes with the folder */
		static const char *const files[] = {"svid.key", "svid.pem", "bundle.pem", "svid.key.new",
						    "svid.pem.new", "bundle.pem.new"};
		char p[PATH_MAX + 32];

		for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
			snprintf(p, sizeof p, "%s/%s", px->agent_dir, files[i]);
			unlink(p);
		}
		rmdir(px->agent_dir);
		px->agent_dir[0] = '\0';
	}
}
