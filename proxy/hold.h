/* Request admission and waiting (docs/hold-queue.md): one FIFO queue per
 * target, shared by every worker, and per-endpoint allowances.
 *
 * A request waits in its target's queue while the target has no ready
 * endpoint (cold start), while earlier requests of the target still wait
 * (first in, first out: a new request never overtakes a waiting one), or
 * while every ready endpoint already has its allowance of requests in
 * flight. The queue is process-wide: whichever worker notices room (a
 * request finished, an endpoint turned ready) hands the oldest waiting
 * requests an endpoint slot and posts them to the mailbox of the worker
 * that owns their connection, which then forwards them.
 *
 * Endpoint slots are the endpoints' shared outstanding counters: a slot is
 * taken with a compare-and-swap below the endpoint's allowance, so no
 * endpoint ever has more than its allowance in flight, whichever worker
 * takes the slot. An endpoint that turned ready less than the slow-start
 * window ago gets a proportional share of the allowance (at least 1).
 *
 * Items are embedded in the caller's request struct: no allocation per
 * waiting request besides its target's queue (made on first use, freed when
 * it empties). One mutex guards the queues and the mailboxes; it is taken
 * when a request of a limited or waiting target is admitted, when one stops
 * waiting, and by release passes, never on the path of an unlimited target
 * with nothing waiting. */
#ifndef ZW_HOLD_H
#define ZW_HOLD_H

#include "strmap.h"

#include "endpoints.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#define ZW_HOLD_MAX_WORKERS 64

struct zw_hold_queue;

enum zw_hold_state {
	ZW_HOLD_IDLE = 0,    /* not waiting */
	ZW_HOLD_QUEUED = 1,  /* in its target's queue */
	ZW_HOLD_GRANTED = 2, /* given an endpoint slot, in its worker's mailbox */
};

struct zw_hold_item {
	struct zw_hold_item *next, *prev; /* queue or mailbox links (lib/list.h) */
	struct zw_hold_queue *q;          /* QUEUED: its queue */
	int worker;                       /* owner worker index */
	int state;                        /* enum zw_hold_state */
	const struct zw_endpoint *ep;     /* GRANTED / admitted: the slot taken */
	struct zw_endpoint_set *set;      /* GRANTED: reference holding ep */
};

/* How many requests one endpoint of a target may have in flight. */
struct zw_allowance {
	uint32_t per_endpoint;  /* 0: no limit */
	uint64_t slow_start_ms; /* ramp-up window after an endpoint turns ready; 0: none */
};

struct zw_hold_mailbox {
	struct zw_hold_item *head, *tail;
};

/* Process-wide waiting state. Any thread, unless a function says otherwise. */
struct zw_hold {
	pthread_mutex_t lock;
	struct zw_strmap queues; /* target key -> struct zw_hold_queue (owned) */
	_Atomic size_t total;    /* queued requests, all targets */
	int n_workers;
	struct zw_hold_mailbox mail[ZW_HOLD_MAX_WORKERS];
};

/* ---- policy: what happens to a request of a target (pure functions) ---- */

struct zw_target;

/* The proxy-wide defaults the policy falls back on (from the flags). */
struct zw_hold_defaults {
	int64_t endpoint_concurrency;  /* --endpoint-concurrency: N, 0 off, ZW_ALLOWANCE_AUTO */
	uint64_t slow_start_ms;        /* --slow-start */
	uint64_t release_per_endpoint; /* --release-per-endpoint (0: no pacing) */
	uint32_t max_waiting;          /* --max-held */
	uint64_t wait_ms;              /* --readiness-timeout */
};

/* What a request finding no ready endpoint gets. */
enum zw_cold_action {
	ZW_COLD_WAIT = 0,        /* held in the target's queue */
	ZW_COLD_PLACEHOLDER = 1, /* the placeholder at once (counted, target woken) */
};

/* What a request whose wait timed out gets. */
enum zw_timeout_action {
	ZW_TIMEOUT_FALLBACK = 0,    /* forwarded to the target's fallback Service */
	ZW_TIMEOUT_PLACEHOLDER = 1, /* the placeholder response */
	ZW_TIMEOUT_GATEWAY = 2,     /* 504 */
};

/* The allowance of target t (borrowed): its endpointConcurrency, else
 * d->endpoint_concurrency ("auto": the concurrency targetValue when t
 * scales on concurrency). With `pacing` (a release pass), no allowance
 * still paces releases: the concurrency targetValue, else
 * d->release_per_endpoint. Slow start: t's, else d's. */
struct zw_allowance zw_hold_allowance(const struct zw_target *t, const struct zw_hold_defaults *d,
                                      int pacing);

/* How many requests of t may wait: maxPendingRequests, else d's. */
uint32_t zw_hold_max_waiting(const struct zw_target *t, const struct zw_hold_defaults *d);

