/* Unit tests for proxy/h2conn.c: a real HTTP/2 client (an nghttp2 client
 * session, in memory) against the server connection, and hand-built
 * hostile frame sequences for each hardening limit: concurrent streams,
 * header list size (HPACK bomb), CONTINUATION flood, rapid reset, SETTINGS
 * and PING floods, flow control and bounded response buffering (a body
 * resumed after its queue emptied, with trailers or the end); request
 * trailers (and a section past the limit dropped) and interim heads; and
 * the header helpers h2upstream.c shares (connection-specific fields,
 * lower-cased names, field blocks). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <nghttp2/nghttp2.h>

#include "h2conn.h"
#include "http1.h"

/* ---- the server side's caller -------------------------------------------- */

struct sstream {
	int32_t id;
	char method[16], path[256], authority[256];
	int end_at_head;
	size_t body;
	int body_end;
	int closed;
	uint32_t close_code;
	int writable;
	char trailers[256]; /* "name=value;" per trailer field */
	int trailers_before_end;
};

struct server {
	struct zw_h2conn *h;
	struct sstream streams[4096];
	size_t n;
	int refuse;
	size_t fields_seen;
};

static void *s_on_request(void *ctx, int32_t id, const struct zw_h2_request *rq)
{
	struct server *s = ctx;
	if (s->refuse || s->n >= sizeof(s->streams) / sizeof(s->streams[0]))
		return NULL;
	struct sstream *st = &s->streams[s->n++];
	memset(st, 0, sizeof(*st));
	st->id = id;
	snprintf(st->method, sizeof(st->method), "%.*s", (int)rq->method_len, rq->method);
	snprintf(st->path, sizeof(st->path), "%.*s", (int)rq->path_len, rq->path);
	if (rq->authority)
		snprintf(st->authority, sizeof(st->authority), "%.*s", (int)rq->authority_len,
		         rq->authority);
	st->end_at_head = rq->end_stream;
	s->fields_seen = rq->n_fields;
	return st;
}

static int s_on_data(void *ctx, void *stream, const uint8_t *data, size_t len, int end)
{
	(void)ctx;
	(void)data;
	struct sstream *st = stream;
	st->body += len;
	st->body_end |= end;
	return 0;
}

static void s_on_close(void *ctx, void *stream, uint32_t code)
{
	(void)ctx;
	struct sstream *st = stream;
	st->closed = 1;
	st->close_code = code;
}

static void s_on_writable(void *ctx, void *stream)
{
	(void)ctx;
	((struct sstream *)stream)->writable++;
}

static void s_on_trailers(void *ctx, void *stream, const struct zw_h2_field *f, size_t n)
{
	(void)ctx;
	struct sstream *st = stream;
	st->trailers_before_end = !st->body_end;
	for (size_t i = 0; i < n; i++) {
		size_t k = strlen(st->trailers);
		snprintf(st->trailers + k, sizeof(st->trailers) - k, "%.*s=%.*s;",
		         (int)f[i].name_len, f[i].name, (int)f[i].value_len, f[i].value);
	}
}

static const struct zw_h2_callbacks server_cb = {s_on_request, s_on_data, s_on_close, s_on_writable,
                                                 s_on_trailers};

/* ---- an nghttp2 client in memory ------------------------------------------- */

struct client {
	nghttp2_session *ng;
	int status[64];
	size_t body[64];
	int trailer_seen[64];
	char trailer_value[64][64];
	int interim[64];      /* 1xx heads seen */
	int first_status[64]; /* :status of the first head */
	char link[64][64];    /* a link field of an interim head */
	int closed[64];
	uint32_t close_code[64];
	int goaway;
	uint32_t goaway_code;
	const uint8_t *upload;
	size_t upload_len, upload_off;
	const nghttp2_nv *upload_trailers; /* sent after the upload */
	size_t n_upload_trailers;
};

static int c_on_header(nghttp2_session *ng, const nghttp2_frame *f, const uint8_t *name, size_t nl,
                       const uint8_t *value, size_t vl, uint8_t flags, void *arg)
{
	(void)ng;
	(void)flags;
	struct client *c = arg;
	int32_t id = f->hd.stream_id;
	if (id >= 128 || id < 0)
		return 0;
	if (nl == 7 && memcmp(name, ":status", 7) == 0) {
		c->status[id / 2] = (int)strtol((const char *)value, NULL, 10);
		c->interim[id / 2] += value[0] == '1';
		if (!c->first_status[id / 2])
			c->first_status[id / 2] = c->status[id / 2];
	}
	if (nl == 4 && memcmp(name, "link", 4) == 0)
		snprintf(c->link[id / 2], 64, "%.*s", (int)vl, value);
	if (f->headers.cat == NGHTTP2_HCAT_HEADERS && nl == 11 &&
	    memcmp(name, "grpc-status", 11) == 0) {
		c->trailer_seen[id / 2] = 1;
		snprintf(c->trailer_value[id / 2], 64, "%.*s", (int)vl, value);
	}
	return 0;
}

