/* zerowire per-target request counting.
 *
 * One registry (struct zw_stats) holds one entry per target, keyed by
 * zw_target_key(). The data path (any number of worker threads) only touches
 * an entry through the hot-path calls below: relaxed atomics, no locks, no
 * allocation. Everything else (sampling into the window, reading rates,
 * creating and removing entries) takes the registry mutex and is meant for
 * the control loop (the scaler's loop), a few times per second.
 *
 * Counting model (docs/stats.md):
 *   requests     monotonic counter of requests that entered (local only);
 *   concurrency  requests in flight, held cold-start requests included;
 *   held         requests currently held waiting for an endpoint (subset);
 *   rate         requests per second over the sliding window: a ring of
 *                ceil(window / granularity) buckets fed by zw_stats_tick()
 *                from the counter deltas (plus deltas reported by peer
 *                replicas, zw_stats_add_remote), plus the not yet sampled
 *                part of the counter, so one request shows at once. The
 *                divisor is the time since activity began, clamped to
 *                [granularity, window]. Computed in double: one request
 *                in a 1 h window still reads > 0 (no rounding).
 *   wake         "this target needs to be scaled up now": raised by
 *                zw_stats_cold() and by the first request of an idle target;
 *                the registry's notify callback runs (from the calling
 *                thread; meant to be a uv_async_send) and the control loop
 *                collects the keys with zw_stats_take_wakes().
 *
 * Limits: key length < ZW_STATS_KEY_MAX (longer keys: -ENAMETOOLONG); at most
 * ZW_STATS_MAX_BUCKETS buckets per entry (a finer granularity is coarsened
 * to ceil(window / ZW_STATS_MAX_BUCKETS)); window at most 24 h. */
#ifndef ZW_STATS_H
#define ZW_STATS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ZW_STATS_KEY_MAX        512
#define ZW_STATS_MAX_BUCKETS    3600
#define ZW_STATS_DEFAULT_WINDOW 60000 /* ms */
#define ZW_STATS_DEFAULT_GRAN   1000  /* ms */
#define ZW_STATS_MAX_WINDOW     (24ull * 3600 * 1000)

struct zw_stats;
struct zw_stats_entry;

/* A consistent-enough view of one entry at time now_ms. */
struct zw_stats_snapshot {
	uint64_t requests;       /* local monotonic request counter */
	int64_t concurrency;     /* local, never negative */
	int64_t held;            /* local, never negative */
	double rate;             /* req/s over the window, local + remote deltas */
	double window_requests;  /* requests counted in the current window */
	uint64_t window_ms;      /* effective window */
	uint64_t granularity_ms; /* effective granularity */
	bool active;             /* concurrency > 0 || rate > 0 */
};

/* Creates an empty registry into *out (caller owns; zw_stats_free).
 * Returns 0 or -ENOMEM. */
int zw_stats_new(struct zw_stats **out);

/* Frees the registry and every entry, whatever their reference counts: call
 * only when no thread uses it any more. NULL-safe. */
void zw_stats_free(struct zw_stats *s);

/* Sets the function called when an entry raises its wake flag (from the
 * thread that called zw_stats_begin/zw_stats_cold, at most once until the
 * wakes are taken). fn must be thread-safe and cheap (uv_async_send).
 * fn may be NULL (no notification). Call before the data path starts. */
void zw_stats_set_notify(struct zw_stats *s, void (*fn)(void *arg), void *arg);

/* Returns the entry for key with one more reference held by the caller,
 * creating it if needed; (re)configures its window and granularity
 * (0 = defaults; a change resets the ring, not the counters). The pointer is
 * valid until the matching zw_stats_release(). Returns 0, -EINVAL (empty
 * key, window < granularity or > ZW_STATS_MAX_WINDOW), -ENAMETOOLONG or
 * -ENOMEM. Thread-safe. */
int zw_stats_acquire(struct zw_stats *s, const char *key, uint64_t window_ms,
                     uint64_t granularity_ms, struct zw_stats_entry **out);

/* Drops one reference; the entry is removed and freed with the last one.
 * NULL-safe. Thread-safe. */
void zw_stats_release(struct zw_stats *s, struct zw_stats_entry *e);

/* Hot path (any thread, lock-free). A request entered: concurrency and the
 * request counter go up; an idle entry raises its wake flag. */
void zw_stats_begin(struct zw_stats_entry *e);

/* Hot path. A request counted by zw_stats_begin finished (answered, failed
 * or the client went away). */
void zw_stats_end(struct zw_stats_entry *e);

/* Hot path. A request arrived for a target with no ready endpoint: raise the
 * wake flag now (KEDA must scale 0 -> 1). Does not count the request. */
void zw_stats_cold(struct zw_stats_entry *e);

/* Hot path. delta = +1 when a request starts being held, -1 when it stops. */
void zw_stats_held(struct zw_stats_entry *e, int delta);

/* Returns the entry's key (owned by the entry). */
const char *zw_stats_entry_key(const struct zw_stats_entry *e);

/* Control side. Samples every entry's counter into its ring at now_ms
 * (monotonic milliseconds, e.g. uv_now) and refreshes the idle flags.
 * Returns 0. */
int zw_stats_tick(struct zw_stats *s, uint64_t now_ms);

/* Control side. Records `delta` requests seen by a peer replica for key into
 * its ring at now_ms. Returns 0, or -ENOENT when no entry has that key. */
int zw_stats_add_remote(struct zw_stats *s, const char *key, uint64_t delta, uint64_t now_ms);

/* Control side. Fills *out for key at now_ms. Returns 0 or -ENOENT. */
int zw_stats_get(struct zw_stats *s, const char *key, uint64_t now_ms,
                 struct zw_stats_snapshot *out);

/* Control side. Calls fn(arg, key, snapshot) for every entry (key and
 * snapshot borrowed for the call) in no particular order, with the registry
 * locked: fn must not call back into the registry. Stops at the first
 * nonzero return of fn and returns it; else returns 0. */
int zw_stats_foreach(struct zw_stats *s, uint64_t now_ms,
                     int (*fn)(void *arg, const char *key, const struct zw_stats_snapshot *snap),
                     void *arg);

/* Control side. Clears every raised wake flag, calling fn(arg, key) for each
 * (key borrowed, registry locked: fn must not call back into it). Returns
 * the number of wakes taken. */
int zw_stats_take_wakes(struct zw_stats *s, void (*fn)(void *arg, const char *key), void *arg);

/* Number of entries. Thread-safe. */
size_t zw_stats_count(struct zw_stats *s);

#endif
