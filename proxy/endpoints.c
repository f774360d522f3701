/* zerowire-proxy endpoint store (see endpoints.h and docs/endpoints.md).
 *
 * Writer-side structures (slices, Services, counters) change only on the
 * writer thread; the parts readers see (service records, their slices and
 * snapshot caches) change under `lock`. Snapshots and counters are reference
 * counted so readers can use them without the lock. */
#include "endpoints.h"

#include "addr.h"
#include "hash.h"
#include "protocol.h"
#include "strmap.h"

#include <arpa/inet.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define SERVICE_LABEL  "kubernetes.io/service-name"
#define MAX_CACHE      16 /* cached snapshots per Service (distinct port queries) */
#define STATIC_PREFIX  "zw-static-"
#define MAX_SPEC_ENTRY 4096

struct zw_ep_counter {
	struct zw_strmap_node node; /* in counters, by key */
	_Atomic long refs;
	_Atomic long outstanding;
	_Atomic uint64_t ready_since; /* zw_endpoints_now_ms() when it turned ready; 0: not */
	size_t uses;                  /* slice references (writer thread only) */
	char key[ZW_EP_IPLEN + 8];
};

struct sl_port {
	char *name; /* "" when unnamed */
	uint16_t port;
	bool h2c;         /* appProtocol or name says HTTP/2 without TLS (lib/protocol.h) */
	bool tls, tls_h2; /* TLS; HTTP/2 inside it (see struct zw_endpoint) */
};

struct sl_addr {
	char ip[ZW_EP_IPLEN];
	struct sockaddr_storage ss;
	socklen_t ss_len;
	bool ready;
};

struct slice {
	struct zw_strmap_node node; /* in slices, by key */
	char *key;                  /* ns/name of the slice */
	char *svc;                  /* ns/svc it belongs to */
	struct sl_port *ports;
	size_t n_ports;
	struct sl_addr *addrs;
	size_t n_addrs;
	struct zw_ep_counter **counters; /* n_addrs * n_ports, [a * n_ports + p] */
	bool stale;
};

struct svc_port {
	char *name;
	int port; /* 0 when the Service port has no number (static spec) */
};

struct cache_ent {
	char *port_name; /* NULL when queried by number */
	int port;
	struct zw_endpoint_set *set;
};

struct service {
	struct zw_strmap_node node; /* in services, by key */
	char *key;                  /* ns/svc */
	char *ns, *name;
	bool have_svc, svc_stale;
	struct svc_port *sports;
	size_t n_sports;
	struct slice **slices;
	size_t n_slices, cap_slices;
	struct cache_ent cache[MAX_CACHE];
	size_t n_cache;
	size_t n_ready;
	uint64_t ready_fp;
};

struct change {
	char *ns, *svc;
	size_t n_ready;
};

struct zw_endpoints {
	pthread_mutex_t lock;
	_Atomic uint64_t version;
	struct zw_strmap services; /* ns/svc -> struct service (lock) */
	struct zw_strmap slices;   /* ns/slice -> struct slice (writer) */
	struct zw_strmap counters; /* ip|port -> struct zw_ep_counter (writer) */
	struct zw_ep_subscriber subs[ZW_EP_MAX_SUBSCRIBERS];
	size_t n_subs;
	struct change *changes; /* pending notifications (writer) */
	size_t n_changes, cap_changes;
};

static struct zw_endpoint_set empty_set = {.is_static = true};

/* ---- the three maps (lib/strmap): the element of a node, or NULL ---- */

static struct service *service_of(struct zw_strmap_node *n)
{
	return n ? ZW_STRMAP_ENTRY(n, struct service, node) : NULL;
}

/* The Service stored under "ns/svc" key, or NULL (lock held). */
static struct service *service_find(struct zw_endpoints *s, const char *key)
{
	return service_of(zw_strmap_get(&s->services, key));
}

static struct slice *slice_of(struct zw_strmap_node *n)
{
	return n ? ZW_STRMAP_ENTRY(n, struct slice, node) : NULL;
}

static struct zw_ep_counter *counter_of(struct zw_strmap_node *n)
{
	return n ? ZW_STRMAP_ENTRY(n, struct zw_ep_counter, node) : NULL;
}

/* ---- counters ---- */

static void counter_unref(struct zw_ep_counter *c)
{
	if (c && atomic_fetch_sub_explicit(&c->refs, 1, memory_order_acq_rel) == 1)
		free(c);
}

/* Finds or creates the counter of ip:port and adds one slice use. */
static int counter_use(struct zw_endpoints *s, const char *ip, uint16_t port,
                       struct zw_ep_counter **out)
{
	char key[ZW_EP_IPLEN + 8];
	snprintf(key, sizeof(key), "%s|%u", ip, (unsigned)port);
	struct zw_ep_counter *c = counter_of(zw_strmap_get(&s->counters, key));
	if (!c) {
		c = calloc(1, sizeof(*c));
		if (!c)
			return ZW_EP_ENOMEM;
		atomic_init(&c->refs, 1); /* the map's reference */
		atomic_init(&c->outstanding, 0);
		memcpy(c->key, key, sizeof(key));
		if (zw_strmap_put(&s->counters, &c->node, c->key) < 0) {
			free(c);
			return ZW_EP_ENOMEM;
		}
	}
	c->uses++;
	*out = c;
	return 0;
}

static void counter_drop_use(struct zw_endpoints *s, struct zw_ep_counter *c)
{
	if (!c)
		return;
	if (--c->uses == 0) {
		zw_strmap_remove(&s->counters, &c->node);
		counter_unref(c);
	}
}

/* ---- slices ---- */

static void slice_free(struct zw_endpoints *s, struct slice *sl)
{
	if (!sl)
		return;
	if (sl->counters)
		for (size_t i = 0; i < sl->n_addrs * sl->n_ports; i++)
			counter_drop_use(s, sl->counters[i]);
	for (size_t i = 0; i < sl->n_ports; i++)
		free(sl->ports[i].name);
	free(sl->ports);
	free(sl->addrs);
	free(sl->counters);
	free(sl->key);
	free(sl->svc);
	free(sl);
}

