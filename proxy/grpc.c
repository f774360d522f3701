/* zerowire minimal gRPC server over h2c (nghttp2 + libuv): see grpc.h. */
#include "grpc.h"

#include "list.h"

#include <errno.h>
#include <nghttp2/nghttp2.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CONN_RBUF        (32 * 1024)
#define CONN_WRITE_LIMIT (1024 * 1024) /* bytes handed to uv_write and not yet written */
#define WRITE_CHUNK      (64 * 1024)
#define MAX_PATH_LEN     1024
/* Request bytes one connection may hold at once, in max_message units. */
#define CONN_BUFFER_FACTOR 4

struct conn;

struct zw_grpc_call {
	struct conn *conn;
	struct zw_grpc_call *prev, *next;
	int32_t stream_id;
	char *path;
	const struct zw_grpc_method *method;
	bool ctype_ok;
	bool dispatched;   /* request checked; handler owns it unless finished */
	bool handed;       /* on_call ran: on_cancel is due if not finished */
	bool finished;     /* trailers decided */
	bool headers_sent; /* response HEADERS submitted */
	bool deferred;     /* data provider waiting for data */
	bool too_big;
	int status;
	char *message;
	uint8_t *req;
	size_t req_len, req_cap;
	uint8_t *out;
	size_t out_len, out_off;
	void *data;
};

struct conn {
	struct zw_grpc_server *srv;
	struct conn *prev, *next;
	uv_tcp_t tcp;
	uv_timer_t idle;
	nghttp2_session *ng;
	struct zw_grpc_call *calls;
	size_t n_calls;
	size_t write_pending;
	size_t buffered; /* request bytes held by this connection's calls */
	int open_handles;
	bool closing;
	bool in_recv;
	bool want_flush;
	bool failed;
	bool paused;           /* not read while its output waits (CONN_WRITE_LIMIT) */
	uint64_t last_ping_ms; /* zw_grpc_ping; 0: never */
	char rbuf[CONN_RBUF];
};

struct zw_grpc_server {
	uv_loop_t *loop;
	uv_tcp_t listener;
	struct zw_grpc_config cfg;
	struct zw_grpc_handlers h;
	struct conn *conns;
	size_t n_conns;
	struct zw_grpc_stats st;
	int port;
	bool stopping;
	bool listener_closed;
	void (*done)(void *arg);
	void *done_arg;
};

struct wreq {
	uv_write_t req;
	struct conn *conn;
	size_t len;
	uint8_t data[];
};

void zw_grpc_config_default(struct zw_grpc_config *c)
{
	c->max_message = 4 * 1024 * 1024;
	c->max_send_queue = 1024 * 1024;
	c->max_streams = 1000;
	c->max_connections = 1024;
	c->idle_timeout_ms = 300000;
}

static void conn_flush(struct conn *c);
static void conn_close(struct conn *c);
static void on_idle(uv_timer_t *t);
static void on_write(uv_write_t *req, int status);
static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf);
static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf);

static void call_free(struct zw_grpc_call *call)
{
	if (!call)
		return;
	free(call->path);
	free(call->message);
	free(call->req);
	free(call->out);
	free(call);
}

/* Unlinks and frees a call; runs on_cancel first when the handler still
 * holds it. */
static void call_end(struct zw_grpc_call *call)
{
	struct conn *c = call->conn;
	struct zw_grpc_server *s = c->srv;

	ZW_LIST_UNLINK(c->calls, call);
	c->n_calls--;
	c->buffered -= call->req_cap;
	s->st.calls--;
	if (call->handed && !call->finished) {
		s->st.cancelled_total++;
		if (s->h.on_cancel)
			s->h.on_cancel(s->h.arg, call);
	}
	call_free(call);
	if (c->n_calls == 0 && !c->closing && !c->failed && s->cfg.idle_timeout_ms)
		uv_timer_start(&c->idle, on_idle, s->cfg.idle_timeout_ms, 0);
}

