/* Unit tests for lib/jsonout.c: output equal to jansson's compact dump for
 * every kind of value, escapes at every offset, round trips, limits. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "jsonout.h"

/* Compares one value with jansson's dump of it; takes v. */
static void value_same_as_jansson(json_t *v)
{
	char *ours, *theirs;
	size_t n;

	assert_non_null(v);
	ours = zw_json_dump(v, &n);
	theirs = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
	assert_non_null(ours);
	assert_non_null(theirs);
	if (strcmp(ours, theirs) != 0)
		fail_msg("ours %s\ntheirs %s", ours, theirs);
	assert_int_equal(n, strlen(ours));
	free(ours);
	free(theirs);
	json_decref(v);
}

static void same_as_jansson(const char *text)
{
	value_same_as_jansson(json_loads(text, JSON_DECODE_ANY, NULL));
}

static void test_matches_jansson(void **state)
{
	(void)state;
	same_as_jansson("{\"b\":1,\"a\":[true,false,null,-7,0,9223372036854775807]}");
	same_as_jansson("[-9223372036854775808,-1,10,-10,8080,1000000000000000000]");
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

static void test_every_ascii_byte_at_every_offset(void **state)
{
	(void)state;
	/* Strings are copied 8 bytes at a time where no byte needs escaping:
	 * each character, at each place in and around a word, alone and next
	 * to UTF-8 multibyte text. */
	for (int c = 1; c < 128; c++) {
		for (size_t at = 0; at < 19; at++) {
			char s[40];
			memset(s, 'a', 19);
			s[at] = (char)c;
			value_same_as_jansson(json_stringn(s, 19));
			memcpy(s + 19, "\xc3\xa9\xe2\x98\x83", 5);
			value_same_as_jansson(json_stringn(s + at, 24 - at));
		}
	}
}

static void test_append_value(void **state)
{
	(void)state;
	struct zw_buf b = {0};
	json_t *v = json_pack("{s:[i,s]}", "k", 1, "two \"2\"");

	assert_int_equal(zw_buf_append(&b, "x=", 2, SIZE_MAX), 0);
	assert_int_equal(zw_json_append(&b, v), 0);
	assert_string_equal(b.data, "x={\"k\":[1,\"two \\\"2\\\"\"]}");
	assert_int_equal(b.len, strlen(b.data));
	assert_int_equal(zw_json_append(&b, NULL), -1);
	zw_buf_free(&b);
	json_decref(v);
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
	        cmocka_unit_test(test_every_ascii_byte_at_every_offset),
	        cmocka_unit_test(test_append_value),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
