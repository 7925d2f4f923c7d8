/*
 * crypto/seal.c: secrets at rest, sealed with a key-encryption key (KEK).
 *
 * A sealed secret is one line of text:
 *
 *   ztseal1:<label>:<KEK ID, 8 hex>:<base64 nonce>:<base64 ciphertext||tag>
 *
 * AES-256-GCM (NIST SP 800-38D) with a random 96-bit nonce; the additional
 * data is everything before the nonce, so a sealed CA key cannot be passed
 * off as an audit key (the label) and a secret sealed under another KEK is
 * named as such rather than failing as "corrupt" (the KEK ID, the first 4
 * bytes of SHA-256("zt-kek-id" || KEK)). The KEK itself never touches the
 * disk in the clear next to what it protects: it comes from a file or an
 * environment variable that the operator controls.
 */
#include "crypto.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#define SEAL_MAGIC "ztseal1:"
#define NONCE_LEN 12
#define TAG_LEN 16
#define LABEL_MAX 64

static uint8_t process_kek[ZT_KEK_LEN];
static int have_process_kek;

void zt_kek_set(const uint8_t kek[ZT_KEK_LEN])
{
	if (!kek) {
		zt_wipe(process_kek, sizeof process_kek);
		have_process_kek = 0;
		return;
	}
	memcpy(process_kek, kek, ZT_KEK_LEN);
	have_process_kek = 1;
}

const uint8_t *zt_kek_get(void)
{
	return have_process_kek ? process_kek : NULL;
}

void zt_kek_id(const uint8_t kek[ZT_KEK_LEN], char out[9])
{
	static const char label[] = "zt-kek-id";
	uint8_t in[sizeof label - 1 + ZT_KEK_LEN], h[32];

	memcpy(in, label, sizeof label - 1);
	memcpy(in + sizeof label - 1, kek, ZT_KEK_LEN);
	zt_sha256(in, sizeof in, h);
	zt_hex(h, 4, out);
	zt_wipe(in, sizeof in);
}

static int decode_kek(const char *text, size_t n, uint8_t kek[ZT_KEK_LEN], const char *from,
		      zt_err *e)
{
	zt_buf raw;
	int r = 0;

	while (n > 0 && strchr(" \t\r\n", text[n - 1]))
		n--;
	zt_buf_init(&raw, 64);
	if (zt_base64_decode(text, n, 0, &raw, NULL) != 0 || raw.len != ZT_KEK_LEN)
		r = zt_err_rule(e, ZT_EINVAL, "kek",
				"%s is not a key-encryption key: it must be 32 bytes in base64 (make "
				"one with zt kek generate)",
				from);
	else
		memcpy(kek, raw.p, ZT_KEK_LEN);
	zt_buf_free(&raw, 1);
	return r;
}

int zt_kek_load(const char *path, uint8_t kek[ZT_KEK_LEN], int *found, zt_err *e)
{
	const char *env = getenv("ZT_KEK");
	zt_buf b;
	int r;

	*found = 0;
	if (!path && env && *env) {
		if ((r = decode_kek(env, strlen(env), kek, "$ZT_KEK", e)) != 0)
			return r;
		*found = 1;
		return 0;
	}
	if (!path)
		path = getenv("ZT_KEK_FILE");
	if (!path || !*path)
		return 0;
	if ((r = zt_file_read(path, 4096, &b, e)) != 0)
		return zt_err_wrap(e, "reading the key-encryption key");
	r = decode_kek((const char *)b.p, b.len, kek, path, e);
	zt_buf_free(&b, 1);
	if (r == 0)
		*found = 1;
	return r;
}

int zt_kek_generate(const char *path, zt_err *e)
{
	uint8_t kek[ZT_KEK_LEN];
	zt_buf b;
	int r;

	zt_buf_init(&b, 128);
	if ((r = zt_random(kek, sizeof kek, e)) == 0 &&
	    (r = zt_base64_encode(kek, sizeof kek, 0, &b, e)) == 0 &&
	    (r = zt_buf_append(&b, "\n", 1, e)) == 0)
		r = zt_file_write(path, b.p, b.len, 0600, ZT_WRITE_EXCL, e);
	zt_wipe(kek, sizeof kek);
	zt_buf_free(&b, 1);
	return r;
}

