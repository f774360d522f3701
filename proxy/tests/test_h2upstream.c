/* Unit tests for proxy/h2upstream.c: the client connection against a real
 * HTTP/2 server in memory (proxy/h2conn.c on nghttp2's server session) as
 * the backend: request head translation, request and response bodies,
 * trailers (grpc-status, grpc-message), flow control both ways (a caller
 * that does not consume stops the backend's stream, not its siblings; a
 * backend that does not consume stops the request body queue; a body given
 * after its queue emptied resumes, with trailers or the end), backend
 * resets (REFUSED_STREAM retryable, others not), a GOAWAY whose last stream
 * id leaves a stream unprocessed, a detach (CANCEL upstream), interim heads
 * passed on, request trailers, and the gRPC helpers (grpc-timeout, status
 * mapping). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "h2conn.h"
#include "h2upstream.h"

/* ---- the backend: an h2conn server ------------------------------------------ */

struct bstream {
	int32_t id;
	char method[16], path[64], authority[64], te[16], ctype[32];
	int saw_host, saw_connection;
	size_t body;
	int body_end;
	int closed;
	uint32_t code;
	char trailers[128]; /* "name=value;" per request trailer field */
	int trailers_before_end;
};

struct backend {
	struct zw_h2conn *h;
	struct bstream s[16];
	size_t n;
	int auto_consume;
};

static void copy(char *dst, size_t cap, const char *src, size_t len)
{
	snprintf(dst, cap, "%.*s", (int)len, src);
}

static void *b_on_request(void *ctx, int32_t id, const struct zw_h2_request *rq)
{
	struct backend *b = ctx;
	struct bstream *st = &b->s[b->n++];
	memset(st, 0, sizeof(*st));
	st->id = id;
	copy(st->method, sizeof(st->method), rq->method, rq->method_len);
	copy(st->path, sizeof(st->path), rq->path, rq->path_len);
	if (rq->authority)
		copy(st->authority, sizeof(st->authority), rq->authority, rq->authority_len);
	for (size_t i = 0; i < rq->n_fields; i++) {
		const struct zw_h2_field *f = &rq->fields[i];
		if (f->name_len == 2 && memcmp(f->name, "te", 2) == 0)
			copy(st->te, sizeof(st->te), f->value, f->value_len);
		if (f->name_len == 12 && memcmp(f->name, "content-type", 12) == 0)
			copy(st->ctype, sizeof(st->ctype), f->value, f->value_len);
		st->saw_host |= f->name_len == 4 && memcmp(f->name, "host", 4) == 0;
		st->saw_connection |= f->name_len == 10 && memcmp(f->name, "connection", 10) == 0;
	}
	st->body_end = rq->end_stream;
	return st;
}

static int b_on_data(void *ctx, void *stream, const uint8_t *data, size_t len, int end)
{
	struct backend *b = ctx;
	struct bstream *st = stream;
	(void)data;
	st->body += len;
	st->body_end |= end;
	if (b->auto_consume && len)
		zw_h2conn_consume(b->h, st->id, len);
	return 0;
}

static void b_on_close(void *ctx, void *stream, uint32_t code)
{
	(void)ctx;
	struct bstream *st = stream;
	st->closed = 1;
	st->code = code;
}

static void b_on_trailers(void *ctx, void *stream, const struct zw_h2_field *f, size_t n)
{
	(void)ctx;
	struct bstream *st = stream;
	st->trailers_before_end = !st->body_end;
	for (size_t i = 0; i < n; i++) {
		size_t k = strlen(st->trailers);
		snprintf(st->trailers + k, sizeof(st->trailers) - k, "%.*s=%.*s;",
		         (int)f[i].name_len, f[i].name, (int)f[i].value_len, f[i].value);
	}
}

static const struct zw_h2_callbacks backend_cb = {b_on_request, b_on_data, b_on_close, NULL,
                                                  b_on_trailers};

/* ---- the proxy side: the module under test ----------------------------------- */

