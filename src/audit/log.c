/*
 * The audit log on disk, and group commit.
 *
 * A log is a directory (docs/audit.md "Files"):
 *   entries      the entries, one JSON line each, in log order
 *   index        the offset of each entry in `entries`, 8 bytes big-endian
 *   tree         every complete Merkle node, 32 bytes each, in post-order
 *   head         the last durable state (size, entries bytes, root) in two
 *                checksummed slots written alternately, so a torn write of
 *                one leaves the other
 *   checkpoints  every signed checkpoint: 4-byte big-endian length, note
 *   checkpoint   the latest signed checkpoint, as text
 *   log.key, log.pub, hmac.key, lock
 *
 * The head is the commit record. A batch is written to entries, index and
 * tree, those are fdatasync'ed, and only then the head names the new size
 * and is fdatasync'ed itself; writers are acknowledged after that. After a
 * crash, whatever lies beyond the head was never acknowledged and is cut
 * when the log is next opened for writing.
 *
 * Group commit: writers queue entries under a mutex and wait; one commit
 * thread takes everything queued, writes it with one write per file and one
 * fdatasync per file, and wakes every writer of the batch. While it waits
 * for the disk, the next batch gathers.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "audit/audit.h"
#include "audit/audit_int.h"
#include "crypto/crypto.h"

#define PENDING_MAX (32u << 20) /* queued bytes before writers wait for the disk */

struct zt_audit {
	char dir[ZT_AUDIT_PATH_MAX];
	int mode;
	int fd[ZT_AUDIT_NFILES];
	int fd_lock;
	char origin[256];
	uint8_t hmac[ZT_HASH_LEN];
	int have_hmac;
	zt_note_key *signer;

	pthread_mutex_t mu;
	pthread_mutex_t cp_mu; /* one checkpoint written at a time */
	pthread_cond_t durable_cv, work_cv, space_cv;
	zt_audit_head head;  /* the durable state */
	uint64_t next_index; /* durable + committing + queued */
	zt_buf queue;        /* queued entries, each with its '\n' */
	uint8_t (*queue_leaf)[ZT_HASH_LEN];
	size_t queue_n, queue_cap;
	int failed, stop, thread_started;
	zt_err fail_err;
	pthread_t thread;

	/* the commit thread's own */
	zt_merkle_range range;
	double last_sync;
	zt_buf batch;
	uint8_t (*batch_leaf)[ZT_HASH_LEN];
	size_t batch_cap;
	zt_buf scratch;
};

static double mono_now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static const char *const file_names[ZT_AUDIT_NFILES] = {"entries", "index", "tree", "head",
						       "checkpoints"};

/* ---- small I/O helpers ---------------------------------------------------- */

int zt_audit_pread_all(int fd, void *buf, size_t n, uint64_t off)
{
	uint8_t *p = buf;

	while (n > 0) {
		ssize_t r = pread(fd, p, n, (off_t)off);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		p += r;
		n -= (size_t)r;
		off += (uint64_t)r;
	}
	return 0;
}

static int pwrite_all(int fd, const void *buf, size_t n, uint64_t off)
{
	const uint8_t *p = buf;

	while (n > 0) {
		ssize_t r = pwrite(fd, p, n, (off_t)off);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		p += r;
		n -= (size_t)r;
		off += (uint64_t)r;
	}
	return 0;
}

void zt_audit_put64(uint8_t *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--) {
		p[i] = (uint8_t)v;
		v >>= 8;
	}
}

uint64_t zt_audit_get64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 0; i < 8; i++)
		v = v << 8 | p[i];
	return v;
}

/* ---- head ------------------------------------------------------------------- */

/*
 * Slot layout: "ZTAUDIT1", seq, size, bytes, synced, synced_bytes (8 bytes
 * each, big-endian), root, then the SHA-256 of those 80 bytes.
 */
void zt_audit_head_encode(const zt_audit_head *h, uint8_t slot[ZT_AUDIT_HEAD_SLOT])
{
	memset(slot, 0, ZT_AUDIT_HEAD_SLOT);
	memcpy(slot, ZT_AUDIT_HEAD_MAGIC, 8);
	zt_audit_put64(slot + 8, h->seq);
	zt_audit_put64(slot + 16, h->size);
	zt_audit_put64(slot + 24, h->bytes);
	zt_audit_put64(slot + 32, h->synced);
	zt_audit_put64(slot + 40, h->synced_bytes);
	memcpy(slot + 48, h->root, ZT_HASH_LEN);
	zt_sha256(slot, 80, slot + 80);
}

static int head_decode(const uint8_t *slot, zt_audit_head *h)
{
	uint8_t sum[32];

	if (memcmp(slot, ZT_AUDIT_HEAD_MAGIC, 8) != 0)
		return -1;
	zt_sha256(slot, 80, sum);
	if (memcmp(sum, slot + 80, 32) != 0)
		return -1;
	h->seq = zt_audit_get64(slot + 8);
	h->size = zt_audit_get64(slot + 16);
	h->bytes = zt_audit_get64(slot + 24);
	h->synced = zt_audit_get64(slot + 32);
	h->synced_bytes = zt_audit_get64(slot + 40);
	memcpy(h->root, slot + 48, ZT_HASH_LEN);
	if (h->synced > h->size || h->synced_bytes > h->bytes)
		return -1;
	return 0;
}

