/* Alias Service and mirrored EndpointSlices (webhook/alias.c). */
#include "alias.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

static json_t *parse(const char *text)
{
	json_error_t e;
	json_t *v = json_loads(text, 0, &e);
	if (!v)
		fail_msg("bad test JSON at %d: %s", e.position, e.text);
	return v;
}

static void assert_json(const json_t *got, const char *want_text)
{
	json_t *want = parse(want_text);
	if (!json_equal(got, want)) {
		char *g = json_dumps(got, JSON_SORT_KEYS | JSON_COMPACT);
		fail_msg("got %s\nwant %s", g ? g : "(null)", want_text);
	}
	json_decref(want);
}

/* Two proxy slices (one with a not-ready and a duplicate endpoint), one
 * IPv6 slice, one slice of another Service. */
static const char *SLICES =
        "["
        "{\"metadata\":{\"name\":\"p-a\",\"labels\":{\"kubernetes.io/service-name\":\"zp\"}},"
        " \"addressType\":\"IPv4\","
        " \"endpoints\":[{\"addresses\":[\"10.0.0.9\"],\"conditions\":{\"ready\":true},"
        "                 \"nodeName\":\"n1\",\"targetRef\":{\"kind\":\"Pod\",\"name\":\"x\"}},"
        "               {\"addresses\":[\"10.0.0.5\"],\"conditions\":{\"ready\":false}},"
        "               {\"addresses\":[\"10.0.0.2\"]}],"
        " \"ports\":[{\"name\":\"http\",\"port\":8080,\"protocol\":\"TCP\"}]},"
        "{\"metadata\":{\"name\":\"p-b\",\"labels\":{\"kubernetes.io/service-name\":\"zp\"}},"
        " \"addressType\":\"IPv4\","
        " \"endpoints\":[{\"addresses\":[\"10.0.0.2\"],\"conditions\":{\"ready\":true}},"
        "               {\"addresses\":[\"10.0.0.7\"],\"conditions\":{\"ready\":true,"
        "                \"serving\":true}}],"
        " \"ports\":[{\"name\":\"scaler\",\"port\":9090},{\"name\":\"http\",\"port\":8080}]},"
        "{\"metadata\":{\"name\":\"p-6\",\"labels\":{\"kubernetes.io/service-name\":\"zp\"}},"
        " \"addressType\":\"IPv6\","
        " \"endpoints\":[{\"addresses\":[\"fd00::1\"],\"conditions\":{\"ready\":true}}],"
        " \"ports\":[{\"name\":\"http\",\"port\":8080}]},"
        "{\"metadata\":{\"name\":\"o\",\"labels\":{\"kubernetes.io/service-name\":\"other\"}},"
        " \"addressType\":\"IPv4\","
        " \"endpoints\":[{\"addresses\":[\"10.9.9.9\"]}],\"ports\":[{\"name\":\"x\",\"port\":1}]}"
        "]";

static void mirror_ready_endpoints(void **state)
{
	(void)state;
	json_t *slices = parse(SLICES);
	json_t *m = zw_alias_mirror(slices, "zp");

	assert_non_null(m);
	assert_json(json_object_get(m, "IPv4"),
	            "{\"addressType\":\"IPv4\",\"endpoints\":["
	            "{\"addresses\":[\"10.0.0.2\"],\"conditions\":{\"ready\":true}},"
	            "{\"addresses\":[\"10.0.0.7\"],\"conditions\":{\"ready\":true}},"
	            "{\"addresses\":[\"10.0.0.9\"],\"conditions\":{\"ready\":true}}],"
	            "\"ports\":[{\"name\":\"http\",\"port\":8080,\"protocol\":\"TCP\"},"
	            "{\"name\":\"scaler\",\"port\":9090,\"protocol\":\"TCP\"}]}");
	assert_json(json_object_get(m, "IPv6"),
	            "{\"addressType\":\"IPv6\",\"endpoints\":["
	            "{\"addresses\":[\"fd00::1\"],\"conditions\":{\"ready\":true}}],"
	            "\"ports\":[{\"name\":\"http\",\"port\":8080,\"protocol\":\"TCP\"}]}");
	assert_int_equal(json_object_size(m), 2);
	json_decref(m);
	json_decref(slices);
}