/* grpc-message: percent-encode everything outside printable ASCII and '%'. */
static char *pct_encode(const char *msg)
{
	size_t n = strlen(msg);
	char *out = malloc(n * 3 + 1), *p = out;

	if (!out)
		return NULL;
	for (const unsigned char *q = (const unsigned char *)msg; *q; q++) {
		if (*q < 0x20 || *q > 0x7e || *q == '%') {
			snprintf(p, 4, "%%%02X", *q);
			p += 3;
		} else {
			*p++ = (char)*q;
		}
	}
	*p = 0;
	return out;
}

#define NV(n, v, vl)                                                                      \
	{                                                                                 \
		(uint8_t *)(n), (uint8_t *)(v), sizeof(n) - 1, (vl), NGHTTP2_NV_FLAG_NONE \
	}

/* Submits grpc-status/grpc-message, either as trailers or trailers-only. */
static int submit_status(struct zw_grpc_call *call, bool trailers_only)
{
	char code[16];
	char *msg = NULL;
	nghttp2_nv nv[4];
	size_t n = 0;
	int rv;

	snprintf(code, sizeof(code), "%d", call->status);
	if (trailers_only) {
		nv[n++] = (nghttp2_nv)NV(":status", "200", 3);
		nv[n++] = (nghttp2_nv)NV("content-type", "application/grpc", 16);
	}
	nv[n++] = (nghttp2_nv)NV("grpc-status", code, strlen(code));
	if (call->message && *call->message) {
		msg = pct_encode(call->message);
		if (msg)
			nv[n++] = (nghttp2_nv)NV("grpc-message", msg, strlen(msg));
	}
	if (trailers_only)
		rv = nghttp2_submit_response(call->conn->ng, call->stream_id, nv, n, NULL);
	else
		rv = nghttp2_submit_trailer(call->conn->ng, call->stream_id, nv, n);
	free(msg);
	return rv == 0 ? 0 : -EIO;
}

static ssize_t data_read(nghttp2_session *ng, int32_t stream_id, uint8_t *buf, size_t length,
                         uint32_t *flags, nghttp2_data_source *src, void *user)
{
	struct zw_grpc_call *call = src->ptr;
	size_t avail = call->out_len - call->out_off;

	(void)ng;
	(void)stream_id;
	(void)user;
	if (avail > 0) {
		if (avail > length)
			avail = length;
		memcpy(buf, call->out + call->out_off, avail);
		call->out_off += avail;
		if (call->out_off == call->out_len)
			call->out_off = call->out_len = 0;
		return (ssize_t)avail;
	}
	if (!call->finished) {
		call->deferred = true;
		return NGHTTP2_ERR_DEFERRED;
	}
	*flags |= NGHTTP2_DATA_FLAG_EOF | NGHTTP2_DATA_FLAG_NO_END_STREAM;
	if (submit_status(call, false) < 0)
		return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
	return 0;
}

int zw_grpc_send(struct zw_grpc_call *call, const uint8_t *msg, size_t len)
{
	struct zw_grpc_server *s = call->conn->srv;
	size_t need;

	if (call->finished || call->conn->closing)
		return -EINVAL;
	if (len > s->cfg.max_message)
		return -EMSGSIZE;
	need = call->out_len - call->out_off + 5 + len;
	if (need > s->cfg.max_send_queue)
		return -ENOBUFS;
	if (call->out_off > 0) {
		memmove(call->out, call->out + call->out_off, call->out_len - call->out_off);
		call->out_len -= call->out_off;
		call->out_off = 0;
	}
	if (call->out_len + 5 + len > 0) {
		uint8_t *p = realloc(call->out, call->out_len + 5 + len);

		if (!p)
			return -ENOMEM;
		call->out = p;
	}
	call->out[call->out_len] = 0;
	call->out[call->out_len + 1] = (uint8_t)(len >> 24);
	call->out[call->out_len + 2] = (uint8_t)(len >> 16);
	call->out[call->out_len + 3] = (uint8_t)(len >> 8);
	call->out[call->out_len + 4] = (uint8_t)len;
	if (len)
		memcpy(call->out + call->out_len + 5, msg, len);
	call->out_len += 5 + len;
	if (!call->headers_sent) {
		nghttp2_nv nv[2] = {
		        NV(":status", "200", 3),
		        NV("content-type", "application/grpc", 16),
		};
		nghttp2_data_provider prd;

		prd.source.ptr = call;
		prd.read_callback = data_read;
		if (nghttp2_submit_response(call->conn->ng, call->stream_id, nv, 2, &prd) != 0)
			return -EIO;
		call->headers_sent = true;
	} else if (call->deferred) {
		call->deferred = false;
		nghttp2_session_resume_data(call->conn->ng, call->stream_id);
	}
	conn_flush(call->conn);
	return 0;
}

