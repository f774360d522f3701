/* zerowire-proxy: h2c towards backends (see datapath.h and docs/http2.md).
 *
 * A worker keeps, per backend address, up to MAX_CONNS_PER_ADDR TCP
 * connections each carrying an HTTP/2 client session (h2upstream.c) with up
 * to 100 streams; a request whose backend speaks h2c (or which is gRPC)
 * becomes one stream on the first connection with room, dialed when none
 * has. A connection without streams closes after --upstream-idle-timeout.
 *
 * Translation, both ways through HTTP/1.1 text: the client side's request
 * head (the same text an HTTP/1.1 backend gets, forwarding fields added) is
 * parsed back into HEADERS (Host to :authority, hop-by-hop fields gone,
 * `te: trailers` for gRPC), and its body, chunked or not, is de-framed into
 * DATA (a chunked trailer section into trailer HEADERS). The response's
 * interim heads, HEADERS, DATA and trailers become an HTTP/1.1 response
 * (chunked when no content-length, trailers as the chunked trailer section)
 * fed to forward.c's relay as if read from a socket, so every client side
 * and every timer, count and log works unchanged; the trailers are also kept
 * on the request so an HTTP/2 client gets them as a trailer HEADERS frame.
 *
 * Flow control: the backend's stream window is given back only once the
 * client side has taken the bytes (not busy), so a slow client stops its
 * backend stream; request body waits in the stream's queue for the
 * backend's window and the client side is not asked for more meanwhile.
 *
 * Lifetimes: a stream object lives until its request lets go; when that
 * happens inside one of its own callbacks, it is freed once the callback
 * returns. A connection closes only outside its own session calls, and is
 * freed after its last socket write completed. */
#include "datapath.h"

#include "h2upstream.h"
#include "list.h"
#include "log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MAX_CONNS_PER_ADDR 64           /* x 100 streams: more calls in flight get UNAVAILABLE */
#define MAX_SOCKET_QUEUE   (256 * 1024) /* frames waiting in the socket: stop producing */

struct zw_h2pconn {
	struct zw_dp_defer defer;       /* first: a flush is due at the end of the loop turn */
	struct zw_h2pconn *prev, *next; /* the worker's h2c connections */
	struct zw_worker *w;
	struct zw_upstream *u;
	struct zw_h2up *h2;
	struct sockaddr_storage addr;
	socklen_t addr_len;
	int connected;
	int connect_status; /* the dial failed: streams retry or fail with it */
	int in_call;        /* inside a session call: closing waits */
	int again;          /* output was asked for meanwhile */
	int dead;           /* close once out of the call */
	int closed;         /* off the list, session freed, socket closing */
	int writes;         /* socket writes in flight referencing it */
	uv_timer_t idle;    /* --upstream-idle-timeout without streams */
	int timer_open;
	char tls_name[256];          /* server name of its TLS session; "": h2c */
	char tls_err[ZW_TLS_ERRLEN]; /* why its TLS handshake failed */
};

struct zw_h2ustream {
	struct zw_request *r; /* NULL once the request let go */
	struct zw_h2pconn *pc;
	int32_t id;
	int stream_gone;         /* the session ended the stream */
	int in_cb;               /* inside one of its callbacks: freeing waits */
	int released;            /* let go during a callback: free after it */
	struct zw_upstream fake; /* parser and head of the response text, for the client side */
	llhttp_t qp;             /* the request text as the client side framed it */
	struct zw_http_head qh;
	struct zw_obuf qtrailers; /* the trailer section of its chunked body (qh.trailers) */
	int body_end_sent;
	int body_bad;
	uint64_t body_in;    /* request body bytes given to the backend */
	size_t unconsumed;   /* response bytes the client side has not taken yet */
	int chunked;         /* the response text is chunked */
	struct zw_obuf text; /* response text being relayed */
	struct zw_obuf strs; /* NUL-terminated method, path and authority */
};

static void pc_flush(struct zw_h2pconn *pc);
static void pc_close(struct zw_h2pconn *pc);

