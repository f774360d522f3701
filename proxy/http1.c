/* HTTP/1.1 head parsing, limits and rewriting (see http1.h). */
#include "http1.h"

#include "target.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

enum { CB_NONE = 0, CB_METHOD, CB_URL, CB_VERSION, CB_FIELD, CB_VALUE };

/* A field name with its length: the head rewrite compares every field
 * against these lists, so no strlen per comparison. */
struct fname {
	const char *s;
	size_t n;
};
#define FNAME(lit)                   \
	{                            \
		lit, sizeof(lit) - 1 \
	}

/* Fields a Connection header may not nominate for removal: framing and
 * routing belong to the whole message, never to one hop (RFC 9110 7.6.1).
 * Such nominations are ignored (the field is kept). */
static const struct fname protected_fields[] = {FNAME("content-length"), FNAME("host"),
                                                FNAME("transfer-encoding")};

/* Hop-by-hop fields (RFC 9110 7.6.1), never forwarded as they are. */
static const struct fname hop_fields[] = {
        FNAME("connection"), FNAME("keep-alive"),        FNAME("te"),
        FNAME("trailer"),    FNAME("transfer-encoding"), FNAME("upgrade")};

/* Fields the proxy writes itself into a forwarded request: the split
 * header is for the proxy's routing only. */
static const struct fname request_skip[] = {FNAME("x-forwarded-for"), FNAME(ZW_SERVICE_HEADER)};

#define NFIELDS(a) (sizeof(a) / sizeof((a)[0]))

/* Returns nonzero when name[0..len) is one of the n names of list. */
static int in_list(const char *name, size_t len, const struct fname *list, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (len == list[i].n && strncasecmp(name, list[i].s, len) == 0)
			return 1;
	return 0;
}

void zw_http_head_init(struct zw_http_head *h, const struct zw_http_limits *limits)
{
	memset(h, 0, sizeof(*h));
	h->limits = limits;
}

void zw_http_head_reset(struct zw_http_head *h)
{
	h->len = 0;
	h->n_fields = 0;
	h->url_off = h->url_len = 0;
	h->raw_bytes = 0;
	h->last_cb = CB_NONE;
	h->error = 0;
	h->complete = 0;
	h->prev[0] = h->prev[1] = 0;
	h->prev_nonws = 0;
	h->chunk = NULL;
	h->name_len = 0;
	h->trailer_bytes = 0;
	h->mark = 0;
	h->on_body = NULL;
	h->body_ctx = NULL;
	h->trailers = NULL;
	h->n_trailers = 0;
}

void zw_http_head_free(struct zw_http_head *h)
{
	if (!h)
		return;
	free(h->buf);
	free(h->fields);
	h->buf = NULL;
	h->fields = NULL;
	h->len = h->cap = h->n_fields = h->cap_fields = 0;
}

/* Appends a span to the head buffer within the head-bytes limit. */
static int head_append(struct zw_http_head *h, const char *at, size_t len)
{
	if (h->len + len > h->limits->max_head_bytes) {
		h->error = ZW_HTTP_ETOOBIG;
		return -1;
	}
	if (h->len + len > h->cap) {
		size_t cap = h->cap ? h->cap : 512;
		while (cap < h->len + len)
			cap *= 2;
		if (cap > h->limits->max_head_bytes)
			cap = h->limits->max_head_bytes;
		char *nb = realloc(h->buf, cap);
		if (!nb) {
			h->error = ZW_HTTP_ENOMEM;
			return -1;
		}
		h->buf = nb;
		h->cap = cap;
	}
	memcpy(h->buf + h->len, at, len);
	h->len += len;
	return 0;
}

/* Forgets the trailer fields copied so far (a new message, or the last
 * chunk parsed again by a probe). */
static void trailers_forget(struct zw_http_head *h)
{
	if (h->trailers)
		h->trailers->buf.len = 0;
	h->n_trailers = 0;
}

/* Appends a span of a trailer field (or its terminating NUL) to the copy
 * the caller asked for, if any. Returns 0 or -1 (h->error set). */
static int trailer_copy(struct zw_http_head *h, const char *at, size_t len)
{
	if (!h->trailers)
		return 0;
	/* A NUL inside a name or value would split the pair: llhttp rejects
	 * it already (on_value checks values again). */
	if (zw_obuf_add(h->trailers, at, len) < 0) {
		h->error = ZW_HTTP_ETOOBIG;
		return -1;
	}
	return 0;
}

static int on_message_begin(llhttp_t *p)
{
	struct zw_http_head *h = p->data;
	h->len = 0;
	h->n_fields = 0;
	h->url_off = h->url_len = 0;
	h->last_cb = CB_NONE;
	h->complete = 0;
	h->name_len = 0;
	h->trailer_bytes = 0;
	trailers_forget(h);
	return 0;
}