int zt_audit_head_read(int fd, zt_audit_head *h, zt_err *e)
{
	uint8_t buf[2 * ZT_AUDIT_HEAD_SLOT];
	zt_audit_head s[2];
	ssize_t n;
	int ok[2];

	memset(h, 0, sizeof *h);
	do
		n = pread(fd, buf, sizeof buf, 0);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return zt_err_set(e, ZT_EIO, "cannot read the log's head: %s", strerror(errno));
	if (n == 0)
		return zt_err_rule(e, ZT_EVERIFY, "damaged",
				   "the log's head file is empty (zt audit init writes one); the log "
				   "cannot be trusted as it is: restore it from a backup");
	for (int i = 0; i < 2; i++)
		ok[i] = (size_t)n >= (size_t)(i + 1) * ZT_AUDIT_HEAD_SLOT &&
			head_decode(buf + i * ZT_AUDIT_HEAD_SLOT, &s[i]) == 0;
	if (!ok[0] && !ok[1])
		return zt_err_rule(e, ZT_EVERIFY, "damaged",
				   "the log's head is damaged (neither copy checks out); the log "
				   "cannot be trusted as it is: run zt audit verify and restore from "
				   "a backup");
	*h = ok[0] && (!ok[1] || s[0].seq > s[1].seq) ? s[0] : s[1];
	return 0;
}

/* ---- opening ------------------------------------------------------------------- */

static int node_from_fd(void *ctx, unsigned level, uint64_t index, uint8_t out[ZT_HASH_LEN],
			zt_err *e)
{
	int fd = *(int *)ctx;

	if (zt_audit_pread_all(fd, out, ZT_HASH_LEN, zt_merkle_node_pos(level, index) * ZT_HASH_LEN))
		return zt_err_rule(e, ZT_EIO, "damaged", "cannot read the log's tree file: %s",
				   errno ? strerror(errno) : "it is too short");
	return 0;
}

static int path_of(const zt_audit *a, const char *name, char *out, size_t n, zt_err *e)
{
	return zt_path_join(out, n, e, "%s/%s", a->dir, name);
}

static int load_keys(zt_audit *a, zt_err *e)
{
	char p[ZT_AUDIT_PATH_MAX + 16];
	zt_buf b;
	zt_note_key *pub;
	int r;

	zt_buf_init(&b, 4096);
	if ((r = path_of(a, "log.pub", p, sizeof p, e)) != 0 ||
	    (r = zt_file_read(p, 4096, &b, e)) != 0)
		goto out;
	if (!(pub = zt_note_verifier_parse((const char *)b.p, b.len, e))) {
		r = zt_err_wrap(e, "%s", p);
		goto out;
	}
	snprintf(a->origin, sizeof a->origin, "%s", zt_note_key_name(pub));
	zt_note_key_free(pub);
	zt_buf_free(&b, 1); /* zt_file_read starts a new buffer */
	if ((r = path_of(a, "hmac.key", p, sizeof p, e)) != 0)
		goto out;
	if (zt_file_read(p, 4096, &b, NULL) == 0) {
		zt_buf raw;

		if ((r = zt_unseal_in_place(&b, ZT_SEAL_LABEL_AUDIT_HMAC, e)) != 0) {
			if (a->mode == ZT_AUDIT_WRITE) {
				r = zt_err_wrap(e, "%s", p);
				goto out;
			}
			/* readers need the HMAC key only for search --secret */
			r = 0;
			zt_err_clear(e);
			goto signer;
		}
		const char *t = (const char *)b.p;
		size_t n = b.len;

		while (n > 0 && (t[n - 1] == '\n' || t[n - 1] == ' '))
			n--;
		zt_buf_init(&raw, 64);
		if (zt_base64_decode(t, n, 0, &raw, NULL) != 0 || raw.len != ZT_HASH_LEN) {
			zt_buf_free(&raw, 1);
			r = zt_err_rule(e, ZT_EPARSE, "key-format",
					"%s is not 32 bytes in base64; restore it from a backup", p);
			goto out;
		}
		memcpy(a->hmac, raw.p, ZT_HASH_LEN);
		a->have_hmac = 1;
		zt_buf_free(&raw, 1);
	} else if (a->mode == ZT_AUDIT_WRITE) {
		r = zt_err_set(e, ZT_EIO, "cannot read %s; a writer needs the log's HMAC key", p);
		goto out;
	}
signer:
	if (a->mode == ZT_AUDIT_WRITE) {
		zt_buf_free(&b, 1);
		if ((r = path_of(a, "log.key", p, sizeof p, e)) != 0 ||
		    (r = zt_file_read(p, 4096, &b, e)) != 0)
			goto out;
		if ((r = zt_unseal_in_place(&b, ZT_SEAL_LABEL_AUDIT_SIGNER, e)) != 0) {
			r = zt_err_wrap(e, "%s", p);
			goto out;
		}
		if (!(a->signer = zt_note_signer_parse((const char *)b.p, b.len, e))) {
			r = zt_err_wrap(e, "%s", p);
			goto out;
		}
		if (strcmp(zt_note_key_name(a->signer), a->origin) != 0) {
			r = zt_err_rule(e, ZT_EINVAL, "key-name",
					"log.key is for \"%s\" but log.pub for \"%s\"",
					zt_note_key_name(a->signer), a->origin);
			goto out;
		}
	}
	r = 0;
out:
	zt_buf_free(&b, 1);
	return r;
}