static void mirror_nothing_ready(void **state)
{
	(void)state;
	json_t *slices =
	        parse("[{\"metadata\":{\"labels\":{\"kubernetes.io/service-name\":\"zp\"}},"
	              "\"endpoints\":[{\"addresses\":[\"10.0.0.1\"],"
	              "\"conditions\":{\"ready\":false}}],"
	              "\"ports\":[{\"name\":\"http\",\"port\":8080}]}]");
	json_t *m = zw_alias_mirror(slices, "zp");

	/* The slice stays (ports, no endpoints): the alias answers nothing
	 * rather than something stale. */
	assert_json(m, "{\"IPv4\":{\"addressType\":\"IPv4\",\"endpoints\":[],"
	               "\"ports\":[{\"name\":\"http\",\"port\":8080,\"protocol\":\"TCP\"}]}}");
	json_decref(m);
	json_decref(slices);
	m = zw_alias_mirror(NULL, "zp");
	assert_json(m, "{}");
	json_decref(m);
}

static void slice_object_and_match(void **state)
{
	(void)state;
	json_t *slices = parse(SLICES);
	json_t *m = zw_alias_mirror(slices, "zp");
	json_t *obj = zw_alias_slice_object("app", "zp", "uid-1", "discovery.k8s.io/v1",
	                                    json_object_get(m, "IPv4"));
	json_t *cur, *eps;

	assert_non_null(obj);
	assert_json(
	        json_object_get(obj, "metadata"),
	        "{\"name\":\"zp-zw-ipv4\",\"namespace\":\"app\",\"labels\":{"
	        "\"kubernetes.io/service-name\":\"zp\","
	        "\"endpointslice.kubernetes.io/managed-by\":\"webhook.zerowire.io\","
	        "\"app.kubernetes.io/managed-by\":\"zerowire\",\"zerowire.io/wiring\":\"alias\"},"
	        "\"ownerReferences\":[{\"apiVersion\":\"v1\",\"kind\":\"Service\","
	        "\"name\":\"zp\",\"uid\":\"uid-1\"}]}");
	assert_string_equal(json_string_value(json_object_get(obj, "addressType")), "IPv4");
	/* As the API server returns it: extra fields do not count. */
	cur = json_deep_copy(obj);
	json_object_set_new(json_object_get(cur, "metadata"), "resourceVersion", json_string("7"));
	json_object_set_new(
	        json_object_get(json_array_get(json_object_get(cur, "endpoints"), 0), "conditions"),
	        "serving", json_true());
	assert_true(zw_alias_slice_matches(cur, obj));
	/* A pod went away. */
	eps = json_object_get(cur, "endpoints");
	json_array_remove(eps, 1);
	assert_false(zw_alias_slice_matches(cur, obj));
	json_decref(cur);
	/* A port changed. */
	cur = json_deep_copy(obj);
	json_object_set_new(json_array_get(json_object_get(cur, "ports"), 0), "port",
	                    json_integer(8081));
	assert_false(zw_alias_slice_matches(cur, obj));
	json_decref(cur);
	json_decref(obj);
	json_decref(m);
	json_decref(slices);
}

/* cur matches spec `same` (no patch) and converts to `other` by patch `want`. */
static void converts(const json_t *cur, const json_t *same, const json_t *other, const char *want)
{
	json_t *patch = zw_alias_service_patch(cur, other);

	assert_null(zw_alias_service_patch(cur, same));
	assert_json(patch, want);
	json_decref(patch);
}

