/* One-pass JSON parsing into jansson values; see jsonin.h. */
#include "jsonin.h"

#include "buf.h"

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

struct parser {
	const char *p, *end;
	struct zw_buf scratch; /* strings with escapes, decoded */
	int depth;
};

/* The text of a string just read: in the input, or in the scratch buffer
 * when it had escapes (valid until the next string is read). */
struct str {
	const char *s;
	size_t n;
	bool ascii; /* no byte >= 0x80: nothing for jansson to check */
};

static void skip_space(struct parser *ps)
{
	while (ps->p < ps->end &&
	       (*ps->p == ' ' || *ps->p == '\n' || *ps->p == '\r' || *ps->p == '\t'))
		ps->p++;
}

static int hex_digit(char c)
{
	static const char digits[] = "0123456789abcdefABCDEF";
	const char *at = c ? strchr(digits, c) : NULL;
	if (!at)
		return -1;
	return at - digits < 16 ? (int)(at - digits) : (int)(at - digits) - 6;
}

/* Reads "uXXXX" at p (after the backslash). Returns the code unit or -1. */
static long read_u(struct parser *ps)
{
	long v = 0;
	if (ps->end - ps->p < 5 || ps->p[0] != 'u')
		return -1;
	for (int i = 1; i <= 4; i++) {
		int d = hex_digit(ps->p[i]);
		if (d < 0)
			return -1;
		v = v * 16 + d;
	}
	ps->p += 5;
	return v;
}

/* Decodes one escape (p after the backslash) to d; returns the bytes
 * written, or 0 for one jansson refuses or the fast parser leaves to it
 * (\u0000, a lone surrogate). */