static int c_on_data(nghttp2_session *ng, uint8_t flags, int32_t id, const uint8_t *d, size_t len,
                     void *arg)
{
	(void)ng;
	(void)flags;
	(void)d;
	struct client *c = arg;
	if (id < 128)
		c->body[id / 2] += len;
	return 0;
}

static int c_on_close(nghttp2_session *ng, int32_t id, uint32_t code, void *arg)
{
	(void)ng;
	struct client *c = arg;
	if (id < 128) {
		c->closed[id / 2] = 1;
		c->close_code[id / 2] = code;
	}
	return 0;
}

static int c_on_frame(nghttp2_session *ng, const nghttp2_frame *f, void *arg)
{
	(void)ng;
	struct client *c = arg;
	if (f->hd.type == NGHTTP2_GOAWAY) {
		c->goaway = 1;
		c->goaway_code = f->goaway.error_code;
	}
	return 0;
}

static void client_init(struct client *c)
{
	nghttp2_session_callbacks *cb;
	memset(c, 0, sizeof(*c));
	assert_int_equal(nghttp2_session_callbacks_new(&cb), 0);
	nghttp2_session_callbacks_set_on_header_callback(cb, c_on_header);
	nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, c_on_data);
	nghttp2_session_callbacks_set_on_stream_close_callback(cb, c_on_close);
	nghttp2_session_callbacks_set_on_frame_recv_callback(cb, c_on_frame);
	assert_int_equal(nghttp2_session_client_new(&c->ng, cb, c), 0);
	nghttp2_session_callbacks_del(cb);
	assert_int_equal(nghttp2_submit_settings(c->ng, NGHTTP2_FLAG_NONE, NULL, 0), 0);
}

/* Moves bytes both ways until neither side has anything to say. Returns the
 * server's last feed result. */
static int pump(struct client *c, struct server *s)
{
	int rc = 0;
	for (int round = 0; round < 1000; round++) {
		const uint8_t *p;
		ssize_t n;
		size_t moved = 0;
		while ((n = nghttp2_session_mem_send(c->ng, &p)) > 0) {
			moved += (size_t)n;
			if (rc == 0)
				rc = zw_h2conn_feed(s->h, p, (size_t)n);
		}
		size_t len;
		if (zw_h2conn_output(s->h, &p, &len) < 0)
			return -1;
		if (len) {
			moved += len;
			nghttp2_session_mem_recv(c->ng, p, len);
		}
		if (!moved)
			break;
	}
	return rc;
}

static nghttp2_nv nv(const char *n, const char *v)
{
	return (nghttp2_nv){(uint8_t *)n, (uint8_t *)v, strlen(n), strlen(v), NGHTTP2_NV_FLAG_NONE};
}

/* Submits GET / for authority "a" on the client, without a body. Returns
 * the stream id. */
static int32_t submit_get(struct client *c)
{
	nghttp2_nv req[] = {nv(":method", "GET"), nv(":scheme", "http"), nv(":authority", "a"),
	                    nv(":path", "/")};
	return nghttp2_submit_request(c->ng, NULL, req, 4, NULL, NULL);
}

static ssize_t upload_read(nghttp2_session *ng, int32_t id, uint8_t *buf, size_t length,
                           uint32_t *flags, nghttp2_data_source *src, void *arg)
{
	(void)src;
	struct client *c = arg;
	size_t n = c->upload_len - c->upload_off;
	if (n > length)
		n = length;
	memcpy(buf, c->upload + c->upload_off, n);
	c->upload_off += n;
	if (c->upload_off == c->upload_len) {
		*flags |= NGHTTP2_DATA_FLAG_EOF;
		if (c->n_upload_trailers) {
			*flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
			assert_int_equal(nghttp2_submit_trailer(ng, id, c->upload_trailers,
			                                        c->n_upload_trailers),
			                 0);
		}
	}
	return (ssize_t)n;
}

static void server_init(struct server *s, const struct zw_h2_limits *lim)
{
	memset(s, 0, sizeof(*s));
	assert_int_equal(zw_h2conn_new(lim, &server_cb, s, &s->h), 0);
}

