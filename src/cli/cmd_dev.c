/*
 * cli/cmd_dev.c: zt dev — the whole mesh on one machine, in the foreground.
 *
 * A dev server, an agent that joins it, and two services (web and api),
 * each behind a zt proxy that takes its SVID from the agent and its
 * policy from the server; one policy lets web call api's /api/ paths, and
 * nothing lets api call web (deny by default). It prints what runs and
 * what to try, and stops everything on Ctrl-C.
 *
 * The two proxies run the same zt binary under the same user, so the agent
 * could not tell them apart: each runs from its own copy
 * (bin/web-proxy, bin/api-proxy), and their entries select on that path
 * and the user. That is workload attestation doing its job, not a trick.
 *
 * zt dev-service --listen ADDR --name NAME is the demo service: it answers
 * every request with JSON naming itself, the path and the caller the proxy
 * vouched for (X-Forwarded-Client-Cert).
 */
#include "cli.h"
#include "net/httpc.h"
#include "net/httpd.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define USAGE "zt dev [--keep]   (a server, an agent and two services behind proxies; Ctrl-C stops)"

struct child {
	const char *name;
	pid_t pid;
};

static struct child kids[8];
static size_t nkids;

static pid_t spawn(const char *name, const char *dir, const char *const argv[])
{
	char log[PATH_MAX];
	pid_t pid;

	snprintf(log, sizeof log, "%s/logs/%s.log", dir, name);
	pid = fork();
	if (pid == 0) {
		int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
		sigset_t none;

		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		char *v[16];
		size_t i;

		/* execv wants writable strings: copies, in the child */
		for (i = 0; argv[i] && i < 15; i++)
			v[i] = strdup(argv[i]);
		v[i] = NULL;
		execv(v[0], v);
		_exit(127);
	}
	if (pid > 0 && nkids < sizeof kids / sizeof kids[0])
		kids[nkids++] = (struct child){name, pid};
	return pid;
}

static void stop_all(void)
{
	for (size_t i = nkids; i-- > 0;)
		if (kids[i].pid > 0)
			kill(kids[i].pid, SIGTERM);
	for (int t = 0; t < 100; t++) {
		int alive = 0;

		for (size_t i = 0; i < nkids; i++)
			if (kids[i].pid > 0) {
				if (waitpid(kids[i].pid, NULL, WNOHANG) == kids[i].pid)
					kids[i].pid = 0;
				else
					alive = 1;
			}
		if (!alive)
			return;
		usleep(100000);
	}
	for (size_t i = 0; i < nkids; i++)
		if (kids[i].pid > 0) {
			kill(kids[i].pid, SIGKILL);
			waitpid(kids[i].pid, NULL, 0);
		}
}

/* A free TCP port on 127.0.0.1 (another process could take it before we do: dev only). */
static int free_port(void)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t l = sizeof a;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), port = 0;

	if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
	    getsockname(fd, (struct sockaddr *)&a, &l) == 0)
		port = ntohs(a.sin_port);
	if (fd >= 0)
		close(fd);
	return port;
}

static int copy_file(const char *from, const char *to, zt_err *e)
{
	zt_buf b;
	int r;

	zt_buf_init(&b, 256u << 20);
	r = zt_file_read(from, 256u << 20, &b, e);
	if (r == 0)
		r = zt_file_write(to, b.p, b.len, 0755, 0, e);
	zt_buf_free(&b, 0);
	return r;
}

static int wait_for(const char *path, int secs)
{
	for (int i = 0; i < secs * 20; i++) {
		struct stat st;

		/* a file with something in it, or a socket */
		if (stat(path, &st) == 0 && (st.st_size > 0 || S_ISSOCK(st.st_mode)))
			return 0;
		usleep(50000);
	}
	return -1;
}

