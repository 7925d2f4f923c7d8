/*
 * Unit tests: audit entries (audit/entry.c).
 *
 * zt_audit_entry_build turns an event into the stored form (docs/audit.md
 * "Entry schema"): every member checked, the time normalized to
 * milliseconds or set from the clock, secrets replaced by their HMAC, and
 * the result canonical JSON on one line. Every refusal must name a rule and
 * leave the output buffer as it was. zt_audit_entry_check accepts what build
 * produces and nothing that is not one line of schema-conforming JSON.
 * The HMAC is recomputed here with OpenSSL's HMAC(), independently of
 * zt_audit_secret_hash.
 */
#include "testutil.h"

#include "audit/audit.h"
#include "core/core.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

/* 2026-11-26T09:30:00.123Z */
#define NOW_MS INT64_C(1795685400123)
#define NOW_STR "2026-11-26T09:30:00.123Z"

static const uint8_t key[ZT_HASH_LEN] = {
    0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f, 0x10,
    0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f, 0x20};

#define PREFIX "PREFIX"
#define PREFIX_LEN (sizeof PREFIX - 1)

/* ---- helpers ----------------------------------------------------------------- */

static json_t *J(const char *text)
{
	json_error_t je;
	json_t *v = json_loads(text, JSON_DECODE_ANY, &je);

	if (!v)
		fail_msg("test JSON does not parse: %s: %s", je.text, text);
	return v;
}

static char *xstrndup(const void *p, size_t n)
{
	char *s = malloc(n + 1);

	assert_non_null(s);
	memcpy(s, p, n);
	s[n] = '\0';
	return s;
}

static char *repeat(char c, size_t n)
{
	char *s = malloc(n + 1);

	assert_non_null(s);
	memset(s, c, n);
	s[n] = '\0';
	return s;
}

/* What every stored entry must be: one line, no control bytes, and check accepts it. */
static void assert_stored_form(const char *p, size_t len)
{
	zt_err e;

	assert_true(len > 0);
	assert_int_equal(p[0], '{');
	assert_int_equal(p[len - 1], '}');
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)p[i] < 0x20)
			fail_msg("raw control byte 0x%02x at %zu in %.*s", (unsigned char)p[i], i,
				 (int)len, p);
	zt_err_clear(&e);
	if (zt_audit_entry_check(p, len, &e) != 0)
		fail_msg("check refuses what build produced: %s: %.*s", e.msg, (int)len, p);
}

/* Builds the event; returns the stored form (caller frees) after checking it. */
static char *build_ok_j(const json_t *ev, int64_t now)
{
	zt_buf out;
	zt_err e;
	char *s;

	zt_buf_init(&out, 1 << 20);
	assert_int_equal(zt_buf_append(&out, PREFIX, PREFIX_LEN, NULL), 0);
	zt_err_clear(&e);
	if (zt_audit_entry_build(ev, key, now, &out, &e) != 0)
		fail_msg("build refused a valid event (%s): %s", e.rule, e.msg);
	/* build appends: what was in the buffer stays */
	assert_true(out.len > PREFIX_LEN);
	assert_memory_equal(out.p, PREFIX, PREFIX_LEN);
	s = xstrndup(out.p + PREFIX_LEN, out.len - PREFIX_LEN);
	zt_buf_free(&out, 0);
	assert_stored_form(s, strlen(s));

	/* canonical form is a fixed point: building the stored entry again changes nothing */
	json_t *again = J(s);

	zt_buf_init(&out, 1 << 20);
	if (zt_audit_entry_build(again, key, 0, &out, &e) != 0)
		fail_msg("rebuilding a stored entry fails (%s): %s", e.msg, s);
	assert_int_equal(out.len, strlen(s));
	assert_memory_equal(out.p, s, out.len);
	zt_buf_free(&out, 0);
	json_decref(again);
	return s;
}

static char *build_ok(const char *event, int64_t now)
{
	json_t *ev = J(event);
	char *s = build_ok_j(ev, now);

	json_decref(ev);
	return s;
}

static void expect_build(const char *event, int64_t now, const char *want)
{
	char *got = build_ok(event, now);

	if (strcmp(got, want) != 0)
		fail_msg("event %s\n built %s\n  want %s", event, got, want);
	free(got);
}

/* A refusal names a rule and leaves out exactly as it was. */
static void build_bad_j(const json_t *ev, const char *rule, const char *what)
{
	zt_buf out;
	zt_err e;
	int r;

	zt_buf_init(&out, 1 << 20);
	assert_int_equal(zt_buf_append(&out, PREFIX, PREFIX_LEN, NULL), 0);
	zt_err_clear(&e);
	r = zt_audit_entry_build(ev, key, NOW_MS, &out, &e);
	if (r == 0)
		fail_msg("build accepted %s: %.*s", what, (int)(out.len - PREFIX_LEN),
			 (const char *)out.p + PREFIX_LEN);
	assert_true(r < 0);
	if (out.len != PREFIX_LEN)
		fail_msg("a refused event (%s) left %zu bytes in out", what, out.len - PREFIX_LEN);
	assert_memory_equal(out.p, PREFIX, PREFIX_LEN);
	if (e.rule[0] == '\0' || e.msg[0] == '\0')
		fail_msg("refusal of %s has no rule or message", what);
	if (rule && strcmp(e.rule, rule) != 0)
		fail_msg("refusal of %s: rule \"%s\", want \"%s\" (%s)", what, e.rule, rule, e.msg);
	zt_buf_free(&out, 0);
}

static void build_bad(const char *event, const char *rule)
{
	json_t *ev = J(event);

	build_bad_j(ev, rule, event);
	json_decref(ev);
}

