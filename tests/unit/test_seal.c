/*
 * Unit tests: secrets at rest (crypto/seal.c) and the keys zt keeps
 * (zt_key_store / zt_key_load in crypto/keys.c).
 *
 * The sealed format is checked apart from the code that writes it: lines
 * are opened and made here with OpenSSL's EVP AES-256-GCM directly, two
 * fixed lines were made with python3-cryptography's AESGCM, and the KEK ID
 * is recomputed with EVP_Digest. Every single-bit change of a sealed line
 * must be refused without handing back plaintext.
 *
 * Tests that set a process KEK or the environment undo it in their
 * teardown, so each test starts with no KEK and no $ZT_KEK / $ZT_KEK_FILE.
 */
#include "testutil.h"

#include "core/core.h"
#include "crypto/crypto.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#define MAGIC "ztseal1:"
#define NONCE_LEN 12
#define TAG_LEN 16

/* fixed test keys: 00 01 .. 1f, and 32 bytes of 0xff */
static const uint8_t KEK_A[ZT_KEK_LEN] = {
    0,  1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11, 12, 13, 14, 15,
    16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31};
static uint8_t KEK_B[ZT_KEK_LEN]; /* 0xff..., set in main */
#define KEK_A_B64 "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
#define KEK_B_B64 "//////////////////////////////////////////8="
/* SHA-256("zt-kek-id" || KEK)[0..4], computed with Python's hashlib */
#define KEK_A_ID "57e66adc"
#define KEK_B_ID "5f6d8e55"
#define KEK_ZERO_ID "9b935d08"

/*
 * Made with python3-cryptography: AESGCM(KEK_A).encrypt(nonce a0..ab, pt,
 * aad = "ztseal1:<label>:57e66adc:"), base64 with padding.
 */
#define KAT_KEY_PT "-----BEGIN PRIVATE KEY-----\nzt\n"
#define KAT_KEY_LINE                                             \
	"ztseal1:private-key:57e66adc:oKGio6Slpqeoqaqr:yzVRAGiJR/grK6eDVTOWnyTpeVvX7m9BsSMLjAXff2Y" \
	"VIsNuW+cj6RBD9n+q+o4="
#define KAT_EMPTY_LINE "ztseal1:audit-hmac-key:57e66adc:oKGio6Slpqeoqaqr:oSOFyvI8x7z9Rng4InzYOA=="

/* ---- helpers ------------------------------------------------------------ */

static int teardown(void **state)
{
	(void)state;
	zt_kek_set(NULL);
	unsetenv("ZT_KEK");
	unsetenv("ZT_KEK_FILE");
	return 0;
}

static char *xasprintf(const char *fmt, ...) ZT_PRINTF(1, 2);
static char *xasprintf(const char *fmt, ...)
{
	va_list ap;
	char *p;
	int n;

	va_start(ap, fmt);
	n = vasprintf(&p, fmt, ap);
	va_end(ap);
	assert_true(n >= 0);
	return p;
}

/* zt_seal into a fresh NUL-terminated string; caller frees. */
static char *seal(const uint8_t *kek, const char *label, const void *pt, size_t n)
{
	zt_buf b;
	zt_err e;
	char *s;

	zt_buf_init(&b, 2 * ZT_SEAL_MAX);
	if (zt_seal(kek, label, pt, n, &b, &e) != 0)
		fail_msg("zt_seal(%s, %zu bytes): %s", label, n, e.msg);
	s = malloc(b.len + 1);
	assert_non_null(s);
	memcpy(s, b.p, b.len);
	s[b.len] = '\0';
	zt_buf_free(&b, 1);
	return s;
}

/* Unseals and checks that the plaintext is exactly pt. */
static void expect_open(const uint8_t *kek, const char *label, const char *text, size_t n,
			const void *pt, size_t pt_len)
{
	zt_buf out;
	zt_err e;

	zt_buf_init(&out, 2 * ZT_SEAL_MAX);
	if (zt_unseal(kek, label, text, n, &out, &e) != 0)
		fail_msg("zt_unseal(%s) of %.80s...: %s", label, text, e.msg);
	assert_int_equal(out.len, pt_len);
	if (pt_len)
		assert_memory_equal(out.p, pt, pt_len);
	zt_buf_free(&out, 1);
}

/*
 * Unseals expecting a refusal with this rule (and code, unless 0); nothing
 * may be appended to out. The error is left in *e for more checks.
 */
static void expect_refused(const uint8_t *kek, const char *label, const char *text, size_t n,
			   const char *rule, int code, zt_err *e)
{
	zt_buf out;
	int r;

	zt_buf_init(&out, 2 * ZT_SEAL_MAX);
	zt_err_clear(e);
	r = zt_unseal(kek, label, text, n, &out, e);
	if (r == 0)
		fail_msg("zt_unseal(%s) accepted %.*s", label, (int)(n > 200 ? 200 : n), text);
	assert_int_equal(out.len, 0);
	if (strcmp(e->rule, rule) != 0)
		fail_msg("zt_unseal of %.*s: rule \"%s\", want \"%s\" (%s)", (int)(n > 200 ? 200 : n),
			 text, e->rule, rule, e->msg);
	if (code)
		assert_int_equal(e->code, code);
	assert_int_equal(r, -e->code);
	assert_true(e->msg[0] != '\0');
	zt_buf_free(&out, 1);
}

/* Base64 with OpenSSL (not zt's encoder); caller frees. */
static char *b64(const uint8_t *p, size_t n)
{
	char *s = malloc(4 * ((n + 2) / 3) + 1);

	assert_non_null(s);
	EVP_EncodeBlock((unsigned char *)s, p, (int)n);
	return s;
}

/* Decodes padded base64 with OpenSSL; returns the length or -1. */
static int unb64(const char *s, size_t n, uint8_t *out, size_t cap)
{
	size_t pad = 0;
	int len;

	if (n % 4 != 0 || 3 * (n / 4) > cap)
		return -1;
	while (pad < 2 && pad < n && s[n - 1 - pad] == '=')
		pad++;
	len = EVP_DecodeBlock(out, (const unsigned char *)s, (int)n);
	return len < 0 ? -1 : len - (int)pad;
}

/* AES-256-GCM with a 96-bit nonce and 128-bit tag, through EVP; 0 or -1. */
static int evp_gcm(int enc, const uint8_t key[32], const uint8_t nonce[NONCE_LEN],
		   const void *aad, size_t aad_len, const uint8_t *in, size_t n, uint8_t *out,
		   uint8_t tag[TAG_LEN])
{
	EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
	int len = 0, ok;

	assert_non_null(c);
	ok = EVP_CipherInit_ex(c, EVP_aes_256_gcm(), NULL, key, nonce, enc) == 1 &&
	     (aad_len == 0 ||
	      EVP_CipherUpdate(c, NULL, &len, aad, (int)aad_len) == 1) &&
	     (n == 0 || EVP_CipherUpdate(c, out, &len, in, (int)n) == 1);
	if (ok && !enc)
		ok = EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, TAG_LEN, tag) == 1;
	if (ok)
		ok = EVP_CipherFinal_ex(c, out + (n ? len : 0), &len) == 1;
	if (ok && enc)
		ok = EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, TAG_LEN, tag) == 1;
	EVP_CIPHER_CTX_free(c);
	return ok ? 0 : -1;
}

