/* libFuzzer target: the proxy's request path without sockets (http1.c).
 *
 * The input is fed to a request parser in two reads (split at a point taken
 * from the first byte), as the proxy does: head with its limits, then the
 * body framing. When a head is accepted, the upstream head the proxy would
 * send is built and must itself parse, as a complete bodyless-or-framed
 * request, to the same method and target with no hop-by-hop fields left
 * (but Connection/Upgrade of an upgrade, and the re-framed chunked coding):
 * nothing the client sent can smuggle a second request or a framing header
 * past the rewrite. Seeds: proxy/fuzz/corpus/fuzz_request/. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "http1.h"

static const struct zw_http_limits limits = {
        .max_head_bytes = 8192,
        .max_headers = 64,
        .max_request_line = 2048,
};

/* Checks the rewritten head: it parses as exactly one head, keeps method and
 * target, and carries no hop-by-hop fields. Aborts on a violation. */
static void check_forwarded(const llhttp_t *orig_p, const struct zw_http_head *orig,
                            const char *out, size_t len, int chunked, int upgrade)
{
	struct zw_http_limits big = {
	        .max_head_bytes = 65536, .max_headers = 200, .max_request_line = 4096};
	struct zw_http_head h;
	llhttp_t p;
	size_t used = 0;
	zw_http_head_init(&h, &big);
	zw_http_parser_init(&p, HTTP_REQUEST, &h);
	int r = zw_http_head_execute(&p, &h, out, len, &used);
	if (r != ZW_HTTP_HEAD_DONE || used != len)
		abort();
	if (p.method != orig_p->method || h.url_len != orig->url_len ||
	    memcmp(h.buf + h.url_off, orig->buf + orig->url_off, h.url_len) != 0)
		abort();
	for (size_t i = 0; i < h.n_fields; i++) {
		const struct zw_http_field *f = &h.fields[i];
		const char *n = h.buf + f->name_off;
		int te = f->name_len == 17 && strncasecmp(n, "transfer-encoding", 17) == 0;
		int up = (f->name_len == 10 && strncasecmp(n, "connection", 10) == 0) ||
		         (f->name_len == 7 && strncasecmp(n, "upgrade", 7) == 0);
		if (zw_http_is_hop_by_hop(n, f->name_len) && !te && !(up && upgrade))
			abort();
		if (te && !chunked)
			abort();
	}
	if (!!(p.flags & F_CHUNKED) != !!chunked)
		abort();
	zw_http_head_free(&h);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	size_t split = data[0] % (size);
	const char *in = (const char *)data + 1;
	size_t len = size - 1;
	if (split > len)
		split = len;
	struct zw_http_head h;
	llhttp_t p;
	zw_http_head_init(&h, &limits);
	zw_http_parser_init(&p, HTTP_REQUEST, &h);
	size_t used = 0, off = 0;
	int r = zw_http_head_execute(&p, &h, in, split, &used);
	off = used;
	if (r == ZW_HTTP_MORE) {
		r = zw_http_head_execute(&p, &h, in + split, len - split, &used);
		off = split + used;
	}
	if (r == ZW_HTTP_HEAD_DONE) {
		struct zw_obuf out = {.limit = 1 << 20};
		struct zw_fwd_info info = {.client_ip = "192.0.2.1",
		                           .proto = "http",
		                           .upgrade = llhttp_get_upgrade(&p),
		                           .chunked = (p.flags & F_CHUNKED) != 0};
		if (zw_http_build_request(&out, &p, &h, &info) == 0)
			check_forwarded(&p, &h, out.data, out.len, info.chunked, info.upgrade);
		free(out.data);
		/* Body framing over the rest, in two reads. */
		size_t rest = len - off, half = rest / 2, bused = 0;
		int b = zw_http_body_execute(&p, in + off, half, &bused);
		if (bused > half)
			abort();
		if (b == ZW_BODY_MORE) {
			b = zw_http_body_execute(&p, in + off + half, rest - half, &bused);
			if (bused > rest - half)
				abort();
		}
	}
	zw_http_head_free(&h);
	return 0;
}
