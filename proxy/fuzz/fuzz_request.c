/* libFuzzer property target: the proxy's request path without sockets
 * (http1.c), checked against a second, independent llhttp instance.
 *
 * The input's first byte picks a split point; the rest is what a client
 * sends, arriving in two reads. It is driven as proxy/server.c does: the
 * head is parsed with the proxy's limits; once accepted, the body bytes of
 * the same read are framed on a copy of the parser (dispatch's check), on a
 * second copy that is committed (send_request_head), then the later read
 * goes through the parser itself (forward_body). What would be forwarded
 * (the rebuilt head and the body bytes the framing let through) is parsed
 * again by a plain llhttp instance with its own callbacks, and so is the
 * client's input (the reference). Properties, aborting on a violation:
 *   - the forwarded bytes hold exactly one message (or a prefix of one while
 *     the body is incomplete), never two, with nothing after it;
 *   - same method, version, body and trailers as the client's first message;
 *     the target is the client's (the origin-form of an absolute-form one);
 *   - every forwarded head field was in the client's head, but the proxy's
 *     own (X-Forwarded-*, the re-framed Transfer-Encoding, Connection and
 *     Upgrade of an upgrade, Host of an absolute-form target), and as many
 *     Content-Length and Host fields as the client sent: trailers never
 *     reach the head and hop-by-hop handling never drops framing.
 * Seeds: proxy/fuzz/corpus/fuzz_request/. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "http1.h"

static const struct zw_http_limits limits = {
        .max_head_bytes = 8192,
        .max_headers = 64,
        .max_request_line = 2048,
};

/* What the independent parser saw of the first message. */
struct seen {
	llhttp_t p;
	int begun, done, method, major, minor;
	struct zw_obuf url, head, trailers, body; /* head/trailers: "\nname:value" lines */
	int in_value;
};

static int s_begin(llhttp_t *p)
{
	struct seen *s = p->data;
	s->begun++;
	s->method = -1;
	return 0;
}

static int s_url(llhttp_t *p, const char *at, size_t len)
{
	struct seen *s = p->data;
	return zw_obuf_add(&s->url, at, len);
}

/* Header and trailer fields go to their own list, names lowercased. */
static struct zw_obuf *s_list(llhttp_t *p)
{
	struct seen *s = p->data;
	return (p->flags & F_TRAILING) ? &s->trailers : &s->head;
}

static int s_field(llhttp_t *p, const char *at, size_t len)
{
	struct seen *s = p->data;
	struct zw_obuf *l = s_list(p);
	if (s->in_value || l->buf.len == 0) {
		if (zw_obuf_add(l, "\n", 1) < 0)
			return -1;
		s->in_value = 0;
	}
	for (size_t i = 0; i < len; i++) {
		char c = at[i] >= 'A' && at[i] <= 'Z' ? (char)(at[i] + 32) : at[i];
		if (zw_obuf_add(l, &c, 1) < 0)
			return -1;
	}
	return 0;
}

static int s_field_done(llhttp_t *p)
{
	return zw_obuf_add(s_list(p), ":", 1);
}

static int s_value(llhttp_t *p, const char *at, size_t len)
{
	struct seen *s = p->data;
	s->in_value = 1;
	return zw_obuf_add(s_list(p), at, len);
}

static int s_value_done(llhttp_t *p)
{
	struct seen *s = p->data;
	s->in_value = 1;
	return 0;
}

static int s_headers(llhttp_t *p)
{
	struct seen *s = p->data;
	s->method = p->method;
	s->major = p->http_major;
	s->minor = p->http_minor;
	s->in_value = 1;
	return 0;
}

static int s_body(llhttp_t *p, const char *at, size_t len)
{
	struct seen *s = p->data;
	return zw_obuf_add(&s->body, at, len);
}

static int s_complete(llhttp_t *p)
{
	struct seen *s = p->data;
	s->done++;
	return HPE_PAUSED;
}

static const llhttp_settings_t seen_settings = {
        .on_message_begin = s_begin,
        .on_url = s_url,
        .on_header_field = s_field,
        .on_header_field_complete = s_field_done,
        .on_header_value = s_value,
        .on_header_value_complete = s_value_done,
        .on_headers_complete = s_headers,
        .on_body = s_body,
        .on_message_complete = s_complete,
};

