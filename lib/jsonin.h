/* JSON text to jansson values in one pass over the bytes, several times
 * cheaper than json_loadb's character-at-a-time lexer (an admission review
 * is parsed for every create or update of a route).
 *
 * The fast parser takes only what it can build exactly as json_loadb(text,
 * len, 0) would: an object or array at the top, integers that fit in 18
 * digits, strings without \u0000, nesting up to ZW_JSONIN_MAX_DEPTH. For
 * anything else (reals, malformed text, out of memory) it gives up and
 * zw_json_load hands the same bytes to json_loadb, so the result, and the
 * error text of a rejected document, are always jansson's. */
#ifndef ZW_JSONIN_H
#define ZW_JSONIN_H

#include <jansson.h>
#include <stddef.h>

#define ZW_JSONIN_MAX_DEPTH 512

/* Parses text[0..len) (borrowed). Returns a new value equal to what
 * json_loadb(text, len, 0, NULL) returns, members in the same order, or
 * NULL when the text is not one the fast parser takes (see above). */
json_t *zw_json_parse(const char *text, size_t len);

/* zw_json_parse, falling back to json_loadb(text, len, 0, err) where it
 * gives up. Returns a new value, or NULL with err (may be NULL) filled in
 * by jansson. */
json_t *zw_json_load(const char *text, size_t len, json_error_t *err);

#endif
