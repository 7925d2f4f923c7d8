/*
 * cli/cmd_admin.c: the organization hierarchy, role bindings and tokens on
 * the server: zt org|tenant|workspace|service, zt role, zt token.
 */
#include "cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the hierarchy ---- */

static const char *const collections[] = {"orgs", "tenants", "workspaces", "services"};

/*
 * "/v1/orgs/A/tenants/B..." for a NAME of depth+1 segments ("A/B"); with
 * `list`, the collection under NAME (depth segments). -1 when NAME has the
 * wrong shape.
 */
static int hier_path(int depth, const char *name, int list, char *out, size_t cap)
{
	char tmp[1024], *save = NULL, *seg;
	int want = list ? depth : depth + 1, n = 0;
	size_t o;

	if (strlen(name) >= sizeof tmp || name[0] == '/' || strstr(name, "//"))
		return -1;
	snprintf(tmp, sizeof tmp, "%s", name);
	o = (size_t)snprintf(out, cap, "/v1");
	for (seg = strtok_r(tmp, "/", &save); seg; seg = strtok_r(NULL, "/", &save)) {
		char esc[512];

		if (n >= want || zt_api_escape(seg, esc, sizeof esc) != 0)
			return -1;
		o += (size_t)snprintf(out + o, o < cap ? cap - o : 0, "/%s/%s", collections[n], esc);
		n++;
	}
	if (n != want || (name[0] && name[strlen(name) - 1] == '/'))
		return -1;
	if (list)
		o += (size_t)snprintf(out + o, o < cap ? cap - o : 0, "/%s", collections[depth]);
	return o < cap ? 0 : -1;
}

static json_t *parse_spec(const char *spec, const char *what)
{
	json_error_t je;
	json_t *j;

	if (!spec)
		return json_object();
	if (!(j = json_loads(spec, JSON_REJECT_DUPLICATES, &je)) || !json_is_object(j)) {
		fprintf(stderr, "zt: %s: --spec must be a JSON object: %s\n", what, j ? "not an object" : je.text);
		json_decref(j);
		return NULL;
	}
	return j;
}

/* The object's current version, for writes that were not given one. */
static int current_version(zt_api *a, const char *what, const char *path, char *out, size_t cap)
{
	json_t *j;
	int r = zt_remote_call(a, what, "GET", path, NULL, NULL, &j);

	if (r != ZT_EXIT_OK)
		return r;
	json_int_t v = json_integer_value(json_object_get(j, "version"));

	json_decref(j);
	if (v <= 0) {
		fprintf(stderr, "zt: %s: the server gave no version for %s\n", what, path);
		return ZT_EXIT_FAIL;
	}
	snprintf(out, cap, "%lld", (long long)v);
	return ZT_EXIT_OK;
}

/* GET every page of a collection and print it as one {"items": [...]}. */
static int list_all(zt_api *a, const char *what, const char *path, const char *query)
{
	json_t *all;
	int r = zt_remote_fetch_all(a, what, path, query, &all);

	if (r != ZT_EXIT_OK)
		return r;
	json_t *out = json_pack("{s:o}", "items", all);

	zt_remote_print(out);
	json_decref(out);
	return ZT_EXIT_OK;
}

