/*
 * Signed notes (C2SP signed-note) with Ed25519 keys, and checkpoints in
 * the C2SP tlog-checkpoint format. A note is text, a blank line, and one
 * signature line per signer:
 *
 *   <text ending in "\n">
 *   "\n"
 *   "— <key name> <base64(4-byte key ID || signature)>\n" ...
 *
 * The signature covers the text including its final newline.
 */
#include <string.h>

#include <openssl/evp.h>

#include "audit/audit.h"
#include "crypto/crypto.h"

#define ED25519_LEN 32
#define ED25519_SIG_LEN 64
#define ALG_ED25519 0x01 /* signed-note "Signature types" */
#define NAME_MAX_LEN 255

static const char em_dash[] = "\xe2\x80\x94 "; /* "— ": U+2014 and a space */

struct zt_note_key {
	char name[NAME_MAX_LEN + 1];
	uint32_t id;
	uint8_t pub[ED25519_LEN];
	EVP_PKEY *pkey; /* private when the key can sign */
	int can_sign;
};

/* Length of a valid UTF-8 sequence at p (at most n bytes), 0 if invalid. */
static size_t utf8_len(const uint8_t *p, size_t n)
{
	uint32_t cp;
	size_t len;

	if (p[0] < 0x80)
		return 1;
	if ((p[0] & 0xe0) == 0xc0) {
		len = 2;
		cp = p[0] & 0x1f;
	} else if ((p[0] & 0xf0) == 0xe0) {
		len = 3;
		cp = p[0] & 0x0f;
	} else if ((p[0] & 0xf8) == 0xf0) {
		len = 4;
		cp = p[0] & 0x07;
	} else {
		return 0;
	}
	if (len > n)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (p[i] & 0x3f);
	}
	if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
	    cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return len;
}

/* 1 if code point at p is Unicode white space (the ones UTF-8 text may carry). */
static int unicode_space(const uint8_t *p, size_t len)
{
	if (len == 1)
		return p[0] == ' ' || (p[0] >= 0x09 && p[0] <= 0x0d);
	if (len == 2)
		return (p[0] == 0xc2 && (p[1] == 0x85 || p[1] == 0xa0));
	if (len == 3) {
		if (p[0] == 0xe1 && p[1] == 0x9a && p[2] == 0x80)
			return 1; /* U+1680 */
		if (p[0] == 0xe2 && p[1] == 0x80 &&
		    ((p[2] >= 0x80 && p[2] <= 0x8a) || p[2] == 0xa8 || p[2] == 0xa9 || p[2] == 0xaf))
			return 1; /* U+2000-200A, 2028, 2029, 202F */
		if (p[0] == 0xe2 && p[1] == 0x81 && p[2] == 0x9f)
			return 1; /* U+205F */
		if (p[0] == 0xe3 && p[1] == 0x80 && p[2] == 0x80)
			return 1; /* U+3000 */
	}
	return 0;
}

int zt_note_name_ok(const char *name, size_t len)
{
	const uint8_t *p = (const uint8_t *)name;

	/* signed-note "Keys": non-empty, UTF-8, no Unicode spaces, no plus */
	if (len == 0 || len > NAME_MAX_LEN)
		return 0;
	for (size_t i = 0; i < len;) {
		size_t l = utf8_len(p + i, len - i);

		if (l == 0 || p[i] == '+' || p[i] < 0x20 || p[i] == 0x7f || unicode_space(p + i, l))
			return 0;
		i += l;
	}
	return 1;
}

/* signed-note: key ID = SHA-256(name || 0x0A || 0x01 || public key)[:4], big-endian. */
static uint32_t key_id(const char *name, const uint8_t pub[ED25519_LEN])
{
	uint8_t in[NAME_MAX_LEN + 2 + ED25519_LEN], h[32];
	size_t n = strlen(name);

	memcpy(in, name, n);
	in[n] = '\n';
	in[n + 1] = ALG_ED25519;
	memcpy(in + n + 2, pub, ED25519_LEN);
	zt_sha256(in, n + 2 + ED25519_LEN, h);
	return (uint32_t)h[0] << 24 | (uint32_t)h[1] << 16 | (uint32_t)h[2] << 8 | h[3];
}

