/* zerowire KEDA external scaler (scaler.h, docs/keda-scaler.md). */
#include "scaler.h"

#include "hash.h"
#include "list.h"

#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "endpoints.h"
#include "grpc.h"
#include "log.h"
#include "metrics.h"
#include "peers.h"
#include "proxy/externalscaler.pb-c.h"

#define METRIC_NAME_MAX 256
#define CACHE_MAX       16384 /* resolved refs kept before the cache is flushed */
#define REF_KEY_MAX     2048

#define PATH_ISACTIVE       "/externalscaler.ExternalScaler/IsActive"
#define PATH_STREAMISACTIVE "/externalscaler.ExternalScaler/StreamIsActive"
#define PATH_METRICSPEC     "/externalscaler.ExternalScaler/GetMetricSpec"
#define PATH_METRICS        "/externalscaler.ExternalScaler/GetMetrics"
#define PATH_STREAMSPEC     "/externalscaler.ExternalScaler/StreamMetricSpec"

/* calls_total indexes, in the order of mnames in zw_scaler_prometheus. */
enum { CALL_ISACTIVE, CALL_STREAMISACTIVE, CALL_METRICSPEC, CALL_METRICS, CALL_STREAMSPEC, CALLS };

/* A ScaledObjectRef reduced to what resolution reads. */
struct ref {
	const char *ns;
	const char *name;
	const char *ir;      /* interceptorRoute */
	const char *hso;     /* httpScaledObject */
	const char *service; /* own trigger metadata, for several triggers */
	const char *port;
	const char *hosts;
	const char *paths;
};

/* A resolved target: what the scaler reports for it. */
struct resolved {
	struct resolved *next;
	char *ref_key;
	bool found;
	char *key; /* the strings are set (owned) when found */
	unsigned metrics;
	double rate_target;
	double concurrency_target;
	char *rate_name;
	char *concurrency_name;
	struct zw_stats_entry *st; /* a reference, so peers' deltas have a window */
};

/* A StreamIsActive stream, or (spec) a StreamMetricSpec stream. */
struct watcher {
	struct watcher *prev, *next;
	struct zw_grpc_call *call;
	bool spec;
	uint8_t *spec_msg; /* spec: last GetMetricSpecResponse sent (packed); NULL: none */
	size_t spec_len;
	char *ref_key;
	struct ref ref; /* strings point into strs */
	char *strs;
	struct resolved *res; /* NULL while the target is unknown */
	uint64_t gen;         /* cache generation res belongs to */
	int last_sent;        /* -1: nothing sent yet */
	uint64_t last_sent_ms;
};

struct hint {
	struct hint *prev, *next; /* s->hints (lib/list.h) */
	uint64_t until_ms;
	char key[];
};

struct zw_scaler {
	uv_loop_t *loop;
	struct zw_scaler_config cfg;
	struct zw_stats *stats;
	struct zw_scaler_targets targets;
	struct zw_grpc_server *grpc;
	struct zw_peers *peers;
	uv_async_t wake_async;
	uv_timer_t tick;
	int open_handles;
	bool stopping;
	bool grpc_done, peers_done;
	void (*done)(void *arg);
	void *done_arg;

	struct resolved **cache;
	size_t cache_size; /* buckets, power of two */
	size_t cache_count;
	uint64_t gen;

	struct watcher *watchers;
	size_t n_watchers;      /* StreamIsActive */
	size_t n_spec_watchers; /* StreamMetricSpec */

	struct zw_endpoints *peer_eps; /* zw_scaler_watch_peers */
	char *peer_ns, *peer_svc, *peer_port_name;
	int peer_port;
	struct hint *hints;
	size_t n_hints;

	uint64_t calls_total[CALLS];
	uint64_t not_found_total;
	uint64_t pushes_total;
	uint64_t spec_pushes_total;
	uint64_t wakes_total;
	uint64_t peer_cold_received_total;
	uint64_t peer_cold_unknown_total;
	uint64_t peer_auth_missing_total;
	uint64_t peer_auth_wrong_total;
};

void zw_scaler_config_default(struct zw_scaler_config *c)
{
	memset(c, 0, sizeof(*c));
	c->grpc_host = "0.0.0.0";
	c->grpc_port = 9090;
	c->heartbeat_ms = 1000;
	c->tick_ms = 200;
	c->max_message = 4 * 1024 * 1024;
	c->max_streams = 1000;
	c->max_connections = 1024;
	c->idle_timeout_ms = 300000;
	c->peer_poll_ms = 500;
	c->peer_timeout_ms = 200;
	c->peer_port = 9091;
	c->max_peers = 64;
}

/* ---- metric names ---- */

int zw_scaler_metric_name(const struct zw_target *t, const char *metric, char *buf, size_t len)
{
	char raw[1024];
	int n;
	size_t m;

	if (len <= 200)
		return -ENOSPC;
	if ((t->source == ZW_SRC_SCALEDOBJECT || t->source == ZW_SRC_KEDIFY) &&
	    t->trigger_index > 0)
		n = snprintf(raw, sizeof(raw), "%s-%s-t%d-%s", t->namespace ? t->namespace : "",
		             t->name ? t->name : "", t->trigger_index, metric);
	else
		n = snprintf(raw, sizeof(raw), "%s-%s-%s", t->namespace ? t->namespace : "",
		             t->name ? t->name : "", metric);
	if (n < 0)
		return -EINVAL;
	m = (size_t)n < sizeof(raw) ? (size_t)n : sizeof(raw) - 1;
	for (size_t i = 0; i < m; i++) {
		char c = (char)tolower((unsigned char)raw[i]);

		raw[i] = ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')) ? c : '-';
	}
	if (m > 200) {
		uint32_t h = zw_hash32(raw, m);

		memcpy(buf, raw, 191);
		snprintf(buf + 191, len - 191, "-%08x", h);
		return 200;
	}
	memcpy(buf, raw, m);
	buf[m] = 0;
	return (int)m;
}

/* ---- resolution ---- */

static size_t str_hash(const char *s)
{
	return zw_hash32(s, strlen(s));
}

/* Builds the cache key of a ref: the fields resolution reads, in a fixed
 * order, so KEDA's map order does not matter. Returns 0 or -ENAMETOOLONG. */