static int hier_cmd(int depth, const char *kind, const char *parent_hint, int argc, char **argv)
{
	struct zt_remote rm = {0};
	const char *spec = NULL, *version = NULL;
	const struct zt_opt opts[] = {
		ZT_REMOTE_OPTS(rm),
		{"spec", 1, 0, &spec, NULL, NULL},
		{"version", 1, 0, &version, NULL, NULL},
		{NULL, 0, 0, NULL, NULL, NULL},
	};
	char usage[512], what[64], path[4096], ver[32];
	char *pos[2];
	size_t npos;
	int r;

	snprintf(usage, sizeof usage,
		 "zt %s list%s%s | get NAME | create NAME [--spec JSON] | update NAME --spec JSON [--version V] | delete NAME [--version V]\n"
		 "       (NAME is %s; connection: " ZT_REMOTE_USAGE ")",
		 kind, depth ? " " : "", parent_hint, depth == 0 ? "ORG" : depth == 1 ? "ORG/TENANT" : depth == 2 ? "ORG/TENANT/WORKSPACE" : "ORG/TENANT/WORKSPACE/SERVICE");
	if (argc < 1 || !strcmp(argv[0], "--help")) {
		printf("usage: %s\n", usage);
		return argc < 1 ? ZT_EXIT_USAGE : ZT_EXIT_OK;
	}
	const char *sub = argv[0];

	snprintf(what, sizeof what, "%s %s", kind, sub);
	if ((r = zt_cli_parse(argc - 1, argv + 1, opts, pos, 2, &npos, usage)) != 0)
		return r;
	int list = !strcmp(sub, "list");

	if (strcmp(sub, "list") && strcmp(sub, "get") && strcmp(sub, "create") &&
	    strcmp(sub, "update") && strcmp(sub, "delete"))
		return zt_cli_usage(usage, "unknown subcommand \"%s %.100s\"", kind, sub);
	if (npos != (list && depth == 0 ? 0u : 1u))
		return zt_cli_usage(usage, list && depth == 0 ? "list takes no name" : "give one name");
	if (!strcmp(sub, "create")) {
		/* the collection is the parent's: all but the last segment */
		char parent[1024];
		const char *last = strrchr(pos[0], '/');

		if ((depth == 0) != (last == NULL) || strlen(pos[0]) >= sizeof parent)
			return zt_cli_usage(usage, "\"%.200s\" is not a %s name", pos[0], kind);
		snprintf(parent, sizeof parent, "%.*s", last ? (int)(last - pos[0]) : 0, pos[0]);
		if (hier_path(depth, parent, 1, path, sizeof path) != 0 || (last ? !last[1] : !pos[0][0]))
			return zt_cli_usage(usage, "\"%.200s\" is not a %s name", pos[0], kind);
	} else if (hier_path(depth, npos ? pos[0] : "", list, path, sizeof path) != 0) {
		return zt_cli_usage(usage, "\"%.200s\" is not a %s name", npos ? pos[0] : "", kind);
	}
	if (spec && strcmp(sub, "create") && strcmp(sub, "update"))
		return zt_cli_usage(usage, "--spec goes with create and update");
	if (!strcmp(sub, "update") && !spec)
		return zt_cli_usage(usage, "update needs --spec");
	json_t *spec_json = NULL;

	if (spec && !(spec_json = parse_spec(spec, what)))
		return ZT_EXIT_USAGE;
	json_decref(spec_json);
	zt_api *a = zt_remote_open(&rm, what);

	if (!a)
		return ZT_EXIT_FAIL;
	if (list) {
		r = list_all(a, what, path, NULL);
	} else if (!strcmp(sub, "get")) {
		r = zt_remote_call(a, what, "GET", path, NULL, NULL, NULL);
	} else if (!strcmp(sub, "create")) {
		json_t *s = parse_spec(spec, what);
		const char *last = strrchr(pos[0], '/');

		r = ZT_EXIT_FAIL;
		if (s) {
			json_t *b = json_pack("{s:s,s:o}", "name", last ? last + 1 : pos[0], "spec", s);

			r = zt_remote_call(a, what, "POST", path, b, NULL, NULL);
			json_decref(b);
		}
	} else {
		if (!version && (r = current_version(a, what, path, ver, sizeof ver)) != ZT_EXIT_OK)
			goto out;
		if (!strcmp(sub, "update")) {
			json_t *s = parse_spec(spec, what);

			r = ZT_EXIT_FAIL;
			if (s) {
				json_t *b = json_pack("{s:o}", "spec", s);

				r = zt_remote_call(a, what, "PUT", path, b, version ? version : ver, NULL);
				json_decref(b);
			}
		} else {
			r = zt_remote_call(a, what, "DELETE", path, NULL, version ? version : ver, NULL);
		}
	}
out:
	zt_api_free(a);
	return r;
}

