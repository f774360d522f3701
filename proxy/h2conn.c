/* HTTP/2 server connections without I/O (see h2conn.h). */
#include "h2conn.h"

#include "http1.h"
#include "list.h"

#include <ctype.h>
#include <nghttp2/nghttp2.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MAX_FIELDS 256

struct h2stream {
	struct h2stream *prev, *next; /* the connection's open streams */
	int32_t id;
	void *user;            /* the caller's stream, NULL until on_request accepted it */
	size_t head_size;      /* header list bytes so far (name + value + 32 each) */
	int too_big;           /* header list past the limit: answered 431 */
	int in_trailers;       /* a second HEADERS block: the request's trailers */
	int final_sent;        /* the final response head was submitted */
	struct zw_obuf fields; /* name\0value\0 pairs of the request head, then trailers */
	size_t n_fields;
	struct zw_h2_body body;         /* the response body waiting for the client */
	struct h2stream *next_writable; /* on c->writable while body.drained */
};

struct zw_h2conn {
	nghttp2_session *ng;
	struct zw_h2_limits lim;
	struct zw_h2_callbacks cb;
	void *ctx;
	struct zw_obuf out;        /* frames produced by the last zw_h2conn_output */
	struct h2stream *writable; /* streams with room again */
	struct h2stream *streams;  /* every stream we keep state for */
	int fatal;
};

static const struct zw_h2_limits defaults = {
        .max_concurrent_streams = 100,
        .max_header_list = 65536,
        .max_continuations = 8,
        .initial_window = 65535,
        .reset_burst = 1000,
        .reset_rate = 33,
        .max_settings = 32,
        .max_outbound_ack = 1000,
        .max_stream_buffer = 65536,
        .max_output = 1 << 20,
};

int zw_h2_is_preface(const uint8_t *data, size_t len)
{
	size_t n = len < ZW_H2_PREFACE_LEN ? len : ZW_H2_PREFACE_LEN;
	if (memcmp(data, ZW_H2_PREFACE, n) != 0)
		return 0;
	return len < ZW_H2_PREFACE_LEN ? -1 : 1;
}

/* Unlinks st from c's streams and frees it. */
static void stream_free(struct zw_h2conn *c, struct h2stream *st)
{
	ZW_LIST_UNLINK(c->streams, st);
	zw_buf_free(&st->fields.buf);
	zw_h2_body_free(&st->body);
	free(st);
}

static struct h2stream *stream_of(struct zw_h2conn *c, int32_t id)
{
	return nghttp2_session_get_stream_user_data(c->ng, id);
}

/* Stream id's response body has room again after a short zw_h2conn_data:
 * on_writable is due (zw_h2conn_output). */
static void on_drained(void *arg, int32_t id)
{
	struct zw_h2conn *c = arg;
	struct h2stream *st = stream_of(c, id);
	st->next_writable = c->writable;
	c->writable = st;
}

/* ---- receiving ---------------------------------------------------------- */

static int on_begin_headers(nghttp2_session *ng, const nghttp2_frame *f, void *arg)
{
	struct zw_h2conn *c = arg;
	if (f->hd.type != NGHTTP2_HEADERS)
		return 0;
	struct h2stream *st = stream_of(c, f->hd.stream_id);
	if (st) {
		/* A second header block: trailers, under the same limits as the
		 * head, in the head's buffer (on_request is over with it). */
		st->in_trailers = 1;
		st->fields.buf.len = 0;
		st->n_fields = 0;
		st->head_size = 0;
		return 0;
	}
	if (f->headers.cat != NGHTTP2_HCAT_REQUEST)
		return 0;
	st = calloc(1, sizeof(*st));
	if (!st)
		return NGHTTP2_ERR_CALLBACK_FAILURE;
	st->id = f->hd.stream_id;
	st->fields.limit = c->lim.max_header_list + 2 * MAX_FIELDS;
	zw_h2_body_init(&st->body, c->lim.max_stream_buffer, 0, on_drained);
	if (nghttp2_session_set_stream_user_data(ng, st->id, st) != 0) {
		free(st);
		return NGHTTP2_ERR_CALLBACK_FAILURE;
	}
	ZW_LIST_PUSH(c->streams, st);
	return 0;
}