/* A sealed line made with EVP: aad is given whole, so it can be wrong on purpose. */
static char *evp_seal(const uint8_t key[32], const char *aad, const uint8_t nonce[NONCE_LEN],
		      const void *pt, size_t n)
{
	uint8_t *ct = malloc(n + TAG_LEN);
	char *nb, *cb, *line;

	assert_non_null(ct);
	assert_int_equal(evp_gcm(1, key, nonce, aad, strlen(aad), pt, n, ct, ct + n), 0);
	nb = b64(nonce, NONCE_LEN);
	cb = b64(ct, n + TAG_LEN);
	line = xasprintf("%s%s:%s\n", aad, nb, cb);
	free(ct);
	free(nb);
	free(cb);
	return line;
}

/* The fields of one sealed line (pointers into it). */
struct fields {
	const char *label, *id, *nonce, *ct;
	size_t label_len, id_len, nonce_len, ct_len;
	size_t aad_len; /* "ztseal1:<label>:<id>:" */
};

static void split_line(const char *line, struct fields *f)
{
	const char *p = line + strlen(MAGIC), *c1, *c2, *c3, *nl;

	assert_memory_equal(line, MAGIC, strlen(MAGIC));
	assert_non_null(c1 = strchr(p, ':'));
	assert_non_null(c2 = strchr(c1 + 1, ':'));
	assert_non_null(c3 = strchr(c2 + 1, ':'));
	assert_null(strchr(c3 + 1, ':'));
	assert_non_null(nl = strchr(c3 + 1, '\n'));
	assert_int_equal(nl[1], '\0'); /* one line, ending in one newline */
	f->label = p;
	f->label_len = (size_t)(c1 - p);
	f->id = c1 + 1;
	f->id_len = (size_t)(c2 - f->id);
	f->nonce = c2 + 1;
	f->nonce_len = (size_t)(c3 - f->nonce);
	f->ct = c3 + 1;
	f->ct_len = (size_t)(nl - f->ct);
	f->aad_len = (size_t)(f->nonce - line);
}

static int is_b64(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=", s[i]) ||
		    s[i] == '\0')
			return 0;
	return 1;
}

static void fill(uint8_t *p, size_t n, unsigned seed)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)(seed + i * 131 + (i >> 8));
}

static char *write_tmp(const char *dir, const char *name, const char *text)
{
	char *path = xasprintf("%s/%s", dir, name);
	FILE *f = fopen(path, "wb");

	assert_non_null(f);
	assert_int_equal(fwrite(text, 1, strlen(text), f), strlen(text));
	assert_int_equal(fclose(f), 0);
	return path;
}

/* ---- round trips ---------------------------------------------------------- */

static void test_round_trip(void **state)
{
	static const size_t sizes[] = {0, 1, 2, 3, 15, 16, 17, 31, 32, 33, 1000, 4096,
				       ZT_SEAL_MAX - 1, ZT_SEAL_MAX};
	uint8_t *pt = malloc(ZT_SEAL_MAX + 1);
	zt_buf out;
	zt_err e;

	(void)state;
	assert_non_null(pt);
	fill(pt, ZT_SEAL_MAX + 1, 7);
	for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
		char *s = seal(KEK_A, ZT_SEAL_LABEL_KEY, pt, sizes[i]);

		expect_open(KEK_A, ZT_SEAL_LABEL_KEY, s, strlen(s), pt, sizes[i]);
		/* the trailing newline is optional, and \r\n is read too */
		expect_open(KEK_A, ZT_SEAL_LABEL_KEY, s, strlen(s) - 1, pt, sizes[i]);
		free(s);
	}

	/* the empty plaintext, from an empty string */
	char *s = seal(KEK_B, "x", "", 0);
	expect_open(KEK_B, "x", s, strlen(s), "", 0);
	free(s);

	/* one byte more than ZT_SEAL_MAX is refused and out is left as it was */
	zt_buf_init(&out, 4 * ZT_SEAL_MAX);
	assert_int_equal(zt_buf_append(&out, "keep", 4, &e), 0);
	assert_true(zt_seal(KEK_A, ZT_SEAL_LABEL_KEY, pt, ZT_SEAL_MAX + 1, &out, &e) < 0);
	assert_int_equal(e.code, ZT_ELIMIT);
	assert_int_equal(out.len, 4);
	assert_memory_equal(out.p, "keep", 4);

	/* seal and unseal append to what out holds */
	assert_int_equal(zt_seal(KEK_A, ZT_SEAL_LABEL_AUDIT_HMAC, pt, 40, &out, &e), 0);
	assert_memory_equal(out.p, "keep", 4);
	assert_true(zt_sealed(out.p + 4, out.len - 4));
	zt_buf dst;
	zt_buf_init(&dst, 4096);
	assert_int_equal(zt_buf_append(&dst, "pre:", 4, &e), 0);
	assert_int_equal(zt_unseal(KEK_A, ZT_SEAL_LABEL_AUDIT_HMAC, (const char *)out.p + 4,
				   out.len - 4, &dst, &e),
			 0);
	assert_int_equal(dst.len, 44);
	assert_memory_equal(dst.p, "pre:", 4);
	assert_memory_equal(dst.p + 4, pt, 40);
	zt_buf_free(&dst, 1);
	zt_buf_free(&out, 1);
	free(pt);
	zt_kek_set(NULL);
}

/* "ztseal1:<label>:<8 hex>:<b64 nonce>:<b64 ct>\n", and a fresh nonce each time */
static void test_text_form(void **state)
{
	static const char pt[] = "a secret that is sealed twice";
	static const char *const labels[] = {ZT_SEAL_LABEL_KEY, ZT_SEAL_LABEL_AUDIT_SIGNER,
					     ZT_SEAL_LABEL_AUDIT_HMAC, "a", "0.9-z", "-", "."};
	char label64[65];
	uint8_t raw[256];
	struct fields f, g;
	char id[9];

	(void)state;
	memset(label64, 'q', 64);
	label64[64] = '\0';
	zt_kek_id(KEK_A, id);
	assert_string_equal(id, KEK_A_ID);
	for (size_t i = 0; i <= sizeof labels / sizeof labels[0]; i++) {
		const char *label = i < sizeof labels / sizeof labels[0] ? labels[i] : label64;
		char *s = seal(KEK_A, label, pt, sizeof pt - 1);

		assert_true(zt_sealed(s, strlen(s)));
		split_line(s, &f);
		assert_int_equal(f.label_len, strlen(label));
		assert_memory_equal(f.label, label, f.label_len);
		assert_int_equal(f.id_len, 8);
		assert_memory_equal(f.id, KEK_A_ID, 8);
		assert_true(is_b64(f.nonce, f.nonce_len) && is_b64(f.ct, f.ct_len));
		assert_int_equal(unb64(f.nonce, f.nonce_len, raw, sizeof raw), NONCE_LEN);
		assert_int_equal(unb64(f.ct, f.ct_len, raw, sizeof raw), sizeof pt - 1 + TAG_LEN);
		/* the ciphertext is not the plaintext */
		assert_null(strstr(s, "secret"));
		free(s);
	}

	/* two seals of one plaintext differ in nonce and ciphertext */
	char *s1 = seal(KEK_A, ZT_SEAL_LABEL_KEY, pt, sizeof pt - 1);
	char *s2 = seal(KEK_A, ZT_SEAL_LABEL_KEY, pt, sizeof pt - 1);
	split_line(s1, &f);
	split_line(s2, &g);
	assert_int_equal(f.aad_len, g.aad_len);
	assert_memory_equal(s1, s2, f.aad_len); /* same label and ID */
	assert_false(f.nonce_len == g.nonce_len && memcmp(f.nonce, g.nonce, f.nonce_len) == 0);
	assert_false(f.ct_len == g.ct_len && memcmp(f.ct, g.ct, f.ct_len) == 0);
	free(s1);
	free(s2);

	/* zt_sealed looks at the magic only */
	assert_true(zt_sealed("ztseal1:", 8));
	assert_false(zt_sealed("ztseal1", 7));
	assert_false(zt_sealed("ztseal1:", 7));
	assert_false(zt_sealed("", 0));
	assert_false(zt_sealed("ZTSEAL1:x", 9));
	assert_false(zt_sealed("ztseal2:x", 9));
	assert_false(zt_sealed(" ztseal1:x", 10));
	assert_false(zt_sealed("-----BEGIN PRIVATE KEY-----\n", 28));
	zt_kek_set(NULL);
}

