/* zw_mutate_review edge cases: malformed reviews, operations without an
 * object, huge objects, deep nesting, the core API used by the reconciler,
 * concurrent reviews while the registry changes, and the patch of a review
 * whose restore replaced what it then rewrote. */
#include "jsonpatch.h"
#include "mutate.h"
#include "registry.h"

#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

static struct zw_registry *registry_with(const char *ns, const char *svc, const char *port)
{
	char err[ZW_TARGET_ERRLEN];
	struct zw_registry *reg = zw_registry_new();
	json_t *o = json_pack("{s:s, s:s, s:{s:s, s:s}, s:{s:{s:s}, s:[{s:s, s:{s:s, s:s, s:s}}]}}",
	                      "apiVersion", "keda.sh/v1alpha1", "kind", "ScaledObject", "metadata",
	                      "name", svc, "namespace", ns, "spec", "scaleTargetRef", "name", svc,
	                      "triggers", "type", "external-push", "metadata", "scalerAddress",
	                      "zerowire-proxy.zerowire:9090", "service", svc, "port", port);
	assert_int_equal(zw_registry_apply_object(reg, o, false, err), 0);
	json_decref(o);
	return reg;
}

static json_t *review_of(json_t *object, const char *group, const char *version, const char *kind,
                         const char *op)
{
	json_t *r = json_pack("{s:s, s:s, s:{s:s, s:{s:s, s:s, s:s}, s:s, s:s}}", "apiVersion",
	                      "admission.k8s.io/v1", "kind", "AdmissionReview", "request", "uid",
	                      "u-1", "kind", "group", group, "version", version, "kind", kind,
	                      "namespace", "web", "operation", op);
	if (object)
		json_object_set_new(json_object_get(r, "request"), "object", object);
	return r;
}

/* Runs a review; returns the parsed response (caller frees) and the status. */
static json_t *run(const char *body, size_t len, const struct zw_registry *reg, int *status,
                   struct zw_mutate_result *info)
{
	struct zw_mutate_config cfg;
	zw_mutate_config_defaults(&cfg);
	char *out = NULL;
	size_t out_len = 0;
	*status = zw_mutate_review(body, len, reg, &cfg, &out, &out_len, info);
	if (*status != 200) {
		assert_null(out);
		return NULL;
	}
	assert_int_equal(strlen(out), out_len);
	json_t *resp = json_loads(out, 0, NULL);
	free(out);
	assert_non_null(resp);
	return resp;
}

static json_t *run_json(json_t *review, const struct zw_registry *reg,
                        struct zw_mutate_result *info)
{
	char *body = json_dumps(review, JSON_COMPACT);
	int status;
	json_t *resp = run(body, strlen(body), reg, &status, info);
	free(body);
	assert_int_equal(status, 200);
	return resp;
}

static void test_malformed(void **state)
{
	(void)state;
	struct zw_mutate_result info;
	int status;
	const char *bodies[] = {
	        "",
	        "not json",
	        "[]",
	        "{\"kind\":\"AdmissionReview\",\"apiVersion\":\"admission.k8s.io/v1\"}",
	        "{\"kind\":\"AdmissionReview\",\"apiVersion\":\"admission.k8s.io/"
	        "v1\",\"request\":{}}",
	        "{\"kind\":\"AdmissionReview\",\"apiVersion\":\"admission.k8s.io/"
	        "v2\",\"request\":{\"uid\":"
	        "\"x\"}}",
	        "{\"kind\":\"Review\",\"apiVersion\":\"admission.k8s.io/"
	        "v1\",\"request\":{\"uid\":\"x\"}}",
	        "{\"kind\":\"AdmissionReview\",\"apiVersion\":\"admission.k8s.io/"
	        "v1\",\"request\":{\"uid\":"
	        "7}}",
	};
	for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
		json_t *r = run(bodies[i], strlen(bodies[i]), NULL, &status, &info);
		assert_null(r);
		if (status != 400)
			fail_msg("body %zu answered %d", i, status);
		assert_true(info.message[0] != '\0');
		assert_int_equal(info.outcome, ZW_MO_ERROR);
	}
	/* Over the body limit: 413 before parsing. */
	size_t big = ZW_MUTATE_MAX_BODY + 1;
	char *huge = malloc(big);
	memset(huge, ' ', big);
	assert_null(run(huge, big, NULL, &status, &info));
	assert_int_equal(status, 413);
	free(huge);
}

