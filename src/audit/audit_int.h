/* audit_int.h: what the log's files look like, shared by log.c and verify.c. */
#ifndef ZT_AUDIT_INT_H
#define ZT_AUDIT_INT_H

#include <stdint.h>

#include "audit/audit.h"

#define ZT_AUDIT_PATH_MAX 4000
#define ZT_AUDIT_HEAD_SLOT 128
#define ZT_AUDIT_HEAD_MAGIC "ZTAUDIT1"

/* The data files, in the order log.c opens them. */
enum { ZT_AUDIT_ENTRIES, ZT_AUDIT_INDEX, ZT_AUDIT_TREE, ZT_AUDIT_HEAD, ZT_AUDIT_CHECKPOINTS,
       ZT_AUDIT_NFILES };

/*
 * The commit record: the log's durable size, its entries' bytes and root.
 * `entries` is durable through `size`; `index` and `tree` only through
 * `synced` (the entry that starts at byte `synced_bytes`): they are
 * rebuilt from the entries after a crash, so the commit path needs
 * one fsync fewer before the head.
 */
typedef struct zt_audit_head {
	uint64_t seq;
	uint64_t size;
	uint64_t bytes;
	uint64_t synced;
	uint64_t synced_bytes;
	uint8_t root[ZT_HASH_LEN];
} zt_audit_head;

/* index and tree are fsync'ed at least this often (entries, seconds). */
#define ZT_AUDIT_SYNC_ENTRIES (1u << 16)
#define ZT_AUDIT_SYNC_SECONDS 1.0

/* One head slot: what the commit thread writes, and zt_audit_create the first time. */
void zt_audit_head_encode(const zt_audit_head *h, uint8_t slot[ZT_AUDIT_HEAD_SLOT]);
/* The newer of the head's two valid slots; neither valid (or none) is damage. */
int zt_audit_head_read(int fd, zt_audit_head *h, zt_err *e) ZT_MUST_CHECK;
/* 0, or -1 with errno (0 at end of file) when fewer than n bytes could be read. */
int zt_audit_pread_all(int fd, void *buf, size_t n, uint64_t off);
void zt_audit_put64(uint8_t *p, uint64_t v);
uint64_t zt_audit_get64(const uint8_t *p);

#endif