static int ref_key(const struct ref *r, char *buf, size_t len)
{
	int n = snprintf(buf, len, "%s\x1f%s\x1f%s\x1f%s\x1f%s\x1f%s\x1f%s\x1f%s", r->ns, r->name,
	                 r->ir ? r->ir : "", r->hso ? r->hso : "", r->service ? r->service : "",
	                 r->port ? r->port : "", r->hosts ? r->hosts : "",
	                 r->paths ? r->paths : "");

	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

static bool str_eq(const char *a, const char *b)
{
	return a && b && strcmp(a, b) == 0;
}

/* Does every comma-separated item of `list` (spaces ignored, case-folded)
 * appear in arr? */
static bool list_covered(const char *list, char *const *arr, size_t n)
{
	const char *p = list;

	while (p && *p) {
		const char *end = strchr(p, ',');
		size_t l = end ? (size_t)(end - p) : strlen(p);
		bool hit = false;

		while (l && isspace((unsigned char)*p)) {
			p++;
			l--;
		}
		while (l && isspace((unsigned char)p[l - 1]))
			l--;
		for (size_t i = 0; l && i < n && !hit; i++) {
			const char *a = arr[i];
			size_t al = strlen(a);

			/* stored paths have no trailing '/' */
			hit = (al == l && strncasecmp(a, p, l) == 0) ||
			      (al + 1 == l && p[l - 1] == '/' && strncasecmp(a, p, al) == 0);
		}
		if (l && !hit)
			return false;
		p = end ? end + 1 : NULL;
	}
	return true;
}

struct match {
	const struct ref *ref;
	const struct zw_target *best;
	int best_score;
	struct resolved *out;
	int rc;
};

/* Score of target t for the ref; < 0 when it does not match. */
static int match_score(const struct ref *r, const struct zw_target *t)
{
	int score = 0;

	if (!str_eq(t->namespace, r->ns))
		return -1;
	if (r->ir)
		return t->source == ZW_SRC_INTERCEPTORROUTE && str_eq(t->name, r->ir) ? 100 : -1;
	if (r->hso)
		return t->source == ZW_SRC_HTTPSCALEDOBJECT && str_eq(t->name, r->hso) ? 100 : -1;
	if ((t->source == ZW_SRC_SCALEDOBJECT || t->source == ZW_SRC_KEDIFY) &&
	    str_eq(t->name, r->name)) {
		score = 50;
		if (r->service && str_eq(t->service.name, r->service))
			score += 8;
		if (r->port && t->service.port > 0 && strtol(r->port, NULL, 10) == t->service.port)
			score += 2;
		if (r->port && str_eq(t->service.port_name, r->port))
			score += 2;
		if (r->hosts && t->n_rules > 0 &&
		    list_covered(r->hosts, t->rules[0].hosts, t->rules[0].n_hosts))
			score += 4;
		if (r->paths && t->n_rules > 0 &&
		    list_covered(r->paths, t->rules[0].paths, t->rules[0].n_paths))
			score += 1;
		return score;
	}
	/* Last resort: an InterceptorRoute/HTTPScaledObject linked to this
	 * ScaledObject. */
	if ((t->source == ZW_SRC_INTERCEPTORROUTE || t->source == ZW_SRC_HTTPSCALEDOBJECT) &&
	    str_eq(t->scaled_object, r->name))
		return 10;
	return -1;
}

static int fill_resolved(struct zw_scaler *s, struct resolved *res, const struct zw_target *t)
{
	char key[ZW_STATS_KEY_MAX], rate[METRIC_NAME_MAX], conc[METRIC_NAME_MAX];
	int rc;

	zw_target_key(t, key, sizeof(key));
	if (zw_scaler_metric_name(t, "requestrate", rate, sizeof(rate)) < 0 ||
	    zw_scaler_metric_name(t, "concurrency", conc, sizeof(conc)) < 0)
		return -EINVAL;
	res->key = strdup(key);
	res->rate_name = strdup(rate);
	res->concurrency_name = strdup(conc);
	if (!res->key || !res->rate_name || !res->concurrency_name)
		return -ENOMEM;
	res->metrics = t->metrics ? t->metrics : ZW_METRIC_REQUEST_RATE;
	res->rate_target = t->rate_target > 0 ? t->rate_target : 100;
	res->concurrency_target = t->concurrency_target > 0 ? t->concurrency_target : 100;
	rc = zw_stats_acquire(s->stats, res->key, t->window_ms, t->granularity_ms, &res->st);
	if (rc < 0)
		res->st = NULL;
	res->found = true;
	return 0;
}

static int match_each(void *arg, const struct zw_target *t)
{
	struct match *m = arg;
	int score = match_score(m->ref, t);

	if (score < 0)
		return 0;
	if (!m->best || score > m->best_score ||
	    (score == m->best_score && t->trigger_index < m->best->trigger_index)) {
		m->best = t;
		m->best_score = score;
	}
	return 0;
}

/* Receives the best match while the target is still borrowed. */
struct match_fill {
	struct zw_scaler *s;
	struct match m;
};

static int match_fill_each(void *arg, const struct zw_target *t)
{
	struct match_fill *mf = arg;

	if (t == mf->m.best) {
		mf->m.rc = fill_resolved(mf->s, mf->m.out, t);
		return 1;
	}
	return 0;
}

static void resolved_free(struct zw_scaler *s, struct resolved *r)
{
	if (!r)
		return;
	zw_stats_release(s->stats, r->st);
	free(r->ref_key);
	free(r->key);
	free(r->rate_name);
	free(r->concurrency_name);
	free(r);
}

static void cache_flush(struct zw_scaler *s)
{
	for (size_t i = 0; i < s->cache_size; i++) {
		struct resolved *r = s->cache[i];

		while (r) {
			struct resolved *next = r->next;

			resolved_free(s, r);
			r = next;
		}
		s->cache[i] = NULL;
	}
	s->cache_count = 0;
	s->gen++;
	for (struct watcher *w = s->watchers; w; w = w->next)
		w->res = NULL;
}

/* Looks ref up in the cache; `key` receives its cache key (REF_KEY_MAX).
 * Returns the entry, or NULL (not cached, or *too_long set). */
static struct resolved *cache_find(struct zw_scaler *s, const struct ref *r, char *key,
                                   bool *too_long)
{
	struct resolved *res;

	*too_long = ref_key(r, key, REF_KEY_MAX) < 0;
	if (*too_long)
		return NULL;
	for (res = s->cache[str_hash(key) & (s->cache_size - 1)]; res; res = res->next)
		if (strcmp(res->ref_key, key) == 0)
			return res;
	return NULL;
}

/* Resolves ref against the current targets into a new entry with cache key
 * `key` (not inserted anywhere). Returns it (found or not; free with
 * resolved_free) or NULL on allocation failure. */
static struct resolved *resolve_new(struct zw_scaler *s, const struct ref *r, const char *key)
{
	struct resolved *res = calloc(1, sizeof(*res));
	struct match_fill mf;

	if (!res)
		return NULL;
	res->ref_key = strdup(key);
	if (!res->ref_key) {
		free(res);
		return NULL;
	}
	memset(&mf, 0, sizeof(mf));
	mf.s = s;
	mf.m.ref = r;
	mf.m.out = res;
	if (s->targets.each) {
		s->targets.each(s->targets.arg, match_each, &mf.m);
		if (mf.m.best)
			s->targets.each(s->targets.arg, match_fill_each, &mf);
	}
	if (mf.m.rc < 0)
		res->found = false;
	return res;
}

/* Resolves ref (through the cache). Returns the cache entry (found or not)
 * or NULL on allocation failure. The pointer stays valid until the next
 * cache flush. */
static struct resolved *resolve(struct zw_scaler *s, const struct ref *r)
{
	char key[REF_KEY_MAX];
	struct resolved *res;
	bool too_long;
	size_t b;

	res = cache_find(s, r, key, &too_long);
	if (res || too_long)
		return res;
	if (s->cache_count >= CACHE_MAX)
		cache_flush(s);
	res = resolve_new(s, r, key);
	if (!res)
		return NULL;
	b = str_hash(key) & (s->cache_size - 1);
	res->next = s->cache[b];
	s->cache[b] = res;
	s->cache_count++;
	return res;
}

static void ref_from_pb(struct ref *r, const Externalscaler__ScaledObjectRef *pb)
{
	memset(r, 0, sizeof(*r));
	r->ns = pb && pb->namespace_ ? pb->namespace_ : "";
	r->name = pb && pb->name ? pb->name : "";
	for (size_t i = 0; pb && i < pb->n_scalermetadata; i++) {
		const char *k = pb->scalermetadata[i]->key, *v = pb->scalermetadata[i]->value;

		if (!k || !v)
			continue;
		if (strcmp(k, "interceptorRoute") == 0 && *v)
			r->ir = v;
		else if (strcmp(k, "httpScaledObject") == 0 && *v)
			r->hso = v;
		else if (strcmp(k, "service") == 0)
			r->service = v;
		else if (strcmp(k, "port") == 0 || strcmp(k, "portName") == 0)
			r->port = v;
		else if (strcmp(k, "hosts") == 0)
			r->hosts = v;
		else if (strcmp(k, "pathPrefixes") == 0)
			r->paths = v;
	}
}

static void not_found_message(const struct ref *r, char *buf, size_t len)
{
	if (r->ir)
		snprintf(buf, len, "no InterceptorRoute %s/%s known to zerowire (ScaledObject %s)",
		         r->ns, r->ir, r->name);
	else if (r->hso)
		snprintf(buf, len, "no HTTPScaledObject %s/%s known to zerowire (ScaledObject %s)",
		         r->ns, r->hso, r->name);
	else
		snprintf(buf, len,
		         "no zerowire target for ScaledObject %s/%s (trigger metadata needs "
		         "service, interceptorRoute or httpScaledObject)",
		         r->ns, r->name);
}

/* ---- values ---- */

struct values {
	double rate;
	double concurrency;
	double window_requests;
	bool active;
};

static bool hint_active(struct zw_scaler *s, const char *key, uint64_t now)
{
	struct hint *h, *next;

	for (h = s->hints; h; h = next) {
		next = h->next;
		if (h->until_ms <= now) {
			ZW_LIST_UNLINK(s->hints, h);
			free(h);
			s->n_hints--;
			continue;
		}
		if (strcmp(h->key, key) == 0)
			return true;
	}
	return false;
}

static void values_get(struct zw_scaler *s, const struct resolved *res, struct values *v)
{
	struct zw_stats_snapshot snap;
	uint64_t now = uv_now(s->loop);
	int64_t peer_conc = s->peers ? zw_peers_concurrency(s->peers, res->key) : 0;

	memset(v, 0, sizeof(*v));
	if (zw_stats_get(s->stats, res->key, now, &snap) == 0) {
		v->rate = snap.rate;
		v->window_requests = snap.window_requests;
		v->concurrency = (double)snap.concurrency;
	}
	v->concurrency += (double)peer_conc;
	v->active = v->rate > 0 || v->concurrency > 0 || hint_active(s, res->key, now);
}

/* ---- gRPC handlers ---- */

static int reply(struct zw_grpc_call *call, const ProtobufCMessage *m)
{
	size_t n = protobuf_c_message_get_packed_size(m);
	uint8_t *buf = malloc(n ? n : 1);
	int rc;

	if (!buf)
		return zw_grpc_finish(call, ZW_GRPC_INTERNAL, "out of memory");
	protobuf_c_message_pack(m, buf);
	rc = zw_grpc_send(call, buf, n);
	free(buf);
	return rc;
}

static Externalscaler__ScaledObjectRef *unpack_ref(struct zw_grpc_call *call, const uint8_t *msg,
                                                   size_t len)
{
	Externalscaler__ScaledObjectRef *pb =
	        externalscaler__scaled_object_ref__unpack(NULL, len, msg);

	if (!pb)
		zw_grpc_finish(call, ZW_GRPC_INVALID_ARGUMENT, "malformed ScaledObjectRef");
	return pb;
}

/* Resolves for a unary call; answers NOT_FOUND itself. */
static struct resolved *resolve_unary(struct zw_scaler *s, struct zw_grpc_call *call,
                                      const Externalscaler__ScaledObjectRef *pb)
{
	struct ref r;
	struct resolved *res;
	char msg[512];

	ref_from_pb(&r, pb);
	res = resolve(s, &r);
	if (!res) {
		zw_grpc_finish(call, ZW_GRPC_INTERNAL, "out of memory");
		return NULL;
	}
	if (!res->found) {
		s->not_found_total++;
		not_found_message(&r, msg, sizeof(msg));
		zw_grpc_finish(call, ZW_GRPC_NOT_FOUND, msg);
		return NULL;
	}
	return res;
}

static int on_is_active(void *arg, struct zw_grpc_call *call, const uint8_t *msg, size_t len)
{
	struct zw_scaler *s = arg;
	Externalscaler__ScaledObjectRef *pb;
	Externalscaler__IsActiveResponse resp = EXTERNALSCALER__IS_ACTIVE_RESPONSE__INIT;
	struct resolved *res;
	struct values v;

	s->calls_total[CALL_ISACTIVE]++;
	pb = unpack_ref(call, msg, len);
	if (!pb)
		return 0;
	res = resolve_unary(s, call, pb);
	if (res) {
		values_get(s, res, &v);
		resp.result = v.active;
		if (reply(call, &resp.base) == 0)
			zw_grpc_finish(call, ZW_GRPC_OK, NULL);
	}
	externalscaler__scaled_object_ref__free_unpacked(pb, NULL);
	return 0;
}

/* Packs the GetMetricSpecResponse for a found target into *out (malloc'd,
 * caller frees) of *out_len bytes. Returns 0 or -ENOMEM. */
static int spec_pack(const struct resolved *res, uint8_t **out, size_t *out_len)
{
	Externalscaler__GetMetricSpecResponse resp = EXTERNALSCALER__GET_METRIC_SPEC_RESPONSE__INIT;
	Externalscaler__MetricSpec specs[2] = {EXTERNALSCALER__METRIC_SPEC__INIT,
	                                       EXTERNALSCALER__METRIC_SPEC__INIT};
	Externalscaler__MetricSpec *ptrs[2];
	const unsigned which[2] = {ZW_METRIC_REQUEST_RATE, ZW_METRIC_CONCURRENCY};
	char *const names[2] = {res->rate_name, res->concurrency_name};
	const double targets[2] = {res->rate_target, res->concurrency_target};
	size_t n = 0;

	for (size_t i = 0; i < 2; i++) {
		if (!(res->metrics & which[i]))
			continue;
		specs[n].metricname = names[i];
		specs[n].targetsizefloat = targets[i];
		specs[n].targetsize = (int64_t)ceil(targets[i]);
		ptrs[n] = &specs[n];
		n++;
	}
	resp.n_metricspecs = n;
	resp.metricspecs = ptrs;
	*out_len = externalscaler__get_metric_spec_response__get_packed_size(&resp);
	*out = malloc(*out_len ? *out_len : 1);
	if (!*out)
		return -ENOMEM;
	externalscaler__get_metric_spec_response__pack(&resp, *out);
	return 0;
}

static int on_metric_spec(void *arg, struct zw_grpc_call *call, const uint8_t *msg, size_t len)
{
	struct zw_scaler *s = arg;
	Externalscaler__ScaledObjectRef *pb;
	struct resolved *res;
	uint8_t *out = NULL;
	size_t out_len;

	s->calls_total[CALL_METRICSPEC]++;
	pb = unpack_ref(call, msg, len);
	if (!pb)
		return 0;
	res = resolve_unary(s, call, pb);
	if (res) {
		if (spec_pack(res, &out, &out_len) < 0)
			zw_grpc_finish(call, ZW_GRPC_INTERNAL, "out of memory");
		else if (zw_grpc_send(call, out, out_len) == 0)
			zw_grpc_finish(call, ZW_GRPC_OK, NULL);
		free(out);
	}
	externalscaler__scaled_object_ref__free_unpacked(pb, NULL);
	return 0;
}

/* KEDA may send the HPA name "s<N>-<ours>"; accept both. */
static bool metric_matches(const char *want, const char *ours)
{
	if (strcmp(want, ours) == 0)
		return true;
	if (want[0] == 's' && isdigit((unsigned char)want[1])) {
		const char *p = want + 1;

		while (isdigit((unsigned char)*p))
			p++;
		if (*p == '-' && strcmp(p + 1, ours) == 0)
			return true;
	}
	return false;
}

static int on_metrics(void *arg, struct zw_grpc_call *call, const uint8_t *msg, size_t len)
{
	struct zw_scaler *s = arg;
	Externalscaler__GetMetricsRequest *pb;
	Externalscaler__GetMetricsResponse resp = EXTERNALSCALER__GET_METRICS_RESPONSE__INIT;
	Externalscaler__MetricValue vals[2] = {EXTERNALSCALER__METRIC_VALUE__INIT,
	                                       EXTERNALSCALER__METRIC_VALUE__INIT};
	Externalscaler__MetricValue *ptrs[2];
	struct resolved *res;
	struct values v;
	const char *want;
	size_t n = 0;
	char err[METRIC_NAME_MAX + 64];

	s->calls_total[CALL_METRICS]++;
	pb = externalscaler__get_metrics_request__unpack(NULL, len, msg);
	if (!pb) {
		zw_grpc_finish(call, ZW_GRPC_INVALID_ARGUMENT, "malformed GetMetricsRequest");
		return 0;
	}
	res = resolve_unary(s, call, pb->scaledobjectref);
	if (!res)
		goto out;
	values_get(s, res, &v);
	want = pb->metricname ? pb->metricname : "";
	if ((res->metrics & ZW_METRIC_REQUEST_RATE) &&
	    (!*want || metric_matches(want, res->rate_name))) {
		vals[n].metricname = res->rate_name;
		vals[n].metricvaluefloat = v.rate;
		vals[n].metricvalue = (int64_t)ceil(v.rate);
		ptrs[n] = &vals[n];
		n++;
	}
	if ((res->metrics & ZW_METRIC_CONCURRENCY) &&
	    (!*want || metric_matches(want, res->concurrency_name))) {
		vals[n].metricname = res->concurrency_name;
		vals[n].metricvaluefloat = v.concurrency;
		vals[n].metricvalue = (int64_t)ceil(v.concurrency);
		ptrs[n] = &vals[n];
		n++;
	}
	if (n == 0) {
		snprintf(err, sizeof(err), "metric %.*s is not served for this target",
		         METRIC_NAME_MAX, want);
		zw_grpc_finish(call, ZW_GRPC_NOT_FOUND, err);
		goto out;
	}
	resp.n_metricvalues = n;
	resp.metricvalues = ptrs;
	if (reply(call, &resp.base) == 0)
		zw_grpc_finish(call, ZW_GRPC_OK, NULL);
out:
	externalscaler__get_metrics_request__free_unpacked(pb, NULL);
	return 0;
}

static void watcher_free(struct zw_scaler *s, struct watcher *w)
{
	ZW_LIST_UNLINK(s->watchers, w);
	if (w->spec)
		s->n_spec_watchers--;
	else
		s->n_watchers--;
	free(w->ref_key);
	free(w->strs);
	free(w->spec_msg);
	free(w);
}

/* Sends one state on a stream; a stream whose client does not read is
 * ended. Returns 0, or -1 when the watcher was freed. */
static int watcher_send(struct zw_scaler *s, struct watcher *w, bool active)
{
	Externalscaler__IsActiveResponse resp = EXTERNALSCALER__IS_ACTIVE_RESPONSE__INIT;
	uint8_t buf[8];
	size_t n;

	resp.result = active;
	n = externalscaler__is_active_response__pack(&resp, buf);
	if (zw_grpc_send(w->call, buf, n) < 0) {
		zw_grpc_finish(w->call, ZW_GRPC_RESOURCE_EXHAUSTED, "stream not read");
		watcher_free(s, w);
		return -1;
	}
	s->pushes_total++;
	w->last_sent = active;
	w->last_sent_ms = uv_now(s->loop);
	return 0;
}

/* Resolves a watcher if needed; returns its target or NULL. */
static struct resolved *watcher_target(struct zw_scaler *s, struct watcher *w)
{
	struct resolved *res;

	if (w->res && w->gen == s->gen)
		return w->res;
	res = resolve(s, &w->ref);
	w->gen = s->gen;
	w->res = res && res->found ? res : NULL;
	return w->res;
}

/* Copies the ref's strings so the watcher outlives the request message. */
static int watcher_copy_ref(struct watcher *w, const struct ref *r)
{
	const char *src[8] = {r->ns,      r->name, r->ir,    r->hso,
	                      r->service, r->port, r->hosts, r->paths};
	const char **dst[8] = {&w->ref.ns,      &w->ref.name, &w->ref.ir,    &w->ref.hso,
	                       &w->ref.service, &w->ref.port, &w->ref.hosts, &w->ref.paths};
	size_t total = 0;
	char *p;

	for (int i = 0; i < 8; i++)
		total += src[i] ? strlen(src[i]) + 1 : 0;
	w->strs = malloc(total ? total : 1);
	if (!w->strs)
		return -ENOMEM;
	p = w->strs;
	for (int i = 0; i < 8; i++) {
		if (!src[i]) {
			*dst[i] = NULL;
			continue;
		}
		memcpy(p, src[i], strlen(src[i]) + 1);
		*dst[i] = p;
		p += strlen(src[i]) + 1;
	}
	return 0;
}

/* Sends the target's GetMetricSpecResponse on a StreamMetricSpec stream
 * unless it is what was sent last (or the target is unknown: nothing is
 * sent, the last answer stands). A client not reading, or no memory, ends
 * the stream. Returns 0, or -1 when the watcher was freed. */
static int spec_push(struct zw_scaler *s, struct watcher *w)
{
	struct resolved *res = watcher_target(s, w);
	uint8_t *out;
	size_t out_len;
	int rc;

	if (!res)
		return 0;
	if (spec_pack(res, &out, &out_len) < 0) {
		zw_grpc_finish(w->call, ZW_GRPC_INTERNAL, "out of memory");
		goto fail;
	}
	if (w->spec_msg && w->spec_len == out_len && memcmp(w->spec_msg, out, out_len) == 0) {
		free(out);
		return 0;
	}
	rc = zw_grpc_send(w->call, out, out_len);
	if (rc < 0) {
		free(out);
		zw_grpc_finish(w->call, ZW_GRPC_RESOURCE_EXHAUSTED, "stream not read");
		goto fail;
	}
	free(w->spec_msg);
	w->spec_msg = out;
	w->spec_len = out_len;
	w->last_sent_ms = uv_now(s->loop);
	s->spec_pushes_total++;
	return 0;
fail:
	watcher_free(s, w);
	return -1;
}

/* Opens a StreamIsActive (spec false) or StreamMetricSpec watcher for call
 * and sends its first answer when the target is known; an unknown target
 * keeps the stream open until zw_scaler_targets_changed finds it. */
static int watcher_open(struct zw_scaler *s, struct zw_grpc_call *call, const uint8_t *msg,
                        size_t len, bool spec)
{
	Externalscaler__ScaledObjectRef *pb;
	struct watcher *w;
	struct resolved *res;
	struct values v;
	struct ref r;

	pb = unpack_ref(call, msg, len);
	if (!pb)
		return 0;
	ref_from_pb(&r, pb);
	w = calloc(1, sizeof(*w));
	if (!w || watcher_copy_ref(w, &r) < 0) {
		free(w);
		externalscaler__scaled_object_ref__free_unpacked(pb, NULL);
		zw_grpc_finish(call, ZW_GRPC_INTERNAL, "out of memory");
		return 0;
	}
	externalscaler__scaled_object_ref__free_unpacked(pb, NULL);
	w->call = call;
	w->spec = spec;
	w->last_sent = -1;
	w->last_sent_ms = uv_now(s->loop);
	ZW_LIST_PUSH(s->watchers, w);
	if (spec)
		s->n_spec_watchers++;
	else
		s->n_watchers++;
	zw_grpc_call_set_data(call, w);
	res = watcher_target(s, w);
	if (!res) {
		s->not_found_total++;
		return 0;
	}
	if (spec) {
		spec_push(s, w);
		return 0;
	}
	values_get(s, res, &v);
	watcher_send(s, w, v.active);
	return 0;
}

static int on_stream_is_active(void *arg, struct zw_grpc_call *call, const uint8_t *msg, size_t len)
{
	struct zw_scaler *s = arg;

	s->calls_total[CALL_STREAMISACTIVE]++;
	return watcher_open(s, call, msg, len, false);
}

static int on_stream_metric_spec(void *arg, struct zw_grpc_call *call, const uint8_t *msg,
                                 size_t len)
{
	struct zw_scaler *s = arg;

	s->calls_total[CALL_STREAMSPEC]++;
	return watcher_open(s, call, msg, len, true);
}

static void on_grpc_cancel(void *arg, struct zw_grpc_call *call)
{
	struct zw_scaler *s = arg;
	struct watcher *w = zw_grpc_call_data(call);

	if (w)
		watcher_free(s, w);
}

static const struct zw_grpc_method methods[] = {
        {PATH_ISACTIVE, on_is_active},
        {PATH_STREAMISACTIVE, on_stream_is_active},
        {PATH_METRICSPEC, on_metric_spec},
        {PATH_METRICS, on_metrics},
        {PATH_STREAMSPEC, on_stream_metric_spec},
};

/* ---- loop: ticks and wakes ---- */

/* Tick (heartbeat_only_due) or target change: sends changed activity (and
 * due heartbeats) on StreamIsActive streams. StreamMetricSpec streams get a
 * changed spec on a target change only (a spec depends on nothing else)
 * and a shared HTTP/2 PING when idle for a heartbeat: an unchanged spec is
 * never re-sent, as KEDA reconciles the ScaledObject on every message. */
static void push_states(struct zw_scaler *s, bool heartbeat_only_due)
{
	uint64_t now = uv_now(s->loop);
	struct watcher *w = s->watchers;

	while (w) {
		struct watcher *next = w->next;
		struct resolved *res;
		struct values v;

		if (w->spec) {
			if (!heartbeat_only_due)
				spec_push(s, w);
			else if (now - w->last_sent_ms >= s->cfg.heartbeat_ms &&
			         zw_grpc_ping(w->call, s->cfg.heartbeat_ms) == 0)
				w->last_sent_ms = now;
			w = next;
			continue;
		}
		res = watcher_target(s, w);
		if (res) {
			values_get(s, res, &v);
			if (w->last_sent != (int)v.active ||
			    (heartbeat_only_due && now - w->last_sent_ms >= s->cfg.heartbeat_ms))
				watcher_send(s, w, v.active);
		}
		w = next;
	}
}

static void on_tick(uv_timer_t *t)
{
	struct zw_scaler *s = t->data;

	zw_stats_tick(s->stats, uv_now(s->loop));
	push_states(s, true);
}

/* Pushes true now on every stream of key. */
static void wake_streams(struct zw_scaler *s, const char *key)
{
	struct watcher *w = s->watchers;

	while (w) {
		struct watcher *next = w->next;
		struct resolved *res = w->spec ? NULL : watcher_target(s, w);

		if (res && strcmp(res->key, key) == 0)
			watcher_send(s, w, true);
		w = next;
	}
}

struct key_list {
	char **keys;
	size_t n, cap;
};

static void collect_key(void *arg, const char *key)
{
	struct key_list *l = arg;

	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 8;
		char **k = realloc(l->keys, cap * sizeof(*k));

		if (!k)
			return;
		l->keys = k;
		l->cap = cap;
	}
	l->keys[l->n] = strdup(key);
	if (l->keys[l->n])
		l->n++;
}

