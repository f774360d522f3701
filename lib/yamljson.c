/* YAML to JSON; see yamljson.h. Built on libyaml's event parser: a stack of
 * open collections receives each scalar, and anchors are kept in a small
 * table so aliases can be expanded as deep copies. */
#include "yamljson.h"

#include "buf.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#define MAX_ANCHORS    256
#define MAX_FILE_BYTES (64u << 20)

struct frame {
	json_t *node;
	char *key;    /* pending mapping key, owned */
	char *anchor; /* anchor of this collection, owned */
};

struct loader {
	struct frame stack[ZW_YAML_MAX_DEPTH];
	int depth;
	char *anchor_names[MAX_ANCHORS];
	json_t *anchor_values[MAX_ANCHORS];
	size_t anchor_nodes[MAX_ANCHORS];
	int n_anchors;
	int n_aliases;
	size_t alias_nodes; /* nodes created by alias expansion so far */
	json_t *docs;
	json_t *doc; /* current document root */
	char *err;
	size_t errlen;
};

static void set_err(struct loader *ld, const yaml_mark_t *mark, const char *reason)
{
	snprintf(ld->err, ld->errlen, "line %zu column %zu: %s", mark->line + 1, mark->column + 1,
	         reason);
}

/* Counts the JSON nodes of v, stopping early once past `cap`. */
static size_t count_nodes(json_t *v, size_t cap)
{
	size_t n = 1, i;
	const char *key;
	json_t *child;

	if (json_is_array(v)) {
		json_array_foreach(v, i, child)
		{
			n += count_nodes(child, cap);
			if (n > cap)
				return n;
		}
	} else if (json_is_object(v)) {
		json_object_foreach(v, key, child)
		{
			n += count_nodes(child, cap);
			if (n > cap)
				return n;
		}
	}
	return n;
}

static int remember_anchor(struct loader *ld, const char *name, json_t *value)
{
	if (ld->n_anchors == MAX_ANCHORS)
		return -1;
	ld->anchor_names[ld->n_anchors] = strdup(name);
	if (!ld->anchor_names[ld->n_anchors])
		return -1;
	ld->anchor_nodes[ld->n_anchors] = count_nodes(value, ZW_YAML_MAX_ALIAS_NODES + 1);
	ld->anchor_values[ld->n_anchors++] = json_incref(value);
	return 0;
}

static int find_anchor(struct loader *ld, const char *name)
{
	for (int i = ld->n_anchors - 1; i >= 0; i--) {
		if (strcmp(ld->anchor_names[i], name) == 0)
			return i;
	}
	return -1;
}

/* Decimal or 0x/0o forms of the YAML 1.2 core schema. */
static int parse_int(const char *s, json_int_t *out)
{
	const char *p = s;
	int base = 10;
	char *end;
	long long v;

	if (*p == '+' || *p == '-')
		p++;
	if (p[0] == '0' && (p[1] == 'x' || p[1] == 'o')) {
		if (p != s)
			return -1;
		base = p[1] == 'x' ? 16 : 8;
		p += 2;
		s = p;
	}
	if (!*p)
		return -1;
	for (const char *q = p; *q; q++) {
		if (base == 10 && (*q < '0' || *q > '9'))
			return -1;
	}
	errno = 0;
	v = strtoll(s, &end, base);
	if (errno || *end)
		return -1;
	*out = (json_int_t)v;
	return 0;
}

static int parse_float(const char *s, double *out)
{
	char *end;
	int digits = 0;

	for (const char *q = s; *q; q++) {
		if (*q >= '0' && *q <= '9')
			digits++;
		else if (!strchr("+-.eE", *q))
			return -1;
	}
	if (!digits)
		return -1;
	errno = 0;
	*out = strtod(s, &end);
	if (errno || *end || !isfinite(*out))
		return -1;
	return 0;
}

static json_t *plain_scalar(const char *s)
{
	json_int_t i;
	double d;

	if (!*s || strcmp(s, "~") == 0 || strcmp(s, "null") == 0 || strcmp(s, "Null") == 0 ||
	    strcmp(s, "NULL") == 0)
		return json_null();
	if (strcmp(s, "true") == 0 || strcmp(s, "True") == 0 || strcmp(s, "TRUE") == 0)
		return json_true();
	if (strcmp(s, "false") == 0 || strcmp(s, "False") == 0 || strcmp(s, "FALSE") == 0)
		return json_false();
	if (parse_int(s, &i) == 0)
		return json_integer(i);
	if (parse_float(s, &d) == 0)
		return json_real(d);
	return json_string(s);
}

