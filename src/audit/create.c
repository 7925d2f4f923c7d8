/*
 * Creating a log: its directory, its keys and its empty files.
 *
 * log.key signs checkpoints and hmac.key hides secret values; both are
 * written 0600, and sealed under the key-encryption key when one is
 * configured (crypto/seal.c). Whoever holds log.key can sign any history, so checkpoints
 * that others keep (auditors, witnesses) are what make rewriting
 * detectable: see docs/audit.md "Trust".
 */
#include <dirent.h>
#include <errno.h>
#include <string.h>

#include "audit/audit.h"
#include "audit/audit_int.h"
#include "crypto/crypto.h"

static int dir_empty(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	int empty = 1;

	if (!d)
		return errno == ENOENT;
	while ((de = readdir(d)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			empty = 0;
	closedir(d);
	return empty;
}

static int put(const char *dir, const char *name, const void *data, size_t len, unsigned mode,
	       zt_err *e)
{
	char p[ZT_AUDIT_PATH_MAX + 16];
	int r;

	if ((r = zt_path_join(p, sizeof p, e, "%s/%s", dir, name)) != 0)
		return r;
	return zt_file_write(p, data, len, mode, ZT_WRITE_EXCL, e);
}

/* A secret file: sealed under the process's KEK when one is configured. */
static int put_secret(const char *dir, const char *name, const char *label, const zt_buf *b,
		      zt_err *e)
{
	zt_buf sealed;
	int r;

	if (!zt_kek_get())
		return put(dir, name, b->p, b->len, 0600, e);
	zt_buf_init(&sealed, 2 * ZT_SEAL_MAX);
	if ((r = zt_seal(zt_kek_get(), label, b->p, b->len, &sealed, e)) == 0)
		r = put(dir, name, sealed.p, sealed.len, 0600, e);
	zt_buf_free(&sealed, 1);
	return r;
}

int zt_audit_create(const char *dir, const char *origin, zt_err *e)
{
	static const char *const empty[] = {"entries", "index", "tree", "checkpoints"};
	uint8_t hmac[ZT_HASH_LEN];
	zt_note_key *k = NULL;
	zt_buf b;
	int r;

	if (strlen(dir) >= ZT_AUDIT_PATH_MAX)
		return zt_err_set(e, ZT_EINVAL, "the log directory's path is too long");
	if (!zt_note_name_ok(origin, strlen(origin)))
		return zt_err_rule(e, ZT_EINVAL, "key-name",
				   "the log's origin \"%s\" must be 1-255 bytes without spaces or "
				   "'+' (for example audit.example.org/prod)",
				   origin);
	if (!dir_empty(dir))
		return zt_err_rule(e, ZT_EEXIST, "exists",
				   "%s exists and is not empty; a new log needs a new directory", dir);
	if ((r = zt_mkdir(dir, 0700, e)) != 0)
		return r;
	zt_buf_init(&b, 4096);
	if (!(k = zt_note_key_generate(origin, e))) {
		r = -ZT_ECRYPTO;
		goto out;
	}
	if ((r = zt_note_signer_format(k, &b, e)) != 0 || (r = zt_buf_append(&b, "\n", 1, e)) != 0 ||
	    (r = put_secret(dir, "log.key", ZT_SEAL_LABEL_AUDIT_SIGNER, &b, e)) != 0)
		goto out;
	zt_buf_free(&b, 1);
	zt_buf_init(&b, 4096);
	if ((r = zt_note_verifier_format(k, &b, e)) != 0 ||
	    (r = zt_buf_append(&b, "\n", 1, e)) != 0 ||
	    (r = put(dir, "log.pub", b.p, b.len, 0644, e)) != 0)
		goto out;
	zt_buf_free(&b, 1);
	zt_buf_init(&b, 4096);
	if ((r = zt_random(hmac, sizeof hmac, e)) != 0 ||
	    (r = zt_base64_encode(hmac, sizeof hmac, 0, &b, e)) != 0 ||
	    (r = zt_buf_append(&b, "\n", 1, e)) != 0 ||
	    (r = put_secret(dir, "hmac.key", ZT_SEAL_LABEL_AUDIT_HMAC, &b, e)) != 0)
		goto out;
	for (size_t i = 0; i < sizeof empty / sizeof empty[0]; i++)
		if ((r = put(dir, empty[i], "", 0, 0600, e)) != 0)
			goto out;
	/*
	 * The head starts with a valid slot for the empty log, so that a torn
	 * first commit still leaves one good slot: a head with none is damage.
	 */
	zt_audit_head h = {0};
	uint8_t slot[ZT_AUDIT_HEAD_SLOT];
	char p[ZT_AUDIT_PATH_MAX + 16];

	zt_merkle_empty_root(h.root);
	zt_audit_head_encode(&h, slot);
	if ((r = zt_path_join(p, sizeof p, e, "%s/head", dir)) != 0 ||
	    (r = zt_file_write(p, slot, sizeof slot, 0600, 0, e)) != 0)
		goto out;
	r = 0;
out:
	zt_wipe(hmac, sizeof hmac);
	zt_buf_free(&b, 1);
	zt_note_key_free(k);
	return r;
}
