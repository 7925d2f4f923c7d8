/*
 * cli/cmd_policy_remote.c: the server's policies: zt policy apply|list|get|
 * history|rollback|delete. The local commands (check, eval, test) are in
 * cmd_policy.c.
 */
#include "cli.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define DOC_FILE_MAX (4u << 20)

#define U_APPLY "zt policy apply -f FILE|DIR [-f ...] [--dry-run] " ZT_REMOTE_USAGE
#define U_REMOTE                                                                          \
	"zt policy list --scope ORG[/TENANT[/WORKSPACE]] | get NAME | history NAME |\n"   \
	"       rollback NAME --to VERSION | delete NAME [--version V]   (NAME: SCOPE/POLICY)\n" \
	"       connection: " ZT_REMOTE_USAGE

/* "/v1/policies/a/b/c" with each segment escaped; suffix appended. */
static int policy_path(const char *name, const char *suffix, char *out, size_t cap)
{
	char tmp[1024], *save = NULL, *seg;
	size_t o = (size_t)snprintf(out, cap, "/v1/policies");

	if (!name[0] || strlen(name) >= sizeof tmp || name[strlen(name) - 1] == '/' ||
	    name[0] == '/' || strstr(name, "//"))
		return -1;
	snprintf(tmp, sizeof tmp, "%s", name);
	for (seg = strtok_r(tmp, "/", &save); seg; seg = strtok_r(NULL, "/", &save)) {
		char esc[512];

		if (zt_api_escape(seg, esc, sizeof esc) != 0)
			return -1;
		o += (size_t)snprintf(out + o, o < cap ? cap - o : 0, "/%s", esc);
	}
	o += (size_t)snprintf(out + o, o < cap ? cap - o : 0, "%s", suffix);
	return o < cap ? 0 : -1;
}

/* ---- apply ---- */

struct applied {
	int created, updated, unchanged, failed;
	int dry_run;
	int unauthenticated; /* a 401: every other call would fail the same way */
};

static int apply_doc(zt_api *a, json_t *doc, const char *file, struct applied *st)
{
	json_t *md = json_object_get(doc, "metadata");
	const char *kind = json_string_value(json_object_get(doc, "kind"));
	const char *name = json_string_value(json_object_get(md, "name"));
	const char *scope = json_string_value(json_object_get(md, "scope"));
	char full[1024], path[4096];
	zt_api_resp r;
	zt_err e;

	if (!kind || (strcmp(kind, "AuthorizationPolicy") && strcmp(kind, "RequestAuthentication"))) {
		fprintf(stderr, "zt: policy apply: %s: a %s document is not a policy the server keeps; skipped "
				"(the hierarchy is managed with zt org|tenant|workspace|service)\n",
			file, kind ? kind : "kind-less");
		return 0;
	}
	if (!name || !scope) {
		fprintf(stderr, "zt: policy apply: %s: a policy needs metadata.name and metadata.scope "
				"(the organization, tenant or workspace it is attached to)\n", file);
		st->failed++;
		return -1;
	}
	if (snprintf(full, sizeof full, "%s/%s", scope, name) >= (int)sizeof full ||
	    policy_path(full, "", path, sizeof path) != 0) {
		fprintf(stderr, "zt: policy apply: %s: name or scope too long\n", file);
		st->failed++;
		return -1;
	}
	if (zt_api_call(a, "GET", path, NULL, NULL, 30000, &r, &e) != 0) {
		zt_cli_fail(&e, "policy apply", ZT_EXIT_FAIL);
		st->failed++;
		return -1;
	}
	int exists = r.status == 200;
	json_int_t version = json_integer_value(json_object_get(r.json, "version"));
	int same = exists && json_equal(json_object_get(r.json, "document"), doc);

	if (r.status != 200 && r.status != 404) {
		char what[1100];

		snprintf(what, sizeof what, "policy apply %s", full);
		zt_remote_print_error(what, &r);
		st->unauthenticated = r.status == 401;
		zt_api_resp_free(&r);
		st->failed++;
		return -1;
	}
	zt_api_resp_free(&r);
	if (same) {
		printf("%s unchanged (version %lld)\n", full, (long long)version);
		st->unchanged++;
		return 0;
	}
	if (st->dry_run) {
		printf("%s would be %s\n", full, exists ? "updated" : "created");
		if (exists)
			st->updated++;
		else
			st->created++;
		return 0;
	}
	char ver[32];
	json_t *out;
	int rc;

	snprintf(ver, sizeof ver, "%lld", (long long)version);
	rc = exists ? zt_remote_call(a, full, "PUT", path, doc, ver, &out)
		    : zt_remote_call(a, full, "POST", "/v1/policies", doc, NULL, &out);
	if (rc != ZT_EXIT_OK) {
		st->failed++;
		return -1;
	}
	printf("%s %s (version %lld)\n", full, exists ? "updated" : "created",
	       (long long)json_integer_value(json_object_get(out, "version")));
	json_decref(out);
	if (exists)
		st->updated++;
	else
		st->created++;
	return 0;
}

