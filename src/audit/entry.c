/*
 * Audit entries: one JSON object per event, stored canonically (sorted
 * keys, compact, one line) so that the same event always hashes the same.
 * The schema is in docs/audit.md; every member is checked here, so that
 * what reaches the log is what the documentation promises.
 *
 * Secret values never enter the log: each member of an event's "secrets"
 * is stored in "details" as HMAC-SHA256 under the log's own key. Someone
 * holding that key can check a value for equality; nobody can read it.
 */
#include <string.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "audit/audit.h"
#include "crypto/crypto.h"

#define ACTOR_MAX 1024
#define ACTION_MAX 128
#define TARGET_MAX 2048
#define REQUEST_ID_MAX 128
#define DETAILS_DEPTH_MAX 8
#define SECRET_MAX 4096

static const char *const decisions[] = {"allow", "deny", "audit", "error", "none", NULL};

static int digits(const char *s, size_t n, int *out)
{
	*out = 0;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		*out = *out * 10 + (s[i] - '0');
	}
	return 0;
}

int zt_audit_time_parse(const char *s, size_t len, int64_t *ms)
{
	int y, mo, d, h, mi, sec, frac_ms = 0;
	static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};

	*ms = 0;
	/* RFC 3339 5.6 date-time, UTC only: YYYY-MM-DDTHH:MM:SS[.frac]Z */
	if (len < 20 || s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' ||
	    s[16] != ':' || s[len - 1] != 'Z')
		return -1;
	if (digits(s, 4, &y) || digits(s + 5, 2, &mo) || digits(s + 8, 2, &d) ||
	    digits(s + 11, 2, &h) || digits(s + 14, 2, &mi) || digits(s + 17, 2, &sec))
		return -1;
	if (len > 20) {
		size_t nf = len - 21;

		if (s[19] != '.' || nf == 0 || nf > 9)
			return -1;
		for (size_t i = 0; i < nf; i++) {
			if (s[20 + i] < '0' || s[20 + i] > '9')
				return -1;
			if (i < 3)
				frac_ms = frac_ms * 10 + (s[20 + i] - '0');
		}
		for (size_t i = nf; i < 3; i++)
			frac_ms *= 10;
	}
	if (y < 1970 || mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] || h > 23 || mi > 59 ||
	    sec > 59)
		return -1;
	if (mo == 2 && d == 29 && !((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
		return -1;
	struct tm tm = {.tm_year = y - 1900, .tm_mon = mo - 1, .tm_mday = d,
			.tm_hour = h, .tm_min = mi, .tm_sec = sec};

	*ms = (int64_t)timegm(&tm) * 1000 + frac_ms;
	return 0;
}

void zt_audit_time_format(int64_t ms, char out[32])
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;

	char buf[96] = {0};

	gmtime_r(&t, &tm);
	snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
		 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ms % 1000));
	memcpy(out, buf, 31); /* years past 9999 are cut: they never parse back anyway */
	out[31] = '\0';
}

