/*
 * Fuzz target: HTTP/1.1 heads, chunked bodies and head writing
 * (net/http1.c).
 *
 * The first byte steers: where to split the input for the differential
 * checks, which method the response answers, and whether small limits
 * apply. The rest is read as a request, as a response and as a chunked
 * body, each whole and split (and stepped for short inputs), which must
 * agree; parsed requests are written out and parsed again; fuzz bytes are
 * offered to the writer, which must refuse them or write one clean field.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "net/http1.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(x)                \
	do {                    \
		if (!(x))       \
			abort(); \
	} while (0)

static const zt_http1_limits small_limits = {
	.max_line = 64, .max_head = 256, .max_fields = 8, .max_chunk_ext = 16, .max_trailer = 64,
};

static const zt_http1_limits big_limits = {
	.max_line = 1 << 20, .max_head = 1 << 20, .max_fields = ZT_HTTP1_MAX_FIELDS,
};

static int is_tchar(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       (c && strchr("!#$%&'*+-.^_`|~", c));
}

static int span_eq(const char *a, size_t an, const char *b, size_t bn)
{
	return an == bn && (an == 0 || memcmp(a, b, an) == 0);
}

/* A parsed field lies inside the head and keeps the field rules. */
static void check_field(const zt_http1_field *f, const uint8_t *buf, size_t head_len)
{
	const char *lo = (const char *)buf, *hi = lo + head_len;

	CHECK(f->name >= lo && f->name + f->name_len <= hi && f->name_len > 0);
	CHECK(f->value >= lo && f->value + f->value_len <= hi);
	for (size_t i = 0; i < f->name_len; i++)
		CHECK(is_tchar((unsigned char)f->name[i]));
	for (size_t i = 0; i < f->value_len; i++) {
		unsigned char c = (unsigned char)f->value[i];

		CHECK(c == '\t' || (c >= 0x20 && c != 0x7f));
	}
	if (f->value_len) {
		CHECK(f->value[0] != ' ' && f->value[0] != '\t');
		CHECK(f->value[f->value_len - 1] != ' ' && f->value[f->value_len - 1] != '\t');
	}
}

static void check_error(int rc, int status, const zt_err *e)
{
	CHECK(rc == -ZT_EPARSE || rc == -ZT_ELIMIT);
	CHECK(status != 0 && e->rule[0] != '\0' && e->msg[0] != '\0');
	CHECK(!memchr(e->msg, '\n', strlen(e->msg)) && !memchr(e->msg, '\r', strlen(e->msg)));
}

/* Outcome of a head parse, for comparing two ways of feeding it. */
struct verdict {
	int rc, status;
	size_t head_len;
	char rule[40];
};

static void same(const struct verdict *a, const struct verdict *b)
{
	CHECK(a->rc == b->rc && a->status == b->status && a->head_len == b->head_len);
	CHECK(strcmp(a->rule, b->rule) == 0);
}

/* ---- chunked ----------------------------------------------------------- */

struct ck_out {
	int rc; /* 0 done, 1 input ran out, < 0 error */
	size_t consumed;
	uint64_t total;
	uint8_t *payload; /* n bytes of room */
	size_t payload_len;
	char rule[40];
};

/* Feeds buf[0..n) in pieces cut at `cuts` (ascending, < n), collecting payload. */
static void ck_feed(const uint8_t *buf, size_t n, const size_t *cuts, size_t ncuts,
		    const zt_http1_limits *lim, int resp, struct ck_out *o)
{
	zt_http1_chunked c;
	size_t off = 0, ci = 0;
	zt_err e;

	o->rc = 1;
	o->consumed = 0;
	o->payload_len = 0;
	o->rule[0] = '\0';
	zt_http1_chunked_init(&c, lim, resp);
	while (off < n && !zt_http1_chunked_done(&c)) {
		while (ci < ncuts && cuts[ci] <= off)
			ci++;
		size_t end = ci < ncuts ? cuts[ci] : n;
		size_t used, doff, dlen;
		int rc = zt_http1_chunked_feed(&c, buf + off, end - off, &used, &doff, &dlen, &e);

		if (rc < 0) {
			CHECK(used == 0 && dlen == 0);
			CHECK(c.err_status == (resp ? 502 : 400) || c.err_status == 431);
			CHECK(e.rule[0] != '\0');
			o->rc = rc;
			memcpy(o->rule, e.rule, sizeof o->rule);
			return;
		}
		CHECK(used > 0 && used <= end - off);
		CHECK(doff + dlen <= used);
		memcpy(o->payload + o->payload_len, buf + off + doff, dlen);
		o->payload_len += dlen;
		off += used;
	}
	o->consumed = off;
	o->total = c.total;
	CHECK(c.total == o->payload_len);
	CHECK(c.wire == off);
	if (zt_http1_chunked_done(&c))
		o->rc = 0;
}

