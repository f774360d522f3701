/* zerowire-webhook reconciler: leader election, route touches, wiring
 * objects and ScaledObjects owned by HTTPScaledObjects (see reconcile.h). */
#include "reconcile.h"

#include "alias.h"
#include "apiversion.h"
#include "log.h"
#include "restore.h"
#include "routekinds.h"
#include "watch_thread.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define DISCOVERY_MS     15000  /* how often served versions are checked again */
#define MAX_TOUCHES      500    /* route touches per pass; the rest wait for the next */
#define LEASE_RETRY_MS   2000   /* a follower re-reads the Lease this often */
#define RETOUCH_MS       300000 /* a touch admission ignored is tried again after this */
#define WIRING_LABEL     "zerowire.io/wiring"
#define MANAGED_SELECTOR ZW_RECONCILE_MANAGED_LABEL "=" ZW_RECONCILE_MANAGED_VALUE
#define OPTOUT_SELECTOR  ZW_LABEL_AUTOWIRE "=false"

enum watch_role {
	ROLE_ROUTE = 0,
	ROLE_GRANTS,       /* managed ReferenceGrants in the proxy namespace */
	ROLE_ALIASES,      /* managed alias Services */
	ROLE_HSO,          /* HTTPScaledObjects */
	ROLE_OWNED_SO,     /* managed ScaledObjects */
	ROLE_OPTOUT,       /* namespaces labelled zerowire.io/autowire: "false" (cluster-scoped) */
	ROLE_ALIAS_SLICES, /* managed alias EndpointSlices */
	ROLE_PROXY_SLICES, /* EndpointSlices in the proxy namespace (the proxy's, mirrored) */
	ROLE_PROXY_SVC,    /* Services in the proxy namespace (the proxy's ports) */
};

struct kind_desc {
	enum watch_role role;
	const struct zw_route_kind *rk; /* group, kind, resource, versions */
	bool cluster_wide_ns;           /* watched in the proxy namespace only (grants) */
	const char *selector;
};

/* Besides the routes (every ZW_RK_ADMIT kind of routekinds.h, ScaledObjects
 * included: a kedify-http one written before the webhook was registered is
 * converted when touched), what the reconciler watches. */
static const struct kind_desc other_kinds[] = {
        {ROLE_GRANTS, &zw_route_kinds[ZW_RK_REFERENCEGRANT], true, MANAGED_SELECTOR},
        {ROLE_ALIASES, &zw_route_kinds[ZW_RK_SERVICE], false, MANAGED_SELECTOR},
        {ROLE_HSO, &zw_route_kinds[ZW_MK_HTTPSCALEDOBJECT], false, NULL},
        {ROLE_OWNED_SO, &zw_route_kinds[ZW_MK_SCALEDOBJECT], false, MANAGED_SELECTOR},
        {ROLE_OPTOUT, &zw_route_kinds[ZW_RK_NAMESPACE], false, OPTOUT_SELECTOR},
        {ROLE_ALIAS_SLICES, &zw_route_kinds[ZW_RK_ENDPOINTSLICE], false, MANAGED_SELECTOR},
        {ROLE_PROXY_SLICES, &zw_route_kinds[ZW_RK_ENDPOINTSLICE], true, NULL},
        {ROLE_PROXY_SVC, &zw_route_kinds[ZW_RK_SERVICE], true, NULL},
};
#define N_OTHER_KINDS (sizeof(other_kinds) / sizeof(other_kinds[0]))
#define MAX_KINDS     (ZW_RK_COUNT + N_OTHER_KINDS)

struct zw_reconcile;

/* One list+watch of one kind in one namespace, at the version discovery chose. */
struct kwatch {
	struct zw_reconcile *owner;
	const struct kind_desc *kd;
	const char *version; /* NULL: kind not served (yet) */
	char *namespace;     /* NULL: all namespaces */
	struct zw_watch_thread *thread;
	json_t *objs; /* "ns/name" -> object; under owner->lock */
	atomic_int synced;
	bool unused; /* a proxy-namespace kind in a second namespace slot */
};

struct zw_reconcile {
	struct zw_reconcile_config cfg;
	pthread_t thread;
	int started;

	pthread_mutex_t lock; /* everything below, and kwatch.objs */
	pthread_cond_t cond;
	int stopping;
	int kicked;
	struct kind_desc kinds[MAX_KINDS];
	size_t n_kinds;
	struct kwatch *watches; /* n_kinds * n_ns */
	size_t n_ns;

	atomic_int leading;
	/* Lease bookkeeping (reconciler thread only). */
	int last_lease_status; /* last logged Lease failure (HTTP status, -1 none) */
	char observed_holder[256];
	char observed_rv[64];
	long long observed_at_ms;
	long long last_renew_ms;

	/* Routes touched: key -> [resourceVersion after touch, registry generation]. */
	json_t *touched;
	/* What admission would make of each route, while neither the route
	 * (resourceVersion) nor the registry (generation) changed:
	 * key -> [resourceVersion, generation, needs alias, needs grant,
	 * admission would change it]. */
	json_t *evaluated;
	unsigned long long touch_seq;
	/* "resource/ns/name" -> HTTP status of the last logged create failure. */
	json_t *create_failures;
};

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* RFC 3339 with microseconds (metav1.MicroTime). */
static void micro_time(char *buf, size_t len)
{
	struct timespec ts;
	struct tm tm;
	char base[32];

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(base, sizeof(base), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf, len, "%s.%06ldZ", base, ts.tv_nsec / 1000);
}

static const char *jstr(const json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));
	return s ? s : "";
}

static const char *meta_str(const json_t *obj, const char *key)
{
	return jstr(json_object_get(obj, "metadata"), key);
}

static const char *kube_msg(const struct zw_kube_error *e)
{
	return e->message[0] ? e->message : e->reason;
}

void zw_reconcile_kick(struct zw_reconcile *r)
{
	if (!r)
		return;
	pthread_mutex_lock(&r->lock);
	r->kicked = 1;
	pthread_cond_signal(&r->cond);
	pthread_mutex_unlock(&r->lock);
}

int zw_reconcile_leading(struct zw_reconcile *r)
{
	return r && atomic_load(&r->leading);
}

/* ---- watches ---- */

static void kw_event(void *ud, enum zw_watch_type type, json_t *obj)
{
	struct kwatch *w = ud;
	struct zw_reconcile *r = w->owner;
	char key[600];

	if (type == ZW_WATCH_SYNCED) {
		atomic_store(&w->synced, 1);
		zw_reconcile_kick(r);
		return;
	}
	if (type != ZW_WATCH_ADDED && type != ZW_WATCH_MODIFIED && type != ZW_WATCH_DELETED)
		return;
	snprintf(key, sizeof(key), "%s/%s", meta_str(obj, "namespace"), meta_str(obj, "name"));
	pthread_mutex_lock(&r->lock);
	if (type == ZW_WATCH_DELETED)
		json_object_del(w->objs, key);
	else
		json_object_set(w->objs, key, obj);
	r->kicked = 1;
	pthread_cond_signal(&r->cond);
	pthread_mutex_unlock(&r->lock);
}

static void kw_status(void *ud, const struct zw_watch_status *st)
{
	struct kwatch *w = ud;

	if (st->kind == ZW_WATCH_ST_WAITING)
		atomic_store(&w->synced, 1);
	else if (st->kind == ZW_WATCH_ST_RETRY)
		zw_wh_metrics_add(w->owner->cfg.metrics, ZW_C_ERRORS, 1);
}

