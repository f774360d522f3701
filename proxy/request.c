/* zerowire-proxy: one request's routing, admission and accounting, whatever
 * its client side (see datapath.h): the worker's view of the routing
 * table, the route lookup and what it decides (health answers, static
 * routes, the warm path, the cold-start hold), the glue to hold.c's queues
 * (waiting, release passes, readiness timeout) and the metrics, stats and
 * access-log record of the outcome. */
#include "datapath.h"

#include "log.h"

#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define HOLD_CHECK_MS 200

/* ---- worker tables ----------------------------------------------------- */

void zw_wtable_unref(struct zw_wtable *wt)
{
	if (!wt || --wt->refs > 0)
		return;
	for (size_t i = 0; i < wt->n; i++) {
		if (wt->se[i])
			zw_stats_release(wt->w->s->d.stats, wt->se[i]);
		zw_endpoint_set_unref(wt->sets[i]);
	}
	free(wt->se);
	free(wt->sets);
	free(wt->set_ver);
	zw_route_table_unref(wt->table);
	free(wt);
}

/* Makes sure the worker's table view matches the current table. Returns
 * the view (borrowed) or NULL when out of memory. */
static struct zw_wtable *worker_table(struct zw_worker *w)
{
	if (!zw_route_current_refresh(w->s->d.routes, &w->cached_table, &w->table_seen) && w->wt)
		return w->wt;
	struct zw_wtable *wt = calloc(1, sizeof(*wt));
	if (!wt)
		return w->wt;
	size_t n = zw_route_table_count(w->cached_table);
	wt->se = calloc(n ? n : 1, sizeof(*wt->se));
	wt->sets = calloc(n ? n : 1, sizeof(*wt->sets));
	wt->set_ver = calloc(n ? n : 1, sizeof(*wt->set_ver));
	if (!wt->se || !wt->sets || !wt->set_ver) {
		free(wt->se);
		free(wt->sets);
		free(wt->set_ver);
		free(wt);
		return w->wt;
	}
	wt->refs = 1;
	wt->w = w;
	wt->n = n;
	wt->table = zw_route_table_ref(w->cached_table);
	/* Keep the counters of targets that are still there: releasing the
	 * old view's last reference would drop an entry (and its request
	 * counter and rate window) just because some other target changed. */
	struct zw_wtable *old = w->wt;
	for (size_t i = 0; old && i < old->n; i++) {
		size_t j;
		if (!old->se[i] ||
		    zw_route_table_find(wt->table, zw_route_table_key(old->table, i), &j) != 0)
			continue;
		const struct zw_target *t = zw_route_table_target(wt->table, j);
		if (zw_stats_acquire(w->s->d.stats, zw_route_table_key(wt->table, j), t->window_ms,
		                     t->granularity_ms, &wt->se[j]) < 0)
			wt->se[j] = NULL;
	}
	zw_wtable_unref(old);
	w->wt = wt;
	return wt;
}

static struct zw_stats_entry *wtable_stats(struct zw_wtable *wt, size_t i)
{
	if (!wt->se[i]) {
		const struct zw_target *t = zw_route_table_target(wt->table, i);
		const char *key = zw_route_table_key(wt->table, i);
		if (zw_stats_acquire(wt->w->s->d.stats, key, t->window_ms, t->granularity_ms,
		                     &wt->se[i]) < 0)
			wt->se[i] = NULL;
	}
	return wt->se[i];
}

struct zw_endpoint_set *zw_request_endpoints(struct zw_request *r, const struct zw_service_ref *svc)
{
	struct zw_server *s = r->w->s;
	struct zw_endpoint_set *set = NULL;
	if (svc == &r->target->service) {
		struct zw_wtable *wt = r->wt;
		uint64_t v = zw_endpoints_version(s->d.eps);
		if (wt->sets[r->tidx] && wt->set_ver[r->tidx] == v)
			return zw_endpoint_set_ref(wt->sets[r->tidx]);
		if (zw_endpoints_get(s->d.eps, svc->namespace, svc->name, svc->port, svc->port_name,
		                     &set) < 0)
			return NULL;
		zw_endpoint_set_unref(wt->sets[r->tidx]);
		wt->sets[r->tidx] = zw_endpoint_set_ref(set);
		wt->set_ver[r->tidx] = v;
		return set;
	}
	if (zw_endpoints_get(s->d.eps, svc->namespace, svc->name, svc->port, svc->port_name, &set) <
	    0)
		return NULL;
	return set;
}

