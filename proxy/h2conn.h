/* HTTP/2 server connections for the data path, without I/O (nghttp2).
 *
 * One struct zw_h2conn is one client connection speaking HTTP/2 (h2c with
 * prior knowledge, or h2 after TLS ALPN). The caller feeds it the bytes it
 * reads (zw_h2conn_feed) and writes out what it produces
 * (zw_h2conn_output); in between, the connection reports requests through
 * callbacks and takes responses through zw_h2conn_respond / _data /
 * _trailers / _reset. No socket, timer or loop is touched here, so every
 * behaviour is testable in memory and fuzzable.
 *
 * Streams. A request stream is reported once its head is complete
 * (on_request: method, scheme, authority, path and the regular fields, as
 * nghttp2 validated them: no connection-specific fields, lower-case names,
 * pseudo-headers first and once). Its body arrives through on_data; the end
 * of the body is on_data with end = 1, after on_trailers when the client
 * sent a trailer section (a second HEADERS block, END_STREAM; nghttp2
 * refuses pseudo-headers and connection-specific fields in it; past the
 * header list limits the section is dropped, the request goes on).
 * on_close ends the stream whatever the reason (response done, RST_STREAM
 * from the client, GOAWAY, connection error); the caller's stream pointer
 * is invalid after it.
 *
 * Interim responses (100 Continue, 103 Early Hints) go out with
 * zw_h2conn_interim before the final head: HEADERS without END_STREAM.
 *
 * Flow control and backpressure. The connection does not open the receive
 * window by itself: the caller calls zw_h2conn_consume once it has passed
 * request body bytes on (written upstream), so a slow upstream stops the
 * client instead of filling memory. Response bodies are queued per stream up
 * to `max_stream_buffer` bytes: zw_h2conn_data takes only what fits and
 * says how much; zw_h2conn_writable tells the caller when to continue.
 *
 * Hardening (each limit has a default and a test, docs/http2.md):
 *   - concurrent streams (SETTINGS_MAX_CONCURRENT_STREAMS, default 100);
 *   - header list size (default 65536 bytes, also advertised), and at most
 *     `max_continuations` CONTINUATION frames per header block (default 8);
 *   - HPACK: the decoder's dynamic table is bounded by the 4096-byte
 *     SETTINGS_HEADER_TABLE_SIZE we advertise; a header block that decodes
 *     past the header list size fails the stream (431) and the connection
 *     after repeated abuse;
 *   - rapid reset: at most `reset_burst` streams reset by the client, then
 *     `reset_rate` per second (token bucket); past it, GOAWAY
 *     ENHANCE_YOUR_CALM;
 *   - SETTINGS and PING floods: at most `max_settings` entries in one
 *     SETTINGS frame, and at most `max_outbound_ack` queued acknowledgements
 *     (SETTINGS/PING ACKs the client does not read) before the connection
 *     ends;
 *   - output queued for the client bounded (`max_output`): a client that
 *     does not read stops being fed.
 * Threads: a connection is used by one thread. */
#ifndef ZW_H2CONN_H
#define ZW_H2CONN_H

#include "http1.h"

#include <nghttp2/nghttp2.h>
#include <stddef.h>
#include <stdint.h>

#define ZW_H2_PREFACE     "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
#define ZW_H2_PREFACE_LEN 24

struct zw_h2conn;

/* Limits of one connection; zero fields take the defaults noted. */
struct zw_h2_limits {
	uint32_t max_concurrent_streams; /* 100 */
	uint32_t max_header_list;        /* 65536 bytes */
	uint32_t max_continuations;      /* 8 */
	uint32_t initial_window;         /* 65535: per-stream receive window */
	uint32_t reset_burst;            /* 1000 client resets at once */
	uint32_t reset_rate;             /* 33 client resets per second after the burst */
	uint32_t max_settings;           /* 32 entries per SETTINGS frame */
	uint32_t max_outbound_ack;       /* 1000 queued ACKs */
	size_t max_stream_buffer;        /* 65536 bytes of response body per stream */
	size_t max_output;               /* 1 MiB of frames waiting for the client */
};

/* A field of a request or response (borrowed). */
struct zw_h2_field {
	const char *name, *value;
	size_t name_len, value_len;
};

/* A request head, borrowed for the on_request call. */
struct zw_h2_request {
	const char *method, *scheme, *authority, *path; /* authority may be NULL */
	size_t method_len, scheme_len, authority_len, path_len;
	const struct zw_h2_field *fields; /* regular fields, in order */
	size_t n_fields;
	int end_stream; /* no body follows */
};

