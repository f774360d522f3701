/* zerowire-webhook metrics: lock-free counters and Prometheus rendering. */
#include "whmetrics.h"

#include "buf.h"
#include "promtext.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NAME_MAX_LEN 64

/* Latency histogram upper bounds in seconds (le labels). */
static const double buckets[] = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                 0.05,   0.1,     0.25,   0.5,   1.0,    2.5,   5.0,  10.0};
#define N_BUCKETS (sizeof(buckets) / sizeof(buckets[0]))

struct kind_slot {
	char kind[NAME_MAX_LEN];
	atomic_uint_fast64_t count[ZW_REVIEW_N];
};

struct zw_wh_metrics {
	pthread_mutex_t kinds_lock; /* serialises adding a slot */
	atomic_size_t n_kinds;      /* published slots; names immutable after */
	struct kind_slot kinds[ZW_WH_METRICS_MAX_KINDS + 1]; /* last: "other" */
	atomic_uint_fast64_t bucket[N_BUCKETS + 1];          /* last: +Inf */
	atomic_uint_fast64_t sum_ns;
	atomic_uint_fast64_t counters[ZW_C_N];
	atomic_int_fast64_t gauges[ZW_G_N];
};

struct counter_desc {
	const char *name;
	const char *help;
};

static const struct counter_desc counter_descs[ZW_C_N] = {
        [ZW_C_REWRITES] = {"zerowire_webhook_rewrites_total",
                           "Route destinations pointed at the proxy by admission."},
        [ZW_C_RESTORES] = {"zerowire_webhook_restores_total",
                           "Route destinations restored from zerowire.io/original."},
        [ZW_C_WARNINGS] = {"zerowire_webhook_warnings_total",
                           "Warnings returned in admission responses."},
        [ZW_C_ERRORS] = {"zerowire_webhook_errors_total",
                         "Errors: bad requests, API server failures, internal errors."},
        [ZW_C_CERT_RELOADS] = {"zerowire_webhook_cert_reloads_total",
                               "Serving certificate swaps after the files changed."},
        [ZW_C_CERT_RELOAD_ERRORS] = {"zerowire_webhook_cert_reload_errors_total",
                                     "Certificate files that changed but could not be loaded."},
        [ZW_C_HANDSHAKES] = {"zerowire_webhook_tls_handshakes_total",
                             "Full TLS handshakes that asked for the certificate."},
        [ZW_C_WATCH_EVENTS] = {"zerowire_webhook_watch_events_total",
                               "Target source watch events applied to the registry."},
        [ZW_C_RECONCILE_TOUCHES] = {"zerowire_webhook_reconcile_touches_total",
                                    "Routes annotated so that admission sees them again."},
        [ZW_C_RECONCILE_CREATED] = {"zerowire_webhook_reconcile_created_total",
                                    "Objects created by the reconciler."},
        [ZW_C_RECONCILE_DELETED] = {"zerowire_webhook_reconcile_deleted_total",
                                    "Objects deleted by the reconciler."},
        [ZW_C_RECONCILE_ERRORS] = {"zerowire_webhook_reconcile_errors_total",
                                   "Failed reconciler API calls."},
        [ZW_C_RECONCILE_EVALUATIONS] = {"zerowire_webhook_reconcile_evaluations_total",
                                        "Routes the reconciler ran through admission (a route "
                                        "is evaluated again only when it or a target changed)."},
        [ZW_C_BUDGET_REJECTS] = {"zerowire_webhook_budget_rejections_total",
                                 "Requests answered 503 because the body budget was used up."},
        [ZW_C_CONN_EVICTED] = {"zerowire_webhook_connections_evicted_total",
                               "Connections closed to make room at the connection limit."},
        [ZW_C_CONN_TIMEOUTS] = {"zerowire_webhook_connection_timeouts_total",
                                "Connections closed by the read or idle timeout."},
};

static const struct counter_desc gauge_descs[ZW_G_N] = {
        [ZW_G_TARGETS] = {"zerowire_webhook_targets", "Targets in the registry."},
        [ZW_G_SYNCED] = {"zerowire_webhook_synced", "1 once every target source has been listed."},
        [ZW_G_LEADER] = {"zerowire_webhook_leader",
                         "1 while this replica holds the reconciler Lease."},
        [ZW_G_CONNECTIONS] = {"zerowire_webhook_connections", "Open client connections."},
        [ZW_G_BODY_BYTES] = {"zerowire_webhook_body_bytes",
                             "Request body bytes reserved from the body budget."},
        [ZW_G_CERT_EXPIRY] = {"zerowire_webhook_cert_expiry_timestamp_seconds",
                              "Expiry (notAfter) of the serving certificate, seconds since the "
                              "epoch."},
};

