/* zerowire-webhook watched objects: typed snapshot lists (see watched.h). */
#include "watched.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>

int zw_watched_add(struct zw_watched_list *l, json_t *obj, const char *version,
                   const struct zw_route_kind *rk)
{
	struct zw_watched w = {.obj = obj, .version = version, .rk = rk};

	if (zw_buf_append(&l->items, &w, sizeof(w), SIZE_MAX) < 0)
		return -ENOMEM;
	json_incref(obj);
	return 0;
}

size_t zw_watched_count(const struct zw_watched_list *l)
{
	return l->items.len / sizeof(struct zw_watched);
}

const struct zw_watched *zw_watched_at(const struct zw_watched_list *l, size_t i)
{
	return (const struct zw_watched *)l->items.data + i;
}

void zw_watched_clear(struct zw_watched_list *l)
{
	for (size_t i = 0; i < zw_watched_count(l); i++)
		json_decref(zw_watched_at(l, i)->obj);
	zw_buf_free(&l->items);
	l->version = NULL;
}
