/* Kubernetes object accessors (see kobj.h). */
#include "kobj.h"

const char *zw_kobj_str(const json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));

	return s ? s : "";
}

const char *zw_kobj_meta(const json_t *obj, const char *key)
{
	return zw_kobj_str(json_object_get(obj, "metadata"), key);
}

const char *zw_kobj_label(const json_t *obj, const char *key)
{
	return zw_kobj_str(json_object_get(json_object_get(obj, "metadata"), "labels"), key);
}

const char *zw_kobj_annotation(const json_t *obj, const char *key)
{
	return zw_kobj_str(json_object_get(json_object_get(obj, "metadata"), "annotations"), key);
}