int zw_grpc_finish(struct zw_grpc_call *call, int status, const char *message)
{
	if (call->finished)
		return -EINVAL;
	call->finished = true;
	call->status = status;
	if (message)
		call->message = strdup(message);
	if (call->conn->closing)
		return 0;
	if (!call->headers_sent) {
		call->headers_sent = true;
		if (submit_status(call, true) < 0)
			nghttp2_submit_rst_stream(call->conn->ng, NGHTTP2_FLAG_NONE,
			                          call->stream_id, NGHTTP2_INTERNAL_ERROR);
	} else if (call->deferred) {
		call->deferred = false;
		nghttp2_session_resume_data(call->conn->ng, call->stream_id);
	}
	conn_flush(call->conn);
	return 0;
}

int zw_grpc_ping(struct zw_grpc_call *call, uint64_t min_interval_ms)
{
	struct conn *c = call->conn;
	uint64_t now = uv_now(c->srv->loop);

	if (call->finished || c->closing || c->failed)
		return -EINVAL;
	if (c->last_ping_ms && now - c->last_ping_ms < min_interval_ms)
		return 0;
	if (nghttp2_submit_ping(c->ng, NGHTTP2_FLAG_NONE, NULL) != 0)
		return -EIO;
	c->last_ping_ms = now ? now : 1;
	conn_flush(c);
	return 0;
}

void zw_grpc_call_set_data(struct zw_grpc_call *c, void *data)
{
	c->data = data;
}

void *zw_grpc_call_data(const struct zw_grpc_call *c)
{
	return c->data;
}

const char *zw_grpc_call_path(const struct zw_grpc_call *c)
{
	return c->path ? c->path : "";
}

/* Ends a request the server answers itself (no handler involved). */
static void fail_call(struct zw_grpc_call *call, int status, const char *message)
{
	call->dispatched = true;
	zw_grpc_finish(call, status, message);
}

/* HTTP-level rejection (not gRPC): e.g. 415 for a wrong content-type. */
static void http_reject(struct zw_grpc_call *call, const char *status)
{
	nghttp2_nv nv[1] = {NV(":status", status, strlen(status))};

	call->dispatched = true;
	call->finished = true;
	call->headers_sent = true;
	nghttp2_submit_response(call->conn->ng, call->stream_id, nv, 1, NULL);
}

/* End of request headers: route the call. */
static void route_call(struct zw_grpc_call *call)
{
	struct zw_grpc_server *s = call->conn->srv;

	if (call->dispatched)
		return;
	if (!call->ctype_ok) {
		s->st.malformed_total++;
		http_reject(call, "415");
		return;
	}
	for (size_t i = 0; call->path && i < s->h.n_methods; i++) {
		if (strcmp(s->h.methods[i].path, call->path) == 0) {
			call->method = &s->h.methods[i];
			return;
		}
	}
	s->st.unimplemented_total++;
	fail_call(call, ZW_GRPC_UNIMPLEMENTED, "unknown method");
}

