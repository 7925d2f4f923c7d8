/*
 * Unit tests: password hashes (crypto/password.c).
 *
 * Known answers come from outside zt's code: the RFC 9106 5.3 Argon2id
 * vector run through libargon2's full API (so the library is the real
 * Argon2id v1.3), and PHC strings made by the reference `argon2` command
 * (Debian's argon2 package), which zt must parse, verify and write back
 * byte for byte. A hash zt makes is recomputed here with libargon2's own
 * encoder from the salt zt chose. Every field of a stored hash is then
 * broken in turn, and each cap is tried at and just past its limit.
 */
#include "testutil.h"

#include "core/core.h"
#include "crypto/crypto.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <argon2.h>

/*
 * printf 'correct horse battery staple' |
 *     argon2 zt-kat-salt-16b -id -m 12 -t 3 -p 2 -l 32
 * (the salt is the 15 bytes "zt-kat-salt-16b")
 */
#define KAT1_PW "correct horse battery staple"
#define KAT1 "$argon2id$v=19$m=4096,t=3,p=2$enQta2F0LXNhbHQtMTZi$Q9hU9WLsP1D5wkLsXi6y7KOgpYe4NskCgUXGGeKODGc"
static const uint8_t KAT1_TAG[32] = {
    0x43, 0xd8, 0x54, 0xf5, 0x62, 0xec, 0x3f, 0x50, 0xf9, 0xc2, 0x42, 0xec, 0x5e, 0x2e, 0xb2, 0xec,
    0xa3, 0xa0, 0xa5, 0x87, 0xb8, 0x36, 0xc9, 0x02, 0x81, 0x45, 0xc6, 0x19, 0xe2, 0x8e, 0x0c, 0x67};
/* printf 'password' | argon2 somesalt -id -k 64 -t 1 -p 1 -l 16 -e: smallest salt and tag */
#define KAT2_PW "password"
#define KAT2 "$argon2id$v=19$m=64,t=1,p=1$c29tZXNhbHQ$pMlwOs/gn+zdvoB/AGiRNA"
/* printf '\xff\x00p' | argon2 saltsalt -id -k 8 -t 1 -p 1 -l 64 -e: least memory, longest tag */
#define KAT3_PW "\xff\x00p"
#define KAT3                                                                                   \
	"$argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$9QMNVPqFkJyk0MnxQVx3VSZ4RGFG7653KzhsLAOSm84VEIS65E" \
	"7Ftyt1r47tPk+PiEhBq6an3BDHC4ptU8kLnw"

/* cheap parameters for tests that are not about the cost */
static const zt_pw_params CHEAP = {.m_kib = 64, .t = 1, .p = 1};

static void expect_verify(const char *pw, size_t pw_len, const char *phc, int want_rc,
			  const char *want_rule, int want_rehash)
{
	int rehash = -1, r;
	zt_err e;

	zt_err_clear(&e);
	r = zt_password_verify(pw, pw_len, phc, strlen(phc), &rehash, &e);
	if (r != want_rc)
		fail_msg("verify %s: %d (%s), wanted %d", phc, r, e.msg, want_rc);
	if (want_rule)
		assert_string_equal(e.rule, want_rule);
	assert_int_equal(rehash, r == 0 ? want_rehash : 0);
}

/* Parses phc expecting a refusal with this code and rule; the output is left zeroed. */
static void expect_refused(const char *phc, size_t n, int code, const char *rule)
{
	zt_pw_phc h, zero;
	zt_err e;
	int r;

	memset(&zero, 0, sizeof zero);
	memset(&h, 0xa5, sizeof h);
	zt_err_clear(&e);
	r = zt_pw_phc_parse(phc, n, &h, &e);
	if (r != -code)
		fail_msg("parse \"%.*s\": %d (%s), wanted %d", (int)n, phc, r, e.msg, -code);
	assert_string_equal(e.rule, rule);
	assert_true(strstr(e.msg, "stored password hash") != NULL);
	assert_memory_equal(&h, &zero, sizeof h);
	/* verify refuses it the same way, before any Argon2 run */
	zt_err_clear(&e);
	assert_int_equal(zt_password_verify("pw", 2, phc, n, NULL, &e), -code);
	assert_string_equal(e.rule, rule);
}

