/* zerowire proxy replicas: each replica polls every peer's admin port for
 * its local request counters (GET /peer/counts) and tells every peer at
 * once about a cold request (POST /peer/cold), so that any replica answers
 * KEDA with the sum over live replicas and whichever replica holds KEDA's
 * stream pushes `true` (docs/keda-scaler.md "Several replicas").
 *
 * Counting across replicas: a peer reports a monotonic request counter per
 * target and its instance id (random per process). Each poll adds the
 * counter's increase since the previous poll to the local sliding window
 * (zw_stats_add_remote). A changed instance id (restart) or a counter that
 * went down (target re-created) counts the whole new value; a peer seen for
 * the first time only sets the baseline, unless it started less than
 * `fresh_ms` ago (then everything it counted is new). So a restart is
 * neither negative nor counted twice. Only keys of current targets
 * (cfg.known) are counted and kept from an answer, so what a peer answers
 * cannot grow the state with keys of its choosing. Concurrency is the sum of the
 * last answer of every peer whose latest poll succeeded; peers that do not answer within timeout_ms
 * are left out and counted in poll_failures_total.
 *
 * Both requests carry the peer token (auth.h) when one is configured; an
 * answer 401/403 counts in auth_rejected_total (and as a failure).
 *
 * HTTP: HTTP/1.0 requests with Connection: close over libuv TCP, bodies up
 * to ZW_PEERS_MAX_BODY, responses delimited by Content-Length or EOF
 * (chunked responses are not understood). Nothing blocks the loop. All
 * functions run on the loop's thread. */
#ifndef ZW_PEERS_H
#define ZW_PEERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "auth.h"
#include "stats.h"

#define ZW_PEERS_MAX_BODY     (16 * 1024 * 1024)
#define ZW_PEERS_MAX_COLD     256 /* cold notifications in flight, all peers */
#define ZW_PEERS_ADDR_MAX     64
#define ZW_PEERS_INSTANCE_LEN 16 /* hex characters */

struct zw_peers;

struct zw_peers_config {
	uint64_t poll_ms;    /* default 500; 0 disables polling */
	uint64_t timeout_ms; /* one HTTP exchange, default 200 */
	int default_port;    /* admin port when an address has none, default 9091 */
	size_t max_peers;    /* default 64 */
	uint64_t fresh_ms;   /* first-seen peer younger than this counts fully, default 5000 */
	const struct zw_auth *auth; /* token sent as Authorization: Bearer (borrowed, must
	                             * outlive the peers); NULL: none sent */
	/* Is key a current target? Keys of a poll answer for which it returns
	 * 0 are dropped. NULL: every key kept. */
	int (*known)(void *arg, const char *key);
	void *known_arg;
};

struct zw_peers_stats {
	uint64_t peers; /* configured, self excluded */
	uint64_t live;  /* latest poll succeeded */
	uint64_t polls_total;
	uint64_t poll_failures_total;
	uint64_t cold_sent_total;
	uint64_t cold_failures_total;
	uint64_t cold_dropped_total;  /* over ZW_PEERS_MAX_COLD */
	uint64_t auth_rejected_total; /* a peer answered 401 or 403 (token mismatch) */
};

/* Fills *c with the defaults. */
void zw_peers_config_default(struct zw_peers_config *c);

/* Creates the peer set on `loop` (polling starts with the first peers).
 * `stats` is borrowed and must outlive it. *out is freed by zw_peers_close.
 * Returns 0 or -ENOMEM. */
int zw_peers_new(uv_loop_t *loop, const struct zw_peers_config *cfg, struct zw_stats *stats,
                 struct zw_peers **out);

/* Replaces the peer addresses ("ip", "ip:port", "[v6]:port"; copied).
 * Known peers keep their state. Returns 0, -EINVAL (list unchanged) for a
 * malformed address, -E2BIG above max_peers, -ENOMEM. */
int zw_peers_set(struct zw_peers *p, const char *const *addrs, size_t n);

/* This process's instance id (ZW_PEERS_INSTANCE_LEN hex characters). */
const char *zw_peers_instance(const struct zw_peers *p);

/* Sends POST /peer/cold?target=<key>&from=<instance> to every peer not
 * known to be this process. Fire and forget. */
void zw_peers_cold(struct zw_peers *p, const char *key);

/* Sum of the concurrency last reported for key by live peers. */
int64_t zw_peers_concurrency(const struct zw_peers *p, const char *key);

/* Builds this replica's /peer/counts body: {"instance":..., "uptime_ms":...,
 * "targets":{key:{"requests":n,"concurrency":n}}} into *body (malloc'd,
 * caller frees) and *len. Returns 0 or -ENOMEM. */
int zw_peers_counts_json(struct zw_peers *p, char **body, size_t *len);

/* Copies the counters into *out. */
void zw_peers_get_stats(const struct zw_peers *p, struct zw_peers_stats *out);

/* Aborts requests in flight, closes the handles and frees p; done(arg) runs
 * on the loop afterwards (may be NULL). NULL-safe. */
void zw_peers_close(struct zw_peers *p, void (*done)(void *arg), void *arg);

#endif
