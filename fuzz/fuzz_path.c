/* Fuzz target: HTTP request path normalization (core/path.c). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int ishexup(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'F');
}

static int hexv(char c)
{
	return c <= '9' ? c - '0' : c - 'A' + 10;
}

static int unreserved(int c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' ||
	       c == '~';
}

/* 1 when the n-byte path part p contains the string s. */
static int has(const char *p, size_t n, const char *s)
{
	size_t m = strlen(s);

	for (size_t i = 0; i + m <= n; i++)
		if (memcmp(p + i, s, m) == 0)
			return 1;
	return 0;
}

static int ends(const char *p, size_t n, const char *s)
{
	size_t m = strlen(s);

	return n >= m && memcmp(p + n - m, s, m) == 0;
}

/* The invariants of a normalized path part (see core.h). */
static void check_path(const char *p, size_t n)
{
	if (n == 0 || p[0] != '/')
		abort();
	if (has(p, n, "//") || has(p, n, "/./") || has(p, n, "/../") ||
	    ends(p, n, "/.") || ends(p, n, "/.."))
		abort();
	if (has(p, n, "%2F") || has(p, n, "%2f") || has(p, n, "%5C") ||
	    has(p, n, "%5c"))
		abort();
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)p[i];

		if (c < 0x21 || c >= 0x7f || c == '#' || c == '\\' || c == '?')
			abort();
		if (c != '%')
			continue;
		/* kept escapes are uppercase and never encode what is decoded */
		if (n - i < 3 || !ishexup(p[i + 1]) || !ishexup(p[i + 2]))
			abort();
		int v = hexv(p[i + 1]) << 4 | hexv(p[i + 2]);

		if (unreserved(v) || v < 0x20 || v == 0x7f || v == '/' || v == '\\')
			abort();
		i += 2;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *out = malloc(size + 1), *again;
	size_t plen = 0, plen2 = 0, n;
	zt_err e;

	if (!out)
		return 0;
	/* the input is not NUL-terminated: libFuzzer's buffer is exactly size bytes */
	if (zt_path_normalize((const char *)data, size, out, size + 1, &plen, &e) == 0) {
		if (!memchr(out, '\0', size + 1))
			abort();
		n = strlen(out);
		if (n > size || plen > n)
			abort();
		if (plen < n && out[plen] != '?')
			abort();
		check_path(out, plen);
		for (size_t i = plen; i < n; i++)
			if (out[i] == '#' || (unsigned char)out[i] < 0x21 ||
			    (unsigned char)out[i] >= 0x7f)
				abort();

		/* idempotence: normalizing the output changes nothing */
		again = malloc(n + 1);
		if (!again)
			abort();
		if (zt_path_normalize(out, n, again, n + 1, &plen2, &e) != 0 ||
		    strcmp(again, out) != 0 || plen2 != plen)
			abort();
		free(again);
	} else {
		/* every rejection names its rule and leaves out empty */
		if (e.rule[0] == '\0' || e.msg[0] == '\0' || out[0] != '\0' || plen != 0)
			abort();
		if (e.code != ZT_EINVAL && e.code != ZT_ELIMIT)
			abort();
	}
	free(out);
	return 0;
}
