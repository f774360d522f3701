/* RFC 6902 JSON Patch diff and apply; see jsonpatch.h. */
#include "jsonpatch.h"

#include "jsonout.h"

#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

char *zw_jsonpointer_append(const char *base, const char *token)
{
	size_t blen = strlen(base), extra = 0;
	for (const char *p = token; *p; p++) {
		if (*p == '~' || *p == '/')
			extra++;
	}
	size_t tlen = strlen(token);
	char *out = malloc(blen + 1 + tlen + extra + 1);
	if (!out)
		return NULL;
	memcpy(out, base, blen);
	char *w = out + blen;
	*w++ = '/';
	for (const char *p = token; *p; p++) {
		if (*p == '~') {
			*w++ = '~';
			*w++ = '0';
		} else if (*p == '/') {
			*w++ = '~';
			*w++ = '1';
		} else {
			*w++ = *p;
		}
	}
	*w = '\0';
	return out;
}

/* Where operations go: a JSON array, or text (exactly one is set). */
struct sink {
	json_t *patch;
	struct zw_jsonpatch_text *text;
};

/* Appends {"op":op,"path":path[,"value":value]} to t, as zw_json_dump
 * writes that object. Returns 0 or -1 on ENOMEM. */
static int text_op(struct zw_jsonpatch_text *t, const char *op, const char *path,
                   const json_t *value)
{
	struct zw_buf *b = &t->ops;
	if (zw_buf_append(b, t->n ? ",{\"op\":\"" : "[{\"op\":\"", 8, SIZE_MAX) ||
	    zw_buf_append(b, op, strlen(op), SIZE_MAX) ||
	    zw_buf_append(b, "\",\"path\":", 9, SIZE_MAX) ||
	    zw_json_append_string(b, path, strlen(path)))
		return -1;
	if (value && (zw_buf_append(b, ",\"value\":", 9, SIZE_MAX) || zw_json_append(b, value)))
		return -1;
	if (zw_buf_append(b, "}", 1, SIZE_MAX))
		return -1;
	t->n++;
	return 0;
}

/* Appends {op, path, value} to the sink; value (may be NULL) is shared,
 * not copied. op is a literal and path is built from keys of valid
 * documents: both are valid UTF-8, so they are not checked again. */
static int add_op(const struct sink *sk, const char *op, const char *path, const json_t *value)
{
	if (sk->text)
		return text_op(sk->text, op, path, value);
	json_t *o = json_object();
	if (!o)
		return -1;
	if (json_object_set_new_nocheck(o, "op", json_string_nocheck(op)) ||
	    json_object_set_new_nocheck(o, "path", json_string_nocheck(path)))
		goto fail;
	if (value && json_object_set_nocheck(o, "value", (json_t *)value))
		goto fail;
	if (json_array_append_new(sk->patch, o))
		return -1;
	return 0;
fail:
	json_decref(o);
	return -1;
}

/* The pointer of the value being compared, built in place while walking
 * (no allocation per key). */
struct pbuf {
	char s[ZW_JSONPATCH_MAX_PATH];
	size_t len;
};

/* Appends "/" + escaped token; returns 0, or -1 when it does not fit. */
static int push(struct pbuf *b, const char *tok)
{
	size_t w = b->len;
	if (w + 1 >= sizeof(b->s))
		return -1;
	b->s[w++] = '/';
	for (const char *p = tok; *p; p++) {
		if (w + 2 >= sizeof(b->s))
			return -1;
		if (*p == '~' || *p == '/') {
			b->s[w++] = '~';
			b->s[w++] = *p == '~' ? '0' : '1';
		} else {
			b->s[w++] = *p;
		}
	}
	b->s[w] = '\0';
	b->len = w;
	return 0;
}

static int push_index(struct pbuf *b, size_t i)
{
	char num[32];
	snprintf(num, sizeof(num), "%zu", i);
	return push(b, num);
}

static void pop(struct pbuf *b, size_t len)
{
	b->len = len;
	b->s[len] = '\0';
}

static int replace_whole(const json_t *from, const json_t *to, struct pbuf *b,
                         const struct sink *patch)
{
	if (json_equal((json_t *)from, (json_t *)to))
		return 0;
	return add_op(patch, "replace", b->s, to);
}