static void check_ok(const char *p)
{
	zt_err e;

	zt_err_clear(&e);
	if (zt_audit_entry_check(p, strlen(p), &e) != 0)
		fail_msg("check refused %s: %s", p, e.msg);
}

static void check_bad_len(const char *p, size_t len, const char *what)
{
	zt_err e;
	int r;

	zt_err_clear(&e);
	r = zt_audit_entry_check(p, len, &e);
	if (r == 0)
		fail_msg("check accepted %s", what);
	assert_true(r < 0);
	assert_string_equal(e.rule, "entry-schema");
	assert_true(e.msg[0] != '\0');
}

static void check_bad(const char *p)
{
	check_bad_len(p, strlen(p), p);
}

/* "hmac-sha256:" + base64(HMAC-SHA256(key, value)), computed with OpenSSL directly. */
static void ref_secret(const char *value, char out[64])
{
	uint8_t mac[EVP_MAX_MD_SIZE];
	unsigned mlen = 0;
	unsigned char b64[64];

	assert_non_null(HMAC(EVP_sha256(), key, sizeof key, (const unsigned char *)value,
			     strlen(value), mac, &mlen));
	assert_int_equal(mlen, 32);
	assert_int_equal(EVP_EncodeBlock(b64, mac, 32), 44);
	snprintf(out, 64, "hmac-sha256:%s", (const char *)b64);
}

/* {"a":{"a":...{"a":inner}}}: `levels` objects around inner (which it takes). */
static json_t *nest(int levels, json_t *inner)
{
	json_t *v = inner;

	for (int i = 0; i < levels; i++) {
		json_t *o = json_object();

		json_object_set_new(o, "a", v);
		v = o;
	}
	return v;
}

/* {"actor":"a","action":"x.y"} plus one member (taken). */
static json_t *event_with(const char *name, json_t *value)
{
	json_t *ev = J("{\"actor\":\"a\",\"action\":\"x.y\"}");

	json_object_set_new(ev, name, value);
	return ev;
}

/* ---- valid events -------------------------------------------------------------- */

static void test_minimal(void **state)
{
	(void)state;
	expect_build("{\"actor\":\"a\",\"action\":\"x\"}", NOW_MS,
		     "{\"action\":\"x\",\"actor\":\"a\",\"time\":\"" NOW_STR "\"}");
	/* key order in the event does not matter */
	expect_build("{\"action\":\"svid.issue\",\"actor\":\"spiffe://example.org/admin\"}", NOW_MS,
		     "{\"action\":\"svid.issue\",\"actor\":\"spiffe://example.org/admin\","
		     "\"time\":\"" NOW_STR "\"}");
	/* the epoch itself */
	expect_build("{\"actor\":\"a\",\"action\":\"x\"}", 0,
		     "{\"action\":\"x\",\"actor\":\"a\",\"time\":\"1970-01-01T00:00:00.000Z\"}");
	/* every action character class */
	expect_build("{\"actor\":\"a\",\"action\":\"az09._-\"}", NOW_MS,
		     "{\"action\":\"az09._-\",\"actor\":\"a\",\"time\":\"" NOW_STR "\"}");
	/* every decision */
	static const char *const decisions[] = {"allow", "deny", "audit", "error", "none"};

	for (size_t i = 0; i < 5; i++) {
		char ev[128], want[256];

		snprintf(ev, sizeof ev, "{\"actor\":\"a\",\"action\":\"x\",\"decision\":\"%s\"}",
			 decisions[i]);
		snprintf(want, sizeof want,
			 "{\"action\":\"x\",\"actor\":\"a\",\"decision\":\"%s\",\"time\":\"" NOW_STR
			 "\"}",
			 decisions[i]);
		expect_build(ev, NOW_MS, want);
	}
}

static void test_all_members(void **state)
{
	char mac[64], want[1024];

	(void)state;
	ref_secret("s3cr3t", mac);
	snprintf(want, sizeof want,
		 "{\"action\":\"policy.update\",\"actor\":\"spiffe://example.org/admin\","
		 "\"decision\":\"allow\",\"details\":{\"a\":[1,2.5,true,null],\"token\":\"%s\","
		 "\"version\":12,\"z\":{\"b\":\"c\"}},\"request_id\":\"7f3c-!~\","
		 "\"target\":\"org/acme\",\"time\":\"2026-01-02T03:04:05.678Z\"}",
		 mac);
	expect_build("{\"time\":\"2026-01-02T03:04:05.678Z\",\"target\":\"org/acme\","
		     "\"secrets\":{\"token\":\"s3cr3t\"},\"request_id\":\"7f3c-!~\","
		     "\"details\":{\"z\":{\"b\":\"c\"},\"version\":12,\"a\":[1,2.5,true,null]},"
		     "\"decision\":\"allow\",\"actor\":\"spiffe://example.org/admin\","
		     "\"action\":\"policy.update\"}",
		     NOW_MS, want);
}

static void test_time_normalized(void **state)
{
	static const struct {
		const char *in, *out;
	} cases[] = {
	    {"2026-01-02T03:04:05Z", "2026-01-02T03:04:05.000Z"},
	    {"2026-01-02T03:04:05.5Z", "2026-01-02T03:04:05.500Z"},
	    {"2026-01-02T03:04:05.12Z", "2026-01-02T03:04:05.120Z"},
	    {"2026-01-02T03:04:05.123Z", "2026-01-02T03:04:05.123Z"},
	    {"2026-01-02T03:04:05.1239Z", "2026-01-02T03:04:05.123Z"},
	    {"2026-01-02T03:04:05.123456789Z", "2026-01-02T03:04:05.123Z"},
	    {"2026-01-02T03:04:05.000000000Z", "2026-01-02T03:04:05.000Z"},
	    {"1970-01-01T00:00:00Z", "1970-01-01T00:00:00.000Z"},
	    {"2000-02-29T23:59:59.999Z", "2000-02-29T23:59:59.999Z"},
	    {"2024-02-29T12:00:00Z", "2024-02-29T12:00:00.000Z"},
	    {"9999-12-31T23:59:59.999Z", "9999-12-31T23:59:59.999Z"},
	};

	(void)state;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char ev[256], want[256];

		snprintf(ev, sizeof ev, "{\"actor\":\"a\",\"action\":\"x\",\"time\":\"%s\"}",
			 cases[i].in);
		snprintf(want, sizeof want, "{\"action\":\"x\",\"actor\":\"a\",\"time\":\"%s\"}",
			 cases[i].out);
		/* a given time wins over the clock */
		expect_build(ev, NOW_MS, want);
	}
}