/* ---- the format, independently ------------------------------------------- */

static void test_known_answer(void **state)
{
	static const char pt[] = "-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMG\n-----END PRIVATE KEY-----\n";
	uint8_t nonce[NONCE_LEN], ct[256], got[256];
	struct fields f;
	zt_err e;
	int n;

	(void)state;
	/* lines made with python3-cryptography open with zt_unseal */
	expect_open(KEK_A, ZT_SEAL_LABEL_KEY, KAT_KEY_LINE, strlen(KAT_KEY_LINE), KAT_KEY_PT,
		    strlen(KAT_KEY_PT));
	expect_open(KEK_A, ZT_SEAL_LABEL_AUDIT_HMAC, KAT_EMPTY_LINE, strlen(KAT_EMPTY_LINE), "", 0);

	/* what zt_seal writes, EVP opens: AAD is the text through the third ':' */
	for (int round = 0; round < 2; round++) {
		const char *label = round ? ZT_SEAL_LABEL_AUDIT_SIGNER : ZT_SEAL_LABEL_KEY;
		char *s = seal(KEK_A, label, pt, sizeof pt - 1);
		char *aad = xasprintf(MAGIC "%s:" KEK_A_ID ":", label);

		split_line(s, &f);
		assert_int_equal(f.aad_len, strlen(aad));
		assert_memory_equal(s, aad, f.aad_len);
		assert_int_equal(unb64(f.nonce, f.nonce_len, nonce, sizeof nonce), NONCE_LEN);
		n = unb64(f.ct, f.ct_len, ct, sizeof ct);
		assert_int_equal(n, (int)(sizeof pt - 1 + TAG_LEN));
		memset(got, 0, sizeof got);
		assert_int_equal(evp_gcm(0, KEK_A, nonce, aad, strlen(aad), ct, (size_t)n - TAG_LEN,
					 got, ct + n - TAG_LEN),
				 0);
		assert_memory_equal(got, pt, sizeof pt - 1);
		/* AAD without the ID's colon, or without the label, does not open */
		assert_int_equal(evp_gcm(0, KEK_A, nonce, aad, strlen(aad) - 1, ct,
					 (size_t)n - TAG_LEN, got, ct + n - TAG_LEN),
				 -1);
		assert_int_equal(evp_gcm(0, KEK_A, nonce, "", 0, ct, (size_t)n - TAG_LEN, got,
					 ct + n - TAG_LEN),
				 -1);
		/* nor under the other key */
		assert_int_equal(evp_gcm(0, KEK_B, nonce, aad, strlen(aad), ct, (size_t)n - TAG_LEN,
					 got, ct + n - TAG_LEN),
				 -1);
		free(aad);
		free(s);
	}

	/* what EVP seals with the right AAD, zt_unseal opens; with any other AAD, not */
	fill(nonce, sizeof nonce, 99);
	char *good = evp_seal(KEK_A, MAGIC "private-key:" KEK_A_ID ":", nonce, pt, sizeof pt - 1);
	expect_open(KEK_A, ZT_SEAL_LABEL_KEY, good, strlen(good), pt, sizeof pt - 1);
	free(good);
	static const char *const bad_aads[] = {
	    MAGIC "private-key:" KEK_A_ID,  /* no trailing ':' */
	    MAGIC "private-key:",           /* no ID */
	    "private-key:" KEK_A_ID ":",    /* no magic */
	    "",
	};
	for (size_t i = 0; i < sizeof bad_aads / sizeof bad_aads[0]; i++) {
		char *aad_line = evp_seal(KEK_A, bad_aads[i], nonce, pt, sizeof pt - 1);
		/* the text always carries the full prefix; only the AAD used differs */
		char *line = xasprintf(MAGIC "private-key:" KEK_A_ID ":%s",
				       aad_line + strlen(bad_aads[i]));

		expect_refused(KEK_A, ZT_SEAL_LABEL_KEY, line, strlen(line), "sealed", ZT_EVERIFY,
			       &e);
		free(line);
		free(aad_line);
	}

	/* the label is authenticated, not only compared: swap it in the text */
	char *s = seal(KEK_A, ZT_SEAL_LABEL_KEY, pt, sizeof pt - 1);
	char *swapped = xasprintf(MAGIC "%s%s", ZT_SEAL_LABEL_AUDIT_SIGNER,
				  s + strlen(MAGIC) + strlen(ZT_SEAL_LABEL_KEY));
	expect_refused(KEK_A, ZT_SEAL_LABEL_AUDIT_SIGNER, swapped, strlen(swapped), "sealed",
		       ZT_EVERIFY, &e);
	free(swapped);
	free(s);
	zt_kek_set(NULL);
}

static void test_kek_id(void **state)
{
	uint8_t kek[ZT_KEK_LEN], in[9 + ZT_KEK_LEN], h[32];
	unsigned hl = 0;
	char id[9], want[9];

	(void)state;
	zt_kek_id(KEK_A, id);
	assert_string_equal(id, KEK_A_ID);
	zt_kek_id(KEK_B, id);
	assert_string_equal(id, KEK_B_ID);
	memset(kek, 0, sizeof kek);
	zt_kek_id(kek, id);
	assert_string_equal(id, KEK_ZERO_ID);
	for (unsigned seed = 1; seed < 20; seed++) {
		fill(kek, sizeof kek, seed * 7919);
		memcpy(in, "zt-kek-id", 9);
		memcpy(in + 9, kek, ZT_KEK_LEN);
		assert_int_equal(EVP_Digest(in, sizeof in, h, &hl, EVP_sha256(), NULL), 1);
		snprintf(want, sizeof want, "%02x%02x%02x%02x", h[0], h[1], h[2], h[3]);
		zt_kek_id(kek, id);
		assert_string_equal(id, want);
	}
	zt_kek_set(NULL);
}