/* How long a request of t may wait: readinessTimeout, else d's (ms). */
uint64_t zw_hold_wait_ms(const struct zw_target *t, const struct zw_hold_defaults *d);

/* A cold request of t: a placeholder target answers at once, as the KEDA
 * HTTP add-on and Kedify do, unless it also has a fallback (then requests
 * wait and go there at the timeout) or asks to hold up to
 * maxPendingRequests first (overflow: Placeholder). */
enum zw_cold_action zw_hold_cold_action(const struct zw_target *t);

/* A wait of t that timed out: the fallback, else the placeholder, else 504;
 * past the request's own deadline (requestTimeout) always 504. */
enum zw_timeout_action zw_hold_timeout_action(const struct zw_target *t, int past_request_deadline);

/* Nonzero when an overflow of t is answered with its placeholder (else 503
 * with Retry-After). */
int zw_hold_overflow_placeholder(const struct zw_target *t);

/* Outcome of zw_hold_admit. */
enum zw_admit {
	ZW_ADMIT_FORWARD = 0, /* it->ep holds a slot on an endpoint of `set` */
	ZW_ADMIT_QUEUED = 1,  /* waiting in the target's queue */
	ZW_ADMIT_FULL = -1,   /* the queue holds `max` requests already */
	ZW_ADMIT_NOMEM = -2,
};

/* Initialises an empty board for n_workers (1..ZW_HOLD_MAX_WORKERS)
 * workers. Returns 0 or a pthread error. */
int zw_hold_init(struct zw_hold *h, int n_workers);

/* Frees the board. Every item must have been cancelled or taken first. */
void zw_hold_free(struct zw_hold *h);

/* The allowance of endpoint ep under `a` at monotonic time now_ms: the full
 * allowance, or during the slow-start window a share proportional to the
 * time since ep turned ready (at least 1). 0 means no limit. */
uint32_t zw_allowance_of(const struct zw_allowance *a, const struct zw_endpoint *ep,
                         uint64_t now_ms);

/* Takes one slot on an endpoint of `set` that is below its allowance,
 * preferring the less loaded of two random choices (the caller's xorshift
 * state *rng), else the least loaded with room. Without a limit this is
 * zw_endpoint_pick. Returns the endpoint (its outstanding counter already
 * incremented: release with zw_endpoint_done) or NULL when none has room. */
const struct zw_endpoint *zw_hold_acquire(const struct zw_endpoint_set *set,
                                          const struct zw_allowance *a, uint64_t now_ms,
                                          uint64_t *rng);

/* Admits a request of target `key` (copied if a queue is made) owned by
 * worker `worker`, item `it` caller-owned and idle: when nothing of the
 * target waits and an endpoint of `set` (borrowed, may be empty) has room
 * it takes a slot (ZW_ADMIT_FORWARD, it->ep set, it stays idle); otherwise
 * the item joins the tail of the target's queue unless `max` already wait
 * (ZW_ADMIT_FULL). */
enum zw_admit zw_hold_admit(struct zw_hold *h, const char *key, struct zw_hold_item *it, int worker,
                            uint32_t max, const struct zw_endpoint_set *set,
                            const struct zw_allowance *a, uint64_t now_ms, uint64_t *rng);

/* What a release pass needs about the target of a queue: called under the
 * board's lock with the queue's oldest item; fills a new reference to the
 * target's ready endpoints (NULL: skip the queue) and its allowance. Must
 * not call back into the board. */
typedef void (*zw_hold_target_fn)(void *arg, const struct zw_hold_item *oldest,
                                  struct zw_endpoint_set **set, struct zw_allowance *a);

/* Release pass over every queue: grants, oldest first, as many waiting
 * requests as endpoints have room for, and posts them to their workers'
 * mailboxes. Returns a bit mask of the workers whose mailbox got items. */
uint64_t zw_hold_release(struct zw_hold *h, zw_hold_target_fn fn, void *arg, uint64_t now_ms,
                         uint64_t *rng);

/* Takes worker's mailbox: returns the granted items as a list linked by
 * `next` (NULL when empty), each now idle with it->ep and it->set owned by
 * the caller. */
struct zw_hold_item *zw_hold_take_granted(struct zw_hold *h, int worker);

/* Stops an item waiting: a queued item leaves its queue; a granted one
 * leaves its mailbox and gives its slot back. No-op for an idle item.
 * Returns 1 when a slot was given back (room for others), else 0. */
int zw_hold_cancel(struct zw_hold *h, struct zw_hold_item *it);

/* Returns how many requests of `key` are queued. */
uint32_t zw_hold_count(struct zw_hold *h, const char *key);

/* Returns how many requests are queued, all targets (atomic load). */
size_t zw_hold_total(struct zw_hold *h);

#endif