static zt_note_key *key_new(const char *name, size_t len, zt_err *e)
{
	zt_note_key *k;

	if (!zt_note_name_ok(name, len)) {
		zt_err_rule(e, ZT_EINVAL, "key-name",
			    "a note key name must be 1-%d bytes of UTF-8 without spaces or '+'",
			    NAME_MAX_LEN);
		return NULL;
	}
	if (!(k = calloc(1, sizeof *k))) {
		zt_err_set(e, ZT_ENOMEM, "out of memory");
		return NULL;
	}
	memcpy(k->name, name, len);
	k->name[len] = '\0';
	return k;
}

void zt_note_key_free(zt_note_key *k)
{
	if (!k)
		return;
	EVP_PKEY_free(k->pkey);
	zt_wipe(k, sizeof *k);
	free(k);
}

const char *zt_note_key_name(const zt_note_key *k)
{
	return k->name;
}

uint32_t zt_note_key_id(const zt_note_key *k)
{
	return k->id;
}

int zt_note_key_can_sign(const zt_note_key *k)
{
	return k->can_sign;
}

zt_note_key *zt_note_key_generate(const char *name, zt_err *e)
{
	zt_note_key *k = key_new(name, strlen(name), e);
	size_t plen = ED25519_LEN;

	if (!k)
		return NULL;
	if (!(k->pkey = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519")) ||
	    EVP_PKEY_get_raw_public_key(k->pkey, k->pub, &plen) != 1 || plen != ED25519_LEN) {
		zt_crypto_err(e, ZT_ECRYPTO, "generating an Ed25519 key");
		zt_note_key_free(k);
		return NULL;
	}
	k->can_sign = 1;
	k->id = key_id(k->name, k->pub);
	return k;
}

static void trim(const char **text, size_t *len)
{
	while (*len > 0 && strchr(" \t\r\n", (*text)[*len - 1]))
		(*len)--;
	while (*len > 0 && strchr(" \t\r\n", (*text)[0])) {
		(*text)++;
		(*len)--;
	}
}

/*
 * Splits text at '+' into max fields; the last takes the rest of the text,
 * since base64 itself may contain '+'. Returns how many fields there were.
 */
static size_t split_plus(const char *text, size_t len, const char **f, size_t *fl, size_t max)
{
	size_t n = 0, start = 0;

	for (size_t i = 0; i <= len && n < max; i++) {
		if (i == len || (text[i] == '+' && n + 1 < max)) {
			f[n] = text + start;
			fl[n] = i - start;
			n++;
			start = i + 1;
		}
	}
	return n;
}

static int parse_hex_id(const char *p, size_t len, uint32_t *id)
{
	*id = 0;
	if (len != 8)
		return -1;
	for (size_t i = 0; i < 8; i++) {
		int v = zt_hex_value((unsigned char)p[i]);

		if (v < 0)
			return -1;
		*id = *id << 4 | (uint32_t)v;
	}
	return 0;
}

/* Shared by both key encodings: name, hex ID, base64(0x01 || 32 bytes). */
static zt_note_key *key_parse(const char *name, size_t name_len, const char *hex, size_t hex_len,
			      const char *b64, size_t b64_len, int private, zt_err *e)
{
	const char *what = private ? "signer key" : "verifier key";
	zt_note_key *k = key_new(name, name_len, e);
	uint32_t id;
	zt_buf raw;

	if (!k)
		return NULL;
	zt_buf_init(&raw, 64);
	if (parse_hex_id(hex, hex_len, &id) != 0) {
		zt_err_rule(e, ZT_EPARSE, "key-format", "the %s's key ID is not 8 hex digits", what);
		goto fail;
	}
	if (zt_base64_decode(b64, b64_len, 0, &raw, e) != 0) {
		zt_err_wrap(e, "the %s's key", what);
		goto fail;
	}
	if (raw.len != 1 + ED25519_LEN || raw.p[0] != ALG_ED25519) {
		zt_err_rule(e, ZT_EPARSE, "key-format",
			    "the %s is not an Ed25519 key (signature type 0x01 and 32 bytes)", what);
		goto fail;
	}
	if (private) {
		size_t plen = ED25519_LEN;

		k->pkey = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, raw.p + 1, ED25519_LEN);
		if (!k->pkey || EVP_PKEY_get_raw_public_key(k->pkey, k->pub, &plen) != 1) {
			zt_crypto_err(e, ZT_ECRYPTO, "loading the Ed25519 signer key");
			goto fail;
		}
		k->can_sign = 1;
	} else {
		memcpy(k->pub, raw.p + 1, ED25519_LEN);
		k->pkey = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, k->pub, ED25519_LEN);
		if (!k->pkey) {
			zt_crypto_err(e, ZT_ECRYPTO, "loading the Ed25519 verifier key");
			goto fail;
		}
	}
	k->id = key_id(k->name, k->pub);
	if (k->id != id) {
		zt_err_rule(e, ZT_EVERIFY, "key-id",
			    "the %s's ID %08x does not match its name and key (%08x): the key "
			    "was altered or belongs to another name",
			    what, id, k->id);
		goto fail;
	}
	zt_buf_free(&raw, 1);
	return k;
