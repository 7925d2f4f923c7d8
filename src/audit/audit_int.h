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

/* The commit record: the log's durable size, its entries' bytes and root. */
typedef struct zt_audit_head {
	uint64_t seq;
	uint64_t size;
	uint64_t bytes;
	uint8_t root[ZT_HASH_LEN];
} zt_audit_head;

/* One head slot: what the commit thread writes, and zt_audit_create the first time. */
void zt_audit_head_encode(const zt_audit_head *h, uint8_t slot[ZT_AUDIT_HEAD_SLOT]);
/* The newer of the head's two valid slots; neither valid (or none) is damage. */
int zt_audit_head_read(int fd, zt_audit_head *h, zt_err *e) ZT_MUST_CHECK;
/* 0, or -1 with errno (0 at end of file) when fewer than n bytes could be read. */
int zt_audit_pread_all(int fd, void *buf, size_t n, uint64_t off);
void zt_audit_put64(uint8_t *p, uint64_t v);
uint64_t zt_audit_get64(const uint8_t *p);

#endif
