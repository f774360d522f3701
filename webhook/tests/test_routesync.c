/* Route records and the route pass without touches (webhook/routesync.c),
 * and the wiring a route needs (webhook/wiring.c). */
#include "registry.h"
#include "routesync.h"
#include "wiring.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "jsontest.h"

/* An Ingress in ns at resourceVersion rv whose one backend is Service svc. */
static json_t *ingress(const char *ns, const char *name, const char *rv, const char *svc)
{
	json_t *o = json_pack("{s:s,s:s,s:{s:s,s:s,s:s},s:{s:[{s:s,s:{s:[{s:s,s:s,s:{s:{s:s,"
	                      "s:{s:i}}}}]}}]}}",
	                      "apiVersion", "networking.k8s.io/v1", "kind", "Ingress", "metadata",
	                      "name", name, "namespace", ns, "resourceVersion", rv, "spec", "rules",
	                      "host", "a.example", "http", "paths", "path", "/", "pathType",
	                      "Prefix", "backend", "service", "name", svc, "port", "number", 80);
	assert_non_null(o);
	return o;
}

static void setup_rs(struct zw_routesync *rs, struct zw_mutate_config *m, struct zw_registry *reg)
{
	zw_mutate_config_defaults(m);
	memset(rs, 0, sizeof(*rs));
	rs->reg = reg;
	rs->mutate = m;
}

static void test_rec_rules(void **state)
{
	struct zw_route_rec rec = {.key = "k",
	                           .evaluated = true,
	                           .eval_rv = "5",
	                           .eval_gen = 3,
	                           .touched = true,
	                           .touch_rv = "6",
	                           .touch_gen = 3,
	                           .touch_at_ms = 1000};
	(void)state;
	assert_true(zw_route_rec_fresh(&rec, "5", 3));
	assert_false(zw_route_rec_fresh(&rec, "6", 3)); /* the route changed */
	assert_false(zw_route_rec_fresh(&rec, "5", 4)); /* the registry changed */
	assert_false(zw_route_rec_fresh(NULL, "5", 3));
	rec.evaluated = false;
	assert_false(zw_route_rec_fresh(&rec, "5", 3));

	assert_true(zw_route_rec_touch_pending(&rec, "6", 3, 1000 + 5000));
	assert_false(zw_route_rec_touch_pending(&rec, "7", 3, 1000)); /* edited since */
	assert_false(zw_route_rec_touch_pending(&rec, "6", 4, 1000)); /* new generation */
	assert_false(zw_route_rec_touch_pending(&rec, "6", 3, 1000 + ZW_ROUTESYNC_RETOUCH_MS));
	rec.touched = false;
	assert_false(zw_route_rec_touch_pending(&rec, "6", 3, 1000));
}