static void test_control_characters_escaped(void **state)
{
	json_t *ev = J("{\"actor\":\"a\\nb\\r\\tc\\u0001\\u001f\\u007f\",\"action\":\"x\","
		       "\"target\":\"line1\\nline2\",\"details\":{\"k\\nk\":\"v\\nv\"}}");
	char *s;

	(void)state;
	s = build_ok_j(ev, NOW_MS);
	assert_null(strchr(s, '\n'));
	assert_null(strchr(s, '\r'));
	assert_non_null(strstr(s, "\"actor\":\"a\\nb\\r\\tc\\u0001\\u001F"));
	assert_non_null(strstr(s, "\"target\":\"line1\\nline2\""));
	assert_non_null(strstr(s, "{\"k\\nk\":\"v\\nv\"}"));
	free(s);
	json_decref(ev);
	/* non-ASCII is kept as UTF-8 */
	expect_build("{\"actor\":\"user:j\\u00fcrgen\",\"action\":\"x\"}", NOW_MS,
		     "{\"action\":\"x\",\"actor\":\"user:j\xc3\xbcrgen\",\"time\":\"" NOW_STR "\"}");
	/* compact: no white space outside strings even for nested details */
	expect_build("{ \"actor\" : \"a b\" , \"action\" : \"x\" , \"details\" : { \"k\" : [ 1 , "
		     "{ } , [ ] ] } }",
		     NOW_MS,
		     "{\"action\":\"x\",\"actor\":\"a b\",\"details\":{\"k\":[1,{},[]]},\"time\":\"" NOW_STR
		     "\"}");
}

static void test_secrets(void **state)
{
	char mac1[64], mac2[64], mac3[64], lib[64], want[1024];

	(void)state;
	ref_secret("hunter2", mac1);
	ref_secret("", mac2);
	ref_secret("another secret value", mac3);
	/* zt_audit_secret_hash is the same function */
	zt_audit_secret_hash(key, "hunter2", 7, lib);
	assert_string_equal(lib, mac1);
	assert_int_equal(strlen(mac1), strlen(ZT_AUDIT_HMAC_PREFIX) + 44);

	/* details are created for secrets, and merged with existing ones (sorted) */
	snprintf(want, sizeof want,
		 "{\"action\":\"x\",\"actor\":\"a\",\"details\":{\"password\":\"%s\"},\"time\":\"" NOW_STR
		 "\"}",
		 mac1);
	expect_build("{\"actor\":\"a\",\"action\":\"x\",\"secrets\":{\"password\":\"hunter2\"}}",
		     NOW_MS, want);
	snprintf(want, sizeof want,
		 "{\"action\":\"x\",\"actor\":\"a\",\"details\":{\"a\":\"%s\",\"m\":1,\"z\":\"%s\"},"
		 "\"time\":\"" NOW_STR "\"}",
		 mac3, mac2);
	expect_build("{\"actor\":\"a\",\"action\":\"x\",\"details\":{\"m\":1},"
		     "\"secrets\":{\"z\":\"\",\"a\":\"another secret value\"}}",
		     NOW_MS, want);
	/* an empty secrets object stores nothing but an empty details object */
	expect_build("{\"actor\":\"a\",\"action\":\"x\",\"secrets\":{}}", NOW_MS,
		     "{\"action\":\"x\",\"actor\":\"a\",\"details\":{},\"time\":\"" NOW_STR "\"}");

	/* the plaintext is nowhere in the output */
	char *s = build_ok("{\"actor\":\"a\",\"action\":\"x\","
			   "\"secrets\":{\"token\":\"PLAINTEXT-SECRET-VALUE\"}}",
			   NOW_MS);

	assert_null(strstr(s, "PLAINTEXT-SECRET-VALUE"));
	assert_null(strstr(s, "secrets"));
	free(s);

	/* a secret of the maximum size (4096 bytes) is fine */
	char *big = repeat('s', 4096);

	json_t *sec = json_object();

	json_object_set_new(sec, "k", json_string(big));
	json_t *ev = event_with("secrets", sec);

	s = build_ok_j(ev, NOW_MS);
	assert_null(strstr(s, "ssssssss"));
	free(s);
	json_decref(ev);
	/* one more byte is not */
	char *bigger = repeat('s', 4097);

	sec = json_object();
	json_object_set_new(sec, "k", json_string(bigger));
	ev = event_with("secrets", sec);
	build_bad_j(ev, "entry-schema", "a secret of 4097 bytes");
	json_decref(ev);
	free(big);
	free(bigger);
}