/* ---- streams --------------------------------------------------------------- */

static void stream_free(struct zw_h2ustream *s)
{
	zw_http_head_free(&s->fake.head);
	zw_http_head_free(&s->qh);
	zw_buf_free(&s->qtrailers.buf);
	zw_buf_free(&s->text.buf);
	zw_buf_free(&s->strs.buf);
	free(s);
}

int zw_h2pool_wanted(const struct zw_request *r)
{
	return !r->upgrade && (r->grpc || (r->ep && (r->ep->h2c || r->ep->tls_h2)));
}

int zw_h2pool_busy(const struct zw_request *r)
{
	const struct zw_h2ustream *s = r->h2s;
	return s && s->pc && s->pc->h2 && !s->stream_gone && zw_h2up_queued(s->pc->h2, s->id) > 0;
}

void zw_h2pool_drained(struct zw_request *r)
{
	struct zw_h2ustream *s = r->h2s;
	if (!s || !s->unconsumed || s->stream_gone || !s->pc || !s->pc->h2)
		return;
	zw_h2up_consume(s->pc->h2, s->id, s->unconsumed);
	s->unconsumed = 0;
	pc_flush(s->pc);
}

void zw_h2pool_release(struct zw_request *r)
{
	struct zw_h2ustream *s = r->h2s;
	r->h2s = NULL;
	r->up = NULL;
	if (!s)
		return;
	s->r = NULL;
	struct zw_h2pconn *pc = s->pc;
	if (!s->stream_gone && pc && pc->h2) {
		zw_h2up_detach(pc->h2, s->id);
		pc_flush(pc);
	}
	if (s->in_cb)
		s->released = 1;
	else
		stream_free(s);
}

/* Hands response text to forward.c's relay as if read from a socket. Returns
 * nonzero when s is gone afterwards (freed: the request let go). */
static int relay(struct zw_h2ustream *s)
{
	if (s->text.buf.len && s->r)
		zw_fwd_read_cb(&s->fake, (ssize_t)s->text.buf.len, s->text.buf.data);
	s->text.buf.len = 0;
	return !s->r;
}

/* Ends a callback on s: frees it when its request let go meanwhile.
 * Returns nonzero when s is gone. */
static int cb_end(struct zw_h2ustream *s)
{
	s->in_cb = 0;
	if (s->released) {
		stream_free(s);
		return 1;
	}
	return 0;
}

static int field_is(const struct zw_h2_field *f, const char *name)
{
	return f->name_len == strlen(name) && strncasecmp(f->name, name, f->name_len) == 0;
}

/* Nonzero for the fields of a gRPC trailers-only answer that belong in the
 * trailer section: all but content-type (gRPC reads the rest, grpc-status
 * and the server's trailing metadata, as trailers). */
static int trailer_field(const struct zw_h2_field *f)
{
	return !field_is(f, "content-type");
}

/* Appends "name: value\r\n" for f to the response text t. Returns 0 or -1. */
static int field_line(struct zw_obuf *t, const struct zw_h2_field *f)
{
	return zw_h2_text_field(t, f->name, f->name_len, f->value, f->value_len);
}

/* Appends the status line "HTTP/1.1 NNN Reason\r\n" (status: three digits,
 * as nghttp2 checked) to the response text t, without printf. Returns 0 or
 * -1. */
static int status_line(struct zw_obuf *t, int status)
{
	char line[13] = "HTTP/1.1 ";
	const char *reason = zw_http_reason(status);
	line[9] = (char)('0' + status / 100);
	line[10] = (char)('0' + status / 10 % 10);
	line[11] = (char)('0' + status % 10);
	line[12] = ' ';
	if (zw_obuf_add(t, line, sizeof(line)) < 0 || zw_obuf_add(t, reason, strlen(reason)) < 0)
		return -1;
	return zw_obuf_add(t, "\r\n", 2);
}

/* Keeps the trailers on the request (an HTTP/2 client sends them as they
 * are) and appends them as the chunked trailer section. Returns 0 or -1. */
