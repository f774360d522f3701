/* Compact JSON serialisation of jansson values, several times faster than
 * json_dumps on string-heavy documents (AdmissionReview patches carry whole
 * JSON documents as strings): runs of characters that need no escaping are
 * copied in one go instead of one character at a time.
 *
 * Output matches json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY) for the
 * documents zerowire writes: object members in insertion order, strings as
 * UTF-8 with only '"', '\\' and control characters escaped, reals with 17
 * significant digits. */
#ifndef ZW_JSONOUT_H
#define ZW_JSONOUT_H

#include "buf.h"

#include <jansson.h>
#include <stddef.h>

#define ZW_JSONOUT_MAX_DEPTH 2048

/* Serialises v (borrowed) into a new NUL-terminated string owned by the
 * caller; *len_out (may be NULL) gets its length. Returns NULL when out of
 * memory or nested deeper than ZW_JSONOUT_MAX_DEPTH. */
char *zw_json_dump(const json_t *v, size_t *len_out);

/* Appends the serialisation of v (borrowed) to b (no limit besides
 * memory), as zw_json_dump writes it. Returns 0, or -1 when out of memory,
 * v is NULL or nested deeper than ZW_JSONOUT_MAX_DEPTH (b then holds a
 * partial text). */
int zw_json_append(struct zw_buf *b, const json_t *v);

/* Appends the JSON string literal for s[0..n) (quotes included) to b (no
 * limit besides memory). Returns 0, or -1 when out of memory. */
int zw_json_append_string(struct zw_buf *b, const char *s, size_t n);

#endif