/* END_STREAM from the client: decode the framing and hand the message over. */
static void dispatch_call(struct zw_grpc_call *call)
{
	struct zw_grpc_server *s = call->conn->srv;
	uint32_t len;

	if (call->dispatched)
		return;
	if (!call->method) {
		route_call(call);
		if (call->dispatched)
			return;
	}
	if (call->too_big) {
		s->st.malformed_total++;
		fail_call(call, ZW_GRPC_RESOURCE_EXHAUSTED, "request message too large");
		return;
	}
	if (call->req_len < 5) {
		s->st.malformed_total++;
		fail_call(call, ZW_GRPC_INTERNAL,
		          call->req_len ? "truncated message prefix" : "no request message");
		return;
	}
	if (call->req[0] != 0) {
		s->st.malformed_total++;
		fail_call(call, ZW_GRPC_INTERNAL, "compressed messages are not supported");
		return;
	}
	len = (uint32_t)call->req[1] << 24 | (uint32_t)call->req[2] << 16 |
	      (uint32_t)call->req[3] << 8 | call->req[4];
	if ((size_t)len + 5 != call->req_len) {
		s->st.malformed_total++;
		fail_call(call, ZW_GRPC_INTERNAL,
		          (size_t)len + 5 > call->req_len ? "truncated message"
		                                          : "more than one request message");
		return;
	}
	call->dispatched = true;
	call->handed = true;
	if (call->method->on_call(s->h.arg, call, call->req + 5, len) < 0 && !call->finished)
		zw_grpc_finish(call, ZW_GRPC_INTERNAL, "handler failed");
}

static int on_begin_headers(nghttp2_session *ng, const nghttp2_frame *frame, void *user)
{
	struct conn *c = user;
	struct zw_grpc_call *call;

	if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST)
		return 0;
	call = calloc(1, sizeof(*call));
	if (!call)
		return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
	call->conn = c;
	call->stream_id = frame->hd.stream_id;
	ZW_LIST_PUSH(c->calls, call);
	c->n_calls++;
	c->srv->st.calls++;
	c->srv->st.calls_total++;
	if (!c->failed)
		uv_timer_stop(&c->idle);
	nghttp2_session_set_stream_user_data(ng, frame->hd.stream_id, call);
	return 0;
}

static int on_header(nghttp2_session *ng, const nghttp2_frame *frame, const uint8_t *name,
                     size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags,
                     void *user)
{
	struct zw_grpc_call *call;

	(void)flags;
	(void)user;
	if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST)
		return 0;
	call = nghttp2_session_get_stream_user_data(ng, frame->hd.stream_id);
	if (!call)
		return 0;
	if (namelen == 5 && memcmp(name, ":path", 5) == 0 && !call->path) {
		if (valuelen > MAX_PATH_LEN)
			return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
		call->path = strndup((const char *)value, valuelen);
		if (!call->path)
			return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
	} else if (namelen == 12 && memcmp(name, "content-type", 12) == 0) {
		call->ctype_ok = valuelen >= 16 && memcmp(value, "application/grpc", 16) == 0 &&
		                 (valuelen == 16 || value[16] == '+' || value[16] == ';');
	}
	return 0;
}

static int on_data_chunk(nghttp2_session *ng, uint8_t flags, int32_t stream_id, const uint8_t *data,
                         size_t len, void *user)
{
	struct zw_grpc_call *call = nghttp2_session_get_stream_user_data(ng, stream_id);
	struct conn *c = user;
	size_t limit = c->srv->cfg.max_message + 5;

	(void)flags;
	if (!call || call->dispatched || call->too_big)
		return 0;
	if (call->req_len + len > limit) {
		call->too_big = true;
		c->buffered -= call->req_cap;
		free(call->req);
		call->req = NULL;
		call->req_len = call->req_cap = 0;
		return 0;
	}
	if (call->req_len + len > call->req_cap) {
		size_t cap = call->req_cap ? call->req_cap * 2 : 256;
		uint8_t *p;

		while (cap < call->req_len + len)
			cap *= 2;
		if (cap > limit)
			cap = limit;
		if (c->buffered - call->req_cap + cap > CONN_BUFFER_FACTOR * limit) {
			/* Many large requests at once on one connection. */
			call->too_big = true;
			c->buffered -= call->req_cap;
			free(call->req);
			call->req = NULL;
			call->req_len = call->req_cap = 0;
			return 0;
		}
		p = realloc(call->req, cap);
		if (!p)
			return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
		c->buffered += cap - call->req_cap;
		call->req = p;
		call->req_cap = cap;
	}
	memcpy(call->req + call->req_len, data, len);
	call->req_len += len;
	return 0;
}

