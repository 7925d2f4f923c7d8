/* cli/cmd_svid.c: zt svid verify */
#include "cli.h"
#include "identity/identity.h"
#include "client/client.h"

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <unistd.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define USAGE_VERIFY "zt svid verify --bundle FILE [--bundle FILE]... [--id SPIFFE_ID | --trust-domain TD] [--at TIME] CERT"

static int svid_verify(int argc, char **argv)
{
	const char *ids = NULL, *td = NULL, *at = NULL;
	const char **bundles = NULL;
	size_t nbundles = 0, npos;
	char *pos[1];
	const struct zt_opt opts[] = {
		{ "bundle", 1, 1, NULL, &bundles, &nbundles },
		{ "id", 1, 0, &ids, NULL, NULL },
		{ "trust-domain", 1, 0, &td, NULL, NULL },
		{ "at", 1, 0, &at, NULL, NULL },
		{ NULL, 0, 0, NULL, NULL, NULL },
	};
	STACK_OF(X509) *chain = NULL;
	zt_bundle_set *set = NULL;
	zt_svid_opts vo = { 0 };
	zt_svid_info info;
	zt_spiffe_id want;
	char tdbuf[ZT_TD_MAX + 1], t1[32], t2[32], left[32];
	zt_err e;
	int r;

	if ((r = zt_cli_parse(argc, argv, opts, pos, 1, &npos, USAGE_VERIFY)) != 0)
		goto done;
	r = ZT_EXIT_USAGE;
	if (nbundles == 0 || npos != 1) {
		zt_cli_usage(USAGE_VERIFY, "give at least one --bundle and exactly one certificate file");
		goto done;
	}
	if (ids && td) {
		zt_cli_usage(USAGE_VERIFY, "give --id or --trust-domain, not both");
		goto done;
	}
	if (at && zt_cli_parse_time(at, &vo.now) != 0) {
		zt_cli_usage(USAGE_VERIFY, "--at: \"%.100s\" is not a time; write 2026-01-02T03:04:05Z or seconds since 1970", at);
		goto done;
	}
	if (ids) {
		size_t n;
		const char *t;

		if (zt_id_parse(ids, strlen(ids), &want, &e) != 0) {
			zt_cli_fail(&e, "--id", r);
			goto done;
		}
		vo.expect_id = &want;
		t = zt_id_td(&want, &n);
		memcpy(tdbuf, t, n);
		tdbuf[n] = '\0';
	} else if (td) {
		if (zt_td_check(td, strlen(td), &e) != 0) {
			zt_cli_fail(&e, "--trust-domain", r);
			goto done;
		}
		snprintf(tdbuf, sizeof tdbuf, "%s", td);
		vo.trust_domain = tdbuf;
	}
	r = ZT_EXIT_FAIL;
	if (!(set = zt_bundle_set_new())) {
		fprintf(stderr, "zt: out of memory\n");
		goto done;
	}
	for (size_t i = 0; i < nbundles; i++) {
		zt_bundle *b = zt_bundle_load((ids || td) ? tdbuf : NULL, bundles[i], &e);

		if (!b || zt_bundle_set_put(set, b, &e) != 0) {
			zt_cli_fail(&e, "svid verify", r);
			goto done;
		}
	}
	if (zt_certs_load(pos[0], &chain, &e) != 0) {
		zt_cli_fail(&e, "svid rejected", r);
		goto done;
	}
	if (zt_svid_verify(set, chain, &vo, &info, &e) != 0) {
		zt_cli_fail(&e, "svid rejected", r);
		goto done;
	}
	zt_time_format(info.not_before, t1, sizeof t1);
	zt_time_format(info.not_after, t2, sizeof t2);
	zt_duration_format(info.not_after - (vo.now ? vo.now : zt_now()), left, sizeof left);
	printf("ok: %s\n", info.id.str);
	printf("  valid %s to %s (%s left)\n", t1, t2, left);
	{
		size_t tdl;
		const char *tdp = zt_id_td(&info.id, &tdl);

		printf("  chain of %d certificates to an authority of the %.*s trust bundle\n",
		       info.chain_len, (int)tdl, tdp);
	}
	r = ZT_EXIT_OK;
done:
	sk_X509_pop_free(chain, X509_free);
	zt_bundle_set_free(set);
	free(bundles);
	return r;
}

