/* zerowire-proxy: HTTP/2 client connections with prior knowledge (h2c) on
 * the HTTP port (see datapath.h and docs/http2.md). client.c detects the
 * connection preface and hands the connection's bytes to a session here;
 * h2conn.c (nghttp2, no I/O) turns them into streams, and each stream is
 * the client side of one struct zw_request: the same dispatch, routing,
 * hold, counting and limits as HTTP/1.1, and forward.c talks HTTP/1.1 to
 * the backend.
 *
 * Translation. A request head becomes an HTTP/1.1 head (pseudo-headers to
 * the request line and Host, cookies joined, a body without Content-Length
 * sent chunked), parsed by http1.c like any other so every check applies.
 * The response head loses its hop-by-hop fields; its body reaches the
 * stream de-chunked (http1.c's body hook), bounded by h2conn's per-stream
 * buffer: a short take stops reading the upstream until nghttp2 has sent
 * what waits. Request body bytes give their flow-control window back only
 * once written upstream, so a held or slow request stops its client's
 * stream, never the connection. Trailers cross both ways (the client's as
 * the chunked body's trailer section, an HTTP/1.1 backend's as trailer
 * HEADERS) and interim 1xx heads are relayed (docs/http2.md, "Trailers and
 * interim responses"). RST_STREAM from the client ends its request only;
 * draining sends GOAWAY. */
#include "datapath.h"

#include "h2upstream.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MAX_SOCKET_QUEUE (256 * 1024) /* output waiting in the socket: stop producing */
#define MAX_RESP_FIELDS  256

struct zw_h2client {
	struct zw_dp_defer defer; /* first: a flush is due at the end of the loop turn */
	struct zw_worker *w;
	struct zw_h1conn *conn;
	struct zw_h2conn *h2;
	const char *client_ip;
	int in_call;  /* inside an h2conn call: output waits until it returns */
	int again;    /* output was asked for meanwhile */
	int dead;     /* the connection ends once the output is out */
	int shutdown; /* GOAWAY sent */
	int freeing;
	size_t streams; /* open streams (the idle timer runs at 0) */
};

struct h2stream {
	struct zw_request r; /* first: the request's ops find the stream from it */
	struct zw_h2client *s;
	int32_t id;
	uv_timer_t timer;
	int pending; /* upstream writes that reference r */
	int gone;    /* h2conn closed the stream: no more calls on it */
	int ended;   /* the request's accounting is over */
	int freeing;
	llhttp_t parser; /* the request as HTTP/1.1 */
	struct zw_http_head head;
	int chunked;         /* the body goes upstream chunked */
	struct zw_obuf body; /* request body received, not yet sent upstream */
	int body_end;        /* the client ended its body */
	int body_fin_sent;   /* ...and the upstream has all of it */
	struct zw_obuf resp; /* response body not yet taken by h2conn */
	size_t resp_off;
	int resp_end;            /* the response is complete after resp */
	int head_sent;           /* a response head went to the client */
	struct zw_obuf trailers; /* the backend's trailers (taken from the request at its end) */
	size_t n_trailers;
	int grpc_done;               /* a gRPC status went to the client */
	struct zw_obuf req_trailers; /* the client's trailer section, for the chunked body's end */
	size_t n_req_trailers;
	struct zw_obuf up_trailers; /* an HTTP/1.1 backend's chunked trailers (head.trailers) */
};

static const struct zw_client_ops h2_ops;

static struct h2stream *stream_of(struct zw_request *r)
{
	return (struct h2stream *)r;
}

/* ---- output --------------------------------------------------------------- */

/* Writes out what the session has for the client while the socket keeps
 * up; closes the connection when the session is over. */
static void flush_now(struct zw_h2client *s)
{
	if (s->in_call) {
		s->again = 1;
		return;
	}
	s->in_call = 1;
	do {
		s->again = 0;
		while (zw_client_write_queue(s->conn) < MAX_SOCKET_QUEUE) {
			const uint8_t *data;
			size_t len = 0;
			if (zw_h2conn_output(s->h2, &data, &len) < 0) {
				s->dead = 1;
				break;
			}
			if (len == 0)
				break;
			if (zw_client_write(s->conn, (const char *)data, len) < 0) {
				s->dead = 1;
				break;
			}
		}
	} while (s->again && !s->dead);
	s->in_call = 0;
	if (s->dead || zw_h2conn_done(s->h2))
		zw_client_end(s->conn);
}

static void on_defer(struct zw_dp_defer *d)
{
	flush_now((struct zw_h2client *)d);
}

/* Output is due: written once at the end of the loop turn, so the frames
 * of every stream event of the turn leave in one system call. */
