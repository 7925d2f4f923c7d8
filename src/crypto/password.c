/*
 * crypto/password.c: password hashes for user login, Argon2id (RFC 9106)
 * through libargon2, stored as PHC strings:
 *
 *   $argon2id$v=19$m=47104,t=2,p=1$<salt, base64>$<tag, base64>
 *
 * The string is parsed here rather than by argon2_verify: it comes from the
 * database, and libargon2's decoder takes a NUL-terminated string, accepts
 * other variants and versions and any parameters Argon2 itself allows (up
 * to 4 TiB of memory and 2^32 passes). Here only the one canonical form
 * zt_pw_phc_format writes is accepted (decimal without leading zeros, base64
 * without padding or stray bits), so a stored hash has exactly one spelling,
 * and every parameter has a cap.
 *
 * A verify compares tags with CRYPTO_memcmp, and a login for a user that
 * does not exist runs the same verify against a hash nothing matches
 * (zt_password_dummy_verify), so the time of a refusal does not say which
 * user names exist.
 */
#include "crypto.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include <argon2.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/rand.h>

#define PHC_PREFIX "$argon2id$v=19$"
#define B64_LEN(n) (((n) * 4 + 2) / 3) /* unpadded base64 of n bytes */

/*
 * The defaults, chosen as RFC 9106 section 4 says: Argon2id, a 128-bit salt,
 * a 256-bit tag, then the most memory and passes that fit the time one
 * login may take, here 50-150 ms of CPU on the 2-core server that runs zt.
 * Measured with argon2id_hash_raw (libargon2 0~20171227, gcc -O2, AMD EPYC,
 * 2 cores, other builds running): CPU time of the hashing thread, mean of
 * 30 (fastest in brackets):
 *
 *   m = 19 MiB, t = 2, p = 1    32 ms  (26)   OWASP's minimum
 *   m = 46 MiB, t = 1, p = 1    80 ms  (64)   OWASP's first choice
 *   m = 46 MiB, t = 2, p = 1   112 ms  (97)   <- the defaults
 *   m = 64 MiB, t = 1, p = 1    95 ms  (84)
 *   m = 64 MiB, t = 2, p = 1   161 ms (134)
 *   m = 64 MiB, t = 3, p = 1   232 ms (181)
 *   m = 64 MiB, t = 3, p = 4   285 ms, 170-340 ms wall: RFC 9106's second option
 *
 * 46 MiB with two passes is at least both of OWASP's first two choices on
 * each axis. RFC 9106's 64 MiB option takes three passes: with this little
 * memory it wants more than one, so of the two at the same cost, 46 MiB x 2
 * rather than 64 MiB x 1. One lane: a login then takes one core, not both,
 * and more lanes do not cost an attacker more. ZT_PW_WORK_MAX allows 22
 * times the defaults' m * t, for hashes made later with higher defaults.
 */
static const zt_pw_params pw_defaults = {.m_kib = 47104, .t = 2, .p = 1};

zt_pw_params zt_pw_defaults(void)
{
	return pw_defaults;
}

int zt_pw_params_check(const zt_pw_params *pp, zt_err *e)
{
	if (pp->p < 1 || pp->p > ZT_PW_P_MAX)
		return zt_err_rule(e, pp->p ? ZT_ELIMIT : ZT_EINVAL, pp->p ? "password-hash-limit"
									   : "password-hash",
				   "Argon2 lanes (p) must be 1..%d", ZT_PW_P_MAX);
	if (pp->t < 1 || pp->t > ZT_PW_T_MAX)
		return zt_err_rule(e, pp->t ? ZT_ELIMIT : ZT_EINVAL, pp->t ? "password-hash-limit"
									   : "password-hash",
				   "Argon2 passes (t) must be 1..%d", ZT_PW_T_MAX);
	if (pp->m_kib > ZT_PW_M_MAX)
		return zt_err_rule(e, ZT_ELIMIT, "password-hash-limit",
				   "Argon2 memory (m) is at most %u KiB", ZT_PW_M_MAX);
	if (pp->m_kib < 8 * pp->p) /* RFC 9106 3.1: m >= 8 * p */
		return zt_err_rule(e, ZT_EINVAL, "password-hash",
				   "Argon2 memory (m) must be at least 8 KiB per lane");
	if ((uint64_t)pp->m_kib * pp->t > ZT_PW_WORK_MAX)
		return zt_err_rule(e, ZT_ELIMIT, "password-hash-limit",
				   "Argon2 memory times passes (m * t) is at most %u", ZT_PW_WORK_MAX);
	return 0;
}