static int on_header(nghttp2_session *ng, const nghttp2_frame *f, const uint8_t *name,
                     size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags,
                     void *arg)
{
	struct zw_h2conn *c = arg;
	(void)ng;
	(void)flags;
	struct h2stream *st = stream_of(c, f->hd.stream_id);
	if (!st || st->too_big || (st->in_trailers && !st->user))
		return 0;
	/* RFC 9113 6.5.2: each field counts its name, value and 32 octets. */
	st->head_size += namelen + valuelen + 32;
	if (st->head_size > c->lim.max_header_list || st->n_fields >= MAX_FIELDS) {
		st->too_big = 1;
		return 0;
	}
	if (zw_h2_fields_add(&st->fields, name, namelen, value, valuelen) < 0) {
		st->too_big = 1;
		return 0;
	}
	st->n_fields++;
	return 0;
}

static void request_ready(struct zw_h2conn *c, struct h2stream *st, int end_stream)
{
	struct zw_h2_field fields[MAX_FIELDS];
	struct zw_h2_field all[MAX_FIELDS];
	struct zw_h2_request rq = {.end_stream = end_stream};
	size_t nf = 0;
	zw_h2_fields_list(&st->fields, st->n_fields, all);
	for (size_t i = 0; i < st->n_fields; i++) {
		const char *name = all[i].name, *value = all[i].value;
		size_t vl = all[i].value_len;
		if (name[0] != ':') {
			fields[nf++] = all[i];
		} else if (strcmp(name, ":method") == 0) {
			rq.method = value;
			rq.method_len = vl;
		} else if (strcmp(name, ":scheme") == 0) {
			rq.scheme = value;
			rq.scheme_len = vl;
		} else if (strcmp(name, ":authority") == 0) {
			rq.authority = value;
			rq.authority_len = vl;
		} else if (strcmp(name, ":path") == 0) {
			rq.path = value;
			rq.path_len = vl;
		}
	}
	rq.fields = fields;
	rq.n_fields = nf;
	/* nghttp2's messaging checks guarantee :method, :scheme and :path
	 * (CONNECT aside, which the proxy does not serve). */
	if (!rq.method || !rq.scheme || !rq.path) {
		nghttp2_submit_rst_stream(c->ng, NGHTTP2_FLAG_NONE, st->id, NGHTTP2_PROTOCOL_ERROR);
		return;
	}
	st->user = c->cb.on_request(c->ctx, st->id, &rq);
	if (!st->user)
		nghttp2_submit_rst_stream(c->ng, NGHTTP2_FLAG_NONE, st->id, NGHTTP2_REFUSED_STREAM);
}