static double thread_cpu_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* ---- known answers ------------------------------------------------------- */

/* RFC 9106 5.3: the library under zt computes Argon2id version 0x13. */
static void test_rfc9106_vector(void **state)
{
	static const uint8_t want[32] = {
	    0x0d, 0x64, 0x0d, 0xf5, 0x8d, 0x78, 0x76, 0x6c, 0x08, 0xc0, 0x37,
	    0xa3, 0x4a, 0x8b, 0x53, 0xc9, 0xd0, 0x1e, 0xf0, 0x45, 0x2d, 0x75,
	    0xb6, 0x5e, 0xb5, 0x25, 0x20, 0xe9, 0x6b, 0x01, 0xe6, 0x59};
	uint8_t pwd[32], salt[16], secret[8], ad[12], out[32];
	argon2_context c;

	(void)state;
	memset(pwd, 1, sizeof pwd);
	memset(salt, 2, sizeof salt);
	memset(secret, 3, sizeof secret);
	memset(ad, 4, sizeof ad);
	memset(&c, 0, sizeof c);
	c.out = out;
	c.outlen = sizeof out;
	c.pwd = pwd;
	c.pwdlen = sizeof pwd;
	c.salt = salt;
	c.saltlen = sizeof salt;
	c.secret = secret;
	c.secretlen = sizeof secret;
	c.ad = ad;
	c.adlen = sizeof ad;
	c.t_cost = 3;
	c.m_cost = 32;
	c.lanes = 4;
	c.threads = 4;
	c.version = ARGON2_VERSION_13;
	assert_int_equal(argon2_ctx(&c, Argon2_id), ARGON2_OK);
	assert_memory_equal(out, want, sizeof want);
}

/* Strings from the reference argon2 command: parsed, verified, written back identically. */
static void test_reference_strings(void **state)
{
	const struct {
		const char *phc, *pw;
		size_t pw_len;
		uint32_t m, t, p;
		const char *salt;
		size_t tag_len;
	} kat[] = {
	    {KAT1, KAT1_PW, sizeof KAT1_PW - 1, 4096, 3, 2, "zt-kat-salt-16b", 32},
	    {KAT2, KAT2_PW, sizeof KAT2_PW - 1, 64, 1, 1, "somesalt", 16},
	    {KAT3, KAT3_PW, sizeof KAT3_PW - 1, 8, 1, 1, "saltsalt", 64},
	};
	char again[ZT_PW_HASH_MAX];
	zt_pw_phc h;
	zt_err e;

	(void)state;
	for (size_t i = 0; i < sizeof kat / sizeof kat[0]; i++) {
		if (zt_pw_phc_parse(kat[i].phc, strlen(kat[i].phc), &h, &e) != 0)
			fail_msg("parse %s: %s", kat[i].phc, e.msg);
		assert_int_equal(h.params.m_kib, kat[i].m);
		assert_int_equal(h.params.t, kat[i].t);
		assert_int_equal(h.params.p, kat[i].p);
		assert_int_equal(h.salt_len, strlen(kat[i].salt));
		assert_memory_equal(h.salt, kat[i].salt, h.salt_len);
		assert_int_equal(h.tag_len, kat[i].tag_len);
		if (i == 0)
			assert_memory_equal(h.tag, KAT1_TAG, 32);
		assert_int_equal(zt_pw_phc_format(&h, again, &e), 0);
		assert_string_equal(again, kat[i].phc);

		/* all three are weaker than the defaults: a match asks for a rehash */
		expect_verify(kat[i].pw, kat[i].pw_len, kat[i].phc, 0, NULL, 1);
		expect_verify("wrong", 5, kat[i].phc, -ZT_EVERIFY, "password", 0);
		/* one byte more or less is a different password */
		expect_verify(kat[i].pw, kat[i].pw_len - 1, kat[i].phc, -ZT_EVERIFY, "password", 0);
	}
	/* the NUL inside KAT3's password is part of it */
	expect_verify("\xff", 1, KAT3, -ZT_EVERIFY, "password", 0);
}