static int has_ext(const char *n)
{
	const char *dot = strrchr(n, '.');

	return dot && (!strcmp(dot, ".yaml") || !strcmp(dot, ".yml") || !strcmp(dot, ".json"));
}

static int apply_path(zt_api *a, const char *path, int depth, struct applied *st)
{
	struct stat sb;

	if (stat(path, &sb) != 0) {
		fprintf(stderr, "zt: policy apply: %s: no such file or folder\n", path);
		st->failed++;
		return -1;
	}
	if (S_ISDIR(sb.st_mode)) {
		struct dirent **ents;
		int n = depth < 8 ? scandir(path, &ents, NULL, alphasort) : -1;

		if (n < 0) {
			fprintf(stderr, "zt: policy apply: %s: cannot read the folder (or nested too deep)\n", path);
			st->failed++;
			return -1;
		}
		for (int i = 0; i < n; i++) {
			char sub[4096];
			struct stat ss;

			if (ents[i]->d_name[0] != '.' &&
			    snprintf(sub, sizeof sub, "%s/%s", path, ents[i]->d_name) < (int)sizeof sub &&
			    stat(sub, &ss) == 0 && (S_ISDIR(ss.st_mode) || has_ext(ents[i]->d_name)))
				apply_path(a, sub, depth + 1, st);
			free(ents[i]);
		}
		free(ents);
		return 0;
	}
	zt_err e;
	json_t *docs = zt_doc_load_file(path, DOC_FILE_MAX, &e), *d;
	size_t i;

	if (!docs) {
		zt_err_wrap(&e, "%s", path);
		zt_cli_fail(&e, "policy apply", ZT_EXIT_FAIL);
		st->failed++;
		return -1;
	}
	json_array_foreach(docs, i, d) {
		if (st->unauthenticated)
			break;
		if (json_is_null(d))
			continue; /* an empty document ("---" alone), as the local loader takes it */
		if (!json_is_object(d)) {
			fprintf(stderr, "zt: policy apply: %s: document %zu is not a mapping\n", path, i + 1);
			st->failed++;
			continue;
		}
		const char *kind = json_string_value(json_object_get(d, "kind"));
		json_t *items = json_object_get(d, "items"), *it;
		size_t j;

		if (!kind || strcmp(kind, "List")) {
			apply_doc(a, d, path, st);
			continue;
		}
		/* kind: List, as kubectl writes them: its items, one level deep */
		if (!json_is_array(items)) {
			fprintf(stderr, "zt: policy apply: %s: document %zu is a List without items\n", path, i + 1);
			st->failed++;
			continue;
		}
		json_array_foreach(items, j, it) {
			if (st->unauthenticated)
				break;
			if (!json_is_object(it) ||
			    !strcmp(json_string_value(json_object_get(it, "kind")) ?: "", "List")) {
				fprintf(stderr, "zt: policy apply: %s: item %zu of document %zu is not a policy\n",
					path, j + 1, i + 1);
				st->failed++;
				continue;
			}
			apply_doc(a, it, path, st);
		}
	}
	json_decref(docs);
	return 0;
}

