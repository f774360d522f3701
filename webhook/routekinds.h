/* zerowire-webhook kind table: the one home of what the webhook knows about
 * each Kubernetes kind it admits, watches or creates.
 *
 * Per kind: group, kind, resource, the versions every part uses (admission,
 * the chart's webhook rules, the reconciler's watches, the registry's source
 * watches, restore), the route shape (which walker, hint builder and owned
 * fields rewrite.c uses), the trafficAutowire bit, the wiring object a
 * rewritten route needs in its namespace, and the metric label.
 *
 * Versions: a version is listed only when the rewrite supports its schema;
 * HTTPRoute v1/v1beta1/v1alpha2 and GRPCRoute v1/v1alpha2 share the
 * backendRefs layout, so all of them are admitted, watched and restored.
 * charts/tests/routekinds_test.py checks that the chart's webhook rules are
 * exactly the ZW_RK_ADMIT entries (groups, resources, versions). */
#ifndef ZW_ROUTEKINDS_H
#define ZW_ROUTEKINDS_H

#include "registry.h"

#include <stddef.h>

#define ZW_RK_MAX_VERSIONS 4

/* What the review was about, for metrics. The first ZW_MK_COUNT entries of
 * zw_route_kinds are these, in this order. */
enum zw_mutate_kind {
	ZW_MK_OTHER = 0,
	ZW_MK_INGRESS,
	ZW_MK_HTTPROUTE,
	ZW_MK_GRPCROUTE,
	ZW_MK_ISTIO_VIRTUALSERVICE,
	ZW_MK_GLOO_VIRTUALSERVICE,
	ZW_MK_GLOO_ROUTETABLE,
	ZW_MK_GLOO_V2_ROUTETABLE,
	ZW_MK_SCALEDOBJECT,
	ZW_MK_HTTPSCALEDOBJECT,
	ZW_MK_INTERCEPTORROUTE,
	ZW_MK_COUNT,
};

/* Indices of the entries after the first ZW_MK_COUNT ones. */
enum zw_rk_index {
	ZW_RK_UPSTREAM = ZW_MK_COUNT,
	ZW_RK_VIRTUALDESTINATION,
	ZW_RK_SERVICE,
	ZW_RK_REFERENCEGRANT,
	ZW_RK_NAMESPACE,
	ZW_RK_ENDPOINTSLICE,
	ZW_RK_BACKENDTLSPOLICY,
	ZW_RK_COUNT,
};

/* Destination layout of a route kind: selects rewrite.c's walker, hint
 * builder, owned fields and written value. */
enum zw_rk_shape {
	ZW_RK_SHAPE_NONE = 0, /* not a route */
	ZW_RK_SHAPE_INGRESS,
	ZW_RK_SHAPE_GATEWAY, /* HTTPRoute, GRPCRoute */
	ZW_RK_SHAPE_ISTIO,
	ZW_RK_SHAPE_GLOO,    /* Gloo Edge VirtualService, RouteTable */
	ZW_RK_SHAPE_GLOO_V2, /* Gloo Platform RouteTable */
};

/* Roles (bits of zw_route_kind.roles). */
enum zw_rk_role {
	ZW_RK_ADMIT = 1u << 0,        /* in the webhook rules; the reconciler touches it */
	ZW_RK_SOURCE = 1u << 1,       /* watched into the registry (whsources.c) */
	ZW_RK_SOURCE_PORTS = 1u << 2, /* same, only when Service port names are indexed */
	ZW_RK_MADE = 1u << 3,         /* zerowire creates some (label zerowire.io/wiring) */
	/* A ZW_RK_SOURCE kind watched at every version listed, not only the
	 * first: clusters serve some of them (ReferenceGrant v1 is recent). */
	ZW_RK_SOURCE_EVERY_VERSION = 1u << 4,
};

/* No wiring object needed (zw_route_kind.wiring). */
#define ZW_RK_NO_WIRING (-1)

struct zw_route_kind {
	enum zw_mutate_kind mk; /* ZW_MK_OTHER for kinds admission does not look at */
	const char *group;      /* "" for the core group */
	const char *kind;
	const char *resource;
	const char *versions[ZW_RK_MAX_VERSIONS]; /* preference order, NULL-terminated */
	const char *label;                        /* metric label (kind= of admissions) */
	enum zw_rk_shape shape;
	unsigned autowire; /* enum zw_autowire bit (target.h), 0: not autowired */
	int wiring;        /* enum zw_wiring a rewritten route needs, or ZW_RK_NO_WIRING */
	unsigned roles;    /* enum zw_rk_role bits */
	const char *made;  /* ZW_RK_MADE: wiring label value of what zerowire creates */
	int made_in_proxy_namespace; /* ZW_RK_MADE: created in the proxy namespace */
};

/* The table (static storage, ZW_RK_COUNT entries) and its length. */
extern const struct zw_route_kind zw_route_kinds[ZW_RK_COUNT];
extern const size_t zw_route_kinds_count;

/* The entry of a group / version / kind (version must be listed), or NULL.
 * Strings are borrowed; any may be NULL (then NULL). */
const struct zw_route_kind *zw_route_kind_find(const char *group, const char *version,
                                               const char *kind);

/* The entry of a group / resource (any version), or NULL. */
const struct zw_route_kind *zw_route_kind_by_resource(const char *group, const char *resource);

/* The entry of mutate kind mk (the ZW_MK_OTHER entry, label "other", for
 * out-of-range values); never NULL. */
const struct zw_route_kind *zw_route_kind_of(enum zw_mutate_kind mk);

#endif
