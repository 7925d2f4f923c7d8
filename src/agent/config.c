/*
 * agent/config.c: the agent's configuration file (docs/agent.md).
 *
 * apiVersion: zt.dev/v1
 * kind: AgentConfig
 * spec:
 *   server: https://zt-server:8443
 *   trustBundle: /etc/zt/bundle.pem     # the server's trust bundle, for the first contact
 *   joinTokenFile: /etc/zt/join-token   # or joinToken: ztj_...; needed until the node joined
 *   dataDir: /var/lib/zt/agent          # the agent's key (sealed with a KEK when one is set),
 *                                       # its SVID and the bundle
 *   socket: /run/zt/agent.sock          # the Workload API
 *   admin: {listen: "127.0.0.1:15100"}  # GET /metrics, GET /ready; optional
 */
#include <stdio.h>
#include <string.h>

#include "agent/agent_int.h"
#include "net/httpc.h"

#define DOC "docs/agent.md"

static int copy(char *dst, size_t cap, const char *v, const char *what, zt_err *e)
{
	if (strlen(v) >= cap)
		return zt_err_set(e, ZT_EINVAL, "%s is longer than %zu bytes", what, cap - 1);
	snprintf(dst, cap, "%s", v);
	return 0;
}

int ag_config_from_docs(struct ag_config *c, json_t *docs, zt_err *e)
{
	static const char *const top[] = {"apiVersion", "kind", "metadata", "spec", NULL};
	static const char *const spec_keys[] = {"server", "trustBundle", "joinToken", "joinTokenFile",
						"dataDir", "socket", "admin", NULL};
	static const char *const admin_keys[] = {"listen", NULL};
	json_t *doc = json_array_get(docs, 0), *spec, *adm;
	const char *v, *tok = NULL, *tokf = NULL;
	int r;

	memset(c, 0, sizeof *c);
	if (json_array_size(docs) != 1 || !json_is_object(doc) ||
	    !json_is_string(json_object_get(doc, "kind")) ||
	    strcmp(json_string_value(json_object_get(doc, "kind")), "AgentConfig"))
		return zt_err_set(e, ZT_EINVAL, "expected one document of kind AgentConfig");
	spec = json_object_get(doc, "spec");
	if ((r = zt_doc_only_keys(doc, top, "the document", DOC, e)) != 0 ||
	    (r = zt_doc_only_keys(spec, spec_keys, "spec", DOC, e)) != 0)
		return r;
	if ((r = zt_doc_get_str(spec, "server", &v, 1, "spec", e)) != 0 ||
	    (r = copy(c->server, sizeof c->server, v, "spec.server", e)) != 0)
		return r;
	if (strncmp(c->server, "https://", 8) || zt_httpc_url_check(c->server, e) != 0)
		return zt_err_set(e, ZT_EINVAL, "spec.server must be the server's https://HOST:PORT");
	if ((r = zt_doc_get_str(spec, "trustBundle", &v, 1, "spec", e)) != 0 ||
	    (r = copy(c->trust_bundle, sizeof c->trust_bundle, v, "spec.trustBundle", e)) != 0 ||
	    (r = zt_doc_get_str(spec, "dataDir", &v, 1, "spec", e)) != 0 ||
	    (r = copy(c->data_dir, sizeof c->data_dir, v, "spec.dataDir", e)) != 0 ||
	    (r = zt_doc_get_str(spec, "socket", &v, 1, "spec", e)) != 0 ||
	    (r = copy(c->socket, sizeof c->socket, v, "spec.socket", e)) != 0)
		return r;
	if (c->socket[0] != '/')
		return zt_err_set(e, ZT_EINVAL, "spec.socket must be an absolute path");
	if ((r = zt_doc_get_str(spec, "joinToken", &tok, 0, "spec", e)) != 0 ||
	    (r = zt_doc_get_str(spec, "joinTokenFile", &tokf, 0, "spec", e)) != 0)
		return r;
	if (tok && tokf)
		return zt_err_set(e, ZT_EINVAL, "give spec.joinToken or spec.joinTokenFile, not both");
	if (tokf) {
		zt_buf b;

		zt_buf_init(&b, 4096);
		if (zt_file_read(tokf, 4096, &b, e) != 0) {
			zt_buf_free(&b, 1);
			return zt_err_wrap(e, "spec.joinTokenFile");
		}
		while (b.len && (b.p[b.len - 1] == '\n' || b.p[b.len - 1] == '\r' || b.p[b.len - 1] == ' ' ||
				 b.p[b.len - 1] == '\t'))
			b.len--;
		if (b.len == 0 || memchr(b.p, '\0', b.len)) {
			zt_buf_free(&b, 1);
			return zt_err_set(e, ZT_EINVAL, "spec.joinTokenFile %s holds no join token", tokf);
		}
		if (b.len >= sizeof c->join_token) {
			zt_buf_free(&b, 1);
			return zt_err_set(e, ZT_EINVAL, "spec.joinTokenFile does not hold a join token");
		}
		memcpy(c->join_token, b.p, b.len);
		c->join_token[b.len] = '\0';
		zt_buf_free(&b, 1);
	} else if (tok && (r = copy(c->join_token, sizeof c->join_token, tok, "spec.joinToken", e)) != 0) {
		return r;
	}
	if (c->join_token[0] && strncmp(c->join_token, "ztj_", 4))
		return zt_err_set(e, ZT_EINVAL, "the join token must be a zt join token (ztj_...)");
	adm = json_object_get(spec, "admin");
	if (adm) {
		if ((r = zt_doc_only_keys(adm, admin_keys, "spec.admin", DOC, e)) != 0 ||
		    (r = zt_doc_get_str(adm, "listen", &v, 1, "spec.admin", e)) != 0 ||
		    (r = copy(c->admin, sizeof c->admin, v, "spec.admin.listen", e)) != 0)
			return r;
	}
	return 0;
}

int ag_config_load(struct ag_config *c, const char *path, zt_err *e)
{
	json_t *docs;
	int r;

	memset(c, 0, sizeof *c);
	if (!(docs = zt_doc_load_file(path, 1u << 20, e)))
		return -ZT_EPARSE;
	r = ag_config_from_docs(c, docs, e);
	if (r != 0)
		zt_err_wrap(e, "%s", path);
	json_decref(docs);
	return r;
}
