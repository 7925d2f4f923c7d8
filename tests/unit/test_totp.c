/*
 * Unit tests: one-time codes (crypto/totp.c).
 *
 * Known answers: RFC 4226 Appendix D (HOTP, 6 digits, and 8 digits from
 * the same table's decimal column), RFC 6238 Appendix B (TOTP with its
 * three seeds, 8 digits), RFC 4648 10 (base32). Then the rules zt adds:
 * the window of one step either side, each code usable once, exact code
 * format, and the enrolment URI with its percent-encoding.
 */
#include "testutil.h"

#include "core/core.h"
#include "crypto/crypto.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* RFC 6238 Appendix B: one seed per hash, 20, 32 and 64 bytes */
#define SEED20 "12345678901234567890"
#define SEED32 "12345678901234567890123456789012"
#define SEED64 "1234567890123456789012345678901234567890123456789012345678901234"
#define KEY ((const uint8_t *)SEED20)

/* t = 30 * step + 15: the middle of a step, so t +- 31 s is the next step, t +- 61 s the one after */
#define STEP 57000000ull
#define MID ((int64_t)(STEP * 30 + 15))

static zt_totp_params params(enum zt_otp_alg alg, unsigned digits)
{
	zt_totp_params tp = {.alg = alg, .digits = digits, .period = 30};

	return tp;
}

static void code_at(const zt_totp_params *tp, int64_t t, char out[ZT_OTP_CODE_MAX])
{
	zt_err e;

	if (zt_totp_code(KEY, 20, tp, t, out, &e) != 0)
		fail_msg("totp at %lld: %s", (long long)t, e.msg);
}

/* Verifies code at now; returns the result and sets *step. */
static int check(const zt_totp_params *tp, const char *code, int64_t now, uint64_t last,
		 uint64_t *step, zt_err *e)
{
	zt_err_clear(e);
	return zt_totp_verify(KEY, 20, tp, code, strlen(code), now, last, step, e);
}

/* ---- known answers ------------------------------------------------------- */

static void test_rfc4226(void **state)
{
	static const char *const six[] = {"755224", "287082", "359152", "969429", "338314",
					  "254676", "287922", "162583", "399871", "520489"};
	/* the last 8 digits of Appendix D's "Decimal" column */
	static const char *const eight[] = {"84755224", "94287082", "37359152", "26969429",
					    "40338314", "68254676", "18287922", "82162583",
					    "73399871", "45520489"};
	char out[ZT_OTP_CODE_MAX];
	zt_err e;

	(void)state;
	for (uint64_t c = 0; c < 10; c++) {
		assert_int_equal(zt_hotp_code(KEY, 20, ZT_OTP_SHA1, 6, c, out, &e), 0);
		assert_string_equal(out, six[c]);
		assert_int_equal(zt_hotp_code(KEY, 20, ZT_OTP_SHA1, 8, c, out, &e), 0);
		assert_string_equal(out, eight[c]);
	}
}

static void test_rfc6238(void **state)
{
	static const struct {
		int64_t t;
		const char *sha1, *sha256, *sha512;
	} v[] = {
	    {59, "94287082", "46119246", "90693936"},
	    {1111111109, "07081804", "68084774", "25091201"},
	    {1111111111, "14050471", "67062674", "99943326"},
	    {1234567890, "89005924", "91819424", "93441116"},
	    {2000000000, "69279037", "90698825", "38618901"},
	    {20000000000, "65353130", "77737706", "47863826"},
	};
	zt_totp_params t1 = params(ZT_OTP_SHA1, 8), t256 = params(ZT_OTP_SHA256, 8),
		       t512 = params(ZT_OTP_SHA512, 8);
	char out[ZT_OTP_CODE_MAX];
	uint64_t step;
	zt_err e;

	(void)state;
	for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
		assert_int_equal(zt_totp_code((const uint8_t *)SEED20, 20, &t1, v[i].t, out, &e), 0);
		assert_string_equal(out, v[i].sha1);
		assert_int_equal(zt_totp_code((const uint8_t *)SEED32, 32, &t256, v[i].t, out, &e), 0);
		assert_string_equal(out, v[i].sha256);
		assert_int_equal(zt_totp_code((const uint8_t *)SEED64, 64, &t512, v[i].t, out, &e), 0);
		assert_string_equal(out, v[i].sha512);

		/* and each verifies at its own time, matching its step */
		assert_int_equal(zt_totp_verify((const uint8_t *)SEED64, 64, &t512, v[i].sha512, 8,
						v[i].t, 0, &step, &e),
				 0);
		assert_int_equal(step, (uint64_t)v[i].t / 30);
		/* but not under another hash or key */
		assert_int_equal(zt_totp_verify((const uint8_t *)SEED64, 64, &t1, v[i].sha512, 8,
						v[i].t, 0, &step, &e),
				 -ZT_EVERIFY);
		assert_int_equal(zt_totp_verify((const uint8_t *)SEED20, 20, &t512, v[i].sha512, 8,
						v[i].t, 0, &step, &e),
				 -ZT_EVERIFY);
	}
	/* 6 digits are the last 6 of the 8 */
	t1.digits = 6;
	assert_int_equal(zt_totp_code(KEY, 20, &t1, 1234567890, out, &e), 0);
	assert_string_equal(out, "005924");
}

