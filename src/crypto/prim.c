/* crypto/prim.c: OpenSSL errors, randomness, hashing, base64 and hex. */
#include "crypto.h"

#include <pthread.h>
#include <string.h>

#include <errno.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

int zt_crypto_err(zt_err *e, int code, const char *what)
{
	unsigned long ec = ERR_peek_last_error();
	char reason[256];

	if (ec) {
		ERR_error_string_n(ec, reason, sizeof reason);
		ERR_clear_error();
		return zt_err_set(e, code, "%s (%s)", what, reason);
	}
	return zt_err_set(e, code, "%s", what);
}

int zt_random(void *buf, size_t n, zt_err *e)
{
	if (n > INT32_MAX || RAND_bytes(buf, (int)n) != 1)
		return zt_crypto_err(e, ZT_ECRYPTO, "the random number generator failed");
	return 0;
}

void zt_sha256(const void *data, size_t n, uint8_t out[32])
{
	SHA256(data, n, out);
}

int zt_sha256_fd(int fd, uint64_t max, uint8_t out[32], zt_err *e)
{
	EVP_MD_CTX *c = EVP_MD_CTX_new();
	uint8_t buf[65536];
	uint64_t total = 0;
	int r = 0;

	if (!c || EVP_DigestInit_ex(c, EVP_sha256(), NULL) != 1) {
		EVP_MD_CTX_free(c);
		return zt_err_set(e, ZT_ECRYPTO, "cannot start SHA-256");
	}
	for (;;) {
		ssize_t n = read(fd, buf, sizeof buf);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			r = zt_err_set(e, ZT_EIO, "reading: %s", strerror(errno));
			break;
		}
		if (n == 0)
			break;
		total += (uint64_t)n;
		if (total > max) {
			r = zt_err_set(e, ZT_ELIMIT, "larger than %llu bytes", (unsigned long long)max);
			break;
		}
		EVP_DigestUpdate(c, buf, (size_t)n);
	}
	if (r == 0 && EVP_DigestFinal_ex(c, out, NULL) != 1)
		r = zt_err_set(e, ZT_ECRYPTO, "cannot finish SHA-256");
	EVP_MD_CTX_free(c);
	return r;
}

void zt_hex(const uint8_t *in, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 15];
	}
	out[2 * n] = '\0';
}

static const char b64std[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static const char b64url[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

int zt_base64_encode(const uint8_t *in, size_t n, int url, zt_buf *out, zt_err *e)
{
	const char *t = url ? b64url : b64std;
	size_t i;
	int r;

	if (n > SIZE_MAX / 4 - 4)
		return zt_err_set(e, ZT_ELIMIT, "data too large to encode");
	size_t olen = url ? n / 3 * 4 + (n % 3 ? n % 3 + 1 : 0) : (n + 2) / 3 * 4;

	if (n == 0)
		return zt_buf_terminate(out, e);
	if ((r = zt_buf_reserve(out, olen, e)) != 0)
		return r;
	char *o = (char *)out->p + out->len;
	for (i = 0; i + 2 < n; i += 3) {
		uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
		*o++ = t[v >> 18];
		*o++ = t[(v >> 12) & 63];
		*o++ = t[(v >> 6) & 63];
		*o++ = t[v & 63];
	}
	if (i < n) {
		uint32_t v = (uint32_t)in[i] << 16;
		if (i + 1 < n)
			v |= (uint32_t)in[i + 1] << 8;
		*o++ = t[v >> 18];
		*o++ = t[(v >> 12) & 63];
		if (i + 1 < n)
			*o++ = t[(v >> 6) & 63];
		else if (!url)
			*o++ = '=';
		if (!url)
			*o++ = '=';
	}
	out->len = (size_t)(o - (char *)out->p);
	return zt_buf_terminate(out, e); /* callers use it as a C string */
}

/* 0-63 for an alphabet's characters, 0xff for anything else (one table per alphabet) */
static uint8_t dec_std[256], dec_url[256];
static pthread_once_t dec_once = PTHREAD_ONCE_INIT;

static void dec_init(void)
{
	static const char std[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	static const char url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

	memset(dec_std, 0xff, sizeof dec_std);
	memset(dec_url, 0xff, sizeof dec_url);
	for (int i = 0; i < 64; i++) {
		dec_std[(uint8_t)std[i]] = (uint8_t)i;
		dec_url[(uint8_t)url[i]] = (uint8_t)i;
	}
}

int zt_base64_decode(const char *in, size_t n, int url, zt_buf *out, zt_err *e)
{
	size_t pad = 0, body, i;
	uint32_t acc = 0;
	int bits = 0, r;

	if (!url) {
		if (n % 4 != 0)
			return zt_err_set(e, ZT_EPARSE, "base64 length is not a multiple of 4");
		while (pad < 2 && n > pad && in[n - 1 - pad] == '=')
			pad++;
	} else if (n % 4 == 1) {
		return zt_err_set(e, ZT_EPARSE, "base64url has an impossible length");
	}
	body = n - pad;
	if ((r = zt_buf_reserve(out, body * 6 / 8, e)) != 0)
		return r;
	size_t start = out->len;
	const uint8_t *dec = url ? dec_url : dec_std;

	pthread_once(&dec_once, dec_init);
	for (i = 0; i < body; i++) {
		uint32_t v = dec[(uint8_t)in[i]];

		if (v > 63) {
			out->len = start; /* nothing half-decoded is left behind */
			return zt_err_set(e, ZT_EPARSE,
					  "invalid base64%s character at offset %zu",
					  url ? "url" : "", i);
		}
		acc = acc << 6 | v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out->p[out->len++] = (uint8_t)(acc >> bits);
		}
	}
	/* canonical: the unused low bits of the last character must be zero */
	if (bits > 0 && (acc & ((1u << bits) - 1)) != 0) {
		out->len = start;
		return zt_err_set(e, ZT_EPARSE, "non-canonical base64 (stray bits at the end)");
	}
	return 0;
}
