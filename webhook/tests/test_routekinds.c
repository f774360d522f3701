/* Unit tests of the kind table (routekinds.h): the index invariant, the
 * version lists every part shares, and the lookups. */
#include "rewrite.h"
#include "routekinds.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

static void test_index_is_mutate_kind(void **state)
{
	(void)state;
	assert_int_equal(zw_route_kinds_count, ZW_RK_COUNT);
	for (size_t i = 0; i < ZW_MK_COUNT; i++) {
		assert_int_equal(zw_route_kinds[i].mk, i);
		assert_ptr_equal(zw_route_kind_of(i), &zw_route_kinds[i]);
	}
	for (size_t i = ZW_MK_COUNT; i < ZW_RK_COUNT; i++)
		assert_int_equal(zw_route_kinds[i].mk, ZW_MK_OTHER);
	assert_string_equal(zw_route_kind_of(ZW_MK_COUNT)->label, "other");
	assert_string_equal(zw_route_kinds[ZW_RK_REFERENCEGRANT].kind, "ReferenceGrant");
	assert_string_equal(zw_route_kinds[ZW_RK_NAMESPACE].resource, "namespaces");
}

static void test_gateway_versions(void **state)
{
	(void)state;
	/* HTTPRoute v1alpha2 shares the backendRefs schema: rewritten too. */
	assert_int_equal(zw_rewrite_kind("gateway.networking.k8s.io", "v1alpha2", "HTTPRoute"),
	                 ZW_MK_HTTPROUTE);
	assert_int_equal(zw_rewrite_kind("gateway.networking.k8s.io", "v1beta1", "HTTPRoute"),
	                 ZW_MK_HTTPROUTE);
	assert_int_equal(zw_rewrite_kind("gateway.networking.k8s.io", "v1alpha2", "GRPCRoute"),
	                 ZW_MK_GRPCROUTE);
	/* GRPCRoute never had a v1beta1. */
	assert_int_equal(zw_rewrite_kind("gateway.networking.k8s.io", "v1beta1", "GRPCRoute"),
	                 ZW_MK_OTHER);
	assert_int_equal(zw_rewrite_kind("networking.k8s.io", "v1beta1", "Ingress"), ZW_MK_OTHER);
	assert_int_equal(zw_rewrite_kind(NULL, "v1", "Ingress"), ZW_MK_OTHER);
}

static void test_lookups(void **state)
{
	(void)state;
	const struct zw_route_kind *k = zw_route_kind_by_resource("gateway.solo.io", "routetables");
	assert_non_null(k);
	assert_int_equal(k->mk, ZW_MK_GLOO_ROUTETABLE);
	assert_null(zw_route_kind_by_resource("gateway.solo.io", "nothing"));
	k = zw_route_kind_find("", "v1", "Service");
	assert_non_null(k);
	assert_true(k->roles & ZW_RK_SOURCE_PORTS);
	assert_string_equal(k->made, "alias");
	assert_int_equal(zw_route_kind_of(ZW_MK_HTTPROUTE)->wiring, ZW_WIRE_GRANT_HTTPROUTE);
	assert_int_equal(zw_route_kind_of(ZW_MK_INGRESS)->wiring, ZW_WIRE_ALIAS);
	assert_int_equal(zw_route_kind_of(ZW_MK_ISTIO_VIRTUALSERVICE)->wiring, ZW_RK_NO_WIRING);
	/* BackendTLSPolicy: read with the Service ports, never admitted. */
	k = zw_route_kind_find("gateway.networking.k8s.io", "v1", "BackendTLSPolicy");
	assert_ptr_equal(k, &zw_route_kinds[ZW_RK_BACKENDTLSPOLICY]);
	assert_int_equal(k->roles, ZW_RK_SOURCE_PORTS);
	/* ReferenceGrant: read at every version (whatever ports say), made
	 * in the proxy namespace, never admitted. */
	k = zw_route_kind_find("gateway.networking.k8s.io", "v1beta1", "ReferenceGrant");
	assert_ptr_equal(k, &zw_route_kinds[ZW_RK_REFERENCEGRANT]);
	assert_int_equal(k->roles, ZW_RK_SOURCE | ZW_RK_SOURCE_EVERY_VERSION | ZW_RK_MADE);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_index_is_mutate_kind),
	        cmocka_unit_test(test_gateway_versions),
	        cmocka_unit_test(test_lookups),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
