/* Unit tests for lib/jsonarena.c: jansson values made inside an arena come
 * from the thread's block and cost nothing to free; values made before it,
 * on other threads or too large for the block come from malloc and are
 * freed (the SAN build's leak check fails otherwise); a block is reused by
 * the next arena and freed when its thread exits; under AddressSanitizer a
 * freed value and the block after the end are poisoned. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <sanitizer/asan_interface.h>
#include <stdlib.h>
#include <string.h>

#include "jsonarena.h"
#include "jsonin.h"
#include "jsonout.h"

#if defined(__SANITIZE_ADDRESS__)
#define TEST_ASAN 1
#endif

static void test_values_come_from_the_block(void **state)
{
	(void)state;
	assert_int_equal(zw_json_arena_used(), 0);
	int begun = zw_json_arena_begin();
	assert_int_equal(begun, 1);
	json_t *o = json_object();
	size_t after_one = zw_json_arena_used();
	assert_true(after_one > 0);
	assert_int_equal(json_object_set_new(o, "k", json_string("v")), 0);
	assert_true(zw_json_arena_used() > after_one);
	/* Aligned as malloc's blocks. */
	assert_int_equal((uintptr_t)o % 16, 0);
	json_decref(o);
	/* A free gives nothing back before the end. */
	assert_true(zw_json_arena_used() > after_one);
	zw_json_arena_end(begun);
	assert_int_equal(zw_json_arena_used(), 0);
}

static void test_nested_begin_keeps_the_outer(void **state)
{
	(void)state;
	int outer = zw_json_arena_begin();
	assert_int_equal(outer, 1);
	json_t *a = json_string("outer");
	int inner = zw_json_arena_begin();
	assert_int_equal(inner, 0);
	zw_json_arena_end(inner); /* does nothing */
	size_t used = zw_json_arena_used();
	assert_true(used > 0);
	json_t *b = json_string("still the outer arena");
	assert_true(zw_json_arena_used() > used);
	json_decref(a);
	json_decref(b);
	zw_json_arena_end(outer);
	zw_json_arena_end(outer); /* a second end does nothing either */
	assert_int_equal(zw_json_arena_used(), 0);
}

static void test_values_from_before_are_freed(void **state)
{
	(void)state;
	/* Made with malloc; freed inside an arena they go back to malloc. */
	json_t *before = json_pack("{s:[i,i,i], s:s}", "a", 1, 2, 3, "b", "text");
	assert_non_null(before);
	int begun = zw_json_arena_begin();
	json_t *inside = json_deep_copy(before);
	assert_true(json_equal(inside, before));
	json_decref(before);
	json_decref(inside);
	zw_json_arena_end(begun);
	/* And a value from inside is not used after the end: nothing left. */
}

static void test_large_values_spill_to_malloc(void **state)
{
	(void)state;
	size_t n = ZW_JSON_ARENA_SIZE + 1;
	char *big = malloc(n);
	assert_non_null(big);
	memset(big, 'x', n - 1);
	big[n - 1] = '\0';
	int begun = zw_json_arena_begin();
	size_t used = zw_json_arena_used();
	json_t *s = json_string(big); /* its copy of the text does not fit */
	assert_non_null(s);
	assert_true(zw_json_arena_used() - used < 1024);
	assert_int_equal(strlen(json_string_value(s)), n - 1);
	json_decref(s);
	/* Fill the block: what follows comes from malloc, and is freed. */
	json_t *a = json_array();
	while (zw_json_arena_used() + 64 < ZW_JSON_ARENA_SIZE)
		assert_int_equal(json_array_append_new(a, json_integer(7)), 0);
	for (int i = 0; i < 1000; i++)
		assert_int_equal(json_array_append_new(a, json_string("spilled")), 0);
	assert_true(zw_json_arena_used() <= ZW_JSON_ARENA_SIZE);
	assert_string_equal(json_string_value(json_array_get(a, json_array_size(a) - 1)),
	                    "spilled");
	json_decref(a);
	zw_json_arena_end(begun);
	free(big);
}