static int parse_ip(const char *ip, struct sl_addr *a, uint16_t port_unused)
{
	(void)port_unused;
	struct in_addr v4;
	struct in6_addr v6;
	memset(&a->ss, 0, sizeof(a->ss));
	if (inet_pton(AF_INET, ip, &v4) == 1) {
		struct sockaddr_in *sin = (struct sockaddr_in *)&a->ss;
		sin->sin_family = AF_INET;
		sin->sin_addr = v4;
		a->ss_len = sizeof(*sin);
		inet_ntop(AF_INET, &v4, a->ip, sizeof(a->ip));
		return 0;
	}
	if (inet_pton(AF_INET6, ip, &v6) == 1) {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&a->ss;
		sin6->sin6_family = AF_INET6;
		sin6->sin6_addr = v6;
		a->ss_len = sizeof(*sin6);
		inet_ntop(AF_INET6, &v6, a->ip, sizeof(a->ip));
		return 0;
	}
	return -1;
}

/* Writes "ns/name" into buf (cap bytes). Returns 0, or -1 when it does not
 * fit. */
static int key_into(char *buf, size_t cap, const char *ns, const char *name)
{
	size_t a = strlen(ns), b = strlen(name);
	if (a + b + 2 > cap)
		return -1;
	memcpy(buf, ns, a);
	buf[a] = '/';
	memcpy(buf + a + 1, name, b + 1);
	return 0;
}

static char *join_key(const char *ns, const char *name)
{
	size_t l = strlen(ns) + strlen(name) + 2;
	char *k = malloc(l);
	if (k)
		snprintf(k, l, "%s/%s", ns, name);
	return k;
}

static const char *obj_str(const json_t *o, const char *a, const char *b)
{
	json_t *x = json_object_get(o, a);
	if (b)
		x = json_object_get(x, b);
	return json_string_value(x);
}

/* Parses a slice into a new struct slice (without counters). */
/* Whether a port lib/protocol.h classed as TLS carries HTTP/2 inside
 * (appProtocol h2 or grpcs, else a name h2[-...] or grpcs[-...]): only
 * then is ALPN h2 offered. app and name may be NULL. */
static bool tls_says_h2(const char *app, const char *name)
{
	const char *w = app && *app ? app : name ? name : "";
	size_t len = app && *app ? strlen(w) : strcspn(w, "-");
	return (len == 2 && strncasecmp(w, "h2", 2) == 0) ||
	       (len == 5 && strncasecmp(w, "grpcs", 5) == 0);
}

static int slice_parse(const json_t *obj, const char *ns, const char *name, const char *svc,
                       struct slice **out, char *err)
{
	int rc = ZW_EP_ENOMEM;
	struct slice *sl = calloc(1, sizeof(*sl));
	if (!sl)
		return rc;
	sl->key = join_key(ns, name);
	sl->svc = join_key(ns, svc);
	if (!sl->key || !sl->svc)
		goto fail;

	const char *atype = json_string_value(json_object_get(obj, "addressType"));
	bool fqdn = atype && strcmp(atype, "FQDN") == 0;

	json_t *ports = json_object_get(obj, "ports");
	if (ports && !json_is_array(ports) && !json_is_null(ports)) {
		snprintf(err, ZW_EP_ERRLEN, "EndpointSlice %.64s/%.64s: ports is not a list", ns,
		         name);
		rc = ZW_EP_EINVAL;
		goto fail;
	}
	size_t np = json_array_size(ports);
	if (np > ZW_EP_MAX_PORTS) {
		snprintf(err, ZW_EP_ERRLEN,
		         "EndpointSlice %.64s/%.64s: %zu ports exceed the limit of %d", ns, name,
		         np, ZW_EP_MAX_PORTS);
		rc = ZW_EP_EINVAL;
		goto fail;
	}
	sl->ports = calloc(np ? np : 1, sizeof(*sl->ports));
	if (!sl->ports)
		goto fail;
	for (size_t i = 0; i < np; i++) {
		json_t *p = json_array_get(ports, i);
		json_t *num = json_object_get(p, "port");
		const char *proto = json_string_value(json_object_get(p, "protocol"));
		const char *pname = json_string_value(json_object_get(p, "name"));
		if (!json_is_integer(num))
			continue; /* nil port: "all ports", not usable for dialing */
		json_int_t v = json_integer_value(num);
		if (v < 1 || v > 65535) {
			snprintf(err, ZW_EP_ERRLEN,
			         "EndpointSlice %.64s/%.64s: ports[%zu].port %lld out of range", ns,
			         name, i, (long long)v);
			rc = ZW_EP_EINVAL;
			goto fail;
		}
		if (proto && strcmp(proto, "TCP") != 0)
			continue;
		sl->ports[sl->n_ports].name = strdup(pname ? pname : "");
		if (!sl->ports[sl->n_ports].name)
			goto fail;
		char why[128];
		const char *app = json_string_value(json_object_get(p, "appProtocol"));
		enum zw_proto pr = zw_proto_of_port(app, pname, NULL, why, sizeof(why));
		sl->ports[sl->n_ports].h2c = pr == ZW_PROTO_H2C;
		sl->ports[sl->n_ports].tls = pr == ZW_PROTO_TLS;
		sl->ports[sl->n_ports].tls_h2 = pr == ZW_PROTO_TLS && tls_says_h2(app, pname);
		sl->ports[sl->n_ports++].port = (uint16_t)v;
	}