static void test_request_response_trailers(void **state)
{
	(void)state;
	struct server s;
	struct client c;
	server_init(&s, NULL);
	client_init(&c);
	nghttp2_nv req[] = {nv(":method", "GET"),         nv(":scheme", "http"),
	                    nv(":authority", "app.test"), nv(":path", "/hello?x=1"),
	                    nv("user-agent", "t"),        nv("accept", "*/*")};
	int32_t id = nghttp2_submit_request(c.ng, NULL, req, 6, NULL, NULL);
	assert_int_equal(id, 1);
	assert_int_equal(pump(&c, &s), 0);
	assert_int_equal(s.n, 1);
	assert_string_equal(s.streams[0].method, "GET");
	assert_string_equal(s.streams[0].path, "/hello?x=1");
	assert_string_equal(s.streams[0].authority, "app.test");
	assert_int_equal(s.streams[0].end_at_head, 1);
	assert_int_equal(s.fields_seen, 2);

	/* A response with connection-specific fields (dropped), mixed-case
	 * names (lower-cased), a body and gRPC-style trailers. */
	struct zw_h2_field rf[] = {{"Content-Type", "text/plain", 12, 10},
	                           {"Connection", "keep-alive", 10, 10},
	                           {"Transfer-Encoding", "chunked", 17, 7},
	                           {"X-Thing", "1", 7, 1}};
	assert_int_equal(zw_h2conn_respond(s.h, id, 200, rf, 4, 0), 0);
	assert_int_equal(zw_h2conn_data(s.h, id, (const uint8_t *)"hello world", 11, 0), 11);
	struct zw_h2_field tr[] = {{"Grpc-Status", "0", 11, 1}};
	assert_int_equal(zw_h2conn_trailers(s.h, id, tr, 1), 0);
	assert_int_equal(pump(&c, &s), 0);
	assert_int_equal(c.status[0], 200);
	assert_int_equal(c.body[0], 11);
	assert_int_equal(c.trailer_seen[0], 1);
	assert_string_equal(c.trailer_value[0], "0");
	assert_int_equal(c.closed[0], 1);
	assert_int_equal(c.close_code[0], 0);
	assert_int_equal(s.streams[0].closed, 1);
	assert_int_equal(s.streams[0].close_code, 0);
	nghttp2_session_del(c.ng);
	zw_h2conn_free(s.h);
}

static void test_flow_control_waits_for_consume(void **state)
{
	(void)state;
	struct server s;
	struct client c;
	static uint8_t blob[200000];
	server_init(&s, NULL);
	client_init(&c);
	c.upload = blob;
	c.upload_len = sizeof(blob);
	nghttp2_nv req[] = {nv(":method", "POST"), nv(":scheme", "http"),
	                    nv(":authority", "app.test"), nv(":path", "/up")};
	nghttp2_data_provider prov = {.read_callback = upload_read};
	int32_t id = nghttp2_submit_request(c.ng, NULL, req, 4, &prov, NULL);
	assert_int_equal(pump(&c, &s), 0);
	/* Without consume, the client may send the initial window and no
	 * more: a slow upstream stops the client instead of filling memory. */
	assert_int_equal(s.streams[0].body, 65535);
	assert_int_equal(s.streams[0].body_end, 0);
	size_t seen = 0;
	for (int i = 0; i < 20 && !s.streams[0].body_end; i++) {
		zw_h2conn_consume(s.h, id, s.streams[0].body - seen);
		seen = s.streams[0].body;
		assert_int_equal(pump(&c, &s), 0);
	}
	assert_int_equal(s.streams[0].body, sizeof(blob));
	assert_int_equal(s.streams[0].body_end, 1);
	assert_int_equal(zw_h2conn_respond(s.h, id, 204, NULL, 0, 1), 0);
	assert_int_equal(pump(&c, &s), 0);
	assert_int_equal(c.status[0], 204);
	nghttp2_session_del(c.ng);
	zw_h2conn_free(s.h);
}

static void test_response_buffer_bounded_then_writable(void **state)
{
	(void)state;
	struct server s;
	struct client c;
	struct zw_h2_limits lim = {.max_stream_buffer = 1000};
	static uint8_t big[5000];
	server_init(&s, &lim);
	client_init(&c);
	int32_t id = submit_get(&c);
	assert_int_equal(pump(&c, &s), 0);
	assert_int_equal(zw_h2conn_respond(s.h, id, 200, NULL, 0, 0), 0);
	size_t sent = 0;
	for (int i = 0; i < 50 && sent < sizeof(big); i++) {
		long n = zw_h2conn_data(s.h, id, big + sent, sizeof(big) - sent, 1);
		assert_true(n >= 0 && n <= 1000);
		sent += (size_t)n;
		assert_int_equal(pump(&c, &s), 0);
	}
	assert_int_equal(sent, sizeof(big));
	assert_true(s.streams[0].writable >= 4);
	assert_int_equal(c.body[0], sizeof(big));
	assert_int_equal(c.closed[0], 1);
	nghttp2_session_del(c.ng);
	zw_h2conn_free(s.h);
}

/* A response body given after the head went out: nghttp2 waits on the
 * empty queue and goes on as bytes, the end or the trailers arrive; a
 * writer whose bytes were all taken hears nothing, one cut short hears
 * once, after bytes left. */
