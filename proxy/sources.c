/* zerowire-proxy sources (see sources.h and docs/routing.md "Sources").
 *
 * Everything runs on one libuv loop. Target source objects are kept per
 * kind in JSON maps (namespace/name -> {object, parsed targets}); a change
 * arms a coalescing timer whose callback rebuilds the whole table from the
 * parsed targets (linking InterceptorRoutes and HTTPScaledObjects to the
 * ScaledObjects that name them) and publishes it. EndpointSlice and Service
 * events go straight into the endpoint store.
 *
 * Static mode loads files in libuv's thread pool (uv_queue_work) and applies
 * the result on the loop. */
#include "sources.h"

#include "apiversion.h"
#include "bodies.h"
#include "kube_uv.h"
#include "log.h"
#include "target.h"
#include "yamljson.h"

#include <errno.h>
#include <malloc.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DISCOVERY_RETRY_MIN_MS 500
#define DISCOVERY_RETRY_MAX_MS 30000
#define ERRLEN                 512

enum src_kind {
	K_SO = 0, /* ScaledObject */
	K_HSO,    /* HTTPScaledObject */
	K_IR,     /* InterceptorRoute */
	K_SLICE,  /* EndpointSlice */
	K_SVC,    /* Service */
	K_COUNT,
};

static const char *const kind_names[K_COUNT] = {"ScaledObject", "HTTPScaledObject",
                                                "InterceptorRoute", "EndpointSlice", "Service"};

/* One parsed source object. The JSON document itself is not kept: only a
 * ScaledObject that names an InterceptorRoute or HTTPScaledObject keeps a
 * small skeleton of the fields linking reads (link_skeleton()). */
struct obj {
	json_t *json; /* owned link skeleton, or NULL */
	struct zw_target *targets;
	size_t n_targets;
};

struct zw_sources;

/* Live mode: a watch of one ConfigMap a static response takes its body
 * from (fieldSelector metadata.name), kept while some target names it. */
struct cm_watch {
	struct zw_sources *s;
	char *ns, *name;
	struct zw_kube_uv_watch *w;
	bool wanted;
	bool settled; /* listed once (absent now means absent), or failed */
};

/* Live mode: a watch of one TLS Secret (by name) feeding the certstore. */
struct secret_watch {
	struct zw_sources *s;
	char key[256];  /* namespace/name */
	unsigned flags; /* ZW_CERTSTORE_DEFAULT or 0 */
	struct zw_kube_uv_watch *w;
};

/* One list+watch (live mode). */
struct watch_ctx {
	struct zw_sources *s;
	enum src_kind kind;
	char *ns; /* NULL = all */
	struct zw_kube_uv_watch *w;
	bool synced;
	bool waiting_logged;
};

struct zw_sources {
	uv_loop_t *loop;
	struct zw_route_current *routes;
	struct zw_endpoints *eps;
	struct zw_kube_config *kube;
	char **namespaces;
	size_t n_namespaces;
	char *peers_ns; /* cfg->peers_namespace when the list leaves it out, else NULL */
	char *targets_file, *endpoints_file, *endpoints_spec;
	uint64_t poll_ms, coalesce_ms;
	void (*on_publish)(void *ctx, struct zw_route_table *table);
	void *ctx;

	/* target source objects per kind: key ns/name -> struct obj */
	struct obj_map {
		char **keys;
		struct obj *objs;
		size_t n, cap;
	} objs[3];

	uv_timer_t rebuild_timer;
	uv_timer_t retry_timer; /* live: discovery retry */
	uv_fs_poll_t polls[2];
	int n_polls;
	bool started, closing, dirty;
	int open_handles;
	void (*done)(void *ctx);
	void *done_ctx;

	/* ConfigMaps bodies are taken from (both modes), and their watches */
	struct zw_bodies *bodies;
	struct cm_watch **cm_watches;
	size_t n_cm_watches;

	/* live: TLS Secrets */
	struct zw_certstore *certs;
	struct secret_watch *secrets;
	size_t n_secrets;

	/* live */
	struct zw_kube_uv *ku;
	struct watch_ctx *watches;
	size_t n_watches;
	const char *slice_version; /* "v1" or "v1beta1" once known */
	unsigned discovery_delay;
	bool kube_closing;

	/* static */
	uv_work_t work;
	bool work_busy, work_again;
	json_t *work_docs; /* result of the load (owned until applied) */
	char work_err[ERRLEN];

	_Atomic bool synced;
	bool all_listed; /* live: every watch delivered SYNCED (or is waiting) */
	struct zw_sources_stats stats;
};

/* ---- object maps (small sorted arrays would do; a linear index is kept
 * sorted by key for deterministic rebuilds) ---- */

static long map_find(const struct obj_map *m, const char *key, bool *found)
{
	size_t lo = 0, hi = m->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(m->keys[mid], key);
		if (c == 0) {
			*found = true;
			return (long)mid;
		}
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	*found = false;
	return (long)lo;
}

static void obj_clear(struct obj *o)
{
	json_decref(o->json);
	zw_target_array_free(o->targets, o->n_targets);
	memset(o, 0, sizeof(*o));
}

static void map_remove(struct obj_map *m, const char *key)
{
	bool found;
	long i = map_find(m, key, &found);
	if (!found)
		return;
	obj_clear(&m->objs[i]);
	free(m->keys[i]);
	memmove(&m->keys[i], &m->keys[i + 1], (m->n - (size_t)i - 1) * sizeof(*m->keys));
	memmove(&m->objs[i], &m->objs[i + 1], (m->n - (size_t)i - 1) * sizeof(*m->objs));
	m->n--;
}

/* Stores o under key (taking over o's contents). Returns 0 or UV_ENOMEM. */
static int map_put(struct obj_map *m, const char *key, struct obj *o)
{
	bool found;
	long i = map_find(m, key, &found);
	if (found) {
		obj_clear(&m->objs[i]);
		m->objs[i] = *o;
		return 0;
	}
	if (m->n >= ZW_SOURCES_MAX_OBJECTS)
		return UV_ENOBUFS;
	if (m->n == m->cap) {
		size_t ncap = m->cap ? m->cap * 2 : 16;
		char **nk = realloc(m->keys, ncap * sizeof(*nk));
		if (!nk)
			return UV_ENOMEM;
		m->keys = nk;
		struct obj *no = realloc(m->objs, ncap * sizeof(*no));
		if (!no)
			return UV_ENOMEM;
		m->objs = no;
		m->cap = ncap;
	}
	char *k = strdup(key);
	if (!k)
		return UV_ENOMEM;
	memmove(&m->keys[i + 1], &m->keys[i], (m->n - (size_t)i) * sizeof(*m->keys));
	memmove(&m->objs[i + 1], &m->objs[i], (m->n - (size_t)i) * sizeof(*m->objs));
	m->keys[i] = k;
	m->objs[i] = *o;
	m->n++;
	return 0;
}

