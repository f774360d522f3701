/* Access log and OTLP span export (see observe.h). */
#include "observe.h"

#include "proxy/otlp_trace.pb-c.h"

#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define WRITER_POLL_MS   50
#define EXPORTER_POLL_MS 200
#define EXPORT_TIMEOUT_S 5
#define MAX_ATTRS        10

/* Single-producer single-consumer byte ring: head and tail only grow. */
struct bring {
	char *buf;
	size_t cap;
	_Atomic size_t head, tail;
};

/* A finished request as the exporter needs it. */
struct span_rec {
	struct zw_trace_ctx tc;
	char method[16];
	char path[ZW_ACCESS_PATH_MAX + 4];
	char target[256];
	char upstream[64];
	int status, cold;
	uint64_t start_ns, end_ns, held_ms, held_start_ns, upstream_ms;
};

/* Single-producer single-consumer ring of records. */
struct rring {
	struct span_rec *recs;
	size_t cap;
	_Atomic size_t head, tail;
};

struct zw_observe {
	struct zw_observe_config cfg;
	struct bring *lines; /* one per worker, NULL when the log is off */
	struct rring *spans; /* one per worker, NULL when tracing is off */
	pthread_mutex_t mu;  /* the threads' sleep */
	pthread_cond_t cv;
	int stop;
	pthread_t writer, exporter;
	int writer_on, exporter_on;
	uint64_t rng; /* exporter thread only */
	_Atomic uint64_t lines_written, lines_dropped;
	_Atomic uint64_t spans_exported, spans_dropped, export_failures;
};

int zw_observe_parse_format(const char *s, enum zw_access_format *out)
{
	static const char *const names[] = {"off", "logfmt", "json"};
	for (int i = 0; i < 3; i++)
		if (s && strcmp(s, names[i]) == 0) {
			*out = (enum zw_access_format)i;
			return 0;
		}
	return -1;
}

int zw_observe_parse_ratio(const char *s, double *out)
{
	char *end = NULL;
	if (!s || !*s)
		return -1;
	errno = 0;
	double v = strtod(s, &end);
	if (errno || *end || !(v >= 0 && v <= 1))
		return -1;
	*out = v;
	return 0;
}

/* ---- rings --------------------------------------------------------------- */

static int bring_push(struct bring *r, const char *data, size_t len)
{
	size_t h = atomic_load_explicit(&r->head, memory_order_relaxed);
	size_t t = atomic_load_explicit(&r->tail, memory_order_acquire);
	if (len > r->cap - (h - t))
		return -1;
	size_t at = h % r->cap, first = r->cap - at < len ? r->cap - at : len;
	memcpy(r->buf + at, data, first);
	memcpy(r->buf, data + first, len - first);
	atomic_store_explicit(&r->head, h + len, memory_order_release);
	return 0;
}

