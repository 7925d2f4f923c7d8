/* cli/cmd_policy.c: zt policy check | eval | test */
#include "cli.h"
#include "policy/policy.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define USAGE_CHECK "zt policy check [--istio-root-ns NS] PATH..."
#define USAGE_EVAL "zt policy eval --policy PATH [--policy PATH]... --request FILE|- [--explain] [--istio-root-ns NS]"
#define USAGE_TEST "zt policy test [--istio-root-ns NS] PATH..."
#define MAX_PATHS 256
#define REQUEST_MAX_BYTES (1u << 20)
#define MAX_HEADERS 256
#define MAX_AUDS 64

static void print_diags(const zt_policy_src *src, int errors_only, FILE *f)
{
	size_t nw = 0;

	for (size_t i = 0; i < zt_policy_src_ndiags(src); i++) {
		const zt_diag *d = zt_policy_src_diag(src, i);

		if (d->level == ZT_DIAG_WARNING) {
			nw++;
			if (errors_only)
				continue;
		}
		if (d->line)
			fprintf(f, "%s:%d:%d: %s: %s\n", d->file, d->line, d->column,
				d->level == ZT_DIAG_ERROR ? "error" : "warning", d->msg);
		else
			fprintf(f, "%s: %s: %s\n", d->file, d->level == ZT_DIAG_ERROR ? "error" : "warning",
				d->msg);
	}
	if (!errors_only)
		fprintf(f, "%zu error(s), %zu warning(s)\n", zt_policy_src_nerrors(src), nw);
}

/* Loads and checks; NULL (after printing) on a problem the caller reports. */
static zt_policy_src *load(const char *root_ns, const char *const *paths, size_t n)
{
	zt_policy_load_opts o = { .istio_root_ns = root_ns };
	zt_policy_src *src = zt_policy_src_new(&o);

	if (!src) {
		fprintf(stderr, "zt: out of memory\n");
		return NULL;
	}
	for (size_t i = 0; i < n; i++)
		zt_policy_src_add_path(src, paths[i]);
	zt_policy_src_check(src);
	return src;
}

static int policy_check(int argc, char **argv)
{
	const char *root_ns = NULL;
	const struct zt_opt opts[] = {
		{ "istio-root-ns", 1, 0, &root_ns, NULL, NULL },
		{ NULL, 0, 0, NULL, NULL, NULL },
	};
	char *pos[MAX_PATHS];
	size_t npos;
	zt_policy_src *src;
	int r;

	if ((r = zt_cli_parse(argc, argv, opts, pos, MAX_PATHS, &npos, USAGE_CHECK)) != 0)
		return r;
	if (npos == 0)
		return zt_cli_usage(USAGE_CHECK, "give at least one file or folder");
	if (!(src = load(root_ns, (const char *const *)pos, npos)))
		return ZT_EXIT_FAIL;
	print_diags(src, 0, stdout);
	r = zt_policy_src_nerrors(src) ? ZT_EXIT_FAIL : ZT_EXIT_OK;
	zt_policy_src_free(src);
	return r;
}

/* Everything a decoded request points into. */
struct reqbuf {
	zt_policy_request req;
	zt_header headers[MAX_HEADERS];
	zt_str auds[MAX_AUDS];
	char path[ZT_PATH_MAX + 1];
};

static void print_decision(const zt_policy_decision *d, FILE *f)
{
	if (d->by.policy)
		fprintf(f, "%s by %s rule %d\n", d->effect == ZT_POLICY_ALLOW ? "ALLOW" : "DENY",
			d->by.policy, d->by.rule);
	else
		fprintf(f, "DENY: %s\n", d->reason);
	for (size_t i = 0; i < d->naudit; i++)
		fprintf(f, "audit: %s rule %d\n", d->audit[i].policy, d->audit[i].rule);
	for (size_t i = 0; i < d->ndry_run; i++)
		fprintf(f, "dry-run: %s rule %d would have %s\n", d->dry_run[i].policy,
			d->dry_run[i].rule, d->dry_run_effect[i] == ZT_POLICY_DENY ? "denied" : "allowed");
}

