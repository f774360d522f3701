/* Compact JSON output; see jsonout.h. */
#include "jsonout.h"

#include <stdint.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Appends s[0..n) to the output (no limit besides memory). The common case,
 * room already there, stays in this file: admission serialises every
 * token through here. */
static int put(struct zw_buf *o, const char *s, size_t n)
{
	if (o->cap - o->len > n) {
		memcpy(o->data + o->len, s, n);
		o->len += n;
		o->data[o->len] = '\0';
		return 0;
	}
	return zw_buf_append(o, s, n, SIZE_MAX) < 0 ? -1 : 0;
}

static int needs_escape(unsigned char c)
{
	return c < 0x20 || c == '"' || c == '\\';
}

static int put_string(struct zw_buf *o, const char *s, size_t n)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t i = 0;

	if (put(o, "\"", 1))
		return -1;
	while (i < n) {
		size_t run = i;
		char esc[6];
		size_t elen = 2;
		unsigned char c;

		while (run < n && !needs_escape((unsigned char)s[run]))
			run++;
		if (run > i && put(o, s + i, run - i))
			return -1;
		if (run == n)
			break;
		c = (unsigned char)s[run];
		esc[0] = '\\';
		switch (c) {
		case '"':
			esc[1] = '"';
			break;
		case '\\':
			esc[1] = '\\';
			break;
		case '\n':
			esc[1] = 'n';
			break;
		case '\r':
			esc[1] = 'r';
			break;
		case '\t':
			esc[1] = 't';
			break;
		case '\b':
			esc[1] = 'b';
			break;
		case '\f':
			esc[1] = 'f';
			break;
		default:
			esc[1] = 'u';
			esc[2] = '0';
			esc[3] = '0';
			esc[4] = hex[c >> 4];
			esc[5] = hex[c & 15];
			elen = 6;
		}
		if (put(o, esc, elen))
			return -1;
		i = run + 1;
	}
	return put(o, "\"", 1);
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
	case JSON_INTEGER:
		n = snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT, json_integer_value(v));
		return put(o, num, (size_t)n);
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

char *zw_json_dump(const json_t *v, size_t *len_out)
{
	struct zw_buf o = {0};

	if (!v || put_value(&o, v, 0)) {
		zw_buf_free(&o);
		return NULL;
	}
	return zw_buf_take(&o, len_out);
}

int zw_json_append_string(struct zw_buf *b, const char *s, size_t n)
{
	return put_string(b, s, n);
}
