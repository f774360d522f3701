/* An intrusive hash table keyed by strings: the elements carry a
 * `struct zw_strmap_node` (key pointer, cached hash, chain link), the map
 * keeps only the bucket array, which doubles once it holds as many
 * elements as buckets. Nothing is allocated per element. The one table of
 * both programs (endpoints, hold queues, per-target metrics, ...); the hash
 * is lib/hash.h's.
 *
 * Keys are borrowed: the string a node was put with must stay unchanged
 * while the node is in the map (usually it lives in the element itself).
 * One map belongs to one thread at a time (callers lock). A zeroed struct is
 * an empty map. */
#ifndef ZW_STRMAP_H
#define ZW_STRMAP_H

#include <stddef.h>
#include <stdint.h>

#define ZW_STRMAP_MIN_BUCKETS 16
#define ZW_STRMAP_ENOMEM      (-1)

struct zw_strmap_node {
	struct zw_strmap_node *next; /* bucket chain */
	const char *key;             /* borrowed */
	uint64_t hash;
};

struct zw_strmap {
	struct zw_strmap_node **b; /* owned; cap buckets (a power of two) or NULL */
	size_t cap, n;
};

/* The element of type `type` whose member `member` is node n. */
#define ZW_STRMAP_ENTRY(n, type, member) ((type *)(void *)((char *)(n)-offsetof(type, member)))

/* Pre-sizes m for n elements (buckets >= n). Returns 0 or ZW_STRMAP_ENOMEM
 * (m unchanged). */
int zw_strmap_reserve(struct zw_strmap *m, size_t n);

/* Puts node (not in any map; owned by the caller, as is key, which must
 * outlive its membership) under key. The caller makes sure key is not in m
 * yet (zw_strmap_get first). Returns 0 or ZW_STRMAP_ENOMEM (node not
 * put). */
int zw_strmap_put(struct zw_strmap *m, struct zw_strmap_node *node, const char *key);

/* The node put under key (borrowed), or NULL. */
struct zw_strmap_node *zw_strmap_get(const struct zw_strmap *m, const char *key);

/* Takes node (which must be in m) out of m. */
void zw_strmap_remove(struct zw_strmap *m, struct zw_strmap_node *node);

/* Takes the node under key out of m and returns it (the caller's again),
 * or NULL when there is none. */
struct zw_strmap_node *zw_strmap_del(struct zw_strmap *m, const char *key);

/* Calls fn(node, ctx) on every node, in no particular order. fn may remove
 * (and free) the node it is given, nothing else. */
void zw_strmap_each(struct zw_strmap *m, void (*fn)(struct zw_strmap_node *node, void *ctx),
                    void *ctx);

/* Frees m's bucket array and empties m; the nodes are the caller's (free
 * them first, e.g. with zw_strmap_each). NULL-safe. */
void zw_strmap_free(struct zw_strmap *m);

#endif