static void flush(struct zw_h2client *s)
{
	if (s->in_call)
		s->again = 1;
	else
		zw_dp_defer(s->w, &s->defer);
}

/* ---- stream life ---------------------------------------------------------- */

static void on_stream_timer_closed(uv_handle_t *h)
{
	struct h2stream *st = stream_of(h->data);
	zw_http_head_free(&st->head);
	zw_buf_free(&st->body.buf);
	zw_buf_free(&st->resp.buf);
	zw_buf_free(&st->trailers.buf);
	zw_buf_free(&st->req_trailers.buf);
	zw_buf_free(&st->up_trailers.buf);
	free(st);
}

/* Frees st once h2conn forgot it, its request is over and no upstream
 * write points at it. */
static void stream_maybe_free(struct h2stream *st)
{
	if (!st->gone || !st->ended || st->pending > 0 || st->freeing)
		return;
	st->freeing = 1;
	uv_close((uv_handle_t *)&st->timer, on_stream_timer_closed);
}

/* Ends st's request (idempotent): the outcome recorded when none was,
 * everything it holds given back. */
static void stream_end_request(struct h2stream *st)
{
	struct zw_request *r = &st->r;
	if (st->ended)
		return;
	st->ended = 1;
	uv_timer_stop(&st->timer);
	if (r->state != ZW_REQ_HEAD && !r->resp_done && r->status == 0 && r->start_ms)
		zw_request_record(r, 499); /* the client reset the stream */
	zw_fwd_release(r);
	zw_request_cleanup(r);
}

/* Ends the response with the backend's trailers. */
static void send_trailers(struct h2stream *st)
{
	struct zw_h2_field f[256];
	size_t n = st->n_trailers < 256 ? st->n_trailers : 256;
	zw_h2_fields_list(&st->trailers, n, f);
	zw_h2conn_trailers(st->s->h2, st->id, f, n);
}

/* Pushes response bytes that wait into h2conn; ends the body (with the
 * backend's trailers, if any) when all went. Returns nonzero while bytes
 * still wait. */
static int push_response(struct h2stream *st)
{
	if (st->gone || !st->s)
		return 0;
	int trailers = st->resp_end == 1 && st->n_trailers;
	size_t n = st->resp.buf.len - st->resp_off;
	if (n > 0) {
		long took = zw_h2conn_data(st->s->h2, st->id,
		                           (const uint8_t *)st->resp.buf.data + st->resp_off, n,
		                           st->resp_end && !trailers);
		if (took < 0)
			return 0;
		st->resp_off += (size_t)took;
		if (st->resp_off < st->resp.buf.len)
			return 1;
		st->resp.buf.len = st->resp_off = 0;
	} else if (st->resp_end && !trailers) {
		zw_h2conn_data(st->s->h2, st->id, NULL, 0, 1);
	}
	if (trailers)
		send_trailers(st);
	return 0;
}

/* Percent-encodes text (up to its first newline) into out as a
 * grpc-message value. */
static void grpc_message(char *out, size_t cap, const char *text)
{
	size_t k = 0;
	for (const char *p = text; *p && *p != '\n' && k + 4 < cap; p++) {
		unsigned char c = (unsigned char)*p;
		if (c >= 0x20 && c < 0x7f && c != '%')
			out[k++] = (char)c;
		else
			k += (size_t)snprintf(out + k, cap - k, "%%%02X", c);
	}
	out[k] = 0;
}

/* Ends a gRPC stream with the status a proxy-made HTTP `status` stands
 * for and `text` as its message: trailers-only when no head went out yet,
 * else trailers after what was queued. Returns 0 or -1. */
static int grpc_close(struct h2stream *st, int status, const char *text)
{
	char code[12], msg[256];
	if (st->gone || st->grpc_done)
		return -1;
	st->grpc_done = 1;
	snprintf(code, sizeof(code), "%d",
	         zw_h2up_grpc_status(status, zw_request_past_deadline(&st->r)));
	grpc_message(msg, sizeof(msg), text);
	struct zw_h2_field f[] = {{"content-type", "application/grpc", 12, 16},
	                          {"grpc-status", code, 11, strlen(code)},
	                          {"grpc-message", msg, 12, strlen(msg)}};
	if (st->head_sent)
		return zw_h2conn_trailers(st->s->h2, st->id, f + 1, 2);
	st->head_sent = 1;
	return zw_h2conn_respond(st->s->h2, st->id, 200, f, 3, 1);
}

/* The response is complete: end the stream's body and the request. */
static void stream_finish(struct h2stream *st)
{
	st->resp_end = 1;
	push_response(st);
	stream_end_request(st);
	if (st->s)
		flush(st->s);
}