/* ---- refusals -------------------------------------------------------------- */

static void test_wrong_label_and_kek(void **state)
{
	static const char pt[] = "audit signer";
	zt_err e;

	(void)state;
	char *s = seal(KEK_A, ZT_SEAL_LABEL_KEY, pt, sizeof pt - 1);

	/* another kind of secret: named, with both labels */
	expect_refused(KEK_A, ZT_SEAL_LABEL_AUDIT_SIGNER, s, strlen(s), "sealed", 0, &e);
	assert_non_null(strstr(e.msg, "\"" ZT_SEAL_LABEL_KEY "\""));
	assert_non_null(strstr(e.msg, "\"" ZT_SEAL_LABEL_AUDIT_SIGNER "\""));
	/* labels are compared whole */
	expect_refused(KEK_A, "private-ke", s, strlen(s), "sealed", 0, &e);
	expect_refused(KEK_A, "private-keys", s, strlen(s), "sealed", 0, &e);
	expect_refused(KEK_A, "", s, strlen(s), "sealed", 0, &e);

	/* another KEK: named, with both IDs */
	expect_refused(KEK_B, ZT_SEAL_LABEL_KEY, s, strlen(s), "kek", ZT_EVERIFY, &e);
	assert_non_null(strstr(e.msg, KEK_A_ID));
	assert_non_null(strstr(e.msg, KEK_B_ID));
	free(s);

	/* the label is checked before the key: a wrong kind is not blamed on the key */
	s = seal(KEK_B, ZT_SEAL_LABEL_AUDIT_HMAC, pt, sizeof pt - 1);
	expect_refused(KEK_A, ZT_SEAL_LABEL_KEY, s, strlen(s), "sealed", 0, &e);
	free(s);
	zt_kek_set(NULL);
}

/* Each field replaced by a well-formed other value, byte-wise (not base64-wise). */
static void test_each_field_altered(void **state)
{
	static const char pt[] = "field by field";
	uint8_t nonce[NONCE_LEN], ct[64];
	struct fields f;
	zt_err e;
	int n;

	(void)state;
	char *s = seal(KEK_A, ZT_SEAL_LABEL_KEY, pt, sizeof pt - 1);
	split_line(s, &f);
	assert_int_equal(unb64(f.nonce, f.nonce_len, nonce, sizeof nonce), NONCE_LEN);
	n = unb64(f.ct, f.ct_len, ct, sizeof ct);
	assert_int_equal(n, (int)(sizeof pt - 1 + TAG_LEN));

	/* label: another valid one, unsealed under it */
	char *t = xasprintf(MAGIC "audit-log-key:%s", f.id);
	expect_refused(KEK_A, ZT_SEAL_LABEL_KEY, t, strlen(t), "sealed", ZT_EINVAL, &e);
	expect_refused(KEK_A, ZT_SEAL_LABEL_AUDIT_SIGNER, t, strlen(t), "sealed", ZT_EVERIFY, &e);
	free(t);
	/* ID: another KEK's, and one in uppercase hex */
	t = xasprintf("%.*s" KEK_B_ID "%s", (int)(f.id - s), s, f.id + 8);
	expect_refused(KEK_A, ZT_SEAL_LABEL_KEY, t, strlen(t), "kek", ZT_EVERIFY, &e);
	free(t);
	t = xasprintf("%.*s57E66ADC%s", (int)(f.id - s), s, f.id + 8);
	expect_refused(KEK_A, ZT_SEAL_LABEL_KEY, t, strlen(t), "kek", ZT_EVERIFY, &e);
	free(t);
	/* nonce, first ciphertext byte, last ciphertext byte, first and last tag byte */
	const struct {
		uint8_t *p;
		size_t len, at;
	} flips[] = {
	    {nonce, NONCE_LEN, 0},
	    {nonce, NONCE_LEN, NONCE_LEN - 1},
	    {ct, (size_t)n, 0},
	    {ct, (size_t)n, sizeof pt - 2},
	    {ct, (size_t)n, sizeof pt - 1},
	    {ct, (size_t)n, (size_t)n - 1},
	};
	for (size_t i = 0; i < sizeof flips / sizeof flips[0]; i++) {
		flips[i].p[flips[i].at] ^= 0x80;
		char *nb = b64(nonce, NONCE_LEN), *cb = b64(ct, (size_t)n);
		t = xasprintf("%.*s%s:%s\n", (int)f.aad_len, s, nb, cb);
		expect_refused(KEK_A, ZT_SEAL_LABEL_KEY, t, strlen(t), "sealed", ZT_EVERIFY, &e);
		flips[i].p[flips[i].at] ^= 0x80;
		free(t);
		free(nb);
		free(cb);
	}
	/* and put back, it opens: the edits above were the only change */
	char *nb = b64(nonce, NONCE_LEN), *cb = b64(ct, (size_t)n);
	t = xasprintf("%.*s%s:%s\n", (int)f.aad_len, s, nb, cb);
	assert_string_equal(t, s);
	expect_open(KEK_A, ZT_SEAL_LABEL_KEY, t, strlen(t), pt, sizeof pt - 1);
	free(t);
	free(nb);
	free(cb);
	free(s);
	zt_kek_set(NULL);
}

/* Where a byte of a sealed line is. */
enum region { R_MAGIC, R_LABEL, R_COLON, R_ID, R_NONCE, R_CT, R_NL };

static enum region region_of(const struct fields *f, const char *line, size_t i)
{
	const char *p = line + i;

	if (i < strlen(MAGIC))
		return R_MAGIC;
	if (p >= f->label && p < f->label + f->label_len)
		return R_LABEL;
	if (p >= f->id && p < f->id + f->id_len)
		return R_ID;
	if (p >= f->nonce && p < f->nonce + f->nonce_len)
		return R_NONCE;
	if (p >= f->ct && p < f->ct + f->ct_len)
		return R_CT;
	if (*p == '\n')
		return R_NL;
	return R_COLON;
}

static int contains(const uint8_t *hay, size_t n, const uint8_t *needle, size_t m)
{
	for (size_t i = 0; m && i + m <= n; i++)
		if (memcmp(hay + i, needle, m) == 0)
			return 1;
	return 0;
}