static void kw_stop(struct zw_reconcile *r, struct kwatch *w)
{
	zw_watch_thread_stop(w->thread);
	w->thread = NULL;
	w->version = NULL;
	atomic_store(&w->synced, 0);
	pthread_mutex_lock(&r->lock);
	json_object_clear(w->objs);
	pthread_mutex_unlock(&r->lock);
}

static int kw_start(struct zw_reconcile *r, struct kwatch *w, const char *version)
{
	struct zw_watch_spec spec = {
	        .group = w->kd->rk->group,
	        .version = version,
	        .resource = w->kd->rk->resource,
	        .namespace = w->namespace,
	        .label_selector = w->kd->selector,
	        .on_event = kw_event,
	        .on_status = kw_status,
	        .backoff_max_ms = ZW_RECONCILE_BACKOFF_MAX_MS,
	        .ud = w,
	};

	if (zw_watch_thread_start(r->cfg.kube, &spec, &w->thread) < 0)
		return -ENOMEM;
	w->version = version;
	return 0;
}

/* Picks the first served version of every kind and (re)starts its watches. */
static void discover(struct zw_reconcile *r)
{
	for (size_t k = 0; k < r->n_kinds; k++) {
		const struct kind_desc *kd = &r->kinds[k];
		const char *chosen = NULL;
		int failed = 0;

		for (int v = 0; v < ZW_RK_MAX_VERSIONS && kd->rk->versions[v]; v++) {
			struct zw_kube_error err;
			int served = 0;
			if (zw_kube_served(r->cfg.kube, kd->rk->group, kd->rk->versions[v],
			                   kd->rk->resource, &served, &err) < 0) {
				failed = 1;
				break;
			}
			if (served) {
				chosen = kd->rk->versions[v];
				break;
			}
		}
		if (failed)
			continue; /* API server unreachable: keep what runs */
		for (size_t i = 0; i < r->n_ns; i++) {
			struct kwatch *w = &r->watches[k * r->n_ns + i];
			if (w->unused)
				continue;
			if (w->version == chosen && (w->thread || !chosen)) {
				if (!chosen)
					atomic_store(&w->synced, 1); /* nothing of it exists */
				continue;
			}
			if (w->thread)
				kw_stop(r, w);
			if (!chosen) {
				atomic_store(&w->synced, 1); /* nothing of it exists */
				continue;
			}
			if (kw_start(r, w, chosen) < 0)
				zw_log(ZW_LOG_ERROR, "reconcile_watch_failed", "resource=%s",
				       kd->rk->resource);
			else
				zw_log(ZW_LOG_INFO, "reconcile_watching", "resource=%s.%s/%s ns=%s",
				       kd->rk->resource, kd->rk->group, chosen,
				       w->namespace ? w->namespace : "*");
		}
	}
}

static int watches_synced(struct zw_reconcile *r)
{
	for (size_t i = 0; i < r->n_kinds * r->n_ns; i++)
		if (!atomic_load(&r->watches[i].synced))
			return 0;
	return 1;
}

/* Collects every object of a role into a new array (new references). */
static json_t *snapshot(struct zw_reconcile *r, enum watch_role role, json_t *versions)
{
	json_t *arr = json_array();
	const char *key;
	json_t *v;

	pthread_mutex_lock(&r->lock);
	for (size_t i = 0; i < r->n_kinds * r->n_ns; i++) {
		struct kwatch *w = &r->watches[i];
		if (w->kd->role != role || !w->version)
			continue;
		json_object_foreach(w->objs, key, v)
		{
			json_t *item = json_pack("{s:O,s:s,s:i}", "obj", v, "version", w->version,
			                         "kind", (int)(w->kd - r->kinds));
			if (item)
				json_array_append_new(arr, item);
		}
		if (versions)
			json_object_set_new(versions, w->kd->rk->resource, json_string(w->version));
	}
	pthread_mutex_unlock(&r->lock);
	return arr;
}

/* ---- leader election ---- */

static json_t *lease_body(const char *lease_ns, const char *lease_name, json_t *old,
                          const char *holder, int duration)
{
	char now[64];
	json_t *lease, *spec;
	int transitions = 0;

	micro_time(now, sizeof(now));
	if (old) {
		lease = json_deep_copy(old);
		spec = json_object_get(lease, "spec");
		if (!json_is_object(spec)) {
			spec = json_object();
			json_object_set_new(lease, "spec", spec);
		}
		transitions = (int)json_integer_value(json_object_get(spec, "leaseTransitions"));
		if (strcmp(jstr(spec, "holderIdentity"), holder) != 0) {
			if (holder[0] != '\0')
				transitions++;
			json_object_set_new(spec, "acquireTime", json_string(now));
		}
	} else {
		lease = json_pack("{s:s,s:s,s:{s:s,s:s,s:{s:s}},s:{}}", "apiVersion",
		                  "coordination.k8s.io/v1", "kind", "Lease", "metadata", "name",
		                  lease_name, "namespace", lease_ns, "labels",
		                  ZW_RECONCILE_MANAGED_LABEL, ZW_RECONCILE_MANAGED_VALUE, "spec");
		if (!lease)
			return NULL;
		spec = json_object_get(lease, "spec");
		json_object_set_new(spec, "acquireTime", json_string(now));
	}
	json_object_set_new(spec, "holderIdentity", json_string(holder));
	json_object_set_new(spec, "leaseDurationSeconds", json_integer(duration));
	json_object_set_new(spec, "renewTime", json_string(now));
	json_object_set_new(spec, "leaseTransitions", json_integer(transitions));
	return lease;
}

static void set_leading(struct zw_reconcile *r, int on)
{
	if (atomic_exchange(&r->leading, on) != on) {
		zw_wh_metrics_set(r->cfg.metrics, ZW_G_LEADER, on);
		zw_log(ZW_LOG_INFO, on ? "leader_acquired" : "leader_lost", "lease=%s/%s id=%s",
		       r->cfg.lease_namespace, r->cfg.lease_name, r->cfg.identity);
		if (on)
			zw_reconcile_kick(r);
	}
}

/* The reconciler's Lease. */
static struct zw_kube_ref lease_ref(const struct zw_reconcile *r)
{
	struct zw_kube_ref ref = {.group = "coordination.k8s.io",
	                          .version = "v1",
	                          .resource = "leases",
	                          .namespace = r->cfg.lease_namespace,
	                          .name = r->cfg.lease_name};
	return ref;
}