/* ---- the PHC string ------------------------------------------------------ */

static int phc_err(zt_err *e, const char *what)
{
	return zt_err_rule(e, ZT_EPARSE, "password-hash", "stored password hash: %s", what);
}

/*
 * A decimal parameter "<name>=<digits>" at s[*i], ending before `end` (',' or
 * '$'). Canonical: no sign, no leading zero. Capped at max while read, so
 * nothing overflows.
 */
static int phc_uint(const char *s, size_t n, size_t *i, char name, char end, uint32_t max,
		    uint32_t *out, zt_err *e)
{
	size_t j = *i, start;
	uint64_t v = 0;

	if (n - j < 2 || s[j] != name || s[j + 1] != '=')
		return zt_err_rule(e, ZT_EPARSE, "password-hash",
				   "stored password hash: expected \"%c=\" in the parameters", name);
	start = j += 2;
	while (j < n && s[j] >= '0' && s[j] <= '9') {
		v = v * 10 + (uint64_t)(s[j] - '0');
		if (v > max)
			return zt_err_rule(e, ZT_ELIMIT, "password-hash-limit",
					   "stored password hash: %c is over its cap of %u", name, max);
		j++;
	}
	if (j == start || (s[start] == '0' && j - start > 1))
		return zt_err_rule(e, ZT_EPARSE, "password-hash",
				   "stored password hash: %c is not a decimal number", name);
	if (j == n || s[j] != end)
		return zt_err_rule(e, ZT_EPARSE, "password-hash",
				   "stored password hash: expected '%c' after %c", end, name);
	*out = (uint32_t)v;
	*i = j + 1;
	return 0;
}

/*
 * Unpadded base64 (RFC 4648 4, as PHC strings use it) of s[0..n) into
 * out[min..max], checking the length before decoding anything.
 */
static int phc_b64(const char *s, size_t n, const char *what, size_t min, size_t max,
		   uint8_t *out, size_t *out_len, zt_err *e)
{
	char padded[B64_LEN(ZT_PW_SALT_MAX > ZT_PW_TAG_MAX ? ZT_PW_SALT_MAX : ZT_PW_TAG_MAX) + 3];
	size_t bytes = n / 4 * 3 + (n % 4 ? n % 4 - 1 : 0), m = n;
	zt_buf b;
	int r;

	if (n % 4 == 1)
		return zt_err_rule(e, ZT_EPARSE, "password-hash",
				   "stored password hash: the %s has an impossible base64 length", what);
	if (bytes > max)
		return zt_err_rule(e, ZT_ELIMIT, "password-hash-limit",
				   "stored password hash: the %s is over %zu bytes", what, max);
	if (bytes < min)
		return zt_err_rule(e, ZT_EPARSE, "password-hash",
				   "stored password hash: the %s is under %zu bytes", what, min);
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= 'a' && s[i] <= 'z') ||
		      (s[i] >= '0' && s[i] <= '9') || s[i] == '+' || s[i] == '/'))
			return zt_err_rule(e, ZT_EPARSE, "password-hash",
					   "stored password hash: the %s is not unpadded base64", what);
	memcpy(padded, s, n);
	while (m % 4)
		padded[m++] = '=';
	zt_buf_init(&b, max);
	r = zt_base64_decode(padded, m, 0, &b, NULL);
	if (r == 0 && b.len == bytes) {
		memcpy(out, b.p, b.len);
		*out_len = b.len;
	} else {
		r = zt_err_rule(e, ZT_EPARSE, "password-hash",
				"stored password hash: the %s is not canonical base64", what);
	}
	zt_buf_free(&b, 1);
	return r;
}

