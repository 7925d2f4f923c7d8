/*
 * core: what every zt module stands on.
 *
 *  - errors: a code from one table plus a readable reason that says what was
 *    wrong and what to do (zt_err);
 *  - logging: one JSON object per line on stderr, with levels;
 *  - bounded byte buffers (zt_buf): every buffer has a maximum size and growth
 *    past it is an error, never an allocation;
 *  - files: bounded reads, atomic writes with an explicit mode;
 *  - YAML and JSON loading into jansson trees, with size and depth limits;
 *  - durations ("90s", "1h", "7d") and a clock that tests can set.
 *
 * Depends on libc, jansson and libyaml only.
 */
#ifndef ZT_CORE_H
#define ZT_CORE_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <jansson.h>

#define ZT_MUST_CHECK __attribute__((warn_unused_result))
#define ZT_PRINTF(f, a) __attribute__((format(printf, f, a)))

/* ---- errors ------------------------------------------------------------ */

/* One list gives the codes and their names (libuv's UV_ERRNO_MAP habit). */
#define ZT_ERR_MAP(X)                                                   \
	X(ZT_OK, 0, "ok")                                               \
	X(ZT_EINVAL, 1, "invalid input")                                \
	X(ZT_ENOMEM, 2, "out of memory")                                \
	X(ZT_EIO, 3, "input/output error")                              \
	X(ZT_EPARSE, 4, "parse error")                                  \
	X(ZT_ECRYPTO, 5, "cryptographic failure")                       \
	X(ZT_EVERIFY, 6, "verification failed")                         \
	X(ZT_EEXIST, 7, "already exists")                               \
	X(ZT_ENOENT, 8, "not found")                                    \
	X(ZT_ELIMIT, 9, "limit exceeded")                               \
	X(ZT_ESTATE, 10, "invalid state")                               \
	X(ZT_ECONFLICT, 11, "conflict")

enum zt_errcode {
#define ZT_ERR_ENUM(name, val, text) name = val,
	ZT_ERR_MAP(ZT_ERR_ENUM)
#undef ZT_ERR_ENUM
};

#define ZT_ERR_MSG_MAX 1024

/*
 * An error record. `rule` is a short stable tag naming the rule that was
 * broken ("leaf-ca", "id-port"...) so tests and tools can match on it;
 * it is "" when no particular rule applies.
 */
typedef struct zt_err {
	int code;
	char rule[40];
	char msg[ZT_ERR_MSG_MAX];
} zt_err;

/* Clears *e (it may be NULL, then errors are only returned). */
void zt_err_clear(zt_err *e);

/*
 * Records an error and returns -code, so callers write
 *   return zt_err_set(e, ZT_EINVAL, "...");
 */
int zt_err_set(zt_err *e, int code, const char *fmt, ...) ZT_PRINTF(3, 4);
int zt_err_setv(zt_err *e, int code, const char *fmt, va_list ap) ZT_PRINTF(3, 0);

/* As zt_err_set, with a rule tag. */
int zt_err_rule(zt_err *e, int code, const char *rule, const char *fmt, ...)
    ZT_PRINTF(4, 5);

/* Prefixes the message already in *e with more context ("loading x: ..."). */
int zt_err_wrap(zt_err *e, const char *fmt, ...) ZT_PRINTF(2, 3);

/* The name of an error code; never NULL. */
const char *zt_strerror(int code);

/* ---- logging ----------------------------------------------------------- */

enum zt_log_level { ZT_LOG_DEBUG, ZT_LOG_INFO, ZT_LOG_WARN, ZT_LOG_ERROR };

void zt_log_set_level(enum zt_log_level lvl);
/* Parses "debug", "info", "warn", "error"; 0 or -ZT_EINVAL. */
int zt_log_level_parse(const char *s, enum zt_log_level *out);