static int on_frame_recv(nghttp2_session *ng, const nghttp2_frame *f, void *arg)
{
	struct zw_h2conn *c = arg;
	(void)ng;
	struct h2stream *st = f->hd.stream_id ? stream_of(c, f->hd.stream_id) : NULL;
	if (!st)
		return 0;
	int end = (f->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0;
	switch (f->hd.type) {
	case NGHTTP2_HEADERS:
		if (st->in_trailers) {
			/* Past the limits (too_big), the section is dropped. */
			if (end && st->user && !st->too_big && st->n_fields && c->cb.on_trailers) {
				struct zw_h2_field tr[MAX_FIELDS];
				zw_h2_fields_list(&st->fields, st->n_fields, tr);
				c->cb.on_trailers(c->ctx, st->user, tr, st->n_fields);
			}
			if (end && st->user && c->cb.on_data(c->ctx, st->user, NULL, 0, 1) < 0)
				nghttp2_submit_rst_stream(c->ng, NGHTTP2_FLAG_NONE, st->id,
				                          NGHTTP2_INTERNAL_ERROR);
			return 0;
		}
		if (st->too_big) {
			/* Refused by the connection itself: never reaches the caller. */
			zw_h2conn_respond(c, st->id, 431, NULL, 0, 1);
			return 0;
		}
		request_ready(c, st, end);
		return 0;
	case NGHTTP2_DATA:
		if (end && st->user && c->cb.on_data(c->ctx, st->user, NULL, 0, 1) < 0)
			nghttp2_submit_rst_stream(c->ng, NGHTTP2_FLAG_NONE, st->id,
			                          NGHTTP2_INTERNAL_ERROR);
		return 0;
	default:
		return 0;
	}
}

static int on_data_chunk(nghttp2_session *ng, uint8_t flags, int32_t id, const uint8_t *data,
                         size_t len, void *arg)
{
	struct zw_h2conn *c = arg;
	(void)flags;
	struct h2stream *st = stream_of(c, id);
	if (!st || !st->user) {
		/* Refused or answered already: give the window back at once. */
		nghttp2_session_consume(ng, id, len);
		return 0;
	}
	if (c->cb.on_data(c->ctx, st->user, data, len, 0) < 0)
		nghttp2_submit_rst_stream(ng, NGHTTP2_FLAG_NONE, id, NGHTTP2_INTERNAL_ERROR);
	return 0;
}

static int on_stream_close(nghttp2_session *ng, int32_t id, uint32_t error_code, void *arg)
{
	struct zw_h2conn *c = arg;
	struct h2stream *st = stream_of(c, id);
	if (!st)
		return 0;
	nghttp2_session_set_stream_user_data(ng, id, NULL);
	/* Off the writable list (it is singly linked: rebuild without st). */
	if (st->body.drained) {
		struct h2stream **pp = &c->writable;
		while (*pp && *pp != st)
			pp = &(*pp)->next_writable;
		if (*pp)
			*pp = st->next_writable;
	}
	if (st->user)
		c->cb.on_close(c->ctx, st->user, error_code);
	stream_free(c, st);
	return 0;
}

/* ---- sending ------------------------------------------------------------ */

void zw_h2_body_init(struct zw_h2_body *b, size_t limit, int wake_empty,
                     void (*on_drained)(void *session_user, int32_t id))
{
	b->queue.limit = limit;
	b->wake_empty = wake_empty;
	b->on_drained = on_drained;
}

void zw_h2_body_free(struct zw_h2_body *b)
{
	zw_buf_free(&b->queue.buf);
	zw_buf_free(&b->trailers.buf);
}

size_t zw_h2_body_queued(const struct zw_h2_body *b)
{
	return b->queue.buf.len - b->queue_off;
}

ssize_t zw_h2_body_read(nghttp2_session *ng, int32_t id, uint8_t *buf, size_t length,
                        uint32_t *flags, nghttp2_data_source *src, void *arg)
{
	/* The owner's stream holds the body: gone, nothing to read. */
	if (!nghttp2_session_get_stream_user_data(ng, id))
		return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
	struct zw_h2_body *b = src->ptr;
	size_t avail = b->queue.buf.len - b->queue_off;
	size_t n = avail < length ? avail : length;
	if (n > 0) /* an empty end of body may have no buffer at all */
		memcpy(buf, b->queue.buf.data + b->queue_off, n);
	b->queue_off += n;
	if (b->queue_off == b->queue.buf.len)
		b->queue.buf.len = b->queue_off = 0;
	if (n > 0 && !b->drained && (b->wake_empty ? b->queue.buf.len == 0 : b->blocked)) {
		b->blocked = 0;
		b->drained = 1;
		if (b->on_drained)
			b->on_drained(arg, id);
	}
	if (b->queue.buf.len == 0 && b->end) {
		*flags |= NGHTTP2_DATA_FLAG_EOF;
		b->end_out = 1;
		if (b->n_trailers) {
			/* The trailer HEADERS carries END_STREAM. */
			*flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
			if (zw_h2_submit_trailer(ng, id, &b->trailers, b->n_trailers) < 0)
				return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
		}
		return (ssize_t)n;
	}
	if (n == 0) {
		b->deferred = 1;
		return NGHTTP2_ERR_DEFERRED;
	}
	return (ssize_t)n;
}

/* Lets nghttp2 ask b (stream id of ng) for bytes again when it waits and
 * bytes or the end have come. */
static void body_resume(struct zw_h2_body *b, nghttp2_session *ng, int32_t id, int more)
{
	if (b->deferred && more) {
		b->deferred = 0;
		nghttp2_session_resume_data(ng, id);
	}
}

long zw_h2_body_add(struct zw_h2_body *b, nghttp2_session *ng, int32_t id, const uint8_t *data,
                    size_t len, int end)
{
	struct zw_buf *q = &b->queue.buf;
	if (b->end)
		return -1;
	if (b->queue_off > 0 && q->len + len > b->queue.limit) {
		/* Compact before refusing room. */
		memmove(q->data, q->data + b->queue_off, q->len - b->queue_off);
		q->len -= b->queue_off;
		b->queue_off = 0;
	}
	size_t room = b->queue.limit > q->len ? b->queue.limit - q->len : 0;
	size_t take = len < room ? len : room;
	if (take && zw_obuf_add(&b->queue, data, take) < 0)
		return -1;
	if (take < len)
		b->blocked = 1;
	else if (end)
		b->end = 1;
	body_resume(b, ng, id, take > 0 || b->end);
	return (long)take;
}

int zw_h2_body_trailers(struct zw_h2_body *b, nghttp2_session *ng, int32_t id,
                        const struct zw_h2_field *fields, size_t n, size_t max)
{
	if (b->end || b->n_trailers || n == 0 || n > MAX_FIELDS)
		return -1;
	/* Copies: names lower-cased, values as given. */
	size_t total = 0;
	for (size_t i = 0; i < n; i++)
		total += fields[i].name_len + fields[i].value_len + 2;
	if (total > max)
		return -1;
	b->trailers.limit = total;
	if (zw_h2_fields_copy(&b->trailers, fields, n) < 0) {
		zw_buf_free(&b->trailers.buf);
		return -1;
	}
	b->n_trailers = n;
	b->end = 1;
	body_resume(b, ng, id, 1);
	return 0;
}

int zw_h2_connection_specific(const char *name, size_t len, const char *value, size_t vlen)
{
	static const struct {
		const char *s;
		size_t n;
	} names[] = {{"connection", 10},
	             {"keep-alive", 10},
	             {"proxy-connection", 16},
	             {"transfer-encoding", 17},
	             {"upgrade", 7}};
	if (len == 2)
		return strncasecmp(name, "te", 2) == 0 &&
		       !(vlen == 8 && strncasecmp(value, "trailers", 8) == 0);
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (len == names[i].n && strncasecmp(name, names[i].s, len) == 0)
			return 1;
	return 0;
}

size_t zw_h2_lower_nv(nghttp2_nv *nv, size_t max, char *names, const struct zw_h2_field *fields,
                      size_t n, int request)
{
	size_t k = 0, off = 0;
	for (size_t i = 0; i < n && k < max; i++) {
		const struct zw_h2_field *f = &fields[i];
		if (zw_h2_connection_specific(f->name, f->name_len, f->value, f->value_len))
			continue;
		if (request && (f->name_len == 0 || f->name[0] == ':' ||
		                (f->name_len == 4 && strncasecmp(f->name, "host", 4) == 0)))
			continue;
		for (size_t j = 0; j < f->name_len; j++) {
			char ch = f->name[j];
			names[off + j] = ch >= 'A' && ch <= 'Z' ? (char)(ch + ('a' - 'A')) : ch;
		}
		nv[k++] = (nghttp2_nv){(uint8_t *)names + off, (uint8_t *)f->value, f->name_len,
		                       f->value_len, NGHTTP2_NV_FLAG_NONE};
		off += f->name_len;
	}
	return k;
}

/* Submits a response head on stream id: final (a response with a data
 * provider unless end_stream) or interim (HEADERS without END_STREAM).
 * Returns 0 or -1. */
static int submit_head(struct zw_h2conn *c, int32_t id, int status,
                       const struct zw_h2_field *fields, size_t n, int end_stream, int interim)
{
	struct h2stream *st = stream_of(c, id);
	nghttp2_nv nv[MAX_FIELDS + 1];
	char small[2048]; /* lower-cased names: on the stack unless they are many */
	char *names = small, *heap = NULL;
	char s[4];
	if (!st || st->final_sent || status < 100 || status > 999 || n > MAX_FIELDS)
		return -1;
	size_t total = 0;
	for (size_t i = 0; i < n; i++)
		total += fields[i].name_len;
	if (total > sizeof(small) && !(names = heap = malloc(total)))
		return -1;
	s[0] = (char)('0' + status / 100);
	s[1] = (char)('0' + status / 10 % 10);
	s[2] = (char)('0' + status % 10);
	s[3] = 0;
	nv[0] = (nghttp2_nv){(uint8_t *)":status", (uint8_t *)s, 7, 3, NGHTTP2_NV_FLAG_NONE};
	size_t k = zw_h2_lower_nv(nv + 1, MAX_FIELDS, names, fields, n, 0);
	int rc = -1;
	if (interim) {
		rc = nghttp2_submit_headers(c->ng, NGHTTP2_FLAG_NONE, id, NULL, nv, k + 1, NULL) ==
		                     0
		             ? 0
		             : -1;
	} else {
		nghttp2_data_provider prov = {.source.ptr = &st->body,
		                              .read_callback = zw_h2_body_read};
		/* nghttp2 copies names and values. */
		rc = nghttp2_submit_response(c->ng, id, nv, k + 1, end_stream ? NULL : &prov) == 0
		             ? 0
		             : -1;
		st->final_sent = rc == 0;
	}
	free(heap);
	return rc;
}

int zw_h2conn_respond(struct zw_h2conn *c, int32_t id, int status, const struct zw_h2_field *fields,
                      size_t n, int end_stream)
{
	return submit_head(c, id, status, fields, n, end_stream, 0);
}

int zw_h2conn_interim(struct zw_h2conn *c, int32_t id, int status, const struct zw_h2_field *fields,
                      size_t n)
{
	if (status < 100 || status > 199 || status == 101)
		return -1;
	return submit_head(c, id, status, fields, n, 0, 1);
}

long zw_h2conn_data(struct zw_h2conn *c, int32_t id, const uint8_t *data, size_t len, int end)
{
	struct h2stream *st = stream_of(c, id);
	return st ? zw_h2_body_add(&st->body, c->ng, id, data, len, end) : -1;
}

int zw_h2conn_trailers(struct zw_h2conn *c, int32_t id, const struct zw_h2_field *fields, size_t n)
{
	struct h2stream *st = stream_of(c, id);
	return st ? zw_h2_body_trailers(&st->body, c->ng, id, fields, n, SIZE_MAX) : -1;
}

void zw_h2conn_reset(struct zw_h2conn *c, int32_t id, uint32_t error_code)
{
	nghttp2_submit_rst_stream(c->ng, NGHTTP2_FLAG_NONE, id, error_code);
}

void zw_h2conn_consume(struct zw_h2conn *c, int32_t id, size_t n)
{
	nghttp2_session_consume(c->ng, id, n);
}

void zw_h2conn_shutdown(struct zw_h2conn *c)
{
	nghttp2_submit_goaway(c->ng, NGHTTP2_FLAG_NONE,
	                      nghttp2_session_get_last_proc_stream_id(c->ng), NGHTTP2_NO_ERROR,
	                      NULL, 0);
}

/* ---- the connection ----------------------------------------------------- */

int zw_h2conn_new(const struct zw_h2_limits *limits, const struct zw_h2_callbacks *cb, void *ctx,
                  struct zw_h2conn **out)
{
	struct zw_h2conn *c = calloc(1, sizeof(*c));
	if (!c)
		return -1;
	c->lim = limits ? *limits : defaults;
#define DEF(f)         \
	if (!c->lim.f) \
		c->lim.f = defaults.f;
	DEF(max_concurrent_streams)
	DEF(max_header_list)
	DEF(max_continuations)
	DEF(initial_window)
	DEF(reset_burst)
	DEF(reset_rate)
	DEF(max_settings)
	DEF(max_outbound_ack)
	DEF(max_stream_buffer)
	DEF(max_output)
#undef DEF
	c->cb = *cb;
	c->ctx = ctx;
	c->out.limit = c->lim.max_output;
	nghttp2_settings_entry iv[] = {
	        {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, c->lim.max_concurrent_streams},
	        {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, c->lim.max_header_list},
	        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, c->lim.initial_window},
	        {NGHTTP2_SETTINGS_HEADER_TABLE_SIZE, 4096},
	        {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
	};
	struct zw_h2_session_spec spec = {
	        .on_begin_headers = on_begin_headers,
	        .on_header = on_header,
	        .on_frame_recv = on_frame_recv,
	        .on_data_chunk = on_data_chunk,
	        .on_stream_close = on_stream_close,
	        .settings = iv,
	        .n_settings = sizeof(iv) / sizeof(iv[0]),
	        .max_settings = c->lim.max_settings,
	        .max_outbound_ack = c->lim.max_outbound_ack,
	        .reset_burst = c->lim.reset_burst,
	        .reset_rate = c->lim.reset_rate,
	        .max_continuations = c->lim.max_continuations,
	        /* A stream's body gives its window back only once it went
	         * upstream: a held or slow request stops its own stream only. */
	        .window_streams = c->lim.max_concurrent_streams,
	        .stream_window = c->lim.initial_window,
	};
	if (zw_h2_session_new(&spec, c, &c->ng) < 0) {
		zw_h2conn_free(c);
		return -1;
	}
	*out = c;
	return 0;
}

int zw_h2_session_new(const struct zw_h2_session_spec *spec, void *user, nghttp2_session **out)
{
	nghttp2_session_callbacks *cbs = NULL;
	nghttp2_option *opt = NULL;
	nghttp2_session *ng = NULL;
	int rc = -1;
	if (nghttp2_session_callbacks_new(&cbs) != 0 || nghttp2_option_new(&opt) != 0)
		goto out;
	nghttp2_session_callbacks_set_on_begin_headers_callback(cbs, spec->on_begin_headers);
	nghttp2_session_callbacks_set_on_header_callback(cbs, spec->on_header);
	nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, spec->on_frame_recv);
	nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, spec->on_data_chunk);
	nghttp2_session_callbacks_set_on_stream_close_callback(cbs, spec->on_stream_close);
	if (spec->on_frame_not_send)
		nghttp2_session_callbacks_set_on_frame_not_send_callback(cbs,
		                                                         spec->on_frame_not_send);
	nghttp2_option_set_no_auto_window_update(opt, 1);
	nghttp2_option_set_max_deflate_dynamic_table_size(opt, 4096);
	if (spec->max_settings)
		nghttp2_option_set_max_settings(opt, spec->max_settings);
	if (spec->max_outbound_ack)
		nghttp2_option_set_max_outbound_ack(opt, spec->max_outbound_ack);
	if (spec->reset_burst)
		nghttp2_option_set_stream_reset_rate_limit(opt, spec->reset_burst,
		                                           spec->reset_rate);
	if (spec->max_continuations)
		nghttp2_option_set_max_continuations(opt, spec->max_continuations);
	if ((spec->client ? nghttp2_session_client_new2(&ng, cbs, user, opt)
	                  : nghttp2_session_server_new2(&ng, cbs, user, opt)) != 0)
		goto out;
	if (nghttp2_submit_settings(ng, NGHTTP2_FLAG_NONE, spec->settings, spec->n_settings) != 0)
		goto out;
	uint64_t conn = (uint64_t)spec->window_streams * spec->stream_window;
	if (conn > 0x7fffffff)
		conn = 0x7fffffff;
	if (conn > 65535 &&
	    nghttp2_session_set_local_window_size(ng, NGHTTP2_FLAG_NONE, 0, (int32_t)conn) != 0)
		goto out;
	*out = ng;
	ng = NULL;
	rc = 0;