/* One call to the server; the answer's JSON in *out when wanted. */
static int call(zt_api *a, const char *method, const char *path, json_t *body, json_t **out,
		const char *what)
{
	json_t *ans = NULL;
	int r = zt_remote_call(a, what, method, path, body, NULL, &ans);

	json_decref(body);
	if (out)
		*out = ans;
	else
		json_decref(ans);
	return r;
}

/* A GET through a local proxy listener: the status, or -1. */
static int http_get(int port, const char *path)
{
	char url[64];
	zt_httpc_resp r;
	int st = -1;

	snprintf(url, sizeof url, "http://127.0.0.1:%d", port);
	zt_httpc_opts o = {.url = url};
	zt_httpc *c = zt_httpc_new(&o, NULL);

	if (c && zt_httpc_do(c, "GET", path, NULL, NULL, 0, 5000, &r, NULL) == 0) {
		st = r.status;
		zt_httpc_resp_free(&r);
	}
	zt_httpc_free(c);
	return st;
}

static int write_proxy(const char *dir, const char *name, const char *peer, int in, int out,
		       int peer_in, int svc, int admin, const char *url, zt_err *e)
{
	char p[PATH_MAX];
	zt_buf b;
	int r;

	zt_buf_init(&b, 1u << 16);
	r = zt_buf_appendf(&b, e,
			   "apiVersion: zt.dev/v1\nkind: ProxyConfig\nspec:\n"
			   "  trustDomain: zt.local\n"
			   "  identity: {agent: %s/agent.sock}\n"
			   "  policy: {server: \"%s\", cache: %s/%s-policy.json}\n"
			   "  admin: {listen: \"127.0.0.1:%d\"}\n"
			   "  listeners:\n"
			   "    - {name: in, mode: inbound, protocol: http, listen: \"127.0.0.1:%d\", forward: \"127.0.0.1:%d\"}\n"
			   "    - {name: to-%s, mode: outbound, protocol: http, listen: \"127.0.0.1:%d\", upstream: \"127.0.0.1:%d\",\n"
			   "       expect: [spiffe://zt.local/ns/dev/sa/%s]}\n",
			   dir, url, dir, name, admin, in, svc, peer, out, peer_in, peer);
	if (r == 0 && (r = zt_path_join(p, sizeof p, e, "%s/%s-proxy.yaml", dir, name)) == 0)
		r = zt_file_write(p, b.p, b.len, 0600, 0, e);
	zt_buf_free(&b, 0);
	return r;
}

