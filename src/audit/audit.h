/*
 * audit: zt's tamper-evident audit log, a transparency log in the manner of
 * Certificate Transparency.
 *
 *  - Merkle tree hashing and proofs exactly as RFC 9162 2.1 defines them
 *    (merkle.c): leaf hash SHA-256(0x00 || entry), node hash
 *    SHA-256(0x01 || left || right), inclusion and consistency proofs and
 *    their verification;
 *  - signed notes (C2SP signed-note) with Ed25519 keys, and checkpoints in
 *    the C2SP tlog-checkpoint format (note.c), so that transparency-log
 *    tooling and witnesses can read what zt signs;
 *  - audit entries: one JSON object per event with a documented schema;
 *    secret values are kept only as HMAC-SHA256 under the log's own key
 *    (entry.c);
 *  - the log itself (log.c): an append-only directory, group commit (a
 *    writer is acknowledged only once its entry is durable, and concurrent
 *    writers share one fsync), recovery after a crash to the last durable
 *    state;
 *  - offline verification of a whole log directory (verify.c).
 *
 * The directory layout and entry schema are in docs/audit.md.
 * Depends on core and crypto.
 */
#ifndef ZT_AUDIT_H
#define ZT_AUDIT_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "core/core.h"

#define ZT_HASH_LEN 32
/* A proof in a tree of up to 2^64 leaves has at most 64 hashes (RFC 9162 2.1.3). */
#define ZT_MERKLE_MAX_PROOF 64

/* ---- RFC 9162 hashing and proofs (merkle.c) ---------------------------- */

/* RFC 9162 2.1.1: MTH({d(0)}) = SHA-256(0x00 || d(0)). */
void zt_merkle_leaf_hash(const void *entry, size_t len, uint8_t out[ZT_HASH_LEN]);
/* SHA-256(0x01 || left || right). */
void zt_merkle_node_hash(const uint8_t left[ZT_HASH_LEN], const uint8_t right[ZT_HASH_LEN],
			 uint8_t out[ZT_HASH_LEN]);
/* The root of the empty tree: SHA-256 of the empty string. */
void zt_merkle_empty_root(uint8_t out[ZT_HASH_LEN]);

/*
 * Nodes of a growing tree are stored in post-order: leaf 0, leaf 1, their
 * parent, leaf 2, ... Appending a leaf only appends nodes. The complete
 * subtree of 2^level leaves starting at leaf (index << level) is at
 * position zt_merkle_node_pos(level, index); a tree of n leaves has
 * zt_merkle_node_count(n) complete nodes.
 */
uint64_t zt_merkle_node_pos(unsigned level, uint64_t index);
uint64_t zt_merkle_node_count(uint64_t leaves);

/*
 * Where proof generation reads the tree from: the hash of the complete,
 * aligned subtree of 2^level leaves that starts at leaf (index << level).
 * Returns 0, or a negative error code with *e set.
 */
typedef int (*zt_merkle_node_fn)(void *ctx, unsigned level, uint64_t index,
				 uint8_t out[ZT_HASH_LEN], zt_err *e);

/* MTH(D[0:size]) (RFC 9162 2.1.1), from O(log size) nodes. */
int zt_merkle_root(zt_merkle_node_fn fn, void *ctx, uint64_t size, uint8_t out[ZT_HASH_LEN],
		   zt_err *e) ZT_MUST_CHECK;

/*
 * PATH(index, D[0:size]) (RFC 9162 2.1.3.1): writes *n hashes (at most
 * ZT_MERKLE_MAX_PROOF) of ZT_HASH_LEN bytes each to proof, from O(log size)
 * node reads. index < size, else ZT_EINVAL.
 */
int zt_merkle_prove_inclusion(zt_merkle_node_fn fn, void *ctx, uint64_t index, uint64_t size,
			      uint8_t proof[][ZT_HASH_LEN], size_t *n, zt_err *e) ZT_MUST_CHECK;