void zt_audit_secret_hash(const uint8_t key[ZT_HASH_LEN], const char *value, size_t len,
			  char out[64])
{
	static const char b64[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	uint8_t mac[EVP_MAX_MD_SIZE + 1] = {0};
	unsigned mlen = 0;
	size_t o = sizeof ZT_AUDIT_HMAC_PREFIX - 1;

	HMAC(EVP_sha256(), key, ZT_HASH_LEN, (const uint8_t *)value, len, mac, &mlen);
	memcpy(out, ZT_AUDIT_HMAC_PREFIX, o);
	/* 32 bytes: ten 3-byte groups and a padded final pair */
	for (size_t i = 0; i < 32; i += 3) {
		uint32_t v = (uint32_t)mac[i] << 16 | (uint32_t)mac[i + 1] << 8 |
			     (i + 2 < 32 ? mac[i + 2] : 0);

		out[o++] = b64[v >> 18 & 63];
		out[o++] = b64[v >> 12 & 63];
		out[o++] = b64[v >> 6 & 63];
		out[o++] = i + 2 < 32 ? b64[v & 63] : '=';
	}
	out[o] = '\0';
	zt_wipe(mac, sizeof mac);
}

static int str_member(const json_t *obj, const char *key, size_t max, int required,
		      const char **out, zt_err *e)
{
	json_t *v = json_object_get(obj, key);

	*out = NULL;
	if (!v) {
		if (required)
			return zt_err_rule(e, ZT_EINVAL, "entry-schema",
					   "an audit event needs \"%s\" (a string)", key);
		return 0;
	}
	if (!json_is_string(v))
		return zt_err_rule(e, ZT_EINVAL, "entry-schema", "the event's \"%s\" must be a string",
				   key);
	size_t n = json_string_length(v);

	if (n == 0 || n > max)
		return zt_err_rule(e, ZT_EINVAL, "entry-schema",
				   "the event's \"%s\" must be 1-%zu bytes long", key, max);
	if (strlen(json_string_value(v)) != n)
		return zt_err_rule(e, ZT_EINVAL, "entry-schema",
				   "the event's \"%s\" contains a NUL character", key);
	*out = json_string_value(v);
	return 0;
}

/*
 * Details nest at most DETAILS_DEPTH_MAX objects and arrays deep (the
 * values inside them are no level), and hold text: a NUL in a key or a
 * string (possible through the API) would not read back.
 */
static int details_ok(json_t *v, int depth)
{
	const char *k;
	size_t kl, i;
	json_t *c;

	if ((json_is_object(v) || json_is_array(v)) && depth > DETAILS_DEPTH_MAX)
		return 0;
	if (json_is_string(v))
		return strlen(json_string_value(v)) == json_string_length(v);
	if (json_is_object(v)) {
		json_object_keylen_foreach(v, k, kl, c)
			if (strlen(k) != kl || !details_ok(c, depth + 1))
				return 0;
	} else if (json_is_array(v)) {
		json_array_foreach(v, i, c)
			if (!details_ok(c, depth + 1))
				return 0;
	}
	return 1;
}

/* Checks the members common to events and stored entries; `stored` allows no "secrets". */
static int check_members(json_t *o, int stored, zt_err *e)
{
	const char *k, *s;
	size_t kl;
	json_t *v;
	int r;

	if (!json_is_object(o))
		return zt_err_rule(e, ZT_EINVAL, "entry-schema", "an audit event must be a JSON object");
	json_object_keylen_foreach(o, k, kl, v) {
		if (strlen(k) != kl || (strcmp(k, "time") && strcmp(k, "actor") && strcmp(k, "action") &&
		    strcmp(k, "target") && strcmp(k, "decision") && strcmp(k, "request_id") &&
		    strcmp(k, "details") && (stored || strcmp(k, "secrets"))))
			return zt_err_rule(e, ZT_EINVAL, "entry-schema",
					   "unknown member \"%s\" in an audit event; the members are "
					   "time, actor, action, target, decision, request_id, "
					   "details%s",
					   k, stored ? "" : " and secrets");
	}
	if ((r = str_member(o, "actor", ACTOR_MAX, 1, &s, e)) != 0 ||
	    (r = str_member(o, "action", ACTION_MAX, 1, &s, e)) != 0)
		return r;
	for (const char *c = s; *c; c++)
		if (!((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '.' ||
		      *c == '_' || *c == '-'))
			return zt_err_rule(e, ZT_EINVAL, "entry-schema",
					   "the event's action \"%s\" may only use a-z, 0-9, '.', "
					   "'_' and '-' (as in \"svid.issue\")",
					   s);
	if ((r = str_member(o, "target", TARGET_MAX, 0, &s, e)) != 0 ||
	    (r = str_member(o, "request_id", REQUEST_ID_MAX, 0, &s, e)) != 0)
		return r;
	if (s)
		for (const char *c = s; *c; c++)
			if (*c < 0x21 || *c > 0x7e)
				return zt_err_rule(e, ZT_EINVAL, "entry-schema",
						   "the event's request_id must be printable ASCII "
						   "without spaces");
	if ((r = str_member(o, "decision", 16, 0, &s, e)) != 0)
		return r;
	if (s) {
		size_t i;

		for (i = 0; decisions[i] && strcmp(decisions[i], s) != 0; i++)
			;
		if (!decisions[i])
			return zt_err_rule(e, ZT_EINVAL, "entry-schema",
					   "the event's decision \"%s\" is not one of allow, deny, "
					   "audit, error, none",
					   s);
	}
	if ((r = str_member(o, "time", 40, stored, &s, e)) != 0)
		return r;
	if (s) {
		int64_t ms;
		char canon[32];

		if (zt_audit_time_parse(s, strlen(s), &ms) != 0)
			return zt_err_rule(e, ZT_EINVAL, "entry-schema",
					   "the event's time \"%s\" is not RFC 3339 UTC "
					   "(2026-01-02T03:04:05Z)",
					   s);
		zt_audit_time_format(ms, canon);
		if (stored && strcmp(canon, s) != 0)
			return zt_err_rule(e, ZT_EINVAL, "entry-schema",
					   "a stored entry's time must have milliseconds (%s)", canon);
	}
	v = json_object_get(o, "details");
	if (v && (!json_is_object(v) || !details_ok(v, 1)))
		return zt_err_rule(e, ZT_EINVAL, "entry-schema",
				   "the event's details must be a JSON object of text (no NUL "
				   "characters) nested at most %d deep",
				   DETAILS_DEPTH_MAX);
	return 0;
}

int zt_audit_entry_build(const json_t *event, const uint8_t hmac_key[ZT_HASH_LEN],
			 int64_t now_ms, zt_buf *out, zt_err *e)
{
	json_t *copy = NULL, *details, *secrets = NULL, *v;
	const char *k;
	char *text = NULL;
	int r;

	if (!json_is_object(event))
		return zt_err_rule(e, ZT_EINVAL, "entry-schema", "an audit event must be a JSON object");
	if (!(copy = json_deep_copy(event)))
		return zt_err_set(e, ZT_ENOMEM, "out of memory");
	if ((r = check_members(copy, 0, e)) != 0)
		goto out;
	if (!json_object_get(copy, "time")) {
		char t[32];

		zt_audit_time_format(now_ms, t);
		json_object_set_new(copy, "time", json_string(t));
	} else {
		int64_t ms;
		char t[32];
		const char *s = json_string_value(json_object_get(copy, "time"));

		if (zt_audit_time_parse(s, strlen(s), &ms) == 0) {
			zt_audit_time_format(ms, t);
			json_object_set_new(copy, "time", json_string(t));
		}
	}
	secrets = json_object_get(copy, "secrets");
	if (secrets) {
		if (!json_is_object(secrets)) {
			r = zt_err_rule(e, ZT_EINVAL, "entry-schema",
					"the event's secrets must be an object of strings");
			goto out;
		}
		details = json_object_get(copy, "details");
		if (!details) {
			details = json_object();
			json_object_set_new(copy, "details", details);
		}
		json_object_foreach(secrets, k, v) {
			char mac[64];

			if (!json_is_string(v) || json_string_length(v) > SECRET_MAX) {
				r = zt_err_rule(e, ZT_EINVAL, "entry-schema",
						"the event's secret \"%s\" must be a string of at most "
						"%d bytes",
						k, SECRET_MAX);
				goto out;
			}
			if (json_object_get(details, k)) {
				r = zt_err_rule(e, ZT_EINVAL, "entry-schema",
						"\"%s\" is both a detail and a secret; name it once", k);
				goto out;
			}
			zt_audit_secret_hash(hmac_key, json_string_value(v), json_string_length(v),
					     mac);
			json_object_set_new(details, k, json_string(mac));
		}
		json_object_del(copy, "secrets");
	}
	/* compact, sorted keys; control characters are escaped, so one line */
	if (!(text = json_dumps(copy, JSON_COMPACT | JSON_SORT_KEYS))) {
		r = zt_err_set(e, ZT_ENOMEM, "out of memory");
		goto out;
	}
	size_t n = strlen(text);

	if (n > ZT_AUDIT_ENTRY_MAX) {
		r = zt_err_rule(e, ZT_ELIMIT, "entry-size",
				"the entry is %zu bytes; an entry holds at most %d: shorten its "
				"details",
				n, ZT_AUDIT_ENTRY_MAX);
		goto out;
	}
	r = zt_buf_append(out, text, n, e);
out:
	if (secrets && text)
		zt_wipe(text, strlen(text));
	free(text);
	json_decref(copy);
	return r;
}

int zt_audit_entry_check(const char *p, size_t len, zt_err *e)
{
	json_error_t je;
	json_t *o;
	int r;

	if (len == 0 || len > ZT_AUDIT_ENTRY_MAX || memchr(p, '\n', len) || p[0] != '{' ||
	    p[len - 1] != '}')
		return zt_err_rule(e, ZT_EINVAL, "entry-schema",
				   "a stored entry is one line of 1-%d bytes", ZT_AUDIT_ENTRY_MAX);
	if (!(o = json_loadb(p, len, JSON_REJECT_DUPLICATES, &je)))
		return zt_err_rule(e, ZT_EPARSE, "entry-schema", "a stored entry is not JSON: %s",
				   je.text);
	r = check_members(o, 1, e);
	json_decref(o);
	return r;
}