/* Parses data with a fresh instance into s. Returns the llhttp status and
 * the bytes used in *used (up to the end of the first message). */
static llhttp_errno_t seen_parse(struct seen *s, const char *data, size_t len, size_t *used)
{
	memset(s, 0, sizeof(*s));
	s->url.limit = s->head.limit = s->trailers.limit = s->body.limit = 1 << 20;
	llhttp_init(&s->p, HTTP_REQUEST, &seen_settings);
	s->p.data = s;
	llhttp_errno_t e = llhttp_execute(&s->p, data, len);
	*used = e == HPE_OK ? len : (size_t)(llhttp_get_error_pos(&s->p) - data);
	return e;
}

static void seen_free(struct seen *s)
{
	zw_buf_free(&s->url.buf);
	zw_buf_free(&s->head.buf);
	zw_buf_free(&s->trailers.buf);
	zw_buf_free(&s->body.buf);
}

static int same(const struct zw_obuf *a, const struct zw_obuf *b)
{
	return a->buf.len == b->buf.len &&
	       (a->buf.len == 0 || memcmp(a->buf.data, b->buf.data, a->buf.len) == 0);
}

/* Counts the lines of list l (a "\nname:value" list) named `name`. */
static size_t count_named(const struct zw_obuf *l, const char *name)
{
	size_t n = 0, nl = strlen(name);
	for (size_t i = 0; i < l->buf.len; i++)
		if (l->buf.data[i] == '\n' && i + 1 + nl < l->buf.len &&
		    memcmp(l->buf.data + i + 1, name, nl) == 0 && l->buf.data[i + 1 + nl] == ':')
			n++;
	return n;
}

/* Nonzero when the line [at, at+len) ("name:value") is a line of l. */
static int has_line(const struct zw_obuf *l, const char *at, size_t len)
{
	for (size_t i = 0; i < l->buf.len; i++) {
		if (l->buf.data[i] != '\n' || i + 1 + len > l->buf.len ||
		    memcmp(l->buf.data + i + 1, at, len) != 0)
			continue;
		if (i + 1 + len == l->buf.len || l->buf.data[i + 1 + len] == '\n')
			return 1;
	}
	return 0;
}

/* Every forwarded head field is the client's or the proxy's own. */
static void check_fields(const struct seen *fwd, const struct seen *ref, int chunked, int upgrade,
                         int absolute)
{
	const struct zw_obuf *l = &fwd->head;
	size_t i = 0;
	while (i < l->buf.len) {
		size_t s = i + 1, e = s;
		while (e < l->buf.len && l->buf.data[e] != '\n')
			e++;
		const char *line = l->buf.data + s;
		size_t n = e - s;
		if (n == 0 || line[0] == ':') /* an empty field name */
			abort();
#define IS(x) (n > sizeof(x) - 1 && memcmp(line, x, sizeof(x) - 1) == 0)
		int own = IS("x-forwarded-") || (chunked && IS("transfer-encoding:")) ||
		          (upgrade && (IS("connection:") || IS("upgrade:"))) ||
		          (absolute && IS("host:"));
#undef IS
		if (!own && !has_line(&ref->head, line, n))
			abort();
		i = e;
	}
	if (count_named(&fwd->head, "content-length") != count_named(&ref->head, "content-length"))
		abort();
	if (!absolute && count_named(&fwd->head, "host") != count_named(&ref->head, "host"))
		abort();
}

