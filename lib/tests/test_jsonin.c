/* Unit tests for lib/jsonin.c: documents the fast parser takes come out
 * as jansson builds them (values, member order, duplicates); the rest are
 * left to jansson, whose answer and error text zw_json_load returns. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "jsonin.h"

/* text must be taken by the fast parser and equal jansson's value. */
static void taken_as_jansson(const char *text, size_t len)
{
	json_t *ours = zw_json_parse(text, len);
	json_t *theirs = json_loadb(text, len, 0, NULL);
	if (!ours)
		fail_msg("not taken: %.*s", (int)len, text);
	assert_non_null(theirs);
	char *a = json_dumps(ours, JSON_COMPACT), *b = json_dumps(theirs, JSON_COMPACT);
	assert_true(json_equal(ours, theirs));
	if (strcmp(a, b) != 0)
		fail_msg("ours %s\ntheirs %s", a, b);
	free(a);
	free(b);
	json_decref(ours);
	json_decref(theirs);
}

static void taken(const char *text)
{
	taken_as_jansson(text, strlen(text));
}

/* text must be left to jansson, and zw_json_load must answer as it does. */
static void left_to_jansson(const char *text)
{
	json_error_t e1, e2;
	size_t len = strlen(text);
	json_t *fast = zw_json_parse(text, len);
	if (fast)
		fail_msg("taken: %s", text);
	json_t *ours = zw_json_load(text, len, &e1);
	json_t *theirs = json_loadb(text, len, 0, &e2);
	assert_int_equal(!ours, !theirs);
	if (theirs)
		assert_true(json_equal(ours, theirs));
	else
		assert_string_equal(e1.text, e2.text);
	json_decref(ours);
	json_decref(theirs);
}

static void test_taken(void **state)
{
	(void)state;
	taken("{}");
	taken(" [ ] \n");
	taken("{\"b\":1,\"a\":[true,false,null,-7,0,-0,123456789012345678],\"c\":{}}");
	taken("{\"s\":\"q \\\" b \\\\ s \\/ \\b \\f \\n \\r "
	      "\\t\",\"u\":\"\\u00e9\\u2603\\ud83d\\ude00\"}");
	taken("{\"caf\xc3\xa9\":\"\xe2\x98\x83 \xf0\x9f\x98\x80\",\"\\u00e9\\\"k\":\"v\"}");
	/* A duplicate key keeps its first place and takes the last value. */
	taken("{\"a\":1,\"b\":2,\"a\":{\"x\":[3]}}");
	taken("[\"\x7f\",\"\",{\"\":\"\"}]\t\r\n");
}

static void test_long_escaped_strings(void **state)
{
	(void)state;
	/* Decoded strings grow their buffer as they go, keeping what is
	 * decoded: keys and values of up to thousands of escapes. */
	for (size_t n = 1; n <= 4096; n *= 2) {
		struct zw_buf t = {0};
		assert_int_equal(zw_buf_append(&t, "{\"k", 3, SIZE_MAX), 0);
		for (size_t i = 0; i < n; i++)
			assert_int_equal(zw_buf_append(&t, "\\\"x", 3, SIZE_MAX), 0);
		assert_int_equal(zw_buf_append(&t, "\":[\"", 4, SIZE_MAX), 0);
		for (size_t i = 0; i < n; i++)
			assert_int_equal(
			        zw_buf_appendf(&t, SIZE_MAX, "\\u00e9\\n%c", (char)('a' + i % 26)),
			        0);
		assert_int_equal(zw_buf_append(&t, "\",\"\\t\"]}", 8, SIZE_MAX), 0);
		taken_as_jansson(t.data, t.len);
		zw_buf_free(&t);
	}
}

static void test_left_to_jansson(void **state)
{
	(void)state;
	const char *texts[] = {
	        "[1.5]",
	        "[1e3]",
	        "[1E-3]",
	        "[1234567890123456789]",
	        "[99999999999999999999]",
	        "[01]",
	        "[-]",
	        "[1,]",
	        "{\"a\":1,}",
	        "{\"a\" 1}",
	        "{a:1}",
	        "\"top\"",
	        "42",
	        "",
	        "[1] x",
	        "[\"\\u0000\"]",
	        "{\"\\u0000\":1}",
	        "[\"\\ud800\"]",
	        "[\"\\udc00\"]",
	        "[\"\\ud800\\u0041\"]",
	        "[\"\\x\"]",
	        "[\"\\u12\"]",
	        "[\"a\nb\"]",
	        "[\"\xff\"]",
	        "{\"\xc0\xaf\":1}",
	        "[\"\xed\xa0\x80\"]",
	        "[tru]",
	        "[truex]",
	        "[nul]",
	        "[\"open",
	        "{\"a\":1",
	        "\xef\xbb\xbf{}",
	        "[1 2]",
	        "{\"a\":1 \"b\":2}",
	};
	for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++)
		left_to_jansson(texts[i]);
}

static void test_depth(void **state)
{
	(void)state;
	size_t n = ZW_JSONIN_MAX_DEPTH;
	char *text = malloc(2 * (n + 1) + 1);
	assert_non_null(text);
	memset(text, '[', n);
	memset(text + n, ']', n);
	text[2 * n] = '\0';
	taken_as_jansson(text, 2 * n);
	memset(text, '[', n + 1);
	memset(text + n + 1, ']', n + 1);
	text[2 * n + 2] = '\0';
	left_to_jansson(text);
	free(text);
}

static void test_embedded_nul_and_length(void **state)
{
	(void)state;
	/* Only len bytes are read: a document may be followed by anything. */
	taken_as_jansson("{\"a\":[1]}garbage", 9);
	assert_null(zw_json_parse("[\"a\0b\"]", 7));
	assert_null(zw_json_parse("[1]\0", 4));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_taken),
	        cmocka_unit_test(test_long_escaped_strings),
	        cmocka_unit_test(test_left_to_jansson),
	        cmocka_unit_test(test_depth),
	        cmocka_unit_test(test_embedded_nul_and_length),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