int zt_cmd_org(int argc, char **argv)
{
	return hier_cmd(0, "org", "", argc, argv);
}

int zt_cmd_tenant(int argc, char **argv)
{
	return hier_cmd(1, "tenant", "ORG", argc, argv);
}

int zt_cmd_workspace(int argc, char **argv)
{
	return hier_cmd(2, "workspace", "ORG/TENANT", argc, argv);
}

int zt_cmd_service(int argc, char **argv)
{
	return hier_cmd(3, "service", "ORG/TENANT/WORKSPACE", argc, argv);
}

/* ---- role bindings ---- */

#define U_ROLE                                                                                  \
	"zt role bind PRINCIPAL ROLE SCOPE | unbind NAME | unbind PRINCIPAL ROLE SCOPE | list [--scope SCOPE]\n" \
	"       (ROLE: admin, org-admin, security-admin, tenant-admin, workspace-admin, viewer;\n"   \
	"        SCOPE: ORG[/TENANT[/WORKSPACE]], \"\" for everything; connection: " ZT_REMOTE_USAGE ")"

/* The name of the binding of principal, role and scope, or "" when there is none. */
static int find_binding(zt_api *a, const char *p, const char *role, const char *scope, char *name,
			size_t cap)
{
	json_t *j, *it;
	size_t i;
	char q[1100], esc[1024];
	int r;

	name[0] = '\0';
	if (zt_api_escape(scope, esc, sizeof esc) != 0)
		return ZT_EXIT_FAIL;
	snprintf(q, sizeof q, "%s%s", scope[0] ? "scope=" : "", scope[0] ? esc : "");
	/* every page: the binding may be anywhere among those at the scope */
	if ((r = zt_remote_fetch_all(a, "role unbind", "/v1/rolebindings", q, &j)) != ZT_EXIT_OK)
		return r;
	json_array_foreach(j, i, it) {
		json_t *spec = json_object_get(it, "spec");

		if (!spec)
			spec = it;
		const char *bp = json_string_value(json_object_get(spec, "principal"));
		const char *br = json_string_value(json_object_get(spec, "role"));
		const char *bs = json_string_value(json_object_get(spec, "scope"));
		const char *bn = json_string_value(json_object_get(it, "name"));

		if (bp && br && bs && bn && !strcmp(bp, p) && !strcmp(br, role) && !strcmp(bs, scope))
			snprintf(name, cap, "%s", bn);
	}
	json_decref(j);
	return ZT_EXIT_OK;
}