static void ck_same(const struct ck_out *a, const struct ck_out *b)
{
	CHECK(a->rc == b->rc && strcmp(a->rule, b->rule) == 0);
	if (a->rc >= 0) {
		CHECK(a->consumed == b->consumed && a->total == b->total);
		CHECK(a->payload_len == b->payload_len);
		CHECK(a->payload_len == 0 || memcmp(a->payload, b->payload, a->payload_len) == 0);
	}
}

/* Whole, split at one point, and (short inputs) stepped: one outcome. */
static void fuzz_chunked(const uint8_t *buf, size_t n, size_t split, size_t step,
			 const zt_http1_limits *lim, int resp)
{
	struct ck_out whole, part;
	size_t cuts[1] = { split };

	whole.payload = malloc(n + 1);
	part.payload = malloc(n + 1);
	CHECK(whole.payload && part.payload);
	ck_feed(buf, n, NULL, 0, lim, resp, &whole);
	ck_feed(buf, n, cuts, split < n ? 1 : 0, lim, resp, &part);
	ck_same(&whole, &part);
	if (n <= 2048) {
		size_t *many = malloc((n / step + 1) * sizeof *many), k = 0;

		CHECK(many);
		for (size_t at = step; at < n; at += step)
			many[k++] = at;
		ck_feed(buf, n, many, k, lim, resp, &part);
		ck_same(&whole, &part);
		free(many);
	}
	free(whole.payload);
	free(part.payload);
}

/* ---- requests ---------------------------------------------------------- */

static void check_request(const zt_http1_request *r, const uint8_t *buf, size_t n)
{
	CHECK(r->head_len >= 4 && r->head_len <= n && r->err_status == 0);
	CHECK(memcmp(buf + r->head_len - 4, "\r\n\r\n", 4) == 0);
	CHECK(r->version == 10 || r->version == 11);
	CHECK(r->method_len > 0 && r->target_len > 0 && r->nfields <= ZT_HTTP1_MAX_FIELDS);
	for (size_t i = 0; i < r->method_len; i++)
		CHECK(is_tchar((unsigned char)r->method[i]));
	for (size_t i = 0; i < r->target_len; i++)
		CHECK(r->target[i] > 0x20 && r->target[i] < 0x7f && r->target[i] != '#');
	for (size_t i = 0; i < r->nfields; i++)
		check_field(&r->fields[i], buf, r->head_len);
	CHECK(r->version == 10 || r->host != NULL);
	if (r->framing == ZT_HTTP1_BODY_CHUNKED) {
		CHECK(r->version == 11);
		CHECK(!zt_http1_field_get(r->fields, r->nfields, "content-length", NULL));
	}
	CHECK(r->framing == ZT_HTTP1_BODY_NONE || r->framing == ZT_HTTP1_BODY_LENGTH ||
	      r->framing == ZT_HTTP1_BODY_CHUNKED);
	CHECK(r->content_length <= ZT_HTTP1_MAX_LENGTH);
	if (r->form == ZT_HTTP1_AUTHORITY_FORM)
		CHECK(r->method_flags & ZT_HTTP1_METHOD_CONNECT);
	if (r->form == ZT_HTTP1_ASTERISK_FORM)
		CHECK(span_eq(r->method, r->method_len, "OPTIONS", 7));
}

/* Writes the request out and parses it again: the same request. */
static void round_trip(const zt_http1_request *r)
{
	zt_http1_out o = { .fields = r->fields, .nfields = r->nfields };
	zt_http1_request r2;
	zt_buf b;
	zt_err e;

	zt_buf_init(&b, 1 << 21);
	CHECK(zt_http1_write_request(&b, r->method, r->method_len, r->target, r->target_len, &o,
				     &e) == 0);
	CHECK(zt_http1_parse_request(b.p, b.len, &big_limits, NULL, &r2, &e) == 0);
	CHECK(r2.head_len == b.len && r2.version == 11);
	CHECK(span_eq(r2.method, r2.method_len, r->method, r->method_len));
	CHECK(span_eq(r2.target, r2.target_len, r->target, r->target_len));
	CHECK(r2.nfields == r->nfields);
	for (size_t i = 0; i < r->nfields; i++) {
		CHECK(span_eq(r2.fields[i].name, r2.fields[i].name_len, r->fields[i].name,
			      r->fields[i].name_len));
		CHECK(span_eq(r2.fields[i].value, r2.fields[i].value_len, r->fields[i].value,
			      r->fields[i].value_len));
	}
	CHECK(r2.framing == r->framing && r2.content_length == r->content_length);
	CHECK(r2.form == r->form && r2.method_flags == r->method_flags);
	CHECK(r2.keep_alive == r->keep_alive && r2.expect_continue == r->expect_continue);
	CHECK(r2.upgrade == r->upgrade);
	CHECK(span_eq(r2.host, r2.host_len, r->host, r->host_len));
	zt_buf_free(&b, 0);
}