static void test_base32_rfc4648(void **state)
{
	static const char *const v[][2] = {
	    {"", ""},
	    {"f", "MY======"},
	    {"fo", "MZXQ===="},
	    {"foo", "MZXW6==="},
	    {"foob", "MZXW6YQ="},
	    {"fooba", "MZXW6YTB"},
	    {"foobar", "MZXW6YTBOI======"},
	};
	char lower[32], bare[32];
	zt_buf b;
	zt_err e;

	(void)state;
	for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
		const char *in = v[i][0], *enc = v[i][1];
		size_t n = strlen(in), k;

		zt_buf_init(&b, 64);
		assert_int_equal(zt_base32_encode((const uint8_t *)in, n, 1, &b, &e), 0);
		assert_int_equal(b.len, strlen(enc));
		assert_memory_equal(b.p, enc, b.len);
		assert_int_equal(b.p[b.len], '\0');
		zt_buf_free(&b, 0);

		/* without padding */
		snprintf(bare, sizeof bare, "%s", enc);
		for (k = strlen(bare); k > 0 && bare[k - 1] == '='; k--)
			bare[k - 1] = '\0';
		zt_buf_init(&b, 64);
		assert_int_equal(zt_base32_encode((const uint8_t *)in, n, 0, &b, &e), 0);
		assert_string_equal((const char *)b.p, bare);
		zt_buf_free(&b, 0);

		/* decoding: padded, bare, lower case */
		for (k = 0; enc[k]; k++)
			lower[k] = (char)(enc[k] >= 'A' && enc[k] <= 'Z' ? enc[k] + 32 : enc[k]);
		lower[k] = '\0';
		const char *forms[] = {enc, bare, lower};
		for (size_t f = 0; f < 3; f++) {
			zt_buf_init(&b, 64);
			if (zt_base32_decode(forms[f], strlen(forms[f]), &b, &e) != 0)
				fail_msg("decode \"%s\": %s", forms[f], e.msg);
			assert_int_equal(b.len, n);
			if (n)
				assert_memory_equal(b.p, in, n);
			zt_buf_free(&b, 0);
		}
	}
	/* the RFC 4226 key as apps show it */
	zt_buf_init(&b, 64);
	assert_int_equal(zt_base32_encode(KEY, 20, 0, &b, &e), 0);
	assert_string_equal((const char *)b.p, "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ");
	zt_buf_free(&b, 0);
}

static void test_base32_refused(void **state)
{
	static const char *const bad[] = {
	    "MY=====",           /* short padding */
	    "MY=======",         /* long padding */
	    "MZXW6YTB========",  /* a whole group of padding */
	    "========",          /* padding only */
	    "M",                 /* 1, 3 and 6 characters cannot end a group */
	    "MZX",
	    "MZXW6Y",
	    "MZXW6YTBM",
	    "M=======",
	    "MZ======",          /* stray bits */
	    "MZXW7===",
	    "MZXW6YTBOJ======",
	    "MY==MY==",          /* padding inside */
	    "MZXW 6YTB",         /* white space is an error, not skipped */
	    " MZXW6YTB",
	    "MZXW6YTB\n",
	    "MZXW6YT1",          /* not in the alphabet: 0 1 8 9 and punctuation */
	    "MZXW6YT0",
	    "MZXW6YT8",
	    "MZXW6YT9",
	    "MZXW6YT-",
	    "MZXW6Y\xc3\xa9",
	};
	zt_buf b;
	zt_err e;

	(void)state;
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		zt_buf_init(&b, 64);
		assert_int_equal(zt_buf_append(&b, "x", 1, &e), 0);
		if (zt_base32_decode(bad[i], strlen(bad[i]), &b, &e) != -ZT_EPARSE)
			fail_msg("base32 \"%s\" was accepted", bad[i]);
		assert_int_equal(b.len, 1); /* nothing is left behind */
		zt_buf_free(&b, 0);
	}
	/* a NUL inside: the length given counts */
	zt_buf_init(&b, 64);
	assert_int_equal(zt_base32_decode("MZXW6\0TB", 8, &b, &e), -ZT_EPARSE);
	zt_buf_free(&b, 0);
	/* the buffer's cap holds */
	zt_buf_init(&b, 4);
	assert_int_equal(zt_base32_decode("MZXW6YTB", 8, &b, &e), -ZT_ELIMIT);
	zt_buf_free(&b, 0);
}