static void test_operations_without_object(void **state)
{
	(void)state;
	struct zw_mutate_result info;
	/* DELETE: allowed, no patch, uid echoed. */
	json_t *rv = review_of(NULL, "networking.k8s.io", "v1", "Ingress", "DELETE");
	json_t *resp = run_json(rv, NULL, &info);
	json_t *r = json_object_get(resp, "response");
	assert_string_equal(json_string_value(json_object_get(r, "uid")), "u-1");
	assert_true(json_is_true(json_object_get(r, "allowed")));
	assert_null(json_object_get(r, "patch"));
	assert_null(json_object_get(r, "patchType"));
	assert_int_equal(info.kind, ZW_MK_INGRESS);
	json_decref(resp);
	json_decref(rv);

	/* CREATE without object: allowed with a warning. */
	rv = review_of(NULL, "networking.k8s.io", "v1", "Ingress", "CREATE");
	resp = run_json(rv, NULL, &info);
	r = json_object_get(resp, "response");
	assert_true(json_is_true(json_object_get(r, "allowed")));
	assert_int_equal(json_array_size(json_object_get(r, "warnings")), 1);
	assert_int_equal(info.outcome, ZW_MO_ERROR);
	json_decref(resp);
	json_decref(rv);

	/* v1beta1 reviews are answered in kind; object of the wrong type. */
	rv = review_of(json_string("x"), "", "v1", "ConfigMap", "CREATE");
	json_object_set_new(rv, "apiVersion", json_string("admission.k8s.io/v1beta1"));
	resp = run_json(rv, NULL, &info);
	assert_string_equal(json_string_value(json_object_get(resp, "apiVersion")),
	                    "admission.k8s.io/v1beta1");
	assert_true(json_is_true(json_object_get(json_object_get(resp, "response"), "allowed")));
	json_decref(resp);
	json_decref(rv);
}

static json_t *route_with_refs(size_t n, const char *svc)
{
	json_t *refs = json_array();
	for (size_t i = 0; i < n; i++)
		json_array_append_new(refs, json_pack("{s:s, s:i, s:i}", "name", svc, "port", 80,
		                                      "weight", (int)(i % 7)));
	return json_pack("{s:s, s:s, s:{s:s, s:s}, s:{s:[{s:o}]}}", "apiVersion",
	                 "gateway.networking.k8s.io/v1", "kind", "HTTPRoute", "metadata", "name",
	                 "big", "namespace", "web", "spec", "rules", "backendRefs", refs);
}

static json_t *decode_patch(const json_t *resp)
{
	const char *b64 =
	        json_string_value(json_object_get(json_object_get(resp, "response"), "patch"));
	if (!b64)
		return NULL;
	static const char tbl[] =
	        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t n = strlen(b64), w = 0;
	char *out = malloc(n + 1);
	unsigned acc = 0;
	int bits = 0;
	for (size_t i = 0; i < n && b64[i] != '='; i++) {
		const char *p = strchr(tbl, b64[i]);
		assert_non_null(p);
		acc = (acc << 6) | (unsigned)(p - tbl);
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[w++] = (char)((acc >> bits) & 0xff);
		}
	}
	out[w] = '\0';
	json_t *patch = json_loads(out, 0, NULL);
	free(out);
	assert_non_null(patch);
	return patch;
}

/* spec.rules[0].backendRefs[i] of a route (borrowed). */
static json_t *backend_ref(const json_t *route, size_t i)
{
	json_t *rule = json_array_get(json_object_get(json_object_get(route, "spec"), "rules"), 0);
	return json_array_get(json_object_get(rule, "backendRefs"), i);
}

