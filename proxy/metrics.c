/* Data-path metrics (see metrics.h). */
#include "metrics.h"

#include "hash.h"
#include "promtext.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Request duration upper bounds in seconds: up to 5 min, as held requests
 * wait up to the readiness timeout (default 5 min). */
static const double le[ZW_METRICS_N_LE] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                           0.5,   1,      2.5,   10,   30,    60,   120, 300};

/* Ladder of cold-start wait bounds, cut at the readiness timeout. */
static const double wait_ladder[] = {0.05, 0.1, 0.25, 0.5, 1,    2.5,  5,    10,
                                     15,   20,  30,   45,  60,   90,   120,  180,
                                     240,  300, 600,  900, 1800, 3600, 7200, 14400};

static const char *const method_names[ZW_M_COUNT] = {
        "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH", "_OTHER",
};

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

struct series {
	uint16_t code;
	uint8_t method;
	uint8_t cold;
	uint64_t n;
};

struct zw_metrics_target {
	struct zw_strmap_node node;     /* in its shard's map, by key */
	struct zw_metrics_target *next; /* merge()'s list */
	struct series ser[ZW_METRICS_MAX_SERIES];
	int n_ser;
	uint64_t other_n;
	uint64_t hist[2][ZW_METRICS_N_LE + 1]; /* by cold flag */
	double sum[2];
	uint64_t count[2];
	uint64_t wait[ZW_METRICS_MAX_WAIT_LE + 1];
	double wait_sum;
	uint64_t wait_count;
	uint64_t ev[ZW_EV_COUNT];
	char key[];
};

int zw_metrics_method(int llhttp_method)
{
	switch (llhttp_method) {
	case HTTP_DELETE:
		return ZW_M_DELETE;
	case HTTP_GET:
		return ZW_M_GET;
	case HTTP_HEAD:
		return ZW_M_HEAD;
	case HTTP_POST:
		return ZW_M_POST;
	case HTTP_PUT:
		return ZW_M_PUT;
	case HTTP_CONNECT:
		return ZW_M_CONNECT;
	case HTTP_OPTIONS:
		return ZW_M_OPTIONS;
	case HTTP_TRACE:
		return ZW_M_TRACE;
	case HTTP_PATCH:
		return ZW_M_PATCH;
	default:
		return ZW_M_OTHER;
	}
}

const char *zw_metrics_method_name(int m)
{
	return m >= 0 && m < ZW_M_COUNT ? method_names[m] : method_names[ZW_M_OTHER];
}

static struct zw_metrics_target *target_of(struct zw_strmap_node *n)
{
	return n ? ZW_STRMAP_ENTRY(n, struct zw_metrics_target, node) : NULL;
}

static void free_target(struct zw_strmap_node *n, void *ctx)
{
	(void)ctx;
	free(target_of(n));
}

int zw_metrics_shard_init(struct zw_metrics_shard *m, double readiness_s)
{
	m->targets = (struct zw_strmap){0};
	m->n_targets = 0;
	m->n_wait_le = 0;
	if (readiness_s <= 0)
		readiness_s = 300;
	for (size_t i = 0;
	     i < sizeof(wait_ladder) / sizeof(wait_ladder[0]) &&
	     m->n_wait_le < ZW_METRICS_MAX_WAIT_LE - 1 && wait_ladder[i] < readiness_s;
	     i++)
		m->wait_le[m->n_wait_le++] = wait_ladder[i];
	m->wait_le[m->n_wait_le++] = readiness_s;
	return pthread_mutex_init(&m->lock, NULL);
}

void zw_metrics_shard_free(struct zw_metrics_shard *m)
{
	zw_strmap_each(&m->targets, free_target, NULL);
	zw_strmap_free(&m->targets);
	pthread_mutex_destroy(&m->lock);
}