struct ustream {
	int32_t id;
	int status;
	int head_end;
	char ctype[32];
	size_t body;
	int body_end;
	char grpc_status[8], grpc_message[64];
	int trailers;
	int closed, retry;
	uint32_t code;
	int writable;
	int consume;      /* give window back at once */
	size_t detach_at; /* detach inside on_data once this much body came */
	int interims;     /* interim heads passed on */
	int first_interim;
	char link[64];
};

struct proxy {
	struct zw_h2up *c;
	size_t resets_sent; /* RST_STREAM frames written to the backend */
	struct ustream s[16];
	size_t n;
};

static int u_on_head(void *ctx, void *stream, int status, const struct zw_h2_field *f, size_t n,
                     int end)
{
	(void)ctx;
	struct ustream *st = stream;
	st->status = status;
	st->head_end = end;
	for (size_t i = 0; i < n; i++)
		if (f[i].name_len == 12 && memcmp(f[i].name, "content-type", 12) == 0)
			copy(st->ctype, sizeof(st->ctype), f[i].value, f[i].value_len);
	return 0;
}

static int u_on_data(void *ctx, void *stream, const uint8_t *data, size_t len, int end)
{
	struct proxy *p = ctx;
	struct ustream *st = stream;
	(void)data;
	st->body += len;
	st->body_end |= end;
	if (st->consume && len)
		zw_h2up_consume(p->c, st->id, len);
	if (st->detach_at && st->body >= st->detach_at) {
		st->detach_at = 0;
		zw_h2up_detach(p->c, st->id);
	}
	return 0;
}

static void u_on_trailers(void *ctx, void *stream, const struct zw_h2_field *f, size_t n)
{
	(void)ctx;
	struct ustream *st = stream;
	st->trailers = 1;
	for (size_t i = 0; i < n; i++) {
		if (f[i].name_len == 11 && memcmp(f[i].name, "grpc-status", 11) == 0)
			copy(st->grpc_status, sizeof(st->grpc_status), f[i].value, f[i].value_len);
		if (f[i].name_len == 12 && memcmp(f[i].name, "grpc-message", 12) == 0)
			copy(st->grpc_message, sizeof(st->grpc_message), f[i].value,
			     f[i].value_len);
	}
}

static void u_on_close(void *ctx, void *stream, uint32_t code, int retry)
{
	(void)ctx;
	struct ustream *st = stream;
	st->closed = 1;
	st->code = code;
	st->retry = retry;
}

static void u_on_writable(void *ctx, void *stream)
{
	(void)ctx;
	((struct ustream *)stream)->writable++;
}

static void u_on_interim(void *ctx, void *stream, int status, const struct zw_h2_field *f, size_t n)
{
	(void)ctx;
	struct ustream *st = stream;
	if (!st->interims++)
		st->first_interim = status;
	for (size_t i = 0; i < n; i++)
		if (f[i].name_len == 4 && memcmp(f[i].name, "link", 4) == 0)
			copy(st->link, sizeof(st->link), f[i].value, f[i].value_len);
}

static const struct zw_h2up_callbacks proxy_cb = {u_on_head,  u_on_data,     u_on_trailers,
                                                  u_on_close, u_on_writable, u_on_interim};

/* ---- the wire ------------------------------------------------------------------ */

struct pair {
	struct backend b;
	struct proxy p;
};

/* Counts the RST_STREAM frames in a run of whole frames (what one output
 * call gives, the client preface skipped). */
static size_t count_resets(const uint8_t *d, size_t n)
{
	size_t k = 0, off = 0;
	if (n >= ZW_H2_PREFACE_LEN && memcmp(d, ZW_H2_PREFACE, ZW_H2_PREFACE_LEN) == 0)
		off = ZW_H2_PREFACE_LEN;
	while (off + 9 <= n) {
		size_t len = (size_t)d[off] << 16 | (size_t)d[off + 1] << 8 | d[off + 2];
		k += d[off + 3] == 3;
		off += 9 + len;
	}
	return k;
}

