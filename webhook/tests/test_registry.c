/* Target registry (webhook/registry.c). */
#include "registry.h"

#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

static json_t *so(const char *ns, const char *name, const char *svc, const char *port,
                  const char *autowire)
{
	json_t *md = json_pack("{s:s, s:s, s:s}", "scalerAddress", "zerowire-proxy.zerowire:9090",
	                       "service", svc, "port", port);
	if (autowire)
		json_object_set_new(md, "trafficAutowire", json_string(autowire));
	json_t *o = json_pack("{s:s, s:s, s:{s:s, s:s}, s:{s:{s:s}, s:[{s:s, s:o}]}}", "apiVersion",
	                      "keda.sh/v1alpha1", "kind", "ScaledObject", "metadata", "name", name,
	                      "namespace", ns, "spec", "scaleTargetRef", "name", svc, "triggers",
	                      "type", "external-push", "metadata", md);
	assert_non_null(o);
	return o;
}

static size_t count(struct zw_registry *reg, const char *ns, const char *svc)
{
	const struct zw_target *out[8];
	zw_registry_read_begin(reg);
	size_t n = zw_registry_find_service(reg, ns, svc, out, 8);
	for (size_t i = 0; i < n && i < 8; i++) {
		assert_string_equal(out[i]->service.name, svc);
		assert_string_equal(out[i]->namespace, ns);
	}
	zw_registry_read_end(reg);
	return n;
}

static void test_targets_by_source(void **state)
{
	(void)state;
	char err[ZW_TARGET_ERRLEN];
	struct zw_registry *reg = zw_registry_new();
	assert_non_null(reg);
	uint64_t g0 = zw_registry_generation(reg);

	json_t *a = so("web", "a", "app", "80", NULL);
	json_t *b = so("web", "b", "app", "80", "ingress");
	json_t *c = so("web", "c", "app2", "80", NULL);
	assert_int_equal(zw_registry_apply_object(reg, a, false, err), 0);
	assert_int_equal(zw_registry_apply_object(reg, b, false, err), 0);
	assert_int_equal(zw_registry_apply_object(reg, c, false, err), 0);
	assert_true(zw_registry_generation(reg) > g0);
	assert_int_equal(zw_registry_target_count(reg), 3);
	assert_int_equal(count(reg, "web", "app"), 2);
	assert_int_equal(count(reg, "web", "app2"), 1);
	assert_int_equal(count(reg, "web", "ap"), 0);
	assert_int_equal(count(reg, "other", "app"), 0);

	/* Replacing a source moves its target to another Service. */
	json_t *b2 = so("web", "b", "app2", "80", NULL);
	assert_int_equal(zw_registry_apply_object(reg, b2, false, err), 0);
	assert_int_equal(count(reg, "web", "app"), 1);
	assert_int_equal(count(reg, "web", "app2"), 2);

	/* An invalid update removes the source and reports why. */
	json_t *bad = so("web", "b", "app2", "not-a-port", NULL);
	assert_int_equal(zw_registry_apply_object(reg, bad, false, err), ZW_TARGET_EINVAL);
	assert_non_null(strstr(err, "metadata.port"));
	assert_int_equal(count(reg, "web", "app2"), 1);

	/* Deletion and plain ScaledObjects. */
	uint64_t g1 = zw_registry_generation(reg);
	assert_int_equal(zw_registry_apply_object(reg, a, true, err), 0);
	assert_int_equal(count(reg, "web", "app"), 0);
	assert_true(zw_registry_generation(reg) > g1);
	assert_int_equal(zw_registry_remove_source(reg, "ScaledObject/web/c"), 1);
	assert_int_equal(zw_registry_remove_source(reg, "ScaledObject/web/c"), 0);
	assert_int_equal(zw_registry_target_count(reg), 0);

	json_t *cm = json_pack("{s:s, s:s, s:{s:s}}", "apiVersion", "v1", "kind", "ConfigMap",
	                       "metadata", "name", "x");
	assert_int_equal(zw_registry_apply_object(reg, cm, false, err), 1);
	json_decref(cm);
	json_decref(a);
	json_decref(b);
	json_decref(b2);
	json_decref(c);
	json_decref(bad);
	zw_registry_free(reg);
}