static int on_frame_recv(nghttp2_session *ng, const nghttp2_frame *frame, void *user)
{
	struct zw_grpc_call *call;

	(void)user;
	if (frame->hd.type != NGHTTP2_HEADERS && frame->hd.type != NGHTTP2_DATA)
		return 0;
	call = nghttp2_session_get_stream_user_data(ng, frame->hd.stream_id);
	if (!call)
		return 0;
	if (frame->hd.type == NGHTTP2_HEADERS && frame->headers.cat == NGHTTP2_HCAT_REQUEST)
		route_call(call);
	if (frame->hd.flags & NGHTTP2_FLAG_END_STREAM)
		dispatch_call(call);
	return 0;
}

static int on_stream_close(nghttp2_session *ng, int32_t stream_id, uint32_t error_code, void *user)
{
	struct zw_grpc_call *call = nghttp2_session_get_stream_user_data(ng, stream_id);

	(void)error_code;
	(void)user;
	if (call) {
		nghttp2_session_set_stream_user_data(ng, stream_id, NULL);
		call_end(call);
	}
	return 0;
}

static void on_write(uv_write_t *req, int status)
{
	struct wreq *w = (struct wreq *)req;
	struct conn *c = w->conn;

	c->write_pending -= w->len;
	free(w);
	if (c->closing)
		return;
	if (status < 0) {
		conn_close(c);
		return;
	}
	conn_flush(c);
	if (c->paused && !c->closing && c->write_pending < CONN_WRITE_LIMIT &&
	    uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) == 0)
		c->paused = false;
}

/* Closes the connection on the next loop iteration: used where closing now
 * would run handler callbacks re-entrantly (inside zw_grpc_send/finish). */
static void conn_fail(struct conn *c)
{
	if (c->closing || c->failed)
		return;
	c->failed = true;
	uv_timer_start(&c->idle, on_idle, 0, 0);
}

/* Hands one buffer to uv_write. Returns 0 or a negative errno. */
static int conn_write(struct conn *c, const uint8_t *buf, size_t len)
{
	struct wreq *w = malloc(sizeof(*w) + len);
	uv_buf_t b;

	if (!w)
		return -ENOMEM;
	w->conn = c;
	w->len = len;
	memcpy(w->data, buf, len);
	b = uv_buf_init((char *)w->data, (unsigned)len);
	if (uv_write(&w->req, (uv_stream_t *)&c->tcp, &b, 1, on_write) < 0) {
		free(w);
		return -EIO;
	}
	c->write_pending += len;
	return 0;
}

/* Hands what nghttp2 wants to send to uv_write, in chunks of up to
 * WRITE_CHUNK, while less than CONN_WRITE_LIMIT bytes are pending. */
static void conn_flush(struct conn *c)
{
	uint8_t buf[WRITE_CHUNK];
	size_t len = 0;

	if (c->closing || c->failed)
		return;
	if (c->in_recv) {
		c->want_flush = true;
		return;
	}
	while (c->write_pending + len < CONN_WRITE_LIMIT) {
		const uint8_t *data;
		ssize_t n = nghttp2_session_mem_send(c->ng, &data);

		if (n < 0)
			goto fail;
		if (n == 0)
			break;
		if (len + (size_t)n > sizeof(buf)) {
			if (len && conn_write(c, buf, len) < 0)
				goto fail;
			len = 0;
		}
		if ((size_t)n > sizeof(buf)) {
			if (conn_write(c, data, (size_t)n) < 0)
				goto fail;
			continue;
		}
		memcpy(buf + len, data, (size_t)n);
		len += (size_t)n;
	}
	if (len && conn_write(c, buf, len) < 0)
		goto fail;
	if (!nghttp2_session_want_read(c->ng) && !nghttp2_session_want_write(c->ng) &&
	    c->write_pending == 0)
		conn_fail(c);
	return;
fail:
	conn_fail(c);
}

