/*
 * core/doc.c: YAML and JSON documents into jansson trees.
 *
 * Both parsers treat their input as hostile: explicit lengths, a nesting
 * limit, duplicate keys rejected (a second value must never silently win),
 * and no YAML anchors or aliases (expansion bombs).
 */
#include "core.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yaml.h>

/* core/json.c does the work: same results as jansson's json_loadb with
 * JSON_REJECT_DUPLICATES and the depth check, at several times the speed */
json_t *zt_json_parse(const char *text, size_t len, zt_err *e)
{
	return zt_json_parse_fast(text, len, e);
}

/* ---- positions: node pointer -> line, column (open addressing) ---- */

struct posent {
	const json_t *node;
	int line, col;
};

/* where each key of each mapping was written */
struct keypos {
	const json_t *obj;
	char *key;
	int line, col;
	struct keypos *next;
};

#define KEY_BUCKETS 4096

struct zt_docpos {
	struct posent *v;
	size_t cap, n;
	struct keypos **keys; /* KEY_BUCKETS chains, allocated on first use */
	zt_arena *arena;      /* the keypos entries and their key copies */
};

static size_t key_bucket(const json_t *obj, const char *key)
{
	uintptr_t x = (uintptr_t)obj * 31 + (uintptr_t)zt_hash(key, strlen(key));

	return (size_t)(x ^ (x >> 13)) % KEY_BUCKETS;
}

static int keypos_put(zt_docpos *p, const json_t *obj, const char *key, int line, int col)
{
	struct keypos *k;
	size_t b;

	if (!p->keys && (!(p->keys = calloc(KEY_BUCKETS, sizeof *p->keys)) ||
			 !(p->arena = zt_arena_new(1u << 20))))
		return -1;
	if (!(k = zt_arena_alloc(p->arena, sizeof *k)) ||
	    !(k->key = zt_arena_strndup(p->arena, key, strlen(key))))
		return -1;
	b = key_bucket(obj, key);
	k->obj = obj;
	k->line = line;
	k->col = col;
	k->next = p->keys[b];
	p->keys[b] = k;
	return 0;
}

int zt_docpos_key_get(const zt_docpos *p, const json_t *obj, const char *key, int *line, int *col)
{
	if (!p || !p->keys)
		return -1;
	for (const struct keypos *k = p->keys[key_bucket(obj, key)]; k; k = k->next)
		if (k->obj == obj && strcmp(k->key, key) == 0) {
			*line = k->line;
			*col = k->col;
			return 0;
		}
	return -1;
}

static size_t pos_hash(const json_t *node, size_t cap)
{
	uint64_t x = (uint64_t)(uintptr_t)node;

	/* a full 64-bit mix: heap pointers differ mostly in a few middle bits */
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdull;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ull;
	x ^= x >> 33;
	return (size_t)x & (cap - 1);
}

static int pos_put(zt_docpos *p, const json_t *node, int line, int col)
{
	if (p->n * 2 >= p->cap) {
		size_t ncap = p->cap ? p->cap * 2 : 256;
		struct posent *nv = calloc(ncap, sizeof *nv);

		if (!nv)
			return -1;
		for (size_t i = 0; i < p->cap; i++) {
			if (!p->v[i].node)
				continue;
			size_t h = pos_hash(p->v[i].node, ncap);
			while (nv[h].node)
				h = (h + 1) & (ncap - 1);
			nv[h] = p->v[i];
		}
		free(p->v);
		p->v = nv;
		p->cap = ncap;
	}
	size_t h = pos_hash(node, p->cap);
	while (p->v[h].node && p->v[h].node != node)
		h = (h + 1) & (p->cap - 1);
	if (!p->v[h].node)
		p->n++;
	p->v[h] = (struct posent){ node, line, col };
	return 0;
}

int zt_docpos_get(const zt_docpos *p, const json_t *node, int *line, int *col)
{
	if (!p || !p->cap || !node)
		return -1;
	for (size_t h = pos_hash(node, p->cap); p->v[h].node; h = (h + 1) & (p->cap - 1)) {
		if (p->v[h].node == node) {
			*line = p->v[h].line;
			*col = p->v[h].col;
			return 0;
		}
	}
	return -1;
}

