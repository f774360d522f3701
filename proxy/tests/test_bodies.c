/* Unit tests for proxy/bodies.c: the ConfigMap store, resolution into a
 * target's static responses and the per-request body choice. */
#include "bodies.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

static json_t *cm(const char *name, bool labelled, const char *k1, const char *v1)
{
	json_t *o = json_pack("{s:s, s:s, s:{s:s, s:s}, s:{s:s, s:i}}", "apiVersion", "v1", "kind",
	                      "ConfigMap", "metadata", "name", name, "namespace", "ns", "data", k1,
	                      v1, "number", 7);
	if (labelled)
		json_object_set_new(json_object_get(o, "metadata"), "labels",
		                    json_pack("{s:s}", ZW_RESPONSE_BODY_LABEL, "true"));
	return o;
}

static void target_with(struct zw_target *t, const char *cm_name, const char *key, bool waiting)
{
	memset(t, 0, sizeof(*t));
	t->namespace = strdup("ns");
	t->name = strdup("app");
	t->has_placeholder = true;
	t->placeholder.status = 503;
	t->placeholder.body_configmap = strdup(cm_name);
	t->placeholder.body_configmap_key = key ? strdup(key) : NULL;
	t->placeholder.waiting_page = waiting;
}

static void select_path(const struct zw_target *t, const char *path, struct zw_body_choice *c)
{
	zw_bodies_select(&t->placeholder, path, strlen(path), c);
}

static void test_store(void **state)
{
	(void)state;
	struct zw_bodies *b;
	assert_int_equal(zw_bodies_new(&b), 0);
	json_t *a = cm("a", true, "index.html", "<p>a</p>");
	assert_int_equal(zw_bodies_apply(b, a, false), 1);
	assert_int_equal(zw_bodies_apply(b, a, false), 0); /* no change */
	json_object_set_new(json_object_get(a, "data"), "x.css", json_string("x"));
	assert_int_equal(zw_bodies_apply(b, a, false), 1);
	assert_int_equal(zw_bodies_apply(b, a, true), 1);
	assert_int_equal(zw_bodies_apply(b, a, true), 0);
	json_t *anon = json_pack("{s:{}}", "metadata");
	assert_int_equal(zw_bodies_apply(b, anon, false), 0);
	json_decref(anon);
	json_decref(a);
	zw_bodies_free(b);
	zw_bodies_free(NULL);
}

static void test_resolve_and_select(void **state)
{
	(void)state;
	struct zw_bodies *b;
	struct zw_target t, copy;
	struct zw_body_choice c;
	assert_int_equal(zw_bodies_new(&b), 0);
	json_t *a = cm("site", true, "index.html", "<p>home</p>");
	json_object_set_new(json_object_get(a, "data"), "app.js", json_string("go()"));
	assert_int_equal(zw_bodies_apply(b, a, false), 1);

	target_with(&t, "site", NULL, false);
	assert_true(zw_target_needs_bodies(&t));
	assert_int_equal(zw_bodies_resolve(b, &t), 0);
	assert_int_equal(t.placeholder.configmap_state, ZW_CM_FOUND);
	assert_int_equal(t.placeholder.n_files, 2); /* the number is not a string */
	assert_string_equal(t.placeholder.file_keys[0], "app.js");
	/* copies keep the resolved files */
	assert_int_equal(zw_target_copy(&copy, &t), 0);
	select_path(&copy, "/", &c);
	assert_int_equal(c.status, 0);
	assert_memory_equal(c.body, "<p>home</p>", c.len);
	assert_string_equal(c.ctype, "text/html; charset=utf-8");
	select_path(&copy, "/app.js?v=2", &c);
	assert_memory_equal(c.body, "go()", c.len);
	assert_string_equal(c.ctype, "text/javascript; charset=utf-8");
	const char *bad[] = {"/nope.html", "/a/app.js", "/..", "/%2e%2e", "/app.js/"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		select_path(&copy, bad[i], &c);
		assert_int_equal(c.status, 404);
	}
	select_path(&copy, "", &c); /* no path: the index */
	assert_memory_equal(c.body, "<p>home</p>", c.len);
	zw_target_free(&copy);
	zw_target_free(&t);

	/* unlabelled for bodyFromConfigMap: missing -> 500; Kedify: no label needed */
	json_t *k = cm("wait", false, ZW_WAITING_PAGE_CONFIGMAP_KEY, "<p>wait</p>");
	json_object_set_new(json_object_get(k, "data"), ZW_WAITING_PAGE_STATUS_KEY,
	                    json_string("200"));
	json_object_set_new(json_object_get(k, "data"), ZW_WAITING_PAGE_RETRY_AFTER_KEY,
	                    json_string("7"));
	assert_int_equal(zw_bodies_apply(b, k, false), 1);
	target_with(&t, "wait", "coldStartWaitingPageBody", false);
	assert_int_equal(zw_bodies_resolve(b, &t), 0);
	assert_int_equal(t.placeholder.configmap_state, ZW_CM_MISSING);
	select_path(&t, "/", &c);
	assert_int_equal(c.status, 500);
	zw_target_free(&t);
	target_with(&t, "wait", ZW_WAITING_PAGE_CONFIGMAP_KEY, true);
	assert_int_equal(zw_bodies_resolve(b, &t), 0);
	assert_int_equal(t.placeholder.status, 200);
	assert_int_equal(t.placeholder.n_headers, 1);
	assert_string_equal(t.placeholder.header_values[0], "7");
	select_path(&t, "/anything", &c);
	assert_int_equal(c.status, 0);
	assert_memory_equal(c.body, "<p>wait</p>", c.len);
	assert_null(c.ctype);
	zw_target_free(&t);
	/* forgotten: Kedify falls back to the default page */
	zw_bodies_forget(b, "ns", "wait");
	target_with(&t, "wait", ZW_WAITING_PAGE_CONFIGMAP_KEY, true);
	assert_int_equal(zw_bodies_resolve(b, &t), 0);
	select_path(&t, "/", &c);
	assert_int_equal(c.status, 0);
	assert_string_equal(c.body, ZW_WAITING_PAGE_BODY);
	zw_target_free(&t);

	json_decref(a);
	json_decref(k);
	zw_bodies_free(b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_store),
	        cmocka_unit_test(test_resolve_and_select),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
