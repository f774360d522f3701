/* Compact JSON output; see jsonout.h. */
#include "jsonout.h"

#include <stdint.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Makes room for n more bytes and the NUL after them, doubling the
 * memory. Returns 0 or -1 when out of memory. */
static int room(struct zw_buf *o, size_t n)
{
	size_t cap = o->cap ? o->cap : ZW_BUF_MIN_CAP;

	if (o->cap - o->len > n)
		return 0;
	if (n > SIZE_MAX / 2 - o->len)
		return -1;
	while (cap - o->len <= n)
		cap *= 2;
	return zw_buf_reserve(o, cap, SIZE_MAX) ? -1 : 0;
}

/* Appends s[0..n) to the output (no limit besides memory). The common case,
 * room already there, stays in this file: admission serialises every
 * token through here. */
static int put(struct zw_buf *o, const char *s, size_t n)
{
	if (room(o, n))
		return -1;
	memcpy(o->data + o->len, s, n);
	o->len += n;
	o->data[o->len] = '\0';
	return 0;
}

#define ONES  0x0101010101010101ull
#define HIGHS 0x8080808080808080ull

/* True when one of the 8 bytes in w needs escaping: below 0x20, '"' or
 * '\\' (the usual "has a zero byte" test on w, w ^ '"' and w ^ '\\'). */
static int word_needs_escape(uint64_t w)
{
	uint64_t q = w ^ (ONES * '"'), b = w ^ (ONES * '\\');
	uint64_t t = (w - ONES * 0x20) | (q - ONES) | (b - ONES);
	return (t & ~w & HIGHS) != 0;
}

/* Writes the escaped form of c (one that needs it) at d; returns its
 * length. */
static size_t escape(char *d, unsigned char c)
{
	static const char hex[] = "0123456789ABCDEF";
	static const char letter[0x60] = {['"'] = '"',  ['\\'] = '\\', ['\n'] = 'n', ['\r'] = 'r',
	                                  ['\t'] = 't', ['\b'] = 'b',  ['\f'] = 'f'};

	d[0] = '\\';
	if (c < sizeof(letter) && letter[c]) {
		d[1] = letter[c];
		return 2;
	}
	d[1] = 'u';
	d[2] = '0';
	d[3] = '0';
	d[4] = hex[c >> 4];
	d[5] = hex[c & 15];
	return 6;
}

/* Writes v in decimal at the end of num (room for 24 characters); returns
 * where it starts. Formats as printf's %lld, without its cost. */
static char *put_integer(char *end, json_int_t v)
{
	unsigned long long u = v < 0 ? 0ull - (unsigned long long)v : (unsigned long long)v;
	char *p = end;

	do {
		*--p = (char)('0' + u % 10);
		u /= 10;
	} while (u);
	if (v < 0)
		*--p = '-';
	return p;
}

/* One pass, written straight into room made for the worst case (every
 * byte escaped as \u00XX); clean stretches go 8 bytes at a time. */
static int put_string(struct zw_buf *o, const char *s, size_t n)
{
	size_t i = 0;
	char *d;

	if (n > (SIZE_MAX - 2) / 6 || room(o, 6 * n + 2))
		return -1;
	d = o->data + o->len;
	*d++ = '"';
	while (i < n) {
		uint64_t w;
		size_t stop = n - i > 8 ? i + 8 : n;

		if (stop - i == 8) {
			memcpy(&w, s + i, 8);
			if (!word_needs_escape(w)) {
				memcpy(d, &w, 8);
				d += 8;
				i += 8;
				continue;
			}
		}
		/* A word with something to escape (or the tail): byte by byte,
		 * not retried as a word at every offset. */
		for (; i < stop; i++) {
			unsigned char c = (unsigned char)s[i];
			if (c >= 0x20 && c != '"' && c != '\\')
				*d++ = (char)c;
			else
				d += escape(d, c);
		}
	}
	*d++ = '"';
	*d = '\0';
	o->len = (size_t)(d - o->data);
	return 0;
}

static int put_value(struct zw_buf *o, const json_t *v, int depth)
{
	char num[64];
	int n;

	if (depth > ZW_JSONOUT_MAX_DEPTH)
		return -1;
	switch (json_typeof(v)) {
	case JSON_OBJECT: {
		const char *key;
		json_t *child;
		int first = 1;

		if (put(o, "{", 1))
			return -1;
		json_object_foreach((json_t *)v, key, child)
		{
			if ((!first && put(o, ",", 1)) || put_string(o, key, strlen(key)) ||
			    put(o, ":", 1) || put_value(o, child, depth + 1))
				return -1;
			first = 0;
		}
		return put(o, "}", 1);
	}
	case JSON_ARRAY: {
		size_t i;
		json_t *child;

		if (put(o, "[", 1))
			return -1;
		json_array_foreach((json_t *)v, i, child)
		{
			if ((i && put(o, ",", 1)) || put_value(o, child, depth + 1))
				return -1;
		}
		return put(o, "]", 1);
	}
	case JSON_STRING:
		return put_string(o, json_string_value(v), json_string_length(v));
	case JSON_INTEGER: {
		char *start = put_integer(num + sizeof(num), json_integer_value(v));
		return put(o, start, (size_t)(num + sizeof(num) - start));
	}
	case JSON_REAL: {
		double d = json_real_value(v);
		if (!isfinite(d))
			return -1;
		char *e;
		n = snprintf(num, sizeof(num), "%.17g", d);
		e = strchr(num, 'e');
		if (e) {
			/* "1e+300" -> "1e300", "1e-07" -> "1e-7", as jansson writes them */
			char *w = e + 1, *r = e + 1;
			if (*r == '+')
				r++;
			else if (*r == '-')
				*w++ = *r++;
			while (*r == '0' && r[1])
				r++;
			memmove(w, r, strlen(r) + 1);
			n = (int)strlen(num);
		} else if (!strchr(num, '.')) {
			n += snprintf(num + n, sizeof(num) - (size_t)n, ".0"); /* stays a real */
		}
		return put(o, num, (size_t)n);
	}
	case JSON_TRUE:
		return put(o, "true", 4);
	case JSON_FALSE:
		return put(o, "false", 5);
	case JSON_NULL:
		return put(o, "null", 4);
	}
	return -1;
}

int zw_json_append(struct zw_buf *b, const json_t *v)
{
	return v ? put_value(b, v, 0) : -1;
}

char *zw_json_dump(const json_t *v, size_t *len_out)
{
	struct zw_buf o = {0};

	if (zw_json_append(&o, v)) {
		zw_buf_free(&o);
		return NULL;
	}
	return zw_buf_take(&o, len_out);
}

int zw_json_append_string(struct zw_buf *b, const char *s, size_t n)
{
	return put_string(b, s, n);
}
