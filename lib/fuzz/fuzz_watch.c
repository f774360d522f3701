/* libFuzzer target: the watch state machine and stream parser (lib/watch.c)
 * must never crash, leak or loop on any list body or watch stream.
 *
 * Input: a list response body, a NUL byte, then a watch stream. The stream
 * is fed in chunks whose sizes cycle through 1..13 bytes so that events are
 * cut at many places; the machine then gets a normal end of the stream and is
 * asked for its next request. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "watch.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void on_event(void *ud, enum zw_watch_type type, json_t *obj)
{
	size_t *n = ud;

	/* every delivered object is complete enough to look at */
	if (type != ZW_WATCH_SYNCED && !json_is_object(obj))
		__builtin_trap();
	(*n)++;
}

static const char discovery[] = "{\"resources\":[{\"name\":\"things\"}]}";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct zw_watch_spec spec = {0};
	struct zw_watch_step step;
	const uint8_t *nul = memchr(data, 0, size);
	size_t list_len = nul ? (size_t)(nul - data) : size, events = 0;
	const char *stream = nul ? (const char *)nul + 1 : "";
	size_t stream_len = nul ? size - list_len - 1 : 0;
	struct zw_watch *w;

	spec.group = "example.io";
	spec.version = "v1";
	spec.resource = "things";
	spec.max_event = 4096;
	spec.on_event = on_event;
	spec.ud = &events;
	if (zw_watch_new(&spec, &w) != 0)
		return 0;
	zw_watch_next(w, &step);
	zw_watch_data(w, discovery, sizeof(discovery) - 1);
	zw_watch_done(w, 200, 0, NULL);
	zw_watch_next(w, &step);
	if (zw_watch_data(w, (const char *)data, list_len) == 0)
		zw_watch_done(w, 200, 0, NULL);
	else
		zw_watch_done(w, 0, 1, NULL);
	for (int round = 0; round < 2; round++) {
		size_t off = 0, chunk = 1;
		int aborted = 0;

		zw_watch_next(w, &step);
		while (off < stream_len && !aborted) {
			size_t n = stream_len - off < chunk ? stream_len - off : chunk;

			aborted = zw_watch_data(w, stream + off, n) != 0;
			off += n;
			chunk = chunk % 13 + 1;
		}
		zw_watch_done(w, aborted ? 0 : 200, aborted, NULL);
	}
	zw_watch_next(w, &step);
	zw_watch_free(w);
	return 0;
}
