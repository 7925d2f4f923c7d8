/* cli/cmd_server.c: zt server — the control plane (docs/api.md). */
#include "cli.h"
#include "server/server.h"

#include <stdio.h>
#include <string.h>

#define USAGE                                                                              \
	"zt server (--dir DIR | --dev) [--listen ADDR] [--trust-domain TD] [--signing-ttl 7d] [--ready-file F]\n" \
	"          [--issuer URL] [--token-key-period 7d]\n"                                   \
	"  --dev: a temporary state directory and a demo organization\n"                      \
	"  --signing-ttl: a new state directory's signing CA life (10s-30d; short ones are for tests); it rotates at half life\n" \
	"  --issuer: the URL tokens name as their issuer (\"iss\"), where relying parties find\n"  \
	"            /.well-known/openid-configuration (default https://localhost:PORT)\n"     \
	"  --token-key-period: how long a token signing key signs before the next (20s-90d; short ones are for tests)"

int zt_cmd_server(int argc, char **argv)
{
	const char *dir = NULL, *listen = NULL, *td = NULL, *dev = NULL, *ready = NULL, *sttl = NULL,
		   *issuer = NULL, *kp = NULL;
	int64_t signing_ttl = 0, key_period = 0;
	const struct zt_opt opts[] = {
		{"dir", 1, 0, &dir, NULL, NULL},
		{"listen", 1, 0, &listen, NULL, NULL},
		{"trust-domain", 1, 0, &td, NULL, NULL},
		{"dev", 0, 0, &dev, NULL, NULL},
		{"ready-file", 1, 0, &ready, NULL, NULL},
		{"signing-ttl", 1, 0, &sttl, NULL, NULL},
		{"issuer", 1, 0, &issuer, NULL, NULL},
		{"token-key-period", 1, 0, &kp, NULL, NULL},
		{NULL, 0, 0, NULL, NULL, NULL},
	};
	size_t npos;
	zt_err e;
	int r;

	if (argc > 0 && strcmp(argv[0], "--help") == 0) {
		printf("usage: %s\n", USAGE);
		return ZT_EXIT_OK;
	}
	if ((r = zt_cli_parse(argc, argv, opts, NULL, 0, &npos, USAGE)) != 0)
		return r;
	if (!dir && !dev)
		return zt_cli_usage(USAGE, "give --dir (the state directory) or --dev");
	if (sttl && (zt_duration_parse(sttl, 30 * 86400, &signing_ttl, &e) != 0 || signing_ttl < 10))
		return zt_cli_usage(USAGE, "--signing-ttl is a duration from 10s to 30d (like 7d)");
	if (kp && (zt_duration_parse(kp, 90 * 86400, &key_period, &e) != 0 || key_period < 20))
		return zt_cli_usage(USAGE, "--token-key-period is a duration from 20s to 90d (like 7d; short ones are for tests)");
	if (issuer && (strncmp(issuer, "https://", 8) != 0 || strlen(issuer) > 400 ||
		       issuer[strlen(issuer) - 1] == '/' || strpbrk(issuer, "?# ")))
		return zt_cli_usage(USAGE, "--issuer is an https:// URL without query, fragment or trailing /");
	zt_server_config c = {.dir = dir, .listen = listen, .trust_domain = td, .dev = dev != NULL,
			      .ready_file = ready, .signing_ttl = signing_ttl, .issuer = issuer,
			      .token_key_period = key_period};

	if (zt_server_run(&c, &e) != 0)
		return zt_cli_fail(&e, "server", ZT_EXIT_FAIL);
	return ZT_EXIT_OK;
}