#define USAGE_REQUEST                                                                         \
	"zt svid request [--id SPIFFE_ID] [--ttl 1h] --key-out KEY --out CHAIN [--bundle-out FILE]\n" \
	"       (a new key here, its certificate from the server; an SVID renews its own ID with\n" \
	"        --cert and --key; connection: " ZT_REMOTE_USAGE ")"

/* A key made here (it never leaves), its SVID from the server: POST /v1/svids. */
static int svid_request(int argc, char **argv)
{
	struct zt_remote rm = {0};
	const char *id = NULL, *ttl = NULL, *keyout = NULL, *out = NULL, *bout = NULL;
	const struct zt_opt opts[] = {
		ZT_REMOTE_OPTS(rm),
		{"id", 1, 0, &id, NULL, NULL},
		{"ttl", 1, 0, &ttl, NULL, NULL},
		{"key-out", 1, 0, &keyout, NULL, NULL},
		{"out", 1, 0, &out, NULL, NULL},
		{"bundle-out", 1, 0, &bout, NULL, NULL},
		{NULL, 0, 0, NULL, NULL, NULL},
	};
	char *pos[1];
	size_t npos;
	EVP_PKEY *k = NULL;
	zt_buf csr;
	json_t *ans = NULL;
	zt_api *a = NULL;
	zt_err e;
	int r;

	if ((r = zt_cli_parse(argc, argv, opts, pos, 0, &npos, USAGE_REQUEST)) != 0)
		return r;
	if (!keyout || !out)
		return zt_cli_usage(USAGE_REQUEST, "--key-out and --out are required");
	zt_buf_init(&csr, 1u << 16);
	r = ZT_EXIT_FAIL;
	if (!(k = zt_key_generate(&e)) || zt_csr_make(k, &csr, &e) != 0 ||
	    zt_buf_terminate(&csr, &e) != 0) {
		zt_cli_fail(&e, "svid request", ZT_EXIT_FAIL);
		goto done;
	}
	if (!(a = zt_remote_open(&rm, "svid request")))
		goto done;
	json_t *body = json_pack("{s:s}", "csr", (const char *)csr.p);

	if (id)
		json_object_set_new(body, "id", json_string(id));
	if (ttl)
		json_object_set_new(body, "ttl", json_string(ttl));
	r = zt_remote_call(a, "svid request", "POST", "/v1/svids", body, NULL, &ans);
	json_decref(body);
	if (r != ZT_EXIT_OK)
		goto done;
	const char *chain = json_string_value(json_object_get(ans, "chain"));
	const char *bundle = json_string_value(json_object_get(ans, "bundle"));

	r = ZT_EXIT_FAIL;
	if (!chain) {
		fprintf(stderr, "zt: svid request: the server's answer has no chain\n");
		goto done;
	}
	/* the key first: a chain without its key is no use, a key alone is harmless */
	if (zt_key_save(keyout, k, &e) != 0 ||
	    zt_file_write(out, chain, strlen(chain), 0644, 0, &e) != 0 ||
	    (bout && bundle && zt_file_write(bout, bundle, strlen(bundle), 0644, 0, &e) != 0)) {
		zt_cli_fail(&e, "svid request", ZT_EXIT_FAIL);
		goto done;
	}
	printf("issued %s, valid until %s\n  chain: %s\n  key:   %s\n",
	       json_string_value(json_object_get(ans, "id")),
	       json_string_value(json_object_get(ans, "not_after")), out, keyout);
	r = ZT_EXIT_OK;
done:
	json_decref(ans);
	zt_api_free(a);
	EVP_PKEY_free(k);
	zt_buf_free(&csr, 0);
	return r;
}