static void on_wake_async(uv_async_t *a)
{
	struct zw_scaler *s = a->data;
	struct key_list l = {0};

	if (s->stopping)
		return;
	zw_stats_take_wakes(s->stats, collect_key, &l);
	for (size_t i = 0; i < l.n; i++) {
		s->wakes_total++;
		wake_streams(s, l.keys[i]);
		if (s->peers)
			zw_peers_cold(s->peers, l.keys[i]);
		free(l.keys[i]);
	}
	free(l.keys);
}

static void notify_async(void *arg)
{
	uv_async_send(arg);
}

void zw_scaler_wake(struct zw_scaler *s, const char *key)
{
	size_t kl = strlen(key);
	struct hint *h;
	uint64_t now = uv_now(s->loop);
	uint64_t hold = s->cfg.peer_poll_ms * 2 + s->cfg.peer_timeout_ms;

	if (hold < s->cfg.heartbeat_ms)
		hold = s->cfg.heartbeat_ms;
	for (h = s->hints; h; h = h->next)
		if (strcmp(h->key, key) == 0)
			break;
	if (!h && kl < ZW_STATS_KEY_MAX && s->n_hints < ZW_SCALER_MAX_HINTS) {
		h = malloc(sizeof(*h) + kl + 1);
		if (h) {
			memcpy(h->key, key, kl + 1);
			ZW_LIST_PUSH(s->hints, h);
			s->n_hints++;
		}
	}
	if (h)
		h->until_ms = now + hold;
	wake_streams(s, key);
}

