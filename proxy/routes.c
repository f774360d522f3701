/* zerowire-proxy routing table (see routes.h and docs/routing.md).
 *
 * Layout of a built table:
 *   - targets[]: deep copies, sorted by key;
 *   - host nodes: one per distinct exact host, one per wildcard suffix
 *     ("*.b.c" is stored under "b.c"), one for the catch-all; each knows the
 *     length of its longest path prefix so lookups skip longer candidates;
 *   - slots: one per (host node, path prefix), a range of entries[] sorted by
 *     the tie-break order, found through a hash map keyed by (node, prefix);
 *   - entries[]: (target, rule, static route) with precomputed tie-break
 *     counts. */
#include "routes.h"

#include "hash.h"

#include <ctype.h>
#include <errno.h>
#include <regex.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define HOST_BUF       (ZW_TARGET_MAX_HOST + 8)
#define NODE_NONE      UINT32_MAX
#define WILDCARD_SPACE 0x80000000u /* node-id tag separating wildcard keys from exact ones */

struct entry {
	uint32_t target;
	uint32_t rule;
	int32_t static_route; /* -1: ordinary rule */
	uint32_t n_headers;
	uint32_t n_exact;              /* exact-value matchers */
	uint32_t n_pattern;            /* wildcard / regex matchers */
	const struct zw_route_rule *r; /* owned by targets[target] */
	const char *host;              /* host pattern (owned by the target copy, or "*") */
	const char *prefix;            /* path prefix (owned by the target copy, or "/") */
};

struct node {
	size_t max_prefix; /* longest prefix length under this node */
};

struct slot {
	uint32_t first; /* index into entries */
	uint32_t count;
};

/* Open-addressing map from (tag, string) to a 32-bit value. Keys are
 * borrowed from the table's own copies. */
struct hent {
	uint64_t hash;
	const char *key;
	uint32_t len;
	uint32_t tag;
	uint32_t value;
	uint32_t used;
};

struct hmap {
	struct hent *v;
	size_t cap; /* power of two, 0 when empty */
	size_t n;
};

struct zw_route_table {
	_Atomic long refs;
	struct zw_target *targets;
	char **keys;
	size_t n_targets;
	struct entry *entries;
	size_t n_entries;
	struct slot *slots;
	size_t n_slots;
	struct node *nodes;
	size_t n_nodes;
	struct hmap hosts; /* tag 0: exact host -> node; tag WILDCARD_SPACE: suffix -> node */
	struct hmap paths; /* tag node id: prefix -> slot */
	uint32_t catchall; /* node id or NODE_NONE */
	/* Distinct healthcheckPathPrefix values (pathEmbeddedHost probes),
	 * borrowed from targets[]. */
	const char **probe_prefixes;
	size_t n_probe_prefixes;
};

static const char root_path[] = "/";
static const char star_host[] = "*";

/* FNV-1a over (tag, bytes), lower-casing ASCII when fold is set. */
static uint64_t hash_key(uint32_t tag, const char *s, size_t len)
{
	const unsigned char t[4] = {tag & 0xff, (tag >> 8) & 0xff, (tag >> 16) & 0xff, tag >> 24};
	uint64_t h = zw_hash_bytes(zw_hash_bytes(ZW_HASH_INIT, t, sizeof(t)), s, len);
	/* final mix so the low bits (the bucket) depend on every byte */
	h ^= h >> 29;
	h *= 0xbf58476d1ce4e5b9ull;
	h ^= h >> 32;
	return h;
}

static int hmap_grow(struct hmap *m)
{
	size_t ncap = m->cap ? m->cap * 2 : 16;
	struct hent *nv = calloc(ncap, sizeof(*nv));
	if (!nv)
		return ZW_ROUTE_ENOMEM;
	for (size_t i = 0; i < m->cap; i++) {
		if (!m->v[i].used)
			continue;
		size_t j = m->v[i].hash & (ncap - 1);
		while (nv[j].used)
			j = (j + 1) & (ncap - 1);
		nv[j] = m->v[i];
	}
	free(m->v);
	m->v = nv;
	m->cap = ncap;
	return 0;
}

