/*
 * Fuzz target: audit entries (audit/entry.c).
 *
 * The input is read twice. As a stored entry, zt_audit_entry_check must
 * never crash and accept only one line of JSON. As an event (parsed with
 * jansson, as zt audit append --stdin does), zt_audit_entry_build either
 * refuses it under a rule and leaves its output buffer as it was, or builds
 * an entry that zt_audit_entry_check accepts, that is one line without raw
 * control bytes, that holds a "time" and no "secrets", and that is a fixed
 * point: building the parsed entry again gives the same bytes.
 *
 * Strings with NUL (JSON_ALLOW_NUL) are left out: jansson's decoder refuses
 * them by default, which is how zt reads events; the unit tests cover them.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "audit/audit.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define PREFIX "prefix"
#define PREFIX_LEN (sizeof PREFIX - 1)
#define NOW_MS INT64_C(1767323045123) /* 2026-01-02T03:04:05.123Z */

static const uint8_t key[ZT_HASH_LEN] = {
    0x6b, 0x65, 0x79, 0x2d, 0x66, 0x6f, 0x72, 0x2d, 0x66, 0x75, 0x7a, 0x7a, 0x69, 0x6e, 0x67, 0x00,
    0xff, 0xfe, 0xfd, 0xfc, 0x10, 0x20, 0x30, 0x40, 0x50, 0x60, 0x70, 0x80, 0x90, 0xa0, 0xb0, 0xc0};

/* Builds ev after a prefix; checks the refusal contract. 0 and the entry in *out, or -1. */
static int build(const json_t *ev, int64_t now, zt_buf *out)
{
	zt_err e;

	zt_buf_init(out, 4 * ZT_AUDIT_ENTRY_MAX);
	if (zt_buf_append(out, PREFIX, PREFIX_LEN, NULL) != 0)
		abort();
	zt_err_clear(&e);
	if (zt_audit_entry_build(ev, key, now, out, &e) != 0) {
		/* a refusal names its rule and leaves out as it was */
		if (e.rule[0] == '\0' || e.msg[0] == '\0' || out->len != PREFIX_LEN ||
		    memcmp(out->p, PREFIX, PREFIX_LEN) != 0)
			abort();
		zt_buf_free(out, 0);
		return -1;
	}
	if (out->len <= PREFIX_LEN || memcmp(out->p, PREFIX, PREFIX_LEN) != 0)
		abort();
	return 0;
}

static void check_built(const json_t *ev, const zt_buf *out)
{
	const char *p = (const char *)out->p + PREFIX_LEN;
	size_t n = out->len - PREFIX_LEN;
	json_error_t je;
	json_t *back;
	zt_buf again;
	zt_err e;

	/* one line of at most ZT_AUDIT_ENTRY_MAX bytes, control characters escaped */
	if (n > ZT_AUDIT_ENTRY_MAX || p[0] != '{' || p[n - 1] != '}')
		abort();
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)p[i] < 0x20)
			abort();
	/* what build makes, check accepts */
	zt_err_clear(&e);
	if (zt_audit_entry_check(p, n, &e) != 0)
		abort();
	/* a stored entry: a time, no secrets; the clock's time when the event had none */
	back = json_loadb(p, n, JSON_REJECT_DUPLICATES, &je);
	if (!back || !json_is_object(back) || json_object_get(back, "secrets") ||
	    !json_is_string(json_object_get(back, "time")))
		abort();
	if (!json_object_get(ev, "time")) {
		char t[32];

		zt_audit_time_format(NOW_MS, t);
		if (strcmp(t, json_string_value(json_object_get(back, "time"))) != 0)
			abort();
	}
	/* canonical form is a fixed point (the entry has a time, so the clock does not matter) */
	if (build(back, 0, &again) != 0)
		abort();
	if (again.len != out->len || memcmp(again.p, out->p, out->len) != 0)
		abort();
	zt_buf_free(&again, 0);
	json_decref(back);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *text = (const char *)data;
	json_error_t je;
	json_t *ev;
	zt_buf out, twice;
	zt_err e;
	int stored;

	/* the raw input as a stored entry */
	zt_err_clear(&e);
	stored = zt_audit_entry_check(text, size, &e) == 0;
	if (stored && (size == 0 || size > ZT_AUDIT_ENTRY_MAX || memchr(data, '\n', size)))
		abort();
	if (!stored && (e.rule[0] == '\0' || e.msg[0] == '\0'))
		abort();

	/* the raw input as a time */
	if (size <= 40) {
		int64_t ms, back;
		char t[32];

		if (zt_audit_time_parse(text, size, &ms) == 0) {
			zt_audit_time_format(ms, t);
			if (strlen(t) != 24 || zt_audit_time_parse(t, strlen(t), &back) != 0 ||
			    back != ms)
				abort();
		}
	}

	/* the raw input as an event */
	ev = json_loadb(text, size, JSON_DECODE_ANY, &je);
	if (!ev) {
		if (stored)
			abort(); /* check parsed it */
		return 0;
	}
	if (build(ev, NOW_MS, &out) == 0) {
		check_built(ev, &out);
		/* the same event builds the same entry */
		if (build(ev, NOW_MS, &twice) != 0 || twice.len != out.len ||
		    memcmp(twice.p, out.p, out.len) != 0)
			abort();
		zt_buf_free(&twice, 0);
		zt_buf_free(&out, 0);
	} else if (stored) {
		/*
		 * A stored entry is a valid event, unless its canonical form is
		 * longer than the input was ("1e5" is written "100000.0").
		 */
		zt_buf_init(&out, 4 * ZT_AUDIT_ENTRY_MAX);
		zt_err_clear(&e);
		if (zt_audit_entry_build(ev, key, NOW_MS, &out, &e) == 0 ||
		    strcmp(e.rule, "entry-size") != 0)
			abort();
		zt_buf_free(&out, 0);
	}
	json_decref(ev);
	return 0;
}
