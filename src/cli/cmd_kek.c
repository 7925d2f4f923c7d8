/*
 * cli/cmd_kek.c: zt kek — the key-encryption key that seals private keys
 * at rest (crypto/seal.c). Every zt command reads it from $ZT_KEK_FILE (a
 * file holding 32 bytes in base64) or $ZT_KEK (the base64 itself); with
 * one set, every key zt writes is sealed and sealed keys can be read.
 */
#include "cli.h"
#include "crypto/crypto.h"

#include <stdio.h>
#include <string.h>

#define U_GENERATE "zt kek generate --out FILE"
#define U_SEAL "zt kek seal FILE... [--label private-key|audit-log-key|audit-hmac-key]"
#define U_ID "zt kek id"

static int kek_generate(int argc, char **argv)
{
	const char *out = NULL;
	const struct zt_opt opts[] = {
		{"out", 1, 0, &out, NULL, NULL},
		{NULL, 0, 0, NULL, NULL, NULL},
	};
	uint8_t kek[ZT_KEK_LEN];
	size_t npos;
	char id[9];
	int found;
	zt_err e;
	int r;

	if ((r = zt_cli_parse(argc, argv, opts, NULL, 0, &npos, U_GENERATE)) != 0)
		return r;
	if (!out)
		return zt_cli_usage(U_GENERATE, "--out is required");
	if (zt_kek_generate(out, &e) != 0 || zt_kek_load(out, kek, &found, &e) != 0)
		return zt_cli_fail(&e, "kek generate", ZT_EXIT_FAIL);
	zt_kek_id(kek, id);
	zt_wipe(kek, sizeof kek);
	printf("key-encryption key %s written to %s (mode 0600); keep it apart from what it seals "
	       "and export ZT_KEK_FILE=%s\n",
	       id, out, out);
	return ZT_EXIT_OK;
}

/* The label a file's contents call for, unless one was given. */
static const char *guess_label(const zt_buf *b)
{
	if (b->len >= 11 && memcmp(b->p, "-----BEGIN ", 11) == 0)
		return ZT_SEAL_LABEL_KEY;
	if (b->len >= 12 && memcmp(b->p, "PRIVATE+KEY+", 12) == 0)
		return ZT_SEAL_LABEL_AUDIT_SIGNER;
	return NULL;
}

static int kek_seal(int argc, char **argv)
{
	const char *label = NULL;
	const struct zt_opt opts[] = {
		{"label", 1, 0, &label, NULL, NULL},
		{NULL, 0, 0, NULL, NULL, NULL},
	};
	char *pos[64];
	size_t npos;
	zt_err e;
	int r, status = ZT_EXIT_OK;

	if ((r = zt_cli_parse(argc, argv, opts, pos, 64, &npos, U_SEAL)) != 0)
		return r;
	if (npos == 0)
		return zt_cli_usage(U_SEAL, "name the files to seal");
	if (label && strcmp(label, ZT_SEAL_LABEL_KEY) && strcmp(label, ZT_SEAL_LABEL_AUDIT_SIGNER) &&
	    strcmp(label, ZT_SEAL_LABEL_AUDIT_HMAC))
		return zt_cli_usage(U_SEAL, "--label is private-key, audit-log-key or audit-hmac-key");
	if (!zt_kek_get()) {
		fprintf(stderr, "zt: kek seal: no key-encryption key: set ZT_KEK_FILE (make one with "
				"zt kek generate)\n");
		return ZT_EXIT_FAIL;
	}
	for (size_t i = 0; i < npos; i++) {
		zt_buf b, sealed;
		const char *l;

		if (zt_file_read(pos[i], ZT_SEAL_MAX, &b, &e) != 0) {
			status = zt_cli_fail(&e, "kek seal", ZT_EXIT_FAIL);
			continue;
		}
		if (zt_sealed(b.p, b.len)) {
			fprintf(stderr, "zt: kek seal: %s is sealed already\n", pos[i]);
			zt_buf_free(&b, 1);
			continue;
		}
		if (!(l = label ? label : guess_label(&b))) {
			fprintf(stderr, "zt: kek seal: cannot tell what %s holds; give --label\n", pos[i]);
			zt_buf_free(&b, 1);
			status = ZT_EXIT_FAIL;
			continue;
		}
		zt_buf_init(&sealed, 2 * ZT_SEAL_MAX);
		/* replaced atomically: the sealed file appears whole or not at all */
		if (zt_seal(zt_kek_get(), l, b.p, b.len, &sealed, &e) != 0 ||
		    zt_file_write(pos[i], sealed.p, sealed.len, 0600, 0, &e) != 0)
			status = zt_cli_fail(&e, "kek seal", ZT_EXIT_FAIL);
		else
			printf("sealed %s (%s)\n", pos[i], l);
		zt_buf_free(&b, 1);
		zt_buf_free(&sealed, 1);
	}
	return status;
}

static int kek_id(int argc, char **argv)
{
	char id[9];

	(void)argv;
	if (argc > 0)
		return zt_cli_usage(U_ID, "no arguments");
	if (!zt_kek_get()) {
		fprintf(stderr, "zt: kek id: no key-encryption key is set (ZT_KEK_FILE or ZT_KEK)\n");
		return ZT_EXIT_FAIL;
	}
	zt_kek_id(zt_kek_get(), id);
	printf("%s\n", id);
	return ZT_EXIT_OK;
}

int zt_cmd_kek(int argc, char **argv)
{
	if (argc >= 1 && strcmp(argv[0], "generate") == 0)
		return kek_generate(argc - 1, argv + 1);
	if (argc >= 1 && strcmp(argv[0], "seal") == 0)
		return kek_seal(argc - 1, argv + 1);
	if (argc >= 1 && strcmp(argv[0], "id") == 0)
		return kek_id(argc - 1, argv + 1);
	return zt_cli_usage(U_GENERATE "\n       " U_SEAL "\n       " U_ID,
			    "unknown or missing subcommand");
}
