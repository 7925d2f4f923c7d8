/*
 * core/json.c: a strict JSON parser (RFC 8259) into jansson values, with
 * exactly the results of jansson's json_loadb(JSON_REJECT_DUPLICATES) plus
 * zt's depth limit, at several times its speed.
 *
 * Why: the proxy parses every end user's JWT claims; jansson lexes through a
 * per-character stream and copies every token into a growable buffer, which
 * costs about as much as a fifth of an RS256 verification. This parser reads
 * the bytes once, in place: a string without escapes goes from the input
 * straight into json_stringn_nocheck / json_object_setn_new_nocheck, so the
 * only allocations are jansson's own values. Strings with escapes are decoded
 * into a fixed buffer (one malloc when longer), integers are accumulated
 * directly, and reals take an exact shortcut when they can (see real_value).
 *
 * What jansson 2.14 does, and this parser too (fuzz/fuzz_json.c compares the
 * two on every input):
 *  - the top-level value is an object or an array; only space, tab, CR and LF
 *    are whitespace; nothing but whitespace may follow the value;
 *  - all text is valid UTF-8 (no overlong forms, no encoded surrogates, no
 *    code point above U+10FFFF); bytes below 0x20 are refused in strings;
 *  - escapes are \" \\ \/ \b \f \n \r \t and \uXXXX; a high surrogate must be
 *    followed by an escaped low one, a lone low surrogate is refused, and so is
 *    \u0000 (jansson without JSON_ALLOW_NUL);
 *  - duplicate keys are an error (JSON_REJECT_DUPLICATES);
 *  - a number without '.', 'e' or 'E' is an integer and must fit json_int_t
 *    (jansson refuses 9223372036854775808 rather than making it a real);
 *    "-0" is the integer 0; others are reals, as strtod reads them, and one
 *    that overflows to infinity is refused (underflow gives 0 or a subnormal);
 *    leading zeros, '+', a bare '-', "1." and "1e" are refused.
 * One difference on purpose: jansson skips one NUL byte right after a number
 * or true/false/null ("[1\0]" is [1] to it; its lexer puts the byte back
 * where NUL means "empty"). RFC 8259 has no NUL outside strings; it is
 * refused here.
 * What zt adds: more than ZT_DOC_MAX_DEPTH nested arrays and objects is
 * ZT_ELIMIT, found on the way down (the recursion never goes deeper).
 */
#include "core.h"

#include <errno.h>
#include <float.h>
#include <langinfo.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef unsigned char uchar;

/* strings at most this long (raw bytes) are decoded without malloc */
#define JP_SCRATCH 512

struct jp {
	const uchar *start, *p, *end;
	int depth;
	zt_err *e;
	char scratch[JP_SCRATCH];
};

/* ---- errors ------------------------------------------------------------ */

static void jp_errv(struct jp *j, const uchar *at, int code, const char *fmt, va_list ap)
    ZT_PRINTF(4, 0);

/* "invalid JSON at byte N (line L, column C): what" -- N counts from 0, L and C
 * (in bytes) from 1, so both programs and people can find the place */
static void jp_errv(struct jp *j, const uchar *at, int code, const char *fmt, va_list ap)
{
	char what[256];
	int line = 1;
	const uchar *bol = j->start;

	if (!j->e)
		return;
	for (const uchar *q = j->start; q < at; q++)
		if (*q == '\n') {
			line++;
			bol = q + 1;
		}
	vsnprintf(what, sizeof what, fmt, ap);
	if (code == ZT_ELIMIT)
		zt_err_set(j->e, code, "JSON nests deeper than %d levels (at byte %zu)", ZT_DOC_MAX_DEPTH,
			   (size_t)(at - j->start));
	else
		zt_err_set(j->e, code, "invalid JSON at byte %zu (line %d, column %zu): %s",
			   (size_t)(at - j->start), line, (size_t)(at - bol) + 1, what);
}

static void jp_fail(struct jp *j, const uchar *at, const char *fmt, ...) ZT_PRINTF(3, 4);

static void jp_fail(struct jp *j, const uchar *at, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	jp_errv(j, at, ZT_EPARSE, fmt, ap);
	va_end(ap);
}