/* PROOF(size1, D[0:size2]) (RFC 9162 2.1.4.1); 0 < size1 <= size2, else ZT_EINVAL. */
int zt_merkle_prove_consistency(zt_merkle_node_fn fn, void *ctx, uint64_t size1, uint64_t size2,
				uint8_t proof[][ZT_HASH_LEN], size_t *n, zt_err *e) ZT_MUST_CHECK;

/*
 * RFC 9162 2.1.3.2: 0 if `proof` (n hashes) proves that the leaf with hash
 * `leaf` is at `index` in the tree of `size` leaves whose root is `root`;
 * -ZT_EVERIFY otherwise. Hashes are given with their lengths so that a
 * caller never has to trust one: a hash that is not ZT_HASH_LEN bytes
 * long never verifies.
 */
int zt_merkle_verify_inclusion(uint64_t index, uint64_t size, const uint8_t *leaf,
			       size_t leaf_len, const uint8_t proof[][ZT_HASH_LEN], size_t n,
			       const uint8_t *root, size_t root_len, zt_err *e) ZT_MUST_CHECK;

/*
 * RFC 9162 2.1.4.2: 0 if `proof` proves that the tree of size1 leaves with
 * root1 is a prefix of the tree of size2 leaves with root2. The cases the
 * RFC's algorithm does not cover follow transparency-dev/merkle (and its
 * test vectors): size1 == size2 needs an empty proof and byte-equal roots,
 * and size1 == 0 never verifies (a proof from the empty tree says nothing).
 */
int zt_merkle_verify_consistency(uint64_t size1, uint64_t size2, const uint8_t *root1,
				 size_t root1_len, const uint8_t *root2, size_t root2_len,
				 const uint8_t proof[][ZT_HASH_LEN], size_t n,
				 zt_err *e) ZT_MUST_CHECK;

/*
 * A compact range (the right edge of a growing tree): the roots of the
 * complete subtrees that make up the first `size` leaves, largest first.
 * Pushing a leaf hash yields the new complete nodes in post-order, which is
 * how the log writes its tree file and how verification recomputes it.
 */
typedef struct zt_merkle_range {
	uint64_t size;
	uint8_t h[64][ZT_HASH_LEN]; /* h[k] for each set bit of size, largest first */
	unsigned count;
} zt_merkle_range;

typedef void (*zt_merkle_emit_fn)(void *ctx, unsigned level, uint64_t index,
				  const uint8_t hash[ZT_HASH_LEN]);

void zt_merkle_range_init(zt_merkle_range *r);
/* Appends one leaf; emit (may be NULL) sees every new complete node in post-order. */
void zt_merkle_range_push(zt_merkle_range *r, const uint8_t leaf[ZT_HASH_LEN],
			  zt_merkle_emit_fn emit, void *ctx);
/* MTH of the leaves pushed so far (the empty root for none). */
void zt_merkle_range_root(const zt_merkle_range *r, uint8_t out[ZT_HASH_LEN]);
/* Rebuilds a range of `size` leaves from stored nodes. */
int zt_merkle_range_load(zt_merkle_range *r, uint64_t size, zt_merkle_node_fn fn, void *ctx,
			 zt_err *e) ZT_MUST_CHECK;

/* ---- proof files (proof.c) ----------------------------------------------- */

/*
 * A proof as `zt audit prove` and `zt audit consistency` print it and
 * `zt audit check-proof` reads it: JSON with the field names of the
 * transparency-dev/merkle test data, hashes in standard base64:
 *   inclusion:   {"leafIdx", "treeSize", "root", "leafHash", "proof": [...]}
 *   consistency: {"size1", "size2", "root1", "root2", "proof": [...]}
 * A hash that is not ZT_HASH_LEN bytes long is kept with its length (it can
 * never verify, except in the degenerate equal-size consistency case that
 * compares roots as byte strings, as RFC 9162 2.1.4.2 does).
 */
enum zt_proof_kind { ZT_PROOF_INCLUSION = 1, ZT_PROOF_CONSISTENCY = 2 };