static int add_trailers(struct zw_h2ustream *s, const struct zw_h2_field *fields, size_t n,
                        int only_trailing)
{
	struct zw_request *r = s->r;
	int rc = 0;
	r->trailers.limit = 65536;
	r->trailers.buf.len = 0;
	r->n_trailers = 0;
	for (size_t i = 0; i < n && rc == 0; i++) {
		if (only_trailing && !trailer_field(&fields[i]))
			continue;
		rc = zw_h2_fields_add(&r->trailers, (const uint8_t *)fields[i].name,
		                      fields[i].name_len, (const uint8_t *)fields[i].value,
		                      fields[i].value_len);
		r->n_trailers += rc == 0;
	}
	if (!s->chunked)
		return rc;
	size_t mark = s->text.buf.len;
	rc = zw_obuf_add(&s->text, "0\r\n", 3);
	for (size_t i = 0; i < n && rc == 0; i++)
		if (!only_trailing || trailer_field(&fields[i]))
			rc = field_line(&s->text, &fields[i]);
	if (rc == 0)
		rc = zw_obuf_add(&s->text, "\r\n", 2);
	if (rc < 0) {
		/* Too large for the text: the client side still gets the end. */
		s->text.buf.len = mark;
		rc = zw_obuf_add(&s->text, "0\r\n\r\n", 5);
	}
	return rc;
}

static int on_head(void *ctx, void *stream, int status, const struct zw_h2_field *fields, size_t n,
                   int end)
{
	struct zw_h2ustream *s = stream;
	(void)ctx;
	if (!s->r)
		return -1;
	struct zw_request *r = s->r;
	/* A gRPC trailers-only answer becomes a head and a trailer section,
	 * so an HTTP/2 client gets grpc-status where gRPC looks for it. */
	int split = end && r->grpc && !r->is_head;
	int has_len = 0;
	int rc = status_line(&s->text, status);
	for (size_t i = 0; i < n && rc == 0; i++) {
		if (split && trailer_field(&fields[i]))
			continue;
		has_len |= field_is(&fields[i], "content-length");
		rc = field_line(&s->text, &fields[i]);
	}
	if (rc == 0 && end && !split && !has_len && !r->is_head && status != 204 && status != 304)
		rc = zw_obuf_add(&s->text, "content-length: 0\r\n", 19);
	if (rc == 0 && (split || !end) && !has_len) {
		s->chunked = 1;
		rc = zw_obuf_add(&s->text, "transfer-encoding: chunked\r\n", 28);
	}
	if (rc == 0)
		rc = zw_obuf_add(&s->text, "\r\n", 2);
	if (rc == 0 && split)
		rc = add_trailers(s, fields, n, 1);
	if (rc < 0) {
		s->text.buf.len = 0;
		s->in_cb = 1;
		zw_fwd_fail(r, 502, "response head from the HTTP/2 backend too large");
		cb_end(s);
		return -1;
	}
	s->in_cb = 1;
	relay(s);
	cb_end(s);
	return 0;
}

/* An interim head (100 Continue, 103 Early Hints) goes to the client side
 * as HTTP/1.1 text, as an HTTP/1.1 backend's would: forward.c relays it
 * before the final head (at most ZW_MAX_INTERIM per request). */
static void on_interim(void *ctx, void *stream, int status, const struct zw_h2_field *fields,
                       size_t n)
{
	struct zw_h2ustream *s = stream;
	(void)ctx;
	if (!s->r || status == 101)
		return;
	int rc = status_line(&s->text, status);
	for (size_t i = 0; i < n && rc == 0; i++)
		rc = field_line(&s->text, &fields[i]);
	if (rc == 0)
		rc = zw_obuf_add(&s->text, "\r\n", 2);
	if (rc < 0) {
		s->text.buf.len = 0; /* too large to relay: skipped */
		return;
	}
	s->in_cb = 1;
	relay(s);
	cb_end(s);
}

