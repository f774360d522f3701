/* Growable byte buffer with a hard limit; see buf.h. */
#include "buf.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int zw_buf_reserve(struct zw_buf *b, size_t cap, size_t max)
{
	char *nb;

	if (max < SIZE_MAX && cap > max + 1)
		cap = max + 1;
	if (cap <= b->cap)
		return 0;
	if (!(nb = realloc(b->data, cap)))
		return ZW_BUF_ENOMEM;
	b->data = nb;
	b->cap = cap;
	b->data[b->len] = '\0'; /* a first allocation holds "" */
	return 0;
}

/* Makes b->cap at least need (bytes, the NUL included; need <= max + 1):
 * doubling from ZW_BUF_MIN_CAP, clamped to max + 1. Returns 0 or
 * ZW_BUF_ENOMEM. */
static int reserve(struct zw_buf *b, size_t need, size_t max)
{
	size_t cap = b->cap ? b->cap : ZW_BUF_MIN_CAP;

	if (need <= b->cap)
		return 0;
	while (cap < need) {
		if (cap > SIZE_MAX / 2)
			return ZW_BUF_ENOMEM;
		cap *= 2;
	}
	return zw_buf_reserve(b, cap, max);
}

int zw_buf_append(struct zw_buf *b, const void *p, size_t n, size_t max)
{
	int rc;

	if (n > max || b->len > max - n || b->len + n == SIZE_MAX)
		return ZW_BUF_EFULL;
	if ((rc = reserve(b, b->len + n + 1, max)) < 0)
		return rc;
	if (n)
		memcpy(b->data + b->len, p, n);
	b->len += n;
	b->data[b->len] = '\0';
	return 0;
}

int zw_buf_vappendf(struct zw_buf *b, size_t max, const char *fmt, va_list ap)
{
	size_t space = b->cap > b->len ? b->cap - b->len : 0;
	va_list again;
	int n, rc = 0;

	va_copy(again, ap);
	n = vsnprintf(space ? b->data + b->len : NULL, space, fmt, ap);
	if (n < 0) {
		rc = ZW_BUF_ENOMEM;
		goto out;
	}
	if ((size_t)n > max || b->len > max - (size_t)n) {
		rc = ZW_BUF_EFULL;
		goto out;
	}
	if ((size_t)n >= space) {
		if ((rc = reserve(b, b->len + (size_t)n + 1, max)) < 0)
			goto out;
		vsnprintf(b->data + b->len, b->cap - b->len, fmt, again);
	}
	b->len += (size_t)n;
out:
	if (rc < 0 && b->data)
		b->data[b->len] = '\0'; /* a cut attempt leaves b as it was */
	va_end(again);
	return rc;
}

int zw_buf_appendf(struct zw_buf *b, size_t max, const char *fmt, ...)
{
	va_list ap;
	int rc;

	va_start(ap, fmt);
	rc = zw_buf_vappendf(b, max, fmt, ap);
	va_end(ap);
	return rc;
}

int zw_buf_grow(struct zw_buf *b, size_t max, size_t *room)
{
	int rc;

	if (b->len >= max)
		return ZW_BUF_EFULL;
	if (b->len + 1 >= b->cap &&
	    (rc = reserve(b, b->cap ? b->cap * 2 : ZW_BUF_MIN_CAP, max)) < 0)
		return rc;
	*room = b->cap - 1 - b->len;
	return 0;
}

void zw_buf_commit(struct zw_buf *b, size_t n)
{
	b->len += n;
	b->data[b->len] = '\0';
}

char *zw_buf_take(struct zw_buf *b, size_t *len)
{
	char *p = b->data;

	if (!p && !(p = calloc(1, 1)))
		return NULL;
	if (len)
		*len = b->len;
	b->data = NULL;
	b->len = b->cap = 0;
	return p;
}

void zw_buf_free(struct zw_buf *b)
{
	if (!b)
		return;
	free(b->data);
	b->data = NULL;
	b->len = b->cap = 0;
}
