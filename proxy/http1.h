/* HTTP/1.1 message heads for the proxy: parsing with llhttp into a compact
 * copy, the limits that apply while parsing, and the rewriting of request and
 * response heads on their way through the proxy.
 *
 * The parser itself (llhttp_t) lives in the caller's connection struct; this
 * module installs its callbacks and copies only what the proxy keeps: the
 * request target or status reason, and the header fields, into one growable
 * buffer bounded by the header-bytes limit. Parsing stops (HPE_PAUSED) at the
 * end of the head so the caller decides what happens to the body; llhttp runs
 * in its strict default mode (no lenient flags), and what llhttp 8 still
 * accepts is rejected here: obsolete line folding (head and trailers), empty
 * field names, versions other than HTTP/1.0 and 1.1, Transfer-Encoding in
 * HTTP/1.0 or empty, request targets with bytes outside visible ASCII or a
 * fragment, controls in a reason phrase.
 *
 * A request in absolute-form is rewritten at the end of its head to
 * origin-form with Host set to the target's authority (RFC 9112 3.2.2), so
 * routing and the forwarded head see one consistent authority. Trailer
 * fields of a chunked body are never added to the head: they stay in the
 * body bytes (relayed verbatim), bounded by max_head_bytes and max_headers;
 * a caller that re-frames the body (HTTP/2) may ask for a copy of them
 * (zw_http_head.trailers). Responses that
 * have no body (to HEAD, 1xx but 101, 204, 304) complete with their head
 * whatever their framing fields say. */
#ifndef ZW_HTTP1_H
#define ZW_HTTP1_H

#include "buf.h"

#include <llhttp.h>
#include <stddef.h>
#include <stdint.h>

struct zw_obuf;

/* Limits applied while parsing a head. */
struct zw_http_limits {
	size_t max_head_bytes;   /* whole head incl. request line (default 65536) */
	size_t max_headers;      /* header fields (default 100) */
	size_t max_request_line; /* request target length (default 8192) */
};

struct zw_http_field {
	uint32_t name_off, name_len;
	uint32_t value_off, value_len;
};

/* Parse outcome of zw_http_head_execute. */
enum zw_http_status {
	ZW_HTTP_MORE = 0,      /* need more bytes */
	ZW_HTTP_HEAD_DONE = 1, /* head complete; *used bytes belong to it */
	ZW_HTTP_EBAD = -1,     /* malformed: answer 400 */
	ZW_HTTP_ETOOBIG = -2,  /* head or header count too large: 431 */
	ZW_HTTP_EURI = -3,     /* request target too long: 414 */
	ZW_HTTP_ENOMEM = -4,
};

/* A parsed head. `buf` holds the target (or reason) and the fields. */
struct zw_http_head {
	char *buf;
	size_t len, cap;
	struct zw_http_field *fields;
	size_t n_fields, cap_fields;
	uint32_t url_off, url_len; /* request target, or status reason */
	size_t raw_bytes;          /* bytes of the head consumed so far */
	const struct zw_http_limits *limits;
	int last_cb;          /* internal: which span came last */
	int error;            /* internal: ZW_HTTP_E* set by a callback */
	int skip_body;        /* response to HEAD: no body whatever the framing */
	int complete;         /* internal: message completed, not yet reported */
	char prev[2];         /* internal: the last two bytes parsed before this chunk */
	char prev_nonws;      /* internal: the last of them that is not SP/HTAB */
	const char *chunk;    /* internal: start of the chunk being parsed */
	size_t name_len;      /* internal: length of the field name being parsed */
	size_t trailer_bytes; /* internal: trailer section bytes so far */
	size_t mark;          /* internal: end of the last request-line element */
	/* Optional: called with each span of decoded body bytes (chunk framing
	 * removed) while zw_http_body_execute runs; cleared by reset. */
	void (*on_body)(void *ctx, const char *at, size_t len);
	void *body_ctx;
	/* Optional: when set, the trailer fields of a chunked body are also
	 * copied here as name\0value\0 pairs (its limit bounds them besides
	 * max_head_bytes), n_trailers counting them; cleared by reset. */
	struct zw_obuf *trailers;
	size_t n_trailers;
};

/* Initialises a head (borrowing `limits`, which must outlive it). */
void zw_http_head_init(struct zw_http_head *h, const struct zw_http_limits *limits);

/* Forgets the parsed content but keeps the allocations for reuse, and the
 * HEAD flag of zw_http_parser_expect_head_response (the final response
 * after an interim one answers the same request). */
void zw_http_head_reset(struct zw_http_head *h);

/* Frees what the head owns (not the struct). NULL-safe. */
void zw_http_head_free(struct zw_http_head *h);

/* Initialises `p` as a parser of `type` (HTTP_REQUEST or HTTP_RESPONSE)
 * whose head callbacks fill `h`; body and completion callbacks are the
 * module's own, which pause at the end of the head and at the end of each
 * message (see zw_http_body_execute). */
void zw_http_parser_init(llhttp_t *p, int type, struct zw_http_head *h);

/* Feeds `len` bytes of a head to `p`. On ZW_HTTP_HEAD_DONE *used is the
 * number of bytes that belonged to the head (the rest is body or the next
 * message, not yet parsed). On ZW_HTTP_MORE all bytes were used. Errors are
 * sticky for the message. */
int zw_http_head_execute(llhttp_t *p, struct zw_http_head *h, const char *data, size_t len,
                         size_t *used);