static int on_data(void *ctx, void *stream, const uint8_t *data, size_t len, int end)
{
	struct zw_h2ustream *s = stream;
	struct zw_h2pconn *pc = ctx;
	if (!s->r)
		return -1;
	int rc = 0;
	if (s->chunked && len)
		rc = zw_h2_text_chunk(&s->text, len);
	if (rc == 0 && len)
		rc = zw_obuf_add(&s->text, data, len);
	if (rc == 0 && s->chunked && len)
		rc = zw_obuf_add(&s->text, "\r\n", 2);
	if (rc == 0 && s->chunked && end)
		rc = zw_obuf_add(&s->text, "0\r\n\r\n", 5);
	if (rc < 0) {
		s->text.buf.len = 0;
		return -1;
	}
	s->unconsumed += len;
	s->in_cb = 1;
	int gone = relay(s);
	if (cb_end(s) || gone)
		return 0;
	if (s->unconsumed && !s->r->ops->busy(s->r)) {
		zw_h2up_consume(pc->h2, s->id, s->unconsumed);
		s->unconsumed = 0;
	}
	return 0;
}

static void on_trailers(void *ctx, void *stream, const struct zw_h2_field *fields, size_t n)
{
	struct zw_h2ustream *s = stream;
	(void)ctx;
	if (!s->r)
		return;
	add_trailers(s, fields, n, 0);
	s->in_cb = 1;
	relay(s);
	cb_end(s);
}

static void on_close(void *ctx, void *stream, uint32_t code, int retry)
{
	struct zw_h2ustream *s = stream;
	struct zw_h2pconn *pc = ctx;
	struct zw_request *r = s->r;
	s->stream_gone = 1;
	if (!r) {
		stream_free(s);
		return;
	}
	s->in_cb = 1;
	if (!r->resp_started && retry && s->body_in == 0 && !r->retried) {
		/* The backend did not take it (GOAWAY, REFUSED_STREAM): again,
		 * on another connection. */
		r->retried = 1;
		zw_h2pool_release(r);
		cb_end(s);
		zw_h2pool_start(r);
		return;
	}
	if (!r->resp_started && pc->connect_status) {
		snprintf(r->w->tls_err, sizeof(r->w->tls_err), "%s", pc->tls_err);
		zw_h2pool_release(r);
		cb_end(s);
		r->state = ZW_REQ_CONNECT;
		zw_fwd_connect_failed(r, pc->connect_status);
		return;
	}
	zw_log(ZW_LOG_INFO, "h2_upstream_stream_ended", "target=%s error=%u retry=%d started=%d",
	       r->key ? r->key : "-", code, retry, r->resp_started);
	if (!r->resp_started) {
		char why[160];
		snprintf(why, sizeof(why), "HTTP/2 backend %s:%u ended the stream (error %u)",
		         r->ep ? r->ep->ip : "-", r->ep ? r->ep->port : 0, code);
		zw_fwd_fail(r, 502, why);
	} else {
		/* Part of the response went out: the client must not take it as
		 * whole (a gRPC client gets UNAVAILABLE from the client side). */
		zw_metrics_event(&r->w->metrics, r->key ? r->key : "", ZW_EV_UPSTREAM_ERROR);
		r->ops->abort(r);
	}
	cb_end(s);
}

static void on_writable(void *ctx, void *stream)
{
	struct zw_h2ustream *s = stream;
	(void)ctx;
	if (!s->r || s->r->req_done)
		return;
	s->in_cb = 1;
	s->r->ops->body_more(s->r);
	cb_end(s);
}

static const struct zw_h2up_callbacks session_cb = {on_head,  on_data,     on_trailers,
                                                    on_close, on_writable, on_interim};

/* ---- request ------------------------------------------------------------------- */

/* http1.c's body hook on the request text: de-framed body bytes. */
static void on_req_body(void *ctx, const char *at, size_t len)
{
	struct zw_h2ustream *s = ctx;
	if (s->body_bad || !s->pc || !s->pc->h2 ||
	    zw_h2up_data(s->pc->h2, s->id, (const uint8_t *)at, len, 0) < 0)
		s->body_bad = 1;
	else
		s->body_in += len;
}