static void map_free(struct obj_map *m)
{
	for (size_t i = 0; i < m->n; i++) {
		obj_clear(&m->objs[i]);
		free(m->keys[i]);
	}
	free(m->keys);
	free(m->objs);
	memset(m, 0, sizeof(*m));
}

static size_t objects_count(const struct zw_sources *s)
{
	return s->objs[K_SO].n + s->objs[K_HSO].n + s->objs[K_IR].n;
}

/* ---- object dispatch ---- */

static const char *meta(const json_t *o, const char *field)
{
	return json_string_value(json_object_get(json_object_get(o, "metadata"), field));
}

/* Classifies an object by apiVersion group and kind. Returns the kind or
 * K_COUNT when it is none of ours. */
static enum src_kind classify(const json_t *o)
{
	const char *av = json_string_value(json_object_get(o, "apiVersion"));
	const char *kind = json_string_value(json_object_get(o, "kind"));
	if (!av || !kind)
		return K_COUNT;
	const char *version;
	size_t gl;
	if (zw_api_version_split(av, &gl, &version) < 0) /* no version */
		return K_COUNT;
	if (zw_api_group_is(av, "keda.sh", NULL) && strcmp(kind, "ScaledObject") == 0)
		return K_SO;
	if (zw_api_group_is(av, "http.keda.sh", NULL)) {
		if (strcmp(kind, "HTTPScaledObject") == 0)
			return K_HSO;
		if (strcmp(kind, "InterceptorRoute") == 0)
			return K_IR;
	}
	if (zw_api_group_is(av, "discovery.k8s.io", NULL) && strcmp(kind, "EndpointSlice") == 0)
		return K_SLICE;
	if (gl == 0 && strcmp(version, "v1") == 0 && strcmp(kind, "Service") == 0)
		return K_SVC;
	return K_COUNT;
}

static bool is_configmap(const json_t *o)
{
	const char *av = json_string_value(json_object_get(o, "apiVersion"));
	const char *kind = json_string_value(json_object_get(o, "kind"));
	return av && kind && strcmp(av, "v1") == 0 && strcmp(kind, "ConfigMap") == 0;
}

static void schedule_rebuild(struct zw_sources *s);

/* Copies member `name` of src (if present) into dst. Returns 0 or -1. */
static int copy_member(json_t *dst, const json_t *src, const char *name)
{
	json_t *v = json_object_get(src, name);
	if (!v)
		return 0;
	json_t *c = json_deep_copy(v);
	return c && json_object_set_new(dst, name, c) == 0 ? 0 : -1;
}

/* For a ScaledObject that names an InterceptorRoute or HTTPScaledObject,
 * returns a new document with only what zw_target_scaledobject_ref() and
 * zw_target_link_scaledobject() read: metadata namespace and name,
 * spec.scaleTargetRef, min/maxReplicaCount and the external-push triggers'
 * type and interceptorRoute/httpScaledObject metadata. For any other
 * object, or out of memory (*oom set), NULL. A 10,000-object source keeps
 * no whole documents (they are most of the memory per object). */
static json_t *link_skeleton(enum src_kind kind, const json_t *o, int *oom)
{
	enum zw_target_source rk;
	const char *ref;
	if (kind != K_SO || !zw_target_scaledobject_ref(o, &rk, &ref))
		return NULL;
	const json_t *md = json_object_get(o, "metadata"), *spec = json_object_get(o, "spec");
	json_t *sk = json_object(), *smd = json_object(), *sspec = json_object(),
	       *trigs = json_array();
	int bad = !sk || !smd || !sspec || !trigs;
	bad = bad || copy_member(smd, md, "namespace") < 0 || copy_member(smd, md, "name") < 0;
	bad = bad || copy_member(sspec, spec, "scaleTargetRef") < 0 ||
	      copy_member(sspec, spec, "minReplicaCount") < 0 ||
	      copy_member(sspec, spec, "maxReplicaCount") < 0;
	size_t i;
	json_t *trig;
	json_array_foreach(json_object_get(spec, "triggers"), i, trig)
	{
		if (bad)
			break;
		const char *type = json_string_value(json_object_get(trig, "type"));
		if (!type || strcmp(type, "external-push") != 0)
			continue;
		const json_t *tmd = json_object_get(trig, "metadata");
		json_t *t = json_object(), *nmd = json_object();
		bad = !t || !nmd || json_object_set_new(t, "type", json_string(type)) < 0 ||
		      copy_member(nmd, tmd, "interceptorRoute") < 0 ||
		      copy_member(nmd, tmd, "httpScaledObject") < 0 ||
		      json_object_set(t, "metadata", nmd) < 0 || json_array_append(trigs, t) < 0;
		json_decref(t);
		json_decref(nmd);
	}
	bad = bad || json_object_set(sspec, "triggers", trigs) < 0 ||
	      json_object_set(sk, "metadata", smd) < 0 || json_object_set(sk, "spec", sspec) < 0;
	json_decref(smd);
	json_decref(sspec);
	json_decref(trigs);
	if (bad) {
		json_decref(sk);
		*oom = 1;
		return NULL;
	}
	return sk;
}