/* Body parse outcome of zw_http_body_execute. */
enum zw_http_body_status {
	ZW_BODY_MORE = 0,    /* all bytes were body; message not complete */
	ZW_BODY_DONE = 1,    /* message complete after *used bytes */
	ZW_BODY_UPGRADE = 2, /* message complete and the connection upgrades */
	ZW_BODY_EBAD = -1,   /* malformed body framing */
};

/* Feeds body bytes after a completed head (resuming the paused parser).
 * *used is how many of `len` bytes belong to this message's body framing
 * (forwarded verbatim: llhttp validated them). Call with len 0 right after
 * the head to learn whether a bodyless message is already complete. */
int zw_http_body_execute(llhttp_t *p, const char *data, size_t len, size_t *used);

/* Tells a paused response parser that the request was HEAD (no body follows
 * whatever the framing headers say). Call before the first response byte. */
void zw_http_parser_expect_head_response(llhttp_t *p, int is_head);

/* Returns the value of the first field named `name` (case-insensitive) and
 * its length in *vlen, or NULL. Points into h->buf. */
const char *zw_http_find(const struct zw_http_head *h, const char *name, size_t *vlen);

/* Counts the fields named `name`. */
size_t zw_http_count(const struct zw_http_head *h, const char *name);

/* Returns nonzero when a comma-separated header value list of every field
 * named `name` contains `token` (case-insensitive). */
int zw_http_has_token(const struct zw_http_head *h, const char *name, const char *token);

/* Output built under a fixed limit: a lib/buf buffer and the most it may
 * hold, set once by its owner (a head, a frame, a stream's queue), so the
 * builders below need not be told the limit at every call. Release with
 * zw_buf_free(&o.buf). */
struct zw_obuf {
	struct zw_buf buf; /* owned */
	size_t limit;
};

/* Appends len bytes of data (borrowed) to b->buf under b->limit; returns 0,
 * or -1 when the limit would be passed or memory runs out (the buffer keeps
 * what it had). */
int zw_obuf_add(struct zw_obuf *b, const void *data, size_t len);
/* Appends printf-style text, as zw_obuf_add. */
int zw_obuf_addf(struct zw_obuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* What the proxy adds when forwarding a request. */
struct zw_fwd_info {
	const char *client_ip; /* appended to X-Forwarded-For */
	const char *proto;     /* X-Forwarded-Proto when absent ("http") */
	int upgrade;           /* keep Upgrade / Connection: upgrade */
	int chunked;           /* request body is chunked (F_CHUNKED) */
};

/* Writes the upstream request head for request `h` parsed by `p` into `out`
 * (appending): request line as HTTP/1.1 (HTTP/1.0 for 1.0 clients), fields
 * minus hop-by-hop ones
 * (Connection and the fields it names, Keep-Alive, Proxy-*, TE, Trailer,
 * Transfer-Encoding, Upgrade unless info->upgrade; a Connection nomination
 * of Content-Length, Transfer-Encoding or Host is ignored), Host kept,
 * X-Forwarded-For appended, X-Forwarded-Proto/-Host set when absent,
 * Transfer-Encoding: chunked when the body is chunked. Returns 0 or -1 (out
 * of limit or memory). */
int zw_http_build_request(struct zw_obuf *out, const llhttp_t *p, const struct zw_http_head *h,
                          const struct zw_fwd_info *info);

/* What the proxy adds when relaying a response. */
struct zw_resp_info {
	int cold_start;   /* X-Zerowire-Cold-Start: true|false */
	int close;        /* Connection: close */
	int upgrade;      /* 101: keep Upgrade and Connection: upgrade */
	int keep_framing; /* keep Transfer-Encoding (body relayed verbatim) */
};

/* Writes the client response head for upstream response `h` parsed by `p`
 * into `out` (appending): status line as HTTP/1.1, hop-by-hop fields
 * dropped as for requests (Connection nominations of framing fields
 * ignored), Transfer-Encoding kept only for a chunked response that has a
 * body (not 1xx, 204, 304). Returns 0 or -1. */
int zw_http_build_response(struct zw_obuf *out, const llhttp_t *p, const struct zw_http_head *h,
                           const struct zw_resp_info *info);

/* Writes a complete small response generated by the proxy itself:
 * `status`, optional extra header lines `extra` ("Name: v\r\n"...; may be
 * NULL), a text/plain body. Returns 0 or -1. */
int zw_http_simple_response(struct zw_obuf *out, int status, const char *extra, const char *body,
                            size_t body_len, int close);

/* Returns the reason phrase for `status` ("Bad Gateway"; "Unknown"). */
const char *zw_http_reason(int status);

/* Returns nonzero when `name` (length len) is a hop-by-hop field that is
 * always dropped (Connection, Keep-Alive, Proxy-*, TE, Trailer,
 * Transfer-Encoding, Upgrade). */
int zw_http_is_hop_by_hop(const char *name, size_t len);

/* Returns nonzero when a trailer field `name` (length len) is one the proxy
 * drops wherever it re-frames a body (RFC 9110 6.5.1: fields needed before
 * the content): pseudo-headers, the hop-by-hop fields above, framing
 * (Content-Length, Content-Encoding, Content-Type, Content-Range), routing
 * (Host), request modifiers (Expect, Max-Forwards, Range, If-*,
 * Cache-Control, Pragma) and authentication (Authorization, Cookie,
 * Set-Cookie). */
int zw_http_trailer_dropped(const char *name, size_t len);

#endif