static int policy_apply(int argc, char **argv)
{
	struct zt_remote rm = {0};
	const char **files = NULL, *dry = NULL;
	size_t nfiles = 0, npos;
	const struct zt_opt opts[] = {
		ZT_REMOTE_OPTS(rm),
		{"f", 1, 1, NULL, &files, &nfiles},
		{"dry-run", 0, 0, &dry, NULL, NULL},
		{NULL, 0, 0, NULL, NULL, NULL},
	};
	char *pos[1];
	int r;

	if ((r = zt_cli_parse(argc, argv, opts, pos, 0, &npos, U_APPLY)) != 0)
		return r;
	if (!nfiles) {
		free(files);
		return zt_cli_usage(U_APPLY, "give the policy files or folders with -f");
	}
	zt_api *a = zt_remote_open(&rm, "policy apply");
	struct applied st = {.dry_run = dry != NULL};

	if (!a) {
		free(files);
		return ZT_EXIT_FAIL;
	}
	for (size_t i = 0; i < nfiles && !st.unauthenticated; i++)
		apply_path(a, files[i], 0, &st);
	if (st.unauthenticated)
		fprintf(stderr, "zt: policy apply: stopped: the server does not accept the credential\n");
	zt_api_free(a);
	free(files);
	fprintf(stderr, "%d %screated, %d %supdated, %d unchanged, %d failed\n", st.created,
		st.dry_run ? "to be " : "", st.updated, st.dry_run ? "to be " : "", st.unchanged,
		st.failed);
	return st.failed ? ZT_EXIT_FAIL : ZT_EXIT_OK;
}

/* ---- list, get, history, rollback, delete ---- */

/*
 * GETs every page of a policy's history (path: .../history), newest first,
 * following "next" (a version) with ?before=, into one array in *items
 * (caller frees). ZT_EXIT_OK, or the failure printed.
 */
static int fetch_history(zt_api *a, const char *what, const char *path, json_t **items)
{
	json_t *all = json_array(), *page;
	json_int_t before = 0;
	char p[4200];
	int r;

	*items = NULL;
	if (!all) {
		fprintf(stderr, "zt: %s: out of memory\n", what);
		return ZT_EXIT_FAIL;
	}
	for (;;) {
		if (before)
			snprintf(p, sizeof p, "%s?limit=1000&before=%lld", path, (long long)before);
		else
			snprintf(p, sizeof p, "%s?limit=1000", path);
		if ((r = zt_remote_call(a, what, "GET", p, NULL, NULL, &page)) != ZT_EXIT_OK) {
			json_decref(all);
			return r;
		}
		json_t *got = json_object_get(page, "items"), *next = json_object_get(page, "next");

		if (!json_is_array(got) || json_array_extend(all, got) != 0) {
			json_decref(page);
			json_decref(all);
			fprintf(stderr, "zt: %s: the server's answer has no \"items\" list\n", what);
			return ZT_EXIT_FAIL;
		}
		if (!next) {
			json_decref(page);
			break;
		}
		/* versions go down, newest first: a cursor that does not would go round for ever */
		json_int_t v = json_is_integer(next) ? json_integer_value(next) : 0;

		json_decref(page);
		if (v <= 0 || (before && v >= before)) {
			fprintf(stderr, "zt: %s: the server's \"next\" does not move past version %lld\n",
				what, (long long)before);
			json_decref(all);
			return ZT_EXIT_FAIL;
		}
		before = v;
	}
	*items = all;
	return ZT_EXIT_OK;
}

