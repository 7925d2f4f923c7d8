/* cli/remote.c: what the commands that call the server share. */
#include "cli.h"

#include <stdio.h>
#include <string.h>

#define CALL_TIMEOUT_MS 30000

zt_api *zt_remote_open(const struct zt_remote *r, const char *what)
{
	zt_api_config c;
	zt_api *a;
	zt_err e;

	memset(&c, 0, sizeof c);
#define TAKE(field, v)                                                                 \
	do {                                                                           \
		if ((v) && snprintf(c.field, sizeof c.field, "%s", (v)) >= (int)sizeof c.field) { \
			fprintf(stderr, "zt: %s: --%s is too long\n", what, #field);  \
			return NULL;                                                   \
		}                                                                      \
	} while (0)
	TAKE(server, r->server);
	TAKE(token, r->token);
	TAKE(ca_file, r->ca_file);
	TAKE(cert, r->cert);
	TAKE(key, r->key);
#undef TAKE
	if (zt_api_config_resolve(&c, &e) != 0) {
		zt_wipe(c.token, sizeof c.token);
		zt_cli_fail(&e, what, ZT_EXIT_FAIL);
		return NULL;
	}
	if (!c.token[0] && !c.cert[0]) {
		fprintf(stderr, "zt: %s: no credential: give --token (or set ZT_TOKEN, or token: in the config file), or --cert and --key\n", what);
		return NULL;
	}
	a = zt_api_new(&c, &e);
	zt_wipe(c.token, sizeof c.token);
	if (!a)
		zt_cli_fail(&e, what, ZT_EXIT_FAIL);
	return a;
}

void zt_remote_print(const json_t *j)
{
	char *s = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER);

	if (s) {
		puts(s);
		free(s);
	}
}

void zt_remote_print_error(const char *what, const zt_api_resp *r)
{
	const char *code = json_string_value(json_object_get(json_object_get(r->json, "error"), "code"));

	fprintf(stderr, "zt: %s: HTTP %d%s%s: %s", what, r->status, code ? " " : "", code ? code : "",
		zt_api_resp_message(r));
	if (r->request_id[0])
		fprintf(stderr, " (request %s)", r->request_id);
	fputc('\n', stderr);
	/* the compiler's findings, when a policy was refused */
	json_t *diags = json_object_get(json_object_get(r->json, "error"), "diagnostics");
	size_t i;
	json_t *d;

	json_array_foreach(diags, i, d) {
		fprintf(stderr, "  %s: %s: %s\n", json_string_value(json_object_get(d, "level")) ?: "error",
			json_string_value(json_object_get(d, "in")) ?: "",
			json_string_value(json_object_get(d, "message")) ?: "");
	}
}

int zt_remote_call(zt_api *a, const char *what, const char *method, const char *path,
		   const json_t *body, const char *if_match, json_t **out)
{
	zt_api_resp r;
	zt_err e;

	if (out)
		*out = NULL;
	if (zt_api_call(a, method, path, body, if_match, CALL_TIMEOUT_MS, &r, &e) != 0)
		return zt_cli_fail(&e, what, ZT_EXIT_FAIL);
	if (r.status >= 300) {
		zt_remote_print_error(what, &r);
		zt_api_resp_free(&r);
		return ZT_EXIT_FAIL;
	}
	if (out) {
		*out = r.json ? json_incref(r.json) : json_object();
	} else if (r.json) {
		zt_remote_print(r.json);
	} else if (r.body.len) {
		fwrite(r.body.p, 1, r.body.len, stdout);
	}
	zt_api_resp_free(&r);
	return ZT_EXIT_OK;
}

int zt_remote_fetch_all(zt_api *a, const char *what, const char *path, const char *query,
			json_t **items)
{
	json_t *all = json_array(), *page;
	char p[4096], after[1024] = "";
	int r;

	*items = NULL;
	if (!all) {
		fprintf(stderr, "zt: %s: out of memory\n", what);
		return ZT_EXIT_FAIL;
	}
	for (;;) {
		char esc[3072];

		if (zt_api_escape(after, esc, sizeof esc) != 0 ||
		    snprintf(p, sizeof p, "%s?limit=1000%s%s%s%s", path, query && *query ? "&" : "",
			     query ? query : "", after[0] ? "&after=" : "", after[0] ? esc : "") >=
			    (int)sizeof p) {
			json_decref(all);
			fprintf(stderr, "zt: %s: name too long\n", what);
			return ZT_EXIT_FAIL;
		}
		if ((r = zt_remote_call(a, what, "GET", p, NULL, NULL, &page)) != ZT_EXIT_OK) {
			json_decref(all);
			return r;
		}
		json_t *got = json_object_get(page, "items");
		const char *next = json_string_value(json_object_get(page, "next"));

		if (!json_is_array(got) || json_array_extend(all, got) != 0) {
			json_decref(page);
			json_decref(all);
			fprintf(stderr, "zt: %s: the server's answer has no \"items\" list\n", what);
			return ZT_EXIT_FAIL;
		}
		if (!next || !*next) {
			json_decref(page);
			break;
		}
		/* lists are in name order: a cursor that does not move on would go round for ever */
		if (strlen(next) >= sizeof after || strcmp(next, after) <= 0) {
			fprintf(stderr, "zt: %s: the server's \"next\" (%.100s) does not move past %.100s\n",
				what, next, after[0] ? after : "the start");
			json_decref(page);
			json_decref(all);
			return ZT_EXIT_FAIL;
		}
		snprintf(after, sizeof after, "%s", next);
		json_decref(page);
	}
	*items = all;
	return ZT_EXIT_OK;
}