static void test_secret_refusals(void **state)
{
	(void)state;
	/* a name both a detail and a secret */
	build_bad("{\"actor\":\"a\",\"action\":\"x\",\"details\":{\"token\":\"t\"},"
		  "\"secrets\":{\"token\":\"s\"}}",
		  "entry-schema");
	/* secrets must be strings */
	build_bad("{\"actor\":\"a\",\"action\":\"x\",\"secrets\":{\"token\":1}}", "entry-schema");
	build_bad("{\"actor\":\"a\",\"action\":\"x\",\"secrets\":{\"token\":null}}", "entry-schema");
	build_bad("{\"actor\":\"a\",\"action\":\"x\",\"secrets\":{\"token\":{\"a\":\"b\"}}}",
		  "entry-schema");
	build_bad("{\"actor\":\"a\",\"action\":\"x\",\"secrets\":{\"ok\":\"v\",\"token\":[\"s\"]}}",
		  "entry-schema");
	/* and secrets an object */
	build_bad("{\"actor\":\"a\",\"action\":\"x\",\"secrets\":\"s3cr3t\"}", "entry-schema");
	build_bad("{\"actor\":\"a\",\"action\":\"x\",\"secrets\":[\"s3cr3t\"]}", "entry-schema");
}

/* ---- refusals ------------------------------------------------------------------ */

static void test_refuse_not_object(void **state)
{
	(void)state;
	build_bad("[]", "entry-schema");
	build_bad("[{\"actor\":\"a\",\"action\":\"x\"}]", "entry-schema");
	build_bad("\"event\"", "entry-schema");
	build_bad("42", "entry-schema");
	build_bad("null", "entry-schema");
	build_bad("true", "entry-schema");
}

static void test_refuse_members(void **state)
{
	(void)state;
	/* unknown members, including near misses of known ones */
	build_bad("{\"actor\":\"a\",\"action\":\"x\",\"foo\":1}", "entry-schema");
	build_bad("{\"actor\":\"a\",\"action\":\"x\",\"Actor\":\"b\"}", "entry-schema");
	build_bad("{\"actor\":\"a\",\"action\":\"x\",\"detail\":{}}", "entry-schema");
	build_bad("{\"actor\":\"a\",\"action\":\"x\",\"\":1}", "entry-schema");
	/* missing required members */
	build_bad("{\"action\":\"x\"}", "entry-schema");
	build_bad("{\"actor\":\"a\"}", "entry-schema");
	build_bad("{}", "entry-schema");
	/* empty strings */
	build_bad("{\"actor\":\"\",\"action\":\"x\"}", "entry-schema");
	build_bad("{\"actor\":\"a\",\"action\":\"\"}", "entry-schema");
	build_bad("{\"actor\":\"a\",\"action\":\"x\",\"target\":\"\"}", "entry-schema");
	build_bad("{\"actor\":\"a\",\"action\":\"x\",\"request_id\":\"\"}", "entry-schema");
	build_bad("{\"actor\":\"a\",\"action\":\"x\",\"decision\":\"\"}", "entry-schema");
	build_bad("{\"actor\":\"a\",\"action\":\"x\",\"time\":\"\"}", "entry-schema");
	/* wrong types */
	build_bad("{\"actor\":1,\"action\":\"x\"}", "entry-schema");
	build_bad("{\"actor\":null,\"action\":\"x\"}", "entry-schema");
	build_bad("{\"actor\":\"a\",\"action\":[\"x\"]}", "entry-schema");
	build_bad("{\"actor\":\"a\",\"action\":\"x\",\"target\":{}}", "entry-schema");
	build_bad("{\"actor\":\"a\",\"action\":\"x\",\"request_id\":7}", "entry-schema");
	build_bad("{\"actor\":\"a\",\"action\":\"x\",\"decision\":true}", "entry-schema");
	build_bad("{\"actor\":\"a\",\"action\":\"x\",\"time\":1795685400}", "entry-schema");
	/* action: a-z 0-9 . _ - only */
	build_bad("{\"actor\":\"a\",\"action\":\"Svid.issue\"}", "entry-schema");
	build_bad("{\"actor\":\"a\",\"action\":\"svid.Issue\"}", "entry-schema");
	build_bad("{\"actor\":\"a\",\"action\":\"svid issue\"}", "entry-schema");
	build_bad("{\"actor\":\"a\",\"action\":\"svid/issue\"}", "entry-schema");
	build_bad("{\"actor\":\"a\",\"action\":\"svid\\nissue\"}", "entry-schema");
	build_bad("{\"actor\":\"a\",\"action\":\"svid:issue\"}", "entry-schema");
	build_bad("{\"actor\":\"a\",\"action\":\"r\\u00e9vocation\"}", "entry-schema");
	/* decision: one of five, exactly */
	build_bad("{\"actor\":\"a\",\"action\":\"x\",\"decision\":\"maybe\"}", "entry-schema");
	build_bad("{\"actor\":\"a\",\"action\":\"x\",\"decision\":\"ALLOW\"}", "entry-schema");
	build_bad("{\"actor\":\"a\",\"action\":\"x\",\"decision\":\"allow \"}", "entry-schema");
	build_bad("{\"actor\":\"a\",\"action\":\"x\",\"decision\":\"allowed\"}", "entry-schema");
	/* request_id: printable ASCII without spaces */
	build_bad("{\"actor\":\"a\",\"action\":\"x\",\"request_id\":\"7f 3c\"}", "entry-schema");
	build_bad("{\"actor\":\"a\",\"action\":\"x\",\"request_id\":\"7f\\u00e93c\"}", "entry-schema");
	build_bad("{\"actor\":\"a\",\"action\":\"x\",\"request_id\":\"7f\\t3c\"}", "entry-schema");
	build_bad("{\"actor\":\"a\",\"action\":\"x\",\"request_id\":\"7f\\u007f\"}", "entry-schema");
	build_bad("{\"actor\":\"a\",\"action\":\"x\",\"request_id\":\"7f\\n\"}", "entry-schema");
	/* details: an object */
	build_bad("{\"actor\":\"a\",\"action\":\"x\",\"details\":[]}", "entry-schema");
	build_bad("{\"actor\":\"a\",\"action\":\"x\",\"details\":\"x\"}", "entry-schema");
	build_bad("{\"actor\":\"a\",\"action\":\"x\",\"details\":1}", "entry-schema");
	build_bad("{\"actor\":\"a\",\"action\":\"x\",\"details\":null}", "entry-schema");
}