/* Admits HTTPRoute obj (stolen) against reg: the record does not fit, so
 * no patch, no rewrite, and a message holding `why`. */
static void expect_record_refused(json_t *obj, const struct zw_registry *reg, const char *why)
{
	struct zw_mutate_result info;
	json_t *rv = review_of(obj, "gateway.networking.k8s.io", "v1", "HTTPRoute", "CREATE");
	json_t *resp = run_json(rv, reg, &info);
	assert_null(decode_patch(resp));
	assert_int_equal(info.rewrites, 0);
	assert_non_null(strstr(info.message, why));
	json_decref(resp);
	json_decref(rv);
}

static void test_huge_objects(void **state)
{
	(void)state;
	struct zw_mutate_result info;
	struct zw_registry *reg = registry_with("web", "app", "80");

	/* 5000 backendRefs of a Service without a target: unchanged. */
	json_t *obj = route_with_refs(5000, "other");
	json_t *rv = review_of(json_incref(obj), "gateway.networking.k8s.io", "v1", "HTTPRoute",
	                       "CREATE");
	json_t *resp = run_json(rv, reg, &info);
	assert_null(decode_patch(resp));
	assert_int_equal(info.outcome, ZW_MO_UNCHANGED);
	json_decref(resp);
	json_decref(rv);
	json_decref(obj);

	/* 5000 backendRefs of a target: the record would exceed its limit, so
	 * the route is left unchanged with a warning. */
	expect_record_refused(route_with_refs(5000, "app"), reg, "record annotation would exceed");

	/* 500 of them: all rewritten, the patch applies, admitting the result
	 * again is a no-op. */
	obj = route_with_refs(500, "app");
	rv = review_of(json_incref(obj), "gateway.networking.k8s.io", "v1", "HTTPRoute", "CREATE");
	resp = run_json(rv, reg, &info);
	assert_int_equal(info.rewrites, 500);
	assert_int_equal(info.outcome, ZW_MO_REWRITTEN);
	json_t *patch = decode_patch(resp);
	assert_non_null(patch);
	char err[128];
	assert_int_equal(zw_jsonpatch_apply(&obj, patch, err, sizeof(err)), 0);
	json_t *ref = backend_ref(obj, 499);
	assert_string_equal(json_string_value(json_object_get(ref, "name")), "zerowire-proxy");
	assert_int_equal(json_integer_value(json_object_get(ref, "weight")), 499 % 7);
	json_decref(patch);
	json_decref(resp);
	json_decref(rv);
	rv = review_of(json_incref(obj), "gateway.networking.k8s.io", "v1", "HTTPRoute", "UPDATE");
	resp = run_json(rv, reg, &info);
	assert_null(decode_patch(resp));
	assert_int_equal(info.outcome, ZW_MO_UNCHANGED);
	json_decref(resp);
	json_decref(rv);
	json_decref(obj);
	zw_registry_free(reg);
}

/* The API server refuses an object whose annotations together exceed
 * 256 KiB (the lengths of keys and values). A route whose own annotations
 * (here a large kubectl last-applied-configuration) leave less room than the
 * record needs is left unchanged with a warning: a patch that pushed it over
 * would make the API server refuse the user's request. */
