/* libFuzzer property target: the HTTP/2 to HTTP/1.1 request translation of
 * proxy/h2client.c (zw_h2_request_text), checked by parsing its output as
 * the data path does (http1.c).
 *
 * Input: a flags byte (bit 0: the request ends with its head; bit 1: an
 * :authority is given), then NUL-separated parts: :method, :path,
 * :authority, then field name and value pairs. Properties, aborting on a
 * violation:
 *   - a translated head that parses is one head and nothing more (the
 *     parser used every byte: no second message was smuggled in);
 *   - it has exactly the fields the translation put there: Host from
 *     :authority, every field but Host (when :authority is given) and
 *     Cookie, one joined Cookie, and Transfer-Encoding when the body has no
 *     length or announces trailers (whose Content-Length is then dropped),
 *     for an origin-form target, which http1.c does not rewrite;
 *   - the method and target are the ones given.
 * Seeds: proxy/fuzz/corpus/fuzz_h2client/. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "datapath.h"

#define MAX_PARTS 64

static const struct zw_http_limits limits = {
        .max_head_bytes = 16384,
        .max_headers = 64,
        .max_request_line = 4096,
};

static int is(const struct zw_h2_field *f, const char *name)
{
	return f->name_len == strlen(name) && memcmp(f->name, name, f->name_len) == 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	int flags = data[0];
	const char *parts[MAX_PARTS];
	size_t lens[MAX_PARTS], n = 0;
	const char *p = (const char *)data + 1, *end = (const char *)data + size;
	while (p <= end && n < MAX_PARTS) {
		const char *z = memchr(p, 0, (size_t)(end - p));
		if (!z)
			z = end;
		parts[n] = p;
		lens[n++] = (size_t)(z - p);
		p = z + 1;
	}
	if (n < 3)
		return 0;
	struct zw_h2_field fields[MAX_PARTS / 2];
	size_t nf = 0;
	for (size_t i = 3; i + 1 < n; i += 2)
		fields[nf++] = (struct zw_h2_field){.name = parts[i],
		                                    .name_len = lens[i],
		                                    .value = parts[i + 1],
		                                    .value_len = lens[i + 1]};
	struct zw_h2_request req = {
	        .method = parts[0],
	        .method_len = lens[0],
	        .path = parts[1],
	        .path_len = lens[1],
	        .authority = (flags & 2) ? parts[2] : NULL,
	        .authority_len = (flags & 2) ? lens[2] : 0,
	        .fields = fields,
	        .n_fields = nf,
	        .end_stream = flags & 1,
	};
	struct zw_obuf t = {.limit = 1 << 16};
	int chunked = 0;
	if (zw_h2_request_text(&req, &t, &chunked) != 0) {
		zw_buf_free(&t.buf);
		return 0;
	}
	struct zw_http_head h;
	llhttp_t parser;
	zw_http_head_init(&h, &limits);
	zw_http_parser_init(&parser, HTTP_REQUEST, &h);
	size_t used = 0;
	int r = zw_http_head_execute(&parser, &h, t.buf.data, t.buf.len, &used);
	if (r == ZW_HTTP_HEAD_DONE) {
		if (used != t.buf.len)
			abort(); /* a second message after the head */
		if (strlen(llhttp_method_name(parser.method)) != lens[0] ||
		    memcmp(llhttp_method_name(parser.method), parts[0], lens[0]) != 0)
			abort();
		if (lens[1] > 0 && parts[1][0] == '/') {
			size_t want = req.authority ? 1 : 0, cookies = 0;
			int has_len = 0, announced = 0;
			for (size_t i = 0; i < nf; i++) {
				has_len |= is(&fields[i], "content-length");
				announced |= is(&fields[i], "trailer");
			}
			/* Trailers announced with a length: the body goes chunked,
			 * the length dropped. */
			int drop_len = has_len && announced && !req.end_stream;
			for (size_t i = 0; i < nf; i++) {
				if (is(&fields[i], "cookie"))
					cookies = 1;
				else if (!(req.authority && is(&fields[i], "host")) &&
				         !(drop_len && is(&fields[i], "content-length")))
					want++;
			}
			want += cookies + (chunked ? 1 : 0);
			if (h.n_fields != want)
				abort();
			if (h.url_len != lens[1] ||
			    memcmp(h.buf + h.url_off, parts[1], lens[1]) != 0)
				abort();
		}
	}
	zw_http_head_free(&h);
	zw_buf_free(&t.buf);
	return 0;
}
