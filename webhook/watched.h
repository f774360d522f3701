/* zerowire-webhook watched objects: the typed snapshot a reconciler pass
 * works on. One list per role (routes, ReferenceGrants, alias Services,
 * ...), each entry an object as the watch delivered it, the version it was
 * read at and its kind (routekinds.h). */
#ifndef ZW_WATCHED_H
#define ZW_WATCHED_H

#include "buf.h"
#include "routekinds.h"

#include <jansson.h>
#include <stddef.h>

struct zw_watched {
	json_t *obj;                    /* one reference, the list's */
	const char *version;            /* static (routekinds.h) */
	const struct zw_route_kind *rk; /* static */
};

struct zw_watched_list {
	struct zw_buf items; /* struct zw_watched[] */
	/* Version the role is watched at (static), NULL while not served. */
	const char *version;
};

/* Appends obj (a new reference is taken) read at version (static) of kind
 * rk (static) to l. Returns 0 or -ENOMEM (l unchanged). */
int zw_watched_add(struct zw_watched_list *l, json_t *obj, const char *version,
                   const struct zw_route_kind *rk);

/* Returns the number of entries of l. */
size_t zw_watched_count(const struct zw_watched_list *l);

/* Returns entry i (< zw_watched_count) of l, borrowed from l. */
const struct zw_watched *zw_watched_at(const struct zw_watched_list *l, size_t i);

/* Drops every reference l holds and empties it (a zeroed list is empty). */
void zw_watched_clear(struct zw_watched_list *l);

#endif