/* ---- verification --------------------------------------------------------- */

/* One step either side of now, measured from the middle of a step. */
static void test_window(void **state)
{
	zt_totp_params tp = zt_totp_defaults();
	const struct {
		int64_t offset; /* of the code's time from now */
		int ok;
		uint64_t step;
	} cases[] = {
	    {0, 1, STEP},          {-15, 1, STEP},      {14, 1, STEP},
	    {-16, 1, STEP - 1},    {-31, 1, STEP - 1},  {-45, 1, STEP - 1},
	    {-46, 0, 0},           {-61, 0, 0},         {-600, 0, 0},
	    {15, 1, STEP + 1},     {31, 1, STEP + 1},   {44, 1, STEP + 1},
	    {45, 0, 0},            {61, 0, 0},          {600, 0, 0},
	};
	char code[ZT_OTP_CODE_MAX];
	uint64_t step;
	zt_err e;

	(void)state;
	assert_int_equal(tp.alg, ZT_OTP_SHA1);
	assert_int_equal(tp.digits, 6);
	assert_int_equal(tp.period, 30);
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char other[ZT_OTP_CODE_MAX];
		int collides = 0;

		code_at(&tp, MID + cases[i].offset, code);
		/* a refused code must not by chance equal one of the window's */
		for (int64_t d = -30; d <= 30 && !cases[i].ok; d += 30) {
			code_at(&tp, MID + d, other);
			collides |= strcmp(other, code) == 0;
		}
		assert_false(collides);
		int r = check(&tp, code, MID, 0, &step, &e);

		if (cases[i].ok) {
			if (r != 0)
				fail_msg("offset %lld: %s", (long long)cases[i].offset, e.msg);
			assert_int_equal(step, cases[i].step);
		} else {
			assert_int_equal(r, -ZT_EVERIFY);
			assert_string_equal(e.rule, "totp-wrong");
			assert_int_equal(step, 0);
		}
	}
	/* near the epoch the window has no step before 0 */
	code_at(&tp, 0, code);
	assert_int_equal(check(&tp, code, 10, 0, &step, &e), -ZT_EVERIFY); /* step 0 is "used" */
	code_at(&tp, 31, code);
	assert_int_equal(check(&tp, code, 10, 0, &step, &e), 0);
	assert_int_equal(step, 1);
}