/* Applies one target source object event (ADDED/MODIFIED or deleted). */
static void target_event(struct zw_sources *s, enum src_kind kind, json_t *o, bool deleted)
{
	const char *ns = meta(o, "namespace"), *name = meta(o, "name");
	if (!ns || !name) {
		s->stats.invalid++;
		zw_log(ZW_LOG_WARN, "source_invalid", "kind=%s reason=\"no namespace/name\"",
		       kind_names[kind]);
		return;
	}
	char key[512];
	snprintf(key, sizeof(key), "%.200s/%.200s", ns, name);
	struct obj_map *m = &s->objs[kind];
	if (deleted) {
		map_remove(m, key);
		schedule_rebuild(s);
		return;
	}
	int oom = 0;
	struct obj ob = {link_skeleton(kind, o, &oom), NULL, 0};
	if (oom) {
		zw_log(ZW_LOG_ERROR, "source_nomem", "kind=%s object=%s", kind_names[kind], key);
		return;
	}
	char err[ZW_TARGET_ERRLEN] = "";
	int rc = zw_target_parse_object(o, &ob.targets, &ob.n_targets, err);
	if (rc == ZW_TARGET_EINVAL) {
		/* logged once per resourceVersion: each event carries a new one */
		s->stats.invalid++;
		zw_log(ZW_LOG_WARN, "source_invalid", "kind=%s object=%s rv=%s reason=\"%s\"",
		       kind_names[kind], key,
		       meta(o, "resourceVersion") ? meta(o, "resourceVersion") : "-", err);
		ob.targets = NULL;
		ob.n_targets = 0;
	} else if (rc == ZW_TARGET_ENOMEM) {
		zw_log(ZW_LOG_ERROR, "source_nomem", "kind=%s object=%s", kind_names[kind], key);
		json_decref(ob.json);
		return;
	} else if (rc != ZW_TARGET_OK) {
		ob.targets = NULL; /* not a target (e.g. a ScaledObject without our trigger) */
		ob.n_targets = 0;
	}
	/* ScaledObjects are kept even without targets: they may name an
	 * InterceptorRoute or HTTPScaledObject. Invalid objects are kept too
	 * (without targets) so a later DELETED finds them. */
	rc = map_put(m, key, &ob);
	if (rc < 0) {
		zw_log(ZW_LOG_ERROR, "source_dropped", "kind=%s object=%s reason=\"%s\"",
		       kind_names[kind], key, uv_strerror(rc));
		obj_clear(&ob);
		return;
	}
	schedule_rebuild(s);
}

static void endpoint_event(struct zw_sources *s, enum src_kind kind, json_t *o, bool deleted)
{
	char err[ZW_EP_ERRLEN];
	int rc = kind == K_SLICE ? zw_endpoints_apply_slice(s->eps, o, deleted, err)
	                         : zw_endpoints_apply_service(s->eps, o, deleted, err);
	if (rc == ZW_EP_EINVAL)
		zw_log(ZW_LOG_WARN, "endpoints_invalid", "kind=%s reason=\"%s\"", kind_names[kind],
		       err);
	else if (rc == ZW_EP_ENOMEM)
		zw_log(ZW_LOG_ERROR, "endpoints_nomem", "kind=%s", kind_names[kind]);
}

static void dispatch(struct zw_sources *s, enum src_kind kind, json_t *o, bool deleted)
{
	if (kind <= K_IR)
		target_event(s, kind, o, deleted);
	else if (kind < K_COUNT)
		endpoint_event(s, kind, o, deleted);
}

/* ---- rebuild ---- */

/* Index of ScaledObjects that name an InterceptorRoute or HTTPScaledObject,
 * built once per rebuild: sorted "<source>|ns/name" -> ScaledObject. */
struct link {
	char *key;
	const json_t *so;
	size_t order; /* position of the ScaledObject in key order */
};

static int link_cmp(const void *a, const void *b)
{
	return strcmp(((const struct link *)a)->key, ((const struct link *)b)->key);
}

static int link_sort_cmp(const void *a, const void *b)
{
	const struct link *x = a, *y = b;
	int c = strcmp(x->key, y->key);
	if (c)
		return c;
	return x->order < y->order ? -1 : x->order > y->order;
}

static char *link_key(enum zw_target_source kind, const char *ns, const char *name)
{
	size_t l = strlen(ns) + strlen(name) + 8;
	char *k = malloc(l);
	if (k)
		snprintf(k, l, "%d|%s/%s", (int)kind, ns, name);
	return k;
}

/* Builds the index; *out (sorted, n entries) is owned by the caller
 * (links_free). Returns 0 or UV_ENOMEM. */
static int links_build(const struct zw_sources *s, struct link **out, size_t *n_out)
{
	const struct obj_map *m = &s->objs[K_SO];
	struct link *v = calloc(m->n ? m->n : 1, sizeof(*v));
	size_t n = 0;
	if (!v)
		return UV_ENOMEM;
	for (size_t i = 0; i < m->n; i++) {
		enum zw_target_source kind;
		const char *ref, *ns = meta(m->objs[i].json, "namespace");
		if (!m->objs[i].json || !ns ||
		    !zw_target_scaledobject_ref(m->objs[i].json, &kind, &ref))
			continue;
		v[n].key = link_key(kind, ns, ref);
		if (!v[n].key) {
			for (size_t k = 0; k < n; k++)
				free(v[k].key);
			free(v);
			return UV_ENOMEM;
		}
		/* the first ScaledObject (in key order) naming it wins */
		v[n].order = i;
		v[n++].so = m->objs[i].json;
	}
	if (n > 1)
		qsort(v, n, sizeof(*v), link_sort_cmp);
	*out = v;
	*n_out = n;
	return 0;
}

static void links_free(struct link *v, size_t n)
{
	for (size_t i = 0; v && i < n; i++)
		free(v[i].key);
	free(v);
}

/* Finds the ScaledObject in t's namespace that names t (an InterceptorRoute
 * or HTTPScaledObject target), or NULL. */
static const json_t *links_find(const struct link *v, size_t n, const struct zw_target *t)
{
	char *key = link_key(t->source, t->namespace, t->name);
	if (!key)
		return NULL;
	struct link probe = {key, NULL, 0};
	const struct link *hit = n ? bsearch(&probe, v, n, sizeof(*v), link_cmp) : NULL;
	/* bsearch may land on any of equal keys: step back to the first */
	while (hit && hit > v && strcmp(hit[-1].key, key) == 0)
		hit--;
	free(key);
	return hit ? hit->so : NULL;
}

static void update_synced(struct zw_sources *s);

static void cm_watch_event(void *ud, enum zw_watch_type type, json_t *obj)
{
	struct cm_watch *cw = ud;
	struct zw_sources *s = cw->s;
	int rc;
	if (s->closing)
		return;
	if (type == ZW_WATCH_SYNCED) {
		cw->settled = true;
		update_synced(s);
		return;
	}
	if (type != ZW_WATCH_ADDED && type != ZW_WATCH_MODIFIED && type != ZW_WATCH_DELETED)
		return;
	rc = zw_bodies_apply(s->bodies, obj, type == ZW_WATCH_DELETED);
	if (rc < 0)
		zw_log(ZW_LOG_ERROR, "configmap_nomem", "configmap=%s/%s", cw->ns, cw->name);
	else if (rc > 0)
		schedule_rebuild(s);
}