static void test_response_body_resumed_after_empty_queue(void **state)
{
	(void)state;
	struct server s;
	struct client c;
	struct zw_h2_limits lim = {.max_stream_buffer = 100};
	static uint8_t big[300];
	server_init(&s, &lim);
	client_init(&c);
	int32_t id = submit_get(&c);
	int32_t id2 = submit_get(&c);
	assert_int_equal(pump(&c, &s), 0);
	assert_int_equal(zw_h2conn_respond(s.h, id, 200, NULL, 0, 0), 0);
	assert_int_equal(zw_h2conn_respond(s.h, id2, 200, NULL, 0, 0), 0);
	assert_int_equal(pump(&c, &s), 0);
	assert_int_equal(c.status[0], 200);
	assert_int_equal(c.body[0], 0);
	assert_int_equal(c.closed[0], 0);

	assert_int_equal(zw_h2conn_data(s.h, id, (const uint8_t *)"hello", 5, 0), 5);
	assert_int_equal(pump(&c, &s), 0);
	assert_int_equal(c.body[0], 5);
	assert_int_equal(s.streams[0].writable, 0);
	assert_int_equal(zw_h2conn_data(s.h, id, big, 250, 0), 100);
	assert_int_equal(pump(&c, &s), 0);
	assert_int_equal(c.body[0], 105);
	assert_int_equal(s.streams[0].writable, 1);
	assert_int_equal(zw_h2conn_data(s.h, id, big + 100, 150, 0), 100);
	assert_int_equal(pump(&c, &s), 0);
	assert_int_equal(c.body[0], 205);
	assert_int_equal(s.streams[0].writable, 2);
	assert_int_equal(zw_h2conn_data(s.h, id, big + 200, 50, 0), 50);
	assert_int_equal(pump(&c, &s), 0);
	assert_int_equal(c.body[0], 255);
	assert_int_equal(s.streams[0].writable, 2);
	assert_int_equal(c.closed[0], 0);

	/* Trailers after the queue emptied: after the last DATA, END_STREAM. */
	struct zw_h2_field tr[] = {{"grpc-status", "0", 11, 1}};
	assert_int_equal(zw_h2conn_trailers(s.h, id, tr, 1), 0);
	assert_int_equal(zw_h2conn_data(s.h, id, big, 1, 0), -1);
	assert_int_equal(pump(&c, &s), 0);
	assert_int_equal(c.trailer_seen[0], 1);
	assert_int_equal(c.body[0], 255);
	assert_int_equal(c.closed[0], 1);
	assert_int_equal(c.close_code[0], 0);

	/* The end alone after the queue emptied: an empty DATA with END_STREAM. */
	assert_int_equal(zw_h2conn_data(s.h, id2, big, 7, 0), 7);
	assert_int_equal(pump(&c, &s), 0);
	assert_int_equal(c.closed[1], 0);
	assert_int_equal(zw_h2conn_data(s.h, id2, NULL, 0, 1), 0);
	assert_int_equal(pump(&c, &s), 0);
	assert_int_equal(c.body[1], 7);
	assert_int_equal(c.trailer_seen[1], 0);
	assert_int_equal(c.closed[1], 1);
	assert_int_equal(c.close_code[1], 0);
	assert_int_equal(s.streams[1].writable, 0);
	nghttp2_session_del(c.ng);
	zw_h2conn_free(s.h);
}

/* A request body that ends with trailers: the caller gets them, names as
 * sent, before the end of the body; past the header list limit the section
 * is dropped and the request still ends normally. */
static void test_request_trailers(void **state)
{
	(void)state;
	static const uint8_t body[] = "0123456789";
	static char big[3000];
	memset(big, 'b', sizeof(big) - 1);
	nghttp2_nv tr[] = {nv("x-checksum", "781e5e245d69b566"), nv("x-empty", "")};
	nghttp2_nv huge[] = {nv("x-big", big)};
	nghttp2_nv req[] = {nv(":method", "POST"), nv(":scheme", "http"),
	                    nv(":authority", "app.test"), nv(":path", "/up")};
	for (int round = 0; round < 2; round++) {
		struct server s;
		struct client c;
		struct zw_h2_limits lim = {.max_header_list = 2048};
		server_init(&s, &lim);
		client_init(&c);
		c.upload = body;
		c.upload_len = 10;
		c.upload_trailers = round ? huge : tr;
		c.n_upload_trailers = round ? 1 : 2;
		nghttp2_data_provider prov = {.read_callback = upload_read};
		int32_t id = nghttp2_submit_request(c.ng, NULL, req, 4, &prov, NULL);
		assert_int_equal(pump(&c, &s), 0);
		assert_int_equal(s.n, 1);
		assert_int_equal(s.streams[0].body, 10);
		assert_int_equal(s.streams[0].body_end, 1);
		if (round == 0) {
			assert_string_equal(s.streams[0].trailers,
			                    "x-checksum=781e5e245d69b566;x-empty=;");
			assert_int_equal(s.streams[0].trailers_before_end, 1);
		} else {
			assert_string_equal(s.streams[0].trailers, "");
		}
		zw_h2conn_consume(s.h, id, 10);
		assert_int_equal(zw_h2conn_respond(s.h, id, 204, NULL, 0, 1), 0);
		assert_int_equal(pump(&c, &s), 0);
		assert_int_equal(c.status[0], 204);
		assert_int_equal(c.close_code[0], 0);
		nghttp2_session_del(c.ng);
		zw_h2conn_free(s.h);
	}
}

/* Interim heads (103 with its fields, then 100) go out before the final
 * one; 101, a final status, or any interim after the final head are
 * refused. */