fail:
	zt_buf_free(&raw, 1);
	zt_note_key_free(k);
	return NULL;
}

zt_note_key *zt_note_signer_parse(const char *text, size_t len, zt_err *e)
{
	const char *f[6];
	size_t fl[6];

	trim(&text, &len);
	if (split_plus(text, len, f, fl, 5) != 5 || fl[0] != 7 || memcmp(f[0], "PRIVATE", 7) != 0 ||
	    fl[1] != 3 || memcmp(f[1], "KEY", 3) != 0) {
		zt_err_rule(e, ZT_EPARSE, "key-format",
			    "a signer key has the form PRIVATE+KEY+<name>+<hex ID>+<base64>");
		return NULL;
	}
	return key_parse(f[2], fl[2], f[3], fl[3], f[4], fl[4], 1, e);
}

zt_note_key *zt_note_verifier_parse(const char *text, size_t len, zt_err *e)
{
	const char *f[4];
	size_t fl[4];

	trim(&text, &len);
	if (split_plus(text, len, f, fl, 3) != 3) {
		zt_err_rule(e, ZT_EPARSE, "key-format",
			    "a verifier key has the form <name>+<hex ID>+<base64>");
		return NULL;
	}
	return key_parse(f[0], fl[0], f[1], fl[1], f[2], fl[2], 0, e);
}

static int key_format(const zt_note_key *k, int private, zt_buf *out, zt_err *e)
{
	uint8_t raw[1 + ED25519_LEN];
	size_t len = ED25519_LEN;
	int r;

	raw[0] = ALG_ED25519;
	if (private) {
		if (!k->can_sign)
			return zt_err_set(e, ZT_ESTATE, "this note key has no private half");
		if (EVP_PKEY_get_raw_private_key(k->pkey, raw + 1, &len) != 1)
			return zt_crypto_err(e, ZT_ECRYPTO, "reading the Ed25519 private key");
	} else {
		memcpy(raw + 1, k->pub, ED25519_LEN);
	}
	if ((r = zt_buf_appendf(out, e, "%s%s+%08x+", private ? "PRIVATE+KEY+" : "", k->name,
				k->id)) == 0)
		r = zt_base64_encode(raw, sizeof raw, 0, out, e);
	zt_wipe(raw, sizeof raw);
	return r;
}

