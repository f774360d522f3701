/* Body budget and connection table of the webhook server; see reslimits.h. */
#include "reslimits.h"

#include <errno.h>
#include <stdlib.h>

void zw_budget_init(struct zw_budget *b, size_t cap)
{
	atomic_init(&b->used, 0);
	b->cap = cap;
}

int zw_budget_take(struct zw_budget *b, size_t n)
{
	size_t cur = atomic_load(&b->used);

	do {
		if (n > b->cap || cur > b->cap - n)
			return -EAGAIN;
	} while (!atomic_compare_exchange_weak(&b->used, &cur, cur + n));
	return 0;
}

void zw_budget_give(struct zw_budget *b, size_t n)
{
	atomic_fetch_sub(&b->used, n);
}

size_t zw_budget_used(struct zw_budget *b)
{
	return atomic_load(&b->used);
}

int zw_conntab_init(struct zw_conntab *t, size_t cap)
{
	t->v = calloc(cap, sizeof(*t->v));
	t->n = 0;
	t->live = 0;
	t->cap = t->v ? cap : 0;
	return t->v ? 0 : -ENOMEM;
}

void zw_conntab_free(struct zw_conntab *t)
{
	free(t->v);
	t->v = NULL;
	t->n = t->cap = t->live = 0;
}

int zw_conntab_add(struct zw_conntab *t, struct zw_conn *c, int64_t now_ms, int64_t deadline_ms)
{
	if (t->n == t->cap)
		return -ENOSPC;
	c->phase = ZW_CONN_NEW;
	c->since_ms = now_ms;
	c->deadline_ms = deadline_ms;
	c->slot = t->n;
	t->v[t->n++] = c;
	t->live++;
	return 0;
}

void zw_conntab_remove(struct zw_conntab *t, struct zw_conn *c)
{
	struct zw_conn *last = t->v[--t->n];

	if (c->phase != ZW_CONN_CLOSING)
		t->live--;
	t->v[c->slot] = last;
	last->slot = c->slot;
}

void zw_conntab_set(struct zw_conntab *t, struct zw_conn *c, enum zw_conn_phase p, int64_t now_ms,
                    int64_t deadline_ms)
{
	if (c->phase == ZW_CONN_CLOSING)
		return;
	if (p == ZW_CONN_CLOSING)
		t->live--;
	c->phase = p;
	c->since_ms = now_ms;
	c->deadline_ms = deadline_ms;
}

/* Eviction order of a phase: lower goes first; -1 never. */
static int evict_rank(enum zw_conn_phase p)
{
	switch (p) {
	case ZW_CONN_IDLE:
		return 0;
	case ZW_CONN_NEW:
		return 1;
	case ZW_CONN_READING:
		return 2;
	default:
		return -1;
	}
}

struct zw_conn *zw_conntab_victim(const struct zw_conntab *t)
{
	struct zw_conn *best = NULL;
	int best_rank = 0;

	for (size_t i = 0; i < t->n; i++) {
		struct zw_conn *c = t->v[i];
		int r = evict_rank(c->phase);
		if (r < 0)
			continue;
		if (!best || r < best_rank || (r == best_rank && c->since_ms < best->since_ms)) {
			best = c;
			best_rank = r;
		}
	}
	return best;
}

struct zw_conn *zw_conntab_expired(const struct zw_conntab *t, int64_t now_ms)
{
	for (size_t i = 0; i < t->n; i++) {
		struct zw_conn *c = t->v[i];
		if (c->phase != ZW_CONN_CLOSING && c->deadline_ms != 0 && now_ms >= c->deadline_ms)
			return c;
	}
	return NULL;
}
