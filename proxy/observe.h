/* zerowire-proxy request observability: the access log and trace spans
 * (docs/observability.md).
 *
 * Workers never block on either. Each worker has its own bounded
 * single-producer rings: one of formatted access-log lines (bytes) and one of
 * finished-request records for tracing. Two background threads drain them:
 * the writer writes lines to the log's file descriptor, the exporter turns
 * records into spans (the request's SERVER span and, when it was held, a
 * "cold-start hold" child span) and sends them in batches as OTLP/HTTP
 * protobuf (proxy/otlp_trace.proto) with libcurl. A full ring, a failed
 * export or a full queue drops, and the drops are counted
 * (zerowire_access_log_dropped_total, zerowire_spans_dropped_total). */
#ifndef ZW_OBSERVE_H
#define ZW_OBSERVE_H

#include "http1.h"
#include "trace.h"

#include <stddef.h>
#include <stdint.h>

enum zw_access_format {
	ZW_ACCESS_OFF = 0,
	ZW_ACCESS_LOGFMT,
	ZW_ACCESS_JSON,
};

#define ZW_ACCESS_PATH_MAX 256 /* path bytes logged; longer ones are cut, "..." */

struct zw_observe_config {
	int workers;                  /* producers (one ring pair each) */
	enum zw_access_format access; /* off, logfmt or json */
	int access_fd;                /* where lines go (borrowed, e.g. 1) */
	size_t access_ring_bytes;     /* per worker; 0 = 256 KiB */
	const char *otlp_endpoint;    /* e.g. http://127.0.0.1:4318/v1/traces; NULL = off */
	double sampler;               /* new traces sampled with this ratio (0..1) */
	size_t batch_size;            /* spans per export request (0 = 512) */
	size_t queue_limit;           /* records waiting, all workers (0 = 4096) */
	const char *service_name;     /* resource service.name (NULL = zerowire-proxy) */
};

/* What one finished request tells the observers (all borrowed for the call). */
struct zw_obs_request {
	const char *target; /* target key, "" when no target matched */
	const char *method; /* "GET", ... */
	const char *path;   /* request target as received (not NUL-terminated) */
	size_t path_len;
	int status;                       /* 499: the client went away */
	uint64_t bytes_in;                /* request head and body bytes */
	uint64_t bytes_out;               /* response bytes written to the client */
	uint64_t start_ns;                /* wall clock at the request head, ns since the epoch */
	uint64_t end_ns;                  /* wall clock at the end */
	uint64_t upstream_ms;             /* first upstream dial to the end; 0 = not forwarded */
	uint64_t held_ms;                 /* time held waiting for a ready endpoint */
	uint64_t held_start_ns;           /* wall clock when the hold began (held_ms > 0) */
	const char *upstream;             /* "ip:port" or "" */
	int cold;                         /* found no ready endpoint */
	const struct zw_trace_ctx *trace; /* NULL: no trace context */
};

struct zw_observe;

/* Parses "off", "logfmt" or "json" (borrowed) into *out. Returns 0 or -1. */
int zw_observe_parse_format(const char *s, enum zw_access_format *out);

/* Parses a sampler ratio "0".."1" (borrowed) into *out. Returns 0 or -1. */
int zw_observe_parse_ratio(const char *s, double *out);

/* Creates the observers and starts their threads (none when both are off).
 * cfg is copied (the endpoint and service name strings are borrowed and
 * must outlive it). On success *out is owned by the caller
 * (zw_observe_free). Returns 0, -EINVAL or -ENOMEM. */
int zw_observe_new(const struct zw_observe_config *cfg, struct zw_observe **out);

/* Stops the threads after a last drain (lines written, spans exported once
 * more) and frees o. Call after every worker stopped. NULL-safe. */
void zw_observe_free(struct zw_observe *o);

/* Nonzero when spans are exported (an OTLP endpoint is set). NULL-safe. */
int zw_observe_tracing(const struct zw_observe *o);

/* Nonzero when anything is recorded per request (an access log or span
 * export): with neither, a request needs no trace context, wall-clock
 * times or upstream name. NULL-safe. */
int zw_observe_active(const struct zw_observe *o);

/* The sampler ratio for new traces. */
double zw_observe_ratio(const struct zw_observe *o);

/* Records one finished request of worker `worker` (its own rings: only that
 * worker's thread may call this with that index). Never blocks; a full ring
 * drops the line or the record and counts it. NULL o: nothing. */
void zw_observe_request(struct zw_observe *o, int worker, const struct zw_obs_request *r);

/* Formats the access-log line of r in format fmt into buf[0..cap) (newline
 * included, NUL-terminated, cut to fit). Returns its length. */
size_t zw_observe_format_line(enum zw_access_format fmt, const struct zw_obs_request *r, char *buf,
                              size_t cap);

/* Appends the observers' counters (lines written and dropped, spans
 * exported and dropped, export failures) to out. NULL o renders zeros.
 * Returns 0 or -1 (out's limit or memory). */
int zw_observe_render(struct zw_observe *o, struct zw_obuf *out);

#endif