#define USAGE_FETCH                                                                               \
	"zt svid fetch --socket PATH --out DIR [--id SPIFFE_ID] [--watch] [--exec CMD]\n"             \
	"       (from the agent's Workload API: DIR/svid.pem (chain), DIR/svid.key, DIR/bundle.pem,\n"  \
	"        mode 0600; --watch rewrites them on every rotation and then runs CMD with sh -c)"

static int svid_fetch(int argc, char **argv)
{
	const char *sock = NULL, *out = NULL, *want = NULL, *watch = NULL, *cmd = NULL;
	const struct zt_opt opts[] = {
		{"socket", 1, 0, &sock, NULL, NULL},
		{"out", 1, 0, &out, NULL, NULL},
		{"id", 1, 0, &want, NULL, NULL},
		{"watch", 0, 0, &watch, NULL, NULL},
		{"exec", 1, 0, &cmd, NULL, NULL},
		{NULL, 0, 0, NULL, NULL, NULL},
	};
	char *pos[1], last[65] = "";
	uint64_t gen = 0;
	unsigned backoff = 0;
	size_t npos;
	zt_err e;
	int r;

	if ((r = zt_cli_parse(argc, argv, opts, pos, 0, &npos, USAGE_FETCH)) != 0)
		return r;
	if (!sock || !out)
		return zt_cli_usage(USAGE_FETCH, "--socket and --out are required");
	if (cmd && !watch)
		return zt_cli_usage(USAGE_FETCH, "--exec goes with --watch");
	if (zt_mkdir(out, 0700, &e) != 0)
		return zt_cli_fail(&e, "svid fetch", ZT_EXIT_FAIL);
	signal(SIGPIPE, SIG_IGN);
	for (int first = 1;; first = 0) {
		zt_wl_answer ans;
		const zt_wl_svid *pick = NULL;

		r = zt_workload_fetch(sock, gen, 300, -1, &ans, &e);
		if (r == 0 && ans.status != 200)
			r = zt_err_set(&e, ZT_EIO, "the agent answered %d: %s", ans.status, ans.message);
		for (size_t i = 0; r == 0 && !pick && i < ans.n; i++)
			if (!want || !strcmp(ans.svids[i].id, want))
				pick = &ans.svids[i];
		if (r == 0 && !pick)
			r = zt_err_set(&e, ZT_ENOENT, "the agent gave no SVID%s%s", want ? " for " : "",
				       want ? want : "");
		if (r == 0) {
			char mark[65];
			uint8_t h[32];

			gen = ans.generation;
			backoff = 0;
			zt_sha256(pick->chain, strlen(pick->chain), h);
			zt_hex(h, sizeof h, mark);
			if (strcmp(mark, last)) {
				if ((r = zt_workload_write(out, pick, ans.bundle, &e)) == 0) {
					snprintf(last, sizeof last, "%s", mark);
					printf("wrote %s (valid until %s) to %s\n", pick->id, pick->not_after, out);
					fflush(stdout);
					if (cmd && !first) {
						int st = system(cmd);

						if (st != 0)
							fprintf(stderr, "zt: svid fetch: %s exited with %d\n", cmd, st);
					}
				}
			}
		}
		zt_wl_answer_free(&ans);
		if (r != 0 && !watch)
			return zt_cli_fail(&e, "svid fetch", ZT_EXIT_FAIL);
		if (!watch)
			break;
		if (r != 0) {
			/* keep what is on disk, and ask again a little later */
			fprintf(stderr, "zt: svid fetch: %s; retrying\n", e.msg);
			backoff = backoff ? (backoff * 2 > 30000 ? 30000 : backoff * 2) : 500;
			usleep(backoff * 1000u);
			gen = 0;
		}
	}
	return ZT_EXIT_OK;
}

#define U_JWT "zt svid jwt --socket PATH --audience AUD [--audience AUD2...] [--id SPIFFE_ID] [--bundle]"

static int svid_jwt_with(int argc, char **argv, const char ***audsp);