	json_t *eps = json_object_get(obj, "endpoints");
	if (eps && !json_is_array(eps) && !json_is_null(eps)) {
		snprintf(err, ZW_EP_ERRLEN, "EndpointSlice %.64s/%.64s: endpoints is not a list",
		         ns, name);
		rc = ZW_EP_EINVAL;
		goto fail;
	}
	size_t ne = fqdn ? 0 : json_array_size(eps);
	if (ne > ZW_EP_MAX_PER_SLICE) {
		snprintf(err, ZW_EP_ERRLEN,
		         "EndpointSlice %.64s/%.64s: %zu endpoints exceed the limit of %d", ns,
		         name, ne, ZW_EP_MAX_PER_SLICE);
		rc = ZW_EP_EINVAL;
		goto fail;
	}
	sl->addrs = calloc(ne ? ne : 1, sizeof(*sl->addrs));
	if (!sl->addrs)
		goto fail;
	for (size_t i = 0; i < ne; i++) {
		json_t *ep = json_array_get(eps, i);
		json_t *addrs = json_object_get(ep, "addresses");
		const char *ip = json_string_value(json_array_get(addrs, 0));
		if (!ip) {
			snprintf(err, ZW_EP_ERRLEN,
			         "EndpointSlice %.64s/%.64s: endpoints[%zu].addresses is empty", ns,
			         name, i);
			rc = ZW_EP_EINVAL;
			goto fail;
		}
		struct sl_addr *a = &sl->addrs[sl->n_addrs];
		if (parse_ip(ip, a, 0) < 0) {
			snprintf(err, ZW_EP_ERRLEN,
			         "EndpointSlice %.64s/%.64s: endpoints[%zu]: \"%.64s\" is not an "
			         "IP address",
			         ns, name, i, ip);
			rc = ZW_EP_EINVAL;
			goto fail;
		}
		json_t *ready = json_object_get(json_object_get(ep, "conditions"), "ready");
		/* nil (absent or null) means unknown: treat as ready */
		a->ready = !json_is_false(ready);
		sl->n_addrs++;
	}
	*out = sl;
	return 0;
fail:
	slice_free(NULL, sl);
	return rc;
}

/* ---- services ---- */

static void cache_clear(struct service *sv)
{
	for (size_t i = 0; i < sv->n_cache; i++) {
		free(sv->cache[i].port_name);
		zw_endpoint_set_unref(sv->cache[i].set);
	}
	sv->n_cache = 0;
}

static void sports_free(struct service *sv)
{
	for (size_t i = 0; i < sv->n_sports; i++)
		free(sv->sports[i].name);
	free(sv->sports);
	sv->sports = NULL;
	sv->n_sports = 0;
}

static void service_free(struct service *sv)
{
	if (!sv)
		return;
	cache_clear(sv);
	sports_free(sv);
	free(sv->slices);
	free(sv->key);
	free(sv->ns);
	free(sv->name);
	free(sv);
}

static struct service *service_get_or_add(struct zw_endpoints *s, const char *ns, const char *name)
{
	char *key = join_key(ns, name);
	if (!key)
		return NULL;
	struct service *sv = service_find(s, key);
	if (sv) {
		free(key);
		return sv;
	}
	sv = calloc(1, sizeof(*sv));
	if (!sv) {
		free(key);
		return NULL;
	}
	sv->key = key;
	sv->ns = strdup(ns);
	sv->name = strdup(name);
	if (!sv->ns || !sv->name || zw_strmap_put(&s->services, &sv->node, sv->key) < 0) {
		service_free(sv);
		return NULL;
	}
	return sv;
}