static json_t *scalar_value(const yaml_event_t *ev)
{
	const char *s = (const char *)ev->data.scalar.value;
	const char *tag = (const char *)ev->data.scalar.tag;

	if (tag && strcmp(tag, YAML_STR_TAG) == 0)
		return json_stringn(s, ev->data.scalar.length);
	if (ev->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
		return json_stringn(s, ev->data.scalar.length);
	if (strlen(s) != ev->data.scalar.length)
		return json_stringn(s, ev->data.scalar.length);
	return plain_scalar(s);
}

/* Adds `value` (reference stolen) to the open collection or as the document
 * root. Mapping keys must be scalars and are kept as strings. */
static int attach(struct loader *ld, json_t *value, const yaml_mark_t *mark, int is_scalar)
{
	struct frame *top;

	if (!value) {
		set_err(ld, mark, "out of memory");
		return -1;
	}
	if (ld->depth == 0) {
		json_decref(ld->doc);
		ld->doc = value;
		return 0;
	}
	top = &ld->stack[ld->depth - 1];
	if (json_is_array(top->node))
		return json_array_append_new(top->node, value) == 0 ? 0 : -1;
	if (!top->key) {
		if (!is_scalar) {
			json_decref(value);
			set_err(ld, mark, "mapping keys must be scalars");
			return -1;
		}
		if (json_is_string(value)) {
			top->key = strdup(json_string_value(value));
		} else {
			char *txt = json_dumps(value, JSON_ENCODE_ANY);
			top->key = txt ? strdup(txt) : NULL;
			free(txt);
		}
		json_decref(value);
		if (!top->key) {
			set_err(ld, mark, "out of memory");
			return -1;
		}
		return 0;
	}
	if (strcmp(top->key, "<<") == 0 && json_is_object(value)) {
		/* Merge key: existing keys win. */
		json_object_update_missing(top->node, value);
		json_decref(value);
	} else if (json_object_set_new(top->node, top->key, value) != 0) {
		free(top->key);
		top->key = NULL;
		set_err(ld, mark, "invalid mapping key");
		return -1;
	}
	free(top->key);
	top->key = NULL;
	return 0;
}

static int open_collection(struct loader *ld, json_t *node, const yaml_char_t *anchor,
                           const yaml_mark_t *mark)
{
	struct frame *f;

	if (!node) {
		set_err(ld, mark, "out of memory");
		return -1;
	}
	if (ld->depth == ZW_YAML_MAX_DEPTH) {
		json_decref(node);
		set_err(ld, mark, "nesting too deep");
		return -1;
	}
	f = &ld->stack[ld->depth++];
	f->node = node;
	f->key = NULL;
	f->anchor = anchor ? strdup((const char *)anchor) : NULL;
	return 0;
}

static int close_collection(struct loader *ld, const yaml_mark_t *mark)
{
	struct frame f = ld->stack[--ld->depth];
	int rc = 0;

	free(f.key);
	if (f.anchor) {
		rc = remember_anchor(ld, f.anchor, f.node);
		free(f.anchor);
		if (rc) {
			json_decref(f.node);
			set_err(ld, mark, "too many anchors");
			return -1;
		}
	}
	return attach(ld, f.node, mark, 0);
}

static int handle_event(struct loader *ld, const yaml_event_t *ev)
{
	json_t *v;

	switch (ev->type) {
	case YAML_DOCUMENT_START_EVENT:
		ld->doc = NULL;
		return 0;
	case YAML_DOCUMENT_END_EVENT:
		if (ld->doc && !json_is_null(ld->doc)) {
			if (json_array_append_new(ld->docs, ld->doc) != 0)
				return -1;
		} else {
			json_decref(ld->doc);
		}
		ld->doc = NULL;
		return 0;
	case YAML_MAPPING_START_EVENT:
		return open_collection(ld, json_object(), ev->data.mapping_start.anchor,
		                       &ev->start_mark);
	case YAML_SEQUENCE_START_EVENT:
		return open_collection(ld, json_array(), ev->data.sequence_start.anchor,
		                       &ev->start_mark);
	case YAML_MAPPING_END_EVENT:
	case YAML_SEQUENCE_END_EVENT:
		return close_collection(ld, &ev->start_mark);
	case YAML_SCALAR_EVENT:
		v = scalar_value(ev);
		if (v && ev->data.scalar.anchor &&
		    remember_anchor(ld, (const char *)ev->data.scalar.anchor, v) != 0) {
			json_decref(v);
			set_err(ld, &ev->start_mark, "too many anchors");
			return -1;
		}
		return attach(ld, v, &ev->start_mark, 1);
	case YAML_ALIAS_EVENT: {
		int a = find_anchor(ld, (const char *)ev->data.alias.anchor);
		if (a < 0) {
			set_err(ld, &ev->start_mark, "unknown alias");
			return -1;
		}
		ld->alias_nodes += ld->anchor_nodes[a];
		if (++ld->n_aliases > ZW_YAML_MAX_ALIASES ||
		    ld->alias_nodes > ZW_YAML_MAX_ALIAS_NODES) {
			set_err(ld, &ev->start_mark, "too many aliases");
			return -1;
		}
		v = ld->anchor_values[a];
		return attach(ld, json_deep_copy(v), &ev->start_mark, json_is_string(v));
	}
	default:
		return 0;
	}
}

int zw_yaml_load(const char *buf, size_t len, json_t **docs_out, char *err, size_t errlen)
{
	struct loader ld;
	yaml_parser_t parser;
	yaml_event_t ev;
	int rc = -1, done = 0;

	memset(&ld, 0, sizeof(ld));
	ld.err = err;
	ld.errlen = errlen;
	*docs_out = NULL;
	if (errlen)
		err[0] = '\0';
	ld.docs = json_array();
	if (!ld.docs || !yaml_parser_initialize(&parser)) {
		snprintf(err, errlen, "out of memory");
		json_decref(ld.docs);
		return -1;
	}
	yaml_parser_set_input_string(&parser, (const unsigned char *)buf, len);
	while (!done) {
		if (!yaml_parser_parse(&parser, &ev)) {
			snprintf(err, errlen, "line %zu column %zu: %s",
			         parser.problem_mark.line + 1, parser.problem_mark.column + 1,
			         parser.problem ? parser.problem : "invalid YAML");
			goto out;
		}
		done = ev.type == YAML_STREAM_END_EVENT;
		if (handle_event(&ld, &ev) != 0) {
			if (errlen && !err[0])
				snprintf(err, errlen, "out of memory");
			yaml_event_delete(&ev);
			goto out;
		}
		yaml_event_delete(&ev);
	}
	*docs_out = ld.docs;
	ld.docs = NULL;
	rc = 0;
out:
	while (ld.depth > 0) {
		struct frame *f = &ld.stack[--ld.depth];
		json_decref(f->node);
		free(f->key);
		free(f->anchor);
	}
	for (int i = 0; i < ld.n_anchors; i++) {
		free(ld.anchor_names[i]);
		json_decref(ld.anchor_values[i]);
	}
	json_decref(ld.doc);
	json_decref(ld.docs);
	yaml_parser_delete(&parser);
	return rc;
}

int zw_yaml_load_file(const char *path, json_t **docs_out, char *err, size_t errlen)
{
	struct zw_buf b = {0};
	FILE *f;
	size_t n, room;
	int rc = -1, grc;

	*docs_out = NULL;
	f = fopen(path, "rb");
	if (!f) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	for (;;) {
		if ((grc = zw_buf_grow(&b, MAX_FILE_BYTES, &room)) == ZW_BUF_EFULL) {
			snprintf(err, errlen, "%s: larger than %u bytes", path, MAX_FILE_BYTES);
			goto out;
		}
		if (grc < 0) {
			snprintf(err, errlen, "%s: out of memory", path);
			goto out;
		}
		n = fread(b.data + b.len, 1, room, f);
		zw_buf_commit(&b, n);
		if (n == 0)
			break;
	}
	if (ferror(f)) {
		snprintf(err, errlen, "%s: read error", path);
		goto out;
	}
	rc = zw_yaml_load(b.data, b.len, docs_out, err, errlen);
	if (rc != 0) {
		/* Prefix the path so the caller's message names the file. */
		char tmp[512];
		snprintf(tmp, sizeof(tmp), "%s", err);
		snprintf(err, errlen, "%s: %s", path, tmp);
	}
out:
	zw_buf_free(&b);
	fclose(f);
	return rc;
}
