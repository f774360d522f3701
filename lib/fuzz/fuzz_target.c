/* libFuzzer target: the target parsers (lib/target*.c). The input is YAML;
 * every document goes through zw_target_parse_object, and every target it
 * yields is deep-copied, keyed and freed. Nothing may crash, leak or loop,
 * a parse either succeeds or leaves a message, and a copy keys as the
 * original does. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "target.h"
#include "yamljson.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Copies t, compares the keys of original and copy, frees the copy. */
static void check_copy(const struct zw_target *t)
{
	char a[512], b[512];
	struct zw_target copy;

	if (zw_target_copy(&copy, t) != ZW_TARGET_OK)
		return;
	zw_target_key(t, a, sizeof(a));
	zw_target_key(&copy, b, sizeof(b));
	if (strcmp(a, b) != 0 || copy.n_rules != t->n_rules ||
	    copy.n_static_routes != t->n_static_routes)
		abort();
	zw_target_free(&copy);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char yerr[256], err[ZW_TARGET_ERRLEN];
	json_t *docs = NULL, *doc;
	size_t i;

	if (zw_yaml_load((const char *)data, size, &docs, yerr, sizeof(yerr)) < 0)
		return 0;
	json_array_foreach(docs, i, doc)
	{
		struct zw_target *ts = NULL;
		size_t n = 0;
		int rc = zw_target_parse_object(doc, &ts, &n, err);

		if (rc == ZW_TARGET_EINVAL && !err[0])
			abort(); /* an invalid object always gets a message */
		for (size_t k = 0; rc == ZW_TARGET_OK && k < n; k++)
			check_copy(&ts[k]);
		zw_target_array_free(ts, n);
	}
	json_decref(docs);
	return 0;
}