static int diff(const json_t *from, const json_t *to, struct pbuf *b, const struct sink *patch,
                int depth)
{
	size_t mark = b->len;
	int rc = 0;
	/* A subtree shared by both documents is equal without a look. */
	if (from == to)
		return 0;
	/* Past the depth limit, a differing subtree is replaced whole. */
	if (depth > ZW_JSONPATCH_MAX_DEPTH)
		return replace_whole(from, to, b, patch);
	if (json_is_object(from) && json_is_object(to)) {
		const char *key;
		json_t *v;
		json_object_foreach((json_t *)from, key, v)
		{
			json_t *w = json_object_get(to, key);
			if (push(b, key))
				goto too_long;
			rc = w ? diff(v, w, b, patch, depth + 1)
			       : add_op(patch, "remove", b->s, NULL);
			pop(b, mark);
			if (rc)
				return rc;
		}
		json_object_foreach((json_t *)to, key, v)
		{
			if (json_object_get(from, key))
				continue;
			if (push(b, key))
				goto too_long;
			rc = add_op(patch, "add", b->s, v);
			pop(b, mark);
			if (rc)
				return rc;
		}
		return 0;
	}
	if (json_is_array(from) && json_is_array(to)) {
		size_t nf = json_array_size(from), nt = json_array_size(to);
		size_t common = nf < nt ? nf : nt;
		for (size_t i = 0; i < common; i++) {
			if (push_index(b, i))
				goto too_long;
			rc = diff(json_array_get(from, i), json_array_get(to, i), b, patch,
			          depth + 1);
			pop(b, mark);
			if (rc)
				return rc;
		}
		/* Remove from the end so earlier indices stay valid. */
		for (size_t i = nf; i > common; i--) {
			if (push_index(b, i - 1))
				goto too_long;
			rc = add_op(patch, "remove", b->s, NULL);
			pop(b, mark);
			if (rc)
				return rc;
		}
		for (size_t i = common; i < nt; i++) {
			if (push_index(b, i))
				goto too_long;
			rc = add_op(patch, "add", b->s, json_array_get(to, i));
			pop(b, mark);
			if (rc)
				return rc;
		}
		return 0;
	}
	return replace_whole(from, to, b, patch);
too_long:
	/* A child's pointer does not fit: replace this whole value instead.
	 * Operations already emitted for earlier children stay valid. */
	pop(b, mark);
	return add_op(patch, "replace", b->s, to);
}

/* zw_jsonpatch_diff with the caller's pointer buffer. */
static int diff_below(const json_t *from, const json_t *to, const char *prefix,
                      const struct sink *patch, struct pbuf *b)
{
	if (!from || !to || !(patch->text || json_is_array(patch->patch)))
		return -1;
	if (!prefix)
		prefix = "";
	b->len = strlen(prefix);
	if (b->len >= ZW_JSONPATCH_MAX_PATH)
		return -1;
	memcpy(b->s, prefix, b->len + 1);
	return diff(from, to, b, patch, 0);
}

static int diff_to(const json_t *from, const json_t *to, const char *prefix,
                   const struct sink *patch)
{
	struct pbuf *b = malloc(sizeof(*b));
	int rc = b ? diff_below(from, to, prefix, patch, b) : -1;
	free(b);
	return rc;
}

int zw_jsonpatch_diff(const json_t *from, const json_t *to, const char *prefix, json_t *patch)
{
	struct sink sk = {.patch = patch};
	return diff_to(from, to, prefix, &sk);
}

int zw_jsonpatch_diff_text(const json_t *from, const json_t *to, const char *prefix,
                           struct zw_jsonpatch_text *text)
{
	struct sink sk = {.text = text};
	size_t len = text->ops.len, n = text->n;
	int rc = diff_to(from, to, prefix, &sk);
	if (rc)
		zw_jsonpatch_text_truncate(text, len, n);
	return rc;
}

void zw_jsonpatch_text_truncate(struct zw_jsonpatch_text *text, size_t len, size_t n)
{
	text->ops.len = len;
	text->n = n;
	if (text->ops.data)
		text->ops.data[len] = '\0';
}