static const struct hent *hmap_find(const struct hmap *m, uint32_t tag, const char *key, size_t len)
{
	if (!m->cap)
		return NULL;
	uint64_t h = hash_key(tag, key, len);
	for (size_t j = h & (m->cap - 1);; j = (j + 1) & (m->cap - 1)) {
		const struct hent *e = &m->v[j];
		if (!e->used)
			return NULL;
		if (e->hash == h && e->tag == tag && e->len == len && memcmp(e->key, key, len) == 0)
			return e;
	}
}

/* Inserts (tag, key) -> value unless present. *existing gets the stored
 * value. Returns 1 when inserted, 0 when it existed, or ZW_ROUTE_ENOMEM. */
static int hmap_put(struct hmap *m, uint32_t tag, const char *key, size_t len, uint32_t value,
                    uint32_t *existing)
{
	const struct hent *f = hmap_find(m, tag, key, len);
	if (f) {
		*existing = f->value;
		return 0;
	}
	if ((m->n + 1) * 4 > m->cap * 3 && hmap_grow(m) < 0)
		return ZW_ROUTE_ENOMEM;
	uint64_t h = hash_key(tag, key, len);
	size_t j = h & (m->cap - 1);
	while (m->v[j].used)
		j = (j + 1) & (m->cap - 1);
	m->v[j] = (struct hent){h, key, (uint32_t)len, tag, value, 1};
	m->n++;
	*existing = value;
	return 1;
}

/* Normalizes a Host header value into buf: strips the port (and for
 * bracketed IPv6 keeps the brackets), a trailing dot, surrounding blanks,
 * and lower-cases. Returns the length, or -1 when it does not fit. */