/* zt svid jwt: a JWT-SVID from the agent (the token on stdout), or the JWT bundle. */
static int svid_jwt(int argc, char **argv)
{
	const char **auds = NULL;
	int r = svid_jwt_with(argc, argv, &auds);

	free(auds);
	return r;
}

static int svid_jwt_with(int argc, char **argv, const char ***audsp)
{
	const char *sock = NULL, *id = NULL, *bundle = NULL, **auds = NULL;
	size_t naud = 0, npos;
	const struct zt_opt opts[] = {
		{"socket", 1, 0, &sock, NULL, NULL},
		{"audience", 1, 1, NULL, audsp, &naud},
		{"id", 1, 0, &id, NULL, NULL},
		{"bundle", 0, 0, &bundle, NULL, NULL},
		{NULL, 0, 0, NULL, NULL, NULL},
	};
	char target[4096], esc[1024];
	size_t n;
	json_t *ans = NULL, *sv;
	int st = 0, r;
	zt_err e;

	if ((r = zt_cli_parse(argc, argv, opts, NULL, 0, &npos, U_JWT)) != 0)
		return r;
	auds = *audsp;
	if (!sock || (!bundle && naud == 0))
		return zt_cli_usage(U_JWT, "give --socket and at least one --audience (or --bundle)");
	if (bundle) {
		snprintf(target, sizeof target, "/v1/jwtbundle");
	} else {
		n = (size_t)snprintf(target, sizeof target, "/v1/jwtsvids?");
		for (size_t i = 0; i < naud + (id ? 1 : 0); i++) {
			if (zt_api_escape(i < naud ? auds[i] : id, esc, sizeof esc) != 0 ||
			    (n += (size_t)snprintf(target + n, sizeof target - n, "%s%s=%s", i ? "&" : "",
						  i < naud ? "audience" : "id", esc)) >= sizeof target)
				return zt_cli_usage(U_JWT, "the audiences and ID are too long");
		}
	}
	if (zt_workload_get(sock, target, &st, &ans, &e) != 0)
		return zt_cli_fail(&e, "svid jwt", ZT_EXIT_FAIL);
	if (st != 200) {
		fprintf(stderr, "zt: svid jwt: HTTP %d: %s\n", st,
			json_string_value(json_object_get(json_object_get(ans, "error"), "message")));
		json_decref(ans);
		return ZT_EXIT_FAIL;
	}
	if (bundle) {
		zt_remote_print(ans);
	} else {
		json_array_foreach (json_object_get(ans, "svids"), n, sv)
			printf("%s\n", json_string_value(json_object_get(sv, "token")));
	}
	json_decref(ans);
	return ZT_EXIT_OK;
}

int zt_cmd_svid(int argc, char **argv)
{
	static const char usage[] = "zt svid verify|request|fetch|jwt ...";

	if (argc >= 1 && strcmp(argv[0], "jwt") == 0)
		return svid_jwt(argc - 1, argv + 1);
	if (argc >= 1 && strcmp(argv[0], "fetch") == 0) {
		if (argc > 1 && strcmp(argv[1], "--help") == 0) {
			printf("usage: %s\n", USAGE_FETCH);
			return ZT_EXIT_OK;
		}
		return svid_fetch(argc - 1, argv + 1);
	}
	if (argc >= 1 && strcmp(argv[0], "request") == 0) {
		if (argc > 1 && strcmp(argv[1], "--help") == 0) {
			printf("usage: %s\n", USAGE_REQUEST);
			return ZT_EXIT_OK;
		}
		return svid_request(argc - 1, argv + 1);
	}

	if (argc >= 1 && strcmp(argv[0], "verify") == 0) {
		if (argc > 1 && strcmp(argv[1], "--help") == 0) {
			printf("usage: %s\n", USAGE_VERIFY);
			return ZT_EXIT_OK;
		}
		return svid_verify(argc - 1, argv + 1);
	}
	return zt_cli_usage(usage, argc ? "unknown subcommand \"svid %.100s\"" : "missing subcommand%.0s",
			    argc ? argv[0] : "");
}