/* Ends the backend stream's request body: with the trailer section of the
 * chunked request text (fields a trailer must not carry left out,
 * zw_http_trailer_dropped), else with END_STREAM. Returns 0 or -1. */
static int end_request_body(struct zw_h2ustream *s)
{
	size_t n = s->qh.n_trailers, k = 0;
	struct zw_h2_field *f = n ? malloc(n * sizeof(*f)) : NULL;
	if (n && !f)
		return -1;
	if (n)
		zw_h2_fields_list(&s->qtrailers, n, f);
	for (size_t i = 0; i < n; i++)
		if (!zw_http_trailer_dropped(f[i].name, f[i].name_len))
			f[k++] = f[i];
	int rc = k ? zw_h2up_trailers(s->pc->h2, s->id, f, k)
	           : zw_h2up_data(s->pc->h2, s->id, NULL, 0, 1);
	free(f);
	return rc;
}

/* Feeds request body text through the request parser. Returns 0 or -1. */
static int body_text(struct zw_h2ustream *s, const char *data, size_t len)
{
	if (s->body_end_sent)
		return 0;
	size_t used = 0;
	int res = zw_http_body_execute(&s->qp, len ? data : "", len, &used);
	if (res == ZW_BODY_EBAD || s->body_bad)
		return -1;
	if (res == ZW_BODY_DONE || res == ZW_BODY_UPGRADE) {
		s->body_end_sent = 1;
		if (end_request_body(s) < 0)
			return -1;
	}
	return 0;
}

int zw_h2pool_body(struct zw_request *r, const char *data, size_t len)
{
	struct zw_h2ustream *s = r->h2s;
	if (!s || s->stream_gone || !s->pc || !s->pc->h2)
		return -1;
	int rc = body_text(s, data, len);
	pc_flush(s->pc);
	return rc;
}

/* Appends a NUL-terminated copy of n bytes at p to s->strs; returns its
 * offset or -1. */
static long keep_str(struct zw_h2ustream *s, const char *p, size_t n)
{
	size_t off = s->strs.buf.len;
	if (zw_obuf_add(&s->strs, p, n) < 0 || zw_obuf_add(&s->strs, "", 1) < 0)
		return -1;
	return (long)off;
}

/* Parses r's request text back into an HTTP/2 head and opens the stream on
 * pc. Returns 0, or -1 with *why set. */
static int open_stream(struct zw_h2ustream *s, struct zw_h2pconn *pc, const char **why)
{
	struct zw_request *r = s->r;
	struct zw_server *srv = r->w->s;
	struct zw_obuf out = {.limit = srv->limits.max_head_bytes + 4096};
	int rc = -1;
	struct zw_h2_field *fields = NULL;
	*why = "request head too large to forward";
	if (r->ops->request_head(r, &out) < 0 || (r->traced && zw_observe_tracing(srv->d.obs) &&
	                                          zw_trace_rewrite_head(&out, &r->trace) < 0))
		goto out;
	size_t used = 0;
	*why = "request head could not be translated for the HTTP/2 backend";
	if (zw_http_head_execute(&s->qp, &s->qh, out.buf.data, out.buf.len, &used) !=
	            ZW_HTTP_HEAD_DONE ||
	    used != out.buf.len)
		goto out;
	size_t dummy = 0;
	int nobody = zw_http_body_execute(&s->qp, "", 0, &dummy) == ZW_BODY_DONE;
	s->body_end_sent = nobody;
	size_t host_len = 0;
	const char *host = zw_http_find(&s->qh, "host", &host_len);
	const char *method = llhttp_method_name((llhttp_method_t)s->qp.method);
	s->strs.limit = s->qh.url_len + host_len + 2;
	long path_off = keep_str(s, s->qh.buf + s->qh.url_off, s->qh.url_len);
	long host_off = host ? keep_str(s, host, host_len) : 0;
	if (path_off < 0 || host_off < 0)
		goto out;
	fields = malloc((s->qh.n_fields + 1) * sizeof(*fields));
	if (!fields)
		goto out;
	size_t n = 0;
	for (size_t i = 0; i < s->qh.n_fields; i++) {
		const struct zw_http_field *f = &s->qh.fields[i];
		fields[n++] =
		        (struct zw_h2_field){s->qh.buf + f->name_off, s->qh.buf + f->value_off,
		                             f->name_len, f->value_len};
	}
	/* gRPC servers want `te: trailers`, a hop-by-hop field the HTTP/1.1
	 * text no longer has (also for HTTP/1.1 clients speaking gRPC). */
	size_t ct_len = 0;
	const char *ct = zw_http_find(&s->qh, "content-type", &ct_len);
	if (r->grpc || (ct && ct_len >= 16 && strncasecmp(ct, "application/grpc", 16) == 0))
		fields[n++] = (struct zw_h2_field){"te", "trailers", 2, 8};
	struct zw_h2up_head h = {
	        .method = method,
	        .path = s->strs.buf.data + path_off,
	        .authority = host ? s->strs.buf.data + host_off : NULL,
	        .fields = fields,
	        .n_fields = n,
	};
	*why = "HTTP/2 backend connection cannot open a stream";
	s->id = zw_h2up_request(pc->h2, &h, nobody, s);
	if (s->id < 0)
		goto out;
	rc = 0;
out:
	free(fields);
	zw_buf_free(&out.buf);
	return rc;
}

