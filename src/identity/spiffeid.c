/*
 * identity/spiffeid.c: SPIFFE IDs, exactly as the SPIFFE ID spec says.
 *
 *   spiffe://<trust-domain>[/<segment>]*
 *   trust domain: [a-z0-9._-], 1..255 bytes (SPIFFE-ID 2.1, 2.3)
 *   segment:      [a-zA-Z0-9._-], not empty, not "." or ".." (SPIFFE-ID 2.2)
 *   no trailing slash, query, fragment, port, user info or percent-encoding;
 *   at most 2048 bytes in all (SPIFFE-ID 2.3).
 */
#include "identity.h"

#include <stdio.h>
#include <string.h>

#define SCHEME "spiffe://"
#define SCHEME_LEN 9

static int td_char(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' ||
	       c == '-' || c == '_';
}

static int path_char(unsigned char c)
{
	return td_char(c) || (c >= 'A' && c <= 'Z');
}

/* The rule for a character that is never allowed, where it has a name. */
static int bad_char(zt_err *e, const char *q, unsigned char c, int in_td)
{
	switch (c) {
	case '%':
		return zt_err_rule(e, ZT_EINVAL, "id-percent",
				   "invalid SPIFFE ID \"%s\": percent-encoding is not allowed; use only letters, digits, '.', '-' and '_' (SPIFFE-ID 2.1, 2.2)", q);
	case '?':
		return zt_err_rule(e, ZT_EINVAL, "id-query",
				   "invalid SPIFFE ID \"%s\": a query ('?') is not allowed (SPIFFE-ID 2)", q);
	case '#':
		return zt_err_rule(e, ZT_EINVAL, "id-fragment",
				   "invalid SPIFFE ID \"%s\": a fragment ('#') is not allowed (SPIFFE-ID 2)", q);
	}
	if (in_td) {
		if (c == '@')
			return zt_err_rule(e, ZT_EINVAL, "id-userinfo",
					   "invalid SPIFFE ID \"%s\": user info ('user@') is not allowed in the trust domain (SPIFFE-ID 2.1)", q);
		if (c == ':')
			return zt_err_rule(e, ZT_EINVAL, "id-port",
					   "invalid SPIFFE ID \"%s\": a port (':') is not allowed in the trust domain (SPIFFE-ID 2.1)", q);
		if (c >= 'A' && c <= 'Z')
			return zt_err_rule(e, ZT_EINVAL, "id-td-case",
					   "invalid SPIFFE ID \"%s\": the trust domain must be lowercase (SPIFFE-ID 2.1)", q);
		return zt_err_rule(e, ZT_EINVAL, "id-td-char",
				   "invalid SPIFFE ID \"%s\": the trust domain may hold only a-z, 0-9, '.', '-' and '_' (SPIFFE-ID 2.1)", q);
	}
	return zt_err_rule(e, ZT_EINVAL, "id-path-char",
			   "invalid SPIFFE ID \"%s\": a path segment may hold only a-z, A-Z, 0-9, '.', '-' and '_' (SPIFFE-ID 2.2)", q);
}

static int check_td(const char *s, size_t len, const char *q, zt_err *e)
{
	if (len == 0)
		return zt_err_rule(e, ZT_EINVAL, "id-td-empty",
				   "invalid SPIFFE ID \"%s\": the trust domain is empty (SPIFFE-ID 2)", q);
	for (size_t i = 0; i < len; i++)
		if (!td_char((unsigned char)s[i]))
			return bad_char(e, q, (unsigned char)s[i], 1);
	if (len > ZT_TD_MAX)
		return zt_err_rule(e, ZT_EINVAL, "id-td-length",
				   "invalid SPIFFE ID \"%s\": the trust domain is %zu bytes; at most %d are allowed (SPIFFE-ID 2.3)",
				   q, len, ZT_TD_MAX);
	return 0;
}