typedef struct zt_audit_proof {
	enum zt_proof_kind kind;
	uint64_t index, size;        /* inclusion: leafIdx, treeSize */
	uint64_t size1, size2;       /* consistency */
	uint8_t leaf[ZT_HASH_LEN];   /* inclusion: leafHash */
	size_t leaf_len;
	uint8_t root[ZT_HASH_LEN];   /* inclusion: root; consistency: root2 */
	size_t root_len;
	uint8_t root1[ZT_HASH_LEN];  /* consistency */
	size_t root1_len;
	uint8_t proof[ZT_MERKLE_MAX_PROOF][ZT_HASH_LEN];
	size_t n;
} zt_audit_proof;

#define ZT_PROOF_FILE_MAX 16384

/*
 * Parses a proof file (at most ZT_PROOF_FILE_MAX bytes, else ZT_ELIMIT).
 * Unknown or duplicate members, wrong types, sizes that are negative,
 * fractional or above 2^63-1, bad base64 and more than ZT_MERKLE_MAX_PROOF
 * hashes are errors; "proof": null is an empty proof.
 */
int zt_audit_proof_parse(const char *text, size_t len, zt_audit_proof *out, zt_err *e) ZT_MUST_CHECK;
/* Appends the JSON form (one object, a final newline) to out. */
int zt_audit_proof_format(const zt_audit_proof *p, zt_buf *out, zt_err *e) ZT_MUST_CHECK;
/* Verifies the proof by its kind (zt_merkle_verify_inclusion / _consistency). */
int zt_audit_proof_check(const zt_audit_proof *p, zt_err *e) ZT_MUST_CHECK;

/* ---- signed notes and checkpoints (note.c) ----------------------------- */

/*
 * An Ed25519 note key (C2SP signed-note): a name, a 4-byte key ID
 * (SHA-256(name || 0x0A || 0x01 || public key)[:4]) and the key itself,
 * with or without the private half.
 */
typedef struct zt_note_key zt_note_key;

/* A key name is non-empty UTF-8 without spaces or '+' (signed-note "Keys"). */
int zt_note_name_ok(const char *name, size_t len);
/* A fresh signing key. */
zt_note_key *zt_note_key_generate(const char *name, zt_err *e);
/* "PRIVATE+KEY+<name>+<hex id>+<base64(0x01 || seed)>"; surrounding white space is ignored. */
zt_note_key *zt_note_signer_parse(const char *text, size_t len, zt_err *e);
/* "<name>+<hex id>+<base64(0x01 || public key)>"; surrounding white space is ignored. */
zt_note_key *zt_note_verifier_parse(const char *text, size_t len, zt_err *e);
/* The two encodings above, without a trailing newline. */
int zt_note_signer_format(const zt_note_key *k, zt_buf *out, zt_err *e) ZT_MUST_CHECK;
int zt_note_verifier_format(const zt_note_key *k, zt_buf *out, zt_err *e) ZT_MUST_CHECK;
const char *zt_note_key_name(const zt_note_key *k);
uint32_t zt_note_key_id(const zt_note_key *k);
int zt_note_key_can_sign(const zt_note_key *k);
void zt_note_key_free(zt_note_key *k);

#define ZT_NOTE_MAX 65536      /* bytes in a note we read */
#define ZT_NOTE_MAX_SIGS 100   /* signature lines in a note we read */

/*
 * Appends to out the note `text` (non-empty, ends with '\n', no blank line
 * anywhere, including a first one, no control characters but '\n'; C2SP
 * allows blank lines, zt's signer does not) followed by a blank line and k's
 * signature line "— <name> <base64(key id || signature)>".
 */
int zt_note_sign(const zt_note_key *k, const char *text, size_t len, zt_buf *out,
		 zt_err *e) ZT_MUST_CHECK;

