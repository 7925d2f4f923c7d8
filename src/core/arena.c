/* core/arena.c: bump allocation in chunks, freed all at once. */
#include "core.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

struct chunk {
	struct chunk *next;
	size_t size, used;
	_Alignas(16) unsigned char data[];
};

struct zt_arena {
	struct chunk *head;
	size_t chunk;
	size_t total;
	int huge;
};

#define HUGE_PAGE ((size_t)2 << 20)

zt_arena *zt_arena_new(size_t chunk)
{
	zt_arena *a = calloc(1, sizeof *a);

	if (a)
		a->chunk = chunk < 4096 ? 4096 : chunk;
	return a;
}

zt_arena *zt_arena_new_huge(void)
{
	/* 64 KiB chunks to start; whole huge pages past HUGE_AFTER */
	zt_arena *a = zt_arena_new(HUGE_PAGE - sizeof(struct chunk));

	if (a)
		a->huge = 1;
	return a;
}

void *zt_huge_calloc(size_t n, size_t size)
{
	size_t bytes, rounded;
	void *p;

	if (size && n > SIZE_MAX / size)
		return NULL;
	bytes = n * size;
	if (bytes < HUGE_PAGE)
		return calloc(n ? n : 1, size ? size : 1);
	rounded = (bytes + HUGE_PAGE - 1) & ~(HUGE_PAGE - 1);
	p = aligned_alloc(HUGE_PAGE, rounded);
	if (!p)
		return NULL;
	(void)madvise(p, rounded, MADV_HUGEPAGE); /* a hint; fine if refused */
	memset(p, 0, bytes);
	return p;
}

/* Huge pages only once an arena is big: a small policy should not cost a
 * proxy 2 MiB of resident memory per arena. */
#define HUGE_AFTER ((size_t)8 << 20)

static struct chunk *chunk_alloc(const zt_arena *a, size_t size)
{
	struct chunk *c;

	if (a->huge && a->total >= HUGE_AFTER && sizeof *c + size <= HUGE_PAGE) {
		c = aligned_alloc(HUGE_PAGE, HUGE_PAGE);
		if (c)
			(void)madvise(c, HUGE_PAGE, MADV_HUGEPAGE);
		return c;
	}
	return malloc(sizeof *c + size);
}

void *zt_arena_alloc(zt_arena *a, size_t n)
{
	struct chunk *c = a->head;
	size_t need = (n + 15) & ~(size_t)15;
	void *p;

	if (n == 0 || need < n)
		need = 16;
	if (!c || c->size - c->used < need) {
		size_t chunk = a->huge && a->total < HUGE_AFTER ? ((size_t)64 << 10) : a->chunk;
		size_t size = need > chunk ? need : chunk;

		if (size > SIZE_MAX - sizeof *c)
			return NULL;
		c = chunk_alloc(a, size);
		if (!c)
			return NULL;
		c->size = size;
		c->used = 0;
		c->next = a->head;
		a->head = c;
		a->total += sizeof *c + size;
	}
	p = c->data + c->used;
	c->used += need;
	memset(p, 0, need);
	return p;
}

char *zt_arena_strndup(zt_arena *a, const char *s, size_t n)
{
	char *p = zt_arena_alloc(a, n + 1);

	if (p) {
		if (n)
			memcpy(p, s, n);
		p[n] = '\0';
	}
	return p;
}

void zt_arena_free(zt_arena *a)
{
	struct chunk *c, *next;

	if (!a)
		return;
	for (c = a->head; c; c = next) {
		next = c->next;
		free(c);
	}
	free(a);
}

size_t zt_arena_size(const zt_arena *a)
{
	return a->total;
}
