/* cli/cmd_proxy.c: zt proxy -c FILE */
#include "cli.h"
#include "proxy/proxy.h"

#include <stdio.h>
#include <string.h>

#define USAGE_PROXY "zt proxy -c FILE [--log-level debug|info|warn|error]"

int zt_cmd_proxy(int argc, char **argv)
{
	const char *cfg = NULL, *cfg2 = NULL, *level = NULL;
	const struct zt_opt opts[] = {
		{ "config", 1, 0, &cfg, NULL, NULL },
		{ "log-level", 1, 0, &level, NULL, NULL },
		{ NULL, 0, 0, NULL, NULL, NULL },
	};
	char *rest[2];
	size_t npos;
	zt_proxy *px;
	zt_err e;
	int r;

	/* -c FILE, as the issue and most daemons spell it */
	if (argc >= 2 && strcmp(argv[0], "-c") == 0) {
		cfg2 = argv[1];
		argc -= 2;
		argv += 2;
	}
	if (argc >= 1 && strcmp(argv[0], "--help") == 0) {
		printf("usage: %s\n", USAGE_PROXY);
		return ZT_EXIT_OK;
	}
	if ((r = zt_cli_parse(argc, argv, opts, rest, 0, &npos, USAGE_PROXY)) != 0)
		return r;
	if (cfg2)
		cfg = cfg2;
	if (!cfg)
		return zt_cli_usage(USAGE_PROXY, "the configuration file is required (-c FILE); see docs/proxy.md");
	if (level) {
		enum zt_log_level lv;

		if (zt_log_level_parse(level, &lv) != 0)
			return zt_cli_usage(USAGE_PROXY, "--log-level is debug, info, warn or error");
		zt_log_set_level(lv);
	}
	if (!(px = zt_proxy_new(cfg, &e)))
		return zt_cli_fail(&e, "proxy", ZT_EXIT_FAIL);
	r = zt_proxy_run(px, &e);
	zt_proxy_free(px);
	if (r != 0)
		return zt_cli_fail(&e, "proxy", ZT_EXIT_FAIL);
	return ZT_EXIT_OK;
}