struct zw_allowance zw_request_allowance(const struct zw_request *r, int pacing)
{
	return zw_hold_allowance(r->target, &r->w->s->hold_defaults, pacing);
}

uint64_t zw_request_until_deadline(const struct zw_request *r, uint64_t ms)
{
	if (!r->deadline)
		return ms;
	uint64_t now = uv_now(&r->w->loop);
	uint64_t left = r->deadline > now ? r->deadline - now : 0;
	return left < ms ? left : ms;
}

int zw_request_past_deadline(const struct zw_request *r)
{
	return r->deadline && uv_now(&r->w->loop) >= r->deadline;
}

/* ---- accounting --------------------------------------------------------- */

void zw_request_unhold(struct zw_request *r)
{
	struct zw_worker *w = r->w;
	if (r->hitem.state != ZW_HOLD_IDLE && zw_hold_cancel(&w->s->hold, &r->hitem))
		zw_dp_schedule_release(w);
	if (r->held_slot) {
		uint64_t waited = uv_now(&w->loop) - r->held_since;
		r->held_slot = 0;
		w->n_waiting--;
		if (r->se)
			zw_stats_held(r->se, -1);
		r->held_ms += waited;
		zw_metrics_wait(&w->metrics, r->key, (double)waited / 1000.0);
	}
}

void zw_request_cleanup(struct zw_request *r)
{
	zw_request_unhold(r);
	if (r->counted && r->se)
		zw_stats_end(r->se);
	r->counted = 0;
	if (r->ep) {
		zw_endpoint_done(r->ep);
		zw_dp_schedule_release(r->w);
	}
	r->ep = NULL;
	zw_endpoint_set_unref(r->set);
	r->set = NULL;
	zw_fwd_drop(r);
	zw_wtable_unref(r->wt);
	r->wt = NULL;
	zw_buf_free(&r->trailers.buf);
	r->n_trailers = 0;
	r->target = NULL;
	r->key = NULL;
	r->se = NULL;
}

void zw_request_record(struct zw_request *r, int status)
{
	struct zw_worker *w = r->w;
	struct zw_metrics_sample ms = {
	        .key = r->key ? r->key : "",
	        .code = status,
	        .method = zw_metrics_method(r->method),
	        .cold = r->cold,
	        .seconds = (double)(uv_now(&w->loop) - r->start_ms) / 1000.0,
	};
	zw_metrics_request(&w->metrics, &ms);
	struct zw_observe *obs = w->s->d.obs;
	if (!zw_observe_active(obs))
		return; /* nothing below would be kept */
	struct timespec now;
	char up[INET6_ADDRSTRLEN + 8] = "";
	uint64_t loop_now = uv_now(&w->loop);
	clock_gettime(CLOCK_REALTIME, &now);
	uint64_t end_ns = (uint64_t)now.tv_sec * 1000000000ull + (uint64_t)now.tv_nsec;
	if (r->ep && r->up_start)
		snprintf(up, sizeof(up), "%s:%u", r->ep->ip, r->ep->port);
	const struct zw_http_head *h = r->head;
	struct zw_obs_request o = {
	        .target = ms.key,
	        .method = llhttp_method_name(r->method),
	        .path = h && h->buf ? h->buf + h->url_off : "",
	        .path_len = h && h->buf ? h->url_len : 0,
	        .status = status,
	        .bytes_in = (h ? h->raw_bytes : 0) + r->body_sent,
	        .bytes_out = r->bytes_out,
	        .start_ns = r->start_ns ? r->start_ns : end_ns,
	        .end_ns = end_ns,
	        .upstream_ms = r->up_start ? loop_now - r->up_start : 0,
	        .held_ms = r->held_ms,
	        .held_start_ns = r->start_ns + (r->held_first - r->start_ms) * 1000000ull,
	        .upstream = up,
	        .cold = r->cold,
	        .trace = r->traced ? &r->trace : NULL,
	};
	zw_observe_request(obs, w->id, &o);
}

