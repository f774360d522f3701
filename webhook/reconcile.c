/* zerowire-webhook reconciler: the watches it reads, the pass schedule and
 * the leader election driving (see reconcile.h); a pass's work is
 * routesync.h's, wiring.h's and ownedso.h's. */
#include "reconcile.h"

#include "kobj.h"
#include "lease.h"
#include "log.h"
#include "managed.h"
#include "ownedso.h"
#include "routekinds.h"
#include "routesync.h"
#include "watchloop.h"
#include "watched.h"
#include "wiring.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define DISCOVERY_MS    15000 /* how often served versions are checked again */
#define OPTOUT_SELECTOR ZW_LABEL_AUTOWIRE "=false"

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
	ROLE_COUNT,
};

struct kind_desc {
	enum watch_role role;
	const struct zw_route_kind *rk; /* group, kind, resource, versions */
	bool cluster_wide_ns;           /* watched in the proxy namespace only (grants) */
	const char *selector;           /* label selector of the API watch */
	/* Keeps only managed objects (managed.h) of a watch without selector:
	 * the watch the sources and the routes have already. */
	bool managed_only;
};

/* Besides the routes (every ZW_RK_ADMIT kind of routekinds.h, ScaledObjects
 * included: a kedify-http one written before the webhook was registered is
 * converted when touched), what the reconciler watches. */
static const struct kind_desc other_kinds[] = {
        {ROLE_GRANTS, &zw_route_kinds[ZW_RK_REFERENCEGRANT], true, ZW_MANAGED_SELECTOR, false},
        {ROLE_ALIASES, &zw_route_kinds[ZW_RK_SERVICE], false, NULL, true},
        {ROLE_HSO, &zw_route_kinds[ZW_MK_HTTPSCALEDOBJECT], false, NULL, false},
        {ROLE_OWNED_SO, &zw_route_kinds[ZW_MK_SCALEDOBJECT], false, NULL, true},
        {ROLE_OPTOUT, &zw_route_kinds[ZW_RK_NAMESPACE], false, OPTOUT_SELECTOR, false},
        {ROLE_ALIAS_SLICES, &zw_route_kinds[ZW_RK_ENDPOINTSLICE], false, ZW_MANAGED_SELECTOR,
         false},
        {ROLE_PROXY_SLICES, &zw_route_kinds[ZW_RK_ENDPOINTSLICE], true, NULL, false},
        {ROLE_PROXY_SVC, &zw_route_kinds[ZW_RK_SERVICE], true, NULL, false},
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
	struct zw_watchloop_sub *sub;
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
	struct zw_lease lease;       /* reconciler thread only */
	struct zw_managed managed;   /* reconciler thread only */
	struct zw_routesync routes;  /* reconciler thread only */
	struct zw_wiring_ctx wiring; /* reconciler thread only */
};

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
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
	snprintf(key, sizeof(key), "%s/%s", zw_kobj_meta(obj, "namespace"),
	         zw_kobj_meta(obj, "name"));
	pthread_mutex_lock(&r->lock);
	if (type == ZW_WATCH_DELETED ||
	    (w->kd->managed_only &&
	     strcmp(zw_kobj_label(obj, ZW_MANAGED_LABEL), ZW_MANAGED_VALUE) != 0))
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
	zw_watchloop_remove(r->cfg.loop, w->sub);
	w->sub = NULL;
	w->version = NULL;
	atomic_store(&w->synced, 0);
	pthread_mutex_lock(&r->lock);
	json_object_clear(w->objs);
	pthread_mutex_unlock(&r->lock);
}