/* Every single-bit flip of whole lines, of several lengths (padding or not). */
static void test_every_bit_flip(void **state)
{
	static const size_t sizes[] = {0, 1, 2, 3, 33};
	uint8_t pt[64];
	size_t gcm_refusals = 0, parse_refusals = 0;

	(void)state;
	fill(pt, sizeof pt, 42);
	for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
		char *s = seal(KEK_A, ZT_SEAL_LABEL_KEY, pt, sizes[k]);
		size_t len = strlen(s);
		char *t = malloc(len + 1);
		struct fields f;

		assert_non_null(t);
		split_line(s, &f);
		for (size_t i = 0; i < len; i++)
			for (int bit = 0; bit < 8; bit++) {
				enum region reg = region_of(&f, s, i);
				zt_buf out;
				zt_err e;
				int r;

				memcpy(t, s, len + 1);
				t[i] = (char)(t[i] ^ (1 << bit));
				zt_buf_init(&out, 2 * ZT_SEAL_MAX);
				zt_err_clear(&e);
				r = zt_unseal(KEK_A, ZT_SEAL_LABEL_KEY, t, len, &out, &e);
				if (r == 0)
					fail_msg("size %zu: flip of bit %d of byte %zu ('%c') "
						 "unsealed: %s",
						 sizes[k], bit, i, s[i], t);
				assert_int_equal(out.len, 0);
				/* no plaintext is left in out's memory either */
				if (sizes[k] >= 16 && out.p)
					assert_false(contains(out.p, out.cap, pt, sizes[k]));
				zt_buf_free(&out, 1);
				assert_int_equal(r, -e.code);
				switch (reg) {
				case R_MAGIC:
				case R_COLON:
					assert_string_equal(e.rule, "sealed");
					assert_int_equal(e.code, ZT_EPARSE);
					break;
				case R_LABEL:
					assert_string_equal(e.rule, "sealed");
					assert_true(e.code == ZT_EINVAL || e.code == ZT_EPARSE);
					break;
				case R_ID:
					if (e.code == ZT_EPARSE) {
						assert_string_equal(e.rule, "sealed");
					} else {
						assert_string_equal(e.rule, "kek");
						assert_int_equal(e.code, ZT_EVERIFY);
					}
					break;
				case R_NONCE:
				case R_CT:
				case R_NL:
					assert_string_equal(e.rule, "sealed");
					assert_true(e.code == ZT_EPARSE || e.code == ZT_EVERIFY);
					if (e.code == ZT_EVERIFY)
						gcm_refusals++;
					else
						parse_refusals++;
					break;
				}
			}
		free(t);
		free(s);
	}
	/* both the base64 checks and the GCM tag were exercised */
	assert_true(gcm_refusals > 100);
	assert_true(parse_refusals > 100);
	zt_kek_set(NULL);
}

/* A copy of s with [at, at+cut) replaced by ins. */
static char *splice(const char *s, size_t at, size_t cut, const char *ins)
{
	return xasprintf("%.*s%s%s", (int)at, s, ins, s + at + cut);
}

static void test_malformed(void **state)
{
	static const char pt[] = "0123456789abcdef0123456789"; /* 26 + 16 = 42 bytes: no padding */
	uint8_t raw[64], nonce[NONCE_LEN];
	struct fields f;
	zt_err e;
	char *t, *nb, *cb;

	(void)state;
	char *s = seal(KEK_A, ZT_SEAL_LABEL_KEY, pt, sizeof pt - 1);
	size_t len = strlen(s);

	split_line(s, &f);
	size_t at_nonce = (size_t)(f.nonce - s), at_ct = (size_t)(f.ct - s);

	/* every truncation short of the newline */
	for (size_t n = 0; n + 1 < len; n++) {
		zt_buf out;
		int r;

		zt_buf_init(&out, 4096);
		r = zt_unseal(KEK_A, ZT_SEAL_LABEL_KEY, s, n, &out, &e);
		if (r == 0)
			fail_msg("a truncation to %zu bytes unsealed", n);
		assert_int_equal(out.len, 0);
		assert_true(strcmp(e.rule, "sealed") == 0 || strcmp(e.rule, "kek") == 0);
		zt_buf_free(&out, 1);
	}

	/* extra fields, anywhere */
	t = xasprintf("%.*s:extra\n", (int)(len - 1), s);
	expect_refused(KEK_A, ZT_SEAL_LABEL_KEY, t, strlen(t), "sealed", ZT_EPARSE, &e);
	free(t);
	t = xasprintf("%.*s:\n", (int)(len - 1), s);
	expect_refused(KEK_A, ZT_SEAL_LABEL_KEY, t, strlen(t), "sealed", ZT_EPARSE, &e);
	free(t);
	t = splice(s, at_nonce, 0, "AAAA:");
	expect_refused(KEK_A, ZT_SEAL_LABEL_KEY, t, strlen(t), "sealed", ZT_EPARSE, &e);
	free(t);
	/* fields missing or empty */
	t = splice(s, at_nonce, f.nonce_len + 1, "");
	expect_refused(KEK_A, ZT_SEAL_LABEL_KEY, t, strlen(t), "sealed", ZT_EPARSE, &e);
	free(t);
	t = splice(s, at_nonce, f.nonce_len, "");
	expect_refused(KEK_A, ZT_SEAL_LABEL_KEY, t, strlen(t), "sealed", ZT_EPARSE, &e);
	free(t);
	t = splice(s, at_ct, f.ct_len, "");
	expect_refused(KEK_A, ZT_SEAL_LABEL_KEY, t, strlen(t), "sealed", ZT_EPARSE, &e);
	free(t);
	expect_refused(KEK_A, ZT_SEAL_LABEL_KEY, "ztseal1:", 8, "sealed", ZT_EPARSE, &e);
	expect_refused(KEK_A, ZT_SEAL_LABEL_KEY, "ztseal1::::", 11, "sealed", 0, &e);
	t = xasprintf(MAGIC "private-key:" KEK_A_ID "::");
	expect_refused(KEK_A, ZT_SEAL_LABEL_KEY, t, strlen(t), "sealed", ZT_EPARSE, &e);
	free(t);
	/* not sealed at all */
	expect_refused(KEK_A, ZT_SEAL_LABEL_KEY, "", 0, "sealed", ZT_EPARSE, &e);
	expect_refused(KEK_A, ZT_SEAL_LABEL_KEY, "\n", 1, "sealed", ZT_EPARSE, &e);
	expect_refused(KEK_A, ZT_SEAL_LABEL_KEY, KAT_KEY_PT, strlen(KAT_KEY_PT), "sealed",
		       ZT_EPARSE, &e);
	t = xasprintf(" %s", s);
	expect_refused(KEK_A, ZT_SEAL_LABEL_KEY, t, strlen(t), "sealed", ZT_EPARSE, &e);
	free(t);
	/* anything after the line */
	t = xasprintf("%s%s", s, s);
	expect_refused(KEK_A, ZT_SEAL_LABEL_KEY, t, strlen(t), "sealed", ZT_EPARSE, &e);
	free(t);
	t = xasprintf("%sjunk\n", s);
	expect_refused(KEK_A, ZT_SEAL_LABEL_KEY, t, strlen(t), "sealed", ZT_EPARSE, &e);
	free(t);
	t = xasprintf("%.*s \n", (int)(len - 1), s);
	expect_refused(KEK_A, ZT_SEAL_LABEL_KEY, t, strlen(t), "sealed", ZT_EPARSE, &e);
	free(t);
	/* a NUL inside the line */
	t = strdup(s);
	assert_non_null(t);
	t[at_ct + 4] = '\0';
	expect_refused(KEK_A, ZT_SEAL_LABEL_KEY, t, len, "sealed", ZT_EPARSE, &e);
	free(t);
	/* bad base64: characters, padding in the middle, url alphabet, stray bits */
	t = splice(s, at_nonce + 3, 1, "!");
	expect_refused(KEK_A, ZT_SEAL_LABEL_KEY, t, strlen(t), "sealed", ZT_EPARSE, &e);
	free(t);
	t = splice(s, at_ct + 5, 1, "*");
	expect_refused(KEK_A, ZT_SEAL_LABEL_KEY, t, strlen(t), "sealed", ZT_EPARSE, &e);
	free(t);
	t = splice(s, at_ct + 4, 4, "AA==");
	expect_refused(KEK_A, ZT_SEAL_LABEL_KEY, t, strlen(t), "sealed", ZT_EPARSE, &e);
	free(t);
	t = splice(s, at_ct + 4, 1, "-");
	expect_refused(KEK_A, ZT_SEAL_LABEL_KEY, t, strlen(t), "sealed", ZT_EPARSE, &e);
	free(t);
	t = splice(s, at_ct, 1, "");
	expect_refused(KEK_A, ZT_SEAL_LABEL_KEY, t, strlen(t), "sealed", ZT_EPARSE, &e);
	free(t);
	t = splice(s, at_ct, 0, "AAAA");
	expect_refused(KEK_A, ZT_SEAL_LABEL_KEY, t, strlen(t), "sealed", ZT_EVERIFY, &e);
	free(t);

	/* a nonce that is not 12 bytes, with a ciphertext that would otherwise fit */
	assert_int_equal(unb64(f.ct, f.ct_len, raw, sizeof raw), (int)(sizeof pt - 1 + TAG_LEN));
	cb = b64(raw, sizeof pt - 1 + TAG_LEN);
	fill(nonce, sizeof nonce, 3);
	for (size_t nl = 0; nl <= NONCE_LEN + 4; nl++) {
		uint8_t longer[NONCE_LEN + 4];

		if (nl == NONCE_LEN)
			continue;
		fill(longer, sizeof longer, 3);
		nb = b64(longer, nl);
		t = xasprintf(MAGIC "private-key:" KEK_A_ID ":%s:%s\n", nb, cb);
		expect_refused(KEK_A, ZT_SEAL_LABEL_KEY, t, strlen(t), "sealed", ZT_EPARSE, &e);
		free(t);
		free(nb);
	}
	free(cb);

	/* a ciphertext shorter than the tag; a bare tag is a (bad) empty secret */
	nb = b64(nonce, NONCE_LEN);
	for (size_t cl = 1; cl <= TAG_LEN; cl++) {
		cb = b64(raw, cl);
		t = xasprintf(MAGIC "private-key:" KEK_A_ID ":%s:%s\n", nb, cb);
		expect_refused(KEK_A, ZT_SEAL_LABEL_KEY, t, strlen(t), "sealed",
			       cl < TAG_LEN ? ZT_EPARSE : ZT_EVERIFY, &e);
		free(t);
		free(cb);
	}
	free(nb);

	/* longer than any sealed secret can be */
	size_t big = 2 * ZT_SEAL_MAX + 8;
	char *huge = malloc(big + 1);
	assert_non_null(huge);
	memset(huge, 'A', big);
	memcpy(huge, s, at_ct);
	huge[big] = '\0';
	expect_refused(KEK_A, ZT_SEAL_LABEL_KEY, huge, big, "sealed", ZT_EPARSE, &e);
	free(huge);

	free(s);
	zt_kek_set(NULL);
}

