/* zerowire webhook target registry; see registry.h.
 *
 * Every table is a sorted array of entries whose first member is a string
 * key; lookups binary-search the key, changes re-sort (changes are rare, one
 * per watch event, lookups happen for every destination of every review). */
#include "registry.h"

#include "apiversion.h"

#include "protocol.h"

#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Separates the fields of composite keys; Kubernetes names never hold it. */
#define SEP "\x01"

/* Longest kind or Service name a ReferenceGrant entry holds, NUL included
 * (DNS-1123 names are at most 253 characters). */
#define NAME_LEN 254

struct target_entry {
	char *key; /* "<ns>/<service>" SEP "<source key>" */
	char *source;
	struct zw_target t;
};

struct upstream_entry {
	char *key; /* "<ns>/<name>" */
	char *ns, *name, *svc_ns, *svc_name;
	int port;
};

struct vd_entry {
	char *key; /* "<ns>/<name>" */
	char *svc_ns, *svc_name;
	int vd_port, svc_port;
};

struct port_entry {
	char *key;  /* "<ns>/<name>" SEP "<port name>", or SEP "#<number>" */
	char *name; /* the port's name, "" when unnamed */
	int number;
	int proto; /* enum zw_proto */
	char *why; /* what decided proto, "" for the default */
};

/* One reference an object makes: a BackendTLSPolicy's targetRef (key
 * "<ns>/<service>" SEP "<sectionName or empty>") or one (from, to) pair of
 * a ReferenceGrant (key "<ns>/<from ns>" SEP "<from kind>/<to name or
 * empty>"). */
struct ref_entry {
	char *key;
	char *owner; /* "<ns>/<policy or grant name>" */
};

struct flag_entry {
	char *key; /* "<what>" SEP "<ns>" */
};

struct table {
	void *v;
	size_t n, cap, size;
};

struct zw_registry {
	pthread_rwlock_t lock;
	uint64_t generation;
	struct table targets, upstreams, vds, ports, flags, tls, grants;
};

static int key_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void *table_at(const struct table *t, size_t i)
{
	return (char *)t->v + i * t->size;
}

/* Returns a zeroed new slot at the end (table unsorted until table_sort). */
static void *table_push(struct table *t)
{
	if (t->n == t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 16;
		void *v = realloc(t->v, cap * t->size);
		if (!v)
			return NULL;
		t->v = v;
		t->cap = cap;
	}
	void *slot = table_at(t, t->n++);
	memset(slot, 0, t->size);
	return slot;
}

static void table_sort(struct table *t)
{
	if (t->n > 1)
		qsort(t->v, t->n, t->size, key_cmp);
}

