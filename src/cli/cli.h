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
int zt_cmd_server(int argc, char **argv);

#endif
