/* core/log.c: one JSON object per line on stderr. */
#include "core.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static enum zt_log_level min_level = ZT_LOG_INFO;

static const char *const level_names[] = { "debug", "info", "warn", "error" };

void zt_log_set_level(enum zt_log_level lvl)
{
	min_level = lvl;
}

int zt_log_level_parse(const char *s, enum zt_log_level *out)
{
	for (size_t i = 0; i < sizeof level_names / sizeof level_names[0]; i++) {
		if (strcmp(s, level_names[i]) == 0) {
			*out = (enum zt_log_level)i;
			return 0;
		}
	}
	return -ZT_EINVAL;
}

int zt_log_enabled(enum zt_log_level lvl)
{
	return lvl >= min_level && lvl <= ZT_LOG_ERROR;
}

/* A line being built: fixed size, so logging never allocates. */
struct line {
	char p[16384];
	size_t n;
	int full;
};

static void put(struct line *l, const char *s, size_t n)
{
	if (l->full || n > sizeof l->p - 64 - l->n) { /* room kept for the closing bytes */
		l->full = 1;
		return;
	}
	memcpy(l->p + l->n, s, n);
	l->n += n;
}

/* Length of the valid UTF-8 sequence at s (RFC 3629 4), 0 when invalid. */
static size_t utf8_len(const unsigned char *s)
{
	unsigned char c = s[0];

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		return (s[1] & 0xc0) == 0x80 ? 2 : 0;
	if (c >= 0xe0 && c <= 0xef) {
		unsigned char lo = c == 0xe0 ? 0xa0 : 0x80, hi = c == 0xed ? 0x9f : 0xbf;

		return s[1] >= lo && s[1] <= hi && (s[2] & 0xc0) == 0x80 ? 3 : 0;
	}
	if (c >= 0xf0 && c <= 0xf4) {
		unsigned char lo = c == 0xf0 ? 0x90 : 0x80, hi = c == 0xf4 ? 0x8f : 0xbf;

		return s[1] >= lo && s[1] <= hi && (s[2] & 0xc0) == 0x80 && (s[3] & 0xc0) == 0x80 ? 4 : 0;
	}
	return 0;
}

/*
 * A JSON string (RFC 8259 7): quotes, backslashes and control characters
 * escaped, so a hostile value cannot end the string or the line; bytes
 * that are not UTF-8 become U+FFFD, the rest of the value is kept.
 */
static void put_string(struct line *l, const char *s)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *u = (const unsigned char *)s;

	put(l, "\"", 1);
	while (*u && !l->full) {
		size_t k = utf8_len(u);

		if (k == 0) {
			put(l, "\\ufffd", 6);
			u++;
		} else if (k > 1) {
			put(l, (const char *)u, k);
			u += k;
		} else if (*u == '"' || *u == '\\') {
			char esc[2] = { '\\', (char)*u };

			put(l, esc, 2);
			u++;
		} else if (*u < 0x20 || *u == 0x7f) {
			char esc[6] = { '\\', 'u', '0', '0', hex[*u >> 4], hex[*u & 15] };

			put(l, esc, 6);
			u++;
		} else {
			const unsigned char *run = u;

			while (*u >= 0x20 && *u < 0x7f && *u != '"' && *u != '\\')
				u++;
			put(l, (const char *)run, (size_t)(u - run));
		}
	}
	put(l, "\"", 1);
}

static void put_pair(struct line *l, const char *k, const char *v)
{
	put(l, ",", 1);
	put_string(l, k);
	put(l, ":", 1);
	if (v)
		put_string(l, v);
	else
		put(l, "null", 4);
}

void zt_log(enum zt_log_level lvl, const char *msg, ...)
{
	struct line l;
	char ts[32];
	va_list ap;
	const char *k, *v;
	size_t off = 0;

	if (lvl < min_level || lvl > ZT_LOG_ERROR)
		return;
	l.n = 0;
	l.full = 0;
	zt_time_format(zt_now(), ts, sizeof ts);
	put(&l, "{\"ts\":", 6);
	put_string(&l, ts);
	put_pair(&l, "level", level_names[lvl]);
	put_pair(&l, "msg", msg);
	va_start(ap, msg);
	while (!l.full && (k = va_arg(ap, const char *)) != NULL) {
		size_t whole = l.n;

		v = va_arg(ap, const char *);
		put_pair(&l, k, v);
		if (l.full) /* too long: the fields that fit, and a mark that some did not */
			l.n = whole;
	}
	va_end(ap);
	if (l.full) {
		l.full = 0;
		put(&l, ",\"truncated\":true", 17);
	}
	put(&l, "}\n", 2);
	/* one write(2) per line: lines from several threads never interleave */
	while (off < l.n) {
		ssize_t w = write(2, l.p + off, l.n - off);

		if (w <= 0)
			break;
		off += (size_t)w;
	}
}
