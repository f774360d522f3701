/* Static response bodies from ConfigMaps; see bodies.h. */
#include "bodies.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* The store's key of ConfigMap ns/name: "ns/name" (both are DNS names of
 * at most 253 bytes, so nothing is cut). */
#define CM_KEY_LEN 512
static void cm_key(char *buf, const char *ns, const char *name)
{
	snprintf(buf, CM_KEY_LEN, "%.250s/%.250s", ns, name);
}

struct zw_bodies {
	/* "ns/name" -> {"labelled": bool, "data": {key: string}} */
	json_t *map;
};

int zw_bodies_new(struct zw_bodies **out)
{
	struct zw_bodies *b = calloc(1, sizeof(*b));

	*out = NULL;
	if (!b || !(b->map = json_object())) {
		free(b);
		return -ENOMEM;
	}
	*out = b;
	return 0;
}

void zw_bodies_free(struct zw_bodies *b)
{
	if (!b)
		return;
	json_decref(b->map);
	free(b);
}

void zw_bodies_clear(struct zw_bodies *b)
{
	json_object_clear(b->map);
}

void zw_bodies_forget(struct zw_bodies *b, const char *ns, const char *name)
{
	char key[CM_KEY_LEN];
	cm_key(key, ns, name);
	json_object_del(b->map, key);
}

static const char *meta_str(const json_t *o, const char *field)
{
	return json_string_value(json_object_get(json_object_get(o, "metadata"), field));
}

int zw_bodies_apply(struct zw_bodies *b, const json_t *cm, bool deleted)
{
	const char *ns = meta_str(cm, "namespace"), *name = meta_str(cm, "name");
	const json_t *labels = json_object_get(json_object_get(cm, "metadata"), "labels");
	const char *label = json_string_value(json_object_get(labels, ZW_RESPONSE_BODY_LABEL));
	json_t *data, *entry, *old;
	const char *k;
	json_t *v;
	char key[CM_KEY_LEN];

	if (!ns || !name)
		return 0;
	cm_key(key, ns, name);
	old = json_object_get(b->map, key);
	if (deleted) {
		if (!old)
			return 0;
		json_object_del(b->map, key);
		return 1;
	}
	/* Only string values are bodies (binaryData is not served). */
	data = json_object();
	if (!data)
		return -ENOMEM;
	json_object_foreach(json_object_get(cm, "data"), k, v)
	{
		if (json_is_string(v) && json_object_set(data, k, v)) {
			json_decref(data);
			return -ENOMEM;
		}
	}
	entry = json_pack("{s:b, s:o}", "labelled", label && strcasecmp(label, "true") == 0, "data",
	                  data);
	if (!entry)
		return -ENOMEM;
	if (old && json_equal(old, entry)) {
		json_decref(entry);
		return 0;
	}
	return json_object_set_new(b->map, key, entry) ? -ENOMEM : 1;
}

static bool sr_needs(const struct zw_static_response *sr)
{
	return !!sr->body_configmap;
}

bool zw_target_needs_bodies(const struct zw_target *t)
{
	if (t->has_placeholder && sr_needs(&t->placeholder))
		return true;
	for (size_t i = 0; i < t->n_static_routes; i++)
		if (sr_needs(&t->static_routes[i].response))
			return true;
	return false;
}