int zt_cmd_dev(int argc, char **argv)
{
	const char *keep = NULL;
	const struct zt_opt opts[] = {
		{"keep", 0, 0, &keep, NULL, NULL},
		{NULL, 0, 0, NULL, NULL, NULL},
	};
	char dir[] = "/tmp/zt-dev-XXXXXX", self[PATH_MAX], p[PATH_MAX + 64], p2[PATH_MAX + 64];
	char url[128] = "", token[128] = "", jt[128] = "";
	json_t *ans = NULL;
	zt_api *api = NULL;
	size_t npos;
	zt_err e;
	int r, status = ZT_EXIT_FAIL;
	sigset_t sigs;

	if (argc > 0 && !strcmp(argv[0], "--help")) {
		printf("usage: %s\n", USAGE);
		return ZT_EXIT_OK;
	}
	if ((r = zt_cli_parse(argc, argv, opts, NULL, 0, &npos, USAGE)) != 0)
		return r;
	ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);

	if (n <= 0 || !mkdtemp(dir)) {
		fprintf(stderr, "zt: dev: cannot find this binary or make a folder: %s\n", strerror(errno));
		return ZT_EXIT_FAIL;
	}
	self[n] = '\0';
	/* signals come to us, by sigwait; children get them unblocked */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGCHLD);
	sigprocmask(SIG_BLOCK, &sigs, NULL);
	int port_web = free_port(), port_api = free_port(), web_in = free_port(), web_out = free_port(),
	    api_in = free_port(), api_out = free_port(), web_admin = free_port(), api_admin = free_port();

	snprintf(p, sizeof p, "%s/logs", dir);
	if (zt_mkdir(p, 0700, &e) != 0 || (snprintf(p, sizeof p, "%s/bin", dir), zt_mkdir(p, 0700, &e)) != 0)
		goto fail;
	/* the server */
	char sdir[PATH_MAX + 16], ready[PATH_MAX + 16];

	snprintf(sdir, sizeof sdir, "%s/server", dir);
	snprintf(ready, sizeof ready, "%s/server.ready", dir);
	const char *sargv[] = {self, "server", "--dir", sdir, "--dev", "--listen", "127.0.0.1:0", "--ready-file", ready, NULL};

	if (spawn("server", dir, sargv) < 0 || wait_for(ready, 15) != 0) {
		zt_err_set(&e, ZT_EIO, "the server did not start (see %s/logs/server.log)", dir);
		goto fail;
	}
	zt_buf rb;

	zt_buf_init(&rb, 4096);
	if (zt_file_read(ready, 4096, &rb, &e) != 0 || zt_buf_terminate(&rb, &e) != 0 ||
	    sscanf((const char *)rb.p, "%127s %127s", url, token) != 2) {
		zt_buf_free(&rb, 1);
		zt_err_set(&e, ZT_EIO, "the server's ready file is not what it should be");
		goto fail;
	}
	zt_buf_free(&rb, 1);
	snprintf(p, sizeof p, "%s/bundle.pem", sdir);
	struct zt_remote rm = {.server = url, .token = token, .ca_file = p};

	if (!(api = zt_remote_open(&rm, "dev")))
		goto fail_quiet;
	/* the demo: a second service, the policy, the node's join token, the entries */
	if (call(api, "POST", "/v1/orgs/demo/tenants/default/workspaces/dev/services",
		 json_pack("{s:s}", "name", "api"), NULL, "dev: service api") != 0 ||
	    call(api, "POST", "/v1/policies",
		 json_pack("{s:s,s:s,s:{s:s,s:s},s:{s:s,s:{s:[s]},s:[{s:[{s:{s:[s]}}],s:[{s:{s:[s],s:[s]}}]}]}}",
			   "apiVersion", "zt.dev/v1", "kind", "AuthorizationPolicy", "metadata", "name",
			   "web-calls-api", "scope", "demo/default/dev", "spec", "action", "ALLOW",
			   "selector", "services", "api", "rules", "from", "source", "principals",
			   "zt.local/ns/dev/sa/web", "to", "operation", "methods", "GET", "paths", "/api/*"),
		 NULL, "dev: policy") != 0 ||
	    call(api, "POST", "/v1/jointokens", json_pack("{s:s}", "node", "dev-node"), &ans,
		 "dev: join token") != 0)
		goto fail_quiet;
	snprintf(jt, sizeof jt, "%s", json_string_value(json_object_get(ans, "token")) ?: "");
	json_decref(ans);
	ans = NULL;
	const char *names[] = {"web", "api"};

	for (int i = 0; i < 2; i++) {
		char sel_uid[32], sel_path[PATH_MAX + 96], id[128];

		snprintf(p, sizeof p, "%s/bin/%s-proxy", dir, names[i]);
		if (copy_file(self, p, &e) != 0)
			goto fail;
		snprintf(sel_uid, sizeof sel_uid, "unix:uid:%u", (unsigned)getuid());
		snprintf(sel_path, sizeof sel_path, "unix:path:%s", p);
		snprintf(id, sizeof id, "spiffe://zt.local/ns/dev/sa/%s", names[i]);
		if (call(api, "POST", "/v1/entries",
			 json_pack("{s:s,s:s,s:[s,s]}", "id", id, "node", "dev-node", "selectors", sel_uid,
				   sel_path), NULL, "dev: entry") != 0)
			goto fail_quiet;
	}
	/* the agent */
	zt_buf cfg;

	zt_buf_init(&cfg, 1u << 16);
	snprintf(p, sizeof p, "%s/agent.yaml", dir);
	if (zt_buf_appendf(&cfg, &e,
			   "apiVersion: zt.dev/v1\nkind: AgentConfig\nspec:\n  server: \"%s\"\n"
			   "  trustBundle: %s/bundle.pem\n  joinToken: %s\n  dataDir: %s/agent\n"
			   "  socket: %s/agent.sock\n", url, sdir, jt, dir, dir) != 0 ||
	    zt_file_write(p, cfg.p, cfg.len, 0600, 0, &e) != 0) {
		zt_buf_free(&cfg, 1);
		goto fail;
	}
	zt_buf_free(&cfg, 1);
	zt_wipe(jt, sizeof jt);
	const char *aargv[] = {self, "agent", "-c", p, NULL};

	snprintf(p2, sizeof p2, "%s/agent.sock", dir);
	if (spawn("agent", dir, aargv) < 0 || wait_for(p2, 15) != 0) {
		zt_err_set(&e, ZT_EIO, "the agent did not start (see %s/logs/agent.log)", dir);
		goto fail;
	}
	/* the services and their proxies */
	char lw[32], la[32];

	snprintf(lw, sizeof lw, "127.0.0.1:%d", port_web);
	snprintf(la, sizeof la, "127.0.0.1:%d", port_api);
	const char *wargv[] = {self, "dev-service", "--listen", lw, "--name", "web", NULL};
	const char *xargv[] = {self, "dev-service", "--listen", la, "--name", "api", NULL};

	if (spawn("web", dir, wargv) < 0 || spawn("api", dir, xargv) < 0 ||
	    write_proxy(dir, "web", "api", web_in, web_out, api_in, port_web, web_admin, url, &e) != 0 ||
	    write_proxy(dir, "api", "web", api_in, api_out, web_in, port_api, api_admin, url, &e) != 0)
		goto fail;
	for (int i = 0; i < 2; i++) {
		char bin[PATH_MAX + 16], conf[PATH_MAX + 16];

		snprintf(bin, sizeof bin, "%s/bin/%s-proxy", dir, names[i]);
		snprintf(conf, sizeof conf, "%s/%s-proxy.yaml", dir, names[i]);
		const char *pargv[] = {bin, "proxy", "-c", conf, NULL};

		if (spawn(i ? "api-proxy" : "web-proxy", dir, pargv) < 0)
			goto fail;
	}
	/* up when the allowed call passes (the proxies have their SVIDs and the policy) */
	int allowed = -1, denied = -1;

	for (int t = 0; t < 300 && allowed != 200; t++) {
		usleep(100000);
		allowed = http_get(web_out, "/api/hello");
	}
	denied = http_get(api_out, "/");
	printf("zt dev: the mesh is up (state in %s)\n\n"
	       "  server     %s   (admin token in %s/server.ready)\n"
	       "  agent      %s/agent.sock   (node dev-node)\n"
	       "  web        127.0.0.1:%d behind web-proxy: in 127.0.0.1:%d, out to api 127.0.0.1:%d\n"
	       "  api        127.0.0.1:%d behind api-proxy: in 127.0.0.1:%d, out to web 127.0.0.1:%d\n"
	       "  policy     demo/default/dev/web-calls-api: web may GET api's /api/*; nothing else\n\n"
	       "checked just now: web -> api /api/hello: %d, api -> web /: %d\n\n"
	       "try:\n"
	       "  curl -s http://127.0.0.1:%d/api/hello      # web calls api: allowed (200)\n"
	       "  curl -s http://127.0.0.1:%d/              # api calls web: denied (403)\n"
	       "  curl -s http://127.0.0.1:%d/admin         # web calls api outside /api/: denied (403)\n"
	       "  export ZT_SERVER=%s ZT_CA_FILE=%s/bundle.pem ZT_TOKEN=$(sed -n 2p %s/server.ready)\n"
	       "  zt policy get demo/default/dev/web-calls-api\n"
	       "  zt policy delete demo/default/dev/web-calls-api   # and web -> api is denied within a second\n"
	       "  zt audit verify --dir %s/audit                    # every change so far, checked\n"
	       "  logs: %s/logs/\n\nCtrl-C stops everything (and removes the folder, unless --keep).\n",
	       dir, url, dir, dir, port_web, web_in, web_out, port_api, api_in, api_out, allowed, denied,
	       web_out, api_out, web_out, url, sdir, dir, sdir, dir);
	fflush(stdout);
	zt_api_free(api);
	api = NULL;
	zt_wipe(token, sizeof token);
	/* until Ctrl-C, or a part dies */
	for (;;) {
		int sig = 0;

		sigwait(&sigs, &sig);
		if (sig != SIGCHLD)
			break;
		int died = 0;

		for (size_t i = 0; i < nkids; i++)
			if (kids[i].pid > 0 && waitpid(kids[i].pid, NULL, WNOHANG) == kids[i].pid) {
				fprintf(stderr, "zt: dev: %s stopped (see %s/logs/%s.log); stopping the rest\n",
					kids[i].name, dir, kids[i].name);
				kids[i].pid = 0;
				died = 1;
			}
		if (died)
			break;
	}
	status = ZT_EXIT_OK;
	goto out;
