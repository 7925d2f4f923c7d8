/* core/arena.c: bump allocation in chunks, freed all at once. */
#include "core.h"

#include <stdlib.h>
#include <string.h>

struct chunk {
	struct chunk *next;
	size_t size, used;
	_Alignas(16) unsigned char data[];
};

struct zt_arena {
	struct chunk *head;
	size_t chunk;
	size_t total;
};

zt_arena *zt_arena_new(size_t chunk)
{
	zt_arena *a = calloc(1, sizeof *a);

	if (a)
		a->chunk = chunk < 4096 ? 4096 : chunk;
	return a;
}

void *zt_arena_alloc(zt_arena *a, size_t n)
{
	struct chunk *c = a->head;
	size_t need = (n + 15) & ~(size_t)15;
	void *p;

	if (n == 0 || need < n)
		need = 16;
	if (!c || c->size - c->used < need) {
		size_t size = need > a->chunk ? need : a->chunk;

		if (size > SIZE_MAX - sizeof *c)
			return NULL;
		c = malloc(sizeof *c + size);
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