char *zw_jsonpatch_text_take(struct zw_jsonpatch_text *text, size_t *len_out)
{
	if (!text->n && zw_buf_append(&text->ops, "[", 1, SIZE_MAX))
		return NULL;
	if (zw_buf_append(&text->ops, "]", 1, SIZE_MAX))
		return NULL;
	text->n = 0;
	return zw_buf_take(&text->ops, len_out);
}

static char *next_token(const char **ptr);

int zw_jsonpatch_log_touch(struct zw_jsonpatch_log *log, json_t *obj, const char *path)
{
	if (!log)
		return 0;
	if (!json_is_object(obj))
		return -1;
	/* Most often the object logged last (a destination and its split
	 * header): search from the end. */
	for (size_t i = log->n; i-- > 0;) {
		if (log->v[i].obj == obj)
			return 0;
	}
	if (log->n == log->cap) {
		size_t cap = log->cap ? 2 * log->cap : 16;
		struct zw_jsonpatch_entry *v = realloc(log->v, cap * sizeof(*v));
		if (!v)
			return -1;
		log->v = v;
		log->cap = cap;
	}
	struct zw_jsonpatch_entry *e = &log->v[log->n];
	e->obj = obj;
	e->before = json_copy(obj);
	e->path = strdup(path);
	if (!e->before || !e->path) {
		json_decref(e->before);
		free(e->path);
		return -1;
	}
	log->n++;
	return 0;
}

void zw_jsonpatch_log_clear(struct zw_jsonpatch_log *log)
{
	for (size_t i = 0; i < log->n; i++) {
		json_decref(log->v[i].before);
		free(log->v[i].path);
	}
	log->n = 0;
}

int zw_jsonpatch_log_undo(struct zw_jsonpatch_log *log)
{
	int rc = 0;
	for (size_t i = log->n; i-- > 0;) {
		struct zw_jsonpatch_entry *e = &log->v[i];
		if (json_object_clear(e->obj) || json_object_update(e->obj, e->before))
			rc = -1;
	}
	zw_jsonpatch_log_clear(log);
	return rc;
}

/* Length of the reference token starting at p (up to '/' or the end). */
static size_t token_len(const char *p)
{
	return strcspn(p, "/");
}

static bool all_digits(const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (p[i] < '0' || p[i] > '9')
			return false;
	}
	return n > 0;
}

/* Document order of two pointers: token by token, array indices by value
 * (before any other token), other tokens bytewise; a pointer sorts before
 * those below it. */
static int token_cmp(const char *p, size_t np, const char *q, size_t nq)
{
	bool dp = all_digits(p, np), dq = all_digits(q, nq);
	if (dp != dq)
		return dp ? -1 : 1;
	if (dp && np != nq)
		return np < nq ? -1 : 1;
	int c = memcmp(p, q, np < nq ? np : nq);
	if (c || np == nq)
		return c;
	return np < nq ? -1 : 1;
}

static int pointer_cmp(const void *a, const void *b)
{
	const char *p = ((const struct zw_jsonpatch_entry *)a)->path;
	const char *q = ((const struct zw_jsonpatch_entry *)b)->path;
	size_t i = 0;
	while (p[i] && p[i] == q[i])
		i++;
	if (p[i] == q[i])
		return 0;
	/* One pointer ends where the other goes on below: it comes first. */
	if (!p[i] && q[i] == '/')
		return -1;
	if (p[i] == '/' && !q[i])
		return 1;
	/* Otherwise the first token that differs decides. */
	size_t t = i;
	while (t > 0 && p[t - 1] != '/')
		t--;
	return token_cmp(p + t, token_len(p + t), q + t, token_len(q + t));
}

/* Whether pointer `below` equals `top` or lies below it; *key_out points
 * at the token after `top` in `below` (or at its end). */
static bool at_or_below(const char *top, const char *below, const char **key_out)
{
	size_t n = strlen(top);
	if (strncmp(top, below, n) != 0 || (below[n] && below[n] != '/'))
		return false;
	*key_out = below + n;
	return true;
}

/* Whether logged object e still holds, under the member named by the
 * token at key ("/name..."), what it held when logged. */
