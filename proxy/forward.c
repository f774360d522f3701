/* zerowire-proxy: the forwarding half of a request (see datapath.h): dial
 * an endpoint with connect retries, send the request head and pump the
 * body, relay the response (interim heads, the final head, the body until
 * its framing ends or the upstream closes), tunnels after a 101, and the
 * upstream timers (connect retry, response header, body stall, stream
 * idle). It reaches the client only through r->ops.
 *
 * Buffers: upstream reads land in the worker's one 64 KiB read buffer and
 * are handed on at once; what the client cannot take now is copied by its
 * side, and reading the upstream stops until the client caught up. */
#include "datapath.h"

#include "log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define REUSE_MAX_AGE_BODY_MS 1000 /* pooled connection age for requests not replayable */

static const char empty[1] = "";

static void dial(struct zw_request *r);
static void send_request_head(struct zw_request *r);

/* ---- writing upstream ---------------------------------------------------- */

static void up_write_cb(uv_write_t *req, int status)
{
	struct zw_request *r = zw_dp_write_arg(req);
	if (r->ops->write_done(r, status))
		return;
	if (!r->up)
		return;
	if (zw_upstream_queued(r->up) == 0 &&
	    ((r->state == ZW_REQ_PROXY && !r->req_done) || r->state == ZW_REQ_TUNNEL))
		r->ops->read_start(r);
}

/* Sends the n buffers to r's upstream (what it cannot take now is queued).
 * Returns 0 or a negative UV_* code. */
static int up_send(struct zw_request *r, const uv_buf_t *bufs, unsigned n)
{
	int rc = r->up->tls ? zw_upstream_write(r->up, bufs, n, up_write_cb, r)
	                    : zw_dp_write((uv_stream_t *)&r->up->tcp, bufs, n, up_write_cb, r);
	if (rc > 0) {
		r->ops->write_queued(r);
		rc = 0;
	}
	return rc;
}

static int up_send_bytes(struct zw_request *r, const char *data, size_t len)
{
	uv_buf_t b = uv_buf_init((char *)data, (unsigned)len);
	return up_send(r, &b, 1);
}

int zw_fwd_busy(const struct zw_request *r)
{
	if (r->h2s)
		return zw_h2pool_busy(r);
	return r->up && zw_upstream_queued(r->up) > 0;
}

void zw_fwd_drop(struct zw_request *r)
{
	if (r->h2s) {
		zw_h2pool_release(r);
		return;
	}
	if (r->up) {
		zw_upstream_close(r->up);
		r->up = NULL;
	}
}

void zw_fwd_release(struct zw_request *r)
{
	if (r->h2s) {
		zw_h2pool_release(r); /* the connection stays with the pool */
		return;
	}
	if (!r->up)
		return;
	if (r->up_reusable && r->req_done && !r->w->draining && zw_upstream_queued(r->up) == 0) {
		zw_upstream_release(r->up); /* keeps reading: idle watch */
	} else {
		zw_upstream_close(r->up);
	}
	r->up = NULL;
}

static int streaming(const struct zw_request *r)
{
	return (r->state == ZW_REQ_PROXY && r->resp_started && !r->resp_done) ||
	       r->state == ZW_REQ_TUNNEL;
}

void zw_fwd_client_drained(struct zw_request *r)
{
	/* Backpressure: the client caught up, read the upstream again. */
	if (r->h2s)
		zw_h2pool_drained(r);
	else if (streaming(r) && r->up)
		zw_upstream_read_start(r->up);
}

/* ---- failures and timers ------------------------------------------------ */

void zw_fwd_fail(struct zw_request *r, int status, const char *why)
{
	zw_metrics_event(&r->w->metrics, r->key ? r->key : "",
	                 status == 504 ? ZW_EV_UPSTREAM_TIMEOUT : ZW_EV_UPSTREAM_ERROR);
	zw_fwd_drop(r);
	if (r->resp_started) {
		r->ops->abort(r);
		return;
	}
	char body[512];
	snprintf(body, sizeof(body), "%s\n", why);
	r->req_done = r->req_done && !r->has_body;
	r->ops->respond(r, status, NULL, body, 1);
}