static void cm_watch_status(void *ud, const struct zw_watch_status *st)
{
	struct cm_watch *cw = ud;
	if (st->kind != ZW_WATCH_ST_RETRY || cw->s->closing)
		return;
	zw_log(ZW_LOG_WARN, "watch_retry",
	       "kind=ConfigMap configmap=%s/%s failures=%u delay_ms=%u reason=\"%s\"", cw->ns,
	       cw->name, st->failures, st->delay_ms, st->reason ? st->reason : "");
	/* A failing watch (e.g. no RBAC for ConfigMaps) must not keep the
	 * proxy unready: its pages are "missing" until it recovers. */
	cw->settled = true;
	update_synced(cw->s);
}

static void cm_watch_free(struct cm_watch *cw)
{
	if (cw->w)
		zw_kube_uv_watch_stop(cw->w);
	free(cw->ns);
	free(cw->name);
	free(cw);
}

/* Starts a watch of the one core/v1 object ns/name of `resource`
 * (configmaps, secrets) on s's loop, events to on_event/on_status with ud.
 * Returns 0 with *w set (owned by the caller), or -1. */
static int watch_named(struct zw_sources *s, const char *resource, const char *ns, const char *name,
                       zw_watch_event_fn *on_event, zw_watch_status_fn *on_status, void *ud,
                       struct zw_kube_uv_watch **w)
{
	char sel[300];
	snprintf(sel, sizeof(sel), "metadata.name=%s", name);
	struct zw_watch_spec spec = {
	        .group = "",
	        .version = "v1",
	        .resource = resource,
	        .namespace = ns,
	        .field_selector = sel,
	        .on_event = on_event,
	        .on_status = on_status,
	        .ud = ud,
	};
	return zw_kube_uv_watch_start(s->ku, &spec, w) != 0 ? -1 : 0;
}

static int cm_want(void *arg, const char *ns, const char *name)
{
	struct zw_sources *s = arg;
	struct cm_watch *cw, **v;
	for (size_t i = 0; i < s->n_cm_watches; i++) {
		cw = s->cm_watches[i];
		if (strcmp(cw->ns, ns) == 0 && strcmp(cw->name, name) == 0) {
			cw->wanted = true;
			return 0;
		}
	}
	if (s->n_cm_watches >= ZW_SOURCES_MAX_CONFIGMAPS) {
		zw_log(ZW_LOG_WARN, "configmap_limit", "configmap=%s/%s max=%d", ns, name,
		       ZW_SOURCES_MAX_CONFIGMAPS);
		return 0;
	}
	v = realloc(s->cm_watches, (s->n_cm_watches + 1) * sizeof(*v));
	if (!v)
		return UV_ENOMEM;
	s->cm_watches = v;
	cw = calloc(1, sizeof(*cw));
	if (!cw || !(cw->ns = strdup(ns)) || !(cw->name = strdup(name))) {
		if (cw)
			cm_watch_free(cw);
		return UV_ENOMEM;
	}
	cw->s = s;
	cw->wanted = true;
	if (watch_named(s, "configmaps", ns, name, cm_watch_event, cm_watch_status, cw, &cw->w) !=
	    0) {
		cm_watch_free(cw);
		return UV_ENOMEM;
	}
	s->cm_watches[s->n_cm_watches++] = cw;
	zw_log(ZW_LOG_DEBUG, "configmap_watch", "configmap=%s/%s", ns, name);
	return 0;
}

static void secret_event(void *ud, enum zw_watch_type type, json_t *obj)
{
	struct secret_watch *sw = ud;
	char err[ZW_CERTSTORE_ERRLEN];
	if (sw->s->closing ||
	    (type != ZW_WATCH_ADDED && type != ZW_WATCH_MODIFIED && type != ZW_WATCH_DELETED))
		return;
	if (zw_certstore_apply_secret(sw->s->certs, sw->key, obj, type == ZW_WATCH_DELETED,
	                              sw->flags, err) < 0)
		zw_log(ZW_LOG_WARN, "tls_secret_invalid",
		       "secret=%s reason=\"%s\" action=\"previous certificate kept\"", sw->key,
		       err);
	else
		zw_log(ZW_LOG_INFO,
		       type == ZW_WATCH_DELETED ? "tls_secret_removed" : "tls_secret_loaded",
		       "secret=%s default=%s", sw->key, sw->flags ? "true" : "false");
}

static void secret_status(void *ud, const struct zw_watch_status *st)
{
	struct secret_watch *sw = ud;
	if (st->kind == ZW_WATCH_ST_RETRY && !sw->s->closing)
		zw_log(ZW_LOG_WARN, "watch_retry",
		       "kind=Secret secret=%s failures=%u delay_ms=%u reason=\"%s\"", sw->key,
		       st->failures, st->delay_ms, st->reason ? st->reason : "");
}

/* Live mode: starts one watch per TLS Secret. Returns 0 or UV_ENOMEM. */
static int start_secret_watches(struct zw_sources *s)
{
	for (size_t i = 0; i < s->n_secrets; i++) {
		struct secret_watch *sw = &s->secrets[i];
		char ns[256];
		const char *slash = strchr(sw->key, '/');
		snprintf(ns, sizeof(ns), "%.*s", (int)(slash - sw->key), sw->key);
		if (watch_named(s, "secrets", ns, slash + 1, secret_event, secret_status, sw,
		                &sw->w) != 0)
			return UV_ENOMEM;
	}
	return 0;
}

/* Copies the TLS Secret names of cfg into s (the default once, flagged).
 * Returns 0, UV_EINVAL (err filled) or UV_ENOMEM. */
static int secrets_init(struct zw_sources *s, const struct zw_sources_config *cfg, char *err,
                        size_t errlen)
{
	size_t n = cfg->n_tls_secrets + (cfg->tls_default_secret ? 1 : 0);
	if (!n)
		return 0;
	if (!cfg->kube || !cfg->certs || n > ZW_SOURCES_MAX_TLS_SECRETS) {
		snprintf(err, errlen,
		         "sources: TLS Secrets need the API server, a store and at "
		         "most %d names",
		         ZW_SOURCES_MAX_TLS_SECRETS);
		return UV_EINVAL;
	}
	s->certs = cfg->certs;
	s->secrets = calloc(n, sizeof(*s->secrets));
	if (!s->secrets)
		return UV_ENOMEM;
	for (size_t i = 0; i < n; i++) {
		bool def = i == cfg->n_tls_secrets;
		const char *ref = def ? cfg->tls_default_secret : cfg->tls_secrets[i];
		const char *slash = strchr(ref, '/');
		if (!slash || slash == ref || !slash[1] || strchr(slash + 1, '/') ||
		    strlen(ref) >= sizeof(s->secrets[0].key)) {
			snprintf(err, errlen, "sources: TLS Secret \"%s\" is not NAMESPACE/NAME",
			         ref);
			return UV_EINVAL;
		}
		size_t k = 0; /* a name given twice is watched once */
		while (k < s->n_secrets && strcmp(s->secrets[k].key, ref) != 0)
			k++;
		struct secret_watch *sw = &s->secrets[k];
		sw->s = s;
		snprintf(sw->key, sizeof(sw->key), "%s", ref);
		sw->flags |= def ? ZW_CERTSTORE_DEFAULT : 0;
		if (k == s->n_secrets)
			s->n_secrets++;
	}
	return 0;
}