static void test_record_within_annotation_budget(void **state)
{
	(void)state;
	struct zw_mutate_result info;
	struct zw_registry *reg = registry_with("web", "app", "80");
	size_t big = 200 * 1024;
	char *filler = malloc(big + 1);
	assert_non_null(filler);
	memset(filler, 'x', big);
	filler[big] = '\0';

	json_t *obj = route_with_refs(500, "app");
	json_object_set_new(
	        json_object_get(obj, "metadata"), "annotations",
	        json_pack("{s:s}", "kubectl.kubernetes.io/last-applied-configuration", filler));
	expect_record_refused(obj, reg, "256 KiB");

	/* The same route with room to spare is rewritten. */
	obj = route_with_refs(500, "app");
	filler[100 * 1024] = '\0';
	json_object_set_new(
	        json_object_get(obj, "metadata"), "annotations",
	        json_pack("{s:s}", "kubectl.kubernetes.io/last-applied-configuration", filler));
	json_t *rv = review_of(json_incref(obj), "gateway.networking.k8s.io", "v1", "HTTPRoute",
	                       "CREATE");
	json_t *resp = run_json(rv, reg, &info);
	assert_int_equal(info.rewrites, 500);
	json_t *patch = decode_patch(resp);
	assert_non_null(patch);
	char err[128];
	assert_int_equal(zw_jsonpatch_apply(&obj, patch, err, sizeof(err)), 0);
	size_t total = 0;
	const char *key;
	json_t *v;
	json_object_foreach(json_object_get(json_object_get(obj, "metadata"), "annotations"), key,
	                    v)
	{
		total += strlen(key) + json_string_length(v);
	}
	assert_true(total <= 256 * 1024);
	json_decref(patch);
	json_decref(resp);
	json_decref(rv);
	json_decref(obj);
	free(filler);
	zw_registry_free(reg);
}

static void test_deep_nesting(void **state)
{
	(void)state;
	struct zw_mutate_result info;
	struct zw_registry *reg = registry_with("web", "app", "80");
	/* A deeply nested unrelated field next to a rewritten backendRef. */
	json_t *obj = route_with_refs(1, "app");
	json_t *deep = json_object(), *cur = deep;
	for (int i = 0; i < 1000; i++) {
		json_t *n = json_object();
		json_object_set_new(cur, "k", n);
		cur = n;
	}
	json_object_set_new(json_object_get(obj, "spec"), "x-deep", deep);
	json_t *rv = review_of(obj, "gateway.networking.k8s.io", "v1", "HTTPRoute", "CREATE");
	json_t *resp = run_json(rv, reg, &info);
	assert_int_equal(info.rewrites, 1);
	json_t *patch = decode_patch(resp);
	assert_non_null(patch);
	json_decref(patch);
	json_decref(resp);
	json_decref(rv);
	zw_registry_free(reg);
}

static void test_core_api(void **state)
{
	(void)state;
	struct zw_mutate_result info;
	struct zw_registry *reg = registry_with("web", "app", "80");
	json_t *obj = json_loads(
	        "{\"apiVersion\":\"networking.istio.io/v1\",\"kind\":\"VirtualService\","
	        "\"metadata\":{\"name\":\"vs\",\"namespace\":\"web\"},\"spec\":{\"hosts\":[\"a.b\"]"
	        ","
	        "\"gateways\":[\"gw\"],\"http\":[{\"route\":[{\"destination\":{\"host\":\"app\"}},"
	        "{\"destination\":{\"host\":\"db.data.svc.cluster.local\"}}]}]}}",
	        0, NULL);
	json_t *desired = NULL, *warnings = NULL;
	assert_int_equal(zw_mutate_object(obj, "networking.istio.io", "v1", "VirtualService", NULL,
	                                  reg, NULL, &desired, &warnings, &info),
	                 0);
	assert_int_equal(info.kind, ZW_MK_ISTIO_VIRTUALSERVICE);
	assert_int_equal(info.outcome, ZW_MO_REWRITTEN);
	assert_string_equal(zw_mutate_kind_name(info.kind), "istio_virtualservice");
	assert_string_equal(zw_mutate_outcome_name(info.outcome), "rewritten");
	assert_false(json_equal(desired, obj));

	/* The Services named, including the original behind a rewrite. */
	json_t *svcs = json_array();
	assert_int_equal(zw_mutate_services(desired, "networking.istio.io", "v1", "VirtualService",
	                                    NULL, reg, NULL, svcs),
	                 0);
	assert_int_equal(json_array_size(svcs), 2);
	assert_string_equal(json_string_value(json_array_get(svcs, 0)), "web/app");
	assert_string_equal(json_string_value(json_array_get(svcs, 1)), "data/db");
	json_decref(svcs);

	/* Without a registry the rewrite is undone. */
	json_t *back = NULL;
	assert_int_equal(zw_mutate_object(desired, "networking.istio.io", "v1", "VirtualService",
	                                  "web", NULL, NULL, &back, NULL, &info),
	                 0);
	assert_int_equal(info.outcome, ZW_MO_RESTORED);
	assert_int_equal(info.restores, 1);
	assert_true(json_equal(back, obj));
	json_decref(back);
	json_decref(desired);
	json_decref(warnings);

	/* Same kind name, another group: not ours. */
	assert_int_equal(zw_mutate_object(obj, "example.com", "v1", "VirtualService", NULL, reg,
	                                  NULL, &desired, NULL, &info),
	                 0);
	assert_int_equal(info.kind, ZW_MK_OTHER);
	assert_ptr_equal(desired, obj);
	json_decref(desired);
	json_decref(obj);
	zw_registry_free(reg);
}