/*
 * Writes {"ts":..., "level":..., "msg":..., k1: v1, ...} as one line to
 * stderr (one write(2), so threads' lines never mix). The variadic part
 * is NULL-terminated key/value string pairs. Values are escaped, so hostile
 * strings cannot forge fields or lines; bytes that are not UTF-8 become
 * U+FFFD. A line is at most 16 KiB: fields past it are left out and
 * "truncated":true says so.
 */
void zt_log(enum zt_log_level lvl, const char *msg, ...)
    __attribute__((sentinel));
/* 1 when a line at lvl would be written: callers skip formatting otherwise. */
int zt_log_enabled(enum zt_log_level lvl);

/* ---- bounded buffers --------------------------------------------------- */

typedef struct zt_buf {
	uint8_t *p;
	size_t len;
	size_t cap;
	size_t max; /* growth past max fails with ZT_ELIMIT */
} zt_buf;

void zt_buf_init(zt_buf *b, size_t max);
/* Makes room for n more bytes. */
int zt_buf_reserve(zt_buf *b, size_t n, zt_err *e) ZT_MUST_CHECK;
int zt_buf_append(zt_buf *b, const void *data, size_t n, zt_err *e) ZT_MUST_CHECK;
int zt_buf_appendf(zt_buf *b, zt_err *e, const char *fmt, ...) ZT_PRINTF(3, 4)
    ZT_MUST_CHECK;
/* Keeps the buffer NUL-terminated after its content (not counted in len). */
int zt_buf_terminate(zt_buf *b, zt_err *e) ZT_MUST_CHECK;
/* Frees the memory; wipes it first when `secret` is set. */
void zt_buf_free(zt_buf *b, int secret);

/* ---- arenas ------------------------------------------------------------- */

/*
 * A bump allocator: many small allocations freed at once. Used for data
 * built once and read often (compiled policy), so it also packs that data
 * together in memory.
 */
typedef struct zt_arena zt_arena;

zt_arena *zt_arena_new(size_t chunk);
/* Small chunks at first, then (past 8 MiB) chunks of 2 MiB in transparent
 * huge pages: for large data read at random (a compiled policy of 100,000
 * services), where TLB misses would cost more than the work. */
zt_arena *zt_arena_new_huge(void);
/* Zeroed memory in huge pages when the kernel allows; free with free(). */
void *zt_huge_calloc(size_t n, size_t size);
/* Zeroed, 16-byte aligned memory that lives until zt_arena_free; NULL when
 * out of memory. */
void *zt_arena_alloc(zt_arena *a, size_t n);
/* A NUL-terminated copy of n bytes. */
char *zt_arena_strndup(zt_arena *a, const char *s, size_t n);
void zt_arena_free(zt_arena *a);
/* Bytes held by the arena (for reports). */
size_t zt_arena_size(const zt_arena *a);

/* ---- hashing and string sets ------------------------------------------- */

/* A fast 64-bit hash for tables (not a cryptographic one). */
uint64_t zt_hash(const void *p, size_t n);

/* A set of byte strings (not copied: they must outlive the set). */
typedef struct zt_strset zt_strset;

zt_strset *zt_strset_new(void);
void zt_strset_free(zt_strset *s);
/* 1 if added, 0 if it was there already, -1 when out of memory. */
int zt_strset_add(zt_strset *s, const char *p, size_t n);
int zt_strset_has(const zt_strset *s, const char *p, size_t n);

/* ---- files ------------------------------------------------------------- */

/* Reads at most `max` bytes of `path` into b (initialised here). */
int zt_file_read(const char *path, size_t max, zt_buf *b, zt_err *e) ZT_MUST_CHECK;

enum zt_write_flags {
	ZT_WRITE_EXCL = 1, /* refuse to replace an existing file */
};

/*
 * Writes `path` atomically (temporary file in the same folder, fsync, rename)
 * with permission `mode`. With ZT_WRITE_EXCL an existing file is an error
 * (ZT_EEXIST) and is left untouched.
 */