void zt_docpos_free(zt_docpos *p)
{
	if (!p)
		return;
	zt_arena_free(p->arena);
	free(p->keys);
	free(p->v);
	free(p);
}

struct frame {
	json_t *node; /* array or object */
	char *key;    /* pending key while an object waits for its value */
};

struct yparse {
	struct frame st[ZT_DOC_MAX_DEPTH + 1];
	int depth;
	json_t *docs;
	zt_docpos *pos; /* NULL: positions not wanted */
	zt_err *e;
};

static int ci_eq(const char *a, size_t alen, const char *b)
{
	return alen == strlen(b) && strncmp(a, b, alen) == 0;
}

/* A plain scalar keeps the JSON type it spells; quoted ones stay strings. */
static json_t *scalar_value(const yaml_event_t *ev)
{
	const char *s = (const char *)ev->data.scalar.value;
	size_t n = ev->data.scalar.length;

	if (ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE) {
		if (n == 0 || ci_eq(s, n, "~") || ci_eq(s, n, "null") ||
		    ci_eq(s, n, "Null") || ci_eq(s, n, "NULL"))
			return json_null();
		if (ci_eq(s, n, "true") || ci_eq(s, n, "True") || ci_eq(s, n, "TRUE"))
			return json_true();
		if (ci_eq(s, n, "false") || ci_eq(s, n, "False") ||
		    ci_eq(s, n, "FALSE"))
			return json_false();
		size_t i = (s[0] == '-' || s[0] == '+') ? 1 : 0;
		if (i < n && n - i <= 18) {
			size_t j = i;
			while (j < n && s[j] >= '0' && s[j] <= '9')
				j++;
			if (j == n) {
				/* at most 18 digits: fits in int64 without overflow */
				long long val = 0;
				for (j = i; j < n; j++)
					val = val * 10 + (s[j] - '0');
				return json_integer(s[0] == '-' ? -val : val);
			}
		}
	}
	return json_stringn(s, n);
}

/* Adds v (a new reference) to the container on top of the stack, or as a
 * document root. Steals v. */
static int attach(struct yparse *p, json_t *v, const yaml_event_t *ev)
{
	struct frame *f;
	int r = 0;

	if (!v)
		return zt_err_set(p->e, ZT_EPARSE,
				  "YAML line %zu: a value is not valid UTF-8",
				  ev->start_mark.line + 1);
	if (p->pos && v != json_true() && v != json_false() && v != json_null() &&
	    pos_put(p->pos, v, (int)ev->start_mark.line + 1, (int)ev->start_mark.column + 1) != 0) {
		json_decref(v);
		return zt_err_set(p->e, ZT_ENOMEM, "out of memory");
	}
	if (p->depth == 0) {
		json_array_append_new(p->docs, v);
		return 0;
	}
	f = &p->st[p->depth - 1];
	if (json_is_array(f->node)) {
		json_array_append_new(f->node, v);
		return 0;
	}
	if (!f->key) {
		json_decref(v);
		return zt_err_set(p->e, ZT_EPARSE,
				  "YAML line %zu: a mapping key must be a plain scalar, not a mapping or list",
				  ev->start_mark.line + 1);
	}
	if (json_object_get(f->node, f->key)) {
		r = zt_err_set(p->e, ZT_EPARSE,
			       "YAML line %zu: duplicate key \"%.100s\"; each key may appear once",
			       ev->start_mark.line + 1, f->key);
		json_decref(v);
	} else {
		json_object_set_new(f->node, f->key, v);
	}
	free(f->key);
	f->key = NULL;
	return r;
}

