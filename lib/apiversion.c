/* apiVersion splitting (see apiversion.h). */
#include "apiversion.h"

#include <errno.h>
#include <string.h>

int zw_api_version_split(const char *av, size_t *group_len, const char **version)
{
	const char *slash;

	if (!av)
		return -EINVAL;
	slash = strchr(av, '/');
	*group_len = slash ? (size_t)(slash - av) : 0; /* set even on error */
	*version = slash ? slash + 1 : av;
	return **version ? 0 : -EINVAL;
}

bool zw_api_group_is(const char *av, const char *group, const char **version)
{
	size_t gl;
	const char *v;

	if (!av)
		return false;
	(void)zw_api_version_split(av, &gl, &v); /* an empty version still has a group */
	if (gl != strlen(group) || strncmp(av, group, gl) != 0)
		return false;
	if (version)
		*version = v;
	return true;
}
