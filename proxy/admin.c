/* zerowire-proxy admin listener (see admin.h). */
#include "admin.h"

#include "buf.h"
#include "config.h"
#include "http1.h"
#include "list.h"
#include "log.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ADMIN_MAX_HEAD  16384
#define ADMIN_TIMEOUT   5000
#define ADMIN_MAX_CONNS 256
#define ADMIN_MAX_BODY  (64u << 20)

struct zw_admin {
	uv_loop_t *loop;
	uv_tcp_t listener;
	struct zw_admin_deps d;
	struct zw_http_limits limits;
	int shutting_down;
	int closing;
	int port;
	int open_handles;
	size_t n_conns;
	struct aconn *conns;
};

struct aconn {
	uv_tcp_t tcp;
	uv_timer_t timer;
	uv_write_t wreq;
	struct zw_admin *a;
	struct aconn *next, *prev;
	llhttp_t parser;
	struct zw_http_head head;
	struct zw_obuf out;
	int open_handles;
	int closed;
	int responded;
	char rbuf[4096];
};

static void on_admin_freed(struct zw_admin *a);

static void aconn_closed(uv_handle_t *h)
{
	struct aconn *c = h->data;
	if (--c->open_handles > 0)
		return;
	struct zw_admin *a = c->a;
	zw_http_head_free(&c->head);
	zw_buf_free(&c->out.buf);
	free(c);
	a->n_conns--;
	on_admin_freed(a);
}

static void aconn_close(struct aconn *c)
{
	if (c->closed)
		return;
	c->closed = 1;
	ZW_LIST_UNLINK(c->a->conns, c);
	uv_close((uv_handle_t *)&c->timer, aconn_closed);
	uv_close((uv_handle_t *)&c->tcp, aconn_closed);
}

static void on_written(uv_write_t *req, int status)
{
	(void)status;
	aconn_close(req->data);
}

static void respond(struct aconn *c, int status, const char *ctype, const char *body, size_t len)
{
	struct zw_obuf *o = &c->out;
	o->limit = ADMIN_MAX_BODY + 1024;
	c->responded = 1;
	uv_read_stop((uv_stream_t *)&c->tcp);
	if (zw_obuf_addf(o,
	                 "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
	                 "Cache-Control: no-store\r\nConnection: close\r\n\r\n",
	                 status, zw_http_reason(status), ctype, len) < 0 ||
	    zw_obuf_add(o, body, len) < 0) {
		aconn_close(c);
		return;
	}
	uv_buf_t b = uv_buf_init(o->buf.data, (unsigned)o->buf.len);
	c->wreq.data = c;
	if (uv_write(&c->wreq, (uv_stream_t *)&c->tcp, &b, 1, on_written) < 0)
		aconn_close(c);
}

static void queue_one(json_t *obj, const char *key, const struct zw_stats_snapshot *snap)
{
	json_t *o = json_pack("{s:I,s:I,s:I,s:f,s:b}", "concurrency", (json_int_t)snap->concurrency,
	                      "requestCount", (json_int_t)snap->requests, "held",
	                      (json_int_t)snap->held, "rate", snap->rate, "active", snap->active);
	if (o)
		json_object_set_new(obj, key, o);
}

/* Every target of the current table, with its counters (zero before the
 * first request). */
