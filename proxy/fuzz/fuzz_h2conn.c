/* libFuzzer target: arbitrary bytes after the HTTP/2 client preface and an
 * empty SETTINGS frame, fed to a server connection (proxy/h2conn.c) in
 * chunks whose sizes come from the input; the caller side answers every
 * request (an interim 103 for every fourth, head, some body, trailers),
 * consumes request bodies, reads request trailers, and resets every third
 * stream, so the send paths run too. Any crash, leak or
 * sanitizer report is a finding. Seeds: proxy/fuzz/corpus/fuzz_h2conn/. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "h2conn.h"

struct fz {
	struct zw_h2conn *h;
	int32_t ids[256];
	size_t n;
	int alive[256];
	size_t trailer_bytes;
};

static void *on_request(void *ctx, int32_t id, const struct zw_h2_request *rq)
{
	struct fz *f = ctx;
	(void)rq;
	if (f->n >= 256)
		return NULL;
	f->ids[f->n] = id;
	f->alive[f->n] = 1;
	return &f->alive[f->n++];
}

static int on_data(void *ctx, void *stream, const uint8_t *data, size_t len, int end)
{
	struct fz *f = ctx;
	(void)data;
	(void)end;
	size_t i = (size_t)((int *)stream - f->alive);
	zw_h2conn_consume(f->h, f->ids[i], len);
	return 0;
}

static void on_close(void *ctx, void *stream, uint32_t code)
{
	(void)ctx;
	(void)code;
	*(int *)stream = 0;
}

static void on_trailers(void *ctx, void *stream, const struct zw_h2_field *fl, size_t n)
{
	struct fz *f = ctx;
	size_t bytes = 0;
	(void)stream;
	for (size_t i = 0; i < n; i++)
		bytes += fl[i].name_len + fl[i].value_len;
	f->trailer_bytes += bytes;
}

static const struct zw_h2_callbacks cb = {on_request, on_data, on_close, NULL, on_trailers};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint8_t start[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
	                               "\x00\x00\x00\x04\x00\x00\x00\x00\x00";
	struct fz f;
	memset(&f, 0, sizeof(f));
	struct zw_h2_limits lim = {.max_stream_buffer = 512, .max_output = 65536};
	if (zw_h2conn_new(&lim, &cb, &f, &f.h) < 0)
		return 0;
	int rc = zw_h2conn_feed(f.h, start, sizeof(start) - 1);
	size_t off = 0;
	while (rc == 0 && off < size) {
		size_t chunk = 1 + data[off] % 97;
		if (chunk > size - off)
			chunk = size - off;
		rc = zw_h2conn_feed(f.h, data + off, chunk);
		off += chunk;
		for (size_t i = 0; i < f.n; i++) {
			if (!f.alive[i] || f.ids[i] < 0)
				continue;
			int32_t id = f.ids[i];
			f.ids[i] = -1; /* answered once */
			if (i % 3 == 2) {
				zw_h2conn_reset(f.h, id, 8);
				continue;
			}
			struct zw_h2_field fl[] = {{"Content-Type", "text/plain", 12, 10}};
			struct zw_h2_field hint[] = {{"Link", "</a>; rel=preload", 4, 17}};
			if (i % 4 == 1)
				zw_h2conn_interim(f.h, id, 103, hint, 1);
			if (zw_h2conn_respond(f.h, id, 200, fl, 1, 0) == 0) {
				zw_h2conn_data(f.h, id, (const uint8_t *)"hello", 5, 0);
				struct zw_h2_field tr[] = {{"grpc-status", "0", 11, 1}};
				zw_h2conn_trailers(f.h, id, tr, 1);
			}
		}
		const uint8_t *out;
		size_t len;
		if (zw_h2conn_output(f.h, &out, &len) < 0 || zw_h2conn_done(f.h))
			break;
	}
	zw_h2conn_free(f.h);
	return 0;
}