static int on_scalar(struct yparse *p, const yaml_event_t *ev)
{
	struct frame *f = p->depth ? &p->st[p->depth - 1] : NULL;
	const char *s = (const char *)ev->data.scalar.value;
	size_t n = ev->data.scalar.length;

	if (memchr(s, '\0', n))
		return zt_err_set(p->e, ZT_EPARSE,
				  "YAML line %zu: a value contains a NUL character",
				  ev->start_mark.line + 1);
	if (f && json_is_object(f->node) && !f->key) {
		/* a key: check it is valid UTF-8 the cheap way, through jansson */
		json_t *probe = json_stringn(s, n);

		if (!probe)
			return zt_err_set(p->e, ZT_EPARSE,
					  "YAML line %zu: a key is not valid UTF-8",
					  ev->start_mark.line + 1);
		json_decref(probe);
		f->key = strndup(s, n);
		if (!f->key || (p->pos && keypos_put(p->pos, f->node, f->key,
						    (int)ev->start_mark.line + 1,
						    (int)ev->start_mark.column + 1) != 0))
			return zt_err_set(p->e, ZT_ENOMEM, "out of memory");
		return 0;
	}
	return attach(p, scalar_value(ev), ev);
}

static int on_start(struct yparse *p, const yaml_event_t *ev, int is_map)
{
	json_t *c;
	int r;

	if (p->depth >= ZT_DOC_MAX_DEPTH)
		return zt_err_set(p->e, ZT_ELIMIT,
				  "YAML line %zu: nesting deeper than %d levels",
				  ev->start_mark.line + 1, ZT_DOC_MAX_DEPTH);
	c = is_map ? json_object() : json_array();
	if (!c)
		return zt_err_set(p->e, ZT_ENOMEM, "out of memory");
	json_incref(c); /* one reference for the parent, one for the stack */
	if ((r = attach(p, c, ev)) != 0) {
		json_decref(c);
		return r;
	}
	p->st[p->depth].node = c;
	p->st[p->depth].key = NULL;
	p->depth++;
	return 0;
}

static void on_end(struct yparse *p)
{
	if (p->depth == 0)
		return;
	p->depth--;
	free(p->st[p->depth].key);
	json_decref(p->st[p->depth].node);
}

json_t *zt_yaml_parse(const char *text, size_t len, size_t max_docs, zt_err *e)
{
	return zt_yaml_parse_pos(text, len, max_docs, NULL, e);
}