int zt_sealed(const void *text, size_t n)
{
	return n >= sizeof SEAL_MAGIC - 1 && memcmp(text, SEAL_MAGIC, sizeof SEAL_MAGIC - 1) == 0;
}

static int label_ok(const char *label)
{
	size_t n = strlen(label);

	if (n == 0 || n > LABEL_MAX)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!((label[i] >= 'a' && label[i] <= 'z') || (label[i] >= '0' && label[i] <= '9') ||
		      label[i] == '-' || label[i] == '.'))
			return 0;
	return 1;
}

/* AES-256-GCM one shot; enc selects the direction. Returns 0 or -1. */
static int gcm(int enc, const uint8_t kek[ZT_KEK_LEN], const uint8_t nonce[NONCE_LEN],
	       const char *aad, size_t aad_len, const uint8_t *in, size_t n, uint8_t *out,
	       uint8_t tag[TAG_LEN])
{
	EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
	int len, ok;

	if (!c || n > INT32_MAX)
		return -1;
	ok = EVP_CipherInit_ex(c, EVP_aes_256_gcm(), NULL, NULL, NULL, enc) == 1 &&
	     EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_IVLEN, NONCE_LEN, NULL) == 1 &&
	     EVP_CipherInit_ex(c, NULL, NULL, kek, nonce, enc) == 1 &&
	     EVP_CipherUpdate(c, NULL, &len, (const uint8_t *)aad, (int)aad_len) == 1 &&
	     EVP_CipherUpdate(c, out, &len, in, (int)n) == 1;
	if (ok && !enc)
		ok = EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, TAG_LEN, tag) == 1;
	if (ok)
		ok = EVP_CipherFinal_ex(c, out + len, &len) == 1;
	if (ok && enc)
		ok = EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, TAG_LEN, tag) == 1;
	EVP_CIPHER_CTX_free(c);
	return ok ? 0 : -1;
}

int zt_seal(const uint8_t kek[ZT_KEK_LEN], const char *label, const uint8_t *pt, size_t n,
	    zt_buf *out, zt_err *e)
{
	uint8_t nonce[NONCE_LEN], *ct = NULL;
	char id[9];
	size_t start = out->len, aad_len;
	int r;

	if (!label_ok(label))
		return zt_err_set(e, ZT_EINVAL, "a seal label is 1-%d of a-z 0-9 . -", LABEL_MAX);
	if (n > ZT_SEAL_MAX)
		return zt_err_set(e, ZT_ELIMIT, "a sealed secret holds at most %d bytes", ZT_SEAL_MAX);
	zt_kek_id(kek, id);
	if ((r = zt_random(nonce, sizeof nonce, e)) != 0)
		return r;
	if (!(ct = malloc(n + TAG_LEN)))
		return zt_err_set(e, ZT_ENOMEM, "out of memory");
	if ((r = zt_buf_appendf(out, e, "%s%s:%s:", SEAL_MAGIC, label, id)) != 0)
		goto out;
	aad_len = out->len - start;
	if (gcm(1, kek, nonce, (const char *)out->p + start, aad_len, pt, n, ct, ct + n) != 0) {
		r = zt_crypto_err(e, ZT_ECRYPTO, "sealing a secret");
		goto out;
	}
	if ((r = zt_base64_encode(nonce, sizeof nonce, 0, out, e)) != 0 ||
	    (r = zt_buf_append(out, ":", 1, e)) != 0 ||
	    (r = zt_base64_encode(ct, n + TAG_LEN, 0, out, e)) != 0 ||
	    (r = zt_buf_append(out, "\n", 1, e)) != 0)
		goto out;
out:
	if (r != 0)
		out->len = start;
	free(ct);
	return r;
}

