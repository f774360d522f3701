/* Unit tests for lib/jsonout.c: output equal to jansson's compact dump for
 * every kind of value, escapes, round trips, limits. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "jsonout.h"

static void same_as_jansson(const char *text)
{
	json_t *v = json_loads(text, JSON_DECODE_ANY, NULL);
	char *ours, *theirs;
	size_t n;

	assert_non_null(v);
	ours = zw_json_dump(v, &n);
	theirs = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
	assert_non_null(ours);
	if (strcmp(ours, theirs) != 0)
		fail_msg("ours %s\ntheirs %s", ours, theirs);
	assert_int_equal(n, strlen(ours));
	free(ours);
	free(theirs);
	json_decref(v);
}

static void test_matches_jansson(void **state)
{
	(void)state;
	same_as_jansson("{\"b\":1,\"a\":[true,false,null,-7,0,9223372036854775807]}");
	same_as_jansson(
	        "{\"s\":\"quote \\\" backslash \\\\ nl \\n tab \\t cr \\r bs \\b ff \\f\"}");
	same_as_jansson("[\"\\u0001\\u001f\", \"caf\\u00e9 \\u2603 \\ud83d\\ude00\", \"\"]");
	same_as_jansson("[1.5, 0.1, 1e300, -2.5e-300, 3.0, 100.0, 1e-7, 1.25e21, -0.0]");
	same_as_jansson("{\"nested\":{\"deep\":{\"deeper\":[[],{},[[]]]}},\"k\":\"/a/b~1c\"}");
	same_as_jansson("\"a string alone\"");
	same_as_jansson("42");
}

static void test_round_trip_of_embedded_json(void **state)
{
	(void)state;
	/* The record annotation is JSON inside a JSON string. */
	json_t *inner = json_pack("[{s:s,s:{s:s,s:i}}]", "path", "/spec/rules/0/backendRefs/0",
	                          "original", "name", "svc \"quoted\"", "port", 80);
	char *inner_s = zw_json_dump(inner, NULL);
	json_t *outer = json_pack("{s:s}", "zerowire.io/original", inner_s);
	char *outer_s = zw_json_dump(outer, NULL);
	json_t *back = json_loads(outer_s, 0, NULL);
	json_t *inner_back = json_loads(
	        json_string_value(json_object_get(back, "zerowire.io/original")), 0, NULL);

	assert_true(json_equal(inner, inner_back));
	free(inner_s);
	free(outer_s);
	json_decref(inner);
	json_decref(outer);
	json_decref(back);
	json_decref(inner_back);
}

static void test_limits(void **state)
{
	(void)state;
	json_t *root = json_array(), *cur = root;

	for (int i = 0; i < ZW_JSONOUT_MAX_DEPTH + 5; i++) {
		json_t *next = json_array();
		json_array_append_new(cur, next);
		cur = next;
	}
	assert_null(zw_json_dump(root, NULL));
	json_decref(root);
	assert_null(zw_json_dump(NULL, NULL));
}

static void test_append_string(void **state)
{
	(void)state;
	struct zw_buf b = {0};

	assert_int_equal(zw_json_append_string(&b, "uid-\"1\"", 7), 0);
	assert_string_equal(b.data, "\"uid-\\\"1\\\"\"");
	assert_int_equal(zw_json_append_string(&b, "x", 1), 0);
	assert_string_equal(b.data, "\"uid-\\\"1\\\"\"\"x\"");
	assert_int_equal(b.len, strlen(b.data));
	zw_buf_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_matches_jansson),
	        cmocka_unit_test(test_round_trip_of_embedded_json),
	        cmocka_unit_test(test_limits),
	        cmocka_unit_test(test_append_string),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