int zw_h2_response_fields(const char *text, size_t len, int *status, struct zw_h2_field *fields,
                          size_t max, size_t *n, const char **body, size_t *body_len)
{
	const char *lim = text + len;
	if (len < 12 || memcmp(text, "HTTP/1.", 7) != 0)
		return -1;
	const char *d = text + 9; /* "HTTP/1.1 NNN" */
	if (d[0] < '1' || d[0] > '5' || d[1] < '0' || d[1] > '9' || d[2] < '0' || d[2] > '9')
		return -1;
	*status = (d[0] - '0') * 100 + (d[1] - '0') * 10 + (d[2] - '0');
	*n = 0;
	/* One pass, line by line (each ends with CRLF) up to the blank line. */
	const char *p = memchr(text, '\n', len);
	if (!p)
		return -1;
	p++;
	for (;;) {
		const char *eol = memchr(p, '\n', (size_t)(lim - p));
		if (!eol || eol == p || eol[-1] != '\r')
			return -1;
		if (eol == p + 1)
			break; /* the blank line */
		const char *end = eol - 1;
		const char *colon = memchr(p, ':', (size_t)(end - p));
		if (!colon || *n == max)
			return -1;
		const char *v = colon + 1;
		while (v < end && (*v == ' ' || *v == '\t'))
			v++;
		fields[(*n)++] = (struct zw_h2_field){.name = p,
		                                      .name_len = (size_t)(colon - p),
		                                      .value = v,
		                                      .value_len = (size_t)(end - v)};
		p = eol + 1;
	}
	*body = p + 2;
	*body_len = (size_t)(lim - *body);
	return 0;
}

/* Submits a response given as HTTP/1.1 text (status line, fields, then
 * with_body: the body) on st; interim: a 1xx head before the final one.
 * Returns 0 or -1. */
static int respond_text(struct h2stream *st, const char *text, size_t len, int with_body,
                        int interim)
{
	struct zw_h2_field fields[MAX_RESP_FIELDS];
	size_t n = 0, blen = 0;
	const char *body = NULL;
	int status = 0;
	if (zw_h2_response_fields(text, len, &status, fields, MAX_RESP_FIELDS, &n, &body, &blen) <
	    0)
		return -1;
	if (status < 200 || status == 204) {
		/* No content by definition (RFC 9110 8.6: no Content-Length on
		 * them); http1.c framed it so, but an HTTP/2 client (nghttp2)
		 * resets a stream whose 204 or 1xx carries one. */
		size_t k = 0;
		for (size_t i = 0; i < n; i++)
			if (fields[i].name_len != 14 ||
			    strncasecmp(fields[i].name, "content-length", 14) != 0)
				fields[k++] = fields[i];
		n = k;
	}
	if (interim)
		return zw_h2conn_interim(st->s->h2, st->id, status, fields, n);
	if (!with_body)
		blen = 0;
	if (zw_h2conn_respond(st->s->h2, st->id, status, fields, n, 0) < 0)
		return -1;
	st->head_sent = 1;
	if (blen && zw_obuf_add(&st->resp, body, blen) < 0)
		return -1;
	return 0;
}

/* A response of the proxy's own begins: st's request ends with status. */
static void local_answer(struct h2stream *st, int status)
{
	struct zw_request *r = &st->r;
	r->status = status;
	r->state = ZW_REQ_LOCAL;
	uv_timer_stop(&st->timer);
	zw_request_record(r, status);
	r->resp_done = 1;
}

/* Sends a response the proxy built as HTTP/1.1 text and ends the request. */
static void respond_built(struct h2stream *st, struct zw_obuf *out, int status)
{
	struct zw_request *r = &st->r;
	local_answer(st, status);
	int rc = st->gone ? -1 : respond_text(st, out->buf.data, out->buf.len, !r->is_head, 0);
	free(out->buf.data);
	if (rc < 0) {
		r->ops->abort(r);
		return;
	}
	r->bytes_out += out->buf.len;
	stream_finish(st);
}

/* ---- request body ----------------------------------------------------------- */

/* Appends the last chunk and the trailer section (the client's trailers
 * kept by on_trailers) to f. Returns 0 or -1. */