/* Appends a span of the request target or status reason. */
static int url_append(struct zw_http_head *h, const char *at, size_t len)
{
	if (h->last_cb != CB_URL) {
		h->url_off = (uint32_t)h->len;
		h->last_cb = CB_URL;
	}
	if (h->url_len + len > h->limits->max_request_line) {
		h->error = ZW_HTTP_EURI;
		return -1;
	}
	if (head_append(h, at, len) < 0)
		return -1;
	h->url_len += (uint32_t)len;
	return 0;
}

/* Position of `at` in the bytes of the head parsed so far. */
static size_t pos_of(const struct zw_http_head *h, const char *at)
{
	return h->raw_bytes + (size_t)(at - h->chunk);
}

/* The byte k (1 or 2) places before `at`: in the chunk being parsed, else
 * among the last bytes of the ones parsed before it. */
static char byte_before(const struct zw_http_head *h, const char *at, size_t k)
{
	size_t in = (size_t)(at - h->chunk);
	return in >= k ? at[-(ptrdiff_t)k] : h->prev[2 - (k - in)];
}

/* Nonzero when the line ending just before `at` is CRLF: llhttp 8 takes a
 * bare LF after the start line, at the end of a head and at the end of a
 * chunked body, and body bytes are forwarded as they came. */
static int crlf_before(const struct zw_http_head *h, const char *at)
{
	return byte_before(h, at, 1) == '\n' && byte_before(h, at, 2) == '\r';
}

/* Remembers the end of the n bytes of data just parsed (see byte_before). */
static void remember_tail(struct zw_http_head *h, const char *data, size_t n)
{
	if (n >= 2) {
		h->prev[0] = data[n - 2];
	} else if (n == 1) {
		h->prev[0] = h->prev[1];
	} else {
		return;
	}
	h->prev[1] = data[n - 1];
	for (size_t i = n; i > 0; i--)
		if (data[i - 1] != ' ' && data[i - 1] != '\t') {
			h->prev_nonws = data[i - 1];
			break;
		}
}

/* The request line is method SP target SP version with exactly one space
 * each (RFC 9112 3): llhttp skips runs of spaces, which other parsers may
 * split differently. `mark` is where the previous element ended; the span
 * of cb starts `skip` bytes after the space (llhttp's version span leaves
 * out "HTTP/"). */
static int one_space_before(struct zw_http_head *h, const char *at, int cb, size_t skip)
{
	if (h->last_cb != cb && pos_of(h, at) != h->mark + 1 + skip) {
		h->error = ZW_HTTP_EBAD;
		return -1;
	}
	return 0;
}

static int on_method(llhttp_t *p, const char *at, size_t len)
{
	struct zw_http_head *h = p->data;
	h->last_cb = CB_METHOD;
	h->mark = pos_of(h, at) + len;
	return 0;
}

static int on_version(llhttp_t *p, const char *at, size_t len)
{
	struct zw_http_head *h = p->data;
	(void)len;
	if (p->type == HTTP_REQUEST && one_space_before(h, at, CB_VERSION, 5) < 0)
		return -1;
	h->last_cb = CB_VERSION;
	return 0;
}

/* A request target is visible ASCII without '#' (RFC 9112 3.2: no
 * whitespace, controls, obs-text or fragment), whatever llhttp lets by. */
static int on_url(llhttp_t *p, const char *at, size_t len)
{
	struct zw_http_head *h = p->data;
	if (one_space_before(h, at, CB_URL, 0) < 0)
		return -1;
	h->mark = pos_of(h, at) + len;
	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)at[i];
		if (ch <= 0x20 || ch >= 0x7f || ch == '#') {
			h->error = ZW_HTTP_EBAD;
			return -1;
		}
	}
	return url_append(h, at, len);
}

/* A reason phrase is HTAB / SP / VCHAR / obs-text (RFC 9112 4): no CR, LF,
 * NUL or other controls reach the client. */
static int on_status(llhttp_t *p, const char *at, size_t len)
{
	struct zw_http_head *h = p->data;
	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)at[i];
		if ((ch < 0x20 && ch != '\t') || ch == 0x7f) {
			h->error = ZW_HTTP_EBAD;
			return -1;
		}
	}
	return url_append(h, at, len);
}

static int name_is(const struct zw_http_head *h, const struct zw_http_field *f, const char *name)
{
	size_t n = strlen(name);
	return f->name_len == n && strncasecmp(h->buf + f->name_off, name, n) == 0;
}