static void test_set_targets_direct(void **state)
{
	(void)state;
	char err[ZW_TARGET_ERRLEN];
	struct zw_registry *reg = zw_registry_new();
	json_t *o = so("ns", "s", "svc", "8080", "httproute,grpcroute");
	struct zw_target *ts = NULL;
	size_t n = 0;
	assert_int_equal(zw_target_parse_object(o, &ts, &n, err), 0);
	assert_int_equal(n, 1);
	assert_int_equal(zw_registry_set_targets(reg, "custom/key", ts, n), 0);
	zw_target_array_free(ts, n);
	const struct zw_target *out[2];
	zw_registry_read_begin(reg);
	assert_int_equal(zw_registry_find_service(reg, "ns", "svc", out, 2), 1);
	assert_int_equal(out[0]->service.port, 8080);
	assert_int_equal(out[0]->autowire, ZW_AW_HTTPROUTE | ZW_AW_GRPCROUTE);
	zw_registry_read_end(reg);
	assert_int_equal(zw_registry_set_targets(reg, "custom/key", NULL, 0), 0);
	assert_int_equal(zw_registry_target_count(reg), 0);
	json_decref(o);
	zw_registry_free(reg);
}

static int collect_vd(void *ctx, const char *svc_ns, const char *svc_name, int svc_port)
{
	char *buf = ctx;
	char one[128];
	snprintf(one, sizeof(one), "%s/%s:%d;", svc_ns, svc_name, svc_port);
	strncat(buf, one, 511 - strlen(buf));
	return 0;
}

static void test_gloo_and_services(void **state)
{
	(void)state;
	char err[ZW_TARGET_ERRLEN];
	struct zw_registry *reg = zw_registry_new();
	json_t *up = json_loads("{\"apiVersion\":\"gloo.solo.io/v1\",\"kind\":\"Upstream\","
	                        "\"metadata\":{\"name\":\"u\",\"namespace\":\"gloo-system\"},"
	                        "\"spec\":{\"kube\":{\"serviceName\":\"app\",\"serviceNamespace\":"
	                        "\"web\",\"servicePort\":8080}}}",
	                        0, NULL);
	json_t *vd = json_loads(
	        "{\"apiVersion\":\"networking.gloo.solo.io/v2\",\"kind\":\"VirtualDestination\","
	        "\"metadata\":{\"name\":\"vd\",\"namespace\":\"web\"},\"spec\":{\"services\":"
	        "[{\"name\":\"app\"},{\"name\":\"b\",\"namespace\":\"x\"},{\"labels\":{\"a\":\"b\"}"
	        "}],"
	        "\"ports\":[{\"number\":80,\"targetPort\":{\"number\":8080}},{\"number\":81,"
	        "\"targetPort\":{\"name\":\"http\"}}]}}",
	        0, NULL);
	json_t *svc =
	        json_loads("{\"apiVersion\":\"v1\",\"kind\":\"Service\",\"metadata\":{\"name\":"
	                   "\"app\",\"namespace\":\"web\"},\"spec\":{\"ports\":[{\"name\":"
	                   "\"http\",\"port\":8080},{\"port\":9090}]}}",
	                   0, NULL);
	assert_int_equal(zw_registry_apply_object(reg, up, false, err), 0);
	assert_int_equal(zw_registry_apply_object(reg, vd, false, err), 0);
	assert_int_equal(zw_registry_apply_object(reg, svc, false, err), 0);
	assert_int_equal(zw_registry_set_wiring(reg, ZW_WIRE_ALIAS, "web", true), 0);

	struct zw_registry_upstream u;
	char buf[512] = "";
	int port = 0;
	zw_registry_read_begin(reg);
	assert_int_equal(zw_registry_find_upstream(reg, "gloo-system", "u", &u), 1);
	assert_string_equal(u.service_namespace, "web");
	assert_string_equal(u.service_name, "app");
	assert_int_equal(u.service_port, 8080);
	assert_int_equal(zw_registry_find_upstream(reg, "web", "u", &u), 0);
	assert_int_equal(zw_registry_each_vd_service(reg, "web", "vd", 80, collect_vd, buf), 0);
	assert_string_equal(buf, "web/app:8080;x/b:8080;");
	buf[0] = '\0';
	assert_int_equal(zw_registry_each_vd_service(reg, "web", "vd", 81, collect_vd, buf), 0);
	assert_string_equal(buf, "web/app:0;x/b:0;");
	assert_int_equal(zw_registry_each_vd_service(reg, "web", "nope", 0, collect_vd, buf), -1);
	assert_int_equal(zw_registry_service_port(reg, "web", "app", "http", &port), 1);
	assert_int_equal(port, 8080);
	assert_int_equal(zw_registry_service_port(reg, "web", "app", "grpc", &port), 0);
	assert_int_equal(zw_registry_service_port(reg, "web", "other", "http", &port), -1);
	assert_true(zw_registry_wiring(reg, ZW_WIRE_ALIAS, "web"));
	assert_false(zw_registry_wiring(reg, ZW_WIRE_ALIAS, "web2"));
	assert_false(zw_registry_wiring(reg, ZW_WIRE_GRANT_HTTPROUTE, "web"));
	zw_registry_read_end(reg);

	assert_int_equal(zw_registry_apply_object(reg, up, true, err), 0);
	assert_int_equal(zw_registry_apply_object(reg, vd, true, err), 0);
	assert_int_equal(zw_registry_apply_object(reg, svc, true, err), 0);
	assert_int_equal(zw_registry_set_wiring(reg, ZW_WIRE_ALIAS, "web", false), 0);
	zw_registry_read_begin(reg);
	assert_int_equal(zw_registry_find_upstream(reg, "gloo-system", "u", &u), 0);
	assert_int_equal(zw_registry_each_vd_service(reg, "web", "vd", 80, collect_vd, buf), -1);
	assert_int_equal(zw_registry_service_port(reg, "web", "app", "http", &port), -1);
	assert_false(zw_registry_wiring(reg, ZW_WIRE_ALIAS, "web"));
	zw_registry_read_end(reg);
	json_decref(up);
	json_decref(vd);
	json_decref(svc);
	zw_registry_free(reg);
}