/* Moves bytes both ways until neither side has anything to say. */
static void pump(struct pair *x)
{
	for (int round = 0; round < 1000; round++) {
		const uint8_t *d;
		size_t n1 = 0, n2 = 0;
		assert_int_equal(zw_h2up_output(x->p.c, &d, &n1), 0);
		x->p.resets_sent += count_resets(d, n1);
		if (n1)
			assert_int_equal(zw_h2conn_feed(x->b.h, d, n1), 0);
		assert_int_equal(zw_h2conn_output(x->b.h, &d, &n2), 0);
		if (n2)
			assert_int_equal(zw_h2up_feed(x->p.c, d, n2), 0);
		if (!n1 && !n2)
			return;
	}
	fail_msg("the connection did not settle");
}

static int setup(void **state)
{
	struct pair *x = calloc(1, sizeof(*x));
	assert_int_equal(zw_h2conn_new(NULL, &backend_cb, &x->b, &x->b.h), 0);
	assert_int_equal(zw_h2up_new(NULL, &proxy_cb, &x->p, &x->p.c), 0);
	x->b.auto_consume = 1;
	pump(x);
	*state = x;
	return 0;
}

static int teardown(void **state)
{
	struct pair *x = *state;
	zw_h2up_free(x->p.c);
	zw_h2conn_free(x->b.h);
	free(x);
	return 0;
}

static const struct zw_h2_field grpc_fields[] = {
        {"Content-Type", "application/grpc", 12, 16},
        {"TE", "trailers", 2, 8},
        {"Host", "ignored.test", 4, 12},
        {"Connection", "keep-alive", 10, 10},
};

static int32_t open_stream(struct pair *x, struct ustream *u, int end)
{
	struct zw_h2up_head h = {
	        .method = "POST",
	        .authority = "svc.test",
	        .path = "/pkg.Svc/Call",
	        .fields = grpc_fields,
	        .n_fields = 4,
	};
	u->consume = 1;
	int32_t id = zw_h2up_request(x->p.c, &h, end, u);
	assert_true(id > 0);
	u->id = id;
	x->p.n++;
	return id;
}

/* ---- tests ----------------------------------------------------------------------- */

/* A gRPC-shaped exchange: head (names lower-cased, Host and Connection
 * dropped, te: trailers kept), a request body, a response body and the
 * trailers with grpc-status and grpc-message intact. */
static void test_exchange_with_trailers(void **state)
{
	struct pair *x = *state;
	struct ustream *u = &x->p.s[0];
	int32_t id = open_stream(x, u, 0);
	static const uint8_t msg[] = "\0\0\0\0\5hello";
	assert_int_equal(zw_h2up_data(x->p.c, id, msg, 10, 1), 0);
	pump(x);
	struct bstream *b = &x->b.s[0];
	assert_int_equal(x->b.n, 1);
	assert_string_equal(b->method, "POST");
	assert_string_equal(b->path, "/pkg.Svc/Call");
	assert_string_equal(b->authority, "svc.test");
	assert_string_equal(b->te, "trailers");
	assert_string_equal(b->ctype, "application/grpc");
	assert_false(b->saw_host);
	assert_false(b->saw_connection);
	assert_int_equal(b->body, 10);
	assert_true(b->body_end);

	struct zw_h2_field rh[] = {{"content-type", "application/grpc", 12, 16}};
	assert_int_equal(zw_h2conn_respond(x->b.h, b->id, 200, rh, 1, 0), 0);
	assert_int_equal(zw_h2conn_data(x->b.h, b->id, msg, 10, 0), 10);
	struct zw_h2_field tr[] = {{"grpc-status", "5", 11, 1},
	                           {"grpc-message", "no such thing", 12, 13}};
	assert_int_equal(zw_h2conn_trailers(x->b.h, b->id, tr, 2), 0);
	pump(x);
	assert_int_equal(u->status, 200);
	assert_string_equal(u->ctype, "application/grpc");
	assert_int_equal(u->body, 10);
	assert_true(u->trailers);
	assert_string_equal(u->grpc_status, "5");
	assert_string_equal(u->grpc_message, "no such thing");
	assert_true(u->closed);
	assert_int_equal(u->code, 0);
	assert_int_equal(zw_h2up_streams(x->p.c), 0);
	assert_true(zw_h2up_can_open(x->p.c));
}

