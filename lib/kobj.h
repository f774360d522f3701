/* Kubernetes object accessors: read a string member, a metadata field, a
 * label or an annotation of a decoded object (jansson), with "" for every
 * absence, so that callers compare without NULL tests. */
#ifndef ZW_KOBJ_H
#define ZW_KOBJ_H

#include <jansson.h>

/* Returns the string member key of object o (borrowed, lives as long as o),
 * or "" when o is not an object or the member is absent or no string. */
const char *zw_kobj_str(const json_t *o, const char *key);

/* Returns metadata.<key> of obj (borrowed), or "". */
const char *zw_kobj_meta(const json_t *obj, const char *key);

/* Returns metadata.labels.<key> of obj (borrowed), or "". */
const char *zw_kobj_label(const json_t *obj, const char *key);

/* Returns metadata.annotations.<key> of obj (borrowed), or "". */
const char *zw_kobj_annotation(const json_t *obj, const char *key);

#endif