static void test_block_reused(void **state)
{
	(void)state;
	static const char doc[] = "{\"a\":[1,2,{\"b\":\"c\"}],\"d\":\"\\u00e9\"}";
	char *first = NULL, *second = NULL;
	size_t l1 = 0, l2 = 0;
	void *p1, *p2;
	int begun = zw_json_arena_begin();
	json_t *v = zw_json_load(doc, strlen(doc), NULL);
	assert_non_null(v);
	p1 = v;
	size_t used1 = zw_json_arena_used();
	first = zw_json_dump(v, &l1);
	json_decref(v);
	zw_json_arena_end(begun);

	begun = zw_json_arena_begin();
	v = zw_json_load(doc, strlen(doc), NULL);
	p2 = v;
	assert_int_equal(zw_json_arena_used(), used1);
	second = zw_json_dump(v, &l2);
	json_decref(v);
	zw_json_arena_end(begun);
	assert_ptr_equal(p1, p2);
	assert_non_null(first);
	assert_non_null(second);
	assert_string_equal(first, second);
	free(first);
	free(second);
}

struct other {
	json_t *made; /* by the other thread while the main thread's arena runs */
	size_t used;  /* zw_json_arena_used() there */
};

static void *make_value(void *arg)
{
	struct other *o = arg;
	o->made = json_pack("{s:s}", "made", "elsewhere");
	o->used = zw_json_arena_used();
	return NULL;
}

static void *use_an_arena_and_exit(void *arg)
{
	(void)arg;
	int begun = zw_json_arena_begin();
	json_decref(json_string("in a thread's block"));
	zw_json_arena_end(begun);
	return NULL; /* its block is freed now (the SAN build's leak check) */
}

static void test_other_threads_use_malloc(void **state)
{
	(void)state;
	struct other o = {0};
	pthread_t t;
	int begun = zw_json_arena_begin();
	json_t *mine = json_string("mine");
	assert_int_equal(pthread_create(&t, NULL, make_value, &o), 0);
	assert_int_equal(pthread_join(t, NULL), 0);
	assert_int_equal(o.used, 0);
	json_decref(mine);
	zw_json_arena_end(begun);
	/* The other thread's value outlives this arena. */
	assert_string_equal(json_string_value(json_object_get(o.made, "made")), "elsewhere");
	json_decref(o.made);
	for (int i = 0; i < 4; i++) {
		assert_int_equal(pthread_create(&t, NULL, use_an_arena_and_exit, NULL), 0);
		assert_int_equal(pthread_join(t, NULL), 0);
	}
}

static void test_freed_blocks_not_handed_out_again(void **state)
{
	(void)state;
	int begun = zw_json_arena_begin();
	json_t *a = json_string("a"), *b = json_string("b");
	json_decref(a);
	json_t *c = json_string("c"); /* never where a was: frees give nothing back */
	assert_ptr_not_equal(c, a);
	assert_string_equal(json_string_value(b), "b");
#ifdef TEST_ASAN
	assert_true(__asan_address_is_poisoned(a)); /* freed */
	assert_false(__asan_address_is_poisoned(b));
#endif
	json_decref(c);
	zw_json_arena_end(begun);
#ifdef TEST_ASAN
	assert_true(__asan_address_is_poisoned(b)); /* the end */
#endif
	/* b is not freed: the end took its memory back with the block's. */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_values_come_from_the_block),
	        cmocka_unit_test(test_nested_begin_keeps_the_outer),
	        cmocka_unit_test(test_values_from_before_are_freed),
	        cmocka_unit_test(test_large_values_spill_to_malloc),
	        cmocka_unit_test(test_block_reused),
	        cmocka_unit_test(test_other_threads_use_malloc),
	        cmocka_unit_test(test_freed_blocks_not_handed_out_again),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