/* zw_mutate_restore_object: the restore alone, even while the target is
 * still registered (uninstall, namespace opt-out). */
static void test_restore_only(void **state)
{
	(void)state;
	struct zw_mutate_result info;
	struct zw_registry *reg = registry_with("web", "app", "80");
	json_t *obj = json_loads("{\"apiVersion\":\"networking.k8s.io/v1\",\"kind\":\"Ingress\","
	                         "\"metadata\":{\"name\":\"i\",\"namespace\":\"web\"},"
	                         "\"spec\":{\"rules\":[{\"host\":\"a.b\",\"http\":{\"paths\":[{"
	                         "\"path\":\"/\",\"pathType\":\"Prefix\",\"backend\":{"
	                         "\"service\":{\"name\":\"app\",\"port\":{\"number\":80}}}}]}}]}}",
	                         0, NULL);
	json_t *rewritten = NULL, *back = NULL, *same = NULL;

	assert_non_null(obj);
	assert_int_equal(zw_mutate_object(obj, "networking.k8s.io", "v1", "Ingress", NULL, reg,
	                                  NULL, &rewritten, NULL, &info),
	                 0);
	assert_int_equal(info.outcome, ZW_MO_REWRITTEN);
	assert_int_equal(zw_mutate_restore_object(rewritten, "networking.k8s.io", "v1", "Ingress",
	                                          NULL, &back, &info),
	                 0);
	assert_int_equal(info.restores, 1);
	assert_true(json_equal(back, obj)); /* annotation gone, spec as it was */
	/* Nothing of zerowire's: the same object back. */
	assert_int_equal(zw_mutate_restore_object(obj, "networking.k8s.io", "v1", "Ingress", NULL,
	                                          &same, &info),
	                 0);
	assert_true(json_equal(same, obj));
	assert_int_equal(info.restores, 0);
	json_decref(same);
	/* Another kind: unchanged. */
	assert_int_equal(zw_mutate_restore_object(rewritten, "example.com", "v1", "Ingress", NULL,
	                                          &same, &info),
	                 0);
	assert_ptr_equal(same, rewritten);
	json_decref(same);
	json_decref(back);
	json_decref(rewritten);
	json_decref(obj);
	zw_registry_free(reg);
}

struct storm {
	struct zw_registry *reg;
	int failures;
};

static void *reviewer(void *arg)
{
	struct storm *s = arg;
	struct zw_mutate_config cfg;
	zw_mutate_config_defaults(&cfg);
	json_t *rv = review_of(route_with_refs(4, "app"), "gateway.networking.k8s.io", "v1",
	                       "HTTPRoute", "CREATE");
	char *body = json_dumps(rv, JSON_COMPACT);
	json_decref(rv);
	for (int i = 0; i < 200; i++) {
		char *out = NULL;
		size_t len;
		struct zw_mutate_result info;
		if (zw_mutate_review(body, strlen(body), s->reg, &cfg, &out, &len, &info) != 200 ||
		    (info.outcome != ZW_MO_REWRITTEN && info.outcome != ZW_MO_UNCHANGED))
			__atomic_add_fetch(&s->failures, 1, __ATOMIC_RELAXED);
		free(out);
	}
	free(body);
	return NULL;
}

