/* cli/args.c: option parsing and error reporting shared by subcommands. */
#include "cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int zt_cli_usage(const char *usage, const char *fmt, ...)
{
	va_list ap;

	fputs("zt: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nusage: %s\n", usage);
	return ZT_EXIT_USAGE;
}

int zt_cli_fail(const zt_err *e, const char *what, int status)
{
	if (e->rule[0])
		fprintf(stderr, "zt: %s: [%s] %s\n", what, e->rule, e->msg);
	else
		fprintf(stderr, "zt: %s: %s\n", what, e->msg);
	return status;
}

static int add_value(const struct zt_opt *o, const char *v)
{
	const char **nv;

	if (!o->repeat) {
		*o->value = v;
		return 0;
	}
	nv = realloc(*o->values, (*o->count + 2) * sizeof *nv);
	if (!nv)
		return -1;
	nv[(*o->count)++] = v;
	nv[*o->count] = NULL;
	*o->values = nv;
	return 0;
}

static int one_letter(const struct zt_opt *opts, char c)
{
	for (const struct zt_opt *o = opts; o->name; o++)
		if (o->name[0] == c && o->name[1] == '\0')
			return 1;
	return 0;
}

int zt_cli_parse(int argc, char **argv, const struct zt_opt *opts, char **pos,
		 size_t maxpos, size_t *npos, const char *usage)
{
	int only_pos = 0;

	*npos = 0;
	for (int i = 0; i < argc; i++) {
		const char *a = argv[i], *eq, *val = NULL;
		const struct zt_opt *o;
		size_t nlen;

		if (only_pos || a[0] != '-' || a[1] == '\0') {
			if (*npos >= maxpos)
				return zt_cli_usage(usage, "unexpected argument \"%.200s\"", a);
			pos[(*npos)++] = argv[i];
			continue;
		}
		if (strcmp(a, "--") == 0) {
			only_pos = 1;
			continue;
		}
		/* "-f" for the one-letter options ("kubectl apply -f"), "--name" for the rest */
		if (a[1] != '-' && (a[2] != '\0' || !one_letter(opts, a[1])))
			return zt_cli_usage(usage, "unknown option \"%.200s\" (options are spelled --name)", a);
		a += a[1] == '-' ? 2 : 1;
		eq = strchr(a, '=');
		nlen = eq ? (size_t)(eq - a) : strlen(a);
		for (o = opts; o->name; o++)
			if (strlen(o->name) == nlen && strncmp(o->name, a, nlen) == 0)
				break;
		if (!o->name)
			return zt_cli_usage(usage, "unknown option --%.*s", (int)nlen, a);
		if (o->has_arg) {
			if (eq)
				val = eq + 1;
			else if (i + 1 < argc)
				val = argv[++i];
			else
				return zt_cli_usage(usage, "--%s needs a value", o->name);
		} else {
			if (eq)
				return zt_cli_usage(usage, "--%s takes no value", o->name);
			val = "1";
		}
		if (!o->repeat && *o->value)
			return zt_cli_usage(usage, "--%s given twice", o->name);
		if (add_value(o, val) != 0)
			return zt_cli_usage(usage, "out of memory");
	}
	return 0;
}

int zt_cli_parse_time(const char *s, int64_t *out)
{
	struct tm tm;
	const char *end;
	char *num_end;
	long long v;

	memset(&tm, 0, sizeof tm);
	end = strptime(s, "%Y-%m-%dT%H:%M:%SZ", &tm);
	if (end && *end == '\0') {
		*out = (int64_t)timegm(&tm);
		return 0;
	}
	v = strtoll(s, &num_end, 10);
	if (*s && *num_end == '\0' && v > 0) {
		*out = v;
		return 0;
	}
	return -1;
}