static const char *const outcome_names[ZW_REVIEW_N] = {
        [ZW_REVIEW_PATCHED] = "patched",     [ZW_REVIEW_UNCHANGED] = "unchanged",
        [ZW_REVIEW_RESTORED] = "restored",   [ZW_REVIEW_DENIED] = "denied",
        [ZW_REVIEW_IGNORED] = "ignored",     [ZW_REVIEW_INVALID] = "invalid",
        [ZW_REVIEW_TOO_LARGE] = "too_large", [ZW_REVIEW_ERROR] = "error",
};

const char *zw_review_outcome_name(enum zw_review_outcome o)
{
	if ((unsigned)o >= ZW_REVIEW_N)
		return "unknown";
	return outcome_names[o];
}

int zw_wh_metrics_new(struct zw_wh_metrics **out)
{
	struct zw_wh_metrics *m = calloc(1, sizeof(*m));

	if (!m)
		return -ENOMEM;
	if (pthread_mutex_init(&m->kinds_lock, NULL) != 0) {
		free(m);
		return -ENOMEM;
	}
	snprintf(m->kinds[ZW_WH_METRICS_MAX_KINDS].kind, NAME_MAX_LEN, "other");
	*out = m;
	return 0;
}

void zw_wh_metrics_free(struct zw_wh_metrics *m)
{
	if (!m)
		return;
	pthread_mutex_destroy(&m->kinds_lock);
	free(m);
}

/* Copies s into a label-safe buffer: only [A-Za-z0-9._-] kept. */
static void label_copy(char *dst, const char *s)
{
	size_t j = 0;

	for (size_t i = 0; s && s[i] != '\0' && j + 1 < NAME_MAX_LEN; i++) {
		char c = s[i];
		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		    c == '.' || c == '-' || c == '_')
			dst[j++] = c;
	}
	dst[j] = '\0';
}

static struct kind_slot *find_slot(struct zw_wh_metrics *m, const char *kind)
{
	char k[NAME_MAX_LEN];
	size_t n = atomic_load(&m->n_kinds);
	struct kind_slot *slot = NULL;

	label_copy(k, kind && kind[0] != '\0' ? kind : "unknown");
	for (size_t i = 0; i < n; i++)
		if (strcmp(m->kinds[i].kind, k) == 0)
			return &m->kinds[i];
	pthread_mutex_lock(&m->kinds_lock);
	n = atomic_load(&m->n_kinds);
	for (size_t i = 0; i < n; i++)
		if (strcmp(m->kinds[i].kind, k) == 0) {
			slot = &m->kinds[i];
			goto out;
		}
	if (n == ZW_WH_METRICS_MAX_KINDS) {
		slot = &m->kinds[ZW_WH_METRICS_MAX_KINDS];
		goto out;
	}
	slot = &m->kinds[n];
	memcpy(slot->kind, k, sizeof(k));
	atomic_store(&m->n_kinds, n + 1);
out:
	pthread_mutex_unlock(&m->kinds_lock);
	return slot;
}

void zw_wh_metrics_review(struct zw_wh_metrics *m, const char *kind, enum zw_review_outcome outcome,
                          double seconds)
{
	struct kind_slot *slot;
	size_t b = 0;

	if (!m || (unsigned)outcome >= ZW_REVIEW_N)
		return;
	slot = find_slot(m, kind);
	atomic_fetch_add_explicit(&slot->count[outcome], 1, memory_order_relaxed);
	if (seconds < 0)
		seconds = 0;
	while (b < N_BUCKETS && seconds > buckets[b])
		b++;
	atomic_fetch_add_explicit(&m->bucket[b], 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&m->sum_ns, (uint_fast64_t)(seconds * 1e9), memory_order_relaxed);
}

void zw_wh_metrics_add(struct zw_wh_metrics *m, enum zw_counter c, uint64_t n)
{
	if (!m || (unsigned)c >= ZW_C_N)
		return;
	atomic_fetch_add_explicit(&m->counters[c], n, memory_order_relaxed);
}

void zw_wh_metrics_set(struct zw_wh_metrics *m, enum zw_gauge g, int64_t v)
{
	if (!m || (unsigned)g >= ZW_G_N)
		return;
	atomic_store_explicit(&m->gauges[g], v, memory_order_relaxed);
}

void zw_wh_metrics_gauge_add(struct zw_wh_metrics *m, enum zw_gauge g, int64_t delta)
{
	if (!m || (unsigned)g >= ZW_G_N)
		return;
	atomic_fetch_add_explicit(&m->gauges[g], delta, memory_order_relaxed);
}

