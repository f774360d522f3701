/* The leader Lease object (webhook/lease.c): new, renewed, taken over,
 * released. */
#include "lease.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

static const char *spec_str(const json_t *lease, const char *key)
{
	return json_string_value(json_object_get(json_object_get(lease, "spec"), key));
}

static long long spec_int(const json_t *lease, const char *key)
{
	return json_integer_value(json_object_get(json_object_get(lease, "spec"), key));
}

static void test_body(void **state)
{
	json_t *fresh, *renewed, *taken, *released;

	(void)state;
	fresh = zw_lease_body("zerowire", "zw", NULL, "a", 15, "T1");
	assert_non_null(fresh);
	assert_string_equal(json_string_value(json_object_get(fresh, "kind")), "Lease");
	assert_string_equal(
	        json_string_value(json_object_get(json_object_get(fresh, "metadata"), "namespace")),
	        "zerowire");
	assert_string_equal(spec_str(fresh, "holderIdentity"), "a");
	assert_string_equal(spec_str(fresh, "acquireTime"), "T1");
	assert_int_equal(spec_int(fresh, "leaseDurationSeconds"), 15);
	assert_int_equal(spec_int(fresh, "leaseTransitions"), 0);

	/* Renewed by its holder: same acquireTime, no transition. */
	renewed = zw_lease_body("zerowire", "zw", fresh, "a", 15, "T2");
	assert_string_equal(spec_str(renewed, "acquireTime"), "T1");
	assert_string_equal(spec_str(renewed, "renewTime"), "T2");
	assert_int_equal(spec_int(renewed, "leaseTransitions"), 0);

	/* Taken over: a transition, a new acquireTime; old is not changed. */
	taken = zw_lease_body("zerowire", "zw", renewed, "b", 15, "T3");
	assert_string_equal(spec_str(taken, "holderIdentity"), "b");
	assert_string_equal(spec_str(taken, "acquireTime"), "T3");
	assert_int_equal(spec_int(taken, "leaseTransitions"), 1);
	assert_string_equal(spec_str(renewed, "holderIdentity"), "a");

	/* Released: no holder, not a transition. */
	released = zw_lease_body("zerowire", "zw", taken, "", 1, "T4");
	assert_string_equal(spec_str(released, "holderIdentity"), "");
	assert_int_equal(spec_int(released, "leaseTransitions"), 1);
	assert_int_equal(spec_int(released, "leaseDurationSeconds"), 1);

	json_decref(fresh);
	json_decref(renewed);
	json_decref(taken);
	json_decref(released);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_body),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
