/* JSON Patch diff and apply (webhook/jsonpatch.c). */
#include "jsonpatch.h"
#include "jsonout.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

static json_t *parse(const char *s)
{
	json_error_t e;
	json_t *v = json_loads(s, JSON_DECODE_ANY, &e);
	if (!v)
		fail_msg("bad test JSON %s: %s", s, e.text);
	return v;
}

/* diff(a, b) applied to a gives b; returns the patch for inspection. */
static json_t *roundtrip(const char *a, const char *b)
{
	json_t *from = parse(a), *to = parse(b), *patch = json_array();
	char err[128];
	assert_int_equal(zw_jsonpatch_diff(from, to, "", patch), 0);
	json_t *doc = json_deep_copy(from);
	if (zw_jsonpatch_apply(&doc, patch, err, sizeof(err)))
		fail_msg("patch does not apply: %s", err);
	if (!json_equal(doc, to)) {
		char *p = json_dumps(patch, 0), *d = json_dumps(doc, 0);
		fail_msg("diff of %s -> %s gave %s, applied: %s", a, b, p, d);
	}
	json_decref(doc);
	json_decref(from);
	json_decref(to);
	return patch;
}

static void test_pointer_escape(void **state)
{
	(void)state;
	char *p = zw_jsonpointer_append("/metadata/annotations", "zerowire.io/original");
	assert_string_equal(p, "/metadata/annotations/zerowire.io~1original");
	free(p);
	p = zw_jsonpointer_append("", "a~b/c");
	assert_string_equal(p, "/a~0b~1c");
	free(p);
	json_t *doc = parse("{\"a~b/c\": 1, \"m\": {\"x/y\": [10, 20]}}");
	assert_int_equal(json_integer_value(zw_jsonpointer_get(doc, "/a~0b~1c")), 1);
	assert_int_equal(json_integer_value(zw_jsonpointer_get(doc, "/m/x~1y/1")), 20);
	assert_ptr_equal(zw_jsonpointer_get(doc, ""), doc);
	assert_null(zw_jsonpointer_get(doc, "/m/x~1y/01"));
	assert_null(zw_jsonpointer_get(doc, "/m/x~1y/2"));
	assert_null(zw_jsonpointer_get(doc, "/m/x~2y"));
	assert_null(zw_jsonpointer_get(doc, "m"));
	json_decref(doc);
}

static void test_diff_minimal(void **state)
{
	(void)state;
	json_t *p =
	        roundtrip("{\"a\":1,\"b\":{\"c\":2,\"d\":3}}", "{\"a\":1,\"b\":{\"c\":5,\"d\":3}}");
	assert_int_equal(json_array_size(p), 1);
	json_t *op = json_array_get(p, 0);
	assert_string_equal(json_string_value(json_object_get(op, "op")), "replace");
	assert_string_equal(json_string_value(json_object_get(op, "path")), "/b/c");
	json_decref(p);

	p = roundtrip("{\"a\":1}", "{\"a\":1}");
	assert_int_equal(json_array_size(p), 0);
	json_decref(p);

	/* Annotation map created, key with a slash escaped. */
	p = roundtrip("{\"metadata\":{\"name\":\"x\"}}",
	              "{\"metadata\":{\"name\":\"x\",\"annotations\":{\"zerowire.io/"
	              "original\":\"[]\"}}}");
	assert_int_equal(json_array_size(p), 1);
	assert_string_equal(json_string_value(json_object_get(json_array_get(p, 0), "path")),
	                    "/metadata/annotations");
	json_decref(p);
	p = roundtrip(
	        "{\"metadata\":{\"annotations\":{\"a\":\"b\"}}}",
	        "{\"metadata\":{\"annotations\":{\"a\":\"b\",\"zerowire.io/original\":\"[]\"}}}");
	assert_string_equal(json_string_value(json_object_get(json_array_get(p, 0), "path")),
	                    "/metadata/annotations/zerowire.io~1original");
	json_decref(p);
}