/* BackendTLSPolicy web/p1 with these targetRefs (JSON), or NULL. */
static json_t *btp(const char *refs)
{
	json_t *r = json_loads(refs, 0, NULL);
	json_t *p =
	        json_pack("{s:s, s:s, s:{s:s, s:s}, s:{s:o}}", "apiVersion",
	                  "gateway.networking.k8s.io/v1", "kind", "BackendTLSPolicy", "metadata",
	                  "name", "p1", "namespace", "web", "spec", "targetRefs", r);
	return p;
}

/* BackendTLSPolicy targetRefs: the whole Service or one port by
 * sectionName (a numbered destination named through the Service's ports),
 * replaced on update, forgotten on delete; other kinds of target ignored. */
static void test_backend_tls_policies(void **state)
{
	(void)state;
	char err[ZW_TARGET_ERRLEN];
	const char *pol = NULL;
	struct zw_registry *reg = zw_registry_new();
	json_t *svc =
	        json_loads("{\"apiVersion\":\"v1\",\"kind\":\"Service\",\"metadata\":{\"name\":"
	                   "\"app\",\"namespace\":\"web\"},\"spec\":{\"ports\":[{\"name\":"
	                   "\"http\",\"port\":80},{\"name\":\"https\",\"port\":443}]}}",
	                   0, NULL);
	json_t *p1 = btp("[{\"group\":\"\",\"kind\":\"Service\",\"name\":\"app\",\"sectionName\":"
	                 "\"https\"},{\"group\":\"\",\"kind\":\"Service\",\"name\":\"whole\"},"
	                 "{\"group\":\"example.com\",\"kind\":\"Backend\",\"name\":\"other\"}]");
	json_t *p1b = btp("[{\"group\":\"\",\"kind\":\"Service\",\"name\":\"app\",\"sectionName\":"
	                  "\"http\"}]");
	assert_non_null(svc);
	assert_non_null(p1);
	assert_non_null(p1b);
	assert_int_equal(zw_registry_apply_object(reg, svc, false, err), 0);
	assert_int_equal(zw_registry_apply_object(reg, p1, false, err), 0);
	zw_registry_read_begin(reg);
	assert_int_equal(zw_registry_backend_tls(reg, "web", "app", 443, NULL, &pol), 1);
	assert_string_equal(pol, "web/p1");
	assert_int_equal(zw_registry_backend_tls(reg, "web", "app", 0, "https", &pol), 1);
	assert_int_equal(zw_registry_backend_tls(reg, "web", "app", 80, NULL, &pol), 0);
	assert_int_equal(zw_registry_backend_tls(reg, "web", "app", 0, "http", &pol), 0);
	/* A port the registry cannot name: the section is taken as it. */
	assert_int_equal(zw_registry_backend_tls(reg, "web", "app", 8443, NULL, &pol), 1);
	assert_int_equal(zw_registry_backend_tls(reg, "web", "whole", 1, "any", &pol), 1);
	assert_int_equal(zw_registry_backend_tls(reg, "web", "other", 1, NULL, &pol), 0);
	assert_int_equal(zw_registry_backend_tls(reg, "other", "app", 443, NULL, &pol), 0);
	zw_registry_read_end(reg);
	assert_int_equal(zw_registry_apply_object(reg, p1b, false, err), 0);
	zw_registry_read_begin(reg);
	assert_int_equal(zw_registry_backend_tls(reg, "web", "app", 443, NULL, &pol), 0);
	assert_int_equal(zw_registry_backend_tls(reg, "web", "app", 80, NULL, &pol), 1);
	assert_int_equal(zw_registry_backend_tls(reg, "web", "whole", 1, NULL, &pol), 0);
	zw_registry_read_end(reg);
	assert_int_equal(zw_registry_apply_object(reg, p1b, true, err), 0);
	zw_registry_read_begin(reg);
	assert_int_equal(zw_registry_backend_tls(reg, "web", "app", 80, NULL, &pol), 0);
	zw_registry_read_end(reg);
	json_decref(svc);
	json_decref(p1);
	json_decref(p1b);
	zw_registry_free(reg);
}