int zt_cmd_role(int argc, char **argv)
{
	struct zt_remote rm = {0};
	const char *scope = NULL;
	const struct zt_opt opts[] = {
		ZT_REMOTE_OPTS(rm),
		{"scope", 1, 0, &scope, NULL, NULL},
		{NULL, 0, 0, NULL, NULL, NULL},
	};
	char *pos[3], path[2048], esc[1024];
	size_t npos;
	int r;

	if (argc < 1 || !strcmp(argv[0], "--help")) {
		printf("usage: %s\n", U_ROLE);
		return argc < 1 ? ZT_EXIT_USAGE : ZT_EXIT_OK;
	}
	const char *sub = argv[0];

	if ((r = zt_cli_parse(argc - 1, argv + 1, opts, pos, 3, &npos, U_ROLE)) != 0)
		return r;
	if (!strcmp(sub, "bind") ? npos != 3
	    : !strcmp(sub, "unbind") ? npos != 1 && npos != 3
	    : !strcmp(sub, "list") ? npos != 0
				   : 1)
		return zt_cli_usage(U_ROLE, "role %.100s: wrong arguments", sub);
	if (scope && strcmp(sub, "list"))
		return zt_cli_usage(U_ROLE, "--scope goes with list");
	zt_api *a = zt_remote_open(&rm, "role");

	if (!a)
		return ZT_EXIT_FAIL;
	if (!strcmp(sub, "bind")) {
		json_t *b = json_pack("{s:s,s:s,s:s}", "principal", pos[0], "role", pos[1], "scope", pos[2]);

		r = zt_remote_call(a, "role bind", "POST", "/v1/rolebindings", b, NULL, NULL);
		json_decref(b);
	} else if (!strcmp(sub, "list")) {
		if (scope && zt_api_escape(scope, esc, sizeof esc) != 0) {
			r = zt_cli_usage(U_ROLE, "--scope is too long");
		} else {
			snprintf(path, sizeof path, "%s%s", scope ? "scope=" : "", scope ? esc : "");
			r = list_all(a, "role list", "/v1/rolebindings", path);
		}
	} else {
		char name[256];

		if (npos == 3) {
			if ((r = find_binding(a, pos[0], pos[1], pos[2], name, sizeof name)) != ZT_EXIT_OK)
				goto out;
			if (!name[0]) {
				fprintf(stderr, "zt: role unbind: %s has no binding as %s at \"%s\"\n", pos[0],
					pos[1], pos[2]);
				r = ZT_EXIT_FAIL;
				goto out;
			}
		} else {
			snprintf(name, sizeof name, "%s", pos[0]);
		}
		if (zt_api_escape(name, esc, sizeof esc) != 0) {
			r = zt_cli_usage(U_ROLE, "binding name too long");
			goto out;
		}
		snprintf(path, sizeof path, "/v1/rolebindings/%s", esc);
		char ver[32];

		if ((r = current_version(a, "role unbind", path, ver, sizeof ver)) == ZT_EXIT_OK)
			r = zt_remote_call(a, "role unbind", "DELETE", path, NULL, ver, NULL);
	}
out:
	zt_api_free(a);
	return r;
}

/* ---- tokens ---- */

#define U_TOKEN                                                                                  \
	"zt token create [--principal P] [--description TEXT] [--ttl 30d] | revoke ID\n"           \
	"       (the token is printed once; connection: " ZT_REMOTE_USAGE ")"

int zt_cmd_token(int argc, char **argv)
{
	struct zt_remote rm = {0};
	const char *principal = NULL, *desc = NULL, *ttl = NULL;
	const struct zt_opt opts[] = {
		ZT_REMOTE_OPTS(rm),
		{"principal", 1, 0, &principal, NULL, NULL},
		{"description", 1, 0, &desc, NULL, NULL},
		{"ttl", 1, 0, &ttl, NULL, NULL},
		{NULL, 0, 0, NULL, NULL, NULL},
	};
	char *pos[1], path[128], esc[64];
	size_t npos;
	int r;

	if (argc < 1 || !strcmp(argv[0], "--help")) {
		printf("usage: %s\n", U_TOKEN);
		return argc < 1 ? ZT_EXIT_USAGE : ZT_EXIT_OK;
	}
	const char *sub = argv[0];

	if ((r = zt_cli_parse(argc - 1, argv + 1, opts, pos, 1, &npos, U_TOKEN)) != 0)
		return r;
	if (!strcmp(sub, "create") ? npos != 0 : !strcmp(sub, "revoke") ? npos != 1 : 1)
		return zt_cli_usage(U_TOKEN, "token %.100s: wrong arguments", sub);
	if (!strcmp(sub, "revoke") && (principal || desc || ttl))
		return zt_cli_usage(U_TOKEN, "revoke takes only the token's ID");
	zt_api *a = zt_remote_open(&rm, "token");

	if (!a)
		return ZT_EXIT_FAIL;
	if (!strcmp(sub, "create")) {
		json_t *b = json_object();

		if (principal)
			json_object_set_new(b, "principal", json_string(principal));
		if (desc)
			json_object_set_new(b, "description", json_string(desc));
		if (ttl)
			json_object_set_new(b, "ttl", json_string(ttl));
		r = zt_remote_call(a, "token create", "POST", "/v1/tokens", b, NULL, NULL);
		json_decref(b);
	} else if (zt_api_escape(pos[0], esc, sizeof esc) != 0) {
		r = zt_cli_usage(U_TOKEN, "that is not a token ID");
	} else {
		snprintf(path, sizeof path, "/v1/tokens/%s", esc);
		r = zt_remote_call(a, "token revoke", "DELETE", path, NULL, NULL, NULL);
	}
	zt_api_free(a);
	return r;
}