/* ---- connections ------------------------------------------------------------------ */

static void pc_free_if_done(struct zw_h2pconn *pc)
{
	if (pc->closed && pc->writes == 0 && !pc->in_call && !pc->timer_open)
		free(pc);
}

static void on_idle_closed(uv_handle_t *h)
{
	struct zw_h2pconn *pc = h->data;
	pc->timer_open = 0;
	pc_free_if_done(pc);
}

static void pc_write_cb(uv_write_t *req, int status)
{
	struct zw_h2pconn *pc = zw_dp_write_arg(req);
	pc->writes--;
	if (pc->closed) {
		pc_free_if_done(pc);
		return;
	}
	if (status < 0) {
		pc_close(pc);
		return;
	}
	pc_flush(pc);
}

static void on_idle(uv_timer_t *t)
{
	struct zw_h2pconn *pc = t->data;
	if (!pc->closed && pc->h2 && zw_h2up_streams(pc->h2) == 0)
		pc_close(pc);
}

/* Writes out what the session has while the socket keeps up; closes the
 * connection when the session is over; arms the idle timer without
 * streams. */
static void pc_flush_now(struct zw_h2pconn *pc)
{
	if (pc->closed)
		return;
	if (pc->in_call) {
		pc->again = 1;
		return;
	}
	if (!pc->connected)
		return; /* the session's frames wait for the connection */
	pc->in_call = 1;
	do {
		pc->again = 0;
		while (!pc->dead && zw_upstream_queued(pc->u) < MAX_SOCKET_QUEUE) {
			const uint8_t *data;
			size_t len = 0;
			if (zw_h2up_output(pc->h2, &data, &len) < 0) {
				pc->dead = 1;
				break;
			}
			if (len == 0)
				break;
			uv_buf_t b = uv_buf_init((char *)data, (unsigned)len);
			int rc = zw_upstream_write(pc->u, &b, 1, pc_write_cb, pc);
			if (rc < 0)
				pc->dead = 1;
			else if (rc > 0)
				pc->writes++;
		}
	} while (pc->again && !pc->dead);
	pc->in_call = 0;
	if (pc->dead || zw_h2up_done(pc->h2)) {
		pc_close(pc);
		return;
	}
	uint64_t idle = pc->w->s->d.cfg->upstream_idle_timeout_ms;
	if (zw_h2up_streams(pc->h2) == 0 && idle)
		uv_timer_start(&pc->idle, on_idle, idle, 0);
	else
		uv_timer_stop(&pc->idle);
}

