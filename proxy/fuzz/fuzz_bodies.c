/* libFuzzer target: ConfigMap response bodies (bodies.c).
 *
 * The input is split at NUL bytes: the first piece picks the mode (explicit
 * key or derived, labelled or not, Kedify waiting page), then pairs of
 * pieces are ConfigMap data keys and values, and the last piece is the
 * request path. The ConfigMap is applied, a target resolved against it and
 * the body selected for the path; the choice must be one of the data values
 * (for the key the path names, or the explicit key) or one of the module's
 * own answers, and a copy of the resolved target must free cleanly. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bodies.h"

#define MAX_PIECES 16

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *buf = malloc(size + 1), *pieces[MAX_PIECES];
	size_t n = 0;
	struct zw_bodies *b = NULL;
	struct zw_target t, copy;
	struct zw_body_choice c;
	json_t *cm = NULL, *d;

	if (!buf)
		return 0;
	memcpy(buf, data, size);
	buf[size] = '\0';
	for (char *p = buf; n < MAX_PIECES;) {
		pieces[n++] = p;
		char *z = memchr(p, '\0', (size_t)(buf + size - p));
		if (!z || z == buf + size)
			break;
		p = z + 1;
	}
	if (n < 2 || zw_bodies_new(&b) != 0)
		goto out;
	unsigned mode = (unsigned char)pieces[0][0];
	bool explicit_key = mode & 1, labelled = mode & 2, waiting = mode & 4;
	d = json_object();
	for (size_t i = 1; i + 2 < n; i += 2) /* the last piece is the path */
		json_object_set_new(d, pieces[i], json_string(pieces[i + 1]));
	cm = json_pack("{s:s, s:s, s:{s:s, s:s, s:{s:s}}, s:o}", "apiVersion", "v1", "kind",
	               "ConfigMap", "metadata", "name", "page", "namespace", "ns", "labels",
	               ZW_RESPONSE_BODY_LABEL, labelled ? "true" : "no", "data", d);
	if (!cm || zw_bodies_apply(b, cm, false) < 0)
		goto out;
	memset(&t, 0, sizeof(t));
	t.namespace = strdup("ns");
	t.name = strdup("app");
	t.has_placeholder = true;
	t.placeholder.status = 503;
	t.placeholder.body_configmap = strdup("page");
	t.placeholder.waiting_page = waiting;
	if (explicit_key && n > 2)
		t.placeholder.body_configmap_key = strdup(pieces[1]);
	if (zw_bodies_resolve(b, &t) == 0 && zw_target_copy(&copy, &t) == 0) {
		const char *path = pieces[n - 1];
		zw_bodies_select(&copy.placeholder, path, strlen(path), &c);
		if (c.status != 0 && c.status != 404 && c.status != 500)
			abort();
		if (c.len && !c.body)
			abort();
		if (c.status == 0 && c.body && strcmp(c.body, ZW_WAITING_PAGE_BODY) != 0) {
			/* it must be one of the data's values */
			bool found = false;
			const char *k;
			json_t *v;
			json_object_foreach(json_object_get(cm, "data"), k, v)
			{
				if (strcmp(json_string_value(v), c.body) == 0)
					found = true;
			}
			if (!found || strlen(c.body) != c.len)
				abort();
		}
		zw_target_free(&copy);
	}
	zw_target_free(&t);
	zw_bodies_forget(b, "ns", "page");
out:
	json_decref(cm);
	zw_bodies_free(b);
	free(buf);
	return 0;
}