static void test_labels(void **state)
{
	static const char *const bad[] = {"",   "Private-key", "PRIVATE", "a:b", "a b",  "a/b",
					  "a_b", "a\nb",        "\xc3\xa9", "ztseal1:", "+", "key="};
	char label65[66], label64[65];
	zt_buf out;
	zt_err e;

	(void)state;
	memset(label65, 'a', 65);
	label65[65] = '\0';
	memset(label64, 'a', 64);
	label64[64] = '\0';
	zt_buf_init(&out, 4096);
	assert_int_equal(zt_buf_append(&out, "x", 1, &e), 0);
	for (size_t i = 0; i <= sizeof bad / sizeof bad[0]; i++) {
		const char *l = i < sizeof bad / sizeof bad[0] ? bad[i] : label65;

		zt_err_clear(&e);
		if (zt_seal(KEK_A, l, (const uint8_t *)"pt", 2, &out, &e) == 0)
			fail_msg("label \"%s\" was accepted", l);
		assert_int_equal(e.code, ZT_EINVAL);
		assert_int_equal(out.len, 1);
	}
	zt_buf_free(&out, 1);
	char *s = seal(KEK_A, label64, "pt", 2);
	expect_open(KEK_A, label64, s, strlen(s), "pt", 2);
	free(s);
	zt_kek_set(NULL);
}

/* ---- the KEK --------------------------------------------------------------- */

static void expect_kek(const char *path, const uint8_t *want)
{
	uint8_t kek[ZT_KEK_LEN];
	int found = -1;
	zt_err e;

	memset(kek, 0x5a, sizeof kek);
	if (zt_kek_load(path, kek, &found, &e) != 0)
		fail_msg("zt_kek_load(%s): %s", path ? path : "NULL", e.msg);
	assert_int_equal(found, 1);
	assert_memory_equal(kek, want, ZT_KEK_LEN);
}

static void expect_kek_refused(const char *path, const char *rule)
{
	uint8_t kek[ZT_KEK_LEN];
	int found = -1;
	zt_err e;

	zt_err_clear(&e);
	if (zt_kek_load(path, kek, &found, &e) == 0)
		fail_msg("zt_kek_load(%s) accepted it", path ? path : "NULL");
	assert_int_equal(found, 0);
	if (rule)
		assert_string_equal(e.rule, rule);
	assert_true(e.msg[0] != '\0');
}