static void on_timer_stream_idle(uv_timer_t *t)
{
	struct zw_request *r = t->data;
	uint64_t to = r->w->s->d.cfg->stream_idle_timeout_ms;
	uint64_t now = uv_now(&r->w->loop);
	if (!r->idle_armed || !streaming(r))
		return;
	if (now - r->last_io < to) {
		uv_timer_start(r->timer, on_timer_stream_idle, to - (now - r->last_io), 0);
		return;
	}
	/* The response head is out: nothing can be said to the client any
	 * more, so both sides are closed (a truncated body shows as such). */
	zw_log(ZW_LOG_INFO, "stream_idle_timeout", "target=%s idle_ms=%llu tunnel=%d",
	       r->key ? r->key : "-", (unsigned long long)(now - r->last_io),
	       r->state == ZW_REQ_TUNNEL);
	zw_metrics_event(&r->w->metrics, r->key, ZW_EV_STREAM_IDLE_TIMEOUT);
	r->ops->abort(r);
}

/* Arms the stream idle timer once per exchange; later bytes only move
 * r->last_io (no timer work per read). */
static void stream_idle_arm(struct zw_request *r)
{
	uint64_t to = r->w->s->d.cfg->stream_idle_timeout_ms;
	r->last_io = uv_now(&r->w->loop);
	if (r->idle_armed || to == 0)
		return;
	r->idle_armed = 1;
	uv_timer_start(r->timer, on_timer_stream_idle, to, 0);
}

static void on_timer_response_header(uv_timer_t *t);

/* Arms r->timer for the first of: the response head's deadline, and while
 * the request body is still coming, --body-timeout without a byte moving
 * (a client that stalls mid-upload must not hold its connection and an
 * upstream one until the response-header timeout). */
static void response_timer_arm(struct zw_request *r)
{
	uint64_t now = uv_now(&r->w->loop);
	uint64_t left = r->resp_deadline > now ? r->resp_deadline - now : 0;
	uint64_t body = r->w->s->d.cfg->body_timeout_ms;
	if (!r->req_done && body) {
		uint64_t idle = now - r->last_io;
		uint64_t body_left = idle < body ? body - idle : 0;
		if (body_left < left)
			left = body_left;
	}
	uv_timer_start(r->timer, on_timer_response_header, left, 0);
}

static void on_timer_response_header(uv_timer_t *t)
{
	struct zw_request *r = t->data;
	if (r->state != ZW_REQ_PROXY || r->resp_started)
		return;
	uint64_t now = uv_now(&r->w->loop);
	uint64_t body = r->w->s->d.cfg->body_timeout_ms;
	if (!r->req_done && body && now - r->last_io >= body) {
		/* The client stopped sending its body: the upstream has part of
		 * a request, so both connections end. */
		zw_metrics_event(&r->w->metrics, r->key ? r->key : "", ZW_EV_BODY_TIMEOUT);
		zw_log(ZW_LOG_INFO, "body_timeout", "target=%s idle_ms=%llu", r->key ? r->key : "-",
		       (unsigned long long)(now - r->last_io));
		zw_fwd_drop(r);
		r->ops->respond(r, 408, NULL, "request body timeout: no byte received\n", 1);
		return;
	}
	if (now < r->resp_deadline) {
		response_timer_arm(r);
		return;
	}
	zw_fwd_fail(r, 504,
	            zw_request_past_deadline(r) ? "request timeout before the response head"
	                                        : "upstream response header timeout");
}

/* ---- connecting ---------------------------------------------------------- */

static void on_timer_retry(uv_timer_t *t);

int zw_fwd_upstream_tls(const struct zw_request *r, int h2, struct zw_upstream_tls *t, char *name,
                        size_t cap)
{
	if (!r->ep || !r->ep->tls)
		return 0;
	int n = snprintf(name, cap, "%s.%s.svc", r->svc->name, r->svc->namespace);
	if (!r->w->s->d.upstream_tls || n < 0 || (size_t)n >= cap)
		return -1;
	t->client = r->w->s->d.upstream_tls;
	t->server_name = name;
	t->alpn = h2 || r->ep->tls_h2 ? ZW_TLS_ALPN_H2 : ZW_TLS_ALPN_HTTP11;
	return 1;
}