/* What zt writes is what libargon2's own encoder writes for the same salt. */
static void test_hash_matches_libargon2(void **state)
{
	const zt_pw_params params[] = {{64, 1, 1}, {4096, 3, 2}, {1024, 2, 4}};
	char out[ZT_PW_HASH_MAX], ref[ZT_PW_HASH_MAX];
	zt_pw_phc h;
	zt_err e;

	(void)state;
	for (size_t i = 0; i < sizeof params / sizeof params[0]; i++) {
		if (zt_password_hash("hunter2", 7, &params[i], out, &e) != 0)
			fail_msg("hash: %s", e.msg);
		assert_int_equal(zt_pw_phc_parse(out, strlen(out), &h, &e), 0);
		assert_int_equal(h.salt_len, ZT_PW_SALT_LEN);
		assert_int_equal(h.tag_len, ZT_PW_TAG_LEN);
		assert_memory_equal(&h.params, &params[i], sizeof h.params);
		assert_int_equal(argon2id_hash_encoded(params[i].t, params[i].m_kib, params[i].p,
						       "hunter2", 7, h.salt, h.salt_len, ZT_PW_TAG_LEN,
						       ref, sizeof ref),
				 ARGON2_OK);
		assert_string_equal(out, ref);
		assert_int_equal(argon2id_verify(out, "hunter2", 7), ARGON2_OK);
	}
}

/* ---- hashing and verifying ------------------------------------------------ */

static void test_round_trip(void **state)
{
	char a[ZT_PW_HASH_MAX], b[ZT_PW_HASH_MAX];
	zt_err e;

	(void)state;
	assert_int_equal(zt_password_hash("s3cret", 6, &CHEAP, a, &e), 0);
	assert_int_equal(zt_password_hash("s3cret", 6, &CHEAP, b, &e), 0);
	assert_true(strncmp(a, "$argon2id$v=19$m=64,t=1,p=1$", 28) == 0);
	/* 16-byte salt and 32-byte tag: 22 and 43 base64 characters */
	assert_int_equal(strlen(a), 28 + 22 + 1 + 43);
	assert_string_not_equal(a, b); /* a new salt each time */
	expect_verify("s3cret", 6, a, 0, NULL, 1);
	expect_verify("s3cret", 6, b, 0, NULL, 1);
	expect_verify("s3creT", 6, a, -ZT_EVERIFY, "password", 0);
	expect_verify("s3cret ", 7, a, -ZT_EVERIFY, "password", 0);
	/* needs_rehash may be NULL */
	assert_int_equal(zt_password_verify("s3cret", 6, a, strlen(a), NULL, &e), 0);
	/* the length given is what counts, not a NUL */
	memcpy(b, a, strlen(a));
	memcpy(b + strlen(a), "$x", 3);
	assert_int_equal(zt_password_verify("s3cret", 6, b, strlen(a), NULL, &e), 0);
	assert_int_not_equal(zt_password_verify("s3cret", 6, b, strlen(a) + 2, NULL, &e), 0);
	assert_int_not_equal(zt_password_verify("s3cret", 6, a, strlen(a) - 1, NULL, &e), 0);
}

