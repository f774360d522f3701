/* Request admission and waiting (see hold.h). */
#include "hold.h"

#include "list.h"
#include "target.h"

#include <stdlib.h>
#include <string.h>

struct zw_hold_queue {
	struct zw_strmap_node node;       /* in h->queues, by key */
	struct zw_hold_item *head, *tail; /* waiting items, oldest first */
	uint32_t n;
	char key[]; /* target key */
};

static struct zw_hold_queue *queue_of(struct zw_strmap_node *n)
{
	return n ? ZW_STRMAP_ENTRY(n, struct zw_hold_queue, node) : NULL;
}

int zw_hold_init(struct zw_hold *h, int n_workers)
{
	h->queues = (struct zw_strmap){0};
	memset(h->mail, 0, sizeof(h->mail));
	atomic_init(&h->total, 0);
	h->n_workers = n_workers;
	return pthread_mutex_init(&h->lock, NULL);
}

/* Frees queue n, leaving its items unqueued. */
static void free_queue(struct zw_strmap_node *n, void *ctx)
{
	struct zw_hold_queue *q = queue_of(n);
	(void)ctx;
	for (struct zw_hold_item *it = q->head; it; it = it->next)
		it->q = NULL;
	free(q);
}

void zw_hold_free(struct zw_hold *h)
{
	zw_strmap_each(&h->queues, free_queue, NULL);
	zw_strmap_free(&h->queues);
	pthread_mutex_destroy(&h->lock);
}

/* Finds the queue of key; the lock is held. */
static struct zw_hold_queue *find_queue(struct zw_hold *h, const char *key)
{
	return queue_of(zw_strmap_get(&h->queues, key));
}

/* Unlinks and frees an empty queue; the lock is held. */
static void drop_queue(struct zw_hold *h, struct zw_hold_queue *q)
{
	zw_strmap_remove(&h->queues, &q->node);
	free(q);
}

/* Unlinks it from its queue, freeing the queue when it empties; the lock
 * is held. */
static void dequeue(struct zw_hold *h, struct zw_hold_item *it)
{
	struct zw_hold_queue *q = it->q;
	ZW_QUEUE_UNLINK(q->head, q->tail, it);
	it->q = NULL;
	it->state = ZW_HOLD_IDLE;
	q->n--;
	atomic_fetch_sub(&h->total, 1);
	if (q->n == 0)
		drop_queue(h, q);
}

/* Appends it to key's queue (made on first use); the lock is held. */
static int enqueue(struct zw_hold *h, const char *key, struct zw_hold_item *it, uint32_t max)
{
	struct zw_hold_queue *q = find_queue(h, key);
	if (q && q->n >= max)
		return ZW_ADMIT_FULL;
	if (!q) {
		if (max == 0)
			return ZW_ADMIT_FULL;
		size_t klen = strlen(key);
		q = calloc(1, sizeof(*q) + klen + 1);
		if (!q)
			return ZW_ADMIT_NOMEM;
		memcpy(q->key, key, klen + 1);
		if (zw_strmap_put(&h->queues, &q->node, q->key) < 0) {
			free(q);
			return ZW_ADMIT_NOMEM;
		}
	}
	ZW_QUEUE_APPEND(q->head, q->tail, it);
	it->q = q;
	it->state = ZW_HOLD_QUEUED;
	q->n++;
	atomic_fetch_add(&h->total, 1);
	return ZW_ADMIT_QUEUED;
}

uint32_t zw_allowance_of(const struct zw_allowance *a, const struct zw_endpoint *ep,
                         uint64_t now_ms)
{
	uint32_t per = a->per_endpoint;
	if (per == 0 || a->slow_start_ms == 0)
		return per;
	uint64_t since = zw_endpoint_ready_since(ep);
	if (since == 0 || now_ms <= since)
		return since == 0 ? per : 1;
	uint64_t age = now_ms - since;
	if (age >= a->slow_start_ms)
		return per;
	uint64_t share = (uint64_t)per * age / a->slow_start_ms;
	return share < 1 ? 1 : (uint32_t)share;
}

/* Takes a slot on ep if it is below its allowance. */
static int try_slot(const struct zw_allowance *a, const struct zw_endpoint *ep, uint64_t now_ms)
{
	return zw_endpoint_try_begin(ep, (long)zw_allowance_of(a, ep, now_ms));
}

