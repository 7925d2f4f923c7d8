/*
 * Fuzz target: sealed secrets (crypto/seal.c).
 *
 * The input is opened with zt_unseal under one fixed test KEK, as a
 * "private-key" and under the label the input itself names, and with
 * zt_unseal_in_place under the same KEK set for the process. Whatever
 * opens must agree between the two entry points, must start with the
 * header it was checked against, and must seal and open again to the same
 * plaintext. Any input at most ZT_SEAL_MAX long also seals and opens back.
 *
 * The seeds in fuzz/corpus/fuzz_seal were sealed with this KEK by
 * `ZT_KEK=AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8= zt kek seal`, so
 * inputs near them open. The key is a test key and nothing else.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "crypto/crypto.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAGIC "ztseal1:"
#define LABEL_MAX 64

/* 00 01 .. 1f; its ID is 57e66adc */
static uint8_t kek[ZT_KEK_LEN];
static char kek_id[9];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	zt_crypto_init();
	for (size_t i = 0; i < sizeof kek; i++)
		kek[i] = (uint8_t)i;
	zt_kek_id(kek, kek_id);
	zt_kek_set(kek);
	return 0;
}

/*
 * pt opened from text under label: text starts "ztseal1:<label>:<our ID>:",
 * and pt seals under the same label and opens back to itself.
 */
static void check_opened(const char *label, const char *text, size_t n, const zt_buf *pt)
{
	size_t ll = strlen(label);
	zt_buf sealed, again;
	zt_err e;
	int r;

	if (pt->len > ZT_SEAL_MAX || n < 8 + ll + 1 + 8 + 1 || memcmp(text, MAGIC, 8) != 0 ||
	    memcmp(text + 8, label, ll) != 0 || text[8 + ll] != ':' ||
	    memcmp(text + 9 + ll, kek_id, 8) != 0 || text[17 + ll] != ':')
		abort();
	zt_buf_init(&sealed, 2 * ZT_SEAL_MAX);
	zt_buf_init(&again, 2 * ZT_SEAL_MAX);
	r = zt_seal(kek, label, pt->p, pt->len, &sealed, &e);
	if (r != 0) {
		/* only a label that zt_seal would never write can open yet not seal */
		if (e.code != ZT_EINVAL)
			abort();
	} else if (zt_unseal(kek, label, (const char *)sealed.p, sealed.len, &again, &e) != 0 ||
		   again.len != pt->len || (pt->len && memcmp(again.p, pt->p, pt->len) != 0)) {
		abort();
	}
	zt_buf_free(&sealed, 1);
	zt_buf_free(&again, 1);
}

/* Opens text under label; returns 1 if it opened (and checks it), else 0. */
static int try_label(const char *label, const char *text, size_t n, zt_buf *pt)
{
	zt_err e;
	size_t before = pt->len;

	if (zt_unseal(kek, label, text, n, pt, &e) != 0) {
		if (pt->len != before || e.rule[0] == '\0')
			abort(); /* a refusal adds nothing and names its rule */
		return 0;
	}
	check_opened(label, text, n, pt);
	return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *text = (const char *)data;
	char label[LABEL_MAX + 2];
	zt_buf pt, in_place, sealed;
	size_t ll = 0;
	int opened;
	zt_err e;

	/* 1. as a CA key */
	zt_buf_init(&pt, 2 * ZT_SEAL_MAX);
	opened = try_label(ZT_SEAL_LABEL_KEY, text, size, &pt);

	/* 2. zt_unseal_in_place agrees with zt_unseal; plain input is left alone */
	zt_buf_init(&in_place, 2 * ZT_SEAL_MAX);
	if (zt_buf_append(&in_place, data, size, NULL) != 0)
		abort();
	if (zt_unseal_in_place(&in_place, ZT_SEAL_LABEL_KEY, &e) == 0) {
		if (zt_sealed(data, size) ? !opened || in_place.len != pt.len ||
						(pt.len && memcmp(in_place.p, pt.p, pt.len) != 0)
					  : in_place.len != size ||
						(size && memcmp(in_place.p, data, size) != 0))
			abort();
	} else if (opened || !zt_sealed(data, size)) {
		abort();
	}
	zt_buf_free(&in_place, 1);
	zt_buf_free(&pt, 1);

	/* 3. under the label the input names (the text between the magic and the next ':') */
	if (zt_sealed(data, size)) {
		while (8 + ll < size && ll <= LABEL_MAX && text[8 + ll] != ':' && text[8 + ll] != '\0')
			ll++;
		memcpy(label, text + 8, ll);
		label[ll] = '\0';
		zt_buf_init(&pt, 2 * ZT_SEAL_MAX);
		(void)try_label(label, text, size, &pt);
		zt_buf_free(&pt, 1);
	}

	/* 4. what seals, opens */
	if (size <= ZT_SEAL_MAX) {
		zt_buf_init(&sealed, 2 * ZT_SEAL_MAX);
		zt_buf_init(&pt, 2 * ZT_SEAL_MAX);
		if (zt_seal(kek, "fuzz", data, size, &sealed, &e) != 0 ||
		    zt_unseal(kek, "fuzz", (const char *)sealed.p, sealed.len, &pt, &e) != 0 ||
		    pt.len != size || (size && memcmp(pt.p, data, size) != 0))
			abort();
		zt_buf_free(&sealed, 1);
		zt_buf_free(&pt, 1);
	}
	return 0;
}