/* Live mode: watches exactly the ConfigMaps the targets ts[0..n) name;
 * those no longer named are stopped and forgotten. Returns 0 or UV_ENOMEM. */
static int cm_watches_update(struct zw_sources *s, const struct zw_target *ts, size_t n)
{
	size_t i, k = 0;
	int rc;
	for (i = 0; i < s->n_cm_watches; i++)
		s->cm_watches[i]->wanted = false;
	for (i = 0; i < n; i++)
		if (zw_target_needs_bodies(&ts[i]) &&
		    (rc = zw_bodies_each_ref(&ts[i], cm_want, s)) < 0)
			return rc;
	for (i = 0; i < s->n_cm_watches; i++) {
		struct cm_watch *cw = s->cm_watches[i];
		if (cw->wanted) {
			s->cm_watches[k++] = cw;
			continue;
		}
		zw_bodies_forget(s->bodies, cw->ns, cw->name);
		cm_watch_free(cw);
	}
	s->n_cm_watches = k;
	return 0;
}

static int rebuild(struct zw_sources *s)
{
	size_t cap = 0, n = 0;
	for (int k = K_SO; k <= K_IR; k++)
		for (size_t i = 0; i < s->objs[k].n; i++)
			cap += s->objs[k].objs[i].n_targets;
	struct zw_target *ts = calloc(cap ? cap : 1, sizeof(*ts));
	bool *owned = calloc(cap ? cap : 1, sizeof(*owned));
	struct link *links = NULL;
	size_t n_links = 0;
	int rc = UV_ENOMEM;
	if (!ts || !owned || links_build(s, &links, &n_links) < 0)
		goto out;
	/* ScaledObject targets: shallow copies (the table deep-copies) */
	for (size_t i = 0; i < s->objs[K_SO].n; i++) {
		const struct obj *o = &s->objs[K_SO].objs[i];
		for (size_t t = 0; t < o->n_targets; t++)
			ts[n++] = o->targets[t];
	}
	/* InterceptorRoutes, then HTTPScaledObjects not shadowed by an IR */
	for (int k = K_IR; k >= K_HSO; k--) {
		for (size_t i = 0; i < s->objs[k].n; i++) {
			const struct obj *o = &s->objs[k].objs[i];
			if (k == K_HSO) {
				/* a valid InterceptorRoute of the same name wins */
				bool shadowed;
				long j = map_find(&s->objs[K_IR], s->objs[k].keys[i], &shadowed);
				if (shadowed && s->objs[K_IR].objs[j].n_targets)
					continue;
			}
			for (size_t t = 0; t < o->n_targets; t++) {
				const struct zw_target *src = &o->targets[t];
				const json_t *so = links_find(links, n_links, src);
				if (!so) {
					ts[n++] = *src;
					continue;
				}
				if (zw_target_copy(&ts[n], src) != 0)
					goto out;
				owned[n] = true;
				n++;
				if (zw_target_link_scaledobject(&ts[n - 1], so) < 0)
					goto out;
			}
		}
	}
	/* Static responses with ConfigMap bodies: resolved copies. */
	for (size_t i = 0; i < n; i++) {
		if (!zw_target_needs_bodies(&ts[i]))
			continue;
		if (!owned[i]) {
			struct zw_target src = ts[i];
			if (zw_target_copy(&ts[i], &src) != 0) {
				ts[i] = src; /* not owned: nothing to free */
				goto out;
			}
			owned[i] = true;
		}
		if (zw_bodies_resolve(s->bodies, &ts[i]) < 0)
			goto out;
	}
	if (s->ku && cm_watches_update(s, ts, n) < 0)
		goto out;
	struct zw_route_table *table;
	rc = zw_route_table_build(ts, n, &table);
	if (rc < 0) {
		rc = rc == ZW_ROUTE_ENOMEM ? UV_ENOMEM : UV_EINVAL;
		goto out;
	}
	zw_route_current_publish(s->routes, zw_route_table_ref(table));
	s->stats.publishes++;
	s->stats.targets = n;
	s->stats.objects = objects_count(s);
	if (s->on_publish)
		s->on_publish(s->ctx, table);
	zw_route_table_unref(table);
	rc = 0;
out:
	for (size_t i = 0; i < n && owned; i++)
		if (owned[i])
			zw_target_free(&ts[i]);
	free(ts);
	free(owned);
	links_free(links, n_links);
	return rc;
}

static void update_synced(struct zw_sources *s)
{
	/* Ready once the ConfigMaps the first tables named are listed too, so
	 * that no placeholder answers "missing" for a ConfigMap that exists. */
	for (size_t i = 0; i < s->n_cm_watches; i++)
		if (!s->cm_watches[i]->settled)
			return;
	if (!atomic_load(&s->synced) && s->all_listed && s->stats.publishes > 0) {
		atomic_store(&s->synced, true);
		zw_log(ZW_LOG_INFO, "sources_synced", "targets=%zu objects=%zu", s->stats.targets,
		       s->stats.objects);
	}
}

static void rebuild_cb(uv_timer_t *t)
{
	struct zw_sources *s = t->data;
	s->dirty = false;
	int rc = rebuild(s);
	if (rc < 0) {
		zw_log(ZW_LOG_ERROR, "table_build_failed", "reason=\"%s\"", uv_strerror(rc));
		s->dirty = true;
		uv_timer_start(&s->rebuild_timer, rebuild_cb, 1000, 0); /* retry */
		return;
	}
	update_synced(s);
}

static void schedule_rebuild(struct zw_sources *s)
{
	if (s->closing || s->dirty)
		return;
	s->dirty = true;
	uv_timer_start(&s->rebuild_timer, rebuild_cb, s->coalesce_ms, 0);
}

/* ---- live mode ---- */

static void check_all_listed(struct zw_sources *s)
{
	if (s->all_listed || !s->slice_version)
		return;
	for (size_t i = 0; i < s->n_watches; i++)
		if (!s->watches[i].synced)
			return;
	s->all_listed = true;
	/* publish now (even if nothing changed) so synced can become true */
	s->dirty = false;
	uv_timer_stop(&s->rebuild_timer);
	rebuild_cb(&s->rebuild_timer);
	/* The initial lists' documents are gone: return their pages. */
	malloc_trim(0);
}

