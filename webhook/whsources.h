/* zerowire-webhook target sources: keeps the registry (registry.h) equal to
 * what the API server holds, through subscriptions on the webhook's watch
 * loop (watchloop.h; the reconciler's subscriptions of the same resources
 * share their watches).
 *
 * Watched, each in every namespace of the list (or cluster-wide): the
 * ZW_RK_SOURCE kinds of routekinds.h at their first version (ScaledObjects,
 * HTTPScaledObjects and InterceptorRoutes: targets; Gloo Upstreams and
 * VirtualDestinations: Services they name) or, ZW_RK_SOURCE_EVERY_VERSION,
 * at each version (ReferenceGrants: which cross-namespace backendRefs may be
 * rewritten; where two versions are served both watches report the same
 * grant, which the registry keys by name), and with watch_services the
 * ZW_RK_SOURCE_PORTS ones (v1 Services: port names for warnings;
 * BackendTLSPolicies). The ZW_RK_SOURCE_PORTS kinds are also watched in
 * proxy_namespace when the list leaves it out: the rewrite reads the proxy
 * Service's https port and the BackendTLSPolicy on it from there, whatever
 * namespaces the targets live in.
 * A resource whose CRD is absent is waited for quietly (the watch asks
 * discovery again every 10 s) and counts as synced meanwhile: there is
 * nothing of it to know. Synced means every watch has delivered its first
 * list (or is waiting for its CRD). */
#ifndef ZW_WH_SOURCES_H
#define ZW_WH_SOURCES_H

#include "watchloop.h"
#include "whmetrics.h"
#include "registry.h"

#include <stdbool.h>
#include <stddef.h>

#define ZW_WH_SOURCES_MAX_NAMESPACES 64
/* Watch retry backoff cap: short, so that an API server restart is caught
 * up within seconds (the reconciler promises convergence within 30 s). */
#define ZW_WH_SOURCES_BACKOFF_MAX_MS 5000

struct zw_wh_sources_config {
	struct zw_watchloop *loop;     /* borrowed, outlives the sources */
	struct zw_registry *reg;       /* borrowed, outlives the sources */
	struct zw_wh_metrics *metrics; /* borrowed, may be NULL */
	const char *const
	        *namespaces; /* NULL/0: all namespaces; at most ZW_WH_SOURCES_MAX_NAMESPACES */
	size_t n_namespaces;
	bool watch_services; /* index Service port names */
	/* The proxy Service's namespace (copied), may be NULL: watched for the
	 * ZW_RK_SOURCE_PORTS kinds even when namespaces leaves it out. */
	const char *proxy_namespace;
	/* Called (on the watch loop thread) after each change applied to the
	 * registry; may be NULL. */
	void (*on_change)(void *arg);
	void *arg;
};

struct zw_wh_sources;

/* Subscribes to each resource in each namespace (and the proxy namespace,
 * see above). `cfg` is copied (namespace strings too). Returns 0 with *out
 * owned by the caller (stop with zw_wh_sources_stop), -EINVAL (too many
 * namespaces) or -ENOMEM. */
int zw_wh_sources_start(const struct zw_wh_sources_config *cfg, struct zw_wh_sources **out);

/* Returns 1 once every watch has synced (see above), else 0. */
int zw_wh_sources_synced(struct zw_wh_sources *s);

/* Ends every subscription and frees s. The registry keeps what
 * it was given. NULL-safe. */
void zw_wh_sources_stop(struct zw_wh_sources *s);

#endif