static int file_size(int fd, uint64_t *size)
{
	struct stat st;

	if (fstat(fd, &st) != 0)
		return -1;
	*size = (uint64_t)st.st_size;
	return 0;
}

static int check_last_checkpoint(zt_audit *a, int fd, uint64_t off, size_t len, zt_err *e)
{
	char *note = malloc(len);
	zt_checkpoint c;
	int r = 0;

	if (!note)
		return zt_err_set(e, ZT_ENOMEM, "out of memory");
	if (zt_audit_pread_all(fd, note, len, off) != 0) {
		free(note);
		return zt_err_set(e, ZT_EIO, "cannot read the checkpoints file");
	}
	if (zt_checkpoint_peek(note, len, &c) == 0 && c.size > a->head.size)
		r = zt_err_rule(e, ZT_EVERIFY, "damaged",
				"the log's head names %llu entries but a checkpoint was signed for "
				"%llu: the head was replaced by an older one; run zt audit verify and "
				"restore from a backup",
				(unsigned long long)a->head.size, (unsigned long long)c.size);
	free(note);
	return r;
}

/* A checkpoint record torn by a crash was never published: cut it. */
static int recover_checkpoints(zt_audit *a, int *cut, zt_err *e)
{
	int fd = a->fd[ZT_AUDIT_CHECKPOINTS];
	uint64_t size, off = 0;
	uint8_t len[4];

	if (file_size(fd, &size) != 0)
		return zt_err_set(e, ZT_EIO, "cannot stat the checkpoints file: %s", strerror(errno));
	uint64_t last = 0, last_len = 0;
	int r;

	while (off + 4 <= size) {
		if (zt_audit_pread_all(fd, len, 4, off) != 0)
			return zt_err_set(e, ZT_EIO, "cannot read the checkpoints file");
		uint64_t n = (uint64_t)len[0] << 24 | (uint64_t)len[1] << 16 |
			     (uint64_t)len[2] << 8 | len[3];

		if (n == 0 || n > ZT_NOTE_MAX || off + 4 + n > size)
			break;
		last = off + 4;
		last_len = n;
		off += 4 + n;
	}
	/*
	 * Never cut below a published checkpoint: a head older than the last
	 * checkpoint is not a crash (checkpoints follow durable heads) but a
	 * head put back by someone, and cutting would destroy signed entries.
	 */
	if (last_len && (r = check_last_checkpoint(a, fd, last, (size_t)last_len, e)) != 0)
		return r;
	if (off == size)
		return 0;
	if (ftruncate(fd, (off_t)off) != 0 || fdatasync(fd) != 0)
		return zt_err_set(e, ZT_EIO, "cannot cut the torn tail of the checkpoints file: %s",
				  strerror(errno));
	*cut = 1;
	return 0;
}

static int write_head(zt_audit *a, const zt_audit_head *h)
{
	uint8_t slot[ZT_AUDIT_HEAD_SLOT];

	zt_audit_head_encode(h, slot);
	if (pwrite_all(a->fd[ZT_AUDIT_HEAD], slot, sizeof slot, (h->seq & 1) * ZT_AUDIT_HEAD_SLOT) != 0 ||
	    fdatasync(a->fd[ZT_AUDIT_HEAD]) != 0)
		return -1;
	return 0;
}

struct emit_ctx {
	zt_buf *out;
	int failed;
};

static void emit_node(void *ctx, unsigned level, uint64_t index, const uint8_t h[ZT_HASH_LEN])
{
	struct emit_ctx *c = ctx;

	(void)level;
	(void)index;
	if (zt_buf_append(c->out, h, ZT_HASH_LEN, NULL) != 0)
		c->failed = 1;
}

/*
 * Rebuilds index and tree after `synced` from the entries (writers, after
 * a crash): the head's root must come out, or the entries were damaged.
 */
