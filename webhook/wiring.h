/* zerowire-webhook wiring: the objects that let a rewritten route reach the
 * proxy across namespaces, which admission cannot create itself.
 *   - ReferenceGrant `zerowire-<ns>` in the proxy namespace for every
 *     namespace whose HTTPRoutes / GRPCRoutes lead to the proxy Service;
 *   - alias Service (mutate config alias_service) in every namespace whose
 *     Ingresses lead to it: by alias mode (alias.h) selectorless with
 *     EndpointSlices mirroring the proxy Service's ready endpoints, or
 *     ExternalName to the proxy Service's FQDN; an alias of the other mode
 *     is converted in place.
 * What nothing needs any more is deleted (managed objects only, managed.h).
 * The state is mirrored into the registry (zw_registry_set_wiring) for
 * admission warnings. */
#ifndef ZW_WIRING_H
#define ZW_WIRING_H

#include "managed.h"
#include "mutate.h"
#include "registry.h"
#include "routekinds.h"
#include "watched.h"

#include <jansson.h>

/* What the routes need, collected by the route pass (routesync.h). */
struct zw_wiring_needs {
	json_t *grants;  /* namespace -> {route Kind: true} */
	json_t *aliases; /* namespace -> true */
};

/* What the watches hold of the wiring (borrowed for a pass). */
struct zw_wiring_seen {
	const struct zw_watched_list *grants;       /* managed ReferenceGrants, proxy namespace */
	const struct zw_watched_list *aliases;      /* managed Services */
	const struct zw_watched_list *alias_slices; /* managed EndpointSlices */
	const struct zw_watched_list *proxy_slices; /* EndpointSlices of the proxy namespace */
	const struct zw_watched_list *proxy_svcs;   /* Services of the proxy namespace */
};

struct zw_wiring_ctx {
	const struct zw_mutate_config *mutate; /* borrowed: proxy and alias names */
	int alias_mode;                        /* enum zw_alias_mode */
	struct zw_registry *reg;               /* borrowed */
	struct zw_managed *managed;            /* borrowed: the writes */
};

/* Creates empty needs. Returns 0 or -ENOMEM (n emptied). */
int zw_wiring_needs_init(struct zw_wiring_needs *n);

/* Releases what n holds. */
void zw_wiring_needs_free(struct zw_wiring_needs *n);

/* Sets *alias and *grant to whether route obj (borrowed) of kind rk in
 * namespace ns needs, with mutate config m (borrowed), an alias Service
 * (an Ingress with a backend naming the alias Service) or a ReferenceGrant
 * (an HTTPRoute / GRPCRoute outside the proxy namespace with a backendRef
 * to the proxy Service). */
void zw_wiring_route_needs(const struct zw_mutate_config *m, const struct zw_route_kind *rk,
                           const json_t *obj, const char *ns, int *alias, int *grant);

/* Adds what one route needs (alias, grant from zw_wiring_route_needs) to n.
 * Returns 0 or -ENOMEM. */
int zw_wiring_needs_add(struct zw_wiring_needs *n, const struct zw_route_kind *rk, const char *ns,
                        int alias, int grant);

/* Makes the cluster's wiring match needs (borrowed), given what is seen
 * (borrowed): creates, fixes and deletes ReferenceGrants, alias Services
 * and alias EndpointSlices. Failures are logged and counted; the next pass
 * tries again. */
void zw_wiring_pass(const struct zw_wiring_ctx *w, const struct zw_wiring_needs *needs,
                    const struct zw_wiring_seen *seen);

#endif
