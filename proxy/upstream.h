/* Upstream connections of one worker: dialing pod addresses with a connect
 * timeout, and a keep-alive pool per endpoint address.
 *
 * A struct zw_upstream is one TCP connection to an endpoint. It is either
 * active (owned by a request of forward.c, which reads and writes it) or idle
 * in the pool (read by the pool only to notice that the peer closed it, and
 * closed after the idle timeout). Everything runs on the worker's loop.
 *
 * Reading: once started, a connection stays registered for reading across
 * requests and while idle (stopping and restarting costs libuv two epoll_ctl
 * calls each time); the owner stops it only for backpressure. Bytes read on
 * an active connection go to the pool's read callback; on an idle one, any
 * byte or EOF closes the connection.
 * Memory: an upstream is freed in its close callback, never earlier; the
 * pool holds at most max_idle idle connections per address.
 *
 * TLS (docs/tls.md): a connection dialed with a struct zw_upstream_tls
 * carries a client session (tls.h) under it, invisible to the owner: the
 * connect callback runs once the handshake is done (the handshake counts
 * against the same attempt timeout; a failed handshake reports
 * ZW_UPSTREAM_ETLS, zw_upstream_tls_error says why), reads hand the owner
 * plaintext, zw_upstream_write encrypts, zw_upstream_queued counts the
 * ciphertext waiting for the socket. Pooled connections keep their
 * session; the pool matches them by address and server name. Cleartext
 * connections pay one pointer test per read and write. */
#ifndef ZW_UPSTREAM_H
#define ZW_UPSTREAM_H

#include "http1.h"
#include "tls.h"

#include <llhttp.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <uv.h>

#define ZW_UPOOL_BUCKETS 256
#define ZW_UPSTREAM_ETLS UV_EPROTO /* connect status: the TLS handshake failed */

/* TLS towards a backend: what zw_upstream_dial speaks over the socket. */
struct zw_upstream_tls {
	const struct zw_tls_client *client; /* trust (borrowed, outlives the pool) */
	const char *server_name;            /* SNI and verified name (copied) */
	enum zw_tls_alpn alpn;              /* the one protocol offered */
};

struct zw_upool;
struct zw_upstream;

/* Called once when a dial ends: status 0 (connected), UV_ETIMEDOUT (the
 * attempt timed out) or another negative UV_* code (refused...). */
typedef void (*zw_upstream_connect_cb)(struct zw_upstream *u, int status);

/* Called for each read on an active connection: nread > 0 bytes at data
 * (valid during the call only), or a negative UV_* code (UV_EOF...). */
typedef void (*zw_upstream_read_cb)(struct zw_upstream *u, ssize_t nread, const char *data);

struct zw_upstream {
	uv_tcp_t tcp;
	uv_timer_t timer; /* connect attempt, then (idle_timer) the idle timeout */
	uv_connect_t creq;
	struct zw_upool *pool;
	struct sockaddr_storage addr;
	socklen_t addr_len;
	void *owner; /* the request using it (active), else NULL */
	zw_upstream_connect_cb on_connect;
	struct zw_tls *tls;       /* the TLS session, or NULL (cleartext) */
	llhttp_t parser;          /* response parser, for the owner */
	struct zw_http_head head; /* response head, for the owner */
	int connecting;
	int reading;         /* registered for reading */
	int reused;          /* came from the pool */
	uint64_t idle_since; /* loop time it went back to the pool */
	int idle_timer;      /* timer runs the idle timeout (from the first release on) */
	int closing;
	int open_handles;
	struct zw_upstream *next, *prev; /* idle list of its address */
	struct zw_upool_list *list;      /* idle list it is on, or NULL */
};