int zw_bodies_each_ref(const struct zw_target *t,
                       int (*fn)(void *arg, const char *ns, const char *name), void *arg)
{
	int rc;

	if (t->has_placeholder && sr_needs(&t->placeholder) &&
	    (rc = fn(arg, t->namespace, t->placeholder.body_configmap)) < 0)
		return rc;
	for (size_t i = 0; i < t->n_static_routes; i++) {
		const struct zw_static_response *sr = &t->static_routes[i].response;
		if (sr_needs(sr) && (rc = fn(arg, t->namespace, sr->body_configmap)) < 0)
			return rc;
	}
	return 0;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sets header `name` of sr to value (replacing one of that name). */
static int set_header(struct zw_static_response *sr, const char *name, const char *value)
{
	char *v = strdup(value), *n = NULL, **names, **values;

	if (!v)
		return -ENOMEM;
	for (size_t i = 0; i < sr->n_headers; i++) {
		if (strcasecmp(sr->header_names[i], name) == 0) {
			free(sr->header_values[i]);
			sr->header_values[i] = v;
			return 0;
		}
	}
	names = realloc(sr->header_names, (sr->n_headers + 1) * sizeof(char *));
	if (names)
		sr->header_names = names;
	values = names ? realloc(sr->header_values, (sr->n_headers + 1) * sizeof(char *)) : NULL;
	if (values)
		sr->header_values = values;
	if (!names || !values || !(n = strdup(name))) {
		free(v);
		return -ENOMEM;
	}
	sr->header_names[sr->n_headers] = n;
	sr->header_values[sr->n_headers++] = v;
	return 0;
}

/* Kedify's waiting page keys besides the body, applied when valid. */
static int waiting_page_keys(struct zw_static_response *sr, const json_t *data)
{
	const char *s = json_string_value(json_object_get(data, ZW_WAITING_PAGE_STATUS_KEY));
	const char *ra = json_string_value(json_object_get(data, ZW_WAITING_PAGE_RETRY_AFTER_KEY));
	char *end;

	if (s) {
		long st = strtol(s, &end, 10);
		if (end != s && *end == '\0' && st >= 100 && st <= 599)
			sr->status = (int)st;
	}
	if (ra && *ra && strlen(ra) < 64 && !strpbrk(ra, "\r\n"))
		return set_header(sr, "Retry-After", ra);
	return 0;
}

static int resolve_one(const struct zw_bodies *b, const char *ns, struct zw_static_response *sr)
{
	char key[CM_KEY_LEN];
	const json_t *entry, *data;
	const char *k;
	json_t *v;
	size_t n, i = 0;

	if (!sr_needs(sr))
		return 0;
	cm_key(key, ns, sr->body_configmap);
	entry = json_object_get(b->map, key);
	data = json_object_get(entry, "data");
	if (!entry || (!sr->waiting_page && !json_is_true(json_object_get(entry, "labelled")))) {
		sr->configmap_state = ZW_CM_MISSING;
		return 0;
	}
	sr->configmap_state = ZW_CM_FOUND;
	/* With an explicit key only that value is kept; a key derived from
	 * the path needs them all (sorted by key for zw_bodies_select). */
	n = sr->body_configmap_key ? (json_object_get(data, sr->body_configmap_key) ? 1 : 0)
	                           : json_object_size(data);
	if (n) {
		const char **keys = calloc(n, sizeof(char *));
		sr->file_keys = calloc(n, sizeof(char *));
		sr->file_values = calloc(n, sizeof(char *));
		if (!keys || !sr->file_keys || !sr->file_values) {
			free(keys);
			return -ENOMEM;
		}
		if (sr->body_configmap_key)
			keys[i++] = sr->body_configmap_key;
		else
			json_object_foreach((json_t *)data, k, v)
			{
				keys[i++] = k;
			}
		qsort(keys, n, sizeof(char *), cmp_str);
		for (i = 0; i < n; i++) {
			sr->file_keys[i] = strdup(keys[i]);
			sr->file_values[i] =
			        strdup(json_string_value(json_object_get(data, keys[i])));
			sr->n_files = i + 1;
			if (!sr->file_keys[i] || !sr->file_values[i]) {
				free(keys);
				return -ENOMEM;
			}
		}
		free(keys);
	}
	return sr->waiting_page ? waiting_page_keys(sr, data) : 0;
}

int zw_bodies_resolve(const struct zw_bodies *b, struct zw_target *t)
{
	int rc;

	if (t->has_placeholder && (rc = resolve_one(b, t->namespace, &t->placeholder)) < 0)
		return rc;
	for (size_t i = 0; i < t->n_static_routes; i++)
		if ((rc = resolve_one(b, t->namespace, &t->static_routes[i].response)) < 0)
			return rc;
	return 0;
}

/* ---- request time ---- */

static const char *find_file(const struct zw_static_response *p, const char *key)
{
	size_t lo = 0, hi = p->n_files;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int c = strcmp(p->file_keys[mid], key);
		if (c == 0)
			return p->file_values[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

static const char *ctype_of(const char *key)
{
	static const struct {
		const char *ext, *type;
	} types[] = {
	        {"html", "text/html; charset=utf-8"},
	        {"htm", "text/html; charset=utf-8"},
	        {"css", "text/css; charset=utf-8"},
	        {"js", "text/javascript; charset=utf-8"},
	        {"mjs", "text/javascript; charset=utf-8"},
	        {"json", "application/json"},
	        {"txt", "text/plain; charset=utf-8"},
	        {"xml", "application/xml"},
	        {"svg", "image/svg+xml"},
	        {"md", "text/markdown; charset=utf-8"},
	        {"csv", "text/csv; charset=utf-8"},
	};
	const char *dot = strrchr(key, '.');

	if (!dot)
		return NULL;
	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
		if (strcasecmp(dot + 1, types[i].ext) == 0)
			return types[i].type;
	return "application/octet-stream";
}

/* The ConfigMap key a request path names: the path without its leading
 * "/", query and fragment; "" is index.html. 0 when it cannot be a key
 * (ConfigMap keys are [-._a-zA-Z0-9]+). */
static int derive_key(const char *path, size_t plen, char *key, size_t len)
{
	size_t n = 0;

	if (plen && path[0] == '/') {
		path++;
		plen--;
	}
	while (n < plen && path[n] != '?' && path[n] != '#')
		n++;
	if (n == 0) {
		snprintf(key, len, "index.html");
		return 1;
	}
	if (n >= len)
		return 0;
	for (size_t i = 0; i < n; i++) {
		char ch = path[i];
		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		      (ch >= '0' && ch <= '9') || ch == '-' || ch == '_' || ch == '.'))
			return 0;
		key[i] = ch;
	}
	key[n] = '\0';
	return strcmp(key, ".") != 0 && strcmp(key, "..") != 0;
}

static void choose(struct zw_body_choice *out, int status, const char *body)
{
	out->status = status;
	out->body = body;
	out->len = strlen(body);
	out->ctype = status ? "text/plain; charset=utf-8" : NULL;
}

void zw_bodies_select(const struct zw_static_response *p, const char *path, size_t plen,
                      struct zw_body_choice *out)
{
	char key[ZW_BODIES_MAX_KEY + 1];
	const char *v;

	memset(out, 0, sizeof(*out));
	if (!p->body_configmap) {
		out->body = p->body;
		out->len = p->body ? strlen(p->body) : 0;
		return;
	}
	if (p->configmap_state != ZW_CM_FOUND) {
		if (p->waiting_page)
			choose(out, 0, ZW_WAITING_PAGE_BODY);
		else
			choose(out, 500,
			       "zerowire: the response body's ConfigMap is missing (or lacks "
			       "the label " ZW_RESPONSE_BODY_LABEL "=true)\n");
		return;
	}
	if (p->body_configmap_key) {
		v = find_file(p, p->body_configmap_key);
		if (v) {
			out->body = v;
			out->len = strlen(v);
			if (!p->waiting_page)
				out->ctype = ctype_of(p->body_configmap_key);
		} else if (p->waiting_page) {
			choose(out, 0, ZW_WAITING_PAGE_BODY);
		} else {
			choose(out, 500, "zerowire: the response body's ConfigMap lacks its key\n");
		}
		return;
	}
	if (!derive_key(path, plen, key, sizeof(key)) || !(v = find_file(p, key))) {
		choose(out, 404, "zerowire: no such page\n");
		return;
	}
	out->body = v;
	out->len = strlen(v);
	out->ctype = ctype_of(key);
}