static size_t unescape(struct parser *ps, char *d)
{
	static const char named[] = "\"\\/bfnrt", value[] = "\"\\/\b\f\n\r\t";
	const char *at = ps->p < ps->end && *ps->p ? strchr(named, *ps->p) : NULL;
	if (at) {
		ps->p++;
		*d = value[at - named];
		return 1;
	}
	long cp = read_u(ps);
	if (cp >= 0xD800 && cp <= 0xDBFF) {
		long lo = ps->p < ps->end && *ps->p == '\\' ? (ps->p++, read_u(ps)) : -1;
		if (lo < 0xDC00 || lo > 0xDFFF)
			return 0;
		cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
	} else if (cp <= 0 || (cp >= 0xDC00 && cp <= 0xDFFF)) {
		return 0;
	}
	if (cp < 0x80) {
		d[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		d[0] = (char)(0xC0 | (cp >> 6));
		d[1] = (char)(0x80 | (cp & 0x3F));
		return 2;
	}
	if (cp < 0x10000) {
		d[0] = (char)(0xE0 | (cp >> 12));
		d[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
		d[2] = (char)(0x80 | (cp & 0x3F));
		return 3;
	}
	d[0] = (char)(0xF0 | (cp >> 18));
	d[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
	d[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
	d[3] = (char)(0x80 | (cp & 0x3F));
	return 4;
}

/* Makes room in b for `more` bytes after the w decoded so far (b->len
 * follows w: growing keeps those bytes), doubling. Returns 0 or -1. */
static int scratch_room(struct zw_buf *b, size_t w, size_t more)
{
	size_t cap = b->cap ? b->cap : 64;
	b->len = w;
	if (w + more < b->cap)
		return 0;
	while (cap <= w + more)
		cap *= 2;
	return zw_buf_reserve(b, cap, SIZE_MAX) ? -1 : 0;
}

/* Reads a string whose opening quote is at p. Returns 0 or -1. */
static int read_string(struct parser *ps, struct str *out)
{
	const char *start = ++ps->p;
	unsigned char high = 0;
	while (ps->p < ps->end && *ps->p != '"' && *ps->p != '\\') {
		unsigned char c = (unsigned char)*ps->p++;
		if (c < 0x20)
			return -1;
		high |= c;
	}
	if (ps->p == ps->end)
		return -1;
	if (*ps->p == '"') {
		*out = (struct str){start, (size_t)(ps->p - start), !(high & 0x80)};
		ps->p++;
		return 0;
	}
	/* Escapes: decoded into the scratch buffer, which grows with the
	 * longest such string (not with the document). */
	struct zw_buf *b = &ps->scratch;
	size_t w = (size_t)(ps->p - start);
	if (scratch_room(b, 0, w))
		return -1;
	memcpy(b->data, start, w);
	while (ps->p < ps->end && *ps->p != '"') {
		unsigned char c = (unsigned char)*ps->p++;
		size_t n;
		if (scratch_room(b, w, 4))
			return -1;
		if (c == '\\') {
			if (!(n = unescape(ps, b->data + w)))
				return -1;
			high |= (unsigned char)b->data[w];
			w += n;
			continue;
		}
		if (c < 0x20)
			return -1;
		high |= c;
		b->data[w++] = (char)c;
	}
	if (ps->p == ps->end)
		return -1;
	ps->p++;
	*out = (struct str){b->data, w, !(high & 0x80)};
	return 0;
}

/* An integer of up to 18 digits (no fraction or exponent: reals are left
 * to jansson); NULL otherwise. */
static json_t *read_integer(struct parser *ps)
{
	bool neg = ps->p < ps->end && *ps->p == '-';
	const char *digits = ps->p + neg, *q = digits;
	json_int_t v = 0;
	while (q < ps->end && *q >= '0' && *q <= '9' && q - digits < 18)
		v = v * 10 + (*q++ - '0');
	size_t n = (size_t)(q - digits);
	if (n == 0 || (n > 1 && *digits == '0') ||
	    (q < ps->end && (*q == '.' || *q == 'e' || *q == 'E' || (*q >= '0' && *q <= '9'))))
		return NULL;
	ps->p = q;
	return json_integer(neg ? -v : v);
}

static json_t *read_value(struct parser *ps);

/* `word` at p, as the value v (a singleton, no reference to drop). */
static json_t *read_word(struct parser *ps, const char *word, size_t n, json_t *v)
{
	if ((size_t)(ps->end - ps->p) < n || memcmp(ps->p, word, n) != 0)
		return NULL;
	ps->p += n;
	return v;
}

/* After a member or element: skips "," (returns 1) or the closing
 * character `close` (returns 0); -1 for anything else. */
static int next_item(struct parser *ps, char close)
{
	skip_space(ps);
	if (ps->p < ps->end && *ps->p == ',') {
		ps->p++;
		skip_space(ps);
		return 1;
	}
	if (ps->p < ps->end && *ps->p == close) {
		ps->p++;
		return 0;
	}
	return -1;
}

/* Steps over the opening character at p and the space after it; true
 * (with `close` stepped over too) when the container is empty. */
static bool opens_empty(struct parser *ps, char close)
{
	ps->p++;
	skip_space(ps);
	if (ps->p < ps->end && *ps->p == close) {
		ps->p++;
		return true;
	}
	return false;
}

static json_t *read_object(struct parser *ps)
{
	json_t *o = json_object();
	char *key = NULL;
	int more = 1;
	if (opens_empty(ps, '}'))
		return o;
	while (o && more == 1) {
		struct str k;
		if (ps->p == ps->end || *ps->p != '"' || read_string(ps, &k))
			goto fail;
		/* A decoded key lives in the scratch buffer the value may reuse. */
		const char *name = k.s;
		if (k.s == ps->scratch.data) {
			if (!(key = strndup(k.s, k.n)))
				goto fail;
			name = key;
		}
		skip_space(ps);
		if (ps->p == ps->end || *ps->p != ':')
			goto fail;
		ps->p++;
		skip_space(ps);
		json_t *v = read_value(ps);
		/* Both steal v, even on failure; the checked one refuses a key
		 * that is not UTF-8 as jansson's parser does. */
		if (!v || (k.ascii ? json_object_setn_new_nocheck(o, name, k.n, v)
		                   : json_object_setn_new(o, name, k.n, v)))
			goto fail;
		free(key);
		key = NULL;
		more = next_item(ps, '}');
	}
	if (more == 0)
		return o;
fail:
	free(key);
	json_decref(o);
	return NULL;
}

static json_t *read_array(struct parser *ps)
{
	json_t *a = json_array();
	int more = 1;
	if (opens_empty(ps, ']'))
		return a;
	while (a && more == 1) {
		json_t *v = read_value(ps);
		if (!v || json_array_append_new(a, v))
			goto fail;
		more = next_item(ps, ']');
	}
	if (more == 0)
		return a;
fail:
	json_decref(a);
	return NULL;
}

static json_t *read_value(struct parser *ps)
{
	json_t *v = NULL;
	struct str s;
	if (ps->p == ps->end)
		return NULL;
	switch (*ps->p) {
	case '{':
	case '[':
		if (++ps->depth > ZW_JSONIN_MAX_DEPTH)
			return NULL;
		v = *ps->p == '{' ? read_object(ps) : read_array(ps);
		ps->depth--;
		return v;
	case '"':
		if (read_string(ps, &s))
			return NULL;
		return s.ascii ? json_stringn_nocheck(s.s, s.n) : json_stringn(s.s, s.n);
	case 't':
		return read_word(ps, "true", 4, json_true());
	case 'f':
		return read_word(ps, "false", 5, json_false());
	case 'n':
		return read_word(ps, "null", 4, json_null());
	default:
		return read_integer(ps);
	}
}

json_t *zw_json_parse(const char *text, size_t len)
{
	struct parser ps = {.p = text, .end = text + len};
	json_t *v = NULL;
	skip_space(&ps);
	if (ps.p < ps.end && (*ps.p == '{' || *ps.p == '['))
		v = read_value(&ps);
	skip_space(&ps);
	if (v && ps.p != ps.end) {
		json_decref(v);
		v = NULL;
	}
	zw_buf_free(&ps.scratch);
	return v;
}

json_t *zw_json_load(const char *text, size_t len, json_error_t *err)
{
	json_t *v = zw_json_parse(text, len);
	return v ? v : json_loadb(text, len, 0, err);
}