/* Each code once: steps up to last_used_step are refused, later ones not. */
static void test_reuse(void **state)
{
	zt_totp_params tp = zt_totp_defaults();
	char now_code[ZT_OTP_CODE_MAX], prev[ZT_OTP_CODE_MAX], next[ZT_OTP_CODE_MAX];
	uint64_t step, last;
	zt_err e;

	(void)state;
	code_at(&tp, MID, now_code);
	code_at(&tp, MID - 30, prev);
	code_at(&tp, MID + 30, next);
	assert_string_not_equal(now_code, prev);
	assert_string_not_equal(now_code, next);

	assert_int_equal(check(&tp, now_code, MID, 0, &step, &e), 0);
	assert_int_equal(step, STEP);
	last = step;
	/* the same code again, a moment later: refused, and named as reuse */
	assert_int_equal(check(&tp, now_code, MID + 5, last, &step, &e), -ZT_EVERIFY);
	assert_string_equal(e.rule, "totp-reused");
	assert_int_equal(step, 0);
	/* the previous step's code, still in the window, is spent too */
	assert_int_equal(check(&tp, prev, MID, last, &step, &e), -ZT_EVERIFY);
	assert_string_equal(e.rule, "totp-reused");
	/* the next step's code is fine, once */
	assert_int_equal(check(&tp, next, MID, last, &step, &e), 0);
	assert_int_equal(step, STEP + 1);
	last = step;
	assert_int_equal(check(&tp, next, MID + 30, last, &step, &e), -ZT_EVERIFY);
	assert_string_equal(e.rule, "totp-reused");
	/* and then the current code of the step after is accepted */
	code_at(&tp, MID + 60, next);
	assert_int_equal(check(&tp, next, MID + 60, last, &step, &e), 0);
	assert_int_equal(step, STEP + 2);
	/* a last_used_step in the future refuses everything in the window */
	assert_int_equal(check(&tp, now_code, MID, STEP + 5, &step, &e), -ZT_EVERIFY);
	/* a wrong code is "wrong", not "reused" */
	assert_int_equal(check(&tp, now_code[0] == '0' ? "111111" : "000000", MID, STEP + 5, &step,
			       &e),
			 -ZT_EVERIFY);
	assert_string_equal(e.rule, "totp-wrong");
}

/*
 * With the RFC 4226 key, SHA1 and 6 digits, steps 57766335 and 57766336
 * have the same code (found by search with Python's hmac): the later step
 * is the one spent, so the same digits cannot be entered twice.
 */
static void test_same_code_two_steps(void **state)
{
	zt_totp_params tp = zt_totp_defaults();
	char a[ZT_OTP_CODE_MAX], b[ZT_OTP_CODE_MAX];
	const int64_t now = 57766336ll * 30 + 5;
	uint64_t step;
	zt_err e;

	(void)state;
	code_at(&tp, now - 30, a);
	code_at(&tp, now, b);
	assert_string_equal(a, "251166");
	assert_string_equal(b, "251166");
	assert_int_equal(check(&tp, "251166", now, 0, &step, &e), 0);
	assert_int_equal(step, 57766336);
	assert_int_equal(check(&tp, "251166", now, 57766335, &step, &e), 0);
	assert_int_equal(step, 57766336);
	assert_int_equal(check(&tp, "251166", now, 57766336, &step, &e), -ZT_EVERIFY);
	assert_string_equal(e.rule, "totp-reused");
}

static void test_code_format(void **state)
{
	zt_totp_params tp = zt_totp_defaults(), t8 = params(ZT_OTP_SHA1, 8);
	char good[ZT_OTP_CODE_MAX], s[32];
	uint64_t step = 99;
	zt_err e;

	(void)state;
	code_at(&tp, MID, good);
	const char *bad[] = {"", "12345", "1234567", "12345a", "+12345", "-12345", " 12345",
			     "12345 ", "１２", "12 345"};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		assert_int_equal(check(&tp, bad[i], MID, 0, &step, &e), -ZT_EINVAL);
		assert_string_equal(e.rule, "totp-format");
		assert_int_equal(step, 0);
	}
	/* the right digits with something after them */
	snprintf(s, sizeof s, "%s ", good);
	assert_int_equal(check(&tp, s, MID, 0, &step, &e), -ZT_EINVAL);
	memcpy(s, good, 6);
	s[6] = '\0';
	s[7] = '\0';
	assert_int_equal(zt_totp_verify(KEY, 20, &tp, s, 7, MID, 0, &step, &e), -ZT_EINVAL);
	/* only the given length is read */
	snprintf(s, sizeof s, "%sxyz", good);
	assert_int_equal(zt_totp_verify(KEY, 20, &tp, s, 6, MID, 0, &step, &e), 0);
	/* 8-digit codes are 8 digits */
	assert_int_equal(check(&t8, good, MID, 0, &step, &e), -ZT_EINVAL);
	code_at(&t8, MID, s);
	assert_int_equal(strlen(s), 8);
	assert_int_equal(check(&t8, s, MID, 0, &step, &e), 0);
	assert_int_equal(check(&tp, s, MID, 0, &step, &e), -ZT_EINVAL);
	/* the same truncation: the 6-digit code is the 8-digit code's last 6 digits */
	assert_int_equal(check(&tp, s + 2, MID, 0, &step, &e), 0);
	assert_string_equal(s + 2, good);
}