/* ---- nodes: join tokens, agents, registration entries (issue 8) ---- */

#define U_JOIN "zt join-token create --node NAME [--ttl 10m]   (printed once; " ZT_REMOTE_USAGE ")"

int zt_cmd_join_token(int argc, char **argv)
{
	struct zt_remote rm = {0};
	const char *node = NULL, *ttl = NULL;
	const struct zt_opt opts[] = {
		ZT_REMOTE_OPTS(rm),
		{"node", 1, 0, &node, NULL, NULL},
		{"ttl", 1, 0, &ttl, NULL, NULL},
		{NULL, 0, 0, NULL, NULL, NULL},
	};
	char *pos[1];
	size_t npos;
	int r;

	if (argc < 1 || !strcmp(argv[0], "--help")) {
		printf("usage: %s\n", U_JOIN);
		return argc < 1 ? ZT_EXIT_USAGE : ZT_EXIT_OK;
	}
	if (strcmp(argv[0], "create"))
		return zt_cli_usage(U_JOIN, "unknown subcommand \"join-token %.100s\"", argv[0]);
	if ((r = zt_cli_parse(argc - 1, argv + 1, opts, pos, 0, &npos, U_JOIN)) != 0)
		return r;
	if (!node)
		return zt_cli_usage(U_JOIN, "--node is required");
	zt_api *a = zt_remote_open(&rm, "join-token create");

	if (!a)
		return ZT_EXIT_FAIL;
	json_t *b = json_pack("{s:s}", "node", node);

	if (ttl)
		json_object_set_new(b, "ttl", json_string(ttl));
	r = zt_remote_call(a, "join-token create", "POST", "/v1/jointokens", b, NULL, NULL);
	json_decref(b);
	zt_api_free(a);
	return r;
}

#define U_NODE "zt node list | get NODE | evict NODE   (" ZT_REMOTE_USAGE ")"

int zt_cmd_node(int argc, char **argv)
{
	struct zt_remote rm = {0};
	const struct zt_opt opts[] = {
		ZT_REMOTE_OPTS(rm),
		{NULL, 0, 0, NULL, NULL, NULL},
	};
	char *pos[1], path[600], esc[512];
	size_t npos;
	int r;

	if (argc < 1 || !strcmp(argv[0], "--help")) {
		printf("usage: %s\n", U_NODE);
		return argc < 1 ? ZT_EXIT_USAGE : ZT_EXIT_OK;
	}
	const char *sub = argv[0];
	int list = !strcmp(sub, "list");

	if ((r = zt_cli_parse(argc - 1, argv + 1, opts, pos, 1, &npos, U_NODE)) != 0)
		return r;
	if ((!list && strcmp(sub, "get") && strcmp(sub, "evict")) || npos != (list ? 0u : 1u))
		return zt_cli_usage(U_NODE, "node %.100s: wrong arguments", sub);
	if (!list && zt_api_escape(pos[0], esc, sizeof esc) != 0)
		return zt_cli_usage(U_NODE, "that is not a node name");
	zt_api *a = zt_remote_open(&rm, "node");

	if (!a)
		return ZT_EXIT_FAIL;
	if (list) {
		r = list_all(a, "node list", "/v1/agents", NULL);
	} else {
		snprintf(path, sizeof path, "/v1/agents/%s", esc);
		r = zt_remote_call(a, !strcmp(sub, "get") ? "node get" : "node evict",
				   !strcmp(sub, "get") ? "GET" : "DELETE", path, NULL, NULL, NULL);
	}
	zt_api_free(a);
	return r;
}