struct zw_h2_callbacks {
	/* A request head is complete on stream `id`. Return a non-NULL stream
	 * pointer of the caller's (passed to the other callbacks), or NULL to
	 * refuse the stream (RST_STREAM REFUSED_STREAM). */
	void *(*on_request)(void *ctx, int32_t id, const struct zw_h2_request *req);
	/* Request body bytes (len may be 0 with end = 1). Return 0, or -1 to
	 * reset the stream (INTERNAL_ERROR). */
	int (*on_data)(void *ctx, void *stream, const uint8_t *data, size_t len, int end);
	/* The stream is over: error_code 0 when it completed both ways, else
	 * the HTTP/2 error code (client reset, GOAWAY, connection error). */
	void (*on_close)(void *ctx, void *stream, uint32_t error_code);
	/* Room appeared for response body on the stream (after a short
	 * zw_h2conn_data). May be NULL. */
	void (*on_writable)(void *ctx, void *stream);
	/* The request's trailer section (regular fields, borrowed for the
	 * call), just before on_data with end = 1. May be NULL (dropped). */
	void (*on_trailers)(void *ctx, void *stream, const struct zw_h2_field *fields, size_t n);
};

/* Creates a server connection with `limits` (copied; NULL: defaults) and
 * callbacks (copied) called with ctx. Queues our SETTINGS. *out is owned by
 * the caller (zw_h2conn_free). Returns 0 or -1 (out of memory). */
int zw_h2conn_new(const struct zw_h2_limits *limits, const struct zw_h2_callbacks *cb, void *ctx,
                  struct zw_h2conn **out);

/* Frees the connection; on_close runs for streams still open (error code
 * CANCEL). NULL is ignored. */
void zw_h2conn_free(struct zw_h2conn *c);

/* Feeds `len` bytes read from the client (the preface first). Returns 0, or
 * -1 when the connection must end: a protocol error or a limit (a GOAWAY
 * explaining it is queued: write out zw_h2conn_output, then close). Some
 * limits (SETTINGS flood, rapid reset) end the connection by queueing a
 * GOAWAY while returning 0: after the output, zw_h2conn_done says so. */
int zw_h2conn_feed(struct zw_h2conn *c, const uint8_t *data, size_t len);

/* Returns the frames waiting for the client (borrowed until the next call
 * on c) in *data / *len; 0 bytes when nothing waits. Call after feed and
 * after submitting. Returns 0, or -1 when the connection must end. */
int zw_h2conn_output(struct zw_h2conn *c, const uint8_t **data, size_t *len);

/* Nonzero when nothing more will be exchanged (GOAWAY both ways or a fatal
 * error) and the output is drained: close the socket. */
int zw_h2conn_done(const struct zw_h2conn *c);

/* Gives back `n` bytes of receive window for stream `id` (request body
 * bytes the caller has passed on). */
void zw_h2conn_consume(struct zw_h2conn *c, int32_t id, size_t n);

/* Submits a response head: :status and fields (connection-specific ones
 * are skipped: Connection, Keep-Alive, Proxy-Connection, Transfer-Encoding,
 * Upgrade; TE except "trailers"). end_stream: no body. Returns 0 or -1
 * (stream gone or out of memory). */
int zw_h2conn_respond(struct zw_h2conn *c, int32_t id, int status, const struct zw_h2_field *fields,
                      size_t n, int end_stream);

/* Submits an interim response head (status 100-199 but 101: HEADERS
 * without END_STREAM; fields as for zw_h2conn_respond) before the final
 * one. Returns 0, or -1 (stream gone, a final head went already, 101 or
 * not 1xx, out of memory). */
int zw_h2conn_interim(struct zw_h2conn *c, int32_t id, int status, const struct zw_h2_field *fields,
                      size_t n);

/* Queues response body bytes; returns how many were taken (<= len; the
 * stream's buffer bound), or -1 when the stream is gone. end: after these
 * bytes, the body ends (only when all were taken). */
long zw_h2conn_data(struct zw_h2conn *c, int32_t id, const uint8_t *data, size_t len, int end);

/* Ends the response body with trailers (after any queued data). Returns 0
 * or -1. */
int zw_h2conn_trailers(struct zw_h2conn *c, int32_t id, const struct zw_h2_field *fields, size_t n);

/* Resets stream `id` with an HTTP/2 error code (e.g. 0x8 CANCEL). */
void zw_h2conn_reset(struct zw_h2conn *c, int32_t id, uint32_t error_code);

/* Starts a graceful shutdown: GOAWAY with the last stream id, open streams
 * finish. */