int zt_file_write(const char *path, const void *data, size_t len, unsigned mode,
		  int flags, zt_err *e) ZT_MUST_CHECK;

/* 1 if path exists (any type), 0 if not. */
int zt_path_exists(const char *path);

/* Creates a directory with `mode`; an existing directory is fine. */
int zt_mkdir(const char *path, unsigned mode, zt_err *e) ZT_MUST_CHECK;

/* snprintf that fails (ZT_ELIMIT) instead of truncating. */
int zt_path_join(char *out, size_t outsz, zt_err *e, const char *fmt, ...)
    ZT_PRINTF(4, 5) ZT_MUST_CHECK;

/* ---- YAML and JSON ----------------------------------------------------- */

#define ZT_DOC_MAX_DEPTH 64

/*
 * Parses JSON text of exactly `len` bytes. Rejects duplicate keys, NUL in
 * strings and nesting deeper than ZT_DOC_MAX_DEPTH. Caller owns the result
 * (json_decref); NULL on error (ZT_EPARSE, ZT_ELIMIT for the depth).
 * It is zt_json_parse_fast.
 */
json_t *zt_json_parse(const char *text, size_t len, zt_err *e);

/*
 * core/json.c: the parser behind zt_json_parse, one pass over the bytes in
 * place (several times faster than jansson's json_loadb, which matters for
 * every JWT the proxy checks). Same results as jansson 2.14's
 * json_loadb(JSON_REJECT_DUPLICATES) followed by the depth check, which
 * fuzz/fuzz_json.c verifies: the top level is an object or array; strict
 * UTF-8; no \u0000 and no lone surrogates; integers must fit json_int_t
 * (a bigger one is an error, not a real); other numbers are reals, and one
 * that overflows is an error. One difference: a NUL byte right after a
 * number or literal, which jansson skips, is refused. Messages give the byte
 * offset (from 0), line and column. Caller owns the result.
 */
json_t *zt_json_parse_fast(const char *text, size_t len, zt_err *e);

/*
 * Parses YAML text into jansson values: mappings become objects (keys must
 * be scalars, duplicates rejected), sequences arrays, scalars strings
 * (plain scalars null/true/false/integers keep their JSON type). Anchors and
 * aliases are rejected (no "billion laughs"), as are more than `max_docs`
 * documents and nesting deeper than ZT_DOC_MAX_DEPTH. The result is an
 * array with one element per document. Caller owns it; NULL on error.
 */
json_t *zt_yaml_parse(const char *text, size_t len, size_t max_docs, zt_err *e);

/*
 * Where each value of a parsed YAML document came from (1-based line and
 * column), for error messages that point into the file.
 */
typedef struct zt_docpos zt_docpos;

/* As zt_yaml_parse, also filling *pos (caller frees with zt_docpos_free). */
json_t *zt_yaml_parse_pos(const char *text, size_t len, size_t max_docs, zt_docpos **pos,
			  zt_err *e);
void zt_docpos_free(zt_docpos *pos);
/* 0 and the position of node, or -1 when unknown (pos may be NULL). Shared
 * jansson singletons (true, false, null) have no position. */
int zt_docpos_get(const zt_docpos *pos, const json_t *node, int *line, int *col);
/* The position of key `key` in mapping `obj`, or -1. */
int zt_docpos_key_get(const zt_docpos *pos, const json_t *obj, const char *key, int *line,
		      int *col);

/*
 * Loads a file as an array of documents: a file named *.json is one JSON
 * document, anything else is YAML (up to 1024 documents). Caller owns it.
 */
json_t *zt_doc_load_file(const char *path, size_t max_bytes, zt_err *e);

/*
 * Configuration documents: obj must be a mapping whose keys are all in the
 * NULL-terminated keys ("unknown field \"x\" in WHERE (see DOC)" otherwise).
 */
