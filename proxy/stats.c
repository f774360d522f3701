/* zerowire per-target request counting: see stats.h and docs/stats.md. */
#include "stats.h"

#include "hash.h"
#include "list.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

/* One ring slot: `idx` is the absolute bucket number (now / granularity)
 * plus one, so 0 marks a slot never written. */
struct zw_stats_bucket {
	uint64_t idx;
	uint64_t count;
};

struct zw_stats_entry {
	/* Hot path: written by worker threads. */
	_Atomic int64_t concurrency;
	_Atomic int64_t held;
	_Atomic uint64_t requests;
	atomic_int wake;
	atomic_bool active;

	/* Registry mutex from here on. */
	struct zw_stats *owner;
	struct zw_stats_entry *prev, *next; /* hash chain (lib/list.h) */
	int refs;
	uint64_t sampled; /* `requests` at the last tick */
	uint64_t window_ms;
	uint64_t gran_ms;
	size_t n_buckets;
	struct zw_stats_bucket *ring; /* allocated on the first recorded request */
	uint64_t cur;                 /* newest bucket index the ring has advanced to */
	uint64_t total;               /* sum of the ring's live buckets */
	uint64_t first_ms;            /* when the current stretch of activity began */
	uint64_t last_ms;             /* last time anything was recorded */
	bool have_data;
	size_t hash;
	char key[];
};

struct zw_stats {
	pthread_mutex_t mu;
	struct zw_stats_entry **table;
	size_t table_size; /* power of two */
	size_t count;
	atomic_int any_wake;
	pthread_mutex_t notify_mu;
	void (*notify)(void *arg);
	void *notify_arg;
};

static size_t key_hash(const char *key)
{
	return (size_t)zw_hash_str(key);
}

int zw_stats_new(struct zw_stats **out)
{
	struct zw_stats *s = calloc(1, sizeof(*s));

	if (!s)
		return -ENOMEM;
	s->table_size = 64;
	s->table = calloc(s->table_size, sizeof(*s->table));
	if (!s->table) {
		free(s);
		return -ENOMEM;
	}
	pthread_mutex_init(&s->mu, NULL);
	pthread_mutex_init(&s->notify_mu, NULL);
	*out = s;
	return 0;
}

static void entry_free(struct zw_stats_entry *e)
{
	if (!e)
		return;
	free(e->ring);
	free(e);
}

void zw_stats_free(struct zw_stats *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->table_size; i++) {
		struct zw_stats_entry *e = s->table[i];

		while (e) {
			struct zw_stats_entry *next = e->next;

			entry_free(e);
			e = next;
		}
	}
	free(s->table);
	pthread_mutex_destroy(&s->mu);
	pthread_mutex_destroy(&s->notify_mu);
	free(s);
}

void zw_stats_set_notify(struct zw_stats *s, void (*fn)(void *arg), void *arg)
{
	pthread_mutex_lock(&s->notify_mu);
	s->notify = fn;
	s->notify_arg = arg;
	pthread_mutex_unlock(&s->notify_mu);
}

/* Registry locked. */
static struct zw_stats_entry *find_locked(struct zw_stats *s, const char *key, size_t h)
{
	for (struct zw_stats_entry *e = s->table[h & (s->table_size - 1)]; e; e = e->next)
		if (e->hash == h && strcmp(e->key, key) == 0)
			return e;
	return NULL;
}

/* Registry locked. Doubling failure is not an error: chains just get longer. */
static void grow_locked(struct zw_stats *s)
{
	size_t n = s->table_size * 2;
	struct zw_stats_entry **t;

	if (s->count < s->table_size || n > ((size_t)1 << 24))
		return;
	t = calloc(n, sizeof(*t));
	if (!t)
		return;
	for (size_t i = 0; i < s->table_size; i++) {
		struct zw_stats_entry *e = s->table[i];

		while (e) {
			struct zw_stats_entry *next = e->next;
			size_t b = e->hash & (n - 1);

			ZW_LIST_PUSH(t[b], e);
			e = next;
		}
	}
	free(s->table);
	s->table = t;
	s->table_size = n;
}

/* Normalises window/granularity: defaults, granularity no finer than
 * window / ZW_STATS_MAX_BUCKETS. Returns 0 or -EINVAL. */
static int norm_window(uint64_t *window_ms, uint64_t *gran_ms, size_t *n_buckets)
{
	uint64_t w = *window_ms ? *window_ms : ZW_STATS_DEFAULT_WINDOW;
	uint64_t g = *gran_ms ? *gran_ms : ZW_STATS_DEFAULT_GRAN;
	uint64_t n;

	if (w > ZW_STATS_MAX_WINDOW || g > w)
		return -EINVAL;
	if ((w + g - 1) / g > ZW_STATS_MAX_BUCKETS)
		g = (w + ZW_STATS_MAX_BUCKETS - 1) / ZW_STATS_MAX_BUCKETS;
	n = (w + g - 1) / g;
	*window_ms = w;
	*gran_ms = g;
	*n_buckets = (size_t)n;
	return 0;
}

