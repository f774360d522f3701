/* Kubernetes object accessors (lib/kobj.c). */
#include "kobj.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

static void test_accessors(void **state)
{
	json_error_t e;
	json_t *o = json_loads("{\"kind\":\"Service\",\"n\":3,\"metadata\":{\"name\":\"a\","
	                       "\"labels\":{\"l\":\"x\",\"i\":1},\"annotations\":{\"z\":\"y\"}}}",
	                       0, &e);

	(void)state;
	assert_non_null(o);
	assert_string_equal(zw_kobj_str(o, "kind"), "Service");
	assert_string_equal(zw_kobj_str(o, "n"), ""); /* not a string */
	assert_string_equal(zw_kobj_str(o, "none"), "");
	assert_string_equal(zw_kobj_str(NULL, "kind"), "");
	assert_string_equal(zw_kobj_meta(o, "name"), "a");
	assert_string_equal(zw_kobj_meta(o, "namespace"), "");
	assert_string_equal(zw_kobj_label(o, "l"), "x");
	assert_string_equal(zw_kobj_label(o, "i"), "");
	assert_string_equal(zw_kobj_annotation(o, "z"), "y");
	assert_string_equal(zw_kobj_annotation(o, "l"), "");
	assert_string_equal(zw_kobj_meta(json_object_get(o, "kind"), "name"), "");
	json_decref(o);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_accessors),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