int zt_pw_phc_parse(const char *s, size_t n, zt_pw_phc *out, zt_err *e)
{
	static const char prefix[] = PHC_PREFIX;
	size_t i = sizeof prefix - 1, j;
	int r;

	memset(out, 0, sizeof *out);
	if (n >= ZT_PW_HASH_MAX)
		return zt_err_rule(e, ZT_ELIMIT, "password-hash-limit",
				   "stored password hash: longer than %d bytes", ZT_PW_HASH_MAX - 1);
	if (n < 10 || memcmp(s, "$argon2id$", 10) != 0)
		return phc_err(e, "not an Argon2id hash (it must start \"$argon2id$\")");
	if (n < i || memcmp(s, prefix, i) != 0)
		return phc_err(e, "only Argon2 version 19 (\"v=19\") is accepted");
	if ((r = phc_uint(s, n, &i, 'm', ',', ZT_PW_M_MAX, &out->params.m_kib, e)) != 0 ||
	    (r = phc_uint(s, n, &i, 't', ',', ZT_PW_T_MAX, &out->params.t, e)) != 0 ||
	    (r = phc_uint(s, n, &i, 'p', '$', ZT_PW_P_MAX, &out->params.p, e)) != 0)
		goto out;
	if ((r = zt_pw_params_check(&out->params, e)) != 0) {
		zt_err_wrap(e, "stored password hash");
		goto out;
	}
	for (j = i; j < n && s[j] != '$'; j++)
		;
	if (j == n) {
		r = phc_err(e, "no tag after the salt");
		goto out;
	}
	if ((r = phc_b64(s + i, j - i, "salt", ZT_PW_SALT_MIN, ZT_PW_SALT_MAX, out->salt,
			 &out->salt_len, e)) != 0 ||
	    (r = phc_b64(s + j + 1, n - j - 1, "tag", ZT_PW_TAG_MIN, ZT_PW_TAG_MAX, out->tag,
			 &out->tag_len, e)) != 0)
		goto out;
out:
	if (r != 0)
		OPENSSL_cleanse(out, sizeof *out);
	return r;
}

/* Appends unpadded base64 of in to out at *pos (room checked by the caller). */
static int put_b64(const uint8_t *in, size_t n, char *out, size_t *pos, zt_err *e)
{
	zt_buf b;
	int r;

	zt_buf_init(&b, B64_LEN(n) + 4);
	if ((r = zt_base64_encode(in, n, 0, &b, e)) == 0) {
		while (b.len > 0 && b.p[b.len - 1] == '=')
			b.len--;
		memcpy(out + *pos, b.p, b.len);
		*pos += b.len;
	}
	zt_buf_free(&b, 1);
	return r;
}

int zt_pw_phc_format(const zt_pw_phc *h, char out[ZT_PW_HASH_MAX], zt_err *e)
{
	size_t pos;
	int r, k;

	out[0] = '\0';
	if ((r = zt_pw_params_check(&h->params, e)) != 0)
		return r;
	if (h->salt_len < ZT_PW_SALT_MIN || h->salt_len > ZT_PW_SALT_MAX ||
	    h->tag_len < ZT_PW_TAG_MIN || h->tag_len > ZT_PW_TAG_MAX)
		return zt_err_rule(e, ZT_EINVAL, "password-hash",
				   "a password hash has a %d..%d byte salt and a %d..%d byte tag",
				   ZT_PW_SALT_MIN, ZT_PW_SALT_MAX, ZT_PW_TAG_MIN, ZT_PW_TAG_MAX);
	k = snprintf(out, ZT_PW_HASH_MAX, PHC_PREFIX "m=%u,t=%u,p=%u$", (unsigned)h->params.m_kib,
		     (unsigned)h->params.t, (unsigned)h->params.p);
	/* the caps make the longest string 35 + 86 + 1 + 86 bytes */
	if (k < 0 || (size_t)k + B64_LEN(h->salt_len) + 1 + B64_LEN(h->tag_len) >= ZT_PW_HASH_MAX)
		return zt_err_set(e, ZT_ELIMIT, "password hash too long");
	pos = (size_t)k;
	if ((r = put_b64(h->salt, h->salt_len, out, &pos, e)) != 0)
		return r;
	out[pos++] = '$';
	if ((r = put_b64(h->tag, h->tag_len, out, &pos, e)) != 0)
		return r;
	out[pos] = '\0';
	return 0;
}

/* ---- hashing and verifying ------------------------------------------------ */

static int pw_length_ok(size_t pw_len, zt_err *e)
{
	if (pw_len < ZT_PW_MIN_LEN || pw_len > ZT_PW_MAX_LEN)
		return zt_err_rule(e, pw_len ? ZT_ELIMIT : ZT_EINVAL, "password-length",
				   "a password is %d to %d bytes long", ZT_PW_MIN_LEN, ZT_PW_MAX_LEN);
	return 0;
}

/* Argon2id of pw under params and salt into tag[tag_len]. */
static int argon2(const char *pw, size_t pw_len, const zt_pw_params *pp, const uint8_t *salt,
		  size_t salt_len, uint8_t *tag, size_t tag_len, zt_err *e)
{
	int rc = argon2id_hash_raw(pp->t, pp->m_kib, pp->p, pw, pw_len, salt, salt_len, tag,
				   tag_len);

	if (rc == ARGON2_OK)
		return 0;
	OPENSSL_cleanse(tag, tag_len);
	return zt_err_set(e, rc == ARGON2_MEMORY_ALLOCATION_ERROR ? ZT_ENOMEM : ZT_ECRYPTO,
			  "Argon2id failed: %s", argon2_error_message(rc));
}

