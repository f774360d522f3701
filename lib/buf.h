/* A growable byte buffer with a hard limit: request and response bodies,
 * watch lines, rendered text, files and pipe output read whole. The one
 * buffer type of both programs (the proxy's zw_obuf in proxy/http1.h is a
 * zw_buf paired with its limit).
 *
 * `data` is owned, NUL-terminated after `len` whenever it is not NULL, and
 * never holds more than `max` bytes (each call names its limit; SIZE_MAX
 * for none). Memory grows by doubling from ZW_BUF_MIN_CAP and never beyond
 * max + 1 bytes. A zeroed struct is an empty buffer. */
#ifndef ZW_BUF_H
#define ZW_BUF_H

#include <stdarg.h>
#include <stddef.h>

#define ZW_BUF_MIN_CAP 256
#define ZW_BUF_EFULL   (-1) /* the bytes would not fit under max: nothing appended */
#define ZW_BUF_ENOMEM  (-2)

struct zw_buf {
	char *data; /* owned; NUL-terminated after len when non-NULL */
	size_t len, cap;
};

/* Appends n bytes of p (borrowed) unless b would hold more than max bytes.
 * Returns 0, ZW_BUF_EFULL (b unchanged) or ZW_BUF_ENOMEM (b unchanged). */
int zw_buf_append(struct zw_buf *b, const void *p, size_t n, size_t max);

/* Appends printf-style text, as zw_buf_append. Returns 0, ZW_BUF_EFULL,
 * ZW_BUF_ENOMEM, or ZW_BUF_ENOMEM for a format error (b unchanged). */
int zw_buf_appendf(struct zw_buf *b, size_t max, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

/* As zw_buf_appendf with a va_list (ap is consumed). */
int zw_buf_vappendf(struct zw_buf *b, size_t max, const char *fmt, va_list ap);

/* Pre-sizes b: its memory becomes at least cap bytes (the NUL included),
 * exactly cap when it grows, never more than max + 1. For callers that
 * charge memory to a budget before it is allocated. Returns 0 or
 * ZW_BUF_ENOMEM (b unchanged). */
int zw_buf_reserve(struct zw_buf *b, size_t cap, size_t max);

/* Makes room to write at least one byte at b->data + b->len without going
 * over max (for read(2)-style producers): on 0, *room bytes (>= 1) may be
 * written there and then recorded with zw_buf_commit. Returns 0,
 * ZW_BUF_EFULL when b already holds max bytes, or ZW_BUF_ENOMEM. */
int zw_buf_grow(struct zw_buf *b, size_t max, size_t *room);

/* Records n bytes written after zw_buf_grow (n <= the room it gave) and
 * NUL-terminates. */
void zw_buf_commit(struct zw_buf *b, size_t n);

/* Hands the text over: returns b's data (the caller frees it; an empty
 * buffer gives a new "") with its length in *len (may be NULL) and leaves b
 * empty. Returns NULL only when out of memory (b unchanged). */
char *zw_buf_take(struct zw_buf *b, size_t *len);

/* Releases b's memory and empties it. NULL-safe. */
void zw_buf_free(struct zw_buf *b);

#endif
