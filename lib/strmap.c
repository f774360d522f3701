/* Intrusive string-keyed hash table; see strmap.h. */
#include "strmap.h"

#include "hash.h"

#include <stdlib.h>
#include <string.h>

/* FNV-1a's low bits alone spread short keys that differ at the end poorly
 * over a power-of-two table: fold the high bits in. */
static uint64_t key_hash(const char *key)
{
	uint64_t h = zw_hash_str(key);
	return h ^ (h >> 31);
}

/* Moves every node of m into a table of cap buckets (a power of two). */
static int rehash(struct zw_strmap *m, size_t cap)
{
	struct zw_strmap_node **nb = calloc(cap, sizeof(*nb));
	if (!nb)
		return ZW_STRMAP_ENOMEM;
	for (size_t i = 0; i < m->cap; i++) {
		struct zw_strmap_node *n = m->b[i];
		while (n) {
			struct zw_strmap_node *next = n->next;
			size_t j = n->hash & (cap - 1);
			n->next = nb[j];
			nb[j] = n;
			n = next;
		}
	}
	free(m->b);
	m->b = nb;
	m->cap = cap;
	return 0;
}

int zw_strmap_reserve(struct zw_strmap *m, size_t n)
{
	size_t cap = m->cap ? m->cap : ZW_STRMAP_MIN_BUCKETS;
	while (cap < n) {
		if (cap > SIZE_MAX / 2 / sizeof(*m->b))
			return ZW_STRMAP_ENOMEM;
		cap *= 2;
	}
	return cap == m->cap ? 0 : rehash(m, cap);
}

int zw_strmap_put(struct zw_strmap *m, struct zw_strmap_node *node, const char *key)
{
	if (m->n + 1 > m->cap && zw_strmap_reserve(m, m->n + 1) < 0)
		return ZW_STRMAP_ENOMEM;
	node->key = key;
	node->hash = key_hash(key);
	size_t j = node->hash & (m->cap - 1);
	node->next = m->b[j];
	m->b[j] = node;
	m->n++;
	return 0;
}

struct zw_strmap_node *zw_strmap_get(const struct zw_strmap *m, const char *key)
{
	if (!m->cap)
		return NULL;
	uint64_t h = key_hash(key);
	for (struct zw_strmap_node *n = m->b[h & (m->cap - 1)]; n; n = n->next)
		if (n->hash == h && strcmp(n->key, key) == 0)
			return n;
	return NULL;
}

void zw_strmap_remove(struct zw_strmap *m, struct zw_strmap_node *node)
{
	for (struct zw_strmap_node **pp = &m->b[node->hash & (m->cap - 1)]; *pp;
	     pp = &(*pp)->next) {
		if (*pp == node) {
			*pp = node->next;
			node->next = NULL;
			m->n--;
			return;
		}
	}
}

struct zw_strmap_node *zw_strmap_del(struct zw_strmap *m, const char *key)
{
	struct zw_strmap_node *n = zw_strmap_get(m, key);
	if (n)
		zw_strmap_remove(m, n);
	return n;
}

void zw_strmap_each(struct zw_strmap *m, void (*fn)(struct zw_strmap_node *node, void *ctx),
                    void *ctx)
{
	for (size_t i = 0; i < m->cap; i++) {
		struct zw_strmap_node *n = m->b[i];
		while (n) {
			struct zw_strmap_node *next = n->next;
			fn(n, ctx);
			n = next;
		}
	}
}

void zw_strmap_free(struct zw_strmap *m)
{
	if (!m)
		return;
	free(m->b);
	m->b = NULL;
	m->cap = m->n = 0;
}
