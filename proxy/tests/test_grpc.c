/* Unit tests for proxy/grpc.c: gRPC framing and HTTP/2 handling, driven by a
 * raw nghttp2 client on the same libuv loop so that malformed frames can be
 * sent on purpose. */
#include <errno.h>
#include <nghttp2/nghttp2.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include <cmocka.h>

#include "grpc.h"

/* ---- server side ---- */

struct srv_state {
	int cancels;
	int calls;
	struct zw_grpc_call *held; /* a streaming call kept open */
};

static struct srv_state S;

static int on_echo(void *arg, struct zw_grpc_call *call, const uint8_t *msg, size_t len)
{
	(void)arg;
	S.calls++;
	assert_int_equal(zw_grpc_send(call, msg, len), 0);
	assert_int_equal(zw_grpc_finish(call, ZW_GRPC_OK, NULL), 0);
	assert_int_equal(zw_grpc_finish(call, ZW_GRPC_OK, NULL), -EINVAL);
	return 0;
}

static int on_stream(void *arg, struct zw_grpc_call *call, const uint8_t *msg, size_t len)
{
	(void)arg;
	S.calls++;
	S.held = call;
	zw_grpc_send(call, msg, len);
	return 0;
}

static int on_fail(void *arg, struct zw_grpc_call *call, const uint8_t *msg, size_t len)
{
	(void)arg;
	(void)call;
	(void)msg;
	(void)len;
	S.calls++;
	return -1;
}

static int on_errmsg(void *arg, struct zw_grpc_call *call, const uint8_t *msg, size_t len)
{
	(void)arg;
	(void)msg;
	(void)len;
	S.calls++;
	zw_grpc_finish(call, ZW_GRPC_NOT_FOUND, "bad \xc3\xbc % x");
	return 0;
}

static void on_cancel(void *arg, struct zw_grpc_call *call)
{
	(void)arg;
	if (call == S.held)
		S.held = NULL;
	S.cancels++;
}

static const struct zw_grpc_method methods[] = {
        {"/t.S/Echo", on_echo},
        {"/t.S/Stream", on_stream},
        {"/t.S/Fail", on_fail},
        {"/t.S/Err", on_errmsg},
};

/* ---- raw client ---- */

struct resp {
	int http_status;
	int grpc_status; /* -1 until seen */
	char grpc_message[256];
	uint8_t data[8192];
	size_t data_len;
	bool closed;
	bool headers_only; /* grpc-status came in the first HEADERS */
	int header_blocks;
};

struct client {
	uv_loop_t *loop;
	uv_tcp_t tcp;
	uv_connect_t conn;
	nghttp2_session *ng;
	bool connected;
	bool eof;
	struct resp r;
	const uint8_t *body;
	size_t body_len, body_off;
	char rbuf[65536];
	int32_t stream_id;
	int pings;                /* PING frames received (not ACKs) */
	int status_by_stream[64]; /* grpc-status per stream id (< 64), -1 unseen */
};

static ssize_t cl_send(nghttp2_session *ng, const uint8_t *data, size_t len, int flags, void *u)
{
	struct client *c = u;
	uv_buf_t b = uv_buf_init((char *)data, (unsigned)len);
	int rc;

	(void)ng;
	(void)flags;
	rc = uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
	if (rc == UV_EAGAIN)
		return NGHTTP2_ERR_WOULDBLOCK;
	if (rc < 0)
		return NGHTTP2_ERR_CALLBACK_FAILURE;
	return rc;
}

static int cl_header(nghttp2_session *ng, const nghttp2_frame *f, const uint8_t *name, size_t nl,
                     const uint8_t *value, size_t vl, uint8_t flags, void *u)
{
	struct client *c = u;

	(void)ng;
	(void)flags;
	if (nl == 7 && memcmp(name, ":status", 7) == 0)
		c->r.http_status = (int)strtol((const char *)value, NULL, 10);
	if (nl == 11 && memcmp(name, "grpc-status", 11) == 0) {
		if (f->hd.stream_id < 64)
			c->status_by_stream[f->hd.stream_id] =
			        (int)strtol((const char *)value, NULL, 10);
		c->r.grpc_status = (int)strtol((const char *)value, NULL, 10);
		c->r.headers_only = c->r.header_blocks == 0;
	}
	if (nl == 12 && memcmp(name, "grpc-message", 12) == 0)
		snprintf(c->r.grpc_message, sizeof(c->r.grpc_message), "%.*s", (int)vl, value);
	return 0;
}

