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

#include "buf.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

/* Deepest nesting walked key by key; below it a differing subtree is
 * replaced whole (still a valid, if larger, patch). */
#define ZW_JSONPATCH_MAX_DEPTH 128
/* Longest pointer the diff emits; a value whose children's pointers would be
 * longer is replaced whole. */
#define ZW_JSONPATCH_MAX_PATH 4096

/* Appends to `patch` (a JSON array, borrowed) the operations turning `from`
 * into `to` (both borrowed), with paths below `prefix` ("" for the root).
 * Operation values are shared with `to`, not copied: leave `to` unchanged
 * while the patch is in use.
 * Returns 0, or -1 on ENOMEM or a prefix longer than ZW_JSONPATCH_MAX_PATH. */
int zw_jsonpatch_diff(const json_t *from, const json_t *to, const char *prefix, json_t *patch);

/* A patch written as text as it is made (no operation objects): `ops`
 * holds "[" and the operations, comma-separated, exactly as zw_json_dump
 * would write the array zw_jsonpatch_diff builds; `n` counts them. A zeroed
 * struct is an empty patch. */
struct zw_jsonpatch_text {
	struct zw_buf ops;
	size_t n;
};

/* zw_jsonpatch_diff appending to `text` instead. On failure text is as it
 * was. Returns 0 or -1 as zw_jsonpatch_diff. */
int zw_jsonpatch_diff_text(const json_t *from, const json_t *to, const char *prefix,
                           struct zw_jsonpatch_text *text);

/* Drops what text gained after it held n operations in len bytes (a
 * mark taken from text->n and text->ops.len). */
void zw_jsonpatch_text_truncate(struct zw_jsonpatch_text *text, size_t len, size_t n);

/* Closes the array and hands its text over (the caller frees it; "[]" for
 * no operation), its length in *len_out (may be NULL); text is left empty.
 * Returns NULL on ENOMEM (text then unusable: free it with zw_buf_free on
 * text->ops). */
char *zw_jsonpatch_text_take(struct zw_jsonpatch_text *text, size_t *len_out);

/* A change log for a document modified in place: each object whose own
 * members are about to change (set or delete, with values that are new or
 * never modified afterwards) is logged once with its pointer and a shallow
 * copy of its members; the patch is then the diff of each logged object
 * against its copy, which touches nothing else of the document. */
struct zw_jsonpatch_entry {
	json_t *obj;    /* the object as it is in the document (borrowed) */
	json_t *before; /* shallow copy of its members when first logged (owned) */
	char *path;     /* its RFC 6901 pointer (owned) */
};

struct zw_jsonpatch_log {
	struct zw_jsonpatch_entry *v;
	size_t n, cap;
};

/* Logs `obj` (a JSON object in the document, borrowed) at pointer `path`
 * (copied) before its members change; an object already logged is kept as
 * first seen. `log` may be NULL (nothing is logged). Returns 0, or -1 on
 * ENOMEM or when obj is not an object. */
int zw_jsonpatch_log_touch(struct zw_jsonpatch_log *log, json_t *obj, const char *path);

/* Appends to `patch` (a JSON array, borrowed) the operations the logged
 * changes amount to, in document order of the logged pointers: the same
 * operations zw_jsonpatch_diff gives for the whole document. Returns 0;
 * 1 when the log cannot describe the changes (a logged object lies below a
 * member another logged object replaced or removed: diff whole documents
 * instead; `patch` is then unchanged); -1 on ENOMEM. Sorts the log. */
int zw_jsonpatch_log_diff(struct zw_jsonpatch_log *log, json_t *patch);

/* zw_jsonpatch_log_diff appending to `text` instead; same returns, text
 * unchanged unless 0. */
int zw_jsonpatch_log_diff_text(struct zw_jsonpatch_log *log, struct zw_jsonpatch_text *text);

/* Puts every logged object's members back as first logged (latest first),
 * which makes the document what it was before any logged change. Returns 0
 * or -1 on ENOMEM. The log is left empty either way. */
int zw_jsonpatch_log_undo(struct zw_jsonpatch_log *log);

/* Frees the log's entries (the document is not touched); the log may be
 * reused. */
void zw_jsonpatch_log_clear(struct zw_jsonpatch_log *log);

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