static void test_diff_shapes(void **state)
{
	(void)state;
	const char *pairs[][2] = {
	        {"[1,2,3]", "[1,2]"},
	        {"[1,2]", "[1,2,3,4]"},
	        {"[1,2,3]", "[]"},
	        {"{\"a\":[{\"x\":1},{\"y\":2}]}", "{\"a\":[{\"x\":1,\"z\":0},{\"y\":3}]}"},
	        {"{\"a\":{\"b\":1}}", "{\"a\":[1]}"},
	        {"{\"a\":null}", "{\"a\":false}"},
	        {"{\"a\":1,\"b\":2}", "{}"},
	        {"{}", "{\"a\":{\"b\":{\"c\":[1,{\"d\":null}]}}}"},
	        {"{\"~\":1,\"/\":2}", "{\"~\":2}"},
	        {"{\"a\":\"x\"}", "{\"a\":\"x\\u00e9y\"}"},
	        {"{\"n\":1}", "{\"n\":1.5}"},
	};
	for (size_t i = 0; i < sizeof(pairs) / sizeof(pairs[0]); i++)
		json_decref(roundtrip(pairs[i][0], pairs[i][1]));
}

static void test_apply_ops(void **state)
{
	(void)state;
	char err[128];
	json_t *doc = parse("{\"a\":[1,2],\"b\":{\"c\":1}}");
	json_t *patch = parse("[{\"op\":\"add\",\"path\":\"/a/-\",\"value\":3},"
	                      "{\"op\":\"add\",\"path\":\"/a/0\",\"value\":0},"
	                      "{\"op\":\"test\",\"path\":\"/a\",\"value\":[0,1,2,3]},"
	                      "{\"op\":\"move\",\"from\":\"/b/c\",\"path\":\"/d\"},"
	                      "{\"op\":\"copy\",\"from\":\"/d\",\"path\":\"/b/e\"},"
	                      "{\"op\":\"remove\",\"path\":\"/a/1\"},"
	                      "{\"op\":\"replace\",\"path\":\"\",\"value\":{\"all\":[\"new\"]}},"
	                      "{\"op\":\"add\",\"path\":\"/all/1\",\"value\":\"x\"}]");
	assert_int_equal(zw_jsonpatch_apply(&doc, patch, err, sizeof(err)), 0);
	json_t *want = parse("{\"all\":[\"new\",\"x\"]}");
	assert_true(json_equal(doc, want));
	json_decref(want);
	json_decref(patch);
	json_decref(doc);

	const char *bad[] = {
	        "[{\"op\":\"replace\",\"path\":\"/missing\",\"value\":1}]",
	        "[{\"op\":\"remove\",\"path\":\"/a/5\"}]",
	        "[{\"op\":\"add\",\"path\":\"/a/3\",\"value\":1}]",
	        "[{\"op\":\"add\",\"path\":\"/x/y\",\"value\":1}]",
	        "[{\"op\":\"test\",\"path\":\"/a\",\"value\":[2]}]",
	        "[{\"op\":\"add\",\"path\":\"a\",\"value\":1}]",
	        "[{\"op\":\"frobnicate\",\"path\":\"/a\"}]",
	        "[{\"path\":\"/a\"}]",
	        "[{\"op\":\"add\",\"path\":\"/a/0\"}]",
	        "[{\"op\":\"move\",\"from\":\"/nope\",\"path\":\"/a\"}]",
	        "{\"op\":\"add\"}",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		doc = parse("{\"a\":[1,2]}");
		patch = parse(bad[i]);
		err[0] = '\0';
		if (zw_jsonpatch_apply(&doc, patch, err, sizeof(err)) == 0)
			fail_msg("bad patch %s applied", bad[i]);
		assert_true(err[0] != '\0');
		json_decref(patch);
		json_decref(doc);
	}
}