/* One election step: create, renew or take over the Lease. */
static void lease_step(struct zw_reconcile *r)
{
	struct zw_kube_ref ref = lease_ref(r);
	struct zw_kube_error err;
	json_t *cur = NULL, *body = NULL;
	long long now = now_ms();
	int rc;

	rc = zw_kube_get(r->cfg.kube, &ref, NULL, &cur, &err);
	if (rc < 0 && err.http_status == 404) {
		struct zw_kube_ref coll = ref;
		coll.name = NULL;
		body = lease_body(r->cfg.lease_namespace, r->cfg.lease_name, NULL, r->cfg.identity,
		                  ZW_RECONCILE_LEASE_S);
		if (body && zw_kube_create(r->cfg.kube, &coll, NULL, body, NULL, &err) == 0) {
			r->last_renew_ms = now;
			r->last_lease_status = -1;
			set_leading(r, 1);
		} else if (body && r->last_lease_status != err.http_status) {
			r->last_lease_status = err.http_status;
			zw_log(ZW_LOG_WARN, "lease_create_failed", "status=%d error=\"%s\"",
			       err.http_status, kube_msg(&err));
		}
		goto out;
	}
	if (rc < 0) {
		zw_log(ZW_LOG_WARN, "lease_get_failed", "status=%d error=\"%s\"", err.http_status,
		       kube_msg(&err));
		goto check_expiry;
	}
	{
		json_t *spec = json_object_get(cur, "spec");
		const char *holder = jstr(spec, "holderIdentity");
		const char *rv = meta_str(cur, "resourceVersion");
		long long dur = json_integer_value(json_object_get(spec, "leaseDurationSeconds"));
		int mine = strcmp(holder, r->cfg.identity) == 0;

		if (dur <= 0)
			dur = ZW_RECONCILE_LEASE_S;
		if (strcmp(holder, r->observed_holder) != 0 || strcmp(rv, r->observed_rv) != 0) {
			snprintf(r->observed_holder, sizeof(r->observed_holder), "%s", holder);
			snprintf(r->observed_rv, sizeof(r->observed_rv), "%s", rv);
			r->observed_at_ms = now;
		}
		if (!mine && holder[0] != '\0' && now - r->observed_at_ms < dur * 1000) {
			set_leading(r, 0);
			goto out;
		}
		body = lease_body(r->cfg.lease_namespace, r->cfg.lease_name, cur, r->cfg.identity,
		                  ZW_RECONCILE_LEASE_S);
		if (body && zw_kube_update(r->cfg.kube, &ref, NULL, body, NULL, &err) == 0) {
			r->last_renew_ms = now;
			r->last_lease_status = -1;
			set_leading(r, 1);
			goto out;
		}
		if (body)
			zw_log(ZW_LOG_INFO, "lease_update_failed", "status=%d error=\"%s\"",
			       err.http_status, kube_msg(&err));
	}
check_expiry:
	if (atomic_load(&r->leading) && now - r->last_renew_ms > ZW_RECONCILE_LEASE_S * 1000)
		set_leading(r, 0);
out:
	json_decref(cur);
	json_decref(body);
}

static void lease_release(struct zw_reconcile *r)
{
	struct zw_kube_ref ref = lease_ref(r);
	struct zw_kube_error err;
	json_t *cur = NULL, *body = NULL;

	if (!atomic_load(&r->leading))
		return;
	set_leading(r, 0);
	if (zw_kube_get(r->cfg.kube, &ref, NULL, &cur, &err) < 0)
		return;
	if (strcmp(jstr(json_object_get(cur, "spec"), "holderIdentity"), r->cfg.identity) == 0) {
		body = lease_body(r->cfg.lease_namespace, r->cfg.lease_name, cur, "", 1);
		if (body)
			zw_kube_update(r->cfg.kube, &ref, NULL, body, NULL, &err);
	}
	json_decref(cur);
	json_decref(body);
}

int zw_reconcile_hold_lease(struct zw_kube *kube, const char *lease_ns, const char *lease_name,
                            const char *holder, int duration_s, struct zw_kube_error *err)
{
	struct zw_kube_ref ref = {.group = "coordination.k8s.io",
	                          .version = "v1",
	                          .resource = "leases",
	                          .namespace = lease_ns,
	                          .name = lease_name};
	json_t *cur = NULL, *body = NULL;
	int rc = -1;

	if (zw_kube_get(kube, &ref, NULL, &cur, err) < 0 && err->http_status != 404)
		goto out;
	body = lease_body(lease_ns, lease_name, cur, holder, duration_s);
	if (!body) {
		err->http_status = 0;
		snprintf(err->reason, sizeof(err->reason), "%s", "NoMemory");
		snprintf(err->message, sizeof(err->message), "%s", "out of memory");
		goto out;
	}
	if (!cur) {
		ref.name = NULL;
		rc = zw_kube_create(kube, &ref, NULL, body, NULL, err);
	} else {
		rc = zw_kube_update(kube, &ref, NULL, body, NULL, err);
	}
out:
	json_decref(cur);
	json_decref(body);
	return rc;
}

/* ---- helpers for a pass ---- */

static int split_api_version(const char *av, char *group, size_t glen, char *version, size_t vlen)
{
	size_t gl;
	const char *v;

	if (zw_api_version_split(av, &gl, &v) < 0)
		return -1;
	snprintf(group, glen, "%.*s", (int)gl, av);
	snprintf(version, vlen, "%s", v);
	return 0;
}

/* Nonzero when ref (a backendRef / Ingress backend service) names the proxy. */
static int names_proxy_backend_ref(struct zw_reconcile *r, const json_t *ref, const char *ns)
{
	const char *group = jstr(ref, "group"), *kind = jstr(ref, "kind");
	const char *rns = jstr(ref, "namespace");

	if (group[0] != '\0' || (kind[0] != '\0' && strcmp(kind, "Service") != 0))
		return 0;
	if (rns[0] == '\0')
		rns = ns;
	return strcmp(jstr(ref, "name"), r->cfg.mutate->proxy_service) == 0 &&
	       strcmp(rns, r->cfg.mutate->proxy_namespace) == 0;
}

static int gateway_route_needs_grant(struct zw_reconcile *r, const json_t *obj, const char *ns)
{
	json_t *rules = json_object_get(json_object_get(obj, "spec"), "rules"), *rule, *br;
	size_t i, j;

	if (strcmp(ns, r->cfg.mutate->proxy_namespace) == 0)
		return 0;
	json_array_foreach(rules, i, rule)
	{
		json_array_foreach(json_object_get(rule, "backendRefs"), j, br)
		{
			if (names_proxy_backend_ref(r, br, ns))
				return 1;
		}
	}
	return 0;
}

static int ingress_backend_alias(struct zw_reconcile *r, const json_t *backend)
{
	const json_t *svc = json_object_get(backend, "service");

	return svc && strcmp(jstr(svc, "name"), r->cfg.mutate->alias_service) == 0;
}

static int ingress_needs_alias(struct zw_reconcile *r, const json_t *obj, const char *ns)
{
	json_t *spec = json_object_get(obj, "spec"), *rule, *path;
	size_t i, j;

	if (strcmp(ns, r->cfg.mutate->proxy_namespace) == 0 &&
	    strcmp(r->cfg.mutate->alias_service, r->cfg.mutate->proxy_service) == 0)
		return 0;
	if (ingress_backend_alias(r, json_object_get(spec, "defaultBackend")))
		return 1;
	json_array_foreach(json_object_get(spec, "rules"), i, rule)
	{
		json_array_foreach(json_object_get(json_object_get(rule, "http"), "paths"), j, path)
		{
			if (ingress_backend_alias(r, json_object_get(path, "backend")))
				return 1;
		}
	}
	return 0;
}