out:
	nghttp2_session_del(ng);
	nghttp2_option_del(opt);
	nghttp2_session_callbacks_del(cbs);
	return rc;
}

void zw_h2conn_free(struct zw_h2conn *c)
{
	if (!c)
		return;
	/* Deleting the session does not call on_stream_close: end the
	 * streams the caller still holds first. */
	if (c->ng) {
		while (c->streams) {
			struct h2stream *st = c->streams;
			nghttp2_session_set_stream_user_data(c->ng, st->id, NULL);
			if (st->user)
				c->cb.on_close(c->ctx, st->user, NGHTTP2_CANCEL);
			stream_free(c, st);
		}
		nghttp2_session_del(c->ng);
	}
	zw_buf_free(&c->out.buf);
	free(c);
}

int zw_h2conn_feed(struct zw_h2conn *c, const uint8_t *data, size_t len)
{
	return zw_h2_session_feed(c->ng, &c->fatal, data, len);
}

int zw_h2_session_feed(nghttp2_session *ng, int *fatal, const uint8_t *data, size_t len)
{
	if (*fatal)
		return -1;
	ssize_t n = nghttp2_session_mem_recv(ng, data, len);
	if (n < 0 || (size_t)n != len) {
		/* nghttp2 queued a GOAWAY where the error allows one. */
		*fatal = 1;
		return -1;
	}
	return 0;
}