int zw_stats_acquire(struct zw_stats *s, const char *key, uint64_t window_ms,
                     uint64_t granularity_ms, struct zw_stats_entry **out)
{
	size_t klen, nb, h, b;
	struct zw_stats_entry *e;
	int rc;

	if (!key || !*key)
		return -EINVAL;
	klen = strlen(key);
	if (klen >= ZW_STATS_KEY_MAX)
		return -ENAMETOOLONG;
	rc = norm_window(&window_ms, &granularity_ms, &nb);
	if (rc < 0)
		return rc;
	h = key_hash(key);
	pthread_mutex_lock(&s->mu);
	e = find_locked(s, key, h);
	if (e) {
		if (e->window_ms != window_ms || e->gran_ms != granularity_ms) {
			free(e->ring);
			e->ring = NULL;
			e->total = 0;
			e->window_ms = window_ms;
			e->gran_ms = granularity_ms;
			e->n_buckets = nb;
			e->have_data = false;
		}
		e->refs++;
		goto out;
	}
	e = calloc(1, sizeof(*e) + klen + 1);
	if (!e) {
		pthread_mutex_unlock(&s->mu);
		return -ENOMEM;
	}
	memcpy(e->key, key, klen + 1);
	e->owner = s;
	e->refs = 1;
	e->hash = h;
	e->window_ms = window_ms;
	e->gran_ms = granularity_ms;
	e->n_buckets = nb;
	b = h & (s->table_size - 1);
	ZW_LIST_PUSH(s->table[b], e);
	s->count++;
	grow_locked(s);
out:
	pthread_mutex_unlock(&s->mu);
	*out = e;
	return 0;
}

void zw_stats_release(struct zw_stats *s, struct zw_stats_entry *e)
{
	size_t b;

	if (!e)
		return;
	pthread_mutex_lock(&s->mu);
	if (--e->refs > 0) {
		pthread_mutex_unlock(&s->mu);
		return;
	}
	b = e->hash & (s->table_size - 1);
	ZW_LIST_UNLINK(s->table[b], e);
	s->count--;
	pthread_mutex_unlock(&s->mu);
	entry_free(e);
}

static void raise_wake(struct zw_stats_entry *e)
{
	struct zw_stats *s = e->owner;

	atomic_store_explicit(&e->active, true, memory_order_relaxed);
	if (atomic_exchange_explicit(&e->wake, 1, memory_order_acq_rel) != 0)
		return;
	atomic_store_explicit(&s->any_wake, 1, memory_order_release);
	pthread_mutex_lock(&s->notify_mu);
	if (s->notify)
		s->notify(s->notify_arg);
	pthread_mutex_unlock(&s->notify_mu);
}

void zw_stats_begin(struct zw_stats_entry *e)
{
	atomic_fetch_add_explicit(&e->requests, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&e->concurrency, 1, memory_order_relaxed);
	if (!atomic_load_explicit(&e->active, memory_order_relaxed))
		raise_wake(e);
}

void zw_stats_end(struct zw_stats_entry *e)
{
	atomic_fetch_sub_explicit(&e->concurrency, 1, memory_order_relaxed);
}

void zw_stats_cold(struct zw_stats_entry *e)
{
	raise_wake(e);
}

void zw_stats_held(struct zw_stats_entry *e, int delta)
{
	atomic_fetch_add_explicit(&e->held, delta, memory_order_relaxed);
}

const char *zw_stats_entry_key(const struct zw_stats_entry *e)
{
	return e->key;
}

/* Registry locked. Moves the ring forward to now_ms: buckets that fall out
 * of the window are subtracted from the running total and reused, so
 * reading the window is O(1). Time never goes backwards here. */
static void advance_locked(struct zw_stats_entry *e, uint64_t now_ms)
{
	uint64_t idx = now_ms / e->gran_ms, steps;

	if (!e->ring || idx <= e->cur)
		return;
	steps = idx - e->cur;
	if (steps >= e->n_buckets) {
		memset(e->ring, 0, e->n_buckets * sizeof(*e->ring));
		e->total = 0;
	} else {
		for (uint64_t k = 1; k <= steps; k++) {
			struct zw_stats_bucket *b = &e->ring[(e->cur + k) % e->n_buckets];

			e->total -= b->count;
			b->count = 0;
			b->idx = e->cur + k + 1;
		}
	}
	e->cur = idx;
}

/* Registry locked. Adds n requests at now_ms to e's ring. Returns 0 or
 * -ENOMEM (the requests are then lost for the rate, not for the counter). */
static int record_locked(struct zw_stats_entry *e, uint64_t n, uint64_t now_ms)
{
	struct zw_stats_bucket *b;

	if (n == 0)
		return 0;
	if (!e->ring) {
		e->ring = calloc(e->n_buckets, sizeof(*e->ring));
		if (!e->ring)
			return -ENOMEM;
		e->cur = now_ms / e->gran_ms;
		e->total = 0;
	}
	advance_locked(e, now_ms);
	b = &e->ring[e->cur % e->n_buckets];
	b->idx = e->cur + 1;
	b->count += n;
	e->total += n;
	if (!e->have_data || now_ms - e->last_ms >= e->window_ms || now_ms < e->first_ms)
		e->first_ms = now_ms;
	e->last_ms = now_ms;
	e->have_data = true;
	return 0;
}

