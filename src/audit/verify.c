/*
 * Offline verification of a log directory: everything is recomputed from
 * the entries and checked against what is stored and what was signed.
 *
 * One sequential pass reads the entries, the index and the tree together.
 * Every entry's offset must be where the index says, every entry must hash
 * to the leaf the tree stored, and every tree node must be the hash of its
 * children. Those catch an edited file; they cannot catch an attacker who
 * rewrote all three files consistently. The signed checkpoints do: the
 * root recomputed at each checkpoint's size must be the root it signed, so
 * a rewrite shows up between the last checkpoint that matches and the
 * first that does not.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "audit/audit.h"
#include "audit/audit_int.h"

#define READ_CHUNK (4u << 20)
#define PROGRESS_EVERY 65536

/* A forward-only buffered reader over one file. */
typedef struct reader {
	int fd;
	uint8_t *buf;
	size_t pos, len;
	uint64_t off; /* file offset of buf[pos] */
	int eof;
} reader;

static int reader_fill(reader *rd, size_t need)
{
	if (rd->len - rd->pos >= need)
		return 0;
	memmove(rd->buf, rd->buf + rd->pos, rd->len - rd->pos);
	rd->len -= rd->pos;
	rd->pos = 0;
	while (!rd->eof && rd->len < need) {
		ssize_t n = read(rd->fd, rd->buf + rd->len, READ_CHUNK - rd->len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		if (n == 0)
			rd->eof = 1;
		rd->len += (size_t)n;
	}
	return rd->len >= need ? 0 : -1;
}

/* Like reader_fill, but settles for what the file has: the bytes available. */
static size_t reader_fill_upto(reader *rd, size_t want)
{
	if (reader_fill(rd, want) != 0 && rd->len - rd->pos < want)
		return rd->len - rd->pos;
	return want;
}

static const uint8_t *reader_take(reader *rd, size_t n)
{
	const uint8_t *p;

	if (reader_fill(rd, n) != 0)
		return NULL;
	p = rd->buf + rd->pos;
	rd->pos += n;
	rd->off += n;
	return p;
}

/* A checkpoint to check against the recomputed tree. */
typedef struct target {
	uint64_t size;
	uint8_t root[ZT_HASH_LEN];
	char label[96];
	int given; /* handed in by the auditor, not stored in the log */
} target;

typedef struct vstate {
	reader tree;
	int compare;           /* stored nodes are durable here: compare them */
	int bad;               /* first stored node that differs */
	unsigned bad_level;
	uint64_t bad_index;
} vstate;

static void check_node(void *ctx, unsigned level, uint64_t index, const uint8_t h[ZT_HASH_LEN])
{
	vstate *v = ctx;

	if (!v->compare || v->bad)
		return;
	const uint8_t *p = reader_take(&v->tree, ZT_HASH_LEN);

	if (!p || memcmp(p, h, ZT_HASH_LEN) != 0) {
		v->bad = p ? 1 : 2;
		v->bad_level = level;
		v->bad_index = index;
	}
}

/* A failure below is a verification failure of the log, whatever the cause. */
static void retag(zt_err *e, const char *rule)
{
	if (!e)
		return;
	e->code = ZT_EVERIFY;
	snprintf(e->rule, sizeof e->rule, "%s", rule);
}

static int cmp_target(const void *a, const void *b)
{
	const target *x = a, *y = b;

	return x->size < y->size ? -1 : x->size > y->size;
}

static int open_in(const char *dir, const char *name, int *fd, zt_err *e)
{
	char p[ZT_AUDIT_PATH_MAX + 16];
	int r;

	if ((r = zt_path_join(p, sizeof p, e, "%s/%s", dir, name)) != 0)
		return r;
	*fd = open(p, O_RDONLY | O_CLOEXEC);
	if (*fd < 0)
		return zt_err_rule(e, ZT_EIO, "damaged", "cannot open %s: %s", p, strerror(errno));
	return 0;
}

/* Reads and checks every stored checkpoint; appends them to *t. */
static int load_stored(int fd, const zt_note_key *key, uint64_t log_size, target **t, size_t *nt,
		       size_t *cap, zt_err *e)
{
	uint64_t off = 0, prev = 0;
	uint8_t len[4];
	char *note = malloc(ZT_NOTE_MAX);
	int r = 0;

	if (!note)
		return zt_err_set(e, ZT_ENOMEM, "out of memory");
	for (size_t i = 1;; i++) {
		ssize_t got = pread(fd, len, 4, (off_t)off);

		if (got == 0)
			break;
		uint32_t n = (uint32_t)len[0] << 24 | (uint32_t)len[1] << 16 |
			     (uint32_t)len[2] << 8 | len[3];

		if (got != 4 || n == 0 || n > ZT_NOTE_MAX ||
		    zt_audit_pread_all(fd, note, n, off + 4) != 0) {
			r = zt_err_rule(e, ZT_EVERIFY, "damaged",
					"stored checkpoint %zu (byte %llu of the checkpoints file) is "
					"cut short or its length is damaged",
					i, (unsigned long long)off);
			goto out;
		}
		if (*nt == *cap) {
			size_t nc = *cap ? *cap * 2 : 16;
			target *p = realloc(*t, nc * sizeof *p);

			if (!p) {
				r = zt_err_set(e, ZT_ENOMEM, "out of memory");
				goto out;
			}
			*t = p;
			*cap = nc;
		}
		target *c = &(*t)[*nt];
		zt_checkpoint cp;

		memset(c, 0, sizeof *c);
		if ((r = zt_checkpoint_open(key, note, n, &cp, e)) != 0) {
			char claim[64] = "";

			/* name the size it claims, read without trusting it */
			if (zt_checkpoint_peek(note, n, &cp) == 0)
				snprintf(claim, sizeof claim, ", claiming size %llu",
					 (unsigned long long)cp.size);
			retag(e, "checkpoint-signature");
			r = zt_err_wrap(e, "stored checkpoint %zu (byte %llu of the checkpoints file%s) "
					   "was altered or replaced",
					i, (unsigned long long)off, claim);
			goto out;
		}
		if (cp.size < prev) {
			r = zt_err_rule(e, ZT_EVERIFY, "checkpoint-order",
					"stored checkpoint %zu signs %llu entries, fewer than the one "
					"before it (%llu): the log went backwards",
					i, (unsigned long long)cp.size, (unsigned long long)prev);
			goto out;
		}
		if (cp.size > log_size) {
			r = zt_err_rule(e, ZT_EVERIFY, "truncated",
					"stored checkpoint %zu signs %llu entries but the log's head "
					"names %llu: entries %llu to %llu were removed, or the head was "
					"put back to an older one",
					i, (unsigned long long)cp.size, (unsigned long long)log_size,
					(unsigned long long)log_size, (unsigned long long)cp.size - 1);
			goto out;
		}
		prev = cp.size;
		c->size = cp.size;
		memcpy(c->root, cp.root, ZT_HASH_LEN);
		snprintf(c->label, sizeof c->label, "stored checkpoint %zu (size %llu)", i,
			 (unsigned long long)cp.size);
		(*nt)++;
		off += 4 + n;
	}
out:
	free(note);
	return r;
}

static int load_key(const char *dir, zt_note_key **out, zt_err *e)
{
	char p[ZT_AUDIT_PATH_MAX + 16];
	zt_buf b;
	int r;

	zt_buf_init(&b, 4096);
	if ((r = zt_path_join(p, sizeof p, e, "%s/log.pub", dir)) != 0 ||
	    (r = zt_file_read(p, 4096, &b, e)) != 0)
		goto out;
	if (!(*out = zt_note_verifier_parse((const char *)b.p, b.len, e)))
		r = zt_err_wrap(e, "%s", p);
out:
	zt_buf_free(&b, 0);
	return r;
}

int zt_audit_verify(const char *dir, const zt_note_key *key, const char *const *old_notes,
		    const size_t *old_lens, size_t n_old, zt_audit_progress_fn progress,
		    void *ctx, zt_audit_report *report, zt_err *e)
{
	int fd[ZT_AUDIT_NFILES] = {-1, -1, -1, -1, -1};
	static const char *const names[ZT_AUDIT_NFILES] = {"entries", "index", "tree", "head",
							   "checkpoints"};
	zt_note_key *own_key = NULL;
	target *t = NULL;
	size_t nt = 0, cap = 0, next = 0;
	reader ent = {0}, idx = {0};
	vstate v = {0};
	zt_audit_head h;
	zt_merkle_range range;
	uint64_t last_ok = 0;
	int r;

	memset(report, 0, sizeof *report);
	for (int i = 0; i < ZT_AUDIT_NFILES; i++)
		if ((r = open_in(dir, names[i], &fd[i], e)) != 0)
			goto out;
	if (!key) {
		if ((r = load_key(dir, &own_key, e)) != 0)
			goto out;
		key = own_key;
	}
	if ((r = zt_audit_head_read(fd[ZT_AUDIT_HEAD], &h, e)) != 0)
		goto out;
	if ((r = load_stored(fd[ZT_AUDIT_CHECKPOINTS], key, h.size, &t, &nt, &cap, e)) != 0)
		goto out;
	for (size_t i = 0; i < n_old; i++) {
		zt_checkpoint cp;

		if ((r = zt_checkpoint_open(key, old_notes[i], old_lens[i], &cp, e)) != 0) {
			r = zt_err_wrap(e, "given checkpoint %zu", i + 1);
			goto out;
		}
		if (cp.size > h.size) {
			r = zt_err_rule(e, ZT_EVERIFY, "truncated",
					"given checkpoint %zu signs %llu entries but the log has %llu: "
					"entries %llu to %llu were removed",
					i + 1, (unsigned long long)cp.size, (unsigned long long)h.size,
					(unsigned long long)h.size, (unsigned long long)cp.size - 1);
			goto out;
		}
		if (nt == cap) {
			size_t nc = cap ? cap * 2 : 16;
			target *p = realloc(t, nc * sizeof *p);

			if (!p) {
				r = zt_err_set(e, ZT_ENOMEM, "out of memory");
				goto out;
			}
			t = p;
			cap = nc;
		}
		memset(&t[nt], 0, sizeof t[nt]);
		t[nt].size = cp.size;
		memcpy(t[nt].root, cp.root, ZT_HASH_LEN);
		t[nt].given = 1;
		snprintf(t[nt].label, sizeof t[nt].label, "given checkpoint %zu (size %llu)", i + 1,
			 (unsigned long long)cp.size);
		nt++;
	}
	if (nt > 1)
		qsort(t, nt, sizeof *t, cmp_target);

	ent.fd = fd[ZT_AUDIT_ENTRIES];
	idx.fd = fd[ZT_AUDIT_INDEX];
	v.tree.fd = fd[ZT_AUDIT_TREE];
	if (!(ent.buf = malloc(READ_CHUNK)) || !(idx.buf = malloc(READ_CHUNK)) ||
	    !(v.tree.buf = malloc(READ_CHUNK))) {
		r = zt_err_set(e, ZT_ENOMEM, "out of memory");
		goto out;
	}
	zt_merkle_range_init(&range);
	for (uint64_t i = 0; i <= h.size; i++) {
		uint8_t root[ZT_HASH_LEN];

		/* every checkpoint of this size must sign the root recomputed so far */
		for (; next < nt && t[next].size == i; next++) {
			zt_merkle_range_root(&range, root);
			if (memcmp(root, t[next].root, ZT_HASH_LEN) != 0) {
				r = zt_err_rule(e, ZT_EVERIFY,
						t[next].given ? "inconsistent" : "checkpoint-root",
						"%s does not match the entries: one of entries %llu to "
						"%llu was altered, removed, inserted or reordered since "
						"it was signed%s",
						t[next].label, (unsigned long long)last_ok,
						(unsigned long long)i - 1,
						t[next].given ? " (the log was rewritten after this "
								"checkpoint was handed out)"
							      : "");
				goto out;
			}
			last_ok = i;
			if (t[next].given)
				report->given++;
			else
				report->checkpoints++;
		}
		if (i == h.size)
			break;
		/*
		 * Index and tree are durable up to the head's `synced`; past it a
		 * crashed writer's next open rebuilds them from the entries, so
		 * only the entries and the roots count there.
		 */
		v.compare = i < h.synced;
		if (v.compare) {
			const uint8_t *ip = reader_take(&idx, 8);

			if (!ip) {
				r = zt_err_rule(e, ZT_EVERIFY, "damaged",
						"the index file ends at entry %llu but the log has %llu",
						(unsigned long long)i, (unsigned long long)h.size);
				goto out;
			}
			if (zt_audit_get64(ip) != ent.off) {
				r = zt_err_rule(e, ZT_EVERIFY, "index",
						"entry %llu: the index puts it at byte %llu of the "
						"entries file but it starts at byte %llu: an entry at or "
						"before %llu was removed, inserted or resized",
						(unsigned long long)i,
						(unsigned long long)zt_audit_get64(ip),
						(unsigned long long)ent.off, (unsigned long long)i);
				goto out;
			}
		}
		/* the entry: up to its newline, at most ZT_AUDIT_ENTRY_MAX bytes */
		size_t want = ZT_AUDIT_ENTRY_MAX + 1;

		if (h.bytes - ent.off < want)
			want = (size_t)(h.bytes - ent.off);
		if (want > 0)
			want = reader_fill_upto(&ent, want);
		if (want == 0) {
			r = zt_err_rule(e, ZT_EVERIFY, "damaged",
					"the entries file ends before entry %llu", (unsigned long long)i);
			goto out;
		}
		const uint8_t *p = ent.buf + ent.pos, *nl = memchr(p, '\n', want);

		if (!nl && want < ZT_AUDIT_ENTRY_MAX + 1 && ent.off + want < h.bytes) {
			r = zt_err_rule(e, ZT_EVERIFY, "damaged",
					"the entries file ends inside entry %llu, before the %llu bytes "
					"its head names: entries were removed or the file was cut",
					(unsigned long long)i, (unsigned long long)h.bytes);
			goto out;
		}
		if (!nl || nl == p || p[0] != '{' || nl[-1] != '}') {
			r = zt_err_rule(e, ZT_EVERIFY, "entry-altered",
					"entry %llu (byte %llu of the entries file) is not one line of "
					"JSON: it was altered or the file is damaged",
					(unsigned long long)i, (unsigned long long)ent.off);
			goto out;
		}
		uint8_t leaf[ZT_HASH_LEN];
		size_t len = (size_t)(nl - p);

		zt_merkle_leaf_hash(p, len, leaf);
		reader_take(&ent, len + 1);
		zt_merkle_range_push(&range, leaf, check_node, &v);
		if (v.bad) {
			if (v.bad == 2)
				r = zt_err_rule(e, ZT_EVERIFY, "damaged",
						"the tree file ends before entry %llu",
						(unsigned long long)i);
			else if (v.bad_level == 0)
				r = zt_err_rule(e, ZT_EVERIFY, "entry-altered",
						"entry %llu does not hash to the leaf the tree stored for "
						"it: the entry (or the tree file) was altered",
						(unsigned long long)i);
			else
				r = zt_err_rule(e, ZT_EVERIFY, "tree",
						"the tree file's node over entries %llu to %llu does not "
						"match those entries: the tree file was altered",
						(unsigned long long)(v.bad_index << v.bad_level),
						(unsigned long long)(((v.bad_index + 1) << v.bad_level) - 1));
			goto out;
		}
		report->entries = i + 1;
		if (progress && (i + 1) % PROGRESS_EVERY == 0)
			progress(ctx, i + 1, h.size);
	}
	if (progress)
		progress(ctx, h.size, h.size);
	if (ent.off != h.bytes) {
		r = zt_err_rule(e, ZT_EVERIFY, "damaged",
				"the entries end at byte %llu but the head says %llu",
				(unsigned long long)ent.off, (unsigned long long)h.bytes);
		goto out;
	}
	uint8_t root[ZT_HASH_LEN];

	zt_merkle_range_root(&range, root);
	if (memcmp(root, h.root, ZT_HASH_LEN) != 0) {
		r = zt_err_rule(e, ZT_EVERIFY, "damaged",
				"the head's root does not match the entries: the head was altered");
		goto out;
	}
	/*
	 * Each given checkpoint is a prefix of the log as it is now (RFC 9162
	 * 2.1.4): the scan above recomputed the root of the entries at its
	 * size and found the one it signs. (A consistency proof from the tree
	 * file would prove no more, and after a crash the tree may lag behind
	 * the entries until the writer's next open rebuilds it.)
	 */
	r = 0;
out:
	for (int i = 0; i < ZT_AUDIT_NFILES; i++)
		if (fd[i] >= 0)
			close(fd[i]);
	free(ent.buf);
	free(idx.buf);
	free(v.tree.buf);
	free(t);
	zt_note_key_free(own_key);
	return r;
}
