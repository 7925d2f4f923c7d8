/* cli/cmd_server.c: zt server — the control plane (docs/api.md). */
#include "cli.h"
#include "server/server.h"

#include <stdio.h>
#include <string.h>

#define USAGE                                                                              \
	"zt server (--dir DIR | --dev) [--listen ADDR] [--trust-domain TD] [--ready-file F]\n" \
	"  --dev: a temporary state directory and a demo organization"

int zt_cmd_server(int argc, char **argv)
{
	const char *dir = NULL, *listen = NULL, *td = NULL, *dev = NULL, *ready = NULL;
	const struct zt_opt opts[] = {
		{"dir", 1, 0, &dir, NULL, NULL},
		{"listen", 1, 0, &listen, NULL, NULL},
		{"trust-domain", 1, 0, &td, NULL, NULL},
		{"dev", 0, 0, &dev, NULL, NULL},
		{"ready-file", 1, 0, &ready, NULL, NULL},
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
	zt_server_config c = {.dir = dir, .listen = listen, .trust_domain = td, .dev = dev != NULL,
			      .ready_file = ready};

	if (zt_server_run(&c, &e) != 0)
		return zt_cli_fail(&e, "server", ZT_EXIT_FAIL);
	return ZT_EXIT_OK;
}