const struct zw_endpoint *zw_hold_acquire(const struct zw_endpoint_set *set,
                                          const struct zw_allowance *a, uint64_t now_ms,
                                          uint64_t *rng)
{
	if (!set || set->n == 0)
		return NULL;
	if (a->per_endpoint == 0)
		return zw_endpoint_pick(set, rng);
	const struct zw_endpoint *first = &set->eps[0], *second = NULL;
	if (set->n > 1) {
		uint64_t r = zw_endpoints_random(rng);
		size_t i = (size_t)((r >> 32) % set->n);
		size_t j = (size_t)((r & 0xffffffffu) % (set->n - 1));
		if (j >= i)
			j++;
		first = &set->eps[i];
		second = &set->eps[j];
		if (zw_endpoint_outstanding(second) < zw_endpoint_outstanding(first)) {
			const struct zw_endpoint *t = first;
			first = second;
			second = t;
		}
	}
	if (try_slot(a, first, now_ms))
		return first;
	if (second && try_slot(a, second, now_ms))
		return second;
	/* Both choices are full: the least loaded endpoint with room. */
	for (int attempt = 0; attempt < 4; attempt++) {
		const struct zw_endpoint *best = NULL;
		long best_room = 0;
		for (size_t k = 0; k < set->n; k++) {
			const struct zw_endpoint *e = &set->eps[k];
			long room =
			        (long)zw_allowance_of(a, e, now_ms) - zw_endpoint_outstanding(e);
			if (room > best_room) {
				best = e;
				best_room = room;
			}
		}
		if (!best)
			return NULL;
		if (try_slot(a, best, now_ms))
			return best;
	}
	return NULL;
}

enum zw_admit zw_hold_admit(struct zw_hold *h, const char *key, struct zw_hold_item *it, int worker,
                            uint32_t max, const struct zw_endpoint_set *set,
                            const struct zw_allowance *a, uint64_t now_ms, uint64_t *rng)
{
	pthread_mutex_lock(&h->lock);
	enum zw_admit rc;
	it->worker = worker;
	it->ep = NULL;
	it->set = NULL;
	if (!find_queue(h, key) && (it->ep = zw_hold_acquire(set, a, now_ms, rng)))
		rc = ZW_ADMIT_FORWARD;
	else
		rc = (enum zw_admit)enqueue(h, key, it, max);
	pthread_mutex_unlock(&h->lock);
	return rc;
}

/* Appends a granted item to its worker's mailbox; the lock is held. */
static void post(struct zw_hold *h, struct zw_hold_item *it)
{
	struct zw_hold_mailbox *m = &h->mail[it->worker];
	ZW_QUEUE_APPEND(m->head, m->tail, it);
	it->state = ZW_HOLD_GRANTED;
}

/* Grants the oldest items of q while an endpoint has room; the lock is
 * held. Returns the mask of workers posted to. */
static uint64_t release_queue(struct zw_hold *h, struct zw_hold_queue *q, zw_hold_target_fn fn,
                              void *arg, uint64_t now_ms, uint64_t *rng)
{
	struct zw_endpoint_set *set = NULL;
	struct zw_allowance a = {0};
	fn(arg, q->head, &set, &a);
	uint64_t mask = 0;
	if (!set)
		return 0;
	while (q->n > 0) {
		const struct zw_endpoint *ep = zw_hold_acquire(set, &a, now_ms, rng);
		if (!ep)
			break;
		struct zw_hold_item *it = q->head;
		int last = q->n == 1;
		dequeue(h, it); /* frees q with its last item */
		it->ep = ep;
		it->set = zw_endpoint_set_ref(set);
		post(h, it);
		mask |= 1ull << it->worker;
		if (last)
			break;
	}
	zw_endpoint_set_unref(set);
	return mask;
}

struct release_call {
	struct zw_hold *h;
	zw_hold_target_fn fn;
	void *arg;
	uint64_t now_ms, *rng, mask;
};

static void release_one(struct zw_strmap_node *n, void *ctx)
{
	struct release_call *c = ctx;
	c->mask |= release_queue(c->h, queue_of(n), c->fn, c->arg, c->now_ms, c->rng);
}