static struct verdict req_verdict(int rc, const zt_http1_request *r, const zt_err *e)
{
	struct verdict v = { .rc = rc, .status = r->err_status, .head_len = r->head_len };

	if (rc < 0)
		memcpy(v.rule, e->rule, sizeof v.rule);
	return v;
}

static void fuzz_request(const uint8_t *buf, size_t n, size_t split, size_t step,
			 const zt_http1_limits *lim)
{
	zt_http1_request *r = malloc(sizeof *r);
	struct verdict whole, part;
	size_t scanned = 0;
	zt_err e;
	int rc;

	CHECK(r);
	rc = zt_http1_parse_request(buf, n, lim, NULL, r, &e);
	whole = req_verdict(rc, r, &e);
	if (rc == 0) {
		check_request(r, buf, n);
		if (r->version == 11)
			round_trip(r);
		if (r->framing == ZT_HTTP1_BODY_CHUNKED)
			fuzz_chunked(buf + r->head_len, n - r->head_len, split / 2, step, lim, 0);
	} else if (rc < 0) {
		check_error(rc, r->err_status, &e);
		CHECK(r->head_len == 0 && r->nfields == 0 && r->method == NULL);
	} else {
		CHECK(rc == ZT_HTTP1_INCOMPLETE && r->head_len == 0 && r->err_status == 0);
	}

	/* split: the prefix is incomplete, or already says what the whole does */
	rc = zt_http1_parse_request(buf, split, lim, &scanned, r, &e);
	part = req_verdict(rc, r, &e);
	if (rc == ZT_HTTP1_INCOMPLETE) {
		CHECK(scanned <= split);
		rc = zt_http1_parse_request(buf, n, lim, &scanned, r, &e);
		part = req_verdict(rc, r, &e);
	}
	same(&whole, &part);
	CHECK(scanned == 0 || rc == ZT_HTTP1_INCOMPLETE);

	/* stepped, carrying the hint */
	if (n <= 4096) {
		scanned = 0;
		for (size_t k = step < n ? step : n;; k = k + step < n ? k + step : n) {
			rc = zt_http1_parse_request(buf, k, lim, &scanned, r, &e);
			if (rc != ZT_HTTP1_INCOMPLETE || k == n)
				break;
		}
		part = req_verdict(rc, r, &e);
		same(&whole, &part);
	}
	free(r);
}

/* ---- responses --------------------------------------------------------- */

static struct verdict resp_verdict(int rc, const zt_http1_response *r, const zt_err *e)
{
	struct verdict v = { .rc = rc, .status = r->err_status, .head_len = r->head_len };

	if (rc < 0)
		memcpy(v.rule, e->rule, sizeof v.rule);
	return v;
}

static void fuzz_response(const uint8_t *buf, size_t n, size_t split, unsigned flags,
			  const zt_http1_limits *lim)
{
	zt_http1_response *r = malloc(sizeof *r);
	struct verdict whole, part;
	size_t scanned = 0;
	zt_err e;
	int rc;

	CHECK(r);
	rc = zt_http1_parse_response(buf, n, lim, flags, NULL, r, &e);
	whole = resp_verdict(rc, r, &e);
	if (rc == 0) {
		CHECK(r->head_len >= 4 && r->head_len <= n && r->err_status == 0);
		CHECK(memcmp(buf + r->head_len - 4, "\r\n\r\n", 4) == 0);
		CHECK(r->status >= 100 && r->status <= 599);
		CHECK(r->version == 10 || r->version == 11);
		for (size_t i = 0; i < r->nfields; i++)
			check_field(&r->fields[i], buf, r->head_len);
		if (r->status / 100 == 1)
			CHECK(r->framing == (r->status == 101 ? ZT_HTTP1_BODY_TUNNEL :
							       ZT_HTTP1_BODY_NONE));
		else if ((flags & ZT_HTTP1_METHOD_CONNECT) && r->status / 100 == 2)
			CHECK(r->framing == ZT_HTTP1_BODY_TUNNEL);
		else if ((flags & ZT_HTTP1_METHOD_HEAD) || r->status == 204 || r->status == 304)
			CHECK(r->framing == ZT_HTTP1_BODY_NONE);
		if (r->framing == ZT_HTTP1_BODY_CLOSE || r->framing == ZT_HTTP1_BODY_TUNNEL)
			CHECK(!r->keep_alive);
		if (r->framing == ZT_HTTP1_BODY_CHUNKED)
			fuzz_chunked(buf + r->head_len, n - r->head_len, split / 3, 5, lim, 1);
	} else if (rc < 0) {
		check_error(rc, r->err_status, &e);
		CHECK(r->err_status == 502 && r->head_len == 0 && r->nfields == 0);
	}
	rc = zt_http1_parse_response(buf, split, lim, flags, &scanned, r, &e);
	part = resp_verdict(rc, r, &e);
	if (rc == ZT_HTTP1_INCOMPLETE) {
		rc = zt_http1_parse_response(buf, n, lim, flags, &scanned, r, &e);
		part = resp_verdict(rc, r, &e);
	}
	same(&whole, &part);
	free(r);
}

