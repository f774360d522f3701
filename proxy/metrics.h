/* Data-path metrics of zerowire-proxy for Prometheus.
 *
 * Each worker records into its own shard (a mutex that only that worker and
 * a scraping admin request ever take, so it is uncontended on the hot
 * path); /metrics sums the shards. Per target (key "<ns>/<name>"; "" for
 * requests that matched no target): requests by status code, a latency
 * histogram, cold starts, readiness timeouts, overflow rejections, upstream
 * errors and timeouts. Limits: ZW_METRICS_MAX_CODES distinct codes per
 * target and shard (others count under code "other"), ZW_METRICS_MAX_TARGETS
 * targets per shard (others count under target "_overflow"). */
#ifndef ZW_METRICS_H
#define ZW_METRICS_H

#include "http1.h"

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#define ZW_METRICS_MAX_CODES   16
#define ZW_METRICS_MAX_TARGETS 100000
#define ZW_METRICS_BUCKETS     256
#define ZW_METRICS_N_LE        12

enum zw_metric_event {
	ZW_EV_COLD_START = 0,      /* a request found no ready endpoint */
	ZW_EV_READINESS_TIMEOUT,   /* a held request timed out */
	ZW_EV_OVERFLOW,            /* a request was rejected: too many held */
	ZW_EV_UPSTREAM_ERROR,      /* refused / reset / bad response */
	ZW_EV_UPSTREAM_TIMEOUT,    /* connect or response-header timeout */
	ZW_EV_HEALTHCHECK,         /* answered by the proxy */
	ZW_EV_STREAM_IDLE_TIMEOUT, /* a streamed response or tunnel went idle */
	ZW_EV_BODY_TIMEOUT,        /* a client stopped sending its request body */
	ZW_EV_COUNT,
};

struct zw_metrics_target;

struct zw_metrics_shard {
	pthread_mutex_t lock;
	struct zw_metrics_target *buckets[ZW_METRICS_BUCKETS];
	size_t n_targets;
};

/* Initialises a shard. Returns 0 or a pthread error. */
int zw_metrics_shard_init(struct zw_metrics_shard *m);

/* Frees what a shard holds. */
void zw_metrics_shard_free(struct zw_metrics_shard *m);

/* Records one answered request of target `key` (borrowed) with `code` and
 * its duration in seconds. Out of memory drops the sample. */
void zw_metrics_request(struct zw_metrics_shard *m, const char *key, int code, double seconds);

/* Counts one event for `key`. */
void zw_metrics_event(struct zw_metrics_shard *m, const char *key, enum zw_metric_event ev);

/* Appends the Prometheus text of all shards[0..n), summed, to out.
 * Returns 0 or -1 (out of its limit or memory). */
int zw_metrics_render(struct zw_metrics_shard *const *shards, size_t n, struct zw_obuf *out);

/* Sums the requests of `key` over the shards (for /queue and tests). */
uint64_t zw_metrics_requests(struct zw_metrics_shard *const *shards, size_t n, const char *key);

#endif