/* Merge-patches the reconcile annotation onto one route. */
static int touch(struct zw_reconcile *r, const struct kind_desc *kd, const char *version,
                 const json_t *obj, uint64_t gen)
{
	struct zw_kube_ref ref = {.group = kd->rk->group,
	                          .version = version,
	                          .resource = kd->rk->resource,
	                          .namespace = meta_str(obj, "namespace"),
	                          .name = meta_str(obj, "name")};
	struct zw_kube_error err;
	char val[64], key[600];
	json_t *patch, *out = NULL;
	int rc;

	snprintf(val, sizeof(val), "%llu-%llu", (unsigned long long)gen, ++r->touch_seq);
	patch = json_pack("{s:{s:{s:s}}}", "metadata", "annotations", ZW_RECONCILE_ANNOTATION, val);
	if (!patch)
		return -ENOMEM;
	rc = zw_kube_patch(r->cfg.kube, &ref, NULL, ZW_KUBE_PATCH_MERGE, patch, &out, &err);
	json_decref(patch);
	snprintf(key, sizeof(key), "%s.%s/%s/%s", kd->rk->resource, kd->rk->group, ref.namespace,
	         ref.name);
	if (rc < 0) {
		zw_wh_metrics_add(r->cfg.metrics, ZW_C_RECONCILE_ERRORS, 1);
		zw_log(ZW_LOG_WARN, "touch_failed", "route=%s status=%d error=\"%s\"", key,
		       err.http_status, kube_msg(&err));
		return -EIO;
	}
	json_object_set_new(r->touched, key,
	                    json_pack("[s,I,I]", meta_str(out, "resourceVersion"), (json_int_t)gen,
	                              (json_int_t)now_ms()));
	json_decref(out);
	zw_wh_metrics_add(r->cfg.metrics, ZW_C_RECONCILE_TOUCHES, 1);
	zw_log(ZW_LOG_INFO, "route_touched", "route=%s generation=%llu", key,
	       (unsigned long long)gen);
	return 0;
}

/* Whether route obj of namespace ns needs the alias Service or a
 * ReferenceGrant. */
static void needs_wiring(struct zw_reconcile *r, const struct kind_desc *kd, const json_t *obj,
                         const char *ns, int *alias, int *grant)
{
	if (kd->rk->wiring == ZW_WIRE_ALIAS)
		*alias = ingress_needs_alias(r, obj, ns);
	else if (kd->rk->wiring == ZW_WIRE_GRANT_HTTPROUTE ||
	         kd->rk->wiring == ZW_WIRE_GRANT_GRPCROUTE)
		*grant = gateway_route_needs_grant(r, obj, ns);
}

/* A route in a namespace that opted out: admission is not called there, so
 * the route is restored by a direct patch. Returns 1 when it was (its wiring
 * is no longer needed), else 0. */
static int restore_opted_out(struct zw_reconcile *r, const struct kind_desc *kd,
                             const char *version, const json_t *obj)
{
	char msg[600];
	enum zw_restore_status st =
	        zw_restore_route(r->cfg.kube, kd->rk->group, version, kd->rk->resource, obj,
	                         r->cfg.mutate, msg, sizeof(msg));

	if (st == ZW_RS_PATCHED) {
		zw_log(ZW_LOG_INFO, "route_restored",
		       "route=%s.%s/%s/%s reason=namespace_opt_out %s", kd->rk->resource,
		       kd->rk->group, meta_str(obj, "namespace"), meta_str(obj, "name"), msg);
		return 1;
	}
	if (st != ZW_RS_UNCHANGED) {
		zw_wh_metrics_add(r->cfg.metrics, ZW_C_RECONCILE_ERRORS, 1);
		zw_log(ZW_LOG_WARN, "restore_failed", "route=%s.%s/%s/%s error=\"%s\"",
		       kd->rk->resource, kd->rk->group, meta_str(obj, "namespace"),
		       meta_str(obj, "name"), st == ZW_RS_NOMEM ? "out of memory" : msg);
	}
	return 0;
}

/* Routes: touch those admission would change now; collect wiring needs. */
static void pass_routes(struct zw_reconcile *r, json_t *grants_needed, json_t *aliases_needed)
{
	json_t *items = snapshot(r, ROLE_ROUTE, NULL), *item;
	json_t *optout_items = snapshot(r, ROLE_OPTOUT, NULL);
	uint64_t gen = zw_registry_generation(r->cfg.reg);
	json_t *seen = json_object(), *optout = json_object();
	unsigned touches = 0;
	size_t i;

	json_array_foreach(optout_items, i, item)
	{
		json_object_set_new(optout, meta_str(json_object_get(item, "obj"), "name"),
		                    json_true());
	}

	json_array_foreach(items, i, item)
	{
		json_t *obj = json_object_get(item, "obj"), *desired = NULL, *rec, *ev;
		const struct kind_desc *kd =
		        &r->kinds[json_integer_value(json_object_get(item, "kind"))];
		const char *version = jstr(item, "version");
		const char *ns = meta_str(obj, "namespace");
		const char *rv = meta_str(obj, "resourceVersion");
		char group[128], ver[32], key[600];
		struct zw_mutate_result info;
		int alias = 0, grant = 0, differs;

		if (split_api_version(jstr(obj, "apiVersion"), group, sizeof(group), ver,
		                      sizeof(ver)) < 0)
			continue;
		snprintf(key, sizeof(key), "%s.%s/%s/%s", kd->rk->resource, kd->rk->group, ns,
		         meta_str(obj, "name"));
		json_object_set_new(seen, key, json_true());
		ev = json_object_get(r->evaluated, key);
		if (json_object_get(optout, ns)) {
			/* Not restored yet (or by hand at the proxy): wiring as it is. */
			json_object_del(r->evaluated, key);
			if (restore_opted_out(r, kd, version, obj))
				continue;
			needs_wiring(r, kd, obj, ns, &alias, &grant);
			differs = 0;
		} else if (ev && rv && strcmp(json_string_value(json_array_get(ev, 0)), rv) == 0 &&
		           (uint64_t)json_integer_value(json_array_get(ev, 1)) == gen) {
			/* Neither the route nor the registry changed since. */
			alias = json_is_true(json_array_get(ev, 2));
			grant = json_is_true(json_array_get(ev, 3));
			differs = json_is_true(json_array_get(ev, 4));
		} else {
			const json_t *eff;
			int rc;
			memset(&info, 0, sizeof(info));
			rc = zw_mutate_object(obj, group, ver, jstr(obj, "kind"), NULL, r->cfg.reg,
			                      r->cfg.mutate, &desired, NULL, &info);
			zw_wh_metrics_add(r->cfg.metrics, ZW_C_RECONCILE_EVALUATIONS, 1);
			eff = rc == 0 && desired ? desired : obj;
			needs_wiring(r, kd, eff, ns, &alias, &grant);
			differs = rc == 0 && desired && !json_equal(desired, obj);
			json_decref(desired);
			if (rv && rc == 0)
				json_object_set_new(r->evaluated, key,
				                    json_pack("[s,I,b,b,b]", rv, (json_int_t)gen,
				                              alias, grant, differs));
		}
		if (alias)
			json_object_set_new(aliases_needed, ns, json_true());
		if (grant) {
			json_t *set = json_object_get(grants_needed, ns);
			if (!set) {
				set = json_object();
				json_object_set_new(grants_needed, ns, set);
			}
			json_object_set_new(set, kd->rk->kind, json_true());
		}
		if (differs && touches < MAX_TOUCHES) {
			rec = json_object_get(r->touched, key);
			if (rec &&
			    strcmp(json_is_string(json_array_get(rec, 0))
			                   ? json_string_value(json_array_get(rec, 0))
			                   : "",
			           meta_str(obj, "resourceVersion")) == 0 &&
			    (uint64_t)json_integer_value(json_array_get(rec, 1)) == gen &&
			    now_ms() - json_integer_value(json_array_get(rec, 2)) < RETOUCH_MS) {
				/* Touched for this generation and admission left it: the
				 * webhook does not see it (namespace excluded, not
				 * registered, or down behind failurePolicy Ignore). Wait
				 * for the next change, or RETOUCH_MS. */
			} else if (touch(r, kd, version, obj, gen) == 0) {
				touches++;
			}
		}
	}
	/* Forget touch records of routes that are gone. */
	{
		const char *k;
		json_t *v, *tmp;
		json_object_foreach_safe(r->touched, tmp, k, v)
		{
			if (!json_object_get(seen, k))
				json_object_del(r->touched, k);
		}
		json_object_foreach_safe(r->evaluated, tmp, k, v)
		{
			if (!json_object_get(seen, k))
				json_object_del(r->evaluated, k);
		}
	}
	json_decref(seen);
	json_decref(optout);
	json_decref(optout_items);
	json_decref(items);
}