/* Adds an empty field to h; returns it or NULL (h->error set). */
static struct zw_http_field *new_field(struct zw_http_head *h)
{
	if (h->n_fields >= h->limits->max_headers) {
		h->error = ZW_HTTP_ETOOBIG;
		return NULL;
	}
	if (h->n_fields == h->cap_fields) {
		size_t cap = h->cap_fields ? h->cap_fields * 2 : 16;
		struct zw_http_field *nf = realloc(h->fields, cap * sizeof(*nf));
		if (!nf) {
			h->error = ZW_HTTP_ENOMEM;
			return NULL;
		}
		h->fields = nf;
		h->cap_fields = cap;
	}
	struct zw_http_field *f = &h->fields[h->n_fields++];
	memset(f, 0, sizeof(*f));
	f->name_off = (uint32_t)h->len;
	return f;
}

/* Counts trailer bytes (names and values of the trailer section of a
 * chunked body) against the head-bytes limit. Trailers are relayed
 * verbatim inside the body and never copied into the head. */
static int trailer_count(struct zw_http_head *h, size_t len)
{
	h->trailer_bytes += len;
	if (h->trailer_bytes > h->limits->max_head_bytes) {
		h->error = ZW_HTTP_ETOOBIG;
		return -1;
	}
	return 0;
}

static int on_field(llhttp_t *p, const char *at, size_t len)
{
	struct zw_http_head *h = p->data;
	/* Defence in depth: a field name never holds whitespace ("X : v"),
	 * however the parser was fed. */
	if (memchr(at, ' ', len) || memchr(at, '\t', len)) {
		h->error = ZW_HTTP_EBAD;
		return -1;
	}
	/* Trailer fields (after the last chunk) belong to the body: they are
	 * counted, checked, and never added to the head, which has already
	 * been forwarded (or is about to be, from a probe of the body). */
	int trailing = (p->flags & F_TRAILING) != 0;
	if (h->last_cb != CB_FIELD && !crlf_before(h, at)) {
		h->error = ZW_HTTP_EBAD; /* a bare LF ended the line before */
		return -1;
	}
	if (h->last_cb != CB_FIELD) {
		if (!trailing && !new_field(h))
			return -1;
		/* A copied trailer's value ends where the next name starts. */
		if (trailing && h->n_trailers && trailer_copy(h, "", 1) < 0)
			return -1;
		h->last_cb = CB_FIELD;
		h->name_len = 0;
	}
	h->name_len += len;
	if (trailing)
		return trailer_count(h, len) < 0 ? -1 : trailer_copy(h, at, len);
	if (head_append(h, at, len) < 0)
		return -1;
	h->fields[h->n_fields - 1].name_len += (uint32_t)len;
	return 0;
}

/* The end of a copied trailer's name: one more pair, within the field
 * count of a head. Its value ends at the next name or the message's end
 * (no callback per field on the warm path). Returns 0 or -1. */
static int trailer_name_end(struct zw_http_head *h)
{
	if (!h->trailers)
		return 0;
	if (++h->n_trailers > h->limits->max_headers) {
		h->error = ZW_HTTP_ETOOBIG;
		return -1;
	}
	return trailer_copy(h, "", 1);
}

/* An empty field name (": v") is malformed in a head and in trailers. */
static int on_field_complete(llhttp_t *p)
{
	struct zw_http_head *h = p->data;
	if (h->last_cb != CB_FIELD || h->name_len == 0) {
		h->error = ZW_HTTP_EBAD;
		return -1;
	}
	return (p->flags & F_TRAILING) ? trailer_name_end(h) : 0;
}

static int on_value(llhttp_t *p, const char *at, size_t len)
{
	struct zw_http_head *h = p->data;
	/* llhttp rejects these already; nothing that ends a line in some
	 * parser may ever be copied into a forwarded head. */
	if (memchr(at, '\r', len) || memchr(at, '\n', len) || memchr(at, '\0', len)) {
		h->error = ZW_HTTP_EBAD;
		return -1;
	}
	/* A value span that follows a line feed and nothing but SP/HTAB is an
	 * obs-fold continuation line (RFC 9112 5.2): reject it. llhttp skips
	 * the whitespace after an empty first line ("X:\r\n b"), so look back
	 * over it (an empty span, as llhttp gives for an empty value, holds
	 * nothing to continue). */
	const char *b = at;
	while (len > 0 && b > h->chunk && (b[-1] == ' ' || b[-1] == '\t'))
		b--;
	if (len > 0 && (b > h->chunk ? b[-1] : h->prev_nonws) == '\n') {
		h->error = ZW_HTTP_EBAD;
		return -1;
	}
	if (p->flags & F_TRAILING) {
		h->last_cb = CB_VALUE;
		return trailer_count(h, len) < 0 ? -1 : trailer_copy(h, at, len);
	}
	struct zw_http_field *f = &h->fields[h->n_fields - 1];
	if (h->last_cb != CB_VALUE) {
		f->value_off = (uint32_t)h->len;
		h->last_cb = CB_VALUE;
	}
	if (head_append(h, at, len) < 0)
		return -1;
	f->value_len += (uint32_t)len;
	return 0;
}