static int str_cmp(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Fingerprint and count of the ready (ip, port name, port) set. The count
 * is of distinct IPs (an IP in several slices counts once); when the scratch
 * array cannot be allocated the count is an upper bound. */
static void service_ready_stats(const struct service *sv, size_t *n_ready, uint64_t *fp)
{
	uint64_t h = 0;
	size_t total = 0, n = 0;
	for (size_t i = 0; i < sv->n_slices; i++)
		total += sv->slices[i]->n_addrs;
	const char **ips = malloc((total ? total : 1) * sizeof(*ips));
	for (size_t i = 0; i < sv->n_slices; i++) {
		const struct slice *sl = sv->slices[i];
		for (size_t a = 0; a < sl->n_addrs; a++) {
			if (!sl->addrs[a].ready)
				continue;
			if (ips)
				ips[n] = sl->addrs[a].ip;
			n++;
			for (size_t p = 0; p < sl->n_ports; p++) {
				char buf[ZW_EP_IPLEN + 80];
				snprintf(buf, sizeof(buf), "%s|%.60s|%u", sl->addrs[a].ip,
				         sl->ports[p].name, (unsigned)sl->ports[p].port);
				uint64_t k = zw_hash_str(buf);
				h += (k ^ (k >> 31)) *
				     0x9e3779b97f4a7c15ull; /* order independent */
			}
		}
	}
	if (ips && n > 1) {
		qsort(ips, n, sizeof(*ips), str_cmp);
		size_t u = 1;
		for (size_t i = 1; i < n; i++)
			u += strcmp(ips[i - 1], ips[i]) != 0;
		n = u;
	}
	free(ips);
	*n_ready = n;
	*fp = h;
}

/* Records a notification for sv if its ready set changed. */
static int note_change(struct zw_endpoints *s, struct service *sv)
{
	size_t n;
	uint64_t fp;
	service_ready_stats(sv, &n, &fp);
	if (fp == sv->ready_fp && n == sv->n_ready)
		return 0;
	sv->ready_fp = fp;
	sv->n_ready = n;
	if (!s->n_subs)
		return 0;
	if (s->n_changes == s->cap_changes) {
		size_t ncap = s->cap_changes ? s->cap_changes * 2 : 8;
		struct change *nc = realloc(s->changes, ncap * sizeof(*nc));
		if (!nc)
			return ZW_EP_ENOMEM;
		s->changes = nc;
		s->cap_changes = ncap;
	}
	struct change *c = &s->changes[s->n_changes];
	c->ns = strdup(sv->ns);
	c->svc = strdup(sv->name);
	c->n_ready = n;
	if (!c->ns || !c->svc) {
		free(c->ns);
		free(c->svc);
		return ZW_EP_ENOMEM;
	}
	s->n_changes++;
	return 0;
}

/* Delivers pending notifications (writer thread, lock not held). */
static void flush_changes(struct zw_endpoints *s)
{
	for (size_t i = 0; i < s->n_changes; i++) {
		struct change *c = &s->changes[i];
		for (size_t k = 0; k < s->n_subs; k++)
			s->subs[k].changed(s->subs[k].ctx, c->ns, c->svc, c->n_ready);
		free(c->ns);
		free(c->svc);
	}
	s->n_changes = 0;
}

/* Removes sv from the map and frees it when nothing refers to it (lock held). */
static void service_maybe_drop(struct zw_endpoints *s, struct service *sv)
{
	if (sv->n_slices || sv->have_svc)
		return;
	zw_strmap_remove(&s->services, &sv->node);
	service_free(sv);
}

static void service_unlink_slice(struct service *sv, struct slice *sl)
{
	for (size_t i = 0; i < sv->n_slices; i++) {
		if (sv->slices[i] == sl) {
			sv->slices[i] = sv->slices[--sv->n_slices];
			return;
		}
	}
}

static int service_link_slice(struct service *sv, struct slice *sl)
{
	if (sv->n_slices == sv->cap_slices) {
		size_t ncap = sv->cap_slices ? sv->cap_slices * 2 : 4;
		struct slice **ns = realloc(sv->slices, ncap * sizeof(*ns));
		if (!ns)
			return ZW_EP_ENOMEM;
		sv->slices = ns;
		sv->cap_slices = ncap;
	}
	sv->slices[sv->n_slices++] = sl;
	return 0;
}

static void bump(struct zw_endpoints *s)
{
	atomic_fetch_add_explicit(&s->version, 1, memory_order_release);
}

/* Removes the stored slice `key` (lock held). Returns 1 if one was removed. */
static int slice_remove_locked(struct zw_endpoints *s, const char *key)
{
	struct slice *old = slice_of(zw_strmap_del(&s->slices, key));
	if (!old)
		return 0;
	struct service *sv = service_find(s, old->svc);
	if (sv) {
		service_unlink_slice(sv, old);
		cache_clear(sv);
		note_change(s, sv);
		service_maybe_drop(s, sv);
	}
	slice_free(s, old);
	return 1;
}

/* ---- public API ---- */

int zw_endpoints_new(struct zw_endpoints **out)
{
	struct zw_endpoints *s = calloc(1, sizeof(*s));
	if (!s)
		return ZW_EP_ENOMEM;
	if (pthread_mutex_init(&s->lock, NULL) != 0) {
		free(s);
		return ZW_EP_ENOMEM;
	}
	atomic_init(&s->version, 1);
	*out = s;
	return 0;
}

static void free_slice_cb(struct zw_strmap_node *n, void *ctx)
{
	slice_free(ctx, slice_of(n));
}

static void free_service_cb(struct zw_strmap_node *n, void *ctx)
{
	(void)ctx;
	service_free(service_of(n));
}

static void unref_counter_cb(struct zw_strmap_node *n, void *ctx)
{
	(void)ctx;
	counter_unref(counter_of(n));
}

static void drop_counters_cb(struct zw_strmap_node *n, void *ctx)
{
	struct slice *sl = slice_of(n);
	(void)ctx;
	free(sl->counters);
	sl->counters = NULL;
}

void zw_endpoints_free(struct zw_endpoints *s)
{
	if (!s)
		return;
	zw_strmap_each(&s->services, free_service_cb, NULL);
	zw_strmap_free(&s->services);
	/* free slices without dropping counter uses one by one: the counter map
	 * releases its references below */
	zw_strmap_each(&s->slices, drop_counters_cb, NULL);
	zw_strmap_each(&s->slices, free_slice_cb, NULL);
	zw_strmap_free(&s->slices);
	zw_strmap_each(&s->counters, unref_counter_cb, NULL);
	zw_strmap_free(&s->counters);
	for (size_t i = 0; i < s->n_changes; i++) {
		free(s->changes[i].ns);
		free(s->changes[i].svc);
	}
	free(s->changes);
	pthread_mutex_destroy(&s->lock);
	free(s);
}

int zw_endpoints_apply_slice(struct zw_endpoints *s, const json_t *slice, bool deleted,
                             char err[ZW_EP_ERRLEN])
{
	char key[512];
	err[0] = '\0';
	const char *ns = obj_str(slice, "metadata", "namespace");
	const char *name = obj_str(slice, "metadata", "name");
	if (!ns || !name || !ns[0] || !name[0]) {
		snprintf(err, ZW_EP_ERRLEN, "EndpointSlice without metadata.namespace/name");
		return ZW_EP_EINVAL;
	}
	if (key_into(key, sizeof(key), ns, name) < 0) {
		snprintf(err, ZW_EP_ERRLEN, "EndpointSlice %.64s/%.64s...: name too long", ns,
		         name);
		return ZW_EP_EINVAL;
	}
	const char *svc = json_string_value(json_object_get(
	        json_object_get(json_object_get(slice, "metadata"), "labels"), SERVICE_LABEL));
	if (deleted || !svc || !svc[0]) {
		pthread_mutex_lock(&s->lock);
		int removed = slice_remove_locked(s, key);
		pthread_mutex_unlock(&s->lock);
		if (removed)
			bump(s);
		flush_changes(s);
		return deleted ? 0 : ZW_EP_ENOTSLICE;
	}

	struct slice *sl = NULL;
	int rc = slice_parse(slice, ns, name, svc, &sl, err);
	if (rc < 0)
		return rc;
	/* counters (writer-only state) */
	size_t n_counters = sl->n_addrs * sl->n_ports;
	sl->counters = calloc(n_counters ? n_counters : 1, sizeof(*sl->counters));
	if (!sl->counters) {
		slice_free(s, sl);
		return ZW_EP_ENOMEM;
	}
	uint64_t now = zw_endpoints_now_ms();
	for (size_t a = 0; a < sl->n_addrs; a++)
		for (size_t p = 0; p < sl->n_ports; p++) {
			struct zw_ep_counter **cp = &sl->counters[a * sl->n_ports + p];
			if (counter_use(s, sl->addrs[a].ip, sl->ports[p].port, cp) < 0) {
				slice_free(s, sl);
				return ZW_EP_ENOMEM;
			}
			/* Slow start counts from the first slice that says ready. */
			if (!sl->addrs[a].ready)
				atomic_store(&(*cp)->ready_since, 0);
			else if (atomic_load(&(*cp)->ready_since) == 0)
				atomic_store(&(*cp)->ready_since, now);
		}

	pthread_mutex_lock(&s->lock);
	rc = ZW_EP_ENOMEM;
	struct service *sv = service_get_or_add(s, ns, svc);
	if (!sv)
		goto unlock;
	if (service_link_slice(sv, sl) < 0) {
		service_maybe_drop(s, sv);
		goto unlock;
	}
	struct slice *old = slice_of(zw_strmap_del(&s->slices, sl->key));
	if (zw_strmap_put(&s->slices, &sl->node, sl->key) < 0) {
		service_unlink_slice(sv, sl);
		if (old)
			/* cannot fail: a node was just taken out */
			zw_strmap_put(&s->slices, &old->node, old->key);
		service_maybe_drop(s, sv);
		goto unlock;
	}
	sl = NULL;
	if (old) {
		struct service *osv = service_find(s, old->svc);
		if (osv && osv != sv) {
			service_unlink_slice(osv, old);
			cache_clear(osv);
			note_change(s, osv);
			service_maybe_drop(s, osv);
		} else if (osv) {
			service_unlink_slice(osv, old);
		}
	}
	cache_clear(sv);
	note_change(s, sv);
	rc = 0;
	pthread_mutex_unlock(&s->lock);
	slice_free(s, old);
	bump(s);
	flush_changes(s);
	return 0;
unlock:
	pthread_mutex_unlock(&s->lock);
	slice_free(s, sl);
	return rc;
}

int zw_endpoints_apply_service(struct zw_endpoints *s, const json_t *svc, bool deleted,
                               char err[ZW_EP_ERRLEN])
{
	err[0] = '\0';
	const char *ns = obj_str(svc, "metadata", "namespace");
	const char *name = obj_str(svc, "metadata", "name");
	if (!ns || !name || !ns[0] || !name[0]) {
		snprintf(err, ZW_EP_ERRLEN, "Service without metadata.namespace/name");
		return ZW_EP_EINVAL;
	}
	struct svc_port *sp = NULL;
	size_t n = 0;
	if (!deleted) {
		json_t *ports = json_object_get(json_object_get(svc, "spec"), "ports");
		size_t np = json_array_size(ports);
		if (np > ZW_EP_MAX_PORTS) {
			snprintf(err, ZW_EP_ERRLEN, "Service %.64s/%.64s: too many ports", ns,
			         name);
			return ZW_EP_EINVAL;
		}
		sp = calloc(np ? np : 1, sizeof(*sp));
		if (!sp)
			return ZW_EP_ENOMEM;
		for (size_t i = 0; i < np; i++) {
			json_t *p = json_array_get(ports, i);
			const char *proto = json_string_value(json_object_get(p, "protocol"));
			if (proto && strcmp(proto, "TCP") != 0)
				continue;
			const char *pn = json_string_value(json_object_get(p, "name"));
			sp[n].name = strdup(pn ? pn : "");
			if (!sp[n].name)
				goto nomem;
			sp[n++].port = (int)json_integer_value(json_object_get(p, "port"));
		}
	}
	pthread_mutex_lock(&s->lock);
	struct service *sv = deleted ? NULL : service_get_or_add(s, ns, name);
	if (deleted) {
		char *key = join_key(ns, name);
		sv = key ? service_find(s, key) : NULL;
		free(key);
		if (!sv) {
			pthread_mutex_unlock(&s->lock);
			return 0;
		}
	} else if (!sv) {
		pthread_mutex_unlock(&s->lock);
		goto nomem;
	}
	sports_free(sv);
	sv->sports = sp;
	sv->n_sports = n;
	sv->have_svc = !deleted;
	sv->svc_stale = false;
	cache_clear(sv);
	service_maybe_drop(s, sv);
	pthread_mutex_unlock(&s->lock);
	bump(s);
	return 0;
nomem:
	for (size_t i = 0; i < n; i++)
		free(sp[i].name);
	free(sp);
	return ZW_EP_ENOMEM;
}

struct mark_ctx {
	const char *ns;
	size_t nslen;
	bool value;
};

static bool in_ns(const char *key, const struct mark_ctx *m)
{
	return !m->ns || (strncmp(key, m->ns, m->nslen) == 0 && key[m->nslen] == '/');
}

static void mark_slice_cb(struct zw_strmap_node *n, void *ctx)
{
	struct slice *sl = slice_of(n);
	if (in_ns(sl->key, ctx))
		sl->stale = true;
}

static void mark_service_cb(struct zw_strmap_node *n, void *ctx)
{
	struct service *sv = service_of(n);
	if (sv->have_svc && in_ns(sv->key, ctx))
		sv->svc_stale = true;
}

void zw_endpoints_resync_begin(struct zw_endpoints *s, enum zw_ep_kind kind, const char *ns)
{
	struct mark_ctx m = {ns, ns ? strlen(ns) : 0, true};
	pthread_mutex_lock(&s->lock);
	zw_strmap_each(kind == ZW_EP_KIND_SLICE ? &s->slices : &s->services,
	               kind == ZW_EP_KIND_SLICE ? mark_slice_cb : mark_service_cb, &m);
	pthread_mutex_unlock(&s->lock);
}

/* Collects keys of stale objects (so the map is not modified while walked). */
struct stale_ctx {
	char **keys;
	size_t n, cap;
	bool oom;
	enum zw_ep_kind kind;
};

static void collect_stale_cb(struct zw_strmap_node *n, void *ctx)
{
	struct stale_ctx *c = ctx;
	const char *key = NULL;
	if (c->kind == ZW_EP_KIND_SLICE) {
		struct slice *sl = slice_of(n);
		if (sl->stale)
			key = sl->key;
	} else {
		struct service *sv = service_of(n);
		if (sv->have_svc && sv->svc_stale)
			key = sv->key;
	}
	if (!key || c->oom)
		return;
	if (c->n == c->cap) {
		size_t ncap = c->cap ? c->cap * 2 : 16;
		char **nk = realloc(c->keys, ncap * sizeof(*nk));
		if (!nk) {
			c->oom = true;
			return;
		}
		c->keys = nk;
		c->cap = ncap;
	}
	c->keys[c->n] = strdup(key);
	if (!c->keys[c->n])
		c->oom = true;
	else
		c->n++;
}

void zw_endpoints_resync_end(struct zw_endpoints *s, enum zw_ep_kind kind, const char *ns)
{
	(void)ns; /* only objects marked by resync_begin(ns) are stale */
	struct stale_ctx c = {.kind = kind};
	int changed = 0;
	pthread_mutex_lock(&s->lock);
	zw_strmap_each(kind == ZW_EP_KIND_SLICE ? &s->slices : &s->services, collect_stale_cb, &c);
	for (size_t i = 0; i < c.n; i++) {
		if (kind == ZW_EP_KIND_SLICE) {
			changed |= slice_remove_locked(s, c.keys[i]);
		} else {
			struct service *sv = service_find(s, c.keys[i]);
			if (sv) {
				sports_free(sv);
				sv->have_svc = false;
				sv->svc_stale = false;
				cache_clear(sv);
				service_maybe_drop(s, sv);
				changed = 1;
			}
		}
		free(c.keys[i]);
	}
	pthread_mutex_unlock(&s->lock);
	free(c.keys);
	if (changed)
		bump(s);
	flush_changes(s);
}

/* ---- snapshots ---- */

static int ep_cmp(const void *pa, const void *pb)
{
	const struct zw_endpoint *a = pa, *b = pb;
	if (a->addr.ss_family != b->addr.ss_family)
		return a->addr.ss_family < b->addr.ss_family ? -1 : 1;
	int c;
	if (a->addr.ss_family == AF_INET)
		c = memcmp(&((const struct sockaddr_in *)&a->addr)->sin_addr,
		           &((const struct sockaddr_in *)&b->addr)->sin_addr, 4);
	else
		c = memcmp(&((const struct sockaddr_in6 *)&a->addr)->sin6_addr,
		           &((const struct sockaddr_in6 *)&b->addr)->sin6_addr, 16);
	if (c)
		return c;
	return (int)a->port - (int)b->port;
}

/* Which slice port a query selects: by name (name != NULL) or by number. */
struct port_sel {
	const char *name;
	int number;
};

static int resolve_port(const struct service *sv, int port, const char *port_name,
                        struct port_sel *sel)
{
	if (port_name) {
		*sel = (struct port_sel){port_name, 0};
		return 0;
	}
	if (sv->have_svc) {
		for (size_t i = 0; i < sv->n_sports; i++) {
			if (sv->sports[i].port == port) {
				*sel = (struct port_sel){sv->sports[i].name, 0};
				return 0;
			}
		}
		return -1;
	}
	/* Service unknown: slice port number, else the only port */
	const char *only = NULL;
	bool several = false;
	for (size_t i = 0; i < sv->n_slices; i++) {
		const struct slice *sl = sv->slices[i];
		for (size_t p = 0; p < sl->n_ports; p++) {
			if (sl->ports[p].port == port) {
				*sel = (struct port_sel){NULL, port};
				return 0;
			}
			if (!only)
				only = sl->ports[p].name;
			else if (strcmp(only, sl->ports[p].name) != 0)
				several = true;
		}
	}
	if (only && !several) {
		*sel = (struct port_sel){only, 0};
		return 0;
	}
	return -1;
}

static int build_set(const struct service *sv, int port, const char *port_name, uint64_t version,
                     struct zw_endpoint_set **out)
{
	struct port_sel sel;
	*out = &empty_set;
	if (resolve_port(sv, port, port_name, &sel) < 0)
		return 0;
	size_t cap = 0;
	for (size_t i = 0; i < sv->n_slices; i++)
		cap += sv->slices[i]->n_addrs;
	if (cap > ZW_EP_MAX_PER_SERVICE)
		cap = ZW_EP_MAX_PER_SERVICE;
	struct zw_endpoint_set *set =
	        calloc(1, sizeof(*set) + (cap ? cap : 1) * sizeof(set->eps[0]));
	if (!set)
		return ZW_EP_ENOMEM;
	atomic_init(&set->refs, 1);
	set->version = version;
	for (size_t i = 0; i < sv->n_slices; i++) {
		const struct slice *sl = sv->slices[i];
		for (size_t p = 0; p < sl->n_ports; p++) {
			const struct sl_port *sp = &sl->ports[p];
			if (sel.name ? strcmp(sp->name, sel.name) != 0 : sp->port != sel.number)
				continue;
			for (size_t a = 0; a < sl->n_addrs && set->n < cap; a++) {
				const struct sl_addr *ad = &sl->addrs[a];
				if (!ad->ready)
					continue;
				struct zw_endpoint *e = &set->eps[set->n++];
				e->addr = ad->ss;
				e->addr_len = ad->ss_len;
				if (ad->ss.ss_family == AF_INET)
					((struct sockaddr_in *)&e->addr)->sin_port =
					        htons(sp->port);
				else
					((struct sockaddr_in6 *)&e->addr)->sin6_port =
					        htons(sp->port);
				memcpy(e->ip, ad->ip, sizeof(e->ip));
				e->port = sp->port;
				e->h2c = sp->h2c;
				e->tls = sp->tls;
				e->tls_h2 = sp->tls_h2;
				e->counter = sl->counters[a * sl->n_ports + p];
			}
			break; /* one matching port per slice */
		}
	}
	qsort(set->eps, set->n, sizeof(set->eps[0]), ep_cmp);
	/* dedup (same address in several slices) */
	size_t w = 0;
	for (size_t i = 0; i < set->n; i++) {
		if (w && ep_cmp(&set->eps[w - 1], &set->eps[i]) == 0)
			continue;
		set->eps[w++] = set->eps[i];
	}
	set->n = w;
	for (size_t i = 0; i < set->n; i++)
		atomic_fetch_add_explicit(&set->eps[i].counter->refs, 1, memory_order_relaxed);
	*out = set;
	return 0;
}

int zw_endpoints_get(struct zw_endpoints *s, const char *ns, const char *svc, int port,
                     const char *port_name, struct zw_endpoint_set **out)
{
	char key[512];
	*out = &empty_set;
	if (!ns || !svc || key_into(key, sizeof(key), ns, svc) < 0)
		return 0;
	int rc = 0;
	pthread_mutex_lock(&s->lock);
	struct service *sv = service_find(s, key);
	if (!sv)
		goto out;
	for (size_t i = 0; i < sv->n_cache; i++) {
		struct cache_ent *c = &sv->cache[i];
		if (port_name ? (c->port_name && strcmp(c->port_name, port_name) == 0)
		              : (!c->port_name && c->port == port)) {
			*out = zw_endpoint_set_ref(c->set);
			goto out;
		}
	}
	struct zw_endpoint_set *set;
	rc = build_set(sv, port, port_name, atomic_load(&s->version), &set);
	if (rc < 0)
		goto out;
	*out = set;
	if (sv->n_cache < MAX_CACHE) {
		char *pn = port_name ? strdup(port_name) : NULL;
		if (port_name && !pn)
			goto out; /* not cached, still returned */
		sv->cache[sv->n_cache++] = (struct cache_ent){pn, port, zw_endpoint_set_ref(set)};
	}
out:
	pthread_mutex_unlock(&s->lock);
	return rc;
}

size_t zw_endpoints_ready_count(struct zw_endpoints *s, const char *ns, const char *svc)
{
	char key[512];
	size_t n = 0;
	if (!ns || !svc || key_into(key, sizeof(key), ns, svc) < 0)
		return 0;
	pthread_mutex_lock(&s->lock);
	struct service *sv = service_find(s, key);
	if (sv)
		n = sv->n_ready;
	pthread_mutex_unlock(&s->lock);
	return n;
}

uint64_t zw_endpoints_version(const struct zw_endpoints *s)
{
	return atomic_load_explicit(&((struct zw_endpoints *)s)->version, memory_order_acquire);
}

int zw_endpoints_subscribe(struct zw_endpoints *s, const struct zw_ep_subscriber *sub)
{
	if (s->n_subs >= ZW_EP_MAX_SUBSCRIBERS)
		return ZW_EP_ELIMIT;
	s->subs[s->n_subs++] = *sub;
	return 0;
}

struct json_ctx {
	json_t *root;
	bool oom;
};

static void service_json_cb(struct zw_strmap_node *n, void *ctx)
{
	struct json_ctx *c = ctx;
	struct service *sv = service_of(n);
	json_t *o = json_object(), *ports = json_array(), *ready = json_array();
	if (!o || !ports || !ready) {
		json_decref(o);
		json_decref(ports);
		json_decref(ready);
		c->oom = true;
		return;
	}
	for (size_t i = 0; i < sv->n_slices; i++) {
		const struct slice *sl = sv->slices[i];
		for (size_t p = 0; p < sl->n_ports; p++) {
			bool seen = false;
			size_t k;
			json_t *x;
			json_array_foreach(ports, k, x)
			{
				if (strcmp(json_string_value(json_object_get(x, "name")),
				           sl->ports[p].name) == 0 &&
				    json_integer_value(json_object_get(x, "port")) ==
				            sl->ports[p].port)
					seen = true;
			}
			if (!seen)
				json_array_append_new(ports, json_pack("{s:s,s:i}", "name",
				                                       sl->ports[p].name, "port",
				                                       (int)sl->ports[p].port));
			for (size_t a = 0; a < sl->n_addrs; a++) {
				if (!sl->addrs[a].ready)
					continue;
				char buf[ZW_EP_IPLEN + 16];
				bool v6 = sl->addrs[a].ss.ss_family == AF_INET6;
				snprintf(buf, sizeof(buf), v6 ? "[%s]:%u" : "%s:%u",
				         sl->addrs[a].ip, (unsigned)sl->ports[p].port);
				bool dup = false;
				json_array_foreach(ready, k, x)
				{
					if (strcmp(json_string_value(x), buf) == 0)
						dup = true;
				}
				if (!dup)
					json_array_append_new(ready, json_string(buf));
			}
		}
	}
	json_object_set_new(o, "ports", ports);
	json_object_set_new(o, "ready", ready);
	json_object_set_new(o, "slices", json_integer((json_int_t)sv->n_slices));
	json_object_set_new(o, "service", json_boolean(sv->have_svc));
	if (json_object_set_new(c->root, sv->key, o) != 0)
		c->oom = true;
}

int zw_endpoints_to_json(struct zw_endpoints *s, json_t **out)
{
	struct json_ctx c = {json_object(), false};
	*out = NULL;
	if (!c.root)
		return ZW_EP_ENOMEM;
	pthread_mutex_lock(&s->lock);
	zw_strmap_each(&s->services, service_json_cb, &c);
	pthread_mutex_unlock(&s->lock);
	if (c.oom) {
		json_decref(c.root);
		return ZW_EP_ENOMEM;
	}
	*out = c.root;
	return 0;
}

struct zw_endpoint_set *zw_endpoint_set_ref(struct zw_endpoint_set *set)
{
	if (set && !set->is_static)
		atomic_fetch_add_explicit(&set->refs, 1, memory_order_relaxed);
	return set;
}

void zw_endpoint_set_unref(struct zw_endpoint_set *set)
{
	if (!set || set->is_static)
		return;
	if (atomic_fetch_sub_explicit(&set->refs, 1, memory_order_acq_rel) != 1)
		return;
	for (size_t i = 0; i < set->n; i++)
		counter_unref(set->eps[i].counter);
	free(set);
}

uint64_t zw_endpoints_random(uint64_t *st)
{
	uint64_t x = *st ? *st : 0x9e3779b97f4a7c15ull;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*st = x;
	return x * 2685821657736338717ull;
}

const struct zw_endpoint *zw_endpoint_pick(const struct zw_endpoint_set *set, uint64_t *rng)
{
	if (!set || !set->n)
		return NULL;
	const struct zw_endpoint *e = &set->eps[0];
	if (set->n > 1) {
		uint64_t r = zw_endpoints_random(rng);
		size_t a = (size_t)((r >> 32) % set->n);
		size_t b = (size_t)((r & 0xffffffffu) % (set->n - 1));
		if (b >= a)
			b++;
		long oa = atomic_load_explicit(&set->eps[a].counter->outstanding,
		                               memory_order_relaxed);
		long ob = atomic_load_explicit(&set->eps[b].counter->outstanding,
		                               memory_order_relaxed);
		e = ob < oa ? &set->eps[b] : &set->eps[a];
	}
	atomic_fetch_add_explicit(&e->counter->outstanding, 1, memory_order_relaxed);
	return e;
}

void zw_endpoint_begin(const struct zw_endpoint *ep)
{
	atomic_fetch_add_explicit(&ep->counter->outstanding, 1, memory_order_relaxed);
}

void zw_endpoint_done(const struct zw_endpoint *ep)
{
	atomic_fetch_sub_explicit(&ep->counter->outstanding, 1, memory_order_relaxed);
}

long zw_endpoint_outstanding(const struct zw_endpoint *ep)
{
	return atomic_load_explicit(&ep->counter->outstanding, memory_order_relaxed);
}

int zw_endpoint_try_begin(const struct zw_endpoint *ep, long limit)
{
	if (limit <= 0) {
		zw_endpoint_begin(ep);
		return 1;
	}
	long cur = atomic_load_explicit(&ep->counter->outstanding, memory_order_relaxed);
	while (cur < limit)
		if (atomic_compare_exchange_weak_explicit(&ep->counter->outstanding, &cur, cur + 1,
		                                          memory_order_acq_rel,
		                                          memory_order_relaxed))
			return 1;
	return 0;
}

uint64_t zw_endpoint_ready_since(const struct zw_endpoint *ep)
{
	return atomic_load_explicit(&ep->counter->ready_since, memory_order_relaxed);
}

uint64_t zw_endpoints_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* ---- static spec ---- */

/* Parses "ip:port" or "[v6]:port" (tok, len bytes; lib/addr.h rules, port
 * 1..65535) into ip/port. */
static int parse_hostport(const char *tok, size_t len, char *ip, size_t iplen, long *port)
{
	int p;
	if (zw_addr_split(tok, len, 0, ip, iplen, &p) < 0)
		return -1;
	*port = p;
	struct sl_addr a;
	return parse_ip(ip, &a, 0);
}

/* Applies one entry "ns/svc:port=ip:port,..." (NUL-terminated copy). */
static int spec_entry(struct zw_endpoints *s, char *e, json_t *services, char *err)
{
	char *eq = strchr(e, '=');
	char *slash = strchr(e, '/');
	if (!eq || !slash || slash > eq) {
		snprintf(err, ZW_EP_ERRLEN,
		         "endpoint spec \"%.128s\": want ns/svc:port=ip:port,...", e);
		return ZW_EP_EINVAL;
	}
	*eq = '\0';
	char *colon = strrchr(e, ':');
	if (!colon || colon < slash || colon == slash + 1 || slash == e || !colon[1]) {
		snprintf(err, ZW_EP_ERRLEN, "endpoint spec \"%.128s\": want ns/svc:port=...", e);
		return ZW_EP_EINVAL;
	}
	*slash = '\0';
	*colon = '\0';
	const char *ns = e, *svc = slash + 1, *portspec = colon + 1;
	char *end;
	long svc_port = strtol(portspec, &end, 10);
	bool by_number = *end == '\0';
	if (by_number && (svc_port < 1 || svc_port > 65535)) {
		snprintf(err, ZW_EP_ERRLEN, "endpoint spec %.64s/%.64s: port %.64s out of range",
		         ns, svc, portspec);
		return ZW_EP_EINVAL;
	}
	char pname[64];
	if (by_number)
		snprintf(pname, sizeof(pname), "zw-%ld", svc_port);
	else
		snprintf(pname, sizeof(pname), "%.63s", portspec);

	/* the synthetic Service collects every port of every entry for ns/svc */
	char skey[512];
	snprintf(skey, sizeof(skey), "%.200s/%.200s", ns, svc);
	json_t *sobj = json_object_get(services, skey);
	if (!sobj) {
		sobj = json_pack("{s:{s:s,s:s},s:{s:[]}}", "metadata", "namespace", ns, "name", svc,
		                 "spec", "ports");
		if (!sobj || json_object_set_new(services, skey, sobj) != 0)
			return ZW_EP_ENOMEM;
	}
	json_array_append_new(
	        json_object_get(json_object_get(sobj, "spec"), "ports"),
	        json_pack("{s:s,s:i}", "name", pname, "port", by_number ? (int)svc_port : 0));

	/* one slice per distinct endpoint port */
	json_t *slices = json_object();
	if (!slices)
		return ZW_EP_ENOMEM;
	int rc = 0;
	char *save = NULL;
	for (char *tok = strtok_r(eq + 1, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		char ip[ZW_EP_IPLEN];
		long port;
		if (parse_hostport(tok, strlen(tok), ip, sizeof(ip), &port) < 0) {
			snprintf(err, ZW_EP_ERRLEN,
			         "endpoint spec %.64s/%.64s: \"%.64s\" is not ip:port or "
			         "[ipv6]:port",
			         ns, svc, tok);
			rc = ZW_EP_EINVAL;
			goto out;
		}
		char sname[128];
		snprintf(sname, sizeof(sname), STATIC_PREFIX "%.40s-%.40s-%ld", svc, pname, port);
		json_t *sl = json_object_get(slices, sname);
		if (!sl) {
			sl = json_pack("{s:s,s:{s:s,s:s,s:{s:s}},s:[{s:s,s:i,s:s}],s:[]}",
			               "addressType", strchr(ip, ':') ? "IPv6" : "IPv4", "metadata",
			               "namespace", ns, "name", sname, "labels", SERVICE_LABEL, svc,
			               "ports", "name", pname, "port", (int)port, "protocol", "TCP",
			               "endpoints");
			if (!sl || json_object_set_new(slices, sname, sl) != 0) {
				rc = ZW_EP_ENOMEM;
				goto out;
			}
		}
		json_array_append_new(
		        json_object_get(sl, "endpoints"),
		        json_pack("{s:[s],s:{s:b}}", "addresses", ip, "conditions", "ready", 1));
	}
	const char *k;
	json_t *sl;
	json_object_foreach(slices, k, sl)
	{
		rc = zw_endpoints_apply_slice(s, sl, false, err);
		if (rc < 0)
			goto out;
	}
out:
	json_decref(slices);
	return rc;
}

int zw_endpoints_apply_spec(struct zw_endpoints *s, const char *spec, char err[ZW_EP_ERRLEN])
{
	err[0] = '\0';
	json_t *services = json_object();
	if (!services)
		return ZW_EP_ENOMEM;
	int rc = 0;
	const char *p = spec ? spec : "";
	while (*p) {
		while (*p == ';' || *p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
			p++;
		if (!*p)
			break;
		size_t n = strcspn(p, "; \t\n\r");
		if (n >= MAX_SPEC_ENTRY) {
			snprintf(err, ZW_EP_ERRLEN, "endpoint spec entry longer than %d bytes",
			         MAX_SPEC_ENTRY);
			rc = ZW_EP_EINVAL;
			goto out;
		}
		char buf[MAX_SPEC_ENTRY];
		memcpy(buf, p, n);
		buf[n] = '\0';
		rc = spec_entry(s, buf, services, err);
		if (rc < 0)
			goto out;
		p += n;
	}
	const char *k;
	json_t *svc;
	json_object_foreach(services, k, svc)
	{
		rc = zw_endpoints_apply_service(s, svc, false, err);
		if (rc < 0)
			goto out;
	}
out:
	json_decref(services);
	return rc;
}