/* Writes all of buf to fd; returns 0 or -1. */
static int write_all(int fd, const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, buf, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Writes what r holds to fd (consumer side). */
static void bring_drain(struct zw_observe *o, struct bring *r)
{
	size_t t = atomic_load_explicit(&r->tail, memory_order_relaxed);
	size_t h = atomic_load_explicit(&r->head, memory_order_acquire);
	size_t len = h - t, at = t % r->cap;
	if (len == 0)
		return;
	size_t first = r->cap - at < len ? r->cap - at : len;
	size_t lines = 0;
	for (size_t i = 0; i < first; i++)
		lines += r->buf[at + i] == '\n';
	for (size_t i = 0; i < len - first; i++)
		lines += r->buf[i] == '\n';
	if (write_all(o->cfg.access_fd, r->buf + at, first) == 0 &&
	    write_all(o->cfg.access_fd, r->buf, len - first) == 0)
		atomic_fetch_add(&o->lines_written, lines);
	else
		atomic_fetch_add(&o->lines_dropped, lines);
	atomic_store_explicit(&r->tail, h, memory_order_release);
}

static int rring_push(struct rring *r, const struct span_rec *rec)
{
	size_t h = atomic_load_explicit(&r->head, memory_order_relaxed);
	size_t t = atomic_load_explicit(&r->tail, memory_order_acquire);
	if (h - t >= r->cap)
		return -1;
	r->recs[h % r->cap] = *rec;
	atomic_store_explicit(&r->head, h + 1, memory_order_release);
	return 0;
}

/* ---- formatting ---------------------------------------------------------- */

/* Appends s[0..n) JSON-escaped (no quotes) at buf[*at..cap-1), cutting
 * whole escapes only. Bytes outside printable ASCII become \u00XX. */
static void esc(char *buf, size_t cap, size_t *at, const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		char tmp[8];
		size_t l;
		if (c == '"' || c == '\\') {
			tmp[0] = '\\';
			tmp[1] = (char)c;
			l = 2;
		} else if (c < 0x20 || c >= 0x7f) {
			l = (size_t)snprintf(tmp, sizeof(tmp), "\\u%04x", c);
		} else {
			tmp[0] = (char)c;
			l = 1;
		}
		if (*at + l >= cap)
			return;
		memcpy(buf + *at, tmp, l);
		*at += l;
	}
}

/* Appends printf text at buf[*at..cap-1). */
static void addf(char *buf, size_t cap, size_t *at, const char *fmt, ...)
        __attribute__((format(printf, 4, 5)));
static void addf(char *buf, size_t cap, size_t *at, const char *fmt, ...)
{
	va_list ap;
	if (*at + 1 >= cap)
		return;
	va_start(ap, fmt);
	int n = vsnprintf(buf + *at, cap - *at, fmt, ap);
	va_end(ap);
	if (n > 0)
		*at += (size_t)n < cap - *at ? (size_t)n : cap - *at - 1;
}

size_t zw_observe_format_line(enum zw_access_format fmt, const struct zw_obs_request *r, char *buf,
                              size_t cap)
{
	int json = fmt == ZW_ACCESS_JSON;
	size_t at = 0, plen = r->path_len > ZW_ACCESS_PATH_MAX ? ZW_ACCESS_PATH_MAX : r->path_len;
	char ts[40], tid[33] = "";
	time_t sec = (time_t)(r->start_ns / 1000000000ull);
	struct tm tm;
	gmtime_r(&sec, &tm);
	size_t tl = strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(ts + tl, sizeof(ts) - tl, ".%03uZ",
	         (unsigned)(r->start_ns / 1000000ull % 1000ull));
	if (r->trace)
		zw_trace_hex(r->trace->trace_id, 16, tid);
	double total = r->end_ns > r->start_ns ? (double)(r->end_ns - r->start_ns) / 1e6 : 0;
	/* held and upstream times come from the loop's millisecond clock, the
	 * duration from the monotonic nanosecond one: a part never shows longer
	 * than the whole (they can differ by a loop tick). */
	unsigned long long held = r->held_ms, up_ms = r->upstream_ms;
	if ((double)held > total)
		held = (unsigned long long)total;
	if ((double)up_ms > total)
		up_ms = (unsigned long long)total;
	/* Field separators: JSON members or logfmt pairs. */
	const char *kv = json ? "\":" : "=";
	const char *sep = json ? ",\"" : " ";
	addf(buf, cap, &at, json ? "{\"ts\":\"%s\",\"target\":\"" : "ts=%s target=\"", ts);
	esc(buf, cap, &at, r->target ? r->target : "", r->target ? strlen(r->target) : 0);
	addf(buf, cap, &at, "\"%smethod%s\"", sep, kv);
	esc(buf, cap, &at, r->method, strlen(r->method));
	addf(buf, cap, &at, "\"%spath%s\"", sep, kv);
	esc(buf, cap, &at, r->path ? r->path : "", r->path ? plen : 0);
	addf(buf, cap, &at, "%s\"", plen < r->path_len ? "..." : "");
	addf(buf, cap, &at,
	     "%sstatus%s%d%sbytes_in%s%llu%sbytes_out%s%llu%sduration_ms%s%.3f%supstream_ms%s%llu"
	     "%sheld_ms%s%llu%supstream%s%s%s%s%scold_start%s%s%strace_id%s%s%s%s",
	     sep, kv, r->status, sep, kv, (unsigned long long)r->bytes_in, sep, kv,
	     (unsigned long long)r->bytes_out, sep, kv, total, sep, kv, up_ms, sep, kv, held, sep,
	     kv, json ? "\"" : "", r->upstream && *r->upstream ? r->upstream : (json ? "" : "-"),
	     json ? "\"" : "", sep, kv, r->cold ? "true" : "false", sep, kv, json ? "\"" : "",
	     tid[0] || json ? tid : "-", json ? "\"" : "");
	/* Room for the closing brace and the newline is always kept. */
	if (at > cap - 3)
		at = cap - 3;
	if (json)
		buf[at++] = '}';
	buf[at++] = '\n';
	buf[at] = '\0';
	return at;
}