/* At the defaults: no rehash; below them in m or t: rehash. */
static void test_defaults_and_rehash(void **state)
{
	zt_pw_params d = zt_pw_defaults(), p;
	char h[ZT_PW_HASH_MAX], want[64];
	zt_err e;

	(void)state;
	/* RFC 9106 4 / OWASP: at least 19 MiB; the chosen values are documented in password.c */
	assert_int_equal(d.m_kib, 47104);
	assert_int_equal(d.t, 2);
	assert_int_equal(d.p, 1);
	assert_int_equal(zt_pw_params_check(&d, &e), 0);

	assert_int_equal(zt_password_hash("pw", 2, NULL, h, &e), 0);
	snprintf(want, sizeof want, "$argon2id$v=19$m=%u,t=%u,p=%u$", d.m_kib, d.t, d.p);
	assert_true(strncmp(h, want, strlen(want)) == 0);
	expect_verify("pw", 2, h, 0, NULL, 0);

	p = d;
	p.t = d.t - 1;
	assert_int_equal(zt_password_hash("pw", 2, &p, h, &e), 0);
	expect_verify("pw", 2, h, 0, NULL, 1);
	p = d;
	p.m_kib = d.m_kib - 1;
	assert_int_equal(zt_password_hash("pw", 2, &p, h, &e), 0);
	expect_verify("pw", 2, h, 0, NULL, 1);
	/* stronger in one way, weaker in another: still a rehash */
	p = d;
	p.m_kib = d.m_kib / 2;
	p.t = d.t * 2;
	assert_int_equal(zt_password_hash("pw", 2, &p, h, &e), 0);
	expect_verify("pw", 2, h, 0, NULL, 1);
	/* stronger: no rehash; more lanes change nothing */
	p = d;
	p.t = d.t + 1;
	p.p = 2;
	assert_int_equal(zt_password_hash("pw", 2, &p, h, &e), 0);
	expect_verify("pw", 2, h, 0, NULL, 0);
	/* a wrong password never reports a rehash */
	expect_verify("px", 2, KAT1, -ZT_EVERIFY, "password", 0);
}

/* A stored hash at the defaults but with a short salt or tag asks for a rehash too. */
static void test_rehash_short_salt_or_tag(void **state)
{
	zt_pw_params d = zt_pw_defaults();
	char phc[ZT_PW_HASH_MAX];
	zt_pw_phc h;
	zt_err e;

	(void)state;
	memset(&h, 0, sizeof h);
	h.params = d;
	memcpy(h.salt, "0123456789abcdef", 16);
	for (int which = 0; which < 3; which++) {
		h.salt_len = which == 1 ? 8 : 16;
		h.tag_len = which == 2 ? 16 : 32;
		assert_int_equal(argon2id_hash_raw(d.t, d.m_kib, d.p, "pw", 2, h.salt, h.salt_len,
						   h.tag, h.tag_len),
				 ARGON2_OK);
		assert_int_equal(zt_pw_phc_format(&h, phc, &e), 0);
		expect_verify("pw", 2, phc, 0, NULL, which != 0);
	}
}

static void test_password_length(void **state)
{
	char big[ZT_PW_MAX_LEN + 1], h[ZT_PW_HASH_MAX];
	int rehash = 7;
	zt_err e;

	(void)state;
	memset(big, 'x', sizeof big);
	/* 1024 bytes is fine; 1025 is refused, not truncated */
	assert_int_equal(zt_password_hash(big, ZT_PW_MAX_LEN, &CHEAP, h, &e), 0);
	expect_verify(big, ZT_PW_MAX_LEN, h, 0, NULL, 1);
	zt_err_clear(&e);
	assert_int_equal(zt_password_verify(big, ZT_PW_MAX_LEN + 1, h, strlen(h), &rehash, &e),
			 -ZT_ELIMIT);
	assert_string_equal(e.rule, "password-length");
	assert_int_equal(rehash, 0);
	assert_int_equal(zt_password_hash(big, ZT_PW_MAX_LEN + 1, &CHEAP, h, &e), -ZT_ELIMIT);
	assert_string_equal(e.rule, "password-length");
	assert_null(strstr(e.msg, "xx")); /* the password never shows in a message */
	assert_string_equal(h, "");
	assert_int_equal(zt_password_dummy_verify(big, ZT_PW_MAX_LEN + 1, &e), -ZT_ELIMIT);
	/* empty */
	assert_int_equal(zt_password_hash("", 0, &CHEAP, h, &e), -ZT_EINVAL);
	assert_string_equal(e.rule, "password-length");
	assert_int_equal(zt_password_verify("", 0, KAT2, strlen(KAT2), NULL, &e), -ZT_EINVAL);
	assert_int_equal(zt_password_dummy_verify("", 0, &e), -ZT_EINVAL);
	/* one byte */
	assert_int_equal(zt_password_hash("x", 1, &CHEAP, h, &e), 0);
	expect_verify("x", 1, h, 0, NULL, 1);
}

/* ---- parameters and their caps -------------------------------------------- */