static int last_chunk(const struct h2stream *st, struct zw_obuf *f)
{
	struct zw_h2_field t[256];
	size_t n = st->n_req_trailers < 256 ? st->n_req_trailers : 256;
	int rc = zw_obuf_add(f, "0\r\n", 3);
	zw_h2_fields_list(&st->req_trailers, n, t);
	for (size_t i = 0; i < n && rc == 0; i++)
		if (zw_obuf_add(f, t[i].name, t[i].name_len) < 0 || zw_obuf_add(f, ": ", 2) < 0 ||
		    zw_obuf_add(f, t[i].value, t[i].value_len) < 0 || zw_obuf_add(f, "\r\n", 2) < 0)
			rc = -1;
	return rc == 0 ? zw_obuf_add(f, "\r\n", 2) : -1;
}

/* Sends the request body that waits upstream (chunked when the client gave
 * no length), gives its window back, and ends the body when the client
 * did. Stops while the upstream has not taken what it got. */
static void pump_body(struct h2stream *st)
{
	struct zw_request *r = &st->r;
	if (st->ended || r->state != ZW_REQ_PROXY || !r->up || r->req_done || zw_fwd_busy(r))
		return;
	size_t n = st->body.buf.len;
	int fin = st->body_end;
	if (n == 0 && !fin)
		return;
	/* "name: value\r\n" per trailer: 2 bytes more than its pair. */
	size_t tl = fin ? st->req_trailers.buf.len + 2 * st->n_req_trailers : 0;
	struct zw_obuf f = {.limit = n + 64 + tl};
	int rc = 0;
	if (st->chunked) {
		if (n > 0)
			rc = zw_h2_text_chunk(&f, n);
		if (rc == 0 && n > 0)
			rc = zw_obuf_add(&f, st->body.buf.data, n);
		if (rc == 0 && n > 0)
			rc = zw_obuf_add(&f, "\r\n", 2);
		if (rc == 0 && fin)
			rc = last_chunk(st, &f);
	} else if (n > 0) {
		rc = zw_obuf_add(&f, st->body.buf.data, n);
	}
	if (rc < 0) {
		zw_buf_free(&f.buf);
		r->ops->abort(r);
		return;
	}
	st->body.buf.len = 0;
	if (fin)
		r->req_done = 1;
	rc = zw_fwd_body(r, f.buf.data, f.buf.len);
	zw_buf_free(&f.buf);
	if (rc < 0)
		return; /* answered or aborted */
	if (n > 0 && !st->gone) {
		zw_h2conn_consume(st->s->h2, st->id, n);
		flush(st->s);
	}
}

/* ---- the client ops (datapath.h) ------------------------------------------- */

static int h2_request_head(struct zw_request *r, struct zw_obuf *out)
{
	struct h2stream *st = stream_of(r);
	struct zw_fwd_info info = {
	        .client_ip = r->client_ip,
	        .proto = st->s ? zw_client_scheme(st->s->conn) : "http",
	        .chunked = st->chunked,
	};
	return zw_http_build_request(out, &st->parser, &st->head, &info);
}

static int h2_early_body(struct zw_request *r, const char **data, size_t *len)
{
	(void)r;
	*data = NULL;
	*len = 0;
	return ZW_BODY_MORE; /* the body follows through body_more */
}

static void h2_early_body_sent(struct zw_request *r)
{
	(void)r;
}

static void h2_body_more(struct zw_request *r)
{
	pump_body(stream_of(r));
}

/* http1.c's body hook: de-chunked response body bytes of the upstream. */
static void on_resp_body(void *ctx, const char *at, size_t len)
{
	struct h2stream *st = ctx;
	if (st->resp_off > 0 && st->resp_off == st->resp.buf.len)
		st->resp.buf.len = st->resp_off = 0;
	if (zw_obuf_add(&st->resp, at, len) < 0)
		st->resp_end = -1; /* cannot happen within the bound; aborts below */
}

static void h2_abort(struct zw_request *r);

/* Relays an interim head of the backend (100 Continue, 103 Early Hints;
 * forward.c bounds how many) as HEADERS without END_STREAM, at once. One
 * that cannot go (the stream is over, too many fields) is skipped: the
 * final response still follows. */
static void relay_interim(struct h2stream *st, struct zw_upstream *u)
{
	struct zw_request *r = &st->r;
	struct zw_obuf out = {.limit = r->w->s->limits.max_head_bytes + 4096};
	struct zw_resp_info info = {0};
	if (!st->gone && zw_http_build_response(&out, &u->parser, &u->head, &info) == 0 &&
	    respond_text(st, out.buf.data, out.buf.len, 0, 1) == 0) {
		r->bytes_out += out.buf.len;
		flush(st->s);
	}
	zw_buf_free(&out.buf);
}

/* Stops the upstream's head from calling into st (body hook, trailer copy). */
static void unhook(struct zw_request *r)
{
	if (!r->up)
		return;
	r->up->head.on_body = NULL;
	r->up->head.trailers = NULL;
}