/* ---- lifecycle ---- */

static int peer_key_known(void *arg, const char *key)
{
	return zw_scaler_target_known(arg, key);
}

int zw_scaler_start(uv_loop_t *loop, const struct zw_scaler_config *cfg, struct zw_stats *stats,
                    const struct zw_scaler_targets *targets, struct zw_scaler **out)
{
	struct zw_scaler *s = calloc(1, sizeof(*s));
	struct zw_grpc_config gc;
	struct zw_grpc_handlers h;
	struct zw_peers_config pc;
	int rc;

	if (!s)
		return -ENOMEM;
	s->loop = loop;
	s->cfg = *cfg;
	if (!s->cfg.heartbeat_ms)
		s->cfg.heartbeat_ms = 1000;
	if (!s->cfg.tick_ms)
		s->cfg.tick_ms = 200;
	s->stats = stats;
	s->targets = *targets;
	s->cache_size = 1024;
	s->cache = calloc(s->cache_size, sizeof(*s->cache));
	if (!s->cache) {
		free(s);
		return -ENOMEM;
	}
	zw_grpc_config_default(&gc);
	if (cfg->max_message)
		gc.max_message = cfg->max_message;
	if (cfg->max_streams)
		gc.max_streams = cfg->max_streams;
	if (cfg->max_connections)
		gc.max_connections = cfg->max_connections;
	gc.idle_timeout_ms = cfg->idle_timeout_ms;
	h.methods = methods;
	h.n_methods = sizeof(methods) / sizeof(methods[0]);
	h.on_cancel = on_grpc_cancel;
	h.arg = s;
	rc = zw_grpc_server_start(loop, cfg->grpc_host ? cfg->grpc_host : "0.0.0.0", cfg->grpc_port,
	                          &gc, &h, &s->grpc);
	if (rc < 0) {
		free(s->cache);
		free(s);
		return rc;
	}
	zw_peers_config_default(&pc);
	pc.poll_ms = cfg->peer_poll_ms;
	if (cfg->peer_timeout_ms)
		pc.timeout_ms = cfg->peer_timeout_ms;
	if (cfg->peer_port)
		pc.default_port = cfg->peer_port;
	if (cfg->max_peers)
		pc.max_peers = cfg->max_peers;
	pc.auth = cfg->auth;
	pc.known = peer_key_known;
	pc.known_arg = s;
	rc = zw_peers_new(loop, &pc, stats, &s->peers);
	if (rc < 0) {
		/* grpc is freed asynchronously; s must stay until then. */
		s->peers = NULL;
		s->peers_done = true;
		s->stopping = true;
		zw_scaler_stop(s, NULL, NULL);
		return rc;
	}
	uv_async_init(loop, &s->wake_async, on_wake_async);
	s->wake_async.data = s;
	uv_timer_init(loop, &s->tick);
	s->tick.data = s;
	s->open_handles = 2;
	uv_timer_start(&s->tick, on_tick, s->cfg.tick_ms, s->cfg.tick_ms);
	zw_stats_set_notify(stats, notify_async, &s->wake_async);
	*out = s;
	return 0;
}