/* A trailers-only answer (HEADERS with END_STREAM) is a head with end set. */
static void test_trailers_only(void **state)
{
	struct pair *x = *state;
	struct ustream *u = &x->p.s[0];
	open_stream(x, u, 1);
	pump(x);
	struct zw_h2_field rh[] = {{"content-type", "application/grpc", 12, 16},
	                           {"grpc-status", "12", 11, 2}};
	assert_int_equal(zw_h2conn_respond(x->b.h, x->b.s[0].id, 200, rh, 2, 1), 0);
	pump(x);
	assert_int_equal(u->status, 200);
	assert_true(u->head_end);
	assert_true(u->closed);
	assert_false(u->trailers);
}

/* The receive window goes back only when the caller consumes: a stream
 * whose client does not read stops at its window, while a sibling on the
 * same connection still gets everything. */
static void test_response_flow_control(void **state)
{
	struct pair *x = *state;
	struct ustream *slow = &x->p.s[0], *fast = &x->p.s[1];
	open_stream(x, slow, 1);
	open_stream(x, fast, 1);
	slow->consume = 0;
	pump(x);
	static uint8_t big[65536];
	for (size_t i = 0; i < 2; i++)
		assert_int_equal(zw_h2conn_respond(x->b.h, x->b.s[i].id, 200, NULL, 0, 0), 0);
	size_t sent[2] = {0, 0};
	for (int round = 0; round < 200; round++) {
		for (size_t i = 0; i < 2; i++) {
			if (sent[i] >= 300000)
				continue;
			long k = zw_h2conn_data(
			        x->b.h, x->b.s[i].id, big,
			        300000 - sent[i] < sizeof(big) ? 300000 - sent[i] : sizeof(big), 0);
			assert_true(k >= 0);
			sent[i] += (size_t)k;
		}
		pump(x);
	}
	assert_int_equal(fast->body, 300000);
	assert_int_equal(slow->body, 65535); /* one window, no more */
	zw_h2up_consume(x->p.c, slow->id, slow->body);
	slow->consume = 1;
	for (int round = 0; round < 50; round++) {
		long k = sent[0] < 300000
		                 ? zw_h2conn_data(x->b.h, x->b.s[0].id, big,
		                                  300000 - sent[0] < sizeof(big) ? 300000 - sent[0]
		                                                                 : sizeof(big),
		                                  0)
		                 : 0;
		sent[0] += (size_t)k;
		pump(x);
	}
	assert_int_equal(slow->body, 300000);
}

/* A backend that does not consume keeps the request body queued: the
 * caller sees bytes waiting and is told once they are out. */
static void test_request_backpressure(void **state)
{
	struct pair *x = *state;
	struct ustream *u = &x->p.s[0];
	int32_t id = open_stream(x, u, 0);
	x->b.auto_consume = 0;
	static uint8_t chunk[100000];
	assert_int_equal(zw_h2up_data(x->p.c, id, chunk, sizeof(chunk), 0), 0);
	pump(x);
	assert_int_equal(x->b.s[0].body, 65535);
	assert_int_equal(zw_h2up_queued(x->p.c, id), sizeof(chunk) - 65535);
	assert_int_equal(u->writable, 0);
	zw_h2conn_consume(x->b.h, x->b.s[0].id, x->b.s[0].body);
	pump(x);
	assert_int_equal(x->b.s[0].body, sizeof(chunk));
	assert_int_equal(zw_h2up_queued(x->p.c, id), 0);
	assert_int_equal(u->writable, 1);
	/* past the queue bound: refused */
	static uint8_t huge[(1 << 20) + 1];
	assert_int_equal(zw_h2up_data(x->p.c, id, huge, sizeof(huge), 0), -1);
}

/* A request body given after the stream started: nghttp2 waits on the
 * empty queue and goes on as bytes, the end or the trailers arrive; the
 * caller hears once per emptied queue, not for an empty call. A body ended
 * that way counts as our side's end: a detach once the response is
 * complete sends no reset. */
