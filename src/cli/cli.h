/*
 * cli: the `zt` command. Each subcommand is a function from argv to an exit
 * status: 0 done, 1 failed or rejected, 2 usage error.
 */
#ifndef ZT_CLI_H
#define ZT_CLI_H

#include <stddef.h>

#include "core/core.h"

#define ZT_EXIT_OK 0
#define ZT_EXIT_FAIL 1
#define ZT_EXIT_USAGE 2

/* One option of a subcommand. */
struct zt_opt {
	const char *name;   /* without the leading "--" */
	int has_arg;        /* 0: a flag */
	int repeat;         /* may be given several times (values collected) */
	const char **value; /* the value, or "1" for a flag */
	const char ***values; /* with repeat: the values, NULL-terminated */
	size_t *count;        /* with repeat: how many */
};

/*
 * Parses argv against opts; positional arguments land in pos (at most
 * maxpos). Prints a usage error and returns ZT_EXIT_USAGE on a problem.
 */
int zt_cli_parse(int argc, char **argv, const struct zt_opt *opts, char **pos,
		 size_t maxpos, size_t *npos, const char *usage);

/* Prints "zt: WHAT: [rule] message" to stderr and returns `status`. */
int zt_cli_fail(const zt_err *e, const char *what, int status);

/* A usage error: prints the message and usage, returns ZT_EXIT_USAGE. */
int zt_cli_usage(const char *usage, const char *fmt, ...) ZT_PRINTF(2, 3);

/* Parses a time given as RFC 3339 UTC ("2026-01-02T03:04:05Z") or seconds. */
int zt_cli_parse_time(const char *s, int64_t *out);

int zt_cmd_ca(int argc, char **argv);
int zt_cmd_svid(int argc, char **argv);
int zt_cmd_bundle(int argc, char **argv);
int zt_cmd_demo(int argc, char **argv);
int zt_cmd_policy(int argc, char **argv);
int zt_cmd_proxy(int argc, char **argv);
int zt_cmd_audit(int argc, char **argv);
int zt_cmd_kek(int argc, char **argv);
int zt_cmd_jwt(int argc, char **argv);
int zt_cmd_server(int argc, char **argv);
int zt_cmd_agent(int argc, char **argv);
int zt_cmd_dev(int argc, char **argv);
int zt_cmd_dev_service(int argc, char **argv);

/* ---- commands that call the control plane's API (remote.c) ---- */

#include <jansson.h>

#include "client/client.h"

/* Where the server is and who we are: flags, else environment, else config file. */
struct zt_remote {
	const char *server, *token, *ca_file, *cert, *key;
};

#define ZT_REMOTE_OPTS(r)                                   \
	{"server", 1, 0, &(r).server, NULL, NULL},          \
	{"token", 1, 0, &(r).token, NULL, NULL},            \
	{"ca-file", 1, 0, &(r).ca_file, NULL, NULL},        \
	{"cert", 1, 0, &(r).cert, NULL, NULL},              \
	{"key", 1, 0, &(r).key, NULL, NULL}

#define ZT_REMOTE_USAGE "[--server URL] [--token T | --cert SVID --key KEY] [--ca-file BUNDLE]"

/* Resolves the settings and makes a client; prints why not and returns NULL. */
zt_api *zt_remote_open(const struct zt_remote *r, const char *what);

/*
 * One call; prints an error response ("HTTP 403 forbidden: ...") or a
 * connection failure and returns ZT_EXIT_FAIL, else ZT_EXIT_OK with the
 * JSON answer in *out (may be NULL: then it is printed).
 */
int zt_remote_call(zt_api *a, const char *what, const char *method, const char *path,
		   const json_t *body, const char *if_match, json_t **out);

/* Prints an error response: "zt: WHAT: HTTP 403 forbidden: message (request ID)" and diagnostics. */
void zt_remote_print_error(const char *what, const zt_api_resp *r);

/* Prints JSON, indented, to stdout. */
void zt_remote_print(const json_t *j);

/*
 * GETs every page of a list (docs/api.md, "Conventions"), following the
 * "next" cursors with ?after=, into one array in *items (caller frees).
 * query is more of the query string, escaped ("node=n1"), "" or NULL.
 * ZT_EXIT_OK, or the failure printed and *items NULL.
 */
int zt_remote_fetch_all(zt_api *a, const char *what, const char *path, const char *query,
			json_t **items);

int zt_cmd_org(int argc, char **argv);
int zt_cmd_tenant(int argc, char **argv);
int zt_cmd_workspace(int argc, char **argv);
int zt_cmd_service(int argc, char **argv);
int zt_cmd_role(int argc, char **argv);
int zt_cmd_token(int argc, char **argv);
int zt_cmd_join_token(int argc, char **argv);
int zt_cmd_node(int argc, char **argv);
int zt_cmd_entry(int argc, char **argv);
int zt_cmd_user(int argc, char **argv);
int zt_cmd_group(int argc, char **argv);
int zt_cmd_login(int argc, char **argv);
int zt_cmd_logout(int argc, char **argv);
/* zt policy apply|list|get|history|rollback|delete (the server's policies) */
int zt_policy_remote(const char *sub, int argc, char **argv);
/* zt audit entries|checkpoint|witness (the server's log) */
int zt_audit_remote(const char *sub, int argc, char **argv);

#endif
