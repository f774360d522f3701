/* zerowire-webhook metrics: counters, gauges and one latency histogram,
 * rendered in the Prometheus text exposition format (version 0.0.4).
 *
 * Every update is a relaxed atomic add, so request handlers on any thread
 * may call them without locks. Reviews are counted per (kind,
 * outcome); at most ZW_WH_METRICS_MAX_KINDS distinct kinds are
 * kept, further ones are counted under kind "other". */
#ifndef ZW_WH_METRICS_H
#define ZW_WH_METRICS_H

#include <stddef.h>
#include <stdint.h>

#define ZW_WH_METRICS_MAX_KINDS 32

enum zw_review_outcome {
	ZW_REVIEW_PATCHED = 0, /* allowed with a non-empty patch */
	ZW_REVIEW_UNCHANGED,   /* allowed, no patch */
	ZW_REVIEW_RESTORED,    /* allowed with a patch that only restores */
	ZW_REVIEW_DENIED,      /* allowed: false (invalid ScaledObject target) */
	ZW_REVIEW_IGNORED,     /* object not understood: allowed unchanged, warned */
	ZW_REVIEW_INVALID,     /* HTTP 400: body is not an AdmissionReview */
	ZW_REVIEW_TOO_LARGE,   /* HTTP 413 */
	ZW_REVIEW_ERROR,       /* HTTP 500: out of memory or internal error */
	ZW_REVIEW_N,
};

enum zw_counter {
	ZW_C_REWRITES = 0, /* destinations pointed at the proxy */
	ZW_C_RESTORES,     /* destinations put back from zerowire.io/original */
	ZW_C_WARNINGS,     /* warnings returned to the API server */
	ZW_C_ERRORS,       /* errors of any kind (requests, watches, reconciler) */
	ZW_C_CERT_RELOADS, /* serving certificate swapped */
	ZW_C_CERT_RELOAD_ERRORS,
	ZW_C_HANDSHAKES,   /* TLS certificate requests (one per full handshake) */
	ZW_C_WATCH_EVENTS, /* watch events applied to the registry */
	ZW_C_RECONCILE_TOUCHES,
	ZW_C_RECONCILE_CREATED,
	ZW_C_RECONCILE_DELETED,
	ZW_C_RECONCILE_ERRORS,
	ZW_C_RECONCILE_EVALUATIONS, /* routes run through admission by the reconciler */
	ZW_C_BUDGET_REJECTS,        /* requests answered 503: body budget exhausted */
	ZW_C_CONN_EVICTED,          /* connections closed to make room (connection limit) */
	ZW_C_CONN_TIMEOUTS,         /* connections closed by the read or idle timeout */
	ZW_C_N,
};

enum zw_gauge {
	ZW_G_TARGETS = 0, /* targets in the registry */
	ZW_G_SYNCED,      /* 1 once every watched source has listed */
	ZW_G_LEADER,      /* 1 while this replica holds the reconciler Lease */
	ZW_G_CONNECTIONS, /* open client connections */
	ZW_G_BODY_BYTES,  /* request body bytes reserved from the budget */
	ZW_G_CERT_EXPIRY, /* serving certificate's notAfter, seconds since the epoch */
	ZW_G_N,
};

struct zw_wh_metrics;

/* Allocates an empty metrics set into *out (caller owns; free with
 * zw_wh_metrics_free). Returns 0 or -ENOMEM. */
int zw_wh_metrics_new(struct zw_wh_metrics **out);

/* Releases a metrics set. NULL-safe. No other thread may use it any more. */
void zw_wh_metrics_free(struct zw_wh_metrics *m);

/* Counts one admission review of `kind` (borrowed label such as "ingress";
 * NULL or empty means "unknown") with its outcome and handling time in
 * seconds. NULL m is ignored. */
void zw_wh_metrics_review(struct zw_wh_metrics *m, const char *kind, enum zw_review_outcome outcome,
                          double seconds);

/* Adds n to counter c. NULL m is ignored. */
void zw_wh_metrics_add(struct zw_wh_metrics *m, enum zw_counter c, uint64_t n);

/* Sets gauge g to v. NULL m is ignored. */
void zw_wh_metrics_set(struct zw_wh_metrics *m, enum zw_gauge g, int64_t v);

/* Adds delta (may be negative) to gauge g. NULL m is ignored. */
void zw_wh_metrics_gauge_add(struct zw_wh_metrics *m, enum zw_gauge g, int64_t delta);

/* Returns the current value of counter c (tests and logs). */
uint64_t zw_wh_metrics_get(const struct zw_wh_metrics *m, enum zw_counter c);

/* Renders every metric as Prometheus text into a newly allocated
 * NUL-terminated buffer *out of *len bytes (caller frees with free()).
 * Returns 0 or -ENOMEM. */
int zw_wh_metrics_render(struct zw_wh_metrics *m, char **out, size_t *len);

/* Returns the Prometheus label value for an outcome ("patched", ...). */
const char *zw_review_outcome_name(enum zw_review_outcome o);

#endif