/* Resets the trailer accounting at the last chunk ("0\r\n"): a probe of
 * the body (a copy of the parser, same head) re-parses the same bytes. */
static int on_chunk_header(llhttp_t *p)
{
	struct zw_http_head *h = p->data;
	if (p->content_length == 0) {
		h->trailer_bytes = 0;
		h->name_len = 0;
		h->last_cb = CB_NONE;
		trailers_forget(h);
	}
	return 0;
}

/* Rewrites an absolute-form request target (RFC 9112 3.2.2) to origin-form
 * and makes Host the target's authority (the authority replaces Host), so
 * routing, X-Forwarded-Host and the forwarded head agree. Accepts
 * origin-form, "*" for OPTIONS and authority-form for CONNECT (answered
 * 501 later); anything else, other schemes than http(s), an empty
 * authority or userinfo are malformed. Returns 0 or -1 (h->error set). */
static int normalize_target(const llhttp_t *p, struct zw_http_head *h)
{
	const char *u = h->buf + h->url_off;
	size_t n = h->url_len;
	if (p->method == HTTP_CONNECT || (n > 0 && u[0] == '/'))
		return 0;
	if (n == 1 && u[0] == '*' && p->method == HTTP_OPTIONS)
		return 0;
	size_t skip = 0;
	if (n > 7 && strncasecmp(u, "http://", 7) == 0)
		skip = 7;
	else if (n > 8 && strncasecmp(u, "https://", 8) == 0)
		skip = 8;
	if (skip == 0) {
		h->error = ZW_HTTP_EBAD;
		return -1;
	}
	size_t a = skip, e = skip;
	while (e < n && u[e] != '/' && u[e] != '?')
		e++;
	if (e == a || memchr(u + a, '@', e - a)) {
		h->error = ZW_HTTP_EBAD;
		return -1;
	}
	uint32_t auth_off = h->url_off + (uint32_t)a, auth_len = (uint32_t)(e - a);
	if (e < n && u[e] == '/') {
		h->url_off += (uint32_t)e;
		h->url_len -= (uint32_t)e;
	} else {
		/* Empty path: origin-form needs "/" before any query. */
		uint32_t off = (uint32_t)h->len, rest = (uint32_t)(n - e);
		char *query = rest ? malloc(rest) : NULL;
		if (rest && !query) {
			h->error = ZW_HTTP_ENOMEM;
			return -1;
		}
		if (rest)
			memcpy(query, u + e, rest); /* head_append may move buf */
		int rc = head_append(h, "/", 1);
		if (rc == 0 && rest)
			rc = head_append(h, query, rest);
		free(query);
		if (rc < 0)
			return -1;
		h->url_off = off;
		h->url_len = rest + 1;
	}
	struct zw_http_field *host = NULL;
	for (size_t i = 0; i < h->n_fields; i++)
		if (name_is(h, &h->fields[i], "host")) {
			host = &h->fields[i];
			break;
		}
	if (!host) {
		if (!(host = new_field(h)) || head_append(h, "Host", 4) < 0)
			return -1;
		host->name_len = 4;
	}
	/* More than one Host is answered 400 by the caller; the first one
	 * is the one routing reads. */
	host->value_off = auth_off;
	host->value_len = auth_len;
	return 0;
}

static int on_headers_complete(llhttp_t *p)
{
	struct zw_http_head *h = p->data;
	/* Only HTTP/1.0 and 1.1 are spoken here: any other version (llhttp
	 * takes 0.9, 2.0 and 3.0 in a text request line) is malformed. */
	if (p->http_major != 1 || p->http_minor > 1) {
		h->error = ZW_HTTP_EBAD;
		return -1;
	}
	/* Transfer-Encoding in HTTP/1.0 is faulty framing (RFC 9112 6.1); an
	 * empty Transfer-Encoding (llhttp sets no flag for it) is no coding. */
	int has_te = 0;
	for (size_t i = 0; i < h->n_fields; i++)
		has_te |= name_is(h, &h->fields[i], "transfer-encoding");
	if (has_te && (p->http_minor == 0 || !(p->flags & F_TRANSFER_ENCODING))) {
		h->error = ZW_HTTP_EBAD;
		return -1;
	}
	if (p->type == HTTP_REQUEST)
		return normalize_target(p, h) < 0 ? -1 : HPE_PAUSED;
	/* Responses without a body (RFC 9112 6.3): to HEAD, 1xx but 101,
	 * 204 and 304, whatever Content-Length or Transfer-Encoding say
	 * (llhttp would read one). 1 tells llhttp to skip it; we cannot both
	 * skip and pause, so these complete at once and the caller sees
	 * ZW_BODY_DONE with 0 bytes. */
	int st = p->status_code;
	if (st != 101 && (h->skip_body || st < 200 || st == 204 || st == 304))
		return 1;
	return HPE_PAUSED;
}