static int policy_other(const char *sub, int argc, char **argv)
{
	struct zt_remote rm = {0};
	const char *scope = NULL, *to = NULL, *version = NULL;
	const struct zt_opt opts[] = {
		ZT_REMOTE_OPTS(rm),
		{"scope", 1, 0, &scope, NULL, NULL},
		{"to", 1, 0, &to, NULL, NULL},
		{"version", 1, 0, &version, NULL, NULL},
		{NULL, 0, 0, NULL, NULL, NULL},
	};
	char *pos[1], path[4096], what[64], esc[1024];
	size_t npos;
	int r, list = !strcmp(sub, "list");

	if ((r = zt_cli_parse(argc, argv, opts, pos, 1, &npos, U_REMOTE)) != 0)
		return r;
	snprintf(what, sizeof what, "policy %s", sub);
	if (list ? (npos != 0 || !scope) : npos != 1)
		return zt_cli_usage(U_REMOTE, list ? "list needs --scope" : "give the policy's name (SCOPE/NAME)");
	if ((scope && !list) || (to && strcmp(sub, "rollback")) ||
	    (version && strcmp(sub, "rollback") && strcmp(sub, "delete")))
		return zt_cli_usage(U_REMOTE, "%s does not take that option", what);
	if (!strcmp(sub, "rollback") && (!to || strspn(to, "0123456789") != strlen(to) || !*to))
		return zt_cli_usage(U_REMOTE, "rollback needs --to VERSION (a number)");
	if (list) {
		if (zt_api_escape(scope, esc, sizeof esc) != 0)
			return zt_cli_usage(U_REMOTE, "--scope is too long");
		snprintf(path, sizeof path, "scope=%s", esc);
	} else if (policy_path(pos[0], !strcmp(sub, "history") ? "/history"
				       : !strcmp(sub, "rollback") ? "/rollback" : "",
			       path, sizeof path) != 0) {
		return zt_cli_usage(U_REMOTE, "\"%.200s\" is not a policy name", pos[0]);
	}
	zt_api *a = zt_remote_open(&rm, what);
	char ver[32];

	if (!a)
		return ZT_EXIT_FAIL;
	if (list || !strcmp(sub, "history")) {
		/* every page, printed as one {"items": [...]} */
		json_t *all;

		r = list ? zt_remote_fetch_all(a, what, "/v1/policies", path, &all)
			 : fetch_history(a, what, path, &all);
		if (r == ZT_EXIT_OK) {
			json_t *out = json_pack("{s:o}", "items", all);

			zt_remote_print(out);
			json_decref(out);
		}
		goto out;
	}
	if (!strcmp(sub, "get")) {
		r = zt_remote_call(a, what, "GET", path, NULL, NULL, NULL);
		goto out;
	}
	if (!version) {
		/* the version now: the write still fails if it moves before ours lands */
		char cur[4096];
		json_t *j;

		policy_path(pos[0], "", cur, sizeof cur);
		if ((r = zt_remote_call(a, what, "GET", cur, NULL, NULL, &j)) != ZT_EXIT_OK)
			goto out;
		snprintf(ver, sizeof ver, "%lld", (long long)json_integer_value(json_object_get(j, "version")));
		json_decref(j);
		version = ver;
	}
	if (!strcmp(sub, "rollback")) {
		json_t *b = json_pack("{s:I}", "to", (json_int_t)strtoll(to, NULL, 10));

		r = zt_remote_call(a, what, "POST", path, b, version, NULL);
		json_decref(b);
	} else {
		r = zt_remote_call(a, what, "DELETE", path, NULL, version, NULL);
	}
out:
	zt_api_free(a);
	return r;
}

int zt_policy_remote(const char *sub, int argc, char **argv)
{
	if (argc > 0 && !strcmp(argv[0], "--help")) {
		printf("usage: %s\n", !strcmp(sub, "apply") ? U_APPLY : U_REMOTE);
		return ZT_EXIT_OK;
	}
	if (!strcmp(sub, "apply"))
		return policy_apply(argc, argv);
	return policy_other(sub, argc, argv);
}