int zw_scaler_grpc_port(const struct zw_scaler *s)
{
	return zw_grpc_server_port(s->grpc);
}

void zw_scaler_targets_changed(struct zw_scaler *s)
{
	cache_flush(s);
	push_states(s, false);
}

/* Rebuilds the peer list from the endpoint store. */
static void peers_from_endpoints(struct zw_scaler *s)
{
	struct zw_endpoint_set *set = NULL;
	const char **addrs = NULL;
	char(*bufs)[ZW_PEERS_ADDR_MAX] = NULL;
	size_t n;

	if (!s->peers || zw_endpoints_get(s->peer_eps, s->peer_ns, s->peer_svc, s->peer_port,
	                                  s->peer_port_name, &set) != 0)
		return;
	n = set->n < s->cfg.max_peers ? set->n : s->cfg.max_peers;
	addrs = calloc(n ? n : 1, sizeof(*addrs));
	bufs = calloc(n ? n : 1, sizeof(*bufs));
	if (addrs && bufs) {
		for (size_t i = 0; i < n; i++) {
			const struct zw_endpoint *ep = &set->eps[i];

			if (strchr(ep->ip, ':'))
				snprintf(bufs[i], sizeof(bufs[i]), "[%s]:%u", ep->ip, ep->port);
			else
				snprintf(bufs[i], sizeof(bufs[i]), "%s:%u", ep->ip, ep->port);
			addrs[i] = bufs[i];
		}
		zw_peers_set(s->peers, addrs, n);
	}
	free(addrs);
	free(bufs);
	zw_endpoint_set_unref(set);
}

