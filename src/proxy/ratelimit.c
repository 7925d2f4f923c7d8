/*
 * proxy/ratelimit.c: token buckets for HTTP listeners' rateLimits.
 *
 * Each configured limit keeps one bucket per key (the caller's SPIFFE ID,
 * its IP address, or one for the whole listener) holding up to `burst`
 * tokens, refilled at `requestsPerSecond`; a request takes one token or is
 * refused with the time until the next one (Retry-After). Buckets live in
 * a table shared by the workers, split in stripes with a lock each, so
 * workers rarely wait on one another. The table is bounded: when a stripe
 * is full, the bucket used longest ago is reused, so a flood of new keys
 * (spoofed sources) costs memory once and cannot grow it. Tokens are kept
 * in thousandths so refills need no floating point.
 */
#include "proxy_int.h"

#include <stdlib.h>
#include <string.h>

#define RL_STRIPES 64
#define RL_PER_STRIPE 256 /* buckets: 16,384 keys per limit */
#define RL_KEY_MAX 256    /* longer keys are hashed and cut: same key, same bucket */

struct bucket {
	uint64_t hash;
	uint64_t milli;   /* tokens x 1000 */
	uint64_t last_ms; /* refilled up to here */
	uint16_t keylen;
	char key[RL_KEY_MAX];
};

struct stripe {
	pthread_mutex_t mu;
	size_t n;
	struct bucket *b; /* RL_PER_STRIPE, allocated on first use */
};

struct px_ratelimit {
	uint64_t rate;  /* tokens per second */
	uint64_t burst; /* tokens */
	struct stripe s[RL_STRIPES];
};

struct px_ratelimit *px_rl_new(uint64_t per_second, uint64_t burst)
{
	struct px_ratelimit *rl = calloc(1, sizeof *rl);

	if (!rl)
		return NULL;
	rl->rate = per_second;
	rl->burst = burst;
	for (size_t i = 0; i < RL_STRIPES; i++)
		pthread_mutex_init(&rl->s[i].mu, NULL);
	return rl;
}

void px_rl_free(struct px_ratelimit *rl)
{
	if (!rl)
		return;
	for (size_t i = 0; i < RL_STRIPES; i++) {
		pthread_mutex_destroy(&rl->s[i].mu);
		free(rl->s[i].b);
	}
	free(rl);
}

int px_rl_take(struct px_ratelimit *rl, const char *key, size_t keylen, uint64_t now_ms,
	       uint64_t *retry_ms)
{
	uint64_t h = zt_hash(key, keylen);
	struct stripe *st = &rl->s[h % RL_STRIPES];
	struct bucket *b = NULL;
	uint64_t cap = rl->burst * 1000;
	int ok;

	*retry_ms = 0;
	if (keylen > RL_KEY_MAX)
		keylen = RL_KEY_MAX;
	pthread_mutex_lock(&st->mu);
	if (!st->b && !(st->b = calloc(RL_PER_STRIPE, sizeof *st->b))) {
		pthread_mutex_unlock(&st->mu);
		return 1; /* out of memory: the limit cannot be kept, the request can */
	}
	for (size_t i = 0; i < st->n; i++)
		if (st->b[i].hash == h && st->b[i].keylen == keylen && !memcmp(st->b[i].key, key, keylen)) {
			b = &st->b[i];
			break;
		}
	if (!b) {
		if (st->n < RL_PER_STRIPE) {
			b = &st->b[st->n++];
		} else { /* full: reuse the bucket idle longest */
			b = &st->b[0];
			for (size_t i = 1; i < st->n; i++)
				if (st->b[i].last_ms < b->last_ms)
					b = &st->b[i];
		}
		b->hash = h;
		b->keylen = (uint16_t)keylen;
		memcpy(b->key, key, keylen);
		b->milli = cap;
		b->last_ms = now_ms;
	}
	if (now_ms > b->last_ms) {
		uint64_t add = (now_ms - b->last_ms) * rl->rate; /* thousandths per millisecond */

		b->milli = add >= cap - b->milli ? cap : b->milli + add;
		b->last_ms = now_ms;
	}
	ok = b->milli >= 1000;
	if (ok)
		b->milli -= 1000;
	else
		*retry_ms = (1000 - b->milli + rl->rate - 1) / rl->rate;
	pthread_mutex_unlock(&st->mu);
	return ok;
}
