/* JSON helpers of the webhook's cmocka tests: parse a literal, compare a
 * value with a literal. Include after <cmocka.h>. */
#ifndef ZW_TEST_JSONTEST_H
#define ZW_TEST_JSONTEST_H

#include <jansson.h>

/* Returns the parsed text (a new reference); fails the test on bad JSON. */
static inline json_t *jt_parse(const char *text)
{
	json_error_t e;
	json_t *v = json_loads(text, 0, &e);
	if (!v)
		fail_msg("bad test JSON at %d: %s", e.position, e.text);
	return v;
}

/* Fails the test, showing both, unless got (borrowed) equals want_text. */
static inline void jt_assert_json(const json_t *got, const char *want_text)
{
	json_t *want = jt_parse(want_text);
	if (!json_equal(got, want)) {
		char *g = json_dumps(got, JSON_SORT_KEYS | JSON_COMPACT);
		fail_msg("got %s\nwant %s", g ? g : "(null)", want_text);
	}
	json_decref(want);
}

#endif
