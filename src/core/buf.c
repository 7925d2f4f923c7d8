/* core/buf.c: bounded byte buffers and secret handling. */
#include "core.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>


void zt_buf_init(zt_buf *b, size_t max)
{
	b->p = NULL;
	b->len = 0;
	b->cap = 0;
	b->max = max;
}

int zt_buf_reserve(zt_buf *b, size_t n, zt_err *e)
{
	size_t need, ncap;
	uint8_t *np;

	if (n > b->max || b->len > b->max - n)
		return zt_err_set(e, ZT_ELIMIT,
				  "data exceeds the %zu-byte limit", b->max);
	need = b->len + n;
	if (need <= b->cap)
		return 0;
	ncap = b->cap ? b->cap : 256;
	while (ncap < need)
		ncap = ncap > SIZE_MAX / 2 ? need : ncap * 2;
	if (ncap > b->max + 1)
		ncap = b->max + 1; /* +1 leaves room for a terminating NUL */
	np = realloc(b->p, ncap);
	if (!np)
		return zt_err_set(e, ZT_ENOMEM, "out of memory (%zu bytes)", ncap);
	b->p = np;
	b->cap = ncap;
	return 0;
}

int zt_buf_append(zt_buf *b, const void *data, size_t n, zt_err *e)
{
	int r;

	if (n == 0)
		return 0;
	if ((r = zt_buf_reserve(b, n, e)) != 0)
		return r;
	memcpy(b->p + b->len, data, n);
	b->len += n;
	return 0;
}

int zt_buf_appendf(zt_buf *b, zt_err *e, const char *fmt, ...)
{
	char small[256], *tmp = small;
	va_list ap;
	int n, r;

	va_start(ap, fmt);
	n = vsnprintf(small, sizeof small, fmt, ap);
	va_end(ap);
	if (n < 0)
		return zt_err_set(e, ZT_EINVAL, "bad format");
	if ((size_t)n >= sizeof small) {
		if ((size_t)n > b->max)
			return zt_err_set(e, ZT_ELIMIT, "data exceeds the %zu-byte limit", b->max);
		if (!(tmp = malloc((size_t)n + 1)))
			return zt_err_set(e, ZT_ENOMEM, "out of memory");
		va_start(ap, fmt);
		vsnprintf(tmp, (size_t)n + 1, fmt, ap);
		va_end(ap);
	}
	r = zt_buf_append(b, tmp, (size_t)n, e);
	if (tmp != small)
		free(tmp);
	return r;
}

int zt_buf_terminate(zt_buf *b, zt_err *e)
{
	uint8_t *np;

	if (b->cap > b->len) {
		b->p[b->len] = '\0';
		return 0;
	}
	/* the cap allows max+1 bytes, so a full buffer can still terminate */
	np = realloc(b->p, b->len + 1);
	if (!np)
		return zt_err_set(e, ZT_ENOMEM, "out of memory");
	b->p = np;
	b->cap = b->len + 1;
	b->p[b->len] = '\0';
	return 0;
}

void zt_buf_free(zt_buf *b, int secret)
{
	if (b->p && secret)
		zt_wipe(b->p, b->cap);
	free(b->p);
	b->p = NULL;
	b->len = b->cap = 0;
}

int zt_ct_equal(const void *a, const void *b, size_t n)
{
	const volatile uint8_t *x = a, *y = b;
	uint8_t acc = 0;

	/* no early exit: the time taken does not depend on where they differ */
	for (size_t i = 0; i < n; i++)
		acc |= (uint8_t)(x[i] ^ y[i]);
	return acc == 0;
}

void zt_wipe(void *p, size_t n)
{
	explicit_bzero(p, n);
}

void zt_quote(char *out, size_t outsz, const char *in, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	size_t o = 0, i, need = 0;

	if (outsz == 0)
		return;
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)in[i];

		need += (c >= 0x20 && c < 0x7f && c != '\\') ? 1 : 4;
	}
	/* room for everything, or for a cut with "..." */
	size_t room = need < outsz ? outsz - 1 : (outsz > 3 ? outsz - 4 : 0);
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)in[i];
		size_t w = (c >= 0x20 && c < 0x7f && c != '\\') ? 1 : 4;

		if (o + w > room)
			break;
		if (w == 1) {
			out[o++] = (char)c;
		} else {
			out[o++] = '\\';
			out[o++] = 'x';
			out[o++] = hex[c >> 4];
			out[o++] = hex[c & 15];
		}
	}
	if (i < len && outsz > 3) {
		memcpy(out + o, "...", 3);
		o += 3;
	}
	out[o] = '\0';
}
