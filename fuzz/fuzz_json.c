/*
 * Fuzz target: zt_json_parse_fast (core/json.c) against the reference it must
 * equal, jansson's json_loadb(JSON_REJECT_DUPLICATES) plus zt's depth check
 * (what zt_json_parse was before). Aborts when they disagree:
 *  - on accepting or refusing;
 *  - on the error code: the depth limit is ZT_ELIMIT when jansson read the
 *    text and it nests too deep; a syntax error jansson found may instead be
 *    ZT_ELIMIT when the text nests too deep before it;
 *  - on the value, compared more strictly than json_equal: same types (an
 *    integer is never a real), reals bit for bit (json_equal takes -0.0 for
 *    0.0), strings byte for byte with their lengths, object keys in the same
 *    order.
 * Also checks that a message was written for every refusal.
 *
 * One difference is on purpose. jansson skips one NUL byte that directly
 * follows a number or true/false/null ("[1\0]" is [1] to it): its lexer puts
 * the byte back into a buffer where NUL means "empty". RFC 8259 allows no NUL
 * there and core/json.c refuses it. So when jansson reads text with NUL
 * bytes, zt_json_parse_fast must refuse it (ZT_EPARSE, or ZT_ELIMIT when the
 * text nests too deep before the NUL) and, with the NUL bytes taken out,
 * give jansson's verdict and value.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* zt_json_parse's depth check before core/json.c: the containers around v,
 * v included */
static int ref_depth_ok(json_t *v, int depth)
{
	size_t i;
	const char *k;
	json_t *c;

	if (!json_is_array(v) && !json_is_object(v))
		return 1;
	if (depth > ZT_DOC_MAX_DEPTH)
		return 0;
	if (json_is_array(v)) {
		json_array_foreach(v, i, c)
			if (!ref_depth_ok(c, depth + 1))
				return 0;
	} else {
		json_object_foreach(v, k, c)
			if (!ref_depth_ok(c, depth + 1))
				return 0;
	}
	return 1;
}

/* 1 when a and b are the same tree, types and key order included */
static int same(json_t *a, json_t *b)
{
	if (json_typeof(a) != json_typeof(b))
		return 0;
	switch (json_typeof(a)) {
	case JSON_OBJECT: {
		void *ia = json_object_iter(a), *ib = json_object_iter(b);

		if (json_object_size(a) != json_object_size(b))
			return 0;
		for (; ia && ib; ia = json_object_iter_next(a, ia), ib = json_object_iter_next(b, ib)) {
			size_t la = json_object_iter_key_len(ia), lb = json_object_iter_key_len(ib);

			if (la != lb || memcmp(json_object_iter_key(ia), json_object_iter_key(ib), la) != 0 ||
			    !same(json_object_iter_value(ia), json_object_iter_value(ib)))
				return 0;
		}
		return !ia && !ib;
	}
	case JSON_ARRAY:
		if (json_array_size(a) != json_array_size(b))
			return 0;
		for (size_t i = 0; i < json_array_size(a); i++)
			if (!same(json_array_get(a, i), json_array_get(b, i)))
				return 0;
		return 1;
	case JSON_STRING:
		return json_string_length(a) == json_string_length(b) &&
		       memcmp(json_string_value(a), json_string_value(b), json_string_length(a)) == 0;
	case JSON_INTEGER:
		return json_integer_value(a) == json_integer_value(b);
	case JSON_REAL: {
		double x = json_real_value(a), y = json_real_value(b);

		return memcmp(&x, &y, sizeof x) == 0;
	}
	default: /* true, false, null */
		return 1;
	}
}

static void disagree(const char *what, const uint8_t *data, size_t size, const char *detail)
{
	fprintf(stderr, "fuzz_json: %s (%zu bytes): %s\n", what, size, detail);
	(void)data;
	abort();
}

/*
 * jansson's verdict on n bytes: ZT_OK with *out, ZT_EPARSE (syntax) or
 * ZT_ELIMIT (read, but nests too deep).
 */
static int ref_parse(const char *text, size_t n, json_t **out, json_error_t *je)
{
	json_t *v = json_loadb(text, n, JSON_REJECT_DUPLICATES, je);

	*out = NULL;
	if (!v)
		return ZT_EPARSE;
	if (!ref_depth_ok(v, 1)) {
		json_decref(v);
		return ZT_ELIMIT;
	}
	*out = v;
	return ZT_OK;
}

/* zt's verdict on text that jansson read (ref_code ZT_OK or ZT_ELIMIT) but
 * that has NUL bytes (see the top) */
static void nul_quirk(json_t *ref, int ref_code, const uint8_t *data, size_t size, const zt_err *e)
{
	char *text = malloc(size);
	size_t n = 0;
	json_t *got;
	zt_err e2;

	if (!text)
		abort();
	/* on the way to the NUL byte the text may have nested too deep */
	if (e->code != ZT_EPARSE && !(ref_code == ZT_ELIMIT && e->code == ZT_ELIMIT))
		disagree("a NUL byte outside strings, but not ZT_EPARSE", data, size, e->msg);
	for (size_t i = 0; i < size; i++)
		if (data[i])
			text[n++] = (char)data[i];
	zt_err_clear(&e2);
	got = zt_json_parse_fast(text, n, &e2);
	if (ref_code == ZT_ELIMIT) {
		if (got || e2.code != ZT_ELIMIT)
			disagree("too deep (NUL bytes taken out), but not ZT_ELIMIT", data, size, e2.msg);
	} else {
		if (!got)
			disagree("jansson accepts, zt_json_parse_fast refuses even without NUL bytes",
				 data, size, e2.msg);
		if (!same(ref, got) || !json_equal(ref, got))
			disagree("different values (NUL bytes taken out)", data, size, "");
	}
	json_decref(got);
	free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	json_error_t je;
	json_t *ref, *got;
	int ref_code;
	zt_err e;

	ref_code = ref_parse((const char *)data, size, &ref, &je);
	zt_err_clear(&e);
	got = zt_json_parse_fast((const char *)data, size, &e);

	if (got && memchr(data, 0, size))
		disagree("zt_json_parse_fast accepts a NUL byte", data, size, "");
	if (!got && (e.code == ZT_OK || e.msg[0] == '\0'))
		disagree("refused without an error", data, size, "");
	if (ref_code != ZT_EPARSE && memchr(data, 0, size)) {
		nul_quirk(ref, ref_code, data, size, &e);
		json_decref(ref);
		return 0;
	}
	if (ref && !got)
		disagree("jansson accepts, zt_json_parse_fast refuses", data, size, e.msg);
	if (!ref && got)
		disagree("jansson refuses, zt_json_parse_fast accepts", data, size,
			 ref_code == ZT_ELIMIT ? "too deep" : je.text);
	if (!got) {
		if (ref_code == ZT_ELIMIT && e.code != ZT_ELIMIT)
			disagree("too deep, but not ZT_ELIMIT", data, size, e.msg);
		if (ref_code == ZT_EPARSE && e.code != ZT_EPARSE && e.code != ZT_ELIMIT)
			disagree("syntax error, but neither ZT_EPARSE nor ZT_ELIMIT", data, size, e.msg);
		return 0;
	}
	if (!same(ref, got) || !json_equal(ref, got))
		disagree("different values", data, size, "");
	json_decref(ref);
	json_decref(got);
	return 0;
}