static void test_params(void **state)
{
	const struct {
		zt_pw_params p;
		int code;
	} cases[] = {
	    {{8, 1, 1}, 0},
	    {{ZT_PW_M_MAX, 2, 16}, 0},
	    {{ZT_PW_WORK_MAX / 64, 64, 1}, 0},
	    {{128, 1, 16}, 0},
	    {{0, 1, 1}, ZT_EINVAL},
	    {{7, 1, 1}, ZT_EINVAL},
	    {{127, 1, 16}, ZT_EINVAL}, /* m < 8 p */
	    {{64, 0, 1}, ZT_EINVAL},
	    {{64, 1, 0}, ZT_EINVAL},
	    {{ZT_PW_M_MAX + 1, 1, 1}, ZT_ELIMIT},
	    {{64, ZT_PW_T_MAX + 1, 1}, ZT_ELIMIT},
	    {{256, 1, ZT_PW_P_MAX + 1}, ZT_ELIMIT},
	    {{ZT_PW_M_MAX, 3, 1}, ZT_ELIMIT}, /* m * t over the work cap */
	    {{ZT_PW_WORK_MAX / 64 + 1, 64, 1}, ZT_ELIMIT},
	    {{UINT32_MAX, UINT32_MAX, UINT32_MAX}, ZT_ELIMIT},
	};
	char h[ZT_PW_HASH_MAX];
	zt_err e;

	(void)state;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		int r = zt_pw_params_check(&cases[i].p, &e);

		if (r != -cases[i].code)
			fail_msg("params m=%u t=%u p=%u: %d, wanted %d", cases[i].p.m_kib,
				 cases[i].p.t, cases[i].p.p, r, -cases[i].code);
		/* zt_password_hash refuses the same before any Argon2 run */
		if (cases[i].code) {
			assert_int_equal(zt_password_hash("pw", 2, &cases[i].p, h, &e),
					 -cases[i].code);
			assert_string_equal(h, "");
		}
	}
}

/* ---- hostile stored hashes -------------------------------------------------- */

#define S16 "MDEyMzQ1Njc4OWFiY2RlZg" /* "0123456789abcdef" */
#define T32 "Q9hU9WLsP1D5wkLsXi6y7KOgpYe4NskCgUXGGeKODGc"
#define HEAD "$argon2id$v=19$"