static int on_message_complete(llhttp_t *p)
{
	struct zw_http_head *h = p->data;
	/* The last copied trailer's value ends here. */
	if (h->n_trailers && trailer_copy(h, "", 1) < 0)
		return -1;
	h->complete = 1;
	return HPE_PAUSED;
}

static int on_body(llhttp_t *p, const char *at, size_t len)
{
	struct zw_http_head *h = p->data;
	if (h->on_body)
		h->on_body(h->body_ctx, at, len);
	return 0;
}

static const llhttp_settings_t settings = {
        .on_message_begin = on_message_begin,
        .on_method = on_method,
        .on_url = on_url,
        .on_version = on_version,
        .on_status = on_status,
        .on_header_field = on_field,
        .on_header_value = on_value,
        .on_header_field_complete = on_field_complete,
        .on_headers_complete = on_headers_complete,
        .on_chunk_header = on_chunk_header,
        .on_body = on_body,
        .on_message_complete = on_message_complete,
};

void zw_http_parser_init(llhttp_t *p, int type, struct zw_http_head *h)
{
	llhttp_init(p, (llhttp_type_t)type, &settings);
	p->data = h;
}

void zw_http_parser_expect_head_response(llhttp_t *p, int is_head)
{
	struct zw_http_head *h = p->data;
	h->skip_body = is_head;
}

int zw_http_head_execute(llhttp_t *p, struct zw_http_head *h, const char *data, size_t len,
                         size_t *used)
{
	*used = 0;
	if (h->error)
		return h->error;
	h->chunk = data;
	llhttp_errno_t e = llhttp_execute(p, data, len);
	if (e == HPE_OK) {
		remember_tail(h, data, len);
		h->raw_bytes += len;
		*used = len;
		if (h->raw_bytes > h->limits->max_head_bytes) {
			h->error = ZW_HTTP_ETOOBIG;
			return h->error;
		}
		return ZW_HTTP_MORE;
	}
	if (e == HPE_PAUSED) {
		size_t n = (size_t)(llhttp_get_error_pos(p) - data);
		if (!crlf_before(h, data + n)) {
			h->error = ZW_HTTP_EBAD; /* the head ended with a bare LF */
			return h->error;
		}
		remember_tail(h, data, n);
		h->raw_bytes += n;
		*used = n;
		if (h->raw_bytes > h->limits->max_head_bytes) {
			h->error = ZW_HTTP_ETOOBIG;
			return h->error;
		}
		llhttp_resume(p);
		return ZW_HTTP_HEAD_DONE;
	}
	if (h->error == 0)
		h->error = ZW_HTTP_EBAD;
	return h->error;
}

int zw_http_body_execute(llhttp_t *p, const char *data, size_t len, size_t *used)
{
	struct zw_http_head *h = p->data;
	*used = 0;
	if (h->complete) {
		/* Completed together with its head (a skipped HEAD body). */
		h->complete = 0;
		return ZW_BODY_DONE;
	}
	h->chunk = data; /* trailers: line ends and obs-fold in the callbacks */
	llhttp_errno_t e = llhttp_execute(p, data, len);
	if (e == HPE_OK) {
		remember_tail(h, data, len);
		*used = len;
		return ZW_BODY_MORE;
	}
	if (e != HPE_PAUSED && e != HPE_PAUSED_UPGRADE)
		return ZW_BODY_EBAD;
	h->complete = 0;
	size_t n = (size_t)(llhttp_get_error_pos(p) - data);
	/* A chunked body ends with a CRLF (after the last chunk or trailers);
	 * it is forwarded as it came, so a bare LF there is refused. */
	if ((p->flags & F_CHUNKED) && !crlf_before(h, data + n))
		return ZW_BODY_EBAD;
	remember_tail(h, data, n);
	*used = n;
	if (e == HPE_PAUSED_UPGRADE)
		return ZW_BODY_UPGRADE;
	llhttp_resume(p);
	return ZW_BODY_DONE;
}

const char *zw_http_find(const struct zw_http_head *h, const char *name, size_t *vlen)
{
	for (size_t i = 0; i < h->n_fields; i++) {
		const struct zw_http_field *f = &h->fields[i];
		if (name_is(h, f, name)) {
			if (vlen)
				*vlen = f->value_len;
			return h->buf + f->value_off;
		}
	}
	return NULL;
}