static void test_params_and_keys(void **state)
{
	zt_totp_params tp = zt_totp_defaults(), bad;
	uint8_t key[ZT_OTP_KEY_MAX + 1];
	char out[ZT_OTP_CODE_MAX];
	uint64_t step;
	zt_err e;

	(void)state;
	memset(key, 7, sizeof key);
	assert_int_equal(zt_totp_code(key, ZT_OTP_KEY_MIN, &tp, MID, out, &e), 0);
	assert_int_equal(zt_totp_code(key, ZT_OTP_KEY_MAX, &tp, MID, out, &e), 0);
	assert_int_equal(zt_totp_code(key, ZT_OTP_KEY_MIN - 1, &tp, MID, out, &e), -ZT_EINVAL);
	assert_string_equal(e.rule, "totp-key");
	assert_string_equal(out, "");
	assert_int_equal(zt_totp_code(key, ZT_OTP_KEY_MAX + 1, &tp, MID, out, &e), -ZT_EINVAL);
	assert_int_equal(zt_totp_verify(key, 0, &tp, "123456", 6, MID, 0, &step, &e), -ZT_EINVAL);
	assert_int_equal(zt_hotp_code(key, 10, ZT_OTP_SHA1, 6, 0, out, &e), -ZT_EINVAL);

	bad = tp;
	bad.digits = 7;
	assert_int_equal(zt_totp_code(KEY, 20, &bad, MID, out, &e), -ZT_EINVAL);
	assert_int_equal(zt_hotp_code(KEY, 20, ZT_OTP_SHA1, 7, 0, out, &e), -ZT_EINVAL);
	assert_int_equal(zt_hotp_code(KEY, 20, ZT_OTP_SHA1, 10, 0, out, &e), -ZT_EINVAL);
	bad = tp;
	bad.period = 0;
	assert_int_equal(zt_totp_code(KEY, 20, &bad, MID, out, &e), -ZT_EINVAL);
	assert_int_equal(zt_totp_verify(KEY, 20, &bad, "123456", 6, MID, 0, &step, &e), -ZT_EINVAL);
	bad.period = ZT_TOTP_PERIOD_MAX + 1;
	assert_int_equal(zt_totp_code(KEY, 20, &bad, MID, out, &e), -ZT_EINVAL);
	bad = tp;
	bad.alg = (enum zt_otp_alg)3;
	assert_int_equal(zt_totp_code(KEY, 20, &bad, MID, out, &e), -ZT_EINVAL);
	assert_int_equal(zt_hotp_code(KEY, 20, (enum zt_otp_alg)3, 6, 0, out, &e), -ZT_EINVAL);
	/* a 60-second period counts 60-second steps */
	bad = params(ZT_OTP_SHA1, 8);
	bad.period = 60;
	assert_int_equal(zt_totp_code(KEY, 20, &bad, 119, out, &e), 0);
	assert_string_equal(out, "94287082"); /* HOTP counter 1 */
	/* times before 1970 */
	assert_int_equal(zt_totp_code(KEY, 20, &tp, -1, out, &e), -ZT_EINVAL);
	assert_int_equal(zt_totp_verify(KEY, 20, &tp, "123456", 6, -30, 0, &step, &e), -ZT_EINVAL);
	/* the last counter there is */
	assert_int_equal(zt_hotp_code(KEY, 20, ZT_OTP_SHA1, 6, UINT64_MAX, out, &e), 0);
	assert_int_equal(zt_totp_code(KEY, 20, &tp, INT64_MAX, out, &e), 0);
	assert_int_equal(zt_totp_verify(KEY, 20, &tp, out, 6, INT64_MAX, 0, &step, &e), 0);
	assert_int_equal(step, (uint64_t)INT64_MAX / 30);
}

static void test_secret(void **state)
{
	uint8_t a[ZT_TOTP_SECRET_LEN + 1], b[ZT_TOTP_SECRET_LEN];
	zt_err e;

	(void)state;
	memset(a, 0xee, sizeof a);
	assert_int_equal(zt_totp_secret(a, &e), 0);
	assert_int_equal(zt_totp_secret(b, &e), 0);
	assert_int_equal(a[ZT_TOTP_SECRET_LEN], 0xee); /* 20 bytes, no more */
	assert_memory_not_equal(a, b, ZT_TOTP_SECRET_LEN);
}

/* ---- the enrolment URI ---------------------------------------------------- */