static void test_request_body_resumed_after_empty_queue(void **state)
{
	struct pair *x = *state;
	struct ustream *u = &x->p.s[0], *v = &x->p.s[1];
	int32_t id = open_stream(x, u, 0);
	int32_t id2 = open_stream(x, v, 0);
	pump(x);
	struct bstream *b = &x->b.s[0], *b2 = &x->b.s[1];
	assert_int_equal(x->b.n, 2);
	assert_int_equal(b->body, 0);
	assert_false(b->body_end);
	assert_int_equal(u->writable, 0);

	assert_int_equal(zw_h2up_data(x->p.c, id, (const uint8_t *)"abc", 3, 0), 0);
	pump(x);
	assert_int_equal(b->body, 3);
	assert_false(b->body_end);
	assert_int_equal(zw_h2up_queued(x->p.c, id), 0);
	assert_int_equal(u->writable, 1);
	assert_int_equal(zw_h2up_data(x->p.c, id, NULL, 0, 0), 0);
	pump(x);
	assert_int_equal(u->writable, 1);
	assert_int_equal(zw_h2up_data(x->p.c, id, (const uint8_t *)"defg", 4, 0), 0);
	pump(x);
	assert_int_equal(b->body, 7);
	assert_int_equal(u->writable, 2);

	/* Trailers after the queue emptied: after the last DATA, END_STREAM. */
	struct zw_h2_field tr[] = {{"X-Sum", "7", 5, 1}};
	assert_int_equal(zw_h2up_trailers(x->p.c, id, tr, 1), 0);
	pump(x);
	assert_true(b->body_end);
	assert_true(b->trailers_before_end);
	assert_string_equal(b->trailers, "x-sum=7;");
	assert_int_equal(b->body, 7);
	assert_int_equal(u->writable, 2);

	/* The end alone after the queue emptied. */
	assert_int_equal(zw_h2up_data(x->p.c, id2, (const uint8_t *)"xy", 2, 0), 0);
	pump(x);
	assert_false(b2->body_end);
	assert_int_equal(zw_h2up_data(x->p.c, id2, NULL, 0, 1), 0);
	assert_int_equal(zw_h2up_data(x->p.c, id2, (const uint8_t *)"z", 1, 0), -1);
	pump(x);
	assert_int_equal(b2->body, 2);
	assert_true(b2->body_end);
	assert_string_equal(b2->trailers, "");
	assert_int_equal(v->writable, 1);

	static const uint8_t five[5] = "01234";
	v->detach_at = 5;
	assert_int_equal(zw_h2conn_respond(x->b.h, b->id, 204, NULL, 0, 1), 0);
	assert_int_equal(zw_h2conn_respond(x->b.h, b2->id, 200, NULL, 0, 0), 0);
	assert_int_equal(zw_h2conn_data(x->b.h, b2->id, five, 5, 1), 5);
	pump(x);
	assert_true(u->closed);
	assert_int_equal(u->code, 0);
	assert_int_equal(v->body, 5);
	assert_int_equal(x->p.resets_sent, 0);
	assert_int_equal(zw_h2up_streams(x->p.c), 0);
}

/* RST_STREAM from the backend: REFUSED_STREAM may be retried, another
 * code not. */
static void test_backend_resets(void **state)
{
	struct pair *x = *state;
	struct ustream *a = &x->p.s[0], *b = &x->p.s[1];
	open_stream(x, a, 1);
	open_stream(x, b, 1);
	pump(x);
	zw_h2conn_reset(x->b.h, x->b.s[0].id, 0x7); /* REFUSED_STREAM */
	zw_h2conn_reset(x->b.h, x->b.s[1].id, 0x2); /* INTERNAL_ERROR */
	pump(x);
	assert_true(a->closed && a->retry);
	assert_int_equal(a->code, 0x7);
	assert_true(b->closed && !b->retry);
	assert_int_equal(b->code, 0x2);
}

/* GOAWAY with last-stream-id 1 while streams 1 and 3 are open: 3 is
 * retryable, 1 completes, no new stream opens, then the connection is
 * done. */