/* Index of the first entry whose key is >= key (or starts with prefix). */
static size_t table_lower(const struct table *t, const char *key)
{
	size_t lo = 0, hi = t->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (strcmp(*(char **)table_at(t, mid), key) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static bool has_prefix(const char *s, const char *prefix)
{
	return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* Removes every entry whose key starts with prefix (exact = whole key),
 * calling release on each. Returns how many were removed. */
static size_t table_remove(struct table *t, const char *key, bool exact, void (*release)(void *))
{
	size_t w = 0, removed = 0;
	for (size_t i = 0; i < t->n; i++) {
		char *k = *(char **)table_at(t, i);
		bool hit = exact ? strcmp(k, key) == 0 : has_prefix(k, key);
		if (hit) {
			release(table_at(t, i));
			removed++;
			continue;
		}
		if (w != i)
			memcpy(table_at(t, w), table_at(t, i), t->size);
		w++;
	}
	t->n = w;
	return removed;
}

static char *join(const char *a, const char *sep, const char *b)
{
	size_t la = strlen(a), ls = strlen(sep), lb = strlen(b);
	char *s = malloc(la + ls + lb + 1);
	if (!s)
		return NULL;
	memcpy(s, a, la);
	memcpy(s + la, sep, ls);
	memcpy(s + la + ls, b, lb + 1);
	return s;
}

static char *join3(const char *a, const char *b, const char *c)
{
	char *ab = join(a, "/", b);
	if (!ab)
		return NULL;
	char *s = join(ab, SEP, c);
	free(ab);
	return s;
}

/* A look-up key "<a>/<b>" SEP "<c>" built on the stack when it fits (the
 * names are Kubernetes names), on the heap otherwise: the admission path
 * looks up every destination's Service and port. */
struct lookup_key {
	char small[256];
	char *s;
	size_t prefix; /* length of "<a>/<b>" SEP */
};

static int key_build(struct lookup_key *k, const char *a, const char *b, const char *c)
{
	size_t la = strlen(a), lb = strlen(b), lc = strlen(c);
	size_t n = la + lb + lc + 3;
	k->s = n <= sizeof(k->small) ? k->small : malloc(n);
	if (!k->s)
		return -1;
	memcpy(k->s, a, la);
	k->s[la] = '/';
	memcpy(k->s + la + 1, b, lb);
	k->s[la + 1 + lb] = SEP[0];
	memcpy(k->s + la + lb + 2, c, lc + 1);
	k->prefix = la + lb + 2;
	return 0;
}

static void key_free(struct lookup_key *k)
{
	if (k->s != k->small)
		free(k->s);
}

static void release_target(void *p)
{
	struct target_entry *e = p;
	free(e->key);
	free(e->source);
	zw_target_free(&e->t);
}

static void release_upstream(void *p)
{
	struct upstream_entry *e = p;
	free(e->key);
	free(e->ns);
	free(e->name);
	free(e->svc_ns);
	free(e->svc_name);
}

static void release_vd(void *p)
{
	struct vd_entry *e = p;
	free(e->key);
	free(e->svc_ns);
	free(e->svc_name);
}

static void release_key(void *p)
{
	free(*(char **)p);
}

static void release_port(void *p)
{
	struct port_entry *e = p;
	free(e->key);
	free(e->name);
	free(e->why);
}

static void release_ref(void *p)
{
	struct ref_entry *e = p;
	free(e->key);
	free(e->owner);
}

struct zw_registry *zw_registry_new(void)
{
	struct zw_registry *reg = calloc(1, sizeof(*reg));
	if (!reg)
		return NULL;
	if (pthread_rwlock_init(&reg->lock, NULL)) {
		free(reg);
		return NULL;
	}
	reg->targets.size = sizeof(struct target_entry);
	reg->upstreams.size = sizeof(struct upstream_entry);
	reg->vds.size = sizeof(struct vd_entry);
	reg->ports.size = sizeof(struct port_entry);
	reg->flags.size = sizeof(struct flag_entry);
	reg->tls.size = sizeof(struct ref_entry);
	reg->grants.size = sizeof(struct ref_entry);
	return reg;
}

static void table_free(struct table *t, void (*release)(void *))
{
	for (size_t i = 0; i < t->n; i++)
		release(table_at(t, i));
	free(t->v);
}

void zw_registry_free(struct zw_registry *reg)
{
	if (!reg)
		return;
	table_free(&reg->targets, release_target);
	table_free(&reg->upstreams, release_upstream);
	table_free(&reg->vds, release_vd);
	table_free(&reg->ports, release_port);
	table_free(&reg->flags, release_key);
	table_free(&reg->tls, release_ref);
	table_free(&reg->grants, release_ref);
	pthread_rwlock_destroy(&reg->lock);
	free(reg);
}

static void wrlock(struct zw_registry *reg)
{
	pthread_rwlock_wrlock(&reg->lock);
}

static void unlock(struct zw_registry *reg)
{
	pthread_rwlock_unlock(&reg->lock);
}

/* Removes the entries of t whose string member at offset `off` equals
 * value, calling release on each; lock held. Returns how many. */
static size_t table_remove_by(struct table *t, size_t off, const char *value,
                              void (*release)(void *))
{
	size_t w = 0, removed = 0;
	for (size_t i = 0; i < t->n; i++) {
		char *e = table_at(t, i);
		if (strcmp(*(char **)(e + off), value) == 0) {
			release(e);
			removed++;
			continue;
		}
		if (w != i)
			memcpy(table_at(t, w), e, t->size);
		w++;
	}
	t->n = w;
	return removed;
}

/* Removes the targets of `source`; lock held. */
static size_t remove_source_locked(struct zw_registry *reg, const char *source)
{
	return table_remove_by(&reg->targets, offsetof(struct target_entry, source), source,
	                       release_target);
}

int zw_registry_set_targets(struct zw_registry *reg, const char *source_key,
                            const struct zw_target *ts, size_t n)
{
	/* Build the new entries first so a failure leaves the registry as is. */
	struct target_entry *fresh = n ? calloc(n, sizeof(*fresh)) : NULL;
	size_t built = 0;
	if (n && !fresh)
		return -1;
	for (; built < n; built++) {
		struct target_entry *e = &fresh[built];
		const struct zw_target *src = &ts[built];
		const char *ns = src->service.namespace ? src->service.namespace : src->namespace;
		if (!ns || !src->service.name)
			ns = "";
		if (zw_target_copy(&e->t, src))
			goto fail;
		e->source = strdup(source_key);
		e->key = join3(ns, src->service.name ? src->service.name : "", source_key);
		if (!e->source || !e->key) {
			built++;
			goto fail;
		}
	}
	wrlock(reg);
	remove_source_locked(reg, source_key);
	for (size_t i = 0; i < n; i++) {
		struct target_entry *slot = table_push(&reg->targets);
		if (!slot) {
			/* Keep what fits; the rest is released below. */
			for (size_t j = i; j < n; j++)
				release_target(&fresh[j]);
			table_sort(&reg->targets);
			reg->generation++;
			unlock(reg);
			free(fresh);
			return -1;
		}
		*slot = fresh[i];
	}
	table_sort(&reg->targets);
	reg->generation++;
	unlock(reg);
	free(fresh);
	return 0;
fail:
	for (size_t j = 0; j < built; j++)
		release_target(&fresh[j]);
	free(fresh);
	return -1;
}

int zw_registry_remove_source(struct zw_registry *reg, const char *source_key)
{
	wrlock(reg);
	size_t removed = remove_source_locked(reg, source_key);
	if (removed)
		reg->generation++;
	unlock(reg);
	return removed ? 1 : 0;
}

int zw_registry_set_upstream(struct zw_registry *reg, const char *ns, const char *name,
                             const char *svc_ns, const char *svc_name, int port)
{
	struct upstream_entry e = {
	        .key = join(ns, "/", name),
	        .ns = strdup(ns),
	        .name = strdup(name),
	        .svc_ns = strdup(svc_ns),
	        .svc_name = strdup(svc_name),
	        .port = port,
	};
	if (!e.key || !e.ns || !e.name || !e.svc_ns || !e.svc_name) {
		release_upstream(&e);
		return -1;
	}
	wrlock(reg);
	table_remove(&reg->upstreams, e.key, true, release_upstream);
	struct upstream_entry *slot = table_push(&reg->upstreams);
	if (!slot) {
		unlock(reg);
		release_upstream(&e);
		return -1;
	}
	*slot = e;
	table_sort(&reg->upstreams);
	reg->generation++;
	unlock(reg);
	return 0;
}

int zw_registry_remove_upstream(struct zw_registry *reg, const char *ns, const char *name)
{
	char *key = join(ns, "/", name);
	if (!key)
		return 0;
	wrlock(reg);
	size_t removed = table_remove(&reg->upstreams, key, true, release_upstream);
	if (removed)
		reg->generation++;
	unlock(reg);
	free(key);
	return removed ? 1 : 0;
}

int zw_registry_add_virtual_destination(struct zw_registry *reg, const char *ns, const char *name,
                                        const char *svc_ns, const char *svc_name, int vd_port,
                                        int svc_port)
{
	struct vd_entry e = {
	        .key = join(ns, "/", name),
	        .svc_ns = strdup(svc_ns),
	        .svc_name = strdup(svc_name),
	        .vd_port = vd_port,
	        .svc_port = svc_port,
	};
	if (!e.key || !e.svc_ns || !e.svc_name) {
		release_vd(&e);
		return -1;
	}
	wrlock(reg);
	struct vd_entry *slot = table_push(&reg->vds);
	if (!slot) {
		unlock(reg);
		release_vd(&e);
		return -1;
	}
	*slot = e;
	table_sort(&reg->vds);
	reg->generation++;
	unlock(reg);
	return 0;
}

int zw_registry_remove_virtual_destination(struct zw_registry *reg, const char *ns,
                                           const char *name)
{
	char *key = join(ns, "/", name);
	if (!key)
		return 0;
	wrlock(reg);
	size_t removed = table_remove(&reg->vds, key, true, release_vd);
	if (removed)
		reg->generation++;
	unlock(reg);
	free(key);
	return removed ? 1 : 0;
}

int zw_registry_set_service_ports(struct zw_registry *reg, const char *ns, const char *name,
                                  const struct zw_service_port *ports, size_t n)
{
	char *svc = join(ns, "/", name);
	char *prefix = svc ? join(svc, SEP, "") : NULL;
	/* Per port a named entry (if named) and a "#number" entry, plus the
	 * marker (empty name) that says "ports known". */
	struct port_entry *fresh = calloc(2 * n + 1, sizeof(*fresh));
	size_t built = 0;
	int rc = -1;
	if (!prefix || !fresh)
		goto out;
	fresh[built].key = join(prefix, "", "");
	if (!fresh[built++].key)
		goto out;
	for (size_t i = 0; i < n; i++) {
		char num[16];
		snprintf(num, sizeof(num), "#%d", ports[i].number);
		for (int named = 0; named < 2; named++) {
			const char *k = named ? ports[i].name : num;
			if (!k || !k[0])
				continue;
			struct port_entry *e = &fresh[built++];
			e->key = join(prefix, "", k);
			e->number = ports[i].number;
			e->proto = ports[i].proto;
			e->why = strdup(ports[i].why ? ports[i].why : "");
			e->name = strdup(ports[i].name ? ports[i].name : "");
			if (!e->key || !e->why || !e->name)
				goto out;
		}
	}
	wrlock(reg);
	table_remove(&reg->ports, prefix, false, release_port);
	for (size_t i = 0; n && i < built; i++) {
		struct port_entry *slot = table_push(&reg->ports);
		if (!slot)
			break;
		*slot = fresh[i];
		fresh[i].key = NULL;
		fresh[i].name = NULL;
		fresh[i].why = NULL;
	}
	table_sort(&reg->ports);
	reg->generation++;
	unlock(reg);
	rc = 0;
out:
	for (size_t i = 0; fresh && i < built; i++)
		release_port(&fresh[i]);
	free(fresh);
	free(prefix);
	free(svc);
	return rc;
}

static const char *const wiring_names[ZW_WIRE_COUNT] = {"alias", "grant-httproute",
                                                        "grant-grpcroute"};

int zw_registry_set_wiring(struct zw_registry *reg, enum zw_wiring what, const char *ns,
                           bool present)
{
	if ((unsigned)what >= ZW_WIRE_COUNT)
		return -1;
	char *key = join(wiring_names[what], SEP, ns);
	if (!key)
		return -1;
	wrlock(reg);
	size_t i = table_lower(&reg->flags, key);
	bool have = i < reg->flags.n && strcmp(*(char **)table_at(&reg->flags, i), key) == 0;
	int rc = 0;
	if (present && !have) {
		struct flag_entry *slot = table_push(&reg->flags);
		if (slot) {
			slot->key = key;
			key = NULL;
			table_sort(&reg->flags);
			reg->generation++;
		} else {
			rc = -1;
		}
	} else if (!present && have) {
		table_remove(&reg->flags, key, true, release_key);
		reg->generation++;
	}
	unlock(reg);
	free(key);
	return rc;
}

uint64_t zw_registry_generation(const struct zw_registry *reg)
{
	struct zw_registry *r = (struct zw_registry *)reg;
	pthread_rwlock_rdlock(&r->lock);
	uint64_t g = r->generation;
	pthread_rwlock_unlock(&r->lock);
	return g;
}

size_t zw_registry_target_count(const struct zw_registry *reg)
{
	struct zw_registry *r = (struct zw_registry *)reg;
	pthread_rwlock_rdlock(&r->lock);
	size_t n = r->targets.n;
	pthread_rwlock_unlock(&r->lock);
	return n;
}

void zw_registry_read_begin(const struct zw_registry *reg)
{
	pthread_rwlock_rdlock(&((struct zw_registry *)reg)->lock);
}

void zw_registry_read_end(const struct zw_registry *reg)
{
	pthread_rwlock_unlock(&((struct zw_registry *)reg)->lock);
}

size_t zw_registry_find_service(const struct zw_registry *reg, const char *ns, const char *service,
                                const struct zw_target **out, size_t max)
{
	struct lookup_key prefix;
	if (key_build(&prefix, ns, service, ""))
		return 0;
	size_t count = 0;
	for (size_t i = table_lower(&reg->targets, prefix.s); i < reg->targets.n; i++) {
		struct target_entry *e = table_at(&reg->targets, i);
		if (!has_prefix(e->key, prefix.s))
			break;
		if (count < max)
			out[count] = &e->t;
		count++;
	}
	key_free(&prefix);
	return count;
}

int zw_registry_find_upstream(const struct zw_registry *reg, const char *ns, const char *name,
                              struct zw_registry_upstream *out)
{
	char *key = join(ns, "/", name);
	if (!key)
		return 0;
	size_t i = table_lower(&reg->upstreams, key);
	int found = 0;
	if (i < reg->upstreams.n) {
		struct upstream_entry *e = table_at(&reg->upstreams, i);
		if (strcmp(e->key, key) == 0) {
			out->namespace = e->ns;
			out->name = e->name;
			out->service_namespace = e->svc_ns;
			out->service_name = e->svc_name;
			out->service_port = e->port;
			found = 1;
		}
	}
	free(key);
	return found;
}

int zw_registry_each_vd_service(
        const struct zw_registry *reg, const char *ns, const char *name, int vd_port,
        int (*fn)(void *ctx, const char *svc_ns, const char *svc_name, int svc_port), void *ctx)
{
	char *key = join(ns, "/", name);
	if (!key)
		return -1;
	int rc = -1;
	for (size_t i = table_lower(&reg->vds, key); i < reg->vds.n; i++) {
		struct vd_entry *e = table_at(&reg->vds, i);
		if (strcmp(e->key, key) != 0)
			break;
		if (rc < 0)
			rc = 0;
		if (vd_port && e->vd_port && e->vd_port != vd_port)
			continue;
		rc = fn(ctx, e->svc_ns, e->svc_name, e->svc_port);
		if (rc)
			break;
	}
	free(key);
	return rc;
}

/* Finds the port entry `what` (a name, or "#<number>") of Service ns/name:
 * returns 1 with *out, 0 when the Service's ports are known but not this
 * one, -1 when they are unknown. */
static int find_port(const struct zw_registry *reg, const char *ns, const char *name,
                     const char *what, const struct port_entry **out)
{
	struct lookup_key key;
	if (key_build(&key, ns, name, what))
		return -1;
	/* The prefix alone (the marker's key) first: the key cut after SEP. */
	char first = key.s[key.prefix];
	key.s[key.prefix] = '\0';
	size_t i = table_lower(&reg->ports, key.s);
	bool known = i < reg->ports.n && strcmp(*(char **)table_at(&reg->ports, i), key.s) == 0;
	key.s[key.prefix] = first;
	int rc = known ? 0 : -1; /* no marker: ports unknown */
	i = known ? table_lower(&reg->ports, key.s) : reg->ports.n;
	if (i < reg->ports.n) {
		const struct port_entry *e = table_at(&reg->ports, i);
		if (strcmp(e->key, key.s) == 0) {
			*out = e;
			rc = 1;
		}
	}
	key_free(&key);
	return rc;
}

int zw_registry_service_port(const struct zw_registry *reg, const char *ns, const char *name,
                             const char *port_name, int *number)
{
	const struct port_entry *e = NULL;
	int rc = port_name && port_name[0] && port_name[0] != '#'
	                 ? find_port(reg, ns, name, port_name, &e)
	                 : find_port(reg, ns, name, "#-", &e);
	if (rc == 1)
		*number = e->number;
	return rc;
}

int zw_registry_service_protocol(const struct zw_registry *reg, const char *ns, const char *name,
                                 int port, const char *port_name, int *proto, const char **why)
{
	const struct port_entry *e = NULL;
	char num[16];
	int rc;
	if (port_name && port_name[0]) {
		rc = find_port(reg, ns, name, port_name, &e);
	} else if (port > 0) {
		/* "#<port>" (port > 0), written without snprintf's cost. */
		char *d = num + sizeof(num);
		*--d = '\0';
		for (int v = port; v; v /= 10)
			*--d = (char)('0' + v % 10);
		*--d = '#';
		rc = find_port(reg, ns, name, d, &e);
	} else {
		/* No port given: the route means the Service's only port. */
		rc = find_port(reg, ns, name, "#", &e);
		if (rc >= 0) {
			const struct port_entry *only = NULL;
			size_t count = 0;
			char *prefix = join3(ns, name, "#");
			size_t i = prefix ? table_lower(&reg->ports, prefix) : reg->ports.n;
			for (; prefix && i < reg->ports.n; i++) {
				const struct port_entry *c = table_at(&reg->ports, i);
				if (strncmp(c->key, prefix, strlen(prefix)) != 0)
					break;
				only = c;
				count++;
			}
			free(prefix);
			e = count == 1 ? only : NULL;
			rc = e ? 1 : 0;
		}
	}
	if (rc == 1) {
		*proto = e->proto;
		*why = e->why;
	}
	return rc;
}

int zw_registry_backend_tls(const struct zw_registry *reg, const char *ns, const char *name,
                            int port, const char *port_name, const char **policy)
{
	char *prefix = join3(ns, name, "");
	if (!prefix)
		return 0;
	/* The port's name: given, or that of the numbered port. */
	const struct port_entry *pe = NULL;
	char num[16];
	snprintf(num, sizeof(num), "#%d", port);
	if ((!port_name || !port_name[0]) && port > 0 && find_port(reg, ns, name, num, &pe) == 1)
		port_name = pe->name;
	size_t plen = strlen(prefix);
	int rc = 0;
	for (size_t i = table_lower(&reg->tls, prefix); i < reg->tls.n; i++) {
		const struct ref_entry *e = table_at(&reg->tls, i);
		if (strncmp(e->key, prefix, plen) != 0)
			break;
		const char *section = e->key + plen;
		/* The whole Service, the port itself, or a section of a port
		 * we cannot name (taken as this one: TLS is never assumed
		 * away). */
		if (!section[0] || !port_name || !port_name[0] || strcmp(section, port_name) == 0) {
			*policy = e->owner;
			rc = 1;
			break;
		}
	}
	free(prefix);
	return rc;
}

int zw_registry_reference_grant(const struct zw_registry *reg, const char *ns, const char *from_ns,
                                const char *route_kind, const char *service, const char **grant)
{
	char kind[NAME_LEN + 1];
	struct lookup_key k;
	int rc = 0;
	if (strlen(route_kind) >= NAME_LEN)
		return 0;
	snprintf(kind, sizeof(kind), "%s/", route_kind);
	if (key_build(&k, ns, from_ns, kind))
		return 0;
	for (size_t i = table_lower(&reg->grants, k.s); i < reg->grants.n; i++) {
		const struct ref_entry *e = table_at(&reg->grants, i);
		if (!has_prefix(e->key, k.s))
			break;
		const char *to = e->key + strlen(k.s);
		if (!to[0] || strcmp(to, service) == 0) {
			*grant = e->owner;
			rc = 1;
			break;
		}
	}
	key_free(&k);
	return rc;
}

bool zw_registry_wiring(const struct zw_registry *reg, enum zw_wiring what, const char *ns)
{
	if ((unsigned)what >= ZW_WIRE_COUNT)
		return false;
	char *key = join(wiring_names[what], SEP, ns);
	if (!key)
		return false;
	size_t i = table_lower(&reg->flags, key);
	bool have = i < reg->flags.n && strcmp(*(char **)table_at(&reg->flags, i), key) == 0;
	free(key);
	return have;
}

static const char *str_at(const json_t *obj, const char *key)
{
	return json_string_value(json_object_get(obj, key));
}

static int int_at(const json_t *obj, const char *key)
{
	json_t *v = json_object_get(obj, key);
	if (json_is_integer(v) && json_integer_value(v) > 0 && json_integer_value(v) < 65536)
		return (int)json_integer_value(v);
	return 0;
}

static int apply_vd(struct zw_registry *reg, const json_t *spec, const char *ns, const char *name)
{
	json_t *svcs = json_object_get(spec, "services");
	json_t *ports = json_object_get(spec, "ports");
	size_t i, j;
	json_t *s, *p;
	json_array_foreach(svcs, i, s)
	{
		const char *sname = str_at(s, "name");
		const char *sns = str_at(s, "namespace");
		if (!sname)
			continue; /* label selectors cannot be resolved here */
		if (!sns)
			sns = ns;
		if (json_array_size(ports) == 0 &&
		    zw_registry_add_virtual_destination(reg, ns, name, sns, sname, 0, 0))
			return -1;
		json_array_foreach(ports, j, p)
		{
			int tp = int_at(json_object_get(p, "targetPort"), "number");
			if (zw_registry_add_virtual_destination(reg, ns, name, sns, sname,
			                                        int_at(p, "number"), tp))
				return -1;
		}
	}
	return 0;
}

/* Replaces the entries of table t that `owner` (borrowed) made with
 * fresh[0..n) (moved out and zeroed). Returns 0 or -1 on ENOMEM (the
 * entries not moved stay in fresh). */
static int set_refs(struct zw_registry *reg, struct table *t, const char *owner,
                    struct ref_entry *fresh, size_t n)
{
	size_t i;
	wrlock(reg);
	table_remove_by(t, offsetof(struct ref_entry, owner), owner, release_ref);
	for (i = 0; i < n; i++) {
		struct ref_entry *slot = table_push(t);
		if (!slot)
			break;
		*slot = fresh[i];
		fresh[i] = (struct ref_entry){0};
	}
	table_sort(t);
	reg->generation++;
	unlock(reg);
	return i == n ? 0 : -1;
}

/* Adds entry (key, owner) at fresh[*built] (both copied). Returns 0 or -1. */
static int add_ref(struct ref_entry *fresh, size_t *built, char *key, const char *owner)
{
	struct ref_entry *e = &fresh[(*built)++];
	e->key = key;
	e->owner = strdup(owner);
	return e->key && e->owner ? 0 : -1;
}

static void free_refs(struct ref_entry *fresh, size_t n)
{
	for (size_t i = 0; fresh && i < n; i++)
		release_ref(&fresh[i]);
	free(fresh);
}

/* Whether reference ref (a targetRef, a ReferenceGrant's `to`) names core
 * Services: group "" (or unset) and kind Service. */
static bool core_service(const json_t *ref)
{
	const char *group = str_at(ref, "group"), *kind = str_at(ref, "kind");
	return !(group && group[0]) && kind && strcmp(kind, "Service") == 0;
}

/* Fills fresh[*built..) with the entries a BackendTLSPolicy's targetRefs
 * make (core Services; sectionName a port name). Returns 0 or -1. */
static int fill_backend_tls(const json_t *spec, const char *ns, const char *owner,
                            struct ref_entry *fresh, size_t *built)
{
	json_t *refs = json_object_get(spec, "targetRefs"), *ref;
	size_t i;
	json_array_foreach(refs, i, ref)
	{
		const char *svc = str_at(ref, "name"), *section = str_at(ref, "sectionName");
		if (svc && core_service(ref) &&
		    add_ref(fresh, built, join3(ns, svc, section ? section : ""), owner))
			return -1;
	}
	return 0;
}

/* Fills fresh[*built..) with the (from, to) pairs of a ReferenceGrant that
 * let Gateway API routes reach core Services in ns. Returns 0 or -1. */
static int fill_reference_grant(const json_t *spec, const char *ns, const char *owner,
                                struct ref_entry *fresh, size_t *built)
{
	json_t *to = json_object_get(spec, "to"), *f, *t;
	char kind_to[2 * NAME_LEN + 2];
	size_t i, j;
	json_array_foreach(json_object_get(spec, "from"), i, f)
	{
		const char *group = str_at(f, "group"), *kind = str_at(f, "kind");
		const char *from_ns = str_at(f, "namespace");
		if (!group || strcmp(group, "gateway.networking.k8s.io") != 0 || !kind ||
		    !from_ns || strlen(kind) >= NAME_LEN)
			continue;
		json_array_foreach(to, j, t)
		{
			const char *svc = str_at(t, "name");
			if (!core_service(t) || (svc && strlen(svc) >= NAME_LEN))
				continue;
			snprintf(kind_to, sizeof(kind_to), "%s/%s", kind, svc ? svc : "");
			if (add_ref(fresh, built, join3(ns, from_ns, kind_to), owner))
				return -1;
		}
	}
	return 0;
}

/* Replaces the entries of table t that object ns/name made with those
 * fill (at most max) makes of its spec; nothing when deleted. Returns 0 or
 * -1 on ENOMEM. */
static int apply_refs(struct zw_registry *reg, struct table *t, const json_t *spec, const char *ns,
                      const char *name, bool deleted, size_t max,
                      int (*fill)(const json_t *, const char *, const char *, struct ref_entry *,
                                  size_t *))
{
	struct ref_entry *fresh = calloc(max + 1, sizeof(*fresh));
	char *owner = join(ns, "/", name);
	size_t built = 0;
	int rc = -1;
	if (!fresh || !owner || (!deleted && fill(spec, ns, owner, fresh, &built)))
		goto out;
	rc = set_refs(reg, t, owner, fresh, built);
out:
	free_refs(fresh, built);
	free(owner);
	return rc;
}

static int apply_service(struct zw_registry *reg, const json_t *obj, const json_t *spec,
                         const char *ns, const char *name, bool deleted)
{
	json_t *ports = json_object_get(spec, "ports");
	const json_t *ann = json_object_get(json_object_get(obj, "metadata"), "annotations");
	size_t n = deleted ? 0 : json_array_size(ports), i;
	struct zw_service_port *sp = calloc(n + 1, sizeof(*sp));
	char(*why)[96] = calloc(n + 1, sizeof(*why));
	int rc = -1;
	if (!sp || !why)
		goto out;
	for (i = 0; i < n; i++) {
		json_t *p = json_array_get(ports, i);
		sp[i].name = str_at(p, "name") ? str_at(p, "name") : "";
		sp[i].number = int_at(p, "port");
		sp[i].proto = (int)zw_proto_of_port(str_at(p, "appProtocol"), sp[i].name,
		                                    zw_proto_service_annotation(ann, sp[i].name),
		                                    why[i], sizeof(why[i]));
		sp[i].why = why[i];
	}
	if (deleted)
		rc = zw_registry_set_service_ports(reg, ns, name, sp, 0);
	else /* n == 0: a Service without ports is known, nothing named */
		rc = zw_registry_set_service_ports(reg, ns, name, sp, n ? n : 1);
out:
	free(sp);
	free(why);
	return rc;
}

int zw_registry_apply_object(struct zw_registry *reg, const json_t *obj, bool deleted, char *err)
{
	char errbuf[ZW_TARGET_ERRLEN];
	const char *api = str_at(obj, "apiVersion");
	const char *kind = str_at(obj, "kind");
	json_t *meta = json_object_get(obj, "metadata");
	const char *ns = str_at(meta, "namespace");
	const char *name = str_at(meta, "name");
	json_t *spec = json_object_get(obj, "spec");
	if (!err)
		err = errbuf;
	err[0] = '\0';
	if (!api || !kind || !name)
		return 1;
	if (!ns)
		ns = "default";

	if ((zw_api_group_is(api, "keda.sh", NULL) && strcmp(kind, "ScaledObject") == 0) ||
	    (zw_api_group_is(api, "http.keda.sh", NULL) &&
	     (strcmp(kind, "HTTPScaledObject") == 0 || strcmp(kind, "InterceptorRoute") == 0))) {
		char source[512];
		snprintf(source, sizeof(source), "%s/%s/%s", kind, ns, name);
		if (deleted) {
			zw_registry_remove_source(reg, source);
			return 0;
		}
		struct zw_target *ts = NULL;
		size_t n = 0;
		int rc = zw_target_parse_object(obj, &ts, &n, err);
		if (rc == ZW_TARGET_ENOTARGET) {
			zw_registry_remove_source(reg, source);
			return 0;
		}
		if (rc == ZW_TARGET_EINVAL) {
			zw_registry_remove_source(reg, source);
			return ZW_TARGET_EINVAL;
		}
		if (rc)
			return -1;
		rc = zw_registry_set_targets(reg, source, ts, n);
		zw_target_array_free(ts, n);
		return rc;
	}
	if (zw_api_group_is(api, "gloo.solo.io", NULL) && strcmp(kind, "Upstream") == 0) {
		json_t *kube = json_object_get(spec, "kube");
		const char *svc = str_at(kube, "serviceName");
		const char *svc_ns = str_at(kube, "serviceNamespace");
		if (deleted || !svc) {
			zw_registry_remove_upstream(reg, ns, name);
			return 0;
		}
		return zw_registry_set_upstream(reg, ns, name, svc_ns ? svc_ns : ns, svc,
		                                int_at(kube, "servicePort"));
	}
	if (zw_api_group_is(api, "networking.gloo.solo.io", NULL) &&
	    strcmp(kind, "VirtualDestination") == 0) {
		zw_registry_remove_virtual_destination(reg, ns, name);
		if (deleted)
			return 0;
		return apply_vd(reg, spec, ns, name);
	}
	if (strcmp(api, "v1") == 0 && strcmp(kind, "Service") == 0)
		return apply_service(reg, obj, spec, ns, name, deleted);
	if (zw_api_group_is(api, "gateway.networking.k8s.io", NULL) &&
	    strcmp(kind, "BackendTLSPolicy") == 0)
		return apply_refs(reg, &reg->tls, spec, ns, name, deleted,
		                  json_array_size(json_object_get(spec, "targetRefs")),
		                  fill_backend_tls);
	if (zw_api_group_is(api, "gateway.networking.k8s.io", NULL) &&
	    strcmp(kind, "ReferenceGrant") == 0)
		return apply_refs(reg, &reg->grants, spec, ns, name, deleted,
		                  json_array_size(json_object_get(spec, "from")) *
		                          json_array_size(json_object_get(spec, "to")),
		                  fill_reference_grant);
	return 1;
}