static int h2_response_head(struct zw_request *r, enum zw_resp_kind kind)
{
	struct h2stream *st = stream_of(r);
	struct zw_upstream *u = r->up;
	if (kind == ZW_RESP_INTERIM) {
		relay_interim(st, u);
		return 0;
	}
	if (kind == ZW_RESP_UPGRADE || st->gone) {
		h2_abort(r);
		return -1;
	}
	struct zw_obuf out = {.limit = r->w->s->limits.max_head_bytes + 4096};
	struct zw_resp_info info = {.cold_start = r->cold};
	int rc = zw_http_build_response(&out, &u->parser, &u->head, &info);
	if (rc == 0)
		rc = respond_text(st, out.buf.data, out.buf.len, 0, 0);
	if (rc == 0)
		r->bytes_out += out.buf.len;
	zw_buf_free(&out.buf);
	if (rc < 0) {
		h2_abort(r);
		return -1;
	}
	u->head.on_body = on_resp_body;
	u->head.body_ctx = st;
	if (!r->h2s) {
		/* An HTTP/1.1 backend's chunked trailers reach the client as a
		 * trailer HEADERS frame (an HTTP/2 backend's come on r). */
		const struct zw_http_limits *lim = &r->w->s->limits;
		st->up_trailers.limit = lim->max_head_bytes + 2 * lim->max_headers;
		u->head.trailers = &st->up_trailers;
	}
	return 0;
}

static int h2_send(struct zw_request *r, const char *data, size_t len)
{
	struct h2stream *st = stream_of(r);
	(void)data; /* the de-chunked bytes came through on_resp_body */
	if (st->resp_end < 0 || st->gone)
		return UV_ENOMEM;
	r->bytes_out += len;
	push_response(st);
	flush(st->s);
	return 0;
}

static int h2_busy(struct zw_request *r)
{
	struct h2stream *st = stream_of(r);
	return st->resp.buf.len > st->resp_off;
}

/* Keeps the n trailer fields an HTTP/1.1 backend sent (st->up_trailers) as
 * the stream's trailers, fields a trailer must not carry left out. */
static void keep_backend_trailers(struct h2stream *st, size_t n)
{
	struct zw_h2_field t[256];
	if (n > 256)
		n = 256;
	zw_h2_fields_list(&st->up_trailers, n, t);
	st->trailers.limit = st->up_trailers.buf.len;
	for (size_t i = 0; i < n; i++)
		if (!zw_http_trailer_dropped(t[i].name, t[i].name_len) &&
		    zw_h2_fields_add(&st->trailers, (const uint8_t *)t[i].name, t[i].name_len,
		                     (const uint8_t *)t[i].value, t[i].value_len) == 0)
			st->n_trailers++;
}

static void h2_finish(struct zw_request *r)
{
	struct h2stream *st = stream_of(r);
	size_t up_n = r->up && r->up->head.trailers ? r->up->head.n_trailers : 0;
	unhook(r);
	/* The trailers go out after the body, which may outlive the request's
	 * accounting: the stream keeps them. */
	st->trailers = r->trailers;
	st->n_trailers = r->n_trailers;
	r->trailers = (struct zw_obuf){0};
	r->n_trailers = 0;
	if (!st->n_trailers && up_n)
		keep_backend_trailers(st, up_n);
	stream_finish(st);
}

/* A gRPC request the proxy answers itself: the status as gRPC's. */
static void grpc_respond(struct h2stream *st, int status, const char *text)
{
	local_answer(st, status);
	if (grpc_close(st, status, text) < 0 && !st->gone)
		zw_h2conn_reset(st->s->h2, st->id, 0x2); /* INTERNAL_ERROR */
	stream_end_request(st);
	if (st->s)
		flush(st->s);
}

static void h2_respond(struct zw_request *r, int status, const char *extra, const char *body,
                       int close)
{
	struct zw_obuf out = {.limit = 1 << 20};
	(void)close; /* a stream ends alone */
	if (r->grpc) {
		grpc_respond(stream_of(r), status, body);
		return;
	}
	if (zw_http_simple_response(&out, status, extra, body, strlen(body), 0) < 0) {
		zw_buf_free(&out.buf);
		h2_abort(r);
		return;
	}
	respond_built(stream_of(r), &out, status);
}

static void h2_respond_static(struct zw_request *r, const struct zw_static_response *p,
                              int default_status, int cold)
{
	struct h2stream *st = stream_of(r);
	struct zw_obuf out = {.limit = 4 << 20};
	int status = 0;
	if (r->grpc) {
		grpc_respond(st, 503, "the target is not ready");
		return;
	}
	if (zw_client_static_text(&out, p, st->head.buf + st->head.url_off, st->head.url_len,
	                          default_status, cold, 0, r->is_head, &status) < 0) {
		zw_buf_free(&out.buf);
		h2_abort(r);
		return;
	}
	respond_built(st, &out, status);
}