void zw_h2conn_shutdown(struct zw_h2conn *c);

/* ---- shared with h2upstream.c (the client side's connections) ---- */

/* How an nghttp2 session of ours is built: the receiving callbacks, the
 * SETTINGS we send first, and limits (0: nghttp2's default). Both sides
 * get no automatic WINDOW_UPDATE (the caller gives window back as bytes
 * move on) and a 4096-byte HPACK encoder table. */
struct zw_h2_session_spec {
	int client; /* a client session (it sends the connection preface) */
	nghttp2_on_begin_headers_callback on_begin_headers;
	nghttp2_on_header_callback on_header;
	nghttp2_on_frame_recv_callback on_frame_recv;
	nghttp2_on_data_chunk_recv_callback on_data_chunk;
	nghttp2_on_stream_close_callback on_stream_close;
	nghttp2_on_frame_not_send_callback on_frame_not_send; /* may be NULL */
	const nghttp2_settings_entry *settings;
	size_t n_settings;
	uint32_t max_settings;      /* entries per SETTINGS frame */
	uint32_t max_outbound_ack;  /* queued SETTINGS/PING ACKs */
	uint32_t reset_burst;       /* peer resets at once (with reset_rate per second) */
	uint32_t reset_rate;        /* peer resets per second after the burst */
	uint32_t max_continuations; /* CONTINUATION frames per header block */
	/* The connection's receive window: room for `window_streams` stream
	 * windows of `stream_window` bytes (capped at 2^31-1), so a stream whose
	 * bytes are not consumed stops itself, never its siblings. 0: nghttp2's. */
	uint32_t window_streams, stream_window;
};

/* Creates a session as spec says (copied where nghttp2 needs it) with
 * `user` as the callbacks' user data, and queues its SETTINGS (and the
 * connection's window). *out is the
 * caller's (nghttp2_session_del). Returns 0 or -1 (out of memory). */
int zw_h2_session_new(const struct zw_h2_session_spec *spec, void *user, nghttp2_session **out);

/* Passes `len` bytes read from the peer (borrowed) to nghttp2 session ng.
 * Returns 0, or -1 when the connection must end: *fatal was set already,
 * or nghttp2 failed (a GOAWAY is queued where the error allows one) and
 * *fatal is set now. */
int zw_h2_session_feed(nghttp2_session *ng, int *fatal, const uint8_t *data, size_t len);

/* Collects what nghttp2 session `session` (an nghttp2_session *) has to
 * send into out (emptied first), about max bytes per call (one frame may
 * pass it). Returns 0, or -1 (session error, or out of memory) with *fatal
 * set. */
int zw_h2_session_output(void *session, int *fatal, struct zw_obuf *out, size_t max);

/* The outgoing body of one stream, on either side (responses to clients,
 * requests to backends). Bytes wait in `queue` (its limit is the bound)
 * until zw_h2_body_read hands them to nghttp2 as the peer's window allows;
 * then the body ends with END_STREAM, or with the trailer section after the
 * last DATA. While nothing is queued and the end has not come, nghttp2
 * waits (NGHTTP2_ERR_DEFERRED) and zw_h2_body_add / _trailers resume it.
 * When bytes leave, the writer may be told to give more: `drained` is set
 * and on_drained runs, either after a short zw_h2_body_add once any bytes
 * left, or (wake_empty) each time the queue empties; no further notice
 * until the owner clears `drained` (once the writer heard). Embedded in the owner's stream, which
 * is the stream's nghttp2 user data for as long as it lives. */
struct zw_h2_body {
	struct zw_obuf queue; /* bytes waiting; queue_off of them sent already */
	size_t queue_off;
	struct zw_obuf trailers; /* the trailer section, as zw_h2_fields_add builds it */
	size_t n_trailers;
	int end;        /* no more body after what is queued */
	int end_out;    /* the end went to nghttp2 (the owner sets it for a head with END_STREAM) */
	int deferred;   /* nghttp2 waits for bytes or the end */
	int blocked;    /* a zw_h2_body_add took less than it was given */
	int wake_empty; /* tell the writer each time the queue empties */
	int drained;    /* the writer may give more (cleared by the owner) */
	/* Runs as drained is set, with the session's user data; may be NULL. */
	void (*on_drained)(void *session_user, int32_t id);
};

/* Initialises b (zeroed memory) with at most `limit` bytes queued, the
 * writer told as wake_empty says, and on_drained (may be NULL). */