static void test_interim_responses(void **state)
{
	(void)state;
	struct server s;
	struct client c;
	server_init(&s, NULL);
	client_init(&c);
	int32_t id = submit_get(&c);
	assert_int_equal(pump(&c, &s), 0);
	struct zw_h2_field hints[] = {{"Link", "</style.css>; rel=preload", 4, 25},
	                              {"Connection", "close", 10, 5}};
	assert_int_equal(zw_h2conn_interim(s.h, id, 103, hints, 2), 0);
	assert_int_equal(pump(&c, &s), 0);
	assert_int_equal(c.first_status[0], 103);
	assert_int_equal(c.interim[0], 1);
	assert_string_equal(c.link[0], "</style.css>; rel=preload");
	assert_int_equal(c.closed[0], 0);
	assert_int_equal(zw_h2conn_interim(s.h, id, 100, NULL, 0), 0);
	assert_int_equal(zw_h2conn_interim(s.h, id, 101, NULL, 0), -1);
	assert_int_equal(zw_h2conn_interim(s.h, id, 200, NULL, 0), -1);
	assert_int_equal(zw_h2conn_respond(s.h, id, 200, NULL, 0, 0), 0);
	assert_int_equal(zw_h2conn_interim(s.h, id, 103, NULL, 0), -1);
	assert_int_equal(zw_h2conn_respond(s.h, id, 200, NULL, 0, 0), -1);
	assert_int_equal(zw_h2conn_data(s.h, id, (const uint8_t *)"ok", 2, 1), 2);
	assert_int_equal(pump(&c, &s), 0);
	assert_int_equal(c.interim[0], 2);
	assert_int_equal(c.status[0], 200);
	assert_int_equal(c.body[0], 2);
	assert_int_equal(c.closed[0], 1);
	assert_int_equal(c.close_code[0], 0);
	assert_int_equal(zw_h2conn_interim(s.h, 99, 103, NULL, 0), -1); /* no such stream */
	nghttp2_session_del(c.ng);
	zw_h2conn_free(s.h);
}

/* ---- hostile peers: frames built by hand ------------------------------------ */

struct raw {
	uint8_t buf[1 << 20];
	size_t len;
	nghttp2_hd_deflater *hd;
};

static void raw_frame(struct raw *r, uint8_t type, uint8_t flags, int32_t id, const uint8_t *p,
                      size_t n)
{
	assert_true(r->len + 9 + n <= sizeof(r->buf));
	uint8_t *h = r->buf + r->len;
	h[0] = (uint8_t)(n >> 16);
	h[1] = (uint8_t)(n >> 8);
	h[2] = (uint8_t)n;
	h[3] = type;
	h[4] = flags;
	h[5] = (uint8_t)((uint32_t)id >> 24 & 0x7f);
	h[6] = (uint8_t)(id >> 16);
	h[7] = (uint8_t)(id >> 8);
	h[8] = (uint8_t)id;
	if (n)
		memcpy(h + 9, p, n);
	r->len += 9 + n;
}

static void raw_start(struct raw *r)
{
	memset(r, 0, sizeof(*r));
	memcpy(r->buf, ZW_H2_PREFACE, ZW_H2_PREFACE_LEN);
	r->len = ZW_H2_PREFACE_LEN;
	raw_frame(r, NGHTTP2_SETTINGS, 0, 0, NULL, 0);
	assert_int_equal(nghttp2_hd_deflate_new(&r->hd, 4096), 0);
}

/* HPACK-encoded request head for stream `id` with `extra` more fields of
 * `extra_len` bytes each. Returns the block length in out. */
static size_t head_block(struct raw *r, uint8_t *out, size_t cap, size_t extra, size_t extra_len)
{
	nghttp2_nv h[300];
	static char val[70000];
	size_t n = 0;
	memset(val, 'v', sizeof(val));
	val[extra_len < sizeof(val) ? extra_len : sizeof(val) - 1] = 0;
	h[n++] = nv(":method", "GET");
	h[n++] = nv(":scheme", "http");
	h[n++] = nv(":authority", "a");
	h[n++] = nv(":path", "/");
	for (size_t i = 0; i < extra && n < 300; i++) {
		static char names[300][32];
		snprintf(names[i], sizeof(names[i]), "x-f%zu", i);
		h[n] = nv(names[i], val);
		/* No indexing: each field is sent in full every time. */
		h[n].flags = NGHTTP2_NV_FLAG_NO_INDEX;
		n++;
	}
	ssize_t len = nghttp2_hd_deflate_hd(r->hd, out, cap, h, n);
	assert_true(len > 0);
	return (size_t)len;
}

static int feed_raw(struct server *s, struct raw *r)
{
	int rc = zw_h2conn_feed(s->h, r->buf, r->len);
	const uint8_t *p;
	size_t len;
	zw_h2conn_output(s->h, &p, &len);
	return rc;
}