static void h2_abort(struct zw_request *r)
{
	struct h2stream *st = stream_of(r);
	unhook(r);
	/* gRPC: UNAVAILABLE rather than a reset (which gRPC reports as an
	 * internal error). */
	if (!st->gone && (!r->grpc || grpc_close(st, 502, "backend stream failed") < 0))
		zw_h2conn_reset(st->s->h2, st->id, 0x2); /* INTERNAL_ERROR */
	stream_end_request(st);
	if (!st->gone)
		flush(st->s);
}

static void h2_tunnel(struct zw_request *r, const char *rest, size_t rest_len)
{
	(void)rest;
	(void)rest_len;
	h2_abort(r); /* no upgrade is asked over HTTP/2 */
}

static void h2_read_start(struct zw_request *r)
{
	pump_body(stream_of(r));
}

static void h2_read_stop(struct zw_request *r)
{
	(void)r; /* a stream not pumped keeps its window: the client stops */
}

static int h2_write_done(struct zw_request *r, int status)
{
	struct h2stream *st = stream_of(r);
	st->pending--;
	if (st->ended) {
		stream_maybe_free(st);
		return 1;
	}
	if (status < 0)
		return 1;
	r->last_io = uv_now(&r->w->loop);
	return 0;
}

static void h2_write_queued(struct zw_request *r)
{
	stream_of(r)->pending++;
}

static const struct zw_client_ops h2_ops = {
        .request_head = h2_request_head,
        .early_body = h2_early_body,
        .early_body_sent = h2_early_body_sent,
        .body_more = h2_body_more,
        .response_head = h2_response_head,
        .send = h2_send,
        .busy = h2_busy,
        .finish = h2_finish,
        .respond = h2_respond,
        .respond_static = h2_respond_static,
        .abort = h2_abort,
        .tunnel = h2_tunnel,
        .tunnel_end = h2_abort,
        .read_start = h2_read_start,
        .read_stop = h2_read_stop,
        .write_done = h2_write_done,
        .write_queued = h2_write_queued,
};

/* ---- h2conn callbacks ---------------------------------------------------------- */

static int field_is(const struct zw_h2_field *f, const char *name)
{
	return f->name_len == strlen(name) && memcmp(f->name, name, f->name_len) == 0;
}

/* What may not stand in a part of an HTTP/1.1 head besides CR, LF and NUL
 * (which would end a line early). */
enum { SAFE_VALUE, SAFE_TOKEN /* no space */, SAFE_NAME /* no ':', space, tab */ };

/* Nonzero when s (n bytes) may stand in an HTTP/1.1 head as it is, as the
 * kind of part `what` says. nghttp2 checks this already; the text must never
 * depend on it. */
static int head_safe(const char *s, size_t n, int what)
{
	for (size_t i = 0; i < n; i++) {
		char ch = s[i];
		if (ch == '\r' || ch == '\n' || ch == '\0')
			return 0;
		if (what != SAFE_VALUE && ch == ' ')
			return 0;
		if (what == SAFE_NAME && (ch == ':' || ch == '\t'))
			return 0;
	}
	return 1;
}