static void test_kek_load(void **state)
{
	char *dir = tu_mkdtemp();
	uint8_t kek[ZT_KEK_LEN];
	int found = -1;
	zt_err e;

	(void)state;
	unsetenv("ZT_KEK");
	unsetenv("ZT_KEK_FILE");
	char *a = write_tmp(dir, "a", KEK_A_B64 "\n");
	char *b = write_tmp(dir, "b", KEK_B_B64);
	char *spaces = write_tmp(dir, "spaces", KEK_A_B64 "  \t \r\n\n");
	char *crlf = write_tmp(dir, "crlf", KEK_B_B64 "\r\n");
	char *bad = write_tmp(dir, "bad", "not base64 at all!\n");
	char *short_ = write_tmp(dir, "short", "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHg==\n");
	char *long_ = write_tmp(dir, "long", "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8g\n");
	char *empty = write_tmp(dir, "empty", "");
	char *lead = write_tmp(dir, "lead", " " KEK_A_B64 "\n");
	char *two = write_tmp(dir, "two", KEK_A_B64 "\n" KEK_B_B64 "\n");
	char *missing = xasprintf("%s/missing", dir);

	/* from a path */
	expect_kek(a, KEK_A);
	expect_kek(b, KEK_B);
	expect_kek(spaces, KEK_A);
	expect_kek(crlf, KEK_B);
	expect_kek_refused(bad, "kek");
	expect_kek_refused(short_, "kek");
	expect_kek_refused(long_, "kek");
	expect_kek_refused(empty, "kek");
	expect_kek_refused(lead, "kek");
	expect_kek_refused(two, "kek");
	expect_kek_refused(missing, NULL);
	/* the message names the file and says how to make a KEK */
	zt_err_clear(&e);
	assert_true(zt_kek_load(bad, kek, &found, &e) < 0);
	assert_non_null(strstr(e.msg, bad));
	assert_non_null(strstr(e.msg, "zt kek generate"));

	/* none configured: not found, and no error */
	found = -1;
	assert_int_equal(zt_kek_load(NULL, kek, &found, &e), 0);
	assert_int_equal(found, 0);
	setenv("ZT_KEK", "", 1);
	setenv("ZT_KEK_FILE", "", 1);
	found = -1;
	assert_int_equal(zt_kek_load(NULL, kek, &found, &e), 0);
	assert_int_equal(found, 0);

	/* $ZT_KEK_FILE */
	setenv("ZT_KEK_FILE", b, 1);
	expect_kek(NULL, KEK_B);
	setenv("ZT_KEK_FILE", bad, 1);
	expect_kek_refused(NULL, "kek");
	setenv("ZT_KEK_FILE", missing, 1);
	expect_kek_refused(NULL, NULL);

	/* $ZT_KEK, which wins over $ZT_KEK_FILE */
	setenv("ZT_KEK_FILE", b, 1);
	setenv("ZT_KEK", KEK_A_B64, 1);
	expect_kek(NULL, KEK_A);
	setenv("ZT_KEK", KEK_A_B64 "\n", 1);
	expect_kek(NULL, KEK_A);
	setenv("ZT_KEK", KEK_A_B64 "  ", 1);
	expect_kek(NULL, KEK_A);
	setenv("ZT_KEK", "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHg==", 1);
	expect_kek_refused(NULL, "kek");
	setenv("ZT_KEK", "%%%%", 1);
	zt_err_clear(&e);
	assert_true(zt_kek_load(NULL, kek, &found, &e) < 0);
	assert_string_equal(e.rule, "kek");
	assert_non_null(strstr(e.msg, "$ZT_KEK"));
	/* an explicit path is read whatever the environment says */
	setenv("ZT_KEK", KEK_A_B64, 1);
	expect_kek(b, KEK_B);
	unsetenv("ZT_KEK");
	expect_kek(NULL, KEK_B);

	unsetenv("ZT_KEK_FILE");
	free(a);
	free(b);
	free(spaces);
	free(crlf);
	free(bad);
	free(short_);
	free(long_);
	free(empty);
	free(lead);
	free(two);
	free(missing);
	tu_rmtree(dir);
	zt_kek_set(NULL);
}

