/*
 * crypto/totp.c: one-time codes for user login, HOTP (RFC 4226) and TOTP
 * (RFC 6238), with the base32 (RFC 4648 6) and otpauth:// enrolment URI
 * (Google Authenticator's Key Uri Format) that authenticator apps take.
 *
 * A code is checked in a window of one step either side of now (RFC 6238
 * 5.2: clocks drift and people type slowly), every candidate compared in
 * constant time, and the caller keeps the last step used so that a code,
 * once accepted, is never accepted again (RFC 6238 5.2, RFC 4226 7.5).
 */
#include "crypto.h"

#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#define WINDOW 1           /* steps either side of now */
#define URI_FIELD_MAX 256  /* bytes of issuer or account name */

zt_totp_params zt_totp_defaults(void)
{
	zt_totp_params tp = {.alg = ZT_OTP_SHA1, .digits = 6, .period = 30};

	return tp;
}

static const EVP_MD *otp_md(enum zt_otp_alg alg)
{
	switch (alg) {
	case ZT_OTP_SHA1:
		return EVP_sha1();
	case ZT_OTP_SHA256:
		return EVP_sha256();
	case ZT_OTP_SHA512:
		return EVP_sha512();
	}
	return NULL;
}

static const char *otp_alg_name(enum zt_otp_alg alg)
{
	switch (alg) {
	case ZT_OTP_SHA1:
		return "SHA1";
	case ZT_OTP_SHA256:
		return "SHA256";
	case ZT_OTP_SHA512:
		return "SHA512";
	}
	return "?";
}

static int check_key(size_t key_len, zt_err *e)
{
	if (key_len < ZT_OTP_KEY_MIN || key_len > ZT_OTP_KEY_MAX)
		return zt_err_rule(e, ZT_EINVAL, "totp-key", "a one-time code key is %d to %d bytes",
				   ZT_OTP_KEY_MIN, ZT_OTP_KEY_MAX);
	return 0;
}

static int check_params(const zt_totp_params *tp, zt_err *e)
{
	if (!otp_md(tp->alg))
		return zt_err_rule(e, ZT_EINVAL, "totp-params",
				   "a one-time code uses SHA1, SHA256 or SHA512");
	if (tp->digits != 6 && tp->digits != 8)
		return zt_err_rule(e, ZT_EINVAL, "totp-params", "a one-time code has 6 or 8 digits");
	if (tp->period < 1 || tp->period > ZT_TOTP_PERIOD_MAX)
		return zt_err_rule(e, ZT_EINVAL, "totp-params", "a TOTP period is 1 to %d seconds",
				   ZT_TOTP_PERIOD_MAX);
	return 0;
}

int zt_hotp_code(const uint8_t *key, size_t key_len, enum zt_otp_alg alg, unsigned digits,
		 uint64_t counter, char out[ZT_OTP_CODE_MAX], zt_err *e)
{
	const EVP_MD *md = otp_md(alg);
	uint8_t msg[8], mac[EVP_MAX_MD_SIZE];
	unsigned mac_len = 0, off;
	uint32_t v;
	int r = 0;

	out[0] = '\0';
	if (!md || (digits != 6 && digits != 8))
		return zt_err_rule(e, ZT_EINVAL, "totp-params",
				   "a one-time code is SHA1, SHA256 or SHA512 with 6 or 8 digits");
	if ((r = check_key(key_len, e)) != 0)
		return r;
	for (int i = 7; i >= 0; i--, counter >>= 8) /* RFC 4226 5.2: the counter, big-endian */
		msg[i] = (uint8_t)counter;
	if (!HMAC(md, key, (int)key_len, msg, sizeof msg, mac, &mac_len) || mac_len < 20) {
		r = zt_crypto_err(e, ZT_ECRYPTO, "HMAC for a one-time code failed");
		goto out;
	}
	/* RFC 4226 5.3 dynamic truncation: 31 bits at the offset the last nibble names */
	off = mac[mac_len - 1] & 0x0f;
	v = ((uint32_t)(mac[off] & 0x7f) << 24 | (uint32_t)mac[off + 1] << 16 |
	     (uint32_t)mac[off + 2] << 8 | mac[off + 3]) %
	    (digits == 6 ? 1000000u : 100000000u);
	for (int i = (int)digits - 1; i >= 0; i--, v /= 10)
		out[i] = (char)('0' + v % 10);
	out[digits] = '\0';
out:
	OPENSSL_cleanse(mac, sizeof mac);
	return r;
}