static int policy_eval(int argc, char **argv)
{
	const char *root_ns = NULL, *reqfile = NULL, *explain = NULL;
	const char **paths = NULL;
	size_t npaths = 0, npos;
	const struct zt_opt opts[] = {
		{ "policy", 1, 1, NULL, &paths, &npaths },
		{ "request", 1, 0, &reqfile, NULL, NULL },
		{ "explain", 0, 0, &explain, NULL, NULL },
		{ "istio-root-ns", 1, 0, &root_ns, NULL, NULL },
		{ NULL, 0, 0, NULL, NULL, NULL },
	};
	zt_policy_snapshot *snap = NULL;
	zt_policy_src *src = NULL;
	zt_policy_decision d;
	struct reqbuf *rb = NULL;
	json_t *doc = NULL;
	zt_buf text, out;
	zt_err e;
	int r;

	zt_buf_init(&text, REQUEST_MAX_BYTES);
	zt_buf_init(&out, 16u << 20);
	if ((r = zt_cli_parse(argc, argv, opts, NULL, 0, &npos, USAGE_EVAL)) != 0)
		goto done;
	r = ZT_EXIT_USAGE;
	if (!npaths || !reqfile) {
		zt_cli_usage(USAGE_EVAL, "--policy and --request are required");
		goto done;
	}
	if (!(src = load(root_ns, paths, npaths)))
		goto done;
	if (zt_policy_src_nerrors(src)) {
		print_diags(src, 1, stderr);
		fprintf(stderr, "zt: policy eval: the policies have errors; nothing was decided\n");
		goto done;
	}
	if (!(snap = zt_policy_compile(src, &e))) {
		zt_cli_fail(&e, "policy eval", r);
		goto done;
	}
	if (strcmp(reqfile, "-") == 0) {
		char chunk[4096];
		ssize_t n;

		while ((n = read(0, chunk, sizeof chunk)) > 0)
			if (zt_buf_append(&text, chunk, (size_t)n, &e) != 0) {
				zt_cli_fail(&e, "policy eval: standard input", r);
				goto done;
			}
	} else if (zt_file_read(reqfile, REQUEST_MAX_BYTES, &text, &e) != 0) {
		zt_cli_fail(&e, "policy eval", r);
		goto done;
	}
	if (!(doc = zt_json_parse((const char *)text.p, text.len, &e))) {
		zt_cli_fail(&e, "policy eval: request", r);
		goto done;
	}
	if (!(rb = calloc(1, sizeof *rb)) ||
	    zt_policy_request_from_json(doc, &rb->req, rb->headers, MAX_HEADERS, rb->auds, MAX_AUDS,
					rb->path, sizeof rb->path, &e) != 0) {
		zt_cli_fail(&e, "policy eval: request", r);
		goto done;
	}
	if (explain) {
		if (zt_policy_explain(snap, &rb->req, &d, &out, &e) != 0) {
			zt_cli_fail(&e, "policy eval", r);
			goto done;
		}
	} else {
		zt_policy_decide(snap, &rb->req, &d);
	}
	print_decision(&d, stdout);
	if (out.len)
		fwrite(out.p, 1, out.len, stdout);
	r = d.effect == ZT_POLICY_ALLOW ? ZT_EXIT_OK : ZT_EXIT_FAIL;
done:
	json_decref(doc);
	free(rb);
	zt_buf_free(&text, 0);
	zt_buf_free(&out, 0);
	zt_policy_snapshot_unref(snap);
	zt_policy_src_free(src);
	free(paths);
	return r;
}