static void test_refuse_nul(void **state)
{
	static const char *const members[] = {"actor", "action", "target", "request_id", "time",
					      "decision"};

	(void)state;
	for (size_t i = 0; i < 6; i++) {
		json_t *ev = J("{\"actor\":\"a\",\"action\":\"x\"}");

		json_object_set_new(ev, members[i], json_stringn("ab\0c", 4));
		build_bad_j(ev, "entry-schema", members[i]);
		json_decref(ev);
	}
}

/* name: max bytes of 'c' accepted, one more refused. */
static void length_limit(const char *name, char c, size_t max)
{
	char *s = repeat(c, max + 1);
	json_t *ev = J("{\"actor\":\"a\",\"action\":\"x\"}");
	char *out;

	json_object_set_new(ev, name, json_string(s));
	build_bad_j(ev, "entry-schema", name);
	s[max] = '\0';
	json_object_set_new(ev, name, json_string(s));
	out = build_ok_j(ev, NOW_MS);
	assert_non_null(strstr(out, s));
	free(out);
	json_decref(ev);
	free(s);
}

static void test_refuse_lengths(void **state)
{
	(void)state;
	length_limit("actor", 'a', 1024);
	length_limit("action", 'a', 128);
	length_limit("target", 't', 2048);
	length_limit("request_id", 'r', 128);
}

/*
 * Depth counts containers, details itself being level 1:
 * nest(k, {}) is k + 1 levels, nest(k, "v") is k levels holding a value.
 */
static void test_refuse_details_depth(void **state)
{
	json_t *ev;
	char *s;

	(void)state;
	/* details nested 9 deep: refused */
	ev = event_with("details", nest(8, json_object()));
	build_bad_j(ev, "entry-schema", "details 9 deep");
	json_decref(ev);
	ev = event_with("details", nest(9, json_string("v")));
	build_bad_j(ev, "entry-schema", "details 9 deep with a value");
	json_decref(ev);
	ev = event_with("details", nest(40, json_object()));
	build_bad_j(ev, "entry-schema", "details 41 deep");
	json_decref(ev);
	/* arrays count as nesting too: an object and 8 arrays around {} are 10 */
	ev = event_with("details", nest(1, json_pack("[[[[[[[[{}]]]]]]]]")));
	build_bad_j(ev, "entry-schema", "details with arrays 10 deep");
	json_decref(ev);
	/* 8 deep is the limit */
	ev = event_with("details", nest(7, json_object()));
	s = build_ok_j(ev, NOW_MS);
	free(s);
	json_decref(ev);
	ev = event_with("details", nest(7, json_string("v")));
	s = build_ok_j(ev, NOW_MS);
	free(s);
	json_decref(ev);
	ev = event_with("details", nest(1, json_pack("[[[[[[{}]]]]]]")));
	s = build_ok_j(ev, NOW_MS);
	free(s);
	json_decref(ev);
}

/*
 * docs/audit.md: details is "object, nested at most 8 deep". Eight nested
 * objects are accepted when the innermost is empty (above); the same eight
 * holding a value are no deeper (a string is not a level of nesting) and
 * must be accepted too. entry.c's depth_ok counts the value as a level.
 */
static void test_details_depth_8_with_value(void **state)
{
	json_t *evs[2];
	zt_buf out;
	zt_err e;
	int r[2];

	(void)state;
	evs[0] = event_with("details", nest(8, json_string("v")));
	evs[1] = event_with("details", nest(7, json_pack("{s:i}", "n", 1)));
	for (int i = 0; i < 2; i++) {
		zt_buf_init(&out, 1 << 20);
		zt_err_clear(&e);
		r[i] = zt_audit_entry_build(evs[i], key, NOW_MS, &out, &e);
		zt_buf_free(&out, 0);
		json_decref(evs[i]);
	}
	/* (cleaned up first, so that a failure here leaks nothing under ASan) */
	if (r[0] != 0 || r[1] != 0)
		fail_msg("eight nested objects holding a value are refused: %s", e.msg);
}

/*
 * What build accepts, check must accept. A details string holding a NUL
 * (a json_t can carry one: json_stringn, or JSON_ALLOW_NUL) is written as
 * "\u0000", which zt_audit_entry_check's parser refuses: build must
 * refuse it, or check accept it.
 */
static void test_details_nul_consistent(void **state)
{
	json_t *details = json_object(), *ev;
	zt_buf out;
	zt_err e;
	int r;

	(void)state;
	json_object_set_new(details, "k", json_stringn("a\0b", 3));
	ev = event_with("details", details);
	zt_buf_init(&out, 1 << 20);
	zt_err_clear(&e);
	if (zt_audit_entry_build(ev, key, NOW_MS, &out, &e) == 0) {
		char stored[256];

		snprintf(stored, sizeof stored, "%.*s", (int)out.len, (const char *)out.p);
		zt_err_clear(&e);
		r = zt_audit_entry_check((const char *)out.p, out.len, &e);
		zt_buf_free(&out, 0);
		json_decref(ev);
		if (r != 0)
			fail_msg("build stores %s, which check refuses: %s", stored, e.msg);
		return;
	}
	assert_int_equal(out.len, 0);
	assert_true(e.rule[0] != '\0');
	zt_buf_free(&out, 0);
	json_decref(ev);
}