/* ReferenceGrant ns/name (apiVersion gateway.networking.k8s.io/<version>)
 * with these from and to lists (JSON), or NULL. */
static json_t *grant(const char *version, const char *ns, const char *from, const char *to)
{
	char api[64];
	snprintf(api, sizeof(api), "gateway.networking.k8s.io/%s", version);
	return json_pack("{s:s, s:s, s:{s:s, s:s}, s:{s:o, s:o}}", "apiVersion", api, "kind",
	                 "ReferenceGrant", "metadata", "name", "g", "namespace", ns, "spec", "from",
	                 json_loads(from, 0, NULL), "to", json_loads(to, 0, NULL));
}

#define FROM_SHOP_HTTP                                                                             \
	"[{\"group\":\"gateway.networking.k8s.io\",\"kind\":\"HTTPRoute\",\"namespace\":\"shop\"}" \
	"]"

/* One look-up: may routes of kind in namespace from reach Service svc of
 * namespace ns? */
struct grant_q {
	const char *ns, *from, *kind, *svc;
	int want;
};

static void check_grants(const struct zw_registry *reg, const struct grant_q *q, size_t n)
{
	const char *g = NULL;
	zw_registry_read_begin(reg);
	for (size_t i = 0; i < n; i++) {
		int got = zw_registry_reference_grant(reg, q[i].ns, q[i].from, q[i].kind, q[i].svc,
		                                      &g);
		if (got != q[i].want)
			fail_msg("%s from %s %s to %s: %d, want %d", q[i].ns, q[i].from, q[i].kind,
			         q[i].svc, got, q[i].want);
		if (got)
			assert_string_equal(g, "back/g");
	}
	zw_registry_read_end(reg);
}

/* ReferenceGrants: (from kind and namespace, to Service) pairs of the
 * backend's namespace; a `to` without name allows every Service; other
 * groups and kinds ignored; replaced on update (v1beta1 as v1), forgotten
 * on delete. */
