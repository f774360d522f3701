/* libFuzzer target: arbitrary bytes from a backend, after its SETTINGS
 * frame, fed to a client connection (proxy/h2upstream.c) in chunks whose
 * sizes come from the input, with four streams open (two with a request
 * body that keeps coming, ending with trailers once enough streams were
 * opened); the caller side reads interim heads, consumes what arrives, detaches
 * every third stream that answers, and opens a new stream whenever one
 * ends and the connection allows it, so the send, window and close paths
 * run too. The first bytes also go through the grpc-timeout parser. Any
 * crash, leak or sanitizer report is a finding. Seeds:
 * proxy/fuzz/corpus/fuzz_h2upstream/ (make_h2upstream_corpus.py). */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "h2upstream.h"

#define SLOTS 64

struct fz {
	struct zw_h2up *c;
	int32_t ids[SLOTS];
	int alive[SLOTS];
	int heads;
	size_t n;
	size_t interims;
};

static int slot(struct fz *f, void *stream)
{
	return (int)((int *)stream - f->alive);
}

static void open_one(struct fz *f)
{
	if (f->n >= SLOTS || !zw_h2up_can_open(f->c))
		return;
	static const struct zw_h2_field fl[] = {{"content-type", "application/grpc", 12, 16},
	                                        {"te", "trailers", 2, 8}};
	struct zw_h2up_head h = {.method = f->n % 2 ? "POST" : "GET",
	                         .authority = "a.test",
	                         .path = "/s/m",
	                         .fields = fl,
	                         .n_fields = 2};
	size_t i = f->n;
	f->alive[i] = 1;
	f->ids[i] = zw_h2up_request(f->c, &h, i % 2 == 0, &f->alive[i]);
	if (f->ids[i] < 0) {
		f->alive[i] = 0;
		return;
	}
	f->n++;
	if (i % 2)
		zw_h2up_data(f->c, f->ids[i], (const uint8_t *)"\0\0\0\0\3abc", 8, 0);
}

static int on_head(void *ctx, void *stream, int status, const struct zw_h2_field *fl, size_t n,
                   int end)
{
	struct fz *f = ctx;
	(void)status;
	(void)fl;
	(void)n;
	(void)end;
	if (++f->heads % 3 == 0) {
		int i = slot(f, stream);
		f->alive[i] = 0;
		zw_h2up_detach(f->c, f->ids[i]);
	}
	return 0;
}

static int on_data(void *ctx, void *stream, const uint8_t *data, size_t len, int end)
{
	struct fz *f = ctx;
	(void)data;
	(void)end;
	zw_h2up_consume(f->c, f->ids[slot(f, stream)], len);
	return 0;
}

static void on_trailers(void *ctx, void *stream, const struct zw_h2_field *fl, size_t n)
{
	(void)ctx;
	(void)stream;
	(void)fl;
	(void)n;
}

static void on_close(void *ctx, void *stream, uint32_t code, int retry)
{
	struct fz *f = ctx;
	(void)code;
	(void)retry;
	f->alive[slot(f, stream)] = 0;
}

static void on_writable(void *ctx, void *stream)
{
	struct fz *f = ctx;
	int i = slot(f, stream);
	if (f->n > 8 && i % 4 == 1) {
		static const struct zw_h2_field tr[] = {{"X-Sum", "1", 5, 1}};
		zw_h2up_trailers(f->c, f->ids[i], tr, 1);
		return;
	}
	zw_h2up_data(f->c, f->ids[i], (const uint8_t *)"\0\0\0\0\1z", 6, f->n > 8);
}

static void on_interim(void *ctx, void *stream, int status, const struct zw_h2_field *fl, size_t n)
{
	struct fz *f = ctx;
	(void)stream;
	(void)fl;
	f->interims += (size_t)status / 100 + n;
}

static const struct zw_h2up_callbacks cb = {on_head,  on_data,     on_trailers,
                                            on_close, on_writable, on_interim};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint8_t settings[] = "\x00\x00\x00\x04\x00\x00\x00\x00\x00";
	struct fz f;
	uint64_t ms;
	memset(&f, 0, sizeof(f));
	zw_h2up_grpc_timeout((const char *)data, size < 10 ? size : 10, &ms);
	struct zw_h2up_limits lim = {.max_streams = 8, .max_queue = 4096, .max_output = 65536};
	if (zw_h2up_new(&lim, &cb, &f, &f.c) < 0)
		return 0;
	for (int i = 0; i < 4; i++)
		open_one(&f);
	const uint8_t *out;
	size_t len;
	int rc = zw_h2up_output(f.c, &out, &len);
	if (rc == 0)
		rc = zw_h2up_feed(f.c, settings, sizeof(settings) - 1);
	size_t off = 0;
	while (rc == 0 && off < size) {
		size_t chunk = 1 + data[off] % 97;
		if (chunk > size - off)
			chunk = size - off;
		rc = zw_h2up_feed(f.c, data + off, chunk);
		off += chunk;
		if (zw_h2up_output(f.c, &out, &len) < 0 || zw_h2up_done(f.c))
			break;
		open_one(&f);
	}
	zw_h2up_free(f.c);
	return 0;
}