static void test_refuse_times(void **state)
{
	static const char *const bad[] = {
	    "2026-01-02T03:04:05",             /* no Z */
	    "2026-01-02T03:04:05z",            /* lowercase z */
	    "2026-01-02T03:04:05+00:00",       /* an offset, even zero */
	    "2026-01-02T03:04:05.000+01:00",
	    "2026-01-02 03:04:05Z",            /* space for T */
	    "2026-01-02t03:04:05Z",
	    "2026-13-02T03:04:05Z",            /* month 13 */
	    "2026-00-02T03:04:05Z",            /* month 0 */
	    "2026-01-00T03:04:05Z",            /* day 0 */
	    "2026-01-32T03:04:05Z",
	    "2026-04-31T03:04:05Z",            /* April has 30 days */
	    "2025-02-29T00:00:00Z",            /* not a leap year */
	    "2100-02-29T00:00:00Z",            /* divisible by 100, not 400 */
	    "2026-02-30T00:00:00Z",
	    "2026-01-02T24:00:00Z",            /* hour 24 */
	    "2026-01-02T23:60:00Z",
	    "2026-01-02T23:59:60Z",            /* leap seconds are not stored */
	    "2026-01-02T03:04:05.1234567890Z", /* 10 fraction digits */
	    "2026-01-02T03:04:05.Z",           /* empty fraction */
	    "2026-01-02T03:04:05,123Z",
	    "2026-01-02T03:04:05.12aZ",
	    "2026-01-02T03:04:05.-12Z",
	    "1969-12-31T23:59:59Z",            /* before the epoch */
	    "0000-01-01T00:00:00Z",
	    "26-01-02T03:04:05Z",
	    "2026-1-02T03:04:05Z",
	    "+2026-01-02T03:04:05Z",
	    "20260102T030405Z",
	    "2026-01-02T03:04:5Z",
	    "2026-01-02T3:04:05Z",
	    "2026-01-02",
	    "Z",
	    "now",
	    " 2026-01-02T03:04:05Z",
	    "2026-01-02T03:04:05Z ",
	    "2026-01-02T03:04:05ZZ",
	    "-026-01-02T03:04:05Z",
	    "2026-01-02T03:04:-5Z",
	};

	(void)state;
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		char ev[256];

		snprintf(ev, sizeof ev, "{\"actor\":\"a\",\"action\":\"x\",\"time\":\"%s\"}", bad[i]);
		build_bad(ev, "entry-schema");
	}
}

static void test_refuse_too_large(void **state)
{
	json_t *details = json_object(), *ev;
	char *blob, *s;
	size_t base, fill;
	zt_buf out;
	zt_err e;

	(void)state;
	/* find the entry's size without the blob, then fill it to exactly 64 KiB */
	json_object_set_new(details, "b", json_string(""));
	ev = event_with("details", details);
	s = build_ok_j(ev, NOW_MS);
	base = strlen(s);
	free(s);
	fill = ZT_AUDIT_ENTRY_MAX - base;
	blob = repeat('x', fill + 1);
	blob[fill] = '\0';
	json_object_set_new(details, "b", json_string(blob));
	s = build_ok_j(ev, NOW_MS);
	assert_int_equal(strlen(s), ZT_AUDIT_ENTRY_MAX);
	free(s);
	/* one byte more */
	blob[fill] = 'x';
	json_object_set_new(details, "b", json_string(blob));
	build_bad_j(ev, "entry-size", "an entry of 64 KiB + 1");
	free(blob);
	/* much more */
	blob = repeat('y', 200000);
	json_object_set_new(details, "b", json_string(blob));
	build_bad_j(ev, "entry-size", "an entry of 200 KB");
	free(blob);
	/* escaping counts: 20,000 newlines are 40,000 bytes, 40,000 are 80,000 */
	blob = repeat('\n', 40000);
	json_object_set_new(details, "b", json_string(blob));
	build_bad_j(ev, "entry-size", "an entry that is too large once escaped");
	free(blob);
	json_decref(ev);

	/* out is left alone even when its limit is the problem */
	ev = J("{\"actor\":\"a\",\"action\":\"x\"}");
	zt_buf_init(&out, 16);
	zt_err_clear(&e);
	assert_true(zt_audit_entry_build(ev, key, NOW_MS, &out, &e) < 0);
	assert_int_equal(out.len, 0);
	zt_buf_free(&out, 0);
	json_decref(ev);
}

/* ---- zt_audit_entry_check --------------------------------------------------------- */