void zw_request_observe_begin(struct zw_request *r, const char *tp, size_t tp_len, const char *ts,
                              size_t ts_len)
{
	struct zw_observe *obs = r->w->s->d.obs;
	struct timespec now;
	if (!zw_observe_active(obs))
		return; /* no access log, no spans: no context or start time to keep */
	clock_gettime(CLOCK_REALTIME, &now);
	r->start_ns = (uint64_t)now.tv_sec * 1000000000ull + (uint64_t)now.tv_nsec;
	zw_trace_begin(&r->trace, tp, tp_len, ts, ts_len, zw_observe_ratio(obs), &r->w->rng);
	r->traced = zw_observe_tracing(obs) || r->trace.has_parent;
}

/* ---- cold start --------------------------------------------------------- */

static void placeholder_response(struct zw_request *r)
{
	r->ops->respond_static(r, &r->target->placeholder, 503, 1);
}

static void on_timer_readiness(uv_timer_t *t)
{
	struct zw_request *r = t->data;
	if (r->state != ZW_REQ_HELD)
		return;
	const struct zw_target *tg = r->target;
	int past = zw_request_past_deadline(r);
	zw_request_unhold(r);
	zw_metrics_event(&r->w->metrics, r->key, ZW_EV_READINESS_TIMEOUT);
	if (past) {
		r->ops->respond(r, 504, NULL,
		                "request timeout while waiting for a ready endpoint\n", 0);
		return;
	}
	zw_log(ZW_LOG_INFO, "readiness_timeout", "target=%s", r->key);
	switch (zw_hold_timeout_action(tg, 0)) {
	case ZW_TIMEOUT_FALLBACK:
		r->svc = &tg->fallback;
		zw_fwd_start(r);
		return;
	case ZW_TIMEOUT_PLACEHOLDER:
		placeholder_response(r);
		return;
	case ZW_TIMEOUT_GATEWAY:
	default:
		break;
	}
	char body[512];
	snprintf(body, sizeof(body), "timed out waiting for a ready endpoint of %s\n", r->key);
	r->ops->respond(r, 504, NULL, body, 0);
}

/* Answers a request its target's queue has no room for. */
static void overflow_response(struct zw_request *r, uint32_t max)
{
	zw_metrics_event(&r->w->metrics, r->key, ZW_EV_OVERFLOW);
	if (zw_hold_overflow_placeholder(r->target)) {
		placeholder_response(r);
		return;
	}
	char body[512];
	snprintf(body, sizeof(body), "too many requests are waiting for %s (limit %u)\n", r->key,
	         max);
	r->ops->respond(r, 503, "Retry-After: 5\r\n", body, 0);
}

static void ensure_hold_timer(struct zw_worker *w);

/* r joined its target's queue: stop reading its client and arm the wait's
 * deadline (the readiness timeout). */
static void wait_in_queue(struct zw_request *r)
{
	struct zw_worker *w = r->w;
	const struct zw_target *t = r->target;
	r->held_slot = 1;
	r->held_since = uv_now(&w->loop);
	if (!r->held_first)
		r->held_first = r->held_since;
	w->n_waiting++;
	if (r->se)
		zw_stats_held(r->se, +1);
	r->state = ZW_REQ_HELD;
	r->ops->read_stop(r);
	uint64_t to = zw_hold_wait_ms(t, &w->s->hold_defaults);
	uv_timer_start(r->timer, on_timer_readiness, zw_request_until_deadline(r, to), 0);
	ensure_hold_timer(w);
}

