/* zerowire minimal gRPC server: HTTP/2 cleartext with prior knowledge (h2c)
 * via nghttp2 on a libuv loop. Unary and server-streaming methods only: the
 * request is exactly one length-prefixed message followed by END_STREAM.
 *
 * Protocol handling (docs/keda-scaler.md):
 *   - request content-type must start with "application/grpc" (else HTTP 415);
 *   - unknown :path -> trailers-only response grpc-status 12 UNIMPLEMENTED;
 *   - compressed flag set, truncated prefix, more or fewer than one request
 *     message -> 13 INTERNAL; a message larger than max_message, or more
 *     than 4 x max_message of requests buffered on one connection ->
 *     8 RESOURCE_EXHAUSTED;
 *   - a client RST_STREAM or a lost connection cancels the call: the
 *     handler's on_cancel runs and the call pointer becomes invalid;
 *   - responses: :status 200, content-type application/grpc, messages as
 *     DATA, then trailers grpc-status / grpc-message (percent-encoded).
 *
 * Threading: everything runs on the server's loop; every function must be
 * called on that loop's thread. Callbacks are never invoked re-entrantly
 * from zw_grpc_send / zw_grpc_finish. */
#ifndef ZW_GRPC_H
#define ZW_GRPC_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

enum zw_grpc_status {
	ZW_GRPC_OK = 0,
	ZW_GRPC_CANCELLED = 1,
	ZW_GRPC_INVALID_ARGUMENT = 3,
	ZW_GRPC_NOT_FOUND = 5,
	ZW_GRPC_RESOURCE_EXHAUSTED = 8,
	ZW_GRPC_UNIMPLEMENTED = 12,
	ZW_GRPC_INTERNAL = 13,
	ZW_GRPC_UNAVAILABLE = 14,
};

struct zw_grpc_server;
struct zw_grpc_call;

struct zw_grpc_method {
	const char *path; /* "/package.Service/Method" */
	/* Runs when the request message is complete; msg is borrowed for the
	 * call. Answer now or later with zw_grpc_send / zw_grpc_finish. A
	 * negative return finishes the call with INTERNAL. */
	int (*on_call)(void *arg, struct zw_grpc_call *call, const uint8_t *msg, size_t len);
};

struct zw_grpc_handlers {
	const struct zw_grpc_method *methods;
	size_t n_methods;
	/* Runs when a call ends before the handler finished it (client cancel,
	 * connection lost, server stop). The call is invalid afterwards. May
	 * be NULL. */
	void (*on_cancel)(void *arg, struct zw_grpc_call *call);
	void *arg;
};

struct zw_grpc_config {
	size_t max_message;       /* default 4 MiB, both directions */
	size_t max_send_queue;    /* queued response bytes per call, default 1 MiB */
	uint32_t max_streams;     /* SETTINGS_MAX_CONCURRENT_STREAMS, default 1000 */
	size_t max_connections;   /* default 1024; more are closed at accept */
	uint64_t idle_timeout_ms; /* connection without streams, default 300000 */
};

/* Counters for /metrics. */
struct zw_grpc_stats {
	uint64_t connections; /* open now */
	uint64_t calls;       /* open now */
	uint64_t calls_total; /* started */
	uint64_t unimplemented_total;
	uint64_t malformed_total;
	uint64_t cancelled_total;
	uint64_t rejected_connections_total;
};

/* Fills *c with the defaults. */
void zw_grpc_config_default(struct zw_grpc_config *c);

/* Listens on host:port (port 0: ephemeral) on `loop`. `cfg` and `h` are
 * copied; h->methods (array and strings) and h->arg are borrowed and must
 * outlive the server. On success *out is the server (zw_grpc_server_stop).
 * Returns 0, a negative UV_E* code or -ENOMEM. */
int zw_grpc_server_start(uv_loop_t *loop, const char *host, int port,
                         const struct zw_grpc_config *cfg, const struct zw_grpc_handlers *h,
                         struct zw_grpc_server **out);

/* Returns the bound port. */
int zw_grpc_server_port(const struct zw_grpc_server *s);

/* Copies the counters into *out. */
void zw_grpc_server_stats(const struct zw_grpc_server *s, struct zw_grpc_stats *out);

/* Stops accepting and closes every connection; open calls get on_cancel.
 * The server is freed once every handle is closed, then done(arg) runs on
 * the loop (done may be NULL). NULL-safe. */
void zw_grpc_server_stop(struct zw_grpc_server *s, void (*done)(void *arg), void *arg);

/* Queues one response message (copied, framed here). Returns 0, -EINVAL when
 * the call is already finished, -EMSGSIZE above max_message, or -ENOBUFS when
 * the call's send queue is full (a client not reading). */
int zw_grpc_send(struct zw_grpc_call *c, const uint8_t *msg, size_t len);

/* Ends the call with `status` and optional `message` (copied). The handler
 * must not use the call afterwards; on_cancel is not called for it.
 * Returns 0 or -EINVAL when already finished. */
int zw_grpc_finish(struct zw_grpc_call *c, int status, const char *message);

/* Keepalive for a stream that has nothing to send: queues an HTTP/2 PING
 * on the call's connection unless one was sent there less than
 * min_interval_ms ago (so many streams on one connection share one PING).
 * A peer that is gone makes the write fail and the connection close, which
 * cancels its calls (on_cancel). Returns 0, -EINVAL when the call is
 * finished or its connection closing, or -EIO. */
int zw_grpc_ping(struct zw_grpc_call *call, uint64_t min_interval_ms);

/* Per-call handler data (NULL until set). */
void zw_grpc_call_set_data(struct zw_grpc_call *c, void *data);
void *zw_grpc_call_data(const struct zw_grpc_call *c);

/* The call's :path (owned by the call). */
const char *zw_grpc_call_path(const struct zw_grpc_call *c);

#endif
