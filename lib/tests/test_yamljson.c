/* Unit tests for lib/yamljson.c. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "yamljson.h"

static json_t *load_ok(const char *yaml)
{
	char err[256];
	json_t *docs = NULL;

	assert_int_equal(zw_yaml_load(yaml, strlen(yaml), &docs, err, sizeof(err)), 0);
	assert_non_null(docs);
	return docs;
}

static void assert_json_eq(json_t *got, const char *want_json)
{
	json_t *want = json_loads(want_json, JSON_DECODE_ANY, NULL);
	char *a, *b;

	assert_non_null(want);
	a = json_dumps(got, JSON_SORT_KEYS | JSON_COMPACT | JSON_ENCODE_ANY);
	b = json_dumps(want, JSON_SORT_KEYS | JSON_COMPACT | JSON_ENCODE_ANY);
	if (strcmp(a, b) != 0)
		fail_msg("got %s want %s", a, b);
	free(a);
	free(b);
	json_decref(want);
}

static void test_scalars_core_schema(void **state)
{
	(void)state;
	json_t *docs = load_ok("a: 1\nb: \"1\"\nc: true\nd: 'false'\ne: ~\nf:\ng: 1.5\n"
	                       "h: 0x1f\ni: 8080\nj: '8080'\nk: text, more\nl: -3\n"
	                       "m: 1e3\nn: .5x\n");
	assert_json_eq(json_array_get(docs, 0),
	               "{\"a\":1,\"b\":\"1\",\"c\":true,\"d\":\"false\",\"e\":null,\"f\":null,"
	               "\"g\":1.5,\"h\":31,\"i\":8080,\"j\":\"8080\",\"k\":\"text, more\","
	               "\"l\":-3,\"m\":1000.0,\"n\":\".5x\"}");
	json_decref(docs);
}

static void test_multi_document_and_empty(void **state)
{
	(void)state;
	json_t *docs = load_ok("---\nkind: A\n---\n---\n# only a comment\n---\nkind: B\n...\n");
	assert_json_eq(docs, "[{\"kind\":\"A\"},{\"kind\":\"B\"}]");
	json_decref(docs);
}

static void test_nested_and_block_scalars(void **state)
{
	(void)state;
	json_t *docs = load_ok("spec:\n  rules:\n  - host: a.example\n    paths: [/, /api]\n"
	                       "  headers: |\n    - name: x\n      value: y\n");
	assert_json_eq(json_array_get(docs, 0),
	               "{\"spec\":{\"rules\":[{\"host\":\"a.example\",\"paths\":[\"/\",\"/api\"]}],"
	               "\"headers\":\"- name: x\\n  value: y\\n\"}}");
	json_decref(docs);
}

static void test_anchors_aliases_merge(void **state)
{
	(void)state;
	json_t *docs = load_ok("base: &b {x: 1, y: 2}\ncopy: *b\nmerged:\n  <<: *b\n  y: 3\n"
	                       "s: &s hello\nt: *s\n");
	assert_json_eq(json_array_get(docs, 0),
	               "{\"base\":{\"x\":1,\"y\":2},\"copy\":{\"x\":1,\"y\":2},"
	               "\"merged\":{\"x\":1,\"y\":3},\"s\":\"hello\",\"t\":\"hello\"}");
	json_decref(docs);
}

static void test_errors_name_position(void **state)
{
	(void)state;
	char err[256];
	json_t *docs = (json_t *)1;
	const char *bad = "a: 1\nb: [1, 2\nc: 3\n";

	assert_int_equal(zw_yaml_load(bad, strlen(bad), &docs, err, sizeof(err)), -1);
	assert_null(docs);
	assert_non_null(strstr(err, "line "));

	const char *alias = "a: *nothing\n";
	assert_int_equal(zw_yaml_load(alias, strlen(alias), &docs, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "unknown alias"));

	const char *complex_key = "? [a, b]\n: 1\n";
	assert_int_equal(zw_yaml_load(complex_key, strlen(complex_key), &docs, err, sizeof(err)),
	                 -1);
	assert_non_null(strstr(err, "mapping keys must be scalars"));
}

static void test_depth_and_alias_bombs_are_bounded(void **state)
{
	(void)state;
	char err[256];
	json_t *docs = NULL;
	char deep[ZW_YAML_MAX_DEPTH * 2 + 8];
	size_t i;

	for (i = 0; i < ZW_YAML_MAX_DEPTH + 2; i++)
		deep[i] = '[';
	deep[i] = '\0';
	assert_int_equal(zw_yaml_load(deep, strlen(deep), &docs, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "too deep"));

	/* Billion laughs: every level doubles the previous one; expansion stops
	 * at the node budget with an error instead of exhausting memory. */
	char bomb[4096];
	size_t n = (size_t)snprintf(bomb, sizeof(bomb), "l0: &l0 [x, x]\n");
	for (int lvl = 1; lvl < 40; lvl++)
		n += (size_t)snprintf(bomb + n, sizeof(bomb) - n, "l%d: &l%d [*l%d, *l%d]\n", lvl,
		                      lvl, lvl - 1, lvl - 1);
	assert_int_equal(zw_yaml_load(bomb, n, &docs, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "too many aliases"));
}

static void test_load_file_errors(void **state)
{
	(void)state;
	char err[256];
	json_t *docs = NULL;

	assert_int_equal(zw_yaml_load_file("/nonexistent/zw.yaml", &docs, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "/nonexistent/zw.yaml"));
	assert_non_null(strstr(err, "No such file"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_scalars_core_schema),
	        cmocka_unit_test(test_multi_document_and_empty),
	        cmocka_unit_test(test_nested_and_block_scalars),
	        cmocka_unit_test(test_anchors_aliases_merge),
	        cmocka_unit_test(test_errors_name_position),
	        cmocka_unit_test(test_depth_and_alias_bombs_are_bounded),
	        cmocka_unit_test(test_load_file_errors),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