int zt_totp_code(const uint8_t *key, size_t key_len, const zt_totp_params *tp, int64_t t,
		 char out[ZT_OTP_CODE_MAX], zt_err *e)
{
	int r;

	out[0] = '\0';
	if ((r = check_params(tp, e)) != 0)
		return r;
	if (t < 0)
		return zt_err_rule(e, ZT_EINVAL, "totp-time", "a TOTP time is not before 1970");
	return zt_hotp_code(key, key_len, tp->alg, tp->digits, (uint64_t)t / tp->period, out, e);
}

int zt_totp_verify(const uint8_t *key, size_t key_len, const zt_totp_params *tp,
		   const char *code, size_t code_len, int64_t now, uint64_t last_used_step,
		   uint64_t *step, zt_err *e)
{
	char want[ZT_OTP_CODE_MAX];
	uint64_t cur, found = 0;
	int fresh = 0, reused = 0, r;

	*step = 0;
	if ((r = check_params(tp, e)) != 0 || (r = check_key(key_len, e)) != 0)
		return r;
	if (now < 0)
		return zt_err_rule(e, ZT_EINVAL, "totp-time", "a TOTP time is not before 1970");
	if (code_len != tp->digits)
		return zt_err_rule(e, ZT_EINVAL, "totp-format", "a one-time code is %u digits",
				   tp->digits);
	for (size_t i = 0; i < code_len; i++)
		if (code[i] < '0' || code[i] > '9')
			return zt_err_rule(e, ZT_EINVAL, "totp-format",
					   "a one-time code is %u digits", tp->digits);

	/*
	 * Every step of the window is computed and compared, whatever matched
	 * before it, so the time taken does not say which one did. Ascending,
	 * so the latest fresh step that matches wins: a code that happens to
	 * be the same at two steps is then spent for both.
	 */
	cur = (uint64_t)now / tp->period;
	for (uint64_t s = cur > WINDOW ? cur - WINDOW : 0; s <= cur + WINDOW; s++) {
		int eq;

		if ((r = zt_hotp_code(key, key_len, tp->alg, tp->digits, s, want, e)) != 0)
			goto out;
		eq = CRYPTO_memcmp(want, code, code_len) == 0;
		if (eq && s > last_used_step) {
			found = s;
			fresh = 1;
		} else if (eq) {
			reused = 1;
		}
	}
	if (fresh)
		*step = found;
	else if (reused)
		r = zt_err_rule(e, ZT_EVERIFY, "totp-reused", "the one-time code was used already");
	else
		r = zt_err_rule(e, ZT_EVERIFY, "totp-wrong", "wrong one-time code");
out:
	OPENSSL_cleanse(want, sizeof want);
	return r;
}

int zt_totp_secret(uint8_t out[ZT_TOTP_SECRET_LEN], zt_err *e)
{
	return zt_random(out, ZT_TOTP_SECRET_LEN, e);
}

/* ---- base32 -------------------------------------------------------------- */