static void serve_queue(struct aconn *c)
{
	struct zw_admin *a = c->a;
	json_t *obj = json_object();
	struct zw_route_table *t = zw_route_current_acquire(a->d.routes);
	size_t n = zw_route_table_count(t);
	uint64_t now = uv_now(a->loop);
	for (size_t i = 0; obj && i < n; i++) {
		const char *key = zw_route_table_key(t, i);
		struct zw_stats_snapshot snap;
		memset(&snap, 0, sizeof(snap));
		zw_stats_get(a->d.stats, key, now, &snap);
		queue_one(obj, key, &snap);
	}
	zw_route_current_release(t);
	char *s = obj ? json_dumps(obj, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
	json_decref(obj);
	if (!s) {
		respond(c, 500, "text/plain", "out of memory\n", 14);
		return;
	}
	respond(c, 200, "application/json", s, strlen(s));
	free(s);
}

struct prom_ctx {
	struct zw_obuf *out;
	int held; /* which family this pass writes */
	int rc;
};

/* Writes one sample of the family of this pass (Prometheus wants every
 * sample of a family together, right after its TYPE line). */
static int prom_one(void *arg, const char *key, const struct zw_stats_snapshot *snap)
{
	struct prom_ctx *p = arg;
	char ns[256];
	char name[1024];
	zw_metrics_key_labels(key, ns, sizeof(ns), name, sizeof(name));
	if (zw_obuf_addf(p->out, "%s{namespace=\"%s\",target=\"%s\"} %lld\n",
	                 p->held ? "zerowire_held_requests" : "zerowire_concurrency", ns, name,
	                 (long long)(p->held ? snap->held : snap->concurrency)) < 0)
		p->rc = -1;
	return p->rc;
}

static void serve_metrics(struct aconn *c)
{
	struct zw_admin *a = c->a;
	struct zw_obuf out = {.limit = ADMIN_MAX_BODY};
	int rc = 0;
	if (a->d.server) {
		size_t n = 0;
		struct zw_metrics_shard *const *sh = zw_server_metrics(a->d.server, &n);
		rc = zw_metrics_render(sh, n, &out);
		if (rc == 0)
			rc = zw_obuf_addf(
			        &out,
			        "# HELP zerowire_connections Open client connections.\n"
			        "# TYPE zerowire_connections gauge\nzerowire_connections %zu\n",
			        zw_server_connections(a->d.server));
	}
	for (int held = 1; held >= 0 && rc == 0; held--) {
		rc = zw_obuf_addf(
		        &out, "%s",
		        held ? "# HELP zerowire_held_requests Requests held waiting for a "
		               "ready endpoint.\n# TYPE zerowire_held_requests gauge\n"
		             : "# HELP zerowire_concurrency Requests in flight, held ones "
		               "included.\n# TYPE zerowire_concurrency gauge\n");
		struct prom_ctx p = {.out = &out, .held = held};
		if (rc == 0)
			zw_stats_foreach(a->d.stats, uv_now(a->loop), prom_one, &p);
		rc = rc ? rc : p.rc;
	}
	if (rc == 0)
		rc = zw_obuf_addf(&out,
		                  "# HELP zerowire_ready Routing table synced and not shutting "
		                  "down.\n# TYPE zerowire_ready gauge\nzerowire_ready %d\n",
		                  !a->shutting_down && a->d.synced(a->d.arg));
	if (rc == 0)
		rc = zw_metrics_render_process(&out);
	if (rc == 0)
		rc = zw_observe_render(a->d.server ? zw_server_observe(a->d.server) : NULL, &out);
	if (rc == 0 && a->d.server)
		rc = zw_server_tls_prometheus(a->d.server, &out);
	if (rc == 0 && a->d.certs) {
		struct zw_buf tb = {0};
		rc = zw_certstore_prometheus(a->d.certs, &tb, ADMIN_MAX_BODY);
		if (rc == 0)
			rc = zw_obuf_add(&out, tb.data, tb.len);
		zw_buf_free(&tb);
	}
	if (rc == 0 && a->d.scaler) {
		char *sb = NULL;
		size_t slen = 0;
		if (zw_scaler_prometheus(a->d.scaler, &sb, &slen) == 0 && slen)
			rc = zw_obuf_add(&out, sb, slen);
		free(sb);
	}
	if (rc < 0)
		respond(c, 500, "text/plain", "metrics too large\n", 18);
	else
		respond(c, 200, "text/plain; version=0.0.4", out.buf.data ? out.buf.data : "",
		        out.buf.len);
	zw_buf_free(&out.buf);
}

/* Appends s HTML-escaped. */
static int add_html(struct zw_obuf *o, const char *s)
{
	for (; *s; s++) {
		int rc;
		switch (*s) {
		case '<':
			rc = zw_obuf_add(o, "&lt;", 4);
			break;
		case '>':
			rc = zw_obuf_add(o, "&gt;", 4);
			break;
		case '&':
			rc = zw_obuf_add(o, "&amp;", 5);
			break;
		case '"':
			rc = zw_obuf_add(o, "&quot;", 6);
			break;
		default:
			rc = zw_obuf_add(o, s, 1);
		}
		if (rc < 0)
			return -1;
	}
	return 0;
}

static void serve_status(struct aconn *c)
{
	struct zw_admin *a = c->a;
	struct zw_obuf o = {.limit = ADMIN_MAX_BODY};
	struct zw_route_table *t = zw_route_current_acquire(a->d.routes);
	json_t *eps = NULL;
	zw_endpoints_to_json(a->d.eps, &eps);
	int rc =
	        zw_obuf_addf(&o,
	                     "<!doctype html><html><head><meta charset=\"utf-8\">"
	                     "<title>zerowire-proxy</title></head><body>"
	                     "<h1>zerowire-proxy %s</h1><p>ready: %s</p><table border=\"1\">"
	                     "<tr><th>target</th><th>service</th><th>ready endpoints</th>"
	                     "<th>held</th><th>in flight</th><th>rate (req/s)</th></tr>",
	                     ZW_VERSION, !a->shutting_down && a->d.synced(a->d.arg) ? "yes" : "no");
	size_t n = zw_route_table_count(t);
	for (size_t i = 0; rc == 0 && i < n && i < 10000; i++) {
		const struct zw_target *tg = zw_route_table_target(t, i);
		const char *key = zw_route_table_key(t, i);
		struct zw_stats_snapshot snap = {0};
		zw_stats_get(a->d.stats, key, uv_now(a->loop), &snap);
		char svc[512];
		snprintf(svc, sizeof(svc), "%s/%s", tg->service.namespace, tg->service.name);
		rc = zw_obuf_add(&o, "<tr><td>", 8);
		rc = rc ? rc : add_html(&o, key);
		rc = rc ? rc : zw_obuf_add(&o, "</td><td>", 9);
		rc = rc ? rc : add_html(&o, svc);
		if (tg->service.port_name)
			rc = rc ? rc : zw_obuf_addf(&o, ":%s", tg->service.port_name);
		else
			rc = rc ? rc : zw_obuf_addf(&o, ":%d", tg->service.port);
		rc = rc ? rc : zw_obuf_add(&o, "</td><td>", 9);
		json_t *e = eps ? json_object_get(eps, svc) : NULL;
		json_t *ready = e ? json_object_get(e, "ready") : NULL;
		size_t k;
		json_t *v;
		json_array_foreach(ready, k, v)
		{
			rc = rc ? rc
			        : add_html(&o, json_string_value(v) ? json_string_value(v) : "");
			rc = rc ? rc : zw_obuf_add(&o, " ", 1);
		}
		rc = rc ? rc
		        : zw_obuf_addf(&o, "</td><td>%lld</td><td>%lld</td><td>%.3f</td></tr>",
		                       (long long)snap.held, (long long)snap.concurrency,
		                       snap.rate);
	}
	rc = rc ? rc : zw_obuf_addf(&o, "</table></body></html>\n");
	json_decref(eps);
	zw_route_current_release(t);
	if (rc < 0)
		respond(c, 500, "text/plain", "status too large\n", 17);
	else
		respond(c, 200, "text/html; charset=utf-8", o.buf.data, o.buf.len);
	zw_buf_free(&o.buf);
}

static void handle(struct aconn *c)
{
	struct zw_admin *a = c->a;
	char target[2048];
	size_t ul = c->head.url_len < sizeof(target) - 1 ? c->head.url_len : sizeof(target) - 1;
	memcpy(target, c->head.buf + c->head.url_off, ul);
	target[ul] = '\0';
	char path[2048];
	memcpy(path, target, ul + 1);
	char *q = strchr(path, '?');
	if (q)
		*q = '\0';
	const char *method = llhttp_method_name((llhttp_method_t)c->parser.method);
	int get = c->parser.method == HTTP_GET || c->parser.method == HTTP_HEAD;
	int peer_path = zw_scaler_admin_is_peer_path(path);
	int read = (a->d.roles & ZW_ADMIN_READ) != 0;
	if (get && strcmp(path, "/healthz") == 0) {
		respond(c, 200, "text/plain", "ok\n", 3);
	} else if (peer_path ? !(a->d.roles & ZW_ADMIN_PEER) : !read) {
		respond(c, 404, "text/plain", "not found\n", 10);
	} else if (get && strcmp(path, "/readyz") == 0) {
		if (a->shutting_down)
			respond(c, 503, "text/plain", "shutting down\n", 14);
		else if (!a->d.synced(a->d.arg))
			respond(c, 503, "text/plain", "routing table not synced\n", 25);
		else
			respond(c, 200, "text/plain", "ok\n", 3);
	} else if (get && strcmp(path, "/metrics") == 0) {
		serve_metrics(c);
	} else if (get && strcmp(path, "/queue") == 0) {
		serve_queue(c);
	} else if (get && (strcmp(path, "/status") == 0 || strcmp(path, "/") == 0)) {
		serve_status(c);
	} else {
		int status = 404;
		char *body = NULL;
		size_t blen = 0;
		const char *ctype = "text/plain";
		char authz[ZW_AUTH_TOKEN_MAX + 64];
		size_t alen = 0;
		const char *av = zw_http_find(&c->head, "authorization", &alen);
		if (av && alen < sizeof(authz)) {
			memcpy(authz, av, alen);
			authz[alen] = '\0';
		} else if (av) {
			snprintf(authz, sizeof(authz), "Bearer -"); /* too long: a wrong token */
		}
		int r = a->d.scaler
		                ? zw_scaler_admin(a->d.scaler, method, target, av ? authz : NULL,
		                                  &status, &body, &blen, &ctype)
		                : 0;
		explicit_bzero(authz, sizeof(authz));
		if (r == 1)
			respond(c, status, ctype, body ? body : "", blen);
		else if (r < 0)
			respond(c, 500, "text/plain", "out of memory\n", 14);
		else
			respond(c, 404, "text/plain", "not found\n", 10);
		free(body);
	}
}

static void a_alloc(uv_handle_t *h, size_t size, uv_buf_t *buf)
{
	struct aconn *c = h->data;
	(void)size;
	*buf = uv_buf_init(c->rbuf, sizeof(c->rbuf));
}

static void a_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
	struct aconn *c = s->data;
	if (nread == 0 || c->responded)
		return;
	if (nread < 0) {
		aconn_close(c);
		return;
	}
	size_t used = 0;
	int r = zw_http_head_execute(&c->parser, &c->head, buf->base, (size_t)nread, &used);
	if (r == ZW_HTTP_MORE)
		return;
	if (r < 0) {
		respond(c, r == ZW_HTTP_ETOOBIG ? 431 : 400, "text/plain", "bad request\n", 12);
		return;
	}
	uv_timer_stop(&c->timer);
	handle(c);
}