/* Looks for a GOAWAY with `code` in the server's next output. */
static int goaway_code(struct server *s)
{
	const uint8_t *p;
	size_t len, off = 0;
	zw_h2conn_output(s->h, &p, &len);
	while (off + 9 <= len) {
		size_t n = (size_t)p[off] << 16 | (size_t)p[off + 1] << 8 | p[off + 2];
		if (p[off + 3] == NGHTTP2_GOAWAY && n >= 8)
			return (int)((uint32_t)p[off + 13] << 24 | (uint32_t)p[off + 14] << 16 |
			             (uint32_t)p[off + 15] << 8 | p[off + 16]);
		off += 9 + n;
	}
	return -1;
}

static void test_concurrent_streams_limit(void **state)
{
	(void)state;
	struct server s;
	struct raw r;
	uint8_t blk[4096];
	struct zw_h2_limits lim = {.max_concurrent_streams = 3};
	server_init(&s, &lim);
	raw_start(&r);
	/* Five open streams (no END_STREAM) from a client that ignores our
	 * SETTINGS: the fourth and fifth are refused. */
	for (int32_t id = 1; id <= 9; id += 2) {
		size_t n = head_block(&r, blk, sizeof(blk), 0, 0);
		raw_frame(&r, NGHTTP2_HEADERS, NGHTTP2_FLAG_END_HEADERS, id, blk, n);
	}
	feed_raw(&s, &r);
	assert_int_equal(s.n, 3);
	nghttp2_hd_deflate_del(r.hd);
	zw_h2conn_free(s.h);
	for (size_t i = 0; i < 3; i++)
		assert_int_equal(s.streams[i].closed, 1); /* ended by free: CANCEL */
}

static void test_header_list_too_big_gets_431(void **state)
{
	(void)state;
	struct server s;
	struct raw r;
	static uint8_t blk[200000];
	struct zw_h2_limits lim = {.max_header_list = 8192};
	server_init(&s, &lim);
	raw_start(&r);
	/* 20 fields of 1000 bytes: an HPACK block past the list limit. */
	size_t n = head_block(&r, blk, sizeof(blk), 20, 1000);
	/* Frames of at most 16384 bytes: HEADERS then CONTINUATIONs. */
	for (size_t off = 0; off < n; off += 16384) {
		size_t k = n - off < 16384 ? n - off : 16384;
		uint8_t fl = off + k == n ? NGHTTP2_FLAG_END_HEADERS : 0;
		if (off == 0)
			raw_frame(&r, NGHTTP2_HEADERS, fl | NGHTTP2_FLAG_END_STREAM, 1, blk, k);
		else
			raw_frame(&r, NGHTTP2_CONTINUATION, fl, 1, blk + off, k);
	}
	assert_int_equal(zw_h2conn_feed(s.h, r.buf, r.len), 0);
	assert_int_equal(s.n, 0); /* never reached the caller */
	const uint8_t *p;
	size_t len;
	zw_h2conn_output(s.h, &p, &len);
	/* A HEADERS frame (the 431) went out on stream 1. */
	int found = 0;
	for (size_t off = 0; off + 9 <= len;) {
		size_t fl = (size_t)p[off] << 16 | (size_t)p[off + 1] << 8 | p[off + 2];
		if (p[off + 3] == NGHTTP2_HEADERS && p[off + 8] == 1)
			found = 1;
		off += 9 + fl;
	}
	if (!found)
		for (size_t off = 0; off + 9 <= len;) {
			size_t fl = (size_t)p[off] << 16 | (size_t)p[off + 1] << 8 | p[off + 2];
			fprintf(stderr, "frame type %d flags %d stream %d len %zu\n", p[off + 3],
			        p[off + 4], p[off + 8], fl);
			off += 9 + fl;
		}
	assert_true(found);
	nghttp2_hd_deflate_del(r.hd);
	zw_h2conn_free(s.h);
}

static void test_continuation_flood(void **state)
{
	(void)state;
	struct server s;
	struct raw r;
	uint8_t blk[4096];
	server_init(&s, NULL);
	raw_start(&r);
	size_t n = head_block(&r, blk, sizeof(blk), 0, 0);
	/* HEADERS without END_HEADERS, then 50 one-byte CONTINUATIONs. */
	raw_frame(&r, NGHTTP2_HEADERS, 0, 1, blk, 1);
	for (int i = 0; i < 50; i++)
		raw_frame(&r, NGHTTP2_CONTINUATION, 0, 1, blk + 1 + (size_t)i % (n - 1), 1);
	assert_int_equal(zw_h2conn_feed(s.h, r.buf, r.len), -1);
	assert_int_equal(s.n, 0);
	nghttp2_hd_deflate_del(r.hd);
	zw_h2conn_free(s.h);
}