static void test_concurrent_reviews(void **state)
{
	(void)state;
	char err[ZW_TARGET_ERRLEN];
	struct storm s = {.reg = registry_with("web", "app", "80")};
	pthread_t th[2];
	for (int i = 0; i < 2; i++)
		assert_int_equal(pthread_create(&th[i], NULL, reviewer, &s), 0);
	json_t *o =
	        json_pack("{s:s, s:s, s:{s:s, s:s}, s:{s:{s:s}, s:[{s:s, s:{s:s, s:s, s:s}}]}}",
	                  "apiVersion", "keda.sh/v1alpha1", "kind", "ScaledObject", "metadata",
	                  "name", "app", "namespace", "web", "spec", "scaleTargetRef", "name",
	                  "app", "triggers", "type", "external-push", "metadata", "scalerAddress",
	                  "zerowire-proxy.zerowire:9090", "service", "app", "port", "80");
	for (int i = 0; i < 200; i++)
		assert_true(zw_registry_apply_object(s.reg, o, i % 2, err) >= 0);
	for (int i = 0; i < 2; i++)
		pthread_join(th[i], NULL);
	assert_int_equal(s.failures, 0);
	json_decref(o);
	zw_registry_free(s.reg);
}

/* A record annotation whose restore replaces the very array a destination
 * is then rewritten in (a hand-edited annotation): the review cannot build
 * its patch from the objects it changed, starts again on a copy, and
 * answers the same patch a whole-document diff gives. */
static void test_patch_fallback(void **state)
{
	(void)state;
	struct zw_mutate_result info, core;
	struct zw_registry *reg = registry_with("web", "app", "80");
	json_t *obj = route_with_refs(1, "other");
	json_t *recs =
	        json_pack("[{s:s, s:{s:[{s:s, s:i}]}, s:{s:[{s:s, s:i, s:i}]}}]", "path",
	                  "/spec/rules/0", "original", "backendRefs", "name", "app", "port", 80,
	                  "written", "backendRefs", "name", "other", "port", 80, "weight", 0);
	char *text = json_dumps(recs, JSON_COMPACT);
	json_object_set_new(json_object_get(obj, "metadata"), "annotations",
	                    json_pack("{s:s}", ZW_ANNOTATION_ORIGINAL, text));
	free(text);
	json_decref(recs);
	json_t *rv = review_of(json_incref(obj), "gateway.networking.k8s.io", "v1", "HTTPRoute",
	                       "CREATE");
	json_t *resp = run_json(rv, reg, &info);
	assert_int_equal(info.outcome, ZW_MO_REWRITTEN);
	assert_int_equal(info.rewrites, 1);
	json_t *patch = decode_patch(resp);
	assert_non_null(patch);
	json_t *desired = NULL, *want = json_array();
	struct zw_mutate_config cfg;
	zw_mutate_config_defaults(&cfg);
	assert_int_equal(zw_mutate_object(obj, "gateway.networking.k8s.io", "v1", "HTTPRoute",
	                                  "web", reg, &cfg, &desired, NULL, &core),
	                 0);
	assert_int_equal(zw_jsonpatch_diff(obj, desired, "", want), 0);
	assert_true(json_equal(patch, want));
	char err[128];
	assert_int_equal(zw_jsonpatch_apply(&obj, patch, err, sizeof(err)), 0);
	assert_true(json_equal(obj, desired));
	json_t *ref = backend_ref(obj, 0);
	assert_string_equal(json_string_value(json_object_get(ref, "name")), "zerowire-proxy");
	json_decref(want);
	json_decref(desired);
	json_decref(patch);
	json_decref(resp);
	json_decref(rv);
	json_decref(obj);
	zw_registry_free(reg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_malformed),
	        cmocka_unit_test(test_operations_without_object),
	        cmocka_unit_test(test_huge_objects),
	        cmocka_unit_test(test_record_within_annotation_budget),
	        cmocka_unit_test(test_deep_nesting),
	        cmocka_unit_test(test_core_api),
	        cmocka_unit_test(test_restore_only),
	        cmocka_unit_test(test_concurrent_reviews),
	        cmocka_unit_test(test_patch_fallback),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