static void watch_event(void *ud, enum zw_watch_type type, json_t *obj)
{
	struct watch_ctx *w = ud;
	struct zw_sources *s = w->s;
	if (s->closing)
		return;
	switch (type) {
	case ZW_WATCH_ADDED:
	case ZW_WATCH_MODIFIED:
	case ZW_WATCH_DELETED:
		dispatch(s, w->kind, obj, type == ZW_WATCH_DELETED);
		break;
	case ZW_WATCH_SYNCED:
		if (!w->synced) {
			w->synced = true;
			zw_log(ZW_LOG_DEBUG, "watch_synced", "kind=%s ns=%s", kind_names[w->kind],
			       w->ns ? w->ns : "*");
			check_all_listed(s);
		}
		break;
	default:
		break;
	}
}

static void watch_status(void *ud, const struct zw_watch_status *st)
{
	struct watch_ctx *w = ud;
	struct zw_sources *s = w->s;
	switch (st->kind) {
	case ZW_WATCH_ST_WAITING:
		/* the CRD is not installed: nothing to list, quietly ready */
		if (!w->waiting_logged)
			zw_log(ZW_LOG_INFO, "watch_waiting",
			       "kind=%s reason=\"resource not served\"", kind_names[w->kind]);
		w->waiting_logged = true;
		if (!w->synced) {
			w->synced = true;
			check_all_listed(s);
		}
		break;
	case ZW_WATCH_ST_RETRY:
		zw_log(ZW_LOG_WARN, "watch_retry",
		       "kind=%s ns=%s failures=%u delay_ms=%u reason=\"%s\"", kind_names[w->kind],
		       w->ns ? w->ns : "*", st->failures, st->delay_ms,
		       st->reason ? st->reason : "");
		break;
	case ZW_WATCH_ST_RELIST:
		zw_log(ZW_LOG_INFO, "watch_relist", "kind=%s ns=%s reason=\"%s\"",
		       kind_names[w->kind], w->ns ? w->ns : "*", st->reason ? st->reason : "");
		break;
	default:
		break;
	}
}

/* Starts the next watch of s->watches: kind k in namespace ns (NULL: all;
 * borrowed from s). Returns 0 or UV_ENOMEM. */
static int add_watch(struct zw_sources *s, enum src_kind k, char *ns)
{
	static const struct {
		const char *group, *version, *resource;
	} res[K_COUNT] = {
	        [K_SO] = {"keda.sh", "v1alpha1", "scaledobjects"},
	        [K_HSO] = {"http.keda.sh", "v1alpha1", "httpscaledobjects"},
	        [K_IR] = {"http.keda.sh", "v1beta1", "interceptorroutes"},
	        [K_SLICE] = {"discovery.k8s.io", NULL, "endpointslices"},
	        [K_SVC] = {"", "v1", "services"},
	};
	struct watch_ctx *w = &s->watches[s->n_watches++];
	w->s = s;
	w->kind = k;
	w->ns = ns;
	struct zw_watch_spec spec = {
	        .group = res[k].group,
	        .version = k == K_SLICE ? s->slice_version : res[k].version,
	        .resource = res[k].resource,
	        .namespace = ns,
	        .on_event = watch_event,
	        .on_status = watch_status,
	        .ud = w,
	};
	return zw_kube_uv_watch_start(s->ku, &spec, &w->w) != 0 ? UV_ENOMEM : 0;
}

static int start_watches(struct zw_sources *s)
{
	size_t nns = s->n_namespaces ? s->n_namespaces : 1;
	/* The peers namespace outside the list: its EndpointSlices and Services. */
	s->watches = calloc(nns * K_COUNT + 2, sizeof(*s->watches));
	if (!s->watches)
		return UV_ENOMEM;
	for (size_t n = 0; n < nns; n++)
		for (int k = 0; k < K_COUNT; k++)
			if (add_watch(s, (enum src_kind)k,
			              s->n_namespaces ? s->namespaces[n] : NULL) < 0)
				return UV_ENOMEM;
	if (s->peers_ns &&
	    (add_watch(s, K_SLICE, s->peers_ns) < 0 || add_watch(s, K_SVC, s->peers_ns) < 0))
		return UV_ENOMEM;
	return 0;
}

static void discover_slices(struct zw_sources *s);

static void retry_cb(uv_timer_t *t)
{
	discover_slices(t->data);
}

static void discovery_done(void *ud, int rc, json_t *resp, const struct zw_kube_error *err)
{
	struct zw_sources *s = ud;
	if (s->closing)
		return;
	if (rc == 0 || (err && err->http_status == 404)) {
		bool v1 = rc == 0 && resp && zw_kube_discovery_has(resp, "endpointslices");
		s->slice_version = v1 ? "v1" : "v1beta1";
		zw_log(ZW_LOG_INFO, "endpointslices_version", "version=discovery.k8s.io/%s",
		       s->slice_version);
		int r = start_watches(s);
		if (r < 0)
			zw_log(ZW_LOG_ERROR, "watch_start_failed", "reason=\"%s\"", uv_strerror(r));
		return;
	}
	s->discovery_delay = s->discovery_delay ? s->discovery_delay * 2 : DISCOVERY_RETRY_MIN_MS;
	if (s->discovery_delay > DISCOVERY_RETRY_MAX_MS)
		s->discovery_delay = DISCOVERY_RETRY_MAX_MS;
	zw_log(ZW_LOG_WARN, "discovery_retry", "status=%d delay_ms=%u reason=\"%s\"",
	       err ? err->http_status : 0, s->discovery_delay, err ? err->message : "");
	uv_timer_start(&s->retry_timer, retry_cb, s->discovery_delay, 0);
}

static void discover_slices(struct zw_sources *s)
{
	char path[ZW_KUBE_PATH_MAX];
	struct zw_kube_error err;
	if (zw_kube_discovery_path("discovery.k8s.io", "v1", path, sizeof(path)) != 0 ||
	    zw_kube_uv_request(s->ku, "GET", path, NULL, NULL, 0, discovery_done, s, &err) != 0) {
		discovery_done(s, -1, NULL, NULL);
	}
}

/* ---- static mode ---- */