/*
 * Checks that `note` is a well-formed signed note carrying a valid
 * signature by k. Signatures by other keys are ignored (they may be
 * witnesses' cosignatures); a signature line that names k but does not
 * verify rejects the note. On success *text_len is the length of the
 * signed text (including its final newline).
 */
int zt_note_open(const zt_note_key *k, const char *note, size_t len, size_t *text_len,
		 zt_err *e) ZT_MUST_CHECK;

/* The body of a C2SP tlog-checkpoint. */
typedef struct zt_checkpoint {
	char origin[256]; /* at most 255 bytes */
	uint64_t size;
	uint8_t root[ZT_HASH_LEN];
} zt_checkpoint;

/*
 * Parses a checkpoint body: origin line, tree size in decimal (no sign, no
 * leading zeros), base64 root hash, then optional non-empty extension lines
 * that are ignored.
 */
int zt_checkpoint_parse(const char *text, size_t len, zt_checkpoint *out, zt_err *e) ZT_MUST_CHECK;
int zt_checkpoint_format(const zt_checkpoint *c, zt_buf *out, zt_err *e) ZT_MUST_CHECK;
/*
 * The checkpoint a note says it carries, its signatures NOT checked: only
 * for what a message names or a sanity check, never for trust.
 */
int zt_checkpoint_peek(const char *note, size_t len, zt_checkpoint *out);
/* zt_note_open, then zt_checkpoint_parse of the signed text; the origin must be k's name. */
int zt_checkpoint_open(const zt_note_key *k, const char *note, size_t len, zt_checkpoint *out,
		       zt_err *e) ZT_MUST_CHECK;

/* ---- entries (entry.c) -------------------------------------------------- */

#define ZT_AUDIT_ENTRY_MAX 65536   /* bytes in one stored entry */
#define ZT_AUDIT_HMAC_PREFIX "hmac-sha256:"

/*
 * Builds the stored form of an entry from an event (docs/audit.md "Entry
 * schema"): checks every field, sets "time" to now_ms (milliseconds since
 * the epoch) when the event has none, replaces each member of "secrets"
 * with "hmac-sha256:<base64>" under hmac_key and moves it into "details",
 * and appends the canonical JSON (sorted keys, compact, one line) to out.
 */
int zt_audit_entry_build(const json_t *event, const uint8_t hmac_key[ZT_HASH_LEN],
			 int64_t now_ms, zt_buf *out, zt_err *e) ZT_MUST_CHECK;
/* Checks that p is a stored entry: one line of JSON that follows the schema. */
int zt_audit_entry_check(const char *p, size_t len, zt_err *e) ZT_MUST_CHECK;
/*
 * Entry times: RFC 3339 UTC, "YYYY-MM-DDTHH:MM:SS[.fraction]Z" in, always
 * milliseconds out ("2026-11-26T09:30:00.000Z"), so that stored times
 * sort as strings.
 */
int zt_audit_time_parse(const char *s, size_t len, int64_t *ms) ZT_MUST_CHECK;
void zt_audit_time_format(int64_t ms, char out[32]);
/* "hmac-sha256:<base64>" of value under key, NUL-terminated (out: 64 bytes). */
void zt_audit_secret_hash(const uint8_t key[ZT_HASH_LEN], const char *value, size_t len,
			  char out[64]);

/* ---- the log (log.c) ------------------------------------------------------ */

typedef struct zt_audit zt_audit;

/*
 * Creates a new log in dir (made if missing, must be empty otherwise):
 * log.key (the checkpoint signing key, mode 0600), log.pub (its verifier
 * key), hmac.key (mode 0600) and empty data files. origin names the log in
 * its checkpoints and is the signing key's name.
 */
int zt_audit_create(const char *dir, const char *origin, zt_err *e) ZT_MUST_CHECK;

enum { ZT_AUDIT_READ = 0, ZT_AUDIT_WRITE = 1 };

/*
 * Opens the log in dir. With ZT_AUDIT_WRITE the caller becomes its only
 * writer (an exclusive lock; a second writer gets ZT_ESTATE), the log is
 * recovered to its last durable state (a torn tail is cut), and a commit
 * thread starts. Readers see the durable state as of open and
 * zt_audit_refresh.
 */