static void test_goaway_last_stream_id(void **state)
{
	struct pair *x = *state;
	struct ustream *a = &x->p.s[0], *b = &x->p.s[1];
	assert_int_equal(open_stream(x, a, 1), 1);
	assert_int_equal(open_stream(x, b, 1), 3);
	pump(x);
	static const uint8_t goaway[] = {0, 0, 8, 7, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0};
	assert_int_equal(zw_h2up_feed(x->p.c, goaway, sizeof(goaway)), 0);
	assert_true(b->closed && b->retry);
	assert_false(a->closed);
	assert_false(zw_h2up_can_open(x->p.c));
	struct zw_h2up_head h = {.method = "GET", .path = "/"};
	assert_int_equal(zw_h2up_request(x->p.c, &h, 1, &x->p.s[2]), -1);
	assert_false(zw_h2up_done(x->p.c));
	assert_int_equal(zw_h2conn_respond(x->b.h, x->b.s[0].id, 204, NULL, 0, 1), 0);
	pump(x);
	assert_int_equal(a->status, 204);
	assert_true(a->closed && !a->retry);
	assert_true(zw_h2up_done(x->p.c));
}

/* The caller goes first (its client reset): CANCEL reaches the backend and
 * no callback names the stream again. */
static void test_detach_cancels(void **state)
{
	struct pair *x = *state;
	struct ustream *u = &x->p.s[0];
	int32_t id = open_stream(x, u, 0);
	pump(x);
	zw_h2up_detach(x->p.c, id);
	pump(x);
	assert_true(x->b.s[0].closed);
	assert_int_equal(x->b.s[0].code, 0x8); /* CANCEL */
	assert_false(u->closed);
	assert_int_equal(zw_h2up_streams(x->p.c), 0);
}

/* A caller that lets go as the last body byte arrives (a body complete by
 * its length, before END_STREAM is reported) sends no RST_STREAM: a reset
 * per finished request would trip the backend's rapid-reset limit. While
 * the backend has not finished, a detach does cancel. */
static void test_detach_after_end_sends_no_reset(void **state)
{
	struct pair *x = *state;
	struct ustream *u = &x->p.s[0], *v = &x->p.s[1];
	open_stream(x, u, 1);
	open_stream(x, v, 1);
	u->detach_at = 10;
	v->detach_at = 5;
	pump(x);
	static const uint8_t ten[10] = "0123456789";
	for (size_t i = 0; i < 2; i++)
		assert_int_equal(zw_h2conn_respond(x->b.h, x->b.s[i].id, 200, NULL, 0, 0), 0);
	assert_int_equal(zw_h2conn_data(x->b.h, x->b.s[0].id, ten, 10, 1), 10);
	assert_int_equal(zw_h2conn_data(x->b.h, x->b.s[1].id, ten, 5, 0), 5);
	pump(x);
	assert_int_equal(u->body, 10);
	assert_int_equal(x->p.resets_sent, 1); /* v's only */
	assert_int_equal(x->b.s[1].code, 0x8);
	assert_int_equal(zw_h2up_streams(x->p.c), 0);
}

/* Interim heads (103 with its fields, then 100) come through on_interim,
 * before the final head through on_head. */
static void test_interim_heads(void **state)
{
	struct pair *x = *state;
	struct ustream *u = &x->p.s[0];
	open_stream(x, u, 1);
	pump(x);
	struct zw_h2_field hints[] = {{"link", "</a.js>; rel=preload", 4, 20}};
	assert_int_equal(zw_h2conn_interim(x->b.h, x->b.s[0].id, 103, hints, 1), 0);
	pump(x);
	assert_int_equal(u->interims, 1);
	assert_int_equal(u->first_interim, 103);
	assert_string_equal(u->link, "</a.js>; rel=preload");
	assert_int_equal(u->status, 0);
	assert_int_equal(zw_h2conn_interim(x->b.h, x->b.s[0].id, 100, NULL, 0), 0);
	assert_int_equal(zw_h2conn_respond(x->b.h, x->b.s[0].id, 204, NULL, 0, 1), 0);
	pump(x);
	assert_int_equal(u->interims, 2);
	assert_int_equal(u->status, 204);
	assert_true(u->closed);
	assert_int_equal(u->code, 0);
}

/* A request body that ends with trailers: DATA, then a HEADERS frame with
 * END_STREAM carrying them (names lower-cased); nothing may follow. */