void zw_fwd_tls_connected(struct zw_worker *w, const struct zw_upstream *u, int status,
                          const char *key, char *err, size_t cap)
{
	if (!u->tls || (status != 0 && status != ZW_UPSTREAM_ETLS))
		return;
	if (status == 0) {
		zw_tlsstats_up_handshake(&w->s->tls_stats, zw_tls_version(u->tls),
		                         (int)zw_tls_alpn(u->tls));
		return;
	}
	bool verify = zw_tls_verify_failed(u->tls);
	zw_tlsstats_up_error(&w->s->tls_stats,
	                     verify ? ZW_TLS_UP_ERR_VERIFY : ZW_TLS_UP_ERR_HANDSHAKE);
	char ip[64] = "-";
	const struct sockaddr *sa = (const struct sockaddr *)&u->addr;
	(void)uv_ip_name(sa, ip, sizeof(ip));
	int port = ntohs(sa->sa_family == AF_INET6 ? ((const struct sockaddr_in6 *)sa)->sin6_port
	                                           : ((const struct sockaddr_in *)sa)->sin_port);
	snprintf(err, cap, "%s", zw_tls_error(u->tls));
	zw_log(ZW_LOG_WARN, "upstream_tls_error",
	       "target=%s endpoint=%s:%d server_name=%s reason=%s error=\"%s\"", key ? key : "-",
	       ip, port, zw_tls_sni(u->tls), verify ? "verify_failed" : "handshake_failed", err);
}

static void on_up_connect(struct zw_upstream *u, int status)
{
	struct zw_request *r = u->owner;
	if (!r)
		return;
	zw_fwd_tls_connected(r->w, u, status, r->key, r->w->tls_err, sizeof(r->w->tls_err));
	if (status == 0) {
		send_request_head(r);
		return;
	}
	zw_upstream_close(u);
	r->up = NULL;
	zw_fwd_connect_failed(r, status);
}

void zw_fwd_connect_failed(struct zw_request *r, int status)
{
	r->last_connect_err = status;
	if (status == ZW_UPSTREAM_ETLS) {
		/* Not a backend still starting: the same handshake would fail
		 * again (a certificate that does not verify, no common version
		 * or cipher). */
		char why[ZW_TLS_ERRLEN + 128];
		snprintf(why, sizeof(why), "upstream TLS handshake failed (%s:%u): %s", r->ep->ip,
		         r->ep->port, r->w->tls_err);
		zw_fwd_fail(r, 502, why);
		return;
	}
	uint64_t now = uv_now(&r->w->loop);
	uint64_t interval = r->w->s->d.cfg->connect_retry_interval_ms;
	if (now + interval < r->connect_deadline) {
		/* A fresh endpoint may not listen yet: try again shortly. */
		uv_timer_start(r->timer, on_timer_retry, interval, 0);
		return;
	}
	char why[256];
	if (status == UV_ETIMEDOUT) {
		snprintf(why, sizeof(why), "upstream connect timeout (%s:%u)", r->ep->ip,
		         r->ep->port);
		zw_fwd_fail(r, 504, why);
	} else {
		snprintf(why, sizeof(why), "upstream connection failed (%s:%u): %s", r->ep->ip,
		         r->ep->port, uv_strerror(status));
		zw_fwd_fail(r, 502, why);
	}
}

/* Nonzero when r may be sent again after a reused connection closed
 * without an answer: no body went out and its method is idempotent (RFC
 * 9110 9.2.2). The backend may have taken the request before it closed,
 * and a proxy must not repeat a non-idempotent one (RFC 9112 9.3.1). */
static int replayable(const struct zw_request *r)
{
	if (r->body_sent || r->has_body || r->upgrade)
		return 0;
	switch (r->method) {
	case HTTP_GET:
	case HTTP_HEAD:
	case HTTP_OPTIONS:
	case HTTP_TRACE:
	case HTTP_PUT:
	case HTTP_DELETE:
		return 1;
	default:
		return 0;
	}
}

/* Takes a pooled connection to r's endpoint speaking as tls says (NULL:
 * cleartext; name: its server name) or dials one. */