static void test_malformed(void **state)
{
	const struct {
		const char *phc;
		int code;
		const char *rule;
	} cases[] = {
	    /* the algorithm and version */
	    {"", ZT_EPARSE, "password-hash"},
	    {"$argon2i$v=19$m=64,t=1,p=1$" S16 "$" T32, ZT_EPARSE, "password-hash"},
	    {"$argon2d$v=19$m=64,t=1,p=1$" S16 "$" T32, ZT_EPARSE, "password-hash"},
	    {"$argon2ID$v=19$m=64,t=1,p=1$" S16 "$" T32, ZT_EPARSE, "password-hash"},
	    {"argon2id$v=19$m=64,t=1,p=1$" S16 "$" T32, ZT_EPARSE, "password-hash"},
	    {"$2b$12$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW", ZT_EPARSE,
	     "password-hash"},
	    {"$argon2id$m=64,t=1,p=1$" S16 "$" T32, ZT_EPARSE, "password-hash"}, /* no version */
	    {"$argon2id$v=16$m=64,t=1,p=1$" S16 "$" T32, ZT_EPARSE, "password-hash"},
	    {"$argon2id$v=190$m=64,t=1,p=1$" S16 "$" T32, ZT_EPARSE, "password-hash"},
	    {"$argon2id$v=19", ZT_EPARSE, "password-hash"},
	    /* m */
	    {HEAD "t=1,m=64,p=1$" S16 "$" T32, ZT_EPARSE, "password-hash"},
	    {HEAD "m=,t=1,p=1$" S16 "$" T32, ZT_EPARSE, "password-hash"},
	    {HEAD "m=064,t=1,p=1$" S16 "$" T32, ZT_EPARSE, "password-hash"},
	    {HEAD "m=+64,t=1,p=1$" S16 "$" T32, ZT_EPARSE, "password-hash"},
	    {HEAD "m=-64,t=1,p=1$" S16 "$" T32, ZT_EPARSE, "password-hash"},
	    {HEAD "m=64 ,t=1,p=1$" S16 "$" T32, ZT_EPARSE, "password-hash"},
	    {HEAD "m=0x40,t=1,p=1$" S16 "$" T32, ZT_EPARSE, "password-hash"},
	    {HEAD "m=0,t=1,p=1$" S16 "$" T32, ZT_EINVAL, "password-hash"},
	    {HEAD "m=7,t=1,p=1$" S16 "$" T32, ZT_EINVAL, "password-hash"},
	    {HEAD "m=1048577,t=1,p=1$" S16 "$" T32, ZT_ELIMIT, "password-hash-limit"},
	    {HEAD "m=4294967360,t=1,p=1$" S16 "$" T32, ZT_ELIMIT, "password-hash-limit"},
	    {HEAD "m=99999999999999999999999999,t=1,p=1$" S16 "$" T32, ZT_ELIMIT,
	     "password-hash-limit"},
	    /* t */
	    {HEAD "m=64,p=1,t=1$" S16 "$" T32, ZT_EPARSE, "password-hash"},
	    {HEAD "m=64;t=1,p=1$" S16 "$" T32, ZT_EPARSE, "password-hash"},
	    {HEAD "m=64,t=0,p=1$" S16 "$" T32, ZT_EINVAL, "password-hash"},
	    {HEAD "m=64,t=01,p=1$" S16 "$" T32, ZT_EPARSE, "password-hash"},
	    {HEAD "m=64,t=65,p=1$" S16 "$" T32, ZT_ELIMIT, "password-hash-limit"},
	    {HEAD "m=1048576,t=3,p=1$" S16 "$" T32, ZT_ELIMIT, "password-hash-limit"},
	    /* p */
	    {HEAD "m=64,t=1$" S16 "$" T32, ZT_EPARSE, "password-hash"},
	    {HEAD "m=64,t=1,p=0$" S16 "$" T32, ZT_EINVAL, "password-hash"},
	    {HEAD "m=64,t=1,p=17$" S16 "$" T32, ZT_ELIMIT, "password-hash-limit"},
	    {HEAD "m=64,t=1,p=9$" S16 "$" T32, ZT_EINVAL, "password-hash"}, /* m < 8 p */
	    {HEAD "m=64,t=1,p=1,data=abc$" S16 "$" T32, ZT_EPARSE, "password-hash"},
	    {HEAD "m=64,t=1,p=1,$" S16 "$" T32, ZT_EPARSE, "password-hash"},
	    {HEAD "m=64,t=1,p=1", ZT_EPARSE, "password-hash"},
	    /* the salt */
	    {HEAD "m=64,t=1,p=1$" S16, ZT_EPARSE, "password-hash"},
	    {HEAD "m=64,t=1,p=1$" S16 "$", ZT_EPARSE, "password-hash"},
	    {HEAD "m=64,t=1,p=1$$" T32, ZT_EPARSE, "password-hash"},
	    {HEAD "m=64,t=1,p=1$MDEyMzQ1Ng$" T32, ZT_EPARSE, "password-hash"}, /* 7 bytes */
	    {HEAD "m=64,t=1,p=1$" S16 "==$" T32, ZT_EPARSE, "password-hash"},  /* padded */
	    {HEAD "m=64,t=1,p=1$MDEyMzQ1Njc4OWFiY2RlZh$" T32, ZT_EPARSE, "password-hash"},
	    {HEAD "m=64,t=1,p=1$MDEyMzQ1Njc4OWFiY2RlZ$" T32, ZT_EPARSE, "password-hash"},
	    {HEAD "m=64,t=1,p=1$MDEyMzQ1Njc4OWFiY2Rl-g$" T32, ZT_EPARSE, "password-hash"},
	    {HEAD "m=64,t=1,p=1$MDEyMzQ1Njc4 OWFiY2RlZg$" T32, ZT_EPARSE, "password-hash"},
	    {HEAD "m=64,t=1,p=1$" S16 "$" T32 "$", ZT_EPARSE, "password-hash"},
	    /* the tag */
	    {HEAD "m=64,t=1,p=1$" S16 "$c29tZXNhbHQ", ZT_EPARSE, "password-hash"}, /* 8 bytes */
	    {HEAD "m=64,t=1,p=1$" S16 "$" T32 "=", ZT_EPARSE, "password-hash"},
	    {HEAD "m=64,t=1,p=1$" S16 "$" T32 "\n", ZT_EPARSE, "password-hash"},
	    {HEAD "m=64,t=1,p=1$" S16 "$Q9hU9WLsP1D5wkLsXi6y7KOgpYe4NskCgUXGGeKODGd", ZT_EPARSE,
	     "password-hash"}, /* stray bits */
	    {HEAD "m=64,t=1,p=1$" S16 "$Q9hU9WLsP1D5wkLsXi6y7KOgpYe4NskCgUXGGeKODG", ZT_EPARSE,
	     "password-hash"}, /* 31 bytes, stray bits */
	};
	char buf[512];

	(void)state;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
		expect_refused(cases[i].phc, strlen(cases[i].phc), cases[i].code, cases[i].rule);

	/* the same string is fine, so each case above is refused for its one flaw */
	expect_verify("pw", 2, HEAD "m=64,t=1,p=1$" S16 "$" T32, -ZT_EVERIFY, "password", 0);

	/* a NUL inside, and the length given rather than a NUL, count */
	snprintf(buf, sizeof buf, "%s", KAT2);
	buf[30] = '\0';
	expect_refused(buf, strlen(KAT2), ZT_EPARSE, "password-hash");
	expect_refused(KAT2, strlen(KAT2) - 1, ZT_EPARSE, "password-hash"); /* impossible tag length */
	expect_refused(KAT2, 29, ZT_EPARSE, "password-hash");
	expect_refused(KAT2, 0, ZT_EPARSE, "password-hash");
}