static int create_obj(struct zw_reconcile *r, const char *group, const char *version,
                      const char *resource, const char *ns, json_t *obj, const char *what)
{
	struct zw_kube_ref ref = {
	        .group = group, .version = version, .resource = resource, .namespace = ns};
	struct zw_kube_error err;

	char key[600];

	snprintf(key, sizeof(key), "%s/%s/%s", resource, ns, meta_str(obj, "name"));
	if (zw_kube_create(r->cfg.kube, &ref, NULL, obj, NULL, &err) < 0) {
		zw_wh_metrics_add(r->cfg.metrics, ZW_C_RECONCILE_ERRORS, 1);
		/* Logged once per object and status (a foreign object of the same
		 * name would otherwise be reported every pass). */
		if (json_integer_value(json_object_get(r->create_failures, key)) !=
		    err.http_status) {
			json_object_set_new(r->create_failures, key, json_integer(err.http_status));
			zw_log(ZW_LOG_WARN, "create_failed",
			       "what=%s ns=%s name=%s status=%d error=\"%s\"", what, ns,
			       meta_str(obj, "name"), err.http_status, kube_msg(&err));
		}
		return -EIO;
	}
	json_object_del(r->create_failures, key);
	zw_wh_metrics_add(r->cfg.metrics, ZW_C_RECONCILE_CREATED, 1);
	zw_log(ZW_LOG_INFO, "created", "what=%s ns=%s name=%s", what, ns, meta_str(obj, "name"));
	return 0;
}

static int delete_obj(struct zw_reconcile *r, const char *group, const char *version,
                      const char *resource, const json_t *obj, const char *what)
{
	struct zw_kube_ref ref = {.group = group,
	                          .version = version,
	                          .resource = resource,
	                          .namespace = meta_str(obj, "namespace"),
	                          .name = meta_str(obj, "name")};
	struct zw_kube_error err;

	if (zw_kube_delete(r->cfg.kube, &ref, NULL, NULL, &err) < 0 && err.http_status != 404) {
		zw_wh_metrics_add(r->cfg.metrics, ZW_C_RECONCILE_ERRORS, 1);
		zw_log(ZW_LOG_WARN, "delete_failed", "what=%s ns=%s name=%s status=%d error=\"%s\"",
		       what, ref.namespace, ref.name, err.http_status, kube_msg(&err));
		return -EIO;
	}
	zw_wh_metrics_add(r->cfg.metrics, ZW_C_RECONCILE_DELETED, 1);
	zw_log(ZW_LOG_INFO, "deleted", "what=%s ns=%s name=%s", what, ref.namespace, ref.name);
	return 0;
}

static int patch_spec(struct zw_reconcile *r, const char *group, const char *version,
                      const char *resource, const json_t *obj, json_t *patch, const char *what)
{
	struct zw_kube_ref ref = {.group = group,
	                          .version = version,
	                          .resource = resource,
	                          .namespace = meta_str(obj, "namespace"),
	                          .name = meta_str(obj, "name")};
	struct zw_kube_error err;

	if (zw_kube_patch(r->cfg.kube, &ref, NULL, ZW_KUBE_PATCH_MERGE, patch, NULL, &err) < 0) {
		zw_wh_metrics_add(r->cfg.metrics, ZW_C_RECONCILE_ERRORS, 1);
		zw_log(ZW_LOG_WARN, "update_failed", "what=%s ns=%s name=%s status=%d error=\"%s\"",
		       what, ref.namespace, ref.name, err.http_status, kube_msg(&err));
		return -EIO;
	}
	zw_log(ZW_LOG_INFO, "updated", "what=%s ns=%s name=%s", what, ref.namespace, ref.name);
	return 0;
}

static json_t *managed_labels(const char *role)
{
	return json_pack("{s:s,s:s}", ZW_RECONCILE_MANAGED_LABEL, ZW_RECONCILE_MANAGED_VALUE,
	                 WIRING_LABEL, role);
}

/* ReferenceGrants `zerowire-<ns>` in the proxy namespace. */
static void pass_grants(struct zw_reconcile *r, json_t *needed)
{
	json_t *versions = json_object();
	json_t *items = snapshot(r, ROLE_GRANTS, versions), *item;
	const char *version = json_string_value(json_object_get(versions, "referencegrants"));
	const char *pns = r->cfg.mutate->proxy_namespace;
	json_t *have = json_object(), *set;
	const char *ns;
	size_t i;

	if (!version) {
		/* ReferenceGrant not served: nothing to create, and admission
		 * cannot expect one. */
		json_object_foreach(needed, ns, set)
		{
			zw_registry_set_wiring(r->cfg.reg, ZW_WIRE_GRANT_HTTPROUTE, ns, false);
		}
		goto out;
	}
	json_array_foreach(items, i, item)
	{
		json_t *obj = json_object_get(item, "obj");
		const char *name = meta_str(obj, "name");
		if (strcmp(meta_str(obj, "namespace"), pns) != 0 ||
		    strncmp(name, "zerowire-", 9) != 0)
			continue;
		json_object_set(have, name, obj);
	}
	/* Create or fix what is needed. */
	json_object_foreach(needed, ns, set)
	{
		char name[300];
		json_t *from = json_array(), *want, *cur;
		const char *k;
		json_t *v;

		snprintf(name, sizeof(name), "zerowire-%s", ns);
		json_object_foreach(set, k, v)
		{
			json_array_append_new(from, json_pack("{s:s,s:s,s:s}", "group",
			                                      "gateway.networking.k8s.io", "kind",
			                                      k, "namespace", ns));
		}
		want = json_pack("{s:o,s:[{s:s,s:s,s:s}]}", "from", from, "to", "group", "", "kind",
		                 "Service", "name", r->cfg.mutate->proxy_service);
		cur = json_object_get(have, name);
		if (!cur) {
			char av[128];
			json_t *obj;
			snprintf(av, sizeof(av), "gateway.networking.k8s.io/%s", version);
			obj = json_pack("{s:s,s:s,s:{s:s,s:s,s:o},s:O}", "apiVersion", av, "kind",
			                "ReferenceGrant", "metadata", "name", name, "namespace",
			                pns, "labels", managed_labels("referencegrant"), "spec",
			                want);
			if (obj && create_obj(r, "gateway.networking.k8s.io", version,
			                      "referencegrants", pns, obj, "ReferenceGrant") == 0) {
				json_object_foreach(set, k, v)
				{
					zw_registry_set_wiring(r->cfg.reg,
					                       strcmp(k, "GRPCRoute") == 0
					                               ? ZW_WIRE_GRANT_GRPCROUTE
					                               : ZW_WIRE_GRANT_HTTPROUTE,
					                       ns, true);
				}
			}
			json_decref(obj);
		} else {
			if (!json_equal(json_object_get(cur, "spec"), want)) {
				json_t *patch = json_pack("{s:O}", "spec", want);
				if (patch)
					patch_spec(r, "gateway.networking.k8s.io", version,
					           "referencegrants", cur, patch, "ReferenceGrant");
				json_decref(patch);
			}
			zw_registry_set_wiring(r->cfg.reg, ZW_WIRE_GRANT_HTTPROUTE, ns,
			                       !!json_object_get(set, "HTTPRoute"));
			zw_registry_set_wiring(r->cfg.reg, ZW_WIRE_GRANT_GRPCROUTE, ns,
			                       !!json_object_get(set, "GRPCRoute"));
		}
		json_decref(want);
	}
	/* Remove what nothing needs. */
	{
		const char *name;
		json_t *obj;
		json_object_foreach(have, name, obj)
		{
			const char *gns = name + 9;
			if (json_object_get(needed, gns))
				continue;
			if (delete_obj(r, "gateway.networking.k8s.io", version, "referencegrants",
			               obj, "ReferenceGrant") == 0) {
				zw_registry_set_wiring(r->cfg.reg, ZW_WIRE_GRANT_HTTPROUTE, gns,
				                       false);
				zw_registry_set_wiring(r->cfg.reg, ZW_WIRE_GRANT_GRPCROUTE, gns,
				                       false);
			}
		}
	}
out:
	json_decref(have);
	json_decref(items);
	json_decref(versions);
}