/* Finds or creates the entry for key; the lock must be held. */
static struct zw_metrics_target *get(struct zw_metrics_shard *m, const char *key)
{
	if (m->n_targets >= ZW_METRICS_MAX_TARGETS)
		key = "_overflow";
	struct zw_metrics_target *t = target_of(zw_strmap_get(&m->targets, key));
	if (t)
		return t;
	size_t klen = strlen(key);
	if (!(t = calloc(1, sizeof(*t) + klen + 1)))
		return NULL;
	memcpy(t->key, key, klen + 1);
	if (zw_strmap_put(&m->targets, &t->node, t->key) < 0) {
		free(t);
		return NULL;
	}
	m->n_targets++;
	return t;
}

/* Adds n to the (code, method, cold) series of t, or to its overflow. */
static void add_series(struct zw_metrics_target *t, int code, int method, int cold, uint64_t n)
{
	for (int i = 0; i < t->n_ser; i++) {
		struct series *s = &t->ser[i];
		if (s->code == code && s->method == method && s->cold == cold) {
			s->n += n;
			return;
		}
	}
	if (t->n_ser == ZW_METRICS_MAX_SERIES) {
		t->other_n += n;
		return;
	}
	t->ser[t->n_ser++] = (struct series){(uint16_t)code, (uint8_t)method, (uint8_t) !!cold, n};
}

void zw_metrics_request(struct zw_metrics_shard *m, const struct zw_metrics_sample *s)
{
	int cold = !!s->cold;
	int method = s->method >= 0 && s->method < ZW_M_COUNT ? s->method : ZW_M_OTHER;
	pthread_mutex_lock(&m->lock);
	struct zw_metrics_target *t = get(m, s->key ? s->key : "");
	if (t) {
		add_series(t, s->code > 0 && s->code < 1000 ? s->code : 0, method, cold, 1);
		int k = 0;
		while (k < ZW_METRICS_N_LE && s->seconds > le[k])
			k++;
		t->hist[cold][k]++;
		t->sum[cold] += s->seconds;
		t->count[cold]++;
	}
	pthread_mutex_unlock(&m->lock);
}