static void conn_free(struct conn *c)
{
	struct zw_grpc_server *s = c->srv;

	ZW_LIST_UNLINK(s->conns, c);
	s->n_conns--;
	s->st.connections--;
	free(c);
}

static void server_maybe_done(struct zw_grpc_server *s);

static void on_conn_handle_closed(uv_handle_t *h)
{
	struct conn *c = h->data;
	struct zw_grpc_server *s = c->srv;

	if (--c->open_handles > 0)
		return;
	conn_free(c);
	if (s->stopping)
		server_maybe_done(s);
}

/* Cancels the calls, drops the session and closes the handles; the conn is
 * freed in the last close callback. Never called from nghttp2 callbacks. */
static void conn_close(struct conn *c)
{
	if (c->closing)
		return;
	c->closing = true;
	while (c->calls) {
		struct zw_grpc_call *call = c->calls;

		if (c->ng)
			nghttp2_session_set_stream_user_data(c->ng, call->stream_id, NULL);
		call_end(call);
	}
	nghttp2_session_del(c->ng);
	c->ng = NULL;
	uv_timer_stop(&c->idle);
	uv_close((uv_handle_t *)&c->tcp, on_conn_handle_closed);
	uv_close((uv_handle_t *)&c->idle, on_conn_handle_closed);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	struct conn *c = h->data;

	(void)suggested;
	*buf = uv_buf_init(c->rbuf, sizeof(c->rbuf));
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
	struct conn *c = stream->data;
	ssize_t rv;

	if (c->closing)
		return;
	if (nread < 0) {
		conn_close(c);
		return;
	}
	if (nread == 0)
		return;
	c->in_recv = true;
	rv = nghttp2_session_mem_recv(c->ng, (const uint8_t *)buf->base, (size_t)nread);
	c->in_recv = false;
	if (rv < 0) {
		if (rv == NGHTTP2_ERR_BAD_CLIENT_MAGIC)
			c->srv->st.malformed_total++;
		conn_close(c);
		return;
	}
	c->want_flush = false;
	conn_flush(c);
	/* A client that does not read what its frames produce (answers, refused
	 * streams, acknowledgements) is not read either until it does: what
	 * nghttp2 queues stays within one read's frames. */
	if (!c->closing && c->write_pending >= CONN_WRITE_LIMIT) {
		uv_read_stop(stream);
		c->paused = true;
	}
}

static void on_idle(uv_timer_t *t)
{
	struct conn *c = t->data;

	if (c->failed || c->n_calls == 0)
		conn_close(c);
}

static int conn_session_new(struct conn *c)
{
	nghttp2_session_callbacks *cbs;
	nghttp2_option *opt;
	nghttp2_settings_entry iv[2];
	int rv;

	if (nghttp2_session_callbacks_new(&cbs) != 0)
		return -ENOMEM;
	nghttp2_session_callbacks_set_on_begin_headers_callback(cbs, on_begin_headers);
	nghttp2_session_callbacks_set_on_header_callback(cbs, on_header);
	nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, on_data_chunk);
	nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, on_frame_recv);
	nghttp2_session_callbacks_set_on_stream_close_callback(cbs, on_stream_close);
	if (nghttp2_option_new(&opt) != 0) {
		nghttp2_session_callbacks_del(cbs);
		return -ENOMEM;
	}
	nghttp2_option_set_max_deflate_dynamic_table_size(opt, 4096);
	rv = nghttp2_session_server_new2(&c->ng, cbs, c, opt);
	nghttp2_option_del(opt);
	nghttp2_session_callbacks_del(cbs);
	if (rv != 0)
		return -ENOMEM;
	iv[0].settings_id = NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS;
	iv[0].value = c->srv->cfg.max_streams;
	iv[1].settings_id = NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE;
	iv[1].value = 64 * 1024;
	if (nghttp2_submit_settings(c->ng, NGHTTP2_FLAG_NONE, iv, 2) != 0)
		return -ENOMEM;
	return 0;
}

static void on_reject_closed(uv_handle_t *h)
{
	free(h);
}