static void test_rapid_reset(void **state)
{
	(void)state;
	struct server s;
	struct raw r;
	uint8_t blk[4096];
	struct zw_h2_limits lim = {.reset_burst = 50, .reset_rate = 1};
	server_init(&s, &lim);
	raw_start(&r);
	zw_h2conn_feed(s.h, r.buf, r.len); /* preface and SETTINGS */
	r.len = 0;
	static const uint8_t cancel[4] = {0, 0, 0, 8};
	int code = -1;
	/* As a server loop would: feed what arrived (10 open+reset pairs per
	 * read), write the output, stop once the connection is done. */
	for (int32_t id = 1; id < 2 * 500 && code < 0; id += 2) {
		size_t n = head_block(&r, blk, sizeof(blk), 0, 0);
		raw_frame(&r, NGHTTP2_HEADERS, NGHTTP2_FLAG_END_HEADERS, id, blk, n);
		raw_frame(&r, NGHTTP2_RST_STREAM, 0, id, cancel, 4);
		if (id % 20 == 19) {
			zw_h2conn_feed(s.h, r.buf, r.len);
			r.len = 0;
			code = goaway_code(&s);
		}
	}
	assert_int_equal(code, NGHTTP2_INTERNAL_ERROR);
	assert_true(zw_h2conn_done(s.h));
	assert_true(s.n <= 60); /* the burst of 50 and the read that crossed it */
	/* Past the burst the connection ended (nghttp2 says INTERNAL_ERROR). */
	for (size_t i = 0; i < s.n; i++)
		assert_int_equal(s.streams[i].closed, 1);
	nghttp2_hd_deflate_del(r.hd);
	zw_h2conn_free(s.h);
}

static void test_settings_flood(void **state)
{
	(void)state;
	struct server s;
	struct raw r;
	uint8_t many[6 * 100];
	server_init(&s, NULL);
	raw_start(&r);
	for (int i = 0; i < 100; i++) {
		many[6 * i] = 0;
		many[6 * i + 1] = NGHTTP2_SETTINGS_ENABLE_PUSH;
		memset(many + 6 * i + 2, 0, 4);
	}
	raw_frame(&r, NGHTTP2_SETTINGS, 0, 0, many, sizeof(many));
	zw_h2conn_feed(s.h, r.buf, r.len);
	assert_int_equal(goaway_code(&s), NGHTTP2_ENHANCE_YOUR_CALM);
	assert_true(zw_h2conn_done(s.h));
	nghttp2_hd_deflate_del(r.hd);
	zw_h2conn_free(s.h);
}

static void test_ping_flood_without_reading(void **state)
{
	(void)state;
	struct server s;
	struct raw r;
	uint8_t payload[8] = {0};
	struct zw_h2_limits lim = {.max_outbound_ack = 100};
	server_init(&s, &lim);
	raw_start(&r);
	/* 500 PINGs and the output (the PING ACKs) never collected. */
	for (int i = 0; i < 500; i++)
		raw_frame(&r, NGHTTP2_PING, 0, 0, payload, 8);
	assert_int_equal(zw_h2conn_feed(s.h, r.buf, r.len), -1);
	nghttp2_hd_deflate_del(r.hd);
	zw_h2conn_free(s.h);
}

static void test_preface_detection(void **state)
{
	(void)state;
	assert_int_equal(zw_h2_is_preface((const uint8_t *)ZW_H2_PREFACE, ZW_H2_PREFACE_LEN), 1);
	assert_int_equal(zw_h2_is_preface((const uint8_t *)"PRI * HTTP/2", 12), -1);
	assert_int_equal(zw_h2_is_preface((const uint8_t *)"GET / HTTP/1.1\r\n", 16), 0);
	assert_int_equal(zw_h2_is_preface((const uint8_t *)"P", 1), -1);
	assert_int_equal(zw_h2_is_preface((const uint8_t *)"POST", 4), 0);
}

static void test_refused_stream_and_client_reset(void **state)
{
	(void)state;
	struct server s;
	struct client c;
	server_init(&s, NULL);
	client_init(&c);
	s.refuse = 1;
	submit_get(&c);
	assert_int_equal(pump(&c, &s), 0);
	assert_int_equal(c.closed[0], 1);
	assert_int_equal(c.close_code[0], NGHTTP2_REFUSED_STREAM);
	/* A stream the client resets: on_close tells the caller, with CANCEL. */
	s.refuse = 0;
	int32_t id = submit_get(&c);
	assert_int_equal(pump(&c, &s), 0);
	assert_int_equal(s.n, 1);
	nghttp2_submit_rst_stream(c.ng, NGHTTP2_FLAG_NONE, id, NGHTTP2_CANCEL);
	assert_int_equal(pump(&c, &s), 0);
	assert_int_equal(s.streams[0].closed, 1);
	assert_int_equal(s.streams[0].close_code, NGHTTP2_CANCEL);
	assert_int_equal(zw_h2conn_respond(s.h, id, 200, NULL, 0, 1), -1); /* gone */
	/* Graceful shutdown. */
	zw_h2conn_shutdown(s.h);
	assert_int_equal(pump(&c, &s), 0);
	assert_int_equal(c.goaway, 1);
	assert_int_equal(c.goaway_code, NGHTTP2_NO_ERROR);
	nghttp2_session_del(c.ng);
	zw_h2conn_free(s.h);
}

/* The header helpers both sides share: connection-specific fields left
 * out (TE only unless "trailers"), names lower-cased, values as they are;
 * for a request also Host, empty and ':' names. And a field block built
 * with zw_h2_fields_add lists back as it went in, whether or not its buffer
 * had room already. */
