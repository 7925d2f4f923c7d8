/* policy/request.c: the request JSON of `zt policy eval` and PolicyTest. */
#include "policy_int.h"

#include <string.h>

static int str_field(json_t *obj, const char *key, zt_str *out, const char *where, zt_err *e)
{
	json_t *v = json_object_get(obj, key);

	out->p = NULL;
	out->len = 0;
	if (!v || json_is_null(v))
		return 0;
	if (!json_is_string(v))
		return zt_err_rule(e, ZT_EINVAL, "request-format", "%s.%s must be a string", where, key);
	out->p = json_string_value(v);
	out->len = json_string_length(v);
	return 0;
}

static int only_keys(json_t *obj, const char *const *keys, const char *where, zt_err *e)
{
	const char *k;
	json_t *v;

	if (obj && !json_is_object(obj))
		return zt_err_rule(e, ZT_EINVAL, "request-format", "%s must be an object", where);
	json_object_foreach(obj, k, v) {
		size_t i;

		for (i = 0; keys[i] && strcmp(keys[i], k) != 0; i++)
			;
		if (!keys[i])
			return zt_err_rule(e, ZT_EINVAL, "request-format",
					   "unknown field %s.%s (see the request schema in docs/policy.md)",
					   where, k);
	}
	return 0;
}

int zt_policy_request_from_json(json_t *doc, zt_policy_request *req, zt_header *headers,
				size_t maxheaders, zt_str *auds, size_t maxauds, char *pathbuf,
				size_t pathbufsz, zt_err *e)
{
	static const char *const top[] = { "source", "destination", "request", "connection", NULL };
	static const char *const src_keys[] = { "principal", "ip", NULL };
	static const char *const dst_keys[] = { "service", "port", NULL };
	static const char *const req_keys[] = { "method", "path", "host", "headers", "auth", NULL };
	static const char *const auth_keys[] = { "principal", "audiences", "presenter", "claims", NULL };
	static const char *const conn_keys[] = { "sni", NULL };
	json_t *src = json_object_get(doc, "source"), *dst = json_object_get(doc, "destination");
	json_t *rq = json_object_get(doc, "request"), *conn = json_object_get(doc, "connection");
	json_t *port, *auth, *hdrs, *v;
	int r;

	memset(req, 0, sizeof *req);
	if (!json_is_object(doc))
		return zt_err_rule(e, ZT_EINVAL, "request-format", "a request is a JSON object");
	if ((r = only_keys(doc, top, "request document", e)) != 0 ||
	    (r = only_keys(src, src_keys, "source", e)) != 0 ||
	    (r = only_keys(dst, dst_keys, "destination", e)) != 0 ||
	    (r = only_keys(rq, req_keys, "request", e)) != 0 ||
	    (r = only_keys(conn, conn_keys, "connection", e)) != 0)
		return r;
	if ((r = str_field(src, "principal", &req->source_principal, "source", e)) != 0 ||
	    (r = str_field(src, "ip", &req->source_ip, "source", e)) != 0 ||
	    (r = str_field(dst, "service", &req->dest_service, "destination", e)) != 0 ||
	    (r = str_field(conn, "sni", &req->sni, "connection", e)) != 0)
		return r;
	if (!req->dest_service.len)
		return zt_err_rule(e, ZT_EINVAL, "request-format",
				   "destination.service is required: the SPIFFE ID of the service called");
	if (req->source_ip.len) {
		struct cidr c;

		if (cidr_parse(req->source_ip.p, req->source_ip.len, &c, 0) != 0)
			return zt_err_rule(e, ZT_EINVAL, "request-format",
					   "source.ip \"%.60s\" is not an IP address", req->source_ip.p);
	}
	port = json_object_get(dst, "port");
	if (port) {
		if (!json_is_integer(port) || json_integer_value(port) < 1 ||
		    json_integer_value(port) > 65535)
			return zt_err_rule(e, ZT_EINVAL, "request-format",
					   "destination.port is a number from 1 to 65535");
		req->dest_port = (int)json_integer_value(port);
	}
	if (!rq)
		return 0; /* a connection, without HTTP */
	req->has_http = 1;
	if ((r = str_field(rq, "method", &req->method, "request", e)) != 0 ||
	    (r = str_field(rq, "host", &req->host, "request", e)) != 0)
		return r;
	{
		zt_str raw;
		size_t plen;

		if ((r = str_field(rq, "path", &raw, "request", e)) != 0)
			return r;
		if (raw.len) {
			/* one normalization, the same the proxy applies */
			if ((r = zt_path_normalize(raw.p, raw.len, pathbuf, pathbufsz, &plen, e)) != 0)
				return r;
			pathbuf[plen] = '\0'; /* the query plays no part in matching */
			req->path.p = pathbuf;
			req->path.len = plen;
		}
	}
	hdrs = json_object_get(rq, "headers");
	if (hdrs) {
		const char *k;

		if (!json_is_object(hdrs))
			return zt_err_rule(e, ZT_EINVAL, "request-format",
					   "request.headers maps names to a string or a list of strings");
		json_object_foreach(hdrs, k, v) {
			json_t *one;
			size_t i, n = json_is_array(v) ? json_array_size(v) : 1;

			for (i = 0; i < n; i++) {
				one = json_is_array(v) ? json_array_get(v, i) : v;
				if (!json_is_string(one))
					return zt_err_rule(e, ZT_EINVAL, "request-format",
							   "request.headers.%s must be a string or a list of strings", k);
				if (req->nheaders == maxheaders)
					return zt_err_rule(e, ZT_ELIMIT, "request-format",
							   "more than %zu header values", maxheaders);
				headers[req->nheaders].name = (zt_str){ k, strlen(k) };
				headers[req->nheaders].value = (zt_str){ json_string_value(one), json_string_length(one) };
				req->nheaders++;
			}
		}
		req->headers = headers;
	}
	auth = json_object_get(rq, "auth");
	if (auth) {
		json_t *a;
		size_t i;

		if ((r = only_keys(auth, auth_keys, "request.auth", e)) != 0 ||
		    (r = str_field(auth, "principal", &req->auth_principal, "request.auth", e)) != 0 ||
		    (r = str_field(auth, "presenter", &req->auth_presenter, "request.auth", e)) != 0)
			return r;
		a = json_object_get(auth, "audiences");
		if (a && !json_is_array(a))
			return zt_err_rule(e, ZT_EINVAL, "request-format", "request.auth.audiences is a list of strings");
		json_array_foreach(a, i, v) {
			if (!json_is_string(v) || req->naudiences == maxauds)
				return zt_err_rule(e, ZT_EINVAL, "request-format",
						   "request.auth.audiences is a list of at most %zu strings", maxauds);
			auds[req->naudiences++] = (zt_str){ json_string_value(v), json_string_length(v) };
		}
		req->audiences = auds;
		req->claims = json_object_get(auth, "claims");
		if (req->claims && !json_is_object(req->claims))
			return zt_err_rule(e, ZT_EINVAL, "request-format", "request.auth.claims is an object");
	}
	return 0;
}