/* Admits a counted request of r's target under allowance `a`: forwarded at
 * once when nothing waits before it and an endpoint has room, else queued
 * (or refused when the queue is full). Takes over `set` (a reference to the
 * target's ready endpoints). */
static void admit(struct zw_request *r, struct zw_endpoint_set *set, const struct zw_allowance *a)
{
	struct zw_worker *w = r->w;
	struct zw_server *s = w->s;
	const struct zw_target *t = r->target;
	uint32_t max = zw_hold_max_waiting(t, &s->hold_defaults);
	enum zw_admit res = zw_hold_admit(&s->hold, r->key, &r->hitem, w->id, max, set, a,
	                                  zw_endpoints_now_ms(), &w->rng);
	switch (res) {
	case ZW_ADMIT_FORWARD:
		r->set = set;
		r->ep = r->hitem.ep;
		r->hitem.ep = NULL;
		zw_fwd_to(r);
		return;
	case ZW_ADMIT_QUEUED:
		zw_endpoint_set_unref(set);
		wait_in_queue(r);
		return;
	case ZW_ADMIT_FULL:
		zw_endpoint_set_unref(set);
		overflow_response(r, max);
		return;
	case ZW_ADMIT_NOMEM:
	default:
		zw_endpoint_set_unref(set);
		r->ops->respond(r, 503, "Retry-After: 1\r\n", "out of memory\n", 1);
		return;
	}
}

/* zw_hold_target_fn: the ready endpoints and pacing of a queue's target,
 * from its oldest request (which holds the routing table, so the target
 * stays valid; its fields never change). */
static void queue_target(void *arg, const struct zw_hold_item *oldest, struct zw_endpoint_set **set,
                         struct zw_allowance *a)
{
	struct zw_server *s = arg;
	const struct zw_request *r =
	        (const struct zw_request *)((const char *)oldest -
	                                    offsetof(struct zw_request, hitem));
	const struct zw_service_ref *svc = &r->target->service;
	if (zw_endpoints_get(s->d.eps, svc->namespace, svc->name, svc->port, svc->port_name, set) <
	    0)
		*set = NULL;
	*a = zw_request_allowance(r, 1);
}

void zw_dp_take_granted(struct zw_worker *w)
{
	struct zw_hold_item *it = zw_hold_take_granted(&w->s->hold, w->id);
	while (it) {
		struct zw_hold_item *next = it->next;
		struct zw_request *r =
		        (struct zw_request *)((char *)it - offsetof(struct zw_request, hitem));
		it->next = NULL;
		r->set = it->set;
		r->ep = it->ep;
		it->set = NULL;
		it->ep = NULL;
		zw_request_unhold(r);
		uv_timer_stop(r->timer);
		zw_fwd_to(r);
		it = next;
	}
}

void zw_dp_release_pass(struct zw_worker *w)
{
	struct zw_server *s = w->s;
	uint64_t mask = zw_hold_release(&s->hold, queue_target, s, zw_endpoints_now_ms(), &w->rng);
	for (int i = 0; i < s->n_workers; i++) {
		if (!(mask & (1ull << i)) || i == w->id)
			continue;
		atomic_store(&s->workers[i]->flag_mail, 1);
		uv_async_send(&s->workers[i]->async);
	}
	if (mask & (1ull << w->id))
		zw_dp_take_granted(w);
}

static void on_release_timer(uv_timer_t *t)
{
	struct zw_worker *w = t->data;
	w->release_pending = 0;
	zw_dp_release_pass(w);
}

/* Never re-entrant: it may be asked for from deep inside a request's
 * clean-up, so the pass runs on the next loop iteration. */
void zw_dp_schedule_release(struct zw_worker *w)
{
	if (!w->release_pending && zw_hold_total(&w->s->hold) > 0) {
		w->release_pending = 1;
		uv_timer_start(&w->release_timer, on_release_timer, 0, 0);
	}
}