static void on_defer(struct zw_dp_defer *d)
{
	pc_flush_now((struct zw_h2pconn *)d);
}

/* Output is due: written once at the end of the loop turn, so the frames
 * of every stream opened or fed during the turn leave in one system call. */
static void pc_flush(struct zw_h2pconn *pc)
{
	if (pc->closed)
		return;
	if (pc->in_call)
		pc->again = 1;
	else
		zw_dp_defer(pc->w, &pc->defer);
}

static void pc_close(struct zw_h2pconn *pc)
{
	if (pc->closed)
		return;
	if (pc->in_call) {
		pc->dead = 1;
		return;
	}
	zw_log(ZW_LOG_DEBUG, "h2_upstream_close", "streams=%zu dead=%d connect_status=%d",
	       zw_h2up_streams(pc->h2), pc->dead, pc->connect_status);
	pc->closed = 1;
	zw_dp_defer_cancel(pc->w, &pc->defer);
	ZW_LIST_UNLINK(pc->w->h2conns, pc);
	/* Streams still open end now (their requests answer or reset). */
	pc->in_call = 1;
	zw_h2up_free(pc->h2);
	pc->h2 = NULL;
	pc->in_call = 0;
	if (pc->u) {
		pc->u->owner = NULL;
		zw_upstream_close(pc->u);
		pc->u = NULL;
	}
	uv_close((uv_handle_t *)&pc->idle, on_idle_closed);
}

static void on_pc_connect(struct zw_upstream *u, int status)
{
	struct zw_h2pconn *pc = u->owner;
	if (!pc)
		return;
	zw_fwd_tls_connected(pc->w, u, status, NULL, pc->tls_err, sizeof(pc->tls_err));
	if (status < 0) {
		pc->connect_status = status;
		pc_close(pc);
		return;
	}
	pc->connected = 1;
	if (zw_upstream_read_start(u) < 0) {
		pc_close(pc);
		return;
	}
	pc_flush(pc);
}

void zw_h2pool_read_cb(struct zw_upstream *u, ssize_t nread, const char *data)
{
	struct zw_h2pconn *pc = u->owner;
	if (!pc || pc->closed || nread == 0)
		return;
	if (nread < 0) {
		zw_log(ZW_LOG_INFO, "h2_upstream_closed", "streams=%zu why=\"%s\"",
		       zw_h2up_streams(pc->h2), uv_strerror((int)nread));
		pc_close(pc);
		return;
	}
	pc->in_call = 1;
	if (zw_h2up_feed(pc->h2, (const uint8_t *)data, (size_t)nread) < 0) {
		zw_log(ZW_LOG_INFO, "h2_upstream_protocol_error", "streams=%zu",
		       zw_h2up_streams(pc->h2));
		pc->dead = 1;
	}
	pc->in_call = 0;
	pc_flush(pc);
}

/* A connection to r's endpoint with room for a stream, dialed when none
 * has room and the address has fewer than MAX_CONNS_PER_ADDR. Returns it,
 * or NULL with *why set. */