static int cl_frame(nghttp2_session *ng, const nghttp2_frame *f, void *u)
{
	struct client *c = u;

	(void)ng;
	if (f->hd.type == NGHTTP2_HEADERS)
		c->r.header_blocks++;
	if (f->hd.type == NGHTTP2_PING && !(f->hd.flags & NGHTTP2_FLAG_ACK))
		c->pings++;
	return 0;
}

static int cl_data(nghttp2_session *ng, uint8_t flags, int32_t sid, const uint8_t *d, size_t len,
                   void *u)
{
	struct client *c = u;

	(void)ng;
	(void)flags;
	(void)sid;
	if (c->r.data_len + len <= sizeof(c->r.data)) {
		memcpy(c->r.data + c->r.data_len, d, len);
		c->r.data_len += len;
	}
	return 0;
}

static int cl_close(nghttp2_session *ng, int32_t sid, uint32_t err, void *u)
{
	struct client *c = u;

	(void)ng;
	(void)sid;
	(void)err;
	c->r.closed = true;
	return 0;
}

static ssize_t cl_body(nghttp2_session *ng, int32_t sid, uint8_t *buf, size_t len, uint32_t *flags,
                       nghttp2_data_source *src, void *u)
{
	struct client *c = u;
	size_t n = c->body_len - c->body_off;

	(void)ng;
	(void)sid;
	(void)src;
	if (n > len)
		n = len;
	memcpy(buf, c->body + c->body_off, n);
	c->body_off += n;
	if (c->body_off == c->body_len)
		*flags |= NGHTTP2_DATA_FLAG_EOF;
	return (ssize_t)n;
}

static void cl_alloc(uv_handle_t *h, size_t s, uv_buf_t *b)
{
	struct client *c = h->data;

	(void)s;
	*b = uv_buf_init(c->rbuf, sizeof(c->rbuf));
}

static void cl_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
	struct client *c = s->data;

	if (n < 0) {
		c->eof = true;
		uv_read_stop(s);
		return;
	}
	if (c->ng && nghttp2_session_mem_recv(c->ng, (const uint8_t *)b->base, (size_t)n) < 0)
		c->eof = true;
	if (c->ng)
		nghttp2_session_send(c->ng);
}

static void cl_connected(uv_connect_t *req, int status)
{
	struct client *c = req->data;

	assert_int_equal(status, 0);
	c->connected = true;
	uv_read_start((uv_stream_t *)&c->tcp, cl_alloc, cl_read);
	if (c->ng)
		nghttp2_session_send(c->ng);
}

static void on_fired(uv_timer_t *t)
{
	*(bool *)t->data = true;
}

static void on_deadline(uv_timer_t *t)
{
	uv_stop(t->loop);
}

/* Runs the loop until *flag is true or 3 s pass. */
static void run_until(uv_loop_t *loop, const bool *flag)
{
	uv_timer_t t;

	uv_timer_init(loop, &t);
	uv_timer_start(&t, on_deadline, 3000, 0);
	while (!*flag && uv_timer_get_due_in(&t) > 0)
		uv_run(loop, UV_RUN_ONCE);
	uv_close((uv_handle_t *)&t, NULL);
	uv_run(loop, UV_RUN_NOWAIT);
}

/* Runs the loop for about ms milliseconds. */
static void run_ms(uv_loop_t *loop, uint64_t ms)
{
	uv_timer_t t;
	bool fired = false;

	uv_timer_init(loop, &t);
	t.data = &fired;
	uv_timer_start(&t, on_fired, ms, 0);
	while (!fired)
		uv_run(loop, UV_RUN_ONCE);
	uv_close((uv_handle_t *)&t, NULL);
	uv_run(loop, UV_RUN_NOWAIT);
}

static void client_open(struct client *c, uv_loop_t *loop, int port, bool h2)
{
	struct sockaddr_in sa;
	nghttp2_session_callbacks *cbs;

	memset(c, 0, sizeof(*c));
	c->loop = loop;
	c->r.grpc_status = -1;
	if (h2) {
		/* Before connecting: the server's SETTINGS may come at once. */
		nghttp2_session_callbacks_new(&cbs);
		nghttp2_session_callbacks_set_send_callback(cbs, cl_send);
		nghttp2_session_callbacks_set_on_header_callback(cbs, cl_header);
		nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, cl_frame);
		nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, cl_data);
		nghttp2_session_callbacks_set_on_stream_close_callback(cbs, cl_close);
		nghttp2_session_client_new(&c->ng, cbs, c);
		nghttp2_session_callbacks_del(cbs);
		nghttp2_submit_settings(c->ng, NGHTTP2_FLAG_NONE, NULL, 0);
	}
	uv_tcp_init(loop, &c->tcp);
	c->tcp.data = c;
	c->conn.data = c;
	uv_ip4_addr("127.0.0.1", port, &sa);
	assert_int_equal(uv_tcp_connect(&c->conn, &c->tcp, (struct sockaddr *)&sa, cl_connected),
	                 0);
	run_until(loop, &c->connected);
	assert_true(c->connected);
}