static void on_hold_timer(uv_timer_t *t)
{
	struct zw_worker *w = t->data;
	zw_client_check_disconnects(w);
	/* A safety net: passes also run when requests finish and when
	 * endpoints change. */
	zw_dp_release_pass(w);
	if (w->n_waiting == 0) {
		uv_timer_stop(&w->hold_timer);
		w->hold_timer_on = 0;
	}
}

static void ensure_hold_timer(struct zw_worker *w)
{
	if (!w->hold_timer_on) {
		uv_timer_start(&w->hold_timer, on_hold_timer, HOLD_CHECK_MS, HOLD_CHECK_MS);
		w->hold_timer_on = 1;
	}
}

/* ---- routing ------------------------------------------------------------ */

/* Returns nonzero when the request path (query stripped) equals p. */
static int path_is(const char *u, size_t n, const char *p)
{
	for (size_t i = 0; i < n; i++)
		if (u[i] == '?' || u[i] == '#') {
			n = i;
			break;
		}
	return strlen(p) == n && strncmp(u, p, n) == 0;
}

/* Health path or a static route that passes through while the target has
 * a ready endpoint: forwards r uncounted and returns 1, else returns 0. */
static int pass_through(struct zw_request *r)
{
	struct zw_endpoint_set *set = zw_request_endpoints(r, r->svc);
	size_t n = set ? set->n : 0;
	zw_endpoint_set_unref(set);
	if (n == 0)
		return 0;
	r->uncounted_forward = 1;
	zw_fwd_start(r);
	return 1;
}

void zw_request_route(struct zw_request *r, const struct zw_route_request *rq)
{
	struct zw_worker *w = r->w;
	struct zw_wtable *wt = worker_table(w);
	struct zw_route_match m;
	if (wt && zw_route_lookup_probe(wt->table, rq->path, rq->path_len, &m) == ZW_ROUTE_OK) {
		/* A load balancer's probe naming the host in its path: the
		 * proxy answers for the target, never waking or counting it. */
		zw_metrics_event(&w->metrics, zw_route_table_key(wt->table, m.index),
		                 ZW_EV_HEALTHCHECK);
		r->ops->respond(r, 200, NULL, "ok\n", 0);
		return;
	}
	if (!wt || zw_route_lookup(wt->table, rq, &m) != ZW_ROUTE_OK) {
		char hb[256], body[1024];
		zw_route_host_normalize(rq->host ? rq->host : "", rq->host_len, hb, sizeof(hb));
		const char *why = "no target matches";
		if (wt && m.miss == ZW_ROUTE_MISS_PATH)
			why = "no path prefix of a target for this host matches";
		else if (wt && m.miss == ZW_ROUTE_MISS_HEADERS)
			why = "no target's header matchers match";
		else if (wt && m.miss == ZW_ROUTE_MISS_HOST)
			why = "no target covers this host";
		snprintf(body, sizeof(body),
		         "zerowire: no route for host \"%s\" path \"%.*s\": %s\n", hb,
		         (int)(rq->path_len > 512 ? 512 : rq->path_len), rq->path, why);
		r->ops->respond(r, 404, NULL, body, 0);
		return;
	}
	wt->refs++;
	r->wt = wt;
	r->tidx = m.index;
	r->target = m.target;
	r->key = zw_route_table_key(wt->table, m.index);
	r->svc = &r->target->service;
	if (r->target->request_timeout_ms && r->target->request_timeout_ms != ZW_TIMEOUT_NONE)
		r->deadline = r->start_ms + r->target->request_timeout_ms;
	if (r->grpc_timeout_ms && (!r->deadline || r->start_ms + r->grpc_timeout_ms < r->deadline))
		r->deadline = r->start_ms + r->grpc_timeout_ms; /* gRPC's deadline, if sooner */

	const struct zw_target *t = r->target;
	if (m.static_route >= 0 && (size_t)m.static_route < t->n_static_routes) {
		/* Static routes never count or wake the target: always, or
		 * only while no endpoint is ready (then passed through). */
		const struct zw_static_route *sr = &t->static_routes[m.static_route];
		if (!sr->always && pass_through(r))
			return;
		r->ops->respond_static(r, &sr->response, 200, 0);
		return;
	}
	if (t->healthcheck_path && path_is(rq->path, rq->path_len, t->healthcheck_path)) {
		zw_metrics_event(&w->metrics, r->key, ZW_EV_HEALTHCHECK);
		if (t->healthcheck_response == ZW_HC_PASSTHROUGH && pass_through(r))
			return;
		r->ops->respond(r, 200, NULL, "ok\n", 0);
		return;
	}

	r->se = wtable_stats(wt, m.index);
	if (r->se) {
		zw_stats_begin(r->se);
		r->counted = 1;
	}
	struct zw_endpoint_set *set = zw_request_endpoints(r, r->svc);
	if (!set) {
		r->ops->respond(r, 503, "Retry-After: 1\r\n", "out of memory\n", 1);
		return;
	}
	struct zw_allowance a = zw_request_allowance(r, 0);
	if (set->n > 0 && zw_hold_total(&w->s->hold) == 0 && a.per_endpoint == 0) {
		/* Nothing waits anywhere and no allowance: the warm path. */
		r->set = set;
		r->ep = zw_endpoint_pick(set, &w->rng);
		zw_fwd_to(r);
		return;
	}
	if (set->n > 0) {
		admit(r, set, &a);
		return;
	}
	r->cold = 1;
	if (r->se)
		zw_stats_cold(r->se);
	zw_metrics_event(&w->metrics, r->key, ZW_EV_COLD_START);
	if (zw_hold_cold_action(t) == ZW_COLD_PLACEHOLDER) {
		/* As the add-on: with a placeholder (a waiting page) nothing
		 * is held; the request still counted and woke the target. With
		 * a fallback too it is held and goes there at the readiness
		 * timeout (the add-on's code would never reach the fallback). */
		zw_endpoint_set_unref(set);
		placeholder_response(r);
		return;
	}
	admit(r, set, &a);
}