int zw_h2_request_text(const struct zw_h2_request *req, struct zw_obuf *t, int *chunked)
{
	int has_len = 0, announced = 0, rc = 0;
	if (!head_safe(req->method, req->method_len, SAFE_TOKEN) ||
	    (req->path && !head_safe(req->path, req->path_len, SAFE_TOKEN)) ||
	    (req->authority && !head_safe(req->authority, req->authority_len, SAFE_TOKEN)))
		return -2;
	for (size_t i = 0; i < req->n_fields; i++) {
		const struct zw_h2_field *f = &req->fields[i];
		if (f->name_len == 0 || !head_safe(f->name, f->name_len, SAFE_NAME) ||
		    !head_safe(f->value, f->value_len, SAFE_VALUE))
			return -2;
		has_len |= field_is(f, "content-length");
		announced |= field_is(f, "trailer");
	}
	/* HTTP/1.1 carries trailers only after a chunked body: a body whose
	 * client announces trailers (Trailer, RFC 9110 6.6.2) goes chunked, its
	 * length dropped (nghttp2 has checked the DATA against it). */
	int drop_len = has_len && announced && !req->end_stream;
	if (zw_obuf_add(t, req->method, req->method_len) < 0 || zw_obuf_add(t, " ", 1) < 0)
		return -1;
	if (req->path)
		rc = zw_obuf_add(t, req->path, req->path_len);
	else if (req->authority)
		rc = zw_obuf_add(t, req->authority, req->authority_len);
	if (rc < 0 || zw_obuf_add(t, " HTTP/1.1\r\n", 11) < 0)
		return -1;
	if (req->authority && (zw_obuf_add(t, "host: ", 6) < 0 ||
	                       zw_obuf_add(t, req->authority, req->authority_len) < 0 ||
	                       zw_obuf_add(t, "\r\n", 2) < 0))
		return -1;
	int cookies = 0;
	for (size_t i = 0; i < req->n_fields; i++) {
		const struct zw_h2_field *f = &req->fields[i];
		if ((req->authority && field_is(f, "host")) || field_is(f, "cookie") ||
		    (drop_len && field_is(f, "content-length")))
			continue;
		if (zw_obuf_add(t, f->name, f->name_len) < 0 || zw_obuf_add(t, ": ", 2) < 0 ||
		    zw_obuf_add(t, f->value, f->value_len) < 0 || zw_obuf_add(t, "\r\n", 2) < 0)
			return -1;
	}
	for (size_t i = 0; i < req->n_fields; i++) {
		const struct zw_h2_field *f = &req->fields[i];
		if (!field_is(f, "cookie"))
			continue;
		const char *sep = cookies++ ? "; " : "cookie: ";
		if (zw_obuf_add(t, sep, strlen(sep)) < 0 ||
		    zw_obuf_add(t, f->value, f->value_len) < 0)
			return -1;
	}
	if (cookies && zw_obuf_add(t, "\r\n", 2) < 0)
		return -1;
	*chunked = !req->end_stream && (!has_len || drop_len);
	if (*chunked && zw_obuf_add(t, "transfer-encoding: chunked\r\n", 28) < 0)
		return -1;
	return zw_obuf_add(t, "\r\n", 2);
}

static void *on_request(void *ctx, int32_t id, const struct zw_h2_request *req)
{
	struct zw_h2client *s = ctx;
	struct zw_worker *w = s->w;
	struct h2stream *st = calloc(1, sizeof(*st));
	if (!st)
		return NULL;
	struct zw_request *r = &st->r;
	if (s->streams++ == 0)
		zw_client_idle(s->conn, 0);
	st->s = s;
	st->id = id;
	uv_timer_init(&w->loop, &st->timer);
	st->timer.data = r;
	st->body.limit = 1 << 20;
	st->resp.limit = 1 << 20;
	r->ops = &h2_ops;
	r->w = w;
	r->timer = &st->timer;
	r->client_ip = s->client_ip;
	zw_http_head_init(&st->head, &w->s->limits);
	zw_http_parser_init(&st->parser, HTTP_REQUEST, &st->head);
	struct zw_obuf t = {.limit = w->s->limits.max_head_bytes + 4096};
	size_t used = 0;
	int res = zw_h2_request_text(req, &t, &st->chunked);
	if (res == 0)
		res = zw_http_head_execute(&st->parser, &st->head, t.buf.data, t.buf.len, &used);
	else
		res = res == -2 ? ZW_HTTP_EBAD : ZW_HTTP_ETOOBIG;
	zw_buf_free(&t.buf);
	r->start_ms = uv_now(&w->loop);
	r->method = st->parser.method;
	r->head = &st->head;
	r->req_done = req->end_stream;
	st->body_end = req->end_stream;
	if (res != ZW_HTTP_HEAD_DONE) {
		r->req_done = 1;
		if (res == ZW_HTTP_ETOOBIG)
			h2_respond(r, 431, NULL, "request head too large\n", 1);
		else if (res == ZW_HTTP_EURI)
			h2_respond(r, 414, NULL, "request target too long\n", 1);
		else
			h2_respond(r, 400, NULL, "malformed request\n", 1);
		return st;
	}
	size_t tp_len = 0, ts_len = 0;
	const char *tp = zw_http_find(&st->head, "traceparent", &tp_len);
	const char *ts = zw_http_find(&st->head, "tracestate", &ts_len);
	zw_request_observe_begin(r, tp, tp_len, ts, ts_len);
	size_t ct_len = 0, gt_len = 0;
	const char *ct = zw_http_find(&st->head, "content-type", &ct_len);
	r->grpc = ct && ct_len >= 16 && strncasecmp(ct, "application/grpc", 16) == 0;
	const char *gt = r->grpc ? zw_http_find(&st->head, "grpc-timeout", &gt_len) : NULL;
	if (gt && zw_h2up_grpc_timeout(gt, gt_len, &r->grpc_timeout_ms) == 0 && !r->grpc_timeout_ms)
		r->grpc_timeout_ms = 1; /* "0m": due at once, not "none" */
	r->is_head = st->parser.method == HTTP_HEAD;
	r->has_body = !req->end_stream;
	r->chunked = st->chunked;
	zw_request_dispatch(r, &st->parser, &st->head);
	return st;
}