static int rebuild(zt_audit *a, zt_err *e)
{
	zt_audit_head *h = &a->head;
	uint64_t off = h->synced_bytes, i = h->synced;
	zt_buf line, idx, nodes;
	struct emit_ctx ec = {&nodes, 0};
	uint8_t root[ZT_HASH_LEN];
	int r = 0;

	if (ftruncate(a->fd[ZT_AUDIT_INDEX], (off_t)(h->synced * 8)) != 0 ||
	    ftruncate(a->fd[ZT_AUDIT_TREE],
		      (off_t)(zt_merkle_node_count(h->synced) * ZT_HASH_LEN)) != 0)
		return zt_err_set(e, ZT_EIO, "cannot cut index and tree to rebuild them: %s",
				  strerror(errno));
	if ((r = zt_merkle_range_load(&a->range, h->synced, node_from_fd, &a->fd[ZT_AUDIT_TREE],
				      e)) != 0)
		return r;
	zt_buf_init(&line, ZT_AUDIT_ENTRY_MAX + 1);
	zt_buf_init(&idx, SIZE_MAX / 2);
	zt_buf_init(&nodes, SIZE_MAX / 2);
	while (off < h->bytes) {
		size_t want = ZT_AUDIT_ENTRY_MAX + 1;
		uint8_t b8[8], leaf[ZT_HASH_LEN];

		if (h->bytes - off < want)
			want = (size_t)(h->bytes - off);
		if ((r = zt_buf_reserve(&line, want, e)) != 0)
			goto out;
		if (zt_audit_pread_all(a->fd[ZT_AUDIT_ENTRIES], line.p, want, off) != 0) {
			r = zt_err_set(e, ZT_EIO, "cannot read the entries to rebuild the tree");
			goto out;
		}
		const uint8_t *nl = memchr(line.p, '\n', want);

		if (!nl || i >= h->size) {
			r = zt_err_rule(e, ZT_EVERIFY, "damaged",
					"the entries after entry %llu do not match the head; run zt "
					"audit verify and restore from a backup",
					(unsigned long long)h->synced);
			goto out;
		}
		zt_audit_put64(b8, off);
		zt_merkle_leaf_hash(line.p, (size_t)(nl - line.p), leaf);
		if ((r = zt_buf_append(&idx, b8, 8, e)) != 0)
			goto out;
		zt_merkle_range_push(&a->range, leaf, emit_node, &ec);
		off += (uint64_t)(nl - line.p) + 1;
		i++;
	}
	zt_merkle_range_root(&a->range, root);
	if (ec.failed || i != h->size || memcmp(root, h->root, ZT_HASH_LEN) != 0) {
		r = zt_err_rule(e, ZT_EVERIFY, "damaged",
				"the entries after entry %llu do not lead to the head's root; run zt "
				"audit verify and restore from a backup",
				(unsigned long long)h->synced);
		goto out;
	}
	if (pwrite_all(a->fd[ZT_AUDIT_INDEX], idx.p, idx.len, h->synced * 8) != 0 ||
	    pwrite_all(a->fd[ZT_AUDIT_TREE], nodes.p, nodes.len,
		       zt_merkle_node_count(h->synced) * ZT_HASH_LEN) != 0 ||
	    fdatasync(a->fd[ZT_AUDIT_INDEX]) != 0 || fdatasync(a->fd[ZT_AUDIT_TREE]) != 0) {
		r = zt_err_set(e, ZT_EIO, "cannot write the rebuilt index and tree: %s",
			       strerror(errno));
		goto out;
	}
	h->seq++;
	h->synced = h->size;
	h->synced_bytes = h->bytes;
	if (write_head(a, h) != 0)
		r = zt_err_set(e, ZT_EIO, "cannot write the log's head: %s", strerror(errno));
out:
	zt_buf_free(&line, 0);
	zt_buf_free(&idx, 0);
	zt_buf_free(&nodes, 0);
	return r;
}

/*
 * Brings the files to the head's durable state: each must hold at least
 * what the head says is durable (else data was lost, which no crash
 * causes), anything beyond it was never acknowledged and is cut, and index
 * and tree are rebuilt past `synced` (writers only).
 */
static int recover(zt_audit *a, zt_err *e)
{
	const zt_audit_head *h = &a->head;
	const uint64_t need[3] = {h->bytes, h->synced * 8,
				  zt_merkle_node_count(h->synced) * ZT_HASH_LEN};
	const uint64_t full[3] = {h->bytes, h->size * 8, zt_merkle_node_count(h->size) * ZT_HASH_LEN};
	uint64_t have[3];
	uint8_t root[ZT_HASH_LEN];
	int r, cut = 0;

	for (int i = 0; i < 3; i++) {
		if (file_size(a->fd[i], &have[i]) != 0)
			return zt_err_set(e, ZT_EIO, "cannot stat %s: %s", file_names[i],
					  strerror(errno));
		if (have[i] < need[i])
			return zt_err_rule(e, ZT_EVERIFY, "damaged",
					   "the log's %s file has %llu bytes but its head says %llu "
					   "entries need %llu: durable data was removed; run zt audit "
					   "verify and restore from a backup",
					   file_names[i], (unsigned long long)have[i],
					   (unsigned long long)h->size, (unsigned long long)need[i]);
	}
	/* before anything is cut: a head older than a signed checkpoint is refused */
	if (a->mode == ZT_AUDIT_WRITE && (r = recover_checkpoints(a, &cut, e)) != 0)
		return r;
	if (a->mode == ZT_AUDIT_WRITE) {
		if (have[0] > h->bytes) {
			if (ftruncate(a->fd[0], (off_t)h->bytes) != 0 || fdatasync(a->fd[0]) != 0)
				return zt_err_set(e, ZT_EIO, "cannot cut the torn tail of entries: %s",
						  strerror(errno));
			cut = 1;
		}
		if (h->synced < h->size) {
			if ((r = rebuild(a, e)) != 0)
				return r;
			cut = 1;
		} else {
			for (int i = 1; i < 3; i++)
				if (have[i] > full[i]) {
					if (ftruncate(a->fd[i], (off_t)full[i]) != 0 ||
					    fdatasync(a->fd[i]) != 0)
						return zt_err_set(e, ZT_EIO,
								  "cannot cut the torn tail of %s: %s",
								  file_names[i], strerror(errno));
					cut = 1;
				}
		}
	} else if (have[1] < full[1] || have[2] < full[2]) {
		return zt_err_rule(e, ZT_ESTATE, "recover",
				   "the log's writer stopped without finishing its index and tree; "
				   "open the log for writing once (zt audit checkpoint) to rebuild them");
	}
	if ((r = zt_merkle_range_load(&a->range, h->size, node_from_fd, &a->fd[ZT_AUDIT_TREE],
				      e)) != 0)
		return r;
	zt_merkle_range_root(&a->range, root);
	if (memcmp(root, h->root, ZT_HASH_LEN) != 0)
		return zt_err_rule(e, ZT_EVERIFY, "damaged",
				   "the log's tree file does not lead to the root its head names; "
				   "run zt audit verify to find what was changed");
	if (h->size > 0) {
		uint8_t last;

		if (zt_audit_pread_all(a->fd[ZT_AUDIT_ENTRIES], &last, 1, h->bytes - 1) != 0 ||
		    last != '\n')
			return zt_err_rule(e, ZT_EVERIFY, "damaged",
					   "the log's entries file does not end where its head says");
	}
	if (cut) {
		char size[24];

		snprintf(size, sizeof size, "%llu", (unsigned long long)h->size);
		zt_log(ZT_LOG_INFO, "audit log recovered: a torn tail was cut, index and tree rebuilt",
		       "dir", a->dir, "size", size, NULL);
	}
	return 0;
}