fail:
	zt_cli_fail(&e, "dev", ZT_EXIT_FAIL);
fail_quiet:
	fprintf(stderr, "zt: dev: logs in %s/logs\n", dir);
	keep = "1";
out:
	zt_api_free(api);
	zt_wipe(token, sizeof token);
	printf("zt dev: stopping\n");
	stop_all();
	if (!keep) {
		char cmd[PATH_MAX + 16];

		/* everything under our own mkdtemp folder, and nothing else */
		snprintf(cmd, sizeof cmd, "rm -rf -- '%s'", dir);
		if (strncmp(dir, "/tmp/zt-dev-", 12) == 0 && system(cmd) != 0)
			fprintf(stderr, "zt: dev: could not remove %s\n", dir);
	} else {
		printf("zt dev: state kept in %s\n", dir);
	}
	return status;
}

/* ---- the demo service ---- */

static void dev_service_handle(void *arg, const zt_http_req *q, zt_http_resp *r)
{
	const zt_http1_field *f =
	    zt_http1_field_get(q->head->fields, q->head->nfields, "x-forwarded-client-cert", NULL);
	char xfcc[1024] = "";

	if (f && f->value_len < sizeof xfcc) {
		memcpy(xfcc, f->value, f->value_len);
		xfcc[f->value_len] = '\0';
	}
	zt_http_resp_json(r, 200, json_pack("{s:s,s:s,s:s,s:s}", "service", (const char *)arg, "method",
					    q->method, "path", q->path, "caller", xfcc));
}

int zt_cmd_dev_service(int argc, char **argv)
{
	const char *listen = NULL, *name = NULL;
	const struct zt_opt opts[] = {
		{"listen", 1, 0, &listen, NULL, NULL},
		{"name", 1, 0, &name, NULL, NULL},
		{NULL, 0, 0, NULL, NULL, NULL},
	};
	static const char usage[] = "zt dev-service --listen ADDR --name NAME   (zt dev's demo service)";
	size_t npos;
	sigset_t sigs;
	zt_err e;
	int r, sig;

	if ((r = zt_cli_parse(argc, argv, opts, NULL, 0, &npos, usage)) != 0)
		return r;
	if (!listen || !name)
		return zt_cli_usage(usage, "--listen and --name are required");
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	zt_httpd_opts o = {.listen = listen, .handler = dev_service_handle, .arg = (void *)(uintptr_t)name};
	zt_httpd *h = zt_httpd_start(&o, &e);

	if (!h)
		return zt_cli_fail(&e, "dev-service", ZT_EXIT_FAIL);
	sigwait(&sigs, &sig);
	zt_httpd_stop(h, 1000);
	return ZT_EXIT_OK;
}
