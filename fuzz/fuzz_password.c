/*
 * Fuzz target: the login secrets' parsers (crypto/password.c, crypto/totp.c).
 *
 * Each input is tried as
 *  - a stored password hash, parse only (Argon2 is never run with
 *    parameters the fuzzer chose): what parses lies within every cap and
 *    writes back as exactly the input (one spelling per hash); what is
 *    refused names its rule and leaves nothing behind;
 *  - base32: what decodes encodes back to the input, up to case and
 *    padding; what is refused appends nothing;
 *  - a one-time code typed at a fixed time under the RFC 6238 SHA1 key,
 *    6 and 8 digits: only the window's codes are accepted, with their
 *    step, and then never again.
 *
 * The seeds in fuzz/corpus/fuzz_password include the codes of that time
 * (1700000000: steps 56666665..56666667), so the accepting paths are
 * reached from the start.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "crypto/crypto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define NOW 1700000000

static const uint8_t key[] = "12345678901234567890"; /* RFC 6238 Appendix B, SHA1 */

static void phc(const uint8_t *data, size_t size)
{
	char out[ZT_PW_HASH_MAX];
	zt_pw_phc h;
	zt_err e;

	if (zt_pw_phc_parse((const char *)data, size, &h, &e) != 0) {
		static const zt_pw_phc zero;

		if (e.rule[0] == '\0' || memcmp(&h, &zero, sizeof h) != 0)
			abort();
		return;
	}
	if (zt_pw_params_check(&h.params, NULL) != 0 || h.params.m_kib > ZT_PW_M_MAX ||
	    h.params.t > ZT_PW_T_MAX || h.params.p > ZT_PW_P_MAX ||
	    (uint64_t)h.params.m_kib * h.params.t > ZT_PW_WORK_MAX || h.salt_len < ZT_PW_SALT_MIN ||
	    h.salt_len > ZT_PW_SALT_MAX || h.tag_len < ZT_PW_TAG_MIN || h.tag_len > ZT_PW_TAG_MAX)
		abort();
	if (zt_pw_phc_format(&h, out, NULL) != 0 || strlen(out) != size ||
	    memcmp(out, data, size) != 0)
		abort();
}

static void base32(const uint8_t *data, size_t size)
{
	zt_buf dec, enc;
	int pad = size > 0 && data[size - 1] == '=';
	size_t body = size;
	zt_err e;

	zt_buf_init(&dec, 4096);
	zt_buf_init(&enc, 8192);
	if (zt_buf_append(&dec, "#", 1, NULL) != 0)
		abort();
	if (zt_base32_decode((const char *)data, size, &dec, &e) != 0) {
		if (dec.len != 1)
			abort();
		goto out;
	}
	while (body > 0 && data[body - 1] == '=')
		body--;
	if (dec.len - 1 != body * 5 / 8)
		abort();
	if (zt_base32_encode(dec.p + 1, dec.len - 1, pad, &enc, NULL) != 0 || enc.len != size)
		abort();
	for (size_t i = 0; i < size; i++) {
		uint8_t c = data[i] >= 'a' && data[i] <= 'z' ? (uint8_t)(data[i] - 32) : data[i];

		if (enc.p[i] != c)
			abort();
	}
out:
	zt_buf_free(&dec, 0);
	zt_buf_free(&enc, 0);
}

static void totp(const uint8_t *data, size_t size, unsigned digits)
{
	zt_totp_params tp = zt_totp_defaults();
	char want[ZT_OTP_CODE_MAX];
	uint64_t step, again;
	int r, hit = 0;
	zt_err e;

	tp.digits = digits;
	r = zt_totp_verify(key, 20, &tp, (const char *)data, size, NOW, 0, &step, &e);
	if (r != 0) {
		if (step != 0 || e.rule[0] == '\0')
			abort();
		return;
	}
	if (size != digits || step < NOW / 30 - 1 || step > NOW / 30 + 1)
		abort();
	for (int64_t t = NOW - 30; t <= NOW + 30; t += 30) {
		if (zt_totp_code(key, 20, &tp, t, want, NULL) != 0)
			abort();
		if (memcmp(want, data, size) == 0 && (uint64_t)t / 30 == step)
			hit = 1;
	}
	if (!hit)
		abort();
	/* once used, never again */
	if (zt_totp_verify(key, 20, &tp, (const char *)data, size, NOW, step, &again, &e) !=
		-ZT_EVERIFY ||
	    strcmp(e.rule, "totp-reused") != 0)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	phc(data, size);
	base32(data, size);
	totp(data, size, 6);
	totp(data, size, 8);
	return 0;
}
