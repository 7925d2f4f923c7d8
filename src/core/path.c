/*
 * core/path.c: one normalization of HTTP request paths, shared by policy
 * matching and forwarding so the two can never see different paths (Istio
 * CVE-2021-31920: "//admin" and "/admin%2F.." slipped past path rules).
 *
 * One pass over the input, writing into the caller's buffer:
 *   - each segment is decoded straight into `out` just after the '/' that
 *     precedes it, then looked at: an empty segment (a repeated slash) and
 *     "." leave nothing, ".." also takes back the segment before it, and
 *     anything else stays with the '/' that ended it (RFC 3986 5.2.4, done
 *     on decoded bytes so "%2e%2E" is "..");
 *   - the query is checked and copied unchanged.
 * Every step writes at most as many bytes as it read, so the output is never
 * longer than the input and outsz >= len + 1 is all the room needed.
 */
#include "core.h"

#include <string.h>

static const char hexdig[] = "0123456789ABCDEF";

int zt_hex_value(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* RFC 3986 2.3: decoding these never changes what a URI means. */
static int unreserved(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' ||
	       c == '~';
}

/*
 * Records a rejection: the whole input (quoted, it is hostile), the
 * offending bytes and where they are, what is wrong and what to send.
 */
static int reject(zt_err *e, const char *rule, const char *in, size_t len,
		  size_t at, size_t n, const char *what, const char *fix)
{
	char q[200], b[16];

	zt_quote(q, sizeof q, in, len);
	if (at > len)
		at = len;
	if (n > len - at)
		n = len - at;
	zt_quote(b, sizeof b, in + at, n);
	return zt_err_rule(e, ZT_EINVAL, rule,
			   "invalid request path \"%s\": \"%s\" at byte %zu %s; %s",
			   q, b, at, what, fix);
}

/* A '%' at in[i] (i < len): the value of the escape, or -1. */
static int escape_at(const char *in, size_t len, size_t i)
{
	int hi, lo;

	if (len - i < 3)
		return -1;
	hi = zt_hex_value((unsigned char)in[i + 1]);
	lo = zt_hex_value((unsigned char)in[i + 2]);
	if (hi < 0 || lo < 0)
		return -1;
	return hi << 4 | lo;
}

static int bad_percent(zt_err *e, const char *in, size_t len, size_t i)
{
	return reject(e, "path-bad-percent", in, len, i, 3,
		      "is not a valid percent-encoding (RFC 3986 2.1)",
		      "a '%' must be followed by two hex digits; send a literal '%' as \"%25\"");
}

/* A raw byte the path and query share rules for; 0 when it is allowed. */
static int check_raw(zt_err *e, const char *in, size_t len, size_t i)
{
	unsigned char c = (unsigned char)in[i];

	if (c == '#')
		return reject(e, "path-fragment", in, len, i, 1,
			      "starts a fragment, which is never part of a request target (RFC 9112 3.2)",
			      "drop the fragment, or send '#' as \"%23\"");
	if (c < 0x21 || c >= 0x7f)
		return reject(e, "path-control", in, len, i, 1,
			      "is a control character, space, NUL or non-ASCII byte (RFC 3986 3.3, 3.4)",
			      "percent-encode it (a space as \"%20\", UTF-8 bytes as %XX each)");
	return 0;
}

/*
 * Decodes one segment of the path, in[*ip] up to the next '/', '?' or the
 * end, into out + o. Returns its decoded length, or a negative error.
 */
static long decode_segment(const char *in, size_t len, size_t *ip, char *out,
			   size_t o, zt_err *e)
{
	size_t i = *ip, n = 0;
	int r;

	for (; i < len && in[i] != '/' && in[i] != '?'; i++) {
		unsigned char c = (unsigned char)in[i];
		int v;

		if (c == '\\')
			return reject(e, "path-backslash", in, len, i, 1,
				      "is a backslash, which some servers take for '/'",
				      "use '/' between segments (an encoded \"%5C\" is refused too)");
		if ((r = check_raw(e, in, len, i)) != 0)
			return r;
		if (c != '%') {
			out[o + n++] = (char)c;
			continue;
		}
		if ((v = escape_at(in, len, i)) < 0)
			return bad_percent(e, in, len, i);
		/* an encoded separator splits differently in every hop (CVE-2021-31920) */
		if (v == '/' || v == '\\')
			return reject(e, "path-encoded-slash", in, len, i, 3,
				      "is an encoded '/' or '\\', which servers split on differently",
				      "send '/' unencoded between segments and never inside a segment name");
		if (v < 0x20 || v == 0x7f)
			return reject(e, "path-control", in, len, i, 3,
				      "encodes a control character or NUL",
				      "remove it from the path");
		if (unreserved((unsigned char)v)) {
			out[o + n++] = (char)v; /* RFC 3986 6.2.2.2 */
		} else {
			/* RFC 3986 6.2.2.1: one spelling for the same escape */
			out[o + n++] = '%';
			out[o + n++] = hexdig[v >> 4];
			out[o + n++] = hexdig[v & 15];
		}
		i += 2;
	}
	*ip = i;
	return (long)n;
}

static int normalize(const char *in, size_t len, char *out, size_t *path_len,
		     zt_err *e)
{
	size_t i = 1, o = 1, q;
	long n;

	if (in[0] != '/')
		return reject(e, "path-not-absolute", in, len, 0, 1,
			      "begins the path; it must begin with '/' (origin form, RFC 9112 3.2.1)",
			      "send the path as \"/...\" (\"*\" and absolute URIs are not taken here)");
	/*
	 * Invariant: out[0..o) is the normalized path so far and ends with
	 * '/'; i is just past the '/' that began the current segment.
	 */
	out[0] = '/';
	for (;;) {
		n = decode_segment(in, len, &i, out, o, e);
		if (n < 0)
			return (int)n;
		const char *s = out + o;
		int last = i == len || in[i] == '?';

		if (n == 2 && s[0] == '.' && s[1] == '.') {
			/* drop the segment before it, never climbing above "/" */
			if (o > 1) {
				o--;
				while (out[o - 1] != '/')
					o--;
			}
		} else if (n == 0 || (n == 1 && s[0] == '.')) {
			/* a repeated slash or "." adds nothing */
		} else {
			o += (size_t)n;
			if (!last)
				out[o++] = '/';
		}
		if (last)
			break;
		i++; /* past the '/' */
	}
	*path_len = o;
	if (i == len) {
		out[o] = '\0';
		return 0;
	}

	/* the query (RFC 3986 3.4) is opaque to us: checked, copied as it is */
	for (q = i + 1; q < len; q++) {
		int r;

		if ((r = check_raw(e, in, len, q)) != 0)
			return r;
		if (in[q] == '%') {
			if (escape_at(in, len, q) < 0)
				return bad_percent(e, in, len, q);
			q += 2;
		}
	}
	memcpy(out + o, in + i, len - i);
	out[o + len - i] = '\0';
	return 0;
}

int zt_path_normalize(const char *in, size_t len, char *out, size_t outsz,
		      size_t *path_len, zt_err *e)
{
	char q[200];
	int r;

	*path_len = 0;
	if (outsz > 0)
		out[0] = '\0';
	if (len == 0)
		return zt_err_rule(e, ZT_EINVAL, "path-empty",
				   "the request path is empty; send at least \"/\"");
	if (len > ZT_PATH_MAX) {
		zt_quote(q, sizeof q, in, len);
		return zt_err_rule(e, ZT_ELIMIT, "path-too-long",
				   "invalid request path \"%s\": %zu bytes; at most %d are allowed, send a shorter path or move data to the body",
				   q, len, ZT_PATH_MAX);
	}
	if (outsz < len + 1)
		return zt_err_rule(e, ZT_ELIMIT, "path-too-long",
				   "a %zu-byte request path needs a %zu-byte output buffer, got %zu",
				   len, len + 1, outsz);
	r = normalize(in, len, out, path_len, e);
	if (r != 0) {
		out[0] = '\0';
		*path_len = 0;
	}
	return r;
}