int zt_note_signer_format(const zt_note_key *k, zt_buf *out, zt_err *e)
{
	return key_format(k, 1, out, e);
}

int zt_note_verifier_format(const zt_note_key *k, zt_buf *out, zt_err *e)
{
	return key_format(k, 0, out, e);
}

/* signed-note "Note text": UTF-8, ends in a newline, no control characters but newline. */
static int text_ok(const char *text, size_t len, zt_err *e)
{
	const uint8_t *p = (const uint8_t *)text;

	if (len == 0 || p[len - 1] != '\n')
		return zt_err_rule(e, ZT_EPARSE, "note-format", "a note's text must end with a newline");
	for (size_t i = 0; i < len;) {
		size_t l = utf8_len(p + i, len - i);

		if (l == 0)
			return zt_err_rule(e, ZT_EPARSE, "note-format",
					   "a note's text is not valid UTF-8 (byte %zu)", i);
		if (l == 1 && ((p[i] < 0x20 && p[i] != '\n') || p[i] == 0x7f))
			return zt_err_rule(e, ZT_EPARSE, "note-format",
					   "a note's text has a control character at byte %zu", i);
		i += l;
	}
	return 0;
}

int zt_note_sign(const zt_note_key *k, const char *text, size_t len, zt_buf *out, zt_err *e)
{
	uint8_t sig[4 + ED25519_SIG_LEN];
	size_t slen = ED25519_SIG_LEN;
	EVP_MD_CTX *c;
	int r;

	if (!k->can_sign)
		return zt_err_set(e, ZT_ESTATE, "the key %s cannot sign: it has no private half",
				  k->name);
	if ((r = text_ok(text, len, e)) != 0)
		return r;
	if (text[0] == '\n')
		return zt_err_rule(e, ZT_EINVAL, "note-format",
				   "a note's text must not start with a blank line");
	for (size_t i = 0; i + 1 < len; i++)
		if (text[i] == '\n' && text[i + 1] == '\n')
			return zt_err_rule(e, ZT_EINVAL, "note-format",
					   "a note's text must not contain a blank line");
	if (!(c = EVP_MD_CTX_new()))
		return zt_err_set(e, ZT_ENOMEM, "out of memory");
	if (EVP_DigestSignInit(c, NULL, NULL, NULL, k->pkey) != 1 ||
	    EVP_DigestSign(c, sig + 4, &slen, (const uint8_t *)text, len) != 1 ||
	    slen != ED25519_SIG_LEN) {
		EVP_MD_CTX_free(c);
		return zt_crypto_err(e, ZT_ECRYPTO, "signing a note");
	}
	EVP_MD_CTX_free(c);
	sig[0] = (uint8_t)(k->id >> 24);
	sig[1] = (uint8_t)(k->id >> 16);
	sig[2] = (uint8_t)(k->id >> 8);
	sig[3] = (uint8_t)k->id;
	if ((r = zt_buf_append(out, text, len, e)) != 0 ||
	    (r = zt_buf_appendf(out, e, "\n%s%s ", em_dash, k->name)) != 0 ||
	    (r = zt_base64_encode(sig, sizeof sig, 0, out, e)) != 0 ||
	    (r = zt_buf_append(out, "\n", 1, e)) != 0)
		return r;
	return 0;
}

static int verify_sig(const zt_note_key *k, const char *text, size_t len, const uint8_t *sig)
{
	EVP_MD_CTX *c = EVP_MD_CTX_new();
	int ok;

	if (!c)
		return 0;
	ok = EVP_DigestVerifyInit(c, NULL, NULL, NULL, k->pkey) == 1 &&
	     EVP_DigestVerify(c, sig, ED25519_SIG_LEN, (const uint8_t *)text, len) == 1;
	EVP_MD_CTX_free(c);
	return ok;
}