static void test_pass_records(void **state)
{
	struct zw_registry *reg = zw_registry_new();
	struct zw_mutate_config m;
	struct zw_routesync rs;
	struct zw_watched_list routes = {0}, optout = {0};
	struct zw_wiring_needs needs;
	const struct zw_route_kind *rk = &zw_route_kinds[ZW_MK_INGRESS];
	json_t *a = ingress("web", "a", "10", "zerowire-proxy");
	json_t *b = ingress("web", "b", "11", "app");
	json_t *a2 = ingress("web", "a", "12", "zerowire-proxy");
	struct zw_route_rec *rec;
	uint64_t gen;
	char err[ZW_TARGET_ERRLEN];
	json_t *so;

	(void)state;
	assert_non_null(reg);
	setup_rs(&rs, &m, reg);
	gen = zw_registry_generation(reg);
	/* Inserted out of key order: the table is sorted after the pass. */
	assert_int_equal(zw_watched_add(&routes, b, "v1", rk), 0);
	assert_int_equal(zw_watched_add(&routes, a, "v1", rk), 0);
	assert_int_equal(zw_wiring_needs_init(&needs), 0);
	zw_routesync_pass(&rs, &routes, &optout, &needs, 1000);
	assert_int_equal(zw_route_recs_count(&rs.recs), 2);
	rec = zw_route_recs_find(&rs.recs, "ingresses.networking.k8s.io/web/a");
	assert_non_null(rec);
	assert_true(zw_route_rec_fresh(rec, "10", gen));
	assert_true(rec->alias); /* its backend is the alias Service */
	assert_false(rec->differs);
	assert_false(rec->touched);
	rec = zw_route_recs_find(&rs.recs, "ingresses.networking.k8s.io/web/b");
	assert_non_null(rec);
	assert_false(rec->alias);
	assert_true(json_is_true(json_object_get(needs.aliases, "web")));
	assert_int_equal(json_object_size(needs.grants), 0);
	zw_wiring_needs_free(&needs);

	/* A target elsewhere: a new generation, so the verdicts are stale and
	 * evaluated again; route a changed, route b is gone. */
	so = jt_parse("{\"apiVersion\":\"keda.sh/v1alpha1\",\"kind\":\"ScaledObject\","
	              "\"metadata\":{\"name\":\"s\",\"namespace\":\"other\"},"
	              "\"spec\":{\"scaleTargetRef\":{\"name\":\"x\"},\"triggers\":[{\"type\":"
	              "\"external-push\",\"metadata\":{\"scalerAddress\":"
	              "\"zerowire-proxy.zerowire:9090\",\"service\":\"x\",\"port\":\"80\"}}]}}");
	assert_int_equal(zw_registry_apply_object(reg, so, false, err), 0);
	assert_true(zw_registry_generation(reg) != gen);
	gen = zw_registry_generation(reg);
	zw_watched_clear(&routes);
	assert_int_equal(zw_watched_add(&routes, a2, "v1", rk), 0);
	assert_int_equal(zw_wiring_needs_init(&needs), 0);
	zw_routesync_pass(&rs, &routes, &optout, &needs, 2000);
	assert_int_equal(zw_route_recs_count(&rs.recs), 1);
	assert_null(zw_route_recs_find(&rs.recs, "ingresses.networking.k8s.io/web/b"));
	rec = zw_route_recs_find(&rs.recs, "ingresses.networking.k8s.io/web/a");
	assert_non_null(rec);
	assert_true(zw_route_rec_fresh(rec, "12", gen));
	assert_true(json_is_true(json_object_get(needs.aliases, "web")));

	zw_wiring_needs_free(&needs);
	zw_watched_clear(&routes);
	zw_routesync_free(&rs);
	json_decref(a);
	json_decref(b);
	json_decref(a2);
	json_decref(so);
	zw_registry_free(reg);
}

static void test_route_needs(void **state)
{
	struct zw_mutate_config m;
	const struct zw_route_kind *http = &zw_route_kinds[ZW_MK_HTTPROUTE];
	struct zw_wiring_needs needs;
	json_t *route =
	        jt_parse("{\"spec\":{\"rules\":[{\"backendRefs\":[{\"name\":\"zerowire-proxy\","
	                 "\"namespace\":\"zerowire\",\"port\":8080}]}]}}");
	json_t *local =
	        jt_parse("{\"spec\":{\"rules\":[{\"backendRefs\":[{\"name\":\"zerowire-proxy\","
	                 "\"port\":8080}]}]}}");
	json_t *other = jt_parse("{\"spec\":{\"rules\":[{\"backendRefs\":[{\"name\":\"app\","
	                         "\"kind\":\"Service\",\"port\":80}]}]}}");
	int alias, grant;

	(void)state;
	zw_mutate_config_defaults(&m);
	zw_wiring_route_needs(&m, http, route, "web", &alias, &grant);
	assert_int_equal(alias, 0);
	assert_int_equal(grant, 1);
	/* In the proxy namespace no grant is needed. */
	zw_wiring_route_needs(&m, http, route, "zerowire", &alias, &grant);
	assert_int_equal(grant, 0);
	/* No namespace on the ref: the route's own, not the proxy's. */
	zw_wiring_route_needs(&m, http, local, "web", &alias, &grant);
	assert_int_equal(grant, 0);
	zw_wiring_route_needs(&m, http, other, "web", &alias, &grant);
	assert_int_equal(grant, 0);

	assert_int_equal(zw_wiring_needs_init(&needs), 0);
	assert_int_equal(zw_wiring_needs_add(&needs, http, "web", 0, 1), 0);
	assert_int_equal(zw_wiring_needs_add(&needs, &zw_route_kinds[ZW_MK_GRPCROUTE], "web", 0, 1),
	                 0);
	assert_int_equal(zw_wiring_needs_add(&needs, http, "b", 0, 0), 0);
	assert_int_equal(json_object_size(needs.grants), 1);
	assert_int_equal(json_object_size(json_object_get(needs.grants, "web")), 2);
	assert_true(
	        json_is_true(json_object_get(json_object_get(needs.grants, "web"), "GRPCRoute")));
	assert_int_equal(json_object_size(needs.aliases), 0);
	zw_wiring_needs_free(&needs);
	json_decref(route);
	json_decref(local);
	json_decref(other);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_rec_rules),
	        cmocka_unit_test(test_pass_records),
	        cmocka_unit_test(test_route_needs),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