struct zw_upool {
	uv_loop_t *loop;
	const struct zw_http_limits *limits;
	uint64_t idle_timeout_ms;
	size_t max_idle; /* per address; 0 disables pooling */
	char *rbuf;      /* read buffer shared by the loop's connections */
	size_t rbuf_size;
	zw_upstream_read_cb on_read;
	struct zw_upool_list *buckets[ZW_UPOOL_BUCKETS];
	size_t idle;  /* idle connections in the pool */
	size_t total; /* upstream connections alive (idle, active, closing) */
};

/* Initialises a pool on loop (borrowed). `limits` (borrowed) bounds the
 * response heads parsed on its connections. */
void zw_upool_init(struct zw_upool *p, uv_loop_t *loop, const struct zw_http_limits *limits,
                   uint64_t idle_timeout_ms, size_t max_idle);

/* Sets where reads land (buf, borrowed: consumed within each callback) and
 * who gets the bytes of active connections. Call before the first dial. */
void zw_upool_set_reader(struct zw_upool *p, char *buf, size_t size, zw_upstream_read_cb cb);

/* Starts reading u (idempotent). Returns 0 or a negative UV_* code. */
int zw_upstream_read_start(struct zw_upstream *u);

/* Stops reading u (backpressure; idempotent). */
void zw_upstream_read_stop(struct zw_upstream *u);

/* Closes every idle connection (active ones belong to their owners). The
 * pool struct must stay valid until zw_upool_total() reaches 0. */
void zw_upool_close_idle(struct zw_upool *p);

/* Connections still alive (for shutdown). */
size_t zw_upool_total(const struct zw_upool *p);

/* Takes an idle connection to addr out of the pool: returns it (active,
 * owner set, still reading, parser reset) or NULL. tls_name: NULL for a
 * cleartext connection, else the server name its TLS session must have.
 * Connections idle for longer than max_age_ms are closed instead of
 * returned (0: any age): a request whose body cannot be replayed should not
 * race a peer that is closing an old keep-alive connection. */
struct zw_upstream *zw_upool_get(struct zw_upool *p, const struct sockaddr *addr,
                                 socklen_t addr_len, const char *tls_name, void *owner,
                                 uint64_t max_age_ms);

/* Starts a connection to addr with an attempt timeout, speaking TLS as tls
 * says (borrowed for the call; NULL: cleartext). On success (return 0)
 * *out is the new upstream (owned by the pool's loop; close it with
 * zw_upstream_close) and cb runs later, exactly once, unless the upstream
 * is closed first. Returns a negative UV_* code when the dial could not
 * start (nothing to close). */
int zw_upstream_dial(struct zw_upool *p, const struct sockaddr *addr, socklen_t addr_len,
                     uint64_t timeout_ms, const struct zw_upstream_tls *tls, void *owner,
                     zw_upstream_connect_cb cb, struct zw_upstream **out);

/* Writes the n buffers (borrowed for the call) to u, encrypted when u
 * speaks TLS; same contract as zw_dp_write (datapath.h): returns 1 when a
 * write was queued (cb runs once with arg, after every byte of this call
 * left), 0 when all went out, or a negative UV_* code. */
int zw_upstream_write(struct zw_upstream *u, const uv_buf_t *bufs, unsigned n, uv_write_cb cb,
                      void *arg);

/* Bytes queued for u's socket (ciphertext with TLS). */
static inline size_t zw_upstream_queued(const struct zw_upstream *u)
{
	return uv_stream_get_write_queue_size((const uv_stream_t *)&u->tcp);
}

/* Why u's TLS handshake or session failed ("" when it did not; borrowed). */
const char *zw_upstream_tls_error(const struct zw_upstream *u);

/* Gives an active, reusable connection (response complete, nothing unread)
 * back to the pool, or closes it when the address already has max_idle idle
 * ones. The caller must not touch u afterwards. */
void zw_upstream_release(struct zw_upstream *u);

/* Closes u (active or idle; an open TLS session sends close_notify first);
 * it is freed in its close callbacks. Idempotent. The caller must not touch
 * u afterwards. */
void zw_upstream_close(struct zw_upstream *u);

#endif