int zt_password_hash(const char *pw, size_t pw_len, const zt_pw_params *params,
		     char out[ZT_PW_HASH_MAX], zt_err *e)
{
	zt_pw_phc h;
	int r;

	out[0] = '\0';
	memset(&h, 0, sizeof h);
	h.params = params ? *params : pw_defaults;
	h.salt_len = ZT_PW_SALT_LEN;
	h.tag_len = ZT_PW_TAG_LEN;
	if ((r = pw_length_ok(pw_len, e)) != 0 || (r = zt_pw_params_check(&h.params, e)) != 0 ||
	    (r = zt_random(h.salt, h.salt_len, e)) != 0 ||
	    (r = argon2(pw, pw_len, &h.params, h.salt, h.salt_len, h.tag, h.tag_len, e)) != 0)
		goto out;
	r = zt_pw_phc_format(&h, out, e);
out:
	OPENSSL_cleanse(&h, sizeof h);
	return r;
}

/* The verify proper: parse, Argon2id, constant-time compare. *weaker set on a match. */
static int verify(const char *pw, size_t pw_len, const char *phc, size_t phc_len, int *weaker,
		  zt_err *e)
{
	uint8_t tag[ZT_PW_TAG_MAX];
	zt_pw_phc h;
	int r;

	if ((r = pw_length_ok(pw_len, e)) != 0)
		return r;
	if ((r = zt_pw_phc_parse(phc, phc_len, &h, e)) != 0)
		return r;
	if ((r = argon2(pw, pw_len, &h.params, h.salt, h.salt_len, tag, h.tag_len, e)) != 0)
		goto out;
	if (CRYPTO_memcmp(tag, h.tag, h.tag_len) != 0) {
		r = zt_err_rule(e, ZT_EVERIFY, "password", "wrong password");
		goto out;
	}
	/*
	 * Weaker: less memory, fewer passes, a shorter salt or tag. Fewer lanes
	 * is not weaker (they do not add to an attacker's cost), so a change of
	 * p alone does not ask for a rehash.
	 */
	*weaker = h.params.m_kib < pw_defaults.m_kib || h.params.t < pw_defaults.t ||
		  h.salt_len < ZT_PW_SALT_LEN || h.tag_len < ZT_PW_TAG_LEN;
out:
	OPENSSL_cleanse(tag, sizeof tag);
	OPENSSL_cleanse(&h, sizeof h);
	return r;
}

int zt_password_verify(const char *pw, size_t pw_len, const char *phc, size_t phc_len,
		       int *needs_rehash, zt_err *e)
{
	int weaker = 0, r;

	if (needs_rehash)
		*needs_rehash = 0;
	r = verify(pw, pw_len, phc, phc_len, &weaker, e);
	if (r == 0 && needs_rehash)
		*needs_rehash = weaker;
	return r;
}

/*
 * The dummy hash: the default parameters, a random salt and a random tag.
 * It needs no Argon2 run to make (no password has to match it, and none
 * will but with probability 2^-256), and verifying against it is the very
 * same verify() as for a real user, string parse included.
 */
static pthread_once_t dummy_once = PTHREAD_ONCE_INIT;
static char dummy_phc[ZT_PW_HASH_MAX];
static size_t dummy_len;

static void dummy_make(void)
{
	zt_pw_phc h;

	memset(&h, 0, sizeof h);
	h.params = pw_defaults;
	h.salt_len = ZT_PW_SALT_LEN;
	h.tag_len = ZT_PW_TAG_LEN;
	/* without randomness the zero salt and tag do as well: nothing matches an all-zero tag */
	if (RAND_bytes(h.salt, (int)h.salt_len) != 1 || RAND_bytes(h.tag, (int)h.tag_len) != 1) {
		ERR_clear_error();
		memset(h.salt, 0, sizeof h.salt);
		memset(h.tag, 0, sizeof h.tag);
	}
	if (zt_pw_phc_format(&h, dummy_phc, NULL) == 0)
		dummy_len = strlen(dummy_phc);
}

int zt_password_dummy_verify(const char *pw, size_t pw_len, zt_err *e)
{
	int weaker = 0, r;

	pthread_once(&dummy_once, dummy_make);
	r = verify(pw, pw_len, dummy_phc, dummy_len, &weaker, e);
	if (r == 0) /* cannot happen; never let it through */
		r = zt_err_rule(e, ZT_EVERIFY, "password", "wrong password");
	return r;
}