static void a_timeout(uv_timer_t *t)
{
	aconn_close(t->data);
}

static void a_accept(uv_stream_t *srv, int status)
{
	struct zw_admin *a = srv->data;
	if (status < 0)
		return;
	struct aconn *c = calloc(1, sizeof(*c));
	if (!c)
		return;
	c->a = a;
	uv_tcp_init(a->loop, &c->tcp);
	uv_timer_init(a->loop, &c->timer);
	c->tcp.data = c->timer.data = c;
	c->open_handles = 2;
	a->n_conns++;
	ZW_LIST_PUSH(a->conns, c);
	zw_http_head_init(&c->head, &a->limits);
	zw_http_parser_init(&c->parser, HTTP_REQUEST, &c->head);
	if (uv_accept(srv, (uv_stream_t *)&c->tcp) < 0 || a->n_conns > ADMIN_MAX_CONNS) {
		aconn_close(c);
		return;
	}
	uv_timer_start(&c->timer, a_timeout, ADMIN_TIMEOUT, 0);
	uv_read_start((uv_stream_t *)&c->tcp, a_alloc, a_read);
}

int zw_admin_start(uv_loop_t *loop, const struct zw_admin_deps *deps, struct zw_admin **out,
                   char *err, size_t errlen)
{
	struct sockaddr_storage addr;
	if (zw_parse_addr(deps->listen, &addr) < 0) {
		snprintf(err, errlen, "admin listen: bad address %s", deps->listen);
		return UV_EINVAL;
	}
	struct zw_admin *a = calloc(1, sizeof(*a));
	if (!a)
		return UV_ENOMEM;
	a->loop = loop;
	a->d = *deps;
	if (!a->d.roles)
		a->d.roles = ZW_ADMIN_READ | ZW_ADMIN_PEER;
	a->limits.max_head_bytes = ADMIN_MAX_HEAD;
	a->limits.max_headers = 100;
	a->limits.max_request_line = 4096;
	uv_tcp_init(loop, &a->listener);
	a->listener.data = a;
	a->open_handles = 1;
	int rc = uv_tcp_bind(&a->listener, (struct sockaddr *)&addr, 0);
	if (rc == 0)
		rc = uv_listen((uv_stream_t *)&a->listener, 128, a_accept);
	if (rc < 0) {
		snprintf(err, errlen, "admin listen %s: %s", deps->listen, uv_strerror(rc));
		zw_admin_close(a);
		return rc;
	}
	struct sockaddr_storage b;
	int blen = sizeof(b);
	uv_tcp_getsockname(&a->listener, (struct sockaddr *)&b, &blen);
	a->port = ntohs(((struct sockaddr_in *)&b)->sin_port);
	*out = a;
	return 0;
}

void zw_admin_set_scaler(struct zw_admin *a, struct zw_scaler *scaler)
{
	a->d.scaler = scaler;
}

void zw_admin_set_shutting_down(struct zw_admin *a)
{
	a->shutting_down = 1;
}

int zw_admin_port(const struct zw_admin *a)
{
	return a->port;
}

static void on_admin_freed(struct zw_admin *a)
{
	if (a->closing && a->open_handles == 0 && a->n_conns == 0)
		free(a);
}

static void listener_closed(uv_handle_t *h)
{
	struct zw_admin *a = h->data;
	a->open_handles = 0;
	on_admin_freed(a);
}

void zw_admin_close(struct zw_admin *a)
{
	if (!a || a->closing)
		return;
	a->closing = 1;
	while (a->conns)
		aconn_close(a->conns);
	uv_close((uv_handle_t *)&a->listener, listener_closed);
}