/* Appends the documents of one file (expanding Lists) to docs. */
static int load_file(const char *path, json_t *docs, char *err, size_t errlen)
{
	json_t *arr;
	if (zw_yaml_load_file(path, &arr, err, errlen) != 0)
		return -1;
	size_t i;
	json_t *d;
	json_array_foreach(arr, i, d)
	{
		json_t *items = json_object_get(d, "items");
		const char *kind = json_string_value(json_object_get(d, "kind"));
		if (json_is_array(items) && kind && strlen(kind) >= 4 &&
		    strcmp(kind + strlen(kind) - 4, "List") == 0) {
			size_t k;
			json_t *it;
			json_array_foreach(items, k, it)
			{
				json_array_append(docs, it);
			}
		} else {
			json_array_append(docs, d);
		}
	}
	json_decref(arr);
	return 0;
}

static void work_cb(uv_work_t *req)
{
	struct zw_sources *s = req->data;
	s->work_err[0] = '\0';
	json_t *docs = json_array();
	if (!docs) {
		snprintf(s->work_err, sizeof(s->work_err), "out of memory");
		return;
	}
	const char *files[2] = {s->targets_file, s->endpoints_file};
	for (int i = 0; i < 2; i++) {
		if (files[i] && load_file(files[i], docs, s->work_err, sizeof(s->work_err)) != 0) {
			json_decref(docs);
			return;
		}
	}
	s->work_docs = docs;
}

static void start_load(struct zw_sources *s);
static void release_one(struct zw_sources *s);

static void after_work_cb(uv_work_t *req, int status)
{
	struct zw_sources *s = req->data;
	s->work_busy = false;
	json_t *docs = s->work_docs;
	s->work_docs = NULL;
	if (s->closing || status == UV_ECANCELED) {
		json_decref(docs);
		release_one(s);
		return;
	}
	s->open_handles--; /* not closing: the timers keep the count above 0 */
	char err[ZW_EP_ERRLEN] = "";
	if (!docs) {
		s->stats.reload_errors++;
		zw_log(ZW_LOG_ERROR, "static_load_failed", "reason=\"%s\"", s->work_err);
		goto again;
	}
	/* validate the endpoint spec before touching anything */
	struct zw_endpoints *probe = NULL;
	if (s->endpoints_spec) {
		if (zw_endpoints_new(&probe) != 0 ||
		    zw_endpoints_apply_spec(probe, s->endpoints_spec, err) != 0) {
			zw_endpoints_free(probe);
			json_decref(docs);
			s->stats.reload_errors++;
			zw_log(ZW_LOG_ERROR, "static_load_failed", "reason=\"%s\"",
			       err[0] ? err : "out of memory");
			goto again;
		}
		zw_endpoints_free(probe);
	}
	for (int k = K_SO; k <= K_IR; k++)
		map_free(&s->objs[k]);
	zw_bodies_clear(s->bodies);
	zw_endpoints_resync_begin(s->eps, ZW_EP_KIND_SLICE, NULL);
	zw_endpoints_resync_begin(s->eps, ZW_EP_KIND_SERVICE, NULL);
	size_t i;
	json_t *d;
	json_array_foreach(docs, i, d)
	{
		enum src_kind k = classify(d);
		bool cm = is_configmap(d);
		if (k == K_COUNT && !cm)
			continue;
		/* as kubectl apply would: no namespace means "default" */
		json_t *md = json_object_get(d, "metadata");
		if (json_is_object(md) && !json_is_string(json_object_get(md, "namespace")))
			json_object_set_new(md, "namespace", json_string("default"));
		if (cm) {
			if (zw_bodies_apply(s->bodies, d, false) < 0)
				zw_log(ZW_LOG_ERROR, "configmap_nomem", "configmap=%s",
				       meta(d, "name") ? meta(d, "name") : "-");
			continue;
		}
		dispatch(s, k, d, false);
	}
	if (s->endpoints_spec && zw_endpoints_apply_spec(s->eps, s->endpoints_spec, err) != 0)
		zw_log(ZW_LOG_ERROR, "static_spec_failed", "reason=\"%s\"", err);
	zw_endpoints_resync_end(s->eps, ZW_EP_KIND_SLICE, NULL);
	zw_endpoints_resync_end(s->eps, ZW_EP_KIND_SERVICE, NULL);
	json_decref(docs);
	s->stats.reloads++;
	s->all_listed = true;
	s->dirty = false;
	uv_timer_stop(&s->rebuild_timer);
	rebuild_cb(&s->rebuild_timer);
	/* The parsed files were freed: give their pages back to the system
	 * (glibc keeps freed heap otherwise; the peak is a whole file set). */
	malloc_trim(0);
	zw_log(ZW_LOG_INFO, "static_loaded", "targets=%zu objects=%zu", s->stats.targets,
	       s->stats.objects);
again:
	if (s->work_again) {
		s->work_again = false;
		start_load(s);
	}
}

static void start_load(struct zw_sources *s)
{
	if (s->closing)
		return;
	if (s->work_busy) {
		s->work_again = true;
		return;
	}
	s->work.data = s;
	int rc = uv_queue_work(s->loop, &s->work, work_cb, after_work_cb);
	if (rc < 0) {
		zw_log(ZW_LOG_ERROR, "static_load_failed", "reason=\"%s\"", uv_strerror(rc));
		return;
	}
	s->work_busy = true;
	s->open_handles++;
}

static void poll_cb(uv_fs_poll_t *h, int status, const uv_stat_t *prev, const uv_stat_t *curr)
{
	(void)prev;
	(void)curr;
	struct zw_sources *s = h->data;
	if (status < 0 && status != UV_ENOENT)
		return;
	zw_log(ZW_LOG_INFO, "static_changed", "reason=\"%s\"",
	       status < 0 ? uv_strerror(status) : "mtime");
	start_load(s);
}

/* ---- public API ---- */

static char *dup_or_null(const char *s, int *oom)
{
	if (!s)
		return NULL;
	char *d = strdup(s);
	if (!d)
		*oom = 1;
	return d;
}

static void sources_free(struct zw_sources *s)
{
	for (int k = K_SO; k <= K_IR; k++)
		map_free(&s->objs[k]);
	for (size_t i = 0; i < s->n_cm_watches; i++) {
		s->cm_watches[i]->w = NULL; /* stopped with the client */
		cm_watch_free(s->cm_watches[i]);
	}
	free(s->cm_watches);
	free(s->secrets); /* their watches stopped with the client */
	zw_bodies_free(s->bodies);
	for (size_t i = 0; i < s->n_namespaces; i++)
		free(s->namespaces[i]);
	free(s->namespaces);
	free(s->peers_ns);
	free(s->watches);
	free(s->targets_file);
	free(s->endpoints_file);
	free(s->endpoints_spec);
	free(s);
}