static void test_check(void **state)
{
	char *s, *two;
	size_t n;

	(void)state;
	s = build_ok("{\"actor\":\"a\",\"action\":\"x\",\"target\":\"t\",\"decision\":\"deny\","
		     "\"request_id\":\"r1\",\"details\":{\"k\":[1,{\"a\":null}]},"
		     "\"secrets\":{\"s\":\"v\"}}",
		     NOW_MS);
	check_ok(s);
	n = strlen(s);
	/* two lines */
	two = malloc(2 * n + 2);
	assert_non_null(two);
	memcpy(two, s, n);
	two[n] = '\n';
	memcpy(two + n + 1, s, n);
	two[2 * n + 1] = '\0';
	check_bad(two);
	/* a final newline is not part of a stored entry either */
	check_bad_len(two, n + 1, "an entry with its newline");
	/* trailing garbage */
	memcpy(two, s, n);
	memcpy(two + n, "x", 2);
	check_bad(two);
	memcpy(two + n, "}", 2);
	check_bad(two);
	memcpy(two + n, "{}", 3);
	check_bad(two);
	/* a cut entry */
	check_bad_len(s, n - 1, "an entry without its last byte");
	free(two);
	free(s);

	check_ok("{\"action\":\"x\",\"actor\":\"a\",\"time\":\"2026-01-02T03:04:05.000Z\"}");
	check_bad_len("", 0, "an empty entry");
	check_bad("not json");
	check_bad("[]");
	check_bad("\"x\"");
	/* "secrets" is input only */
	check_bad("{\"action\":\"x\",\"actor\":\"a\",\"secrets\":{\"k\":\"v\"},"
		  "\"time\":\"2026-01-02T03:04:05.000Z\"}");
	check_bad("{\"action\":\"x\",\"actor\":\"a\",\"secrets\":{},"
		  "\"time\":\"2026-01-02T03:04:05.000Z\"}");
	/* stored times have milliseconds, and a stored entry has a time */
	check_bad("{\"action\":\"x\",\"actor\":\"a\",\"time\":\"2026-01-02T03:04:05Z\"}");
	check_bad("{\"action\":\"x\",\"actor\":\"a\",\"time\":\"2026-01-02T03:04:05.5Z\"}");
	check_bad("{\"action\":\"x\",\"actor\":\"a\",\"time\":\"2026-01-02T03:04:05.123456Z\"}");
	check_bad("{\"action\":\"x\",\"actor\":\"a\"}");
	/* duplicate keys */
	check_bad("{\"action\":\"x\",\"action\":\"y\",\"actor\":\"a\","
		  "\"time\":\"2026-01-02T03:04:05.000Z\"}");
	check_bad("{\"action\":\"x\",\"actor\":\"a\",\"time\":\"2026-01-02T03:04:05.000Z\","
		  "\"time\":\"2026-01-02T03:04:05.000Z\"}");
	check_bad("{\"action\":\"x\",\"actor\":\"a\",\"details\":{\"k\":1,\"k\":2},"
		  "\"time\":\"2026-01-02T03:04:05.000Z\"}");
	/* the schema applies to stored entries too */
	check_bad("{\"action\":\"X\",\"actor\":\"a\",\"time\":\"2026-01-02T03:04:05.000Z\"}");
	check_bad("{\"action\":\"x\",\"actor\":\"a\",\"extra\":1,"
		  "\"time\":\"2026-01-02T03:04:05.000Z\"}");
	check_bad("{\"action\":\"x\",\"actor\":\"a\",\"decision\":\"yes\","
		  "\"time\":\"2026-01-02T03:04:05.000Z\"}");
	/* a raw newline inside a string is two lines, and not JSON either */
	check_bad("{\"action\":\"x\",\"actor\":\"a\nb\",\"time\":\"2026-01-02T03:04:05.000Z\"}");

	/* longer than an entry may be */
	char *big = repeat('x', ZT_AUDIT_ENTRY_MAX + 100);

	static const char head[] = "{\"action\":\"x\",\"actor\":\"a\",\"details\":{\"b\":\"";
	static const char tail[] = "\"},\"time\":\"2026-01-02T03:04:05.000Z\"}";

	memcpy(big, head, sizeof head - 1);
	memcpy(big + ZT_AUDIT_ENTRY_MAX + 100 - (sizeof tail - 1), tail, sizeof tail - 1);
	check_bad(big);
	free(big);
}

/* ---- time ---------------------------------------------------------------------------- */

static void parse_ok(const char *s, int64_t want)
{
	int64_t ms = -1;

	if (zt_audit_time_parse(s, strlen(s), &ms) != 0)
		fail_msg("time %s does not parse", s);
	if (ms != want)
		fail_msg("time %s parses to %lld, want %lld", s, (long long)ms, (long long)want);
}

static void format_is(int64_t ms, const char *want)
{
	char out[32];

	memset(out, 'Q', sizeof out);
	zt_audit_time_format(ms, out);
	assert_string_equal(out, want);
}

static void test_time_known(void **state)
{
	(void)state;
	parse_ok("1970-01-01T00:00:00Z", 0);
	parse_ok("1970-01-01T00:00:00.000Z", 0);
	parse_ok("1970-01-01T00:00:00.001Z", 1);
	parse_ok("1970-01-01T00:00:01Z", 1000);
	parse_ok("2026-11-26T09:30:00.123Z", NOW_MS);
	parse_ok("2026-01-02T03:04:05Z", INT64_C(1767323045000));
	parse_ok("2000-02-29T00:00:00Z", INT64_C(951782400000));
	parse_ok("2024-02-29T23:59:59.9Z", INT64_C(1709251199900));
	parse_ok("2038-01-19T03:14:08Z", INT64_C(2147483648000)); /* past 32-bit time_t */
	parse_ok("2100-03-01T00:00:00Z", INT64_C(4107542400000));
	parse_ok("9999-12-31T23:59:59.999999999Z", INT64_C(253402300799999));

	format_is(0, "1970-01-01T00:00:00.000Z");
	format_is(1, "1970-01-01T00:00:00.001Z");
	format_is(999, "1970-01-01T00:00:00.999Z");
	format_is(NOW_MS, NOW_STR);
	format_is(INT64_C(951782400000), "2000-02-29T00:00:00.000Z");
	format_is(INT64_C(951868799999), "2000-02-29T23:59:59.999Z");
	format_is(INT64_C(951868800000), "2000-03-01T00:00:00.000Z");
	format_is(INT64_C(1709251199900), "2024-02-29T23:59:59.900Z");
	format_is(INT64_C(2147483648000), "2038-01-19T03:14:08.000Z");
	format_is(INT64_C(4107542399999), "2100-02-28T23:59:59.999Z");
	format_is(INT64_C(4107542400000), "2100-03-01T00:00:00.000Z");
	format_is(INT64_C(253402300799999), "9999-12-31T23:59:59.999Z");
}