/* The proxy Service (a new reference), or NULL when not seen. */
static json_t *proxy_service_obj(struct zw_reconcile *r)
{
	json_t *items = snapshot(r, ROLE_PROXY_SVC, NULL), *item, *found = NULL;
	size_t i;

	json_array_foreach(items, i, item)
	{
		json_t *obj = json_object_get(item, "obj");
		if (strcmp(meta_str(obj, "name"), r->cfg.mutate->proxy_service) == 0 &&
		    strcmp(meta_str(obj, "namespace"), r->cfg.mutate->proxy_namespace) == 0)
			found = json_incref(obj);
	}
	json_decref(items);
	return found;
}

/* The alias EndpointSlices (endpointslice mode): for every alias Service
 * in have (ns -> object, created already: it owns them), one per address
 * type of the proxy Service's EndpointSlices, with their ready endpoints;
 * every other managed alias slice is deleted. */
static void pass_alias_slices(struct zw_reconcile *r, const json_t *have)
{
	json_t *versions = json_object();
	json_t *mine = snapshot(r, ROLE_ALIAS_SLICES, versions);
	json_t *proxy = snapshot(r, ROLE_PROXY_SLICES, NULL);
	const char *version = json_string_value(json_object_get(versions, "endpointslices"));
	const struct zw_mutate_config *m = r->cfg.mutate;
	json_t *slices = json_array(), *want = json_object(), *mirror = NULL, *item, *svc;
	const char *ns, *key;
	char av[64];
	size_t i;

	if (!version || !slices || !want)
		goto out;
	snprintf(av, sizeof(av), "discovery.k8s.io/%s", version);
	json_array_foreach(proxy, i, item)
	{
		json_t *obj = json_object_get(item, "obj");
		if (strcmp(meta_str(obj, "namespace"), m->proxy_namespace) == 0)
			json_array_append(slices, obj);
	}
	mirror = zw_alias_mirror(slices, m->proxy_service);
	if (!mirror)
		goto out;
	if (r->cfg.alias_mode == ZW_ALIAS_ENDPOINTSLICE)
		json_object_foreach((json_t *)have, ns, svc)
		{
			const char *type;
			json_t *entry;
			if (meta_str(svc, "uid")[0] == '\0')
				continue;
			json_object_foreach(mirror, type, entry)
			{
				json_t *obj = zw_alias_slice_object(
				        ns, m->alias_service, meta_str(svc, "uid"), av, entry);
				char k[600];
				if (!obj)
					continue;
				snprintf(k, sizeof(k), "%s/%s", ns, meta_str(obj, "name"));
				json_object_set_new(want, k, obj);
			}
		}
	json_array_foreach(mine, i, item)
	{
		json_t *obj = json_object_get(item, "obj"), *w;
		char k[600];
		if (strcmp(jstr(json_object_get(json_object_get(obj, "metadata"), "labels"),
		                WIRING_LABEL),
		           "alias") != 0)
			continue;
		snprintf(k, sizeof(k), "%s/%s", meta_str(obj, "namespace"), meta_str(obj, "name"));
		w = json_object_get(want, k);
		if (!w) {
			delete_obj(r, "discovery.k8s.io", version, "endpointslices", obj,
			           "alias EndpointSlice");
		} else {
			if (!zw_alias_slice_matches(obj, w)) {
				json_t *patch = json_pack("{s:O,s:O}", "endpoints",
				                          json_object_get(w, "endpoints"), "ports",
				                          json_object_get(w, "ports"));
				if (patch)
					patch_spec(r, "discovery.k8s.io", version, "endpointslices",
					           obj, patch, "alias EndpointSlice");
				json_decref(patch);
			}
			json_object_del(want, k);
		}
	}
	json_object_foreach(want, key, item)
	{
		create_obj(r, "discovery.k8s.io", version, "endpointslices",
		           meta_str(item, "namespace"), item, "alias EndpointSlice");
	}
out:
	json_decref(mirror);
	json_decref(want);
	json_decref(slices);
	json_decref(proxy);
	json_decref(mine);
	json_decref(versions);
}

/* Alias Services for Ingress namespaces: selectorless with mirrored
 * EndpointSlices, or ExternalName to the proxy (alias.h); a Service of the
 * other mode is converted in place. */
static void pass_aliases(struct zw_reconcile *r, json_t *needed)
{
	json_t *items = snapshot(r, ROLE_ALIASES, NULL), *item;
	const struct zw_mutate_config *m = r->cfg.mutate;
	json_t *have = json_object(), *kept = json_object();
	json_t *proxy_svc = proxy_service_obj(r);
	char fqdn[512];
	const char *ns;
	json_t *v;
	size_t i;

	snprintf(fqdn, sizeof(fqdn), "%s.%s.svc.%s", m->proxy_service, m->proxy_namespace,
	         m->cluster_domain ? m->cluster_domain : "cluster.local");
	json_array_foreach(items, i, item)
	{
		json_t *obj = json_object_get(item, "obj");
		json_t *labels = json_object_get(json_object_get(obj, "metadata"), "labels");
		if (strcmp(jstr(labels, WIRING_LABEL), "alias") != 0 ||
		    strcmp(meta_str(obj, "name"), m->alias_service) != 0)
			continue;
		json_object_set(have, meta_str(obj, "namespace"), obj);
	}
	json_object_foreach(needed, ns, v)
	{
		json_t *cur = json_object_get(have, ns);
		json_t *spec = zw_alias_service_spec(r->cfg.alias_mode, fqdn, proxy_svc,
		                                     m->proxy_port, m->proxy_h2c_port);
		if (!spec)
			continue;
		if (!cur) {
			json_t *obj = json_pack("{s:s,s:s,s:{s:s,s:s,s:o},s:O}", "apiVersion", "v1",
			                        "kind", "Service", "metadata", "name",
			                        m->alias_service, "namespace", ns, "labels",
			                        managed_labels("alias"), "spec", spec);
			if (obj &&
			    create_obj(r, "", "v1", "services", ns, obj, "alias Service") == 0)
				zw_registry_set_wiring(r->cfg.reg, ZW_WIRE_ALIAS, ns, true);
			json_decref(obj);
		} else {
			json_t *patch = zw_alias_service_patch(cur, spec);
			if (patch)
				patch_spec(r, "", "v1", "services", cur, patch, "alias Service");
			json_decref(patch);
			json_object_set(kept, ns, cur);
			zw_registry_set_wiring(r->cfg.reg, ZW_WIRE_ALIAS, ns, true);
		}
		json_decref(spec);
	}
	json_object_foreach(have, ns, v)
	{
		if (json_object_get(needed, ns))
			continue;
		if (delete_obj(r, "", "v1", "services", v, "alias Service") == 0)
			zw_registry_set_wiring(r->cfg.reg, ZW_WIRE_ALIAS, ns, false);
	}
	pass_alias_slices(r, kept);
	json_decref(proxy_svc);
	json_decref(kept);
	json_decref(have);
	json_decref(items);
}