static long host_norm(const char *host, size_t len, char *buf, size_t cap)
{
	while (len && (host[0] == ' ' || host[0] == '\t')) {
		host++;
		len--;
	}
	while (len && (host[len - 1] == ' ' || host[len - 1] == '\t'))
		len--;
	size_t end = len;
	if (len && host[0] == '[') {
		const char *rb = memchr(host, ']', len);
		if (rb)
			end = (size_t)(rb - host) + 1;
	} else {
		const char *colon = memchr(host, ':', len);
		if (colon)
			end = (size_t)(colon - host);
	}
	if (end && host[end - 1] == '.')
		end--;
	if (end >= cap)
		return -1;
	for (size_t i = 0; i < end; i++) {
		char c = host[i];
		buf[i] = (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
	}
	buf[end] = '\0';
	return (long)end;
}

size_t zw_route_host_normalize(const char *host, size_t host_len, char *buf, size_t len)
{
	if (!buf || !len)
		return 0;
	char tmp[HOST_BUF];
	long n = host ? host_norm(host, host_len, tmp, sizeof(tmp)) : 0;
	if (n < 0) {
		/* too long to route: show a truncated raw copy */
		size_t k = host_len < len - 1 ? host_len : len - 1;
		memcpy(buf, host, k);
		buf[k] = '\0';
		return k;
	}
	size_t k = (size_t)n < len - 1 ? (size_t)n : len - 1;
	memcpy(buf, tmp, k);
	buf[k] = '\0';
	return k;
}

/* ---- building ---- */

static int cmp_str_null_last(const char *a, const char *b)
{
	if (!a || !b)
		return (!a) - (!b);
	return strcmp(a, b);
}

/* Raw entry during the build: the (node, prefix) key plus the entry. */
struct raw {
	uint32_t node;
	const char *prefix;
	struct entry e;
	const struct zw_target *t;
};

static int raw_cmp(const void *pa, const void *pb)
{
	const struct raw *a = pa, *b = pb;
	if (a->node != b->node)
		return a->node < b->node ? -1 : 1;
	int c = strcmp(a->prefix, b->prefix);
	if (c)
		return c;
	/* tie-break order */
	int as = a->e.static_route >= 0, bs = b->e.static_route >= 0;
	if (as != bs)
		return bs - as;
	if (a->e.n_headers != b->e.n_headers)
		return a->e.n_headers > b->e.n_headers ? -1 : 1;
	if (a->e.n_exact != b->e.n_exact)
		return a->e.n_exact > b->e.n_exact ? -1 : 1;
	if (a->e.n_pattern != b->e.n_pattern)
		return a->e.n_pattern > b->e.n_pattern ? -1 : 1;
	c = cmp_str_null_last(a->t->creation_timestamp, b->t->creation_timestamp);
	if (c)
		return c;
	if (a->e.target != b->e.target)
		return a->e.target < b->e.target ? -1 : 1; /* targets are sorted by key */
	if (a->e.static_route != b->e.static_route)
		return a->e.static_route < b->e.static_route ? -1 : 1;
	if (a->e.rule != b->e.rule)
		return a->e.rule < b->e.rule ? -1 : 1;
	return 0;
}

static int idx_cmp(const void *pa, const void *pb, void *arg)
{
	char **keys = arg;
	size_t a = *(const size_t *)pa, b = *(const size_t *)pb;
	int c = strcmp(keys[a], keys[b]);
	if (c)
		return c;
	return a < b ? -1 : a > b;
}

/* Lower-cases a host pattern in place (the target parser already does; the
 * table must not depend on it). */
static void lower_in_place(char *s)
{
	for (; *s; s++)
		if (*s >= 'A' && *s <= 'Z')
			*s = (char)(*s - 'A' + 'a');
}

struct builder {
	struct zw_route_table *t;
	struct raw *raw;
	size_t n_raw, cap_raw;
};

static int node_for_host(struct builder *b, const char *host, uint32_t *node_out)
{
	struct zw_route_table *t = b->t;
	uint32_t tag = 0;
	const char *key = host;
	if (host[0] == '*' && host[1] == '\0') {
		if (t->catchall == NODE_NONE)
			t->catchall = (uint32_t)t->n_nodes++;
		*node_out = t->catchall;
		return 0;
	}
	if (host[0] == '*' && host[1] == '.') {
		tag = WILDCARD_SPACE;
		key = host + 2;
	}
	uint32_t id;
	int r = hmap_put(&t->hosts, tag, key, strlen(key), (uint32_t)t->n_nodes, &id);
	if (r < 0)
		return r;
	if (r == 1)
		t->n_nodes++;
	*node_out = id;
	return 0;
}

static int add_raw(struct builder *b, uint32_t node, const char *host, const char *prefix,
                   uint32_t target, uint32_t rule, int32_t static_route,
                   const struct zw_route_rule *r)
{
	if (b->n_raw == b->cap_raw) {
		size_t ncap = b->cap_raw ? b->cap_raw * 2 : 64;
		struct raw *nr = realloc(b->raw, ncap * sizeof(*nr));
		if (!nr)
			return ZW_ROUTE_ENOMEM;
		b->raw = nr;
		b->cap_raw = ncap;
	}
	uint32_t exact = 0, pattern = 0;
	for (size_t i = 0; i < r->n_headers; i++) {
		const struct zw_header_match *m = &r->headers[i];
		if (!m->value)
			continue;
		if (m->kind == ZW_HDR_WILDCARD || m->kind == ZW_HDR_REGEX)
			pattern++;
		else
			exact++;
	}
	b->raw[b->n_raw++] = (struct raw){
	        .node = node,
	        .prefix = prefix,
	        .e = {target, rule, static_route, (uint32_t)r->n_headers, exact, pattern, r, host,
	              prefix},
	        .t = &b->t->targets[target],
	};
	return 0;
}

static int add_rule(struct builder *b, uint32_t target, uint32_t rule, int32_t static_route,
                    const struct zw_route_rule *r)
{
	size_t nh = r->n_hosts ? r->n_hosts : 1;
	size_t np = r->n_paths ? r->n_paths : 1;
	for (size_t h = 0; h < nh; h++) {
		const char *host = r->n_hosts ? r->hosts[h] : star_host;
		if (!host || !host[0])
			host = star_host;
		uint32_t node;
		int rc = node_for_host(b, host, &node);
		if (rc < 0)
			return rc;
		for (size_t p = 0; p < np; p++) {
			const char *prefix = r->n_paths ? r->paths[p] : root_path;
			if (!prefix || !prefix[0])
				prefix = root_path;
			rc = add_raw(b, node, host, prefix, target, rule, static_route, r);
			if (rc < 0)
				return rc;
		}
	}
	return 0;
}

/* Normalizes a stored prefix in place: leading '/', no trailing '/'. The
 * target parser already does this; a table must stay correct without it. */
static void prefix_norm(char *p)
{
	size_t n = strlen(p);
	while (n > 1 && p[n - 1] == '/')
		p[--n] = '\0';
}

static void normalize_rule(struct zw_route_rule *r)
{
	for (size_t i = 0; i < r->n_hosts; i++)
		if (r->hosts[i])
			lower_in_place(r->hosts[i]);
	for (size_t i = 0; i < r->n_paths; i++)
		if (r->paths[i] && r->paths[i][0] == '/')
			prefix_norm(r->paths[i]);
}

static void table_free(struct zw_route_table *t)
{
	if (!t)
		return;
	for (size_t i = 0; i < t->n_targets; i++) {
		zw_target_free(&t->targets[i]);
		free(t->keys ? t->keys[i] : NULL);
	}
	free(t->targets);
	free(t->keys);
	free(t->probe_prefixes);
	free(t->entries);
	free(t->slots);
	free(t->nodes);
	free(t->hosts.v);
	free(t->paths.v);
	free(t);
}

int zw_route_table_build(const struct zw_target *targets, size_t n, struct zw_route_table **out)
{
	int rc = ZW_ROUTE_ENOMEM;
	struct builder b = {0};
	size_t *order = NULL;
	char **keys = NULL;
	if (!out || (n && !targets) || n > ZW_ROUTE_MAX_TARGETS)
		return ZW_ROUTE_EINVAL;
	*out = NULL;
	struct zw_route_table *t = calloc(1, sizeof(*t));
	if (!t)
		return ZW_ROUTE_ENOMEM;
	atomic_init(&t->refs, 1);
	t->catchall = NODE_NONE;
	b.t = t;

	/* copy the targets in key order */
	order = malloc((n ? n : 1) * sizeof(*order));
	keys = calloc(n ? n : 1, sizeof(*keys));
	t->targets = calloc(n ? n : 1, sizeof(*t->targets));
	t->keys = calloc(n ? n : 1, sizeof(*t->keys));
	if (!order || !keys || !t->targets || !t->keys)
		goto fail;
	for (size_t i = 0; i < n; i++) {
		char kb[1024];
		size_t kl = zw_target_key(&targets[i], kb, sizeof(kb));
		keys[i] = strndup(kb, kl);
		if (!keys[i])
			goto fail;
		order[i] = i;
	}
	qsort_r(order, n, sizeof(*order), idx_cmp, keys);
	for (size_t i = 0; i < n; i++) {
		if (zw_target_copy(&t->targets[i], &targets[order[i]]) != 0)
			goto fail;
		t->keys[i] = keys[order[i]];
		keys[order[i]] = NULL;
		t->n_targets = i + 1;
	}

	/* probe prefixes (few: usually one per installation) */
	for (size_t i = 0; i < n; i++) {
		const char *pp = t->targets[i].healthcheck_path_prefix;
		size_t k = 0;
		if (!pp || t->targets[i].healthcheck_response != ZW_HC_PATH_EMBEDDED_HOST)
			continue;
		while (k < t->n_probe_prefixes && strcmp(t->probe_prefixes[k], pp) != 0)
			k++;
		if (k < t->n_probe_prefixes)
			continue;
		const char **np = realloc(t->probe_prefixes,
		                          (t->n_probe_prefixes + 1) * sizeof(*t->probe_prefixes));
		if (!np)
			goto fail;
		t->probe_prefixes = np;
		t->probe_prefixes[t->n_probe_prefixes++] = pp;
	}

	/* entries */
	for (size_t i = 0; i < n; i++) {
		struct zw_target *tg = &t->targets[i];
		for (size_t r = 0; r < tg->n_rules; r++) {
			normalize_rule(&tg->rules[r]);
			rc = add_rule(&b, (uint32_t)i, (uint32_t)r, -1, &tg->rules[r]);
			if (rc < 0)
				goto fail;
		}
		for (size_t s = 0; s < tg->n_static_routes; s++) {
			struct zw_static_route *sr = &tg->static_routes[s];
			for (size_t r = 0; r < sr->n_rules; r++) {
				normalize_rule(&sr->rules[r]);
				rc = add_rule(&b, (uint32_t)i, (uint32_t)r, (int32_t)s,
				              &sr->rules[r]);
				if (rc < 0)
					goto fail;
			}
		}
	}
	rc = ZW_ROUTE_ENOMEM;
	if (b.n_raw > UINT32_MAX / 2) {
		rc = ZW_ROUTE_EINVAL;
		goto fail;
	}
	if (b.n_raw > 1)
		qsort(b.raw, b.n_raw, sizeof(*b.raw), raw_cmp);

	t->nodes = calloc(t->n_nodes ? t->n_nodes : 1, sizeof(*t->nodes));
	t->entries = malloc((b.n_raw ? b.n_raw : 1) * sizeof(*t->entries));
	t->slots = malloc((b.n_raw ? b.n_raw : 1) * sizeof(*t->slots));
	if (!t->nodes || !t->entries || !t->slots)
		goto fail;
	for (size_t i = 0; i < b.n_raw; i++) {
		struct raw *r = &b.raw[i];
		t->entries[i] = r->e;
		if (i && b.raw[i - 1].node == r->node &&
		    strcmp(b.raw[i - 1].prefix, r->prefix) == 0) {
			t->slots[t->n_slots - 1].count++;
			continue;
		}
		uint32_t existing;
		int pr = hmap_put(&t->paths, r->node, r->prefix, strlen(r->prefix),
		                  (uint32_t)t->n_slots, &existing);
		if (pr < 0)
			goto fail;
		t->slots[t->n_slots++] = (struct slot){(uint32_t)i, 1};
		size_t pl = strlen(r->prefix);
		if (pl > t->nodes[r->node].max_prefix)
			t->nodes[r->node].max_prefix = pl;
	}
	t->n_entries = b.n_raw;
	rc = ZW_ROUTE_OK;
	*out = t;
	t = NULL;
fail:
	for (size_t i = 0; keys && i < n; i++)
		free(keys[i]);
	free(keys);
	free(b.raw);
	free(order);
	table_free(t);
	return rc;
}

struct zw_route_table *zw_route_table_ref(struct zw_route_table *t)
{
	if (t)
		atomic_fetch_add_explicit(&t->refs, 1, memory_order_relaxed);
	return t;
}

void zw_route_table_unref(struct zw_route_table *t)
{
	if (!t)
		return;
	if (atomic_fetch_sub_explicit(&t->refs, 1, memory_order_acq_rel) == 1)
		table_free(t);
}

size_t zw_route_table_count(const struct zw_route_table *t)
{
	return t ? t->n_targets : 0;
}

size_t zw_route_table_entries(const struct zw_route_table *t)
{
	return t ? t->n_entries : 0;
}

const struct zw_target *zw_route_table_target(const struct zw_route_table *t, size_t i)
{
	return t && i < t->n_targets ? &t->targets[i] : NULL;
}

const char *zw_route_table_key(const struct zw_route_table *t, size_t i)
{
	return t && i < t->n_targets ? t->keys[i] : NULL;
}

int zw_route_table_find(const struct zw_route_table *t, const char *key, size_t *index_out)
{
	if (!t || !key)
		return ZW_ROUTE_ENOMATCH;
	/* targets are sorted by key (strcmp) */
	size_t lo = 0, hi = t->n_targets;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(t->keys[mid], key);
		if (c == 0) {
			if (index_out)
				*index_out = mid;
			return 0;
		}
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return ZW_ROUTE_ENOMATCH;
}

/* ---- lookup ---- */

static int value_eq(const char *v, size_t vl, const char *want)
{
	while (vl && (v[0] == ' ' || v[0] == '\t')) {
		v++;
		vl--;
	}
	while (vl && (v[vl - 1] == ' ' || v[vl - 1] == '\t'))
		vl--;
	size_t wl = strlen(want);
	return wl == vl && memcmp(v, want, vl) == 0;
}

static int headers_match(const struct zw_route_rule *r, const struct zw_route_headers *h)
{
	for (size_t i = 0; i < r->n_headers; i++) {
		const struct zw_header_match *m = &r->headers[i];
		if (!h->get)
			return 0;
		size_t nl = strlen(m->name);
		int ok = 0;
		for (size_t k = 0; k < ZW_ROUTE_MAX_HEADER_VALUES; k++) {
			const char *v = NULL;
			size_t vl = 0;
			if (h->get(h->ctx, m->name, nl, k, &v, &vl) != 1)
				break;
			if (!m->value ||
			    (m->kind == ZW_HDR_EXACT
			             ? value_eq(v ? v : "", v ? vl : 0, m->value)
			             : zw_header_match_value(m, v ? v : "", v ? vl : 0))) {
				ok = 1;
				break;
			}
		}
		if (!ok)
			return 0;
	}
	return 1;
}

/* True when entries a and b rank the same in the tie-break order before
 * creationTimestamp (neither a static route, as many matchers of each kind):
 * the ones the split header may choose between. */
static int same_rank(const struct entry *a, const struct entry *b)
{
	return a->static_route < 0 && b->static_route < 0 && a->n_headers == b->n_headers &&
	       a->n_exact == b->n_exact && a->n_pattern == b->n_pattern;
}

/* True when t's Service is "<namespace>/<name>" as given (v, vl bytes). */
static int is_service(const struct zw_target *t, const char *v, size_t vl)
{
	if (!t->service.namespace || !t->service.name)
		return 0;
	size_t nl = strlen(t->service.namespace);
	return vl == nl + 1 + strlen(t->service.name) && memcmp(v, t->service.namespace, nl) == 0 &&
	       v[nl] == '/' && memcmp(v + nl + 1, t->service.name, vl - nl - 1) == 0;
}

/* Tries one host node: candidates of the path from longest to shortest.
 * Returns 1 on a match (out filled), 0 otherwise; *stage records how far
 * it got (ZW_ROUTE_MISS_PATH / _HEADERS). */
static int try_node(const struct zw_route_table *t, uint32_t node, const char *path, size_t plen,
                    const struct zw_route_request *req, struct zw_route_match *out,
                    enum zw_route_miss *stage)
{
	const struct zw_route_headers *h = &req->headers;
	size_t maxp = t->nodes[node].max_prefix;
	if (*stage < ZW_ROUTE_MISS_PATH)
		*stage = ZW_ROUTE_MISS_PATH;
	/* candidate ends: plen (whole path), then each '/' position > 0, then
	 * the root. A candidate ending in '/' is skipped (not a stored form). */
	size_t end = plen;
	for (;;) {
		size_t cl = end;
		if (cl == 0)
			break;
		if (cl <= maxp && !(cl > 1 && path[cl - 1] == '/')) {
			const struct hent *he = hmap_find(&t->paths, node, path, cl);
			if (he) {
				const struct slot *s = &t->slots[he->value];
				const struct entry *found = NULL;
				*stage = ZW_ROUTE_MISS_HEADERS;
				for (uint32_t i = 0; i < s->count; i++) {
					const struct entry *e = &t->entries[s->first + i];
					if (found && !same_rank(found, e))
						break; /* the hint never beats the tie-break order
						        */
					if (!headers_match(e->r, h))
						continue;
					if (!found)
						found = e;
					if (!req->service || found->static_route >= 0)
						break;
					if (is_service(&t->targets[e->target], req->service,
					               req->service_len)) {
						found = e;
						break;
					}
				}
				if (found) {
					out->target = &t->targets[found->target];
					out->index = found->target;
					out->key = t->keys[found->target];
					out->host = found->host;
					out->prefix = found->prefix;
					out->rule = found->rule;
					out->static_route = found->static_route;
					out->miss = ZW_ROUTE_MISS_NONE;
					return 1;
				}
			}
		}
		if (cl == 1)
			break;
		/* next shorter candidate: up to (not including) the previous '/' */
		size_t k = cl - 1;
		while (k > 0 && path[k] != '/')
			k--;
		end = k ? k : 1; /* k == 0: the root "/" */
	}
	return 0;
}

int zw_route_lookup(const struct zw_route_table *t, const struct zw_route_request *req,
                    struct zw_route_match *out)
{
	if (!t || !req || !out)
		return ZW_ROUTE_EINVAL;
	memset(out, 0, sizeof(*out));
	out->static_route = -1;
	enum zw_route_miss stage = ZW_ROUTE_MISS_HOST;

	/* path: drop scheme://authority, query and fragment */
	const char *path = req->path ? req->path : root_path;
	size_t plen = req->path ? req->path_len : 1;
	if (plen && path[0] != '/') {
		const char *sep = plen >= 3 ? memmem(path, plen, "://", 3) : NULL;
		if (sep) {
			size_t off = (size_t)(sep - path) + 3;
			const char *slash = memchr(path + off, '/', plen - off);
			if (slash) {
				plen -= (size_t)(slash - path);
				path = slash;
			} else {
				path = root_path;
				plen = 1;
			}
		}
	}
	for (size_t i = 0; i < plen; i++) {
		if (path[i] == '?' || path[i] == '#') {
			plen = i;
			break;
		}
	}
	if (plen == 0 || path[0] != '/') {
		/* "*" (OPTIONS) or an empty path: route as the root */
		path = root_path;
		plen = 1;
	}

	char host[HOST_BUF];
	long hl = req->host ? host_norm(req->host, req->host_len, host, sizeof(host)) : -1;
	if (hl > 0) {
		const struct hent *he = hmap_find(&t->hosts, 0, host, (size_t)hl);
		if (he && try_node(t, he->value, path, plen, req, out, &stage))
			return ZW_ROUTE_OK;
		/* wildcard suffixes, most specific first */
		for (long i = 0; i < hl; i++) {
			if (host[i] != '.')
				continue;
			const char *suf = host + i + 1;
			size_t sl = (size_t)(hl - i - 1);
			if (!sl)
				break;
			he = hmap_find(&t->hosts, WILDCARD_SPACE, suf, sl);
			if (he && try_node(t, he->value, path, plen, req, out, &stage))
				return ZW_ROUTE_OK;
		}
	}
	if (t->catchall != NODE_NONE && try_node(t, t->catchall, path, plen, req, out, &stage))
		return ZW_ROUTE_OK;
	out->miss = stage;
	return ZW_ROUTE_ENOMATCH;
}

int zw_route_lookup_probe(const struct zw_route_table *t, const char *path, size_t plen,
                          struct zw_route_match *out)
{
	if (!t || !path || !out)
		return ZW_ROUTE_EINVAL;
	for (size_t k = 0; k < t->n_probe_prefixes; k++) {
		const char *pp = t->probe_prefixes[k];
		size_t pl = strcmp(pp, "/") == 0 ? 0 : strlen(pp);
		if (plen <= pl + 1 || memcmp(path, pp, pl) != 0 || path[pl] != '/')
			continue;
		const char *host = path + pl + 1;
		size_t hl = 0, left = plen - pl - 1;
		while (hl < left && host[hl] != '/' && host[hl] != '?' && host[hl] != '#')
			hl++;
		if (hl == 0)
			continue;
		struct zw_route_request rq = {.host = host,
		                              .host_len = hl,
		                              .path = hl < left ? host + hl : "/",
		                              .path_len = hl < left ? left - hl : 1};
		if (zw_route_lookup(t, &rq, out) == ZW_ROUTE_OK &&
		    out->target->healthcheck_response == ZW_HC_PATH_EMBEDDED_HOST &&
		    out->target->healthcheck_path_prefix &&
		    strcmp(out->target->healthcheck_path_prefix, pp) == 0)
			return ZW_ROUTE_OK;
	}
	memset(out, 0, sizeof(*out));
	out->static_route = -1;
	out->miss = ZW_ROUTE_MISS_HOST;
	return ZW_ROUTE_ENOMATCH;
}

/* ---- current table holder ---- */

int zw_route_current_init(struct zw_route_current *c)
{
	struct zw_route_table *t;
	int rc = zw_route_table_build(NULL, 0, &t);
	if (rc < 0)
		return rc;
	rc = pthread_mutex_init(&c->lock, NULL);
	if (rc != 0) {
		zw_route_table_unref(t);
		return -rc;
	}
	c->table = t;
	atomic_init(&c->version, 1);
	return 0;
}

void zw_route_current_destroy(struct zw_route_current *c)
{
	if (!c)
		return;
	zw_route_table_unref(c->table);
	c->table = NULL;
	pthread_mutex_destroy(&c->lock);
}

void zw_route_current_publish(struct zw_route_current *c, struct zw_route_table *t)
{
	if (!t)
		return;
	pthread_mutex_lock(&c->lock);
	struct zw_route_table *old = c->table;
	c->table = t;
	atomic_fetch_add_explicit(&c->version, 1, memory_order_release);
	pthread_mutex_unlock(&c->lock);
	zw_route_table_unref(old);
}

struct zw_route_table *zw_route_current_acquire(struct zw_route_current *c)
{
	pthread_mutex_lock(&c->lock);
	struct zw_route_table *t = zw_route_table_ref(c->table);
	pthread_mutex_unlock(&c->lock);
	return t;
}

void zw_route_current_release(struct zw_route_table *t)
{
	zw_route_table_unref(t);
}

int zw_route_current_refresh(struct zw_route_current *c, struct zw_route_table **cached,
                             uint64_t *seen)
{
	uint64_t v = atomic_load_explicit(&c->version, memory_order_acquire);
	if (*cached && v == *seen)
		return 0;
	pthread_mutex_lock(&c->lock);
	struct zw_route_table *t = zw_route_table_ref(c->table);
	v = atomic_load_explicit(&c->version, memory_order_relaxed);
	pthread_mutex_unlock(&c->lock);
	zw_route_table_unref(*cached);
	*cached = t;
	*seen = v;
	return 1;
}

uint64_t zw_route_current_version(struct zw_route_current *c)
{
	return atomic_load_explicit(&c->version, memory_order_acquire);
}

/* ---- header matching ---- */

/* '*' any run, '?' one byte, ASCII case-insensitive, whole value. */
static bool glob_match(const char *p, const char *s, size_t n)
{
	size_t pl = strlen(p), pi = 0, si = 0, star = SIZE_MAX, mark = 0;

	while (si < n) {
		if (pi < pl && p[pi] == '*') {
			star = pi++;
			mark = si;
		} else if (pi < pl && (p[pi] == '?' || tolower((unsigned char)p[pi]) ==
		                                               tolower((unsigned char)s[si]))) {
			pi++;
			si++;
		} else if (star != SIZE_MAX) {
			pi = star + 1;
			si = ++mark;
		} else {
			return false;
		}
	}
	while (pi < pl && p[pi] == '*')
		pi++;
	return pi == pl;
}

bool zw_header_match_value(const struct zw_header_match *m, const char *value, size_t len)
{
	char stack[512], *buf = stack;
	bool ok;

	/* surrounding spaces and tabs are not part of a field value (RFC 9110) */
	while (len && (value[0] == ' ' || value[0] == '\t')) {
		value++;
		len--;
	}
	while (len && (value[len - 1] == ' ' || value[len - 1] == '\t'))
		len--;
	/* decided by kind == WILDCARD / REGEX only, so matchers built by hand
	 * with just {name, value} keep their meaning (NULL: present; else exact) */
	if (m->kind == ZW_HDR_WILDCARD && m->value)
		return glob_match(m->value, value, len);
	if (m->kind != ZW_HDR_REGEX)
		return !m->value || (strlen(m->value) == len && memcmp(m->value, value, len) == 0);
	if (!m->regex || memchr(value, '\0', len))
		return false;
	if (len >= sizeof(stack) && !(buf = malloc(len + 1)))
		return false;
	memcpy(buf, value, len);
	buf[len] = '\0';
	ok = regexec(m->regex, buf, 0, NULL, 0) == 0;
	if (buf != stack)
		free(buf);
	return ok;
}