/* Registry locked. Requests in the window ending at now_ms, recorded ones
 * only. */
static uint64_t window_sum_locked(struct zw_stats_entry *e, uint64_t now_ms)
{
	if (!e->ring || !e->have_data)
		return 0;
	advance_locked(e, now_ms);
	return e->total;
}

/* Registry locked. */
static void snapshot_locked(struct zw_stats_entry *e, uint64_t now_ms,
                            struct zw_stats_snapshot *out)
{
	uint64_t req = atomic_load_explicit(&e->requests, memory_order_relaxed);
	int64_t conc = atomic_load_explicit(&e->concurrency, memory_order_relaxed);
	int64_t held = atomic_load_explicit(&e->held, memory_order_relaxed);
	uint64_t sum = window_sum_locked(e, now_ms);
	uint64_t partial = req - e->sampled;
	uint64_t span;

	memset(out, 0, sizeof(*out));
	out->requests = req;
	out->concurrency = conc > 0 ? conc : 0;
	out->held = held > 0 ? held : 0;
	out->window_ms = e->window_ms;
	out->granularity_ms = e->gran_ms;
	out->window_requests = (double)(sum + partial);
	if (sum + partial > 0) {
		span = sum > 0 && now_ms > e->first_ms ? now_ms - e->first_ms : 0;
		if (span < e->gran_ms)
			span = e->gran_ms;
		if (span > e->window_ms)
			span = e->window_ms;
		out->rate = (double)(sum + partial) * 1000.0 / (double)span;
	}
	out->active = out->concurrency > 0 || out->rate > 0;
}

int zw_stats_tick(struct zw_stats *s, uint64_t now_ms)
{
	pthread_mutex_lock(&s->mu);
	for (size_t i = 0; i < s->table_size; i++) {
		for (struct zw_stats_entry *e = s->table[i]; e; e = e->next) {
			uint64_t req = atomic_load_explicit(&e->requests, memory_order_relaxed);
			int64_t conc;

			record_locked(e, req - e->sampled, now_ms);
			e->sampled = req;
			conc = atomic_load_explicit(&e->concurrency, memory_order_relaxed);
			if (conc <= 0 && window_sum_locked(e, now_ms) == 0)
				atomic_store_explicit(&e->active, false, memory_order_relaxed);
			else
				atomic_store_explicit(&e->active, true, memory_order_relaxed);
		}
	}
	pthread_mutex_unlock(&s->mu);
	return 0;
}

int zw_stats_add_remote(struct zw_stats *s, const char *key, uint64_t delta, uint64_t now_ms)
{
	struct zw_stats_entry *e;
	int rc = 0;

	pthread_mutex_lock(&s->mu);
	e = find_locked(s, key, key_hash(key));
	if (!e)
		rc = -ENOENT;
	else if (delta > 0)
		rc = record_locked(e, delta, now_ms);
	pthread_mutex_unlock(&s->mu);
	return rc;
}

int zw_stats_get(struct zw_stats *s, const char *key, uint64_t now_ms,
                 struct zw_stats_snapshot *out)
{
	struct zw_stats_entry *e;
	int rc = 0;

	pthread_mutex_lock(&s->mu);
	e = find_locked(s, key, key_hash(key));
	if (e)
		snapshot_locked(e, now_ms, out);
	else
		rc = -ENOENT;
	pthread_mutex_unlock(&s->mu);
	return rc;
}

int zw_stats_foreach(struct zw_stats *s, uint64_t now_ms,
                     int (*fn)(void *arg, const char *key, const struct zw_stats_snapshot *snap),
                     void *arg)
{
	struct zw_stats_snapshot snap;
	int rc = 0;

	pthread_mutex_lock(&s->mu);
	for (size_t i = 0; i < s->table_size && rc == 0; i++) {
		for (struct zw_stats_entry *e = s->table[i]; e && rc == 0; e = e->next) {
			snapshot_locked(e, now_ms, &snap);
			rc = fn(arg, e->key, &snap);
		}
	}
	pthread_mutex_unlock(&s->mu);
	return rc;
}

int zw_stats_take_wakes(struct zw_stats *s, void (*fn)(void *arg, const char *key), void *arg)
{
	int n = 0;

	if (!atomic_exchange_explicit(&s->any_wake, 0, memory_order_acq_rel))
		return 0;
	pthread_mutex_lock(&s->mu);
	for (size_t i = 0; i < s->table_size; i++) {
		for (struct zw_stats_entry *e = s->table[i]; e; e = e->next) {
			if (!atomic_exchange_explicit(&e->wake, 0, memory_order_acq_rel))
				continue;
			n++;
			if (fn)
				fn(arg, e->key);
		}
	}
	pthread_mutex_unlock(&s->mu);
	return n;
}

size_t zw_stats_count(struct zw_stats *s)
{
	size_t n;

	pthread_mutex_lock(&s->mu);
	n = s->count;
	pthread_mutex_unlock(&s->mu);
	return n;
}
