/*
 * Fuzz target: note keys, signed notes and checkpoints (audit/note.c).
 *
 * The same input is read as a verifier key, a signer key, a checkpoint body
 * and a signed note (and signed checkpoint) under one fixed test key, whose
 * name is the origin of the seed checkpoints in fuzz/corpus/fuzz_checkpoint
 * so that inputs near them open. The key is a test key and nothing else.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "audit/audit.h"
#include "crypto/crypto.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_SKEY "PRIVATE+KEY+fuzz.example/log+2adf1e43+AUy+dGd1fcF+Ia9/MfBEZperQh7yKgEVizCuOr0H7SDz"

static zt_note_key *key;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	zt_crypto_init();
	key = zt_note_signer_parse(FUZZ_SKEY, strlen(FUZZ_SKEY), NULL);
	if (!key)
		abort();
	return 0;
}

/* A parsed key formats and parses back to the same key. */
static void check_key(zt_note_key *k, int private)
{
	zt_note_key *again;
	zt_buf b;
	int r;

	if (!k)
		return;
	if (zt_note_key_can_sign(k) != private || !zt_note_name_ok(zt_note_key_name(k),
								   strlen(zt_note_key_name(k))))
		abort();
	zt_buf_init(&b, 4096);
	r = private ? zt_note_signer_format(k, &b, NULL) : zt_note_verifier_format(k, &b, NULL);
	if (r != 0)
		abort();
	again = private ? zt_note_signer_parse((const char *)b.p, b.len, NULL)
			: zt_note_verifier_parse((const char *)b.p, b.len, NULL);
	if (!again || zt_note_key_id(again) != zt_note_key_id(k) ||
	    strcmp(zt_note_key_name(again), zt_note_key_name(k)) != 0)
		abort();
	zt_note_key_free(again);
	zt_buf_free(&b, 1);
	zt_note_key_free(k);
}

static int same(const zt_checkpoint *a, const zt_checkpoint *b)
{
	return strcmp(a->origin, b->origin) == 0 && a->size == b->size &&
	       memcmp(a->root, b->root, sizeof a->root) == 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *text = (const char *)data;
	zt_checkpoint c, again;
	size_t text_len;
	zt_buf b;
	zt_err e;

	check_key(zt_note_verifier_parse(text, size, &e), 0);
	check_key(zt_note_signer_parse(text, size, &e), 1);

	/* a checkpoint body formats and parses back the same */
	if (zt_checkpoint_parse(text, size, &c, &e) == 0) {
		if (c.origin[0] == '\0' || strnlen(c.origin, sizeof c.origin) == sizeof c.origin)
			abort();
		zt_buf_init(&b, 4096);
		if (zt_checkpoint_format(&c, &b, &e) != 0 ||
		    zt_checkpoint_parse((const char *)b.p, b.len, &again, &e) != 0 ||
		    !same(&c, &again))
			abort();
		zt_buf_free(&b, 0);
	}

	/* a note that opens has its text in front; a checkpoint that opens is
	 * that text, parsed, with the key's name as its origin */
	if (zt_note_open(key, text, size, &text_len, &e) == 0) {
		if (text_len == 0 || text_len >= size || text[text_len - 1] != '\n')
			abort();
		if (zt_checkpoint_open(key, text, size, &c, &e) == 0) {
			if (zt_checkpoint_parse(text, text_len, &again, &e) != 0 || !same(&c, &again) ||
			    strcmp(c.origin, zt_note_key_name(key)) != 0)
				abort();
		}
	} else if (zt_checkpoint_open(key, text, size, &c, &e) == 0) {
		abort(); /* a checkpoint cannot open when its note does not */
	}

	/* what we sign, we open */
	zt_buf_init(&b, 2 * ZT_NOTE_MAX);
	if (zt_note_sign(key, text, size, &b, &e) == 0 && b.len <= ZT_NOTE_MAX) {
		if (zt_note_open(key, (const char *)b.p, b.len, &text_len, &e) != 0 ||
		    text_len != size)
			abort();
		if (zt_checkpoint_parse(text, size, &c, &e) == 0 &&
		    strcmp(c.origin, zt_note_key_name(key)) == 0 &&
		    (zt_checkpoint_open(key, (const char *)b.p, b.len, &again, &e) != 0 ||
		     !same(&c, &again)))
			abort();
	}
	zt_buf_free(&b, 0);
	return 0;
}