static void test_time_round_trip(void **state)
{
	static const int64_t fixed[] = {0,
					1,
					999,
					1000,
					59999,
					INT64_C(86399999),
					INT64_C(86400000),
					INT64_C(68169599999),  /* 1972-02-28 end (leap year) */
					INT64_C(68169600000),  /* 1972-02-29 */
					INT64_C(951782400000), /* 2000-02-29 */
					INT64_C(1709251199999),
					NOW_MS,
					INT64_C(2147483647999),
					INT64_C(2147483648000),
					INT64_C(4107542400000),
					INT64_C(253402300799999)};
	char prev[32] = "";
	uint64_t x = 0x9e3779b97f4a7c15u;
	int64_t prev_ms = -1;

	(void)state;
	for (size_t i = 0; i < sizeof fixed / sizeof fixed[0] + 20000; i++) {
		int64_t ms, back = -1;
		char s[32];

		if (i < sizeof fixed / sizeof fixed[0]) {
			ms = fixed[i];
		} else {
			x ^= x << 13;
			x ^= x >> 7;
			x ^= x << 17;
			ms = (int64_t)(x % UINT64_C(253402300800000));
		}
		zt_audit_time_format(ms, s);
		assert_int_equal(strlen(s), 24);
		if (zt_audit_time_parse(s, strlen(s), &back) != 0)
			fail_msg("%s (from %lld) does not parse", s, (long long)ms);
		if (back != ms)
			fail_msg("%lld -> %s -> %lld", (long long)ms, s, (long long)back);
		/* stored times sort as strings */
		if (prev_ms >= 0 && (ms < prev_ms) != (strcmp(s, prev) < 0))
			fail_msg("%s and %s sort differently from %lld and %lld", s, prev,
				 (long long)ms, (long long)prev_ms);
		memcpy(prev, s, sizeof prev);
		prev_ms = ms;
	}
	/* every day of 1970..2400 round-trips, so every leap day is placed right */
	for (int64_t day = 0; day < 157000; day++) {
		int64_t ms = day * 86400000 + 43200123, back;
		char s[32];

		zt_audit_time_format(ms, s);
		assert_int_equal(zt_audit_time_parse(s, strlen(s), &back), 0);
		assert_true(back == ms);
	}
}

static void test_time_leap_years(void **state)
{
	static const int years[] = {1972, 1976, 1996, 2000, 2004, 2024, 2028, 2400};
	static const int common[] = {1970, 1971, 1973, 1999, 2001, 2023, 2025, 2100, 2200, 2300};
	char s[32];
	int64_t ms, next;

	(void)state;
	for (size_t i = 0; i < sizeof years / sizeof years[0]; i++) {
		snprintf(s, sizeof s, "%04d-02-29T00:00:00Z", years[i]);
		assert_int_equal(zt_audit_time_parse(s, strlen(s), &ms), 0);
		snprintf(s, sizeof s, "%04d-03-01T00:00:00Z", years[i]);
		assert_int_equal(zt_audit_time_parse(s, strlen(s), &next), 0);
		assert_true(next - ms == 86400000);
	}
	for (size_t i = 0; i < sizeof common / sizeof common[0]; i++) {
		snprintf(s, sizeof s, "%04d-02-29T00:00:00Z", common[i]);
		if (zt_audit_time_parse(s, strlen(s), &ms) == 0)
			fail_msg("%s parses: %d is not a leap year", s, common[i]);
		snprintf(s, sizeof s, "%04d-02-28T00:00:00Z", common[i]);
		assert_int_equal(zt_audit_time_parse(s, strlen(s), &ms), 0);
		snprintf(s, sizeof s, "%04d-03-01T00:00:00Z", common[i]);
		assert_int_equal(zt_audit_time_parse(s, strlen(s), &next), 0);
		assert_true(next - ms == 86400000);
	}
}

static void test_time_parse_refuses(void **state)
{
	static const char *const bad[] = {
	    "", "Z", "2026-01-02T03:04:05", "2026-01-02T03:04:05.Z", "2026-01-02T03:04:05.1234567890Z",
	    "2026-13-01T00:00:00Z", "2025-02-29T00:00:00Z", "2026-01-02T24:00:00Z",
	    "2026-01-02T03:04:05+00:00", "1969-12-31T23:59:59.999Z", "2026-01-02T03:04:05.1 Z",
	};
	int64_t ms;

	(void)state;
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		ms = 12345;
		if (zt_audit_time_parse(bad[i], strlen(bad[i]), &ms) == 0)
			fail_msg("time \"%s\" parses", bad[i]);
	}
	/* the length is what counts, not a NUL */
	assert_int_not_equal(zt_audit_time_parse("2026-01-02T03:04:05Z", 19, &ms), 0);
	assert_int_not_equal(zt_audit_time_parse("2026-01-02T03:04:05ZXX", 21, &ms), 0);
	assert_int_equal(zt_audit_time_parse("2026-01-02T03:04:05ZXX", 20, &ms), 0);
	assert_true(ms == INT64_C(1767323045000));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_minimal),
	    cmocka_unit_test(test_all_members),
	    cmocka_unit_test(test_time_normalized),
	    cmocka_unit_test(test_control_characters_escaped),
	    cmocka_unit_test(test_secrets),
	    cmocka_unit_test(test_secret_refusals),
	    cmocka_unit_test(test_refuse_not_object),
	    cmocka_unit_test(test_refuse_members),
	    cmocka_unit_test(test_refuse_nul),
	    cmocka_unit_test(test_refuse_lengths),
	    cmocka_unit_test(test_refuse_details_depth),
	    cmocka_unit_test(test_details_depth_8_with_value),
	    cmocka_unit_test(test_details_nul_consistent),
	    cmocka_unit_test(test_refuse_times),
	    cmocka_unit_test(test_refuse_too_large),
	    cmocka_unit_test(test_check),
	    cmocka_unit_test(test_time_known),
	    cmocka_unit_test(test_time_round_trip),
	    cmocka_unit_test(test_time_leap_years),
	    cmocka_unit_test(test_time_parse_refuses),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