static void test_too_deep(void **state)
{
	(void)state;
	json_t *a = json_object(), *b = json_object(), *ca = a, *cb = b;
	for (int i = 0; i < ZW_JSONPATCH_MAX_DEPTH + 10; i++) {
		json_t *na = json_object(), *nb = json_object();
		json_object_set_new(ca, "k", na);
		json_object_set_new(cb, "k", nb);
		ca = na;
		cb = nb;
	}
	json_object_set_new(cb, "leaf", json_true());
	/* Below the depth limit the differing subtree is replaced whole. */
	json_t *patch = json_array();
	char err[128];
	assert_int_equal(zw_jsonpatch_diff(a, b, "", patch), 0);
	assert_int_equal(json_array_size(patch), 1);
	json_t *op = json_array_get(patch, 0);
	assert_string_equal(json_string_value(json_object_get(op, "op")), "replace");
	assert_int_equal(strlen(json_string_value(json_object_get(op, "path"))),
	                 2 * (ZW_JSONPATCH_MAX_DEPTH + 1));
	json_t *doc = json_deep_copy(a);
	assert_int_equal(zw_jsonpatch_apply(&doc, patch, err, sizeof(err)), 0);
	assert_true(json_equal(doc, b));
	json_decref(doc);
	json_decref(patch);

	/* Keys whose pointers would be too long: the parent is replaced. */
	json_t *c = json_object(), *d = json_object();
	char *key = malloc(ZW_JSONPATCH_MAX_PATH + 10);
	memset(key, '/', ZW_JSONPATCH_MAX_PATH + 9);
	key[ZW_JSONPATCH_MAX_PATH + 9] = '\0';
	json_object_set_new(c, "m", json_pack("{s:i}", key, 1));
	json_object_set_new(d, "m", json_pack("{s:i}", key, 2));
	patch = json_array();
	assert_int_equal(zw_jsonpatch_diff(c, d, "", patch), 0);
	assert_string_equal(json_string_value(json_object_get(json_array_get(patch, 0), "path")),
	                    "/m");
	doc = json_deep_copy(c);
	assert_int_equal(zw_jsonpatch_apply(&doc, patch, err, sizeof(err)), 0);
	assert_true(json_equal(doc, d));
	free(key);
	json_decref(doc);
	json_decref(patch);
	json_decref(c);
	json_decref(d);
	json_decref(a);
	json_decref(b);
}

/* Changes made in place and logged give the whole-document diff, in
 * pointer order, and undo puts the document back byte for byte. */
static void test_log_diff_undo(void **state)
{
	(void)state;
	const char *text = "{\"metadata\": {\"name\": \"r\"}, \"spec\": {\"rules\": ["
	                   "{\"refs\": [{\"name\": \"a\", \"port\": 1}]},"
	                   "{\"refs\": [{\"name\": \"b\"}, {\"name\": \"c\", \"x/y\": {}}]}]}}";
	json_t *doc = parse(text), *orig = parse(text), *patch = json_array(), *want = json_array();
	struct zw_jsonpatch_log log = {0};
	char *before = json_dumps(doc, JSON_COMPACT);
	/* Touched out of document order; the first object touched twice. */
	json_t *r11 = zw_jsonpointer_get(doc, "/spec/rules/1/refs/1");
	json_t *r00 = zw_jsonpointer_get(doc, "/spec/rules/0/refs/0");
	json_t *meta = zw_jsonpointer_get(doc, "/metadata");
	assert_int_equal(zw_jsonpatch_log_touch(&log, r11, "/spec/rules/1/refs/1"), 0);
	json_object_set_new(r11, "name", json_string("proxy"));
	json_object_del(r11, "x/y");
	assert_int_equal(zw_jsonpatch_log_touch(&log, meta, "/metadata"), 0);
	json_object_set_new(meta, "annotations", json_pack("{s:s}", "k", "v"));
	assert_int_equal(zw_jsonpatch_log_touch(&log, r00, "/spec/rules/0/refs/0"), 0);
	json_object_set_new(r00, "namespace", json_string("zw"));
	assert_int_equal(zw_jsonpatch_log_touch(&log, r11, "/spec/rules/1/refs/1"), 0);
	json_object_set_new(r11, "port", json_integer(8080));
	assert_int_equal(log.n, 3);
	assert_int_equal(zw_jsonpatch_log_diff(&log, patch), 0);
	assert_int_equal(zw_jsonpatch_diff(orig, doc, "", want), 0);
	char *got = json_dumps(patch, JSON_COMPACT), *exp = json_dumps(want, JSON_COMPACT);
	assert_string_equal(got, exp);
	assert_string_equal(json_string_value(json_object_get(json_array_get(patch, 0), "path")),
	                    "/metadata/annotations");
	/* Nothing logged: no operations. */
	struct zw_jsonpatch_log none = {0};
	json_t *empty = json_array();
	assert_int_equal(zw_jsonpatch_log_diff(&none, empty), 0);
	assert_int_equal(json_array_size(empty), 0);
	assert_int_equal(zw_jsonpatch_log_undo(&log), 0);
	assert_int_equal(log.n, 0);
	char *after = json_dumps(doc, JSON_COMPACT);
	assert_string_equal(after, before);
	free(got);
	free(exp);
	free(before);
	free(after);
	free(log.v);
	json_decref(empty);
	json_decref(patch);
	json_decref(want);
	json_decref(orig);
	json_decref(doc);
}

