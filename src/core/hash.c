/* core/hash.c: a fast table hash and a set of strings. */
#include "core.h"

#include <stdlib.h>
#include <string.h>

uint64_t zt_hash(const void *data, size_t n)
{
	const unsigned char *p = data;
	uint64_t h = 0x243f6a8885a308d3ull ^ n;

	while (n >= 8) {
		uint64_t w;

		memcpy(&w, p, 8);
		h = (h ^ w) * 0x9e3779b97f4a7c15ull;
		h ^= h >> 29;
		p += 8;
		n -= 8;
	}
	if (n) {
		uint64_t w = 0;

		memcpy(&w, p, n);
		h = (h ^ w) * 0x9e3779b97f4a7c15ull;
		h ^= h >> 29;
	}
	h *= 0xbf58476d1ce4e5b9ull;
	return h ^ (h >> 31);
}

struct slot {
	const char *p;
	size_t n;
};

struct zt_strset {
	struct slot *v;
	size_t cap, used;
};

zt_strset *zt_strset_new(void)
{
	return calloc(1, sizeof(zt_strset));
}

void zt_strset_free(zt_strset *s)
{
	if (s)
		free(s->v);
	free(s);
}

static struct slot *find(const zt_strset *s, const char *p, size_t n)
{
	size_t i = (size_t)zt_hash(p, n) & (s->cap - 1);

	while (s->v[i].p && !(s->v[i].n == n && memcmp(s->v[i].p, p, n) == 0))
		i = (i + 1) & (s->cap - 1);
	return &s->v[i];
}

int zt_strset_has(const zt_strset *s, const char *p, size_t n)
{
	return s->cap && find(s, p, n)->p != NULL;
}

int zt_strset_add(zt_strset *s, const char *p, size_t n)
{
	struct slot *sl;

	if ((s->used + 1) * 2 > s->cap) {
		size_t ncap = s->cap ? s->cap * 2 : 64;
		struct slot *old = s->v;
		size_t ocap = s->cap;

		if (!(s->v = calloc(ncap, sizeof *s->v))) {
			s->v = old;
			return -1;
		}
		s->cap = ncap;
		for (size_t i = 0; i < ocap; i++)
			if (old[i].p)
				*find(s, old[i].p, old[i].n) = old[i];
		free(old);
	}
	sl = find(s, p, n);
	if (sl->p)
		return 0;
	*sl = (struct slot){ p, n };
	s->used++;
	return 1;
}