/* ---- export -------------------------------------------------------------- */

/* One batch's protobuf objects, allocated together. */
struct batch {
	Zwotlp__Span *spans;
	Zwotlp__Span **span_ptrs;
	Zwotlp__KeyValue *kvs;
	Zwotlp__KeyValue **kv_ptrs;
	Zwotlp__AnyValue *vals;
	Zwotlp__Status *sts;
	uint8_t (*ids)[8];
	size_t n_spans, n_kv;
};

static Zwotlp__KeyValue **attr_begin(struct batch *b)
{
	return &b->kv_ptrs[b->n_kv];
}

static Zwotlp__AnyValue *attr(struct batch *b, const char *key)
{
	Zwotlp__KeyValue *kv = &b->kvs[b->n_kv];
	Zwotlp__AnyValue *v = &b->vals[b->n_kv];
	zwotlp__key_value__init(kv);
	zwotlp__any_value__init(v);
	kv->key = (char *)key;
	kv->value = v;
	b->kv_ptrs[b->n_kv++] = kv;
	return v;
}

static void attr_str(struct batch *b, const char *key, const char *s)
{
	Zwotlp__AnyValue *v = attr(b, key);
	v->value_case = ZWOTLP__ANY_VALUE__VALUE_STRING_VALUE;
	v->string_value = (char *)s;
}

static void attr_int(struct batch *b, const char *key, int64_t i)
{
	Zwotlp__AnyValue *v = attr(b, key);
	v->value_case = ZWOTLP__ANY_VALUE__VALUE_INT_VALUE;
	v->int_value = i;
}

static void attr_bool(struct batch *b, const char *key, int yes)
{
	Zwotlp__AnyValue *v = attr(b, key);
	v->value_case = ZWOTLP__ANY_VALUE__VALUE_BOOL_VALUE;
	v->bool_value = yes != 0;
}

static Zwotlp__Span *span_new(struct batch *b, const struct span_rec *r, const char *name)
{
	Zwotlp__Span *s = &b->spans[b->n_spans];
	zwotlp__span__init(s);
	b->span_ptrs[b->n_spans++] = s;
	s->trace_id.data = (uint8_t *)r->tc.trace_id;
	s->trace_id.len = 16;
	s->name = (char *)name;
	s->flags = 0x100 | (r->tc.has_parent ? 0x200 : 0); /* has-is-remote, is-remote */
	return s;
}

/* Adds the spans of one record: the request (SERVER) and, when it was held,
 * the hold (INTERNAL, child of the request). */