int zt_id_parse(const char *s, size_t len, zt_spiffe_id *out, zt_err *e)
{
	char q[200];
	size_t i, td_end, seg;
	int r;

	out->str[0] = '\0';
	out->len = out->td_len = 0;
	zt_quote(q, sizeof q, s, len);
	if (len == 0)
		return zt_err_rule(e, ZT_EINVAL, "id-empty", "the SPIFFE ID is empty");
	if (len > ZT_ID_MAX)
		return zt_err_rule(e, ZT_EINVAL, "id-too-long",
				   "invalid SPIFFE ID \"%s\": %zu bytes; at most %d are allowed (SPIFFE-ID 2.3)",
				   q, len, ZT_ID_MAX);
	if (len < SCHEME_LEN || memcmp(s, SCHEME, SCHEME_LEN) != 0)
		return zt_err_rule(e, ZT_EINVAL, "id-scheme",
				   "invalid SPIFFE ID \"%s\": it must begin with \"spiffe://\" in lowercase (SPIFFE-ID 2)", q);
	for (td_end = SCHEME_LEN; td_end < len && s[td_end] != '/'; td_end++)
		;
	if ((r = check_td(s + SCHEME_LEN, td_end - SCHEME_LEN, q, e)) != 0)
		return r;
	/* path: ("/" segment)*, each segment non-empty and not a dot segment */
	for (i = td_end; i < len;) {
		seg = ++i; /* skip '/' */
		while (i < len && s[i] != '/') {
			if (!path_char((unsigned char)s[i]))
				return bad_char(e, q, (unsigned char)s[i], 0);
			i++;
		}
		if (i == seg) {
			if (i == len)
				return zt_err_rule(e, ZT_EINVAL, "id-trailing-slash",
						   "invalid SPIFFE ID \"%s\": it must not end with '/' (SPIFFE-ID 2.2)", q);
			return zt_err_rule(e, ZT_EINVAL, "id-path-empty-segment",
					   "invalid SPIFFE ID \"%s\": the path has an empty segment ('//') (SPIFFE-ID 2.2)", q);
		}
		if ((i - seg == 1 && s[seg] == '.') ||
		    (i - seg == 2 && s[seg] == '.' && s[seg + 1] == '.'))
			return zt_err_rule(e, ZT_EINVAL, "id-path-dot-segment",
					   "invalid SPIFFE ID \"%s\": '.' and '..' segments are not allowed (SPIFFE-ID 2.2)", q);
	}
	memcpy(out->str, s, len);
	out->str[len] = '\0';
	out->len = (uint16_t)len;
	out->td_len = (uint16_t)(td_end - SCHEME_LEN);
	return 0;
}

int zt_td_check(const char *td, size_t len, zt_err *e)
{
	char q[300];

	zt_quote(q, sizeof q, td, len);
	if (len >= SCHEME_LEN && memcmp(td, SCHEME, SCHEME_LEN) == 0)
		return zt_err_rule(e, ZT_EINVAL, "id-td-char",
				   "\"%s\" is a SPIFFE ID; give the bare trust domain name, e.g. example.org", q);
	return check_td(td, len, q, e);
}

static int build(zt_spiffe_id *out, zt_err *e, const char *fmt, ...) ZT_PRINTF(3, 4);

static int build(zt_spiffe_id *out, zt_err *e, const char *fmt, ...)
{
	char tmp[ZT_ID_MAX + 2];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(tmp, sizeof tmp, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n > ZT_ID_MAX)
		return zt_err_rule(e, ZT_EINVAL, "id-too-long",
				   "the SPIFFE ID would be longer than %d bytes (SPIFFE-ID 2.3)",
				   ZT_ID_MAX);
	return zt_id_parse(tmp, (size_t)n, out, e);
}

int zt_id_workload(const char *td, const char *workspace, const char *service,
		   zt_spiffe_id *out, zt_err *e)
{
	int r;

	if ((r = zt_td_check(td, strlen(td), e)) != 0)
		return r;
	/* a '/' inside a part would smuggle in extra segments */
	if (strchr(workspace, '/') || strchr(service, '/') || !*workspace || !*service)
		return zt_err_rule(e, ZT_EINVAL, "id-path-char",
				   "workspace and service names must be non-empty single path segments");
	return build(out, e, SCHEME "%s/ns/%s/sa/%s", td, workspace, service);
}

int zt_id_for_td(const char *td, zt_spiffe_id *out, zt_err *e)
{
	int r;

	if ((r = zt_td_check(td, strlen(td), e)) != 0)
		return r;
	return build(out, e, SCHEME "%s", td);
}

const char *zt_id_td(const zt_spiffe_id *id, size_t *len)
{
	*len = id->td_len;
	return id->str + SCHEME_LEN;
}

const char *zt_id_path(const zt_spiffe_id *id, size_t *len)
{
	size_t off = SCHEME_LEN + (size_t)id->td_len;

	*len = id->len - off;
	return id->str + off;
}

int zt_id_in_td(const zt_spiffe_id *id, const char *td, size_t td_len)
{
	return id->td_len == td_len && memcmp(id->str + SCHEME_LEN, td, td_len) == 0;
}