int zw_h2_session_output(void *session, int *fatal, struct zw_obuf *out, size_t max)
{
	nghttp2_session *ng = session;
	int rc = 0;
	out->buf.len = 0;
	while (out->buf.len < max) {
		const uint8_t *p;
		ssize_t n = nghttp2_session_mem_send(ng, &p);
		if (n <= 0) {
			rc = n < 0 ? -1 : 0;
			break;
		}
		/* A frame may take the buffer past its limit once: the
		 * limit bounds how much is produced per call, not a frame. */
		out->limit = out->buf.len + (size_t)n > max ? out->buf.len + (size_t)n : max;
		if (zw_obuf_add(out, p, (size_t)n) < 0) {
			rc = -1;
			break;
		}
	}
	out->limit = max;
	if (rc < 0)
		*fatal = 1;
	return rc;
}

int zw_h2_fields_add(struct zw_obuf *b, const uint8_t *name, size_t nl, const uint8_t *value,
                     size_t vl)
{
	struct zw_buf *o = &b->buf;
	size_t need = nl + vl + 2;
	if (o->cap > o->len && o->cap - o->len > need && o->len + need <= b->limit) {
		/* Room already there (every field of every head passes here):
		 * one copy each, no call per piece. */
		char *p = o->data + o->len;
		if (nl)
			memcpy(p, name, nl);
		p[nl] = '\0';
		if (vl)
			memcpy(p + nl + 1, value, vl);
		p[nl + 1 + vl] = '\0';
		o->len += need;
		o->data[o->len] = '\0';
		return 0;
	}
	if (zw_obuf_add(b, name, nl) < 0 || zw_obuf_add(b, "", 1) < 0 ||
	    zw_obuf_add(b, value, vl) < 0 || zw_obuf_add(b, "", 1) < 0)
		return -1;
	return 0;
}