static const char b32[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

int zt_base32_encode(const uint8_t *in, size_t n, int pad, zt_buf *out, zt_err *e)
{
	size_t olen, start = out->len;
	uint32_t acc = 0;
	int bits = 0, r;

	if (n > SIZE_MAX / 8 - 8)
		return zt_err_set(e, ZT_ELIMIT, "data too large to encode");
	if (n == 0)
		return zt_buf_terminate(out, e);
	olen = pad ? (n + 4) / 5 * 8 : (n * 8 + 4) / 5;
	if ((r = zt_buf_reserve(out, olen, e)) != 0)
		return r;
	char *o = (char *)out->p + start;
	for (size_t i = 0; i < n; i++) {
		acc = (acc << 8 | in[i]) & 0xfff; /* at most 12 bits are ever pending */
		bits += 8;
		while (bits >= 5) {
			bits -= 5;
			*o++ = b32[(acc >> bits) & 31];
		}
	}
	if (bits > 0)
		*o++ = b32[(acc << (5 - bits)) & 31];
	while (pad && (size_t)(o - (char *)out->p - start) % 8)
		*o++ = '=';
	out->len = (size_t)(o - (char *)out->p);
	return zt_buf_terminate(out, e);
}

static int b32val(char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a';
	if (c >= '2' && c <= '7')
		return c - '2' + 26;
	return -1;
}

int zt_base32_decode(const char *in, size_t n, zt_buf *out, zt_err *e)
{
	size_t body = n, start = out->len;
	uint32_t acc = 0;
	int bits = 0, r;

	while (body > 0 && in[body - 1] == '=')
		body--;
	/* a last group of 8 holds 1..5 bytes in 2, 4, 5, 7 or 8 characters */
	switch (body % 8) {
	case 1:
	case 3:
	case 6:
		return zt_err_set(e, ZT_EPARSE, "base32 has an impossible length");
	}
	if (body != n && (n % 8 != 0 || n - body >= 8))
		return zt_err_set(e, ZT_EPARSE, "base32 padding does not fill the last group of 8");
	if ((r = zt_buf_reserve(out, body * 5 / 8, e)) != 0)
		return r;
	for (size_t i = 0; i < body; i++) {
		int v = b32val(in[i]);

		if (v < 0) {
			out->len = start; /* nothing half-decoded is left behind */
			return zt_err_set(e, ZT_EPARSE, "invalid base32 character at offset %zu", i);
		}
		acc = (acc << 5 | (uint32_t)v) & 0xfff; /* at most 12 bits are ever pending */
		bits += 5;
		if (bits >= 8) {
			bits -= 8;
			out->p[out->len++] = (uint8_t)(acc >> bits);
		}
	}
	/* canonical: the unused low bits of the last character must be zero */
	if (bits > 0 && (acc & ((1u << bits) - 1)) != 0) {
		out->len = start;
		return zt_err_set(e, ZT_EPARSE, "non-canonical base32 (stray bits at the end)");
	}
	return 0;
}

/* ---- the enrolment URI ---------------------------------------------------- */

/* Appends s percent-encoded: RFC 3986 2.3 unreserved characters stay as they are. */
static int put_pct(zt_buf *out, const char *s, size_t n, zt_err *e)
{
	static const char hex[] = "0123456789ABCDEF";
	int r = 0;

	for (size_t i = 0; i < n && r == 0; i++) {
		unsigned char c = (unsigned char)s[i];

		if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		    c == '-' || c == '.' || c == '_' || c == '~') {
			r = zt_buf_append(out, &s[i], 1, e);
		} else {
			char t[3] = {'%', hex[c >> 4], hex[c & 15]};

			r = zt_buf_append(out, t, 3, e);
		}
	}
	return r;
}

static int uri_field_ok(const char *s, const char *what, zt_err *e)
{
	size_t n = strnlen(s, URI_FIELD_MAX + 1);

	if (n == 0 || n > URI_FIELD_MAX)
		return zt_err_rule(e, ZT_EINVAL, "totp-uri", "the %s is 1 to %d bytes", what,
				   URI_FIELD_MAX);
	for (size_t i = 0; i < n; i++)
		if (s[i] == ':' || (unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return zt_err_rule(e, ZT_EINVAL, "totp-uri",
					   "the %s may not hold ':' or control characters", what);
	return 0;
}

int zt_totp_uri(const char *issuer, const char *account, const uint8_t *key, size_t key_len,
		const zt_totp_params *tp, zt_buf *out, zt_err *e)
{
	size_t start = out->len;
	int r;

	if ((r = check_params(tp, e)) != 0 || (r = check_key(key_len, e)) != 0 ||
	    (r = uri_field_ok(issuer, "issuer", e)) != 0 ||
	    (r = uri_field_ok(account, "account name", e)) != 0)
		return r;
	if ((r = zt_buf_append(out, "otpauth://totp/", 15, e)) != 0 ||
	    (r = put_pct(out, issuer, strlen(issuer), e)) != 0 ||
	    (r = zt_buf_append(out, ":", 1, e)) != 0 ||
	    (r = put_pct(out, account, strlen(account), e)) != 0 ||
	    (r = zt_buf_append(out, "?secret=", 8, e)) != 0 ||
	    (r = zt_base32_encode(key, key_len, 0, out, e)) != 0 ||
	    (r = zt_buf_append(out, "&issuer=", 8, e)) != 0 ||
	    (r = put_pct(out, issuer, strlen(issuer), e)) != 0 ||
	    (r = zt_buf_appendf(out, e, "&algorithm=%s&digits=%u&period=%u",
				otp_alg_name(tp->alg), tp->digits, tp->period)) != 0 ||
	    (r = zt_buf_terminate(out, e)) != 0) {
		/* the URI holds the secret: wipe what was written before giving it back */
		if (out->p)
			OPENSSL_cleanse(out->p + start, out->len - start);
		out->len = start;
	}
	return r;
}
