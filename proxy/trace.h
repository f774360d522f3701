/* W3C Trace Context for zerowire-proxy: parsing and formatting traceparent
 * (https://www.w3.org/TR/trace-context/, version 00 and the forward-compatible
 * rules for higher versions), new trace and span ids, the ratio sampler, and
 * replacing traceparent in a request head built for the upstream. Pure
 * functions: no allocation, no I/O, callable from any worker. */
#ifndef ZW_TRACE_H
#define ZW_TRACE_H

#include "http1.h"

#include <stddef.h>
#include <stdint.h>

#define ZW_TRACEPARENT_LEN 55 /* "00-" 32 "-" 16 "-" 2 */
#define ZW_TRACESTATE_MAX  512

/* The trace context of one request. */
struct zw_trace_ctx {
	uint8_t trace_id[16];
	uint8_t span_id[8];                     /* the proxy's request span */
	uint8_t parent_id[8];                   /* the caller's span, when has_parent */
	int has_parent;                         /* a valid traceparent came with the request */
	int sampled;                            /* spans are recorded and exported */
	char tracestate[ZW_TRACESTATE_MAX + 1]; /* passed through as received */
};

/* Parses a traceparent value s[0..len) (borrowed). Version 00 must be exactly
 * 55 characters; a higher version may carry more after the flags (ignored);
 * version ff, all-zero ids, upper-case hex and bad separators are invalid.
 * On success fills trace_id, parent_id and *sampled (flag bit 0). Returns 0
 * or -1 (invalid: the caller starts a new trace). */
int zw_traceparent_parse(const char *s, size_t len, uint8_t trace_id[16], uint8_t parent_id[8],
                         int *sampled);

/* Writes "00-<trace>-<span>-<flags>" of t (its own span as the parent of
 * what follows) into out (at least ZW_TRACEPARENT_LEN + 1 bytes, NUL added). */
void zw_traceparent_format(const struct zw_trace_ctx *t, char *out);

/* Writes the lower-case hex of n bytes of id into out (2n + 1 bytes). */
void zw_trace_hex(const uint8_t *id, size_t n, char *out);

/* Fills id[0..n) with random bytes from the xorshift state *rng (never all
 * zero). */
void zw_trace_random(uint64_t *rng, uint8_t *id, size_t n);

/* Starts the context of a request: continues the caller's trace when
 * traceparent (may be NULL) is valid, honouring its sampled flag; otherwise
 * a new trace sampled with probability `ratio` (0..1). tracestate (may be
 * NULL) is kept when the parent is valid and it fits. A new span id always. */
void zw_trace_begin(struct zw_trace_ctx *t, const char *traceparent, size_t tp_len,
                    const char *tracestate, size_t ts_len, double ratio, uint64_t *rng);

/* In a request head built for the upstream (out, ending "\r\n\r\n"), drops
 * every traceparent and tracestate field and appends ours (t's trace, t's
 * span as the parent, t's tracestate). Returns 0, or -1 when out is not a
 * complete head or its limit or memory ran out (out is then not to be sent). */
int zw_trace_rewrite_head(struct zw_obuf *out, const struct zw_trace_ctx *t);

#endif
