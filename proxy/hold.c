/* Cold-start hold queues (see hold.h). */
#include "hold.h"

#include <stdlib.h>
#include <string.h>

struct zw_hold_count {
	struct zw_hold_count *next;
	uint32_t n;
	char key[];
};

static size_t hash_key(const char *k)
{
	uint64_t h = 1469598103934665603ull;
	for (; *k; k++)
		h = (h ^ (unsigned char)*k) * 1099511628211ull;
	return (size_t)(h % ZW_HOLD_BUCKETS);
}

void zw_hold_init(struct zw_hold *h)
{
	memset(h, 0, sizeof(*h));
}

void zw_hold_free(struct zw_hold *h)
{
	for (size_t b = 0; b < ZW_HOLD_BUCKETS; b++) {
		struct zw_hold_queue *q = h->buckets[b];
		while (q) {
			struct zw_hold_queue *next = q->next_q;
			for (struct zw_hold_item *it = q->head; it; it = it->next)
				it->q = NULL;
			free(q);
			q = next;
		}
		h->buckets[b] = NULL;
	}
	h->total = 0;
}

struct zw_hold_queue *zw_hold_find(struct zw_hold *h, const char *key)
{
	for (struct zw_hold_queue *q = h->buckets[hash_key(key)]; q; q = q->next_q)
		if (strcmp(q->key, key) == 0)
			return q;
	return NULL;
}

int zw_hold_push(struct zw_hold *h, const char *key, struct zw_hold_item *it)
{
	struct zw_hold_queue *q = zw_hold_find(h, key);
	if (!q) {
		size_t klen = strlen(key);
		q = calloc(1, sizeof(*q) + klen + 1);
		if (!q)
			return -1;
		memcpy(q->key, key, klen + 1);
		size_t b = hash_key(key);
		q->next_q = h->buckets[b];
		h->buckets[b] = q;
	}
	it->next = NULL;
	it->prev = q->tail;
	if (q->tail)
		q->tail->next = it;
	else
		q->head = it;
	q->tail = it;
	it->q = q;
	q->n++;
	h->total++;
	return 0;
}

/* Unlinks and frees an empty queue. */
static void drop_queue(struct zw_hold *h, struct zw_hold_queue *q)
{
	struct zw_hold_queue **pp = &h->buckets[hash_key(q->key)];
	while (*pp && *pp != q)
		pp = &(*pp)->next_q;
	if (*pp)
		*pp = q->next_q;
	free(q);
}

/* Unlinks it from q without freeing an emptied queue. */
static void unlink_item(struct zw_hold *h, struct zw_hold_item *it)
{
	struct zw_hold_queue *q = it->q;
	if (it->prev)
		it->prev->next = it->next;
	else
		q->head = it->next;
	if (it->next)
		it->next->prev = it->prev;
	else
		q->tail = it->prev;
	it->next = it->prev = NULL;
	it->q = NULL;
	q->n--;
	h->total--;
}

void zw_hold_remove(struct zw_hold *h, struct zw_hold_item *it)
{
	struct zw_hold_queue *q = it->q;
	if (!q)
		return;
	unlink_item(h, it);
	if (q->n == 0)
		drop_queue(h, q);
}

void zw_hold_each(struct zw_hold *h, void (*fn)(void *arg, struct zw_hold_queue *q), void *arg)
{
	/* Collect first: fn may empty (and we then free) the queue it got. */
	for (size_t b = 0; b < ZW_HOLD_BUCKETS; b++) {
		struct zw_hold_queue *q = h->buckets[b];
		while (q) {
			struct zw_hold_queue *next = q->next_q;
			if (q->n > 0)
				fn(arg, q);
			q = next;
		}
	}
	/* Free queues emptied by fn (zw_hold_remove frees at once, but fn
	 * may have removed items through unlink paths that kept q alive). */
	for (size_t b = 0; b < ZW_HOLD_BUCKETS; b++) {
		struct zw_hold_queue **pp = &h->buckets[b];
		while (*pp) {
			struct zw_hold_queue *q = *pp;
			if (q->n == 0) {
				*pp = q->next_q;
				free(q);
			} else {
				pp = &q->next_q;
			}
		}
	}
}

int zw_hold_limits_init(struct zw_hold_limits *l)
{
	memset(l->buckets, 0, sizeof(l->buckets));
	return pthread_mutex_init(&l->lock, NULL);
}

void zw_hold_limits_free(struct zw_hold_limits *l)
{
	for (size_t b = 0; b < ZW_HOLD_BUCKETS; b++) {
		struct zw_hold_count *c = l->buckets[b];
		while (c) {
			struct zw_hold_count *next = c->next;
			free(c);
			c = next;
		}
		l->buckets[b] = NULL;
	}
	pthread_mutex_destroy(&l->lock);
}

/* Finds the count for key; the lock must be held. */
static struct zw_hold_count **find_count(struct zw_hold_limits *l, const char *key)
{
	struct zw_hold_count **pp = &l->buckets[hash_key(key)];
	while (*pp && strcmp((*pp)->key, key) != 0)
		pp = &(*pp)->next;
	return pp;
}

int zw_hold_limits_take(struct zw_hold_limits *l, const char *key, uint32_t max)
{
	int rc = 0;
	pthread_mutex_lock(&l->lock);
	struct zw_hold_count **pp = find_count(l, key);
	if (!*pp) {
		size_t klen = strlen(key);
		struct zw_hold_count *c = calloc(1, sizeof(*c) + klen + 1);
		if (!c) {
			rc = -2;
			goto out;
		}
		memcpy(c->key, key, klen + 1);
		*pp = c;
	}
	if ((*pp)->n >= max) {
		rc = -1;
		goto out;
	}
	(*pp)->n++;
out:
	pthread_mutex_unlock(&l->lock);
	return rc;
}

void zw_hold_limits_give(struct zw_hold_limits *l, const char *key)
{
	pthread_mutex_lock(&l->lock);
	struct zw_hold_count **pp = find_count(l, key);
	struct zw_hold_count *c = *pp;
	if (c && c->n > 0 && --c->n == 0) {
		*pp = c->next;
		free(c);
	}
	pthread_mutex_unlock(&l->lock);
}

uint32_t zw_hold_limits_count(struct zw_hold_limits *l, const char *key)
{
	pthread_mutex_lock(&l->lock);
	struct zw_hold_count *c = *find_count(l, key);
	uint32_t n = c ? c->n : 0;
	pthread_mutex_unlock(&l->lock);
	return n;
}