static int skip_so(const json_t *hso)
{
	const char *v = jstr(json_object_get(json_object_get(hso, "metadata"), "annotations"),
	                     ZW_RECONCILE_SKIP_SO);
	return strcmp(v, "true") == 0;
}

/* The ScaledObject spec generated for an HTTPScaledObject. */
static json_t *hso_so_spec(struct zw_reconcile *r, const json_t *hso)
{
	json_t *spec = json_object_get(hso, "spec");
	json_t *str = json_object_get(spec, "scaleTargetRef");
	json_t *replicas = json_object_get(spec, "replicas");
	json_t *out, *ref, *v;

	out = json_pack("{s:{s:s},s:i,s:{s:b},s:[{s:s,s:{s:s,s:s}}]}", "scaleTargetRef", "name",
	                jstr(str, "name"), "pollingInterval", 15, "advanced",
	                "restoreToOriginalReplicaCount", 1, "triggers", "type", "external-push",
	                "metadata", "scalerAddress", r->cfg.mutate->scaler_address,
	                "httpScaledObject", meta_str(hso, "name"));
	if (!out)
		return NULL;
	ref = json_object_get(out, "scaleTargetRef");
	if (jstr(str, "kind")[0] != '\0')
		json_object_set_new(ref, "kind", json_string(jstr(str, "kind")));
	if (jstr(str, "apiVersion")[0] != '\0')
		json_object_set_new(ref, "apiVersion", json_string(jstr(str, "apiVersion")));
	if (json_is_integer(v = json_object_get(replicas, "min")))
		json_object_set(out, "minReplicaCount", v);
	if (json_is_integer(v = json_object_get(replicas, "max")))
		json_object_set(out, "maxReplicaCount", v);
	if (json_is_integer(v = json_object_get(spec, "scaledownPeriod")))
		json_object_set(out, "cooldownPeriod", v);
	if (json_is_integer(v = json_object_get(spec, "initialCooldownPeriod")))
		json_object_set(out, "initialCooldownPeriod", v);
	return out;
}

/* Nonzero when every key of want equals the same key of have (recursively
 * for objects): fields the API server defaults do not count as drift. */
static int subset_equal(const json_t *want, const json_t *have)
{
	const char *k;
	json_t *v;

	if (!json_is_object(want) || !json_is_object(have))
		return json_equal(want, have);
	json_object_foreach((json_t *)want, k, v)
	{
		if (!subset_equal(v, json_object_get(have, k)))
			return 0;
	}
	return 1;
}

static int owned_by_hso(const json_t *so, const char **owner_uid)
{
	json_t *refs = json_object_get(json_object_get(so, "metadata"), "ownerReferences"), *o;
	size_t i;

	json_array_foreach(refs, i, o)
	{
		if (strcmp(jstr(o, "kind"), "HTTPScaledObject") == 0 &&
		    strncmp(jstr(o, "apiVersion"), "http.keda.sh/", 13) == 0) {
			*owner_uid = jstr(o, "uid");
			return 1;
		}
	}
	return 0;
}

static void pass_hso(struct zw_reconcile *r)
{
	json_t *hsos = snapshot(r, ROLE_HSO, NULL), *sos = snapshot(r, ROLE_OWNED_SO, NULL);
	json_t *by_key = json_object(), *item;
	size_t i;
	char key[600];

	json_array_foreach(hsos, i, item)
	{
		json_t *hso = json_object_get(item, "obj");
		snprintf(key, sizeof(key), "%s/%s", meta_str(hso, "namespace"),
		         meta_str(hso, "name"));
		json_object_set(by_key, key, hso);
	}
	/* Owned ScaledObjects whose HTTPScaledObject is gone or opted out. */
	json_array_foreach(sos, i, item)
	{
		json_t *so = json_object_get(item, "obj"), *hso;
		const char *uid = "";
		if (!owned_by_hso(so, &uid))
			continue;
		snprintf(key, sizeof(key), "%s/%s", meta_str(so, "namespace"),
		         meta_str(so, "name"));
		hso = json_object_get(by_key, key);
		if (hso && !skip_so(hso) && strcmp(meta_str(hso, "uid"), uid) == 0)
			continue;
		delete_obj(r, "keda.sh", "v1alpha1", "scaledobjects", so, "ScaledObject");
	}
	json_array_foreach(hsos, i, item)
	{
		json_t *hso = json_object_get(item, "obj"), *cur = NULL, *so, *spec, *owner;
		const char *ns = meta_str(hso, "namespace"), *name = meta_str(hso, "name");
		const char *apiv = jstr(hso, "apiVersion");
		size_t j;
		json_t *it;

		if (skip_so(hso) || meta_str(hso, "deletionTimestamp")[0] != '\0')
			continue;
		json_array_foreach(sos, j, it)
		{
			json_t *o = json_object_get(it, "obj");
			if (strcmp(meta_str(o, "namespace"), ns) == 0 &&
			    strcmp(meta_str(o, "name"), name) == 0)
				cur = o;
		}
		spec = hso_so_spec(r, hso);
		if (!spec)
			continue;
		owner = json_pack("[{s:s,s:s,s:s,s:s,s:b,s:b}]", "apiVersion",
		                  apiv[0] ? apiv : "http.keda.sh/v1alpha1", "kind",
		                  "HTTPScaledObject", "name", name, "uid", meta_str(hso, "uid"),
		                  "controller", 1, "blockOwnerDeletion", 1);
		if (!cur) {
			so = json_pack("{s:s,s:s,s:{s:s,s:s,s:o,s:O},s:O}", "apiVersion",
			               "keda.sh/v1alpha1", "kind", "ScaledObject", "metadata",
			               "name", name, "namespace", ns, "labels",
			               managed_labels("httpscaledobject"), "ownerReferences", owner,
			               "spec", spec);
			if (so)
				create_obj(r, "keda.sh", "v1alpha1", "scaledobjects", ns, so,
				           "ScaledObject");
			json_decref(so);
		} else if (!subset_equal(spec, json_object_get(cur, "spec"))) {
			json_t *patch = json_pack("{s:{s:O},s:O}", "metadata", "ownerReferences",
			                          owner, "spec", spec);
			if (patch)
				patch_spec(r, "keda.sh", "v1alpha1", "scaledobjects", cur, patch,
				           "ScaledObject");
			json_decref(patch);
		}
		json_decref(owner);
		json_decref(spec);
	}
	json_decref(by_key);
	json_decref(hsos);
	json_decref(sos);
}

