/* HTTP/2 client connections to backends without I/O (see h2upstream.h). */
#include "h2upstream.h"

#include "http1.h"
#include "list.h"

#include <nghttp2/nghttp2.h>
#include <stdlib.h>
#include <string.h>

#define MAX_FIELDS 256

struct upstream_stream {
	struct upstream_stream *prev, *next; /* the connection's streams */
	int32_t id;                          /* 0 until nghttp2 gave it one */
	void *user;                          /* the caller's stream, NULL once detached */
	int got_head;                        /* the final response head arrived */
	int remote_end;                      /* the backend ended its side (END_STREAM) */
	int closed;                          /* on_close ran (or was due): nothing more */
	size_t unconsumed;                   /* response bytes received, window not given back */
	size_t head_size;      /* header block bytes so far (name + value + 32 each) */
	int status;            /* :status of the block being received */
	struct zw_obuf fields; /* name\0value\0 pairs of that block */
	size_t n_fields;
	/* The request body waiting for the backend's window; body.end_out: our
	 * side ended (END_STREAM sent or submitted); body.drained: the queue
	 * emptied, on_writable due. */
	struct zw_h2_body body;
};

struct zw_h2up {
	nghttp2_session *ng;
	struct zw_h2up_limits lim;
	struct zw_h2up_callbacks cb;
	void *ctx;
	struct zw_obuf out;
	struct upstream_stream *streams;
	size_t n_streams;
	int goaway; /* GOAWAY received or sent */
	int fatal;
};

static const struct zw_h2up_limits defaults = {
        .max_streams = 100,
        .stream_window = 65535,
        .max_header_list = 65536,
        .max_queue = 1 << 20,
        .max_output = 1 << 20,
};

static struct upstream_stream *find(const struct zw_h2up *c, int32_t id)
{
	/* A connection carries at most max_streams of ours: a short walk, and
	 * it also finds streams nghttp2 has not opened yet. */
	for (struct upstream_stream *st = c->streams; st; st = st->next)
		if (st->id == id && id > 0)
			return st;
	return NULL;
}

static void stream_free(struct zw_h2up *c, struct upstream_stream *st)
{
	ZW_LIST_UNLINK(c->streams, st);
	c->n_streams--;
	zw_buf_free(&st->fields.buf);
	zw_h2_body_free(&st->body);
	free(st);
}

/* Ends st once: its window goes back to the connection, the caller hears
 * of it (when attached), st is freed. */
static void stream_end(struct zw_h2up *c, struct upstream_stream *st, uint32_t code, int retry)
{
	if (st->closed)
		return;
	st->closed = 1;
	if (st->unconsumed)
		nghttp2_session_consume_connection(c->ng, st->unconsumed);
	void *user = st->user;
	stream_free(c, st);
	if (user)
		c->cb.on_close(c->ctx, user, code, retry);
}

/* ---- receiving ------------------------------------------------------------ */

static int on_begin_headers(nghttp2_session *ng, const nghttp2_frame *f, void *arg)
{
	(void)arg;
	struct upstream_stream *st = nghttp2_session_get_stream_user_data(ng, f->hd.stream_id);
	if (st) {
		st->fields.buf.len = 0;
		st->n_fields = 0;
		st->head_size = 0;
		st->status = 0;
	}
	return 0;
}

static int on_header(nghttp2_session *ng, const nghttp2_frame *f, const uint8_t *name,
                     size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags,
                     void *arg)
{
	struct zw_h2up *c = arg;
	(void)flags;
	struct upstream_stream *st = nghttp2_session_get_stream_user_data(ng, f->hd.stream_id);
	if (!st)
		return 0;
	st->head_size += namelen + valuelen + 32;
	if (st->head_size > c->lim.max_header_list || st->n_fields >= MAX_FIELDS)
		return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE; /* resets the stream */
	if (namelen == 7 && memcmp(name, ":status", 7) == 0) {
		/* nghttp2 checked it is three digits. */
		st->status = (value[0] - '0') * 100 + (value[1] - '0') * 10 + (value[2] - '0');
		return 0;
	}
	if (zw_h2_fields_add(&st->fields, name, namelen, value, valuelen) < 0)
		return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
	st->n_fields++;
	return 0;
}