static void test_request_trailers(void **state)
{
	struct pair *x = *state;
	struct ustream *u = &x->p.s[0];
	int32_t id = open_stream(x, u, 0);
	assert_int_equal(zw_h2up_data(x->p.c, id, (const uint8_t *)"abc", 3, 0), 0);
	struct zw_h2_field tr[] = {{"X-Checksum", "900150983cd24fb0", 10, 16}};
	assert_int_equal(zw_h2up_trailers(x->p.c, id, tr, 1), 0);
	assert_int_equal(zw_h2up_trailers(x->p.c, id, tr, 1), -1);
	assert_int_equal(zw_h2up_data(x->p.c, id, (const uint8_t *)"d", 1, 0), -1);
	pump(x);
	struct bstream *b = &x->b.s[0];
	assert_int_equal(b->body, 3);
	assert_true(b->body_end);
	assert_string_equal(b->trailers, "x-checksum=900150983cd24fb0;");
	assert_true(b->trailers_before_end);
	assert_int_equal(zw_h2conn_respond(x->b.h, b->id, 204, NULL, 0, 1), 0);
	pump(x);
	assert_int_equal(u->status, 204);
	assert_true(u->closed);
	assert_int_equal(u->code, 0);
	/* Trailers alone after an empty body, on a second stream. */
	struct ustream *v = &x->p.s[1];
	id = open_stream(x, v, 0);
	assert_int_equal(zw_h2up_trailers(x->p.c, id, tr, 1), 0);
	pump(x);
	assert_int_equal(x->b.s[1].body, 0);
	assert_true(x->b.s[1].body_end);
	assert_string_equal(x->b.s[1].trailers, "x-checksum=900150983cd24fb0;");
}

/* Freeing the connection ends attached streams with CANCEL, not retry. */
static void test_free_ends_streams(void **state)
{
	struct pair *x = *state;
	struct ustream *u = &x->p.s[0];
	open_stream(x, u, 1);
	pump(x);
	zw_h2up_free(x->p.c);
	x->p.c = NULL;
	assert_true(u->closed);
	assert_int_equal(u->code, 0x8);
	assert_false(u->retry);
}

static void test_grpc_timeout(void **state)
{
	(void)state;
	static const struct {
		const char *v;
		int rc;
		uint64_t ms;
	} cases[] = {
	        {"1S", 0, 1000},       {"100m", 0, 100},
	        {"2M", 0, 120000},     {"1H", 0, 3600000},
	        {"1500u", 0, 2},       {"1n", 0, 1},
	        {"0m", 0, 0},          {"99999999S", 0, 99999999000ull},
	        {"123456789S", -1, 0}, {"S", -1, 0},
	        {"10x", -1, 0},        {"1.5S", -1, 0},
	        {"-1S", -1, 0},        {"", -1, 0},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint64_t ms = 7;
		assert_int_equal(zw_h2up_grpc_timeout(cases[i].v, strlen(cases[i].v), &ms),
		                 cases[i].rc);
		if (cases[i].rc == 0)
			assert_int_equal(ms, cases[i].ms);
	}
}

static void test_grpc_status(void **state)
{
	(void)state;
	assert_int_equal(zw_h2up_grpc_status(504, 1), 4);
	assert_int_equal(zw_h2up_grpc_status(504, 0), 14);
	assert_int_equal(zw_h2up_grpc_status(502, 0), 14);
	assert_int_equal(zw_h2up_grpc_status(503, 1), 14);
	assert_int_equal(zw_h2up_grpc_status(404, 0), 12);
	assert_int_equal(zw_h2up_grpc_status(429, 0), 8);
	assert_int_equal(zw_h2up_grpc_status(401, 0), 16);
	assert_int_equal(zw_h2up_grpc_status(403, 0), 7);
	assert_int_equal(zw_h2up_grpc_status(400, 0), 3);
	assert_int_equal(zw_h2up_grpc_status(500, 0), 2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_setup_teardown(test_exchange_with_trailers, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_trailers_only, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_response_flow_control, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_request_backpressure, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_request_body_resumed_after_empty_queue, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(test_backend_resets, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_goaway_last_stream_id, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_detach_cancels, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_detach_after_end_sends_no_reset, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(test_interim_heads, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_request_trailers, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_free_ends_streams, setup, teardown),
	        cmocka_unit_test(test_grpc_timeout),
	        cmocka_unit_test(test_grpc_status),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