static void add_record(struct zw_observe *o, struct batch *b, const struct span_rec *r, char *name)
{
	Zwotlp__Span *s = span_new(b, r, name);
	snprintf(name, 300, "%s %s", r->method, r->target[0] ? r->target : "unrouted");
	s->span_id.data = (uint8_t *)r->tc.span_id;
	s->span_id.len = 8;
	if (r->tc.has_parent) {
		s->parent_span_id.data = (uint8_t *)r->tc.parent_id;
		s->parent_span_id.len = 8;
	}
	if (r->tc.tracestate[0])
		s->trace_state = (char *)r->tc.tracestate;
	s->kind = ZWOTLP__SPAN__SPAN_KIND__SPAN_KIND_SERVER;
	s->start_time_unix_nano = r->start_ns;
	s->end_time_unix_nano = r->end_ns;
	s->attributes = attr_begin(b);
	attr_str(b, "http.request.method", r->method);
	attr_str(b, "url.path", r->path);
	attr_int(b, "http.response.status_code", r->status);
	attr_str(b, "zerowire.target", r->target);
	attr_bool(b, "zerowire.cold_start", r->cold);
	attr_int(b, "zerowire.held_ms", (int64_t)r->held_ms);
	attr_int(b, "zerowire.upstream_ms", (int64_t)r->upstream_ms);
	if (r->upstream[0])
		attr_str(b, "server.address", r->upstream);
	s->n_attributes = (size_t)(&b->kv_ptrs[b->n_kv] - s->attributes);
	if (r->status >= 500) {
		Zwotlp__Status *st = &b->sts[b->n_spans - 1];
		zwotlp__status__init(st);
		st->code = ZWOTLP__STATUS__STATUS_CODE__STATUS_CODE_ERROR;
		s->status = st;
	}
	if (!r->held_ms)
		return;
	Zwotlp__Span *h = span_new(b, r, "cold-start hold");
	uint8_t *id = b->ids[b->n_spans - 1];
	zw_trace_random(&o->rng, id, 8);
	h->span_id.data = id;
	h->span_id.len = 8;
	h->parent_span_id.data = (uint8_t *)r->tc.span_id;
	h->parent_span_id.len = 8;
	h->flags = 0x100;
	h->kind = ZWOTLP__SPAN__SPAN_KIND__SPAN_KIND_INTERNAL;
	h->start_time_unix_nano = r->held_start_ns;
	h->end_time_unix_nano = r->held_start_ns + r->held_ms * 1000000ull;
	h->attributes = attr_begin(b);
	attr_str(b, "zerowire.target", r->target);
	attr_int(b, "zerowire.held_ms", (int64_t)r->held_ms);
	h->n_attributes = 2;
}