static int member_kept(const struct zw_jsonpatch_entry *e, const char *key)
{
	char tok[256];
	size_t n = token_len(key + 1) + 1;
	if (n >= sizeof(tok))
		return 0;
	memcpy(tok, key, n);
	tok[n] = '\0';
	const char *s = tok;
	char *name = next_token(&s);
	if (!name)
		return -1;
	int kept = json_object_get(e->before, name) == json_object_get(e->obj, name);
	free(name);
	return kept;
}

/* zw_jsonpatch_log_diff into either sink; on failure the sink is as it
 * was. */
static int log_diff(struct zw_jsonpatch_log *log, const struct sink *patch)
{
	size_t mark = patch->text ? patch->text->n : json_array_size(patch->patch);
	size_t mark_len = patch->text ? patch->text->ops.len : 0;
	if (log->n > 1)
		qsort(log->v, log->n, sizeof(*log->v), pointer_cmp);
	/* Objects logged below another are contiguous after it once sorted;
	 * each must hang from a member the upper one kept, else its changes
	 * were made on a detached value or would be emitted twice. */
	for (size_t i = 0; i < log->n; i++) {
		for (size_t j = i + 1; j < log->n; j++) {
			const char *key;
			if (!at_or_below(log->v[i].path, log->v[j].path, &key))
				break;
			if (!*key)
				continue;
			int kept = member_kept(&log->v[i], key);
			if (kept < 0)
				return -1;
			if (!kept)
				return 1;
		}
	}
	struct pbuf *b = malloc(sizeof(*b));
	int rc = b ? 0 : -1;
	for (size_t i = 0; !rc && i < log->n; i++)
		rc = diff_below(log->v[i].before, log->v[i].obj, log->v[i].path, patch, b);
	free(b);
	if (rc && patch->text)
		zw_jsonpatch_text_truncate(patch->text, mark_len, mark);
	while (rc && !patch->text && json_array_size(patch->patch) > mark)
		json_array_remove(patch->patch, json_array_size(patch->patch) - 1);
	return rc;
}

int zw_jsonpatch_log_diff(struct zw_jsonpatch_log *log, json_t *patch)
{
	struct sink sk = {.patch = patch};
	return log_diff(log, &sk);
}

int zw_jsonpatch_log_diff_text(struct zw_jsonpatch_log *log, struct zw_jsonpatch_text *text)
{
	struct sink sk = {.text = text};
	return log_diff(log, &sk);
}

/* Decodes the next reference token of *ptr (after its leading '/') into a
 * new string and advances *ptr. Returns NULL on ENOMEM or a bad escape. */
static char *next_token(const char **ptr)
{
	const char *s = *ptr + 1;
	const char *end = strchr(s, '/');
	size_t n = end ? (size_t)(end - s) : strlen(s);
	char *tok = malloc(n + 1);
	if (!tok)
		return NULL;
	size_t w = 0;
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '~') {
			if (i + 1 < n && s[i + 1] == '0')
				tok[w++] = '~';
			else if (i + 1 < n && s[i + 1] == '1')
				tok[w++] = '/';
			else
				goto bad;
			i++;
		} else {
			tok[w++] = s[i];
		}
	}
	tok[w] = '\0';
	*ptr = s + n;
	return tok;
bad:
	free(tok);
	return NULL;
}

/* Parses an array index token: digits only, no leading zero. */
static int parse_index(const char *tok, size_t *out)
{
	if (!*tok || (tok[0] == '0' && tok[1]))
		return -1;
	size_t v = 0;
	for (const char *p = tok; *p; p++) {
		if (*p < '0' || *p > '9' || v > (SIZE_MAX - 9) / 10)
			return -1;
		v = v * 10 + (size_t)(*p - '0');
	}
	*out = v;
	return 0;
}

json_t *zw_jsonpointer_get(const json_t *doc, const char *ptr)
{
	json_t *cur = (json_t *)doc;
	if (!ptr)
		return NULL;
	while (cur && *ptr) {
		if (*ptr != '/')
			return NULL;
		char *tok = next_token(&ptr);
		if (!tok)
			return NULL;
		if (json_is_object(cur)) {
			cur = json_object_get(cur, tok);
		} else if (json_is_array(cur)) {
			size_t i;
			cur = parse_index(tok, &i) ? NULL : json_array_get(cur, i);
		} else {
			cur = NULL;
		}
		free(tok);
	}
	return cur;
}