static void jp_fail_code(struct jp *j, const uchar *at, int code, const char *fmt, ...)
    ZT_PRINTF(4, 5);

static void jp_fail_code(struct jp *j, const uchar *at, int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	jp_errv(j, at, code, fmt, ap);
	va_end(ap);
}

/* "unexpected X" for the byte at j->p, or "unexpected end of input" */
static void jp_unexpected(struct jp *j, const char *wanted)
{
	char q[16];

	if (j->p >= j->end) {
		jp_fail(j, j->p, "unexpected end of input, %s expected", wanted);
		return;
	}
	zt_quote(q, sizeof q, (const char *)j->p, 1);
	jp_fail(j, j->p, "unexpected '%s', %s expected", q, wanted);
}

/* ---- bytes ------------------------------------------------------------- */

/* 1 for the bytes a string may hold as they are: printable ASCII and DEL,
 * neither '"' nor '\\' */
static const uchar plain[256] = {
#define R16(v) v, v, v, v, v, v, v, v, v, v, v, v, v, v, v, v
	R16(0), R16(0),			  /* 0x00-0x1f: control characters */
	1, 1, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, /* 0x20-0x2f: '"' */
	R16(1), R16(1),			  /* 0x30-0x4f */
	1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 1, 1, 1, /* 0x50-0x5f: '\\' */
	R16(1), R16(1),			  /* 0x60-0x7f */
	R16(0), R16(0), R16(0), R16(0), R16(0), R16(0), R16(0), R16(0), /* 0x80-0xff */
#undef R16
};

/* Nonzero when one of the 8 bytes in x is not plain (SWAR, "Bit Twiddling
 * Hacks": a byte below 0x20, '"', '\\', or 0x80 and above). A borrow can
 * flag a byte above a true hit, never one when there is none. */
static inline uint64_t special8(uint64_t x)
{
	const uint64_t ones = 0x0101010101010101ull, high = 0x8080808080808080ull;
	uint64_t q = x ^ (ones * '"'), b = x ^ (ones * '\\');

	return (((q - ones) & ~q) | ((b - ones) & ~b) | ((x - ones * 0x20) & ~x) | x) & high;
}