/* ---- writing ------------------------------------------------------------ */

/*
 * Fuzz bytes as one field's name and value: the writer refuses them and
 * leaves the buffer as it was, or writes a head that parses back to
 * exactly that one field.
 */
static void fuzz_write(const uint8_t *buf, size_t n, size_t split)
{
	zt_http1_field f = { (const char *)buf, split, (const char *)buf + split, n - split };
	zt_http1_out o = { .extra = &f, .nextra = 1 };
	zt_http1_response *r = malloc(sizeof *r);
	zt_buf b;
	zt_err e;
	int rc;

	CHECK(r);
	zt_buf_init(&b, 1 << 21);
	CHECK(zt_buf_append(&b, "x", 1, &e) == 0);
	rc = zt_http1_write_response(&b, 200, (const char *)buf + split, n - split, &o, &e);
	if (rc != 0) {
		CHECK(rc == -ZT_EINVAL && b.len == 1);
	} else if (zt_http1_parse_response(b.p + 1, b.len - 1, &big_limits, 0, NULL, r, &e) != 0) {
		/* only what the field means can be wrong, never its syntax */
		CHECK(zt_http1_name_eq(f.name, f.name_len, "content-length") ||
		      zt_http1_name_eq(f.name, f.name_len, "transfer-encoding") ||
		      zt_http1_name_eq(f.name, f.name_len, "connection"));
		CHECK(strcmp(e.rule, "http-content-length") == 0 || strcmp(e.rule, "http-te") == 0 ||
		      strcmp(e.rule, "http-connection") == 0);
	} else {
		CHECK(r->head_len == b.len - 1 && r->nfields == 1);
		CHECK(span_eq(r->fields[0].name, r->fields[0].name_len, f.name, f.name_len));
		/* the value comes back without surrounding whitespace */
		size_t s = 0, t = f.value_len;

		while (s < t && (f.value[s] == ' ' || f.value[s] == '\t'))
			s++;
		while (t > s && (f.value[t - 1] == ' ' || f.value[t - 1] == '\t'))
			t--;
		CHECK(span_eq(r->fields[0].value, r->fields[0].value_len, f.value + s, t - s));
		CHECK(span_eq(r->reason, r->reason_len, f.value, f.value_len));
	}
	b.len = 0;
	rc = zt_http1_write_request(&b, (const char *)buf, split, (const char *)buf + split,
				    n - split, NULL, &e);
	CHECK(rc == 0 || (rc == -ZT_EINVAL && b.len == 0));
	zt_buf_free(&b, 0);
	free(r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const zt_http1_limits *lim;
	uint8_t *buf;
	size_t n, split, step;
	unsigned ctl;

	if (size < 1)
		return 0;
	ctl = data[0];
	n = size - 1;
	/* an exact copy: ASan sees any read past the input */
	buf = malloc(n ? n : 1);
	CHECK(buf);
	memcpy(buf, data + 1, n);
	split = (size_t)ctl * (n + 1) / 256;
	step = 1 + ctl % 7;
	lim = ctl & 0x40 ? &small_limits : NULL;

	fuzz_request(buf, n, split, step, lim);
	fuzz_response(buf, n, split, ctl & 3, lim);
	fuzz_chunked(buf, n, split, step, lim, (ctl & 0x80) != 0);
	fuzz_write(buf, n, split);
	free(buf);
	return 0;
}
