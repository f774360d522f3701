/* zerowire-webhook reconciler: keeps the cluster consistent with the
 * targets. One code path decides rewrites (mutate.h, at admission); the
 * reconciler only makes objects pass through admission again, and creates
 * the wiring admission cannot.
 *
 * Leader election (lease.h): a coordination.k8s.io/v1 Lease
 * (lease_namespace / lease_name) held by `identity`; a replica that is not
 * the holder watches and does nothing else. With leader_elect off the
 * replica always acts.
 *
 * It watches every ZW_RK_ADMIT route kind of routekinds.h, managed
 * ReferenceGrants (proxy namespace), managed alias Services and
 * EndpointSlices, the proxy namespace's Services and EndpointSlices,
 * HTTPScaledObjects, managed ScaledObjects and namespaces that opted out,
 * each at the first version the API server serves (asked again every
 * 15 s). While leading, every pass (after any change the watches see, at
 * most once per ZW_RECONCILE_MIN_PASS_MS, and at least every resync_ms),
 * once the watches and the target registry have synced:
 *   - routes (routesync.h): touch those admission would now change,
 *     restore those in namespaces that opted out, collect wiring needs;
 *   - wiring (wiring.h): ReferenceGrants, alias Services and EndpointSlices;
 *   - ScaledObjects owned by HTTPScaledObjects (ownedso.h).
 * Every object it creates is managed (managed.h): labelled
 * `app.kubernetes.io/managed-by: zerowire`; it deletes only objects that
 * carry that label. API server restarts: the watches relist and the pass
 * repeats. */
#ifndef ZW_RECONCILE_H
#define ZW_RECONCILE_H

#include "kube.h"
#include "watchloop.h"
#include "whmetrics.h"
#include "mutate.h"
#include "registry.h"

#include <stdbool.h>
#include <stddef.h>

#define ZW_RECONCILE_RESYNC_MS      10000
#define ZW_RECONCILE_MIN_PASS_MS    1000
#define ZW_RECONCILE_BACKOFF_MAX_MS 5000 /* watch retry backoff cap */

struct zw_reconcile_config {
	struct zw_kube *kube;          /* borrowed: discovery, Lease and writes (blocking) */
	struct zw_watchloop *loop;     /* borrowed: the watches (watchloop.h) */
	struct zw_registry *reg;       /* borrowed */
	struct zw_wh_metrics *metrics; /* borrowed, may be NULL */
	const struct zw_mutate_config *mutate; /* borrowed: proxy, alias, scaler address */
	const char *const *namespaces;         /* NULL/0 = all namespaces */
	size_t n_namespaces;
	bool leader_elect;
	const char *lease_name;      /* default "zerowire-webhook" */
	const char *lease_namespace; /* default: the proxy namespace */
	const char *identity;        /* holder identity, e.g. pod name */
	unsigned resync_ms;          /* 0 = ZW_RECONCILE_RESYNC_MS */
	int alias_mode;              /* enum zw_alias_mode (alias.h); 0 = endpointslice */
	/* Returns nonzero once the target registry has synced; passes wait
	 * for it so that nothing is restored from an incomplete registry. */
	int (*registry_synced)(void *arg);
	void *arg;
};

struct zw_reconcile;

/* Starts the reconciler thread and its subscriptions on the watch loop. `cfg` is copied
 * (strings must outlive the reconciler). Returns 0 with *out owned by the
 * caller, or -ENOMEM / -EINVAL. */
int zw_reconcile_start(const struct zw_reconcile_config *cfg, struct zw_reconcile **out);

/* Asks for a pass soon (thread-safe; e.g. after a registry change). */
void zw_reconcile_kick(struct zw_reconcile *r);

/* Returns 1 while this replica leads (always 1 without leader election). */
int zw_reconcile_leading(struct zw_reconcile *r);

/* Stops the thread, ends its subscriptions, releases the Lease when held, frees r.
 * A zw_reconcile_kick running on the watch loop (a sources callback that
 * read r before the caller cleared its pointer) has returned before r is
 * freed. NULL-safe. */
void zw_reconcile_stop(struct zw_reconcile *r);

#endif
