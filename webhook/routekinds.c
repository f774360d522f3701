/* zerowire-webhook kind table (see routekinds.h). */
#include "routekinds.h"

#include "target.h"

#include <string.h>

#define GW "gateway.networking.k8s.io"

/* Kept unformatted: one kind per line pair reads as a table. */
// clang-format off
const struct zw_route_kind zw_route_kinds[ZW_RK_COUNT] = {
	/* The first ZW_MK_COUNT entries: index == enum zw_mutate_kind. */
	{.mk = ZW_MK_OTHER, .label = "other", .wiring = ZW_RK_NO_WIRING},
	{ZW_MK_INGRESS, "networking.k8s.io", "Ingress", "ingresses", {"v1"},
	 "ingress", ZW_RK_SHAPE_INGRESS, ZW_AW_INGRESS, ZW_WIRE_ALIAS, ZW_RK_ADMIT, 0, 0},
	{ZW_MK_HTTPROUTE, GW, "HTTPRoute", "httproutes", {"v1", "v1beta1", "v1alpha2"},
	 "httproute", ZW_RK_SHAPE_GATEWAY, ZW_AW_HTTPROUTE, ZW_WIRE_GRANT_HTTPROUTE, ZW_RK_ADMIT, 0, 0},
	{ZW_MK_GRPCROUTE, GW, "GRPCRoute", "grpcroutes", {"v1", "v1alpha2"},
	 "grpcroute", ZW_RK_SHAPE_GATEWAY, ZW_AW_GRPCROUTE, ZW_WIRE_GRANT_GRPCROUTE, ZW_RK_ADMIT, 0, 0},
	{ZW_MK_ISTIO_VIRTUALSERVICE, "networking.istio.io", "VirtualService", "virtualservices", {"v1", "v1beta1", "v1alpha3"},
	 "istio_virtualservice", ZW_RK_SHAPE_ISTIO, ZW_AW_VIRTUALSERVICE, ZW_RK_NO_WIRING, ZW_RK_ADMIT, 0, 0},
	{ZW_MK_GLOO_VIRTUALSERVICE, "gateway.solo.io", "VirtualService", "virtualservices", {"v1"},
	 "gloo_virtualservice", ZW_RK_SHAPE_GLOO, ZW_AW_GLOO, ZW_RK_NO_WIRING, ZW_RK_ADMIT, 0, 0},
	{ZW_MK_GLOO_ROUTETABLE, "gateway.solo.io", "RouteTable", "routetables", {"v1"},
	 "gloo_routetable", ZW_RK_SHAPE_GLOO, ZW_AW_GLOO, ZW_RK_NO_WIRING, ZW_RK_ADMIT, 0, 0},
	{ZW_MK_GLOO_V2_ROUTETABLE, "networking.gloo.solo.io", "RouteTable", "routetables", {"v2"},
	 "gloo_v2_routetable", ZW_RK_SHAPE_GLOO_V2, ZW_AW_GLOO, ZW_RK_NO_WIRING, ZW_RK_ADMIT, 0, 0},
	/* Admitted (kedify-http triggers become external-push), a target
	 * source, and made from HTTPScaledObjects. */
	{ZW_MK_SCALEDOBJECT, "keda.sh", "ScaledObject", "scaledobjects", {"v1alpha1"},
	 "scaledobject", ZW_RK_SHAPE_NONE, 0, ZW_RK_NO_WIRING,
	 ZW_RK_ADMIT | ZW_RK_SOURCE | ZW_RK_MADE, "httpscaledobject", 0},
	/* Checked when a review is sent (the chart does not register them). */
	{ZW_MK_HTTPSCALEDOBJECT, "http.keda.sh", "HTTPScaledObject", "httpscaledobjects", {"v1alpha1"},
	 "httpscaledobject", ZW_RK_SHAPE_NONE, 0, ZW_RK_NO_WIRING, ZW_RK_SOURCE, 0, 0},
	{ZW_MK_INTERCEPTORROUTE, "http.keda.sh", "InterceptorRoute", "interceptorroutes", {"v1beta1"},
	 "interceptorroute", ZW_RK_SHAPE_NONE, 0, ZW_RK_NO_WIRING, ZW_RK_SOURCE, 0, 0},
	/* Not admitted: read by the registry or made by the reconciler
	 * (enum zw_rk_index). */
	{ZW_MK_OTHER, "gloo.solo.io", "Upstream", "upstreams", {"v1"},
	 "other", ZW_RK_SHAPE_NONE, 0, ZW_RK_NO_WIRING, ZW_RK_SOURCE, 0, 0},
	{ZW_MK_OTHER, "networking.gloo.solo.io", "VirtualDestination", "virtualdestinations", {"v2"},
	 "other", ZW_RK_SHAPE_NONE, 0, ZW_RK_NO_WIRING, ZW_RK_SOURCE, 0, 0},
	{ZW_MK_OTHER, "", "Service", "services", {"v1"},
	 "other", ZW_RK_SHAPE_NONE, 0, ZW_RK_NO_WIRING, ZW_RK_SOURCE_PORTS | ZW_RK_MADE, "alias", 0},
	/* Made in the proxy namespace (wiring.c); read everywhere by the
	 * registry (rewrite.c: cross-namespace backendRefs). */
	{ZW_MK_OTHER, GW, "ReferenceGrant", "referencegrants", {"v1", "v1beta1", "v1alpha2"},
	 "other", ZW_RK_SHAPE_NONE, 0, ZW_RK_NO_WIRING, ZW_RK_MADE | ZW_RK_SOURCE | ZW_RK_SOURCE_EVERY_VERSION, "referencegrant", 1},
	{ZW_MK_OTHER, "", "Namespace", "namespaces", {"v1"},
	 "other", ZW_RK_SHAPE_NONE, 0, ZW_RK_NO_WIRING, 0, 0, 0},
	/* The alias Service's EndpointSlices (aliasMode endpointslice) and
	 * the proxy Service's, which they mirror. */
	{ZW_MK_OTHER, "discovery.k8s.io", "EndpointSlice", "endpointslices", {"v1", "v1beta1"},
	 "other", ZW_RK_SHAPE_NONE, 0, ZW_RK_NO_WIRING, ZW_RK_MADE, "alias", 0},
	/* Which Services gateways speak TLS to (rewrite.c: TLS destinations
	 * and the proxy's own TLS port). Indexed with the Service ports. */
	{ZW_MK_OTHER, GW, "BackendTLSPolicy", "backendtlspolicies", {"v1", "v1alpha3"},
	 "other", ZW_RK_SHAPE_NONE, 0, ZW_RK_NO_WIRING, ZW_RK_SOURCE_PORTS, 0, 0},
};
// clang-format on
const size_t zw_route_kinds_count = sizeof(zw_route_kinds) / sizeof(zw_route_kinds[0]);

const struct zw_route_kind *zw_route_kind_find(const char *group, const char *version,
                                               const char *kind)
{
	if (!group || !version || !kind)
		return NULL;
	for (size_t i = 1; i < zw_route_kinds_count; i++) {
		const struct zw_route_kind *k = &zw_route_kinds[i];
		if (strcmp(k->group, group) != 0 || strcmp(k->kind, kind) != 0)
			continue;
		for (size_t v = 0; v < ZW_RK_MAX_VERSIONS && k->versions[v]; v++)
			if (strcmp(k->versions[v], version) == 0)
				return k;
	}
	return NULL;
}

const struct zw_route_kind *zw_route_kind_by_resource(const char *group, const char *resource)
{
	if (!group || !resource)
		return NULL;
	for (size_t i = 1; i < zw_route_kinds_count; i++) {
		const struct zw_route_kind *k = &zw_route_kinds[i];
		if (strcmp(k->group, group) == 0 && strcmp(k->resource, resource) == 0)
			return k;
	}
	return NULL;
}

const struct zw_route_kind *zw_route_kind_of(enum zw_mutate_kind mk)
{
	return (unsigned)mk < ZW_MK_COUNT ? &zw_route_kinds[mk] : &zw_route_kinds[0];
}