static int kw_start(struct zw_reconcile *r, struct kwatch *w, const char *version)
{
	struct zw_watchloop_spec spec = {
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

	if (zw_watchloop_add(r->cfg.loop, &spec, &w->sub) < 0)
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
			if (w->version == chosen && (w->sub || !chosen)) {
				if (!chosen)
					atomic_store(&w->synced, 1); /* nothing of it exists */
				continue;
			}
			if (w->sub)
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

/* Copies every object watched into seen[role] (typed entries, new
 * references) with each role's served version. Returns 0 or -ENOMEM. */
static int snapshot(struct zw_reconcile *r, struct zw_watched_list *seen)
{
	const char *key;
	json_t *v;
	int rc = 0;

	pthread_mutex_lock(&r->lock);
	for (size_t i = 0; i < r->n_kinds * r->n_ns && rc == 0; i++) {
		struct kwatch *w = &r->watches[i];
		struct zw_watched_list *l = &seen[w->kd->role];
		if (!w->version)
			continue;
		l->version = w->version;
		json_object_foreach(w->objs, key, v)
		{
			if (zw_watched_add(l, v, w->version, w->kd->rk) < 0) {
				rc = -ENOMEM;
				break;
			}
		}
	}
	pthread_mutex_unlock(&r->lock);
	return rc;
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

/* One pass over a snapshot of everything watched. */
static void pass(struct zw_reconcile *r)
{
	struct zw_watched_list seen[ROLE_COUNT];
	struct zw_wiring_needs needs;
	const struct zw_wiring_seen wseen = {
	        .grants = &seen[ROLE_GRANTS],
	        .aliases = &seen[ROLE_ALIASES],
	        .alias_slices = &seen[ROLE_ALIAS_SLICES],
	        .proxy_slices = &seen[ROLE_PROXY_SLICES],
	        .proxy_svcs = &seen[ROLE_PROXY_SVC],
	};

	memset(seen, 0, sizeof(seen));
	if (zw_wiring_needs_init(&needs) < 0)
		return;
	if (snapshot(r, seen) < 0)
		goto out;
	zw_routesync_pass(&r->routes, &seen[ROLE_ROUTE], &seen[ROLE_OPTOUT], &needs, now_ms());
	zw_wiring_pass(&r->wiring, &needs, &wseen);
	zw_ownedso_pass(&r->managed, r->cfg.mutate->scaler_address, &seen[ROLE_HSO],
	                &seen[ROLE_OWNED_SO]);
out:
	for (size_t i = 0; i < ROLE_COUNT; i++)
		zw_watched_clear(&seen[i]);
	zw_wiring_needs_free(&needs);
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
			set_leading(r, zw_lease_step(&r->lease, now));
			next_lease = now + (atomic_load(&r->leading) ? ZW_LEASE_RENEW_MS
			                                             : ZW_LEASE_RETRY_MS);
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

/* Fills r's kinds (every route kind, then other_kinds) and one kwatch per
 * kind and namespace slot, none started. Returns 0 or -ENOMEM. */
static int init_watches(struct zw_reconcile *r)
{
	for (size_t k = 0; k < ZW_RK_COUNT; k++)
		if (zw_route_kinds[k].roles & ZW_RK_ADMIT)
			r->kinds[r->n_kinds++] = (struct kind_desc){ROLE_ROUTE, &zw_route_kinds[k],
			                                            false, NULL, false};
	for (size_t k = 0; k < N_OTHER_KINDS; k++)
		r->kinds[r->n_kinds++] = other_kinds[k];
	r->watches = calloc(r->n_kinds * r->n_ns, sizeof(*r->watches));
	if (!r->watches)
		return -ENOMEM;
	for (size_t k = 0; k < r->n_kinds; k++)
		for (size_t i = 0; i < r->n_ns; i++) {
			struct kwatch *w = &r->watches[k * r->n_ns + i];
			w->owner = r;
			w->kd = &r->kinds[k];
			w->objs = json_object();
			if (!w->objs)
				return -ENOMEM;
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
				w->namespace = strdup(r->cfg.mutate->proxy_namespace);
			else if (r->cfg.n_namespaces > 0)
				w->namespace = strdup(r->cfg.namespaces[i]);
			if ((r->kinds[k].cluster_wide_ns || r->cfg.n_namespaces > 0) &&
			    !w->namespace)
				return -ENOMEM;
		}
	return 0;
}

int zw_reconcile_start(const struct zw_reconcile_config *cfg, struct zw_reconcile **out)
{
	struct zw_reconcile *r;
	pthread_condattr_t ca;
	size_t n_ns = cfg->n_namespaces ? cfg->n_namespaces : 1;

	if (!cfg->kube || !cfg->loop || !cfg->reg || !cfg->mutate)
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
	r->n_ns = n_ns;
	zw_lease_init(&r->lease, cfg->kube, r->cfg.lease_namespace, r->cfg.lease_name,
	              r->cfg.identity);
	r->routes = (struct zw_routesync){
	        .kube = cfg->kube, .reg = cfg->reg, .metrics = cfg->metrics, .mutate = cfg->mutate};
	r->wiring = (struct zw_wiring_ctx){.mutate = cfg->mutate,
	                                   .alias_mode = cfg->alias_mode,
	                                   .reg = cfg->reg,
	                                   .managed = &r->managed};
	if (zw_managed_init(&r->managed, cfg->kube, cfg->metrics) < 0)
		goto fail;
	if (init_watches(r) < 0)
		goto fail;
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
	/* A kick from the loop thread (the sources' on_change) that read r
	 * before the caller dropped it has returned after this. */
	zw_watchloop_sync(r->cfg.loop);
	if (r->watches) {
		size_t n = r->n_kinds * r->n_ns;
		for (size_t i = 0; i < n; i++) {
			zw_watchloop_remove(r->cfg.loop, r->watches[i].sub);
			json_decref(r->watches[i].objs);
			free(r->watches[i].namespace);
		}
	}
	if (r->started && r->cfg.leader_elect && r->lease.leading) {
		set_leading(r, 0);
		zw_lease_release(&r->lease);
	}
	free(r->watches);
	zw_routesync_free(&r->routes);
	zw_managed_free(&r->managed);
	pthread_cond_destroy(&r->cond);
	pthread_mutex_destroy(&r->lock);
	free(r);
}