/* An object logged below a member another logged object replaced: the
 * log cannot say what changed (answer 1, patch untouched); undo still
 * restores the document. */
static void test_log_detached(void **state)
{
	(void)state;
	const char *text = "{\"spec\": {\"a\": {\"b\": {\"c\": 1}}, \"d\": 2}}";
	json_t *doc = parse(text), *orig = parse(text), *patch = json_array();
	struct zw_jsonpatch_log log = {0};
	json_t *a = zw_jsonpointer_get(doc, "/spec/a"), *b = zw_jsonpointer_get(doc, "/spec/a/b");
	assert_int_equal(zw_jsonpatch_log_touch(&log, b, "/spec/a/b"), 0);
	json_object_set_new(b, "c", json_integer(2));
	assert_int_equal(zw_jsonpatch_log_touch(&log, a, "/spec/a"), 0);
	json_object_set_new(a, "b", json_pack("{s:i}", "c", 3));
	json_array_append_new(patch, json_string("kept"));
	assert_int_equal(zw_jsonpatch_log_diff(&log, patch), 1);
	assert_int_equal(json_array_size(patch), 1);
	/* A sibling member changed above a logged object is fine. */
	assert_int_equal(zw_jsonpatch_log_undo(&log), 0);
	assert_true(json_equal(doc, orig));
	json_t *spec = zw_jsonpointer_get(doc, "/spec");
	b = zw_jsonpointer_get(doc, "/spec/a/b");
	assert_int_equal(zw_jsonpatch_log_touch(&log, spec, "/spec"), 0);
	json_object_set_new(spec, "d", json_integer(5));
	assert_int_equal(zw_jsonpatch_log_touch(&log, b, "/spec/a/b"), 0);
	json_object_set_new(b, "c", json_integer(7));
	json_array_clear(patch);
	assert_int_equal(zw_jsonpatch_log_diff(&log, patch), 0);
	assert_int_equal(json_array_size(patch), 2);
	json_t *copy = json_deep_copy(orig);
	char err[128];
	assert_int_equal(zw_jsonpatch_apply(&copy, patch, err, sizeof(err)), 0);
	assert_true(json_equal(copy, doc));
	assert_int_equal(zw_jsonpatch_log_touch(&log, patch, "/x"), -1);
	zw_jsonpatch_log_clear(&log);
	free(log.v);
	json_decref(copy);
	json_decref(patch);
	json_decref(orig);
	json_decref(doc);
}

/* Takes t's text and compares it with zw_json_dump of the array. */
static void text_is_dump(struct zw_jsonpatch_text *t, const json_t *patch)
{
	size_t n = t->n, len;
	char *text = zw_jsonpatch_text_take(t, &len), *dump = zw_json_dump(patch, NULL);
	assert_non_null(text);
	assert_int_equal(n, json_array_size(patch));
	assert_int_equal(len, strlen(text));
	if (strcmp(text, dump) != 0)
		fail_msg("text %s\ndump %s", text, dump);
	free(text);
	free(dump);
}

/* The patch written as text is the dump of the one built as an array:
 * every shape, escapes in pointers and values, several diffs appended,
 * a failed one leaving the text as it was, the log's diff. */