int zw_h2_text_field(struct zw_obuf *b, const char *name, size_t nl, const char *value, size_t vl)
{
	/* Without printf: every field of every translated head passes here. */
	if (zw_obuf_add(b, name, nl) < 0 || zw_obuf_add(b, ": ", 2) < 0 ||
	    zw_obuf_add(b, value, vl) < 0 || zw_obuf_add(b, "\r\n", 2) < 0)
		return -1;
	return 0;
}

int zw_h2_text_chunk(struct zw_obuf *b, size_t n)
{
	char line[2 * sizeof(size_t) + 2];
	size_t k = sizeof(line);
	line[--k] = '\n';
	line[--k] = '\r';
	do {
		line[--k] = "0123456789abcdef"[n & 0xf];
		n >>= 4;
	} while (n);
	return zw_obuf_add(b, line + k, sizeof(line) - k);
}

int zw_h2_fields_copy(struct zw_obuf *b, const struct zw_h2_field *fields, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		size_t at = b->buf.len;
		if (zw_h2_fields_add(b, (const uint8_t *)fields[i].name, fields[i].name_len,
		                     (const uint8_t *)fields[i].value, fields[i].value_len) < 0)
			return -1;
		for (size_t j = 0; j < fields[i].name_len; j++)
			b->buf.data[at + j] = (char)tolower((unsigned char)b->buf.data[at + j]);
	}
	return 0;
}