/* POSTs the n records of recs as one OTLP request; counts the outcome. */
static void export_batch(struct zw_observe *o, CURL *curl, const struct span_rec *recs, size_t n)
{
	struct batch b = {0};
	char(*names)[300] = calloc(n ? n : 1, sizeof(*names));
	size_t max_spans = 2 * n, max_kv = max_spans * MAX_ATTRS;
	uint8_t *wire = NULL;
	int ok = 0;
	b.spans = calloc(max_spans, sizeof(*b.spans));
	b.span_ptrs = calloc(max_spans, sizeof(*b.span_ptrs));
	b.kvs = calloc(max_kv, sizeof(*b.kvs));
	b.kv_ptrs = calloc(max_kv, sizeof(*b.kv_ptrs));
	b.vals = calloc(max_kv, sizeof(*b.vals));
	b.sts = calloc(max_spans, sizeof(*b.sts));
	b.ids = calloc(max_spans, sizeof(*b.ids));
	if (!names || !b.spans || !b.span_ptrs || !b.kvs || !b.kv_ptrs || !b.vals || !b.sts ||
	    !b.ids)
		goto out;
	for (size_t i = 0; i < n; i++)
		add_record(o, &b, &recs[i], names[i]);

	Zwotlp__KeyValue svc = ZWOTLP__KEY_VALUE__INIT, *svcp = &svc;
	Zwotlp__AnyValue svcv = ZWOTLP__ANY_VALUE__INIT;
	svc.key = "service.name";
	svc.value = &svcv;
	svcv.value_case = ZWOTLP__ANY_VALUE__VALUE_STRING_VALUE;
	svcv.string_value = (char *)(o->cfg.service_name ? o->cfg.service_name : "zerowire-proxy");
	Zwotlp__Resource res = ZWOTLP__RESOURCE__INIT;
	res.n_attributes = 1;
	res.attributes = &svcp;
	Zwotlp__InstrumentationScope scope = ZWOTLP__INSTRUMENTATION_SCOPE__INIT;
	scope.name = "zerowire-proxy";
	scope.version = ZW_VERSION;
	Zwotlp__ScopeSpans ss = ZWOTLP__SCOPE_SPANS__INIT, *ssp = &ss;
	ss.scope = &scope;
	ss.n_spans = b.n_spans;
	ss.spans = b.span_ptrs;
	Zwotlp__ResourceSpans rs = ZWOTLP__RESOURCE_SPANS__INIT, *rsp = &rs;
	rs.resource = &res;
	rs.n_scope_spans = 1;
	rs.scope_spans = &ssp;
	Zwotlp__ExportTraceServiceRequest req = ZWOTLP__EXPORT_TRACE_SERVICE_REQUEST__INIT;
	req.n_resource_spans = 1;
	req.resource_spans = &rsp;
	size_t len = zwotlp__export_trace_service_request__get_packed_size(&req);
	wire = malloc(len ? len : 1);
	if (!wire)
		goto out;
	zwotlp__export_trace_service_request__pack(&req, wire);

	struct curl_slist *hdrs = curl_slist_append(NULL, "Content-Type: application/x-protobuf");
	long code = 0;
	curl_easy_setopt(curl, CURLOPT_URL, o->cfg.otlp_endpoint);
	curl_easy_setopt(curl, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(curl, CURLOPT_POSTFIELDS, (const char *)wire);
	curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
	curl_easy_setopt(curl, CURLOPT_TIMEOUT, (long)EXPORT_TIMEOUT_S);
	curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
	if (curl_easy_perform(curl) == CURLE_OK &&
	    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &code) == CURLE_OK && code >= 200 &&
	    code < 300)
		ok = 1;
	curl_slist_free_all(hdrs);
out:
	if (ok) {
		atomic_fetch_add(&o->spans_exported, b.n_spans);
	} else {
		atomic_fetch_add(&o->export_failures, 1);
		atomic_fetch_add(&o->spans_dropped, n);
	}
	free(wire);
	free(names);
	free(b.spans);
	free(b.span_ptrs);
	free(b.kvs);
	free(b.kv_ptrs);
	free(b.vals);
	free(b.sts);
	free(b.ids);
}

/* Sleeps up to ms or until stop. Returns the stop flag. */
static int nap(struct zw_observe *o, unsigned ms)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_nsec += (long)(ms % 1000) * 1000000L;
	ts.tv_sec += ms / 1000 + ts.tv_nsec / 1000000000L;
	ts.tv_nsec %= 1000000000L;
	pthread_mutex_lock(&o->mu);
	if (!o->stop)
		pthread_cond_timedwait(&o->cv, &o->mu, &ts);
	int stop = o->stop;
	pthread_mutex_unlock(&o->mu);
	return stop;
}

static void *exporter_main(void *arg)
{
	struct zw_observe *o = arg;
	size_t cap = o->cfg.batch_size;
	struct span_rec *batch = malloc(cap * sizeof(*batch));
	CURL *curl = curl_easy_init();
	int stop = 0;
	while (batch && curl) {
		stop = nap(o, EXPORTER_POLL_MS);
		size_t n = 0;
		for (int w = 0; w < o->cfg.workers; w++) {
			struct rring *r = &o->spans[w];
			size_t t = atomic_load_explicit(&r->tail, memory_order_relaxed);
			size_t h = atomic_load_explicit(&r->head, memory_order_acquire);
			for (; t < h; t++) {
				batch[n++] = r->recs[t % r->cap];
				if (n == cap) {
					atomic_store_explicit(&r->tail, t + 1,
					                      memory_order_release);
					export_batch(o, curl, batch, n);
					n = 0;
				}
			}
			atomic_store_explicit(&r->tail, h, memory_order_release);
		}
		if (n)
			export_batch(o, curl, batch, n);
		if (stop)
			break;
	}
	curl_easy_cleanup(curl);
	free(batch);
	return NULL;
}