static inline void skip_ws(struct jp *j)
{
	const uchar *p = j->p, *end = j->end;

	while (p < end && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t'))
		p++;
	j->p = p;
}

/* Length of the well-formed UTF-8 sequence at p (p[0] >= 0x80), 0 when it is
 * not one (Unicode 15, table 3-7): what jansson's utf8_check_full accepts. */
static size_t utf8_len(const uchar *p, const uchar *end)
{
	uchar c = p[0], lo = 0x80, hi = 0xbf;
	size_t n;

	if (c >= 0xc2 && c <= 0xdf)
		n = 2;
	else if (c >= 0xe0 && c <= 0xef) {
		n = 3;
		if (c == 0xe0)
			lo = 0xa0; /* overlong */
		else if (c == 0xed)
			hi = 0x9f; /* surrogates */
	} else if (c >= 0xf0 && c <= 0xf4) {
		n = 4;
		if (c == 0xf0)
			lo = 0x90; /* overlong */
		else if (c == 0xf4)
			hi = 0x8f; /* above U+10FFFF */
	} else
		return 0;
	if ((size_t)(end - p) < n || p[1] < lo || p[1] > hi)
		return 0;
	for (size_t i = 2; i < n; i++)
		if ((p[i] & 0xc0) != 0x80)
			return 0;
	return n;
}

/* The value of 4 hex digits at p (bounds checked by the caller), or -1. */
static long hex4(const uchar *p)
{
	long v = 0;

	for (int i = 0; i < 4; i++) {
		int d = zt_hex_value(p[i]);

		if (d < 0)
			return -1;
		v = v << 4 | d;
	}
	return v;
}

/* ---- strings ----------------------------------------------------------- */

/*
 * Checks the string whose opening quote is at j->p and moves j->p past its
 * closing quote. *s and *n are its raw content (between the quotes) and *esc
 * says whether it has escapes; without escapes the raw content is the value.
 * The decoded value is never longer than the raw content.
 */
static int scan_string(struct jp *j, const uchar **s, size_t *n, int *esc)
{
	const uchar *p = j->p + 1, *end = j->end;
	size_t l;
	long cp, lo;
	char q[24];

	*s = p;
	*esc = 0;
	for (;;) {
		for (uint64_t x; end - p >= 8; p += 8) {
			memcpy(&x, p, 8);
			if (special8(x))
				break;
		}
		while (p < end && plain[*p])
			p++;
		if (p >= end) {
			jp_fail(j, j->p, "string not terminated");
			return -1;
		}
		if (*p == '"')
			break;
		if (*p == '\\') {
			*esc = 1;
			if (end - p < 2) {
				jp_fail(j, j->p, "string not terminated");
				return -1;
			}
			switch (p[1]) {
			case '"': case '\\': case '/': case 'b': case 'f': case 'n': case 'r': case 't':
				p += 2;
				continue;
			case 'u':
				break;
			default:
				zt_quote(q, sizeof q, (const char *)p, 2);
				jp_fail(j, p, "invalid escape '%s'", q);
				return -1;
			}
			if (end - p < 6 || (cp = hex4(p + 2)) < 0) {
				zt_quote(q, sizeof q, (const char *)p, (size_t)(end - p) < 6 ? (size_t)(end - p) : 6);
				jp_fail(j, p, "invalid escape '%s' (\\u needs 4 hex digits)", q);
				return -1;
			}
			if (cp == 0) {
				jp_fail(j, p, "\\u0000 is not allowed in strings");
				return -1;
			}
			if (cp >= 0xdc00 && cp <= 0xdfff) {
				jp_fail(j, p, "lone low surrogate \\u%04lX", cp);
				return -1;
			}
			if (cp >= 0xd800 && cp <= 0xdbff) {
				if (end - p < 12 || p[6] != '\\' || p[7] != 'u') {
					jp_fail(j, p, "high surrogate \\u%04lX without a low one", cp);
					return -1;
				}
				if ((lo = hex4(p + 8)) < 0) {
					zt_quote(q, sizeof q, (const char *)p + 6, 6);
					jp_fail(j, p + 6, "invalid escape '%s' (\\u needs 4 hex digits)", q);
					return -1;
				}
				if (lo < 0xdc00 || lo > 0xdfff) {
					jp_fail(j, p, "high surrogate \\u%04lX followed by \\u%04lX, not a low one",
						cp, lo);
					return -1;
				}
				p += 6;
			}
			p += 6;
		} else if (*p < 0x20) {
			jp_fail(j, p, "control character 0x%02x in a string (escape it)", *p);
			return -1;
		} else {
			if (!(l = utf8_len(p, end))) {
				jp_fail(j, p, "invalid UTF-8 (byte 0x%02x)", *p);
				return -1;
			}
			p += l;
		}
	}
	*n = (size_t)(p - *s);
	j->p = p + 1;
	return 0;
}

static size_t utf8_put(char *o, unsigned long cp)
{
	if (cp < 0x80) {
		o[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		o[0] = (char)(0xc0 | cp >> 6);
		o[1] = (char)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		o[0] = (char)(0xe0 | cp >> 12);
		o[1] = (char)(0x80 | (cp >> 6 & 0x3f));
		o[2] = (char)(0x80 | (cp & 0x3f));
		return 3;
	}
	o[0] = (char)(0xf0 | cp >> 18);
	o[1] = (char)(0x80 | (cp >> 12 & 0x3f));
	o[2] = (char)(0x80 | (cp >> 6 & 0x3f));
	o[3] = (char)(0x80 | (cp & 0x3f));
	return 4;
}

/* Decodes the n raw bytes at s, checked by scan_string, into out (room for
 * n bytes); returns the decoded length. */
static size_t decode_string(const uchar *s, size_t n, char *out)
{
	const uchar *end = s + n;
	char *o = out;

	while (s < end) {
		if (*s != '\\') {
			*o++ = (char)*s++;
			continue;
		}
		switch (s[1]) {
		case 'b': *o++ = '\b'; break;
		case 'f': *o++ = '\f'; break;
		case 'n': *o++ = '\n'; break;
		case 'r': *o++ = '\r'; break;
		case 't': *o++ = '\t'; break;
		case 'u': {
			unsigned long cp = (unsigned long)hex4(s + 2);

			if (cp >= 0xd800 && cp <= 0xdbff) {
				cp = 0x10000 + ((cp - 0xd800) << 10) + ((unsigned long)hex4(s + 8) - 0xdc00);
				s += 6;
			}
			o += utf8_put(o, cp);
			s += 6;
			continue;
		}
		default: *o++ = (char)s[1]; break; /* '"', '\\', '/' */
		}
		s += 2;
	}
	return (size_t)(o - out);
}

/*
 * The value of the string scanned into (s, n, esc): the raw bytes as they are,
 * or decoded into j->scratch or, when longer, into *heap (caller frees).
 */
static const char *string_value(struct jp *j, const uchar *s, size_t *n, int esc, char **heap)
{
	char *buf = j->scratch;

	*heap = NULL;
	if (!esc)
		return (const char *)s;
	if (*n > sizeof j->scratch && !(buf = *heap = malloc(*n))) {
		jp_fail_code(j, s, ZT_ENOMEM, "out of memory");
		return NULL;
	}
	*n = decode_string(s, *n, buf);
	return buf;
}

/* ---- numbers ----------------------------------------------------------- */

#if defined(FLT_EVAL_METHOD) && FLT_EVAL_METHOD == 0 && FLT_RADIX == 2 && DBL_MANT_DIG == 53
#define JP_EXACT_REALS 1
static const double pow10_exact[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
				     1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
				     1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};
#endif

/*
 * The real number written in the n bytes at s (syntax already checked), as
 * jansson reads it: strtod in the current locale. mant/exp10 is its value as
 * mantissa * 10^exp10 when the mantissa fit 2^53 (big is 0): then, with
 * |exp10| <= 22, both factors are exact doubles and one IEEE multiplication
 * or division rounds exactly as strtod does (Clinger's fast path).
 */
static int real_value(struct jp *j, const uchar *s, size_t n, uint64_t mant, int big, long exp10,
		      int neg, double *out)
{
	char *buf = j->scratch, *heap = NULL;
	const char *point;
	double d;

#ifdef JP_EXACT_REALS
	if (!big && exp10 >= -22 && exp10 <= 22) {
		d = (double)mant;
		d = exp10 < 0 ? d / pow10_exact[-exp10] : d * pow10_exact[exp10];
		*out = neg ? -d : d;
		return 0;
	}
#else
	(void)mant, (void)big, (void)exp10, (void)neg;
#endif
	if (n >= sizeof j->scratch && !(buf = heap = malloc(n + 1))) {
		jp_fail_code(j, s, ZT_ENOMEM, "out of memory");
		return -1;
	}
	memcpy(buf, s, n);
	buf[n] = '\0';
	/* jansson writes the locale's decimal point; zt never sets a locale, but
	 * should anything do so, both parsers still read the same value */
	point = nl_langinfo(RADIXCHAR); /* unlike localeconv, thread-safe */
	if (point[0] != '.' && point[0] && !point[1]) {
		char *dot = memchr(buf, '.', n);

		if (dot)
			*dot = point[0];
	}
	errno = 0;
	d = strtod(buf, NULL);
	free(heap);
	if ((d == HUGE_VAL || d == -HUGE_VAL) && errno == ERANGE) {
		jp_fail(j, s, "real number overflow");
		return -1;
	}
	*out = d;
	return 0;
}

static json_t *parse_number(struct jp *j)
{
	const uchar *s = j->p, *p = j->p, *end = j->end;
	uint64_t v = 0;
	int neg = 0, over = 0, big = 0;
	long frac = 0, ex = 0;
	json_t *r;
	double d;

	if (*p == '-') {
		neg = 1;
		p++;
	}
	if (p < end && *p == '0') {
		p++;
		if (p < end && *p >= '0' && *p <= '9') {
			jp_fail(j, s, "leading zero in a number");
			return NULL;
		}
	} else if (p < end && *p >= '0' && *p <= '9') {
		/* no leading zeros: 19 digits always fit in 64 bits, 20 never fit
		 * json_int_t */
		const uchar *d0 = p;

		do
			v = v * 10 + (unsigned)(*p - '0');
		while (++p < end && *p >= '0' && *p <= '9' && p - d0 < 19);
		while (p < end && *p >= '0' && *p <= '9') {
			over = 1;
			p++;
		}
	} else {
		jp_fail(j, s, "invalid number (a digit must follow '-')");
		return NULL;
	}
	if (p >= end || (*p != '.' && *p != 'e' && *p != 'E')) {
		j->p = p;
		if (over || v > (neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX)) {
			jp_fail(j, s, "integer out of range (%s than %s)", neg ? "smaller" : "bigger",
				neg ? "-9223372036854775808" : "9223372036854775807");
			return NULL;
		}
		/* json_int_t is long long: two's complement, INT64_MIN included */
		if (!(r = json_integer(neg ? (json_int_t)(0 - v) : (json_int_t)v)))
			jp_fail_code(j, s, ZT_ENOMEM, "out of memory");
		return r;
	}
	/* a real: mantissa digits past 2^53 go to the slow path */
	big = over || v > (1ull << 53);
	if (*p == '.') {
		if (++p >= end || *p < '0' || *p > '9') {
			jp_fail(j, s, "invalid number (a digit must follow '.')");
			return NULL;
		}
		do {
			unsigned dg = (unsigned)(*p - '0');

			if (!big) {
				v = v * 10 + dg;
				frac++;
				big = v > (1ull << 53);
			}
		} while (++p < end && *p >= '0' && *p <= '9');
	}
	if (p < end && (*p == 'e' || *p == 'E')) {
		int eneg = 0;

		if (++p < end && (*p == '+' || *p == '-'))
			eneg = *p++ == '-';
		if (p >= end || *p < '0' || *p > '9') {
			jp_fail(j, s, "invalid number (a digit must follow the exponent)");
			return NULL;
		}
		do {
			if (ex < 100000) /* past that only the slow path decides */
				ex = ex * 10 + (*p - '0');
		} while (++p < end && *p >= '0' && *p <= '9');
		if (eneg)
			ex = -ex;
	}
	j->p = p;
	if (real_value(j, s, (size_t)(p - s), v, big, ex - frac, neg, &d) != 0)
		return NULL;
	if (!(r = json_real(d)))
		jp_fail_code(j, s, ZT_ENOMEM, "out of memory");
	return r;
}

/* ---- values ------------------------------------------------------------ */

static json_t *parse_value(struct jp *j);

static json_t *parse_literal(struct jp *j, const char *word, size_t n, json_t *v)
{
	char q[16];

	if ((size_t)(j->end - j->p) < n || memcmp(j->p, word, n) != 0) {
		zt_quote(q, sizeof q, (const char *)j->p,
			 (size_t)(j->end - j->p) < n ? (size_t)(j->end - j->p) : n);
		jp_fail(j, j->p, "invalid literal '%s'", q);
		return NULL;
	}
	j->p += n;
	return v;
}

static int enter(struct jp *j)
{
	if (++j->depth > ZT_DOC_MAX_DEPTH) {
		jp_fail_code(j, j->p, ZT_ELIMIT, "too deep");
		return -1;
	}
	return 0;
}

static json_t *parse_array(struct jp *j)
{
	json_t *a, *v;

	if (enter(j) != 0)
		return NULL;
	if (!(a = json_array())) {
		jp_fail_code(j, j->p, ZT_ENOMEM, "out of memory");
		return NULL;
	}
	j->p++;
	skip_ws(j);
	if (j->p < j->end && *j->p == ']') {
		j->p++;
		j->depth--;
		return a;
	}
	for (;;) {
		if (!(v = parse_value(j)))
			goto out_free;
		if (json_array_append_new(a, v) != 0) {
			jp_fail_code(j, j->p, ZT_ENOMEM, "out of memory");
			goto out_free;
		}
		skip_ws(j);
		if (j->p < j->end && *j->p == ',') {
			j->p++;
			skip_ws(j);
			continue;
		}
		if (j->p < j->end && *j->p == ']') {
			j->p++;
			j->depth--;
			return a;
		}
		jp_unexpected(j, "',' or ']'");
		goto out_free;
	}
out_free:
	json_decref(a);
	return NULL;
}

static json_t *parse_object(struct jp *j)
{
	const uchar *ks, *kat;
	const char *key;
	char *heap, q[64];
	size_t kn, size;
	int kesc;
	json_t *o, *v;

	if (enter(j) != 0)
		return NULL;
	if (!(o = json_object())) {
		jp_fail_code(j, j->p, ZT_ENOMEM, "out of memory");
		return NULL;
	}
	j->p++;
	skip_ws(j);
	if (j->p < j->end && *j->p == '}') {
		j->p++;
		j->depth--;
		return o;
	}
	for (;;) {
		if (j->p >= j->end || *j->p != '"') {
			jp_unexpected(j, "a string (a key)");
			goto out_free;
		}
		kat = j->p;
		if (scan_string(j, &ks, &kn, &kesc) != 0)
			goto out_free;
		skip_ws(j);
		if (j->p >= j->end || *j->p != ':') {
			jp_unexpected(j, "':'");
			goto out_free;
		}
		j->p++;
		skip_ws(j);
		if (!(v = parse_value(j)))
			goto out_free;
		/*
		 * The key is decoded only now, so a value decoded into the scratch
		 * buffer cannot overwrite it; and a duplicate is found by the size
		 * not growing, one hash lookup instead of jansson's two.
		 */
		if (!(key = string_value(j, ks, &kn, kesc, &heap))) {
			json_decref(v);
			goto out_free;
		}
		size = json_object_size(o);
		if (json_object_setn_new_nocheck(o, key, kn, v) != 0) {
			free(heap);
			jp_fail_code(j, kat, ZT_ENOMEM, "out of memory");
			goto out_free;
		}
		if (json_object_size(o) == size) {
			zt_quote(q, sizeof q, key, kn);
			free(heap);
			jp_fail(j, kat, "duplicate object key \"%s\"", q);
			goto out_free;
		}
		free(heap);
		skip_ws(j);
		if (j->p < j->end && *j->p == ',') {
			j->p++;
			skip_ws(j);
			continue;
		}
		if (j->p < j->end && *j->p == '}') {
			j->p++;
			j->depth--;
			return o;
		}
		jp_unexpected(j, "',' or '}'");
		goto out_free;
	}
out_free:
	json_decref(o);
	return NULL;
}

/* The value at j->p (whitespace skipped), j->p moved past it. */
static json_t *parse_value(struct jp *j)
{
	const uchar *s;
	const char *str;
	char *heap;
	size_t n;
	int esc;
	json_t *v;

	if (j->p >= j->end) {
		jp_unexpected(j, "a value");
		return NULL;
	}
	switch (*j->p) {
	case '"':
		if (scan_string(j, &s, &n, &esc) != 0 || !(str = string_value(j, s, &n, esc, &heap)))
			return NULL;
		v = json_stringn_nocheck(str, n);
		free(heap);
		if (!v)
			jp_fail_code(j, s, ZT_ENOMEM, "out of memory");
		return v;
	case '{':
		return parse_object(j);
	case '[':
		return parse_array(j);
	case '-': case '0': case '1': case '2': case '3': case '4':
	case '5': case '6': case '7': case '8': case '9':
		return parse_number(j);
	case 't':
		return parse_literal(j, "true", 4, json_true());
	case 'f':
		return parse_literal(j, "false", 5, json_false());
	case 'n':
		return parse_literal(j, "null", 4, json_null());
	default:
		jp_unexpected(j, "a value");
		return NULL;
	}
}

json_t *zt_json_parse_fast(const char *text, size_t len, zt_err *e)
{
	struct jp j;
	json_t *v;

	if (!text) { /* as jansson: "wrong arguments" */
		zt_err_set(e, ZT_EPARSE, "invalid JSON: no text");
		return NULL;
	}
	j.start = j.p = (const uchar *)text;
	j.end = j.start + len;
	j.depth = 0;
	j.e = e;
	skip_ws(&j);
	if (j.p >= j.end || (*j.p != '{' && *j.p != '[')) {
		jp_unexpected(&j, "'{' or '['");
		return NULL;
	}
	if (!(v = parse_value(&j)))
		return NULL;
	skip_ws(&j);
	if (j.p < j.end) {
		jp_unexpected(&j, "the end of the text");
		json_decref(v);
		return NULL;
	}
	return v;
}