static void test_text_matches_array(void **state)
{
	(void)state;
	static const char *const pairs[][2] = {
	        {"{\"a\":1,\"b\":[1,2,3],\"c\":{\"d\":\"x\"}}",
	         "{\"a\":2,\"b\":[1],\"c\":{\"e\":null},\"f\":[true,{}]}"},
	        {"{\"x/y\":{\"~k\":\"q\\\"\\u00e9\"}}", "{\"x/y\":{\"~k\":\"\\n\\u2603\"}}"},
	        {"[1,[2,[3]]]", "[1,[2,[4],5],6]"},
	        {"{\"same\":1}", "{\"same\":1}"},
	        {"{\"a\":1}", "[\"whole\"]"},
	};
	struct zw_jsonpatch_text all = {0};
	json_t *all_patch = json_array();
	for (size_t i = 0; i < sizeof(pairs) / sizeof(pairs[0]); i++) {
		json_t *a = parse(pairs[i][0]), *b = parse(pairs[i][1]), *patch = json_array();
		struct zw_jsonpatch_text t = {0};
		assert_int_equal(zw_jsonpatch_diff(a, b, "", patch), 0);
		assert_int_equal(zw_jsonpatch_diff_text(a, b, "", &t), 0);
		text_is_dump(&t, patch);
		assert_int_equal(zw_jsonpatch_diff(a, b, "/p~1q", all_patch), 0);
		assert_int_equal(zw_jsonpatch_diff_text(a, b, "/p~1q", &all), 0);
		json_decref(patch);
		json_decref(a);
		json_decref(b);
	}
	/* A prefix too long: -1, the text unchanged. */
	char *long_prefix = malloc(ZW_JSONPATCH_MAX_PATH + 2);
	memset(long_prefix, 'p', ZW_JSONPATCH_MAX_PATH + 1);
	long_prefix[ZW_JSONPATCH_MAX_PATH + 1] = '\0';
	json_t *one = parse("[1]"), *two = parse("[2]");
	size_t len = all.ops.len, n = all.n;
	assert_int_equal(zw_jsonpatch_diff_text(one, two, long_prefix, &all), -1);
	assert_int_equal(all.ops.len, len);
	assert_int_equal(all.n, n);
	text_is_dump(&all, all_patch);
	/* Truncated back to nothing, then taken: an empty patch. */
	assert_int_equal(zw_jsonpatch_diff_text(one, two, "", &all), 0);
	zw_jsonpatch_text_truncate(&all, 0, 0);
	char *empty = zw_jsonpatch_text_take(&all, NULL);
	assert_string_equal(empty, "[]");
	free(empty);
	free(long_prefix);
	json_decref(one);
	json_decref(two);
	json_decref(all_patch);

	/* The log's diff, both ways, on the same changes. */
	const char *text =
	        "{\"metadata\":{\"name\":\"r\"},\"spec\":{\"rules\":["
	        "{\"refs\":[{\"name\":\"a\",\"port\":1}]},{\"refs\":[{\"name\":\"b\"}]}]}}";
	json_t *doc = parse(text), *patch = json_array();
	struct zw_jsonpatch_log log = {0};
	struct zw_jsonpatch_text t = {0};
	json_t *r10 = zw_jsonpointer_get(doc, "/spec/rules/1/refs/0");
	json_t *meta = zw_jsonpointer_get(doc, "/metadata");
	assert_int_equal(zw_jsonpatch_log_touch(&log, r10, "/spec/rules/1/refs/0"), 0);
	json_object_set_new(r10, "name", json_string("proxy \"1\""));
	json_object_set_new(r10, "namespace", json_string("zw"));
	assert_int_equal(zw_jsonpatch_log_touch(&log, meta, "/metadata"), 0);
	json_object_set_new(meta, "annotations", json_pack("{s:s}", "k", "[{\"v\":1}]"));
	assert_int_equal(zw_jsonpatch_log_diff(&log, patch), 0);
	assert_int_equal(zw_jsonpatch_log_diff_text(&log, &t), 0);
	text_is_dump(&t, patch);
	zw_jsonpatch_log_clear(&log);
	free(log.v);
	json_decref(patch);
	json_decref(doc);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_pointer_escape), cmocka_unit_test(test_diff_minimal),
	        cmocka_unit_test(test_diff_shapes),    cmocka_unit_test(test_apply_ops),
	        cmocka_unit_test(test_too_deep),       cmocka_unit_test(test_log_diff_undo),
	        cmocka_unit_test(test_log_detached),   cmocka_unit_test(test_text_matches_array),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