void zw_metrics_wait(struct zw_metrics_shard *m, const char *key, double seconds)
{
	pthread_mutex_lock(&m->lock);
	struct zw_metrics_target *t = get(m, key ? key : "");
	if (t) {
		int k = 0;
		while (k < m->n_wait_le && seconds > m->wait_le[k])
			k++;
		t->wait[k]++;
		t->wait_sum += seconds;
		t->wait_count++;
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

/* Adds the counts of t into d (same key). */
static void merge_one(struct zw_metrics_target *d, const struct zw_metrics_target *t)
{
	for (int i = 0; i < t->n_ser; i++)
		add_series(d, t->ser[i].code, t->ser[i].method, t->ser[i].cold, t->ser[i].n);
	d->other_n += t->other_n;
	for (int c = 0; c < 2; c++) {
		for (int k = 0; k <= ZW_METRICS_N_LE; k++)
			d->hist[c][k] += t->hist[c][k];
		d->sum[c] += t->sum[c];
		d->count[c] += t->count[c];
	}
	for (int k = 0; k <= ZW_METRICS_MAX_WAIT_LE; k++)
		d->wait[k] += t->wait[k];
	d->wait_sum += t->wait_sum;
	d->wait_count += t->wait_count;
	for (int e = 0; e < ZW_EV_COUNT; e++)
		d->ev[e] += t->ev[e];
}

/* Adds shard entry n into the shard `all` (ctx). */
static void merge_into(struct zw_strmap_node *n, void *all)
{
	const struct zw_metrics_target *t = target_of(n);
	struct zw_metrics_target *d = get(all, t->key);
	if (d)
		merge_one(d, t);
}

/* Takes entry n out of its map onto the list *ctx. */
static void push_list(struct zw_strmap_node *n, void *ctx)
{
	struct zw_metrics_target **list = ctx, *t = target_of(n);
	t->next = *list;
	*list = t;
}

/* Merges every shard's entries into one list of copies (caller frees). */
static struct zw_metrics_target *merge(struct zw_metrics_shard *const *shards, size_t n)
{
	struct zw_metrics_shard all;
	if (zw_metrics_shard_init(&all, 0) != 0)
		return NULL;
	for (size_t s = 0; s < n; s++) {
		struct zw_metrics_shard *m = shards[s];
		pthread_mutex_lock(&m->lock);
		zw_strmap_each(&m->targets, merge_into, &all);
		pthread_mutex_unlock(&m->lock);
	}
	/* Flatten into one list; the map keeps no entry. */
	struct zw_metrics_target *list = NULL;
	zw_strmap_each(&all.targets, push_list, &list);
	zw_strmap_free(&all.targets);
	zw_metrics_shard_free(&all);
	return list;
}

void zw_metrics_key_labels(const char *key, char *ns, size_t ns_cap, char *target,
                           size_t target_cap)
{
	char raw[256];
	const char *slash = strchr(key, '/');
	size_t l = slash ? (size_t)(slash - key) : 0;
	if (l >= sizeof(raw))
		l = sizeof(raw) - 1;
	memcpy(raw, key, l);
	raw[l] = '\0';
	zw_prom_escape(ns, ns_cap, raw);
	zw_prom_escape(target, target_cap, slash ? slash + 1 : key);
}

/* Label buffers of one target. */
struct lab {
	char ns[512];
	char name[1024];
};

/* Appends one histogram's buckets, sum and count; `extra` is a further
 * label pair (",cold_start=\"true\"") or "". */
static int add_hist(struct zw_obuf *out, const char *fam, const struct lab *l, const char *extra,
                    const double *bounds, int n_bounds, const uint64_t *counts, double sum)
{
	uint64_t cum = 0;
	for (int k = 0; k <= n_bounds; k++) {
		cum += counts[k];
		char lebuf[32];
		if (k < n_bounds)
			snprintf(lebuf, sizeof(lebuf), "%g", bounds[k]);
		else
			snprintf(lebuf, sizeof(lebuf), "+Inf");
		if (zw_obuf_addf(out,
		                 "%s_bucket{namespace=\"%s\",target=\"%s\"%s,le=\"%s\"} %llu\n",
		                 fam, l->ns, l->name, extra, lebuf, (unsigned long long)cum) < 0)
			return -1;
	}
	return zw_obuf_addf(out,
	                    "%s_sum{namespace=\"%s\",target=\"%s\"%s} %.6f\n"
	                    "%s_count{namespace=\"%s\",target=\"%s\"%s} %llu\n",
	                    fam, l->ns, l->name, extra, sum, fam, l->ns, l->name, extra,
	                    (unsigned long long)cum);
}

/* Appends the series of one target to the three request families. */
static int render_requests(struct zw_obuf *out, const struct zw_metrics_target *t,
                           const struct lab *l)
{
	for (int i = 0; i < t->n_ser; i++) {
		const struct series *s = &t->ser[i];
		char code[8];
		snprintf(code, sizeof(code), "%d", s->code);
		if (zw_obuf_addf(
		            out,
		            "zerowire_requests_total{namespace=\"%s\",target=\"%s\",method=\"%s\","
		            "code=\"%s\",cold_start=\"%s\"} %llu\n",
		            l->ns, l->name, method_names[s->method], s->code ? code : "other",
		            s->cold ? "true" : "false", (unsigned long long)s->n) < 0)
			return -1;
	}
	if (t->other_n &&
	    zw_obuf_addf(out,
	                 "zerowire_requests_total{namespace=\"%s\",target=\"%s\",method=\"_OTHER\","
	                 "code=\"other\",cold_start=\"false\"} %llu\n",
	                 l->ns, l->name, (unsigned long long)t->other_n) < 0)
		return -1;
	return 0;
}

int zw_metrics_render(struct zw_metrics_shard *const *shards, size_t n, struct zw_obuf *out)
{
	struct zw_metrics_target *list = merge(shards, n);
	const struct zw_metrics_shard *cfg = n ? shards[0] : NULL;
	struct lab *l = malloc(sizeof(*l));
	int rc = -1;
	if (!l)
		goto out;
	if (zw_obuf_addf(out,
	                 "# HELP zerowire_requests_total Requests answered, by target, method, "
	                 "status code and cold-start flag.\n"
	                 "# TYPE zerowire_requests_total counter\n") < 0)
		goto out;
	for (struct zw_metrics_target *t = list; t; t = t->next) {
		zw_metrics_key_labels(t->key, l->ns, sizeof(l->ns), l->name, sizeof(l->name));
		if (render_requests(out, t, l) < 0)
			goto out;
	}
	if (zw_obuf_addf(out, "# HELP zerowire_request_duration_seconds Time from the request "
	                      "head to the end of the response, by cold-start flag.\n"
	                      "# TYPE zerowire_request_duration_seconds histogram\n") < 0)
		goto out;
	for (struct zw_metrics_target *t = list; t; t = t->next) {
		zw_metrics_key_labels(t->key, l->ns, sizeof(l->ns), l->name, sizeof(l->name));
		for (int c = 0; c < 2; c++)
			if (t->count[c] &&
			    add_hist(out, "zerowire_request_duration_seconds", l,
			             c ? ",cold_start=\"true\"" : ",cold_start=\"false\"", le,
			             ZW_METRICS_N_LE, t->hist[c], t->sum[c]) < 0)
				goto out;
	}
	if (zw_obuf_addf(out, "# HELP zerowire_cold_start_wait_seconds Time requests were held "
	                      "waiting for a ready endpoint (buckets up to the readiness "
	                      "timeout).\n# TYPE zerowire_cold_start_wait_seconds histogram\n") < 0)
		goto out;
	for (struct zw_metrics_target *t = list; t && cfg; t = t->next) {
		if (!t->wait_count)
			continue;
		zw_metrics_key_labels(t->key, l->ns, sizeof(l->ns), l->name, sizeof(l->name));
		if (add_hist(out, "zerowire_cold_start_wait_seconds", l, "", cfg->wait_le,
		             cfg->n_wait_le, t->wait, t->wait_sum) < 0)
			goto out;
	}
	for (int e = 0; e < ZW_EV_COUNT; e++) {
		if (zw_obuf_addf(out, "# HELP %s %s\n# TYPE %s counter\n", ev_names[e], ev_help[e],
		                 ev_names[e]) < 0)
			goto out;
		for (struct zw_metrics_target *t = list; t; t = t->next) {
			if (!t->ev[e])
				continue;
			zw_metrics_key_labels(t->key, l->ns, sizeof(l->ns), l->name,
			                      sizeof(l->name));
			if (zw_obuf_addf(out, "%s{namespace=\"%s\",target=\"%s\"} %llu\n",
			                 ev_names[e], l->ns, l->name,
			                 (unsigned long long)t->ev[e]) < 0)
				goto out;
		}
	}
	rc = 0;
out:
	free(l);
	while (list) {
		struct zw_metrics_target *next = list->next;
		free(list);
		list = next;
	}
	return rc;
}

int zw_metrics_render_process(struct zw_obuf *out)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	if (!f)
		return -1;
	int rc = zw_prom_build_info(f, "proxy");
	if (rc == 0)
		rc = zw_prom_process(f);
	if (fclose(f) != 0 || !text)
		rc = -1;
	if (rc == 0)
		rc = zw_obuf_add(out, text, len);
	free(text);
	return rc;
}

uint64_t zw_metrics_requests(struct zw_metrics_shard *const *shards, size_t n, const char *key)
{
	uint64_t sum = 0;
	for (size_t s = 0; s < n; s++) {
		struct zw_metrics_shard *m = shards[s];
		pthread_mutex_lock(&m->lock);
		const struct zw_metrics_target *t = target_of(zw_strmap_get(&m->targets, key));
		if (t)
			sum += t->count[0] + t->count[1];
		pthread_mutex_unlock(&m->lock);
	}
	return sum;
}
