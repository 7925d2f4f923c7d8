/* cli/cmd_agent.c: zt agent — the node agent (docs/agent.md). */
#include "agent/agent.h"
#include "cli.h"

#include <stdio.h>
#include <string.h>

#define USAGE "zt agent -c AGENT.yaml   (docs/agent.md: joining, entries, the Workload API)"

int zt_cmd_agent(int argc, char **argv)
{
	const char *cfg = NULL, *c2 = NULL;
	const struct zt_opt opts[] = {
		{"c", 1, 0, &cfg, NULL, NULL},
		{"config", 1, 0, &c2, NULL, NULL},
		{NULL, 0, 0, NULL, NULL, NULL},
	};
	size_t npos;
	zt_err e;
	int r;

	if (argc > 0 && !strcmp(argv[0], "--help")) {
		printf("usage: %s\n", USAGE);
		return ZT_EXIT_OK;
	}
	if ((r = zt_cli_parse(argc, argv, opts, NULL, 0, &npos, USAGE)) != 0)
		return r;
	if (!cfg == !c2)
		return zt_cli_usage(USAGE, "give the configuration file with -c");
	if (zt_agent_run(cfg ? cfg : c2, &e) != 0)
		return zt_cli_fail(&e, "agent", ZT_EXIT_FAIL);
	return ZT_EXIT_OK;
}
