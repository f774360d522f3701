/* HTTP/2 client connections to backends (h2c), without I/O (nghttp2).
 *
 * One struct zw_h2up is one connection from the proxy to a backend that
 * speaks HTTP/2 without TLS (its port says h2c or gRPC, or the request is
 * gRPC). The caller feeds it the bytes it reads from the backend
 * (zw_h2up_feed) and writes out what it produces (zw_h2up_output); requests
 * go in with zw_h2up_request and zw_h2up_data, responses come out through
 * callbacks. No socket, timer or loop is touched here, so every behaviour is
 * testable in memory and fuzzable (proxy/tests/test_h2upstream.c,
 * proxy/fuzz/fuzz_h2upstream.c).
 *
 * Streams. zw_h2up_request opens a stream (HEADERS) with the caller's
 * stream pointer; the response arrives as on_interim (1xx heads: 100
 * Continue, 103 Early Hints), on_head (the final head), on_data (body bytes; end = 1 once the body
 * ended without trailers) and on_trailers (the trailer section, which ends the response:
 * grpc-status and grpc-message travel here). A request body may end with a trailer section
 * (zw_h2up_trailers). on_close ends the stream whatever the reason; `retry` is set when the backend
 * certainly did not process the request (REFUSED_STREAM, or a stream above the last stream id of
 * the backend's GOAWAY) so it can go again on a new connection. zw_h2up_detach lets the caller go
 * first (a client reset: RST_STREAM CANCEL when the stream is still open) and no callback names the
 * stream afterwards.
 *
 * Flow control, both ways, nothing unbounded. Receiving: the connection
 * never reopens the backend's windows by itself; the caller gives window
 * back with zw_h2up_consume once it has passed response bytes to its client,
 * so a slow client stops the backend's stream (at most `stream_window` bytes
 * per stream are in flight; the connection window is `max_streams` times
 * that, so one stalled stream never stops the others). Sending: request body
 * bytes queue per stream until the backend's window lets them out;
 * zw_h2up_queued says how many wait, and on_writable says when the queue
 * emptied. The caller gives more only while nothing waits, so a slow backend
 * stops reading its client.
 *
 * Threads: a connection is used by one thread. */
#ifndef ZW_H2UPSTREAM_H
#define ZW_H2UPSTREAM_H

#include "h2conn.h"

#include <stddef.h>
#include <stdint.h>

struct zw_h2up;

/* Limits of one connection; zero fields take the defaults noted. */
struct zw_h2up_limits {
	uint32_t max_streams;   /* 100 streams open at once (and at most the backend's own limit) */
	uint32_t stream_window; /* 65535 bytes: per-stream receive window */
	uint32_t max_header_list; /* 65536 bytes of response head or trailers */
	size_t max_queue;  /* 1 MiB of request body queued per stream (a bound, not a goal) */
	size_t max_output; /* 1 MiB of frames per zw_h2up_output call */
};

struct zw_h2up_callbacks {
	/* The final response head of `stream`: status and regular fields
	 * (borrowed for the call). end_stream: nothing follows. Return 0, or
	 * -1 to reset the stream (CANCEL; on_close follows). */
	int (*on_head)(void *ctx, void *stream, int status, const struct zw_h2_field *fields,
	               size_t n, int end_stream);
	/* Response body bytes (len may be 0 with end = 1: the body ended).
	 * Return 0 or -1 as for on_head. */
	int (*on_data)(void *ctx, void *stream, const uint8_t *data, size_t len, int end);
	/* The trailer section, which ends the response (borrowed). */
	void (*on_trailers)(void *ctx, void *stream, const struct zw_h2_field *fields, size_t n);
	/* The stream is over: error_code 0 when it completed, else the HTTP/2
	 * error code (backend reset, GOAWAY, connection error, free). retry:
	 * the backend did not process the request. The stream pointer is not
	 * used again. */
	void (*on_close)(void *ctx, void *stream, uint32_t error_code, int retry);
	/* The request body queued on the stream is all out. May be NULL. */
	void (*on_writable)(void *ctx, void *stream);
	/* An interim response head (1xx; nghttp2 refuses 101 on HTTP/2):
	 * status and regular fields, borrowed for the call. May be NULL
	 * (skipped). */
	void (*on_interim)(void *ctx, void *stream, int status, const struct zw_h2_field *fields,
	                   size_t n);
};

/* A request head: pseudo-header values (scheme "http" when NULL;
 * authority may be NULL) and regular fields (names are lower-cased on the
 * way; connection-specific ones skipped, TE except "trailers"). */