void zw_scaler_endpoints_changed(struct zw_scaler *s, const char *ns, const char *svc)
{
	if (!s->stopping && s->peer_eps && strcmp(ns, s->peer_ns) == 0 &&
	    strcmp(svc, s->peer_svc) == 0)
		peers_from_endpoints(s);
}

int zw_scaler_watch_peers(struct zw_scaler *s, struct zw_endpoints *eps, const char *ns,
                          const char *svc, int port, const char *port_name)
{
	if (s->peer_eps)
		return -EINVAL;
	s->peer_ns = strdup(ns);
	s->peer_svc = strdup(svc);
	s->peer_port_name = port_name ? strdup(port_name) : NULL;
	if (!s->peer_ns || !s->peer_svc || (port_name && !s->peer_port_name))
		return -ENOMEM;
	s->peer_port = port;
	s->peer_eps = eps;
	peers_from_endpoints(s);
	return 0;
}

int zw_scaler_set_peers(struct zw_scaler *s, const char *const *addrs, size_t n)
{
	return s->peers ? zw_peers_set(s->peers, addrs, n) : -EINVAL;
}

static void maybe_free(struct zw_scaler *s)
{
	void (*done)(void *arg) = s->done;
	void *arg = s->done_arg;

	if (s->open_handles > 0 || !s->grpc_done || !s->peers_done)
		return;
	cache_flush(s);
	while (s->hints) {
		struct hint *h = s->hints;

		s->hints = h->next;
		free(h);
	}
	s->n_hints = 0;
	free(s->cache);
	free(s->peer_ns);
	free(s->peer_svc);
	free(s->peer_port_name);
	free(s);
	if (done)
		done(arg);
}

static void on_handle_closed(uv_handle_t *h)
{
	struct zw_scaler *s = h->data;

	s->open_handles--;
	maybe_free(s);
}

static void on_grpc_done(void *arg)
{
	struct zw_scaler *s = arg;

	s->grpc_done = true;
	maybe_free(s);
}

static void on_peers_done(void *arg)
{
	struct zw_scaler *s = arg;

	s->peers_done = true;
	maybe_free(s);
}

void zw_scaler_stop(struct zw_scaler *s, void (*done)(void *arg), void *arg)
{
	bool had_handles;

	if (!s)
		return;
	had_handles = s->open_handles > 0;
	s->stopping = true;
	s->done = done;
	s->done_arg = arg;
	zw_stats_set_notify(s->stats, NULL, NULL);
	while (s->watchers) {
		struct watcher *w = s->watchers;

		zw_grpc_finish(w->call, ZW_GRPC_UNAVAILABLE, "scaler shutting down");
		watcher_free(s, w);
	}
	if (had_handles) {
		uv_close((uv_handle_t *)&s->wake_async, on_handle_closed);
		uv_close((uv_handle_t *)&s->tick, on_handle_closed);
	}
	if (s->peers) {
		zw_peers_close(s->peers, on_peers_done, s);
		s->peers = NULL;
	} else {
		s->peers_done = true;
	}
	if (s->grpc)
		zw_grpc_server_stop(s->grpc, on_grpc_done, s);
	else
		s->grpc_done = true;
	s->grpc = NULL;
	maybe_free(s);
}

/* ---- admin port ---- */

/* Decodes %XX and '+' in place. Returns 0 or -1 on a bad escape. */
static int pct_decode(char *s)
{
	char *o = s;

	for (; *s; s++) {
		if (*s == '%') {
			int hi, lo;

			if (!isxdigit((unsigned char)s[1]) || !isxdigit((unsigned char)s[2]))
				return -1;
			hi = isdigit((unsigned char)s[1]) ? s[1] - '0' : (tolower(s[1]) - 'a' + 10);
			lo = isdigit((unsigned char)s[2]) ? s[2] - '0' : (tolower(s[2]) - 'a' + 10);
			*o++ = (char)(hi * 16 + lo);
			s += 2;
		} else if (*s == '+') {
			*o++ = ' ';
		} else {
			*o++ = *s;
		}
	}
	*o = 0;
	return 0;
}

/* Finds query parameter `name` in a decoded-on-demand copy of the query;
 * returns a pointer into q (decoded in place) or NULL. q is modified. */
static const char *query_get(char *q, const char *name)
{
	size_t nl = strlen(name);

	for (char *p = q; p && *p;) {
		char *amp = strchr(p, '&');

		if (amp)
			*amp = 0;
		if (strncmp(p, name, nl) == 0 && p[nl] == '=') {
			char *v = p + nl + 1;

			return pct_decode(v) == 0 ? v : NULL;
		}
		if (!amp)
			break;
		*amp = '&';
		p = amp + 1;
	}
	return NULL;
}

static int admin_json(json_t *doc, int status, int *status_out, char **body, size_t *body_len,
                      const char **ctype)
{
	char *s = json_dumps(doc, JSON_COMPACT | JSON_REAL_PRECISION(17));

	json_decref(doc);
	if (!s)
		return -ENOMEM;
	*status_out = status;
	*body = s;
	*body_len = strlen(s);
	*ctype = "application/json";
	return 1;
}

static int admin_error(int status, const char *msg, int *status_out, char **body, size_t *body_len,
                       const char **ctype)
{
	json_t *doc = json_pack("{s:s}", "error", msg);

	if (!doc)
		return -ENOMEM;
	return admin_json(doc, status, status_out, body, body_len, ctype);
}

