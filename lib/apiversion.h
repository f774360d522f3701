/* Kubernetes apiVersion strings: "group/version", or "version" alone for
 * the core group (group ""). The one splitter of every program. */
#ifndef ZW_APIVERSION_H
#define ZW_APIVERSION_H

#include <stdbool.h>
#include <stddef.h>

/* Splits av (borrowed) without copying: *group_len bytes at av are the
 * group (0 for core), *version points into av. Returns 0, or -EINVAL when
 * av is NULL or its version is empty. */
int zw_api_version_split(const char *av, size_t *group_len, const char **version);

/* True when av's group is exactly group ("" for core), whatever the
 * version (even empty); then *version (when version is not NULL) points
 * into av. False for a NULL av. */
bool zw_api_group_is(const char *av, const char *group, const char **version);

#endif