void zw_h2_body_init(struct zw_h2_body *b, size_t limit, int wake_empty,
                     void (*on_drained)(void *session_user, int32_t id));

/* Frees what b holds (not b). */
void zw_h2_body_free(struct zw_h2_body *b);

/* The nghttp2 data source read callback of a body: src->ptr is the
 * struct zw_h2_body, arg the session's user data. Copies up to length
 * queued bytes into buf and returns how many (with EOF, and the trailers
 * submitted, once the queue is empty after the end), or
 * NGHTTP2_ERR_DEFERRED when nothing is queued yet, or
 * NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE when the stream's owner is gone
 * or the trailers could not be submitted. */
ssize_t zw_h2_body_read(nghttp2_session *ng, int32_t id, uint8_t *buf, size_t length,
                        uint32_t *flags, nghttp2_data_source *src, void *arg);

/* Queues up to len bytes of data (copied) on b, stream id of session ng,
 * as far as the limit allows; end: the body ends after them (only when
 * all were taken). Resumes a waiting stream. Returns how many bytes were
 * taken, or -1 (the body ended already, or out of memory). */
long zw_h2_body_add(struct zw_h2_body *b, nghttp2_session *ng, int32_t id, const uint8_t *data,
                    size_t len, int end);

/* Ends b (stream id of session ng) with a trailer section: n fields (1 to
 * 256, copied with names lower-cased, at most max bytes as name\0value\0
 * pairs) sent after the queued bytes. Resumes a waiting stream. Returns 0,
 * or -1 (the body ended already, a bad count, past max, out of memory). */
int zw_h2_body_trailers(struct zw_h2_body *b, nghttp2_session *ng, int32_t id,
                        const struct zw_h2_field *fields, size_t n, size_t max);

/* Bytes queued on b and not yet handed to nghttp2. */
size_t zw_h2_body_queued(const struct zw_h2_body *b);

/* Nonzero for a field no HTTP/2 message may carry (RFC 9113 8.2.2):
 * Connection, Keep-Alive, Proxy-Connection, Transfer-Encoding, Upgrade, and
 * TE other than "trailers" (names compared without case). */
int zw_h2_connection_specific(const char *name, size_t len, const char *value, size_t vlen);

/* Fills nv[0..max) from fields[0..n) (values borrowed) with the names
 * lower-cased into `names` (room for the sum of the name lengths, the
 * caller's), leaving out connection-specific fields, and with `request`
 * also Host (:authority replaces it), empty names and names starting with
 * ':'. Returns how many. */
size_t zw_h2_lower_nv(nghttp2_nv *nv, size_t max, char *names, const struct zw_h2_field *fields,
                      size_t n, int request);

/* Appends a field (name, value: nl / vl bytes, borrowed) to a header block
 * kept as name\0value\0 pairs in b. Returns 0 or -1 (past b's limit). */
int zw_h2_fields_add(struct zw_obuf *b, const uint8_t *name, size_t nl, const uint8_t *value,
                     size_t vl);

/* Appends "name: value\r\n" (nl / vl bytes, borrowed) to HTTP/1.1 text
 * in b. Returns 0 or -1 (past b's limit). */
int zw_h2_text_field(struct zw_obuf *b, const char *name, size_t nl, const char *value, size_t vl);

/* Appends a chunk-size line (n in hex, then CRLF) to HTTP/1.1 text in b.
 * Returns 0 or -1. */
int zw_h2_text_chunk(struct zw_obuf *b, size_t n);

/* Fills out[0..n) with the first n fields of a block built by
 * zw_h2_fields_add (pointing into b). */
void zw_h2_fields_list(const struct zw_obuf *b, size_t n, struct zw_h2_field *out);

/* Appends n fields (borrowed) to a block as zw_h2_fields_add does, names
 * lower-cased. Returns 0 or -1 (past b's limit; b keeps a partial block). */
int zw_h2_fields_copy(struct zw_obuf *b, const struct zw_h2_field *fields, size_t n);

/* Submits the first n fields of block b (borrowed; nghttp2 copies them) as
 * the trailer section of stream id on nghttp2 session `session` (an
 * nghttp2_session *). Returns 0, or -1 (more than 256 fields, or nghttp2
 * refused). */
int zw_h2_submit_trailer(void *session, int32_t id, const struct zw_obuf *b, size_t n);

/* Nonzero when `data` (len bytes, the start of a connection) begins with
 * the HTTP/2 connection preface; -1 when it is too short to tell yet (a
 * prefix of the preface); 0 when it is not HTTP/2. */
int zw_h2_is_preface(const uint8_t *data, size_t len);

#endif