int zt_doc_only_keys(json_t *obj, const char *const *keys, const char *where, const char *doc,
		     zt_err *e) ZT_MUST_CHECK;
/* obj[key] as a non-empty string in *out (NULL when absent and not required). */
int zt_doc_get_str(json_t *obj, const char *key, const char **out, int required,
		   const char *where, zt_err *e) ZT_MUST_CHECK;

/* ---- HTTP request paths ------------------------------------------------ */

#define ZT_PATH_MAX 8192

/*
 * Normalizes an HTTP request target in origin form ("/a/b?q") once, for both
 * policy matching and forwarding, so the two can never disagree (Istio
 * CVE-2021-31920, CVE-2021-39156). The path part:
 *   - must begin with '/'; NUL, control characters (< 0x20, 0x7f), spaces,
 *     bytes >= 0x80, a raw '\' and a fragment ('#') are refused;
 *   - percent-encoding must be valid (%XX, hex); %2F and %5C (encoded '/'
 *     and '\') are refused, and so are encoded control characters and NUL
 *     (%00-%1F, %7F); encoded unreserved characters (RFC 3986 2.3: ALPHA,
 *     DIGIT, '-', '.', '_', '~') are decoded; other escapes are kept with
 *     uppercase hex (RFC 3986 6.2.2.1);
 *   - repeated slashes are merged;
 *   - dot segments are removed (RFC 3986 5.2.4), after decoding, so
 *     "/%2e%2e/" is a ".." segment; ".." never climbs above "/".
 * The query ("?..." up to the end) is kept as it is after the same byte
 * checks (no '#', control, space or >= 0x80 bytes; valid %XX).
 * Writes "PATH[?QUERY]" NUL-terminated to out (outsz >= len + 1 suffices;
 * the result is never longer than the input) and the length of its path
 * part to *path_len. Rules broken: path-empty, path-too-long,
 * path-not-absolute, path-fragment, path-control, path-backslash,
 * path-bad-percent, path-encoded-slash.
 */
int zt_path_normalize(const char *in, size_t len, char *out, size_t outsz,
		      size_t *path_len, zt_err *e) ZT_MUST_CHECK;

/* The value of one hexadecimal digit (either case), or -1. */
int zt_hex_value(unsigned char c);

/* ---- time -------------------------------------------------------------- */

/*
 * Parses a duration: one or more <integer><unit> groups with units
 * s, m, h, d (e.g. "90s", "1h30m", "7d"). Rejects zero, signs, spaces,
 * overflow and results above `max_seconds`.
 */
int zt_duration_parse(const char *s, int64_t max_seconds, int64_t *out,
		      zt_err *e) ZT_MUST_CHECK;

/* Formats seconds in the largest whole unit ("7d", "90m", "45s"). */
void zt_duration_format(int64_t secs, char *out, size_t outsz);

/* The current time in seconds; tests may pin it with zt_clock_set. */
int64_t zt_now(void);
/* The same in milliseconds (what audit entries and store records carry). */
int64_t zt_now_ms(void);
/* Pins the clock at t (seconds since the epoch); 0 unpins it. */
void zt_clock_set(int64_t t);

/* Formats t as RFC 3339 UTC ("2026-01-02T03:04:05Z"). */
void zt_time_format(int64_t t, char *out, size_t outsz);

/* ---- misc -------------------------------------------------------------- */

/*
 * Copies untrusted bytes into out for messages and logs: printable ASCII
 * kept, everything else as \xNN, cut with "..." when longer than fits.
 * out is always NUL-terminated.
 */
void zt_quote(char *out, size_t outsz, const char *in, size_t len);

/* Constant-time comparison for secrets. 1 when equal. */
int zt_ct_equal(const void *a, const void *b, size_t n);
/* Wipes memory the compiler cannot optimise away. */
void zt_wipe(void *p, size_t n);

#endif /* ZT_CORE_H */