/* Whether cfg's peers namespace needs watches of its own: live mode, a
 * namespace list that leaves it out. */
static bool peers_outside(const struct zw_sources_config *cfg)
{
	if (!cfg->kube || !cfg->peers_namespace || cfg->n_namespaces == 0)
		return false;
	for (size_t i = 0; i < cfg->n_namespaces; i++)
		if (strcmp(cfg->namespaces[i], cfg->peers_namespace) == 0)
			return false;
	return true;
}

int zw_sources_new(uv_loop_t *loop, const struct zw_sources_config *cfg,
                   struct zw_route_current *routes, struct zw_endpoints *eps,
                   struct zw_sources **out, char *err, size_t errlen)
{
	*out = NULL;
	if (!loop || !cfg || !routes || !eps) {
		snprintf(err, errlen, "sources: loop, config, routes and endpoints are required");
		return UV_EINVAL;
	}
	if (cfg->n_namespaces > ZW_SOURCES_MAX_NS) {
		snprintf(err, errlen, "sources: %zu namespaces exceed the limit of %d",
		         cfg->n_namespaces, ZW_SOURCES_MAX_NS);
		return UV_EINVAL;
	}
	if (!cfg->kube && !cfg->targets_file && !cfg->endpoints_file && !cfg->endpoints_spec) {
		snprintf(err, errlen,
		         "sources: static mode needs a targets file, an endpoints file or an "
		         "endpoints spec");
		return UV_EINVAL;
	}
	if (cfg->endpoints_spec) {
		struct zw_endpoints *probe;
		char e[ZW_EP_ERRLEN];
		if (zw_endpoints_new(&probe) != 0)
			return UV_ENOMEM;
		int rc = zw_endpoints_apply_spec(probe, cfg->endpoints_spec, e);
		zw_endpoints_free(probe);
		if (rc == ZW_EP_EINVAL) {
			snprintf(err, errlen, "sources: %s", e);
			return UV_EINVAL;
		}
		if (rc < 0)
			return UV_ENOMEM;
	}
	struct zw_sources *s = calloc(1, sizeof(*s));
	if (!s)
		return UV_ENOMEM;
	int oom = 0;
	s->loop = loop;
	s->routes = routes;
	s->eps = eps;
	s->kube = cfg->kube;
	s->targets_file = dup_or_null(cfg->targets_file, &oom);
	s->endpoints_file = dup_or_null(cfg->endpoints_file, &oom);
	s->endpoints_spec = dup_or_null(cfg->endpoints_spec, &oom);
	s->poll_ms = cfg->poll_ms ? cfg->poll_ms : ZW_SOURCES_POLL_MS;
	s->coalesce_ms = cfg->coalesce_ms ? cfg->coalesce_ms : ZW_SOURCES_COALESCE_MS;
	s->on_publish = cfg->on_publish;
	s->ctx = cfg->ctx;
	if (zw_bodies_new(&s->bodies) != 0)
		oom = 1;
	if (cfg->n_namespaces) {
		s->namespaces = calloc(cfg->n_namespaces, sizeof(*s->namespaces));
		if (!s->namespaces)
			oom = 1;
		for (size_t i = 0; s->namespaces && i < cfg->n_namespaces; i++) {
			s->namespaces[i] = dup_or_null(cfg->namespaces[i], &oom);
			s->n_namespaces = i + 1;
		}
	}
	if (peers_outside(cfg))
		s->peers_ns = dup_or_null(cfg->peers_namespace, &oom);
	int src = oom ? UV_ENOMEM : secrets_init(s, cfg, err, errlen);
	if (src < 0) {
		sources_free(s);
		return src;
	}
	uv_timer_init(loop, &s->rebuild_timer);
	s->rebuild_timer.data = s;
	uv_timer_init(loop, &s->retry_timer);
	s->retry_timer.data = s;
	s->open_handles = 2;
	atomic_init(&s->synced, false);
	*out = s;
	return 0;
}

int zw_sources_start(struct zw_sources *s)
{
	if (s->started || s->closing)
		return UV_EALREADY;
	s->started = true;
	if (s->kube) {
		if (zw_kube_uv_new(s->loop, s->kube, &s->ku) != 0 || start_secret_watches(s) != 0)
			return UV_ENOMEM;
		discover_slices(s);
		return 0;
	}
	const char *files[2] = {s->targets_file, s->endpoints_file};
	for (int i = 0; i < 2 && s->poll_ms != UINT64_MAX; i++) {
		if (!files[i])
			continue;
		uv_fs_poll_t *p = &s->polls[s->n_polls];
		uv_fs_poll_init(s->loop, p);
		p->data = s;
		s->n_polls++;
		s->open_handles++;
		int rc = uv_fs_poll_start(p, poll_cb, files[i], (unsigned)s->poll_ms);
		if (rc < 0)
			return rc;
	}
	start_load(s);
	return 0;
}

int zw_sources_reload(struct zw_sources *s)
{
	if (!s->kube && s->started)
		start_load(s);
	return 0;
}

bool zw_sources_synced(const struct zw_sources *s)
{
	return atomic_load(&((struct zw_sources *)s)->synced);
}

void zw_sources_get_stats(const struct zw_sources *s, struct zw_sources_stats *out)
{
	*out = s->stats;
	out->objects = objects_count(s);
}

/* Drops one of the things close waits for (a handle or the load in
 * flight); the last one frees s and calls done. */
static void release_one(struct zw_sources *s)
{
	if (--s->open_handles > 0)
		return;
	void (*done)(void *) = s->done;
	void *ctx = s->done_ctx;
	sources_free(s);
	if (done)
		done(ctx);
}

static void handle_closed(uv_handle_t *h)
{
	release_one(h->data);
}

static void kube_closed(void *ud)
{
	struct zw_sources *s = ud;
	s->ku = NULL;
	uv_close((uv_handle_t *)&s->rebuild_timer, handle_closed);
	uv_close((uv_handle_t *)&s->retry_timer, handle_closed);
	for (int i = 0; i < s->n_polls; i++)
		uv_close((uv_handle_t *)&s->polls[i], handle_closed);
}

void zw_sources_close(struct zw_sources *s, void (*done)(void *ctx), void *ctx)
{
	if (!s || s->closing)
		return;
	s->closing = true;
	s->done = done;
	s->done_ctx = ctx;
	atomic_store(&s->synced, false);
	if (s->work_busy)
		uv_cancel((uv_req_t *)&s->work); /* may fail if running: after_work_cb frees */
	if (s->ku) {
		zw_kube_uv_close(s->ku, kube_closed, s);
		return;
	}
	kube_closed(s);
}