uint64_t zw_wh_metrics_get(const struct zw_wh_metrics *m, enum zw_counter c)
{
	if (!m || (unsigned)c >= ZW_C_N)
		return 0;
	return atomic_load_explicit(&((struct zw_wh_metrics *)m)->counters[c],
	                            memory_order_relaxed);
}

/* Output text and the first error met while writing it (later writes are
 * skipped); limited by what the fixed metric set can produce. */
struct out_buf {
	struct zw_buf b;
	int err;
};

static void out_printf(struct out_buf *o, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));

static void out_printf(struct out_buf *o, const char *fmt, ...)
{
	va_list ap;

	if (o->err)
		return;
	va_start(ap, fmt);
	if (zw_buf_vappendf(&o->b, SIZE_MAX, fmt, ap) < 0)
		o->err = -ENOMEM;
	va_end(ap);
}

int zw_wh_metrics_render(struct zw_wh_metrics *m, char **out, size_t *len)
{
	struct out_buf o = {0};
	size_t n_kinds = atomic_load(&m->n_kinds);
	uint64_t cum = 0;

	out_printf(&o, "# HELP zerowire_webhook_reviews_total Admission reviews by kind and "
	               "outcome.\n# TYPE zerowire_webhook_reviews_total counter\n");
	for (size_t i = 0; i <= ZW_WH_METRICS_MAX_KINDS; i++) {
		struct kind_slot *s = &m->kinds[i];
		if (i >= n_kinds && i != ZW_WH_METRICS_MAX_KINDS)
			continue;
		for (int k = 0; k < ZW_REVIEW_N; k++) {
			uint64_t v = atomic_load_explicit(&s->count[k], memory_order_relaxed);
			if (v == 0 && i == ZW_WH_METRICS_MAX_KINDS)
				continue;
			out_printf(&o,
			           "zerowire_webhook_reviews_total{kind=\"%s\",outcome=\"%s\"} "
			           "%llu\n",
			           s->kind, outcome_names[k], (unsigned long long)v);
		}
	}
	out_printf(&o, "# HELP zerowire_webhook_review_duration_seconds Time to answer one "
	               "admission review.\n# TYPE zerowire_webhook_review_duration_seconds "
	               "histogram\n");
	for (size_t b = 0; b <= N_BUCKETS; b++) {
		cum += atomic_load_explicit(&m->bucket[b], memory_order_relaxed);
		if (b < N_BUCKETS)
			out_printf(&o,
			           "zerowire_webhook_review_duration_seconds_bucket{le=\"%g\"} "
			           "%llu\n",
			           buckets[b], (unsigned long long)cum);
		else
			out_printf(&o,
			           "zerowire_webhook_review_duration_seconds_bucket{le=\"+Inf\"} "
			           "%llu\n",
			           (unsigned long long)cum);
	}
	out_printf(&o, "zerowire_webhook_review_duration_seconds_sum %.9f\n",
	           (double)atomic_load_explicit(&m->sum_ns, memory_order_relaxed) / 1e9);
	out_printf(&o, "zerowire_webhook_review_duration_seconds_count %llu\n",
	           (unsigned long long)cum);
	for (int c = 0; c < ZW_C_N; c++)
		out_printf(&o, "# HELP %s %s\n# TYPE %s counter\n%s %llu\n", counter_descs[c].name,
		           counter_descs[c].help, counter_descs[c].name, counter_descs[c].name,
		           (unsigned long long)atomic_load_explicit(&m->counters[c],
		                                                    memory_order_relaxed));
	for (int g = 0; g < ZW_G_N; g++)
		out_printf(&o, "# HELP %s %s\n# TYPE %s gauge\n%s %lld\n", gauge_descs[g].name,
		           gauge_descs[g].help, gauge_descs[g].name, gauge_descs[g].name,
		           (long long)atomic_load_explicit(&m->gauges[g], memory_order_relaxed));
	if (!o.err) {
		/* build_info and process_* come as one stdio text. */
		char *extra = NULL;
		size_t elen = 0;
		FILE *f = open_memstream(&extra, &elen);
		int rc = f ? 0 : -ENOMEM;
		if (rc == 0 && (zw_prom_build_info(f, "webhook") < 0 || zw_prom_process(f) < 0))
			rc = -ENOMEM;
		if (f && fclose(f) != 0)
			rc = -ENOMEM;
		if (rc == 0 && extra)
			out_printf(&o, "%s", extra);
		else
			o.err = rc ? rc : -ENOMEM;
		free(extra);
	}
	if (!o.err && !(*out = zw_buf_take(&o.b, len)))
		o.err = -ENOMEM;
	zw_buf_free(&o.b);
	return o.err;
}