/* The text ends at the last blank line: "\n\n" splits text from signatures. 0: none. */
static size_t text_end(const char *note, size_t len)
{
	for (size_t i = len; i >= 2; i--)
		if (note[i - 1] == '\n' && note[i - 2] == '\n')
			return i - 1;
	return 0;
}

int zt_note_open(const zt_note_key *k, const char *note, size_t len, size_t *text_len, zt_err *e)
{
	size_t split = 0, nsigs = 0;
	int found = 0, r;
	zt_buf raw;

	*text_len = 0;
	if (len > ZT_NOTE_MAX)
		return zt_err_rule(e, ZT_ELIMIT, "note-format",
				   "the note is larger than %d bytes", ZT_NOTE_MAX);
	split = text_end(note, len);
	if (split == 0)
		return zt_err_rule(e, ZT_EPARSE, "note-format",
				   "the note has no blank line before its signatures");
	if ((r = text_ok(note, split, e)) != 0)
		return r;
	const char *p = note + split + 1, *end = note + len;

	if (p == end || end[-1] != '\n')
		return zt_err_rule(e, ZT_EPARSE, "note-format",
				   "the note's signature block must end with a newline");
	zt_buf_init(&raw, 256);
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t ll = (size_t)(nl - p);

		if (++nsigs > ZT_NOTE_MAX_SIGS) {
			r = zt_err_rule(e, ZT_ELIMIT, "note-format",
					"the note has more than %d signatures", ZT_NOTE_MAX_SIGS);
			goto out;
		}
		const char *sp = ll > 4 ? memchr(p + 4, ' ', ll - 4) : NULL;

		if (ll < 4 || memcmp(p, em_dash, 4) != 0 || !sp) {
			r = zt_err_rule(e, ZT_EPARSE, "note-format",
					"signature line %zu is not \"— <name> <base64>\"", nsigs);
			goto out;
		}
		const char *name = p + 4, *b64 = sp + 1;
		size_t name_len = (size_t)(sp - name), b64_len = (size_t)(nl - b64);

		raw.len = 0;
		if (!zt_note_name_ok(name, name_len) ||
		    zt_base64_decode(b64, b64_len, 0, &raw, NULL) != 0 || raw.len < 5) {
			r = zt_err_rule(e, ZT_EPARSE, "note-format",
					"signature line %zu has a bad name or signature encoding", nsigs);
			goto out;
		}
		uint32_t id = (uint32_t)raw.p[0] << 24 | (uint32_t)raw.p[1] << 16 |
			      (uint32_t)raw.p[2] << 8 | raw.p[3];

		/*
		 * Every line that names our key must verify (signed-note
		 * "Verification"; Go's sumdb/note only checks the first, zt
		 * rejects a note that carries any bad signature by its key).
		 */
		if (id == k->id && name_len == strlen(k->name) &&
		    memcmp(name, k->name, name_len) == 0) {
			if (raw.len != 4 + ED25519_SIG_LEN || !verify_sig(k, note, split, raw.p + 4)) {
				r = zt_err_rule(e, ZT_EVERIFY, "note-signature",
						"the note's signature by %s does not verify: the note "
						"was altered or signed by another key",
						k->name);
				goto out;
			}
			found = 1;
		}
		p = nl + 1;
	}
	if (!found) {
		r = zt_err_rule(e, ZT_EVERIFY, "note-signature",
				"the note carries no signature by %s+%08x", k->name, k->id);
		goto out;
	}
	*text_len = split;
	r = 0;
out:
	zt_buf_free(&raw, 0);
	return r;
}