/* Splits ptr into its parent container (borrowed, in *doc) and last token
 * (new string). Returns 0, or -1 when the parent does not exist. */
static int split_parent(json_t *doc, const char *ptr, json_t **parent, char **last)
{
	const char *slash = strrchr(ptr, '/');
	if (!slash)
		return -1;
	size_t plen = (size_t)(slash - ptr);
	char *ppath = strndup(ptr, plen);
	if (!ppath)
		return -1;
	*parent = plen ? zw_jsonpointer_get(doc, ppath) : doc;
	free(ppath);
	if (!*parent)
		return -1;
	const char *s = slash;
	*last = next_token(&s);
	return *last ? 0 : -1;
}

static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
	if (!err || !errlen)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

/* add (replace = false) or replace (replace = true) `value` (stolen) at ptr. */
static int put(json_t **doc, const char *ptr, json_t *value, bool replace)
{
	if (!*ptr) {
		json_decref(*doc);
		*doc = value;
		return 0;
	}
	json_t *parent;
	char *last = NULL;
	int rc = -1;
	if (split_parent(*doc, ptr, &parent, &last))
		goto out;
	if (json_is_object(parent)) {
		if (replace && !json_object_get(parent, last))
			goto out;
		rc = json_object_set_new(parent, last, value);
		value = NULL;
	} else if (json_is_array(parent)) {
		size_t n = json_array_size(parent), i;
		if (!replace && strcmp(last, "-") == 0) {
			rc = json_array_append_new(parent, value);
			value = NULL;
		} else if (!parse_index(last, &i) && (replace ? i < n : i <= n)) {
			rc = replace ? json_array_set_new(parent, i, value)
			             : json_array_insert_new(parent, i, value);
			value = NULL;
		}
	}
out:
	json_decref(value);
	free(last);
	return rc;
}

static int remove_at(json_t *doc, const char *ptr)
{
	json_t *parent;
	char *last = NULL;
	int rc = -1;
	if (!*ptr || split_parent(doc, ptr, &parent, &last))
		goto out;
	if (json_is_object(parent)) {
		rc = json_object_del(parent, last);
	} else if (json_is_array(parent)) {
		size_t i;
		if (!parse_index(last, &i) && i < json_array_size(parent))
			rc = json_array_remove(parent, i);
	}
out:
	free(last);
	return rc;
}

int zw_jsonpatch_apply(json_t **doc, const json_t *patch, char *err, size_t errlen)
{
	if (!json_is_array(patch)) {
		set_err(err, errlen, "patch is not an array");
		return -1;
	}
	size_t i;
	json_t *op;
	json_array_foreach(patch, i, op)
	{
		const char *name = json_string_value(json_object_get(op, "op"));
		const char *path = json_string_value(json_object_get(op, "path"));
		const char *from = json_string_value(json_object_get(op, "from"));
		json_t *value = json_object_get(op, "value");
		int rc = -1;
		if (!name || !path || (*path && *path != '/')) {
			set_err(err, errlen, "operation %zu: missing op or bad path", i);
			return -1;
		}
		if (strcmp(name, "add") == 0 || strcmp(name, "replace") == 0) {
			if (value)
				rc = put(doc, path, json_deep_copy(value), name[0] == 'r');
		} else if (strcmp(name, "remove") == 0) {
			rc = remove_at(*doc, path);
		} else if (strcmp(name, "test") == 0) {
			json_t *cur = zw_jsonpointer_get(*doc, path);
			rc = (cur && value && json_equal(cur, value)) ? 0 : -1;
		} else if ((strcmp(name, "move") == 0 || strcmp(name, "copy") == 0) && from) {
			json_t *src = zw_jsonpointer_get(*doc, from);
			json_t *copy = src ? json_deep_copy(src) : NULL;
			if (copy && name[0] == 'm' && remove_at(*doc, from)) {
				json_decref(copy);
				copy = NULL;
			}
			if (copy)
				rc = put(doc, path, copy, false);
		}
		if (rc) {
			set_err(err, errlen, "operation %zu (%s %s) does not apply", i, name, path);
			return -1;
		}
	}
	return 0;
}