json_t *zt_yaml_parse_pos(const char *text, size_t len, size_t max_docs, zt_docpos **pos,
			  zt_err *e)
{
	yaml_parser_t parser;
	yaml_event_t ev;
	struct yparse p = { .depth = 0, .e = e };

	if (pos) {
		*pos = NULL;
		if (!(p.pos = calloc(1, sizeof *p.pos))) {
			zt_err_set(e, ZT_ENOMEM, "out of memory");
			return NULL;
		}
	}
	int done = 0, r = 0;
	size_t ndocs = 0;

	p.docs = json_array();
	if (!p.docs || !yaml_parser_initialize(&parser)) {
		json_decref(p.docs);
		zt_docpos_free(p.pos);
		zt_err_set(e, ZT_ENOMEM, "out of memory");
		return NULL;
	}
	yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
	while (!done && r == 0) {
		if (!yaml_parser_parse(&parser, &ev)) {
			r = zt_err_set(e, ZT_EPARSE, "invalid YAML at line %zu, column %zu: %s",
				       parser.problem_mark.line + 1,
				       parser.problem_mark.column + 1,
				       parser.problem ? parser.problem : "syntax error");
			break;
		}
		switch (ev.type) {
		case YAML_STREAM_END_EVENT:
			done = 1;
			break;
		case YAML_DOCUMENT_START_EVENT:
			if (++ndocs > max_docs)
				r = zt_err_set(e, ZT_ELIMIT,
					       "YAML has more than %zu documents", max_docs);
			break;
		case YAML_ALIAS_EVENT:
			r = zt_err_set(e, ZT_EPARSE,
				       "YAML line %zu: aliases (*name) are not accepted; write the value out",
				       ev.start_mark.line + 1);
			break;
		case YAML_SCALAR_EVENT:
		case YAML_SEQUENCE_START_EVENT:
		case YAML_MAPPING_START_EVENT: {
			const yaml_char_t *anchor, *tag;

			if (ev.type == YAML_SCALAR_EVENT) {
				anchor = ev.data.scalar.anchor;
				tag = ev.data.scalar.tag;
			} else if (ev.type == YAML_SEQUENCE_START_EVENT) {
				anchor = ev.data.sequence_start.anchor;
				tag = ev.data.sequence_start.tag;
			} else {
				anchor = ev.data.mapping_start.anchor;
				tag = ev.data.mapping_start.tag;
			}
			if (anchor) {
				r = zt_err_set(e, ZT_EPARSE,
					       "YAML line %zu: anchors (&name) are not accepted",
					       ev.start_mark.line + 1);
				break;
			}
			/* an explicit tag (!!python/object, !!map...) asks for a
			 * type we do not give; implicit ones are plain YAML */
			if (tag && (ev.type == YAML_SCALAR_EVENT
					    ? !ev.data.scalar.quoted_implicit &&
						      !ev.data.scalar.plain_implicit
				    : ev.type == YAML_SEQUENCE_START_EVENT
					    ? !ev.data.sequence_start.implicit
					    : !ev.data.mapping_start.implicit)) {
				r = zt_err_set(e, ZT_EPARSE,
					       "YAML line %zu: tags (!tag) are not accepted",
					       ev.start_mark.line + 1);
				break;
			}
			if (ev.type == YAML_SCALAR_EVENT)
				r = on_scalar(&p, &ev);
			else
				r = on_start(&p, &ev, ev.type == YAML_MAPPING_START_EVENT);
			break;
		}
		case YAML_SEQUENCE_END_EVENT:
		case YAML_MAPPING_END_EVENT:
			on_end(&p);
			break;
		default:
			break;
		}
		yaml_event_delete(&ev);
	}
	while (p.depth > 0)
		on_end(&p);
	yaml_parser_delete(&parser);
	if (r != 0) {
		json_decref(p.docs);
		zt_docpos_free(p.pos);
		return NULL;
	}
	if (pos)
		*pos = p.pos;
	return p.docs;
}

json_t *zt_doc_load_file(const char *path, size_t max_bytes, zt_err *e)
{
	size_t n = strlen(path);
	zt_buf b;
	json_t *v;

	if (zt_file_read(path, max_bytes, &b, e) != 0)
		return NULL;
	if (n >= 5 && strcmp(path + n - 5, ".json") == 0) {
		json_t *one = zt_json_parse((const char *)b.p, b.len, e);

		v = one ? json_array() : NULL;
		if (v)
			json_array_append_new(v, one);
	} else {
		v = zt_yaml_parse((const char *)b.p, b.len, 1024, e);
	}
	zt_buf_free(&b, 0);
	if (!v)
		zt_err_wrap(e, "%s", path);
	return v;
}

int zt_doc_only_keys(json_t *obj, const char *const *keys, const char *where, const char *doc,
		     zt_err *e)
{
	const char *k;
	json_t *v;

	if (!json_is_object(obj))
		return zt_err_set(e, ZT_EINVAL, "%s must be a mapping", where);
	json_object_foreach(obj, k, v) {
		size_t i;

		for (i = 0; keys[i] && strcmp(keys[i], k) != 0; i++)
			;
		if (!keys[i])
			return zt_err_set(e, ZT_EINVAL, "unknown field \"%.100s\" in %s (see %s)", k, where,
					  doc);
	}
	return 0;
}

int zt_doc_get_str(json_t *obj, const char *key, const char **out, int required,
		   const char *where, zt_err *e)
{
	json_t *v = json_object_get(obj, key);

	*out = NULL;
	if (!v) {
		if (required)
			return zt_err_set(e, ZT_EINVAL, "%s.%s is required", where, key);
		return 0;
	}
	if (!json_is_string(v) || json_string_length(v) == 0)
		return zt_err_set(e, ZT_EINVAL, "%s.%s must be a non-empty string", where, key);
	*out = json_string_value(v);
	return 0;
}