static void expect_uri(const char *issuer, const char *account, const zt_totp_params *tp,
		       const char *want)
{
	zt_buf b;
	zt_err e;

	zt_buf_init(&b, 4096);
	if (zt_totp_uri(issuer, account, KEY, 20, tp, &b, &e) != 0)
		fail_msg("uri %s %s: %s", issuer, account, e.msg);
	assert_int_equal(b.len, strlen(want));
	assert_string_equal((const char *)b.p, want);
	zt_buf_free(&b, 1);
}

static void test_uri(void **state)
{
	zt_totp_params tp = zt_totp_defaults(), t8 = params(ZT_OTP_SHA512, 8);
	char big[300];
	zt_buf b;
	zt_err e;

	(void)state;
	expect_uri("Example", "alice", &tp,
		   "otpauth://totp/Example:alice?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"
		   "&issuer=Example&algorithm=SHA1&digits=6&period=30");
	expect_uri("ACME Co", "alice@example.com", &tp,
		   "otpauth://totp/ACME%20Co:alice%40example.com?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"
		   "&issuer=ACME%20Co&algorithm=SHA1&digits=6&period=30");
	/* reserved characters, '%' itself, '+' (never a space here), UTF-8 bytes */
	expect_uri("a&b=c?d/e#f+g%h", "Zo\xc3\xab ~x_y.z-", &t8,
		   "otpauth://totp/a%26b%3Dc%3Fd%2Fe%23f%2Bg%25h:Zo%C3%AB%20~x_y.z-"
		   "?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=a%26b%3Dc%3Fd%2Fe%23f%2Bg%25h"
		   "&algorithm=SHA512&digits=8&period=30");

	/* refused: ':' (it separates issuer from account), control characters, empty, too long */
	const char *bad[][2] = {{"a:b", "x"}, {"a", "x:y"}, {"", "x"},     {"a", ""},
				{"a\n", "x"}, {"a", "x\ty"}, {"a\x7f", "x"}};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		zt_buf_init(&b, 4096);
		assert_int_equal(zt_totp_uri(bad[i][0], bad[i][1], KEY, 20, &tp, &b, &e), -ZT_EINVAL);
		assert_string_equal(e.rule, "totp-uri");
		assert_int_equal(b.len, 0);
		zt_buf_free(&b, 1);
	}
	memset(big, 'a', sizeof big);
	big[256] = '\0';
	zt_buf_init(&b, 4096);
	assert_int_equal(zt_totp_uri(big, "x", KEY, 20, &tp, &b, &e), 0);
	zt_buf_free(&b, 1);
	big[256] = 'a';
	big[257] = '\0';
	zt_buf_init(&b, 4096);
	assert_int_equal(zt_totp_uri(big, "x", KEY, 20, &tp, &b, &e), -ZT_EINVAL);
	assert_int_equal(zt_totp_uri("x", big, KEY, 20, &tp, &b, &e), -ZT_EINVAL);
	zt_buf_free(&b, 1);
	/* a buffer too small leaves nothing of the secret behind */
	zt_buf_init(&b, 100); /* room for the secret, not for the parameters after it */
	assert_int_equal(zt_buf_append(&b, "keep", 4, &e), 0);
	assert_int_equal(zt_totp_uri("Example", "alice", KEY, 20, &tp, &b, &e), -ZT_ELIMIT);
	assert_int_equal(b.len, 4);
	assert_memory_equal(b.p, "keep", 4);
	assert_null(memmem(b.p, b.cap, "GEZDGNBV", 8));
	zt_buf_free(&b, 1);
	/* a bad key or parameters */
	zt_buf_init(&b, 4096);
	assert_int_equal(zt_totp_uri("a", "b", KEY, 8, &tp, &b, &e), -ZT_EINVAL);
	t8.digits = 9;
	assert_int_equal(zt_totp_uri("a", "b", KEY, 20, &t8, &b, &e), -ZT_EINVAL);
	zt_buf_free(&b, 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_rfc4226),
	    cmocka_unit_test(test_rfc6238),
	    cmocka_unit_test(test_base32_rfc4648),
	    cmocka_unit_test(test_base32_refused),
	    cmocka_unit_test(test_window),
	    cmocka_unit_test(test_reuse),
	    cmocka_unit_test(test_same_code_two_steps),
	    cmocka_unit_test(test_code_format),
	    cmocka_unit_test(test_params_and_keys),
	    cmocka_unit_test(test_secret),
	    cmocka_unit_test(test_uri),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