uint64_t zw_hold_release(struct zw_hold *h, zw_hold_target_fn fn, void *arg, uint64_t now_ms,
                         uint64_t *rng)
{
	if (atomic_load(&h->total) == 0)
		return 0;
	struct release_call c = {h, fn, arg, now_ms, rng, 0};
	pthread_mutex_lock(&h->lock);
	zw_strmap_each(&h->queues, release_one, &c); /* may free the queue it is given */
	pthread_mutex_unlock(&h->lock);
	return c.mask;
}

struct zw_hold_item *zw_hold_take_granted(struct zw_hold *h, int worker)
{
	pthread_mutex_lock(&h->lock);
	struct zw_hold_mailbox *m = &h->mail[worker];
	struct zw_hold_item *list = m->head;
	m->head = m->tail = NULL;
	for (struct zw_hold_item *it = list; it; it = it->next) {
		it->state = ZW_HOLD_IDLE;
		it->prev = NULL;
	}
	pthread_mutex_unlock(&h->lock);
	return list;
}

int zw_hold_cancel(struct zw_hold *h, struct zw_hold_item *it)
{
	int gave = 0;
	pthread_mutex_lock(&h->lock);
	if (it->state == ZW_HOLD_QUEUED) {
		dequeue(h, it);
	} else if (it->state == ZW_HOLD_GRANTED) {
		struct zw_hold_mailbox *m = &h->mail[it->worker];
		ZW_QUEUE_UNLINK(m->head, m->tail, it);
		it->state = ZW_HOLD_IDLE;
		zw_endpoint_done(it->ep);
		zw_endpoint_set_unref(it->set);
		it->ep = NULL;
		it->set = NULL;
		gave = 1;
	}
	pthread_mutex_unlock(&h->lock);
	return gave;
}

uint32_t zw_hold_count(struct zw_hold *h, const char *key)
{
	pthread_mutex_lock(&h->lock);
	struct zw_hold_queue *q = find_queue(h, key);
	uint32_t n = q ? q->n : 0;
	pthread_mutex_unlock(&h->lock);
	return n;
}

size_t zw_hold_total(struct zw_hold *h)
{
	return atomic_load(&h->total);
}

/* ---- policy ----------------------------------------------------------- */

struct zw_allowance zw_hold_allowance(const struct zw_target *t, const struct zw_hold_defaults *d,
                                      int pacing)
{
	int on_concurrency = (t->metrics & ZW_METRIC_CONCURRENCY) && t->concurrency_target >= 1;
	int64_t ec = t->endpoint_concurrency == ZW_ALLOWANCE_UNSET ? d->endpoint_concurrency
	                                                           : t->endpoint_concurrency;
	struct zw_allowance a = {
	        .slow_start_ms =
	                t->slow_start_ms >= 0 ? (uint64_t)t->slow_start_ms : d->slow_start_ms,
	};
	if (ec == ZW_ALLOWANCE_AUTO)
		a.per_endpoint = on_concurrency ? (uint32_t)t->concurrency_target : 0;
	else if (ec > 0)
		a.per_endpoint = (uint32_t)ec;
	if (a.per_endpoint == 0 && pacing)
		a.per_endpoint = on_concurrency ? (uint32_t)t->concurrency_target
		                                : (uint32_t)d->release_per_endpoint;
	return a;
}

uint32_t zw_hold_max_waiting(const struct zw_target *t, const struct zw_hold_defaults *d)
{
	return t->max_pending ? t->max_pending : d->max_waiting;
}

uint64_t zw_hold_wait_ms(const struct zw_target *t, const struct zw_hold_defaults *d)
{
	return t->readiness_timeout_ms ? t->readiness_timeout_ms : d->wait_ms;
}

enum zw_cold_action zw_hold_cold_action(const struct zw_target *t)
{
	if (t->has_placeholder && !t->has_fallback && !(t->max_pending && t->overflow_placeholder))
		return ZW_COLD_PLACEHOLDER;
	return ZW_COLD_WAIT;
}

enum zw_timeout_action zw_hold_timeout_action(const struct zw_target *t, int past_request_deadline)
{
	if (past_request_deadline)
		return ZW_TIMEOUT_GATEWAY;
	if (t->has_fallback)
		return ZW_TIMEOUT_FALLBACK;
	return t->has_placeholder ? ZW_TIMEOUT_PLACEHOLDER : ZW_TIMEOUT_GATEWAY;
}

int zw_hold_overflow_placeholder(const struct zw_target *t)
{
	return t->overflow_placeholder && t->has_placeholder;
}