static struct zw_h2pconn *pc_get(struct zw_request *r, const char **why)
{
	struct zw_worker *w = r->w;
	const struct zw_endpoint *ep = r->ep;
	size_t same = 0;
	struct zw_upstream_tls tls;
	char name[256];
	int use_tls = zw_fwd_upstream_tls(r, 1, &tls, name, sizeof(name));
	*why = "TLS to the backend is not available (server name too long)";
	if (use_tls < 0)
		return NULL;
	if (!use_tls)
		name[0] = '\0';
	for (struct zw_h2pconn *pc = w->h2conns; pc; pc = pc->next) {
		if (pc->dead || pc->addr_len != ep->addr_len ||
		    memcmp(&pc->addr, &ep->addr, ep->addr_len) != 0 ||
		    strcmp(pc->tls_name, name) != 0)
			continue;
		if (zw_h2up_can_open(pc->h2))
			return pc;
		same++;
	}
	*why = "every HTTP/2 connection to the backend is full";
	if (same >= MAX_CONNS_PER_ADDR || w->draining)
		return NULL;
	struct zw_h2pconn *pc = calloc(1, sizeof(*pc));
	*why = "out of memory";
	if (!pc)
		return NULL;
	pc->defer.run = on_defer;
	pc->w = w;
	memcpy(&pc->addr, &ep->addr, ep->addr_len);
	pc->addr_len = ep->addr_len;
	snprintf(pc->tls_name, sizeof(pc->tls_name), "%s", name);
	if (zw_h2up_new(NULL, &session_cb, pc, &pc->h2) < 0) {
		free(pc);
		return NULL;
	}
	int rc = zw_upstream_dial(&w->h2pool, (const struct sockaddr *)&ep->addr, ep->addr_len,
	                          w->s->d.cfg->connect_timeout_ms, use_tls ? &tls : NULL, pc,
	                          on_pc_connect, &pc->u);
	if (rc < 0) {
		zw_h2up_free(pc->h2);
		free(pc);
		*why = "upstream connection failed";
		return NULL;
	}
	uv_timer_init(&w->loop, &pc->idle);
	pc->idle.data = pc;
	pc->timer_open = 1;
	ZW_LIST_PUSH(w->h2conns, pc);
	return pc;
}

void zw_h2pool_start(struct zw_request *r)
{
	struct zw_worker *w = r->w;
	const char *why = NULL;
	r->state = ZW_REQ_CONNECT;
	struct zw_h2pconn *pc = pc_get(r, &why);
	if (!pc) {
		zw_fwd_fail(r, 503, why);
		return;
	}
	struct zw_h2ustream *s = calloc(1, sizeof(*s));
	if (!s) {
		zw_fwd_fail(r, 503, "out of memory");
		return;
	}
	s->r = r;
	s->pc = pc;
	s->text.limit = w->s->limits.max_head_bytes + (1 << 20);
	zw_http_head_init(&s->qh, &w->s->limits);
	zw_http_parser_init(&s->qp, HTTP_REQUEST, &s->qh);
	s->qh.on_body = on_req_body;
	s->qh.body_ctx = s;
	s->qtrailers.limit = w->s->limits.max_head_bytes + 2 * w->s->limits.max_headers;
	s->qh.trailers = &s->qtrailers;
	zw_http_head_init(&s->fake.head, &w->s->limits);
	zw_http_parser_init(&s->fake.parser, HTTP_RESPONSE, &s->fake.head);
	zw_http_parser_expect_head_response(&s->fake.parser, r->is_head);
	s->fake.owner = r;
	if (open_stream(s, pc, &why) < 0) {
		zw_log(ZW_LOG_INFO, "h2_upstream_error", "target=%s why=\"%s\"",
		       r->key ? r->key : "-", why);
		stream_free(s);
		zw_fwd_fail(r, 502, why);
		return;
	}
	r->h2s = s;
	r->up = &s->fake;
	if (!r->req_done) {
		/* Body bytes that came with the head (HTTP/1.1 clients). */
		const char *data = NULL;
		size_t len = 0;
		int br = r->ops->early_body(r, &data, &len);
		if (br == ZW_BODY_EBAD || (len && body_text(s, data, len) < 0)) {
			zw_fwd_fail(r, 400, "malformed request body");
			return;
		}
		if (len)
			r->ops->early_body_sent(r);
	}
	pc_flush(pc);
	if (r->h2s == s)
		zw_fwd_head_sent(r);
}

void zw_h2pool_drain(struct zw_worker *w)
{
	struct zw_h2pconn *pc = w->h2conns;
	while (pc) {
		struct zw_h2pconn *next = pc->next;
		if (zw_h2up_streams(pc->h2) == 0) {
			pc_close(pc);
		} else {
			zw_h2up_shutdown(pc->h2);
			pc_flush(pc);
		}
		pc = next;
	}
}

void zw_h2pool_close_all(struct zw_worker *w)
{
	while (w->h2conns)
		pc_close(w->h2conns);
}
