/* Data-path metrics (see metrics.h). */
#include "metrics.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Histogram upper bounds in seconds. */
static const double le[ZW_METRICS_N_LE] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                           0.1,   0.25,   0.5,   1,    2.5,   10};

static const char *const ev_names[ZW_EV_COUNT] = {
        "zerowire_cold_starts_total",          "zerowire_readiness_timeouts_total",
        "zerowire_overflow_rejections_total",  "zerowire_upstream_errors_total",
        "zerowire_upstream_timeouts_total",    "zerowire_healthchecks_total",
        "zerowire_stream_idle_timeouts_total", "zerowire_body_timeouts_total",
};

static const char *const ev_help[ZW_EV_COUNT] = {
        "Requests that found no ready endpoint (cold starts).",
        "Held requests that timed out waiting for a ready endpoint.",
        "Requests rejected because too many were held.",
        "Upstream connections refused or reset, or invalid responses.",
        "Upstream connect or response-header timeouts.",
        "Health checks answered by the proxy.",
        "Streamed responses or tunnels closed after the stream idle timeout.",
        "Requests answered 408 because the client stopped sending its body.",
};

struct zw_metrics_target {
	struct zw_metrics_target *next;
	int codes[ZW_METRICS_MAX_CODES];
	uint64_t code_n[ZW_METRICS_MAX_CODES];
	uint64_t other_n;
	uint64_t hist[ZW_METRICS_N_LE + 1];
	double sum;
	uint64_t count;
	uint64_t ev[ZW_EV_COUNT];
	char key[];
};

static size_t hash_key(const char *k)
{
	uint64_t h = 1469598103934665603ull;
	for (; *k; k++)
		h = (h ^ (unsigned char)*k) * 1099511628211ull;
	return (size_t)(h % ZW_METRICS_BUCKETS);
}

int zw_metrics_shard_init(struct zw_metrics_shard *m)
{
	memset(m->buckets, 0, sizeof(m->buckets));
	m->n_targets = 0;
	return pthread_mutex_init(&m->lock, NULL);
}

void zw_metrics_shard_free(struct zw_metrics_shard *m)
{
	for (size_t b = 0; b < ZW_METRICS_BUCKETS; b++) {
		struct zw_metrics_target *t = m->buckets[b];
		while (t) {
			struct zw_metrics_target *next = t->next;
			free(t);
			t = next;
		}
	}
	pthread_mutex_destroy(&m->lock);
}

/* Finds or creates the entry for key; the lock must be held. */
static struct zw_metrics_target *get(struct zw_metrics_shard *m, const char *key)
{
	if (m->n_targets >= ZW_METRICS_MAX_TARGETS)
		key = "_overflow";
	size_t b = hash_key(key);
	for (struct zw_metrics_target *t = m->buckets[b]; t; t = t->next)
		if (strcmp(t->key, key) == 0)
			return t;
	size_t klen = strlen(key);
	struct zw_metrics_target *t = calloc(1, sizeof(*t) + klen + 1);
	if (!t)
		return NULL;
	memcpy(t->key, key, klen + 1);
	t->next = m->buckets[b];
	m->buckets[b] = t;
	m->n_targets++;
	return t;
}

void zw_metrics_request(struct zw_metrics_shard *m, const char *key, int code, double seconds)
{
	pthread_mutex_lock(&m->lock);
	struct zw_metrics_target *t = get(m, key);
	if (t) {
		int done = 0;
		for (int i = 0; i < ZW_METRICS_MAX_CODES && !done; i++) {
			if (t->codes[i] == code || t->codes[i] == 0) {
				t->codes[i] = code;
				t->code_n[i]++;
				done = 1;
			}
		}
		if (!done)
			t->other_n++;
		int k = 0;
		while (k < ZW_METRICS_N_LE && seconds > le[k])
			k++;
		t->hist[k]++;
		t->sum += seconds;
		t->count++;
	}
	pthread_mutex_unlock(&m->lock);
}

void zw_metrics_event(struct zw_metrics_shard *m, const char *key, enum zw_metric_event ev)
{
	pthread_mutex_lock(&m->lock);
	struct zw_metrics_target *t = get(m, key);
	if (t)
		t->ev[ev]++;
	pthread_mutex_unlock(&m->lock);
}

/* Merges every shard's entries into one list of copies (caller frees). */
static struct zw_metrics_target *merge(struct zw_metrics_shard *const *shards, size_t n)
{
	struct zw_metrics_shard all;
	if (zw_metrics_shard_init(&all) != 0)
		return NULL;
	for (size_t s = 0; s < n; s++) {
		struct zw_metrics_shard *m = shards[s];
		pthread_mutex_lock(&m->lock);
		for (size_t b = 0; b < ZW_METRICS_BUCKETS; b++) {
			for (struct zw_metrics_target *t = m->buckets[b]; t; t = t->next) {
				struct zw_metrics_target *d = get(&all, t->key);
				if (!d)
					continue;
				for (int i = 0; i < ZW_METRICS_MAX_CODES && t->codes[i]; i++) {
					int placed = 0;
					for (int j = 0; j < ZW_METRICS_MAX_CODES && !placed; j++) {
						if (d->codes[j] == t->codes[i] ||
						    d->codes[j] == 0) {
							d->codes[j] = t->codes[i];
							d->code_n[j] += t->code_n[i];
							placed = 1;
						}
					}
					if (!placed)
						d->other_n += t->code_n[i];
				}
				d->other_n += t->other_n;
				for (int k = 0; k <= ZW_METRICS_N_LE; k++)
					d->hist[k] += t->hist[k];
				d->sum += t->sum;
				d->count += t->count;
				for (int e = 0; e < ZW_EV_COUNT; e++)
					d->ev[e] += t->ev[e];
			}
		}
		pthread_mutex_unlock(&m->lock);
	}
	/* Flatten into one list. */
	struct zw_metrics_target *list = NULL;
	for (size_t b = 0; b < ZW_METRICS_BUCKETS; b++) {
		struct zw_metrics_target *t = all.buckets[b];
		while (t) {
			struct zw_metrics_target *next = t->next;
			t->next = list;
			list = t;
			t = next;
		}
		all.buckets[b] = NULL;
	}
	zw_metrics_shard_free(&all);
	return list;
}