static void service_specs_and_conversion(void **state)
{
	(void)state;
	json_t *proxy = parse("{\"spec\":{\"selector\":{\"a\":\"b\"},\"ports\":["
	                      "{\"name\":\"http\",\"port\":80,\"targetPort\":8080},"
	                      "{\"name\":\"scaler\",\"port\":9090,\"protocol\":\"TCP\"}]}}");
	json_t *es = zw_alias_service_spec(ZW_ALIAS_ENDPOINTSLICE, "zp.zw.svc.cluster.local", proxy,
	                                   80, 81);
	json_t *en = zw_alias_service_spec(ZW_ALIAS_EXTERNALNAME, "zp.zw.svc.cluster.local", NULL,
	                                   8080, 0);
	json_t *cur, *patch;
	enum zw_alias_mode mode;

	assert_json(es, "{\"type\":\"ClusterIP\",\"ports\":["
	                "{\"name\":\"http\",\"port\":80,\"protocol\":\"TCP\"},"
	                "{\"name\":\"scaler\",\"port\":9090,\"protocol\":\"TCP\"}]}");
	assert_json(en, "{\"type\":\"ExternalName\",\"externalName\":\"zp.zw.svc.cluster.local\","
	                "\"ports\":[{\"name\":\"http\",\"port\":8080,\"protocol\":\"TCP\"}]}");

	/* An ExternalName alias, switched to endpointslice mode. */
	cur = parse(
	        "{\"spec\":{\"type\":\"ExternalName\",\"externalName\":\"zp.zw.svc.cluster.local\","
	        "\"ports\":[{\"name\":\"http\",\"port\":8080,\"protocol\":\"TCP\"}]}}");
	converts(cur, en, es,
	         "{\"spec\":{\"type\":\"ClusterIP\",\"externalName\":null,"
	         "\"selector\":null,\"ports\":["
	         "{\"name\":\"http\",\"port\":80,\"protocol\":\"TCP\"},"
	         "{\"name\":\"scaler\",\"port\":9090,\"protocol\":\"TCP\"}]}}");
	json_decref(cur);

	/* A selectorless alias (as the API server returns it), and back. */
	cur = parse(
	        "{\"spec\":{\"type\":\"ClusterIP\",\"clusterIP\":\"10.0.0.4\","
	        "\"clusterIPs\":[\"10.0.0.4\"],\"ipFamilies\":[\"IPv4\"],"
	        "\"sessionAffinity\":\"None\",\"ports\":["
	        "{\"name\":\"http\",\"port\":80,\"protocol\":\"TCP\",\"targetPort\":80},"
	        "{\"name\":\"scaler\",\"port\":9090,\"protocol\":\"TCP\",\"targetPort\":9090}]}}");
	converts(cur, es, en,
	         "{\"spec\":{\"type\":\"ExternalName\",\"externalName\":"
	         "\"zp.zw.svc.cluster.local\",\"clusterIP\":null,\"clusterIPs\":null,"
	         "\"ipFamilies\":null,\"ipFamilyPolicy\":null,\"selector\":null,"
	         "\"ports\":[{\"name\":\"http\",\"port\":8080,\"protocol\":\"TCP\"}]}}");
	/* The proxy's ports changed. */
	json_object_set_new(
	        json_array_get(json_object_get(json_object_get(cur, "spec"), "ports"), 0), "port",
	        json_integer(81));
	patch = zw_alias_service_patch(cur, es);
	assert_non_null(patch);
	json_decref(patch);
	json_decref(cur);

	assert_int_equal(zw_alias_mode_parse("externalname", &mode), 0);
	assert_int_equal(mode, ZW_ALIAS_EXTERNALNAME);
	assert_int_equal(zw_alias_mode_parse("endpointslice", &mode), 0);
	assert_int_equal(mode, ZW_ALIAS_ENDPOINTSLICE);
	assert_int_equal(zw_alias_mode_parse("ExternalName", &mode), -1);
	assert_int_equal(zw_alias_mode_parse(NULL, &mode), -1);
	json_decref(es);
	json_decref(en);
	json_decref(proxy);
}

/* The proxy's h2c port (appProtocol kubernetes.io/h2c) reaches the alias
 * Service and its EndpointSlices with its appProtocol, so a gateway speaks
 * h2c to it; a changed appProtocol is a change to patch. */