static void *writer_main(void *arg)
{
	struct zw_observe *o = arg;
	int stop = 0;
	while (!stop) {
		stop = nap(o, WRITER_POLL_MS);
		for (int w = 0; w < o->cfg.workers; w++)
			bring_drain(o, &o->lines[w]);
	}
	return NULL;
}

/* ---- life cycle ---------------------------------------------------------- */

int zw_observe_new(const struct zw_observe_config *cfg, struct zw_observe **out)
{
	if (cfg->workers < 1 || !(cfg->sampler >= 0 && cfg->sampler <= 1))
		return -EINVAL;
	struct zw_observe *o = calloc(1, sizeof(*o));
	if (!o)
		return -ENOMEM;
	o->cfg = *cfg;
	if (!o->cfg.access_ring_bytes)
		o->cfg.access_ring_bytes = 256 * 1024;
	if (!o->cfg.batch_size)
		o->cfg.batch_size = 512;
	if (!o->cfg.queue_limit)
		o->cfg.queue_limit = 4096;
	o->rng = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32) ^ 0x5deece66dull;
	pthread_mutex_init(&o->mu, NULL);
	pthread_cond_init(&o->cv, NULL);
	int rc = 0;
	size_t n = (size_t)cfg->workers;
	if (cfg->access != ZW_ACCESS_OFF) {
		o->lines = calloc(n, sizeof(*o->lines));
		for (size_t i = 0; o->lines && i < n && rc == 0; i++) {
			o->lines[i].cap = o->cfg.access_ring_bytes;
			o->lines[i].buf = malloc(o->lines[i].cap);
			rc = o->lines[i].buf ? 0 : -ENOMEM;
		}
		if (!o->lines)
			rc = -ENOMEM;
		if (rc == 0)
			rc = -pthread_create(&o->writer, NULL, writer_main, o);
		o->writer_on = rc == 0;
	}
	if (rc == 0 && cfg->otlp_endpoint && *cfg->otlp_endpoint) {
		size_t per = (o->cfg.queue_limit + n - 1) / n;
		o->spans = calloc(n, sizeof(*o->spans));
		for (size_t i = 0; o->spans && i < n && rc == 0; i++) {
			o->spans[i].cap = per;
			o->spans[i].recs = calloc(per, sizeof(struct span_rec));
			rc = o->spans[i].recs ? 0 : -ENOMEM;
		}
		if (!o->spans)
			rc = -ENOMEM;
		if (rc == 0)
			rc = -pthread_create(&o->exporter, NULL, exporter_main, o);
		o->exporter_on = rc == 0;
	}
	if (rc < 0) {
		zw_observe_free(o);
		return rc;
	}
	*out = o;
	return 0;
}

void zw_observe_free(struct zw_observe *o)
{
	if (!o)
		return;
	pthread_mutex_lock(&o->mu);
	o->stop = 1;
	pthread_cond_broadcast(&o->cv);
	pthread_mutex_unlock(&o->mu);
	if (o->writer_on)
		pthread_join(o->writer, NULL);
	if (o->exporter_on)
		pthread_join(o->exporter, NULL);
	for (int i = 0; o->lines && i < o->cfg.workers; i++)
		free(o->lines[i].buf);
	for (int i = 0; o->spans && i < o->cfg.workers; i++)
		free(o->spans[i].recs);
	free(o->lines);
	free(o->spans);
	pthread_cond_destroy(&o->cv);
	pthread_mutex_destroy(&o->mu);
	free(o);
}