zt_audit *zt_audit_open(const char *dir, int mode, zt_err *e);
/* Waits for queued entries to become durable, stops the commit thread, closes. */
void zt_audit_close(zt_audit *a);

/*
 * Queues a stored entry (see zt_audit_entry_build); *index is its position.
 * It is durable once zt_audit_wait(index) returns 0. Thread-safe.
 */
int zt_audit_submit(zt_audit *a, const char *entry, size_t len, uint64_t *index,
		    zt_err *e) ZT_MUST_CHECK;
/* Blocks until the entry at index is durable; an I/O failure fails every waiter. */
int zt_audit_wait(zt_audit *a, uint64_t index, zt_err *e) ZT_MUST_CHECK;
/* zt_audit_submit then zt_audit_wait. */
int zt_audit_append(zt_audit *a, const char *entry, size_t len, uint64_t *index,
		    zt_err *e) ZT_MUST_CHECK;

/* Entries that are durable (for readers: as of open or the last refresh). */
uint64_t zt_audit_size(zt_audit *a);
/* Readers: takes in what a writer made durable since. */
int zt_audit_refresh(zt_audit *a, zt_err *e) ZT_MUST_CHECK;
const char *zt_audit_origin(const zt_audit *a);
const uint8_t *zt_audit_hmac_key(const zt_audit *a);

/* Entry `index` (< size), without its newline, appended to out. */
int zt_audit_read(zt_audit *a, uint64_t index, zt_buf *out, zt_err *e) ZT_MUST_CHECK;
int zt_audit_root(zt_audit *a, uint64_t size, uint8_t out[ZT_HASH_LEN], zt_err *e) ZT_MUST_CHECK;
int zt_audit_leaf(zt_audit *a, uint64_t index, uint8_t out[ZT_HASH_LEN], zt_err *e) ZT_MUST_CHECK;
int zt_audit_prove(zt_audit *a, uint64_t index, uint64_t size, uint8_t proof[][ZT_HASH_LEN],
		   size_t *n, zt_err *e) ZT_MUST_CHECK;
int zt_audit_prove_consistency(zt_audit *a, uint64_t size1, uint64_t size2,
			       uint8_t proof[][ZT_HASH_LEN], size_t *n, zt_err *e) ZT_MUST_CHECK;

/*
 * Signs a checkpoint of the current durable size with the log's key,
 * stores it durably (the checkpoints file, and "checkpoint" for the latest)
 * and appends the signed note to out. Writers only.
 */
int zt_audit_checkpoint(zt_audit *a, zt_buf *out, zt_err *e) ZT_MUST_CHECK;

/* ---- offline verification (verify.c) ------------------------------------ */

typedef void (*zt_audit_progress_fn)(void *ctx, uint64_t done, uint64_t total);

/* What zt_audit_verify checked. */
typedef struct zt_audit_report {
	uint64_t entries;     /* entries read and hashed */
	uint64_t checkpoints; /* stored checkpoints whose signature and root checked out */
	uint64_t given;       /* given checkpoints found consistent with the log */
} zt_audit_report;

/*
 * Verifies the log in dir from its files alone: recomputes the whole tree
 * from the entries, checks the stored index and tree against it, every
 * stored checkpoint's signature (by `key`, the verifier key the auditor
 * trusts) and root, and that each of the `n_old` given signed checkpoints
 * (old_notes[i], old_lens[i]) is consistent with the log. The first
 * problem found is in *e, naming the entry or checkpoint; *report says
 * how far verification got (all of it on success).
 */
int zt_audit_verify(const char *dir, const zt_note_key *key, const char *const *old_notes,
		    const size_t *old_lens, size_t n_old, zt_audit_progress_fn progress,
		    void *ctx, zt_audit_report *report, zt_err *e) ZT_MUST_CHECK;

#endif