static int admin_metrics_api(struct zw_scaler *s, char *path, char *query, int *status, char **body,
                             size_t *body_len, const char **ctype)
{
	char *slash = strchr(path, '/');
	char qa[REF_KEY_MAX], qb[REF_KEY_MAX], key[REF_KEY_MAX];
	struct ref r;
	struct resolved *res, *tmp = NULL;
	struct values v;
	char msg[512];
	json_t *doc;
	bool too_long;
	int rc;

	if (!slash || slash == path || !slash[1] || strchr(slash + 1, '/'))
		return admin_error(400, "expected /metrics-api/<namespace>/<scaledobject>", status,
		                   body, body_len, ctype);
	*slash = 0;
	if (pct_decode(path) < 0 || pct_decode(slash + 1) < 0)
		return admin_error(400, "bad percent-encoding", status, body, body_len, ctype);
	memset(&r, 0, sizeof(r));
	r.ns = path;
	r.name = slash + 1;
	if (query && strlen(query) < sizeof(qa)) {
		snprintf(qa, sizeof(qa), "%s", query);
		r.ir = query_get(qa, "interceptorRoute");
		snprintf(qb, sizeof(qb), "%s", query);
		r.hso = query_get(qb, "httpScaledObject");
	}
	/* Read through the cache but never into it: names in the URL must not
	 * fill (or flush) what KEDA's calls use. */
	res = cache_find(s, &r, key, &too_long);
	if (too_long)
		return admin_error(414, "request target too long", status, body, body_len, ctype);
	if (!res)
		res = tmp = resolve_new(s, &r, key);
	if (!res) {
		rc = -ENOMEM;
	} else if (!res->found) {
		not_found_message(&r, msg, sizeof(msg));
		rc = admin_error(404, msg, status, body, body_len, ctype);
	} else {
		values_get(s, res, &v);
		doc = json_pack("{s:s,s:f,s:f,s:f,s:b}", "target", res->key, "requestRate", v.rate,
		                "concurrency", v.concurrency, "requestsInWindow", v.window_requests,
		                "active", v.active);
		rc = doc ? admin_json(doc, 200, status, body, body_len, ctype) : -ENOMEM;
	}
	resolved_free(s, tmp);
	return rc;
}

struct known {
	const char *key;
	char buf[ZW_STATS_KEY_MAX];
	int found;
};

static int known_each(void *arg, const struct zw_target *t)
{
	struct known *k = arg;

	zw_target_key(t, k->buf, sizeof(k->buf));
	k->found = strcmp(k->buf, k->key) == 0;
	return k->found;
}

int zw_scaler_target_known(struct zw_scaler *s, const char *key)
{
	struct known k = {.key = key};

	if (s->targets.known)
		return s->targets.known(s->targets.arg, key);
	if (s->targets.each)
		s->targets.each(s->targets.arg, known_each, &k);
	return k.found;
}

int zw_scaler_admin_is_peer_path(const char *target)
{
	return strncmp(target, "/peer/", 6) == 0;
}

/* The peer token check of every /peer/ path. Returns 0 when allowed, else
 * the admin_error result to return. */
static int peer_auth(struct zw_scaler *s, const char *authorization, int *status, char **body,
                     size_t *body_len, const char **ctype)
{
	int rc = zw_auth_check(s->cfg.auth, authorization);

	if (rc == ZW_AUTH_OK)
		return 0;
	if (rc == ZW_AUTH_MISSING) {
		s->peer_auth_missing_total++;
		rc = admin_error(401, "peer token required (Authorization: Bearer)", status, body,
		                 body_len, ctype);
	} else {
		s->peer_auth_wrong_total++;
		rc = admin_error(403, s->cfg.auth ? "wrong peer token" : "no peer token configured",
		                 status, body, body_len, ctype);
	}
	return rc;
}

int zw_scaler_admin(struct zw_scaler *s, const char *method, const char *target,
                    const char *authorization, int *status, char **body, size_t *body_len,
                    const char **content_type)
{
	char buf[REF_KEY_MAX];
	char *query;
	bool get = strcmp(method, "GET") == 0, post = strcmp(method, "POST") == 0;
	int rc;

	if (strncmp(target, "/metrics-api/", 13) != 0 && !zw_scaler_admin_is_peer_path(target))
		return 0;
	if (zw_scaler_admin_is_peer_path(target)) {
		rc = peer_auth(s, authorization, status, body, body_len, content_type);
		if (rc != 0)
			return rc;
	}
	if (strlen(target) >= sizeof(buf))
		return admin_error(414, "request target too long", status, body, body_len,
		                   content_type);
	snprintf(buf, sizeof(buf), "%s", target);
	query = strchr(buf, '?');
	if (query)
		*query++ = 0;
	if (strncmp(buf, "/metrics-api/", 13) == 0) {
		if (!get)
			return admin_error(405, "use GET", status, body, body_len, content_type);
		return admin_metrics_api(s, buf + 13, query, status, body, body_len, content_type);
	}
	if (strcmp(buf, "/peer/counts") == 0) {
		if (!get)
			return admin_error(405, "use GET", status, body, body_len, content_type);
		if (!s->peers || zw_peers_counts_json(s->peers, body, body_len) < 0)
			return -ENOMEM;
		*status = 200;
		*content_type = "application/json";
		return 1;
	}
	if (strcmp(buf, "/peer/cold") == 0) {
		char qa[REF_KEY_MAX], qb[REF_KEY_MAX];
		const char *key, *from;

		if (!post)
			return admin_error(405, "use POST", status, body, body_len, content_type);
		snprintf(qa, sizeof(qa), "%s", query ? query : "");
		snprintf(qb, sizeof(qb), "%s", query ? query : "");
		key = query_get(qa, "target");
		from = query_get(qb, "from");
		if (!key || !*key)
			return admin_error(400, "missing target=<key>", status, body, body_len,
			                   content_type);
		/* Only current targets: nothing is kept for other keys. */
		if (!zw_scaler_target_known(s, key)) {
			s->peer_cold_unknown_total++;
			return admin_error(404, "not a current target", status, body, body_len,
			                   content_type);
		}
		if (!(from && s->peers && strcmp(from, zw_peers_instance(s->peers)) == 0)) {
			s->peer_cold_received_total++;
			zw_scaler_wake(s, key);
		}
		*status = 204;
		*body = NULL;
		*body_len = 0;
		*content_type = "text/plain";
		return 1;
	}
	return admin_error(404, "unknown scaler path", status, body, body_len, content_type);
}

/* ---- Prometheus ---- */

struct prom_ctx {
	struct zw_scaler *s;
	FILE *f;
	int which;
};

static int prom_each(void *arg, const char *key, const struct zw_stats_snapshot *snap)
{
	struct prom_ctx *c = arg;
	int64_t peer = c->s->peers ? zw_peers_concurrency(c->s->peers, key) : 0;
	double conc = (double)snap->concurrency + (double)peer;
	char ns[256], target[1024];

	zw_metrics_key_labels(key, ns, sizeof(ns), target, sizeof(target));
	if (c->which == 0)
		fputs("zerowire_scaler_request_rate", c->f);
	else if (c->which == 1)
		fputs("zerowire_scaler_concurrency", c->f);
	else
		fputs("zerowire_scaler_active", c->f);
	fprintf(c->f, "{namespace=\"%s\",target=\"%s", ns, target);
	if (c->which == 0)
		fprintf(c->f, "\"} %.17g\n", snap->rate);
	else if (c->which == 1)
		fprintf(c->f, "\"} %.17g\n", conc);
	else
		fprintf(c->f, "\"} %d\n", snap->active || conc > 0);
	return 0;
}