int zw_observe_tracing(const struct zw_observe *o)
{
	return o && o->spans;
}

int zw_observe_active(const struct zw_observe *o)
{
	return o && (o->lines || o->spans);
}

double zw_observe_ratio(const struct zw_observe *o)
{
	return o ? o->cfg.sampler : 0;
}

/* Copies s (NUL-terminated or n bytes) into dst[0..cap), cut to fit. */
static void copy_cut(char *dst, size_t cap, const char *s, size_t n)
{
	if (n >= cap)
		n = cap - 1;
	memcpy(dst, s, n);
	dst[n] = '\0';
}

void zw_observe_request(struct zw_observe *o, int worker, const struct zw_obs_request *r)
{
	if (!o || worker < 0 || worker >= o->cfg.workers)
		return;
	if (o->lines) {
		char line[2048];
		size_t len = zw_observe_format_line(o->cfg.access, r, line, sizeof(line));
		if (bring_push(&o->lines[worker], line, len) < 0)
			atomic_fetch_add_explicit(&o->lines_dropped, 1, memory_order_relaxed);
	}
	if (o->spans && r->trace && r->trace->sampled) {
		struct span_rec rec;
		memset(&rec, 0, sizeof(rec));
		rec.tc = *r->trace;
		copy_cut(rec.method, sizeof(rec.method), r->method, strlen(r->method));
		copy_cut(rec.path, sizeof(rec.path), r->path ? r->path : "",
		         r->path ? (r->path_len > ZW_ACCESS_PATH_MAX ? ZW_ACCESS_PATH_MAX
		                                                     : r->path_len)
		                 : 0);
		copy_cut(rec.target, sizeof(rec.target), r->target ? r->target : "",
		         r->target ? strlen(r->target) : 0);
		copy_cut(rec.upstream, sizeof(rec.upstream), r->upstream ? r->upstream : "",
		         r->upstream ? strlen(r->upstream) : 0);
		rec.status = r->status;
		rec.cold = r->cold;
		rec.start_ns = r->start_ns;
		rec.end_ns = r->end_ns;
		rec.held_ms = r->held_ms;
		rec.held_start_ns = r->held_start_ns;
		rec.upstream_ms = r->upstream_ms;
		if (rring_push(&o->spans[worker], &rec) < 0)
			atomic_fetch_add_explicit(&o->spans_dropped, 1, memory_order_relaxed);
	}
}

int zw_observe_render(struct zw_observe *o, struct zw_obuf *out)
{
	static const struct {
		const char *name, *help;
		size_t off;
	} cs[] = {
	        {"zerowire_access_log_lines_total", "Access-log lines written.",
	         offsetof(struct zw_observe, lines_written)},
	        {"zerowire_access_log_dropped_total",
	         "Access-log lines dropped (buffer full or write failed).",
	         offsetof(struct zw_observe, lines_dropped)},
	        {"zerowire_spans_exported_total", "Trace spans accepted by the OTLP endpoint.",
	         offsetof(struct zw_observe, spans_exported)},
	        {"zerowire_spans_dropped_total",
	         "Finished requests whose spans were dropped (queue full or export failed).",
	         offsetof(struct zw_observe, spans_dropped)},
	        {"zerowire_span_export_failures_total", "Failed OTLP export requests.",
	         offsetof(struct zw_observe, export_failures)},
	};
	for (size_t i = 0; i < sizeof(cs) / sizeof(cs[0]); i++) {
		uint64_t v = o ? atomic_load((_Atomic uint64_t *)((char *)o + cs[i].off)) : 0;
		if (zw_obuf_addf(out, "# HELP %s %s\n# TYPE %s counter\n%s %llu\n", cs[i].name,
		                 cs[i].help, cs[i].name, cs[i].name, (unsigned long long)v) < 0)
			return -1;
	}
	return 0;
}