/* Splits key "ns/name[/trigger]" into label values. */
static void labels(const char *key, char *ns, size_t nslen, const char **name)
{
	const char *slash = strchr(key, '/');
	if (!slash) {
		ns[0] = '\0';
		*name = key;
		return;
	}
	size_t l = (size_t)(slash - key);
	if (l >= nslen)
		l = nslen - 1;
	memcpy(ns, key, l);
	ns[l] = '\0';
	*name = slash + 1;
}

int zw_metrics_render(struct zw_metrics_shard *const *shards, size_t n, struct zw_obuf *out)
{
	struct zw_metrics_target *list = merge(shards, n);
	int rc = -1;
	char ns[256];
	const char *name;
	if (zw_obuf_addf(out, "# HELP zerowire_requests_total Requests answered, by target and "
	                      "status code.\n# TYPE zerowire_requests_total counter\n") < 0)
		goto out;
	for (struct zw_metrics_target *t = list; t; t = t->next) {
		labels(t->key, ns, sizeof(ns), &name);
		for (int i = 0; i < ZW_METRICS_MAX_CODES && t->codes[i]; i++)
			if (zw_obuf_addf(out,
			                 "zerowire_requests_total{namespace=\"%s\",target=\"%s\","
			                 "code=\"%d\"} %llu\n",
			                 ns, name, t->codes[i],
			                 (unsigned long long)t->code_n[i]) < 0)
				goto out;
		if (t->other_n && zw_obuf_addf(out,
		                               "zerowire_requests_total{namespace=\"%s\",target=\"%"
		                               "s\",code=\"other\"} "
		                               "%llu\n",
		                               ns, name, (unsigned long long)t->other_n) < 0)
			goto out;
	}
	if (zw_obuf_addf(out, "# HELP zerowire_request_duration_seconds Time from the request "
	                      "head to the end of the response.\n"
	                      "# TYPE zerowire_request_duration_seconds histogram\n") < 0)
		goto out;
	for (struct zw_metrics_target *t = list; t; t = t->next) {
		if (!t->count)
			continue;
		labels(t->key, ns, sizeof(ns), &name);
		uint64_t cum = 0;
		for (int k = 0; k <= ZW_METRICS_N_LE; k++) {
			cum += t->hist[k];
			char lebuf[32];
			if (k < ZW_METRICS_N_LE)
				snprintf(lebuf, sizeof(lebuf), "%g", le[k]);
			else
				snprintf(lebuf, sizeof(lebuf), "+Inf");
			if (zw_obuf_addf(
			            out,
			            "zerowire_request_duration_seconds_bucket{namespace=\"%s\","
			            "target=\"%s\",le=\"%s\"} %llu\n",
			            ns, name, lebuf, (unsigned long long)cum) < 0)
				goto out;
		}
		if (zw_obuf_addf(
		            out,
		            "zerowire_request_duration_seconds_sum{namespace=\"%s\",target=\"%s\"} "
		            "%.6f\nzerowire_request_duration_seconds_count{namespace=\"%s\","
		            "target=\"%s\"} %llu\n",
		            ns, name, t->sum, ns, name, (unsigned long long)t->count) < 0)
			goto out;
	}
	for (int e = 0; e < ZW_EV_COUNT; e++) {
		if (zw_obuf_addf(out, "# HELP %s %s\n# TYPE %s counter\n", ev_names[e], ev_help[e],
		                 ev_names[e]) < 0)
			goto out;
		for (struct zw_metrics_target *t = list; t; t = t->next) {
			if (!t->ev[e])
				continue;
			labels(t->key, ns, sizeof(ns), &name);
			if (zw_obuf_addf(out, "%s{namespace=\"%s\",target=\"%s\"} %llu\n",
			                 ev_names[e], ns, name, (unsigned long long)t->ev[e]) < 0)
				goto out;
		}
	}
	rc = 0;
out:
	while (list) {
		struct zw_metrics_target *next = list->next;
		free(list);
		list = next;
	}
	return rc;
}

uint64_t zw_metrics_requests(struct zw_metrics_shard *const *shards, size_t n, const char *key)
{
	uint64_t sum = 0;
	for (size_t s = 0; s < n; s++) {
		struct zw_metrics_shard *m = shards[s];
		pthread_mutex_lock(&m->lock);
		for (struct zw_metrics_target *t = m->buckets[hash_key(key)]; t; t = t->next)
			if (strcmp(t->key, key) == 0)
				sum += t->count;
		pthread_mutex_unlock(&m->lock);
	}
	return sum;
}
