/* cli/cmd_server.c: zt server — the control plane (docs/api.md). */
#include "cli.h"
#include "server/server.h"

#include <stdio.h>
#include <string.h>

#define USAGE                                                                              \
	"zt server (--dir DIR | --dev) [--listen ADDR] [--trust-domain TD] [--signing-ttl 7d] [--ready-file F]\n" \
	"  --dev: a temporary state directory and a demo organization\n"                      \
	"  --signing-ttl: a new state directory's signing CA life (10s-30d; short ones are for tests); it rotates at half life"

int zt_cmd_server(int argc, char **argv)
{
	const char *dir = NULL, *listen = NULL, *td = NULL, *dev = NULL, *ready = NULL, *sttl = NULL;
	int64_t signing_ttl = 0;
	const struct zt_opt opts[] = {
		{"dir", 1, 0, &dir, NULL, NULL},
		{"listen", 1, 0, &listen, NULL, NULL},
		{"trust-domain", 1, 0, &td, NULL, NULL},
		{"dev", 0, 0, &dev, NULL, NULL},
		{"ready-file", 1, 0, &ready, NULL, NULL},
		{"signing-ttl", 1, 0, &sttl, NULL, NULL},
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
	zt_server_config c = {.dir = dir, .listen = listen, .trust_domain = td, .dev = dev != NULL,
			      .ready_file = ready, .signing_ttl = signing_ttl};

	if (zt_server_run(&c, &e) != 0)
		return zt_cli_fail(&e, "server", ZT_EXIT_FAIL);
	return ZT_EXIT_OK;
}