static void *commit_main(void *arg);

static void audit_free(zt_audit *a)
{
	for (int i = 0; i < ZT_AUDIT_NFILES; i++)
		if (a->fd[i] >= 0)
			close(a->fd[i]);
	if (a->fd_lock >= 0)
		close(a->fd_lock);
	zt_note_key_free(a->signer);
	zt_buf_free(&a->queue, 0);
	zt_buf_free(&a->batch, 0);
	zt_buf_free(&a->scratch, 0);
	free(a->queue_leaf);
	free(a->batch_leaf);
	pthread_mutex_destroy(&a->mu);
	pthread_mutex_destroy(&a->cp_mu);
	pthread_cond_destroy(&a->durable_cv);
	pthread_cond_destroy(&a->work_cv);
	pthread_cond_destroy(&a->space_cv);
	zt_wipe(a->hmac, sizeof a->hmac);
	free(a);
}

zt_audit *zt_audit_open(const char *dir, int mode, zt_err *e)
{
	zt_audit *a = calloc(1, sizeof *a);
	char p[ZT_AUDIT_PATH_MAX + 16];

	if (!a) {
		zt_err_set(e, ZT_ENOMEM, "out of memory");
		return NULL;
	}
	a->mode = mode;
	a->fd_lock = -1;
	for (int i = 0; i < ZT_AUDIT_NFILES; i++)
		a->fd[i] = -1;
	pthread_mutex_init(&a->mu, NULL);
	pthread_mutex_init(&a->cp_mu, NULL);
	pthread_cond_init(&a->durable_cv, NULL);
	pthread_cond_init(&a->work_cv, NULL);
	pthread_cond_init(&a->space_cv, NULL);
	zt_buf_init(&a->queue, PENDING_MAX + ZT_AUDIT_ENTRY_MAX + 1);
	zt_buf_init(&a->batch, PENDING_MAX + ZT_AUDIT_ENTRY_MAX + 1);
	zt_buf_init(&a->scratch, SIZE_MAX / 2);
	if (strlen(dir) >= sizeof a->dir) {
		zt_err_set(e, ZT_EINVAL, "the log directory's path is too long");
		goto fail;
	}
	snprintf(a->dir, sizeof a->dir, "%s", dir);
	if (load_keys(a, e) != 0)
		goto fail;
	if (mode == ZT_AUDIT_WRITE) {
		if (path_of(a, "lock", p, sizeof p, e) != 0)
			goto fail;
		a->fd_lock = open(p, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
		if (a->fd_lock < 0) {
			zt_err_set(e, ZT_EIO, "cannot open %s: %s", p, strerror(errno));
			goto fail;
		}
		if (flock(a->fd_lock, LOCK_EX | LOCK_NB) != 0) {
			zt_err_rule(e, ZT_ESTATE, "locked",
				    "another process is writing the log in %s; a log has one "
				    "writer at a time",
				    dir);
			goto fail;
		}
	}
	for (int i = 0; i < ZT_AUDIT_NFILES; i++) {
		int fl = mode == ZT_AUDIT_WRITE ? O_RDWR | O_CREAT : O_RDONLY;

		if (path_of(a, file_names[i], p, sizeof p, e) != 0)
			goto fail;
		a->fd[i] = open(p, fl | O_CLOEXEC, 0600);
		if (a->fd[i] < 0 && errno == ENOENT && mode == ZT_AUDIT_READ &&
		    i == ZT_AUDIT_CHECKPOINTS)
			continue;
		if (a->fd[i] < 0) {
			zt_err_set(e, ZT_EIO, "cannot open %s: %s", p, strerror(errno));
			goto fail;
		}
	}
	if (zt_audit_head_read(a->fd[ZT_AUDIT_HEAD], &a->head, e) != 0 || recover(a, e) != 0)
		goto fail;
	a->next_index = a->head.size;
	if (mode == ZT_AUDIT_WRITE) {
		if (pthread_create(&a->thread, NULL, commit_main, a) != 0) {
			zt_err_set(e, ZT_EIO, "cannot start the audit commit thread");
			goto fail;
		}
		a->thread_started = 1;
	}
	return a;
fail:
	audit_free(a);
	return NULL;
}

void zt_audit_close(zt_audit *a)
{
	if (!a)
		return;
	if (a->thread_started) {
		pthread_mutex_lock(&a->mu);
		a->stop = 1;
		pthread_cond_broadcast(&a->work_cv);
		pthread_mutex_unlock(&a->mu);
		pthread_join(a->thread, NULL);
	}
	audit_free(a);
}

/* ---- group commit ------------------------------------------------------------ */

/* Writes one batch and makes it durable; the commit thread only. */
static int commit_batch(zt_audit *a, size_t n, zt_audit_head *next, zt_err *e)
{
	const zt_audit_head *h = &a->head; /* only this thread changes it */
	struct emit_ctx ec = {&a->scratch, 0};
	uint64_t off = h->bytes;
	size_t pos = 0;

	/* index: the offset of each entry, found from the newlines */
	a->scratch.len = 0;
	if (zt_buf_reserve(&a->scratch, n * 8, e) != 0)
		return -ZT_ENOMEM;
	for (size_t i = 0; i < n; i++) {
		const uint8_t *nl = memchr(a->batch.p + pos, '\n', a->batch.len - pos);

		zt_audit_put64(a->scratch.p + 8 * i, off + pos);
		pos = (size_t)(nl - a->batch.p) + 1;
	}
	a->scratch.len = n * 8;
	if (pwrite_all(a->fd[ZT_AUDIT_ENTRIES], a->batch.p, a->batch.len, h->bytes) != 0 ||
	    pwrite_all(a->fd[ZT_AUDIT_INDEX], a->scratch.p, a->scratch.len, h->size * 8) != 0)
		goto io;
	/* tree: every new complete node, in post-order, continues the file */
	a->scratch.len = 0;
	for (size_t i = 0; i < n; i++)
		zt_merkle_range_push(&a->range, a->batch_leaf[i], emit_node, &ec);
	if (ec.failed)
		return zt_err_set(e, ZT_ENOMEM, "out of memory for the tree nodes");
	if (pwrite_all(a->fd[ZT_AUDIT_TREE], a->scratch.p, a->scratch.len,
		       zt_merkle_node_count(h->size) * ZT_HASH_LEN) != 0)
		goto io;
	if (fdatasync(a->fd[ZT_AUDIT_ENTRIES]) != 0)
		goto io;
	next->seq = h->seq + 1;
	next->size = h->size + n;
	next->bytes = h->bytes + a->batch.len;
	next->synced = h->synced;
	next->synced_bytes = h->synced_bytes;
	/*
	 * index and tree can be rebuilt from the entries, so they are made
	 * durable only now and then; the head says how far they are.
	 */
	if (a->stop || next->size - h->synced >= ZT_AUDIT_SYNC_ENTRIES ||
	    mono_now() - a->last_sync >= ZT_AUDIT_SYNC_SECONDS) {
		if (fdatasync(a->fd[ZT_AUDIT_INDEX]) != 0 || fdatasync(a->fd[ZT_AUDIT_TREE]) != 0)
			goto io;
		next->synced = next->size;
		next->synced_bytes = next->bytes;
		a->last_sync = mono_now();
	}
	/* the commit record: only now does the new size exist */
	zt_merkle_range_root(&a->range, next->root);
	if (write_head(a, next) != 0)
		goto io;
	return 0;
io:
	return zt_err_set(e, ZT_EIO,
			  "writing the audit log in %s failed: %s; the log stops taking entries "
			  "until it is reopened",
			  a->dir, strerror(errno));
}

static void *commit_main(void *arg)
{
	zt_audit *a = arg;

	pthread_mutex_lock(&a->mu);
	for (;;) {
		while (a->queue_n == 0 && !a->stop)
			pthread_cond_wait(&a->work_cv, &a->mu);
		if (a->queue_n == 0)
			break;
		/* take the whole queue; writers refill the other buffer meanwhile */
		zt_buf tb = a->batch;
		uint8_t(*tl)[ZT_HASH_LEN] = a->batch_leaf;
		size_t tc = a->batch_cap, n = a->queue_n;

		a->batch = a->queue;
		a->batch_leaf = a->queue_leaf;
		a->batch_cap = a->queue_cap;
		a->queue = tb;
		a->queue.len = 0;
		a->queue_leaf = tl;
		a->queue_cap = tc;
		a->queue_n = 0;
		pthread_cond_broadcast(&a->space_cv);
		pthread_mutex_unlock(&a->mu);

		zt_audit_head next;
		zt_err err;
		int r = commit_batch(a, n, &next, &err);

		pthread_mutex_lock(&a->mu);
		if (r != 0) {
			a->failed = 1;
			a->fail_err = err;
			zt_log(ZT_LOG_ERROR, "audit log write failed", "dir", a->dir, "error",
			       err.msg, NULL);
			pthread_cond_broadcast(&a->durable_cv);
			pthread_cond_broadcast(&a->space_cv);
			break;
		}
		a->head = next;
		pthread_cond_broadcast(&a->durable_cv);
	}
	/* a clean close leaves index and tree durable: nothing to rebuild */
	zt_audit_head h = a->head;
	int failed = a->failed;

	pthread_mutex_unlock(&a->mu);
	if (!failed && h.synced < h.size) {
		h.seq++;
		h.synced = h.size;
		h.synced_bytes = h.bytes;
		if (fdatasync(a->fd[ZT_AUDIT_INDEX]) == 0 && fdatasync(a->fd[ZT_AUDIT_TREE]) == 0 &&
		    write_head(a, &h) == 0) {
			pthread_mutex_lock(&a->mu);
			a->head = h;
			pthread_mutex_unlock(&a->mu);
		}
	}
	return NULL;
}

int zt_audit_submit(zt_audit *a, const char *entry, size_t len, uint64_t *index, zt_err *e)
{
	uint8_t leaf[ZT_HASH_LEN];
	int r = 0;

	*index = 0;
	if (a->mode != ZT_AUDIT_WRITE)
		return zt_err_set(e, ZT_ESTATE, "the log was opened for reading only");
	/* the file format's one invariant: an entry is one line */
	if (len == 0 || len > ZT_AUDIT_ENTRY_MAX || memchr(entry, '\n', len) || entry[0] != '{' ||
	    entry[len - 1] != '}')
		return zt_err_rule(e, ZT_EINVAL, "entry-schema",
				   "an entry is one line of JSON of 1-%d bytes (build it with "
				   "zt_audit_entry_build)",
				   ZT_AUDIT_ENTRY_MAX);
	zt_merkle_leaf_hash(entry, len, leaf);
	pthread_mutex_lock(&a->mu);
	while (!a->failed && !a->stop && a->queue.len + len + 1 > PENDING_MAX)
		pthread_cond_wait(&a->space_cv, &a->mu);
	if (a->failed) {
		r = zt_err_set(e, a->fail_err.code, "%s", a->fail_err.msg);
		goto out;
	}
	if (a->stop) {
		r = zt_err_set(e, ZT_ESTATE, "the audit log is closing");
		goto out;
	}
	if (a->queue_n == a->queue_cap) {
		size_t cap = a->queue_cap ? a->queue_cap * 2 : 1024;
		void *p = realloc(a->queue_leaf, cap * ZT_HASH_LEN);

		if (!p) {
			r = zt_err_set(e, ZT_ENOMEM, "out of memory");
			goto out;
		}
		a->queue_leaf = p;
		a->queue_cap = cap;
	}
	if ((r = zt_buf_reserve(&a->queue, len + 1, e)) != 0)
		goto out;
	memcpy(a->queue.p + a->queue.len, entry, len);
	a->queue.p[a->queue.len + len] = '\n';
	a->queue.len += len + 1;
	memcpy(a->queue_leaf[a->queue_n++], leaf, ZT_HASH_LEN);
	*index = a->next_index++;
	pthread_cond_signal(&a->work_cv);
out:
	pthread_mutex_unlock(&a->mu);
	return r;
}

int zt_audit_wait(zt_audit *a, uint64_t index, zt_err *e)
{
	int r = 0;

	pthread_mutex_lock(&a->mu);
	while (a->head.size <= index && !a->failed)
		pthread_cond_wait(&a->durable_cv, &a->mu);
	if (a->head.size <= index)
		r = zt_err_set(e, a->fail_err.code, "%s", a->fail_err.msg);
	pthread_mutex_unlock(&a->mu);
	return r;
}

int zt_audit_append(zt_audit *a, const char *entry, size_t len, uint64_t *index, zt_err *e)
{
	int r = zt_audit_submit(a, entry, len, index, e);

	return r ? r : zt_audit_wait(a, *index, e);
}

/* ---- reading ---------------------------------------------------------------- */

static void head_get(zt_audit *a, zt_audit_head *h)
{
	pthread_mutex_lock(&a->mu);
	*h = a->head;
	pthread_mutex_unlock(&a->mu);
}

uint64_t zt_audit_size(zt_audit *a)
{
	zt_audit_head h;

	head_get(a, &h);
	return h.size;
}

int zt_audit_refresh(zt_audit *a, zt_err *e)
{
	zt_audit_head h;
	int r;

	if (a->mode == ZT_AUDIT_WRITE)
		return 0; /* a writer's head is always current */
	if ((r = zt_audit_head_read(a->fd[ZT_AUDIT_HEAD], &h, e)) != 0)
		return r;
	if (h.size < a->head.size)
		return zt_err_rule(e, ZT_EVERIFY, "damaged",
				   "the log shrank from %llu to %llu entries while it was read",
				   (unsigned long long)a->head.size, (unsigned long long)h.size);
	pthread_mutex_lock(&a->mu);
	a->head = h;
	pthread_mutex_unlock(&a->mu);
	return 0;
}

const char *zt_audit_origin(const zt_audit *a)
{
	return a->origin;
}

const uint8_t *zt_audit_hmac_key(const zt_audit *a)
{
	return a->have_hmac ? a->hmac : NULL;
}

static int range_err(zt_err *e, uint64_t index, uint64_t size)
{
	return zt_err_rule(e, ZT_EINVAL, "proof-range",
			   "the log has %llu entries; %llu is beyond it",
			   (unsigned long long)size, (unsigned long long)index);
}

int zt_audit_read(zt_audit *a, uint64_t index, zt_buf *out, zt_err *e)
{
	zt_audit_head h;
	uint8_t b[16];
	uint64_t off, end;
	int r;

	head_get(a, &h);
	if (index >= h.size)
		return range_err(e, index, h.size);
	if (zt_audit_pread_all(a->fd[ZT_AUDIT_INDEX], b, index + 1 < h.size ? 16 : 8, index * 8))
		return zt_err_rule(e, ZT_EIO, "damaged", "cannot read the log's index");
	off = zt_audit_get64(b);
	end = index + 1 < h.size ? zt_audit_get64(b + 8) : h.bytes;
	if (end <= off || end - off - 1 > ZT_AUDIT_ENTRY_MAX || end > h.bytes)
		return zt_err_rule(e, ZT_EVERIFY, "index",
				   "the log's index is damaged at entry %llu; run zt audit verify",
				   (unsigned long long)index);
	if ((r = zt_buf_reserve(out, (size_t)(end - off), e)) != 0)
		return r;
	if (zt_audit_pread_all(a->fd[ZT_AUDIT_ENTRIES], out->p + out->len, (size_t)(end - off),
			       off))
		return zt_err_rule(e, ZT_EIO, "damaged", "cannot read entry %llu",
				   (unsigned long long)index);
	if (out->p[out->len + end - off - 1] != '\n')
		return zt_err_rule(e, ZT_EVERIFY, "index",
				   "entry %llu does not end where the index says; run zt audit verify",
				   (unsigned long long)index);
	out->len += (size_t)(end - off - 1);
	return 0;
}

int zt_audit_root(zt_audit *a, uint64_t size, uint8_t out[ZT_HASH_LEN], zt_err *e)
{
	zt_audit_head h;

	head_get(a, &h);
	if (size > h.size)
		return range_err(e, size, h.size);
	if (size == h.size) {
		memcpy(out, h.root, ZT_HASH_LEN);
		return 0;
	}
	return zt_merkle_root(node_from_fd, &a->fd[ZT_AUDIT_TREE], size, out, e);
}

int zt_audit_leaf(zt_audit *a, uint64_t index, uint8_t out[ZT_HASH_LEN], zt_err *e)
{
	if (index >= zt_audit_size(a))
		return range_err(e, index, zt_audit_size(a));
	return node_from_fd(&a->fd[ZT_AUDIT_TREE], 0, index, out, e);
}

int zt_audit_prove(zt_audit *a, uint64_t index, uint64_t size, uint8_t proof[][ZT_HASH_LEN],
		   size_t *n, zt_err *e)
{
	*n = 0;
	if (size > zt_audit_size(a))
		return range_err(e, size, zt_audit_size(a));
	return zt_merkle_prove_inclusion(node_from_fd, &a->fd[ZT_AUDIT_TREE], index, size, proof, n,
					 e);
}

int zt_audit_prove_consistency(zt_audit *a, uint64_t size1, uint64_t size2,
			       uint8_t proof[][ZT_HASH_LEN], size_t *n, zt_err *e)
{
	*n = 0;
	if (size2 > zt_audit_size(a))
		return range_err(e, size2, zt_audit_size(a));
	return zt_merkle_prove_consistency(node_from_fd, &a->fd[ZT_AUDIT_TREE], size1, size2, proof,
					   n, e);
}

/* ---- checkpoints ------------------------------------------------------------- */

int zt_audit_checkpoint(zt_audit *a, zt_buf *out, zt_err *e)
{
	zt_checkpoint c;
	zt_audit_head h;
	zt_buf text, note;
	uint64_t end;
	uint8_t len[4];
	char p[ZT_AUDIT_PATH_MAX + 16];
	int r;

	if (a->mode != ZT_AUDIT_WRITE || !a->signer)
		return zt_err_set(e, ZT_ESTATE, "only the log's writer signs checkpoints");
	pthread_mutex_lock(&a->cp_mu);
	head_get(a, &h);
	memset(&c, 0, sizeof c);
	snprintf(c.origin, sizeof c.origin, "%s", a->origin);
	c.size = h.size;
	memcpy(c.root, h.root, ZT_HASH_LEN);
	zt_buf_init(&text, 4096);
	zt_buf_init(&note, ZT_NOTE_MAX);
	if ((r = zt_checkpoint_format(&c, &text, e)) != 0 ||
	    (r = zt_note_sign(a->signer, (const char *)text.p, text.len, &note, e)) != 0)
		goto out;
	/* durable in the history before it is published as the latest */
	if (file_size(a->fd[ZT_AUDIT_CHECKPOINTS], &end) != 0) {
		r = zt_err_set(e, ZT_EIO, "cannot stat the checkpoints file: %s", strerror(errno));
		goto out;
	}
	len[0] = (uint8_t)(note.len >> 24);
	len[1] = (uint8_t)(note.len >> 16);
	len[2] = (uint8_t)(note.len >> 8);
	len[3] = (uint8_t)note.len;
	if (pwrite_all(a->fd[ZT_AUDIT_CHECKPOINTS], len, 4, end) != 0 ||
	    pwrite_all(a->fd[ZT_AUDIT_CHECKPOINTS], note.p, note.len, end + 4) != 0 ||
	    fdatasync(a->fd[ZT_AUDIT_CHECKPOINTS]) != 0) {
		r = zt_err_set(e, ZT_EIO, "cannot store the checkpoint: %s", strerror(errno));
		goto out;
	}
	if ((r = path_of(a, "checkpoint", p, sizeof p, e)) != 0 ||
	    (r = zt_file_write(p, note.p, note.len, 0644, 0, e)) != 0)
		goto out;
	r = zt_buf_append(out, note.p, note.len, e);
out:
	pthread_mutex_unlock(&a->cp_mu);
	zt_buf_free(&text, 0);
	zt_buf_free(&note, 0);
	return r;
}
