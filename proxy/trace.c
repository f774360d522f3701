/* W3C Trace Context (see trace.h). */
#include "trace.h"

#include <string.h>
#include <strings.h>

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1; /* upper case is invalid in traceparent */
}

/* Parses 2n lower-case hex digits into out. Returns 0 or -1. */
static int unhex(const char *s, size_t n, uint8_t *out)
{
	for (size_t i = 0; i < n; i++) {
		int hi = hexval(s[2 * i]), lo = hexval(s[2 * i + 1]);
		if (hi < 0 || lo < 0)
			return -1;
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	return 0;
}

static int all_zero(const uint8_t *b, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (b[i])
			return 0;
	return 1;
}

int zw_traceparent_parse(const char *s, size_t len, uint8_t trace_id[16], uint8_t parent_id[8],
                         int *sampled)
{
	uint8_t ver, flags;
	if (!s || len < ZW_TRACEPARENT_LEN)
		return -1;
	if (unhex(s, 1, &ver) < 0 || ver == 0xff || s[2] != '-' || s[35] != '-' || s[52] != '-')
		return -1;
	if (ver == 0 && len != ZW_TRACEPARENT_LEN)
		return -1;
	if (ver > 0 && len > ZW_TRACEPARENT_LEN && s[ZW_TRACEPARENT_LEN] != '-')
		return -1;
	if (unhex(s + 3, 16, trace_id) < 0 || unhex(s + 36, 8, parent_id) < 0 ||
	    unhex(s + 53, 1, &flags) < 0)
		return -1;
	if (all_zero(trace_id, 16) || all_zero(parent_id, 8))
		return -1;
	*sampled = flags & 1;
	return 0;
}

void zw_trace_hex(const uint8_t *id, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[id[i] >> 4];
		out[2 * i + 1] = digits[id[i] & 15];
	}
	out[2 * n] = '\0';
}

void zw_traceparent_format(const struct zw_trace_ctx *t, char *out)
{
	memcpy(out, "00-", 3);
	zw_trace_hex(t->trace_id, 16, out + 3);
	out[35] = '-';
	zw_trace_hex(t->span_id, 8, out + 36);
	out[52] = '-';
	out[53] = '0';
	out[54] = t->sampled ? '1' : '0';
	out[55] = '\0';
}

static uint64_t next(uint64_t *s)
{
	uint64_t x = *s ? *s : 0x9e3779b97f4a7c15ull;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	*s = x;
	return x * 0x2545f4914f6cdd1dull;
}

void zw_trace_random(uint64_t *rng, uint8_t *id, size_t n)
{
	do {
		for (size_t i = 0; i < n; i += 8) {
			uint64_t v = next(rng);
			for (size_t k = 0; k < 8 && i + k < n; k++)
				id[i + k] = (uint8_t)(v >> (8 * k));
		}
	} while (all_zero(id, n));
}

void zw_trace_begin(struct zw_trace_ctx *t, const char *traceparent, size_t tp_len,
                    const char *tracestate, size_t ts_len, double ratio, uint64_t *rng)
{
	memset(t, 0, sizeof(*t));
	if (traceparent && zw_traceparent_parse(traceparent, tp_len, t->trace_id, t->parent_id,
	                                        &t->sampled) == 0) {
		t->has_parent = 1;
		if (tracestate && ts_len <= ZW_TRACESTATE_MAX &&
		    !memchr(tracestate, '\r', ts_len) && !memchr(tracestate, '\n', ts_len)) {
			memcpy(t->tracestate, tracestate, ts_len);
			t->tracestate[ts_len] = '\0';
		}
	} else {
		zw_trace_random(rng, t->trace_id, 16);
		/* The top 53 bits of a draw, uniform in [0, 1). */
		t->sampled = ratio >= 1 || (double)(next(rng) >> 11) / 9007199254740992.0 < ratio;
	}
	zw_trace_random(rng, t->span_id, 8);
}

/* Nonzero when the header line at p (length n, no CRLF) is named `name`. */
static int line_is(const char *p, size_t n, const char *name)
{
	size_t l = strlen(name);
	return n > l && p[l] == ':' && strncasecmp(p, name, l) == 0;
}

int zw_trace_rewrite_head(struct zw_obuf *out, const struct zw_trace_ctx *t)
{
	char tp[ZW_TRACEPARENT_LEN + 1];
	if (out->buf.len < 4 || memcmp(out->buf.data + out->buf.len - 4, "\r\n\r\n", 4) != 0)
		return -1;
	/* Compact in place: keep the request line and every other field. */
	char *d = out->buf.data;
	size_t end = out->buf.len - 2, r = 0, w = 0;
	while (r < end) {
		char *eol = memmem(d + r, end - r, "\r\n", 2);
		size_t n = eol ? (size_t)(eol - (d + r)) : end - r;
		int drop = r > 0 &&
		           (line_is(d + r, n, "traceparent") || line_is(d + r, n, "tracestate"));
		if (!drop) {
			memmove(d + w, d + r, n + 2);
			w += n + 2;
		}
		r += n + 2;
	}
	out->buf.len = w;
	zw_traceparent_format(t, tp);
	int rc = zw_obuf_addf(out, "traceparent: %s\r\n", tp);
	if (rc == 0 && t->tracestate[0])
		rc = zw_obuf_addf(out, "tracestate: %s\r\n", t->tracestate);
	if (rc == 0)
		rc = zw_obuf_add(out, "\r\n", 2);
	return rc;
}