/* Salt and tag at and past their caps, and the longest string. */
static void test_lengths(void **state)
{
	char phc[1024], b64_64[87], b64_65[88], b64_7[10], b64_15[21];
	zt_pw_phc h;
	zt_err e;

	(void)state;
	/* 64 and 65 zero bytes, 7 and 15 */
	memset(b64_64, 'A', 86);
	b64_64[86] = '\0';
	memset(b64_65, 'A', 87);
	b64_65[87] = '\0';
	snprintf(b64_7, sizeof b64_7, "AAAAAAAAAA");
	snprintf(b64_15, sizeof b64_15, "AAAAAAAAAAAAAAAAAAAA");

	snprintf(phc, sizeof phc, HEAD "m=1048576,t=2,p=16$%s$%s", b64_64, b64_64);
	assert_int_equal(strlen(phc), 34 + 86 + 1 + 86);
	assert_int_equal(zt_pw_phc_parse(phc, strlen(phc), &h, &e), 0);
	assert_int_equal(h.salt_len, 64);
	assert_int_equal(h.tag_len, 64);
	snprintf(phc, sizeof phc, HEAD "m=64,t=1,p=1$%s$" T32, b64_65);
	expect_refused(phc, strlen(phc), ZT_ELIMIT, "password-hash-limit");
	snprintf(phc, sizeof phc, HEAD "m=64,t=1,p=1$" S16 "$%s", b64_65);
	expect_refused(phc, strlen(phc), ZT_ELIMIT, "password-hash-limit");
	snprintf(phc, sizeof phc, HEAD "m=64,t=1,p=1$%s$" T32, b64_7);
	expect_refused(phc, strlen(phc), ZT_EPARSE, "password-hash");
	snprintf(phc, sizeof phc, HEAD "m=64,t=1,p=1$" S16 "$%s", b64_15);
	expect_refused(phc, strlen(phc), ZT_EPARSE, "password-hash");
	/* a huge salt is refused by its length, before anything is decoded */
	snprintf(phc, sizeof phc, HEAD "m=64,t=1,p=1$");
	memset(phc + strlen(phc), 'A', 150);
	phc[28 + 150] = '\0';
	strcat(phc, "$" T32);
	expect_refused(phc, strlen(phc), ZT_ELIMIT, "password-hash-limit");
	/* 256 bytes or more is refused outright */
	memset(phc, 'A', 600);
	memcpy(phc, KAT1, strlen(KAT1));
	expect_refused(phc, ZT_PW_HASH_MAX, ZT_ELIMIT, "password-hash-limit");
	expect_refused(phc, 600, ZT_ELIMIT, "password-hash-limit");

	/* zt_pw_phc_format checks what it writes */
	memset(&h, 0, sizeof h);
	h.params = CHEAP;
	h.salt_len = 7;
	h.tag_len = 32;
	assert_int_equal(zt_pw_phc_format(&h, phc, &e), -ZT_EINVAL);
	assert_string_equal(phc, "");
	h.salt_len = 16;
	h.tag_len = 65;
	assert_int_equal(zt_pw_phc_format(&h, phc, &e), -ZT_EINVAL);
	h.tag_len = 16;
	h.params.p = 0;
	assert_int_equal(zt_pw_phc_format(&h, phc, &e), -ZT_EINVAL);
}