static void get_or_dial(struct zw_request *r, const struct zw_upstream_tls *tls, const char *name)
{
	/* A request that cannot be replayed on a fresh connection if a reused
	 * one turns out closed only reuses recently used ones. */
	struct zw_upstream *u =
	        zw_upool_get(&r->w->pool, (const struct sockaddr *)&r->ep->addr, r->ep->addr_len,
	                     name, r, replayable(r) ? 0 : REUSE_MAX_AGE_BODY_MS);
	if (u) {
		r->up = u;
		send_request_head(r);
		return;
	}
	int rc = zw_upstream_dial(&r->w->pool, (const struct sockaddr *)&r->ep->addr,
	                          r->ep->addr_len, r->w->s->d.cfg->connect_timeout_ms, tls, r,
	                          on_up_connect, &r->up);
	if (rc < 0) {
		r->up = NULL;
		char why[256];
		snprintf(why, sizeof(why), "upstream connection failed: %s", uv_strerror(rc));
		zw_fwd_fail(r, 502, why);
	}
}

/* get_or_dial for an endpoint that speaks TLS (kept apart so the cleartext
 * path carries no server-name buffer). */
static void get_or_dial_tls(struct zw_request *r)
{
	struct zw_upstream_tls tls;
	char name[256];
	if (zw_fwd_upstream_tls(r, 0, &tls, name, sizeof(name)) < 0) {
		zw_fwd_fail(r, 502, "TLS to the backend is not available (server name too long)");
		return;
	}
	get_or_dial(r, &tls, name);
}

static void dial(struct zw_request *r)
{
	r->state = ZW_REQ_CONNECT;
	if (zw_h2pool_wanted(r))
		zw_h2pool_start(r);
	else if (r->ep->tls)
		get_or_dial_tls(r);
	else
		get_or_dial(r, NULL, NULL);
}

static void on_timer_retry(uv_timer_t *t)
{
	struct zw_request *r = t->data;
	if (r->state != ZW_REQ_CONNECT || r->up)
		return;
	/* Pick again: the endpoint set may have changed meanwhile. Within the
	 * target's allowance: when no other endpoint has room, the same one is
	 * tried again (its slot is still ours). */
	struct zw_endpoint_set *set = zw_request_endpoints(r, r->svc);
	const struct zw_endpoint *ep = NULL;
	if (set && set->n > 0) {
		struct zw_allowance a = {0};
		if (r->svc == &r->target->service)
			a = zw_request_allowance(r, 0);
		ep = zw_hold_acquire(set, &a, zw_endpoints_now_ms(), &r->w->rng);
	}
	if (ep) {
		zw_endpoint_done(r->ep);
		zw_endpoint_set_unref(r->set);
		r->set = set;
		r->ep = ep;
	} else {
		zw_endpoint_set_unref(set);
	}
	dial(r);
}

void zw_fwd_start(struct zw_request *r)
{
	struct zw_endpoint_set *set = zw_request_endpoints(r, r->svc);
	if (!set || set->n == 0) {
		zw_endpoint_set_unref(set);
		char body[512];
		snprintf(body, sizeof(body), "no ready endpoint for %s/%s\n", r->svc->namespace,
		         r->svc->name);
		zw_fwd_fail(r, r->svc == &r->target->service ? 502 : 504, body);
		return;
	}
	r->set = set;
	r->ep = zw_endpoint_pick(set, &r->w->rng);
	zw_fwd_to(r);
}

void zw_fwd_to(struct zw_request *r)
{
	struct zw_server *s = r->w->s;
	r->connect_deadline = uv_now(&r->w->loop) +
	                      zw_request_until_deadline(r, s->d.cfg->connect_retry_budget_ms);
	if (!r->up_start)
		r->up_start = uv_now(&r->w->loop);
	dial(r);
}

/* ---- the request ---------------------------------------------------------- */