static int route_header(void *ctx, const char *name, size_t name_len, size_t index,
                        const char **value, size_t *value_len)
{
	const struct zw_http_head *h = ctx;
	size_t seen = 0;
	for (size_t i = 0; i < h->n_fields; i++) {
		const struct zw_http_field *f = &h->fields[i];
		if (f->name_len == name_len &&
		    strncasecmp(h->buf + f->name_off, name, name_len) == 0) {
			if (seen++ == index) {
				*value = h->buf + f->value_off;
				*value_len = f->value_len;
				return 1;
			}
		}
	}
	return 0;
}

void zw_request_dispatch(struct zw_request *r, const llhttp_t *p, const struct zw_http_head *h)
{
	if (p->method == HTTP_CONNECT) {
		r->ops->respond(r, 501, NULL, "CONNECT is not supported\n", 1);
		return;
	}
	size_t n_host = zw_http_count(h, "host");
	if (n_host > 1 || (n_host == 0 && p->http_major == 1 && p->http_minor >= 1)) {
		r->ops->respond(r, 400, NULL,
		                n_host ? "more than one Host header\n" : "missing Host header\n",
		                1);
		return;
	}
	size_t ua_len = 0;
	const char *ua = zw_http_find(h, "user-agent", &ua_len);
	if (ua && ua_len >= 11 && strncmp(ua, "kube-probe/", 11) == 0) {
		zw_metrics_event(&r->w->metrics, "", ZW_EV_HEALTHCHECK);
		r->ops->respond(r, 200, NULL, "ok\n", 0);
		return;
	}
	size_t host_len = 0;
	const char *host = zw_http_find(h, "host", &host_len);
	struct zw_route_request rq = {
	        .host = host,
	        .host_len = host_len,
	        .path = h->buf + h->url_off,
	        .path_len = h->url_len,
	        .headers = {.get = route_header, .ctx = (void *)h},
	};
	rq.service = zw_http_find(h, ZW_SERVICE_HEADER, &rq.service_len);
	zw_request_route(r, &rq);
}
