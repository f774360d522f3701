/* libFuzzer target: W3C traceparent parsing and head rewriting (trace.c).
 *
 * The input is split at its first NUL: traceparent value, then tracestate.
 * Checks: a parsed traceparent of version 00 formats back to the same text
 * (with the proxy's span id in place of the parent, flags 00 or 01), ids are
 * never all zero, zw_trace_begin keeps tracestate only when it is short and
 * free of CR/LF, and rewriting a request head yields exactly one
 * traceparent field and a head that still ends in an empty line. Any
 * violation aborts. Seeds: proxy/fuzz/corpus/fuzz_traceparent/. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "trace.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *tp = (const char *)data;
	const char *nul = memchr(data, 0, size);
	size_t tp_len = nul ? (size_t)(nul - tp) : size;
	const char *ts = nul ? nul + 1 : NULL;
	size_t ts_len = nul ? size - tp_len - 1 : 0;
	uint8_t tid[16], pid[8];
	int sampled = 0;

	if (zw_traceparent_parse(tp, tp_len, tid, pid, &sampled) == 0) {
		static const uint8_t zero[16];
		if (!memcmp(tid, zero, 16) || !memcmp(pid, zero, 8) || (sampled & ~1))
			abort();
	}
	uint64_t rng = size;
	struct zw_trace_ctx t;
	zw_trace_begin(&t, tp, tp_len, ts, ts_len, 0.5, &rng);
	if (t.tracestate[0] && (strchr(t.tracestate, '\r') || strchr(t.tracestate, '\n') ||
	                        strlen(t.tracestate) > ZW_TRACESTATE_MAX))
		abort();
	char out[ZW_TRACEPARENT_LEN + 1];
	zw_traceparent_format(&t, out);
	uint8_t tid2[16], pid2[8];
	int s2 = 0;
	if (zw_traceparent_parse(out, strlen(out), tid2, pid2, &s2) != 0 ||
	    memcmp(tid2, t.trace_id, 16) || memcmp(pid2, t.span_id, 8) || s2 != t.sampled)
		abort();
	if (t.has_parent && (memcmp(t.trace_id, tid, 16) || memcmp(t.parent_id, pid, 8)))
		abort();

	/* A head with the input as a traceparent field (CR/LF removed). */
	struct zw_obuf head = {.limit = 1 << 20};
	char *clean = malloc(tp_len + 1);
	if (!clean)
		return 0;
	size_t n = 0;
	for (size_t i = 0; i < tp_len; i++)
		if (tp[i] != '\r' && tp[i] != '\n')
			clean[n++] = tp[i];
	clean[n] = '\0';
	if (zw_obuf_addf(&head,
	                 "GET / HTTP/1.1\r\nHost: a\r\ntraceparent: %s\r\nTraceState: x\r\n\r\n",
	                 clean) == 0 &&
	    zw_trace_rewrite_head(&head, &t) == 0) {
		size_t count = 0;
		for (size_t i = 0; i + 13 <= head.buf.len; i++)
			if ((i == 0 || head.buf.data[i - 1] == '\n') &&
			    strncasecmp(head.buf.data + i, "traceparent:", 12) == 0)
				count++;
		if (count != 1 || head.buf.len < 4 ||
		    memcmp(head.buf.data + head.buf.len - 4, "\r\n\r\n", 4))
			abort();
	}
	free(clean);
	zw_buf_free(&head.buf);
	return 0;
}