static int policy_test(int argc, char **argv)
{
	const char *root_ns = NULL;
	const struct zt_opt opts[] = {
		{ "istio-root-ns", 1, 0, &root_ns, NULL, NULL },
		{ NULL, 0, 0, NULL, NULL, NULL },
	};
	char *pos[MAX_PATHS];
	size_t npos, passed = 0, failed = 0, bad = 0;
	zt_policy_snapshot *snap = NULL;
	zt_policy_src *src = NULL;
	struct reqbuf *rb = NULL;
	zt_buf out;
	zt_err e;
	int r;

	zt_buf_init(&out, 16u << 20);
	if ((r = zt_cli_parse(argc, argv, opts, pos, MAX_PATHS, &npos, USAGE_TEST)) != 0)
		return r;
	if (npos == 0)
		return zt_cli_usage(USAGE_TEST, "give the files or folders with policies and PolicyTest documents");
	r = ZT_EXIT_USAGE;
	if (!(src = load(root_ns, (const char *const *)pos, npos)) || !(rb = calloc(1, sizeof *rb)))
		goto done;
	if (zt_policy_src_nerrors(src)) {
		print_diags(src, 1, stderr);
		fprintf(stderr, "zt: policy test: the documents have errors; no test ran\n");
		goto done;
	}
	if (zt_policy_src_ntests(src) == 0) {
		fprintf(stderr, "zt: policy test: no PolicyTest document found\n");
		goto done;
	}
	if (!(snap = zt_policy_compile(src, &e))) {
		zt_cli_fail(&e, "policy test", r);
		goto done;
	}
	for (size_t t = 0; t < zt_policy_src_ntests(src); t++) {
		const char *file;
		json_t *cases = json_object_get(json_object_get(zt_policy_src_test(src, t, &file), "spec"), "cases");
		json_t *c;
		size_t i;

		json_array_foreach(cases, i, c) {
			const char *name = json_string_value(json_object_get(c, "name"));
			const char *expect = json_string_value(json_object_get(c, "expect"));
			const char *want_pol = json_string_value(json_object_get(c, "policy"));
			zt_policy_decision d;
			const char *got;
			int ok;

			if (zt_policy_request_from_json(json_object_get(c, "request"), &rb->req, rb->headers,
							MAX_HEADERS, rb->auds, MAX_AUDS, rb->path,
							sizeof rb->path, &e) != 0) {
				printf("FAIL %s: bad request: [%s] %s (in %s)\n", name, e.rule, e.msg, file);
				failed++;
				bad++;
				continue;
			}
			out.len = 0;
			if (zt_policy_explain(snap, &rb->req, &d, &out, &e) != 0) {
				zt_cli_fail(&e, "policy test", r);
				goto done;
			}
			got = d.effect == ZT_POLICY_ALLOW ? "ALLOW" : "DENY";
			ok = strcmp(got, expect) == 0;
			if (ok && want_pol)
				ok = strcmp(want_pol, "none") == 0 ? d.by.policy == NULL
								   : d.by.policy && strcmp(d.by.policy, want_pol) == 0;
			if (ok) {
				printf("ok %s\n", name);
				passed++;
				continue;
			}
			failed++;
			printf("FAIL %s: expected %s%s%s, got ", name, expect, want_pol ? " by " : "",
			       want_pol ? want_pol : "");
			print_decision(&d, stdout);
			printf("  (in %s)\n", file);
			fwrite(out.p, 1, out.len, stdout);
		}
	}
	printf("%zu passed, %zu failed\n", passed, failed);
	/* a request that cannot be read is bad input, as in zt policy eval */
	r = bad ? ZT_EXIT_USAGE : failed ? ZT_EXIT_FAIL : ZT_EXIT_OK;
done:
	free(rb);
	zt_buf_free(&out, 0);
	zt_policy_snapshot_unref(snap);
	zt_policy_src_free(src);
	return r;
}

int zt_cmd_policy(int argc, char **argv)
{
	static const char usage[] = "zt policy check|eval|test|apply|list|get|history|rollback|delete ...";

	if (argc >= 1) {
		int help = argc > 1 && strcmp(argv[1], "--help") == 0;

		if (strcmp(argv[0], "check") == 0)
			return help ? (printf("usage: %s\n", USAGE_CHECK), 0) : policy_check(argc - 1, argv + 1);
		if (strcmp(argv[0], "eval") == 0)
			return help ? (printf("usage: %s\n", USAGE_EVAL), 0) : policy_eval(argc - 1, argv + 1);
		if (strcmp(argv[0], "test") == 0)
			return help ? (printf("usage: %s\n", USAGE_TEST), 0) : policy_test(argc - 1, argv + 1);
		/* the server's policies */
		static const char *const remote[] = {"apply", "list", "get", "history", "rollback", "delete"};

		for (size_t i = 0; i < sizeof remote / sizeof remote[0]; i++)
			if (strcmp(argv[0], remote[i]) == 0)
				return zt_policy_remote(argv[0], argc - 1, argv + 1);
		if (strcmp(argv[0], "--help") == 0) {
			printf("usage:\n  %s\n  %s\n  %s\n", USAGE_CHECK, USAGE_EVAL, USAGE_TEST);
			char help_arg[] = "--help", *hv[] = {help_arg, NULL};

			zt_policy_remote("apply", 1, hv);
			zt_policy_remote("list", 1, hv);
			return 0;
		}
	}
	return zt_cli_usage(usage, argc ? "unknown subcommand \"policy %.100s\"" : "missing subcommand%.0s",
			    argc ? argv[0] : "");
}