int zw_scaler_prometheus(struct zw_scaler *s, char **buf, size_t *len)
{
	static const char *const heads[3] = {
	        "# HELP zerowire_scaler_request_rate Requests per second over the target's window, "
	        "all replicas.\n# TYPE zerowire_scaler_request_rate gauge\n",
	        "# HELP zerowire_scaler_concurrency Requests in flight (held included), all "
	        "replicas.\n# TYPE zerowire_scaler_concurrency gauge\n",
	        "# HELP zerowire_scaler_active Whether the target is active for KEDA.\n"
	        "# TYPE zerowire_scaler_active gauge\n",
	};
	static const char *const mnames[CALLS] = {"IsActive", "StreamIsActive", "GetMetricSpec",
	                                          "GetMetrics", "StreamMetricSpec"};
	struct prom_ctx c = {s, NULL, 0};
	struct zw_grpc_stats gs;
	struct zw_peers_stats ps;
	char *text = NULL;
	size_t tlen = 0;
	char *nb;

	c.f = open_memstream(&text, &tlen);
	if (!c.f)
		return -ENOMEM;
	for (c.which = 0; c.which < 3; c.which++) {
		fputs(heads[c.which], c.f);
		zw_stats_foreach(s->stats, uv_now(s->loop), prom_each, &c);
	}
	fputs("# HELP zerowire_scaler_grpc_requests_total gRPC calls by method.\n"
	      "# TYPE zerowire_scaler_grpc_requests_total counter\n",
	      c.f);
	for (int i = 0; i < CALLS; i++)
		fprintf(c.f, "zerowire_scaler_grpc_requests_total{method=\"%s\"} %llu\n", mnames[i],
		        (unsigned long long)s->calls_total[i]);
	memset(&gs, 0, sizeof(gs));
	if (s->grpc)
		zw_grpc_server_stats(s->grpc, &gs);
	memset(&ps, 0, sizeof(ps));
	if (s->peers)
		zw_peers_get_stats(s->peers, &ps);
	fprintf(c.f,
	        "# HELP zerowire_scaler_streams StreamIsActive streams open (KEDA watchers).\n"
	        "# TYPE zerowire_scaler_streams gauge\nzerowire_scaler_streams %zu\n"
	        "# HELP zerowire_scaler_stream_pushes_total Activity changes pushed on "
	        "StreamIsActive streams.\n"
	        "# TYPE zerowire_scaler_stream_pushes_total counter\n"
	        "zerowire_scaler_stream_pushes_total %llu\n"
	        "# HELP zerowire_scaler_spec_streams StreamMetricSpec streams open.\n"
	        "# TYPE zerowire_scaler_spec_streams gauge\nzerowire_scaler_spec_streams %zu\n"
	        "# HELP zerowire_scaler_spec_pushes_total Metric specs sent on StreamMetricSpec "
	        "streams (first answers and changes).\n"
	        "# TYPE zerowire_scaler_spec_pushes_total counter\n"
	        "zerowire_scaler_spec_pushes_total %llu\n"
	        "# HELP zerowire_scaler_wakes_total Wake-ups of idle targets sent to KEDA.\n"
	        "# TYPE zerowire_scaler_wakes_total counter\nzerowire_scaler_wakes_total %llu\n"
	        "# HELP zerowire_scaler_not_found_total Scaler calls naming an unknown "
	        "ScaledObject.\n"
	        "# TYPE zerowire_scaler_not_found_total counter\n"
	        "zerowire_scaler_not_found_total %llu\n"
	        "# HELP zerowire_scaler_grpc_connections Open gRPC (HTTP/2) connections.\n"
	        "# TYPE zerowire_scaler_grpc_connections gauge\n"
	        "zerowire_scaler_grpc_connections %llu\n"
	        "# HELP zerowire_scaler_grpc_unimplemented_total gRPC calls of unknown methods.\n"
	        "# TYPE zerowire_scaler_grpc_unimplemented_total counter\n"
	        "zerowire_scaler_grpc_unimplemented_total %llu\n"
	        "# HELP zerowire_scaler_grpc_malformed_total Malformed gRPC messages or HTTP/2 "
	        "streams.\n"
	        "# TYPE zerowire_scaler_grpc_malformed_total counter\n"
	        "zerowire_scaler_grpc_malformed_total %llu\n"
	        "# HELP zerowire_scaler_grpc_cancelled_total gRPC calls cancelled by the client.\n"
	        "# TYPE zerowire_scaler_grpc_cancelled_total counter\n"
	        "zerowire_scaler_grpc_cancelled_total %llu\n"
	        "# HELP zerowire_scaler_peers Proxy replicas known to this one (itself included).\n"
	        "# TYPE zerowire_scaler_peers gauge\nzerowire_scaler_peers %llu\n"
	        "# HELP zerowire_scaler_peers_live Proxy replicas that answered their last poll.\n"
	        "# TYPE zerowire_scaler_peers_live gauge\nzerowire_scaler_peers_live %llu\n"
	        "# HELP zerowire_scaler_peer_poll_failures_total Failed polls of peer replicas.\n"
	        "# TYPE zerowire_scaler_peer_poll_failures_total counter\n"
	        "zerowire_scaler_peer_poll_failures_total %llu\n"
	        "# HELP zerowire_scaler_peer_cold_sent_total Cold-start notices sent to peer "
	        "replicas.\n"
	        "# TYPE zerowire_scaler_peer_cold_sent_total counter\n"
	        "zerowire_scaler_peer_cold_sent_total %llu\n"
	        "# HELP zerowire_scaler_peer_cold_failures_total Cold-start notices that could not "
	        "be sent or were dropped.\n"
	        "# TYPE zerowire_scaler_peer_cold_failures_total counter\n"
	        "zerowire_scaler_peer_cold_failures_total %llu\n"
	        "# HELP zerowire_scaler_peer_cold_received_total Cold-start notices received from "
	        "peer replicas.\n"
	        "# TYPE zerowire_scaler_peer_cold_received_total counter\n"
	        "zerowire_scaler_peer_cold_received_total %llu\n"
	        "# HELP zerowire_scaler_peer_cold_unknown_total /peer/cold for a key that is "
	        "not a current target (404).\n"
	        "# TYPE zerowire_scaler_peer_cold_unknown_total counter\n"
	        "zerowire_scaler_peer_cold_unknown_total %llu\n"
	        "# HELP zerowire_scaler_peer_auth_failures_total /peer/ requests refused: "
	        "missing (401) or wrong (403) token.\n"
	        "# TYPE zerowire_scaler_peer_auth_failures_total counter\n"
	        "zerowire_scaler_peer_auth_failures_total{reason=\"missing\"} %llu\n"
	        "zerowire_scaler_peer_auth_failures_total{reason=\"wrong\"} %llu\n"
	        "# HELP zerowire_scaler_peer_auth_rejected_total Peer calls a peer refused "
	        "with 401/403 (tokens differ).\n"
	        "# TYPE zerowire_scaler_peer_auth_rejected_total counter\n"
	        "zerowire_scaler_peer_auth_rejected_total %llu\n"
	        "# HELP zerowire_scaler_wake_hints Targets kept active by a recent cold signal.\n"
	        "# TYPE zerowire_scaler_wake_hints gauge\nzerowire_scaler_wake_hints %zu\n",
	        s->n_watchers, (unsigned long long)s->pushes_total, s->n_spec_watchers,
	        (unsigned long long)s->spec_pushes_total, (unsigned long long)s->wakes_total,
	        (unsigned long long)s->not_found_total, (unsigned long long)gs.connections,
	        (unsigned long long)gs.unimplemented_total, (unsigned long long)gs.malformed_total,
	        (unsigned long long)gs.cancelled_total, (unsigned long long)ps.peers,
	        (unsigned long long)ps.live, (unsigned long long)ps.poll_failures_total,
	        (unsigned long long)(ps.cold_sent_total),
	        (unsigned long long)(ps.cold_failures_total + ps.cold_dropped_total),
	        (unsigned long long)s->peer_cold_received_total,
	        (unsigned long long)s->peer_cold_unknown_total,
	        (unsigned long long)s->peer_auth_missing_total,
	        (unsigned long long)s->peer_auth_wrong_total,
	        (unsigned long long)ps.auth_rejected_total, s->n_hints);
	if (fclose(c.f) != 0 || !text) {
		free(text);
		return -ENOMEM;
	}
	nb = realloc(*buf, *len + tlen + 1);
	if (!nb) {
		free(text);
		return -ENOMEM;
	}
	memcpy(nb + *len, text, tlen + 1);
	*buf = nb;
	*len += tlen;
	free(text);
	return 0;
}