static void h2c_port_carried(void **state)
{
	(void)state;
	json_t *proxy = parse("{\"spec\":{\"ports\":["
	                      "{\"name\":\"http\",\"port\":8080,\"targetPort\":\"http\"},"
	                      "{\"name\":\"h2c\",\"port\":8081,\"targetPort\":\"http\","
	                      "\"appProtocol\":\"kubernetes.io/h2c\"}]}}");
	json_t *es = zw_alias_service_spec(ZW_ALIAS_ENDPOINTSLICE, "zp.zw.svc.cluster.local", proxy,
	                                   8080, 8081);
	json_t *unknown = zw_alias_service_spec(ZW_ALIAS_EXTERNALNAME, "zp.zw.svc.cluster.local",
	                                        NULL, 8080, 8081);
	json_t *cur, *patch, *slices, *m;

	assert_json(es, "{\"type\":\"ClusterIP\",\"ports\":["
	                "{\"name\":\"http\",\"port\":8080,\"protocol\":\"TCP\"},"
	                "{\"name\":\"h2c\",\"port\":8081,\"protocol\":\"TCP\","
	                "\"appProtocol\":\"kubernetes.io/h2c\"}]}");
	assert_json(unknown,
	            "{\"type\":\"ExternalName\",\"externalName\":\"zp.zw.svc.cluster.local\","
	            "\"ports\":[{\"name\":\"http\",\"port\":8080,\"protocol\":\"TCP\"},"
	            "{\"name\":\"h2c\",\"port\":8081,\"protocol\":\"TCP\","
	            "\"appProtocol\":\"kubernetes.io/h2c\"}]}");

	/* An alias made before the h2c port, then one without its appProtocol. */
	cur = parse("{\"spec\":{\"type\":\"ClusterIP\",\"ports\":["
	            "{\"name\":\"http\",\"port\":8080,\"protocol\":\"TCP\"}]}}");
	patch = zw_alias_service_patch(cur, es);
	assert_non_null(patch);
	assert_json(json_object_get(json_object_get(patch, "spec"), "ports"),
	            "[{\"name\":\"http\",\"port\":8080,\"protocol\":\"TCP\"},"
	            "{\"name\":\"h2c\",\"port\":8081,\"protocol\":\"TCP\","
	            "\"appProtocol\":\"kubernetes.io/h2c\"}]");
	json_decref(patch);
	json_decref(cur);
	cur = parse("{\"spec\":{\"type\":\"ClusterIP\",\"ports\":["
	            "{\"name\":\"http\",\"port\":8080,\"protocol\":\"TCP\"},"
	            "{\"name\":\"h2c\",\"port\":8081,\"protocol\":\"TCP\"}]}}");
	patch = zw_alias_service_patch(cur, es);
	assert_non_null(patch);
	json_decref(patch);
	json_object_set_new(
	        json_array_get(json_object_get(json_object_get(cur, "spec"), "ports"), 1),
	        "appProtocol", json_string("kubernetes.io/h2c"));
	assert_null(zw_alias_service_patch(cur, es));
	json_decref(cur);

	/* The proxy's EndpointSlice has both ports on the same container port. */
	slices = parse("[{\"metadata\":{\"labels\":{\"kubernetes.io/service-name\":\"zp\"}},"
	               "\"addressType\":\"IPv4\","
	               "\"endpoints\":[{\"addresses\":[\"10.0.0.3\"]}],"
	               "\"ports\":[{\"name\":\"h2c\",\"port\":8080,\"protocol\":\"TCP\","
	               "\"appProtocol\":\"kubernetes.io/h2c\"},"
	               "{\"name\":\"http\",\"port\":8080,\"protocol\":\"TCP\"}]}]");
	m = zw_alias_mirror(slices, "zp");
	assert_json(json_object_get(json_object_get(m, "IPv4"), "ports"),
	            "[{\"name\":\"h2c\",\"port\":8080,\"protocol\":\"TCP\","
	            "\"appProtocol\":\"kubernetes.io/h2c\"},"
	            "{\"name\":\"http\",\"port\":8080,\"protocol\":\"TCP\"}]");
	json_decref(m);
	json_decref(slices);
	json_decref(unknown);
	json_decref(es);
	json_decref(proxy);
}

static void slice_names(void **state)
{
	(void)state;
	char buf[16];

	assert_int_equal(zw_alias_slice_name("zp", "IPv6", buf, sizeof(buf)), 0);
	assert_string_equal(buf, "zp-zw-ipv6");
	assert_int_equal(zw_alias_slice_name("averyverylongname", "IPv4", buf, sizeof(buf)), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(mirror_ready_endpoints),
	        cmocka_unit_test(mirror_nothing_ready),
	        cmocka_unit_test(slice_object_and_match),
	        cmocka_unit_test(service_specs_and_conversion),
	        cmocka_unit_test(h2c_port_carried),
	        cmocka_unit_test(slice_names),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