static void client_close(struct client *c)
{
	nghttp2_session_del(c->ng);
	c->ng = NULL;
	uv_close((uv_handle_t *)&c->tcp, NULL);
	uv_run(c->loop, UV_RUN_NOWAIT);
}

#define NVS(n, v)                                                                          \
	{                                                                                  \
		(uint8_t *)(n), (uint8_t *)(v), strlen(n), strlen(v), NGHTTP2_NV_FLAG_NONE \
	}

/* Sends one request with raw body bytes (NULL: END_STREAM on HEADERS). */
static void client_request(struct client *c, const char *path, const char *ctype,
                           const uint8_t *body, size_t len)
{
	nghttp2_nv nv[6] = {
	        NVS(":method", "POST"), NVS(":scheme", "http"),     NVS(":authority", "test"),
	        NVS(":path", path),     NVS("content-type", ctype), NVS("te", "trailers"),
	};
	nghttp2_data_provider prd;

	memset(&c->r, 0, sizeof(c->r));
	c->r.grpc_status = -1;
	c->body = body;
	c->body_len = len;
	c->body_off = 0;
	prd.source.ptr = c;
	prd.read_callback = cl_body;
	c->stream_id = nghttp2_submit_request(c->ng, NULL, nv, 6, body ? &prd : NULL, c);
	assert_true(c->stream_id > 0);
	nghttp2_session_send(c->ng);
}

static size_t frame(uint8_t *out, uint8_t flag, uint32_t declared, const char *msg, size_t len)
{
	out[0] = flag;
	out[1] = (uint8_t)(declared >> 24);
	out[2] = (uint8_t)(declared >> 16);
	out[3] = (uint8_t)(declared >> 8);
	out[4] = (uint8_t)declared;
	memcpy(out + 5, msg, len);
	return len + 5;
}

/* A request body sent in two stages: the bytes now, END_STREAM later. */
struct staged {
	const uint8_t *data;
	size_t len;
	int phase; /* 0 send data, 1 wait, 2 end */
};

static ssize_t cl_body_staged(nghttp2_session *ng, int32_t sid, uint8_t *buf, size_t len,
                              uint32_t *flags, nghttp2_data_source *src, void *u)
{
	struct staged *st = src->ptr;

	(void)ng;
	(void)sid;
	(void)u;
	if (st->phase == 0) {
		size_t n = st->len < len ? st->len : len;

		memcpy(buf, st->data, n);
		st->phase = 1;
		return (ssize_t)n;
	}
	if (st->phase == 1)
		return NGHTTP2_ERR_DEFERRED;
	*flags |= NGHTTP2_DATA_FLAG_EOF;
	return 0;
}

/* ---- fixture ---- */

struct fx {
	uv_loop_t loop;
	struct zw_grpc_server *srv;
	bool stopped;
};