#define U_ENTRY                                                                                    \
	"zt entry create --id SPIFFE_ID --node NODE --selector S [--selector S]... [--ttl 1h]\n"     \
	"       | list [--node NODE] | get NAME | delete NAME\n"                                      \
	"       (selectors: unix:uid:N unix:gid:N unix:path:/EXE unix:sha256:HEX cgroup:/PREFIX;\n"    \
	"        connection: " ZT_REMOTE_USAGE ")"

int zt_cmd_entry(int argc, char **argv)
{
	struct zt_remote rm = {0};
	const char *id = NULL, *node = NULL, *ttl = NULL, **sels = NULL;
	size_t nsels = 0;
	const struct zt_opt opts[] = {
		ZT_REMOTE_OPTS(rm),
		{"id", 1, 0, &id, NULL, NULL},
		{"node", 1, 0, &node, NULL, NULL},
		{"selector", 1, 1, NULL, &sels, &nsels},
		{"ttl", 1, 0, &ttl, NULL, NULL},
		{NULL, 0, 0, NULL, NULL, NULL},
	};
	char *pos[1], path[600], esc[512];
	size_t npos;
	int r;

	if (argc < 1 || !strcmp(argv[0], "--help")) {
		printf("usage: %s\n", U_ENTRY);
		return argc < 1 ? ZT_EXIT_USAGE : ZT_EXIT_OK;
	}
	const char *sub = argv[0];

	if ((r = zt_cli_parse(argc - 1, argv + 1, opts, pos, 1, &npos, U_ENTRY)) != 0)
		goto done;
	r = ZT_EXIT_USAGE;
	if (!strcmp(sub, "create")) {
		if (npos || !id || !node || !nsels) {
			zt_cli_usage(U_ENTRY, "create needs --id, --node and at least one --selector");
			goto done;
		}
	} else if (!strcmp(sub, "list")) {
		if (npos || id || nsels || ttl) {
			zt_cli_usage(U_ENTRY, "list takes only --node");
			goto done;
		}
	} else if (!strcmp(sub, "get") || !strcmp(sub, "delete")) {
		if (npos != 1 || id || node || nsels || ttl || zt_api_escape(pos[0], esc, sizeof esc)) {
			zt_cli_usage(U_ENTRY, "%s takes the entry's name only", sub);
			goto done;
		}
	} else {
		zt_cli_usage(U_ENTRY, "unknown subcommand \"entry %.100s\"", sub);
		goto done;
	}
	zt_api *a = zt_remote_open(&rm, "entry");

	r = ZT_EXIT_FAIL;
	if (!a)
		goto done;
	if (!strcmp(sub, "create")) {
		json_t *b = json_pack("{s:s,s:s,s:[]}", "id", id, "node", node, "selectors");

		for (size_t i = 0; i < nsels; i++)
			json_array_append_new(json_object_get(b, "selectors"), json_string(sels[i]));
		if (ttl)
			json_object_set_new(b, "ttl", json_string(ttl));
		r = zt_remote_call(a, "entry create", "POST", "/v1/entries", b, NULL, NULL);
		json_decref(b);
	} else if (!strcmp(sub, "list")) {
		if (node && zt_api_escape(node, esc, sizeof esc) != 0) {
			r = zt_cli_usage(U_ENTRY, "--node is too long");
		} else {
			snprintf(path, sizeof path, "%s%s", node ? "node=" : "", node ? esc : "");
			r = list_all(a, "entry list", "/v1/entries", path);
		}
	} else {
		snprintf(path, sizeof path, "/v1/entries/%s", esc);
		r = zt_remote_call(a, !strcmp(sub, "get") ? "entry get" : "entry delete",
				   !strcmp(sub, "get") ? "GET" : "DELETE", path, NULL, NULL, NULL);
	}
	zt_api_free(a);
done:
	free(sels);
	return r;
}