static void send_request_head(struct zw_request *r)
{
	struct zw_server *s = r->w->s;
	struct zw_obuf out = {.limit = s->limits.max_head_bytes + 4096};
	r->state = ZW_REQ_PROXY;
	if (r->ops->request_head(r, &out) < 0 || (r->traced && zw_observe_tracing(s->d.obs) &&
	                                          zw_trace_rewrite_head(&out, &r->trace) < 0)) {
		zw_buf_free(&out.buf);
		zw_fwd_fail(r, 502, "request head too large to forward");
		return;
	}
	/* Body bytes that came with the head leave in the same write. The
	 * client side frames them on a copy of its state, committed only once
	 * the write went through, so a failed write on a reused connection can
	 * be retried on a fresh one from the same state. */
	const char *bdata = NULL;
	size_t blen = 0;
	int br = ZW_BODY_MORE;
	if (!r->req_done) {
		br = r->ops->early_body(r, &bdata, &blen);
		if (br == ZW_BODY_EBAD) {
			/* dispatch checked these bytes already; kept for safety. */
			zw_buf_free(&out.buf);
			zw_metrics_event(&r->w->metrics, r->key, ZW_EV_UPSTREAM_ERROR);
			r->ops->respond(r, 400, NULL, "malformed request body\n", 1);
			return;
		}
	}
	uv_buf_t bufs[2] = {uv_buf_init(out.buf.data, (unsigned)out.buf.len),
	                    uv_buf_init((char *)bdata, (unsigned)blen)};
	int rc = up_send(r, bufs, blen ? 2 : 1);
	zw_buf_free(&out.buf);
	if (rc == 0 && bdata)
		r->ops->early_body_sent(r);
	if (rc < 0) {
		/* A pooled connection the peer closed: dial a fresh one. */
		if (r->up->reused && !r->retried) {
			r->retried = 1;
			zw_fwd_drop(r);
			dial(r);
			return;
		}
		zw_fwd_fail(r, 502, "upstream connection reset");
		return;
	}
	zw_http_parser_expect_head_response(&r->up->parser, r->is_head);
	if (zw_upstream_read_start(r->up) < 0) {
		zw_fwd_fail(r, 502, "upstream connection reset");
		return;
	}
	zw_fwd_head_sent(r);
}

void zw_fwd_head_sent(struct zw_request *r)
{
	struct zw_server *s = r->w->s;
	r->state = ZW_REQ_PROXY;
	const struct zw_target *t = r->target;
	uint64_t to = t && t->response_header_timeout_ms ? t->response_header_timeout_ms
	                                                 : s->d.cfg->response_header_timeout_ms;
	r->resp_deadline = uv_now(&r->w->loop) + zw_request_until_deadline(r, to);
	r->last_io = uv_now(&r->w->loop);
	response_timer_arm(r);
	r->ops->body_more(r);
}

int zw_fwd_body(struct zw_request *r, const char *data, size_t len)
{
	if (r->h2s) {
		if (zw_h2pool_body(r, data, len) < 0) {
			zw_fwd_fail(r, 502, "request body could not go to the HTTP/2 backend");
			return -1;
		}
		r->body_sent += len;
		return 0;
	}
	if (len == 0 || !r->up)
		return 0;
	if (up_send_bytes(r, data, len) < 0) {
		zw_fwd_fail(r, 502, "upstream connection reset while sending the body");
		return -1;
	}
	r->body_sent += len;
	return 0;
}

int zw_fwd_tunnel_bytes(struct zw_request *r, const char *data, size_t len)
{
	if (r->h2s)
		return UV_EINVAL; /* no upgrade goes over HTTP/2 */
	return up_send_bytes(r, data, len);
}

/* ---- the response --------------------------------------------------------- */

/* Handles a complete response head. Interim and 101 heads go out at once;
 * a final head is kept by the client side until the body bytes that follow
 * it. Returns 1 when parsing continues with the rest of the bytes, 0 when
 * it must stop (state changed or closed). */
static int on_response_head(struct zw_request *r, const char *rest, size_t rest_len)
{
	struct zw_upstream *u = r->up;
	int status = u->parser.status_code;
	if (status == 101 && !r->upgrade) {
		/* A switch nobody asked for: the client would take the rest of
		 * the connection as another protocol. */
		zw_fwd_fail(r, 502, "upstream switched protocols unasked");
		return 0;
	}
	if (status >= 100 && status < 200 && status != 101) {
		/* Interim response (100 Continue, 103): relay as it is, the
		 * first ZW_MAX_INTERIM of a request (later ones are skipped). */
		if (r->interims++ < ZW_MAX_INTERIM && r->ops->response_head(r, ZW_RESP_INTERIM) < 0)
			return 0;
		zw_http_head_reset(&u->head);
		return 1;
	}
	uv_timer_stop(r->timer);
	r->resp_started = 1;
	r->status = status;
	if (status == 101 && r->upgrade) {
		if (r->ops->response_head(r, ZW_RESP_UPGRADE) < 0)
			return 0;
		r->state = ZW_REQ_TUNNEL;
		uv_timer_stop(r->timer);
		r->idle_armed = 0;
		stream_idle_arm(r);
		r->ops->tunnel(r, rest, rest_len);
		return 0;
	}
	return r->ops->response_head(r, ZW_RESP_FINAL) < 0 ? 0 : 1;
}