int zt_checkpoint_parse(const char *text, size_t len, zt_checkpoint *out, zt_err *e)
{
	const char *p = text, *end = text + len, *line[3];
	size_t ll[3];
	zt_buf raw;
	int r;

	memset(out, 0, sizeof *out);
	if (len == 0 || text[len - 1] != '\n')
		return zt_err_rule(e, ZT_EPARSE, "checkpoint-format",
				   "a checkpoint must end with a newline");
	for (int i = 0; i < 3; i++) {
		const char *nl = p < end ? memchr(p, '\n', (size_t)(end - p)) : NULL;

		if (!nl)
			return zt_err_rule(e, ZT_EPARSE, "checkpoint-format",
					   "a checkpoint has an origin, a size and a root hash line");
		line[i] = p;
		ll[i] = (size_t)(nl - p);
		p = nl + 1;
	}
	/* tlog-checkpoint: extension lines follow, each non-empty */
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));

		if (nl == p)
			return zt_err_rule(e, ZT_EPARSE, "checkpoint-format",
					   "a checkpoint's extension lines must not be empty");
		p = nl + 1;
	}
	if (ll[0] == 0 || ll[0] >= sizeof out->origin)
		return zt_err_rule(e, ZT_EPARSE, "checkpoint-format",
				   "a checkpoint's origin line must be 1-%zu bytes",
				   sizeof out->origin - 1);
	for (size_t i = 0; i < ll[0]; i++)
		if ((unsigned char)line[0][i] < 0x20 || line[0][i] == 0x7f)
			return zt_err_rule(e, ZT_EPARSE, "checkpoint-format",
					   "a checkpoint's origin has a control character");
	memcpy(out->origin, line[0], ll[0]);
	if (ll[1] == 0 || ll[1] > 20 || (ll[1] > 1 && line[1][0] == '0'))
		return zt_err_rule(e, ZT_EPARSE, "checkpoint-format",
				   "a checkpoint's size must be a decimal number without leading zeros");
	uint64_t size = 0;

	for (size_t i = 0; i < ll[1]; i++) {
		unsigned d = (unsigned)(line[1][i] - '0');

		if (d > 9 || size > (UINT64_MAX - d) / 10)
			return zt_err_rule(e, ZT_EPARSE, "checkpoint-format",
					   "a checkpoint's size must be a decimal number below 2^64");
		size = size * 10 + d;
	}
	out->size = size;
	zt_buf_init(&raw, 64);
	if ((r = zt_base64_decode(line[2], ll[2], 0, &raw, e)) != 0 || raw.len != ZT_HASH_LEN) {
		zt_buf_free(&raw, 0);
		return zt_err_rule(e, ZT_EPARSE, "checkpoint-format",
				   "a checkpoint's root hash must be 32 bytes in standard base64");
	}
	memcpy(out->root, raw.p, ZT_HASH_LEN);
	zt_buf_free(&raw, 0);
	return 0;
}

int zt_checkpoint_format(const zt_checkpoint *c, zt_buf *out, zt_err *e)
{
	int r;

	if ((r = zt_buf_appendf(out, e, "%s\n%llu\n", c->origin, (unsigned long long)c->size)) != 0 ||
	    (r = zt_base64_encode(c->root, ZT_HASH_LEN, 0, out, e)) != 0)
		return r;
	return zt_buf_append(out, "\n", 1, e);
}

int zt_checkpoint_peek(const char *note, size_t len, zt_checkpoint *out)
{
	size_t text = len <= ZT_NOTE_MAX ? text_end(note, len) : 0;

	memset(out, 0, sizeof *out);
	return text ? zt_checkpoint_parse(note, text, out, NULL) : -ZT_EPARSE;
}

int zt_checkpoint_open(const zt_note_key *k, const char *note, size_t len, zt_checkpoint *out,
		       zt_err *e)
{
	size_t text_len;
	int r;

	memset(out, 0, sizeof *out);
	if ((r = zt_note_open(k, note, len, &text_len, e)) != 0 ||
	    (r = zt_checkpoint_parse(note, text_len, out, e)) != 0)
		return r;
	if (strcmp(out->origin, k->name) != 0)
		return zt_err_rule(e, ZT_EVERIFY, "checkpoint-origin",
				   "the checkpoint is for log \"%s\", not \"%s\"", out->origin, k->name);
	return 0;
}
