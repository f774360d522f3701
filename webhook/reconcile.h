/* zerowire-webhook reconciler: keeps the cluster consistent with the
 * targets. One code path decides rewrites (mutate.h, at admission); the
 * reconciler only makes objects pass through admission again, and creates
 * the wiring admission cannot.
 *
 * Leader election: a coordination.k8s.io/v1 Lease (lease_namespace /
 * lease_name) held by `identity`; lease 15 s, renewed every 5 s; a replica
 * that is not the holder watches and does nothing else. With leader_elect
 * off the replica always acts.
 *
 * While leading, every pass (after any change the watches see, at most
 * once per second, and at least every resync_ms):
 *   - routes: for each watched route (Ingress, HTTPRoute, GRPCRoute, Istio
 *     VirtualService, Gloo VirtualService/RouteTable, Gloo Platform
 *     RouteTable) whose admission would now give a different object
 *     (zw_mutate_object: a target appeared, changed or went away, an
 *     opt-out label was set), merge-patch the annotation
 *     `zerowire.io/reconcile: "<registry generation>"` so that the API server
 *     sends it through the webhook, which rewrites or restores it. A route
 *     is touched at most once per registry generation and object version;
 *     failed touches retry with the pass.
 *   - ReferenceGrant `zerowire-<ns>` in the proxy namespace for every
 *     namespace whose HTTPRoutes / GRPCRoutes lead (or will lead) to the
 *     proxy Service; removed when none does.
 *   - alias Service (`alias_service`) in every namespace whose Ingresses
 *     lead to it, removed when none does: by alias_mode (alias.h) either
 *     selectorless with the proxy Service's ports and EndpointSlices
 *     mirroring the ready endpoints of the proxy Service's (watched, kept in
 *     sync, deleted with it), or ExternalName to the proxy Service's FQDN;
 *     an alias of the other mode is converted in place.
 *   - for each HTTPScaledObject without the annotation
 *     `httpscaledobject.keda.sh/skip-scaledobject-creation: "true"`, a
 *     ScaledObject of the same name it owns (controller ownerReference),
 *     external-push trigger `httpScaledObject: <name>` with the proxy's
 *     scalerAddress; kept up to date, deleted with the HTTPScaledObject or
 *     when the annotation appears.
 * Every object it creates is labelled `app.kubernetes.io/managed-by:
 * zerowire`; it deletes only objects that carry that label. Wiring state is
 * mirrored into the registry (zw_registry_set_wiring) for admission
 * warnings. API server restarts: the watches relist and the pass repeats. */
#ifndef ZW_RECONCILE_H
#define ZW_RECONCILE_H

#include "kube.h"
#include "whmetrics.h"
#include "mutate.h"
#include "registry.h"

#include <stdbool.h>
#include <stddef.h>

#define ZW_RECONCILE_RESYNC_MS      10000
#define ZW_RECONCILE_LEASE_S        15
#define ZW_RECONCILE_RENEW_MS       5000
#define ZW_RECONCILE_MIN_PASS_MS    1000
#define ZW_RECONCILE_BACKOFF_MAX_MS 5000 /* watch retry backoff cap */
#define ZW_RECONCILE_ANNOTATION     "zerowire.io/reconcile"
#define ZW_RECONCILE_MANAGED_LABEL  "app.kubernetes.io/managed-by"
#define ZW_RECONCILE_MANAGED_VALUE  "zerowire"
#define ZW_RECONCILE_SKIP_SO        "httpscaledobject.keda.sh/skip-scaledobject-creation"

struct zw_reconcile_config {
	struct zw_kube *kube;                  /* borrowed */
	struct zw_registry *reg;               /* borrowed */
	struct zw_wh_metrics *metrics;         /* borrowed, may be NULL */
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

/* Starts the reconciler thread and its route watches. `cfg` is copied
 * (strings must outlive the reconciler). Returns 0 with *out owned by the
 * caller, or -ENOMEM / -EINVAL. */
int zw_reconcile_start(const struct zw_reconcile_config *cfg, struct zw_reconcile **out);

/* Asks for a pass soon (thread-safe; e.g. after a registry change). */
void zw_reconcile_kick(struct zw_reconcile *r);

/* Returns 1 while this replica leads (always 1 without leader election). */
int zw_reconcile_leading(struct zw_reconcile *r);

/* Makes `holder` (borrowed) the holder of the Lease lease_ns/lease_name for
 * duration_s seconds, creating it when missing, with client kube
 * (borrowed): replicas electing with that Lease stay followers meanwhile
 * (the uninstall restore holds it so that no reconciler acts). Returns 0,
 * or -1 with err filled (409: changed meanwhile, try again). */
int zw_reconcile_hold_lease(struct zw_kube *kube, const char *lease_ns, const char *lease_name,
                            const char *holder, int duration_s, struct zw_kube_error *err);

/* Stops the watches and the thread, releases the Lease when held, frees r.
 * NULL-safe. */
void zw_reconcile_stop(struct zw_reconcile *r);

#endif