static int on_frame_recv(nghttp2_session *ng, const nghttp2_frame *f, void *arg)
{
	struct zw_h2up *c = arg;
	if (f->hd.type == NGHTTP2_GOAWAY) {
		c->goaway = 1;
		return 0;
	}
	struct upstream_stream *st =
	        f->hd.stream_id ? nghttp2_session_get_stream_user_data(ng, f->hd.stream_id) : NULL;
	int end = (f->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0;
	if (st && end)
		st->remote_end = 1;
	if (!st || !st->user)
		return 0;
	int rc = 0;
	if (f->hd.type == NGHTTP2_HEADERS) {
		struct zw_h2_field fields[MAX_FIELDS];
		size_t n = st->n_fields;
		zw_h2_fields_list(&st->fields, n, fields);
		if (!st->got_head) {
			if (st->status < 200) {
				if (c->cb.on_interim) /* 100 Continue, 103 Early Hints */
					c->cb.on_interim(c->ctx, st->user, st->status, fields, n);
				return 0;
			}
			st->got_head = 1;
			rc = c->cb.on_head(c->ctx, st->user, st->status, fields, n, end);
		} else {
			c->cb.on_trailers(c->ctx, st->user, fields, n);
		}
	} else if (f->hd.type == NGHTTP2_DATA && end) {
		rc = c->cb.on_data(c->ctx, st->user, NULL, 0, 1);
	}
	if (rc < 0)
		nghttp2_submit_rst_stream(ng, NGHTTP2_FLAG_NONE, f->hd.stream_id, NGHTTP2_CANCEL);
	return 0;
}

static int on_data_chunk(nghttp2_session *ng, uint8_t flags, int32_t id, const uint8_t *data,
                         size_t len, void *arg)
{
	struct zw_h2up *c = arg;
	struct upstream_stream *st = nghttp2_session_get_stream_user_data(ng, id);
	/* The frame's flags: a body complete by its length ends with this
	 * chunk, before on_frame_recv reports END_STREAM. */
	if (st && (flags & NGHTTP2_FLAG_END_STREAM))
		st->remote_end = 1;
	if (!st || !st->user) {
		nghttp2_session_consume(ng, id, len);
		return 0;
	}
	st->unconsumed += len;
	if (c->cb.on_data(c->ctx, st->user, data, len, 0) < 0)
		nghttp2_submit_rst_stream(ng, NGHTTP2_FLAG_NONE, id, NGHTTP2_CANCEL);
	return 0;
}

static int on_stream_close(nghttp2_session *ng, int32_t id, uint32_t code, void *arg)
{
	struct zw_h2up *c = arg;
	struct upstream_stream *st = nghttp2_session_get_stream_user_data(ng, id);
	if (!st)
		return 0;
	nghttp2_session_set_stream_user_data(ng, id, NULL);
	/* REFUSED_STREAM (also what streams above a GOAWAY's last id close
	 * with) promises the request was not processed. */
	stream_end(c, st, code, code == NGHTTP2_REFUSED_STREAM && !st->got_head);
	return 0;
}

static int on_frame_not_send(nghttp2_session *ng, const nghttp2_frame *f, int err, void *arg)
{
	struct zw_h2up *c = arg;
	(void)ng;
	(void)err;
	/* A request that could not start (GOAWAY meanwhile, stream ids used
	 * up): nghttp2 may never have opened the stream, so end ours here. */
	if (f->hd.type != NGHTTP2_HEADERS)
		return 0;
	struct upstream_stream *st = find(c, f->hd.stream_id);
	if (st && !nghttp2_session_get_stream_user_data(c->ng, st->id))
		stream_end(c, st, NGHTTP2_REFUSED_STREAM, !st->got_head);
	return 0;
}

/* ---- sending -------------------------------------------------------------- */

static nghttp2_nv pseudo(const char *name, const char *value)
{
	return (nghttp2_nv){(uint8_t *)name, (uint8_t *)value, strlen(name), strlen(value),
	                    NGHTTP2_NV_FLAG_NONE};
}

int32_t zw_h2up_request(struct zw_h2up *c, const struct zw_h2up_head *h, int end_stream, void *user)
{
	if (!zw_h2up_can_open(c))
		return -1;
	/* As many fields as the head has (the proxy's --max-headers bounds it). */
	nghttp2_nv *nv = malloc((h->n_fields + 4) * sizeof(*nv));
	size_t k = 0, names_len = 1;
	if (!nv)
		return -1;
	nv[k++] = pseudo(":method", h->method);
	nv[k++] = pseudo(":scheme", h->scheme ? h->scheme : "http");
	if (h->authority)
		nv[k++] = pseudo(":authority", h->authority);
	nv[k++] = pseudo(":path", h->path);
	for (size_t i = 0; i < h->n_fields; i++)
		names_len += h->fields[i].name_len;
	struct upstream_stream *st = calloc(1, sizeof(*st));
	char *lower = malloc(names_len);
	if (!st || !lower)
		goto fail;
	k += zw_h2_lower_nv(nv + k, h->n_fields, lower, h->fields, h->n_fields, 1);
	st->user = user;
	st->fields.limit = c->lim.max_header_list + 2 * MAX_FIELDS;
	zw_h2_body_init(&st->body, c->lim.max_queue, 1, NULL);
	st->body.end = st->body.end_out = end_stream;
	nghttp2_data_provider prov = {.source.ptr = &st->body, .read_callback = zw_h2_body_read};
	int32_t id = nghttp2_submit_request(c->ng, NULL, nv, k, end_stream ? NULL : &prov, st);
	free(lower);
	free(nv);
	if (id < 0) {
		free(st);
		return -1;
	}
	st->id = id;
	ZW_LIST_PUSH(c->streams, st);
	c->n_streams++;
	return id;
fail:
	free(st);
	free(lower);
	free(nv);
	return -1;
}

int zw_h2up_data(struct zw_h2up *c, int32_t id, const uint8_t *data, size_t len, int end)
{
	struct upstream_stream *st = find(c, id);
	/* All or nothing: past max_queue the call fails, nothing queued. */
	if (!st || len > st->body.queue.limit - zw_h2_body_queued(&st->body))
		return -1;
	return zw_h2_body_add(&st->body, c->ng, id, data, len, end) < 0 ? -1 : 0;
}

int zw_h2up_trailers(struct zw_h2up *c, int32_t id, const struct zw_h2_field *fields, size_t n)
{
	struct upstream_stream *st = find(c, id);
	if (!st)
		return -1;
	return zw_h2_body_trailers(&st->body, c->ng, id, fields, n,
	                           c->lim.max_header_list + 2 * MAX_FIELDS);
}

size_t zw_h2up_queued(const struct zw_h2up *c, int32_t id)
{
	const struct upstream_stream *st = find(c, id);
	return st ? zw_h2_body_queued(&st->body) : 0;
}

void zw_h2up_consume(struct zw_h2up *c, int32_t id, size_t n)
{
	struct upstream_stream *st = find(c, id);
	if (!st)
		return;
	if (n > st->unconsumed)
		n = st->unconsumed;
	st->unconsumed -= n;
	if (n)
		nghttp2_session_consume(c->ng, id, n);
}

void zw_h2up_detach(struct zw_h2up *c, int32_t id)
{
	struct upstream_stream *st = find(c, id);
	if (!st)
		return;
	st->user = NULL;
	if (st->unconsumed) {
		nghttp2_session_consume(c->ng, id, st->unconsumed);
		st->unconsumed = 0;
	}
	/* A stream still open either way (or not opened yet) is cancelled; one
	 * both sides ended is not (a reset per finished request would look like
	 * a rapid-reset attack to the backend). Ours goes once nghttp2 closes
	 * it, or with the connection. */
	if (!st->remote_end || !st->body.end_out)
		nghttp2_submit_rst_stream(c->ng, NGHTTP2_FLAG_NONE, id, NGHTTP2_CANCEL);
}

void zw_h2up_shutdown(struct zw_h2up *c)
{
	c->goaway = 1;
	nghttp2_submit_goaway(c->ng, NGHTTP2_FLAG_NONE, 0, NGHTTP2_NO_ERROR, NULL, 0);
}

/* ---- the connection ------------------------------------------------------- */

int zw_h2up_new(const struct zw_h2up_limits *limits, const struct zw_h2up_callbacks *cb, void *ctx,
                struct zw_h2up **out)
{
	struct zw_h2up *c = calloc(1, sizeof(*c));
	int rc = -1;
	if (!c)
		return -1;
	c->lim = limits ? *limits : defaults;
	if (!c->lim.max_streams)
		c->lim.max_streams = defaults.max_streams;
	if (!c->lim.stream_window)
		c->lim.stream_window = defaults.stream_window;
	if (!c->lim.max_header_list)
		c->lim.max_header_list = defaults.max_header_list;
	if (!c->lim.max_queue)
		c->lim.max_queue = defaults.max_queue;
	if (!c->lim.max_output)
		c->lim.max_output = defaults.max_output;
	c->cb = *cb;
	c->ctx = ctx;
	c->out.limit = c->lim.max_output;
	nghttp2_settings_entry iv[] = {
	        {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
	        {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, 0},
	        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, c->lim.stream_window},
	        {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, c->lim.max_header_list},
	};
	struct zw_h2_session_spec spec = {
	        .client = 1,
	        .on_begin_headers = on_begin_headers,
	        .on_header = on_header,
	        .on_frame_recv = on_frame_recv,
	        .on_data_chunk = on_data_chunk,
	        .on_stream_close = on_stream_close,
	        .on_frame_not_send = on_frame_not_send,
	        .settings = iv,
	        .n_settings = sizeof(iv) / sizeof(iv[0]),
	        /* A stream whose client does not read never stops its siblings. */
	        .window_streams = c->lim.max_streams,
	        .stream_window = c->lim.stream_window,
	};
	if (zw_h2_session_new(&spec, c, &c->ng) < 0)
		goto out;
	*out = c;
	c = NULL;
	rc = 0;
out:
	zw_h2up_free(c);
	return rc;
}

void zw_h2up_free(struct zw_h2up *c)
{
	if (!c)
		return;
	while (c->streams) {
		struct upstream_stream *st = c->streams;
		if (c->ng && st->id > 0)
			nghttp2_session_set_stream_user_data(c->ng, st->id, NULL);
		stream_end(c, st, NGHTTP2_CANCEL, 0);
	}
	nghttp2_session_del(c->ng);
	zw_buf_free(&c->out.buf);
	free(c);
}

int zw_h2up_feed(struct zw_h2up *c, const uint8_t *data, size_t len)
{
	return zw_h2_session_feed(c->ng, &c->fatal, data, len);
}

int zw_h2up_output(struct zw_h2up *c, const uint8_t **data, size_t *len)
{
	if (zw_h2_session_output(c->ng, &c->fatal, &c->out, c->lim.max_output) < 0)
		return -1;
	*data = (const uint8_t *)c->out.buf.data;
	*len = c->out.buf.len;
	/* Streams whose queued body went out: the caller may give more. A
	 * callback may end streams, so look again from the start each time. */
	for (;;) {
		struct upstream_stream *st = c->streams;
		while (st && !(st->body.drained && st->user))
			st = st->next;
		if (!st)
			break;
		st->body.drained = 0;
		if (c->cb.on_writable)
			c->cb.on_writable(c->ctx, st->user);
	}
	return 0;
}

int zw_h2up_can_open(const struct zw_h2up *c)
{
	uint32_t peer =
	        nghttp2_session_get_remote_settings(c->ng, NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS);
	return !c->fatal && !c->goaway && c->n_streams < c->lim.max_streams &&
	       c->n_streams < peer && nghttp2_session_get_next_stream_id(c->ng) < 0x7ffffff0u;
}

size_t zw_h2up_streams(const struct zw_h2up *c)
{
	return c->n_streams;
}

int zw_h2up_done(const struct zw_h2up *c)
{
	if (c->fatal)
		return 1;
	if (c->goaway && c->n_streams == 0)
		return !nghttp2_session_want_write(c->ng);
	return !nghttp2_session_want_read(c->ng) && !nghttp2_session_want_write(c->ng);
}

/* ---- gRPC ------------------------------------------------------------------ */

int zw_h2up_grpc_timeout(const char *v, size_t len, uint64_t *ms)
{
	if (len < 2 || len > 9)
		return -1;
	uint64_t n = 0;
	for (size_t i = 0; i + 1 < len; i++) {
		if (v[i] < '0' || v[i] > '9')
			return -1;
		n = n * 10 + (uint64_t)(v[i] - '0');
	}
	/* Units: hours, minutes, seconds, milli-, micro-, nanoseconds. */
	static const char units[] = "HMSmun";
	static const uint64_t mul[] = {3600000, 60000, 1000, 1, 1, 1};
	static const uint64_t div[] = {1, 1, 1, 1, 1000, 1000000};
	const char *u = memchr(units, v[len - 1], 6);
	if (!u)
		return -1;
	size_t k = (size_t)(u - units);
	*ms = (n * mul[k] + div[k] - 1) / div[k];
	return 0;
}

int zw_h2up_grpc_status(int http_status, int past_deadline)
{
	if ((http_status == 504 || http_status == 408) && past_deadline)
		return 4; /* DEADLINE_EXCEEDED */
	switch (http_status) {
	case 502:
	case 503:
	case 504:
		return 14; /* UNAVAILABLE */
	case 404:
		return 12; /* UNIMPLEMENTED */
	case 429:
		return 8; /* RESOURCE_EXHAUSTED */
	case 401:
		return 16; /* UNAUTHENTICATED */
	case 403:
		return 7; /* PERMISSION_DENIED */
	default:
		return http_status >= 400 && http_status < 500 ? 3 : 2;
	}
}