struct zw_h2up_head {
	const char *method, *scheme, *authority, *path;
	const struct zw_h2_field *fields;
	size_t n_fields;
};

/* Creates a client connection with `limits` (copied; NULL: defaults) and
 * callbacks (copied) called with ctx. Queues the preface and our SETTINGS.
 * *out is owned by the caller (zw_h2up_free). Returns 0 or -1. */
int zw_h2up_new(const struct zw_h2up_limits *limits, const struct zw_h2up_callbacks *cb, void *ctx,
                struct zw_h2up **out);

/* Frees the connection; on_close runs for streams still attached (CANCEL,
 * retry 0). NULL is ignored. */
void zw_h2up_free(struct zw_h2up *c);

/* Feeds bytes read from the backend. Returns 0, or -1 when the connection
 * must end (protocol error: a GOAWAY is queued; write the output, close). */
int zw_h2up_feed(struct zw_h2up *c, const uint8_t *data, size_t len);

/* The frames waiting for the backend (borrowed until the next call on c)
 * in *data / *len; 0 bytes when nothing waits. Returns 0 or -1 (end). */
int zw_h2up_output(struct zw_h2up *c, const uint8_t **data, size_t *len);

/* Nonzero when a new stream may be opened now: no GOAWAY either way, no
 * fatal error, fewer streams than both limits. */
int zw_h2up_can_open(const struct zw_h2up *c);

/* Streams open (attached or not yet closed). */
size_t zw_h2up_streams(const struct zw_h2up *c);

/* Nonzero when nothing more can be exchanged (fatal error, or GOAWAY and no
 * stream left) once the output is written: close the socket. */
int zw_h2up_done(const struct zw_h2up *c);

/* Opens a stream for head h (borrowed; nghttp2 copies it) with the
 * caller's stream pointer `user`; end_stream: no body follows. Returns the
 * stream id, or -1 (cannot open now, or out of memory). */
int32_t zw_h2up_request(struct zw_h2up *c, const struct zw_h2up_head *h, int end_stream,
                        void *user);

/* Queues request body bytes (copied) on stream id; end: the body ends after
 * them. Returns 0, or -1 (stream gone, body ended already, or past
 * max_queue). */
int zw_h2up_data(struct zw_h2up *c, int32_t id, const uint8_t *data, size_t len, int end);

/* Ends the request body of stream id with a trailer section: fields
 * (copied, names lower-cased) go out as HEADERS with END_STREAM once the
 * queued body is out. The caller leaves out fields a trailer must not
 * carry (zw_http_trailer_dropped); n is at least 1. Returns 0, or -1
 * (stream gone, body ended already, too many fields, out of memory). */
int zw_h2up_trailers(struct zw_h2up *c, int32_t id, const struct zw_h2_field *fields, size_t n);

/* Request body bytes of stream id still waiting for the backend's window. */
size_t zw_h2up_queued(const struct zw_h2up *c, int32_t id);

/* Gives back n bytes of receive window on stream id (response bytes the
 * caller passed on). */
void zw_h2up_consume(struct zw_h2up *c, int32_t id, size_t n);

/* The caller is done with stream id: no more callbacks for it; a stream
 * still open is reset with CANCEL, and what it received but the caller did
 * not consume goes back to the connection window. */
void zw_h2up_detach(struct zw_h2up *c, int32_t id);

/* Graceful end: GOAWAY to the backend; open streams finish. */
void zw_h2up_shutdown(struct zw_h2up *c);

/* Parses a grpc-timeout value (1 to 8 digits and a unit H M S m u n) into
 * milliseconds, rounded up (at least 1 for a non-zero timeout). Returns 0,
 * or -1 when it is not one. */
int zw_h2up_grpc_timeout(const char *v, size_t len, uint64_t *ms);

/* The gRPC status a proxy-made HTTP status stands for, given whether the
 * request's deadline has passed: 4 DEADLINE_EXCEEDED for a timeout past the
 * deadline, 14 UNAVAILABLE for 502/503/504 and overflow, 12 UNIMPLEMENTED
 * for 404, 8 RESOURCE_EXHAUSTED for 429, 16 UNAUTHENTICATED for 401, 7
 * PERMISSION_DENIED for 403, 3 INVALID_ARGUMENT for other 4xx, else 2
 * UNKNOWN. */
int zw_h2up_grpc_status(int http_status, int past_deadline);

#endif