static void pass(struct zw_reconcile *r)
{
	json_t *grants = json_object(), *aliases = json_object();

	if (!grants || !aliases)
		goto out;
	pass_routes(r, grants, aliases);
	pass_grants(r, grants);
	pass_aliases(r, aliases);
	pass_hso(r);
out:
	json_decref(grants);
	json_decref(aliases);
}

static void *reconcile_main(void *arg)
{
	struct zw_reconcile *r = arg;
	long long next_lease = 0, next_discovery = 0, next_resync = 0, last_pass = 0;
	int was_ready = 0;

	pthread_mutex_lock(&r->lock);
	while (!r->stopping) {
		long long now = now_ms(), wake;
		int due;

		pthread_mutex_unlock(&r->lock);
		if (now >= next_discovery) {
			discover(r);
			next_discovery = now + DISCOVERY_MS;
		}
		if (r->cfg.leader_elect && now >= next_lease) {
			lease_step(r);
			next_lease = now + (atomic_load(&r->leading) ? ZW_RECONCILE_RENEW_MS
			                                             : LEASE_RETRY_MS);
		}
		pthread_mutex_lock(&r->lock);
		due = r->kicked || now >= next_resync;
		if (due && now - last_pass >= ZW_RECONCILE_MIN_PASS_MS &&
		    atomic_load(&r->leading) && !r->stopping) {
			int ready;
			r->kicked = 0;
			pthread_mutex_unlock(&r->lock);
			ready = watches_synced(r) &&
			        (!r->cfg.registry_synced || r->cfg.registry_synced(r->cfg.arg));
			if (ready) {
				if (!was_ready)
					zw_log(ZW_LOG_INFO, "reconciler_ready", NULL);
				was_ready = 1;
				pass(r);
				last_pass = now_ms();
				next_resync = last_pass + r->cfg.resync_ms;
			} else {
				next_resync = now + 500; /* look again soon */
			}
			pthread_mutex_lock(&r->lock);
			continue;
		}
		/* Sleep until the next deadline or a kick. */
		wake = next_discovery;
		if (r->cfg.leader_elect && next_lease < wake)
			wake = next_lease;
		if (atomic_load(&r->leading)) {
			long long w2 =
			        r->kicked ? last_pass + ZW_RECONCILE_MIN_PASS_MS : next_resync;
			if (w2 < wake)
				wake = w2;
		}
		now = now_ms();
		if (wake > now) {
			struct timespec ts;
			long long ms = wake - now;
			if (ms > 1000)
				ms = 1000;
			clock_gettime(CLOCK_MONOTONIC, &ts);
			ts.tv_sec += ms / 1000;
			ts.tv_nsec += (ms % 1000) * 1000000L;
			if (ts.tv_nsec >= 1000000000L) {
				ts.tv_sec++;
				ts.tv_nsec -= 1000000000L;
			}
			if (!r->kicked || now - last_pass < ZW_RECONCILE_MIN_PASS_MS)
				pthread_cond_timedwait(&r->cond, &r->lock, &ts);
		}
	}
	pthread_mutex_unlock(&r->lock);
	return NULL;
}

int zw_reconcile_start(const struct zw_reconcile_config *cfg, struct zw_reconcile **out)
{
	struct zw_reconcile *r;
	pthread_condattr_t ca;
	size_t n_ns = cfg->n_namespaces ? cfg->n_namespaces : 1;

	if (!cfg->kube || !cfg->reg || !cfg->mutate)
		return -EINVAL;
	r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	r->cfg = *cfg;
	if (!r->cfg.lease_name)
		r->cfg.lease_name = "zerowire-webhook";
	if (!r->cfg.lease_namespace)
		r->cfg.lease_namespace = cfg->mutate->proxy_namespace;
	if (!r->cfg.identity)
		r->cfg.identity = "zerowire-webhook";
	if (r->cfg.resync_ms == 0)
		r->cfg.resync_ms = ZW_RECONCILE_RESYNC_MS;
	pthread_mutex_init(&r->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&r->cond, &ca);
	pthread_condattr_destroy(&ca);
	r->touched = json_object();
	r->evaluated = json_object();
	r->create_failures = json_object();
	r->n_ns = n_ns;
	r->last_lease_status = -1;
	for (size_t k = 0; k < ZW_RK_COUNT; k++)
		if (zw_route_kinds[k].roles & ZW_RK_ADMIT)
			r->kinds[r->n_kinds++] =
			        (struct kind_desc){ROLE_ROUTE, &zw_route_kinds[k], false, NULL};
	for (size_t k = 0; k < N_OTHER_KINDS; k++)
		r->kinds[r->n_kinds++] = other_kinds[k];
	r->watches = calloc(r->n_kinds * n_ns, sizeof(*r->watches));
	if (!r->touched || !r->evaluated || !r->create_failures || !r->watches)
		goto fail;
	for (size_t k = 0; k < r->n_kinds; k++)
		for (size_t i = 0; i < n_ns; i++) {
			struct kwatch *w = &r->watches[k * n_ns + i];
			w->owner = r;
			w->kd = &r->kinds[k];
			w->objs = json_object();
			if (!w->objs)
				goto fail;
			if ((r->kinds[k].cluster_wide_ns || r->kinds[k].role == ROLE_OPTOUT) &&
			    i > 0) {
				/* Grants live in the proxy namespace only, namespaces
				 * are cluster-scoped: one watch. */
				w->unused = true;
				atomic_store(&w->synced, 1);
				continue;
			}
			if (r->kinds[k].role == ROLE_OPTOUT)
				continue;
			if (r->kinds[k].cluster_wide_ns)
				w->namespace = strdup(cfg->mutate->proxy_namespace);
			else if (cfg->n_namespaces > 0)
				w->namespace = strdup(cfg->namespaces[i]);
			if ((r->kinds[k].cluster_wide_ns || cfg->n_namespaces > 0) && !w->namespace)
				goto fail;
		}
	if (!cfg->leader_elect)
		atomic_store(&r->leading, 1);
	if (pthread_create(&r->thread, NULL, reconcile_main, r) != 0)
		goto fail;
	r->started = 1;
	*out = r;
	return 0;
fail:
	zw_reconcile_stop(r);
	return -ENOMEM;
}

void zw_reconcile_stop(struct zw_reconcile *r)
{
	if (!r)
		return;
	pthread_mutex_lock(&r->lock);
	r->stopping = 1;
	pthread_cond_broadcast(&r->cond);
	pthread_mutex_unlock(&r->lock);
	if (r->started)
		pthread_join(r->thread, NULL);
	if (r->watches) {
		size_t n = r->n_kinds * r->n_ns;
		struct zw_watch_thread **threads = calloc(n, sizeof(*threads));
		for (size_t i = 0; i < n; i++) {
			if (threads)
				threads[i] = r->watches[i].thread;
			else
				zw_watch_thread_stop(r->watches[i].thread);
		}
		if (threads)
			zw_watch_threads_stop(threads, n);
		free(threads);
		for (size_t i = 0; i < n; i++) {
			json_decref(r->watches[i].objs);
			free(r->watches[i].namespace);
		}
	}
	if (r->started && r->cfg.leader_elect)
		lease_release(r);
	free(r->watches);
	json_decref(r->touched);
	json_decref(r->evaluated);
	json_decref(r->create_failures);
	pthread_cond_destroy(&r->cond);
	pthread_mutex_destroy(&r->lock);
	free(r);
}