static void test_kek_generate(void **state)
{
	char *dir = tu_mkdtemp();
	char *p1 = xasprintf("%s/kek1", dir), *p2 = xasprintf("%s/kek2", dir);
	uint8_t k1[48], k2[48], again[ZT_KEK_LEN];
	struct stat st;
	size_t n1, n2;
	int found;
	zt_err e;

	(void)state;
	mode_t old = umask(0); /* the mode is the code's choice, not the umask's */
	assert_int_equal(zt_kek_generate(p1, &e), 0);
	umask(old);
	assert_int_equal(zt_kek_generate(p2, &e), 0);
	assert_int_equal(stat(p1, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);
	assert_int_equal(stat(p2, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);

	char *t1 = tu_read(p1, &n1), *t2 = tu_read(p2, &n2);
	assert_non_null(t1);
	assert_non_null(t2);
	assert_int_equal(n1, 45); /* 44 base64 characters and a newline */
	assert_int_equal(t1[44], '\n');
	assert_int_equal(unb64(t1, 44, k1, sizeof k1), ZT_KEK_LEN);
	assert_int_equal(unb64(t2, 44, k2, sizeof k2), ZT_KEK_LEN);
	assert_memory_not_equal(k1, k2, ZT_KEK_LEN);
	assert_int_equal(zt_kek_load(p1, again, &found, &e), 0);
	assert_int_equal(found, 1);
	assert_memory_equal(again, k1, ZT_KEK_LEN);

	/* never over an existing file, which is left as it was */
	zt_err_clear(&e);
	assert_true(zt_kek_generate(p1, &e) < 0);
	assert_int_equal(e.code, ZT_EEXIST);
	size_t n3;
	char *t3 = tu_read(p1, &n3);
	assert_non_null(t3);
	assert_int_equal(n3, n1);
	assert_memory_equal(t3, t1, n1);
	char *other = write_tmp(dir, "other", "something precious\n");
	assert_true(zt_kek_generate(other, &e) < 0);
	char *t4 = tu_read(other, &n3);
	assert_string_equal(t4, "something precious\n");

	free(t1);
	free(t2);
	free(t3);
	free(t4);
	free(other);
	free(p1);
	free(p2);
	tu_rmtree(dir);
	zt_kek_set(NULL);
}

static void test_kek_set_get(void **state)
{
	(void)state;
	zt_kek_set(NULL);
	assert_null(zt_kek_get());
	zt_kek_set(KEK_A);
	assert_non_null(zt_kek_get());
	assert_memory_equal(zt_kek_get(), KEK_A, ZT_KEK_LEN);
	zt_kek_set(KEK_B);
	assert_memory_equal(zt_kek_get(), KEK_B, ZT_KEK_LEN);
	zt_kek_set(NULL);
	assert_null(zt_kek_get());
}

/* ---- zt_unseal_in_place ------------------------------------------------------ */

static void load_buf(zt_buf *b, const char *text)
{
	zt_err e;

	zt_buf_init(b, 4096);
	assert_int_equal(zt_buf_append(b, text, strlen(text), &e), 0);
}

static void test_unseal_in_place(void **state)
{
	static const char pem[] = "-----BEGIN PRIVATE KEY-----\nMIG\n-----END PRIVATE KEY-----\n";
	zt_buf b;
	zt_err e;

	(void)state;
	/* plain content is left alone, with or without a KEK */
	for (int with = 0; with < 2; with++) {
		zt_kek_set(with ? KEK_A : NULL);
		load_buf(&b, pem);
		uint8_t *p = b.p;
		assert_int_equal(zt_unseal_in_place(&b, ZT_SEAL_LABEL_KEY, &e), 0);
		assert_ptr_equal(b.p, p);
		assert_int_equal(b.len, sizeof pem - 1);
		assert_memory_equal(b.p, pem, sizeof pem - 1);
		zt_buf_free(&b, 1);
		load_buf(&b, "");
		assert_int_equal(zt_unseal_in_place(&b, ZT_SEAL_LABEL_KEY, &e), 0);
		assert_int_equal(b.len, 0);
		zt_buf_free(&b, 1);
	}

	char *s = seal(KEK_A, ZT_SEAL_LABEL_KEY, pem, sizeof pem - 1);

	/* sealed, no KEK: says how to give one, and b still holds the sealed text */
	zt_kek_set(NULL);
	load_buf(&b, s);
	zt_err_clear(&e);
	assert_true(zt_unseal_in_place(&b, ZT_SEAL_LABEL_KEY, &e) < 0);
	assert_string_equal(e.rule, "kek");
	assert_non_null(strstr(e.msg, "ZT_KEK_FILE"));
	assert_int_equal(b.len, strlen(s));
	assert_memory_equal(b.p, s, b.len);
	zt_buf_free(&b, 1);

	/* the wrong KEK, the wrong label */
	zt_kek_set(KEK_B);
	load_buf(&b, s);
	assert_true(zt_unseal_in_place(&b, ZT_SEAL_LABEL_KEY, &e) < 0);
	assert_string_equal(e.rule, "kek");
	assert_non_null(strstr(e.msg, KEK_A_ID));
	assert_non_null(strstr(e.msg, KEK_B_ID));
	assert_memory_equal(b.p, s, strlen(s));
	zt_buf_free(&b, 1);
	zt_kek_set(KEK_A);
	load_buf(&b, s);
	assert_true(zt_unseal_in_place(&b, ZT_SEAL_LABEL_AUDIT_HMAC, &e) < 0);
	assert_string_equal(e.rule, "sealed");
	zt_buf_free(&b, 1);

	/* with the KEK: the plaintext replaces the sealed text */
	load_buf(&b, s);
	assert_int_equal(zt_unseal_in_place(&b, ZT_SEAL_LABEL_KEY, &e), 0);
	assert_int_equal(b.len, sizeof pem - 1);
	assert_memory_equal(b.p, pem, sizeof pem - 1);
	zt_buf_free(&b, 1);

	/* a damaged sealed text is refused, not passed on as plain */
	load_buf(&b, s);
	b.p[b.len - 3] ^= 1;
	assert_true(zt_unseal_in_place(&b, ZT_SEAL_LABEL_KEY, &e) < 0);
	assert_string_equal(e.rule, "sealed");
	zt_buf_free(&b, 1);
	load_buf(&b, "ztseal1:");
	assert_true(zt_unseal_in_place(&b, ZT_SEAL_LABEL_KEY, &e) < 0);
	assert_string_equal(e.rule, "sealed");
	zt_buf_free(&b, 1);

	free(s);
	zt_kek_set(NULL);
}

/* ---- keys zt keeps --------------------------------------------------------- */

static char *read_file(const char *path)
{
	size_t n;
	char *t = tu_read(path, &n);

	assert_non_null(t);
	assert_int_equal(strlen(t), n);
	return t;
}

static void test_key_store(void **state)
{
	char *dir = tu_mkdtemp();
	char *sealed = xasprintf("%s/sealed.key", dir), *plain = xasprintf("%s/plain.key", dir),
	     *nokek = xasprintf("%s/nokek.key", dir), *relabel = xasprintf("%s/relabel.key", dir);
	EVP_PKEY *key = zt_key_generate(NULL), *k2;
	struct stat st;
	zt_err e;
	char *t;

	(void)state;
	assert_non_null(key);

	/* with a KEK, zt_key_store seals */
	zt_kek_set(KEK_A);
	assert_int_equal(zt_key_store(sealed, key, &e), 0);
	assert_int_equal(stat(sealed, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);
	t = read_file(sealed);
	assert_memory_equal(t, MAGIC ZT_SEAL_LABEL_KEY ":" KEK_A_ID ":",
			    strlen(MAGIC ZT_SEAL_LABEL_KEY ":" KEK_A_ID ":"));
	assert_null(strstr(t, "BEGIN"));
	assert_null(strstr(t, "PRIVATE"));
	struct fields f;
	split_line(t, &f);
	free(t);
	assert_non_null(k2 = zt_key_load(sealed, &e));
	assert_int_equal(EVP_PKEY_eq(key, k2), 1);
	EVP_PKEY_free(k2);
	/* never over an existing file */
	assert_true(zt_key_store(sealed, key, &e) < 0);
	assert_int_equal(e.code, ZT_EEXIST);

	/* zt_key_save writes plain PEM even with a KEK set */
	assert_int_equal(zt_key_save(plain, key, &e), 0);
	t = read_file(plain);
	assert_memory_equal(t, "-----BEGIN PRIVATE KEY-----\n", 28);
	assert_false(zt_sealed(t, strlen(t)));
	free(t);
	assert_int_equal(stat(plain, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);
	assert_non_null(k2 = zt_key_load(plain, &e));
	assert_int_equal(EVP_PKEY_eq(key, k2), 1);
	EVP_PKEY_free(k2);

	/* no KEK: a sealed key cannot be read, and the error says why; plain still can */
	zt_kek_set(NULL);
	zt_err_clear(&e);
	assert_null(zt_key_load(sealed, &e));
	assert_string_equal(e.rule, "kek");
	assert_non_null(strstr(e.msg, sealed));
	assert_non_null(strstr(e.msg, "ZT_KEK_FILE"));
	assert_non_null(k2 = zt_key_load(plain, &e));
	assert_int_equal(EVP_PKEY_eq(key, k2), 1);
	EVP_PKEY_free(k2);
	/* and zt_key_store writes plain PEM */
	assert_int_equal(zt_key_store(nokek, key, &e), 0);
	t = read_file(nokek);
	assert_memory_equal(t, "-----BEGIN PRIVATE KEY-----\n", 28);
	free(t);

	/* another KEK: both IDs named */
	zt_kek_set(KEK_B);
	zt_err_clear(&e);
	assert_null(zt_key_load(sealed, &e));
	assert_string_equal(e.rule, "kek");
	assert_non_null(strstr(e.msg, KEK_A_ID));
	assert_non_null(strstr(e.msg, KEK_B_ID));

	/* a key sealed under another label is not a private key */
	zt_kek_set(KEK_A);
	t = read_file(plain);
	char *s = seal(KEK_A, ZT_SEAL_LABEL_AUDIT_SIGNER, t, strlen(t));
	free(t);
	free(write_tmp(dir, "relabel.key", s));
	free(s);
	zt_err_clear(&e);
	assert_null(zt_key_load(relabel, &e));
	assert_string_equal(e.rule, "sealed");

	EVP_PKEY_free(key);
	free(sealed);
	free(plain);
	free(nokek);
	free(relabel);
	tu_rmtree(dir);
	zt_kek_set(NULL);
}

int main(void)
{
	memset(KEK_B, 0xff, sizeof KEK_B);
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_teardown(test_round_trip, teardown),
	    cmocka_unit_test_teardown(test_text_form, teardown),
	    cmocka_unit_test_teardown(test_known_answer, teardown),
	    cmocka_unit_test_teardown(test_kek_id, teardown),
	    cmocka_unit_test_teardown(test_wrong_label_and_kek, teardown),
	    cmocka_unit_test_teardown(test_each_field_altered, teardown),
	    cmocka_unit_test_teardown(test_every_bit_flip, teardown),
	    cmocka_unit_test_teardown(test_malformed, teardown),
	    cmocka_unit_test_teardown(test_labels, teardown),
	    cmocka_unit_test_teardown(test_kek_load, teardown),
	    cmocka_unit_test_teardown(test_kek_generate, teardown),
	    cmocka_unit_test_teardown(test_kek_set_get, teardown),
	    cmocka_unit_test_teardown(test_unseal_in_place, teardown),
	    cmocka_unit_test_teardown(test_key_store, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