static int on_data(void *ctx, void *stream, const uint8_t *data, size_t len, int end)
{
	struct zw_h2client *s = ctx;
	struct h2stream *st = stream;
	if (st->ended || st->r.req_done) {
		/* Answered already: the rest of the body is not wanted. */
		if (len)
			zw_h2conn_consume(s->h2, st->id, len);
		return 0;
	}
	if (len && zw_obuf_add(&st->body, data, len) < 0)
		return -1;
	if (end)
		st->body_end = 1;
	pump_body(st);
	return 0;
}

/* The client's trailer section: kept for the end of the chunked body
 * upstream, fields a trailer must not carry (zw_http_trailer_dropped) or
 * that would not stay on their line left out. A body sent with its length
 * cannot carry them: dropped. */
static void on_trailers(void *ctx, void *stream, const struct zw_h2_field *fields, size_t n)
{
	struct h2stream *st = stream;
	(void)ctx;
	if (!st->chunked || st->ended || st->r.req_done || st->n_req_trailers)
		return;
	st->req_trailers.limit = st->r.w->s->limits.max_head_bytes;
	for (size_t i = 0; i < n; i++) {
		const struct zw_h2_field *f = &fields[i];
		if (zw_http_trailer_dropped(f->name, f->name_len) ||
		    !head_safe(f->name, f->name_len, SAFE_NAME) ||
		    !head_safe(f->value, f->value_len, SAFE_VALUE))
			continue;
		if (zw_h2_fields_add(&st->req_trailers, (const uint8_t *)f->name, f->name_len,
		                     (const uint8_t *)f->value, f->value_len) < 0) {
			st->req_trailers.buf.len = 0; /* past the bound: none */
			st->n_req_trailers = 0;
			return;
		}
		st->n_req_trailers++;
	}
}

static void on_close(void *ctx, void *stream, uint32_t error_code)
{
	struct zw_h2client *s = ctx;
	struct h2stream *st = stream;
	(void)error_code;
	if (--s->streams == 0 && !s->freeing)
		zw_client_idle(s->conn, 1);
	st->gone = 1;
	st->s = NULL;
	unhook(&st->r);
	stream_end_request(st);
	stream_maybe_free(st);
}

static void on_writable(void *ctx, void *stream)
{
	struct zw_h2client *s = ctx;
	struct h2stream *st = stream;
	if (push_response(st) == 0 && !st->ended)
		zw_fwd_client_drained(&st->r);
	flush(s);
}

/* ---- the session --------------------------------------------------------------- */

struct zw_h2client *zw_h2client_new(struct zw_worker *w, struct zw_h1conn *conn,
                                    const char *client_ip)
{
	struct zw_h2client *s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	s->defer.run = on_defer;
	s->w = w;
	s->conn = conn;
	s->client_ip = client_ip;
	struct zw_h2_callbacks cb = {
	        .on_request = on_request,
	        .on_data = on_data,
	        .on_close = on_close,
	        .on_writable = on_writable,
	        .on_trailers = on_trailers,
	};
	if (zw_h2conn_new(NULL, &cb, s, &s->h2) < 0) {
		free(s);
		return NULL;
	}
	return s;
}

void zw_h2client_feed(struct zw_h2client *s, const char *data, size_t len)
{
	s->in_call = 1;
	if (zw_h2conn_feed(s->h2, (const uint8_t *)data, len) < 0)
		s->dead = 1;
	s->in_call = 0;
	flush(s);
}

void zw_h2client_drained(struct zw_h2client *s)
{
	flush(s);
}

int zw_h2client_backlogged(const struct zw_h2client *s)
{
	return zw_client_write_queue(s->conn) >= MAX_SOCKET_QUEUE;
}

void zw_h2client_shutdown(struct zw_h2client *s)
{
	if (s->shutdown)
		return;
	s->shutdown = 1;
	zw_h2conn_shutdown(s->h2);
	flush(s);
}

void zw_h2client_free(struct zw_h2client *s)
{
	if (!s)
		return;
	s->in_call = 1; /* no output while the streams end */
	s->freeing = 1;
	zw_dp_defer_cancel(s->w, &s->defer);
	zw_h2conn_free(s->h2);
	free(s);
}