/* Checks what would be forwarded (`out`) against the client's input. */
static void check_forwarded(const struct zw_http_head *h, const struct zw_obuf *out, const char *in,
                            size_t len, int complete, int chunked, int upgrade)
{
	struct seen fwd, ref;
	size_t fused = 0, rused = 0;
	llhttp_errno_t fe = seen_parse(&fwd, out->buf.data, out->buf.len, &fused);
	llhttp_errno_t re = seen_parse(&ref, in, len, &rused);
	int fdone = fe == HPE_PAUSED || fe == HPE_PAUSED_UPGRADE;
	/* One message, exactly the forwarded bytes; or an unfinished one. */
	if (fdone != complete || fused != out->buf.len || fwd.begun != 1 || fwd.done > 1)
		abort();
	if (!complete && fe != HPE_OK)
		abort();
	int rdone = re == HPE_PAUSED || re == HPE_PAUSED_UPGRADE;
	/* The proxy is stricter than plain llhttp, never more lenient. */
	if (complete && !rdone)
		abort();
	if (rdone || (!complete && re == HPE_OK)) {
		const char *u = ref.url.buf.data ? ref.url.buf.data : "";
		int absolute = ref.url.buf.len > 0 && u[0] != '/' && u[0] != '*';
		if (fwd.method != ref.method || fwd.major != ref.major || fwd.minor != ref.minor)
			abort();
		if (!absolute && !same(&fwd.url, &ref.url))
			abort();
		if (absolute && (fwd.url.buf.len == 0 || fwd.url.buf.data[0] != '/'))
			abort();
		if (fwd.url.buf.len != h->url_len ||
		    memcmp(fwd.url.buf.data, h->buf + h->url_off, h->url_len))
			abort();
		if (complete &&
		    (!same(&fwd.body, &ref.body) || !same(&fwd.trailers, &ref.trailers)))
			abort();
		if (!complete && (fwd.body.buf.len > ref.body.buf.len ||
		                  (fwd.body.buf.len &&
		                   memcmp(fwd.body.buf.data, ref.body.buf.data, fwd.body.buf.len))))
			abort();
		check_fields(&fwd, &ref, chunked, upgrade, absolute);
	}
	seen_free(&fwd);
	seen_free(&ref);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	const char *in = (const char *)data + 1;
	size_t len = size - 1;
	size_t split = data[0] % size;
	if (split > len)
		split = len;
	struct zw_http_head h;
	llhttp_t p;
	zw_http_head_init(&h, &limits);
	zw_http_parser_init(&p, HTTP_REQUEST, &h);
	size_t used = 0, off = 0, read_end = split;
	int r = zw_http_head_execute(&p, &h, in, split, &used);
	off = used;
	if (r == ZW_HTTP_MORE) {
		r = zw_http_head_execute(&p, &h, in + split, len - split, &used);
		off = split + used;
		read_end = len;
	}
	if (r != ZW_HTTP_HEAD_DONE) {
		zw_http_head_free(&h);
		return 0;
	}
	int chunked = (p.flags & F_CHUNKED) != 0, upgrade = llhttp_get_upgrade(&p);
	/* dispatch(): the body bytes of this read are checked on a copy of
	 * the parser before anything is built or sent. */
	size_t bused = 0;
	int b = zw_http_body_execute(&p, "", 0, &bused);
	if (b == ZW_BODY_MORE && off < read_end) {
		llhttp_t copy = p;
		if (zw_http_body_execute(&copy, in + off, read_end - off, &bused) == ZW_BODY_EBAD) {
			zw_http_head_free(&h);
			return 0;
		}
	}
	/* send_request_head(): the head, then the same bytes framed on a
	 * second copy that is committed. */
	struct zw_obuf out = {.limit = 1 << 20};
	struct zw_fwd_info info = {
	        .client_ip = "192.0.2.1", .proto = "http", .upgrade = upgrade, .chunked = chunked};
	if (zw_http_build_request(&out, &p, &h, &info) < 0) {
		zw_buf_free(&out.buf);
		zw_http_head_free(&h);
		return 0;
	}
	if (b == ZW_BODY_MORE && off < read_end) {
		llhttp_t copy = p;
		b = zw_http_body_execute(&copy, in + off, read_end - off, &bused);
		if (bused > read_end - off || b == ZW_BODY_EBAD)
			abort(); /* the first probe took these bytes */
		p = copy;
		if (zw_obuf_add(&out, in + off, bused) < 0)
			abort();
		off += bused;
	}
	/* forward_body(): the later read on the parser itself. */
	if (b == ZW_BODY_MORE && off < len) {
		b = zw_http_body_execute(&p, in + off, len - off, &bused);
		if (bused > len - off)
			abort();
		if (b != ZW_BODY_EBAD && zw_obuf_add(&out, in + off, bused) < 0)
			abort();
	}
	if (b != ZW_BODY_EBAD)
		check_forwarded(&h, &out, in, len, b == ZW_BODY_DONE || b == ZW_BODY_UPGRADE,
		                chunked, upgrade);
	zw_buf_free(&out.buf);
	zw_http_head_free(&h);
	return 0;
}
