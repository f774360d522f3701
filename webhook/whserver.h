/* zerowire-webhook HTTPS server (libmicrohttpd + GnuTLS).
 *
 * Endpoints:
 *   POST /mutate   body handed to the review callback; answers its reply
 *   GET  /healthz  200 "ok" while the process serves
 *   GET  /readyz   200 when the ready callback says so, else 503
 *   GET  /metrics  Prometheus text from the metrics set
 *
 * TLS 1.2 and 1.3 only. The certificate chain and key are read from PEM
 * files and re-read when either file changes on disk (polled every
 * reload_interval_ms): each TLS handshake is handed the certificate that is
 * current at that moment, so open connections are never dropped. A file
 * that changed but does not load (half written, mismatched) keeps the old
 * certificate and is retried at the next poll.
 *
 * Limits (defaults in brackets; docs/security.md "Webhook resource limits"):
 *   max_body [3 MiB]          one request body; larger -> 413
 *   body_budget [24 MiB]      request body bytes buffered across all
 *                             connections; a request that would pass it
 *                             is answered 503 + Retry-After at once
 *   review memory             reviews being answered at once may together
 *                             take ZW_WH_SERVER_REVIEW_FACTOR x max_body (one
 *                             largest review); others wait for room, at
 *                             most read_timeout_s, then 503
 *   max_connections [256]    open connections; past it the oldest idle,
 *                             else the oldest not yet requested, else the
 *                             oldest still reading connection is closed
 *                             (never one being answered)
 *   read_timeout_s [10]       from accept (TLS handshake, headers, body) or
 *                             from the end of headers on a kept-alive
 *                             connection, to a complete request; also for
 *                             writing the answer
 *   idle_timeout_s [60]       keep-alive between requests
 *   max_per_ip [0 = off]      connections per client address
 *   threads [2]               worker threads
 * One server per process (the GnuTLS certificate callback carries no user
 * pointer). */
#ifndef ZW_WH_SERVER_H
#define ZW_WH_SERVER_H

#include "whmetrics.h"

#include <microhttpd.h>
#include <stddef.h>

#define ZW_WH_SERVER_DEFAULT_MAX_BODY (3u * 1024 * 1024)
#define ZW_WH_SERVER_DEFAULT_MAX_CONN 256
#define ZW_WH_SERVER_DEFAULT_THREADS  2
#define ZW_WH_SERVER_DEFAULT_TIMEOUT  60
#define ZW_WH_SERVER_DEFAULT_READ_TO  10
#define ZW_WH_SERVER_DEFAULT_BUDGET   (24u * 1024 * 1024)
/* Peak memory of answering one review, in bytes per body byte: measured
 * 33x for the worst shape (many small JSON objects: jansson's tree of the
 * object, its copy that is rewritten, and the body), 3x for one long
 * string (docs/security.md). */
#define ZW_WH_SERVER_REVIEW_FACTOR  34
#define ZW_WH_SERVER_DEFAULT_RELOAD 2000
#define ZW_WH_SERVER_KIND_LEN       64
#define ZW_WH_SERVER_ERRLEN         256

/* What the review callback reports back for one POST /mutate. */
struct zw_review_reply {
	int status; /* HTTP status: 200, 400 (not an AdmissionReview), 500 */
	char *body; /* malloc'd; ownership passes to the server */
	size_t body_len;
	enum zw_review_outcome outcome;
	char kind[ZW_WH_SERVER_KIND_LEN]; /* metrics label of the reviewed kind, "" if unknown */
	unsigned rewrites;
	unsigned restores;
	unsigned warnings;
};

struct zw_wh_server_config {
	const char *listen;    /* "[host]:port", ":8443", "127.0.0.1:0" (0 = any port) */
	const char *cert_file; /* PEM chain, leaf first */
	const char *key_file;  /* PEM private key */
	/* Or, with both files NULL, the initial chain and key as PEM text (read
	 * during zw_wh_server_start only); later ones come from zw_wh_server_set_cert_pem. */
	const char *cert_pem;
	const char *key_pem;
	size_t max_body; /* 0 = ZW_WH_SERVER_DEFAULT_MAX_BODY */
	unsigned max_connections;
	unsigned threads;
	unsigned idle_timeout_s; /* 0 = ZW_WH_SERVER_DEFAULT_TIMEOUT */
	unsigned read_timeout_s; /* 0 = ZW_WH_SERVER_DEFAULT_READ_TO */
	size_t body_budget;      /* 0 = ZW_WH_SERVER_DEFAULT_BUDGET; at least max_body */
	unsigned max_per_ip;     /* 0 = no per-address limit */
	unsigned reload_interval_ms;
	struct zw_wh_metrics *metrics; /* borrowed, may be NULL */
	/* Answers one review: `body` (len bytes, NUL-terminated) is borrowed for
	 * the call; fills *reply. Returns 0, or a negative status after which
	 * the server answers 500. Called concurrently from worker threads. */
	int (*review)(void *arg, const char *body, size_t len, struct zw_review_reply *reply);
	/* Returns nonzero when /readyz should answer 200; NULL = always ready. */
	int (*ready)(void *arg);
	/* Called before each /metrics rendering (refresh gauges); may be NULL. */
	void (*before_metrics)(void *arg);
	void *arg;
};

struct zw_wh_server;

/* Loads the certificate and key, binds and starts serving on internal
 * threads. `cfg` is copied (strings must outlive the server). On success
 * *out is owned by the caller (stop with zw_wh_server_stop). On failure writes
 * a message into err. Returns 0, -EINVAL (bad listen address or
 * certificate), -EADDRINUSE / -errno (bind), -EBUSY (a server already runs)
 * or -ENOMEM. */
int zw_wh_server_start(const struct zw_wh_server_config *cfg, struct zw_wh_server **out,
                       char err[ZW_WH_SERVER_ERRLEN]);

/* Parses "host:port", ":port" or "[v6]:port" (borrowed) into *ss; *v6 says
 * which family. Returns 0 or -EINVAL. */
struct sockaddr_storage;
int zw_wh_server_parse_listen(const char *listen, struct sockaddr_storage *ss, int *v6);

/* Queues a response with a malloc'd body on an MHD connection (borrowed):
 * ownership of body passes to MHD (freed on failure too). Returns MHD's
 * verdict. */
enum MHD_Result zw_wh_server_send_owned(struct MHD_Connection *c, unsigned status, char *body,
                                        size_t len, const char *ctype);

/* Returns the TCP port the server listens on. */
int zw_wh_server_port(const struct zw_wh_server *s);

/* Checks the certificate files now instead of waiting for the next poll.
 * Returns 1 when a new certificate was installed, 0 when unchanged, or a
 * negative status when the changed files failed to load. */
int zw_wh_server_reload_now(struct zw_wh_server *s);

/* Installs a new certificate chain and key from PEM text (borrowed, read
 * during the call) for the next TLS handshakes; connections keep theirs.
 * Returns 0, or a negative status with a message in err when the PEM does not
 * parse or the key does not match (the current certificate stays). */
int zw_wh_server_set_cert_pem(struct zw_wh_server *s, const char *cert_pem, const char *key_pem,
                              char err[ZW_WH_SERVER_ERRLEN]);

/* Stops listening, closes connections, joins every thread and frees the
 * server. NULL-safe. */
void zw_wh_server_stop(struct zw_wh_server *s);

#endif
