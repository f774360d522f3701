/* Test tool: prints the webhook rules the chart must register for a
 * --kinds value (zw_autowire_parse words), from the kind table
 * (routekinds.h), one "group version resource" line per triple.
 * usage: tool_routekinds KINDS */
#include "routekinds.h"
#include "target.h"

#include <stdio.h>

int main(int argc, char **argv)
{
	unsigned bits;

	if (argc != 2 || zw_autowire_parse(argv[1], &bits) < 0) {
		fprintf(stderr, "usage: tool_routekinds KINDS\n");
		return 2;
	}
	for (size_t i = 0; i < zw_route_kinds_count; i++) {
		const struct zw_route_kind *k = &zw_route_kinds[i];
		if (!(k->roles & ZW_RK_ADMIT) || (k->autowire && !(k->autowire & bits)))
			continue;
		for (size_t v = 0; v < ZW_RK_MAX_VERSIONS && k->versions[v]; v++)
			printf("%s %s %s\n", k->group, k->versions[v], k->resource);
	}
	return 0;
}