static void test_reference_grants(void **state)
{
	(void)state;
	char err[ZW_TARGET_ERRLEN];
	struct zw_registry *reg = zw_registry_new();
	json_t *one = grant("v1", "back", FROM_SHOP_HTTP,
	                    "[{\"group\":\"\",\"kind\":\"Service\",\"name\":\"api\"},"
	                    "{\"group\":\"\",\"kind\":\"Secret\",\"name\":\"db\"},"
	                    "{\"group\":\"x.io\",\"kind\":\"Service\",\"name\":\"db\"}]");
	json_t *all = grant("v1beta1", "back",
	                    "[{\"group\":\"gateway.networking.k8s.io\",\"kind\":\"GRPCRoute\","
	                    "\"namespace\":\"shop\"},{\"group\":\"x.io\",\"kind\":\"HTTPRoute\","
	                    "\"namespace\":\"web\"}]",
	                    "[{\"group\":\"\",\"kind\":\"Service\"}]");
	static const struct grant_q named[] = {
	        {"back", "shop", "HTTPRoute", "api", 1}, {"back", "shop", "HTTPRoute", "db", 0},
	        {"back", "shop", "HTTPRoute", "ap", 0},  {"back", "shop", "GRPCRoute", "api", 0},
	        {"back", "web", "HTTPRoute", "api", 0},  {"shop", "shop", "HTTPRoute", "api", 0},
	};
	static const struct grant_q every[] = {
	        {"back", "shop", "HTTPRoute", "api", 0},
	        {"back", "shop", "GRPCRoute", "any", 1},
	        {"back", "web", "HTTPRoute", "any", 0},
	};
	static const struct grant_q gone[] = {{"back", "shop", "GRPCRoute", "any", 0}};
	uint64_t gen0 = zw_registry_generation(reg);
	assert_non_null(one);
	assert_non_null(all);
	assert_int_equal(zw_registry_apply_object(reg, one, false, err), 0);
	assert_true(zw_registry_generation(reg) > gen0);
	check_grants(reg, named, sizeof(named) / sizeof(named[0]));
	/* The same grant rewritten (another version): the old pairs go. */
	assert_int_equal(zw_registry_apply_object(reg, all, false, err), 0);
	check_grants(reg, every, sizeof(every) / sizeof(every[0]));
	assert_int_equal(zw_registry_apply_object(reg, all, true, err), 0);
	check_grants(reg, gone, 1);
	json_decref(one);
	json_decref(all);
	zw_registry_free(reg);
}

struct race {
	struct zw_registry *reg;
	int stop;
	size_t seen;
};

static void *reader(void *arg)
{
	struct race *r = arg;
	while (!__atomic_load_n(&r->stop, __ATOMIC_ACQUIRE)) {
		const struct zw_target *out[4];
		zw_registry_read_begin(r->reg);
		size_t n = zw_registry_find_service(r->reg, "ns", "svc", out, 4);
		for (size_t i = 0; i < n && i < 4; i++)
			r->seen += strlen(out[i]->service.name);
		zw_registry_read_end(r->reg);
	}
	return NULL;
}

static void test_concurrent_readers(void **state)
{
	(void)state;
	char err[ZW_TARGET_ERRLEN];
	struct race r = {.reg = zw_registry_new()};
	pthread_t th[2];
	for (int i = 0; i < 2; i++)
		assert_int_equal(pthread_create(&th[i], NULL, reader, &r), 0);
	for (int i = 0; i < 300; i++) {
		char name[32];
		snprintf(name, sizeof(name), "so-%d", i % 7);
		json_t *o = so("ns", name, "svc", "80", NULL);
		assert_int_equal(zw_registry_apply_object(r.reg, o, i % 3 == 0, err), 0);
		json_decref(o);
	}
	__atomic_store_n(&r.stop, 1, __ATOMIC_RELEASE);
	for (int i = 0; i < 2; i++)
		pthread_join(th[i], NULL);
	zw_registry_free(r.reg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_targets_by_source),
	        cmocka_unit_test(test_set_targets_direct),
	        cmocka_unit_test(test_gloo_and_services),
	        cmocka_unit_test(test_backend_tls_policies),
	        cmocka_unit_test(test_reference_grants),
	        cmocka_unit_test(test_concurrent_readers),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