size_t zw_http_count(const struct zw_http_head *h, const char *name)
{
	size_t n = 0;
	for (size_t i = 0; i < h->n_fields; i++)
		n += name_is(h, &h->fields[i], name) ? 1 : 0;
	return n;
}

/* Returns nonzero when the comma list v[0..len) contains token t. */
static int list_has(const char *v, size_t len, const char *t, size_t tlen)
{
	size_t i = 0;
	while (i < len) {
		while (i < len && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
			i++;
		size_t s = i;
		while (i < len && v[i] != ',')
			i++;
		size_t e = i;
		while (e > s && (v[e - 1] == ' ' || v[e - 1] == '\t'))
			e--;
		if (e - s == tlen && strncasecmp(v + s, t, tlen) == 0)
			return 1;
	}
	return 0;
}

int zw_http_has_token(const struct zw_http_head *h, const char *name, const char *token)
{
	size_t tlen = strlen(token);
	for (size_t i = 0; i < h->n_fields; i++) {
		const struct zw_http_field *f = &h->fields[i];
		if (name_is(h, f, name) &&
		    list_has(h->buf + f->value_off, f->value_len, token, tlen))
			return 1;
	}
	return 0;
}

/* A request or response head fits in the first allocation: no regrowth on
 * the warm path. */
#define OBUF_FIRST_CAP 1024

int zw_obuf_add(struct zw_obuf *b, const void *data, size_t len)
{
	struct zw_buf *o = &b->buf;
	/* The warm path's case, room already there under the limit, without a
	 * call (every field of every forwarded head passes here). */
	if (o->cap - o->len > len && o->len + len <= b->limit) {
		memcpy(o->data + o->len, data, len);
		o->len += len;
		o->data[o->len] = '\0';
		return 0;
	}
	if (!o->cap && zw_buf_reserve(o, OBUF_FIRST_CAP, b->limit) < 0)
		return -1;
	return zw_buf_append(o, data, len, b->limit) == 0 ? 0 : -1;
}

/* Appends a NUL-terminated string (no formatting: the warm path avoids
 * vsnprintf). */
static int obuf_adds(struct zw_obuf *b, const char *str)
{
	return zw_obuf_add(b, str, strlen(str));
}

int zw_obuf_addf(struct zw_obuf *b, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int rc = zw_buf_vappendf(&b->buf, b->limit, fmt, ap);
	va_end(ap);
	return rc == 0 ? 0 : -1;
}

int zw_http_is_hop_by_hop(const char *name, size_t len)
{
	return in_list(name, len, hop_fields, NFIELDS(hop_fields)) ||
	       (len >= 6 && strncasecmp(name, "proxy-", 6) == 0);
}

int zw_http_trailer_dropped(const char *name, size_t len)
{
	static const char *const dropped[] = {
	        "content-length", "content-encoding", "content-type", "content-range", "host",
	        "expect",         "max-forwards",     "range",        "cache-control", "pragma",
	        "authorization",  "cookie",           "set-cookie"};
	if (len == 0 || name[0] == ':' || zw_http_is_hop_by_hop(name, len))
		return 1;
	if (len >= 3 && strncasecmp(name, "if-", 3) == 0)
		return 1;
	for (size_t i = 0; i < sizeof(dropped) / sizeof(dropped[0]); i++)
		if (len == strlen(dropped[i]) && strncasecmp(name, dropped[i], len) == 0)
			return 1;
	return 0;
}

/* Returns nonzero when field f is named in a Connection header of h. */
static int named_by_connection(const struct zw_http_head *h, const struct zw_http_field *f)
{
	for (size_t i = 0; i < h->n_fields; i++) {
		const struct zw_http_field *c = &h->fields[i];
		if (name_is(h, c, "connection") && list_has(h->buf + c->value_off, c->value_len,
		                                            h->buf + f->name_off, f->name_len))
			return 1;
	}
	return 0;
}

/* Appends "Name: value\r\n" for field f. */
static int add_field(struct zw_obuf *out, const struct zw_http_head *h,
                     const struct zw_http_field *f)
{
	struct zw_buf *o = &out->buf;
	size_t n = (size_t)f->name_len + 2 + f->value_len + 2;
	if (o->cap - o->len > n && o->len + n <= out->limit) {
		/* Room already there (the warm path): one copy per part. */
		char *d = o->data + o->len;
		memcpy(d, h->buf + f->name_off, f->name_len);
		d += f->name_len;
		*d++ = ':';
		*d++ = ' ';
		memcpy(d, h->buf + f->value_off, f->value_len);
		d += f->value_len;
		*d++ = '\r';
		*d++ = '\n';
		*d = '\0';
		o->len += n;
		return 0;
	}
	if (zw_obuf_add(out, h->buf + f->name_off, f->name_len) < 0 ||
	    zw_obuf_add(out, ": ", 2) < 0 ||
	    zw_obuf_add(out, h->buf + f->value_off, f->value_len) < 0 ||
	    zw_obuf_add(out, "\r\n", 2) < 0)
		return -1;
	return 0;
}

/* Appends every field of h except hop-by-hop ones and the n_skip names of
 * skip. */
static int add_end_to_end(struct zw_obuf *out, const struct zw_http_head *h,
                          const struct fname *skip, size_t n_skip)
{
	/* Nominations need a Connection field: without one (the usual head)
	 * no field is looked up in the others. */
	int has_connection = 0;
	for (size_t i = 0; i < h->n_fields; i++)
		has_connection |= name_is(h, &h->fields[i], "connection");
	for (size_t i = 0; i < h->n_fields; i++) {
		const struct zw_http_field *f = &h->fields[i];
		const char *name = h->buf + f->name_off;
		if (zw_http_is_hop_by_hop(name, f->name_len) ||
		    in_list(name, f->name_len, skip, n_skip))
			continue;
		if (has_connection &&
		    !in_list(name, f->name_len, protected_fields, NFIELDS(protected_fields)) &&
		    named_by_connection(h, f))
			continue;
		if (add_field(out, h, f) < 0)
			return -1;
	}
	return 0;
}

/* Appends one Transfer-Encoding field with the codings of every
 * Transfer-Encoding field of h, in order, as a clean list: elements
 * trimmed, empty ones (", chunked", which llhttp takes) left out, so a
 * backend that compares the value with "chunked" frames the body as the
 * proxy did. */
static int add_codings(struct zw_obuf *out, const struct zw_http_head *h)
{
	if (zw_obuf_add(out, "Transfer-Encoding: ", 19) < 0)
		return -1;
	int first = 1;
	for (size_t i = 0; i < h->n_fields; i++) {
		const struct zw_http_field *f = &h->fields[i];
		if (!name_is(h, f, "transfer-encoding"))
			continue;
		const char *v = h->buf + f->value_off;
		size_t at = 0, n = f->value_len;
		while (at < n) {
			size_t s = at, e;
			while (at < n && v[at] != ',')
				at++;
			e = at++;
			while (s < e && (v[s] == ' ' || v[s] == '\t'))
				s++;
			while (e > s && (v[e - 1] == ' ' || v[e - 1] == '\t'))
				e--;
			if (e == s)
				continue;
			if ((!first && zw_obuf_add(out, ", ", 2) < 0) ||
			    zw_obuf_add(out, v + s, e - s) < 0)
				return -1;
			first = 0;
		}
	}
	return zw_obuf_add(out, "\r\n", 2);
}

int zw_http_build_request(struct zw_obuf *out, const llhttp_t *p, const struct zw_http_head *h,
                          const struct zw_fwd_info *info)
{
	const char *method = llhttp_method_name((llhttp_method_t)p->method);
	/* An HTTP/1.0 client cannot take a chunked response: ask the upstream
	 * in HTTP/1.0 too, so it delimits the body by length or by closing. */
	int v10 = p->http_major == 1 && p->http_minor == 0;
	if (obuf_adds(out, method) < 0 || zw_obuf_add(out, " ", 1) < 0 ||
	    zw_obuf_add(out, h->buf + h->url_off, h->url_len) < 0 ||
	    zw_obuf_add(out, v10 ? " HTTP/1.0\r\n" : " HTTP/1.1\r\n", 11) < 0)
		return -1;
	if (add_end_to_end(out, h, request_skip, NFIELDS(request_skip)) < 0)
		return -1;
	/* X-Forwarded-For: every earlier value in order, then the client. */
	if (zw_obuf_add(out, "X-Forwarded-For: ", 17) < 0)
		return -1;
	for (size_t i = 0; i < h->n_fields; i++) {
		const struct zw_http_field *f = &h->fields[i];
		if (!name_is(h, f, "x-forwarded-for") || f->value_len == 0)
			continue;
		if (zw_obuf_add(out, h->buf + f->value_off, f->value_len) < 0 ||
		    zw_obuf_add(out, ", ", 2) < 0)
			return -1;
	}
	if (obuf_adds(out, info->client_ip ? info->client_ip : "unknown") < 0 ||
	    zw_obuf_add(out, "\r\n", 2) < 0)
		return -1;
	if (!zw_http_find(h, "x-forwarded-proto", NULL) &&
	    (zw_obuf_add(out, "X-Forwarded-Proto: ", 19) < 0 ||
	     obuf_adds(out, info->proto ? info->proto : "http") < 0 ||
	     zw_obuf_add(out, "\r\n", 2) < 0))
		return -1;
	size_t hlen = 0;
	const char *host = zw_http_find(h, "host", &hlen);
	if (host && !zw_http_find(h, "x-forwarded-host", NULL)) {
		if (zw_obuf_add(out, "X-Forwarded-Host: ", 18) < 0 ||
		    zw_obuf_add(out, host, hlen) < 0 || zw_obuf_add(out, "\r\n", 2) < 0)
			return -1;
	}
	/* The body is relayed as received (llhttp checked that chunked is the
	 * final coding): keep the codings, in order. */
	if (info->chunked && add_codings(out, h) < 0)
		return -1;
	if (info->upgrade) {
		size_t ulen = 0;
		const char *up = zw_http_find(h, "upgrade", &ulen);
		if (up && (zw_obuf_add(out, "Connection: Upgrade\r\nUpgrade: ", 30) < 0 ||
		           zw_obuf_add(out, up, ulen) < 0 || zw_obuf_add(out, "\r\n", 2) < 0))
			return -1;
	}
	return zw_obuf_add(out, "\r\n", 2);
}

int zw_http_build_response(struct zw_obuf *out, const llhttp_t *p, const struct zw_http_head *h,
                           const struct zw_resp_info *info)
{
	char status[16] = "HTTP/1.1 000 ";
	int code = p->status_code;
	status[9] = (char)('0' + code / 100 % 10);
	status[10] = (char)('0' + code / 10 % 10);
	status[11] = (char)('0' + code % 10);
	if (zw_obuf_add(out, status, 13) < 0 ||
	    zw_obuf_add(out, h->buf + h->url_off, h->url_len) < 0 ||
	    zw_obuf_add(out, "\r\n", 2) < 0)
		return -1;
	if (add_end_to_end(out, h, NULL, 0) < 0)
		return -1;
	int st = p->status_code;
	int bodyless = st < 200 || st == 204 || st == 304;
	if (info->keep_framing && !bodyless && (p->flags & F_CHUNKED) && add_codings(out, h) < 0)
		return -1;
	if (info->upgrade) {
		size_t ulen = 0;
		const char *up = zw_http_find(h, "upgrade", &ulen);
		if (zw_obuf_add(out, "Connection: Upgrade\r\n", 21) < 0)
			return -1;
		if (up && (zw_obuf_add(out, "Upgrade: ", 9) < 0 || zw_obuf_add(out, up, ulen) < 0 ||
		           zw_obuf_add(out, "\r\n", 2) < 0))
			return -1;
	} else if (info->close && zw_obuf_add(out, "Connection: close\r\n", 19) < 0) {
		return -1;
	}
	if (p->status_code >= 200 &&
	    (info->cold_start ? zw_obuf_add(out, "X-Zerowire-Cold-Start: true\r\n", 29)
	                      : zw_obuf_add(out, "X-Zerowire-Cold-Start: false\r\n", 30)) < 0)
		return -1;
	return zw_obuf_add(out, "\r\n", 2);
}

const char *zw_http_reason(int status)
{
	switch (status) {
	case 100:
		return "Continue";
	case 101:
		return "Switching Protocols";
	case 103:
		return "Early Hints";
	case 200:
		return "OK";
	case 204:
		return "No Content";
	case 400:
		return "Bad Request";
	case 404:
		return "Not Found";
	case 408:
		return "Request Timeout";
	case 413:
		return "Content Too Large";
	case 414:
		return "URI Too Long";
	case 431:
		return "Request Header Fields Too Large";
	case 500:
		return "Internal Server Error";
	case 501:
		return "Not Implemented";
	case 502:
		return "Bad Gateway";
	case 503:
		return "Service Unavailable";
	case 504:
		return "Gateway Timeout";
	default:
		break;
	}
	if (status < 200)
		return "Informational";
	if (status < 300)
		return "OK";
	if (status < 400)
		return "Redirect";
	if (status < 500)
		return "Client Error";
	return "Server Error";
}

int zw_http_simple_response(struct zw_obuf *out, int status, const char *extra, const char *body,
                            size_t body_len, int close)
{
	if (zw_obuf_addf(out,
	                 "HTTP/1.1 %d %s\r\nContent-Type: text/plain; charset=utf-8\r\n"
	                 "Content-Length: %zu\r\n%s",
	                 status, zw_http_reason(status), body_len,
	                 close ? "Connection: close\r\n" : "") < 0)
		return -1;
	if (extra && zw_obuf_add(out, extra, strlen(extra)) < 0)
		return -1;
	if (zw_obuf_add(out, "\r\n", 2) < 0)
		return -1;
	return body_len ? zw_obuf_add(out, body, body_len) : 0;
}