static void response_done(struct zw_request *r, int extra_bytes)
{
	r->resp_done = 1;
	/* A response to HEAD ends with its head, but some backends send the
	 * body anyway, possibly in a later segment that only arrives once the
	 * connection is pooled: the next request would read it as its own
	 * response. Such a connection is not reused. */
	r->up_reusable = !extra_bytes && !r->is_head && llhttp_should_keep_alive(&r->up->parser) &&
	                 !llhttp_message_needs_eof(&r->up->parser);
	zw_request_record(r, r->status);
	if (!r->req_done)
		r->resp_close = 1;
	r->ops->finish(r);
}

void zw_fwd_read_cb(struct zw_upstream *u, ssize_t nread, const char *rdata)
{
	struct zw_request *r = u->owner;
	if (!r || r->up != u)
		return;
	if (nread == 0)
		return;
	if (nread < 0) {
		if (r->state == ZW_REQ_TUNNEL) {
			r->ops->tunnel_end(r);
			return;
		}
		if (r->resp_started) {
			if (llhttp_message_needs_eof(&u->parser) && nread == UV_EOF &&
			    llhttp_finish(&u->parser) == HPE_OK) {
				response_done(r, 1);
				return;
			}
			/* Truncated response: the client must not take it as whole. */
			zw_metrics_event(&r->w->metrics, r->key, ZW_EV_UPSTREAM_ERROR);
			r->ops->abort(r);
			return;
		}
		if (u->reused && !r->retried && r->req_done && replayable(r)) {
			/* The peer closed a pooled connection as we reused it. */
			r->retried = 1;
			zw_fwd_drop(r);
			uv_timer_stop(r->timer);
			dial(r);
			return;
		}
		char why[256];
		snprintf(why, sizeof(why), "upstream %s before a response (%s:%u)",
		         nread == UV_EOF ? "closed the connection" : "connection reset", r->ep->ip,
		         r->ep->port);
		zw_fwd_fail(r, 502, why);
		return;
	}
	const char *data = rdata;
	size_t len = (size_t)nread;
	r->last_io = uv_now(&r->w->loop);
	if (r->state == ZW_REQ_TUNNEL) {
		if (r->ops->send(r, data, len) < 0) {
			r->ops->abort(r);
			return;
		}
		if (r->up == u && r->ops->busy(r))
			zw_upstream_read_stop(u);
		return;
	}
	while (len > 0 || !r->resp_started) {
		if (!r->resp_started) {
			size_t used = 0;
			int res = zw_http_head_execute(&u->parser, &u->head, data, len, &used);
			if (res == ZW_HTTP_MORE)
				return;
			if (res < 0) {
				zw_fwd_fail(r, 502, "invalid response from upstream");
				return;
			}
			data += used;
			len -= used;
			if (!on_response_head(r, data, len) || r->up != u)
				return;
			if (!r->resp_started)
				continue; /* after an interim response */
		}
		size_t used = 0;
		int res = zw_http_body_execute(&u->parser, len ? data : empty, len, &used);
		if (res == ZW_BODY_EBAD)
			used = 0; /* the head (if any) still goes out, then close */
		int rc = r->ops->send(r, data, used);
		if (r->up != u)
			return; /* the client side ended the request during the send
			         * (an HTTP/2 client reset or closed its connection) */
		if (res == ZW_BODY_EBAD) {
			zw_metrics_event(&r->w->metrics, r->key, ZW_EV_UPSTREAM_ERROR);
			r->ops->abort(r);
			return;
		}
		if (rc < 0) {
			r->ops->abort(r);
			return;
		}
		data += used;
		len -= used;
		if (res == ZW_BODY_DONE || res == ZW_BODY_UPGRADE) {
			response_done(r, len > 0);
			return;
		}
		break;
	}
	stream_idle_arm(r);
	if (r->ops->busy(r))
		zw_upstream_read_stop(u);
}
