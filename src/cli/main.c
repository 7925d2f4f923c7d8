/* cli/main.c: the zt command — dispatch to subcommands. */
#include "cli.h"
#include "crypto/crypto.h"

#include <stdio.h>
#include <string.h>

#ifndef ZT_VERSION
#define ZT_VERSION "0.1.0"
#endif

static const struct {
	const char *name;
	int (*fn)(int, char **);
	const char *help;
} commands[] = {
	{ "ca", zt_cmd_ca, "ca init|rotate|issue|status   the trust domain's certificate authority" },
	{ "svid", zt_cmd_svid, "svid verify                    check an X.509-SVID against trust bundles" },
	{ "bundle", zt_cmd_bundle, "bundle export                  publish the trust bundle (PEM or SPIFFE)" },
	{ "policy", zt_cmd_policy, "policy check|eval|test|apply|... authorization policies: lint, decide, test; on the server" },
	{ "org", zt_cmd_org, "org list|get|create|update|delete   organizations on the server (tenant, workspace, service alike)" },
	{ "tenant", zt_cmd_tenant, "tenant ...                     tenants: ORG/TENANT" },
	{ "workspace", zt_cmd_workspace, "workspace ...                  workspaces: ORG/TENANT/WORKSPACE" },
	{ "service", zt_cmd_service, "service ...                    services: ORG/TENANT/WORKSPACE/SERVICE" },
	{ "role", zt_cmd_role, "role bind|unbind|list           who administers what (role bindings)" },
	{ "token", zt_cmd_token, "token create|revoke             API tokens for people and automation" },
	{ "user", zt_cmd_user, "user create|list|get|update|passwd|totp|delete   people who log in" },
	{ "group", zt_cmd_group, "group create|list|get|delete  groups of users (role bindings may name group:G)" },
	{ "login", zt_cmd_login, "login                          get a short-lived token (kept in ~/.config/zt, 0600)" },
	{ "logout", zt_cmd_logout, "logout                         revoke it" },
	{ "join-token", zt_cmd_join_token, "join-token create --node NAME   a one-time token for a node's agent to join" },
	{ "node", zt_cmd_node, "node list|get|evict             the nodes whose agents joined" },
	{ "entry", zt_cmd_entry, "entry create|list|get|delete   registration entries: which workload gets which SVID where" },
	{ "proxy", zt_cmd_proxy, "proxy -c FILE                  the mTLS sidecar (L4; see docs/proxy.md)" },
	{ "server", zt_cmd_server, "server --dir DIR | --dev         the control plane: API, store, CA, audit (docs/api.md)" },
	{ "agent", zt_cmd_agent, "agent -c AGENT.yaml             the node agent: joins, holds SVIDs, serves the Workload API" },
	{ "audit", zt_cmd_audit, "audit init|append|verify|...    the tamper-evident audit log (docs/audit.md)" },
	{ "jwt", zt_cmd_jwt, "jwt verify|sign|jwks            check a JSON Web Token as the proxy does; mint one" },
	{ "kek", zt_cmd_kek, "kek generate|seal|id             the key-encryption key that seals keys at rest" },
	{ "dev", zt_cmd_dev, "dev                            the whole mesh here: server, agent, two services behind proxies" },
	{ "demo", zt_cmd_demo, "demo                           a trust domain, two SVIDs, verified" },
};

static void usage(FILE *f)
{
	fprintf(f, "zt %s: zero-trust workload identity and policy\n\nusage: zt COMMAND ...\n\n",
		ZT_VERSION);
	for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
		fprintf(f, "  zt %s\n", commands[i].help);
	fprintf(f, "\n'zt COMMAND SUBCOMMAND --help' shows a command's options. Docs: README.md, docs/.\n");
}

int main(int argc, char **argv)
{
	zt_crypto_init();
	if (argc < 2) {
		usage(stderr);
		return ZT_EXIT_USAGE;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "help") == 0) {
		usage(stdout);
		return ZT_EXIT_OK;
	}
	if (strcmp(argv[1], "--version") == 0) {
		printf("zt %s\n", ZT_VERSION);
		return ZT_EXIT_OK;
	}
	/* keys at rest: sealed under $ZT_KEK_FILE / $ZT_KEK when one is set */
	uint8_t kek[ZT_KEK_LEN];
	int found;
	zt_err e;

	int making_kek = argc > 2 && strcmp(argv[1], "kek") == 0 && strcmp(argv[2], "generate") == 0;

	found = 0;
	if (!making_kek && zt_kek_load(NULL, kek, &found, &e) != 0)
		return zt_cli_fail(&e, "key-encryption key", ZT_EXIT_FAIL);
	if (found)
		zt_kek_set(kek);
	zt_wipe(kek, sizeof kek);
	for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
		if (strcmp(argv[1], commands[i].name) == 0)
			return commands[i].fn(argc - 2, argv + 2);
	if (strcmp(argv[1], "dev-service") == 0) /* zt dev's demo service, not for users */
		return zt_cmd_dev_service(argc - 2, argv + 2);
	fprintf(stderr, "zt: unknown command \"%.100s\"\n\n", argv[1]);
	usage(stderr);
	return ZT_EXIT_USAGE;
}
