/* Cold-start hold queues (docs/hold-queue.md).
 *
 * A request whose target has no ready endpoint waits in a FIFO queue of its
 * target on the worker that accepted it. Each worker owns a struct zw_hold
 * (single-threaded: only that worker's loop touches it); the per-target
 * maximum of held requests is enforced across workers by a process-wide
 * counter per target key (struct zw_hold_limits, a mutex-guarded map only
 * touched when a request starts or stops being held, never on the warm
 * path).
 *
 * Items are embedded in the caller's request struct (no allocation per held
 * request besides the queue of a target, created on first use and freed
 * when it empties). */
#ifndef ZW_HOLD_H
#define ZW_HOLD_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

struct zw_hold_queue;

struct zw_hold_item {
	struct zw_hold_item *next, *prev;
	struct zw_hold_queue *q; /* NULL when not held */
};

struct zw_hold_queue {
	struct zw_hold_queue *next_q; /* hash chain */
	struct zw_hold_item *head, *tail;
	size_t n;
	char key[]; /* target key */
};

#define ZW_HOLD_BUCKETS 256

struct zw_hold {
	struct zw_hold_queue *buckets[ZW_HOLD_BUCKETS];
	size_t total; /* held requests on this worker */
};

/* Process-wide held counts per target key, for the max-held limit. */
struct zw_hold_limits {
	pthread_mutex_t lock;
	struct zw_hold_count *buckets[ZW_HOLD_BUCKETS];
};

/* Initialises an empty per-worker hold set. */
void zw_hold_init(struct zw_hold *h);

/* Frees the (empty) queues. Items still queued are unlinked, not freed. */
void zw_hold_free(struct zw_hold *h);

/* Appends item `it` (caller-owned, not held) to the queue of `key`
 * (copied). Returns 0, or -1 when out of memory (item not held). */
int zw_hold_push(struct zw_hold *h, const char *key, struct zw_hold_item *it);

/* Removes a held item from its queue (frees the queue when it empties).
 * A no-op for an item that is not held. */
void zw_hold_remove(struct zw_hold *h, struct zw_hold_item *it);

/* Returns the queue of `key`, or NULL when nothing is held for it. */
struct zw_hold_queue *zw_hold_find(struct zw_hold *h, const char *key);

/* Calls fn(arg, q) for every non-empty queue. fn may remove items of q but
 * no other queue's. Queues emptied by fn are freed after fn returns. */
void zw_hold_each(struct zw_hold *h, void (*fn)(void *arg, struct zw_hold_queue *q), void *arg);

/* Initialises the process-wide counts. Returns 0 or a pthread error. */
int zw_hold_limits_init(struct zw_hold_limits *l);

/* Frees the counts. */
void zw_hold_limits_free(struct zw_hold_limits *l);

/* Takes one held slot for `key` if fewer than `max` are taken. Returns 0,
 * -1 when the target is full, -2 when out of memory. Any thread. */
int zw_hold_limits_take(struct zw_hold_limits *l, const char *key, uint32_t max);

/* Gives back a slot taken for `key`. Any thread. */
void zw_hold_limits_give(struct zw_hold_limits *l, const char *key);

/* Returns the slots currently taken for `key`. Any thread. */
uint32_t zw_hold_limits_count(struct zw_hold_limits *l, const char *key);

#endif