static void on_connection(uv_stream_t *server, int status)
{
	struct zw_grpc_server *s = server->data;
	struct conn *c;

	if (status < 0 || s->stopping)
		return;
	if (s->n_conns >= s->cfg.max_connections) {
		uv_tcp_t *t = malloc(sizeof(*t));

		s->st.rejected_connections_total++;
		if (!t)
			return;
		uv_tcp_init(s->loop, t);
		uv_accept(server, (uv_stream_t *)t);
		uv_close((uv_handle_t *)t, on_reject_closed);
		return;
	}
	c = calloc(1, sizeof(*c));
	if (!c)
		return;
	c->srv = s;
	uv_tcp_init(s->loop, &c->tcp);
	uv_timer_init(s->loop, &c->idle);
	c->tcp.data = c;
	c->idle.data = c;
	c->open_handles = 2;
	ZW_LIST_PUSH(s->conns, c);
	s->n_conns++;
	s->st.connections++;
	if (uv_accept(server, (uv_stream_t *)&c->tcp) < 0 || conn_session_new(c) < 0) {
		conn_close(c);
		return;
	}
	uv_tcp_nodelay(&c->tcp, 1);
	if (s->cfg.idle_timeout_ms)
		uv_timer_start(&c->idle, on_idle, s->cfg.idle_timeout_ms, 0);
	if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) < 0) {
		conn_close(c);
		return;
	}
	conn_flush(c);
}

int zw_grpc_server_start(uv_loop_t *loop, const char *host, int port,
                         const struct zw_grpc_config *cfg, const struct zw_grpc_handlers *h,
                         struct zw_grpc_server **out)
{
	struct zw_grpc_server *s;
	struct sockaddr_storage sa;
	int namelen = sizeof(sa);
	int rc;

	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->loop = loop;
	s->cfg = *cfg;
	s->h = *h;
	if (strchr(host, ':'))
		rc = uv_ip6_addr(host, port, (struct sockaddr_in6 *)&sa);
	else
		rc = uv_ip4_addr(host, port, (struct sockaddr_in *)&sa);
	if (rc < 0) {
		free(s);
		return rc;
	}
	uv_tcp_init(loop, &s->listener);
	s->listener.data = s;
	rc = uv_tcp_bind(&s->listener, (const struct sockaddr *)&sa, 0);
	if (rc == 0)
		rc = uv_listen((uv_stream_t *)&s->listener, 128, on_connection);
	if (rc == 0)
		rc = uv_tcp_getsockname(&s->listener, (struct sockaddr *)&sa, &namelen);
	if (rc < 0) {
		/* The listener is closed and s freed in the close callback. */
		s->stopping = true;
		zw_grpc_server_stop(s, NULL, NULL);
		return rc;
	}
	s->port = ntohs(sa.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&sa)->sin6_port
	                                         : ((struct sockaddr_in *)&sa)->sin_port);
	*out = s;
	return 0;
}

int zw_grpc_server_port(const struct zw_grpc_server *s)
{
	return s->port;
}

void zw_grpc_server_stats(const struct zw_grpc_server *s, struct zw_grpc_stats *out)
{
	*out = s->st;
}

static void server_maybe_done(struct zw_grpc_server *s)
{
	void (*done)(void *arg) = s->done;
	void *arg = s->done_arg;

	if (!s->listener_closed || s->n_conns > 0)
		return;
	free(s);
	if (done)
		done(arg);
}

static void on_listener_closed(uv_handle_t *h)
{
	struct zw_grpc_server *s = h->data;

	s->listener_closed = true;
	server_maybe_done(s);
}

void zw_grpc_server_stop(struct zw_grpc_server *s, void (*done)(void *arg), void *arg)
{
	if (!s)
		return;
	s->stopping = true;
	s->done = done;
	s->done_arg = arg;
	for (struct conn *c = s->conns; c; c = c->next)
		conn_close(c);
	if (!uv_is_closing((uv_handle_t *)&s->listener))
		uv_close((uv_handle_t *)&s->listener, on_listener_closed);
}