static void test_shared_header_helpers(void **state)
{
	(void)state;
	struct zw_h2_field f[] = {
	        {"Content-Type", "text/plain", 12, 10},
	        {"Connection", "close", 10, 5},
	        {"KEEP-ALIVE", "5", 10, 1},
	        {"Transfer-Encoding", "chunked", 17, 7},
	        {"Upgrade", "h2c", 7, 3},
	        {"Proxy-Connection", "x", 16, 1},
	        {"TE", "gzip", 2, 4},
	        {"te", "trailers", 2, 8},
	        {"Host", "app.test", 4, 8},
	        {":path", "/", 5, 1},
	        {"", "empty", 0, 5},
	        {"X-Mixed-Case", "KeepMe", 12, 6},
	};
	size_t n = sizeof(f) / sizeof(f[0]);
	nghttp2_nv nv[16];
	char names[256];
	assert_int_equal(zw_h2_connection_specific("CONNECTION", 10, "", 0), 1);
	assert_int_equal(zw_h2_connection_specific("te", 2, "trailers", 8), 0);
	assert_int_equal(zw_h2_connection_specific("te", 2, "deflate", 7), 1);
	assert_int_equal(zw_h2_connection_specific("content-length", 14, "1", 1), 0);
	size_t k = zw_h2_lower_nv(nv, 16, names, f, n, 0);
	/* Response: content-type, te: trailers, host, :path, "", x-mixed-case. */
	assert_int_equal(k, 6);
	assert_memory_equal(nv[0].name, "content-type", 12);
	assert_memory_equal(nv[0].value, "text/plain", 10);
	assert_memory_equal(nv[1].name, "te", 2);
	assert_memory_equal(nv[1].value, "trailers", 8);
	assert_memory_equal(nv[2].name, "host", 4);
	assert_memory_equal(nv[5].name, "x-mixed-case", 12);
	assert_memory_equal(nv[5].value, "KeepMe", 6);
	k = zw_h2_lower_nv(nv, 16, names, f, n, 1);
	/* Request: content-type, te: trailers, x-mixed-case. */
	assert_int_equal(k, 3);
	assert_memory_equal(nv[2].name, "x-mixed-case", 12);
	assert_int_equal(zw_h2_lower_nv(nv, 2, names, f, n, 1), 2); /* max bounds it */

	struct zw_obuf b = {.limit = 1 << 16};
	struct zw_h2_field out[64];
	char name[16], value[40];
	for (int i = 0; i < 60; i++) { /* grows past the first allocation */
		int nl = snprintf(name, sizeof(name), "n%d", i);
		int vl = snprintf(value, sizeof(value), "value-%d-%0*d", i, i % 20, 0);
		assert_int_equal(zw_h2_fields_add(&b, (const uint8_t *)name, (size_t)nl,
		                                  (const uint8_t *)value, (size_t)vl),
		                 0);
	}
	assert_int_equal(zw_h2_fields_add(&b, (const uint8_t *)"e", 1, (const uint8_t *)"", 0), 0);
	zw_h2_fields_list(&b, 61, out);
	for (int i = 0; i < 60; i++) {
		int nl = snprintf(name, sizeof(name), "n%d", i);
		int vl = snprintf(value, sizeof(value), "value-%d-%0*d", i, i % 20, 0);
		assert_int_equal(out[i].name_len, (size_t)nl);
		assert_memory_equal(out[i].name, name, (size_t)nl);
		assert_int_equal(out[i].value_len, (size_t)vl);
		assert_memory_equal(out[i].value, value, (size_t)vl);
	}
	assert_int_equal(out[60].name_len, 1);
	assert_int_equal(out[60].value_len, 0);
	struct zw_obuf small = {.limit = 8};
	assert_int_equal(
	        zw_h2_fields_add(&small, (const uint8_t *)"abc", 3, (const uint8_t *)"defg", 4),
	        -1); /* 9 bytes past the 8-byte limit */
	zw_buf_free(&b.buf);
	zw_buf_free(&small.buf);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_request_response_trailers),
	        cmocka_unit_test(test_flow_control_waits_for_consume),
	        cmocka_unit_test(test_response_buffer_bounded_then_writable),
	        cmocka_unit_test(test_response_body_resumed_after_empty_queue),
	        cmocka_unit_test(test_request_trailers),
	        cmocka_unit_test(test_interim_responses),
	        cmocka_unit_test(test_concurrent_streams_limit),
	        cmocka_unit_test(test_header_list_too_big_gets_431),
	        cmocka_unit_test(test_continuation_flood),
	        cmocka_unit_test(test_rapid_reset),
	        cmocka_unit_test(test_settings_flood),
	        cmocka_unit_test(test_ping_flood_without_reading),
	        cmocka_unit_test(test_preface_detection),
	        cmocka_unit_test(test_refused_stream_and_client_reset),
	        cmocka_unit_test(test_shared_header_helpers),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
