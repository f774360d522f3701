/* ScaledObjects owned by HTTPScaledObjects: the generated spec, ownership,
 * opt-out and drift (webhook/ownedso.c). */
#include "ownedso.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "jsontest.h"

static void test_spec(void **state)
{
	json_t *hso =
	        jt_parse("{\"metadata\":{\"name\":\"h\",\"namespace\":\"web\"},"
	                 "\"spec\":{\"scaleTargetRef\":{\"name\":\"app\",\"kind\":\"Deployment\","
	                 "\"apiVersion\":\"apps/v1\",\"service\":\"app\",\"port\":80},"
	                 "\"replicas\":{\"min\":0,\"max\":5},\"scaledownPeriod\":120}}");
	json_t *bare =
	        jt_parse("{\"metadata\":{\"name\":\"b\"},\"spec\":{\"scaleTargetRef\":{\"name\":"
	                 "\"x\"},\"replicas\":{\"min\":\"1\"}}}");
	json_t *spec;

	(void)state;
	spec = zw_ownedso_spec(hso, "p.zerowire:9090");
	jt_assert_json(spec, "{\"scaleTargetRef\":{\"name\":\"app\",\"kind\":\"Deployment\","
	                     "\"apiVersion\":\"apps/v1\"},\"pollingInterval\":15,"
	                     "\"advanced\":{\"restoreToOriginalReplicaCount\":true},"
	                     "\"triggers\":[{\"type\":\"external-push\",\"metadata\":{"
	                     "\"scalerAddress\":\"p.zerowire:9090\",\"httpScaledObject\":\"h\"}}],"
	                     "\"minReplicaCount\":0,\"maxReplicaCount\":5,\"cooldownPeriod\":120}");
	json_decref(spec);
	/* Absent and mistyped fields are left to KEDA's defaults. */
	spec = zw_ownedso_spec(bare, "s:9090");
	jt_assert_json(spec, "{\"scaleTargetRef\":{\"name\":\"x\"},\"pollingInterval\":15,"
	                     "\"advanced\":{\"restoreToOriginalReplicaCount\":true},"
	                     "\"triggers\":[{\"type\":\"external-push\",\"metadata\":{"
	                     "\"scalerAddress\":\"s:9090\",\"httpScaledObject\":\"b\"}}]}");
	json_decref(spec);
	json_decref(hso);
	json_decref(bare);
}

static void test_owner_skip_drift(void **state)
{
	json_t *so =
	        jt_parse("{\"metadata\":{\"ownerReferences\":[{\"kind\":\"Deployment\","
	                 "\"apiVersion\":\"apps/v1\",\"uid\":\"d\"},{\"kind\":\"HTTPScaledObject\","
	                 "\"apiVersion\":\"http.keda.sh/v1alpha1\",\"uid\":\"u1\"}]}}");
	json_t *foreign =
	        jt_parse("{\"metadata\":{\"ownerReferences\":[{\"kind\":\"HTTPScaledObject\","
	                 "\"apiVersion\":\"other.io/v1\",\"uid\":\"u2\"}]}}");
	json_t *skip =
	        jt_parse("{\"metadata\":{\"annotations\":{\"" ZW_OWNEDSO_SKIP "\":\"true\"}}}");
	json_t *noskip =
	        jt_parse("{\"metadata\":{\"annotations\":{\"" ZW_OWNEDSO_SKIP "\":\"yes\"}}}");
	json_t *want = jt_parse("{\"a\":{\"b\":1},\"c\":[1]}");
	json_t *have = jt_parse("{\"a\":{\"b\":1,\"defaulted\":2},\"c\":[1],\"d\":0}");
	json_t *drift = jt_parse("{\"a\":{\"b\":2},\"c\":[1]}");
	const char *uid = "";

	(void)state;
	assert_int_equal(zw_ownedso_owner(so, &uid), 1);
	assert_string_equal(uid, "u1");
	assert_int_equal(zw_ownedso_owner(foreign, &uid), 0);
	assert_int_equal(zw_ownedso_skipped(skip), 1);
	assert_int_equal(zw_ownedso_skipped(noskip), 0);
	assert_int_equal(zw_ownedso_skipped(so), 0);
	assert_int_equal(zw_ownedso_subset_equal(want, have), 1);
	assert_int_equal(zw_ownedso_subset_equal(want, drift), 0);
	assert_int_equal(zw_ownedso_subset_equal(have, want), 0);
	json_decref(so);
	json_decref(foreign);
	json_decref(skip);
	json_decref(noskip);
	json_decref(want);
	json_decref(have);
	json_decref(drift);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_spec),
	        cmocka_unit_test(test_owner_skip_drift),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