static void on_stopped(void *arg)
{
	((struct fx *)arg)->stopped = true;
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	struct zw_grpc_config cfg;
	struct zw_grpc_handlers h = {methods, 4, on_cancel, NULL};

	memset(&S, 0, sizeof(S));
	uv_loop_init(&f->loop);
	zw_grpc_config_default(&cfg);
	cfg.max_message = 1024;
	assert_int_equal(zw_grpc_server_start(&f->loop, "127.0.0.1", 0, &cfg, &h, &f->srv), 0);
	assert_true(zw_grpc_server_port(f->srv) > 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	zw_grpc_server_stop(f->srv, on_stopped, f);
	run_until(&f->loop, &f->stopped);
	assert_true(f->stopped);
	uv_run(&f->loop, UV_RUN_DEFAULT);
	assert_int_equal(uv_loop_close(&f->loop), 0);
	free(f);
	return 0;
}

static void roundtrip(struct fx *f, struct client *c, const char *path, const char *ctype,
                      const uint8_t *body, size_t len)
{
	client_request(c, path, ctype, body, len);
	run_until(&f->loop, &c->r.closed);
	assert_true(c->r.closed);
}

/* ---- tests ---- */

static void test_unary_ok(void **state)
{
	struct fx *f = *state;
	struct client c;
	uint8_t buf[64];
	size_t n = frame(buf, 0, 5, "hello", 5);

	client_open(&c, &f->loop, zw_grpc_server_port(f->srv), true);
	roundtrip(f, &c, "/t.S/Echo", "application/grpc", buf, n);
	assert_int_equal(c.r.http_status, 200);
	assert_int_equal(c.r.grpc_status, 0);
	assert_false(c.r.headers_only);
	assert_int_equal(c.r.data_len, n);
	assert_memory_equal(c.r.data, buf, n);
	/* A second call on the same connection; "+proto" content-type. */
	roundtrip(f, &c, "/t.S/Echo", "application/grpc+proto", buf, n);
	assert_int_equal(c.r.grpc_status, 0);
	assert_int_equal(S.calls, 2);
	client_close(&c);
}

static void test_empty_message_ok(void **state)
{
	struct fx *f = *state;
	struct client c;
	uint8_t buf[8];
	size_t n = frame(buf, 0, 0, "", 0);

	client_open(&c, &f->loop, zw_grpc_server_port(f->srv), true);
	roundtrip(f, &c, "/t.S/Echo", "application/grpc", buf, n);
	assert_int_equal(c.r.grpc_status, 0);
	assert_int_equal(c.r.data_len, 5);
	client_close(&c);
}

static void test_unknown_method(void **state)
{
	struct fx *f = *state;
	struct client c;
	uint8_t buf[16];
	size_t n = frame(buf, 0, 1, "x", 1);
	struct zw_grpc_stats st;

	client_open(&c, &f->loop, zw_grpc_server_port(f->srv), true);
	roundtrip(f, &c, "/t.S/Nope", "application/grpc", buf, n);
	assert_int_equal(c.r.http_status, 200);
	assert_int_equal(c.r.grpc_status, ZW_GRPC_UNIMPLEMENTED);
	assert_true(c.r.headers_only);
	assert_int_equal(S.calls, 0);
	zw_grpc_server_stats(f->srv, &st);
	assert_int_equal(st.unimplemented_total, 1);
	client_close(&c);
}

static void test_wrong_content_type(void **state)
{
	struct fx *f = *state;
	struct client c;
	uint8_t buf[16];
	size_t n = frame(buf, 0, 1, "x", 1);

	client_open(&c, &f->loop, zw_grpc_server_port(f->srv), true);
	roundtrip(f, &c, "/t.S/Echo", "application/json", buf, n);
	assert_int_equal(c.r.http_status, 415);
	roundtrip(f, &c, "/t.S/Echo", "application/grpcx", buf, n);
	assert_int_equal(c.r.http_status, 415);
	assert_int_equal(S.calls, 0);
	client_close(&c);
}

static void expect_status(struct fx *f, const uint8_t *body, size_t len, int status)
{
	struct client c;

	client_open(&c, &f->loop, zw_grpc_server_port(f->srv), true);
	roundtrip(f, &c, "/t.S/Echo", "application/grpc", body, len);
	assert_int_equal(c.r.http_status, 200);
	assert_int_equal(c.r.grpc_status, status);
	assert_true(c.r.grpc_message[0] != 0);
	client_close(&c);
}

static void test_malformed_framing(void **state)
{
	struct fx *f = *state;
	uint8_t buf[4096];
	size_t n;

	/* No message at all (END_STREAM on HEADERS). */
	expect_status(f, NULL, 0, ZW_GRPC_INTERNAL);
	/* Truncated prefix. */
	expect_status(f, (const uint8_t *)"\0\0\0", 3, ZW_GRPC_INTERNAL);
	/* Declared length longer than the data. */
	n = frame(buf, 0, 10, "abc", 3);
	expect_status(f, buf, n, ZW_GRPC_INTERNAL);
	/* Two messages for a unary method. */
	n = frame(buf, 0, 3, "abc", 3);
	n += frame(buf + n, 0, 3, "def", 3);
	expect_status(f, buf, n, ZW_GRPC_INTERNAL);
	/* Compressed flag without compression support. */
	n = frame(buf, 1, 3, "abc", 3);
	expect_status(f, buf, n, ZW_GRPC_INTERNAL);
	/* Larger than max_message (1024 here). */
	memset(buf + 5, 'x', 2000);
	n = frame(buf, 0, 2000, (const char *)buf + 5, 2000);
	expect_status(f, buf, n, ZW_GRPC_RESOURCE_EXHAUSTED);
	assert_int_equal(S.calls, 0);
}

/* Several large requests buffered at once on one connection: beyond
 * 4 x max_message the next one is refused, the others still work. */
static void test_connection_buffer_cap(void **state)
{
	struct fx *f = *state;
	struct client c;
	static uint8_t msg[1024 + 5];
	struct staged st[6];
	int32_t sid[6];
	nghttp2_nv nv[6] = {
	        NVS(":method", "POST"),
	        NVS(":scheme", "http"),
	        NVS(":authority", "test"),
	        NVS(":path", "/t.S/Echo"),
	        NVS("content-type", "application/grpc"),
	        NVS("te", "trailers"),
	};

	memset(msg + 5, 'm', 1024);
	frame(msg, 0, 1024, (const char *)msg + 5, 1024);
	client_open(&c, &f->loop, zw_grpc_server_port(f->srv), true);
	for (int i = 0; i < 64; i++)
		c.status_by_stream[i] = -1;
	for (int i = 0; i < 6; i++) {
		nghttp2_data_provider prd;

		st[i].data = msg;
		st[i].len = sizeof(msg);
		st[i].phase = 0;
		prd.source.ptr = &st[i];
		prd.read_callback = cl_body_staged;
		sid[i] = nghttp2_submit_request(c.ng, NULL, nv, 6, &prd, NULL);
		assert_true(sid[i] > 0 && sid[i] < 64);
	}
	nghttp2_session_send(c.ng);
	run_ms(&f->loop, 200);
	for (int i = 0; i < 6; i++) {
		st[i].phase = 2;
		nghttp2_session_resume_data(c.ng, sid[i]);
	}
	nghttp2_session_send(c.ng);
	run_ms(&f->loop, 300);
	{
		int ok = 0, refused = 0;

		for (int i = 0; i < 6; i++) {
			ok += c.status_by_stream[sid[i]] == ZW_GRPC_OK;
			refused += c.status_by_stream[sid[i]] == ZW_GRPC_RESOURCE_EXHAUSTED;
		}
		assert_int_equal(ok, 4);
		assert_int_equal(refused, 2);
	}
	client_close(&c);
}

static void test_handler_failure_and_message_encoding(void **state)
{
	struct fx *f = *state;
	struct client c;
	uint8_t buf[16];
	size_t n = frame(buf, 0, 1, "x", 1);

	client_open(&c, &f->loop, zw_grpc_server_port(f->srv), true);
	roundtrip(f, &c, "/t.S/Fail", "application/grpc", buf, n);
	assert_int_equal(c.r.grpc_status, ZW_GRPC_INTERNAL);
	roundtrip(f, &c, "/t.S/Err", "application/grpc", buf, n);
	assert_int_equal(c.r.grpc_status, ZW_GRPC_NOT_FOUND);
	assert_string_equal(c.r.grpc_message, "bad %C3%BC %25 x");
	client_close(&c);
}

static void test_stream_and_cancel(void **state)
{
	struct fx *f = *state;
	struct client c;
	uint8_t buf[16];
	size_t n = frame(buf, 0, 2, "s1", 2);

	client_open(&c, &f->loop, zw_grpc_server_port(f->srv), true);
	client_request(&c, "/t.S/Stream", "application/grpc", buf, n);
	run_ms(&f->loop, 150); /* let the first message arrive */
	assert_non_null(S.held);
	assert_int_equal(c.r.data_len, n);
	assert_int_equal(zw_grpc_send(S.held, (const uint8_t *)"s2", 2), 0);
	run_ms(&f->loop, 150);
	assert_int_equal(c.r.data_len, 2 * n);
	assert_false(c.r.closed);
	/* Client cancels: RST_STREAM. The handler hears about it. */
	nghttp2_submit_rst_stream(c.ng, NGHTTP2_FLAG_NONE, c.stream_id, NGHTTP2_CANCEL);
	nghttp2_session_send(c.ng);
	run_ms(&f->loop, 150);
	assert_null(S.held);
	assert_int_equal(S.cancels, 1);
	client_close(&c);
}

/* zw_grpc_ping: one PING per connection per interval, however many times
 * it is asked; the stream is not disturbed. */
static void test_ping_keepalive(void **state)
{
	struct fx *f = *state;
	struct client c;
	uint8_t buf[16];
	size_t n = frame(buf, 0, 2, "s1", 2);
	struct zw_grpc_call *first;

	client_open(&c, &f->loop, zw_grpc_server_port(f->srv), true);
	client_request(&c, "/t.S/Stream", "application/grpc", buf, n);
	run_ms(&f->loop, 150);
	assert_non_null(S.held);
	assert_int_equal(c.pings, 0);
	first = S.held;
	assert_int_equal(zw_grpc_ping(first, 60000), 0);
	assert_int_equal(zw_grpc_ping(first, 60000), 0); /* within the interval: shared */
	run_ms(&f->loop, 150);
	assert_int_equal(c.pings, 1);
	assert_false(c.r.closed);
	assert_int_equal(zw_grpc_ping(first, 0), 0); /* interval over: another */
	run_ms(&f->loop, 150);
	assert_int_equal(c.pings, 2);
	assert_int_equal(zw_grpc_finish(first, ZW_GRPC_OK, NULL), 0);
	S.held = NULL;
	run_ms(&f->loop, 150);
	assert_true(c.r.closed);
	assert_int_equal(S.cancels, 0);
	client_close(&c);
}

static void test_connection_loss_cancels(void **state)
{
	struct fx *f = *state;
	struct client c;
	uint8_t buf[16];
	size_t n = frame(buf, 0, 2, "s1", 2);
	struct zw_grpc_stats st;

	client_open(&c, &f->loop, zw_grpc_server_port(f->srv), true);
	client_request(&c, "/t.S/Stream", "application/grpc", buf, n);
	run_ms(&f->loop, 150);
	assert_non_null(S.held);
	client_close(&c);
	run_ms(&f->loop, 150);
	assert_null(S.held);
	assert_int_equal(S.cancels, 1);
	zw_grpc_server_stats(f->srv, &st);
	assert_int_equal(st.connections, 0);
	assert_int_equal(st.calls, 0);
}

static void test_not_http2(void **state)
{
	struct fx *f = *state;
	struct client c, c2;
	static const char req[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
	uv_buf_t b = uv_buf_init((char *)req, sizeof(req) - 1);
	uint8_t buf[16];
	size_t n = frame(buf, 0, 1, "x", 1);
	struct zw_grpc_stats st;

	client_open(&c, &f->loop, zw_grpc_server_port(f->srv), false);
	assert_true(uv_try_write((uv_stream_t *)&c.tcp, &b, 1) > 0);
	run_until(&f->loop, &c.eof);
	assert_true(c.eof); /* the server closed the connection */
	zw_grpc_server_stats(f->srv, &st);
	assert_int_equal(st.malformed_total, 1);
	client_close(&c);
	/* Still serving. */
	client_open(&c2, &f->loop, zw_grpc_server_port(f->srv), true);
	roundtrip(f, &c2, "/t.S/Echo", "application/grpc", buf, n);
	assert_int_equal(c2.r.grpc_status, 0);
	client_close(&c2);
}

static void test_stop_with_open_stream(void **state)
{
	struct fx *f = *state;
	struct client c;
	uint8_t buf[16];
	size_t n = frame(buf, 0, 2, "s1", 2);

	client_open(&c, &f->loop, zw_grpc_server_port(f->srv), true);
	client_request(&c, "/t.S/Stream", "application/grpc", buf, n);
	run_ms(&f->loop, 150);
	assert_non_null(S.held);
	/* teardown stops the server with the stream open: on_cancel runs. */
	zw_grpc_server_stop(f->srv, on_stopped, f);
	run_until(&f->loop, &f->stopped);
	assert_true(f->stopped);
	assert_null(S.held);
	client_close(&c);
	/* Re-create for teardown. */
	{
		struct zw_grpc_config cfg;
		struct zw_grpc_handlers h = {methods, 4, on_cancel, NULL};

		f->stopped = false;
		zw_grpc_config_default(&cfg);
		assert_int_equal(zw_grpc_server_start(&f->loop, "127.0.0.1", 0, &cfg, &h, &f->srv),
		                 0);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_setup_teardown(test_unary_ok, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_empty_message_ok, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_unknown_method, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_wrong_content_type, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_malformed_framing, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_connection_buffer_cap, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_handler_failure_and_message_encoding, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(test_stream_and_cancel, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_ping_keepalive, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_connection_loss_cancels, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_not_http2, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_stop_with_open_stream, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