int zw_h2_submit_trailer(void *session, int32_t id, const struct zw_obuf *b, size_t n)
{
	struct zw_h2_field f[MAX_FIELDS];
	nghttp2_nv nv[MAX_FIELDS];
	if (n > MAX_FIELDS)
		return -1;
	zw_h2_fields_list(b, n, f);
	for (size_t i = 0; i < n; i++)
		nv[i] = (nghttp2_nv){(uint8_t *)f[i].name, (uint8_t *)f[i].value, f[i].name_len,
		                     f[i].value_len, NGHTTP2_NV_FLAG_NONE};
	/* nghttp2 copies names and values. */
	return nghttp2_submit_trailer(session, id, nv, n) == 0 ? 0 : -1;
}

void zw_h2_fields_list(const struct zw_obuf *b, size_t n, struct zw_h2_field *out)
{
	size_t off = 0;
	for (size_t i = 0; i < n; i++) {
		const char *name = b->buf.data + off;
		size_t nl = strlen(name);
		const char *value = name + nl + 1;
		size_t vl = strlen(value);
		out[i] = (struct zw_h2_field){name, value, nl, vl};
		off += nl + vl + 2;
	}
}

int zw_h2conn_output(struct zw_h2conn *c, const uint8_t **data, size_t *len)
{
	if (zw_h2_session_output(c->ng, &c->fatal, &c->out, c->lim.max_output) < 0)
		return -1;
	*data = (const uint8_t *)c->out.buf.data;
	*len = c->out.buf.len;
	/* Streams that got room while frames were produced. */
	while (c->writable) {
		struct h2stream *st = c->writable;
		c->writable = st->next_writable;
		st->body.drained = 0;
		if (c->cb.on_writable && st->user)
			c->cb.on_writable(c->ctx, st->user);
	}
	return 0;
}

int zw_h2conn_done(const struct zw_h2conn *c)
{
	return !nghttp2_session_want_read(c->ng) && !nghttp2_session_want_write(c->ng);
}
