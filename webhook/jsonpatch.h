/* RFC 6902 JSON Patch: a minimal diff between two JSON documents, and an
 * applier (used by the tests to check patches; also usable by tools).
 *
 * Paths are RFC 6901 JSON Pointers ("~" -> "~0", "/" -> "~1"). The diff
 * emits only add / remove / replace: objects are compared key by key, arrays
 * element by element (trailing elements added at "/-"-free explicit indices
 * or removed from the end first), anything else replaced whole. Applying
 * the diff of (a, b) to a gives a document json_equal to b. */
#ifndef ZW_JSONPATCH_H
#define ZW_JSONPATCH_H

#include <jansson.h>
#include <stddef.h>

/* Deepest nesting walked key by key; below it a differing subtree is
 * replaced whole (still a valid, if larger, patch). */
#define ZW_JSONPATCH_MAX_DEPTH 128
/* Longest pointer the diff emits; a value whose children's pointers would be
 * longer is replaced whole. */
#define ZW_JSONPATCH_MAX_PATH 4096

/* Appends to `patch` (a JSON array, borrowed) the operations turning `from`
 * into `to` (both borrowed), with paths below `prefix` ("" for the root).
 * Returns 0, or -1 on ENOMEM or a prefix longer than ZW_JSONPATCH_MAX_PATH. */
int zw_jsonpatch_diff(const json_t *from, const json_t *to, const char *prefix, json_t *patch);

/* Appends the RFC 6901 escaped form of reference token `token` to the
 * pointer `base` ("" for the root) and returns a new malloc'd string owned
 * by the caller, or NULL on ENOMEM. */
char *zw_jsonpointer_append(const char *base, const char *token);

/* Resolves RFC 6901 pointer `ptr` in `doc` (borrowed). Returns the borrowed
 * value, or NULL when it does not exist or the pointer is malformed. */
json_t *zw_jsonpointer_get(const json_t *doc, const char *ptr);

/* Applies `patch` (borrowed array of operations: add, remove, replace,
 * move, copy, test) to *doc (owned by the caller; may be replaced by a new
 * reference when the root is replaced). Returns 0, or -1 when an operation
 * is malformed, does not apply or a test fails (*doc is then partly
 * patched; apply to a copy when that matters); err (errlen bytes, may be
 * NULL) says which operation. */
int zw_jsonpatch_apply(json_t **doc, const json_t *patch, char *err, size_t errlen);

#endif
