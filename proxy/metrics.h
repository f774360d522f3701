/* Data-path metrics of zerowire-proxy for Prometheus.
 *
 * Each worker records into its own shard (a mutex that only that worker and
 * a scraping admin request ever take, so it is uncontended on the hot
 * path); /metrics sums the shards. Per target (key "<ns>/<name>"; "" for
 * requests that matched no target): requests by status code, method (the
 * nine standard methods, others "_OTHER", as the KEDA HTTP add-on) and
 * cold-start flag, a latency histogram by cold-start flag (buckets up to
 * 5 min), a histogram of the time held during cold start (buckets up to the
 * readiness timeout), cold starts, readiness timeouts, overflow rejections,
 * upstream errors and timeouts. Every series is labelled
 * namespace="<ns>",target="<rest of the key>" (the scaler's too), values
 * escaped. Limits: ZW_METRICS_MAX_SERIES (code, method, cold) series per
 * target and shard (others count under code="other",method="_OTHER"),
 * ZW_METRICS_MAX_TARGETS targets per shard (others count under target
 * "_overflow"). */
#ifndef ZW_METRICS_H
#define ZW_METRICS_H

#include "strmap.h"

#include "http1.h"

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#define ZW_METRICS_MAX_SERIES  48
#define ZW_METRICS_MAX_TARGETS 100000
#define ZW_METRICS_N_LE        16
#define ZW_METRICS_MAX_WAIT_LE 24

/* Request methods as labels: the standard ones, anything else _OTHER. */
enum zw_metric_method {
	ZW_M_GET = 0,
	ZW_M_HEAD,
	ZW_M_POST,
	ZW_M_PUT,
	ZW_M_DELETE,
	ZW_M_CONNECT,
	ZW_M_OPTIONS,
	ZW_M_TRACE,
	ZW_M_PATCH,
	ZW_M_OTHER,
	ZW_M_COUNT,
};

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
	struct zw_strmap targets; /* key -> struct zw_metrics_target (owned) */
	size_t n_targets;
	double wait_le[ZW_METRICS_MAX_WAIT_LE]; /* cold-start wait bucket bounds */
	int n_wait_le;
};

/* One answered request. */
struct zw_metrics_sample {
	const char *key; /* target key (borrowed), "" when no target matched */
	int code;        /* status code (499: the client went away) */
	int method;      /* enum zw_metric_method */
	int cold;        /* nonzero: the request found no ready endpoint */
	double seconds;  /* head received to response done */
};

/* Initialises a shard whose cold-start wait histogram has buckets up to
 * readiness_s seconds (the readiness timeout; its own bucket is the last
 * finite one). Returns 0 or a pthread error. */
int zw_metrics_shard_init(struct zw_metrics_shard *m, double readiness_s);

/* Maps an llhttp method number to enum zw_metric_method. */
int zw_metrics_method(int llhttp_method);

/* Returns the label value of enum zw_metric_method m ("GET", "_OTHER"). */
const char *zw_metrics_method_name(int m);

/* Frees what a shard holds. */
void zw_metrics_shard_free(struct zw_metrics_shard *m);

/* Records one answered request (s and its key borrowed). Out of memory
 * drops the sample. */
void zw_metrics_request(struct zw_metrics_shard *m, const struct zw_metrics_sample *s);

/* Records that a request of `key` (borrowed) was held `seconds` waiting for
 * a ready endpoint (observed when the wait ends, whatever ended it). */
void zw_metrics_wait(struct zw_metrics_shard *m, const char *key, double seconds);

/* Counts one event for `key`. */
void zw_metrics_event(struct zw_metrics_shard *m, const char *key, enum zw_metric_event ev);

/* Appends the Prometheus text of all shards[0..n), summed, to out.
 * Returns 0 or -1 (out of its limit or memory). */
int zw_metrics_render(struct zw_metrics_shard *const *shards, size_t n, struct zw_obuf *out);

/* Splits a target key "<ns>/<rest>" into the label values of the one label
 * scheme (namespace, target), each escaped and truncated to its buffer's
 * capacity (> 0). A key without '/' has namespace "". */
void zw_metrics_key_labels(const char *key, char *ns, size_t ns_cap, char *target,
                           size_t target_cap);

/* Appends zerowire_build_info{program="proxy"} and the process_* metrics
 * (lib/promtext.h) to out. Returns 0 or -1 (out of its limit or memory). */
int zw_metrics_render_process(struct zw_obuf *out);

/* Sums the requests of `key` over the shards (for /queue and tests). */
uint64_t zw_metrics_requests(struct zw_metrics_shard *const *shards, size_t n, const char *key);

#endif
