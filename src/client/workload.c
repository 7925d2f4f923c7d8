/*
 * client/workload.c: the agent's Workload API, as its callers use it
 * (docs/workload-api.md): fetching the SVIDs this process is entitled to,
 * waiting for rotations, and writing them as files.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/client.h"
#include "net/httpc.h"

#define ANSWER_MAX (4u << 20)

void zt_wl_answer_free(zt_wl_answer *a)
{
	for (size_t i = 0; i < a->n; i++) {
		if (a->svids[i].key)
			zt_wipe(a->svids[i].key, strlen(a->svids[i].key));
		free(a->svids[i].key);
		free(a->svids[i].chain);
	}
	free(a->svids);
	free(a->bundle);
	memset(a, 0, sizeof *a);
}

/*
 * One GET of the Workload API: *status and the answer parsed as a JSON
 * object (caller decrefs); the raw answer is wiped (it may hold keys or
 * tokens). Negative when the agent cannot be reached or answers something
 * that is not JSON.
 */
static int wl_get(const char *socket_path, const char *target, int timeout_ms, int cancel_fd, int *status,
		  json_t **out, zt_err *e)
{
	static const char *const hdrs[] = {"X-Zt-Workload", "true", NULL};
	char url[PATH_MAX + 8];
	zt_httpc_resp hr;
	int r;

	*out = NULL;
	if (snprintf(url, sizeof url, "unix:%s", socket_path) >= (int)sizeof url)
		return zt_err_set(e, ZT_EINVAL, "socket path too long");
	zt_httpc_opts o = {.url = url, .max_body = ANSWER_MAX};
	zt_httpc *c = zt_httpc_new(&o, e);

	if (!c)
		return -ZT_EINVAL;
	zt_httpc_set_cancel(c, cancel_fd);
	r = zt_httpc_do(c, "GET", target, hdrs, NULL, 0, timeout_ms, &hr, e);
	zt_httpc_free(c);
	if (r != 0)
		return zt_err_wrap(e, "the agent at %s", socket_path);
	*status = hr.status;
	*out = json_loadb((const char *)hr.body.p, hr.body.len, JSON_REJECT_DUPLICATES, NULL);
	zt_wipe(hr.body.p, hr.body.len);
	zt_httpc_resp_free(&hr);
	if (!json_is_object(*out)) {
		json_decref(*out);
		*out = NULL;
		return zt_err_set(e, ZT_EPARSE, "the agent's answer (HTTP %d) is not JSON", *status);
	}
	return 0;
}

int zt_workload_get(const char *socket_path, const char *target, int *status, json_t **out, zt_err *e)
{
	return wl_get(socket_path, target, 30000, -1, status, out, e);
}

int zt_workload_fetch(const char *socket_path, uint64_t since, int timeout_s, int cancel_fd,
		      zt_wl_answer *a, zt_err *e)
{
	char path[96];
	json_t *j = NULL;
	int r;

	memset(a, 0, sizeof *a);
	if (since)
		snprintf(path, sizeof path, "/v1/svids?since=%llu&timeout=%d", (unsigned long long)since,
			 timeout_s > 0 && timeout_s <= 300 ? timeout_s : 30);
	else
		snprintf(path, sizeof path, "/v1/svids");
	if ((r = wl_get(socket_path, path, (since ? timeout_s + 15 : 15) * 1000, cancel_fd, &a->status, &j, e)) != 0)
		return r;
	if (a->status != 200) {
		const char *m = json_string_value(json_object_get(json_object_get(j, "error"), "message"));

		snprintf(a->message, sizeof a->message, "%s", m ? m : "no message");
		json_decref(j);
		return 0;
	}
	json_t *list = json_object_get(j, "svids"), *sv;
	const char *bundle = json_string_value(json_object_get(j, "bundle"));
	size_t i;

	a->generation = (uint64_t)json_integer_value(json_object_get(j, "generation"));
	if (!json_is_array(list) || !bundle || !(a->bundle = strdup(bundle)) ||
	    !(a->svids = calloc(json_array_size(list) + 1, sizeof *a->svids))) {
		json_decref(j);
		zt_wl_answer_free(a);
		return zt_err_set(e, ZT_EPARSE, "the agent's answer has no svids or bundle");
	}
	json_array_foreach(list, i, sv) {
		const char *id = json_string_value(json_object_get(sv, "id"));
		const char *chain = json_string_value(json_object_get(sv, "chain"));
		const char *key = json_string_value(json_object_get(sv, "key"));
		const char *na = json_string_value(json_object_get(sv, "not_after"));
		zt_wl_svid *s = &a->svids[a->n];

		if (!id || !chain || !key || strlen(id) >= sizeof s->id)
			continue;
		snprintf(s->id, sizeof s->id, "%s", id);
		snprintf(s->not_after, sizeof s->not_after, "%s", na ? na : "");
		s->chain = strdup(chain);
		s->key = strdup(key);
		a->n++;
		if (!s->chain || !s->key) {
			json_decref(j);
			zt_wl_answer_free(a);
			return zt_err_set(e, ZT_ENOMEM, "out of memory");
		}
	}
	/* the keys inside the parsed JSON: wiped before it is freed */
	json_array_foreach(list, i, sv) {
		json_t *k = json_object_get(sv, "key");

		if (json_is_string(k))
			zt_wipe((char *)(uintptr_t)json_string_value(k), json_string_length(k));
	}
	json_decref(j);
	return 0;
}

int zt_workload_write(const char *dir, const zt_wl_svid *s, const char *bundle, zt_err *e)
{
	char p[PATH_MAX], tmp[PATH_MAX + 8];
	const struct {
		const char *name, *data;
	} files[] = {{"svid.key", s->key}, {"svid.pem", s->chain}, {"bundle.pem", bundle}};

	for (int pass = 0; pass < 2; pass++)
		for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
			if (!files[i].data)
				continue;
			if (zt_path_join(p, sizeof p, e, "%s/%s", dir, files[i].name) != 0)
				return -ZT_EINVAL;
			snprintf(tmp, sizeof tmp, "%s.new", p);
			if (pass == 0 &&
			    zt_file_write(tmp, files[i].data, strlen(files[i].data), 0600, 0, e) != 0)
				return -ZT_EIO;
			if (pass == 1 && rename(tmp, p) != 0)
				return zt_err_set(e, ZT_EIO, "cannot put %s in place: %s", p, strerror(errno));
		}
	return 0;
}