/* ---- unknown users ------------------------------------------------------------ */

static void *dummy_thread(void *arg)
{
	zt_err e;

	*(int *)arg = zt_password_dummy_verify("guess", 5, &e);
	return NULL;
}

static void test_dummy_verify(void **state)
{
	double real = 1e9, dummy = 1e9, t0, t1, t2;
	char h[ZT_PW_HASH_MAX];
	pthread_t th[2];
	int rc[2];
	zt_err e;

	(void)state;
	/* first from two threads at once: one dummy hash, made once */
	for (int i = 0; i < 2; i++)
		assert_int_equal(pthread_create(&th[i], NULL, dummy_thread, &rc[i]), 0);
	for (int i = 0; i < 2; i++) {
		assert_int_equal(pthread_join(th[i], NULL), 0);
		assert_int_equal(rc[i], -ZT_EVERIFY);
	}

	/* fails as a wrong password does: same code, rule and message */
	assert_int_equal(zt_password_hash("right", 5, NULL, h, &e), 0);
	zt_err_clear(&e);
	assert_int_equal(zt_password_dummy_verify("right", 5, &e), -ZT_EVERIFY);
	assert_string_equal(e.rule, "password");
	assert_string_equal(e.msg, "wrong password");
	zt_err_clear(&e);
	assert_int_equal(zt_password_verify("wrong", 5, h, strlen(h), NULL, &e), -ZT_EVERIFY);
	assert_string_equal(e.rule, "password");
	assert_string_equal(e.msg, "wrong password");

	/*
	 * And costs what a verify at the defaults costs. Argon2 with one lane
	 * runs in the calling thread, so its CPU time is measured, not the
	 * wall clock of a busy machine; the fastest of three of each.
	 */
	for (int i = 0; i < 3; i++) {
		t0 = thread_cpu_ms();
		assert_int_equal(zt_password_verify("wrong", 5, h, strlen(h), NULL, &e), -ZT_EVERIFY);
		t1 = thread_cpu_ms();
		assert_int_equal(zt_password_dummy_verify("wrong", 5, &e), -ZT_EVERIFY);
		t2 = thread_cpu_ms();
		real = t1 - t0 < real ? t1 - t0 : real;
		dummy = t2 - t1 < dummy ? t2 - t1 : dummy;
	}
	print_message("verify %.1f ms, dummy verify %.1f ms (CPU, defaults)\n", real, dummy);
	assert_true(real > 5.0);
	assert_true(dummy > real * 0.6 && dummy < real * 1.6);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_rfc9106_vector),
	    cmocka_unit_test(test_reference_strings),
	    cmocka_unit_test(test_hash_matches_libargon2),
	    cmocka_unit_test(test_round_trip),
	    cmocka_unit_test(test_defaults_and_rehash),
	    cmocka_unit_test(test_rehash_short_salt_or_tag),
	    cmocka_unit_test(test_password_length),
	    cmocka_unit_test(test_params),
	    cmocka_unit_test(test_malformed),
	    cmocka_unit_test(test_lengths),
	    cmocka_unit_test(test_dummy_verify),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