int zt_unseal(const uint8_t kek[ZT_KEK_LEN], const char *label, const char *text, size_t n,
	      zt_buf *out, zt_err *e)
{
	const char *f[5], *end;
	size_t fl[5], nf = 0, start = 0;
	zt_buf nonce, ct;
	char id[9];
	int r;

	while (n > 0 && (text[n - 1] == '\n' || text[n - 1] == '\r'))
		n--;
	if (!zt_sealed(text, n) || n > 2 * ZT_SEAL_MAX)
		return zt_err_rule(e, ZT_EPARSE, "sealed", "this is not a sealed secret (ztseal1:...)");
	/* fields after the magic: label, KEK ID, nonce, ciphertext */
	start = sizeof SEAL_MAGIC - 1;
	for (size_t i = start; i <= n && nf < 5; i++)
		if (i == n || text[i] == ':') {
			f[nf] = text + start;
			fl[nf++] = i - start;
			start = i + 1;
		}
	if (nf != 4)
		return zt_err_rule(e, ZT_EPARSE, "sealed",
				   "a sealed secret has four fields after ztseal1: (label, key ID, "
				   "nonce, ciphertext)");
	if (fl[0] != strlen(label) || memcmp(f[0], label, fl[0]) != 0)
		return zt_err_rule(e, ZT_EINVAL, "sealed",
				   "this secret was sealed as \"%.*s\", not as \"%s\": it is not the "
				   "kind of secret expected here",
				   (int)(fl[0] > LABEL_MAX ? LABEL_MAX : fl[0]), f[0], label);
	zt_kek_id(kek, id);
	if (fl[1] != 8 || memcmp(f[1], id, 8) != 0)
		return zt_err_rule(e, ZT_EVERIFY, "kek",
				   "this secret was sealed with key-encryption key %.*s, and the one "
				   "given is %s: give the key it was sealed with",
				   (int)(fl[1] > 8 ? 8 : fl[1]), f[1], id);
	zt_buf_init(&nonce, 64);
	zt_buf_init(&ct, 2 * ZT_SEAL_MAX);
	end = f[2];
	if (zt_base64_decode(f[2], fl[2], 0, &nonce, NULL) != 0 || nonce.len != NONCE_LEN ||
	    zt_base64_decode(f[3], fl[3], 0, &ct, NULL) != 0 || ct.len < TAG_LEN) {
		r = zt_err_rule(e, ZT_EPARSE, "sealed", "the sealed secret's nonce or ciphertext is "
							"damaged");
		goto done;
	}
	size_t pt_len = ct.len - TAG_LEN;

	if (pt_len > ZT_SEAL_MAX) {
		r = zt_err_rule(e, ZT_ELIMIT, "sealed", "a sealed secret holds at most %d bytes",
				ZT_SEAL_MAX);
		goto done;
	}

	if ((r = zt_buf_reserve(out, pt_len + 1, e)) != 0)
		goto done;
	if (gcm(0, kek, nonce.p, text, (size_t)(end - text), ct.p, pt_len, out->p + out->len,
		ct.p + pt_len) != 0) {
		zt_wipe(out->p + out->len, pt_len);
		r = zt_err_rule(e, ZT_EVERIFY, "sealed",
				"the sealed secret does not decrypt: it was altered (its label, key "
				"ID or ciphertext)");
		goto done;
	}
	out->len += pt_len;
	r = 0;
done:
	zt_buf_free(&nonce, 0);
	zt_buf_free(&ct, 1);
	return r;
}

int zt_unseal_in_place(zt_buf *b, const char *label, zt_err *e)
{
	zt_buf pt;
	int r;

	if (!zt_sealed(b->p, b->len))
		return 0;
	if (!zt_kek_get())
		return zt_err_rule(e, ZT_ESTATE, "kek",
				   "this secret is sealed: set ZT_KEK_FILE (or ZT_KEK) to the "
				   "key-encryption key it was sealed with");
	zt_buf_init(&pt, b->max);
	if ((r = zt_unseal(zt_kek_get(), label, (const char *)b->p, b->len, &pt, e)) != 0) {
		zt_buf_free(&pt, 1);
		return r;
	}
	zt_buf_free(b, 1);
	*b = pt;
	return 0;
}
